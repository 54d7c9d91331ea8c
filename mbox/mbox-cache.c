/*
 * mbox-cache.c: the per-mailbox cache file, so that re-opening a big mailbox that has not
 * changed (or only grew) does not parse it again.
 *
 * The cache holds what mbox_scan() computed for one state of the file: the message records,
 * the base and the keyword names, with the file's stamp (device, inode, size, mtime, ctime)
 * and the checksum of its last bytes.  It lives in the journal directory, which is private
 * to the user, and is disposable: anything unexpected in it (another version, another
 * machine's layout, a bad checksum, a record that does not fit the file) makes the open
 * parse the file as if there were no cache, and the next save replaces it.
 *
 * Layout (native byte order and struct layout, checked by the header's size and byte-order
 * fields):
 *   struct cache_hdr
 *   keyword names, each NUL-terminated, padded with NULs to a multiple of 8 (kw_len bytes)
 *   n_msgs records of struct mbox_msg as the scan leaves them (UIDs as a hint only)
 *   struct cache_tail: a checksum of everything before it (mbox_cache_sum(): the header, the
 *   names, then the records in groups of CACHE_CHUNK), n_msgs again
 *
 * Trust: a cache whose stamp equals the file's is used as it is, except when it was saved
 * "racy" (the clock had not moved past the file's ctime when the view was read, so a change
 * in the same tick could have kept the stamp).  A racy cache, or one of a file that grew
 * with the same checksum at the cached size, is used as the known prefix the way
 * mbox_sync() uses its own view: every header re-read, each message still at its offset,
 * the rest parsed (mbox_scan_incremental()).
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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define CACHE_MAGIC	"IMAPDch\n"
#define CACHE_VERSION	5u	/* 2: mbox_msg_fp() replaced crc32; 3: modseq; 4: mbox_cache_sum()
				 * replaced crc32, the mod-sequence records' generation; 5: mbox_cache_sum()
				 * a sum of sums */
#define CACHE_ENDIAN	0x01020304u
/* Bytes of keyword names at most: every name with its NUL, padded. */
#define CACHE_KW_MAX	(MBOX_MAX_KEYWORDS * (MBOX_KEYWORD_MAX_LEN + 1) + 8)
/* The shortest message a file can hold is its From_ line ("From x\n"... at least 6
 * bytes) plus the LF before the next one: a count above size / 7 + 1 is a lie. */
#define CACHE_MIN_MSG	7
/* Records normalized and written per write() call. */
#define CACHE_CHUNK	256
/* Longest wait for the clock to pass a racy view's ctime: one tick is 1-10 ms; longer
 * means a file system with other clocks (NFS), where the cache stays racy. */
#define CACHE_SETTLE_MS	12

/* Every field sized explicitly: no padding, so the checksum covers no stray bytes. */
struct cache_hdr {
	unsigned char magic[8];
	uint32_t version;
	uint32_t endian;
	uint32_t hdr_size;	/* sizeof(struct cache_hdr) */
	uint32_t msg_size;	/* sizeof(struct mbox_msg) */
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
	int64_t ctime_sec;
	int64_t ctime_nsec;
	uint32_t tail_crc;
	uint32_t racy;
	uint32_t base_found;
	uint32_t base_pseudo;
	uint32_t base_uidvalidity;
	uint32_t base_last_uid;
	uint64_t base_pseudo_end;
	uint32_t next_uid;	/* every record's UID is below it */
	uint32_t n_msgs;
	uint32_t n_kw;
	uint32_t kw_len;
	uint64_t ms_gen;	/* the mod-sequence records' generation the records' modseqs
				 * are from (mbox-modseq.c); 0: not known */
};

struct cache_tail {
	uint32_t crc;
	uint32_t n_msgs;
};

_Static_assert(sizeof(struct cache_hdr) % 8 == 0, "records follow the header aligned");
_Static_assert(sizeof(struct mbox_msg) % 8 == 0, "records are read straight into msgvec");

