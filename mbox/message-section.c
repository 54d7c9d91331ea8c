/*
 * message-section.c: RFC 3501 6.4.5 section addressing, partial ranges, and the writer that
 * shows clients CRLF line ends.
 */
#include "mbox/message.h"

#include <stdlib.h>
#include <string.h>

#include "mbox/message-int.h"

static const unsigned char crlf[2] = { '\r', '\n' };

enum msg_cte
msg_cte_parse(const char *enc)
{
	size_t len;

	if (enc == NULL || *enc == '\0')
		return MSG_CTE_7BIT;
	len = strlen(enc);
	if (msg_name_eq(enc, len, "7bit"))
		return MSG_CTE_7BIT;
	if (msg_name_eq(enc, len, "8bit"))
		return MSG_CTE_8BIT;
	if (msg_name_eq(enc, len, "binary"))
		return MSG_CTE_BINARY;
	if (msg_name_eq(enc, len, "base64"))
		return MSG_CTE_BASE64;
	if (msg_name_eq(enc, len, "quoted-printable"))
		return MSG_CTE_QP;
	return MSG_CTE_UNKNOWN;
}

void
msg_body_clear(struct msg_body *body)
{
	free(body->slices);
	body->slices = NULL;
	body->nslices = body->cap = 0;
	body->size = 0;
	body->part = NULL;
}

static void
reset(struct msg_body *body)
{
	body->nslices = 0;
	body->size = 0;
	body->part = NULL;
}

/* Append a slice, merging it with the previous one when they touch. */
static void
add_slice(struct msg_body *body, const unsigned char *p, size_t len, size_t vsize)
{
	struct msg_slice *s;

	body->size += vsize;
	if (len == 0)
		return;
	if (body->nslices > 0) {
		s = &body->slices[body->nslices - 1];
		if (s->p + s->len == p && s->p != crlf) {
			s->len += len;
			return;
		}
	}
	if (body->nslices == body->cap) {
		size_t cap = body->cap == 0 ? 4 : body->cap * 2;

		s = realloc(body->slices, cap * sizeof(*s));
		if (s == NULL)
			abort();
		body->slices = s;
		body->cap = cap;
	}
	body->slices[body->nslices].p = p;
	body->slices[body->nslices].len = len;
	body->nslices++;
}

static bool
field_listed(const struct msg_field *f, const struct msg_section_spec *spec)
{
	size_t i;

	for (i = 0; i < spec->nfields; i++) {
		if (msg_name_eq(f->name, f->name_len, spec->fields[i]))
			return true;
	}
	return false;
}

/*
 * The header of part as the client sees it: hidden fields dropped at the top level, and for
 * the HEADER.FIELDS forms only the fields asked for (or not), then the empty line.
 */
static void
add_header(const struct msg *msg, const struct msg_part *part, enum msg_sect kind,
	   const struct msg_section_spec *spec, struct msg_body *body)
{
	const unsigned char *hdr = msg->data + part->header_off;
	bool hide = part == msg->root && msg->hide != NULL;
	struct msg_hdr_iter it;
	struct msg_field f;

	if (!hide && kind != MSG_SECT_HEADER_FIELDS && kind != MSG_SECT_HEADER_FIELDS_NOT) {
		add_slice(body, hdr, part->header_len, part->header_size);
		return;
	}
	msg_hdr_iter_init(&it, hdr, part->header_len);
	while (msg_hdr_next(&it, &f)) {
		if (hide && msg->hide(f.name, f.name_len, msg->hide_ctx))
			continue;
		if (kind == MSG_SECT_HEADER_FIELDS && !field_listed(&f, spec))
			continue;
		if (kind == MSG_SECT_HEADER_FIELDS_NOT && field_listed(&f, spec))
			continue;
		add_slice(body, hdr + f.off, f.len, msg_visible_size(hdr + f.off, f.len));
	}
	if (it.pos < part->header_len) {
		/* the empty line that ends the header */
		add_slice(body, hdr + it.pos, part->header_len - it.pos,
			  msg_visible_size(hdr + it.pos, part->header_len - it.pos));
	} else if (kind != MSG_SECT_HEADER) {
		/* a header subset always ends with an empty line (RFC 3501 6.4.5) */
		add_slice(body, crlf, 2, 2);
	}
}

static void
add_part_body(const struct msg *msg, const struct msg_part *part, struct msg_body *body)
{
	size_t size = part == msg->root ? msg_root_body_size(msg) : part->body_size;

	add_slice(body, msg->data + part->body_off, part->body_len, size);
}

void
msg_part_full(const struct msg *msg, const struct msg_part *part, struct msg_body *body)
{
	reset(body);
	add_header(msg, part, MSG_SECT_HEADER, NULL, body);
	add_part_body(msg, part, body);
	body->part = part;
}

static const struct msg_part *
nth_child(const struct msg_part *p, unsigned int k)
{
	const struct msg_part *c;

	for (c = p->children; c != NULL && k > 1; c = c->next)
		k--;
	return c;
}

