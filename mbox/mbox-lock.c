/* mbox-lock.c: fcntl lock, then liblockfile dotlock (Debian Policy 11.6). */
#include "mbox/mbox-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

void
mbox_set_error(struct mbox_error *err_r, int code, const char *fmt, ...)
{
	va_list ap;

	if (err_r == NULL)
		return;
	err_r->code = code;
	va_start(ap, fmt);
	vsnprintf(err_r->msg, sizeof(err_r->msg), fmt, ap);
	va_end(ap);
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep a little longer each round (5 ms up to 100 ms): short waits for the common brief
 * holder, little spinning against a long one.  Only the dotlock is waited for this way;
 * fcntl locks are waited for in the kernel (wait_fcntl). */
static void
backoff(int *round)
{
	struct timespec ts;
	long ms = 5L << (*round < 5 ? *round : 5);

	if (ms > 100)
		ms = 100;
	(*round)++;
	ts.tv_sec = 0;
	ts.tv_nsec = ms * 1000000L;
	nanosleep(&ts, NULL);
}

static void
on_alarm(int sig)
{
	(void)sig;	/* only there to interrupt F_SETLKW */
}

/*
 * A periodic SIGALRM while waiting in F_SETLKW, so that the wait ends with EINTR and the
 * deadline is looked at again.  Periodic rather than one-shot: a signal that comes just
 * before the call enters the kernel would otherwise leave it waiting for ever.  The
 * handler is installed without SA_RESTART; nothing else in imapd uses SIGALRM.
 */
static void
alarm_arm(int on)
{
	static int installed;
	struct itimerval it;

	if (on && !installed) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;
		if (sigaction(SIGALRM, &sa, NULL) == 0)
			installed = 1;
	}
	memset(&it, 0, sizeof(it));
	if (on) {
		it.it_value.tv_usec = LOCK_TICK_MS * 1000;
		it.it_interval.tv_usec = LOCK_TICK_MS * 1000;
	}
	(void)setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * Take an fcntl lock of type on [start, start + len) (len 0: to the end of all offsets),
 * waiting in the kernel until deadline.  0, or -1 with errno (ETIMEDOUT at the deadline).
 */
static int
wait_fcntl(int fd, short type, off_t start, off_t len, long deadline)
{
	struct flock fl;
	int armed = 0, r = -1, e = 0;

	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = type;
		fl.l_whence = SEEK_SET;
		fl.l_start = start;
		fl.l_len = len;
		if (fcntl(fd, armed ? F_SETLKW : F_SETLK, &fl) == 0) {
			r = 0;
			break;
		}
		e = errno;
		if (e == EDEADLK) {
			/* the kernel's cycle check can be wrong with more than one range held:
			 * step back briefly and try again */
			struct timespec ts = { 0, 2000000L };

			nanosleep(&ts, NULL);
		} else if (e != EAGAIN && e != EACCES && e != EINTR) {
			break;
		}
		if (now_ms() >= deadline) {
			e = ETIMEDOUT;
			break;
		}
		if (!armed) {
			alarm_arm(1);
			armed = 1;
		}
	}
	if (armed)
		alarm_arm(0);
	errno = e;
	return r;
}

static void
drop_fcntl(int fd, off_t start, off_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	(void)fcntl(fd, F_SETLK, &fl);
}

static int
lock_error(struct mbox_error *err_r)
{
	if (errno == ETIMEDOUT)
		mbox_set_error(err_r, ETIMEDOUT, "mailbox is locked by another process");
	else
		mbox_set_error(err_r, errno, "fcntl lock: %s", strerror(errno));
	return -1;
}

/* The data lock: writers the whole file, readers [0, share_len) (0: MBOX_LOCK_DATA_END). */
static int
take_data(int fd, int excl, off_t share_len, long deadline, struct mbox_error *err_r)
{
	if (excl)
		return wait_fcntl(fd, F_WRLCK, 0, 0, deadline) < 0 ? lock_error(err_r) : 0;
	if (share_len <= 0 || share_len > MBOX_LOCK_DATA_END)
		share_len = MBOX_LOCK_DATA_END;
	return wait_fcntl(fd, F_RDLCK, 0, share_len, deadline) < 0 ? lock_error(err_r) : 0;
}

void
mbox_lock_shrink(struct mbox_lock *lk, uint64_t len)
{
	if (!lk->fcntl_held || lk->excl || len == 0 || len >= (uint64_t)MBOX_LOCK_DATA_END)
		return;
	drop_fcntl(lk->fd, (off_t)len, MBOX_LOCK_DATA_END - (off_t)len);
}

int
mbox_lock_writer_waiting(int tfd)
{
	struct flock fl;

	if (tfd < 0)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	if (fcntl(tfd, F_GETLK, &fl) < 0)
		return 0;
	return fl.l_type != F_UNLCK;
}

