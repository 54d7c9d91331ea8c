/*
 * test-subs.c: the subscriptions file (format, round trip, junk lines, bounds), atomic
 * replacement seen by a concurrent reader, the lock against lost updates, UW-IMAP
 * ~/.mailboxlist import, Dovecot's v2 layout, LSUB (RFC 3501 6.3.9) and subs_mark().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "mbox/folder.h"
#include "mbox/subs.h"

struct fx {
	char top[64];
	char maildir[128];
	char inbox[128];
	struct folder_root *root;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct folder_config cfg = { 0 };

	assert_non_null(f);
	strcpy(f->top, "/tmp/test-subs-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->maildir, sizeof(f->maildir), "%s/mail", f->top);
	snprintf(f->inbox, sizeof(f->inbox), "%s/spool", f->top);
	cfg.maildir = f->maildir;
	cfg.inbox = f->inbox;
	cfg.home = f->top;
	assert_int_equal(folder_root_new(&cfg, &f->root, NULL), FOLDER_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	folder_root_free(&f->root);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
write_file(const char *path, const char *content, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
put(struct fx *f, const char *rel, const char *content)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", f->top, rel);
	write_file(p, content, strlen(content));
}

/* Whole file as a string (caller frees), or NULL. */
static char *
slurp(struct fx *f, const char *rel)
{
	char p[256];
	FILE *fp;
	char *buf = calloc(1, 65536);

	snprintf(p, sizeof(p), "%s/%s", f->top, rel);
	fp = fopen(p, "r");
	if (fp == NULL) {
		free(buf);
		return NULL;
	}
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
expect_file(struct fx *f, const char *want)
{
	char *got = slurp(f, "mail/.subscriptions");

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Subscribed names joined by ' '. */
static void
expect_subs(struct fx *f, const char *want)
{
	struct subs *s = NULL;
	char got[4096];
	size_t n = 0;

	assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	got[0] = '\0';
	for (size_t i = 0; i < s->count; i++)
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", i ? " " : "", s->names[i]);
	subs_free(&s);
	assert_null(s);
	assert_string_equal(got, want);
}

static enum folder_status
sub(struct fx *f, const char *name)
{
	return subs_subscribe(f->root, name, strlen(name), NULL);
}

static enum folder_status
unsub(struct fx *f, const char *name)
{
	return subs_unsubscribe(f->root, name, strlen(name), NULL);
}

static void
test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char p[256];

	expect_subs(f, "");
	assert_int_equal(sub(f, "Sent"), FOLDER_OK);
	assert_int_equal(sub(f, "a/b"), FOLDER_OK);
	assert_int_equal(sub(f, "inbox"), FOLDER_OK);
	assert_int_equal(sub(f, "Entw&APw-rfe"), FOLDER_OK);
	assert_int_equal(sub(f, "Sent"), FOLDER_OK);		/* twice: no duplicate */
	assert_int_equal(sub(f, "gone/never/existed"), FOLDER_OK);
	expect_file(f, "Entw&APw-rfe\nINBOX\nSent\na/b\ngone/never/existed\n");
	expect_subs(f, "Entw&APw-rfe INBOX Sent a/b gone/never/existed");
	snprintf(p, sizeof(p), "%s/.subscriptions", f->maildir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(unsub(f, "Sent"), FOLDER_OK);
	assert_int_equal(unsub(f, "Sent"), FOLDER_ENOENT);
	assert_int_equal(unsub(f, "INBOX"), FOLDER_OK);
	expect_file(f, "Entw&APw-rfe\na/b\ngone/never/existed\n");

	/* refused names change nothing */
	assert_int_equal(sub(f, "../x"), FOLDER_EBADNAME);
	assert_int_equal(sub(f, "/etc/passwd"), FOLDER_EBADNAME);
	assert_int_equal(sub(f, "a\nb"), FOLDER_EBADNAME);
	assert_int_equal(sub(f, ""), FOLDER_EBADNAME);
	assert_int_equal(unsub(f, "a//b"), FOLDER_EBADNAME);
	expect_file(f, "Entw&APw-rfe\na/b\ngone/never/existed\n");

	/* no temporary file is left behind */
	DIR *d = opendir(f->maildir);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, ".subscriptions") == 0 ||
		    strcmp(de->d_name, ".subscriptions.lock") == 0);
	closedir(d);
}

