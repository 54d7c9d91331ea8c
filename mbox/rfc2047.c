/*
 * rfc2047.c: encoded-word decoding of header text to UTF-8, for SEARCH on headers.
 *
 * Lenient the way mail readers are: encoded words are recognised even when text touches them
 * ("Re:=?utf-8?q?...?="), and a word whose charset iconv does not know is still decoded, with
 * the UTF-8/Latin-1 fallback.  What does not parse as an encoded word stays as text.
 * Sort keys (rfc2047_decode_known) take no fallback: RFC 5051 compares such a string as
 * octets, so the word's bytes are kept as they are and the caller is told.
 */
#include "mbox/decode.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest charset label considered in an encoded word. */
#define EW_CHARSET_MAX	64

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct ew {
	char charset[EW_CHARSET_MAX + 1];
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t end;		/* index just past "?=" */
};

/* encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?=" */
static bool
parse_ew(const char *s, size_t len, size_t i, struct ew *ew)
{
	size_t p = i + 2, cs = p, t;

	if (i + 2 > len || s[i] != '=' || s[i + 1] != '?')
		return false;
	while (p < len && s[p] != '?' && !is_ws(s[p]))
		p++;
	if (p >= len || s[p] != '?' || p == cs)
		return false;
	{
		/* RFC 2231 5: a language suffix after "*" is not part of the charset */
		size_t cl = p - cs, k;

		for (k = 0; k < cl && s[cs + k] != '*'; k++)
			;
		if (k == 0 || k > EW_CHARSET_MAX)
			return false;
		memcpy(ew->charset, s + cs, k);
		ew->charset[k] = '\0';
	}
	p++;
	if (p + 2 > len || s[p + 1] != '?')
		return false;
	if (s[p] == 'B' || s[p] == 'b')
		ew->enc = 'B';
	else if (s[p] == 'Q' || s[p] == 'q')
		ew->enc = 'Q';
	else
		return false;
	p += 2;
	for (t = p; t < len && s[t] != '?' && !is_ws(s[t]); t++)
		;
	if (t + 1 >= len || s[t] != '?' || s[t + 1] != '=')
		return false;
	ew->text = s + p;
	ew->text_len = t - p;
	ew->end = t + 2;
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Raw bytes of consecutive encoded words in one charset wait here and are converted together:
 * senders split multibyte characters across words although RFC 2047 5 forbids it.
 */
struct pending {
	char charset[EW_CHARSET_MAX + 1];
	struct dbuf raw;
	bool exact;		/* an unknown charset's bytes stay as they are */
	bool unknown;		/* there was one */
};

static void
flush(struct pending *pd, struct dbuf *out)
{
	if (pd->raw.len > 0) {
		struct charset_conv *c = charset_conv_new(pd->charset);

		if (pd->exact && !charset_conv_exact(c)) {
			dbuf_add(out, pd->raw.data, pd->raw.len);
			pd->unknown = true;
		} else {
			charset_conv_feed(c, (const unsigned char *)pd->raw.data, pd->raw.len,
					  true, out);
		}
		charset_conv_free(&c);
	}
	dbuf_reset(&pd->raw);
	pd->charset[0] = '\0';
}

static void
decode_ew(const struct ew *ew, struct pending *pd, struct dbuf *out)
{
	unsigned char *raw = malloc(DEC_OUT_MAX(ew->text_len));
	size_t n = 0, i;

	if (raw == NULL)
		abort();
	if (ew->enc == 'B') {
		struct decoder d;

		decoder_init(&d, MSG_CTE_BASE64);
		n = decoder_feed(&d, (const unsigned char *)ew->text, ew->text_len, raw);
		n += decoder_finish(&d, raw + n);
	} else {
		/* RFC 2047 4.2: "_" is a space, "=XX" a byte */
		for (i = 0; i < ew->text_len; i++) {
			char c = ew->text[i];
			int h, l;

			if (c == '_') {
				raw[n++] = ' ';
			} else if (c == '=' && i + 2 < ew->text_len &&
				   (h = hexval(ew->text[i + 1])) >= 0 &&
				   (l = hexval(ew->text[i + 2])) >= 0) {
				raw[n++] = (unsigned char)(h << 4 | l);
				i += 2;
			} else {
				raw[n++] = (unsigned char)c;
			}
		}
	}
	if (strcasecmp(pd->charset, ew->charset) != 0) {
		flush(pd, out);
		memcpy(pd->charset, ew->charset, sizeof(pd->charset));
	}
	dbuf_add(&pd->raw, raw, n);
	free(raw);
}

/* Unfolding: the line ends of white space go, the blanks stay. */
static void
add_ws(const char *s, size_t start, size_t end, struct dbuf *out)
{
	size_t j;

	for (j = start; j < end; j++) {
		if (s[j] != '\r' && s[j] != '\n')
			dbuf_add(out, s + j, 1);
	}
}

static bool
decode(const char *s, size_t len, bool exact, struct dbuf *out)
{
	size_t i = 0, ws_start = 0, ws_end = 0;
	bool after_ew = false, have_ws = false;
	struct pending pd;
	struct ew ew;

	pd.charset[0] = '\0';
	pd.exact = exact;
	pd.unknown = false;
	/* decoded text is never longer than its encoded form */
	dbuf_init(&pd.raw, len + 1);

	while (i < len) {
		size_t j;

		if (is_ws(s[i])) {
			j = i;
			while (j < len && is_ws(s[j]))
				j++;
			ws_start = i;
			ws_end = j;
			have_ws = true;
			i = j;
			continue;
		}
		if (s[i] == '=' && parse_ew(s, len, i, &ew)) {
			/* RFC 2047 6.2: white space between adjacent encoded words is dropped */
			if (have_ws && !after_ew)
				add_ws(s, ws_start, ws_end, out);
			have_ws = false;
			decode_ew(&ew, &pd, out);
			after_ew = true;
			i = ew.end;
			continue;
		}
		flush(&pd, out);
		if (have_ws) {
			add_ws(s, ws_start, ws_end, out);
			have_ws = false;
		}
		after_ew = false;
		for (j = i + 1; j < len && !is_ws(s[j]) && !(s[j] == '=' && j + 1 < len &&
							       s[j + 1] == '?'); j++)
			;
		(void)charset_to_utf8(NULL, (const unsigned char *)s + i, j - i, out);
		i = j;
	}
	flush(&pd, out);
	dbuf_free(&pd.raw);
	if (have_ws && !after_ew)
		add_ws(s, ws_start, ws_end, out);
	return !pd.unknown;
}

void
rfc2047_decode(const char *s, size_t len, struct dbuf *out)
{
	(void)decode(s, len, false, out);
}

bool
rfc2047_decode_known(const char *s, size_t len, struct dbuf *out)
{
	return decode(s, len, true, out);
}
