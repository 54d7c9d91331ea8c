#include "imapd/command.h"
#include "imapd/resp.h"

/*
 * RFC 5161. No extension that needs enabling is implemented yet, so the ENABLED response
 * lists nothing; unknown capability names are ignored, as section 3.1 requires.
 */
void
cmd_enable(struct command *cmd)
{
	const struct imap_arg *a;

	if (cmd->args == NULL) {
		resp_bad(cmd, "ENABLE takes capability names");
		return;
	}
	for (a = cmd->args; a != NULL; a = a->next) {
		if (a->type != ARG_ATOM) {
			resp_bad(cmd, "ENABLE takes capability names");
			return;
		}
	}
	resp_untagged(cmd->s, "ENABLED");
	resp_ok(cmd, "ENABLE completed");
}
