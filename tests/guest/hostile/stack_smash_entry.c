/* SPDX-License-Identifier: MIT */
/*
 * stack_smash_entry: smash the return address and "return" into the MMIO
 * hole (0xC0000000, no RAM, no device), as a guest with a corrupted stack
 * would.  There is no instruction to fetch there: KVM cannot emulate a fetch
 * from MMIO, so it stops the vCPU (KVM_EXIT_INTERNAL_ERROR) and isola exits 6
 * naming the RIP.  `target=ADDR` picks another address (e.g. above RAM).
 */
#include "kit.h"

int guest_main(const struct boot_info *info)
{
	uint64_t target = cmdline_get_u64_default(info->cmdline, "target", 0xc0000000u);

	console_printf("stack_smash_entry: ret to %lx\n", target);
	__asm__ volatile("push %0\n\tret" : : "r"(target) : "memory");
	test_abort("stack_smash_entry", "came back from %lx", target);
}
