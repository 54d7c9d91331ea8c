/*
 * message-thread.c: RFC 5256 THREAD=ORDEREDSUBJECT and THREAD=REFERENCES.
 *
 * The tree is an array of nodes: one per message, then the dummies the algorithm makes.  A
 * node's children are a doubly linked list, so a link can be broken in constant time.  Deep
 * trees (a chain of thousands of replies) are walked with explicit stacks, never recursion.
 */
#include "mbox/message-thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE	UINT32_MAX

struct node {
	uint32_t msg;		/* index into the messages, NONE for a dummy */
	uint32_t parent, first, last, prev, next;
	bool dead;		/* removed from the tree */
};

struct tree {
	const struct thread_msg *m;
	struct node *v;
	size_t n, cap;
};

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n > 0 ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

static uint32_t
new_node(struct tree *t, uint32_t msg)
{
	struct node *d;

	if (t->n == t->cap) {
		t->cap = t->cap < 64 ? 64 : t->cap * 2;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		if (t->v == NULL)
			abort();
	}
	d = &t->v[t->n];
	d->msg = msg;
	d->parent = d->first = d->last = d->prev = d->next = NONE;
	d->dead = false;
	return (uint32_t)t->n++;
}

static void
unlink_node(struct tree *t, uint32_t c)
{
	struct node *x = &t->v[c];

	if (x->parent == NONE)
		return;
	if (x->prev != NONE)
		t->v[x->prev].next = x->next;
	else
		t->v[x->parent].first = x->next;
	if (x->next != NONE)
		t->v[x->next].prev = x->prev;
	else
		t->v[x->parent].last = x->prev;
	x->parent = x->prev = x->next = NONE;
}

static void
add_child(struct tree *t, uint32_t p, uint32_t c)
{
	struct node *x = &t->v[c];

	x->parent = p;
	x->next = NONE;
	x->prev = t->v[p].last;
	if (x->prev != NONE)
		t->v[x->prev].next = c;
	else
		t->v[p].first = c;
	t->v[p].last = c;
}

/* Every child of from becomes a child of to, in order. */
static void
move_children(struct tree *t, uint32_t from, uint32_t to)
{
	uint32_t k, next;

	for (k = t->v[from].first; k != NONE; k = next) {
		next = t->v[k].next;
		unlink_node(t, k);
		add_child(t, to, k);
	}
}

/* Is a equal to b or below it?  A b without children has only itself below: the common
 * case (a message new to the tree) costs no walk up a long chain. */
static bool
is_under(const struct tree *t, uint32_t a, uint32_t b)
{
	if (t->v[b].first == NONE)
		return a == b;
	for (; a != NONE; a = t->v[a].parent) {
		if (a == b)
			return true;
	}
	return false;
}

/* ---- Message-ID table: hash -> node ---- */

struct idtab {
	uint64_t *key;
	uint32_t *val;
	size_t mask;
};

static void
idtab_init(struct idtab *h, size_t want)
{
	size_t cap = 16;

	while (cap < want * 2)
		cap *= 2;
	h->key = xcalloc(cap, sizeof(*h->key));
	h->val = xcalloc(cap, sizeof(*h->val));
	h->mask = cap - 1;
}

/* The slot of key (key never 0): its own, or the empty one it would take. */
static size_t
idtab_slot(const struct idtab *h, uint64_t key)
{
	size_t i = (size_t)(key ^ key >> 29) & h->mask;

	while (h->key[i] != 0 && h->key[i] != key)
		i = (i + 1) & h->mask;
	return i;
}

/* The node of a referenced ID, a new dummy if there is none yet. */
static uint32_t
id_node(struct tree *t, struct idtab *h, uint64_t id)
{
	size_t i = idtab_slot(h, id);

	if (h->key[i] == 0) {
		h->key[i] = id;
		h->val[i] = new_node(t, NONE);
	}
	return h->val[i];
}

/* ---- ordering by sent date ---- */

/* The message a node sorts by: its own, or a dummy's first child's. */
static uint32_t
sort_msg(const struct tree *t, uint32_t c)
{
	while (t->v[c].msg == NONE && t->v[c].first != NONE)
		c = t->v[c].first;
	return t->v[c].msg;
}

static int
cmp_date(const void *pa, const void *pb, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t a = sort_msg(t, *(const uint32_t *)pa);
	uint32_t b = sort_msg(t, *(const uint32_t *)pb);
	const struct thread_msg *m = t->m;

	if (a == NONE || b == NONE)
		return (a == NONE) - (b == NONE);
	if (m[a].sent != m[b].sent)
		return m[a].sent < m[b].sent ? -1 : 1;
	return a < b ? -1 : a > b;	/* RFC 5256 2.2: mailbox order breaks ties */
}

