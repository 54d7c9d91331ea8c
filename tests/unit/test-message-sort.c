/*
 * test-message-sort.c: RFC 5256 base subjects, the RFC 5051 casemap collation, Message-ID
 * normalization, a message's sort keys, and both THREAD algorithms on hand-made message sets
 * with their expected trees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mbox/decode.h"
#include "mbox/message-sort.h"
#include "mbox/message-thread.h"

static char *
base(const char *raw, bool *reply)
{
	struct dbuf d;
	bool octet;

	dbuf_init(&d, SIZE_MAX);
	sort_base_subject(raw, strlen(raw), &d, reply, &octet);
	dbuf_add(&d, "", 0);
	return d.data;
}

static void
check_base(const char *raw, const char *want, bool want_reply)
{
	bool reply = !want_reply;
	char *got = base(raw, &reply);

	if (strcmp(got, want) != 0 || reply != want_reply)
		fail_msg("base subject of \"%s\": got \"%s\" (reply %d), want \"%s\" (reply %d)",
			 raw, got, reply, want, want_reply);
	free(got);
}

static void
test_base_subject(void **state)
{
	(void)state;
	check_base("Hello", "Hello", false);
	check_base("Re: Hello", "Hello", true);
	check_base("RE:Hello", "Hello", true);
	check_base("re: re: Re:  Hello  ", "Hello", true);
	check_base("Fwd: [list] Re: Re: hello", "hello", true);
	check_base("Fw: x", "x", true);
	check_base("FWD : x", "x", true);
	check_base("Re[2]: x", "x", true);
	check_base("Re [x]: y", "y", true);
	/* not a subj-refwd: "re" must be followed by WSP, a blob or the colon */
	check_base("Ref: x", "Ref: x", false);
	check_base("Regarding x", "Regarding x", false);
	/* blobs: removed when something is left after them (step 4), repeatedly */
	check_base("[list] topic", "topic", false);
	check_base("[a][b] topic", "topic", false);
	check_base("[a] [b] Re: topic", "topic", true);
	check_base("[blob]", "[blob]", false);
	check_base("[a] [blob]", "[blob]", false);
	/* a bracket inside: not a subj-blob (BLOBCHAR excludes [ and ]) */
	check_base("[nested [blob]] x", "[nested [blob]] x", false);
	check_base("[nested [blob]] Re: x", "[nested [blob]] Re: x", false);
	/* trailers (step 2) */
	check_base("hello (fwd)", "hello", true);
	check_base("hello (fwd) (FWD)  ", "hello", true);
	check_base("hello(fwd)", "hello", true);
	/* [fwd: ...] (step 6), then again from step 2 */
	check_base("[fwd: hello]", "hello", true);
	check_base("Re: [Fwd: Re: hello (fwd)]", "hello", true);
	check_base("[fwd: hello] x", "x", false);
	/* white space: tabs and runs to one space, ends trimmed */
	check_base("a\t\t b   c", "a b c", false);
	check_base("a\r\n\tb", "a b", false);
	/* empty */
	check_base("", "", false);
	check_base("   ", "", false);
	check_base("Re:", "", true);
	check_base("Re: Fwd: ", "", true);
	/* encoded words decoded first, split across a fold, adjacent ones joined */
	check_base("=?utf-8?q?Gr=C3=BC?=\r\n =?utf-8?q?=C3=9Fe?=", "Gr\xc3\xbc\xc3\x9f" "e", false);
	check_base("Re: =?utf-8?q?Re=3A_x?=", "x", true);
	check_base("=?iso-8859-1?q?Fwd=3A_caf=E9?=", "caf\xc3\xa9", true);
	/* a charset that cannot be converted: its bytes as the Q encoding gives them */
	check_base("Re: =?x-unknown?q?Re=3A_caf=E9?=", "caf\xe9", true);
}

/* RFC 5051 2 (1)(b): a subject or display name with an encoded word in an unknown charset
 * is compared unchanged, with i;octet: no titlecase, no guessed conversion. */
