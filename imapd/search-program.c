/*
 * search-program.c: SEARCH criteria, parsed to a tree and evaluated per message.
 */
#include "imapd/search-program.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mbox/address.h"
#include "mbox/decode.h"
#include "mbox/mbox.h"
#include "mbox/message-cache.h"

/* Raw bytes decoded per step when searching a body part. */
#define SEARCH_CHUNK	65536
/* Longest search string accepted (bytes, UTF-8). */
#define SEARCH_STRING_MAX	TEXTMATCH_MAX_NEEDLE

/* '*' in a set: above every nz-number, so that 4294967295 stays a number */
#define STAR	((uint64_t)1 << 32)

enum nkind {
	N_ALL, N_AND, N_OR, N_NOT, N_SEQ, N_UID, N_FLAG, N_UNFLAG, N_KEYWORD, N_UNKEYWORD,
	N_NEW, N_OLD, N_BEFORE, N_ON, N_SINCE, N_SENTBEFORE, N_SENTON, N_SENTSINCE,
	N_LARGER, N_SMALLER, N_HEADER, N_BODY, N_TEXT, N_MODSEQ, N_SAVED, N_OLDER, N_YOUNGER
};

struct range {
	uint64_t lo, hi;	/* STAR for "*" */
};

struct node {
	enum nkind kind;
	struct node *child;	/* AND, OR (two), NOT (one) */
	struct node *next;	/* sibling in the parent's list */
	unsigned int flag;
	char *str;		/* UTF-8 search string, keyword */
	size_t len;
	char *field;		/* HEADER field name */
	int hkind;		/* HEADER: the field's msg_hkind(), -1 if not indexed */
	char *fold;		/* str case-folded (utf8_fold), for the header fast path */
	size_t flen;
	bool fold_ascii;	/* fold is all ASCII */
	long long day;
	uint64_t num;
	struct range *ranges;
	size_t nranges;
	bool ordered;		/* ranges ascending and apart, no "*" (a frozen "$") */
};

struct search_program {
	struct node *root;
};

struct pstate {
	const char *charset;	/* NULL: US-ASCII/UTF-8 as sent */
	unsigned int keys;
	const char *why;
};

static void
free_node(struct node *n)
{
	while (n != NULL) {
		struct node *next = n->next;

		free_node(n->child);
		free(n->str);
		free(n->field);
		free(n->fold);
		free(n->ranges);
		free(n);
		n = next;
	}
}

void
search_free(struct search_program **progp)
{
	if (*progp == NULL)
		return;
	free_node((*progp)->root);
	free(*progp);
	*progp = NULL;
}

static struct node *
new_node(enum nkind kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		abort();
	n->kind = kind;
	return n;
}

static const char *const months[12] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

static long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
search_parse_date(const char *s, size_t len, long long *day_r)
{
	int d = 0, m, y = 0;
	size_t i = 0, k;

	/* date-day "-" date-month "-" date-year, RFC 3501 9 */
	for (k = 0; i < len && s[i] >= '0' && s[i] <= '9' && k < 2; i++, k++)
		d = d * 10 + (s[i] - '0');
	if (k == 0 || i >= len || s[i] != '-' || d < 1 || d > 31 || len - i < 9)
		return -1;
	i++;
	for (m = 0; m < 12; m++) {
		if (strncasecmp(s + i, months[m], 3) == 0)
			break;
	}
	if (m == 12 || s[i + 3] != '-')
		return -1;
	i += 4;
	if (len - i != 4)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		y = y * 10 + (s[i] - '0');
	}
	*day_r = days_from_civil(y, m + 1, d);
	return 0;
}

long long
search_day(time_t t, int tz_min)
{
	long long s = (long long)t + tz_min * 60LL;

	return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

static bool
is_seqset(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '*' || s[i] == ':' || s[i] == ','))
			return false;
	}
	return true;
}

static int
parse_seqnum(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;
	uint64_t n = 0;

	if (p < end && *p == '*') {
		*v = STAR;
		*pp = p + 1;
		return 0;
	}
	if (p >= end || *p < '1' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)	/* nz-number is a 32-bit value (RFC 3501 9) */
			return -1;
		p++;
	}
	*v = n;
	*pp = p;
	return 0;
}