/* One try at the dotlock: 1 taken, 0 busy, -1 error. */
static int
try_dotlock(const char *dotpath, struct mbox_error *err_r)
{
	int r, e;

	/* No retries inside liblockfile: it sleeps 5 s and more between them.  One try
	 * still removes a stale lock and tries again at once. */
	errno = 0;
	r = lockfile_create(dotpath, 0, L_PID);
	if (r == L_SUCCESS)
		return 1;
	if (r == L_MAXTRYS)
		return 0;
	e = errno != 0 ? errno : EACCES;
	mbox_set_error(err_r, e, "cannot create dotlock %s (liblockfile %d): %s", dotpath, r,
	    strerror(e));
	return -1;
}

int
mbox_lock_acquire(struct mbox_lock *lk, int fd, const char *path, int mode, int timeout_ms,
    struct mbox_error *err_r)
{
	return mbox_lock_acquire_len(lk, fd, -1, path, mode, 0, timeout_ms, err_r);
}

int
mbox_lock_acquire_len(struct mbox_lock *lk, int fd, int tfd, const char *path, int mode,
    uint64_t share_len, int timeout_ms, struct mbox_error *err_r)
{
	long deadline = now_ms() + timeout_ms;
	size_t n = strlen(path);
	int round = 0, excl = (mode & MBOX_LK_EXCL) != 0;
	off_t slen = share_len > (uint64_t)MBOX_LOCK_DATA_END ? MBOX_LOCK_DATA_END :
	    (off_t)share_len;

	lk->fd = -1;
	lk->tfd = -1;
	lk->fcntl_held = 0;
	lk->dot_held = 0;
	lk->excl = excl;
	lk->dotpath = NULL;
	if (mode & MBOX_LK_DOT) {
		lk->dotpath = malloc(n + 6);
		if (lk->dotpath == NULL) {
			mbox_set_error(err_r, ENOMEM, "out of memory");
			return -1;
		}
		memcpy(lk->dotpath, path, n);
		memcpy(lk->dotpath + n, ".lock", 6);
	}
	/*
	 * The turnstile (mbox-lock.h): a writer holds it from before it waits for the data
	 * until it lets go of everything, a reader only on its way in.
	 */
	if (tfd >= 0) {
		if (wait_fcntl(tfd, excl ? F_WRLCK : F_RDLCK, 0, 1, deadline) < 0) {
			lock_error(err_r);
			goto fail;
		}
		lk->tfd = tfd;
	}
	/*
	 * fcntl first, then the dotlock (Debian Policy 11.6). procmail takes them the other
	 * way round, so while the dotlock is busy the fcntl lock is let go between tries:
	 * holding one while waiting for the other would stall both until the timeout.  A
	 * writer keeps the turnstile meanwhile (it is a file of its own, which no MDA
	 * locks), so the other writers wait behind it in the kernel instead of taking the
	 * fcntl lock in turn and keeping the MDA from it.
	 */
	for (;;) {
		int r;

		if (take_data(fd, excl, slen, deadline, err_r) < 0)
			goto fail;
		lk->fd = fd;
		lk->fcntl_held = 1;
		if (!excl && lk->tfd >= 0) {
			drop_fcntl(lk->tfd, 0, 1);	/* a reader only passes through */
			lk->tfd = -1;
		}
		if (lk->dotpath == NULL)
			return 0;
		r = try_dotlock(lk->dotpath, err_r);
		if (r == 1)
			break;
		drop_fcntl(fd, 0, 0);
		lk->fcntl_held = 0;
		lk->fd = -1;
		if (r < 0)
			goto fail;
		if (now_ms() >= deadline) {
			mbox_set_error(err_r, ETIMEDOUT, "mailbox is dotlocked by another process");
			goto fail;
		}
		backoff(&round);
	}
	lk->dot_held = 1;
	return 0;
fail:
	free(lk->dotpath);
	lk->dotpath = NULL;
	if (lk->fcntl_held)
		drop_fcntl(fd, 0, 0);
	if (lk->tfd >= 0)
		drop_fcntl(lk->tfd, 0, 1);
	lk->tfd = -1;
	lk->fcntl_held = 0;
	lk->fd = -1;
	return -1;
}

int
mbox_lock_drop_dot(struct mbox_lock *lk, struct mbox_error *err_r)
{
	int ret = 0;

	if (lk->dot_held) {
		if (lockfile_remove(lk->dotpath) < 0) {
			mbox_set_error(err_r, errno, "cannot remove dotlock %s: %s", lk->dotpath,
			    strerror(errno));
			ret = -1;
		}
		lk->dot_held = 0;
	}
	free(lk->dotpath);
	lk->dotpath = NULL;
	return ret;
}

int
mbox_lock_release(struct mbox_lock *lk, struct mbox_error *err_r)
{
	int ret = mbox_lock_drop_dot(lk, err_r);

	if (lk->fcntl_held)
		drop_fcntl(lk->fd, 0, 0);
	if (lk->tfd >= 0)
		drop_fcntl(lk->tfd, 0, 1);
	lk->tfd = -1;
	lk->fcntl_held = 0;
	lk->fd = -1;
	return ret;
}
