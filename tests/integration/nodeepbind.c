/*
 * Preloaded into a sanitizer build of imapd during tests: pam_wrapper opens libpam with
 * RTLD_DEEPBIND, which AddressSanitizer refuses. This dlopen() drops that one flag and
 * passes everything else on.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

void *dlopen(const char *file, int mode);

void *
dlopen(const char *file, int mode)
{
	static void *(*real)(const char *, int);

	if (real == NULL)
		real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	return real(file, mode & ~RTLD_DEEPBIND);
}
