/*
 * test-mbox-header.c: mbox_msg_range() gives the same range FETCH read through
 * mbox_header_next() and mbox_msg_body(): from the first visible header line (hidden fields
 * before it skipped) to the end of the message, and a file offset that moves with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mbox/mbox.h"

static const char mbox_text[] =
	"From a@b Mon Jan  1 00:00:00 2024\n"
	"X-UID: 7\nStatus: RO\nSubject: one\nX-Keywords: \nTo: x\n\nbody one\n\n"
	"From c@d Mon Jan  1 00:00:01 2024\n"
	"Subject: two\n\nbody two\n\n"
	"From e@f Mon Jan  1 00:00:02 2024\n"
	"Status: O\nX-UID: 9\n\nonly hidden fields\n\n"
	"From g@h Mon Jan  1 00:00:03 2024\n"
	"\nno header at all\n";

static struct mbox *
open_text(char *path, size_t size)
{
	struct mbox_error err;
	struct mbox *mb = NULL;
	int fd;

	snprintf(path, size, "/tmp/test-mbox-header.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, mbox_text, sizeof(mbox_text) - 1), sizeof(mbox_text) - 1);
	assert_int_equal(close(fd), 0);
	assert_int_equal(mbox_open(path, NULL, 0, &mb, &err), 0);
	return mb;
}

static void
test_same_range(void **state)
{
	char path[64];
	struct mbox *mb = open_text(path, sizeof(path));
	uint32_t i;

	(void)state;
	assert_int_equal(mbox_count(mb), 4);
	for (i = 0; i < mbox_count(mb); i++) {
		const unsigned char *p, *hp, *bp;
		size_t len, hl, bl, hdr_len;
		uint64_t off, pos = 0;

		assert_int_equal(mbox_msg_range(mb, i, &p, &len, &hdr_len, &off), 0);
		if (mbox_header_next(mb, i, &pos, &hp, &hl) <= 0)
			hp = NULL;
		mbox_msg_body(mb, i, &bp, &bl);
		if (hp == NULL || hp > bp)
			hp = bp;
		assert_ptr_equal(p, hp);
		assert_int_equal(len, (size_t)(bp + bl - hp));
		assert_int_equal(hdr_len, (size_t)(bp - hp));
		assert_true(off > 0);
		assert_int_equal(mbox_msg_range(mb, i, &hp, &hl, &hdr_len, &pos), 0);
		assert_int_equal(pos, off);
	}
	/* the hidden fields before Subject are skipped */
	{
		const unsigned char *p;
		size_t len, hdr_len;
		uint64_t off;

		assert_int_equal(mbox_msg_range(mb, 0, &p, &len, &hdr_len, &off), 0);
		assert_memory_equal(p, "Subject: one\n", 13);
		assert_int_equal(mbox_msg_range(mb, 2, &p, &len, &hdr_len, &off), 0);
		assert_memory_equal(p, "\nonly hidden", 12);
		assert_int_equal(mbox_msg_range(mb, 3, &p, &len, &hdr_len, &off), 0);
		assert_memory_equal(p, "\nno header", 10);
	}
	mbox_free(&mb);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
