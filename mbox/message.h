/*
 * message.h: the RFC 5322 / MIME model of one message.
 *
 * Store-independent and free of IMAP wire syntax.  Input is one message as bytes (typically
 * mapped from an mbox file), with LF, CRLF or mixed line ends.  Clients see CRLF, so every size
 * this module reports counts each bare LF as two octets ("visible" sizes), and the writer
 * converts bare LF to CRLF on the way out.
 *
 * Parsing reads the header and the lines that can be MIME boundaries once, allocates per part
 * (never per byte) and is bounded by the limits below; beyond a limit the rest of the input is
 * treated as opaque body, so every input gets an answer.
 */
#ifndef MBOX_MESSAGE_H
#define MBOX_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Limits.  Real mail nests a handful of levels and has tens of parts; these leave plenty of room
 * while keeping hostile input (nesting thousands deep, millions of parts) cheap.
 */
/* Nesting of multipart and message/rfc822 entities; a deeper multipart becomes an opaque leaf. */
#define MSG_MAX_DEPTH		64
/* Parts per message, all levels; past it the rest of the message is one opaque body. */
#define MSG_MAX_PARTS		5000
/* Header fields considered per header; lines after the last one belong to it. */
#define MSG_MAX_HEADER_FIELDS	2000
/* Parameters kept per Content-Type or Content-Disposition field; the rest are dropped. */
#define MSG_MAX_PARAMS		64
/* RFC 2046 5.1.1 allows 70 characters; longer ones are accepted up to this. */
#define MSG_MAX_BOUNDARY	200

/*
 * Predicate for top-level header fields the store hides from clients (X-UID, Status, ...).
 * name is the field name as sent (not NUL-terminated), without the colon.  Return true to hide.
 * Hidden fields count in no size, line count or header output of the top-level message.
 */
typedef bool msg_hide_fn(const char *name, size_t name_len, void *ctx);

/* One parameter of Content-Type or Content-Disposition.  Names are as sent, so RFC 2231 names
 * like "filename*0*" stay as they are; values are unquoted (quoted-pair escapes removed). */
struct msg_param {
	const char *name;
	const char *value;
};

/*
 * ENVELOPE material (RFC 3501 7.4.2): the first occurrence of each field, unfolded (the CRLF of
 * each fold removed, the WSP kept), leading and trailing white space removed, otherwise raw:
 * encoded words stay encoded.  NULL when the field is absent, "" when present and empty.
 * Addresses are parsed by address.h.
 */
struct msg_envelope {
	const char *date;
	const char *subject;
	const char *from;
	const char *sender;
	const char *reply_to;
	const char *to;
	const char *cc;
	const char *bcc;
	const char *in_reply_to;
	const char *message_id;
};

enum msg_part_kind {
	MSG_PART_LEAF,		/* anything that is not one of the two below */
	MSG_PART_MULTIPART,	/* children are the body parts */
	MSG_PART_MESSAGE	/* message/rfc822: one child, the encapsulated message */
};

/* Part flags. */
#define MSG_PART_NO_FINAL_BOUNDARY	0x01	/* multipart ended without its close delimiter */
#define MSG_PART_TRUNCATED		0x02	/* a limit was hit inside: the rest is opaque */
#define MSG_PART_SYNTHETIC		0x04	/* empty part made up for a multipart with none */
#define MSG_PART_DEFAULT_TYPE		0x08	/* no valid Content-Type: the default was used */
#define MSG_PART_HEADER_NO_BLANK	0x10	/* header not ended by an empty line */

/*
 * One MIME entity.  Offsets are relative to the start of the message bytes.  The header range
 * includes the empty line that ends it; the body range excludes the line end before a boundary
 * (RFC 2046 5.1.1: it belongs to the boundary).  A message/rfc822 part's child is the
 * encapsulated message: its header is that message's header, its body that message's body, and
 * it carries that message's envelope.
 *
 * Strings are NUL-terminated and owned by the struct msg; type and subtype are as sent (or the
 * defaults "text"/"plain", "message"/"rfc822" in multipart/digest); other strings are NULL when
 * the field is absent.
 */
struct msg_part {
	const struct msg_part *parent;
	const struct msg_part *children;	/* first child */
	const struct msg_part *next;		/* next sibling */
	unsigned int nchildren;
	unsigned int depth;			/* 0 for the top-level message */
	unsigned int flags;
	enum msg_part_kind kind;

