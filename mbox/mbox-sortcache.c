/*
 * mbox-sortcache.c: the SORT and THREAD keys of a mailbox, kept in a file (mbox-sortcache.h).
 *
 * Layout (native byte order and struct layout, checked by the header's size and byte-order
 * fields), every part 8-byte aligned:
 *   struct sc_hdr
 *   n records of struct sc_rec, UIDs ascending; each holds its strings' ranks among the
 *   file's records (1 the first in the order of SORT, equal strings alike), so that a SORT
 *   of messages all in the file compares numbers only
 *   the blob: each record's strings (its keys one after the other, lengths in the record),
 *   then its references (64-bit hashes) at an 8-byte aligned offset
 * The header's checksum (mbox_cache_sum(), with the field itself zero) covers the file.
 */
#include "mbox/mbox-private.h"
#include "mbox/mbox-sortcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_MAGIC	"IMAPDsk\n"
/* 2: strings ranked; 3: an encoded word in an unknown charset makes an octet key
 * (message-sort.h) */
#define SC_VERSION	3u
#define SC_ENDIAN	0x01020304u
#define SC_PREFIX	"sort."

struct sc_hdr {
	unsigned char magic[8];
	uint32_t version;
	uint32_t endian;
	uint32_t hdr_size;
	uint32_t rec_size;
	uint32_t uidvalidity;
	uint32_t n;
	uint64_t blob_len;
	uint32_t sum;
	uint32_t zero;
};

struct sc_rec {
	uint32_t uid;
	uint32_t flags;		/* SORT_K_* */
	uint64_t size;		/* RFC822.SIZE when the keys were taken */
	int64_t sent;
	uint64_t msgid;
	uint32_t str_off;	/* into the blob */
	uint32_t refs_off;	/* into the blob, a multiple of 8 */
	uint32_t nrefs;
	uint16_t slen[SORT_S_COUNT];
	uint32_t rank[SORT_S_COUNT];
};

struct mbox_sortcache {
	void *map;
	size_t map_len;
	const struct sc_rec *rec;
	uint32_t n;
	const unsigned char *blob;
	uint64_t blob_len;
	uint32_t uidvalidity;
	struct stat st;		/* the file mapped (st_ino 0: none) */
	/* added since: records in UID order once sorted, their own blob */
	struct sc_rec *arec;
	uint32_t an, acap;
	bool asorted;
	unsigned char *ablob;
	size_t alen, ablob_cap;
	/* where the last lookup in rec ended: SORT asks in UID order */
	uint32_t hint;
};

static void
unmap(struct mbox_sortcache *sc)
{
	if (sc->map != NULL)
		(void)munmap(sc->map, sc->map_len);
	sc->map = NULL;
	sc->map_len = 0;
	sc->rec = NULL;
	sc->n = 0;
	sc->blob = NULL;
	sc->blob_len = 0;
	memset(&sc->st, 0, sizeof(sc->st));
}

static size_t
rec_strs(const struct sc_rec *r)
{
	size_t t = 0;
	int j;

	for (j = 0; j < SORT_S_COUNT; j++)
		t += r->slen[j];
	return t;
}

