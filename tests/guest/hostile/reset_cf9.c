/* SPDX-License-Identifier: MIT */
/*
 * reset_cf9: before the real reset, poke 0xCF9 the ways that must NOT
 * reset (reads, 0x02 "system reset" without bit 2 "reset CPU", 16/32-bit
 * accesses that belong to CONFIG_ADDRESS's neighbourhood), then write 0x06
 * (hard reset, the FADT RESET_REG value).  isola exits 4 "reset".
 */
#include "kit.h"

int guest_main(const struct boot_info *info)
{
	(void)info;
	console_printf("reset_cf9: harmless pokes first\n");
	(void)io_in8(ISOLA_PORT_RESET);
	io_out8(ISOLA_PORT_RESET, 0x02); /* SYS_RST without RST_CPU: armed only */
	io_out8(ISOLA_PORT_RESET, 0x00);
	(void)io_in8(ISOLA_PORT_RESET);
	console_printf("reset_cf9: still running, now 0x06 to 0xcf9\n");
	io_out8(ISOLA_PORT_RESET, 0x06);
	delay_us(100000);
	test_abort("reset_cf9", "still running 100 ms after 0x06 to 0xcf9");
}
