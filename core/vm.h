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
#include "core/bus.h"
#include "isola/abi.h"
#include "core/config.h"
#include "devices/pci.h"
#include "devices/vhost_user_device.h"
#include "lib/gmem.h"

#define VM_MAX_CPUS CONFIG_MAX_CPUS
#define VM_MAX_GSI_ROUTES 1024
#define VCPU_KICK_SIGNAL SIGUSR1
#define VM_MAX_DEVICES (CONFIG_MAX_DISKS + 1)
#define VM_SERVER_MAX_ARGS 8
/* Restart budget: a device is given up (NEEDS_RESET) after more than
 * VM_RESTART_BURST server deaths within VM_RESTART_WINDOW_NS, or after
 * VM_RESTART_FAILED_STARTS restarts in a row that did not come up. */
#define VM_RESTART_BURST 100
#define VM_RESTART_WINDOW_NS (10ull * 1000000000ull)
#define VM_RESTART_FAILED_STARTS 5

/* How the core reaches one device's back-end, and its restart book-keeping. */
struct vm_device_server {
	const char *server;	 /* "blk", "rng"; NULL: external back-end */
	const char *socket_path; /* external back-end */
	const char *args[VM_SERVER_MAX_ARGS + 1];
	char default_id[16]; /* GET_ID when the disk has no id= */
	bool restart;	     /* restart=always */
	bool pending;	     /* lost; restart or reconnection due */
	bool given_up;
	uint64_t lost_ns; /* when the loss was noticed */
	uint64_t window_start_ns;
	unsigned deaths_in_window;
	unsigned failed_starts;
	char last_failure[384]; /* logged once until it changes */
	uint64_t restarts, recovery_ns_total, recovery_ns_max;
};

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

/*
 * What a VM leaves to the next one when the guest reboots (isola run
 * --on-reset reboot): each device's connected vhost-user socket, its rings
 * stopped, and its server's pid (sock -1 for a device that was not
 * connected: it gets a new server); and the guest RAM, which the next VM
 * empties (gmem_reset) rather than making anew: the kept servers map it
 * until they are given the next memory table, so new RAM would be a second
 * copy, and a hugetlb pool sized for one (--huge-pages 2M) cannot hold two.
 */
struct vm_kept {
	unsigned nr;
	int sock[VM_MAX_DEVICES];
	pid_t pid[VM_MAX_DEVICES];
	struct gmem mem;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	struct gmem mem;
	struct e820_table e820;
	struct boot_entry entry;
	unsigned nr_cpus;
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

	/* vhost-user devices; the event loop serves them (vm_serve_devices). */
	struct vhost_device devices[VM_MAX_DEVICES];
	struct vm_device_server servers[VM_MAX_DEVICES];
	unsigned nr_devices;
	int device_work_fd; /* eventfd: a device has work for the event loop */

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
	int rx_space_fd;      /* eventfd: the UART's RX FIFO has room again */
	struct vm_kept *kept; /* during vm_create only */
};

/*
 * Start the device servers cfg asks for now (through the spawner, if there
 * is one), for vm_create() to take: they start and sandbox themselves (a
 * few ms each) while the core compiles its filters and builds the VM, all
 * at once rather than each after the previous one's negotiation.  A
 * failure here is found again, and said, by vm_create(), which stops what
 * it did not take.  vm_create() calls it when nothing was started ahead.
 */
void vm_prespawn_servers(const struct vm_config *cfg);
/* Create the VM: open /dev/kvm, memory, irqchip, devices, load the kernel.
 * kept (may be NULL): adopt these back-ends instead of starting new ones;
 * the VM owns them from then on, even on error.
 * On error returns -errno and writes one sentence into err. */
int vm_create(struct vm *vm, const struct vm_config *cfg, int console_out_fd, struct vm_kept *kept,
	      char *err, size_t errlen);
/* Start the vCPU threads. */
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Record why the VM stops (first call wins) and kick every vCPU. */
void vm_request_stop(struct vm *vm, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Join vCPU threads and free everything (safe on a partly created VM).
 * kept (may be NULL): stop each device but keep its back-end connected and
 * running, for the next vm_create(); otherwise servers are stopped. */
void vm_destroy(struct vm *vm, struct vm_kept *kept);
/* Point GSI gsi (>= the IOAPIC's pins) at an MSI; 0 or -errno. */
int vm_set_msi_route(struct vm *vm, unsigned gsi, uint64_t address, uint32_t data);
/* Stop every vCPU at a safe point (between exits) and disable the device
 * rings; resume undoes it.  Called from a thread other than the event loop
 * and the vCPUs (the API thread).  0, or -EBUSY/-ETIMEDOUT with a sentence. */
int vm_pause(struct vm *vm, char *err, size_t errlen);
int vm_resume(struct vm *vm, char *err, size_t errlen);
bool vm_is_paused(struct vm *vm);
/* Ctrl-Alt-Del on the i8042 (the guest decides what to do with it). */
void vm_send_ctrl_alt_del(struct vm *vm);
/* vcpu.c: park here while a pause is requested. */
void vcpu_park_if_paused(struct vcpu *vcpu);
/* Event loop: carry out queued device work; 0 or -errno. */
void vm_serve_devices(struct vm *vm);
/* Event loop: a device's back-end hung up or its server exited. */
void vm_device_lost(struct vm *vm, unsigned index, const char *why);
/* Event loop: reap exited device servers and report how each ended. */
void vm_reap_servers(struct vm *vm);
/* Event loop: retry restarts/reconnections that are due; returns true while
 * some device still waits (the loop should call again in ~100 ms). */
bool vm_retry_devices(struct vm *vm);
/* Drive an ISA interrupt line through the IOAPIC. */
void vm_set_isa_irq(struct vm *vm, unsigned irq, bool level);

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned index);
int vcpu_setup_boot(struct vcpu *vcpu);
void *vcpu_thread(void *arg);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

#endif
