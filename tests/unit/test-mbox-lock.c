/* test-mbox-lock.c: fcntl + dotlock between processes, timeouts, stale dotlocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lockfile.h>
#include <signal.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <time.h>

#include "mbox/mbox-lock.h"
#include "test-mbox-util.h"

/* The turnstile file the store keeps beside a mailbox (here: PATH.ts), opened once per
 * process and path. */
static int
tfd_of(const char *path)
{
	static char last[400];
	static int fd = -1;
	static pid_t owner;
	char tp[420];

	if (fd >= 0 && owner == getpid() && strcmp(last, path) == 0)
		return fd;
	snprintf(tp, sizeof(tp), "%s.ts", path);
	fd = open(tp, O_RDWR | O_CREAT, 0600);
	owner = getpid();
	snprintf(last, sizeof(last), "%s", path);
	return fd;
}

static int
tlock(struct mbox_lock *lk, int fd, const char *path, int mode, int ms, struct mbox_error *err)
{
	return mbox_lock_acquire_len(lk, fd, tfd_of(path), path, mode, 0, ms, err);
}

/* Child: take the lock, signal through the pipe, hold it for ms, release, exit. */
static pid_t
holder(const char *path, int excl, int ms, int *ready_fd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox_lock lk = MBOX_LOCK_INIT;
		struct mbox_error err;
		int fd = open(path, O_RDWR);

		close(p[0]);
		if (fd < 0 || tlock(&lk, fd, path, excl ? MBOX_LK_WRITE :
		    MBOX_LK_SHARED, 1000, &err) < 0)
			_exit(2);
		if (write(p[1], "x", 1) != 1)
			_exit(3);
		usleep((useconds_t)ms * 1000);
		mbox_lock_release(&lk, &err);
		_exit(0);
	}
	close(p[1]);
	*ready_fd = p[0];
	return pid;
}

static void
wait_ready(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
}

static void
test_lock_excludes(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct mbox_error err;
	char dot[400];
	int fd, rfd, st;
	pid_t pid;
	(void)state;

	tdir_make(&t);
	write_file(t.path, "", 0);
	snprintf(dot, sizeof(dot), "%s.lock", t.path);
	fd = open(t.path, O_RDWR);
	assert_true(fd >= 0);
	pid = holder(t.path, 1, 600, &rfd);
	wait_ready(rfd);
	/* the holder has both locks: the dotlock exists, we time out */
	assert_int_equal(access(dot, F_OK), 0);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_WRITE, 150, &err), -1);
	assert_int_equal(err.code, ETIMEDOUT);
	/* a reader is kept out as well (the dotlock is exclusive) */
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 150, &err), -1);
	/* when it lets go, we get it (waiting less than the timeout) */
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_WRITE, 5000, &err), 0);
	assert_int_equal(access(dot, F_OK), 0);
	assert_int_equal(mbox_lock_release(&lk, &err), 0);
	assert_int_equal(access(dot, F_OK), -1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	tdir_clean(&t);
}

static void
test_fcntl_only_holder(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct mbox_error err;
	int fd, p[2], st;
	char c;
	pid_t pid;
	(void)state;

	/* an MDA that only takes the fcntl lock (postfix with mailbox_delivery_lock=fcntl) */
	tdir_make(&t);
	write_file(t.path, "", 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int cfd = open(t.path, O_RDWR);

		if (cfd < 0 || fcntl(cfd, F_SETLK, &fl) < 0 || write(p[1], "x", 1) != 1)
			_exit(2);
		usleep(300000);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	fd = open(t.path, O_RDWR);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 100, &err), -1);
	assert_int_equal(err.code, ETIMEDOUT);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 5000, &err), 0);
	assert_int_equal(mbox_lock_release(&lk, &err), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(fd);
	close(p[0]);
	tdir_clean(&t);
}

static void
test_stale_dotlock(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct mbox_error err;
	char dot[400], pidbuf[32];
	int fd, st;
	pid_t pid;
	(void)state;

	tdir_make(&t);
	write_file(t.path, "", 0);
	snprintf(dot, sizeof(dot), "%s.lock", t.path);
	/* a dotlock naming a process that no longer exists is stale */
	pid = fork();
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)pid);
	write_file(dot, pidbuf, strlen(pidbuf));
	fd = open(t.path, O_RDWR);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_WRITE, 2000, &err), 0);
	assert_int_equal(mbox_lock_release(&lk, &err), 0);
	/* one naming a live process is respected */
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getppid());
	write_file(dot, pidbuf, strlen(pidbuf));
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_WRITE, 200, &err), -1);
	assert_int_equal(err.code, ETIMEDOUT);
	/* and the fcntl lock was given back on failure: another process can take it */
	unlink(dot);
	close(fd);
	tdir_clean(&t);
}

