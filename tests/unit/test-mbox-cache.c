/*
 * test-mbox-cache.c: the per-mailbox cache file.  An open that uses the cache must give
 * exactly what a parse of the file gives; a cache that does not describe the file (changed,
 * replaced, shorter, corrupt, truncated, another mailbox's) must be ignored.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <time.h>

#include "mbox/mbox-private.h"
#include "test-mbox-util.h"

/* UW-IMAP: pseudo message, then messages with X-UID, Status, X-Status, X-Keywords. */
static const char fx_uw[] =
    "From MAILER-DAEMON Mon Jan  5 01:02:03 2015\n"
    "Date: Mon, 05 Jan 2015 01:02:03 +0000\n"
    "From: Mail System Internal Data <MAILER-DAEMON@host>\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "X-IMAP: 1420419723 0000000007 $Forwarded Work\n"
    "Status: RO\n"
    "\n"
    "This text is part of the internal format of your mail folder.\n"
    "\n"
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "Subject: one\n"
    "Status: RO\n"
    "X-Status: AF\n"
    "X-Keywords: Work\n"
    "X-UID: 3\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015\n"
    "Subject: two\n"
    "Status: O\n"
    "X-Status: DT\n"
    "X-Keywords: $Forwarded Work\n"
    "X-UID: 7\n"
    "Content-Length: 4\n"
    "\n"
    "two\n"
    "\n";

/* Dovecot: X-IMAPbase in the first message; the second is \Recent (no "O"). */
static const char fx_dovecot[] =
    "From a@x Mon Jan  5 01:02:03 2015\n"
    "X-IMAPbase: 1420000000 0000000010 Junk NonJunk\n"
    "Subject: one\n"
    "X-UID: 9\n"
    "Status: RO\n"
    "X-Keywords: Junk                                                 \n"
    "Content-Length: 4\n"
    "\n"
    "one\n"
    "\n"
    "From b@x Mon Jan  5 01:02:03 2015\n"
    "Subject: two\n"
    "X-UID: 10\n"
    "Status: \n"
    "X-Keywords: NonJunk Junk                                         \n"
    "\n"
    "two\n"
    "\n";

/* What an MDA delivers: no metadata at all, a CRLF message, a header without a blank
 * line, bare ">From " in a body, keywords only in X-Keywords. */
static const char fx_plain[] =
    "From alice@example.org Sat Nov 21 17:40:58 2026\n"
    "Subject: hello\n"
    "From: alice@example.org\n"
    "\n"
    "body line\n"
    ">From the start\n"
    "\n"
    "From bob@example.org Sat Nov 21 17:41:00 2026 +0100\n"
    "Subject: crlf\r\n"
    "X-Keywords: $Label1 urgent\r\n"
    "\r\n"
    "crlf body\r\n"
    "\n"
    "From carol@example.org Sat Nov 21 17:42:00 2026\n"
    "Subject: old\n"
    "Status: O\n"
    "X-Status: F\n"
    "\n"
    "seen before\n"
    "\n"
    "From dave@example.org Sat Nov 21 17:43:00 2026\n"
    "Subject: no blank line, no body\n";

static const char *const fixtures[] = { fx_uw, fx_dovecot, fx_plain };

static void
set_env(void)
{
	/* the fixtures are tiny: cache them anyway */
	setenv("IMAPD_MBOX_CACHE_MIN_SIZE", "0", 1);
	setenv("TZ", "UTC", 1);
	tzset();
}

/* The cache file in t's journal directory ("" if none); at most one may be there. */
static void
cache_file(const struct tdir *t, char *buf, size_t size)
{
	DIR *d = opendir(t->jdir);
	struct dirent *e;
	int found = 0;

	assert_non_null(d);
	buf[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, MBOX_CACHE_PREFIX_NAME,
		    strlen(MBOX_CACHE_PREFIX_NAME)) != 0)
			continue;
		assert_false(found);
		found = 1;
		snprintf(buf, size, "%s/%s", t->jdir, e->d_name);
	}
	closedir(d);
}

static void
remove_cache(const struct tdir *t)
{
	char p[800];

	cache_file(t, p, sizeof(p));
	if (p[0] != '\0')
		assert_int_equal(unlink(p), 0);
}

