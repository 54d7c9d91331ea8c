/*
 * mbox.h: the mbox mail store.
 *
 * A mailbox is one file in the classic Unix mbox format (mboxo, as Debian's MDAs write it):
 * messages start at a "From " line (a From_ line) that begins the file or follows an empty
 * line and parses as "From SENDER DATE"; body lines that begin with "From " are written as
 * ">From " and stay so.  The store knows nothing of IMAP syntax; it keeps per message a few
 * dozen bytes of metadata and maps the file, so memory grows with the number of messages,
 * never with their size.
 *
 * Metadata lives in the file, in the headers UW-IMAP and Dovecot read and write:
 *   X-IMAPbase: UIDVALIDITY LASTUID [keyword ...]   first message (or UW's pseudo message,
 *                                                   which carries "X-IMAP:" instead)
 *   X-UID: N, Status: RO, X-Status: ADFT, X-Keywords: kw ...   per message
 * They and Content-Length are hidden from everything the caller gets as "visible" header,
 * and every size the store reports is the visible size with each bare LF counted as CRLF.
 *
 * Locking (Debian Policy 11.6), always in this order, released in reverse:
 *   1. fcntl() lock on the mailbox file (F_WRLCK over the file to write; F_RDLCK over the
 *      bytes there are to read, so that an appender that locks from the end goes on),
 *   2. dotlock "PATH.lock" through liblockfile (its setgid helper where the directory is not
 *      writable; stale locks are broken as liblockfile does: dead PID, or older than 5 min),
 *      taken to write, and by a reader only when a mail reader may hold it.
 * A turnstile in the state directory keeps writers from being starved by readers.  Locks
 * are held only inside the calls below that read or write the file, or between
 * mbox_read_begin() and mbox_read_end(), never while the caller waits for its client, so
 * it never blocks an MDA for long.  See mbox-lock.h.
 *
 * Persistence: a mailbox opened read-write is brought up to date on disk under the write
 * lock by mbox_open() and by every mbox_sync() that finds new mail (the "first write-locked
 * sync"): UIDs assigned to new mail, the X-IMAPbase header, and the "O" status that ends
 * \Recent (RFC 3501 2.3.2) for the next session.  A mailbox opened read-only is never
 * written.  Every write returns success only after fsync().
 *
 * Crash safety: a change that moves bytes (a header that grew, an expunge) is made through a
 * journal in the directory the caller names (the user's home): the new tail of the file is
 * first written and synced there, then copied into place.  mbox_open() finds an unfinished
 * journal and finishes the change, so a process killed at any instant leaves the mailbox
 * whole: every message that was not expunged, and the change either done or not done.
 * The journal needs as much free space as the rewritten tail.
 *
 * Errors: functions returning int give 0 on success and -1 on failure, with the reason in
 * the struct mbox_error they were given or that mbox_error() returns: an errno value (or
 * one of the MBOX_E* codes below) and a short text the caller may log or show.
 */
#ifndef MBOX_MBOX_H
#define MBOX_MBOX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * A SIGBUS handler that maps memory over a page of a mailbox mapping (the file shrank under
 * a read; imapd/sigbus.c) adds one to this.  mbox_remap() keeps or resizes a mapping only
 * while it is unchanged, so a mended page is never taken for the file's bytes.
 */
extern volatile sig_atomic_t mbox_map_mended;

/* Keywords: at most this many per mailbox (one bit each in a 64-bit set per message); names
 * in X-Keywords beyond the limit, too long or not atoms, are ignored, so a forged header in
 * delivered mail cannot grow memory. */
#define MBOX_MAX_KEYWORDS	64
#define MBOX_KEYWORD_MAX_LEN	64
/* A From_ line longer than this is not a From_ line (real ones are under 200 bytes). */
#define MBOX_FROM_LINE_MAX	1024
/* Header lines scanned for metadata per message; headers longer than this are still kept
 * and shown, but metadata after the limit is not looked for. */
#define MBOX_META_SCAN_MAX	(256 * 1024)
/* Spaces of room written after X-Keywords so keywords can be added in place (UW and
 * Dovecot pad the same way). */
