/*
 * address.c: a forgiving RFC 5322 address-list parser.
 *
 * A small lexer turns the value into words (atoms, which keep their dots, and quoted strings),
 * domain literals and specials, skipping comments but remembering the last one (a bare
 * "user@host (Name)" uses it as display name, as other servers do).  The parser then reads
 * address after address and resynchronises at "," or ";" whenever the input stops making sense.
 */
#include "mbox/address.h"

#include <stdlib.h>
#include <string.h>

enum tok {
	T_END, T_WORD, T_QUOTED, T_LITERAL, T_SPECIAL
};

struct lexer {
	const char *p, *end;
	const char *comment;	/* the last comment seen, without parens */
	size_t comment_len;
};

struct token {
	enum tok kind;
	char c;			/* T_SPECIAL */
	const char *s;		/* T_WORD, T_LITERAL: raw; T_QUOTED: inside the quotes */
	size_t len;
};

struct parser {
	struct lexer lx;
	struct addr_list *list;
	char *pool;
	size_t used, cap;
	char *phrase, *local;	/* scratch, each len + 1 bytes */
	size_t phrase_len, local_len;
	bool phrase_quoted;
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		abort();
	return p;
}

static bool
is_special(unsigned char c)
{
	return c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' ||
	       c == '"' || c == '(' || c == ')' || c == '[' || c == ']' || c == '\\';
}

static void
skip_cfws(struct lexer *lx)
{
	while (lx->p < lx->end) {
		unsigned char c = (unsigned char)*lx->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->p++;
		} else if (c == '(') {
			const char *start = ++lx->p;
			unsigned int depth = 1;

			while (lx->p < lx->end) {
				if (*lx->p == '\\' && lx->p + 1 < lx->end)
					lx->p++;
				else if (*lx->p == '(')
					depth++;
				else if (*lx->p == ')' && --depth == 0)
					break;
				lx->p++;
			}
			lx->comment = start;
			lx->comment_len = (size_t)(lx->p - start);
			if (lx->p < lx->end)
				lx->p++;
		} else {
			break;
		}
	}
}

static struct token
lex(struct lexer *lx)
{
	struct token t = { T_END, 0, NULL, 0 };
	unsigned char c;

	skip_cfws(lx);
	if (lx->p >= lx->end)
		return t;
	c = (unsigned char)*lx->p;
	if (c == '"') {
		t.kind = T_QUOTED;
		t.s = ++lx->p;
		while (lx->p < lx->end && *lx->p != '"') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			lx->p++;
		}
		t.len = (size_t)(lx->p - t.s);
		if (lx->p < lx->end)
			lx->p++;
		return t;
	}
	if (c == '[') {
		t.kind = T_LITERAL;
		t.s = lx->p++;
		while (lx->p < lx->end && *lx->p != ']') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			lx->p++;
		}
		if (lx->p < lx->end)
			lx->p++;
		t.len = (size_t)(lx->p - t.s);
		return t;
	}
	if (is_special(c)) {
		t.kind = T_SPECIAL;
		t.c = (char)c;
		lx->p++;
		return t;
	}
	t.kind = T_WORD;
	t.s = lx->p;
	while (lx->p < lx->end) {
		c = (unsigned char)*lx->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || is_special(c))
			break;
		lx->p++;
	}
	t.len = (size_t)(lx->p - t.s);
	return t;
}

static struct token
peek(struct parser *ps)
{
	struct lexer save = ps->lx;
	struct token t = lex(&ps->lx);

	ps->lx = save;
	return t;
}

/* Copy token text, removing quoted-pair backslashes and line ends from quoted strings. */
static size_t
copy_text(char *out, const struct token *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->len; i++) {
		char c = t->s[i];

		if (t->kind == T_QUOTED) {
			if (c == '\\' && i + 1 < t->len)
				c = t->s[++i];
			else if (c == '\r' || c == '\n')
				continue;
		}
		out[n++] = c;
	}
	return n;
}

