/* cmd-store.c: STORE and UID STORE (RFC 3501 6.4.6), with UNCHANGEDSINCE (RFC 7162 3.1.3). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/condstore.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"

enum store_op { STORE_SET, STORE_ADD, STORE_REMOVE };

/* Parse one flag; returns 1 ok, 0 bad syntax, -1 no room for a keyword. */
static int
parse_flag(struct mbox *mb, const struct imap_arg *a, unsigned *flags, uint64_t *kw)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
		{ "\\Seen", MBOX_SEEN }, { "\\Answered", MBOX_ANSWERED },
		{ "\\Flagged", MBOX_FLAGGED }, { "\\Deleted", MBOX_DELETED },
		{ "\\Draft", MBOX_DRAFT },
	};
	size_t i;
	int idx;

	if (a->type != ARG_ATOM || a->len == 0)
		return 0;
	if (a->str[0] == '\\') {
		for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
			if (strcasecmp(a->str, sys[i].name) == 0) {
				*flags |= sys[i].bit;
				return 1;
			}
		return 0;	/* \Recent and unknown system flags cannot be stored */
	}
	idx = mbox_keyword_lookup(mb, a->str, a->len, 1);
	if (idx < 0)
		return mbox_keyword_lookup(mb, a->str, a->len, 0) < 0 &&
		    mbox_keyword_count(mb) >= MBOX_MAX_KEYWORDS ? -1 : 0;
	*kw |= 1ULL << idx;
	return 1;
}

void
cmd_store(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *set = cmd->args, *item, *fl, *f;
	enum store_op op;
	bool silent, gone = false, cond = false;
	unsigned flags = 0;
	uint64_t kw = 0, unch = UINT64_MAX;
	uint8_t *mark, *modified = NULL;
	uint32_t i, n, n_mod = 0;
	const char *it, *sep;
	int r;

	item = set != NULL ? set->next : NULL;
	if (item != NULL && item->type == ARG_LIST) {
		/* store-modifiers (RFC 4466 2.5): UNCHANGEDSINCE mod-sequence-valzer */
		const struct imap_arg *m = item->list;

		if (!condstore_offered(s) || m == NULL || !arg_is_atom(m, "UNCHANGEDSINCE") ||
		    !condstore_parse_modseq(m->next, true, &unch) || m->next->next != NULL) {
			resp_bad(cmd, "Unknown STORE modifier");
			return;
		}
		cond = true;
		item = item->next;
	}
	if (set == NULL || item == NULL || (fl = item->next) == NULL ||
	    fl->next != NULL || set->type != ARG_ATOM || item->type != ARG_ATOM) {
		resp_bad(cmd, "STORE needs a set, an item and flags");
		return;
	}
	it = item->str;
	if (it[0] == '+' || it[0] == '-') {
		op = it[0] == '+' ? STORE_ADD : STORE_REMOVE;
		it++;
	} else {
		op = STORE_SET;
	}
	if (strcasecmp(it, "FLAGS") == 0)
		silent = false;
	else if (strcasecmp(it, "FLAGS.SILENT") == 0)
		silent = true;
	else {
		resp_bad(cmd, "Unknown STORE item");
		return;
	}
	if (sel->readonly) {
		resp_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (fl->type == ARG_LIST) {
		for (f = fl->list; f != NULL; f = f->next)
			if ((r = parse_flag(sel->mb, f, &flags, &kw)) <= 0)
				goto badflag;
	} else if ((r = parse_flag(sel->mb, fl, &flags, &kw)) <= 0) {
		goto badflag;
	}
	mark = selected_set(sel, set->str, cmd->uid);
	if (mark == NULL) {
		resp_bad(cmd, "Invalid sequence set");
		return;
	}
	n = mbox_count(sel->mb);
	if (cond) {
		if (!mbox_has_modseq(sel->mb)) {
			free(mark);
			resp_bad(cmd, "No mod-sequences in this mailbox (NOMODSEQ)");
			return;
		}
		condstore_enable(s);
		if ((modified = calloc((size_t)n + 1, 1)) == NULL)
			fatalx("out of memory");
	}
	/* applied to the flags as they are in the file, under the write lock; with
	 * UNCHANGEDSINCE, to the messages whose mod-sequence, read there, is not above it */
	if (mbox_store_flags_cond(sel->mb, mark, n, op == STORE_SET ? MBOX_STORE_SET :
	    op == STORE_ADD ? MBOX_STORE_ADD : MBOX_STORE_REMOVE, flags, kw, unch,
	    modified) < 0) {
		free(mark);
		free(modified);
		selected_store_failed(cmd, "STORE");
		return;
	}
	/* a keyword new to the mailbox is announced before the FETCH that uses it */
	selected_announce_keywords(s);
	for (i = 0; i < n; i++) {
		bool mod = modified != NULL && modified[i];

		if (!mark[i])
			continue;
		if (mbox_msg_gone(sel->mb, i)) {
			gone = true;
			continue;
		}
		n_mod += mod;
		/*
		 * RFC 7162 3.1.3: with UNCHANGEDSINCE a FETCH with MODSEQ even when .SILENT;
		 * once CONDSTORE is on, every FETCH has MODSEQ and UID (3.2.4), so .SILENT
		 * gets the new mod-sequence too.  A message that failed the test gets its
		 * current flags, so that the client need not ask (3.1.3, example 10).
		 */
		if (silent && !s->condstore)
			continue;
		resp_printf(s, "* %u FETCH (", i + 1);
		sep = "";
		if (!silent || mod) {
			resp_printf(s, "FLAGS ");
			selected_write_flags(s, sel->mb, i);
			sep = " ";
		}
		if (cmd->uid || s->condstore) {
			resp_printf(s, "%sUID %u", sep, mbox_msg_uid(sel->mb, i));
			sep = " ";
		}
		if (s->condstore)
			resp_printf(s, "%sMODSEQ (%llu)", sep,
			    (unsigned long long)mbox_msg_modseq(sel->mb, i));
		resp_printf(s, ")\r\n");
	}
	if (n_mod > 0) {
		/* [MODIFIED set]: sequence numbers, or UIDs for UID STORE */
		uint32_t *v = malloc((size_t)n_mod * sizeof(*v)), k = 0;

		if (v == NULL)
			fatalx("out of memory");
		for (i = 0; i < n; i++)
			if (mark[i] && modified[i] && !mbox_msg_gone(sel->mb, i))
				v[k++] = cmd->uid ? mbox_msg_uid(sel->mb, i) : i + 1;
		char *set_text = condstore_uid_set_str(v, k);

		free(v);
		free(mark);
		free(modified);
		/* RFC 7162 3.1.3, example 11: NO when some of the messages are gone too */
		if (gone)
			resp_no(cmd, "[MODIFIED %s] Some of the messages no longer exist",
			    set_text);
		else
			resp_ok(cmd, "[MODIFIED %s] Conditional STORE failed for some messages",
			    set_text);
		free(set_text);
		return;
	}
	free(mark);
	free(modified);
	if (gone)
		resp_ok(cmd, "[EXPUNGEISSUED] STORE completed; some of the messages no longer "
		    "exist");
	else
		resp_ok(cmd, "STORE completed");
	return;
badflag:
	if (r < 0)
		resp_no(cmd, "[LIMIT] Too many keywords in this mailbox");
	else
		resp_bad(cmd, "Invalid flag");
}
