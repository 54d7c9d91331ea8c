#ifndef IMAPD_SEARCH_PROGRAM_H
#define IMAPD_SEARCH_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imapd/parser.h"
#include "mbox/message.h"
#include "mbox/message-cache.h"

/*
 * SEARCH criteria (RFC 3501 6.4.4): parsed once from the command's arguments into a tree,
 * then evaluated message by message through struct search_msg, so the program knows nothing
 * of the store.  Text keys match case-insensitively (mbox/decode.h's folding) against headers
 * with RFC 2047 words decoded and against the decoded text of text parts.
 */

/* Nesting of NOT/OR/parentheses accepted; the parser's own depth limit is lower anyway. */
#define SEARCH_MAX_DEPTH	64
/* Keys in one program. */
#define SEARCH_MAX_KEYS		1000
/* Ranges in one sequence set. */
#define SEARCH_MAX_RANGES	10000

struct search_program;

/* What the evaluator needs of one message; the callbacks get ctx. */
struct search_msg {
	uint32_t seq, uid;
	unsigned int flags;		/* MBOX_SEEN ... MBOX_RECENT (mbox/mbox.h) */
	time_t internal_date;
	int internal_tz;		/* minutes east of UTC */
	uint64_t size;			/* RFC822.SIZE */
	uint64_t modseq;		/* RFC 7162 mod-sequence */
	/* true if the message has the keyword (case-insensitive) */
	bool (*has_keyword)(void *ctx, const char *keyword);
	/* the parsed message, parsed on first use; NULL if it cannot be read */
	const struct msg *(*get_msg)(void *ctx);
	/*
	 * Optional (may be NULL): the message's header index (mbox/message-cache.h) and the
	 * bytes it indexes, the same bytes get_msg parses; NULL if there is none.  Header keys
	 * on indexed fields then read only those fields.
	 */
	const struct msg_hindex *(*get_hindex)(void *ctx, const unsigned char **data_r,
					       size_t *len_r);
	void *ctx;
};

/* The mailbox around the messages: "*" in sets, "$" (RFC 5182), now for RFC 5032. */
struct search_box {
	uint32_t count;			/* messages */
	uint32_t max_uid;		/* UID of the last message, 0 if empty */
	const uint32_t *saved;		/* the saved result's UIDs, ascending */
	size_t n_saved;
	time_t now;			/* OLDER and YOUNGER count from here */
};

enum search_error {
	SEARCH_OK = 0,
	SEARCH_ESYNTAX,			/* answer BAD */
	SEARCH_EBADCHARSET		/* answer NO [BADCHARSET (US-ASCII UTF-8)] */
};

/*
 * Parse the arguments of SEARCH (after the optional CHARSET, which this handles too).  On
 * success *prog_r is set; otherwise an error and, for syntax errors, a short message in
 * *why_r (static text).
 */
enum search_error search_parse(const struct imap_arg *args, struct search_program **prog_r,
			       const char **why_r);
/* The same for criteria without a CHARSET prefix, in US-ASCII or UTF-8 (SORT and THREAD
 * take the charset as an argument of their own, RFC 5256 3). */
enum search_error search_parse_keys(const struct imap_arg *args,
				    struct search_program **prog_r, const char **why_r);
void search_free(struct search_program **progp);

/* Do the keys look into bodies (BODY, TEXT)?  If not, get_msg may give a header-only parse
 * (msg_parse_header). */
bool search_needs_mime(const struct search_program *prog);

/* Is there a MODSEQ key (RFC 7162 3.1.5)? */
bool search_uses_modseq(const struct search_program *prog);

/* Is "$" (RFC 5182) used? */
bool search_uses_saved(const struct search_program *prog);

/* Is there an OLDER or YOUNGER key (RFC 5032), whose answer changes with the time? */
bool search_uses_time(const struct search_program *prog);

/*
 * For a program kept past its command (RFC 5267 4.3, UPDATE): sequence numbers are
 * evaluated when the command is received, so each sequence set becomes the UIDs of the
 * messages it named then (uid_of(ctx, seq) for seq 1..box->count); "*" in a UID set the
 * highest UID then (box->max_uid), "$" the UIDs it held then (box->saved).  The program then
 * needs neither the box's count, max_uid nor saved result again.
 */
void search_freeze(struct search_program *prog, const struct search_box *box,
		   uint32_t (*uid_of)(void *ctx, uint32_t seq), void *ctx);

/* Does the message match? */
bool search_match(const struct search_program *prog, const struct search_box *box,
		  const struct search_msg *m);

/* Parse an RFC 3501 date ("1-Feb-1994", day 1 or 2 digits) to days since 1970-01-01. */
int search_parse_date(const char *s, size_t len, long long *day_r);

/* The calendar day (days since 1970-01-01) of a time in its own zone. */
long long search_day(time_t t, int tz_min);

#endif
