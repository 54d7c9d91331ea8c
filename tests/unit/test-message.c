/*
 * test-message.c: the RFC 5322/MIME message model: header fields and folding, MIME structure
 * (nesting, missing final boundary, boundary-like lines, LF vs CRLF), sizes and line counts in
 * CRLF terms, sections, partial ranges and the CRLF-converting writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mbox/message.h"

struct sink {
	char *buf;
	size_t len, cap;
	unsigned int calls;
};

static int
sink_write(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	s->calls++;
	return 0;
}

static struct msg *
parse(const char *s)
{
	return msg_parse((const unsigned char *)s, strlen(s), NULL, NULL);
}

/* Convert LF to CRLF (the text of a message as a client sees it). */
static char *
crlf(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *r = malloc(2 * n + 1);

	for (i = 0; i < n; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			r[o++] = '\r';
		r[o++] = s[i];
	}
	r[o] = '\0';
	return r;
}

/* Fetch a section as a string (NULL if it does not resolve), checking size == length. */
static char *
fetch(const struct msg *msg, const char *path, enum msg_sect kind, const char *const *fields,
      size_t nfields, size_t start, size_t len)
{
	unsigned int parts[16];
	size_t np = 0;
	struct msg_section_spec spec;
	struct msg_body body = MSG_BODY_INIT;
	struct sink s = { NULL, 0, 0, 0 };
	char *p = (char *)(uintptr_t)path;

	while (p != NULL && *p != '\0') {
		parts[np++] = (unsigned int)strtoul(p, &p, 10);
		if (*p == '.')
			p++;
	}
	spec.path = parts;
	spec.npath = np;
	spec.kind = kind;
	spec.fields = fields;
	spec.nfields = nfields;
	if (msg_section(msg, &spec, &body) != 0) {
		msg_body_clear(&body);
		return NULL;
	}
	sink_write(&s, "", 0);
	assert_int_equal(msg_body_write(&body, start, len, sink_write, &s), 0);
	if (start == 0 && len >= body.size)
		assert_int_equal(s.len, body.size);
	msg_body_clear(&body);
	return s.buf;
}

#define ALL ((size_t)-1)

