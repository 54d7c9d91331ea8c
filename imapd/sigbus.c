#include "imapd/sigbus.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mbox/mbox.h"

static volatile sig_atomic_t fired;
static uintptr_t page_mask;

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	void *page;

	(void)uc;
	/* Only a page of a file mapping past its end (BUS_ADRERR) is ours to mend. */
	if (si->si_code == BUS_ADRERR && si->si_addr != NULL && page_mask != 0) {
		page = (void *)((uintptr_t)si->si_addr & page_mask);
		if (mmap(page, ~page_mask + 1, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
			fired = 1;
			mbox_map_mended++;	/* no mapping is reused as it is */
			return;
		}
	}
	/* Not ours: let the fault happen again with the default action. */
	signal(sig, SIG_DFL);
}

void
sigbus_guard_install(void)
{
	struct sigaction sa;
	long ps = sysconf(_SC_PAGESIZE);

	page_mask = ~((uintptr_t)(ps > 0 ? ps : 4096) - 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

bool
sigbus_guard_fired(void)
{
	if (!fired)
		return false;
	fired = 0;
	return true;
}
