/*
 * message-cache.h: what a session keeps of each message it has parsed, so that later
 * commands need not parse it again.
 *
 * Two things are kept per message, both bounded by a byte budget for the whole cache:
 *
 *   - a header index: where the fields ENVELOPE is made of (Date, Subject, From, Sender,
 *     Reply-To, To, Cc, Bcc, In-Reply-To, Message-ID) start and end, and where the header
 *     ends.  With it, BODY[HEADER.FIELDS (...)] of those fields and SEARCH on them read only
 *     the bytes of the fields asked for instead of the whole header;
 *   - rendered text (the ENVELOPE, BODY and BODYSTRUCTURE answers), opaque bytes to this
 *     module, so a second FETCH of them does not parse the message again.
 *
 * Like message.h this is store-independent: the caller names each message by a slot number
 * (its index in the mailbox) and a key that changes whenever the message's bytes may have
 * moved (its UID, file offset and length).  An entry whose key differs is replaced, so a
 * renumbering (EXPUNGE) or a rewrite of the file needs no explicit invalidation.  Index
 * entries are also checked against the bytes on every use: a field that is not where the
 * index says makes the lookup fail, and the caller falls back to a full parse.
 */
#ifndef MBOX_MESSAGE_CACHE_H
#define MBOX_MESSAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbox/message.h"

/*
 * Bytes the cache may hold in all (entries, rendered text, the slot array).  A message's
 * entry with its index takes about 200 bytes; past the budget new messages are simply not
 * cached (nothing is evicted, so a scan over a bigger mailbox cannot thrash).  Small on
 * purpose: it holds the answers of a client's message list a screen or two long (about
 * 200 ENVELOPE+BODYSTRUCTURE texts), the whole process keeps under 200 bytes of private
 * memory per message at 10,000 messages, and at 100,000 messages the fetches and searches
 * it would serve ran as fast without it (the header fields are read straight from the
 * mapped file).
 */
#define MSG_CACHE_MAX_BYTES		(256u << 10)
/* Of that, bytes of rendered text (ENVELOPE+BODYSTRUCTURE run to about 1 KB a message). */
#define MSG_CACHE_TEXT_MAX_BYTES	(8u << 20)
/* Indexed fields per message; a header with more of them (a forgery) is not indexed. */
#define MSG_HINDEX_MAX_FIELDS		64

/* The fields the header index records, in no particular order. */
enum msg_hkind {
	MSG_H_DATE, MSG_H_SUBJECT, MSG_H_FROM, MSG_H_SENDER, MSG_H_REPLY_TO, MSG_H_TO,
	MSG_H_CC, MSG_H_BCC, MSG_H_IN_REPLY_TO, MSG_H_MESSAGE_ID,
	MSG_H_COUNT
};

/* The kind of a field name (case-insensitive, as sent, without the colon), or -1. */
int msg_hkind(const char *name, size_t len);

/* One indexed field; offsets are relative to the start of the message bytes. */
struct msg_hfield {
	uint32_t off;		/* the field's first byte */
	uint32_t len;		/* the whole field, continuation lines and line end included */
	uint16_t voff;		/* the value starts at off + voff (just after the colon) */
	uint8_t vtrim;		/* line end bytes ending the field (not in the value) */
	uint8_t kind;		/* enum msg_hkind */
};

/*
 * The index of one message's top-level header, as msg_parse_header() would see it for the
 * same bytes with the same hide predicate: fields in header order (hidden ones left out).
 */
struct msg_hindex {
	uint32_t header_len;	/* the root part's header_len */
	uint32_t blank_off;	/* where the empty line ending the header starts (= header_len
				   when there is none) */
	uint16_t nfields;
	struct msg_hfield f[];
};

/*
 * Index the header of one message (data, len: the bytes msg_parse_header() would get).
 * Returns a malloc'd index (free()), or NULL when the header cannot be indexed exactly (more
 * than MSG_MAX_HEADER_FIELDS fields or MSG_HINDEX_MAX_FIELDS indexed ones, offsets past 4 GB);
 * the caller then parses.  hide may be NULL.
 */
struct msg_hindex *msg_hindex_build(const unsigned char *data, size_t len, msg_hide_fn *hide,
				    void *hide_ctx);

/*
 * Field k of the index as msg_hdr_next() gives it (offsets relative to data), after checking
 * that data still holds a complete field of that name there.  False when it does not (the
 * bytes changed under the index).
 */
bool msg_hindex_field(const struct msg_hindex *hx, const unsigned char *data, size_t len,
		      unsigned int k, struct msg_field *field_r);

/* Can msg_hindex_section() answer spec?  (Top-level HEADER.FIELDS of indexed fields only.) */
bool msg_hindex_covers(const struct msg_section_spec *spec);

/*
 * The same as msg_section() would give for a spec msg_hindex_covers(): the listed fields in
 * header order, then the empty line.  Returns 0 and fills *body_r (as msg_section), or -1
 * when data no longer matches the index (body_r is then empty).
 */
int msg_hindex_section(const struct msg_hindex *hx, const unsigned char *data, size_t len,
		       const struct msg_section_spec *spec, struct msg_body *body_r);

/* ---- the per-session cache ---- */

/* What identifies a message's bytes: any change means the cached entry is stale. */
struct msg_cache_key {
	uint64_t off;		/* where the bytes are (e.g. a file offset) */
	uint64_t len;
	uint32_t uid;
};

/* Kinds of rendered text. */
enum msg_ctext {
	MSG_CTEXT_ENVELOPE, MSG_CTEXT_BODY, MSG_CTEXT_BODYSTRUCTURE,
	MSG_CTEXT_COUNT
};

struct msg_cache;

/* A new empty cache holding at most max_bytes (MSG_CACHE_MAX_BYTES is meant). */
struct msg_cache *msg_cache_new(size_t max_bytes);
/* Free everything; sets *cachep to NULL.  No-op for NULL. */
void msg_cache_free(struct msg_cache **cachep);
/* Drop every entry (e.g. when all messages may have moved). */
void msg_cache_clear(struct msg_cache *cache);
/* Bytes held now (for tests and logs). */
size_t msg_cache_bytes(const struct msg_cache *cache);

/*
 * The header index of the message in slot (data, len: its bytes, as for msg_hindex_build):
 * the cached one if its key matches, else built now and kept if the budget allows.  NULL
 * when the header cannot be indexed.  The pointer is valid until the next call on the cache.
 */
const struct msg_hindex *msg_cache_hindex(struct msg_cache *cache, uint32_t slot,
					  const struct msg_cache_key *key,
					  const unsigned char *data, size_t len,
					  msg_hide_fn *hide, void *hide_ctx);

/*
 * Rendered text of a kind for the message in slot, if cached under this key: *p_r and *len_r
 * point into the cache (valid until the next call on it).  Returns false if not cached.
 */
bool msg_cache_text(const struct msg_cache *cache, uint32_t slot,
		    const struct msg_cache_key *key, enum msg_ctext kind, const char **p_r,
		    size_t *len_r);
/* Keep rendered text (copied) for the message in slot, if the budget allows. */
void msg_cache_put_text(struct msg_cache *cache, uint32_t slot, const struct msg_cache_key *key,
			enum msg_ctext kind, const char *p, size_t len);

#endif