static void
expect_section(const struct msg *msg, const char *path, enum msg_sect kind, const char *want_lf)
{
	char *got = fetch(msg, path, kind, NULL, 0, 0, ALL), *want = crlf(want_lf);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void
test_header_fields(void **state)
{
	const char *h = "Subject: hello\r\n  world\r\nX-A:1\nTo : a@b\n\tc\nnocolon line\n"
			"\nbody\n";
	struct msg_hdr_iter it;
	struct msg_field f;
	char buf[64];

	(void)state;
	msg_hdr_iter_init(&it, (const unsigned char *)h, strlen(h));
	assert_true(msg_hdr_next(&it, &f));
	assert_true(msg_name_eq(f.name, f.name_len, "SUBJECT"));
	assert_int_equal(f.value_len, strlen(" hello\r\n  world"));
	assert_int_equal(f.off, 0);
	assert_int_equal(f.len, strlen("Subject: hello\r\n  world\r\n"));
	msg_unfold(f.value, f.value_len, buf);
	assert_string_equal(buf, "hello  world");
	assert_true(msg_hdr_next(&it, &f));
	assert_int_equal(f.name_len, 3);
	assert_memory_equal(f.value, "1", 1);
	assert_true(msg_hdr_next(&it, &f));
	assert_true(msg_name_eq(f.name, f.name_len, "to"));	/* WSP before colon */
	msg_unfold(f.value, f.value_len, buf);
	assert_string_equal(buf, "a@b\tc");
	assert_true(msg_hdr_next(&it, &f));
	assert_int_equal(f.name_len, strlen("nocolon line"));
	assert_int_equal(f.value_len, 0);
	assert_false(msg_hdr_next(&it, &f));

	assert_true(msg_hdr_find((const unsigned char *)h, strlen(h), "x-a", &f));
	assert_false(msg_hdr_find((const unsigned char *)h, strlen(h), "body", &f));
}

static void
test_simple_sizes(void **state)
{
	const char *lf = "From: a@b\nSubject: s\n\nline1\nline2\n";
	const char *cr = "From: a@b\r\nSubject: s\r\n\r\nline1\r\nline2\r\n";
	struct msg *m1 = parse(lf), *m2 = parse(cr);
	const struct msg_part *r1 = msg_root(m1), *r2 = msg_root(m2);

	(void)state;
	assert_int_equal(msg_size(m1), strlen(cr));
	assert_int_equal(msg_size(m2), strlen(cr));
	assert_int_equal(r1->header_size, r2->header_size);
	assert_int_equal(r1->header_size, strlen("From: a@b\r\nSubject: s\r\n\r\n"));
	assert_int_equal(r1->body_size, 14);
	assert_int_equal(r1->body_lines, 2);
	assert_int_equal(r2->body_lines, 2);
	assert_int_equal(r1->kind, MSG_PART_LEAF);
	assert_string_equal(r1->type, "text");
	assert_string_equal(r1->subtype, "plain");
	assert_int_equal(r1->nparams, 1);
	assert_string_equal(msg_param_get(r1->params, r1->nparams, "CHARSET"), "us-ascii");
	assert_true(r1->flags & MSG_PART_DEFAULT_TYPE);
	assert_string_equal(r1->envelope->from, "a@b");
	assert_string_equal(r1->envelope->subject, "s");
	assert_null(r1->envelope->to);
	expect_section(m1, "", MSG_SECT_FULL, lf);
	expect_section(m1, "", MSG_SECT_TEXT, "line1\nline2\n");
	expect_section(m1, "", MSG_SECT_HEADER, "From: a@b\nSubject: s\n\n");
	expect_section(m1, "1", MSG_SECT_FULL, "line1\nline2\n");
	expect_section(m1, "1", MSG_SECT_MIME, "From: a@b\nSubject: s\n\n");
	assert_null(fetch(m1, "2", MSG_SECT_FULL, NULL, 0, 0, ALL));
	assert_null(fetch(m1, "1.1", MSG_SECT_FULL, NULL, 0, 0, ALL));
	assert_null(fetch(m1, "1", MSG_SECT_HEADER, NULL, 0, 0, ALL));
	assert_null(fetch(m1, "", MSG_SECT_MIME, NULL, 0, 0, ALL));
	assert_null(fetch(m1, "0", MSG_SECT_FULL, NULL, 0, 0, ALL));
	msg_free(&m1);
	msg_free(&m2);
	assert_null(m1);
}

static void
test_header_only(void **state)
{
	struct msg *m = parse("Subject: only\nFrom: x@y\n");
	const struct msg_part *r = msg_root(m);

	(void)state;
	assert_true(r->flags & MSG_PART_HEADER_NO_BLANK);
	assert_int_equal(r->body_len, 0);
	assert_int_equal(r->body_size, 0);
	assert_int_equal(msg_size(m), strlen("Subject: only\r\nFrom: x@y\r\n"));
	assert_string_equal(r->envelope->from, "x@y");
	expect_section(m, "", MSG_SECT_HEADER, "Subject: only\nFrom: x@y\n");
	expect_section(m, "", MSG_SECT_TEXT, "");
	msg_free(&m);

	m = parse("");
	assert_int_equal(msg_size(m), 0);
	assert_null(msg_root(m)->envelope->subject);
	msg_free(&m);

	m = parse("\nbody only\n");
	assert_int_equal(msg_root(m)->header_size, 2);
	assert_int_equal(msg_root(m)->body_size, 11);
	msg_free(&m);
}

static const char *const nested =
	"From: a@example.com\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"preamble\n"
	"--outer\n"
	"Content-Type: multipart/alternative; boundary=inner\n"
	"\n"
	"--inner\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"plain text\n"
	"two\n"
	"--inner\n"
	"Content-Type: text/html\n"
	"\n"
	"<p>html</p>\n"
	"--inner--\n"
	"inner epilogue\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner message\n"
	"From: b@example.com\n"
	"\n"
	"inner body\n"
	"--outer\n"
	"Content-Type: application/octet-stream; name=\"a \\\"b\\\".bin\"\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-Disposition: attachment;\n filename=\"a.bin\"\n"
	"Content-ID: <id@x>\n"
	"\n"
	"AAEC\n"
	"--outer--\n"
	"epilogue\n";

static void
test_nested(void **state)
{
	struct msg *m = parse(nested);
	const struct msg_part *r = msg_root(m), *alt, *p1, *p2, *rfc, *att, *in;
	const char *fields[] = { "subject" };

	(void)state;
	assert_int_equal(r->kind, MSG_PART_MULTIPART);
	assert_int_equal(r->nchildren, 3);
	assert_false(r->flags & MSG_PART_NO_FINAL_BOUNDARY);
	alt = r->children;
	assert_int_equal(alt->kind, MSG_PART_MULTIPART);
	assert_int_equal(alt->nchildren, 2);
	p1 = alt->children;
	p2 = p1->next;
	assert_string_equal(p1->subtype, "plain");
	assert_string_equal(msg_param_get(p1->params, p1->nparams, "charset"), "utf-8");
	/* RFC 2046 5.1.1: the line end before "--inner" is the boundary's */
	assert_int_equal(p1->body_size, strlen("plain text\r\ntwo"));
	assert_int_equal(p1->body_lines, 1);
	assert_string_equal(p2->subtype, "html");
	assert_int_equal(p2->body_size, strlen("<p>html</p>"));
	assert_null(p2->next);
	rfc = alt->next;
	assert_int_equal(rfc->kind, MSG_PART_MESSAGE);
	in = rfc->children;
	assert_non_null(in->envelope);
	assert_string_equal(in->envelope->subject, "inner message");
	assert_int_equal(rfc->body_size, strlen("Subject: inner message\r\nFrom: b@example.com\r\n"
						"\r\ninner body"));
	assert_int_equal(rfc->body_lines, 3);
	att = rfc->next;
	assert_string_equal(msg_param_get(att->params, att->nparams, "name"), "a \"b\".bin");
	assert_string_equal(att->encoding, "base64");
	assert_int_equal(msg_cte_parse(att->encoding), MSG_CTE_BASE64);
	assert_string_equal(att->disposition, "attachment");
	assert_string_equal(msg_param_get(att->disp_params, att->ndisp_params, "filename"),
			    "a.bin");
	assert_string_equal(att->id, "<id@x>");
	assert_int_equal(msg_part_count(m), 7);

	expect_section(m, "1.1", MSG_SECT_FULL, "plain text\ntwo");
	expect_section(m, "1.2", MSG_SECT_FULL, "<p>html</p>");
	expect_section(m, "1.1", MSG_SECT_MIME, "Content-Type: text/plain; charset=utf-8\n\n");
	expect_section(m, "1", MSG_SECT_FULL,
		       "--inner\nContent-Type: text/plain; charset=utf-8\n\nplain text\ntwo\n"
		       "--inner\nContent-Type: text/html\n\n<p>html</p>\n--inner--\n"
		       "inner epilogue");
	expect_section(m, "2", MSG_SECT_HEADER,
		       "Subject: inner message\nFrom: b@example.com\n\n");
	expect_section(m, "2", MSG_SECT_TEXT, "inner body");
	expect_section(m, "2.1", MSG_SECT_FULL, "inner body");
	expect_section(m, "2.1", MSG_SECT_MIME,
		       "Subject: inner message\nFrom: b@example.com\n\n");
	expect_section(m, "3", MSG_SECT_FULL, "AAEC");
	expect_section(m, "3.1", MSG_SECT_FULL, "AAEC");
	assert_null(fetch(m, "3.2", MSG_SECT_FULL, NULL, 0, 0, ALL));
	assert_null(fetch(m, "4", MSG_SECT_FULL, NULL, 0, 0, ALL));
	assert_null(fetch(m, "1.3", MSG_SECT_FULL, NULL, 0, 0, ALL));
	assert_null(fetch(m, "3", MSG_SECT_HEADER, NULL, 0, 0, ALL));
	assert_null(fetch(m, "2.2", MSG_SECT_FULL, NULL, 0, 0, ALL));

	{
		char *got = fetch(m, "2", MSG_SECT_HEADER_FIELDS, fields, 1, 0, ALL);

		assert_string_equal(got, "Subject: inner message\r\n\r\n");
		free(got);
		got = fetch(m, "2", MSG_SECT_HEADER_FIELDS_NOT, fields, 1, 0, ALL);
		assert_string_equal(got, "From: b@example.com\r\n\r\n");
		free(got);
	}
	msg_free(&m);
}

static void
test_crlf_equivalence(void **state)
{
	char *c = crlf(nested);
	struct msg *a = parse(nested), *b = parse(c);
	const struct msg_part *pa, *pb;

	(void)state;
	assert_int_equal(msg_size(a), strlen(c));
	assert_int_equal(msg_size(b), strlen(c));
	/* walk both trees in step */
	pa = msg_root(a);
	pb = msg_root(b);
	while (pa != NULL && pb != NULL) {
		assert_int_equal(pa->header_size, pb->header_size);
		assert_int_equal(pa->body_size, pb->body_size);
		assert_int_equal(pa->body_lines, pb->body_lines);
		assert_int_equal(pa->nchildren, pb->nchildren);
		if (pa->children != NULL) {
			pa = pa->children;
			pb = pb->children;
			continue;
		}
		while (pa != NULL && pa->next == NULL) {
			pa = pa->parent;
			pb = pb->parent;
		}
		if (pa != NULL) {
			pa = pa->next;
			pb = pb->next;
		}
	}
	assert_null(pa);
	assert_null(pb);
	{
		char *x = fetch(a, "1", MSG_SECT_FULL, NULL, 0, 0, ALL);
		char *y = fetch(b, "1", MSG_SECT_FULL, NULL, 0, 0, ALL);

		assert_string_equal(x, y);
		free(x);
		free(y);
	}
	msg_free(&a);
	msg_free(&b);
	free(c);
}

static void
test_missing_final_boundary(void **state)
{
	const char *s = "Content-Type: multipart/mixed; boundary=b\n\n"
			"--b\n\nfirst\n--b\nContent-Type: multipart/related; boundary=c\n\n"
			"--c\n\ninner\n--b\n\nthird\n";
	struct msg *m = parse(s);
	const struct msg_part *r = msg_root(m), *rel;

	(void)state;
	assert_true(r->flags & MSG_PART_NO_FINAL_BOUNDARY);
	assert_int_equal(r->nchildren, 3);
	rel = r->children->next;
	/* the inner multipart ends at the outer boundary without its own close delimiter */
	assert_true(rel->flags & MSG_PART_NO_FINAL_BOUNDARY);
	assert_int_equal(rel->nchildren, 1);
	expect_section(m, "2.1", MSG_SECT_FULL, "inner");
	expect_section(m, "3", MSG_SECT_FULL, "third\n");
	expect_section(m, "1", MSG_SECT_FULL, "first");
	msg_free(&m);
}

static void
test_boundary_like_lines(void **state)
{
	const char *s = "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
			"--b\n\n-- b\n -b\nx--b\n--B\n--b trailing words\n\ntwo\n--bb\n\nthree\n"
			"--b--  \nepilogue\n--b\n";
	struct msg *m = parse(s);
	const struct msg_part *r = msg_root(m);

	(void)state;
	/* RFC 2046 5.1.1: a line that begins with "--b" is a delimiter, whatever follows */
	assert_int_equal(r->nchildren, 3);
	expect_section(m, "1", MSG_SECT_FULL, "-- b\n -b\nx--b\n--B");
	expect_section(m, "2", MSG_SECT_FULL, "two");
	expect_section(m, "3", MSG_SECT_FULL, "three");
	assert_false(r->flags & MSG_PART_NO_FINAL_BOUNDARY);
	/* after the close delimiter everything is epilogue */
	assert_int_equal(r->body_off + r->body_len, strlen(s));
	msg_free(&m);
}

static void
test_prefix_boundaries(void **state)
{
	/* inner boundary "a-1" has the outer "a" as a prefix: the longest match wins */
	const char *s = "Content-Type: multipart/mixed; boundary=a\n\n"
			"--a\nContent-Type: multipart/alternative; boundary=a-1\n\n"
			"--a-1\n\nx\n--a-1\n\ny\n--a-1--\n--a\n\nz\n--a--\n";
	struct msg *m = parse(s);
	const struct msg_part *r = msg_root(m);

	(void)state;
	assert_int_equal(r->nchildren, 2);
	assert_int_equal(r->children->nchildren, 2);
	expect_section(m, "1.1", MSG_SECT_FULL, "x");
	expect_section(m, "1.2", MSG_SECT_FULL, "y");
	expect_section(m, "2", MSG_SECT_FULL, "z");
	msg_free(&m);
}

static void
test_no_parts(void **state)
{
	struct msg *m = parse("Content-Type: multipart/mixed; boundary=zz\n\njust text\n");
	const struct msg_part *r = msg_root(m);

	(void)state;
	assert_int_equal(r->kind, MSG_PART_MULTIPART);
	assert_int_equal(r->nchildren, 1);
	assert_true(r->children->flags & MSG_PART_SYNTHETIC);
	assert_string_equal(r->children->type, "text");
	assert_int_equal(r->children->body_size, 0);
	expect_section(m, "1", MSG_SECT_FULL, "");
	msg_free(&m);

	/* no boundary parameter: an opaque leaf, typed as such */
	m = parse("Content-Type: multipart/mixed\n\n--x\n\nhello\n");
	r = msg_root(m);
	assert_int_equal(r->kind, MSG_PART_LEAF);
	assert_string_equal(r->type, "application");
	expect_section(m, "1", MSG_SECT_FULL, "--x\n\nhello\n");
	msg_free(&m);
}

static void
test_digest_default(void **state)
{
	const char *s = "Content-Type: multipart/digest; boundary=d\n\n"
			"--d\n\nSubject: one\n\nbody one\n--d\nContent-Type: text/plain\n\nx\n--d--\n";
	struct msg *m = parse(s);
	const struct msg_part *r = msg_root(m), *c1 = r->children;

	(void)state;
	assert_string_equal(c1->type, "message");
	assert_string_equal(c1->subtype, "rfc822");
	assert_int_equal(c1->kind, MSG_PART_MESSAGE);
	assert_string_equal(c1->children->envelope->subject, "one");
	assert_string_equal(c1->next->type, "text");
	expect_section(m, "1.1", MSG_SECT_FULL, "body one");
	msg_free(&m);
}

static void
test_header_ends_at_boundary(void **state)
{
	const char *s = "Content-Type: multipart/mixed; boundary=b\n\n"
			"--b\nContent-Type: text/html\n--b\n\nok\n--b--\n";
	struct msg *m = parse(s);
	const struct msg_part *c = msg_root(m)->children;

	(void)state;
	assert_int_equal(msg_root(m)->nchildren, 2);
	assert_true(c->flags & MSG_PART_HEADER_NO_BLANK);
	assert_string_equal(c->subtype, "html");
	assert_int_equal(c->body_size, 0);
	expect_section(m, "1", MSG_SECT_MIME, "Content-Type: text/html");
	expect_section(m, "2", MSG_SECT_FULL, "ok");
	msg_free(&m);
}

static void
test_empty_body_before_boundary(void **state)
{
	/* the empty line after the header is also the line end before the boundary */
	const char *s = "Content-Type: multipart/mixed; boundary=b\n\n"
			"--b\nContent-Type: text/plain\n\n--b\nContent-Type: message/rfc822\n\n"
			"Subject: x\n\n--b--\n";
	struct msg *m = parse(s);
	const struct msg_part *p1 = msg_root(m)->children, *p2 = p1->next;

	(void)state;
	assert_int_equal(p1->body_size, 0);
	assert_int_equal(p1->header_size, strlen("Content-Type: text/plain\r\n"));
	expect_section(m, "1", MSG_SECT_MIME, "Content-Type: text/plain\n");
	expect_section(m, "1", MSG_SECT_FULL, "");
	/* the encapsulated message lies inside its part, header and all */
	assert_int_equal(p2->body_size, strlen("Subject: x\r\n"));
	assert_int_equal(p2->children->header_size + p2->children->body_size, p2->body_size);
	expect_section(m, "2", MSG_SECT_HEADER, "Subject: x\n");
	expect_section(m, "2", MSG_SECT_TEXT, "");
	msg_free(&m);
}

static bool
hide_status(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return msg_name_eq(name, len, "status") || msg_name_eq(name, len, "x-uid") ||
	       msg_name_eq(name, len, "content-length");
}

static void
test_hidden_fields(void **state)
{
	const char *s = "Status: RO\nFrom: a@b\nX-UID: 7\nContent-Length: 5\n"
			"Subject: hi\n there\n\nbody\n";
	const char *vis = "From: a@b\nSubject: hi\n there\n\n";
	struct msg *m = msg_parse((const unsigned char *)s, strlen(s), hide_status, NULL);
	const char *f1[] = { "subject", "status" };
	char *got, *want;

	(void)state;
	want = crlf(vis);
	assert_int_equal(msg_root(m)->header_size, strlen(want));
	assert_int_equal(msg_root(m)->header_lines, 4);
	assert_int_equal(msg_size(m), strlen(want) + strlen("body\r\n"));
	free(want);
	expect_section(m, "", MSG_SECT_HEADER, vis);
	expect_section(m, "", MSG_SECT_FULL, "From: a@b\nSubject: hi\n there\n\nbody\n");
	expect_section(m, "1", MSG_SECT_MIME, vis);
	got = fetch(m, "", MSG_SECT_HEADER_FIELDS, f1, 2, 0, ALL);
	assert_string_equal(got, "Subject: hi\r\n there\r\n\r\n");
	free(got);
	got = fetch(m, "", MSG_SECT_HEADER_FIELDS_NOT, f1, 2, 0, ALL);
	assert_string_equal(got, "From: a@b\r\n\r\n");
	free(got);
	got = fetch(m, "", MSG_SECT_HEADER_FIELDS, f1, 0, 0, ALL);
	assert_string_equal(got, "\r\n");
	free(got);
	msg_free(&m);
}

static void
test_partial(void **state)
{
	struct msg *m = parse("A: 1\n\nab\ncd\n");
	size_t st, ln;
	char *got;

	(void)state;
	/* visible text: "A: 1\r\n\r\nab\r\ncd\r\n" (16 octets) */
	got = fetch(m, "", MSG_SECT_FULL, NULL, 0, 5, 6);
	assert_string_equal(got, "\n\r\nab\r");
	free(got);
	got = fetch(m, "", MSG_SECT_TEXT, NULL, 0, 3, 100);
	assert_string_equal(got, "\ncd\r\n");
	free(got);
	got = fetch(m, "", MSG_SECT_TEXT, NULL, 0, 8, 100);
	assert_string_equal(got, "");
	free(got);
	msg_partial(16, 5, 6, &st, &ln);
	assert_int_equal(st, 5);
	assert_int_equal(ln, 6);
	msg_partial(16, 10, 100, &st, &ln);
	assert_int_equal(ln, 6);
	msg_partial(16, 16, 1, &st, &ln);
	assert_int_equal(ln, 0);
	msg_partial(16, UINT64_MAX, UINT64_MAX, &st, &ln);
	assert_int_equal(ln, 0);
	msg_free(&m);

	/* every split point of a mixed-ending body gives the same bytes as the whole */
	m = parse("X: y\r\n\na\r\nb\n\nc\r\r\n");
	got = fetch(m, "", MSG_SECT_FULL, NULL, 0, 0, ALL);
	for (st = 0; st <= strlen(got); st++) {
		for (ln = 0; st + ln <= strlen(got); ln++) {
			char *part = fetch(m, "", MSG_SECT_FULL, NULL, 0, st, ln);

			assert_int_equal(strlen(part), ln);
			assert_memory_equal(part, got + st, ln);
			free(part);
		}
	}
	free(got);
	msg_free(&m);
}

static void
test_writer_no_copy(void **state)
{
	const char *s = "A: 1\r\n\r\n";
	char big[4096];
	struct msg *m;
	struct msg_body body = MSG_BODY_INIT;
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_FULL, NULL, 0 };
	struct sink sk = { NULL, 0, 0, 0 };
	size_t i;

	(void)state;
	memcpy(big, s, strlen(s));
	for (i = strlen(s); i + 2 <= sizeof(big); i += 2)
		memcpy(big + i, "x\n", 2);
	for (i = strlen(s); i + 2 <= sizeof(big); i += 4)
		big[i] = '\r';	/* half the lines CRLF ("\r\n"), half "x\n" */
	m = msg_parse((const unsigned char *)big, sizeof(big), NULL, NULL);
	assert_int_equal(msg_section(m, &spec, &body), 0);
	assert_int_equal(msg_body_write(&body, 0, ALL, sink_write, &sk), 0);
	assert_int_equal(sk.len, body.size);
	assert_int_equal(sk.len, msg_visible_size((const unsigned char *)big, sizeof(big)));
	assert_int_equal(msg_visible_size((const unsigned char *)"\n\r\n", 3), 4);
	msg_body_clear(&body);
	free(sk.buf);
	msg_free(&m);
}