/* FNV-1a: the cache is named after the mailbox path, so a file that another program
 * replaces (a new inode) keeps one cache file instead of leaving one per inode. */
static uint64_t
path_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int
cache_path(const struct mbox *mb, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s%016llx", mb->journal_dir, MBOX_CACHE_PREFIX_NAME,
	    (unsigned long long)path_hash(mb->path));

	return n > 0 && (size_t)n < size ? 0 : -1;
}

void
mbox_view_stamp(const struct mbox *mb, struct mbox_stamp *s_r)
{
	memset(s_r, 0, sizeof(*s_r));
	s_r->dev = (uint64_t)mb->dev;
	s_r->ino = (uint64_t)mb->ino;
	s_r->size = mb->size;
	s_r->mtime_sec = mb->mtime_sec;
	s_r->mtime_nsec = mb->mtime_nsec;
	s_r->ctime_sec = mb->ctime_sec;
	s_r->ctime_nsec = mb->ctime_nsec;
	s_r->racy = mb->view_racy;
}

static int
stamp_eq(const struct mbox_stamp *a, const struct mbox_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec &&
	    a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec &&
	    a->racy == b->racy;
}

static int
read_full(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int
mbox_write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The cache's checksum, one piece at a time: a Fletcher-style pair of sums in four 64-bit
 * lanes over 32-byte blocks (each lane adds its word, then adds that running total to a
 * second total, so a block's position counts as well as its bytes), folded and mixed with
 * the rest through mbox_hash64().  It guards against a damaged file (a torn or zeroed
 * page, blocks out of order), not against an adversary: the file is the user's own.  On
 * SSE2 the lanes are two pairs of vector adds, the same arithmetic as the plain loop.
 * Over a 10 MB cache (100,000 messages) this is about 0.2 ms once the pages are mapped;
 * the multiply-xorshift lanes it replaced took 1.6 ms and zlib's crc32 5-10 ms.
 */
uint32_t
mbox_cache_sum(uint32_t sum, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t a[4] = { 0x9e3779b97f4a7c15ULL ^ sum, 0xc2b2ae3d27d4eb4fULL,
	    0x165667b19e3779f9ULL, 0x27d4eb2f165667c5ULL }, s[4] = { 0, 0, 0, 0 }, h;
	int k;

#if defined(__SSE2__)
	{
		__m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)a);
		__m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(a + 2));
		__m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();

		for (; n >= 32; b += 32, n -= 32) {
			a0 = _mm_add_epi64(a0, _mm_loadu_si128((const __m128i *)(const void *)b));
			a1 = _mm_add_epi64(a1,
			    _mm_loadu_si128((const __m128i *)(const void *)(b + 16)));
			s0 = _mm_add_epi64(s0, a0);
			s1 = _mm_add_epi64(s1, a1);
		}
		_mm_storeu_si128((__m128i *)(void *)a, a0);
		_mm_storeu_si128((__m128i *)(void *)(a + 2), a1);
		_mm_storeu_si128((__m128i *)(void *)s, s0);
		_mm_storeu_si128((__m128i *)(void *)(s + 2), s1);
	}
#endif
	for (; n >= 32; b += 32, n -= 32) {
		uint64_t w[4];

		memcpy(w, b, 32);
		for (k = 0; k < 4; k++) {
			a[k] += w[k];
			s[k] += a[k];
		}
	}
	h = 0;
	for (k = 0; k < 4; k++)
		h = (h ^ a[k] ^ (s[k] << 29 | s[k] >> 35)) * 0xff51afd7ed558ccdULL;
	h = mbox_hash64(b, n, h ^ (uint64_t)n);
	return (uint32_t)(h ^ (h >> 32));
}

/* Header fields that do not depend on the records: is this a cache of this file, and are
 * its sizes possible? */
