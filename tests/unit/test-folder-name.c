/*
 * test-folder-name.c: mailbox name rules (every refused form, limits at +-1) and the LIST
 * pattern matcher ('*' and '%' at every position, pathological patterns, incremental
 * matching), cross-checked against a slow reference matcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "mbox/folder.h"

static enum folder_status
parse(const char *name, unsigned int flags, struct folder_name *fn)
{
	struct folder_error err;
	enum folder_status s = folder_name_parse(name, strlen(name), flags, fn, &err);

	if (s != FOLDER_OK) {
		assert_int_equal(err.status, s);
		assert_true(err.msg[0] != '\0');
	}
	return s;
}

static void
expect_name(const char *name, unsigned int flags, const char *canon, bool dir,
    unsigned int depth)
{
	struct folder_name fn;

	if (parse(name, flags, &fn) != FOLDER_OK)
		fail_msg("refused \"%s\"", name);
	assert_string_equal(fn.name, canon);
	assert_int_equal(fn.len, strlen(canon));
	assert_int_equal(fn.dir, dir);
	assert_int_equal(fn.depth, depth);
}

static void
expect_refused(const char *name, unsigned int flags, enum folder_status want)
{
	struct folder_name fn;
	enum folder_status s = parse(name, flags, &fn);

	if (s != want)
		fail_msg("\"%s\": got %d (%s), want %d", name, s, folder_strerror(s), want);
}

static void
test_names_ok(void **state)
{
	struct folder_name fn;

	(void)state;
	expect_name("INBOX", 0, "INBOX", false, 1);
	expect_name("inbox", 0, "INBOX", false, 1);
	expect_name("InBoX", 0, "INBOX", false, 1);
	assert_int_equal(parse("iNbOx", 0, &fn), FOLDER_OK);
	assert_true(fn.inbox);
	expect_name("Sent", 0, "Sent", false, 1);
	expect_name("INBOXES", 0, "INBOXES", false, 1);
	expect_name("a/b/c", 0, "a/b/c", false, 3);
	expect_name("a/b/", FOLDER_NAME_DIR_OK, "a/b", true, 2);
	expect_name("Entw&APw-rfe", 0, "Entw&APw-rfe", false, 1);
	expect_name("a&-b", 0, "a&-b", false, 1);
	expect_name("Sent Messages", 0, "Sent Messages", false, 1);
	expect_name("x/~y", 0, "x/~y", false, 2);
	expect_name("x/#y", 0, "x/#y", false, 2);
	expect_name("a.b/c..d/e.", 0, "a.b/c..d/e.", false, 3);
	expect_name("lock", 0, "lock", false, 1);
	expect_name("a.locks", 0, "a.locks", false, 1);
	/* wildcards are legal in names (RFC 3501 5.1), but not for new ones */
	expect_name("a*b%c", 0, "a*b%c", false, 1);
	assert_false(parse("INBOX", 0, &fn) != FOLDER_OK || fn.dir);
}

