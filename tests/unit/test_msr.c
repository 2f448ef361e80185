// SPDX-License-Identifier: MIT
/* Boot MSR list: indices and values (SDM Vol. 4 Table 2-2), and KVM takes it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/msr.h"

static const struct {
	uint32_t index;
	uint64_t value;
} expected[] = {
    {0x174, 0},	     /* IA32_SYSENTER_CS */
    {0x175, 0},	     /* IA32_SYSENTER_ESP */
    {0x176, 0},	     /* IA32_SYSENTER_EIP */
    {0xc0000081, 0}, /* STAR */
    {0xc0000082, 0}, /* LSTAR */
    {0xc0000083, 0}, /* CSTAR */
    {0xc0000084, 0}, /* SYSCALL_MASK (FMASK) */
    {0xc0000102, 0}, /* KERNEL_GS_BASE */
    {0x10, 0},	     /* IA32_TSC */
    {0x1a0, 1},	     /* IA32_MISC_ENABLE: fast strings */
    {0x2ff, 0x806},  /* IA32_MTRR_DEF_TYPE: E, default WB */
};
#define NR_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static void test_list(void **state)
{
	struct msr_boot_list list;

	(void)state;
	memset(&list, 0xa5, sizeof(list));
	msr_boot_list(&list);
	assert_int_equal(list.header.nmsrs, NR_EXPECTED);
	assert_int_equal(list.header.pad, 0);
	assert_true(list.header.nmsrs <= MSR_BOOT_MAX);
	for (size_t i = 0; i < NR_EXPECTED; i++) {
		bool found = false;

		for (uint32_t j = 0; j < list.header.nmsrs; j++) {
			if (list.entries[j].index != expected[i].index)
				continue;
			assert_false(found); /* no duplicates */
			found = true;
			assert_int_equal(list.entries[j].data, expected[i].value);
			assert_int_equal(list.entries[j].reserved, 0);
		}
		if (!found)
			fail_msg("MSR %#x missing", expected[i].index);
	}
	for (uint32_t j = list.header.nmsrs; j < MSR_BOOT_MAX; j++)
		assert_int_equal(list.entries[j].index, 0);
}

/* KVM_SET_MSRS returns how many entries it set: all of them. */
static void test_real_kvm(void **state)
{
	struct msr_boot_list list;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu;

	(void)state;
	if (kvm < 0) {
		printf("SKIP: no /dev/kvm (%s)\n", strerror(errno));
		skip();
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(vcpu >= 0);
	msr_boot_list(&list);
	assert_int_equal(ioctl(vcpu, KVM_SET_MSRS, &list.header), (int)list.header.nmsrs);
	close(vcpu);
	close(vm);
	close(kvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_real_kvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
