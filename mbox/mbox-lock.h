/*
 * mbox-lock.h: locking an mbox file the way Debian's MDAs and mail readers do.
 *
 * Debian Policy 11.6: an fcntl() lock on the file first, then the dotlock "PATH.lock"
 * created through liblockfile (which runs its setgid helper dotlockfile(1) when the
 * directory is not writable by the user).  Release is in the reverse order.  Stale dotlocks
 * are handled by liblockfile: one naming a dead process, or older than five minutes, is
 * removed.  Both locks are retried with short sleeps until the timeout, never with a wait
 * that blocks forever; while the dotlock is busy the fcntl lock is let go between tries,
 * since procmail takes the two in the other order.
 *
 * fcntl() locks belong to the process: a process must not lock the same file twice through
 * two descriptors, and closing any descriptor of the file drops them.  The store only holds
 * a lock inside one call, so this does not arise there.
 */
#ifndef MBOX_MBOX_LOCK_H
#define MBOX_MBOX_LOCK_H

#include "mbox/mbox.h"

struct mbox_lock {
	int fd;			/* the locked file; -1 when nothing is held */
	int fcntl_held;
	int dot_held;
	char *dotpath;		/* malloc'd "PATH.lock" while dot_held */
};

#define MBOX_LOCK_INIT { -1, 0, 0, NULL }

/*
 * Take the fcntl lock (write: F_WRLCK, else F_RDLCK) on fd, then the dotlock for path.
 * Returns 0, or -1 with err_r set (ETIMEDOUT when another holder kept it past timeout_ms;
 * other errno values when locking is impossible).  On failure nothing is held.
 */
int mbox_lock_acquire(struct mbox_lock *lk, int fd, const char *path, int write,
    int timeout_ms, struct mbox_error *err_r);
/* Release what lk holds (dotlock, then fcntl).  Safe to call when nothing is held.
 * Returns 0, or -1 if the dotlock could not be removed (the lock is forgotten anyway). */
int mbox_lock_release(struct mbox_lock *lk, struct mbox_error *err_r);

/* Fill err_r (may be NULL) with code and a printf-style message. */
void mbox_set_error(struct mbox_error *err_r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
