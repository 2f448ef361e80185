// SPDX-License-Identifier: MIT
/*
 * Guest CPUID: what KVM supports (api.rst "KVM_GET_SUPPORTED_CPUID"), with
 * the fields KVM leaves to user space filled in for vCPU i of n (Intel SDM
 * Vol. 2A "CPUID"; AMD APM Vol. 3 appendix E for the AMD-only leaves).
 *
 * Topology: one package, one die, nr_cpus cores, one thread per core;
 * APIC ID = x2APIC ID = cpu_index.  docs/platform.md has the table.
 */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

_Static_assert(offsetof(struct cpuid_table, entries) == sizeof(struct kvm_cpuid2),
	       "entries[] must follow the kvm_cpuid2 header");

#define CPUID_MAX_CPUS 255 /* xAPIC IDs are 8 bits; 0xff is broadcast */

/* Leaf 1 (SDM Vol. 2A Table 3-8, 3-10, 3-11) */
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24) /* SDM Vol. 2A Table 3-10 */
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_1_CLFLUSH_LINE 8 /* in 8-byte units: 64-byte lines */

/* Leaf 0xB/0x1F level types (SDM Vol. 2A Table 3-8, leaf 0BH) */
#define CPUID_LEVEL_INVALID 0
#define CPUID_LEVEL_SMT 1
#define CPUID_LEVEL_CORE 2

#define CPUID_KVM_SIGNATURE 0x40000000u
#define CPUID_KVM_FEATURES 0x40000001u
#define CPUID_HYPERVISOR_FIRST 0x40000000u
#define CPUID_HYPERVISOR_LAST 0x4fffffffu

int cpuid_get_supported(int kvm_fd, struct cpuid_table *table)
{
	memset(table, 0, sizeof(*table));
	table->header.nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &table->header) < 0)
		return -errno;
	if (table->header.nent > CPUID_MAX_ENTRIES)
		return -E2BIG;
	return 0;
}

struct kvm_cpuid_entry2 *cpuid_find(struct cpuid_table *table, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < table->header.nent && i < CPUID_MAX_ENTRIES; i++) {
		struct kvm_cpuid_entry2 *e = &table->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/* Smallest power of two >= n, and its log2 (the APIC-ID bits for n IDs). */
static unsigned cpuid_order(unsigned n)
{
	unsigned order = 0;

	while ((1u << order) < n)
		order++;
	return order;
}

static unsigned cpuid_pow2(unsigned n)
{
	return 1u << cpuid_order(n);
}

static unsigned cpuid_min(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* Drop every entry of a leaf in [first, last] (all subleaves). */
static void cpuid_remove_range(struct cpuid_table *table, uint32_t first, uint32_t last)
{
	uint32_t out = 0;

	for (uint32_t i = 0; i < table->header.nent; i++) {
		const struct kvm_cpuid_entry2 *e = &table->entries[i];

		if (e->function >= first && e->function <= last)
			continue;
		table->entries[out++] = *e;
	}
	table->header.nent = out;
}

static struct kvm_cpuid_entry2 *cpuid_add(struct cpuid_table *table, uint32_t function,
					  uint32_t index, uint32_t flags)
{
	struct kvm_cpuid_entry2 *e;

	if (table->header.nent >= CPUID_MAX_ENTRIES)
		return NULL;
	e = &table->entries[table->header.nent++];
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = index;
	e->flags = flags;
	return e;
}

/* Highest leaf of the range `base` belongs to (0 or 0x80000000), 0 if absent. */
static uint32_t cpuid_max_leaf(struct cpuid_table *table, uint32_t base)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(table, base, 0);

	return e ? e->eax : 0;
}

/*
 * Leaf 1 EBX: [31:24] initial APIC ID, [23:16] addressable logical
 * processor IDs in the package (the OS rounds it up to a power of two;
 * hardware reports the power of two, 255 stands for 256), [15:8] CLFLUSH
 * line size.  EDX.HTT says [23:16] is valid.
 */
static void cpuid_setup_leaf1(struct cpuid_table *table, unsigned cpu_index, unsigned nr_cpus)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(table, 1, 0);
	unsigned logical = cpuid_min(cpuid_pow2(nr_cpus), 255);

	if (!e)
		return;
	e->ecx |= CPUID_1_ECX_HYPERVISOR;
	e->ebx = (e->ebx & 0xff) | cpu_index << 24 | logical << 16 | CPUID_1_CLFLUSH_LINE << 8;
	if (nr_cpus > 1)
		e->edx |= CPUID_1_EDX_HTT;
	else
		e->edx &= ~CPUID_1_EDX_HTT;
}

/*
 * Cache leaves: Intel leaf 4 (SDM: "Deterministic Cache Parameters") and
 * AMD 0x8000001D (APM: "Cache Topology Information") share EAX's layout:
 * [4:0] type (0 = no more caches), [7:5] level, [25:14] addressable IDs
 * sharing the cache - 1.  Leaf 4 also has [31:26] addressable core IDs in
 * the package - 1.  L1/L2 are per core (one thread each); L3 is shared.
 */
static void cpuid_setup_cache_leaf(struct cpuid_table *table, uint32_t function, unsigned nr_cpus)
{
	unsigned cores = cpuid_min(cpuid_pow2(nr_cpus), 64);

	for (uint32_t i = 0; i < table->header.nent; i++) {
		struct kvm_cpuid_entry2 *e = &table->entries[i];
		unsigned level = (e->eax >> 5) & 0x7, sharing;

		if (e->function != function || (e->eax & 0x1f) == 0)
			continue;
		sharing = level >= 3 ? cpuid_pow2(nr_cpus) : 1;
		e->eax &= ~(0xfffu << 14);
		e->eax |= (sharing - 1) << 14;
		if (function == 4) {
			e->eax &= ~(0x3fu << 26);
			e->eax |= (cores - 1) << 26;
		}
	}
}

