/*
 * test-search-program.c: SEARCH criteria (RFC 3501 6.4.4): parsing of every key, CHARSET,
 * sequence and UID sets with "*", date keys by calendar day in the message's zone, and text
 * keys on decoded headers and bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "imapd/search-program.h"
#include "mbox/mbox.h"

/* A tiny reader of test criteria into imap_arg trees: atoms, "quoted" strings, lists. */
static struct imap_arg pool[256];
static char text[4096];
static size_t npool, ntext;

static struct imap_arg *
read_list(const char **pp, char end)
{
	struct imap_arg *first = NULL, **tail = &first;
	const char *p = *pp;

	for (;;) {
		struct imap_arg *a;

		while (*p == ' ')
			p++;
		if (*p == end || *p == '\0') {
			if (*p != '\0')
				p++;
			break;
		}
		assert_true(npool < 256);
		a = &pool[npool++];
		memset(a, 0, sizeof(*a));
		if (*p == '(') {
			p++;
			a->type = ARG_LIST;
			a->list = read_list(&p, ')');
		} else {
			char *o = text + ntext;

			a->type = ARG_ATOM;
			if (*p == '"') {
				a->type = ARG_STRING;
				for (p++; *p != '"'; p++)
					text[ntext++] = *p;
				p++;
			} else {
				while (*p != ' ' && *p != '\0' && *p != ')' && *p != '(')
					text[ntext++] = *p++;
			}
			text[ntext++] = '\0';
			a->str = o;
			a->len = strlen(o);
		}
		*tail = a;
		tail = &a->next;
	}
	*pp = p;
	return first;
}

static struct imap_arg *
args(const char *s)
{
	npool = ntext = 0;
	return read_list(&s, '\0');
}

struct tmsg {
	struct msg *msg;
	struct msg_hindex *hx;	/* the header index of body, for the indexed path */
	const char *keywords[4];
};

static const struct msg *
get_msg(void *ctx)
{
	return ((struct tmsg *)ctx)->msg;
}

static const char *const body;

/* For test_indexed_headers: the message's own bytes, from its parse. */
static const struct msg_hindex *
get_hdr_hindex(void *ctx, const unsigned char **data_r, size_t *len_r)
{
	const struct tmsg *t = ctx;

	*data_r = msg_data(t->msg);
	*len_r = msg_data_len(t->msg);
	return t->hx;
}

static const struct msg_hindex *
get_hindex(void *ctx, const unsigned char **data_r, size_t *len_r)
{
	*data_r = (const unsigned char *)body;
	*len_r = strlen(body);
	return ((struct tmsg *)ctx)->hx;
}

static bool
has_kw(void *ctx, const char *kw)
{
	struct tmsg *t = ctx;
	size_t i;

	for (i = 0; i < 4 && t->keywords[i] != NULL; i++) {
		if (strcasecmp(t->keywords[i], kw) == 0)
			return true;
	}
	return false;
}

static bool
hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return msg_name_eq(name, len, "x-uid");
}

static const char *const body =
	"From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.de>\n"
	"To: undisclosed-recipients:;\n"
	"Cc: Ann <ann@example.org>\n"
	"X-UID: 42\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin\n"
	"Date: Sun, 31 Dec 2023 23:30:00 -0500\n"
	"X-Custom: Needle in a header\n"
	"Content-Type: multipart/mixed; boundary=b\n\n"
	"--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: "
	"quoted-printable\n\nCaf=E9 cr=E8me, the periwinkle=\n harbour ledger\n"
	"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
	"c2VjcmV0IGF0dGFjaG1lbnQ=\n"
	"--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
	"PGI+w4lMw4lQSEFOVDwvYj4=\n--b--\n";

static struct tmsg tm;
static struct search_msg sm;
static const struct search_box box = { .count = 10, .max_uid = 500 };

