#include "imapd/parser.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/limits.h"

/* Arena chunks; a chunk is at least this big, or as big as one allocation needs. */
#define ARENA_CHUNK	4096

struct chunk {
	struct chunk	*next;
	size_t		size, used;
	unsigned char	data[];
};

struct level {
	struct imap_arg	*head;
	struct imap_arg	**tail;
	struct imap_arg	*owner;		/* the ARG_LIST node, NULL at the top */
};

struct parser {
	struct io		*io;
	struct parser_limits	lim;

	struct chunk		*chunks;
	size_t			arena_used;	/* bytes handed out for this command */
	size_t			nargs;

	const char		*line;		/* current line, in the transport's buffer */
	size_t			len, pos;
	bool			done;		/* command read to its end */

	bool			lit_pending;	/* a literal follows the current line */
	bool			lit_sync;
	bool			lit_accepted;
	bool			lit_overflow;	/* its size did not even fit in 64 bits */
	uint64_t		lit_size;

	struct level		lv[IMAPD_NEST_MAX + 1];
	unsigned		depth;

	const char		*tag;		/* points to tagbuf once read */
	char			tagbuf[IMAPD_TAG_MAX + 1];
	enum io_status		io_status;
	char			error[128];
};

static const struct parser_limits default_limits = {
	.line_max = IMAPD_LINE_MAX_PREAUTH,
	.literal_max = IMAPD_LITERAL_MAX_PREAUTH,
	.command_max = IMAPD_COMMAND_MAX_PREAUTH,
	.args_max = IMAPD_ARGS_MAX,
	.depth_max = IMAPD_NEST_MAX,
	.discard_max = IMAPD_DISCARD_MAX,
};

struct parser *
parser_new(struct io *io)
{
	struct parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->io = io;
	p->lim = default_limits;
	p->done = true;
	return p;
}

static void
arena_reset(struct parser *p)
{
	struct chunk *c, *next;

	/* Keep one chunk of the usual size for the next command; free the rest. */
	for (c = p->chunks; c != NULL; c = next) {
		next = c->next;
		if (c == p->chunks && c->size == ARENA_CHUNK) {
			c->used = 0;
			c->next = NULL;
			continue;
		}
		free(c);
	}
	if (p->chunks != NULL && p->chunks->size != ARENA_CHUNK)
		p->chunks = NULL;
	p->arena_used = 0;
	p->nargs = 0;
}

void
parser_free(struct parser **pp)
{
	struct parser *p = *pp;

	if (p == NULL)
		return;
	arena_reset(p);
	free(p->chunks);
	free(p);
	*pp = NULL;
}

void
parser_set_limits(struct parser *p, const struct parser_limits *lim)
{
	p->lim = *lim;
	if (p->lim.depth_max > IMAPD_NEST_MAX)
		p->lim.depth_max = IMAPD_NEST_MAX;
}

static void
set_error(struct parser *p, const char *msg)
{
	snprintf(p->error, sizeof(p->error), "%s", msg);
}

/* Allocates n bytes (aligned for any argument) or fails once the command limit is hit. */
static void *
arena_alloc(struct parser *p, size_t n)
{
	struct chunk *c = p->chunks;
	size_t need = (n + 15) & ~(size_t)15;

	if (need < n || need > p->lim.command_max - p->arena_used ||
	    p->arena_used > p->lim.command_max) {
		set_error(p, "Command too large");
		return NULL;
	}
	if (c == NULL || c->size - c->used < need) {
		size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		c = malloc(sizeof(*c) + size);
		if (c == NULL) {
			set_error(p, "Out of memory");
			return NULL;
		}
		c->size = size;
		c->used = 0;
		c->next = p->chunks;
		p->chunks = c;
	}
	p->arena_used += need;
	c->used += need;
	return c->data + c->used - need;
}

