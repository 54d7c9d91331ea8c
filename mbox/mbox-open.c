/* mbox-open.c: open, map, accessors, keywords. */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define TAIL_CRC_LEN 256

uint32_t
mbox_tail_crc(const unsigned char *map, uint64_t size)
{
	uint64_t n = size < TAIL_CRC_LEN ? size : TAIL_CRC_LEN;

	if (n == 0)
		return 0;
	return (uint32_t)crc32(0, map + size - n, (unsigned)n);
}

/*
 * The kernel stamps changes with the coarse clock: once it has moved past the ctime the
 * view was read at, any later change gets a later ctime.  Until then a change made in the
 * same tick (after our lock is gone) would leave size and times as they are.
 */
int
mbox_clock_past_ctime(const struct mbox *mb)
{
	struct timespec now;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0)
		return 0;
	return now.tv_sec > mb->ctime_sec || (now.tv_sec == mb->ctime_sec &&
	    now.tv_nsec > mb->ctime_nsec);
}

volatile sig_atomic_t mbox_map_mended;

int
mbox_remap(struct mbox *mb)
{
	struct stat st;
	void *old = (void *)(uintptr_t)mb->map;
	size_t old_len = (size_t)mb->size;
	sig_atomic_t mended = mbox_map_mended;
	int keep;

	mb->map = NULL;
	mb->size = 0;
	if (mb->fd < 0 || fstat(mb->fd, &st) < 0) {
		int e = errno;

		if (old != NULL)
			munmap(old, old_len);
		if (mb->fd < 0)
			return 0;
		mbox_set_error(&mb->err, e, "fstat %s: %s", mb->path, strerror(e));
		return -1;
	}
	/*
	 * The same descriptor maps the same file, and a shared mapping shows every write to
	 * it: a mapping of the right length is kept as it is, one of another length is
	 * resized (mremap keeps the pages already mapped; a new mapping would fault them all
	 * in again).  A writer remaps after each of its writes, an append three times.
	 * Not after the SIGBUS guard mended a page: that page is no longer the file's; and
	 * not when the descriptor now names another file (mbox-sync.c's reopen() puts a
	 * replaced mailbox's new file on the same descriptor).
	 */
	keep = old != NULL && mb->map_mended == mended && (uint64_t)st.st_dev == mb->map_dev &&
	    (uint64_t)st.st_ino == mb->map_ino;
	mb->map_mended = mended;
	mb->map_dev = (uint64_t)st.st_dev;
	mb->map_ino = (uint64_t)st.st_ino;
	if (keep && st.st_size > 0 && (uint64_t)st.st_size == old_len) {
		mb->map = old;
		old = NULL;
	} else if (keep && st.st_size > 0) {
		void *p = mremap(old, old_len, (size_t)st.st_size, MREMAP_MAYMOVE);

		if (p != MAP_FAILED) {
			mb->map = p;
			old = NULL;
		}
	}
	if (old != NULL)
		munmap(old, old_len);
	mb->dev = st.st_dev;
	mb->ino = st.st_ino;
	mb->mtime_sec = st.st_mtim.tv_sec;
	mb->mtime_nsec = st.st_mtim.tv_nsec;
	mb->ctime_sec = st.st_ctim.tv_sec;
	mb->ctime_nsec = st.st_ctim.tv_nsec;
	mb->view_racy = !mbox_clock_past_ctime(mb);
	if (mb->map != NULL) {
		mb->size = (uint64_t)st.st_size;
	} else if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, mb->fd, 0);

		if (p == MAP_FAILED) {
			mbox_set_error(&mb->err, errno, "mmap %s: %s", mb->path, strerror(errno));
			return -1;
		}
		(void)madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		mb->map = p;
		mb->size = (uint64_t)st.st_size;
	}
	mb->tail_crc = mbox_tail_crc(mb->map, mb->size);
	return 0;
}

