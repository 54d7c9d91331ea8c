/*
 * mbox-shift.c: rewriting the tail of a mailbox in place, from its end backwards.
 *
 * Most rewrites keep every message and only make headers longer: the first time imapd
 * writes X-UID, Status and X-IMAPbase into a mailbox, or a header that outgrew its
 * padding.  Then every byte moves towards the end of the file (or stays), by the metadata
 * inserted before it, and going from the end backwards (as memmove does) no byte is
 * overwritten before it has been copied.  The file is its own copy: the journal of
 * mbox-journal.c, which first writes the whole new tail elsewhere, costs a second copy of
 * the tail (a gigabyte for a big INBOX) where this costs a few megabytes.
 *
 * Old offsets p go to new ones p + D(p), D >= 0 and growing with p.  The rewrite goes in
 * steps.  Before each, with (r, w) the progress: the old bytes [r, S0) are in their new
 * places [w, S1) on disk, the old bytes [OFF, r) are where they were, and [r, w) holds
 * nothing needed.  A step takes the new bytes [x, w) that come from the old [a, r) (whole
 * headers, any part of a body), writes them and makes them durable; then (a, x) is the
 * progress.  Its write overwrites the old bytes [x, r) when x < r, and those are not yet
 * anywhere else on disk: the step's record saves them first.  A step is about D(r) long,
 * so that it saves little; at least SHIFT_MIN, as each step costs two syncs.
 *
 * The journal (magic MBOX_SHIFT_MAGIC, same name as the others) holds the plan: the
 * mailbox's identity, OFF, S0 and S1, the keywords, UIDVALIDITY and last UID, and per
 * message its old offsets, UID, flags and keywords, which with the old bytes make the new
 * ones (mbox_gen_header()).  It is written whole, synced and renamed into place before the
 * mailbox is touched; its two record slots are written as zeros with it.  Then the file
 * is extended to S1, and each step, with its record in one of the two slots in turn,
 *     writes the saved bytes into the slot (they replace the record before last),
 *     syncs the mailbox (the step before it is durable),
 *     writes the record's header, the progress (r, w) and the saved bytes' checksum, and
 *     syncs the journal,
 *     writes its new bytes.
 * Writes are started at once (sync_file_range), so that each sync finds its data on the
 * way, and the next step's bytes are built while the journal syncs.
 * Recovery takes the record with the highest sequence number whose checksums hold (a torn
 * record leaves the one before it whole, in the other slot), puts its saved bytes back and
 * goes on from its progress with the same code.  With no record the file was at most
 * extended: it goes on from (S0, S1) if [S0, S1) holds only the extension's zeros, and
 * otherwise drops the journal, the mailbox being untouched.  Mail an MDA appended after a
 * crash (having broken our stale dotlock) lies beyond S1 and is kept as it is.
 */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

/* Bytes a step writes: at least SHIFT_MIN (each step costs two syncs, about what saving a
 * megabyte costs), at most SHIFT_MAX (the step is built in memory), D(r) in between. */
#define SHIFT_MIN	(1024 * 1024)
#define SHIFT_MAX	(8 * 1024 * 1024)
/* A step takes a header whole: longer ones go through mbox_tail_replace(). */
#define SHIFT_MAX_HEADER	(256 * 1024)
/* Old bytes between a message's end and the next From_ line (or the end of the file): its
 * separating empty line.  Anything else goes through mbox_tail_replace(). */
#define SHIFT_MAX_GAP	2
/* A record slot read back is at most this big (a step of SHIFT_MAX and a long header, with
 * room to spare). */
#define SHIFT_SLOT_LIMIT	(4 * SHIFT_MAX + 4 * SHIFT_MAX_HEADER)
/* Plan entries a journal may claim, for reading one back (a message takes at least a
 * From_ line of a dozen bytes). */
#define SHIFT_PLAN_DIV	8

struct shdr {
	char magic[8];
	uint64_t dev, ino;
	uint64_t off, s0, s1;
	uint64_t n;		/* messages in the plan */
	uint64_t kw_len;	/* bytes of keyword names, each NUL-terminated */
	uint64_t slot_size;	/* two record slots follow the plan, page-aligned */
	uint32_t uidvalidity, next_uid;
	uint32_t n_kw;
	uint32_t first;		/* the plan's first message carries X-IMAPbase */
	uint32_t plan_crc;	/* of the keyword names and the plan */
	uint32_t hcrc;		/* of the fields above */
};

struct splan {
	uint64_t from_off, body_off, end, keywords;
	uint32_t uid;
	uint32_t hlen;		/* the lengths the layout has: the old bytes of messages */
	uint16_t from_len;	/* already moved are gone when recovery needs them */
	uint8_t flags, state, tlen;
	uint8_t pad[3];
};

struct srec {
	uint64_t seq;
	uint64_t r, w;		/* the progress before the step */
	uint64_t seg_off, seg_len;	/* old bytes saved, following this header */
	uint64_t seg_sum;	/* seg_sum() of the saved bytes */
	uint32_t hcrc;		/* of the fields above */
	uint32_t pad;
};

