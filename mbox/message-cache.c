/*
 * message-cache.c: the header index and the per-session cache of parse results.
 *
 * The index is built with msg_hdr_next() itself, so the fields it records are exactly the
 * ones a parse would find; what it adds is that a later reader goes straight to them.  The
 * cache never evicts: when the budget is spent, further messages are just not kept, which
 * bounds memory without making a scan over a big mailbox thrash.
 */
#include "mbox/message-cache.h"

#include <stdlib.h>
#include <string.h>

/* Per allocation overhead assumed when counting bytes (glibc's chunk header, rounded). */
#define MALLOC_OVERHEAD	16

static const struct {
	const char *name;
	size_t len;
} hnames[MSG_H_COUNT] = {
	[MSG_H_DATE] = { "date", 4 },
	[MSG_H_SUBJECT] = { "subject", 7 },
	[MSG_H_FROM] = { "from", 4 },
	[MSG_H_SENDER] = { "sender", 6 },
	[MSG_H_REPLY_TO] = { "reply-to", 8 },
	[MSG_H_TO] = { "to", 2 },
	[MSG_H_CC] = { "cc", 2 },
	[MSG_H_BCC] = { "bcc", 3 },
	[MSG_H_IN_REPLY_TO] = { "in-reply-to", 11 },
	[MSG_H_MESSAGE_ID] = { "message-id", 10 },
};

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int
msg_hkind(const char *name, size_t len)
{
	int k;

	/* length and first letter rule out nearly every other field before any comparison */
	if (len < 2 || len > 11)
		return -1;
	for (k = 0; k < MSG_H_COUNT; k++) {
		size_t i;

		if (hnames[k].len != len || hnames[k].name[0] != lower((unsigned char)name[0]))
			continue;
		for (i = 1; i < len && hnames[k].name[i] == lower((unsigned char)name[i]); i++)
			;
		if (i == len)
			return k;
	}
	return -1;
}

struct msg_hindex *
msg_hindex_build(const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx)
{
	struct msg_hfield f[MSG_HINDEX_MAX_FIELDS];
	struct msg_hdr_iter it;
	struct msg_field fld;
	struct msg_hindex *hx;
	size_t n = 0, end;

	if (len > UINT32_MAX)
		return NULL;
	msg_hdr_iter_init(&it, data, len);
	while (msg_hdr_next(&it, &fld)) {
		size_t voff;
		int k;

		if (it.count >= MSG_MAX_HEADER_FIELDS)
			return NULL;	/* the iterator's "rest" mode: leave it to the parser */
		k = msg_hkind(fld.name, fld.name_len);
		if (k < 0 || (hide != NULL && hide(fld.name, fld.name_len, hide_ctx)))
			continue;
		voff = (size_t)((const unsigned char *)fld.value - data) - fld.off;
		/* a field of this name without a colon on its first line is left to the parser */
		if (n == MSG_HINDEX_MAX_FIELDS || voff == 0 || voff > UINT16_MAX ||
		    fld.value[-1] != ':' || memchr(data + fld.off, '\n', voff) != NULL)
			return NULL;
		f[n].off = (uint32_t)fld.off;
		f[n].len = (uint32_t)fld.len;
		f[n].voff = (uint16_t)voff;
		f[n].vtrim = (uint8_t)(fld.len - voff - fld.value_len);
		f[n].kind = (uint8_t)k;
		n++;
	}
	/* the header ends after its empty line, as the parser has it, or at the end */
	end = len;
	if (it.pos < len) {
		const unsigned char *nl = memchr(data + it.pos, '\n', len - it.pos);

		end = nl == NULL ? len : (size_t)(nl - data) + 1;
	}
	hx = malloc(sizeof(*hx) + n * sizeof(hx->f[0]));
	if (hx == NULL)
		abort();
	hx->header_len = (uint32_t)end;
	hx->blank_off = (uint32_t)it.pos;
	hx->nfields = (uint16_t)n;
	if (n > 0)
		memcpy(hx->f, f, n * sizeof(f[0]));
	return hx;
}

