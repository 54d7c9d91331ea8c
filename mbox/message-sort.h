/*
 * message-sort.h: what SORT and THREAD (RFC 5256) need of one message, computed from its
 * header bytes, and the pieces of RFC 5256 and RFC 5051 that make it: the base subject
 * (RFC 5256 2.1), the sent date (2.2), the i;unicode-casemap collation (RFC 5051), the
 * DISPLAY sort value of an address (RFC 5957 3) and normalized Message-IDs.
 *
 * Store-independent, like message.h: the input is one message's header as bytes.
 */
#ifndef MBOX_MESSAGE_SORT_H
#define MBOX_MESSAGE_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mbox/decode.h"
#include "mbox/message.h"

/*
 * Bytes kept of each string key after the collation (a Subject longer than this sorts as its
 * first SORT_KEY_MAX bytes: DEVIATIONS.md).  Real subjects and addresses are far shorter.
 */
#define SORT_KEY_MAX		4096
/* References kept per message: the first and the last ones (DEVIATIONS.md). */
#define SORT_MAX_REFS		1024
/* Longest Message-ID considered (bytes between the angle brackets, normalized). */
#define SORT_MSGID_MAX		998

/* The string keys, in this order everywhere (the cache's layout too). */
enum sort_str {
	SORT_S_SUBJECT,		/* base subject */
	SORT_S_FROM,		/* addr-mailbox of the first From address */
	SORT_S_TO,
	SORT_S_CC,
	SORT_S_DISPLAYFROM,	/* RFC 5957 3 */
	SORT_S_DISPLAYTO,
	SORT_S_COUNT
};

/* Flags of struct sort_keys. */
#define SORT_K_DATE	0x01	/* sent holds a parsed Date */
#define SORT_K_REPLY	0x02	/* the subject was a reply or forward (RFC 5256 REFERENCES) */
#define SORT_K_MSGID	0x04	/* msgid is a valid Message-ID's hash */

/*
 * One message's keys.  Strings are collation keys (RFC 5051 prepared, compare them with
 * memcmp), at most SORT_KEY_MAX bytes, not NUL-terminated; Message-IDs are 64-bit hashes of
 * their normalized form (two different IDs colliding is a 1 in 2^64 event per pair).
 */
struct sort_keys {
	unsigned flags;
	int64_t sent;			/* UTC seconds, when SORT_K_DATE */
	uint64_t msgid;
	const unsigned char *s[SORT_S_COUNT];
	uint16_t slen[SORT_S_COUNT];
	const uint64_t *refs;		/* the references, oldest first (RFC 5256 REFERENCES) */
	uint32_t nrefs;
	/* each string key's rank among the records of the sort cache file it came from
	 * (mbox/mbox-sortcache.h): equal strings have equal ranks; NULL when it has none */
	const uint32_t *rank;
};

/* Storage for sort_keys computed here: the strings and references point into it. */
struct sort_keys_buf {
	struct dbuf strs;
	uint64_t refs[SORT_MAX_REFS];
	struct dbuf tmp, tmp2;
};

void sort_keys_buf_init(struct sort_keys_buf *b);
void sort_keys_buf_free(struct sort_keys_buf *b);

/*
 * The keys of one message from its header (hdr, len: the top-level header bytes, as
 * msg_hdr_iter reads them; hide may be NULL).  Only the first Date, Subject, From, To, Cc,
 * Message-ID, In-Reply-To and References count.  The result points into buf until the next
 * call with it.
 */
void sort_keys_extract(const unsigned char *hdr, size_t len, msg_hide_fn *hide, void *hide_ctx,
		       struct sort_keys_buf *buf, struct sort_keys *keys_r);

/*
 * RFC 5256 2.1: the base subject of a raw Subject value (encoded words decoded to UTF-8),
 * appended to out; *reply_r tells whether a subj-refwd, a "(fwd)" trailer or a [fwd: ...]
 * wrapper was removed.  *octet_r is set when an encoded word's charset could not be
 * converted: its bytes are in out as they decode, and RFC 5051 2 (1)(b) compares the whole
 * subject unchanged (i;octet), not through sort_casemap().
 */
void sort_base_subject(const char *raw, size_t len, struct dbuf *out, bool *reply_r,
		       bool *octet_r);

/*
 * RFC 5051: s as a "titlecased canonicalized UTF-8" string, appended to out.  Input that is
 * not valid UTF-8 is appended unchanged (RFC 5051 2 (1)(b): i;octet).
 */
void sort_casemap(const char *s, size_t len, struct dbuf *out);

/*
 * The next msg-id (RFC 5322 3.6.4, obsolete forms included) in s[*pos..len), normalized
 * (RFC 5256: quoting and CFWS removed) into out (reset first).  Returns false when there is
 * no other valid one; *pos moves past what was read.
 */
bool sort_next_msgid(const char *s, size_t len, size_t *pos, struct dbuf *out);

/* The 64-bit hash of a normalized Message-ID (never 0). */
uint64_t sort_msgid_hash(const char *id, size_t len);

#endif
