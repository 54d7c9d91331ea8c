/* test-mbox-write.c: persistence, flag writes, expunge, append, copy, sync. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>

#include "test-mbox-util.h"
#include "mbox/mbox-collapse.h"

static const char plain[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: two\n"
    "\n"
    "two\n"
    ">From quoted\n"
    "\n"
    "From c@x Wed Jan  7 01:02:03 2015\n"
    "Subject: three\n"
    "\n"
    "three\n"
    "\n";

static struct mbox *
open_rw(struct tdir *t)
{
	struct mbox *mb = NULL;
	struct mbox_error err;

	if (mbox_open(t->path, t->jdir, MBOX_OPEN_RW, &mb, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return NULL;
	}
	return mb;
}

static void
check_bodies(struct mbox *mb, const char *const *want, uint32_t n)
{
	uint32_t i;

	assert_int_equal(mbox_count(mb), n);
	for (i = 0; i < n; i++) {
		char *b = body_of(mb, i);

		assert_string_equal(b, want[i]);
		free(b);
	}
}

/* The writer's view keeps each message's fingerprint (From_ line and visible header size)
 * as a fresh parse of the file computes it: the cache saves it without reading the file. */
static void
check_fp_as_parsed(const struct tdir *t, const struct mbox *mb)
{
	struct mbox *p = NULL;
	struct mbox_error err;
	uint32_t i;

	assert_int_equal(mbox_open(t->path, NULL, 0, &p, &err), 0);
	assert_int_equal(mbox_count(p), mbox_count(mb));
	for (i = 0; i < mbox_count(mb); i++)
		if (mb->m.v[i].fp != p->m.v[i].fp || mb->m.v[i].hdr_vsize != p->m.v[i].hdr_vsize)
			fail_msg("message %u: fingerprint %#x, parse %#x", i, mb->m.v[i].fp,
			    p->m.v[i].fp);
	mbox_free(&p);
}

