/*
 * mbox-append.c: APPEND and COPY.  Incoming messages are converted and staged in an unnamed
 * temporary file without any lock (the client may be slow); commit locks the mailbox and
 * copies them to its end.
 */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGE_FLUSH	(256 * 1024)
#define LINE_HOLD	24	/* longer than any hidden header name plus the colon */

struct staged {
	uint64_t off;		/* in the staging file */
	uint64_t hdr_len;	/* converted header, without its empty line */
	uint64_t len;		/* header + body (no empty line between: added at commit) */
	int64_t date;
	int tz_min;
	unsigned flags;
	uint64_t keywords;
};

struct mbox_append {
	struct mbox *mb;
	int fd;			/* staging file */
	uint64_t size;		/* bytes staged */
	struct staged *msgs;
	size_t n, cap;
	int in_msg;
	int failed;

	/* converter state for the current message */
	struct wbuf out;
	int in_header;
	int line_start;
	int cont_ok;		/* a continuation line may follow (inside a header field) */
	int hidden_field;	/* the current header field is being renamed */
	int pending_cr;
	unsigned char hold[LINE_HOLD];
	size_t hold_n;
	int holding;
	unsigned char last;	/* last byte emitted for this message */
	uint64_t msg_bytes;	/* bytes emitted for this message */
};

static int
ap_err(struct mbox_append *ap, int code, const char *what)
{
	mbox_set_error(&ap->mb->err, code, "%s: %s", what, strerror(code));
	ap->failed = 1;
	return -1;
}