int
mbox_state_path(const struct mbox *mb, const char *prefix, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)mb->path;
	uint64_t h = mbox_hash64(p, strlen(mb->path), 0x1234567887654321ULL);
	int n;

	if (mb->journal_dir == NULL)
		return -1;
	n = snprintf(buf, size, "%s/%s%016llx", mb->journal_dir, prefix, (unsigned long long)h);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int
mbox_lock(struct mbox *mb, struct mbox_lock *lk, int mode)
{
	if (mb->fd < 0) {
		lk->fd = -1;
		lk->tfd = -1;
		lk->fcntl_held = lk->dot_held = 0;
		lk->dotpath = NULL;
		return 0;
	}
	/* shared: the bytes the view has (see mbox_lock_acquire_len()); a reload that finds
	 * more takes the dotlock as well, which keeps appenders out meanwhile */
	return mbox_lock_acquire_len(lk, mb->fd, mb->tfd, mb->path, mode,
	    mb->size > 0 ? mb->size : 1, MBOX_LOCK_TIMEOUT_MS, &mb->err);
}

int
mbox_open_file(const char *path, int oflags)
{
	/*
	 * Reading never updates the access time.  procmail, after writing the first byte
	 * of a delivery, sleeps a second with both locks held whenever the file's atime
	 * equals its mtime (its "NFS atime hack"), and busy sessions reading the file would
	 * make that so nearly always, stalling every writer behind it.  Only the owner may
	 * ask: others read as usual.
	 */
	int fd = open(path, oflags | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = open(path, oflags);
	return fd;
}

/* See mbox-private.h, before mbox_unlock_nowait(). */
static void
stamp_written(struct mbox *mb)
{
	struct timespec t, ts[2];
	struct stat st;
	int current;

	if (mb->fd < 0 || fstat(mb->fd, &st) < 0 || clock_gettime(CLOCK_REALTIME, &t) < 0)
		return;
	/* the view recorded the file as our write left it (the writers remap last) */
	current = (uint64_t)st.st_size == mb->size && st.st_ino == mb->ino &&
	    st.st_dev == mb->dev && st.st_mtim.tv_sec == mb->mtime_sec &&
	    st.st_mtim.tv_nsec == mb->mtime_nsec;
	if (t.tv_sec < st.st_mtim.tv_sec || (t.tv_sec == st.st_mtim.tv_sec &&
	    t.tv_nsec <= st.st_mtim.tv_nsec)) {
		t = st.st_mtim;
		if (++t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec = 0;
		}
	}
	/*
	 * The access time stays, unless a reader has read the file in the second this write
	 * is stamped with: then it goes back a second.  The file has changed since it was
	 * read, which is what mtime > atime tells mail readers and biff anyway, and procmail
	 * sleeps a second with both locks held when it finds the two equal (see
	 * mbox_open_file()).
	 */
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	if (st.st_atim.tv_sec >= t.tv_sec) {
		ts[0].tv_sec = t.tv_sec - 1;
		ts[0].tv_nsec = t.tv_nsec;
	}
	ts[1] = t;
	if (futimens(mb->fd, ts) < 0 || fstat(mb->fd, &st) < 0)
		return;	/* not the owner: changes are told by size and the kernel's times */
	if (!current)
		return;
	mb->mtime_sec = st.st_mtim.tv_sec;
	mb->mtime_nsec = st.st_mtim.tv_nsec;
	mb->ctime_sec = st.st_ctim.tv_sec;
	mb->ctime_nsec = st.st_ctim.tv_nsec;
	/* no other state of the file has this mtime: a cache of the view is exact */
	mb->view_racy = 0;
}

void
mbox_unlock_nowait(struct mbox *mb, struct mbox_lock *lk)
{
	struct mbox_error e;

	if (lk->excl && lk->fcntl_held && mb->touched)
		stamp_written(mb);
	mb->touched = 0;
	/* the view changed under this lock: the mod-sequences follow while no other
	 * program can change the file (mbox-modseq.c) */
	if (mb->ms_stale && (lk->fcntl_held || mb->fd < 0))
		(void)mbox_modseq_update(mb);

	/* the tick may have passed during the write by itself */
	if (mb->view_racy && mbox_clock_past_ctime(mb))
		mb->view_racy = 0;
	/* A dotlock we cannot remove is worth no more than an error text: the data is safe. */
	(void)mbox_lock_release(lk, &e);
}

void
mbox_unlock(struct mbox *mb, struct mbox_lock *lk)
{
	/* Last moment nobody else can change the file: if it changed in the clock's current
	 * tick (our own write, usually), let the tick pass, so that the view may be cached as
	 * one a later change cannot hide from (see struct mbox_stamp). */
	if (lk->excl && lk->fcntl_held && mb->touched)
		stamp_written(mb);
	mb->touched = 0;
	if (lk->fcntl_held && mb->view_racy)
		mbox_cache_settle(mb);
	mbox_unlock_nowait(mb, lk);
}

static int
valid_keyword(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > MBOX_KEYWORD_MAX_LEN || p[0] == '\\')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' ||
		    c == '*' || c == '"' || c == '\\' || c == ']')
			return 0;
	}
	return 1;
}