static const char *
pool_add(struct parser *ps, const char *s, size_t len)
{
	char *p;

	if (ps->cap - ps->used < len + 1)
		abort();	/* the pool is sized for the worst case; see addr_parse */
	p = ps->pool + ps->used;
	memcpy(p, s, len);
	p[len] = '\0';
	ps->used += len + 1;
	return p;
}

static void
emit(struct parser *ps, const char *name, const char *route, const char *mailbox,
     const char *host)
{
	struct addr_list *l = ps->list;

	if (l->n >= ADDR_MAX_COUNT) {
		l->truncated = true;
		return;
	}
	l->v[l->n].name = name;
	l->v[l->n].route = route;
	l->v[l->n].mailbox = mailbox;
	l->v[l->n].host = host;
	l->n++;
}

/* Read words into both the phrase (space-joined) and the local part (concatenated). */
static struct token
read_words(struct parser *ps)
{
	struct token t;

	ps->phrase_len = ps->local_len = 0;
	ps->phrase_quoted = false;
	for (;;) {
		t = lex(&ps->lx);
		if (t.kind != T_WORD && t.kind != T_QUOTED && t.kind != T_LITERAL)
			return t;
		if (t.kind == T_QUOTED)
			ps->phrase_quoted = true;
		if (ps->phrase_len > 0)
			ps->phrase[ps->phrase_len++] = ' ';
		ps->phrase_len += copy_text(ps->phrase + ps->phrase_len, &t);
		ps->local_len += copy_text(ps->local + ps->local_len, &t);
	}
}

/* Read a domain: words and literals up to a delimiter.  Returns the token that ended it. */
static struct token
read_domain(struct parser *ps, const char **host_r)
{
	struct token t;
	size_t start = ps->used, n = 0;

	for (;;) {
		t = lex(&ps->lx);
		if (t.kind != T_WORD && t.kind != T_LITERAL && t.kind != T_QUOTED)
			break;
		if (ps->cap - ps->used - n < t.len + 1)
			abort();
		n += copy_text(ps->pool + start + n, &t);
	}
	if (n == 0) {
		*host_r = ADDR_MISSING_DOMAIN;
	} else {
		ps->pool[start + n] = '\0';
		*host_r = ps->pool + start;
		ps->used += n + 1;
	}
	return t;
}

static const char *
comment_name(struct parser *ps)
{
	const char *s = ps->lx.comment;
	size_t n = ps->lx.comment_len;

	if (s == NULL)
		return NULL;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n == 0 ? NULL : pool_add(ps, s, n);
}

static const char *
local_part(struct parser *ps)
{
	if (ps->local_len == 0)
		return ADDR_MISSING_MAILBOX;
	return pool_add(ps, ps->local, ps->local_len);
}

/* Skip to the next "," or ";" (or the end); returns that token. */
static struct token
resync(struct parser *ps, struct token t)
{
	while (t.kind != T_END && !(t.kind == T_SPECIAL && (t.c == ',' || t.c == ';')))
		t = lex(&ps->lx);
	return t;
}

/* After "<": [route ":"] local "@" domain ">" */
static struct token
read_angle(struct parser *ps, const char *name)
{
	const char *route = NULL, *mailbox, *host = ADDR_MISSING_DOMAIN;
	struct token t = peek(ps);

	if (t.kind == T_SPECIAL && (t.c == '@' || t.c == ',')) {
		/* obs-route: 1*("," / "@" domain) ":" */
		size_t start = ps->used, n = 0;

		for (;;) {
			t = lex(&ps->lx);
			if (t.kind == T_END || (t.kind == T_SPECIAL && t.c != '@' && t.c != ','))
				break;
			if (t.kind == T_SPECIAL) {
				ps->pool[start + n++] = t.c;
			} else {
				n += copy_text(ps->pool + start + n, &t);
			}
		}
		if (t.kind == T_SPECIAL && t.c == ':' && n > 0) {
			ps->pool[start + n] = '\0';
			route = ps->pool + start;
			ps->used += n + 1;
		} else {
			/* not a route after all: give up on this address */
			return resync(ps, t);
		}
	}
	t = read_words(ps);
	if (t.kind == T_SPECIAL && t.c == '>' && ps->local_len == 0) {
		/* "<>": the null address, shown as other servers show it */
		emit(ps, name, route, ADDR_MISSING_MAILBOX, ADDR_MISSING_DOMAIN);
		return lex(&ps->lx);
	}
	mailbox = local_part(ps);
	if (t.kind == T_SPECIAL && t.c == '@')
		t = read_domain(ps, &host);
	if (t.kind == T_SPECIAL && t.c == '>') {
		emit(ps, name, route, mailbox, host);
		return lex(&ps->lx);
	}
	/* no ">": keep the local part, flag the rest */
	emit(ps, name, route, mailbox, ADDR_SYNTAX_ERROR);
	return t;
}