static int
check_hdr(const struct mbox *mb, const struct cache_hdr *h, uint64_t file_size)
{
	uint64_t total;

	if (memcmp(h->magic, CACHE_MAGIC, 8) != 0 || h->version != CACHE_VERSION ||
	    h->endian != CACHE_ENDIAN || h->hdr_size != sizeof(*h) ||
	    h->msg_size != sizeof(struct mbox_msg))
		return -1;
	if (h->dev != (uint64_t)mb->dev || h->ino != (uint64_t)mb->ino || h->size == 0 ||
	    h->size > mb->size || h->racy > 1)
		return -1;
	if (h->n_kw > MBOX_MAX_KEYWORDS || h->kw_len > CACHE_KW_MAX || h->kw_len % 8 != 0 ||
	    (uint64_t)h->n_msgs > h->size / CACHE_MIN_MSG + 1)
		return -1;
	total = sizeof(*h) + h->kw_len + (uint64_t)h->n_msgs * sizeof(struct mbox_msg) +
	    sizeof(struct cache_tail);
	if (total != file_size)
		return -1;
	if (h->base_found > 1 || h->base_pseudo > 1 || (h->base_pseudo && !h->base_found) ||
	    (h->base_found && h->base_uidvalidity == 0))
		return -1;
	if (h->base_pseudo ? h->base_pseudo_end == 0 || h->base_pseudo_end > h->size :
	    h->base_pseudo_end != 0)
		return -1;
	/* a file with bytes holds a message or is only the pseudo message */
	if (h->n_msgs == 0 && !h->base_pseudo)
		return -1;
	if (h->base_pseudo && h->n_msgs == 0 && h->base_pseudo_end != h->size)
		return -1;
	return 0;
}

/* The keyword block: n_kw names, each valid and distinct (mbox_keyword_lookup() checks
 * both), then only NULs.  Adds them to mb in order.  0 or -1. */
static int
load_keywords(struct mbox *mb, const unsigned char *p, size_t len, uint32_t n_kw)
{
	size_t off = 0;
	uint32_t i;

	for (i = 0; i < n_kw; i++) {
		const unsigned char *z = memchr(p + off, '\0', len - off);
		size_t n;

		if (z == NULL)
			return -1;
		n = (size_t)(z - (p + off));
		if (mbox_keyword_lookup(mb, (const char *)p + off, n, 1) != (int)i ||
		    mb->n_kw != i + 1)
			return -1;
		off += n + 1;
	}
	if (len - off >= 8)	/* padding is less than 8 bytes */
		return -1;
	for (; off < len; off++)
		if (p[off] != '\0')
			return -1;
	return 0;
}

/* One record as the scan makes it, inside the cached size, after the one before (whose
 * end and UID are in *prev_end and *prev_uid, 0 for the first). */
static int
check_record(const struct cache_hdr *h, const struct mbox_msg *m, uint32_t i,
    uint64_t *prev_end, uint32_t *prev_uid)
{
	uint64_t kw_mask = h->n_kw >= 64 ? UINT64_MAX : (1ULL << h->n_kw) - 1;
	uint64_t hdr_bytes;

	if (i == 0) {
		if (m->from_off != (h->base_pseudo ? h->base_pseudo_end : 0))
			return -1;
	} else if (m->from_off <= *prev_end) {
		return -1;
	}
	if (m->from_len < 6 || m->from_len > MBOX_FROM_LINE_MAX + 1 ||
	    m->from_off > h->size || m->from_len > h->size - m->from_off ||
	    m->body_off < m->from_off + m->from_len || m->end < m->body_off ||
	    m->end > h->size)
		return -1;
	hdr_bytes = m->body_off - m->from_off - m->from_len;
	if (m->hdr_vsize > 2 * hdr_bytes || m->body_bare_lf > m->end - m->body_off)
		return -1;
	if ((m->flags & ~MBOX_FLAGS_STORED) != 0 || m->disk_flags != m->flags ||
	    m->keywords != m->disk_keywords || (m->keywords & ~kw_mask) != 0)
		return -1;
	if ((m->state & ~(MSG_UID_STORED | MSG_STATUS_O | MSG_NO_BLANK)) != 0 ||
	    m->x_uid_ok > 1)
		return -1;
	if (m->uid <= *prev_uid || m->uid >= h->next_uid)
		return -1;
	*prev_uid = m->uid;
	*prev_end = m->end;
	return 0;
}

