#include "auth/auth.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
auth_drop_privileges(const char *user, uid_t uid, gid_t gid, char *msg, size_t msgsize)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (uid == 0) {
		snprintf(msg, msgsize, "refusing to run as root");
		return -1;
	}
	/* Groups first, while we still may; then the gid; the uid last. */
	if (initgroups(user, gid) == -1) {
		snprintf(msg, msgsize, "initgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(msg, msgsize, "setresgid: %s", strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(msg, msgsize, "setresuid: %s", strerror(errno));
		return -1;
	}
	/* Prove it: every id is the user's, and there is no way back. */
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		snprintf(msg, msgsize, "ids are not the user's after the drop");
		return -1;
	}
	if (setuid(0) != -1 || setgid(0) != -1) {
		snprintf(msg, msgsize, "could regain root after the drop");
		return -1;
	}
	return 0;
}