static void
test_store_waits_for_mda(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct mbox_error err;
	struct mbox_sync_result r;
	int rfd, st, fd;
	pid_t pid;
	(void)state;

	/* an MDA holds the locks while it delivers; our sync waits and then sees the mail */
	tdir_make(&t);
	write_file(t.path, "From a Mon Jan  5 01:02:03 2015\n\none\n\n", 38);
	assert_int_equal(mbox_open(t.path, t.jdir, MBOX_OPEN_RW, &mb, &err), 0);
	pid = fork();
	if (pid == 0) {
		struct mbox_lock lk = MBOX_LOCK_INIT;

		fd = open(t.path, O_RDWR | O_APPEND);
		if (fd < 0 || tlock(&lk, fd, t.path, MBOX_LK_WRITE, 1000, &err) < 0)
			_exit(2);
		if (write(fd, "From b Mon Jan  5 01:02:03 2015\n\ntw", 35) != 35)
			_exit(3);
		usleep(300000);
		if (write(fd, "o\n\n", 3) != 3)
			_exit(3);
		mbox_lock_release(&lk, &err);
		_exit(0);
	}
	(void)rfd;
	usleep(100000);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(mbox_count(mb), 2);
	{
		char *b = body_of(mb, 1);

		assert_string_equal(b, "two\n");
		free(b);
	}
	mbox_sync_result_clear(&r);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	mbox_free(&mb);
	tdir_clean(&t);
}

/*
 * A spool directory the user may not write (Debian's /var/mail: root:mail 2775): the
 * dotlock is made by liblockfile's setgid helper dotlockfile(1).  Needs root (to become
 * nobody) and the helper; skipped otherwise.
 */
