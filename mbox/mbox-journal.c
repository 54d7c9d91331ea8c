/*
 * mbox-journal.c: replacing the tail of an mbox file so that a crash at any instant loses
 * nothing.
 *
 * The new tail C (from offset OFF to the new size S1) is first written completely to a
 * journal file, synced, and renamed to its final name; only then is the mailbox touched:
 *   grow the file to S1 if it grows (synced), copy C to OFF, sync, shrink to S1 if it
 *   shrinks, sync, remove the journal.
 * The journal holds everything needed to redo the copy, so the next open can always finish
 * it.  What it must find out is which bytes beyond our region someone else added after a
 * crash (an MDA that broke our stale dotlock and delivered), so that they are kept:
 *   - shrinking (S1 < S0): bytes [S1, S0) are never written by the copy; while they still
 *     match the checksum of the old ones the file was not yet shrunk, and new mail, if any,
 *     starts at S0; otherwise the change was complete and anything after S1 is new mail.
 *   - growing (S1 >= S0): until the file is S1 long nothing was copied and the change is
 *     simply dropped (not done); once it is, new mail starts at S1.
 * New mail found so is carried along by writing a new journal whose tail is C plus that
 * mail, which replaces the old one atomically.
 *
 * An expunge that collapses a range out of the file (mbox-collapse.h) writes a journal of
 * another kind under the same name, told apart by its magic; see "Collapse journal" below.
 */
#include "mbox/mbox-private.h"
#include "mbox/mbox-collapse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zlib.h>

#define JOURNAL_MAGIC	"IMAPDJ01"
#define JOURNAL_CHUNK	(1024 * 1024)

struct jhdr {
	char magic[8];
	uint64_t off, s0, s1, dev, ino;
	uint32_t crc_new;	/* of C */
	uint32_t crc_old;	/* of the old bytes [s1, s0) when shrinking */
	uint32_t hcrc;		/* of the fields above */
	uint32_t pad;
};

void
mbox_crash_point(struct mbox *mb)
{
	/* every write-class call on the mailbox or its journal passes here: the unlock
	 * gives the file an mtime of its own (mbox_unlock_nowait) */
	mb->touched = 1;
#ifdef IMAPD_TEST_HOOKS
	if (mb->crash_after > 0 && ++mb->crash_count >= mb->crash_after)
		_exit(99);
#endif
}

int
mbox_journal_name(const struct mbox *mb, char *buf, size_t size, int tmp)
{
	int n = snprintf(buf, size, "%s/.imapd-journal-%llx-%llx%s", mb->journal_dir,
	    (unsigned long long)mb->dev, (unsigned long long)mb->ino, tmp ? ".tmp" : "");

	return n > 0 && (size_t)n < size ? 0 : -1;
}

int
mbox_jerr(struct mbox *mb, const char *what, const char *path)
{
	int e = errno != 0 ? errno : EIO;

	mbox_set_error(&mb->err, e, "%s %s: %s", what, path, strerror(e));
	return -1;
}

