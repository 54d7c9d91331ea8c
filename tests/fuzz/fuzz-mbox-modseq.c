/*
 * fuzz-mbox-modseq.c: the mod-sequence records (mbox-modseq.c) on arbitrary contents.  A
 * small mailbox is opened once; each input becomes its records file (the first byte picks
 * how: 0, the bytes as they are; 1, the file a real open writes with byte edits, pairs of
 * a 16-bit offset and a value, so that the edits get past the magic), and the view is
 * compared with it, expunges since a value asked for, a flag stored.  Whatever the bytes,
 * nothing reads outside the mapping (ASan), and the values hold: every message has one,
 * none above the highest, the store's above what was there before.
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
    "From a@x Mon Jan  5 01:02:03 2015\nSubject: one\nX-Keywords: Work\n\none\n\n"
    "From b@x Mon Jan  5 01:02:04 2015\nSubject: two\nStatus: RO\n\ntwo\n\n"
    "From c@x Mon Jan  5 01:02:05 2015\nSubject: three\n\nthree\n";

static struct mbox *mb;
static char mpath[400];
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
	int fd;

	if (scratch_make("/dev/shm", "mbox-modseq") != 0)
		return;
	atexit(cleanup);
	put(path, fixture, sizeof(fixture) - 1);
	if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0 || mb->m.n != 3 ||
	    mbox_modseq_path(mb, mpath, sizeof(mpath)) < 0 || !mbox_has_modseq(mb))
		abort();
	fd = open(mpath, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
		abort();
	good_len = (size_t)st.st_size;
	good = malloc(good_len);
	if (good == NULL || read(fd, good, good_len) != (ssize_t)good_len)
		abort();
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t before, since = 0;
	uint32_t i, *gone;
	size_t n, k;
	uint8_t mark[3] = { 0, 1, 0 };
	int all;

	if (mb == NULL)
		setup();
	if (mb == NULL || size == 0)
		return 0;
	if (data[0] == 1) {
		unsigned char *b = malloc(good_len);

		if (b == NULL)
			abort();
		memcpy(b, good, good_len);
		for (k = 1; k + 2 < size; k += 3) {
			size_t off = ((size_t)data[k] | (size_t)data[k + 1] << 8) % good_len;

			b[off] = data[k + 2];
		}
		put(mpath, b, good_len);
		free(b);
	} else {
		put(mpath, data + 1, size - 1);
	}
	for (k = 1; k < size && k < 9; k++)
		since = since << 8 | data[k];
	before = mbox_highest_modseq(mb);
	if (mbox_modseq_update(mb) < 0 || !mbox_has_modseq(mb))
		abort();	/* a bad file is started again, never an error */
	for (i = 0; i < mb->m.n; i++)
		if (mb->m.v[i].modseq == 0 || mb->m.v[i].modseq > mbox_highest_modseq(mb))
			abort();
	if (mbox_expunged_since(mb, since, &gone, &n, &all) < 0)
		abort();
	for (k = 0; k < n; k++)
		if (mbox_uid_index(mb, gone[k]) >= 0)
			abort();	/* a UID the mailbox holds is never told as expunged */
	free(gone);
	before = mbox_highest_modseq(mb) > before ? mbox_highest_modseq(mb) : before;
	/* a change: above everything seen before */
	if (mbox_store_flags(mb, mark, 3, (mb->m.v[1].flags & MBOX_FLAGGED) ?
	    MBOX_STORE_REMOVE : MBOX_STORE_ADD, MBOX_FLAGGED, 0) < 0)
		abort();
	if (mb->m.v[1].modseq <= before || mbox_highest_modseq(mb) < mb->m.v[1].modseq)
		abort();
	return 0;
}
