/*
 * test-address.c: RFC 5322 address lists as ENVELOPE sees them: groups, route addresses,
 * quoted local parts, comments, obsolete syntax and malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mbox/address.h"

/* Render a list as "name|route|mailbox|host" entries joined by " ; ", NIL for NULL. */
static char *
render(const char *in)
{
	struct addr_list l;
	size_t i, cap = 64 + 8 * strlen(in) + 64 * 8, n = 0;
	char *out = malloc(cap);

	addr_parse(in, strlen(in), &l);
	out[0] = '\0';
	for (i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];

		n += (size_t)snprintf(out + n, cap - n, "%s%s|%s|%s|%s", i > 0 ? " ; " : "",
				      a->name ? a->name : "NIL", a->route ? a->route : "NIL",
				      a->mailbox ? a->mailbox : "NIL", a->host ? a->host : "NIL");
		assert_true(n < cap);
	}
	addr_list_free(&l);
	return out;
}

static void
expect(const char *in, const char *want)
{
	char *got = render(in);

	assert_string_equal(got, want);
	free(got);
}

static void
test_simple(void **state)
{
	(void)state;
	expect("user@example.com", "NIL|NIL|user|example.com");
	expect("  user @ example . com  ", "NIL|NIL|user|example.com");
	expect("John Doe <jd@example.com>", "John Doe|NIL|jd|example.com");
	expect("\"Doe, John\" <jd@example.com>, x@y", "Doe, John|NIL|jd|example.com ; NIL|NIL|x|y");
	expect("<jd@example.com>", "NIL|NIL|jd|example.com");
	expect("", "");
	expect(" , ,, ", "");
}

static void
test_groups(void **state)
{
	(void)state;
	expect("undisclosed-recipients:;", "NIL|NIL|undisclosed-recipients|NIL ; NIL|NIL|NIL|NIL");
	expect("Friends: a@b, \"C D\" <c@d>; e@f",
	       "NIL|NIL|Friends|NIL ; NIL|NIL|a|b ; C D|NIL|c|d ; NIL|NIL|NIL|NIL ; "
	       "NIL|NIL|e|f");
	/* unterminated group is closed at the end */
	expect("List: a@b", "NIL|NIL|List|NIL ; NIL|NIL|a|b ; NIL|NIL|NIL|NIL");
	expect("A Group:;", "NIL|NIL|A Group|NIL ; NIL|NIL|NIL|NIL");
}

static void
test_route(void **state)
{
	(void)state;
	expect("<@relay.example,@other.example:user@host.example>",
	       "NIL|@relay.example,@other.example|user|host.example");
	expect("Name <@a:u@h>", "Name|@a|u|h");
}

static void
test_quoted_local(void **state)
{
	(void)state;
	expect("\"john doe\"@example.com", "NIL|NIL|john doe|example.com");
	expect("\"a\\\"b\"@c", "NIL|NIL|a\"b|c");
	expect("first.last@[192.0.2.1]", "NIL|NIL|first.last|[192.0.2.1]");
}

static void
test_comments(void **state)
{
	(void)state;
	expect("jd@example.com (John Doe)", "John Doe|NIL|jd|example.com");
	expect("jd(comment)@example.com", "comment|NIL|jd|example.com");
	expect("John (middle) Doe <jd@example.com> (trailing)", "John Doe|NIL|jd|example.com");
	expect("x@y (a (nested) comment)", "a (nested) comment|NIL|x|y");
}

static void
test_encoded_words_stay(void **state)
{
	(void)state;
	expect("=?UTF-8?Q?J=C3=B6rg?= <j@x>", "=?UTF-8?Q?J=C3=B6rg?=|NIL|j|x");
}

static void
test_malformed(void **state)
{
	(void)state;
	expect("foo", "NIL|NIL|foo|MISSING_DOMAIN");
	expect("@example.com", "NIL|NIL|MISSING_MAILBOX|example.com");
	expect("user@", "NIL|NIL|user|MISSING_DOMAIN");
	expect("Name <user@host", "Name|NIL|user|SYNTAX_ERROR");
	expect("<>", "NIL|NIL|MISSING_MAILBOX|MISSING_DOMAIN");
	expect("a@b@c, d@e", "NIL|NIL|a|b ; NIL|NIL|d|e");
	expect(">>><<<", "");
	expect("\"unterminated", "NIL|NIL|unterminated|MISSING_DOMAIN");
	expect("(unterminated comment", "");
	expect(";;;", "");
	expect("a: b: c@d;", "NIL|NIL|a|NIL ; NIL|NIL|c|d ; NIL|NIL|NIL|NIL");
}

static void
test_limit(void **state)
{
	size_t n = ADDR_MAX_COUNT + 50, i, cap = n * 8 + 16, len = 0;
	char *s = malloc(cap);
	struct addr_list l;

	(void)state;
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "a%zu@b,", i % 100);
	addr_parse(s, len, &l);
	assert_int_equal(l.n, ADDR_MAX_COUNT);
	assert_true(l.truncated);
	addr_list_free(&l);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_quoted_local),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_encoded_words_stay),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