int
mbox_keyword_lookup(struct mbox *mb, const char *name, size_t len, int create)
{
	unsigned i;
	char *s;

	for (i = 0; i < mb->n_kw; i++)
		if (strlen(mb->kw[i]) == len && strncasecmp(mb->kw[i], name, len) == 0)
			return (int)i;
	if (!create || mb->n_kw >= MBOX_MAX_KEYWORDS ||
	    !valid_keyword((const unsigned char *)name, len))
		return -1;
	s = strndup(name, len);
	if (s == NULL)
		return -1;
	mb->kw[mb->n_kw] = s;
	mb->base_dirty = 1;
	return (int)mb->n_kw++;
}

/*
 * UIDVALIDITY for a mailbox without one: the time, as UW and Dovecot use, but above every
 * value handed out before in this state directory.  RFC 3501 2.3.1.1 wants a mailbox
 * deleted and made again under its name to have a greater one; the time alone repeats
 * itself within a second.  The last value is kept in MBOX_UIDVALIDITY_FILE, under an
 * fcntl lock held for the read and the write only.  Without a state directory, the time.
 */
uint32_t
mbox_new_uidvalidity(const struct mbox *mb)
{
	time_t t = time(NULL);
	uint32_t v = t > 0 ? (uint32_t)t : 1, last;
	struct flock fl;
	char path[4096], buf[32];
	ssize_t n;
	int fd;

	if (mb->journal_dir == NULL || snprintf(path, sizeof(path), "%s/%s", mb->journal_dir,
	    MBOX_UIDVALIDITY_FILE) >= (int)sizeof(path))
		return v;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0)
		return v;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, F_SETLKW, &fl) < 0) {
		if (errno != EINTR) {
			(void)close(fd);
			return v;
		}
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	last = (uint32_t)strtoul(buf, NULL, 10);
	if (last >= v && last < UINT32_MAX)
		v = last + 1;
	/* fixed width, so that a shorter number never leaves digits of a longer one */
	n = snprintf(buf, sizeof(buf), "%010u\n", v);
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		v = t > 0 ? (uint32_t)t : 1;	/* not kept: no better than the time */
	(void)close(fd);	/* drops the lock */
	return v;
}

/* Set UID state from a fresh full parse (in mb->m, mb->base). */
static void
setup_uids(struct mbox *mb)
{
	uint32_t next;

	if (mb->base.found) {
		mb->uidvalidity = mb->base.uidvalidity;
		next = mb->base.last_uid + 1;
		mb->base_dirty = 0;
	} else {
		/* No stored base.  Every session must agree on the UIDVALIDITY until one writes
		 * it (read-only sessions never do, and clients that only EXAMINE must not see it
		 * change): take the date of the first message, which stays while the numbering
		 * by position does.  An empty mailbox has no UIDs to keep: the time. */
		int64_t d = mb->m.n > 0 ? mb->m.v[0].date : 0;

		mb->uidvalidity = d > 0 && d <= UINT32_MAX ? (uint32_t)d :
		    mbox_new_uidvalidity(mb);
		next = 1;
		mb->base_dirty = 1;
	}
	/* every X-UID stored, ascending (the cache checked it) and within the base's last
	 * UID: mbox_assign_uids() would keep each one */
	if (!(mb->base.found && mb->cache_plain &&
	    (mb->m.n == 0 || mb->m.v[mb->m.n - 1].uid <= mb->base.last_uid)))
		mbox_assign_uids(&mb->m, 0, 0, mb->base.found ? mb->base.last_uid : 0,
		    mb->base.found, &next);
	if (next == 0)	/* wrapped: cannot keep UIDs */
		next = UINT32_MAX;
	mb->next_uid = next;
}

