#include "imapd/command.h"

#include <string.h>

/*
 * The command table: name, handler, states it is valid in, flags. Keep it sorted by name;
 * a UID variant is an entry of its own with CMD_UID. The dispatcher checks states, not the
 * handlers.
 */
static const struct command_def commands[] = {
	{ "APPEND",		cmd_append,		STATE_LOGGED_IN,	CMD_STREAM },
	{ "AUTHENTICATE",	cmd_authenticate,	STATE_NOT_AUTH,		0 },
	{ "CAPABILITY",		cmd_capability,		STATE_ANY,		0 },
	{ "CANCELUPDATE",	cmd_cancelupdate,	STATE_SELECTED,		0 },
	{ "CHECK",		cmd_check,		STATE_SELECTED,		0 },
	{ "CLOSE",		cmd_close,		STATE_SELECTED,		0 },
	{ "COPY",		cmd_copy,		STATE_SELECTED,		0 },
	{ "COPY",		cmd_copy,		STATE_SELECTED,		CMD_UID },
	{ "CREATE",		cmd_create,		STATE_LOGGED_IN,	0 },
	{ "DELETE",		cmd_delete,		STATE_LOGGED_IN,	0 },
	{ "ENABLE",		cmd_enable,		STATE_LOGGED_IN,	0 },
	{ "EXAMINE",		cmd_examine,		STATE_LOGGED_IN,	0 },
	{ "EXPUNGE",		cmd_expunge,		STATE_SELECTED,		0 },
	{ "EXPUNGE",		cmd_expunge,		STATE_SELECTED,		CMD_UID },
	{ "FETCH",		cmd_fetch,		STATE_SELECTED,		CMD_NO_EXPUNGE },
	{ "FETCH",		cmd_fetch,		STATE_SELECTED,		CMD_UID },
	{ "IDLE",		cmd_idle,		STATE_LOGGED_IN,	0 },
	{ "ID",			cmd_id,			STATE_ANY,		0 },
	{ "LIST",		cmd_list,		STATE_LOGGED_IN,	0 },
	{ "LOGIN",		cmd_login,		STATE_NOT_AUTH,		0 },
	{ "LOGOUT",		cmd_logout,		STATE_ANY,		0 },
	{ "LSUB",		cmd_lsub,		STATE_LOGGED_IN,	0 },
	{ "MOVE",		cmd_move,		STATE_SELECTED,		0 },
	{ "MOVE",		cmd_move,		STATE_SELECTED,		CMD_UID },
	{ "NAMESPACE",		cmd_namespace,		STATE_LOGGED_IN,	0 },
	{ "NOOP",		cmd_noop,		STATE_ANY,		0 },
	{ "RENAME",		cmd_rename,		STATE_LOGGED_IN,	0 },
	{ "SEARCH",		cmd_search,		STATE_SELECTED,		CMD_NO_EXPUNGE },
	{ "SEARCH",		cmd_search,		STATE_SELECTED,		CMD_UID },
	{ "SELECT",		cmd_select,		STATE_LOGGED_IN,	0 },
	{ "SORT",		cmd_sort,		STATE_SELECTED,		CMD_NO_EXPUNGE },
	{ "SORT",		cmd_sort,		STATE_SELECTED,		CMD_UID },
	{ "STARTTLS",		cmd_starttls,		STATE_NOT_AUTH,		0 },
	{ "STATUS",		cmd_status,		STATE_LOGGED_IN,	0 },
	{ "STORE",		cmd_store,		STATE_SELECTED,		CMD_NO_EXPUNGE },
	{ "STORE",		cmd_store,		STATE_SELECTED,		CMD_UID },
	{ "SUBSCRIBE",		cmd_subscribe,		STATE_LOGGED_IN,	0 },
	{ "THREAD",		cmd_thread,		STATE_SELECTED,		CMD_NO_EXPUNGE },
	{ "THREAD",		cmd_thread,		STATE_SELECTED,		CMD_UID },
	{ "UNSELECT",		cmd_unselect,		STATE_SELECTED,		0 },
	{ "UNSUBSCRIBE",	cmd_unsubscribe,	STATE_LOGGED_IN,	0 },
};

const struct command_def *
command_find(const char *name, bool uid)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command_def *d = &commands[i];

		if (strcmp(d->name, name) == 0 && ((d->flags & CMD_UID) != 0) == uid)
			return d;
	}
	return NULL;
}
