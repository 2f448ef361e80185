/* SPDX-License-Identifier: MIT */
/*
 * reset: pulse the reset line through the i8042 (command 0xFE to port 0x64),
 * or with `method=cf9` through the reset control register (0x06 to 0xCF9).
 * isola then exits 4; if the guest is still running, FAIL.
 */
#include "kit.h"

#define I8042_CMD_PULSE_RESET 0xfe
#define CF9_HARD_RESET 0x06

int guest_main(const struct boot_info *info)
{
	char method[16] = "i8042";

	cmdline_get(info->cmdline, "method", method, sizeof(method));
	console_printf("reset: via %s\n", method);
	if (!strcmp(method, "cf9"))
		io_out8(ISOLA_PORT_RESET, CF9_HARD_RESET);
	else
		io_out8(ISOLA_PORT_I8042_CMD, I8042_CMD_PULSE_RESET);
	delay_us(100000);
	test_abort("reset", "still running 100 ms after the %s reset", method);
}
