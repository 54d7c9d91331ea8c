#ifndef IMAPD_RESP_H
#define IMAPD_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "imapd/command.h"
#include "imapd/session.h"

/*
 * The response writer. Everything goes into the transport's output buffer; a tagged
 * response flushes it (the session also flushes before every blocking read). Output
 * errors are sticky in the transport and end the session after the command.
 *
 * Formats are printf formats for text the server composes; data from the client or a
 * mailbox goes through resp_string()/resp_astring()/resp_nstring(), which pick a quoted
 * string or a literal as the bytes require (RFC 3501 4.3: no CR, LF, NUL, or 8-bit bytes
 * in a quoted string), or resp_raw() for bytes already in IMAP syntax.
 */

/* "* " fmt CRLF */
void	resp_untagged(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "+ " text CRLF, flushed (continuation request). */
void	resp_continue(struct session *s, const char *text);

/* Tagged completions: "tag OK text", "tag NO text", "tag BAD text"; flushed. The text
 * may start with a response code such as "[TRYCREATE] ". */
void	resp_ok(struct command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	resp_no(struct command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	resp_bad(struct command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Pieces of a response being built by hand (e.g. "* 3 FETCH (...)"). */
void	resp_printf(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void	resp_raw(struct session *s, const void *data, size_t len);
void	resp_crlf(struct session *s);
/* A string: quoted when every byte allows it, else a literal {n}. */
void	resp_string(struct session *s, const void *data, size_t len);
/* NIL for NULL data, else resp_string(). */
void	resp_nstring(struct session *s, const void *data, size_t len);
/* An atom when the bytes are atom characters (and not NIL), else resp_string(). */
void	resp_astring(struct session *s, const void *data, size_t len);

/* True when len bytes can be sent as a quoted string. */
bool	resp_quotable(const void *data, size_t len);

#endif
