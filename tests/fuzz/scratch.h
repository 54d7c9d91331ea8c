/*
 * scratch.h: the scratch directory the mbox fuzz harnesses share: a mailbox file and a
 * journal directory under a per-process directory, removed at exit.  Included by one
 * harness each (every name here is static).
 */
#ifndef TESTS_FUZZ_SCRATCH_H
#define TESTS_FUZZ_SCRATCH_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128], path[160], jdir[160];

static void
scratch_cleanup(void)
{
	char f[256];
	DIR *d = opendir(jdir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && (e->d_name[1] == 0 ||
		    (e->d_name[1] == '.' && e->d_name[2] == 0)))
			continue;
		snprintf(f, sizeof(f), "%s/%s", jdir, e->d_name);
		(void)unlink(f);
	}
	if (d != NULL)
		closedir(d);
	(void)rmdir(jdir);
	(void)unlink(path);
	snprintf(f, sizeof(f), "%s.lock", path);
	(void)unlink(f);
	(void)rmdir(dir);
}

/*
 * Make base/imapd-fuzz-NAME.PID (else the same under /tmp) with the mailbox path "mbox" and
 * the journal directory "j" in it; 0 the first time, 1 when already made.
 */
static int
scratch_make(const char *base, const char *name)
{
	if (dir[0] != 0)
		return 1;
	atexit(scratch_cleanup);
	snprintf(dir, sizeof(dir), "%s/imapd-fuzz-%s.%d", base, name, (int)getpid());
	if (mkdir(dir, 0700) < 0 && access(dir, W_OK) < 0) {
		snprintf(dir, sizeof(dir), "/tmp/imapd-fuzz-%s.%d", name, (int)getpid());
		(void)mkdir(dir, 0700);
	}
	snprintf(path, sizeof(path), "%s/mbox", dir);
	snprintf(jdir, sizeof(jdir), "%s/j", dir);
	(void)mkdir(jdir, 0700);
	return 0;
}

#endif
