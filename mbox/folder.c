/*
 * The user's folders on disk: root, name resolution, CREATE, DELETE, RENAME.
 */
#include "mbox/folder.h"
#include "mbox/folder-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct folder_root {
	char *maildir;
	char *inbox;
	char *home;
	struct folder_special *special;	/* NULL-name terminated copy */
};

const struct folder_special folder_special_defaults[] = {
	{ "Sent", FOLDER_ATTR_SENT },
	{ "Sent Messages", FOLDER_ATTR_SENT },
	{ "Sent Items", FOLDER_ATTR_SENT },
	{ "Drafts", FOLDER_ATTR_DRAFTS },
	{ "Trash", FOLDER_ATTR_TRASH },
	{ "Deleted Messages", FOLDER_ATTR_TRASH },
	{ "Deleted Items", FOLDER_ATTR_TRASH },
	{ "Junk", FOLDER_ATTR_JUNK },
	{ "Spam", FOLDER_ATTR_JUNK },
	{ "Archive", FOLDER_ATTR_ARCHIVE },
	{ NULL, 0 },
};

static bool
abs_path_ok(const char *p)
{
	size_t n;

	if (p == NULL || p[0] != '/')
		return false;
	n = strlen(p);
	/* leave room for "/" + a full name */
	return n + 1 + FOLDER_NAME_MAX < FOLDER_PATH_MAX;
}

enum folder_status
folder_root_new(const struct folder_config *cfg, struct folder_root **root_r,
    struct folder_error *err_r)
{
	const struct folder_special *sp = cfg->special != NULL ? cfg->special :
	    folder_special_defaults;
	struct folder_root *r;
	size_t n = 0;

	*root_r = NULL;
	if (!abs_path_ok(cfg->maildir) || !abs_path_ok(cfg->inbox) ||
	    (cfg->home != NULL && !abs_path_ok(cfg->home)))
		return folder_fail(err_r, FOLDER_EBADNAME, 0,
		    "mail paths must be absolute and not too long");
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	r->maildir = strdup(cfg->maildir);
	r->inbox = strdup(cfg->inbox);
	r->home = cfg->home != NULL ? strdup(cfg->home) : NULL;
	while (sp[n].name != NULL)
		n++;
	r->special = calloc(n + 1, sizeof(*r->special));
	bool ok = r->maildir != NULL && r->inbox != NULL && r->special != NULL &&
	    (cfg->home == NULL || r->home != NULL);
	for (size_t i = 0; ok && i < n; i++) {
		r->special[i].attr = sp[i].attr;
		r->special[i].name = strdup(sp[i].name);
		ok = r->special[i].name != NULL;
	}
	if (!ok) {
		folder_root_free(&r);
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	}
	/* Strip trailing slashes so that joins and prefix checks stay simple. */
	for (size_t k = strlen(r->maildir); k > 1 && r->maildir[k - 1] == '/'; k--)
		r->maildir[k - 1] = '\0';
	*root_r = r;
	return FOLDER_OK;
}

void
folder_root_free(struct folder_root **rootp)
{
	struct folder_root *r = *rootp;

	if (r == NULL)
		return;
	if (r->special != NULL) {
		for (size_t i = 0; r->special[i].name != NULL; i++)
			free((void *)(uintptr_t)r->special[i].name);
		free(r->special);
	}
	free(r->maildir);
	free(r->inbox);
	free(r->home);
	free(r);
	*rootp = NULL;
}

const char *
folder_root_maildir(const struct folder_root *root)
{
	return root->maildir;
}

const char *
folder_root_inbox(const struct folder_root *root)
{
	return root->inbox;
}

const char *
folder_root_home(const struct folder_root *root)
{
	return root->home;
}

unsigned int
folder_special_use(const struct folder_root *root, const char *name, size_t len)
{
	unsigned int attrs = 0;

	for (size_t i = 0; root->special[i].name != NULL; i++) {
		const char *s = root->special[i].name;
		if (strlen(s) == len && strncasecmp(s, name, len) == 0)
			attrs |= root->special[i].attr & FOLDER_ATTR_SPECIAL_USE;
	}
	return attrs;
}

