#ifndef IMAPD_COMMAND_H
#define IMAPD_COMMAND_H

#include <stdbool.h>

#include "imapd/parser.h"
#include "imapd/session.h"

/*
 * The command table and the shape of a command handler.
 *
 * The dispatcher (session.c) reads the tag and name, looks the command up, checks the state
 * (answering BAD for unknown commands and for a valid command in the wrong state, RFC 3501
 * section 3 and DEVIATIONS.md 4), parses the arguments (with PARSE_STREAM when the entry
 * has CMD_STREAM), and calls the handler. The handler checks its arguments (BAD on bad
 * syntax), does the work, and sends exactly one tagged response with
 * resp_ok/resp_no/resp_bad (imapd/resp.h).
 * After the handler returns, the dispatcher discards whatever of the command is still
 * unread (for a streamed APPEND that was refused).
 *
 * UID FETCH and the like are entries of their own: name "FETCH" with CMD_UID set is looked
 * up when the client sent "UID FETCH"; cmd->uid tells the handler.
 */

struct command {
	struct session		*s;
	const char		*tag;
	const char		*name;		/* upper-cased, without the UID prefix */
	bool			uid;		/* sent as UID <name> */
	struct imap_arg		*args;		/* borrowed from the parser; NULL if none */
	enum parse_status	parse;		/* PARSE_OK, or PARSE_LITERAL for CMD_STREAM */
	bool			answered;	/* a tagged response went out */
};

typedef void command_fn(struct command *cmd);

/* Entry flags. */
#define CMD_STREAM	0x01	/* top-level literals are streamed by the handler (APPEND) */
#define CMD_UID		0x02	/* this entry is the UID variant */
/*
 * Commands that must not run while others' EXPUNGE responses are pending, and during
 * which the server must not send EXPUNGE (RFC 3501 7.4.1: FETCH, STORE, SEARCH; and their
 * UID variants, which may see EXPUNGE).
 */
#define CMD_NO_EXPUNGE	0x04

struct command_def {
	const char	*name;
	command_fn	*fn;
	unsigned	states;		/* enum session_state mask */
	unsigned	flags;
};

/* Looks a command up; NULL when unknown. */
const struct command_def *command_find(const char *name, bool uid);

/* Handlers, by file. */
/* cmd-any.c */
void	cmd_capability(struct command *cmd);
void	cmd_noop(struct command *cmd);
void	cmd_logout(struct command *cmd);
void	cmd_id(struct command *cmd);
/* cmd-enable.c */
void	cmd_enable(struct command *cmd);
/* cmd-auth.c */
void	cmd_login(struct command *cmd);
void	cmd_authenticate(struct command *cmd);
/* cmd-tls.c */
void	cmd_starttls(struct command *cmd);
/* cmd-mailbox.c */
void	cmd_list(struct command *cmd);
void	cmd_lsub(struct command *cmd);
void	cmd_create(struct command *cmd);
void	cmd_delete(struct command *cmd);
void	cmd_rename(struct command *cmd);
void	cmd_subscribe(struct command *cmd);
void	cmd_unsubscribe(struct command *cmd);
void	cmd_namespace(struct command *cmd);
void	cmd_status(struct command *cmd);

/* cmd-select.c */
void	cmd_select(struct command *cmd);
void	cmd_examine(struct command *cmd);
void	cmd_close(struct command *cmd);
void	cmd_unselect(struct command *cmd);
void	cmd_cancelupdate(struct command *cmd);
void	cmd_check(struct command *cmd);
/* cmd-store.c */
void	cmd_store(struct command *cmd);
/* cmd-fetch.c */
void	cmd_fetch(struct command *cmd);
/* cmd-search.c */
void	cmd_search(struct command *cmd);
/* cmd-sort.c */
void	cmd_sort(struct command *cmd);
void	cmd_thread(struct command *cmd);
/* cmd-expunge.c */
void	cmd_expunge(struct command *cmd);
/* cmd-append.c */
void	cmd_append(struct command *cmd);
/* cmd-idle.c */
void	cmd_idle(struct command *cmd);
/* cmd-copy.c */
void	cmd_copy(struct command *cmd);
void	cmd_move(struct command *cmd);

#endif
