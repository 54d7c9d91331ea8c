/*
 * message-int.h: internals shared by the message-*.c files.  Not for use outside them.
 */
#ifndef MBOX_MESSAGE_INT_H
#define MBOX_MESSAGE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "mbox/message.h"

struct arena_chunk;

struct msg {
	const unsigned char *data;
	size_t len;
	msg_hide_fn *hide;
	void *hide_ctx;
	struct arena_chunk *arena;
	struct msg_part *root;
	unsigned int nparts;
	bool truncated;
	bool body_uncounted;	/* msg_parse_header: root body_size/body_lines not computed */
};

/* Zeroed memory from the message's arena, freed with it; aborts when memory runs out. */
void *msg_alloc(struct msg *msg, size_t n);
char *msg_strdup_n(struct msg *msg, const char *s, size_t len);

#endif
