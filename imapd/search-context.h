#ifndef IMAPD_SEARCH_CONTEXT_H
#define IMAPD_SEARCH_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/command.h"
#include "imapd/search-program.h"
#include "imapd/selected.h"

/*
 * Updating search contexts (RFC 5267 4.3, CONTEXT=SEARCH and CONTEXT=SORT): a SEARCH or
 * SORT with RETURN (UPDATE) keeps its program and its result, and the session tells the
 * client of every change to that result as ESEARCH ADDTO and REMOVEFROM, where it reports
 * the causes: REMOVEFROM before the EXPUNGE of a message in the result
 * (search_context_expunged()), ADDTO and REMOVEFROM after the EXISTS and FETCH of new
 * mail and changed flags (search_context_refresh()).  The result is kept as UIDs in the
 * requested order; a change is found by running the program again, which happens only
 * when the mailbox changed (or, for OLDER and YOUNGER, the clock moved on a second).
 */

/* Updating contexts per selection; one more is answered NO [NOUPDATE] (RFC 5267 4.3.1). */
#define SEARCH_CONTEXTS_MAX	8

/* The result of prog in the context's order, as UIDs: 0, or -1 when the store could not
 * be read.  arg is the context's copy of what its command gave (SORT: the criteria). */
typedef int search_context_eval_fn(struct session *s, const struct search_program *prog,
				   const void *arg, uint32_t **uids_r, uint32_t *n_r);

/* Does a context with this tag exist?  A command with UPDATE reusing it is BAD (4.3). */
bool	search_context_tag_used(const struct selected *sel, const char *tag);

/*
 * After the answer of cmd (its tag names the context): keep *progp (taken: set to NULL)
 * with the current result uids[0..n) in requested order; sorted: positions matter (SORT).
 * eval/arg (arg_len bytes, copied) give the result again.  Past SEARCH_CONTEXTS_MAX, an
 * untagged NO [NOUPDATE] instead and *progp is left alone.
 */
void	search_context_start(struct command *cmd, struct search_program **progp,
			     search_context_eval_fn *eval, const void *arg, size_t arg_len,
			     bool sorted, const uint32_t *uids, uint32_t n);

/* Before EXPUNGE responses for uids[0..n) (ascending), whose sequence numbers until then
 * were seq[0..n): REMOVEFROM for those in a result (RFC 5267 4.3.4). */
void	search_context_expunged(struct session *s, const uint32_t *uids, const uint32_t *seq,
				size_t n);

/* After EXISTS and FETCH: ADDTO and REMOVEFROM for whatever changed in each result. */
void	search_context_refresh(struct session *s);

/* Leaving the selected state ends every context (4.3). */
void	search_context_free_all(struct selected *sel);

/* CANCELUPDATE "tag" ... (RFC 5267 4.3.5). */
void	cmd_cancelupdate(struct command *cmd);

#endif