#define MBOX_KEYWORDS_PAD	50
/* Spaces of room after the keyword list of X-IMAPbase. */
#define MBOX_IMAPBASE_PAD	50
/* How long a lock is waited for before the call fails with ETIMEDOUT. */
#define MBOX_LOCK_TIMEOUT_MS	30000
/* Messages in one append transaction (RFC 3502 MULTIAPPEND). */
#define MBOX_APPEND_MAX_MSGS	10000

/* Error codes beyond errno. */
#define MBOX_ENOTMBOX	(-1000)	/* the file does not start with a From_ line */
#define MBOX_ECHANGED	(-1001)	/* the file changed under us; call mbox_sync() and retry */

struct mbox_error {
	int code;		/* errno value or MBOX_E* */
	char msg[200];		/* short text, NUL-terminated */
};

/* Flags (bit values).  RECENT is session state (RFC 3501 2.3.2), never written as such. */
#define MBOX_SEEN	0x01u
#define MBOX_ANSWERED	0x02u
#define MBOX_FLAGGED	0x04u
#define MBOX_DELETED	0x08u
#define MBOX_DRAFT	0x10u
#define MBOX_RECENT	0x20u
#define MBOX_FLAGS_STORED (MBOX_SEEN | MBOX_ANSWERED | MBOX_FLAGGED | MBOX_DELETED | MBOX_DRAFT)

/* Open flags. */
#define MBOX_OPEN_RW		0x01u	/* read-write; otherwise nothing is ever written */
#define MBOX_OPEN_MISSING_OK	0x02u	/* a missing file opens as an empty mailbox */
#define MBOX_OPEN_CREATE	0x04u	/* with RW: create the file (mode 0600) if missing */
#define MBOX_OPEN_KEEP_RECENT	0x08u	/* with RW: do not mark messages old; for opens
					 * that only add mail (APPEND, COPY to another
					 * mailbox), so the next session that selects it
					 * still sees them as \Recent */
#define MBOX_OPEN_LATER		0x10u	/* leave what can wait (saving the mailbox's cache)
					 * to mbox_later(), which the caller runs once the
					 * client has its answer */

struct mbox;

/*
 * Open the mbox file at path.  journal_dir names an existing directory, private to the
 * user, for expunge/rewrite journals; it may be NULL only for read-only opens.  On success
 * *mb_r owns the mailbox (free with mbox_free()).  Fails with ENOENT for a missing file
 * unless MBOX_OPEN_MISSING_OK, MBOX_ENOTMBOX when the first line is not a From_ line,
 * ETIMEDOUT when the lock cannot be had.  An open that finds an interrupted journal (only
 * when journal_dir is given) finishes it first, read-only opens too (through a second,
 * writable descriptor); a read-write open then persists metadata (see above).  path and
 * journal_dir are copied.
 */
int mbox_open(const char *path, const char *journal_dir, unsigned flags, struct mbox **mb_r,
    struct mbox_error *err_r);
/* Close and free; sets *mb to NULL.  No-op for NULL. */
void mbox_free(struct mbox **mb);

/* The last error of a call on mb (valid until the next call). */
const struct mbox_error *mbox_error(const struct mbox *mb);

/* Mailbox state.  Messages are numbered 0..count-1 in file order (= UID order). */
uint32_t mbox_count(const struct mbox *mb);
uint32_t mbox_uidvalidity(const struct mbox *mb);
uint32_t mbox_uidnext(const struct mbox *mb);
uint32_t mbox_recent_count(const struct mbox *mb);
int mbox_is_readonly(const struct mbox *mb);

/* Keywords of the mailbox: index 0..mbox_keyword_count()-1; names live as long as mb. */
unsigned mbox_keyword_count(const struct mbox *mb);
const char *mbox_keyword_name(const struct mbox *mb, unsigned idx);
/* Index of keyword name (case-insensitive, RFC 3501 flag names are); with create, adds it
 * if there is room.  Returns the index, or -1 if absent/full/not a valid atom. */
int mbox_keyword_lookup(struct mbox *mb, const char *name, size_t len, int create);

/* Per message; i < mbox_count(). */
uint32_t mbox_msg_uid(const struct mbox *mb, uint32_t i);
unsigned mbox_msg_flags(const struct mbox *mb, uint32_t i);
uint64_t mbox_msg_keywords(const struct mbox *mb, uint32_t i);
/* Internal date from the From_ line: UTC seconds, and the zone offset in minutes east of
 * UTC to show it in (the From_ line's own zone if it has one, else the local zone). */
