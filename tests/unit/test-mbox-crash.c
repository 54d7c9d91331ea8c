/*
 * test-mbox-crash.c: kill the writer before each of its write-class system calls in turn
 * (the IMAPD_MBOX_CRASH_AFTER hook), then check that the next open finds the mailbox whole:
 * every message that was not expunged, the change either done or not done, and mail an MDA
 * delivered after the crash kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>

#include "test-mbox-util.h"
#include "mbox/mbox-collapse.h"

#define NMSG 6
#define MAX_POINTS 500

static const char *const bodies[NMSG] = {
	"first body\nwith two lines\n",
	"second\n>From quoted\n",
	"third body, a bit longer than the others so that the sizes differ\n",
	"fourth\n",
	"fifth\n\n\nwith empty lines\n",
	"sixth and last\n",
};

/* Bodies of the collapse scenarios: several blocks each, sizes no multiple of a block, and
 * text that differs from message to message (as mail does).  In OP_BIG_RUN the last is
 * big enough that both runs before it are collapsed rather than the tail rewritten
 * (MBOX_COLLAPSE_STEP_COST). */
#define BIG_MAX (4 * MBOX_COLLAPSE_STEP_COST)

static void
big_body(int i, int huge, char *buf, size_t size)
{
	size_t n = 0, l, lines = huge ? 3 * MBOX_COLLAPSE_STEP_COST / 40 :
	    (size_t)(150 + 60 * i);

	buf[0] = '\0';
	for (l = 0; l < lines; l++) {
		int w = snprintf(buf + n, size - n, "m%d line %04zu %s\n", i, l,
		    l % 7 == 0 ? "" : "abcdefghijklmnopqrstuvwxyz");

		assert_true(w > 0 && (size_t)w < size - n);
		n += (size_t)w;
	}
}

static const char late[] = "From mda@x Fri Jan  9 01:02:03 2015\nSubject: late\n\nlate mail\n\n";

enum op { OP_EXPUNGE_FIRST, OP_EXPUNGE_SOME, OP_GROW, OP_APPEND, OP_FIRST_OPEN, OP_BIG_FIRST,
	OP_BIG_MIDDLE, OP_BIG_RUN };

/* IMAPD_MBOX_SHIFT_BATCH for the writer ("" for the default): small steps make the in-place
 * rewrite (mbox-shift.c) take many, each saving the bytes it overwrites */
static const char *shift_step = "";

/* the expected body of original message i */
static void
body_for(enum op op, int i, char *buf, size_t size)
{
	if (op >= OP_BIG_FIRST)
		big_body(i, op == OP_BIG_RUN && i == NMSG - 1, buf, size);
	else
		snprintf(buf, size, "%s", bodies[i]);
}

/* ls -A on the journal directory, but the disposable cache, kept copies and turnstile,
 * is empty */
static int
jdir_empty(const struct tdir *t)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd),
	    "test -z \"$(ls -A %s | grep -v '^\\.imapd-\\(cache\\|gone\\|lock\\|modseq\\)-')\"",
	    t->jdir);
	return system(cmd) == 0;
}

