// SPDX-License-Identifier: MIT
/* Unit tests for lib/bus.c: range registration and access dispatch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lib/bus.h"

/* A device that records its last access and answers reads with a pattern. */
struct recorder {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t written[8];
	uint8_t pattern;
};

static void recorder_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct recorder *r = opaque;

	assert_true(len >= 1 && len <= 8);
	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write)
		memcpy(r->written, data, len);
	else
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(r->pattern + i);
}

static void test_dispatch_to_owner(void **state)
{
	struct bus bus = {0};
	struct recorder a = {.pattern = 0x10}, b = {.pattern = 0x20};
	uint8_t data[8];

	(void)state;
	assert_int_equal(bus_register(&bus, 0x3f8, 8, recorder_access, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 5, recorder_access, &b, "b"), 0);
	assert_int_equal(bus.nr_ranges, 2);

	memset(data, 0, sizeof(data));
	assert_true(bus_dispatch(&bus, 0x3fd, data, 1, false));
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_int_equal(a.offset, 5); /* relative to the range start */
	assert_int_equal(a.len, 1);
	assert_false(a.is_write);
	assert_int_equal(data[0], 0x10);

	data[0] = 0xab;
	data[1] = 0xcd;
	assert_true(bus_dispatch(&bus, 0x60, data, 2, true));
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.offset, 0);
	assert_int_equal(b.len, 2);
	assert_true(b.is_write);
	assert_int_equal(b.written[0], 0xab);
	assert_int_equal(b.written[1], 0xcd);

	/* First and last byte of a range. */
	assert_true(bus_dispatch(&bus, 0x3f8, data, 1, false));
	assert_int_equal(a.offset, 0);
	assert_true(bus_dispatch(&bus, 0x3ff, data, 1, false));
	assert_int_equal(a.offset, 7);
	assert_true(bus_dispatch(&bus, 0x64, data, 1, false));
	assert_int_equal(b.offset, 4);
}

static void test_unclaimed(void **state)
{
	struct bus bus = {0};
	struct recorder a = {.pattern = 0};
	uint8_t data[8];

	(void)state;
	assert_int_equal(bus_register(&bus, 0x1000, 0x10, recorder_access, &a, "a"), 0);
	memset(data, 0, sizeof(data));
	assert_false(bus_dispatch(&bus, 0x0fff, data, 8, false));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(data[i], 0xff);
	memset(data, 0x12, sizeof(data));
	assert_false(bus_dispatch(&bus, 0x1010, data, 4, true));
	assert_int_equal(data[0], 0x12); /* a dropped write leaves the buffer alone */
	assert_false(bus_dispatch(&bus, UINT64_MAX, data, 1, false));
	assert_int_equal(data[0], 0xff);
	assert_int_equal(a.calls, 0);

	/* An empty bus claims nothing. */
	struct bus empty = {0};

	memset(data, 0, sizeof(data));
	assert_false(bus_dispatch(&empty, 0, data, 2, false));
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
}

static void test_straddling_access(void **state)
{
	struct bus bus = {0};
	struct recorder a = {.pattern = 0x40};
	uint8_t data[8];

	(void)state;
	assert_int_equal(bus_register(&bus, 0x100, 4, recorder_access, &a, "a"), 0);
	/* A 4-byte read at the last two bytes: the device sees 2 bytes, the
	 * rest reads as ones. */
	memset(data, 0, sizeof(data));
	assert_true(bus_dispatch(&bus, 0x102, data, 4, false));
	assert_int_equal(a.len, 2);
	assert_int_equal(a.offset, 2);
	assert_int_equal(data[0], 0x40);
	assert_int_equal(data[1], 0x41);
	assert_int_equal(data[2], 0xff);
	assert_int_equal(data[3], 0xff);
	/* An 8-byte write at the last byte reaches the device as one byte. */
	memset(data, 0x77, sizeof(data));
	assert_true(bus_dispatch(&bus, 0x103, data, 8, true));
	assert_int_equal(a.len, 1);
	assert_int_equal(a.offset, 3);
	assert_int_equal(a.written[0], 0x77);
}