/*
 * A step's new bytes [x, w), as pieces: generated ones (headers, separating lines) in out,
 * old ones straight from the map where they lie below x (the step does not write there),
 * and from the bounce copy where they lie in [x, r), which the step overwrites: the bytes
 * its record saves, copied out of the map first.  So bodies reach the file with one copy.
 */
enum { PIECE_OUT, PIECE_MAP, PIECE_BOUNCE };

struct spiece {
	uint64_t off, len;	/* in out, the file or the bounce copy */
	int kind;
};

struct sstep {
	uint64_t x, n;		/* where it starts, its length */
	struct wbuf out;
	struct spiece *p;
	size_t np, cap;
	unsigned char *bounce;	/* slot-sized: the old bytes [x, r) */
};

struct shift {
	struct mbox *mb;	/* map (old bytes below r), fd, keywords, UIDVALIDITY */
	const struct mbox_msg *v;	/* the messages, in file order */
	uint32_t n;
	int first;
	uint64_t off, s0, s1;
	uint64_t *nstart;	/* new offset of each message; nstart[n] = s1 */
	uint32_t *hlen;		/* new header length of each */
	uint8_t *tlen;		/* new bytes after its body: its separating line, after a LF
				 * the body lacked */
	uint8_t *verbatim;	/* (NULL in recovery) its new header is its old one with the
				 * metadata block before the empty line: no metadata header
				 * lines, nothing fixed up */
	uint32_t max_hlen;
	uint64_t step;		/* test hook: bytes per step */
	int fixup;		/* see mbox_gen_header() */
	int sum_1;		/* the journal has magic MBOX_SHIFT_MAGIC_1 */
	int wrote;		/* a step began writing the mailbox */
	int jfd;
	const char *jpath;
	uint64_t slot0, slot_size, seq;
	struct sstep st[2];	/* a step's new bytes, and the next one's */
};

static uint64_t
old_next(const struct shift *s, uint32_t k)
{
	return k + 1 < s->n ? s->v[k + 1].from_off : s->s0;
}

static uint64_t
body_new(const struct shift *s, uint32_t k)
{
	return s->nstart[k] + s->hlen[k];
}