int
folder_root_realdir(const struct folder_root *root, char *buf)
{
	char tmp[PATH_MAX];

	if (realpath(root->maildir, tmp) == NULL)
		return -1;
	if (strlen(tmp) >= FOLDER_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, tmp, strlen(tmp) + 1);
	return 0;
}

enum folder_status
folder_root_mkdir(const struct folder_root *root, struct folder_error *err_r)
{
	if (mkdir(root->maildir, 0700) == 0) {
		char parent[FOLDER_PATH_MAX];
		char *slash;

		memcpy(parent, root->maildir, strlen(root->maildir) + 1);
		slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = '\0';
		else if (slash != NULL)
			*slash = '\0';
		if (folder_fsync_dir(parent) != 0)
			return folder_fail_errno(err_r, errno, "fsync home directory");
		return FOLDER_OK;
	}
	if (errno == EEXIST)
		return FOLDER_OK;
	return folder_fail_errno(err_r, errno, "create mail directory");
}

bool
folder_path_inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/';
	return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int
folder_path_join(char *buf, const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);

	if (alen + 1 + blen + 1 > FOLDER_PATH_MAX)
		return -1;
	memmove(buf, a, alen);
	buf[alen] = '/';
	memcpy(buf + alen + 1, b, blen);
	buf[alen + 1 + blen] = '\0';
	return 0;
}

int
folder_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r, e;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	e = errno;
	/* Some file systems cannot fsync a directory; the rename/creat itself still stands. */
	if (r != 0 && (e == EINVAL || e == EROFS))
		r = 0;
	if (close(fd) != 0 && r == 0)
		return -1;
	errno = e;
	return r;
}

/* The parent of a path in place ("/a/b" -> "/a"). */
static void
path_parent(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == path)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
}

/*
 * Follow a symlink at `path`: its target must resolve inside `real` (the mail directory's
 * real path). Fills target (FOLDER_PATH_MAX) and *st_r.
 */
static enum folder_status
follow_link(const char *real, const char *path, char *target, struct stat *st_r,
    struct folder_error *err_r)
{
	char tmp[PATH_MAX];

	if (realpath(path, tmp) == NULL) {
		if (errno == ENOENT)
			return folder_fail(err_r, FOLDER_ENOENT, ENOENT, "dangling symbolic link");
		return folder_fail_errno(err_r, errno, "resolve symbolic link");
	}
	if (!folder_path_inside(real, tmp) || strlen(tmp) >= FOLDER_PATH_MAX)
		return folder_fail(err_r, FOLDER_EPERM, 0,
		    "symbolic link leads outside the mail directory");
	if (stat(tmp, st_r) != 0)
		return folder_fail_errno(err_r, errno, "stat link target");
	memcpy(target, tmp, strlen(tmp) + 1);
	return FOLDER_OK;
}

/*
 * Walk the components of fn but the last from the mail directory's real path `real`,
 * following links that stay inside. On FOLDER_OK `cur` holds the real path of the parent
 * directory. A missing component is created (0700) when `make`, else reported with
 * *missing_r. A component that is a mailbox gives FOLDER_ECANNOT.
 */