static void test_register_overlap(void **state)
{
	struct bus bus = {0};
	struct recorder a = {0};

	(void)state;
	assert_int_equal(bus_register(&bus, 0x100, 0x10, recorder_access, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x100, 0x10, recorder_access, &a, "same"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xf8, 0x9, recorder_access, &a, "below"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x10f, 1, recorder_access, &a, "last"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x104, 2, recorder_access, &a, "inside"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x0, 0x1000, recorder_access, &a, "around"), -EEXIST);
	assert_int_equal(bus.nr_ranges, 1);
	/* Adjacent ranges on both sides are fine. */
	assert_int_equal(bus_register(&bus, 0xf0, 0x10, recorder_access, &a, "before"), 0);
	assert_int_equal(bus_register(&bus, 0x110, 0x10, recorder_access, &a, "after"), 0);
	assert_int_equal(bus.nr_ranges, 3);
}

static void test_register_invalid(void **state)
{
	struct bus bus = {0};
	struct recorder a = {0};

	(void)state;
	assert_int_equal(bus_register(&bus, 0x100, 0, recorder_access, &a, "empty"), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x100, 4, NULL, &a, "no handler"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 1, 4, recorder_access, &a, "wraps"),
			 -EINVAL);
	assert_int_equal(bus_register(&bus, 1, UINT64_MAX, recorder_access, &a, "wraps"), -EINVAL);
	assert_int_equal(bus.nr_ranges, 0);
}

static void test_register_full(void **state)
{
	struct bus bus = {0};
	struct recorder r[BUS_MAX_DEVICES] = {0};
	uint8_t data[1];

	(void)state;
	for (unsigned i = 0; i < BUS_MAX_DEVICES; i++)
		assert_int_equal(bus_register(&bus, 0x10 * i, 0x10, recorder_access, &r[i], "r"),
				 0);
	assert_int_equal(bus_register(&bus, 0x10000, 0x10, recorder_access, &r[0], "one more"),
			 -ENOSPC);
	/* Overlap is reported before fullness: it is the caller's real bug. */
	assert_int_equal(bus_register(&bus, 0, 1, recorder_access, &r[0], "overlap"), -EEXIST);
	assert_int_equal(bus.nr_ranges, BUS_MAX_DEVICES);
	for (unsigned i = 0; i < BUS_MAX_DEVICES; i++) {
		assert_true(bus_dispatch(&bus, 0x10 * i + 3, data, 1, false));
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].offset, 3);
	}
}

static unsigned after_exit_calls;
static void *after_exit_opaque;

static void count_after_exit(void *opaque)
{
	after_exit_calls++;
	after_exit_opaque = opaque;
}

/* The hook runs once per exit, for the range the exit's address is in now,
 * with that range's opaque. */
static void test_after_exit_hook(void **state)
{
	struct bus bus = {0};
	struct recorder uart = {0}, other = {0};
	uint8_t data[8] = {0};

	(void)state;
	after_exit_calls = 0;
	assert_int_equal(bus_register(&bus, 0x3f8, 8, recorder_access, &uart, "uart"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 5, recorder_access, &other, "other"), 0);
	assert_int_equal(bus_set_after_exit(&bus, 0x3f8, count_after_exit), 0);
	/* only a range's base names it */
	assert_int_equal(bus_set_after_exit(&bus, 0x3f9, count_after_exit), -ENOENT);

	/* a `rep outsb` of 3 bytes: three accesses, one end of exit */
	for (int i = 0; i < 3; i++)
		assert_true(bus_dispatch(&bus, 0x3f8, data, 1, true));
	assert_int_equal(after_exit_calls, 0);
	bus_after_exit(&bus, 0x3f8);
	assert_int_equal(uart.calls, 3);
	assert_int_equal(after_exit_calls, 1);
	assert_ptr_equal(after_exit_opaque, &uart);
	bus_after_exit(&bus, 0x3fd); /* any port of the range */
	assert_int_equal(after_exit_calls, 2);

	/* ranges without a hook, and unclaimed addresses: nothing */
	bus_after_exit(&bus, 0x60);
	bus_after_exit(&bus, 0x1234);
	assert_int_equal(after_exit_calls, 2);

	/* the hook moves with its range */
	assert_int_equal(bus_move(&bus, 0, 0x2f8, 8), 0);
	bus_after_exit(&bus, 0x3f8);
	assert_int_equal(after_exit_calls, 2);
	bus_after_exit(&bus, 0x2f8);
	assert_int_equal(after_exit_calls, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_to_owner),
		cmocka_unit_test(test_unclaimed),
		cmocka_unit_test(test_straddling_access),
		cmocka_unit_test(test_register_overlap),
		cmocka_unit_test(test_register_invalid),
		cmocka_unit_test(test_register_full),
		cmocka_unit_test(test_after_exit_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
