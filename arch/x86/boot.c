// SPDX-License-Identifier: MIT
/*
 * Kernel loading: pick the loader from the image's magic numbers, and the
 * pieces both loaders share (command line, initrd placement, messages).
 * The loaders themselves are boot_bzimage.c and boot_pvh.c; docs/boot.md
 * describes all three.
 */
#include "arch/x86/boot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "isola/bootparam.h"

#define MIB (1ull << 20)
#define PAGE_SIZE 4096ull

static uint64_t mib_round_up(uint64_t bytes)
{
	return bytes / MIB + (bytes % MIB != 0);
}

void boot_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

enum boot_format boot_detect(const uint8_t *image, size_t size)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	uint32_t header;

	if (!image)
		return BOOT_FORMAT_UNKNOWN;
	if (size >= sizeof(elf_magic) && memcmp(image, elf_magic, sizeof(elf_magic)) == 0)
		return BOOT_FORMAT_ELF;
	/* boot.rst: "header" at 0x202 holds the magic "HdrS" (since 2.00). */
	if (size >= 0x206) {
		memcpy(&header, image + 0x202, sizeof(header));
		if (header == BOOT_HDR_MAGIC)
			return BOOT_FORMAT_BZIMAGE;
	}
	return BOOT_FORMAT_UNKNOWN;
}

int boot_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
	      struct boot_entry *entry, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!mem || !e820 || !images || !entry || !err || errlen == 0) {
		boot_error(err, errlen, "internal error: boot_load called without memory, map, images or entry");
		return -EINVAL;
	}
	if (e820->nr_entries > E820_MAX_ENTRIES) {
		boot_error(err, errlen, "internal error: e820 map has %u entries, at most %u fit",
			   e820->nr_entries, E820_MAX_ENTRIES);
		return -EINVAL;
	}
	if (images->initrd_size && !images->initrd) {
		boot_error(err, errlen, "internal error: initrd size %zu given without data",
			   images->initrd_size);
		return -EINVAL;
	}
	switch (boot_detect(images->kernel, images->kernel_size)) {
	case BOOT_FORMAT_BZIMAGE:
		return bzimage_load(mem, e820, images, entry, err, errlen);
	case BOOT_FORMAT_ELF:
		return pvh_load(mem, e820, images, entry, err, errlen);
	default:
		boot_error(err, errlen,
			   "kernel image (%zu bytes) is neither a Linux bzImage (no \"HdrS\" at 0x202) "
			   "nor an ELF file; pass a bzImage (arch/x86/boot/bzImage) or a PVH ELF vmlinux",
			   images->kernel ? images->kernel_size : 0);
		return -ENOEXEC;
	}
}

int boot_write_cmdline(struct gmem *mem, const char *cmdline, uint64_t max_len, char *err,
		       size_t errlen)
{
	uint64_t limit = max_len < LAYOUT_CMDLINE_MAX - 1 ? max_len : LAYOUT_CMDLINE_MAX - 1;
	size_t len;

	if (!cmdline)
		cmdline = "";
	/* strnlen: never scan further than the limit + 1 on a hostile string. */
	len = strnlen(cmdline, (size_t)limit + 1);
	if (len > limit) {
		boot_error(err, errlen,
			   "kernel command line is longer than the %llu characters this kernel accepts; "
			   "shorten --cmdline",
			   (unsigned long long)limit);
		return -E2BIG;
	}
	/* gmem_write() refuses empty ranges: only the NUL for an empty line. */
	if ((len && gmem_write(mem, LAYOUT_CMDLINE, cmdline, len) < 0) ||
	    gmem_write(mem, LAYOUT_CMDLINE + len, "", 1) < 0) {
		boot_error(err, errlen, "guest memory has no room for the command line at 0x%llx",
			   (unsigned long long)LAYOUT_CMDLINE);
		return -ENOMEM;
	}
	return 0;
}

/*
 * boot.rst "initrd_addr_max": the address of the highest byte the initrd may
 * occupy.  Like QEMU and the Linux EFI stub we put the initrd as high as
 * allowed, so the kernel's decompression area below it stays free.
 */
int boot_place_initrd(struct gmem *mem, const struct boot_images *images, uint64_t kernel_end,
		      uint64_t addr_max, uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t size = images->initrd_size;
	uint64_t top, bottom, start, need;

	*gpa = 0;
	if (!images->initrd || size == 0)
		return 0;
	top = gmem_low_ram_end(mem);
	if (top > LAYOUT_MMIO_HOLE_END)
		top = LAYOUT_MMIO_HOLE_END;
	if (addr_max < UINT64_MAX && addr_max + 1 < top)
		top = addr_max + 1;
	top &= ~(PAGE_SIZE - 1);
	bottom = kernel_end < LAYOUT_HIGH_MEMORY ? LAYOUT_HIGH_MEMORY : kernel_end;
	if (bottom > UINT64_MAX - PAGE_SIZE) {
		boot_error(err, errlen, "kernel ends at an impossible address; use another kernel");
		return -ENOEXEC;
	}
	bottom = (bottom + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (size > top || ((top - size) & ~(PAGE_SIZE - 1)) < bottom) {
		/* RAM end that would fit it: the kernel's end plus the initrd. */
		need = size > UINT64_MAX - bottom - PAGE_SIZE ?
			       UINT64_MAX :
			       bottom + ((size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
		if (need - 1 <= addr_max && need <= LAYOUT_MMIO_HOLE_START)
			boot_error(err, errlen,
				   "initrd of %llu MiB does not fit between the kernel's end (0x%llx) "
				   "and the top of guest RAM (0x%llx); use --memory %llu or more",
				   (unsigned long long)mib_round_up(size), (unsigned long long)bottom,
				   (unsigned long long)top, (unsigned long long)mib_round_up(need));
		else
			boot_error(err, errlen,
				   "initrd of %llu MiB does not fit between the kernel's end (0x%llx) "
				   "and initrd_addr_max 0x%llx; use a smaller initrd",
				   (unsigned long long)mib_round_up(size), (unsigned long long)bottom,
				   (unsigned long long)addr_max);
		return -ENOMEM;
	}
	start = (top - size) & ~(PAGE_SIZE - 1);
	if (gmem_write(mem, start, images->initrd, size) < 0) {
		boot_error(err, errlen, "initrd at 0x%llx is not in guest RAM; use --memory",
			   (unsigned long long)start);
		return -ENOMEM;
	}
	*gpa = start;
	return 0;
}