static void
test_names_refused(void **state)
{
	(void)state;
	expect_refused("", 0, FOLDER_EBADNAME);
	expect_refused("/", FOLDER_NAME_DIR_OK, FOLDER_EBADNAME);
	expect_refused("/etc/passwd", 0, FOLDER_EBADNAME);
	expect_refused("//x", 0, FOLDER_EBADNAME);
	expect_refused("~root/mail", 0, FOLDER_EBADNAME);
	expect_refused("~/x", 0, FOLDER_EBADNAME);
	expect_refused("~", 0, FOLDER_EBADNAME);
	expect_refused("#news.comp", 0, FOLDER_EBADNAME);
	expect_refused("..", 0, FOLDER_EBADNAME);
	expect_refused(".", 0, FOLDER_EBADNAME);
	expect_refused("../x", 0, FOLDER_EBADNAME);
	expect_refused("a/../../x", 0, FOLDER_EBADNAME);
	expect_refused("a/..", 0, FOLDER_EBADNAME);
	expect_refused("a/./b", 0, FOLDER_EBADNAME);
	expect_refused("a/.", 0, FOLDER_EBADNAME);
	expect_refused("a/../", FOLDER_NAME_DIR_OK, FOLDER_EBADNAME);
	expect_refused("a//b", 0, FOLDER_EBADNAME);
	expect_refused("a//", FOLDER_NAME_DIR_OK, FOLDER_EBADNAME);
	expect_refused("a/", 0, FOLDER_EBADNAME);		/* trailing '/' not wanted */
	expect_refused("a\rb", 0, FOLDER_EBADNAME);
	expect_refused("a\nb", 0, FOLDER_EBADNAME);
	expect_refused("a\tb", 0, FOLDER_EBADNAME);
	expect_refused("a\x01", 0, FOLDER_EBADNAME);
	expect_refused("a\x7f", 0, FOLDER_EBADNAME);
	expect_refused("caf\xc3\xa9", 0, FOLDER_EBADNAME);	/* raw UTF-8 */
	expect_refused("a&", 0, FOLDER_EBADNAME);		/* bad modified UTF-7 */
	expect_refused("&AGE-", 0, FOLDER_EBADNAME);
	expect_refused("&AOk-&AOk-", 0, FOLDER_EBADNAME);
	expect_refused("&2D0-", 0, FOLDER_EBADNAME);
	expect_refused("&AAo-", 0, FOLDER_EBADNAME);		/* encoded LF */
	expect_refused("&AA0-", 0, FOLDER_EBADNAME);		/* encoded CR */
	expect_refused("&AIU-", 0, FOLDER_EBADNAME);		/* encoded C1 control */
	expect_refused(".hidden", 0, FOLDER_EBADNAME);
	expect_refused("a/.subscriptions", 0, FOLDER_EBADNAME);
	expect_refused("Sent.lock", 0, FOLDER_EBADNAME);
	expect_refused("a/b.lock/c", 0, FOLDER_EBADNAME);
	expect_refused("INBOX/child", 0, FOLDER_ECANNOT);
	expect_refused("inbox/child", 0, FOLDER_ECANNOT);
	expect_refused("INBOX/", FOLDER_NAME_DIR_OK, FOLDER_ECANNOT);
	expect_refused("a*b", FOLDER_NAME_CREATE, FOLDER_EBADNAME);
	expect_refused("a%b", FOLDER_NAME_CREATE, FOLDER_EBADNAME);

	/* NUL inside the counted bytes */
	struct folder_name fn;
	assert_int_equal(folder_name_parse("a\0b", 3, 0, &fn, NULL), FOLDER_EBADNAME);
}

static void
test_name_limits(void **state)
{
	char buf[FOLDER_NAME_MAX + 64];
	struct folder_name fn;

	(void)state;
	/* one component: FOLDER_COMPONENT_MAX fits, one more does not */
	memset(buf, 'a', FOLDER_COMPONENT_MAX);
	assert_int_equal(folder_name_parse(buf, FOLDER_COMPONENT_MAX, 0, &fn, NULL), FOLDER_OK);
	memset(buf, 'a', FOLDER_COMPONENT_MAX + 1);
	assert_int_equal(folder_name_parse(buf, FOLDER_COMPONENT_MAX + 1, 0, &fn, NULL),
	    FOLDER_ETOOLONG);

	/* total: FOLDER_NAME_MAX fits, one more does not (components of 3 + '/') */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = i % 40 == 39 ? '/' : 'b';
	size_t n = FOLDER_NAME_MAX;
	if (buf[n - 1] == '/')
		buf[n - 1] = 'b';
	assert_int_equal(folder_name_parse(buf, n, 0, &fn, NULL), FOLDER_OK);
	assert_int_equal(fn.len, FOLDER_NAME_MAX);
	buf[n] = 'b';
	assert_int_equal(folder_name_parse(buf, n + 1, 0, &fn, NULL), FOLDER_ETOOLONG);
	/* a trailing '/' does not count against the limit */
	buf[n] = '/';
	assert_int_equal(folder_name_parse(buf, n + 1, FOLDER_NAME_DIR_OK, &fn, NULL),
	    FOLDER_OK);

	/* depth */
	size_t k = 0;
	for (unsigned int d = 0; d < FOLDER_DEPTH_MAX; d++) {
		buf[k++] = 'x';
		buf[k++] = '/';
	}
	assert_int_equal(folder_name_parse(buf, k - 1, 0, &fn, NULL), FOLDER_OK);
	assert_int_equal(fn.depth, FOLDER_DEPTH_MAX);
	buf[k++] = 'x';
	assert_int_equal(folder_name_parse(buf, k, 0, &fn, NULL), FOLDER_ETOOLONG);
}

