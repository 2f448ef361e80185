/* SPDX-License-Identifier: MIT */
/*
 * kit_boot(): turn what the loader handed over (hvm_start_info or the Linux
 * zero page) into struct boot_info, set up the CPU tables, run guest_main()
 * and report the result on the debug-exit port.
 */
#include "isola/bootparam.h"
#include "isola/pvh.h"
#include "kit.h"

void kit_boot(uint32_t protocol, uint64_t params);

static struct boot_info boot_info;
static char boot_cmdline[BOOT_INFO_CMDLINE_MAX];

const char *boot_protocol_name(enum boot_protocol protocol)
{
	switch (protocol) {
	case BOOT_PROTOCOL_PVH:
		return "PVH";
	case BOOT_PROTOCOL_LINUX64:
		return "Linux 64-bit boot protocol";
	case BOOT_PROTOCOL_LINUX32:
		return "Linux 32-bit boot protocol";
	}
	return "unknown";
}

uint64_t boot_ram_total(const struct boot_info *info)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1)
			total += info->mem[i].size;
	return total;
}

/* Copy the command line: guests may reuse low memory once running. */
static void boot_copy_cmdline(uint64_t gpa)
{
	const char *src = (const char *)gpa;
	size_t n = 0;

	boot_info.cmdline_gpa = gpa;
	if (gpa)
		while (n + 1 < sizeof(boot_cmdline) && src[n]) {
			boot_cmdline[n] = src[n];
			n++;
		}
	boot_cmdline[n] = '\0';
	boot_info.cmdline = boot_cmdline;
}

static void boot_add_mem(uint64_t addr, uint64_t size, uint32_t type)
{
	if (boot_info.nr_mem < BOOT_INFO_MAX_MEM)
		boot_info.mem[boot_info.nr_mem++] = (struct boot_mem_range){ addr, size, type };
}

/* Xen arch-x86/hvm/start_info.h */
static void boot_from_pvh(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *map;
	const struct hvm_modlist_entry *mod;

	if (si->magic != HVM_START_MAGIC_VALUE)
		test_abort("boot", "hvm_start_info magic %x, want %x", si->magic,
			   HVM_START_MAGIC_VALUE);
	boot_copy_cmdline(si->cmdline_paddr);
	boot_info.rsdp = si->rsdp_paddr;
	if (si->nr_modules && si->modlist_paddr) {
		mod = (const struct hvm_modlist_entry *)si->modlist_paddr;
		boot_info.initrd_addr = mod->paddr;
		boot_info.initrd_size = mod->size;
	}
	if (si->version < 1 || !si->memmap_paddr)
		return;
	map = (const struct hvm_memmap_table_entry *)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++)
		boot_add_mem(map[i].addr, map[i].size, map[i].type);
}

/* boot.rst "zero page" and zero-page.rst */
static void boot_from_zero_page(const struct boot_params *zp)
{
	uint64_t cmdline = zp->hdr.cmd_line_ptr | ((uint64_t)zp->ext_cmd_line_ptr << 32);

	boot_copy_cmdline(cmdline);
	boot_info.rsdp = zp->acpi_rsdp_addr;
	boot_info.initrd_addr = zp->hdr.ramdisk_image | ((uint64_t)zp->ext_ramdisk_image << 32);
	boot_info.initrd_size = zp->hdr.ramdisk_size | ((uint64_t)zp->ext_ramdisk_size << 32);
	for (unsigned i = 0; i < zp->e820_entries && i < BOOT_E820_MAX; i++)
		boot_add_mem(zp->e820_table[i].addr, zp->e820_table[i].size, zp->e820_table[i].type);
}

/*
 * Mask both 8259 PICs (OCW1): firmware may have left them programmed with
 * vectors that alias CPU exceptions (IRQ 0 -> vector 8); guests use the
 * IOAPIC and LAPIC only.
 */
static void boot_mask_pic(void)
{
	io_out8(0x21, 0xff);
	io_out8(0xa1, 0xff);
}

void kit_boot(uint32_t protocol, uint64_t params)
{
	int rc;

	boot_mask_pic();
	serial_init();
	idt_install();
	boot_info.protocol = (enum boot_protocol)protocol;
	boot_info.boot_params_gpa = params;
	if (protocol == BOOT_PROTOCOL_PVH)
		boot_from_pvh((const struct hvm_start_info *)params);
	else
		boot_from_zero_page((const struct boot_params *)params);
	acpi_init(boot_info.rsdp ? boot_info.rsdp : acpi_find_rsdp());
	pmtimer_init();
	rc = guest_main(&boot_info);
	if (rc == 0 && test_failures() == 0) {
		console_printf("isola-guest: PASS\n");
		debug_exit(ISOLA_GUEST_PASS);
	}
	console_printf("isola-guest: FAIL (%u failed checks)\n", test_failures());
	debug_exit(ISOLA_GUEST_FAIL);
}
