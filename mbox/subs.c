/*
 * Subscriptions file, UW-IMAP import and LSUB. See subs.h for the format and the rules.
 */
#include "mbox/subs.h"
#include "mbox/folder-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void
subs_free(struct subs **subsp)
{
	struct subs *s = *subsp;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->count; i++)
		free(s->names[i]);
	free(s->names);
	free(s);
	*subsp = NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add a canonical copy of a name that passes folder_name_parse(); invalid ones are skipped. */
static int
subs_add_raw(struct subs *s, const char *name, size_t len)
{
	struct folder_name fn;

	if (folder_name_parse(name, len, 0, &fn, NULL) != FOLDER_OK)
		return 0;
	if (s->count >= SUBS_MAX) {
		s->truncated = true;
		return 0;
	}
	if (s->count == s->alloc) {
		size_t n = s->alloc == 0 ? 8 : s->alloc * 2;
		char **v = reallocarray(s->names, n, sizeof(*v));
		if (v == NULL)
			return -1;
		s->names = v;
		s->alloc = n;
	}
	s->names[s->count] = strdup(fn.name);
	if (s->names[s->count] == NULL)
		return -1;
	s->count++;
	return 0;
}

/* Sort and drop duplicates. */
static void
subs_normalize(struct subs *s)
{
	size_t j = 0;

	if (s->count == 0)
		return;
	qsort(s->names, s->count, sizeof(s->names[0]), name_cmp);
	for (size_t i = 1; i < s->count; i++) {
		if (strcmp(s->names[i], s->names[j]) == 0)
			free(s->names[i]);
		else
			s->names[++j] = s->names[i];
	}
	s->count = j + 1;
}

bool
subs_has(const struct subs *s, const char *name, size_t len)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *m = s->names[mid];
		size_t mlen = strlen(m);
		size_t n = mlen < len ? mlen : len;
		int c = memcmp(m, name, n);
		if (c == 0)
			c = mlen < len ? -1 : mlen > len;
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Read at most SUBS_FILE_MAX bytes of `path` into a new buffer. Returns 0 (with *buf_r NULL
 * if the file does not exist), or -1 with errno.
 */
static int
read_bounded(const char *path, char **buf_r, size_t *len_r, bool *truncated_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf;
	size_t len = 0;

	*buf_r = NULL;
	*len_r = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	/* Files are replaced by rename(), never rewritten: the size of the open one holds. */
	size_t cap = st.st_size > SUBS_FILE_MAX ? SUBS_FILE_MAX : (size_t)st.st_size;
	if (st.st_size > SUBS_FILE_MAX)
		*truncated_r = true;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

static int
parse_subscriptions(struct subs *s, char *buf, size_t len)
{
	bool v2 = len >= 3 && memcmp(buf, "V\t", 2) == 0;
	size_t pos = 0;
	bool first = true;

	while (pos < len) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - buf) : len;
		char *line = buf + pos;
		size_t llen = end - pos;

		pos = end + 1;
		if (nl == NULL && s->truncated)
			break;		/* cut off by the bound: not a whole name */
		if (first && v2) {
			first = false;
			continue;
		}
		first = false;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (v2) {
			for (size_t i = 0; i < llen; i++)
				if (line[i] == '\t')
					line[i] = FOLDER_DELIM;
		}
		if (llen > 0 && subs_add_raw(s, line, llen) != 0)
			return -1;
	}
	return 0;
}

/* One line of ~/.mailboxlist: add what it names inside the mail directory (see subs.h). */
static int
import_line(struct subs *s, const struct folder_root *root, const char *line, size_t llen)
{
	const char *home = folder_root_home(root);
	const char *maildir = folder_root_maildir(root);
	char path[FOLDER_PATH_MAX];
	size_t mlen = strlen(maildir);

	if (llen == 5 && strncasecmp(line, "INBOX", 5) == 0)
		return subs_add_raw(s, "INBOX", 5);
	if (llen == 0 || line[0] == '#')
		return 0;
	if (line[0] == '/') {
		if (llen >= sizeof(path))
			return 0;
		memcpy(path, line, llen);
		path[llen] = '\0';
	} else if (line[0] == '~') {
		if (llen < 2 || line[1] != '/')
			return 0;	/* ~user: another account */
		if (folder_path_join(path, home, line + 2, llen - 2) != 0)
			return 0;
	} else if (folder_path_join(path, home, line, llen) != 0) {
		return 0;
	}
	if (strncmp(path, maildir, mlen) != 0 || path[mlen] != '/')
		return 0;
	return subs_add_raw(s, path + mlen + 1, strlen(path + mlen + 1));
}