static void
test_keys_unknown_charset(void **state)
{
	struct sort_keys_buf buf;
	struct sort_keys k;
	bool reply, octet = true;
	struct dbuf d;
	const char *h =
		"From: =?x-unknown?q?=E9mile?= <emile@e.example>\n"
		"To: =?utf-8?q?=C3=A9mile?= <emile@e.example>\n"
		"Subject: =?x-unknown?Q?kiwi_xyz?=\n\n";

	(void)state;
	sort_keys_buf_init(&buf);
	sort_keys_extract((const unsigned char *)h, strlen(h), NULL, NULL, &buf, &k);
	assert_int_equal(k.slen[SORT_S_SUBJECT], 8);
	assert_memory_equal(k.s[SORT_S_SUBJECT], "kiwi xyz", 8);
	assert_int_equal(k.slen[SORT_S_DISPLAYFROM], 5);
	assert_memory_equal(k.s[SORT_S_DISPLAYFROM], "\xe9mile", 5);
	/* known charsets are still prepared */
	assert_int_equal(k.slen[SORT_S_DISPLAYTO], 7);
	assert_memory_equal(k.s[SORT_S_DISPLAYTO], "E\xcc\x81MILE", 7);
	h = "Subject: Re: =?utf-8?Q?kiwi_xyz?=\n\n";
	sort_keys_extract((const unsigned char *)h, strlen(h), NULL, NULL, &buf, &k);
	assert_int_equal(k.slen[SORT_S_SUBJECT], 8);
	assert_memory_equal(k.s[SORT_S_SUBJECT], "KIWI XYZ", 8);
	sort_keys_buf_free(&buf);

	dbuf_init(&d, SIZE_MAX);
	sort_base_subject("=?utf-8?q?a?= b", 15, &d, &reply, &octet);
	assert_false(octet);
	dbuf_reset(&d);
	sort_base_subject("=?x-unknown?q?a?= b", 19, &d, &reply, &octet);
	assert_true(octet);
	dbuf_free(&d);
}

static char *
cmap(const char *s, size_t len)
{
	struct dbuf d;

	dbuf_init(&d, SIZE_MAX);
	sort_casemap(s, len, &d);
	dbuf_add(&d, "", 0);
	return d.data;
}

static void
check_cmap(const char *in, const char *want)
{
	char *got = cmap(in, strlen(in));

	if (strcmp(got, want) != 0)
		fail_msg("casemap of \"%s\": got \"%s\", want \"%s\"", in, got, want);
	free(got);
}

