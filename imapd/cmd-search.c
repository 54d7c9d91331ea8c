/*
 * cmd-search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4), with ESEARCH result options
 * (RFC 4731: RETURN (MIN MAX COUNT ALL)), SAVE and "$" (RFC 5182) and PARTIAL (RFC 5267
 * 4.4).  The criteria are parsed and evaluated by search-program.c; this file feeds it the
 * selected mailbox's messages, for SORT and THREAD as well (search-run.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/command.h"
#include "imapd/condstore.h"
#include "imapd/resp.h"
#include "imapd/search-program.h"
#include "imapd/search-context.h"
#include "imapd/search-run.h"
#include "imapd/selected.h"
#include "mbox/message.h"

struct smsg {
	struct selected *sel;
	uint32_t i;
	struct msg *msg;
	bool loaded;
	bool mime;		/* a full parse, not only the header */
	bool ranged;
	const unsigned char *data;	/* the message as FETCH reads it (mbox_msg_range) */
	size_t len, hdr_len;
	struct msg_cache_key key;
};

bool
search_hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return mbox_header_is_hidden(name, len) != 0;
}

static void
range(struct smsg *m)
{
	if (m->ranged)
		return;
	m->ranged = true;
	(void)mbox_msg_range(m->sel->mb, m->i, &m->data, &m->len, &m->hdr_len, &m->key.off);
	m->key.len = m->len;
	m->key.uid = mbox_msg_uid(m->sel->mb, m->i);
}

void
search_msg_bytes(struct smsg *m, const unsigned char **data_r, size_t *len_r,
		 size_t *hdr_len_r)
{
	range(m);
	*data_r = m->data;
	*len_r = m->len;
	*hdr_len_r = m->hdr_len;
}

static const struct msg *
get_msg(void *ctx)
{
	struct smsg *m = ctx;

	if (m->loaded)
		return m->msg;
	m->loaded = true;
	range(m);
	if (m->mime)
		m->msg = msg_parse(m->data, m->len, search_hide, NULL);
	else
		m->msg = msg_parse_header(m->data, m->len, search_hide, NULL);
	return m->msg;
}

/* The header index, from the selection's cache (built and kept on first use). */
static const struct msg_hindex *
get_hindex(void *ctx, const unsigned char **data_r, size_t *len_r)
{
	struct smsg *m = ctx;

	range(m);
	*data_r = m->data;
	*len_r = m->len;
	return msg_cache_hindex(selected_cache(m->sel), m->i, &m->key, m->data, m->len,
				search_hide, NULL);
}

static bool
has_keyword(void *ctx, const char *kw)
{
	struct smsg *m = ctx;
	int idx = mbox_keyword_lookup(m->sel->mb, kw, strlen(kw), 0);

	return idx >= 0 && (mbox_msg_keywords(m->sel->mb, m->i) >> idx & 1) != 0;
}

bool
partial_range(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r)
{
	struct seqset set;
	bool ok;

	/* partial-range = nz-number ":" nz-number (RFC 5267 5), no "*" */
	if (a == NULL || a->type != ARG_ATOM || strchr(a->str, ',') != NULL ||
	    strchr(a->str, '*') != NULL || strchr(a->str, ':') == NULL ||
	    !seqset_parse(a->str, &set))
		return false;
	ok = set.n == 1;
	if (ok) {
		*lo_r = (uint32_t)set.r[0].lo;
		*hi_r = (uint32_t)set.r[0].hi;
		if (*lo_r > *hi_r) {
			uint32_t t = *lo_r;

			*lo_r = *hi_r;
			*hi_r = t;
		}
	}
	seqset_clear(&set);
	return ok;
}

