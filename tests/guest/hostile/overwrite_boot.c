/* SPDX-License-Identifier: MIT */
/*
 * overwrite_boot: scribble random bytes over everything the VMM wrote into
 * guest RAM before the first instruction: the real-mode IVT/BDA, the boot
 * GDT (0x500), hvm_start_info and its memmap (0x6000), the zero page
 * (0x7000), the VMM's boot page tables (0x9000-0xefff), the command line
 * (0x20000) and the ACPI tables (0xE0000-0xFFFFF).  The guest runs on its
 * own GDT and page tables and copied what it needed, so this is legal.  The
 * VMM must not care: it never reads those structures back (no re-parsing
 * of guest-owned memory at run time or at exit); the guest exits PASS
 * (status 1).  `acpi_only` / `low_only` narrow the attack.
 */
#include "hostile.h"

static void scribble(uint64_t start, uint64_t end)
{
	for (uint64_t pa = start; pa < end; pa += 8)
		*(volatile uint64_t *)phys_ptr(pa) = hostile_rand();
}

int guest_main(const struct boot_info *info)
{
	int acpi = !cmdline_has(info->cmdline, "low_only");
	int low = !cmdline_has(info->cmdline, "acpi_only");

	if (low) {
		console_printf("overwrite_boot: IVT, BDA, GDT, start info, zero page, page tables, cmdline\n");
		scribble(0x0, 0x10000);
		scribble(0x20000, 0x30000);
	}
	if (acpi) {
		console_printf("overwrite_boot: ACPI tables and BIOS area 0x9fc00-0xfffff\n");
		scribble(0x9fc00, 0x100000);
	}
	/* Things that make a VMM look at the platform again. */
	(void)pci_cfg_read32(0, 0, 0, 0);
	(void)ioapic_read(0x01);
	(void)pmtimer_read();
	test_check(acpi_find_rsdp() == 0 || !acpi, "RSDP gone after the scribble",
		   "scan still finds one at %lx", acpi_find_rsdp());
	return 0;
}