static void
test_junk_lines(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mkdir(f->maildir, 0700), 0);
	put(f, "mail/.subscriptions",
	    "Sent\n\n../bad\n.hidden\nSent\r\nx\ty\n/abs\nbad&\nInbox\na//b\n"
	    "caf\xc3\xa9\nlast/without/newline");
	expect_subs(f, "INBOX Sent last/without/newline");
	/* the next write drops the junk */
	assert_int_equal(sub(f, "new"), FOLDER_OK);
	expect_file(f, "INBOX\nSent\nlast/without/newline\nnew\n");
	/* NUL bytes inside a line make it invalid, not a shorter name */
	put(f, "mail/.subscriptions", "");
	char p[256];
	snprintf(p, sizeof(p), "%s/.subscriptions", f->maildir);
	write_file(p, "ab\0cd\nok\n", 9);
	expect_subs(f, "ok");
}

static void
test_bounds(void **state)
{
	struct fx *f = *state;
	size_t cap = SUBS_FILE_MAX + 4096, n = 0;
	char *big = malloc(cap);
	char p[256];
	struct subs *s = NULL;

	assert_non_null(big);
	assert_int_equal(mkdir(f->maildir, 0700), 0);
	for (unsigned int i = 0; n + 16 < cap; i++)
		n += (size_t)snprintf(big + n, cap - n, "box%u\n", i);
	snprintf(p, sizeof(p), "%s/.subscriptions", f->maildir);
	write_file(p, big, n);
	free(big);
	assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	assert_true(s->truncated);
	assert_int_equal(s->count, SUBS_MAX);
	subs_free(&s);
	/* full: one more is refused rather than silently lost */
	assert_int_equal(sub(f, "zzz"), FOLDER_ELIMIT);
	/* a .subscriptions that is a directory is an error, not a crash */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_not_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	assert_null(s);
}

static void
test_atomic_replace(void **state)
{
	struct fx *f = *state;
	pid_t pid;
	int status;

	/* two states alternate; a reader must only ever see one or the other, whole */
	assert_int_equal(sub(f, "one"), FOLDER_OK);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 150; i++) {
			if (sub(f, "two/longer/name") != FOLDER_OK ||
			    unsub(f, "two/longer/name") != FOLDER_OK)
				_exit(1);
		}
		_exit(0);
	}
	for (int i = 0; i < 300; i++) {
		struct subs *s = NULL;
		assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
		assert_true(s->count == 1 || s->count == 2);
		assert_string_equal(s->names[0], "one");
		if (s->count == 2)
			assert_string_equal(s->names[1], "two/longer/name");
		subs_free(&s);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	expect_subs(f, "one");
}

static void
test_lock(void **state)
{
	struct fx *f = *state;
	pid_t pids[2];
	char name[32];

	/* two writers at once: the lock means no subscription is lost */
	for (int k = 0; k < 2; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			for (int i = 0; i < 40; i++) {
				snprintf(name, sizeof(name), "p%d/box%02d", k, i);
				if (sub(f, name) != FOLDER_OK)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int status;
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct subs *s = NULL;
	assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	assert_int_equal(s->count, 80);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 40; i++) {
			snprintf(name, sizeof(name), "p%d/box%02d", k, i);
			assert_true(subs_has(s, name, strlen(name)));
		}
	assert_false(subs_has(s, "p0/box4", 7));
	subs_free(&s);
}

static void
test_uw_import(void **state)
{
	struct fx *f = *state;
	char line[256];
	struct subs *s = NULL;

	char *content = malloc(4096);
	snprintf(line, sizeof(line), "%s/abs\n", f->maildir);
	snprintf(content, 4096,
	    "mail/Sent\nmail/a/b\nINBOX\nother/x\n/etc/passwd\n~/mail/Drafts\n"
	    "~bob/mail/x\n#news.comp.mail\nmail/../x\nmail\nmailbox/x\n%s"
	    "mail/.hidden\nmail/Entw&APw-rfe\r\n", line);
	put(f, ".mailboxlist", content);
	free(content);
	assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	assert_true(s->imported);
	subs_free(&s);
	expect_subs(f, "Drafts Entw&APw-rfe INBOX Sent a/b abs");
	/* still an import: nothing written yet */
	assert_null(slurp(f, "mail/.subscriptions"));

	/* the first change writes our file, with the imported names */
	assert_int_equal(sub(f, "Sent"), FOLDER_OK);
	expect_file(f, "Drafts\nEntw&APw-rfe\nINBOX\nSent\na/b\nabs\n");
	/* from then on .mailboxlist is not read; it is never changed */
	put(f, ".mailboxlist", "mail/Later\n");
	assert_int_equal(unsub(f, "abs"), FOLDER_OK);
	expect_subs(f, "Drafts Entw&APw-rfe INBOX Sent a/b");
	char *uw = slurp(f, ".mailboxlist");
	assert_string_equal(uw, "mail/Later\n");
	free(uw);
	assert_int_equal(subs_load(f->root, &s, NULL), FOLDER_OK);
	assert_false(s->imported);
	subs_free(&s);
}

static void
test_uw_import_unsubscribe_first(void **state)
{
	struct fx *f = *state;

	put(f, ".mailboxlist", "mail/a\nmail/b\n");
	assert_int_equal(unsub(f, "a"), FOLDER_OK);
	expect_file(f, "b\n");
	/* unsubscribing everything leaves an empty file: no re-import */
	assert_int_equal(unsub(f, "b"), FOLDER_OK);
	expect_file(f, "");
	expect_subs(f, "");
}

static void
test_dovecot_v2(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mkdir(f->maildir, 0700), 0);
	put(f, "mail/.subscriptions", "V\t2\n\nSent\na\tb\tc\nINBOX\n");
	expect_subs(f, "INBOX Sent a/b/c");
}