/* Maps the file when it is whole and of this mailbox's UIDVALIDITY. */
static void
load(struct mbox_sortcache *sc, struct mbox *mb)
{
	char path[4096];
	struct sc_hdr h;
	struct stat st;
	uint32_t i, prev = 0, sum;
	int fd;

	if (mbox_state_path(mb, SC_PREFIX, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(h)) {
		(void)close(fd);
		return;
	}
	sc->map_len = (size_t)st.st_size;
	sc->map = mmap(NULL, sc->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	(void)close(fd);
	if (sc->map == MAP_FAILED) {
		sc->map = NULL;
		return;
	}
	memcpy(&h, sc->map, sizeof(h));
	if (memcmp(h.magic, SC_MAGIC, 8) != 0 || h.version != SC_VERSION ||
	    h.endian != SC_ENDIAN || h.hdr_size != sizeof(h) || h.rec_size != sizeof(struct sc_rec) ||
	    h.uidvalidity != sc->uidvalidity ||
	    /* the records must fit before the blob's length is compared (no wrap) */
	    (uint64_t)h.n * sizeof(struct sc_rec) > sc->map_len - sizeof(h) ||
	    h.blob_len != sc->map_len - sizeof(h) - (uint64_t)h.n * sizeof(struct sc_rec))
		goto reject;
	sum = h.sum;
	h.sum = 0;
	sc->rec = (const struct sc_rec *)(const void *)((const unsigned char *)sc->map + sizeof(h));
	sc->n = h.n;
	sc->blob = (const unsigned char *)(sc->rec + h.n);
	sc->blob_len = h.blob_len;
	/* in the pieces the save summed: header, records, blob */
	if (mbox_cache_sum(mbox_cache_sum(mbox_cache_sum(0, &h, sizeof(h)), sc->rec,
					  (size_t)h.n * sizeof(*sc->rec)), sc->blob,
			   (size_t)h.blob_len) != sum)
		goto reject;
	for (i = 0; i < sc->n; i++) {
		const struct sc_rec *r = &sc->rec[i];

		if ((i > 0 && r->uid <= prev) || r->nrefs > SORT_MAX_REFS || r->refs_off % 8 != 0 ||
		    (uint64_t)r->str_off + rec_strs(r) > sc->blob_len ||
		    (uint64_t)r->refs_off + (uint64_t)r->nrefs * 8 > sc->blob_len)
			goto reject;
		prev = r->uid;
	}
	sc->st = st;
	return;
reject:
	unmap(sc);
}

struct mbox_sortcache *
mbox_sortcache_open(struct mbox *mb)
{
	struct mbox_sortcache *sc = calloc(1, sizeof(*sc));

	if (sc == NULL)
		abort();
	sc->uidvalidity = mbox_uidvalidity(mb);
	sc->asorted = true;
	load(sc, mb);
	return sc;
}

void
mbox_sortcache_refresh(struct mbox_sortcache *sc, struct mbox *mb)
{
	char path[4096];
	struct stat st;

	if (mbox_uidvalidity(mb) != sc->uidvalidity) {
		/* none of the records is of this mailbox any more */
		unmap(sc);
		sc->an = 0;
		sc->alen = 0;
		sc->asorted = true;
		sc->uidvalidity = mbox_uidvalidity(mb);
	} else if (sc->an > 0 || mbox_state_path(mb, SC_PREFIX, path, sizeof(path)) < 0 ||
		   (stat(path, &st) == 0 ? st.st_ino == sc->st.st_ino &&
		    st.st_dev == sc->st.st_dev && st.st_size == sc->st.st_size &&
		    st.st_mtim.tv_sec == sc->st.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == sc->st.st_mtim.tv_nsec : sc->map == NULL)) {
		return;		/* what is mapped is the file (or there is none) */
	}
	unmap(sc);
	load(sc, mb);
}

void
mbox_sortcache_free(struct mbox_sortcache **scp)
{
	struct mbox_sortcache *sc = *scp;

	if (sc == NULL)
		return;
	unmap(sc);
	free(sc->arec);
	free(sc->ablob);
	free(sc);
	*scp = NULL;
}

uint32_t
mbox_sortcache_added(const struct mbox_sortcache *sc)
{
	return sc->an;
}

static const struct sc_rec *
find(const struct sc_rec *v, uint32_t n, uint32_t uid)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].uid == uid ? &v[lo] : NULL;
}

static int
cmp_rec(const void *a, const void *b)
{
	uint32_t x = ((const struct sc_rec *)a)->uid, y = ((const struct sc_rec *)b)->uid;

	return x < y ? -1 : x > y;
}

static void
fill(const struct sc_rec *r, const unsigned char *blob, bool ranked, struct sort_keys *k)
{
	const unsigned char *p = blob + r->str_off;
	int j;

	k->flags = r->flags;
	k->sent = r->sent;
	k->msgid = r->msgid;
	for (j = 0; j < SORT_S_COUNT; j++) {
		k->s[j] = p;
		k->slen[j] = r->slen[j];
		p += r->slen[j];
	}
	k->refs = (const uint64_t *)(const void *)(blob + r->refs_off);
	k->nrefs = r->nrefs;
	k->rank = ranked ? r->rank : NULL;
}

