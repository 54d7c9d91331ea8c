/*
 * message-parse.c: one forward pass over a message that finds headers and MIME boundaries.
 *
 * The scanner walks the input line by line and keeps, at each line start, the number of LFs
 * and of bare LFs (no CR before) seen so far; every part's visible size and line count is a
 * difference of two such marks, so nothing is counted twice however deep the nesting.
 * Memory comes from a per-message arena: one allocation per part and per kept string.
 */
#include "mbox/message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mbox/message-int.h"

#define ARENA_CHUNK	4096

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(max_align_t) unsigned char data[];
};

/* Position in the input with the counts of everything before it. */
struct mark {
	size_t pos;
	size_t nl;	/* LFs before pos */
	size_t bare;	/* bare LFs before pos */
};

/* Where an entity's scan stopped: at a boundary line of the given stack level, or at EOF. */
struct stop {
	int level;	/* -1: end of input */
	bool close;	/* the boundary line was a close delimiter */
};

struct pctx {
	struct msg *msg;
	const unsigned char *d;
	size_t len;
	struct mark cur;		/* the current line start */
	const char *bnd[MSG_MAX_DEPTH];
	size_t bndlen[MSG_MAX_DEPTH];
	int nbnd;
	bool stop;			/* a limit was hit: no more boundaries, the rest is opaque */
	bool header_only;		/* msg_parse_header: the body is one opaque leaf */
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		abort();
	return p;
}

void *
msg_alloc(struct msg *msg, size_t n)
{
	struct arena_chunk *c = msg->arena;
	size_t al = (n + 15) & ~(size_t)15;
	void *p;

	if (al < n)
		abort();
	if (c == NULL || c->cap - c->used < al) {
		size_t cap = al > ARENA_CHUNK ? al : ARENA_CHUNK;

		c = xmalloc(sizeof(*c) + cap);
		c->cap = cap;
		c->used = 0;
		c->next = msg->arena;
		msg->arena = c;
	}
	p = c->data + c->used;
	c->used += al;
	memset(p, 0, n);
	return p;
}

char *
msg_strdup_n(struct msg *msg, const char *s, size_t len)
{
	char *p = msg_alloc(msg, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

bool
msg_name_eq(const char *s, size_t len, const char *name)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char a = (unsigned char)s[i], b = (unsigned char)name[i];

		if (b == '\0')
			return false;
		if (a >= 'A' && a <= 'Z')
			a += 32;
		if (b >= 'A' && b <= 'Z')
			b += 32;
		if (a != b)
			return false;
	}
	return name[len] == '\0';
}

const char *
msg_param_get(const struct msg_param *params, unsigned int n, const char *name)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (msg_name_eq(params[i].name, strlen(params[i].name), name))
			return params[i].value;
	}
	return NULL;
}

/* ---- header fields ---- */

static bool
is_blank_line(const unsigned char *d, size_t len, size_t pos)
{
	if (pos >= len)
		return false;
	return d[pos] == '\n' || (d[pos] == '\r' && (pos + 1 == len || d[pos + 1] == '\n'));
}

void
msg_hdr_iter_init(struct msg_hdr_iter *it, const unsigned char *hdr, size_t len)
{
	it->hdr = hdr;
	it->len = len;
	it->pos = 0;
	it->count = 0;
}

static size_t
next_line(const unsigned char *d, size_t len, size_t pos)
{
	const unsigned char *q = memchr(d + pos, '\n', len - pos);

	return q == NULL ? len : (size_t)(q - d) + 1;
}

