/* test-mbox-parse.c: From_ lines, message boundaries, metadata headers, broken files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-mbox-util.h"

static struct mbox *
open_str(struct tdir *t, const char *data, unsigned flags)
{
	struct mbox *mb = NULL;
	struct mbox_error err;

	write_file(t->path, data, strlen(data));
	if (mbox_open(t->path, t->jdir, flags, &mb, &err) < 0)
		return NULL;
	return mb;
}

/* mbox_msg_date for a From_ line given alone */
static int
from_date(const char *line, time_t *t, int *tz)
{
	struct tdir td;
	char buf[512];
	struct mbox *mb;
	int ok;

	tdir_make(&td);
	snprintf(buf, sizeof(buf), "%s\nSubject: x\n\nbody\n", line);
	mb = open_str(&td, buf, 0);
	ok = mb != NULL && mbox_count(mb) == 1;
	if (ok)
		*t = mbox_msg_date(mb, 0, tz);
	mbox_free(&mb);
	tdir_clean(&td);
	return ok;
}

static void
test_from_variants(void **state)
{
	time_t t;
	int tz;
	(void)state;

	setenv("TZ", "UTC", 1);
	tzset();
	/* plain ctime */
	assert_true(from_date("From user@example.org Sat Nov 21 17:40:58 2026", &t, &tz));
	assert_int_equal(t, 1795282858);
	assert_int_equal(tz, 0);
	/* TAB after the sender, day padded */
	assert_true(from_date("From user@example.org\tMon Jan  5 01:02:03 2015", &t, &tz));
	assert_int_equal(t, 1420419723);
	/* no seconds */
	assert_true(from_date("From a Mon Jan  5 01:02 2015", &t, &tz));
	assert_int_equal(t, 1420419720);
	/* numeric zone after the year, and before it */
	assert_true(from_date("From a Mon Jan  5 01:02:03 2015 +0100", &t, &tz));
	assert_int_equal(t, 1420419723 - 3600);
	assert_int_equal(tz, 60);
	assert_true(from_date("From a Mon Jan  5 01:02:03 -0500 2015", &t, &tz));
	assert_int_equal(t, 1420419723 + 5 * 3600);
	assert_int_equal(tz, -300);
	/* zone names, "remote from" (UUCP) */
	assert_true(from_date("From a Mon Jan  5 01:02:03 PST 2015", &t, &tz));
	assert_int_equal(t, 1420419723 + 8 * 3600);
	assert_true(from_date("From a Mon Jan  5 01:02:03 MET DST 2015", &t, &tz));
	assert_true(from_date("From uucp Mon Jan  5 01:02:03 2015 remote from gw", &t, &tz));
	assert_int_equal(t, 1420419723);
	/* an empty sender (MAILER-DAEMON written as <>) and a sender with a space */
	assert_true(from_date("From  Mon Jan  5 01:02:03 2015", &t, &tz));
	assert_true(from_date("From \"a b\"@x Mon Jan  5 01:02:03 2015", &t, &tz));
	/* CRLF file */
	assert_true(from_date("From a Mon Jan  5 01:02:03 2015\r", &t, &tz));
	/* not From_ lines */
	assert_false(from_date("From a Mon Jan  5 2015", &t, &tz));
	assert_false(from_date("From here to there", &t, &tz));
	assert_false(from_date("From a Mon Foo  5 01:02:03 2015", &t, &tz));
	assert_false(from_date("From a Mon Jan 45 01:02:03 2015", &t, &tz));
	assert_false(from_date("From a Mon Jan  5 25:02:03 2015", &t, &tz));
	assert_false(from_date("From a Mon Jan  5 01:02:03", &t, &tz));
	assert_false(from_date("From: a Mon Jan  5 01:02:03 2015", &t, &tz));
}