static void
test_first_rw_open_persists(void **state)
{
	static const char *const bodies[] = { "one\n", "two\n>From quoted\n", "three\n" };
	struct tdir t;
	struct mbox *mb;
	char *f, *h;
	uint32_t v;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	/* before anything is stored, every session agrees on the UIDVALIDITY, read-only
	 * ones included, and the first writer stores that same value */
	{
		struct mbox *ro = NULL;
		struct mbox_error err;
		uint32_t v1;

		assert_int_equal(mbox_open(t.path, NULL, 0, &ro, &err), 0);
		v1 = mbox_uidvalidity(ro);
		mbox_free(&ro);
		sleep(1);
		assert_int_equal(mbox_open(t.path, NULL, 0, &ro, &err), 0);
		assert_int_equal(mbox_uidvalidity(ro), v1);
		mbox_free(&ro);
		mb = open_rw(&t);
		assert_non_null(mb);
		assert_int_equal(mbox_uidvalidity(mb), v1);
	}
	assert_int_equal(mbox_recent_count(mb), 3);
	v = mbox_uidvalidity(mb);
	check_bodies(mb, bodies, 3);
	h = visible_header(mb, 0);
	assert_string_equal(h, "Subject: one\n\n");
	free(h);
	mbox_free(&mb);
	{
		size_t flen;

		f = read_file(t.path, &flen);
		/* padding is spaces, never anything else */
		assert_null(memchr(f, 0, flen));
	}
	assert_non_null(strstr(f, "X-IMAPbase: "));
	assert_non_null(strstr(f, "X-UID: 3\n"));
	assert_non_null(strstr(f, "Status: O \n"));
	free(f);
	/* the next session: same UIDs, nothing recent */
	mb = open_rw(&t);
	assert_non_null(mb);
	assert_int_equal(mbox_uidvalidity(mb), v);
	assert_int_equal(mbox_recent_count(mb), 0);
	assert_int_equal(mbox_msg_uid(mb, 2), 3);
	assert_int_equal(mbox_uidnext(mb), 4);
	check_bodies(mb, bodies, 3);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_flags_in_place(void **state)
{
	struct tdir t;
	struct mbox *mb;
	size_t n0, n1;
	char *f;
	int kw;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	assert_non_null(mb);
	free(read_file(t.path, &n0));
	kw = mbox_keyword_lookup(mb, "$Label1", 7, 1);
	assert_true(kw >= 0);
	mbox_msg_set_flags(mb, 1, MBOX_SEEN | MBOX_FLAGGED | MBOX_DELETED, 1ULL << kw);
	assert_int_equal(mbox_commit_flags(mb), 0);
	mbox_free(&mb);
	f = read_file(t.path, &n1);
	/* in place: same size (the keyword went into padding, the base has room too) */
	assert_int_equal(n0, n1);
	assert_non_null(strstr(f, "Status: RO\nX-Status:  DF \nX-Keywords: $Label1 "));
	free(f);
	mb = open_rw(&t);
	assert_int_equal(mbox_msg_flags(mb, 1), MBOX_SEEN | MBOX_FLAGGED | MBOX_DELETED);
	assert_int_equal(mbox_msg_keywords(mb, 1), 1ULL << mbox_keyword_lookup(mb, "$label1",
	    7, 0));
	assert_int_equal(mbox_msg_flags(mb, 0), 0);
	mbox_free(&mb);
	tdir_clean(&t);
}

/* Flags of many messages at once (written through a mapping, PATCH_MAP_MIN): in place,
 * every message's own, nothing else in the file changed. */
static void
test_flags_many_in_place(void **state)
{
	enum { N = 150 };
	struct tdir t;
	struct mbox *mb;
	char *src = malloc(N * 100), *p = src, *before, *after;
	size_t n0, n1, i, diff = 0;

	(void)state;
	assert_non_null(src);
	for (i = 0; i < N; i++)
		p += sprintf(p, "From u@x Mon Jan  5 01:02:03 2015\nSubject: m%zu\n\nbody %zu\n\n", i,
		    i);
	tdir_make(&t);
	write_file(t.path, src, (size_t)(p - src));
	mb = open_rw(&t);
	assert_non_null(mb);
	before = read_file(t.path, &n0);
	for (i = 0; i < N; i++)
		if (i % 3 != 2)
			mbox_msg_set_flags(mb, (uint32_t)i, i % 3 ? MBOX_SEEN : MBOX_FLAGGED, 0);
	mb->rewrite_kind = 0;
	assert_int_equal(mbox_commit_flags(mb), 0);
	assert_int_equal(mb->rewrite_kind, 0);
	mbox_free(&mb);
	after = read_file(t.path, &n1);
	assert_int_equal(n0, n1);
	/* only Status and X-Status letters changed: " O " became " RO" (two bytes) in the 50
	 * messages now \Seen, an F came into X-Status in the 50 now \Flagged */
	for (i = 0; i < n0; i++)
		if (before[i] != after[i]) {
			assert_true(after[i] == 'R' || after[i] == 'O' || after[i] == 'F');
			diff++;
		}
	assert_int_equal(diff, 150);
	mb = open_rw(&t);
	for (i = 0; i < N; i++) {
		char *b = body_of(mb, (uint32_t)i), want[32];

		snprintf(want, sizeof(want), "body %zu\n", i);
		assert_string_equal(b, want);
		assert_int_equal(mbox_msg_flags(mb, (uint32_t)i) & ~MBOX_RECENT,
		    i % 3 == 2 ? 0 : i % 3 ? MBOX_SEEN : MBOX_FLAGGED);
		free(b);
	}
	mbox_free(&mb);
	free(before);
	free(after);
	free(src);
	tdir_clean(&t);
}

/*
 * The first message holds X-IMAPbase next to its own metadata; its flags too change in
 * place.  With the journal directory replaced by a file the store can patch but cannot
 * rewrite a tail, so a commit that succeeds proves nothing was rewritten.
 */
static void
test_first_message_flags_in_place(void **state)
{
	struct tdir t;
	struct mbox *mb;
	size_t n0, n1;
	char *f0, *f1, *b0, *b1;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	assert_non_null(mb);
	f0 = read_file(t.path, &n0);
	assert_non_null(strstr(f0, "X-IMAPbase: "));
	{
		/* (the turnstile file the open made goes too: the session keeps it open) */
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", t.jdir);
		assert_int_equal(system(cmd), 0);
	}
	write_file(t.jdir, "x", 1);
	mbox_msg_set_flags(mb, 0, MBOX_SEEN | MBOX_ANSWERED, 0);
	mbox_msg_set_flags(mb, 2, MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	mbox_free(&mb);
	assert_int_equal(unlink(t.jdir), 0);
	assert_int_equal(mkdir(t.jdir, 0700), 0);
	f1 = read_file(t.path, &n1);
	assert_int_equal(n0, n1);
	assert_non_null(strstr(f1, "Status: RO\nX-Status: A   \n"));
	/* the message in between is untouched */
	b0 = strstr(f0, "From b@x");
	b1 = strstr(f1, "From b@x");
	assert_non_null(b0);
	assert_int_equal(b1 - f1, b0 - f0);
	assert_memory_equal(b0, b1, (size_t)(strstr(f0, "From c@x") - b0));
	mb = open_rw(&t);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_SEEN | MBOX_ANSWERED);
	assert_int_equal(mbox_msg_flags(mb, 1), 0);
	assert_int_equal(mbox_msg_flags(mb, 2), MBOX_SEEN);
	mbox_free(&mb);
	free(f0);
	free(f1);
	tdir_clean(&t);
}

/* UW writes X-Status only when there are flags, and no padding: a new flag needs the
 * tail rewritten. */
static const char uw_tight[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "X-IMAPbase: 1420419723 0000000002\n"
    "Subject: one\n"
    "Status: O\n"
    "X-UID: 1\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015\n"
    "Subject: two\n"
    "Status: O\n"
    "X-UID: 2\n"
    "\n"
    "two\n"
    "\n";

static void
test_flags_tail_rewrite(void **state)
{
	static const char *const bodies[] = { "one\n", "two\n" };
	struct tdir t;
	struct mbox *mb;
	size_t n0 = strlen(uw_tight), n1;
	char *f;
	(void)state;

	tdir_make(&t);
	write_file(t.path, uw_tight, n0);
	mb = open_rw(&t);
	assert_non_null(mb);
	assert_int_equal(mbox_uidvalidity(mb), 1420419723);
	/* opening wrote nothing: everything was up to date */
	f = read_file(t.path, &n1);
	assert_string_equal(f, uw_tight);
	free(f);
	mbox_msg_set_flags(mb, 0, MBOX_ANSWERED, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	check_bodies(mb, bodies, 2);
	mbox_free(&mb);
	f = read_file(t.path, &n1);
	assert_true(n1 > n0);
	assert_non_null(strstr(f, "X-Status: A   \n"));
	/* nothing left in the journal directory */
	free(f);
	mb = open_rw(&t);
	assert_int_equal(mbox_uidvalidity(mb), 1420419723);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_ANSWERED);
	assert_int_equal(mbox_msg_uid(mb, 1), 2);
	check_bodies(mb, bodies, 2);
	/* and now there is room: the next change is in place */
	free(read_file(t.path, &n0));
	mbox_msg_set_flags(mb, 1, MBOX_DRAFT | MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	free(read_file(t.path, &n1));
	assert_int_equal(n0, n1);
	mbox_free(&mb);
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd),
		    "test -z \"$(ls -A %s | grep -v '^\\.imapd-\\(lock\\|modseq\\)-')\"", t.jdir);
		assert_int_equal(system(cmd), 0);
	}
	tdir_clean(&t);
}

