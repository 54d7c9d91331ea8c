/*
 * test-decode.c: base64 and quoted-printable (one shot, byte by byte, junk, soft breaks),
 * BINARY decoding of parts, charset conversion, RFC 2047 encoded words, case-insensitive
 * matching, and RFC 5322 date parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mbox/decode.h"
#include "mbox/message.h"

/* Decode in one go and one byte at a time; both must agree.  Returns a malloc'd string. */
static char *
decode(enum msg_cte cte, const char *in, size_t *len_r)
{
	size_t len = strlen(in), n = 0, m = 0, i;
	unsigned char *a = malloc(DEC_OUT_MAX(len)), *b = malloc(DEC_OUT_MAX(len) + 8);
	struct decoder d;

	decoder_init(&d, cte);
	n = decoder_feed(&d, (const unsigned char *)in, len, a);
	n += decoder_finish(&d, a + n);
	decoder_init(&d, cte);
	for (i = 0; i < len; i++)
		m += decoder_feed(&d, (const unsigned char *)in + i, 1, b + m);
	m += decoder_finish(&d, b + m);
	assert_int_equal(n, m);
	assert_memory_equal(a, b, n);
	a[n] = '\0';
	free(b);
	if (len_r != NULL)
		*len_r = n;
	return (char *)a;
}

static void
expect_dec(enum msg_cte cte, const char *in, const char *want)
{
	char *got = decode(cte, in, NULL);

	assert_string_equal(got, want);
	free(got);
}

static void
test_base64(void **state)
{
	size_t n;
	char *got;

	(void)state;
	expect_dec(MSG_CTE_BASE64, "aGVsbG8gd29ybGQ=", "hello world");
	expect_dec(MSG_CTE_BASE64, "aGVs\r\nbG8g\nd29y bGQ=\n", "hello world");
	/* junk characters are skipped */
	expect_dec(MSG_CTE_BASE64, "aG!V*s#bG8", "hello");
	expect_dec(MSG_CTE_BASE64, "YQ==", "a");
	expect_dec(MSG_CTE_BASE64, "YWI=", "ab");
	/* missing padding at the end still yields the bytes */
	expect_dec(MSG_CTE_BASE64, "YWI", "ab");
	/* a dangling single character gives nothing */
	expect_dec(MSG_CTE_BASE64, "YWJjZ", "abc");
	/* concatenated padded blocks */
	expect_dec(MSG_CTE_BASE64, "YQ==YWI=", "aab");
	got = decode(MSG_CTE_BASE64, "AAD/", &n);
	assert_int_equal(n, 3);
	assert_memory_equal(got, "\0\0\xff", 3);
	free(got);
	expect_dec(MSG_CTE_BASE64, "", "");
}

static void
test_qp(void **state)
{
	(void)state;
	expect_dec(MSG_CTE_QP, "caf=C3=A9", "caf\xc3\xa9");
	expect_dec(MSG_CTE_QP, "soft=\nbreak", "softbreak");
	expect_dec(MSG_CTE_QP, "soft=\r\nbreak", "softbreak");
	expect_dec(MSG_CTE_QP, "soft=  \r\nbreak", "softbreak");
	/* hard breaks become CRLF, trailing white space goes (RFC 2045 6.7 rule 3) */
	expect_dec(MSG_CTE_QP, "a  \nb\t\r\nc", "a\r\nb\r\nc");
	expect_dec(MSG_CTE_QP, "a b", "a b");
	expect_dec(MSG_CTE_QP, "end  ", "end");
	/* malformed sequences are kept */
	expect_dec(MSG_CTE_QP, "=ZZ", "=ZZ");
	expect_dec(MSG_CTE_QP, "=4", "=4");
	expect_dec(MSG_CTE_QP, "=4x", "=4x");
	expect_dec(MSG_CTE_QP, "x=", "x");
	expect_dec(MSG_CTE_QP, "=3d=3D", "==");
	expect_dec(MSG_CTE_QP, "a\rb", "a\rb");
	expect_dec(MSG_CTE_QP, "= x", "=x");
	expect_dec(MSG_CTE_7BIT, "as is\n", "as is\n");
}

