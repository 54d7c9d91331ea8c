/*
 * fetch-render.c: ENVELOPE, BODY and BODYSTRUCTURE text, and section specifications.
 */
#include "imapd/fetch-render.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imapd/resp.h"
#include "mbox/address.h"

static void
add(struct dbuf *b, const char *s)
{
	dbuf_add(b, s, strlen(s));
}

void
fetch_render_nstring(struct dbuf *b, const char *s, size_t len)
{
	size_t i, start = 0;
	char hdr[32];

	if (s == NULL) {
		add(b, "NIL");
		return;
	}
	if (!resp_quotable(s, len)) {
		snprintf(hdr, sizeof(hdr), "{%zu}\r\n", len);
		add(b, hdr);
		dbuf_add(b, s, len);
		return;
	}
	dbuf_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		dbuf_add(b, s + start, i - start);
		dbuf_add(b, "\\", 1);
		start = i;
	}
	dbuf_add(b, s + start, len - start);
	dbuf_add(b, "\"", 1);
}

static void
nstr(struct dbuf *b, const char *s)
{
	fetch_render_nstring(b, s, s == NULL ? 0 : strlen(s));
}

/* An address list, or NIL when the field is absent or holds no address. */
static bool
render_addresses(struct dbuf *b, const char *field)
{
	struct addr_list l;
	size_t i;

	if (field == NULL)
		return false;
	addr_parse(field, strlen(field), &l);
	if (l.n == 0) {
		addr_list_free(&l);
		return false;
	}
	dbuf_add(b, "(", 1);
	for (i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];

		dbuf_add(b, "(", 1);
		nstr(b, a->name);
		dbuf_add(b, " ", 1);
		nstr(b, a->route);
		dbuf_add(b, " ", 1);
		nstr(b, a->mailbox);
		dbuf_add(b, " ", 1);
		nstr(b, a->host);
		dbuf_add(b, ")", 1);
	}
	dbuf_add(b, ")", 1);
	addr_list_free(&l);
	return true;
}

void
fetch_render_envelope(struct dbuf *b, const struct msg_envelope *env)
{
	dbuf_add(b, "(", 1);
	nstr(b, env->date);
	dbuf_add(b, " ", 1);
	nstr(b, env->subject);
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->from))
		add(b, "NIL");
	/* RFC 3501 7.4.2: absent or empty Sender and Reply-To take the value of From */
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->sender) && !render_addresses(b, env->from))
		add(b, "NIL");
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->reply_to) && !render_addresses(b, env->from))
		add(b, "NIL");
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->to))
		add(b, "NIL");
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->cc))
		add(b, "NIL");
	dbuf_add(b, " ", 1);
	if (!render_addresses(b, env->bcc))
		add(b, "NIL");
	dbuf_add(b, " ", 1);
	nstr(b, env->in_reply_to);
	dbuf_add(b, " ", 1);
	nstr(b, env->message_id);
	dbuf_add(b, ")", 1);
}

static void
render_params(struct dbuf *b, const struct msg_param *p, unsigned int n)
{
	unsigned int i;

	if (n == 0) {
		add(b, "NIL");
		return;
	}
	dbuf_add(b, "(", 1);
	for (i = 0; i < n; i++) {
		if (i > 0)
			dbuf_add(b, " ", 1);
		nstr(b, p[i].name);
		dbuf_add(b, " ", 1);
		nstr(b, p[i].value);
	}
	dbuf_add(b, ")", 1);
}

/* body-fld-lang: NIL, one string, or a list of the comma-separated tags. */
static void
render_language(struct dbuf *b, const char *lang)
{
	const char *p = lang, *tags[32];
	size_t lens[32], n = 0, i;

	while (p != NULL && *p != '\0' && n < 32) {
		const char *e;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (e = p; *e != '\0' && *e != ',' && *e != ' ' && *e != '\t' && *e != '('; e++)
			;
		if (e > p) {
			tags[n] = p;
			lens[n++] = (size_t)(e - p);
		}
		while (*e != '\0' && *e != ',')
			e++;
		p = e;
	}
	if (n == 0) {
		add(b, "NIL");
	} else if (n == 1) {
		fetch_render_nstring(b, tags[0], lens[0]);
	} else {
		dbuf_add(b, "(", 1);
		for (i = 0; i < n; i++) {
			if (i > 0)
				dbuf_add(b, " ", 1);
			fetch_render_nstring(b, tags[i], lens[i]);
		}
		dbuf_add(b, ")", 1);
	}
}

