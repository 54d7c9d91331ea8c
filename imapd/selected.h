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
struct search_context;

struct selected {
	struct mbox	*mb;
	bool		readonly;	/* EXAMINE, or the file is not writable */
	bool		later;		/* mbox_later() is due once the answer is out */
	char		*name;		/* as the client named it (for logs) */
	char		*state_dir;	/* the state directory (journals, held output) */
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
	/*
	 * The saved search result, "$" (RFC 5182), as UIDs ascending: a message expunged drops
	 * out of it by itself, as section 2.1 requires.  Empty at SELECT.
	 */
	uint32_t	*saved;
	size_t		n_saved;
	/* SORT and THREAD keys from the sort cache (mbox/mbox-sortcache.h); NULL until used */
	struct mbox_sortcache *sortcache;
	/* SORT's and THREAD's array of the messages found, kept between commands */
	void		*sort_buf;
	size_t		sort_buf_size;
	/* SEARCH and SORT results kept up to date for the client (imapd/search-context.h) */
	struct search_context *contexts;
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
 * Reading message data (FETCH, SEARCH): the store's read lock (mbox_read_begin(), which
 * also brings the view up to date without renumbering), with the client's output held
 * (io_hold()) for as long as the lock is: no lock is held while the session waits for
 * its client.  Between messages, selected_read_pause() lets the lock go and sends what is
 * held once enough is, or when a writer waits; taking the lock again may find messages
 * removed meanwhile (mbox_msg_gone()).  A FLAGS response goes out first whenever the view
 * knows keywords the client was not told of (RFC 3501 7.2.6).  selected_read_begin() and
 * selected_read_pause() return 0, or -1 when the lock could not be had (the lock is not
 * held then; answer with selected_read_failed()).  selected_read_end() is safe to call
 * in any case.
 */
int	selected_read_begin(struct session *s);
int	selected_read_pause(struct session *s);
void	selected_read_end(struct session *s);
/* NO for a command whose reading or writing failed on the store: [INUSE] after the lock
 * timeout, else [UNAVAILABLE]; verb names the command in the text and the log. */
void	selected_store_failed(struct command *cmd, const char *verb);

/*
 * EXPUNGE responses (VANISHED once QRESYNC is enabled) for the UIDs gone[0..ngone)
 * (ascending; the array is reused) that this session's own expunge removed, given the
 * UIDs before[0..n) the view had before it; sel->exists follows.
 */
void	selected_tell_expunged(struct session *s, const uint32_t *before, uint32_t n,
			       uint32_t *gone, size_t ngone);

/* FLAGS and PERMANENTFLAGS (RFC 3501 7.2.6, 7.1) when the mailbox has keywords the client
 * was not told of; before any response that uses them. */
void	selected_announce_keywords(struct session *s);

/* Leave the selected state (CLOSE, UNSELECT, a new SELECT, LOGOUT): frees s->selected. */
void	selected_close(struct session *s);

/* The journal directory for the store (the configured state_dir in the home), made if
 * missing.  Returns 0 or -1. */
int	selected_state_dir(const struct session *s, char *buf, size_t size);

/* FETCH-style flag list "(\Seen \Answered ... kw)" of message i, written to the client;
 * the _with form adds the flags in extra (a \Seen being set). */
void	selected_write_flags(struct session *s, const struct mbox *mb, uint32_t i);
void	selected_write_flags_with(struct session *s, const struct mbox *mb, uint32_t i,
				  unsigned extra);

/*
 * The messages a sequence set (uid: a UID set) names, "$" the saved result (RFC 5182), as a malloc'd array of one byte per
 * message index (1 = named); only messages the client has been told of count.  NULL when
 * the text is not a valid set or names a sequence number above EXISTS (the caller answers
 * BAD, RFC 3501 9); UIDs that do not exist are simply not named.
 */
uint8_t	*selected_set(struct selected *sel, const char *text, bool uid);

#endif