/*
 * Does data still hold, at f, one complete field of f's kind, as msg_hdr_next() splits?
 * Returns its visible size (bare LFs counted as CRLF, as msg_visible_size()), or 0 if not:
 * the one pass over the field's line ends serves both.
 */
static size_t
field_intact(const struct msg_hindex *hx, const unsigned char *data, size_t len,
	     const struct msg_hfield *f)
{
	size_t off = f->off, end = (size_t)f->off + f->len, colon, i, bare = 0;
	const unsigned char *q;

	if (end > hx->header_len || hx->header_len > len || f->voff == 0 || f->voff > f->len ||
	    (off > 0 && data[off - 1] != '\n'))
		return 0;
	/* the first colon of the first line ends the name */
	colon = off + f->voff - 1;
	if (data[colon] != ':' || memchr(data + off, ':', colon - off) != NULL ||
	    memchr(data + off, '\n', colon - off) != NULL)
		return 0;
	for (i = colon; i > off && (data[i - 1] == ' ' || data[i - 1] == '\t'); i--)
		;
	if (msg_hkind((const char *)data + off, i - off) != f->kind)
		return 0;
	/* every line end inside is a fold, and the field ends where the next line is not one */
	for (q = data + colon; (q = memchr(q, '\n', end - (size_t)(q - data))) != NULL; q++) {
		size_t nl = (size_t)(q - data);

		if (data[nl - 1] != '\r')
			bare++;
		if (nl + 1 == end)
			break;
		if (data[nl + 1] != ' ' && data[nl + 1] != '\t')
			return 0;
	}
	if (end < len && (data[end - 1] != '\n' || data[end] == ' ' || data[end] == '\t'))
		return 0;
	if ((size_t)f->len - f->voff < f->vtrim)
		return 0;
	return f->len + bare;
}

bool
msg_hindex_field(const struct msg_hindex *hx, const unsigned char *data, size_t len,
		 unsigned int k, struct msg_field *field_r)
{
	const struct msg_hfield *f;
	size_t ne;

	if (k >= hx->nfields || field_intact(hx, data, len, &hx->f[k]) == 0)
		return false;
	f = &hx->f[k];
	ne = f->off + (size_t)f->voff - 1;
	while (ne > f->off && (data[ne - 1] == ' ' || data[ne - 1] == '\t'))
		ne--;
	field_r->name = (const char *)data + f->off;
	field_r->name_len = ne - f->off;
	field_r->value = (const char *)data + f->off + f->voff;
	field_r->value_len = (size_t)f->len - f->voff - f->vtrim;
	field_r->off = f->off;
	field_r->len = f->len;
	return true;
}

bool
msg_hindex_covers(const struct msg_section_spec *spec)
{
	size_t i;

	if (spec->npath != 0 || spec->kind != MSG_SECT_HEADER_FIELDS)
		return false;
	for (i = 0; i < spec->nfields; i++) {
		if (msg_hkind(spec->fields[i], strlen(spec->fields[i])) < 0)
			return false;
	}
	return true;
}

static void
add_slice(struct msg_body *body, const unsigned char *p, size_t len, size_t size)
{
	if (body->nslices == body->cap) {
		size_t cap = body->cap == 0 ? 8 : body->cap * 2;
		struct msg_slice *s = realloc(body->slices, cap * sizeof(*s));

		if (s == NULL)
			abort();
		body->slices = s;
		body->cap = cap;
	}
	body->slices[body->nslices].p = p;
	body->slices[body->nslices].len = len;
	body->nslices++;
	body->size += size;
}

