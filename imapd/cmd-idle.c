/*
 * cmd-idle.c: IDLE (RFC 2177).  The mailbox file is watched with inotify (and, as a
 * fallback for changes inotify cannot see, such as a file replaced by rename, checked once
 * a second); changes are reported as they happen, until the client sends DONE.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"

/* Check the file at least this often even without inotify events. */
#define IDLE_POLL_MS		1000
/* Keep NAT boxes and clients from thinking the connection dead. */
#define IDLE_KEEPALIVE_S	120
/* "DONE" and a little slack. */
#define IDLE_LINE_MAX		64

void
cmd_idle(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	int ifd, wd = -1;
	time_t start = time(NULL), last_out = start;

	if (cmd->args != NULL) {
		resp_bad(cmd, "IDLE takes no arguments");
		return;
	}
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd >= 0 && sel != NULL)
		wd = inotify_add_watch(ifd, mbox_path(sel->mb), IN_MODIFY | IN_ATTRIB |
		    IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF);
	(void)wd;	/* a missing file (empty INBOX) is caught by the poll */
	resp_continue(s, "idling");
	for (;;) {
		int r = io_wait(s->io, ifd, IDLE_POLL_MS);
		time_t now = time(NULL);

		if (r < 0) {
			s->ending = true;
			break;
		}
		if (r == 1) {
			const char *line;
			size_t len;
			enum io_status st = io_read_line(s->io, IDLE_LINE_MAX, &line, &len);

			if (st != IO_OK) {
				s->ending = true;
				break;
			}
			if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
				if (ifd >= 0)
					(void)close(ifd);
				resp_ok(cmd, "IDLE terminated");
				return;
			}
			if (ifd >= 0)
				(void)close(ifd);
			resp_bad(cmd, "Expected DONE");
			return;
		}
		if (r == 2) {
			char buf[4096];

			while (read(ifd, buf, sizeof(buf)) > 0)
				;
		}
		/* RFC 2177: the client re-issues IDLE within 29 minutes; past the autologout
		 * timer (RFC 3501 5.4) the server may end the session */
		if (now - start > s->cfg->timeout_auth) {
			resp_untagged(s, "BYE Autologout; idle for too long");
			io_flush(s->io);
			s->ending = true;
			break;
		}
		if (sel != NULL) {
			uint64_t before = io_bytes_out(s->io);

			selected_report(cmd);
			if (io_flush(s->io) < 0) {
				s->ending = true;
				break;
			}
			if (io_bytes_out(s->io) != before)
				last_out = now;
		}
		if (now - last_out >= IDLE_KEEPALIVE_S) {
			resp_untagged(s, "OK Still here");
			io_flush(s->io);
			last_out = now;
		}
	}
	if (ifd >= 0)
		(void)close(ifd);
	/* the connection is going away: the dispatcher ends the session */
	resp_no(cmd, "IDLE ended");
}
