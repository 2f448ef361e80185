// SPDX-License-Identifier: MIT
/* Unit tests for arch/x86/acpi_pm.c: PM1a event/control blocks, the PM timer
 * and the 0xCF9 reset register (ACPI 6.4 §4.8). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch/x86/acpi_pm.h"
#include "isola/abi.h"

#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PM_TMR 8
#define SCI_EN 0x0001
#define SLP_TYP(n) ((uint16_t)((n) << 10))
#define SLP_EN 0x2000

struct fixture {
	struct acpi_pm pm;
	struct platform_events events;
	unsigned resets, poweroffs;
};

static void fake_reset(void *opaque, const char *source)
{
	struct fixture *f = opaque;

	assert_non_null(source);
	f->resets++;
}

static void fake_poweroff(void *opaque, const char *source)
{
	struct fixture *f = opaque;

	assert_non_null(source);
	f->poweroffs++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->events = (struct platform_events){fake_reset, fake_poweroff, f};
	acpi_pm_init(&f->pm, &f->events);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	acpi_pm_destroy(&f->pm);
	free(f);
	return 0;
}

static void out16(struct fixture *f, unsigned offset, uint16_t val)
{
	uint8_t data[2];

	memcpy(data, &val, 2);
	acpi_pm_access(&f->pm, offset, data, 2, true);
}

static uint16_t in16(struct fixture *f, unsigned offset)
{
	uint8_t data[2] = {0x5a, 0x5a};
	uint16_t val;

	acpi_pm_access(&f->pm, offset, data, 2, false);
	memcpy(&val, data, 2);
	return val;
}

static uint32_t in32(struct fixture *f, unsigned offset)
{
	uint8_t data[4] = {0x5a, 0x5a, 0x5a, 0x5a};
	uint32_t val;

	acpi_pm_access(&f->pm, offset, data, 4, false);
	memcpy(&val, data, 4);
	return val;
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in16(f, PM1_STS), 0);
	assert_int_equal(in16(f, PM1_EN), 0);
	assert_int_equal(in16(f, PM1_CNT), SCI_EN); /* always in ACPI mode */
	assert_int_equal(in16(f, 6), 0);
	/* Past the block: ones. */
	uint8_t data[4];

	acpi_pm_access(&f->pm, 12, data, 1, false);
	assert_int_equal(data[0], 0xff);
	acpi_pm_access(&f->pm, 10, data, 4, false);
	assert_int_equal(data[1], 0x00); /* timer bits 31:24 */
	assert_int_equal(data[2], 0xff);
	assert_int_equal(data[3], 0xff);
}

static void test_s5_powers_off(void **state)
{
	struct fixture *f = *state;

	out16(f, PM1_CNT, SLP_TYP(ISOLA_ACPI_SLP_TYP_S5) | SLP_EN);
	assert_int_equal(f->poweroffs, 1);
	assert_int_equal(f->resets, 0);
	/* SLP_EN reads as zero; SLP_TYP stays. */
	assert_int_equal(in16(f, PM1_CNT), SLP_TYP(5) | SCI_EN);
}

static void test_sleep_needs_en_and_s5(void **state)
{
	struct fixture *f = *state;

	/* SLP_TYP 5 without SLP_EN: only programs the type. */
	out16(f, PM1_CNT, SLP_TYP(5));
	assert_int_equal(f->poweroffs, 0);
	/* SLP_EN with other sleep types (S0..S4, 6, 7): nothing. */
	for (uint16_t typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		out16(f, PM1_CNT, SLP_TYP(typ) | SLP_EN);
		assert_int_equal(f->poweroffs, 0);
	}
	/* Other bits alongside are fine. */
	out16(f, PM1_CNT, SLP_TYP(5) | SLP_EN | 0x0006);
	assert_int_equal(f->poweroffs, 1);
}

static void test_s5_by_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t hi = (uint8_t)((SLP_TYP(5) | SLP_EN) >> 8);

	/* A byte write to the high half of PM1_CNT, as some AML does. */
	acpi_pm_access(&f->pm, PM1_CNT + 1, &hi, 1, true);
	assert_int_equal(f->poweroffs, 1);
	assert_int_equal(in16(f, PM1_CNT) & SCI_EN, SCI_EN);
}

static void test_sci_en_always_set(void **state)
{
	struct fixture *f = *state;
	uint8_t zero = 0;

	out16(f, PM1_CNT, 0);
	assert_int_equal(in16(f, PM1_CNT), SCI_EN);
	acpi_pm_access(&f->pm, PM1_CNT, &zero, 1, true);
	assert_int_equal(in16(f, PM1_CNT) & SCI_EN, SCI_EN);
	out16(f, PM1_CNT, 0x0004); /* GBL_RLS and friends are kept */
	assert_int_equal(in16(f, PM1_CNT), 0x0004 | SCI_EN);
}

