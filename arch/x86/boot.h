/* SPDX-License-Identifier: MIT */
/*
 * Kernel loaders: Linux bzImage (Documentation/arch/x86/boot.rst, 64-bit
 * entry) and ELF with a PVH note (XEN_ELFNOTE_PHYS32_ENTRY, hvm_start_info).
 * Loaders work on in-memory buffers so unit tests and fuzzers can drive them.
 */
#ifndef ISOLA_ARCH_X86_BOOT_H
#define ISOLA_ARCH_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/e820.h"
#include "lib/gmem.h"

enum boot_entry_mode {
	BOOT_ENTRY_LINUX64,  /* long mode, paging on (4 GiB identity), RSI = zero page */
	BOOT_ENTRY_LINUX32,  /* 32-bit protected mode, paging off, ESI = zero page */
	BOOT_ENTRY_PVH,      /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_entry {
	enum boot_entry_mode mode;
	uint64_t rip;        /* entry point (guest-physical) */
	uint64_t boot_info;  /* GPA of zero page (RSI/ESI) or hvm_start_info (EBX) */
};

struct boot_images {
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd; /* may be NULL */
	size_t initrd_size;
	const char *cmdline;   /* may be NULL: empty command line */
	uint64_t rsdp_gpa;     /* ACPI RSDP, 0 if none (zero page acpi_rsdp_addr / PVH rsdp_paddr) */
};

enum boot_format { BOOT_FORMAT_UNKNOWN, BOOT_FORMAT_BZIMAGE, BOOT_FORMAT_ELF };

/* Which loader an image needs, from its magic numbers alone. */
enum boot_format boot_detect(const uint8_t *image, size_t size);

/*
 * Load images into guest memory and fill *entry.  On failure returns -errno
 * (-ENOEXEC bad/unsupported image, -ENOMEM guest too small, -E2BIG command
 * line too long, -EINVAL other) and writes one human sentence that says what
 * is wrong and what to do into err (never NULL, errlen > 0).
 */
int boot_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
	      struct boot_entry *entry, char *err, size_t errlen);
int bzimage_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
		 struct boot_entry *entry, char *err, size_t errlen);
int pvh_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
	     struct boot_entry *entry, char *err, size_t errlen);

/* Helpers the two loaders share (arch/x86/boot.c); not for other callers. */
void boot_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copy the command line to LAYOUT_CMDLINE, NUL-terminated; -E2BIG if longer
 * than max_len characters (without the NUL). */
int boot_write_cmdline(struct gmem *mem, const char *cmdline, uint64_t max_len, char *err,
		       size_t errlen);
/* Copy the initrd as high as possible, page aligned, inside
 * [kernel_end, min(addr_max + 1, low RAM end)); *gpa = where it went. */
int boot_place_initrd(struct gmem *mem, const struct boot_images *images, uint64_t kernel_end,
		      uint64_t addr_max, uint64_t *gpa, char *err, size_t errlen);

#endif
