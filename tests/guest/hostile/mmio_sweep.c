/* SPDX-License-Identifier: MIT */
/*
 * mmio_sweep: read and write garbage, 8/16/32/64 bits wide, across the
 * whole 32-bit hole 0xC0000000-0xFFFFFFFF at a 64 KiB stride (random
 * offset inside each step, so page-crossing accesses happen too), over
 * every byte offset of the IOAPIC page, across the RAM-less gap between the
 * end of RAM and 3 GiB, above 4 GiB (through a window of our own page
 * tables), and with string instructions (rep movs/stos) on MMIO.  isola
 * must answer unclaimed reads with all-ones, drop unclaimed writes, and
 * keep its devices working; the guest then exits PASS (status 1).
 * The LAPIC page (0xFEE00000) is read only: writes there are KVM's LAPIC,
 * not isola's, and would send IPIs (init_sipi_storm attacks it on purpose).
 */
#include "hostile.h"

#define STRIDE 0x10000u
#define WINDOW_VA 0x8000000000ull /* PML4[1]: our window onto any GPA */
#define PTE_RW_USER 0x07
#define PTE_LARGE 0x80

static uint64_t window_pdpt[512] __attribute__((aligned(4096)));
static uint64_t window_pd[512] __attribute__((aligned(4096)));
static uint8_t sink[4096];

static uint64_t touch(uint64_t addr, int write)
{
	uint64_t sum = 0;

	sum += mmio_read8(addr);
	sum += mmio_read16(addr);
	sum += mmio_read32(addr);
	sum += mmio_read64(addr);
	if (write) {
		mmio_write8(addr, 0xa5);
		mmio_write16(addr, 0x5aa5);
		mmio_write32(addr, 0xdeadbeefu);
		mmio_write64(addr, hostile_rand());
	}
	return sum;
}

static int all_ones(uint64_t addr)
{
	return mmio_read8(addr) == 0xff && mmio_read16(addr) == 0xffff &&
	       mmio_read32(addr) == 0xffffffffu && mmio_read64(addr) == ~0ull;
}

static void sweep_hole(void)
{
	uint64_t sum = 0;
	unsigned n = 0;

	for (uint64_t base = 0xc0000000u; base < 0x100000000ull; base += STRIDE) {
		uint64_t addr = base + (hostile_rand() & (STRIDE - 1));

		if (addr > 0xfffffff8ull)
			addr = 0xfffffff8ull;
		sum += touch(addr, (addr & ~0xfffull) != ISOLA_LAPIC_BASE);
		n++;
	}
	/* The very last bytes below 4 GiB, and an access straddling 4 GiB
	 * is left out: it would need the next page mapped. */
	sum += touch(0xfffffff8ull, 1);
	console_printf("mmio_sweep: hole: %u points (sum %lx)\n", n, sum);
}

static void sweep_ioapic(void)
{
	uint64_t sum = 0;

	for (unsigned off = 0; off < 0x1000; off++) {
		sum += mmio_read8(ISOLA_IOAPIC_BASE + off);
		if (off <= 0xffc)
			sum += mmio_read32(ISOLA_IOAPIC_BASE + off);
		/* Writes away from IOREGSEL/IOWIN/EOI (ioapic_garbage does those). */
		if (off >= 0x44 && off <= 0xff8)
			mmio_write64(ISOLA_IOAPIC_BASE + off, hostile_rand());
		else if (off > 0x13 && off < 0x40)
			mmio_write8(ISOLA_IOAPIC_BASE + off, 0xa5);
	}
	console_printf("mmio_sweep: ioapic page: 4096 offsets (sum %lx)\n", sum);
}

static void sweep_above_ram(const struct boot_info *info)
{
	uint64_t end = 0;
	unsigned n = 0, bad = 0;

	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 && info->mem[i].addr + info->mem[i].size > end &&
		    info->mem[i].addr < 0xc0000000u)
			end = info->mem[i].addr + info->mem[i].size;
	for (uint64_t addr = end; addr < 0xc0000000u; addr += 0x1000000u, n++) {
		touch(addr, 1);
		if (!all_ones(addr + 8))
			bad++;
	}
	test_check(!bad, "no RAM and no device between end of RAM and 3 GiB",
		   "%u of %u probes above %lx did not read all-ones", bad, n, end);
}