static void
test_many_keywords_rewrite(void **state)
{
	struct tdir t;
	struct mbox *mb;
	uint64_t all = 0;
	char name[32];
	int i, k;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "keyword%02d", i);
		k = mbox_keyword_lookup(mb, name, strlen(name), 1);
		assert_true(k >= 0);
		all |= 1ULL << k;
	}
	mbox_msg_set_flags(mb, 0, MBOX_SEEN, all);
	assert_int_equal(mbox_commit_flags(mb), 0);
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_keyword_count(mb), 20);
	assert_int_equal(__builtin_popcountll(mbox_msg_keywords(mb, 0)), 20);
	assert_int_equal(mbox_msg_keywords(mb, 1), 0);
	assert_int_equal(mbox_msg_uid(mb, 2), 3);
	/* the limit holds */
	for (i = 20; i < MBOX_MAX_KEYWORDS + 5; i++) {
		snprintf(name, sizeof(name), "keyword%02d", i);
		k = mbox_keyword_lookup(mb, name, strlen(name), 1);
		assert_true(i < MBOX_MAX_KEYWORDS ? k >= 0 : k == -1);
	}
	assert_int_equal(mbox_keyword_lookup(mb, "bad(name", 8, 1), -1);
	assert_int_equal(mbox_keyword_lookup(mb, "\\Seen", 5, 1), -1);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_expunge(void **state)
{
	static const char *const left[] = { "two\n>From quoted\n" };
	struct tdir t;
	struct mbox *mb;
	uint32_t *ex;
	size_t n;
	uint32_t v;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	v = mbox_uidvalidity(mb);
	/* nothing deleted: nothing happens */
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &n), 0);
	assert_int_equal(n, 0);
	free(ex);
	mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
	mbox_msg_set_flags(mb, 2, MBOX_DELETED, 0);
	/* UID EXPUNGE of a set that leaves out UID 3 */
	{
		uint32_t only[] = { 1, 2 };

		assert_int_equal(mbox_expunge(mb, only, 2, &ex, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(ex[0], 1);
		free(ex);
	}
	assert_int_equal(mbox_count(mb), 2);
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ex[0], 3);
	free(ex);
	check_bodies(mb, left, 1);
	assert_int_equal(mbox_msg_uid(mb, 0), 2);
	mbox_free(&mb);
	mb = open_rw(&t);
	/* the base moved to the new first message: UIDs and UIDVALIDITY are kept */
	assert_int_equal(mbox_uidvalidity(mb), v);
	assert_int_equal(mbox_msg_uid(mb, 0), 2);
	assert_int_equal(mbox_uidnext(mb), 4);
	check_bodies(mb, left, 1);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_expunge_all_keeps_uids(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct mbox_append *ap;
	uint32_t *ex, v, first, n1;
	size_t n, i;
	char *f;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	v = mbox_uidvalidity(mb);
	for (i = 0; i < 3; i++)
		mbox_msg_set_flags(mb, (uint32_t)i, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &n), 0);
	assert_int_equal(n, 3);
	free(ex);
	assert_int_equal(mbox_count(mb), 0);
	mbox_free(&mb);
	/* the file keeps the UID state in a pseudo message, hidden from clients */
	f = read_file(t.path, NULL);
	assert_non_null(strstr(f, "X-IMAP: "));
	free(f);
	mb = open_rw(&t);
	assert_int_equal(mbox_count(mb), 0);
	assert_int_equal(mbox_uidvalidity(mb), v);
	assert_int_equal(mbox_uidnext(mb), 4);
	assert_int_equal(mbox_append_begin(mb, &ap), 0);
	assert_int_equal(mbox_append_msg_begin(ap, 1420419723, 0, 0, 0), 0);
	assert_int_equal(mbox_append_write(ap, (const unsigned char *)"Subject: x\n\ny\n", 15),
	    0);
	assert_int_equal(mbox_append_msg_end(ap), 0);
	assert_int_equal(mbox_append_commit(&ap, &first, &n1), 0);
	assert_int_equal(first, 4);
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_count(mb), 1);
	assert_int_equal(mbox_msg_uid(mb, 0), 4);
	assert_int_equal(mbox_uidvalidity(mb), v);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
append_one(struct mbox_append *ap, const char *msg, size_t chunk, unsigned flags)
{
	size_t n = strlen(msg), i;

	assert_int_equal(mbox_append_msg_begin(ap, 1420419723, 60, flags, 0), 0);
	for (i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;

		assert_int_equal(mbox_append_write(ap, (const unsigned char *)msg + i, k), 0);
	}
	assert_int_equal(mbox_append_msg_end(ap), 0);
}

static void
test_append(void **state)
{
	static const char msg[] =
	    "Subject: hi\r\n"
	    "X-UID: 1\r\n"
	    "Status: RO\r\n"
	    "X-IMAPbase: 1 1000\r\n"
	    "x-keywords: forged\r\n"
	    "Content-Length: 99\r\n"
	    "\r\n"
	    "From the start\r\n"
	    "a line\r\n"
	    "From mid\r\n"
	    ">From already quoted\r\n"
	    "Fro\r\n"
	    "end without newline";
	static const char want_body[] =
	    ">From the start\n"
	    "a line\n"
	    ">From mid\n"
	    ">From already quoted\n"
	    "Fro\n"
	    "end without newline\n";
	static const size_t chunks[] = { 1, 2, 3, 5, 7, 4096 };
	struct tdir t;
	struct mbox *mb;
	struct mbox_append *ap;
	uint32_t first, n, i;
	size_t c;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		assert_int_equal(mbox_append_begin(mb, &ap), 0);
		append_one(ap, msg, chunks[c], MBOX_SEEN);
		append_one(ap, "Subject: second\n\nbody\n", chunks[c], 0);
		assert_int_equal(mbox_append_commit(&ap, &first, &n), 0);
		assert_null(ap);
		assert_int_equal(n, 2);
		assert_int_equal(first, 4 + 2 * c);
	}
	assert_int_equal(mbox_count(mb), 3 + 2 * 6);
	for (c = 0; c < 6; c++) {
		uint32_t k = 3 + 2 * (uint32_t)c;
		char *h = visible_header(mb, k), *b = body_of(mb, k);
		int tz;

		assert_string_equal(h, "Subject: hi\nX-Original-X-UID: 1\nX-Original-Status: RO\n"
		    "X-Original-X-IMAPbase: 1 1000\nX-Original-x-keywords: forged\n"
		    "X-Original-Content-Length: 99\n\n");
		assert_string_equal(b, want_body);
		assert_int_equal(mbox_msg_size(mb, k), crlf_size(h) + crlf_size(b));
		assert_int_equal(mbox_msg_flags(mb, k), MBOX_SEEN | MBOX_RECENT);
		assert_int_equal(mbox_msg_date(mb, k, &tz), 1420419723);
		assert_int_equal(tz, 60);
		assert_int_equal(mbox_msg_keywords(mb, k), 0);
		free(h);
		free(b);
	}
	/* abort leaves nothing */
	{
		size_t n0, n1;

		free(read_file(t.path, &n0));
		assert_int_equal(mbox_append_begin(mb, &ap), 0);
		append_one(ap, "Subject: aborted\n\nx\n", 3, 0);
		mbox_append_abort(&ap);
		free(read_file(t.path, &n1));
		assert_int_equal(n0, n1);
	}
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_count(mb), 15);
	assert_int_equal(mbox_uidnext(mb), 16);
	for (i = 0; i < 15; i++)
		assert_int_equal(mbox_msg_uid(mb, i), i + 1);
	/* appended mail is \Recent to the next session (RFC 3501 6.3.11), then old */
	assert_int_equal(mbox_msg_flags(mb, 3), MBOX_SEEN | MBOX_RECENT);
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_msg_flags(mb, 3), MBOX_SEEN);
	assert_int_equal(mbox_recent_count(mb), 0);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_append_to_missing(void **state)
{
	struct tdir t;
	struct mbox *mb = NULL;
	struct mbox_error err;
	struct mbox_append *ap;
	uint32_t first, n;
	(void)state;

	tdir_make(&t);
	assert_int_equal(mbox_open(t.path, t.jdir, MBOX_OPEN_RW | MBOX_OPEN_MISSING_OK, &mb,
	    &err), 0);
	assert_int_equal(mbox_append_begin(mb, &ap), 0);
	append_one(ap, "Subject: first\n\nbody\n", 4096, 0);
	assert_int_equal(mbox_append_commit(&ap, &first, &n), 0);
	assert_int_equal(first, 1);
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_count(mb), 1);
	assert_int_equal(mbox_msg_uid(mb, 0), 1);
	assert_int_equal(mbox_uidnext(mb), 2);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_copy(void **state)
{
	struct tdir a, b;
	struct mbox *src, *dst;
	uint32_t idx[] = { 2, 0 }, first;
	int k;
	(void)state;

	tdir_make(&a);
	tdir_make(&b);
	write_file(a.path, plain, strlen(plain));
	write_file(b.path, uw_tight, strlen(uw_tight));
	src = open_rw(&a);
	dst = open_rw(&b);
	k = mbox_keyword_lookup(src, "Important", 9, 1);
	mbox_msg_set_flags(src, 2, MBOX_FLAGGED, 1ULL << k);
	assert_int_equal(mbox_commit_flags(src), 0);
	assert_int_equal(mbox_copy(dst, src, idx, 2, &first), 0);
	assert_int_equal(first, 3);
	assert_int_equal(mbox_count(dst), 4);
	{
		char *h = visible_header(dst, 2), *body = body_of(dst, 2);

		assert_string_equal(h, "Subject: three\n\n");
		assert_string_equal(body, "three\n");
		free(h);
		free(body);
	}
	assert_int_equal(mbox_msg_flags(dst, 2) & MBOX_FLAGS_STORED, MBOX_FLAGGED);
	assert_int_equal(mbox_msg_keywords(dst, 2),
	    1ULL << mbox_keyword_lookup(dst, "important", 9, 0));
	assert_int_equal(mbox_msg_uid(dst, 3), 4);
	mbox_free(&src);
	mbox_free(&dst);
	tdir_clean(&a);
	tdir_clean(&b);
}

