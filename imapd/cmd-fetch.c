/*
 * cmd-fetch.c: FETCH and UID FETCH (RFC 3501 6.4.5, 7.4.2; BINARY from RFC 3516).
 *
 * Items are parsed once into a list, then each named message is parsed (header and MIME
 * boundaries only) if an item needs its structure, and bodies stream from the mapped file
 * through the message model's CRLF writer.  Non-PEEK body items set \Seen in a read-write
 * mailbox; the change is committed before the tagged OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd/command.h"
#include "imapd/condstore.h"
#include "imapd/fetch-render.h"
#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"
#include "mbox/decode.h"
#include "mbox/message.h"
#include "mbox/message-cache.h"

/* Items in one FETCH; RFC 3501 has about twenty kinds, so this is generous. */
#define FETCH_MAX_ITEMS	64

enum fitem {
	FI_FLAGS, FI_INTERNALDATE, FI_RFC822_SIZE, FI_UID, FI_ENVELOPE, FI_BODY,
	FI_BODYSTRUCTURE, FI_RFC822, FI_RFC822_HEADER, FI_RFC822_TEXT, FI_MODSEQ, FI_SECTION,
	FI_BINARY, FI_BINARY_SIZE
};

struct item {
	enum fitem kind;
	bool peek;
	bool hx;			/* a section the header index can answer */
	char *text;			/* copy of the atom the section points into */
	char *name;			/* sections: "BODY[...]<n> " as the response names it */
	size_t name_len;
	struct fetch_section sec;
};

struct fetch {
	struct item items[FETCH_MAX_ITEMS];
	size_t n;
	bool need_msg;
	bool need_mime;		/* more than the top-level header: a full MIME parse */
	bool sets_seen;
};

static const struct {
	const char *name;
	enum fitem kind;
} simple_items[] = {
	{ "FLAGS", FI_FLAGS }, { "INTERNALDATE", FI_INTERNALDATE },
	{ "RFC822.SIZE", FI_RFC822_SIZE }, { "UID", FI_UID }, { "ENVELOPE", FI_ENVELOPE },
	{ "BODY", FI_BODY }, { "BODYSTRUCTURE", FI_BODYSTRUCTURE }, { "RFC822", FI_RFC822 },
	{ "RFC822.HEADER", FI_RFC822_HEADER }, { "RFC822.TEXT", FI_RFC822_TEXT },
	{ "MODSEQ", FI_MODSEQ },
};

/* The name a section item is answered under, made once per command (not per message). */
static void
make_section_name(struct item *it)
{
	const char *prefix = it->kind == FI_SECTION ? "BODY" :
			     it->kind == FI_BINARY ? "BINARY" : "BINARY.SIZE";
	char num[32];
	struct dbuf b;

	dbuf_init(&b, SIZE_MAX);
	dbuf_add(&b, prefix, strlen(prefix));
	dbuf_add(&b, "[", 1);
	fetch_section_name(&b, &it->sec);
	dbuf_add(&b, "]", 1);
	if (it->sec.partial) {
		int n = snprintf(num, sizeof(num), "<%llu>", (unsigned long long)it->sec.origin);

		dbuf_add(&b, num, (size_t)n);
	}
	dbuf_add(&b, " ", 1);
	it->name = malloc(b.len + 1);
	if (it->name == NULL)
		abort();
	memcpy(it->name, b.data, b.len + 1);
	it->name_len = b.len;
	dbuf_free(&b);
}

/* prefix, the decimal number v and suffix, without printf (this runs per message). */
static void
write_num(struct session *s, const char *prefix, uint64_t v, const char *suffix)
{
	char buf[64];
	size_t pl = strlen(prefix), sl = strlen(suffix), i = sizeof(buf);

	if (pl + sl + 20 > sizeof(buf)) {
		resp_printf(s, "%s%llu%s", prefix, (unsigned long long)v, suffix);
		return;
	}
	i -= sl;
	memcpy(buf + i, suffix, sl);
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	i -= pl;
	memcpy(buf + i, prefix, pl);
	resp_raw(s, buf + i, sizeof(buf) - i);
}

static void
fetch_clear(struct fetch *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->items[i].text);
		free(f->items[i].name);
	}
	f->n = 0;
}