static struct mbox *
open_mb(const struct tdir *t, unsigned flags)
{
	struct mbox *mb = NULL;
	struct mbox_error err;

	if (mbox_open(t->path, t->jdir, flags, &mb, &err) < 0)
		fail_msg("open: %s", err.msg);
	return mb;
}

/* Open with the cache out of the way (it is put back as it was). */
static struct mbox *
open_parsed(const struct tdir *t, unsigned flags)
{
	char p[800], saved[900];
	struct mbox *mb;

	cache_file(t, p, sizeof(p));
	if (p[0] != '\0') {
		snprintf(saved, sizeof(saved), "%s/../saved-cache", t->jdir);
		assert_int_equal(rename(p, saved), 0);
	}
	mb = open_mb(t, flags);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	remove_cache(t);
	if (p[0] != '\0')
		assert_int_equal(rename(saved, p), 0);
	return mb;
}

/* Every field of the two views, message by message. */
static void
assert_same(const struct mbox *a, const struct mbox *b)
{
	uint32_t i;
	unsigned k;

	assert_int_equal(a->m.n, b->m.n);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->base.found, b->base.found);
	assert_int_equal(a->base.pseudo, b->base.pseudo);
	assert_int_equal(a->base.uidvalidity, b->base.uidvalidity);
	assert_int_equal(a->base.last_uid, b->base.last_uid);
	assert_int_equal(a->base.pseudo_end, b->base.pseudo_end);
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->next_uid, b->next_uid);
	assert_int_equal(a->recent, b->recent);
	assert_int_equal(a->base_dirty, b->base_dirty);
	assert_int_equal(a->n_kw, b->n_kw);
	for (k = 0; k < a->n_kw; k++)
		assert_string_equal(a->kw[k], b->kw[k]);
	for (i = 0; i < a->m.n; i++) {
		const struct mbox_msg *x = &a->m.v[i], *y = &b->m.v[i];

		assert_int_equal(x->from_off, y->from_off);
		assert_int_equal(x->body_off, y->body_off);
		assert_int_equal(x->end, y->end);
		assert_int_equal(x->date, y->date);
		assert_int_equal(x->keywords, y->keywords);
		assert_int_equal(x->disk_keywords, y->disk_keywords);
		assert_int_equal(x->hdr_vsize, y->hdr_vsize);
		assert_int_equal(x->body_bare_lf, y->body_bare_lf);
		assert_int_equal(x->uid, y->uid);
		assert_int_equal(x->fp, y->fp);
		assert_int_equal(x->from_len, y->from_len);
		assert_int_equal(x->tz_min, y->tz_min);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->disk_flags, y->disk_flags);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->x_uid_ok, y->x_uid_ok);
		if (x->x_uid_ok)
			assert_int_equal(x->x_uid, y->x_uid);
	}
}

/* Open (cached) and compare with a parse of the same file; returns how it was opened. */
static int
check_against_parse(const struct tdir *t, unsigned flags)
{
	struct mbox *c, *p;
	int used;

	c = open_mb(t, flags);
	used = c->cache_used;
	p = open_parsed(t, flags);
	assert_same(c, p);
	mbox_free(&p);
	mbox_free(&c);
	return used;
}

static void
test_same_as_parse(void **state)
{
	size_t f;
	int ro;
	(void)state;

	set_env();
	for (f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
		for (ro = 1; ro >= 0; ro--) {
			unsigned flags = ro ? 0 : MBOX_OPEN_RW;
			struct tdir t;
			struct mbox *mb;
			char p[800];

			tdir_make(&t);
			write_file(t.path, fixtures[f], strlen(fixtures[f]));
			mb = open_mb(&t, flags);
			assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
			mbox_free(&mb);
			cache_file(&t, p, sizeof(p));
			assert_true(p[0] != '\0');
			/* the read-write open wrote metadata: \Recent is over for the next one */
			assert_int_equal(check_against_parse(&t, flags), MBOX_CACHE_EXACT);
			/* and it stays usable */
			assert_int_equal(check_against_parse(&t, flags), MBOX_CACHE_EXACT);
			tdir_clean(&t);
		}
	}
}