bool
msg_hdr_next(struct msg_hdr_iter *it, struct msg_field *f)
{
	const unsigned char *d = it->hdr;
	size_t len = it->len, start = it->pos, next, lineend, colon, vend;
	bool rest = it->count >= MSG_MAX_HEADER_FIELDS;

	if (start >= len || is_blank_line(d, len, start))
		return false;
	next = next_line(d, len, start);
	lineend = next;
	while (next < len) {
		if (rest ? is_blank_line(d, len, next) : (d[next] != ' ' && d[next] != '\t'))
			break;
		next = next_line(d, len, next);
	}
	it->pos = next;
	it->count++;

	f->off = start;
	f->len = next - start;
	vend = next;
	if (vend > start && d[vend - 1] == '\n') {
		vend--;
		if (vend > start && d[vend - 1] == '\r')
			vend--;
	}
	for (colon = start; colon < lineend && d[colon] != ':'; colon++)
		;
	if (colon >= lineend || colon >= vend) {
		/* no colon: the line is the name, the value is empty */
		size_t ne = lineend < vend ? lineend : vend;

		if (ne > start && d[ne - 1] == '\n')
			ne--;
		if (ne > start && d[ne - 1] == '\r')
			ne--;
		f->name = (const char *)d + start;
		f->name_len = ne - start;
		f->value = (const char *)d + vend;
		f->value_len = 0;
		return true;
	}
	f->name = (const char *)d + start;
	f->name_len = colon - start;
	while (f->name_len > 0 && (f->name[f->name_len - 1] == ' ' ||
				   f->name[f->name_len - 1] == '\t'))
		f->name_len--;
	f->value = (const char *)d + colon + 1;
	f->value_len = vend - (colon + 1);
	return true;
}

bool
msg_hdr_find(const unsigned char *hdr, size_t len, const char *name, struct msg_field *f)
{
	struct msg_hdr_iter it;

	msg_hdr_iter_init(&it, hdr, len);
	while (msg_hdr_next(&it, f)) {
		if (msg_name_eq(f->name, f->name_len, name))
			return true;
	}
	return false;
}

size_t
msg_unfold(const char *v, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = v[i];

		/* RFC 5322 2.2.3: a fold's line end goes, the WSP after it stays */
		if (c == '\n' || (c == '\r' && i + 1 < len && v[i + 1] == '\n'))
			continue;
		if (o == 0 && (c == ' ' || c == '\t'))
			continue;
		out[o++] = c;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t' || out[o - 1] == '\r'))
		o--;
	out[o] = '\0';
	return o;
}

static const char *
unfold_dup(struct msg *msg, const struct msg_field *f)
{
	char *p = msg_alloc(msg, f->value_len + 1);

	msg_unfold(f->value, f->value_len, p);
	return p;
}

/* ---- structured field values (RFC 2045 5.1, 2183) ---- */