static char *
arena_strndup(struct parser *p, const char *s, size_t n)
{
	char *d = n < SIZE_MAX ? arena_alloc(p, n + 1) : NULL;

	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static struct imap_arg *
new_arg(struct parser *p, enum arg_type type)
{
	struct level *l = &p->lv[p->depth];
	struct imap_arg *a;

	if (p->nargs >= p->lim.args_max) {
		set_error(p, "Too many arguments");
		return NULL;
	}
	a = arena_alloc(p, sizeof(*a));
	if (a == NULL)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->type = type;
	p->nargs++;
	*l->tail = a;
	l->tail = &a->next;
	return a;
}

/* ATOM-CHAR (RFC 3501 9) plus the list wildcards, '\' for flags and ']' for astrings. */
static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

static bool
is_tag_char(unsigned char c)
{
	return is_atom_char(c) && c != '+' && c != '%' && c != '*' && c != '\\';
}

/*
 * A line longer than the limit: answered BAD and the session goes on, as long as the rest
 * of the line can be read and dropped (at most discard_max bytes; beyond that the session
 * ends with PARSE_TOOLONG).  The tag is taken from the line's start for the answer.  The
 * line's last bytes become p->line, so that parser_discard() sees a literal it announces
 * and drops that too (a non-synchronizing one) or sends no "+" (a synchronizing one).
 */
static enum parse_status
skip_long(struct parser *p)
{
	const unsigned char *tail;
	size_t i = 0, n;
	enum io_status st;

	if (p->tag == NULL) {
		while (i < p->len && i <= IMAPD_TAG_MAX &&
		    is_tag_char((unsigned char)p->line[i]))
			i++;
		if (i > 0 && i <= IMAPD_TAG_MAX && i < p->len && p->line[i] == ' ') {
			memcpy(p->tagbuf, p->line, i);
			p->tagbuf[i] = '\0';
			p->tag = p->tagbuf;
		}
	}
	st = io_skip_line(p->io, p->lim.discard_max, &tail, &n);
	p->pos = 0;
	if (st == IO_TOOLONG) {
		p->line = "";
		p->len = 0;
		set_error(p, "Command line too long");
		return PARSE_TOOLONG;
	}
	if (st != IO_OK) {
		p->line = "";
		p->len = 0;
		p->io_status = st;
		return PARSE_IO;
	}
	p->line = (const char *)tail;
	p->len = n;
	set_error(p, "Command line too long");
	return PARSE_ERROR;
}

/* Reads the next line of the command into p->line. */
static enum parse_status
next_line(struct parser *p)
{
	enum io_status st = io_read_line(p->io, p->lim.line_max, &p->line, &p->len);

	p->pos = 0;
	if (st == IO_OK)
		return PARSE_OK;
	if (st == IO_TOOLONG)
		return skip_long(p);
	p->line = "";
	p->len = 0;
	p->io_status = st;
	return PARSE_IO;
}

enum parse_status
parser_begin(struct parser *p, const char **tag_r, const char **name_r)
{
	enum parse_status st;
	size_t start;
	char *name, *s;

	arena_reset(p);
	memset(&p->lv[0], 0, sizeof(p->lv[0]));
	p->depth = 0;
	p->tag = NULL;
	p->error[0] = '\0';
	p->lit_pending = p->lit_accepted = p->lit_overflow = false;
	p->done = false;
	*tag_r = NULL;
	*name_r = NULL;

	st = next_line(p);
	if (st == PARSE_ERROR) {
		/* too long: the caller answers BAD (with the tag, if it had one) and discards */
		*tag_r = p->tag;
		return st;
	}
	if (st != PARSE_OK) {
		p->done = true;
		return st;
	}
	p->done = false;
	start = 0;
	while (p->pos < p->len && is_tag_char((unsigned char)p->line[p->pos]))
		p->pos++;
	if (p->pos == 0) {
		set_error(p, p->len == 0 ? "Empty command line" : "Invalid tag");
		return PARSE_ERROR;
	}
	if (p->pos > IMAPD_TAG_MAX) {
		set_error(p, "Tag too long");
		return PARSE_ERROR;
	}
	/* Kept outside the arena, so that parser_wipe() leaves it for the tagged answer. */
	memcpy(p->tagbuf, p->line + start, p->pos);
	p->tagbuf[p->pos] = '\0';
	*tag_r = p->tag = p->tagbuf;
	if (p->pos == p->len || p->line[p->pos] != ' ') {
		set_error(p, p->pos == p->len ? "Missing command" : "Invalid tag");
		return PARSE_ERROR;
	}
	p->pos++;
	start = p->pos;
	while (p->pos < p->len && isalnum((unsigned char)p->line[p->pos]))
		p->pos++;
	if (p->pos == start || (p->pos < p->len && p->line[p->pos] != ' ')) {
		set_error(p, "Invalid command name");
		return PARSE_ERROR;
	}
	if ((name = arena_strndup(p, p->line + start, p->pos - start)) == NULL)
		return PARSE_ERROR;
	for (s = name; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
	*name_r = name;
	return PARSE_OK;
}

enum parse_status
parser_read_word(struct parser *p, const char **word_r)
{
	size_t start;
	char *w, *s;

	*word_r = NULL;
	if (p->pos >= p->len || p->line[p->pos] != ' ') {
		set_error(p, "Missing command");
		return PARSE_ERROR;
	}
	start = ++p->pos;
	while (p->pos < p->len && isalnum((unsigned char)p->line[p->pos]))
		p->pos++;
	if (p->pos == start || (p->pos < p->len && p->line[p->pos] != ' ')) {
		set_error(p, "Invalid command name");
		return PARSE_ERROR;
	}
	if ((w = arena_strndup(p, p->line + start, p->pos - start)) == NULL)
		return PARSE_ERROR;
	for (s = w; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
	*word_r = w;
	return PARSE_OK;
}

/* Quoted string at p->pos (a '"'). RFC 3501 9: only \" and \\ escapes; no NUL, CR, LF. */
static bool
parse_quoted(struct parser *p)
{
	size_t i = p->pos + 1, n = 0;
	struct imap_arg *a;
	char *d;

	/* First pass: find the end and the unescaped length. */
	for (; i < p->len && p->line[i] != '"'; i++, n++) {
		if (p->line[i] == '\0' || p->line[i] == '\r' || p->line[i] == '\n') {
			set_error(p, p->line[i] == '\0' ? "NUL in quoted string" :
				     "CR or LF in quoted string");
			return false;
		}
		if (p->line[i] == '\\') {
			if (i + 1 >= p->len || (p->line[i + 1] != '"' && p->line[i + 1] != '\\')) {
				set_error(p, "Invalid escape in quoted string");
				return false;
			}
			i++;
		}
	}
	if (i >= p->len) {
		set_error(p, "Unterminated quoted string");
		return false;
	}
	if ((a = new_arg(p, ARG_STRING)) == NULL || (d = arena_alloc(p, n + 1)) == NULL)
		return false;
	a->str = d;
	a->len = n;
	for (i = p->pos + 1; p->line[i] != '"'; i++) {
		if (p->line[i] == '\\')
			i++;
		*d++ = p->line[i];
	}
	*d = '\0';
	p->pos = i + 1;
	return true;
}

/*
 * An atom; "[...]" inside it is taken whole (FETCH section specs, RFC 3501 6.4.5), spaces
 * and quoted strings included.  A '[' that no ']' closes is an ATOM-CHAR like any other
 * (RFC 3501 9: only atom-specials are not), so "SELECT a[b" names a mailbox "a[b".
 */
static bool
parse_atom(struct parser *p)
{
	size_t start = p->pos, i = p->pos;
	struct imap_arg *a;

	while (i < p->len) {
		unsigned char c = (unsigned char)p->line[i];

		if (c == '[') {
			bool quoted = false;
			size_t open = i;

			for (i++; i < p->len; i++) {
				c = (unsigned char)p->line[i];
				if (c == '\0' || c == '\r' || c == '\n')
					break;
				if (quoted && c == '\\' && i + 1 < p->len)
					i++;
				else if (c == '"')
					quoted = !quoted;
				else if (c == ']' && !quoted)
					break;
			}
			if (i >= p->len || p->line[i] != ']') {
				i = open + 1;	/* not a section: an ordinary character */
				continue;
			}
			i++;
			continue;
		}
		if (!is_atom_char(c))
			break;
		i++;
	}
	if (i == start) {
		set_error(p, "Invalid characters in argument");
		return false;
	}
	if ((a = new_arg(p, ARG_ATOM)) == NULL ||
	    (a->str = arena_strndup(p, p->line + start, i - start)) == NULL)
		return false;
	a->len = i - start;
	p->pos = i;
	return true;
}

/*
 * Literal announcement at p->pos ('{'), which must end the line. The size is checked digit
 * by digit, so no count of digits can overflow it.
 */
static bool
parse_literal_spec(struct parser *p)
{
	size_t i = p->pos + 1, digits = 0;
	uint64_t n = 0;
	bool overflow = false, sync = true;

	for (; i < p->len && isdigit((unsigned char)p->line[i]); i++, digits++) {
		unsigned d = (unsigned)(p->line[i] - '0');

		if (n > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			n = n * 10 + d;
	}
	if (i < p->len && p->line[i] == '+') {
		sync = false;
		i++;
	}
	if (digits == 0 || i >= p->len || p->line[i] != '}') {
		set_error(p, "Invalid literal");
		return false;
	}
	if (i + 1 != p->len) {
		set_error(p, "Literal must end the line");
		return false;
	}
	p->pos = p->len;
	p->lit_pending = true;
	p->lit_sync = sync;
	p->lit_accepted = false;
	p->lit_overflow = overflow;
	p->lit_size = overflow ? UINT64_MAX : n;
	return true;
}

/* Reads an accepted in-memory literal and the line that continues the command. */
static enum parse_status
read_literal(struct parser *p)
{
	struct imap_arg *a;
	char *d;
	enum io_status st;

	if (p->lit_overflow || p->lit_size > p->lim.literal_max) {
		set_error(p, "Literal too large");
		return PARSE_ERROR;
	}
	if ((a = new_arg(p, ARG_STRING)) == NULL ||
	    (d = arena_alloc(p, (size_t)p->lit_size + 1)) == NULL)
		return PARSE_ERROR;
	if (parser_literal_accept(p) == -1) {
		p->io_status = IO_ERROR;
		return PARSE_IO;
	}
	st = io_read_exact(p->io, d, (size_t)p->lit_size);
	if (st != IO_OK) {
		p->io_status = st;
		return PARSE_IO;
	}
	d[p->lit_size] = '\0';
	a->str = d;
	a->len = (size_t)p->lit_size;
	a->literal = true;
	p->lit_pending = false;
	return next_line(p);
}

static enum parse_status
fail(struct parser *p, enum parse_status st)
{
	if (st == PARSE_ERROR) {
		enum parse_status d = parser_discard(p);

		if (d != PARSE_OK)
			return d;
	} else
		p->done = true;
	return st;
}

enum parse_status
parser_read_args(struct parser *p, int flags, struct imap_arg **args_r)
{
	bool after_token = true, just_opened = false;
	enum parse_status st;

	*args_r = NULL;
	if (p->done) {
		set_error(p, "No command");
		return PARSE_ERROR;
	}
	if (p->lit_pending) {
		/* The caller read a streamed literal; the command goes on on the next line. */
		if (!p->lit_accepted) {
			set_error(p, "Literal not accepted");
			return fail(p, PARSE_ERROR);
		}
		p->lit_pending = false;
		if ((st = next_line(p)) != PARSE_OK)
			return fail(p, st);
	}
	p->depth = 0;
	p->lv[0].head = NULL;
	p->lv[0].tail = &p->lv[0].head;
	p->lv[0].owner = NULL;

	for (;;) {
		unsigned char c;

		if (p->pos >= p->len) {
			if (p->depth > 0) {
				set_error(p, "Missing )");
				return fail(p, PARSE_ERROR);
			}
			p->done = true;
			*args_r = p->lv[0].head;
			return PARSE_OK;
		}
		c = (unsigned char)p->line[p->pos];
		if (after_token) {
			if (c == ' ') {
				p->pos++;
				after_token = false;
				just_opened = false;
				/* Tolerate trailing spaces; many clients send them. */
				while (p->pos < p->len && p->line[p->pos] == ' ' &&
				       p->pos + 1 == p->len)
					p->pos++;
				if (p->pos >= p->len)
					after_token = true;
				continue;
			}
			if (c != ')') {
				set_error(p, "Expected space");
				return fail(p, PARSE_ERROR);
			}
		}
		switch (c) {
		case '(': {
			struct imap_arg *a;

			if (p->depth >= p->lim.depth_max) {
				set_error(p, "Too deeply nested");
				return fail(p, PARSE_ERROR);
			}
			if ((a = new_arg(p, ARG_LIST)) == NULL)
				return fail(p, PARSE_ERROR);
			p->depth++;
			p->lv[p->depth].head = NULL;
			p->lv[p->depth].tail = &p->lv[p->depth].head;
			p->lv[p->depth].owner = a;
			p->pos++;
			after_token = false;
			just_opened = true;
			continue;
		}
		case ')':
			if (p->depth == 0 || (!after_token && !just_opened)) {
				set_error(p, p->depth == 0 ? "Unexpected )" : "Unexpected space");
				return fail(p, PARSE_ERROR);
			}
			p->lv[p->depth].owner->list = p->lv[p->depth].head;
			p->depth--;
			p->pos++;
			after_token = true;
			continue;
		case '"':
			if (!parse_quoted(p))
				return fail(p, PARSE_ERROR);
			break;
		case '{':
			if (!parse_literal_spec(p))
				return fail(p, PARSE_ERROR);
			if ((flags & PARSE_STREAM) && p->depth == 0 && !p->lit_overflow) {
				struct imap_arg *a = new_arg(p, ARG_LITERAL_SIZE);

				if (a == NULL)
					return fail(p, PARSE_ERROR);
				a->literal_size = p->lit_size;
				a->sync = p->lit_sync;
				*args_r = p->lv[0].head;
				return PARSE_LITERAL;
			}
			if ((st = read_literal(p)) != PARSE_OK)
				return fail(p, st);
			break;
		default:
			if (c == ' ') {
				set_error(p, "Unexpected space");
				return fail(p, PARSE_ERROR);
			}
			if (!parse_atom(p))
				return fail(p, PARSE_ERROR);
			break;
		}
		after_token = true;
		just_opened = false;
	}
}

int
parser_literal_accept(struct parser *p)
{
	p->lit_accepted = true;
	if (!p->lit_sync)
		return 0;
	/* RFC 3501 7.5: the continuation request that lets the client send the literal. */
	if (io_puts(p->io, "+ Ready for literal data\r\n") == -1)
		return -1;
	return io_flush(p->io);
}

/* Does the current line end in a literal announcement? Sets the pending literal if so. */
static bool
line_ends_in_literal(struct parser *p)
{
	size_t i = p->len;

	if (i < 3 || p->line[i - 1] != '}')
		return false;
	i--;
	if (p->line[i - 1] == '+')
		i--;
	while (i > 0 && isdigit((unsigned char)p->line[i - 1]))
		i--;
	if (i == 0 || p->line[i - 1] != '{' || (p->line[i] == '+' || p->line[i] == '}'))
		return false;
	p->pos = i - 1;
	return parse_literal_spec(p);
}

enum parse_status
parser_discard(struct parser *p)
{
	char saved[sizeof(p->error)];
	enum parse_status st = PARSE_OK;

	memcpy(saved, p->error, sizeof(saved));
	while (!p->done) {
		if (!p->lit_pending && !line_ends_in_literal(p))
			break;
		if (p->lit_sync && !p->lit_accepted)
			break;	/* no "+" went out, so the client sends nothing more */
		if (!p->lit_accepted) {
			enum io_status ios;

			if (p->lit_overflow || p->lit_size > p->lim.discard_max) {
				st = PARSE_TOOLONG;
				snprintf(saved, sizeof(saved), "Literal too large");
				break;
			}
			ios = io_skip(p->io, p->lit_size);
			if (ios != IO_OK) {
				p->io_status = ios;
				st = PARSE_IO;
				break;
			}
		}
		p->lit_pending = false;
		if ((st = next_line(p)) != PARSE_OK)
			break;
	}
	p->done = true;
	p->lit_pending = false;
	memcpy(p->error, saved, sizeof(saved));
	return st;
}

void
parser_wipe(struct parser *p)
{
	struct chunk *c;

	for (c = p->chunks; c != NULL; c = c->next)
		explicit_bzero(c->data, c->used);
	io_wipe_consumed(p->io);
}

bool
parser_done(const struct parser *p)
{
	return p->done;
}

const char *
parser_error(const struct parser *p)
{
	return p->error[0] != '\0' ? p->error : "Syntax error";
}

enum io_status
parser_io_status(const struct parser *p)
{
	return p->io_status;
}

const char *
parser_tag(const struct parser *p)
{
	return p->tag;
}

bool
arg_is_atom(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->type == ARG_ATOM && strcasecmp(a->str, word) == 0;
}

bool
arg_is_nil(const struct imap_arg *a)
{
	return arg_is_atom(a, "NIL");
}

bool
arg_is_astring(const struct imap_arg *a)
{
	return a != NULL && (a->type == ARG_ATOM || a->type == ARG_STRING);
}

const char *
arg_cstring(const struct imap_arg *a)
{
	if (!arg_is_astring(a) || strlen(a->str) != a->len)
		return NULL;
	return a->str;
}

size_t
arg_count(const struct imap_arg *a)
{
	size_t n = 0;

	for (; a != NULL; a = a->next)
		n++;
	return n;
}

/* One seq-number (RFC 3501 9): nz-number or '*'. */
static bool
seq_number(const char **sp, uint64_t *n_r)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s == '*') {
		*n_r = SEQ_STAR;
		*sp = s + 1;
		return true;
	}
	if (*s < '1' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)	/* nz-number is a 32-bit value */
			return false;
	}
	*n_r = n;
	*sp = s;
	return true;
}

bool
seqset_parse(const char *s, struct seqset *set_r)
{
	size_t max = strlen(s) / 2 + 1, n = 0;
	struct seq_range *r;

	set_r->r = NULL;
	set_r->n = 0;
	if (*s == '\0')
		return false;
	if ((r = calloc(max, sizeof(*r))) == NULL)
		return false;
	for (;;) {
		uint64_t a, b;

		if (!seq_number(&s, &a))
			goto bad;
		b = a;
		if (*s == ':') {
			s++;
			if (!seq_number(&s, &b))
				goto bad;
		}
		r[n].lo = a < b ? a : b;
		r[n].hi = a < b ? b : a;
		n++;
		if (*s == '\0')
			break;
		if (*s != ',' || n == max)
			goto bad;
		s++;
	}
	set_r->r = r;
	set_r->n = n;
	return true;
bad:
	free(r);
	return false;
}

void
seqset_clear(struct seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

bool
seqset_contains(const struct seqset *set, uint32_t n, uint32_t star)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		uint32_t lo = (uint32_t)set->r[i].lo, hi = (uint32_t)set->r[i].hi;

		/* '*' is the largest number in use; "5:*" with star 3 means 3:5 (RFC 3501 9). */
		if (set->r[i].lo == SEQ_STAR)
			lo = star;
		if (set->r[i].hi == SEQ_STAR)
			hi = star;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}