/* Sorts the children of p by sent date; buf holds at least as many entries. */
static void
sort_children(struct tree *t, uint32_t p, uint32_t *buf)
{
	size_t k = 0, i;
	uint32_t c;

	for (c = t->v[p].first; c != NONE; c = t->v[c].next)
		buf[k++] = c;
	if (k < 2)
		return;
	qsort_r(buf, k, sizeof(*buf), cmp_date, t);
	t->v[p].first = t->v[p].last = NONE;
	for (i = 0; i < k; i++)
		add_child(t, p, buf[i]);
}

/* ---- output ---- */

static void
put_id(struct dbuf *out, uint32_t id)
{
	char b[16];
	int n = snprintf(b, sizeof(b), "%u", id);

	dbuf_add(out, b, (size_t)n);
}

/*
 * One thread-list's contents for node c: "id id ... (sub)(sub)" (RFC 5256 5: a chain of
 * single children is a run of numbers; a split nests each branch in parentheses); a dummy
 * gives only its branches.  Explicit stack (2 entries per node at most): a node to write,
 * with OPEN when its "(" is due first, or CLOSE for a ")".
 */
#define OPEN	0x80000000u
#define CLOSE	NONE

static void
write_thread(const struct tree *t, uint32_t c, struct dbuf *out, uint32_t *stack)
{
	size_t sp = 0;

	stack[sp++] = c;
	while (sp > 0) {
		uint32_t e = stack[--sp], x, k;
		bool first = true;

		if (e == CLOSE) {
			dbuf_add(out, ")", 1);
			continue;
		}
		if (e & OPEN)
			dbuf_add(out, "(", 1);
		x = e & ~OPEN;
		/* the chain of single children from x */
		for (;;) {
			const struct node *nx = &t->v[x];

			if (nx->msg != NONE) {
				if (!first)
					dbuf_add(out, " ", 1);
				put_id(out, t->m[nx->msg].id);
				first = false;
			}
			if (nx->first == NONE || nx->first != nx->last)
				break;
			x = nx->first;
		}
		if (t->v[x].first == NONE)
			continue;
		/* a split: each child in parentheses, the first on top of the stack */
		if (!first)
			dbuf_add(out, " ", 1);
		for (k = t->v[x].last; k != NONE; k = t->v[k].prev) {
			stack[sp++] = CLOSE;
			stack[sp++] = k | OPEN;
		}
	}
}

/* ---- REFERENCES (RFC 5256 3, steps 1-6) ---- */

static void
link_refs(struct tree *t, struct idtab *ids, const struct thread_msg *m, uint32_t self)
{
	uint32_t prev = NONE, j;

	/* (1)(A) each reference the parent of the next, unless the child has a parent
	 * already or the link would make a loop */
	for (j = 0; j < m->nrefs; j++) {
		uint32_t c = id_node(t, ids, m->refs[j]);

		if (prev != NONE && c != prev && t->v[c].parent == NONE &&
		    !is_under(t, prev, c))
			add_child(t, prev, c);
		prev = c;
	}
	/* (1)(B) the last reference is the parent of this message, whatever it had */
	unlink_node(t, self);
	if (prev != NONE && prev != self && !is_under(t, prev, self))
		add_child(t, prev, self);
}

/* Subject table (5): base subject -> node, open addressing over the root's children. */
struct subjtab {
	uint32_t *val;		/* node, NONE when empty */
	size_t mask;
};

static uint64_t
subj_hash(const unsigned char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n-- > 0)
		h = (h ^ *s++) * 0x100000001b3ULL;
	return h ^ h >> 32;
}

/* The thread subject of a root child (5.B.i): its own, or its first child's for a dummy. */
static const struct thread_msg *
thread_subject(const struct tree *t, uint32_t c)
{
	uint32_t m = t->v[c].msg != NONE ? t->v[c].msg :
		     (t->v[c].first != NONE ? t->v[t->v[c].first].msg : NONE);

	return m != NONE ? &t->m[m] : NULL;
}

static size_t
subj_slot(const struct tree *t, const struct subjtab *st, const struct thread_msg *s)
{
	size_t i = (size_t)subj_hash(s->subj, s->subj_len) & st->mask;

	while (st->val[i] != NONE) {
		const struct thread_msg *o = thread_subject(t, st->val[i]);

		if (o != NULL && o->subj_len == s->subj_len &&
		    memcmp(o->subj, s->subj, s->subj_len) == 0)
			break;
		i = (i + 1) & st->mask;
	}
	return i;
}

