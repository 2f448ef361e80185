/* SPDX-License-Identifier: MIT */
/*
 * triple_fault: load an IDT with limit 0, then fault (#UD).  The CPU cannot
 * deliver #UD, nor the #GP that follows, nor the #DF: it shuts down (Intel
 * SDM Vol 3 §7.15 "Interrupt 8, Double Fault": triple fault).  KVM reports
 * KVM_EXIT_SHUTDOWN and isola must exit 6 naming the triple fault, never
 * reset the guest in a loop or hang.
 */
#include "kit.h"

int guest_main(const struct boot_info *info)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) null_idt = {0, 0};

	(void)info;
	console_printf("triple_fault: null IDT, then ud2\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(null_idt) : "memory");
	test_abort("triple_fault", "still running after ud2 with a null IDT");
}
