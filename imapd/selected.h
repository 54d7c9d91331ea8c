#ifndef IMAPD_SELECTED_H
#define IMAPD_SELECTED_H

#include <stdbool.h>
#include <stdint.h>

#include "imapd/command.h"
#include "imapd/session.h"
#include "mbox/mbox.h"
#include "mbox/message-cache.h"

/*
 * The selected mailbox (RFC 3501 state "selected"): the open store plus what the client
 * has been told.  Message i of mb is sequence number i + 1 as long as no EXPUNGE is
 * pending: the store only renumbers inside mbox_sync() and mbox_expunge(), which run only
 * where RFC 3501 7.4.1 allows EXPUNGE responses (selected_report() and EXPUNGE/CLOSE).
 */
struct selected {
	struct mbox	*mb;
	bool		readonly;	/* EXAMINE, or the file is not writable */
	bool		later;		/* mbox_later() is due once the answer is out */
	char		*name;		/* as the client named it (for logs) */
	uint32_t	exists;		/* the last EXISTS the client was sent */
	uint32_t	recent;		/* the last RECENT the client was sent */
	unsigned	n_kw;		/* keywords the last FLAGS response listed */
	/*
	 * What FETCH and SEARCH parsed, per message index, for the rest of the selection
	 * (NULL until first used; selected_close() frees it with msg_cache_free()).  Entries
	 * are keyed by UID and file position, so renumbering and rewrites need no
	 * invalidation: a stale entry simply misses.
	 */
	struct msg_cache *cache;
};

/* The selection's parse cache, made on first use. */
static inline struct msg_cache *
selected_cache(struct selected *sel)
{
	if (sel->cache == NULL)
		sel->cache = msg_cache_new(MSG_CACHE_MAX_BYTES);
	return sel->cache;
}

/*
 * The session's on_tagged hook while a mailbox is selected: picks up changes others made
 * (mbox_sync) and reports EXPUNGE, EXISTS, RECENT, FLAGS and FETCH FLAGS before the tagged
 * response; during FETCH, STORE and SEARCH (CMD_NO_EXPUNGE) only what needs no renumbering.
 */
void	selected_report(struct command *cmd);

/*
 * Before reading message data in a command that may not send EXPUNGE (FETCH, SEARCH):
 * refreshes the store's mapping without renumbering (mbox_refresh()), so that data
 * another process removed reads as empty instead of past the end of the file.  Logs and
 * carries on if the mailbox cannot be locked.
 */
void	selected_refresh(struct selected *sel);

/* Leave the selected state (CLOSE, UNSELECT, a new SELECT, LOGOUT): frees s->selected. */
void	selected_close(struct session *s);

/* The journal directory for the store (the configured state_dir in the home), made if
 * missing.  Returns 0 or -1. */
int	selected_state_dir(const struct session *s, char *buf, size_t size);

/* FETCH-style flag list "(\Seen \Answered ... kw)" of message i, written to the client. */
void	selected_write_flags(struct session *s, const struct mbox *mb, uint32_t i);

/*
 * The messages a sequence set (uid: a UID set) names, as a malloc'd array of one byte per
 * message index (1 = named); only messages the client has been told of count.  NULL when
 * the text is not a valid set or names a sequence number above EXISTS (the caller answers
 * BAD, RFC 3501 9); UIDs that do not exist are simply not named.
 */
uint8_t	*selected_set(struct selected *sel, const char *text, bool uid);

#endif
