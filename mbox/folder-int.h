/*
 * Internal helpers shared by the folder*.c and subs.c files; not an API for other modules.
 */
#ifndef MBOX_FOLDER_INT_H
#define MBOX_FOLDER_INT_H

#include "mbox/folder.h"

#include <sys/stat.h>

/* Fill *err_r (if not NULL) and return status. */
enum folder_status
folder_fail(struct folder_error *err_r, enum folder_status status, int sys_errno,
    const char *msg);

/* Map an errno value from a file operation to a status, filling *err_r with msg + strerror. */
enum folder_status
folder_fail_errno(struct folder_error *err_r, int sys_errno, const char *msg);

/*
 * Real path of the mail directory into buf (size FOLDER_PATH_MAX). Returns 0, or -1 with
 * errno set (ENOENT if it does not exist yet).
 */
int
folder_root_realdir(const struct folder_root *root, char *buf);

/* Make the mail directory (0700) if it is missing. Returns FOLDER_OK or an error. */
enum folder_status
folder_root_mkdir(const struct folder_root *root, struct folder_error *err_r);

/* Is `path` equal to `dir` or below it (both real paths)? */
bool
folder_path_inside(const char *dir, const char *path);

/* Join a and "/" b into buf of FOLDER_PATH_MAX; -1 if it does not fit. */
int
folder_path_join(char *buf, const char *a, const char *b, size_t blen);

/* fsync a directory by path; returns 0 or -1 with errno. */
int
folder_fsync_dir(const char *path);

#endif