/* sequence-set = (seq-number / seq-range) *("," sequence-set) */
static struct node *
parse_set(enum nkind kind, const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	struct node *n = new_node(kind);
	size_t cap = 0;

	for (;;) {
		struct range r;

		if (parse_seqnum(&p, end, &r.lo) < 0)
			goto bad;
		r.hi = r.lo;
		if (p < end && *p == ':') {
			p++;
			if (parse_seqnum(&p, end, &r.hi) < 0)
				goto bad;
		}
		if (n->nranges == cap) {
			struct range *nr;

			if (cap >= SEARCH_MAX_RANGES)
				goto bad;
			cap = cap == 0 ? 4 : cap * 2;
			nr = realloc(n->ranges, cap * sizeof(*nr));
			if (nr == NULL)
				abort();
			n->ranges = nr;
		}
		n->ranges[n->nranges++] = r;
		if (p == end)
			return n;
		if (*p++ != ',')
			goto bad;
	}
bad:
	free_node(n);
	return NULL;
}

/* A search string: astring, converted to UTF-8 from the command's charset. */
static int
take_string(struct pstate *ps, const struct imap_arg **ap, struct node *n)
{
	const struct imap_arg *a = *ap;
	struct dbuf b;

	if (a == NULL || !arg_is_astring(a)) {
		ps->why = "missing string";
		return -1;
	}
	dbuf_init(&b, SEARCH_STRING_MAX);
	if (ps->charset != NULL)
		(void)charset_to_utf8(ps->charset, (const unsigned char *)a->str, a->len, &b);
	else
		dbuf_add(&b, a->str, a->len);
	if (b.overflow) {
		dbuf_free(&b);
		ps->why = "search string too long";
		return -1;
	}
	n->len = b.len;
	n->str = malloc(b.len + 1);
	if (n->str == NULL)
		abort();
	if (b.len > 0)
		memcpy(n->str, b.data, b.len);
	n->str[b.len] = '\0';
	dbuf_reset(&b);
	dbuf_free(&b);
	/* the folded needle, so plain ASCII header values need no decoding to be matched */
	dbuf_init(&b, SIZE_MAX);
	utf8_fold(n->str, n->len, &b);
	n->flen = b.len;
	n->fold = malloc(b.len + 1);
	if (n->fold == NULL)
		abort();
	if (b.len > 0)
		memcpy(n->fold, b.data, b.len);
	n->fold[b.len] = '\0';
	dbuf_free(&b);
	n->fold_ascii = true;
	for (size_t k = 0; k < n->flen; k++) {
		if ((unsigned char)n->fold[k] >= 0x80)
			n->fold_ascii = false;
	}
	n->hkind = n->field != NULL ? msg_hkind(n->field, strlen(n->field)) : -1;
	*ap = a->next;
	return 0;
}

static char *
dup_arg(const struct imap_arg *a)
{
	char *s = malloc(a->len + 1);

	if (s == NULL)
		abort();
	memcpy(s, a->str, a->len);
	s[a->len] = '\0';
	return s;
}

static struct node *parse_key(struct pstate *ps, const struct imap_arg **ap, unsigned int depth);

/* Keys up to the end of the list, as an AND. */
static struct node *
parse_list(struct pstate *ps, const struct imap_arg *a, unsigned int depth)
{
	struct node *and = new_node(N_AND), **tail = &and->child;

	if (a == NULL) {
		ps->why = "empty criteria";
		free_node(and);
		return NULL;
	}
	while (a != NULL) {
		struct node *k = parse_key(ps, &a, depth);

		if (k == NULL) {
			free_node(and);
			return NULL;
		}
		*tail = k;
		tail = &k->next;
	}
	return and;
}

static const struct {
	const char *name;
	enum nkind kind;
	unsigned int flag;
} simple_keys[] = {
	{ "ALL", N_ALL, 0 },
	{ "ANSWERED", N_FLAG, MBOX_ANSWERED }, { "UNANSWERED", N_UNFLAG, MBOX_ANSWERED },
	{ "DELETED", N_FLAG, MBOX_DELETED }, { "UNDELETED", N_UNFLAG, MBOX_DELETED },
	{ "DRAFT", N_FLAG, MBOX_DRAFT }, { "UNDRAFT", N_UNFLAG, MBOX_DRAFT },
	{ "FLAGGED", N_FLAG, MBOX_FLAGGED }, { "UNFLAGGED", N_UNFLAG, MBOX_FLAGGED },
	{ "SEEN", N_FLAG, MBOX_SEEN }, { "UNSEEN", N_UNFLAG, MBOX_SEEN },
	{ "RECENT", N_FLAG, MBOX_RECENT }, { "OLD", N_OLD, 0 }, { "NEW", N_NEW, 0 },
};

