/*
 * decode.c: bounded buffers and the base64 / quoted-printable stream decoders.
 */
#include "mbox/decode.h"

#include <stdlib.h>
#include <string.h>

/* Raw bytes decoded per step when streaming a part. */
#define DECODE_CHUNK	65536

void
dbuf_init(struct dbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
dbuf_free(struct dbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void
dbuf_reset(struct dbuf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

bool
dbuf_add(struct dbuf *b, const void *p, size_t len)
{
	bool ok = true;

	if (len > b->max - b->len) {
		len = b->max - b->len;
		b->overflow = true;
		ok = false;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap < 64 ? 64 : b->cap;
		char *n;

		while (cap < b->len + len + 1)
			cap *= 2;
		n = realloc(b->data, cap);
		if (n == NULL)
			abort();
		b->data = n;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return ok;
}

/* ---- base64 (RFC 2045 6.8) ---- */

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Flush a partial quantum: 2 characters give 1 byte, 3 give 2. */
static size_t
b64_flush(struct decoder *d, unsigned char *out)
{
	size_t o = 0;

	if (d->n == 2) {
		out[o++] = (unsigned char)(d->acc >> 4);
	} else if (d->n == 3) {
		out[o++] = (unsigned char)(d->acc >> 10);
		out[o++] = (unsigned char)(d->acc >> 2);
	}
	d->n = 0;
	d->acc = 0;
	return o;
}

static size_t
b64_feed(struct decoder *d, const unsigned char *in, size_t len, unsigned char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int v = b64_value(in[i]);

		if (v < 0) {
			if (in[i] == '=')
				o += b64_flush(d, out + o);
			else if (in[i] != '\r' && in[i] != '\n' && in[i] != ' ' && in[i] != '\t')
				d->junk++;
			continue;
		}
		d->acc = (d->acc << 6) | (uint32_t)v;
		if (++d->n == 4) {
			out[o++] = (unsigned char)(d->acc >> 16);
			out[o++] = (unsigned char)(d->acc >> 8);
			out[o++] = (unsigned char)d->acc;
			d->n = 0;
			d->acc = 0;
		}
	}
	return o;
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

enum qp_state {
	QP_TEXT, QP_CR, QP_EQ, QP_EQ1, QP_EQ_WS, QP_EQ_CR
};

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t
qp_release(struct decoder *d, unsigned char *out)
{
	size_t n = d->nhold;

	memcpy(out, d->hold, n);
	d->nhold = 0;
	return n;
}

static size_t
qp_feed(struct decoder *d, const unsigned char *in, size_t len, unsigned char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = in[i];
		int h;

again:
		switch ((enum qp_state)d->state) {
		case QP_TEXT:
			if (c == '=') {
				d->state = QP_EQ;
			} else if (c == ' ' || c == '\t') {
				if (d->nhold == DEC_HOLD_MAX)
					o += qp_release(d, out + o);
				d->hold[d->nhold++] = c;
			} else if (c == '\r') {
				d->state = QP_CR;
			} else if (c == '\n') {
				/* hard line break: trailing white space goes (rule 3) */
				d->nhold = 0;
				out[o++] = '\r';
				out[o++] = '\n';
			} else {
				o += qp_release(d, out + o);
				out[o++] = c;
			}
			break;
		case QP_CR:
			d->state = QP_TEXT;
			if (c == '\n') {
				d->nhold = 0;
				out[o++] = '\r';
				out[o++] = '\n';
				break;
			}
			o += qp_release(d, out + o);
			out[o++] = '\r';
			goto again;
		case QP_EQ:
			o += qp_release(d, out + o);
			if ((h = hexval(c)) >= 0) {
				d->acc = (uint32_t)h;
				d->n = c;
				d->state = QP_EQ1;
			} else if (c == ' ' || c == '\t') {
				d->state = QP_EQ_WS;
			} else if (c == '\r') {
				d->state = QP_EQ_CR;
			} else if (c == '\n') {
				d->state = QP_TEXT;	/* soft line break */
			} else {
				out[o++] = '=';
				d->state = QP_TEXT;
				goto again;
			}
			break;
		case QP_EQ1:
			d->state = QP_TEXT;
			if ((h = hexval(c)) >= 0) {
				out[o++] = (unsigned char)(d->acc << 4 | (uint32_t)h);
				break;
			}
			out[o++] = '=';
			out[o++] = (unsigned char)d->n;
			goto again;
		case QP_EQ_WS:
			/* "=" then transport padding: a soft break if the line ends here */
			if (c == ' ' || c == '\t')
				break;
			if (c == '\r') {
				d->state = QP_EQ_CR;
				break;
			}
			d->state = QP_TEXT;
			if (c == '\n')
				break;
			out[o++] = '=';
			goto again;
		case QP_EQ_CR:
			d->state = QP_TEXT;
			if (c == '\n')
				break;
			goto again;
		}
	}
	return o;
}

static size_t
qp_finish(struct decoder *d, unsigned char *out)
{
	size_t o = 0;

	switch ((enum qp_state)d->state) {
	case QP_CR:
		o += qp_release(d, out);
		out[o++] = '\r';
		break;
	case QP_EQ:
	case QP_EQ_WS:
	case QP_EQ_CR:
		break;		/* "=" at the very end: a soft break before nothing */
	case QP_EQ1:
		out[o++] = '=';
		out[o++] = (unsigned char)d->n;
		break;
	default:
		break;
	}
	d->nhold = 0;	/* white space at the very end is trailing */
	d->state = QP_TEXT;
	return o;
}

void
decoder_init(struct decoder *d, enum msg_cte cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
}

size_t
decoder_feed(struct decoder *d, const unsigned char *in, size_t len, unsigned char *out)
{
	switch (d->cte) {
	case MSG_CTE_BASE64:
		return b64_feed(d, in, len, out);
	case MSG_CTE_QP:
		return qp_feed(d, in, len, out);
	default:
		memcpy(out, in, len);
		return len;
	}
}

size_t
decoder_finish(struct decoder *d, unsigned char *out)
{
	switch (d->cte) {
	case MSG_CTE_BASE64:
		return b64_flush(d, out);
	case MSG_CTE_QP:
		return qp_finish(d, out);
	default:
		return 0;
	}
}

/* ---- whole parts ---- */

struct dwrite {
	size_t skip, left, total;
	msg_write_fn *write;
	void *ctx;
};

static int
dw_emit(struct dwrite *w, const unsigned char *p, size_t n)
{
	w->total += n;
	if (w->write == NULL)
		return 0;
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

static int
decode_part(const struct msg *msg, const struct msg_part *part, struct dwrite *w)
{
	enum msg_cte cte = msg_cte_parse(part->encoding);
	const unsigned char *p = msg_data(msg) + part->body_off;
	size_t left = part->body_len;
	struct decoder d;
	unsigned char *out;
	int ret = 0;

	if (cte == MSG_CTE_UNKNOWN)
		return -1;
	out = malloc(DEC_OUT_MAX(DECODE_CHUNK));
	if (out == NULL)
		abort();
	decoder_init(&d, cte);
	while (left > 0 && ret == 0 && (w->write == NULL || w->left > 0)) {
		size_t n = left < DECODE_CHUNK ? left : DECODE_CHUNK;

		ret = dw_emit(w, out, decoder_feed(&d, p, n, out));
		p += n;
		left -= n;
	}
	if (ret == 0 && left == 0)
		ret = dw_emit(w, out, decoder_finish(&d, out));
	free(out);
	return ret;
}

int
msg_decoded_size(const struct msg *msg, const struct msg_part *part, size_t *size_r)
{
	enum msg_cte cte = msg_cte_parse(part->encoding);
	struct dwrite w = { 0, 0, 0, NULL, NULL };

	if (cte == MSG_CTE_UNKNOWN)
		return -1;
	if (cte <= MSG_CTE_BINARY) {
		*size_r = part->body_size;
		return 0;
	}
	(void)decode_part(msg, part, &w);
	*size_r = w.total;
	return 0;
}

int
msg_decoded_write(const struct msg *msg, const struct msg_part *part, size_t start, size_t len,
		  msg_write_fn *write, void *ctx)
{
	enum msg_cte cte = msg_cte_parse(part->encoding);
	struct dwrite w = { start, len, 0, write, ctx };

	if (cte == MSG_CTE_UNKNOWN)
		return -1;
	if (cte <= MSG_CTE_BINARY) {
		struct msg_slice slice;
		struct msg_body body = MSG_BODY_INIT;

		slice.p = msg_data(msg) + part->body_off;
		slice.len = part->body_len;
		body.slices = &slice;
		body.nslices = body.cap = 1;
		body.size = part->body_size;
		return msg_body_write(&body, start, len, write, ctx);
	}
	return decode_part(msg, part, &w);
}
