/* SPDX-License-Identifier: MIT */
/*
 * The VM object: KVM handles, guest memory, vCPUs, the x86 platform devices
 * and the I/O buses.  All mutable state of a VM lives here.
 */
#ifndef ISOLA_CORE_VM_H
#define ISOLA_CORE_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arch/x86/acpi_pm.h"
#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/i8042.h"
#include "arch/x86/ioapic.h"
#include "arch/x86/platform_events.h"
#include "arch/x86/rtc.h"
#include "arch/x86/serial.h"
#include "core/device_set.h"
#include "core/config.h"
#include "devices/pci.h"
#include "isola/abi.h"
#include "lib/bus.h"
#include "lib/gmem.h"

#define VM_MAX_CPUS CONFIG_MAX_CPUS
#define VM_MAX_GSI_ROUTES 1024
/* Kicks a vCPU thread out of KVM_RUN (pthread_kill; api.rst KVM_RUN
 * returns EINTR).  A real-time signal, thread-directed only: SIGUSR1 is
 * the operator's (vcpu_dump.c), as in every device server. */
#define VCPU_KICK_SIGNAL SIGRTMIN
struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	uint64_t exits;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	struct gmem *mem; /* the caller's: guest RAM outlives a reboot */
	struct e820_table e820;
	struct boot_entry entry;
	unsigned nr_cpus;
	bool tsc_deadline; /* KVM emulates the LAPIC's TSC-deadline mode */
	struct vcpu vcpus[VM_MAX_CPUS];

	struct bus pio;
	struct bus mmio;
	struct platform_events events;
	struct serial8250 serial;
	struct ioapic ioapic;
	struct i8042 i8042;
	struct rtc rtc;
	struct acpi_pm pm;
	struct pci_host pci;
	bool devices_ready;

	/* The caller's device set: this VM's front-ends live in it. */
	struct device_set *devices;
	bool devices_attached;

	pthread_mutex_t routes_lock;
	struct kvm_irq_routing *routes;

	/* Pause: vCPUs park between exits; device rings are disabled. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_requested;
	unsigned parked;
	bool paused;
	unsigned device_generation; /* bumped by the event loop after device work */

	/* Stopping: the first reason wins; main waits on stop_fd. */
	atomic_int exit_status; /* -1 while running */
	char exit_message[512];
	int stop_fd; /* eventfd, readable once the VM must stop */
	int console_out_fd;
	int rx_space_fd; /* eventfd: the UART's RX FIFO has room again */

	/* Dirty page tracking for Diff snapshots (core/snapshot_dirty.c):
	 * machine-config track_dirty_pages, or enable_diff_snapshots /
	 * track_dirty_pages on PUT /snapshot/load, makes every memory slot
	 * log the guest's writes (KVM_MEM_LOG_DIRTY_PAGES). */
	bool track_dirty;
	bool dirty_base; /* a snapshot, or the restore, is what a Diff is against */
	uint64_t *dirty_pending[GMEM_MAX_REGIONS]; /* logged, not yet in a snapshot */

	/* The memory slots are made on a thread of their own while the vCPUs
	 * are created and set (vm_create, vm_memory_ready): on a KVM that
	 * shadows the guest's page tables (PVM), KVM_SET_USER_MEMORY_REGION
	 * allocates and zeroes per-page arrays (reverse maps, write tracking:
	 * kvm_alloc_memslot_metadata), ~0.5 ms per GiB here (docs/snapshot.md
	 * "Restore time"). */
	pthread_t memory_thread;
	bool memory_thread_started; /* not yet joined */
	atomic_bool memory_claimed; /* by the thread or by vm_memory_ready */
	bool memory_done;	    /* memory_ret and memory_err are final */
	int memory_ret;
	char memory_err[160];
};

/* Guest RAM for the VMs of one run (--memory, --huge-pages): the caller
 * owns it; a reboot empties it (gmem_reset) and creates the next VM on it,
 * since the device servers map it.  0 or -errno with a sentence in err. */
int vm_ram_create(struct gmem *ram, const struct vm_config *cfg, char *err, size_t errlen);
/* Create the KVM VM on ram (the device set is remembered for pause and
 * the event loop): open /dev/kvm, the split irqchip and its GSI routes, the
 * memory slots (begun on a thread: vm_memory_ready), the e820 map.  The
 * board (core/board.h) builds the rest.  On error returns -errno and writes
 * one sentence into err (then vm_destroy). */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
	      struct device_set *devices, int console_out_fd, char *err, size_t errlen);
