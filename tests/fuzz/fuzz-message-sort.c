/*
 * The SORT and THREAD keys of messages (mbox/message-sort.h) and both THREAD algorithms
 * (mbox/message-thread.h) on arbitrary header bytes.  The input is split at blank lines into
 * the headers of up to MAX_MSGS messages; each part is also read whole as a Subject value
 * (base subject), as text to collate and as a list of Message-IDs.  The messages' keys are
 * then threaded both ways, and every message must appear exactly once in each answer.
 *
 * An input starting with byte 0x01 also gets a chain of up to 4095 made-up messages, each
 * referring to an earlier one (real or made up) chosen by the input's bytes: deep and wide
 * trees that the header text alone could not reach within the fuzzer's input sizes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/decode.h"
#include "mbox/message-sort.h"
#include "mbox/message-thread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS	256
#define MAX_CHAIN	4095

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n > 0 ? n : 1, size);

	if (p == NULL)
		abort();
	return p;
}

/* Valid UTF-8 by the same rules as message-sort.c (no overlong forms or surrogates). */
static bool
utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n, k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * The base subject of s: no longer than its decoded form, no space at either end, no tab,
 * CR, LF or double space, and the same again when taken of itself (steps 2 to 6 repeat until
 * nothing changes; only step 1's decoding could differ, so not when an encoded word is left
 * or a charset was unknown).
 */
static void
check_base_subject(const char *s, size_t len)
{
	struct dbuf dec, out, again;
	bool reply, reply2, octet, octet2;
	size_t i;

	dbuf_init(&dec, SIZE_MAX);
	(void)rfc2047_decode_known(s, len, &dec);
	dbuf_init(&out, SIZE_MAX);
	sort_base_subject(s, len, &out, &reply, &octet);
	if (out.len > dec.len || out.len > len * 4 + 16)
		__builtin_trap();
	if (out.len > 0 && (out.data[0] == ' ' || out.data[out.len - 1] == ' '))
		__builtin_trap();
	for (i = 0; i < out.len; i++) {
		char c = out.data[i];

		if (c == '\t' || c == '\r' || c == '\n' ||
		    (c == ' ' && i > 0 && out.data[i - 1] == ' '))
			__builtin_trap();
	}
	if (out.len > 0 && !octet && memmem(out.data, out.len, "=?", 2) == NULL) {
		dbuf_init(&again, SIZE_MAX);
		sort_base_subject(out.data, out.len, &again, &reply2, &octet2);
		if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0 || reply2 ||
		    octet2)
			__builtin_trap();
		dbuf_free(&again);
	}
	dbuf_free(&out);
	dbuf_free(&dec);
}

/*
 * RFC 5051 collation: invalid UTF-8 unchanged; else valid UTF-8, ASCII upper-cased, and a
 * map of code point by code point, so that the halves of a string split between two code
 * points give the halves of its result.  (Not a fixed point: the decomposition of a
 * titlecase letter may hold a small one, as RFC 5051's own U+01C4 example shows.)
 */
static void
check_casemap(const char *s, size_t len)
{
	struct dbuf out, left, right;
	size_t i, cut;

	dbuf_init(&out, SIZE_MAX);
	sort_casemap(s, len, &out);
	if (!utf8_ok((const unsigned char *)s, len)) {
		if (out.len != len || (len > 0 && memcmp(out.data, s, len) != 0))
			__builtin_trap();
		dbuf_free(&out);
		return;
	}
	if (!utf8_ok((const unsigned char *)out.data, out.len))
		__builtin_trap();
	for (i = 0; i < len && (unsigned char)s[i] < 0x80; i++)
		;
	if (i == len) {
		if (out.len != len)
			__builtin_trap();
		for (i = 0; i < len; i++)
			if (out.data[i] != (s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]))
				__builtin_trap();
	}
	for (cut = len / 2; cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80; cut--)
		;
	dbuf_init(&left, SIZE_MAX);
	dbuf_init(&right, SIZE_MAX);
	sort_casemap(s, cut, &left);
	sort_casemap(s + cut, len - cut, &right);
	if (left.len + right.len != out.len ||
	    (left.len > 0 && memcmp(out.data, left.data, left.len) != 0) ||
	    (right.len > 0 && memcmp(out.data + left.len, right.data, right.len) != 0))
		__builtin_trap();
	dbuf_free(&left);
	dbuf_free(&right);
	dbuf_free(&out);
}

