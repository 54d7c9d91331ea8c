#include <stdio.h>

#include "imapd/command.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/tls.h"

/*
 * RFC 3501 6.2.1: tagged OK, then the handshake. Whatever the client sent after the
 * STARTTLS line and before the handshake is thrown away unread: a man in the middle can
 * append plaintext commands to the same packet (CVE-2011-0411 and its kin), and they must
 * not run as if they came through TLS. Bytes still in the socket are the client's TLS
 * records, or garbage that makes the handshake fail; either way never an IMAP command.
 */
void
cmd_starttls(struct command *cmd)
{
	struct session *s = cmd->s;
	char desc[256];
	size_t dropped;

	if (cmd->args != NULL) {
		resp_bad(cmd, "STARTTLS takes no arguments");
		return;
	}
	if (s->tls) {
		resp_bad(cmd, "TLS is already active");
		return;
	}
	if (s->tls_server == NULL) {
		/* Not advertised: to the client this is an unknown command (RFC 3501 6.2.1). */
		resp_bad(cmd, "STARTTLS is not available");
		return;
	}
	resp_ok(cmd, "Begin TLS negotiation now");
	if (io_failed(s->io))
		return;
	dropped = io_discard_input(s->io);
	if (dropped > 0)
		log_notice("STARTTLS: dropped %zu bytes sent before the TLS handshake", dropped);
	if (tls_start(s->tls_server, s->io, s->cfg->timeout_preauth * 1000, desc,
		      sizeof(desc)) == -1) {
		log_notice("STARTTLS: TLS handshake failed: %s", desc);
		s->ending = true;
		return;
	}
	s->tls = true;
	log_info("STARTTLS: %s", desc);
}
