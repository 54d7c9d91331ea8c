/*
 * cmd-select.c: SELECT, EXAMINE, CLOSE, UNSELECT (RFC 3691), CHECK, and the reporting of
 * mailbox changes before each tagged response (NOOP and every other command).
 */
#include "imapd/selected.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imapd/condstore.h"
#include "imapd/limits.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/search-context.h"
#include "mbox/folder.h"
#include "mbox/mbox-sortcache.h"

int
selected_state_dir(const struct session *s, char *buf, size_t size)
{
	int n;

	if (s->cfg->state_dir[0] == '/')
		n = snprintf(buf, size, "%s", s->cfg->state_dir);
	else
		n = snprintf(buf, size, "%s/%s", s->home, s->cfg->state_dir);
	if (n < 0 || (size_t)n >= size)
		return -1;
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

void
selected_write_flags(struct session *s, const struct mbox *mb, uint32_t i)
{
	selected_write_flags_with(s, mb, i, 0);
}

void
selected_write_flags_with(struct session *s, const struct mbox *mb, uint32_t i, unsigned extra)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {
		{ MBOX_SEEN, "\\Seen" }, { MBOX_ANSWERED, "\\Answered" },
		{ MBOX_FLAGGED, "\\Flagged" }, { MBOX_DELETED, "\\Deleted" },
		{ MBOX_DRAFT, "\\Draft" }, { MBOX_RECENT, "\\Recent" },
	};
	unsigned f = mbox_msg_flags(mb, i) | extra, k;
	uint64_t kw = mbox_msg_keywords(mb, i);
	const char *sp = "";

	resp_printf(s, "(");
	for (k = 0; k < sizeof(sys) / sizeof(sys[0]); k++)
		if (f & sys[k].bit) {
			resp_printf(s, "%s%s", sp, sys[k].name);
			sp = " ";
		}
	for (k = 0; k < mbox_keyword_count(mb); k++)
		if (kw & (1ULL << k)) {
			resp_printf(s, "%s%s", sp, mbox_keyword_name(mb, k));
			sp = " ";
		}
	resp_printf(s, ")");
}

