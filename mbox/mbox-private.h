/*
 * mbox-private.h: what the mbox-*.c files share; not for use outside mbox/.
 */
#ifndef MBOX_MBOX_PRIVATE_H
#define MBOX_MBOX_PRIVATE_H

#include <stdint.h>
#include <sys/types.h>

#include "mbox/mbox.h"
#include "mbox/mbox-lock.h"

/* Message state bits. */
#define MSG_UID_STORED	0x01u	/* the file holds this UID in a valid X-UID header */
#define MSG_STATUS_O	0x02u	/* the file has "O" in Status */
#define MSG_DIRTY	0x04u	/* flags/keywords differ from the file */
#define MSG_NO_BLANK	0x08u	/* header not ended by an empty line */
#define MSG_APPENDED	0x20u	/* being appended: written without "O" so that it is \Recent
				 * to the next session that selects the mailbox (RFC 3501
				 * 6.3.11) */
#define MSG_GONE	0x10u	/* removed from the file by another process; kept until
				 * mbox_sync() reports it, so that indices the caller holds
				 * stay valid across write calls.  Its offsets are then
				 * relative to its From_ line (from_off 0): sizes hold, the
				 * bytes are only in a kept copy (mbox-gone.c), if any */

/* An entry of the index of kept copies (mbox-gone.c). */
struct mbox_gone_idx {
	uint32_t uid;
	uint64_t off;
};

/*
 * Per message: 104 bytes.  Offsets are absolute in the file.  The header is
 * [from_off + from_len, body_off), the body [body_off, end); the separator line after end
 * is not part of the message.
 */
struct mbox_msg {
	uint64_t from_off;
	uint64_t body_off;
	uint64_t end;
	int64_t date;		/* UTC */
	uint64_t keywords;	/* current (bit i = keyword i) */
	uint64_t disk_keywords;	/* as in the file */
	uint64_t hdr_vsize;	/* visible header size, CRLF counted */
	uint64_t body_bare_lf;	/* bare LFs in the body: visible body = end - body_off + this */
	uint64_t modseq;	/* RFC 7162 mod-sequence (mbox-modseq.c); 0 until known */
	uint32_t uid;
	uint32_t fp;		/* fingerprint (From_ line, header size): matches unstored UIDs */
	uint16_t from_len;	/* From_ line with its LF */
	int16_t tz_min;
	uint8_t flags;		/* MBOX_* current, including MBOX_RECENT */
	uint8_t disk_flags;	/* stored flags as in the file */
	uint8_t state;		/* MSG_* */
	uint8_t x_uid_ok;	/* parse only: X-UID header present and numeric */
	uint8_t hdr_plain;	/* parse only: no metadata header lines, the From_ line and
				 * every line whole, ended by an empty "\n" (mbox_gen_header()
				 * changes nothing but adds the block); trusted while
				 * mb->scan_fresh */
	uint32_t x_uid;		/* parse only: its value */
};

/*
 * The messages of a view, in file order.  mbox-cache.c saves them (with the base, the
 * keywords and the file's stamp) in a cache file and mbox_open() reads them straight back
 * into this vector when the file is unchanged, or uses them as the known prefix the way
 * mbox_sync() uses its own view on an append (mbox_scan_incremental()).
 */
struct msgvec {
	struct mbox_msg *v;
	uint32_t n, cap;
	/* v lies in a private mapping of the cache file (mbox_cache_load()): released with
	 * munmap(), and copied to the heap by msgvec_push() before it grows */
	void *map;
	size_t map_len;
};

/* Base metadata found in the first message (X-IMAPbase) or the pseudo message (X-IMAP). */
struct mbox_base {
	int found;		/* a valid header was found */
	int pseudo;		/* the first message is UW's pseudo message */
	uint32_t uidvalidity;
	uint32_t last_uid;
	uint64_t pseudo_end;	/* pseudo message: offset of the next message (or EOF) */
};

/* What identifies one state of the file: a cache file holds the view of one stamp. */
struct mbox_stamp {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
	int64_t ctime_sec;
	int64_t ctime_nsec;
	int racy;		/* the clock had not moved past ctime when the file was read: a
				 * change in the same timestamp tick would keep the stamp */
};

