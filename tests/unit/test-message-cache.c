/*
 * test-message-cache.c: the header index answers HEADER.FIELDS exactly as a full parse does
 * (folds, CRLF, repeated and hidden fields, a missing empty line, the field limit), notices
 * bytes that moved under it, and the per-session cache keys, replaces and bounds its entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "mbox/message-cache.h"
#include "mbox/message.h"

struct sink {
	char *buf;
	size_t len, cap;
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
	return 0;
}

static bool
hide_xuid(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return len == 5 && strncasecmp(name, "X-UID", 5) == 0;
}

static char *
render(const struct msg_body *b)
{
	struct sink s = { NULL, 0, 0 };

	sink_write(&s, "", 0);
	assert_int_equal(msg_body_write(b, 0, b->size, sink_write, &s), 0);
	assert_int_equal(s.len, b->size);
	return s.buf;
}

/* HEADER.FIELDS of fields through the index equals the parser's answer; returns it. */
static char *
both(const char *text, const char *const *fields, size_t nfields)
{
	const unsigned char *d = (const unsigned char *)text;
	size_t len = strlen(text);
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_HEADER_FIELDS, fields, nfields };
	struct msg_body a = MSG_BODY_INIT, b = MSG_BODY_INIT;
	struct msg *msg = msg_parse_header(d, len, hide_xuid, NULL);
	struct msg_hindex *hx = msg_hindex_build(d, len, hide_xuid, NULL);
	char *ra, *rb;

	assert_non_null(hx);
	assert_true(msg_hindex_covers(&spec));
	assert_int_equal(msg_section(msg, &spec, &a), 0);
	assert_int_equal(msg_hindex_section(hx, d, len, &spec, &b), 0);
	ra = render(&a);
	rb = render(&b);
	assert_string_equal(ra, rb);
	assert_int_equal(a.size, b.size);
	free(rb);
	msg_body_clear(&a);
	msg_body_clear(&b);
	free(hx);
	msg_free(&msg);
	return ra;
}

static void
test_hkind(void **state)
{
	(void)state;
	assert_int_equal(msg_hkind("Subject", 7), MSG_H_SUBJECT);
	assert_int_equal(msg_hkind("MESSAGE-ID", 10), MSG_H_MESSAGE_ID);
	assert_int_equal(msg_hkind("to", 2), MSG_H_TO);
	assert_int_equal(msg_hkind("tO", 2), MSG_H_TO);
	assert_int_equal(msg_hkind("t", 1), -1);
	assert_int_equal(msg_hkind("toX", 3), -1);
	assert_int_equal(msg_hkind("X-Mailer", 8), -1);
	assert_int_equal(msg_hkind("Subjects", 8), -1);
	assert_int_equal(msg_hkind("Resent-From", 11), -1);
}

static void
test_same_as_parse(void **state)
{
	static const char *const f5[] = { "From", "To", "Subject", "Date", "Message-ID" };
	static const char *const fcc[] = { "cc", "BCC" };
	char *r;

	(void)state;
	r = both("From: a@b\nTo: c@d\nX-Mailer: x\nSubject: hi\n there\nDate: now\n\nbody\n",
		 f5, 5);
	assert_string_equal(r, "From: a@b\r\nTo: c@d\r\nSubject: hi\r\n there\r\nDate: now\r\n"
			    "\r\n");
	free(r);
	/* CRLF, repeated fields in header order, names with blanks before the colon */
	r = both("To: 1\r\nSubject : s\r\nTo:2\r\nX-UID: 5\r\n\r\nb", f5, 5);
	assert_string_equal(r, "To: 1\r\nSubject : s\r\nTo:2\r\n\r\n");
	free(r);
	/* no empty line: a line end is added (the field itself has none) */
	r = both("Subject: only", f5, 5);
	assert_string_equal(r, "Subject: only\r\n");
	free(r);
	r = both("Subject: only\n", f5, 5);
	assert_string_equal(r, "Subject: only\r\n\r\n");
	free(r);
	/* nothing listed present */
	r = both("X-A: 1\nX-B: 2\n\nbody", fcc, 2);
	assert_string_equal(r, "\r\n");
	free(r);
	/* a lone CR at the very end is the empty line */
	r = both("Cc: x\n\r", fcc, 2);
	free(r);
	/* a field of an indexed name without a colon: left to the parser */
	assert_null(msg_hindex_build((const unsigned char *)"Subject\nFrom: x\n\n", 17, NULL,
				     NULL));
	assert_null(msg_hindex_build((const unsigned char *)"To\n x: y\n\n", 10, NULL, NULL));
	/* empty header */
	r = both("\nbody\n", f5, 5);
	assert_string_equal(r, "\r\n");
	free(r);
	r = both("", f5, 5);
	free(r);
}

