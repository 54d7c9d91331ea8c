/* The SASL PLAIN path a client controls: strict base64, then the three-field split. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char out[1024];
	const char *z, *c, *p;
	long n;

	if (size > 1300)
		return 0;
	n = auth_base64_decode((const char *)data, size, out, sizeof(out) - 1);
	if (n < 0)
		return 0;
	if ((size_t)n > size / 4 * 3)
		__builtin_trap();
	if (auth_sasl_plain_split((char *)out, (size_t)n, &z, &c, &p) == 0) {
		if (strlen(c) == 0 || strlen(p) == 0)
			__builtin_trap();
	}
	return 0;
}
