/*
 * mbox-sortcache.h: the SORT and THREAD keys of a mailbox's messages (mbox/message-sort.h),
 * kept in a file beside the mailbox cache so that a SORT in a new session reads no header
 * whose keys are known.
 *
 * A message's keys depend only on its bytes, which IMAP never changes under one UID
 * (RFC 3501 2.3.1.1), so a record is named by UIDVALIDITY, UID and RFC822.SIZE (a size that
 * changed means another program rewrote the message: its record is not used).  Flag
 * changes, rewrites and expunges of other messages leave the records valid.
 *
 * The file is private to the user (the journal directory), disposable and replaced only by
 * rename, so a session's mapping of it never changes; anything unexpected in it (another
 * version, a bad checksum, a record out of bounds) makes it count as absent.
 */
#ifndef MBOX_MBOX_SORTCACHE_H
#define MBOX_MBOX_SORTCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "mbox/mbox.h"
#include "mbox/message-sort.h"

struct mbox_sortcache;

/* The cache of mb's file as it is now (empty when there is none, or no journal directory). */
struct mbox_sortcache *mbox_sortcache_open(struct mbox *mb);
void mbox_sortcache_free(struct mbox_sortcache **scp);
/*
 * Before a command: a new UIDVALIDITY drops every record; otherwise, when nothing was added,
 * a file another session wrote since is mapped instead (a stat, no reading when unchanged).
 */
void mbox_sortcache_refresh(struct mbox_sortcache *sc, struct mbox *mb);

/*
 * The keys of the message uid of this size, if cached (from the file or added since).  The
 * pointers in *k stay valid until the next mbox_sortcache_put() or _save().
 */
bool mbox_sortcache_get(struct mbox_sortcache *sc, uint32_t uid, uint64_t size,
			struct sort_keys *k);
/* Keeps a copy of keys computed for the message uid of this size. */
void mbox_sortcache_put(struct mbox_sortcache *sc, uint32_t uid, uint64_t size,
			const struct sort_keys *k);
/* Records added since the file was read. */
uint32_t mbox_sortcache_added(const struct mbox_sortcache *sc);

/*
 * When records were added: writes a new file with the records of mb's messages (the others
 * dropped) and maps it in place of the old.  Errors are ignored (the cache is disposable).
 */
void mbox_sortcache_save(struct mbox_sortcache *sc, struct mbox *mb);

#endif
