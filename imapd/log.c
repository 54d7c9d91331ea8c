#include "imapd/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define LOG_LINE_MAX	1024
#define LOG_ID_MAX	256

/* The log module's settings: the one place besides the session that holds state. */
static struct {
	enum log_target	target;
	int		verbose;
	char		ident[32];
	char		peer[LOG_ID_MAX];
	char		user[LOG_ID_MAX];
} lg = { .target = LOG_TARGET_STDERR, .ident = "imapd" };

/* systemd sets JOURNAL_STREAM=dev:ino for the stream it connected to stderr. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *ident, int force_stderr)
{
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident);
	if (force_stderr)
		lg.target = LOG_TARGET_STDERR;
	else if (stderr_is_journal())
		lg.target = LOG_TARGET_JOURNAL;
	else {
		lg.target = LOG_TARGET_SYSLOG;
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

enum log_target
log_target(void)
{
	return lg.target;
}

void
log_set_peer(const char *peer)
{
	snprintf(lg.peer, sizeof(lg.peer), "%s", peer ? peer : "");
}

void
log_set_user(const char *user)
{
	snprintf(lg.user, sizeof(lg.user), "%s", user ? user : "");
}

void
log_set_verbose(int verbose)
{
	lg.verbose = verbose;
}

char *
log_escape(char *dst, size_t dstsize, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0, i;

	if (dstsize == 0)
		return dst;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];
		size_t need = (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') ? 4 : 1;

		if (o + need + 3 >= dstsize) {
			if (dstsize >= 4) {
				o = o + 3 < dstsize ? o : dstsize - 4;
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1)
			dst[o++] = (char)c;
		else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}

/* A session's totals, sent as journal fields with the logout line. */
struct log_counts {
	unsigned long long commands, bytes_in, bytes_out;
};

static void vlog(int prio, int with_errno, const struct log_counts *counts, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

static void
vlog(int prio, int with_errno, const struct log_counts *counts, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 2 * LOG_ID_MAX + 16];
	int saved = errno;
	int n;

	if (prio == LOG_DEBUG && !lg.verbose)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(unformattable log line)");
	if (with_errno) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, ": %s", strerror(saved));
	}
	if (lg.peer[0] != '\0' || lg.user[0] != '\0')
		snprintf(line, sizeof(line), "%s%s%s: %s", lg.user, lg.user[0] ? "@" : "",
			 lg.peer[0] ? lg.peer : "-", msg);
	else
		snprintf(line, sizeof(line), "%s", msg);

	switch (lg.target) {
	case LOG_TARGET_JOURNAL:
		if (counts != NULL) {
			sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", prio,
					"SYSLOG_IDENTIFIER=%s", lg.ident,
					"SYSLOG_FACILITY=%d", LOG_MAIL >> 3,
					"IMAPD_USER=%s", lg.user, "IMAPD_PEER=%s", lg.peer,
					"IMAPD_COMMANDS=%llu", counts->commands,
					"IMAPD_BYTES_IN=%llu", counts->bytes_in,
					"IMAPD_BYTES_OUT=%llu", counts->bytes_out, NULL);
			break;
		}
		sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", prio,
				"SYSLOG_IDENTIFIER=%s", lg.ident,
				"SYSLOG_FACILITY=%d", LOG_MAIL >> 3,
				"IMAPD_USER=%s", lg.user, "IMAPD_PEER=%s", lg.peer, NULL);
		break;
	case LOG_TARGET_SYSLOG:
		syslog(prio, "%s", line);
		break;
	case LOG_TARGET_STDERR:
		fprintf(stderr, "%s[%ld]: %s\n", lg.ident, (long)getpid(), line);
		break;
	}
	errno = saved;
}

#define LOG_FN(name, prio, with_errno)			\
	void						\
	name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		va_start(ap, fmt);			\
		vlog(prio, with_errno, NULL, fmt, ap);	\
		va_end(ap);				\
	}

LOG_FN(log_debug, LOG_DEBUG, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_notice, LOG_NOTICE, 0)
LOG_FN(log_warn, LOG_WARNING, 1)
LOG_FN(log_warnx, LOG_WARNING, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, 1, NULL, fmt, ap);
	va_end(ap);
	_exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, 0, NULL, fmt, ap);
	va_end(ap);
	_exit(1);
}

static void log_counts(const struct log_counts *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
log_counts(const struct log_counts *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, 0, c, fmt, ap);
	va_end(ap);
}

void
log_logout(unsigned long long commands, unsigned long long bytes_in,
	   unsigned long long bytes_out)
{
	struct log_counts c = { commands, bytes_in, bytes_out };

	log_counts(&c, "logout: commands=%llu in=%llu out=%llu", commands, bytes_in, bytes_out);
}
