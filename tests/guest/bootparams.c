/* SPDX-License-Identifier: MIT */
/*
 * bootparams (a bzImage): check the zero page the way Linux reads it
 * (Documentation/arch/x86/boot.rst, zero-page.rst).
 * Command line: mem=<bytes> [initrd_size=<bytes>] [cmdline_len=<n>] cmdline_end
 */
#include "isola/bootparam.h"
#include "kit.h"

#define BZ_VERSION 0x020f
#define BZ_SETUP_SECTS 4
#define BZ_LOAD 0x100000

static void bootparams_check_header(const struct boot_setup_header *hdr)
{
	test_check(hdr->header == BOOT_HDR_MAGIC && hdr->boot_flag == BOOT_FLAG_MAGIC,
		   "setup header copied (HdrS, 0xAA55)", "header %x boot_flag %x", hdr->header,
		   hdr->boot_flag);
	test_check(hdr->version == BZ_VERSION && hdr->setup_sects == BZ_SETUP_SECTS,
		   "setup header version and setup_sects", "version %x setup_sects %u", hdr->version,
		   hdr->setup_sects);
	test_check(hdr->type_of_loader != 0, "type_of_loader set", "0");
	test_check(hdr->loadflags & BOOT_LOADFLAG_LOADED_HIGH, "loadflags LOADED_HIGH",
		   "loadflags %x", hdr->loadflags);
	test_check((hdr->xloadflags & BOOT_XLF_KERNEL_64) && hdr->pref_address == BZ_LOAD &&
			   hdr->initrd_addr_max == 0x7fffffff,
		   "image fields kept (xloadflags, pref_address, initrd_addr_max)",
		   "xloadflags %x pref_address %lx initrd_addr_max %x", hdr->xloadflags,
		   hdr->pref_address, hdr->initrd_addr_max);
}

static void bootparams_check_ramdisk(const struct boot_info *info, const struct boot_params *zp)
{
	if (!cmdline_has(info->cmdline, "initrd_size")) {
		test_check(zp->hdr.ramdisk_image == 0 && zp->hdr.ramdisk_size == 0,
			   "no ramdisk without an initrd", "ramdisk_image %x size %x",
			   zp->hdr.ramdisk_image, zp->hdr.ramdisk_size);
		return;
	}
	bootcheck_initrd(info, zp->hdr.initrd_addr_max);
}

int guest_main(const struct boot_info *info)
{
	const struct boot_params *zp = phys_ptr(info->boot_params_gpa);

	console_printf("isola bootparams guest: zero page at %lx, %s\n", info->boot_params_gpa,
		       boot_protocol_name(info->protocol));
	if (!test_check(info->protocol == BOOT_PROTOCOL_LINUX64 ||
				info->protocol == BOOT_PROTOCOL_LINUX32,
			"booted through the Linux boot protocol", "protocol %s",
			boot_protocol_name(info->protocol)))
		return 1;
	bootparams_check_header(&zp->hdr);
	test_check(zp->e820_entries > 0 && zp->e820_entries <= BOOT_E820_MAX, "e820_entries",
		   "%u", zp->e820_entries);
	bootcheck_memmap(info);
	bootparams_check_ramdisk(info, zp);
	test_check(zp->hdr.cmd_line_ptr != 0 && zp->ext_cmd_line_ptr == 0, "cmd_line_ptr below 4 GiB",
		   "cmd_line_ptr %x ext %x", zp->hdr.cmd_line_ptr, zp->ext_cmd_line_ptr);
	bootcheck_cmdline(info, (uint64_t)zp->hdr.cmdline_size + 1);
	bootcheck_rsdp(info, zp->acpi_rsdp_addr);
	return 0;
}
