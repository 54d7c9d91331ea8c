/*
 * address.h: RFC 5322 address lists (3.4, with the obsolete syntax of 4.4) parsed into the
 * shape of an IMAP ENVELOPE address (RFC 3501 7.4.2): display name, source route, mailbox and
 * host, with group start and end markers.
 *
 * Malformed input gives a best-effort answer and never fails: an address without a domain gets
 * host ADDR_MISSING_DOMAIN, one without a local part gets mailbox ADDR_MISSING_MAILBOX ("<>"
 * gets both), an angle address without its ">" gets host ADDR_SYNTAX_ERROR, and an
 * unterminated group is closed at the end (the names other servers use).  Encoded words (RFC 2047) are left encoded.
 */
#ifndef MBOX_ADDRESS_H
#define MBOX_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Addresses kept per field (group markers count); more are dropped, list->truncated is set.
 * A real To: line with thousands of recipients is already absurd. */
#define ADDR_MAX_COUNT		1000

#define ADDR_MISSING_DOMAIN	"MISSING_DOMAIN"
#define ADDR_MISSING_MAILBOX	"MISSING_MAILBOX"
#define ADDR_SYNTAX_ERROR	"SYNTAX_ERROR"

/*
 * One entry.  A group start has mailbox = the group name and host = NULL; a group end has
 * mailbox = NULL and host = NULL (RFC 3501 7.4.2).  Otherwise mailbox and host are non-NULL.
 * name is the display name (quoted strings unquoted, words joined by one space) or, for a bare
 * addr-spec, its comment; NULL when there is none.  route is the obsolete source route without
 * its colon ("@a,@b"), or NULL.  Strings are NUL-terminated and owned by the list.
 */
struct addr {
	const char *name;
	const char *route;
	const char *mailbox;
	const char *host;
};

struct addr_list {
	struct addr *v;
	size_t n;
	bool truncated;
	char *pool;	/* storage for the strings */
};

/* Parse an unfolded or raw field value.  Always succeeds (aborts if memory runs out); free
 * with addr_list_free.  An empty list has n == 0. */
void addr_parse(const char *s, size_t len, struct addr_list *list_r);
void addr_list_free(struct addr_list *list);

#endif
