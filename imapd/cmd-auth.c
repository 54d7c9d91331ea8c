#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "imapd/command.h"
#include "imapd/limits.h"
#include "imapd/log.h"
#include "imapd/resp.h"

/* Largest decoded SASL PLAIN message: three fields of 255 octets and two NULs. */
#define SASL_PLAIN_MAX	(3 * 255 + 2)

/* Sleeps the failed-login delay: the configured pause plus up to a second at random, so
 * that timing tells a guesser nothing and guessing is slow. */
static void
failure_delay(const struct session *s)
{
	unsigned int r = 0;
	long ms;
	struct timespec ts;

	if (s->cfg->login_delay_ms == 0)
		return;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned int)time(NULL);
	ms = s->cfg->login_delay_ms + (long)(r % IMAPD_LOGIN_JITTER_MS);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		;
}

static void
login_failed(struct command *cmd, const char *code, const char *text)
{
	struct session *s = cmd->s;

	failure_delay(s);
	resp_no(cmd, "[%s] %s", code, text);
	if (++s->login_failures >= (unsigned)s->cfg->login_failures_max) {
		log_notice("too many failed logins, closing the connection");
		resp_untagged(s, "BYE Too many failed login attempts");
		s->ending = true;
	}
}

/* RFC 3501 6.2.3 / RFC 4959: both paths end here with a user name and a password. */
static void
do_login(struct command *cmd, const char *user, const char *password, const char *method)
{
	struct session *s = cmd->s;
	char msg[256], esc[128];
	char *pam_user = NULL;
	const char *rhost = strcmp(s->peer, "local") == 0 ? NULL : s->peer;
	struct passwd *pw;
	enum auth_result r;

	log_escape(esc, sizeof(esc), user, strlen(user));
	r = auth_pam(s->cfg->pam_service, user, password, rhost, &pam_user, msg, sizeof(msg));
	parser_wipe(s->parser);
	switch (r) {
	case AUTH_OK:
		break;
	case AUTH_FAILED:
		log_notice("login failed: user=%s method=%s: %s", esc, method, msg);
		login_failed(cmd, "AUTHENTICATIONFAILED", "Authentication failed");
		return;
	case AUTH_EXPIRED:
		log_notice("login refused, account expired: user=%s method=%s: %s", esc, method,
			   msg);
		login_failed(cmd, "EXPIRED", "Account or password expired");
		return;
	case AUTH_DENIED:
		log_notice("login refused, account locked or denied: user=%s method=%s: %s", esc,
			   method, msg);
		login_failed(cmd, "AUTHORIZATIONFAILED", "Access denied");
		return;
	case AUTH_ERROR:
		log_warnx("login error: user=%s method=%s: %s", esc, method, msg);
		failure_delay(s);
		resp_no(cmd, "[UNAVAILABLE] Authentication is not available now");
		return;
	}
	log_escape(esc, sizeof(esc), pam_user, strlen(pam_user));
	pw = getpwnam(pam_user);
	if (pw == NULL) {
		log_warnx("login failed: user=%s has no passwd entry", esc);
		free(pam_user);
		login_failed(cmd, "AUTHENTICATIONFAILED", "Authentication failed");
		return;
	}
	if (pw->pw_uid == 0) {
		log_notice("login refused for root (uid 0): user=%s", esc);
		free(pam_user);
		login_failed(cmd, "AUTHENTICATIONFAILED", "Authentication failed");
		return;
	}
	if (geteuid() == 0) {
		if (auth_drop_privileges(pw->pw_name, pw->pw_uid, pw->pw_gid, msg,
					 sizeof(msg)) == -1)
			fatalx("privilege drop for %s failed: %s", esc, msg);
	} else if (pw->pw_uid != getuid()) {
		/* Started as a user: that user is the only one this process can serve. */
		log_notice("login refused: user=%s is not the user this server runs as", esc);
		free(pam_user);
		login_failed(cmd, "AUTHORIZATIONFAILED", "This server serves only its own user");
		return;
	}
	/* No core dumps or ptrace of a process that held root and a password. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (chdir(pw->pw_dir) == -1) {
		log_warn("chdir %s", pw->pw_dir);
		if (chdir("/") == -1)
			fatal("chdir /");
	}
	session_logged_in(s, pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir);
	log_info("login: method=%s%s", method, s->tls ? " tls" : "");
	free(pam_user);
	resp_ok(cmd, "[CAPABILITY %s] Logged in", session_capabilities(s));
}

/* RFC 3501 6.2.3 */
void
cmd_login(struct command *cmd)
{
	const struct imap_arg *a = cmd->args;
	const char *user, *pass;

	if (arg_count(a) != 2 || (user = arg_cstring(a)) == NULL ||
	    (pass = arg_cstring(a->next)) == NULL || *user == '\0') {
		parser_wipe(cmd->s->parser);
		resp_bad(cmd, "LOGIN takes a user name and a password");
		return;
	}
	if (!session_plaintext_ok(cmd->s)) {
		parser_wipe(cmd->s->parser);
		resp_no(cmd, "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	do_login(cmd, user, pass, "LOGIN");
}

/*
 * RFC 3501 6.2.2 with SASL-IR (RFC 4959) and PLAIN (RFC 4616). Without an initial
 * response the client gets an empty challenge and answers with one base64 line; "*"
 * cancels (BAD), "=" in the initial response is an empty one.
 */
void
cmd_authenticate(struct command *cmd)
{
	struct session *s = cmd->s;
	const struct imap_arg *mech = cmd->args, *ir;
	unsigned char buf[SASL_PLAIN_MAX + 1];
	const char *line, *zid, *cid, *pw;
	size_t len;
	long n;

	if (mech == NULL || mech->type != ARG_ATOM || arg_count(mech) > 2) {
		resp_bad(cmd, "AUTHENTICATE takes a mechanism and an optional initial response");
		return;
	}
	if (!arg_is_atom(mech, "PLAIN")) {
		resp_no(cmd, "[CANNOT] Unsupported authentication mechanism");
		return;
	}
	if (!session_plaintext_ok(s)) {
		resp_no(cmd, "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	ir = mech->next;
	if (ir != NULL) {
		if (ir->type != ARG_ATOM) {
			resp_bad(cmd, "Invalid initial response");
			return;
		}
		line = ir->str;
		len = strcmp(line, "=") == 0 ? 0 : ir->len;
	} else {
		enum io_status st;

		resp_continue(s, "");
		st = io_read_line(s->io, IMAPD_LINE_MAX_PREAUTH, &line, &len);
		if (st != IO_OK) {
			if (st == IO_TOOLONG) {
				resp_bad(cmd, "Response too long");
				s->ending = true;
			} else {
				s->ending = true;
				cmd->answered = true;	/* nobody is left to answer */
			}
			return;
		}
		if (len == 1 && line[0] == '*') {
			resp_bad(cmd, "AUTHENTICATE cancelled");
			return;
		}
	}
	n = len / 4 * 3 <= SASL_PLAIN_MAX ? auth_base64_decode(line, len, buf, SASL_PLAIN_MAX) : -1;
	io_wipe_consumed(s->io);
	parser_wipe(s->parser);
	if (n < 0) {
		resp_bad(cmd, "Invalid base64 in response");
		return;
	}
	if (auth_sasl_plain_split((char *)buf, (size_t)n, &zid, &cid, &pw) == -1) {
		explicit_bzero(buf, sizeof(buf));
		login_failed(cmd, "AUTHENTICATIONFAILED", "Malformed PLAIN message");
		return;
	}
	if (zid[0] != '\0' && strcmp(zid, cid) != 0) {
		explicit_bzero(buf, sizeof(buf));
		log_notice("login refused: PLAIN authorization identity differs from user");
		login_failed(cmd, "AUTHORIZATIONFAILED", "Authorization identity not allowed");
		return;
	}
	do_login(cmd, cid, pw, "PLAIN");
	explicit_bzero(buf, sizeof(buf));
}