/* \Recent, KEEP_RECENT and UIDs of a read-only view of a file with no metadata. */
static void
test_recent(void **state)
{
	struct tdir t;
	struct mbox *mb;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_plain, strlen(fx_plain));
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_int_equal(mbox_count(mb), 4);
	assert_int_equal(mbox_recent_count(mb), 3);	/* carol has "O" */
	assert_int_equal(mbox_msg_flags(mb, 2), MBOX_FLAGGED);
	assert_int_equal(mbox_msg_flags(mb, 0), MBOX_RECENT);
	assert_int_equal(mbox_msg_uid(mb, 3), 4);
	mbox_free(&mb);
	tdir_clean(&t);

	/* a read-write open that keeps \Recent for the next session: same as parsed */
	tdir_make(&t);
	write_file(t.path, fx_plain, strlen(fx_plain));
	mb = open_mb(&t, MBOX_OPEN_RW | MBOX_OPEN_KEEP_RECENT);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	assert_int_equal(mbox_recent_count(mb), 3);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, MBOX_OPEN_RW | MBOX_OPEN_KEEP_RECENT),
	    MBOX_CACHE_EXACT);
	mb = open_mb(&t, MBOX_OPEN_RW | MBOX_OPEN_KEEP_RECENT);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_int_equal(mbox_recent_count(mb), 3);
	mbox_free(&mb);
	/* the first open that ends \Recent writes "O": the next one sees none */
	mbox_free(&(struct mbox *){ open_mb(&t, MBOX_OPEN_RW) });
	mb = open_mb(&t, MBOX_OPEN_RW);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_int_equal(mbox_recent_count(mb), 0);
	mbox_free(&mb);
	tdir_clean(&t);
}

static const char more[] =
    "From erin@example.org Sat Nov 21 18:00:00 2026\n"
    "Subject: new mail\n"
    "X-Keywords: fresh\n"
    "\n"
    "arrived later\n"
    "\n"
    "From frank@example.org Sat Nov 21 18:01:00 2026\n"
    "Subject: more new mail\n"
    "\n"
    "also later\n"
    "\n";

/* Mail appended after the cache was saved: the prefix comes from the cache. */
static void
test_grown(void **state)
{
	size_t f;
	(void)state;

	set_env();
	for (f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
		struct tdir t;
		struct mbox *mb;
		uint32_t n, next;

		tdir_make(&t);
		write_file(t.path, fixtures[f], strlen(fixtures[f]));
		if (fixtures[f] == fx_plain)	/* its last message has no blank line */
			append_file(t.path, "\n\n");
		mb = open_mb(&t, MBOX_OPEN_RW);
		n = mbox_count(mb);
		next = mbox_uidnext(mb);
		mbox_free(&mb);
		append_file(t.path, more);
		/* read-only: nothing written, the same file both ways */
		assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_PREFIX);
		assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);
		/* read-write: the new mail gets the next UIDs and is \Recent */
		mb = open_mb(&t, MBOX_OPEN_RW);
		assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
		assert_int_equal(mbox_count(mb), n + 2);
		assert_int_equal(mbox_recent_count(mb), 2);
		assert_int_equal(mbox_msg_uid(mb, n), next);
		assert_int_equal(mbox_msg_uid(mb, n + 1), next + 1);
		assert_true(mbox_keyword_lookup(mb, "fresh", 5, 0) >= 0);
		mbox_free(&mb);
		assert_int_equal(check_against_parse(&t, MBOX_OPEN_RW), MBOX_CACHE_EXACT);
		tdir_clean(&t);
	}
}

/* Replace a byte of the file in place (same size, new ctime). */
static void
poke(const char *path, const char *find, const char *repl)
{
	size_t n;
	char *s = read_file(path, &n), *at = strstr(s, find);
	int fd;

	assert_non_null(at);
	assert_int_equal(strlen(find), strlen(repl));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, repl, strlen(repl), at - s), (ssize_t)strlen(repl));
	assert_int_equal(close(fd), 0);
	free(s);
}

