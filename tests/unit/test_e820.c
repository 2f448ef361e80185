// SPDX-License-Identifier: MIT
/* Unit tests for arch/x86/e820.c: the guest memory map both boot paths pass. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static void expect_entry(const struct e820_table *t, unsigned i, uint64_t addr, uint64_t size,
			 uint32_t type)
{
	assert_true(i < t->nr_entries);
	assert_int_equal(t->entries[i].addr, addr);
	assert_int_equal(t->entries[i].size, size);
	assert_int_equal(t->entries[i].type, type);
}

/* The part every map shares: low RAM, the EBDA/BIOS hole, RAM from 1 MiB. */
static void expect_low_map(const struct e820_table *t, uint64_t low_end)
{
	expect_entry(t, 0, 0, LAYOUT_EBDA_START, E820_RAM);
	expect_entry(t, 1, LAYOUT_EBDA_START, LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START, E820_RESERVED);
	expect_entry(t, 2, LAYOUT_HIGH_MEMORY, low_end - LAYOUT_HIGH_MEMORY, E820_RAM);
	expect_entry(t, 3, LAYOUT_ECAM_START, LAYOUT_ECAM_SIZE, E820_RESERVED);
}

static void test_build_256m(void **state)
{
	struct e820_table t;

	(void)state;
	assert_int_equal(e820_build(&t, 256 * MIB), 0);
	assert_int_equal(t.nr_entries, 4);
	expect_low_map(&t, 256 * MIB);
}

static void test_build_minimum(void **state)
{
	struct e820_table t;

	(void)state;
	assert_int_equal(e820_build(&t, LAYOUT_MIN_MEMORY), 0);
	assert_int_equal(t.nr_entries, 4);
	expect_low_map(&t, LAYOUT_MIN_MEMORY);
}

static void test_build_3g(void **state)
{
	struct e820_table t;

	(void)state;
	/* Exactly fills the space below the MMIO hole: nothing above 4 GiB. */
	assert_int_equal(e820_build(&t, 3 * GIB), 0);
	assert_int_equal(t.nr_entries, 4);
	expect_low_map(&t, 3 * GIB);
}

static void test_build_4g(void **state)
{
	struct e820_table t;

	(void)state;
	assert_int_equal(e820_build(&t, 4 * GIB), 0);
	assert_int_equal(t.nr_entries, 5);
	expect_low_map(&t, 3 * GIB);
	expect_entry(&t, 4, LAYOUT_HIGH_RAM_START, 1 * GIB, E820_RAM);
}

static void test_build_8g(void **state)
{
	struct e820_table t;
	uint64_t ram = 0;

	(void)state;
	assert_int_equal(e820_build(&t, 8 * GIB), 0);
	assert_int_equal(t.nr_entries, 5);
	expect_low_map(&t, 3 * GIB);
	expect_entry(&t, 4, 4 * GIB, 5 * GIB, E820_RAM);
	for (unsigned i = 0; i < t.nr_entries; i++)
		if (t.entries[i].type == E820_RAM)
			ram += t.entries[i].size;
	/* All RAM but the EBDA..1 MiB hole is usable. */
	assert_int_equal(ram, 8 * GIB - (LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START));
}

static void test_build_too_small(void **state)
{
	struct e820_table t;

	(void)state;
	assert_int_equal(e820_build(&t, LAYOUT_MIN_MEMORY - 4096), -EINVAL);
	assert_int_equal(t.nr_entries, 0);
	assert_int_equal(e820_build(&t, 0), -EINVAL);
	assert_int_equal(e820_build(&t, 1 * MIB), -EINVAL);
}

static void test_entries_sorted(void **state)
{
	static const uint64_t sizes[] = {2 * MIB, 255 * MIB, 3 * GIB, 3 * GIB + 4096, 64 * GIB};
	struct e820_table t;

	(void)state;
	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		assert_int_equal(e820_build(&t, sizes[s]), 0);
		for (unsigned i = 1; i < t.nr_entries; i++)
			assert_true(t.entries[i].addr >= t.entries[i - 1].addr + t.entries[i - 1].size);
		/* No RAM inside the ECAM window or the MMIO hole. */
		for (unsigned i = 0; i < t.nr_entries; i++)
			if (t.entries[i].type == E820_RAM)
				assert_true(t.entries[i].addr + t.entries[i].size <= LAYOUT_MMIO_HOLE_START ||
					    t.entries[i].addr >= LAYOUT_HIGH_RAM_START);
	}
}

static void test_add_order_and_overlap(void **state)
{
	struct e820_table t;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(e820_add(&t, 0x1000, 0x1000, E820_RAM), 0);
	/* Overlap with the previous entry. */
	assert_int_equal(e820_add(&t, 0x1fff, 0x10, E820_RAM), -EINVAL);
	/* Out of order. */
	assert_int_equal(e820_add(&t, 0, 0x100, E820_RAM), -EINVAL);
	/* Adjacent is fine. */
	assert_int_equal(e820_add(&t, 0x2000, 0x1000, E820_RESERVED), 0);
	/* Empty and wrapping ranges. */
	assert_int_equal(e820_add(&t, 0x10000, 0, E820_RAM), -EINVAL);
	assert_int_equal(e820_add(&t, UINT64_MAX - 10, 100, E820_RAM), -EINVAL);
	assert_int_equal(t.nr_entries, 2);
	expect_entry(&t, 1, 0x2000, 0x1000, E820_RESERVED);
}

static void test_add_enospc(void **state)
{
	struct e820_table t;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < E820_MAX_ENTRIES; i++)
		assert_int_equal(e820_add(&t, i * 0x2000ull, 0x1000, E820_RAM), 0);
	assert_int_equal(t.nr_entries, E820_MAX_ENTRIES);
	assert_int_equal(e820_add(&t, E820_MAX_ENTRIES * 0x2000ull, 0x1000, E820_RAM), -ENOSPC);
	assert_int_equal(t.nr_entries, E820_MAX_ENTRIES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_256m),
		cmocka_unit_test(test_build_minimum),
		cmocka_unit_test(test_build_3g),
		cmocka_unit_test(test_build_4g),
		cmocka_unit_test(test_build_8g),
		cmocka_unit_test(test_build_too_small),
		cmocka_unit_test(test_entries_sorted),
		cmocka_unit_test(test_add_order_and_overlap),
		cmocka_unit_test(test_add_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