const struct imap_arg *
search_ret_parse(const struct imap_arg *a, struct search_ret *r, const char **why_r)
{
	const struct imap_arg *o;

	memset(r, 0, sizeof(*r));
	*why_r = NULL;
	if (a == NULL || !arg_is_atom(a, "RETURN"))
		return a;
	if (a->next == NULL || a->next->type != ARG_LIST) {
		*why_r = "RETURN needs a list";
		return NULL;
	}
	r->esearch = true;
	for (o = a->next->list; o != NULL; o = o->next) {
		unsigned bit;

		if (arg_is_atom(o, "MIN"))
			bit = RET_MIN;
		else if (arg_is_atom(o, "MAX"))
			bit = RET_MAX;
		else if (arg_is_atom(o, "COUNT"))
			bit = RET_COUNT;
		else if (arg_is_atom(o, "ALL"))
			bit = RET_ALL;
		else if (arg_is_atom(o, "SAVE"))
			bit = RET_SAVE;
		else if (arg_is_atom(o, "CONTEXT"))
			bit = RET_CONTEXT;
		else if (arg_is_atom(o, "UPDATE"))
			bit = RET_UPDATE;
		else if (arg_is_atom(o, "PARTIAL")) {
			bit = RET_PARTIAL;
			if (!partial_range(o->next, &r->plo, &r->phi)) {
				*why_r = "PARTIAL needs a range n:m";
				return NULL;
			}
			o = o->next;
		} else {
			*why_r = "unknown RETURN option";
			return NULL;
		}
		if (r->opts & bit) {
			*why_r = "RETURN option given twice";
			return NULL;
		}
		r->opts |= bit;
	}
	/* RFC 5267 4.4: one PARTIAL or one ALL, not both */
	if ((r->opts & RET_PARTIAL) && (r->opts & RET_ALL)) {
		*why_r = "PARTIAL and ALL together";
		return NULL;
	}
	/* RFC 4731 3.1: RETURN () means ALL; so does a list of only CONTEXT and UPDATE, which
	 * ask for no data of their own (RFC 5267 4.1) */
	if ((r->opts & RET_DATA) == 0)
		r->opts |= RET_ALL;
	return a->next->next;
}

/* Numbers out in bulk: a SORT of 100,000 messages writes as many. */
struct numbuf {
	struct session *s;
	char buf[4096];
	size_t len;
};

static void
num_put(struct numbuf *b, char sep, uint32_t v)
{
	char tmp[11];
	size_t n = 0;

	if (b->len + 12 > sizeof(b->buf)) {
		resp_raw(b->s, b->buf, b->len);
		b->len = 0;
	}
	if (sep != '\0')
		b->buf[b->len++] = sep;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (n > 0)
		b->buf[b->len++] = tmp[--n];
}

static void
num_flush(struct numbuf *b)
{
	if (b->len > 0)
		resp_raw(b->s, b->buf, b->len);
	b->len = 0;
}

void
search_write_set(struct session *s, const uint32_t *v, size_t n)
{
	struct numbuf b;
	size_t i = 0;

	b.s = s;
	b.len = 0;
	while (i < n) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		num_put(&b, i > 0 ? ',' : '\0', v[i]);
		if (j > i)
			num_put(&b, ':', v[j]);
		i = j + 1;
	}
	num_flush(&b);
}