static const struct {
	const char *name;
	enum nkind kind;
	const char *field;	/* header keys */
} string_keys[] = {
	{ "BCC", N_HEADER, "bcc" }, { "CC", N_HEADER, "cc" }, { "FROM", N_HEADER, "from" },
	{ "TO", N_HEADER, "to" }, { "SUBJECT", N_HEADER, "subject" },
	{ "BODY", N_BODY, NULL }, { "TEXT", N_TEXT, NULL },
	{ "KEYWORD", N_KEYWORD, NULL }, { "UNKEYWORD", N_UNKEYWORD, NULL },
};

static const struct {
	const char *name;
	enum nkind kind;
} date_keys[] = {
	{ "BEFORE", N_BEFORE }, { "ON", N_ON }, { "SINCE", N_SINCE },
	{ "SENTBEFORE", N_SENTBEFORE }, { "SENTON", N_SENTON }, { "SENTSINCE", N_SENTSINCE },
};

static struct node *
parse_key(struct pstate *ps, const struct imap_arg **ap, unsigned int depth)
{
	const struct imap_arg *a = *ap;
	struct node *n;
	size_t i;

	if (++ps->keys > SEARCH_MAX_KEYS || depth > SEARCH_MAX_DEPTH) {
		ps->why = "criteria too complex";
		return NULL;
	}
	if (a->type == ARG_LIST) {
		n = parse_list(ps, a->list, depth + 1);
		*ap = a->next;
		return n;
	}
	if (a->type != ARG_ATOM) {
		ps->why = "search key expected";
		return NULL;
	}
	*ap = a->next;
	if (a->len == 1 && a->str[0] == '$')
		return new_node(N_SAVED);	/* RFC 5182: the saved result */
	if (is_seqset(a->str, a->len)) {
		if ((n = parse_set(N_SEQ, a->str, a->len)) == NULL)
			ps->why = "bad sequence set";
		return n;
	}
	for (i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]); i++) {
		if (arg_is_atom(a, simple_keys[i].name)) {
			n = new_node(simple_keys[i].kind);
			n->flag = simple_keys[i].flag;
			return n;
		}
	}
	for (i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++) {
		if (!arg_is_atom(a, string_keys[i].name))
			continue;
		n = new_node(string_keys[i].kind);
		if (string_keys[i].field != NULL)
			n->field = strdup(string_keys[i].field);
		if (take_string(ps, ap, n) < 0) {
			free_node(n);
			return NULL;
		}
		return n;
	}
	for (i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (!arg_is_atom(a, date_keys[i].name))
			continue;
		a = *ap;
		n = new_node(date_keys[i].kind);
		if (a == NULL || !arg_is_astring(a) ||
		    search_parse_date(a->str, a->len, &n->day) < 0) {
			ps->why = "bad date";
			free_node(n);
			return NULL;
		}
		*ap = a->next;
		return n;
	}
	if (arg_is_atom(a, "LARGER") || arg_is_atom(a, "SMALLER") || arg_is_atom(a, "OLDER") ||
	    arg_is_atom(a, "YOUNGER")) {
		const struct imap_arg *v = *ap;
		uint64_t num = 0;
		size_t k;

		/* OLDER and YOUNGER (RFC 5032) take an nz-number of seconds */
		n = new_node(arg_is_atom(a, "LARGER") ? N_LARGER : arg_is_atom(a, "SMALLER") ?
			     N_SMALLER : arg_is_atom(a, "OLDER") ? N_OLDER : N_YOUNGER);
		if (v == NULL || v->type != ARG_ATOM || v->len == 0 || v->len > 19) {
			ps->why = "bad number";
			free_node(n);
			return NULL;
		}
		for (k = 0; k < v->len; k++) {
			if (v->str[k] < '0' || v->str[k] > '9') {
				ps->why = "bad number";
				free_node(n);
				return NULL;
			}
			num = num * 10 + (uint64_t)(v->str[k] - '0');
		}
		if ((n->kind == N_OLDER || n->kind == N_YOUNGER) && (num == 0 || num > UINT32_MAX)) {
			ps->why = "bad interval";
			free_node(n);
			return NULL;
		}
		n->num = num;
		*ap = v->next;
		return n;
	}
	if (arg_is_atom(a, "MODSEQ")) {
		/* RFC 7162 3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer;
		 * one mod-sequence per message here, so the entry is checked and ignored */
		const struct imap_arg *v = *ap;
		uint64_t num = 0;
		size_t k;

		if (v != NULL && v->type != ARG_ATOM) {
			const struct imap_arg *t = v->next;

			if (!arg_is_astring(v) || t == NULL || !(arg_is_atom(t, "priv") ||
			    arg_is_atom(t, "shared") || arg_is_atom(t, "all"))) {
				ps->why = "bad MODSEQ entry";
				return NULL;
			}
			v = t->next;
		}
		if (v == NULL || v->type != ARG_ATOM || v->len == 0 || v->len > 19) {
			ps->why = "bad mod-sequence";
			return NULL;
		}
		for (k = 0; k < v->len; k++) {
			if (v->str[k] < '0' || v->str[k] > '9') {
				ps->why = "bad mod-sequence";
				return NULL;
			}
			num = num * 10 + (uint64_t)(v->str[k] - '0');
		}
		if (num > INT64_MAX) {
			ps->why = "bad mod-sequence";
			return NULL;
		}
		n = new_node(N_MODSEQ);
		n->num = num;
		*ap = v->next;
		return n;
	}
	if (arg_is_atom(a, "HEADER")) {
		const struct imap_arg *f = *ap;

		if (f == NULL || !arg_is_astring(f)) {
			ps->why = "missing header field name";
			return NULL;
		}
		n = new_node(N_HEADER);
		n->field = dup_arg(f);
		*ap = f->next;
		if (take_string(ps, ap, n) < 0) {
			free_node(n);
			return NULL;
		}
		return n;
	}
	if (arg_is_atom(a, "UID")) {
		const struct imap_arg *v = *ap;

		if (v != NULL && v->type == ARG_ATOM && v->len == 1 && v->str[0] == '$') {
			*ap = v->next;
			return new_node(N_SAVED);
		}
		if (v == NULL || v->type != ARG_ATOM || !is_seqset(v->str, v->len) ||
		    (n = parse_set(N_UID, v->str, v->len)) == NULL) {
			ps->why = "bad UID set";
			return NULL;
		}
		*ap = v->next;
		return n;
	}
	if (arg_is_atom(a, "NOT")) {
		if (*ap == NULL) {
			ps->why = "NOT needs a key";
			return NULL;
		}
		n = new_node(N_NOT);
		if ((n->child = parse_key(ps, ap, depth + 1)) == NULL) {
			free_node(n);
			return NULL;
		}
		return n;
	}
	if (arg_is_atom(a, "OR")) {
		if (*ap == NULL || (*ap)->next == NULL) {
			ps->why = "OR needs two keys";
			return NULL;
		}
		n = new_node(N_OR);
		if ((n->child = parse_key(ps, ap, depth + 1)) == NULL || *ap == NULL ||
		    (n->child->next = parse_key(ps, ap, depth + 1)) == NULL) {
			if (ps->why == NULL)
				ps->why = "OR needs two keys";
			free_node(n);
			return NULL;
		}
		return n;
	}
	ps->why = "unknown search key";
	return NULL;
}

