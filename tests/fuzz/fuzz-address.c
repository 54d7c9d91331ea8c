/*
 * fuzz-address.c: header value parsers: address lists, RFC 2047 decoding, case folding and
 * matching, dates and header field iteration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/address.h"
#include "mbox/decode.h"
#include "mbox/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct addr_list l;
	struct dbuf b;
	struct msg_hdr_iter it;
	struct msg_field f;
	struct textmatch tm;
	time_t t;
	int z;
	size_t i, total = 0;
	char *unf;

	addr_parse(s, size, &l);
	if (l.n > ADDR_MAX_COUNT)
		abort();
	for (i = 0; i < l.n; i++) {
		if (l.v[i].host != NULL && l.v[i].mailbox == NULL)
			abort();
	}
	addr_list_free(&l);

	dbuf_init(&b, 1 << 20);
	rfc2047_decode(s, size, &b);
	if (b.len > 0)
		(void)utf8_contains_ci(b.data, b.len, s, size / 8);
	dbuf_free(&b);

	(void)msg_date_parse(s, size, &t, &z);

	msg_hdr_iter_init(&it, data, size);
	while (msg_hdr_next(&it, &f)) {
		if (f.off + f.len > size || f.off != total)
			abort();
		total += f.len;
		unf = malloc(f.value_len + 1);
		if (unf == NULL)
			abort();
		msg_unfold(f.value, f.value_len, unf);
		free(unf);
	}

	if (size > 2 && textmatch_init(&tm, s, size / 4) == 0) {
		for (i = 0; i < size; i += 7)
			textmatch_feed(&tm, s + i, size - i < 7 ? size - i : 7);
		textmatch_finish(&tm);
		if (tm.found != utf8_contains_ci(s, size, s, size / 4))
			abort();
		textmatch_free(&tm);
	}
	return 0;
}
