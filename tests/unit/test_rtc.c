// SPDX-License-Identifier: MIT
/* Unit tests for arch/x86/rtc.c: MC146818 time in BCD, status registers,
 * CMOS memory-size bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "arch/x86/rtc.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static uint8_t cmos_read(struct rtc *rtc, uint8_t index)
{
	uint8_t val = index;

	rtc_access(rtc, 0, &val, 1, true);
	val = 0x5a;
	rtc_access(rtc, 1, &val, 1, false);
	return val;
}

static void cmos_write(struct rtc *rtc, uint8_t index, uint8_t val)
{
	rtc_access(rtc, 0, &index, 1, true);
	rtc_access(rtc, 1, &val, 1, true);
}

static unsigned from_bcd(uint8_t v)
{
	assert_true((v & 0x0f) <= 9);
	assert_true((v >> 4) <= 9);
	return (v >> 4) * 10 + (v & 0x0f);
}

static void test_time_is_host_utc_in_bcd(void **state)
{
	struct rtc rtc;
	struct tm tm = {0};
	time_t before, after, rtc_time;
	unsigned century;

	(void)state;
	rtc_init(&rtc, 256 * MIB);
	before = time(NULL);
	tm.tm_sec = (int)from_bcd(cmos_read(&rtc, 0x00));
	tm.tm_min = (int)from_bcd(cmos_read(&rtc, 0x02));
	tm.tm_hour = (int)from_bcd(cmos_read(&rtc, 0x04));
	tm.tm_mday = (int)from_bcd(cmos_read(&rtc, 0x07));
	tm.tm_mon = (int)from_bcd(cmos_read(&rtc, 0x08)) - 1;
	century = from_bcd(cmos_read(&rtc, 0x32));
	tm.tm_year = (int)(century * 100 + from_bcd(cmos_read(&rtc, 0x09))) - 1900;
	after = time(NULL);
	rtc_time = timegm(&tm);
	/* Reads straddling a minute or hour roll-over may be up to an hour off;
	 * within the same second they agree. */
	if (rtc_time < before - 1 || rtc_time > after + 1) {
		assert_true(labs((long)(rtc_time - before)) <= 3600);
	}
	assert_true(century == 20 || century == 21);
	/* Ranges, and day of week 1..7 (Sunday = 1). */
	assert_true(from_bcd(cmos_read(&rtc, 0x00)) < 60);
	assert_true(from_bcd(cmos_read(&rtc, 0x02)) < 60);
	assert_true(from_bcd(cmos_read(&rtc, 0x04)) < 24); /* 24-hour mode */
	unsigned wday = from_bcd(cmos_read(&rtc, 0x06));

	assert_true(wday >= 1 && wday <= 7);
	struct tm now_tm;
	time_t now = time(NULL);

	gmtime_r(&now, &now_tm);
	if (now_tm.tm_hour != 23 || now_tm.tm_min != 59) /* not at midnight's edge */
		assert_int_equal(wday, (unsigned)now_tm.tm_wday + 1);
	rtc_destroy(&rtc);
}

static void test_time_matches_closely(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc, 256 * MIB);
	/* Retry until both reads fall in one host second: then they must be
	 * exactly the host's clock. */
	for (int attempt = 0; attempt < 10; attempt++) {
		time_t before = time(NULL);
		unsigned sec = from_bcd(cmos_read(&rtc, 0x00));
		unsigned min = from_bcd(cmos_read(&rtc, 0x02));
		unsigned hour = from_bcd(cmos_read(&rtc, 0x04));
		time_t after = time(NULL);
		struct tm tm;

		if (before != after)
			continue;
		gmtime_r(&before, &tm);
		assert_int_equal(sec, (unsigned)tm.tm_sec);
		assert_int_equal(min, (unsigned)tm.tm_min);
		assert_int_equal(hour, (unsigned)tm.tm_hour);
		rtc_destroy(&rtc);
		return;
	}
	fail_msg("could not read the RTC within one second in 10 tries");
}

