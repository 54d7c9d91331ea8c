#ifndef IMAPD_FETCH_RENDER_H
#define IMAPD_FETCH_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbox/decode.h"
#include "mbox/message.h"

/*
 * IMAP rendering of the message model for FETCH (RFC 3501 7.4.2): ENVELOPE, BODY and
 * BODYSTRUCTURE as IMAP syntax appended to a byte buffer (so that a session can cache the text
 * per message), and the parser of BODY[...]/BINARY[...] section specifications.
 *
 * Strings are quoted when every byte allows it (resp_quotable) and literals otherwise, so
 * 8-bit bytes, CR, LF and NUL never appear inside a quoted string.
 */

/* Most part numbers in one section specification ("1.2.3..."). */
#define FETCH_SECTION_DEPTH	64
/* Most field names in one HEADER.FIELDS list. */
#define FETCH_SECTION_FIELDS	128

/* A string or NIL (s == NULL), as IMAP syntax. */
void fetch_render_nstring(struct dbuf *b, const char *s, size_t len);

/* ENVELOPE: the parenthesised list, Sender and Reply-To defaulting to From (RFC 3501 7.4.2). */
void fetch_render_envelope(struct dbuf *b, const struct msg_envelope *env);

/* BODYSTRUCTURE (extended = true) or BODY (false) of part (msg_root() for the message). */
void fetch_render_bodystructure(struct dbuf *b, const struct msg_part *part, bool extended);

/*
 * A parsed section specification: the text between "[" and "]" plus an optional partial.
 * Field names point into the text given to fetch_section_parse (which is modified in place to
 * NUL-terminate them), so they live as long as it does.
 */
struct fetch_section {
	unsigned int path[FETCH_SECTION_DEPTH];
	const char *fields[FETCH_SECTION_FIELDS];
	struct msg_section_spec spec;	/* points into path and fields */
	bool partial;
	uint64_t origin, length;
};

/*
 * Parse "[section]" and an optional "<origin.length>" at *textp; on success *textp points after
 * them.  binary = the BINARY forms, which take part numbers only (RFC 3516).  Returns 0, or -1
 * on a syntax error (answer BAD).
 */
int fetch_section_parse(char **textp, bool binary, struct fetch_section *sec_r);

/*
 * The section as it is named in the response: "1.2.HEADER.FIELDS (FROM TO)" (fields
 * upper-cased and quoted as needed), without brackets or partial.
 */
void fetch_section_name(struct dbuf *b, const struct fetch_section *sec);

#endif