static void
test_qp_long_space(void **state)
{
	char in[400], *got;
	size_t n;

	(void)state;
	memset(in, ' ', 300);
	memcpy(in + 300, "x\n", 3);
	got = decode(MSG_CTE_QP, in, &n);
	assert_int_equal(n, 303);
	assert_memory_equal(got + 300, "x\r\n", 3);
	free(got);
}

struct sink {
	char buf[4096];
	size_t len;
};

static int
sink_write(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	assert_true(s->len + n < sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return 0;
}

static void
test_binary_parts(void **state)
{
	const char *m = "Content-Type: multipart/mixed; boundary=b\n\n"
			"--b\nContent-Transfer-Encoding: base64\n\naGVsbG8g\nd29ybGQ=\n"
			"--b\nContent-Transfer-Encoding: quoted-printable\n\nl1=\nl1\nl2=3D\n"
			"--b\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n"
			"--b\n\nplain\nlf\n--b--\n";
	struct msg *msg = msg_parse((const unsigned char *)m, strlen(m), NULL, NULL);
	const struct msg_part *p = msg_root(msg)->children;
	struct sink s;
	size_t size;

	(void)state;
	assert_int_equal(msg_decoded_size(msg, p, &size), 0);
	assert_int_equal(size, 11);
	s.len = 0;
	assert_int_equal(msg_decoded_write(msg, p, 0, SIZE_MAX, sink_write, &s), 0);
	assert_string_equal(s.buf, "hello world");
	s.len = 0;
	assert_int_equal(msg_decoded_write(msg, p, 6, 3, sink_write, &s), 0);
	assert_string_equal(s.buf, "wor");

	p = p->next;
	assert_int_equal(msg_decoded_size(msg, p, &size), 0);
	assert_int_equal(size, strlen("l1l1\r\nl2="));
	s.len = 0;
	assert_int_equal(msg_decoded_write(msg, p, 0, SIZE_MAX, sink_write, &s), 0);
	assert_string_equal(s.buf, "l1l1\r\nl2=");

	p = p->next;
	assert_int_equal(msg_decoded_size(msg, p, &size), -1);
	assert_int_equal(msg_decoded_write(msg, p, 0, SIZE_MAX, sink_write, &s), -1);

	p = p->next;
	assert_int_equal(msg_decoded_size(msg, p, &size), 0);
	assert_int_equal(size, strlen("plain\r\nlf"));
	s.len = 0;
	assert_int_equal(msg_decoded_write(msg, p, 0, SIZE_MAX, sink_write, &s), 0);
	assert_string_equal(s.buf, "plain\r\nlf");
	msg_free(&msg);
}

static void
expect_conv(const char *charset, const char *in, size_t len, const char *want, int ret)
{
	struct dbuf b;
	size_t i;

	dbuf_init(&b, 1 << 20);
	assert_int_equal(charset_to_utf8(charset, (const unsigned char *)in, len, &b), ret);
	assert_string_equal(b.data != NULL ? b.data : "", want);
	dbuf_free(&b);

	/* fed one byte at a time through the streaming converter */
	{
		struct charset_conv *c = charset_conv_new(charset);

		dbuf_init(&b, 1 << 20);
		for (i = 0; i < len; i++)
			charset_conv_feed(c, (const unsigned char *)in + i, 1, false, &b);
		charset_conv_feed(c, NULL, 0, true, &b);
		assert_string_equal(b.data != NULL ? b.data : "", want);
		dbuf_free(&b);
		charset_conv_free(&c);
		assert_null(c);
	}
}

static void
test_charset(void **state)
{
	(void)state;
	expect_conv("ISO-8859-1", "caf\xe9", 4, "caf\xc3\xa9", 0);
	expect_conv("iso-8859-15", "\xa4", 1, "\xe2\x82\xac", 0);
	expect_conv("windows-1252", "\x80", 1, "\xe2\x82\xac", 0);
	expect_conv("koi8-r", "\xc1", 1, "\xd0\xb0", 0);
	expect_conv("utf-8", "ok \xc3\xa9", 5, "ok \xc3\xa9", 0);
	expect_conv("UTF-8", "bad \xff!", 6, "bad \xef\xbf\xbd!", 0);
	expect_conv("utf-8", "cut \xc3", 5, "cut \xef\xbf\xbd", 0);
	expect_conv("shift_jis", "\x82\xa0", 2, "\xe3\x81\x82", 0);
	/* unknown charset: valid UTF-8 stays, other bytes are read as Latin-1 */
	expect_conv("x-unknown", "\xc3\xa9 \xe9", 4, "\xc3\xa9 \xc3\xa9", -1);
	expect_conv("UTF-8//TRANSLIT", "a", 1, "a", -1);
	expect_conv(NULL, "\xe9t\xe9", 3, "\xc3\xa9t\xc3\xa9", 0);
	expect_conv("us-ascii", "plain", 5, "plain", 0);
	assert_true(charset_known("UTF-8"));
	assert_true(charset_known("iso-2022-jp"));
	assert_false(charset_known("x-no-such-charset"));
	assert_false(charset_known("utf-8//IGNORE"));
}

static void
expect_2047(const char *in, const char *want)
{
	struct dbuf b;

	dbuf_init(&b, 1 << 20);
	rfc2047_decode(in, strlen(in), &b);
	assert_string_equal(b.data != NULL ? b.data : "", want);
	dbuf_free(&b);
}

static void
test_rfc2047(void **state)
{
	(void)state;
	expect_2047("=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9");
	expect_2047("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
	expect_2047("=?iso-8859-1?b?YWLp?=", "ab\xc3\xa9");
	/* adjacent words: the white space between them goes (RFC 2047 6.2 and 8) */
	expect_2047("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab");
	expect_2047("=?ISO-8859-1?Q?a?=\r\n   =?ISO-8859-1?Q?b?=", "ab");
	expect_2047("(=?ISO-8859-1?Q?a?= b)", "(a b)");
	expect_2047("=?ISO-8859-1?Q?a_b?=", "a b");
	expect_2047("=?UTF-8*en?Q?x?=", "x");
	/* a multibyte character split across adjacent words of one charset */
	expect_2047("=?UTF-8?B?w6k=?= =?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC?=",
		    "\xc3\xa9\xe2\x82\xac");
	expect_2047("=?UTF-8?Q?=E2=82?= =?ISO-8859-1?Q?=E9?=", "\xef\xbf\xbd\xc3\xa9");
	expect_2047("=?UTF-8?Q?=E2=82?= x", "\xef\xbf\xbd x");
	/* bad ones stay as they are */
	expect_2047("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	expect_2047("=?utf-8?q?no end", "=?utf-8?q?no end");
	expect_2047("=??q?a?=", "=??q?a?=");
	expect_2047("=?utf-8?q?a b?=", "=?utf-8?q?a b?=");
	/* words touching text are still decoded, as mail readers do */
	expect_2047("Re:=?utf-8?q?x?=", "Re:x");
	expect_2047("folded\r\n line", "folded line");
	expect_2047("8-bit \xe9", "8-bit \xc3\xa9");
	expect_2047("=?x-unknown?q?=E9?=", "\xc3\xa9");
	expect_2047("", "");
	expect_2047("=?utf-8?q?=?=", "=");
}

static void
test_fold_match(void **state)
{
	struct dbuf b;

	(void)state;
	dbuf_init(&b, 1 << 20);
	utf8_fold("HeLLo \xc3\x89T\xc3\x89 \xce\xa3\xcf\x82 \xd0\x96\xd0\x81 \xc5\xbd \xc4\xb0 \xc3\x9f",
		  strlen("HeLLo \xc3\x89T\xc3\x89 \xce\xa3\xcf\x82 \xd0\x96\xd0\x81 \xc5\xbd \xc4\xb0 "
			 "\xc3\x9f"), &b);
	assert_string_equal(b.data,
			    "hello e\xcc\x81te\xcc\x81 \xcf\x83\xcf\x83 \xd0\xb6\xd0\xb5\xcc\x88 "
			    "z\xcc\x8c i\xcc\x87 \xc3\x9f");
	dbuf_free(&b);

	assert_true(utf8_contains_ci("Hello World", 11, "WORLD", 5));
	assert_true(utf8_contains_ci("Gr\xc3\x9c\xc3\x9f" "e", 7, "gr\xc3\xbc", 4));
	assert_false(utf8_contains_ci("Hello", 5, "help", 4));
	assert_true(utf8_contains_ci("x", 1, "", 0));
	assert_false(utf8_contains_ci("", 0, "a", 1));
	assert_true(utf8_contains_ci("\xff\xfe" "ABC", 5, "abc", 3));
	/* accents decompose: the base letter is found, and precomposed matches decomposed */
	assert_true(utf8_contains_ci("R\xc3\xa9union", 8, "re", 2));
	assert_true(utf8_contains_ci("Re\xcc\x81union", 9, "R\xc3\x89U", 4));
	assert_false(utf8_contains_ci("Reunion", 7, "r\xc3\xa9", 3));
}

static void
test_textmatch_stream(void **state)
{
	const char *text = "Lorem ipsum \xc3\x89L\xc3\xa9PHANT dolor";
	struct textmatch tm;
	size_t len = strlen(text), cut, i;

	(void)state;
	assert_int_equal(textmatch_init(&tm, "\xc3\xa9l\xc3\x89phant", 10), 0);
	/* every way of cutting the text in two, and byte by byte */
	for (cut = 0; cut <= len; cut++) {
		textmatch_reset(&tm);
		textmatch_feed(&tm, text, cut);
		assert_true(textmatch_feed(&tm, text + cut, len - cut));
	}
	textmatch_reset(&tm);
	for (i = 0; i < len; i++)
		textmatch_feed(&tm, text + i, 1);
	assert_true(tm.found);
	textmatch_reset(&tm);
	assert_false(textmatch_feed(&tm, "elephan", 7));
	assert_false(textmatch_feed(&tm, "x", 1));
	textmatch_free(&tm);
	{
		char big[TEXTMATCH_MAX_NEEDLE + 1];

		memset(big, 'a', sizeof(big));
		assert_int_equal(textmatch_init(&tm, big, sizeof(big)), -1);
	}
}

static void
expect_date(const char *s, long long want, int zone)
{
	time_t t;
	int z = 12345;

	assert_int_equal(msg_date_parse(s, strlen(s), &t, &z), 0);
	assert_int_equal((long long)t, want);
	assert_int_equal(z, zone);
}

static void
test_date(void **state)
{
	time_t t;
	int z;

	(void)state;
	/* 2024-01-01 00:00:00 UTC = 1704067200 */
	expect_date("Mon, 1 Jan 2024 00:00:00 +0000", 1704067200, 0);
	expect_date("Mon, 01 Jan 2024 01:30:00 +0130", 1704067200, 90);
	expect_date("Sun, 31 Dec 2023 19:00:00 -0500", 1704067200, -300);
	expect_date("1 Jan 2024 00:00 GMT", 1704067200, 0);
	expect_date("Sun, 31 Dec 2023 16:00:00 PST", 1704067200, -480);
	expect_date("  Mon ,  1  Jan  2024  00:00:00  +0000 (UTC) ", 1704067200, 0);
	expect_date("1 jan 24 00:00:00 +0000", 1704067200, 0);
	expect_date("1 Jan 124 00:00:00 +0000", 1704067200, 0);	/* 1900 + 124 */
	expect_date("1 Jan 70 00:00:00 +0000", 0, 0);
	expect_date("Mon Jan  1 00:00:00 2024", 1704067200, 0);
	expect_date("1-Jan-2024 00:00:00 +0000", 1704067200, 0);
	expect_date("1 January 2024 00:00:00 Z", 1704067200, 0);
	/* unknown zones count as -0000 (RFC 5322 4.3) */
	expect_date("1 Jan 2024 00:00:00 XYZ", 1704067200, 0);
	expect_date("1 Jan 2024", 1704067200, 0);
	expect_date("29 Feb 2024 12:00:60 +0000", 1709208000 + 59, 0);
	assert_int_equal(msg_date_parse("", 0, &t, &z), -1);
	assert_int_equal(msg_date_parse("garbage", 7, &t, &z), -1);
	assert_int_equal(msg_date_parse("32 Jan 2024", 11, &t, &z), -1);
	assert_int_equal(msg_date_parse("1 Foo 2024", 10, &t, &z), -1);
	assert_int_equal(msg_date_parse("1 Jan 99999", 11, &t, &z), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_qp_long_space),
		cmocka_unit_test(test_binary_parts),
		cmocka_unit_test(test_charset),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_fold_match),
		cmocka_unit_test(test_textmatch_stream),
		cmocka_unit_test(test_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