/* Every msg-id in s: progress each time, "left@right" of at most SORT_MSGID_MAX bytes, no
 * line end, a hash that is never 0 and depends only on the bytes. */
static void
check_msgids(const char *s, size_t len)
{
	struct dbuf id;
	size_t pos = 0, last = 0;
	unsigned n = 0;

	dbuf_init(&id, SIZE_MAX);
	while (sort_next_msgid(s, len, &pos, &id)) {
		char *copy;

		if (pos <= last && n > 0)
			__builtin_trap();
		if (pos > len || id.len < 3 || id.len > SORT_MSGID_MAX ||
		    memchr(id.data, '@', id.len) == NULL || memchr(id.data, '\r', id.len) != NULL ||
		    memchr(id.data, '\n', id.len) != NULL)
			__builtin_trap();
		copy = xcalloc(id.len, 1);
		memcpy(copy, id.data, id.len);
		if (sort_msgid_hash(id.data, id.len) == 0 ||
		    sort_msgid_hash(copy, id.len) != sort_msgid_hash(id.data, id.len))
			__builtin_trap();
		free(copy);
		last = pos;
		n++;
	}
	if (pos != len)
		__builtin_trap();
	dbuf_free(&id);
}

/* The keys of one message's header, checked, copied into *m (its own storage). */
static void
keys_of(const unsigned char *hdr, size_t len, struct sort_keys_buf *kb, uint32_t seq,
	struct thread_msg *m)
{
	struct sort_keys k;
	const unsigned char *lo, *hi;
	unsigned char *subj;
	uint64_t *refs;
	int j;

	sort_keys_extract(hdr, len, NULL, NULL, kb, &k);
	lo = (const unsigned char *)kb->strs.data;
	hi = lo != NULL ? lo + kb->strs.len : NULL;
	for (j = 0; j < SORT_S_COUNT; j++) {
		if (k.slen[j] > SORT_KEY_MAX)
			__builtin_trap();
		if (k.slen[j] > 0 && (lo == NULL || k.s[j] < lo || k.s[j] + k.slen[j] > hi))
			__builtin_trap();
	}
	if (k.nrefs > SORT_MAX_REFS || ((k.flags & SORT_K_MSGID) && k.msgid == 0) ||
	    (k.flags & ~(unsigned)(SORT_K_DATE | SORT_K_REPLY | SORT_K_MSGID)) != 0)
		__builtin_trap();
	subj = xcalloc(k.slen[SORT_S_SUBJECT], 1);
	memcpy(subj, k.s[SORT_S_SUBJECT], k.slen[SORT_S_SUBJECT]);
	refs = xcalloc(k.nrefs, sizeof(*refs));
	memcpy(refs, k.refs, k.nrefs * sizeof(*refs));
	m->id = seq;
	/* INTERNALDATE stands in without a Date: the mailbox order, spread out */
	m->sent = (k.flags & SORT_K_DATE) ? k.sent : (int64_t)seq * 3600;
	m->msgid = (k.flags & SORT_K_MSGID) ? k.msgid : 0;
	m->refs = refs;
	m->nrefs = k.nrefs;
	m->subj = subj;
	m->subj_len = k.slen[SORT_S_SUBJECT];
	m->reply = (k.flags & SORT_K_REPLY) != 0;
}

/* A THREAD answer for messages 1..n: well nested, no empty list, each number once. */
static void
check_threads(const struct dbuf *out, size_t n, unsigned char *seen)
{
	size_t i, found = 0;
	long depth = 0;

	memset(seen, 0, n);
	for (i = 0; i < out->len; i++) {
		char c = out->data[i];

		if (c == '(') {
			if (depth == 0 && i > 0 && out->data[i - 1] != ')')
				__builtin_trap();
			depth++;
		} else if (c == ')') {
			if (--depth < 0 || out->data[i - 1] == '(' || out->data[i - 1] == ' ')
				__builtin_trap();
		} else if (c == ' ') {
			if (depth == 0 || out->data[i - 1] == ' ' || out->data[i - 1] == '(')
				__builtin_trap();
		} else if (c >= '1' && c <= '9') {
			uint64_t v = 0;

			if (depth == 0)
				__builtin_trap();
			for (; i < out->len && out->data[i] >= '0' && out->data[i] <= '9'; i++) {
				v = v * 10 + (uint64_t)(out->data[i] - '0');
				if (v > n)
					__builtin_trap();
			}
			i--;
			if (seen[v - 1]++)
				__builtin_trap();
			found++;
		} else {
			__builtin_trap();
		}
	}
	if (depth != 0 || found != n || (n > 0 && out->len == 0))
		__builtin_trap();
}

