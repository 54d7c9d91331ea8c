/* mbox-sync.c: noticing what others did to the file, and bringing the view up to date. */
#include "mbox/mbox-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void
mbox_sync_result_clear(struct mbox_sync_result *res)
{
	free(res->expunged);
	free(res->changed);
	memset(res, 0, sizeof(*res));
}

/* Cheap check: has the file changed since we last read or wrote it? */
static int
file_changed(struct mbox *mb, int *gone_r)
{
	struct stat st;

	*gone_r = 0;
	if (mb->fd < 0)
		return access(mb->path, F_OK) == 0;
	if (stat(mb->path, &st) < 0) {
		*gone_r = errno == ENOENT;
		return 1;
	}
	return st.st_ino != mb->ino || st.st_dev != mb->dev || (uint64_t)st.st_size != mb->size ||
	    st.st_mtim.tv_sec != mb->mtime_sec || st.st_mtim.tv_nsec != mb->mtime_nsec;
}

/* The file was replaced (renamed over) or created: take the new one, keeping the descriptor
 * number so a lock structure that names it stays valid. */
static int
reopen(struct mbox *mb)
{
	int fd = mbox_open_file(mb->path, (mb->rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY |
	    O_NOFOLLOW);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;	/* removed: an empty mailbox, keep the old descriptor */
		mbox_set_error(&mb->err, errno, "open %s: %s", mb->path, strerror(errno));
		return -1;
	}
	if (mb->fd < 0) {
		mb->fd = fd;
		return 1;
	}
	if (dup2(fd, mb->fd) < 0) {
		mbox_set_error(&mb->err, errno, "dup2: %s", strerror(errno));
		(void)close(fd);
		return -1;
	}
	(void)close(fd);
	return 1;
}

/*
 * Fast path for the common case (an MDA appended, or another session changed flags in
 * place): every message we know is still at its offset; re-read only their headers (flags
 * written in place never change a header's length) and scan the file from the last known
 * message on.  Returns 1 with *nv and *nb filled, 0 if the layout changed (the caller
 * re-reads everything), -1 on error.
 */
int
mbox_scan_incremental(struct mbox *mb, struct msgvec *nv, struct mbox_base *nb)
{
	struct msgvec head = { 0 };
	uint32_t i, n = mb->m.n, live = 0, last = 0, first = UINT32_MAX;
	uint64_t save = mb->size;
	int r = 0;

	memset(nb, 0, sizeof(*nb));
	/* only what is still in the file counts: messages others removed (MSG_GONE) are
	 * not looked for */
	for (i = 0; i < n; i++)
		if (!(mb->m.v[i].state & MSG_GONE)) {
			if (first == UINT32_MAX)
				first = i;
			last = i;
			live++;
		}
	if (live == 0)
		return 0;
	if (mb->base.pseudo) {
		mb->size = mb->m.v[first].from_off;
		r = mbox_scan(mb, 0, &head, nb);
		mb->size = save;
		if (r < 0 || !nb->pseudo || head.n != 0)
			goto nomatch;
	}
	head.cap = live + 16;
	head.v = malloc((size_t)head.cap * sizeof(*head.v));
	if (head.v == NULL)
		goto nomatch;
	for (i = 0; i < last; i++) {
		struct mbox_msg m = mb->m.v[i];

		if (m.state & MSG_GONE)
			continue;
		if (m.from_off + m.from_len > m.body_off || m.end > save)
			goto nomatch;
		r = mbox_reparse_header(mb, &m, i == first && !mb->base.pseudo, nb);
		if (r != 0 || m.body_off != mb->m.v[i].body_off)
			goto nomatch;
		head.v[head.n++] = m;
	}
	r = mbox_scan(mb, mb->m.v[last].from_off, &head,
	    last == first && !mb->base.pseudo ? nb : NULL);
	if (r < 0 || head.n < live || head.v[live - 1].end != mb->m.v[last].end)
		goto nomatch;
	*nv = head;
	return 1;
nomatch:
	mb->size = save;
	free(head.v);
	return r < 0 ? -1 : 0;
}

