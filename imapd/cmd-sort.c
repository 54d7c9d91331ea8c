/*
 * cmd-sort.c: SORT and UID SORT (RFC 5256, with SORT=DISPLAY of RFC 5957 and the RETURN
 * options of ESORT, RFC 5267 3), THREAD and UID THREAD (RFC 5256: ORDEREDSUBJECT and
 * REFERENCES).
 *
 * The messages are found as SEARCH finds them (search-run.h); each one's keys come from the
 * sort cache (mbox/mbox-sortcache.h) or, when it has none for it, from its header, and are
 * added to the cache, which is written back once the answer is out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/command.h"
#include "imapd/resp.h"
#include "imapd/search-context.h"
#include "imapd/search-run.h"
#include "imapd/selected.h"
#include "imapd/sort-args.h"
#include "mbox/mbox-sortcache.h"
#include "mbox/message-sort.h"
#include "mbox/message-thread.h"

/* The array of messages found kept between commands, at most (about 29,000 messages). */
#define SORT_BUF_KEEP		(4u << 20)

static const struct {
	const char *name;
	enum skey key;
} sort_keys_table[] = {
	{ "ARRIVAL", K_ARRIVAL }, { "CC", K_CC }, { "DATE", K_DATE }, { "FROM", K_FROM },
	{ "SIZE", K_SIZE }, { "SUBJECT", K_SUBJECT }, { "TO", K_TO },
	{ "DISPLAYFROM", K_DISPLAYFROM }, { "DISPLAYTO", K_DISPLAYTO },
};

/* One message being sorted. */
struct sent {
	uint32_t idx;
	int64_t date;			/* sent date, INTERNALDATE when there is none */
	int64_t arrival;
	uint64_t size;
	struct sort_keys k;
};

struct sort_ctx {
	struct mbox_sortcache *sc;
	struct sort_keys_buf buf;
	uint32_t computed;		/* headers read because the cache had no keys */
	struct sent *v;			/* the messages found, in mailbox order */
	uint32_t n, cap;
};

/*
 * Under the read lock, for each message found: its keys, from the cache, or from its
 * header and then into the cache.
 */
static void
want_keys(void *ctx, struct selected *sel, uint32_t i, struct smsg *m)
{
	struct sort_ctx *c = ctx;
	uint32_t uid = mbox_msg_uid(sel->mb, i);
	const unsigned char *data;
	size_t len, hdr_len;
	struct sent *e;
	int tz;

	if (c->n == c->cap) {
		c->cap = c->cap == 0 ? 1024 : c->cap * 2;
		if ((c->v = realloc(c->v, c->cap * sizeof(*c->v))) == NULL)
			abort();
	}
	e = &c->v[c->n++];
	e->idx = i;
	e->arrival = (int64_t)mbox_msg_date(sel->mb, i, &tz);
	e->size = mbox_msg_size(sel->mb, i);
	/* the message's bytes are not touched when its keys are known */
	if (mbox_sortcache_get(c->sc, uid, e->size, &e->k))
		return;
	search_msg_bytes(m, &data, &len, &hdr_len);
	sort_keys_extract(data, hdr_len < len ? hdr_len : len, search_hide, NULL, &c->buf,
			  &e->k);
	mbox_sortcache_put(c->sc, uid, e->size, &e->k);
	c->computed++;
}

static struct mbox_sortcache *
sortcache(struct selected *sel)
{
	if (sel->sortcache == NULL)
		sel->sortcache = mbox_sortcache_open(sel->mb);
	else
		mbox_sortcache_refresh(sel->sortcache, sel->mb);
	return sel->sortcache;
}

/*
 * The keys of every message found, in mailbox order; NULL when the store failed (nothing
 * answered).  The array is the selection's (sel->sort_buf), kept for the next command
 * up to SORT_BUF_KEEP bytes (save_keys()): fresh pages cost the kernel a clearing each.
 */