/*
 * Leaf 0xB ("Extended Topology Enumeration") and 0x1F ("V2 Extended
 * Topology"): subleaf 0 = SMT (1 thread, shift 0), subleaf 1 = core
 * (nr_cpus processors, shift = APIC-ID bits for nr_cpus), subleaf 2 ends the
 * list (type 0).  EDX is the x2APIC ID in every subleaf.
 */
static int cpuid_setup_ext_topology(struct cpuid_table *table, uint32_t function,
				    unsigned cpu_index, unsigned nr_cpus)
{
	static const unsigned level_type[3] = {CPUID_LEVEL_SMT, CPUID_LEVEL_CORE,
					       CPUID_LEVEL_INVALID};

	cpuid_remove_range(table, function, function);
	for (uint32_t sub = 0; sub < 3; sub++) {
		struct kvm_cpuid_entry2 *e =
		    cpuid_add(table, function, sub, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);

		if (!e)
			return -ENOSPC;
		switch (level_type[sub]) {
		case CPUID_LEVEL_SMT:
			e->eax = 0;
			e->ebx = 1;
			break;
		case CPUID_LEVEL_CORE:
			e->eax = cpuid_order(nr_cpus);
			e->ebx = nr_cpus;
			break;
		default:
			break;
		}
		e->ecx = sub | level_type[sub] << 8;
		e->edx = cpu_index;
	}
	return 0;
}

/*
 * AMD topology (APM Vol. 3 appendix E.4): 0x80000008 ECX [7:0] NC = cores
 * - 1, [15:12] ApicIdSize = APIC-ID bits for the cores; 0x8000001E (with
 * TOPOEXT) EAX extended APIC ID, EBX [7:0] core ID, [15:8] threads per core
 * - 1, ECX [7:0] node ID, [10:8] nodes per package - 1.  KVM reports zeros in
 * 0x8000001E, which a guest would read as "every CPU has APIC ID 0".
 */
static void cpuid_setup_amd_topology(struct cpuid_table *table, unsigned cpu_index,
				     unsigned nr_cpus)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(table, 0x80000008, 0);

	if (e) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= (nr_cpus - 1) | cpuid_order(nr_cpus) << 12;
	}
	e = cpuid_find(table, 0x8000001e, 0);
	if (e) {
		e->eax = cpu_index;
		e->ebx = cpu_index; /* compute unit / core ID; 0 threads - 1 */
		e->ecx = 0;	    /* node 0, one node */
		e->edx = 0;
	}
}

/*
 * KVM's paravirtual leaves (Documentation/virt/kvm/x86/cpuid.rst):
 * 0x40000000 = max hypervisor leaf + "KVMKVMKVM\0\0\0", 0x40000001 = KVM's
 * feature bits as KVM reported them.  Any other hypervisor leaf goes.
 */
static int cpuid_setup_kvm_leaves(struct cpuid_table *table)
{
	static const char signature[12] = "KVMKVMKVM\0\0";
	struct kvm_cpuid_entry2 features = {.function = CPUID_KVM_FEATURES};
	struct kvm_cpuid_entry2 *e = cpuid_find(table, CPUID_KVM_FEATURES, 0);

	if (e)
		features = *e;
	features.index = 0;
	features.flags = 0;
	cpuid_remove_range(table, CPUID_HYPERVISOR_FIRST, CPUID_HYPERVISOR_LAST);

	e = cpuid_add(table, CPUID_KVM_SIGNATURE, 0, 0);
	if (!e)
		return -ENOSPC;
	e->eax = CPUID_KVM_FEATURES;
	memcpy(&e->ebx, signature, 4);
	memcpy(&e->ecx, signature + 4, 4);
	memcpy(&e->edx, signature + 8, 4);

	e = cpuid_add(table, CPUID_KVM_FEATURES, 0, 0);
	if (!e)
		return -ENOSPC;
	*e = features;
	return 0;
}

void cpuid_set_tsc_deadline(struct cpuid_table *table)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(table, 1, 0);

	if (e)
		e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
}

int cpuid_setup_vcpu(struct cpuid_table *table, unsigned cpu_index, unsigned nr_cpus)
{
	uint32_t max_basic;
	int ret;

	if (!table || nr_cpus == 0 || nr_cpus > CPUID_MAX_CPUS || cpu_index >= nr_cpus ||
	    table->header.nent > CPUID_MAX_ENTRIES)
		return -EINVAL;

	max_basic = cpuid_max_leaf(table, 0);
	cpuid_setup_leaf1(table, cpu_index, nr_cpus);
	cpuid_setup_cache_leaf(table, 4, nr_cpus);
	cpuid_setup_cache_leaf(table, 0x8000001d, nr_cpus);
	if (max_basic >= 0xb) {
		ret = cpuid_setup_ext_topology(table, 0xb, cpu_index, nr_cpus);
		if (ret)
			return ret;
	}
	if (max_basic >= 0x1f) {
		ret = cpuid_setup_ext_topology(table, 0x1f, cpu_index, nr_cpus);
		if (ret)
			return ret;
	}
	cpuid_setup_amd_topology(table, cpu_index, nr_cpus);
	return cpuid_setup_kvm_leaves(table);
}
