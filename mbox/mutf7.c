/*
 * Modified UTF-7, RFC 3501 section 5.1.3. See mutf7.h for the rules enforced.
 */
#include "mbox/mutf7.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Bounded output; with a NULL buffer it only counts. */
struct out {
	char *buf;
	size_t size;
	size_t len;
	bool overflow;
};

static void
out_byte(struct out *o, unsigned char c)
{
	if (o->buf != NULL) {
		if (o->len + 1 >= o->size) {
			o->overflow = true;
			return;
		}
		o->buf[o->len] = (char)c;
	}
	o->len++;
}

static int
out_finish(struct out *o, size_t *len_r)
{
	if (o->buf != NULL) {
		if (o->overflow || o->len >= o->size)
			return -ENOSPC;
		o->buf[o->len] = '\0';
	}
	if (len_r != NULL)
		*len_r = o->len;
	return 0;
}

static void
out_utf8(struct out *o, uint32_t cp)
{
	if (cp < 0x80) {
		out_byte(o, (unsigned char)cp);
	} else if (cp < 0x800) {
		out_byte(o, (unsigned char)(0xc0 | (cp >> 6)));
		out_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		out_byte(o, (unsigned char)(0xe0 | (cp >> 12)));
		out_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		out_byte(o, (unsigned char)(0xf0 | (cp >> 18)));
		out_byte(o, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
		out_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		out_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

static bool
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

static int
b64value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/*
 * Decode one shift sequence starting after '&' at in[*pos] (which is not '-'). On success
 * *pos is just past the closing '-'.
 */
static int
decode_run(const unsigned char *in, size_t len, size_t *pos, unsigned int flags,
    struct out *o)
{
	uint32_t bits = 0, high = 0;
	unsigned int nbits = 0;
	size_t i = *pos;

	for (;;) {
		if (i >= len)
			return -EINVAL;		/* unterminated */
		if (in[i] == '-')
			break;
		int v = b64value(in[i]);
		if (v < 0)
			return -EINVAL;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		i++;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (high != 0)
				return -EINVAL;
			high = u;
			continue;
		}
		uint32_t cp;
		if (u >= 0xdc00 && u <= 0xdfff) {
			if (high == 0)
				return -EINVAL;
			cp = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
			high = 0;
		} else {
			if (high != 0)
				return -EINVAL;
			cp = u;
		}
		/* Printable ASCII, '&' included, must represent itself. */
		if (cp == 0 || (cp >= 0x20 && cp <= 0x7e))
			return -EINVAL;
		if ((flags & MUTF7_NO_CONTROLS) && is_control(cp))
			return -EINVAL;
		out_utf8(o, cp);
	}
	/*
	 * A minimal encoding leaves fewer than 6 bits over, all zero; a lone high surrogate or
	 * an empty run (only "&-", handled by the caller, may be empty) is invalid.
	 */
	if (high != 0 || nbits >= 6 || bits != 0 || i == *pos)
		return -EINVAL;
	*pos = i + 1;
	return 0;
}

int
mutf7_decode(const char *in_, size_t len, unsigned int flags, char *out, size_t size,
    size_t *len_r)
{
	const unsigned char *in = (const unsigned char *)in_;
	struct out o = { out, size, 0, false };
	bool after_run = false;
	size_t i = 0;

	if (out != NULL && size == 0)
		return -ENOSPC;
	while (i < len) {
		unsigned char c = in[i];

		if (c < 0x20 || c > 0x7e)
			return -EINVAL;
		if (c != '&') {
			out_byte(&o, c);
			after_run = false;
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			out_byte(&o, '&');
			after_run = false;
			i++;
			continue;
		}
		/* "&AOk-&AOk-" is not minimal: an encoder writes one run. */
		if (after_run)
			return -EINVAL;
		int r = decode_run(in, len, &i, flags, &o);
		if (r < 0)
			return r;
		after_run = true;
	}
	return out_finish(&o, len_r);
}

int
mutf7_check(const char *in, size_t len, unsigned int flags)
{
	return mutf7_decode(in, len, flags, NULL, 0, NULL);
}

/*
 * Read one UTF-8 character at in[*pos], strictly (RFC 3629 section 4).
 * Returns the code point or -1.
 */
static int32_t
utf8_next(const unsigned char *in, size_t len, size_t *pos)
{
	size_t i = *pos;
	unsigned char c = in[i];
	uint32_t cp;
	unsigned int n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80) {
		*pos = i + 1;
		return c;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (c == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;		/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;		/* above U+10FFFF */
	} else {
		return -1;
	}
	if (len - i - 1 < n)
		return -1;
	for (unsigned int k = 1; k <= n; k++) {
		unsigned char b = in[i + k];
		if (b < lo || b > hi)
			return -1;
		lo = 0x80;
		hi = 0xbf;
		cp = (cp << 6) | (b & 0x3f);
	}
	*pos = i + 1 + n;
	return (int32_t)cp;
}

struct enc {
	struct out *o;
	uint32_t bits;
	unsigned int nbits;
	bool open;
};

static void
enc_unit(struct enc *e, uint32_t u)
{
	e->bits = (e->bits << 16) | u;
	e->nbits += 16;
	while (e->nbits >= 6) {
		e->nbits -= 6;
		out_byte(e->o, (unsigned char)b64chars[(e->bits >> e->nbits) & 0x3f]);
	}
	e->bits &= (1u << e->nbits) - 1;
}

static void
enc_close(struct enc *e)
{
	if (!e->open)
		return;
	if (e->nbits > 0)
		out_byte(e->o, (unsigned char)b64chars[(e->bits << (6 - e->nbits)) & 0x3f]);
	out_byte(e->o, '-');
	e->bits = 0;
	e->nbits = 0;
	e->open = false;
}

int
mutf7_encode(const char *in_, size_t len, unsigned int flags, char *out, size_t size,
    size_t *len_r)
{
	const unsigned char *in = (const unsigned char *)in_;
	struct out o = { out, size, 0, false };
	struct enc e = { &o, 0, 0, false };
	size_t i = 0;

	if (out != NULL && size == 0)
		return -ENOSPC;
	while (i < len) {
		int32_t c = utf8_next(in, len, &i);

		if (c <= 0)
			return -EINVAL;
		uint32_t cp = (uint32_t)c;
		if ((flags & MUTF7_NO_CONTROLS) && is_control(cp))
			return -EINVAL;
		if (cp >= 0x20 && cp <= 0x7e) {
			enc_close(&e);
			out_byte(&o, (unsigned char)cp);
			if (cp == '&')
				out_byte(&o, '-');
			continue;
		}
		if (!e.open) {
			out_byte(&o, '&');
			e.open = true;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			enc_unit(&e, 0xd800 + (cp >> 10));
			enc_unit(&e, 0xdc00 + (cp & 0x3ff));
		} else {
			enc_unit(&e, cp);
		}
	}
	enc_close(&e);
	return out_finish(&o, len_r);
}