static int
add_item(struct fetch *f, enum fitem kind)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (f->items[i].kind == kind && kind < FI_SECTION)
			return 0;	/* once is enough */
	}
	if (f->n >= FETCH_MAX_ITEMS)
		return -1;
	memset(&f->items[f->n], 0, sizeof(f->items[0]));
	f->items[f->n++].kind = kind;
	if (kind != FI_FLAGS && kind != FI_INTERNALDATE && kind != FI_RFC822_SIZE &&
	    kind != FI_UID && kind != FI_MODSEQ)
		f->need_msg = true;
	if (kind == FI_BODY || kind == FI_BODYSTRUCTURE)
		f->need_mime = true;
	if (kind == FI_RFC822 || kind == FI_RFC822_TEXT)
		f->sets_seen = true;
	return 0;
}

/* One fetch-att atom. */
static int
parse_att(struct fetch *f, const struct imap_arg *a)
{
	static const struct {
		const char *prefix;
		enum fitem kind;
		bool peek;
	} sect[] = {
		{ "BODY.PEEK[", FI_SECTION, true }, { "BODY[", FI_SECTION, false },
		{ "BINARY.PEEK[", FI_BINARY, true }, { "BINARY[", FI_BINARY, false },
		{ "BINARY.SIZE[", FI_BINARY_SIZE, true },
	};
	size_t i;

	if (a->type != ARG_ATOM)
		return -1;
	for (i = 0; i < sizeof(simple_items) / sizeof(simple_items[0]); i++) {
		if (arg_is_atom(a, simple_items[i].name))
			return add_item(f, simple_items[i].kind);
	}
	for (i = 0; i < sizeof(sect) / sizeof(sect[0]); i++) {
		size_t pl = strlen(sect[i].prefix);
		struct item *it;
		char *p;

		if (a->len < pl || strncasecmp(a->str, sect[i].prefix, pl) != 0)
			continue;
		if (f->n >= FETCH_MAX_ITEMS)
			return -1;
		it = &f->items[f->n];
		memset(it, 0, sizeof(*it));
		it->kind = sect[i].kind;
		it->peek = sect[i].peek;
		it->text = strdup(a->str + pl - 1);
		if (it->text == NULL)
			abort();
		p = it->text;
		if (fetch_section_parse(&p, it->kind != FI_SECTION, &it->sec) < 0 || *p != '\0' ||
		    (it->kind == FI_BINARY_SIZE && it->sec.partial)) {
			free(it->text);
			return -1;
		}
		make_section_name(it);
		f->n++;
		f->need_msg = true;
		it->hx = it->kind == FI_SECTION && msg_hindex_covers(&it->sec.spec);
		if (it->sec.spec.npath > 0 || it->kind != FI_SECTION)
			f->need_mime = true;	/* BINARY sizes come from the full parse */
		if (!it->peek)
			f->sets_seen = true;
		return 0;
	}
	return -1;
}

static int
parse_items(struct fetch *f, const struct imap_arg *a)
{
	memset(f, 0, sizeof(*f));
	if (a == NULL)
		return -1;
	if (a->type == ARG_LIST) {
		if (a->list == NULL)
			return -1;
		for (a = a->list; a != NULL; a = a->next) {
			if (parse_att(f, a) < 0)
				return -1;
		}
		return 0;
	}
	/* macros (RFC 3501 6.4.5) */
	if (arg_is_atom(a, "ALL") || arg_is_atom(a, "FAST") || arg_is_atom(a, "FULL")) {
		add_item(f, FI_FLAGS);
		add_item(f, FI_INTERNALDATE);
		add_item(f, FI_RFC822_SIZE);
		if (!arg_is_atom(a, "FAST"))
			add_item(f, FI_ENVELOPE);
		if (arg_is_atom(a, "FULL"))
			add_item(f, FI_BODY);
		return 0;
	}
	return parse_att(f, a);
}

/* ---- output ---- */

struct out {
	struct session *s;
	bool nul;
	size_t n;
};

static int
to_client(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;

	resp_raw(o->s, p, n);
	return 0;
}

