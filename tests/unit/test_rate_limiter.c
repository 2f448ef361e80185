// SPDX-License-Identifier: MIT
/* Unit tests for lib/rate_limiter.c: the text form (parse, refusals, format),
 * Firecracker's bucket arithmetic with the time passed in, all-or-nothing
 * consumption and the wait it predicts. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lib/rate_limiter.h"

#define MS 1000000ull
#define T0 (1000 * MS) /* an arbitrary start of the clock */

static struct rate_limiter parse_ok(const char *spec)
{
	struct rate_limiter rl;
	char err[256];

	memset(&rl, 0xa5, sizeof(rl));
	int rc = rate_limiter_parse(spec, &rl, err, sizeof(err));
	if (rc != 0)
		fail_msg("'%s' refused: %s", spec, err);
	return rl;
}

/* Refused with -EINVAL and a message that contains `needle`. */
static void parse_refused(const char *spec, const char *needle)
{
	struct rate_limiter rl;
	char err[256];

	memset(&rl, 0, sizeof(rl));
	rl.bytes.size = 77; /* untouched by a refusal */
	assert_int_equal(rate_limiter_parse(spec, &rl, err, sizeof(err)), -EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", spec, err, needle);
	assert_int_equal(rl.bytes.size, 77);
}

static void test_parse_both_parts(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=1000:100:500,ops=10:1000");

	assert_int_equal(rl.bytes.size, 1000);
	assert_int_equal(rl.bytes.refill_time_ms, 100);
	assert_int_equal(rl.bytes.one_time_burst, 500);
	assert_int_equal(rl.bytes.budget, 1000);
	assert_int_equal(rl.ops.size, 10);
	assert_int_equal(rl.ops.refill_time_ms, 1000);
	assert_int_equal(rl.ops.one_time_burst, 0);
	assert_false(rate_limiter_is_unlimited(&rl));

	/* either order, either part alone */
	rl = parse_ok("ops=5:10,bytes=7:20");
	assert_int_equal(rl.ops.size, 5);
	assert_int_equal(rl.bytes.size, 7);
	rl = parse_ok("ops=5:10");
	assert_int_equal(rl.bytes.size, 0);
	rl = parse_ok("bytes=18446744073709551615:1");
	assert_true(rl.bytes.size == UINT64_MAX);
}

static void test_parse_no_limit(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("");
	assert_true(rate_limiter_is_unlimited(&rl));
	/* size 0 is no bucket in Firecracker, whatever the refill time */
	rl = parse_ok("bytes=0:0,ops=0:100:5");
	assert_true(rate_limiter_is_unlimited(&rl));
	assert_int_equal(rl.ops.one_time_burst, 0);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, 0));
	assert_int_equal(rate_limiter_wait_ms(&rl, UINT64_MAX, 0), 0);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	parse_refused("bytes=10:0", "refill time above 0");
	parse_refused("bytes=18446744073709551616:1", "size is too large");
	parse_refused("bytes=1:99999999999999999999", "refill time (ms) is too large");
	parse_refused("bytes=1:18446744073710", "refill time is too large");
	parse_refused("bytes=1:1:18446744073709551616", "one-time burst is too large");
	parse_refused("bytes=10", "no refill time");
	parse_refused("bytes=10:", "refill time (ms) is not a decimal");
	parse_refused("bytes=:10", "size is not a decimal");
	parse_refused("bytes=-1:10", "size is not a decimal");
	parse_refused("bytes= 1:10", "size is not a decimal");
	parse_refused("bytes=1:10:5:5", "unexpected ':5'");
	parse_refused("bytes=1:10x", "unexpected 'x'");
	parse_refused("bytes=1:10,bytes=2:10", "given twice");
	parse_refused("packets=1:10", "unknown bucket 'packets'");
	parse_refused("bytes", "no '='");
	parse_refused("bytes=1:10,", "ends with ','");
	parse_refused("bytes=1:10,,ops=1:1", "empty part");
	parse_refused(",ops=1:1", "empty part");
	parse_refused(NULL, "no text");
}

