/* The command parser: arguments, limits at and one over, literals, errors, sequence sets.
 * Every input is also fed byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "imapd/limits.h"
#include "imapd/parser.h"
#include "tests/unit/memio.h"

struct fx {
	struct memio m;
	struct io *io;
	struct parser *p;
};

static const struct parser_limits small = {
	.line_max = 64,
	.literal_max = 16,
	.command_max = 4096,
	.args_max = 100,
	.depth_max = 4,
	.discard_max = 1000,
};

static void
fx_open(struct fx *f, const char *in, size_t len, size_t chunk, const struct parser_limits *l)
{
	f->io = memio_new(&f->m, in, len, chunk);
	assert_non_null(f->io);
	f->p = parser_new(f->io);
	assert_non_null(f->p);
	if (l != NULL)
		parser_set_limits(f->p, l);
}

static void
fx_close(struct fx *f)
{
	parser_free(&f->p);
	io_free(&f->io);
}

/* Renders parsed arguments compactly: atoms bare, strings in quotes, lists in (). */
static void
render(const struct imap_arg *a, char *buf, size_t size)
{
	size_t n = strlen(buf);

	for (; a != NULL; a = a->next) {
		if (n + 1 < size && buf[0] != '\0' && buf[n - 1] != '(')
			buf[n++] = ' ', buf[n] = '\0';
		switch (a->type) {
		case ARG_ATOM:
			snprintf(buf + n, size - n, "%s", a->str);
			break;
		case ARG_STRING:
			snprintf(buf + n, size - n, "%s\"%s\"", a->literal ? "L" : "", a->str);
			break;
		case ARG_LITERAL_SIZE:
			snprintf(buf + n, size - n, "{%llu%s}", (unsigned long long)a->literal_size,
				 a->sync ? "" : "+");
			break;
		case ARG_LIST:
			snprintf(buf + n, size - n, "(");
			render(a->list, buf, size);
			n = strlen(buf);
			snprintf(buf + n, size - n, ")");
			break;
		}
		n = strlen(buf);
	}
}

/* Parses one command from in (with each chunk size) and checks the rendering. */
static void
check_parse(const char *in, const char *tag, const char *name, const char *want)
{
	size_t chunks[] = { 0, 1, 2, 7 };
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct fx f;
		const char *t, *n;
		struct imap_arg *args;
		char got[2048] = "";

		fx_open(&f, in, strlen(in), chunks[i], NULL);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
		assert_string_equal(t, tag);
		assert_string_equal(n, name);
		assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_OK);
		render(args, got, sizeof(got));
		assert_string_equal(got, want);
		assert_true(parser_done(f.p));
		fx_close(&f);
	}
}

/* Expects a syntax error with the given message; returns what the client was sent. */
static void
check_error(const char *in, const struct parser_limits *l, const char *msg,
	    const char *next_tag)
{
	size_t chunks[] = { 0, 1 };
	size_t i;

	for (i = 0; i < 2; i++) {
		struct fx f;
		const char *t, *n;
		struct imap_arg *args;
		enum parse_status st;

		fx_open(&f, in, strlen(in), chunks[i], l);
		st = parser_begin(f.p, &t, &n);
		if (st == PARSE_OK)
			st = parser_read_args(f.p, 0, &args);
		else
			assert_int_equal(parser_discard(f.p), PARSE_OK);
		assert_int_equal(st, PARSE_ERROR);
		assert_string_equal(parser_error(f.p), msg);
		assert_true(parser_done(f.p));
		/* What follows the bad command is read as the next command. */
		if (next_tag != NULL) {
			assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
			assert_string_equal(t, next_tag);
		}
		fx_close(&f);
	}
}

