#include "imapd/session.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/command.h"
#include "imapd/limits.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"
#include "imapd/sigbus.h"
#include "imapd/tls.h"

/* Capabilities: only what is implemented in full (never advertise a stub). */
#define CAPS_BASE	"IMAP4rev1 LITERAL+ ID"
/* After login: the extensions the selected/authenticated code implements. */
#define CAPS_AUTH	" ENABLE IDLE UNSELECT UIDPLUS MULTIAPPEND MOVE ESEARCH CHILDREN NAMESPACE" \
			" LIST-EXTENDED LIST-STATUS SPECIAL-USE STATUS=SIZE SORT SORT=DISPLAY" \
			" THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT" \
			" SEARCHRES WITHIN"

bool
session_plaintext_ok(const struct session *s)
{
	if (s->tls)
		return true;
	if (strcmp(s->cfg->plaintext_auth, "always") == 0)
		return true;
	if (strcmp(s->cfg->plaintext_auth, "loopback") == 0)
		return s->peer_local;
	return false;
}

const char *
session_capabilities(const struct session *s)
{
	static char buf[512];

	/* RFC 3501 6.2.1: STARTTLS only while it can be used; after TLS the list changes
	 * (no STARTTLS, and LOGINDISABLED gives way to AUTH=PLAIN). */
	if (s->state == STATE_NOT_AUTH) {
		snprintf(buf, sizeof(buf), "%s%s%s", CAPS_BASE,
			 s->tls_server != NULL && !s->tls ? " STARTTLS" : "",
			 session_plaintext_ok(s) ? " SASL-IR AUTH=PLAIN" : " LOGINDISABLED");
	} else
		snprintf(buf, sizeof(buf), "%s%s%s", CAPS_BASE, CAPS_AUTH,
			 s->cfg->condstore ? " CONDSTORE QRESYNC" : "");
	return buf;
}

void
session_set_state(struct session *s, enum session_state st)
{
	struct parser_limits lim = {
		.line_max = IMAPD_LINE_MAX,
		.literal_max = IMAPD_LITERAL_MAX,
		.command_max = IMAPD_COMMAND_MAX,
		.args_max = IMAPD_ARGS_MAX,
		.depth_max = IMAPD_NEST_MAX,
		.discard_max = IMAPD_DISCARD_MAX,
	};
	int timeout = s->cfg->timeout_auth;

	if (st == STATE_NOT_AUTH) {
		lim.line_max = IMAPD_LINE_MAX_PREAUTH;
		lim.literal_max = IMAPD_LITERAL_MAX_PREAUTH;
		lim.command_max = IMAPD_COMMAND_MAX_PREAUTH;
		lim.discard_max = IMAPD_DISCARD_MAX_PREAUTH;
		timeout = s->cfg->timeout_preauth;
	}
	s->state = st;
	parser_set_limits(s->parser, &lim);
	io_set_timeout(s->io, timeout * 1000);
}

int
session_logged_in(struct session *s, const char *user, uid_t uid, gid_t gid, const char *home)
{
	const char *mail = getenv("MAIL");
	size_t n;

	free(s->user);
	free(s->home);
	free(s->spool_path);
	free(s->mail_dir);
	s->user = strdup(user);
	s->home = strdup(home);
	s->uid = uid;
	s->gid = gid;
	/* INBOX: $MAIL in a --preauth session (the user's own environment), else the spool. */
	if (s->preauth && mail != NULL && mail[0] == '/')
		s->spool_path = strdup(mail);
	else {
		n = strlen(s->cfg->spool_dir) + strlen(user) + 2;
		if ((s->spool_path = malloc(n)) != NULL)
			snprintf(s->spool_path, n, "%s/%s", s->cfg->spool_dir, user);
	}
	if (s->cfg->mail_dir[0] == '/')
		s->mail_dir = strdup(s->cfg->mail_dir);
	else {
		n = strlen(home) + strlen(s->cfg->mail_dir) + 2;
		if ((s->mail_dir = malloc(n)) != NULL)
			snprintf(s->mail_dir, n, "%s/%s", home, s->cfg->mail_dir);
	}
	if (s->user == NULL || s->home == NULL || s->spool_path == NULL || s->mail_dir == NULL)
		fatalx("out of memory");
	log_set_user(user);
	/* STARTTLS is over once logged in: the private key need not stay in memory. */
	tls_server_free(&s->tls_server);
	session_set_state(s, STATE_AUTH);
	return 0;
}

static void
bye(struct session *s, const char *text)
{
	resp_untagged(s, "BYE %s", text);
	io_flush(s->io);
	s->ending = true;
}