static void test_format_round_trip(void **state)
{
	(void)state;
	static const char *const specs[] = {
	    "",
	    "bytes=1000:100:500,ops=10:1000",
	    "bytes=1:1",
	    "ops=3:4:5",
	    "bytes=18446744073709551615:18446744073709:18446744073709551615",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct rate_limiter rl = parse_ok(specs[i]);
		assert_int_equal(rate_limiter_format(&rl, buf, sizeof(buf)), strlen(specs[i]));
		assert_string_equal(buf, specs[i]);
	}
	/* the configured burst, not what is left of it */
	struct rate_limiter rl = parse_ok("ops=5:10,bytes=7:20:3");
	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 3, T0));
	assert_int_equal(rate_limiter_format(&rl, buf, sizeof(buf)), 21);
	assert_string_equal(buf, "bytes=7:20:3,ops=5:10");
	/* too small a buffer */
	assert_int_equal(rate_limiter_format(&rl, buf, 21), -ENOSPC);
	assert_int_equal(strlen(buf), 20);
	assert_int_equal(rate_limiter_format(&rl, buf, 5), -ENOSPC);
	assert_string_equal(buf, "byte");
}

/* 1000 bytes per 100 ms: 10 bytes per ms. */
static void test_bytes_bucket_refills_at_its_rate(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=1000:100");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 600, T0));
	assert_true(rate_limiter_consume(&rl, 400, T0));
	assert_false(rate_limiter_consume(&rl, 1, T0));
	assert_int_equal(rate_limiter_wait_ms(&rl, 1, T0), 1); /* 0.1 ms, rounded up */
	assert_int_equal(rate_limiter_wait_ms(&rl, 500, T0), 50);
	assert_false(rate_limiter_consume(&rl, 500, T0 + 49 * MS));
	assert_int_equal(rate_limiter_wait_ms(&rl, 500, T0 + 49 * MS), 1);
	assert_true(rate_limiter_consume(&rl, 500, T0 + 50 * MS));
	assert_int_equal(rl.bytes.budget, 0);
	/* a full bucket does not grow: 2 s later, 1000 and no more */
	assert_true(rate_limiter_consume(&rl, 1000, T0 + 2000 * MS));
	assert_false(rate_limiter_consume(&rl, 1, T0 + 2000 * MS));
}

/* Many small refills keep the fraction of a token: the rate is exact. */
static void test_fractions_of_tokens_are_kept(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=3:1000"); /* one token per 333.3 ms */
	uint64_t now = T0;
	unsigned passed = 0;

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 3, now));
	/* poll every 7 ms for 10 s: 30 tokens, not fewer */
	for (unsigned i = 0; i < 10000 / 7; i++) {
		now += 7 * MS;
		if (rate_limiter_consume(&rl, 1, now))
			passed++;
	}
	assert_int_equal(passed, 29); /* 9996 ms: 29.99 tokens */
	now = T0 + 10000 * MS;
	assert_true(rate_limiter_consume(&rl, 1, now));
}

/* An operation larger than the bucket passes, then the excess is paid back. */
static void test_over_size_operation(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=1000:100");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 200, T0));
	/* 1500 with 800 in the bucket: 700 owed = 70 ms */
	assert_true(rate_limiter_consume(&rl, 1500, T0));
	assert_int_equal(rl.bytes.budget, 0);
	assert_int_equal(rate_limiter_wait_ms(&rl, 1, T0), 71);
	assert_int_equal(rate_limiter_wait_ms(&rl, 5000, T0), 70);
	assert_false(rate_limiter_consume(&rl, 1, T0 + 70 * MS));
	assert_false(rate_limiter_consume(&rl, 5000, T0 + 69 * MS));
	assert_true(rate_limiter_consume(&rl, 5000, T0 + 70 * MS));
	/* 5000 from an empty bucket: 500 ms owed */
	assert_int_equal(rate_limiter_wait_ms(&rl, 10, T0 + 70 * MS), 501);
	assert_true(rate_limiter_consume(&rl, 10, T0 + 571 * MS));
}

