/*
 * fuzz-mbox-cache.c: the mbox store's cache file on arbitrary contents.  A small valid
 * mailbox is written once; each input becomes its cache file, and the mailbox is opened
 * read-only (which never changes the file, so its stamp stays the one a valid cache names).
 *
 * The first input byte picks how the input becomes the cache file:
 *   0: the bytes as they are;
 *   1: the valid cache with byte edits (pairs of a 16-bit offset and a value) and its
 *      checksum made right again, so that the edits reach the record checks;
 *   2: the bytes with a right checksum appended, so that made-up headers get that far.
 * Whatever the bytes, the open succeeds and nothing crashes.  When the open ignored the
 * cache, the result must equal a plain parse.  A cache that names this file's stamp and
 * carries a right checksum is trusted by design (it lives in the user's private directory
 * and only describes what the user's own sessions saw), so there only safety is checked:
 * every message's bytes can be walked, sizes and UIDs are sane.
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
#include <zlib.h>

#include "mbox/mbox-private.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixture[] =
    "From MAILER-DAEMON Mon Jan  5 01:02:03 2015\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "X-IMAP: 1420419723 0000000007 $Forwarded Work\n"
    "Status: RO\n"
    "\n"
    "internal data\n"
    "\n"
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "Status: RO\n"
    "X-Status: AF\n"
    "X-Keywords: Work\n"
    "X-UID: 3\n"
    "\n"
    "one\n"
    ">From here\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015 +0200\n"
    "Subject: two\r\n"
    "X-Keywords: $Forwarded Work extra\r\n"
    "X-UID: 7\r\n"
    "\r\n"
    "two\r\n"
    "\n"
    "From c@x Mon Jan  5 01:02:03 2015\n"
    "Subject: three, no UID\n"
    "\n"
    "three\n";

static char cpath[400];
static unsigned char *good;
static size_t good_len;
static struct mbox *ref;

static void
cleanup(void)
{
	mbox_free(&ref);
	free(good);
}

static void
put(const char *p, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (n > 0 && write(fd, buf, n) != (ssize_t)n) || close(fd) < 0)
		abort();
}

static unsigned char *
slurp(const char *p, size_t *n_r)
{
	struct stat st;
	unsigned char *b;
	int fd = open(p, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		abort();
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL || read(fd, b, (size_t)st.st_size) != st.st_size)
		abort();
	close(fd);
	*n_r = (size_t)st.st_size;
	return b;
}

static struct mbox *
open_ro(const char *journal)
{
	struct mbox *mb = NULL;
	struct mbox_error err;

	if (mbox_open(path, journal, 0, &mb, &err) < 0)
		abort();	/* a cache must never make a valid mailbox fail to open */
	return mb;
}

static void
setup(void)
{
	DIR *d;
	struct dirent *e;
	struct mbox *mb;

	if (scratch_make("/dev/shm", "mbox-cache") != 0)
		return;
	atexit(cleanup);	/* runs before the scratch directory goes */
	setenv("IMAPD_MBOX_CACHE_MIN_SIZE", "0", 1);
	put(path, fixture, sizeof(fixture) - 1);
	/* wait out the file's timestamp tick, so that the cache saved is a trusted one */
	usleep(20000);
	ref = open_ro(NULL);
	mb = open_ro(jdir);
	mbox_free(&mb);
	d = opendir(jdir);
	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, MBOX_CACHE_PREFIX_NAME,
		    strlen(MBOX_CACHE_PREFIX_NAME)) == 0)
			snprintf(cpath, sizeof(cpath), "%s/%s", jdir, e->d_name);
	if (d != NULL)
		closedir(d);
	if (cpath[0] == 0)
		abort();
	good = slurp(cpath, &good_len);
	if (good_len < 8)
		abort();
	mb = open_ro(jdir);
	if (mb->cache_used != MBOX_CACHE_EXACT)
		abort();	/* the harness itself must reach the trusted path */
	mbox_free(&mb);
}

