/*
 * search-context.c: updating SEARCH and SORT results (RFC 5267 4.3).  See search-context.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/search-context.h"
#include "imapd/search-run.h"

struct search_context {
	struct search_context *next;
	char *tag;
	bool uid;			/* UID SEARCH/UID SORT: the updates name UIDs */
	bool sorted;			/* SORT: updates carry positions */
	struct search_program *prog;	/* frozen (search_freeze()) */
	search_context_eval_fn *eval;
	void *arg;
	uint32_t *res;			/* the result the client holds, as UIDs, in order */
	uint32_t n;
	uint64_t stamp;			/* the mailbox when res was last made */
	bool timed;			/* OLDER/YOUNGER: the clock changes the result */
	time_t when;
};

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/*
 * What the results depend on, in one number: what the client was told of (EXISTS), and the
 * highest mod-sequence, which every flag change and expunge raises; without mod-sequences,
 * the flags of every message.
 */
static uint64_t
mailbox_stamp(const struct selected *sel)
{
	uint32_t i, n = sel->exists < mbox_count(sel->mb) ? sel->exists : mbox_count(sel->mb);
	uint64_t h = mix(0, n);

	if (mbox_has_modseq(sel->mb))
		return mix(h, mbox_highest_modseq(sel->mb));
	for (i = 0; i < n; i++) {
		h = mix(h, mbox_msg_uid(sel->mb, i));
		h = mix(h, mbox_msg_flags(sel->mb, i));
		h = mix(h, mbox_msg_keywords(sel->mb, i));
	}
	return h;
}

bool
search_context_tag_used(const struct selected *sel, const char *tag)
{
	const struct search_context *c;

	for (c = sel->contexts; c != NULL; c = c->next) {
		if (strcmp(c->tag, tag) == 0)
			return true;
	}
	return false;
}

static uint32_t
uid_of_seq(void *ctx, uint32_t seq)
{
	return mbox_msg_uid(((struct selected *)ctx)->mb, seq - 1);
}

void
search_context_start(struct command *cmd, struct search_program **progp,
		     search_context_eval_fn *eval, const void *arg, size_t arg_len, bool sorted,
		     const uint32_t *uids, uint32_t n)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	struct search_context *c, **tail;
	struct search_box box;
	unsigned count = 0;

	for (tail = &sel->contexts; *tail != NULL; tail = &(*tail)->next)
		count++;
	if (count >= SEARCH_CONTEXTS_MAX) {
		/* RFC 5267 4.3.1: the other return options were honoured all the same */
		resp_untagged(s, "NO [NOUPDATE \"%s\"] Too many updating searches; "
		    "CANCELUPDATE one first", cmd->tag);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->tag = strdup(cmd->tag)) == NULL ||
	    (c->arg = malloc(arg_len > 0 ? arg_len : 1)) == NULL ||
	    (c->res = malloc((n > 0 ? n : 1) * sizeof(*c->res))) == NULL)
		abort();
	memset(&box, 0, sizeof(box));
	box.count = sel->exists < mbox_count(sel->mb) ? sel->exists : mbox_count(sel->mb);
	box.max_uid = box.count > 0 ? mbox_msg_uid(sel->mb, box.count - 1) : 0;
	box.saved = sel->saved;
	box.n_saved = sel->n_saved;
	/* RFC 5267 4.3: sequence numbers are those of the time the command was received */
	search_freeze(*progp, &box, uid_of_seq, sel);
	c->prog = *progp;
	*progp = NULL;
	c->uid = cmd->uid;
	c->sorted = sorted;
	c->eval = eval;
	if (arg_len > 0)
		memcpy(c->arg, arg, arg_len);
	if (n > 0)
		memcpy(c->res, uids, n * sizeof(*uids));
	c->n = n;
	c->stamp = mailbox_stamp(sel);
	c->timed = search_uses_time(c->prog);
	c->when = time(NULL);
	*tail = c;
}

static void
context_free(struct search_context *c)
{
	search_free(&c->prog);
	free(c->tag);
	free(c->arg);
	free(c->res);
	free(c);
}

