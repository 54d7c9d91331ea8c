/*
 * mbox-lock.h: locking an mbox file the way Debian's MDAs and mail readers do.
 *
 * Debian Policy 11.6: an fcntl() lock on the file first, then the dotlock "PATH.lock"
 * created through liblockfile (which runs its setgid helper dotlockfile(1) when the
 * directory is not writable by the user).  Release is in the reverse order.  Stale dotlocks
 * are handled by liblockfile: one naming a dead process, or older than five minutes, is
 * removed.  fcntl locks are waited for in the kernel (F_SETLKW, woken the moment the holder
 * lets go) up to the timeout; the dotlock is retried with short sleeps, and while it is
 * busy the fcntl lock is let go between tries, since procmail takes the two in the other
 * order.
 *
 * Writers take the whole file exclusively and the dotlock.  Readers take a shared fcntl
 * lock only (MBOX_LK_SHARED), so that any number of sessions read at once while every
 * program that writes under an fcntl lock (our own sessions, Debian's MDAs, mutt) is kept
 * out; a reader that must parse a changed file adds the dotlock (MBOX_LK_DOT), which keeps
 * out mail readers that lock only that way.
 *
 * Fairness: a turnstile, an fcntl lock on the first byte of a small file of the store's own
 * (MBOX_LOCK_FILE_PREFIX in the state directory), is held by a writer from before it
 * waits for the data until it is done, dotlock waits included; readers pass through it on
 * their way in.  A waiting writer therefore stops new readers, and readers inside can see
 * it waiting (mbox_lock_writer_waiting()) and step out early.  It is a file of its own so
 * that no MDA, which locks only the mailbox, ever waits for it.  Waiters on the same lock
 * are woken together by the kernel and race, so no waiter is served by arrival order, but
 * none waits behind an endless stream of the other kind.  A mailbox opened without a
 * state directory has no turnstile.
 *
 * fcntl() locks belong to the process: a process must not lock the same file twice through
 * two descriptors, and closing any descriptor of the file drops them.  The store holds a
 * lock only inside its calls, or between mbox_read_begin() and mbox_read_end(), and opens
 * and closes no other descriptor of the file meanwhile.
 */
#ifndef MBOX_MBOX_LOCK_H
#define MBOX_MBOX_LOCK_H

#include <stdint.h>
#include <sys/types.h>

#include "mbox/mbox.h"

struct mbox_lock {
	int fd;			/* the locked file; -1 when nothing is held */
	int tfd;		/* the turnstile file while it is held, else -1 */
	int fcntl_held;
	int excl;		/* the fcntl lock is exclusive */
	int dot_held;
	char *dotpath;		/* malloc'd "PATH.lock" while wanted or held */
};

#define MBOX_LOCK_INIT { -1, -1, 0, 0, 0, NULL }

/* Lock modes (bits) */
#define MBOX_LK_SHARED	0	/* a shared fcntl lock: reading */
#define MBOX_LK_EXCL	1	/* an exclusive fcntl lock: writing (with MBOX_LK_DOT) */
#define MBOX_LK_DOT	2	/* and the dotlock */
#define MBOX_LK_WRITE	(MBOX_LK_EXCL | MBOX_LK_DOT)

/* The end of the data range readers lock at most: [0, this). */
#define MBOX_LOCK_DATA_END	((off_t)1 << 62)
/* The turnstile file: STATE_DIR/PREFIX + the hash of the mailbox path. */
#define MBOX_LOCK_FILE_PREFIX	".imapd-lock-"
/* How often a wait in F_SETLKW wakes to look at its deadline. */
#define LOCK_TICK_MS	100

/*
 * Take the fcntl lock (MBOX_LK_EXCL: exclusive, else shared) on fd, then with MBOX_LK_DOT
 * the dotlock for path.  Returns 0, or -1 with err_r set (ETIMEDOUT when another holder
 * kept it past timeout_ms; other errno values when locking is impossible).  On failure
 * nothing is held.
 */
int mbox_lock_acquire(struct mbox_lock *lk, int fd, const char *path, int mode,
    int timeout_ms, struct mbox_error *err_r);
/*
 * The same, with the turnstile file tfd (-1: none) and the shared lock over [0, share_len)
 * only (0: the whole data range).  A reader locks the bytes it has, not the room past the
 * end: Debian's procmail locks only from the end of the file it appends to, and so
 * delivers while sessions read; every program that changes bytes already there (our
 * writers, mutt) locks from the start.
 */
int mbox_lock_acquire_len(struct mbox_lock *lk, int fd, int tfd, const char *path, int mode,
    uint64_t share_len, int timeout_ms, struct mbox_error *err_r);
/* A shared lock: keep only [0, len) of it (an appender may go on past len). */
void mbox_lock_shrink(struct mbox_lock *lk, uint64_t len);
/* Let the dotlock go and keep the fcntl lock.  0, or -1 as mbox_lock_release(). */
int mbox_lock_drop_dot(struct mbox_lock *lk, struct mbox_error *err_r);
/* Nonzero when another process holds the turnstile tfd: a writer waits for the lock this
 * process holds shared (or is about to).  One F_GETLK. */
int mbox_lock_writer_waiting(int tfd);
/* Release what lk holds (dotlock, then fcntl).  Safe to call when nothing is held.
 * Returns 0, or -1 if the dotlock could not be removed (the lock is forgotten anyway). */
int mbox_lock_release(struct mbox_lock *lk, struct mbox_error *err_r);

/* Fill err_r (may be NULL) with code and a printf-style message. */
void mbox_set_error(struct mbox_error *err_r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