static const char *
skip_cfws(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else if (*p == '(') {
			unsigned int depth = 0;

			/* nested comments with a counter, so hostile nesting costs no stack */
			for (; p < end; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return p;
}

static bool
is_tspecial(unsigned char c)
{
	return c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static const char *
token_end(const char *p, const char *end)
{
	while (p < end && !is_tspecial((unsigned char)*p))
		p++;
	return p;
}

/* Parse `;`-separated parameters into params (up to MSG_MAX_PARAMS). */
static unsigned int
parse_params(struct msg *msg, const char *p, const char *end, struct msg_param *params)
{
	unsigned int n = 0;

	while (p < end) {
		const char *ns, *ne, *vs, *ve;
		char *val;
		size_t vl = 0;

		p = skip_cfws(p, end);
		if (p < end && *p != ';') {
			/* junk: skip to the next parameter */
			while (p < end && *p != ';')
				p++;
		}
		if (p >= end)
			break;
		p = skip_cfws(p + 1, end);
		ns = p;
		p = ne = token_end(p, end);
		p = skip_cfws(p, end);
		if (ne == ns || p >= end || *p != '=')
			continue;
		p = skip_cfws(p + 1, end);
		if (p < end && *p == '"') {
			vs = ++p;
			val = msg_alloc(msg, (size_t)(end - vs) + 1);
			for (; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				else if (*p == '\r' || *p == '\n')
					continue;	/* folding inside a quoted string */
				val[vl++] = *p;
			}
			if (p < end)
				p++;
		} else {
			/* lenient: unquoted values with tspecials (boundary=a=b) are common */
			vs = p;
			while (p < end && *p != ';' && *p != ' ' && *p != '\t' && *p != '\r' &&
			       *p != '\n' && *p != '(')
				p++;
			ve = p;
			val = msg_alloc(msg, (size_t)(ve - vs) + 1);
			memcpy(val, vs, (size_t)(ve - vs));
			vl = (size_t)(ve - vs);
		}
		val[vl] = '\0';
		if (n < MSG_MAX_PARAMS) {
			params[n].name = msg_strdup_n(msg, ns, (size_t)(ne - ns));
			params[n].value = val;
			n++;
		}
	}
	return n;
}

static const struct msg_param *
copy_params(struct msg *msg, const struct msg_param *tmp, unsigned int n)
{
	struct msg_param *p;

	if (n == 0)
		return NULL;
	p = msg_alloc(msg, n * sizeof(*p));
	memcpy(p, tmp, n * sizeof(*p));
	return p;
}

static void
parse_content_type(struct msg *msg, struct msg_part *part, const struct msg_field *f)
{
	const char *p = f->value, *end = f->value + f->value_len, *ts, *te, *ss, *se;
	struct msg_param tmp[MSG_MAX_PARAMS];
	unsigned int n;

	p = skip_cfws(p, end);
	ts = p;
	p = te = token_end(p, end);
	p = skip_cfws(p, end);
	if (te == ts || p >= end || *p != '/')
		return;		/* RFC 2045 5.2: invalid, so the default applies */
	p = skip_cfws(p + 1, end);
	ss = p;
	p = se = token_end(p, end);
	if (se == ss)
		return;
	n = parse_params(msg, p, end, tmp);
	part->type = msg_strdup_n(msg, ts, (size_t)(te - ts));
	part->subtype = msg_strdup_n(msg, ss, (size_t)(se - ss));
	part->params = copy_params(msg, tmp, n);
	part->nparams = n;
	part->flags &= ~(unsigned int)MSG_PART_DEFAULT_TYPE;
}

static void
parse_disposition(struct msg *msg, struct msg_part *part, const struct msg_field *f)
{
	const char *p = f->value, *end = f->value + f->value_len, *ts, *te;
	struct msg_param tmp[MSG_MAX_PARAMS];
	unsigned int n;

	p = skip_cfws(p, end);
	ts = p;
	p = te = token_end(p, end);
	if (te == ts)
		return;
	n = parse_params(msg, p, end, tmp);
	part->disposition = msg_strdup_n(msg, ts, (size_t)(te - ts));
	part->disp_params = copy_params(msg, tmp, n);
	part->ndisp_params = n;
}

static const char *
first_token(struct msg *msg, const struct msg_field *f)
{
	const char *end = f->value + f->value_len, *p = skip_cfws(f->value, end), *e;

	e = token_end(p, end);
	return msg_strdup_n(msg, p, (size_t)(e - p));
}

static const char *
no_space_dup(struct msg *msg, const struct msg_field *f)
{
	char *p = msg_alloc(msg, f->value_len + 1);
	size_t i, n = 0;

	for (i = 0; i < f->value_len; i++) {
		char c = f->value[i];

		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			p[n++] = c;
	}
	p[n] = '\0';
	return p;
}

enum fld {
	F_NONE, F_CTYPE, F_CTE, F_CID, F_CDESC, F_CMD5, F_CDISP, F_CLANG, F_CLOC,
	F_DATE, F_SUBJECT, F_FROM, F_SENDER, F_REPLY_TO, F_TO, F_CC, F_BCC, F_IRT, F_MSGID,
	F_COUNT
};

static const char *const fld_names[F_COUNT] = {
	[F_CTYPE] = "content-type", [F_CTE] = "content-transfer-encoding",
	[F_CID] = "content-id", [F_CDESC] = "content-description", [F_CMD5] = "content-md5",
	[F_CDISP] = "content-disposition", [F_CLANG] = "content-language",
	[F_CLOC] = "content-location", [F_DATE] = "date", [F_SUBJECT] = "subject",
	[F_FROM] = "from", [F_SENDER] = "sender", [F_REPLY_TO] = "reply-to", [F_TO] = "to",
	[F_CC] = "cc", [F_BCC] = "bcc", [F_IRT] = "in-reply-to", [F_MSGID] = "message-id",
};

static enum fld
field_kind(const char *name, size_t len)
{
	int i, lo, hi;

	if (len > 8 && (name[0] == 'c' || name[0] == 'C')) {
		lo = F_CTYPE;
		hi = F_CLOC;
	} else if (len <= 11) {
		lo = F_DATE;
		hi = F_MSGID;
	} else {
		return F_NONE;
	}
	for (i = lo; i <= hi; i++) {
		if (msg_name_eq(name, len, fld_names[i]))
			return (enum fld)i;
	}
	return F_NONE;
}

static bool
is_address_field(enum fld k)
{
	return k == F_FROM || k == F_SENDER || k == F_REPLY_TO || k == F_TO || k == F_CC ||
	       k == F_BCC;
}

/*
 * Repeated address fields (two From: lines) are joined with ", " into one list.  Done in a
 * second pass, only when it happens, so that the cost stays linear in the header size.
 */
static void
join_address_fields(struct pctx *ctx, struct msg_part *part, struct msg_envelope *env)
{
	static const enum fld kinds[] = { F_FROM, F_SENDER, F_REPLY_TO, F_TO, F_CC, F_BCC };
	const char **slots[] = { &env->from, &env->sender, &env->reply_to, &env->to, &env->cc,
				 &env->bcc };
	size_t total[6] = { 0 }, used[6] = { 0 }, i;
	unsigned int count[6] = { 0 };
	char *buf[6] = { NULL };
	struct msg_hdr_iter it;
	struct msg_field f;
	bool top = part->depth == 0;

	for (int pass = 0; pass < 2; pass++) {
		msg_hdr_iter_init(&it, ctx->d + part->header_off, part->header_len);
		while (msg_hdr_next(&it, &f)) {
			enum fld k = field_kind(f.name, f.name_len);

			if (top && ctx->msg->hide != NULL &&
			    ctx->msg->hide(f.name, f.name_len, ctx->msg->hide_ctx))
				continue;
			for (i = 0; i < 6 && kinds[i] != k; i++)
				;
			if (i == 6)
				continue;
			if (pass == 0) {
				total[i] += f.value_len + 2;
				count[i]++;
				continue;
			}
			if (count[i] < 2)
				continue;
			if (used[i] > 0) {
				buf[i][used[i]++] = ',';
				buf[i][used[i]++] = ' ';
			}
			used[i] += msg_unfold(f.value, f.value_len, buf[i] + used[i]);
		}
		for (i = 0; pass == 0 && i < 6; i++) {
			if (count[i] >= 2)
				buf[i] = msg_alloc(ctx->msg, total[i] + 1);
		}
	}
	for (i = 0; i < 6; i++) {
		if (buf[i] != NULL)
			*slots[i] = buf[i];
	}
}

/* Read the fields of a part's header: MIME fields always, envelope fields for messages. */
static void
parse_fields(struct pctx *ctx, struct msg_part *part, bool is_message, bool top)
{
	struct msg *msg = ctx->msg;
	struct msg_hdr_iter it;
	struct msg_field f;
	struct msg_envelope *env = NULL;
	bool seen[F_COUNT] = { false }, dup_addr = false;
	size_t hidden = 0, hidden_lines = 0;

	if (is_message) {
		env = msg_alloc(msg, sizeof(*env));
		part->envelope = env;
	}
	msg_hdr_iter_init(&it, ctx->d + part->header_off, part->header_len);
	while (msg_hdr_next(&it, &f)) {
		enum fld k;

		if (top && msg->hide != NULL && msg->hide(f.name, f.name_len, msg->hide_ctx)) {
			const unsigned char *fp = ctx->d + part->header_off + f.off;
			size_t i;

			hidden += msg_visible_size(fp, f.len);
			for (i = 0; i < f.len; i++)
				hidden_lines += fp[i] == '\n';
			continue;
		}
		k = field_kind(f.name, f.name_len);
		if (k == F_NONE || (k >= F_DATE && env == NULL))
			continue;
		if (seen[k]) {
			/* MIME fields: the first counts.  Envelope fields: the last, and address
			 * fields add up, as Dovecot shows them (RFC 5322 3.6 allows one each) */
			if (is_address_field(k))
				dup_addr = true;
			else if (k >= F_DATE)
				goto take;
			continue;
		}
		seen[k] = true;
take:
		switch (k) {
		case F_CTYPE: parse_content_type(msg, part, &f); break;
		case F_CTE: part->encoding = first_token(msg, &f); break;
		case F_CID: part->id = unfold_dup(msg, &f); break;
		case F_CDESC: part->description = unfold_dup(msg, &f); break;
		case F_CMD5: part->md5 = unfold_dup(msg, &f); break;
		case F_CDISP: parse_disposition(msg, part, &f); break;
		case F_CLANG: part->language = unfold_dup(msg, &f); break;
		case F_CLOC: part->location = no_space_dup(msg, &f); break;
		case F_DATE: env->date = unfold_dup(msg, &f); break;
		case F_SUBJECT: env->subject = unfold_dup(msg, &f); break;
		case F_FROM: env->from = unfold_dup(msg, &f); break;
		case F_SENDER: env->sender = unfold_dup(msg, &f); break;
		case F_REPLY_TO: env->reply_to = unfold_dup(msg, &f); break;
		case F_TO: env->to = unfold_dup(msg, &f); break;
		case F_CC: env->cc = unfold_dup(msg, &f); break;
		case F_BCC: env->bcc = unfold_dup(msg, &f); break;
		case F_IRT: env->in_reply_to = unfold_dup(msg, &f); break;
		case F_MSGID: env->message_id = unfold_dup(msg, &f); break;
		default: break;
		}
	}
	part->header_size -= hidden;
	part->header_lines -= hidden_lines;
	if (dup_addr)
		join_address_fields(ctx, part, env);
}

/* ---- the scanner ---- */

/* Advance past the line starting at ctx->cur.pos. */
static void
advance(struct pctx *ctx)
{
	const unsigned char *q = memchr(ctx->d + ctx->cur.pos, '\n', ctx->len - ctx->cur.pos);
	size_t i;

	if (q == NULL) {
		ctx->cur.pos = ctx->len;
		return;
	}
	i = (size_t)(q - ctx->d);
	ctx->cur.nl++;
	if (i == 0 || ctx->d[i - 1] != '\r')
		ctx->cur.bare++;
	ctx->cur.pos = i + 1;
}

#ifdef __SSE2__
/* Bits set in a 16-bit mask, without a libgcc call where the CPU baseline lacks POPCNT. */
static inline size_t
popcount16(unsigned int v)
{
	v = v - ((v >> 1) & 0x5555u);
	v = (v & 0x3333u) + ((v >> 2) & 0x3333u);
	v = (v + (v >> 4)) & 0x0f0fu;
	return (v + (v >> 8)) & 0x1fu;
}
#endif

/*
 * Count the LFs and bare LFs from the line start pos on.  With dashes, stop at the first line
 * start after pos that begins with "--" (a boundary candidate) and return it; otherwise, or if
 * there is none, return end.  This is where a parse spends its time on big bodies, hence the
 * 16-bytes-at-a-time path.
 */
static size_t
bulk_scan(const unsigned char *d, size_t pos, size_t end, bool dashes, struct mark *m)
{
	size_t i = pos;

	if (i == 0 && i < end) {
		/* the first byte has no predecessor to look at */
		if (d[0] == '\n') {
			m->nl++;
			m->bare++;
			if (dashes && end > 2 && d[1] == '-' && d[2] == '-')
				return 1;
		}
		i = 1;
	}
#ifdef __SSE2__
	{
		const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
		const __m128i dash = _mm_set1_epi8('-');

		while (i + 18 <= end) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
			__m128i vp = _mm_loadu_si128((const __m128i *)(const void *)(d + i - 1));
			unsigned int lfm = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
			unsigned int barem, crm;

			if (lfm == 0) {
				i += 16;
				continue;
			}
			crm = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(vp, cr));
			barem = lfm & ~crm;
			if (dashes) {
				__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(d + i + 1));
				__m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(d + i + 2));
				unsigned int dm = lfm &
					(unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, dash)) &
					(unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v2, dash));

				if (dm != 0) {
					unsigned int k = (unsigned int)__builtin_ctz(dm);
					unsigned int upto = k == 31 ? ~0u : (2u << k) - 1;

					m->nl += popcount16(lfm & upto);
					m->bare += popcount16(barem & upto);
					return i + k + 1;
				}
			}
			m->nl += popcount16(lfm);
			m->bare += popcount16(barem);
			i += 16;
		}
	}