/* How mbox_open() got its messages (mb->cache_used; for tests). */
#define MBOX_CACHE_NONE		0	/* parsed the whole file */
#define MBOX_CACHE_EXACT	1	/* the cache as it was, no parse */
#define MBOX_CACHE_PREFIX	2	/* the cache's headers re-read, the rest parsed */

struct mbox {
	char *path;
	char *journal_dir;
	int fd;			/* -1 when the file does not exist */
	int rw;
	unsigned open_flags;
	const unsigned char *map;
	uint64_t size;		/* bytes mapped = file size at last sync */
	dev_t dev;
	ino_t ino;
	int64_t mtime_sec;
	long mtime_nsec;
	uint32_t tail_crc;	/* crc32 of the last bytes before size, to check appends */
	sig_atomic_t map_mended;	/* mbox_map_mended when map was made */
	uint64_t map_dev, map_ino;	/* the file map maps (fd may since name another) */
	int64_t ctime_sec;	/* with mtime: see struct mbox_stamp */
	long ctime_nsec;
	int view_racy;		/* see struct mbox_stamp */

	struct mbox_stamp cache_stamp;	/* the view the cache file holds (zero: none) */
	int cache_used;		/* MBOX_CACHE_*, set by mbox_open() */
	int cache_ok;		/* the view is whole (open finished): it may be saved */
	int cache_plain;	/* an exact cache whose every message has its UID (as X-UID) and
				 * Status: O stored: numbering, \Recent and writing find nothing
				 * to do (mbox_open()) */
	uint64_t cache_min_size;	/* MBOX_CACHE_MIN_SIZE unless a test says otherwise */

	struct msgvec m;
	struct mbox_base base;	/* as parsed from the file */
	uint32_t uidvalidity;	/* in use (may not be in the file yet) */
	uint32_t next_uid;
	uint32_t recent;
	int base_dirty;		/* uidvalidity/last uid/keywords not in the file yet */

	char *kw[MBOX_MAX_KEYWORDS];
	unsigned n_kw;

	/* one-entry cache for local time conversion of From_ dates */
	int64_t tz_cache_key;
	long tz_cache_off;

	/* what internal reloads (inside write calls) found, for the next mbox_sync() */
	struct mbox_sync_result pend;

	/* test hook (see mbox_crash_point) */
	long crash_after;
	long crash_count;
	uint64_t shift_batch;	/* IMAPD_MBOX_SHIFT_BATCH, 0: the default, all ones: off */
	int scan_fresh;		/* the view is a full parse's, no header written since: its
				 * parse-only fields hold (mbox_open() until its first write) */
	int rewrite_kind;	/* MBOX_REWRITE_* of the last tail rewrite (for tests) */
	uint32_t clean_below;	/* no message below this index has metadata to write
				 * (needs_update() is false; mark_clean() sets it to the
				 * count); mbox_msg_set_flags() lowers it, and it is zeroed
				 * wherever the view is replaced or renumbered */
	int maybe_gone;		/* the view may hold MSG_GONE entries (a reload in a write
				 * call kept them for mbox_sync() to report) */
	/* kept copies of messages others expunged (mbox-gone.c): mapped under the read lock */
	const unsigned char *gone_map;
	uint64_t gone_size, gone_ino;
	struct mbox_gone_idx *gone_idx;	/* by UID */
	uint32_t gone_n;
	uint64_t gone_max;	/* MBOX_GONE_MAX unless IMAPD_MBOX_GONE_MAX says (tests) */

	/* mod-sequences (mbox-modseq.c) */
	int ms_stale;		/* the view changed since the records were last compared */
	uint32_t ms_from;	/* ...from this index on (0: anywhere); see mbox_modseq_touch() */
	uint64_t ms_gen;	/* the records' generation this view was last compared with */
	int ms_ok;		/* the records were read: the view's modseqs hold */
	uint64_t ms_highest;
	uint64_t ms_floor;
	uint64_t ms_gone_min;	/* lowest modseq of the view's MSG_GONE entries' expunges */

