/*
 * fuzz-folder.c: mailbox name validation and the LIST pattern matcher. The input is split at
 * the first NUL into a pattern and a name. Checks: a name that parses is canonical and
 * within the limits; the matcher agrees with a simple memoised reference matcher and with
 * its own incremental form.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbox/folder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* memo[i][j]: 0 unknown, 1 no, 2 yes, for pattern suffix i against name suffix j */
static bool
ref_match(const char *p, size_t pl, size_t i, const char *n, size_t nl, size_t j,
    unsigned char *memo)
{
	unsigned char *m = &memo[i * (nl + 1) + j];
	bool r;

	if (*m != 0)
		return *m == 2;
	if (i == pl) {
		r = j == nl;
	} else if (p[i] == '*' || p[i] == '%') {
		r = ref_match(p, pl, i + 1, n, nl, j, memo) ||
		    (j < nl && (p[i] == '*' || n[j] != '/') &&
		    ref_match(p, pl, i, n, nl, j + 1, memo));
	} else {
		r = j < nl && p[i] == n[j] && ref_match(p, pl, i + 1, n, nl, j + 1, memo);
	}
	*m = r ? 2 : 1;
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	const char *pat = in, *name;
	size_t pl, nl;
	struct folder_name fn;
	struct folder_error err;

	if (size > 2 * FOLDER_NAME_MAX)
		return 0;
	if (nul == NULL) {
		name = in;
		nl = size;
		pl = size;
	} else {
		pl = (size_t)(nul - in);
		name = nul + 1;
		nl = size - pl - 1;
	}

	/* names */
	for (unsigned int flags = 0; flags < 4; flags++) {
		enum folder_status s = folder_name_parse(name, nl, flags, &fn, &err);
		if (s == FOLDER_OK) {
			if (fn.len > FOLDER_NAME_MAX || strlen(fn.name) != fn.len ||
			    fn.depth == 0 || fn.depth > FOLDER_DEPTH_MAX)
				abort();
			if (fn.name[0] == '/' || strstr(fn.name, "//") != NULL ||
			    strstr(fn.name, "/../") != NULL || strncmp(fn.name, "../", 3) == 0)
				abort();
			/* canonical names parse to themselves */
			struct folder_name again;
			if (folder_name_parse(fn.name, fn.len, flags, &again, NULL) != FOLDER_OK ||
			    strcmp(again.name, fn.name) != 0)
				abort();
		} else if (err.status != s || err.msg[0] == '\0') {
			abort();
		}
	}

	/* patterns */
	struct folder_pattern *p = NULL;
	if (folder_pattern_new("", 0, pat, pl, &p, NULL) != FOLDER_OK)
		return 0;
	bool got = folder_pattern_match(p, name, nl, false);
	if (pl <= 64 && nl <= 64) {
		unsigned char memo[65 * 65];
		memset(memo, 0, sizeof(memo));
		if (got != ref_match(pat, pl, 0, name, nl, 0, memo))
			abort();
	}
	struct folder_pstate *st = folder_pstate_new(p);
	if (st == NULL)
		abort();
	size_t half = nl / 2;
	folder_pstate_feed(st, name, half, false);
	if (folder_pstate_dead(st) && got)
		abort();
	folder_pstate_feed(st, name + half, nl - half, false);
	if (folder_pstate_accepts(st) != got)
		abort();
	folder_pstate_free(&st);
	folder_pattern_free(&p);
	return 0;
}
