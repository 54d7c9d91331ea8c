/*
 * test-folder-ops.c: folders on a real temporary tree: resolving names to paths, symlinks
 * inside and leading outside, CREATE/DELETE/RENAME (hierarchies, INBOX, every refusal), and
 * LIST (attributes, hidden files, symlink loops, depth bound, special-use).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "mbox/folder.h"

struct fx {
	char top[64];		/* temp dir: the "home" */
	char maildir[128];
	char inbox[128];
	struct folder_root *root;
};

static void
pathf(char *buf, size_t size, const struct fx *f, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", f->top, rel);
	assert_true(n > 0 && (size_t)n < size);
}

static void
mkfile(const struct fx *f, const char *rel, const char *content)
{
	char p[512];
	int fd;

	pathf(p, sizeof(p), f, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (content != NULL)
		assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(close(fd), 0);
}

static void
mkdirf(const struct fx *f, const char *rel)
{
	char p[512];

	pathf(p, sizeof(p), f, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void
mklink(const struct fx *f, const char *target, const char *rel)
{
	char p[512];

	pathf(p, sizeof(p), f, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* lstat mode of top/rel, or 0 if missing */
static mode_t
mode_of(const struct fx *f, const char *rel)
{
	char p[512];
	struct stat st;

	pathf(p, sizeof(p), f, rel);
	if (lstat(p, &st) != 0)
		return 0;
	return st.st_mode;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct folder_config cfg = { 0 };

	assert_non_null(f);
	strcpy(f->top, "/tmp/test-folder-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->maildir, sizeof(f->maildir), "%s/mail", f->top);
	snprintf(f->inbox, sizeof(f->inbox), "%s/spool", f->top);
	mkfile(f, "spool", "From a@b Sat Jan  1 00:00:00 2000\n\nx\n");
	cfg.maildir = f->maildir;
	cfg.inbox = f->inbox;
	cfg.home = f->top;
	assert_int_equal(folder_root_new(&cfg, &f->root, NULL), FOLDER_OK);
	umask(022);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	folder_root_free(&f->root);
	assert_null(f->root);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static enum folder_status
create(struct fx *f, const char *name)
{
	struct folder_error err;
	enum folder_status s = folder_create(f->root, name, strlen(name), &err);

	if (s != FOLDER_OK)
		assert_int_equal(err.status, s);
	return s;
}

static enum folder_status
delete(struct fx *f, const char *name)
{
	return folder_delete(f->root, name, strlen(name), NULL);
}

static enum folder_status
ren(struct fx *f, const char *from, const char *to)
{
	struct folder_error err;
	enum folder_status s = folder_rename(f->root, from, strlen(from), to, strlen(to), &err);

	if (s != FOLDER_OK)
		assert_int_equal(err.status, s);
	return s;
}

static void
test_root_config(void **state)
{
	struct folder_config cfg = { "mail", "/var/mail/u", NULL, NULL };
	struct folder_root *r = NULL;

	(void)state;
	assert_int_equal(folder_root_new(&cfg, &r, NULL), FOLDER_EBADNAME);
	assert_null(r);
	cfg.maildir = "/home/u/mail/";
	cfg.inbox = "spool";
	assert_int_equal(folder_root_new(&cfg, &r, NULL), FOLDER_EBADNAME);
	cfg.inbox = "/var/mail/u";
	assert_int_equal(folder_root_new(&cfg, &r, NULL), FOLDER_OK);
	assert_string_equal(folder_root_maildir(r), "/home/u/mail");
	assert_string_equal(folder_root_inbox(r), "/var/mail/u");
	assert_null(folder_root_home(r));
	folder_root_free(&r);
	folder_root_free(&r);
}

static void
test_create(void **state)
{
	struct fx *f = *state;

	umask(0);
	/* the mail directory itself is made on demand */
	assert_int_equal(mode_of(f, "mail"), 0);
	assert_int_equal(create(f, "Sent"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail"), S_IFDIR | 0700);
	assert_int_equal(mode_of(f, "mail/Sent"), S_IFREG | 0600);
	assert_int_equal(create(f, "Sent"), FOLDER_EEXIST);
	assert_int_equal(create(f, "Sent/"), FOLDER_EEXIST);
	assert_int_equal(create(f, "INBOX"), FOLDER_EEXIST);
	assert_int_equal(create(f, "inbox"), FOLDER_EEXIST);
	/* directories: trailing '/' */
	assert_int_equal(create(f, "Lists/"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/Lists"), S_IFDIR | 0700);
	assert_int_equal(create(f, "Lists/"), FOLDER_EEXIST);
	assert_int_equal(create(f, "Lists"), FOLDER_EEXIST);
	/* intermediate levels */
	assert_int_equal(create(f, "x/y/z"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/x"), S_IFDIR | 0700);
	assert_int_equal(mode_of(f, "mail/x/y"), S_IFDIR | 0700);
	assert_int_equal(mode_of(f, "mail/x/y/z"), S_IFREG | 0600);
	assert_int_equal(create(f, "x/y/"), FOLDER_EEXIST);
	assert_int_equal(create(f, "x/y/w/"), FOLDER_OK);
	/* a mailbox cannot have children */
	assert_int_equal(create(f, "Sent/2024"), FOLDER_ECANNOT);
	assert_int_equal(create(f, "x/y/z/a/b"), FOLDER_ECANNOT);
	assert_int_equal(mode_of(f, "mail/x/y/z"), S_IFREG | 0600);
	/* modified UTF-7 names are the file names */
	assert_int_equal(create(f, "Entw&APw-rfe"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/Entw&APw-rfe"), S_IFREG | 0600);
	/* refused names never reach the file system */
	assert_int_equal(create(f, "../escape"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "/tmp/escape"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "a/../../escape"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "~root/escape"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "q//r"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "q/./r"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "new\nline"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "caf\xc3\xa9"), FOLDER_EBADNAME);
	assert_int_equal(create(f, ".subscriptions"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "Sent.lock"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "star*"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "pct%"), FOLDER_EBADNAME);
	assert_int_equal(create(f, "INBOX/sub"), FOLDER_ECANNOT);
	assert_int_equal(mode_of(f, "escape"), 0);
	assert_int_equal(mode_of(f, "mail/q"), 0);
	assert_int_equal(mode_of(f, "mail/star*"), 0);
	umask(022);
}

static void
test_create_through_links(void **state)
{
	struct fx *f = *state;
	char outside[256];

	assert_int_equal(create(f, "real/"), FOLDER_OK);
	mklink(f, "real", "mail/inlink");
	mkdirf(f, "outside");
	pathf(outside, sizeof(outside), f, "outside");
	mklink(f, outside, "mail/outlink");
	/* through a link that stays inside: allowed, lands in the target */
	assert_int_equal(create(f, "inlink/box"), FOLDER_OK);
	assert_true(S_ISREG(mode_of(f, "mail/real/box")));
	/* through a link leading outside: refused, nothing made */
	assert_int_equal(create(f, "outlink/box"), FOLDER_EPERM);
	assert_int_equal(create(f, "outlink/deep/box"), FOLDER_EPERM);
	assert_int_equal(mode_of(f, "outside/box"), 0);
	assert_int_equal(mode_of(f, "outside/deep"), 0);
	/* the link names are taken */
	assert_int_equal(create(f, "outlink"), FOLDER_EPERM);
	mklink(f, "nowhere", "mail/dangling");
	assert_int_equal(create(f, "dangling"), FOLDER_EEXIST);
}

static void
test_resolve(void **state)
{
	struct fx *f = *state;
	struct folder_ref ref;
	char want[512];

	assert_int_equal(create(f, "a/b"), FOLDER_OK);
	assert_int_equal(folder_resolve(f->root, "inbox", 5, 0, &ref, NULL), FOLDER_OK);
	assert_string_equal(ref.path, f->inbox);
	assert_true(ref.n.inbox);
	assert_int_equal(ref.type, FOLDER_T_MAILBOX);
	assert_int_equal(folder_resolve(f->root, "a/b", 3, 0, &ref, NULL), FOLDER_OK);
	pathf(want, sizeof(want), f, "mail/a/b");
	/* the mail dir is given as a real path here (mkdtemp under /tmp) */
	char real[PATH_MAX];
	assert_non_null(realpath(want, real));
	assert_string_equal(ref.path, real);
	assert_int_equal(ref.type, FOLDER_T_MAILBOX);
	assert_false(ref.link);
	assert_int_equal(folder_resolve(f->root, "a", 1, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_DIR);
	assert_int_equal(folder_resolve(f->root, "nope", 4, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_NONE);
	assert_int_equal(folder_resolve(f->root, "nope/deeper", 11, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_NONE);
	assert_int_equal(folder_resolve(f->root, "a/b/c", 5, 0, &ref, NULL), FOLDER_ECANNOT);
	assert_int_equal(folder_resolve(f->root, "..", 2, 0, &ref, NULL), FOLDER_EBADNAME);

	/* symlinks: to a mailbox inside; to a file outside; through a dir outside */
	mklink(f, "a/b", "mail/inlink");
	assert_int_equal(folder_resolve(f->root, "inlink", 6, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_MAILBOX);
	assert_true(ref.link);
	/* the path to open is the target's: the store opens with O_NOFOLLOW */
	assert_string_equal(ref.path, real);
	mklink(f, "/etc/passwd", "mail/passwd");
	assert_int_equal(folder_resolve(f->root, "passwd", 6, 0, &ref, NULL), FOLDER_EPERM);
	mklink(f, "../spool", "mail/spool");
	assert_int_equal(folder_resolve(f->root, "spool", 5, 0, &ref, NULL), FOLDER_EPERM);
	mklink(f, "/etc", "mail/etc");
	assert_int_equal(folder_resolve(f->root, "etc/passwd", 10, 0, &ref, NULL), FOLDER_EPERM);
	mklink(f, "..", "mail/up");
	assert_int_equal(folder_resolve(f->root, "up/spool", 8, 0, &ref, NULL), FOLDER_EPERM);
	/* a loop of links is refused, not followed forever */
	mklink(f, "l2", "mail/l1");
	mklink(f, "l1", "mail/l2");
	assert_int_not_equal(folder_resolve(f->root, "l1", 2, 0, &ref, NULL), FOLDER_OK);
	assert_int_not_equal(folder_resolve(f->root, "l1/x", 4, 0, &ref, NULL), FOLDER_OK);
	/* a link back to the mail directory itself stays inside */
	mklink(f, ".", "mail/self");
	assert_int_equal(folder_resolve(f->root, "self/a/b", 8, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_MAILBOX);
	/* a mail directory that is itself a symlink works (real path compared) */
}

static void
test_maildir_is_link(void **state)
{
	struct fx *f = *state;
	struct folder_config cfg = { 0 };
	struct folder_root *r;
	struct folder_ref ref;
	char linked[256];

	mkdirf(f, "realmail");
	mklink(f, "realmail", "linkmail");
	pathf(linked, sizeof(linked), f, "linkmail");
	cfg.maildir = linked;
	cfg.inbox = f->inbox;
	assert_int_equal(folder_root_new(&cfg, &r, NULL), FOLDER_OK);
	assert_int_equal(folder_create(r, "box", 3, NULL), FOLDER_OK);
	assert_true(S_ISREG(mode_of(f, "realmail/box")));
	assert_int_equal(folder_resolve(r, "box", 3, 0, &ref, NULL), FOLDER_OK);
	assert_int_equal(ref.type, FOLDER_T_MAILBOX);
	folder_root_free(&r);
}

static void
test_delete(void **state)
{
	struct fx *f = *state;

	assert_int_equal(create(f, "box"), FOLDER_OK);
	assert_int_equal(delete(f, "box"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/box"), 0);
	assert_int_equal(delete(f, "box"), FOLDER_ENOENT);
	assert_int_equal(delete(f, "INBOX"), FOLDER_ECANNOT);
	assert_int_equal(delete(f, "Inbox"), FOLDER_ECANNOT);
	assert_true(S_ISREG(mode_of(f, "spool")));
	/* a directory with children cannot go (RFC 3501 6.3.4); once empty it can */
	assert_int_equal(create(f, "d/e"), FOLDER_OK);
	assert_int_equal(delete(f, "d"), FOLDER_EHASCHILDREN);
	assert_int_equal(delete(f, "d/"), FOLDER_EHASCHILDREN);
	assert_int_equal(delete(f, "d/e"), FOLDER_OK);
	assert_int_equal(delete(f, "d/"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/d"), 0);
	/* a directory holding only files LIST does not show is not deleted either */
	assert_int_equal(create(f, "h/"), FOLDER_OK);
	mkfile(f, "mail/h/.cache", "x");
	assert_int_equal(delete(f, "h"), FOLDER_EHASCHILDREN);
	assert_true(S_ISREG(mode_of(f, "mail/h/.cache")));
	/* a symlink is removed itself, its target stays */
	assert_int_equal(create(f, "target"), FOLDER_OK);
	mklink(f, "target", "mail/alias");
	assert_int_equal(delete(f, "alias"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/alias"), 0);
	assert_true(S_ISREG(mode_of(f, "mail/target")));
	/* a link leading outside is neither followed nor removed */
	mklink(f, "../spool", "mail/out");
	assert_int_equal(delete(f, "out"), FOLDER_EPERM);
	assert_true(S_ISLNK(mode_of(f, "mail/out")));
	assert_true(S_ISREG(mode_of(f, "spool")));
	/* refused names */
	assert_int_equal(delete(f, "../spool"), FOLDER_EBADNAME);
	assert_int_equal(delete(f, "/etc/passwd"), FOLDER_EBADNAME);
	assert_int_equal(delete(f, "x/../out"), FOLDER_EBADNAME);
}

static void
test_rename(void **state)
{
	struct fx *f = *state;

	assert_int_equal(create(f, "a"), FOLDER_OK);
	assert_int_equal(ren(f, "a", "b"), FOLDER_OK);
	assert_int_equal(mode_of(f, "mail/a"), 0);
	assert_true(S_ISREG(mode_of(f, "mail/b")));
	assert_int_equal(ren(f, "a", "c"), FOLDER_ENOENT);
	/* intermediate levels of the new name are made */
	assert_int_equal(ren(f, "b", "n/e/w"), FOLDER_OK);
	assert_true(S_ISREG(mode_of(f, "mail/n/e/w")));
	assert_true(S_ISDIR(mode_of(f, "mail/n/e")));
	/* a whole hierarchy moves */
	assert_int_equal(create(f, "n/x"), FOLDER_OK);
	assert_int_equal(ren(f, "n", "m"), FOLDER_OK);
	assert_true(S_ISREG(mode_of(f, "mail/m/e/w")));
	assert_true(S_ISREG(mode_of(f, "mail/m/x")));
	assert_int_equal(mode_of(f, "mail/n"), 0);
	/* target exists: mailbox, directory, itself */
	assert_int_equal(create(f, "t"), FOLDER_OK);
	assert_int_equal(ren(f, "t", "m/x"), FOLDER_EEXIST);
	assert_int_equal(ren(f, "t", "m"), FOLDER_EEXIST);
	assert_int_equal(ren(f, "t", "t"), FOLDER_EEXIST);
	assert_int_equal(ren(f, "m", "m/e"), FOLDER_ECANNOT);
	/* into oneself, into a mailbox */
	assert_int_equal(ren(f, "m", "m/sub/deeper"), FOLDER_ECANNOT);
	assert_int_equal(ren(f, "t", "m/x/y"), FOLDER_ECANNOT);
	/* to INBOX: it always exists */
	assert_int_equal(ren(f, "t", "INBOX"), FOLDER_EEXIST);
	assert_int_equal(ren(f, "t", "inbox"), FOLDER_EEXIST);
	/* from INBOX: checked, then handed to the caller; nothing changes */
	assert_int_equal(ren(f, "INBOX", "old-inbox"), FOLDER_RENAME_INBOX);
	assert_int_equal(mode_of(f, "mail/old-inbox"), 0);
	assert_true(S_ISREG(mode_of(f, "spool")));
	assert_int_equal(ren(f, "inbox", "t"), FOLDER_EEXIST);
	assert_int_equal(ren(f, "INBOX", "t/sub"), FOLDER_ECANNOT);
	assert_int_equal(ren(f, "INBOX", "../x"), FOLDER_EBADNAME);
	/* refused names on either side, no trace left */
	assert_int_equal(ren(f, "t", "../t"), FOLDER_EBADNAME);
	assert_int_equal(ren(f, "../spool", "stolen"), FOLDER_EBADNAME);
	assert_int_equal(ren(f, "t", "/tmp/t"), FOLDER_EBADNAME);
	assert_int_equal(ren(f, "t", "new*"), FOLDER_EBADNAME);
	assert_int_equal(mode_of(f, "t"), 0);
	assert_int_equal(mode_of(f, "mail/stolen"), 0);
	/* a directory renamed with a trailing '/' */
	assert_int_equal(ren(f, "m/", "k"), FOLDER_OK);
	assert_true(S_ISREG(mode_of(f, "mail/k/x")));
	/* into a link that leads outside */
	char outside[256];
	mkdirf(f, "outside");
	pathf(outside, sizeof(outside), f, "outside");
	mklink(f, outside, "mail/out");
	assert_int_equal(ren(f, "t", "out/t"), FOLDER_EPERM);
	assert_int_equal(mode_of(f, "outside/t"), 0);
	assert_true(S_ISREG(mode_of(f, "mail/t")));
}

/* ---- listing ---- */

static struct folder_list *
list(struct fx *f, const char *ref, const char *pat)
{
	struct folder_list *l = NULL;
	struct folder_error err;

	if (folder_list(f->root, ref, strlen(ref), pat, strlen(pat), &l, &err) != FOLDER_OK)
		fail_msg("list failed: %s", err.msg);
	assert_non_null(l);
	return l;
}

/* "name:attrs name:attrs ..." with attrs as letters, for compact comparisons */
static void
expect_list(struct fx *f, const char *ref, const char *pat, const char *want)
{
	struct folder_list *l = list(f, ref, pat);
	char got[4096];
	size_t n = 0;

	got[0] = '\0';
	for (size_t i = 0; i < l->count; i++) {
		unsigned int a = l->v[i].attrs;
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s:%s%s%s%s%s%s%s%s%s",
		    i ? " " : "", l->v[i].name,
		    a & FOLDER_ATTR_NOSELECT ? "S" : "", a & FOLDER_ATTR_NOINFERIORS ? "I" : "",
		    a & FOLDER_ATTR_HASCHILDREN ? "C" : "",
		    a & FOLDER_ATTR_HASNOCHILDREN ? "N" : "",
		    a & FOLDER_ATTR_MARKED ? "M" : "", a & FOLDER_ATTR_SENT ? "s" : "",
		    a & FOLDER_ATTR_TRASH ? "t" : "", a & FOLDER_ATTR_DRAFTS ? "d" : "",
		    a & FOLDER_ATTR_JUNK ? "j" : "");
		assert_int_equal(l->v[i].len, strlen(l->v[i].name));
	}
	assert_false(l->truncated);
	folder_list_free(&l);
	assert_null(l);
	if (strcmp(got, want) != 0)
		fail_msg("LIST \"%s\" \"%s\"\n got: %s\nwant: %s", ref, pat, got, want);
}

/* Build the tree every listing test uses. */
static void
tree(struct fx *f)
{
	char outside[256];

	mkdirf(f, "mail");
	mkfile(f, "mail/Sent", NULL);
	mkfile(f, "mail/Drafts", NULL);
	mkfile(f, "mail/spam", NULL);
	mkfile(f, "mail/Entw&APw-rfe", NULL);
	mkfile(f, "mail/inbox", NULL);			/* shadowed by INBOX: hidden */
	mkfile(f, "mail/.subscriptions", "Sent\n");	/* dot files: hidden */
	mkdirf(f, "mail/.cache");
	mkfile(f, "mail/.cache/x", NULL);
	mkfile(f, "mail/Sent.lock", NULL);		/* lock files: hidden */
	mkfile(f, "mail/bad&name", NULL);		/* invalid modified UTF-7: hidden */
	mkfile(f, "mail/caf\xc3\xa9", NULL);		/* raw UTF-8: hidden */
	mkfile(f, "mail/~tilde", NULL);			/* not nameable: hidden */
	mkdirf(f, "mail/a");
	mkfile(f, "mail/a/b", NULL);
	mkdirf(f, "mail/a/c");
	mkfile(f, "mail/a/c/d", NULL);
	mkdirf(f, "mail/empty");
	mkdirf(f, "mail/onlyhidden");
	mkfile(f, "mail/onlyhidden/.x", NULL);
	mklink(f, "Sent", "mail/in-link");		/* inside: shown */
	mklink(f, "a", "mail/in-dir");			/* inside, a directory: shown, entered */
	mklink(f, "/etc/passwd", "mail/out-file");	/* outside: hidden */
	mklink(f, "..", "mail/out-up");			/* outside: hidden */
	mkdirf(f, "outside");
	mkfile(f, "outside/secret", NULL);
	pathf(outside, sizeof(outside), f, "outside");
	mklink(f, outside, "mail/out-dir");		/* outside: hidden, not entered */
	mklink(f, "nowhere", "mail/dangling");		/* hidden */
	mklink(f, "loop2", "mail/loop1");		/* ELOOP: hidden */
	mklink(f, "loop1", "mail/loop2");
	mkdirf(f, "mail/cyc");
	mklink(f, "..", "mail/cyc/up");			/* back to the mail dir: shown once */
	assert_int_equal(mkfifo("/dev/null/x", 0600), -1);
	char fifo[256];
	pathf(fifo, sizeof(fifo), f, "mail/fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);	/* neither file nor dir: hidden */
}

static void
test_list_tree(void **state)
{
	struct fx *f = *state;

	tree(f);
	expect_list(f, "", "*",
	    "INBOX:I Drafts:Id Entw&APw-rfe:I Sent:Is a:SC a/b:I a/c:SC a/c/d:I "
	    "cyc:SC cyc/up:SC empty:SN in-dir:SC in-dir/b:I in-dir/c:SC in-dir/c/d:I "
	    "in-link:I onlyhidden:SN spam:Ij");
	expect_list(f, "", "%",
	    "INBOX:I Drafts:Id Entw&APw-rfe:I Sent:Is a:SC cyc:SC empty:SN in-dir:SC "
	    "in-link:I onlyhidden:SN spam:Ij");
	expect_list(f, "", "a/%", "a/b:I a/c:SC");
	expect_list(f, "a/", "%", "a/b:I a/c:SC");
	expect_list(f, "a/", "*", "a/b:I a/c:SC a/c/d:I");
	expect_list(f, "", "*d", "a/c/d:I in-dir/c/d:I");
	expect_list(f, "", "*s", "Drafts:Id");
	expect_list(f, "", "%/%", "a/b:I a/c:SC cyc/up:SC in-dir/b:I in-dir/c:SC");
	expect_list(f, "", "a", "a:SC");
	expect_list(f, "", "Sent", "Sent:Is");
	expect_list(f, "", "nonexistent", "");
	expect_list(f, "", "", "");
	/* INBOX matches without regard to case */
	expect_list(f, "", "inbox", "INBOX:I");
	expect_list(f, "", "inBOX*", "INBOX:I");
	expect_list(f, "", "I*", "INBOX:I");
	/* only a leading "INBOX" ignores case: these are plain patterns */
	expect_list(f, "", "InBo%", "");
	expect_list(f, "", "*n*x", "");
	/* attempts to reach outside show nothing */
	expect_list(f, "", "out-dir/*", "");
	expect_list(f, "", "out-up/*", "");
	expect_list(f, "", "../*", "");
	expect_list(f, "/", "*", "");
	expect_list(f, "", "/etc/*", "");
	expect_list(f, "~root/", "*", "");
}

static void
test_list_no_maildir(void **state)
{
	struct fx *f = *state;

	expect_list(f, "", "*", "INBOX:I");
	expect_list(f, "", "%", "INBOX:I");
	expect_list(f, "", "Sent", "");
	/* a missing spool is still INBOX */
	assert_int_equal(unlink(f->inbox), 0);
	expect_list(f, "", "*", "INBOX:I");
}

static void
test_list_marked(void **state)
{
	struct fx *f = *state;
	struct timespec ts[2] = { { 1000, 0 }, { 2000, 0 } };	/* atime < mtime */
	char p[256];

	mkdirf(f, "mail");
	mkfile(f, "mail/new", "From x\n");
	mkfile(f, "mail/read", "From x\n");
	mkfile(f, "mail/nil", NULL);
	pathf(p, sizeof(p), f, "mail/new");
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	ts[0].tv_sec = 3000;
	pathf(p, sizeof(p), f, "mail/read");
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	ts[0].tv_sec = 1000;
	pathf(p, sizeof(p), f, "mail/nil");
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	struct folder_list *l = list(f, "", "*");
	assert_int_equal(l->count, 4);
	assert_string_equal(l->v[1].name, "new");
	assert_true(l->v[1].attrs & FOLDER_ATTR_MARKED);
	assert_string_equal(l->v[2].name, "nil");
	assert_true(l->v[2].attrs & FOLDER_ATTR_UNMARKED);
	assert_string_equal(l->v[3].name, "read");
	assert_true(l->v[3].attrs & FOLDER_ATTR_UNMARKED);
	folder_list_free(&l);
}

static void
test_list_deep(void **state)
{
	struct fx *f = *state;
	char rel[512] = "mail";
	size_t n = 4;

	mkdirf(f, "mail");
	/* deeper than FOLDER_DEPTH_MAX: the walk stops and says so */
	for (int i = 0; i < FOLDER_DEPTH_MAX + 5; i++) {
		memcpy(rel + n, "/d", 3);
		n += 2;
		mkdirf(f, rel);
	}
	struct folder_list *l = list(f, "", "*");
	assert_true(l->truncated);
	assert_int_equal(l->count, 1 + FOLDER_DEPTH_MAX);
	assert_int_equal(l->v[l->count - 1].len, 2 * FOLDER_DEPTH_MAX - 1);
	folder_list_free(&l);
	/* a pattern that cannot reach the bottom is not truncated */
	l = list(f, "", "d/%");
	assert_false(l->truncated);
	assert_int_equal(l->count, 1);
	assert_string_equal(l->v[0].name, "d/d");
	assert_true(l->v[0].attrs & FOLDER_ATTR_HASCHILDREN);
	folder_list_free(&l);
}

static void
test_list_link_explosion(void **state)
{
	struct fx *f = *state;
	char rel[64], target[64];
	struct timespec t0, t1;

	/* each level links twice to the next: 2^30 names if nothing stopped the walk */
	mkdirf(f, "mail");
	for (int i = 0; i < 30; i++) {
		snprintf(rel, sizeof(rel), "mail/d%02d", i);
		mkdirf(f, rel);
		snprintf(target, sizeof(target), "../d%02d", i + 1);
		snprintf(rel, sizeof(rel), "mail/d%02d/a", i);
		mklink(f, target, rel);
		snprintf(rel, sizeof(rel), "mail/d%02d/b", i);
		mklink(f, target, rel);
	}
	mkdirf(f, "mail/d30");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct folder_list *l = list(f, "", "*");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(l->truncated);
	assert_true(l->count <= FOLDER_LIST_MAX_ENTRIES + 1);
	size_t bytes = 0;
	for (size_t i = 0; i < l->count; i++)
		bytes += l->v[i].len + 1;
	assert_true(bytes <= FOLDER_LIST_MAX_BYTES + FOLDER_NAME_MAX);
	assert_true(t1.tv_sec - t0.tv_sec < 20);
	folder_list_free(&l);
}

static void
test_list_special_custom(void **state)
{
	struct fx *f = *state;
	static const struct folder_special map[] = {
		{ "Gesendet", FOLDER_ATTR_SENT },
		{ "Old/Trash", FOLDER_ATTR_TRASH },
		{ NULL, 0 },
	};
	struct folder_config cfg = { f->maildir, f->inbox, NULL, map };

	folder_root_free(&f->root);
	assert_int_equal(folder_root_new(&cfg, &f->root, NULL), FOLDER_OK);
	mkdirf(f, "mail");
	mkfile(f, "mail/Gesendet", NULL);
	mkfile(f, "mail/Sent", NULL);
	mkdirf(f, "mail/Old");
	mkfile(f, "mail/Old/Trash", NULL);
	expect_list(f, "", "*", "INBOX:I Gesendet:Is Old:SC Old/Trash:It Sent:I");
	assert_int_equal(folder_special_use(f->root, "gesendet", 8), FOLDER_ATTR_SENT);
	assert_int_equal(folder_special_use(f->root, "Sent", 4), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_config),
		T(test_create),
		T(test_create_through_links),
		T(test_resolve),
		T(test_maildir_is_link),
		T(test_delete),
		T(test_rename),
		T(test_list_tree),
		T(test_list_no_maildir),
		T(test_list_marked),
		T(test_list_deep),
		T(test_list_link_explosion),
		T(test_list_special_custom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
