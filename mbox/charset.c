/*
 * charset.c: conversion to UTF-8 (glibc iconv plus built-ins for the common cases), case
 * folding and substring matching of UTF-8 text for SEARCH.
 */
#include "mbox/decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/charset-fold.h"

/* Longest charset name passed to iconv; real ones are under 30 characters. */
#define CHARSET_NAME_MAX	64

enum conv_kind {
	CONV_FALLBACK,	/* UTF-8 where valid, Latin-1 otherwise */
	CONV_UTF8,	/* declared UTF-8: invalid sequences become U+FFFD */
	CONV_LATIN1,
	CONV_ICONV
};

struct charset_conv {
	enum conv_kind kind;
	bool exact;
	iconv_t cd;
	unsigned char pend[16];		/* an input sequence cut at the end of a feed */
	size_t npend;
};

static const char replacement[] = "\xef\xbf\xbd";

static bool
name_is(const char *s, const char *name)
{
	return msg_name_eq(s, strlen(s), name);
}

/*
 * Length of the valid UTF-8 sequence at p: 1-4; 0 when the n bytes available are a valid but
 * unfinished start; -1 when invalid.  Overlong forms and surrogates are invalid (RFC 3629).
 */
static int
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	int len, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return -1;
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	cp = c & (0x3f >> (len - 1));
	for (i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return 0;
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
		if (i == 1 && ((len == 3 && cp < 0x20) || (len == 4 && cp < 0x10) ||
			       (len == 3 && (cp >> 5) == 0x1b) || (len == 4 && cp > 0x10f)))
			return -1;	/* overlong, surrogate or beyond U+10FFFF */
	}
	return len;
}

static void
add_latin1(struct dbuf *out, unsigned char c)
{
	char u[2];

	if (c < 0x80) {
		dbuf_add(out, &c, 1);
		return;
	}
	u[0] = (char)(0xc0 | (c >> 6));
	u[1] = (char)(0x80 | (c & 0x3f));
	dbuf_add(out, u, 2);
}

bool
charset_known(const char *charset)
{
	char name[CHARSET_NAME_MAX];
	iconv_t cd;

	if (charset == NULL || name_is(charset, "us-ascii") || name_is(charset, "utf-8") ||
	    name_is(charset, "utf8") || name_is(charset, "ascii") ||
	    name_is(charset, "iso-8859-1") || name_is(charset, "latin1"))
		return true;
	if (strlen(charset) >= sizeof(name) - 1 || strchr(charset, '/') != NULL)
		return false;
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

struct charset_conv *
charset_conv_new(const char *charset)
{
	struct charset_conv *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->cd = (iconv_t)-1;
	c->kind = CONV_FALLBACK;
	c->exact = true;
	if (charset == NULL || name_is(charset, "us-ascii") || name_is(charset, "ascii")) {
		/* 8-bit bytes in "ASCII" text are mislabelled UTF-8 or Latin-1 */
		c->kind = CONV_FALLBACK;
	} else if (name_is(charset, "utf-8") || name_is(charset, "utf8")) {
		c->kind = CONV_UTF8;
	} else if (name_is(charset, "iso-8859-1") || name_is(charset, "latin1")) {
		c->kind = CONV_LATIN1;
	} else if (strlen(charset) < CHARSET_NAME_MAX && strchr(charset, '/') == NULL &&
		   (c->cd = iconv_open("UTF-8", charset)) != (iconv_t)-1) {
		/* a '/' would let the label pick iconv options such as //TRANSLIT */
		c->kind = CONV_ICONV;
	} else {
		c->exact = false;
	}
	return c;
}

void
charset_conv_free(struct charset_conv **convp)
{
	struct charset_conv *c = *convp;

	if (c == NULL)
		return;
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
	free(c);
	*convp = NULL;
}

bool
charset_conv_exact(const struct charset_conv *conv)
{
	return conv->exact;
}

/* Built-in kinds: convert p[0..n), returning how many bytes were consumed. */
static size_t
conv_builtin(struct charset_conv *c, const unsigned char *p, size_t n, bool final,
	     struct dbuf *out)
{
	size_t i = 0, run = 0;

	if (c->kind == CONV_LATIN1) {
		for (i = 0; i < n; i++)
			add_latin1(out, p[i]);
		return n;
	}
	while (i < n) {
		int l;

		if (p[i] < 0x80) {
			/* copy ASCII runs in one go */
			for (run = i; run < n && p[run] < 0x80; run++)
				;
			dbuf_add(out, p + i, run - i);
			i = run;
			continue;
		}
		l = utf8_seq(p + i, n - i);
		if (l == 0 && !final)
			return i;	/* wait for the rest of the sequence */
		if (l == 0 && c->kind == CONV_UTF8) {
			/* cut short by the end: one replacement for the whole stump */
			dbuf_add(out, replacement, 3);
			return n;
		}
		if (l > 0) {
			dbuf_add(out, p + i, (size_t)l);
			i += (size_t)l;
		} else {
			if (c->kind == CONV_UTF8)
				dbuf_add(out, replacement, 3);
			else
				add_latin1(out, p[i]);
			i++;
		}
	}
	return i;
}

static size_t
conv_iconv(struct charset_conv *c, const unsigned char *p, size_t n, bool final,
	   struct dbuf *out)
{
	char buf[4096];
	char *in = (char *)(uintptr_t)p;	/* iconv's prototype is not const-correct */
	size_t inleft = n;

	while (inleft > 0) {
		char *o = buf;
		size_t oleft = sizeof(buf);
		size_t r = iconv(c->cd, &in, &inleft, &o, &oleft);

		dbuf_add(out, buf, sizeof(buf) - oleft);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && !final)
			break;		/* an unfinished sequence: keep it for the next feed */
		/* invalid or unfinished at the end: replace one byte and go on */
		dbuf_add(out, replacement, 3);
		in++;
		inleft--;
		iconv(c->cd, NULL, NULL, NULL, NULL);
	}
	if (final) {
		char *o = buf;
		size_t oleft = sizeof(buf);

		iconv(c->cd, NULL, NULL, &o, &oleft);
		dbuf_add(out, buf, sizeof(buf) - oleft);
	}
	return n - inleft;
}

