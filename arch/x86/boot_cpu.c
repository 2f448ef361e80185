// SPDX-License-Identifier: MIT
#include "arch/x86/boot_cpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_HUGE 0x80ull

/* boot.rst: __BOOT_CS is 0x10 and __BOOT_DS is 0x18. */
#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define BOOT_TSS 0x20
#define GDT_ENTRIES 6 /* null, null, CS, DS, TSS (16 bytes in long mode) */

/* Descriptor from flags (G, D/B, L, AVL nibble << 12 | P DPL S type byte). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

static struct kvm_segment segment_from_gdt(uint64_t desc, uint16_t selector)
{
	struct kvm_segment seg = {
		.base = (uint32_t)(((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000)),
		.limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000)),
		.selector = selector,
		.type = (desc >> 40) & 0xf,
		.present = (desc >> 47) & 1,
		.dpl = (desc >> 45) & 3,
		.db = (desc >> 54) & 1,
		.s = (desc >> 44) & 1,
		.l = (desc >> 53) & 1,
		.g = (desc >> 55) & 1,
		.avl = (desc >> 52) & 1,
	};

	if (seg.g)
		seg.limit = (seg.limit << 12) | 0xfff;
	seg.unusable = !seg.present;
	return seg;
}

static void boot_gdt(const struct boot_entry *entry, uint64_t gdt[GDT_ENTRIES])
{
	bool long_mode = entry->mode == BOOT_ENTRY_LINUX64;

	memset(gdt, 0, sizeof(uint64_t) * GDT_ENTRIES);
	/* 0xa09b: G, L, P, DPL0, code exec/read/accessed. 0xc09b: G, D, 32-bit. */
	gdt[BOOT_CS / 8] = gdt_entry(long_mode ? 0xa09b : 0xc09b, 0, 0xfffff);
	gdt[BOOT_DS / 8] = gdt_entry(0xc093, 0, 0xfffff);
	/* PVH: "TR: 32-bit TSS (active) with base 0 and limit 0x67". */
	gdt[BOOT_TSS / 8] = gdt_entry(0x008b, 0, 0x67);
}

int boot_cpu_write_tables(struct gmem *mem, const struct boot_entry *entry)
{
	uint64_t gdt[GDT_ENTRIES];
	uint64_t table[512];

	boot_gdt(entry, gdt);
	if (gmem_write(mem, LAYOUT_BOOT_GDT, gdt, sizeof(gdt)))
		return -EFAULT;
	if (entry->mode != BOOT_ENTRY_LINUX64)
		return 0;
	/* boot.rst 64-bit protocol: the kernel, zero page and command line must
	 * be identity mapped; map the whole first 4 GiB with 2 MiB pages. */
	memset(table, 0, sizeof(table));
	table[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
	if (gmem_write(mem, LAYOUT_PML4, table, sizeof(table)))
		return -EFAULT;
	memset(table, 0, sizeof(table));
	for (unsigned i = 0; i < 4; i++)
		table[i] = (LAYOUT_PD + i * 0x1000ull) | PTE_PRESENT | PTE_WRITE;
	if (gmem_write(mem, LAYOUT_PDPT, table, sizeof(table)))
		return -EFAULT;
	for (unsigned pd = 0; pd < 4; pd++) {
		for (unsigned i = 0; i < 512; i++)
			table[i] = (((uint64_t)pd << 30) | ((uint64_t)i << 21)) | PTE_PRESENT |
				   PTE_WRITE | PTE_HUGE;
		if (gmem_write(mem, LAYOUT_PD + pd * 0x1000ull, table, sizeof(table)))
			return -EFAULT;
	}
	return 0;
}

static void boot_cpu_sregs(const struct boot_entry *entry, struct kvm_sregs *sregs)
{
	uint64_t gdt[GDT_ENTRIES];
	struct kvm_segment data;

	boot_gdt(entry, gdt);
	sregs->gdt.base = LAYOUT_BOOT_GDT;
	sregs->gdt.limit = sizeof(gdt) - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = segment_from_gdt(gdt[BOOT_CS / 8], BOOT_CS);
	data = segment_from_gdt(gdt[BOOT_DS / 8], BOOT_DS);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment_from_gdt(gdt[BOOT_TSS / 8], BOOT_TSS);
	sregs->ldt = (struct kvm_segment){.type = 2, .present = 1, .unusable = 0, .limit = 0xffff};
	sregs->cr0 = CR0_PE | CR0_ET;
	sregs->cr4 = 0;
	sregs->efer = 0;
	if (entry->mode == BOOT_ENTRY_LINUX64) {
		sregs->cr0 |= CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	}
}

int boot_cpu_set_state(int vcpu_fd, const struct boot_entry *entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	boot_cpu_sregs(entry, &sregs);
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2; /* reserved bit 1; interrupts off */
	regs.rip = entry->rip;
	if (entry->mode == BOOT_ENTRY_PVH)
		regs.rbx = entry->boot_info;
	else
		regs.rsi = entry->boot_info;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	/* x87 control word and MXCSR at their reset values (SDM Vol. 1 §8.1.5,
	 * §10.2.3.1). */
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}