/* Answers a parse failure. Returns false when the session must end. */
static bool
parse_failed(struct session *s, enum parse_status st, const char *tag)
{
	char esc[IMAPD_TAG_MAX * 4 + 8];

	switch (st) {
	case PARSE_ERROR:
		if (tag != NULL)
			io_puts(s->io, tag);
		else
			io_puts(s->io, "*");
		io_puts(s->io, " BAD ");
		io_puts(s->io, parser_error(s->parser));
		io_puts(s->io, "\r\n");
		io_flush(s->io);
		log_debug("bad command from %s: %s",
			  tag ? log_escape(esc, sizeof(esc), tag, strlen(tag)) : "-",
			  parser_error(s->parser));
		if (++s->bad_count >= IMAPD_BAD_MAX) {
			log_notice("too many bad commands");
			bye(s, "Too many invalid commands");
			return false;
		}
		return true;
	case PARSE_TOOLONG:
		log_notice("%s", parser_error(s->parser));
		bye(s, strcmp(parser_error(s->parser), "Literal too large") == 0 ?
		       "[TOOBIG] Literal too large" : "Command line too long");
		return false;
	case PARSE_IO:
		if (parser_io_status(s->parser) == IO_TIMEOUT) {
			log_info("autologout after %d s idle",
				 s->state == STATE_NOT_AUTH ? s->cfg->timeout_preauth :
							      s->cfg->timeout_auth);
			bye(s, "Autologout; idle for too long");
		} else if (parser_io_status(s->parser) == IO_EOF)
			log_info("connection closed by client");
		else
			log_warn("connection lost");
		s->ending = true;
		return false;
	default:
		return true;
	}
}

/* Reads, checks and runs one command. Returns false when the session is over. */
static bool
run_command(struct session *s)
{
	struct command cmd = { .s = s };
	const struct command_def *def;
	enum parse_status st;
	const char *name, *word;
	int flags;

	if (s->selected != NULL && s->selected->later) {
		/* the client has its answer before what the open left for later */
		io_flush(s->io);
		s->selected->later = false;
		mbox_later(s->selected->mb);
	}
	if (io_buffered(s->io) == 0) {
		/*
		 * No command is waiting: the session is about to block on the client, maybe for
		 * hours (an IDLE-ing or parked client).  Hand the heap that the last command freed
		 * (a parse, a rewrite's buffers, another mailbox opened for STATUS or COPY) back to
		 * the kernel; glibc keeps it otherwise, since it lies below live blocks.
		 */
		io_flush(s->io);
		malloc_trim(0);
	}
	st = parser_begin(s->parser, &cmd.tag, &name);
	if (st == PARSE_ERROR)
		st = parser_discard(s->parser) == PARSE_OK ? PARSE_ERROR : PARSE_IO;
	if (st != PARSE_OK)
		return parse_failed(s, st, cmd.tag);
	if (strcmp(name, "UID") == 0) {
		if ((st = parser_read_word(s->parser, &word)) != PARSE_OK) {
			if (parser_discard(s->parser) != PARSE_OK)
				return parse_failed(s, PARSE_IO, cmd.tag);
			return parse_failed(s, st, cmd.tag);
		}
		name = word;
		cmd.uid = true;
	}
	cmd.name = name;
	s->commands++;
	def = command_find(name, cmd.uid);
	if (def == NULL || !(def->states & s->state)) {
		if (parser_discard(s->parser) != PARSE_OK)
			return parse_failed(s, PARSE_IO, cmd.tag);
		if (def == NULL)
			resp_bad(&cmd, "Unknown command %s%s", cmd.uid ? "UID " : "",
				 strlen(name) <= 32 ? name : "(too long)");
		else if (s->state == STATE_NOT_AUTH)
			resp_bad(&cmd, "Log in first");
		else if (def->states == STATE_NOT_AUTH)
			resp_bad(&cmd, "Already logged in");
		else
			resp_bad(&cmd, "No mailbox selected");
		return !s->ending;
	}
	flags = (def->flags & CMD_STREAM) ? PARSE_STREAM : 0;
	st = parser_read_args(s->parser, flags, &cmd.args);
	if (st != PARSE_OK && st != PARSE_LITERAL)
		return parse_failed(s, st, cmd.tag);
	cmd.parse = st;
	def->fn(&cmd);
	if (!parser_done(s->parser)) {
		st = parser_discard(s->parser);
		if (st != PARSE_OK)
			return parse_failed(s, st, cmd.tag);
	}
	if (!cmd.answered)
		resp_no(&cmd, "[SERVERBUG] Command not completed");
	if (sigbus_guard_fired()) {
		log_warnx("the mailbox file shrank while it was being read; ending the session");
		bye(s, "[UNAVAILABLE] The mailbox was changed by another program; please reconnect");
		return false;
	}
	if (io_failed(s->io)) {
		log_warn("write to client failed");
		return false;
	}
	return !s->ending && s->state != STATE_LOGOUT;
}

int
session_run(struct session *s)
{
	session_set_state(s, s->state == 0 ? STATE_NOT_AUTH : s->state);
	if (s->state == STATE_NOT_AUTH)
		resp_untagged(s, "OK [CAPABILITY %s] imapd ready", session_capabilities(s));
	else
		resp_untagged(s, "PREAUTH [CAPABILITY %s] imapd ready, logged in as %s",
			      session_capabilities(s), s->user);
	if (io_flush(s->io) == -1) {
		log_warn("greeting failed");
		return 1;
	}
	while (run_command(s))
		;
	io_flush(s->io);
	/* after the last response is out: closing the mailbox saves its cache (mbox/) */
	selected_close(s);
	log_logout((unsigned long long)s->commands, (unsigned long long)io_bytes_in(s->io),
		   (unsigned long long)io_bytes_out(s->io));
	return 0;
}
