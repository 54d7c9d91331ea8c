/*
 * LIST/LSUB pattern matching (RFC 3501 6.3.8).
 *
 * The pattern is run as an NFA whose states are pattern positions ("the first i pattern
 * elements have matched"), simulated with bit sets, Shift-And style: one step per name byte
 * costs O(pattern length / 64), so no pattern (say "*a*a*a*a*b") can make matching
 * exponential, and a tree walk can carry the state down directory levels and prune
 * branches where no continuation can match.
 *
 * Runs of wildcards are collapsed first ("**" and "*%" are "*", "%%" is "%"), which leaves
 * no two wildcards adjacent; the empty-match closure is then a single shift.
 */
#include "mbox/folder.h"
#include "mbox/folder-int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#define PWORDS ((FOLDER_PATTERN_MAX + 1 + 63) / 64)

struct folder_pattern {
	char *text;		/* combined reference + pattern, as given */
	size_t textlen;
	size_t m;		/* number of elements after collapsing */
	size_t words;		/* 64-bit words per state set: (m + 1 + 63) / 64 */
	uint64_t star[PWORDS];	/* bit i: element i is '*' */
	uint64_t pct[PWORDS];	/* bit i: element i is '%' */
	uint64_t wild[PWORDS];	/* star | pct */
	/* literal masks: bit i of lit[cls[c]] set if element i is the byte c */
	unsigned char cls[256];
	size_t nclasses;
	uint64_t (*lit)[PWORDS];
};

struct folder_pstate {
	const struct folder_pattern *pat;
	uint64_t d[PWORDS];
};

static void
setbit(uint64_t *v, size_t i)
{
	v[i / 64] |= (uint64_t)1 << (i % 64);
}

enum folder_status
folder_pattern_new(const char *ref, size_t reflen, const char *pat, size_t patlen,
    struct folder_pattern **pat_r, struct folder_error *err_r)
{
	struct folder_pattern *p;

	*pat_r = NULL;
	/* A pattern starting with the delimiter is not relative to the reference. */
	if (patlen > 0 && pat[0] == FOLDER_DELIM)
		reflen = 0;
	if (reflen > FOLDER_PATTERN_MAX || patlen > FOLDER_PATTERN_MAX - reflen)
		return folder_fail(err_r, FOLDER_ETOOLONG, 0, "pattern too long");
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	p->textlen = reflen + patlen;
	p->text = malloc(p->textlen + 1);
	if (p->text == NULL) {
		free(p);
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	}
	if (reflen > 0)
		memcpy(p->text, ref, reflen);
	if (patlen > 0)
		memcpy(p->text + reflen, pat, patlen);
	p->text[p->textlen] = '\0';

	/* First pass: collapse wildcard runs and number the literal bytes. */
	unsigned char *elem = malloc(p->textlen + 1);
	unsigned char *kind = malloc(p->textlen + 1);	/* 0 literal, '*', '%' */
	if (elem == NULL || kind == NULL) {
		free(elem);
		free(kind);
		folder_pattern_free(&p);
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	}
	size_t m = 0;
	for (size_t i = 0; i < p->textlen; i++) {
		unsigned char c = (unsigned char)p->text[i];
		if (c == '*' || c == '%') {
			if (m > 0 && kind[m - 1] != 0) {
				if (c == '*')
					kind[m - 1] = '*';
				continue;
			}
			kind[m] = c;
			elem[m++] = c;
			continue;
		}
		kind[m] = 0;
		elem[m++] = c;
		if (p->cls[c] == 0)
			p->cls[c] = (unsigned char)++p->nclasses;
	}
	p->m = m;
	p->words = (m + 1 + 63) / 64;
	p->lit = calloc(p->nclasses + 1, sizeof(*p->lit));
	if (p->lit == NULL) {
		free(elem);
		free(kind);
		folder_pattern_free(&p);
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < m; i++) {
		if (kind[i] == '*')
			setbit(p->star, i);
		else if (kind[i] == '%')
			setbit(p->pct, i);
		else
			setbit(p->lit[p->cls[elem[i]]], i);
	}
	for (size_t w = 0; w < p->words; w++)
		p->wild[w] = p->star[w] | p->pct[w];
	free(elem);
	free(kind);
	*pat_r = p;
	return FOLDER_OK;
}

