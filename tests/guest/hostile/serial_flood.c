/* SPDX-License-Identifier: MIT */
/*
 * serial_flood: write a lot of bytes to COM1's THR, never waiting for LSR
 * THRE, with `rep outsb` 4 KiB at a time (string port I/O: KVM hands the
 * VMM up to a page of bytes per exit).  Default 2 MiB, `kib=N` for another
 * size.  The 8250 model writes each byte through to the console at once:
 * isola must neither buffer the flood (bounded RSS, checked by
 * tests/system/serial_flood_rss.sh) nor lose the end of it; the guest then
 * exits PASS (status 1) and its last line must be in the console file.
 * Why only 2 MiB by default: isola's 8250 does one write(2) per byte, about
 * 90 KiB/s on this PVM host, so 100 MB would take ~19 minutes.
 */
#include "hostile.h"

static uint8_t chunk[4096];

int guest_main(const struct boot_info *info)
{
	uint64_t kib = cmdline_get_u64_default(info->cmdline, "kib", 2048);
	struct hostile_clock clock;
	uint64_t us;

	/* Lines of printable noise: 63 bytes + '\n'. No line starts "FAIL". */
	for (unsigned i = 0; i < sizeof(chunk); i++)
		chunk[i] = (i % 64 == 63) ? '\n' : (uint8_t)('a' + (i * 7 + i / 64) % 26);
	console_printf("serial_flood: %lu KiB to COM1 with rep outsb\n", kib);
	hostile_clock_start(&clock);
	for (uint64_t k = 0; k < kib; k += sizeof(chunk) / 1024) {
		const void *src = chunk;
		uint64_t count = sizeof(chunk);

		__asm__ volatile("rep outsb"
				 : "+S"(src), "+c"(count)
				 : "d"((uint16_t)ISOLA_PORT_COM1)
				 : "memory");
		hostile_clock_us(&clock); /* sample often: the 24-bit PM timer wraps in 4.7 s */
	}
	us = hostile_clock_us(&clock);
	console_printf("\nserial_flood: %lu KiB in %lu ms (%lu KiB/s)\n", kib, us / 1000,
		       us ? kib * 1000000 / us : 0);
	console_printf("serial_flood: end-of-flood marker\n");
	return 0;
}
