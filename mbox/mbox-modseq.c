/*
 * mbox-modseq.c: mod-sequences (RFC 7162) for a mailbox that other programs write too.
 *
 * An mbox file has nowhere to keep a mod-sequence that mutt, pine, procmail, UW-IMAP or
 * Dovecot would keep up to date, so they live beside it, in the state directory: a file
 * per mailbox (MBOX_MODSEQ_PREFIX plus the hash of the mailbox path, as the cache file)
 * holding, for every UID the mailbox has had, the flags and keywords it had when a session
 * last looked and the mod-sequence it got then.  Whoever looks at the mailbox after it
 * changed compares: a message whose flags or keywords differ from its record, or that has
 * no record (new mail), gets a new mod-sequence; a record whose message is no longer in the
 * file becomes a tombstone with a new mod-sequence (an expunge, RFC 7162 3.2, whether a
 * session, mutt or anyone else removed it).  So every change gets a higher mod-sequence,
 * whoever made it, and all sessions agree on them, because they all go through this file.
 *
 * Values: a new mod-sequence is max(highest + 1, the time in microseconds).  One per look
 * that found changes, so one per STORE (3.1: each STORE gets its own, and later ones in a
 * session are greater).  The clock is only a floor: if the file is lost (removed, another
 * machine's, an old backup), the values it starts again from are above any value handed
 * out before, for no look hands out more than one value per microsecond; a client's
 * mod-sequence from before is then below every message's, and it is told that everything
 * changed, never that nothing did.  The clock going back while the file is kept changes
 * nothing (highest + 1); going back and losing the file at once is the one case left (see
 * DEVIATIONS.md).
 *
 * Expunges: tombstones are kept in the record list (flag MS_TOMB) with the mod-sequence of
 * the look that found the message gone.  The header's floor says from where the list is
 * complete: every expunge with a mod-sequence above it has its tombstone.  A new file's
 * floor is its first value (nothing is known of earlier expunges); when tombstones exceed
 * MBOX_MODSEQ_TOMBS_MAX the oldest go and the floor rises to theirs.  A client asking for
 * expunges since a value below the floor gets every UID of its range that is not in the
 * mailbox (RFC 7162 3.2.5.1 and 5.1 allow UIDs that never existed).
 *
 * Concurrency: every look is made under a lock on the mailbox (shared or write), with the
 * view just brought up to date, so the file cannot change under it through a program that
 * locks; and under an fcntl write lock on byte 1 of the turnstile file (byte 0 is the
 * turnstile, mbox-lock.h), so that two sessions never update the records at once.  Nothing
 * is synced: after a crash the comparison finds whatever the records missed.  A torn
 * record at the end is cut off; a file that does not hold up (magic, sizes, order) is
 * started again as if lost.
 */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS_MAGIC	"IMAPDms\n"
#define MS_VERSION	2u
#define MS_ENDIAN	0x01020304u
#define MS_TOMB		0x80000000u	/* in rec.flags: the UID was expunged */
#define MS_LOCK_BYTE	1
#define MS_VALUE_MAX	((uint64_t)1 << 62)

struct ms_hdr {
	unsigned char magic[8];
	uint32_t version;
	uint32_t endian;
	uint32_t uidvalidity;
	uint32_t rec_size;
	uint64_t highest;	/* at least every record's modseq */
	uint64_t floor;		/* every expunge above it has a tombstone */
	uint64_t gen;		/* changed by every write: a view that wrote last and sees
				 * its own value knows the records are as it left them */
};

struct ms_rec {
	uint32_t uid;
	uint32_t flags;		/* MBOX_FLAGS_STORED bits, or MS_TOMB */
	uint64_t kwsum;		/* mbox_modseq_kwsum() */
	uint64_t modseq;
};

/* The crash test's hook (IMAPD_MBOX_CRASH_AFTER, test-mbox-crash.c) before each write;
 * unlike mbox_crash_point() it does not mark the mailbox file written. */