static void
render_disposition(struct dbuf *b, const struct msg_part *part)
{
	if (part->disposition == NULL) {
		add(b, "NIL");
		return;
	}
	dbuf_add(b, "(", 1);
	nstr(b, part->disposition);
	dbuf_add(b, " ", 1);
	render_params(b, part->disp_params, part->ndisp_params);
	dbuf_add(b, ")", 1);
}

static void
render_part(struct dbuf *b, const struct msg_part *part, bool ext)
{
	char num[64];
	const struct msg_part *c;

	dbuf_add(b, "(", 1);
	if (part->kind == MSG_PART_MULTIPART) {
		/* body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart] */
		for (c = part->children; c != NULL; c = c->next)
			render_part(b, c, ext);
		dbuf_add(b, " ", 1);
		nstr(b, part->subtype);
		if (ext) {
			dbuf_add(b, " ", 1);
			render_params(b, part->params, part->nparams);
			dbuf_add(b, " ", 1);
			render_disposition(b, part);
			dbuf_add(b, " ", 1);
			render_language(b, part->language);
			dbuf_add(b, " ", 1);
			nstr(b, part->location);
		}
		dbuf_add(b, ")", 1);
		return;
	}
	nstr(b, part->type);
	dbuf_add(b, " ", 1);
	nstr(b, part->subtype);
	dbuf_add(b, " ", 1);
	if (msg_name_eq(part->type, strlen(part->type), "text") &&
	    msg_param_get(part->params, part->nparams, "charset") == NULL) {
		/* RFC 2045 5.2: text without a charset is US-ASCII; say so, as Dovecot does */
		if (part->nparams == 0) {
			add(b, "(\"charset\" \"us-ascii\")");
		} else {
			render_params(b, part->params, part->nparams);
			b->len--;	/* reopen the list */
			add(b, " \"charset\" \"us-ascii\")");
		}
	} else {
		render_params(b, part->params, part->nparams);
	}
	dbuf_add(b, " ", 1);
	nstr(b, part->id);
	dbuf_add(b, " ", 1);
	nstr(b, part->description);
	dbuf_add(b, " ", 1);
	nstr(b, part->encoding != NULL && part->encoding[0] != '\0' ? part->encoding : "7bit");
	snprintf(num, sizeof(num), " %zu", part->body_size);
	add(b, num);
	if (part->kind == MSG_PART_MESSAGE) {
		/* body-type-msg: envelope, body and lines of the encapsulated message */
		dbuf_add(b, " ", 1);
		fetch_render_envelope(b, part->children->envelope);
		dbuf_add(b, " ", 1);
		render_part(b, part->children, ext);
		snprintf(num, sizeof(num), " %zu", part->body_lines);
		add(b, num);
	} else if (msg_name_eq(part->type, strlen(part->type), "text")) {
		snprintf(num, sizeof(num), " %zu", part->body_lines);
		add(b, num);
	}
	if (ext) {
		dbuf_add(b, " ", 1);
		nstr(b, part->md5);
		dbuf_add(b, " ", 1);
		render_disposition(b, part);
		dbuf_add(b, " ", 1);
		render_language(b, part->language);
		dbuf_add(b, " ", 1);
		nstr(b, part->location);
	}
	dbuf_add(b, ")", 1);
}

void
fetch_render_bodystructure(struct dbuf *b, const struct msg_part *part, bool extended)
{
	render_part(b, part, extended);
}

/* ---- section specifications ---- */

static bool
word_at(const char *p, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(p, word, n) == 0;
}

static int
parse_number(char **pp, uint64_t max, uint64_t *v_r)
{
	char *p = *pp;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
		p++;
	}
	*v_r = v;
	*pp = p;
	return 0;
}

