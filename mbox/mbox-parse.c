/* mbox-parse.c: From_ lines, message boundaries, metadata headers. */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/mman.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int
is_sp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
lc(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

struct tok {
	const unsigned char *p;
	size_t n;
};

static int
tok_is(const struct tok *t, const char *s)
{
	size_t i;

	if (t->n != strlen(s))
		return 0;
	for (i = 0; i < t->n; i++)
		if (lc(t->p[i]) != (unsigned char)s[i])
			return 0;
	return 1;
}

static int
month_of(const struct tok *t)
{
	static const char *const mon[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
	    "aug", "sep", "oct", "nov", "dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (tok_is(t, mon[i]))
			return i + 1;
	return 0;
}

static int
is_wday(const struct tok *t)
{
	static const char *const wd[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	int i;

	for (i = 0; i < 7; i++)
		if (tok_is(t, wd[i]))
			return 1;
	return 0;
}

static int
tok_num(const struct tok *t, size_t minlen, size_t maxlen, int *v)
{
	size_t i;
	int x = 0;

	if (t->n < minlen || t->n > maxlen)
		return 0;
	for (i = 0; i < t->n; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return 0;
		x = x * 10 + (t->p[i] - '0');
	}
	*v = x;
	return 1;
}

/* Zone names MDAs and old mailers write; anything else is read as local time. */
static int
zone_name(const struct tok *t, int *min_r)
{
	static const struct {
		const char *name;
		int min;
	} z[] = {
		{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 }, { "bst", 60 },
		{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
		{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
		{ "cet", 60 }, { "cest", 120 }, { "met", 60 }, { "mest", 120 },
		{ "eet", 120 }, { "eest", 180 }, { "jst", 540 },
	};
	size_t i;

	for (i = 0; i < sizeof(z) / sizeof(z[0]); i++)
		if (tok_is(t, z[i].name)) {
			*min_r = z[i].min;
			return 1;
		}
	return 0;
}

static int
is_alpha_tok(const struct tok *t)
{
	size_t i;

	if (t->n == 0 || t->n > 6)
		return 0;
	for (i = 0; i < t->n; i++)
		if (!((t->p[i] >= 'A' && t->p[i] <= 'Z') || (t->p[i] >= 'a' && t->p[i] <= 'z')))
			return 0;
	return 1;
}

static long
local_offset(int64_t naive, int64_t *cache_key, long *cache_off)
{
	/* The offset is constant within a wall-clock hour except at odd-zone transitions:
	 * cache by hour, so a mailbox of nearby dates costs few localtime calls. */
	int64_t key = naive / 3600;
	struct tm tm;
	time_t t;
	long off;

	if (cache_key != NULL && *cache_key == key)
		return *cache_off;
	t = (time_t)naive;
	if (localtime_r(&t, &tm) == NULL)
		return 0;
	t = (time_t)(naive - tm.tm_gmtoff);
	if (localtime_r(&t, &tm) == NULL)
		return 0;
	off = tm.tm_gmtoff;
	if (cache_key != NULL) {
		*cache_key = key;
		*cache_off = off;
	}
	return off;
}

#define FROM_MAX_TOKS 24

/*
 * "From SENDER WDAY MON DD HH:MM[:SS] [ZONE] YYYY [ZONE] [remote from HOST]": the sender
 * is everything before the first "WDAY MON" pair (it may be empty or contain spaces);
 * after the time, the year and zones come in either order (RFC 4155 and the variants of
 * procmail, postfix, exim, UUCP and old mailers).
 */
int
mbox_parse_from_line(const unsigned char *p, size_t len, int64_t *t_r, int *tz_r,
    int64_t *cache_key, long *cache_off)
{
	struct tok t[FROM_MAX_TOKS];
	size_t i = 5, nt = 0, k;
	int mon, day, hh, mm, ss = 0, year = -1, tz = 0, have_tz = 0, v;
	int64_t naive;

	if (len < 5 || memcmp(p, "From ", 5) != 0 || len > MBOX_FROM_LINE_MAX)
		return -1;
	if (len > 5 && p[len - 1] == '\r')
		len--;
	while (i < len && nt < FROM_MAX_TOKS) {
		while (i < len && is_sp(p[i]))
			i++;
		if (i >= len)
			break;
		t[nt].p = p + i;
		while (i < len && !is_sp(p[i]))
			i++;
		t[nt].n = (size_t)(p + i - t[nt].p);
		nt++;
	}
	for (k = 0; k + 3 < nt; k++)
		if (is_wday(&t[k]) && month_of(&t[k + 1]) != 0)
			break;
	if (k + 3 >= nt)
		return -1;
	mon = month_of(&t[k + 1]);
	if (!tok_num(&t[k + 2], 1, 2, &day) || day < 1 || day > 31)
		return -1;
	/* time: HH:MM or HH:MM:SS */
	{
		const struct tok *tt = &t[k + 3];
		struct tok a = { tt->p, 0 }, b, c;
		const unsigned char *c1 = memchr(tt->p, ':', tt->n), *c2;

		if (c1 == NULL)
			return -1;
		a.n = (size_t)(c1 - tt->p);
		b.p = c1 + 1;
		c2 = memchr(b.p, ':', (size_t)(tt->p + tt->n - b.p));
		b.n = (size_t)((c2 != NULL ? c2 : tt->p + tt->n) - b.p);
		if (!tok_num(&a, 1, 2, &hh) || !tok_num(&b, 2, 2, &mm) || hh > 23 || mm > 59)
			return -1;
		if (c2 != NULL) {
			c.p = c2 + 1;
			c.n = (size_t)(tt->p + tt->n - c.p);
			if (!tok_num(&c, 2, 2, &ss) || ss > 60)
				return -1;
		}
	}
	for (k += 4; k < nt; k++) {
		if (tok_is(&t[k], "remote"))
			break;
		if (year < 0 && tok_num(&t[k], 4, 4, &v)) {
			year = v;
			continue;
		}
		if ((t[k].p[0] == '+' || t[k].p[0] == '-') && t[k].n == 5) {
			struct tok d = { t[k].p + 1, 4 };

			if (tok_num(&d, 4, 4, &v) && v % 100 < 60 && v / 100 < 24) {
				tz = (v / 100) * 60 + v % 100;
				if (t[k].p[0] == '-')
					tz = -tz;
				have_tz = 1;
				continue;
			}
			return -1;
		}
		if (is_alpha_tok(&t[k])) {
			if (!have_tz && zone_name(&t[k], &v)) {
				tz = v;
				have_tz = 1;
			}
			continue;	/* unknown zone names ("DST", "MEZ") are allowed */
		}
		return -1;
	}
	if (year < 1970)
		return -1;
	naive = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 +
	    mm * 60 + ss;
	if (!have_tz)
		tz = (int)(local_offset(naive, cache_key, cache_off) / 60);
	*t_r = naive - (int64_t)tz * 60;
	*tz_r = tz;
	return 0;
}

int
mbox_is_from_line(const unsigned char *p, size_t len)
{
	int64_t t;
	int tz;

	return mbox_parse_from_line(p, len, &t, &tz, NULL, NULL) == 0;
}

/*
 * Count LF bytes not preceded by CR.  The LF count is a word-at-a-time loop (no call per
 * line); CRs are rare in mbox files, so they are found with memchr and corrected for.
 */
uint64_t
mbox_hash64(const unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ seed, v;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	for (; n > 0; p++, n--)
		h = (h ^ *p) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 29);
}

/* zlib's crc32 costs 150 ns a call on lines this short, twice per message of every full
 * parse */
uint32_t
mbox_msg_fp(const unsigned char *p, size_t n, uint64_t hdr_vsize)
{
	uint64_t h = mbox_hash64(p, n, hdr_vsize * 0xff51afd7ed558ccdULL ^ n);

	return (uint32_t)(h ^ (h >> 32));
}

uint64_t
mbox_count_bare_lf(const unsigned char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, lfs = ones * '\n';
	uint64_t count = 0;
	size_t i = 0;
	const unsigned char *q, *end = p + n;

	while (i + 64 <= n) {
		uint64_t acc = 0;
		int j;

		for (j = 0; j < 8; j++) {
			uint64_t w, x;

			memcpy(&w, p + i + (size_t)j * 8, 8);
			x = w ^ lfs;
			/* high bit set in each zero byte of x, exactly (no false positives) */
			x = ~(((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | x |
			    0x7f7f7f7f7f7f7f7fULL);
			acc += x >> 7;
		}
		/* acc holds per-byte counts of at most 8: fold the bytes */
		count += (acc * ones) >> 56;
		i += 64;
	}
	for (; i < n; i++)
		count += p[i] == '\n';
	for (q = p; (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
		if (q + 1 < end && q[1] == '\n')
			count--;
	return count;
}

int
msgvec_push(struct msgvec *v, const struct mbox_msg *m)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap < 64 ? 64 : v->cap + v->cap / 2;
		struct mbox_msg *nv;

		if (cap <= v->cap)
			return -1;
		if (v->map != NULL) {
			nv = malloc((size_t)cap * sizeof(*nv));
			if (nv == NULL)
				return -1;
			memcpy(nv, v->v, (size_t)v->n * sizeof(*nv));
			(void)munmap(v->map, v->map_len);
			v->map = NULL;
			v->map_len = 0;
		} else {
			nv = realloc(v->v, (size_t)cap * sizeof(*nv));
			if (nv == NULL)
				return -1;
		}
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = *m;
	return 0;
}

void
msgvec_free(struct msgvec *v)
{
	if (v->map != NULL)
		(void)munmap(v->map, v->map_len);
	else
		free(v->v);
	memset(v, 0, sizeof(*v));
}

int
mbox_meta_kind(const unsigned char *name, size_t len)
{
	static const struct {
		const char *name;
		int kind;
	} k[] = {
		{ "status", META_STATUS }, { "x-status", META_XSTATUS },
		{ "x-keywords", META_XKEYWORDS }, { "x-uid", META_XUID },
		{ "x-imapbase", META_XIMAPBASE }, { "x-imap", META_XIMAP },
		{ "content-length", META_CLEN },
	};
	size_t i, j;
	unsigned char c;

	if (len < 5 || len > 14)
		return 0;
	c = (unsigned char)lc(name[0]);
	if (c != 's' && c != 'x' && c != 'c')
		return 0;
	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		if (strlen(k[i].name) != len)
			continue;
		for (j = 0; j < len; j++)
			if (lc(name[j]) != (unsigned char)k[i].name[j])
				break;
		if (j == len)
			return k[i].kind;
	}
	return 0;
}

int
mbox_header_is_hidden(const char *name, size_t len)
{
	return mbox_meta_kind((const unsigned char *)name, len) != 0;
}

int
mbox_hdr_next(const unsigned char *map, uint64_t *pos, uint64_t end, struct hdr_line *l)
{
	uint64_t p = *pos, e;
	const unsigned char *nl;
	size_t i;

	if (p >= end)
		return 0;
	memset(l, 0, sizeof(*l));
	l->off = p;
	nl = memchr(map + p, '\n', (size_t)(end - p));
	e = nl != NULL ? (uint64_t)(nl - map) + 1 : end;
	if (map[p] == '\n' || (map[p] == '\r' && e - p == 2 && map[p + 1] == '\n')) {
		l->empty = 1;
		l->len = e - p;
		*pos = e;
		return 1;
	}
	for (i = 0; p + i < e && map[p + i] != ':' && map[p + i] != '\n'; i++)
		;
	if (p + i < e && map[p + i] == ':') {
		l->name_len = i;
		while (l->name_len > 0 && is_sp(map[p + l->name_len - 1]))
			l->name_len--;
		l->value_off = p + i + 1;
		l->value_len = e - l->value_off;
		while (l->value_len > 0 && (map[l->value_off + l->value_len - 1] == '\n' ||
		    map[l->value_off + l->value_len - 1] == '\r'))
			l->value_len--;
	}
	/* continuation lines belong to the field */
	while (e < end && is_sp(map[e])) {
		nl = memchr(map + e, '\n', (size_t)(end - e));
		e = nl != NULL ? (uint64_t)(nl - map) + 1 : end;
	}
	l->len = e - p;
	*pos = e;
	return 1;
}

static int
parse_u32(const unsigned char *p, size_t n, size_t *i, uint32_t *v)
{
	uint64_t x = 0;
	size_t start;

	while (*i < n && is_sp(p[*i]))
		(*i)++;
	start = *i;
	while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
		x = x * 10 + (uint64_t)(p[*i] - '0');
		if (x > UINT32_MAX)
			return -1;
		(*i)++;
	}
	if (*i == start)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* Keywords separated by spaces or commas (UW writes spaces, some tools commas); returns the
 * bit set of those known or added. */
static uint64_t
parse_keywords(struct mbox *mb, const unsigned char *p, size_t n, int add)
{
	uint64_t set = 0;
	size_t i = 0, s;

	for (;;) {
		while (i < n && (is_sp(p[i]) || p[i] == ','))
			i++;
		if (i >= n)
			break;
		s = i;
		while (i < n && !is_sp(p[i]) && p[i] != ',')
			i++;
		{
			int idx = mbox_keyword_lookup(mb, (const char *)p + s, i - s, add);

			if (idx >= 0)
				set |= 1ULL << idx;
		}
	}
	return set;
}

static int
parse_base(struct mbox *mb, const unsigned char *p, size_t n, struct mbox_base *base)
{
	size_t i = 0;

	if (parse_u32(p, n, &i, &base->uidvalidity) < 0 || base->uidvalidity == 0 ||
	    parse_u32(p, n, &i, &base->last_uid) < 0)
		return -1;
	base->found = 1;
	(void)parse_keywords(mb, p + i, n - i, 1);
	return 0;
}

/*
 * Parse one message's header [m->from_off + from_len, m->end): metadata, visible size,
 * body start.  first: the message begins the file (X-IMAPbase / X-IMAP count there only).
 * Returns 1 if it is the pseudo message.
 */
static int
parse_header(struct mbox *mb, struct mbox_msg *m, int first, struct mbox_base *base)
{
	const unsigned char *map = mb->map;
	uint64_t pos = m->from_off + m->from_len, vsize = 0;
	struct hdr_line l;
	int pseudo = 0, have_kw_base = 0, meta = 0;
	uint8_t fl = 0, st = 0;

	m->body_off = m->end;
	m->state |= MSG_NO_BLANK;
	m->hdr_plain = 0;
	while (mbox_hdr_next(map, &pos, m->end, &l)) {
		int kind;

		if (l.empty) {
			vsize += l.len + mbox_count_bare_lf(map + l.off, l.len);
			m->body_off = pos;
			m->state &= (uint8_t)~MSG_NO_BLANK;
			/* lines before an empty one end in LF: only the From_ line may not */
			m->hdr_plain = !meta && l.len == 1 &&
			    map[m->from_off + m->from_len - 1] == '\n';
			break;
		}
		kind = l.name_len > 0 ? mbox_meta_kind(map + l.off, l.name_len) : 0;
		if (kind == 0) {
			vsize += l.len + mbox_count_bare_lf(map + l.off, (size_t)l.len);
			continue;
		}
		meta = 1;
		{
			const unsigned char *v = map + l.value_off;
			size_t vn = (size_t)l.value_len, i;

			switch (kind) {
			case META_STATUS:
				for (i = 0; i < vn; i++) {
					if (v[i] == 'R')
						fl |= MBOX_SEEN;
					else if (v[i] == 'O')
						st |= MSG_STATUS_O;
				}
				break;
			case META_XSTATUS:
				for (i = 0; i < vn; i++) {
					if (v[i] == 'A')
						fl |= MBOX_ANSWERED;
					else if (v[i] == 'F')
						fl |= MBOX_FLAGGED;
					else if (v[i] == 'T')
						fl |= MBOX_DRAFT;
					else if (v[i] == 'D')
						fl |= MBOX_DELETED;
				}
				break;
			case META_XKEYWORDS:
				m->keywords |= parse_keywords(mb, v, vn, 1);
				break;
			case META_XUID:
				i = 0;
				if (!m->x_uid_ok && parse_u32(v, vn, &i, &m->x_uid) == 0)
					m->x_uid_ok = 1;
				break;
			case META_XIMAPBASE:
				if (first && !have_kw_base && base != NULL)
					have_kw_base = parse_base(mb, v, vn, base) == 0;
				break;
			case META_XIMAP:
				if (first && !have_kw_base && base != NULL) {
					have_kw_base = parse_base(mb, v, vn, base) == 0;
					pseudo = have_kw_base;
				}
				break;
			default:
				break;
			}
		}
	}
	m->hdr_vsize = vsize;
	m->flags = fl;
	m->disk_flags = fl;
	m->disk_keywords = m->keywords;
	m->state |= st;
	m->fp = mbox_msg_fp(map + m->from_off, m->from_len, vsize);
	return pseudo;
}

/*
 * The first "\nFrom " in p[0..n), or NULL: the hot loop of every full parse (it reads every
 * byte of the file).  With SSE2 (every x86-64), sixteen positions at a time are tested for
 * an LF followed by 'F', and only those are compared in full; elsewhere, memmem.
 */
static const unsigned char *
find_lf_from(const unsigned char *p, size_t n)
{
#if defined(__SSE2__)
	const __m128i lf = _mm_set1_epi8('\n'), f = _mm_set1_epi8('F');
	size_t i = 0;

	/* each step reads p[i .. i + 16] */
	while (i + 17 <= n) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
		unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, lf),
		    _mm_cmpeq_epi8(b, f)));

		while (mask != 0) {
			size_t at = i + (size_t)__builtin_ctz(mask);

			if (n - at >= 6 && memcmp(p + at + 2, "rom ", 4) == 0)
				return p + at;
			mask &= mask - 1;
		}
		i += 16;
	}
	return i < n ? memmem(p + i, n - i, "\nFrom ", 6) : NULL;
#else
	return memmem(p, n, "\nFrom ", 6);
#endif
}

/* The next From_ line after a blank line at or after p; returns its offset or size. */
static uint64_t
next_boundary(struct mbox *mb, uint64_t p, uint64_t *msg_end_r)
{
	const unsigned char *map = mb->map, *q;
	uint64_t size = mb->size;

	while (p < size) {
		uint64_t at, lend;
		const unsigned char *nl;

		q = find_lf_from(map + p, (size_t)(size - p));
		if (q == NULL)
			break;
		at = (uint64_t)(q - map);	/* the LF before "From " */
		p = at + 1;
		if (at >= 1 && map[at - 1] == '\n') {
			*msg_end_r = at;
		} else if (at >= 2 && map[at - 1] == '\r' && map[at - 2] == '\n') {
			*msg_end_r = at - 1;
		} else {
			continue;
		}
		nl = memchr(map + at + 1, '\n', (size_t)(size - at - 1) < MBOX_FROM_LINE_MAX + 1 ?
		    (size_t)(size - at - 1) : MBOX_FROM_LINE_MAX + 1);
		lend = nl != NULL ? (uint64_t)(nl - map) : size;
		if (mbox_parse_from_line(map + at + 1, (size_t)(lend - at - 1), &(int64_t){0},
		    &(int){0}, &mb->tz_cache_key, &mb->tz_cache_off) == 0)
			return at + 1;
	}
	/* last message: one trailing empty line is the separator, not content */
	if (size >= 2 && map[size - 1] == '\n' && map[size - 2] == '\n')
		*msg_end_r = size - 1;
	else if (size >= 4 && memcmp(map + size - 4, "\r\n\r\n", 4) == 0)
		*msg_end_r = size - 2;
	else
		*msg_end_r = size;
	return size;
}

int
mbox_scan(struct mbox *mb, uint64_t start, struct msgvec *out, struct mbox_base *base)
{
	const unsigned char *map = mb->map;
	uint64_t size = mb->size, p = start;
	int first = start == 0;

	if (base != NULL && first)
		memset(base, 0, sizeof(*base));
	while (p < size) {
		struct mbox_msg m;
		const unsigned char *nl;
		uint64_t lend, next, fl;
		size_t lim;

		memset(&m, 0, sizeof(m));
		lim = (size_t)(size - p) < MBOX_FROM_LINE_MAX + 1 ? (size_t)(size - p) :
		    MBOX_FROM_LINE_MAX + 1;
		nl = memchr(map + p, '\n', lim);
		lend = nl != NULL ? (uint64_t)(nl - map) : size;
		{
			int64_t t;
			int tz;

			if (mbox_parse_from_line(map + p, (size_t)(lend - p), &t, &tz,
			    &mb->tz_cache_key, &mb->tz_cache_off) < 0) {
				mbox_set_error(&mb->err, MBOX_ENOTMBOX,
				    "%s: no From_ line at offset %llu: not an mbox file", mb->path,
				    (unsigned long long)p);
				return -1;
			}
			m.date = t;
			m.tz_min = (int16_t)tz;
		}
		fl = (nl != NULL ? lend + 1 : size) - p;
		m.from_off = p;
		m.from_len = (uint16_t)fl;
		next = next_boundary(mb, p + fl - 1, &m.end);
		if (m.end < p + fl)
			m.end = p + fl;
		if (parse_header(mb, &m, first, base) && first) {
			base->pseudo = 1;
			base->pseudo_end = next;
		} else {
			m.body_bare_lf = mbox_count_bare_lf(map + m.body_off,
			    (size_t)(m.end - m.body_off));
			if (msgvec_push(out, &m) < 0) {
				mbox_set_error(&mb->err, ENOMEM, "out of memory");
				return -1;
			}
		}
		first = 0;
		p = next;
	}
	return 0;
}

void
mbox_assign_uids(struct msgvec *out, uint32_t from, uint32_t prev_uid, uint32_t last_uid,
    int base_ok, uint32_t *next_uid)
{
	uint32_t i;
	int trust = base_ok;

	for (i = from; i < out->n; i++) {
		struct mbox_msg *m = &out->v[i];
		uint32_t uid;
		uint8_t state;

		/* Once one message has no valid X-UID, every later one gets a new UID too:
		 * UIDs must ascend in file order (RFC 3501 2.3.1.1). */
		if (trust && m->x_uid_ok && m->x_uid > prev_uid && m->x_uid <= last_uid) {
			uid = m->x_uid;
			state = m->state | MSG_UID_STORED;
		} else {
			trust = 0;
			if (*next_uid <= prev_uid)
				*next_uid = prev_uid + 1;
			uid = (*next_uid)++;
			state = m->state & (uint8_t)~MSG_UID_STORED;
		}
		/* written only when they change: a view from the cache lies in a private
		 * mapping, where every page written is a page copied */
		if (m->uid != uid)
			m->uid = uid;
		if (m->state != state)
			m->state = state;
		prev_uid = uid;
	}
}

int
mbox_reparse_header(struct mbox *mb, struct mbox_msg *m, int first, struct mbox_base *base)
{
	const unsigned char *map = mb->map;
	int64_t t;
	int tz;

	if (m->from_len < 6 || map[m->from_off + m->from_len - 1] != '\n' ||
	    mbox_parse_from_line(map + m->from_off, (size_t)m->from_len - 1, &t, &tz,
	    &mb->tz_cache_key, &mb->tz_cache_off) < 0)
		return -1;
	m->keywords = 0;
	m->state = 0;
	m->x_uid_ok = 0;
	m->x_uid = 0;
	return parse_header(mb, m, first && m->from_off == 0, base);
}
