/*
 * The argument parsers of SORT, THREAD and SEARCH's RETURN (RFC 5256, RFC 5267, RFC 5182) on
 * what the command parser makes of arbitrary bytes, read as a client would send them.  A
 * SORT, THREAD or SEARCH command goes the way its handler takes it: RETURN options, sort
 * criteria or the threading algorithm, the charset, the search keys.  Every argument of
 * every command is also tried as each of those, and what parses is checked against a second
 * reading of the grammar written here.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/command.h"
#include "imapd/io.h"
#include "imapd/limits.h"
#include "imapd/parser.h"
#include "imapd/search-program.h"
#include "imapd/search-run.h"
#include "imapd/selected.h"
#include "imapd/session.h"
#include "imapd/sort-args.h"
#include "tests/unit/memio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RET_KNOWN	(RET_DATA | RET_CONTEXT | RET_UPDATE)

static const char *const sort_key_names[] = {
	[K_ARRIVAL] = "ARRIVAL", [K_CC] = "CC", [K_DATE] = "DATE", [K_FROM] = "FROM",
	[K_SIZE] = "SIZE", [K_SUBJECT] = "SUBJECT", [K_TO] = "TO",
	[K_DISPLAYFROM] = "DISPLAYFROM", [K_DISPLAYTO] = "DISPLAYTO",
};
#define N_SORT_KEYS	(sizeof(sort_key_names) / sizeof(sort_key_names[0]))

/* An atom spelling word in any case (the parser puts no NUL in an atom: walk checks). */
static bool
is_word(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->type == ARG_ATOM && a->len == strlen(word) &&
	       strncasecmp(a->str, word, a->len) == 0;
}

/* nz-number with its value, at most 4294967295; s[0..len) */
static bool
nz_number(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10 || s[0] < '1' || s[0] > '9')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return v <= UINT32_MAX;
}

/* The second reading of partial-range: nz-number ":" nz-number, low first after. */
static bool
oracle_partial(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r)
{
	const char *colon;
	uint64_t x, y;

	if (a == NULL || a->type != ARG_ATOM)
		return false;
	colon = memchr(a->str, ':', a->len);
	if (colon == NULL || !nz_number(a->str, (size_t)(colon - a->str), &x) ||
	    !nz_number(colon + 1, a->len - (size_t)(colon - a->str) - 1, &y))
		return false;
	*lo_r = (uint32_t)(x < y ? x : y);
	*hi_r = (uint32_t)(x < y ? y : x);
	return true;
}

static void
check_partial(const struct imap_arg *a)
{
	uint32_t lo = 0, hi = 0, olo = 0, ohi = 0;
	bool ok = partial_range(a, &lo, &hi);

	if (ok != oracle_partial(a, &olo, &ohi))
		__builtin_trap();
	if (ok && (lo < 1 || lo > hi || lo != olo || hi != ohi))
		__builtin_trap();
}

/* RETURN's options as the second reading sees them: the bits, or -1 for a syntax error. */
static int
oracle_ret(const struct imap_arg *list, uint32_t *lo_r, uint32_t *hi_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opt[] = {
		{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "COUNT", RET_COUNT },
		{ "ALL", RET_ALL }, { "SAVE", RET_SAVE }, { "PARTIAL", RET_PARTIAL },
		{ "CONTEXT", RET_CONTEXT }, { "UPDATE", RET_UPDATE },
	};
	const struct imap_arg *o;
	unsigned bits = 0;

	for (o = list; o != NULL; o = o->next) {
		size_t k;

		for (k = 0; k < sizeof(opt) / sizeof(opt[0]); k++)
			if (is_word(o, opt[k].name))
				break;
		if (k == sizeof(opt) / sizeof(opt[0]) || (bits & opt[k].bit))
			return -1;
		if (opt[k].bit == RET_PARTIAL) {
			if (!oracle_partial(o->next, lo_r, hi_r))
				return -1;
			o = o->next;
		}
		bits |= opt[k].bit;
	}
	if ((bits & RET_PARTIAL) && (bits & RET_ALL))
		return -1;
	/* no data asked for (nothing, or only CONTEXT and UPDATE): ALL */
	return (int)((bits & RET_DATA) != 0 ? bits : bits | RET_ALL);
}

