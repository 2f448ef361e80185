/* SPDX-License-Identifier: MIT */
/* The guest's e820 memory map (boot.rst "zero page": e820_table). */
#ifndef ISOLA_ARCH_X86_E820_H
#define ISOLA_ARCH_X86_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_MAX_ENTRIES 128 /* boot_params.e820_table[] capacity */

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

struct e820_table {
	unsigned nr_entries;
	struct e820_entry entries[E820_MAX_ENTRIES];
};

/* Append a range; entries must be added in ascending, non-overlapping order.
 * Returns 0, -EINVAL (size 0, overflow, overlap/out of order) or -ENOSPC. */
int e820_add(struct e820_table *table, uint64_t addr, uint64_t size, uint32_t type);

/*
 * Build the map for ram_size bytes of guest RAM per layout.h:
 *   [0, EBDA) RAM; [EBDA, 1 MiB) reserved (holds the ACPI and MP tables);
 *   [1 MiB, min(ram, 3 GiB)) RAM; ECAM reserved; RAM above 4 GiB if any.
 * Returns 0 or -EINVAL if ram_size < LAYOUT_MIN_MEMORY.
 */
int e820_build(struct e820_table *table, uint64_t ram_size);

#endif
