#ifndef IMAPD_SIGBUS_H
#define IMAPD_SIGBUS_H

#include <stdbool.h>

/*
 * Mailbox files are mapped. When another program (a local mail reader, another server)
 * truncates a file while a command reads it, the read past the new end faults with SIGBUS.
 * Instead of dying, the handler maps zero-filled memory over the page and notes it; the
 * session then ends cleanly after the command with a BYE, and the client reconnects to a
 * consistent view. Faults of any other kind are not touched: they kill the process as
 * usual.
 */

/* Installs the handler (once, at start). */
void	sigbus_guard_install(void);

/* True (once) when a mapped page vanished since the last call. */
bool	sigbus_guard_fired(void);

#endif
