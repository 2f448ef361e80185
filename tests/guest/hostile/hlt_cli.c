/* SPDX-License-Identifier: MIT */
/*
 * hlt_cli: mask interrupts and halt for good.  The vCPU can never wake (the
 * in-kernel LAPIC keeps it halted inside KVM_RUN, no exit); only --timeout
 * can end the VM, which must then exit 8 ("timed out"), promptly, without
 * waiting for the halted vCPU to leave KVM_RUN by itself.
 */
#include "kit.h"

int guest_main(const struct boot_info *info)
{
	(void)info;
	console_printf("hlt_cli: cli; hlt forever\n");
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}