/* The flags of every message, as a fresh open reads them from the file. */
static void
check_disk_flags(struct tdir *t, const unsigned *want, uint32_t n)
{
	struct mbox *mb = NULL;
	struct mbox_error err;
	uint32_t i;

	assert_int_equal(mbox_open(t->path, NULL, 0, &mb, &err), 0);
	assert_int_equal(mbox_count(mb), n);
	for (i = 0; i < n; i++)
		if ((mbox_msg_flags(mb, i) & MBOX_FLAGS_STORED) != want[i])
			fail_msg("message %u: flags %#x on disk, want %#x", i,
			    mbox_msg_flags(mb, i) & MBOX_FLAGS_STORED, want[i]);
	mbox_free(&mb);
}

/*
 * A write skips the messages it knows to be written (mb->clean_below).  A flag change to
 * any message, before or after writes, appends, deliveries and another session's expunge,
 * still reaches the file.
 */
static void
test_flags_after_writes(void **state)
{
	struct tdir t;
	struct mbox *mb, *other;
	struct mbox_sync_result r;
	struct mbox_append *ap;
	uint32_t first, n;
	unsigned want[5] = { 0 };
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);	/* the first open writes everyone's metadata */
	assert_non_null(mb);
	mbox_msg_set_flags(mb, 2, MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	want[2] = MBOX_SEEN;
	mbox_msg_set_flags(mb, 0, MBOX_FLAGGED, 0);	/* below what was written last */
	assert_int_equal(mbox_commit_flags(mb), 0);
	want[0] = MBOX_FLAGGED;
	check_disk_flags(&t, want, 3);

	/* an append of our own, then a change to the first message */
	assert_int_equal(mbox_append_begin(mb, &ap), 0);
	append_one(ap, "Subject: a\r\n\r\nappended\r\n", 4096, 0);
	assert_int_equal(mbox_append_commit(&ap, &first, &n), 0);
	mbox_msg_set_flags(mb, 0, MBOX_FLAGGED | MBOX_ANSWERED, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	want[0] = MBOX_FLAGGED | MBOX_ANSWERED;
	check_disk_flags(&t, want, 4);

	/* a delivery, seen by a sync, then a change to the second message */
	append_file(t.path, "From new@x Thu Jan  8 01:02:03 2015\nSubject: new\n\nnew\n\n");
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.new_count, 5);
	mbox_sync_result_clear(&r);
	mbox_msg_set_flags(mb, 1, MBOX_DRAFT, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	want[1] = MBOX_DRAFT;
	check_disk_flags(&t, want, 5);

	/* another session expunges the first message; this one changes a later message
	 * before it has synced (its write reloads, keeping the removed entry), then the new
	 * first message once the removal was reported */
	other = open_rw(&t);
	assert_non_null(other);
	mbox_msg_set_flags(other, 0, MBOX_DELETED | MBOX_FLAGGED | MBOX_ANSWERED, 0);
	{
		uint32_t *ex;
		size_t k;

		assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &k), 0);
		assert_int_equal(k, 1);
		free(ex);
	}
	mbox_free(&other);
	mbox_msg_set_flags(mb, 3, MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 1);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_count(mb), 4);
	mbox_msg_set_flags(mb, 0, MBOX_DRAFT | MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	{
		unsigned now[4] = { MBOX_DRAFT | MBOX_SEEN, MBOX_SEEN, MBOX_SEEN, 0 };

		check_disk_flags(&t, now, 4);
	}

	/* a mail reader rewrites the file without the last message's X-UID: the sync
	 * takes it for new mail (RFC 3501 2.3.1.1: its UID cannot be known) and writes
	 * its new UID, though every message was written before */
	{
		size_t len;
		char *f = read_file(t.path, &len), *x = strstr(f, "X-UID: 5\n");

		assert_non_null(x);
		memmove(x, x + 9, len - (size_t)(x + 9 - f) + 1);
		write_file(t.path, f, strlen(f));
		free(f);
	}
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 1);
	assert_int_equal(r.expunged[0], 5);
	assert_false(r.uidvalidity_changed);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_count(mb), 4);
	assert_int_equal(mbox_msg_uid(mb, 3), 6);
	{
		char *f = read_file(t.path, NULL);

		assert_non_null(strstr(f, "X-UID: 6\n"));
		free(f);
	}
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_sync_external(void **state)
{
	struct tdir t;
	struct mbox *mb, *other;
	struct mbox_sync_result r;
	char *f;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged + r.n_changed, 0);
	assert_int_equal(r.new_count, 3);
	mbox_sync_result_clear(&r);

	/* an MDA appends */
	append_file(t.path, "From new@x Thu Jan  8 01:02:03 2015\nSubject: new\n"
	    "X-UID: 2\n\nnew mail\n\n");
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 0);
	assert_int_equal(r.old_count, 3);
	assert_int_equal(r.new_count, 4);
	assert_int_equal(mbox_msg_uid(mb, 3), 4);	/* the forged X-UID is not taken */
	assert_true(mbox_msg_flags(mb, 3) & MBOX_RECENT);
	assert_int_equal(mbox_recent_count(mb), 4);
	mbox_sync_result_clear(&r);
	/* ... and its UID was written at once */
	f = read_file(t.path, NULL);
	assert_non_null(strstr(f, "X-UID: 4\n"));
	free(f);

	/* another session changes flags and expunges */
	other = open_rw(&t);
	assert_non_null(other);
	assert_int_equal(mbox_recent_count(other), 0);
	mbox_msg_set_flags(other, 0, MBOX_SEEN, 0);
	mbox_msg_set_flags(other, 1, MBOX_DELETED, 0);
	assert_int_equal(mbox_commit_flags(other), 0);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_changed, 2);
	assert_int_equal(r.changed[0], 1);
	assert_int_equal(mbox_msg_flags(mb, 0) & MBOX_SEEN, MBOX_SEEN);
	mbox_sync_result_clear(&r);
	{
		uint32_t *ex;
		size_t n;

		assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
		assert_int_equal(n, 1);
		free(ex);
	}
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 1);
	assert_int_equal(r.expunged[0], 2);
	assert_int_equal(r.new_count, 3);
	assert_int_equal(mbox_msg_uid(mb, 1), 3);
	mbox_sync_result_clear(&r);

	/* our own write while the other session also wrote: both work */
	mbox_msg_set_flags(mb, 2, MBOX_FLAGGED, 0);
	mbox_msg_set_flags(other, 0, MBOX_SEEN | MBOX_ANSWERED, 0);
	assert_int_equal(mbox_commit_flags(other), 0);
	assert_int_equal(mbox_commit_flags(mb), 0);
	assert_int_equal(mbox_sync(other, &r), 0);
	assert_int_equal(mbox_msg_flags(other, 2) & MBOX_FLAGS_STORED, MBOX_FLAGGED);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(mbox_msg_flags(mb, 0) & MBOX_FLAGS_STORED,
	    MBOX_SEEN | MBOX_ANSWERED);
	mbox_sync_result_clear(&r);
	mbox_free(&other);

	/* a local mail reader removes the first message (and the base with it) */
	{
		char *data = read_file(t.path, NULL);
		char *second = strstr(data + 1, "\nFrom ");

		assert_non_null(second);
		write_file(t.path, second + 1, strlen(second + 1));
		free(data);
	}
	{
		uint32_t v = mbox_uidvalidity(mb);

		assert_int_equal(mbox_sync(mb, &r), 0);
		assert_false(r.uidvalidity_changed);
		assert_int_equal(r.n_expunged, 1);
		assert_int_equal(r.expunged[0], 1);
		assert_int_equal(mbox_uidvalidity(mb), v);
		assert_int_equal(mbox_count(mb), 2);
		assert_int_equal(mbox_msg_uid(mb, 0), 3);
		mbox_sync_result_clear(&r);
		/* the base was written into the new first message */
		mbox_free(&mb);
		mb = open_rw(&t);
		assert_int_equal(mbox_uidvalidity(mb), v);
		assert_int_equal(mbox_msg_uid(mb, 0), 3);
		assert_int_equal(mbox_uidnext(mb), 5);
	}
	mbox_free(&mb);
	tdir_clean(&t);
}