	int tfd;		/* the turnstile file (mbox-lock.h), -1 without one */
	struct mbox_lock read_lk;	/* between mbox_read_begin() and mbox_read_end() */
	long read_since;	/* when read_lk was taken (CLOCK_MONOTONIC, ms) */
	long read_checked;	/* when mbox_read_contended() last asked the kernel */
	int touched;		/* written under the lock held now (mbox_crash_point) */
	int unsynced;		/* bytes were written with no fsync yet: mbox_write_locked()
				 * syncs them before a tail rewrite and with its own in-place
				 * patches, and clears this; the writer that set it syncs when
				 * it is still set (mbox_append_commit()) */

	struct mbox_error err;
};

/* mbox-parse.c */
int mbox_parse_from_line(const unsigned char *p, size_t len, int64_t *t_r, int *tz_r,
    int64_t *cache_key, long *cache_off);
/* Nonzero if p[0..len) (one line without its LF) starts a message at a file start or
 * after an empty line. */
int mbox_is_from_line(const unsigned char *p, size_t len);
/* Parse messages from offset start (a From_ line or EOF) to mb->size, appending to out.
 * With start == 0 also fills *base and drops the pseudo message.  Returns 0 or -1. */
int mbox_scan(struct mbox *mb, uint64_t start, struct msgvec *out, struct mbox_base *base);
/* Re-read the header of a message whose from_off, from_len and end are known (same
 * results as mbox_scan for it, body_bare_lf untouched).  Returns 1 for the pseudo
 * message, 0, or -1 if there is no From_ line there any more. */
int mbox_reparse_header(struct mbox *mb, struct mbox_msg *m, int first,
    struct mbox_base *base);
/* Assign UIDs to out->v[from..] given the UID before them; following X-UID where it is
 * valid (ascending, <= last_uid of base), else from *next_uid on. */
void mbox_assign_uids(struct msgvec *out, uint32_t from, uint32_t prev_uid,
    uint32_t last_uid, int base_ok, uint32_t *next_uid);
uint64_t mbox_count_bare_lf(const unsigned char *p, size_t n);
/* A message's fingerprint, from its From_ line and visible header size (struct mbox_msg
 * fp; saved in caches, so a change of it is a change of CACHE_VERSION) */
uint32_t mbox_msg_fp(const unsigned char *from, size_t len, uint64_t hdr_vsize);
/* A multiply-xorshift over 8-byte words: a fast checksum, not a cryptographic one */
uint64_t mbox_hash64(const unsigned char *p, size_t n, uint64_t seed);
/* The checksum of the cache files (mbox-cache.c): fold n bytes at p into sum. */
uint32_t mbox_cache_sum(uint32_t sum, const void *p, size_t n);
/* write(2) until all n bytes are out (EINTR retried): 0, or -1 with errno set. */
int mbox_write_full(int fd, const void *buf, size_t n);
int msgvec_push(struct msgvec *v, const struct mbox_msg *m);
void msgvec_free(struct msgvec *v);

/* Header lines: iterate [p, end); returns 0 at the end of the header (the empty line is
 * given once with *empty_r = 1) or of the range. */
struct hdr_line {
	uint64_t off;		/* start of the field (first line) */
	uint64_t len;		/* field length including continuation lines and final LF */
	size_t name_len;	/* name length (0 if no colon in the first line) */
	uint64_t value_off;	/* after the colon */
	uint64_t value_len;	/* up to the end of the first line, without CR/LF */
	int empty;		/* the empty line ending the header */
};
int mbox_hdr_next(const unsigned char *map, uint64_t *pos, uint64_t end,
    struct hdr_line *l);
/* Which metadata header is this name?  Returns a META_* value or 0. */
#define META_STATUS	1
#define META_XSTATUS	2
#define META_XKEYWORDS	3
#define META_XUID	4
#define META_XIMAPBASE	5
#define META_XIMAP	6
#define META_CLEN	7
int mbox_meta_kind(const unsigned char *name, size_t len);

/* mbox-open.c */
/* A session that may not write finishes an interrupted journal through a second, writable
 * descriptor (the file is the user's own); no lock may be held.  0 or -1. */
