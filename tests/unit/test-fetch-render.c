/*
 * test-fetch-render.c: ENVELOPE, BODY and BODYSTRUCTURE text (RFC 3501 7.4.2) from the message
 * model, string quoting, and BODY[...] / BINARY[...] section specifications.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imapd/fetch-render.h"
#include "mbox/message.h"

static char *
render(const char *m, int what)
{
	struct msg *msg = msg_parse((const unsigned char *)m, strlen(m), NULL, NULL);
	struct dbuf b;
	char *r;

	dbuf_init(&b, 1 << 20);
	if (what == 0)
		fetch_render_envelope(&b, msg_root(msg)->envelope);
	else
		fetch_render_bodystructure(&b, msg_root(msg), what == 2);
	r = strdup(b.data);
	dbuf_free(&b);
	msg_free(&msg);
	return r;
}

static void
expect(const char *m, int what, const char *want)
{
	char *got = render(m, what);

	assert_string_equal(got, want);
	free(got);
}

static void
test_envelope(void **state)
{
	(void)state;
	expect("Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: Hi \"you\"\n"
	       "From: A B <a@b.example>\nTo: undisclosed-recipients:;\n"
	       "Cc: c@d, Group: e@f;\nMessage-ID: <m@x>\nIn-Reply-To: <p@x>\n\nbody\n", 0,
	       "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"Hi \\\"you\\\"\" "
	       "((\"A B\" NIL \"a\" \"b.example\")) ((\"A B\" NIL \"a\" \"b.example\")) "
	       "((\"A B\" NIL \"a\" \"b.example\")) "
	       "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	       "((NIL NIL \"c\" \"d\")(NIL NIL \"Group\" NIL)(NIL NIL \"e\" \"f\")"
	       "(NIL NIL NIL NIL)) NIL \"<p@x>\" \"<m@x>\")");
	/* nothing at all; an empty Sender falls back to From; 8-bit text goes as a literal */
	expect("\n", 0, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	expect("From: x@y\nSender:\nReply-To: r@s\nSubject: caf\xc3\xa9\n\n", 0,
	       "(NIL {5}\r\ncaf\xc3\xa9 ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	       "((NIL NIL \"r\" \"s\")) NIL NIL NIL NIL NIL)");
	/* encoded words stay encoded */
	expect("Subject: =?utf-8?q?a?=\n\n", 0,
	       "(NIL \"=?utf-8?q?a?=\" NIL NIL NIL NIL NIL NIL NIL NIL)");
}

static void
test_body_simple(void **state)
{
	(void)state;
	expect("Subject: x\n\nline1\nline2\n", 1,
	       "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2)");
	expect("Subject: x\n\nline1\nline2\n", 2,
	       "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 "
	       "NIL NIL NIL NIL)");
	/* text without a charset gets the RFC 2045 default added */
	expect("Content-Type: text/plain; format=flowed\n\nx\n", 1,
	       "(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL "
	       "\"7bit\" 3 1)");
	expect("Content-Type: application/pdf; name=\"a b.pdf\"\n"
	       "Content-Transfer-Encoding: base64\nContent-ID: <i@x>\n"
	       "Content-Description: a file\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
	       "Content-Disposition: attachment; filename=\"a b.pdf\"\n"
	       "Content-Language: en, de\nContent-Location: http://x/y\n\nAAAA\n", 2,
	       "(\"application\" \"pdf\" (\"name\" \"a b.pdf\") \"<i@x>\" \"a file\" \"base64\" 6 "
	       "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"a b.pdf\")) "
	       "(\"en\" \"de\") \"http://x/y\")");
}

static const char *const nested =
	"Subject: outer\n"
	"Content-Type: multipart/mixed; boundary=\"o\"\n\n"
	"--o\nContent-Type: multipart/alternative; boundary=i\n\n"
	"--i\nContent-Type: text/plain; charset=utf-8\n\nhello\n"
	"--i\nContent-Type: text/html\nContent-Language: fr\n\n<b>x</b>\n--i--\n"
	"--o\nContent-Type: message/rfc822\n\nSubject: in\nFrom: b@c\n\nin body\n"
	"--o--\n";

static void
test_body_nested(void **state)
{
	(void)state;
	expect(nested, 1,
	       "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0)"
	       "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0) \"alternative\")"
	       "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 33 "
	       "(NIL \"in\" ((NIL NIL \"b\" \"c\")) ((NIL NIL \"b\" \"c\")) "
	       "((NIL NIL \"b\" \"c\")) NIL NIL NIL NIL NIL) "
	       "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0) 3) "
	       "\"mixed\")");
	expect(nested, 2,
	       "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
	       "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL \"fr\" NIL) \"alternative\" "
	       "(\"boundary\" \"i\") NIL NIL NIL)"
	       "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 33 "
	       "(NIL \"in\" ((NIL NIL \"b\" \"c\")) ((NIL NIL \"b\" \"c\")) "
	       "((NIL NIL \"b\" \"c\")) NIL NIL NIL NIL NIL) "
	       "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 0 NIL NIL NIL NIL) "
	       "3 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"o\") NIL NIL NIL)");
	/* a multipart without parts still gets one (empty text/plain) */
	expect("Content-Type: multipart/mixed; boundary=z\n\nno parts\n", 1,
	       "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
}

static int
parse(const char *text, bool binary, struct fetch_section *sec, char *name, size_t namelen,
      char **rest)
{
	static char buf[512];
	char *p = buf;
	struct dbuf b;
	int r;

	snprintf(buf, sizeof(buf), "%s", text);
	r = fetch_section_parse(&p, binary, sec);
	if (r == 0) {
		dbuf_init(&b, 4096);
		fetch_section_name(&b, sec);
		snprintf(name, namelen, "%s", b.data != NULL ? b.data : "");
		dbuf_free(&b);
		if (rest != NULL)
			*rest = p;
	}
	return r;
}

static void
test_sections(void **state)
{
	struct fetch_section sec;
	char name[256], *rest;

	(void)state;
	assert_int_equal(parse("[]", false, &sec, name, sizeof(name), &rest), 0);
	assert_int_equal(sec.spec.kind, MSG_SECT_FULL);
	assert_int_equal(sec.spec.npath, 0);
	assert_string_equal(name, "");
	assert_string_equal(rest, "");

	assert_int_equal(parse("[1.2.3]<10.20> x", false, &sec, name, sizeof(name), &rest), 0);
	assert_int_equal(sec.spec.npath, 3);
	assert_int_equal(sec.path[2], 3);
	assert_true(sec.partial);
	assert_int_equal(sec.origin, 10);
	assert_int_equal(sec.length, 20);
	assert_string_equal(name, "1.2.3");
	assert_string_equal(rest, " x");

	assert_int_equal(parse("[header.fields (From \"X-A b\" to)]", false, &sec, name,
			       sizeof(name), NULL), 0);
	assert_int_equal(sec.spec.kind, MSG_SECT_HEADER_FIELDS);
	assert_int_equal(sec.spec.nfields, 3);
	assert_string_equal(sec.fields[1], "X-A b");
	assert_string_equal(name, "HEADER.FIELDS (From \"X-A b\" to)");

	assert_int_equal(parse("[2.HEADER.FIELDS.NOT (Subject)]", false, &sec, name,
			       sizeof(name), NULL), 0);
	assert_int_equal(sec.spec.kind, MSG_SECT_HEADER_FIELDS_NOT);
	assert_string_equal(name, "2.HEADER.FIELDS.NOT (Subject)");
	assert_int_equal(parse("[1.MIME]", false, &sec, name, sizeof(name), NULL), 0);
	assert_string_equal(name, "1.MIME");
	assert_int_equal(parse("[TEXT]", false, &sec, name, sizeof(name), NULL), 0);
	assert_int_equal(parse("[4.TEXT]", false, &sec, name, sizeof(name), NULL), 0);
	assert_string_equal(name, "4.TEXT");
	assert_int_equal(parse("[1.2]", true, &sec, name, sizeof(name), NULL), 0);

	assert_int_equal(parse("[MIME]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[0]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[1.]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[1..2]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[1.TEXT]", true, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[HEADER.FIELDS ()]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[HEADER.FIELDS]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[TEXT", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[]<1.0>", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[]<1>", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[]<4294967296.1>", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[4294967296]", false, &sec, name, sizeof(name), NULL), -1);
	assert_int_equal(parse("[BOGUS]", false, &sec, name, sizeof(name), NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_body_simple),
		cmocka_unit_test(test_body_nested),
		cmocka_unit_test(test_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
