/*
 * Subscriptions: SUBSCRIBE, UNSUBSCRIBE and LSUB (RFC 3501 6.3.6, 6.3.7, 6.3.9).
 *
 * The file. <maildir>/.subscriptions holds one mailbox name per line, in the modified UTF-7
 * form used everywhere else, LF-terminated, INBOX written "INBOX"; there is no header or
 * comment syntax. This is the plain layout Dovecot's mbox storage reads too. Lines that are
 * not valid mailbox names (folder_name_parse()) and duplicates are ignored when reading and
 * dropped at the next write. Only the first SUBS_FILE_MAX bytes and SUBS_MAX names are read.
 * A file that starts with Dovecot 2.3's "V<TAB>2" header is read too: the header and blank
 * lines are skipped and a TAB inside a name is taken as the hierarchy delimiter.
 *
 * Writing. Changes are read-modify-write under an fcntl(2) lock on
 * <maildir>/.subscriptions.lock; the new list goes to a temporary file in the same directory
 * (mode 0600), is fsync'ed and renamed over the old file, and the directory is fsync'ed, so a
 * crash leaves the old or the new list, never a mix. Readers take no lock. The mail
 * directory is created (0700) if missing.
 *
 * UW-IMAP import. While <maildir>/.subscriptions does not exist, the names in the UW-IMAP
 * file <home>/.mailboxlist are used instead (read on every use, never changed). UW names are
 * relative to the home directory, so a line is taken when it names something inside the mail
 * directory: "mail/Sent" with maildir ~/mail becomes "Sent"; "~/mail/x" and absolute paths
 * under the mail directory likewise; "INBOX" (any case) is INBOX; every other line (files
 * elsewhere in the home, "#" namespaces, other users' "~user" names, invalid names) is
 * skipped. The first SUBSCRIBE or UNSUBSCRIBE writes .subscriptions, with the imported names,
 * and from then on .mailboxlist is no longer read.
 *
 * A name may be subscribed whether or not the mailbox exists, and stays subscribed when the
 * mailbox goes away, as RFC 3501 6.3.6 requires.
 */
#ifndef MBOX_SUBS_H
#define MBOX_SUBS_H

#include "mbox/folder.h"

#include <stdbool.h>
#include <stddef.h>

/* Bounds on what is read: a hostile or corrupt file cannot make a session grow without end. */
#define SUBS_MAX	10000
#define SUBS_FILE_MAX	(1024 * 1024)

#define SUBS_FILE	".subscriptions"
#define SUBS_LOCKFILE	".subscriptions.lock"
#define SUBS_UW_FILE	".mailboxlist"

struct subs {
	char **names;		/* sorted (byte order), unique, canonical names */
	size_t count;
	size_t alloc;
	bool imported;		/* came from ~/.mailboxlist */
	bool truncated;		/* the file held more than the bounds allow */
};

/*
 * Read the subscriptions (or the UW import, see above). A missing file is an empty list.
 * Returns FOLDER_OK or FOLDER_EIO / FOLDER_EPERM. Free with subs_free().
 */
enum folder_status
subs_load(const struct folder_root *root, struct subs **subs_r, struct folder_error *err_r);

void
subs_free(struct subs **subsp);

/* Is the canonical name `name` subscribed? O(log n). */
bool
subs_has(const struct subs *subs, const char *name, size_t len);

/*
 * SUBSCRIBE: add `name` (checked with folder_name_parse(); INBOX in any case is stored as
 * "INBOX"). Subscribing twice is not an error. Returns FOLDER_OK, a name error,
 * FOLDER_ELIMIT (SUBS_MAX names already), or a file error.
 */
enum folder_status
subs_subscribe(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r);

/*
 * UNSUBSCRIBE: remove `name`. A name that is not subscribed gives FOLDER_ENOENT (nothing is
 * written); the caller may treat that as success.
 */
enum folder_status
subs_unsubscribe(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r);

/*
 * LSUB (RFC 3501 6.3.9): the subscribed names matching reference + pattern (see
 * folder_pattern_new()), whether or not they exist, with no attributes. When the pattern
 * ends in '%', a level of hierarchy above a subscribed name that matches but is not itself
 * subscribed is listed with \Noselect. Sorted, INBOX first. Free with folder_list_free().
 */
enum folder_status
subs_lsub(const struct folder_root *root, const char *ref, size_t reflen, const char *pat,
    size_t patlen, struct folder_list **list_r, struct folder_error *err_r);

/* Set FOLDER_ATTR_SUBSCRIBED on the entries of `list` that are subscribed (LIST-EXTENDED). */
enum folder_status
subs_mark(const struct folder_root *root, struct folder_list *list, struct folder_error *err_r);

#endif
