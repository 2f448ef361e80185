/* SPDX-License-Identifier: MIT */
/* TSS, IDT and exception dispatch (Intel SDM Vol 3 §7.14, §8.7). */
#include "kit.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

struct table_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define IDT_INTERRUPT_GATE 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define TSS_TYPE_AVAILABLE 0x89 /* present, 64-bit TSS (available) */

extern uint64_t kit_gdt[];
extern const uint8_t isr_stubs[];

static struct tss64 cpu_tss __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static idt_handler_fn idt_handlers[256];
static uint8_t cpu_trap_stack[8192] __attribute__((aligned(16)));

static void tss_install(void)
{
	uint64_t base = (uint64_t)&cpu_tss;
	uint64_t limit = sizeof(cpu_tss) - 1;

	cpu_tss.rsp[0] = (uint64_t)(cpu_trap_stack + sizeof(cpu_trap_stack));
	cpu_tss.iomap_base = sizeof(cpu_tss); /* no I/O bitmap */
	/* 16-byte system descriptor (Intel SDM Vol 3 §8.2.3) at SEL_TSS. */
	kit_gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
			       ((uint64_t)TSS_TYPE_AVAILABLE << 40) | ((limit >> 16 & 0xf) << 48) |
			       ((base >> 24 & 0xff) << 56);
	kit_gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
}

void idt_load(void)
{
	struct table_desc desc = { sizeof(idt) - 1, (uint64_t)idt };

	__asm__ volatile("lidt %0" : : "m"(desc));
}

void idt_install(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t addr = (uint64_t)(isr_stubs + 16 * v);

		idt[v] = (struct idt_gate){
			.offset_low = addr & 0xffff,
			.selector = SEL_KERNEL_CS,
			.type_attr = IDT_INTERRUPT_GATE,
			.offset_mid = (addr >> 16) & 0xffff,
			.offset_high = addr >> 32,
		};
	}
	idt_load();
	tss_install();
}

void idt_set_handler(unsigned vector, idt_handler_fn fn)
{
	if (vector < 256)
		idt_handlers[vector] = fn;
}

void idt_dispatch(struct idt_frame *frame);
void ring3_trap(struct idt_frame *frame);

void idt_dispatch(struct idt_frame *frame)
{
	idt_handler_fn fn = idt_handlers[frame->vector & 0xff];
	uint64_t cr2;

	if ((frame->cs & 3) == 3 && frame->vector < 32) {
		ring3_trap(frame); /* does not return */
		return;
	}
	if (fn) {
		fn(frame);
		return;
	}
	if (frame->vector == 0xff) /* LAPIC spurious vector: no EOI (SDM Vol 3 §11.9) */
		return;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	test_abort("unexpected interrupt",
		   "vector %lu error %lx rip %lx cs %lx rsp %lx rflags %lx cr2 %lx", frame->vector,
		   frame->error_code, frame->rip, frame->cs, frame->rsp, frame->rflags, cr2);
}