static int
flush_out(struct mbox_append *ap, int force)
{
	size_t done = 0;

	if (ap->out.n == 0 || (!force && ap->out.n < STAGE_FLUSH))
		return 0;
	while (done < ap->out.n) {
		ssize_t w = pwrite(ap->fd, ap->out.p + done, ap->out.n - done,
		    (off_t)(ap->size + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ap_err(ap, errno ? errno : EIO, "write staging file");
		done += (size_t)w;
	}
	ap->size += ap->out.n;
	ap->out.n = 0;
	return 0;
}

static int
emit(struct mbox_append *ap, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (wbuf_add(&ap->out, p, n) < 0)
		return ap_err(ap, ENOMEM, "staging");
	ap->last = ((const unsigned char *)p)[n - 1];
	ap->msg_bytes += n;
	return flush_out(ap, 0);
}

int
mbox_append_begin(struct mbox *mb, struct mbox_append **ap_r)
{
	struct mbox_append *ap;

	*ap_r = NULL;
	if (!mb->rw) {
		mbox_set_error(&mb->err, EROFS, "%s is open read-only", mb->path);
		return -1;
	}
	ap = calloc(1, sizeof(*ap));
	if (ap == NULL) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		return -1;
	}
	ap->mb = mb;
	ap->fd = open(mb->journal_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (ap->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* a file system without O_TMPFILE: a named file, unlinked at once */
		char tmpl[4096];
		int n = snprintf(tmpl, sizeof(tmpl), "%s/.imapd-append.XXXXXX", mb->journal_dir);

		if (n > 0 && (size_t)n < sizeof(tmpl)) {
			ap->fd = mkostemp(tmpl, O_CLOEXEC);
			if (ap->fd >= 0)
				(void)unlink(tmpl);
		}
	}
	if (ap->fd < 0) {
		mbox_set_error(&mb->err, errno, "create staging file in %s: %s", mb->journal_dir,
		    strerror(errno));
		free(ap);
		return -1;
	}
	*ap_r = ap;
	return 0;
}

int
mbox_append_msg_begin(struct mbox_append *ap, time_t date, int tz_min, unsigned flags,
    uint64_t keywords)
{
	struct staged *s;

	if (ap->failed || ap->in_msg)
		return ap_err(ap, EINVAL, "append");
	if (ap->n >= MBOX_APPEND_MAX_MSGS)
		return ap_err(ap, E2BIG, "append");
	if (ap->n == ap->cap) {
		size_t cap = ap->cap ? ap->cap * 2 : 8;
		struct staged *nv = realloc(ap->msgs, cap * sizeof(*nv));

		if (nv == NULL)
			return ap_err(ap, ENOMEM, "append");
		ap->msgs = nv;
		ap->cap = cap;
	}
	s = &ap->msgs[ap->n];
	memset(s, 0, sizeof(*s));
	s->off = ap->size + ap->out.n;
	s->date = (int64_t)date;
	s->tz_min = tz_min;
	s->flags = flags & MBOX_FLAGS_STORED;
	s->keywords = keywords;
	ap->in_msg = 1;
	ap->in_header = 1;
	ap->line_start = 1;
	ap->cont_ok = 0;
	ap->hidden_field = 0;
	ap->pending_cr = 0;
	ap->hold_n = 0;
	ap->holding = 1;
	ap->last = '\n';
	ap->msg_bytes = 0;
	return 0;
}

/* Decide what the held start of a line is, once enough is known. */
static int
release_hold(struct mbox_append *ap)
{
	const unsigned char *h = ap->hold;
	size_t n = ap->hold_n;

	ap->holding = 0;
	if (n >= 5 && memcmp(h, "From ", 5) == 0) {
		/* mboxo: the line would end the message; quote it */
		if (emit(ap, ">", 1) < 0)
			return -1;
	} else if (ap->in_header && n > 0 && (h[0] == ' ' || h[0] == '\t')) {
		/* continuation of the field before: renamed with it if hidden */
	} else if (ap->in_header) {
		const unsigned char *colon = memchr(h, ':', n);
		/* without a colon yet (the hold is full of "NAME   "): judge the name so far */
		size_t nl = colon != NULL ? (size_t)(colon - h) : n;

		/* the name as the parser sees it: white space before the colon ignored */
		while (nl > 0 && (h[nl - 1] == ' ' || h[nl - 1] == '\t'))
			nl--;
		ap->hidden_field = 0;
		if (mbox_meta_kind(h, nl) != 0) {
			/* nobody may forge the store's metadata: keep it under another name */
			if (emit(ap, "X-Original-", 11) < 0)
				return -1;
			ap->hidden_field = 1;
		}
	}
	return emit(ap, h, n);
}

static int
header_end(struct mbox_append *ap)
{
	struct staged *s = &ap->msgs[ap->n];

	ap->in_header = 0;
	s->hdr_len = ap->msg_bytes;
	return 0;
}

static int
put_byte(struct mbox_append *ap, unsigned char c)
{
	if (ap->line_start) {
		ap->line_start = 0;
		ap->holding = 1;
		ap->hold_n = 0;
		if (ap->in_header && c == '\n') {
			/* the empty line: end of header (not emitted now, added at commit) */
			ap->holding = 0;
			ap->line_start = 1;
			return header_end(ap);
		}
	}
	if (ap->holding) {
		ap->hold[ap->hold_n++] = c;
		if (c == '\n' && ap->in_header && ap->hold_n == 2 && ap->hold[0] == '\r') {
			/* CR alone on a line reads as the empty line too: end of header */
			ap->holding = 0;
			ap->line_start = 1;
			return header_end(ap);
		}
		if (c == '\n')
			return release_hold(ap) < 0 ? -1 : (ap->line_start = 1, 0);
		/* enough to decide: not "From " and (in header) a colon seen or too long */
		if (ap->hold_n == LINE_HOLD || (ap->hold_n <= 5 &&
		    memcmp(ap->hold, "From ", ap->hold_n) != 0 &&
		    (!ap->in_header || c == ':')) || (ap->in_header && c == ':') ||
		    (ap->hold_n == 5 && memcmp(ap->hold, "From ", 5) == 0))
			return release_hold(ap);
		return 0;
	}
	if (emit(ap, &c, 1) < 0)
		return -1;
	if (c == '\n')
		ap->line_start = 1;
	return 0;
}

int
mbox_append_write(struct mbox_append *ap, const unsigned char *p, size_t len)
{
	size_t i;

	if (ap->failed || !ap->in_msg)
		return ap_err(ap, EINVAL, "append");
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (ap->pending_cr) {
			ap->pending_cr = 0;
			if (c != '\n' && put_byte(ap, '\r') < 0)
				return -1;
		}
		if (c == '\r') {
			ap->pending_cr = 1;
			continue;
		}
		if (put_byte(ap, c) < 0)
			return -1;
	}
	return 0;
}

int
mbox_append_msg_end(struct mbox_append *ap)
{
	struct staged *s;

	if (ap->failed || !ap->in_msg)
		return ap_err(ap, EINVAL, "append");
	/* A CR at the very end is dropped: with the LF the message must end in it would
	 * read as CRLF, and in the header as the empty line. */
	ap->pending_cr = 0;
	if (ap->holding && ap->in_header && ap->hold_n == 1 && ap->hold[0] == '\r') {
		ap->holding = 0;
		ap->hold_n = 0;
		header_end(ap);
	}
	if (ap->holding && ap->hold_n > 0 && release_hold(ap) < 0)
		return -1;
	ap->holding = 0;
	if (ap->last != '\n' && emit(ap, "\n", 1) < 0)
		return -1;
	if (ap->in_header)
		header_end(ap);
	s = &ap->msgs[ap->n];
	s->len = ap->msg_bytes;
	ap->n++;
	ap->in_msg = 0;
	return flush_out(ap, 1);
}

void
mbox_append_abort(struct mbox_append **app)
{
	struct mbox_append *ap = *app;

	if (ap == NULL)
		return;
	(void)close(ap->fd);
	free(ap->out.p);
	free(ap->msgs);
	free(ap);
	*app = NULL;
}

static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
	"Sep", "Oct", "Nov", "Dec" };

