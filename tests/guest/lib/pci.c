/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration space: configuration mechanism #1 (ports 0xCF8/0xCFC,
 * PCI Local Bus 3.0 §3.2.2.3.2) and ECAM (PCIe Base 4.0 §7.2.2).
 */
#include "kit.h"

static uint32_t pci_cfg_address(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	return 0x80000000u | (bus & 0xff) << 16 | (dev & 0x1f) << 11 | (fn & 7) << 8 | (off & 0xfc);
}

uint32_t pci_cfg_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	io_out32(ISOLA_PORT_PCI_CONFIG_ADDRESS, pci_cfg_address(bus, dev, fn, off));
	return io_in32(ISOLA_PORT_PCI_CONFIG_DATA);
}

void pci_cfg_write32(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v)
{
	io_out32(ISOLA_PORT_PCI_CONFIG_ADDRESS, pci_cfg_address(bus, dev, fn, off));
	io_out32(ISOLA_PORT_PCI_CONFIG_DATA, v);
}

static uint64_t pci_ecam_address(uint64_t ecam, unsigned bus, unsigned dev, unsigned fn,
				 unsigned off)
{
	return ecam + ((uint64_t)(bus & 0xff) << 20 | (dev & 0x1f) << 15 | (fn & 7) << 12 |
		       (off & 0xffc));
}

uint32_t pci_ecam_read32(uint64_t ecam, unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	return mmio_read32(pci_ecam_address(ecam, bus, dev, fn, off));
}

void pci_ecam_write32(uint64_t ecam, unsigned bus, unsigned dev, unsigned fn, unsigned off,
		      uint32_t v)
{
	mmio_write32(pci_ecam_address(ecam, bus, dev, fn, off), v);
}

unsigned pci_functions(unsigned bus, unsigned dev)
{
	uint32_t header = pci_cfg_read32(bus, dev, 0, 0x0c) >> 16 & 0xff;

	return header & 0x80 ? 8 : 1;
}

void pci_print_bus0(void)
{
	console_printf("pci bus 0:");
	for (unsigned dev = 0; dev < 32; dev++) {
		unsigned fns = pci_functions(0, dev);

		for (unsigned fn = 0; fn < fns; fn++) {
			uint32_t id = pci_cfg_read32(0, dev, fn, 0);

			if ((id & 0xffff) == 0xffff)
				continue;
			console_printf(" %02x.%u=%04x:%04x", dev, fn, id & 0xffff, id >> 16);
		}
	}
	console_printf("\n");
}

/* PCI Local Bus 3.0 §6.7: capability list from 0x34 if status bit 4 is set. */
unsigned pci_find_capability(unsigned bus, unsigned dev, unsigned fn, uint8_t id)
{
	unsigned off, hops;

	if (!(pci_cfg_read32(bus, dev, fn, 0x04) >> 16 & 0x10))
		return 0;
	off = pci_cfg_read32(bus, dev, fn, 0x34) & 0xfc;
	for (hops = 0; off >= 0x40 && hops < 48; hops++) {
		uint32_t cap = pci_cfg_read32(bus, dev, fn, off);

		if ((cap & 0xff) == id)
			return off;
		off = cap >> 8 & 0xfc;
	}
	return 0;
}
