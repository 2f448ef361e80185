// SPDX-License-Identifier: MIT
/*
 * SIGUSR1 to isola: each vCPU's state in the log, for a guest that stopped
 * making progress (no console output, no device work) while isola runs.
 * The vCPUs are parked out of KVM_RUN for the look and let go after it;
 * the device servers are not touched (they log their rings on their own
 * SIGUSR1, servers/README.md "Operations").
 *
 * Per vCPU: the registers KVM holds (api.rst KVM_GET_REGS, KVM_GET_SREGS),
 * the pending and injected events (KVM_GET_VCPU_EVENTS), the local APIC's
 * TPR and its in-service and requested vectors (KVM_GET_LAPIC: the
 * register page, Intel SDM vol. 3 10.8.4: ISR at 0x100, IRR at 0x200, one
 * 32-bit word every 16 bytes), and the guest's page walk of its RIP, each
 * entry read from guest RAM: a guest whose page tables or CR3 went bad
 * shows it there (a livelock of nested page faults, say, or the triple
 * fault that would follow).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/gmem.h"
#include "lib/log.h"
#include "vm.h"

#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)
#define PTE_PRESENT 1ULL
#define PTE_LARGE (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL /* bits 51:12 (SDM vol. 3 4.5) */
#define APIC_TPR 0x80
#define APIC_ISR 0x100
#define APIC_IRR 0x200

/* "v1,v2,..." of the vectors set in the 256-bit APIC register at OFF */
static void apic_vectors(const struct kvm_lapic_state *lapic, unsigned off, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned word = 0; word < 8; word++) {
		uint32_t bits;

		memcpy(&bits, lapic->regs + off + word * 16, sizeof(bits));
		for (unsigned bit = 0; bit < 32 && bits; bit++) {
			if (!(bits & (1U << bit)))
				continue;
			used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%s%#x",
						 used ? "," : "", word * 32 + bit);
		}
	}
	if (!out[0])
		snprintf(out, len, "-");
}

/* The 4- or 5-level walk of VA from CR3, each entry's GPA and value, until
 * a leaf, a non-present entry or an address that is not RAM. */
static void page_walk(const struct vm *vm, const struct kvm_sregs *sregs, uint64_t va, char *out,
		      size_t len)
{
	unsigned levels = sregs->cr4 & CR4_LA57 ? 5 : 4;
	uint64_t table = sregs->cr3 & PTE_ADDR;
	size_t used = 0;

	out[0] = '\0';
	for (unsigned level = levels; level >= 1; level--) {
		unsigned index = (unsigned)(va >> (12 + 9 * (level - 1))) & 511;
		uint64_t gpa = table + index * 8ULL, entry;

		if (gmem_read(vm->mem, gpa, &entry, sizeof(entry))) {
			used +=
			    (size_t)snprintf(out + used, used < len ? len - used : 0,
					     " L%u[%u]@%#" PRIx64 " is not RAM", level, index, gpa);
			return;
		}
		used +=
		    (size_t)snprintf(out + used, used < len ? len - used : 0,
				     " L%u[%u]@%#" PRIx64 "=%#" PRIx64, level, index, gpa, entry);
		if (!(entry & PTE_PRESENT) || level == 1 ||
		    ((level == 2 || level == 3) && (entry & PTE_LARGE)))
			return;
		table = entry & PTE_ADDR;
	}
}

static void log_vcpu(const struct vm *vm, const struct vcpu *vcpu, unsigned index)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
	struct kvm_lapic_state lapic;
	char isr[128], irr[128], walk[512];

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0) {
		log_warn("SIGUSR1: vCPU %u: cannot read its registers: %s", index, strerror(errno));
		return;
	}
	log_info("SIGUSR1: vCPU %u: rip=%#llx rsp=%#llx rflags=%#llx cs=%#x cpl=%u cr0=%#llx "
		 "cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx exits=%" PRIu64,
		 index, regs.rip, regs.rsp, regs.rflags, sregs.cs.selector, sregs.cs.dpl, sregs.cr0,
		 sregs.cr2, sregs.cr3, sregs.cr4, sregs.efer, vcpu->exits);
	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &events) == 0)
		log_info("SIGUSR1: vCPU %u: exception injected=%u pending=%u nr=%u error=%#x; "
			 "interrupt injected=%u nr=%u; nmi injected=%u pending=%u masked=%u; "
			 "interrupt shadow=%#x",
			 index, events.exception.injected, events.exception.pending,
			 events.exception.nr,
			 events.exception.has_error_code ? events.exception.error_code : 0,
			 events.interrupt.injected, events.interrupt.nr, events.nmi.injected,
			 events.nmi.pending, events.nmi.masked, events.interrupt.shadow);
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) == 0) {
		uint32_t tpr;

		memcpy(&tpr, lapic.regs + APIC_TPR, sizeof(tpr));
		apic_vectors(&lapic, APIC_ISR, isr, sizeof(isr));
		apic_vectors(&lapic, APIC_IRR, irr, sizeof(irr));
		log_info("SIGUSR1: vCPU %u: local APIC tpr=%#x isr=%s irr=%s", index, tpr, isr,
			 irr);
	}
	if ((sregs.cr0 & CR0_PG) && (sregs.efer & EFER_LMA) && (sregs.cr4 & CR4_PAE)) {
		page_walk(vm, &sregs, regs.rip, walk, sizeof(walk));
		log_info("SIGUSR1: vCPU %u: page walk of rip:%s", index, walk);
	}
}

void vm_log_vcpus(struct vm *vm)
{
	bool parked_here;
	int ret;

	ret = vm_park_vcpus(vm);
	if (ret && ret != -EBUSY) {
		log_warn("SIGUSR1: the vCPUs did not leave KVM_RUN: %s; no vCPU state",
			 strerror(-ret));
		return;
	}
	parked_here = ret == 0; /* -EBUSY: paused, parked already */
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		log_vcpu(vm, &vm->vcpus[i], i);
	if (parked_here)
		vm_unpark_vcpus(vm);
}
