// SPDX-License-Identifier: MIT
/*
 * Linux bzImage loader, per Documentation/arch/x86/boot.rst ("THE REAL-MODE
 * KERNEL HEADER", "LOADING THE REST OF THE KERNEL", "64-bit BOOT PROTOCOL").
 * The real-mode setup code is never run: the VMM fills the zero page itself
 * and enters the protected-mode kernel at its 64-bit entry (startup_64,
 * load address + 0x200) or, before protocol 2.12, at its 32-bit entry.
 */
#include "arch/x86/boot.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "isola/bootparam.h"

#define MIB (1ull << 20)
#define SETUP_HEADER_OFFSET 0x1f1
#define PROTOCOL(major, minor) (((major) << 8) | (minor))
/* boot.rst "heap_end_ptr": offset of the end of the setup heap from the
 * start of the real-mode code, minus 0x200. */
#define BZIMAGE_HEAP_END_PTR (0xfe00 - 0x200)

struct bzimage_info {
	struct boot_setup_header hdr; /* as read from the image */
	size_t hdr_len;               /* bytes of it the image really has */
	uint64_t setup_size;          /* real-mode part: (setup_sects + 1) * 512 */
	uint64_t pm_size;             /* protected-mode kernel */
	uint64_t run_start;           /* where the kernel decompresses itself */
	uint64_t run_end;             /* run_start + init_size */
	uint64_t kernel_end;          /* nothing else may live below this */
	int is_64bit;
};

static uint64_t mib_round_up(uint64_t bytes)
{
	return bytes / MIB + (bytes % MIB != 0);
}

static int bzimage_parse_header(const struct boot_images *images, struct bzimage_info *info,
				char *err, size_t errlen)
{
	const uint8_t *image = images->kernel;
	struct boot_setup_header *hdr = &info->hdr;
	size_t size = images->kernel_size;
	unsigned setup_sects;

	/* The smallest setup area is 4 + 1 sectors; the header lies in it. */
	if (!image || size < 0x400) {
		boot_error(err, errlen, "kernel image is truncated (%zu bytes, a bzImage has at least 2 KiB); "
			   "check the file", image ? size : 0);
		return -ENOEXEC;
	}
	memcpy(hdr, image + SETUP_HEADER_OFFSET, sizeof(*hdr));
	if (hdr->boot_flag != BOOT_FLAG_MAGIC || hdr->header != BOOT_HDR_MAGIC) {
		boot_error(err, errlen, "kernel image is not a bzImage (no 0xAA55 at 0x1fe or \"HdrS\" at 0x202); "
			   "pass arch/x86/boot/bzImage");
		return -ENOEXEC;
	}
	if (hdr->version < PROTOCOL(2, 6)) {
		boot_error(err, errlen,
			   "kernel boot protocol %u.%02x is older than 2.06, the oldest isola supports; "
			   "use a kernel from 2.6.22 or newer",
			   hdr->version >> 8, hdr->version & 0xff);
		return -ENOEXEC;
	}
	if (!(hdr->loadflags & BOOT_LOADFLAG_LOADED_HIGH)) {
		boot_error(err, errlen, "kernel is a zImage (LOADED_HIGH not set), which loads below 1 MiB; "
			   "isola boots bzImages only: build with \"make bzImage\"");
		return -ENOEXEC;
	}
	/* boot.rst "setup_sects": 0 means 4.  The jump at 0x200 skips the
	 * header, so 0x202 + its offset byte is where the header ends. */
	info->hdr_len = 0x202 + image[0x201] - SETUP_HEADER_OFFSET;
	if (info->hdr_len > sizeof(*hdr))
		info->hdr_len = sizeof(*hdr);
	setup_sects = hdr->setup_sects ? hdr->setup_sects : 4;
	info->setup_size = (setup_sects + 1ull) * 512;
	if (size <= info->setup_size) {
		boot_error(err, errlen,
			   "kernel image is truncated: %zu bytes, but its setup code alone takes %llu; "
			   "check the file", size, (unsigned long long)info->setup_size);
		return -ENOEXEC;
	}
	info->pm_size = size - info->setup_size;
	/* boot.rst "syssize": the protected-mode code in 16-byte paragraphs;
	 * a file shorter than that was cut short. */
	if ((uint64_t)hdr->syssize * 16 > info->pm_size) {
		boot_error(err, errlen,
			   "kernel image is truncated: its header says %llu bytes of protected-mode code "
			   "follow the setup code, the file has %llu; check the file",
			   (unsigned long long)hdr->syssize * 16, (unsigned long long)info->pm_size);
		return -ENOEXEC;
	}
	/* boot.rst "xloadflags" (2.12+): XLF_KERNEL_64 = has the 64-bit entry. */
	info->is_64bit = hdr->version >= PROTOCOL(2, 12) && (hdr->xloadflags & BOOT_XLF_KERNEL_64);
	return 0;
}