/* A mail reader that writes a new file and renames it over the mailbox, same length: the
 * next sync reads the new file, not the mapping of the old one. */
static void
test_sync_replaced_same_size(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct mbox_sync_result r;
	char tmp[4200], *f, *b, *x;
	size_t len;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	assert_non_null(mb);
	b = body_of(mb, 0);
	assert_string_equal(b, "one\n");
	free(b);
	f = read_file(t.path, &len);
	x = strstr(f, "\n\none\n");
	assert_non_null(x);
	memcpy(x + 2, "ONE", 3);
	snprintf(tmp, sizeof(tmp), "%s.new", t.path);
	write_file(tmp, f, len);
	free(f);
	assert_int_equal(rename(tmp, t.path), 0);
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 0);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_count(mb), 3);
	b = body_of(mb, 0);
	assert_string_equal(b, "ONE\n");
	free(b);
	mbox_free(&mb);
	tdir_clean(&t);
}

/* A session killed while it kept a copy leaves a torn record at the end of the file of
 * kept copies; the next expunge's copies go where the whole records end, not after it. */
static void
test_kept_copy_after_a_torn_record(void **state)
{
	struct tdir t;
	struct mbox *mb, *other;
	char gp[600], *b;
	uint32_t *ex;
	size_t n;
	int fd;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	other = open_rw(&t);
	assert_int_equal(mbox_gone_path(other, gp, sizeof(gp)), 0);
	/* a whole record first, then the torn one */
	mbox_msg_set_flags(other, 0, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
	free(ex);
	fd = open(gp, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "IGR1 torn by a kill", 19), 19);
	close(fd);
	mbox_msg_set_flags(other, 0, MBOX_DELETED, 0);	/* "two" is the first now */
	assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
	assert_int_equal(n, 1);
	free(ex);
	assert_int_equal(mbox_read_begin(mb), 0);
	assert_true(mbox_msg_gone(mb, 0) && mbox_msg_gone(mb, 1));
	assert_true(mbox_msg_available(mb, 0));
	assert_true(mbox_msg_available(mb, 1));
	b = body_of(mb, 1);
	assert_string_equal(b, "two\n>From quoted\n");
	free(b);
	mbox_read_end(mb);
	mbox_free(&other);
	mbox_free(&mb);
	tdir_clean(&t);
}

/* When new copies do not fit, the oldest go, and the file is replaced (not cut in place):
 * a reader that mapped the old one maps the new one at its next look. */
