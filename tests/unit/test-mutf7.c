/*
 * test-mutf7.c: modified UTF-7 (RFC 3501 5.1.3) both ways: known encodings, round trips over
 * the code space, every class of invalid input, buffer bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "mbox/mutf7.h"

static void
expect_decode(const char *in, const char *want, unsigned int flags)
{
	char out[256];
	size_t len = 999;
	int r = mutf7_decode(in, strlen(in), flags, out, sizeof(out), &len);

	if (r != 0)
		fail_msg("decode \"%s\" failed: %d", in, r);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(mutf7_check(in, strlen(in), flags), 0);
}

static void
expect_bad(const char *in, size_t len, unsigned int flags)
{
	char out[256];

	if (mutf7_decode(in, len, flags, out, sizeof(out), NULL) != -EINVAL)
		fail_msg("decode accepted \"%.*s\"", (int)len, in);
	assert_int_equal(mutf7_check(in, len, flags), -EINVAL);
}

static void
expect_encode(const char *in, const char *want, unsigned int flags)
{
	char out[256];
	size_t len = 999;
	int r = mutf7_encode(in, strlen(in), flags, out, sizeof(out), &len);

	if (r != 0)
		fail_msg("encode \"%s\" failed: %d", in, r);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void
expect_encode_bad(const char *in, size_t len, unsigned int flags)
{
	char out[256];

	if (mutf7_encode(in, len, flags, out, sizeof(out), NULL) != -EINVAL)
		fail_msg("encode accepted input of %zu bytes", len);
}

static void
test_decode_known(void **state)
{
	(void)state;
	expect_decode("", "", 0);
	expect_decode("INBOX", "INBOX", 0);
	expect_decode("Sent Messages", "Sent Messages", 0);
	expect_decode("&-", "&", 0);
	expect_decode("a&-b&-", "a&b&", 0);
	expect_decode("&--", "&-", 0);
	expect_decode("&AOk-", "\xc3\xa9", 0);
	expect_decode("Entw&APw-rfe", "Entw\xc3\xbcrfe", 0);
	/* The example of RFC 3501 5.1.3. */
	expect_decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	    "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0);
	/* A character outside the BMP: a surrogate pair in one run. */
	expect_decode("&2D3eAA-", "\xf0\x9f\x98\x80", 0);
	/* A run, then a literal '&' right after it, is fine. */
	expect_decode("&AOk-&-", "\xc3\xa9&", 0);
	expect_decode("&AOk-x&AOk-", "\xc3\xa9x\xc3\xa9", 0);
	/* Control characters are representable unless the flag refuses them. */
	expect_decode("&AAo-", "\n", 0);
	expect_decode("a&AH8-", "a\x7f", 0);
}

static void
test_decode_invalid(void **state)
{
	(void)state;
	/* unterminated shifts */
	expect_bad("&", 1, 0);
	expect_bad("a&", 2, 0);
	expect_bad("&AOk", 4, 0);
	expect_bad("&U,BTFw", 7, 0);
	/* bytes outside printable US-ASCII */
	expect_bad("\xc3\xa9", 2, 0);
	expect_bad("a\tb", 3, 0);
	expect_bad("a\x7f", 2, 0);
	expect_bad("a\nb", 3, 0);
	expect_bad("a\0b", 3, 0);
	/* characters outside the modified base64 alphabet */
	expect_bad("&A/k-", 5, 0);
	expect_bad("&AO=-", 5, 0);
	expect_bad("&AO k-", 6, 0);
	/* printable ASCII must represent itself: 'a', '&', ' ', '~' encoded */
	expect_bad("&AGE-", 5, 0);
	expect_bad("&ACY-", 5, 0);
	expect_bad("&ACA-", 5, 0);
	expect_bad("&AH4-", 5, 0);
	expect_bad("&AOkAYQ-", 8, 0);
	/* encoded NUL */
	expect_bad("&AAA-", 5, 0);
	/* too many base64 characters, or too few to make a unit */
	expect_bad("&AOkA-", 6, 0);
	expect_bad("&AA-", 4, 0);
	expect_bad("&A-", 3, 0);
	/* non-zero padding bits */
	expect_bad("&AOl-", 5, 0);
	expect_bad("&AOn-", 5, 0);
	/* two runs in a row could have been one */
	expect_bad("&AOk-&AOk-", 10, 0);
	/* unpaired surrogates: lone high, lone low, reversed, high then BMP, split pair */
	expect_bad("&2D0-", 5, 0);
	expect_bad("&3gA-", 5, 0);
	expect_bad("&3gDYPQ-", 8, 0);
	expect_bad("&2D0A6Q-", 8, 0);
	expect_bad("&2D0-&3gA-", 10, 0);
	expect_bad("&2D0-x&3gA-", 11, 0);
	/* controls when refused: LF, DEL, C1 NEL (U+0085) */
	expect_bad("&AAo-", 5, MUTF7_NO_CONTROLS);
	expect_bad("a&AH8-", 6, MUTF7_NO_CONTROLS);
	expect_bad("&AIU-", 5, MUTF7_NO_CONTROLS);
}

static void
test_encode_known(void **state)
{
	(void)state;
	expect_encode("", "", 0);
	expect_encode("INBOX", "INBOX", 0);
	expect_encode("&", "&-", 0);
	expect_encode("a&b", "a&-b", 0);
	expect_encode("\xc3\xa9", "&AOk-", 0);
	expect_encode("\xc3\xa9&", "&AOk-&-", 0);
	expect_encode("Entw\xc3\xbcrfe", "Entw&APw-rfe", 0);
	expect_encode("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-", 0);
	expect_encode("\xf0\x9f\x98\x80", "&2D3eAA-", 0);
	expect_encode("a\x01", "a&AAE-", 0);
	expect_encode("\xc3\xa9\xc3\xa9", "&AOkA6Q-", 0);
}

