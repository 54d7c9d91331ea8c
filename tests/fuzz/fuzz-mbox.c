/*
 * fuzz-mbox.c: the mbox store on arbitrary file contents.  The input is written as a
 * mailbox file (on tmpfs), opened read-only and checked for consistency, then opened
 * read-write (which rewrites metadata), changed (flags, keywords, expunge, append) and
 * re-read: whatever the bytes, nothing crashes, sizes agree with the bytes handed out, UIDs
 * ascend, and no message is lost by the writer.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbox/mbox.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
setup(void)
{
	(void)scratch_make("/dev/shm", "mbox");
}

static uint64_t
visible(const unsigned char *p, size_t n)
{
	uint64_t v = n;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			v++;
	return v;
}

/* Check one open mailbox; returns a checksum of its visible contents. */
static uint64_t
check(struct mbox *mb)
{
	uint32_t i, n = mbox_count(mb), prev = 0;
	uint64_t sum = 0;

	for (i = 0; i < n; i++) {
		uint64_t pos = 0, hv = 0, bv;
		const unsigned char *p;
		size_t len, k;
		uint32_t uid = mbox_msg_uid(mb, i);

		if (uid <= prev || uid >= mbox_uidnext(mb) || mbox_uid_index(mb, uid) != i)
			abort();
		prev = uid;
		while (mbox_header_next(mb, i, &pos, &p, &len)) {
			hv += visible(p, len);
			for (k = 0; k < len; k++)
				sum = sum * 31 + p[k];
		}
		if (hv != mbox_msg_header_size(mb, i))
			abort();
		mbox_msg_body(mb, i, &p, &len);
		bv = visible(p, len);
		if (bv != mbox_msg_body_size(mb, i))
			abort();
		for (k = 0; k < len; k++)
			sum = sum * 31 + p[k];
		if (mbox_msg_size(mb, i) != hv + bv)
			abort();
		(void)mbox_msg_date(mb, i, NULL);
	}
	return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox *mb = NULL;
	struct mbox_error err;
	uint32_t n, i, first, cnt, *ex;
	size_t nex;
	int fd;

	setup();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) < 0)
		abort();
	if (mbox_open(path, NULL, 0, &mb, &err) < 0)
		return 0;
	(void)check(mb);
	n = mbox_count(mb);
	mbox_free(&mb);

	/* read-write: the first open persists metadata (perhaps rewriting the file) */
	if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		abort();
	if (mbox_count(mb) != n)
		abort();
	(void)check(mb);
	{
		int k = mbox_keyword_lookup(mb, "fuzz", 4, 1);

		for (i = 0; i < n; i++)
			mbox_msg_set_flags(mb, i, (i % 3 == 0 ? MBOX_DELETED : 0) | MBOX_SEEN,
			    k >= 0 && i % 2 ? 1ULL << k : 0);
	}
	if (mbox_commit_flags(mb) < 0)
		abort();
	if (mbox_expunge(mb, NULL, 0, &ex, &nex) < 0)
		abort();
	free(ex);
	if (mbox_count(mb) != n - (n + 2) / 3)
		abort();
	{
		struct mbox_append *ap;

		if (mbox_append_begin(mb, &ap) < 0 || mbox_append_msg_begin(ap, 0, 0, 0, 0) < 0 ||
		    mbox_append_write(ap, data, size > 4096 ? 4096 : size) < 0 ||
		    mbox_append_msg_end(ap) < 0 || mbox_append_commit(&ap, &first, &cnt) < 0)
			abort();
	}
	n = mbox_count(mb);
	{
		uint64_t a = check(mb), b;
		struct mbox *again = NULL;

		if (mbox_open(path, jdir, 0, &again, &err) < 0)
			abort();
		/* what we think is in the file is what is in the file */
		if (mbox_count(again) != n)
			abort();
		b = check(again);
		if (a != b)
			abort();
		for (i = 0; i < n; i++)
			if (mbox_msg_uid(again, i) != mbox_msg_uid(mb, i) ||
			    (mbox_msg_flags(again, i) & MBOX_FLAGS_STORED) !=
			    (mbox_msg_flags(mb, i) & MBOX_FLAGS_STORED))
				abort();
		mbox_free(&again);
	}
	mbox_free(&mb);
	return 0;
}