static void
unload(struct mbox *mb)
{
	unsigned i;

	msgvec_free(&mb->m);
	memset(&mb->base, 0, sizeof(mb->base));
	for (i = 0; i < mb->n_kw; i++)
		free(mb->kw[i]);
	mb->n_kw = 0;
}

int
mbox_cache_load(struct mbox *mb)
{
	char path[4096];
	struct cache_hdr h;
	struct cache_tail t;
	struct stat st;
	struct mbox_stamp view, cached;
	struct msgvec v = { 0 };
	struct msgvec nv = { 0 };
	struct mbox_base nb;
	const unsigned char *kw;
	uint64_t prev_end = 0;
	uint32_t crc, i, j, k, prev_uid = 0;
	int fd, r, plain = 1;

	if (mb->journal_dir == NULL || mb->fd < 0 || mb->size == 0 ||
	    mb->size < mb->cache_min_size || mb->m.n != 0 || mb->n_kw != 0 ||
	    cache_path(mb, path, sizeof(path)) < 0)
		return MBOX_CACHE_NONE;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return MBOX_CACHE_NONE;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(h) ||
	    read_full(fd, &h, sizeof(h)) < 0 || check_hdr(mb, &h, (uint64_t)st.st_size) < 0)
		goto reject;
	/* a file that shrank, or changed within the cached size, is not this one */
	if (mbox_tail_crc(mb->map, h.size) != h.tail_crc)
		goto reject;
	/*
	 * The records stay where they are: a private, writable mapping of the file is the
	 * vector the mailbox keeps (pages the session changes are copied, the rest are the
	 * page cache's), so a big mailbox costs no copy and no zeroed memory.  A save
	 * replaces the file by rename and never writes into it, so the mapping cannot
	 * change under us.  msgvec_push() moves the vector to the heap when mail arrives.
	 */
	v.map_len = (size_t)st.st_size;
	v.map = mmap(NULL, v.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (v.map == MAP_FAILED) {
		v.map = NULL;
		goto reject;
	}
	(void)close(fd);
	fd = -1;
	kw = (const unsigned char *)v.map + sizeof(h);
	v.v = (struct mbox_msg *)(void *)((unsigned char *)v.map + sizeof(h) + h.kw_len);
	v.n = v.cap = h.n_msgs;
	memcpy(&t, (const unsigned char *)(v.v + h.n_msgs), sizeof(t));
	crc = mbox_cache_sum(0, &h, sizeof(h));
	crc = mbox_cache_sum(crc, kw, h.kw_len);
	/* in the groups the save wrote them in, the last one perhaps empty; each group
	 * checked while it is in the processor's cache */
	for (i = 0; i < h.n_msgs; i += k) {
		k = h.n_msgs - i < CACHE_CHUNK ? h.n_msgs - i : CACHE_CHUNK;
		crc = mbox_cache_sum(crc, v.v + i, (size_t)k * sizeof(*v.v));
		for (j = i; j < i + k; j++) {
			const struct mbox_msg *m = &v.v[j];

			if (check_record(&h, m, j, &prev_end, &prev_uid) < 0)
				goto reject;
			if ((m->state & (MSG_UID_STORED | MSG_STATUS_O)) !=
			    (MSG_UID_STORED | MSG_STATUS_O) || !m->x_uid_ok || m->x_uid != m->uid)
				plain = 0;
		}
	}
	if (h.n_msgs % CACHE_CHUNK == 0)
		crc = mbox_cache_sum(crc, v.v + i, 0);
	if (t.crc != crc || t.n_msgs != h.n_msgs)
		goto reject;
	if (load_keywords(mb, kw, h.kw_len, h.n_kw) < 0)
		goto reject;
	mb->m = v;
	mb->clean_below = 0;
	memset(&v, 0, sizeof(v));
	mb->base.found = (int)h.base_found;
	mb->base.pseudo = (int)h.base_pseudo;
	mb->base.uidvalidity = h.base_uidvalidity;
	mb->base.last_uid = h.base_last_uid;
	mb->base.pseudo_end = h.base_pseudo_end;

	mbox_view_stamp(mb, &view);
	memset(&cached, 0, sizeof(cached));
	cached.dev = h.dev;
	cached.ino = h.ino;
	cached.size = h.size;
	cached.mtime_sec = h.mtime_sec;
	cached.mtime_nsec = h.mtime_nsec;
	cached.ctime_sec = h.ctime_sec;
	cached.ctime_nsec = h.ctime_nsec;
	cached.racy = view.racy;
	/* A cache read after the clock passed the file's ctime, and the file's stamp still the
	 * same: nothing can have changed since (a change would have a later ctime). */
	if (!h.racy && stamp_eq(&view, &cached)) {
		mb->cache_stamp = view;
		mb->cache_plain = plain;
		/* the mod-sequences as they were: if nobody has written the records since
		 * (the generation says), nothing needs comparing (mbox_modseq_update()) */
		if (h.ms_gen != 0) {
			mb->ms_ok = 1;
			mb->ms_gen = h.ms_gen;
			mb->ms_from = UINT32_MAX;
		}
		return MBOX_CACHE_EXACT;
	}
	/* grown, or racy: the cached messages are the known prefix, as in mbox_sync() */
	r = mbox_scan_incremental(mb, &nv, &nb);
	if (r == 1) {
		msgvec_free(&mb->m);
		mb->m = nv;
		mb->clean_below = 0;
		mb->base = nb;
		return MBOX_CACHE_PREFIX;
	}
	msgvec_free(&nv);
	unload(mb);
	return MBOX_CACHE_NONE;
reject:
	if (fd >= 0)
		(void)close(fd);
	msgvec_free(&v);
	unload(mb);
	return MBOX_CACHE_NONE;
}

