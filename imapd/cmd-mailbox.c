/*
 * Mailbox commands: LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, NAMESPACE,
 * STATUS (RFC 3501 6.3, RFC 2342). Names, paths and subscriptions are mbox/folder.h and
 * mbox/subs.h; this file only speaks the protocol: arguments, untagged data, and the
 * RFC 5530 response code for each kind of failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imapd/command.h"
#include "imapd/condstore.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"
#include "mbox/folder.h"
#include "mbox/mbox.h"
#include "mbox/subs.h"

/* The RFC 5530 response code for a folder failure. */
static const char *
folder_code(enum folder_status st)
{
	switch (st) {
	case FOLDER_EBADNAME:
	case FOLDER_ECANNOT:
	case FOLDER_EHASCHILDREN:	/* HASCHILDREN is IMAP4rev2 only (RFC 9051) */
		return "CANNOT";
	case FOLDER_ETOOLONG:
	case FOLDER_ELIMIT:
		return "LIMIT";
	case FOLDER_EEXIST:
		return "ALREADYEXISTS";
	case FOLDER_ENOENT:
		return "NONEXISTENT";
	case FOLDER_EPERM:
		return "NOPERM";
	case FOLDER_EINUSE:
		return "INUSE";
	case FOLDER_EQUOTA:
		return "OVERQUOTA";
	case FOLDER_OK:
	case FOLDER_EIO:
	case FOLDER_RENAME_INBOX:
		break;
	}
	return "UNAVAILABLE";
}

static void
folder_no(struct command *cmd, const char *what, enum folder_status st,
    const struct folder_error *err)
{
	const char *msg = err->status == st && err->msg[0] != '\0' ? err->msg :
	    folder_strerror(st);

	if (st == FOLDER_EIO)
		log_warnx("%s: %s", what, msg);
	resp_no(cmd, "[%s] %s failed: %s", folder_code(st), what, msg);
}

/* The user's folders, as the session's configuration places them. NULL: answered. */
static struct folder_root *
root_open(struct command *cmd)
{
	struct session *s = cmd->s;
	struct folder_config fc = { s->mail_dir, s->spool_path, s->home, NULL };
	struct folder_root *root = NULL;
	struct folder_error err = { 0 };
	enum folder_status st = folder_root_new(&fc, &root, &err);

	if (st != FOLDER_OK) {
		log_warnx("mail paths: %s", err.msg);
		resp_no(cmd, "[SERVERBUG] Mail directory misconfigured");
		return NULL;
	}
	return root;
}

/* An astring argument as text without NUL; NULL if it is not one. */
static const char *
astring_arg(const struct imap_arg *a, size_t *len_r)
{
	const char *str;

	if (a == NULL || !arg_is_astring(a) || (str = arg_cstring(a)) == NULL)
		return NULL;
	*len_r = a->len;
	return str;
}

/* STATUS data items, RFC 3501 6.3.10 and SIZE from RFC 8438. */
enum status_item {
	ST_MESSAGES = 0x01,
	ST_RECENT = 0x02,
	ST_UIDNEXT = 0x04,
	ST_UIDVALIDITY = 0x08,
	ST_UNSEEN = 0x10,
	ST_SIZE = 0x20,
	ST_HIGHESTMODSEQ = 0x40,	/* RFC 7162 3.1.7 */
};

