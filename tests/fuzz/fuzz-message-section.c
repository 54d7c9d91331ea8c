/*
 * fuzz-message-section.c: the FETCH section specification parser (BODY[...]<...>, BINARY[...])
 * and the section name written back, applied to a small fixed message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/fetch-render.h"
#include "mbox/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] =
	"Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\none\n"
	"--b\nContent-Type: message/rfc822\n\nFrom: a@b\n\ntwo\n--b--\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetch_section sec;
	struct msg_body body = MSG_BODY_INIT;
	struct msg *msg;
	struct dbuf name;
	char *text, *p;

	if (size < 1 || size > 4096)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	p = text;
	if (fetch_section_parse(&p, data[0] & 1, &sec) == 0) {
		if (p < text || p > text + size)
			abort();
		dbuf_init(&name, 1 << 16);
		fetch_section_name(&name, &sec);
		dbuf_free(&name);
		msg = msg_parse((const unsigned char *)message, sizeof(message) - 1, NULL, NULL);
		(void)msg_section(msg, &sec.spec, &body);
		msg_body_clear(&body);
		msg_free(&msg);
	}
	free(text);
	return 0;
}