#endif
	for (; i < end; i++) {
		if (d[i] != '\n')
			continue;
		m->nl++;
		if (d[i - 1] != '\r')
			m->bare++;
		if (dashes && i + 2 < end && d[i + 1] == '-' && d[i + 2] == '-')
			return i + 1;
	}
	return end;
}

/*
 * Is the line at ctx->cur.pos a boundary of an open multipart?  Returns its level or -1.
 * RFC 2046 5.1.1: the line need only begin with "--" and the boundary ("An exact match of the
 * entire candidate line is not required").  When several open boundaries match, the longest
 * wins, then the innermost, so nested multiparts with prefix-related boundaries still work.
 */
static int
boundary_at(const struct pctx *ctx, bool *close_r)
{
	const unsigned char *d = ctx->d;
	size_t p = ctx->cur.pos, avail = ctx->len - p, best_len = 0;
	int i, best = -1;

	if (ctx->nbnd == 0 || avail < 3 || d[p] != '-' || d[p + 1] != '-')
		return -1;
	for (i = ctx->nbnd - 1; i >= 0; i--) {
		size_t bl = ctx->bndlen[i];

		if (bl > best_len && avail - 2 >= bl && memcmp(d + p + 2, ctx->bnd[i], bl) == 0) {
			best = i;
			best_len = bl;
		}
	}
	if (best >= 0) {
		size_t r = p + 2 + best_len;

		*close_r = r + 1 < ctx->len && d[r] == '-' && d[r + 1] == '-';
	}
	return best;
}