static int
push_uid(uint32_t **arr, size_t *n, uint32_t uid)
{
	/* grows by doubling: *n is a power of two exactly when the array is full */
	if (*n == 0 || (*n >= 16 && (*n & (*n - 1)) == 0)) {
		size_t cap = *n < 16 ? 16 : *n * 2;
		uint32_t *na = realloc(*arr, cap * sizeof(*na));

		if (na == NULL)
			return -1;
		*arr = na;
	}
	(*arr)[(*n)++] = uid;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Number the freshly parsed messages nv.  Returns 0, 1 if UIDs cannot be kept (a new
 * UIDVALIDITY is needed), 2 if the file has a new UIDVALIDITY (taken). */
static int
number(struct mbox *mb, struct msgvec *nv, const struct mbox_base *nb, uint32_t *next_r)
{
	uint32_t next, i, j, k, eff_last, max_old = 0, old_n = mb->m.n, first_unstored;

	if (nb->found && nb->uidvalidity == mb->uidvalidity) {
		eff_last = nb->last_uid;
		next = mb->next_uid > nb->last_uid + 1 ? mb->next_uid : nb->last_uid + 1;
	} else if (nb->found) {
		/* another process gave the mailbox a new UIDVALIDITY: nothing can be kept */
		mb->uidvalidity = nb->uidvalidity;
		next = nb->last_uid + 1;
		mbox_assign_uids(nv, 0, 0, nb->last_uid, 1, &next);
		*next_r = next;
		return 2;
	} else {
		/* the base is gone (a local mail reader removed the first message): our own
		 * numbers still describe the X-UIDs left in the file */
		eff_last = mb->next_uid - 1;
		next = mb->next_uid;
		mb->base_dirty = 1;
	}
	mbox_assign_uids(nv, 0, 0, eff_last, 1, &next);
	if (old_n > 0)
		max_old = mb->m.v[old_n - 1].uid;
	/* messages whose UIDs were never stored: match them to ours by fingerprint, in order,
	 * so that a read-only session keeps its numbers */
	first_unstored = nv->n;
	for (i = 0; i < nv->n; i++)
		if (!(nv->v[i].state & MSG_UID_STORED)) {
			first_unstored = i;
			break;
		}
	for (k = 0; k < old_n && ((mb->m.v[k].state & MSG_UID_STORED) ||
	    (mb->m.v[k].state & MSG_GONE)); k++)
		;
	next = mb->next_uid > eff_last + 1 ? mb->next_uid : eff_last + 1;
	for (i = first_unstored; i < nv->n; i++) {
		uint32_t prev = i > 0 ? nv->v[i - 1].uid : 0;

		if (k < old_n && nv->v[i].fp == mb->m.v[k].fp && mb->m.v[k].uid > prev &&
		    !(mb->m.v[k].state & MSG_UID_STORED)) {
			nv->v[i].uid = mb->m.v[k++].uid;
			if (next <= nv->v[i].uid)
				next = nv->v[i].uid + 1;
			continue;
		}
		k = old_n;
		if (next <= prev)
			next = prev + 1;
		nv->v[i].uid = next++;
	}
	*next_r = next;
	/* a message we do not know numbered below one we do would put new mail before old,
	 * which IMAP cannot express: start over with a new UIDVALIDITY */
	for (i = 0, j = 0; i < nv->n; i++) {
		while (j < old_n && mb->m.v[j].uid < nv->v[i].uid)
			j++;
		if ((j >= old_n || mb->m.v[j].uid != nv->v[i].uid) && nv->v[i].uid < max_old)
			return 1;
	}
	return 0;
}

/*
 * Merge the freshly parsed messages nv (numbered) with what we had.  UIDs that vanished
 * are expunged (kept as MSG_GONE entries when keep_gone), UIDs in both keep session state
 * (\Recent, changes not yet written), the rest are new.
 */
static int
reconcile(struct mbox *mb, struct msgvec *nv, const struct mbox_base *nb,
    struct mbox_sync_result *res, int keep_gone)
{
	struct msgvec out = { 0 };
	uint32_t next, i, j, old_n = mb->m.n;
	int reset;

	reset = number(mb, nv, nb, &next);
	if (reset == 1) {
		uint32_t v = mbox_new_uidvalidity(mb);

		mb->uidvalidity = v > mb->uidvalidity ? v : mb->uidvalidity + 1;
		for (i = 0; i < nv->n; i++) {
			nv->v[i].uid = i + 1;
			nv->v[i].state &= (uint8_t)~MSG_UID_STORED;
		}
		next = nv->n + 1;
		mb->base_dirty = 1;
	}
	if (reset) {
		res->uidvalidity_changed = 1;
		for (i = 0; i < nv->n; i++)
			if (!(nv->v[i].state & MSG_STATUS_O))
				nv->v[i].flags |= MBOX_RECENT;
		out = *nv;
		memset(nv, 0, sizeof(*nv));
		goto done;
	}
	out.cap = nv->n + old_n + 1;
	out.v = malloc((size_t)out.cap * sizeof(*out.v));
	if (out.v == NULL)
		return -1;
	for (i = 0, j = 0; i < old_n || j < nv->n;) {
		const struct mbox_msg *o = i < old_n ? &mb->m.v[i] : NULL;
		struct mbox_msg *m = j < nv->n ? &nv->v[j] : NULL;

		if (o != NULL && (m == NULL || o->uid < m->uid)) {
			/* vanished */
			i++;
			if (keep_gone) {
				struct mbox_msg g = *o;

				/* sizes kept, offsets made relative to the message (the
				 * client may still FETCH it from a kept copy) */
				if (!(g.state & MSG_GONE)) {
					g.body_off -= g.from_off;
					g.end -= g.from_off;
					g.from_off = 0;
				}
				g.state = (uint8_t)(g.state | MSG_GONE);
				g.state &= (uint8_t)~MSG_DIRTY;
				out.v[out.n++] = g;
			} else if (push_uid(&res->expunged, &res->n_expunged, o->uid) < 0) {
				goto nomem;
			}
			continue;
		}
		if (o == NULL || m->uid < o->uid) {
			/* new */
			if (!(m->state & MSG_STATUS_O))
				m->flags |= MBOX_RECENT;
			out.v[out.n++] = *m;
			j++;
			continue;
		}
		/* in both */
		m->modseq = o->modseq;
		if (o->flags & MBOX_RECENT)
			m->flags |= MBOX_RECENT;
		if (o->state & MSG_DIRTY) {
			/* our change not yet written wins over the file */
			m->flags = (uint8_t)((o->flags & MBOX_FLAGS_STORED) |
			    (m->flags & MBOX_RECENT));
			m->keywords = o->keywords;
			if ((m->flags & MBOX_FLAGS_STORED) != m->disk_flags ||
			    m->keywords != m->disk_keywords)
				m->state |= MSG_DIRTY;
		} else if ((m->flags & MBOX_FLAGS_STORED) != (o->flags & MBOX_FLAGS_STORED) ||
		    m->keywords != o->keywords) {
			if (push_uid(&res->changed, &res->n_changed, m->uid) < 0)
				goto nomem;
		}
		out.v[out.n++] = *m;
		i++;
		j++;
	}
	msgvec_free(nv);
done:
	msgvec_free(&mb->m);
	mb->m = out;
	mb->clean_below = 0;
	mb->maybe_gone |= keep_gone;
	mb->base = *nb;
	mb->next_uid = next;
	mb->recent = 0;
	for (i = 0; i < mb->m.n; i++)
		if ((mb->m.v[i].flags & MBOX_RECENT) && !(mb->m.v[i].state & MSG_GONE))
			mb->recent++;
	if (mb->m.n > 0 && (!nb->found || nb->last_uid + 1 != next))
		mb->base_dirty = 1;
	return 0;
nomem:
	free(out.v);
	return -1;
}

/* Re-read what changed, recording into res. */
static int
reload(struct mbox *mb, struct mbox_sync_result *res, int keep_gone)
{
	struct msgvec nv = { 0 };
	struct mbox_base nb;
	uint64_t old_size = mb->size;
	uint32_t old_tail = mb->tail_crc;
	unsigned old_kw = mb->n_kw;
	int gone, r;

	if (!file_changed(mb, &gone))
		return 0;
	if (mb->fd >= 0) {
		struct stat st;

		if (stat(mb->path, &st) == 0 && (st.st_ino != mb->ino || st.st_dev != mb->dev)) {
			if (reopen(mb) < 0)
				return -1;
			old_size = 0;
		}
	} else {
		r = reopen(mb);
		if (r <= 0)
			return r;
	}
	if (mbox_remap(mb) < 0)
		return -1;
	memset(&nb, 0, sizeof(nb));
	r = 0;
	if (old_size > 0 && mb->size >= old_size && mbox_tail_crc(mb->map, old_size) == old_tail)
		r = mbox_scan_incremental(mb, &nv, &nb);
	if (r < 0)
		goto fail;
	if (r == 0) {
		msgvec_free(&nv);
		if (mbox_scan(mb, 0, &nv, &nb) < 0)
			goto fail;
	}
	if (reconcile(mb, &nv, &nb, res, keep_gone) < 0) {
		mbox_set_error(&mb->err, ENOMEM, "out of memory");
		goto fail;
	}
	if (mb->n_kw != old_kw)
		res->keywords_changed = 1;
	mbox_modseq_touch(mb, 0);	/* compared with the mod-sequence records before the unlock */
	return 0;
fail:
	msgvec_free(&nv);
	return -1;
}

/*
 * Is there a journal a writer left?  Asked under a lock (shared or exclusive), so that no
 * writer of ours is in the middle of one: a journal then means its writer was killed, and
 * the file may be half rewritten.  Never read it so: finish the journal first.  (The view's
 * dev and ino, which name the journal, are left as they are.)
 */
static int
journal_left(struct mbox *mb)
{
	dev_t dev = mb->dev;
	ino_t ino = mb->ino;
	int r;

	if (mb->journal_dir == NULL || mb->fd < 0)
		return 0;
	r = mbox_journal_pending(mb);
	mb->dev = dev;
	mb->ino = ino;
	return r;
}

/* Under the write lock: finish what a killed writer left. 0 or -1. */
static int
recover_locked(struct mbox *mb)
{
	dev_t dev = mb->dev;
	ino_t ino = mb->ino;
	int r;

	if (!mb->rw || !journal_left(mb))
		return 0;
	r = mbox_journal_recover(mb);
	mb->dev = dev;
	mb->ino = ino;
	return r;
}

int
mbox_reload_locked(struct mbox *mb)
{
	if (recover_locked(mb) < 0)
		return -1;
	return reload(mb, &mb->pend, 1);
}

static int
dotlock_exists(const struct mbox *mb)
{
	char dot[4096];
	struct stat st;

	if (snprintf(dot, sizeof(dot), "%s.lock", mb->path) >= (int)sizeof(dot))
		return 1;
	return lstat(dot, &st) == 0 || errno != ENOENT;
}

static int
same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Re-read a changed file as a reader: under a shared fcntl lock over the whole data range
 * (so that no program that locks before it appends or rewrites is half way through), in
 * lk, which the caller releases.  The dotlock, which is exclusive, would make every
 * session that looks at the file wait for every other; it is taken only for what the
 * fcntl lock cannot keep out, a mail reader that locks with the dotlock alone (c-client,
 * pine): when one exists before the parse, or appears or the file changes during it, the
 * file is read again under it.  Changes found go to res (keep_gone as reload()).
 */
static int
reload_shared(struct mbox *mb, struct mbox_lock *lk, struct mbox_sync_result *res,
    int keep_gone)
{
	struct mbox_error e;
	struct stat a, b;
	int dot = dotlock_exists(mb), r;

	if (mbox_lock_acquire_len(lk, mb->fd, mb->tfd, mb->path,
	    MBOX_LK_SHARED | (dot ? MBOX_LK_DOT : 0), 0, MBOX_LOCK_TIMEOUT_MS, &mb->err) < 0)
		return -1;
	if (journal_left(mb)) {
		/* a writer was killed half way: finish its journal (under the write lock, or
		 * through a writable descriptor for a reader), then look again */
		struct mbox_lock wl = MBOX_LOCK_INIT;

		(void)mbox_lock_release(lk, &e);
		if (!mb->rw) {
			r = mbox_recover_for_reader(mb);
		} else if ((r = mbox_lock(mb, &wl, MBOX_LK_WRITE)) == 0) {
			r = recover_locked(mb);
			mbox_unlock_nowait(mb, &wl);
		}
		if (r < 0 || mbox_lock_acquire_len(lk, mb->fd, mb->tfd, mb->path,
		    MBOX_LK_SHARED | (dot ? MBOX_LK_DOT : 0), 0, MBOX_LOCK_TIMEOUT_MS,
		    &mb->err) < 0)
			return -1;
	}
	if (fstat(mb->fd, &a) < 0)
		memset(&a, 0, sizeof(a));
	r = reload(mb, res, keep_gone);
	if (r == 0 && !dot &&
	    (dotlock_exists(mb) || fstat(mb->fd, &b) < 0 || !same_stat(&a, &b))) {
		(void)mbox_lock_release(lk, &e);
		if (mbox_lock_acquire_len(lk, mb->fd, mb->tfd, mb->path,
		    MBOX_LK_SHARED | MBOX_LK_DOT, 0, MBOX_LOCK_TIMEOUT_MS, &mb->err) < 0)
			return -1;
		r = reload(mb, res, keep_gone);
	}
	(void)mbox_lock_drop_dot(lk, &e);
	return r;
}

/* Does the view hold what a read-write session writes at once: new mail's UIDs, the base,
 * the "O" that ends \Recent? */
static int
sync_needs_write(const struct mbox *mb)
{
	uint32_t i;

	if (mb->base_dirty)
		return 1;
	for (i = 0; i < mb->m.n; i++)
		if (!(mb->m.v[i].state & (MSG_GONE | MSG_APPENDED)) &&
		    (!(mb->m.v[i].state & MSG_UID_STORED) || !(mb->m.v[i].state & MSG_STATUS_O)))
			return 1;
	return 0;
}

int
mbox_sync(struct mbox *mb, struct mbox_sync_result *res)
{
	struct mbox_lock lk = MBOX_LOCK_INIT;
	uint32_t i, j;
	int gone, r = 0;

	memset(res, 0, sizeof(*res));
	res->old_count = mb->m.n;
	if (file_changed(mb, &gone) && mb->fd >= 0) {
		/* read under a shared lock; the write lock only when there is something to
		 * write (new mail to number and mark old), and then the file is looked at
		 * again under it */
		r = reload_shared(mb, &lk, res, 0);
		mbox_unlock_nowait(mb, &lk);
		if (r == 0 && mb->rw && sync_needs_write(mb)) {
			if (mbox_lock(mb, &lk, MBOX_LK_WRITE) < 0) {
				r = -1;
			} else {
				r = recover_locked(mb);
				if (r == 0)
					r = reload(mb, res, 0);
				if (r == 0 && sync_needs_write(mb))
					r = mbox_write_locked(mb);
				mbox_unlock_nowait(mb, &lk);
			}
		}
		if (r < 0) {
			mbox_sync_result_clear(res);
			return -1;
		}
	} else if (mb->fd < 0 && file_changed(mb, &gone)) {
		/* no file yet: one may have appeared (reload opens it) */
		r = reload(mb, res, 0);
		if (r == 0 && mb->fd >= 0) {
			mbox_sync_result_clear(res);
			return mbox_sync(mb, res);
		}
		if (r == 0 && mb->ms_stale)
			(void)mbox_modseq_update(mb);	/* no file to lock: it is empty */
		if (r < 0) {
			mbox_sync_result_clear(res);
			return -1;
		}
	}
	/* report what write calls found earlier: messages others removed, flag changes;
	 * the view is moved down only from its first removed message */
	i = mb->m.n;
	if (mb->maybe_gone)
		for (i = 0; i < mb->m.n && !(mb->m.v[i].state & MSG_GONE); i++)
			;
	if (i < mb->m.n)
		mb->clean_below = 0;	/* renumbered */
	for (j = i; i < mb->m.n; i++) {
		if (mb->m.v[i].state & MSG_GONE) {
			if (push_uid(&res->expunged, &res->n_expunged, mb->m.v[i].uid) < 0)
				goto nomem;
			continue;
		}
		mb->m.v[j++] = mb->m.v[i];
	}
	mb->m.n = j;
	mb->maybe_gone = 0;
	mbox_gone_unmap(mb);
	for (i = 0; i < mb->pend.n_changed; i++)
		if (mbox_uid_index(mb, mb->pend.changed[i]) >= 0 &&
		    push_uid(&res->changed, &res->n_changed, mb->pend.changed[i]) < 0)
			goto nomem;
	res->uidvalidity_changed |= mb->pend.uidvalidity_changed;
	res->keywords_changed |= mb->pend.keywords_changed;
	mbox_sync_result_clear(&mb->pend);
	if (res->n_expunged > 1)
		qsort(res->expunged, res->n_expunged, sizeof(uint32_t), cmp_u32);
	if (res->n_changed > 1) {
		size_t k, w = 1;

		qsort(res->changed, res->n_changed, sizeof(uint32_t), cmp_u32);
		for (k = 1; k < res->n_changed; k++)
			if (res->changed[k] != res->changed[w - 1])
				res->changed[w++] = res->changed[k];
		res->n_changed = w;
	}
	if (res->uidvalidity_changed)
		res->old_count = 0;
	else
		res->old_count -= (uint32_t)res->n_expunged;
	res->new_count = mb->m.n;
	return 0;
nomem:
	mbox_set_error(&mb->err, ENOMEM, "out of memory");
	mbox_sync_result_clear(res);
	return -1;
}

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
mbox_read_begin(struct mbox *mb)
{
	struct mbox_error e;
	int gone, tries;

	if (mb->read_lk.fcntl_held)
		return 0;
	/*
	 * Shared lock, then a look at the file: changed, it is parsed again, which needs the
	 * dotlock as well (a mail reader may hold only that one).  A reload that finds the
	 * file replaced puts the new one on the descriptor, which drops the lock: around
	 * again.  No file at all: nothing to lock; the reload finds one that has appeared.
	 */
	for (tries = 0; tries < 4; tries++) {
		ino_t ino = mb->ino;
		int had_fd = mb->fd >= 0, r;

		if (had_fd && mbox_lock(mb, &mb->read_lk, MBOX_LK_SHARED) < 0)
			return -1;
		if (!file_changed(mb, &gone))
			break;
		if (had_fd) {
			(void)mbox_lock_release(&mb->read_lk, &e);
			r = reload_shared(mb, &mb->read_lk, &mb->pend, 1);
		} else {
			r = mbox_reload_locked(mb);
		}
		if (r < 0) {
			(void)mbox_lock_release(&mb->read_lk, &e);
			return -1;
		}
		if (had_fd && mb->fd >= 0 && mb->ino == ino) {
			/* the bytes are read now: an appender may go on past them */
			mbox_lock_shrink(&mb->read_lk, mb->size > 0 ? mb->size : 1);
			break;
		}
		(void)mbox_lock_release(&mb->read_lk, &e);
	}
	if (tries == 4) {
		mbox_set_error(&mb->err, EAGAIN, "%s keeps being replaced", mb->path);
		return -1;
	}
	/* messages others removed are read from the copies they kept, if any */
	if (mb->maybe_gone)
		mbox_gone_refresh(mb);
	/* what FETCH MODSEQ reads must be current under the lock held */
	if (mb->ms_stale)
		(void)mbox_modseq_update(mb);
	mb->read_since = mb->read_checked = mono_ms();
	return 0;
}

void
mbox_read_end(struct mbox *mb)
{
	struct mbox_error e;

	(void)mbox_lock_release(&mb->read_lk, &e);
}

int
mbox_read_contended(struct mbox *mb)
{
	long now;

	if (!mb->read_lk.fcntl_held)
		return 0;
	now = mono_ms();
	if (now - mb->read_since >= MBOX_READ_SLICE_MS)
		return 1;
	/* one F_GETLK a millisecond at most: a FETCH of 100,000 messages asks per message */
	if (now == mb->read_checked)
		return 0;
	mb->read_checked = now;
	return mbox_lock_writer_waiting(mb->tfd);
}

int
mbox_refresh(struct mbox *mb)
{
	int held = mb->read_lk.fcntl_held;

	if (mbox_read_begin(mb) < 0)
		return -1;
	if (!held)
		mbox_read_end(mb);
	return 0;
}