static size_t
conv_some(struct charset_conv *c, const unsigned char *p, size_t n, bool final,
	  struct dbuf *out)
{
	if (c->kind == CONV_ICONV)
		return conv_iconv(c, p, n, final, out);
	return conv_builtin(c, p, n, final, out);
}

void
charset_conv_feed(struct charset_conv *c, const unsigned char *in, size_t len, bool final,
		  struct dbuf *out)
{
	size_t used;

	if (c->npend > 0) {
		/* finish the cut sequence with the first bytes of this piece */
		unsigned char tmp[sizeof(c->pend) * 2];
		size_t take = len < sizeof(c->pend) ? len : sizeof(c->pend), done;

		memcpy(tmp, c->pend, c->npend);
		if (take > 0)
			memcpy(tmp + c->npend, in, take);
		done = conv_some(c, tmp, c->npend + take, final && take == len, out);
		if (done < c->npend) {
			/* still unfinished: only possible when this piece was tiny */
			if (c->npend + take <= sizeof(c->pend)) {
				memcpy(c->pend, tmp, c->npend + take);
				c->npend += take;
				return;
			}
			dbuf_add(out, replacement, 3);
			done = c->npend;
		}
		done -= c->npend;
		c->npend = 0;
		in += done;
		len -= done;
	}
	used = conv_some(c, in, len, final, out);
	if (used < len) {
		size_t rest = len - used;

		if (rest > sizeof(c->pend)) {
			dbuf_add(out, replacement, 3);
			rest = 0;
		}
		memcpy(c->pend, in + used, rest);
		c->npend = rest;
	}
}

int
charset_to_utf8(const char *charset, const unsigned char *in, size_t len, struct dbuf *out)
{
	struct charset_conv *c = charset_conv_new(charset);
	bool exact = c->exact;

	charset_conv_feed(c, in, len, true, out);
	charset_conv_free(&c);
	return exact ? 0 : -1;
}

/* ---- folding ---- */

/*
 * The folded form of a two-byte code point: lower case in compatibility decomposition from the
 * generated table, plus the two case foldings lower case does not give.  NULL: unchanged.
 */
static const char *
fold2(uint32_t cp)
{
	if (cp == 0xb5)
		return "\xce\xbc";	/* micro sign: Greek mu */
	if (cp == 0x3c2)
		return "\xcf\x83";	/* final sigma: sigma */
	return charset_fold_lookup(cp);
}

/* Fold p[0..n); returns the bytes consumed (an unfinished sequence at the end is left
 * unless final). */
