/* Feeds arbitrary bytes to the command parser as a client would send them, with the
 * post-login limits and the streaming mode APPEND uses, for as many commands as the input
 * holds. Every argument tree is walked so that broken links would be touched. */
#include <stddef.h>
#include <stdint.h>

#include "imapd/limits.h"
#include "imapd/parser.h"
#include "imapd/io.h"
#include "tests/unit/memio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
walk(const struct imap_arg *a, unsigned depth)
{
	size_t n = 0;

	for (; a != NULL; a = a->next) {
		n++;
		if (a->type == ARG_LIST)
			n += walk(a->list, depth + 1);
		else if (a->type != ARG_LITERAL_SIZE && a->str[a->len] != '\0')
			__builtin_trap();
	}
	if (depth > IMAPD_NEST_MAX + 1)
		__builtin_trap();
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct parser_limits lim = {
		.line_max = 512, .literal_max = 256, .command_max = 16384,
		.args_max = 1000, .depth_max = IMAPD_NEST_MAX, .discard_max = 4096,
	};
	struct memio m;
	struct io *io = memio_new(&m, data, size, size > 0 ? (size_t)data[0] % 7 + 1 : 1);
	struct parser *p = io != NULL ? parser_new(io) : NULL;
	unsigned i;

	if (p == NULL) {
		io_free(&io);
		return 0;
	}
	parser_set_limits(p, &lim);
	for (i = 0; i < 64; i++) {
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
		st = parser_read_args(p, (i & 1) ? PARSE_STREAM : 0, &args);
		while (st == PARSE_LITERAL) {
			walk(args, 0);
			if (i & 2) {
				if (parser_discard(p) != PARSE_OK)
					st = PARSE_IO;
				break;
			}
			parser_literal_accept(p);
			{
				uint64_t left = 0;
				const struct imap_arg *a;

				for (a = args; a != NULL; a = a->next)
					if (a->type == ARG_LITERAL_SIZE)
						left = a->literal_size;
				if (left > 100000 || io_skip(io, left) != IO_OK) {
					st = PARSE_IO;
					break;
				}
			}
			st = parser_read_args(p, PARSE_STREAM, &args);
		}
		if (st == PARSE_OK)
			walk(args, 0);
		if (st == PARSE_IO || st == PARSE_TOOLONG)
			break;
		if (!parser_done(p) && parser_discard(p) != PARSE_OK)
			break;
	}
	parser_free(&p);
	io_free(&io);
	return 0;
}