void
mbox_cache_settle(struct mbox *mb)
{
	struct timespec ms = { 0, 1000000 };
	int i;

	if (mb->journal_dir == NULL || mb->fd < 0 || mb->size < mb->cache_min_size)
		return;	/* no cache will be saved */
	for (i = 0; i < CACHE_SETTLE_MS && mb->view_racy; i++) {
		(void)nanosleep(&ms, NULL);
		if (mbox_clock_past_ctime(mb))
			mb->view_racy = 0;
	}
}

/* The record as the scan of the file would leave it: what the file says, not what the
 * session changed (flags not yet written, \Recent, messages being appended). */
static void
normalize(struct mbox_msg *m)
{
	/*
	 * The fingerprint is the parse's (From_ line and visible header size): the writers
	 * keep it whenever they change either (a tail rewrite and a collapse take the
	 * re-read one, an append that gives the last message its missing line end
	 * recomputes it), so the save reads nothing from the file.  That matters after an
	 * expunge by collapse, which leaves none of the file in the page cache.
	 */
	m->flags = m->disk_flags;
	m->keywords = m->disk_keywords;
	m->state &= MSG_UID_STORED | MSG_STATUS_O | MSG_NO_BLANK;
	if (m->state & MSG_UID_STORED) {
		/* written by us or read from the file: the file's X-UID is the UID */
		m->x_uid_ok = 1;
		m->x_uid = m->uid;
	}
}

