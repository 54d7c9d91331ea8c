/* A mapped file truncated by someone else: the read gets zeros, the guard reports it once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "imapd/sigbus.h"

static void
test_truncated_mapping_reads_zeros(void **state)
{
	char path[] = "/tmp/imapd-sigbus-XXXXXX";
	int fd = mkstemp(path);
	size_t size = 3 * 4096;
	char *buf = malloc(size), *map;
	volatile char *v;
	unsigned sum = 0;
	size_t i;

	(void)state;
	assert_true(fd >= 0);
	memset(buf, 'x', size);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	sigbus_guard_install();
	assert_false(sigbus_guard_fired());
	assert_int_equal(map[size - 1], 'x');
	/* Another program cuts the file to one page. */
	assert_int_equal(ftruncate(fd, 4096), 0);
	v = map;
	for (i = 0; i < size; i++)
		sum += (unsigned char)v[i];
	assert_int_equal(sum, 4096u * 'x');
	assert_true(sigbus_guard_fired());
	assert_false(sigbus_guard_fired());
	munmap(map, size);
	close(fd);
	unlink(path);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_mapping_reads_zeros),
	};

	return cmocka_run_group_tests_name("sigbus", tests, NULL, NULL);
}