static const struct {
	const char *name;
	unsigned int bit;
} status_items[] = {
	{ "MESSAGES", ST_MESSAGES },
	{ "RECENT", ST_RECENT },
	{ "UIDNEXT", ST_UIDNEXT },
	{ "UIDVALIDITY", ST_UIDVALIDITY },
	{ "UNSEEN", ST_UNSEEN },
	{ "SIZE", ST_SIZE },
	{ "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
};

#define STATUS_ITEMS_MAX 16

/* A parenthesised, non-empty list of known STATUS items, in the order given. */
static bool
status_items_parse(struct session *s, const struct imap_arg *list, unsigned int *order,
    size_t *n_r)
{
	const struct imap_arg *it;
	size_t n = 0;

	if (list == NULL || list->type != ARG_LIST || list->list == NULL)
		return false;
	for (it = list->list; it != NULL; it = it->next) {
		size_t k;

		for (k = 0; k < sizeof(status_items) / sizeof(status_items[0]); k++)
			if (it->type == ARG_ATOM && arg_is_atom(it, status_items[k].name))
				break;
		if (k == sizeof(status_items) / sizeof(status_items[0]) || n == STATUS_ITEMS_MAX)
			return false;
		if (status_items[k].bit == ST_HIGHESTMODSEQ) {
			if (!condstore_offered(s))
				return false;
			condstore_enable(s);	/* an enabling command (RFC 7162 3.1) */
		}
		order[n++] = status_items[k].bit;
	}
	*n_r = n;
	return true;
}

/*
 * Open the mailbox at ref read-only and write "* STATUS name (...)". Returns 0, or -1 with
 * *merr filled and nothing written. The open is given the state directory, so that a
 * mailbox whose file has not changed since the last look is answered from its cache
 * without a parse, and an expunge a killed process left half done is finished before
 * anything is counted (mbox_open()).
 *
 * The selected mailbox is not opened a second time.  RFC 9051 6.3.11 says servers MUST
 * answer STATUS on it (clients SHOULD NOT ask): the selection is brought up to date the
 * way the tagged response would (selected_report(): EXPUNGE, EXISTS, RECENT first), and
 * the counts are its own, so they agree with what the client has just been told and
 * RECENT counts the messages that are \Recent in this session.
 */
static int
status_put(struct command *cmd, const char *name, size_t len, const struct folder_ref *ref,
    const unsigned int *order, size_t nitems, struct mbox_error *merr)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	struct mbox *mb = NULL, *own = NULL;
	char state[FOLDER_PATH_MAX];
	const char *dir;

	if (sel != NULL && strcmp(mbox_path(sel->mb), ref->path) == 0) {
		selected_report(cmd);
		if (s->ending)
			return 0;	/* BYE sent: the selection could not be kept */
		mb = sel->mb;
	} else {
		dir = selected_state_dir(s, state, sizeof(state)) == 0 ? state : NULL;
		if (mbox_open(ref->path, dir, ref->n.inbox ? MBOX_OPEN_MISSING_OK : 0, &own,
		    merr) != 0)
			return -1;
		mb = own;
	}
	uint32_t n = mbox_count(mb), unseen = 0;
	uint64_t size = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!(mbox_msg_flags(mb, i) & MBOX_SEEN))
			unseen++;
		size += mbox_msg_size(mb, i);
	}
	resp_printf(s, "* STATUS ");
	resp_string(s, name, len);
	resp_raw(s, " (", 2);
	for (size_t i = 0; i < nitems; i++) {
		const char *sp = i > 0 ? " " : "";
		switch (order[i]) {
		case ST_MESSAGES:
			resp_printf(s, "%sMESSAGES %u", sp, n);
			break;
		case ST_RECENT:
			resp_printf(s, "%sRECENT %u", sp, mbox_recent_count(mb));
			break;
		case ST_UIDNEXT:
			resp_printf(s, "%sUIDNEXT %u", sp, mbox_uidnext(mb));
			break;
		case ST_UIDVALIDITY:
			resp_printf(s, "%sUIDVALIDITY %u", sp, mbox_uidvalidity(mb));
			break;
		case ST_UNSEEN:
			resp_printf(s, "%sUNSEEN %u", sp, unseen);
			break;
		case ST_SIZE:
			resp_printf(s, "%sSIZE %llu", sp, (unsigned long long)size);
			break;
		case ST_HIGHESTMODSEQ:
			/* 0 for a mailbox without mod-sequences (RFC 7162 3.1.7) */
			resp_printf(s, "%sHIGHESTMODSEQ %llu", sp,
			    (unsigned long long)mbox_highest_modseq(mb));
			break;
		}
	}
	resp_raw(s, ")", 1);
	resp_crlf(s);
	mbox_free(&own);
	return 0;
}

static void
put_attrs(struct session *s, unsigned int attrs)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {
		{ FOLDER_ATTR_NOSELECT, "\\Noselect" },
		{ FOLDER_ATTR_NOINFERIORS, "\\NoInferiors" },
		{ FOLDER_ATTR_NONEXISTENT, "\\NonExistent" },
		{ FOLDER_ATTR_HASCHILDREN, "\\HasChildren" },
		{ FOLDER_ATTR_HASNOCHILDREN, "\\HasNoChildren" },
		{ FOLDER_ATTR_MARKED, "\\Marked" },
		{ FOLDER_ATTR_UNMARKED, "\\Unmarked" },
		{ FOLDER_ATTR_SUBSCRIBED, "\\Subscribed" },
		{ FOLDER_ATTR_ALL, "\\All" },
		{ FOLDER_ATTR_ARCHIVE, "\\Archive" },
		{ FOLDER_ATTR_DRAFTS, "\\Drafts" },
		{ FOLDER_ATTR_FLAGGED, "\\Flagged" },
		{ FOLDER_ATTR_JUNK, "\\Junk" },
		{ FOLDER_ATTR_SENT, "\\Sent" },
		{ FOLDER_ATTR_TRASH, "\\Trash" },
	};
	bool first = true;

	resp_raw(s, "(", 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(attrs & names[i].bit))
			continue;
		if (!first)
			resp_raw(s, " ", 1);
		resp_raw(s, names[i].name, strlen(names[i].name));
		first = false;
	}
	resp_raw(s, ")", 1);
}