static int
fail_write(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	return 42;
}

static void
test_writer_error(void **state)
{
	struct msg *m = parse("A: 1\n\nxx\n");
	struct msg_body body = MSG_BODY_INIT;
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_FULL, NULL, 0 };

	(void)state;
	assert_int_equal(msg_section(m, &spec, &body), 0);
	assert_int_equal(msg_body_write(&body, 0, ALL, fail_write, NULL), 42);
	msg_body_clear(&body);
	msg_free(&m);
}

static void
test_depth_limit(void **state)
{
	size_t depth = 3 * MSG_MAX_DEPTH, i, cap = depth * 80 + 100, n = 0;
	char *s = malloc(cap);
	struct msg *m;
	const struct msg_part *p;
	unsigned int d = 0;

	(void)state;
	for (i = 0; i < depth; i++)
		n += (size_t)snprintf(s + n, cap - n,
				      "Content-Type: multipart/mixed; boundary=b%zu\n\n--b%zu\n",
				      i, i);
	n += (size_t)snprintf(s + n, cap - n, "\ndeep\n");
	m = msg_parse((const unsigned char *)s, n, NULL, NULL);
	for (p = msg_root(m); p->children != NULL; p = p->children)
		d++;
	assert_true(d < MSG_MAX_DEPTH);
	assert_int_equal(p->kind, MSG_PART_LEAF);
	assert_true(p->flags & MSG_PART_TRUNCATED);
	msg_free(&m);
	free(s);
}