time_t mbox_msg_date(const struct mbox *mb, uint32_t i, int *tz_min_r);
/* Client-visible sizes (CRLF counted): whole message = header + body. */
uint64_t mbox_msg_size(const struct mbox *mb, uint32_t i);
uint64_t mbox_msg_header_size(const struct mbox *mb, uint32_t i);
uint64_t mbox_msg_body_size(const struct mbox *mb, uint32_t i);
/* Index of the message with this UID, or -1. O(log n). */
int64_t mbox_uid_index(const struct mbox *mb, uint32_t uid);
/* How many messages have a UID below uid (the index it has or would have). O(log n). */
uint32_t mbox_uid_rank(const struct mbox *mb, uint32_t uid);

/*
 * Message bytes, borrowed from the mapping: valid until the next call that syncs or writes
 * (mbox_sync, mbox_commit_flags, mbox_expunge, mbox_append_commit, mbox_free).  Lines end
 * in LF (or CRLF if the file has them); the caller converts bare LF to CRLF for clients.
 * Another process that truncates the file (a local mail reader rewriting it) can make an
 * access to the mapping fault (SIGBUS) until the caller has synced; callers that stream
 * long bodies may prefer mbox_msg_pread().
 *
 * Visible header: call mbox_header_next() with *pos = 0 until it returns 0; each call gives
 * one run of consecutive visible header lines (the hidden metadata headers and
 * Content-Length are skipped); the last run includes the empty line ending the header.
 */
int mbox_header_next(const struct mbox *mb, uint32_t i, uint64_t *pos,
    const unsigned char **p_r, size_t *len_r);
/* Nonzero if a top-level header field of this name (without the colon) is one the store
 * hides from clients: its metadata headers and Content-Length.  Case-insensitive. */
int mbox_header_is_hidden(const char *name, size_t len);
/* Body (after the header's empty line, up to the message end), raw. */
void mbox_msg_body(const struct mbox *mb, uint32_t i, const unsigned char **p_r,
    size_t *len_r);
/* Copy up to len raw body bytes from offset off into buf with pread(); returns bytes read,
 * 0 at the end, -1 on error (also when the file shrank). */
long mbox_msg_pread(struct mbox *mb, uint32_t i, uint64_t off, unsigned char *buf, size_t len);

/*
 * Flag changes: set in memory (RECENT is ignored), then written by mbox_commit_flags(),
 * which locks, writes every changed message (in place where the header has room, else the
 * tail of the file from the first message that grew, through the journal), fsyncs and
 * unlocks.  Fails with EROFS on a read-only mailbox.
 */
void mbox_msg_set_flags(struct mbox *mb, uint32_t i, unsigned flags, uint64_t keywords);
int mbox_commit_flags(struct mbox *mb);
/*
 * STORE: under the write lock, with the view first brought up to date (others' changes
 * read from the file), set, add or remove flags and keywords on every message i < n with
 * mark[i] set that is still there, and write.  Each message's new flags are its current
 * ones with just this change, so concurrent +FLAGS and -FLAGS of different flags by two
 * sessions both hold.  Messages removed meanwhile are left alone (mbox_msg_gone()).  Fails
 * with EROFS on a read-only mailbox, ETIMEDOUT when the lock cannot be had.
 */
#define MBOX_STORE_SET		0
#define MBOX_STORE_ADD		1
#define MBOX_STORE_REMOVE	2
int mbox_store_flags(struct mbox *mb, const uint8_t *mark, uint32_t n, int op, unsigned flags,
    uint64_t keywords);

/*
 * The same, conditional (RFC 7162 3.1.3 UNCHANGEDSINCE): a message whose mod-sequence, read
 * under the write lock, is above unchangedsince is left as it is and gets modified[i] set
 * (modified has n bytes, zeroed by the caller); UINT64_MAX: unconditional.
 */
int mbox_store_flags_cond(struct mbox *mb, const uint8_t *mark, uint32_t n, int op,
    unsigned flags, uint64_t keywords, uint64_t unchangedsince, uint8_t *modified);