static enum folder_status
walk_parent(const char *real, const struct folder_name *fn, bool make, char *cur,
    bool *missing_r, struct folder_error *err_r)
{
	const char *p = fn->name;
	const char *end = fn->name + fn->len;

	*missing_r = false;
	memcpy(cur, real, strlen(real) + 1);
	for (;;) {
		const char *slash = memchr(p, FOLDER_DELIM, (size_t)(end - p));
		char next[FOLDER_PATH_MAX];
		struct stat st;

		if (slash == NULL)
			return FOLDER_OK;
		if (folder_path_join(next, cur, p, (size_t)(slash - p)) != 0)
			return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
		if (lstat(next, &st) != 0) {
			if (errno != ENOENT)
				return folder_fail_errno(err_r, errno, "examine directory");
			if (!make) {
				*missing_r = true;
				return FOLDER_OK;
			}
			if (mkdir(next, 0700) != 0 && errno != EEXIST)
				return folder_fail_errno(err_r, errno, "create directory");
			if (folder_fsync_dir(cur) != 0)
				return folder_fail_errno(err_r, errno, "fsync directory");
			if (lstat(next, &st) != 0)
				return folder_fail_errno(err_r, errno, "examine directory");
		}
		if (S_ISLNK(st.st_mode)) {
			char target[FOLDER_PATH_MAX];
			enum folder_status s = follow_link(real, next, target, &st, err_r);
			if (s == FOLDER_ENOENT && !make) {
				*missing_r = true;
				return FOLDER_OK;
			}
			if (s != FOLDER_OK)
				return s;
			memcpy(next, target, strlen(target) + 1);
		}
		if (S_ISREG(st.st_mode))
			return folder_fail(err_r, FOLDER_ECANNOT, 0,
			    "a mailbox cannot contain other mailboxes");
		if (!S_ISDIR(st.st_mode))
			return folder_fail(err_r, FOLDER_ECANNOT, 0, "not a mail folder");
		memcpy(cur, next, strlen(next) + 1);
		p = slash + 1;
	}
}

static const char *
last_component(const struct folder_name *fn, size_t *len_r)
{
	const char *s = memrchr(fn->name, FOLDER_DELIM, fn->len);
	const char *c = s != NULL ? s + 1 : fn->name;

	*len_r = fn->len - (size_t)(c - fn->name);
	return c;
}

/*
 * Examine the last component under parent directory `cur`; fill ref path/type/link. With
 * `follow`, a link that stays inside leaves the real path of its target in ref->path, for
 * those who open the mailbox (the store opens with O_NOFOLLOW); without, ref->path is the
 * link itself, for those who remove or rename the name.
 */
static enum folder_status
examine_last(const char *real, const char *cur, struct folder_ref *ref, bool follow,
    struct folder_error *err_r)
{
	size_t clen;
	const char *comp = last_component(&ref->n, &clen);
	struct stat st;

	if (folder_path_join(ref->path, cur, comp, clen) != 0)
		return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
	if (lstat(ref->path, &st) != 0) {
		if (errno == ENOENT)
			return FOLDER_OK;
		return folder_fail_errno(err_r, errno, "examine mailbox");
	}
	if (S_ISLNK(st.st_mode)) {
		char target[FOLDER_PATH_MAX];
		enum folder_status s;

		ref->link = true;
		s = follow_link(real, ref->path, target, &st, err_r);
		if (s == FOLDER_ENOENT)
			return FOLDER_OK;	/* dangling: nothing there, yet the name is taken */
		if (s != FOLDER_OK)
			return s;
		if (follow)
			memcpy(ref->path, target, strlen(target) + 1);
	}
	if (S_ISREG(st.st_mode))
		ref->type = FOLDER_T_MAILBOX;
	else if (S_ISDIR(st.st_mode))
		ref->type = FOLDER_T_DIR;
	else
		return folder_fail(err_r, FOLDER_ECANNOT, 0, "not a mailbox or directory");
	return FOLDER_OK;
}