static void
write_flag_lists(struct session *s, struct selected *sel)
{
	const struct mbox *mb = sel->mb;
	unsigned k, n = mbox_keyword_count(mb);

	resp_printf(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (k = 0; k < n; k++)
		resp_printf(s, " %s", mbox_keyword_name(mb, k));
	resp_printf(s, ")\r\n");
	if (sel->readonly) {
		resp_untagged(s, "OK [PERMANENTFLAGS ()] No permanent flags permitted");
	} else {
		resp_printf(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
		    "\\Draft");
		for (k = 0; k < n; k++)
			resp_printf(s, " %s", mbox_keyword_name(mb, k));
		/* \* only while there is room for another keyword */
		resp_printf(s, "%s)] Flags permitted\r\n", n < MBOX_MAX_KEYWORDS ? " \\*" : "");
	}
	sel->n_kw = n;
}

static bool
no_expunge_now(const struct command *cmd)
{
	const struct command_def *d = command_find(cmd->name, cmd->uid);

	return d != NULL && (d->flags & CMD_NO_EXPUNGE) != 0;
}

/*
 * RFC 5267 4.3.4: REMOVEFROM before the EXPUNGE responses, in the numbers the client holds
 * until then; the k-th UID removed (ascending) had index rank + k (see below).
 */
static void
tell_contexts(struct session *s, struct selected *sel, const uint32_t *gone, size_t n)
{
	uint32_t *uids = malloc((n > 0 ? n : 1) * sizeof(*uids));
	uint32_t *seq = malloc((n > 0 ? n : 1) * sizeof(*seq));
	size_t k, told = 0;

	if (uids == NULL || seq == NULL)
		abort();
	for (k = 0; k < n; k++) {
		uint64_t old = (uint64_t)mbox_uid_rank(sel->mb, gone[k]) + k;

		if (old < sel->exists) {
			uids[told] = gone[k];
			seq[told++] = (uint32_t)old + 1;
		}
	}
	search_context_expunged(s, uids, seq, told);
	free(uids);
	free(seq);
}

void
selected_report(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	struct mbox_sync_result r;
	uint32_t count, told = 0;
	size_t k;

	if (sel == NULL)
		return;
	if (!no_expunge_now(cmd)) {
		if (mbox_sync(sel->mb, &r) < 0) {
			log_warnx("%s: %s", sel->name, mbox_error(sel->mb)->msg);
			return;
		}
		if (r.uidvalidity_changed) {
			/* RFC 3501 2.3.1.1: the UIDs of this session cannot be kept */
			resp_untagged(s,
			    "BYE [UNAVAILABLE] Mailbox was replaced; select it again");
			s->ending = true;
			mbox_sync_result_clear(&r);
			return;
		}
		/*
		 * EXPUNGE numbers.  The k-th UID removed (ascending) had the index it would
		 * have now plus k: the view keeps its order, mail new to it has higher UIDs,
		 * and k removed ones were below it.  Each number counts the ones reported
		 * before it as already gone (RFC 3501 7.4.1).  Messages the client was never
		 * told of need no EXPUNGE; they are the last ones, so skipping them changes no
		 * earlier number.
		 */
		if (sel->contexts != NULL)
			tell_contexts(s, sel, r.expunged, r.n_expunged);
		for (k = 0; k < r.n_expunged; k++) {
			uint64_t old = (uint64_t)mbox_uid_rank(sel->mb, r.expunged[k]) + k;

			if (old < sel->exists) {
				/* RFC 7162 3.2.10.2: with QRESYNC, one VANISHED of the UIDs
				 * instead (r.expunged is reused for those told) */
				if (s->qresync)
					r.expunged[told] = r.expunged[k];
				else
					resp_untagged(s, "%u EXPUNGE", (uint32_t)old + 1 - told);
				told++;
			}
		}
		if (s->qresync)
			condstore_write_vanished(s, r.expunged, told);
		sel->exists -= told;
		if (r.keywords_changed || mbox_keyword_count(sel->mb) != sel->n_kw)
			write_flag_lists(s, sel);
		count = mbox_count(sel->mb);
		for (k = 0; k < r.n_changed; k++) {
			int64_t idx = mbox_uid_index(sel->mb, r.changed[k]);

			if (idx < 0 || (uint32_t)idx >= sel->exists)
				continue;
			resp_printf(s, "* %u FETCH (FLAGS ", (uint32_t)idx + 1);
			selected_write_flags(s, sel->mb, (uint32_t)idx);
			/* RFC 7162 3.2.4: UID and MODSEQ once CONDSTORE is enabled */
			if (cmd->uid || s->condstore)
				resp_printf(s, " UID %u", r.changed[k]);
			if (s->condstore)
				resp_printf(s, " MODSEQ (%llu)", (unsigned long long)
				    mbox_msg_modseq(sel->mb, (uint32_t)idx));
			resp_printf(s, ")\r\n");
		}
		mbox_sync_result_clear(&r);
	} else {
		count = mbox_count(sel->mb);
		if (mbox_keyword_count(sel->mb) != sel->n_kw)
			write_flag_lists(s, sel);
		/*
		 * RFC 7162 3.2: expunges this command may not report yet have mod-sequences
		 * below some it may have sent; a client that went by those and lost the
		 * connection would never hear of the expunges.  So it is told a HIGHESTMODSEQ
		 * below theirs, until they are reported.
		 */
		if (s->condstore && mbox_pending_expunge_modseq(sel->mb) > 1)
			resp_untagged(s, "OK [HIGHESTMODSEQ %llu] Expunges pending",
			    (unsigned long long)(mbox_pending_expunge_modseq(sel->mb) - 1));
	}
	if (count > sel->exists) {
		resp_untagged(s, "%u EXISTS", count);
		sel->exists = count;
	}
	if (mbox_recent_count(sel->mb) != sel->recent) {
		sel->recent = mbox_recent_count(sel->mb);
		resp_untagged(s, "%u RECENT", sel->recent);
	}
	/* RFC 5267 4.3.3: ADDTO after the EXISTS that makes its numbers valid */
	search_context_refresh(s);
}

/* The first of v[0..n) (ascending) not below x. */
static uint32_t
lower_bound(const uint32_t *v, uint32_t n, uint32_t x)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
selected_tell_expunged(struct session *s, const uint32_t *before, uint32_t n,
    uint32_t *gone, size_t ngone)
{
	struct selected *sel = s->selected;
	uint32_t told = 0, *uids = NULL, *seq = NULL;
	size_t k, nc = 0;

	if (sel->contexts != NULL) {
		uids = malloc((ngone > 0 ? ngone : 1) * sizeof(*uids));
		seq = malloc((ngone > 0 ? ngone : 1) * sizeof(*seq));
		if (uids == NULL || seq == NULL)
			abort();
	}
	for (k = 0; k < ngone; k++) {
		uint32_t lo = lower_bound(before, n, gone[k]);

		if (uids != NULL && lo < n && before[lo] == gone[k] && lo < sel->exists) {
			uids[nc] = gone[k];
			seq[nc++] = lo + 1;
		}
	}
	if (uids != NULL) {
		/* RFC 5267 4.3.4: REMOVEFROM first, while the numbers hold */
		search_context_expunged(s, uids, seq, nc);
		free(uids);
		free(seq);
	}
	for (k = 0; k < ngone; k++) {
		uint32_t lo = lower_bound(before, n, gone[k]);

		if (lo < n && before[lo] == gone[k] && lo < sel->exists) {
			if (s->qresync)
				gone[told] = gone[k];	/* RFC 7162 3.2.10.2 */
			else
				resp_untagged(s, "%u EXPUNGE", lo + 1 - told);
			told++;
		}
	}
	if (s->qresync)
		condstore_write_vanished(s, gone, told);
	sel->exists -= told;
}

void
selected_announce_keywords(struct session *s)
{
	struct selected *sel = s->selected;

	if (sel != NULL && mbox_keyword_count(sel->mb) != sel->n_kw)
		write_flag_lists(s, sel);
}

int
selected_read_begin(struct session *s)
{
	struct selected *sel = s->selected;

	if (mbox_read_begin(sel->mb) < 0) {
		log_warnx("%s: %s", sel->name, mbox_error(sel->mb)->msg);
		return -1;
	}
	io_hold(s->io, sel->state_dir);
	selected_announce_keywords(s);
	return 0;
}

int
selected_read_pause(struct session *s)
{
	struct selected *sel = s->selected;

	if (io_held(s->io) < IMAPD_HOLD_PAUSE && !mbox_read_contended(sel->mb))
		return 0;
	mbox_read_end(sel->mb);
	(void)io_unhold(s->io);
	return selected_read_begin(s);
}

void
selected_read_end(struct session *s)
{
	struct selected *sel = s->selected;

	if (sel != NULL)
		mbox_read_end(sel->mb);
	(void)io_unhold(s->io);
}

void
selected_store_failed(struct command *cmd, const char *verb)
{
	struct selected *sel = cmd->s->selected;
	const struct mbox_error *e = mbox_error(sel->mb);

	log_warnx("%s %s: %s", verb, sel->name, e->msg);
	if (e->code == ETIMEDOUT)
		resp_no(cmd, "[INUSE] %s: the mailbox stayed locked by another program for "
		    "%d s; try again", verb, MBOX_LOCK_TIMEOUT_MS / 1000);
	else
		resp_no(cmd, "[UNAVAILABLE] %s failed: %s", verb, e->msg);
}

void
selected_close(struct session *s)
{
	struct selected *sel = s->selected;

	if (sel == NULL)
		return;
	mbox_sortcache_free(&sel->sortcache);
	search_context_free_all(sel);
	free(sel->sort_buf);
	mbox_free(&sel->mb);
	msg_cache_free(&sel->cache);
	free(sel->saved);
	free(sel->state_dir);
	free(sel->name);
	free(sel);
	s->selected = NULL;
	s->on_tagged = NULL;
	session_set_state(s, STATE_AUTH);
}

static void
select_common(struct command *cmd, bool examine)
{
	struct session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct folder_config fc = { s->mail_dir, s->spool_path, s->home, NULL };
	struct folder_root *root = NULL;
	struct folder_error ferr = { 0 };
	struct folder_ref ref;
	struct mbox_error merr = { 0 };
	struct selected *sel;
	struct qresync_args q;
	bool want_condstore = false, want_qresync = false, had = s->selected != NULL;
	char journal[4096];
	const char *name;
	unsigned flags;
	uint32_t i, n, unseen = 0;

	if (a == NULL || (arg_count(a) != 1 && arg_count(a) != 2) || !arg_is_astring(a) ||
	    (name = arg_cstring(a)) == NULL) {
		resp_bad(cmd, "%s needs one mailbox name", examine ? "EXAMINE" : "SELECT");
		return;
	}
	memset(&q, 0, sizeof(q));
	if (a->next != NULL) {
		/* select-params (RFC 4466 2.1): CONDSTORE and QRESYNC (RFC 7162 3.1.8,
		 * 3.2.5), all checked before anything is closed or opened */
		const struct imap_arg *p;

		if (a->next->type != ARG_LIST || a->next->list == NULL || !condstore_offered(s)) {
			resp_bad(cmd, "Unknown %s parameters", examine ? "EXAMINE" : "SELECT");
			return;
		}
		for (p = a->next->list; p != NULL; p = p->next) {
			if (arg_is_atom(p, "CONDSTORE") && !want_condstore) {
				want_condstore = true;
			} else if (arg_is_atom(p, "QRESYNC") && !want_qresync) {
				if (!s->qresync) {
					condstore_qresync_clear(&q);
					resp_bad(cmd, "QRESYNC needs ENABLE QRESYNC first");
					return;
				}
				if (condstore_qresync_parse(p->next, &q) < 0) {
					resp_bad(cmd, "Invalid QRESYNC parameter");
					return;
				}
				want_qresync = true;
				p = p->next;
			} else {
				condstore_qresync_clear(&q);
				resp_bad(cmd, "Unknown %s parameter", examine ? "EXAMINE" :
				    "SELECT");
				return;
			}
		}
	}
	/* RFC 3501 6.3.1: a failed SELECT leaves no mailbox selected */
	selected_close(s);
	/* RFC 7162 3.2.11: the responses that follow are the new mailbox's */
	if (had && condstore_offered(s))
		resp_untagged(s, "OK [CLOSED] Previous mailbox closed");
	if (want_condstore || want_qresync)
		condstore_enable(s);
	if (folder_root_new(&fc, &root, &ferr) != FOLDER_OK) {
		condstore_qresync_clear(&q);
		log_warnx("mail paths: %s", ferr.msg);
		resp_no(cmd, "[SERVERBUG] Mail directory misconfigured");
		return;
	}
	if (folder_resolve(root, name, a->len, 0, &ref, &ferr) != FOLDER_OK ||
	    ref.type != FOLDER_T_MAILBOX) {
		condstore_qresync_clear(&q);
		folder_root_free(&root);
		resp_no(cmd, "[NONEXISTENT] No such mailbox");
		return;
	}
	folder_root_free(&root);
	if (selected_state_dir(s, journal, sizeof(journal)) != 0) {
		condstore_qresync_clear(&q);
		resp_no(cmd, "[SERVERBUG] Cannot make the state directory");
		return;
	}
	flags = (ref.n.inbox ? MBOX_OPEN_MISSING_OK : 0) | (examine ? 0 : MBOX_OPEN_RW) |
	    MBOX_OPEN_LATER;
	sel = calloc(1, sizeof(*sel));
	if (sel == NULL || (sel->name = strdup(name)) == NULL)
		fatalx("out of memory");
	if (mbox_open(ref.path, journal, flags, &sel->mb, &merr) != 0 && !examine &&
	    (merr.code == EACCES || merr.code == EROFS)) {
		/* not writable by this user: read-only, as RFC 3501 6.3.1 allows */
		flags &= ~MBOX_OPEN_RW;
		(void)mbox_open(ref.path, journal, flags, &sel->mb, &merr);
	}
	if (sel->mb == NULL) {
		condstore_qresync_clear(&q);
		log_warnx("select %s: %s", ref.path, merr.msg);
		free(sel->name);
		free(sel);
		if (merr.code == MBOX_ENOTMBOX)
			resp_no(cmd, "[CORRUPTION] Not an mbox file");
		else if (merr.code == ETIMEDOUT)
			resp_no(cmd, "[INUSE] Mailbox is locked");
		else if (merr.code == ENOENT)
			resp_no(cmd, "[NONEXISTENT] No such mailbox");
		else
			resp_no(cmd, "[UNAVAILABLE] Cannot open mailbox");
		return;
	}
	sel->readonly = !(flags & MBOX_OPEN_RW);
	sel->later = true;
	if ((sel->state_dir = strdup(journal)) == NULL)
		fatalx("out of memory");
	n = mbox_count(sel->mb);
	write_flag_lists(s, sel);
	resp_untagged(s, "%u EXISTS", n);
	resp_untagged(s, "%u RECENT", mbox_recent_count(sel->mb));
	for (i = 0; i < n; i++)
		if (!(mbox_msg_flags(sel->mb, i) & MBOX_SEEN)) {
			unseen = i + 1;
			break;
		}
	if (unseen > 0)
		resp_untagged(s, "OK [UNSEEN %u] First unseen", unseen);
	resp_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mbox_uidvalidity(sel->mb));
	resp_untagged(s, "OK [UIDNEXT %u] Predicted next UID", mbox_uidnext(sel->mb));
	sel->exists = n;
	sel->recent = mbox_recent_count(sel->mb);
	s->selected = sel;
	session_set_state(s, STATE_SELECTED);
	s->on_tagged = selected_report;
	if (s->condstore)
		condstore_write_highest(s);	/* RFC 7162 3.1.2 */
	if (want_qresync) {
		int r = mbox_has_modseq(sel->mb) ? condstore_qresync(s, &q) : 0;

		condstore_qresync_clear(&q);
		if (r < 0)
			log_warnx("select %s: %s", sel->name, mbox_error(sel->mb)->msg);
	}
	resp_ok(cmd, "[%s] %s completed", sel->readonly ? "READ-ONLY" : "READ-WRITE",
	    examine ? "EXAMINE" : "SELECT");
}

