/* cmd-store.c: STORE and UID STORE (RFC 3501 6.4.6). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	bool silent, gone = false;
	unsigned flags = 0;
	uint64_t kw = 0;
	uint8_t *mark;
	uint32_t i, n;
	const char *it;
	int r;

	if (set == NULL || (item = set->next) == NULL || (fl = item->next) == NULL ||
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
	/* applied to the flags as they are in the file, under the write lock */
	if (mbox_store_flags(sel->mb, mark, n, op == STORE_SET ? MBOX_STORE_SET :
	    op == STORE_ADD ? MBOX_STORE_ADD : MBOX_STORE_REMOVE, flags, kw) < 0) {
		free(mark);
		selected_store_failed(cmd, "STORE");
		return;
	}
	/* a keyword new to the mailbox is announced before the FETCH that uses it */
	selected_announce_keywords(s);
	for (i = 0; i < n; i++) {
		if (!mark[i])
			continue;
		if (mbox_msg_gone(sel->mb, i)) {
			gone = true;
			continue;
		}
		if (silent)
			continue;
		resp_printf(s, "* %u FETCH (FLAGS ", i + 1);
		selected_write_flags(s, sel->mb, i);
		if (cmd->uid)
			resp_printf(s, " UID %u", mbox_msg_uid(sel->mb, i));
		resp_printf(s, ")\r\n");
	}
	free(mark);
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
