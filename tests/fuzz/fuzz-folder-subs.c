/*
 * fuzz-folder-subs.c: the subscriptions file and UW-IMAP ~/.mailboxlist readers. The first
 * byte chooses which file the rest becomes; the loaded list must be sorted, unique, within
 * the bounds and made only of names folder_name_parse() accepts; LSUB over it must work.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbox/folder.h"
#include "mbox/subs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64];

/* Remove what the runs left (libFuzzer ends with exit()). */
static void
cleanup(void)
{
	static const char *const files[] = {
		"mail/.subscriptions", "mail/.subscriptions.lock", ".mailboxlist", "mail", "",
	};
	char p[160];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", top, files[i]);
		if (unlink(p) != 0)
			rmdir(p);
	}
}

static void
put(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char maildir[128], subs_path[160], uw_path[160];
	struct folder_config cfg = { 0 };
	struct folder_root *root = NULL;
	struct subs *s = NULL;

	if (top[0] == '\0') {
		snprintf(top, sizeof(top), "/tmp/fuzz-folder-subs-XXXXXX");
		if (mkdtemp(top) == NULL)
			abort();
		atexit(cleanup);
	}
	snprintf(maildir, sizeof(maildir), "%s/mail", top);
	snprintf(subs_path, sizeof(subs_path), "%s/.subscriptions", maildir);
	snprintf(uw_path, sizeof(uw_path), "%s/.mailboxlist", top);
	mkdir(maildir, 0700);
	unlink(subs_path);
	unlink(uw_path);
	if (size == 0)
		return 0;
	put((data[0] & 1) ? uw_path : subs_path, data + 1, size - 1);

	cfg.maildir = maildir;
	cfg.inbox = "/nonexistent/spool";
	cfg.home = top;
	if (folder_root_new(&cfg, &root, NULL) != FOLDER_OK)
		abort();
	if (subs_load(root, &s, NULL) != FOLDER_OK)
		abort();
	if (s->count > SUBS_MAX)
		abort();
	for (size_t i = 0; i < s->count; i++) {
		struct folder_name fn;
		size_t len = strlen(s->names[i]);

		if (folder_name_parse(s->names[i], len, 0, &fn, NULL) != FOLDER_OK ||
		    strcmp(fn.name, s->names[i]) != 0)
			abort();
		if (i > 0 && strcmp(s->names[i - 1], s->names[i]) >= 0)
			abort();
		if (!subs_has(s, s->names[i], len))
			abort();
	}
	subs_free(&s);

	struct folder_list *l = NULL;
	if (subs_lsub(root, "", 0, "%", 1, &l, NULL) != FOLDER_OK)
		abort();
	folder_list_free(&l);
	folder_root_free(&root);
	return 0;
}
