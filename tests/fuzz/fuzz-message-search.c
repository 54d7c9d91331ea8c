/*
 * fuzz-message-search.c: SEARCH criteria parsing and evaluation.  The input is read as
 * criteria text (atoms, "quoted" strings, nested lists) into an argument tree like the one
 * the command parser builds, parsed by search_parse and run against a small fixed message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/search-program.h"
#include "mbox/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 512

struct reader {
	const char *p, *end;
	struct imap_arg *pool;
	size_t n;
	char *text;
	size_t ntext;
	unsigned int depth;
};

static struct imap_arg *
read_list(struct reader *r, bool nested)
{
	struct imap_arg *first = NULL, **tail = &first;

	if (++r->depth > 40)
		return NULL;
	while (r->p < r->end) {
		struct imap_arg *a;
		char c = *r->p;

		if (c == ' ') {
			r->p++;
			continue;
		}
		if (c == ')') {
			r->p++;
			if (nested)
				break;
			continue;
		}
		if (r->n >= MAX_ARGS)
			break;
		a = &r->pool[r->n++];
		memset(a, 0, sizeof(*a));
		if (c == '(') {
			r->p++;
			a->type = ARG_LIST;
			a->list = read_list(r, true);
		} else {
			char *o = r->text + r->ntext;

			a->type = c == '"' ? ARG_STRING : ARG_ATOM;
			if (c == '"') {
				for (r->p++; r->p < r->end && *r->p != '"'; r->p++)
					r->text[r->ntext++] = *r->p;
				r->p++;
			} else {
				while (r->p < r->end && *r->p != ' ' && *r->p != '(' && *r->p != ')')
					r->text[r->ntext++] = *r->p++;
			}
			r->text[r->ntext++] = '\0';
			a->str = o;
			a->len = strlen(o);
		}
		*tail = a;
		tail = &a->next;
	}
	r->depth--;
	return first;
}

static const char message[] =
	"From: =?utf-8?q?J=C3=B6rg?= <j@x>\nSubject: hello\nDate: 1 Jan 2024 00:00 +0100\n"
	"To: Plain Person <p@q.example>\nTo: second\n\tfolded\nCc: L\xc3\xa9on <l@x>\n"
	"Bcc: Ij \x01ctl\nReply-To: =?iso-8859-1?q?=E9?= x\nMessage-ID: <id@h>\n"
	"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\n"
	"aGVsbG8gd29ybGQ=\n--b\nContent-Type: text/plain; charset=koi8-r\n\n\xc1\xc2\n--b--\n";

static const struct msg *
get_msg(void *ctx)
{
	return ctx;
}

struct both_ctx {
	const struct msg_hindex *hx;
	const struct msg *msg;
};

/* The header index of the same bytes, for the indexed path. */
static const struct msg_hindex *
get_hindex(void *ctx, const unsigned char **data_r, size_t *len_r)
{
	*data_r = (const unsigned char *)message;
	*len_r = sizeof(message) - 1;
	return ((struct both_ctx *)ctx)->hx;
}

static const struct msg *
get_msg_both(void *ctx)
{
	return ((struct both_ctx *)ctx)->msg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_arg pool[MAX_ARGS];
	struct reader r;
	struct search_program *prog;
	struct search_msg m;
	const struct search_box box = { .count = 3, .max_uid = 9 };
	const char *why;
	struct msg *msg;
	struct both_ctx bc;
	bool plain;

	if (size > 4096)
		return 0;
	r.p = (const char *)data;
	r.end = r.p + size;
	r.pool = pool;
	r.n = 0;
	r.text = malloc(2 * size + 2 * MAX_ARGS + 2);
	if (r.text == NULL)
		abort();
	r.ntext = 0;
	r.depth = 0;
	if (search_parse(read_list(&r, false), &prog, &why) == SEARCH_OK) {
		msg = msg_parse((const unsigned char *)message, sizeof(message) - 1, NULL, NULL);
		memset(&m, 0, sizeof(m));
		m.seq = 2;
		m.uid = 5;
		m.flags = MBOX_SEEN;
		m.size = 100;
		m.get_msg = get_msg;
		m.ctx = msg;
		plain = search_match(prog, &box, &m);
		/* the header index must not change any answer */
		bc.hx = msg_hindex_build((const unsigned char *)message, sizeof(message) - 1, NULL,
					 NULL);
		bc.msg = msg;
		m.get_msg = get_msg_both;
		m.get_hindex = get_hindex;
		m.ctx = &bc;
		if (search_match(prog, &box, &m) != plain)
			abort();
		free((void *)(uintptr_t)bc.hx);
		msg_free(&msg);
		search_free(&prog);
	}
	free(r.text);
	return 0;
}