/* The end of an entity that stops at the current line: before the previous line end. */
static struct mark
end_mark(const struct pctx *ctx, const struct mark *start, const struct stop *st)
{
	struct mark m = ctx->cur;

	if (st->level < 0 || m.pos <= start->pos)
		return m;
	/* the line start follows an LF; a CR before that LF is in the same line */
	m.pos--;
	m.nl--;
	if (m.pos > 0 && ctx->d[m.pos - 1] == '\r')
		m.pos--;
	else
		m.bare--;
	if (m.pos < start->pos)
		return *start;
	return m;
}

/* Scan lines until a boundary of any open multipart or the end of input. */
static struct stop
scan_to_boundary(struct pctx *ctx)
{
	struct stop st = { -1, false };

	if (ctx->stop || ctx->nbnd == 0) {
		/* nothing can end this body but the end of input */
		ctx->cur.pos = bulk_scan(ctx->d, ctx->cur.pos, ctx->len, false, &ctx->cur);
		return st;
	}
	while (ctx->cur.pos < ctx->len) {
		st.level = boundary_at(ctx, &st.close);
		if (st.level >= 0)
			return st;
		ctx->cur.pos = bulk_scan(ctx->d, ctx->cur.pos, ctx->len, true, &ctx->cur);
	}
	st.level = -1;
	return st;
}

