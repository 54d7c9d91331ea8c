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
 *
 * Both sides hold the mailbox's own lock: the writer its write lock while it appends (and
 * while it empties the file when it has grown past MBOX_GONE_MAX or its oldest copy is
 * older than MBOX_GONE_TTL_S), readers the read lock while they map it and read, so the
 * mapping is never cut under a reader.  Nothing is synced: after a crash no session is
 * left that numbers those messages.  A copy is found by the mailbox's UIDVALIDITY and the
 * UID; a record whose check does not hold ends the file.  A message without a copy (the
 * file was emptied, a mail reader removed it, a copy would not fit) is simply gone, as
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
	const unsigned char *p = (const unsigned char *)mb->path;
	uint64_t h = mbox_hash64(p, strlen(mb->path), 0x1234567887654321ULL);
	int n;

	if (mb->journal_dir == NULL)
		return -1;
	n = snprintf(buf, size, "%s/%s%016llx", mb->journal_dir, MBOX_GONE_PREFIX,
	    (unsigned long long)h);
	return n > 0 && (size_t)n < size ? 0 : -1;
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

/* Where the whole records of the file (size bytes) end. */
static uint64_t
valid_end(int fd, uint64_t size)
{
	struct mbox_gone_rec r;
	uint64_t off = 0;
	void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return 0;	/* unreadable: start afresh */
	while (rec_ok(p, size, off, &r))
		off += sizeof(r) + r.len;
	(void)munmap(p, (size_t)size);
	return off;
}

int
mbox_gone_save(struct mbox *mb, const uint8_t *skip)
{
	struct mbox_gone_rec r;
	struct stat st;
	uint64_t room, first_when = 0;
	int64_t now = (int64_t)time(NULL);
	char path[4096];
	uint32_t i;
	int fd;

	if (mb->map == NULL || mbox_gone_path(mb, path, sizeof(path)) < 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	/* a session killed while it wrote leaves a torn record, which ends the file for
	 * readers: what comes after it must not be appended after it */
	if (st.st_size > 0) {
		off_t end = (off_t)valid_end(fd, (uint64_t)st.st_size);

		if (end < st.st_size) {
			if (ftruncate(fd, end) < 0)
				goto out;
			st.st_size = end;
		}
	}
	if (st.st_size >= (off_t)sizeof(r) && pread(fd, &r, sizeof(r), 0) == sizeof(r) &&
	    r.magic == MBOX_GONE_MAGIC && r.check == mbox_gone_rec_check(&r))
		first_when = (uint64_t)r.when;
	/* too full or too old: start afresh (the lock keeps every reader out meanwhile) */
	if (st.st_size > 0 && ((uint64_t)st.st_size >= MBOX_GONE_MAX ||
	    (int64_t)first_when + MBOX_GONE_TTL_S < now)) {
		if (ftruncate(fd, 0) < 0)
			goto out;
		st.st_size = 0;
	}
	room = MBOX_GONE_MAX - (uint64_t)st.st_size;
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];
		uint64_t len;

		if (!skip[i] || (m->state & MSG_GONE) || m->end < m->body_off ||
		    m->end > mb->size || m->from_len == 0)
			continue;
		len = m->end - m->from_off;
		if (len + sizeof(r) > room)
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
		if (pwrite(fd, &r, sizeof(r), st.st_size) != (ssize_t)sizeof(r) ||
		    pwrite(fd, mb->map + m->from_off, (size_t)len,
		    st.st_size + (off_t)sizeof(r)) != (ssize_t)len) {
			/* a torn record must not be read: cut it off, or if that fails
			 * too, empty the file (its check fails on the rest anyway) */
			if (ftruncate(fd, st.st_size) < 0 && ftruncate(fd, 0) < 0)
				mbox_set_error(&mb->err, errno, "kept copies: %s",
				    strerror(errno));
			break;
		}
		st.st_size += (off_t)(sizeof(r) + len);
		room -= sizeof(r) + len;
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
		return;	/* what is mapped is what is there (it only grows or is emptied) */
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