static void
test_part_limit(void **state)
{
	size_t nparts = MSG_MAX_PARTS + 100, i, cap = nparts * 8 + 100, n = 0;
	char *s = malloc(cap);
	struct msg *m;

	(void)state;
	n += (size_t)snprintf(s + n, cap - n, "Content-Type: multipart/mixed; boundary=b\n\n");
	for (i = 0; i < nparts; i++)
		n += (size_t)snprintf(s + n, cap - n, "--b\n\nx\n");
	m = msg_parse((const unsigned char *)s, n, NULL, NULL);
	assert_true(msg_truncated(m));
	assert_true(msg_part_count(m) <= MSG_MAX_PARTS);
	assert_int_equal(msg_root(m)->nchildren, MSG_MAX_PARTS - 1);
	/* the rest is opaque but still counted */
	assert_int_equal(msg_size(m), msg_visible_size((const unsigned char *)s, n));
	msg_free(&m);
	free(s);
}

static void
test_many_fields(void **state)
{
	size_t nf = MSG_MAX_HEADER_FIELDS + 10, i, cap = nf * 12 + 100, n = 0;
	char *s = malloc(cap);
	struct msg_hdr_iter it;
	struct msg_field f;
	size_t count = 0;
	struct msg *m;

	(void)state;
	for (i = 0; i < nf; i++)
		n += (size_t)snprintf(s + n, cap - n, "X-%zu: v\n", i);
	n += (size_t)snprintf(s + n, cap - n, "Subject: late\n\nbody\n");
	msg_hdr_iter_init(&it, (const unsigned char *)s, n);
	while (msg_hdr_next(&it, &f))
		count++;
	assert_int_equal(count, MSG_MAX_HEADER_FIELDS + 1);
	m = msg_parse((const unsigned char *)s, n, NULL, NULL);
	assert_null(msg_root(m)->envelope->subject);
	assert_int_equal(msg_root(m)->body_size, 6);
	msg_free(&m);
	free(s);
}

