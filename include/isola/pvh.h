/* SPDX-License-Identifier: MIT */
/*
 * PVH boot ABI (Xen's include/public/arch-x86/hvm/start_info.h, as used by
 * Linux, QEMU and Firecracker): the ELF note XEN_ELFNOTE_PHYS32_ENTRY names a
 * 32-bit entry point; the loader enters it in flat 32-bit protected mode with
 * paging off and EBX = GPA of struct hvm_start_info.  Freestanding: shared by
 * the PVH loader and the test guests.
 */
#ifndef ISOLA_PVH_H
#define ISOLA_PVH_H

#include <stdint.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC_VALUE 0x336ec578u
#define HVM_START_INFO_VERSION 1 /* version 1 adds memmap_paddr/memmap_entries */

#define HVM_MEMMAP_TYPE_RAM 1
#define HVM_MEMMAP_TYPE_RESERVED 2
#define HVM_MEMMAP_TYPE_ACPI 3

struct hvm_start_info {
	uint32_t magic;          /* HVM_START_MAGIC_VALUE */
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;  /* array of struct hvm_modlist_entry */
	uint64_t cmdline_paddr;  /* NUL-terminated */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry size");

#endif