static void
test_unindexable(void **state)
{
	size_t n = MSG_MAX_HEADER_FIELDS + 10, i;
	char *big = malloc(n * 8 + 1), *p = big;

	(void)state;
	for (i = 0; i < n; i++) {
		memcpy(p, "To: xx\n", 7);
		p += 7;
	}
	*p = '\0';
	/* past the field limit the parser lumps fields together: not indexed */
	assert_null(msg_hindex_build((const unsigned char *)big, strlen(big), NULL, NULL));
	/* more indexed fields than an index holds */
	big[(MSG_HINDEX_MAX_FIELDS + 1) * 7] = '\0';
	assert_null(msg_hindex_build((const unsigned char *)big, strlen(big), NULL, NULL));
	big[MSG_HINDEX_MAX_FIELDS * 7] = '\0';
	assert_non_null(p = (char *)msg_hindex_build((const unsigned char *)big, strlen(big),
						     NULL, NULL));
	free(p);
	free(big);
}

static void
test_stale(void **state)
{
	static const char *const f[] = { "Subject" };
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_HEADER_FIELDS, f, 1 };
	struct msg_body b = MSG_BODY_INIT;
	char text[] = "From: a\nSubject: hello\nTo: b\n\nbody\n";
	char moved[] = "From: a\nX-Status: F\nSubject: hello\nTo: b\n\nbody\n";
	char grown[] = "From: a\nSubject: hello\n more\nTo: b\n\nbody\n";
	struct msg_hindex *hx = msg_hindex_build((unsigned char *)text, strlen(text), NULL, NULL);
	struct msg_field fld;

	(void)state;
	assert_non_null(hx);
	assert_int_equal(hx->nfields, 3);
	assert_true(msg_hindex_field(hx, (unsigned char *)text, strlen(text), 1, &fld));
	assert_int_equal(fld.name_len, 7);
	assert_int_equal(fld.value_len, 6);
	assert_memory_equal(fld.value, " hello", 6);
	assert_int_equal(msg_hindex_section(hx, (unsigned char *)text, strlen(text), &spec, &b),
			 0);
	assert_int_equal(b.size, strlen("Subject: hello\r\n\r\n"));
	/* the same index over bytes that moved or changed is refused, not misread */
	assert_int_equal(msg_hindex_section(hx, (unsigned char *)moved, strlen(moved), &spec,
					    &b), -1);
	assert_int_equal(b.nslices, 0);
	assert_false(msg_hindex_field(hx, (unsigned char *)moved, strlen(moved), 1, &fld));
	assert_int_equal(msg_hindex_section(hx, (unsigned char *)grown, strlen(grown), &spec,
					    &b), -1);
	assert_false(msg_hindex_field(hx, (unsigned char *)text, 5, 1, &fld));
	assert_false(msg_hindex_field(hx, (unsigned char *)text, strlen(text), 3, &fld));
	msg_body_clear(&b);
	free(hx);
}