static int
setup(void **state)
{
	(void)state;
	memset(&tm, 0, sizeof(tm));
	tm.msg = msg_parse((const unsigned char *)body, strlen(body), hide, NULL);
	tm.hx = msg_hindex_build((const unsigned char *)body, strlen(body), hide, NULL);
	assert_non_null(tm.hx);
	tm.keywords[0] = "$Work";
	memset(&sm, 0, sizeof(sm));
	sm.seq = 7;
	sm.uid = 300;
	sm.flags = MBOX_SEEN | MBOX_FLAGGED;
	/* 2024-01-01 04:30 UTC, stored with zone -0500: 2023-12-31 23:30 there */
	sm.internal_date = 1704083400;
	sm.internal_tz = -300;
	sm.size = 1200;
	sm.has_keyword = has_kw;
	sm.get_msg = get_msg;
	sm.ctx = &tm;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	msg_free(&tm.msg);
	free(tm.hx);
	return 0;
}

/* 1 = matches, 0 = does not, -1 = syntax error, -2 = bad charset */
static int
run(const char *criteria)
{
	struct search_program *prog;
	const char *why;
	enum search_error e = search_parse(args(criteria), &prog, &why);
	int r;

	if (e == SEARCH_ESYNTAX) {
		assert_non_null(why);
		return -1;
	}
	if (e == SEARCH_EBADCHARSET)
		return -2;
	r = search_match(prog, &box, &sm) ? 1 : 0;
	/* the header index gives the same answer as the parse, every time */
	sm.get_hindex = get_hindex;
	assert_int_equal(search_match(prog, &box, &sm) ? 1 : 0, r);
	sm.get_hindex = NULL;
	search_free(&prog);
	assert_null(prog);
	return r;
}

/* Header keys on indexed fields: the index's plain-ASCII shortcut agrees with decoding. */
static void
test_indexed_headers(void **state)
{
	static const char *const hdr =
		"From: Plain Person <plain@example.org>\n"
		"To: first@x,\n second@y\n"
		"Cc: =?utf-8?q?L=C3=A9on?= <leon@x>\n"
		"Bcc: Ij \x01 <c@x>\n"
		"Subject: Re: the IJSSELMEER trip\r\n"
		"Subject:second subject\n"
		"Reply-To: Caf\xc3\xa9 <cafe@x>\n"
		"Message-ID: <a=?b@c>\n\nbody\n";
	static const char *const keys[] = {
		"FROM plain", "FROM PLAIN@EXAMPLE", "FROM \"person <\"", "FROM nobody",
		"TO \"x, second\"", "TO \"x,second\"", "TO first", "CC l\xc3\xa9on", "CC LEON",
		"BCC ij", "BCC \xc4\xb3", "SUBJECT ijssel", "SUBJECT \xc4\xb2ssel",
		"SUBJECT \"second s\"", "SUBJECT trip", "SUBJECT \"\"", "HEADER Reply-To caf\xc3\xa9",
		"HEADER reply-to CAF\xc3\x89", "HEADER Message-ID a=?b", "HEADER Date \"\"",
		"HEADER In-Reply-To x", "OR SUBJECT nope FROM plain", "NOT TO second",
	};
	struct msg *msg = msg_parse_header((const unsigned char *)hdr, strlen(hdr), NULL, NULL);
	struct msg_hindex *hx = msg_hindex_build((const unsigned char *)hdr, strlen(hdr), NULL,
						 NULL);
	struct tmsg t = { msg, hx, { NULL } };
	struct search_msg m = sm;
	size_t i;
	int hits = 0;

	(void)state;
	assert_non_null(hx);
	m.ctx = &t;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct search_program *prog;
		const char *why;
		bool a, b;

		assert_int_equal(search_parse(args(keys[i]), &prog, &why), SEARCH_OK);
		m.get_hindex = NULL;
		a = search_match(prog, &box, &m);
		/* get_hindex reads body, not hdr: point it at hdr through a local index */
		m.get_hindex = get_hdr_hindex;
		b = search_match(prog, &box, &m);
		if (a != b)
			fail_msg("%s: parse %d, index %d", keys[i], a, b);
		hits += a;
		search_free(&prog);
	}
	/* the list mixes hits and misses */
	assert_true(hits > 5 && hits < (int)(sizeof(keys) / sizeof(keys[0])) - 3);
	free(hx);
	msg_free(&msg);
}