static void
mark_recent(struct mbox *mb, uint32_t from)
{
	uint32_t i;

	for (i = from; i < mb->m.n; i++) {
		struct mbox_msg *m = &mb->m.v[i];

		if (!(m->state & MSG_STATUS_O)) {
			m->flags |= MBOX_RECENT;
			mb->recent++;
			if (mb->open_flags & MBOX_OPEN_KEEP_RECENT)
				m->state |= MSG_APPENDED;	/* stays new in the file */
		}
	}
}

/* Anything in memory that the file does not hold yet? */
static int
needs_write(const struct mbox *mb)
{
	uint32_t i;

	if (mb->base_dirty || (mb->m.n > 0 && mb->base.last_uid + 1 != mb->next_uid))
		return 1;
	if (mb->cache_plain)
		return 0;	/* every message's UID and Status: O are in the file */
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];

		if (!(m->state & MSG_UID_STORED) || (m->state & MSG_DIRTY) ||
		    (!(m->state & MSG_STATUS_O) && !(m->state & MSG_APPENDED)))
			return 1;
	}
	return 0;
}

/*
 * A read-only open that finds an unfinished rewrite of this file: finish it through a
 * second, writable descriptor (the file is the user's own), so that readers never see a
 * half-moved tail.  Without write access the open fails rather than show damage.
 */