static bool
is_astring_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")", names as atoms or quoted */
static int
parse_fields(char **pp, struct fetch_section *sec)
{
	char *p = *pp;
	size_t n = 0;

	if (*p++ != ' ' || *p++ != '(')
		return -1;
	for (;;) {
		char *start, *o;

		if (n >= FETCH_SECTION_FIELDS)
			return -1;
		if (*p == '"') {
			start = o = ++p;
			while (*p != '"') {
				if (*p == '\0' || *p == '\r' || *p == '\n')
					return -1;
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				*o++ = *p++;
			}
			p++;
			*o = '\0';
			/* the closing quote's byte may now be the terminator we wrote: fine */
		} else {
			start = p;
			while (is_astring_char((unsigned char)*p))
				p++;
			if (p == start)
				return -1;
		}
		sec->fields[n++] = start;
		if (*p == ')') {
			*p++ = '\0';
			break;
		}
		if (*p != ' ')
			return -1;
		*p++ = '\0';
	}
	sec->spec.fields = sec->fields;
	sec->spec.nfields = n;
	*pp = p;
	return 0;
}

int
fetch_section_parse(char **textp, bool binary, struct fetch_section *sec)
{
	char *p = *textp;
	uint64_t v;

	memset(sec, 0, sizeof(*sec));
	sec->spec.path = sec->path;
	sec->spec.kind = MSG_SECT_FULL;
	if (*p++ != '[')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (sec->spec.npath >= FETCH_SECTION_DEPTH || parse_number(&p, UINT32_MAX, &v) < 0 ||
		    v == 0)
			return -1;
		sec->path[sec->spec.npath++] = (unsigned int)v;
		if (*p != '.')
			break;
		p++;
		if (*p < '0' || *p > '9')
			break;
	}
	/* after part numbers: "]" directly, or "." and a section-text */
	if (sec->spec.npath > 0 && (p[-1] == '.' ? *p == ']' : *p != ']'))
		return -1;
	if (*p != ']') {
		if (binary)
			return -1;
		if (word_at(p, "HEADER.FIELDS.NOT")) {
			p += strlen("HEADER.FIELDS.NOT");
			sec->spec.kind = MSG_SECT_HEADER_FIELDS_NOT;
			if (parse_fields(&p, sec) < 0)
				return -1;
		} else if (word_at(p, "HEADER.FIELDS")) {
			p += strlen("HEADER.FIELDS");
			sec->spec.kind = MSG_SECT_HEADER_FIELDS;
			if (parse_fields(&p, sec) < 0)
				return -1;
		} else if (word_at(p, "HEADER")) {
			p += strlen("HEADER");
			sec->spec.kind = MSG_SECT_HEADER;
		} else if (word_at(p, "TEXT")) {
			p += strlen("TEXT");
			sec->spec.kind = MSG_SECT_TEXT;
		} else if (word_at(p, "MIME") && sec->spec.npath > 0) {
			p += strlen("MIME");
			sec->spec.kind = MSG_SECT_MIME;
		} else {
			return -1;
		}
	}
	if (*p++ != ']')
		return -1;
	if (*p == '<') {
		p++;
		if (parse_number(&p, UINT32_MAX, &sec->origin) < 0 || *p++ != '.' ||
		    parse_number(&p, UINT32_MAX, &sec->length) < 0 || sec->length == 0 ||
		    *p++ != '>')
			return -1;
		sec->partial = true;
	}
	*textp = p;
	return 0;
}

void
fetch_section_name(struct dbuf *b, const struct fetch_section *sec)
{
	char num[16];
	size_t i;

	for (i = 0; i < sec->spec.npath; i++) {
		snprintf(num, sizeof(num), i > 0 ? ".%u" : "%u", sec->path[i]);
		add(b, num);
	}
	if (sec->spec.kind == MSG_SECT_FULL)
		return;
	if (sec->spec.npath > 0)
		dbuf_add(b, ".", 1);
	switch (sec->spec.kind) {
	case MSG_SECT_HEADER: add(b, "HEADER"); return;
	case MSG_SECT_TEXT: add(b, "TEXT"); return;
	case MSG_SECT_MIME: add(b, "MIME"); return;
	case MSG_SECT_HEADER_FIELDS: add(b, "HEADER.FIELDS ("); break;
	default: add(b, "HEADER.FIELDS.NOT ("); break;
	}
	for (i = 0; i < sec->spec.nfields; i++) {
		const char *f = sec->fields[i];
		size_t k, n = strlen(f);
		bool atom = n > 0;

		for (k = 0; k < n; k++)
			atom &= is_astring_char((unsigned char)f[k]);
		if (i > 0)
			dbuf_add(b, " ", 1);
		if (atom)
			dbuf_add(b, f, n);
		else
			fetch_render_nstring(b, f, n);
	}
	dbuf_add(b, ")", 1);
}
