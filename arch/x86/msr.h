/* SPDX-License-Identifier: MIT */
/* Boot-time MSR values for a vCPU (the MSRs Linux reads early). */
#ifndef ISOLA_ARCH_X86_MSR_H
#define ISOLA_ARCH_X86_MSR_H

#include <linux/kvm.h>

#define MSR_BOOT_MAX 16

struct msr_boot_list {
	struct kvm_msrs header;
	struct kvm_msr_entry entries[MSR_BOOT_MAX];
};

/* Fill *list with the MSRs to set on every vCPU before it runs. */
void msr_boot_list(struct msr_boot_list *list);

#endif