static void
test_hidden(void **state)
{
	(void)state;
	assert_true(folder_component_hidden(".subscriptions", 14));
	assert_true(folder_component_hidden(".", 1));
	assert_true(folder_component_hidden("Sent.lock", 9));
	assert_true(folder_component_hidden(".lock", 5));
	assert_false(folder_component_hidden("Sent", 4));
	assert_false(folder_component_hidden("lock", 4));
	assert_false(folder_component_hidden("a.lockx", 7));
}

/* ---- patterns ---- */

/* Slow reference: plain recursion (fine for the short strings used here). */
static bool
ref_match(const char *p, const char *n)
{
	if (*p == '\0')
		return *n == '\0';
	if (*p == '*') {
		for (const char *q = n;; q++) {
			if (ref_match(p + 1, q))
				return true;
			if (*q == '\0')
				return false;
		}
	}
	if (*p == '%') {
		for (const char *q = n;; q++) {
			if (ref_match(p + 1, q))
				return true;
			if (*q == '\0' || *q == '/')
				return false;
		}
	}
	return *n == *p && ref_match(p + 1, n + 1);
}

static bool
match(const char *ref, const char *pat, const char *name)
{
	struct folder_pattern *p;
	bool r;

	assert_int_equal(folder_pattern_new(ref, strlen(ref), pat, strlen(pat), &p, NULL),
	    FOLDER_OK);
	r = folder_pattern_match(p, name, strlen(name), false);
	folder_pattern_free(&p);
	assert_null(p);
	return r;
}

#define YES(pat, name) assert_true(match("", pat, name))
#define NO(pat, name) assert_false(match("", pat, name))

static void
test_match_positions(void **state)
{
	(void)state;
	/* no wildcard */
	YES("abc", "abc");
	NO("abc", "abd");
	NO("abc", "ab");
	NO("abc", "abcd");
	YES("", "");
	NO("", "a");
	/* '*' at start, middle, end, alone, repeated */
	YES("*", "");
	YES("*", "a/b/c");
	YES("*c", "a/b/c");
	NO("*c", "a/b/cd");
	YES("a*", "a/b");
	YES("a*", "a");
	NO("a*", "ba");
	YES("a*c", "a/b/c");
	YES("a*c", "ac");
	NO("a*c", "a/b/cb");
	YES("**", "x/y");
	YES("a**b", "a//b");
	YES("*a*", "xxaxx");
	YES("*/*", "a/b");
	NO("*/*", "ab");
	YES("*b*b*", "abcb");
	NO("*b*b*", "abc");
	/* '%' at start, middle, end, alone, repeated: never crosses '/' */
	YES("%", "abc");
	YES("%", "");
	NO("%", "a/b");
	YES("%c", "abc");
	NO("%c", "a/c");
	YES("a%", "abc");
	NO("a%", "a/b");
	YES("a%c", "abc");
	NO("a%c", "a/c");
	YES("%/%", "a/b");
	NO("%/%", "a/b/c");
	YES("%/%/%", "a/b/c");
	YES("%%", "ab");
	NO("%%", "a/b");
	YES("a/%", "a/b");
	NO("a/%", "a/b/c");
	NO("a/%", "a");
	YES("%/", "a/");
	/* mixed */
	YES("%*", "a/b");
	YES("*%", "a/b");
	YES("%/*", "a/b/c");
	NO("%/*", "ab");
	YES("*/%", "a/b/c");
	YES("a%*c", "ab/xc");
	YES("a*%c", "a/bc");
	/* wildcards against literal wildcard characters in names */
	YES("a*", "a*b");
	YES("a%b", "a%b");
	/* case matters except for INBOX (folded by the caller) */
	NO("inbox", "INBOX");
}

