/*
 * test-mbox-modseq.c: the mod-sequence records (mbox/mbox-modseq.c): every change gets a
 * higher value whoever made it (this view, another, a program that rewrote the file), they
 * persist across opens, and when the records are lost, replaced by an old copy, another
 * mailbox's or torn, no value goes back and no change is taken for none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>

#include "test-mbox-util.h"

static const char four[] =
	"From a@x Mon Jan  5 01:02:00 2015\nSubject: 0\n\nzero\n\n"
	"From a@x Mon Jan  5 01:02:01 2015\nSubject: 1\n\none\n\n"
	"From a@x Mon Jan  5 01:02:02 2015\nSubject: 2\n\ntwo\n\n"
	"From a@x Mon Jan  5 01:02:03 2015\nSubject: 3\n\nthree\n\n";

static struct mbox *
open_rw(struct tdir *t)
{
	struct mbox *mb;
	struct mbox_error err;

	if (mbox_open(t->path, t->jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		fail_msg("open: %s", err.msg);
	assert_true(mbox_has_modseq(mb));
	return mb;
}

/* The records' file in the journal directory. */
static void
modseq_file(const struct tdir *t, char *buf, size_t size)
{
	DIR *d = opendir(t->jdir);
	struct dirent *e;

	assert_non_null(d);
	buf[0] = '\0';
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, ".imapd-modseq-", 14) == 0 &&
		    strchr(e->d_name + 14, '.') == NULL)
			if (strlen(t->jdir) + strlen(e->d_name) + 2 <= size) {
				strcpy(buf, t->jdir);
				strcat(buf, "/");
				strcat(buf, e->d_name);
			}
	closedir(d);
	assert_true(buf[0] != '\0');
}

static void
store(struct mbox *mb, uint32_t i, int op, unsigned flags)
{
	uint8_t mark[8] = { 0 };

	mark[i] = 1;
	assert_int_equal(mbox_store_flags(mb, mark, mbox_count(mb), op, flags, 0), 0);
}

static void
test_every_change_is_higher(void **state)
{
	struct tdir t;
	struct mbox *a, *b;
	struct mbox_sync_result r;
	uint64_t h, m1;
	uint32_t i;

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	h = mbox_highest_modseq(a);
	for (i = 0; i < 4; i++)
		assert_true(mbox_msg_modseq(a, i) > 0 && mbox_msg_modseq(a, i) <= h);
	store(a, 1, MBOX_STORE_ADD, MBOX_SEEN);
	m1 = mbox_msg_modseq(a, 1);
	assert_true(m1 > h);
	assert_int_equal(mbox_highest_modseq(a), m1);
	assert_int_equal(mbox_msg_modseq(a, 0), mbox_msg_modseq(a, 2));
	/* no change (the flag is set already): no new value */
	store(a, 1, MBOX_STORE_ADD, MBOX_SEEN);
	assert_int_equal(mbox_msg_modseq(a, 1), m1);
	assert_int_equal(mbox_highest_modseq(a), m1);
	/* another view sees the same values, and its change is higher still */
	b = open_rw(&t);
	assert_int_equal(mbox_msg_modseq(b, 1), m1);
	assert_int_equal(mbox_highest_modseq(b), m1);
	store(b, 2, MBOX_STORE_ADD, MBOX_FLAGGED);
	assert_true(mbox_msg_modseq(b, 2) > m1);
	/* ...and the first view learns it, with the same value, at its next sync */
	assert_int_equal(mbox_sync(a, &r), 0);
	assert_int_equal(r.n_changed, 1);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_msg_modseq(a, 2), mbox_msg_modseq(b, 2));
	assert_int_equal(mbox_highest_modseq(a), mbox_highest_modseq(b));
	mbox_free(&a);
	mbox_free(&b);
	tdir_clean(&t);
}