static struct msg_part *
new_part(struct pctx *ctx, struct msg_part *parent, unsigned int depth)
{
	struct msg *msg = ctx->msg;
	struct msg_part *p;

	if (msg->nparts >= MSG_MAX_PARTS) {
		ctx->stop = true;
		msg->truncated = true;
		return NULL;
	}
	p = msg_alloc(msg, sizeof(*p));
	p->parent = parent;
	p->depth = depth;
	msg->nparts++;
	return p;
}

static void
set_default_type(struct msg_part *part, bool digest)
{
	static const struct msg_param charset = { "charset", "us-ascii" };

	part->flags |= MSG_PART_DEFAULT_TYPE;
	if (digest) {
		part->type = "message";
		part->subtype = "rfc822";
	} else {
		part->type = "text";
		part->subtype = "plain";
		part->params = &charset;
		part->nparams = 1;
	}
}

static void
append_child(struct msg_part *parent, struct msg_part *child, struct msg_part **lastp)
{
	if (*lastp == NULL)
		parent->children = child;
	else
		(*lastp)->next = child;
	*lastp = child;
	parent->nchildren++;
}

static void
set_body(struct msg_part *part, const struct mark *bs, const struct mark *be)
{
	part->body_off = bs->pos;
	part->body_len = be->pos - bs->pos;
	part->body_size = part->body_len + (be->bare - bs->bare);
	part->body_lines = be->nl - bs->nl;
}

static struct stop parse_entity(struct pctx *ctx, struct msg_part *part, bool is_message,
				bool digest);

/*
 * Set the body of an entity that stopped at st.  When the body is empty and the line end
 * before the boundary is the one of the empty line after the header, that empty line belongs to
 * the boundary (RFC 2046 5.1.1), so the header shrinks to end before it.
 */