void
cmd_select(struct command *cmd)
{
	select_common(cmd, false);
}

void
cmd_examine(struct command *cmd)
{
	select_common(cmd, true);
}

void
cmd_close(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;

	if (cmd->args != NULL) {
		resp_bad(cmd, "CLOSE takes no arguments");
		return;
	}
	/* RFC 3501 6.4.2: expunge silently, unless read-only */
	if (!sel->readonly) {
		uint32_t *gone;
		size_t n;

		if (mbox_expunge(sel->mb, NULL, 0, &gone, &n) < 0)
			log_warnx("close %s: %s", sel->name, mbox_error(sel->mb)->msg);
		else
			free(gone);
	}
	selected_close(s);
	resp_ok(cmd, "CLOSE completed");
}

void
cmd_unselect(struct command *cmd)
{
	if (cmd->args != NULL) {
		resp_bad(cmd, "UNSELECT takes no arguments");
		return;
	}
	selected_close(cmd->s);
	resp_ok(cmd, "UNSELECT completed");
}

void
cmd_check(struct command *cmd)
{
	struct selected *sel = cmd->s->selected;

	if (cmd->args != NULL) {
		resp_bad(cmd, "CHECK takes no arguments");
		return;
	}
	/* every change is on disk already; write anything still pending */
	if (!sel->readonly && mbox_commit_flags(sel->mb) < 0) {
		selected_store_failed(cmd, "CHECK");
		return;
	}
	resp_ok(cmd, "CHECK completed");
}