/* "From MAILER-DAEMON Sat Nov 21 17:40:58 2026 +0100": ctime style in the message's zone,
 * with the zone after the year so the date reads back exactly. */
static int
from_line(struct wbuf *b, int64_t date, int tz_min)
{
	char line[128];
	time_t t = (time_t)(date + (int64_t)tz_min * 60);
	struct tm tm;
	int a = tz_min < 0 ? -tz_min : tz_min, n;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	n = snprintf(line, sizeof(line),
	    "From MAILER-DAEMON %s %s %2d %02d:%02d:%02d %04d %c%02d%02d\n",
	    wday[tm.tm_wday], mon[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900, tz_min < 0 ? '-' : '+', a / 60, a % 60);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return wbuf_add(b, line, (size_t)n);
}

static int
copy_staged(struct mbox *mb, int sfd, uint64_t off, uint64_t len, struct wbuf *b,
    uint64_t *pos)
{
	while (len > 0) {
		size_t n = len < STAGE_FLUSH ? (size_t)len : STAGE_FLUSH;
		ssize_t r;

		if (wbuf_reserve(b, n) < 0)
			return -1;
		r = pread(sfd, b->p + b->n, n, (off_t)off);
		if (r <= 0) {
			mbox_set_error(&mb->err, r < 0 ? errno : EIO, "read staging file");
			return -1;
		}
		b->n += (size_t)r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
		if (b->n >= STAGE_FLUSH) {
			mbox_crash_point(mb);
			if (pwrite(mb->fd, b->p, b->n, (off_t)*pos) != (ssize_t)b->n) {
				mbox_set_error(&mb->err, errno ? errno : EIO, "write %s: %s",
				    mb->path, strerror(errno ? errno : EIO));
				return -1;
			}
			*pos += b->n;
			b->n = 0;
		}
	}
	return 0;
}

int
mbox_append_commit(struct mbox_append **app, uint32_t *uid_first_r, uint32_t *n_r)
{
	struct mbox_append *ap = *app;
	struct mbox *mb = ap->mb;
	struct mbox_lock lk = MBOX_LOCK_INIT;
	struct wbuf b = { 0 };
	uint64_t start = 0, pos;
	size_t pad = 0;
	uint32_t first_uid = 0, i;
	int ret = -1, locked = 0;

	*uid_first_r = 0;
	*n_r = 0;
	if (ap->failed || ap->in_msg || ap->n == 0) {
		if (!ap->failed)
			mbox_set_error(&mb->err, EINVAL, "append: nothing to commit");
		goto out;
	}
	if (flush_out(ap, 1) < 0)
		goto out;
	if (mb->fd < 0) {
		mb->fd = open(mb->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (mb->fd < 0) {
			mbox_set_error(&mb->err, errno, "create %s: %s", mb->path,
			    strerror(errno));
			goto out;
		}
		mb->size = 0;
		if (mbox_remap(mb) < 0)
			goto out;
	}
	if (mbox_lock(mb, &lk, MBOX_LK_WRITE) < 0)
		goto out;
	locked = 1;
	/* the view must be current (an MDA may have delivered): its UIDs come first, and
	 * metadata for it is written before ours so UIDs stay in file order */
	if (mbox_reload_locked(mb) < 0)
		goto out;
	if (mbox_write_locked(mb) < 0)
		goto out;
	start = mb->size;
	pos = start;
	/* the file must end in an empty line before a new From_ line */
	if (start >= 1 && mb->map[start - 1] != '\n') {
		if (wbuf_add(&b, "\n\n", 2) < 0)
			goto nomem;
	} else if (start >= 2 && mb->map[start - 2] != '\n') {
		if (wbuf_add(&b, "\n", 1) < 0)
			goto nomem;
	}
	pad = b.n;
	first_uid = mb->next_uid;
	if (first_uid == 0 || first_uid > UINT32_MAX - ap->n) {
		mbox_set_error(&mb->err, EOVERFLOW, "%s: UIDs exhausted", mb->path);
		goto out;
	}
	mb->next_uid += (uint32_t)ap->n;
	for (i = 0; i < ap->n; i++) {
		const struct staged *s = &ap->msgs[i];
		struct mbox_msg m;
		int first = start == 0 && i == 0 && !mb->base.pseudo;

		memset(&m, 0, sizeof(m));
		m.uid = first_uid + i;
		m.state = MSG_APPENDED;
		m.flags = (uint8_t)s->flags;
		m.keywords = s->keywords;
		if (from_line(&b, s->date, s->tz_min) < 0)
			goto nomem;
		if (copy_staged(mb, ap->fd, s->off, s->hdr_len, &b, &pos) < 0)
			goto fail_write;
		if (mbox_meta_block(mb, &b, &m, first) < 0 || wbuf_add(&b, "\n", 1) < 0)
			goto nomem;
		if (copy_staged(mb, ap->fd, s->off + s->hdr_len, s->len - s->hdr_len, &b,
		    &pos) < 0)
			goto fail_write;
		if (wbuf_add(&b, "\n", 1) < 0)
			goto nomem;
	}
	mbox_crash_point(mb);
	if (b.n > 0 && pwrite(mb->fd, b.p, b.n, (off_t)pos) != (ssize_t)b.n) {
		mbox_set_error(&mb->err, errno ? errno : EIO, "write %s: %s", mb->path,
		    strerror(errno ? errno : EIO));
		goto fail_write;
	}
	/*
	 * Not synced yet: the base update below (the new last UID in X-IMAPbase, written in
	 * place) goes to the disk with the same fsync.  Either may reach the disk first
	 * without harm, since no OK has been sent: a new last UID without the mail only
	 * skips UIDs, and mail whose X-UID is above the recorded last UID gets that UID
	 * again at the next open (UIDs above it are reassigned in order).
	 */
	mb->unsynced = 1;
	{
		uint32_t keep_n = mb->m.n, l;

		/* A file not ending in LF got "\n\n": its last message gained that LF (as a
		 * fresh parse of the file will also see it). */
		for (l = keep_n; pad == 2 && l > 0; l--) {
			struct mbox_msg *m = &mb->m.v[l - 1];

			if (m->state & MSG_GONE)
				continue;
			if (m->end != start)
				break;
			if (!(m->end > 0 && mb->map[m->end - 1] == '\r')) {
				if (m->state & MSG_NO_BLANK)
					m->hdr_vsize++;
				else
					m->body_bare_lf++;
			}
			if (m->state & MSG_NO_BLANK) {
				m->hdr_vsize++;
				m->body_off++;
				m->fp = mbox_msg_fp(mb->map + m->from_off, m->from_len,
				    m->hdr_vsize);
			}
			m->end++;
			break;
		}

		if (mbox_remap(mb) < 0 || mbox_scan(mb, start + pad, &mb->m, NULL) < 0 ||
		    mb->m.n != keep_n + ap->n) {
			if (mb->err.code == 0)
				mbox_set_error(&mb->err, EIO,
				    "%s: appended mail does not read back", mb->path);
			mb->m.n = keep_n;
			goto fail_write;
		}
		if (start == 0 && !mb->base.pseudo) {
			/* the first message carries the base we just wrote */
			mb->base.found = 1;
			mb->base.uidvalidity = mb->uidvalidity;
			mb->base.last_uid = mb->next_uid - 1;
			mb->base_dirty = 0;
		}
		for (i = 0; i < ap->n; i++) {
			struct mbox_msg *m = &mb->m.v[keep_n + i];

			m->uid = first_uid + i;
			/* \Recent here; the file keeps it new for the next session until this
			 * one writes (mbox_sync then marks it old, as for delivered mail) */
			m->state |= MSG_UID_STORED | MSG_APPENDED;
			/* appended by this session: \Recent here (RFC 3501 6.3.11) */
			m->flags |= MBOX_RECENT;
			mb->recent++;
		}
		mbox_modseq_touch(mb, keep_n);	/* new mail: its mod-sequence before the unlock */
	}
	if (mbox_write_locked(mb) < 0)
		goto fail_sync;	/* the mail is in; only the base update failed */
	if (mbox_sync_unsynced(mb) < 0)
		goto fail_sync;
	*uid_first_r = first_uid;
	*n_r = (uint32_t)ap->n;
	ret = 0;
	goto out;
nomem:
	mbox_set_error(&mb->err, ENOMEM, "out of memory");
fail_write:
	/* never leave a partial message: cut the file back */
	mb->next_uid = first_uid;
	if (ftruncate(mb->fd, (off_t)start) == 0)
		(void)fsync(mb->fd);	/* the error already set is the one to report */
	mb->unsynced = 0;
	(void)mbox_remap(mb);
	goto out;
fail_sync:
	/* the mail is in the file and in the view; it is answered NO all the same */
	if (mb->unsynced)
		(void)fsync(mb->fd);
	mb->unsynced = 0;
out:
	if (locked)
		mbox_unlock_nowait(mb, &lk);
	free(b.p);
	mbox_append_abort(app);
	return ret;
}

int
mbox_copy(struct mbox *dst, struct mbox *src, const uint32_t *idx, size_t n,
    uint32_t *uid_first_r)
{
	struct mbox_append *ap;
	uint32_t count;
	size_t k;

	*uid_first_r = 0;
	if (mbox_append_begin(dst, &ap) < 0)
		return -1;
	/* the messages are staged under src's read lock, which is let go before dst is
	 * locked to write (both may be the same file) */
	if (mbox_read_begin(src) < 0) {
		dst->err = src->err;
		mbox_append_abort(&ap);
		return -1;
	}
	for (k = 0; k < n; k++) {
		uint32_t i = idx[k];
		const struct mbox_msg *m;
		uint64_t kw = 0, pos = 0;
		const unsigned char *p;
		size_t len;
		unsigned j;
		int tz;
		time_t date;

		if (i >= src->m.n || !mbox_msg_available(src, i)) {
			mbox_set_error(&dst->err, ENOENT, "message %u no longer exists", i + 1);
			mbox_read_end(src);
			mbox_append_abort(&ap);
			return -1;
		}
		m = &src->m.v[i];
		for (j = 0; j < src->n_kw; j++)
			if (m->keywords & (1ULL << j)) {
				int d = mbox_keyword_lookup(dst, src->kw[j], strlen(src->kw[j]),
				    1);

				if (d >= 0)
					kw |= 1ULL << d;
			}
		date = mbox_msg_date(src, i, &tz);
		if (mbox_append_msg_begin(ap, date, tz, m->flags, kw) < 0)
			goto fail;
		while (mbox_header_next(src, i, &pos, &p, &len))
			if (mbox_append_write(ap, p, len) < 0)
				goto fail;
		if (m->state & MSG_NO_BLANK) {
			if (mbox_append_write(ap, (const unsigned char *)"\n", 1) < 0)
				goto fail;
		}
		mbox_msg_body(src, i, &p, &len);
		if (mbox_append_write(ap, p, len) < 0 || mbox_append_msg_end(ap) < 0)
			goto fail;
	}
	mbox_read_end(src);
	return mbox_append_commit(&ap, uid_first_r, &count);
fail:
	mbox_read_end(src);
	mbox_append_abort(&ap);
	return -1;
}