static int
scan_nul(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;

	if (memchr(p, '\0', n) != NULL)
		o->nul = true;
	o->n += n;
	return 0;
}

static void
write_body(struct session *s, const struct msg_body *body, const struct fetch_section *sec)
{
	size_t start = 0, len = body->size;
	struct out o = { s, false, 0 };

	if (sec != NULL && sec->partial)
		msg_partial(body->size, sec->origin, sec->length, &start, &len);
	write_num(s, "{", len, "}\r\n");
	if (len > 0)
		(void)msg_body_write(body, start, len, to_client, &o);
}

static void
write_internaldate(struct session *s, const struct mbox *mb, uint32_t i)
{
	static const char *const mon[12] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	int tz;
	time_t t = mbox_msg_date(mb, i, &tz), lt = t + (time_t)tz * 60;
	struct tm tm;
	int az = tz < 0 ? -tz : tz;

	gmtime_r(&lt, &tm);
	resp_printf(s, "INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d %c%02d%02d\"", tm.tm_mday,
		    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    tz < 0 ? '-' : '+', az / 60, az % 60);
}

/* The leaf (or whole part) BINARY names; NULL if there is none. */
static const struct msg_part *
binary_part(const struct msg *msg, const struct fetch_section *sec, struct msg_body *body)
{
	if (sec->spec.npath == 0)
		return msg_root(msg);
	if (msg_section(msg, &sec->spec, body) != 0)
		return NULL;
	return body->part;
}

static void
write_binary(struct session *s, const struct msg *msg, const struct item *it)
{
	struct msg_body body = MSG_BODY_INIT;
	const struct msg_part *p = binary_part(msg, &it->sec, &body);
	struct out o = { s, false, 0 };
	size_t start = 0, len;

	msg_body_clear(&body);
	if (it->kind == FI_BINARY_SIZE) {
		size_t size = 0;

		if (p != NULL)
			(void)msg_decoded_size(msg, p, &size);
		resp_printf(s, "%zu", size);
		return;
	}
	if (p == NULL) {
		resp_printf(s, "NIL");
		return;
	}
	/* first pass: the size, and whether a literal8 is needed (RFC 3516 4.2) */
	(void)msg_decoded_write(msg, p, 0, SIZE_MAX, scan_nul, &o);
	len = o.n;
	if (it->sec.partial)
		msg_partial(o.n, it->sec.origin, it->sec.length, &start, &len);
	resp_printf(s, "%s{%zu}\r\n", o.nul ? "~" : "", len);
	if (len > 0)
		(void)msg_decoded_write(msg, p, start, len, to_client, &o);
}

/*
 * One message being answered.  The bytes are found cheaply (mbox_msg_range); the parse and
 * the header index are made only when an item needs them, and the index and rendered
 * ENVELOPE/BODY/BODYSTRUCTURE are kept in the selection's cache for later commands.
 */
struct fmsg {
	struct selected *sel;
	uint32_t i;
	const unsigned char *data;
	size_t len;
	struct msg_cache_key key;
	bool mime;
	struct msg *msg;
	const struct msg_hindex *hx;
	bool hx_done;
};

static bool
hide(const char *name, size_t len, void *ctx)
{
	(void)ctx;
	return mbox_header_is_hidden(name, len) != 0;
}

static void
fmsg_init(struct fmsg *m, struct selected *sel, uint32_t i, bool mime)
{
	size_t hl;

	memset(m, 0, sizeof(*m));
	m->sel = sel;
	m->i = i;
	m->mime = mime;
	(void)mbox_msg_range(sel->mb, i, &m->data, &m->len, &hl, &m->key.off);
	m->key.len = m->len;
	m->key.uid = mbox_msg_uid(sel->mb, i);
}

static const struct msg *
fmsg_msg(struct fmsg *m)
{
	if (m->msg == NULL)
		m->msg = m->mime ? msg_parse(m->data, m->len, hide, NULL) :
			 msg_parse_header(m->data, m->len, hide, NULL);
	return m->msg;
}

static const struct msg_hindex *
fmsg_hindex(struct fmsg *m)
{
	if (!m->hx_done) {
		m->hx = msg_cache_hindex(selected_cache(m->sel), m->i, &m->key, m->data, m->len,
					 hide, NULL);
		m->hx_done = true;
	}
	return m->hx;
}