/* Point the 1 GiB window at WINDOW_VA to GPA gpa (1 GiB aligned). */
static void window_map(uint64_t gpa)
{
	uint64_t cr3, *pml4;

	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	pml4 = phys_ptr(cr3 & ~0xfffull);
	pml4[1] = (uint64_t)window_pdpt | PTE_RW_USER;
	window_pdpt[0] = (uint64_t)window_pd | PTE_RW_USER;
	for (unsigned i = 0; i < 512; i++)
		window_pd[i] = (gpa + ((uint64_t)i << 21)) | PTE_RW_USER | PTE_LARGE;
	__asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

static void sweep_high(void)
{
	uint32_t r[4];
	unsigned phys_bits, bad = 0, n = 0;

	hostile_cpuid(0x80000008u, 0, r);
	phys_bits = r[0] & 0xff;
	if (phys_bits < 36 || phys_bits > 52)
		phys_bits = 36;
	/* 4 GiB, 64 GiB and the last GiB the guest may address. */
	const uint64_t windows[] = {1ull << 32, 1ull << 36, (1ull << phys_bits) - (1ull << 30)};

	for (unsigned w = 0; w < ARRAY_SIZE(windows); w++) {
		window_map(windows[w]);
		for (uint64_t off = 0; off < (1ull << 30); off += 0x4000000u, n++) {
			touch(WINDOW_VA + off + (hostile_rand() & 0xff8), 1);
			if (!all_ones(WINDOW_VA + off))
				bad++;
		}
	}
	test_check(!bad, "GPAs above 4 GiB read all-ones", "%u of %u probes did not (phys bits %u)",
		   bad, n, phys_bits);
}

static void string_mmio(void)
{
	void *dst = sink;
	const void *src = phys_ptr(0xd0000000u);
	uint64_t count = sizeof(sink);

	/* rep movsb from MMIO: KVM emulates each element as an exit. */
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(count) : : "memory");
	test_check(sink[0] == 0xff && sink[sizeof(sink) - 1] == 0xff, "rep movsb from the hole",
		   "got %x..%x", sink[0], sink[sizeof(sink) - 1]);
	dst = phys_ptr(0xd0001000u);
	count = 512;
	__asm__ volatile("rep stosq" : "+D"(dst), "+c"(count) : "a"(0x4141414141414141ull) : "memory");
	dst = phys_ptr(ISOLA_ECAM_BASE + 0x8000); /* dev 1: absent */
	count = 1024;
	__asm__ volatile("rep stosl" : "+D"(dst), "+c"(count) : "a"(0xffffffffu) : "memory");
}

static void check_devices(void)
{
	uint32_t ver = ioapic_read(0x01);
	uint32_t id = pci_ecam_read32(ISOLA_ECAM_BASE, 0, 0, 0, 0);

	test_check((ver & 0xff) == 0x20 && (ver >> 16 & 0xff) == 23, "ioapic version after sweep",
		   "version register %x", ver);
	test_check(id == (ISOLA_PCI_VENDOR_ID | (uint32_t)ISOLA_PCI_HOST_DEVICE_ID << 16),
		   "pci host bridge id via ECAM after sweep", "id %x", id);
	test_check(pci_cfg_read32(0, 1, 0, 0) == 0xffffffffu, "absent device reads all-ones",
		   "00:01.0 id %x", pci_cfg_read32(0, 1, 0, 0));
}

int guest_main(const struct boot_info *info)
{
	struct hostile_clock clock;

	hostile_clock_start(&clock);
	sweep_hole();
	sweep_ioapic();
	sweep_above_ram(info);
	sweep_high();
	string_mmio();
	check_devices();
	console_printf("mmio_sweep: %lu ms\n", hostile_clock_us(&clock) / 1000);
	return 0;
}
