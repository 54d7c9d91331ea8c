#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Authentication through PAM and the privilege drop. Nothing here speaks IMAP or logs:
 * results come back as codes and short messages for the caller to log.
 */

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,		/* unknown user or wrong password */
	AUTH_EXPIRED,		/* account or password expired (pam_acct_mgmt) */
	AUTH_DENIED,		/* account locked or access refused (pam_acct_mgmt) */
	AUTH_ERROR,		/* PAM could not do its work */
};

/*
 * Runs pam_authenticate, pam_acct_mgmt and pam_setcred(PAM_ESTABLISH_CRED) for service.
 * The conversation answers the password prompt with password and a user-name prompt with
 * user; informational messages are ignored. PAM_RHOST is set to rhost when not NULL.
 * On AUTH_OK, *user_r is the user name PAM ended with (PAM_USER, which a module may have
 * changed), malloc'd for the caller. msg receives a short reason for the log (never the
 * password). The caller wipes its copy of the password afterwards.
 */
enum auth_result auth_pam(const char *service, const char *user, const char *password,
			  const char *rhost, char **user_r, char *msg, size_t msgsize);

/*
 * Becomes the user for good: initgroups, setgid, setuid (real, effective and saved ids),
 * then proves it: setuid(0) must fail and every id must be the user's. Returns 0, or -1
 * with a message (the caller must then end the session: the process is in an unknown
 * state).
 */
int	auth_drop_privileges(const char *user, uid_t uid, gid_t gid, char *msg, size_t msgsize);

/*
 * Decodes strict base64 (RFC 4648, with padding; no white space) for SASL. dst must hold
 * len / 4 * 3 bytes. Returns the decoded length, or -1 on bad input.
 */
long	auth_base64_decode(const char *src, size_t len, unsigned char *dst, size_t dstsize);

/*
 * Splits a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL passwd). On success the
 * three pointers point into msg (which is modified: the NULs become terminators; the
 * message must have one spare byte at msg[len]). Returns 0, or -1 if malformed (wrong
 * number of NULs, empty authcid or password, over-long fields).
 */
int	auth_sasl_plain_split(char *msg, size_t len, const char **authzid_r,
			      const char **authcid_r, const char **passwd_r);

#endif