/*
 * Where the kernel will run.  boot.rst "pref_address"/"init_size" (2.10+):
 * a non-relocatable kernel moves itself to pref_address; a relocatable one
 * decompresses at the load address rounded up to kernel_alignment, but never
 * below LOAD_PHYSICAL_ADDR (= pref_address; arch/x86/boot/compressed/
 * head_64.S and head_32.S clamp it).  It needs init_size bytes there.
 */
static int bzimage_find_run_area(struct bzimage_info *info, char *err, size_t errlen)
{
	const struct boot_setup_header *hdr = &info->hdr;
	uint64_t start = LAYOUT_KERNEL_LOAD, init_size, align;
	int has_pref = hdr->version >= PROTOCOL(2, 10);

	/* Before 2.10 there is no init_size: assume the decompressor needs four
	 * times the compressed kernel (compressed copy + output + slack). */
	init_size = has_pref ? hdr->init_size : info->pm_size * 4;
	if (hdr->relocatable_kernel) {
		align = hdr->kernel_alignment;
		if (align == 0 || (align & (align - 1))) {
			boot_error(err, errlen, "kernel header is corrupt: kernel_alignment 0x%llx is not a power "
				   "of two; use another kernel", (unsigned long long)align);
			return -ENOEXEC;
		}
		start = (start + align - 1) & ~(align - 1);
		if (has_pref && hdr->pref_address > start)
			start = hdr->pref_address;
	} else if (has_pref) {
		start = hdr->pref_address;
	}
	if (start < LAYOUT_HIGH_MEMORY) {
		boot_error(err, errlen,
			   "kernel runs at 0x%llx (pref_address), below 1 MiB where isola keeps its boot "
			   "structures; build the kernel with CONFIG_PHYSICAL_START of 1 MiB or more",
			   (unsigned long long)start);
		return -ENOEXEC;
	}
	if (start > UINT64_MAX - init_size) {
		boot_error(err, errlen, "kernel header is corrupt: pref_address 0x%llx + init_size overflows; "
			   "use another kernel", (unsigned long long)start);
		return -ENOEXEC;
	}
	info->run_start = start;
	info->run_end = start + init_size;
	info->kernel_end = LAYOUT_KERNEL_LOAD + info->pm_size;
	if (info->run_end > info->kernel_end)
		info->kernel_end = info->run_end;
	return 0;
}

static int bzimage_check_memory(const struct gmem *mem, const struct bzimage_info *info, char *err,
				size_t errlen)
{
	uint64_t low_end = gmem_low_ram_end(mem);

	if (LAYOUT_KERNEL_LOAD + info->pm_size > low_end) {
		boot_error(err, errlen, "kernel of %llu MiB does not fit in guest RAM loaded at 0x%llx; "
			   "use --memory %llu or more", (unsigned long long)mib_round_up(info->pm_size),
			   (unsigned long long)LAYOUT_KERNEL_LOAD,
			   (unsigned long long)mib_round_up(LAYOUT_KERNEL_LOAD + info->pm_size));
		return -ENOMEM;
	}
	if (info->run_end > low_end) {
		if (info->run_end > LAYOUT_MMIO_HOLE_START)
			boot_error(err, errlen, "kernel needs %llu MiB of RAM at 0x%llx, which reaches past "
				   "isola's 3 GiB of low RAM; use a relocatable kernel",
				   (unsigned long long)mib_round_up(info->run_end - info->run_start),
				   (unsigned long long)info->run_start);
		else
			boot_error(err, errlen, "kernel needs %llu MiB of RAM at 0x%llx (init_size); "
				   "use --memory %llu or more",
				   (unsigned long long)mib_round_up(info->run_end - info->run_start),
				   (unsigned long long)info->run_start,
				   (unsigned long long)mib_round_up(info->run_end));
		return -ENOMEM;
	}
	return 0;
}