static bool
is_dummy(const struct tree *t, uint32_t c)
{
	return t->v[c].msg == NONE;
}

static bool
is_reply(const struct tree *t, uint32_t c)
{
	return t->v[c].msg != NONE && t->m[t->v[c].msg].reply;
}

static void
references(struct tree *t, const struct thread_msg *msgs, size_t n, struct dbuf *out)
{
	struct idtab ids;
	struct subjtab st;
	uint32_t *buf, *roots, *subjval, *self, root, c, next;
	size_t i, nroots = 0, refs = 0, cap;

	for (i = 0; i < n; i++)
		refs += msgs[i].nrefs;
	idtab_init(&ids, n + refs);
	for (i = 0; i < n; i++)
		new_node(t, (uint32_t)i);
	/*
	 * (1) message by message: the first with an ID owns it, taking over the dummy an
	 * earlier reference made for it; duplicates and messages without a valid ID keep a
	 * node nothing can reference (a unique ID)
	 */
	self = xcalloc(n, sizeof(*self));
	for (i = 0; i < n; i++) {
		self[i] = (uint32_t)i;
		if (msgs[i].msgid != 0) {
			size_t s = idtab_slot(&ids, msgs[i].msgid);

			if (ids.key[s] == 0) {
				ids.key[s] = msgs[i].msgid;
				ids.val[s] = (uint32_t)i;
			} else if (t->v[ids.val[s]].msg == NONE) {
				self[i] = ids.val[s];
				t->v[self[i]].msg = (uint32_t)i;
				t->v[i].dead = true;
				t->v[i].msg = NONE;
			}
		}
		link_refs(t, &ids, &msgs[i], self[i]);
	}
	free(self);
	/* (2) the root's children: every live node without a parent */
	root = new_node(t, NONE);
	for (c = 0; c < root; c++) {
		if (!t->v[c].dead && t->v[c].parent == NONE)
			add_child(t, root, c);
	}
	/* (3) dummies below the root give their place to their children */
	for (c = 0; c < root; c++) {
		uint32_t p = t->v[c].parent;

		if (t->v[c].dead || t->v[c].msg != NONE || p == root || p == NONE)
			continue;
		/* spliced in at the dummy's place: order is restored by (6) */
		move_children(t, c, p);
		unlink_node(t, c);
		t->v[c].dead = true;
	}
	/* ... and those at the root only when they have no child or one */
	for (c = t->v[root].first; c != NONE; c = next) {
		next = t->v[c].next;
		if (t->v[c].msg != NONE)
			continue;
		if (t->v[c].first == NONE) {
			unlink_node(t, c);
			t->v[c].dead = true;
		} else if (t->v[c].first == t->v[c].last) {
			uint32_t k = t->v[c].first;

			unlink_node(t, k);
			unlink_node(t, c);
			t->v[c].dead = true;
			add_child(t, root, k);
		}
	}
	cap = t->n + n + 1;
	buf = xcalloc(cap, sizeof(*buf));
	/* (4) the root's children by sent date, a dummy by its earliest child */
	for (c = t->v[root].first; c != NONE; c = t->v[c].next) {
		if (t->v[c].msg == NONE)
			sort_children(t, c, buf);
	}
	sort_children(t, root, buf);
	/* (5) threads with the same base subject merged */
	for (c = t->v[root].first; c != NONE; c = t->v[c].next)
		nroots++;
	roots = xcalloc(nroots, sizeof(*roots));
	i = 0;
	for (c = t->v[root].first; c != NONE; c = t->v[c].next)
		roots[i++] = c;
	{
		size_t tcap = 16;

		while (tcap < nroots * 2)
			tcap *= 2;
		subjval = xcalloc(tcap, sizeof(*subjval));
		memset(subjval, 0xff, tcap * sizeof(*subjval));
		st.val = subjval;
		st.mask = tcap - 1;
	}
	for (i = 0; i < nroots; i++) {
		const struct thread_msg *s = thread_subject(t, roots[i]);
		size_t slot;
		uint32_t o;

		if (s == NULL || s->subj_len == 0)
			continue;
		slot = subj_slot(t, &st, s);
		o = st.val[slot];
		if (o == NONE)
			st.val[slot] = roots[i];
		else if (!is_dummy(t, o) &&
			 (is_dummy(t, roots[i]) || (is_reply(t, o) && !is_reply(t, roots[i]))))
			st.val[slot] = roots[i];
	}
	for (i = 0; i < nroots; i++) {
		uint32_t cur = roots[i], o;
		const struct thread_msg *s;
		size_t slot;

		if (t->v[cur].dead || t->v[cur].parent != root)
			continue;
		s = thread_subject(t, cur);
		if (s == NULL || s->subj_len == 0)
			continue;
		slot = subj_slot(t, &st, s);
		o = st.val[slot];
		if (o == NONE || o == cur)
			continue;
		if (is_dummy(t, o) && is_dummy(t, cur)) {
			move_children(t, cur, o);
			unlink_node(t, cur);
			t->v[cur].dead = true;
		} else if (is_dummy(t, o) || (is_reply(t, cur) && !is_reply(t, o))) {
			unlink_node(t, cur);
			add_child(t, o, cur);
		} else {
			uint32_t d = new_node(t, NONE);

			if (t->n > cap) {
				cap = t->n * 2;
				buf = realloc(buf, cap * sizeof(*buf));
				if (buf == NULL)
					abort();
			}
			unlink_node(t, o);
			unlink_node(t, cur);
			add_child(t, root, d);
			add_child(t, d, o);
			add_child(t, d, cur);
			st.val[slot] = d;
		}
	}
	/* (6) every set of siblings by sent date, the deepest first: non-root ones hold only
	 * messages, so their order needs nothing but their own dates */
	for (c = 0; c < t->n; c++) {
		if (!t->v[c].dead && c != root && t->v[c].msg != NONE)
			sort_children(t, c, buf);
	}
	for (c = t->v[root].first; c != NONE; c = t->v[c].next) {
		if (t->v[c].msg == NONE)
			sort_children(t, c, buf);
	}
	sort_children(t, root, buf);
	if (t->n * 2 + 2 > cap) {
		cap = t->n * 2 + 2;
		buf = realloc(buf, cap * sizeof(*buf));
		if (buf == NULL)
			abort();
	}
	for (c = t->v[root].first; c != NONE; c = t->v[c].next) {
		dbuf_add(out, "(", 1);
		write_thread(t, c, out, buf);
		dbuf_add(out, ")", 1);
	}
	free(roots);
	free(subjval);
	free(buf);
	free(ids.key);
	free(ids.val);
}

