/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of the control API: the API thread's requests (start, pause,
 * resume, Ctrl-Alt-Del, state) handed to the main thread and the VM, and
 * the VM's state as the API reports it.  InstanceStart is carried out by
 * the main thread (it owns the VM's life); the API thread waits for the
 * result so a failed start is answered with its reason.
 */
#ifndef ISOLA_CORE_CONTROL_H
#define ISOLA_CORE_CONTROL_H

#include <pthread.h>
#include <stdbool.h>

#include "core/api/api.h"
#include "core/config.h"
#include "core/vm.h"
#include "lib/evloop.h"

struct vmm_control {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum api_vm_state state;
	struct vm *vm;
	int start_fd; /* eventfd: InstanceStart is waiting */
	bool start_requested, start_done;
	struct vm_config start_cfg;
	/* vmm_control_watch_start's */
	struct vm_config *watch_cfg;
	void (*watch_started)(void *opaque);
	void *watch_opaque;
	struct device_set *request_devices; /* vmm_control_watch_requests' */
	int start_result;
	/* a restore's shape, from its state file (0: not a restore) */
	unsigned started_cpus;
	uint64_t started_memory;
	char start_err[512];
	/* A device change for the event loop (PATCH /network-interfaces):
	 * the API thread asks and waits; the event loop answers.  An ask
	 * that finds no loop waits for the next (a reboot), or is answered
	 * when the VM stops. */
	int request_fd; /* eventfd: a request waits */
	bool request_pending, request_done;
	unsigned request_index;
	enum vmm_request_kind {
		VMM_REQUEST_NET,      /* PATCH /network-interfaces: request_net */
		VMM_REQUEST_DISK,     /* PATCH /drives: request_disk, request_reopen */
		VMM_REQUEST_RNG,      /* PATCH /entropy: request_rate for isola-rng */
		VMM_REQUEST_UPGRADE,  /* live upgrade: request_upgrade_kind, request_index */
		VMM_REQUEST_SNAPSHOT, /* PUT /snapshot/create: into request_*_fd */
	} request_kind;
	int request_state_fd, request_mem_fd; /* the API thread's, opened for writing */
	bool request_diff;		      /* snapshot_type Diff */
	/* their temporary names and the final ones (the API thread's, alive
	 * while it waits for the request) */
	const char *request_state_tmp, *request_state_path, *request_mem_tmp, *request_mem_path;
	struct net_config request_net;
	struct disk_config request_disk;
	bool request_reopen; /* PATCH /drives named path_on_host */
	char request_rate[CONFIG_RATE_SPEC_SIZE];
	const char *request_upgrade_kind; /* a static string, or NULL: every server */
	int request_result;
	char request_err[512];
	/* Metrics are per interval, like the API's (Firecracker resets its
	 * counters at every flush): what the last line reported. */
	uint64_t reported_exits[VM_MAX_CPUS];
	uint64_t reported_uart_bytes, reported_uart_dropped;
	uint64_t reported_restarts[DEVICE_SET_MAX];
};

extern const struct api_vmm_ops vmm_control_ops;

int vmm_control_init(struct vmm_control *ctl, struct vm *vm);
void vmm_control_destroy(struct vmm_control *ctl);
/* Main thread: take a pending start request (true) into *cfg. */
bool vmm_control_take_start(struct vmm_control *ctl, struct vm_config *cfg);
/* Main thread, before the VM: watch for InstanceStart in loop (at order);
 * when one is taken into *cfg, started(opaque) runs.  Returns the
 * registration's id or -errno. */
int vmm_control_watch_start(struct vmm_control *ctl, struct evloop *loop, int order,
			    struct vm_config *cfg, void (*started)(void *opaque), void *opaque);
/* Main thread, while a VM is served: carry out device requests
 * (vmm_control_ops.update_net) in loop, at order, on devices.  Returns the
 * registration's id or -errno. */
int vmm_control_watch_requests(struct vmm_control *ctl, struct evloop *loop, int order,
			       struct device_set *devices);
/* Main thread, before start_done: a restore's vCPU count and memory size
 * (the API's machine-config shows them). */
void vmm_control_set_shape(struct vmm_control *ctl, unsigned cpus, uint64_t memory);
/* Main thread: answer the start request. */
void vmm_control_start_done(struct vmm_control *ctl, int result, const char *err);
void vmm_control_set_state(struct vmm_control *ctl, enum api_vm_state state);

#endif