uint8_t *
selected_set(struct selected *sel, const char *text, bool uid)
{
	struct seqset set;
	uint32_t n = mbox_count(sel->mb), star;
	uint8_t *mark;
	size_t k;

	if (strcmp(text, "$") == 0) {
		/* RFC 5182 2.1: the saved result, sequence numbers or UIDs alike */
		mark = calloc((size_t)n + 1, 1);
		if (mark == NULL)
			fatalx("out of memory");
		for (k = 0; k < sel->n_saved; k++) {
			int64_t i = mbox_uid_index(sel->mb, sel->saved[k]);

			if (i >= 0 && (uint32_t)i < sel->exists)
				mark[i] = 1;
		}
		return mark;
	}
	if (!seqset_parse(text, &set))
		return NULL;
	mark = calloc((size_t)n + 1, 1);
	if (mark == NULL)
		fatalx("out of memory");
	/* '*' is the largest number in use (RFC 3501 9, seq-number) */
	if (uid)
		star = n > 0 ? mbox_msg_uid(sel->mb, n - 1) : 0;
	else
		star = sel->exists;
	for (k = 0; k < set.n; k++) {
		uint32_t lo = set.r[k].lo == SEQ_STAR ? star : (uint32_t)set.r[k].lo;
		uint32_t hi = set.r[k].hi == SEQ_STAR ? star : (uint32_t)set.r[k].hi, i;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (!uid) {
			/* a number above EXISTS, or '*' in an empty mailbox, gets BAD (RFC 3501
			 * 9, seq-number) */
			if (hi == 0 || hi > sel->exists) {
				seqset_clear(&set);
				free(mark);
				return NULL;
			}
			for (i = lo; i <= hi && i <= n; i++)
				if (i > 0)
					mark[i - 1] = 1;
			continue;
		}
		{
			/* first message with UID >= lo */
			uint32_t a = 0, b = n;

			while (a < b) {
				uint32_t mid = a + (b - a) / 2;

				if (mbox_msg_uid(sel->mb, mid) < lo)
					a = mid + 1;
				else
					b = mid;
			}
			for (i = a; i < n && i < sel->exists && mbox_msg_uid(sel->mb, i) <= hi;
			    i++)
				mark[i] = 1;
		}
	}
	seqset_clear(&set);
	return mark;
}