/* The record of uid with this size: the added one first, they are newer. */
static const struct sc_rec *
lookup(struct mbox_sortcache *sc, uint32_t uid, uint64_t size, const unsigned char **blob_r)
{
	const struct sc_rec *r;

	if (sc->an == 0) {
		/* nothing added (a SORT of an unchanged mailbox) */
	} else if (!sc->asorted) {
		/* stable enough: a UID added twice keeps either record, both are the same
		 * message's keys when the size matches */
		qsort(sc->arec, sc->an, sizeof(*sc->arec), cmp_rec);
		sc->asorted = true;
	}
	if ((r = find(sc->arec, sc->an, uid)) != NULL && r->size == size) {
		*blob_r = sc->ablob;
		return r;
	}
	/* asked in UID order, the record is the one after the last found, or close by */
	if (sc->hint < sc->n && sc->rec[sc->hint].uid == uid)
		r = &sc->rec[sc->hint];
	else if (sc->hint + 1 < sc->n && sc->rec[sc->hint + 1].uid == uid)
		r = &sc->rec[sc->hint + 1];
	else
		r = find(sc->rec, sc->n, uid);
	if (r != NULL) {
		sc->hint = (uint32_t)(r - sc->rec) + 1;
		if (r->size == size) {
			*blob_r = sc->blob;
			return r;
		}
	}
	return NULL;
}

bool
mbox_sortcache_get(struct mbox_sortcache *sc, uint32_t uid, uint64_t size, struct sort_keys *k)
{
	const unsigned char *blob;
	const struct sc_rec *r = lookup(sc, uid, size, &blob);

	if (r == NULL)
		return false;
	/* only the file's records are ranked; those added since are not */
	fill(r, blob, blob == sc->blob, k);
	return true;
}

static void
ablob_add(struct mbox_sortcache *sc, const void *p, size_t n)
{
	if (sc->alen + n + 8 > sc->ablob_cap) {
		size_t cap = sc->ablob_cap < 4096 ? 4096 : sc->ablob_cap;

		while (cap < sc->alen + n + 8)
			cap *= 2;
		sc->ablob = realloc(sc->ablob, cap);
		if (sc->ablob == NULL)
			abort();
		sc->ablob_cap = cap;
	}
	if (n > 0)
		memcpy(sc->ablob + sc->alen, p, n);
	sc->alen += n;
}

static void
ablob_align(struct mbox_sortcache *sc)
{
	static const unsigned char z[8];

	if (sc->alen % 8 != 0)
		ablob_add(sc, z, 8 - sc->alen % 8);
}

void
mbox_sortcache_put(struct mbox_sortcache *sc, uint32_t uid, uint64_t size,
		   const struct sort_keys *k)
{
	struct sc_rec *r;
	int j;

	if (sc->an == sc->acap) {
		sc->acap = sc->acap < 64 ? 64 : sc->acap * 2;
		sc->arec = realloc(sc->arec, (size_t)sc->acap * sizeof(*sc->arec));
		if (sc->arec == NULL)
			abort();
	}
	if (sc->an > 0 && sc->arec[sc->an - 1].uid >= uid)
		sc->asorted = false;
	r = &sc->arec[sc->an++];
	memset(r, 0, sizeof(*r));
	r->uid = uid;
	r->flags = k->flags;
	r->size = size;
	r->sent = k->sent;
	r->msgid = k->msgid;
	r->str_off = (uint32_t)sc->alen;
	for (j = 0; j < SORT_S_COUNT; j++) {
		r->slen[j] = k->slen[j];
		ablob_add(sc, k->s[j], k->slen[j]);
	}
	ablob_align(sc);
	r->refs_off = (uint32_t)sc->alen;
	r->nrefs = k->nrefs;
	ablob_add(sc, k->refs, (size_t)k->nrefs * 8);
}

struct rank_ent {
	uint64_t prefix;	/* the string's first 8 octets, big-endian, zero-padded */
	const unsigned char *s;
	uint32_t len, i;
};