static void
test_atoms_strings_lists(void **state)
{
	(void)state;
	check_parse("a1 NOOP\r\n", "a1", "NOOP", "");
	check_parse("a1 noop\n", "a1", "NOOP", "");
	check_parse("A.2 FETCH 1:* (FLAGS UID)\r\n", "A.2", "FETCH", "1:* (FLAGS UID)");
	check_parse("t LOGIN \"fred\" \"a \\\"q\\\" \\\\ b\"\r\n", "t", "LOGIN",
		    "\"fred\" \"a \"q\" \\ b\"");
	check_parse("t STORE 1 +FLAGS (\\Seen \\Deleted $Junk)\r\n", "t", "STORE",
		    "1 +FLAGS (\\Seen \\Deleted $Junk)");
	check_parse("t X (() (a (b)) \"\")\r\n", "t", "X", "(() (a (b)) \"\")");
	check_parse("t FETCH 1 BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>\r\n", "t",
		    "FETCH", "1 BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>");
	check_parse("t LIST \"\" %\r\n", "t", "LIST", "\"\" %");
	check_parse("t SELECT foo]bar\r\n", "t", "SELECT", "foo]bar");
	/* '[' is an ATOM-CHAR: one no ']' closes does not start a section (RFC 3501 9) */
	check_parse("t SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n", "t", "SELECT",
		    "!#$&'+,-.0123456789:;<=>?@^_`|[}");
	check_parse("t LIST \"\" a[b%*\r\n", "t", "LIST", "\"\" a[b%*");
	check_parse("t X BODY[TEXT\r\n", "t", "X", "BODY[TEXT");
	check_parse("t X a[ (b)\r\n", "t", "X", "a[ (b)");
	check_parse("t NOOP \r\n", "t", "NOOP", "");
	/* 8-bit text in a quoted string is kept as sent (SEARCH CHARSET UTF-8). */
	check_parse("t SEARCH \"\xc3\xa9t\xc3\xa9\"\r\n", "t", "SEARCH", "\"\xc3\xa9t\xc3\xa9\"");
}

static void
test_literals(void **state)
{
	struct fx f;
	const char *t, *n;
	struct imap_arg *args;
	const char *in = "a LOGIN {5}\r\nfr\0ed {3+}\r\npw!\r\nb NOOP\r\n";
	size_t len = 39;
	char got[256] = "";

	(void)state;
	check_parse("a LOGIN {4}\r\nfred {6+}\r\nsecret\r\n", "a", "LOGIN", "L\"fred\" L\"secret\"");
	check_parse("a X ({2}\r\nab {0}\r\n)\r\n", "a", "X", "(L\"ab\" L\"\")");
	/* A synchronising literal is announced with "+"; {n+} is not. */
	fx_open(&f, in, len, 1, NULL);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_OK);
	assert_string_equal(f.m.out, "+ Ready for literal data\r\n");
	assert_int_equal(args->len, 5);
	assert_memory_equal(args->str, "fr\0ed", 5);
	assert_null(arg_cstring(args));
	assert_string_equal(arg_cstring(args->next), "pw!");
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
	/* Literal at exactly the limit is fine; one over is refused without a "+". */
	check_parse("a X {16}\r\n0123456789abcdef\r\n", "a", "X", "L\"0123456789abcdef\"");
	fx_open(&f, "a X {16}\r\n0123456789abcdef\r\n", 28, 0, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_OK);
	fx_close(&f);
	fx_open(&f, "a X {17}\r\nb NOOP\r\n", 18, 0, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_ERROR);
	assert_string_equal(parser_error(f.p), "Literal too large");
	assert_string_equal(f.m.out, "");
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
	render(NULL, got, sizeof(got));
}

/* A refused {n+} literal: its bytes are read and dropped, never run as a command. */
static void
test_refused_nonsync_literal(void **state)
{
	struct fx f;
	const char *t, *n;
	struct imap_arg *args;
	const char *in = "a X {20+}\r\nc LOGOUT\r\nd LOGOUT\r\n\r\nb NOOP\r\n";

	(void)state;
	fx_open(&f, in, strlen(in), 3, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_ERROR);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
	/* Over the discard limit: the session must end. */
	fx_open(&f, "a X {1001+}\r\nxx", 15, 0, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_TOOLONG);
	fx_close(&f);
	/* A syntax error earlier on a line that ends in {n+}: the literal is skipped too. */
	fx_open(&f, "a X ) {5+}\r\nc BAD\r\nb NOOP\r\n", 27, 1, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_ERROR);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
}

static void
test_literal_overflow(void **state)
{
	(void)state;
	check_error("a X {4294967296}\r\nb NOOP\r\n", NULL, "Literal too large", "b");
	check_error("a X {18446744073709551616}\r\nb NOOP\r\n", NULL, "Literal too large", "b");
	check_error("a X {99999999999999999999}\r\nb NOOP\r\n", NULL, "Literal too large", "b");
	check_error("a X {}\r\nb NOOP\r\n", NULL, "Invalid literal", "b");
	check_error("a X {12a}\r\nb NOOP\r\n", NULL, "Invalid literal", "b");
	check_error("a X {3} y\r\nb NOOP\r\n", NULL, "Literal must end the line", "b");
}