static void
same_as_ref(const struct mbox *mb)
{
	uint32_t i;
	unsigned k;

	if (mb->m.n != ref->m.n || mb->uidvalidity != ref->uidvalidity ||
	    mb->next_uid != ref->next_uid || mb->recent != ref->recent ||
	    mb->n_kw != ref->n_kw || memcmp(&mb->base, &ref->base, sizeof(mb->base)) != 0)
		abort();
	for (k = 0; k < mb->n_kw; k++)
		if (strcmp(mb->kw[k], ref->kw[k]) != 0)
			abort();
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *x = &mb->m.v[i], *y = &ref->m.v[i];

		if (x->from_off != y->from_off || x->body_off != y->body_off ||
		    x->end != y->end || x->date != y->date || x->keywords != y->keywords ||
		    x->disk_keywords != y->disk_keywords || x->hdr_vsize != y->hdr_vsize ||
		    x->body_bare_lf != y->body_bare_lf || x->uid != y->uid || x->fp != y->fp ||
		    x->from_len != y->from_len || x->tz_min != y->tz_min ||
		    x->flags != y->flags || x->disk_flags != y->disk_flags ||
		    x->state != y->state)
			abort();
	}
}

/* A trusted view: walk everything the callers can reach. */
static void
walk(struct mbox *mb)
{
	uint32_t i, n = mbox_count(mb), prev = 0;
	volatile unsigned sink = 0;

	for (i = 0; i < n; i++) {
		uint64_t pos = 0;
		const unsigned char *p;
		size_t len, k;
		uint32_t uid = mbox_msg_uid(mb, i);
		unsigned char buf[64];

		if (uid <= prev || uid >= mbox_uidnext(mb) || mbox_uid_index(mb, uid) != i)
			abort();
		prev = uid;
		if ((mbox_msg_flags(mb, i) & ~(MBOX_FLAGS_STORED | MBOX_RECENT)) != 0)
			abort();
		if (mbox_keyword_count(mb) < 64 &&
		    (mbox_msg_keywords(mb, i) >> mbox_keyword_count(mb)) != 0)
			abort();
		while (mbox_header_next(mb, i, &pos, &p, &len))
			for (k = 0; k < len; k++)
				sink += p[k];
		mbox_msg_body(mb, i, &p, &len);
		for (k = 0; k < len; k++)
			sink += p[k];
		(void)mbox_msg_size(mb, i);
		(void)mbox_msg_pread(mb, i, 0, buf, sizeof(buf));
		(void)mbox_msg_date(mb, i, NULL);
	}
	(void)sink;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbox *mb;
	unsigned char *buf;
	size_t n, i;
	uint32_t crc;

	setup();
	if (size < 1 || size > 1 << 16)
		return 0;
	switch (data[0] % 3) {
	case 0:
		put(cpath, data + 1, size - 1);
		break;
	case 1:
		buf = malloc(good_len);
		if (buf == NULL)
			abort();
		memcpy(buf, good, good_len);
		for (i = 1; i + 3 <= size; i += 3)
			buf[((size_t)data[i] << 8 | data[i + 1]) % (good_len - 8)] = data[i + 2];
		crc = (uint32_t)crc32(0, buf, (unsigned)(good_len - 8));
		memcpy(buf + good_len - 8, &crc, 4);
		put(cpath, buf, good_len);
		free(buf);
		break;
	default:
		n = size - 1;
		buf = malloc(n + 8);
		if (buf == NULL)
			abort();
		memcpy(buf, data + 1, n);
		crc = (uint32_t)crc32(0, buf, (unsigned)n);
		memcpy(buf + n, &crc, 4);
		/* the count of records, as the header would say it if it were right */
		memcpy(buf + n + 4, good + good_len - 4, 4);
		put(cpath, buf, n + 8);
		free(buf);
		break;
	}
	mb = open_ro(jdir);
	if (mb->cache_used == MBOX_CACHE_NONE)
		same_as_ref(mb);
	walk(mb);
	mbox_free(&mb);
	return 0;
}