static void
put_list(struct session *s, const char *verb, const struct folder_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		resp_printf(s, "* %s ", verb);
		put_attrs(s, l->v[i].attrs);
		resp_printf(s, " \"%c\" ", FOLDER_DELIM);
		resp_string(s, l->v[i].name, l->v[i].len);
		resp_crlf(s);
	}
}

/* LIST and LSUB: reference and pattern (RFC 3501 6.3.8, 6.3.9). */
static void
list_common(struct command *cmd, bool lsub)
{
	const char *verb = lsub ? "LSUB" : "LIST";
	const struct imap_arg *a = cmd->args;
	const char *ref, *pat;
	size_t reflen, patlen;
	struct folder_root *root;
	struct folder_list *l = NULL;
	struct folder_error err = { 0 };
	enum folder_status st;

	if (arg_count(a) != 2 || (ref = astring_arg(a, &reflen)) == NULL ||
	    (pat = astring_arg(a->next, &patlen)) == NULL) {
		resp_bad(cmd, "%s takes a reference and a mailbox pattern", verb);
		return;
	}
	if (patlen == 0 && !lsub) {
		/* The delimiter and the root: our names are not rooted, so the root is "". */
		resp_untagged(cmd->s, "LIST (\\Noselect) \"%c\" \"\"", FOLDER_DELIM);
		resp_ok(cmd, "LIST completed");
		return;
	}
	if ((root = root_open(cmd)) == NULL)
		return;
	if (lsub)
		st = subs_lsub(root, ref, reflen, pat, patlen, &l, &err);
	else
		st = folder_list(root, ref, reflen, pat, patlen, &l, &err);
	folder_root_free(&root);
	if (st != FOLDER_OK) {
		folder_no(cmd, verb, st, &err);
		return;
	}
	put_list(cmd->s, verb, l);
	if (l->truncated)
		resp_ok(cmd, "%s completed, but there were too many folders to list them all",
		    verb);
	else
		resp_ok(cmd, "%s completed", verb);
	folder_list_free(&l);
}

/*
 * Extended LIST (RFC 5258) with the STATUS return option (RFC 5819) and the SPECIAL-USE
 * options (RFC 6154).
 */
#define SEL_SUBSCRIBED	0x01u
#define SEL_RECURSIVE	0x02u
#define SEL_SPECIAL	0x04u
#define SEL_REMOTE	0x08u	/* accepted; there are no remote mailboxes */
#define RET_SUBSCRIBED	0x01u
#define RET_CHILDREN	0x02u
#define RET_SPECIAL	0x04u
#define RET_STATUS	0x08u
/* Entry bits of our own, above the FOLDER_ATTR_* ones. */
#define XATTR_CHILDINFO	0x40000000u	/* listed for a descendant that meets the criteria */
#define XATTR_MEETS	0x80000000u	/* meets the selection criteria itself */
#define XLIST_PATTERNS_MAX 64
/*
 * LIST-STATUS opens and reads every listed mailbox; past this many the STATUS replies are
 * dropped, as RFC 5819 section 2 allows, so one command cannot read a whole mail store.
 */
#define XLIST_STATUS_MAX 1000

struct xlist {
	unsigned int sel, ret;
	unsigned int order[STATUS_ITEMS_MAX];
	size_t nitems;
	struct folder_pattern *pats[XLIST_PATTERNS_MAX];
	size_t npats;
};