static void
test_change_by_another_program(void **state)
{
	struct tdir t;
	struct mbox *a;
	struct mbox_sync_result r;
	uint64_t h;
	size_t n;
	char *data, *p;

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	h = mbox_highest_modseq(a);
	/* a mail reader marks message 2 read (rewriting its Status line in place) */
	data = read_file(t.path, &n);
	p = strstr(data, "Subject: 2\n");
	assert_non_null(p);
	p = strstr(p, "Status: O");
	assert_non_null(p);
	memcpy(p, "Status: R", 9);
	write_file(t.path, data, n);
	free(data);
	assert_int_equal(mbox_sync(a, &r), 0);
	mbox_sync_result_clear(&r);
	assert_true(mbox_msg_flags(a, 2) & MBOX_SEEN);
	assert_true(mbox_msg_modseq(a, 2) > h);
	assert_true(mbox_msg_modseq(a, 1) <= h);
	assert_int_equal(mbox_highest_modseq(a), mbox_msg_modseq(a, 2));
	/* new mail gets one above everything, and an expunge by the other program is told */
	h = mbox_highest_modseq(a);
	append_file(t.path, "From b@x Mon Jan  5 01:02:09 2015\nSubject: new\n\nnew\n\n");
	assert_int_equal(mbox_sync(a, &r), 0);
	mbox_sync_result_clear(&r);
	assert_int_equal(mbox_count(a), 5);
	assert_true(mbox_msg_modseq(a, 4) > h);
	mbox_free(&a);
	tdir_clean(&t);
}

