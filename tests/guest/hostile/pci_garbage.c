/* SPDX-License-Identifier: MIT */
/*
 * pci_garbage: configuration writes of garbage to every register of every
 * devfn on bus 0 (and a few other buses) through 0xCF8/0xCFC with 8/16/32-
 * bit data accesses at every byte offset, and through ECAM at every 4-byte
 * register of every function, plus misaligned, 64-bit and page-straddling
 * ECAM accesses and CONFIG_ADDRESS values with the enable bit clear or
 * reserved bits set.  isola's PCI host (devices/pci.c) must drop writes to
 * read-only bits and absent functions, read all-ones for absent ones and
 * for misaligned ECAM accesses, and never index outside a config space.
 * The host bridge's whole config space must read back unchanged; the guest
 * then exits PASS (status 1).
 */
#include "hostile.h"

#define CONFIG_ENABLE 0x80000000u

static uint32_t bridge_before[1024];

static void snapshot(uint32_t *out)
{
	for (unsigned i = 0; i < 1024; i++)
		out[i] = pci_ecam_read32(ISOLA_ECAM_BASE, 0, 0, 0, i * 4);
}

static void port_garbage(void)
{
	static const unsigned buses[] = {0, 1, 0x7f, 0xff};
	unsigned n = 0;

	for (unsigned b = 0; b < ARRAY_SIZE(buses); b++) {
		unsigned devfns = buses[b] == 0 ? 256 : 8;

		for (unsigned devfn = 0; devfn < devfns; devfn++)
			for (unsigned reg = 0; reg < 256; reg += 4, n++) {
				uint32_t addr = CONFIG_ENABLE | buses[b] << 16 | devfn << 8 | reg;
				uint64_t r = hostile_rand();

				io_out32(ISOLA_PORT_PCI_CONFIG_ADDRESS, addr);
				io_out32(ISOLA_PORT_PCI_CONFIG_DATA, (uint32_t)r);
				io_out16(ISOLA_PORT_PCI_CONFIG_DATA + 2, (uint16_t)(r >> 32));
				io_out8(ISOLA_PORT_PCI_CONFIG_DATA + 3, (uint8_t)(r >> 48));
				io_out16(ISOLA_PORT_PCI_CONFIG_DATA + 1, (uint16_t)(r >> 40)); /* odd */
				io_out32(ISOLA_PORT_PCI_CONFIG_DATA + 2, 0xffffffffu); /* spills past 0xcff */
				(void)io_in32(ISOLA_PORT_PCI_CONFIG_DATA + 3);
			}
	}
	/* CONFIG_ADDRESS oddities: enable clear, reserved bits 30:24, extended
	 * register bits 11:8, and 8/16-bit accesses (which are not it). */
	for (unsigned i = 0; i < 512; i++) {
		uint32_t addr = (uint32_t)hostile_rand();

		io_out32(ISOLA_PORT_PCI_CONFIG_ADDRESS, addr);
		io_out32(ISOLA_PORT_PCI_CONFIG_DATA, (uint32_t)hostile_rand());
		(void)io_in32(ISOLA_PORT_PCI_CONFIG_DATA);
		io_out16(ISOLA_PORT_PCI_CONFIG_ADDRESS, (uint16_t)addr);
		io_out8(ISOLA_PORT_PCI_CONFIG_ADDRESS + 2, (uint8_t)addr);
		io_out16(ISOLA_PORT_PCI_CONFIG_ADDRESS + 2, (uint16_t)addr); /* covers 0xcfa-0xcfb */
	}
	console_printf("pci_garbage: %u registers via 0xcf8/0xcfc, 512 odd CONFIG_ADDRESS\n", n);
}

static void ecam_garbage(struct hostile_clock *clock)
{
	unsigned n = 0;

	for (unsigned devfn = 0; devfn < 256; devfn++) {
		for (unsigned reg = 0; reg < 4096; reg += 4, n++)
			pci_ecam_write32(ISOLA_ECAM_BASE, 0, devfn >> 3, devfn & 7, reg,
					 (uint32_t)hostile_rand());
		hostile_clock_us(clock);
	}
	/* Misaligned, narrow, 64-bit, and straddling function/bus boundaries. */
	for (unsigned i = 0; i < 2048; i++) {
		uint64_t off = hostile_rand() & 0xfffff; /* bus 0 */
		uint64_t a = ISOLA_ECAM_BASE + off;

		if (off > 0xffff8)
			continue;
		mmio_write16(a | 1, (uint16_t)hostile_rand());
		mmio_write32((a & ~3ull) | (1 + (i & 1)), (uint32_t)hostile_rand());
		mmio_write64(a & ~7ull, hostile_rand());
		(void)mmio_read64(a & ~7ull);
		(void)mmio_read32((a & ~3ull) | 3);
	}
	for (unsigned f = 0; f < 256; f++) {
		uint64_t edge = ISOLA_ECAM_BASE + ((uint64_t)f << 12) + 0xffe; /* crosses into f+1 */

		mmio_write32(edge, 0xffffffffu);
		(void)mmio_read32(edge);
		mmio_write64(edge - 4, ~0ull);
	}
	/* Other buses and the very end of the ECAM window. */
	for (unsigned bus = 1; bus < 256; bus += 17)
		pci_ecam_write32(ISOLA_ECAM_BASE, bus, 0, 0, 0x04, 0xffffffffu);
	mmio_write32(ISOLA_ECAM_BASE + ISOLA_ECAM_SIZE - 4, 0xffffffffu);
	mmio_write64(ISOLA_ECAM_BASE + ISOLA_ECAM_SIZE - 8, ~0ull);
	(void)mmio_read64(ISOLA_ECAM_BASE + ISOLA_ECAM_SIZE - 8);
	console_printf("pci_garbage: %u registers via ECAM, 2048 misaligned\n", n);
}

int guest_main(const struct boot_info *info)
{
	struct hostile_clock clock;
	unsigned changed = 0, first = 0;
	uint32_t after[1024];

	(void)info;
	hostile_clock_start(&clock);
	snapshot(bridge_before);
	port_garbage();
	hostile_clock_us(&clock);
	ecam_garbage(&clock);
	hostile_clock_us(&clock);
	snapshot(after);
	for (unsigned i = 0; i < 1024; i++)
		if (after[i] != bridge_before[i] && !changed++)
			first = i;
	test_check(!changed, "host bridge config space unchanged", "%u dwords changed, first at %x: %x -> %x",
		   changed, first * 4, bridge_before[first], after[first]);
	test_check(pci_cfg_read32(0, 0, 0, 0) == bridge_before[0], "host bridge id via 0xcf8",
		   "id %x", pci_cfg_read32(0, 0, 0, 0));
	test_check(pci_cfg_read32(0, 3, 0, 0) == 0xffffffffu && pci_cfg_read32(1, 0, 0, 0) == 0xffffffffu,
		   "absent functions and buses read all-ones", "00:03.0 %x, 01:00.0 %x",
		   pci_cfg_read32(0, 3, 0, 0), pci_cfg_read32(1, 0, 0, 0));
	console_printf("pci_garbage: %lu ms\n", hostile_clock_us(&clock) / 1000);
	return 0;
}