static bool
xlist_options(struct session *s, const struct imap_arg *list, bool select, struct xlist *x)
{
	const struct imap_arg *o;

	for (o = list->list; o != NULL; o = o->next) {
		if (o->type != ARG_ATOM)
			return false;
		if (select && arg_is_atom(o, "SUBSCRIBED"))
			x->sel |= SEL_SUBSCRIBED;
		else if (select && arg_is_atom(o, "RECURSIVEMATCH"))
			x->sel |= SEL_RECURSIVE;
		else if (select && arg_is_atom(o, "SPECIAL-USE"))
			x->sel |= SEL_SPECIAL;
		else if (select && arg_is_atom(o, "REMOTE"))
			x->sel |= SEL_REMOTE;
		else if (!select && arg_is_atom(o, "SUBSCRIBED"))
			x->ret |= RET_SUBSCRIBED;
		else if (!select && arg_is_atom(o, "CHILDREN"))
			x->ret |= RET_CHILDREN;
		else if (!select && arg_is_atom(o, "SPECIAL-USE"))
			x->ret |= RET_SPECIAL;
		else if (!select && arg_is_atom(o, "STATUS") && !(x->ret & RET_STATUS) &&
		    status_items_parse(s, o->next, x->order, &x->nitems)) {
			x->ret |= RET_STATUS;
			o = o->next;
		} else
			return false;
	}
	/* RECURSIVEMATCH needs a base option (RFC 5258 6: list-select-opts). */
	if ((x->sel & SEL_RECURSIVE) && !(x->sel & (SEL_SUBSCRIBED | SEL_SPECIAL)))
		return false;
	return true;
}

static bool
xlist_match(const struct xlist *x, const char *name, size_t len)
{
	bool inbox = len == 5 && memcmp(name, "INBOX", 5) == 0;

	for (size_t i = 0; i < x->npats; i++)
		if (inbox ? folder_pattern_match_inbox(x->pats[i]) :
		    folder_pattern_match(x->pats[i], name, len, false))
			return true;
	return false;
}

/* Sort by name (INBOX first) and merge entries of the same name, or-ing their bits. */
static void
list_merge(struct folder_list *l)
{
	size_t j = 0;

	folder_list_sort(l);
	for (size_t i = 1; i < l->count; i++) {
		if (strcmp(l->v[i].name, l->v[j].name) == 0) {
			l->v[j].attrs |= l->v[i].attrs;
			free(l->v[i].name);
		} else
			l->v[++j] = l->v[i];
	}
	if (l->count > 0)
		l->count = j + 1;
}

static int
entry_key_cmp(const void *key, const void *elem)
{
	const char *k = key;
	const struct folder_entry *e = elem;
	bool ki = strcmp(k, "INBOX") == 0, ei = strcmp(e->name, "INBOX") == 0;

	if (ki != ei)
		return ki ? -1 : 1;
	return strcmp(k, e->name);
}

/* Entry of a list sorted by list_merge(), or NULL. */
static struct folder_entry *
list_lookup(const struct folder_list *l, const char *name)
{
	return bsearch(name, l->v, l->count, sizeof(l->v[0]), entry_key_cmp);
}

/* Does the candidate meet every selection option? */
static bool
xlist_meets(const struct xlist *x, const struct subs *subs, const char *name, unsigned int attrs)
{
	if ((x->sel & SEL_SUBSCRIBED) && !subs_has(subs, name, strlen(name)))
		return false;
	if ((x->sel & SEL_SPECIAL) && ((attrs & FOLDER_ATTR_NONEXISTENT) ||
	    !(attrs & FOLDER_ATTR_SPECIAL_USE)))
		return false;
	return true;
}

/*
 * Add a candidate (a name and what is known of it) to the result: itself when it matches a
 * pattern, else, with RECURSIVEMATCH, each matching level above it (RFC 5258 3.5).
 */
static int
xlist_candidate(const struct xlist *x, const struct folder_list *known, struct folder_list *out,
    const char *name, unsigned int attrs)
{
	size_t len = strlen(name);

	if (xlist_match(x, name, len))
		return folder_list_add(out, name, len, attrs | XATTR_MEETS);
	if (!(x->sel & SEL_RECURSIVE))
		return 0;
	for (const char *q = name; (q = memchr(q, FOLDER_DELIM, len - (size_t)(q - name)));
	    q++) {
		size_t k = (size_t)(q - name);
		char parent[FOLDER_NAME_MAX + 1];

		if (k > FOLDER_NAME_MAX || !xlist_match(x, name, k))
			continue;
		memcpy(parent, name, k);
		parent[k] = '\0';
		const struct folder_entry *e = list_lookup(known, parent);
		if (folder_list_add(out, parent, k, (e != NULL ? e->attrs :
		    FOLDER_ATTR_NONEXISTENT) | XATTR_CHILDINFO) != 0)
			return -1;
	}
	return 0;
}

