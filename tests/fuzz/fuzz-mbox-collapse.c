/*
 * fuzz-mbox-collapse.c: expunge by collapse (mbox-collapse.h) on arbitrary mailbox bytes.
 * The input is the mailbox after a generated first message of several blocks, so that
 * expunging that one collapses blocks and rewrites the first input message's header (with
 * X-IMAPbase and padding) from whatever bytes it holds.  The file lives on a disk
 * filesystem (under /var/tmp or /tmp, not tmpfs, which cannot collapse).  Whatever the
 * bytes: nothing crashes, the kept messages read back exactly as before, and a second open
 * agrees.
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
#include "tests/fuzz/seen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIRST_LINES	300	/* about 12 KB: three blocks and some */
#define MAX_KEPT	64	/* messages compared after the expunge */

/* on a disk file system: tmpfs cannot collapse */
static void
setup(void)
{
	(void)scratch_make("/var/tmp", "collapse");
}

static void
compare(struct mbox *mb, const struct seen *want, uint32_t n)
{
	uint32_t i;

	if (mbox_count(mb) < n)
		abort();
	for (i = 0; i < n; i++)
		if (!seen_same(mb, i, &want[i]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox *mb = NULL;
	struct mbox_error err;
	struct seen want[MAX_KEPT];
	uint32_t n, i, k = 0, *ex;
	size_t nex;
	FILE *f;
	int l;

	setup();
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs("From first@example.org Mon Jan  5 01:02:03 2015\nSubject: big\n\n", f);
	for (l = 0; l < FIRST_LINES; l++)
		fprintf(f, "line %d of the first message, which is expunged %d\n", l, l * 7);
	fputc('\n', f);
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();

	if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		abort();
	n = mbox_count(mb);
	if (n == 0)
		abort();
	/* expunge the first and every third after it; remember the others */
	for (i = 0; i < n; i++) {
		/* the input's own X-Status may say D: only ours count */
		mbox_msg_set_flags(mb, i, i % 3 == 0 ? MBOX_DELETED : 0, 0);
		if (i % 3 != 0 && k < MAX_KEPT) {
			want[k] = seen_of(mb, i);
			k++;
		}
	}
	if (mbox_expunge(mb, NULL, 0, &ex, &nex) < 0)
		abort();
	free(ex);
	if (nex != (n + 2) / 3 || mbox_count(mb) != n - (uint32_t)nex)
		abort();
	compare(mb, want, k);
	mbox_free(&mb);

	if (mbox_open(path, jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		abort();
	if (mbox_count(mb) != n - (uint32_t)nex)
		abort();
	compare(mb, want, k);
	mbox_free(&mb);
	return 0;
}
