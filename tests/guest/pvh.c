/* SPDX-License-Identifier: MIT */
/*
 * pvh: check struct hvm_start_info the way Linux's PVH entry reads it
 * (arch/x86/platform/pvh/enlighten.c, Xen arch-x86/hvm/start_info.h).
 * Command line: mem=<bytes> [initrd_size=<bytes>] [cmdline_len=<n>] cmdline_end
 */
#include "isola/pvh.h"
#include "kit.h"

extern const uint8_t _end[];

static void pvh_check_header(const struct hvm_start_info *si)
{
	test_check(si->magic == HVM_START_MAGIC_VALUE, "hvm_start_info magic", "%x", si->magic);
	test_check(si->version >= 1, "hvm_start_info version >= 1", "version %u", si->version);
	test_check(si->memmap_paddr && si->memmap_entries, "memmap_paddr/memmap_entries",
		   "paddr %lx entries %u", si->memmap_paddr, si->memmap_entries);
	test_check((uint64_t)si + sizeof(*si) <= 0x100000 || (uint64_t)si >= (uint64_t)_end,
		   "hvm_start_info clear of the image", "at %p", si);
}

static void pvh_check_modules(const struct boot_info *info, const struct hvm_start_info *si)
{
	const struct hvm_modlist_entry *mod = phys_ptr(si->modlist_paddr);

	if (!cmdline_has(info->cmdline, "initrd_size")) {
		test_check(si->nr_modules == 0, "no modules without an initrd", "nr_modules %u",
			   si->nr_modules);
		return;
	}
	if (!test_check(si->nr_modules == 1 && si->modlist_paddr, "one module (the initrd)",
			"nr_modules %u modlist_paddr %lx", si->nr_modules, si->modlist_paddr))
		return;
	test_check(mod->reserved == 0, "module entry reserved field 0", "%lx", mod->reserved);
	bootcheck_initrd(info, 0);
}

int guest_main(const struct boot_info *info)
{
	const struct hvm_start_info *si = phys_ptr(info->boot_params_gpa);

	console_printf("isola pvh guest: hvm_start_info at %lx\n", info->boot_params_gpa);
	if (!test_check(info->protocol == BOOT_PROTOCOL_PVH, "booted through PVH", "protocol %s",
			boot_protocol_name(info->protocol)))
		return 1;
	pvh_check_header(si);
	bootcheck_memmap(info);
	pvh_check_modules(info, si);
	bootcheck_cmdline(info, 0x10000);
	test_check(si->rsdp_paddr != 0, "rsdp_paddr set", "0");
	if (si->rsdp_paddr)
		bootcheck_rsdp(info, si->rsdp_paddr);
	return 0;
}
