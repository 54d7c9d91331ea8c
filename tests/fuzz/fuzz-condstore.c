/*
 * The RFC 7162 argument parsers on whatever the command parser makes of arbitrary bytes:
 * every atom as a mod-sequence (with and without zero), every list as a QRESYNC select
 * parameter (uidvalidity, mod-sequence, known UIDs, seq-match-data), and what parses is
 * checked against its own rules.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "imapd/condstore.h"
#include "imapd/io.h"
#include "imapd/limits.h"
#include "imapd/parser.h"
#include "tests/unit/memio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_set(const struct seqset *set)
{
	size_t k;

	for (k = 0; k < set->n; k++)
		if (set->r[k].lo == 0 || set->r[k].lo > set->r[k].hi || set->r[k].hi > SEQ_STAR)
			__builtin_trap();
}

static void
walk(const struct imap_arg *a, unsigned depth)
{
	for (; a != NULL; a = a->next) {
		uint64_t v;
		struct qresync_args q;

		if (a->type == ARG_ATOM) {
			if (condstore_parse_modseq(a, false, &v) && (v == 0 || v > INT64_MAX))
				__builtin_trap();
			if (condstore_parse_modseq(a, true, &v) && v > INT64_MAX)
				__builtin_trap();
		}
		if (a->type == ARG_LIST) {
			if (condstore_qresync_parse(a, &q) == 0) {
				if (q.uidvalidity == 0 || q.modseq == 0 || q.modseq > INT64_MAX)
					__builtin_trap();
				check_set(&q.known);
				check_set(&q.match_seq);
				check_set(&q.match_uid);
				condstore_qresync_clear(&q);
			}
			if (depth < IMAPD_NEST_MAX)
				walk(a->list, depth + 1);
		}
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
	struct io *io = memio_new(&m, data, size, 64);
	struct parser *p = io != NULL ? parser_new(io) : NULL;
	unsigned i;

	if (p == NULL) {
		io_free(&io);
		return 0;
	}
	parser_set_limits(p, &lim);
	for (i = 0; i < 32; i++) {
		const char *tag, *name;
		struct imap_arg *args;
		enum parse_status st = parser_begin(p, &tag, &name);

		if (st == PARSE_ERROR) {
			if (parser_discard(p) != PARSE_OK)
				break;
			continue;
		}
		if (st != PARSE_OK)
			break;
		st = parser_read_args(p, 0, &args);
		if (st == PARSE_OK)
			walk(args, 0);
		if (st != PARSE_OK && st != PARSE_ERROR)
			break;
		if (!parser_done(p) && parser_discard(p) != PARSE_OK)
			break;
	}
	parser_free(&p);
	io_free(&io);
	return 0;
}