/* folder_resolve(); `follow` as examine_last(). */
static enum folder_status
resolve(const struct folder_root *root, const char *name, size_t len, unsigned int flags,
    bool follow, struct folder_ref *ref_r, struct folder_error *err_r)
{
	char real[FOLDER_PATH_MAX], cur[FOLDER_PATH_MAX];
	enum folder_status s;
	bool missing;

	memset(ref_r, 0, sizeof(*ref_r));
	s = folder_name_parse(name, len, flags, &ref_r->n, err_r);
	if (s != FOLDER_OK)
		return s;
	if (ref_r->n.inbox) {
		memcpy(ref_r->path, root->inbox, strlen(root->inbox) + 1);
		ref_r->type = FOLDER_T_MAILBOX;
		return FOLDER_OK;
	}
	if (folder_root_realdir(root, real) != 0) {
		if (errno != ENOENT)
			return folder_fail_errno(err_r, errno, "open mail directory");
		missing = true;
	} else {
		s = walk_parent(real, &ref_r->n, false, cur, &missing, err_r);
		if (s != FOLDER_OK)
			return s;
	}
	if (missing) {
		if (folder_path_join(ref_r->path, root->maildir, ref_r->n.name, ref_r->n.len) != 0)
			return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
		return FOLDER_OK;
	}
	return examine_last(real, cur, ref_r, follow, err_r);
}

enum folder_status
folder_resolve(const struct folder_root *root, const char *name, size_t len, unsigned int flags,
    struct folder_ref *ref_r, struct folder_error *err_r)
{
	return resolve(root, name, len, flags, true, ref_r, err_r);
}

enum folder_status
folder_create(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r)
{
	struct folder_ref ref;
	char real[FOLDER_PATH_MAX], cur[FOLDER_PATH_MAX];
	enum folder_status s;
	bool missing;

	memset(&ref, 0, sizeof(ref));
	s = folder_name_parse(name, len, FOLDER_NAME_DIR_OK | FOLDER_NAME_CREATE, &ref.n, err_r);
	if (s != FOLDER_OK)
		return s;
	if (ref.n.inbox)
		return folder_fail(err_r, FOLDER_EEXIST, 0, "INBOX always exists");
	s = folder_root_mkdir(root, err_r);
	if (s != FOLDER_OK)
		return s;
	if (folder_root_realdir(root, real) != 0)
		return folder_fail_errno(err_r, errno, "open mail directory");
	s = walk_parent(real, &ref.n, true, cur, &missing, err_r);
	if (s != FOLDER_OK)
		return s;
	s = examine_last(real, cur, &ref, false, err_r);
	if (s != FOLDER_OK)
		return s;
	if (ref.type != FOLDER_T_NONE || ref.link)
		return folder_fail(err_r, FOLDER_EEXIST, EEXIST, "mailbox already exists");
	if (ref.n.dir) {
		if (mkdir(ref.path, 0700) != 0)
			return folder_fail_errno(err_r, errno, "create directory");
	} else {
		int fd = open(ref.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd < 0)
			return folder_fail_errno(err_r, errno, "create mailbox");
		if (close(fd) != 0)
			return folder_fail_errno(err_r, errno, "create mailbox");
	}
	if (folder_fsync_dir(cur) != 0)
		return folder_fail_errno(err_r, errno, "fsync directory");
	return FOLDER_OK;
}

enum folder_status
folder_delete(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r)
{
	struct folder_ref ref;
	enum folder_status s;
	int r;

	/* a link is removed, never what it points to */
	s = resolve(root, name, len, FOLDER_NAME_DIR_OK, false, &ref, err_r);
	if (s != FOLDER_OK)
		return s;
	if (ref.n.inbox)
		return folder_fail(err_r, FOLDER_ECANNOT, 0, "INBOX cannot be deleted");
	if (ref.type == FOLDER_T_NONE && !ref.link)
		return folder_fail(err_r, FOLDER_ENOENT, ENOENT, "mailbox does not exist");
	if (ref.link || ref.type == FOLDER_T_MAILBOX)
		r = unlink(ref.path);
	else
		r = rmdir(ref.path);
	if (r != 0) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			return folder_fail(err_r, FOLDER_EHASCHILDREN, errno,
			    "directory is not empty");
		return folder_fail_errno(err_r, errno, "delete mailbox");
	}
	path_parent(ref.path);
	if (folder_fsync_dir(ref.path) != 0)
		return folder_fail_errno(err_r, errno, "fsync directory");
	return FOLDER_OK;
}

