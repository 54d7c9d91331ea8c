/*
 * mbox-gone.c: copies of expunged messages, for the sessions that have not been told yet.
 *
 * When a session expunges, every other session that has the mailbox selected still numbers
 * the removed messages until its next command that may send EXPUNGE (RFC 3501 7.4.1), and
 * its client may FETCH them meanwhile.  RFC 2180 4.1.1 lets the server keep them available
 * for that time; an mbox file cannot, once the bytes are cut out.  So the expunging session
 * first appends each removed message, as the file held it, to a file of kept copies in the
 * state directory (MBOX_GONE_PREFIX plus the hash of the mailbox path, as the cache file),
 * and a session whose view has messages another removed (MSG_GONE) reads them from there.
 * The oldest copies go (the rest is written to a new file renamed over the old one) when
 * new ones would not fit in MBOX_GONE_MAX, or when they are older than MBOX_GONE_TTL_S.
 *
 * Both sides hold the mailbox's own lock: the writer its write lock while it appends or
 * replaces the file, readers the read lock while they map it and read, so the mapping is
 * never cut under a reader (one mapped before a replacement maps the old inode, and the
 * next refresh sees the new one).  Nothing is synced: after a crash no session is
 * left that numbers those messages.  A copy is found by the mailbox's UIDVALIDITY and the
 * UID; a record whose check does not hold ends the file.  A message without a copy (its
 * copy aged out or made room, a mail reader removed it, a copy would not fit) is gone, as
 * before: FETCH leaves it out and says NO [EXPUNGEISSUED].
 */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t
mbox_gone_rec_check(const struct mbox_gone_rec *r)
{
	return mbox_hash64((const unsigned char *)r, offsetof(struct mbox_gone_rec, check),
	    0x9e3779b97f4a7c15ULL);
}

int
mbox_gone_path(const struct mbox *mb, char *buf, size_t size)
{
	return mbox_state_path(mb, MBOX_GONE_PREFIX, buf, size);
}

/* Whether the record at off of map[0..size) is whole; its bytes follow it. */
static int
rec_ok(const unsigned char *map, uint64_t size, uint64_t off, struct mbox_gone_rec *r)
{
	if (size - off < sizeof(*r))
		return 0;
	memcpy(r, map + off, sizeof(*r));
	return r->magic == MBOX_GONE_MAGIC && r->check == mbox_gone_rec_check(r) &&
	    r->len <= size - off - sizeof(*r) && r->hdr_len <= r->len &&
	    r->from_len <= r->hdr_len && r->from_len > 0;
}

/*
 * The file holds whole records up to *end_r (a torn one after them is left over from a
 * session killed while it wrote); the oldest may go so that `add` more bytes fit in max
 * (mb->gone_max) and every copy kept is younger than MBOX_GONE_TTL_S: *keep_r is where
 * the records to keep begin.  0, or -1 if the file cannot be mapped.
 */
static int
plan_keep(int fd, uint64_t size, uint64_t add, uint64_t max, int64_t now, uint64_t *keep_r,
    uint64_t *end_r)
{
	struct mbox_gone_rec r;
	uint64_t off = 0, keep = 0;
	void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -1;
	while (rec_ok(p, size, off, &r)) {
		off += sizeof(r) + r.len;
		if (r.when + MBOX_GONE_TTL_S < now)
			keep = off;	/* too old: goes, and so does all before it */
	}
	/* then the oldest, until the new ones fit */
	while (keep < off && (off - keep) + add > max && rec_ok(p, size, keep, &r))
		keep += sizeof(r) + r.len;
	(void)munmap(p, (size_t)size);
	*keep_r = keep;
	*end_r = off;
	return 0;
}

/*
 * Put records [keep, end) of the file on fd into a new file under path (rename): readers,
 * who map the file under the read lock and compare its inode, never see it shrink in place.
 * Returns the new file's descriptor (the old one is closed), or -1 (fd closed too).
 */
static int
rotate(int fd, const char *path, uint64_t keep, uint64_t end)
{
	char tmp[4200];
	unsigned char buf[65536];
	uint64_t off = keep, to = 0;
	int nfd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	while (nfd >= 0 && off < end) {
		size_t want = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n <= 0 || pwrite(nfd, buf, (size_t)n, (off_t)to) != n) {
			(void)close(nfd);
			(void)unlink(tmp);
			nfd = -1;
			break;
		}
		off += (uint64_t)n;
		to += (uint64_t)n;
	}
	(void)close(fd);
	if (nfd >= 0 && rename(tmp, path) < 0) {
		(void)close(nfd);
		(void)unlink(tmp);
		nfd = -1;
	}
	return nfd;
}

