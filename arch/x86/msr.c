// SPDX-License-Identifier: MIT
/*
 * MSR values every vCPU starts with: the architectural reset state Linux and
 * other kernels expect from firmware (Intel SDM Vol. 3A §9.1 "Initialization
 * overview", Table 9-1; MSR numbers from SDM Vol. 4 "Model-Specific
 * Registers", Table 2-2).
 */
#include "arch/x86/msr.h"

#include <stdint.h>
#include <string.h>

#define MSR_IA32_TSC 0x00000010
#define MSR_IA32_SYSENTER_CS 0x00000174
#define MSR_IA32_SYSENTER_ESP 0x00000175
#define MSR_IA32_SYSENTER_EIP 0x00000176
#define MSR_IA32_MISC_ENABLE 0x000001a0
#define MSR_IA32_MTRR_DEF_TYPE 0x000002ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

/* IA32_MISC_ENABLE bit 0: fast-strings enable (SDM Vol. 4 Table 2-2; set at reset). */
#define MSR_MISC_ENABLE_FAST_STRING (1ull << 0)

/*
 * IA32_MTRR_DEF_TYPE (SDM Vol. 3A §11.11.2.1): bit 11 E = MTRRs enabled,
 * bit 10 FE = fixed-range MTRRs enabled (left off), bits 7:0 default memory
 * type, 6 = write-back.  With no variable ranges, all RAM is WB; KVM (with
 * EPT/NPT) ignores guest MTRRs for MMIO, and the guest maps MMIO UC via PAT.
 */
#define MSR_MTRR_DEF_TYPE_E (1ull << 11)
#define MSR_MTRR_TYPE_WB 0x06ull

static const struct kvm_msr_entry msr_boot_entries[] = {
    /* SYSENTER/SYSCALL targets: 0 until the kernel installs its entry points. */
    {.index = MSR_IA32_SYSENTER_CS, .data = 0},
    {.index = MSR_IA32_SYSENTER_ESP, .data = 0},
    {.index = MSR_IA32_SYSENTER_EIP, .data = 0},
    {.index = MSR_STAR, .data = 0},
    {.index = MSR_LSTAR, .data = 0},
    {.index = MSR_CSTAR, .data = 0},
    {.index = MSR_SYSCALL_MASK, .data = 0},
    {.index = MSR_KERNEL_GS_BASE, .data = 0},
    /* TSC 0 on every vCPU at once: KVM treats equal writes as one synchronized TSC. */
    {.index = MSR_IA32_TSC, .data = 0},
    {.index = MSR_IA32_MISC_ENABLE, .data = MSR_MISC_ENABLE_FAST_STRING},
    {.index = MSR_IA32_MTRR_DEF_TYPE, .data = MSR_MTRR_DEF_TYPE_E | MSR_MTRR_TYPE_WB},
};

_Static_assert(sizeof(msr_boot_entries) / sizeof(msr_boot_entries[0]) <= MSR_BOOT_MAX,
	       "MSR_BOOT_MAX too small");

void msr_boot_list(struct msr_boot_list *list)
{
	size_t n = sizeof(msr_boot_entries) / sizeof(msr_boot_entries[0]);

	memset(list, 0, sizeof(*list));
	memcpy(list->entries, msr_boot_entries, sizeof(msr_boot_entries));
	list->header.nmsrs = (uint32_t)n;
}