static size_t
fold_some(const unsigned char *p, size_t n, bool final, struct dbuf *out)
{
	size_t i = 0;
	char buf[512];
	size_t o = 0;

	while (i < n) {
		unsigned char c = p[i];
		int l;
		uint32_t cp;

		if (o > sizeof(buf) - CHARSET_FOLD_MAX) {
			dbuf_add(out, buf, o);
			o = 0;
		}
		if (c < 0x80) {
			buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			i++;
			continue;
		}
		l = utf8_seq(p + i, n - i);
		if (l == 0 && !final)
			break;
		if (l <= 0) {
			buf[o++] = (char)c;
			i++;
			continue;
		}
		if (l == 2) {
			const char *f;

			cp = ((uint32_t)(c & 0x1f) << 6) | (p[i + 1] & 0x3f);
			if ((f = fold2(cp)) != NULL) {
				size_t fl = strlen(f);

				memcpy(buf + o, f, fl);
				o += fl;
			} else {
				buf[o++] = (char)c;
				buf[o++] = (char)p[i + 1];
			}
		} else {
			memcpy(buf + o, p + i, (size_t)l);
			o += (size_t)l;
		}
		i += (size_t)l;
	}
	dbuf_add(out, buf, o);
	return i;
}

void
utf8_fold(const char *in, size_t len, struct dbuf *out)
{
	(void)fold_some((const unsigned char *)in, len, true, out);
}

int
textmatch_init(struct textmatch *tm, const char *needle, size_t len)
{
	struct dbuf b;

	memset(tm, 0, sizeof(*tm));
	dbuf_init(&b, TEXTMATCH_MAX_NEEDLE);
	utf8_fold(needle, len, &b);
	if (b.overflow) {
		dbuf_free(&b);
		return -1;
	}
	if (b.len > 0)
		memcpy(tm->needle, b.data, b.len);
	tm->nlen = b.len;
	dbuf_free(&b);
	dbuf_init(&tm->scratch, SIZE_MAX);
	return 0;
}

void
textmatch_reset(struct textmatch *tm)
{
	tm->found = false;
	tm->ncarry = 0;
	tm->npart = 0;
}

void
textmatch_free(struct textmatch *tm)
{
	dbuf_free(&tm->scratch);
}

bool
textmatch_feed(struct textmatch *tm, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	struct dbuf *s = &tm->scratch;
	size_t used, keep;

	if (tm->found || tm->nlen == 0)
		return tm->found = true;
	dbuf_reset(s);
	dbuf_add(s, tm->carry, tm->ncarry);
	if (tm->npart > 0) {
		/* complete the sequence cut at the end of the previous piece */
		unsigned char tmp[8];
		size_t take = len < 4 ? len : 4, n = tm->npart + take, done;

		memcpy(tmp, tm->part, tm->npart);
		memcpy(tmp + tm->npart, p, take);
		done = fold_some(tmp, n, false, s);
		if (done < tm->npart) {
			if (n <= sizeof(tm->part)) {
				memcpy(tm->part, tmp, n);
				tm->npart = n;
				return false;
			}
			done = fold_some(tmp, n, true, s);
		}
		p += done - tm->npart;
		len -= done - tm->npart;
		tm->npart = 0;
	}
	used = fold_some(p, len, false, s);
	if (used < len) {
		tm->npart = len - used;
		memcpy(tm->part, p + used, tm->npart);
	}
	if (memmem(s->data, s->len, tm->needle, tm->nlen) != NULL)
		return tm->found = true;
	keep = tm->nlen - 1 < s->len ? tm->nlen - 1 : s->len;
	memcpy(tm->carry, s->data + s->len - keep, keep);
	tm->ncarry = keep;
	return false;
}

bool
textmatch_finish(struct textmatch *tm)
{
	struct dbuf *s = &tm->scratch;

	if (tm->found || tm->npart == 0)
		return tm->found;
	dbuf_reset(s);
	dbuf_add(s, tm->carry, tm->ncarry);
	(void)fold_some(tm->part, tm->npart, true, s);
	tm->npart = 0;
	if (memmem(s->data, s->len, tm->needle, tm->nlen) != NULL)
		tm->found = true;
	return tm->found;
}

bool
utf8_contains_ci(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	struct dbuf h, n;
	bool r;

	dbuf_init(&h, SIZE_MAX);
	dbuf_init(&n, SIZE_MAX);
	utf8_fold(hay, hlen, &h);
	utf8_fold(needle, nlen, &n);
	r = n.len == 0 || (h.len > 0 && memmem(h.data, h.len, n.data, n.len) != NULL);
	dbuf_free(&h);
	dbuf_free(&n);
	return r;
}