static void
test_flags(void **state)
{
	(void)state;
	assert_int_equal(run("ALL"), 1);
	assert_int_equal(run("SEEN"), 1);
	assert_int_equal(run("UNSEEN"), 0);
	assert_int_equal(run("FLAGGED UNANSWERED UNDELETED UNDRAFT"), 1);
	assert_int_equal(run("ANSWERED"), 0);
	assert_int_equal(run("DELETED"), 0);
	assert_int_equal(run("DRAFT"), 0);
	assert_int_equal(run("RECENT"), 0);
	assert_int_equal(run("OLD"), 1);
	assert_int_equal(run("NEW"), 0);
	sm.flags = MBOX_RECENT;
	assert_int_equal(run("NEW"), 1);
	assert_int_equal(run("OLD"), 0);
	sm.flags = MBOX_RECENT | MBOX_SEEN;
	assert_int_equal(run("NEW"), 0);
	assert_int_equal(run("keyword $work"), 1);
	assert_int_equal(run("KEYWORD $Other"), 0);
	assert_int_equal(run("UNKEYWORD $Other"), 1);
	assert_int_equal(run("UNKEYWORD $Work"), 0);
}

static void
test_sets(void **state)
{
	(void)state;
	assert_int_equal(run("7"), 1);
	assert_int_equal(run("1:6,8:*"), 0);
	assert_int_equal(run("1,3,5:7"), 1);
	assert_int_equal(run("*:5"), 1);	/* 5:10 */
	assert_int_equal(run("UID 300"), 1);
	assert_int_equal(run("UID 1:299,301:*"), 0);
	assert_int_equal(run("UID 600:*"), 0);	/* 500:600 */
	assert_int_equal(run("UID *"), 0);
	assert_int_equal(run("0"), -1);
	assert_int_equal(run("1:"), -1);
	assert_int_equal(run("1,,2"), -1);
	assert_int_equal(run("4294967296"), -1);
	assert_int_equal(run("UID"), -1);
	assert_int_equal(run("UID x"), -1);
}

static void
test_logic(void **state)
{
	(void)state;
	assert_int_equal(run("NOT SEEN"), 0);
	assert_int_equal(run("NOT NOT SEEN"), 1);
	assert_int_equal(run("OR ANSWERED FLAGGED"), 1);
	assert_int_equal(run("OR ANSWERED DELETED"), 0);
	assert_int_equal(run("(SEEN FLAGGED) (7)"), 1);
	assert_int_equal(run("(SEEN ANSWERED)"), 0);
	assert_int_equal(run("OR (ANSWERED) (NOT DELETED 7)"), 1);
	assert_int_equal(run("NOT"), -1);
	assert_int_equal(run("OR SEEN"), -1);
	assert_int_equal(run("()"), -1);
	assert_int_equal(run(""), -1);
	assert_int_equal(run("BOGUS"), -1);
	assert_int_equal(run("SEEN BOGUS"), -1);
}

