/* test-mbox-util.h: helpers shared by the mbox store's unit tests. */
#ifndef TESTS_UNIT_TEST_MBOX_UTIL_H
#define TESTS_UNIT_TEST_MBOX_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbox/mbox.h"

struct tdir {
	char dir[256];
	char path[300];		/* DIR/mbox */
	char jdir[300];		/* DIR/j (journal directory) */
};

static inline void
tdir_make(struct tdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/imapd-mbox-test.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		abort();
	snprintf(t->path, sizeof(t->path), "%s/mbox", t->dir);
	snprintf(t->jdir, sizeof(t->jdir), "%s/j", t->dir);
	if (mkdir(t->jdir, 0700) < 0)
		abort();
}

static inline void
tdir_clean(struct tdir *t)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		abort();
}

static inline void
write_file(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n || close(fd) < 0)
		abort();
}

static inline void
append_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	size_t n = strlen(data);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n || close(fd) < 0)
		abort();
}

/* Whole file, NUL-terminated; free() it. */
static inline char *
read_file(const char *path, size_t *n_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	char *p;

	if (fd < 0 || fstat(fd, &st) < 0)
		abort();
	p = malloc((size_t)st.st_size + 1);
	if (p == NULL || read(fd, p, (size_t)st.st_size) != st.st_size)
		abort();
	p[st.st_size] = 0;
	close(fd);
	if (n_r != NULL)
		*n_r = (size_t)st.st_size;
	return p;
}

/* Visible header of message i as one string (malloc'd). */
static inline char *
visible_header(struct mbox *mb, uint32_t i)
{
	uint64_t pos = 0;
	const unsigned char *p;
	size_t len, n = 0;
	char *out = malloc(1);

	while (mbox_header_next(mb, i, &pos, &p, &len)) {
		out = realloc(out, n + len + 1);
		memcpy(out + n, p, len);
		n += len;
	}
	out[n] = 0;
	return out;
}

static inline char *
body_of(struct mbox *mb, uint32_t i)
{
	const unsigned char *p;
	size_t len;
	char *out;

	mbox_msg_body(mb, i, &p, &len);
	out = malloc(len + 1);
	memcpy(out, p, len);
	out[len] = 0;
	return out;
}

/* Count LFs not preceded by CR in s (test-side reference for sizes). */
static inline size_t
crlf_size(const char *s)
{
	size_t n = 0, i;

	for (i = 0; s[i]; i++) {
		n++;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			n++;
	}
	return n;
}

#endif
