/*
 * message-thread.h: the THREAD algorithms of RFC 5256 (ORDEREDSUBJECT and REFERENCES) over a
 * set of messages described by their keys (mbox/message-sort.h), producing the text of the
 * THREAD response.  Store-independent; the caller resolves each message's sent date.
 */
#ifndef MBOX_MESSAGE_THREAD_H
#define MBOX_MESSAGE_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbox/decode.h"

struct thread_msg {
	uint32_t id;			/* the number the response gives (sequence number or UID) */
	int64_t sent;			/* RFC 5256 2.2, INTERNALDATE already substituted */
	uint64_t msgid;			/* normalized Message-ID's hash; 0: none valid */
	const uint64_t *refs;		/* references, oldest first */
	uint32_t nrefs;
	const unsigned char *subj;	/* base subject, collated (sort_casemap) */
	size_t subj_len;
	bool reply;			/* the subject was a reply or forward */
};

enum thread_alg {
	THREAD_ORDEREDSUBJECT,
	THREAD_REFERENCES
};

/*
 * Threads msgs[0..n) (in mailbox order: ties between equal sent dates go to the earlier one)
 * and appends the thread-lists of the response to out, each "(...)", nothing when n is 0.
 */
void thread_build(enum thread_alg alg, const struct thread_msg *msgs, size_t n,
		  struct dbuf *out);

#endif