int
msg_hindex_section(const struct msg_hindex *hx, const unsigned char *data, size_t len,
		   const struct msg_section_spec *spec, struct msg_body *body)
{
	static const unsigned char crlf[2] = { '\r', '\n' };
	unsigned int want = 0, k;
	size_t i;

	body->nslices = 0;
	body->size = 0;
	body->part = NULL;
	for (i = 0; i < spec->nfields; i++) {
		int kind = msg_hkind(spec->fields[i], strlen(spec->fields[i]));

		if (kind < 0)
			return -1;
		want |= 1u << kind;
	}
	if (hx->header_len > len || hx->blank_off > hx->header_len)
		return -1;
	for (k = 0; k < hx->nfields; k++) {
		const struct msg_hfield *f = &hx->f[k];
		size_t size;

		if (!(want >> f->kind & 1))
			continue;
		if ((size = field_intact(hx, data, len, f)) == 0) {
			body->nslices = 0;
			body->size = 0;
			return -1;
		}
		add_slice(body, data + f->off, f->len, size);
	}
	if (hx->blank_off < hx->header_len) {
		size_t bl = hx->header_len - hx->blank_off;
		const unsigned char *b = data + hx->blank_off;

		/* still the empty line it was: "\n", "\r\n", or a lone "\r" at the very end */
		if (!(b[0] == '\n' ? bl == 1 : b[0] == '\r' && ((bl == 2 && b[1] == '\n') ||
		    (bl == 1 && hx->header_len == len)))) {
			body->nslices = 0;
			body->size = 0;
			return -1;
		}
		add_slice(body, b, bl, msg_visible_size(b, bl));
	} else {
		/* a header subset always ends with an empty line (RFC 3501 6.4.5) */
		add_slice(body, crlf, 2, 2);
	}
	return 0;
}

/* ---- the cache ---- */

struct centry {
	struct msg_cache_key key;
	struct msg_hindex *hx;		/* NULL: not indexable (or not indexed yet) */
	bool hx_tried;			/* msg_hindex_build ran (hx may still be NULL) */
	char *text;			/* the rendered texts, one after another */
	uint32_t tlen[MSG_CTEXT_COUNT];	/* UINT32_MAX: not cached */
	size_t bytes;			/* counted for this entry */
	size_t text_bytes;
};

struct msg_cache {
	struct centry **slots;
	size_t nslots;
	struct msg_hindex *spare;	/* the last index built but not kept */
	size_t bytes, text_bytes, max;
};

static size_t
hx_bytes(const struct msg_hindex *hx)
{
	return hx == NULL ? 0 : sizeof(*hx) + hx->nfields * sizeof(hx->f[0]) + MALLOC_OVERHEAD;
}

struct msg_cache *
msg_cache_new(size_t max_bytes)
{
	struct msg_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->max = max_bytes;
	c->bytes = sizeof(*c) + MALLOC_OVERHEAD;
	return c;
}

static void
drop(struct msg_cache *c, uint32_t slot)
{
	struct centry *e = c->slots[slot];

	if (e == NULL)
		return;
	c->bytes -= e->bytes;
	c->text_bytes -= e->text_bytes;
	free(e->hx);
	free(e->text);
	free(e);
	c->slots[slot] = NULL;
}

void
msg_cache_clear(struct msg_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nslots; i++)
		drop(c, (uint32_t)i);
}

void
msg_cache_free(struct msg_cache **cachep)
{
	struct msg_cache *c = *cachep;

	if (c == NULL)
		return;
	msg_cache_clear(c);
	free(c->spare);
	free(c->slots);
	free(c);
	*cachep = NULL;
}

size_t
msg_cache_bytes(const struct msg_cache *c)
{
	return c->bytes;
}

static bool
key_eq(const struct msg_cache_key *a, const struct msg_cache_key *b)
{
	return a->off == b->off && a->len == b->len && a->uid == b->uid;
}

