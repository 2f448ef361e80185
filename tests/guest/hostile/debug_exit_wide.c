/* SPDX-License-Identifier: MIT */
/*
 * debug_exit_wide: write 0xffffffff to the debug-exit port as one 32-bit
 * access.  abi.h: status = ((V << 1) | 1) & 0xff = 255; the shift of a
 * 32-bit all-ones value must neither overflow into UB (UBSan watches) nor
 * give a status other than 255.  `width=8|16` writes 0xff / 0xffff instead
 * (also 255).
 */
#include "kit.h"

int guest_main(const struct boot_info *info)
{
	char width[8] = "32";

	cmdline_get(info->cmdline, "width", width, sizeof(width));
	console_printf("debug_exit_wide: all-ones, %s-bit, to port 0xf4\n", width);
	if (!strcmp(width, "8"))
		io_out8(ISOLA_DEBUG_EXIT_PORT, 0xff);
	else if (!strcmp(width, "16"))
		io_out16(ISOLA_DEBUG_EXIT_PORT, 0xffff);
	else
		io_out32(ISOLA_DEBUG_EXIT_PORT, 0xffffffffu);
	test_abort("debug_exit_wide", "still running after the debug-exit write");
}
