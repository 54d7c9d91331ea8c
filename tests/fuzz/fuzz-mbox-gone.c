/*
 * fuzz-mbox-gone.c: the file of kept copies of expunged messages (mbox-gone.c) on arbitrary
 * contents.  A small mailbox is opened once and every message in its view is marked as
 * removed by another program, the way a reload leaves them (offsets relative to the
 * message).  Each input becomes the kept-copies file; the view maps it and every message
 * is read through the accessors FETCH uses.
 *
 * The first input byte picks how the input becomes the file:
 *   0: the bytes as they are;
 *   1: the file a real expunge of every message writes, with byte edits (pairs of a 16-bit
 *      offset and a value) and each record's check made right again, so that the edits
 *      reach the bounds checks and the header walk.
 * Whatever the bytes, nothing reads outside the mapping (ASan), and every message read
 * from a copy walks to its end.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbox/mbox-private.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixture[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "X-UID: 1\n"
    "Status: RO\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015 +0200\n"
    "X-Keywords: Work\n"
    "Subject: two\r\n"
    "\r\n"
    "two\r\n"
    "\n"
    "From c@x Mon Jan  5 01:02:03 2015\n"
    "Subject: three, no blank line";

static struct mbox *mb;
static char gpath[400];
static unsigned char *good;
static size_t good_len;

static void
cleanup(void)
{
	mbox_free(&mb);
	free(good);
}

static void
put(const char *p, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (n > 0 && write(fd, buf, n) != (ssize_t)n) || close(fd) < 0)
		abort();
}

static void
setup(void)
{
	struct mbox_error err;
	struct stat st;
	uint8_t skip[8];
	uint32_t i;
	int fd;

	if (scratch_make("/dev/shm", "mbox-gone") != 0)
		return;
	atexit(cleanup);
	put(path, fixture, sizeof(fixture) - 1);
	if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0 || mb->m.n == 0 ||
	    mb->m.n > sizeof(skip) || mbox_gone_path(mb, gpath, sizeof(gpath)) < 0)
		abort();
	memset(skip, 1, sizeof(skip));
	(void)mbox_gone_save(mb, skip);
	fd = open(gpath, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
		abort();	/* the harness must start from a real file */
	good_len = (size_t)st.st_size;
	good = malloc(good_len);
	if (good == NULL || read(fd, good, good_len) != (ssize_t)good_len)
		abort();
	close(fd);
	/* every message removed by another program, as a reload marks them */
	for (i = 0; i < mb->m.n; i++) {
		struct mbox_msg *m = &mb->m.v[i];

		m->body_off -= m->from_off;
		m->end -= m->from_off;
		m->from_off = 0;
		m->state |= MSG_GONE;
	}
	mb->maybe_gone = 1;
}

/* Make every record's check right again, walking the records as a reader does. */
static void
fix_checks(unsigned char *b, size_t n)
{
	size_t off = 0;

	while (n - off >= sizeof(struct mbox_gone_rec)) {
		struct mbox_gone_rec r;

		memcpy(&r, b + off, sizeof(r));
		r.check = mbox_gone_rec_check(&r);
		memcpy(b + off, &r, sizeof(r));
		if (r.len > n - off - sizeof(r))
			break;
		off += sizeof(r) + r.len;
	}
}

static void
walk(void)
{
	volatile unsigned sink = 0;
	uint32_t i;

	mbox_gone_refresh(mb);
	for (i = 0; i < mb->m.n; i++) {
		const unsigned char *p;
		size_t len, hl, k;
		uint64_t pos = 0, off;

		if (!mbox_msg_available(mb, i)) {
			if (mbox_msg_range(mb, i, &p, &len, &hl, &off) != -1 || len != 0)
				abort();
			continue;
		}
		while (mbox_header_next(mb, i, &pos, &p, &len))
			for (k = 0; k < len; k++)
				sink += p[k];
		mbox_msg_body(mb, i, &p, &len);
		for (k = 0; k < len; k++)
			sink += p[k];
		if (mbox_msg_range(mb, i, &p, &len, &hl, &off) != 0 || hl > len ||
		    !(off >> 63))
			abort();
		for (k = 0; k < len; k++)
			sink += p[k];
	}
	(void)sink;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *b;
	size_t n, k;

	if (mb == NULL)
		setup();
	if (mb == NULL || size == 0)
		return 0;
	if (data[0] % 2 == 0) {
		put(gpath, data + 1, size - 1);
	} else {
		n = good_len;
		b = malloc(n);
		if (b == NULL)
			abort();
		memcpy(b, good, n);
		for (k = 1; k + 3 <= size; k += 3)
			b[(data[k] | (size_t)data[k + 1] << 8) % n] = data[k + 2];
		fix_checks(b, n);
		put(gpath, b, n);
		free(b);
	}
	/* a new file each time: the mapping is made again */
	mbox_gone_unmap(mb);
	walk();
	return 0;
}
