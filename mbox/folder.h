/*
 * Folders: the user's mailbox names, where they live on disk, and what may be done to them.
 *
 * Names. The hierarchy delimiter is '/'. INBOX (any case) is the spool file given by the
 * caller; every other name is a path relative to the mail directory (e.g. ~/mail). Names are
 * kept in their modified UTF-7 form (RFC 3501 5.1.3) everywhere: on the wire, in this API
 * and as file names on disk, exactly as UW-IMAP and Dovecot store them, so a site that
 * switches keeps its folders. A name is checked (folder_name_parse()) before anything
 * touches the file system; refused are: invalid modified UTF-7, absolute names, names
 * starting with '~' (another user's home) or '#' (namespace syntax), "." and ".."
 * components, empty components ("a//b"), control characters (raw or encoded), components
 * that would be hidden (starting with '.', ending in ".lock"), children of INBOX, and
 * names longer than FOLDER_NAME_MAX bytes, a component longer than FOLDER_COMPONENT_MAX or
 * deeper than FOLDER_DEPTH_MAX. A trailing '/' means "a directory" (for CREATE).
 *
 * Files. A mailbox is a regular file; a directory is a \Noselect level; a mailbox cannot
 * have children (\NoInferiors). Symbolic links inside the mail directory are followed only
 * where their target stays inside it (checked with realpath(3) against the mail directory's
 * real path); others behave as if they were not there. The process runs as the user, so the
 * check keeps clients inside the namespace rather than guarding against the user's own
 * races. Hidden, never listed as mailboxes: names starting with '.', names ending in ".lock",
 * anything that is neither a regular file nor a directory, a top-level entry named INBOX
 * (any case; that name means the spool), and names that are not valid modified UTF-7.
 * Other modules keeping files in the mail directory (caches, journals) must use dot names.
 * imapd creates files 0600 and directories 0700.
 *
 * Errors. Every function returns an enum folder_status and, when err_r is not NULL, fills a
 * struct folder_error with a short message (no path, no client text) the caller may show or
 * log. Nothing here logs.
 */
#ifndef MBOX_FOLDER_H
#define MBOX_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Limits. A name is at most FOLDER_NAME_MAX bytes of modified UTF-7 (well under PATH_MAX
 * once joined to the mail directory); one component at most FOLDER_COMPONENT_MAX bytes, the
 * usual NAME_MAX of Linux file systems; at most FOLDER_DEPTH_MAX components, which also
 * bounds how deep LIST walks. LIST stops after visiting FOLDER_LIST_MAX_ENTRIES directory
 * entries so that a huge tree cannot stall a session.
 */
#define FOLDER_NAME_MAX		1024
#define FOLDER_COMPONENT_MAX	255
#define FOLDER_DEPTH_MAX	32
#define FOLDER_PATTERN_MAX	(2 * FOLDER_NAME_MAX + 1)
#define FOLDER_PATH_MAX		4096
#define FOLDER_LIST_MAX_ENTRIES	100000
/* ...and once its result holds this many bytes of names (symlinks can multiply names). */
#define FOLDER_LIST_MAX_BYTES	(8 * 1024 * 1024)
#define FOLDER_ERRMSG_MAX	96

#define FOLDER_DELIM '/'

enum folder_status {
	FOLDER_OK = 0,
	FOLDER_EBADNAME,	/* name refused by the syntax rules (RFC 5530 CANNOT) */
	FOLDER_ETOOLONG,	/* name over a length or depth limit (LIMIT) */
	FOLDER_EEXIST,		/* target already exists (ALREADYEXISTS) */
	FOLDER_ENOENT,		/* no such mailbox (NONEXISTENT) */
	FOLDER_EHASCHILDREN,	/* directory still has children (HASCHILDREN, or CANNOT) */
	FOLDER_ECANNOT,		/* can never succeed: delete INBOX, child of a mailbox (CANNOT) */
	FOLDER_EPERM,		/* permission denied, or a link leaving the mail dir (NOPERM) */
	FOLDER_EINUSE,		/* busy (INUSE) */
	FOLDER_ELIMIT,		/* an implementation limit was hit (LIMIT) */
	FOLDER_EQUOTA,		/* disk full or quota (OVERQUOTA) */
	FOLDER_EIO,		/* anything else from the system (SERVERBUG / UNAVAILABLE) */
	/*
	 * Not a failure: RENAME INBOX was asked for and the new name checked (valid, absent).
	 * RFC 3501 6.3.5 wants INBOX's messages moved to the new mailbox and INBOX left empty;
	 * that needs the mbox store, so the caller does it (folder_create() the target, move
	 * the messages, empty INBOX). Nothing was changed on disk.
	 */
	FOLDER_RENAME_INBOX,
};

