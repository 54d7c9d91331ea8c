/*
 * condstore.c: what CONDSTORE and QRESYNC (RFC 7162) add to the selected state, shared by
 * SELECT, FETCH, STORE, SEARCH, EXPUNGE and the reporting of others' changes: the
 * enabling, mod-sequence arguments, UID sets written compactly, VANISHED (EARLIER).
 * The mod-sequences themselves are the store's (mbox/mbox-modseq.c).
 */
#include "imapd/condstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/log.h"
#include "imapd/resp.h"

bool
condstore_offered(const struct session *s)
{
	return s->cfg->condstore != 0;
}

bool
condstore_parse_modseq(const struct imap_arg *a, bool zero_ok, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	/* mod-sequence-value: 1*DIGIT, a positive 63-bit number (RFC 7162 7);
	 * mod-sequence-valzer: "0" as well */
	if (a == NULL || a->type != ARG_ATOM || a->len == 0 || a->len > 19)
		return false;
	for (i = 0; i < a->len; i++) {
		if (a->str[i] < '0' || a->str[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(a->str[i] - '0');
	}
	if (v > INT64_MAX || (v == 0 && !zero_ok))
		return false;
	*v_r = v;
	return true;
}

void
condstore_enable(struct session *s)
{
	struct selected *sel = s->selected;

	if (s->condstore)
		return;
	s->condstore = true;
	/* 3.1: the first enabling command with a mailbox selected is told its
	 * HIGHESTMODSEQ (or NOMODSEQ: 3.1.2.2) */
	if (sel != NULL)
		condstore_write_highest(s);
}

void
condstore_write_highest(struct session *s)
{
	struct selected *sel = s->selected;

	if (!mbox_has_modseq(sel->mb))
		resp_untagged(s, "OK [NOMODSEQ] No mod-sequences for this mailbox");
	else
		resp_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
		    (unsigned long long)mbox_highest_modseq(sel->mb));
}

void
condstore_write_uid_set(struct session *s, const uint32_t *v, size_t n)
{
	size_t i = 0;
	const char *sep = "";

	while (i < n) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (j == i)
			resp_printf(s, "%s%u", sep, v[i]);
		else
			resp_printf(s, "%s%u:%u", sep, v[i], v[j]);
		sep = ",";
		i = j + 1;
	}
}

char *
condstore_uid_set_str(const uint32_t *v, size_t n)
{
	/* at most 22 bytes a range ("4294967294:4294967295,") */
	size_t cap = n * 22 + 1, len = 0, i = 0;
	char *out = malloc(cap);

	if (out == NULL)
		fatalx("out of memory");
	out[0] = '\0';
	while (i < n) {
		size_t j = i;
		int w;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (j == i)
			w = snprintf(out + len, cap - len, "%s%u", len ? "," : "", v[i]);
		else
			w = snprintf(out + len, cap - len, "%s%u:%u", len ? "," : "", v[i], v[j]);
		len += (size_t)w;
		i = j + 1;
	}
	return out;
}

/* A growing array of UIDs. */
struct uidv {
	uint32_t *v;
	size_t n, cap;
};

static void
uidv_push(struct uidv *u, uint32_t x)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		uint32_t *nv = realloc(u->v, cap * sizeof(*nv));

		if (nv == NULL)
			fatalx("out of memory");
		u->v = nv;
		u->cap = cap;
	}
	u->v[u->n++] = x;
}

/* Write "lo:hi" ranges of the UIDs in [lo, hi] that the mailbox does not hold. */
struct ranges_out {
	struct session *s;
	const char *sep;
	bool any;
	unsigned long ranges;
};

static void
put_range(struct ranges_out *o, uint32_t lo, uint32_t hi)
{
	if (!o->any)
		resp_printf(o->s, "* VANISHED (EARLIER) ");
	o->any = true;
	if (lo == hi)
		resp_printf(o->s, "%s%u", o->sep, lo);
	else
		resp_printf(o->s, "%s%u:%u", o->sep, lo, hi);
	o->sep = ",";
	o->ranges++;
}

static void
complement(struct ranges_out *o, const struct mbox *mb, uint32_t lo, uint32_t hi)
{
	uint32_t i = mbox_uid_rank(mb, lo), n = mbox_count(mb), at = lo;

	for (; i < n && at <= hi; i++) {
		uint32_t u = mbox_msg_uid(mb, i);

		if (u > hi)
			break;
		if (u > at)
			put_range(o, at, u - 1);
		if (u == UINT32_MAX)
			return;
		at = u + 1;
	}
	if (at <= hi && at != 0)
		put_range(o, at, hi);
}

int
condstore_vanished_earlier(struct session *s, const struct seqset *uids, uint64_t since,
    uint32_t above)
{
	struct selected *sel = s->selected;
	struct mbox *mb = sel->mb;
	struct ranges_out o = { s, "", false, 0 };
	uint32_t *gone = NULL, top = mbox_uidnext(mb) - 1, star;
	size_t ngone = 0, k, g;
	int all = 1;

	if (top == 0)
		return 0;	/* no UID was ever given out */
	star = mbox_count(mb) > 0 ? mbox_msg_uid(mb, mbox_count(mb) - 1) : top;
	if (mbox_expunged_since(mb, since, &gone, &ngone, &all) < 0)
		return -1;
	for (k = 0; k < uids->n; k++) {
		uint64_t lo = uids->r[k].lo == SEQ_STAR ? star : uids->r[k].lo;
		uint64_t hi = uids->r[k].hi == SEQ_STAR ? star : uids->r[k].hi;

		if (lo > hi) {
			uint64_t t = lo;

			lo = hi;
			hi = t;
		}
		if (lo <= above)
			lo = (uint64_t)above + 1;
		if (hi > top)
			hi = top;	/* UIDs never given out: none to tell */
		if (lo > hi)
			continue;
		if (all) {
			complement(&o, mb, (uint32_t)lo, (uint32_t)hi);
			continue;
		}
		/* the tombstones in the range (ascending; ranges may overlap: the client's set
		 * is taken as it came, and a UID told twice does no harm) */
		for (g = 0; g < ngone; g++)
			if (gone[g] >= lo && gone[g] <= hi) {
				uint32_t a = gone[g];

				while (g + 1 < ngone && gone[g + 1] == gone[g] + 1 &&
				    gone[g + 1] <= hi)
					g++;
				put_range(&o, a, gone[g]);
			}
	}
	free(gone);
	if (o.any)
		resp_crlf(s);
	return 0;
}

