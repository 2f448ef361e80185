/* SPDX-License-Identifier: MIT */
/*
 * cpuid_msr: CPUID on odd leaves (every basic leaf with subleaves 0-3,
 * 0x40000000-0x400000ff, 0x80000000-0x800000ff, 0x8fffffff, 0xc0000000,
 * 0xffffffff), then RDMSR/WRMSR on odd and random MSR indices with a #GP
 * handler that counts and skips faults.  CPUID and MSRs are answered from
 * the tables isola gives KVM (arch/x86/cpuid.c, msr.c): whatever the guest
 * asks, isola must not exit (no unhandled KVM_EXIT_X86_RDMSR/WRMSR, no
 * crash); an unknown MSR is a #GP in the guest.  The guest checks that
 * CPUID is deterministic, that reserved-bit writes to EFER/APIC_BASE
 * fault, that the LAPIC still answers, then exits PASS
 * (status 1).
 */
#include "hostile.h"

#define MSR_TSC 0x10
#define MSR_APIC_BASE 0x1b
#define MSR_PAT 0x277
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

static unsigned cpuid_sweep(void)
{
	static const uint32_t ranges[][2] = {
		{0x40000000u, 0x400000ffu}, {0x80000000u, 0x800000ffu},
		{0x8ffffff0u, 0x8fffffffu}, {0xc0000000u, 0xc0000010u},
		{0xfffffff0u, 0xffffffffu},
	};
	uint32_t a[4], b[4], max;
	unsigned calls = 0, mismatches = 0;

	hostile_cpuid(0, 0, a);
	max = a[0];
	test_check(max >= 1 && max < 0x100, "cpuid max basic leaf sane", "leaf 0 eax %x", max);
	for (uint32_t leaf = 0; leaf <= max + 4; leaf++)
		for (uint32_t sub = 0; sub < 4; sub++, calls++) {
			hostile_cpuid(leaf, sub, a);
			hostile_cpuid(leaf, sub, b);
			/* Leaf 1 EBX holds the initial APIC ID, the same each time. */
			if (memcmp(a, b, sizeof(a)))
				mismatches++;
		}
	for (unsigned r = 0; r < ARRAY_SIZE(ranges); r++)
		for (uint32_t leaf = ranges[r][0];; leaf++) {
			hostile_cpuid(leaf, 0xffffffffu, a);
			hostile_cpuid(leaf, 0xffffffffu, b);
			calls++;
			if (memcmp(a, b, sizeof(a)))
				mismatches++;
			if (leaf == ranges[r][1])
				break;
		}
	test_check(!mismatches, "cpuid is deterministic", "%u of %u leaves changed", mismatches,
		   calls);
	return calls;
}

static void msr_odd(void)
{
	static const uint32_t odd[] = {
		0x0, 0x1, 0x6, 0x10, 0x11, 0x12, 0x17, 0x1b, 0x2a, 0x33, 0x34, 0x3a, 0x3b,
		0x48, 0x49, 0x8b, 0x9b, 0xc1, 0xce, 0xe7, 0xe8, 0xfe, 0x10a, 0x122, 0x140,
		0x174, 0x175, 0x176, 0x179, 0x17a, 0x186, 0x198, 0x199, 0x19a, 0x1a0, 0x1a2,
		0x1d9, 0x1fc, 0x200, 0x201, 0x250, 0x277, 0x2ff, 0x345, 0x38d, 0x38f, 0x3f1,
		0x400, 0x401, 0x402, 0x403, 0x47f, 0x480, 0x48d, 0x491, 0x4c1, 0x560, 0x570,
		0x600, 0x606, 0x611, 0x619, 0x639, 0x6a0, 0x6e0, 0x800, 0x802, 0x808, 0x830,
		0x83f, 0xd90, 0xda0, 0xdb0, 0x1200, 0x1b01, 0x3fff, 0x4000, 0x40000000,
		0x40000001, 0x40000020, 0x40000073, 0x400000f0, 0x4b564d00, 0x4b564d01,
		0x4b564d02, 0x4b564d03, 0x4b564d04, 0x4b564d05, 0x4b564d06, 0x4b564dff,
		0x7fffffff, 0x80000000, 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083,
		0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103, 0xc0000104,
		0xc0001000, 0xc0010000, 0xc0010004, 0xc0010010, 0xc0010015, 0xc0010055,
		0xc0010058, 0xc0010114, 0xc0010117, 0xc0010130, 0xc0011020, 0xc0011029,
		0xc001102a, 0xc0012000, 0xffffffff,
	};
	unsigned ok = 0, faults = 0;
	uint64_t v;

	for (unsigned i = 0; i < ARRAY_SIZE(odd); i++) {
		if (hostile_rdmsr(odd[i], &v))
			faults++;
		else
			ok++;
	}
	for (unsigned i = 0; i < 256; i++) {
		if (hostile_rdmsr((uint32_t)hostile_rand(), &v))
			faults++;
		else
			ok++;
	}
	console_printf("cpuid_msr: rdmsr: %u read, %u faulted\n", ok, faults);
}