static const char two[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "\n"
    "body one\n"
    ">From quoted stays\n"
    "From not a boundary (no blank line before)\n"
    "\n"
    "From But this is not a From_ line either\n"
    "\n"
    "From b@x Tue Jan  6 01:02:03 2015\n"
    "Subject: two\n"
    "\n"
    "body two\n"
    "\n";

static void
test_split(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	(void)state;

	tdir_make(&t);
	mb = open_str(&t, two, 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 2);
	b = body_of(mb, 0);
	assert_string_equal(b, "body one\n>From quoted stays\n"
	    "From not a boundary (no blank line before)\n\n"
	    "From But this is not a From_ line either\n");
	assert_int_equal(mbox_msg_body_size(mb, 0), crlf_size(b));
	free(b);
	b = body_of(mb, 1);
	/* the separating empty line at the end is not part of the message */
	assert_string_equal(b, "body two\n");
	free(b);
	b = visible_header(mb, 1);
	assert_string_equal(b, "Subject: two\n\n");
	assert_int_equal(mbox_msg_header_size(mb, 1), crlf_size(b));
	assert_int_equal(mbox_msg_size(mb, 1), crlf_size("Subject: two\n\nbody two\n"));
	free(b);
	/* read-only open of a mailbox without metadata: UIDs 1.., all \Recent */
	assert_int_equal(mbox_msg_uid(mb, 0), 1);
	assert_int_equal(mbox_msg_uid(mb, 1), 2);
	assert_int_equal(mbox_uidnext(mb), 3);
	assert_int_equal(mbox_recent_count(mb), 2);
	assert_true(mbox_msg_flags(mb, 0) & MBOX_RECENT);
	mbox_free(&mb);
	/* nothing was written */
	b = read_file(t.path, NULL);
	assert_string_equal(b, two);
	free(b);
	tdir_clean(&t);
}

/*
 * Boundaries at every offset modulo the scanner's 16-byte blocks, next to near misses
 * ("\nFrog", "\nFrom" at the very end, an LF-F pair across a block edge): every message is
 * found and every body is whole.
 */
static void
test_split_at_every_alignment(void **state)
{
	char buf[1024], body[64], *b;
	struct tdir t;
	struct mbox *mb;
	size_t pad, len;
	(void)state;

	for (pad = 0; pad < 40; pad++) {
		memset(body, 'x', pad);
		body[pad] = '\0';
		len = (size_t)snprintf(buf, sizeof(buf),
		    "From a Mon Jan  5 01:02:03 2015\nSubject: 1\n\n%s\nFrog\n\n"
		    "From b Mon Jan  5 01:02:03 2015\nSubject: 2\n\n%s\n\n"
		    "From c Mon Jan  5 01:02:03 2015\nSubject: 3\n\nlast %s\nFrom", body, body,
		    body);
		assert_true(len < sizeof(buf));
		tdir_make(&t);
		mb = open_str(&t, buf, 0);
		assert_non_null(mb);
		assert_int_equal(mbox_count(mb), 3);
		b = body_of(mb, 0);
		assert_int_equal(strlen(b), pad + 6);
		free(b);
		b = body_of(mb, 2);
		assert_int_equal(strlen(b), 5 + pad + 5);
		assert_memory_equal(b + strlen(b) - 5, "\nFrom", 5);
		free(b);
		mbox_free(&mb);
		tdir_clean(&t);
	}
}

static void
test_empty_and_missing(void **state)
{
	struct tdir t;
	struct mbox *mb = NULL;
	struct mbox_error err;
	(void)state;

	tdir_make(&t);
	/* missing: error unless allowed */
	assert_int_equal(mbox_open(t.path, t.jdir, 0, &mb, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(mbox_open(t.path, t.jdir, MBOX_OPEN_MISSING_OK, &mb, &err), 0);
	assert_int_equal(mbox_count(mb), 0);
	assert_int_equal(mbox_uidnext(mb), 1);
	mbox_free(&mb);
	/* empty file */
	mb = open_str(&t, "", MBOX_OPEN_RW);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 0);
	mbox_free(&mb);
	/* not an mbox: reported, not emptied */
	write_file(t.path, "Subject: hello\n\nbody\n", 21);
	assert_int_equal(mbox_open(t.path, t.jdir, MBOX_OPEN_RW, &mb, &err), -1);
	assert_int_equal(err.code, MBOX_ENOTMBOX);
	{
		char *b = read_file(t.path, NULL);

		assert_string_equal(b, "Subject: hello\n\nbody\n");
		free(b);
	}
	tdir_clean(&t);
}

static void
test_odd_endings(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	(void)state;

	tdir_make(&t);
	/* no trailing newline */
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\nSubject: s\n\nno newline", 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 1);
	b = body_of(mb, 0);
	assert_string_equal(b, "no newline");
	assert_int_equal(mbox_msg_body_size(mb, 0), 10);
	free(b);
	mbox_free(&mb);
	/* CR at the very end */
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\nSubject: s\n\nx\r", 0);
	assert_non_null(mb);
	b = body_of(mb, 0);
	assert_string_equal(b, "x\r");
	assert_int_equal(mbox_msg_body_size(mb, 0), 2);
	free(b);
	mbox_free(&mb);
	/* only a From_ line */
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\n", 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 1);
	assert_int_equal(mbox_msg_size(mb, 0), 0);
	mbox_free(&mb);
	/* From_ line without newline */
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015", 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 1);
	mbox_free(&mb);
	/* header without an empty line, then the next message */
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\nSubject: s\n\n"
	    "From b Mon Jan  5 01:02:03 2015\nSubject: t\n", 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 2);
	b = visible_header(mb, 0);
	assert_string_equal(b, "Subject: s\n");
	free(b);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_crlf_file(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	(void)state;

	tdir_make(&t);
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\r\nSubject: s\r\nStatus: RO\r\n\r\n"
	    "line\r\n\r\nFrom b Mon Jan  5 01:02:03 2015\r\nSubject: t\r\n\r\nx\r\n", 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 2);
	b = visible_header(mb, 0);
	assert_string_equal(b, "Subject: s\r\n\r\n");
	assert_int_equal(mbox_msg_header_size(mb, 0), strlen(b));
	free(b);
	b = body_of(mb, 0);
	assert_string_equal(b, "line\r\n");
	assert_int_equal(mbox_msg_body_size(mb, 0), 6);
	free(b);
	assert_true(mbox_msg_flags(mb, 0) & MBOX_SEEN);
	assert_false(mbox_msg_flags(mb, 0) & MBOX_RECENT);
	mbox_free(&mb);
	tdir_clean(&t);
}

/* A mailbox as UW-IMAP writes it: pseudo message, then X-UID/Status/X-Status/X-Keywords. */
static const char uw[] =
    "From MAILER-DAEMON Mon Jan  5 01:02:03 2015\n"
    "Date: Mon, 05 Jan 2015 01:02:03 +0000\n"
    "From: Mail System Internal Data <MAILER-DAEMON@host>\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "Message-ID: <1420419723@host>\n"
    "X-IMAP: 1420419723 0000000007 $Forwarded Work\n"
    "Status: RO\n"
    "\n"
    "This text is part of the internal format of your mail folder, and is not\n"
    "a real message.  It is created automatically by the mail system software.\n"
    "If deleted, important folder data will be lost, and it will be re-created\n"
    "with the data reset to initial values.\n"
    "\n"
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "Status: RO\n"
    "X-Status: AF\n"
    "X-Keywords: Work\n"
    "X-UID: 3\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015\n"
    "Subject: two\n"
    "Status: O\n"
    "X-Status: DT\n"
    "X-Keywords: $Forwarded Work\n"
    "X-UID: 7\n"
    "Content-Length: 4\n"
    "\n"
    "two\n"
    "\n";

static void
test_uw_pseudo(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	int w, f;
	(void)state;

	tdir_make(&t);
	mb = open_str(&t, uw, 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 2);
	assert_int_equal(mbox_uidvalidity(mb), 1420419723);
	assert_int_equal(mbox_uidnext(mb), 8);
	assert_int_equal(mbox_msg_uid(mb, 0), 3);
	assert_int_equal(mbox_msg_uid(mb, 1), 7);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_SEEN | MBOX_ANSWERED | MBOX_FLAGGED);
	assert_int_equal(mbox_msg_flags(mb, 1), MBOX_DELETED | MBOX_DRAFT);
	assert_int_equal(mbox_recent_count(mb), 0);
	w = mbox_keyword_lookup(mb, "work", 4, 0);
	f = mbox_keyword_lookup(mb, "$Forwarded", 10, 0);
	assert_true(w >= 0 && f >= 0);
	assert_int_equal(mbox_msg_keywords(mb, 0), 1ULL << w);
	assert_int_equal(mbox_msg_keywords(mb, 1), (1ULL << w) | (1ULL << f));
	b = visible_header(mb, 1);
	assert_string_equal(b, "Subject: two\n\n");
	assert_int_equal(mbox_msg_header_size(mb, 1), crlf_size(b));
	free(b);
	assert_int_equal(mbox_uid_index(mb, 7), 1);
	assert_int_equal(mbox_uid_index(mb, 4), -1);
	mbox_free(&mb);
	tdir_clean(&t);
}

