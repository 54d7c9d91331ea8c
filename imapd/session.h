#ifndef IMAPD_SESSION_H
#define IMAPD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "imapd/config.h"
#include "imapd/io.h"
#include "imapd/parser.h"

/*
 * One IMAP session: the only mutable state of the process besides the log module's.
 * States are those of RFC 3501 section 3, as a bit mask so that the command table can
 * list the states a command is valid in.
 */
enum session_state {
	STATE_NOT_AUTH	= 0x1,
	STATE_AUTH	= 0x2,
	STATE_SELECTED	= 0x4,
	STATE_LOGOUT	= 0x8,
};
#define STATE_ANY	(STATE_NOT_AUTH | STATE_AUTH | STATE_SELECTED)
#define STATE_LOGGED_IN	(STATE_AUTH | STATE_SELECTED)

/* The selected mailbox; defined by the mailbox commands (imapd/selected.h). */
struct selected;
struct command;
struct tls_server;

struct session {
	struct io		*io;
	struct parser		*parser;
	const struct config	*cfg;
	enum session_state	state;

	/* Who and where: peer is "1.2.3.4" / "[::1]" / "local"; user once logged in. */
	char			peer[64];
	bool			peer_local;	/* loopback or a pipe */
	char			*user;
	uid_t			uid;
	gid_t			gid;
	char			*home;
	char			*spool_path;	/* INBOX: $MAIL or spool_dir/user */
	char			*mail_dir;	/* absolute path of the mail directory */

	bool			tls;		/* the transport is TLS now */
	/* Certificate and key for STARTTLS, loaded as root; NULL when TLS is unavailable.
	 * Owned by the session; freed at login, when STARTTLS can no longer be used. */
	struct tls_server	*tls_server;
	bool			preauth;	/* started as the user (--preauth) */

	unsigned		bad_count;	/* BAD answers in a row */
	unsigned		login_failures;
	uint64_t		commands;
	bool			ending;		/* stop after this command */

	struct selected		*selected;	/* STATE_SELECTED: the mailbox */
	/*
	 * RFC 7162: after a CONDSTORE enabling command (3.1) every untagged FETCH carries
	 * MODSEQ and UID (3.2.4); after ENABLE QRESYNC expunges are told as VANISHED
	 * (3.2.10.2).  Both last until the connection closes.
	 */
	bool			condstore;
	bool			qresync;
	/*
	 * Called before each tagged response while a mailbox is selected, so that the
	 * selected-state code can report changes (EXISTS, RECENT, FETCH FLAGS, and EXPUNGE
	 * unless the command is one during which RFC 3501 7.4.1 forbids it).
	 */
	void			(*on_tagged)(struct command *cmd);
};

/* Serves the connection on io until LOGOUT, a timeout or an error. Returns the exit code. */
int	session_run(struct session *s);

/* Moves to a new state and sets the parser limits and timeout that go with it. */
void	session_set_state(struct session *s, enum session_state st);

/*
 * Called at the end of login (LOGIN, AUTHENTICATE, or --preauth): records the user, its
 * home and mail paths, moves to STATE_AUTH. The privilege drop happened before.
 */
int	session_logged_in(struct session *s, const char *user, uid_t uid, gid_t gid,
			  const char *home);

/* May a password be sent in the clear now? (TLS, or the plaintext_auth setting.) */
bool	session_plaintext_ok(const struct session *s);

/* The CAPABILITY list for the current state, e.g. "IMAP4rev1 LITERAL+ ...". */
const char *session_capabilities(const struct session *s);

#endif