struct folder_error {
	enum folder_status status;
	int sys_errno;			/* errno behind the failure, or 0 */
	char msg[FOLDER_ERRMSG_MAX];	/* short text, NUL-terminated */
};

/* A static, short description of a status. */
const char *
folder_strerror(enum folder_status status);

/* ---- names ---- */

/* folder_name_parse() flags */
#define FOLDER_NAME_DIR_OK	0x1u	/* accept a trailing '/' (sets .dir) */
#define FOLDER_NAME_CREATE	0x2u	/* also refuse the wildcards '*' and '%' */

struct folder_name {
	/* canonical name: no trailing '/', "INBOX" for any case of inbox; NUL-terminated */
	char name[FOLDER_NAME_MAX + 1];
	size_t len;
	bool inbox;
	bool dir;		/* the name had a trailing '/' */
	unsigned int depth;	/* number of components */
};

/*
 * Check `name` (`len` bytes, not NUL-terminated, as received) against the rules above and
 * fill *fn_r. Touches no file. Returns FOLDER_OK, FOLDER_EBADNAME, FOLDER_ETOOLONG, or
 * FOLDER_ECANNOT for a child of INBOX.
 */
enum folder_status
folder_name_parse(const char *name, size_t len, unsigned int flags, struct folder_name *fn_r,
    struct folder_error *err_r);

/*
 * True if a directory entry called `comp` (`len` bytes) is never shown as a mailbox: dot
 * files, "*.lock". Name syntax is checked separately.
 */
bool
folder_component_hidden(const char *comp, size_t len);

/* ---- patterns (LIST/LSUB, RFC 3501 6.3.8) ---- */

/*
 * A compiled pattern: '*' matches any run of characters, '%' any run without '/', anything
 * else itself. Matching is a bit-parallel NFA simulation: O(name length * pattern length /
 * 64) whatever the pattern, never exponential.
 */
struct folder_pattern;

/*
 * Compile reference + pattern as LIST combines them: the pattern is appended to the
 * reference, unless the pattern starts with '/' in which case the reference is ignored.
 * Neither needs to be a valid name. Returns FOLDER_OK or FOLDER_ETOOLONG (combined length
 * over FOLDER_PATTERN_MAX). Free with folder_pattern_free().
 */
enum folder_status
folder_pattern_new(const char *ref, size_t reflen, const char *pat, size_t patlen,
    struct folder_pattern **pat_r, struct folder_error *err_r);

void
folder_pattern_free(struct folder_pattern **patp);

/* Does the whole of `name` match? `fold` compares ASCII letters without case (for INBOX). */
bool
folder_pattern_match(const struct folder_pattern *pat, const char *name, size_t len,
    bool fold);

/*
 * Does the pattern match INBOX? RFC 3501 5.1 makes the name INBOX case-insensitive, so a
 * pattern that starts with "INBOX" in any case ("inbox", "Inbox*") compares that prefix
 * without case; any other pattern must match the name "INBOX" as written ("I*" does,
 * "*i*" does not).
 */
bool
folder_pattern_match_inbox(const struct folder_pattern *pat);

/*
 * Incremental matching, for walking a tree: a state holds how much of the pattern the text
 * fed so far can have matched. folder_pattern_state_new() returns the start state (NULL only
 * if allocation fails); _feed() advances over more text; _accepts() says whether the text fed
 * so far matches; _dead() that no continuation can match. _copy() duplicates into a state of
 * the same pattern. States borrow the pattern, which must outlive them.
 */
struct folder_pstate;

