/*
 * message-sort.c: sort and thread keys of one message (RFC 5256, RFC 5051, RFC 5957).
 */
#include "mbox/message-sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mbox/address.h"
#include "mbox/casemap-table.h"

/* ---- RFC 5051 i;unicode-casemap ---- */

/* The code point at s[*i] (valid UTF-8 only: no overlong forms, surrogates or values above
 * U+10FFFF); -1 when the bytes there are not one. */
static long
utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	size_t n, k;
	uint32_t cp, min;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i <= n)
		return -1;
	for (k = 1; k <= n; k++) {
		unsigned char d = s[*i + k];

		if ((d & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (d & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return (long)cp;
}

static bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (utf8_next(s, len, &i) < 0)
			return false;
	}
	return true;
}

static size_t
utf8_put(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The table entry of cp, or -1. */
static long
casemap_find(uint32_t cp)
{
	size_t lo = 0, hi = CASEMAP_N;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (casemap_cp[mid] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < CASEMAP_N && casemap_cp[lo] == cp ? (long)lo : -1;
}

/* Hangul syllables decompose by arithmetic (Unicode 3.12): L V, or L V T. */
#define HANGUL_S	0xac00u
#define HANGUL_L	0x1100u
#define HANGUL_V	0x1161u
#define HANGUL_T	0x11a7u
#define HANGUL_NV	21u
#define HANGUL_NT	28u
#define HANGUL_NS	11172u

void
sort_casemap(const char *str, size_t len, struct dbuf *out)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char tmp[256];
	size_t i = 0, n = 0;

	if (!utf8_valid(s, len)) {
		dbuf_add(out, str, len);
		return;
	}
	while (i < len) {
		long cp, e;

		if (n + 16 > sizeof(tmp)) {
			dbuf_add(out, tmp, n);
			n = 0;
		}
		if (s[i] < 0x80) {
			unsigned char c = s[i++];

			tmp[n++] = c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
			continue;
		}
		cp = utf8_next(s, len, &i);
		if ((uint32_t)cp - HANGUL_S < HANGUL_NS) {
			uint32_t si = (uint32_t)cp - HANGUL_S;

			n += utf8_put(HANGUL_L + si / (HANGUL_NV * HANGUL_NT), tmp + n);
			n += utf8_put(HANGUL_V + si % (HANGUL_NV * HANGUL_NT) / HANGUL_NT, tmp + n);
			if (si % HANGUL_NT != 0)
				n += utf8_put(HANGUL_T + si % HANGUL_NT, tmp + n);
		} else if ((e = casemap_find((uint32_t)cp)) >= 0) {
			size_t a = casemap_at[e], b = casemap_at[e + 1];

			if (n + (b - a) > sizeof(tmp)) {
				dbuf_add(out, tmp, n);
				n = 0;
			}
			memcpy(tmp + n, casemap_pool + a, b - a);
			n += b - a;
		} else {
			n += utf8_put((uint32_t)cp, tmp + n);
		}
	}
	dbuf_add(out, tmp, n);
}

/* ---- RFC 5256 2.1 base subject ---- */

/* The end of the subj-blob at p ("[" *BLOBCHAR "]" *WSP), or NULL if there is none. */
static const char *
blob_end(const char *p, const char *e)
{
	if (p >= e || *p != '[')
		return NULL;
	for (p++; p < e && *p != ']'; p++) {
		if (*p == '[')
			return NULL;
	}
	if (p >= e)
		return NULL;
	for (p++; p < e && *p == ' '; p++)
		;
	return p;
}

/* The end of the subj-refwd at p ("re" / "fw" ["d"], *WSP, [subj-blob], ":"), or NULL. */
static const char *
refwd_end(const char *p, const char *e)
{
	const char *q;

	if (e - p >= 2 && strncasecmp(p, "re", 2) == 0) {
		p += 2;
	} else if (e - p >= 2 && strncasecmp(p, "fw", 2) == 0) {
		p += 2;
		if (p < e && (*p == 'd' || *p == 'D'))
			p++;
	} else {
		return NULL;
	}
	while (p < e && *p == ' ')
		p++;
	if ((q = blob_end(p, e)) != NULL)
		p = q;
	return p < e && *p == ':' ? p + 1 : NULL;
}

void
sort_base_subject(const char *raw, size_t len, struct dbuf *out, bool *reply_r, bool *octet_r)
{
	struct dbuf d;
	const char *b, *e;
	char *w;
	size_t i, n = 0;
	bool reply = false;

	/* (1) decoded, every tab and line end a space, runs of spaces one */
	dbuf_init(&d, len * 4 + 16);
	*octet_r = !rfc2047_decode_known(raw, len, &d);
	w = d.data != NULL ? d.data : "";
	for (i = 0; i < d.len; i++) {
		char c = w[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && w[n - 1] == ' ')
			continue;
		w[n++] = c;
	}
	b = w;
	e = w + n;
	for (;;) {
		bool changed;

		/* (2) subj-trailer: WSP and "(fwd)" at the end */
		for (;;) {
			if (e > b && e[-1] == ' ') {
				e--;
			} else if (e - b >= 5 && strncasecmp(e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* (5): (3) and (4) until neither changes anything */
		do {
			changed = false;
			/* (3) subj-leader: WSP, or *subj-blob subj-refwd */
			for (;;) {
				const char *p = b, *q;

				if (b < e && *b == ' ') {
					b++;
					changed = true;
					continue;
				}
				while ((q = blob_end(p, e)) != NULL)
					p = q;
				if ((q = refwd_end(p, e)) == NULL)
					break;
				b = q;
				reply = true;
				changed = true;
			}
			/* (4) a subj-blob, when a non-empty subj-base is left after it; (3) then
			 * reaches the same refwd test as it just did, so the next blobs go too
			 * (one blob per pass made "[a][a]...x" quadratic) */
			{
				const char *q;

				while ((q = blob_end(b, e)) != NULL && q < e) {
					b = q;
					changed = true;
				}
			}
		} while (changed);
		/* (6) "[fwd:" subject "]" */
		if (e - b >= 6 && strncasecmp(b, "[fwd:", 5) == 0 && e[-1] == ']') {
			b += 5;
			e--;
			reply = true;
			continue;
		}
		break;
	}
	dbuf_add(out, b, (size_t)(e - b));
	dbuf_free(&d);
	*reply_r = reply;
}

/* ---- Message-IDs ---- */

/* Skips a comment starting at s[i] == '('; returns the index after it. */
static size_t
skip_comment(const char *s, size_t len, size_t i)
{
	unsigned depth = 0;

	for (; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* One byte of a normalized ID; false (nothing added) past SORT_MSGID_MAX bytes. */
static bool
id_add(struct dbuf *out, char c)
{
	return out->len < SORT_MSGID_MAX && dbuf_add(out, &c, 1);
}

bool
sort_next_msgid(const char *s, size_t len, size_t *pos, struct dbuf *out)
{
	size_t i = *pos;

	while (i < len) {
		size_t at = 0;
		bool ok = true, closed = false;

		if (s[i] == '(') {
			i = skip_comment(s, len, i);
			continue;
		}
		if (s[i] != '<') {
			i++;
			continue;
		}
		dbuf_reset(out);
		for (i++; i < len && !closed; ) {
			char c = s[i];

			if (c == '>') {
				closed = true;
				i++;
			} else if (c == '<') {
				break;		/* a new one starts: this one was not closed */
			} else if (c == '(') {
				i = skip_comment(s, len, i);
			} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				i++;		/* CFWS of the obsolete forms */
			} else if (c == '"') {
				for (i++; i < len && s[i] != '"'; i++) {
					if (s[i] == '\\' && i + 1 < len)
						i++;
					if (s[i] != '\r' && s[i] != '\n')
						ok = id_add(out, s[i]) && ok;
				}
				if (i < len)
					i++;
			} else {
				if (c == '@')
					at = out->len + 1;
				ok = id_add(out, c) && ok;
				i++;
			}
		}
		/* id-left "@" id-right, neither empty */
		if (closed && ok && at > 1 && at < out->len) {
			*pos = i;
			return true;
		}
	}
	*pos = len;
	return false;
}

uint64_t
sort_msgid_hash(const char *id, size_t len)
{
	const unsigned char *p = (const unsigned char *)id;
	uint64_t h = 0x6a09e667f3bcc908ULL ^ (len * 0x9e3779b97f4a7c15ULL), v;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdULL;
		h ^= h >> 31;
	}
	for (; len > 0; p++, len--)
		h = (h ^ *p) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h != 0 ? h : 1;
}

/* ---- one message's keys ---- */

void
sort_keys_buf_init(struct sort_keys_buf *b)
{
	dbuf_init(&b->strs, SIZE_MAX);
	dbuf_init(&b->tmp, SIZE_MAX);
	dbuf_init(&b->tmp2, SIZE_MAX);
}

void
sort_keys_buf_free(struct sort_keys_buf *b)
{
	dbuf_free(&b->strs);
	dbuf_free(&b->tmp);
	dbuf_free(&b->tmp2);
}

enum { F_DATE, F_SUBJECT, F_FROM, F_TO, F_CC, F_MSGID, F_IRT, F_REFS, F_COUNT };

static const char *const field_names[F_COUNT] = {
	"date", "subject", "from", "to", "cc", "message-id", "in-reply-to", "references"
};

/*
 * Adds a collated key to buf->strs, cut at SORT_KEY_MAX bytes; returns its length.  octet:
 * s holds text in a charset that could not be converted, which RFC 5051 2 (1)(b) compares
 * unchanged (i;octet).
 */
static uint16_t
add_key(struct sort_keys_buf *buf, const char *s, size_t len, bool octet)
{
	size_t n;

	dbuf_reset(&buf->tmp2);
	if (octet)
		dbuf_add(&buf->tmp2, s, len);
	else
		sort_casemap(s, len, &buf->tmp2);
	n = buf->tmp2.len < SORT_KEY_MAX ? buf->tmp2.len : SORT_KEY_MAX;
	dbuf_add(&buf->strs, buf->tmp2.data, n);
	return (uint16_t)n;
}

/* The From/To/Cc key (addr-mailbox of the first address, RFC 5256) and its DISPLAY value
 * (RFC 5957 3); disp may be -1 when not wanted. */
static void
address_keys(struct sort_keys_buf *buf, const struct msg_field *f, size_t off[], uint16_t lens[],
	     int key, int disp)
{
	struct addr_list al;
	const struct addr *a;

	off[key] = buf->strs.len;
	lens[key] = 0;
	if (disp >= 0) {
		off[disp] = buf->strs.len;
		lens[disp] = 0;
	}
	if (f == NULL)
		return;
	addr_parse(f->value, f->value_len, &al);
	if (al.n == 0) {
		addr_list_free(&al);
		return;
	}
	a = &al.v[0];
	if (a->mailbox != NULL)
		lens[key] = add_key(buf, a->mailbox, strlen(a->mailbox), false);
	if (disp >= 0) {
		bool octet = false;

		off[disp] = buf->strs.len;
		dbuf_reset(&buf->tmp);
		if (a->name != NULL)
			octet = !rfc2047_decode_known(a->name, strlen(a->name), &buf->tmp);
		if (buf->tmp.len == 0 && a->mailbox != NULL) {
			octet = false;
			dbuf_add(&buf->tmp, a->mailbox, strlen(a->mailbox));
			if (a->host != NULL) {
				dbuf_add(&buf->tmp, "@", 1);
				dbuf_add(&buf->tmp, a->host, strlen(a->host));
			}
		}
		if (buf->tmp.len > 0)
			lens[disp] = add_key(buf, buf->tmp.data, buf->tmp.len, octet);
	}
	addr_list_free(&al);
}

void
sort_keys_extract(const unsigned char *hdr, size_t len, msg_hide_fn *hide, void *hide_ctx,
		  struct sort_keys_buf *buf, struct sort_keys *k)
{
	struct msg_field fld[F_COUNT];
	bool have[F_COUNT] = { false };
	struct msg_hdr_iter it;
	struct msg_field f;
	size_t off[SORT_S_COUNT], pos, nrefs = 0, total = 0;
	unsigned found = 0;
	bool reply = false, octet = false;
	int j;

	memset(k, 0, sizeof(*k));
	dbuf_reset(&buf->strs);
	msg_hdr_iter_init(&it, hdr, len);
	while (found < F_COUNT && msg_hdr_next(&it, &f)) {
		if (hide != NULL && hide(f.name, f.name_len, hide_ctx))
			continue;
		for (j = 0; j < F_COUNT; j++) {
			if (!have[j] && msg_name_eq(f.name, f.name_len, field_names[j])) {
				have[j] = true;
				fld[j] = f;
				found++;
				break;
			}
		}
	}
	/* RFC 5256 2.2: the caller falls back to INTERNALDATE without SORT_K_DATE */
	if (have[F_DATE]) {
		time_t t;
		int tz;

		if (msg_date_parse(fld[F_DATE].value, fld[F_DATE].value_len, &t, &tz) == 0) {
			k->sent = (int64_t)t;
			k->flags |= SORT_K_DATE;
		}
	}
	off[SORT_S_SUBJECT] = 0;
	if (have[F_SUBJECT]) {
		dbuf_reset(&buf->tmp);
		sort_base_subject(fld[F_SUBJECT].value, fld[F_SUBJECT].value_len, &buf->tmp, &reply,
				  &octet);
		k->slen[SORT_S_SUBJECT] = add_key(buf, buf->tmp.data != NULL ? buf->tmp.data : "",
						  buf->tmp.len, octet);
		if (reply)
			k->flags |= SORT_K_REPLY;
	}
	address_keys(buf, have[F_FROM] ? &fld[F_FROM] : NULL, off, k->slen, SORT_S_FROM,
		     SORT_S_DISPLAYFROM);
	address_keys(buf, have[F_TO] ? &fld[F_TO] : NULL, off, k->slen, SORT_S_TO,
		     SORT_S_DISPLAYTO);
	address_keys(buf, have[F_CC] ? &fld[F_CC] : NULL, off, k->slen, SORT_S_CC, -1);
	if (have[F_MSGID]) {
		pos = 0;
		if (sort_next_msgid(fld[F_MSGID].value, fld[F_MSGID].value_len, &pos, &buf->tmp)) {
			k->msgid = sort_msgid_hash(buf->tmp.data, buf->tmp.len);
			k->flags |= SORT_K_MSGID;
		}
	}
	/*
	 * RFC 5256 REFERENCES: the References, else the first valid ID of In-Reply-To.  Of a
	 * list longer than SORT_MAX_REFS, the first (the thread's root) and the last ones (the
	 * closest ancestors): the ones between would only be dummies, which step 3 prunes.
	 * The last ones are kept in a ring at refs[1..] and put in order after.
	 */
	if (have[F_REFS]) {
		const size_t ring = SORT_MAX_REFS - 1;

		pos = 0;
		while (sort_next_msgid(fld[F_REFS].value, fld[F_REFS].value_len, &pos, &buf->tmp)) {
			uint64_t h = sort_msgid_hash(buf->tmp.data, buf->tmp.len);

			if (total == 0)
				buf->refs[0] = h;
			else
				buf->refs[1 + (total - 1) % ring] = h;
			total++;
		}
		nrefs = total < SORT_MAX_REFS ? total : SORT_MAX_REFS;
		if (total > SORT_MAX_REFS) {
			uint64_t r[SORT_MAX_REFS - 1];
			size_t s0 = (total - 1) % ring, x;

			for (x = 0; x < ring; x++)
				r[x] = buf->refs[1 + (s0 + x) % ring];
			memcpy(buf->refs + 1, r, sizeof(r));
		}
	}
	if (nrefs == 0 && have[F_IRT]) {
		pos = 0;
		if (sort_next_msgid(fld[F_IRT].value, fld[F_IRT].value_len, &pos, &buf->tmp)) {
			buf->refs[0] = sort_msgid_hash(buf->tmp.data, buf->tmp.len);
			nrefs = 1;
		}
	}
	k->refs = buf->refs;
	k->nrefs = (uint32_t)nrefs;
	for (j = 0; j < SORT_S_COUNT; j++)
		k->s[j] = (const unsigned char *)(buf->strs.data != NULL ? buf->strs.data : "") +
			  off[j];
}