static int
parse_mailboxlist(struct subs *s, const struct folder_root *root, const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - buf) : len;
		size_t llen = end - pos;
		const char *line = buf + pos;

		pos = end + 1;
		if (nl == NULL && s->truncated)
			break;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (import_line(s, root, line, llen) != 0)
			return -1;
	}
	return 0;
}

static int
subs_path(const struct folder_root *root, const char *file, char *buf)
{
	return folder_path_join(buf, folder_root_maildir(root), file, strlen(file));
}

enum folder_status
subs_load(const struct folder_root *root, struct subs **subs_r, struct folder_error *err_r)
{
	char path[FOLDER_PATH_MAX];
	struct subs *s;
	char *buf = NULL;
	size_t len;
	int r;

	*subs_r = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	if (subs_path(root, SUBS_FILE, path) != 0) {
		subs_free(&s);
		return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
	}
	if (read_bounded(path, &buf, &len, &s->truncated) != 0) {
		subs_free(&s);
		return folder_fail_errno(err_r, errno, "read subscriptions");
	}
	if (buf != NULL) {
		r = parse_subscriptions(s, buf, len);
	} else if (folder_root_home(root) != NULL) {
		if (folder_path_join(path, folder_root_home(root), SUBS_UW_FILE,
		    strlen(SUBS_UW_FILE)) != 0 ||
		    read_bounded(path, &buf, &len, &s->truncated) != 0) {
			/* An unreadable UW list must not make subscriptions unusable. */
			buf = NULL;
		}
		s->imported = buf != NULL;
		r = buf != NULL ? parse_mailboxlist(s, root, buf, len) : 0;
	} else {
		r = 0;
	}
	free(buf);
	if (r != 0) {
		subs_free(&s);
		return folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
	}
	subs_normalize(s);
	*subs_r = s;
	return FOLDER_OK;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write the list to a temporary file, fsync, rename over SUBS_FILE, fsync the directory. */
static enum folder_status
subs_write(const struct folder_root *root, const struct subs *s, struct folder_error *err_r)
{
	char tmp[FOLDER_PATH_MAX], path[FOLDER_PATH_MAX];
	int fd, e;

	if (subs_path(root, SUBS_FILE ".XXXXXX", tmp) != 0 || subs_path(root, SUBS_FILE, path))
		return folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return folder_fail_errno(err_r, errno, "create subscriptions");
	for (size_t i = 0; i < s->count; i++) {
		if (write_all(fd, s->names[i], strlen(s->names[i])) != 0 ||
		    write_all(fd, "\n", 1) != 0)
			goto fail;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (folder_fsync_dir(folder_root_maildir(root)) != 0)
		return folder_fail_errno(err_r, errno, "fsync mail directory");
	return FOLDER_OK;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return folder_fail_errno(err_r, e, "write subscriptions");
}

static int
lock_subs(const struct folder_root *root, struct folder_error *err_r)
{
	char path[FOLDER_PATH_MAX];
	struct flock fl;
	int fd;

	if (folder_root_mkdir(root, err_r) != FOLDER_OK)
		return -1;
	if (subs_path(root, SUBS_LOCKFILE, path) != 0) {
		folder_fail(err_r, FOLDER_ETOOLONG, ENAMETOOLONG, "path too long");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		folder_fail_errno(err_r, errno, "open subscriptions lock");
		return -1;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, F_SETLKW, &fl) != 0) {
		if (errno == EINTR)
			continue;
		folder_fail_errno(err_r, errno, "lock subscriptions");
		close(fd);
		return -1;
	}
	return fd;
}

static enum folder_status
subs_change(const struct folder_root *root, const char *name, size_t len, bool add,
    struct folder_error *err_r)
{
	struct folder_name fn;
	struct subs *s = NULL;
	enum folder_status st;
	int lockfd;

	st = folder_name_parse(name, len, 0, &fn, err_r);
	if (st != FOLDER_OK)
		return st;
	lockfd = lock_subs(root, err_r);
	if (lockfd < 0)
		return err_r != NULL ? err_r->status : FOLDER_EIO;
	st = subs_load(root, &s, err_r);
	if (st != FOLDER_OK)
		goto out;
	bool have = subs_has(s, fn.name, fn.len);
	if (add) {
		/*
		 * Write even when already present if the list was imported: the first change
		 * ends the import.
		 */
		if (have && !s->imported)
			goto out;
		if (!have) {
			if (s->count >= SUBS_MAX) {
				st = folder_fail(err_r, FOLDER_ELIMIT, 0, "too many subscriptions");
				goto out;
			}
			if (subs_add_raw(s, fn.name, fn.len) != 0) {
				st = folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
				goto out;
			}
			subs_normalize(s);
		}
	} else {
		if (!have) {
			st = folder_fail(err_r, FOLDER_ENOENT, 0, "not subscribed");
			goto out;
		}
		size_t j = 0;
		for (size_t i = 0; i < s->count; i++) {
			if (strcmp(s->names[i], fn.name) == 0)
				free(s->names[i]);
			else
				s->names[j++] = s->names[i];
		}
		s->count = j;
	}
	st = subs_write(root, s, err_r);
out:
	subs_free(&s);
	/* Closing drops the lock; nothing was written through this fd. */
	close(lockfd);
	return st;
}

enum folder_status
subs_subscribe(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r)
{
	return subs_change(root, name, len, true, err_r);
}

enum folder_status
subs_unsubscribe(const struct folder_root *root, const char *name, size_t len,
    struct folder_error *err_r)
{
	return subs_change(root, name, len, false, err_r);
}

/* Order by name, and for equal names the entry without \Noselect first. */
static int
lsub_cmp(const void *a_, const void *b_)
{
	const struct folder_entry *a = a_, *b = b_;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return (int)(a->attrs & FOLDER_ATTR_NOSELECT) - (int)(b->attrs & FOLDER_ATTR_NOSELECT);
}

enum folder_status
subs_lsub(const struct folder_root *root, const char *ref, size_t reflen, const char *pat,
    size_t patlen, struct folder_list **list_r, struct folder_error *err_r)
{
	struct folder_pattern *p = NULL;
	struct folder_list *l = NULL;
	struct subs *s = NULL;
	enum folder_status st;
	size_t plen;
	const char *ptext;
	bool pct;

	*list_r = NULL;
	st = folder_pattern_new(ref, reflen, pat, patlen, &p, err_r);
	if (st != FOLDER_OK)
		return st;
	st = subs_load(root, &s, err_r);
	if (st != FOLDER_OK)
		goto out;
	l = folder_list_new();
	if (l == NULL)
		goto nomem;
	ptext = folder_pattern_text(p, &plen);
	pct = plen > 0 && ptext[plen - 1] == '%';
	for (size_t i = 0; patlen > 0 && i < s->count; i++) {
		const char *n = s->names[i];
		size_t nlen = strlen(n);
		bool inbox = strcmp(n, "INBOX") == 0;

		if (inbox ? folder_pattern_match_inbox(p) : folder_pattern_match(p, n, nlen,
		    false)) {
			if (folder_list_add(l, n, nlen, 0) != 0)
				goto nomem;
			continue;
		}
		if (!pct)
			continue;
		/* RFC 3501 6.3.9: a level above a subscribed name that '%' stops at. */
		for (const char *q = n; (q = memchr(q, FOLDER_DELIM, nlen - (size_t)(q - n)));
		    q++) {
			size_t k = (size_t)(q - n);
			if (folder_pattern_match(p, n, k, false) && !subs_has(s, n, k)) {
				if (folder_list_add(l, n, k, FOLDER_ATTR_NOSELECT) != 0)
					goto nomem;
			}
		}
	}
	if (l->count > 1) {
		size_t j = 0;
		qsort(l->v, l->count, sizeof(l->v[0]), lsub_cmp);
		for (size_t i = 1; i < l->count; i++) {
			if (strcmp(l->v[i].name, l->v[j].name) == 0)
				free(l->v[i].name);
			else
				l->v[++j] = l->v[i];
		}
		l->count = j + 1;
	}
	folder_list_sort(l);
	*list_r = l;
	l = NULL;
	st = FOLDER_OK;
	goto out;
nomem:
	st = folder_fail(err_r, FOLDER_EIO, ENOMEM, "out of memory");
out:
	folder_list_free(&l);
	subs_free(&s);
	folder_pattern_free(&p);
	return st;
}

enum folder_status
subs_mark(const struct folder_root *root, struct folder_list *list, struct folder_error *err_r)
{
	struct subs *s = NULL;
	enum folder_status st = subs_load(root, &s, err_r);

	if (st != FOLDER_OK)
		return st;
	for (size_t i = 0; i < list->count; i++)
		if (subs_has(s, list->v[i].name, list->v[i].len))
			list->v[i].attrs |= FOLDER_ATTR_SUBSCRIBED;
	subs_free(&s);
	return FOLDER_OK;
}