static void
test_covers(void **state)
{
	static const char *const ok[] = { "date", "In-Reply-To" };
	static const char *const no[] = { "date", "References" };
	static const unsigned int path[] = { 1 };
	struct msg_section_spec a = { NULL, 0, MSG_SECT_HEADER_FIELDS, ok, 2 };
	struct msg_section_spec b = { NULL, 0, MSG_SECT_HEADER_FIELDS, no, 2 };
	struct msg_section_spec c = { NULL, 0, MSG_SECT_HEADER_FIELDS_NOT, ok, 2 };
	struct msg_section_spec d = { path, 1, MSG_SECT_HEADER_FIELDS, ok, 2 };

	(void)state;
	assert_true(msg_hindex_covers(&a));
	assert_false(msg_hindex_covers(&b));
	assert_false(msg_hindex_covers(&c));
	assert_false(msg_hindex_covers(&d));
}

static void
test_cache(void **state)
{
	const char *m1 = "Subject: one\n\nbody\n", *m2 = "Subject: two\nTo: x\n\n";
	struct msg_cache_key k1 = { 100, 19, 7 }, k2 = { 200, 20, 8 };
	struct msg_cache *c = msg_cache_new(MSG_CACHE_MAX_BYTES);
	const struct msg_hindex *hx;
	const char *p;
	size_t len, before;

	(void)state;
	hx = msg_cache_hindex(c, 0, &k1, (const unsigned char *)m1, strlen(m1), NULL, NULL);
	assert_non_null(hx);
	assert_int_equal(hx->nfields, 1);
	/* a hit does not look at the bytes */
	assert_ptr_equal(msg_cache_hindex(c, 0, &k1, (const unsigned char *)"", 0, NULL, NULL),
			 hx);
	assert_false(msg_cache_text(c, 0, &k1, MSG_CTEXT_ENVELOPE, &p, &len));
	msg_cache_put_text(c, 0, &k1, MSG_CTEXT_BODYSTRUCTURE, "(bs)", 4);
	msg_cache_put_text(c, 0, &k1, MSG_CTEXT_ENVELOPE, "(env)", 5);
	msg_cache_put_text(c, 0, &k1, MSG_CTEXT_BODY, "", 0);
	assert_true(msg_cache_text(c, 0, &k1, MSG_CTEXT_ENVELOPE, &p, &len));
	assert_int_equal(len, 5);
	assert_memory_equal(p, "(env)", 5);
	assert_true(msg_cache_text(c, 0, &k1, MSG_CTEXT_BODYSTRUCTURE, &p, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(p, "(bs)", 4);
	assert_true(msg_cache_text(c, 0, &k1, MSG_CTEXT_BODY, &p, &len));
	assert_int_equal(len, 0);
	/* after a renumbering slot 0 holds another message: its key misses and replaces */
	assert_false(msg_cache_text(c, 0, &k2, MSG_CTEXT_ENVELOPE, &p, &len));
	hx = msg_cache_hindex(c, 0, &k2, (const unsigned char *)m2, strlen(m2), NULL, NULL);
	assert_int_equal(hx->nfields, 2);
	assert_false(msg_cache_text(c, 0, &k1, MSG_CTEXT_ENVELOPE, &p, &len));
	before = msg_cache_bytes(c);
	msg_cache_clear(c);
	assert_true(msg_cache_bytes(c) < before);
	msg_cache_free(&c);
	assert_null(c);
	msg_cache_free(&c);
}

static void
test_budget(void **state)
{
	const char *m = "Subject: x\nFrom: y\nTo: z\n\n";
	struct msg_cache *c = msg_cache_new(64 * 1024);
	char text[300];
	uint32_t i;

	(void)state;
	memset(text, 'e', sizeof(text));
	for (i = 0; i < 20000; i++) {
		struct msg_cache_key k = { i * 100u, 30, i + 1 };
		const struct msg_hindex *hx;

		hx = msg_cache_hindex(c, i, &k, (const unsigned char *)m, strlen(m), NULL, NULL);
		/* past the budget an index is still given for the call, just not kept */
		assert_non_null(hx);
		assert_int_equal(hx->nfields, 3);
		msg_cache_put_text(c, i, &k, MSG_CTEXT_ENVELOPE, text, sizeof(text));
		assert_true(msg_cache_bytes(c) <= 64 * 1024);
	}
	msg_cache_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkind),
		cmocka_unit_test(test_same_as_parse),
		cmocka_unit_test(test_unindexable),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_covers),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
