/*
 * cmd-append.c: APPEND (RFC 3501 6.3.11) with MULTIAPPEND (RFC 3502) and APPENDUID
 * (RFC 4315).  Each literal is streamed from the transport to the store's staging file in
 * chunks, never held whole in memory; the mailbox is locked only for the commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/log.h"
#include "imapd/resp.h"
#include "imapd/selected.h"
#include "mbox/folder.h"

#define APPEND_CHUNK	(64 * 1024)

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE */
static int
parse_date_time(const char *s, size_t n, time_t *t_r, int *tz_r)
{
	static const char mon[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	int d, m, y, hh, mm, ss, z, i;
	struct tm tm;
	char ms[4];

	if (n != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' ||
	    s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
		return -1;
	for (i = 0; i < 26; i++) {
		static const char digit_at[] = "DD-MMM-DDDD DD:DD:DD +DDDD";

		if (digit_at[i] == 'D' && !(s[i] >= '0' && s[i] <= '9') &&
		    !(i == 0 && s[i] == ' '))
			return -1;
	}
	d = (s[0] == ' ' ? 0 : s[0] - '0') * 10 + s[1] - '0';
	for (i = 0; i < 3; i++)
		ms[i] = (char)(s[3 + i] | 0x20);
	ms[3] = 0;
	for (m = 0; m < 12; m++)
		if (memcmp(mon + 3 * m, ms, 3) == 0)
			break;
	y = atoi(s + 7);
	hh = (s[12] - '0') * 10 + s[13] - '0';
	mm = (s[15] - '0') * 10 + s[16] - '0';
	ss = (s[18] - '0') * 10 + s[19] - '0';
	z = ((s[22] - '0') * 10 + s[23] - '0') * 60 + (s[24] - '0') * 10 + s[25] - '0';
	if (m == 12 || d < 1 || d > 31 || y < 1970 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if (s[21] == '-')
		z = -z;
	*t_r = timegm(&tm) - (time_t)z * 60;
	*tz_r = z;
	return 0;
}

static int
parse_flags(struct mbox *mb, const struct imap_arg *l, unsigned *flags, uint64_t *kw)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
		{ "\\Seen", MBOX_SEEN }, { "\\Answered", MBOX_ANSWERED },
		{ "\\Flagged", MBOX_FLAGGED }, { "\\Deleted", MBOX_DELETED },
		{ "\\Draft", MBOX_DRAFT },
	};
	const struct imap_arg *a;
	size_t i;

	for (a = l->list; a != NULL; a = a->next) {
		int idx;

		if (a->type != ARG_ATOM || a->len == 0)
			return -1;
		if (a->str[0] == '\\') {
			for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
				if (strcasecmp(a->str, sys[i].name) == 0)
					break;
			if (i == sizeof(sys) / sizeof(sys[0]))
				return -1;
			*flags |= sys[i].bit;
			continue;
		}
		idx = mbox_keyword_lookup(mb, a->str, a->len, 1);
		if (idx < 0)
			return -1;
		*kw |= 1ULL << idx;
	}
	return 0;
}

/* Stream one literal into the append; the literal is always consumed.  0 or -1. */
static int
stream_literal(struct session *s, struct mbox_append *ap, uint64_t size, int *store_err)
{
	while (size > 0) {
		const unsigned char *p;
		size_t n;
		enum io_status st;

		st = io_read_some(s->io, size < APPEND_CHUNK ? (size_t)size : APPEND_CHUNK, &p,
		    &n);
		if (st != IO_OK)
			return -1;
		if (!*store_err && mbox_append_write(ap, p, n) < 0)
			*store_err = 1;
		size -= n;
	}
	return 0;
}

void
cmd_append(struct command *cmd)
{
	struct session *s = cmd->s;
	struct selected *sel = s->selected;
	struct imap_arg *a = cmd->args;
	struct folder_config fc = { s->mail_dir, s->spool_path, s->home, NULL };
	struct folder_root *root = NULL;
	struct folder_error ferr = { 0 };
	struct folder_ref ref;
	struct mbox_error merr = { 0 };
	struct mbox *mb = NULL, *own = NULL;
	struct mbox_append *ap = NULL;
	char journal[4096];
	const char *name;
	uint32_t first, n;
	int store_err = 0;

	if (a == NULL || !arg_is_astring(a) || (name = arg_cstring(a)) == NULL ||
	    cmd->parse != PARSE_LITERAL) {
		resp_bad(cmd, "APPEND needs a mailbox and a message literal");
		return;
	}
	if (folder_root_new(&fc, &root, &ferr) != FOLDER_OK) {
		resp_no(cmd, "[SERVERBUG] Mail directory misconfigured");
		return;
	}
	if (folder_resolve(root, name, a->len, 0, &ref, &ferr) != FOLDER_OK ||
	    ref.type != FOLDER_T_MAILBOX) {
		folder_root_free(&root);
		/* RFC 3501 6.3.11: TRYCREATE when creating it would help */
		resp_no(cmd, "[TRYCREATE] No such mailbox");
		return;
	}
	folder_root_free(&root);
	if (selected_state_dir(s, journal, sizeof(journal)) != 0) {
		resp_no(cmd, "[SERVERBUG] Cannot make the state directory");
		return;
	}
	if (sel != NULL && !sel->readonly && strcmp(mbox_path(sel->mb), ref.path) == 0) {
		mb = sel->mb;	/* the selected mailbox: its view sees the new mail at once */
	} else {
		if (mbox_open(ref.path, journal, MBOX_OPEN_RW | MBOX_OPEN_KEEP_RECENT |
		    (ref.n.inbox ? MBOX_OPEN_MISSING_OK : 0), &own, &merr) != 0) {
			log_warnx("append %s: %s", ref.path, merr.msg);
			resp_no(cmd, "[%s] Cannot open mailbox", merr.code == ETIMEDOUT ? "INUSE" :
			    "UNAVAILABLE");
			return;
		}
		mb = own;
	}
	if (mbox_append_begin(mb, &ap) < 0) {
		resp_no(cmd, "[UNAVAILABLE] APPEND failed: %s", mbox_error(mb)->msg);
		mbox_free(&own);
		return;
	}
	a = a->next;
	for (;;) {
		unsigned flags = 0;
		uint64_t kw = 0;
		time_t date = time(NULL);
		int tz = 0;
		struct imap_arg *lit;

		if (a != NULL && a->type == ARG_LIST) {
			if (parse_flags(mb, a, &flags, &kw) < 0) {
				resp_bad(cmd, "Invalid flag in APPEND");
				goto fail;
			}
			a = a->next;
		} else {
			struct tm tm;

			if (localtime_r(&date, &tm) != NULL)
				tz = (int)(tm.tm_gmtoff / 60);
		}
		if (a != NULL && a->type == ARG_STRING) {
			if (parse_date_time(a->str, a->len, &date, &tz) < 0) {
				resp_bad(cmd, "Invalid date-time in APPEND");
				goto fail;
			}
			a = a->next;
		}
		lit = a;
		if (lit == NULL || lit->type != ARG_LITERAL_SIZE || lit->next != NULL) {
			resp_bad(cmd, "APPEND needs a message literal");
			goto fail;
		}
		if (lit->literal_size > s->cfg->append_max) {
			resp_no(cmd, "[TOOBIG] Message too big");
			goto fail;
		}
		if (mbox_append_msg_begin(ap, date, tz, flags, kw) < 0)
			store_err = 1;
		if (parser_literal_accept(s->parser) < 0 ||
		    stream_literal(s, ap, lit->literal_size, &store_err) < 0) {
			mbox_append_abort(&ap);
			mbox_free(&own);
			s->ending = true;
			resp_bad(cmd, "Connection error during APPEND");
			return;
		}
		if (!store_err && mbox_append_msg_end(ap) < 0)
			store_err = 1;
		/* MULTIAPPEND: more messages may follow on the same command */
		{
			enum parse_status st = parser_read_args(s->parser, PARSE_STREAM, &a);

			if (st == PARSE_OK && a == NULL)
				break;
			if (st != PARSE_LITERAL) {
				mbox_append_abort(&ap);
				mbox_free(&own);
				if (st == PARSE_IO || st == PARSE_TOOLONG)
					s->ending = true;
				resp_bad(cmd, "Invalid APPEND arguments");
				return;
			}
		}
	}
	if (store_err) {
		resp_no(cmd, "[UNAVAILABLE] APPEND failed: %s", mbox_error(mb)->msg);
		goto fail;
	}
	if (mbox_append_commit(&ap, &first, &n) < 0) {
		log_warnx("append %s: %s", ref.path, mbox_error(mb)->msg);
		if (mbox_error(mb)->code == ETIMEDOUT)
			resp_no(cmd, "[INUSE] APPEND: the mailbox stayed locked by another "
			    "program; try again");
		else
			resp_no(cmd, "[UNAVAILABLE] APPEND failed: %s", mbox_error(mb)->msg);
		mbox_free(&own);
		return;
	}
	if (n == 1)
		resp_ok(cmd, "[APPENDUID %u %u] APPEND completed", mbox_uidvalidity(mb), first);
	else
		resp_ok(cmd, "[APPENDUID %u %u:%u] APPEND completed", mbox_uidvalidity(mb), first,
		    first + n - 1);
	mbox_free(&own);
	return;
fail:
	mbox_append_abort(&ap);
	mbox_free(&own);
}
