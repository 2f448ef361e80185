/* SPDX-License-Identifier: MIT */
/*
 * hello: the default demo guest.  Prints a banner and what it found: CPUs
 * (ACPI MADT), the memory map, ACPI tables, PCI devices on bus 0 and the
 * command line.  Exits PASS once it gets this far, or, with `exit=V`, writes
 * V to the debug-exit port instead (exit status 2V+1): the runner pins the
 * status rule with a value other than PASS (0) and 0xff... that way.
 */
#include "kit.h"

static const char *mem_type_name(uint32_t type)
{
	switch (type) {
	case 1:
		return "RAM";
	case 2:
		return "reserved";
	case 3:
		return "ACPI";
	case 4:
		return "ACPI NVS";
	}
	return "other";
}

static void hello_memory(const struct boot_info *info)
{
	console_printf("memory map (%u entries, %lu MiB RAM):\n", info->nr_mem,
		       boot_ram_total(info) >> 20);
	for (unsigned i = 0; i < info->nr_mem; i++)
		console_printf("  %016lx-%016lx %s\n", info->mem[i].addr,
			       info->mem[i].addr + info->mem[i].size - 1,
			       mem_type_name(info->mem[i].type));
}

static void hello_acpi(void)
{
	uint32_t ids[SMP_MAX_CPUS];
	unsigned cpus = acpi_madt_cpus(ids, SMP_MAX_CPUS);

	console_printf("cpus: %u (MADT)\n", cpus);
	console_printf("acpi tables:");
	for (unsigned i = 0; i < acpi_table_count(); i++) {
		const struct acpi_header *t = acpi_table_at(i);

		console_printf(" %c%c%c%c", t->signature[0], t->signature[1], t->signature[2],
			       t->signature[3]);
	}
	if (acpi_dsdt())
		console_printf(" DSDT");
	console_printf("\n");
}

int guest_main(const struct boot_info *info)
{
	uint64_t code;

	console_printf("isola hello guest\n");
	console_printf("boot protocol: %s\n", boot_protocol_name(info->protocol));
	hello_acpi();
	hello_memory(info);
	pci_print_bus0();
	console_printf("cmdline: %s\n", info->cmdline);
	test_pass("hello");
	if (cmdline_get_u64(info->cmdline, "exit", &code) == 0) {
		console_printf("exit %lu\n", code);
		debug_exit((uint32_t)code);
	}
	return 0;
}