static struct sent *
find_keys(struct session *s, const struct search_program *prog, struct search_hits *h)
{
	struct selected *sel = s->selected;
	struct sort_ctx c;
	struct sent *v;
	uint32_t j;
	int r;

	memset(&c, 0, sizeof(c));
	c.sc = sortcache(sel);
	c.v = sel->sort_buf;
	c.cap = (uint32_t)(sel->sort_buf_size / sizeof(*c.v));
	if (c.cap < sel->exists) {
		/* room for every message at once: no copying as it grows, no slack */
		free(c.v);
		c.cap = sel->exists;
		if ((c.v = malloc((size_t)c.cap * sizeof(*c.v))) == NULL)
			abort();
	}
	sort_keys_buf_init(&c.buf);
	r = search_exec(s, prog, want_keys, &c, h);
	sort_keys_buf_free(&c.buf);
	if (c.v == NULL && (c.v = calloc(1, sizeof(*c.v))) != NULL)
		c.cap = 1;
	if (c.v == NULL)
		abort();
	sel->sort_buf = v = c.v;
	sel->sort_buf_size = (size_t)c.cap * sizeof(*c.v);
	if (r < 0)
		return NULL;
	for (j = 0; j < c.n; j++) {
		/* keys added to the cache may have moved as it grew: take them all again */
		if (c.computed > 0 &&
		    !mbox_sortcache_get(c.sc, mbox_msg_uid(sel->mb, v[j].idx), v[j].size, &v[j].k))
			memset(&v[j].k, 0, sizeof(v[j].k));	/* not reached: just added */
		/* RFC 5256 2.2: without a usable Date, the INTERNALDATE */
		v[j].date = (v[j].k.flags & SORT_K_DATE) ? v[j].k.sent : v[j].arrival;
	}
	return v;
}

/* find_keys(), answering NO when the store failed (verb names the command). */
static struct sent *
find_sorted(struct command *cmd, const struct search_program *prog, const char *verb,
	    struct search_hits *h)
{
	struct sent *v = find_keys(cmd->s, prog, h);

	if (v == NULL)
		selected_store_failed(cmd, verb);
	return v;
}

/* After the answer: what was added to the cache goes to its file; a big array of messages
 * found is not kept (private memory stays per message only while a command runs). */
static void
save_keys(struct selected *sel)
{
	if (sel->sort_buf_size > SORT_BUF_KEEP) {
		free(sel->sort_buf);
		sel->sort_buf = NULL;
		sel->sort_buf_size = 0;
	}
	if (sel->sortcache != NULL && mbox_sortcache_added(sel->sortcache) > 0)
		mbox_sortcache_save(sel->sortcache, sel->mb);
}

static int
cmp_str(const struct sort_keys *a, const struct sort_keys *b, enum sort_str s)
{
	size_t la = a->slen[s], lb = b->slen[s], n = la < lb ? la : lb;
	int r = n > 0 ? memcmp(a->s[s], b->s[s], n) : 0;

	if (r != 0)
		return r;
	return la < lb ? -1 : la > lb;	/* "" before everything (RFC 5256 3) */
}

static int
cmp_one(const struct sent *a, const struct sent *b, enum skey key)
{
	switch (key) {
	case K_ARRIVAL:
		return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
	case K_DATE:
		return a->date < b->date ? -1 : a->date > b->date;
	case K_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case K_CC:
		return cmp_str(&a->k, &b->k, SORT_S_CC);
	case K_FROM:
		return cmp_str(&a->k, &b->k, SORT_S_FROM);
	case K_TO:
		return cmp_str(&a->k, &b->k, SORT_S_TO);
	case K_SUBJECT:
		return cmp_str(&a->k, &b->k, SORT_S_SUBJECT);
	case K_DISPLAYFROM:
		return cmp_str(&a->k, &b->k, SORT_S_DISPLAYFROM);
	case K_DISPLAYTO:
		return cmp_str(&a->k, &b->k, SORT_S_DISPLAYTO);
	}
	return 0;
}

