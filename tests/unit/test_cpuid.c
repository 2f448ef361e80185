// SPDX-License-Identifier: MIT
/*
 * Guest CPUID policy on a synthetic "supported" table (no /dev/kvm needed),
 * field by field for 1, 2, 3, 4, 8 and 255 vCPUs, plus one test against the
 * real KVM_GET_SUPPORTED_CPUID when /dev/kvm can be opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

static const unsigned cpu_counts[] = {1, 2, 3, 4, 8, 255};

static void add(struct cpuid_table *t, uint32_t fn, uint32_t idx, uint32_t flags, uint32_t eax,
		uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	struct kvm_cpuid_entry2 *e = &t->entries[t->header.nent++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = flags;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

/* Cache leaf EAX: type, level, and junk sharing/core fields KVM may pass through. */
static uint32_t cache_eax(unsigned type, unsigned level)
{
	return type | level << 5 | 0x3u << 8 | 0x7u << 14 | 0x5u << 26;
}

/* What a host's KVM might report: host topology values that must be replaced. */
static void synthetic(struct cpuid_table *t, uint32_t max_basic)
{
	memset(t, 0, sizeof(*t));
	add(t, 0, 0, 0, max_basic, 0x756e6547, 0x6c65746e, 0x49656e69);
	add(t, 1, 0, 0, 0x000906ea, 0x07100805, 0x7ffafbff, 0xbfebfbff);
	add(t, 4, 0, SIG, cache_eax(1, 1), 0x01c0003f, 0x3f, 0);
	add(t, 4, 1, SIG, cache_eax(2, 1), 0x01c0003f, 0x3f, 0);
	add(t, 4, 2, SIG, cache_eax(3, 2), 0x00c0003f, 0x3ff, 0);
	add(t, 4, 3, SIG, cache_eax(3, 3), 0x02c0003f, 0x2fff, 6);
	add(t, 4, 4, SIG, 0, 0, 0, 0);
	add(t, 7, 0, SIG, 0, 0x029c6fbf, 0, 0);
	add(t, 0xb, 0, SIG, 1, 2, 0x100, 7);
	add(t, 0xb, 1, SIG, 4, 12, 0x201, 7);
	add(t, 0x1f, 0, SIG, 1, 2, 0x100, 7);
	add(t, 0x80000000, 0, 0, 0x8000001e, 0, 0, 0);
	add(t, 0x80000008, 0, 0, 0x3030, 0, 0x00037007, 0);
	add(t, 0x8000001d, 0, SIG, cache_eax(1, 1), 0, 0, 0);
	add(t, 0x8000001d, 1, SIG, cache_eax(3, 3), 0, 0, 0);
	add(t, 0x8000001d, 2, SIG, 0, 0, 0, 0);
	add(t, 0x8000001e, 0, 0, 0, 0, 0, 0);
	add(t, 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
	add(t, 0x40000001, 0, 0, 0x01007efb, 0, 0, 0x1);
	add(t, 0x40000010, 0, 0, 0x12345, 0, 0, 0); /* must go */
}

static unsigned pow2(unsigned n)
{
	unsigned p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static unsigned order(unsigned n)
{
	unsigned o = 0;

	while ((1u << o) < n)
		o++;
	return o;
}

static struct kvm_cpuid_entry2 *must_find(struct cpuid_table *t, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(t, fn, idx);

	if (!e)
		fail_msg("leaf %#x.%u missing", fn, idx);
	return e;
}

static unsigned count_leaf(const struct cpuid_table *t, uint32_t fn)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < t->header.nent; i++)
		n += t->entries[i].function == fn;
	return n;
}

static void check_leaf1(struct cpuid_table *t, unsigned cpu, unsigned n)
{
	struct kvm_cpuid_entry2 *e = must_find(t, 1, 0);
	unsigned logical = pow2(n) > 255 ? 255 : pow2(n);

	assert_true(e->ecx & (1u << 31)); /* hypervisor */
	assert_int_equal(e->ecx & ~(1u << 31), 0x7ffafbff);
	assert_int_equal(e->ebx >> 24, cpu);		  /* initial APIC ID */
	assert_int_equal((e->ebx >> 16) & 0xff, logical); /* addressable IDs */
	assert_int_equal((e->ebx >> 8) & 0xff, 8);	  /* CLFLUSH: 64 bytes */
	assert_int_equal(e->ebx & 0xff, 0x05);		  /* brand index kept */
	assert_int_equal(!!(e->edx & (1u << 28)), n > 1); /* HTT */
	assert_int_equal(e->edx & ~(1u << 28), 0xbfebfbff & ~(1u << 28));
	assert_int_equal(e->eax, 0x000906ea);
}