static void
test_sizes_dates(void **state)
{
	long long d;

	(void)state;
	assert_int_equal(run("LARGER 1199"), 1);
	assert_int_equal(run("LARGER 1200"), 0);
	assert_int_equal(run("SMALLER 1201"), 1);
	assert_int_equal(run("SMALLER 1200"), 0);
	assert_int_equal(run("LARGER x"), -1);
	assert_int_equal(run("LARGER"), -1);
	/* internal date: 31-Dec-2023 in its own zone, though 1-Jan-2024 in UTC */
	assert_int_equal(run("ON 31-Dec-2023"), 1);
	assert_int_equal(run("ON 1-Jan-2024"), 0);
	assert_int_equal(run("BEFORE 1-Jan-2024"), 1);
	assert_int_equal(run("BEFORE 31-Dec-2023"), 0);
	assert_int_equal(run("SINCE 31-Dec-2023"), 1);
	assert_int_equal(run("SINCE \"01-Jan-2024\""), 0);
	/* Date header: Sun, 31 Dec 2023 23:30:00 -0500 */
	assert_int_equal(run("SENTON 31-dec-2023"), 1);
	assert_int_equal(run("SENTBEFORE 1-Jan-2024"), 1);
	assert_int_equal(run("SENTSINCE 1-Jan-2024"), 0);
	/* no Date: sent at the epoch */
	msg_free(&tm.msg);
	tm.msg = msg_parse((const unsigned char *)"Subject: x\n\n", 12, NULL, NULL);
	assert_int_equal(run("SENTBEFORE 2-Jan-1970"), 1);
	assert_int_equal(run("SENTON 1-Jan-1970"), 1);
	msg_free(&tm.msg);
	/* two Date fields: the first one counts */
	tm.msg = msg_parse((const unsigned char *)"Date: 9 Mar 2026 12:00 +0100\n"
			   "Date: 10 Mar 2026 12:00 +0100\n\n", 60, NULL, NULL);
	assert_int_equal(run("SENTON 9-Mar-2026"), 1);
	assert_int_equal(run("ON 31-Foo-2023"), -1);
	assert_int_equal(run("ON 2023-12-31"), -1);
	assert_int_equal(run("BEFORE"), -1);
	assert_int_equal(search_parse_date("1-Jan-1970", 10, &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(search_day(-1, 0), -1);
}

static void
test_text(void **state)
{
	(void)state;
	/* header keys see decoded words, case-insensitively */
	assert_int_equal(run("FROM jörg"), 1);
	assert_int_equal(run("FROM JÖRG"), 1);
	assert_int_equal(run("FROM joerg@example"), 1);
	assert_int_equal(run("SUBJECT grüße"), 1);
	assert_int_equal(run("SUBJECT \"aus berlin\""), 1);
	assert_int_equal(run("SUBJECT nothing"), 0);
	assert_int_equal(run("CC ann"), 1);
	assert_int_equal(run("TO undisclosed"), 1);
	assert_int_equal(run("BCC x"), 0);
	assert_int_equal(run("HEADER X-Custom needle"), 1);
	assert_int_equal(run("HEADER x-custom \"\""), 1);
	assert_int_equal(run("HEADER X-Missing \"\""), 0);
	/* hidden fields are not there */
	assert_int_equal(run("HEADER X-UID \"\""), 0);
	/* body keys: decoded QP in Latin-1, base64 in UTF-8, soft breaks joined */
	assert_int_equal(run("BODY CAFÉ"), 1);
	assert_int_equal(run("BODY \"periwinkle harbour ledger\""), 1);
	assert_int_equal(run("BODY éléphant"), 1);
	assert_int_equal(run("BODY secret"), 0);	/* attachments are not text */
	assert_int_equal(run("BODY berlin"), 0);	/* a header, not the body */
	assert_int_equal(run("TEXT berlin"), 1);
	assert_int_equal(run("TEXT crème"), 1);
	assert_int_equal(run("TEXT x-custom"), 1);
	assert_int_equal(run("TEXT zzz"), 0);
	assert_int_equal(run("BODY"), -1);
	assert_int_equal(run("HEADER X-Custom"), -1);
}

static void
test_charset(void **state)
{
	(void)state;
	assert_int_equal(run("CHARSET UTF-8 SUBJECT grüße"), 1);
	assert_int_equal(run("CHARSET US-ASCII SEEN"), 1);
	/* the string is converted from the charset named: "\xfc" is u-umlaut in Latin-1 */
	assert_int_equal(run("CHARSET ISO-8859-1 SUBJECT gr\xfc"), 1);
	assert_int_equal(run("CHARSET X-NOPE SEEN"), -2);
	assert_int_equal(run("CHARSET UTF-8//TRANSLIT SEEN"), -2);
	assert_int_equal(run("CHARSET"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indexed_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_dates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_charset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