/* A pristine mailbox, then opened once read-write so the metadata is in the file. */
static void
prepare(struct tdir *t, enum op op)
{
	char *buf = malloc(2 * BIG_MAX), *p = buf, *b = malloc(BIG_MAX);
	struct mbox *mb;
	struct mbox_error err;
	int i;

	assert_non_null(buf);
	assert_non_null(b);
	for (i = 0; i < NMSG; i++) {
		body_for(op, i, b, BIG_MAX);
		p += sprintf(p, "From u%d@x Mon Jan  5 01:02:0%d 2015\nSubject: m%d\n\n%s\n", i,
		    i, i, b);
	}
	write_file(t->path, buf, (size_t)(p - buf));
	free(buf);
	free(b);
	if (op == OP_FIRST_OPEN)
		return;		/* pristine: the first read-write open writes the metadata */
	if (mbox_open(t->path, t->jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		fail_msg("prepare: %s", err.msg);
	mbox_free(&mb);
}

/* In the child: do the operation; exit 0 if it completed. */
static void
child(struct tdir *t, enum op op, long n)
{
	struct mbox *mb;
	struct mbox_error err;
	uint32_t *ex, first, cnt;
	size_t k;
	char num[32];
	int i;

	snprintf(num, sizeof(num), "%ld", n);
	setenv("IMAPD_MBOX_CRASH_AFTER", num, 1);
	if (*shift_step != '\0')
		setenv("IMAPD_MBOX_SHIFT_BATCH", shift_step, 1);
	if (mbox_open(t->path, t->jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		_exit(3);
	switch (op) {
	case OP_FIRST_OPEN:
		break;		/* the open did it */
	case OP_EXPUNGE_FIRST:
	case OP_BIG_FIRST:
		mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
		if (mbox_expunge(mb, NULL, 0, &ex, &k) < 0 || k != 1)
			_exit(4);
		break;
	case OP_EXPUNGE_SOME:
		mbox_msg_set_flags(mb, 1, MBOX_DELETED, 0);
		mbox_msg_set_flags(mb, 4, MBOX_DELETED | MBOX_SEEN, 0);
		if (mbox_expunge(mb, NULL, 0, &ex, &k) < 0 || k != 2)
			_exit(4);
		break;
	case OP_BIG_MIDDLE:
		mbox_msg_set_flags(mb, 2, MBOX_DELETED | MBOX_FLAGGED, 0);
		if (mbox_expunge(mb, NULL, 0, &ex, &k) < 0 || k != 1)
			_exit(4);
		break;
	case OP_BIG_RUN:
		/* a run of two, and the message after the second run is the last */
		mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
		mbox_msg_set_flags(mb, 1, MBOX_DELETED, 0);
		mbox_msg_set_flags(mb, 3, MBOX_DELETED, 0);
		mbox_msg_set_flags(mb, 4, MBOX_DELETED, 0);
		if (mbox_expunge(mb, NULL, 0, &ex, &k) < 0 || k != 4)
			_exit(4);
		break;
	case OP_GROW:
		/* enough keywords that the header must grow: a tail rewrite */
		for (i = 0; i < 30; i++) {
			char name[48];

			snprintf(name, sizeof(name), "a-rather-long-keyword-%d", i);
			(void)mbox_keyword_lookup(mb, name, strlen(name), 1);
		}
		mbox_msg_set_flags(mb, 2, MBOX_FLAGGED, (1ULL << 30) - 1);
		if (mbox_commit_flags(mb) < 0)
			_exit(4);
		break;
	case OP_APPEND: {
		struct mbox_append *ap;

		if (mbox_append_begin(mb, &ap) < 0 ||
		    mbox_append_msg_begin(ap, 1420419723, 0, 0, 0) < 0 ||
		    mbox_append_write(ap, (const unsigned char *)"Subject: app\n\nappended\n",
		    23) < 0 || mbox_append_msg_end(ap) < 0 ||
		    mbox_append_commit(&ap, &first, &cnt) < 0)
			_exit(4);
		break;
	}
	}
	mbox_free(&mb);
	_exit(0);
}

/* After a crash (and maybe a late delivery): open, and check. */
static void
check(struct tdir *t, enum op op, int with_late, long n)
{
	struct mbox *mb;
	struct mbox_error err;
	uint32_t i, k, c;
	int done, expect[NMSG + 2], ne = 0;
	char *want = malloc(BIG_MAX);

	assert_non_null(want);
	/* a reader first: it finishes the journal too, and sees the mailbox whole */
	if (mbox_open(t->path, t->jdir, 0, &mb, &err) < 0)
		fail_msg("point %ld: read-only reopen: %s", n, err.msg);
	if (!jdir_empty(t))
		fail_msg("point %ld: journal left by the reader", n);
	for (i = 0; i < mbox_count(mb); i++)
		if (mbox_msg_body_size(mb, i) == 0)
			fail_msg("point %ld: reader sees an empty message %u", n, i);
	mbox_free(&mb);
	if (mbox_open(t->path, t->jdir, MBOX_OPEN_RW, &mb, &err) < 0)
		fail_msg("point %ld: reopen: %s", n, err.msg);
	c = mbox_count(mb);
	switch (op) {
	case OP_EXPUNGE_FIRST:
	case OP_BIG_FIRST:
		done = c == NMSG - 1 + (uint32_t)with_late;
		for (i = done ? 1 : 0; i < NMSG; i++)
			expect[ne++] = (int)i;
		break;
	case OP_EXPUNGE_SOME:
		done = c == NMSG - 2 + (uint32_t)with_late;
		for (i = 0; i < NMSG; i++)
			if (!done || (i != 1 && i != 4))
				expect[ne++] = (int)i;
		break;
	case OP_BIG_MIDDLE:
		done = c == NMSG - 1 + (uint32_t)with_late;
		for (i = 0; i < NMSG; i++)
			if (!done || i != 2)
				expect[ne++] = (int)i;
		break;
	case OP_BIG_RUN:
		done = c == NMSG - 4 + (uint32_t)with_late;
		/* each run is its own step: after the later one, before the earlier one */
		if (c == NMSG - 2 + (uint32_t)with_late)
			for (i = 0; i < NMSG; i++) {
				if (i != 3 && i != 4)
					expect[ne++] = (int)i;
			}
		else
			for (i = 0; i < NMSG; i++)
				if (!done || (i != 0 && i != 1 && i != 3 && i != 4))
					expect[ne++] = (int)i;
		break;
	case OP_GROW:
		done = (mbox_msg_flags(mb, 2) & MBOX_FLAGGED) != 0;
		for (i = 0; i < NMSG; i++)
			expect[ne++] = (int)i;
		if (done && mbox_msg_keywords(mb, 2) != (1ULL << 30) - 1)
			fail_msg("point %ld: keywords half written", n);
		break;
	case OP_FIRST_OPEN:
		/* the same messages and UIDs whether the metadata got written or not */
		done = 0;
		for (i = 0; i < NMSG; i++)
			expect[ne++] = (int)i;
		break;
	default:
		done = c == NMSG + 1 + (uint32_t)with_late;
		for (i = 0; i < NMSG; i++)
			expect[ne++] = (int)i;
		break;
	}
	if (c != (uint32_t)ne + (uint32_t)with_late + (op == OP_APPEND && done))
		fail_msg("point %ld: %u messages, expected %d", n, c, ne + with_late);
	for (k = 0; k < (uint32_t)ne; k++) {
		char *b = body_of(mb, k);

		body_for(op, expect[k], want, BIG_MAX);
		if (strcmp(b, want) != 0)
			fail_msg("point %ld: message %u body %.60s", n, k, b);
		if (mbox_msg_uid(mb, k) != (uint32_t)expect[k] + 1)
			fail_msg("point %ld: message %u uid %u", n, k, mbox_msg_uid(mb, k));
		free(b);
	}
	if (op == OP_APPEND && done) {
		char *b = body_of(mb, (uint32_t)ne);

		assert_string_equal(b, "appended\n");
		free(b);
	}
	if (with_late) {
		char *b = body_of(mb, c - 1);

		if (strcmp(b, "late mail\n") != 0)
			fail_msg("point %ld: late mail lost: %s", n, b);
		free(b);
	}
	mbox_free(&mb);
	free(want);
	/* recovery leaves no journal behind */
	if (!jdir_empty(t))
		fail_msg("point %ld: journal left", n);
}

/*
 * A session that has the mailbox open when the writer is killed, and looks again: it must
 * not read the half-rewritten file (it finishes the journal first), keep its UIDVALIDITY,
 * and see what a fresh open sees: the same UIDs and bodies.
 */
static void
check_live(struct tdir *t, struct mbox *live, long n)
{
	struct mbox_sync_result r;
	struct mbox *fresh;
	struct mbox_error err;
	uint32_t i;

	if (mbox_sync(live, &r) < 0)
		fail_msg("point %ld: live session's sync: %s", n, mbox_error(live)->msg);
	if (r.uidvalidity_changed)
		fail_msg("point %ld: live session lost its UIDs", n);
	mbox_sync_result_clear(&r);
	if (mbox_open(t->path, t->jdir, 0, &fresh, &err) < 0)
		fail_msg("point %ld: reopen: %s", n, err.msg);
	if (mbox_count(fresh) != mbox_count(live))
		fail_msg("point %ld: live session has %u messages, the file %u", n,
		    mbox_count(live), mbox_count(fresh));
	assert_int_equal(mbox_read_begin(live), 0);
	for (i = 0; i < mbox_count(fresh); i++) {
		char *a = body_of(live, i), *b = body_of(fresh, i);

		if (mbox_msg_uid(live, i) != mbox_msg_uid(fresh, i) || strcmp(a, b) != 0)
			fail_msg("point %ld: live session's message %u differs", n, i);
		free(a);
		free(b);
	}
	mbox_read_end(live);
	mbox_free(&fresh);
}

static int live_session;

static void
run(enum op op, int with_late)
{
	struct tdir t;
	long n;
	int completed = 0;

	for (n = 1; n < MAX_POINTS && !completed; n++) {
		struct mbox *live = NULL;
		struct mbox_error err;
		pid_t pid;
		int st;

		tdir_make(&t);
		prepare(&t, op);
		if (live_session && op != OP_FIRST_OPEN &&
		    mbox_open(t.path, t.jdir, MBOX_OPEN_RW, &live, &err) < 0)
			fail_msg("live open: %s", err.msg);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child(&t, op, n);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 0)
			completed = 1;
		else
			assert_int_equal(WEXITSTATUS(st), 99);
		if (with_late)
			append_file(t.path, late);
		if (live != NULL) {
			check_live(&t, live, n);
			mbox_free(&live);
		}
		check(&t, op, with_late, n);
		tdir_clean(&t);
	}
	assert_true(completed);
	/* there were several points to crash at (an append has the fewest: before the mail,
	 * before the base patch, before the one fsync for both, and the lock's) */
	assert_true(n > (op == OP_APPEND ? 4 : 5));
}

static void
test_crash_expunge_first(void **state)
{
	(void)state;
	run(OP_EXPUNGE_FIRST, 0);
}

static void
test_crash_expunge_some(void **state)
{
	(void)state;
	run(OP_EXPUNGE_SOME, 0);
}

static void
test_crash_expunge_late_mail(void **state)
{
	(void)state;
	run(OP_EXPUNGE_SOME, 1);
}

/* The collapse path (where the filesystem has it, else the same through a rewrite). */
static void
test_crash_collapse_first(void **state)
{
	(void)state;
	run(OP_BIG_FIRST, 0);
}

static void
test_crash_collapse_first_late_mail(void **state)
{
	(void)state;
	run(OP_BIG_FIRST, 1);
}

static void
test_crash_collapse_middle(void **state)
{
	(void)state;
	run(OP_BIG_MIDDLE, 0);
}

static void
test_crash_collapse_middle_late_mail(void **state)
{
	(void)state;
	run(OP_BIG_MIDDLE, 1);
}

static void
test_crash_collapse_runs(void **state)
{
	(void)state;
	run(OP_BIG_RUN, 0);
}

static void
test_crash_collapse_runs_late_mail(void **state)
{
	(void)state;
	run(OP_BIG_RUN, 1);
}

static void
test_crash_grow(void **state)
{
	(void)state;
	run(OP_GROW, 0);
}

static void
test_crash_grow_late_mail(void **state)
{
	(void)state;
	run(OP_GROW, 1);
}

/* The in-place rewrite in small steps: growing headers, and the first read-write open of a
 * mailbox without metadata (every message gains X-UID and Status). */
static void
test_crash_grow_steps(void **state)
{
	(void)state;
	shift_step = "40";
	run(OP_GROW, 0);
	run(OP_GROW, 1);
	shift_step = "";
}

static void
test_crash_first_open(void **state)
{
	(void)state;
	run(OP_FIRST_OPEN, 0);
	run(OP_FIRST_OPEN, 1);
}

static void
test_crash_first_open_steps(void **state)
{
	(void)state;
	shift_step = "40";
	run(OP_FIRST_OPEN, 0);
	run(OP_FIRST_OPEN, 1);
	shift_step = "";
}

static void
test_crash_append(void **state)
{
	(void)state;
	run(OP_APPEND, 0);
}

/* The same with another session on the mailbox all the while (imapd's other sessions): its
 * next look must finish the journal, not read the half-done rewrite. */
static void
test_crash_with_a_live_session(void **state)
{
	(void)state;
	live_session = 1;
	run(OP_EXPUNGE_SOME, 0);
	run(OP_BIG_MIDDLE, 1);
	run(OP_BIG_RUN, 0);
	shift_step = "40";
	run(OP_GROW, 0);
	shift_step = "";
	run(OP_APPEND, 0);
	live_session = 0;
}

/*
 * Mod-sequences (mbox-modseq.c) after a writer killed at each point of a STORE that grows
 * a header, an expunge and an append, the record updates included: they never go back,
 * every message whose flags changed has one above the highest before, the expunged UIDs
 * are told as expunged since then, and the next change gets a higher one still.
 */
static void
run_modseq(enum op op)
{
	struct tdir t;
	long n;
	int completed = 0;

	for (n = 1; n < MAX_POINTS && !completed; n++) {
		struct mbox *mb;
		struct mbox_error err;
		uint64_t h0, h1, m0[NMSG + 2];
		unsigned f0[NMSG + 2];
		uint64_t k0[NMSG + 2];
		uint32_t i, *gone;
		size_t ngone, g;
		uint8_t mark[NMSG + 2] = { 1 };
		int all, st;
		pid_t pid;

		tdir_make(&t);
		prepare(&t, op);
		if (mbox_open(t.path, t.jdir, 0, &mb, &err) < 0)
			fail_msg("point %ld: open before: %s", n, err.msg);
		assert_true(mbox_has_modseq(mb));
		h0 = mbox_highest_modseq(mb);
		assert_int_equal(mbox_count(mb), NMSG);
		for (i = 0; i < NMSG; i++) {
			assert_int_equal(mbox_msg_uid(mb, i), i + 1);
			m0[i] = mbox_msg_modseq(mb, i);
			f0[i] = mbox_msg_flags(mb, i) & MBOX_FLAGS_STORED;
			k0[i] = mbox_msg_keywords(mb, i);
			assert_true(m0[i] > 0 && m0[i] <= h0);
		}
		mbox_free(&mb);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child(&t, op, n);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 0)
			completed = 1;
		else
			assert_int_equal(WEXITSTATUS(st), 99);
		if (mbox_open(t.path, t.jdir, MBOX_OPEN_RW, &mb, &err) < 0)
			fail_msg("point %ld: reopen: %s", n, err.msg);
		if (!mbox_has_modseq(mb))
			fail_msg("point %ld: no mod-sequences after the crash", n);
		h1 = mbox_highest_modseq(mb);
		if (h1 < h0)
			fail_msg("point %ld: HIGHESTMODSEQ went back", n);
		for (i = 0; i < mbox_count(mb); i++) {
			uint32_t uid = mbox_msg_uid(mb, i);
			uint64_t m = mbox_msg_modseq(mb, i);

			if (m > h1)
				fail_msg("point %ld: message %u above HIGHESTMODSEQ", n, uid);
			if (uid > NMSG) {
				if (m <= h0)
					fail_msg("point %ld: new message %u not above before", n, uid);
				continue;
			}
			if (m < m0[uid - 1])
				fail_msg("point %ld: message %u went back", n, uid);
			if (((mbox_msg_flags(mb, i) & MBOX_FLAGS_STORED) != f0[uid - 1] ||
			    mbox_msg_keywords(mb, i) != k0[uid - 1]) && m <= h0)
				fail_msg("point %ld: message %u changed, mod-sequence did not", n,
				    uid);
		}
		/* every UID the file no longer has is told as expunged since h0 */
		assert_int_equal(mbox_expunged_since(mb, h0, &gone, &ngone, &all), 0);
		for (i = 1; i <= NMSG && !all; i++) {
			int there = mbox_uid_index(mb, i) >= 0, told = 0;

			for (g = 0; g < ngone; g++)
				told |= gone[g] == i;
			if (!there && !told)
				fail_msg("point %ld: expunge of %u not told", n, i);
			if (there && told)
				fail_msg("point %ld: %u told as expunged", n, i);
		}
		free(gone);
		/* and the next change is above all of it */
		assert_int_equal(mbox_store_flags(mb, mark, 1, MBOX_STORE_ADD, MBOX_ANSWERED, 0),
		    0);
		if (mbox_msg_modseq(mb, 0) <= h1 || mbox_highest_modseq(mb) <= h1)
			fail_msg("point %ld: the next STORE is not above", n);
		mbox_free(&mb);
		tdir_clean(&t);
	}
	assert_true(completed);
	assert_true(n > 5);
}

static void
test_crash_modseq(void **state)
{
	(void)state;
	shift_step = "40";
	run_modseq(OP_GROW);
	shift_step = "";
	run_modseq(OP_EXPUNGE_SOME);
	run_modseq(OP_APPEND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_expunge_first),
		cmocka_unit_test(test_crash_expunge_some),
		cmocka_unit_test(test_crash_expunge_late_mail),
		cmocka_unit_test(test_crash_collapse_first),
		cmocka_unit_test(test_crash_collapse_first_late_mail),
		cmocka_unit_test(test_crash_collapse_middle),
		cmocka_unit_test(test_crash_collapse_middle_late_mail),
		cmocka_unit_test(test_crash_collapse_runs),
		cmocka_unit_test(test_crash_collapse_runs_late_mail),
		cmocka_unit_test(test_crash_grow),
		cmocka_unit_test(test_crash_grow_late_mail),
		cmocka_unit_test(test_crash_grow_steps),
		cmocka_unit_test(test_crash_first_open),
		cmocka_unit_test(test_crash_first_open_steps),
		cmocka_unit_test(test_crash_append),
		cmocka_unit_test(test_crash_with_a_live_session),
		cmocka_unit_test(test_crash_modseq),
	};

	unsetenv("IMAPD_MBOX_CRASH_AFTER");
	unsetenv("IMAPD_MBOX_SHIFT_BATCH");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