static void
test_line_limit(void **state)
{
	char line[200];
	struct fx f;
	const char *t, *n;
	struct imap_arg *args;

	(void)state;
	/* 64 bytes without CRLF is the limit: accepted; 65 is too long. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "a X ", 4);
	memcpy(line + 64, "\r\nb NOOP\r\n", 11);
	fx_open(&f, line, strlen(line), 1, &small);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_OK);
	assert_int_equal(args->len, 60);
	fx_close(&f);
	memset(line, 'x', sizeof(line));
	memcpy(line, "a X ", 4);
	memcpy(line + 65, "\r\nb NOOP\r\n", 11);
	fx_open(&f, line, strlen(line), 1, &small);
	/* answered BAD with its tag; the rest of the line is dropped and the session goes on */
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_ERROR);
	assert_string_equal(t, "a");
	assert_string_equal(parser_error(f.p), "Command line too long");
	assert_int_equal(parser_discard(f.p), PARSE_OK);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	assert_string_equal(n, "NOOP");
	fx_close(&f);
	/* A line with no end at all is cut off at the limit, not buffered for ever: after
	 * discard_max bytes the session ends. */
	{
		static char big[2000];

		memset(big, 'y', sizeof(big));
		fx_open(&f, big, sizeof(big), 0, &small);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_TOOLONG);
		fx_close(&f);
	}
	/* A long line that ends in a non-synchronizing literal: the literal is dropped too */
	{
		char in[300];

		memset(in, 'z', 100);
		memcpy(in, "c APPEND ", 9);
		strcpy(in + 100, " {5+}\r\nhello\r\nd NOOP\r\n");
		fx_open(&f, in, strlen(in), 7, &small);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_ERROR);
		assert_string_equal(t, "c");
		assert_int_equal(parser_discard(f.p), PARSE_OK);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
		assert_string_equal(t, "d");
		fx_close(&f);
		/* a synchronizing one is never sent: the client waits for "+" */
		strcpy(in + 100, " {5}\r\ne NOOP\r\n");
		fx_open(&f, in, strlen(in), 0, &small);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_ERROR);
		assert_int_equal(parser_discard(f.p), PARSE_OK);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
		assert_string_equal(t, "e");
		fx_close(&f);
	}
}

static void
test_nesting_and_args(void **state)
{
	char in[512];
	size_t i;

	(void)state;
	/* depth_max 4: four levels parse, five do not. */
	check_error("a X ((((()))))\r\nb NOOP\r\n", &small, "Too deeply nested", "b");
	{
		struct fx f;
		const char *t, *n;
		struct imap_arg *args;

		fx_open(&f, "a X (((())))\r\n", 14, 0, &small);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
		assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_OK);
		fx_close(&f);
	}
	/* With the real limit, a thousand open parentheses are refused without recursion. */
	snprintf(in, sizeof(in), "a X ");
	for (i = 4; i < 400; i++)
		in[i] = '(';
	snprintf(in + 400, sizeof(in) - 400, "\r\nb NOOP\r\n");
	check_error(in, NULL, "Too deeply nested", "b");
	/* args_max 100: 101 atoms are too many. */
	snprintf(in, sizeof(in), "a X");
	for (i = 0; i < 101; i++)
		strcat(in, " 1");
	strcat(in, "\r\n");
	{
		struct parser_limits l = small;
		struct fx f;
		const char *t, *n;
		struct imap_arg *args;

		l.line_max = 400;
		l.command_max = 65536;
		fx_open(&f, in, strlen(in), 0, &l);
		assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
		assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_ERROR);
		assert_string_equal(parser_error(f.p), "Too many arguments");
		fx_close(&f);
	}
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	check_error("\r\nb NOOP\r\n", NULL, "Empty command line", "b");
	check_error("a\r\nb NOOP\r\n", NULL, "Missing command", "b");
	check_error("+a NOOP\r\nb NOOP\r\n", NULL, "Invalid tag", "b");
	check_error("a* NOOP\r\nb NOOP\r\n", NULL, "Invalid tag", "b");
	check_error("a X \"abc\r\nb NOOP\r\n", NULL, "Unterminated quoted string", "b");
	check_error("a X \"a\\b\"\r\nb NOOP\r\n", NULL, "Invalid escape in quoted string", "b");
	check_error("a X (a b\r\nb NOOP\r\n", NULL, "Missing )", "b");
	check_error("a X a)\r\nb NOOP\r\n", NULL, "Unexpected )", "b");
	check_error("a X  a\r\nb NOOP\r\n", NULL, "Unexpected space", "b");
	check_error("a X \"a\"b\r\nb NOOP\r\n", NULL, "Expected space", "b");
	check_error("a X \x01\r\nb NOOP\r\n", NULL, "Invalid characters in argument", "b");
}