int
mbox_recover_for_reader(struct mbox *mb)
{
	struct mbox_lock lk = MBOX_LOCK_INIT;
	int rofd = mb->fd, r;

	mb->fd = open(mb->path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (mb->fd < 0) {
		mbox_set_error(&mb->err, errno, "%s: an interrupted rewrite needs write access "
		    "to finish: %s", mb->path, strerror(errno));
		mb->fd = rofd;
		return -1;
	}
	r = mbox_lock(mb, &lk, MBOX_LK_WRITE);
	if (r == 0) {
		r = mbox_journal_recover(mb);
		mbox_unlock(mb, &lk);
	}
	/* closing the second descriptor drops this process's fcntl locks on the file; none
	 * is held through rofd here */
	(void)close(mb->fd);
	mb->fd = rofd;
	return r;
}

int
mbox_open(const char *path, const char *journal_dir, unsigned flags, struct mbox **mb_r,
    struct mbox_error *err_r)
{
	struct mbox *mb;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	int rw = (flags & MBOX_OPEN_RW) != 0, oflags;

	*mb_r = NULL;
	if (rw && journal_dir == NULL) {
		mbox_set_error(err_r, EINVAL, "a read-write mailbox needs a journal directory");
		return -1;
	}
	mb = calloc(1, sizeof(*mb));
	if (mb == NULL) {
		mbox_set_error(err_r, ENOMEM, "out of memory");
		return -1;
	}
	mb->fd = -1;
	mb->tfd = -1;
	mb->read_lk.fd = -1;
	mb->read_lk.tfd = -1;
	mb->rw = rw;
	mb->open_flags = flags;
	mb->tz_cache_key = INT64_MIN;
	mb->cache_min_size = MBOX_CACHE_MIN_SIZE;
	mb->gone_max = MBOX_GONE_MAX;
#ifdef IMAPD_TEST_HOOKS
	/* the unit tests' and fuzzers' knobs (Makefile: the -test library); the server is
	 * built without them and reads no IMAPD_MBOX_* variable */
	{
		const char *c = getenv("IMAPD_MBOX_CRASH_AFTER");

		mb->crash_after = c != NULL ? strtol(c, NULL, 10) : 0;
		c = getenv("IMAPD_MBOX_CACHE_MIN_SIZE");
		mb->cache_min_size = c != NULL ? strtoull(c, NULL, 10) : MBOX_CACHE_MIN_SIZE;
		c = getenv("IMAPD_MBOX_GONE_MAX");
		mb->gone_max = c != NULL ? strtoull(c, NULL, 10) : MBOX_GONE_MAX;
		c = getenv("IMAPD_MBOX_SHIFT_BATCH");
		mb->shift_batch = c != NULL ? strtoull(c, NULL, 10) : 0;
	}
#endif
	mb->path = strdup(path);
	mb->journal_dir = journal_dir != NULL ? strdup(journal_dir) : NULL;
	if (mb->path == NULL || (journal_dir != NULL && mb->journal_dir == NULL)) {
		mbox_set_error(err_r, ENOMEM, "out of memory");
		goto fail;
	}
	{
		/* the turnstile every session of the user on this mailbox shares */
		char tp[4096];

		if (mbox_state_path(mb, MBOX_LOCK_FILE_PREFIX, tp, sizeof(tp)) == 0)
			mb->tfd = open(tp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
			    0600);
	}
	oflags = (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
	mb->fd = mbox_open_file(path, oflags);
	if (mb->fd < 0 && errno == ENOENT && rw && (flags & MBOX_OPEN_CREATE))
		mb->fd = open(path, oflags | O_CREAT | O_EXCL, 0600);
	if (mb->fd < 0) {
		if (errno == ENOENT && (flags & (MBOX_OPEN_MISSING_OK | MBOX_OPEN_CREATE))) {
			mb->uidvalidity = mbox_new_uidvalidity(mb);
			mb->next_uid = 1;
			if (mb->journal_dir != NULL)
				(void)mbox_modseq_update(mb);
			*mb_r = mb;
			return 0;
		}
		mbox_set_error(err_r, errno, "open %s: %s", path, strerror(errno));
		goto fail;
	}
	{
		struct stat st;

		if (fstat(mb->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			mbox_set_error(err_r, EINVAL, "%s: not a regular file", path);
			goto fail;
		}
	}
	if (!rw && mb->journal_dir != NULL && mbox_journal_pending(mb) &&
	    mbox_recover_for_reader(mb) < 0) {
		*err_r = mb->err;
		goto fail;
	}
	if (mbox_lock(mb, &lk, rw ? MBOX_LK_WRITE : MBOX_LK_SHARED | MBOX_LK_DOT) < 0) {
		*err_r = mb->err;
		goto fail;
	}
	if (rw && mbox_journal_recover(mb) < 0)
		goto fail_locked;
	if (mbox_remap(mb) < 0)
		goto fail_locked;
	/* the cache gives what the parse would; everything after it is the same either way */
	mb->cache_used = mbox_cache_load(mb);
	if (mb->cache_used == MBOX_CACHE_NONE) {
		if (mbox_scan(mb, 0, &mb->m, &mb->base) < 0)
			goto fail_locked;
		mb->scan_fresh = 1;
	}
	setup_uids(mb);
	/* a plain cache: every message has Status: O (none is \Recent) and its X-UID */
	if (!mb->cache_plain)
		mark_recent(mb, 0);
	if (rw && needs_write(mb) && mbox_write_locked(mb) < 0)
		goto fail_locked;
	mb->scan_fresh = 0;
	mb->cache_plain = 0;	/* true of the open only */
	mb->cache_ok = 1;
	/* from an exact cache, the records need comparing only if someone wrote them since */
	mbox_modseq_touch(mb, mb->cache_used == MBOX_CACHE_EXACT && mb->ms_ok ? mb->m.n : 0);
	mbox_unlock(mb, &lk);
	/* outside the lock: the view and its stamp are ours, whatever happens to the file */
	if (!(flags & MBOX_OPEN_LATER))
		mbox_cache_save(mb);
	*mb_r = mb;
	return 0;
fail_locked:
	*err_r = mb->err;
	mbox_unlock(mb, &lk);
fail:
	mbox_free(&mb);
	return -1;
}

void
mbox_later(struct mbox *mb)
{
	if (mb != NULL && mb->cache_ok)
		mbox_cache_save(mb);
}

void
mbox_free(struct mbox **mbp)
{
	struct mbox *mb = *mbp;
	unsigned i;

	if (mb == NULL)
		return;
	mbox_read_end(mb);
	mbox_gone_unmap(mb);
	/* the session's own writes changed the file: keep the next open from parsing it */
	if (mb->cache_ok)
		mbox_cache_save(mb);
	if (mb->map != NULL)
		munmap((void *)(uintptr_t)mb->map, (size_t)mb->size);
	if (mb->fd >= 0)
		(void)close(mb->fd);	/* read-side only: every write was fsynced */
	if (mb->tfd >= 0)
		(void)close(mb->tfd);
	for (i = 0; i < mb->n_kw; i++)
		free(mb->kw[i]);
	msgvec_free(&mb->m);
	mbox_sync_result_clear(&mb->pend);
	free(mb->path);
	free(mb->journal_dir);
	free(mb);
	*mbp = NULL;
}

const struct mbox_error *
mbox_error(const struct mbox *mb)
{
	return &mb->err;
}

uint32_t
mbox_count(const struct mbox *mb)
{
	return mb->m.n;
}

uint32_t
mbox_uidvalidity(const struct mbox *mb)
{
	return mb->uidvalidity;
}

uint32_t
mbox_uidnext(const struct mbox *mb)
{
	return mb->next_uid;
}

uint32_t
mbox_recent_count(const struct mbox *mb)
{
	return mb->recent;
}

int
mbox_is_readonly(const struct mbox *mb)
{
	return !mb->rw;
}

unsigned
mbox_keyword_count(const struct mbox *mb)
{
	return mb->n_kw;
}

const char *
mbox_keyword_name(const struct mbox *mb, unsigned idx)
{
	return idx < mb->n_kw ? mb->kw[idx] : NULL;
}

uint32_t
mbox_msg_uid(const struct mbox *mb, uint32_t i)
{
	return mb->m.v[i].uid;
}

unsigned
mbox_msg_flags(const struct mbox *mb, uint32_t i)
{
	return mb->m.v[i].flags;
}

uint64_t
mbox_msg_keywords(const struct mbox *mb, uint32_t i)
{
	return mb->m.v[i].keywords;
}

time_t
mbox_msg_date(const struct mbox *mb, uint32_t i, int *tz_min_r)
{
	if (tz_min_r != NULL)
		*tz_min_r = mb->m.v[i].tz_min;
	return (time_t)mb->m.v[i].date;
}

uint64_t
mbox_msg_header_size(const struct mbox *mb, uint32_t i)
{
	return mb->m.v[i].hdr_vsize;
}

uint64_t
mbox_msg_body_size(const struct mbox *mb, uint32_t i)
{
	const struct mbox_msg *m = &mb->m.v[i];

	return m->end - m->body_off + m->body_bare_lf;
}

uint64_t
mbox_msg_size(const struct mbox *mb, uint32_t i)
{
	return mbox_msg_header_size(mb, i) + mbox_msg_body_size(mb, i);
}

int64_t
mbox_uid_index(const struct mbox *mb, uint32_t uid)
{
	uint32_t lo = mbox_uid_rank(mb, uid);

	return lo < mb->m.n && mb->m.v[lo].uid == uid ? (int64_t)lo : -1;
}

uint32_t
mbox_uid_rank(const struct mbox *mb, uint32_t uid)
{
	uint32_t lo = 0, hi = mb->m.n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (mb->m.v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
mbox_header_next(const struct mbox *mb, uint32_t i, uint64_t *pos, const unsigned char **p_r,
    size_t *len_r)
{
	const unsigned char *map;
	struct mbox_msg tmp;
	const struct mbox_msg *m = mbox_msg_bytes(mb, i, &map, &tmp);
	uint64_t p, start = 0, stop = 0;
	struct hdr_line l;
	int have = 0;

	if (*pos == UINT64_MAX || m == NULL)
		return 0;
	p = *pos == 0 ? m->from_off + m->from_len : *pos;
	while (p < m->body_off && mbox_hdr_next(map, &p, m->body_off, &l)) {
		int hidden = !l.empty && l.name_len > 0 &&
		    mbox_meta_kind(map + l.off, l.name_len) != 0;

		if (hidden) {
			if (have) {
				*pos = p;
				break;
			}
			continue;
		}
		if (!have) {
			start = l.off;
			have = 1;
		}
		stop = l.off + l.len;
		*pos = p;
	}
	if (!have) {
		*pos = UINT64_MAX;
		return 0;
	}
	if (*pos >= m->body_off)
		*pos = UINT64_MAX;
	*p_r = map + start;
	*len_r = (size_t)(stop - start);
	return 1;
}

void
mbox_msg_body(const struct mbox *mb, uint32_t i, const unsigned char **p_r, size_t *len_r)
{
	const unsigned char *map;
	struct mbox_msg tmp;
	const struct mbox_msg *m = mbox_msg_bytes(mb, i, &map, &tmp);

	if (m == NULL) {
		*p_r = (const unsigned char *)"";
		*len_r = 0;
		return;
	}
	*p_r = map + m->body_off;
	*len_r = (size_t)(m->end - m->body_off);
}

long
mbox_msg_pread(struct mbox *mb, uint32_t i, uint64_t off, unsigned char *buf, size_t len)
{
	const struct mbox_msg *m = &mb->m.v[i];
	uint64_t blen = m->end - m->body_off;
	ssize_t r;

	if (m->state & MSG_GONE) {
		mbox_set_error(&mb->err, MBOX_ECHANGED, "message removed by another program");
		return -1;
	}
	if (off >= blen)
		return 0;
	if (len > blen - off)
		len = (size_t)(blen - off);
	if (len > LONG_MAX)
		len = LONG_MAX;
	r = pread(mb->fd, buf, len, (off_t)(m->body_off + off));
	if (r < 0) {
		mbox_set_error(&mb->err, errno, "read %s: %s", mb->path, strerror(errno));
		return -1;
	}
	if (r == 0) {
		mbox_set_error(&mb->err, MBOX_ECHANGED, "%s shrank", mb->path);
		return -1;
	}
	return (long)r;
}

void
mbox_msg_set_flags(struct mbox *mb, uint32_t i, unsigned flags, uint64_t keywords)
{
	struct mbox_msg *m = &mb->m.v[i];

	if (m->state & MSG_GONE)
		return;
	flags = (flags & MBOX_FLAGS_STORED) | (m->flags & MBOX_RECENT);
	keywords &= mb->n_kw >= 64 ? UINT64_MAX : (1ULL << mb->n_kw) - 1;
	m->flags = (uint8_t)flags;
	m->keywords = keywords;
	if ((flags & MBOX_FLAGS_STORED) != m->disk_flags || keywords != m->disk_keywords) {
		m->state |= MSG_DIRTY;
		if (i < mb->clean_below)
			mb->clean_below = i;
	} else
		m->state &= (uint8_t)~MSG_DIRTY;
}

int
mbox_msg_gone(const struct mbox *mb, uint32_t i)
{
	return (mb->m.v[i].state & MSG_GONE) != 0;
}

int
mbox_fd(const struct mbox *mb)
{
	return mb->fd;
}

const char *
mbox_path(const struct mbox *mb)
{
	return mb->path;
}

int
mbox_keyword_add(struct mbox *mb, const unsigned char *name, size_t len)
{
	return mbox_keyword_lookup(mb, (const char *)name, len, 1);
}
