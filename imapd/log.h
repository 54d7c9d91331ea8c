#ifndef IMAPD_LOG_H
#define IMAPD_LOG_H

#include <stddef.h>

/*
 * The one log module. Lines go to syslog (LOG_MAIL) by default, to the journal (with
 * IMAPD_USER and IMAPD_PEER fields) when the process runs under systemd with stderr on the
 * journal, or to stderr with -d. Every line carries the session prefix "user@peer" once
 * known. Client-supplied text must pass through log_escape() before it is logged; passwords
 * and AUTHENTICATE data are never logged.
 *
 * log_warn() and fatal() append strerror(errno); log_warnx() and fatalx() do not.
 */

enum log_target {
	LOG_TARGET_SYSLOG,
	LOG_TARGET_JOURNAL,
	LOG_TARGET_STDERR,
};

/* Picks the journal when $JOURNAL_STREAM matches stderr, else syslog, unless forced. */
void	log_init(const char *ident, int force_stderr);
enum log_target log_target(void);
/* Session identity for every later line; either may be NULL. Strings are copied. */
void	log_set_peer(const char *peer);
void	log_set_user(const char *user);
/* Enables LOG_DEBUG lines. */
void	log_set_verbose(int verbose);

void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The session's last line, "logout: commands=N in=N out=N" (bytes from and to the client).
 * In the journal it also carries the fields IMAPD_COMMANDS, IMAPD_BYTES_IN and
 * IMAPD_BYTES_OUT, so that totals can be summed with journalctl -o json.
 */
void	log_logout(unsigned long long commands, unsigned long long bytes_in,
		   unsigned long long bytes_out);

/*
 * Writes src[0..len) into dst as printable ASCII: controls, backslash, quotes and 8-bit
 * bytes become \xHH; at most dstsize-1 bytes are written and dst is always terminated.
 * Input that does not fit is cut and ends in "...". Returns dst.
 */
char	*log_escape(char *dst, size_t dstsize, const void *src, size_t len);

#endif