static void
test_match_reference(void **state)
{
	(void)state;
	assert_true(match("a/", "%", "a/b"));
	assert_false(match("a/", "%", "b"));
	assert_true(match("a/", "*", "a/b/c"));
	assert_true(match("a", "/b", "/b"));		/* leading '/': reference ignored */
	assert_false(match("a", "/b", "a/b"));
	assert_true(match("foo", "bar", "foobar"));	/* plain concatenation */
	assert_true(match("~smith/Mail/", "foo.*", "~smith/Mail/foo.x"));
}

static void
test_match_fold(void **state)
{
	struct folder_pattern *p;

	(void)state;
	assert_int_equal(folder_pattern_new("", 0, "inbox", 5, &p, NULL), FOLDER_OK);
	assert_true(folder_pattern_match(p, "INBOX", 5, true));
	assert_false(folder_pattern_match(p, "INBOX", 5, false));
	folder_pattern_free(&p);
	assert_int_equal(folder_pattern_new("", 0, "In%", 3, &p, NULL), FOLDER_OK);
	assert_true(folder_pattern_match(p, "INBOX", 5, true));
	folder_pattern_free(&p);
	assert_int_equal(folder_pattern_new("", 0, "x%", 2, &p, NULL), FOLDER_OK);
	assert_false(folder_pattern_match(p, "INBOX", 5, true));
	folder_pattern_free(&p);
	/* the INBOX rule: a leading "inbox" in any case, else the name as written */
	static const struct {
		const char *pat;
		bool want;
	} cases[] = {
		{ "inbox", true }, { "INBOX", true }, { "InBoX*", true }, { "inbox%", true },
		{ "I*", true }, { "*", true }, { "%", true }, { "*X", true },
		{ "in*", false }, { "*i*", false }, { "inbo", false }, { "inboxes", false },
		{ "inbox/%", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(folder_pattern_new("", 0, cases[i].pat, strlen(cases[i].pat),
		    &p, NULL), FOLDER_OK);
		if (folder_pattern_match_inbox(p) != cases[i].want)
			fail_msg("pattern \"%s\" against INBOX", cases[i].pat);
		folder_pattern_free(&p);
	}
}

static void
test_match_random(void **state)
{
	static const char alpha[] = "ab/*%";
	unsigned int seed = 12345;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		char pat[12], name[12];
		size_t pl = (size_t)(rand_r(&seed) % 9), nl = (size_t)(rand_r(&seed) % 10);

		for (size_t i = 0; i < pl; i++)
			pat[i] = alpha[rand_r(&seed) % 5];
		pat[pl] = '\0';
		for (size_t i = 0; i < nl; i++)
			name[i] = alpha[rand_r(&seed) % 3];
		name[nl] = '\0';
		if (match("", pat, name) != ref_match(pat, name))
			fail_msg("pattern \"%s\" name \"%s\": want %d", pat, name,
			    ref_match(pat, name));
	}
}