static void
test_casemap(void **state)
{
	char *a, *b;

	(void)state;
	check_cmap("abc XYZ 09_", "ABC XYZ 09_");
	/* precomposed and decomposed e-acute both become E + combining acute */
	check_cmap("R\xc3\xa9union", "RE\xcc\x81UNION");
	check_cmap("Re\xcc\x81union", "RE\xcc\x81UNION");
	check_cmap("\xc3\x89", "E\xcc\x81");
	/* RFC 5051 2's example: U+01C4 and U+01C6 titlecase to U+01C5, D z caron */
	check_cmap("\xc7\x84", "Dz\xcc\x8c");
	check_cmap("\xc7\x86", "Dz\xcc\x8c");
	/* no simple titlecase for sharp s: it stays */
	check_cmap("stra\xc3\x9f" "e", "STRA\xc3\x9f" "E");
	/* Greek and Cyrillic */
	check_cmap("\xce\xb1\xcf\x82", "\xce\x91\xce\xa3");
	check_cmap("\xd0\xb6", "\xd0\x96");
	/* compatibility decomposition */
	check_cmap("\xef\xbd\x81", "A");
	/* the fi ligature has no simple titlecase: its decomposition stays lower case */
	check_cmap("\xef\xac\x81", "fi");
	/* Hangul by arithmetic: U+D55C is U+1112 U+1161 U+11AB */
	check_cmap("\xed\x95\x9c", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
	check_cmap("\xea\xb0\x80", "\xe1\x84\x80\xe1\x85\xa1");
	/* not UTF-8: the octets as they are (RFC 5051 2 (1)(b)), not even ASCII mapped */
	check_cmap("ab\xff", "ab\xff");
	check_cmap("ab\xc0\xaf", "ab\xc0\xaf");	/* overlong */
	check_cmap("ab\xed\xa0\x80", "ab\xed\xa0\x80");	/* surrogate */
	/* titlecase orders '_' after letters, as octets of upper case do */
	a = cmap("_x", 2);
	b = cmap("ax", 2);
	assert_true(strcmp(a, b) > 0);
	free(a);
	free(b);
	/* a long string crosses the internal buffer */
	{
		char in[2000];
		size_t i;

		for (i = 0; i < 999; i++) {
			in[2 * i] = '\xc3';
			in[2 * i + 1] = '\xa9';
		}
		in[1998] = '\0';
		a = cmap(in, 1998);
		assert_int_equal(strlen(a), 999 * 3);
		for (i = 0; i < 999; i++)
			assert_memory_equal(a + 3 * i, "E\xcc\x81", 3);
		free(a);
	}
}

/* The normalized IDs in a field, joined by spaces. */
static char *
ids(const char *v)
{
	struct dbuf d, all;
	size_t pos = 0;

	dbuf_init(&d, SIZE_MAX);
	dbuf_init(&all, SIZE_MAX);
	while (sort_next_msgid(v, strlen(v), &pos, &d)) {
		if (all.len > 0)
			dbuf_add(&all, " ", 1);
		dbuf_add(&all, d.data, d.len);
	}
	dbuf_add(&all, "", 0);
	dbuf_free(&d);
	return all.data;
}

static void
check_ids(const char *v, const char *want)
{
	char *got = ids(v);

	if (strcmp(got, want) != 0)
		fail_msg("IDs of \"%s\": got \"%s\", want \"%s\"", v, got, want);
	free(got);
}

static void
test_msgid(void **state)
{
	(void)state;
	/* RFC 5256 REFERENCES: quoting does not make another ID */
	check_ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>", "01KF8JCEOCBS0045PS@xxx.yyy.com");
	check_ids(" <01KF8JCEOCBS0045PS@xxx.yyy.com> ", "01KF8JCEOCBS0045PS@xxx.yyy.com");
	check_ids("<\"a\\\"b\"@c>", "a\"b@c");
	check_ids("(comment <x@y>) <a@b>\r\n\t<c@d>", "a@b c@d");
	check_ids("<a@b><c@d>", "a@b c@d");
	check_ids("<a @ b>", "a@b");
	/* not valid: no @, an empty side, not closed */
	check_ids("<no-at>", "");
	check_ids("<@b> <a@>", "");
	check_ids("<a@b", "");
	check_ids("<a@b <c@d>", "c@d");
	/* In-Reply-To as mail programs write it */
	check_ids("\"John's message of Monday\" <a@b> (John)", "a@b");
	/* case matters (RFC 5256: Message ID comparisons are case-sensitive) */
	assert_true(sort_msgid_hash("a@b", 3) != sort_msgid_hash("A@b", 3));
	assert_true(sort_msgid_hash("", 0) != 0);
}

static bool
hide_status(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return len == 6 && strncasecmp(name, "status", 6) == 0;
}

static void
test_keys(void **state)
{
	const char *h =
		"Status: RO\n"
		"From: =?utf-8?q?=C3=89mile?= <emile@e.example>, other@x\n"
		"To: undisclosed-recipients:;\n"
		"Subject: Re: [list]  Hello\n"
		"Subject: second subject ignored\n"
		"Date: Mon, 1 Jan 2024 10:00:00 -0800\n"
		"Message-ID: <m1@x>\n"
		"In-Reply-To: <irt@x>\n"
		"References: <r1@x>\n <r2@x>\n"
		"\n"
		"Subject: in the body\n";
	struct sort_keys_buf buf;
	struct sort_keys k;
	char id[32];
	int i;

	(void)state;
	sort_keys_buf_init(&buf);
	sort_keys_extract((const unsigned char *)h, strlen(h), hide_status, NULL, &buf, &k);
	assert_true(k.flags & SORT_K_DATE);
	assert_int_equal(k.sent, 1704132000);	/* 2024-01-01 18:00 UTC */
	assert_true(k.flags & SORT_K_REPLY);
	assert_true(k.flags & SORT_K_MSGID);
	assert_true(k.msgid == sort_msgid_hash("m1@x", 4));
	assert_int_equal(k.slen[SORT_S_SUBJECT], 5);
	assert_memory_equal(k.s[SORT_S_SUBJECT], "HELLO", 5);
	assert_int_equal(k.slen[SORT_S_FROM], 5);
	assert_memory_equal(k.s[SORT_S_FROM], "EMILE", 5);
	assert_int_equal(k.slen[SORT_S_DISPLAYFROM], 7);
	assert_memory_equal(k.s[SORT_S_DISPLAYFROM], "E\xcc\x81MILE", 7);
	/* a group first: its name is the addr-mailbox, and the DISPLAY value (RFC 5957 3) */
	assert_int_equal(k.slen[SORT_S_TO], 22);
	assert_memory_equal(k.s[SORT_S_TO], "UNDISCLOSED-RECIPIENTS", 22);
	assert_int_equal(k.slen[SORT_S_CC], 0);
	/* References win over In-Reply-To, oldest first */
	assert_int_equal(k.nrefs, 2);
	assert_true(k.refs[0] == sort_msgid_hash("r1@x", 4));
	assert_true(k.refs[1] == sort_msgid_hash("r2@x", 4));

	/* no Date, no Subject, In-Reply-To only; an address without a name displays as
	 * mailbox@host */
	h = "From: bob@b.example\nIn-Reply-To: <irt@x> (x)\nDate: garbage\n\n";
	sort_keys_extract((const unsigned char *)h, strlen(h), NULL, NULL, &buf, &k);
	assert_false(k.flags & SORT_K_DATE);
	assert_false(k.flags & (SORT_K_REPLY | SORT_K_MSGID));
	assert_int_equal(k.slen[SORT_S_SUBJECT], 0);
	assert_int_equal(k.slen[SORT_S_DISPLAYFROM], 13);
	assert_memory_equal(k.s[SORT_S_DISPLAYFROM], "BOB@B.EXAMPLE", 13);
	assert_int_equal(k.nrefs, 1);
	assert_true(k.refs[0] == sort_msgid_hash("irt@x", 5));

	/* more references than are kept: the first and the last ones */
	{
		struct dbuf r;

		dbuf_init(&r, SIZE_MAX);
		dbuf_add(&r, "References:", 11);
		for (i = 0; i < SORT_MAX_REFS + 10; i++) {
			snprintf(id, sizeof(id), " <%d@x>", i);
			dbuf_add(&r, id, strlen(id));
		}
		dbuf_add(&r, "\n\n", 2);
		sort_keys_extract((const unsigned char *)r.data, r.len, NULL, NULL, &buf, &k);
		assert_int_equal(k.nrefs, SORT_MAX_REFS);
		assert_true(k.refs[0] == sort_msgid_hash("0@x", 3));
		snprintf(id, sizeof(id), "%d@x", 11);
		assert_true(k.refs[1] == sort_msgid_hash(id, strlen(id)));
		snprintf(id, sizeof(id), "%d@x", SORT_MAX_REFS + 9);
		assert_true(k.refs[SORT_MAX_REFS - 1] == sort_msgid_hash(id, strlen(id)));
		dbuf_free(&r);
	}
	/* a very long subject is cut at SORT_KEY_MAX */
	{
		struct dbuf r;

		dbuf_init(&r, SIZE_MAX);
		dbuf_add(&r, "Subject: ", 9);
		for (i = 0; i < SORT_KEY_MAX + 100; i++)
			dbuf_add(&r, "a", 1);
		dbuf_add(&r, "\n\n", 2);
		sort_keys_extract((const unsigned char *)r.data, r.len, NULL, NULL, &buf, &k);
		assert_int_equal(k.slen[SORT_S_SUBJECT], SORT_KEY_MAX);
		dbuf_free(&r);
	}
	sort_keys_buf_free(&buf);
}

/* ---- threads ---- */

struct tmsg {
	int64_t sent;
	const char *id;		/* NULL: none */
	const char *refs;	/* References value, or NULL */
	const char *subject;
};

static char *
thread(enum thread_alg alg, const struct tmsg *t, size_t n)
{
	struct thread_msg *m = calloc(n, sizeof(*m));
	struct sort_keys_buf *kb = calloc(n, sizeof(*kb));
	struct dbuf out;
	size_t i;

	for (i = 0; i < n; i++) {
		char hdr[4096];
		struct sort_keys k;

		snprintf(hdr, sizeof(hdr), "%s%s%s%s%s%s%s\n",
			 t[i].id ? "Message-ID: " : "", t[i].id ? t[i].id : "",
			 t[i].id ? "\n" : "", t[i].refs ? "References: " : "",
			 t[i].refs ? t[i].refs : "", t[i].refs ? "\n" : "",
			 t[i].subject ? "" : "");
		if (t[i].subject != NULL) {
			size_t l = strlen(hdr) - 1;

			snprintf(hdr + l, sizeof(hdr) - l, "Subject: %s\n\n", t[i].subject);
		}
		sort_keys_buf_init(&kb[i]);
		sort_keys_extract((const unsigned char *)hdr, strlen(hdr), NULL, NULL, &kb[i], &k);
		m[i].id = (uint32_t)i + 1;
		m[i].sent = t[i].sent;
		m[i].msgid = (k.flags & SORT_K_MSGID) ? k.msgid : 0;
		m[i].refs = k.refs;
		m[i].nrefs = k.nrefs;
		m[i].subj = k.s[SORT_S_SUBJECT];
		m[i].subj_len = k.slen[SORT_S_SUBJECT];
		m[i].reply = (k.flags & SORT_K_REPLY) != 0;
	}
	dbuf_init(&out, SIZE_MAX);
	thread_build(alg, m, n, &out);
	dbuf_add(&out, "", 0);
	for (i = 0; i < n; i++)
		sort_keys_buf_free(&kb[i]);
	free(kb);
	free(m);
	return out.data;
}

static void
check_thread(enum thread_alg alg, const struct tmsg *t, size_t n, const char *want)
{
	char *got = thread(alg, t, n);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", alg == THREAD_REFERENCES ? "REFERENCES" :
			 "ORDEREDSUBJECT", got, want);
	free(got);
}

