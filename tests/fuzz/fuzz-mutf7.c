/*
 * fuzz-mutf7.c: modified UTF-7 both ways. Whatever decodes must re-encode to the same bytes
 * (there is one valid encoding), whatever encodes must decode back, and no input may
 * overrun the documented buffer sizes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	unsigned int flags = size > 0 && (data[0] & 1) ? MUTF7_NO_CONTROLS : 0;
	size_t dlen, elen, blen;

	if (size > 4096)
		return 0;
	char *dec = malloc(MUTF7_DECODE_SIZE(size));
	char *enc = malloc(MUTF7_ENCODE_SIZE(size));
	char *back = malloc(MUTF7_ENCODE_SIZE(size));
	if (dec == NULL || enc == NULL || back == NULL)
		abort();

	/* as modified UTF-7 */
	if (mutf7_decode(in, size, flags, dec, MUTF7_DECODE_SIZE(size), &dlen) == 0) {
		if (mutf7_check(in, size, flags) != 0)
			abort();
		if (mutf7_encode(dec, dlen, flags, back, MUTF7_ENCODE_SIZE(size), &blen) != 0)
			abort();
		if (blen != size || memcmp(back, in, size) != 0)
			abort();
	} else if (mutf7_check(in, size, flags) == 0) {
		abort();
	}

	/* as UTF-8 */
	if (mutf7_encode(in, size, flags, enc, MUTF7_ENCODE_SIZE(size), &elen) == 0) {
		char *rt = malloc(elen + 1);
		if (rt == NULL)
			abort();
		if (mutf7_decode(enc, elen, flags, rt, elen + 1, &blen) != 0)
			abort();
		if (blen != size || memcmp(rt, in, size) != 0)
			abort();
		free(rt);
	}
	free(dec);
	free(enc);
	free(back);
	return 0;
}