/*
 * Mod-sequences (RFC 7162), kept beside the mailbox in the state directory (mbox-modseq.c):
 * every change of a message's flags or keywords, by any program, and every message new to
 * the mailbox, gets a mod-sequence above all earlier ones; so does every expunge.  They are
 * brought up to date under the lock of every call that reads the file anew or writes it.
 * mbox_has_modseq() is 0 when they cannot be had (no state directory): then none of the
 * values below mean anything (RFC 7162 NOMODSEQ).
 */
int mbox_has_modseq(const struct mbox *mb);
uint64_t mbox_highest_modseq(const struct mbox *mb);
uint64_t mbox_msg_modseq(const struct mbox *mb, uint32_t i);
/* The first index from i on whose mod-sequence is above since, mbox_count() if none: the
 * messages a CHANGEDSINCE or QRESYNC answer names, without a call per message. */
uint32_t mbox_next_changed(const struct mbox *mb, uint32_t i, uint64_t since);
/* The lowest mod-sequence of the expunges of messages the view still holds as gone
 * (mbox_msg_gone()), 0 if none: a client must not be told a HIGHESTMODSEQ at or above it
 * before it has been told of them (RFC 7162 3.2). */
uint64_t mbox_pending_expunge_modseq(const struct mbox *mb);
/*
 * UIDs expunged with a mod-sequence above since, ascending, that the view does not hold;
 * *all_r = 1 instead when the records do not reach back that far (then every UID not in
 * the mailbox may have been: RFC 7162 3.2.5.1).  Free *uids_r.  0 or -1.
 */
int mbox_expunged_since(struct mbox *mb, uint64_t since, uint32_t **uids_r, size_t *n_r,
    int *all_r);

/*
 * Expunge: remove every message that has \Deleted and, when uids is not NULL, whose UID is
 * in the sorted array uids[0..n_uids-1] (UID EXPUNGE, RFC 4315).  Flag changes not yet
 * committed are committed first.  On success *expunged_r (free() it) lists the UIDs removed,
 * ascending, and *n_r their count; the caller reports them (e.g. as IMAP EXPUNGE responses:
 * the k-th, 0-based, had index idx before and is now reported as idx - k + 1).
 */
int mbox_expunge(struct mbox *mb, const uint32_t *uids, size_t n_uids, uint32_t **expunged_r,
    size_t *n_r);

/* What mbox_sync() found.  Free the arrays with mbox_sync_result_clear(). */
struct mbox_sync_result {
	uint32_t *expunged;	/* UIDs that vanished, ascending */
	size_t n_expunged;
	uint32_t *changed;	/* UIDs whose flags/keywords changed, ascending */
	size_t n_changed;
	uint32_t old_count;	/* count before, after removing the expunged */
	uint32_t new_count;	/* count now; messages old_count..new_count-1 are new */
	int uidvalidity_changed; /* UIDs could not be kept: everything is new */
	int keywords_changed;	/* the keyword list grew */
};

/*
 * Look for changes by others: a cheap fstat() check (size, mtime, inode); when something
 * changed, mail appended at the end is parsed from the old end, anything else re-reads the
 * file and matches messages by UID.  On a read-write mailbox new mail is persisted (UIDs,
 * X-IMAPbase) before returning.  Messages new to this session that have no "O" status get
 * \Recent.  Borrowed message pointers are invalid afterwards.
 */
int mbox_sync(struct mbox *mb, struct mbox_sync_result *res);
void mbox_sync_result_clear(struct mbox_sync_result *res);
/* What an open with MBOX_OPEN_LATER left: saves the mailbox's cache file unless it is up to
 * date.  Never fails (the cache is disposable). */
void mbox_later(struct mbox *mb);
/*
 * Reading message data.  Between mbox_read_begin() and mbox_read_end() the session holds
 * a shared lock on the file: other sessions read at the same time, and no program that
 * locks before it writes (our sessions, Debian's MDAs, mutt) changes the file, so the
 * bytes the accessors below point at stay what they are.  mbox_read_begin() first brings
 * the view up to date without renumbering: messages others removed stay, as gone
 * (mbox_msg_gone(): no content, every range empty) until the next mbox_sync() reports
 * them, and new mail is added at the end.  For commands that may not report EXPUNGE
 * (FETCH, SEARCH; RFC 3501 7.4.1).  It waits for the lock up to MBOX_LOCK_TIMEOUT_MS and
 * fails with ETIMEDOUT.  No lock is ever held while the caller waits for its client:
 * a reader that must wait lets the lock go (mbox_read_end()), and takes it again, which
 * may find the file changed.  Calls that write (flags, expunge, append, sync) must not be
 * made while it is held.  Nesting: mbox_read_begin() with the lock held does nothing.
 */