static void
test_content_type_syntax(void **state)
{
	struct msg *m = parse("Content-Type: (c) TEXT / HTML (x) ; CharSet = \"ISO-8859-1\" "
			      "(comment); name*0*=us-ascii'en'a%20b; junk; format=flowed\n"
			      "Content-Transfer-Encoding: Quoted-Printable (c)\n"
			      "Content-Language: en,\n de\n"
			      "Content-Location: http://x/\n y\n"
			      "Content-Description: the\n  desc\n\nx\n");
	const struct msg_part *r = msg_root(m);

	(void)state;
	assert_string_equal(r->type, "TEXT");
	assert_string_equal(r->subtype, "HTML");
	assert_int_equal(r->nparams, 3);
	assert_string_equal(r->params[0].name, "CharSet");
	assert_string_equal(r->params[0].value, "ISO-8859-1");
	assert_string_equal(r->params[1].name, "name*0*");
	assert_string_equal(r->params[1].value, "us-ascii'en'a%20b");
	assert_string_equal(msg_param_get(r->params, r->nparams, "format"), "flowed");
	assert_int_equal(msg_cte_parse(r->encoding), MSG_CTE_QP);
	assert_string_equal(r->language, "en, de");
	assert_string_equal(r->location, "http://x/y");
	assert_string_equal(r->description, "the  desc");
	assert_false(r->flags & MSG_PART_DEFAULT_TYPE);
	msg_free(&m);

	/* invalid Content-Type: RFC 2045 5.2 default */
	m = parse("Content-Type: text\n\nx\n");
	assert_string_equal(msg_root(m)->subtype, "plain");
	assert_true(msg_root(m)->flags & MSG_PART_DEFAULT_TYPE);
	msg_free(&m);
	assert_int_equal(msg_cte_parse("x-uuencode"), MSG_CTE_UNKNOWN);
	assert_int_equal(msg_cte_parse(NULL), MSG_CTE_7BIT);
	assert_int_equal(msg_cte_parse("8BIT"), MSG_CTE_8BIT);
}