static void
expect_lsub(struct fx *f, const char *ref, const char *pat, const char *want)
{
	struct folder_list *l = NULL;
	char got[4096];
	size_t n = 0;

	assert_int_equal(subs_lsub(f->root, ref, strlen(ref), pat, strlen(pat), &l, NULL),
	    FOLDER_OK);
	got[0] = '\0';
	for (size_t i = 0; i < l->count; i++)
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s%s", i ? " " : "",
		    l->v[i].name, l->v[i].attrs & FOLDER_ATTR_NOSELECT ? ":S" : "");
	folder_list_free(&l);
	if (strcmp(got, want) != 0)
		fail_msg("LSUB \"%s\" \"%s\"\n got: %s\nwant: %s", ref, pat, got, want);
}

static void
test_lsub(void **state)
{
	struct fx *f = *state;

	expect_lsub(f, "", "*", "");
	assert_int_equal(sub(f, "a/b/c"), FOLDER_OK);
	assert_int_equal(sub(f, "a"), FOLDER_OK);
	assert_int_equal(sub(f, "Sent"), FOLDER_OK);
	assert_int_equal(sub(f, "INBOX"), FOLDER_OK);
	assert_int_equal(sub(f, "gone"), FOLDER_OK);
	expect_lsub(f, "", "*", "INBOX Sent a a/b/c gone");
	expect_lsub(f, "", "%", "INBOX Sent a gone");
	expect_lsub(f, "", "inbox", "INBOX");
	expect_lsub(f, "", "Inbox%", "INBOX");
	expect_lsub(f, "", "in*", "");
	expect_lsub(f, "", "a/*", "a/b/c");
	expect_lsub(f, "", "", "");
	/* RFC 3501 6.3.9: "%" stops at a level that is not itself subscribed: \Noselect */
	expect_lsub(f, "", "a/%", "a/b:S");
	expect_lsub(f, "a/", "%", "a/b:S");
	expect_lsub(f, "", "a/b/%", "a/b/c");
	assert_int_equal(unsub(f, "a"), FOLDER_OK);
	expect_lsub(f, "", "%", "INBOX Sent a:S gone");
	expect_lsub(f, "", "*", "INBOX Sent a/b/c gone");
	assert_int_equal(sub(f, "x/y/z"), FOLDER_OK);
	assert_int_equal(sub(f, "x/q/z"), FOLDER_OK);
	expect_lsub(f, "", "%/%", "a/b:S x/q:S x/y:S");
	expect_lsub(f, "", "x/%", "x/q:S x/y:S");
}

static void
test_mark(void **state)
{
	struct fx *f = *state;
	struct folder_list *l = folder_list_new();

	assert_non_null(l);
	assert_int_equal(folder_list_add(l, "Sent", 4, FOLDER_ATTR_NOINFERIORS), 0);
	assert_int_equal(folder_list_add(l, "Drafts", 6, 0), 0);
	assert_int_equal(sub(f, "Sent"), FOLDER_OK);
	assert_int_equal(subs_mark(f->root, l, NULL), FOLDER_OK);
	assert_int_equal(l->v[0].attrs, FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_SUBSCRIBED);
	assert_int_equal(l->v[1].attrs, 0);
	assert_int_equal(folder_list_find(l, "Drafts", 6), 1);
	assert_int_equal(folder_list_find(l, "Draft", 5), -1);
	folder_list_free(&l);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_roundtrip),
		T(test_junk_lines),
		T(test_bounds),
		T(test_atomic_replace),
		T(test_lock),
		T(test_uw_import),
		T(test_uw_import_unsubscribe_first),
		T(test_dovecot_v2),
		T(test_lsub),
		T(test_mark),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
