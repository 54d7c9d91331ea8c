/*
 * fuzz-message.c: the header and MIME parser, section resolution, the CRLF writer and the
 * part decoders.  The first bytes of the input choose a section; the rest is the message.
 * Invariants checked: offsets stay inside the input, children inside parents, every written
 * length equals the size the model announced, partial ranges are substrings of the whole.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/address.h"
#include "mbox/decode.h"
#include "mbox/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
	size_t n;
	uint32_t sum;
};

static int
count_write(void *ctx, const void *p, size_t n)
{
	struct count *c = ctx;
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		c->sum = c->sum * 31 + b[i];
	c->n += n;
	return 0;
}

static bool
hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return msg_name_eq(name, len, "status") || msg_name_eq(name, len, "x-uid") ||
	       msg_name_eq(name, len, "content-length");
}

static void
check_part(const struct msg *msg, const struct msg_part *p, size_t len, unsigned int *budget)
{
	const struct msg_part *c;

	const unsigned char *d = msg_data(msg);
	size_t i, lines = 0;

	if (p->header_off + p->header_len > len || p->body_off + p->body_len > len ||
	    p->body_size < p->body_len || p->body_size > 2 * p->body_len ||
	    p->body_lines > p->body_len)
		abort();
	/* the bulk counters must agree with a plain byte-by-byte count */
	for (i = 0; i < p->body_len; i++)
		lines += d[p->body_off + i] == '\n';
	if (lines != p->body_lines ||
	    p->body_size != msg_visible_size(d + p->body_off, p->body_len))
		abort();
	if (p != msg_root(msg) &&
	    p->header_size != msg_visible_size(d + p->header_off, p->header_len))
		abort();
	if (p->kind == MSG_PART_MULTIPART && p->nchildren == 0)
		abort();
	if (p->kind == MSG_PART_LEAF && *budget > 0) {
		size_t dsize;
		struct count cnt = { 0, 0 };

		(*budget)--;
		if (msg_decoded_size(msg, p, &dsize) == 0) {
			if (msg_decoded_write(msg, p, 0, SIZE_MAX, count_write, &cnt) != 0 ||
			    cnt.n != dsize)
				abort();
		}
	}
	for (c = p->children; c != NULL; c = c->next) {
		if (c->parent != p)
			abort();
		/* an empty part between two delimiters may sit on the line end they share */
		if (!(c->flags & MSG_PART_SYNTHETIC) && c->header_len + c->body_len > 0 &&
		    (c->header_off < p->body_off ||
		     c->body_off + c->body_len > p->body_off + p->body_len))
			abort();
		check_part(msg, c, len, budget);
	}
}

static void
check_addresses(const char *s)
{
	struct addr_list l;

	if (s == NULL)
		return;
	addr_parse(s, strlen(s), &l);
	addr_list_free(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int path[4], budget = 8;
	const char *fields[] = { "subject", "from", "content-type" };
	struct msg_section_spec spec;
	struct msg_body body = MSG_BODY_INIT;
	const struct msg_envelope *env;
	struct msg *msg;
	size_t i, np;

	if (size < 4)
		return 0;
	np = data[0] % 4;
	for (i = 0; i < np; i++)
		path[i] = (unsigned int)(data[1] >> (2 * i) & 3) + (i == 0 ? 0 : 1);
	spec.path = path;
	spec.npath = np;
	spec.kind = (enum msg_sect)(data[2] % 6);
	spec.fields = fields;
	spec.nfields = data[3] % 4;
	data += 4;
	size -= 4;

	msg = msg_parse(data, size, hide, NULL);
	check_part(msg, msg_root(msg), size, &budget);
	if (msg_size(msg) > 2 * size + 2)
		abort();
	env = msg_root(msg)->envelope;
	check_addresses(env->from);
	check_addresses(env->to);
	check_addresses(env->cc);
	if (env->date != NULL) {
		time_t t;
		int z;

		(void)msg_date_parse(env->date, strlen(env->date), &t, &z);
	}
	if (msg_section(msg, &spec, &body) == 0) {
		struct count whole = { 0, 0 }, part = { 0, 0 };
		size_t st, ln;

		if (msg_body_write(&body, 0, SIZE_MAX, count_write, &whole) != 0 ||
		    whole.n != body.size)
			abort();
		msg_partial(body.size, size % 7, size % 13, &st, &ln);
		if (msg_body_write(&body, st, ln, count_write, &part) != 0 || part.n != ln)
			abort();
	}
	msg_body_clear(&body);
	msg_free(&msg);
	return 0;
}