/* boot.rst "Details of header fields" says which fields a boot loader writes. */
static int bzimage_write_zero_page(struct gmem *mem, const struct e820_table *e820,
				   const struct boot_images *images, const struct bzimage_info *info,
				   uint64_t initrd_gpa, char *err, size_t errlen)
{
	struct boot_params params;
	struct boot_setup_header *hdr = &params.hdr;

	memset(&params, 0, sizeof(params));
	memcpy(hdr, images->kernel + SETUP_HEADER_OFFSET, info->hdr_len);
	hdr->vid_mode = 0xffff; /* "normal" */
	hdr->type_of_loader = BOOT_TYPE_OF_LOADER_UNDEFINED;
	hdr->ext_loader_ver = 0;
	hdr->ext_loader_type = 0;
	hdr->loadflags |= BOOT_LOADFLAG_CAN_USE_HEAP;
	hdr->loadflags &= (uint8_t)~BOOT_LOADFLAG_KEEP_SEGMENTS;
	hdr->heap_end_ptr = BZIMAGE_HEAP_END_PTR;
	hdr->code32_start = (uint32_t)LAYOUT_KERNEL_LOAD;
	hdr->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	hdr->ramdisk_image = (uint32_t)initrd_gpa;
	hdr->ramdisk_size = initrd_gpa ? (uint32_t)images->initrd_size : 0;
	if (info->hdr_len > offsetof(struct boot_setup_header, setup_data))
		hdr->setup_data = 0; /* we pass no setup_data list */
	if (info->hdr_len > offsetof(struct boot_setup_header, hardware_subarch))
		hdr->hardware_subarch = 0; /* "default x86/PC" */
	/* zero-page.rst; protocol 2.14+ reads it, older kernels ignore it. */
	params.acpi_rsdp_addr = images->rsdp_gpa;
	params.e820_entries = (uint8_t)e820->nr_entries;
	for (unsigned i = 0; i < e820->nr_entries; i++) {
		params.e820_table[i].addr = e820->entries[i].addr;
		params.e820_table[i].size = e820->entries[i].size;
		params.e820_table[i].type = e820->entries[i].type;
	}
	if (gmem_write(mem, LAYOUT_ZERO_PAGE, &params, sizeof(params)) < 0) {
		boot_error(err, errlen, "guest memory has no room for the zero page at 0x%llx",
			   (unsigned long long)LAYOUT_ZERO_PAGE);
		return -ENOMEM;
	}
	return 0;
}

int bzimage_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
		 struct boot_entry *entry, char *err, size_t errlen)
{
	struct bzimage_info info;
	uint64_t initrd_gpa;
	int ret;

	memset(&info, 0, sizeof(info));
	ret = bzimage_parse_header(images, &info, err, errlen);
	if (!ret)
		ret = bzimage_find_run_area(&info, err, errlen);
	if (!ret)
		ret = bzimage_check_memory(mem, &info, err, errlen);
	/* boot.rst "cmdline_size" (2.06+): the most characters, without the NUL. */
	if (!ret)
		ret = boot_write_cmdline(mem, images->cmdline, info.hdr.cmdline_size, err, errlen);
	if (!ret)
		ret = boot_place_initrd(mem, images, info.kernel_end, info.hdr.initrd_addr_max,
					&initrd_gpa, err, errlen);
	if (ret)
		return ret;
	if (gmem_write(mem, LAYOUT_KERNEL_LOAD, images->kernel + info.setup_size, info.pm_size) < 0) {
		boot_error(err, errlen, "kernel does not fit in guest RAM; use --memory");
		return -ENOMEM;
	}
	ret = bzimage_write_zero_page(mem, e820, images, &info, initrd_gpa, err, errlen);
	if (ret)
		return ret;
	entry->boot_info = LAYOUT_ZERO_PAGE;
	if (info.is_64bit) {
		/* boot.rst "64-bit BOOT PROTOCOL": startup_64 is 0x200 past the
		 * start of the protected-mode kernel. */
		entry->mode = BOOT_ENTRY_LINUX64;
		entry->rip = LAYOUT_KERNEL_LOAD + 0x200;
	} else {
		/* boot.rst "32-bit BOOT PROTOCOL": jump to code32_start. */
		entry->mode = BOOT_ENTRY_LINUX32;
		entry->rip = LAYOUT_KERNEL_LOAD;
	}
	return 0;
}