/* NUL inside a quoted string is refused; the line ends at LF, so CR/LF cannot be inside. */
static void
test_nul_in_quoted(void **state)
{
	struct fx f;
	const char *t, *n;
	struct imap_arg *args;
	const char in[] = "a X \"a\0b\"\r\nb NOOP\r\n";

	(void)state;
	fx_open(&f, in, sizeof(in) - 1, 1, NULL);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, 0, &args), PARSE_ERROR);
	assert_string_equal(parser_error(f.p), "NUL in quoted string");
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
	/* A CR alone inside a quoted string is not a line end, and not allowed either. */
	check_error("a X \"a\rb\"\r\nb NOOP\r\n", NULL, "CR or LF in quoted string", "b");
}

static void
test_stream_literal(void **state)
{
	struct fx f;
	const char *t, *n;
	struct imap_arg *args;
	const char *in = "a APPEND INBOX (\\Seen) {5}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n";
	char buf[8];

	(void)state;
	fx_open(&f, in, strlen(in), 1, NULL);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_int_equal(parser_read_args(f.p, PARSE_STREAM, &args), PARSE_LITERAL);
	assert_int_equal(arg_count(args), 3);
	assert_int_equal(args->next->next->type, ARG_LITERAL_SIZE);
	assert_int_equal(args->next->next->literal_size, 5);
	assert_string_equal(f.m.out, "");
	assert_int_equal(parser_literal_accept(f.p), 0);
	assert_string_equal(f.m.out, "+ Ready for literal data\r\n");
	assert_int_equal(io_read_exact(f.io, buf, 5), IO_OK);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(parser_read_args(f.p, PARSE_STREAM, &args), PARSE_LITERAL);
	assert_int_equal(args->literal_size, 3);
	assert_false(args->sync);
	/* Refusing it: the bytes are skipped and the next command is intact. */
	assert_int_equal(parser_discard(f.p), PARSE_OK);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(t, "b");
	fx_close(&f);
}

static void
test_uid_word(void **state)
{
	struct fx f;
	const char *t, *n, *w;

	(void)state;
	fx_open(&f, "a uid fetch 1 FLAGS\r\n", 21, 1, NULL);
	assert_int_equal(parser_begin(f.p, &t, &n), PARSE_OK);
	assert_string_equal(n, "UID");
	assert_int_equal(parser_read_word(f.p, &w), PARSE_OK);
	assert_string_equal(w, "FETCH");
	fx_close(&f);
}

static void
test_seqset(void **state)
{
	struct seqset s;

	(void)state;
	assert_true(seqset_parse("1", &s));
	assert_int_equal(s.n, 1);
	assert_true(seqset_contains(&s, 1, 10));
	assert_false(seqset_contains(&s, 2, 10));
	seqset_clear(&s);
	assert_true(seqset_parse("5:3,10,*", &s));
	assert_int_equal(s.r[0].lo, 3);
	assert_int_equal(s.r[0].hi, 5);
	assert_true(seqset_contains(&s, 4, 20));
	assert_true(seqset_contains(&s, 20, 20));
	assert_false(seqset_contains(&s, 19, 20));
	seqset_clear(&s);
	/* "5:*" when the largest number in use is 3 means 3:5 (RFC 3501 9). */
	assert_true(seqset_parse("5:*", &s));
	assert_true(seqset_contains(&s, 3, 3));
	assert_true(seqset_contains(&s, 4, 3));
	assert_false(seqset_contains(&s, 2, 3));
	seqset_clear(&s);
	assert_true(seqset_parse("4294967294", &s));
	seqset_clear(&s);
	assert_false(seqset_parse("", &s));
	assert_false(seqset_parse("0", &s));
	assert_false(seqset_parse("1,", &s));
	assert_false(seqset_parse(",1", &s));
	assert_false(seqset_parse("1::2", &s));
	assert_false(seqset_parse("1:", &s));
	assert_false(seqset_parse("01", &s));
	/* 4294967295 is a number (nz-number), not '*': "$uidnext:4294967295" asks for
	 * anything new */
	assert_true(seqset_parse("5:4294967295", &s));
	assert_true(seqset_contains(&s, 4294967295u, 7));
	assert_true(seqset_contains(&s, 6, 7));
	assert_false(seqset_contains(&s, 4, 7));
	seqset_clear(&s);
	assert_false(seqset_parse("4294967296", &s));
	assert_false(seqset_parse("99999999999999999999", &s));
	assert_false(seqset_parse("1 2", &s));
	assert_false(seqset_parse("-1", &s));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atoms_strings_lists),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_refused_nonsync_literal),
		cmocka_unit_test(test_literal_overflow),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_nesting_and_args),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_in_quoted),
		cmocka_unit_test(test_stream_literal),
		cmocka_unit_test(test_uid_word),
		cmocka_unit_test(test_seqset),
	};

	return cmocka_run_group_tests_name("parser", tests, NULL, NULL);
}
