/*
 * fuzz-mbox-shift.c: the in-place rewrite (mbox-shift.c) killed at some point, then
 * recovered, on arbitrary mailbox bytes.  The input's first three bytes choose the point
 * the writer dies at, the step size, and a byte of the journal to damage afterwards (0:
 * none); the rest is the mailbox after a generated first message.  The writer is a child
 * process that opens the mailbox read-write for the first time (so metadata goes into
 * every message) and _exit()s at its chosen write.  Then, whatever the bytes: nothing
 * crashes or hangs; with the journal intact, the next read-write open sees exactly what a
 * writer that was never killed leaves (same messages, UIDs, sizes and bytes) and no journal
 * is left; with it damaged, the open either refuses with an error or goes on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mbox/mbox.h"
#include "tests/fuzz/scratch.h"
#include "tests/fuzz/seen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS	64	/* messages compared */
#define MAX_POINT	48	/* write-class calls the writer may die before */

static char ref[200];

static void
setup(void)
{
	if (scratch_make("/dev/shm", "shift") == 0)
		snprintf(ref, sizeof(ref), "%s.ref", path);
}

static uint32_t
take(struct mbox *mb, struct seen *s)
{
	uint32_t i, n = mbox_count(mb);

	for (i = 0; i < n && i < MAX_MSGS; i++) {
		s[i] = seen_of(mb, i);
	}
	return n;
}

static void
write_mbox(const char *p, const uint8_t *data, size_t size)
{
	FILE *f = fopen(p, "w");

	if (f == NULL)
		abort();
	fputs("From first@example.org Mon Jan  5 01:02:03 2015\nSubject: first\n\nbody\n\n", f);
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();
}

/* The journal file in jdir, if any (the caches are not journals). */
static int
journal_file(char *buf, size_t len)
{
	DIR *d = opendir(jdir);
	struct dirent *e;
	int found = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, ".imapd-journal-", 15) == 0) {
			snprintf(buf, len, "%s/%s", jdir, e->d_name);
			found = 1;
		}
	if (d != NULL)
		closedir(d);
	return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox *mb = NULL;
	struct mbox_error err;
	struct seen want[MAX_MSGS];
	uint32_t n, i;
	char step[16], point[16], jpath[300];
	pid_t pid, w;
	int st;

	if (size < 3)
		return 0;
	setup();
	snprintf(point, sizeof(point), "%d", 1 + data[0] % MAX_POINT);
	snprintf(step, sizeof(step), "%d", data[1] < 128 ? 1 + data[1] % 97 : 0);

	/* what a writer that is never killed leaves */
	write_mbox(ref, data + 3, size - 3);
	setenv("IMAPD_MBOX_SHIFT_BATCH", step, 1);
	if (mbox_open(ref, jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		abort();
	n = take(mb, want);
	mbox_free(&mb);

	write_mbox(path, data + 3, size - 3);
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		setenv("IMAPD_MBOX_CRASH_AFTER", point, 1);
		if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0) {
			fprintf(stderr, "writer: %s\n", err.msg);
			_exit(3);
		}
		_exit(0);
	}
	/* libFuzzer's SIGALRM (for -timeout) interrupts the wait */
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w != pid || !WIFEXITED(st) ||
	    (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 99)) {
		fprintf(stderr, "writer: status %#x\n", (unsigned)st);
		abort();
	}
	unsetenv("IMAPD_MBOX_SHIFT_BATCH");

	if (data[2] != 0 && journal_file(jpath, sizeof(jpath))) {
		/* damage one byte of the journal: recovery may refuse, never crash */
		int fd = open(jpath, O_RDWR);
		struct stat js;
		unsigned char c;

		if (fd < 0 || fstat(fd, &js) < 0)
			abort();
		if (js.st_size > 0) {
			off_t at = (off_t)((uint64_t)data[2] * 977 % (uint64_t)js.st_size);

			if (pread(fd, &c, 1, at) == 1) {
				c ^= (unsigned char)(1u << (data[2] % 8));
				if (pwrite(fd, &c, 1, at) != 1)
					abort();
			}
		}
		close(fd);
		if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) == 0)
			mbox_free(&mb);
	} else {
		if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0)
			abort();
		if (mbox_count(mb) != n)
			abort();
		for (i = 0; i < n && i < MAX_MSGS; i++)
			if (!seen_same(mb, i, &want[i]))
				abort();
		mbox_free(&mb);
		if (journal_file(jpath, sizeof(jpath)))
			abort();
	}
	/* next input: fresh files, no journal */
	(void)unlink(ref);
	scratch_cleanup();
	(void)mkdir(dir, 0700);
	(void)mkdir(jdir, 0700);
	return 0;
}