/* search_ret_parse at a, checked; returns what follows RETURN (a when there is none). */
static const struct imap_arg *
check_ret(const struct imap_arg *a, struct search_ret *r, bool *bad_r)
{
	const struct imap_arg *rest;
	const char *why = "unset";
	uint32_t lo = 0, hi = 0;
	int want;

	rest = search_ret_parse(a, r, &why);
	*bad_r = why != NULL;
	if (why != NULL && rest != NULL)
		__builtin_trap();
	if ((r->opts & ~(unsigned)RET_KNOWN) != 0)
		__builtin_trap();
	if (!is_word(a, "RETURN")) {
		if (why != NULL || rest != a || r->opts != 0 || r->esearch)
			__builtin_trap();
		return rest;
	}
	if (a->next == NULL || a->next->type != ARG_LIST) {
		if (why == NULL)
			__builtin_trap();
		return rest;
	}
	want = oracle_ret(a->next->list, &lo, &hi);
	if (want < 0) {
		if (why == NULL)
			__builtin_trap();
		return rest;
	}
	if (why != NULL || !r->esearch || r->opts != (unsigned)want || rest != a->next->next ||
	    (r->opts & RET_DATA) == 0)
		__builtin_trap();
	if (r->opts & RET_PARTIAL) {
		if (r->plo < 1 || r->plo > r->phi || r->plo != lo || r->phi != hi)
			__builtin_trap();
	} else if (r->plo != 0 || r->phi != 0) {
		__builtin_trap();
	}
	return rest;
}

/* sort-criteria as the second reading sees them; false for a syntax error. */
static bool
oracle_criteria(const struct imap_arg *a, struct criteria *cr)
{
	const struct imap_arg *o;

	cr->n = 0;
	if (a == NULL || a->type != ARG_LIST || a->list == NULL)
		return false;
	for (o = a->list; o != NULL; o = o->next) {
		bool rev = is_word(o, "REVERSE");
		size_t k;

		if (rev && (o = o->next) == NULL)
			return false;
		for (k = 0; k < N_SORT_KEYS; k++)
			if (is_word(o, sort_key_names[k]))
				break;
		if (k == N_SORT_KEYS || cr->n == SORT_MAX_CRITERIA)
			return false;
		cr->c[cr->n].key = (enum skey)k;
		cr->c[cr->n].reverse = rev;
		cr->n++;
	}
	return true;
}

static bool
check_criteria(const struct imap_arg *a)
{
	struct criteria cr, want;
	bool ok = parse_criteria(a, &cr);
	size_t k;

	if (ok && (cr.n < 1 || cr.n > SORT_MAX_CRITERIA))
		__builtin_trap();
	for (k = 0; ok && k < cr.n; k++)
		if ((size_t)cr.c[k].key >= N_SORT_KEYS)
			__builtin_trap();
	if (ok != oracle_criteria(a, &want))
		__builtin_trap();
	for (k = 0; ok && k < cr.n; k++)
		if (cr.c[k].key != want.c[k].key || cr.c[k].reverse != want.c[k].reverse)
			__builtin_trap();
	return ok;
}

static bool
check_alg(const struct imap_arg *a)
{
	enum thread_alg alg = (enum thread_alg)-1;
	bool ok = parse_thread_alg(a, &alg);

	if (is_word(a, "ORDEREDSUBJECT")) {
		if (!ok || alg != THREAD_ORDEREDSUBJECT)
			__builtin_trap();
	} else if (is_word(a, "REFERENCES")) {
		if (!ok || alg != THREAD_REFERENCES)
			__builtin_trap();
	} else if (ok) {
		__builtin_trap();
	}
	return ok;
}

/* A session and a selection for search_charset_check's answers and "$". */
struct fake {
	struct memio m;
	struct io *io;
	struct session s;
	struct selected sel;
	struct command cmd;
};

static void
fake_set_saved(struct fake *f)
{
	free(f->sel.saved);
	f->sel.saved = malloc(2 * sizeof(*f->sel.saved));
	if (f->sel.saved == NULL)
		abort();
	f->sel.saved[0] = 3;
	f->sel.saved[1] = 7;
	f->sel.n_saved = 2;
}

/* The charset at a as SORT and THREAD check it, with what it must do to "$" and the reply. */
static bool
check_charset(struct fake *f, const char *tag, const char *name, const struct imap_arg *a,
	      const struct search_ret *r)
{
	bool known, astring = a != NULL && (a->type == ARG_ATOM || a->type == ARG_STRING);
	size_t before = f->m.out_len;
	const char *out;
	int rc;

	/* C-string semantics, as IMAP has no NUL in a charset name */
	known = astring && (strcasecmp(a->str, "UTF-8") == 0 ||
			    strcasecmp(a->str, "US-ASCII") == 0);
	fake_set_saved(f);
	f->cmd.tag = tag;
	f->cmd.name = name;
	f->cmd.answered = false;
	f->s.bad_count = 0;
	f->s.ending = false;
	rc = search_charset_check(&f->cmd, a, r);
	io_flush(f->io);
	out = f->m.out + before;
	if ((rc == 0) != known || f->cmd.answered != !known)
		__builtin_trap();
	if (known && f->m.out_len != before)
		__builtin_trap();
	/* a NO empties "$" with SAVE; a BAD (no charset) leaves it */
	if (!known && astring && (r->opts & RET_SAVE) && f->sel.saved != NULL)
		__builtin_trap();
	if ((known || !astring || !(r->opts & RET_SAVE)) && f->sel.n_saved != 2)
		__builtin_trap();
	if (!known && f->m.out_len < sizeof(f->m.out) - 1024 &&
	    (strncmp(out, tag, strlen(tag)) != 0 ||
	     strncmp(out + strlen(tag), astring ? " NO [BADCHARSET" : " BAD ", astring ? 15 : 5)))
		__builtin_trap();
	/* keep the reply buffer from filling up */
	if (f->m.out_len > sizeof(f->m.out) / 2)
		f->m.out_len = 0;
	return known;
}

