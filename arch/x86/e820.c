// SPDX-License-Identifier: MIT
/*
 * The guest's e820 memory map.  The same table feeds the Linux zero page
 * (boot.rst "zero page": e820_table) and the PVH memmap (hvm_start_info
 * version 1), so both boot paths describe memory identically.
 */
#include "arch/x86/e820.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"

int e820_add(struct e820_table *table, uint64_t addr, uint64_t size, uint32_t type)
{
	const struct e820_entry *last;

	if (size == 0 || addr + size < addr)
		return -EINVAL;
	if (table->nr_entries > E820_MAX_ENTRIES)
		return -EINVAL;
	if (table->nr_entries) {
		last = &table->entries[table->nr_entries - 1];
		/* Ascending and non-overlapping: Linux sanitizes the map anyway,
		 * but PVH guests (and our test guests) take it as given. */
		if (addr < last->addr + last->size)
			return -EINVAL;
	}
	if (table->nr_entries == E820_MAX_ENTRIES)
		return -ENOSPC;
	table->entries[table->nr_entries++] = (struct e820_entry){
		.addr = addr,
		.size = size,
		.type = type,
	};
	return 0;
}

int e820_build(struct e820_table *table, uint64_t ram_size)
{
	uint64_t low_end;
	int ret;

	memset(table, 0, sizeof(*table));
	if (ram_size < LAYOUT_MIN_MEMORY)
		return -EINVAL;
	/* Same split as gmem_create(): RAM below the 32-bit MMIO hole, the rest
	 * from 4 GiB up. */
	low_end = ram_size < LAYOUT_MMIO_HOLE_START ? ram_size : LAYOUT_MMIO_HOLE_START;

	ret = e820_add(table, 0, LAYOUT_EBDA_START, E820_RAM);
	/* EBDA, VGA and BIOS area; the ACPI tables live in it (0xe0000). */
	if (!ret)
		ret = e820_add(table, LAYOUT_EBDA_START, LAYOUT_HIGH_MEMORY - LAYOUT_EBDA_START,
			       E820_RESERVED);
	if (!ret)
		ret = e820_add(table, LAYOUT_HIGH_MEMORY, low_end - LAYOUT_HIGH_MEMORY, E820_RAM);
	/* Linux ignores MCFG unless its ECAM window is reserved in e820
	 * (arch/x86/pci/mmconfig-shared.c: is_mmconf_reserved). */
	if (!ret)
		ret = e820_add(table, LAYOUT_ECAM_START, LAYOUT_ECAM_SIZE, E820_RESERVED);
	if (!ret && ram_size > low_end)
		ret = e820_add(table, LAYOUT_HIGH_RAM_START, ram_size - low_end, E820_RAM);
	if (ret)
		memset(table, 0, sizeof(*table));
	return ret;
}
