/* A transport back end over memory for unit tests and fuzzing: reads come from a buffer
 * at most `chunk` bytes at a time (1 feeds the parser byte by byte); writes are kept. */
#ifndef TESTS_MEMIO_H
#define TESTS_MEMIO_H

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "imapd/io.h"

struct memio {
	const unsigned char *in;
	size_t in_len, in_pos, chunk;
	char out[65536];
	size_t out_len;
};

static ssize_t
memio_read(void *ctx, void *buf, size_t len)
{
	struct memio *m = ctx;
	size_t n = m->in_len - m->in_pos;

	if (n > len)
		n = len;
	if (n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->in + m->in_pos, n);
	m->in_pos += n;
	return (ssize_t)n;
}

static ssize_t
memio_write(void *ctx, const void *buf, size_t len)
{
	struct memio *m = ctx;
	size_t n = len;

	if (n > sizeof(m->out) - 1 - m->out_len)
		n = sizeof(m->out) - 1 - m->out_len;
	memcpy(m->out + m->out_len, buf, n);
	m->out_len += n;
	m->out[m->out_len] = '\0';
	return (ssize_t)len;
}

static const struct io_backend memio_backend = {
	.read = memio_read,
	.write = memio_write,
};

/* m must outlive the io. */
static inline struct io *
memio_new(struct memio *m, const void *data, size_t len, size_t chunk)
{
	struct io *io = io_new(-1, -1, 65536 + 64);

	memset(m, 0, sizeof(*m));
	m->in = data;
	m->in_len = len;
	m->chunk = chunk ? chunk : (size_t)-1;
	if (io != NULL)
		io_set_backend(io, &memio_backend, m);
	return io;
}

#endif