struct folder_pstate *
folder_pstate_new(const struct folder_pattern *pat);
void
folder_pstate_free(struct folder_pstate **stp);
void
folder_pstate_copy(struct folder_pstate *dst, const struct folder_pstate *src);
void
folder_pstate_feed(struct folder_pstate *st, const char *text, size_t len, bool fold);
bool
folder_pstate_accepts(const struct folder_pstate *st);
bool
folder_pstate_dead(const struct folder_pstate *st);

/* The combined reference + pattern text, NUL-terminated; borrowed from pat. */
const char *
folder_pattern_text(const struct folder_pattern *pat, size_t *len_r);

/* ---- the user's folders ---- */

/* Special-use attributes, RFC 6154, and the other LIST attributes. */
#define FOLDER_ATTR_NOSELECT		0x0001u
#define FOLDER_ATTR_NOINFERIORS		0x0002u
#define FOLDER_ATTR_HASCHILDREN		0x0004u
#define FOLDER_ATTR_HASNOCHILDREN	0x0008u
#define FOLDER_ATTR_MARKED		0x0010u
#define FOLDER_ATTR_UNMARKED		0x0020u
#define FOLDER_ATTR_NONEXISTENT		0x0040u
#define FOLDER_ATTR_SUBSCRIBED		0x0080u
#define FOLDER_ATTR_ALL			0x0100u
#define FOLDER_ATTR_ARCHIVE		0x0200u
#define FOLDER_ATTR_DRAFTS		0x0400u
#define FOLDER_ATTR_FLAGGED		0x0800u
#define FOLDER_ATTR_JUNK		0x1000u
#define FOLDER_ATTR_SENT		0x2000u
#define FOLDER_ATTR_TRASH		0x4000u
#define FOLDER_ATTR_SPECIAL_USE		0x7f00u

/* One entry of a special-use map: a mailbox name (modified UTF-7) and its attribute. */
struct folder_special {
	const char *name;
	unsigned int attr;
};

/*
 * The default map, terminated by a NULL name: Sent, Sent Messages, Sent Items, Drafts,
 * Trash, Deleted Messages, Deleted Items, Junk, Spam, Archive. Names compare without ASCII
 * case, so "sent" is \Sent too.
 */
extern const struct folder_special folder_special_defaults[];

struct folder_config {
	const char *maildir;	/* absolute path of the mail directory, e.g. /home/u/mail */
	const char *inbox;	/* absolute path of the spool file, e.g. /var/mail/u */
	const char *home;	/* home directory (~/.mailboxlist import), or NULL */
	/* special-use map (NULL-name terminated), or NULL for folder_special_defaults */
	const struct folder_special *special;
};

struct folder_root;

/*
 * Make a root from `cfg` (the strings and the map are copied). The mail directory need not
 * exist yet: CREATE and SUBSCRIBE make it (0700). Returns FOLDER_OK, FOLDER_EBADNAME for a
 * relative or over-long path, or FOLDER_EIO (allocation).
 */
enum folder_status
folder_root_new(const struct folder_config *cfg, struct folder_root **root_r,
    struct folder_error *err_r);

void
folder_root_free(struct folder_root **rootp);

/* Borrowed configuration strings, valid while the root lives. home may be NULL. */
const char *
folder_root_maildir(const struct folder_root *root);
const char *
folder_root_inbox(const struct folder_root *root);
const char *
folder_root_home(const struct folder_root *root);

/* Special-use attribute bits for `name` from the root's map (0 if none). */
unsigned int
folder_special_use(const struct folder_root *root, const char *name, size_t len);

enum folder_type {
	FOLDER_T_NONE = 0,	/* nothing there */
	FOLDER_T_MAILBOX,	/* a regular file (or INBOX, even if the spool is missing) */
	FOLDER_T_DIR,		/* a directory: \Noselect */
};

struct folder_ref {
	struct folder_name n;
	char path[FOLDER_PATH_MAX];	/* spool path, or mail directory + "/" + name; when
					 * the last component is a link, the real path of
					 * its target (the store opens without following) */
	enum folder_type type;		/* what is there now, symlinks (inside) followed */
	bool link;			/* the last component is a symlink (staying inside) */
};