static void
test_rewritten(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct stat st;
	struct timespec ts[2];
	char tmp[400];
	size_t n;
	char *s;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_dovecot, strlen(fx_dovecot));
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);

	/* a flag changed in place, mtime put back as it was: the ctime tells, and the
	 * headers re-read find the change */
	assert_int_equal(stat(t.path, &st), 0);
	poke(t.path, "Status: RO\n", "Status: OO\n");
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, t.path, ts, 0), 0);
	mb = open_mb(&t, 0);
	assert_int_not_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_int_equal(mbox_msg_flags(mb, 0) & MBOX_SEEN, 0);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);

	/* same size, the last bytes different */
	poke(t.path, "two\n\n", "TWO\n\n");
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_NONE);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);

	/* the same bytes in a new file renamed over it (another inode) */
	s = read_file(t.path, &n);
	snprintf(tmp, sizeof(tmp), "%s.new", t.path);
	write_file(tmp, s, n);
	assert_int_equal(rename(tmp, t.path), 0);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_NONE);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);

	/* shorter: the last message gone */
	assert_int_equal(truncate(t.path, (off_t)(strstr(s, "\nFrom b@x") - s + 1)), 0);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	assert_int_equal(mbox_count(mb), 1);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);

	/* same size, a body start moved: the first header now ends a line later */
	write_file(t.path, s, n);
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);
	poke(t.path, "\n\none\n", "\nXon\n\n");
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_NONE);
	free(s);
	tdir_clean(&t);
}

/* A cache saved while the clock was still in the file's ctime tick is re-checked. */
static void
test_racy(void **state)
{
	struct tdir t;
	struct mbox *mb;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_uw, strlen(fx_uw));
	mb = open_mb(&t, 0);
	mb->view_racy = 1;
	memset(&mb->cache_stamp, 0, sizeof(mb->cache_stamp));
	mbox_cache_save(mb);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_PREFIX);
	/* that open saved it again, trusted now */
	assert_int_equal(check_against_parse(&t, 0), MBOX_CACHE_EXACT);
	tdir_clean(&t);
}

/* The session's own flag changes and expunges are saved at close. */
static void
test_saved_at_close(void **state)
{
	struct tdir t;
	struct mbox *mb;
	uint32_t *ex = NULL;
	size_t k;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_dovecot, strlen(fx_dovecot));
	append_file(t.path, more);
	mb = open_mb(&t, MBOX_OPEN_RW);
	mbox_msg_set_flags(mb, 1, MBOX_FLAGGED | MBOX_SEEN, 1);
	assert_int_equal(mbox_commit_flags(mb), 0);
	mbox_msg_set_flags(mb, 2, MBOX_DELETED, 0);
	assert_int_equal(mbox_expunge(mb, NULL, 0, &ex, &k), 0);
	assert_int_equal(k, 1);
	free(ex);
	/* not written: the cache holds the file, not the session */
	mbox_msg_set_flags(mb, 0, MBOX_DELETED, 0);
	mbox_free(&mb);
	mb = open_mb(&t, MBOX_OPEN_RW);
	/* the write let its clock tick pass before unlocking: the cache is trusted */
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_int_equal(mbox_count(mb), 3);
	assert_int_equal(mbox_msg_flags(mb, 1), MBOX_FLAGGED | MBOX_SEEN);
	assert_int_equal(mbox_msg_keywords(mb, 1), 1);
	assert_int_equal(mbox_msg_flags(mb, 0) & MBOX_DELETED, 0);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, MBOX_OPEN_RW), MBOX_CACHE_EXACT);
	tdir_clean(&t);
}

/* MBOX_OPEN_LATER: no cache file until mbox_later(), which writes it once; the next open
 * takes everything from it. */
