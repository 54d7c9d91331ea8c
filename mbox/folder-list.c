/*
 * LIST: walk the mail directory for a reference + pattern (RFC 3501 6.3.8).
 */
#include "mbox/folder.h"
#include "mbox/folder-int.h"
#include "mbox/mutf7.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct folder_list *
folder_list_new(void)
{
	return calloc(1, sizeof(struct folder_list));
}

void
folder_list_free(struct folder_list **listp)
{
	struct folder_list *l = *listp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->v[i].name);
	free(l->v);
	free(l);
	*listp = NULL;
}

int
folder_list_add(struct folder_list *l, const char *name, size_t len, unsigned int attrs)
{
	if (l->count == l->alloc) {
		size_t n = l->alloc != 0 ? l->alloc * 2 : 16;
		struct folder_entry *v = reallocarray(l->v, n, sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->alloc = n;
	}
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, name, len);
	copy[len] = '\0';
	l->v[l->count].name = copy;
	l->v[l->count].len = len;
	l->v[l->count].attrs = attrs;
	l->count++;
	return 0;
}

long
folder_list_find(const struct folder_list *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->v[i].len == len && memcmp(l->v[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

static int
entry_cmp(const void *a_, const void *b_)
{
	const struct folder_entry *a = a_, *b = b_;
	bool ai = strcmp(a->name, "INBOX") == 0, bi = strcmp(b->name, "INBOX") == 0;
	size_t n = a->len < b->len ? a->len : b->len;
	int c;

	if (ai != bi)
		return ai ? -1 : 1;
	c = memcmp(a->name, b->name, n);
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

void
folder_list_sort(struct folder_list *l)
{
	if (l->count > 1)
		qsort(l->v, l->count, sizeof(l->v[0]), entry_cmp);
}

struct walk {
	const struct folder_root *root;
	const struct folder_pattern *pat;
	struct folder_list *list;
	char real[FOLDER_PATH_MAX];	/* the mail directory's real path */
	char name[FOLDER_NAME_MAX + 2];	/* relative name being built */
	size_t visited;
	size_t bytes;		/* name bytes in the result so far */
	struct {
		dev_t dev;
		ino_t ino;
	} stack[FOLDER_DEPTH_MAX + 1];
	bool truncated;
	bool failed;
};

/* \Marked: changed since it was last read, the guess mail readers have always made. */
static unsigned int
marked(const struct stat *st)
{
	if (st->st_size > 0 && st->st_mtime > st->st_atime)
		return FOLDER_ATTR_MARKED;
	return FOLDER_ATTR_UNMARKED;
}

/*
 * Decide whether entry `comp` of directory `dir` (open as dfd) is a visible mailbox or
 * directory. Fills *st_r (of the target for links) and path_r (FOLDER_PATH_MAX) with the
 * path to descend into. Returns FOLDER_T_NONE for anything hidden.
 */
static enum folder_type
classify(struct walk *w, const char *dir, int dfd, const char *comp, size_t clen, size_t nlen,
    bool top, struct stat *st_r, char *path_r)
{
	struct folder_name fn;

	if (folder_component_hidden(comp, clen) || clen > FOLDER_COMPONENT_MAX ||
	    nlen + clen > FOLDER_NAME_MAX)
		return FOLDER_T_NONE;
	if (top && clen == 5 && strncasecmp(comp, "INBOX", 5) == 0)
		return FOLDER_T_NONE;
	if (top && (comp[0] == '~' || comp[0] == '#'))
		return FOLDER_T_NONE;
	if (mutf7_check(comp, clen, MUTF7_NO_CONTROLS) != 0)
		return FOLDER_T_NONE;
	/* Whatever LIST shows must be a name the other commands accept. */
	memcpy(w->name + nlen, comp, clen);
	if (folder_name_parse(w->name, nlen + clen, 0, &fn, NULL) != FOLDER_OK)
		return FOLDER_T_NONE;
	if (fstatat(dfd, comp, st_r, AT_SYMLINK_NOFOLLOW) != 0)
		return FOLDER_T_NONE;
	if (folder_path_join(path_r, dir, comp, clen) != 0)
		return FOLDER_T_NONE;
	if (S_ISLNK(st_r->st_mode)) {
		char tmp[PATH_MAX];

		if (realpath(path_r, tmp) == NULL || !folder_path_inside(w->real, tmp) ||
		    strlen(tmp) >= FOLDER_PATH_MAX || stat(tmp, st_r) != 0)
			return FOLDER_T_NONE;
		memcpy(path_r, tmp, strlen(tmp) + 1);
	}
	if (S_ISREG(st_r->st_mode))
		return FOLDER_T_MAILBOX;
	if (S_ISDIR(st_r->st_mode))
		return FOLDER_T_DIR;
	return FOLDER_T_NONE;
}

static bool
count_visit(struct walk *w)
{
	if (++w->visited > FOLDER_LIST_MAX_ENTRIES) {
		w->truncated = true;
		return false;
	}
	return true;
}

/* Does directory `dir` hold anything LIST would show? (name prefix ends at nlen) */
static bool
has_visible_child(struct walk *w, const char *dir, size_t nlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		char path[FOLDER_PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!count_visit(w))
			break;
		found = classify(w, dir, dirfd(d), de->d_name, strlen(de->d_name), nlen, false,
		    &st, path) != FOLDER_T_NONE;
	}
	closedir(d);
	return found;
}

/*
 * List directory `dir`, whose entries have names starting with w->name[0..nlen) (empty or
 * ending in '/'), `st` being the pattern state after that prefix. Returns the number of
 * visible entries.
 */
static size_t
walk_dir(struct walk *w, const char *dir, size_t nlen, const struct folder_pstate *st,
    unsigned int depth)
{
	struct folder_pstate *cst, *dst;
	struct dirent *de;
	size_t visible = 0;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return 0;
	cst = folder_pstate_new(w->pat);
	dst = folder_pstate_new(w->pat);
	if (cst == NULL || dst == NULL) {
		w->failed = true;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char path[FOLDER_PATH_MAX];
		struct stat sb;
		enum folder_type t;
		size_t clen = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!count_visit(w))
			break;
		t = classify(w, dir, dirfd(d), de->d_name, clen, nlen, depth == 0, &sb, path);
		if (t == FOLDER_T_NONE)
			continue;
		visible++;
		/* classify() left the component in w->name after the prefix. */
		folder_pstate_copy(cst, st);
		folder_pstate_feed(cst, de->d_name, clen, false);
		long idx = -1;
		if (folder_pstate_accepts(cst)) {
			unsigned int attrs = t == FOLDER_T_MAILBOX ?
			    FOLDER_ATTR_NOINFERIORS | marked(&sb) : FOLDER_ATTR_NOSELECT;
			w->bytes += nlen + clen + 1;
			if (w->bytes > FOLDER_LIST_MAX_BYTES) {
				w->truncated = true;
				break;
			}
			if (folder_list_add(w->list, w->name, nlen + clen, attrs) != 0) {
				w->failed = true;
				break;
			}
			idx = (long)w->list->count - 1;
		}
		if (t != FOLDER_T_DIR)
			continue;

		bool loop = false;
		for (unsigned int k = 0; k <= depth; k++)
			if (w->stack[k].dev == sb.st_dev && w->stack[k].ino == sb.st_ino)
				loop = true;
		folder_pstate_copy(dst, cst);
		folder_pstate_feed(dst, "/", 1, false);
		bool descend = !loop && depth + 1 < FOLDER_DEPTH_MAX &&
		    nlen + clen + 1 < FOLDER_NAME_MAX && !folder_pstate_dead(dst);
		bool children = false;
		if (descend) {
			w->name[nlen + clen] = FOLDER_DELIM;
			w->stack[depth + 1].dev = sb.st_dev;
			w->stack[depth + 1].ino = sb.st_ino;
			children = walk_dir(w, path, nlen + clen + 1, dst, depth + 1) > 0;
			if (w->failed)
				break;
		} else if (idx >= 0 && nlen + clen + 1 < FOLDER_NAME_MAX) {
			/* Not entered (pruned, a loop or too deep): one level says enough. */
			w->name[nlen + clen] = FOLDER_DELIM;
			children = has_visible_child(w, path, nlen + clen + 1);
		}
		if (!loop && depth + 1 >= FOLDER_DEPTH_MAX && !folder_pstate_dead(dst))
			w->truncated = true;	/* too deep to follow */
		if (idx >= 0)
			w->list->v[idx].attrs |= children ? FOLDER_ATTR_HASCHILDREN :
			    FOLDER_ATTR_HASNOCHILDREN;
		if (w->truncated)
			break;
	}
out:
	folder_pstate_free(&cst);
	folder_pstate_free(&dst);
	closedir(d);
	return visible;
}

enum folder_status
folder_list(const struct folder_root *root, const char *ref, size_t reflen, const char *pat,
    size_t patlen, struct folder_list **list_r, struct folder_error *err_r)
{
	struct folder_pattern *p = NULL;
	struct folder_pstate *st = NULL;
	struct walk *w = NULL;
	enum folder_status s;
	struct stat sb;

	*list_r = NULL;
	s = folder_pattern_new(ref, reflen, pat, patlen, &p, err_r);
	if (s != FOLDER_OK)
		return s;
	w = calloc(1, sizeof(*w));
	st = folder_pstate_new(p);
	if (w == NULL || st == NULL || (w->list = folder_list_new()) == NULL) {
		s = folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
		goto out;
	}
	w->root = root;
	w->pat = p;
	if (patlen == 0)
		goto done;
	if (folder_pattern_match_inbox(p)) {
		unsigned int attrs = FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_UNMARKED;
		if (stat(folder_root_inbox(root), &sb) == 0)
			attrs = FOLDER_ATTR_NOINFERIORS | marked(&sb);
		if (folder_list_add(w->list, "INBOX", 5, attrs) != 0) {
			s = folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
			goto out;
		}
	}
	if (folder_root_realdir(root, w->real) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			goto done;
		s = folder_fail_errno(err_r, errno, "open mail directory");
		goto out;
	}
	if (stat(w->real, &sb) != 0) {
		s = folder_fail_errno(err_r, errno, "open mail directory");
		goto out;
	}
	w->stack[0].dev = sb.st_dev;
	w->stack[0].ino = sb.st_ino;
	walk_dir(w, w->real, 0, st, 0);
	if (w->failed) {
		s = folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
		goto out;
	}
done:
	for (size_t i = 0; i < w->list->count; i++) {
		struct folder_entry *e = &w->list->v[i];
		if (!(e->attrs & FOLDER_ATTR_NOSELECT) && strcmp(e->name, "INBOX") != 0)
			e->attrs |= folder_special_use(root, e->name, e->len);
	}
	folder_list_sort(w->list);
	w->list->truncated = w->truncated;
	*list_r = w->list;
	w->list = NULL;
	s = FOLDER_OK;
out:
	if (w != NULL)
		folder_list_free(&w->list);
	free(w);
	folder_pstate_free(&st);
	folder_pattern_free(&p);
	return s;
}