static void test_one_time_burst_first(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=100:1000:250");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 200, T0)); /* burst: 50 left */
	assert_int_equal(rl.bytes.budget, 100);
	assert_int_equal(rl.bytes.one_time_burst, 50);
	assert_true(rate_limiter_consume(&rl, 120, T0)); /* 50 burst + 70 budget */
	assert_int_equal(rl.bytes.one_time_burst, 0);
	assert_int_equal(rl.bytes.budget, 30);
	assert_false(rate_limiter_consume(&rl, 31, T0));
	assert_true(rate_limiter_consume(&rl, 30, T0));
	/* a refusal does not spend the burst (Firecracker loses it; we do not) */
	rl = parse_ok("bytes=100:1000:10");
	rate_limiter_start(&rl, T0);
	rl.bytes.budget = 0;
	assert_false(rate_limiter_consume(&rl, 20, T0));
	assert_int_equal(rl.bytes.one_time_burst, 10);
	assert_int_equal(rate_limiter_wait_ms(&rl, 20, T0), 100); /* 10 from the burst */
}

/* Both buckets pass or neither is charged. */
static void test_all_or_nothing(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=1000:100,ops=2:100");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 100, T0));
	assert_false(rate_limiter_consume(&rl, 901, T0)); /* bytes refuse: no op taken */
	assert_int_equal(rl.ops.budget, 1);
	assert_true(rate_limiter_consume(&rl, 100, T0));
	assert_false(rate_limiter_consume(&rl, 1, T0)); /* ops refuse: no byte taken */
	assert_int_equal(rl.bytes.budget, 800);
	/* ops refill at 1 per 50 ms; the wait is the slower bucket's */
	assert_int_equal(rate_limiter_wait_ms(&rl, 1, T0), 50);
	assert_int_equal(rate_limiter_wait_ms(&rl, 900, T0), 50);
	assert_int_equal(rate_limiter_wait_ms(&rl, 1000, T0 + 1 * MS), 49); /* ops: 50 - 1 */
	assert_true(rate_limiter_consume(&rl, 800, T0 + 50 * MS));
}

/* Time going backwards (or standing) makes no tokens and no harm. */
static void test_clock_before_last_update(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("ops=1:100");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, 0, T0));
	assert_false(rate_limiter_consume(&rl, 0, T0 - 5 * MS));
	assert_int_equal(rate_limiter_wait_ms(&rl, 0, T0 - 5 * MS), 105);
	assert_true(rate_limiter_consume(&rl, 0, T0 + 100 * MS));
}

/* Huge values saturate instead of wrapping. */
static void test_no_overflow(void **state)
{
	(void)state;
	struct rate_limiter rl = parse_ok("bytes=1:18446744073709");

	rate_limiter_start(&rl, T0);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, T0)); /* over-size */
	assert_int_equal(rl.bytes.last_update, UINT64_MAX);
	assert_false(rate_limiter_consume(&rl, 1, UINT64_MAX - 1));
	assert_true(rate_limiter_wait_ms(&rl, 1, T0) > 1000000000000ull);
	rl = parse_ok("bytes=18446744073709551615:1");
	rate_limiter_start(&rl, 0);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, 0));
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, UINT64_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_both_parts),
	    cmocka_unit_test(test_parse_no_limit),
	    cmocka_unit_test(test_parse_refusals),
	    cmocka_unit_test(test_format_round_trip),
	    cmocka_unit_test(test_bytes_bucket_refills_at_its_rate),
	    cmocka_unit_test(test_fractions_of_tokens_are_kept),
	    cmocka_unit_test(test_over_size_operation),
	    cmocka_unit_test(test_one_time_burst_first),
	    cmocka_unit_test(test_all_or_nothing),
	    cmocka_unit_test(test_clock_before_last_update),
	    cmocka_unit_test(test_no_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