int
mbox_gone_save(struct mbox *mb, const uint8_t *skip)
{
	struct mbox_gone_rec r;
	struct stat st;
	uint64_t add = 0, keep = 0, end = 0, size;
	int64_t now = (int64_t)time(NULL);
	char path[4096];
	uint32_t i;
	int fd;

	if (mb->map == NULL || mbox_gone_path(mb, path, sizeof(path)) < 0)
		return 0;
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];

		if (skip[i] && !(m->state & MSG_GONE) && m->end >= m->body_off &&
		    m->end <= mb->size && m->from_len > 0)
			add += sizeof(r) + (m->end - m->from_off);
	}
	if (add == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	size = (uint64_t)st.st_size;
	if (size > 0 && plan_keep(fd, size, add, mb->gone_max, now, &keep, &end) < 0)
		keep = end = size;	/* unreadable: all goes */
	if (keep > 0) {
		/* the oldest go: the rest to a new file (the lock keeps every reader out) */
		fd = rotate(fd, path, keep, end);
		if (fd < 0)
			goto out;
		size = end - keep;
	} else if (end < size) {
		/* a torn record after the whole ones must not be appended after */
		if (ftruncate(fd, (off_t)end) < 0)
			goto out;
		size = end;
	}
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];
		uint64_t len;

		if (!skip[i] || (m->state & MSG_GONE) || m->end < m->body_off ||
		    m->end > mb->size || m->from_len == 0)
			continue;
		len = m->end - m->from_off;
		if (size + sizeof(r) + len > mb->gone_max)
			continue;	/* the ones that fit */
		memset(&r, 0, sizeof(r));
		r.magic = MBOX_GONE_MAGIC;
		r.uidvalidity = mb->uidvalidity;
		r.uid = m->uid;
		r.from_len = m->from_len;
		r.hdr_len = m->body_off - m->from_off;
		r.len = len;
		r.when = now;
		r.check = mbox_gone_rec_check(&r);
		if (pwrite(fd, &r, sizeof(r), (off_t)size) != (ssize_t)sizeof(r) ||
		    pwrite(fd, mb->map + m->from_off, (size_t)len,
		    (off_t)(size + sizeof(r))) != (ssize_t)len) {
			/* a torn record must not be read: cut it off, or if that fails
			 * too, empty the file (its check fails on the rest anyway) */
			if (ftruncate(fd, (off_t)size) < 0 && ftruncate(fd, 0) < 0)
				mbox_set_error(&mb->err, errno, "kept copies: %s",
				    strerror(errno));
			break;
		}
		size += sizeof(r) + len;
	}
out:
	if (fd >= 0)
		(void)close(fd);
	return 0;
}

static int
cmp_idx(const void *a, const void *b)
{
	const struct mbox_gone_idx *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

void
mbox_gone_unmap(struct mbox *mb)
{
	if (mb->gone_map != NULL)
		munmap((void *)(uintptr_t)mb->gone_map, (size_t)mb->gone_size);
	mb->gone_map = NULL;
	mb->gone_size = 0;
	mb->gone_ino = 0;
	free(mb->gone_idx);
	mb->gone_idx = NULL;
	mb->gone_n = 0;
}

void
mbox_gone_refresh(struct mbox *mb)
{
	struct mbox_gone_rec r;
	struct stat st;
	char path[4096];
	uint64_t off = 0;
	size_t cap = 0;
	void *p;
	int fd;

	if (mbox_gone_path(mb, path, sizeof(path)) < 0 || stat(path, &st) < 0 ||
	    st.st_size < (off_t)sizeof(r)) {
		mbox_gone_unmap(mb);
		return;
	}
	if (mb->gone_map != NULL && (uint64_t)st.st_ino == mb->gone_ino &&
	    (uint64_t)st.st_size == mb->gone_size)
		return;	/* what is mapped is what is there: the file only grows in place, and
			 * is replaced (a new inode) when its oldest copies go */
	mbox_gone_unmap(mb);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(r)) {
		(void)close(fd);
		return;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	(void)close(fd);
	if (p == MAP_FAILED)
		return;
	mb->gone_map = p;
	mb->gone_size = (uint64_t)st.st_size;
	mb->gone_ino = (uint64_t)st.st_ino;
	while (rec_ok(mb->gone_map, mb->gone_size, off, &r)) {
		if (r.uidvalidity == mb->uidvalidity) {
			if (mb->gone_n == cap) {
				struct mbox_gone_idx *nv;

				cap = cap == 0 ? 64 : cap * 2;
				nv = realloc(mb->gone_idx, cap * sizeof(*nv));
				if (nv == NULL)
					break;
				mb->gone_idx = nv;
			}
			mb->gone_idx[mb->gone_n].uid = r.uid;
			mb->gone_idx[mb->gone_n].off = off;
			mb->gone_n++;
		}
		off += sizeof(r) + r.len;
	}
	if (mb->gone_n > 1)
		qsort(mb->gone_idx, mb->gone_n, sizeof(*mb->gone_idx), cmp_idx);
}

int
mbox_gone_find(const struct mbox *mb, uint32_t uid, const unsigned char **base_r,
    struct mbox_msg *m)
{
	uint32_t lo = 0, hi = mb->gone_n;
	struct mbox_gone_rec r;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (mb->gone_idx[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= mb->gone_n || mb->gone_idx[lo].uid != uid ||
	    !rec_ok(mb->gone_map, mb->gone_size, mb->gone_idx[lo].off, &r))
		return 0;
	*base_r = mb->gone_map + mb->gone_idx[lo].off + sizeof(r);
	m->from_off = 0;
	m->from_len = (uint16_t)r.from_len;
	m->body_off = r.hdr_len;
	m->end = r.len;
	return 1;
}

const struct mbox_msg *
mbox_msg_bytes(const struct mbox *mb, uint32_t i, const unsigned char **base_r,
    struct mbox_msg *tmp)
{
	const struct mbox_msg *m = &mb->m.v[i];

	if (!(m->state & MSG_GONE)) {
		if (mb->map == NULL || m->end < m->body_off || m->end > mb->size)
			return NULL;
		*base_r = mb->map;
		return m;
	}
	*tmp = *m;
	if (mb->gone_map == NULL || !mbox_gone_find(mb, m->uid, base_r, tmp))
		return NULL;
	/* the copy is the file's bytes as the expunging session found them: their sizes
	 * are the ones this view has (only hidden metadata lines may differ in length) */
	return tmp;
}

int
mbox_msg_available(const struct mbox *mb, uint32_t i)
{
	const unsigned char *base;
	struct mbox_msg tmp;

	return mbox_msg_bytes(mb, i, &base, &tmp) != NULL;
}