/* Dovecot: X-IMAPbase in the first message, padding in X-Keywords. */
static const char dovecot[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "X-IMAPbase: 1420000000 0000000010 Junk\n"
    "Subject: one\n"
    "X-UID: 9\n"
    "Status: RO\n"
    "X-Keywords: Junk                                                 \n"
    "Content-Length: 4\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015\n"
    "Subject: two\n"
    "X-UID: 10\n"
    "Status: \n"
    "X-Keywords:                                                      \n"
    "\n"
    "two\n"
    "\n";

static void
test_dovecot_base(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	(void)state;

	tdir_make(&t);
	mb = open_str(&t, dovecot, 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 2);
	assert_int_equal(mbox_uidvalidity(mb), 1420000000);
	assert_int_equal(mbox_msg_uid(mb, 0), 9);
	assert_int_equal(mbox_msg_uid(mb, 1), 10);
	assert_int_equal(mbox_uidnext(mb), 11);
	assert_int_equal(mbox_msg_keywords(mb, 0), 1);
	assert_int_equal(mbox_msg_flags(mb, 1), MBOX_RECENT);
	b = visible_header(mb, 0);
	assert_string_equal(b, "Subject: one\n\n");
	free(b);
	mbox_free(&mb);
	tdir_clean(&t);
}

static void
test_forged(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *data, *p;
	size_t i;
	(void)state;

	tdir_make(&t);
	/* X-UID above the last UID, X-IMAPbase in a later message, out of order X-UID, a
	 * huge X-Keywords */
	data = malloc(200000);
	p = data;
	p += sprintf(p, "From a Mon Jan  5 01:02:03 2015\nX-IMAPbase: 100 0000000005\n"
	    "X-UID: 4\nStatus: RO\n\none\n\n"
	    "From b Mon Jan  5 01:02:03 2015\nX-UID: 4000000000\nX-IMAPbase: 1 99999\n"
	    "\ntwo\n\n"
	    "From c Mon Jan  5 01:02:03 2015\nX-UID: 2\n\nthree\n\n"
	    "From d Mon Jan  5 01:02:03 2015\nX-UID: 5\nX-Keywords:");
	for (i = 0; i < 10000; i++)
		p += sprintf(p, " kw%zu", i);
	p += sprintf(p, "\n\nfour\n");
	mb = open_str(&t, data, 0);
	assert_non_null(mb);
	assert_int_equal(mbox_count(mb), 4);
	assert_int_equal(mbox_uidvalidity(mb), 100);
	assert_int_equal(mbox_msg_uid(mb, 0), 4);
	/* the forged ones and every later one get new UIDs above the last (5) */
	assert_int_equal(mbox_msg_uid(mb, 1), 6);
	assert_int_equal(mbox_msg_uid(mb, 2), 7);
	assert_int_equal(mbox_msg_uid(mb, 3), 8);
	assert_int_equal(mbox_uidnext(mb), 9);
	assert_true(mbox_keyword_count(mb) <= MBOX_MAX_KEYWORDS);
	mbox_free(&mb);
	free(data);
	tdir_clean(&t);
}

static void
test_header_iterator(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char *b;
	(void)state;

	tdir_make(&t);
	mb = open_str(&t, "From a Mon Jan  5 01:02:03 2015\n"
	    "Status: RO\nSubject: s\n folded\nX-UID: 1\nX-Keywords: a\n b\nTo: x\n"
	    "content-length: 3\n\nabc\n", 0);
	assert_non_null(mb);
	b = visible_header(mb, 0);
	assert_string_equal(b, "Subject: s\n folded\nTo: x\n\n");
	assert_int_equal(mbox_msg_header_size(mb, 0), crlf_size(b));
	free(b);
	assert_true(mbox_header_is_hidden("x-imapbase", 10));
	assert_true(mbox_header_is_hidden("Content-Length", 14));
	assert_false(mbox_header_is_hidden("Subject", 7));
	mbox_free(&mb);
	tdir_clean(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_variants),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_at_every_alignment),
		cmocka_unit_test(test_empty_and_missing),
		cmocka_unit_test(test_odd_endings),
		cmocka_unit_test(test_crlf_file),
		cmocka_unit_test(test_uw_pseudo),
		cmocka_unit_test(test_dovecot_base),
		cmocka_unit_test(test_forged),
		cmocka_unit_test(test_header_iterator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