static enum search_error
parse_program(struct pstate *ps, const struct imap_arg *args, struct search_program **prog_r,
	      const char **why_r)
{
	struct node *root = parse_list(ps, args, 0);

	if (root == NULL) {
		*why_r = ps->why != NULL ? ps->why : "bad criteria";
		return SEARCH_ESYNTAX;
	}
	*prog_r = calloc(1, sizeof(**prog_r));
	if (*prog_r == NULL)
		abort();
	(*prog_r)->root = root;
	return SEARCH_OK;
}

enum search_error
search_parse(const struct imap_arg *args, struct search_program **prog_r, const char **why_r)
{
	struct pstate ps = { NULL, 0, NULL };

	*prog_r = NULL;
	*why_r = NULL;
	if (args != NULL && arg_is_atom(args, "CHARSET")) {
		const struct imap_arg *cs = args->next;

		if (cs == NULL || !arg_is_astring(cs)) {
			*why_r = "missing charset";
			return SEARCH_ESYNTAX;
		}
		if (!charset_known(cs->str) || strchr(cs->str, '/') != NULL)
			return SEARCH_EBADCHARSET;
		if (strcasecmp(cs->str, "US-ASCII") != 0 && strcasecmp(cs->str, "UTF-8") != 0)
			ps.charset = cs->str;
		args = cs->next;
	}
	return parse_program(&ps, args, prog_r, why_r);
}