void
addr_parse(const char *s, size_t len, struct addr_list *list)
{
	struct parser ps;
	struct token t;
	bool in_group = false;

	memset(list, 0, sizeof(*list));
	memset(&ps, 0, sizeof(ps));
	ps.lx.p = s;
	ps.lx.end = s + len;
	ps.list = list;
	/* every input byte lands in at most two strings (as text and as a comment-name); every
	 * string adds a NUL; a separator or route char is a byte of input */
	ps.cap = 2 * len + 5 * (ADDR_MAX_COUNT + 2) + 16;
	ps.pool = list->pool = xmalloc(ps.cap);
	ps.phrase = xmalloc(2 * len + 2);
	ps.local = xmalloc(len + 1);
	list->v = xmalloc(ADDR_MAX_COUNT * sizeof(*list->v));

	t = lex(&ps.lx);
	while (t.kind != T_END && list->n < ADDR_MAX_COUNT) {
		/* t is the first token of an address: put it back and read words */
		if (t.kind == T_WORD || t.kind == T_QUOTED || t.kind == T_LITERAL) {
			ps.lx.p = t.kind == T_QUOTED ? t.s - 1 : t.s;
			ps.lx.comment = NULL;
			t = read_words(&ps);
		} else {
			ps.phrase_len = ps.local_len = 0;
		}
		if (t.kind == T_SPECIAL && t.c == ':') {
			if (!in_group) {
				emit(&ps, NULL, NULL, pool_add(&ps, ps.phrase, ps.phrase_len), NULL);
				in_group = true;
			}
			ps.lx.comment = NULL;
			t = lex(&ps.lx);
			continue;
		}
		if (t.kind == T_SPECIAL && t.c == '<') {
			const char *name = ps.phrase_len > 0 ?
				pool_add(&ps, ps.phrase, ps.phrase_len) : NULL;

			t = read_angle(&ps, name);
			t = resync(&ps, t);
		} else if (t.kind == T_SPECIAL && t.c == '@') {
			const char *mailbox = local_part(&ps), *host;

			t = read_domain(&ps, &host);
			emit(&ps, comment_name(&ps), NULL, mailbox, host);
			t = resync(&ps, t);
		} else if (ps.local_len > 0) {
			/* a word with no "@": keep it as a mailbox on a missing domain */
			const char *mailbox = local_part(&ps);

			emit(&ps, comment_name(&ps), NULL, mailbox, ADDR_MISSING_DOMAIN);
			t = resync(&ps, t);
		} else {
			t = resync(&ps, t);
		}
		if (t.kind == T_SPECIAL && t.c == ';') {
			if (in_group) {
				emit(&ps, NULL, NULL, NULL, NULL);
				in_group = false;
			}
		}
		ps.lx.comment = NULL;
		if (t.kind != T_END)
			t = lex(&ps.lx);
	}
	if (in_group) {
		/* an unterminated group still ends; make room for the marker if needed */
		if (list->n >= ADDR_MAX_COUNT)
			list->n = ADDR_MAX_COUNT - 1;
		emit(&ps, NULL, NULL, NULL, NULL);
	}
	if (t.kind != T_END)
		list->truncated = true;
	free(ps.phrase);
	free(ps.local);
}

void
addr_list_free(struct addr_list *list)
{
	free(list->v);
	free(list->pool);
	memset(list, 0, sizeof(*list));
}