	size_t header_off, header_len;		/* raw bytes */
	size_t body_off, body_len;		/* raw bytes */
	size_t header_size;			/* visible octets (top level: hidden fields excluded) */
	size_t header_lines;			/* line ends in the visible header */
	size_t body_size;			/* visible octets */
	size_t body_lines;			/* line ends (LF) in the body */

	const char *type, *subtype;
	const struct msg_param *params;
	unsigned int nparams;
	const char *id;				/* Content-ID */
	const char *description;		/* Content-Description */
	const char *encoding;			/* Content-Transfer-Encoding, NULL = 7bit */
	const char *md5;			/* Content-MD5 */
	const char *disposition;		/* Content-Disposition value, NULL if absent */
	const struct msg_param *disp_params;
	unsigned int ndisp_params;
	const char *language;			/* Content-Language, unfolded, as sent */
	const char *location;			/* Content-Location, unfolded, white space removed */

	/* Set on the top-level part and on every child of a message/rfc822 part. */
	const struct msg_envelope *envelope;
};

struct msg;

/* Content-Transfer-Encoding values, in this order so that <= MSG_CTE_BINARY means identity. */
enum msg_cte {
	MSG_CTE_7BIT,
	MSG_CTE_8BIT,
	MSG_CTE_BINARY,
	MSG_CTE_BASE64,
	MSG_CTE_QP,
	MSG_CTE_UNKNOWN		/* x-uuencode and the like: BINARY answers [UNKNOWN-CTE] */
};

/* The encoding named by a part's encoding string (NULL means 7bit), case-insensitive. */
enum msg_cte msg_cte_parse(const char *encoding);

/*
 * Parse one message.  data must stay valid and unchanged while the result is used (see
 * msg_rebase when the same bytes move).  hide may be NULL.  Never fails on malformed input;
 * aborts only when memory runs out.  Free with msg_free.
 */
struct msg *msg_parse(const unsigned char *data, size_t len, msg_hide_fn *hide, void *hide_ctx);
/*
 * The same for uses that need only the top-level header (header sections, TEXT, the whole
 * message, ENVELOPE, header SEARCH keys): the body is not read at all and the root is always a
 * leaf (its type still as sent).  The root's body_size and body_lines are not computed: use
 * msg_size(), msg_root_body_size() and sections, which count when asked.
 */
struct msg *msg_parse_header(const unsigned char *data, size_t len, msg_hide_fn *hide,
			     void *hide_ctx);
void msg_free(struct msg **msgp);
/* Point the parsed message at another copy of the same bytes (e.g. after a remap). */
void msg_rebase(struct msg *msg, const unsigned char *data);

const unsigned char *msg_data(const struct msg *msg);
size_t msg_data_len(const struct msg *msg);
/* The top-level part; never NULL.  Valid until msg_free. */
const struct msg_part *msg_root(const struct msg *msg);
/* RFC822.SIZE: visible header (hidden fields excluded) plus visible body. */
size_t msg_size(const struct msg *msg);
/* The visible size of the top-level body (counted now after msg_parse_header). */
size_t msg_root_body_size(const struct msg *msg);
/* Is a top-level field of this name hidden by the predicate given to msg_parse? */
bool msg_field_hidden(const struct msg *msg, const char *name, size_t len);
/* Number of parts in the tree, and whether a limit cut the parse short. */
unsigned int msg_part_count(const struct msg *msg);
bool msg_truncated(const struct msg *msg);

/* Case-insensitive ASCII comparisons of a string with a NUL-terminated name. */
bool msg_name_eq(const char *s, size_t len, const char *name);
/* The value of parameter name (case-insensitive) in params, or NULL. */
const char *msg_param_get(const struct msg_param *params, unsigned int n, const char *name);

/*
 * Header fields.  The iterator walks a header (a range that may include the empty line ending
 * it) field by field; it allocates nothing.  After MSG_MAX_HEADER_FIELDS fields, the next field
 * extends to the end of the header.  A line without a colon is a field whose name is the whole
 * line and whose value is empty.
 */
struct msg_field {
	const char *name;		/* as sent, without trailing WSP and colon */
	size_t name_len;
	const char *value;		/* raw, after the colon, with folds, without the last EOL */
	size_t value_len;
	size_t off;			/* the whole field, its line ends included, relative to */
	size_t len;			/* the start of the header given to the iterator */
};