static void
write_rendered(struct session *s, struct fmsg *m, enum fitem kind)
{
	enum msg_ctext ck = kind == FI_ENVELOPE ? MSG_CTEXT_ENVELOPE :
			    kind == FI_BODY ? MSG_CTEXT_BODY : MSG_CTEXT_BODYSTRUCTURE;
	struct msg_cache *cache = selected_cache(m->sel);
	const char *p;
	size_t len;
	struct dbuf b;

	resp_printf(s, "%s ", kind == FI_ENVELOPE ? "ENVELOPE" :
		    kind == FI_BODY ? "BODY" : "BODYSTRUCTURE");
	if (msg_cache_text(cache, m->i, &m->key, ck, &p, &len)) {
		resp_raw(s, p, len);
		return;
	}
	dbuf_init(&b, SIZE_MAX);
	if (kind == FI_ENVELOPE)
		fetch_render_envelope(&b, msg_root(fmsg_msg(m))->envelope);
	else
		fetch_render_bodystructure(&b, msg_root(fmsg_msg(m)), kind == FI_BODYSTRUCTURE);
	resp_raw(s, b.data, b.len);
	msg_cache_put_text(cache, m->i, &m->key, ck, b.data, b.len);
	dbuf_free(&b);
	/* the header is at hand now: index it for HEADER.FIELDS and SEARCH later */
	(void)fmsg_hindex(m);
}

/* Could the cache answer this item without a parse? */
static bool
cached_item(struct fmsg *m, const struct item *it)
{
	enum msg_ctext ck;
	const char *p;
	size_t len;

	switch (it->kind) {
	case FI_FLAGS:
	case FI_INTERNALDATE:
	case FI_RFC822_SIZE:
	case FI_UID:
		return true;
	case FI_ENVELOPE:
	case FI_BODY:
	case FI_BODYSTRUCTURE:
		ck = it->kind == FI_ENVELOPE ? MSG_CTEXT_ENVELOPE :
		     it->kind == FI_BODY ? MSG_CTEXT_BODY : MSG_CTEXT_BODYSTRUCTURE;
		return msg_cache_text(selected_cache(m->sel), m->i, &m->key, ck, &p, &len);
	case FI_SECTION:
		return it->hx;
	default:
		return false;
	}
}

static void
write_item(struct session *s, struct fmsg *m, const struct item *it)
{
	struct selected *sel = m->sel;
	uint32_t i = m->i;
	struct msg_body body = MSG_BODY_INIT;
	struct msg_section_spec spec = { NULL, 0, MSG_SECT_FULL, NULL, 0 };
	const struct msg_hindex *hx;

	switch (it->kind) {
	case FI_FLAGS:
		resp_printf(s, "FLAGS ");
		selected_write_flags(s, sel->mb, i);
		return;
	case FI_INTERNALDATE:
		write_internaldate(s, sel->mb, i);
		return;
	case FI_RFC822_SIZE:
		write_num(s, "RFC822.SIZE ", mbox_msg_size(sel->mb, i), "");
		return;
	case FI_UID:
		write_num(s, "UID ", mbox_msg_uid(sel->mb, i), "");
		return;
	case FI_MODSEQ:
		write_num(s, "MODSEQ (", mbox_msg_modseq(sel->mb, i), ")");
		return;
	case FI_ENVELOPE:
	case FI_BODY:
	case FI_BODYSTRUCTURE:
		write_rendered(s, m, it->kind);
		return;
	case FI_RFC822:
	case FI_RFC822_HEADER:
	case FI_RFC822_TEXT:
		spec.kind = it->kind == FI_RFC822 ? MSG_SECT_FULL :
			    it->kind == FI_RFC822_HEADER ? MSG_SECT_HEADER : MSG_SECT_TEXT;
		(void)msg_section(fmsg_msg(m), &spec, &body);
		resp_printf(s, "%s ", it->kind == FI_RFC822 ? "RFC822" :
			    it->kind == FI_RFC822_HEADER ? "RFC822.HEADER" : "RFC822.TEXT");
		write_body(s, &body, NULL);
		msg_body_clear(&body);
		return;
	case FI_SECTION:
		resp_raw(s, it->name, it->name_len);
		/* header fields the index knows: only their bytes are read */
		if (it->hx && (hx = fmsg_hindex(m)) != NULL &&
		    msg_hindex_section(hx, m->data, m->len, &it->sec.spec, &body) == 0)
			write_body(s, &body, &it->sec);
		else if (msg_section(fmsg_msg(m), &it->sec.spec, &body) != 0)
			resp_printf(s, "\"\"");	/* no such part: empty, as Dovecot answers */
		else
			write_body(s, &body, &it->sec);
		msg_body_clear(&body);
		return;
	case FI_BINARY:
	case FI_BINARY_SIZE:
		resp_raw(s, it->name, it->name_len);
		write_binary(s, fmsg_msg(m), it);
		return;
	}
}

