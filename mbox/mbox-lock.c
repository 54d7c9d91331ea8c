/* mbox-lock.c: fcntl lock, then liblockfile dotlock (Debian Policy 11.6). */
#include "mbox/mbox-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * holder, little spinning against a long one. */
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

static int
take_fcntl(int fd, int write, long deadline, struct mbox_error *err_r)
{
	struct flock fl;
	int round = 0;

	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = write ? F_WRLCK : F_RDLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			mbox_set_error(err_r, errno, "fcntl lock: %s", strerror(errno));
			return -1;
		}
		if (now_ms() >= deadline) {
			mbox_set_error(err_r, ETIMEDOUT, "mailbox is locked by another process");
			return -1;
		}
		backoff(&round);
	}
}

static void
drop_fcntl(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(fd, F_SETLK, &fl);
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
mbox_lock_acquire(struct mbox_lock *lk, int fd, const char *path, int write, int timeout_ms,
    struct mbox_error *err_r)
{
	long deadline = now_ms() + timeout_ms;
	size_t n = strlen(path);
	int round = 0;

	lk->fd = -1;
	lk->fcntl_held = 0;
	lk->dot_held = 0;
	lk->dotpath = malloc(n + 6);
	if (lk->dotpath == NULL) {
		mbox_set_error(err_r, ENOMEM, "out of memory");
		return -1;
	}
	memcpy(lk->dotpath, path, n);
	memcpy(lk->dotpath + n, ".lock", 6);
	/*
	 * fcntl first, then the dotlock (Debian Policy 11.6). procmail takes them the other
	 * way round, so while the dotlock is busy the fcntl lock is let go between tries:
	 * holding one while waiting for the other would stall both until the timeout.
	 */
	for (;;) {
		int r;

		if (take_fcntl(fd, write, deadline, err_r) < 0)
			goto fail;
		lk->fd = fd;
		lk->fcntl_held = 1;
		r = try_dotlock(lk->dotpath, err_r);
		if (r == 1)
			break;
		drop_fcntl(fd);
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
		drop_fcntl(fd);
	lk->fcntl_held = 0;
	lk->fd = -1;
	return -1;
}

int
mbox_lock_release(struct mbox_lock *lk, struct mbox_error *err_r)
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
	if (lk->fcntl_held)
		drop_fcntl(lk->fd);
	lk->fcntl_held = 0;
	lk->fd = -1;
	return ret;
}