/*
 * Check `name` (flags as folder_name_parse()) and find what it refers to. Symbolic links on
 * the way are followed only when they resolve inside the mail directory. Returns FOLDER_OK
 * with ref_r->type FOLDER_T_NONE when nothing is there (the name may still be free to
 * create), FOLDER_EBADNAME/ETOOLONG for a refused name, FOLDER_ECANNOT when a leading
 * component is a mailbox (a mailbox has no children), FOLDER_EPERM when a link leaves the
 * mail directory, FOLDER_EIO otherwise.
 * This is how other modules turn a client's mailbox name into a path to open.
 */
enum folder_status
folder_resolve(const struct folder_root *root, const char *name, size_t len, unsigned int flags,
    struct folder_ref *ref_r, struct folder_error *err_r);

/*
 * CREATE (RFC 3501 6.3.3): makes missing intermediate directories (0700), then an empty
 * mailbox file (0600) or, for a trailing '/', a directory (0700); the parent directory is
 * fsync'ed. Errors: FOLDER_EEXIST (also for INBOX, and when a directory of that name exists),
 * FOLDER_ECANNOT (a leading component is a mailbox), name errors, FOLDER_EPERM, FOLDER_EQUOTA,
 * FOLDER_EIO.
 */
enum folder_status
folder_create(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r);

/*
 * DELETE (RFC 3501 6.3.4): removes a mailbox file or an empty directory (a symlink itself,
 * never its target). INBOX: FOLDER_ECANNOT. A directory with entries: FOLDER_EHASCHILDREN.
 * Missing: FOLDER_ENOENT. Caches or journals the store keeps for the mailbox are the store's
 * to remove.
 */
enum folder_status
folder_delete(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r);

/*
 * RENAME (RFC 3501 6.3.5): renames a mailbox, or a directory with everything below it, to a
 * name that must not exist (FOLDER_EEXIST, checked atomically where the file system allows
 * with renameat2(RENAME_NOREPLACE)); missing intermediate directories of the new name are
 * made. Renaming into oneself ("a" to "a/b") is FOLDER_ECANNOT; a missing source
 * FOLDER_ENOENT; a target of INBOX FOLDER_EEXIST. A source of INBOX returns
 * FOLDER_RENAME_INBOX (see above) without changing anything.
 */
enum folder_status
folder_rename(const struct folder_root *root, const char *oldname, size_t oldlen,
    const char *newname, size_t newlen, struct folder_error *err_r);

/* ---- listing ---- */

struct folder_entry {
	char *name;		/* modified UTF-7, NUL-terminated */
	size_t len;
	unsigned int attrs;	/* FOLDER_ATTR_* */
};

struct folder_list {
	struct folder_entry *v;	/* sorted by name, INBOX first */
	size_t count;
	size_t alloc;
	bool truncated;		/* a walk limit was hit; the list is incomplete */
};

/*
 * LIST (RFC 3501 6.3.8) of reference + pattern (see folder_pattern_new()) over INBOX and the
 * mail directory. Attributes: mailboxes \NoInferiors (the spool too) and \Marked or
 * \Unmarked (modified after last read, the way mail readers have always guessed it);
 * directories \Noselect and \HasChildren or \HasNoChildren (RFC 3348); special-use
 * attributes from the map. An empty pattern gives an empty list (the caller answers
 * `LIST "" ""` itself). The walk is bounded by FOLDER_DEPTH_MAX, FOLDER_LIST_MAX_ENTRIES
 * and FOLDER_LIST_MAX_BYTES and does not enter a directory twice on one path (symlink
 * loops); when a bound stops it, the list so far is returned with truncated set.
 * Returns FOLDER_OK, FOLDER_ETOOLONG or FOLDER_EIO (the mail directory missing is not an
 * error). Free with folder_list_free().
 */
enum folder_status
folder_list(const struct folder_root *root, const char *ref, size_t reflen, const char *pat,
    size_t patlen, struct folder_list **list_r, struct folder_error *err_r);

void
folder_list_free(struct folder_list **listp);

/* Helpers for building lists (used by the subscriptions module too). */
struct folder_list *
folder_list_new(void);
/* Append a copy of name; returns 0 or -1 (allocation). */
int
folder_list_add(struct folder_list *list, const char *name, size_t len, unsigned int attrs);
/* Index of name, or -1. Linear. */
long
folder_list_find(const struct folder_list *list, const char *name, size_t len);
/* Sort by name, INBOX first. */
void
folder_list_sort(struct folder_list *list);

#endif