static void
test_encoded_rfc822_is_leaf(void **state)
{
	struct msg *m = parse("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
			      "U3ViamVjdDogeAoK\n");

	(void)state;
	assert_int_equal(msg_root(m)->kind, MSG_PART_LEAF);
	msg_free(&m);
	m = parse("Content-Type: message/rfc822\n\nSubject: x\n\nhi\n");
	assert_int_equal(msg_root(m)->kind, MSG_PART_MESSAGE);
	expect_section(m, "1", MSG_SECT_FULL, "Subject: x\n\nhi\n");
	expect_section(m, "1.1", MSG_SECT_FULL, "hi\n");
	expect_section(m, "1", MSG_SECT_TEXT, "hi\n");
	msg_free(&m);
}

static void
test_envelope_fields(void **state)
{
	struct msg *m = parse("Subject: first\nSubject: second\nMessage-ID:\n <a@b>\n"
			      "In-Reply-To: <x@y>\nReply-To: r@s\nSender: \nCc: c@d\n"
			      "Bcc: e@f\nTo: g@h\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n");
	const struct msg_envelope *e = msg_root(m)->envelope;

	(void)state;
	/* repeated single fields: the last counts (as Dovecot shows them) */
	assert_string_equal(e->subject, "second");
	assert_string_equal(e->message_id, "<a@b>");
	assert_string_equal(e->in_reply_to, "<x@y>");
	assert_string_equal(e->reply_to, "r@s");
	assert_string_equal(e->sender, "");
	assert_string_equal(e->cc, "c@d");
	assert_string_equal(e->bcc, "e@f");
	assert_string_equal(e->to, "g@h");
	assert_string_equal(e->date, "Mon, 1 Jan 2024 00:00:00 +0000");
	msg_free(&m);
}