/*
 * Part numbers: in a message whose body is not multipart, part 1 is that body; in a multipart,
 * part n is the nth body part; a message/rfc822 part's numbers continue inside the
 * encapsulated message by the same rules (RFC 3501 6.4.5); a leaf is its own part 1.
 */
static const struct msg_part *
resolve_path(const struct msg *msg, const unsigned int *path, size_t n)
{
	const struct msg_part *p = msg->root;
	bool in_message = true;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned int k = path[i];

		if (k == 0)
			return NULL;
		if (!in_message && p->kind == MSG_PART_MESSAGE) {
			p = p->children;
			in_message = true;
		}
		if (p->kind == MSG_PART_MULTIPART)
			p = nth_child(p, k);
		else if (k != 1 || (!in_message && p->envelope != NULL))
			return NULL;
		/* else: a message's single part is its part 1 (RFC 3501 6.4.5), and, as Dovecot
		 * allows, a leaf body part is its own part 1 (BODY[2.1] of a leaf part 2) */
		if (p == NULL)
			return NULL;
		in_message = false;
	}
	return p;
}

int
msg_section(const struct msg *msg, const struct msg_section_spec *spec, struct msg_body *body)
{
	const struct msg_part *p;

	reset(body);
	if (spec->npath == 0) {
		p = msg->root;
		switch (spec->kind) {
		case MSG_SECT_FULL:
			add_header(msg, p, MSG_SECT_HEADER, spec, body);
			add_part_body(msg, p, body);
			return 0;
		case MSG_SECT_TEXT:
			add_part_body(msg, p, body);
			return 0;
		case MSG_SECT_MIME:
			return MSG_ENOTMSG;
		default:
			add_header(msg, p, spec->kind, spec, body);
			return 0;
		}
	}
	p = resolve_path(msg, spec->path, spec->npath);
	if (p == NULL)
		return MSG_ENOPART;
	body->part = p;
	switch (spec->kind) {
	case MSG_SECT_FULL:
		add_part_body(msg, p, body);
		return 0;
	case MSG_SECT_MIME:
		add_header(msg, p, MSG_SECT_HEADER, spec, body);
		return 0;
	default:
		break;
	}
	if (p->kind != MSG_PART_MESSAGE) {
		body->part = NULL;
		return MSG_ENOTMSG;
	}
	p = p->children;
	if (spec->kind == MSG_SECT_TEXT)
		add_part_body(msg, p, body);
	else
		add_header(msg, p, spec->kind, spec, body);
	return 0;
}

void
msg_partial(size_t size, uint64_t origin, uint64_t length, size_t *start_r, size_t *len_r)
{
	if (origin >= size) {
		*start_r = size;
		*len_r = 0;
		return;
	}
	*start_r = (size_t)origin;
	*len_r = length < size - origin ? (size_t)length : size - (size_t)origin;
}

struct wstate {
	size_t skip, left;
	msg_write_fn *write;
	void *ctx;
};

/* Emit visible bytes p[0..n), honouring the part of the range still to skip or to send. */
static int
emit(struct wstate *w, const unsigned char *p, size_t n)
{
	if (w->skip >= n) {
		w->skip -= n;
		return 0;
	}
	p += w->skip;
	n -= w->skip;
	w->skip = 0;
	if (n > w->left)
		n = w->left;
	w->left -= n;
	return n == 0 ? 0 : w->write(w->ctx, p, n);
}

int
msg_body_write(const struct msg_body *body, size_t start, size_t len, msg_write_fn *write,
	       void *ctx)
{
	struct wstate w;
	size_t i;
	int ret;

	if (start >= body->size)
		return 0;
	w.skip = start;
	w.left = len < body->size - start ? len : body->size - start;
	w.write = write;
	w.ctx = ctx;
	for (i = 0; i < body->nslices && w.left > 0; i++) {
		const unsigned char *s = body->slices[i].p, *e = s + body->slices[i].len;
		const unsigned char *r = s, *q;

		if (w.skip >= body->slices[i].len * 2) {
			/* cannot reach the range even if every byte were a bare LF */
			size_t vs = msg_visible_size(s, body->slices[i].len);

			if (w.skip >= vs) {
				w.skip -= vs;
				continue;
			}
		}
		const unsigned char *p = s;

		while (p < e && w.left > 0 && (q = memchr(p, '\n', (size_t)(e - p))) != NULL) {
			p = q + 1;
			if (q != s && q[-1] == '\r')
				continue;	/* CRLF: stays in the run */
			if ((ret = emit(&w, r, (size_t)(q - r))) != 0 ||
			    (ret = emit(&w, crlf, 2)) != 0)
				return ret;
			r = p;
		}
		if (r < e && w.left > 0 && (ret = emit(&w, r, (size_t)(e - r))) != 0)
			return ret;
	}
	return 0;
}
