/* SPDX-License-Identifier: MIT */
/*
 * kvm-keeper: holds L1's kernel text still while the nested cases run.
 *
 * L1 (an emulated CPU: QEMU TCG with two threads) was seen stopped for good
 * with one CPU inside KVM's __apic_accept_irq (IF set, its timer interrupt
 * pending and never taken) and the other at asm_exc_int3, soft lockups on
 * both: a text patch in progress (jump labels are patched through int3 and
 * IPIs, arch/x86/kernel/alternative.c text_poke_bp) under code another
 * emulated CPU runs.  KVM patches its own text whenever the count of
 * software- or hardware-disabled local APICs goes from 0 to 1 or back
 * (arch/x86/kvm/lapic.c, the static keys apic_sw_disabled and
 * apic_hw_disabled): every vCPU is created with its APIC software-disabled
 * and enables it as it boots, so every L2 boot patched L1's KVM while L2
 * ran.  This process creates one VM with one vCPU whose APIC stays
 * software-disabled and is made hardware-disabled, and never runs it, so
 * both counts stay at 1 or more and no L2 boot flips either key.  It also
 * holds a socket with SO_TIMESTAMP, which pins net_enable_timestamp()'s key
 * (ping asks for timestamps) for the network cases.  Static, no libc
 * beyond what it links: it runs in L1's initramfs.
 *
 *   kvm-keeper        prints one line and sleeps until killed
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSR_IA32_APICBASE 0x1b
#define APIC_DEFAULT_BASE 0xfee00000ull
#define APICBASE_BSP (1ull << 8)

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("kvm-keeper: /dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		printf("kvm-keeper: KVM_CREATE_VM: %s\n", strerror(errno));
		return 1;
	}
	/* the in-kernel local APIC comes with the in-kernel irqchip (api.rst
	 * KVM_CREATE_IRQCHIP); the vCPU is created with it software-disabled */
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		printf("kvm-keeper: KVM_CREATE_IRQCHIP: %s\n", strerror(errno));
		return 1;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		printf("kvm-keeper: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 1;
	}
	/* and hardware-disabled: IA32_APIC_BASE without its enable bit */
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = {.hdr = {.nmsrs = 1},
		  .entry = {.index = MSR_IA32_APICBASE, .data = APIC_DEFAULT_BASE | APICBASE_BSP}};
	if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1) {
		printf("kvm-keeper: KVM_SET_MSRS IA32_APIC_BASE: %s\n", strerror(errno));
		return 1;
	}
	int one = 1;
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0)
		printf("kvm-keeper: SO_TIMESTAMP socket: %s (the network cases may patch text)\n",
		       strerror(errno));
	printf("kvm-keeper: holding one VM with a disabled local APIC (KVM's APIC static keys stay "
	       "on)\n");
	fflush(stdout);
	for (;;)
		pause();
}
