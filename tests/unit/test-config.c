/* Settings: defaults, the file format, every kind of bad value; and log escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imapd/config.h"
#include "imapd/limits.h"
#include "imapd/log.h"

static int
load_text(struct config *c, const char *text, char *err, size_t errsize)
{
	char path[] = "/tmp/imapd-test-conf-XXXXXX";
	int fd = mkstemp(path), r;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	r = config_load(c, path, 0, err, errsize);
	unlink(path);
	return r;
}

static void
test_defaults(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_string_equal(c.pam_service, "imap");
	assert_string_equal(c.spool_dir, "/var/mail");
	assert_string_equal(c.mail_dir, "mail");
	assert_string_equal(c.plaintext_auth, "loopback");
	assert_int_equal(c.timeout_preauth, IMAPD_TIMEOUT_PREAUTH);
	assert_true(c.timeout_auth >= 30 * 60);
	assert_int_equal(c.condstore, 1);
}

static void
test_file(void **state)
{
	struct config c;
	char err[256];

	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c, "# comment\n\n pam_service = imap2 # trailing\n"
				   "spool_dir=/srv/mail\nappend_max = 10M\n"
				   "plaintext_auth = never\nimplicit_tls = yes\ncondstore = no\n",
				   err, sizeof(err)), 0);
	assert_string_equal(c.pam_service, "imap2");
	assert_string_equal(c.spool_dir, "/srv/mail");
	assert_int_equal(c.append_max, 10 * 1024 * 1024);
	assert_string_equal(c.plaintext_auth, "never");
	assert_int_equal(c.implicit_tls, 1);
	assert_int_equal(c.condstore, 0);
	/* A missing file is an error unless allowed. */
	assert_int_equal(config_load(&c, "/nonexistent/imapd.conf", 1, err, sizeof(err)), 0);
	assert_int_equal(config_load(&c, "/nonexistent/imapd.conf", 0, err, sizeof(err)), -1);
}

static void
test_bad_values(void **state)
{
	struct config c;
	char err[256];

	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c, "spool_dr = /x\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: unknown setting \"spool_dr\""));
	assert_int_equal(load_text(&c, "\n\nno equals sign\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":3: expected"));
	/* RFC 3501 5.4: the autologout timer is at least 30 minutes. */
	assert_int_equal(config_set(&c, "timeout", "1799", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "timeout", "1800", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "timeout_preauth", "60s", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "timeout_preauth", "-1", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "login_failures_max", "0", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "login_failures_max", "99999999999999999999", err,
				    sizeof(err)), -1);
	assert_int_equal(config_set(&c, "append_max", "5Q", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "append_max", "99999999999G", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "plaintext_auth", "loop", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "plaintext_auth", "", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "implicit_tls", "maybe", err, sizeof(err)), -1);
	{
		char big[CONFIG_STR_MAX + 10];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(config_set(&c, "spool_dir", big, err, sizeof(err)), -1);
	}
	/* A failed setting leaves the old value. */
	assert_string_equal(c.plaintext_auth, "loopback");
}

static void
test_log_escape(void **state)
{
	char out[32];

	(void)state;
	assert_string_equal(log_escape(out, sizeof(out), "fred", 4), "fred");
	assert_string_equal(log_escape(out, sizeof(out), "a\r\nb\"\\", 6),
			    "a\\x0d\\x0ab\\x22\\x5c");
	assert_string_equal(log_escape(out, sizeof(out), "\xc3\xa9\0", 3), "\\xc3\\xa9\\x00");
	/* Too long: cut, marked, always terminated within the buffer. */
	log_escape(out, sizeof(out), "0123456789012345678901234567890123456789", 40);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + strlen(out) - 3, "...");
	log_escape(out, 8, "\x01\x02\x03\x04", 4);
	assert_true(strlen(out) < 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_log_escape),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