static void
ms_crash_point(struct mbox *mb)
{
#ifdef IMAPD_TEST_HOOKS
	if (mb->crash_after > 0 && ++mb->crash_count >= mb->crash_after)
		_exit(99);
#else
	(void)mb;
#endif
}

int
mbox_modseq_path(const struct mbox *mb, char *buf, size_t size)
{
	return mbox_state_path(mb, MBOX_MODSEQ_PREFIX, buf, size);
}

static uint64_t
clock_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || ts.tv_sec < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A keyword set as a value that does not depend on the order of the mailbox's keyword
 * list (another program may write X-IMAPbase in another order): the xor of a hash of each
 * name, case folded (keywords compare case-insensitively). */
static void
keyword_hashes(const struct mbox *mb, uint64_t *h)
{
	unsigned k;

	for (k = 0; k < mb->n_kw; k++) {
		unsigned char low[MBOX_KEYWORD_MAX_LEN + 1];
		size_t n = strlen(mb->kw[k]), j;

		if (n > MBOX_KEYWORD_MAX_LEN)
			n = MBOX_KEYWORD_MAX_LEN;
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)mb->kw[k][j];

			low[j] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
		}
		h[k] = mbox_hash64(low, n, 0x6b6579776f726473ULL) | 1;
	}
}

static uint64_t
kwsum(const uint64_t *h, unsigned n_kw, uint64_t kw)
{
	uint64_t s = 0;
	unsigned k;

	for (k = 0; k < n_kw && kw != 0; k++, kw >>= 1)
		if (kw & 1)
			s ^= h[k];
	return s;
}

static int
lock_byte(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = MS_LOCK_BYTE;
	fl.l_len = 1;
	while (fcntl(fd, F_SETLKW, &fl) < 0)
		if (errno != EINTR && errno != EDEADLK)
			return -1;
	return 0;
}

/* The open, locked file: records mapped read-write. */
struct msfile {
	int fd;
	struct ms_hdr *hdr;
	struct ms_rec *rec;
	uint32_t n;
	size_t map_len;
	void *map;
};

static void
ms_close(struct mbox *mb, struct msfile *f)
{
	if (f->map != NULL)
		(void)munmap(f->map, f->map_len);
	if (f->fd >= 0)
		(void)close(f->fd);
	f->fd = -1;
	f->map = NULL;
	(void)lock_byte(mb->tfd, F_UNLCK);
}

static int
ms_map(struct msfile *f, uint64_t size)
{
	void *p;

	f->map_len = (size_t)size;
	p = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED) {
		f->map = NULL;
		return -1;
	}
	f->map = p;
	f->hdr = p;
	f->rec = (struct ms_rec *)((unsigned char *)p + sizeof(struct ms_hdr));
	f->n = (uint32_t)((size - sizeof(struct ms_hdr)) / sizeof(struct ms_rec));
	return 0;
}

