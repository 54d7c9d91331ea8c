/*
 * cmd-search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4), with ESEARCH result options
 * (RFC 4731: RETURN (MIN MAX COUNT ALL)).  The criteria are parsed and evaluated by
 * search-program.c; this file feeds it the selected mailbox's messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/command.h"
#include "imapd/condstore.h"
#include "imapd/resp.h"
#include "imapd/search-program.h"
#include "imapd/selected.h"
#include "mbox/message.h"

#define RET_MIN		0x01
#define RET_MAX		0x02
#define RET_COUNT	0x04
#define RET_ALL		0x08

struct smsg {
	struct selected *sel;
	uint32_t i;
	struct msg *msg;
	bool loaded;
	bool mime;		/* a full parse, not only the header */
	bool ranged;
	const unsigned char *data;	/* the message as FETCH reads it (mbox_msg_range) */
	size_t len;
	struct msg_cache_key key;
};

static bool
hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return mbox_header_is_hidden(name, len) != 0;
}

static void
range(struct smsg *m)
{
	size_t hl;

	if (m->ranged)
		return;
	m->ranged = true;
	(void)mbox_msg_range(m->sel->mb, m->i, &m->data, &m->len, &hl, &m->key.off);
	m->key.len = m->len;
	m->key.uid = mbox_msg_uid(m->sel->mb, m->i);
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
		m->msg = msg_parse(m->data, m->len, hide, NULL);
	else
		m->msg = msg_parse_header(m->data, m->len, hide, NULL);
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
	return msg_cache_hindex(selected_cache(m->sel), m->i, &m->key, m->data, m->len, hide,
				NULL);
}

static bool
has_keyword(void *ctx, const char *kw)
{
	struct smsg *m = ctx;
	int idx = mbox_keyword_lookup(m->sel->mb, kw, strlen(kw), 0);

	return idx >= 0 && (mbox_msg_keywords(m->sel->mb, m->i) >> idx & 1) != 0;
}

/* RETURN (...) options; returns the arguments after them, or NULL on a syntax error. */
static const struct imap_arg *
parse_return(const struct imap_arg *a, unsigned *ret, bool *esearch)
{
	const struct imap_arg *o;

	*ret = 0;
	*esearch = false;
	if (a == NULL || !arg_is_atom(a, "RETURN"))
		return a;
	if (a->next == NULL || a->next->type != ARG_LIST)
		return NULL;
	*esearch = true;
	for (o = a->next->list; o != NULL; o = o->next) {
		if (arg_is_atom(o, "MIN"))
			*ret |= RET_MIN;
		else if (arg_is_atom(o, "MAX"))
			*ret |= RET_MAX;
		else if (arg_is_atom(o, "COUNT"))
			*ret |= RET_COUNT;
		else if (arg_is_atom(o, "ALL"))
			*ret |= RET_ALL;
		else
			return NULL;
	}
	if (*ret == 0)
		*ret = RET_ALL;	/* RFC 4731 3.1: RETURN () means ALL */
	return a->next->next;
}

static void
write_set(struct session *s, const uint32_t *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			resp_printf(s, ",");
		if (j > i)
			resp_printf(s, "%u:%u", v[i], v[j]);
		else
			resp_printf(s, "%u", v[i]);
		i = j + 1;
	}
}

void
cmd_search(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *a;
	struct search_program *prog;
	struct search_box box;
	const char *why;
	uint32_t *hits, nhits = 0, i, n;
	uint64_t top_modseq = 0;
	unsigned ret;
	bool esearch, mime, gone = false, modseq;

	a = parse_return(cmd->args, &ret, &esearch);
	if (a == NULL && cmd->args != NULL) {
		resp_bad(cmd, "Invalid RETURN options");
		return;
	}
	switch (search_parse(a, &prog, &why)) {
	case SEARCH_OK:
		break;
	case SEARCH_EBADCHARSET:
		resp_no(cmd, "[BADCHARSET (US-ASCII UTF-8)] Unknown charset");
		return;
	default:
		resp_bad(cmd, "Invalid search: %s", why);
		return;
	}
	modseq = search_uses_modseq(prog);
	if (modseq) {
		/* RFC 7162 3.1.2.2: BAD without mod-sequences; else an enabling command */
		if (!condstore_offered(s) || !mbox_has_modseq(sel->mb)) {
			search_free(&prog);
			resp_bad(cmd, "Invalid search: no mod-sequences in this mailbox");
			return;
		}
		condstore_enable(s);
	}
	/* the bytes are read under the store's read lock (see selected_read_begin()) */
	if (selected_read_begin(s) < 0) {
		search_free(&prog);
		selected_store_failed(cmd, "SEARCH");
		return;
	}
	mime = search_needs_mime(prog);
	n = sel->exists < mbox_count(sel->mb) ? sel->exists : mbox_count(sel->mb);
	box.count = n;
	box.max_uid = n > 0 ? mbox_msg_uid(sel->mb, n - 1) : 0;
	hits = malloc((n > 0 ? n : 1) * sizeof(*hits));
	if (hits == NULL)
		abort();
	for (i = 0; i < n; i++) {
		struct smsg sm;
		struct search_msg m;
		int tz;

		if (selected_read_pause(s) < 0) {
			free(hits);
			search_free(&prog);
			selected_store_failed(cmd, "SEARCH");
			return;
		}
		if (!mbox_msg_available(sel->mb, i)) {
			/* removed by another program, no copy kept: it matches nothing (RFC
			 * 2180 4.4) */
			gone = true;
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
			hits[nhits++] = cmd->uid ? m.uid : m.seq;
			if (m.modseq > top_modseq)
				top_modseq = m.modseq;
		}
		msg_free(&sm.msg);
	}
	search_free(&prog);
	selected_read_end(s);
	if (!esearch) {
		resp_printf(s, "* SEARCH");
		for (i = 0; i < nhits; i++)
			resp_printf(s, " %u", hits[i]);
		/* RFC 7162 3.1.6: the highest mod-sequence of the messages found */
		if (modseq && nhits > 0)
			resp_printf(s, " (MODSEQ %llu)", (unsigned long long)top_modseq);
		resp_printf(s, "\r\n");
	} else {
		resp_printf(s, "* ESEARCH (TAG ");
		resp_string(s, cmd->tag, strlen(cmd->tag));
		resp_printf(s, ")%s", cmd->uid ? " UID" : "");
		if ((ret & RET_MIN) && nhits > 0)
			resp_printf(s, " MIN %u", hits[0]);
		if ((ret & RET_MAX) && nhits > 0)
			resp_printf(s, " MAX %u", hits[nhits - 1]);
		if (ret & RET_COUNT)
			resp_printf(s, " COUNT %u", nhits);
		if ((ret & RET_ALL) && nhits > 0) {
			resp_printf(s, " ALL ");
			write_set(s, hits, nhits);
		}
		/* RFC 7162 3.1.10, RFC 4731 3.2 */
		if (modseq && nhits > 0)
			resp_printf(s, " MODSEQ %llu", (unsigned long long)top_modseq);
		resp_printf(s, "\r\n");
	}
	free(hits);
	if (gone)
		resp_ok(cmd, "[EXPUNGEISSUED] SEARCH completed; messages were expunged meanwhile");
	else
		resp_ok(cmd, "SEARCH completed");
}
