#ifndef IMAPD_PARSER_H
#define IMAPD_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/io.h"

/*
 * The command parser (RFC 3501 section 9, RFC 7888 for {n+}). It pulls lines and literals
 * from the transport and turns one command into a tree of arguments:
 *
 *   atom      any run of non-special characters; "[...]" inside an atom is kept whole,
 *             spaces, parentheses and quoted strings included, so FETCH's
 *             BODY.PEEK[HEADER.FIELDS (From To)]<0.100> is one atom. Backslash flags, '*',
 *             '%' and ']' are atom characters here; NIL is an atom (arg_is_nil()).
 *   string    a quoted string (only \" and \\ escapes; no NUL) or a literal {n} / {n+}
 *   list      ( ... ), nested at most the nesting limit
 *
 * Every argument and its text live in the parser's arena until parser_begin() of the next
 * command: handlers borrow them. Sizes are checked before anything is allocated or the
 * client is told to send a literal ("+"): a line over the line limit, a literal over the
 * literal limit, too many arguments or too deep nesting are errors. After an error the rest
 * of the command is consumed (including the bytes of non-synchronising literals, which are
 * never read as commands), and the caller answers BAD.
 */

enum arg_type {
	ARG_ATOM,
	ARG_STRING,		/* quoted or literal; may contain NUL only if literal */
	ARG_LIST,
	ARG_LITERAL_SIZE,	/* a literal the caller reads itself (PARSE_STREAM) */
};

struct imap_arg {
	enum arg_type	type;
	bool		literal;	/* ARG_STRING that came as a literal */
	bool		sync;		/* ARG_LITERAL_SIZE: {n} (true) or {n+} (false) */
	const char	*str;		/* ATOM/STRING: NUL-terminated text */
	size_t		len;		/* ATOM/STRING: length without the terminator */
	uint64_t	literal_size;	/* ARG_LITERAL_SIZE */
	struct imap_arg	*list;		/* ARG_LIST: first member or NULL */
	struct imap_arg	*next;		/* next argument at the same level or NULL */
};

struct parser_limits {
	size_t		line_max;	/* one line, without its CRLF */
	size_t		literal_max;	/* one literal held in memory */
	size_t		command_max;	/* arena bytes for the whole command */
	size_t		args_max;
	unsigned	depth_max;
	uint64_t	discard_max;	/* bytes of a refused {n+} literal we read and drop */
};

enum parse_status {
	PARSE_OK,		/* arguments complete, the command's last line consumed */
	PARSE_LITERAL,		/* stopped at a literal the caller must accept or refuse */
	PARSE_ERROR,		/* syntax error or limit: see parser_error(); rest discarded */
	PARSE_TOOLONG,		/* line over the limit: the session must end (BYE) */
	PARSE_IO,		/* EOF, timeout or I/O error: see parser_io_status() */
};

/* Flag for parser_read_args(): stop at a top-level literal instead of reading it. */
#define PARSE_STREAM	0x01

struct parser;

struct parser *parser_new(struct io *io);
void	parser_free(struct parser **pp);
void	parser_set_limits(struct parser *p, const struct parser_limits *lim);

/*
 * Starts a new command: frees the previous command's arguments, reads a line, and returns
 * its tag and command name (upper-cased; "UID FETCH" style for the UID prefix is left to
 * the caller: call parser_read_word() again). An empty line gives PARSE_ERROR with tag NULL.
 * A line with only a tag (or a bad tag) gives PARSE_ERROR: *tag_r is the tag if one was
 * read (for the BAD), else NULL.
 */
enum parse_status parser_begin(struct parser *p, const char **tag_r, const char **name_r);

/* Reads one more word (SP then atom), upper-cased; for "UID FETCH". */
enum parse_status parser_read_word(struct parser *p, const char **word_r);

/*
 * Parses the rest of the command into *args_r (NULL when there are none). With
 * PARSE_STREAM, a literal at the top level ends the call with PARSE_LITERAL: the last
 * argument is ARG_LITERAL_SIZE and the caller must call parser_literal_accept() and read
 * exactly literal_size bytes from the transport, or parser_discard(). Calling this again
 * after the literal continues the same command (its arguments start a new list).
 */
enum parse_status parser_read_args(struct parser *p, int flags, struct imap_arg **args_r);

/* Tells the client to send a synchronising literal ("+ Ready"); nothing for {n+}. */
int	parser_literal_accept(struct parser *p);

/*
 * Drops the rest of the command: the current line, and for a pending non-synchronising
 * literal its bytes and the lines after it. The pending literal, if any, was not accepted.
 * Returns PARSE_OK, PARSE_IO, or PARSE_TOOLONG when a literal exceeds discard_max.
 */
enum parse_status parser_discard(struct parser *p);

/* Overwrites the command's arguments and the transport's consumed input with zeros
 * (after a password has been used). */
void	parser_wipe(struct parser *p);

/* True when the command has been read to its end. */
bool	parser_done(const struct parser *p);

const char *parser_error(const struct parser *p);
enum io_status parser_io_status(const struct parser *p);
/* The tag of the command being read (for BAD after an error), or NULL. */
const char *parser_tag(const struct parser *p);

/* Argument helpers. */
bool	arg_is_atom(const struct imap_arg *a, const char *word);	/* case-insensitive */
bool	arg_is_nil(const struct imap_arg *a);
bool	arg_is_astring(const struct imap_arg *a);	/* atom or string */
/* The text of an atom or string with no embedded NUL, else NULL. */
const char *arg_cstring(const struct imap_arg *a);
size_t	arg_count(const struct imap_arg *a);

/*
 * Sequence sets (RFC 3501 9: sequence-set). Ranges are normalised low..high; '*' is
 * SEQ_STAR, above every number (4294967295 is a valid UID), until the caller resolves it.
 * seqset_parse() returns false on bad syntax (empty, zero, overflow, stray characters).
 */
struct seq_range {
	uint64_t lo, hi;
};
struct seqset {
	struct seq_range *r;
	size_t		n;
};
#define SEQ_STAR	((uint64_t)1 << 32)
/* Allocates set_r->r (free with seqset_clear()); at most one range per two input bytes. */
bool	seqset_parse(const char *s, struct seqset *set_r);
void	seqset_clear(struct seqset *set);
/* True when n is in the set, with '*' standing for star (the largest number in use). */
bool	seqset_contains(const struct seqset *set, uint32_t n, uint32_t star);

#endif
