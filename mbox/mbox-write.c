/* mbox-write.c: metadata headers, flag writes in place, tail rewrites. */
#include "mbox/mbox-private.h"
#include "mbox/mbox-collapse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int
wbuf_reserve(struct wbuf *b, size_t n)
{
	if (n > SIZE_MAX / 4 - b->n)
		return -1;
	if (b->n + n > b->cap) {
		size_t cap = b->cap < 4096 ? 4096 : b->cap;
		unsigned char *np;

		while (cap < b->n + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	return 0;
}

int
wbuf_add(struct wbuf *b, const void *p, size_t n)
{
	if (wbuf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

static int
wbuf_str(struct wbuf *b, const char *s)
{
	return wbuf_add(b, s, strlen(s));
}

static int
wbuf_pad(struct wbuf *b, size_t n)
{
	static const char sp[] = "                                ";

	while (n > 0) {
		/* the spaces, not the terminating NUL */
		size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;

		if (wbuf_add(b, sp, k) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

/* Values of the metadata headers; each starts with the space after the colon. */
static void
status_value(char *buf, size_t size, unsigned flags, int old)
{
	/* fixed width 3: " RO" or " O " so \Seen toggles in place */
	snprintf(buf, size, " %s%s", (flags & MBOX_SEEN) ? "R" : "", old ? "O" : "");
	if (strlen(buf) < 3)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s",
		    strlen(buf) == 1 ? "  " : " ");
}

static void
xstatus_value(char *buf, size_t size, unsigned flags)
{
	/* fixed width 5: " ADFT" with spaces for absent letters, the order UW writes */
	snprintf(buf, size, " %c%c%c%c", (flags & MBOX_ANSWERED) ? 'A' : ' ',
	    (flags & MBOX_DELETED) ? 'D' : ' ', (flags & MBOX_FLAGGED) ? 'F' : ' ',
	    (flags & MBOX_DRAFT) ? 'T' : ' ');
}

/* " kw1 kw2" (no padding) */
static int
keywords_value(const struct mbox *mb, struct wbuf *b, uint64_t kw)
{
	unsigned i;

	for (i = 0; i < mb->n_kw; i++)
		if (kw & (1ULL << i)) {
			if (wbuf_str(b, " ") < 0 || wbuf_str(b, mb->kw[i]) < 0)
				return -1;
		}
	return 0;
}

/* " UIDVALIDITY LASTUID kw..." (LASTUID zero-padded to 10 digits as UW and Dovecot
 * write it, so it can grow in place) */
static int
base_value(const struct mbox *mb, struct wbuf *b)
{
	char num[40];
	unsigned i;

	snprintf(num, sizeof(num), " %u %010u", mb->uidvalidity, mb->next_uid - 1);
	if (wbuf_str(b, num) < 0)
		return -1;
	for (i = 0; i < mb->n_kw; i++)
		if (wbuf_str(b, " ") < 0 || wbuf_str(b, mb->kw[i]) < 0)
			return -1;
	return 0;
}

int
mbox_base_line(struct mbox *mb, struct wbuf *b)
{
	if (wbuf_str(b, "X-IMAPbase:") < 0 || base_value(mb, b) < 0 ||
	    wbuf_pad(b, MBOX_IMAPBASE_PAD) < 0 || wbuf_str(b, "\n") < 0)
		return -1;
	return 0;
}

int
mbox_meta_block(struct mbox *mb, struct wbuf *b, const struct mbox_msg *m, int first)
{
	char v[32];

	if (first && mbox_base_line(mb, b) < 0)
		return -1;
	status_value(v, sizeof(v), m->flags, !(m->state & MSG_APPENDED));
	if (wbuf_str(b, "Status:") < 0 || wbuf_str(b, v) < 0 || wbuf_str(b, "\n") < 0)
		return -1;
	xstatus_value(v, sizeof(v), m->flags);
	if (wbuf_str(b, "X-Status:") < 0 || wbuf_str(b, v) < 0 || wbuf_str(b, "\n") < 0)
		return -1;
	if (wbuf_str(b, "X-Keywords:") < 0)
		return -1;
	if (keywords_value(mb, b, m->keywords) < 0 || wbuf_pad(b, MBOX_KEYWORDS_PAD) < 0 ||
	    wbuf_str(b, "\n") < 0)
		return -1;
	snprintf(v, sizeof(v), "X-UID: %u\n", m->uid);
	return wbuf_str(b, v);
}

/* Where a message's metadata headers are, for in-place updates. */
struct meta_loc {
	int count[8];			/* occurrences per META_* kind */
	uint64_t off[8];		/* value offset of the first */
	uint64_t room[8];		/* value length of the first (single line only) */
};

static int
only_space(const unsigned char *p, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

static void
find_meta(const struct mbox *mb, uint64_t start, uint64_t end, struct meta_loc *loc)
{
	struct hdr_line l;
	uint64_t pos = start;

	memset(loc, 0, sizeof(*loc));
	while (mbox_hdr_next(mb->map, &pos, end, &l) && !l.empty) {
		int k = l.name_len > 0 ? mbox_meta_kind(mb->map + l.off, l.name_len) : 0;
		uint64_t eol;

		if (k == 0)
			continue;
		if (loc->count[k]++ > 0)
			continue;
		eol = l.off + l.len - (l.value_off + l.value_len);
		loc->off[k] = l.value_off;
		/* folded values are not updated in place, but for padding: a value continued
		 * by lines of whitespace only (what an expunge by collapse leaves) has the
		 * first line as its room */
		loc->room[k] = eol <= 2 || only_space(mb->map + l.value_off + l.value_len,
		    eol) ? l.value_len : 0;
	}
}

struct patch {
	uint64_t off;
	size_t len;
	size_t at;	/* offset of the bytes in the patch buffer */
};

struct patchset {
	struct patch *v;
	size_t n, cap;
	struct wbuf data;
};

static int
patch_add(struct patchset *ps, uint64_t off, const void *p, size_t n, size_t room)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		struct patch *nv = realloc(ps->v, cap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		ps->v = nv;
		ps->cap = cap;
	}
	ps->v[ps->n].off = off;
	ps->v[ps->n].len = room;
	ps->v[ps->n].at = ps->data.n;
	ps->n++;
	if (wbuf_add(&ps->data, p, n) < 0 || wbuf_pad(&ps->data, room - n) < 0)
		return -1;
	return 0;
}

/* Patch one header value in place if it fits: 1 done, 0 no room, -1 error. */
static int
patch_value(struct patchset *ps, const struct meta_loc *loc, int kind, const void *v,
    size_t n)
{
	if (loc->count[kind] != 1 || loc->room[kind] < n)
		return 0;
	return patch_add(ps, loc->off[kind], v, n, (size_t)loc->room[kind]) < 0 ? -1 : 1;
}

/* Plan in-place updates for m; 1 if they fit, 0 if the message must be rewritten. */
static int
plan_msg(struct mbox *mb, struct patchset *ps, const struct mbox_msg *m)
{
	struct meta_loc loc;
	char v[32];
	struct wbuf kw = { 0 };
	int r, first;
	size_t saved_n = ps->n, saved_data = ps->data.n;

	if (!(m->state & MSG_UID_STORED) || (m->state & MSG_NO_BLANK))
		return 0;
	find_meta(mb, m->from_off + m->from_len, m->body_off, &loc);
	/* The first message carries the X-IMAPbase header (plan_base patches it); anywhere
	 * else, or with UW's X-IMAP, the message is rewritten and the stray header dropped. */
	first = m == &mb->m.v[0] && !mb->base.pseudo;
	if (loc.count[META_XUID] != 1 || loc.count[META_XIMAP] > 0 ||
	    loc.count[META_XIMAPBASE] > (first ? 1 : 0))
		return 0;
	status_value(v, sizeof(v), m->flags, !(m->state & MSG_APPENDED));
	r = patch_value(ps, &loc, META_STATUS, v, strlen(v));
	if (r == 1) {
		if ((m->flags & (MBOX_ANSWERED | MBOX_DELETED | MBOX_FLAGGED | MBOX_DRAFT)) ||
		    loc.count[META_XSTATUS] > 0) {
			xstatus_value(v, sizeof(v), m->flags);
			r = patch_value(ps, &loc, META_XSTATUS, v, strlen(v));
		}
	}
	if (r == 1 && (m->keywords != 0 || loc.count[META_XKEYWORDS] > 0)) {
		if (keywords_value(mb, &kw, m->keywords) < 0)
			r = -1;
		else
			r = patch_value(ps, &loc, META_XKEYWORDS, kw.p, kw.n);
	}
	free(kw.p);
	if (r != 1) {
		ps->n = saved_n;
		ps->data.n = saved_data;
	}
	return r;
}

static int
needs_update(const struct mbox_msg *m)
{
	if (m->state & MSG_GONE)
		return 0;
	return !(m->state & MSG_UID_STORED) ||
	    (!(m->state & MSG_STATUS_O) && !(m->state & MSG_APPENDED)) ||
	    (m->state & MSG_DIRTY);
}

/* The tail generator: messages from index `next` on, the pseudo message first if asked. */
struct tailgen {
	struct mbox *mb;
	uint32_t next;
	int pseudo;		/* emit the pseudo message first */
	const uint8_t *skip;	/* expunge: skip[i] set = leave out (may be NULL) */
	int first_done;		/* a message has been emitted (base goes in the first) */
	int new_pseudo;		/* emit a new pseudo message (the mailbox is being emptied) */
};

/*
 * A new pseudo message in UW-IMAP's format (a first message with X-IMAP, hidden from
 * clients): written when an expunge empties a mailbox, so that its UIDVALIDITY and last
 * UID survive and UIDs are never used twice (RFC 3501 2.3.1.1).
 */
static int
gen_new_pseudo(struct mbox *mb, struct wbuf *b)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	char line[256];
	time_t now = time(NULL);
	struct tm tm;
	struct wbuf v = { 0 };
	int r;

	if (gmtime_r(&now, &tm) == NULL)
		return -1;
	snprintf(line, sizeof(line), "From MAILER-DAEMON %s %s %2d %02d:%02d:%02d %04d\n"
	    "Date: %s, %d %s %04d %02d:%02d:%02d +0000\n"
	    "From: Mail System Internal Data <MAILER-DAEMON@localhost>\n"
	    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
	    "Message-ID: <%u.imapd@localhost>\n",
	    wd[tm.tm_wday], mo[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900, wd[tm.tm_wday], tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, mb->uidvalidity);
	r = base_value(mb, &v);
	r = r < 0 || wbuf_str(b, line) < 0 || wbuf_str(b, "X-IMAP:") < 0 ||
	    wbuf_add(b, v.p, v.n) < 0 || wbuf_pad(b, MBOX_IMAPBASE_PAD) < 0 ||
	    wbuf_str(b, "\nStatus: RO\n\n"
	    "This message keeps the state of the mail folder for IMAP (its UIDVALIDITY and\n"
	    "the last UID used); IMAP clients do not see it.  If it is deleted, IMAP clients\n"
	    "will download the whole folder again.\n\n") < 0 ? -1 : 0;
	free(v.p);
	return r;
}

static int
gen_pseudo(struct tailgen *g, struct wbuf *b)
{
	struct mbox *mb = g->mb;
	const unsigned char *map = mb->map;
	const unsigned char *nl = memchr(map, '\n', (size_t)mb->base.pseudo_end);
	uint64_t pos, hend, from_len = nl != NULL ? (uint64_t)(nl - map) + 1 : 0;
	struct hdr_line l;

	if (from_len == 0)
		return -1;
	if (wbuf_add(b, map, (size_t)from_len) < 0)
		return -1;
	pos = from_len;
	hend = mb->base.pseudo_end;
	if (map[from_len - 1] != '\n' && wbuf_str(b, "\n") < 0)
		return -1;
	for (;;) {
		int more = mbox_hdr_next(map, &pos, hend, &l);

		if (!more || l.empty) {
			struct wbuf v = { 0 };
			int r = base_value(mb, &v);

			r = r < 0 || wbuf_str(b, "X-IMAP:") < 0 || wbuf_add(b, v.p, v.n) < 0 ||
			    wbuf_pad(b, MBOX_IMAPBASE_PAD) < 0 || wbuf_str(b, "\n") < 0 ? -1 : 0;
			free(v.p);
			if (r < 0)
				return -1;
			if (!more)	/* no empty line ended the header: add it */
				return wbuf_str(b, "\n\n");
			/* the rest of the pseudo message as it was */
			if (wbuf_add(b, map + l.off, (size_t)(hend - l.off)) < 0)
				return -1;
			/* it must end in an empty line before the next From_ line */
			if (hend >= 2 && (map[hend - 1] != '\n' || map[hend - 2] != '\n'))
				return wbuf_str(b, map[hend - 1] == '\n' ? "\n" : "\n\n");
			return 0;
		}
		if (l.name_len > 0 && (mbox_meta_kind(map + l.off, l.name_len) == META_XIMAP ||
		    mbox_meta_kind(map + l.off, l.name_len) == META_XIMAPBASE))
			continue;
		if (l.len == 1 && map[l.off] == '\r')
			continue;
		if (wbuf_add(b, map + l.off, (size_t)l.len) < 0)
			return -1;
		if (map[l.off + l.len - 1] != '\n' && wbuf_str(b, "\n") < 0)
			return -1;
	}
}

int
mbox_gen_header(struct mbox *mb, struct wbuf *b, const struct mbox_msg *m, int first,
    int *fixup_r)
{
	const unsigned char *map = mb->map;
	uint64_t pos = m->from_off + m->from_len;
	struct hdr_line l;
	int more;

	if (wbuf_add(b, map + m->from_off, m->from_len) < 0)
		return -1;
	/* a From_ line at the very end of the file may lack its LF */
	if (map[m->from_off + m->from_len - 1] != '\n') {
		*fixup_r = 1;
		if (wbuf_str(b, "\n") < 0)
			return -1;
	}
	while ((more = mbox_hdr_next(map, &pos, m->body_off, &l)) && !l.empty) {
		if (l.name_len > 0 && mbox_meta_kind(map + l.off, l.name_len) != 0)
			continue;
		/* a lone CR at the end of the file would become an empty line */
		if (l.len == 1 && map[l.off] == '\r') {
			*fixup_r = 1;
			continue;
		}
		if (wbuf_add(b, map + l.off, (size_t)l.len) < 0)
			return -1;
		/* the last line of a file without a final LF */
		if (map[l.off + l.len - 1] != '\n') {
			*fixup_r = 1;
			if (wbuf_str(b, "\n") < 0)
				return -1;
		}
	}
	if (!more || l.len != 1)
		*fixup_r = 1;	/* no empty line ended the header, or a CRLF one */
	if (mbox_meta_block(mb, b, m, first) < 0)
		return -1;
	/*
	 * A header that no empty line ended (a message with no body) gets none: the message
	 * under its UID keeps its bytes and size (RFC 3501 2.3.1.1), and the separator the
	 * caller writes after it reads back as the end of the message, as it did before.
	 */
	if (more && wbuf_str(b, "\n") < 0)
		return -1;
	return 0;
}

static int
gen_msg(struct tailgen *g, struct wbuf *b, const struct mbox_msg *m, int first)
{
	struct mbox *mb = g->mb;
	const unsigned char *map = mb->map;
	int fixup = 0;

	if (mbox_gen_header(mb, b, m, first, &fixup) < 0)
		return -1;
	/* body, then the separating empty line; big bodies are flushed by the caller */
	if (wbuf_add(b, map + m->body_off, (size_t)(m->end - m->body_off)) < 0)
		return -1;
	if (m->end > m->body_off && map[m->end - 1] != '\n' && wbuf_str(b, "\n") < 0)
		return -1;
	return wbuf_str(b, "\n");
}

static int
tail_gen(void *ctx, struct wbuf *b)
{
	struct tailgen *g = ctx;

	if (g->new_pseudo) {
		g->new_pseudo = 0;
		return gen_new_pseudo(g->mb, b) < 0 ? -1 : 1;
	}
	if (g->pseudo) {
		g->pseudo = 0;
		return gen_pseudo(g, b) < 0 ? -1 : 1;
	}
	while (g->next < g->mb->m.n && ((g->skip != NULL && g->skip[g->next]) ||
	    (g->mb->m.v[g->next].state & MSG_GONE)))
		g->next++;
	if (g->next >= g->mb->m.n)
		return 0;
	{
		const struct mbox_msg *m = &g->mb->m.v[g->next];
		int first = !g->first_done && !g->mb->base.pseudo;

		g->first_done = 1;
		g->next++;
		return gen_msg(g, b, m, first) < 0 ? -1 : 1;
	}
}

/* Patches closer than this are written with one pwrite, the bytes between them copied from
 * the map (they are what the file holds, so a crash between writes changes nothing). */
#define PATCH_MERGE_GAP	512

/* A patch whose value is already in the file needs no write (\Seen leaves X-Status alone). */
static int
patch_needed(const struct mbox *mb, const struct patchset *ps, const struct patch *p)
{
	return p->off + p->len > mb->size ||
	    memcmp(mb->map + p->off, ps->data.p + p->at, p->len) != 0;
}

/* From this many patches on, they are written through a shared writable mapping instead of
 * one pwrite() each: besides the system calls, ext4 takes three times longer to sync pages
 * dirtied by small writes than pages dirtied through a mapping (a flag changed in each of
 * 100,000 messages: 0.63 s against 0.20 s for the fsync). */
#define PATCH_MAP_MIN	64

/* 1 if written through a mapping, 0 if the caller should write them.  A process killed in
 * the middle of one value's memcpy may leave it half written (" R " for " RO": seen, not
 * old), where a pwrite is all or nothing; each value still reads as flags, and the next
 * commit writes it whole. */
static int
apply_patches_mapped(struct mbox *mb, struct patchset *ps)
{
	uint64_t lo = UINT64_MAX, hi = 0, base, pg = (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned char *w;
	size_t i, n = 0;

	for (i = 0; i < ps->n; i++) {
		const struct patch *p = &ps->v[i];

		if (!patch_needed(mb, ps, p))
			continue;
		if (p->off + p->len > mb->size)
			return 0;
		n++;
		if (p->off < lo)
			lo = p->off;
		if (p->off + p->len > hi)
			hi = p->off + p->len;
	}
	if (n < PATCH_MAP_MIN)
		return 0;
	base = lo - lo % pg;
	w = mmap(NULL, (size_t)(hi - base), PROT_READ | PROT_WRITE, MAP_SHARED, mb->fd,
	    (off_t)base);
	if (w == MAP_FAILED)
		return 0;
	for (i = 0; i < ps->n; i++) {
		const struct patch *p = &ps->v[i];

		if (!patch_needed(mb, ps, p))
			continue;
		mbox_crash_point(mb);
		memcpy(w + (p->off - base), ps->data.p + p->at, p->len);
	}
	(void)munmap(w, (size_t)(hi - base));
	return 1;
}

static int
apply_patches(struct mbox *mb, struct patchset *ps)
{
	struct wbuf run = { 0 };
	uint64_t run_off = 0;
	size_t i;
	int ret = -1;

	if (apply_patches_mapped(mb, ps) > 0)
		return 0;

	for (i = 0; i <= ps->n; i++) {
		const struct patch *p = i < ps->n ? &ps->v[i] : NULL;
		const unsigned char *bytes = p != NULL ? ps->data.p + p->at : NULL;

		if (p != NULL && !patch_needed(mb, ps, p))
			continue;
		if (p != NULL && run.n > 0 && p->off >= run_off + run.n &&
		    p->off - (run_off + run.n) <= PATCH_MERGE_GAP) {
			uint64_t gap = p->off - (run_off + run.n);

			if (wbuf_add(&run, mb->map + run_off + run.n, (size_t)gap) < 0 ||
			    wbuf_add(&run, bytes, p->len) < 0)
				goto nomem;
			continue;
		}
		if (run.n > 0) {
			mbox_crash_point(mb);
			if (pwrite(mb->fd, run.p, run.n, (off_t)run_off) != (ssize_t)run.n) {
				mbox_set_error(&mb->err, errno ? errno : EIO, "write %s: %s",
				    mb->path, strerror(errno ? errno : EIO));
				goto out;
			}
			run.n = 0;
		}
		if (p != NULL) {
			run_off = p->off;
			if (wbuf_add(&run, bytes, p->len) < 0)
				goto nomem;
		}
	}
	ret = 0;
	goto out;
nomem:
	mbox_set_error(&mb->err, ENOMEM, "out of memory");
out:
	free(run.p);
	return ret;
}

/* After a tail rewrite from index `from` (with `skip` applied), re-read the new offsets. */
static int
rescan_tail(struct mbox *mb, uint64_t off, uint32_t from, const uint8_t *skip)
{
	struct msgvec nv = { 0 };
	struct mbox_base base;
	uint32_t i, j;
	int ret = -1;

	if (mbox_scan(mb, off, &nv, off == 0 ? &base : NULL) < 0)
		goto out;
	if (off == 0)
		mb->base = base;
	for (i = from, j = 0; i < mb->m.n; i++) {
		struct mbox_msg *m = &mb->m.v[i];

		if ((skip != NULL && skip[i]) || (m->state & MSG_GONE))
			continue;
		if (j >= nv.n || nv.v[j].x_uid != m->uid) {
			mbox_set_error(&mb->err, EIO, "%s: rewritten tail does not read back",
			    mb->path);
			goto out;
		}
		m->from_off = nv.v[j].from_off;
		m->from_len = nv.v[j].from_len;
		m->body_off = nv.v[j].body_off;
		m->end = nv.v[j].end;
		m->hdr_vsize = nv.v[j].hdr_vsize;
		m->body_bare_lf = nv.v[j].body_bare_lf;
		m->fp = nv.v[j].fp;
		m->state = (uint8_t)((m->state & ~MSG_NO_BLANK) | (nv.v[j].state & MSG_NO_BLANK));
		j++;
	}
	ret = 0;
out:
	msgvec_free(&nv);
	return ret;
}

static void
mark_clean(struct mbox *mb)
{
	uint32_t i;

	for (i = mb->clean_below < mb->m.n ? mb->clean_below : mb->m.n; i < mb->m.n; i++) {
		struct mbox_msg *m = &mb->m.v[i];

		if (m->state & MSG_GONE)
			continue;
		m->disk_flags = m->flags & MBOX_FLAGS_STORED;
		m->disk_keywords = m->keywords;
		m->state |= MSG_UID_STORED;
		if (!(m->state & MSG_APPENDED))
			m->state |= MSG_STATUS_O;
		m->state &= (uint8_t)~MSG_DIRTY;
	}
	mb->clean_below = mb->m.n;
	if (mb->m.n > 0 || mb->base.pseudo) {
		mb->base.found = 1;
		mb->base.uidvalidity = mb->uidvalidity;
		mb->base.last_uid = mb->next_uid - 1;
		mb->base_dirty = 0;
	}
}

/* Plan the base header update in place; 1 fits, 0 needs a rewrite from the file start. */
static int
plan_base(struct mbox *mb, struct patchset *ps)
{
	struct meta_loc loc;
	struct wbuf v = { 0 };
	int kind, r;
	uint64_t start, end;

	if (!mb->base.found)
		return 0;
	if (mb->base.pseudo) {
		const unsigned char *nl = memchr(mb->map, '\n', (size_t)mb->base.pseudo_end);

		start = nl != NULL ? (uint64_t)(nl - mb->map) + 1 : 0;
		end = mb->base.pseudo_end;
		kind = META_XIMAP;
	} else {
		/* a first message another program removed: the base is elsewhere now */
		if (mb->m.n == 0 || (mb->m.v[0].state & MSG_GONE))
			return 0;
		start = mb->m.v[0].from_off + mb->m.v[0].from_len;
		end = mb->m.v[0].body_off;
		kind = META_XIMAPBASE;
	}
	find_meta(mb, start, end, &loc);
	if (loc.count[META_XIMAP] + loc.count[META_XIMAPBASE] != 1)
		return 0;
	if (base_value(mb, &v) < 0) {
		free(v.p);
		return -1;
	}
	r = patch_value(ps, &loc, kind, v.p, v.n);
	free(v.p);
	return r;
}

int
mbox_sync_unsynced(struct mbox *mb)
{
	if (!mb->unsynced)
		return 0;
	mbox_crash_point(mb);
	if (fsync(mb->fd) < 0) {
		mbox_set_error(&mb->err, errno, "fsync %s: %s", mb->path, strerror(errno));
		return -1;
	}
	mb->unsynced = 0;
	return 0;
}

int
mbox_write_locked(struct mbox *mb)
{
	struct patchset ps = { 0 };
	uint32_t i, r = UINT32_MAX, first = UINT32_MAX;
	int base_change, ret = -1, pseudo_rewrite = 0;
	uint64_t off = 0;

	if (!mb->rw) {
		mbox_set_error(&mb->err, EROFS, "%s is open read-only", mb->path);
		return -1;
	}
	if (mb->fd < 0)
		return 0;
	base_change = mb->base_dirty || !mb->base.found ||
	    mb->base.uidvalidity != mb->uidvalidity || mb->base.last_uid + 1 != mb->next_uid;
	if (mb->m.n == 0 && !mb->base.pseudo)
		base_change = 0;	/* nowhere to keep it; see mbox.h */
	if (base_change) {
		int p = plan_base(mb, &ps);

		if (p < 0)
			goto nomem;
		if (p == 0) {
			r = 0;
			pseudo_rewrite = mb->base.pseudo;
		}
	}
	for (i = mb->clean_below < mb->m.n ? mb->clean_below : mb->m.n;
	    i < mb->m.n && r == UINT32_MAX; i++) {
		int p;

		if (!needs_update(&mb->m.v[i]))
			continue;
		if (first == UINT32_MAX)
			first = i;
		p = plan_msg(mb, &ps, &mb->m.v[i]);
		if (p < 0)
			goto nomem;
		if (p == 0)
			r = i;
	}
	if (apply_patches(mb, &ps) < 0)
		goto out;
	if (r != UINT32_MAX) {
		struct tailgen g = { mb, r, pseudo_rewrite, NULL, r > 0 || mb->base.pseudo, 0 };
		int sh;

		/* a rewrite's journal describes the file as it is on disk: what a caller
		 * wrote before (an append) must be there first */
		if (mbox_sync_unsynced(mb) < 0)
			goto out;
		/* in place when it can (mbox-shift.c), else through the journal copy */
		sh = pseudo_rewrite ? 0 : mbox_shift_tail(mb, r);

		/* r == 0 without a pseudo message: the base goes into the first message */
		off = pseudo_rewrite ? 0 : mb->m.v[r].from_off;
		if (sh < 0)
			goto out;
		mb->rewrite_kind = sh > 0 ? MBOX_REWRITE_SHIFT : MBOX_REWRITE_COPY;
		if (sh == 2 && (mbox_remap(mb) < 0 || rescan_tail(mb, off, r, NULL) < 0))
			goto out;
		if (sh == 0 && (mbox_tail_replace(mb, off, tail_gen, &g) < 0 ||
		    rescan_tail(mb, off, pseudo_rewrite ? 0 : r, NULL) < 0))
			goto out;
	} else if (ps.n > 0) {
		/* one sync for the patches and whatever the caller left unsynced */
		mbox_crash_point(mb);
		if (fsync(mb->fd) < 0) {
			mbox_set_error(&mb->err, errno, "fsync %s: %s", mb->path, strerror(errno));
			goto out;
		}
		mb->unsynced = 0;
	}
	mark_clean(mb);
	/* the messages written may have other flags on disk now (a base patch alone changes
	 * none) */
	if (first != UINT32_MAX)
		mbox_modseq_touch(mb, first);
	/* a tail rewrite (the base grew: a keyword new to the mailbox) stops the walk above
	 * before it finds the messages it writes: compare them all */
	if (r != UINT32_MAX)
		mbox_modseq_touch(mb, 0);
	/* remap also records the new size and mtime, so our own write is not taken for
	 * someone else's change by the next sync */
	ret = mbox_remap(mb);
	goto out;
nomem:
	mbox_set_error(&mb->err, ENOMEM, "out of memory");
out:
	free(ps.v);
	free(ps.data.p);
	return ret;
}

int
mbox_commit_flags(struct mbox *mb)
{
	struct mbox_lock lk = MBOX_LOCK_INIT;
	uint32_t i;
	int dirty = 0, ret;

	if (!mb->rw) {
		mbox_set_error(&mb->err, EROFS, "%s is open read-only", mb->path);
		return -1;
	}
	for (i = mb->clean_below < mb->m.n ? mb->clean_below : mb->m.n; i < mb->m.n && !dirty;
	    i++)
		dirty = (mb->m.v[i].state & MSG_DIRTY) != 0;
	if (!dirty && !mb->base_dirty)
		return 0;
	if (mbox_lock(mb, &lk, MBOX_LK_WRITE) < 0)
		return -1;
	/* The file may have changed since we last looked: bring the view up to date first,
	 * keeping our pending changes (mbox_reload_locked merges them by UID). */
	ret = mbox_reload_locked(mb);
	if (ret == 0)
		ret = mbox_write_locked(mb);
	mbox_unlock_nowait(mb, &lk);
	return ret;
}

int
mbox_store_flags(struct mbox *mb, const uint8_t *mark, uint32_t n, int op, unsigned flags,
    uint64_t keywords)
{
	return mbox_store_flags_cond(mb, mark, n, op, flags, keywords, UINT64_MAX, NULL);
}

int
mbox_store_flags_cond(struct mbox *mb, const uint8_t *mark, uint32_t n, int op,
    unsigned flags, uint64_t keywords, uint64_t unchangedsince, uint8_t *modified)
{
	struct mbox_lock lk = MBOX_LOCK_INIT;
	uint32_t i;
	int ret;

	if (!mb->rw) {
		mbox_set_error(&mb->err, EROFS, "%s is open read-only", mb->path);
		return -1;
	}
	if (mbox_lock(mb, &lk, MBOX_LK_WRITE) < 0)
		return -1;
	/* the flags as they are in the file now: what another session stored since we last
	 * looked is kept, and only this change is made to them (mbox_reload_locked keeps
	 * indices: messages removed meanwhile stay, as gone) */
	ret = mbox_reload_locked(mb);
	/* the mod-sequences as they are now, for UNCHANGEDSINCE (RFC 7162 3.1.3) */
	if (ret == 0 && unchangedsince != UINT64_MAX && mb->ms_stale)
		(void)mbox_modseq_update(mb);
	for (i = 0; ret == 0 && i < n && i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];
		unsigned f = m->flags;
		uint64_t kw = m->keywords;

		if (!mark[i] || (m->state & MSG_GONE))
			continue;
		if (unchangedsince != UINT64_MAX &&
		    (!mb->ms_ok || m->modseq > unchangedsince)) {
			if (modified != NULL)
				modified[i] = 1;
			continue;
		}
		switch (op) {
		case MBOX_STORE_SET:
			f = flags;
			kw = keywords;
			break;
		case MBOX_STORE_ADD:
			f |= flags;
			kw |= keywords;
			break;
		default:
			f &= ~flags;
			kw &= ~keywords;
			break;
		}
		mbox_msg_set_flags(mb, i, f, kw);
	}
	if (ret == 0)
		ret = mbox_write_locked(mb);
	mbox_unlock_nowait(mb, &lk);
	return ret;
}

/*
 * Expunge by collapse (mbox-collapse.h).  A run of consecutive expunged messages, and the
 * kept message K after it: K's From_ line and header are generated the way gen_msg writes
 * them, then padded so that they fill [a, K's body - len) exactly.
 */
struct crun {
	uint32_t start;		/* first expunged message of the run */
	uint32_t k;		/* the kept message after it (m.n: the run ends the file) */
	int ok;			/* c is a usable collapse step */
	struct mbox_collapse c;
	struct wbuf nh;
};

/* Append `pad` bytes of whitespace to a header line that is `len` bytes long so far (its LF
 * not yet written): first on the line, then on continuation lines of spaces, none longer
 * than MBOX_COLLAPSE_PAD_LINE.  Lines of white space only are RFC 5322's obsolete syntax
 * (4.2, obs-FWS: readers must accept it, 3.2.2 says not to generate it): a deliberate
 * departure, in a metadata field clients never see; any other byte would be read as a
 * keyword by UW, Dovecot or us.  Dovecot's mbox reader takes such a header as it is.
 * Returns 0, -1 on allocation failure, 1 if the bytes cannot be placed (a lone byte past a
 * full first line). */
static int
pad_fold(struct wbuf *b, size_t len, size_t pad)
{
	size_t room = len + 1 < MBOX_COLLAPSE_PAD_LINE ? MBOX_COLLAPSE_PAD_LINE - 1 - len : 0;
	size_t first = pad < room ? pad : room, rem = pad - first;

	if (rem == 1) {
		/* a continuation line is two bytes at least: give it one of the first line's */
		if (first == 0)
			return 1;
		first--;
		rem++;
	}
	if (wbuf_pad(b, first) < 0)
		return -1;
	while (rem > 0) {
		size_t seg = rem < MBOX_COLLAPSE_PAD_LINE ? rem : MBOX_COLLAPSE_PAD_LINE;

		if (rem - seg == 1)
			seg--;
		if (wbuf_str(b, "\n") < 0 || wbuf_pad(b, seg - 1) < 0)
			return -1;
		rem -= seg;
	}
	return 0;
}

/* K's From_ line and header with `pad` more bytes of whitespace in X-Keywords, ended by
 * the empty line; 0, -1 no memory, 1 cannot (see pad_fold). */
static int
collapse_header(struct mbox *mb, struct wbuf *b, const struct mbox_msg *m, int first,
    size_t pad)
{
	const unsigned char *map = mb->map;
	uint64_t pos = m->from_off + m->from_len;
	struct hdr_line l;
	struct wbuf meta = { 0 };
	size_t i, kw_end = 0, kw_start = 0;
	int r = -1;

	b->n = 0;
	if (wbuf_add(b, map + m->from_off, m->from_len) < 0)
		return -1;
	while (mbox_hdr_next(map, &pos, m->body_off, &l) && !l.empty) {
		if (l.name_len > 0 && mbox_meta_kind(map + l.off, l.name_len) != 0)
			continue;
		if (wbuf_add(b, map + l.off, (size_t)l.len) < 0)
			return -1;
	}
	if (mbox_meta_block(mb, &meta, m, first) < 0)
		goto out;
	/* the X-Keywords line: its LF is the one before "X-UID:", the last line */
	for (i = meta.n - 1; i > 0 && kw_end == 0; i--)
		if (meta.p[i - 1] == '\n' && i + 6 <= meta.n && memcmp(meta.p + i, "X-UID:", 6) == 0)
			kw_end = i - 1;
	for (i = kw_end; i > 0 && meta.p[i - 1] != '\n'; i--)
		;
	kw_start = i;
	if (kw_end == 0 || memcmp(meta.p + kw_start, "X-Keywords:", 11) != 0) {
		mbox_set_error(&mb->err, EINVAL, "metadata block without X-Keywords");
		goto out;
	}
	if (wbuf_add(b, meta.p, kw_end) < 0)
		goto out;
	r = pad_fold(b, kw_end - kw_start, pad);
	if (r != 0)
		goto out;
	r = wbuf_add(b, meta.p + kw_end, meta.n - kw_end) < 0 || wbuf_str(b, "\n") < 0 ? -1 : 0;
out:
	free(meta.p);
	return r;
}

/*
 * Plan the collapse step of run r: the largest block-aligned range inside [a, K's body)
 * that leaves room for K's new header.  Its padding is what is left over (under two
 * blocks, whatever K carried before: the header is generated afresh each time).
 */
static int
plan_collapse(struct mbox *mb, struct crun *r, uint64_t bs)
{
	const struct mbox_msg *k = &mb->m.v[r->k];
	uint64_t a = mb->m.v[r->start].from_off, ca, lmax, x, len;
	int first = r->start == 0 && !mb->base.pseudo, rc;

	r->ok = 0;
	if (r->k >= mb->m.n || (k->state & MSG_NO_BLANK) || k->from_len == 0 ||
	    mb->map[k->from_off + k->from_len - 1] != '\n' || k->from_off < a)
		return 0;
	rc = collapse_header(mb, &r->nh, k, first, 0);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (r->nh.n > MBOX_COLLAPSE_MAX_HEADER || k->body_off < a + r->nh.n)
		return 0;
	ca = (a + bs - 1) / bs * bs;
	if (ca >= k->body_off)
		return 0;
	x = k->body_off - a - r->nh.n;
	lmax = (k->body_off - ca) / bs * bs;
	len = x / bs * bs;
	if (len > lmax)
		len = lmax;
	if (len == 0)
		return 0;
	rc = collapse_header(mb, &r->nh, k, first, (size_t)(x - len));
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (a + r->nh.n + len != k->body_off) {
		mbox_set_error(&mb->err, EIO, "collapse header has the wrong length");
		return -1;
	}
	r->c.a = a;
	r->c.ca = ca;
	r->c.len = len;
	r->c.nh = r->nh.p;
	r->c.nh_len = r->nh.n;
	r->ok = 1;
	return 0;
}

/* After step r: K starts at a, everything after it moved back by len. */
static int
collapse_done(struct mbox *mb, const struct crun *r, const uint8_t *skip)
{
	struct mbox_msg *k = &mb->m.v[r->k], t;
	struct mbox_base base;
	uint64_t len = r->c.len;
	int first = r->start == 0 && !mb->base.pseudo;
	uint32_t i;

	for (i = r->k + 1; i < mb->m.n; i++) {
		struct mbox_msg *m = &mb->m.v[i];

		if (skip[i])
			continue;
		m->from_off -= len;
		m->body_off -= len;
		m->end -= len;
	}
	k->from_off = r->c.a;
	k->body_off -= len;
	k->end -= len;
	t = *k;
	memset(&base, 0, sizeof(base));
	if (mbox_reparse_header(mb, &t, first, first ? &base : NULL) != 0 || !t.x_uid_ok ||
	    t.x_uid != k->uid || t.body_off != k->body_off || (t.state & MSG_NO_BLANK) ||
	    (first && !base.found)) {
		mbox_set_error(&mb->err, EIO, "%s: collapsed message does not read back",
		    mb->path);
		return -1;
	}
	k->hdr_vsize = t.hdr_vsize;
	k->fp = t.fp;
	if (first)
		mb->base = base;
	return 0;
}

/*
 * Remove the expunged messages (skip[i] set), k of them, first the lowest index.  Runs that
 * can be collapsed are, from the last to the first, while that is cheaper than rewriting
 * (MBOX_COLLAPSE_STEP_COST); what is after the last collapsed run is rewritten first.
 */
static int
expunge_apply(struct mbox *mb, const uint8_t *skip, uint32_t first, uint32_t k)
{
	struct crun *runs = NULL;
	uint32_t nr = 0, i, j, live = 0, best = 0;
	uint64_t bs = 0, best_cost, cost;
	int ret = -1, any_gone = 0;

	for (i = 0; i < mb->m.n; i++) {
		live += !(mb->m.v[i].state & MSG_GONE);
		any_gone |= (mb->m.v[i].state & MSG_GONE) != 0;
	}
	if (live == k && !mb->base.pseudo) {
		/* emptied: keep the UID state in a pseudo message (see gen_new_pseudo) */
		struct tailgen g = { mb, first, 0, skip, 1, 1 };

		if (mbox_tail_replace(mb, 0, tail_gen, &g) < 0)
			return -1;
		return rescan_tail(mb, 0, first, skip);
	}
	/* messages others removed have no place in the file to shift: rewrite */
	if (!any_gone)
		bs = mbox_collapse_block(mb);
	if (bs > 0) {
		runs = calloc(MBOX_COLLAPSE_MAX_STEPS + 1, sizeof(*runs));
		if (runs == NULL) {
			mbox_set_error(&mb->err, ENOMEM, "out of memory");
			return -1;
		}
		for (i = first; i < mb->m.n && nr <= MBOX_COLLAPSE_MAX_STEPS; i++) {
			if (!skip[i] || (i > first && skip[i - 1]))
				continue;
			runs[nr].start = i;
			for (j = i; j < mb->m.n && skip[j]; j++)
				;
			runs[nr].k = j;
			if (plan_collapse(mb, &runs[nr], bs) < 0)
				goto out;
			nr++;
		}
	}
	/* best = how many runs (from the first) to collapse; the rest is rewritten */
	/* a rewrite has a step's fixed cost (journal, syncs) too, plus its bytes */
	best_cost = MBOX_COLLAPSE_STEP_COST + mb->size - mb->m.v[first].from_off;
	for (i = 0; i < nr && i < MBOX_COLLAPSE_MAX_STEPS && runs[i].ok; i++) {
		cost = (uint64_t)(i + 1) * MBOX_COLLAPSE_STEP_COST;
		if (i + 1 < nr)
			cost += MBOX_COLLAPSE_STEP_COST + mb->size -
			    mb->m.v[runs[i + 1].start].from_off;
		if (cost < best_cost) {
			best_cost = cost;
			best = i + 1;
		}
	}
	/* the runs after the last collapsed one (all if none is) are rewritten first; every
	 * run is planned when nr <= MBOX_COLLAPSE_MAX_STEPS, else best < nr */
	if (best < nr || best == 0) {
		uint32_t from = best == 0 ? first : runs[best].start;
		struct tailgen g = { mb, from, 0, skip, from > 0 || mb->base.pseudo, 0 };
		uint64_t off = mb->m.v[from].from_off;

		if (mbox_tail_replace(mb, off, tail_gen, &g) < 0 ||
		    rescan_tail(mb, off, from, skip) < 0)
			goto out;
	}
	for (i = best; i > 0; i--) {
		int r = mbox_collapse_run(mb, &runs[i - 1].c);

		if (r < 0)
			goto out;
		if (r > 0) {
			/* refused: rewrite what is left (the runs done are skipped alike) */
			struct tailgen g = { mb, first, 0, skip, first > 0 || mb->base.pseudo, 0 };
			uint64_t off = mb->m.v[first].from_off;

			if (mbox_tail_replace(mb, off, tail_gen, &g) < 0 ||
			    rescan_tail(mb, off, first, skip) < 0)
				goto out;
			break;
		}
		if (collapse_done(mb, &runs[i - 1], skip) < 0)
			goto out;
	}
	ret = 0;
out:
	for (i = 0; i < nr; i++)
		free(runs[i].nh.p);
	free(runs);
	return ret;
}

/* Expunge: collapse or rewrite from the first expunged message, leaving out the expunged
 * ones (expunge_apply). */
int
mbox_expunge(struct mbox *mb, const uint32_t *uids, size_t n_uids, uint32_t **expunged_r,
    size_t *n_r)
{
	struct mbox_lock lk = MBOX_LOCK_INIT;
	uint8_t *skip = NULL;
	uint32_t *out = NULL, i, first = UINT32_MAX, k = 0, j;
	int ret = -1;

	*expunged_r = NULL;
	*n_r = 0;
	if (!mb->rw) {
		mbox_set_error(&mb->err, EROFS, "%s is open read-only", mb->path);
		return -1;
	}
	if (mbox_lock(mb, &lk, MBOX_LK_WRITE) < 0)
		return -1;
	if (mbox_reload_locked(mb) < 0)
		goto out;
	/* flags first (cheap, mostly in place), so the rewrite below writes current ones */
	if (mbox_write_locked(mb) < 0)
		goto out;
	skip = calloc(mb->m.n + 1, 1);
	out = malloc(((size_t)mb->m.n + 1) * sizeof(*out));
	if (skip == NULL || out == NULL) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < mb->m.n; i++) {
		const struct mbox_msg *m = &mb->m.v[i];

		if (!(m->flags & MBOX_DELETED) || (m->state & MSG_GONE))
			continue;
		if (uids != NULL) {
			size_t lo = 0, hi = n_uids;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (uids[mid] < m->uid)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo >= n_uids || uids[lo] != m->uid)
				continue;
		}
		skip[i] = 1;
		out[k++] = m->uid;
		if (first == UINT32_MAX)
			first = i;
	}
	if (k > 0) {
		/* the sessions that still number them may FETCH them: keep copies first */
		(void)mbox_gone_save(mb, skip);
		if (expunge_apply(mb, skip, first, k) < 0)
			goto out;
		for (i = 0, j = 0; i < mb->m.n; i++) {
			if (skip[i]) {
				if (mb->m.v[i].flags & MBOX_RECENT)
					mb->recent--;
				continue;
			}
			mb->m.v[j++] = mb->m.v[i];
		}
		mb->m.n = j;
		mb->clean_below = 0;	/* renumbered */
		mb->base.last_uid = mb->next_uid - 1;
		mbox_modseq_touch(mb, 0);	/* tombstones before the unlock */
	}
	*expunged_r = out;
	*n_r = k;
	out = NULL;
	ret = 0;
out:
	mbox_unlock(mb, &lk);
	free(skip);
	free(out);
	return ret;
}