int mbox_read_begin(struct mbox *mb);
void mbox_read_end(struct mbox *mb);
/* Nonzero when the reader should let the lock go for a moment: a writer is waiting for
 * it, or it has been held MBOX_READ_SLICE_MS. */
int mbox_read_contended(struct mbox *mb);
#define MBOX_READ_SLICE_MS	50
/* Message i was removed from the file by another program (see mbox_read_begin()). */
int mbox_msg_gone(const struct mbox *mb, uint32_t i);
/*
 * Its bytes can still be read: it is in the file, or another session that expunged it
 * kept a copy for the sessions that still number it (RFC 2180 4.1.1; mbox-gone.c), which
 * the accessors below then read from.  Under the read lock.
 */
int mbox_msg_available(const struct mbox *mb, uint32_t i);
/* mbox_read_begin() and mbox_read_end(): the view brought up to date as there. */
int mbox_refresh(struct mbox *mb);
/* The file descriptor (for inotify/fstat by the caller); owned by mb. */
int mbox_fd(const struct mbox *mb);
/* The path given to mbox_open(). */
const char *mbox_path(const struct mbox *mb);

/*
 * Append (RFC 3501 APPEND, RFC 3502 MULTIAPPEND), streaming: the data of each message is
 * converted (CRLF to LF, "From " body lines quoted as ">From ", metadata headers of the
 * incoming message renamed to X-Original-NAME so nobody can forge them) and staged in an
 * unnamed temporary file in the journal directory without holding any lock; commit then
 * locks the mailbox, appends every message with its own metadata headers, fsyncs and
 * unlocks.  On error or abort the mailbox is as before (a partial append is truncated).
 * The mailbox must be open read-write.
 */
struct mbox_append;
int mbox_append_begin(struct mbox *mb, struct mbox_append **ap_r);
/* Start one message: internal date (UTC seconds and zone minutes), flags, keywords
 * (indices of mb's keywords; see mbox_keyword_lookup()). */
int mbox_append_msg_begin(struct mbox_append *ap, time_t date, int tz_min, unsigned flags,
    uint64_t keywords);
int mbox_append_write(struct mbox_append *ap, const unsigned char *p, size_t len);
int mbox_append_msg_end(struct mbox_append *ap);
/* Commit: on success the messages are in the file and their UIDs are
 * *uid_first_r..*uid_first_r + n - 1 (consecutive); *ap is freed and set to NULL in every
 * case.  Errors are reported in mbox_error(mb). */
int mbox_append_commit(struct mbox_append **ap, uint32_t *uid_first_r, uint32_t *n_r);
void mbox_append_abort(struct mbox_append **ap);

/*
 * Copy messages idx[0..n-1] of src (any open mailbox) to the end of dst (open read-write),
 * with their flags, keywords (by name, as far as dst has room) and internal dates.  On
 * success the new UIDs are *uid_first_r.. (consecutive, in the order given), for COPYUID
 * (RFC 4315).  src is read under its read lock (the caller must not hold it); if one of
 * the messages was removed by another program meanwhile, nothing is copied and the
 * error in dst is ENOENT.
 */
int mbox_copy(struct mbox *dst, struct mbox *src, const uint32_t *idx, size_t n,
    uint32_t *uid_first_r);

/*
 * Message i as one range of the mapping, as FETCH and SEARCH read it: from its first visible
 * header line (the hidden fields before it skipped; the empty line ending the header if none
 * is visible) to the end of the message.  Only the hidden fields at the start are looked at,
 * so this is cheap.  *hdr_len_r: the bytes of the range up to the body (the rest of the
 * header as the store found it, its empty line included); *off_r: the file offset of the
 * range, which changes when the message moves.  Borrowed like mbox_header_next()'s
 * pointers.  Returns 0, or -1 (an empty range) for a message another process removed.
 */
int mbox_msg_range(const struct mbox *mb, uint32_t i, const unsigned char **p_r, size_t *len_r,
    size_t *hdr_len_r, uint64_t *off_r);

#endif