static int
write_cache(struct mbox *mb, int fd, const struct mbox_stamp *s)
{
	struct cache_hdr h;
	struct cache_tail t;
	struct mbox_msg chunk[CACHE_CHUNK];
	unsigned char kw[CACHE_KW_MAX];
	uint32_t i, n = 0, crc, w = 0, prev_uid = 0;
	uint64_t prev_end = 0;
	size_t kl = 0, k = 0;
	unsigned j;

	for (i = 0; i < mb->m.n; i++)
		if (!(mb->m.v[i].state & MSG_GONE))
			n++;
	memset(kw, 0, sizeof(kw));
	for (j = 0; j < mb->n_kw; j++) {
		size_t l = strlen(mb->kw[j]);

		if (kl + l + 1 > sizeof(kw) - 8)
			return -1;
		memcpy(kw + kl, mb->kw[j], l);
		kl += l + 1;
	}
	kl = (kl + 7) & ~(size_t)7;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CACHE_MAGIC, 8);
	h.version = CACHE_VERSION;
	h.endian = CACHE_ENDIAN;
	h.hdr_size = sizeof(h);
	h.msg_size = sizeof(struct mbox_msg);
	h.dev = s->dev;
	h.ino = s->ino;
	h.size = s->size;
	h.mtime_sec = s->mtime_sec;
	h.mtime_nsec = s->mtime_nsec;
	h.ctime_sec = s->ctime_sec;
	h.ctime_nsec = s->ctime_nsec;
	h.tail_crc = mb->tail_crc;
	h.racy = s->racy != 0;
	h.base_found = mb->base.found != 0;
	h.base_pseudo = mb->base.pseudo != 0;
	h.base_uidvalidity = mb->base.uidvalidity;
	h.base_last_uid = mb->base.last_uid;
	h.base_pseudo_end = mb->base.pseudo ? mb->base.pseudo_end : 0;
	h.next_uid = mb->next_uid;
	h.n_msgs = n;
	h.n_kw = mb->n_kw;
	h.kw_len = (uint32_t)kl;
	h.ms_gen = mb->ms_ok && !mb->ms_stale ? mb->ms_gen : 0;
	crc = mbox_cache_sum(0, &h, sizeof(h));
	crc = mbox_cache_sum(crc, kw, kl);
	if (mbox_write_full(fd, &h, sizeof(h)) < 0 || mbox_write_full(fd, kw, kl) < 0)
		return -1;
	for (i = 0; i < mb->m.n; i++) {
		if (mb->m.v[i].state & MSG_GONE)
			continue;
		chunk[k] = mb->m.v[i];
		normalize(&chunk[k]);
		/* a view the loader would refuse (a write that failed half-way) is not saved */
		if (check_record(&h, &chunk[k], w++, &prev_end, &prev_uid) < 0)
			return -1;
		if (++k == CACHE_CHUNK) {
			crc = mbox_cache_sum(crc, chunk, k * sizeof(chunk[0]));
			if (mbox_write_full(fd, chunk, k * sizeof(chunk[0])) < 0)
				return -1;
			k = 0;
		}
	}
	crc = mbox_cache_sum(crc, chunk, k * sizeof(chunk[0]));
	if (k > 0 && mbox_write_full(fd, chunk, k * sizeof(chunk[0])) < 0)
		return -1;
	t.crc = crc;
	t.n_msgs = n;
	return mbox_write_full(fd, &t, sizeof(t));
}

void
mbox_cache_save(struct mbox *mb)
{
	char path[4096], tmp[4200];
	struct mbox_stamp s;
	int fd, n;

	if (mb->journal_dir == NULL || mb->fd < 0 || mb->size == 0 || mb->map == NULL ||
	    mb->size < mb->cache_min_size)
		return;
	/* keyword names created in memory but not written would be taken for the file's */
	if (mb->rw && mb->base_dirty)
		return;
	mbox_view_stamp(mb, &s);
	if (stamp_eq(&s, &mb->cache_stamp) || cache_path(mb, path, sizeof(path)) < 0)
		return;
	n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return;
	/* disposable: no fsync; a crash leaves an older cache, which the checks reject or
	 * extend, or a torn one, which the checksum rejects */
	if (write_cache(mb, fd, &s) < 0) {
		(void)close(fd);
		(void)unlink(tmp);
		return;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		(void)unlink(tmp);
		return;
	}
	mb->cache_stamp = s;
}