/* ---- ORDEREDSUBJECT ---- */

static int
cmp_subject_date(const void *pa, const void *pb, void *ctx)
{
	const struct tree *t = ctx;
	const struct thread_msg *a = &t->m[*(const uint32_t *)pa];
	const struct thread_msg *b = &t->m[*(const uint32_t *)pb];
	size_t n = a->subj_len < b->subj_len ? a->subj_len : b->subj_len;
	int r = memcmp(a->subj, b->subj, n);

	if (r != 0)
		return r;
	if (a->subj_len != b->subj_len)
		return a->subj_len < b->subj_len ? -1 : 1;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a < b ? -1 : a > b;
}

static void
ordered_subject(struct tree *t, const struct thread_msg *msgs, size_t n, struct dbuf *out)
{
	uint32_t *idx = xcalloc(n, sizeof(*idx)), *buf, root, c;
	size_t i, j;

	for (i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
		new_node(t, (uint32_t)i);
	}
	qsort_r(idx, n, sizeof(*idx), cmp_subject_date, t);
	root = new_node(t, NONE);
	for (i = 0; i < n; i = j) {
		add_child(t, root, idx[i]);
		for (j = i + 1; j < n && msgs[idx[j]].subj_len == msgs[idx[i]].subj_len &&
		     memcmp(msgs[idx[j]].subj, msgs[idx[i]].subj, msgs[idx[i]].subj_len) == 0; j++)
			add_child(t, idx[i], idx[j]);
	}
	buf = xcalloc(t->n * 2 + 2, sizeof(*buf));
	sort_children(t, root, buf);
	for (c = t->v[root].first; c != NONE; c = t->v[c].next) {
		dbuf_add(out, "(", 1);
		write_thread(t, c, out, buf);
		dbuf_add(out, ")", 1);
	}
	free(buf);
	free(idx);
}

void
thread_build(enum thread_alg alg, const struct thread_msg *msgs, size_t n, struct dbuf *out)
{
	struct tree t;

	if (n == 0)
		return;
	memset(&t, 0, sizeof(t));
	t.m = msgs;
	if (alg == THREAD_ORDEREDSUBJECT)
		ordered_subject(&t, msgs, n, out);
	else
		references(&t, msgs, n, out);
	free(t.v);
}