enum search_error
search_parse_keys(const struct imap_arg *args, struct search_program **prog_r,
		  const char **why_r)
{
	struct pstate ps = { NULL, 0, NULL };

	*prog_r = NULL;
	*why_r = NULL;
	return parse_program(&ps, args, prog_r, why_r);
}

/* ---- evaluation ---- */

static bool
in_set(const struct node *n, uint32_t v, uint32_t star)
{
	size_t i;

	if (n->ordered) {
		size_t lo = 0, hi = n->nranges;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (n->ranges[mid].hi < v)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < n->nranges && n->ranges[lo].lo <= v;
	}
	for (i = 0; i < n->nranges; i++) {
		uint32_t lo = n->ranges[i].lo == STAR ? star : (uint32_t)n->ranges[i].lo;
		uint32_t hi = n->ranges[i].hi == STAR ? star : (uint32_t)n->ranges[i].hi;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (v >= lo && v <= hi)
			return true;
	}
	return false;
}

static bool
text_has(const char *text, size_t len, const struct node *n)
{
	return n->len == 0 || utf8_contains_ci(text, len, n->str, n->len);
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * An address field whose value has comments or white space that may sit inside
 * an addr-spec ("<fred (work) @ example.org>"): worth matching as ENVELOPE shows it too.
 */
static bool
address_needs_parse(const struct msg_field *f)
{
	static const char *const names[] = { "from", "to", "cc", "bcc", "sender", "reply-to" };
	size_t i, k;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (msg_name_eq(f->name, f->name_len, names[k]))
			break;
	if (k == sizeof(names) / sizeof(names[0]))
		return false;
	/* a comment anywhere, or white space (folds too) next to '@' or '.' */
	for (i = 0; i < f->value_len; i++) {
		char c = f->value[i];

		if (c == '(')
			return true;
		if ((c == '@' || c == '.') &&
		    ((i > 0 && is_fws(f->value[i - 1])) ||
		     (i + 1 < f->value_len && is_fws(f->value[i + 1]))))
			return true;
	}
	return false;
}

/*
 * The addresses of an address field as ENVELOPE gives them (RFC 5322 3.4.1, 3.2.2:
 * comments and folding white space inside an addr-spec are not part of it): each as
 * "display name <mailbox@host>", names decoded (RFC 2047), matched.
 */
static bool
address_has(const struct msg_field *f, const struct node *n)
{
	struct addr_list l;
	struct dbuf b;
	size_t i;
	bool r;

	addr_parse(f->value, f->value_len, &l);
	dbuf_init(&b, SIZE_MAX);
	for (i = 0; i < l.n; i++) {
		const struct addr *a = &l.v[i];

		if (a->mailbox == NULL || a->host == NULL)
			continue;	/* group markers */
		if (a->name != NULL) {
			rfc2047_decode(a->name, strlen(a->name), &b);
			dbuf_add(&b, " ", 1);
		}
		dbuf_add(&b, "<", 1);
		dbuf_add(&b, a->mailbox, strlen(a->mailbox));
		dbuf_add(&b, "@", 1);
		dbuf_add(&b, a->host, strlen(a->host));
		dbuf_add(&b, ">, ", 3);
	}
	r = b.len > 0 && utf8_contains_ci(b.data, b.len, n->str, n->len);
	dbuf_free(&b);
	addr_list_free(&l);
	return r;
}

/* A header field's value decoded (RFC 2047) and matched; an address field also as its
 * addresses (address_has). */
static bool
field_has(const struct msg_field *f, const struct node *n)
{
	struct dbuf b;
	bool r;

	if (n->len == 0)
		return true;
	dbuf_init(&b, SIZE_MAX);
	rfc2047_decode(f->value, f->value_len, &b);
	r = b.len > 0 && utf8_contains_ci(b.data, b.len, n->str, n->len);
	dbuf_free(&b);
	if (!r && address_needs_parse(f))
		r = address_has(f, n);
	return r;
}

/*
 * field_has() for a value that is plain ASCII: no encoded word, no 8-bit byte, no line end
 * and no control character, which RFC 2047 decoding and charset conversion would leave
 * exactly as it is.  Folding such text only lowers ASCII letters, so the folded needle is
 * looked for with an ASCII case-insensitive comparison.  Returns -1 when the value is not
 * plain (the caller decodes), else whether it matches.
 */
static int
plain_field_has(const struct msg_field *f, const struct node *n)
{
	const unsigned char *v = (const unsigned char *)f->value;
	size_t len = f->value_len, i, k;

	for (i = 0; i < len; i++) {
		unsigned char c = v[i];

		if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7f ||
		    (c == '=' && i + 1 < len && v[i + 1] == '?'))
			return -1;
	}
	if (n->flen == 0)
		return 1;
	if (!n->fold_ascii || n->flen > len)
		return 0;
	for (i = 0; i + n->flen <= len; i++) {
		for (k = 0; k < n->flen; k++) {
			unsigned char c = v[i + k];

			if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)n->fold[k])
				break;
		}
		if (k == n->flen)
			return 1;
	}
	return 0;
}