static void
test_kept_copies_make_room(void **state)
{
	struct tdir t;
	struct mbox *mb, *other;
	struct stat st;
	char gp[600], *b;
	uint32_t *ex;
	size_t n;
	ino_t ino;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	other = open_rw(&t);
	assert_int_equal(mbox_gone_path(other, gp, sizeof(gp)), 0);
	mbox_msg_set_flags(other, 0, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
	free(ex);
	assert_int_equal(stat(gp, &st), 0);
	ino = st.st_ino;
	/* the reader maps the file with the first copy */
	assert_int_equal(mbox_read_begin(mb), 0);
	assert_true(mbox_msg_available(mb, 0));
	mbox_read_end(mb);
	/* room for one copy only: the next expunge's copy pushes the first out */
	other->gone_max = 2 * (uint64_t)st.st_size - 1;	/* "two" is a little longer */
	mbox_msg_set_flags(other, 0, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
	free(ex);
	assert_int_equal(stat(gp, &st), 0);
	assert_true(st.st_ino != ino);
	assert_int_equal(mbox_read_begin(mb), 0);
	assert_false(mbox_msg_available(mb, 0));
	assert_true(mbox_msg_available(mb, 1));
	b = body_of(mb, 1);
	assert_string_equal(b, "two\n>From quoted\n");
	free(b);
	mbox_read_end(mb);
	mbox_free(&other);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_refresh_keeps_numbers(void **state)
{
	struct tdir t;
	struct mbox *mb, *other;
	struct mbox_sync_result r;
	uint32_t *ex;
	size_t n;
	char *b;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	mb = open_rw(&t);
	other = open_rw(&t);
	mbox_msg_set_flags(other, 0, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(other, NULL, 0, &ex, &n), 0);
	free(ex);
	append_file(t.path, "From new@x Thu Jan  8 01:02:03 2015\nSubject: new\n\nnew\n\n");
	/* the file shrank under mb: refresh maps it again without renumbering */
	assert_int_equal(mbox_refresh(mb), 0);
	assert_int_equal(mbox_count(mb), 4);
	assert_int_equal(mbox_msg_uid(mb, 0), 1);
	/* the removed message is gone from the file, but the expunging session kept a copy
	 * (mbox-gone.c): read under the read lock, it is what it was */
	assert_true(mbox_msg_gone(mb, 0));
	assert_int_equal(mbox_read_begin(mb), 0);
	assert_true(mbox_msg_available(mb, 0));
	b = body_of(mb, 0);
	assert_string_equal(b, "one\n");
	free(b);
	mbox_read_end(mb);
	b = body_of(mb, 2);
	assert_string_equal(b, "three\n");
	free(b);
	b = body_of(mb, 3);
	assert_string_equal(b, "new\n");
	free(b);
	/* the next sync reports the removal */
	assert_int_equal(mbox_sync(mb, &r), 0);
	assert_int_equal(r.n_expunged, 1);
	assert_int_equal(r.expunged[0], 1);
	assert_int_equal(mbox_count(mb), 3);
	mbox_sync_result_clear(&r);
	mbox_free(&other);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_readonly_never_writes(void **state)
{
	struct tdir t;
	struct mbox *mb = NULL;
	struct mbox_error err;
	struct mbox_append *ap;
	uint32_t *ex;
	size_t n;
	char *f;
	(void)state;

	tdir_make(&t);
	write_file(t.path, plain, strlen(plain));
	assert_int_equal(mbox_open(t.path, NULL, 0, &mb, &err), 0);
	mbox_msg_set_flags(mb, 0, MBOX_SEEN, 0);
	assert_int_equal(mbox_commit_flags(mb), -1);
	assert_int_equal(mbox_error(mb)->code, EROFS);
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &n), -1);
	assert_int_equal(mbox_append_begin(mb, &ap), -1);
	mbox_free(&mb);
	f = read_file(t.path, NULL);
	assert_string_equal(f, plain);
	free(f);
	tdir_clean(&t);
}

/*
 * Expunge by collapse.  Bodies of several blocks, each different; the filesystem under the
 * test's temporary directory must support FALLOC_FL_COLLAPSE_RANGE (ext4, XFS) or the test
 * is skipped.
 */
#define CL_MSGS 12

static int
collapse_supported(const struct tdir *t)
{
	char path[400], buf[3 * 4096];
	int fd, r;

	snprintf(path, sizeof(path), "%s/collapse-probe", t->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	r = fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 4096, 4096);
	if (r < 0)
		assert_true(errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS);
	close(fd);
	unlink(path);
	return r == 0;
}

/* Message bodies; the last is big enough that rewriting it costs more than collapsing
 * twice (MBOX_COLLAPSE_STEP_COST), so expunges before it collapse every run. */
static char *
cl_body(int i)
{
	size_t lines = i == CL_MSGS - 1 ? 3 * MBOX_COLLAPSE_STEP_COST / 40 :
	    (size_t)(120 + 37 * (i % 5) + 11 * i);
	size_t cap = lines * 80 + 1, n = 0, l;
	char *b = malloc(cap);

	assert_non_null(b);
	for (l = 0; l < lines; l++)
		n += (size_t)snprintf(b + n, cap - n, "msg %d line %zu %s\n", i, l,
		    l % 5 ? "the quick brown fox jumps over the lazy dog" : "");
	b[n] = 0;
	return b;
}

struct cl_msg {
	uint32_t uid;
	uint64_t size;
	char *hdr, *body;
};

/* what a client sees of message i */
static void
cl_take(struct mbox *mb, uint32_t i, struct cl_msg *m)
{
	m->uid = mbox_msg_uid(mb, i);
	m->size = mbox_msg_size(mb, i);
	m->hdr = visible_header(mb, i);
	m->body = body_of(mb, i);
}

static void
cl_same(struct mbox *mb, const struct cl_msg *want, uint32_t n)
{
	uint32_t i;

	assert_int_equal(mbox_count(mb), n);
	for (i = 0; i < n; i++) {
		struct cl_msg g;

		cl_take(mb, i, &g);
		assert_int_equal(g.uid, want[i].uid);
		assert_int_equal(g.size, want[i].size);
		assert_string_equal(g.hdr, want[i].hdr);
		assert_string_equal(g.body, want[i].body);
		free(g.hdr);
		free(g.body);
	}
}

/* The file as a plain mbox reader splits it: every header line under 998 octets, lines of
 * whitespace only just in X-Keywords, and a blank line before each From_ line. */
static void
cl_check_file(const char *path, uint32_t n_msgs, size_t max_header)
{
	size_t n, i = 0, hstart = 0;
	char *f = read_file(path, &n);
	uint32_t count = 0;
	int in_header = 0, in_kw = 0;

	while (i < n) {
		char *nl = memchr(f + i, '\n', n - i);
		size_t len = nl != NULL ? (size_t)(nl - (f + i)) : n - i;

		if (len >= 5 && memcmp(f + i, "From ", 5) == 0 &&
		    (i == 0 || (i >= 2 && f[i - 2] == '\n'))) {
			count++;
			in_header = 1;
			hstart = i;
		} else if (in_header && len == 0) {
			in_header = 0;
			assert_true(i - hstart <= max_header);
		} else if (in_header) {
			size_t k;

			assert_true(len < 998);
			for (k = 0; k < len && (f[i + k] == ' ' || f[i + k] == '\t'); k++)
				;
			if (k == len)
				assert_true(in_kw);	/* whitespace-only: X-Keywords padding */
			else if (k == 0)
				in_kw = len >= 11 && memcmp(f + i, "X-Keywords:", 11) == 0;
		}
		i += len + 1;
	}
	assert_int_equal(count, n_msgs);
	free(f);
}

static void
test_expunge_collapse(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct cl_msg want[CL_MSGS];
	uint32_t *ex, i, n = CL_MSGS, j;
	size_t k, n0, n1, sz;
	char *f;
	(void)state;

	tdir_make(&t);
	if (!collapse_supported(&t)) {
		tdir_clean(&t);
		skip();
	}
	{
		size_t cap = 8 * MBOX_COLLAPSE_STEP_COST, len = 0;
		char *buf = malloc(cap);

		for (i = 0; i < CL_MSGS; i++) {
			char *b = cl_body((int)i);

			assert_true(strlen(b) + 200 < cap - len);
			len += (size_t)snprintf(buf + len, cap - len,
			    "From u%u@example.org Mon Jan  5 01:02:03 2015\n"
			    "Subject: message %u\nX-Other: %*s\n\n%s\n", i, i, (int)(i * 13), "v", b);
			free(b);
		}
		write_file(t.path, buf, len);
		free(buf);
	}
	mb = open_rw(&t);
	assert_non_null(mb);
	for (i = 0; i < n; i++)
		cl_take(mb, i, &want[i]);

	/* the first message: collapse removes whole blocks, the rest becomes padding */
	free(read_file(t.path, &n0));
	mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &k), 0);
	assert_int_equal(k, 1);
	assert_int_equal(ex[0], 1);
	free(ex);
	free(want[0].hdr);
	free(want[0].body);
	memmove(want, want + 1, --n * sizeof(want[0]));
	f = read_file(t.path, &n1);
	assert_true(n1 < n0 && (n0 - n1) % 4096 == 0);
	assert_memory_equal(f, "From u1@example.org", 19);
	assert_non_null(strstr(f, "X-IMAPbase: "));
	assert_true(strstr(f, "X-IMAPbase: ") < strstr(f, "\n\n"));
	free(f);
	cl_same(mb, want, n);
	cl_check_file(t.path, n, 3 * 4096);
	check_fp_as_parsed(&t, mb);
	mbox_free(&mb);
	mb = open_rw(&t);
	cl_same(mb, want, n);

	/* the padded header's flags and keywords change in place */
	free(read_file(t.path, &n0));
	mbox_msg_set_flags(mb, 0, MBOX_SEEN | MBOX_FLAGGED, 0);
	assert_true(mbox_keyword_lookup(mb, "$Label1", 7, 1) >= 0);
	mbox_msg_set_flags(mb, 0, MBOX_SEEN | MBOX_FLAGGED,
	    1ULL << mbox_keyword_lookup(mb, "$Label1", 7, 0));
	assert_int_equal(mbox_commit_flags(mb), 0);
	free(read_file(t.path, &n1));
	assert_int_equal(n0, n1);
	mbox_free(&mb);
	mb = open_rw(&t);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_SEEN | MBOX_FLAGGED);
	assert_int_equal(mbox_msg_keywords(mb, 0), 1);
	cl_same(mb, want, n);

	/* a middle message and a run of two, in one expunge */
	mbox_msg_set_flags(mb, 3, MBOX_DELETED, 0);
	mbox_msg_set_flags(mb, 6, MBOX_DELETED | MBOX_ANSWERED, 0);
	mbox_msg_set_flags(mb, 7, MBOX_DELETED, 0);
	free(read_file(t.path, &n0));
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &k), 0);
	assert_int_equal(k, 3);
	free(ex);
	free(read_file(t.path, &n1));
	assert_true(n1 < n0 && (n0 - n1) % 4096 == 0);
	for (i = 0, j = 0; i < n; i++) {
		if (i == 3 || i == 6 || i == 7) {
			free(want[i].hdr);
			free(want[i].body);
			continue;
		}
		want[j++] = want[i];
	}
	n = j;
	cl_same(mb, want, n);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_SEEN | MBOX_FLAGGED);
	cl_check_file(t.path, n, 3 * 4096);
	mbox_free(&mb);
	mb = open_rw(&t);
	cl_same(mb, want, n);
	assert_int_equal(mbox_msg_keywords(mb, 0), 1);

	/* the first message again and again: the padding does not pile up */
	while (n > 2) {
		mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
		assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &k), 0);
		assert_int_equal(k, 1);
		free(ex);
		free(want[0].hdr);
		free(want[0].body);
		memmove(want, want + 1, --n * sizeof(want[0]));
		cl_same(mb, want, n);
		cl_check_file(t.path, n, 3 * 4096);
	}
	mbox_free(&mb);
	mb = open_rw(&t);
	cl_same(mb, want, n);
	assert_int_equal(mbox_uidvalidity(mb) != 0, 1);
	assert_int_equal(mbox_msg_uid(mb, n - 1), CL_MSGS);
	mbox_free(&mb);
	/* no journal left */
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd),
		    "test -z \"$(ls -A %s | grep -v '^\\.imapd-\\(cache\\|gone\\|lock\\|modseq\\)-')\"",
		    t.jdir);
		assert_int_equal(system(cmd), 0);
	}
	sz = n;
	for (i = 0; i < sz; i++) {
		free(want[i].hdr);
		free(want[i].body);
	}
	tdir_clean(&t);
}