#define N(a)	(sizeof(a) / sizeof((a)[0]))
#define REFS	THREAD_REFERENCES

static void
test_thread_references(void **state)
{
	(void)state;
	{	/* a chain; replies sorted by date under their parent */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "one" },
			{ 20, "<b@x>", "<a@x>", "two" },
			{ 30, "<c@x>", "<a@x> <b@x>", "three" },
		};
		check_thread(REFS, t, N(t), "(1 2 3)");
	}
	{	/* two replies to one message: a split, children by sent date */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "one" },
			{ 30, "<b@x>", "<a@x>", "two" },
			{ 20, "<c@x>", "<a@x>", "three" },
			{ 40, "<d@x>", "<a@x> <b@x>", "four" },
		};
		check_thread(REFS, t, N(t), "(1 (3)(2 4))");
	}
	{	/* a missing parent of two: a dummy at the root keeps them together */
		static const struct tmsg t[] = {
			{ 20, "<b@x>", "<gone@x>", "two" },
			{ 30, "<c@x>", "<gone@x>", "three" },
			{ 10, "<d@x>", NULL, "four" },
		};
		check_thread(REFS, t, N(t), "(3)((1)(2))");
	}
	{	/* a missing parent of one: promoted to the root */
		static const struct tmsg t[] = {
			{ 20, "<b@x>", "<gone@x>", "two" },
			{ 10, "<d@x>", NULL, "four" },
		};
		check_thread(REFS, t, N(t), "(2)(1)");
	}
	{	/* missing messages inside a chain: dummies below the root give way */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "one" },
			{ 20, "<d@x>", "<a@x> <gone1@x> <gone2@x>", "two" },
			{ 30, "<e@x>", "<a@x> <gone1@x>", "three" },
		};
		check_thread(REFS, t, N(t), "(1 (2)(3))");
	}
	{	/* a duplicate Message-ID: only the first has it */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "one" },
			{ 20, "<a@x>", NULL, "two" },
			{ 30, "<c@x>", "<a@x>", "three" },
		};
		check_thread(REFS, t, N(t), "(1 3)(2)");
	}
	{	/* no Message-ID: a unique one, nothing can reference it */
		static const struct tmsg t[] = {
			{ 10, NULL, NULL, "one" },
			{ 20, NULL, NULL, "two" },
		};
		check_thread(REFS, t, N(t), "(1)(2)");
	}
	{	/* a loop in References: the link that would close it is not made */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", "<b@x>", "one" },
			{ 20, "<b@x>", "<a@x>", "two" },
		};
		check_thread(REFS, t, N(t), "(2 1)");
	}
	{	/* a message referencing itself */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", "<a@x>", "one" },
		};
		check_thread(REFS, t, N(t), "(1)");
	}
	{	/* a truncated References: an existing parent is kept by 1.A, the last
		 * reference wins for the message itself (1.B) */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "one" },
			{ 20, "<b@x>", "<a@x>", "two" },
			{ 30, "<c@x>", "<x@x> <b@x>", "three" },
			{ 40, "<x@x>", NULL, "four" },
		};
		check_thread(REFS, t, N(t), "(1 2 3)(4)");
	}
	{	/* 1.B: a parent given by another message's References is replaced by the
		 * message's own last reference */
		static const struct tmsg t[] = {
			{ 10, "<p@x>", NULL, "p" },
			{ 20, "<q@x>", NULL, "q" },
			{ 30, "<m@x>", "<q@x>", "m" },
			{ 40, "<n@x>", "<p@x> <m@x> <n0@x>", "n" },
		};
		/* n's References make m a child of p?  No: m already has parent q (1.A keeps
		 * existing links); n hangs under the dummy n0, a child of m */
		check_thread(REFS, t, N(t), "(1)(2 3 4)");
	}
	{	/* step 5: a reply without references joins the thread of its subject */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "Hello" },
			{ 20, "<b@x>", NULL, "Re: hello" },
			{ 30, "<c@x>", NULL, "other" },
		};
		check_thread(REFS, t, N(t), "(1 2)(3)");
	}
	{	/* step 5: two non-replies with one subject get a dummy */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "Hi" },
			{ 20, "<b@x>", NULL, "hi" },
		};
		check_thread(REFS, t, N(t), "((1)(2))");
	}
	{	/* step 5: the reply came first in date: the non-reply takes the table and the
		 * reply goes under it */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "Re: topic" },
			{ 20, "<b@x>", NULL, "topic" },
		};
		check_thread(REFS, t, N(t), "(2 1)");
	}
	{	/* step 5: a dummy thread and a message of the same subject: the message joins
		 * the dummy's children */
		static const struct tmsg t[] = {
			{ 20, "<b@x>", "<gone@x>", "topic" },
			{ 30, "<c@x>", "<gone@x>", "Re: topic" },
			{ 40, "<d@x>", NULL, "Re: topic" },
		};
		check_thread(REFS, t, N(t), "((1)(2)(3))");
	}
	{	/* step 5: empty subjects are never merged */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "" },
			{ 20, "<b@x>", NULL, "Re:" },
			{ 30, "<c@x>", NULL, NULL },
		};
		check_thread(REFS, t, N(t), "(1)(2)(3)");
	}
	{	/* equal sent dates: mailbox order */
		static const struct tmsg t[] = {
			{ 10, "<a@x>", NULL, "x" },
			{ 10, "<b@x>", NULL, "y" },
			{ 10, "<c@x>", "<a@x>", "z" },
			{ 10, "<d@x>", "<a@x>", "w" },
		};
		check_thread(REFS, t, N(t), "(1 (3)(4))(2)");
	}
	check_thread(REFS, NULL, 0, "");
}

