#include "auth/auth.h"

#include <string.h>

/* Longest authzid/authcid/passwd (RFC 4616 section 2 allows up to 255 octets each). */
#define SASL_FIELD_MAX	255

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
auth_base64_decode(const char *src, size_t len, unsigned char *dst, size_t dstsize)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i, o = 0;

	if (len % 4 != 0 || len / 4 * 3 > dstsize)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64val(s[i]), b = b64val(s[i + 1]);
		int c = s[i + 2] == '=' ? -2 : b64val(s[i + 2]);
		int d = s[i + 3] == '=' ? -2 : b64val(s[i + 3]);
		unsigned v;

		if (a < 0 || b < 0 || c == -1 || d == -1)
			return -1;
		/* Padding only at the very end, and "x=y=" is not padding. */
		if ((c == -2 || d == -2) && i + 4 != len)
			return -1;
		if (c == -2 && d != -2)
			return -1;
		v = (unsigned)a << 18 | (unsigned)b << 12;
		if (c >= 0)
			v |= (unsigned)c << 6;
		if (d >= 0)
			v |= (unsigned)d;
		dst[o++] = (unsigned char)(v >> 16);
		if (c >= 0)
			dst[o++] = (unsigned char)(v >> 8);
		if (d >= 0)
			dst[o++] = (unsigned char)v;
	}
	return (long)o;
}

int
auth_sasl_plain_split(char *msg, size_t len, const char **authzid_r, const char **authcid_r,
		      const char **passwd_r)
{
	char *nul1 = memchr(msg, '\0', len), *nul2;
	size_t zl, cl, pl;

	if (nul1 == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;
	msg[len] = '\0';
	zl = (size_t)(nul1 - msg);
	cl = (size_t)(nul2 - nul1 - 1);
	pl = len - (size_t)(nul2 + 1 - msg);
	if (cl == 0 || pl == 0 || zl > SASL_FIELD_MAX || cl > SASL_FIELD_MAX ||
	    pl > SASL_FIELD_MAX)
		return -1;
	*authzid_r = msg;
	*authcid_r = nul1 + 1;
	*passwd_r = nul2 + 1;
	return 0;
}
