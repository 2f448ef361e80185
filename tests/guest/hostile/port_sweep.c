/* SPDX-License-Identifier: MIT */
/*
 * port_sweep: read, then write, every I/O port 0x0000-0xFFFF with 8-, 16-
 * and 32-bit accesses (unaligned ones and ones straddling device ranges
 * included), then check that the devices still answer sanely.  isola must
 * treat every unclaimed port as "reads all-ones, writes dropped" and every
 * claimed one per its device model, without crashing, hanging, leaking or
 * tripping a sanitizer; the guest then exits PASS (status 1).
 *
 * Writes that end the VM by design are excluded (any access whose bytes
 * overlap them; reads of them are still done):
 *   0xf4-0xf7   debug-exit port: any write ends the VM (abi.h)
 *   0x604-0x605 PM1a_CNT: SLP_EN with SLP_TYP=5 powers off
 *   0x64        i8042 command port: 0xFE pulses reset, 0xD1 arms one
 *   0xcf9       reset control: bit 2 resets (the aligned 32-bit write to
 *               0xcf8, CONFIG_ADDRESS, is kept: it does not reach 0xcf9)
 * Written values: 0xa5, 0x5aa5, 0xdeadbeef (no ASCII letters, so the bytes
 * that land in COM1's THR cannot form a "FAIL" line in the console log).
 */
#include "hostile.h"

static int write_excluded(uint32_t port, unsigned width)
{
	static const struct {
		uint32_t first, last;
	} excluded[] = {
		{ISOLA_DEBUG_EXIT_PORT, ISOLA_DEBUG_EXIT_PORT + 3},
		{ISOLA_PORT_ACPI_PM1A_CNT, ISOLA_PORT_ACPI_PM1A_CNT + 1},
		{ISOLA_PORT_I8042_CMD, ISOLA_PORT_I8042_CMD},
		{ISOLA_PORT_RESET, ISOLA_PORT_RESET},
	};
	uint32_t last = port + width - 1;

	if (port == ISOLA_PORT_PCI_CONFIG_ADDRESS && width == 4)
		return 0;
	for (unsigned i = 0; i < ARRAY_SIZE(excluded); i++)
		if (port <= excluded[i].last && excluded[i].first <= last)
			return 1;
	return 0;
}

static uint64_t sweep_reads(void)
{
	uint64_t sum = 0;

	for (uint32_t port = 0; port <= 0xffff; port++) {
		sum += io_in8((uint16_t)port);
		sum += io_in16((uint16_t)port);
		sum += io_in32((uint16_t)port);
	}
	return sum;
}

static unsigned sweep_writes(void)
{
	unsigned skipped = 0;

	for (uint32_t port = 0; port <= 0xffff; port++) {
		if (!write_excluded(port, 1))
			io_out8((uint16_t)port, 0xa5);
		else
			skipped++;
		if (!write_excluded(port, 2))
			io_out16((uint16_t)port, 0x5aa5);
		else
			skipped++;
		if (!write_excluded(port, 4))
			io_out32((uint16_t)port, 0xdeadbeefu);
		else
			skipped++;
	}
	return skipped;
}

static int is_bcd(uint8_t v)
{
	return (v & 0x0f) < 10 && (v >> 4) < 10;
}

static void check_devices(void)
{
	uint32_t id, t0;
	uint8_t sec;

	/* COM1 answers (the guest re-initialised it, it must print again). */
	test_check(io_in8(ISOLA_PORT_COM1 + 5) & 0x20, "com1 THR empty after sweep", "LSR %x",
		   io_in8(ISOLA_PORT_COM1 + 5));
	/* PCI host bridge still there. */
	id = pci_cfg_read32(0, 0, 0, 0);
	test_check(id == (ISOLA_PCI_VENDOR_ID | (uint32_t)ISOLA_PCI_HOST_DEVICE_ID << 16),
		   "pci host bridge id after sweep", "id %x", id);
	/* RTC seconds in BCD (STATUS_B writes must not have switched it to binary). */
	io_out8(ISOLA_PORT_RTC_INDEX, 0x00);
	sec = io_in8(ISOLA_PORT_RTC_DATA);
	test_check(is_bcd(sec) && sec < 0x60, "rtc seconds after sweep", "seconds %x", sec);
	/* PM timer still counts. */
	t0 = pmtimer_read();
	delay_us(2000);
	test_check(pmtimer_read() != t0, "pm timer counts after sweep", "stuck at %x", t0);
	/* Unclaimed port still floats high. */
	test_check(io_in32(0x1234) == 0xffffffffu, "unclaimed port reads all-ones",
		   "port 0x1234 reads %x", io_in32(0x1234));
}

int guest_main(const struct boot_info *info)
{
	struct hostile_clock clock;
	uint64_t sum, t_read;
	unsigned skipped;

	(void)info;
	console_printf("port_sweep: 3 x 65536 reads, then 3 x 65536 writes\n");
	hostile_clock_start(&clock);
	sum = sweep_reads();
	t_read = hostile_clock_us(&clock);
	skipped = sweep_writes();
	hostile_clock_us(&clock);
	serial_init(); /* the sweep wrote garbage to LCR/MCR/FCR */
	console_printf("port_sweep: reads %lu ms (sum %lx), writes %lu ms, %u writes excluded\n",
		       t_read / 1000, sum, (clock.us - t_read) / 1000, skipped);
	check_devices();
	return 0;
}
