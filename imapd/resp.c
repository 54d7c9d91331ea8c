#include "imapd/resp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "imapd/limits.h"

/* Composed responses longer than this are cut; data goes through resp_raw/resp_string. */
#define RESP_TEXT_MAX	8192

static void vprint(struct session *s, const char *prefix, const char *fmt, va_list ap,
		   int crlf) __attribute__((format(printf, 3, 0)));
static void tagged(struct command *cmd, const char *status, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void
vprint(struct session *s, const char *prefix, const char *fmt, va_list ap, int crlf)
{
	char buf[RESP_TEXT_MAX];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (prefix != NULL)
		io_puts(s->io, prefix);
	io_write(s->io, buf, (size_t)n);
	if (crlf)
		io_write(s->io, "\r\n", 2);
}

void
resp_untagged(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(s, "* ", fmt, ap, 1);
	va_end(ap);
}

void
resp_continue(struct session *s, const char *text)
{
	io_puts(s->io, "+ ");
	io_puts(s->io, text);
	io_write(s->io, "\r\n", 2);
	io_flush(s->io);
}

static void
tagged(struct command *cmd, const char *status, const char *fmt, va_list ap)
{
	struct session *s = cmd->s;
	void (*hook)(struct command *) = s->on_tagged;

	/* Untagged updates for the selected mailbox go before the completion; the hook is
	 * cleared while it runs so that it cannot recurse. */
	if (hook != NULL && s->state == STATE_SELECTED) {
		s->on_tagged = NULL;
		hook(cmd);
		s->on_tagged = hook;
	}
	if (strcmp(status, "BAD") == 0) {
		if (++s->bad_count >= IMAPD_BAD_MAX)
			s->ending = true;
	} else
		s->bad_count = 0;

	io_puts(s->io, cmd->tag);
	io_write(s->io, " ", 1);
	io_puts(s->io, status);
	io_write(s->io, " ", 1);
	vprint(s, NULL, fmt, ap, 1);
	if (s->ending && strcmp(status, "BAD") == 0)
		io_puts(s->io, "* BYE Too many invalid commands\r\n");
	io_flush(s->io);
	cmd->answered = true;
}

#define TAGGED_FN(name, status)				\
	void						\
	name(struct command *cmd, const char *fmt, ...)	\
	{						\
		va_list ap;				\
		va_start(ap, fmt);			\
		tagged(cmd, status, fmt, ap);		\
		va_end(ap);				\
	}

TAGGED_FN(resp_ok, "OK")
TAGGED_FN(resp_no, "NO")
TAGGED_FN(resp_bad, "BAD")

void
resp_printf(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(s, NULL, fmt, ap, 0);
	va_end(ap);
}

void
resp_raw(struct session *s, const void *data, size_t len)
{
	io_write(s->io, data, len);
}

void
resp_crlf(struct session *s)
{
	io_write(s->io, "\r\n", 2);
}

/* RFC 3501 9: quoted = DQUOTE *QUOTED-CHAR DQUOTE, QUOTED-CHAR is 7-bit TEXT-CHAR. Long
 * strings go as literals too, which keeps response lines short. */
bool
resp_quotable(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	if (len > 1024)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n' || p[i] >= 0x80)
			return false;
	return true;
}

void
resp_string(struct session *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i, start = 0;

	if (!resp_quotable(data, len)) {
		resp_printf(s, "{%zu}\r\n", len);
		io_write(s->io, data, len);
		return;
	}
	io_write(s->io, "\"", 1);
	for (i = 0; i < len; i++) {
		if (p[i] != '"' && p[i] != '\\')
			continue;
		io_write(s->io, p + start, i - start);
		io_write(s->io, "\\", 1);
		start = i;
	}
	io_write(s->io, p + start, len - start);
	io_write(s->io, "\"", 1);
}

void
resp_nstring(struct session *s, const void *data, size_t len)
{
	if (data == NULL)
		io_write(s->io, "NIL", 3);
	else
		resp_string(s, data, len);
}

void
resp_astring(struct session *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	if (len == 0 || (len == 3 && strncasecmp(data, "NIL", 3) == 0))
		goto quoted;
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		/* ATOM-CHAR / resp-specials (RFC 3501 9: ASTRING-CHAR) */
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' ||
		    c == '*' || c == '"' || c == '\\')
			goto quoted;
	}
	io_write(s->io, data, len);
	return;
quoted:
	resp_string(s, data, len);
}
