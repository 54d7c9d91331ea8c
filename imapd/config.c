#include "imapd/config.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "imapd/limits.h"

#define CONFIG_FILE_MAX		65536

enum kind { K_STR, K_INT, K_BOOL, K_SIZE, K_CHOICE };

struct key {
	const char	*name;
	enum kind	kind;
	size_t		off;
	size_t		size;		/* K_STR: buffer size */
	long long	min, max;	/* K_INT, K_SIZE */
	const char	*choices;	/* K_CHOICE: space separated */
};

#define STR(n, f)	{ n, K_STR, offsetof(struct config, f), \
			  sizeof(((struct config *)0)->f), 0, 0, NULL }
#define INT(n, f, lo, hi) { n, K_INT, offsetof(struct config, f), 0, lo, hi, NULL }

static const struct key keys[] = {
	STR("pam_service", pam_service),
	STR("spool_dir", spool_dir),
	STR("mail_dir", mail_dir),
	STR("state_dir", state_dir),
	INT("timeout_preauth", timeout_preauth, 5, 3600),
	INT("timeout", timeout_auth, IMAPD_TIMEOUT_MIN_AUTH, 86400),
	INT("login_delay_ms", login_delay_ms, 0, 60000),
	INT("login_failures_max", login_failures_max, 1, 100),
	{ "append_max", K_SIZE, offsetof(struct config, append_max), 0, 1024,
	  4LL * 1024 * 1024 * 1024, NULL },
	STR("tls_cert", tls_cert),
	STR("tls_key", tls_key),
	{ "plaintext_auth", K_CHOICE, offsetof(struct config, plaintext_auth),
	  sizeof(((struct config *)0)->plaintext_auth), 0, 0, "never loopback always" },
	{ "implicit_tls", K_BOOL, offsetof(struct config, implicit_tls), 0, 0, 1, NULL },
	{ "condstore", K_BOOL, offsetof(struct config, condstore), 0, 0, 1, NULL },
};

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->pam_service, sizeof(cfg->pam_service), "imap");
	snprintf(cfg->spool_dir, sizeof(cfg->spool_dir), "/var/mail");
	snprintf(cfg->mail_dir, sizeof(cfg->mail_dir), "mail");
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), ".imapd");
	snprintf(cfg->plaintext_auth, sizeof(cfg->plaintext_auth), "loopback");
	cfg->timeout_preauth = IMAPD_TIMEOUT_PREAUTH;
	cfg->timeout_auth = IMAPD_TIMEOUT_AUTH;
	cfg->login_delay_ms = IMAPD_LOGIN_DELAY_MS;
	cfg->login_failures_max = IMAPD_LOGIN_FAILURES_MAX;
	cfg->append_max = IMAPD_APPEND_MAX;
	cfg->condstore = 1;
}

/* Parses a decimal number with an optional K/M/G suffix (K_SIZE). */
static int
parse_number(const char *v, int with_suffix, long long *n_r)
{
	char *end;
	long long n;

	errno = 0;
	if (!isdigit((unsigned char)*v))
		return -1;
	n = strtoll(v, &end, 10);
	if (errno != 0)
		return -1;
	if (with_suffix && *end != '\0' && end[1] == '\0') {
		long long m = *end == 'K' || *end == 'k' ? 1024LL :
			      *end == 'M' || *end == 'm' ? 1024LL * 1024 :
			      *end == 'G' || *end == 'g' ? 1024LL * 1024 * 1024 : 0;
		if (m == 0 || n > LLONG_MAX / m)
			return -1;
		n *= m;
		end++;
	}
	if (*end != '\0')
		return -1;
	*n_r = n;
	return 0;
}

int
config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errsize)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		char *field = (char *)cfg + k->off;
		long long n;

		if (strcmp(k->name, key) != 0)
			continue;
		switch (k->kind) {
		case K_STR:
			if (strlen(value) >= k->size) {
				snprintf(err, errsize, "%s: value too long", key);
				return -1;
			}
			memcpy(field, value, strlen(value) + 1);
			return 0;
		case K_CHOICE: {
			const char *c = strstr(k->choices, value);
			size_t l = strlen(value);

			if (l == 0 || c == NULL || (c != k->choices && c[-1] != ' ') ||
			    (c[l] != ' ' && c[l] != '\0')) {
				snprintf(err, errsize, "%s: must be one of: %s", key, k->choices);
				return -1;
			}
			memcpy(field, value, l + 1);
			return 0;
		}
		case K_BOOL:
			if (strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
				*(int *)field = 1;
			else if (strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
				*(int *)field = 0;
			else {
				snprintf(err, errsize, "%s: must be yes or no", key);
				return -1;
			}
			return 0;
		case K_INT:
		case K_SIZE:
			if (parse_number(value, k->kind == K_SIZE, &n) == -1 || n < k->min ||
			    n > k->max) {
				snprintf(err, errsize, "%s: must be a number from %lld to %lld",
					 key, k->min, k->max);
				return -1;
			}
			if (k->kind == K_SIZE)
				*(uint64_t *)field = (uint64_t)n;
			else
				*(int *)field = (int)n;
			return 0;
		}
	}
	snprintf(err, errsize, "unknown setting \"%.64s\"", key);
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
config_load(struct config *cfg, const char *path, int missing_ok, char *err, size_t errsize)
{
	char buf[CONFIG_FILE_MAX + 1], msg[256];
	char *line, *next;
	size_t len = 0;
	unsigned lineno = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		if (errno == ENOENT && missing_ok)
			return 0;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errsize, "%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1) {
			snprintf(err, errsize, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
			close(fd);
			return -1;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errsize, "%s: contains a NUL byte", path);
		return -1;
	}
	for (line = buf; line != NULL; line = next) {
		char *eq, *key, *value;

		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if ((eq = strchr(line, '#')) != NULL)
			*eq = '\0';
		key = trim(line);
		if (*key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errsize, "%s:%u: expected \"key = value\"", path, lineno);
			return -1;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if (config_set(cfg, key, value, msg, sizeof(msg)) == -1) {
			snprintf(err, errsize, "%s:%u: %s", path, lineno, msg);
			return -1;
		}
	}
	return 0;
}
