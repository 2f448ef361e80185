/* SPDX-License-Identifier: MIT */
/*
 * acpi_s5_bad: write PM1a_CNT (0x604) with SLP_EN and every SLP_TYP except
 * the DSDT's \_S5 value (5), as 8-bit (high byte at 0x605), 16-bit and
 * 32-bit accesses; then SLP_TYP=5 *without* SLP_EN; plus garbage to
 * PM1_STS/PM1_EN and the read-only PM timer.  ACPI 6.4 §4.8.3.2.1: only
 * SLP_EN with the S5 type enters soft-off; isola models no S1-S4, so the
 * others must do nothing: no power-off, no reset, no crash.  The guest
 * checks that SLP_EN reads back 0 and SCI_EN stays 1, then exits PASS
 * (status 1).
 */
#include "hostile.h"

#define PM1_SCI_EN 0x0001
#define SLP_TYP(t) ((uint16_t)((t) << 10))

int guest_main(const struct boot_info *info)
{
	const uint16_t cnt = ISOLA_PORT_ACPI_PM1A_CNT;
	uint16_t v;
	unsigned n = 0;

	(void)info;
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ISOLA_ACPI_SLP_TYP_S5)
			continue;
		io_out16(cnt, SLP_TYP(typ) | ISOLA_ACPI_SLP_EN);
		io_out16(cnt, SLP_TYP(typ) | ISOLA_ACPI_SLP_EN | 0x3ff);
		io_out8(cnt + 1, (uint8_t)((SLP_TYP(typ) | ISOLA_ACPI_SLP_EN) >> 8));
		io_out32(cnt, 0xffff0000u | SLP_TYP(typ) | ISOLA_ACPI_SLP_EN);
		n += 4;
	}
	/* S5 type without SLP_EN, and SLP_EN landing in the wrong register. */
	io_out16(cnt, SLP_TYP(ISOLA_ACPI_SLP_TYP_S5));
	io_out8(cnt + 1, (uint8_t)(SLP_TYP(ISOLA_ACPI_SLP_TYP_S5) >> 8));
	io_out16(ISOLA_PORT_ACPI_PM1A_EVT, 0xffff);
	io_out16(ISOLA_PORT_ACPI_PM1A_EVT + 2, SLP_TYP(5) | ISOLA_ACPI_SLP_EN);
	/* 32 bits at PM1_EN: the upper half would spill into PM1a_CNT on a
	 * byte-lane decoder, so it holds only SCI_EN (harmless either way). */
	io_out32(ISOLA_PORT_ACPI_PM1A_EVT + 2, 0x0001ffffu);
	io_out32(ISOLA_PORT_ACPI_PM_TMR, 0xffffffffu);
	io_out16(cnt + 2, 0xffff);
	io_out8(cnt + 3, 0xff);
	n += 9;
	v = io_in16(cnt);
	test_check(!(v & ISOLA_ACPI_SLP_EN) && (v & PM1_SCI_EN), "PM1a_CNT reads SLP_EN=0 SCI_EN=1",
		   "PM1a_CNT %x", v);
	console_printf("acpi_s5_bad: %u writes, still running, PM1a_CNT %x\n", n, v);
	return 0;
}