static void
finish_entity(struct pctx *ctx, struct msg_part *part, const struct mark *hs, struct mark *bs,
	      const struct stop *st)
{
	struct mark be = end_mark(ctx, hs, st);

	if (be.pos < bs->pos) {
		part->header_len = be.pos - hs->pos;
		part->header_size = part->header_len + (be.bare - hs->bare);
		part->header_lines = be.nl - hs->nl;
		part->flags |= MSG_PART_HEADER_NO_BLANK;
		*bs = be;
	}
	set_body(part, bs, &be);
}

static struct stop
parse_multipart(struct pctx *ctx, struct msg_part *part, const char *boundary)
{
	struct msg_part *last = NULL;
	struct stop st;
	int level = ctx->nbnd;
	bool digest = msg_name_eq(part->subtype, strlen(part->subtype), "digest");

	ctx->bnd[level] = boundary;
	ctx->bndlen[level] = strlen(boundary);
	ctx->nbnd++;

	st = scan_to_boundary(ctx);		/* the preamble */
	while (st.level == level && !st.close) {
		struct msg_part *child;

		advance(ctx);			/* the delimiter line */
		child = new_part(ctx, part, part->depth + 1);
		if (child == NULL) {
			part->flags |= MSG_PART_TRUNCATED;
			st = scan_to_boundary(ctx);
			break;
		}
		append_child(part, child, &last);
		st = parse_entity(ctx, child, false, digest);
	}
	ctx->nbnd = level;
	if (st.level == level) {
		/* close delimiter: the epilogue runs to an outer boundary or the end */
		advance(ctx);
		st = scan_to_boundary(ctx);
	} else {
		part->flags |= MSG_PART_NO_FINAL_BOUNDARY;
	}
	if (part->nchildren == 0) {
		/* a multipart needs one body part (RFC 3501 body-type-mpart): make an empty one */
		struct msg_part *child = msg_alloc(ctx->msg, sizeof(*child));

		child->parent = part;
		child->depth = part->depth + 1;
		child->flags = MSG_PART_SYNTHETIC;
		set_default_type(child, false);
		child->kind = MSG_PART_LEAF;
		append_child(part, child, &last);
	}
	return st;
}

static struct stop
parse_entity(struct pctx *ctx, struct msg_part *part, bool is_message, bool digest)
{
	struct mark hs = ctx->cur, bs;
	struct stop st = { -1, false };
	bool hdr_done = false;

	/* the header: up to an empty line, a boundary or the end */
	part->header_off = hs.pos;
	while (ctx->cur.pos < ctx->len) {
		if (!ctx->stop && (st.level = boundary_at(ctx, &st.close)) >= 0)
			break;
		if (is_blank_line(ctx->d, ctx->len, ctx->cur.pos)) {
			advance(ctx);
			hdr_done = true;
			break;
		}
		advance(ctx);
	}
	if (hdr_done) {
		bs = ctx->cur;
	} else {
		part->flags |= MSG_PART_HEADER_NO_BLANK;
		bs = end_mark(ctx, &hs, &st);
	}
	part->header_len = bs.pos - hs.pos;
	part->header_size = part->header_len + (bs.bare - hs.bare);
	part->header_lines = bs.nl - hs.nl;

	set_default_type(part, digest);
	parse_fields(ctx, part, is_message, part->depth == 0);

	if (!hdr_done) {
		part->kind = MSG_PART_LEAF;
		set_body(part, &bs, &bs);
		if (msg_name_eq(part->type, strlen(part->type), "multipart")) {
			part->type = "application";
			part->subtype = "octet-stream";
			part->flags |= MSG_PART_DEFAULT_TYPE;
		}
		return st;
	}

	if (ctx->header_only) {
		/* no boundaries and no counting: the body's size is computed when asked for */
		struct mark be = bs;

		be.pos = ctx->len;
		part->kind = MSG_PART_LEAF;
		ctx->msg->body_uncounted = true;
		set_body(part, &bs, &be);
		return st;
	}
	if (msg_name_eq(part->type, strlen(part->type), "multipart")) {
		const char *b = msg_param_get(part->params, part->nparams, "boundary");
		size_t bl = b == NULL ? 0 : strlen(b);

		if (bl > 0 && bl <= MSG_MAX_BOUNDARY && part->depth < MSG_MAX_DEPTH - 1 &&
		    ctx->nbnd < MSG_MAX_DEPTH && !ctx->stop) {
			part->kind = MSG_PART_MULTIPART;
			st = parse_multipart(ctx, part, b);
			finish_entity(ctx, part, &hs, &bs, &st);
			if (part->children->flags & MSG_PART_SYNTHETIC) {
				/* the made-up part sits, empty, at the end of the body */
				struct msg_part *c = (struct msg_part *)(uintptr_t)part->children;

				c->header_off = c->body_off = part->body_off + part->body_len;
			}
			return st;
		}
		/* unusable multipart: an opaque leaf, typed so that renderers stay grammatical */
		part->type = "application";
		part->subtype = "octet-stream";
		part->flags |= MSG_PART_DEFAULT_TYPE;
		if (bl > 0 && bl <= MSG_MAX_BOUNDARY)
			part->flags |= MSG_PART_TRUNCATED;
	} else if (msg_name_eq(part->type, strlen(part->type), "message") &&
		   msg_name_eq(part->subtype, strlen(part->subtype), "rfc822") &&
		   msg_cte_parse(part->encoding) <= MSG_CTE_BINARY &&
		   part->depth < MSG_MAX_DEPTH - 1 && !ctx->stop) {
		struct msg_part *child = new_part(ctx, part, part->depth + 1);

		if (child != NULL) {
			part->kind = MSG_PART_MESSAGE;
			part->children = child;
			part->nchildren = 1;
			st = parse_entity(ctx, child, true, false);
			finish_entity(ctx, part, &hs, &bs, &st);
			return st;
		}
		part->flags |= MSG_PART_TRUNCATED;
	}
	part->kind = MSG_PART_LEAF;
	st = scan_to_boundary(ctx);
	finish_entity(ctx, part, &hs, &bs, &st);
	return st;
}

