#ifndef IMAPD_CONDSTORE_H
#define IMAPD_CONDSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/parser.h"
#include "imapd/selected.h"
#include "imapd/session.h"

/* CONDSTORE and QRESYNC (RFC 7162) in the selected state; see condstore.c. */

/* The server offers them (the condstore setting): CAPABILITY lists them, and the
 * commands take their arguments. */
bool	condstore_offered(const struct session *s);
/* A mod-sequence argument: mod-sequence-value (positive, 63 bits), or with zero_ok
 * mod-sequence-valzer. */
bool	condstore_parse_modseq(const struct imap_arg *a, bool zero_ok, uint64_t *v_r);
/* A CONDSTORE enabling command (3.1): from now on every untagged FETCH carries MODSEQ
 * and UID; the first one with a mailbox selected tells its HIGHESTMODSEQ. */
void	condstore_enable(struct session *s);
/* "* OK [HIGHESTMODSEQ n]", or "* OK [NOMODSEQ]" for a mailbox without them. */
void	condstore_write_highest(struct session *s);
/* A sorted UID array as a compact set "1:3,7". */
void	condstore_write_uid_set(struct session *s, const uint32_t *v, size_t n);
/* The same as a malloc'd string. */
char	*condstore_uid_set_str(const uint32_t *v, size_t n);
/* "* VANISHED uid-set" (3.2.10.2), nothing for n == 0. */
void	condstore_write_vanished(struct session *s, const uint32_t *uids, size_t n);
/*
 * "* VANISHED (EARLIER) ..." (3.2.10.1): the UIDs of the set uids, above `above` and
 * below UIDNEXT, expunged since the mod-sequence since; where the store's tombstones do
 * not reach back so far, every UID of the set the mailbox does not hold.  Nothing is
 * written when there are none.  0, or -1 (the store's error).
 */
int	condstore_vanished_earlier(struct session *s, const struct seqset *uids,
				   uint64_t since, uint32_t above);

/* The QRESYNC select parameter (3.2.5). */
struct qresync_args {
	uint32_t	uidvalidity;
	uint64_t	modseq;
	bool		has_known;
	struct seqset	known;		/* known-uids */
	bool		has_match;
	struct seqset	match_seq;	/* seq-match-data */
	struct seqset	match_uid;
};
/* Parse the list after QRESYNC; -1 on bad syntax (BAD).  Free with ..._clear(). */
int	condstore_qresync_parse(const struct imap_arg *a, struct qresync_args *q);
void	condstore_qresync_clear(struct qresync_args *q);
/* After the SELECT responses: VANISHED (EARLIER) and FETCH of what changed since. */
int	condstore_qresync(struct session *s, const struct qresync_args *q);

#endif