int mbox_recover_for_reader(struct mbox *mb);
/* open(2) of the mailbox file, with O_NOATIME where the user may (see there). */
int mbox_open_file(const char *path, int oflags);
int mbox_remap(struct mbox *mb);
uint32_t mbox_tail_crc(const unsigned char *map, uint64_t size);
int mbox_lock(struct mbox *mb, struct mbox_lock *lk, int mode);	/* MBOX_LK_* */
/* A per-mailbox file in the state (journal) directory: DIR/PREFIX plus the hash of the
 * mailbox path (kept copies, mod-sequence records).  0, or -1 (no directory, too long). */
int mbox_state_path(const struct mbox *mb, const char *prefix, char *buf, size_t size);
/* A UIDVALIDITY greater than any handed out before in mb's journal directory (see there) */
#define MBOX_UIDVALIDITY_FILE	".imapd-uidvalidity"
uint32_t mbox_new_uidvalidity(const struct mbox *mb);
/* Whether the coarse clock has moved past the ctime of the view (it is no longer racy). */
int mbox_clock_past_ctime(const struct mbox *mb);
void mbox_unlock(struct mbox *mb, struct mbox_lock *lk);
/* Every unlock of a write lock after a write gives the file a modification time no earlier
 * state of it had (a fine clock reading, later than the one before), so that a session
 * whose view is one write behind always sees the file changed, even when the write came
 * in the same tick of the coarse clock the kernel stamps files with and kept the size (a
 * flag written in place).  The view then records that time and is not racy. */
/* The same without waiting for the clock: for appends, which come in bursts (a client
 * uploading a folder) and would each wait up to a tick; the view may stay racy, and a cache
 * saved from it is checked against the file's headers at the next open. */
void mbox_unlock_nowait(struct mbox *mb, struct mbox_lock *lk);
int mbox_keyword_add(struct mbox *mb, const unsigned char *name, size_t len);
/* Bring the view up to date with the file under the lock already held.  Messages others
 * removed stay as MSG_GONE entries and changes are recorded in mb->pend, to be reported
 * by the next mbox_sync(). */
int mbox_reload_locked(struct mbox *mb);

/* mbox-write.c */
/* fsync() what was written with mb->unsynced set, if anything; clears it.  0 or -1. */
int mbox_sync_unsynced(struct mbox *mb);
/* Write under the write lock already held: every dirty message, new UIDs, base.
 * full: rewrite anything whose metadata is not exactly ours. */
int mbox_write_locked(struct mbox *mb);
/* Append the metadata header block for message m (first: with X-IMAPbase) to buf. */
struct wbuf {
	unsigned char *p;
	size_t n, cap;
};
int wbuf_add(struct wbuf *b, const void *p, size_t n);
int wbuf_reserve(struct wbuf *b, size_t n);
int mbox_meta_block(struct mbox *mb, struct wbuf *b, const struct mbox_msg *m, int first);
/* Append the new From_ line and header of message m (mb->map holds its old bytes) as a
 * rewrite writes them: the old lines but the metadata ones, then the metadata block and
 * the empty line (none when no empty line ended the old header: the message has no body).
 * Sets *fixup_r to 1 if bytes other than metadata were added or dropped or the header has
 * no empty line (a missing LF, a lone CR line, a missing or CRLF empty line), so that the
 * rewritten message's offsets must be read back rather than derived. */
int mbox_gen_header(struct mbox *mb, struct wbuf *b, const struct mbox_msg *m, int first,
    int *fixup_r);
int mbox_base_line(struct mbox *mb, struct wbuf *b);

/* mbox-sync.c */
/* With mb->m the messages known at an earlier, shorter (or equal) state of the file and
 * the file mapped now: re-read every known header, check each is still at its offset, and
 * parse from the last known message on.  Returns 1 with *nv and *nb as mbox_scan(mb, 0)
 * would give them (UIDs not assigned), 0 if the layout changed, -1 on error. */
int mbox_scan_incremental(struct mbox *mb, struct msgvec *nv, struct mbox_base *nb);

/* mbox-cache.c: the per-mailbox cache file in the journal directory (see mbox-cache.c). */
/* Cache files: "JOURNAL_DIR/.imapd-cache-HASH" (HASH of the mailbox path). */
#define MBOX_CACHE_PREFIX_NAME	".imapd-cache-"
/* Mailboxes smaller than this get no cache: they parse in well under a millisecond, about
 * what opening and reading a cache file costs, and a user's many small folders would each
 * leave a file behind for nothing.  The environment variable IMAPD_MBOX_CACHE_MIN_SIZE
 * (bytes), read by mbox_open(), overrides it for tests. */
