#include "imapd/command.h"
#include "imapd/condstore.h"
#include "imapd/resp.h"

/*
 * RFC 5161.  The extensions that need enabling are CONDSTORE and QRESYNC (RFC 7162 3.2.3:
 * QRESYNC implies CONDSTORE), when the server offers them.  The ENABLED response lists
 * what this command enabled; unknown capability names are ignored, as section 3.1
 * requires.
 */
void
cmd_enable(struct command *cmd)
{
	struct session *s = cmd->s;
	const struct imap_arg *a;
	bool condstore = false, qresync = false;

	if (cmd->args == NULL) {
		resp_bad(cmd, "ENABLE takes capability names");
		return;
	}
	for (a = cmd->args; a != NULL; a = a->next) {
		if (a->type != ARG_ATOM) {
			resp_bad(cmd, "ENABLE takes capability names");
			return;
		}
		if (!condstore_offered(s))
			continue;
		if (arg_is_atom(a, "CONDSTORE"))
			condstore = true;
		else if (arg_is_atom(a, "QRESYNC"))
			qresync = true;
	}
	/* what was asked for and is new (QRESYNC brings CONDSTORE along unnamed) */
	resp_printf(s, "* ENABLED");
	if (condstore && !s->condstore)
		resp_printf(s, " CONDSTORE");
	if (qresync && !s->qresync)
		resp_printf(s, " QRESYNC");
	resp_crlf(s);
	if (qresync)
		s->qresync = true;
	if (condstore || qresync)
		condstore_enable(s);
	resp_ok(cmd, "ENABLE completed");
}
