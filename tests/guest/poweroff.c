/* SPDX-License-Identifier: MIT */
/*
 * poweroff: ACPI soft-off the way an OS does it (ACPI 6.4 §7.4.2, §4.8.3.2.1):
 * SLP_TYPa from the DSDT's \_S5 package, written with SLP_EN to the FADT's
 * PM1a_CNT_BLK.  isola then exits 0; if the guest is still running, FAIL.
 */
#include "kit.h"

#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN (1u << 13)

int guest_main(const struct boot_info *info)
{
	uint32_t pm1a_cnt = acpi_fadt_pm1a_cnt();
	int slp_typ = acpi_s5_slp_typ();

	(void)info;
	if (!pm1a_cnt)
		test_abort("poweroff", "no FADT PM1a_CNT_BLK");
	if (slp_typ < 0)
		test_abort("poweroff", "no \\_S5 package in the DSDT");
	console_printf("poweroff: PM1a_CNT %x, SLP_TYP %d\n", pm1a_cnt, slp_typ);
	io_out16((uint16_t)pm1a_cnt, (uint16_t)(slp_typ << PM1_SLP_TYP_SHIFT | PM1_SLP_EN));
	delay_us(100000);
	test_abort("poweroff", "still running 100 ms after S5 request");
}
