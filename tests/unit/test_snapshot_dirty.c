// SPDX-License-Identifier: MIT
/* Unit tests for core/snapshot_dirty.c without KVM: a Diff's memory file
 * from a dirty bitmap (docs/snapshot.md "Diff snapshots"): the pages marked
 * are written at their offsets, a zero page among them too (as data, not a
 * hole), every other page is a hole; a write that fails keeps the pending
 * bits for the next snapshot, and only a commit clears them; and the
 * checks before a Diff: no tracking, or device servers, are refused with
 * a sentence that says what to do. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/device_set.h"
#include "core/snapshot.h"
#include "core/snapshot_dirty.h"
#include "core/vm.h"

#define PAGE 4096ull
#define RAM (8ull << 20) /* LAYOUT_MIN_MEMORY is below this */

static struct vm test_vm; /* large: static, as isola's own */
static struct gmem test_ram;

static int setup(void **state)
{
	(void)state;
	memset(&test_vm, 0, sizeof(test_vm));
	assert_int_equal(gmem_create(&test_ram, RAM, GMEM_BACKING_SHMEM), 0);
	test_vm.mem = &test_ram;
	test_vm.track_dirty = true;
	test_vm.dirty_base = true;
	for (unsigned i = 0; i < test_ram.nr_regions; i++)
		test_vm.dirty_pending[i] =
		    calloc((test_ram.regions[i].size / PAGE + 63) / 64, sizeof(uint64_t));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < GMEM_MAX_REGIONS; i++)
		free(test_vm.dirty_pending[i]);
	gmem_destroy(&test_ram);
	return 0;
}

static void mark(uint64_t page)
{
	test_vm.dirty_pending[0][page / 64] |= 1ull << (page % 64);
}

static int temp_file(void)
{
	char path[] = "/tmp/isola-test-dirty.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* Whether page p of fd is data (SEEK_DATA lands on it). */
static bool is_data(int fd, uint64_t p)
{
	off_t at = lseek(fd, (off_t)(p * PAGE), SEEK_DATA);

	return at == (off_t)(p * PAGE);
}

static void test_diff_writes_marked_pages(void **state)
{
	uint8_t *host = test_ram.regions[0].host, buf[PAGE];
	uint64_t pages = 0;
	int fd = temp_file();

	(void)state;
	memset(host + 3 * PAGE, 0xa3, PAGE);
	memset(host + 4 * PAGE, 0xa4, PAGE);
	memset(host + 9 * PAGE, 0xa9, PAGE); /* written, not marked: not in the Diff */
	/* page 100: marked and zero (the guest zeroed it since the base) */
	mark(3), mark(4), mark(100), mark(2047);
	memset(host + 2047 * PAGE, 0x77, PAGE);
	assert_int_equal(snapshot_dirty_write(&test_vm, fd, &pages), 0);
	assert_int_equal(pages, 4);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)RAM);
	assert_true(is_data(fd, 3) && is_data(fd, 4) && is_data(fd, 2047));
	assert_true(is_data(fd, 100)); /* a zero page is written, not a hole */
	assert_false(is_data(fd, 9));
	assert_false(is_data(fd, 0));
	assert_int_equal(pread(fd, buf, PAGE, 4 * PAGE), (ssize_t)PAGE);
	assert_int_equal(buf[0], 0xa4);
	assert_int_equal(buf[PAGE - 1], 0xa4);
	assert_int_equal(pread(fd, buf, PAGE, 100 * PAGE), (ssize_t)PAGE);
	assert_int_equal(buf[17], 0);
	/* nothing is cleared until the commit */
	assert_true(test_vm.dirty_pending[0][0] & 1ull << 3);
	snapshot_dirty_commit(&test_vm);
	assert_int_equal(test_vm.dirty_pending[0][0], 0);
	assert_int_equal(test_vm.dirty_pending[0][2047 / 64], 0);
	close(fd);
}

static void test_failed_write_keeps_pages(void **state)
{
	uint64_t pages;
	int fd = open("/dev/null", O_RDONLY);

	(void)state;
	mark(5);
	test_vm.dirty_base = false;
	assert_true(snapshot_dirty_write(&test_vm, fd, &pages) < 0);
	assert_true(test_vm.dirty_pending[0][0] & 1ull << 5);
	close(fd);
	snapshot_dirty_commit(&test_vm);
	assert_false(test_vm.dirty_pending[0][0] & 1ull << 5);
	assert_true(test_vm.dirty_base); /* the next Diff is against this one */
}

static void test_diff_refused(void **state)
{
	struct device_set devices = {.nr = 1};
	char err[512];

	(void)state;
	assert_int_equal(snapshot_dirty_check(&test_vm, false, err, sizeof(err)), 0);
	assert_int_equal(snapshot_dirty_check(&test_vm, true, err, sizeof(err)), 0);
	test_vm.devices = &devices;
	assert_int_equal(snapshot_dirty_check(&test_vm, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "device servers"));
	assert_int_equal(snapshot_dirty_check(&test_vm, false, err, sizeof(err)), 0);
	test_vm.devices = NULL;
	test_vm.track_dirty = false;
	assert_int_equal(snapshot_dirty_check(&test_vm, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "set machine-config \"track_dirty_pages\": true"));
	/* without tracking, collecting and committing are no-ops */
	assert_int_equal(snapshot_dirty_collect(&test_vm), 0);
	snapshot_dirty_commit(&test_vm);
	test_vm.track_dirty = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_diff_writes_marked_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_write_keeps_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diff_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