static void
test_thread_orderedsubject(void **state)
{
	static const struct tmsg t[] = {
		{ 30, NULL, NULL, "Re: Hello" },
		{ 10, NULL, NULL, "hello" },
		{ 20, NULL, NULL, "[list] apple" },
		{ 15, NULL, NULL, "zebra" },
		{ 40, NULL, NULL, "Apple (fwd)" },
		{ 50, NULL, NULL, "hello" },
	};

	(void)state;
	/* threads by their first message's date; the rest of a thread children of the
	 * first (RFC 5256: no grandchildren) */
	check_thread(THREAD_ORDEREDSUBJECT, t, N(t), "(2 (1)(6))(4)(3 5)");
	check_thread(THREAD_ORDEREDSUBJECT, t, 1, "(1)");
}

/* Deep trees are written without recursion. */
static void
test_thread_deep(void **state)
{
	enum { DEPTH = 50000 };
	struct tmsg *t = calloc(DEPTH, sizeof(*t));
	char (*idv)[24] = calloc(DEPTH, sizeof(*idv));
	char *got, *p;
	size_t i;

	(void)state;
	for (i = 0; i < DEPTH; i++) {
		snprintf(idv[i], sizeof(idv[i]), "<%zu@x>", i);
		t[i].sent = (int64_t)i;
		t[i].id = idv[i];
		t[i].refs = i > 0 ? idv[i - 1] : NULL;
		t[i].subject = "s";
	}
	got = thread(REFS, t, DEPTH);
	assert_true(strncmp(got, "(1 2 3 4 ", 9) == 0);
	p = got + strlen(got) - 7;
	assert_string_equal(p, " 50000)");
	free(got);
	/* a comb: each message has two replies, one of which goes on */
	for (i = 0; i < DEPTH; i++)
		t[i].refs = i > 1 ? idv[(i - 1) / 2 * 2] : (i == 1 ? idv[0] : NULL);
	got = thread(REFS, t, DEPTH);
	assert_true(strncmp(got, "(1 2 3 (4)(5 6 (", 9) == 0 || strlen(got) > DEPTH);
	free(got);
	free(idv);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_casemap),
		cmocka_unit_test(test_msgid),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_keys_unknown_charset),
		cmocka_unit_test(test_thread_references),
		cmocka_unit_test(test_thread_orderedsubject),
		cmocka_unit_test(test_thread_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