/*
 * HEADER/FROM/SUBJECT/... of an indexed field through the header index: only the fields of
 * that name are read.  Returns -1 when the index cannot be used (the caller parses).
 */
static int
indexed_header_has(const struct search_msg *m, const struct node *n)
{
	const unsigned char *data;
	const struct msg_hindex *hx;
	size_t len;
	unsigned int k;

	if (n->hkind < 0 || m->get_hindex == NULL ||
	    (hx = m->get_hindex(m->ctx, &data, &len)) == NULL)
		return -1;
	for (k = 0; k < hx->nfields; k++) {
		struct msg_field f;
		int r;

		if (hx->f[k].kind != n->hkind)
			continue;
		if (!msg_hindex_field(hx, data, len, k, &f))
			return -1;
		r = n->len == 0 ? 1 : plain_field_has(&f, n);
		if (r < 0 || (r == 0 && address_needs_parse(&f)))
			r = field_has(&f, n);
		if (r > 0)
			return 1;
	}
	return 0;
}

/* field == NULL: any field (TEXT). */
static bool
header_has(const struct msg *msg, const struct msg_part *part, const char *field,
	   const struct node *n)
{
	struct msg_hdr_iter it;
	struct msg_field f;

	msg_hdr_iter_init(&it, msg_data(msg) + part->header_off, part->header_len);
	while (msg_hdr_next(&it, &f)) {
		if (part == msg_root(msg) && msg_field_hidden(msg, f.name, f.name_len))
			continue;
		if (field != NULL) {
			if (msg_name_eq(f.name, f.name_len, field) && field_has(&f, n))
				return true;
		} else if (text_has(f.name, f.name_len, n) || field_has(&f, n)) {
			return true;
		}
	}
	return false;
}

/* The decoded, UTF-8 text of one leaf part. */
static bool
part_has(const struct msg *msg, const struct msg_part *p, const struct node *n)
{
	enum msg_cte cte = msg_cte_parse(p->encoding);
	const unsigned char *raw = msg_data(msg) + p->body_off;
	size_t left = p->body_len;
	struct charset_conv *conv;
	struct textmatch tm;
	struct decoder d;
	unsigned char *out;
	struct dbuf u;
	bool found = false;

	if (cte == MSG_CTE_UNKNOWN)
		cte = MSG_CTE_8BIT;	/* search the bytes as they are */
	if (textmatch_init(&tm, n->str, n->len) < 0)
		return false;
	out = malloc(DEC_OUT_MAX(SEARCH_CHUNK) + 8);
	if (out == NULL)
		abort();
	conv = charset_conv_new(msg_param_get(p->params, p->nparams, "charset"));
	dbuf_init(&u, SIZE_MAX);
	decoder_init(&d, cte);
	while (!found) {
		size_t chunk = left < SEARCH_CHUNK ? left : SEARCH_CHUNK, o;

		o = decoder_feed(&d, raw, chunk, out);
		raw += chunk;
		left -= chunk;
		if (left == 0)
			o += decoder_finish(&d, out + o);
		dbuf_reset(&u);
		charset_conv_feed(conv, out, o, left == 0, &u);
		found = textmatch_feed(&tm, u.data != NULL ? u.data : "", u.len);
		if (left == 0) {
			found = found || textmatch_finish(&tm);
			break;
		}
	}
	dbuf_free(&u);
	charset_conv_free(&conv);
	free(out);
	textmatch_free(&tm);
	return found;
}

