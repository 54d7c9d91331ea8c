/*
 * fuzz-message-cache.c: the header index against the parser.  For any bytes, HEADER.FIELDS
 * through msg_hindex_section() must give exactly what msg_section() gives on a header-only
 * parse, and each indexed field must read back as msg_hdr_next() splits it; after a byte of
 * the input is changed the index must either still agree or refuse, never misread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mbox/message-cache.h"
#include "mbox/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const all[] = {
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
	"message-id"
};

static bool
hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return len == 2 && strncasecmp(name, "cc", 2) == 0;
}

struct sink {
	unsigned char *buf;
	size_t len;
};

static int
sink(void *ctx, const void *p, size_t n)
{
	struct sink *o = ctx;

	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* The client-visible bytes of body, malloc'd (body->size of them). */
static unsigned char *
visible(const struct msg_body *body)
{
	struct sink o = { malloc(body->size + 1), 0 };

	if (o.buf == NULL)
		abort();
	if (msg_body_write(body, 0, body->size, sink, &o) != 0 || o.len != body->size)
		abort();
	return o.buf;
}

static void
same(const struct msg_body *a, const struct msg_body *b)
{
	unsigned char *va, *vb;

	if (a->size != b->size)
		abort();
	va = visible(a);
	vb = visible(b);
	if (a->size > 0 && memcmp(va, vb, a->size) != 0)
		abort();
	free(va);
	free(vb);
}

/* Each slice but the last is one whole field of a listed name, as the iterator splits it. */
static void
real_fields(const struct msg_body *b, unsigned int want)
{
	size_t i;

	for (i = 0; i + 1 < b->nslices; i++) {
		struct msg_hdr_iter it;
		struct msg_field f;
		int k;

		msg_hdr_iter_init(&it, b->slices[i].p, b->slices[i].len);
		if (!msg_hdr_next(&it, &f) || f.len != b->slices[i].len)
			abort();
		k = msg_hkind(f.name, f.name_len);
		if (k < 0 || !(want >> k & 1))
			abort();
	}
}

/* The index of d against a parse of e (e: d, or d with a byte changed). */
static void
check(const struct msg_hindex *hx, const unsigned char *e, size_t len, unsigned int pick,
      bool changed)
{
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_HEADER_FIELDS, all, 0 };
	struct msg_body a = MSG_BODY_INIT, b = MSG_BODY_INIT;
	struct msg *msg = msg_parse_header(e, len, hide, NULL);
	unsigned int k;

	/* a subset of the indexed names, chosen by the input */
	const char *fields[10];
	unsigned int want = 0;
	size_t n = 0;

	for (k = 0; k < 10; k++) {
		if (pick >> k & 1) {
			fields[n++] = all[k];
			want |= 1u << k;
		}
	}
	if (n == 0) {
		fields[n++] = "subject";
		want = 1u << MSG_H_SUBJECT;
	}
	spec.fields = fields;
	spec.nfields = n;
	if (msg_section(msg, &spec, &a) != 0)
		abort();
	if (msg_hindex_section(hx, e, len, &spec, &b) == 0) {
		/* the very bytes indexed: the same answer; changed ones: real fields only */
		if (!changed)
			same(&a, &b);
		else
			real_fields(&b, want);
	} else if (!changed) {
		abort();	/* the index of these very bytes must serve */
	}
	for (k = 0; k < hx->nfields; k++) {
		struct msg_field f;

		if (!msg_hindex_field(hx, e, len, k, &f)) {
			if (!changed)
				abort();
			continue;
		}
		if (f.off + f.len > len || msg_hkind(f.name, f.name_len) != hx->f[k].kind ||
		    f.value < (const char *)e + f.off ||
		    f.value + f.value_len > (const char *)e + f.off + f.len)
			abort();
	}
	msg_body_clear(&a);
	msg_body_clear(&b);
	msg_free(&msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_hindex *hx;
	unsigned char *copy;
	unsigned int pick, at;

	if (size < 4 || size > 65536)
		return 0;
	pick = data[0] | (unsigned)data[1] << 8;
	at = data[2];
	data += 3;
	size -= 3;
	hx = msg_hindex_build(data, size, hide, NULL);
	if (hx == NULL)
		return 0;
	copy = malloc(size);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	check(hx, copy, size, pick, false);
	/* one byte changed under the index */
	copy[(at * 7u) % size] ^= (unsigned char)(at | 1);
	check(hx, copy, size, pick, true);
	free(copy);
	free(hx);
	return 0;
}
