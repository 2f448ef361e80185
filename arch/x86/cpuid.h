/* SPDX-License-Identifier: MIT */
/* Guest CPUID built from KVM_GET_SUPPORTED_CPUID (api.rst 4.46). */
#ifndef ISOLA_ARCH_X86_CPUID_H
#define ISOLA_ARCH_X86_CPUID_H

#include <linux/kvm.h>
#include <stdint.h>

#define CPUID_MAX_ENTRIES 256

/* A struct kvm_cpuid2 with room for CPUID_MAX_ENTRIES entries. */
struct cpuid_table {
	struct kvm_cpuid2 header;
	struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
};

/* Fill *table with what KVM supports (KVM_GET_SUPPORTED_CPUID on kvm_fd). */
int cpuid_get_supported(int kvm_fd, struct cpuid_table *table);

/*
 * Adjust a copy of the supported table for vCPU cpu_index of nr_cpus:
 * hypervisor bit, KVM signature leaves 0x40000000/1, APIC IDs (leaf 1 EBX,
 * leaf 0xB/0x1F x2APIC ID), topology (one package, nr_cpus cores, one thread
 * per core: leaves 1, 4, 0xB, 0x1F, 0x80000008, and on AMD 0x8000001D/1E).
 * Pure function of its inputs, so unit tests can feed a synthetic table.
 * Returns 0, -EINVAL (bad arguments) or -ENOSPC (no room for added leaves).
 */
int cpuid_setup_vcpu(struct cpuid_table *table, unsigned cpu_index, unsigned nr_cpus);

/*
 * Leaf 1 ECX[24] TSC-deadline: set when KVM emulates the LAPIC's TSC-deadline
 * timer mode (KVM_CAP_TSC_DEADLINE_TIMER; KVM_GET_SUPPORTED_CPUID leaves the
 * bit to user space).  With it Linux uses the LAPIC timer without calibrating
 * it against a reference clock; without the ACPI PM timer (acpi=off) that
 * reference would be the PIT, which isola does not have (docs/platform.md).
 */
void cpuid_set_tsc_deadline(struct cpuid_table *table);

/* Find an entry (index ignored for leaves without KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
struct kvm_cpuid_entry2 *cpuid_find(struct cpuid_table *table, uint32_t function, uint32_t index);

#endif