static void
test_encode_invalid(void **state)
{
	(void)state;
	expect_encode_bad("\xc0\xaf", 2, 0);		/* overlong '/' */
	expect_encode_bad("\xc1\xbf", 2, 0);
	expect_encode_bad("\xe0\x80\xaf", 3, 0);	/* overlong 3-byte */
	expect_encode_bad("\xf0\x80\x80\xaf", 4, 0);	/* overlong 4-byte */
	expect_encode_bad("\xed\xa0\x80", 3, 0);	/* UTF-8 encoded surrogate */
	expect_encode_bad("\xed\xbf\xbf", 3, 0);
	expect_encode_bad("\xf4\x90\x80\x80", 4, 0);	/* above U+10FFFF */
	expect_encode_bad("\xf5\x80\x80\x80", 4, 0);
	expect_encode_bad("\xc3", 1, 0);		/* truncated */
	expect_encode_bad("a\xe6\x97", 3, 0);
	expect_encode_bad("\x80", 1, 0);		/* stray continuation */
	expect_encode_bad("\xc3\x28", 2, 0);		/* bad continuation */
	expect_encode_bad("\xff", 1, 0);
	expect_encode_bad("a\0b", 3, 0);		/* NUL */
	expect_encode_bad("a\nb", 3, MUTF7_NO_CONTROLS);
	expect_encode_bad("\xc2\x85", 2, MUTF7_NO_CONTROLS);
	expect_encode_bad("\x7f", 1, MUTF7_NO_CONTROLS);
}

static size_t
put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | (cp >> 6));
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | (cp >> 12));
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | (cp >> 18));
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void
roundtrip(const char *u, size_t ulen)
{
	char m[1024], back[1024], again[1024];
	size_t mlen, blen, alen;

	assert_int_equal(mutf7_encode(u, ulen, 0, m, sizeof(m), &mlen), 0);
	assert_int_equal(mutf7_decode(m, mlen, 0, back, sizeof(back), &blen), 0);
	assert_int_equal(blen, ulen);
	assert_memory_equal(back, u, ulen);
	/* and the other way: the encoding is the only valid one */
	assert_int_equal(mutf7_encode(back, blen, 0, again, sizeof(again), &alen), 0);
	assert_int_equal(alen, mlen);
	assert_memory_equal(again, m, mlen);
	assert_true(mlen + 1 <= MUTF7_ENCODE_SIZE(ulen));
}

static void
test_roundtrip_codespace(void **state)
{
	(void)state;
	/* every code point alone, between ASCII, and in runs of 1..4 (all bit alignments) */
	for (uint32_t cp = 1; cp <= 0x10ffff; cp += (cp < 0x3000 ? 1 : 37)) {
		char u[64];
		size_t n = 0;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = put_utf8(u, cp);
		roundtrip(u, n);
		n = 0;
		u[n++] = 'x';
		n += put_utf8(u + n, cp);
		u[n++] = 'y';
		n += put_utf8(u + n, cp);
		uint32_t other = cp ^ 0x1;
		if (other == 0 || (other >= 0xd800 && other <= 0xdfff))
			other = 0xe9;
		n += put_utf8(u + n, other);
		n += put_utf8(u + n, 0x10000 + cp % 0x100000);
		u[n++] = '&';
		roundtrip(u, n);
	}
}

static void
test_bounds(void **state)
{
	char out[16];
	size_t len;

	(void)state;
	/* exact fit, one short */
	assert_int_equal(mutf7_encode("\xc3\xa9", 2, 0, out, 6, &len), 0);
	assert_string_equal(out, "&AOk-");
	assert_int_equal(mutf7_encode("\xc3\xa9", 2, 0, out, 5, &len), -ENOSPC);
	assert_int_equal(mutf7_decode("&AOk-", 5, 0, out, 3, &len), 0);
	assert_int_equal(mutf7_decode("&AOk-", 5, 0, out, 2, &len), -ENOSPC);
	assert_int_equal(mutf7_decode("abc", 3, 0, out, 0, &len), -ENOSPC);
	/* NULL output only measures */
	assert_int_equal(mutf7_decode("&AOk-x", 6, 0, NULL, 0, &len), 0);
	assert_int_equal(len, 3);
	assert_int_equal(mutf7_encode("\xc3\xa9x", 3, 0, NULL, 0, &len), 0);
	assert_int_equal(len, 6);
	/* decoding a long run of 3-byte characters lengthens the text; the bound holds */
	char run[1 + 8 * 40 + 2];
	char dec[MUTF7_DECODE_SIZE(sizeof(run) - 1)];
	run[0] = '&';
	for (size_t i = 0; i < 8 * 40; i++)
		run[1 + i] = "+++2D++2"[i % 8];	/* U+FBEF U+B60F U+EFB6 repeated */
	run[sizeof(run) - 2] = '-';
	run[sizeof(run) - 1] = '\0';
	assert_int_equal(mutf7_decode(run, sizeof(run) - 1, 0, dec, sizeof(dec), &len), 0);
	assert_int_equal(len, 3 * 8 * 40 * 6 / 16);
	assert_true(len > sizeof(run) - 1);
	/* the documented worst case of encoding is reached and suffices */
	char worst[] = "\x01" "a\x01" "a\x01";
	char big[MUTF7_ENCODE_SIZE(sizeof(worst) - 1)];
	assert_int_equal(mutf7_encode(worst, sizeof(worst) - 1, 0, big, sizeof(big), &len), 0);
	assert_int_equal(len, 3 * (sizeof(worst) - 1) + 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_known),
		cmocka_unit_test(test_decode_invalid),
		cmocka_unit_test(test_encode_known),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_roundtrip_codespace),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
