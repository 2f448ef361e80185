// SPDX-License-Identifier: MIT
/*
 * Unit tests for lib/gmem.c's mappings: guest RAM (and a device server's
 * view of it) is mapped at an address congruent to its file offset modulo
 * 2 MiB, so the host can back it with 2 MiB pages; the address space
 * reserved around it to find that address is given back.  On hugetlbfs,
 * guest RAM is whole 2 MiB pages, reserved when it is created.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "lib/gmem.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define HUGE GMEM_HUGE_PAGE_SIZE

/* msync(2): ENOMEM when the page is not mapped at all. */
static int mapped(const void *page)
{
	return msync((void *)((uintptr_t)page & ~4095ul), 4096, MS_ASYNC) == 0;
}

static void test_regions_start_on_huge_pages(void **state)
{
	/* Odd sizes too: the regions start 2 MiB-aligned whatever their size. */
	static const uint64_t sizes[] = {2 * MIB, 64 * MIB + 4096, 4 * GIB + 6 * MIB};
	struct gmem mem;

	(void)state;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(gmem_create(&mem, sizes[i], GMEM_BACKING_SHMEM), 0);
		for (unsigned r = 0; r < mem.nr_regions; r++) {
			const struct gmem_region *region = &mem.regions[r];

			if (((uintptr_t)region->host - region->fd_offset) % HUGE)
				fail_msg("%llu MiB: region %u at %p, file offset 0x%llx: not 2 MiB "
					 "congruent",
					 (unsigned long long)(sizes[i] >> 20), r, region->host,
					 (unsigned long long)region->fd_offset);
			/* nothing of the reservation is left before or after it */
			assert_false(mapped(region->host - 4096));
			assert_false(mapped(region->host + ((region->size + 4095) & ~4095ull)));
		}
		assert_int_equal(mem.nr_regions, sizes[i] > LAYOUT_MMIO_HOLE_START ? 2 : 1);
		gmem_destroy(&mem);
	}
}

static void test_map_fd_keeps_offset_congruent(void **state)
{
	const uint64_t offset = 3 * 4096, len = 4 * MIB;
	int fd = memfd_create("test-gmem", MFD_CLOEXEC);
	uint8_t byte = 0;
	uint8_t *map;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 * MIB), 0);
	assert_int_equal(gmem_map_fd(fd, offset, len, 1, (void **)&map), 0);
	assert_int_equal(((uintptr_t)map - offset) % HUGE, 0);
	/* the right part of the file, read-write and shared */
	map[len - 1] = 0x5a;
	assert_int_equal(pread(fd, &byte, 1, (off_t)(offset + len - 1)), 1);
	assert_int_equal(byte, 0x5a);
	assert_false(mapped(map - 4096));
	assert_false(mapped(map + len));
	munmap(map, len);
	assert_int_equal(gmem_map_fd(fd, 0, 0, 1, (void **)&map), -EINVAL);
	assert_int_equal(gmem_map_fd(-1, 0, 4096, 1, (void **)&map), -EBADF);
	close(fd);
}

/* "always within_size advise [never] deny force" -> "never" */
static int shmem_thp_allowed(void)
{
	char buf[256] = "", *open;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");

	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	open = strchr(buf, '[');
	return open && (!strncmp(open, "[advise]", 8) || !strncmp(open, "[always]", 8) ||
			!strncmp(open, "[within_size]", 13));
}

/* ShmemPmdMapped of the mapping that starts at map, in kB (/proc/self/smaps). */
static long pmd_mapped_kb(const void *map)
{
	unsigned long start, end;
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	int inside = 0;
	long kb = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			inside = start == (unsigned long)(uintptr_t)map;
		else if (inside && sscanf(line, "ShmemPmdMapped: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Where the host allows shmem THP, touching guest RAM maps 2 MiB pages. */
static void test_thp_where_the_host_allows_it(void **state)
{
	struct gmem mem;
	long kb;

	(void)state;
	if (!shmem_thp_allowed()) {
		print_message("shmem_enabled does not allow THP here; not checked\n");
		skip();
	}
	assert_int_equal(gmem_create(&mem, 16 * MIB, GMEM_BACKING_SHMEM), 0);
	memset(mem.regions[0].host, 1, 8 * MIB);
	kb = pmd_mapped_kb(mem.regions[0].host);
	if (kb < 2048)
		fail_msg("ShmemPmdMapped %ld kB after touching 8 MiB: no 2 MiB pages", kb);
	gmem_destroy(&mem);
}

static void test_hugetlb_needs_whole_pages(void **state)
{
	struct gmem mem;

	(void)state;
	assert_int_equal(gmem_create(&mem, 3 * MIB, GMEM_BACKING_HUGETLB_2M), -EINVAL);
	assert_int_equal(mem.fd, -1);
	assert_int_equal(mem.nr_regions, 0);
}

static long hugetlb_2m(const char *name)
{
	char path[128];
	long value = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-2048kB/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

/* One page more than the pool has free: -ENOMEM now, not a SIGBUS when the
 * guest touches the last page (what MAP_NORESERVE would give). */
static void test_hugetlb_reserves_when_created(void **state)
{
	long free_pages = hugetlb_2m("free_hugepages"), reserved = hugetlb_2m("resv_hugepages");
	long overcommit = hugetlb_2m("nr_overcommit_hugepages");
	struct gmem mem;
	uint64_t size;

	(void)state;
	if (free_pages < 0 || reserved < 0 || overcommit != 0) {
		print_message("no 2 MiB hugetlb pool, or surplus pages allowed; not checked\n");
		skip();
	}
	size = (uint64_t)(free_pages - reserved + 1) * HUGE;
	assert_int_equal(gmem_create(&mem, size, GMEM_BACKING_HUGETLB_2M), -ENOMEM);
	assert_int_equal(mem.fd, -1);
	assert_int_equal(hugetlb_2m("resv_hugepages"), reserved); /* nothing left held */
}

/* A restore's RAM: the memory file mapped privately, laid out as
 * gmem_create lays it out; the guest's writes never reach the file; a file
 * of another size is refused. */
static void test_private_from_file(void **state)
{
	char path[] = "/tmp/isola-test-gmem-XXXXXX";
	uint64_t size = 64ull << 20, word = 0x1122334455667788ull, got = 0;
	struct gmem mem;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, &word, sizeof(word), 0x5000), (ssize_t)sizeof(word));
	assert_int_equal(gmem_create_private(&mem, fd, size), 0);
	assert_int_equal(mem.fd, -1); /* no memfd: no device server maps it */
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(mem.ram_size, size);
	assert_int_equal(gmem_read(&mem, 0x5000, &got, sizeof(got)), 0);
	assert_true(got == word);
	word = 0xdeadbeefull;
	assert_int_equal(gmem_write(&mem, 0x5000, &word, sizeof(word)), 0);
	assert_int_equal(pread(fd, &got, sizeof(got), 0x5000), (ssize_t)sizeof(got));
	assert_true(got == 0x1122334455667788ull); /* copy-on-write */
	gmem_destroy(&mem);

	assert_int_equal(gmem_create_private(&mem, fd, size * 2), -EMEDIUMTYPE);
	assert_int_equal(gmem_create_private(&mem, fd, size / 2), -EMEDIUMTYPE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_regions_start_on_huge_pages),
	    cmocka_unit_test(test_map_fd_keeps_offset_congruent),
	    cmocka_unit_test(test_thp_where_the_host_allows_it),
	    cmocka_unit_test(test_hugetlb_needs_whole_pages),
	    cmocka_unit_test(test_hugetlb_reserves_when_created),
	    cmocka_unit_test(test_private_from_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
