// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/msr.h"
#include "core/seccomp.h"
#include "core/vm.h"
#include "lib/log.h"

/* LAPIC register offsets (SDM Vol. 3 Table 11-1) and LVT delivery modes. */
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

static void apic_set_lvt_mode(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
	uint32_t val;

	memcpy(&val, lapic->regs + reg, 4);
	val = (val & ~0x700u) | (mode << 8);
	memcpy(lapic->regs + reg, &val, 4);
}

static int vcpu_setup_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	/* As a PC firmware leaves it: LINT0 ExtINT, LINT1 NMI. */
	apic_set_lvt_mode(&lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	apic_set_lvt_mode(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vm *vm, unsigned index)
{
	struct vcpu *vcpu = &vm->vcpus[index];
	struct cpuid_table cpuid;
	struct msr_boot_list msrs;
	int mmap_size, ret;

	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0)
		return -errno;
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0)
		return -errno;
	vcpu->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return -errno;
	}
	vcpu->run_size = (size_t)mmap_size;

	ret = cpuid_get_supported(vm->kvm_fd, &cpuid);
	if (ret)
		return ret;
	ret = cpuid_setup_vcpu(&cpuid, index, vm->nr_cpus);
	if (ret)
		return ret;
	if (vm->tsc_deadline)
		cpuid_set_tsc_deadline(&cpuid);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, &cpuid.header) < 0)
		return -errno;
	msr_boot_list(&msrs);
	ret = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs.header);
	if (ret < 0)
		return -errno;
	if ((unsigned)ret != msrs.header.nmsrs)
		log_debug("vCPU %u: KVM took %d of %u boot MSRs", index, ret, msrs.header.nmsrs);
	return vcpu_setup_lapic(vcpu);
}

int vcpu_setup_boot(struct vcpu *vcpu)
{
	return boot_cpu_set_state(vcpu->fd, &vcpu->vm->entry);
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* A vCPU ioctl from another thread would block while the vCPU runs:
	 * immediate_exit makes the next KVM_RUN return at once, and the signal
	 * interrupts the one in progress (api.rst "immediate_exit"). */
	if (vcpu->run)
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* data_offset/size/count come from KVM, not the guest; string I/O
	 * ("rep outsb") arrives as count > 1 packed back to back. */
	if (run->io.data_offset + (uint64_t)run->io.size * run->io.count > vcpu->run_size) {
		vm_request_stop(vcpu->vm, ISOLA_EXIT_VMM_ERROR, "KVM reported bad port I/O data");
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_dispatch(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write);
	/* once per exit, not per access: the UART writes a `rep outsb` out here
	 * (reads leave nothing to finish) */
	if (is_write)
		bus_after_exit(&vcpu->vm->pio, run->io.port);
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	bus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
	if (run->mmio.is_write)
		bus_after_exit(&vcpu->vm->mmio, run->mmio.phys_addr);
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

static void vcpu_report_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char detail[160] = "";
	size_t used = 0;

	for (uint32_t i = 0; i < run->internal.ndata && i < 4; i++)
		used += (size_t)snprintf(detail + used, sizeof(detail) - used, " 0x%llx",
					 (unsigned long long)run->internal.data[i]);
	vm_request_stop(vcpu->vm, ISOLA_EXIT_GUEST_CRASH,
			"KVM internal error on vCPU %u at RIP 0x%llx (suberror %u%s%s): "
			"the guest ran an instruction this KVM cannot emulate",
			vcpu->index, (unsigned long long)vcpu_rip(vcpu), run->internal.suberror,
			used ? ", data" : "", detail);
}

/* Returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_IOAPIC_EOI:
		ioapic_eoi(&vm->ioapic, run->eoi.vector);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; treat as power-off of a CPU
		 * that can never wake up. */
		vm_request_stop(vm, ISOLA_EXIT_GUEST_CRASH,
				"vCPU %u halted with no way to wake (RIP 0x%llx)", vcpu->index,
				(unsigned long long)vcpu_rip(vcpu));
		return false;
	case KVM_EXIT_SHUTDOWN:
		vm_request_stop(vm, ISOLA_EXIT_GUEST_CRASH,
				"guest triple fault on vCPU %u (RIP 0x%llx): the CPU shut down",
				vcpu->index, (unsigned long long)vcpu_rip(vcpu));
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_request_stop(vm, ISOLA_EXIT_RESET, "guest requested a reset (vCPU %u)",
					vcpu->index);
		else
			vm_request_stop(vm, ISOLA_EXIT_POWEROFF, "guest powered off (vCPU %u)",
					vcpu->index);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_report_internal_error(vcpu);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_request_stop(
		    vm, ISOLA_EXIT_GUEST_CRASH,
		    "KVM could not enter vCPU %u (hardware reason 0x%llx): invalid guest state",
		    vcpu->index, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	default:
		vm_request_stop(vm, ISOLA_EXIT_GUEST_CRASH,
				"vCPU %u: unexpected KVM exit reason %u", vcpu->index,
				run->exit_reason);
		return false;
	}
}

/*
 * api.rst (KVM_EXIT_IO, KVM_EXIT_MMIO; KVM_CAP_NEEDS_COMPLETION): an exit's
 * I/O or MMIO is complete in the vCPU's state only after the next KVM_RUN,
 * and a KVM_RUN with immediate_exit set completes it without running
 * further guest instructions (it returns EINTR), so a parked vCPU's state
 * is whole for a snapshot.  Completing a string I/O may end in the next
 * exit of the same instruction instead: that one is handled and completed
 * in turn.
 */
static void vcpu_complete_exit(struct vcpu *vcpu)
{
	if (!vcpu->exits)
		return; /* never ran: nothing to complete */
	for (unsigned i = 0; i < 64; i++) {
		int ret;

		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		ret = ioctl(vcpu->fd, KVM_RUN, 0);
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (ret < 0)
			return; /* EINTR: completed (or EAGAIN: nothing pending) */
		vcpu->exits++;
		if (!vcpu_handle_exit(vcpu))
			return; /* the VM stops */
	}
}

void vcpu_park_if_paused(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	if (!atomic_load(&vm->pause_requested))
		return;
	vcpu_complete_exit(vcpu);
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_requested) && atomic_load(&vm->exit_status) < 0)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};
	sigset_t set;
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* Before the guest runs: from here on only what KVM_RUN's exits need. */
	ret = core_seccomp_enter(CORE_THREAD_VCPU, vcpu->index);
	if (ret) {
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR,
				"vCPU %u: cannot install its seccomp filter: %s", vcpu->index,
				strerror(-ret));
		return NULL;
	}

	while (atomic_load(&vm->exit_status) < 0) {
		vcpu_park_if_paused(vcpu);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			/* EINTR: kicked. EAGAIN: an AP just left wait-for-SIPI. */
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "KVM_RUN on vCPU %u: %s",
					vcpu->index, strerror(errno));
			break;
		}
		vcpu->exits++;
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	return NULL;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}