static void
test_envelope_repeated_addresses(void **state)
{
	struct msg *m = parse("From: a@b\nStatus: RO\nTo: x@y\nFrom: C <c@d>,\n e@f\n"
			      "Content-Type: text/plain\nContent-Type: text/html\n\n");
	const struct msg_envelope *e = msg_root(m)->envelope;

	(void)state;
	assert_string_equal(e->from, "a@b, C <c@d>, e@f");
	assert_string_equal(e->to, "x@y");
	/* MIME fields: the first counts */
	assert_string_equal(msg_root(m)->subtype, "plain");
	msg_free(&m);
}

static void
test_header_only_parse(void **state)
{
	struct msg *full = parse(nested), *h;
	const struct msg_part *r;

	(void)state;
	h = msg_parse_header((const unsigned char *)nested, strlen(nested), NULL, NULL);
	r = msg_root(h);
	assert_int_equal(r->kind, MSG_PART_LEAF);
	assert_string_equal(r->subtype, "mixed");
	assert_int_equal(msg_part_count(h), 1);
	assert_int_equal(msg_size(h), msg_size(full));
	assert_int_equal(msg_root_body_size(h), msg_root(full)->body_size);
	expect_section(h, "", MSG_SECT_TEXT, strstr(nested, "\n\n") + 2);
	assert_string_equal(r->envelope->from, "a@example.com");
	expect_section(h, "", MSG_SECT_HEADER,
		       "From: a@example.com\n"
		       "Content-Type: multipart/mixed; boundary=\"outer\"\n\n");
	msg_free(&h);
	msg_free(&full);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_simple_sizes),
		cmocka_unit_test(test_header_only),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_crlf_equivalence),
		cmocka_unit_test(test_missing_final_boundary),
		cmocka_unit_test(test_boundary_like_lines),
		cmocka_unit_test(test_prefix_boundaries),
		cmocka_unit_test(test_no_parts),
		cmocka_unit_test(test_digest_default),
		cmocka_unit_test(test_header_ends_at_boundary),
		cmocka_unit_test(test_empty_body_before_boundary),
		cmocka_unit_test(test_hidden_fields),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_writer_no_copy),
		cmocka_unit_test(test_writer_error),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_part_limit),
		cmocka_unit_test(test_many_fields),
		cmocka_unit_test(test_content_type_syntax),
		cmocka_unit_test(test_encoded_rfc822_is_leaf),
		cmocka_unit_test(test_envelope_fields),
		cmocka_unit_test(test_header_only_parse),
		cmocka_unit_test(test_envelope_repeated_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