static bool
body_has(const struct msg *msg, const struct msg_part *p, const struct node *n)
{
	const struct msg_part *c;

	if (p->kind == MSG_PART_MESSAGE) {
		/* an encapsulated message's header is body text of the outer one */
		return header_has(msg, p->children, NULL, n) || body_has(msg, p->children, n);
	}
	if (p->kind == MSG_PART_MULTIPART) {
		for (c = p->children; c != NULL; c = c->next) {
			if (body_has(msg, c, n))
				return true;
		}
		return false;
	}
	if (!msg_name_eq(p->type, strlen(p->type), "text") &&
	    !msg_name_eq(p->type, strlen(p->type), "message"))
		return false;	/* attachments are not text */
	return part_has(msg, p, n);
}

/*
 * The day of the first Date field in its own zone.  A message without a usable Date counts as
 * sent at the epoch, as Dovecot does, so "NOT SENTBEFORE x" and "SENTBEFORE x" split cleanly.
 */
static bool
sent_day(const struct search_msg *m, long long *day_r)
{
	const struct msg *msg = m->get_msg(m->ctx);
	const struct msg_part *root;
	struct msg_field f;
	time_t t = 0;
	int tz = 0;

	if (msg == NULL)
		return false;
	root = msg_root(msg);
	if (msg_hdr_find(msg_data(msg) + root->header_off, root->header_len, "date", &f) &&
	    msg_date_parse(f.value, f.value_len, &t, &tz) < 0) {
		t = 0;
		tz = 0;
	}
	*day_r = search_day(t, tz);
	return true;
}