static void
put_xlist(struct command *cmd, const struct xlist *x, const struct folder_list *l,
    const struct folder_root *root)
{
	struct session *s = cmd->s;
	size_t nstatus = 0;

	for (size_t i = 0; i < l->count; i++) {
		const struct folder_entry *e = &l->v[i];
		unsigned int attrs = e->attrs & ~(XATTR_CHILDINFO | XATTR_MEETS);

		if (attrs & FOLDER_ATTR_NONEXISTENT)
			attrs &= ~(FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASNOCHILDREN);
		resp_printf(s, "* LIST ");
		put_attrs(s, attrs);
		resp_printf(s, " \"%c\" ", FOLDER_DELIM);
		resp_string(s, e->name, e->len);
		if (e->attrs & XATTR_CHILDINFO) {
			resp_printf(s, " (\"CHILDINFO\" (%s%s%s))",
			    x->sel & SEL_SUBSCRIBED ? "\"SUBSCRIBED\"" : "",
			    (x->sel & SEL_SUBSCRIBED) && (x->sel & SEL_SPECIAL) ? " " : "",
			    x->sel & SEL_SPECIAL ? "\"SPECIAL-USE\"" : "");
		}
		resp_crlf(s);
		/* RFC 5819: STATUS only for selectable mailboxes that were selected. */
		if ((x->ret & RET_STATUS) && (e->attrs & XATTR_MEETS) &&
		    !(attrs & (FOLDER_ATTR_NOSELECT | FOLDER_ATTR_NONEXISTENT)) &&
		    nstatus++ < XLIST_STATUS_MAX) {
			struct folder_ref ref;
			struct mbox_error merr;

			if (folder_resolve(root, e->name, e->len, 0, &ref, NULL) == FOLDER_OK &&
			    ref.type == FOLDER_T_MAILBOX)
				(void)status_put(cmd, e->name, e->len, &ref, x->order,
				    x->nitems, &merr);
		}
	}
}

