/*
 * mbox-collapse.h: expunge by removing block-aligned ranges from the middle of the file
 * (Linux fallocate FALLOC_FL_COLLAPSE_RANGE) instead of rewriting the whole tail; internal
 * to mbox/.
 *
 * One step removes the bytes [a, b) of expunged messages in front of a kept message K:
 * the largest block-aligned range [ca, ca + len) inside [a, K's body) is collapsed, and K's
 * From_ line and header are rewritten to start at a, padded (whitespace in its X-Keywords
 * field) so that its body, unchanged, follows them.  Each step is journaled in the
 * journal directory (mbox-journal.c) and finished by the next open if the process dies.
 */
#ifndef MBOX_MBOX_COLLAPSE_H
#define MBOX_MBOX_COLLAPSE_H

#include <stdint.h>

#include "mbox/mbox-private.h"

/* A collapse step costs a journal, a collapse and four fsyncs whatever its size; a tail
 * rewrite costs as much plus about one second per 250 MB.  The fixed part is counted as
 * this many bytes of rewrite when choosing between them (mbox_expunge): one run is always
 * collapsed, scattered runs while each saves more than this. */
#define MBOX_COLLAPSE_STEP_COST		(2u * 1024 * 1024)
/* At most this many collapse steps per expunge; more scattered ranges are rewritten. */
#define MBOX_COLLAPSE_MAX_STEPS		256
/* Recovery tells "collapsed" from "not yet" by bytes that differ between the two states;
 * they are looked for this far at most (content that repeats with the period of the
 * collapsed length further than this is rewritten instead). */
#define MBOX_COLLAPSE_PROBE_SEARCH	(1024 * 1024)
/* Bytes of the probe window kept in the journal for each state. */
#define MBOX_COLLAPSE_PROBE_LEN		64
/* Padding lines folded into X-Keywords stay this long at most (with the LF), far under
 * RFC 5322 2.1.1's 998 octets. */
#define MBOX_COLLAPSE_PAD_LINE		200
/* Largest header a collapse step rewrites (the new header goes into the journal). */
#define MBOX_COLLAPSE_MAX_HEADER	(256u * 1024)

/* One step, as planned by mbox_expunge (offsets in the current file). */
struct mbox_collapse {
	uint64_t a;		/* where K's new From_ line goes */
	uint64_t ca, len;	/* the range to collapse: block aligned, a <= ca */
	const unsigned char *nh;	/* K's new From_ line and header, blank line included */
	size_t nh_len;		/* == K's old body offset - len - a */
};

/*
 * The block size collapse ranges must be aligned to, or 0 if the filesystem holding the
 * mailbox is not known to support FALLOC_FL_COLLAPSE_RANGE (then the caller rewrites).
 */
uint64_t mbox_collapse_block(struct mbox *mb);

/*
 * Carry out one step under the write lock: journal, collapse, write the new header, sync,
 * remove the journal, remap.  Returns 0 done, 1 if the filesystem refused the collapse or
 * no probe could be found (nothing changed; the caller rewrites instead), -1 on error
 * (mb->err set; a journal may be left for the next open to finish).
 */
int mbox_collapse_run(struct mbox *mb, const struct mbox_collapse *c);

/*
 * Recovery of a collapse journal, called by mbox_journal_recover() with the journal open
 * (jfd, its name fin) once it has seen the collapse magic; the mailbox lock is held.
 * Finishes the step if the journal is complete and the file is in one of its states,
 * removes the journal.  0 or -1.
 */
int mbox_collapse_recover(struct mbox *mb, int jfd, const char *fin);

/* The magic that starts a collapse journal (8 bytes, no terminator used). */
#define MBOX_COLLAPSE_MAGIC	"IMAPDC01"

#endif
