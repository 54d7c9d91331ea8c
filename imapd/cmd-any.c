#include <stdio.h>
#include <string.h>

#include "imapd/command.h"
#include "imapd/limits.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/version.h"

/* RFC 3501 6.1.1 */
void
cmd_capability(struct command *cmd)
{
	if (cmd->args != NULL) {
		resp_bad(cmd, "CAPABILITY takes no arguments");
		return;
	}
	resp_untagged(cmd->s, "CAPABILITY %s", session_capabilities(cmd->s));
	resp_ok(cmd, "CAPABILITY completed");
}

/* RFC 3501 6.1.2: new mail and flag changes go out through the tagged-response hook. */
void
cmd_noop(struct command *cmd)
{
	if (cmd->args != NULL) {
		resp_bad(cmd, "NOOP takes no arguments");
		return;
	}
	resp_ok(cmd, "NOOP completed");
}

/* RFC 3501 6.1.3 */
void
cmd_logout(struct command *cmd)
{
	if (cmd->args != NULL) {
		resp_bad(cmd, "LOGOUT takes no arguments");
		return;
	}
	/* the state first: once LOGOUT is being answered, no mailbox updates go out, only
	 * BYE and the tagged OK (RFC 3501 6.1.3) */
	session_set_state(cmd->s, STATE_LOGOUT);
	resp_untagged(cmd->s, "BYE Logging out");
	resp_ok(cmd, "LOGOUT completed");
}

/*
 * RFC 2971: ID ( "field" "value" ... ) or ID NIL. Fields at most 30 octets, values at most
 * 1024, at most 30 pairs (3.3); the client's identity is logged, escaped.
 */
void
cmd_id(struct command *cmd)
{
	const struct imap_arg *a = cmd->args, *f;
	char line[1024], esc[256];
	size_t used = 0, pairs = 0;

	if (a == NULL || a->next != NULL || (!arg_is_nil(a) && a->type != ARG_LIST)) {
		resp_bad(cmd, "ID takes a list of field-value pairs or NIL");
		return;
	}
	line[0] = '\0';
	if (a->type == ARG_LIST) {
		for (f = a->list; f != NULL; f = f->next->next) {
			const struct imap_arg *v = f->next;

			if (v == NULL || f->type != ARG_STRING ||
			    (v->type != ARG_STRING && !arg_is_nil(v)) ||
			    f->len > IMAPD_ID_FIELD_MAX ||
			    (v->type == ARG_STRING && v->len > IMAPD_ID_VALUE_MAX) ||
			    ++pairs > IMAPD_ID_PAIRS_MAX) {
				resp_bad(cmd, "Invalid ID field-value pairs");
				return;
			}
			if (v->type == ARG_STRING && used < sizeof(line) - 1) {
				int n;

				log_escape(esc, sizeof(esc), f->str, f->len);
				n = snprintf(line + used, sizeof(line) - used, "%s%s=", used ? " " : "",
					     esc);
				used += n > 0 ? (size_t)n : 0;
				if (used < sizeof(line) - 1) {
					log_escape(esc, sizeof(esc), v->str, v->len);
					n = snprintf(line + used, sizeof(line) - used, "%s", esc);
					used += n > 0 ? (size_t)n : 0;
				}
				if (used > sizeof(line) - 1)
					used = sizeof(line) - 1;
			}
		}
		if (line[0] != '\0')
			log_info("client id: %s", line);
	}
	resp_untagged(cmd->s, "ID (\"name\" \"imapd\" \"version\" \"%s\")", IMAPD_VERSION);
	resp_ok(cmd, "ID completed");
}
