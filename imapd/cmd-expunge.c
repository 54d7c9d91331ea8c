/* cmd-expunge.c: EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1). */
#include <stdlib.h>

#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"

void
cmd_expunge(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	uint32_t *before, *uids = NULL, *gone, i, n = mbox_count(sel->mb);
	size_t nuids = 0, ngone;

	if (cmd->uid) {
		uint8_t *mark;

		if (cmd->args == NULL || cmd->args->next != NULL || cmd->args->type != ARG_ATOM ||
		    (mark = selected_set(sel, cmd->args->str, true)) == NULL) {
			resp_bad(cmd, "UID EXPUNGE needs a UID set");
			return;
		}
		uids = malloc(((size_t)n + 1) * sizeof(*uids));
		if (uids == NULL)
			fatalx("out of memory");
		for (i = 0; i < n; i++)
			if (mark[i])
				uids[nuids++] = mbox_msg_uid(sel->mb, i);
		free(mark);
	} else if (cmd->args != NULL) {
		resp_bad(cmd, "EXPUNGE takes no arguments");
		return;
	}
	if (sel->readonly) {
		free(uids);
		resp_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	before = malloc(((size_t)n + 1) * sizeof(*before));
	if (before == NULL)
		fatalx("out of memory");
	for (i = 0; i < n; i++)
		before[i] = mbox_msg_uid(sel->mb, i);
	if (mbox_expunge(sel->mb, cmd->uid ? uids : NULL, nuids, &gone, &ngone) < 0) {
		selected_store_failed(cmd, "EXPUNGE");
		free(before);
		free(uids);
		return;
	}
	selected_tell_expunged(s, before, n, gone, ngone);
	if (mbox_recent_count(sel->mb) != sel->recent) {
		sel->recent = mbox_recent_count(sel->mb);
		resp_untagged(s, "%u RECENT", sel->recent);
	}
	free(gone);
	free(before);
	free(uids);
	/* RFC 7162 3.2.7, 3.2.9: the new HIGHESTMODSEQ once something was expunged */
	if (s->qresync && ngone > 0 && mbox_has_modseq(sel->mb))
		resp_ok(cmd, "[HIGHESTMODSEQ %llu] EXPUNGE completed",
		    (unsigned long long)mbox_highest_modseq(sel->mb));
	else
		resp_ok(cmd, "EXPUNGE completed");
}