static void
list_extended(struct command *cmd, const struct imap_arg *sel, const struct imap_arg *refarg,
    const struct imap_arg *patarg, const struct imap_arg *ret)
{
	struct xlist x;
	const char *ref;
	size_t reflen;
	struct folder_root *root = NULL;
	struct folder_list *known = NULL, *all = NULL, *out = NULL;
	struct subs *subs = NULL;
	struct folder_error err = { 0 };
	enum folder_status st = FOLDER_OK;
	bool truncated = false;

	memset(&x, 0, sizeof(x));
	if ((sel != NULL && !xlist_options(cmd->s, sel, true, &x)) ||
	    (ret != NULL && !xlist_options(cmd->s, ret, false, &x)) ||
	    (ref = astring_arg(refarg, &reflen)) == NULL) {
		resp_bad(cmd, "Invalid extended LIST options or arguments");
		return;
	}
	const struct imap_arg *p = patarg->type == ARG_LIST ? patarg->list : patarg;
	if (p == NULL) {
		resp_bad(cmd, "LIST needs a mailbox pattern");
		return;
	}
	if ((root = root_open(cmd)) == NULL)
		return;
	known = folder_list_new();
	out = folder_list_new();
	if (known == NULL || out == NULL)
		fatalx("out of memory");
	/* Every pattern's matches (RFC 5258 3: an empty pattern is ignored). */
	for (; p != NULL && st == FOLDER_OK; p = patarg->type == ARG_LIST ? p->next : NULL) {
		const char *pat;
		size_t patlen;
		struct folder_list *l = NULL;

		if ((pat = astring_arg(p, &patlen)) == NULL || x.npats == XLIST_PATTERNS_MAX) {
			folder_root_free(&root);
			folder_list_free(&known);
			folder_list_free(&out);
			while (x.npats > 0)
				folder_pattern_free(&x.pats[--x.npats]);
			resp_bad(cmd, "Invalid or too many mailbox patterns");
			return;
		}
		if (patlen == 0)
			continue;
		st = folder_pattern_new(ref, reflen, pat, patlen, &x.pats[x.npats], &err);
		if (st != FOLDER_OK)
			break;
		x.npats++;
		st = folder_list(root, ref, reflen, pat, patlen, &l, &err);
		if (st != FOLDER_OK)
			break;
		truncated |= l->truncated;
		for (size_t i = 0; i < l->count; i++)
			if (folder_list_add(known, l->v[i].name, l->v[i].len, l->v[i].attrs) != 0)
				fatalx("out of memory");
		folder_list_free(&l);
	}
	list_merge(known);
	if (st == FOLDER_OK && (x.sel & SEL_SUBSCRIBED || x.ret & RET_SUBSCRIBED))
		st = subs_load(root, &subs, &err);
	if (st == FOLDER_OK && (x.sel & SEL_SUBSCRIBED)) {
		/* Candidates: the subscribed names, existing or not. */
		for (size_t i = 0; i < subs->count; i++) {
			const char *n = subs->names[i];
			const struct folder_entry *e = list_lookup(known, n);
			unsigned int attrs;
			struct folder_ref r;

			if (e != NULL)
				attrs = e->attrs;
			else if (folder_resolve(root, n, strlen(n), 0, &r, NULL) == FOLDER_OK &&
			    r.type != FOLDER_T_NONE)
				attrs = r.type == FOLDER_T_DIR ? FOLDER_ATTR_NOSELECT :
				    FOLDER_ATTR_NOINFERIORS | folder_special_use(root, n, strlen(n));
			else
				attrs = FOLDER_ATTR_NONEXISTENT;
			if (xlist_meets(&x, subs, n, attrs) &&
			    xlist_candidate(&x, known, out, n, attrs) != 0)
				fatalx("out of memory");
		}
	} else if (st == FOLDER_OK) {
		/* Candidates: the existing mailboxes; all of them when descendants count. */
		const struct folder_list *cand = known;
		if (x.sel & SEL_RECURSIVE) {
			st = folder_list(root, "", 0, "*", 1, &all, &err);
			if (st == FOLDER_OK) {
				truncated |= all->truncated;
				cand = all;
			}
		}
		for (size_t i = 0; st == FOLDER_OK && i < cand->count; i++)
			if (xlist_meets(&x, subs, cand->v[i].name, cand->v[i].attrs) &&
			    xlist_candidate(&x, known, out, cand->v[i].name,
			    cand->v[i].attrs) != 0)
				fatalx("out of memory");
	}
	if (st != FOLDER_OK) {
		folder_no(cmd, "LIST", st, &err);
		goto out;
	}
	list_merge(out);
	if (x.sel & SEL_SUBSCRIBED || x.ret & RET_SUBSCRIBED)
		for (size_t i = 0; i < out->count; i++)
			if (subs_has(subs, out->v[i].name, out->v[i].len))
				out->v[i].attrs |= FOLDER_ATTR_SUBSCRIBED;
	put_xlist(cmd, &x, out, root);
	if (truncated)
		resp_ok(cmd, "LIST completed, but there were too many folders to list them all");
	else
		resp_ok(cmd, "LIST completed");
out:
	while (x.npats > 0)
		folder_pattern_free(&x.pats[--x.npats]);
	subs_free(&subs);
	folder_list_free(&known);
	folder_list_free(&all);
	folder_list_free(&out);
	folder_root_free(&root);
}

/*
 * LIST, in the RFC 3501 form or, when it has selection options, a list of patterns or
 * return options, in the RFC 5258 form.
 */
void
cmd_list(struct command *cmd)
{
	const struct imap_arg *a = cmd->args, *sel = NULL, *ret = NULL;
	size_t n = arg_count(a);

	if (a != NULL && a->type == ARG_LIST) {
		sel = a;
		a = a->next;
		n--;
	}
	if (n == 4 && arg_is_atom(a->next->next, "RETURN") &&
	    a->next->next->next->type == ARG_LIST) {
		ret = a->next->next->next;
		n = 2;
	}
	if (sel == NULL && ret == NULL && (a == NULL || a->next == NULL ||
	    a->next->type != ARG_LIST)) {
		list_common(cmd, false);
		return;
	}
	if (n != 2) {
		resp_bad(cmd, "LIST takes a reference and a mailbox pattern");
		return;
	}
	list_extended(cmd, sel, a, a->next, ret);
}

void
cmd_lsub(struct command *cmd)
{
	list_common(cmd, true);
}

/* RFC 2342: one personal namespace, no prefix, delimiter '/'. */
void
cmd_namespace(struct command *cmd)
{
	if (cmd->args != NULL) {
		resp_bad(cmd, "NAMESPACE takes no arguments");
		return;
	}
	resp_untagged(cmd->s, "NAMESPACE ((\"\" \"%c\")) NIL NIL", FOLDER_DELIM);
	resp_ok(cmd, "NAMESPACE completed");
}