#define MBOX_CACHE_MIN_SIZE	(256 * 1024)
/*
 * Under the lock, right after mbox_remap() and with mb->m and the keywords empty: fill
 * mb->m, mb->base and the keywords as mbox_scan(mb, 0, &mb->m, &mb->base) would, from the
 * cache file when it describes this file.  Returns MBOX_CACHE_EXACT or MBOX_CACHE_PREFIX,
 * or MBOX_CACHE_NONE (no usable cache; mb as it was: the caller parses).
 */
int mbox_cache_load(struct mbox *mb);
/* Under the lock (mbox_unlock() calls it): if the view is racy and the mailbox is one that
 * gets a cache, wait (one clock tick, at most CACHE_SETTLE_MS) until the clock passes the
 * file's ctime, so that a cache saved from the view can be trusted as it is. */
void mbox_cache_settle(struct mbox *mb);
/* Save the view as the cache file (atomically) unless the file already holds this view.
 * Best effort: a cache that cannot be written is no error. */
void mbox_cache_save(struct mbox *mb);
/* Stamp of the current view. */
void mbox_view_stamp(const struct mbox *mb, struct mbox_stamp *s_r);

/* mbox-journal.c */
/* Generator of the new tail: called until it returns 0 (done) or -1 (error); appends
 * bytes to b. */
typedef int mbox_tail_gen_fn(void *ctx, struct wbuf *b);
/* Replace the file from offset off with the generated bytes, crash-safely through the
 * journal.  Lock held by the caller.  Remaps on success. */
int mbox_tail_replace(struct mbox *mb, uint64_t off, mbox_tail_gen_fn *gen, void *ctx);
/* Is there a journal for this mailbox file? */
int mbox_journal_pending(struct mbox *mb);
/* Finish an interrupted journal for this mailbox (lock held).  0 if none or done. */
int mbox_journal_recover(struct mbox *mb);
/* The journal's file name for this mailbox (tmp: the name it is written under). */
int mbox_journal_name(const struct mbox *mb, char *buf, size_t size, int tmp);
/* Journal I/O: each returns 0, or -1 with mb->err set (mbox_jpread: errno), and passes a
 * crash point (below) before every write-class call. */
int mbox_jerr(struct mbox *mb, const char *what, const char *path);
int mbox_jpwrite(struct mbox *mb, int fd, const unsigned char *p, size_t n, uint64_t off,
    const char *path);
int mbox_jpread(int fd, unsigned char *p, size_t n, uint64_t off);
int mbox_jsync(struct mbox *mb, int fd, const char *path);
int mbox_jsync_dir(struct mbox *mb);
/* The journal's files: mbox_jcreate() makes the temporary one (names into tmp and fin, each
 * size bytes) and gives its descriptor; mbox_jpublish() puts it in force once complete
 * (sync, rename to fin, sync the directory; on failure it is removed, the mailbox being
 * untouched, and fd stays open); mbox_jdrop() removes it durably, the change it describes
 * being done or never begun. */
int mbox_jcreate(struct mbox *mb, char *tmp, char *fin, size_t size);
int mbox_jpublish(struct mbox *mb, int fd, const char *tmp, const char *fin);
int mbox_jdrop(struct mbox *mb, const char *fin);

/* mbox-modseq.c: mod-sequences (see there) */
#define MBOX_MODSEQ_PREFIX	".imapd-modseq-"
#define MBOX_MODSEQ_TOMBS_MAX	100000	/* tombstones kept, at most */
int mbox_modseq_path(const struct mbox *mb, char *buf, size_t size);
/* Under a lock on the mailbox, with the view up to date: compare the view with the records,
 * give changes a new mod-sequence, set the view's (clears mb->ms_stale).  0, or -1 when
 * there are no records to be had (the view then has no mod-sequences: mbox_has_modseq()). */