static void
test_dotlock_helper(void **state)
{
	struct tdir t;
	struct group *mail = getgrnam("mail");
	struct passwd *nobody = getpwnam("nobody");
	char spool[400], box[450], dot[460];
	int st;
	pid_t pid;
	(void)state;

	if (geteuid() != 0 || mail == NULL || nobody == NULL ||
	    access("/usr/bin/dotlockfile", X_OK) != 0) {
		skip();
		return;
	}
	tdir_make(&t);
	snprintf(spool, sizeof(spool), "%s/spool", t.dir);
	snprintf(box, sizeof(box), "%s/nobody", spool);
	snprintf(dot, sizeof(dot), "%s.lock", box);
	assert_int_equal(chmod(t.dir, 0755), 0);
	assert_int_equal(mkdir(spool, 02775), 0);
	assert_int_equal(chown(spool, 0, mail->gr_gid), 0);
	assert_int_equal(chmod(spool, 02775), 0);
	write_file(box, "", 0);
	assert_int_equal(chown(box, nobody->pw_uid, mail->gr_gid), 0);
	pid = fork();
	if (pid == 0) {
		struct mbox_lock lk = MBOX_LOCK_INIT;
		struct mbox_error err;
		int fd;

		if (setgroups(0, NULL) < 0 || setgid(nobody->pw_gid) < 0 ||
		    setuid(nobody->pw_uid) < 0)
			_exit(2);
		/* the user cannot create files in the spool directory itself */
		if (access(spool, W_OK) == 0)
			_exit(3);
		fd = open(box, O_RDWR);
		if (fd < 0 || tlock(&lk, fd, box, MBOX_LK_WRITE, 3000, &err) < 0)
			_exit(4);
		if (access(dot, F_OK) != 0)
			_exit(5);
		if (mbox_lock_release(&lk, &err) < 0 || access(dot, F_OK) == 0)
			_exit(6);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	tdir_clean(&t);
}

/* Child: for ms milliseconds, take the shared lock, hold it hold_ms, let go, again at once. */
static pid_t
reader_loop(const char *path, int ms, int hold_ms)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mbox_lock lk = MBOX_LOCK_INIT;
		struct mbox_error err;
		struct timespec t0, t;
		int fd = open(path, O_RDWR);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			if (fd < 0 || tlock(&lk, fd, path, MBOX_LK_SHARED, 5000,
			    &err) < 0)
				_exit(2);
			usleep((useconds_t)hold_ms * 1000);
			mbox_lock_release(&lk, &err);
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
		_exit(0);
	}
	return pid;
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
test_readers_share_and_writer_is_not_starved(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT, lk2 = MBOX_LOCK_INIT;
	struct mbox_error err;
	struct timespec t0;
	pid_t r[3];
	int fd, i, st;
	long waited;
	(void)state;

	tdir_make(&t);
	write_file(t.path, "", 0);
	fd = open(t.path, O_RDWR);
	assert_true(fd >= 0);
	/* readers share: a second process gets the shared lock while we hold it */
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 100, &err), 0);
	r[0] = reader_loop(t.path, 10, 1);
	assert_int_equal(waitpid(r[0], &st, 0), r[0]);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* nobody is waiting to write */
	assert_int_equal(mbox_lock_writer_waiting(tfd_of(t.path)), 0);
	mbox_lock_release(&lk, &err);
	/* three readers whose holds overlap all the time, for 3 s: without the turnstile
	 * the shared lock is never free, and a writer waits for all of it */
	for (i = 0; i < 3; i++)
		r[i] = reader_loop(t.path, 3000, 30);
	usleep(200000);
	for (i = 0; i < 5; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(tlock(&lk2, fd, t.path, MBOX_LK_WRITE, 2000, &err),
		    0);
		waited = elapsed_ms(&t0);
		/* it waited for the readers inside (30 ms holds), not for the stream */
		assert_true(waited < 500);
		usleep(20000);
		mbox_lock_release(&lk2, &err);
		usleep(50000);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(r[i], &st, 0), r[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(fd);
	tdir_clean(&t);
}

static void
test_waiting_writer_is_seen_by_readers(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct mbox_error err;
	struct timespec t0;
	int fd, rfd, st, i;
	pid_t pid;
	(void)state;

	tdir_make(&t);
	write_file(t.path, "", 0);
	fd = open(t.path, O_RDWR);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 100, &err), 0);
	/* a writer comes: it holds the turnstile while it waits, and we can tell */
	pid = holder(t.path, 1, 10, &rfd);
	for (i = 0; i < 100 && !mbox_lock_writer_waiting(tfd_of(t.path)); i++)
		usleep(10000);
	assert_true(mbox_lock_writer_waiting(tfd_of(t.path)));
	/* a new reader queues behind it */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mbox_lock_release(&lk, &err);
	wait_ready(rfd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(elapsed_ms(&t0) < 1000);
	/* the wait is in the kernel: it ends the moment the holder lets go, not after a
	 * sleep; and a held lock times out with ETIMEDOUT at the deadline */
	pid = holder(t.path, 1, 300, &rfd);
	wait_ready(rfd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 120, &err), -1);
	assert_int_equal(err.code, ETIMEDOUT);
	assert_true(elapsed_ms(&t0) >= 110 && elapsed_ms(&t0) < 400);
	assert_int_equal(tlock(&lk, fd, t.path, MBOX_LK_SHARED, 5000, &err), 0);
	mbox_lock_release(&lk, &err);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(fd);
	tdir_clean(&t);
}

/* procmail locks only from the end of the file it appends to: a reader that locks the bytes
 * there are does not keep it waiting; one that locks everything does. */
static void
test_reader_leaves_room_for_an_appender(void **state)
{
	struct tdir t;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct mbox_error err;
	int fd, i;
	(void)state;

	tdir_make(&t);
	write_file(t.path, "From a Mon Jan  5 01:02:03 2015\n\none\n\n", 38);
	fd = open(t.path, O_RDWR);
	assert_true(fd >= 0);
	for (i = 0; i < 2; i++) {
		pid_t pid;
		int st;

		assert_int_equal(mbox_lock_acquire_len(&lk, fd, tfd_of(t.path), t.path,
		    MBOX_LK_SHARED, i == 0 ? 38 : 0, 100, &err), 0);
		pid = fork();
		if (pid == 0) {
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
					    .l_start = 38, .l_len = 0 };
			int cfd = open(t.path, O_RDWR | O_APPEND);

			_exit(cfd >= 0 && fcntl(cfd, F_SETLK, &fl) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), i == 0 ? 0 : 1);
		mbox_lock_release(&lk, &err);
	}
	close(fd);
	tdir_clean(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_excludes),
		cmocka_unit_test(test_fcntl_only_holder),
		cmocka_unit_test(test_stale_dotlock),
		cmocka_unit_test(test_store_waits_for_mda),
		cmocka_unit_test(test_dotlock_helper),
		cmocka_unit_test(test_readers_share_and_writer_is_not_starved),
		cmocka_unit_test(test_waiting_writer_is_seen_by_readers),
		cmocka_unit_test(test_reader_leaves_room_for_an_appender),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