/* Commands whose arguments are one or two mailbox names. */
static bool
name_args(struct command *cmd, size_t n, const char **name_r, size_t *len_r,
    const char **name2_r, size_t *len2_r)
{
	const struct imap_arg *a = cmd->args;

	if (arg_count(a) != n || (*name_r = astring_arg(a, len_r)) == NULL ||
	    (n == 2 && (*name2_r = astring_arg(a->next, len2_r)) == NULL)) {
		resp_bad(cmd, "%s takes %s", cmd->name, n == 1 ? "a mailbox name" :
		    "two mailbox names");
		return false;
	}
	return true;
}

/* CREATE and DELETE: one mailbox name, one folder operation, a plain completion. */
static void
one_name_op(struct command *cmd, const char *what,
    enum folder_status (*op)(const struct folder_root *, const char *, size_t,
	struct folder_error *))
{
	const char *name;
	size_t len;
	struct folder_root *root;
	struct folder_error err = { 0 };
	enum folder_status st;

	if (!name_args(cmd, 1, &name, &len, NULL, NULL) || (root = root_open(cmd)) == NULL)
		return;
	st = op(root, name, len, &err);
	folder_root_free(&root);
	if (st != FOLDER_OK)
		folder_no(cmd, what, st, &err);
	else
		resp_ok(cmd, "%s completed", what);
}

/* RFC 3501 6.3.3 */
void
cmd_create(struct command *cmd)
{
	one_name_op(cmd, "CREATE", folder_create);
}

/* RFC 3501 6.3.4 */
void
cmd_delete(struct command *cmd)
{
	one_name_op(cmd, "DELETE", folder_delete);
}

/*
 * RENAME INBOX (RFC 3501 6.3.5): every message moves to the new mailbox and INBOX stays,
 * empty. Copy first, then expunge exactly the copied UIDs from INBOX, so that a crash in
 * between leaves the mail twice rather than lost, and mail that arrives meanwhile stays in
 * INBOX.
 */
static void
rename_inbox(struct command *cmd, struct folder_root *root, const char *name, size_t len)
{
	struct folder_error err = { 0 };
	struct mbox_error merr = { 0 };
	struct folder_ref ref;
	struct mbox *src = NULL, *dst = NULL;
	uint32_t *idx = NULL, *uids = NULL, *gone = NULL;
	size_t ngone = 0;
	char journal[FOLDER_PATH_MAX];
	enum folder_status st;
	const char *fail = NULL;

	if (selected_state_dir(cmd->s, journal, sizeof(journal)) != 0) {
		log_warn("state directory");
		resp_no(cmd, "[UNAVAILABLE] RENAME failed: cannot use imapd's state directory");
		return;
	}
	st = folder_create(root, name, len, &err);
	if (st == FOLDER_OK)
		st = folder_resolve(root, name, len, 0, &ref, &err);
	if (st != FOLDER_OK) {
		folder_no(cmd, "RENAME", st, &err);
		return;
	}
	if (mbox_open(folder_root_inbox(root), journal, MBOX_OPEN_RW | MBOX_OPEN_MISSING_OK,
	    &src, &merr) != 0 ||
	    mbox_open(ref.path, journal, MBOX_OPEN_RW, &dst, &merr) != 0) {
		fail = merr.msg;
		goto undo;
	}
	uint32_t n = mbox_count(src);
	if (n > 0) {
		idx = calloc(n, sizeof(*idx));
		uids = calloc(n, sizeof(*uids));
		if (idx == NULL || uids == NULL)
			fatalx("out of memory");
		for (uint32_t i = 0; i < n; i++) {
			idx[i] = i;
			uids[i] = mbox_msg_uid(src, i);
		}
		uint32_t first;
		if (mbox_copy(dst, src, idx, n, &first) != 0) {
			fail = mbox_error(dst)->msg;
			goto undo;
		}
		for (uint32_t i = 0; i < n; i++)
			mbox_msg_set_flags(src, i, mbox_msg_flags(src, i) | MBOX_DELETED,
			    mbox_msg_keywords(src, i));
		if (mbox_expunge(src, uids, n, &gone, &ngone) != 0) {
			/* The copy is complete: report, but keep it (nothing is lost). */
			log_warnx("RENAME INBOX: emptying INBOX: %s", mbox_error(src)->msg);
			resp_no(cmd, "[UNAVAILABLE] RENAME copied the messages but could not "
			    "empty INBOX: %s", mbox_error(src)->msg);
			goto out;
		}
	}
	resp_ok(cmd, "RENAME completed");
	goto out;
undo:
	mbox_free(&dst);
	folder_delete(root, name, len, NULL);
	log_warnx("RENAME INBOX: %s", fail != NULL ? fail : "failed");
	resp_no(cmd, "[UNAVAILABLE] RENAME failed: %s", fail != NULL ? fail : "store error");
out:
	free(idx);
	free(uids);
	free(gone);
	mbox_free(&src);
	mbox_free(&dst);
}

