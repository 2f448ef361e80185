/* SPDX-License-Identifier: MIT */
/*
 * pci: enumerate bus 0 through ports 0xCF8/0xCFC and through ECAM (base from
 * MCFG); both must find the host bridge at 00.0 and agree on the first 64
 * bytes of every function's configuration space.
 * Command line: [host_bridge=<vendor>:<device>] (hex; default 1b36:0008)
 */
#include "kit.h"

static void pci_expected_bridge(const char *cmdline, uint32_t *id)
{
	char buf[16];
	uint64_t vendor, device;

	*id = ISOLA_PCI_VENDOR_ID | (uint32_t)ISOLA_PCI_HOST_DEVICE_ID << 16;
	if (cmdline_get(cmdline, "host_bridge", buf, sizeof(buf)) || strlen(buf) != 9 ||
	    buf[4] != ':')
		return;
	buf[4] = '\0';
	char vhex[8] = "0x", dhex[8] = "0x";
	memcpy(vhex + 2, buf, 5);
	memcpy(dhex + 2, buf + 5, 5);
	if (!parse_u64(vhex, &vendor) && !parse_u64(dhex, &device))
		*id = (uint32_t)vendor | (uint32_t)device << 16;
}

/* Compare 64 bytes of config space; returns the first differing offset or 64. */
static unsigned pci_compare(uint64_t ecam, unsigned dev, unsigned fn)
{
	for (unsigned off = 0; off < 64; off += 4)
		if (pci_cfg_read32(0, dev, fn, off) != pci_ecam_read32(ecam, 0, dev, fn, off))
			return off;
	return 64;
}

static unsigned pci_walk(uint64_t ecam)
{
	unsigned found = 0;

	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < pci_functions(0, dev); fn++) {
			uint32_t id = pci_cfg_read32(0, dev, fn, 0);
			uint32_t eid = pci_ecam_read32(ecam, 0, dev, fn, 0);
			unsigned off;

			if ((id & 0xffff) == 0xffff && (eid & 0xffff) == 0xffff)
				continue;
			found++;
			off = pci_compare(ecam, dev, fn);
			console_printf("00:%02x.%u %04x:%04x class %06x\n", dev, fn, id & 0xffff,
				       id >> 16, pci_cfg_read32(0, dev, fn, 8) >> 8);
			if (off != 64)
				test_fail("ports and ECAM agree", "00:%02x.%u offset %x: %x vs %x", dev,
					  fn, off, pci_cfg_read32(0, dev, fn, off),
					  pci_ecam_read32(ecam, 0, dev, fn, off));
		}
	}
	return found;
}

int guest_main(const struct boot_info *info)
{
	uint64_t ecam = acpi_mcfg_base();
	uint32_t want, port_id, ecam_id;
	unsigned failed = test_failures(), found;

	pci_expected_bridge(info->cmdline, &want);
	console_printf("isola pci guest: ECAM at %lx\n", ecam);
	if (!test_check(ecam != 0, "MCFG gives an ECAM base", "no MCFG"))
		return 1;
	port_id = pci_cfg_read32(0, 0, 0, 0);
	ecam_id = pci_ecam_read32(ecam, 0, 0, 0, 0);
	test_check(port_id == want, "host bridge at 00.0 via ports", "%08x, want %08x", port_id, want);
	test_check(ecam_id == want, "host bridge at 00.0 via ECAM", "%08x, want %08x", ecam_id, want);
	found = pci_walk(ecam);
	test_check(test_failures() == failed, "ports and ECAM agree on config space",
		   "see above");
	console_printf("%u functions on bus 0\n", found);
	return 0;
}