/* RFC 3516 4.2: a part whose encoding is unknown fails the whole command. */
static bool
unknown_cte(const struct msg *msg, const struct fetch *f)
{
	size_t k;

	for (k = 0; k < f->n; k++) {
		const struct item *it = &f->items[k];
		struct msg_body body = MSG_BODY_INIT;
		const struct msg_part *p;
		bool bad;

		if (it->kind != FI_BINARY && it->kind != FI_BINARY_SIZE)
			continue;
		p = binary_part(msg, &it->sec, &body);
		msg_body_clear(&body);
		bad = p != NULL && msg_cte_parse(p->encoding) == MSG_CTE_UNKNOWN;
		if (bad)
			return true;
	}
	return false;
}

void
cmd_fetch(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	const struct imap_arg *set = cmd->args;
	struct fetch f;
	uint8_t *mark, *seen = NULL;
	uint32_t i, n;
	uint64_t since = 0;
	bool any_seen = false, gone = false, changedsince = false, vanished = false;
	const struct imap_arg *mods;

	if (set == NULL || set->type != ARG_ATOM || set->next == NULL ||
	    parse_items(&f, set->next) < 0) {
		fetch_clear(&f);
		resp_bad(cmd, "Invalid FETCH arguments");
		return;
	}
	if ((mods = set->next->next) != NULL) {
		/* fetch-modifiers (RFC 4466 2.4): CHANGEDSINCE n, VANISHED (RFC 7162 3.1.4.1,
		 * 3.2.6) */
		const struct imap_arg *m;

		if (mods->next != NULL || mods->type != ARG_LIST || mods->list == NULL ||
		    !condstore_offered(s))
			goto bad_mods;
		for (m = mods->list; m != NULL; m = m->next) {
			if (arg_is_atom(m, "CHANGEDSINCE") && !changedsince &&
			    condstore_parse_modseq(m->next, true, &since)) {
				changedsince = true;
				m = m->next;
			} else if (arg_is_atom(m, "VANISHED") && !vanished) {
				vanished = true;
			} else {
				goto bad_mods;
			}
		}
		if (vanished && (!cmd->uid || !s->qresync || !changedsince)) {
			fetch_clear(&f);
			resp_bad(cmd, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC");
			return;
		}
	}
	if (changedsince)
		add_item(&f, FI_MODSEQ);	/* implied (3.1.4.1) */
	for (i = 0; i < f.n; i++)
		if (f.items[i].kind == FI_MODSEQ)
			break;
	if (i < f.n) {
		/* 3.1.2.2: BAD in a mailbox without mod-sequences */
		if (!condstore_offered(s) || !mbox_has_modseq(sel->mb)) {
			fetch_clear(&f);
			resp_bad(cmd, "No mod-sequences in this mailbox (NOMODSEQ)");
			return;
		}
		condstore_enable(s);
	}
	if (cmd->uid)
		add_item(&f, FI_UID);
	if (sel->readonly)
		f.sets_seen = false;
	mark = selected_set(sel, set->str, cmd->uid);
	if (mark == NULL) {
		fetch_clear(&f);
		resp_bad(cmd, "Invalid sequence set");
		return;
	}
	n = mbox_count(sel->mb);
	if (f.sets_seen && (seen = calloc((size_t)n + 1, 1)) == NULL)
		fatalx("out of memory");
	/* the bytes are read under the store's read lock; the output is held meanwhile */
	if (selected_read_begin(s) < 0)
		goto failed;
	if (vanished) {
		/* before any FETCH (3.2.6) */
		struct seqset us;

		if (seqset_parse(set->str, &us)) {
			int r = condstore_vanished_earlier(s, &us, since, 0);

			seqset_clear(&us);
			if (r < 0)
				goto failed;
		}
	}
	for (i = 0; i < n; i++) {
		struct fmsg m;
		size_t k;
		bool first = true, flags_sent = false;
		unsigned extra = 0;

		if (!mark[i])
			continue;
		if (changedsince && mbox_msg_modseq(sel->mb, i) <= since)
			continue;
		if (selected_read_pause(s) < 0)
			goto failed;
		if (!mbox_msg_available(sel->mb, i)) {
			/* another program removed it and kept no copy (mbox-gone.c): the rest
			 * is answered, and the tagged NO says so (RFC 2180 4.1.2) */
			gone = true;
			continue;
		}
		fmsg_init(&m, sel, i, f.need_mime);
		if (f.need_msg) {
			bool parse = false;

			for (k = 0; k < f.n && !parse; k++)
				parse = !cached_item(&m, &f.items[k]);
			if (parse)
				(void)fmsg_msg(&m);	/* once, before any output */
		}
		if (m.msg != NULL && unknown_cte(m.msg, &f)) {
			msg_free(&m.msg);
			selected_read_end(s);
			free(mark);
			free(seen);
			fetch_clear(&f);
			resp_no(cmd, "[UNKNOWN-CTE] Cannot decode the content transfer encoding");
			return;
		}
		if (f.sets_seen && !(mbox_msg_flags(sel->mb, i) & MBOX_SEEN)) {
			/* stored once the data is out (below); the FLAGS sent say it already */
			seen[i] = 1;
			any_seen = true;
			extra = MBOX_SEEN;
		} else {
			flags_sent = true;	/* no change to report */
		}
		write_num(s, "* ", i + 1, " FETCH (");
		for (k = 0; k < f.n; k++) {
			if (!first)
				resp_raw(s, " ", 1);
			first = false;
			if (f.items[k].kind == FI_FLAGS) {
				flags_sent = true;
				resp_printf(s, "FLAGS ");
				selected_write_flags_with(s, sel->mb, i, extra);
				continue;
			}
			write_item(s, &m, &f.items[k]);
		}
		if (!flags_sent) {
			/* \Seen was just set: say so (RFC 3501 6.4.5) */
			resp_printf(s, " FLAGS ");
			selected_write_flags_with(s, sel->mb, i, extra);
		}
		resp_raw(s, ")\r\n", 3);
		msg_free(&m.msg);
	}
	selected_read_end(s);
	free(mark);
	fetch_clear(&f);
	/* \Seen added to the flags as they are in the file, not set to what this session
	 * saw (another session may have changed others meanwhile) */
	if (any_seen && mbox_store_flags(sel->mb, seen, n, MBOX_STORE_ADD, MBOX_SEEN, 0) < 0) {
		free(seen);
		selected_store_failed(cmd, "FETCH");
		return;
	}
	if (any_seen && s->condstore) {
		/* RFC 7162 3.2.4: \Seen set by FETCH is told with its new mod-sequence */
		for (i = 0; i < n; i++)
			if (seen[i] && !mbox_msg_gone(sel->mb, i))
				resp_printf(s, "* %u FETCH (UID %u MODSEQ (%llu))\r\n", i + 1,
				    mbox_msg_uid(sel->mb, i),
				    (unsigned long long)mbox_msg_modseq(sel->mb, i));
	}
	free(seen);
	if (gone)
		resp_no(cmd, "[EXPUNGEISSUED] Some of the requested messages no longer exist");
	else
		resp_ok(cmd, "FETCH completed");
	return;
failed:
	selected_read_end(s);
	free(mark);
	free(seen);
	fetch_clear(&f);
	selected_store_failed(cmd, "FETCH");
	return;
bad_mods:
	fetch_clear(&f);
	resp_bad(cmd, "Unknown FETCH modifier");
}