struct msg_hdr_iter {
	const unsigned char *hdr;
	size_t len, pos;
	unsigned int count;
};

void msg_hdr_iter_init(struct msg_hdr_iter *it, const unsigned char *hdr, size_t len);
/* Returns false at the end of the header (the empty line or the end of the range). */
bool msg_hdr_next(struct msg_hdr_iter *it, struct msg_field *field_r);
/* First field called name (case-insensitive) in the header; false if there is none. */
bool msg_hdr_find(const unsigned char *hdr, size_t len, const char *name,
		  struct msg_field *field_r);
/*
 * Unfold a raw value into out (capacity at least len + 1): the CR LF or LF of each fold is
 * removed, the WSP after it kept, leading and trailing WSP trimmed, NUL-terminated.  Returns the
 * length written.
 */
size_t msg_unfold(const char *value, size_t len, char *out);

/*
 * Sections (RFC 3501 6.4.5 BODY[section]).  A section resolves to a list of byte slices (most
 * often one range of the mapped message; a header subset gives several, and a synthetic CRLF may
 * be among them) plus the visible size.
 */
enum msg_sect {
	MSG_SECT_FULL,			/* BODY[] or BODY[1.2]: the part's body / whole message */
	MSG_SECT_HEADER,
	MSG_SECT_HEADER_FIELDS,
	MSG_SECT_HEADER_FIELDS_NOT,
	MSG_SECT_TEXT,
	MSG_SECT_MIME
};

struct msg_section_spec {
	const unsigned int *path;	/* part numbers, each >= 1 */
	size_t npath;
	enum msg_sect kind;
	const char *const *fields;	/* for the HEADER.FIELDS forms */
	size_t nfields;
};

struct msg_slice {
	const unsigned char *p;
	size_t len;
};

struct msg_body {
	struct msg_slice *slices;	/* owned; msg_body_clear frees */
	size_t nslices, cap;
	size_t size;			/* visible octets */
	const struct msg_part *part;	/* the part the section names (NULL for the top level) */
};

/* Error codes of msg_section (negated errno values). */
#define MSG_ENOPART	(-2)	/* -ENOENT: no such part */
#define MSG_ENOTMSG	(-22)	/* -EINVAL: HEADER/TEXT on a part that is not message/rfc822,
				   or MIME without a part number */

/*
 * Resolve a section.  On success returns 0 and fills *body_r (initialise it with
 * MSG_BODY_INIT or zero it first; previous contents are replaced).  Otherwise returns
 * MSG_ENOPART or MSG_ENOTMSG and leaves *body_r empty.  The slices point into the message
 * bytes: valid while they are.
 */
#define MSG_BODY_INIT { NULL, 0, 0, 0, NULL }
int msg_section(const struct msg *msg, const struct msg_section_spec *spec,
		struct msg_body *body_r);
void msg_body_clear(struct msg_body *body);

/* The slices of a whole part: header (MIME header or message header) and body. */
void msg_part_full(const struct msg *msg, const struct msg_part *part, struct msg_body *body_r);

/*
 * Partial fetch <origin.length> over a visible size: the start and length that remain
 * (length 0 when origin is past the end).
 */
void msg_partial(size_t size, uint64_t origin, uint64_t length, size_t *start_r, size_t *len_r);

/*
 * Writer: returns 0 or a nonzero value that stops the write and is passed back.
 */
typedef int msg_write_fn(void *ctx, const void *p, size_t len);

/*
 * Write the visible bytes [start, start + len) of body (len clipped to its size), converting
 * every bare LF to CRLF, in as few calls as possible without copying (a bare LF produces a
 * separate "\r\n" call).  Returns 0 or the first nonzero value of write.
 */
int msg_body_write(const struct msg_body *body, size_t start, size_t len,
		   msg_write_fn *write, void *ctx);

/* Visible size of raw bytes: length plus the number of bare LFs (an LF at p[0] is bare). */
size_t msg_visible_size(const unsigned char *p, size_t len);

/*
 * Date: parse an RFC 5322 date-time (obsolete forms included: two- and three-digit years,
 * named zones, missing seconds or weekday, comments, extra white space).  On success returns 0,
 * *t_r is the UTC time and *tz_min_r the zone offset in minutes east of UTC (0 for unknown
 * zones, RFC 5322 4.3); returns -1 when no date can be found.
 */
int msg_date_parse(const char *s, size_t len, time_t *t_r, int *tz_min_r);

#endif