static struct msg *
parse(const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx, bool header_only)
{
	struct msg *msg = xmalloc(sizeof(*msg));
	struct pctx ctx;
	struct msg_part *root;

	memset(msg, 0, sizeof(*msg));
	msg->data = data;
	msg->len = len;
	msg->hide = hide;
	msg->hide_ctx = hide_ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.msg = msg;
	ctx.d = data;
	ctx.len = len;
	ctx.header_only = header_only;
	root = msg_alloc(msg, sizeof(*root));
	msg->nparts = 1;
	msg->root = root;
	(void)parse_entity(&ctx, root, true, false);
	if (ctx.stop)
		msg->truncated = true;
	return msg;
}

struct msg *
msg_parse(const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx)
{
	return parse(data, len, hide, hide_ctx, false);
}

struct msg *
msg_parse_header(const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx)
{
	return parse(data, len, hide, hide_ctx, true);
}

void
msg_free(struct msg **msgp)
{
	struct msg *msg = *msgp;
	struct arena_chunk *c, *n;

	if (msg == NULL)
		return;
	for (c = msg->arena; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	free(msg);
	*msgp = NULL;
}

void
msg_rebase(struct msg *msg, const unsigned char *data)
{
	msg->data = data;
}

const unsigned char *
msg_data(const struct msg *msg)
{
	return msg->data;
}

size_t
msg_data_len(const struct msg *msg)
{
	return msg->len;
}

const struct msg_part *
msg_root(const struct msg *msg)
{
	return msg->root;
}

size_t
msg_size(const struct msg *msg)
{
	return msg->root->header_size + msg_root_body_size(msg);
}

size_t
msg_root_body_size(const struct msg *msg)
{
	const struct msg_part *r = msg->root;

	if (msg->body_uncounted)
		return msg_visible_size(msg->data + r->body_off, r->body_len);
	return r->body_size;
}

bool
msg_field_hidden(const struct msg *msg, const char *name, size_t len)
{
	return msg->hide != NULL && msg->hide(name, len, msg->hide_ctx);
}

unsigned int
msg_part_count(const struct msg *msg)
{
	return msg->nparts;
}

bool
msg_truncated(const struct msg *msg)
{
	return msg->truncated;
}

size_t
msg_visible_size(const unsigned char *p, size_t len)
{
	const unsigned char *s = p, *e = p + len, *q;
	size_t n = len;

	while (s < e && (q = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		if (q == p || q[-1] != '\r')
			n++;
		s = q + 1;
	}
	return n;
}