static int
cmp_sent(const void *pa, const void *pb, void *ctx)
{
	const struct criteria *cr = ctx;
	const struct sent *a = pa, *b = pb;
	size_t i;

	for (i = 0; i < cr->n; i++) {
		int r = cmp_one(a, b, cr->c[i].key);

		if (r != 0)
			return cr->c[i].reverse ? -r : r;
	}
	/* RFC 5256 3: the implicit last criterion, sequence number, never reversed */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static const enum sort_str key_str[] = {
	[K_CC] = SORT_S_CC, [K_FROM] = SORT_S_FROM, [K_TO] = SORT_S_TO,
	[K_SUBJECT] = SORT_S_SUBJECT, [K_DISPLAYFROM] = SORT_S_DISPLAYFROM,
	[K_DISPLAYTO] = SORT_S_DISPLAYTO,
};

static bool
is_string_key(enum skey k)
{
	return k != K_ARRIVAL && k != K_DATE && k != K_SIZE;
}

/* A criterion's key as one unsigned number ordered as the key: a string's rank in the sort
 * cache when ranked, else its octets off..off+7 (zero-padded: a shorter string sorts
 * first, RFC 5256 3); a time or size as such. */
static uint64_t
key_code(const struct sent *e, const struct criterion *c, size_t off, bool ranked)
{
	uint64_t x = 0;
	size_t i;

	switch (c->key) {
	case K_ARRIVAL:
		x = (uint64_t)e->arrival ^ ((uint64_t)1 << 63);
		break;
	case K_DATE:
		x = (uint64_t)e->date ^ ((uint64_t)1 << 63);
		break;
	case K_SIZE:
		x = e->size;
		break;
	default:
		if (ranked) {
			x = e->k.rank[key_str[c->key]];
			break;
		}
		for (i = off; i < off + 8; i++) {
			x <<= 8;
			if (i < e->k.slen[key_str[c->key]])
				x |= e->k.s[key_str[c->key]][i];
		}
		break;
	}
	return c->reverse ? ~x : x;
}

struct code {
	uint64_t code;
	uint32_t pos;			/* into the messages found */
};

struct order {
	const struct sent *v;
	struct criteria *cr;
	struct code *a, *b;		/* scratch, one per message */
	uint32_t *ord;
	bool ranked;			/* every message's strings have ranks */
};

static int
cmp_pos(const void *pa, const void *pb, void *ctx)
{
	const struct order *o = ctx;

	return cmp_sent(&o->v[*(const uint32_t *)pa], &o->v[*(const uint32_t *)pb], o->cr);
}

/* Stable LSD radix sort of a[0..n) by code (b: scratch); returns where the result is. */
static struct code *
radix(struct code *a, struct code *b, uint32_t n)
{
	uint32_t (*count)[256] = calloc(8, sizeof(*count));
	uint32_t i;
	int d;

	if (count == NULL)
		abort();
	for (i = 0; i < n; i++) {
		for (d = 0; d < 8; d++)
			count[d][(a[i].code >> (8 * d)) & 0xff]++;
	}
	for (d = 0; d < 8; d++) {
		uint32_t sum = 0, k;
		struct code *tmp;

		if (n == 0 || count[d][(a[0].code >> (8 * d)) & 0xff] == n)
			continue;		/* one value in this octet: nothing moves */
		for (k = 0; k < 256; k++) {
			uint32_t c = count[d][k];

			count[d][k] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			b[count[d][(a[i].code >> (8 * d)) & 0xff]++] = a[i];
		tmp = a;
		a = b;
		b = tmp;
	}
	free(count);
	return a;
}

/*
 * ord[lo..hi) is in the order of the first criterion's octets before off, and a[lo..hi)
 * holds their codes at off: put each run of equal codes in its final order.  A long run of
 * a string key is sorted on its next 8 octets the same way; a short one, or one whose
 * strings end here, by the full comparison (further criteria, then the sequence number).
 */
static void
settle(struct order *o, uint32_t lo, uint32_t hi, size_t off)
{
	const struct criterion *c = &o->cr->c[0];
	uint32_t i, j, k;

	for (i = lo; i < hi; i = j) {
		bool longer = false;

		for (j = i + 1; j < hi && o->a[j].code == o->a[i].code; j++)
			;
		if (j - i < 2)
			continue;
		/* a lone time, size or ranked string: equal keys stay in mailbox order (the
		 * radix is stable) */
		if ((!is_string_key(c->key) || o->ranked) && o->cr->n == 1)
			continue;
		for (k = i; k < j && is_string_key(c->key) && !o->ranked; k++) {
			if (o->v[o->ord[k]].k.slen[key_str[c->key]] > off + 8)
				longer = true;
		}
		if (j - i < 64 || !longer) {
			qsort_r(o->ord + i, j - i, sizeof(*o->ord), cmp_pos, o);
			continue;
		}
		for (k = i; k < j; k++) {
			o->a[k].pos = o->ord[k];
			o->a[k].code = key_code(&o->v[o->ord[k]], c, off + 8, false);
		}
		if (radix(o->a + i, o->b + i, j - i) != o->a + i)
			memcpy(o->a + i, o->b + i, (j - i) * sizeof(*o->a));
		for (k = i; k < j; k++)
			o->ord[k] = o->a[k].pos;
		settle(o, i, j, off + 8);
	}
}

/*
 * The order of v[0..n) under cr, as positions into v: a radix sort on the first
 * criterion, stable so that equal keys stay in mailbox order (the implicit last criterion
 * of RFC 5256 3), then settle().
 */
static uint32_t *
sort_order(const struct sent *v, uint32_t n, struct criteria *cr)
{
	struct order o;
	uint32_t i;

	o.v = v;
	o.cr = cr;
	o.a = malloc((n > 0 ? n : 1) * sizeof(*o.a));
	o.b = malloc((n > 0 ? n : 1) * sizeof(*o.b));
	o.ord = malloc((n > 0 ? n : 1) * sizeof(*o.ord));
	if (o.a == NULL || o.b == NULL || o.ord == NULL)
		abort();
	o.ranked = true;
	for (i = 0; i < n && o.ranked; i++)
		o.ranked = v[i].k.rank != NULL;
	for (i = 0; i < n; i++) {
		o.a[i].code = key_code(&v[i], &cr->c[0], 0, o.ranked);
		o.a[i].pos = i;
	}
	if (radix(o.a, o.b, n) != o.a)
		memcpy(o.a, o.b, n * sizeof(*o.a));
	for (i = 0; i < n; i++)
		o.ord[i] = o.a[i].pos;
	settle(&o, 0, n, 0);
	free(o.a);
	free(o.b);
	return o.ord;
}

/* The result of a SORT context again (search-context.h): UIDs in the order of arg. */
static int
sort_context_eval(struct session *s, const struct search_program *prog, const void *arg,
		  uint32_t **uids_r, uint32_t *n_r)
{
	struct search_hits h;
	struct criteria cr;
	struct sent *v = find_keys(s, prog, &h);
	uint32_t j, *ord;

	if (v == NULL)
		return -1;
	memcpy(&cr, arg, sizeof(cr));
	ord = sort_order(v, h.n, &cr);
	for (j = 0; j < h.n; j++)
		h.idx[j] = mbox_msg_uid(s->selected->mb, v[ord[j]].idx);
	free(ord);
	save_keys(s->selected);
	*uids_r = h.idx;
	*n_r = h.n;
	return 0;
}

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")" */
bool
parse_criteria(const struct imap_arg *a, struct criteria *cr)
{
	const struct imap_arg *o;

	cr->n = 0;
	if (a == NULL || a->type != ARG_LIST || a->list == NULL)
		return false;
	for (o = a->list; o != NULL; o = o->next) {
		bool rev = false;
		size_t k;

		if (arg_is_atom(o, "REVERSE")) {
			rev = true;
			o = o->next;
			if (o == NULL)
				return false;
		}
		for (k = 0; k < sizeof(sort_keys_table) / sizeof(sort_keys_table[0]); k++) {
			if (arg_is_atom(o, sort_keys_table[k].name))
				break;
		}
		if (k == sizeof(sort_keys_table) / sizeof(sort_keys_table[0]) ||
		    cr->n == SORT_MAX_CRITERIA)
			return false;
		cr->c[cr->n].key = sort_keys_table[k].key;
		cr->c[cr->n].reverse = rev;
		cr->n++;
	}
	return true;
}

bool
parse_thread_alg(const struct imap_arg *a, enum thread_alg *alg_r)
{
	if (arg_is_atom(a, "ORDEREDSUBJECT"))
		*alg_r = THREAD_ORDEREDSUBJECT;
	else if (arg_is_atom(a, "REFERENCES"))
		*alg_r = THREAD_REFERENCES;
	else
		return false;
	return true;
}

/*
 * The part SORT and THREAD share after their own first argument: the charset, the search
 * criteria, mod-sequences (RFC 7162 3.1.5).  Returns the program, or NULL after answering.
 */
static struct search_program *
parse_search(struct command *cmd, const struct imap_arg *a, const struct search_ret *ret,
	     bool *modseq_r)
{
	struct search_program *prog;
	const char *why;

	if (a == NULL) {
		resp_bad(cmd, "%s needs a charset and search criteria", cmd->name);
		return NULL;
	}
	if (search_charset_check(cmd, a, ret) < 0)
		return NULL;
	if (a->next == NULL) {
		resp_bad(cmd, "%s needs search criteria", cmd->name);
		return NULL;
	}
	if (search_parse_keys(a->next, &prog, &why) != SEARCH_OK) {
		resp_bad(cmd, "Invalid search: %s", why);
		return NULL;
	}
	if (search_modseq_check(cmd, prog, modseq_r) < 0)
		search_free(&prog);
	return prog;
}

static void
answer_done(struct command *cmd, const char *verb, bool gone)
{
	if (gone)
		resp_ok(cmd, "[EXPUNGEISSUED] %s completed; messages were expunged meanwhile", verb);
	else
		resp_ok(cmd, "%s completed", verb);
}

void
cmd_sort(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *a;
	struct search_program *prog;
	struct search_ret ret;
	struct search_hits h;
	struct criteria cr;
	struct sent *v;
	const char *why;
	uint32_t *nums, *ord, j;
	bool modseq = false;

	a = search_ret_parse(cmd->args, &ret, &why);
	if (a == NULL && why != NULL) {
		resp_bad(cmd, "Invalid RETURN options: %s", why);
		return;
	}
	if (!parse_criteria(a, &cr)) {
		resp_bad(cmd, "Invalid sort criteria");
		return;
	}
	if (search_update_check(cmd, &ret) < 0)
		return;
	if ((prog = parse_search(cmd, a->next, &ret, &modseq)) == NULL)
		return;
	v = find_sorted(cmd, prog, "SORT", &h);
	if (v == NULL) {
		search_free(&prog);
		if (ret.opts & RET_SAVE)
			search_saved_clear(sel);
		return;
	}
	ord = sort_order(v, h.n, &cr);
	nums = malloc((h.n > 0 ? h.n : 1) * sizeof(*nums));
	if (nums == NULL)
		abort();
	for (j = 0; j < h.n; j++) {
		h.idx[j] = v[ord[j]].idx;
		nums[j] = cmd->uid ? mbox_msg_uid(sel->mb, h.idx[j]) : h.idx[j] + 1;
	}
	free(ord);
	search_answer(cmd, "SORT", &ret, &h, nums, modseq);
	if (ret.opts & RET_UPDATE) {
		for (j = 0; j < h.n; j++)
			nums[j] = mbox_msg_uid(sel->mb, h.idx[j]);
		search_context_start(cmd, &prog, sort_context_eval, &cr, sizeof(cr), true, nums,
				     h.n);
	}
	search_free(&prog);
	free(nums);
	free(h.idx);
	answer_done(cmd, "SORT", h.gone);
	save_keys(sel);
}

void
cmd_thread(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *a = cmd->args;
	struct search_program *prog;
	struct search_ret ret;
	struct search_hits h;
	struct thread_msg *tm;
	struct sent *v;
	enum thread_alg alg;
	struct dbuf out;
	uint32_t j;
	bool modseq = false;

	memset(&ret, 0, sizeof(ret));
	if (!parse_thread_alg(a, &alg)) {
		resp_bad(cmd, "Unknown threading algorithm");
		return;
	}
	if ((prog = parse_search(cmd, a->next, &ret, &modseq)) == NULL)
		return;
	v = find_sorted(cmd, prog, "THREAD", &h);
	search_free(&prog);
	if (v == NULL)
		return;
	tm = calloc(h.n > 0 ? h.n : 1, sizeof(*tm));
	if (tm == NULL)
		abort();
	for (j = 0; j < h.n; j++) {
		tm[j].id = cmd->uid ? mbox_msg_uid(sel->mb, v[j].idx) : v[j].idx + 1;
		tm[j].sent = v[j].date;
		tm[j].msgid = (v[j].k.flags & SORT_K_MSGID) ? v[j].k.msgid : 0;
		tm[j].refs = v[j].k.refs;
		tm[j].nrefs = v[j].k.nrefs;
		tm[j].subj = v[j].k.s[SORT_S_SUBJECT];
		tm[j].subj_len = v[j].k.slen[SORT_S_SUBJECT];
		tm[j].reply = (v[j].k.flags & SORT_K_REPLY) != 0;
	}
	dbuf_init(&out, SIZE_MAX);
	thread_build(alg, tm, h.n, &out);
	resp_printf(s, "* THREAD");
	if (out.len > 0) {
		resp_printf(s, " ");
		resp_raw(s, out.data, out.len);
	}
	resp_printf(s, "\r\n");
	dbuf_free(&out);
	free(tm);
	free(h.idx);
	answer_done(cmd, "THREAD", h.gone);
	save_keys(sel);
}
