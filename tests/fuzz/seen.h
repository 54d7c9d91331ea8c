/*
 * seen.h: what a client sees of a message (UID, size, and a checksum of its visible header
 * and body), for the mbox fuzz harnesses that compare a mailbox before and after a rewrite.
 * Included by one harness each (every name here is static).
 */
#ifndef TESTS_FUZZ_SEEN_H
#define TESTS_FUZZ_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "mbox/mbox.h"

struct seen {
	uint32_t uid;
	uint64_t size;
	uint64_t sum;
};

/* Checksum of what a client sees of message i. */
static uint64_t
msg_sum(struct mbox *mb, uint32_t i)
{
	uint64_t pos = 0, sum = 0;
	const unsigned char *p;
	size_t len, k;

	while (mbox_header_next(mb, i, &pos, &p, &len))
		for (k = 0; k < len; k++)
			sum = sum * 31 + p[k];
	mbox_msg_body(mb, i, &p, &len);
	for (k = 0; k < len; k++)
		sum = sum * 131 + p[k];
	return sum;
}

/* Message i as a client sees it */
static struct seen
seen_of(struct mbox *mb, uint32_t i)
{
	struct seen s;

	s.uid = mbox_msg_uid(mb, i);
	s.size = mbox_msg_size(mb, i);
	s.sum = msg_sum(mb, i);
	return s;
}

/* Whether message i reads as s */
static int
seen_same(struct mbox *mb, uint32_t i, const struct seen *s)
{
	return mbox_msg_uid(mb, i) == s->uid && mbox_msg_size(mb, i) == s->size &&
	    msg_sum(mb, i) == s->sum;
}

#endif