static void test_status_registers(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc, 256 * MIB);
	/* A: divider 010 (32.768 kHz), rate 0110, update-in-progress clear. */
	assert_int_equal(cmos_read(&rtc, 0x0a), 0x26);
	assert_int_equal(cmos_read(&rtc, 0x0a) & 0x80, 0);
	/* B: 24-hour, BCD (DM bit 2 clear). */
	assert_int_equal(cmos_read(&rtc, 0x0b), 0x02);
	/* C: no interrupt flags. D: valid RAM and time. */
	assert_int_equal(cmos_read(&rtc, 0x0c), 0x00);
	assert_int_equal(cmos_read(&rtc, 0x0d), 0x80);

	/* The guest may set B's other bits, never 12-hour or binary mode. */
	cmos_write(&rtc, 0x0b, 0x84);
	assert_int_equal(cmos_read(&rtc, 0x0b), 0x82);
	cmos_write(&rtc, 0x0b, 0x00);
	assert_int_equal(cmos_read(&rtc, 0x0b), 0x02);
	/* A, C and D are not the guest's to write, nor is the time. */
	cmos_write(&rtc, 0x0a, 0xff);
	cmos_write(&rtc, 0x0c, 0xff);
	cmos_write(&rtc, 0x0d, 0x00);
	assert_int_equal(cmos_read(&rtc, 0x0a), 0x26);
	assert_int_equal(cmos_read(&rtc, 0x0c), 0x00);
	assert_int_equal(cmos_read(&rtc, 0x0d), 0x80);
	cmos_write(&rtc, 0x09, 0x99);
	cmos_write(&rtc, 0x04, 0x99);
	assert_true(from_bcd(cmos_read(&rtc, 0x04)) < 24);
	rtc_destroy(&rtc);
}

static void test_cmos_ram(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc, 256 * MIB);
	cmos_write(&rtc, 0x0e, 0x12);
	cmos_write(&rtc, 0x7f, 0x34);
	assert_int_equal(cmos_read(&rtc, 0x0e), 0x12);
	assert_int_equal(cmos_read(&rtc, 0x7f), 0x34);
	/* The index register itself reads as ones. */
	uint8_t val = 0;

	rtc_access(&rtc, 0, &val, 1, false);
	assert_int_equal(val, 0xff);
	rtc_destroy(&rtc);
}

static void test_index_masks_nmi_bit(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc, 256 * MIB);
	/* Linux writes the index with bit 7 (NMI disable) set. */
	assert_int_equal(cmos_read(&rtc, 0x80 | 0x0a), 0x26);
	assert_int_equal(cmos_read(&rtc, 0x80 | 0x0d), 0x80);
	cmos_write(&rtc, 0x80 | 0x7f, 0x77);
	assert_int_equal(cmos_read(&rtc, 0x7f), 0x77);
	assert_int_equal(cmos_read(&rtc, 0xff), 0x77);
	assert_int_equal(rtc.index, 0x7f);
	rtc_destroy(&rtc);
}

static void expect_memory_bytes(uint64_t ram, uint16_t above_16m, uint32_t above_4g)
{
	struct rtc rtc;

	rtc_init(&rtc, ram);
	assert_int_equal(cmos_read(&rtc, 0x34), above_16m & 0xff);
	assert_int_equal(cmos_read(&rtc, 0x35), above_16m >> 8);
	assert_int_equal(cmos_read(&rtc, 0x5b), above_4g & 0xff);
	assert_int_equal(cmos_read(&rtc, 0x5c), (above_4g >> 8) & 0xff);
	assert_int_equal(cmos_read(&rtc, 0x5d), above_4g >> 16);
	rtc_destroy(&rtc);
}

static void test_memory_size_bytes(void **state)
{
	(void)state;
	/* 0x34/0x35: RAM between 16 MiB and 4 GiB in 64 KiB units; 0x5b-0x5d:
	 * RAM above 4 GiB in 64 KiB units (SeaBIOS/QEMU convention). */
	expect_memory_bytes(256 * MIB, (256 - 16) * 16, 0);
	expect_memory_bytes(16 * MIB, 0, 0);
	expect_memory_bytes(2 * MIB, 0, 0);
	expect_memory_bytes(3 * GIB, (3 * 1024 - 16) * 16, 0);
	/* 5 GiB: 3 GiB below the PCI hole, 2 GiB from 4 GiB up. */
	expect_memory_bytes(5 * GIB, (3 * 1024 - 16) * 16, 2 * 1024 * 16);
	/* 1 TiB: the 3-byte field holds it (0x100000 - 0x3000 units). */
	expect_memory_bytes(1ull << 40, (3 * 1024 - 16) * 16, (1u << 24) - 3 * 1024 * 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_is_host_utc_in_bcd),
		cmocka_unit_test(test_time_matches_closely),
		cmocka_unit_test(test_status_registers),
		cmocka_unit_test(test_cmos_ram),
		cmocka_unit_test(test_index_masks_nmi_bit),
		cmocka_unit_test(test_memory_size_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