/* The entry for slot under key: the existing one, or a new empty one if room; NULL if not. */
static struct centry *
entry(struct msg_cache *c, uint32_t slot, const struct msg_cache_key *key, size_t extra)
{
	struct centry *e;
	size_t k;

	if (slot >= c->nslots) {
		size_t n = c->nslots == 0 ? 1024 : c->nslots;
		struct centry **s;

		while (n <= slot)
			n *= 2;
		if ((n - c->nslots) * sizeof(*s) + c->bytes > c->max)
			return NULL;
		s = realloc(c->slots, n * sizeof(*s));
		if (s == NULL)
			abort();
		memset(s + c->nslots, 0, (n - c->nslots) * sizeof(*s));
		c->bytes += (n - c->nslots) * sizeof(*s);
		c->slots = s;
		c->nslots = n;
	}
	e = c->slots[slot];
	if (e != NULL && key_eq(&e->key, key))
		return e;
	drop(c, slot);
	if (c->bytes + sizeof(*e) + MALLOC_OVERHEAD + extra > c->max)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	e->key = *key;
	for (k = 0; k < MSG_CTEXT_COUNT; k++)
		e->tlen[k] = UINT32_MAX;
	e->bytes = sizeof(*e) + MALLOC_OVERHEAD;
	c->bytes += e->bytes;
	c->slots[slot] = e;
	return e;
}

const struct msg_hindex *
msg_cache_hindex(struct msg_cache *c, uint32_t slot, const struct msg_cache_key *key,
		 const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx)
{
	struct centry *e = slot < c->nslots ? c->slots[slot] : NULL;
	struct msg_hindex *hx;

	if (e != NULL && key_eq(&e->key, key) && e->hx_tried)
		return e->hx;
	hx = msg_hindex_build(data, len, hide, hide_ctx);
	e = entry(c, slot, key, hx_bytes(hx));
	if (e == NULL) {
		/* over budget: the index is still good for this one use */
		free(c->spare);
		c->spare = hx;
		return hx;
	}
	e->hx = hx;
	e->hx_tried = true;
	e->bytes += hx_bytes(hx);
	c->bytes += hx_bytes(hx);
	return hx;
}

bool
msg_cache_text(const struct msg_cache *c, uint32_t slot, const struct msg_cache_key *key,
	       enum msg_ctext kind, const char **p_r, size_t *len_r)
{
	const struct centry *e = slot < c->nslots ? c->slots[slot] : NULL;
	size_t off = 0;
	int k;

	if (e == NULL || !key_eq(&e->key, key) || e->tlen[kind] == UINT32_MAX)
		return false;
	for (k = 0; k < (int)kind; k++) {
		if (e->tlen[k] != UINT32_MAX)
			off += e->tlen[k];
	}
	*p_r = e->text + off;
	*len_r = e->tlen[kind];
	return true;
}

void
msg_cache_put_text(struct msg_cache *c, uint32_t slot, const struct msg_cache_key *key,
		   enum msg_ctext kind, const char *p, size_t len)
{
	struct centry *e;
	size_t have = 0, before = 0, grow, k;
	char *t;

	if (len >= UINT32_MAX || c->text_bytes + len > MSG_CACHE_TEXT_MAX_BYTES)
		return;
	e = entry(c, slot, key, len);
	if (e == NULL || e->tlen[kind] != UINT32_MAX)
		return;
	for (k = 0; k < MSG_CTEXT_COUNT; k++) {
		if (e->tlen[k] == UINT32_MAX)
			continue;
		have += e->tlen[k];
		if (k < (size_t)kind)
			before += e->tlen[k];
	}
	grow = len + (e->text == NULL ? MALLOC_OVERHEAD : 0);
	if (c->bytes + grow > c->max)
		return;
	t = realloc(e->text, have + len + 1);
	if (t == NULL)
		abort();
	memmove(t + before + len, t + before, have - before);
	if (len > 0)
		memcpy(t + before, p, len);
	e->text = t;
	e->tlen[kind] = (uint32_t)len;
	e->bytes += grow;
	e->text_bytes += grow;
	c->bytes += grow;
	c->text_bytes += grow;
}