static void
test_lost_records(void **state)
{
	struct tdir t;
	struct mbox *a;
	uint64_t h, held;
	uint32_t *gone, i;
	size_t ngone;
	int all;
	char path[600];

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	store(a, 3, MBOX_STORE_ADD, MBOX_DELETED);
	held = mbox_highest_modseq(a);
	assert_int_equal(mbox_expunge(a, NULL, 0, &gone, &ngone), 0);
	assert_int_equal(ngone, 1);
	free(gone);
	assert_int_equal(mbox_expunged_since(a, held, &gone, &ngone, &all), 0);
	assert_int_equal(all, 0);
	assert_int_equal(ngone, 1);
	assert_int_equal(gone[0], 4);
	free(gone);
	h = mbox_highest_modseq(a);
	mbox_free(&a);
	/* ~/.imapd lost: everything is newer than anything a client holds, and the
	 * expunges before cannot be told one by one: "all" */
	modseq_file(&t, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	a = open_rw(&t);
	assert_true(mbox_highest_modseq(a) > h);
	for (i = 0; i < mbox_count(a); i++)
		assert_true(mbox_msg_modseq(a, i) > h);
	assert_int_equal(mbox_expunged_since(a, h, &gone, &ngone, &all), 0);
	assert_int_equal(all, 1);
	free(gone);
	mbox_free(&a);
	tdir_clean(&t);
}

static void
test_old_copy_of_the_records(void **state)
{
	struct tdir t;
	struct mbox *a, *b;
	uint64_t m;
	size_t n;
	char path[600], *old;

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	modseq_file(&t, path, sizeof(path));
	old = read_file(path, &n);
	store(a, 0, MBOX_STORE_ADD, MBOX_ANSWERED);
	store(a, 0, MBOX_STORE_REMOVE, MBOX_ANSWERED);
	m = mbox_msg_modseq(a, 0);
	/* a backup from before both changes is put back: message 0 is as the backup says,
	 * but the session that saw m never sees less, and the next change is above m */
	write_file(path, old, n);
	free(old);
	store(a, 1, MBOX_STORE_ADD, MBOX_SEEN);
	assert_true(mbox_msg_modseq(a, 0) >= m);
	assert_true(mbox_msg_modseq(a, 1) > m);
	b = open_rw(&t);
	assert_true(mbox_highest_modseq(b) >= mbox_msg_modseq(a, 1));
	assert_true(mbox_msg_modseq(b, 0) >= m);
	mbox_free(&a);
	mbox_free(&b);
	tdir_clean(&t);
}

static void
test_bad_records(void **state)
{
	struct tdir t;
	struct mbox *a;
	uint64_t h;
	size_t n;
	char path[600], *data;

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	h = mbox_highest_modseq(a);
	mbox_free(&a);
	modseq_file(&t, path, sizeof(path));
	/* a torn last record: cut off; that message counts as new */
	data = read_file(path, &n);
	write_file(path, data, n - 5);
	a = open_rw(&t);
	assert_true(mbox_msg_modseq(a, 3) > h);
	assert_true(mbox_msg_modseq(a, 2) <= h);
	mbox_free(&a);
	/* garbage: started again, every value above the old ones */
	memset(data + 40, 0xff, n - 40);
	write_file(path, data, n);
	free(data);
	a = open_rw(&t);
	assert_true(mbox_msg_modseq(a, 0) > h);
	mbox_free(&a);
	/* another mailbox's (another UIDVALIDITY): started again */
	h = 0;
	a = open_rw(&t);
	h = mbox_highest_modseq(a);
	mbox_free(&a);
	data = read_file(t.path, &n);
	{
		char *p = strstr(data, "X-IMAPbase: ");

		assert_non_null(p);
		/* another UIDVALIDITY, same length: the last of its ten digits */
		assert_true(p[21] >= '0' && p[21] <= '9' && p[22] == ' ');
		p[21] = p[21] == '9' ? '8' : (char)(p[21] + 1);
	}
	write_file(t.path, data, n);
	free(data);
	a = open_rw(&t);
	assert_true(mbox_msg_modseq(a, 0) > h);
	assert_true(mbox_highest_modseq(a) > h);
	mbox_free(&a);
	tdir_clean(&t);
}

static void
test_unchangedsince(void **state)
{
	struct tdir t;
	struct mbox *a, *b;
	uint8_t mark[4] = { 1, 1, 0, 0 }, mod[4] = { 0 };
	uint64_t h;

	(void)state;
	tdir_make(&t);
	write_file(t.path, four, strlen(four));
	a = open_rw(&t);
	b = open_rw(&t);
	h = mbox_highest_modseq(a);
	store(b, 1, MBOX_STORE_ADD, MBOX_FLAGGED);	/* a has not seen it */
	assert_int_equal(mbox_store_flags_cond(a, mark, 4, MBOX_STORE_ADD, MBOX_SEEN, 0, h,
	    mod), 0);
	assert_int_equal(mod[0], 0);
	assert_int_equal(mod[1], 1);
	assert_true(mbox_msg_flags(a, 0) & MBOX_SEEN);
	assert_false(mbox_msg_flags(a, 1) & MBOX_SEEN);
	assert_true(mbox_msg_flags(a, 1) & MBOX_FLAGGED);	/* read under the lock */
	memset(mod, 0, sizeof(mod));
	assert_int_equal(mbox_store_flags_cond(a, mark, 4, MBOX_STORE_ADD, MBOX_DRAFT, 0, 0,
	    mod), 0);
	assert_true(mod[0] && mod[1]);	/* 0 always fails */
	mbox_free(&a);
	mbox_free(&b);
	tdir_clean(&t);
}

/* A keyword new to the mailbox whose X-IMAPbase another program wrote with no room: the
 * tail is rewritten, and the STORE still gets a new mod-sequence (found by tests/diff). */
static void
test_new_keyword_grows_the_base(void **state)
{
	static const char tight[] =
	    "From a@x Mon Jan  5 01:02:00 2015\nX-IMAPbase: 1420419720 0000000002\n"
	    "X-UID: 1\nStatus: RO\nSubject: 0\n\nzero\n\n"
	    "From a@x Mon Jan  5 01:02:01 2015\nX-UID: 2\nStatus: O\nSubject: 1\n\none\n\n";
	struct tdir t;
	struct mbox *a;
	uint8_t mark[2] = { 1, 0 };
	uint64_t h;
	int k;

	(void)state;
	tdir_make(&t);
	write_file(t.path, tight, strlen(tight));
	a = open_rw(&t);
	h = mbox_highest_modseq(a);
	k = mbox_keyword_lookup(a, "$T", 2, 1);
	assert_true(k >= 0);
	assert_int_equal(mbox_store_flags(a, mark, 2, MBOX_STORE_ADD, 0, 1ULL << k), 0);
	assert_true(mbox_msg_modseq(a, 0) > h);
	assert_int_equal(mbox_highest_modseq(a), mbox_msg_modseq(a, 0));
	assert_true(mbox_msg_modseq(a, 1) <= h);
	mbox_free(&a);
	tdir_clean(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_change_is_higher),
		cmocka_unit_test(test_change_by_another_program),
		cmocka_unit_test(test_lost_records),
		cmocka_unit_test(test_old_copy_of_the_records),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_unchangedsince),
		cmocka_unit_test(test_new_keyword_grows_the_base),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
