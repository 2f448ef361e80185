/* SPDX-License-Identifier: MIT */
/*
 * Checks shared by the boot-protocol guests (pvh, bootparams): what Linux
 * relies on in the memory map, the initrd, the command line and the RSDP.
 * Command-line conventions (README.md): mem=<bytes>, initrd_size=<bytes>,
 * cmdline_len=<n>.
 */
#include "kit.h"

#define LEGACY_HOLE_START 0x9fc00ul /* EBDA: layout.h LAYOUT_EBDA_START */
#define LEGACY_HOLE_END 0x100000ul
#define MMIO_HOLE_START 0xc0000000ul
#define MMIO_HOLE_END 0x100000000ul

extern const uint8_t _end[];

static int range_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int bootcheck_ram_overlaps(const struct boot_info *info, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 &&
		    range_overlaps(info->mem[i].addr, info->mem[i].size, start, end - start))
			return 1;
	return 0;
}

static int bootcheck_ram_contains(const struct boot_info *info, uint64_t addr, uint64_t size)
{
	for (unsigned i = 0; i < info->nr_mem; i++) {
		const struct boot_mem_range *m = &info->mem[i];

		if (m->type == 1 && addr >= m->addr && addr + size <= m->addr + m->size)
			return 1;
	}
	return 0;
}

static int bootcheck_has_ram_at(const struct boot_info *info, uint64_t addr)
{
	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 && info->mem[i].addr == addr && info->mem[i].size)
			return 1;
	return 0;
}

static void bootcheck_order(const struct boot_info *info)
{
	for (unsigned i = 0; i < info->nr_mem; i++) {
		const struct boot_mem_range *m = &info->mem[i];

		if (m->size == 0 || m->addr + m->size < m->addr) {
			test_fail("memory map", "entry %u: bad size %lx at %lx", i, m->size, m->addr);
			return;
		}
		if (i && m->addr < info->mem[i - 1].addr + info->mem[i - 1].size) {
			test_fail("memory map sorted, non-overlapping", "entry %u at %lx overlaps or precedes entry %u",
				  i, m->addr, i - 1);
			return;
		}
	}
	test_pass("memory map sorted, non-overlapping (%u entries)", info->nr_mem);
}

/*
 * mem=<bytes> is the guest's memory size (isola --memory).  The RAM entries
 * sum to it, or to it minus the legacy hole [0x9fc00, 1 MiB) when the VMM
 * carves that out of RAM (isola's e820_build does).
 */
static void bootcheck_total(const struct boot_info *info)
{
	uint64_t total = boot_ram_total(info), mem;

	if (cmdline_get_u64(info->cmdline, "mem", &mem)) {
		console_printf("note: no mem= on the command line; RAM total %lx not checked\n", total);
		return;
	}
	test_check(total == mem || total == mem - (LEGACY_HOLE_END - LEGACY_HOLE_START),
		   "RAM total matches mem=", "RAM total %lx, mem= %lx (or %lx without the legacy hole)",
		   total, mem, mem - (LEGACY_HOLE_END - LEGACY_HOLE_START));
}

void bootcheck_memmap(const struct boot_info *info)
{
	if (!test_check(info->nr_mem > 0, "memory map present", "no entries"))
		return;
	bootcheck_order(info);
	bootcheck_total(info);
	test_check(bootcheck_has_ram_at(info, 0), "RAM entry at 0", "none starts at 0");
	test_check(bootcheck_has_ram_at(info, LEGACY_HOLE_END), "RAM entry at 1 MiB",
		   "none starts at 0x100000");
	test_check(!bootcheck_ram_overlaps(info, 0xa0000, LEGACY_HOLE_END), "no RAM in 0xA0000-0xFFFFF",
		   "VGA/BIOS area reported as RAM");
	test_check(!bootcheck_ram_overlaps(info, MMIO_HOLE_START, MMIO_HOLE_END),
		   "no RAM in 0xC0000000-0xFFFFFFFF", "RAM overlaps the MMIO hole");
	test_check(bootcheck_ram_contains(info, 0x100000, (uint64_t)_end - 0x100000),
		   "guest image inside RAM", "image 0x100000-%p not in one RAM entry", _end);
}

struct pattern_job {
	const uint8_t *data;
	uint64_t size;
};

/* Runs in ring 3 (native speed under PVM): index of first bad byte, or size. */
static uint64_t pattern_scan(uint64_t arg)
{
	const struct pattern_job *job = (const struct pattern_job *)arg;

	for (uint64_t i = 0; i < job->size; i++)
		if (job->data[i] != (uint8_t)(i * 131 + 7))
			return i;
	return job->size;
}

void bootcheck_initrd(const struct boot_info *info, uint64_t addr_max)
{
	struct pattern_job job = { (const uint8_t *)info->initrd_addr, info->initrd_size };
	uint64_t want, bad;

	if (cmdline_get_u64(info->cmdline, "initrd_size", &want)) {
		console_printf("note: no initrd_size= on the command line; initrd not checked\n");
		return;
	}
	console_printf("initrd: %lx bytes at %lx\n", info->initrd_size, info->initrd_addr);
	if (!test_check(info->initrd_addr && info->initrd_size == want, "initrd present with initrd_size=",
			"addr %lx size %lx, want size %lx", info->initrd_addr, info->initrd_size, want))
		return;
	if (!test_check(bootcheck_ram_contains(info, info->initrd_addr, info->initrd_size),
			"initrd inside RAM", "%lx+%lx", info->initrd_addr, info->initrd_size))
		return;
	test_check(!range_overlaps(info->initrd_addr, info->initrd_size, 0x100000,
				   (uint64_t)_end - 0x100000),
		   "initrd clear of the guest image", "initrd %lx overlaps image end %p",
		   info->initrd_addr, _end);
	if (addr_max)
		test_check(info->initrd_addr + info->initrd_size - 1 <= addr_max,
			   "initrd below initrd_addr_max", "ends at %lx, max %lx",
			   info->initrd_addr + info->initrd_size - 1, addr_max);
	bad = run_in_ring3(pattern_scan, (uint64_t)&job);
	test_check(bad == info->initrd_size, "initrd content", "byte %lx differs (want (i*131+7)&0xff)%s",
		   bad, ring3_fault() ? ", ring 3 faulted" : "");
}

void bootcheck_cmdline(const struct boot_info *info, uint64_t limit)
{
	const char *raw = phys_ptr(info->cmdline_gpa);
	uint64_t want, n = 0;

	console_printf("cmdline: [%s]\n", info->cmdline);
	if (!test_check(info->cmdline_gpa != 0, "command line pointer", "is 0"))
		return;
	while (n < limit && raw[n])
		n++;
	test_check(n < limit, "command line NUL-terminated", "no NUL in %lx bytes", limit);
	if (cmdline_get_u64(info->cmdline, "cmdline_len", &want) == 0)
		test_check(n == want, "command line length == cmdline_len=", "length %lu, want %lu", n,
			   want);
	test_check(cmdline_has(info->cmdline, "cmdline_end"), "command line complete",
		   "last word cmdline_end missing (truncated?)");
}

void bootcheck_rsdp(const struct boot_info *info, uint64_t rsdp)
{
	const char *why = acpi_rsdp_invalid(rsdp);

	if (!test_check(!why, "RSDP from the loader valid", "%s (at %lx)", why, rsdp))
		return;
	test_check(!bootcheck_ram_overlaps(info, rsdp, rsdp + 36), "RSDP outside RAM",
		   "RSDP at %lx lies in RAM the OS may reuse", rsdp);
}
