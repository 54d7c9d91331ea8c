/*
 * cmd-copy.c: COPY and UID COPY (RFC 3501 6.4.7) with COPYUID (RFC 4315), MOVE and
 * UID MOVE (RFC 6851).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"
#include "mbox/folder.h"

/* A UID list (ascending) as a compact set "1:3,7"; malloc'd. */
static char *
uid_set_str(const uint32_t *u, size_t n)
{
	size_t i = 0, len = 0, cap = 64;
	char *out = malloc(cap);

	if (out == NULL)
		fatalx("out of memory");
	out[0] = 0;
	while (i < n) {
		size_t j = i;
		int w;

		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		if (cap - len < 32) {
			cap *= 2;
			out = realloc(out, cap);
			if (out == NULL)
				fatalx("out of memory");
		}
		if (j == i)
			w = snprintf(out + len, cap - len, "%s%u", len ? "," : "", u[i]);
		else
			w = snprintf(out + len, cap - len, "%s%u:%u", len ? "," : "", u[i], u[j]);
		len += (size_t)w;
		i = j + 1;
	}
	return out;
}

static void
copy_or_move(struct command *cmd, bool move)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *set = cmd->args, *box;
	struct folder_config fc = { s->mail_dir, s->spool_path, s->home, NULL };
	struct folder_root *root = NULL;
	struct folder_error ferr = { 0 };
	struct folder_ref ref;
	struct mbox_error merr = { 0 };
	struct mbox *dst = NULL, *own = NULL;
	uint32_t *idx = NULL, *src_uids = NULL, *before = NULL, first, i, n;
	size_t k = 0;
	uint8_t *mark;
	char *uset = NULL, dset[32];
	char journal[4096];
	const char *name;
	const char *verb = move ? "MOVE" : "COPY";

	if (set == NULL || (box = set->next) == NULL || box->next != NULL ||
	    set->type != ARG_ATOM || !arg_is_astring(box) || (name = arg_cstring(box)) == NULL) {
		resp_bad(cmd, "%s needs a set and a mailbox", verb);
		return;
	}
	if (move && sel->readonly) {
		resp_no(cmd, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	mark = selected_set(sel, set->str, cmd->uid);
	if (mark == NULL) {
		resp_bad(cmd, "Invalid sequence set");
		return;
	}
	if (folder_root_new(&fc, &root, &ferr) != FOLDER_OK) {
		free(mark);
		resp_no(cmd, "[SERVERBUG] Mail directory misconfigured");
		return;
	}
	if (folder_resolve(root, name, box->len, 0, &ref, &ferr) != FOLDER_OK ||
	    ref.type != FOLDER_T_MAILBOX) {
		folder_root_free(&root);
		free(mark);
		resp_no(cmd, "[TRYCREATE] No such mailbox");
		return;
	}
	folder_root_free(&root);
	n = mbox_count(sel->mb);
	idx = malloc(((size_t)n + 1) * sizeof(*idx));
	src_uids = malloc(((size_t)n + 1) * sizeof(*src_uids));
	before = malloc(((size_t)n + 1) * sizeof(*before));
	if (idx == NULL || src_uids == NULL || before == NULL)
		fatalx("out of memory");
	for (i = 0; i < n; i++) {
		before[i] = mbox_msg_uid(sel->mb, i);
		if (mark[i]) {
			idx[k] = i;
			src_uids[k++] = before[i];
		}
	}
	free(mark);
	if (k == 0) {
		/* RFC 3501: an empty UID set is not an error; a sequence set always names
		 * something (selected_set only names what exists) */
		resp_ok(cmd, "%s completed", verb);
		goto out;
	}
	if (selected_state_dir(s, journal, sizeof(journal)) != 0) {
		resp_no(cmd, "[SERVERBUG] Cannot make the state directory");
		goto out;
	}
	if (!sel->readonly && strcmp(mbox_path(sel->mb), ref.path) == 0) {
		dst = sel->mb;
	} else {
		if (mbox_open(ref.path, journal, MBOX_OPEN_RW | MBOX_OPEN_KEEP_RECENT |
		    (ref.n.inbox ? MBOX_OPEN_MISSING_OK : 0), &own, &merr) != 0) {
			log_warnx("%s to %s: %s", verb, ref.path, merr.msg);
			resp_no(cmd, "[%s] Cannot open the target mailbox",
			    merr.code == ETIMEDOUT ? "INUSE" : "UNAVAILABLE");
			goto out;
		}
		dst = own;
	}
	if (mbox_copy(dst, sel->mb, idx, k, &first) < 0) {
		const struct mbox_error *e = mbox_error(dst);

		log_warnx("%s to %s: %s", verb, ref.path, e->msg);
		if (e->code == ENOENT)
			/* RFC 2180 4.4.1: nothing is copied if a message is gone */
			resp_no(cmd, "[EXPUNGEISSUED] Some of the requested messages no longer "
			    "exist; nothing was copied");
		else if (e->code == ETIMEDOUT)
			resp_no(cmd, "[INUSE] %s: a mailbox stayed locked by another program; "
			    "try again", verb);
		else
			resp_no(cmd, "[UNAVAILABLE] %s failed: %s", verb, e->msg);
		goto out;
	}
	uset = uid_set_str(src_uids, k);
	{
		/* the new UIDs are consecutive */
		uint32_t last = first + (uint32_t)(k - 1);

		if (k == 1)
			snprintf(dset, sizeof(dset), "%u", first);
		else
			snprintf(dset, sizeof(dset), "%u:%u", first, last);
	}
	if (!move) {
		resp_ok(cmd, "[COPYUID %u %s %s] COPY completed", mbox_uidvalidity(dst), uset,
		    dset);
		goto out;
	}
	/* MOVE: the copy is in; now expunge exactly those messages */
	resp_untagged(s, "OK [COPYUID %u %s %s] Moved", mbox_uidvalidity(dst), uset, dset);
	for (i = 0; i < k; i++)
		mbox_msg_set_flags(sel->mb, idx[i], mbox_msg_flags(sel->mb, idx[i]) | MBOX_DELETED,
		    mbox_msg_keywords(sel->mb, idx[i]));
	{
		uint32_t *gone;
		size_t ngone;

		/* src_uids is sorted (file order is UID order) */
		if (mbox_expunge(sel->mb, src_uids, k, &gone, &ngone) < 0) {
			selected_store_failed(cmd, "MOVE (copied, not expunged)");
			goto out;
		}
		selected_tell_expunged(s, before, n, gone, ngone);
		free(gone);
	}
	resp_ok(cmd, "MOVE completed");
	goto out;
out:
	free(uset);
	mbox_free(&own);
	free(idx);
	free(src_uids);
	free(before);
}

void
cmd_copy(struct command *cmd)
{
	copy_or_move(cmd, false);
}

void
cmd_move(struct command *cmd)
{
	copy_or_move(cmd, true);
}