/*
 * The in-place rewrite (mbox-shift.c) against the journal copy: the same bytes in the file,
 * whatever the step, and a view that reads the same as a fresh parse.  Mailboxes with
 * metadata of other writers, Content-Length, quoted From_ lines, CRLF lines, and the
 * fix-ups (a body without its last LF, a lone CR, a header with no empty line after it).
 */
static const char shift_plain[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "Content-Length: 4\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: two\n"
    "Status: RO\n"
    "X-Status: F\n"
    "X-Keywords: $Label1 work\n"
    "Received: by x;\n"
    "  Tue, 6 Jan 2015 01:02:03 +0000\n"
    "\n"
    "two\n"
    ">From quoted\n"
    "\n"
    "\n"
    "From c@x Wed Jan  7 01:02:03 2015\n"
    "Subject: three\r\n"
    "X-Mailer: crlf\r\n"
    "\n"
    "three\r\n"
    "\n"
    "From d@x Thu Jan  8 01:02:03 2015\n"
    "Subject: empty body\n"
    "\n"
    "\n";

static const char shift_fixups[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: crlf empty line\n"
    "\r\n"
    "two\n"
    "\n"
    "From c@x Wed Jan  7 01:02:03 2015\n"
    "Subject: last, no final LF\n"
    "\n"
    "three";

static const char shift_no_final_lf[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: no final LF, nothing else to fix\n"
    "\n"
    "two";

static const char shift_header_only[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: header only\n";

struct shift_result {
	char *file;
	size_t len;
	int kind;
};

/* Open src read-write once (the metadata is written) with IMAPD_MBOX_SHIFT_BATCH=step (NULL:
 * unset); check the view the writer kept against a fresh parse. */
static void
shift_try(const char *src, const char *step, struct shift_result *res)
{
	struct tdir t;
	struct mbox *mb, *ro;
	struct mbox_error err;
	uint32_t i;

	tdir_make(&t);
	write_file(t.path, src, strlen(src));
	if (step != NULL)
		setenv("IMAPD_MBOX_SHIFT_BATCH", step, 1);
	else
		unsetenv("IMAPD_MBOX_SHIFT_BATCH");
	mb = open_rw(&t);
	unsetenv("IMAPD_MBOX_SHIFT_BATCH");
	assert_non_null(mb);
	res->kind = mb->rewrite_kind;
	check_fp_as_parsed(&t, mb);
	assert_int_equal(mbox_open(t.path, t.jdir, 0, &ro, &err), 0);
	assert_int_equal(mbox_count(ro), mbox_count(mb));
	for (i = 0; i < mbox_count(mb); i++) {
		char *a = body_of(mb, i), *b = body_of(ro, i);
		char *ha = visible_header(mb, i), *hb = visible_header(ro, i);

		assert_string_equal(a, b);
		assert_string_equal(ha, hb);
		assert_int_equal(mbox_msg_uid(mb, i), mbox_msg_uid(ro, i));
		assert_int_equal(mbox_msg_uid(mb, i), i + 1);
		assert_int_equal(mbox_msg_size(mb, i), mbox_msg_size(ro, i));
		assert_int_equal(mbox_msg_flags(mb, i) & ~MBOX_RECENT,
		    mbox_msg_flags(ro, i) & ~MBOX_RECENT);
		assert_int_equal(mbox_msg_keywords(mb, i), mbox_msg_keywords(ro, i));
		free(a);
		free(b);
		free(ha);
		free(hb);
	}
	/* a second writer session finds nothing to write: the metadata is all there */
	mbox_free(&ro);
	mbox_free(&mb);
	res->file = read_file(t.path, &res->len);
	tdir_clean(&t);
}

/* Appends to mailboxes whose last message had no final line end (one header-only): every
 * fingerprint in the writer's view stays as a parse of the result computes it. */
static void
test_append_after_unterminated_last(void **state)
{
	static const char *const srcs[] = { shift_header_only, shift_no_final_lf };
	struct tdir t;
	struct mbox *mb;
	struct mbox_append *ap;
	uint32_t first, n;
	size_t k;
	(void)state;

	for (k = 0; k < sizeof(srcs) / sizeof(srcs[0]); k++) {
		tdir_make(&t);
		write_file(t.path, srcs[k], strlen(srcs[k]));
		mb = NULL;
		{
			struct mbox_error err;

			/* read-only first: the file keeps its unterminated end until the append */
			assert_int_equal(mbox_open(t.path, t.jdir, 0, &mb, &err), 0);
			mbox_free(&mb);
		}
		mb = open_rw(&t);
		assert_non_null(mb);
		assert_int_equal(mbox_append_begin(mb, &ap), 0);
		append_one(ap, "Subject: a\r\n\r\nappended\r\n", 4096, 0);
		assert_int_equal(mbox_append_commit(&ap, &first, &n), 0);
		check_fp_as_parsed(&t, mb);
		mbox_free(&mb);
		tdir_clean(&t);
	}
}

static void
test_shift_rewrite_same_bytes(void **state)
{
	const char *const srcs[] = { shift_plain, shift_fixups, shift_no_final_lf,
	    shift_header_only };
	const char *const steps[] = { NULL, "1", "7", "64" };
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		struct shift_result copy, sh;

		shift_try(srcs[i], "-1", &copy);
		assert_int_equal(copy.kind, MBOX_REWRITE_COPY);
		for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			shift_try(srcs[i], steps[j], &sh);
			assert_int_equal(sh.kind, MBOX_REWRITE_SHIFT);
			assert_int_equal(sh.len, copy.len);
			assert_memory_equal(sh.file, copy.file, copy.len);
			free(sh.file);
		}
		/* the metadata went in: every message has its X-UID */
		assert_non_null(strstr(copy.file, "X-UID: 1\n"));
		assert_non_null(strstr(copy.file, "X-IMAPbase:"));
		free(copy.file);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_rw_open_persists),
		cmocka_unit_test(test_flags_in_place),
		cmocka_unit_test(test_first_message_flags_in_place),
		cmocka_unit_test(test_flags_tail_rewrite),
		cmocka_unit_test(test_many_keywords_rewrite),
		cmocka_unit_test(test_expunge),
		cmocka_unit_test(test_expunge_all_keeps_uids),
		cmocka_unit_test(test_expunge_collapse),
		cmocka_unit_test(test_shift_rewrite_same_bytes),
		cmocka_unit_test(test_append_after_unterminated_last),
		cmocka_unit_test(test_flags_many_in_place),
		cmocka_unit_test(test_flags_after_writes),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_append_to_missing),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_sync_external),
		cmocka_unit_test(test_sync_replaced_same_size),
		cmocka_unit_test(test_refresh_keeps_numbers),
		cmocka_unit_test(test_kept_copy_after_a_torn_record),
		cmocka_unit_test(test_kept_copies_make_room),
		cmocka_unit_test(test_readonly_never_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