static void check_cache_leaves(struct cpuid_table *t, unsigned n)
{
	unsigned cores = pow2(n) > 64 ? 64 : pow2(n);

	for (uint32_t sub = 0; sub < 4; sub++) {
		struct kvm_cpuid_entry2 *e = must_find(t, 4, sub);
		unsigned level = (e->eax >> 5) & 7;
		unsigned sharing = level == 3 ? pow2(n) : 1;

		assert_int_equal(e->eax >> 26, cores - 1);
		assert_int_equal((e->eax >> 14) & 0xfff, sharing - 1);
		assert_int_equal((e->eax >> 8) & 0x3f, 0x3); /* other bits kept */
	}
	assert_int_equal(must_find(t, 4, 4)->eax, 0); /* terminator untouched */
	assert_int_equal((must_find(t, 0x8000001d, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((must_find(t, 0x8000001d, 1)->eax >> 14) & 0xfff, pow2(n) - 1);
	assert_int_equal(must_find(t, 0x8000001d, 1)->eax >> 26, 0x5); /* not ours on AMD */
	assert_int_equal(must_find(t, 0x8000001d, 2)->eax, 0);
}

static void check_ext_topology(struct cpuid_table *t, uint32_t fn, unsigned cpu, unsigned n)
{
	struct kvm_cpuid_entry2 *smt = must_find(t, fn, 0);
	struct kvm_cpuid_entry2 *core = must_find(t, fn, 1);
	struct kvm_cpuid_entry2 *end = must_find(t, fn, 2);

	assert_int_equal(count_leaf(t, fn), 3);
	assert_true(smt->flags & SIG);
	assert_int_equal(smt->eax, 0);
	assert_int_equal(smt->ebx, 1);
	assert_int_equal(smt->ecx, 0 | 1 << 8);
	assert_int_equal(core->eax, order(n));
	assert_int_equal(core->ebx, n);
	assert_int_equal(core->ecx, 1 | 2 << 8);
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);	 /* type 0: invalid */
	assert_int_equal(smt->edx, cpu); /* x2APIC ID */
	assert_int_equal(core->edx, cpu);
	assert_int_equal(end->edx, cpu);
	assert_null(cpuid_find(t, fn, 3));
}

static void check_amd_topology(struct cpuid_table *t, unsigned cpu, unsigned n)
{
	struct kvm_cpuid_entry2 *e = must_find(t, 0x80000008, 0);
	struct kvm_cpuid_entry2 *ext = must_find(t, 0x8000001e, 0);

	assert_int_equal(e->ecx & 0xff, n - 1);		  /* NC */
	assert_int_equal((e->ecx >> 12) & 0xf, order(n)); /* ApicIdSize */
	assert_int_equal(e->ecx & ~0xf0ffu, 0x00030000);  /* PerfTscSize kept */
	assert_int_equal(e->eax, 0x3030);
	assert_int_equal(ext->eax, cpu); /* extended APIC ID */
	assert_int_equal(ext->ebx & 0xff, cpu);
	assert_int_equal((ext->ebx >> 8) & 0xff, 0); /* one thread per core */
	assert_int_equal(ext->ecx, 0);
}

static void check_kvm_leaves(struct cpuid_table *t)
{
	struct kvm_cpuid_entry2 *sig = must_find(t, 0x40000000, 0);
	struct kvm_cpuid_entry2 *feat = must_find(t, 0x40000001, 0);
	char name[12];

	assert_int_equal(sig->eax, 0x40000001);
	memcpy(name, &sig->ebx, 4);
	memcpy(name + 4, &sig->ecx, 4);
	memcpy(name + 8, &sig->edx, 4);
	assert_memory_equal(name, "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(feat->eax, 0x01007efb);
	assert_int_equal(feat->edx, 0x1);
	for (uint32_t i = 0; i < t->header.nent; i++) {
		uint32_t fn = t->entries[i].function;

		if (fn >= 0x40000000 && fn <= 0x4fffffff)
			assert_true(fn == 0x40000000 || fn == 0x40000001);
	}
	assert_int_equal(count_leaf(t, 0x40000000), 1);
	assert_int_equal(count_leaf(t, 0x40000001), 1);
}

static void check_no_duplicates(const struct cpuid_table *t)
{
	for (uint32_t i = 0; i < t->header.nent; i++)
		for (uint32_t j = i + 1; j < t->header.nent; j++)
			assert_false(t->entries[i].function == t->entries[j].function &&
				     t->entries[i].index == t->entries[j].index);
}

static void check_vcpu(unsigned cpu, unsigned n)
{
	static struct cpuid_table t, again;

	synthetic(&t, 0x1f);
	assert_int_equal(cpuid_setup_vcpu(&t, cpu, n), 0);
	check_leaf1(&t, cpu, n);
	check_cache_leaves(&t, n);
	check_ext_topology(&t, 0xb, cpu, n);
	check_ext_topology(&t, 0x1f, cpu, n);
	check_amd_topology(&t, cpu, n);
	check_kvm_leaves(&t);
	check_no_duplicates(&t);
	assert_int_equal(must_find(&t, 7, 0)->ebx, 0x029c6fbf); /* others untouched */

	/* Applying the policy twice changes nothing. */
	again = t;
	assert_int_equal(cpuid_setup_vcpu(&again, cpu, n), 0);
	assert_int_equal(again.header.nent, t.header.nent);
	assert_memory_equal(again.entries, t.entries, t.header.nent * sizeof(t.entries[0]));
}

static void test_topology(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cpu_counts) / sizeof(cpu_counts[0]); i++) {
		unsigned n = cpu_counts[i];

		check_vcpu(0, n);
		check_vcpu(n / 2, n);
		check_vcpu(n - 1, n);
	}
}

/* A host whose max basic leaf is below 0xB (or 0x1F) gets no such leaf added. */
static void test_old_max_leaf(void **state)
{
	static struct cpuid_table t;

	(void)state;
	synthetic(&t, 0xd);
	assert_int_equal(cpuid_setup_vcpu(&t, 1, 4), 0);
	check_ext_topology(&t, 0xb, 1, 4);
	assert_int_equal(count_leaf(&t, 0x1f), 1); /* KVM's stale entry, invisible */

	synthetic(&t, 0xa);
	assert_int_equal(cpuid_setup_vcpu(&t, 1, 4), 0);
	assert_int_equal(count_leaf(&t, 0xb), 2); /* left as KVM gave them */
}

static void test_kvm_features_created(void **state)
{
	static struct cpuid_table t;

	(void)state;
	memset(&t, 0, sizeof(t));
	add(&t, 0, 0, 0, 1, 0, 0, 0);
	add(&t, 1, 0, 0, 0, 0, 0, 0);
	assert_int_equal(cpuid_setup_vcpu(&t, 0, 1), 0);
	assert_int_equal(must_find(&t, 0x40000000, 0)->eax, 0x40000001);
	assert_int_equal(must_find(&t, 0x40000001, 0)->eax, 0);
	assert_int_equal(t.header.nent, 4);
}

/* TSC-deadline (leaf 1 ECX[24]): only cpuid_set_tsc_deadline() sets it (the
 * VMM calls it when KVM has KVM_CAP_TSC_DEADLINE_TIMER), and nothing else */
static void test_tsc_deadline(void **state)
{
	static struct cpuid_table t, before;

	(void)state;
	synthetic(&t, 0x1f);
	must_find(&t, 1, 0)->ecx &= ~(1u << 24);
	assert_int_equal(cpuid_setup_vcpu(&t, 1, 2), 0);
	assert_int_equal(must_find(&t, 1, 0)->ecx & (1u << 24), 0);
	before = t;
	cpuid_set_tsc_deadline(&t);
	assert_int_equal(must_find(&t, 1, 0)->ecx, must_find(&before, 1, 0)->ecx | (1u << 24));
	must_find(&before, 1, 0)->ecx |= 1u << 24;
	assert_int_equal(t.header.nent, before.header.nent);
	assert_memory_equal(t.entries, before.entries, t.header.nent * sizeof(t.entries[0]));
}

static void test_find(void **state)
{
	static struct cpuid_table t;

	(void)state;
	synthetic(&t, 0x1f);
	/* Leaf 1 ignores the index; leaf 4 does not. */
	assert_ptr_equal(cpuid_find(&t, 1, 7), cpuid_find(&t, 1, 0));
	assert_int_equal(must_find(&t, 4, 3)->index, 3);
	assert_null(cpuid_find(&t, 4, 9));
	assert_null(cpuid_find(&t, 0x12345678, 0));
	t.header.nent = 0;
	assert_null(cpuid_find(&t, 1, 0));
}

static void test_bad_input(void **state)
{
	static struct cpuid_table t;

	(void)state;
	synthetic(&t, 0x1f);
	assert_int_equal(cpuid_setup_vcpu(NULL, 0, 1), -EINVAL);
	assert_int_equal(cpuid_setup_vcpu(&t, 0, 0), -EINVAL);
	assert_int_equal(cpuid_setup_vcpu(&t, 0, 256), -EINVAL);
	assert_int_equal(cpuid_setup_vcpu(&t, 4, 4), -EINVAL);
	assert_int_equal(cpuid_setup_vcpu(&t, 255, 255), -EINVAL);
	t.header.nent = CPUID_MAX_ENTRIES + 1;
	assert_int_equal(cpuid_setup_vcpu(&t, 0, 1), -EINVAL);

	/* A full table has no room for the third 0xB subleaf. */
	synthetic(&t, 0x1f);
	while (t.header.nent < CPUID_MAX_ENTRIES)
		add(&t, 0x20 + t.header.nent, 0, 0, 0, 0, 0, 0);
	assert_int_equal(cpuid_setup_vcpu(&t, 0, 2), -ENOSPC);
	assert_true(t.header.nent <= CPUID_MAX_ENTRIES);

	assert_int_equal(cpuid_get_supported(-1, &t), -EBADF);
}

static void test_real_kvm(void **state)
{
	static struct cpuid_table t;
	struct kvm_cpuid_entry2 *e;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu;

	(void)state;
	if (fd < 0) {
		printf("SKIP: no /dev/kvm (%s)\n", strerror(errno));
		skip();
	}
	assert_int_equal(cpuid_get_supported(fd, &t), 0);
	assert_true(t.header.nent > 0 && t.header.nent <= CPUID_MAX_ENTRIES);
	must_find(&t, 0, 0);
	must_find(&t, 1, 0);

	assert_int_equal(cpuid_setup_vcpu(&t, 2, 4), 0);
	e = must_find(&t, 1, 0);
	assert_true(e->ecx & (1u << 31));
	assert_int_equal(e->ebx >> 24, 2);
	assert_int_equal((e->ebx >> 16) & 0xff, 4);
	if (must_find(&t, 0, 0)->eax >= 0xb)
		check_ext_topology(&t, 0xb, 2, 4);
	e = cpuid_find(&t, 0x8000001e, 0);
	if (e)
		assert_int_equal(e->eax, 2);
	e = must_find(&t, 0x40000000, 0);
	assert_int_equal(e->eax, 0x40000001);
	assert_int_equal(e->ebx, 0x4b4d564b); /* "KVMK" */
	must_find(&t, 0x40000001, 0);
	check_no_duplicates(&t);

	/* KVM takes the result for vCPU 2. */
	vm = ioctl(fd, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 2);
	assert_true(vcpu >= 0);
	assert_int_equal(ioctl(vcpu, KVM_SET_CPUID2, &t.header), 0);
	close(vcpu);
	close(vm);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topology),
	    cmocka_unit_test(test_old_max_leaf),
	    cmocka_unit_test(test_kvm_features_created),
	    cmocka_unit_test(test_tsc_deadline),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_real_kvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