static int
write_all(struct mbox *mb, int fd, const unsigned char *p, size_t n, const char *path)
{
	while (n > 0) {
		ssize_t w;

		mbox_crash_point(mb);
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mbox_jerr(mb, "write", path);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
mbox_jpwrite(struct mbox *mb, int fd, const unsigned char *p, size_t n, uint64_t off,
    const char *path)
{
	while (n > 0) {
		ssize_t w;

		mbox_crash_point(mb);
		w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mbox_jerr(mb, "write", path);
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int
mbox_jpread(int fd, unsigned char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int
mbox_jsync(struct mbox *mb, int fd, const char *path)
{
	mbox_crash_point(mb);
	if (fsync(fd) < 0)
		return mbox_jerr(mb, "fsync", path);
	return 0;
}

int
mbox_jsync_dir(struct mbox *mb)
{
	int fd = open(mb->journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return mbox_jerr(mb, "open", mb->journal_dir);
	r = mbox_jsync(mb, fd, mb->journal_dir);
	(void)close(fd);
	return r;
}

int
mbox_jcreate(struct mbox *mb, char *tmp, char *fin, size_t size)
{
	int fd;

	if (mb->journal_dir == NULL || mbox_journal_name(mb, tmp, size, 1) < 0 ||
	    mbox_journal_name(mb, fin, size, 0) < 0) {
		mbox_set_error(&mb->err, EINVAL, "no usable journal directory");
		return -1;
	}
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mbox_jerr(mb, "create", tmp);
	return fd;
}

int
mbox_jpublish(struct mbox *mb, int fd, const char *tmp, const char *fin)
{
	if (mbox_jsync(mb, fd, tmp) < 0)
		goto fail;
	mbox_crash_point(mb);
	if (rename(tmp, fin) < 0) {
		mbox_jerr(mb, "rename", tmp);
		goto fail;
	}
	if (mbox_jsync_dir(mb) < 0) {
		/* the mailbox is untouched: whether or not the name is on disk */
		(void)unlink(fin);
		return -1;
	}
	return 0;
fail:
	(void)unlink(tmp);
	return -1;
}

int
mbox_jdrop(struct mbox *mb, const char *fin)
{
	mbox_crash_point(mb);
	if (unlink(fin) < 0)
		return mbox_jerr(mb, "unlink", fin);
	return mbox_jsync_dir(mb);
}

/* crc32 of file bytes [a, b) */
static int
crc_range(int fd, uint64_t a, uint64_t b, unsigned char *buf, uint32_t *crc_r)
{
	uLong crc = crc32(0, NULL, 0);

	while (a < b) {
		size_t n = b - a < JOURNAL_CHUNK ? (size_t)(b - a) : JOURNAL_CHUNK;

		if (mbox_jpread(fd, buf, n, a) < 0)
			return -1;
		crc = crc32(crc, buf, (uInt)n);
		a += n;
	}
	*crc_r = (uint32_t)crc;
	return 0;
}

static uint32_t
hdr_crc(const struct jhdr *h)
{
	return (uint32_t)crc32(0, (const unsigned char *)h, offsetof(struct jhdr, hcrc));
}

/*
 * Write a complete journal for replacing [off, s0) with the generated tail; on success
 * *jfd_r is the open journal (read-write) and *h its header.
 */
static int
journal_write(struct mbox *mb, uint64_t off, uint64_t s0, mbox_tail_gen_fn *gen, void *ctx,
    int *jfd_r, struct jhdr *h)
{
	char tmp[4096], fin[4096];
	struct wbuf b = { 0 };
	uLong crc = crc32(0, NULL, 0);
	uint64_t len = 0;
	unsigned char *buf = NULL;
	int fd = -1, r;

	*jfd_r = -1;
	fd = mbox_jcreate(mb, tmp, fin, sizeof(tmp));
	if (fd < 0)
		return -1;
	memset(h, 0, sizeof(*h));
	if (write_all(mb, fd, (const unsigned char *)h, sizeof(*h), tmp) < 0)
		goto fail;
	for (;;) {
		r = gen(ctx, &b);
		if (r < 0) {
			if (mb->err.code == 0)
				mbox_set_error(&mb->err, ENOMEM, "out of memory");
			goto fail;
		}
		if (b.n >= JOURNAL_CHUNK || (r == 0 && b.n > 0)) {
			crc = crc32(crc, b.p, (uInt)b.n);
			len += b.n;
			if (write_all(mb, fd, b.p, b.n, tmp) < 0)
				goto fail;
			b.n = 0;
		}
		if (r == 0)
			break;
	}
	memcpy(h->magic, JOURNAL_MAGIC, 8);
	h->off = off;
	h->s0 = s0;
	h->s1 = off + len;
	h->dev = (uint64_t)mb->dev;
	h->ino = (uint64_t)mb->ino;
	h->crc_new = (uint32_t)crc;
	if (h->s1 < s0) {
		buf = malloc(JOURNAL_CHUNK);
		if (buf == NULL || crc_range(mb->fd, h->s1, s0, buf, &h->crc_old) < 0) {
			mbox_jerr(mb, "read", mb->path);
			goto fail;
		}
	}
	h->hcrc = hdr_crc(h);
	if (mbox_jpwrite(mb, fd, (const unsigned char *)h, sizeof(*h), 0, tmp) < 0)
		goto fail;
	if (mbox_jpublish(mb, fd, tmp, fin) < 0)
		goto out;
	free(b.p);
	free(buf);
	*jfd_r = fd;
	return 0;
fail:
	(void)unlink(tmp);
out:
	free(b.p);
	free(buf);
	(void)close(fd);
	return -1;
}

/* Carry out a journal that is on disk. */
static int
journal_play(struct mbox *mb, int jfd, const struct jhdr *h)
{
	char fin[4096];
	unsigned char *buf = malloc(JOURNAL_CHUNK);
	uint64_t done = 0, len = h->s1 - h->off;
	int ret = -1;

	if (buf == NULL) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		return -1;
	}
	if (mbox_journal_name(mb, fin, sizeof(fin), 0) < 0)
		goto out;
	if (h->s1 > h->s0) {
		mbox_crash_point(mb);
		if (ftruncate(mb->fd, (off_t)h->s1) < 0) {
			mbox_jerr(mb, "extend", mb->path);
			goto out;
		}
		if (mbox_jsync(mb, mb->fd, mb->path) < 0)
			goto out;
	}
	while (done < len) {
		size_t n = len - done < JOURNAL_CHUNK ? (size_t)(len - done) : JOURNAL_CHUNK;
		loff_t in = (loff_t)(sizeof(*h) + done), outp = (loff_t)(h->off + done);
		ssize_t c;

		/* in the kernel where it can (no copy through user space), else by hand */
		mbox_crash_point(mb);
		c = copy_file_range(jfd, &in, mb->fd, &outp, n, 0);
		if (c > 0) {
			done += (uint64_t)c;
			continue;
		}
		if (c < 0 && errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
		    errno != EOPNOTSUPP && errno != EINTR) {
			mbox_jerr(mb, "copy journal into", mb->path);
			goto out;
		}
		if (mbox_jpread(jfd, buf, n, sizeof(*h) + done) < 0) {
			mbox_jerr(mb, "read", fin);
			goto out;
		}
		if (mbox_jpwrite(mb, mb->fd, buf, n, h->off + done, mb->path) < 0)
			goto out;
		done += n;
	}
	if (mbox_jsync(mb, mb->fd, mb->path) < 0)
		goto out;
	if (h->s1 < h->s0) {
		mbox_crash_point(mb);
		if (ftruncate(mb->fd, (off_t)h->s1) < 0) {
			mbox_jerr(mb, "truncate", mb->path);
			goto out;
		}
		if (mbox_jsync(mb, mb->fd, mb->path) < 0)
			goto out;
	}
	if (mbox_jdrop(mb, fin) < 0)
		goto out;
	ret = 0;
out:
	free(buf);
	return ret;
}

int
mbox_tail_replace(struct mbox *mb, uint64_t off, mbox_tail_gen_fn *gen, void *ctx)
{
	struct jhdr h;
	int jfd, r;

	if (journal_write(mb, off, mb->size, gen, ctx, &jfd, &h) < 0)
		return -1;
	r = journal_play(mb, jfd, &h);
	(void)close(jfd);
	if (r < 0)
		return -1;
	return mbox_remap(mb);
}

/* Recovery generator: the old journal's tail, then the file's [from, to). */
struct recgen {
	struct mbox *mb;
	int jfd;
	uint64_t jpos, jend;	/* in the journal */
	uint64_t fpos, fend;	/* in the mailbox */
};

static int
rec_gen(void *ctx, struct wbuf *b)
{
	struct recgen *g = ctx;
	unsigned char *buf;
	size_t n;
	int fd;
	uint64_t *pos;

	if (g->jpos < g->jend) {
		fd = g->jfd;
		pos = &g->jpos;
		n = g->jend - g->jpos < JOURNAL_CHUNK ? (size_t)(g->jend - g->jpos) :
		    JOURNAL_CHUNK;
	} else if (g->fpos < g->fend) {
		fd = g->mb->fd;
		pos = &g->fpos;
		n = g->fend - g->fpos < JOURNAL_CHUNK ? (size_t)(g->fend - g->fpos) :
		    JOURNAL_CHUNK;
	} else {
		return 0;
	}
	if (wbuf_reserve(b, n) < 0)
		return -1;
	buf = b->p + b->n;
	if (mbox_jpread(fd, buf, n, *pos) < 0) {
		mbox_jerr(g->mb, "read", "journal or mailbox");
		return -1;
	}
	b->n += n;
	*pos += n;
	return 1;
}

/* Growing change: were the bytes [s0, s1) written by us (zeros of the extension or bytes
 * of C)?  Then the file had been extended. */
static int
extension_done(struct mbox *mb, int jfd, const struct jhdr *h, uint64_t fsize)
{
	unsigned char *a, *c;
	uint64_t pos = h->s0;
	int ok = 1;

	if (fsize < h->s1)
		return 0;
	if (h->s1 == h->s0)
		return 1;
	a = malloc(JOURNAL_CHUNK);
	c = malloc(JOURNAL_CHUNK);
	if (a == NULL || c == NULL) {
		free(a);
		free(c);
		return -1;
	}
	while (ok && pos < h->s1) {
		size_t n = h->s1 - pos < JOURNAL_CHUNK ? (size_t)(h->s1 - pos) : JOURNAL_CHUNK, i;

		if (mbox_jpread(mb->fd, a, n, pos) < 0 ||
		    mbox_jpread(jfd, c, n, sizeof(*h) + (pos - h->off)) < 0) {
			ok = -1;
			break;
		}
		for (i = 0; i < n; i++)
			if (a[i] != 0 && a[i] != c[i]) {
				ok = 0;
				break;
			}
		pos += n;
	}
	free(a);
	free(c);
	return ok;
}

int
mbox_journal_pending(struct mbox *mb)
{
	char fin[4096];
	struct stat st;

	if (mb->journal_dir == NULL || mb->fd < 0 || fstat(mb->fd, &st) < 0)
		return 0;
	mb->dev = st.st_dev;
	mb->ino = st.st_ino;
	if (mbox_journal_name(mb, fin, sizeof(fin), 0) == 0 && access(fin, F_OK) == 0)
		return 1;
	/* an unfinished journal file: nothing reached the mailbox, but it is litter */
	return mbox_journal_name(mb, fin, sizeof(fin), 1) == 0 && access(fin, F_OK) == 0;
}

int
mbox_journal_recover(struct mbox *mb)
{
	char fin[4096], tmp[4096];
	struct stat st;
	struct jhdr h;
	unsigned char *buf = NULL;
	uint64_t fsize, app;
	uint32_t crc;
	int jfd, ret = -1, r;

	if (mb->journal_dir == NULL || mb->fd < 0)
		return 0;
	if (fstat(mb->fd, &st) < 0)
		return mbox_jerr(mb, "fstat", mb->path);
	mb->dev = st.st_dev;
	mb->ino = st.st_ino;
	fsize = (uint64_t)st.st_size;
	if (mbox_journal_name(mb, fin, sizeof(fin), 0) < 0 || mbox_journal_name(mb, tmp, sizeof(tmp), 1) < 0)
		return 0;
	(void)unlink(tmp);	/* never renamed: the change had not started */
	jfd = open(fin, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (jfd < 0)
		return errno == ENOENT ? 0 : mbox_jerr(mb, "open", fin);
	if (mbox_jpread(jfd, (unsigned char *)h.magic, sizeof(h.magic), 0) == 0 &&
	    memcmp(h.magic, MBOX_COLLAPSE_MAGIC, sizeof(h.magic)) == 0) {
		ret = mbox_collapse_recover(mb, jfd, fin);
		(void)close(jfd);
		return ret;
	}
	if (memcmp(h.magic, MBOX_SHIFT_MAGIC, sizeof(h.magic)) == 0 ||
	    memcmp(h.magic, MBOX_SHIFT_MAGIC_1, sizeof(h.magic)) == 0) {
		ret = mbox_shift_recover(mb, jfd, fin);
		(void)close(jfd);
		return ret;
	}
	buf = malloc(JOURNAL_CHUNK);
	if (buf == NULL) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		goto out;
	}
	if (mbox_jpread(jfd, (unsigned char *)&h, sizeof(h), 0) < 0 ||
	    memcmp(h.magic, JOURNAL_MAGIC, 8) != 0 || h.hcrc != hdr_crc(&h) ||
	    h.dev != (uint64_t)mb->dev || h.ino != (uint64_t)mb->ino || h.s1 < h.off ||
	    crc_range(jfd, sizeof(h), sizeof(h) + (h.s1 - h.off), buf, &crc) < 0 ||
	    crc != h.crc_new) {
		/* Not a complete journal of ours (it is only renamed into place when complete):
		 * nothing of it reached the mailbox. */
		(void)unlink(fin);
		ret = 0;
		goto out;
	}
	if (h.s1 < h.s0) {
		if (fsize >= h.s0 && crc_range(mb->fd, h.s1, h.s0, buf, &crc) == 0 &&
		    crc == h.crc_old)
			app = h.s0;		/* not shrunk yet */
		else
			app = fsize >= h.s1 ? UINT64_MAX : 0;	/* done */
	} else {
		r = extension_done(mb, jfd, &h, fsize);
		if (r < 0) {
			mbox_jerr(mb, "read", mb->path);
			goto out;
		}
		app = r ? h.s1 : 0;	/* 0: never started, drop it */
	}
	if (app == 0 || app == UINT64_MAX) {
		ret = mbox_jdrop(mb, fin);
		goto out;
	}
	if (fsize > app) {
		/* Mail delivered after the crash: redo with C followed by that mail. */
		struct recgen g = { mb, jfd, sizeof(h), sizeof(h) + (h.s1 - h.off), app, fsize };
		struct jhdr h2;
		int jfd2;

		if (journal_write(mb, h.off, fsize, rec_gen, &g, &jfd2, &h2) < 0)
			goto out;
		(void)close(jfd);
		jfd = jfd2;
		h = h2;
	}
	ret = journal_play(mb, jfd, &h);
out:
	free(buf);
	(void)close(jfd);
	return ret;
}

/*
 * Collapse journal (mbox-collapse.h).  The step's states, in the order they happen:
 *   P  the file as before (possibly with mail an MDA appended after s0);
 *   Q  the range [ca, ca + len) collapsed, K's new header maybe partly written at a;
 *   D  the new header written: done.
 * The journal is complete on disk before P ends, and holds all that is needed to go from
 * P or Q to D, so recovery always finishes the step.  It tells P from Q by a probe window
 * past the new header, where the two states hold different bytes: chosen when the journal
 * is written as the first offset p >= a + nh_len with O[p] != O[p + len] (O the file
 * before), both windows kept.  The file's size is no witness: an MDA that broke our stale
 * dotlock after a crash may have appended exactly len bytes.  In P the collapse is done
 * again (and if the filesystem now refuses it, nothing had changed and the journal is
 * dropped), in Q and D the header is (re)written; it lies wholly before the probe, so a
 * header written before the collapse reached the disk (power loss) does not confuse P.
 */
struct cjhdr {
	char magic[8];
	uint64_t dev, ino;
	uint64_t a, ca, len;
	uint64_t s0;		/* file size before */
	uint64_t probe;		/* probe window offset (the same in both states) */
	uint32_t nh_len, probe_len;
	unsigned char probe_old[MBOX_COLLAPSE_PROBE_LEN];	/* state P */
	unsigned char probe_new[MBOX_COLLAPSE_PROBE_LEN];	/* states Q and D */
	uint32_t crc_nh;
	uint32_t hcrc;		/* of the fields above */
};

static uint32_t
chdr_crc(const struct cjhdr *h)
{
	return (uint32_t)crc32(0, (const unsigned char *)h, offsetof(struct cjhdr, hcrc));
}

uint64_t
mbox_collapse_block(struct mbox *mb)
{
	struct statfs sf;
	struct stat st;
	uint64_t bs;

	if (mb->fd < 0 || fstatfs(mb->fd, &sf) < 0 || fstat(mb->fd, &st) < 0)
		return 0;
	/* ext4 and XFS (and f2fs) implement FALLOC_FL_COLLAPSE_RANGE; elsewhere a try would
	 * only cost a journal before the rewrite */
	if (sf.f_type != EXT4_SUPER_MAGIC && sf.f_type != XFS_SUPER_MAGIC &&
	    sf.f_type != F2FS_SUPER_MAGIC)
		return 0;
	bs = (uint64_t)sf.f_bsize > (uint64_t)st.st_blksize ? (uint64_t)sf.f_bsize :
	    (uint64_t)st.st_blksize;
	/* a power of two: any multiple of it is also one of the smaller unit */
	if (bs < 512 || bs > 1024 * 1024 || (bs & (bs - 1)) != 0)
		return 0;
	return bs;
}

/* The probe (see above) in the mapped file; 0 found, 1 none near enough. */
static int
find_probe(const struct mbox *mb, const struct mbox_collapse *c, struct cjhdr *h)
{
	uint64_t p = c->a + c->nh_len, lim;

	if (c->len >= mb->size || p + c->len >= mb->size)
		return 1;
	lim = mb->size - c->len;
	if (lim - p > MBOX_COLLAPSE_PROBE_SEARCH)
		lim = p + MBOX_COLLAPSE_PROBE_SEARCH;
	while (p < lim && mb->map[p] == mb->map[p + c->len])
		p++;
	if (p >= lim)
		return 1;
	h->probe = p;
	h->probe_len = mb->size - c->len - p < MBOX_COLLAPSE_PROBE_LEN ?
	    (uint32_t)(mb->size - c->len - p) : MBOX_COLLAPSE_PROBE_LEN;
	memcpy(h->probe_old, mb->map + p, h->probe_len);
	memcpy(h->probe_new, mb->map + p + c->len, h->probe_len);
	return 0;
}

/* The collapse itself: 0 done, 1 refused by the filesystem, -1 error. */
static int
do_collapse(struct mbox *mb, uint64_t off, uint64_t len)
{
	mbox_crash_point(mb);
	if (fallocate(mb->fd, FALLOC_FL_COLLAPSE_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)
		return 1;
	mbox_jerr(mb, "collapse range of", mb->path);
	return -1;
}

/* From state Q: the header, then sync. */
static int
write_header(struct mbox *mb, const struct cjhdr *h, const unsigned char *nh)
{
	if (mbox_jpwrite(mb, mb->fd, nh, h->nh_len, h->a, mb->path) < 0)
		return -1;
	return mbox_jsync(mb, mb->fd, mb->path);
}

int
mbox_collapse_run(struct mbox *mb, const struct mbox_collapse *c)
{
	char tmp[4096], fin[4096];
	struct cjhdr h;
	int fd, r;

	if (c->nh_len == 0 || c->nh_len > MBOX_COLLAPSE_MAX_HEADER || c->len == 0 ||
	    c->ca < c->a || c->a + c->nh_len < c->ca)
		return 1;
	memset(&h, 0, sizeof(h));
	if (find_probe(mb, c, &h) != 0)
		return 1;
	memcpy(h.magic, MBOX_COLLAPSE_MAGIC, 8);
	h.dev = (uint64_t)mb->dev;
	h.ino = (uint64_t)mb->ino;
	h.a = c->a;
	h.ca = c->ca;
	h.len = c->len;
	h.s0 = mb->size;
	h.nh_len = (uint32_t)c->nh_len;
	h.crc_nh = (uint32_t)crc32(0, c->nh, (uInt)c->nh_len);
	h.hcrc = chdr_crc(&h);

	fd = mbox_jcreate(mb, tmp, fin, sizeof(tmp));
	if (fd < 0)
		return -1;
	if (write_all(mb, fd, (const unsigned char *)&h, sizeof(h), tmp) < 0 ||
	    write_all(mb, fd, c->nh, c->nh_len, tmp) < 0) {
		(void)close(fd);
		(void)unlink(tmp);
		return -1;
	}
	r = mbox_jpublish(mb, fd, tmp, fin);
	(void)close(fd);
	if (r < 0)
		return -1;

	/* P -> Q; no fsync between: a header that reaches the disk first is harmless */
	r = do_collapse(mb, h.ca, h.len);
	if (r < 0)
		return -1;
	if (r > 0) {
		/* nothing changed: drop the journal and let the caller rewrite */
		if (mbox_jdrop(mb, fin) < 0)
			return -1;
		return 1;
	}
	if (write_header(mb, &h, c->nh) < 0 || mbox_jdrop(mb, fin) < 0)
		return -1;
	return mbox_remap(mb) < 0 ? -1 : 0;
}

int
mbox_collapse_recover(struct mbox *mb, int jfd, const char *fin)
{
	struct cjhdr h;
	struct stat st;
	unsigned char *nh = NULL, win[MBOX_COLLAPSE_PROBE_LEN];
	uint64_t fsize;
	int ret = -1, r;

	if (fstat(mb->fd, &st) < 0)
		return mbox_jerr(mb, "fstat", mb->path);
	fsize = (uint64_t)st.st_size;
	if (mbox_jpread(jfd, (unsigned char *)&h, sizeof(h), 0) < 0 ||
	    memcmp(h.magic, MBOX_COLLAPSE_MAGIC, 8) != 0 || h.hcrc != chdr_crc(&h) ||
	    h.dev != (uint64_t)mb->dev || h.ino != (uint64_t)mb->ino ||
	    h.nh_len == 0 || h.nh_len > MBOX_COLLAPSE_MAX_HEADER || h.len == 0 ||
	    h.probe_len == 0 || h.probe_len > MBOX_COLLAPSE_PROBE_LEN ||
	    h.ca < h.a || h.a + h.nh_len > h.probe || h.probe + h.len + h.probe_len > h.s0)
		goto drop;	/* not a complete journal of ours: it never took effect */
	nh = malloc(h.nh_len);
	if (nh == NULL) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		return -1;
	}
	if (mbox_jpread(jfd, nh, h.nh_len, sizeof(h)) < 0 ||
	    (uint32_t)crc32(0, nh, h.nh_len) != h.crc_nh)
		goto drop;
	if (fsize < h.probe + h.probe_len || mbox_jpread(mb->fd, win, h.probe_len, h.probe) < 0)
		goto drop;	/* neither state: the file was replaced since */
	if (fsize >= h.s0 && memcmp(win, h.probe_old, h.probe_len) == 0) {
		r = do_collapse(mb, h.ca, h.len);
		if (r < 0)
			goto out;
		if (r > 0)
			goto drop;	/* refused now, so it was refused then: unchanged */
	} else if (memcmp(win, h.probe_new, h.probe_len) != 0) {
		goto drop;
	}
	if (write_header(mb, &h, nh) < 0)
		goto out;
drop:
	ret = mbox_jdrop(mb, fin);
out:
	free(nh);
	return ret;
}