void
search_saved_clear(struct selected *sel)
{
	free(sel->saved);
	sel->saved = NULL;
	sel->n_saved = 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* RFC 5182 2.4: SAVE with only MIN and/or MAX keeps those; otherwise every message found. */
static void
save_result(struct selected *sel, const struct search_ret *r, const struct search_hits *h)
{
	uint32_t k;

	search_saved_clear(sel);
	sel->saved = malloc((h->n > 0 ? h->n : 1) * sizeof(*sel->saved));
	if (sel->saved == NULL)
		abort();
	if (h->n > 0 && (r->opts & (RET_ALL | RET_COUNT | RET_PARTIAL)) == 0 &&
	    (r->opts & (RET_MIN | RET_MAX)) != 0) {
		if (r->opts & RET_MIN)
			sel->saved[sel->n_saved++] = mbox_msg_uid(sel->mb, h->idx[0]);
		if ((r->opts & RET_MAX) && (h->n > 1 || !(r->opts & RET_MIN)))
			sel->saved[sel->n_saved++] = mbox_msg_uid(sel->mb, h->idx[h->n - 1]);
	} else {
		for (k = 0; k < h->n; k++)
			sel->saved[sel->n_saved++] = mbox_msg_uid(sel->mb, h->idx[k]);
	}
	qsort(sel->saved, sel->n_saved, sizeof(*sel->saved), cmp_u32);
}

int
search_run(struct command *cmd, const struct search_program *prog, const char *verb,
	   search_hit_fn *fn, void *ctx, struct search_hits *h)
{
	if (search_exec(cmd->s, prog, fn, ctx, h) < 0) {
		selected_store_failed(cmd, verb);
		return -1;
	}
	return 0;
}

int
search_exec(struct session *s, const struct search_program *prog, search_hit_fn *fn,
	    void *ctx, struct search_hits *h)
{
	struct selected *sel = s->selected;
	struct search_box box;
	uint32_t i, n;
	bool mime;

	memset(h, 0, sizeof(*h));
	/* the bytes are read under the store's read lock (see selected_read_begin()) */
	if (selected_read_begin(s) < 0)
		return -1;
	mime = search_needs_mime(prog);
	n = sel->exists < mbox_count(sel->mb) ? sel->exists : mbox_count(sel->mb);
	memset(&box, 0, sizeof(box));
	box.count = n;
	box.max_uid = n > 0 ? mbox_msg_uid(sel->mb, n - 1) : 0;
	box.saved = sel->saved;
	box.n_saved = sel->n_saved;
	box.now = time(NULL);
	h->idx = malloc((n > 0 ? n : 1) * sizeof(*h->idx));
	if (h->idx == NULL)
		abort();
	for (i = 0; i < n; i++) {
		struct smsg sm;
		struct search_msg m;
		int tz;

		/* a writer waits at most 16 messages' worth longer when no body is read */
		if ((mime || (i & 15) == 0) && selected_read_pause(s) < 0) {
			free(h->idx);
			h->idx = NULL;
			return -1;
		}
		if (!mbox_msg_available(sel->mb, i)) {
			/* removed by another program, no copy kept: it matches nothing (RFC
			 * 2180 4.4) */
			h->gone = true;
			continue;
		}
		memset(&sm, 0, sizeof(sm));
		sm.sel = sel;
		sm.i = i;
		sm.mime = mime;
		memset(&m, 0, sizeof(m));
		m.seq = i + 1;
		m.uid = mbox_msg_uid(sel->mb, i);
		m.flags = mbox_msg_flags(sel->mb, i);
		m.internal_date = mbox_msg_date(sel->mb, i, &tz);
		m.internal_tz = tz;
		m.size = mbox_msg_size(sel->mb, i);
		m.modseq = mbox_msg_modseq(sel->mb, i);
		m.has_keyword = has_keyword;
		m.get_msg = get_msg;
		m.get_hindex = get_hindex;
		m.ctx = &sm;
		if (search_match(prog, &box, &m)) {
			h->idx[h->n++] = i;
			if (m.modseq > h->top_modseq)
				h->top_modseq = m.modseq;
			if (fn != NULL)
				fn(ctx, sel, i, &sm);
		}
		msg_free(&sm.msg);
	}
	selected_read_end(s);
	return 0;
}

void
search_answer(struct command *cmd, const char *verb, const struct search_ret *r,
	      const struct search_hits *h, const uint32_t *nums, bool modseq)
{
	struct session *s = cmd->s;
	uint32_t i;

	if (r->opts & RET_SAVE)
		save_result(s->selected, r, h);
	if (!r->esearch) {
		struct numbuf b;

		resp_printf(s, "* %s", verb);
		b.s = s;
		b.len = 0;
		for (i = 0; i < h->n; i++)
			num_put(&b, ' ', nums[i]);
		num_flush(&b);
		/* RFC 7162 3.1.6: the highest mod-sequence of the messages found */
		if (modseq && h->n > 0)
			resp_printf(s, " (MODSEQ %llu)", (unsigned long long)h->top_modseq);
		resp_printf(s, "\r\n");
		return;
	}
	/* RFC 5182 2.1: SAVE alone returns no ESEARCH */
	if ((r->opts & RET_DATA) == RET_SAVE)
		return;
	resp_printf(s, "* ESEARCH (TAG ");
	resp_string(s, cmd->tag, strlen(cmd->tag));
	resp_printf(s, ")%s", cmd->uid ? " UID" : "");
	if ((r->opts & RET_MIN) && h->n > 0)
		resp_printf(s, " MIN %u", nums[0]);
	if ((r->opts & RET_MAX) && h->n > 0)
		resp_printf(s, " MAX %u", nums[h->n - 1]);
	if (r->opts & RET_COUNT)
		resp_printf(s, " COUNT %u", h->n);
	if ((r->opts & RET_ALL) && h->n > 0) {
		resp_printf(s, " ALL ");
		search_write_set(s, nums, h->n);
	}
	if (r->opts & RET_PARTIAL) {
		/* RFC 5267 4.4: positions plo..phi of the results, NIL when none is there */
		resp_printf(s, " PARTIAL (%u:%u ", r->plo, r->phi);
		if (r->plo > h->n)
			resp_printf(s, "NIL");
		else
			search_write_set(s, nums + r->plo - 1,
				  (r->phi < h->n ? r->phi : h->n) - r->plo + 1);
		resp_printf(s, ")");
	}
	/* RFC 7162 3.1.10, RFC 4731 3.2 */
	if (modseq && h->n > 0)
		resp_printf(s, " MODSEQ %llu", (unsigned long long)h->top_modseq);
	resp_printf(s, "\r\n");
}

int
search_charset_check(struct command *cmd, const struct imap_arg *a, const struct search_ret *r)
{
	if (a == NULL || !arg_is_astring(a)) {
		resp_bad(cmd, "%s needs a charset", cmd->name);
		return -1;
	}
	/* a literal with a NUL in it names no charset (strlen would stop there) */
	if (strlen(a->str) != a->len ||
	    (strcasecmp(a->str, "UTF-8") != 0 && strcasecmp(a->str, "US-ASCII") != 0)) {
		/* RFC 5182 2.1: a NO to a command with SAVE empties "$" */
		if (r->opts & RET_SAVE)
			search_saved_clear(cmd->s->selected);
		resp_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset");
		return -1;
	}
	return 0;
}

int
search_modseq_check(struct command *cmd, const struct search_program *prog, bool *modseq_r)
{
	struct session *s = cmd->s;

	*modseq_r = search_uses_modseq(prog);
	if (!*modseq_r)
		return 0;
	/* RFC 7162 3.1.2.2: BAD without mod-sequences; else an enabling command */
	if (!condstore_offered(s) || !mbox_has_modseq(s->selected->mb)) {
		resp_bad(cmd, "Invalid search: no mod-sequences in this mailbox");
		return -1;
	}
	condstore_enable(s);
	return 0;
}

/* The result of a SEARCH context again (search-context.h): UIDs ascending. */
static int
search_context_eval(struct session *s, const struct search_program *prog, const void *arg,
		    uint32_t **uids_r, uint32_t *n_r)
{
	struct search_hits h;
	uint32_t i;

	(void)arg;
	if (search_exec(s, prog, NULL, NULL, &h) < 0)
		return -1;
	for (i = 0; i < h.n; i++)
		h.idx[i] = mbox_msg_uid(s->selected->mb, h.idx[i]);
	*uids_r = h.idx;
	*n_r = h.n;
	return 0;
}

int
search_update_check(struct command *cmd, const struct search_ret *r)
{
	/* RFC 5267 4.3: a tag that names an updating search may not start another */
	if ((r->opts & RET_UPDATE) && search_context_tag_used(cmd->s->selected, cmd->tag)) {
		resp_bad(cmd, "Tag reuse: %s already names an updating search", cmd->tag);
		return -1;
	}
	return 0;
}

void
cmd_search(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *a;
	struct search_program *prog;
	struct search_ret ret;
	struct search_hits h;
	const char *why;
	uint32_t *nums, i;
	bool modseq;

	a = search_ret_parse(cmd->args, &ret, &why);
	if (a == NULL && why != NULL) {
		resp_bad(cmd, "Invalid RETURN options: %s", why);
		return;
	}
	if (search_update_check(cmd, &ret) < 0)
		return;
	switch (search_parse(a, &prog, &why)) {
	case SEARCH_OK:
		break;
	case SEARCH_EBADCHARSET:
		/* RFC 5182 2.1: a SEARCH with SAVE answered NO empties "$" */
		if (ret.opts & RET_SAVE)
			search_saved_clear(sel);
		resp_no(cmd, "[BADCHARSET (US-ASCII UTF-8)] Unknown charset");
		return;
	default:
		resp_bad(cmd, "Invalid search: %s", why);
		return;
	}
	if (search_modseq_check(cmd, prog, &modseq) < 0) {
		search_free(&prog);
		return;
	}
	if (search_run(cmd, prog, "SEARCH", NULL, NULL, &h) < 0) {
		search_free(&prog);
		if (ret.opts & RET_SAVE)
			search_saved_clear(sel);
		return;
	}
	nums = malloc((h.n > 0 ? h.n : 1) * sizeof(*nums));
	if (nums == NULL)
		abort();
	for (i = 0; i < h.n; i++)
		nums[i] = cmd->uid ? mbox_msg_uid(sel->mb, h.idx[i]) : h.idx[i] + 1;
	search_answer(cmd, "SEARCH", &ret, &h, nums, modseq);
	if (ret.opts & RET_UPDATE) {
		for (i = 0; i < h.n; i++)
			nums[i] = mbox_msg_uid(sel->mb, h.idx[i]);
		search_context_start(cmd, &prog, search_context_eval, NULL, 0, false, nums, h.n);
	}
	search_free(&prog);
	free(nums);
	free(h.idx);
	if (h.gone)
		resp_ok(cmd, "[EXPUNGEISSUED] SEARCH completed; messages were expunged meanwhile");
	else
		resp_ok(cmd, "SEARCH completed");
}