/* Writes of garbage that must either stick harmlessly or #GP. */
static void msr_writes(void)
{
	static const uint32_t scratch[] = {0x174, 0x175, 0x176, MSR_STAR, 0xc0000082,
					   0xc0000083, 0xc0000084, 0xc0000102, 0x3a, 0x1a0,
					   0x2ff, 0x400, 0x401, 0x402, 0x403, 0xc0010000};
	unsigned faults = 0, stuck = 0;
	uint64_t v, efer, apic_base, pat;

	for (unsigned i = 0; i < ARRAY_SIZE(scratch); i++) {
		uint64_t garbage = hostile_rand();

		/* Canonical addresses for the MSRs that hold one. */
		if (scratch[i] >= 0xc0000082 || scratch[i] == 0x175 || scratch[i] == 0x176)
			garbage &= 0x00007ffffffff000ull;
		if (hostile_wrmsr(scratch[i], garbage))
			faults++;
		else if (!hostile_rdmsr(scratch[i], &v) && v == garbage)
			stuck++;
	}
	for (unsigned i = 0; i < 128; i++) {
		uint32_t msr = (uint32_t)hostile_rand() | 0x40000000u; /* stay off the arch MSRs */

		if (msr >= 0x4b564d00 && msr <= 0x4b564dff)
			continue;
		if (hostile_wrmsr(msr, hostile_rand()))
			faults++;
	}
	/* kvmclock pointed outside RAM: KVM must ignore or #GP, not write. */
	hostile_wrmsr(MSR_KVM_WALL_CLOCK_NEW, 0xfff00000ull);
	hostile_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0x7ffffffff001ull);
	hostile_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	console_printf("cpuid_msr: wrmsr: %u faulted, %u stuck\n", faults, stuck);

	/* Reserved bits: must #GP and leave the register as it was. */
	efer = cpu_rdmsr(MSR_EFER);
	test_check(hostile_wrmsr(MSR_EFER, efer | (1ull << 63)) && cpu_rdmsr(MSR_EFER) == efer,
		   "EFER reserved bit faults", "EFER now %lx", cpu_rdmsr(MSR_EFER));
	apic_base = cpu_rdmsr(MSR_APIC_BASE);
	test_check(hostile_wrmsr(MSR_APIC_BASE, apic_base | (1ull << 63)) &&
			   cpu_rdmsr(MSR_APIC_BASE) == apic_base,
		   "APIC_BASE reserved bit faults", "APIC_BASE now %lx", cpu_rdmsr(MSR_APIC_BASE));
	pat = cpu_rdmsr(MSR_PAT);
	/* Reserved memory type 2: real KVM #GPs (kvm_pat_valid), this PVM
	 * takes it.  KVM's business, not isola's: write it, put PAT back. */
	if (!hostile_wrmsr(MSR_PAT, 0x0202020202020202ull))
		console_printf("cpuid_msr: note: PAT type 2 accepted without #GP\n");
	(void)hostile_wrmsr(MSR_PAT, pat);
	(void)hostile_rdmsr(MSR_TSC, &v);
}

int guest_main(const struct boot_info *info)
{
	unsigned calls;

	(void)info;
	hostile_catch_msr_faults();
	calls = cpuid_sweep();
	console_printf("cpuid_msr: %u cpuid leaves\n", calls);
	msr_odd();
	msr_writes();
	test_check(lapic_id() == 0, "lapic still answers", "APIC ID %u", lapic_id());
	return 0;
}