/* Room for the per-message layout (filled by measure() or from a journal's plan). */
static int
layout_alloc(struct shift *s)
{
	s->nstart = malloc(((size_t)s->n + 1) * sizeof(*s->nstart));
	s->hlen = malloc((size_t)s->n * sizeof(*s->hlen) + 1);
	s->tlen = malloc((size_t)s->n + 1);
	if (s->nstart == NULL || s->hlen == NULL || s->tlen == NULL) {
		mbox_set_error(&s->mb->err, ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

/* Each message's new header and separator lengths, from its old bytes: 1, 0 if a header is
 * too long for a step, -1 on error. */
static int
measure(struct shift *s)
{
	struct wbuf h = { 0 };
	uint32_t k;
	int ret = 1;

	for (k = 0; k < s->n && ret == 1; k++) {
		const struct mbox_msg *m = &s->v[k];
		uint64_t old = m->body_off - m->from_off;
		size_t meta;
		int fixup = 0;

		if (old > SHIFT_MAX_HEADER) {
			ret = 0;
			break;
		}
		h.n = 0;
		if (mbox_meta_block(s->mb, &h, m, s->first && k == 0) < 0)
			goto nomem;
		meta = h.n;
		if (s->mb->scan_fresh && m->hdr_plain) {
			/* what mbox_gen_header() would give, from the parse just done */
			s->verbatim[k] = 1;
			s->hlen[k] = (uint32_t)(old + meta);
		} else {
			h.n = 0;
			if (mbox_gen_header(s->mb, &h, m, s->first && k == 0, &fixup) < 0)
				goto nomem;
			if (h.n > SHIFT_MAX_HEADER * 2) {
				ret = 0;
				break;
			}
			/* nothing fixed up, so every line kept is whole; the same length, so
			 * none was left out */
			s->verbatim[k] = !fixup && h.n == old + meta;
			s->fixup |= fixup;
			s->hlen[k] = (uint32_t)h.n;
		}
		s->tlen[k] = m->end > m->body_off && s->mb->map[m->end - 1] != '\n' ? 2 : 1;
		if (s->tlen[k] == 2)
			s->fixup = 1;	/* the body gains its LF: its end moves */
	}
	free(h.p);
	return ret;
nomem:
	free(h.p);
	mbox_set_error(&s->mb->err, ENOMEM, "out of memory");
	return -1;
}

/* New offsets from the lengths: 1 if every message keeps D >= 0, else 0.  Checks the
 * plan's offsets too (it may come from a journal file). */
static int
place(struct shift *s)
{
	uint64_t pos = s->off;
	uint32_t k;

	s->max_hlen = 0;
	for (k = 0; k < s->n; k++) {
		const struct mbox_msg *m = &s->v[k];
		uint64_t next = old_next(s, k);

		/* in file order, each ended by at most its separating line */
		if ((k == 0 && m->from_off != s->off) || m->from_len == 0 ||
		    m->body_off < m->from_off + m->from_len || m->end < m->body_off ||
		    next < m->end || next > s->s0 || next - m->end > SHIFT_MAX_GAP ||
		    s->hlen[k] == 0 || s->hlen[k] > SHIFT_MAX_HEADER * 2 ||
		    s->tlen[k] < 1 || s->tlen[k] > 2 ||
		    pos < m->from_off || pos + s->hlen[k] < m->body_off)
			return 0;
		s->nstart[k] = pos;
		if (s->hlen[k] > s->max_hlen)
			s->max_hlen = s->hlen[k];
		pos += s->hlen[k] + (m->end - m->body_off) + s->tlen[k];
	}
	s->nstart[s->n] = pos;
	s->s1 = pos;
	return pos >= s->s0;
}

/* The message whose new bytes hold offset x (x < s1). */
static uint32_t
msg_at(const struct shift *s, uint64_t x)
{
	uint32_t lo = 0, hi = s->n;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->nstart[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The old offset of new offset x if x is a step boundary (the start of a message, of its
 * separating line or any offset in its body, or s1), else UINT64_MAX. */
static uint64_t
old_of(const struct shift *s, uint64_t x)
{
	uint32_t k;
	uint64_t b;

	if (x == s->s1)
		return s->s0;
	if (x < s->off || x > s->s1)
		return UINT64_MAX;
	k = msg_at(s, x);
	b = body_new(s, k);
	if (x == s->nstart[k])
		return s->v[k].from_off;
	if (x >= b && x <= b + (s->v[k].end - s->v[k].body_off))
		return s->v[k].body_off + (x - b);
	return UINT64_MAX;
}

/* The step boundary at or below x */
static uint64_t
snap(const struct shift *s, uint64_t x)
{
	uint32_t k = msg_at(s, x);
	uint64_t b = body_new(s, k), blen = s->v[k].end - s->v[k].body_off;

	if (x < b)
		return s->nstart[k];
	return x <= b + blen ? x : b + blen;
}

static int
piece_add(struct sstep *st, int kind, uint64_t off, uint64_t len)
{
	struct spiece *q = st->np > 0 ? &st->p[st->np - 1] : NULL;

	if (len == 0)
		return 0;
	st->n += len;
	if (q != NULL && q->kind == kind && q->off + q->len == off) {
		q->len += len;
		return 0;
	}
	if (st->np == st->cap) {
		size_t cap = st->cap < 64 ? 64 : st->cap * 2;
		struct spiece *np = realloc(st->p, cap * sizeof(*np));

		if (np == NULL)
			return -1;
		st->p = np;
		st->cap = cap;
	}
	st->p[st->np].off = off;
	st->p[st->np].len = len;
	st->p[st->np].kind = kind;
	st->np++;
	return 0;
}

/* The new bytes [x, w) as st's pieces (both boundaries). */
static int
emit(struct shift *s, struct sstep *st, uint64_t x, uint64_t w)
{
	const unsigned char *map = s->mb->map;
	struct wbuf *out = &st->out;
	uint64_t x0 = x;
	uint32_t k;

	out->n = 0;
	st->np = 0;
	st->n = 0;
	st->x = x;
	for (k = msg_at(s, x); k < s->n && x < w; k++) {
		const struct mbox_msg *m = &s->v[k];
		uint64_t b = body_new(s, k), bend = b + (m->end - m->body_off);
		uint64_t e = s->nstart[k + 1];
		size_t at = out->n;

		if (x == s->nstart[k]) {
			int fixup = 0;

			if (s->verbatim != NULL && s->verbatim[k]) {
				/* as mbox_gen_header() would, without going through the lines */
				if (wbuf_add(out, map + m->from_off,
				    (size_t)(m->body_off - 1 - m->from_off)) < 0 ||
				    mbox_meta_block(s->mb, out, m, s->first && k == 0) < 0 ||
				    wbuf_add(out, "\n", 1) < 0)
					goto nomem;
			} else if (mbox_gen_header(s->mb, out, m, s->first && k == 0,
			    &fixup) < 0)
				goto nomem;
			if (piece_add(st, PIECE_OUT, at, out->n - at) < 0)
				goto nomem;
			x = b;
		}
		if (x < bend && x < w) {
			uint64_t to = bend < w ? bend : w;
			uint64_t src = m->body_off + (x - b), len = to - x;
			uint64_t below = src < x0 ? (x0 - src < len ? x0 - src : len) : 0;

			if (piece_add(st, PIECE_MAP, src, below) < 0 ||
			    piece_add(st, PIECE_BOUNCE, src + below - x0, len - below) < 0)
				goto nomem;
			x = to;
		}
		if (x == bend && w >= e) {
			/* the separating line, after a LF the body lacked */
			at = out->n;
			if (wbuf_add(out, "\n\n", (size_t)(e - bend)) < 0 ||
			    piece_add(st, PIECE_OUT, at, e - bend) < 0)
				goto nomem;
			x = e;
		}
	}
	if (x != w || st->n != w - x0) {
		mbox_set_error(&s->mb->err, EIO, "%s: in-place rewrite out of step", s->mb->path);
		return -1;
	}
	return 0;
nomem:
	mbox_set_error(&s->mb->err, ENOMEM, "out of memory");
	return -1;
}

static const unsigned char *
piece_at(const struct shift *s, const struct sstep *st, const struct spiece *p)
{
	return p->kind == PIECE_OUT ? st->out.p + p->off : p->kind == PIECE_MAP ?
	    s->mb->map + p->off : st->bounce + p->off;
}

/* Write the step's new bytes: a few hundred pieces a call. */
static int
step_write(struct shift *s, const struct sstep *st)
{
	struct mbox *mb = s->mb;
	struct iovec v[256];
	uint64_t at = st->x;
	size_t i = 0;

	while (i < st->np) {
		size_t k, j;
		uint64_t want = 0;
		ssize_t n;

		for (k = 0; i + k < st->np && k < sizeof(v) / sizeof(v[0]); k++) {
			v[k].iov_base = (void *)(uintptr_t)piece_at(s, st, &st->p[i + k]);
			v[k].iov_len = (size_t)st->p[i + k].len;
			want += st->p[i + k].len;
		}
		mbox_crash_point(mb);
		n = pwritev(mb->fd, v, (int)k, (off_t)at);
		if (n < 0 && errno != EINTR)
			return mbox_jerr(mb, "write", mb->path);
		if (n < 0)
			n = 0;
		/* short: the rest of these pieces one by one */
		for (j = 0; j < k && (uint64_t)n < want; j++) {
			uint64_t len = st->p[i + j].len;

			if ((uint64_t)n >= len) {
				n -= (ssize_t)len;
				want -= len;
				at += len;
				continue;
			}
			if (mbox_jpwrite(mb, mb->fd, piece_at(s, st, &st->p[i + j]) + n,
			    (size_t)(len - (uint64_t)n), at + (uint64_t)n, mb->path) < 0)
				return -1;
			want -= len;
			at += len;
			n = 0;
		}
		at += want;
		i += k;
	}
	return 0;
}

static uint32_t
rec_crc(const struct srec *h)
{
	return (uint32_t)crc32(0, (const unsigned char *)h, offsetof(struct srec, hcrc));
}

static uint32_t
shdr_crc(const struct shdr *h)
{
	return (uint32_t)crc32(0, (const unsigned char *)h, offsetof(struct shdr, hcrc));
}

static uint64_t
slot_at(const struct shift *s, uint64_t seq)
{
	return s->slot0 + (seq & 1) * s->slot_size;
}

/*
 * Checksum of a record's saved bytes: it only has to tell a whole record from one a crash
 * cut short (the header written, the bytes not all), and it runs over every saved byte.
 * Four independent lanes of a multiply-xorshift over 8-byte words, so that the multiplies
 * overlap (1.4 times the speed of one lane, mbox_hash64(), which journals of magic
 * MBOX_SHIFT_MAGIC_1 used and recovery still reads).
 */
static uint64_t
seg_sum(const struct shift *s, const unsigned char *p, uint64_t n)
{
	uint64_t h[4] = { 0x9e3779b97f4a7c15ULL ^ n, 1, 2, 3 }, r, v;
	int j;

	if (s->sum_1)
		return mbox_hash64(p, (size_t)n, n);
	for (; n >= 32; p += 32, n -= 32)
		for (j = 0; j < 4; j++) {
			memcpy(&v, p + 8 * j, 8);
			h[j] = (h[j] ^ v) * 0xff51afd7ed558ccdULL;
			h[j] ^= h[j] >> 32;
		}
	r = h[0] ^ h[1] * 3 ^ h[2] * 5 ^ h[3] * 7;
	for (; n > 0; p++, n--)
		r = (r ^ *p) * 0xc4ceb9fe1a85ec53ULL;
	return r ^ (r >> 29);
}

/* Start writing [off, off + len) of fd to the disk, so that the sync that waits for it
 * later finds it done or under way.  Advisory: only the sync makes anything durable. */
static void
kick(int fd, uint64_t off, uint64_t len)
{
	(void)sync_file_range(fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
}

/*
 * Record the progress (r, w) and the old bytes [x, r) of step st, once the step before is
 * on disk; the caller syncs the journal.  The saved bytes go out first, from the step's
 * bounce copy, and are written while the mailbox syncs; the header, whose seg_sum alone
 * makes the record whole, follows the mailbox's sync.  The bytes overwrite the record
 * before last (same slot), which the last one, durable in the other slot, has replaced.
 */
static int
record(struct shift *s, struct sstep *st, uint64_t r, uint64_t w)
{
	struct mbox *mb = s->mb;
	struct srec h = { 0 };
	uint64_t x = st->x, seg = x < r ? r - x : 0, at = slot_at(s, s->seq + 1);

	if (seg > s->slot_size - sizeof(h)) {
		mbox_set_error(&mb->err, EIO, "%s: in-place rewrite out of step", mb->path);
		return -1;
	}
	if (seg > 0) {
		memcpy(st->bounce, mb->map + x, (size_t)seg);
		if (mbox_jpwrite(mb, s->jfd, st->bounce, (size_t)seg, at + sizeof(h),
		    s->jpath) < 0)
			return -1;
		kick(s->jfd, at + sizeof(h), seg);
		h.seg_sum = seg_sum(s, st->bounce, seg);
	}
	/* the step before is on disk before this record says so (the first: the file's
	 * extension) */
	mbox_crash_point(mb);
	if (fdatasync(mb->fd) < 0)
		return mbox_jerr(mb, "fdatasync", mb->path);
	h.seq = ++s->seq;
	h.r = r;
	h.w = w;
	h.seg_off = x;
	h.seg_len = seg;
	h.hcrc = rec_crc(&h);
	if (mbox_jpwrite(mb, s->jfd, (const unsigned char *)&h, sizeof(h), at, s->jpath) < 0)
		return -1;
	kick(s->jfd, at, sizeof(h));
	return 0;
}

/* The step from progress (r, w): it writes the new bytes [*x_r, w), from the old [*a_r, r). */
static int
step_at(struct shift *s, uint64_t r, uint64_t w, uint64_t *x_r, uint64_t *a_r)
{
	uint64_t a, x, want = s->step > 0 ? s->step : w - r < SHIFT_MIN ? SHIFT_MIN :
	    w - r > SHIFT_MAX ? SHIFT_MAX : w - r;
	/* the old bytes a step overwrites, [x, r), fit the record slot: what it holds less a
	 * header (snap may take x back to a message's start) and a separating line */
	uint64_t room = s->slot_size - sizeof(struct srec) - s->max_hlen - 2;

	if (want > w - r + room)
		want = w - r + room;
	x = snap(s, w - s->off > want ? w - want : s->off);
	a = old_of(s, x);
	if (a == UINT64_MAX || a > x || x >= w) {
		mbox_set_error(&s->mb->err, EIO, "%s: in-place rewrite out of step", s->mb->path);
		return -1;
	}
	*x_r = x;
	*a_r = a;
	return 0;
}

/*
 * Steps from progress (r, w) down to OFF.  Each step's new bytes are built while the
 * record of the one before goes to disk: they come from old bytes below that step's
 * source, which no write before them touches.
 */
static int
shift_run(struct shift *s, uint64_t r, uint64_t w)
{
	struct mbox *mb = s->mb;
	uint64_t x = 0, a = 0, nx = 0, na = 0;
	int cur = 0, i;

	for (i = 0; i < 2; i++)
		if (s->st[i].bounce == NULL) {
			s->st[i].bounce = malloc((size_t)s->slot_size);
			if (s->st[i].bounce == NULL) {
				mbox_set_error(&mb->err, ENOMEM, "out of memory");
				return -1;
			}
		}
	if (w > s->off && (step_at(s, r, w, &x, &a) < 0 || emit(s, &s->st[0], x, w) < 0))
		return -1;
	while (w > s->off) {
		struct sstep *st = &s->st[cur];

		if (record(s, st, r, w) < 0)
			return -1;
		if (x > s->off && (step_at(s, a, x, &nx, &na) < 0 ||
		    emit(s, &s->st[!cur], nx, x) < 0))
			return -1;
		mbox_crash_point(mb);
		if (fdatasync(s->jfd) < 0)
			return mbox_jerr(mb, "fdatasync", s->jpath);
		s->wrote = 1;
		if (step_write(s, st) < 0)
			return -1;
		/* under way while the next step's old bytes are saved */
		kick(mb->fd, x, st->n);
		r = a;
		w = x;
		x = nx;
		a = na;
		cur = !cur;
	}
	return mbox_jsync(mb, mb->fd, mb->path);
}

static void
shift_free(struct shift *s)
{
	int i;

	free(s->nstart);
	free(s->hlen);
	free(s->tlen);
	free(s->verbatim);
	for (i = 0; i < 2; i++) {
		free(s->st[i].out.p);
		free(s->st[i].p);
		free(s->st[i].bounce);
		memset(&s->st[i], 0, sizeof(s->st[i]));
	}
	s->nstart = NULL;
	s->hlen = NULL;
	s->tlen = NULL;
	s->verbatim = NULL;
	if (s->jfd >= 0)
		(void)close(s->jfd);
	s->jfd = -1;
}

/*
 * Where the two record slots go, after the plan.  A step saves the old bytes it overwrites
 * beyond the gap w - r: at most SHIFT_MIN (a longer step is one of D(r), which saves none),
 * a header more (snap) and a separating line; with the test hook, its fixed length; never
 * more than the old bytes there are.
 */
static void
slots_place(struct shift *s, uint64_t plan_end)
{
	uint64_t save = s->step > 0 ? s->step : SHIFT_MIN;

	if (save > s->s0 - s->off)
		save = s->s0 - s->off;	/* no more old bytes than that */

	s->slot0 = (plan_end + 4095) & ~(uint64_t)4095;
	s->slot_size = (sizeof(struct srec) + save + s->max_hlen + 2 + 4095) & ~(uint64_t)4095;
}

/* Write the plan as a complete journal under its final name; leaves s->jfd open. */
static int
plan_write(struct shift *s, char *fin, size_t fin_size)
{
	struct mbox *mb = s->mb;
	struct shdr h = { 0 };
	struct wbuf b = { 0 };
	char tmp[4096];
	uint32_t k, i;
	size_t plan_end;
	int ret = -1;

	memcpy(h.magic, MBOX_SHIFT_MAGIC, 8);
	h.dev = (uint64_t)mb->dev;
	h.ino = (uint64_t)mb->ino;
	h.off = s->off;
	h.s0 = s->s0;
	h.s1 = s->s1;
	h.n = s->n;
	h.uidvalidity = mb->uidvalidity;
	h.next_uid = mb->next_uid;
	h.n_kw = mb->n_kw;
	h.first = (uint32_t)s->first;
	if (wbuf_add(&b, &h, sizeof(h)) < 0)
		goto nomem;
	for (i = 0; i < mb->n_kw; i++)
		if (wbuf_add(&b, mb->kw[i], strlen(mb->kw[i]) + 1) < 0)
			goto nomem;
	h.kw_len = b.n - sizeof(h);
	if (wbuf_reserve(&b, (size_t)s->n * sizeof(struct splan)) < 0)
		goto nomem;
	for (k = 0; k < s->n; k++) {
		const struct mbox_msg *m = &s->v[k];
		struct splan p = { m->from_off, m->body_off, m->end, m->keywords, m->uid,
			s->hlen[k], m->from_len, m->flags, m->state, s->tlen[k], { 0 } };

		memcpy(b.p + b.n, &p, sizeof(p));
		b.n += sizeof(p);
	}
	slots_place(s, b.n);
	h.slot_size = s->slot_size;
	/* the slots written as zeros now: records then overwrite blocks the file has, and
	 * their syncs need no allocation committed (four times faster on ext4) */
	if (wbuf_reserve(&b, (size_t)(s->slot0 + 2 * s->slot_size - b.n)) < 0)
		goto nomem;
	memset(b.p + b.n, 0, (size_t)(s->slot0 + 2 * s->slot_size - b.n));
	plan_end = b.n;
	b.n = (size_t)(s->slot0 + 2 * s->slot_size);
	h.plan_crc = (uint32_t)crc32(0, b.p + sizeof(h), (uInt)(plan_end - sizeof(h)));
	h.hcrc = shdr_crc(&h);
	memcpy(b.p, &h, sizeof(h));
	s->jfd = mbox_jcreate(mb, tmp, fin, fin_size < sizeof(tmp) ? fin_size : sizeof(tmp));
	if (s->jfd < 0)
		goto out;
	if (mbox_jpwrite(mb, s->jfd, b.p, b.n, 0, tmp) < 0) {
		(void)unlink(tmp);
		goto out;
	}
	if (mbox_jpublish(mb, s->jfd, tmp, fin) < 0)
		goto out;
	s->jpath = fin;
	ret = 0;
	goto out;
nomem:
	mbox_set_error(&mb->err, ENOMEM, "out of memory");
out:
	free(b.p);
	return ret;
}

int
mbox_shift_tail(struct mbox *mb, uint32_t from)
{
	struct shift s = { 0 };
	char fin[4096];
	uint32_t k;
	int ret;

	s.jfd = -1;
	if (mb->journal_dir == NULL || mb->fd < 0 || from >= mb->m.n ||
	    mb->shift_batch == UINT64_MAX)
		return 0;
	for (k = from; k < mb->m.n; k++)
		if (mb->m.v[k].state & MSG_GONE)
			return 0;
	s.mb = mb;
	s.v = mb->m.v + from;
	s.n = mb->m.n - from;
	s.first = from == 0 && !mb->base.pseudo;
	s.off = s.v[0].from_off;
	s.s0 = mb->size;
	s.step = mb->shift_batch;
	s.verbatim = malloc((size_t)s.n + 1);
	if (s.verbatim == NULL || layout_alloc(&s) < 0) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		ret = -1;
		goto out;
	}
	ret = measure(&s);
	mb->scan_fresh = 0;	/* headers change from here on */
	if (ret == 1)
		ret = place(&s);
	if (ret <= 0)
		goto out;
	ret = -1;
	if (plan_write(&s, fin, sizeof(fin)) < 0)
		goto out;
	if (s.s1 > s.s0) {
		mbox_crash_point(mb);
		if (ftruncate(mb->fd, (off_t)s.s1) < 0) {
			mbox_jerr(mb, "extend", mb->path);
			goto out;
		}
	}
	if (shift_run(&s, s.s0, s.s1) < 0) {
		if (!s.wrote) {
			/* nothing but the extension happened: undo it and drop the journal
			 * (best effort; the next open would do the same) */
			if (ftruncate(mb->fd, (off_t)s.s0) == 0)
				(void)unlink(fin);
		}
		goto out;
	}
	if (mbox_jdrop(mb, s.jpath) < 0)
		goto out;
	/* the view: the offsets follow from the layout unless bytes were fixed up */
	if (s.fixup)
		ret = 2;
	else {
		for (k = 0; k < s.n; k++) {
			struct mbox_msg *m = &mb->m.v[from + k];
			uint64_t blen = m->end - m->body_off;

			m->from_off = s.nstart[k];
			m->body_off = body_new(&s, k);
			m->end = m->body_off + blen;
		}
		ret = 1;
	}
out:
	shift_free(&s);
	return ret;
}

/* Recovery: read the plan back (messages in *v_r, keyword names in *kw_r, the new header
 * and separator lengths into s's layout): 1, 0 if it is not a complete plan of ours, -1 on
 * error. */
static int
plan_read(struct mbox *mb, int jfd, struct shdr *h, struct shift *s, struct mbox_msg **v_r,
    char **kw_r, uint64_t fsize)
{
	struct stat st;
	unsigned char *buf = NULL;
	struct mbox_msg *v = NULL;
	uint64_t len, k, i;
	char *kw;

	*v_r = NULL;
	*kw_r = NULL;
	if (fstat(jfd, &st) < 0 || mbox_jpread(jfd, (unsigned char *)h, sizeof(*h), 0) < 0 ||
	    (memcmp(h->magic, MBOX_SHIFT_MAGIC, 8) != 0 &&
	    memcmp(h->magic, MBOX_SHIFT_MAGIC_1, 8) != 0) || h->hcrc != shdr_crc(h) ||
	    h->dev != (uint64_t)mb->dev || h->ino != (uint64_t)mb->ino ||
	    h->off > h->s0 || h->s0 > h->s1 || h->n == 0 || h->n > h->s0 / SHIFT_PLAN_DIV + 1 ||
	    h->n_kw > MBOX_MAX_KEYWORDS || h->kw_len > (uint64_t)st.st_size ||
	    h->n * sizeof(struct splan) > (uint64_t)st.st_size || h->s0 > fsize)
		return 0;
	len = h->kw_len + h->n * sizeof(struct splan);
	if (sizeof(*h) + len > (uint64_t)st.st_size || h->n > UINT32_MAX)
		return 0;
	s->mb = mb;
	s->n = (uint32_t)h->n;
	buf = malloc((size_t)len + 1);
	v = calloc((size_t)h->n, sizeof(*v));
	if (buf == NULL || v == NULL || layout_alloc(s) < 0) {
		free(buf);
		free(v);
		shift_free(s);
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		return -1;
	}
	if (mbox_jpread(jfd, buf, (size_t)len, sizeof(*h)) < 0 ||
	    (uint32_t)crc32(0, buf, (uInt)len) != h->plan_crc)
		goto bad;
	/* keyword names: n_kw NUL-terminated strings filling kw_len */
	kw = (char *)buf;
	for (i = 0, k = 0; k < h->n_kw; k++) {
		const char *z = memchr(kw + i, '\0', (size_t)(h->kw_len - i));

		if (z == NULL || z == kw + i)
			goto bad;
		i = (uint64_t)(z - kw) + 1;
	}
	if (i != h->kw_len)
		goto bad;
	for (k = 0; k < h->n; k++) {
		struct splan p;

		memcpy(&p, buf + h->kw_len + k * sizeof(p), sizeof(p));
		v[k].from_off = p.from_off;
		v[k].body_off = p.body_off;
		v[k].end = p.end;
		v[k].keywords = p.keywords;
		v[k].uid = p.uid;
		v[k].from_len = p.from_len;
		v[k].flags = p.flags;
		v[k].state = p.state;
		s->hlen[k] = p.hlen;
		s->tlen[k] = p.tlen;
		if (h->n_kw < 64 && (p.keywords >> h->n_kw) != 0)
			goto bad;
	}
	*v_r = v;
	*kw_r = (char *)buf;
	return 1;
bad:
	free(buf);
	free(v);
	shift_free(s);
	return 0;
}

/* The newest whole record, or 0 if none. */
static int
record_read(struct shift *s, struct srec *best, unsigned char **seg_r)
{
	uint64_t i;
	int found = 0;

	*seg_r = NULL;
	for (i = 0; i < 2; i++) {
		struct srec h;
		unsigned char *seg;

		if (mbox_jpread(s->jfd, (unsigned char *)&h, sizeof(h), slot_at(s, i)) < 0 ||
		    h.hcrc != rec_crc(&h) || (h.seq & 1) != i ||
		    h.seg_len > s->slot_size - sizeof(h) || (found && h.seq <= best->seq))
			continue;
		seg = malloc((size_t)h.seg_len + 1);
		if (seg == NULL) {
			mbox_set_error(&s->mb->err, ENOMEM, "out of memory");
			free(*seg_r);
			return -1;
		}
		if (mbox_jpread(s->jfd, seg, (size_t)h.seg_len, slot_at(s, i) + sizeof(h)) < 0 ||
		    (h.seg_len > 0 ? seg_sum(s, seg, h.seg_len) : 0) != h.seg_sum) {
			free(seg);
			continue;
		}
		free(*seg_r);
		*seg_r = seg;
		*best = h;
		found = 1;
	}
	return found;
}

/* [s0, s1) holds only zeros (the extension, nothing else written) */
static int
extended(struct shift *s, uint64_t fsize)
{
	unsigned char buf[65536];
	uint64_t pos = s->s0;

	if (fsize < s->s1)
		return 0;
	while (pos < s->s1) {
		size_t n = s->s1 - pos < sizeof(buf) ? (size_t)(s->s1 - pos) : sizeof(buf), i;

		if (mbox_jpread(s->mb->fd, buf, n, pos) < 0)
			return -1;
		for (i = 0; i < n; i++)
			if (buf[i] != 0)
				return 0;
		pos += n;
	}
	return 1;
}

int
mbox_shift_recover(struct mbox *mb, int jfd, const char *fin)
{
	struct shdr h;
	struct srec rec = { 0 };
	struct shift s = { 0 };
	struct mbox t = *mb;	/* the plan's view of the mailbox, for mbox_gen_header() */
	struct mbox_msg *v = NULL;
	char *kwbuf = NULL, *kw;
	unsigned char *seg = NULL;
	struct stat st;
	uint64_t fsize, r, w;
	void *map = MAP_FAILED;
	unsigned i;
	int ret = -1, got;

	s.jfd = -1;
	if (fstat(mb->fd, &st) < 0)
		return mbox_jerr(mb, "fstat", mb->path);
	fsize = (uint64_t)st.st_size;
	got = plan_read(mb, jfd, &h, &s, &v, &kwbuf, fsize);
	if (got < 0)
		return -1;
	if (got == 0)
		goto drop;	/* not a complete journal of ours: nothing reached the mailbox */
	map = mmap(NULL, (size_t)h.s0, PROT_READ, MAP_SHARED, mb->fd, 0);
	if (map == MAP_FAILED) {
		mbox_jerr(mb, "mmap", mb->path);
		goto out;
	}
	t.map = map;
	t.size = h.s0;
	t.uidvalidity = h.uidvalidity;
	t.next_uid = h.next_uid;
	t.n_kw = h.n_kw;
	for (i = 0, kw = kwbuf; i < h.n_kw; i++, kw += strlen(kw) + 1)
		t.kw[i] = kw;
	s.mb = &t;
	s.v = v;
	s.first = h.first != 0;
	s.sum_1 = memcmp(h.magic, MBOX_SHIFT_MAGIC_1, 8) == 0;
	s.off = h.off;
	s.s0 = h.s0;
	s.step = mb->shift_batch;
	/* the record first: its saved bytes may be what the layout has to read */
	s.jfd = jfd;
	s.jpath = fin;
	s.slot0 = (sizeof(h) + h.kw_len + h.n * sizeof(struct splan) + 4095) & ~(uint64_t)4095;
	s.slot_size = h.slot_size;
	if (h.slot_size < sizeof(rec) || h.slot_size > SHIFT_SLOT_LIMIT)
		goto mismatch;
	got = record_read(&s, &rec, &seg);
	if (got < 0)
		goto out_t;
	if (got > 0) {
		if (fsize < h.s1 || rec.r > h.s0 || rec.w > h.s1 || rec.seg_off < h.off ||
		    (rec.seg_len > 0 && rec.seg_off + rec.seg_len != rec.r))
			goto mismatch;
		/* the bytes the interrupted step may have overwritten, as they were */
		if (rec.seg_len > 0 && mbox_jpwrite(&t, mb->fd, seg, (size_t)rec.seg_len,
		    rec.seg_off, mb->path) < 0)
			goto out_t;
		s.seq = rec.seq;
	}
	if (place(&s) != 1 || s.s1 != h.s1)
		goto mismatch;
	/* the journal's slots, whatever size this process would choose */
	if (h.slot_size < sizeof(rec) + s.max_hlen + 3)
		goto mismatch;
	if (got == 0) {
		int e = extended(&s, fsize);

		if (e < 0) {
			mbox_jerr(&t, "read", mb->path);
			goto out_t;
		}
		if (e == 0)
			goto drop_t;	/* never extended: the mailbox was not touched */
		r = s.s0;
		w = s.s1;
	} else {
		r = rec.r;
		w = rec.w;
		if (old_of(&s, w) != r)
			goto mismatch;
	}
	if (shift_run(&s, r, w) < 0 || mbox_jdrop(mb, s.jpath) < 0)
		goto out_t;
	ret = 0;
	goto out_t;
mismatch:
	mbox_set_error(&t.err, EIO, "%s: journal %s does not match the mailbox", mb->path, fin);
	goto out_t;
drop_t:
	s.jfd = -1;
	shift_free(&s);
	mb->crash_count = t.crash_count;
	goto drop;
out_t:
	s.jfd = -1;	/* the caller's */
	shift_free(&s);
	mb->crash_count = t.crash_count;
	if (ret < 0 && t.err.code != 0)
		mb->err = t.err;
	goto out;
drop:
	ret = mbox_jdrop(mb, fin);
out:
	shift_free(&s);
	if (map != MAP_FAILED)
		munmap(map, (size_t)h.s0);
	free(v);
	free(kwbuf);
	free(seg);
	return ret;
}