/* RFC 3501 6.3.5 */
void
cmd_rename(struct command *cmd)
{
	const char *from, *to;
	size_t flen, tlen;
	struct folder_root *root;
	struct folder_error err = { 0 };
	enum folder_status st;

	if (!name_args(cmd, 2, &from, &flen, &to, &tlen) || (root = root_open(cmd)) == NULL)
		return;
	st = folder_rename(root, from, flen, to, tlen, &err);
	if (st == FOLDER_RENAME_INBOX)
		rename_inbox(cmd, root, to, tlen);
	else if (st != FOLDER_OK)
		folder_no(cmd, "RENAME", st, &err);
	else
		resp_ok(cmd, "RENAME completed");
	folder_root_free(&root);
}

static void
subscribe_common(struct command *cmd, bool on)
{
	const char *name;
	size_t len;
	struct folder_root *root;
	struct folder_error err = { 0 };
	enum folder_status st;

	if (!name_args(cmd, 1, &name, &len, NULL, NULL) || (root = root_open(cmd)) == NULL)
		return;
	if (on)
		st = subs_subscribe(root, name, len, &err);
	else
		st = subs_unsubscribe(root, name, len, &err);
	folder_root_free(&root);
	if (st != FOLDER_OK)
		folder_no(cmd, on ? "SUBSCRIBE" : "UNSUBSCRIBE", st, &err);
	else
		resp_ok(cmd, "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

/* RFC 3501 6.3.6: a name may be subscribed whether or not the mailbox exists. */
void
cmd_subscribe(struct command *cmd)
{
	subscribe_common(cmd, true);
}

/* RFC 3501 6.3.7: a name that is not subscribed gets NO [NONEXISTENT]. */
void
cmd_unsubscribe(struct command *cmd)
{
	subscribe_common(cmd, false);
}

/* RFC 3501 6.3.10: read-only, so that STATUS never ends anyone's \Recent. */
void
cmd_status(struct command *cmd)
{
	const struct imap_arg *a = cmd->args;
	unsigned int order[STATUS_ITEMS_MAX];
	size_t nitems = 0, len;
	const char *name;
	struct folder_root *root;
	struct folder_ref ref;
	struct folder_error err = { 0 };
	struct mbox_error merr = { 0 };
	enum folder_status st;

	if (arg_count(a) != 2 || (name = astring_arg(a, &len)) == NULL ||
	    !status_items_parse(cmd->s, a->next, order, &nitems)) {
		resp_bad(cmd, "STATUS takes a mailbox name and a list of known items");
		return;
	}
	if ((root = root_open(cmd)) == NULL)
		return;
	st = folder_resolve(root, name, len, 0, &ref, &err);
	folder_root_free(&root);
	if (st != FOLDER_OK) {
		folder_no(cmd, "STATUS", st, &err);
		return;
	}
	if (ref.type == FOLDER_T_NONE) {
		resp_no(cmd, "[NONEXISTENT] STATUS failed: mailbox does not exist");
		return;
	}
	if (ref.type == FOLDER_T_DIR) {
		resp_no(cmd, "[CANNOT] STATUS failed: not a selectable mailbox");
		return;
	}
	if (status_put(cmd, name, len, &ref, order, nitems, &merr) != 0) {
		if (merr.code == MBOX_ENOTMBOX)
			resp_no(cmd, "[CANNOT] STATUS failed: not an mbox file");
		else if (merr.code == ENOENT)
			resp_no(cmd, "[NONEXISTENT] STATUS failed: mailbox does not exist");
		else {
			log_warnx("STATUS: %s", merr.msg);
			resp_no(cmd, "[UNAVAILABLE] STATUS failed: %s", merr.msg);
		}
		return;
	}
	resp_ok(cmd, "STATUS completed");
}