static int
rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/*
	 * The file system cannot do it atomically (or `to` lies under `from`, which rename()
	 * refuses with EINVAL too): check, then rename.
	 */
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

enum folder_status
folder_rename(const struct folder_root *root, const char *oldname, size_t oldlen,
    const char *newname, size_t newlen, struct folder_error *err_r)
{
	struct folder_ref from, to;
	char real[FOLDER_PATH_MAX], cur[FOLDER_PATH_MAX];
	enum folder_status s;
	bool missing;

	s = folder_name_parse(newname, newlen, FOLDER_NAME_DIR_OK | FOLDER_NAME_CREATE, &to.n,
	    err_r);
	if (s != FOLDER_OK)
		return s;
	if (to.n.inbox)
		return folder_fail(err_r, FOLDER_EEXIST, 0, "INBOX always exists");
	/* a link is renamed itself; what it points to stays where it is */
	s = resolve(root, oldname, oldlen, FOLDER_NAME_DIR_OK, false, &from, err_r);
	if (s != FOLDER_OK)
		return s;
	if (from.n.inbox) {
		s = resolve(root, newname, newlen, FOLDER_NAME_DIR_OK | FOLDER_NAME_CREATE, false,
		    &to, err_r);
		if (s != FOLDER_OK)
			return s;
		if (to.type != FOLDER_T_NONE || to.link)
			return folder_fail(err_r, FOLDER_EEXIST, EEXIST, "mailbox already exists");
		if (to.n.dir)
			return folder_fail(err_r, FOLDER_ECANNOT, 0,
			    "INBOX can only become a mailbox");
		return folder_fail(err_r, FOLDER_RENAME_INBOX, 0, NULL);
	}
	if (from.type == FOLDER_T_NONE && !from.link)
		return folder_fail(err_r, FOLDER_ENOENT, ENOENT, "mailbox does not exist");
	if (from.n.len == to.n.len && memcmp(from.n.name, to.n.name, to.n.len) == 0)
		return folder_fail(err_r, FOLDER_EEXIST, EEXIST, "mailbox already exists");
	if (to.n.len > from.n.len && memcmp(from.n.name, to.n.name, from.n.len) == 0 &&
	    to.n.name[from.n.len] == FOLDER_DELIM)
		return folder_fail(err_r, FOLDER_ECANNOT, 0,
		    "cannot move a folder into itself");

	if (folder_root_realdir(root, real) != 0)
		return folder_fail_errno(err_r, errno, "open mail directory");
	/* Check the target before making any directory for it. */
	s = walk_parent(real, &to.n, false, cur, &missing, err_r);
	if (s != FOLDER_OK)
		return s;
	if (!missing) {
		to.path[0] = '\0';
		to.type = FOLDER_T_NONE;
		to.link = false;
		s = examine_last(real, cur, &to, false, err_r);
		if (s != FOLDER_OK)
			return s;
		if (to.type != FOLDER_T_NONE || to.link)
			return folder_fail(err_r, FOLDER_EEXIST, EEXIST, "mailbox already exists");
	} else {
		s = walk_parent(real, &to.n, true, cur, &missing, err_r);
		if (s != FOLDER_OK)
			return s;
		size_t clen;
		const char *comp = last_component(&to.n, &clen);
		if (folder_path_join(to.path, cur, comp, clen) != 0)
			return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
	}
	if (rename_noreplace(from.path, to.path) != 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return folder_fail(err_r, FOLDER_EEXIST, errno, "mailbox already exists");
		if (errno == EINVAL)
			return folder_fail(err_r, FOLDER_ECANNOT, errno,
			    "cannot move a folder into itself");
		return folder_fail_errno(err_r, errno, "rename mailbox");
	}
	path_parent(from.path);
	path_parent(to.path);
	if (folder_fsync_dir(from.path) != 0 || folder_fsync_dir(to.path) != 0)
		return folder_fail_errno(err_r, errno, "fsync directory");
	return FOLDER_OK;
}