/* The made-up chain: message k refers to an earlier one picked by the input, or starts a
 * thread; made-up IDs and subjects are drawn from a few, so they collide. */
static size_t
add_chain(const uint8_t *data, size_t size, struct thread_msg *m, size_t n0, size_t want)
{
	static const unsigned char subjects[4][3] = { "A", "B", "RE", "" };
	size_t k, n = n0;

	for (k = 0; k < want; k++, n++) {
		uint8_t b = data[(3 + k) % size];
		uint64_t *refs = xcalloc(2, sizeof(*refs));
		char id[32];
		int len = snprintf(id, sizeof(id), "%zu@chain", b == 0xff ? k / 2 : k);

		m[n].id = (uint32_t)n + 1;
		m[n].sent = (int64_t)(b & 0x0f) - (int64_t)k / 3;
		m[n].msgid = (b & 0x30) == 0x30 ? 0 : sort_msgid_hash(id, (size_t)len);
		m[n].nrefs = 0;
		if (n > 0 && (b & 0x40) == 0) {
			/* mostly the one just before (a deep chain), else any earlier one */
			size_t to = (b & 0x80) ? (b * 7919u + k) % n : n - 1;

			if (m[to].msgid != 0)
				refs[m[n].nrefs++] = m[to].msgid;
			if ((b & 0x03) == 0x03)
				refs[m[n].nrefs++] = sort_msgid_hash("dangling@chain", 14);
		}
		m[n].refs = refs;
		m[n].subj = subjects[b >> 6 & 3];
		m[n].subj_len = strlen((const char *)subjects[b >> 6 & 3]);
		m[n].reply = (b & 0x08) != 0;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size, *p = s;
	struct thread_msg *m;
	struct sort_keys_buf *kb;
	unsigned char *seen, *subj_owned;
	struct dbuf out;
	size_t n = 0, nreal, want = 0, i;
	int alg;

	if (size > 65536)
		return 0;
	if (size >= 3 && data[0] == 0x01)
		want = ((size_t)data[1] << 8 | data[2]) % (MAX_CHAIN + 1);
	m = xcalloc(MAX_MSGS + want, sizeof(*m));
	kb = xcalloc(1, sizeof(*kb));
	sort_keys_buf_init(kb);
	while (p < end && n < MAX_MSGS) {
		const char *q = memmem(p, (size_t)(end - p), "\n\n", 2);
		size_t len = q != NULL ? (size_t)(q - p) + 2 : (size_t)(end - p);

		check_base_subject(p, len);
		check_casemap(p, len);
		check_msgids(p, len);
		keys_of((const unsigned char *)p, len, kb, (uint32_t)n + 1, &m[n]);
		n++;
		p += len;
	}
	sort_keys_buf_free(kb);
	free(kb);
	nreal = n;
	if (want > 0)
		n = add_chain(data, size, m, n, want);
	seen = xcalloc(n, 1);
	for (alg = 0; alg < 2; alg++) {
		dbuf_init(&out, SIZE_MAX);
		thread_build(alg == 0 ? THREAD_ORDEREDSUBJECT : THREAD_REFERENCES, m, n, &out);
		if (out.overflow)
			__builtin_trap();
		check_threads(&out, n, seen);
		dbuf_free(&out);
	}
	for (i = 0; i < n; i++) {
		free((void *)(uintptr_t)m[i].refs);
		subj_owned = (unsigned char *)(uintptr_t)m[i].subj;
		if (i < nreal)
			free(subj_owned);
	}
	free(seen);
	free(m);
	return 0;
}
