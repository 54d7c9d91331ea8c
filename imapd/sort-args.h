#ifndef IMAPD_SORT_ARGS_H
#define IMAPD_SORT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "imapd/parser.h"
#include "mbox/message-thread.h"

/*
 * The arguments of SORT and THREAD (cmd-sort.c, RFC 5256), exported for the fuzz harness
 * tests/fuzz/fuzz-sort-args.c; only cmd-sort.c uses them otherwise.
 */

/* Sort criteria per command; the keys number nine, so more only repeat some. */
#define SORT_MAX_CRITERIA	32

enum skey {
	K_ARRIVAL, K_CC, K_DATE, K_FROM, K_SIZE, K_SUBJECT, K_TO, K_DISPLAYFROM, K_DISPLAYTO
};

struct criterion {
	enum skey key;
	bool reverse;
};

struct criteria {
	struct criterion c[SORT_MAX_CRITERIA];
	size_t n;
};

/*
 * sort-criteria at a (a list of [REVERSE] key, at least one, at most SORT_MAX_CRITERIA)
 * into *cr.  False on a syntax error (cr->n is then meaningless).
 */
bool parse_criteria(const struct imap_arg *a, struct criteria *cr);

/* THREAD's first argument, the algorithm (ORDEREDSUBJECT or REFERENCES), into *alg_r;
 * false when a is neither. */
bool parse_thread_alg(const struct imap_arg *a, enum thread_alg *alg_r);

#endif