static void test_status_write_one_to_clear(void **state)
{
	struct fixture *f = *state;
	uint8_t byte;

	f->pm.pm1_status = 0x8121; /* WAK, PWRBTN, GBL, TMR */
	out16(f, PM1_STS, 0x0000); /* writing zeros changes nothing */
	assert_int_equal(in16(f, PM1_STS), 0x8121);
	out16(f, PM1_STS, 0x0001);
	assert_int_equal(in16(f, PM1_STS), 0x8120);
	out16(f, PM1_STS, 0x0100);
	assert_int_equal(in16(f, PM1_STS), 0x8020);
	byte = 0x80; /* high byte alone: bit 15 */
	acpi_pm_access(&f->pm, PM1_STS + 1, &byte, 1, true);
	assert_int_equal(in16(f, PM1_STS), 0x0020);
	out16(f, PM1_STS, 0xffff);
	assert_int_equal(in16(f, PM1_STS), 0);
	/* Status writes leave the enable register alone. */
	assert_int_equal(in16(f, PM1_EN), 0);
}

static void test_enable_register(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 0x01;

	out16(f, PM1_EN, 0x0121);
	assert_int_equal(in16(f, PM1_EN), 0x0121);
	acpi_pm_access(&f->pm, PM1_EN + 1, &byte, 1, true);
	assert_int_equal(in16(f, PM1_EN), 0x0121);
	byte = 0x00;
	acpi_pm_access(&f->pm, PM1_EN, &byte, 1, true);
	assert_int_equal(in16(f, PM1_EN), 0x0100);
	assert_int_equal(in16(f, PM1_STS), 0);
	assert_int_equal(f->poweroffs, 0);
}

static void test_pm_timer(void **state)
{
	struct fixture *f = *state;
	struct timespec ten_ms = {0, 10 * 1000 * 1000};
	uint32_t t0, t1, t2;

	t0 = in32(f, PM_TMR);
	nanosleep(&ten_ms, NULL);
	t1 = in32(f, PM_TMR);
	assert_true(t0 < 0x1000000 && t1 < 0x1000000); /* 24 bits */
	/* 10 ms at 3.579545 MHz is ~35795 ticks; allow a slow host. */
	assert_true(t1 > t0);
	assert_true(t1 - t0 >= 35000);
	assert_true(t1 - t0 < 3579545 * 2);
	/* Writes do not touch the timer. */
	uint8_t data[4] = {0, 0, 0, 0};

	acpi_pm_access(&f->pm, PM_TMR, data, 4, true);
	t2 = in32(f, PM_TMR);
	assert_true(t2 >= t1);

	/* After 10 s of uptime the count has wrapped past 24 bits: still only
	 * 24 bits are visible. */
	f->pm.start_ns -= 10ull * 1000 * 1000 * 1000;
	for (int i = 0; i < 100; i++)
		assert_true(in32(f, PM_TMR) < 0x1000000);
	/* Bytes of the timer agree with the dword. */
	uint8_t top = 0x5a;

	acpi_pm_access(&f->pm, PM_TMR + 3, &top, 1, false);
	assert_int_equal(top, 0);
}

static void test_reset_register(void **state)
{
	struct fixture *f = *state;
	uint8_t val;

	/* 0xCF9 bit 1 alone selects the reset type: nothing happens yet. */
	val = 0x02;
	acpi_pm_reset_access(&f->pm, 0, &val, 1, true);
	assert_int_equal(f->resets, 0);
	val = 0;
	acpi_pm_reset_access(&f->pm, 0, &val, 1, false);
	assert_int_equal(val, 0x02);
	/* Bit 2 resets: the FADT's RESET_VALUE 0x06. */
	val = 0x06;
	acpi_pm_reset_access(&f->pm, 0, &val, 1, true);
	assert_int_equal(f->resets, 1);
	assert_int_equal(f->poweroffs, 0);
	val = 0xff;
	acpi_pm_reset_access(&f->pm, 0, &val, 1, false);
	assert_int_equal(val & 0x04, 0); /* bit 2 is self-clearing */
	val = 0x04;
	acpi_pm_reset_access(&f->pm, 0, &val, 1, true);
	assert_int_equal(f->resets, 2);
}

static void test_no_events(void **state)
{
	struct acpi_pm pm;
	uint8_t data[2];
	uint16_t s5 = SLP_TYP(5) | SLP_EN;

	(void)state;
	acpi_pm_init(&pm, NULL);
	memcpy(data, &s5, 2);
	acpi_pm_access(&pm, PM1_CNT, data, 2, true);
	data[0] = 0x06;
	acpi_pm_reset_access(&pm, 0, data, 1, true);
	acpi_pm_destroy(&pm);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_reset_state),
		T(test_s5_powers_off),
		T(test_sleep_needs_en_and_s5),
		T(test_s5_by_bytes),
		T(test_sci_en_always_set),
		T(test_status_write_one_to_clear),
		T(test_enable_register),
		T(test_pm_timer),
		T(test_reset_register),
		cmocka_unit_test(test_no_events),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