/* The memory slots vm_create began, made (by the caller if their thread
 * has not run yet); later calls return the same.  Called before any vCPU
 * ioctl that may read guest memory (KVM_SET_SREGS loads a PAE guest's
 * PDPTEs from it: Linux arch/x86/kvm/x86.c __set_sregs_common; the
 * paravirtual MSRs point into it) and before KVM_RUN (vm_start).  0, or
 * -errno with a sentence in err. */
int vm_memory_ready(struct vm *vm, char *err, size_t errlen);
/* Create the vCPUs and set the boot vCPU's registers (after the loader). */
int vm_create_vcpus(struct vm *vm, char *err, size_t errlen);
/* Keep the vCPUs from their first KVM_RUN once started (they park), until
 * vm_release_vcpus: their threads start and install their filters while the
 * core still negotiates with the device servers. */
void vm_hold_vcpus(struct vm *vm);
void vm_release_vcpus(struct vm *vm);
/* Held vCPUs stay held as a paused VM (a restore without resume_vm):
 * vm_resume releases them. */
void vm_hold_paused(struct vm *vm);
/* Start the vCPU threads. */
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Record why the VM stops (first call wins) and kick every vCPU. */
void vm_request_stop(struct vm *vm, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Wait for the vCPU threads to end (after vm_request_stop). */
void vm_join_vcpus(struct vm *vm);
/* Join vCPU threads and free the KVM VM (safe on a partly created VM); the
 * RAM stays with the caller. */
void vm_destroy(struct vm *vm);
/* Inject one MSI now; 0 or -errno. */
int vm_signal_msi(struct vm *vm, uint64_t address, uint32_t data);
/* Point GSI gsi (>= the IOAPIC's pins) at an MSI; 0 or -errno. */
int vm_set_msi_route(struct vm *vm, unsigned gsi, uint64_t address, uint32_t data);
/* device_host.c: the narrow view of this VM its devices are given. */
struct device_host vm_device_host(struct vm *vm);
/* Stop every vCPU at a safe point (between exits) and disable the device
 * rings; resume undoes it.  Called from a thread other than the event loop
 * and the vCPUs (the API thread).  0, or -EBUSY/-ETIMEDOUT with a sentence. */
int vm_pause(struct vm *vm, char *err, size_t errlen);
int vm_resume(struct vm *vm, char *err, size_t errlen);
bool vm_is_paused(struct vm *vm);
/* Every vCPU parked out of KVM_RUN, the device servers left running (a
 * look at the vCPUs' state, vcpu_dump.c); vm_unpark_vcpus lets them go
 * (unless a pause came meanwhile).
 * -EBUSY if the VM is paused (its vCPUs are parked already), -ETIMEDOUT
 * if one did not leave KVM_RUN in time (then none is held). */
int vm_park_vcpus(struct vm *vm);
void vm_unpark_vcpus(struct vm *vm);
/* vcpu_dump.c: each vCPU's registers, pending events and the page walk
 * of its RIP, logged (SIGUSR1: a guest that stopped making progress). */
void vm_log_vcpus(struct vm *vm);
/* Ctrl-Alt-Del on the i8042 (the guest decides what to do with it). */
void vm_send_ctrl_alt_del(struct vm *vm);
/* vcpu.c: park here while a pause is requested. */
void vcpu_park_if_paused(struct vcpu *vcpu);
/* Event loop: carry out queued device work (and let vm_pause know). */
void vm_serve_devices(struct vm *vm);
/* Drive an ISA interrupt line through the IOAPIC. */
void vm_set_isa_irq(struct vm *vm, unsigned irq, bool level);

/* KVM's routes for the IOAPIC's pins from its whole redirection table, in
 * one KVM_SET_GSI_ROUTING (each costs an SRCU grace period: a restore
 * sets 24 pins at once).  0 or -errno. */
int vm_sync_ioapic_routes(struct vm *vm);
/* vm.c: the IOAPIC's way into KVM's GSI routes. */
extern const struct ioapic_ops vm_ioapic_ops;

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned index);
int vcpu_setup_boot(struct vcpu *vcpu);
void *vcpu_thread(void *arg);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

#endif
