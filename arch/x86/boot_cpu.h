/* SPDX-License-Identifier: MIT */
/* Boot CPU state for each entry mode (boot.rst "64-bit BOOT PROTOCOL",
 * "32-bit BOOT PROTOCOL"; PVH: xen start_info.h "the entry point is called
 * in 32-bit protected mode, paging disabled"). */
#ifndef ISOLA_ARCH_X86_BOOT_CPU_H
#define ISOLA_ARCH_X86_BOOT_CPU_H

#include "arch/x86/boot.h"
#include "lib/gmem.h"

/* Write the boot GDT and (for 64-bit entry) identity page tables into guest
 * memory.  Returns 0 or -EFAULT. */
int boot_cpu_write_tables(struct gmem *mem, const struct boot_entry *entry);
/* Set registers, segments, control registers, FPU of the boot vCPU. */
int boot_cpu_set_state(int vcpu_fd, const struct boot_entry *entry);

#endif
