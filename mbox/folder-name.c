/*
 * Mailbox name rules and error helpers. See folder.h for the rules.
 */
#include "mbox/folder.h"
#include "mbox/folder-int.h"
#include "mbox/mutf7.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *
folder_strerror(enum folder_status status)
{
	switch (status) {
	case FOLDER_OK:
		return "success";
	case FOLDER_EBADNAME:
		return "invalid mailbox name";
	case FOLDER_ETOOLONG:
		return "mailbox name too long";
	case FOLDER_EEXIST:
		return "mailbox already exists";
	case FOLDER_ENOENT:
		return "mailbox does not exist";
	case FOLDER_EHASCHILDREN:
		return "mailbox has children";
	case FOLDER_ECANNOT:
		return "operation not possible";
	case FOLDER_EPERM:
		return "permission denied";
	case FOLDER_EINUSE:
		return "mailbox in use";
	case FOLDER_ELIMIT:
		return "limit reached";
	case FOLDER_EQUOTA:
		return "out of disk space or quota";
	case FOLDER_EIO:
		return "system error";
	case FOLDER_RENAME_INBOX:
		return "renaming INBOX needs the mail store";
	}
	return "unknown error";
}

enum folder_status
folder_fail(struct folder_error *err_r, enum folder_status status, int sys_errno,
    const char *msg)
{
	if (err_r != NULL) {
		err_r->status = status;
		err_r->sys_errno = sys_errno;
		snprintf(err_r->msg, sizeof(err_r->msg), "%s",
		    msg != NULL ? msg : folder_strerror(status));
	}
	return status;
}

enum folder_status
folder_fail_errno(struct folder_error *err_r, int e, const char *msg)
{
	enum folder_status st;

	switch (e) {
	case ENOENT:
	case ENOTDIR:
		st = FOLDER_ENOENT;
		break;
	case EEXIST:
		st = FOLDER_EEXIST;
		break;
	case ENOTEMPTY:
		st = FOLDER_EHASCHILDREN;
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		st = FOLDER_EPERM;
		break;
	case EBUSY:
	case ETXTBSY:
		st = FOLDER_EINUSE;
		break;
	case ENOSPC:
	case EDQUOT:
		st = FOLDER_EQUOTA;
		break;
	case ENAMETOOLONG:
		st = FOLDER_ETOOLONG;
		break;
	case ELOOP:
	case EMLINK:
		st = FOLDER_ELIMIT;
		break;
	default:
		st = FOLDER_EIO;
		break;
	}
	if (err_r != NULL) {
		err_r->status = st;
		err_r->sys_errno = e;
		snprintf(err_r->msg, sizeof(err_r->msg), "%s: %s", msg, strerror(e));
	}
	return st;
}

bool
folder_component_hidden(const char *comp, size_t len)
{
	static const char lock[] = ".lock";

	if (len == 0 || comp[0] == '.')
		return true;
	if (len >= sizeof(lock) - 1 &&
	    memcmp(comp + len - (sizeof(lock) - 1), lock, sizeof(lock) - 1) == 0)
		return true;
	return false;
}

static bool
is_inbox(const char *s, size_t len)
{
	return len == 5 && strncasecmp(s, "INBOX", 5) == 0;
}

enum folder_status
folder_name_parse(const char *name, size_t len, unsigned int flags, struct folder_name *fn_r,
    struct folder_error *err_r)
{
	memset(fn_r, 0, sizeof(*fn_r));
	if (len == 0)
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "empty mailbox name");
	if (memchr(name, '\0', len) != NULL)
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "NUL in mailbox name");
	if (len > 1 && name[len - 1] == FOLDER_DELIM) {
		if (!(flags & FOLDER_NAME_DIR_OK))
			return folder_fail(err_r, FOLDER_EBADNAME, 0,
			    "trailing hierarchy delimiter");
		fn_r->dir = true;
		len--;
	}
	if (len > FOLDER_NAME_MAX)
		return folder_fail(err_r, FOLDER_ETOOLONG, 0, "mailbox name too long");
	if (name[0] == FOLDER_DELIM)
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "absolute mailbox name");
	if (name[0] == '~')
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "'~' names are not supported");
	if (name[0] == '#')
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "'#' namespaces are not supported");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return folder_fail(err_r, FOLDER_EBADNAME, 0,
			    "control character in mailbox name");
		if ((flags & FOLDER_NAME_CREATE) && (c == '*' || c == '%'))
			return folder_fail(err_r, FOLDER_EBADNAME, 0,
			    "wildcard in mailbox name");
	}
	if (mutf7_check(name, len, MUTF7_NO_CONTROLS) != 0)
		return folder_fail(err_r, FOLDER_EBADNAME, 0, "invalid modified UTF-7 name");

	unsigned int depth = 0;
	size_t start = 0;
	while (start <= len) {
		const char *slash = memchr(name + start, FOLDER_DELIM, len - start);
		size_t end = slash != NULL ? (size_t)(slash - name) : len;
		const char *comp = name + start;
		size_t clen = end - start;

		if (clen == 0)
			return folder_fail(err_r, FOLDER_EBADNAME, 0, "empty name component");
		if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' &&
		    comp[1] == '.'))
			return folder_fail(err_r, FOLDER_EBADNAME, 0,
			    "'.' or '..' name component");
		if (clen > FOLDER_COMPONENT_MAX)
			return folder_fail(err_r, FOLDER_ETOOLONG, 0, "name component too long");
		if (folder_component_hidden(comp, clen))
			return folder_fail(err_r, FOLDER_EBADNAME, 0,
			    "names starting with '.' or ending in '.lock' are reserved");
		if (++depth > FOLDER_DEPTH_MAX)
			return folder_fail(err_r, FOLDER_ETOOLONG, 0, "mailbox hierarchy too deep");
		if (depth == 1 && is_inbox(comp, clen) && end < len)
			return folder_fail(err_r, FOLDER_ECANNOT, 0,
			    "INBOX cannot have children");
		start = end + 1;
	}

	if (is_inbox(name, len)) {
		if (fn_r->dir)
			return folder_fail(err_r, FOLDER_ECANNOT, 0,
			    "INBOX cannot have children");
		memcpy(fn_r->name, "INBOX", 6);
		fn_r->len = 5;
		fn_r->inbox = true;
	} else {
		memcpy(fn_r->name, name, len);
		fn_r->name[len] = '\0';
		fn_r->len = len;
	}
	fn_r->depth = depth;
	return FOLDER_OK;
}