int mbox_modseq_update(struct mbox *mb);
/* The view changed from index `from` on (0: anywhere, as after a reload): the records
 * are compared before the unlock.  Only that part is compared when nobody else has
 * written the records since this view last did (their generation says so). */
static inline void
mbox_modseq_touch(struct mbox *mb, uint32_t from)
{
	mb->ms_stale = 1;
	if (from < mb->ms_from)
		mb->ms_from = from;
}

/* mbox-gone.c: copies of expunged messages (see there) */
#define MBOX_GONE_PREFIX	".imapd-gone-"
#define MBOX_GONE_MAX		(32ULL * 1024 * 1024)	/* bytes in the file, at most: the
							 * oldest copies make room */
#define MBOX_GONE_TTL_S		3600	/* copies older than this go */
/* A record of the file, followed by the message's bytes. */
#define MBOX_GONE_MAGIC	0x31524749u	/* "IGR1" */
struct mbox_gone_rec {
	uint32_t magic;
	uint32_t uidvalidity;
	uint32_t uid;
	uint32_t from_len;	/* the From_ line with its LF */
	uint64_t hdr_len;	/* From_ line and header: the body starts here */
	uint64_t len;		/* the message's bytes, which follow the record */
	int64_t when;		/* time of the expunge */
	uint64_t check;		/* mbox_gone_rec_check() of the fields above */
};
uint64_t mbox_gone_rec_check(const struct mbox_gone_rec *r);
/* The file's name for this mailbox; 0, or -1 (no journal directory, too long). */
int mbox_gone_path(const struct mbox *mb, char *buf, size_t size);
/* Under the write lock, before the messages with skip[i] set are cut out: copy them. */
int mbox_gone_save(struct mbox *mb, const uint8_t *skip);
/* Under a lock: map the file again if it changed, or unmap it if there is none. */
void mbox_gone_refresh(struct mbox *mb);
void mbox_gone_unmap(struct mbox *mb);
/* The kept copy of uid: 1 with *base_r its bytes and m's offsets (relative to them) set;
 * 0 if there is none. */
int mbox_gone_find(const struct mbox *mb, uint32_t uid, const unsigned char **base_r,
    struct mbox_msg *m);
/* Message i's bytes: *base_r is the map and the entry is returned, or for a message others
 * removed, its kept copy and a copy of the entry (in tmp) whose offsets point into it;
 * NULL when there are none.  Under a lock. */
const struct mbox_msg *mbox_msg_bytes(const struct mbox *mb, uint32_t i,
    const unsigned char **base_r, struct mbox_msg *tmp);

/* mbox-shift.c */
/* Rewrite messages from index `from` to the end in place, backwards (see mbox-shift.c),
 * when none of them is gone and none moves towards the file start; lock held.  Returns 1
 * done (offsets updated, file remapped), 0 not applicable (nothing written; the caller
 * uses mbox_tail_replace), -1 on error. */
int mbox_shift_tail(struct mbox *mb, uint32_t from);
/* Magic of its journal, and finishing one after a crash (jfd open on `fin`): 0 or -1. */
#define MBOX_SHIFT_MAGIC	"IMAPDS02"
/* The same with the first, one-lane checksum of saved bytes (still read back) */
#define MBOX_SHIFT_MAGIC_1	"IMAPDS01"
int mbox_shift_recover(struct mbox *mb, int jfd, const char *fin);
/* Test hook: when the environment variable IMAPD_MBOX_SHIFT_BATCH=N is set at mbox_open(),
 * each step of the in-place rewrite moves about N bytes (so that small test mailboxes take
 * many steps); -1 turns it off (every rewrite goes through mbox_tail_replace()). */
#define MBOX_REWRITE_SHIFT	1	/* mbox_shift_tail() */
#define MBOX_REWRITE_COPY	2	/* mbox_tail_replace() */

/* Test hook for the kill-at-every-point tests: when the environment variable
 * IMAPD_MBOX_CRASH_AFTER=N was set at mbox_open(), the process calls _exit(99) just before
 * its N-th write-class system call (write, pwrite, ftruncate, fsync, rename, unlink) on
 * mailbox or journal.  It only ever ends the process that asked for it. */
void mbox_crash_point(struct mbox *mb);

#endif
