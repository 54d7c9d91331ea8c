/* SASL PLAIN pieces: strict base64 and the authzid/authcid/passwd split (RFC 4616). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

static long
dec(const char *s, unsigned char *out)
{
	return auth_base64_decode(s, strlen(s), out, 64);
}

static void
test_base64(void **state)
{
	unsigned char out[64];

	(void)state;
	assert_int_equal(dec("", out), 0);
	assert_int_equal(dec("Zg==", out), 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(dec("Zm8=", out), 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(dec("Zm9v", out), 3);
	assert_int_equal(dec("AGZyZWQAc2VjcmV0", out), 12);
	assert_memory_equal(out, "\0fred\0secret", 12);
	/* Refused: bad length, stray characters, padding in the middle, "x=y=", spaces. */
	assert_int_equal(dec("Zg=", out), -1);
	assert_int_equal(dec("Zm9v!", out), -1);
	assert_int_equal(dec("Zm9*", out), -1);
	assert_int_equal(dec("Zg==Zm9v", out), -1);
	assert_int_equal(dec("Zg=v", out), -1);
	assert_int_equal(dec("Zm 9", out), -1);
	assert_int_equal(dec("====", out), -1);
	/* Too small a destination is refused, not overrun. */
	assert_int_equal(auth_base64_decode("Zm9vYmFy", 8, out, 5), -1);
}

static void
test_plain_split(void **state)
{
	char m[64];
	const char *z, *c, *p;

	(void)state;
	memcpy(m, "\0fred\0secret", 12);
	assert_int_equal(auth_sasl_plain_split(m, 12, &z, &c, &p), 0);
	assert_string_equal(z, "");
	assert_string_equal(c, "fred");
	assert_string_equal(p, "secret");
	memcpy(m, "admin\0fred\0pw", 13);
	assert_int_equal(auth_sasl_plain_split(m, 13, &z, &c, &p), 0);
	assert_string_equal(z, "admin");
	/* One NUL, three NULs, empty user, empty password. */
	memcpy(m, "fred\0secret", 11);
	assert_int_equal(auth_sasl_plain_split(m, 11, &z, &c, &p), -1);
	memcpy(m, "\0fred\0sec\0ret", 13);
	assert_int_equal(auth_sasl_plain_split(m, 13, &z, &c, &p), -1);
	memcpy(m, "\0\0secret", 8);
	assert_int_equal(auth_sasl_plain_split(m, 8, &z, &c, &p), -1);
	memcpy(m, "\0fred\0", 6);
	assert_int_equal(auth_sasl_plain_split(m, 6, &z, &c, &p), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_plain_split),
	};

	return cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
}
