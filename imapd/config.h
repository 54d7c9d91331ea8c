#ifndef IMAPD_CONFIG_H
#define IMAPD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Settings from /etc/imapd.conf (imapd.conf(5)) and the command line. The file holds
 * "key = value" lines; '#' starts a comment; unknown keys and bad values are errors, so a
 * typo never silently leaves a default in place.
 */

#define IMAPD_CONFIG_PATH	"/etc/imapd.conf"
#define CONFIG_STR_MAX		4096

struct config {
	char		pam_service[64];	/* PAM service name ("imap") */
	char		spool_dir[CONFIG_STR_MAX];	/* INBOX is spool_dir/USER */
	char		mail_dir[CONFIG_STR_MAX];	/* mailboxes; relative to the home */
	char		state_dir[CONFIG_STR_MAX];	/* imapd's own files; relative to home */
	int		timeout_preauth;	/* seconds */
	int		timeout_auth;		/* seconds; at least 30 minutes */
	int		login_delay_ms;		/* pause before answering a failed login */
	int		login_failures_max;
	uint64_t	append_max;		/* largest APPEND, bytes */
	char		tls_cert[CONFIG_STR_MAX];	/* PEM chain; empty: no TLS */
	char		tls_key[CONFIG_STR_MAX];
	char		plaintext_auth[16];	/* "never", "loopback", "always" */
	int		implicit_tls;		/* 1: TLS from the first byte (port 993) */
	int		condstore;		/* 1 (default): offer CONDSTORE and QRESYNC (RFC 7162) */
};

void	config_defaults(struct config *cfg);

/*
 * Sets one key. Returns 0, or -1 with a message in err (unknown key, bad value).
 */
int	config_set(struct config *cfg, const char *key, const char *value, char *err,
		   size_t errsize);

/*
 * Reads a config file. missing_ok: a file that does not exist is not an error.
 * Returns 0, or -1 with "path:line: message" in err.
 */
int	config_load(struct config *cfg, const char *path, int missing_ok, char *err,
		    size_t errsize);

#endif