static void
test_match_pathological(void **state)
{
	char pat[FOLDER_PATTERN_MAX + 1], name[FOLDER_NAME_MAX + 1];
	struct folder_pattern *p;
	size_t k = 0;
	clock_t t0;

	(void)state;
	/* "*a*a*a...*b" and "%a%a...%b" against a long run of 'a': exponential for backtracking */
	while (k + 2 < 400) {
		pat[k++] = '*';
		pat[k++] = 'a';
	}
	pat[k++] = 'b';
	memset(name, 'a', FOLDER_NAME_MAX);
	t0 = clock();
	assert_int_equal(folder_pattern_new("", 0, pat, k, &p, NULL), FOLDER_OK);
	for (int i = 0; i < 100; i++)
		assert_false(folder_pattern_match(p, name, FOLDER_NAME_MAX, false));
	folder_pattern_free(&p);
	for (size_t i = 0; i + 1 < k; i += 2)
		pat[i] = '%';
	assert_int_equal(folder_pattern_new("", 0, pat, k, &p, NULL), FOLDER_OK);
	for (int i = 0; i < 100; i++)
		assert_false(folder_pattern_match(p, name, FOLDER_NAME_MAX, false));
	folder_pattern_free(&p);
	/* 200 matches of a 1024-byte name against a 400-element pattern: well under a second */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);

	/* the combined length limit, +-1 */
	memset(pat, '*', sizeof(pat));
	assert_int_equal(folder_pattern_new(pat, FOLDER_NAME_MAX, pat, FOLDER_PATTERN_MAX -
	    FOLDER_NAME_MAX, &p, NULL), FOLDER_OK);
	assert_true(folder_pattern_match(p, "x", 1, false));
	folder_pattern_free(&p);
	assert_int_equal(folder_pattern_new(pat, FOLDER_NAME_MAX, pat, FOLDER_PATTERN_MAX -
	    FOLDER_NAME_MAX + 1, &p, NULL), FOLDER_ETOOLONG);
	assert_null(p);
	/* a long literal pattern crosses 64-bit word boundaries */
	memset(pat, 'q', 300);
	memcpy(name, pat, 300);
	assert_int_equal(folder_pattern_new("", 0, pat, 300, &p, NULL), FOLDER_OK);
	assert_true(folder_pattern_match(p, name, 300, false));
	name[130] = 'r';
	assert_false(folder_pattern_match(p, name, 300, false));
	assert_false(folder_pattern_match(p, name, 299, false));
	folder_pattern_free(&p);
}

static void
test_match_incremental(void **state)
{
	struct folder_pattern *p;
	struct folder_pstate *st, *st2;

	(void)state;
	assert_int_equal(folder_pattern_new("", 0, "a/%/c", 5, &p, NULL), FOLDER_OK);
	st = folder_pstate_new(p);
	st2 = folder_pstate_new(p);
	assert_non_null(st);
	folder_pstate_feed(st, "a", 1, false);
	assert_false(folder_pstate_accepts(st));
	assert_false(folder_pstate_dead(st));
	folder_pstate_feed(st, "/", 1, false);
	folder_pstate_copy(st2, st);
	folder_pstate_feed(st, "bb/c", 4, false);
	assert_true(folder_pstate_accepts(st));
	folder_pstate_feed(st, "/", 1, false);
	assert_true(folder_pstate_dead(st));
	/* the copy is independent */
	folder_pstate_feed(st2, "x/y", 3, false);
	assert_false(folder_pstate_accepts(st2));
	assert_true(folder_pstate_dead(st2));
	folder_pstate_free(&st);
	folder_pstate_free(&st2);
	assert_null(st);
	folder_pattern_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_ok),
		cmocka_unit_test(test_names_refused),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_hidden),
		cmocka_unit_test(test_match_positions),
		cmocka_unit_test(test_match_reference),
		cmocka_unit_test(test_match_fold),
		cmocka_unit_test(test_match_random),
		cmocka_unit_test(test_match_pathological),
		cmocka_unit_test(test_match_incremental),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