/* Start the file again (none, lost, another mailbox's, or not whole): no records. */
static int
ms_init(struct mbox *mb, struct msfile *f, uint32_t uidvalidity)
{
	struct ms_hdr h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MS_MAGIC, 8);
	h.version = MS_VERSION;
	h.endian = MS_ENDIAN;
	h.uidvalidity = uidvalidity;
	h.rec_size = sizeof(struct ms_rec);
	/* nothing is known of what came before: expunges only from now on, and values
	 * above any handed out before (see the top of the file) */
	h.floor = clock_us();
	h.highest = h.floor;
	h.gen = h.floor;	/* not the value of any file before */
	ms_crash_point(mb);
	if (ftruncate(f->fd, 0) < 0 || pwrite(f->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	return ms_map(f, sizeof(h));
}

/*
 * The header, and the records unless this view has known the file at this generation
 * (it wrote the records, walked them, or the cache it was opened from had them at this
 * generation): every writer changes the generation before it touches a record, so the
 * records are still the ones found whole then.  That saves a walk of 2.4 MB on each open
 * of a 100,000-message mailbox.
 */
static int
ms_valid(const struct mbox *mb, const struct msfile *f)
{
	uint32_t i;

	/* values stay far below 2^63 (RFC 7162 7: 63 bits), so that highest + 1 always
	 * fits; a file with more is not one imapd wrote */
	if (memcmp(f->hdr->magic, MS_MAGIC, 8) != 0 || f->hdr->version != MS_VERSION ||
	    f->hdr->endian != MS_ENDIAN || f->hdr->rec_size != sizeof(struct ms_rec) ||
	    f->hdr->highest > MS_VALUE_MAX || f->hdr->floor > MS_VALUE_MAX)
		return 0;
	if (mb->ms_ok && mb->ms_gen != 0 && f->hdr->gen == mb->ms_gen)
		return 1;
	for (i = 0; i < f->n; i++)
		if (f->rec[i].uid == 0 || (i > 0 && f->rec[i].uid <= f->rec[i - 1].uid) ||
		    f->rec[i].modseq == 0 || f->rec[i].modseq > MS_VALUE_MAX)
			return 0;
	return 1;
}

/* Open and lock the file of mb, mapped; started again when it does not hold up. */
static int
ms_open(struct mbox *mb, struct msfile *f)
{
	char path[4200];
	struct stat st;
	uint64_t whole;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (mb->tfd < 0 || mbox_modseq_path(mb, path, sizeof(path)) < 0)
		return -1;
	if (lock_byte(mb->tfd, F_WRLCK) < 0)
		return -1;
	f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (f->fd < 0 || fstat(f->fd, &st) < 0)
		goto fail;
	if ((uint64_t)st.st_size < sizeof(struct ms_hdr)) {
		if (ms_init(mb, f, mb->uidvalidity) < 0)
			goto fail;
		return 0;
	}
	/* a record torn by a session killed while it appended: cut off */
	whole = sizeof(struct ms_hdr) + ((uint64_t)st.st_size - sizeof(struct ms_hdr)) /
	    sizeof(struct ms_rec) * sizeof(struct ms_rec);
	if (whole != (uint64_t)st.st_size && ftruncate(f->fd, (off_t)whole) < 0)
		goto fail;
	if (ms_map(f, whole) < 0)
		goto fail;
	if (!ms_valid(mb, f) || f->hdr->uidvalidity != mb->uidvalidity) {
		(void)munmap(f->map, f->map_len);
		f->map = NULL;
		if (ms_init(mb, f, mb->uidvalidity) < 0)
			goto fail;
	}
	return 0;
fail:
	ms_close(mb, f);
	return -1;
}

/* Write the records in v[0..n) as the whole file, through a new file renamed over it. */
static int
ms_replace(struct mbox *mb, struct msfile *f, const struct ms_hdr *h, const struct ms_rec *v,
    uint32_t n)
{
	char path[4200], tmp[4300];
	int fd;
	size_t len = (size_t)n * sizeof(*v);

	if (mbox_modseq_path(mb, path, sizeof(path)) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	ms_crash_point(mb);
	if (pwrite(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
	    (len > 0 && pwrite(fd, v, len, sizeof(*h)) != (ssize_t)len)) {
		(void)close(fd);
		(void)unlink(tmp);
		return -1;
	}
	ms_crash_point(mb);
	if (rename(tmp, path) < 0) {
		(void)close(fd);
		(void)unlink(tmp);
		return -1;
	}
	(void)munmap(f->map, f->map_len);
	f->map = NULL;
	(void)close(f->fd);
	f->fd = fd;
	return ms_map(f, sizeof(*h) + len);
}

static int
cmp_tomb_age(const void *a, const void *b)
{
	const struct ms_rec *x = a, *y = b;

	return x->modseq < y->modseq ? -1 : x->modseq > y->modseq;
}

static int
cmp_rec_uid(const void *a, const void *b)
{
	const struct ms_rec *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/*
 * Records of a file rewritten with every live one and at most MBOX_MODSEQ_TOMBS_MAX / 2
 * of the youngest tombstones, when there are more; the floor rises to the youngest one
 * dropped.  Returns 1 if the records were rewritten, 0 if there was no need, -1.
 */
static int
ms_trim(struct mbox *mb, struct msfile *f)
{
	struct ms_rec *v, *t;
	struct ms_hdr h = *f->hdr;
	uint32_t i, n = 0, nt = 0, keep;
	int r;

	h.gen++;

	for (i = 0; i < f->n; i++)
		nt += (f->rec[i].flags & MS_TOMB) != 0;
	if (nt <= MBOX_MODSEQ_TOMBS_MAX)
		return 0;
	v = malloc((size_t)f->n * sizeof(*v));
	t = malloc((size_t)nt * sizeof(*t));
	if (v == NULL || t == NULL) {
		free(v);
		free(t);
		return -1;
	}
	for (i = 0, nt = 0; i < f->n; i++)
		if (f->rec[i].flags & MS_TOMB)
			t[nt++] = f->rec[i];
		else
			v[n++] = f->rec[i];
	qsort(t, nt, sizeof(*t), cmp_tomb_age);
	keep = MBOX_MODSEQ_TOMBS_MAX / 2;
	if (t[nt - keep - 1].modseq > h.floor)
		h.floor = t[nt - keep - 1].modseq;
	for (i = nt - keep; i < nt; i++)
		if (t[i].modseq > h.floor)
			v[n++] = t[i];
	qsort(v, n, sizeof(*v), cmp_rec_uid);
	r = ms_replace(mb, f, &h, v, n) < 0 ? -1 : 1;
	free(v);
	free(t);
	return r;
}

int
mbox_modseq_update(struct mbox *mb)
{
	struct msfile f;
	uint64_t kwh[MBOX_MAX_KEYWORDS], high, m_new = 0, gone_min = 0;
	struct ms_rec *add = NULL, *all = NULL;
	uint32_t i, j, n_add = 0, top, i0 = 0, j0 = 0;
	int insert = 0, ret = -1, pass, partial;

	mb->ms_stale = 0;
	if (ms_open(mb, &f) < 0) {
		mb->ms_ok = 0;
		return -1;
	}
	/*
	 * Only what changed from ms_from on needs comparing when the records are as this
	 * view left them (an append, a STORE: the common case on a big mailbox); anyone
	 * else's write, a reload or a new file means all of it.
	 */
	partial = mb->ms_ok && f.hdr->gen == mb->ms_gen && mb->ms_from > 0;
	if (partial) {
		uint32_t lo = 0, hi = f.n;

		i0 = mb->ms_from < mb->m.n ? mb->ms_from : mb->m.n;
		if (i0 < mb->m.n)
			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;

				if (f.rec[mid].uid < mb->m.v[i0].uid)
					lo = mid + 1;
				else
					hi = mid;
			}
		else
			lo = f.n;
		j0 = lo;
		gone_min = mb->ms_gone_min;
	}
	keyword_hashes(mb, kwh);
	high = f.hdr->highest;
	for (i = partial ? f.n : 0; i < f.n; i++)
		if (f.rec[i].modseq > high)
			high = f.rec[i].modseq;
	for (i = i0; i < mb->m.n; i++)
		if (mb->m.v[i].modseq > high && !(mb->m.v[i].state & MSG_GONE))
			high = mb->m.v[i].modseq;
	/* what this view was told stays the floor, whatever the header says now (a file
	 * changed behind its back with the generation kept) */
	if (partial && mb->ms_highest > high)
		high = mb->ms_highest;
	top = f.n > 0 ? f.rec[f.n - 1].uid : 0;
	/*
	 * Two passes over the view and the records, both in UID order: the first finds
	 * whether anything changed (a new value is made only then), the second writes.
	 */
	for (pass = 0; pass < 2; pass++) {
		int changed = 0;

		for (i = i0, j = j0; i < mb->m.n || j < f.n;) {
			struct mbox_msg *m = i < mb->m.n ? &mb->m.v[i] : NULL;
			struct ms_rec *r = j < f.n ? &f.rec[j] : NULL;

			if (m != NULL && m->uid == 0) {
				i++;	/* not numbered: nothing to record */
				continue;
			}
			if (m != NULL && (m->state & MSG_GONE)) {
				/* not in the file: its record is the tombstone */
				if (r != NULL && r->uid == m->uid) {
					if (!(r->flags & MS_TOMB)) {
						changed = 1;
						if (pass) {
							r->flags = MS_TOMB;
							r->kwsum = 0;
							r->modseq = m_new;
						}
					}
					if (pass && (gone_min == 0 || r->modseq < gone_min))
						gone_min = r->modseq;
					j++;
				}
				i++;
				continue;
			}
			if (r != NULL && (m == NULL || r->uid < m->uid)) {
				/* a UID the file no longer has: expunged */
				if (!(r->flags & MS_TOMB)) {
					changed = 1;
					if (pass) {
						r->flags = MS_TOMB;
						r->kwsum = 0;
						r->modseq = m_new;
					}
				}
				j++;
				continue;
			}
			{
				uint32_t fl = m->disk_flags & MBOX_FLAGS_STORED;
				uint64_t ks = kwsum(kwh, mb->n_kw, m->disk_keywords);

				if (r == NULL || m->uid < r->uid) {
					/* new to the records */
					changed = 1;
					if (pass) {
						struct ms_rec nr = { m->uid, fl, ks, m_new };

						m->modseq = m_new;
						if (m->uid > top)
							add[n_add++] = nr;
						else
							insert = 1;
					}
					i++;
					continue;
				}
				if ((r->flags & MS_TOMB) || r->flags != fl || r->kwsum != ks) {
					changed = 1;
					if (pass) {
						r->flags = fl;
						r->kwsum = ks;
						r->modseq = m_new;
						m->modseq = m_new;
					}
				} else if (m->modseq > r->modseq) {
					/* the file went back (an old copy): a new value, above the
					 * view's, so nothing this view was told goes back and a
					 * change it made is not lost in the old copy's */
					changed = 1;
					if (pass) {
						r->modseq = m_new;
						m->modseq = m_new;
					}
				} else if (pass) {
					m->modseq = r->modseq;
				}
				i++;
				j++;
			}
		}
		if (pass == 0) {
			if (!changed) {
				/* nothing to write: the view takes the records' values */
				for (i = i0, j = j0; i < mb->m.n && j < f.n; i++) {
					struct mbox_msg *m = &mb->m.v[i];

					while (j < f.n && f.rec[j].uid < m->uid)
						j++;
					if (j < f.n && f.rec[j].uid == m->uid) {
						if (m->state & MSG_GONE) {
							if (gone_min == 0 ||
							    f.rec[j].modseq < gone_min)
								gone_min = f.rec[j].modseq;
						} else {
							m->modseq = f.rec[j].modseq;
						}
					}
				}
				break;
			}
			m_new = clock_us();
			if (m_new <= high)
				m_new = high + 1;
			/* first of all: a writer killed from here on leaves a generation
			 * nobody has, so the next look compares everything */
			f.hdr->gen++;
			add = malloc(((size_t)mb->m.n + 1) * sizeof(*add));
			if (add == NULL)
				goto out;
			ms_crash_point(mb);	/* before the records change */
		}
	}
	if (m_new > high)
		high = m_new;
	if (insert) {
		/* a UID below the last record's that has none: merge all, rewrite */
		uint32_t k = 0, total = f.n;

		all = malloc(((size_t)total + mb->m.n + 1) * sizeof(*all));
		if (all == NULL)
			goto out;
		memcpy(all, f.rec, (size_t)f.n * sizeof(*all));
		for (i = 0, j = 0; i < mb->m.n; i++) {
			const struct mbox_msg *m = &mb->m.v[i];

			if (m->state & MSG_GONE)
				continue;
			while (j < f.n && f.rec[j].uid < m->uid)
				j++;
			if (j < f.n && f.rec[j].uid == m->uid)
				continue;
			all[total + k].uid = m->uid;
			all[total + k].flags = m->disk_flags & MBOX_FLAGS_STORED;
			all[total + k].kwsum = kwsum(kwh, mb->n_kw, m->disk_keywords);
			all[total + k].modseq = m->modseq;
			k++;
		}
		qsort(all, total + k, sizeof(*all), cmp_rec_uid);
		{
			struct ms_hdr h = *f.hdr;

			h.highest = high;
			h.gen++;
			if (ms_replace(mb, &f, &h, all, total + k) < 0)
				goto out;
		}
	} else if (n_add > 0) {
		uint64_t end = sizeof(struct ms_hdr) + (uint64_t)f.n * sizeof(struct ms_rec);
		size_t len = (size_t)n_add * sizeof(*add);

		ms_crash_point(mb);
		if (pwrite(f.fd, add, len, (off_t)end) != (ssize_t)len)
			goto out;
		f.hdr->highest = high;
		(void)munmap(f.map, f.map_len);
		f.map = NULL;
		if (ms_map(&f, end + len) < 0)
			goto out;
	}
	ms_crash_point(mb);
	f.hdr->highest = high;
	/* the tombstones are counted over the whole file: when it was walked anyway */
	if (!partial && ms_trim(mb, &f) < 0)
		goto out;
	mb->ms_gen = f.hdr->gen;
	mb->ms_from = UINT32_MAX;
	mb->ms_highest = f.hdr->highest;
	mb->ms_floor = f.hdr->floor;
	mb->ms_gone_min = gone_min;
	mb->ms_ok = 1;
	ret = 0;
out:
	free(add);
	free(all);
	ms_close(mb, &f);
	if (ret < 0)
		mb->ms_ok = 0;
	return ret;
}

int
mbox_has_modseq(const struct mbox *mb)
{
	return mb->ms_ok;
}

uint64_t
mbox_highest_modseq(const struct mbox *mb)
{
	return mb->ms_ok ? mb->ms_highest : 0;
}

uint64_t
mbox_msg_modseq(const struct mbox *mb, uint32_t i)
{
	return mb->m.v[i].modseq;
}

uint32_t
mbox_next_changed(const struct mbox *mb, uint32_t i, uint64_t since)
{
	for (; i < mb->m.n; i++)
		if (mb->m.v[i].modseq > since)
			return i;
	return mb->m.n;
}

uint64_t
mbox_pending_expunge_modseq(const struct mbox *mb)
{
	return mb->ms_gone_min;
}

int
mbox_expunged_since(struct mbox *mb, uint64_t since, uint32_t **uids_r, size_t *n_r,
    int *all_r)
{
	struct msfile f;
	uint32_t i, *v;
	size_t n = 0;

	*uids_r = NULL;
	*n_r = 0;
	*all_r = 1;
	if (!mb->ms_ok)
		return 0;
	if (ms_open(mb, &f) < 0)
		return 0;	/* everything, then: never too little */
	if (since < f.hdr->floor) {
		ms_close(mb, &f);
		return 0;
	}
	v = malloc(((size_t)f.n + 1) * sizeof(*v));
	if (v == NULL) {
		ms_close(mb, &f);
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		return -1;
	}
	for (i = 0; i < f.n; i++)
		if ((f.rec[i].flags & MS_TOMB) && f.rec[i].modseq > since &&
		    mbox_uid_index(mb, f.rec[i].uid) < 0)
			v[n++] = f.rec[i].uid;
	ms_close(mb, &f);
	*uids_r = v;
	*n_r = n;
	*all_r = 0;
	return 0;
}