void
folder_pattern_free(struct folder_pattern **patp)
{
	struct folder_pattern *p = *patp;

	if (p == NULL)
		return;
	free(p->text);
	free(p->lit);
	free(p);
	*patp = NULL;
}

const char *
folder_pattern_text(const struct folder_pattern *pat, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = pat->textlen;
	return pat->text;
}

/* d |= (d & wild) << 1: wildcards may match nothing. */
static void
closure(const struct folder_pattern *p, uint64_t *d)
{
	uint64_t carry = 0;

	for (size_t w = 0; w < p->words; w++) {
		uint64_t x = d[w] & p->wild[w];
		uint64_t shifted = (x << 1) | carry;
		carry = x >> 63;
		d[w] |= shifted;
	}
}

static void
start(const struct folder_pattern *p, uint64_t *d)
{
	memset(d, 0, sizeof(uint64_t) * PWORDS);
	d[0] = 1;
	closure(p, d);
}

static unsigned char
fold_other(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return (unsigned char)(c - 'a' + 'A');
	if (c >= 'A' && c <= 'Z')
		return (unsigned char)(c - 'A' + 'a');
	return c;
}

static void
step(const struct folder_pattern *p, uint64_t *d, unsigned char c, bool fold)
{
	const uint64_t *l1 = p->lit[p->cls[c]];
	const uint64_t *l2 = fold ? p->lit[p->cls[fold_other(c)]] : l1;
	uint64_t carry = 0;
	bool slash = c == FOLDER_DELIM;

	for (size_t w = 0; w < p->words; w++) {
		uint64_t adv = d[w] & (l1[w] | l2[w]);
		uint64_t stay = d[w] & p->star[w];
		if (!slash)
			stay |= d[w] & p->pct[w];
		d[w] = (adv << 1) | carry | stay;
		carry = adv >> 63;
	}
	closure(p, d);
}

static bool
accepts(const struct folder_pattern *p, const uint64_t *d)
{
	return (d[p->m / 64] >> (p->m % 64)) & 1;
}

bool
folder_pattern_match(const struct folder_pattern *pat, const char *name, size_t len,
    bool fold)
{
	uint64_t d[PWORDS];

	start(pat, d);
	for (size_t i = 0; i < len; i++)
		step(pat, d, (unsigned char)name[i], fold);
	return accepts(pat, d);
}

struct folder_pstate *
folder_pstate_new(const struct folder_pattern *pat)
{
	struct folder_pstate *st = malloc(sizeof(*st));

	if (st == NULL)
		return NULL;
	st->pat = pat;
	start(pat, st->d);
	return st;
}

void
folder_pstate_free(struct folder_pstate **stp)
{
	free(*stp);
	*stp = NULL;
}

void
folder_pstate_copy(struct folder_pstate *dst, const struct folder_pstate *src)
{
	memcpy(dst, src, sizeof(*dst));
}

void
folder_pstate_feed(struct folder_pstate *st, const char *text, size_t len, bool fold)
{
	for (size_t i = 0; i < len; i++)
		step(st->pat, st->d, (unsigned char)text[i], fold);
}

bool
folder_pstate_accepts(const struct folder_pstate *st)
{
	return accepts(st->pat, st->d);
}

bool
folder_pstate_dead(const struct folder_pstate *st)
{
	for (size_t w = 0; w < st->pat->words; w++)
		if (st->d[w] != 0)
			return false;
	return true;
}

bool
folder_pattern_match_inbox(const struct folder_pattern *pat)
{
	bool fold = pat->textlen >= 5 && strncasecmp(pat->text, "INBOX", 5) == 0;

	return folder_pattern_match(pat, "INBOX", 5, fold);
}