static void
test_saved_later(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct stat st1, st2;
	char p[800];
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_plain, strlen(fx_plain));
	mb = open_mb(&t, MBOX_OPEN_RW | MBOX_OPEN_LATER);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	cache_file(&t, p, sizeof(p));
	assert_string_equal(p, "");
	mbox_later(mb);
	cache_file(&t, p, sizeof(p));
	assert_string_not_equal(p, "");
	assert_int_equal(stat(p, &st1), 0);
	/* up to date: not written again, at later calls or at close */
	mbox_later(mb);
	mbox_free(&mb);
	assert_int_equal(stat(p, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	mb = open_mb(&t, MBOX_OPEN_RW | MBOX_OPEN_LATER);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	mbox_free(&mb);
	assert_int_equal(check_against_parse(&t, MBOX_OPEN_RW), MBOX_CACHE_EXACT);
	tdir_clean(&t);
}

static void
put_cache(const char *path, const char *data, size_t n)
{
	write_file(path, data, n);
}

/* Every single byte flipped, and every truncation: rejected, never trusted. */
static void
test_corrupt(void **state)
{
	struct tdir t;
	struct mbox *ref, *mb;
	char p[800];
	char *good;
	size_t n, i;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_uw, strlen(fx_uw));
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	cache_file(&t, p, sizeof(p));
	good = read_file(p, &n);
	ref = open_parsed(&t, 0);
	for (i = 0; i < n; i++) {
		good[i] ^= 0x5a;
		put_cache(p, good, n);
		good[i] ^= 0x5a;
		mb = open_mb(&t, 0);
		if (mb->cache_used != MBOX_CACHE_NONE)
			fail_msg("byte %zu flipped: cache used", i);
		assert_same(mb, ref);
		mbox_free(&mb);
	}
	for (i = 0; i < n; i++) {
		put_cache(p, good, i);
		mb = open_mb(&t, 0);
		if (mb->cache_used != MBOX_CACHE_NONE)
			fail_msg("truncated at %zu: cache used", i);
		assert_same(mb, ref);
		mbox_free(&mb);
	}
	/* one byte too many */
	good = realloc(good, n + 1);
	good[n] = 0;
	put_cache(p, good, n + 1);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	mbox_free(&mb);
	/* the good one still works */
	put_cache(p, good, n);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_same(mb, ref);
	mbox_free(&mb);
	mbox_free(&ref);
	free(good);
	tdir_clean(&t);
}

/* Another mailbox's cache under this one's name: another inode, ignored. */
static void
test_foreign(void **state)
{
	struct tdir a, b;
	struct mbox *mb;
	char pa[800], pb[800];
	char *c;
	size_t n;
	(void)state;

	set_env();
	tdir_make(&a);
	tdir_make(&b);
	/* the same bytes, so only device and inode tell them apart */
	write_file(a.path, fx_dovecot, strlen(fx_dovecot));
	write_file(b.path, fx_dovecot, strlen(fx_dovecot));
	mbox_free(&(struct mbox *){ open_mb(&a, 0) });
	mbox_free(&(struct mbox *){ open_mb(&b, 0) });
	cache_file(&a, pa, sizeof(pa));
	cache_file(&b, pb, sizeof(pb));
	c = read_file(pa, &n);
	write_file(pb, c, n);
	free(c);
	mb = open_mb(&b, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	mbox_free(&mb);
	tdir_clean(&a);
	tdir_clean(&b);
}

/* Below the size limit no cache is written, and none in a read-only open without a
 * journal directory. */
static void
test_small_and_nodir(void **state)
{
	struct tdir t;
	struct mbox *mb;
	struct mbox_error err;
	char p[800];
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_plain, strlen(fx_plain));
	assert_int_equal(mbox_open(t.path, NULL, 0, &mb, &err), 0);
	mbox_free(&mb);
	cache_file(&t, p, sizeof(p));
	assert_string_equal(p, "");
	unsetenv("IMAPD_MBOX_CACHE_MIN_SIZE");
	mbox_free(&(struct mbox *){ open_mb(&t, MBOX_OPEN_RW) });
	cache_file(&t, p, sizeof(p));
	assert_string_equal(p, "");
	tdir_clean(&t);
}

/*
 * A view opened from the cache lives in a private mapping of the cache file (no copy):
 * flags set on it, mail appended to it (the vector moves to the heap and grows) and a
 * cache replaced under it by another session must leave it as a parse of the file would
 * be, and the cache file itself untouched.
 */