static void
search_keys(const struct imap_arg *a)
{
	struct search_program *prog = NULL;
	const char *why;

	if (search_parse_keys(a, &prog, &why) == SEARCH_OK)
		search_free(&prog);
	else if (prog != NULL)
		__builtin_trap();
}

/* Every argument tried as each of the parsers. */
static void
walk(const struct imap_arg *a, unsigned depth)
{
	for (; a != NULL; a = a->next) {
		struct search_ret r;
		bool bad;

		if (a->type == ARG_ATOM && strlen(a->str) != a->len)
			__builtin_trap();
		check_partial(a);
		check_ret(a, &r, &bad);
		check_criteria(a);
		check_alg(a);
		if (a->type == ARG_LIST && depth < IMAPD_NEST_MAX + 1)
			walk(a->list, depth + 1);
	}
}

static void
run_command(struct fake *f, const char *tag, const char *name, const struct imap_arg *args)
{
	const struct imap_arg *a;
	struct search_ret r;
	struct search_program *prog = NULL;
	enum thread_alg alg;
	const char *why;
	bool bad;

	if (strcmp(name, "SORT") == 0) {
		/* cmd_sort's order: RETURN, criteria, charset, search keys */
		a = check_ret(args, &r, &bad);
		if (bad || !check_criteria(a))
			return;
		if (check_charset(f, tag, name, a->next, &r))
			search_keys(a->next->next);
	} else if (strcmp(name, "THREAD") == 0) {
		memset(&r, 0, sizeof(r));
		if (!check_alg(args))
			return;
		(void)parse_thread_alg(args, &alg);
		if (alg != THREAD_ORDEREDSUBJECT && alg != THREAD_REFERENCES)
			__builtin_trap();
		if (check_charset(f, tag, name, args->next, &r))
			search_keys(args->next->next);
	} else if (strcmp(name, "SEARCH") == 0) {
		a = check_ret(args, &r, &bad);
		if (bad)
			return;
		if (search_parse(a, &prog, &why) == SEARCH_OK)
			search_free(&prog);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct parser_limits lim = {
		.line_max = 2048, .literal_max = 256, .command_max = 16384,
		.args_max = 1000, .depth_max = IMAPD_NEST_MAX, .discard_max = 4096,
	};
	struct memio m;
	struct io *io = memio_new(&m, data, size, size > 0 ? (size_t)data[0] % 7 + 1 : 1);
	struct parser *p = io != NULL ? parser_new(io) : NULL;
	struct fake *f = calloc(1, sizeof(*f));
	unsigned i;

	if (f == NULL)
		abort();
	f->io = memio_new(&f->m, "", 0, 0);
	if (p == NULL || f->io == NULL) {
		io_free(&f->io);
		free(f);
		parser_free(&p);
		io_free(&io);
		return 0;
	}
	f->s.io = f->io;
	f->s.state = STATE_SELECTED;
	f->s.selected = &f->sel;
	f->cmd.s = &f->s;
	parser_set_limits(p, &lim);
	for (i = 0; i < 32; i++) {
		const char *tag, *name, *word;
		struct imap_arg *args;
		enum parse_status st = parser_begin(p, &tag, &name);

		if (st == PARSE_ERROR) {
			if (parser_discard(p) != PARSE_OK)
				break;
			continue;
		}
		if (st != PARSE_OK)
			break;
		f->cmd.uid = false;
		if (strcmp(name, "UID") == 0) {
			if ((st = parser_read_word(p, &word)) != PARSE_OK) {
				if (parser_discard(p) != PARSE_OK)
					break;
				continue;
			}
			name = word;
			f->cmd.uid = true;
		}
		st = parser_read_args(p, 0, &args);
		if (st == PARSE_OK) {
			walk(args, 0);
			run_command(f, tag, name, args);
		}
		if (st == PARSE_IO || st == PARSE_TOOLONG)
			break;
		if (!parser_done(p) && parser_discard(p) != PARSE_OK)
			break;
	}
	free(f->sel.saved);
	io_free(&f->io);
	free(f);
	parser_free(&p);
	io_free(&io);
	return 0;
}
