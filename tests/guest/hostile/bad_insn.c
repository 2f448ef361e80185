/* SPDX-License-Identifier: MIT */
/*
 * bad_insn: run, in ring 0, an instruction this PVM cannot emulate
 * (design.md: INT3, XSAVE/XRSTOR, SSE/x87 state, POPCNT, CLAC/STAC,
 * LOCK CMPXCHG16B).  KVM stops the vCPU with KVM_EXIT_INTERNAL_ERROR; isola
 * must exit 6 with a message naming the RIP (QEMU pauses forever instead).
 * `insn=int3|popcnt|stac|fwait|ldmxcsr|cmpxchg16b|xsave` picks one; default
 * popcnt.  Each is guarded so that, on a KVM that does emulate it, the
 * guest prints FAIL instead of passing silently.
 */
#include "hostile.h"

static uint8_t xsave_area[4096] __attribute__((aligned(64)));
static uint64_t cmpxchg_target[2] __attribute__((aligned(16)));

static void bad_int3_handler(struct idt_frame *frame)
{
	(void)frame;
	test_abort("bad_insn", "INT3 was delivered to the guest's #BP handler");
}

int guest_main(const struct boot_info *info)
{
	char insn[16] = "popcnt";
	uint64_t v = 0xf0f0, out = 0;
	uint32_t mxcsr = 0x1f80;

	cmdline_get(info->cmdline, "insn", insn, sizeof(insn));
	idt_set_handler(3, bad_int3_handler);
	console_printf("bad_insn: %s in ring 0\n", insn);
	if (!strcmp(insn, "int3"))
		__asm__ volatile("int3");
	else if (!strcmp(insn, "stac"))
		__asm__ volatile("stac; clac");
	else if (!strcmp(insn, "fwait"))
		__asm__ volatile("fwait");
	else if (!strcmp(insn, "ldmxcsr"))
		__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	else if (!strcmp(insn, "cmpxchg16b"))
		__asm__ volatile("lock cmpxchg16b %0"
				 : "+m"(*(volatile uint64_t(*)[2])cmpxchg_target)
				 : "a"(0), "d"(0), "b"(1), "c"(1)
				 : "memory", "cc");
	else if (!strcmp(insn, "xsave"))
		__asm__ volatile("xsave %0" : "=m"(xsave_area) : "a"(1), "d"(0) : "memory");
	else
		__asm__ volatile("popcnt %1, %0" : "=r"(out) : "r"(v) : "cc");
	test_abort("bad_insn", "%s ran in ring 0 (popcnt result %lu): this KVM emulates it", insn,
		   out);
}
