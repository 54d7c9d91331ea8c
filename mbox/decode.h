/*
 * decode.h: content decoding for BINARY (RFC 3516) and SEARCH: base64 and quoted-printable
 * (RFC 2045 6.7, 6.8), encoded words (RFC 2047), charset conversion to UTF-8 (glibc iconv) and
 * case-insensitive substring matching of UTF-8 text.
 *
 * Everything streams with bounded state, so a 1 GB attachment never needs 1 GB of memory.
 */
#ifndef MBOX_DECODE_H
#define MBOX_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbox/message.h"

/* ---- a byte buffer with a hard maximum ---- */

struct dbuf {
	char *data;		/* NUL-terminated when len > 0 or after dbuf_add */
	size_t len, cap, max;
	bool overflow;		/* something was dropped because max was reached */
};

/* max bounds len; appends past it are dropped and set overflow. */
void dbuf_init(struct dbuf *b, size_t max);
void dbuf_free(struct dbuf *b);
void dbuf_reset(struct dbuf *b);
/* Returns false (and sets overflow) when not everything fit. Aborts when memory runs out. */
bool dbuf_add(struct dbuf *b, const void *p, size_t len);

/* ---- transfer decoding ---- */

/*
 * Output capacity a decoder needs per call: out must hold DEC_OUT_MAX(len) bytes for len bytes
 * of input (quoted-printable turns a bare LF into CRLF and may release held white space).
 */
#define DEC_HOLD_MAX		64
#define DEC_OUT_MAX(len)	(2 * (len) + DEC_HOLD_MAX + 4)

struct decoder {
	enum msg_cte cte;
	int state;
	uint32_t acc;
	unsigned int n;
	unsigned char hold[DEC_HOLD_MAX];	/* QP: white space that may be trailing */
	unsigned int nhold;
	size_t junk;				/* base64: characters outside the alphabet */
};

/*
 * cte must not be MSG_CTE_UNKNOWN.  Identity encodings copy (bare LF stays: use the message
 * writer for those); base64 skips characters outside its alphabet and treats "=" as the end of
 * a quantum; quoted-printable removes soft line breaks and trailing white space (RFC 2045 6.7
 * rule 3), gives CRLF for every hard line break, and keeps malformed "=" sequences as sent.
 */
void decoder_init(struct decoder *d, enum msg_cte cte);
/* Returns the number of bytes written to out (capacity DEC_OUT_MAX(len)). */
size_t decoder_feed(struct decoder *d, const unsigned char *in, size_t len, unsigned char *out);
/* End of input: flush what is held (out capacity DEC_OUT_MAX(0)). */
size_t decoder_finish(struct decoder *d, unsigned char *out);

/*
 * The decoded content of a leaf part (BINARY[section]).  The encoding comes from the part;
 * returns -1 for MSG_CTE_UNKNOWN ([UNKNOWN-CTE]) and for parts that are not leaves.  Identity
 * encodings give the visible (CRLF) bytes of the body.
 */
int msg_decoded_size(const struct msg *msg, const struct msg_part *part, size_t *size_r);
/* Write decoded bytes [start, start+len) of the part; returns 0, -1 as above, or the first
 * nonzero value of write. */
int msg_decoded_write(const struct msg *msg, const struct msg_part *part, size_t start,
		      size_t len, msg_write_fn *write, void *ctx);

/* ---- charsets ---- */

/* True if charset can be converted to UTF-8 (US-ASCII, UTF-8 and whatever iconv knows). */
bool charset_known(const char *charset);

/*
 * Streaming conversion to UTF-8.  Invalid input becomes U+FFFD; bytes of a sequence cut at the
 * end of one feed wait for the next.  A NULL or unknown charset falls back to: UTF-8 where the
 * bytes are valid UTF-8, Latin-1 otherwise (what 8-bit mail without a label usually is).
 */
struct charset_conv;

struct charset_conv *charset_conv_new(const char *charset);
void charset_conv_free(struct charset_conv **convp);
/* True if the converter uses iconv or a built-in for the charset asked for. */
bool charset_conv_exact(const struct charset_conv *conv);
/* Append the UTF-8 for in to out.  final = no more input follows. */
void charset_conv_feed(struct charset_conv *conv, const unsigned char *in, size_t len,
		       bool final, struct dbuf *out);

/* One-shot conversion; returns 0, or -1 when the charset is unknown (the fallback is used). */
int charset_to_utf8(const char *charset, const unsigned char *in, size_t len, struct dbuf *out);

/* ---- RFC 2047 ---- */

/*
 * Decode a header value to UTF-8: encoded words (B and Q, any charset iconv knows, RFC 2231
 * language suffix allowed) are decoded, white space between adjacent encoded words dropped
 * (RFC 2047 6.2), folds unfolded, and other text converted by the fallback above.  Malformed
 * encoded words stay as they are.
 */
void rfc2047_decode(const char *in, size_t len, struct dbuf *out);

/*
 * rfc2047_decode for a collation key (RFC 5051 2 (1)(b)): the bytes of an encoded word in a
 * charset that cannot be converted are appended as the B or Q encoding gives them, with no
 * fallback.  Returns false when there was such a word (the result is then not UTF-8 text
 * to prepare but a string to compare as octets).
 */
bool rfc2047_decode_known(const char *in, size_t len, struct dbuf *out);

/* ---- case-insensitive matching ---- */

/*
 * Case folding used by SEARCH: ASCII, Latin-1 Supplement, Latin Extended-A and -B, Greek and
 * Cyrillic fold to lower case in compatibility decomposition (a table generated from Unicode),
 * as RFC 5051's i;unicode-casemap does, so "re" matches "R\u00e9union" and "\u00e9" matches
 * "e\u0301"; the micro sign folds to mu and final sigma to sigma.  Other text, invalid UTF-8
 * included, is kept as is (so U+00DF does not match "ss").
 */
void utf8_fold(const char *in, size_t len, struct dbuf *out);

/* Longest needle accepted (bytes, after folding). */
#define TEXTMATCH_MAX_NEEDLE	1024

/*
 * Streaming substring search for a folded needle in UTF-8 text fed in pieces; the pieces need
 * not end on character boundaries.
 */
struct textmatch {
	char needle[TEXTMATCH_MAX_NEEDLE];
	size_t nlen;
	bool found;
	char carry[TEXTMATCH_MAX_NEEDLE + 8];	/* folded tail of the previous piece */
	size_t ncarry;
	unsigned char part[4];			/* an unfinished UTF-8 sequence */
	size_t npart;
	struct dbuf scratch;
};

/* Returns -1 if the needle is too long. */
int textmatch_init(struct textmatch *tm, const char *needle, size_t len);
void textmatch_reset(struct textmatch *tm);
void textmatch_free(struct textmatch *tm);
/* Returns true once the needle has been seen (it stays true until textmatch_reset). */
bool textmatch_feed(struct textmatch *tm, const char *text, size_t len);

/* End of the text: a sequence left unfinished counts as the raw bytes it is.  Returns found. */
bool textmatch_finish(struct textmatch *tm);

/* One-shot case-insensitive containment test of UTF-8 text. */
bool utf8_contains_ci(const char *hay, size_t hlen, const char *needle, size_t nlen);

#endif
