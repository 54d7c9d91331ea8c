/*
 * Modified UTF-7 (RFC 3501 section 5.1.3), the form IMAP mailbox names take on the wire and,
 * in imapd as in UW-IMAP and Dovecot, on disk.
 *
 * Both directions are strict: a name has exactly one valid encoding, so the wire form can be
 * used as a file name and compared byte for byte. Refused on decoding: bytes outside printable
 * US-ASCII, an unterminated '&', base64 outside the modified alphabet, base64 that encodes a
 * printable US-ASCII character (including '&'), a shift sequence that directly follows
 * another (the two could have been one), more base64 characters than the UTF-16 units need,
 * non-zero padding bits, unpaired surrogates and U+0000. Refused on encoding: invalid UTF-8
 * (overlong forms, surrogates, values above U+10FFFF, truncated sequences) and U+0000.
 *
 * Neither function allocates. Output is NUL-terminated; *len_r excludes the NUL.
 */
#ifndef MBOX_MUTF7_H
#define MBOX_MUTF7_H

#include <stddef.h>

/*
 * Also refuse control characters (U+0001..U+001F, U+007F, U+0080..U+009F) in the text.
 * Mailbox names never carry them.
 */
#define MUTF7_NO_CONTROLS 0x1u

/*
 * Buffer sizes (NUL included) that always suffice for `n` input bytes. Encoding is worst
 * for a control character alone between ASCII ones (1 byte becomes "&AAE-"); in general n
 * bytes need at most 3n + 2. Decoding can lengthen a little: k base64 characters carry
 * 6k/16 UTF-16 units of up to 3 UTF-8 bytes each, 1.125k bytes in all.
 */
#define MUTF7_ENCODE_SIZE(n) (3 * (n) + 3)
#define MUTF7_DECODE_SIZE(n) ((n) + (n) / 8 + 2)

/*
 * Decode modified UTF-7 `in` (`len` bytes) into UTF-8 in `out` (`size` bytes, room for the
 * NUL included). `out` may be NULL with `size` 0 to validate only; *len_r (if not NULL) then
 * still receives the decoded length.
 * Returns 0, -EINVAL for invalid input, or -ENOSPC if `out` is too small (its content is then
 * unspecified).
 */
int
mutf7_decode(const char *in, size_t len, unsigned int flags, char *out, size_t size,
    size_t *len_r);

/*
 * Encode UTF-8 `in` (`len` bytes) into modified UTF-7, same conventions as mutf7_decode().
 * Returns 0, -EINVAL for invalid UTF-8 (or a refused character), or -ENOSPC.
 */
int
mutf7_encode(const char *in, size_t len, unsigned int flags, char *out, size_t size,
    size_t *len_r);

/* Return 0 if `in` is valid modified UTF-7 under `flags`, else -EINVAL. */
int
mutf7_check(const char *in, size_t len, unsigned int flags);

#endif