void
condstore_write_vanished(struct session *s, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	resp_printf(s, "* VANISHED ");
	condstore_write_uid_set(s, uids, n);
	resp_crlf(s);
}

/* Collect, for SELECT (QRESYNC), the highest UID up to which the client's seq-match-data
 * agrees with the mailbox (RFC 7162 3.2.5.2): 0 when none does. */
static uint32_t
match_data(const struct mbox *mb, const struct seqset *seqs, const struct seqset *uids)
{
	struct uidv a = { 0 }, b = { 0 };
	size_t k, i;
	uint32_t last = 0;

	for (k = 0; k < seqs->n; k++)
		for (uint64_t x = seqs->r[k].lo; x <= seqs->r[k].hi && x < SEQ_STAR && a.n < 100000;
		    x++)
			uidv_push(&a, (uint32_t)x);
	for (k = 0; k < uids->n; k++)
		for (uint64_t x = uids->r[k].lo; x <= uids->r[k].hi && x < SEQ_STAR && b.n < 100000;
		    x++)
			uidv_push(&b, (uint32_t)x);
	for (i = 0; i < a.n && i < b.n; i++) {
		uint32_t seq = a.v[i];

		if (seq == 0 || seq > mbox_count(mb) || mbox_msg_uid(mb, seq - 1) != b.v[i])
			break;
		last = b.v[i];
	}
	free(a.v);
	free(b.v);
	return last;
}

int
condstore_qresync_parse(const struct imap_arg *a, struct qresync_args *q)
{
	const struct imap_arg *p;

	memset(q, 0, sizeof(*q));
	/* "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" */
	if (a == NULL || a->type != ARG_LIST || (p = a->list) == NULL)
		return -1;
	{
		uint64_t v;

		if (!condstore_parse_modseq(p, false, &v) || v > UINT32_MAX)
			return -1;
		q->uidvalidity = (uint32_t)v;
	}
	p = p->next;
	if (!condstore_parse_modseq(p, false, &q->modseq))
		return -1;
	p = p->next;
	if (p != NULL && p->type == ARG_ATOM) {
		if (!seqset_parse(p->str, &q->known))
			return -1;
		q->has_known = true;
		p = p->next;
	}
	if (p != NULL) {
		const struct imap_arg *s1, *s2;

		if (p->type != ARG_LIST || (s1 = p->list) == NULL || (s2 = s1->next) == NULL ||
		    s2->next != NULL || s1->type != ARG_ATOM || s2->type != ARG_ATOM ||
		    p->next != NULL)
			goto bad;
		if (!seqset_parse(s1->str, &q->match_seq))
			goto bad;
		if (!seqset_parse(s2->str, &q->match_uid))
			goto bad;
		q->has_match = true;
	}
	return 0;
bad:
	condstore_qresync_clear(q);
	return -1;
}

void
condstore_qresync_clear(struct qresync_args *q)
{
	seqset_clear(&q->known);
	seqset_clear(&q->match_seq);
	seqset_clear(&q->match_uid);
}

int
condstore_qresync(struct session *s, const struct qresync_args *q)
{
	struct selected *sel = s->selected;
	struct mbox *mb = sel->mb;
	struct seqset def = { 0 };
	struct seq_range whole;
	const struct seqset *known = &q->known;
	uint32_t above = 0, i, n = mbox_count(mb), star;

	/* 3.2.5: another UIDVALIDITY, or no mod-sequences: nothing more is said */
	if (q->uidvalidity != mbox_uidvalidity(mb) || !mbox_has_modseq(mb))
		return 0;
	if (!q->has_known) {
		/* 3.2.5.1: "1:<maxuid>" */
		if (mbox_uidnext(mb) <= 1)
			return 0;
		whole.lo = 1;
		whole.hi = mbox_uidnext(mb) - 1;
		def.r = &whole;
		def.n = 1;
		known = &def;
	}
	if (q->has_match)
		above = match_data(mb, &q->match_seq, &q->match_uid);
	if (condstore_vanished_earlier(s, known, q->modseq, above) < 0)
		return -1;
	star = n > 0 ? mbox_msg_uid(mb, n - 1) : 0;
	for (i = mbox_next_changed(mb, 0, q->modseq); i < n && i < sel->exists;
	    i = mbox_next_changed(mb, i + 1, q->modseq)) {
		uint32_t uid = mbox_msg_uid(mb, i);

		if (!seqset_contains(known, uid, star))
			continue;
		resp_printf(s, "* %u FETCH (UID %u FLAGS ", i + 1, uid);
		selected_write_flags(s, mb, i);
		resp_printf(s, " MODSEQ (%llu))\r\n", (unsigned long long)mbox_msg_modseq(mb, i));
	}
	return 0;
}