void
search_context_free_all(struct selected *sel)
{
	while (sel->contexts != NULL) {
		struct search_context *c = sel->contexts;

		sel->contexts = c->next;
		context_free(c);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool
has(const uint32_t *sorted, uint32_t n, uint32_t v)
{
	return bsearch(&v, sorted, n, sizeof(*sorted), cmp_u32) != NULL;
}

/* A number as the context gives it: the UID, or the sequence number it has now. */
static uint32_t
number(const struct selected *sel, const struct search_context *c, uint32_t uid)
{
	return c->uid ? uid : (uint32_t)(mbox_uid_index(sel->mb, uid) + 1);
}

static void
begin(struct session *s, const struct search_context *c, bool *open)
{
	if (*open)
		return;
	resp_printf(s, "* ESEARCH (TAG ");
	resp_string(s, c->tag, strlen(c->tag));
	resp_printf(s, ")%s", c->uid ? " UID" : "");
	*open = true;
}

/* " ADDTO (pos set)" or " REMOVEFROM (...)"; reversed: v[0..n) was gathered backwards. */
static void
write_item(struct session *s, const char *item, uint32_t pos, uint32_t *v, size_t n,
	   bool reversed)
{
	size_t j;

	for (j = 0; reversed && j < n / 2; j++) {
		uint32_t t = v[j];

		v[j] = v[n - 1 - j];
		v[n - 1 - j] = t;
	}
	resp_printf(s, " %s (%u ", item, pos);
	search_write_set(s, v, n);
	resp_printf(s, ")");
}

void
search_context_expunged(struct session *s, const uint32_t *uids, const uint32_t *seq, size_t n)
{
	struct selected *sel = s->selected;
	struct search_context *c;

	if (n == 0)
		return;
	for (c = sel->contexts; c != NULL; c = c->next) {
		uint32_t *gone = malloc(n * sizeof(*gone));
		size_t ng = 0;
		uint32_t i, k = 0;
		bool open = false;

		if (gone == NULL)
			abort();
		/*
		 * Runs of removed results, from the last position to the first so that each
		 * position is the one it had (4.3.4); a SEARCH's in mailbox order at position 0.
		 * The numbers are the ones the client holds until the EXPUNGE that follows.
		 */
		for (i = c->n; i-- > 0;) {
			size_t lo = 0, hi = n;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (uids[mid] < c->res[i])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < n && uids[lo] == c->res[i]) {
				gone[ng++] = c->uid ? c->res[i] : seq[lo];
				c->res[i] = 0;		/* dropped below */
			} else if (ng > 0 && c->sorted) {
				begin(s, c, &open);
				write_item(s, "REMOVEFROM", i + 2, gone, ng, true);
				ng = 0;
			}
		}
		if (ng > 0) {
			begin(s, c, &open);
			write_item(s, "REMOVEFROM", c->sorted ? 1 : 0, gone, ng, true);
		}
		if (open)
			resp_printf(s, "\r\n");
		for (i = 0; i < c->n; i++) {
			if (c->res[i] != 0)
				c->res[k++] = c->res[i];
		}
		c->n = k;
		free(gone);
	}
}

/*
 * The client's result res becomes now (both in requested order).  Removals first, as
 * runs from the last position to the first; then additions as runs in the order of now,
 * each at the position it has in now, which is where it goes once everything before it
 * is in place.  A SEARCH's removals and additions go at position 0, in mailbox order.
 */
static void
tell_changes(struct session *s, struct search_context *c, const uint32_t *now, uint32_t nn)
{
	struct selected *sel = s->selected;
	uint32_t *so = malloc((c->n > 0 ? c->n : 1) * sizeof(*so));
	uint32_t *sn = malloc((nn > 0 ? nn : 1) * sizeof(*sn));
	uint32_t *run = malloc(((c->n > nn ? c->n : nn) + 1) * sizeof(*run));
	uint32_t i, nr;
	bool open = false;

	if (so == NULL || sn == NULL || run == NULL)
		abort();
	memcpy(so, c->res, c->n * sizeof(*so));
	memcpy(sn, now, nn * sizeof(*sn));
	qsort(so, c->n, sizeof(*so), cmp_u32);
	qsort(sn, nn, sizeof(*sn), cmp_u32);
	if (!c->sorted) {
		/* mailbox order is UID order, and sequence numbers keep it */
		for (i = 0, nr = 0; i < c->n; i++) {
			if (!has(sn, nn, so[i]))
				run[nr++] = number(sel, c, so[i]);
		}
		if (nr > 0) {
			begin(s, c, &open);
			write_item(s, "REMOVEFROM", 0, run, nr, false);
		}
		for (i = 0, nr = 0; i < nn; i++) {
			if (!has(so, c->n, sn[i]))
				run[nr++] = number(sel, c, sn[i]);
		}
		if (nr > 0) {
			begin(s, c, &open);
			write_item(s, "ADDTO", 0, run, nr, false);
		}
	} else {
		for (i = c->n, nr = 0; i-- > 0;) {
			bool out = !has(sn, nn, c->res[i]);

			if (out)
				run[nr++] = number(sel, c, c->res[i]);
			if (nr > 0 && (!out || i == 0)) {
				begin(s, c, &open);
				write_item(s, "REMOVEFROM", out ? i + 1 : i + 2, run, nr, true);
				nr = 0;
			}
		}
		for (i = 0, nr = 0; i < nn; i++) {
			bool in = !has(so, c->n, now[i]);

			if (in)
				run[nr++] = number(sel, c, now[i]);
			if (nr > 0 && (!in || i + 1 == nn)) {
				begin(s, c, &open);
				write_item(s, "ADDTO", (in ? i + 1 : i) - nr + 1, run, nr, false);
				nr = 0;
			}
		}
	}
	if (open)
		resp_printf(s, "\r\n");
	free(so);
	free(sn);
	free(run);
}

void
search_context_refresh(struct session *s)
{
	struct selected *sel = s->selected;
	struct search_context *c;
	uint64_t stamp;
	time_t now;

	if (sel == NULL || sel->contexts == NULL)
		return;
	stamp = mailbox_stamp(sel);
	now = time(NULL);
	for (c = sel->contexts; c != NULL; c = c->next) {
		uint32_t *res, n;

		if (c->stamp == stamp && !(c->timed && now != c->when))
			continue;
		if (c->eval(s, c->prog, c->arg, &res, &n) < 0) {
			/* the store could not be read now: the next report tries again */
			log_warnx("%s: updating search %s: the mailbox could not be read",
			    sel->name, c->tag);
			continue;
		}
		tell_changes(s, c, res, n);
		free(c->res);
		c->res = res;
		c->n = n;
		c->stamp = stamp;
		c->when = now;
	}
}

void
cmd_cancelupdate(struct command *cmd)
{
	struct selected *sel = cmd->s->selected;
	const struct imap_arg *a;

	if (cmd->args == NULL) {
		resp_bad(cmd, "CANCELUPDATE needs the tags of updating searches");
		return;
	}
	/* every tag must name a context before any is ended */
	for (a = cmd->args; a != NULL; a = a->next) {
		if (a->type != ARG_STRING || memchr(a->str, '\0', a->len) != NULL) {
			resp_bad(cmd, "CANCELUPDATE takes quoted tags");
			return;
		}
		if (!search_context_tag_used(sel, a->str)) {
			/* the client's bytes are not echoed: a literal may hold CRLF */
			resp_bad(cmd, "No updating search has one of those tags");
			return;
		}
	}
	for (a = cmd->args; a != NULL; a = a->next) {
		struct search_context **p = &sel->contexts;

		while (*p != NULL && strcmp((*p)->tag, a->str) != 0)
			p = &(*p)->next;
		if (*p != NULL) {
			struct search_context *c = *p;

			*p = c->next;
			context_free(c);
		}
	}
	resp_ok(cmd, "CANCELUPDATE completed; no further updates");
}