static void
test_mapped_view(void **state)
{
	struct tdir t;
	struct mbox *mb, *other, *ref;
	struct mbox_append *ap;
	char p[800];
	char *before, *after;
	size_t n_before, n_after;
	uint32_t first, n, i;
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_dovecot, strlen(fx_dovecot));
	mbox_free(&(struct mbox *){ open_mb(&t, MBOX_OPEN_RW) });
	mb = open_mb(&t, MBOX_OPEN_RW);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	assert_non_null(mb->m.map);
	cache_file(&t, p, sizeof(p));
	before = read_file(p, &n_before);
	/* a change in memory copies a page of the mapping, never writes the file */
	mbox_msg_set_flags(mb, 1, MBOX_FLAGGED | MBOX_SEEN, 0);
	after = read_file(p, &n_after);
	assert_int_equal(n_before, n_after);
	assert_memory_equal(before, after, n_before);
	free(after);
	assert_int_equal(mbox_commit_flags(mb), 0);
	assert_int_equal(mbox_msg_flags(mb, 1), MBOX_FLAGGED | MBOX_SEEN);
	/* another session saves a new cache (rename over the mapped one) meanwhile */
	other = open_parsed(&t, MBOX_OPEN_RW);
	mbox_free(&other);
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	/* mail appended to the mapped view: moved to the heap, then grown again and again */
	for (i = 0; i < 200; i++) {
		assert_int_equal(mbox_append_begin(mb, &ap), 0);
		assert_int_equal(mbox_append_msg_begin(ap, 1420419723 + i, 0, 0, 0), 0);
		assert_int_equal(mbox_append_write(ap, (const unsigned char *)"Subject: x\n\ny\n",
		    15), 0);
		assert_int_equal(mbox_append_msg_end(ap), 0);
		assert_int_equal(mbox_append_commit(&ap, &first, &n), 0);
		assert_int_equal(n, 1);
		assert_null(mb->m.map);
	}
	assert_int_equal(mbox_count(mb), 202);
	assert_int_equal(mbox_msg_flags(mb, 1) & ~MBOX_RECENT, MBOX_FLAGGED | MBOX_SEEN);
	ref = open_parsed(&t, 0);
	assert_int_equal(mbox_count(ref), 202);
	for (i = 0; i < 202; i++) {
		assert_int_equal(mbox_msg_uid(mb, i), mbox_msg_uid(ref, i));
		assert_int_equal(mbox_msg_size(mb, i), mbox_msg_size(ref, i));
		assert_int_equal(mbox_msg_flags(mb, i) & ~MBOX_RECENT,
		    mbox_msg_flags(ref, i) & ~MBOX_RECENT);
	}
	mbox_free(&ref);
	mbox_free(&mb);
	free(before);
	tdir_clean(&t);
}

/*
 * Damage the byte flips do not cover, and that no record check sees: two messages' dates
 * swapped (every byte still there, in other places), and a record zeroed.
 */
static void
test_moved_records(void **state)
{
	struct tdir t;
	struct mbox *mb;
	char p[800];
	char *good, *bad;
	size_t n, rec = sizeof(struct mbox_msg), at, d = offsetof(struct mbox_msg, date);
	(void)state;

	set_env();
	tdir_make(&t);
	write_file(t.path, fx_plain, strlen(fx_plain));
	mbox_free(&(struct mbox *){ open_mb(&t, 0) });
	cache_file(&t, p, sizeof(p));
	good = read_file(p, &n);
	/* the four records end 8 bytes (the tail) before the end of the file */
	assert_true(n > 8 + 4 * rec);
	at = n - 8 - 4 * rec;
	bad = malloc(n);
	assert_non_null(bad);
	memcpy(bad, good, n);
	assert_memory_not_equal(good + at + d, good + at + 2 * rec + d, 8);
	memcpy(bad + at + d, good + at + 2 * rec + d, 8);
	memcpy(bad + at + 2 * rec + d, good + at + d, 8);
	put_cache(p, bad, n);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	mbox_free(&mb);
	memcpy(bad, good, n);
	memset(bad + at + rec, 0, rec);
	put_cache(p, bad, n);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_NONE);
	mbox_free(&mb);
	put_cache(p, good, n);
	mb = open_mb(&t, 0);
	assert_int_equal(mb->cache_used, MBOX_CACHE_EXACT);
	mbox_free(&mb);
	free(bad);
	free(good);
	tdir_clean(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_parse),
		cmocka_unit_test(test_recent),
		cmocka_unit_test(test_grown),
		cmocka_unit_test(test_rewritten),
		cmocka_unit_test(test_racy),
		cmocka_unit_test(test_saved_at_close),
		cmocka_unit_test(test_saved_later),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_small_and_nodir),
		cmocka_unit_test(test_mapped_view),
		cmocka_unit_test(test_moved_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