/* The order of SORT's string comparison (imapd/cmd-sort.c): octets, then the shorter. */
static int
cmp_rank(const void *pa, const void *pb)
{
	const struct rank_ent *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int r;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	r = n > 8 ? memcmp(a->s + 8, b->s + 8, n - 8) : 0;
	if (r != 0)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Each record's rank[j]: 1 + the number of distinct smaller strings of key j. */
static void
rank_records(struct sc_rec *out, uint32_t n, const unsigned char *blob)
{
	struct rank_ent *e = malloc((n > 0 ? n : 1) * sizeof(*e));
	uint32_t i, rank;
	int j, b;

	if (e == NULL)
		abort();
	for (j = 0; j < SORT_S_COUNT; j++) {
		for (i = 0; i < n; i++) {
			size_t off = out[i].str_off;
			int t;

			for (t = 0; t < j; t++)
				off += out[i].slen[t];
			e[i].s = blob + off;
			e[i].len = out[i].slen[j];
			e[i].i = i;
			e[i].prefix = 0;
			for (b = 0; b < 8; b++)
				e[i].prefix = e[i].prefix << 8 | (b < (int)e[i].len ? e[i].s[b] : 0);
		}
		qsort(e, n, sizeof(*e), cmp_rank);
		for (i = 0, rank = 0; i < n; i++) {
			if (i == 0 || cmp_rank(&e[i - 1], &e[i]) != 0)
				rank++;
			out[e[i].i].rank[j] = rank;
		}
	}
	free(e);
}

void
mbox_sortcache_save(struct mbox_sortcache *sc, struct mbox *mb)
{
	char path[4096], tmp[4200];
	uint32_t n = mbox_count(mb), i, k = 0;
	struct sc_hdr h;
	struct sc_rec *out;
	unsigned char *blob = NULL;
	size_t blen = 0, bcap = 0;
	int fd, len;

	if (sc->an == 0 || mbox_uidvalidity(mb) != sc->uidvalidity ||
	    mbox_state_path(mb, SC_PREFIX, path, sizeof(path)) < 0)
		return;
	out = calloc(n > 0 ? n : 1, sizeof(*out));
	if (out == NULL)
		abort();
	for (i = 0; i < n; i++) {
		const unsigned char *src;
		const struct sc_rec *r = lookup(sc, mbox_msg_uid(mb, i), mbox_msg_size(mb, i), &src);
		size_t ns, need;

		if (r == NULL || (k > 0 && out[k - 1].uid >= r->uid))
			continue;
		ns = rec_strs(r);
		need = blen + ns + 8 + (size_t)r->nrefs * 8;
		if (need > bcap) {
			bcap = bcap < 65536 ? 65536 : bcap;
			while (bcap < need)
				bcap *= 2;
			blob = realloc(blob, bcap);
			if (blob == NULL)
				abort();
		}
		out[k] = *r;
		out[k].str_off = (uint32_t)blen;
		memcpy(blob + blen, src + r->str_off, ns);
		blen += ns;
		while (blen % 8 != 0)
			blob[blen++] = 0;
		out[k].refs_off = (uint32_t)blen;
		memcpy(blob + blen, src + r->refs_off, (size_t)r->nrefs * 8);
		blen += (size_t)r->nrefs * 8;
		k++;
		if (blen > UINT32_MAX - 65536)
			break;		/* offsets are 32-bit: the rest stays uncached */
	}
	rank_records(out, k, blob);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SC_MAGIC, 8);
	h.version = SC_VERSION;
	h.endian = SC_ENDIAN;
	h.hdr_size = sizeof(h);
	h.rec_size = sizeof(struct sc_rec);
	h.uidvalidity = sc->uidvalidity;
	h.n = k;
	h.blob_len = blen;
	h.sum = mbox_cache_sum(mbox_cache_sum(mbox_cache_sum(0, &h, sizeof(h)), out,
					      (size_t)k * sizeof(*out)), blob != NULL ? blob :
			       (const unsigned char *)"", blen);
	len = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = len > 0 && (size_t)len < sizeof(tmp) ? mkostemp(tmp, O_CLOEXEC) : -1;
	if (fd >= 0) {
		/* disposable: no fsync; a torn file fails the checksum */
		if (mbox_write_full(fd, &h, sizeof(h)) == 0 &&
		    mbox_write_full(fd, out, (size_t)k * sizeof(*out)) == 0 &&
		    mbox_write_full(fd, blob, blen) == 0 && close(fd) == 0) {
			if (rename(tmp, path) < 0)
				(void)unlink(tmp);
		} else {
			(void)close(fd);
			(void)unlink(tmp);
		}
	}
	free(out);
	free(blob);
	/* what was added is in the file now (if it was written): map it afresh */
	unmap(sc);
	free(sc->arec);
	free(sc->ablob);
	sc->arec = NULL;
	sc->ablob = NULL;
	sc->an = sc->acap = 0;
	sc->alen = sc->ablob_cap = 0;
	sc->asorted = true;
	load(sc, mb);
}