static bool
in_saved(const struct search_box *box, uint32_t uid)
{
	size_t lo = 0, hi = box->n_saved;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (box->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < box->n_saved && box->saved[lo] == uid;
}

static bool
eval(const struct node *n, const struct search_box *box, const struct search_msg *m)
{
	const struct node *c;
	const struct msg *msg;
	long long day;
	int r;

	switch (n->kind) {
	case N_ALL:
		return true;
	case N_AND:
		for (c = n->child; c != NULL; c = c->next) {
			if (!eval(c, box, m))
				return false;
		}
		return true;
	case N_OR:
		return eval(n->child, box, m) || eval(n->child->next, box, m);
	case N_NOT:
		return !eval(n->child, box, m);
	case N_SEQ:
		return in_set(n, m->seq, box->count);
	case N_UID:
		return in_set(n, m->uid, box->max_uid);
	case N_FLAG:
		return (m->flags & n->flag) != 0;
	case N_UNFLAG:
		return (m->flags & n->flag) == 0;
	case N_NEW:
		return (m->flags & MBOX_RECENT) != 0 && (m->flags & MBOX_SEEN) == 0;
	case N_OLD:
		return (m->flags & MBOX_RECENT) == 0;
	case N_KEYWORD:
		return m->has_keyword != NULL && m->has_keyword(m->ctx, n->str);
	case N_UNKEYWORD:
		return m->has_keyword == NULL || !m->has_keyword(m->ctx, n->str);
	case N_BEFORE:
		return search_day(m->internal_date, m->internal_tz) < n->day;
	case N_ON:
		return search_day(m->internal_date, m->internal_tz) == n->day;
	case N_SINCE:
		return search_day(m->internal_date, m->internal_tz) >= n->day;
	case N_SENTBEFORE:
		return sent_day(m, &day) && day < n->day;
	case N_SENTON:
		return sent_day(m, &day) && day == n->day;
	case N_SENTSINCE:
		return sent_day(m, &day) && day >= n->day;
	case N_MODSEQ:
		return m->modseq >= n->num;
	case N_SAVED:
		return in_saved(box, m->uid);
	case N_OLDER:
		/* RFC 5032: the INTERNALDATE more than num seconds before now */
		return (long long)box->now - (long long)m->internal_date > (long long)n->num;
	case N_YOUNGER:
		return (long long)box->now - (long long)m->internal_date <= (long long)n->num;
	case N_LARGER:
		return m->size > n->num;
	case N_SMALLER:
		return m->size < n->num;
	case N_HEADER:
		if ((r = indexed_header_has(m, n)) >= 0)
			return r > 0;
		msg = m->get_msg(m->ctx);
		return msg != NULL && header_has(msg, msg_root(msg), n->field, n);
	case N_BODY:
		msg = m->get_msg(m->ctx);
		return msg != NULL && (n->len == 0 || body_has(msg, msg_root(msg), n));
	case N_TEXT:
		msg = m->get_msg(m->ctx);
		return msg != NULL && (n->len == 0 || header_has(msg, msg_root(msg), NULL, n) ||
				       body_has(msg, msg_root(msg), n));
	}
	return false;
}

static bool
needs_mime(const struct node *n)
{
	for (; n != NULL; n = n->next) {
		if (n->kind == N_BODY || n->kind == N_TEXT || needs_mime(n->child))
			return true;
	}
	return false;
}

bool
search_needs_mime(const struct search_program *prog)
{
	return needs_mime(prog->root);
}

static bool
uses_kind(const struct node *n, enum nkind kind)
{
	for (; n != NULL; n = n->next) {
		if (n->kind == kind || uses_kind(n->child, kind))
			return true;
	}
	return false;
}

bool
search_uses_modseq(const struct search_program *prog)
{
	return uses_kind(prog->root, N_MODSEQ);
}

bool
search_uses_saved(const struct search_program *prog)
{
	return uses_kind(prog->root, N_SAVED);
}

bool
search_uses_time(const struct search_program *prog)
{
	return uses_kind(prog->root, N_OLDER) || uses_kind(prog->root, N_YOUNGER);
}

/* Appends lo:hi to n's ranges. */
static void
add_range(struct node *n, size_t *cap, uint64_t lo, uint64_t hi)
{
	if (n->nranges == *cap) {
		struct range *nr;

		*cap = *cap == 0 ? 4 : *cap * 2;
		nr = realloc(n->ranges, *cap * sizeof(*nr));
		if (nr == NULL)
			abort();
		n->ranges = nr;
	}
	n->ranges[n->nranges].lo = lo;
	n->ranges[n->nranges].hi = hi;
	n->nranges++;
}

static void
freeze(struct node *n, const struct search_box *box,
       uint32_t (*uid_of)(void *ctx, uint32_t seq), void *ctx)
{
	for (; n != NULL; n = n->next) {
		struct range *old = n->ranges;
		size_t i, nold = n->nranges, cap = 0;

		freeze(n->child, box, uid_of, ctx);
		if (n->kind == N_SEQ) {
			/* the messages the numbers named, by UID: none other lies between the
			 * UIDs of two of them, and new mail comes above */
			n->kind = N_UID;
			n->ranges = NULL;
			n->nranges = 0;
			for (i = 0; i < nold; i++) {
				uint64_t lo = old[i].lo == STAR ? box->count : old[i].lo;
				uint64_t hi = old[i].hi == STAR ? box->count : old[i].hi;

				if (lo > hi) {
					uint64_t t = lo;

					lo = hi;
					hi = t;
				}
				if (hi > box->count)
					hi = box->count;
				if (lo == 0 || lo > hi)
					continue;
				add_range(n, &cap, uid_of(ctx, (uint32_t)lo), uid_of(ctx, (uint32_t)hi));
			}
			free(old);
		} else if (n->kind == N_UID) {
			for (i = 0; i < nold; i++) {
				if (old[i].lo == STAR)
					old[i].lo = box->max_uid;
				if (old[i].hi == STAR)
					old[i].hi = box->max_uid;
			}
		} else if (n->kind == N_SAVED) {
			n->kind = N_UID;
			n->ordered = true;
			for (i = 0; i < box->n_saved; i++) {
				if (n->nranges > 0 &&
				    n->ranges[n->nranges - 1].hi + 1 == box->saved[i])
					n->ranges[n->nranges - 1].hi = box->saved[i];
				else
					add_range(n, &cap, box->saved[i], box->saved[i]);
			}
		}
	}
}

void
search_freeze(struct search_program *prog, const struct search_box *box,
	      uint32_t (*uid_of)(void *ctx, uint32_t seq), void *ctx)
{
	freeze(prog->root, box, uid_of, ctx);
}

bool
search_match(const struct search_program *prog, const struct search_box *box,
	     const struct search_msg *m)
{
	return eval(prog->root, box, m);
}
