#ifndef IMAPD_SEARCH_RUN_H
#define IMAPD_SEARCH_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/command.h"
#include "imapd/search-program.h"
#include "imapd/selected.h"

/*
 * What SEARCH, SORT and THREAD share (cmd-search.c): the RETURN options, the run of a search
 * program over the selected mailbox, and the answer in SEARCH, SORT or ESEARCH form with the
 * saved result ("$", RFC 5182).
 */

/* RETURN options: RFC 4731 (MIN MAX COUNT ALL), RFC 5182 (SAVE), RFC 5267 4.4 (PARTIAL). */
#define RET_MIN		0x01
#define RET_MAX		0x02
#define RET_COUNT	0x04
#define RET_ALL		0x08
#define RET_SAVE	0x10
#define RET_PARTIAL	0x20
/* RFC 5267 4.2 and 4.3: CONTEXT (a hint, taken as none) and UPDATE */
#define RET_CONTEXT	0x40
#define RET_UPDATE	0x80
/* the options that ask for result data; UPDATE and CONTEXT do not */
#define RET_DATA	(RET_MIN | RET_MAX | RET_COUNT | RET_ALL | RET_SAVE | RET_PARTIAL)

struct search_ret {
	unsigned opts;
	bool esearch;		/* RETURN was given: the answer is ESEARCH */
	uint32_t plo, phi;	/* PARTIAL range, plo <= phi */
};

/*
 * partial-range (RFC 5267 5: nz-number ":" nz-number) at a, an atom, as *lo_r <= *hi_r,
 * both at least 1.  False when a is not one.
 */
bool partial_range(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r);

/*
 * RETURN (...) at a, if there is one.  Returns the arguments after it (a itself without
 * RETURN); on a syntax error sets *why_r (static text) and returns NULL.
 */
const struct imap_arg *search_ret_parse(const struct imap_arg *a, struct search_ret *r,
					const char **why_r);

/* The messages a search program matched, by message index, in mailbox order. */
struct search_hits {
	uint32_t *idx;
	uint32_t n;
	bool gone;		/* a message was removed by another program, no copy kept */
	uint64_t top_modseq;	/* highest mod-sequence among them */
};

/* A message being searched (cmd-search.c). */
struct smsg;

/* Its bytes as FETCH reads them (data, len; hdr_len of them the header), read on demand. */
void search_msg_bytes(struct smsg *m, const unsigned char **data_r, size_t *len_r,
		      size_t *hdr_len_r);

/* Called under the store's read lock for each matching message i.  May be NULL. */
typedef void search_hit_fn(void *ctx, struct selected *sel, uint32_t i, struct smsg *m);

/*
 * Runs prog over the messages the client knows of.  0 with *h filled (free h->idx), or -1
 * when the store could not be read: the command is answered then (verb names it).
 */
int search_run(struct command *cmd, const struct search_program *prog, const char *verb,
	       search_hit_fn *fn, void *ctx, struct search_hits *h);

/* search_run() for a session with no command to answer: -1 when the store could not be
 * read (nothing was answered). */
int search_exec(struct session *s, const struct search_program *prog, search_hit_fn *fn,
		void *ctx, struct search_hits *h);

/* v[0..n) as a sequence set, runs of consecutive numbers as ranges, in the order given. */
void search_write_set(struct session *s, const uint32_t *v, size_t n);

/*
 * The untagged answer for hits in the order given (nums: their numbers, sequence numbers or
 * UIDs): "* <verb> n n ..." without RETURN, ESEARCH with it; with RET_SAVE the saved result
 * is set (RFC 5182 2.4).  modseq: add the highest mod-sequence (RFC 7162 3.1.6).
 */
void search_answer(struct command *cmd, const char *verb, const struct search_ret *r,
		   const struct search_hits *h, const uint32_t *nums, bool modseq);

/* With RETURN (UPDATE): BAD and -1 if the command's tag names an updating search
 * (RFC 5267 4.3), else 0. */
int search_update_check(struct command *cmd, const struct search_ret *r);

/* "$" empty (RFC 5182 2.1: a SEARCH with SAVE that failed). */
void search_saved_clear(struct selected *sel);

/* The CHARSET argument of SORT and THREAD: 0 if US-ASCII or UTF-8, else -1 after answering
 * NO [BADCHARSET] (emptying "$" when r has SAVE) or, for a missing one, BAD. */
int search_charset_check(struct command *cmd, const struct imap_arg *a,
			 const struct search_ret *r);

/* RFC 7162 3.1.5: *modseq_r tells whether prog has a MODSEQ key; 0, or -1 after BAD when
 * the mailbox has no mod-sequences (else CONDSTORE is enabled). */
int search_modseq_check(struct command *cmd, const struct search_program *prog,
			bool *modseq_r);

/* The msg_hide_fn of the store's own header fields (X-UID, Status, ...). */
bool search_hide(const char *name, size_t len, void *ctx);

#endif
