// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/control.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/snapshot.h"
#include "core/snapshot_dirty.h"
#include "lib/log.h"

static const char *const state_names[] = {"Not started", "Running", "Paused", "Stopped"};

int vmm_control_init(struct vmm_control *ctl, struct vm *vm)
{
	memset(ctl, 0, sizeof(*ctl));
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->cond, NULL);
	ctl->vm = vm;
	ctl->state = API_STATE_NOT_STARTED;
	ctl->start_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ctl->request_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return ctl->start_fd < 0 || ctl->request_fd < 0 ? -errno : 0;
}

void vmm_control_destroy(struct vmm_control *ctl)
{
	api_config_release(&ctl->start_cfg);
	if (ctl->start_fd >= 0)
		close(ctl->start_fd);
	if (ctl->request_fd >= 0)
		close(ctl->request_fd);
	ctl->start_fd = ctl->request_fd = -1;
	pthread_mutex_destroy(&ctl->lock);
	pthread_cond_destroy(&ctl->cond);
}

void vmm_control_set_state(struct vmm_control *ctl, enum api_vm_state state)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->state = state;
	if (state == API_STATE_STOPPED && ctl->request_pending) {
		/* no event loop will take it any more */
		ctl->request_pending = false;
		ctl->request_result = -ESRCH;
		snprintf(ctl->request_err, sizeof(ctl->request_err), "the VM stopped meanwhile");
		ctl->request_done = true;
	}
	pthread_cond_broadcast(&ctl->cond);
	pthread_mutex_unlock(&ctl->lock);
}

bool vmm_control_take_start(struct vmm_control *ctl, struct vm_config *cfg)
{
	uint64_t count;
	bool take;

	if (read(ctl->start_fd, &count, sizeof(count)) < 0) {
		/* nonblocking: may be empty */
	}
	pthread_mutex_lock(&ctl->lock);
	take = ctl->start_requested;
	if (take) {
		/* The configuration (and its strings) moves to the caller. */
		api_config_release(cfg);
		*cfg = ctl->start_cfg;
		config_defaults(&ctl->start_cfg);
		ctl->start_requested = false;
	}
	pthread_mutex_unlock(&ctl->lock);
	return take;
}

void vmm_control_set_shape(struct vmm_control *ctl, unsigned cpus, uint64_t memory)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->started_cpus = cpus;
	ctl->started_memory = memory;
	pthread_mutex_unlock(&ctl->lock);
}

void vmm_control_start_done(struct vmm_control *ctl, int result, const char *err)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->start_result = result;
	snprintf(ctl->start_err, sizeof(ctl->start_err), "%s", err ? err : "");
	ctl->start_done = true;
	if (!result && ctl->state != API_STATE_PAUSED) /* a restore without resume_vm */
		ctl->state = API_STATE_RUNNING;
	pthread_cond_broadcast(&ctl->cond);
	pthread_mutex_unlock(&ctl->lock);
}

static void control_on_start_fd(void *opaque, int fd, short revents)
{
	struct vmm_control *ctl = opaque;

	(void)fd;
	if ((revents & POLLIN) && vmm_control_take_start(ctl, ctl->watch_cfg))
		ctl->watch_started(ctl->watch_opaque);
}

int vmm_control_watch_start(struct vmm_control *ctl, struct evloop *loop, int order,
			    struct vm_config *cfg, void (*started)(void *opaque), void *opaque)
{
	ctl->watch_cfg = cfg;
	ctl->watch_started = started;
	ctl->watch_opaque = opaque;
	return evloop_add_fd(loop, ctl->start_fd, POLLIN, order, control_on_start_fd, ctl);
}

/* On the event loop, once a snapshot's files are whole (the API thread
 * waits in control_snapshot_create, so the names are still there): the
 * temporary files renamed over the final names, the memory file first, so
 * that a state file under its final name always has its memory file; on
 * any failure both temporary files go. */
static int control_snapshot_rename(struct vmm_control *ctl, char *err, size_t errlen)
{
	int ret = 0;

	if (rename(ctl->request_mem_tmp, ctl->request_mem_path) < 0)
		ret = error_text(err, errlen, -errno, "mem_file_path %s: renaming %s over it: %s",
				 ctl->request_mem_path, ctl->request_mem_tmp, strerror(errno));
	else if (rename(ctl->request_state_tmp, ctl->request_state_path) < 0)
		ret = error_text(err, errlen, -errno, "snapshot_path %s: renaming %s over it: %s",
				 ctl->request_state_path, ctl->request_state_tmp, strerror(errno));
	return ret;
}

static void control_on_request_fd(void *opaque, int fd, short revents)
{
	struct vmm_control *ctl = opaque;
	uint64_t count;

	if (!(revents & POLLIN))
		return;
	if (read(fd, &count, sizeof(count)) < 0) {
		/* nonblocking: may be empty */
	}
	char err[sizeof(ctl->request_err)];
	struct disk_config disk;
	struct net_config net;
	char rate[CONFIG_RATE_SPEC_SIZE];
	unsigned index;
	enum vmm_request_kind kind;
	bool reopen;
	const char *upgrade_kind;
	int ret;

	pthread_mutex_lock(&ctl->lock);
	if (!ctl->request_pending) {
		pthread_mutex_unlock(&ctl->lock);
		return;
	}
	index = ctl->request_index;
	kind = ctl->request_kind;
	reopen = ctl->request_reopen;
	if (kind == VMM_REQUEST_DISK)
		disk = ctl->request_disk;
	else if (kind == VMM_REQUEST_NET)
		net = ctl->request_net;
	memcpy(rate, ctl->request_rate, sizeof(rate));
	upgrade_kind = ctl->request_upgrade_kind;
	pthread_mutex_unlock(&ctl->lock);
	/* The device set is the event loop's: the change runs here (the
	 * asking API thread waits; it asks one thing at a time). */
	if (kind == VMM_REQUEST_SNAPSHOT) {
		/* the event loop's: its filter has the KVM_GET_* this needs,
		 * and the device servers' state will be fetched here too */
		ret = snapshot_create(ctl->vm, ctl->request_state_fd, ctl->request_mem_fd,
				      ctl->request_diff, err, sizeof(err));
		if (!ret)
			ret = control_snapshot_rename(ctl, err, sizeof(err));
		if (!ret) /* the pages logged so far are in these files now */
			snapshot_dirty_commit(ctl->vm);
		if (ret) { /* no half-written file is left (renamed ones are gone already) */
			unlink(ctl->request_state_tmp);
			unlink(ctl->request_mem_tmp);
		}
	} else if (kind == VMM_REQUEST_DISK) {
		ret = device_set_update_disk(ctl->request_devices, index, reopen, &disk, err,
					     sizeof(err));
	} else if (kind == VMM_REQUEST_RNG) {
		static const char *const drop[] = {"--rate", NULL};
		const char *add[] = {rate[0] ? "--rate" : NULL, rate, NULL};

		ret = device_set_update_options(ctl->request_devices, "rng", 0, drop, add, err,
						sizeof(err));
	} else if (kind == VMM_REQUEST_UPGRADE) {
		ret = device_set_upgrade(ctl->request_devices, upgrade_kind, index, NULL, err,
					 sizeof(err));
	} else {
		ret = device_set_update_net(ctl->request_devices, index, &net, err, sizeof(err));
	}
	pthread_mutex_lock(&ctl->lock);
	if (ctl->request_pending) {
		ctl->request_result = ret;
		snprintf(ctl->request_err, sizeof(ctl->request_err), "%s", ret ? err : "");
		ctl->request_pending = false;
		ctl->request_done = true;
		pthread_cond_broadcast(&ctl->cond);
	}
	pthread_mutex_unlock(&ctl->lock);
}

int vmm_control_watch_requests(struct vmm_control *ctl, struct evloop *loop, int order,
			       struct device_set *devices)
{
	ctl->request_devices = devices;
	return evloop_add_fd(loop, ctl->request_fd, POLLIN, order, control_on_request_fd, ctl);
}

static enum api_vm_state control_state(void *opaque)
{
	struct vmm_control *ctl = opaque;
	enum api_vm_state state;

	pthread_mutex_lock(&ctl->lock);
	state = ctl->state;
	pthread_mutex_unlock(&ctl->lock);
	return state;
}

static int wrong_state(struct vmm_control *ctl, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s is not allowed while the VM is in state '%s'", what,
		 state_names[ctl->state]);
	return -EINVAL;
}

static int control_instance_start(void *opaque, const struct vm_config *cfg, char *err,
				  size_t errlen)
{
	struct vmm_control *ctl = opaque;
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&ctl->lock);
	if (ctl->state != API_STATE_NOT_STARTED || ctl->start_requested) {
		ret = wrong_state(ctl, "InstanceStart", err, errlen);
		pthread_mutex_unlock(&ctl->lock);
		return ret;
	}
	api_config_release(&ctl->start_cfg);
	ret = api_config_copy(&ctl->start_cfg, cfg);
	if (ret) {
		snprintf(err, errlen, "out of memory copying the configuration");
		pthread_mutex_unlock(&ctl->lock);
		return ret;
	}
	ctl->start_requested = true;
	ctl->start_done = false;
	if (write(ctl->start_fd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
	while (!ctl->start_done)
		pthread_cond_wait(&ctl->cond, &ctl->lock);
	ret = ctl->start_result;
	if (ret)
		snprintf(err, errlen, "%s", ctl->start_err);
	pthread_mutex_unlock(&ctl->lock);
	return ret;
}

static int control_pause(void *opaque, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;
	enum api_vm_state state = control_state(ctl);
	int ret;

	if (state != API_STATE_RUNNING && state != API_STATE_PAUSED)
		return wrong_state(ctl, "Pausing", err, errlen);
	ret = vm_pause(ctl->vm, err, errlen);
	if (!ret)
		vmm_control_set_state(ctl, API_STATE_PAUSED);
	return ret;
}

static int control_resume(void *opaque, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;
	enum api_vm_state state = control_state(ctl);
	int ret;

	if (state != API_STATE_RUNNING && state != API_STATE_PAUSED)
		return wrong_state(ctl, "Resuming", err, errlen);
	ret = vm_resume(ctl->vm, err, errlen);
	if (!ret)
		vmm_control_set_state(ctl, API_STATE_RUNNING);
	return ret;
}

static int control_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;

	if (control_state(ctl) != API_STATE_RUNNING)
		return wrong_state(ctl, "SendCtrlAltDel", err, errlen);
	vm_send_ctrl_alt_del(ctl->vm);
	return 0;
}

/* Hand a device change to the event loop and wait for its answer; what
 * to change is in ctl->request_* (set under the lock by the caller). */
static int control_request_locked(struct vmm_control *ctl, const char *what, char *err,
				  size_t errlen)
{
	uint64_t one = 1;
	int ret;

	if (ctl->state != API_STATE_RUNNING &&
	    !(ctl->state == API_STATE_PAUSED && ctl->request_kind == VMM_REQUEST_SNAPSHOT)) {
		/* Paused: a new server would be handed running rings (the
		 * replacement resumes them), touching guest memory while the VM
		 * is meant to be still. */
		ret = ctl->state == API_STATE_PAUSED
			  ? error_text(err, errlen, -EBUSY,
				       "the VM is paused; resume it before changing %s", what)
			  : wrong_state(ctl, "Changing a device", err, errlen);
		pthread_mutex_unlock(&ctl->lock);
		return ret;
	}
	/* The API thread asks one thing at a time (its own lock is held). */
	ctl->request_pending = true;
	ctl->request_done = false;
	if (write(ctl->request_fd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
	while (!ctl->request_done)
		pthread_cond_wait(&ctl->cond, &ctl->lock);
	ret = ctl->request_result;
	if (ret)
		snprintf(err, errlen, "%s", ctl->request_err);
	pthread_mutex_unlock(&ctl->lock);
	return ret;
}

static int control_update_net(void *opaque, unsigned index, const struct net_config *net, char *err,
			      size_t errlen)
{
	struct vmm_control *ctl = opaque;

	pthread_mutex_lock(&ctl->lock);
	ctl->request_index = index;
	ctl->request_net = *net;
	ctl->request_kind = VMM_REQUEST_NET;
	return control_request_locked(ctl, "a network interface's rate limiters", err, errlen);
}

/* PATCH /drives: a new isola-blk takes the drive over (device_set.c). */
static int control_update_drive(void *opaque, unsigned index, const struct disk_config *disk,
				bool reopen, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;

	pthread_mutex_lock(&ctl->lock);
	ctl->request_index = index;
	ctl->request_disk = *disk;
	ctl->request_reopen = reopen;
	ctl->request_kind = VMM_REQUEST_DISK;
	return control_request_locked(ctl, "a drive", err, errlen);
}

/* PATCH /entropy: isola-rng replaced with the new --rate, as for a
 * network interface (docs/api.md). */
static int control_update_entropy(void *opaque, const char *rate, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;

	pthread_mutex_lock(&ctl->lock);
	ctl->request_index = 0;
	ctl->request_kind = VMM_REQUEST_RNG;
	snprintf(ctl->request_rate, sizeof(ctl->request_rate), "%s", rate);
	return control_request_locked(ctl, "the entropy device's rate limiter", err, errlen);
}

/* Live upgrade (PATCH /drives {"server_upgrade": true}, PUT /actions
 * UpgradeServers): the event loop replaces the server(s) with the binary
 * on disk (device_set_upgrade). */
static int control_upgrade_servers(void *opaque, const char *kind, unsigned index, char *err,
				   size_t errlen)
{
	struct vmm_control *ctl = opaque;

	pthread_mutex_lock(&ctl->lock);
	ctl->request_index = index;
	ctl->request_upgrade_kind = kind;
	ctl->request_kind = VMM_REQUEST_UPGRADE;
	return control_request_locked(ctl, "a device server", err, errlen);
}

/* PATCH /serial: the UART is the core's own; its bucket changes in place
 * (full again) under the UART's lock.  A reboot keeps it: the main
 * thread's configuration takes it too. */
static int control_update_serial(void *opaque, const char *rate, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;
	enum api_vm_state state = control_state(ctl);
	int ret;

	if (state != API_STATE_RUNNING && state != API_STATE_PAUSED)
		return wrong_state(ctl, "Changing the serial console", err, errlen);
	ret = serial_set_rate(&ctl->vm->serial, rate, err, errlen);
	if (!ret && ctl->watch_cfg) {
		pthread_mutex_lock(&ctl->lock);
		snprintf(ctl->watch_cfg->serial_rate, sizeof(ctl->watch_cfg->serial_rate), "%s",
			 rate);
		pthread_mutex_unlock(&ctl->lock);
	}
	return ret;
}

static int control_flush_metrics(void *opaque, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	return 0; /* the API module writes the metrics; fill_metrics adds ours */
}

/*
 * Per device: restarts of its back-end since the last line (a counter, like
 * the others), the longest recovery so far, and whether it was given up.
 * Written by the event loop; a torn read here only skews one line.
 */
static struct json_object *control_device_metrics(struct vmm_control *ctl)
{
	struct json_object *devices = json_object_new_object();
	struct vm *vm = ctl->vm;

	/* NULL while a reboot makes the next VM; the set itself stays */
	const struct device_set *set = __atomic_load_n(&vm->devices, __ATOMIC_RELAXED);

	for (unsigned i = 0; set && i < set->nr && i < DEVICE_SET_MAX; i++) {
		const struct device_entry *e = &set->entries[i];
		struct json_object *dev = json_object_new_object();
		uint64_t restarts = __atomic_load_n(&e->restart.restarts, __ATOMIC_RELAXED);
		uint64_t max_ns = __atomic_load_n(&e->restart.recovery_ns_max, __ATOMIC_RELAXED);

		json_object_object_add(
		    dev, "restarts",
		    json_object_new_int64((int64_t)(restarts - ctl->reported_restarts[i])));
		ctl->reported_restarts[i] = restarts;
		json_object_object_add(dev, "recovery_us_max",
				       json_object_new_int64((int64_t)(max_ns / 1000)));
		json_object_object_add(dev, "needs_reset",
				       json_object_new_boolean(e->restart.given_up));
		json_object_object_add(devices, e->name, dev);
	}
	return devices;
}

static void control_fill_metrics(void *opaque, void *json)
{
	struct vmm_control *ctl = opaque;
	struct json_object *root = json, *vcpu = json_object_new_object();
	struct vm *vm = ctl->vm;
	enum api_vm_state state = control_state(ctl);

	if (state == API_STATE_RUNNING || state == API_STATE_PAUSED) {
		struct json_object *uart = json_object_new_object();
		uint64_t total = 0, bytes;

		for (unsigned i = 0; i < vm->nr_cpus; i++) {
			uint64_t exits = __atomic_load_n(&vm->vcpus[i].exits, __ATOMIC_RELAXED);
			char key[32];

			snprintf(key, sizeof(key), "vcpu%u_exits", i);
			json_object_object_add(
			    vcpu, key,
			    json_object_new_int64((int64_t)(exits - ctl->reported_exits[i])));
			total += exits - ctl->reported_exits[i];
			ctl->reported_exits[i] = exits;
		}
		json_object_object_add(vcpu, "exits", json_object_new_int64((int64_t)total));
		bytes = __atomic_load_n(&vm->serial.tx_bytes, __ATOMIC_RELAXED);
		json_object_object_add(
		    uart, "write_count",
		    json_object_new_int64((int64_t)(bytes - ctl->reported_uart_bytes)));
		ctl->reported_uart_bytes = bytes;
		/* Firecracker's uart.rate_limiter_dropped_bytes (SerialDevice) */
		bytes = __atomic_load_n(&vm->serial.dropped_bytes, __ATOMIC_RELAXED);
		json_object_object_add(
		    uart, "rate_limiter_dropped_bytes",
		    json_object_new_int64((int64_t)(bytes - ctl->reported_uart_dropped)));
		ctl->reported_uart_dropped = bytes;
		json_object_object_add(root, "uart", uart);
		json_object_object_add(root, "device_servers", control_device_metrics(ctl));
	}
	json_object_object_add(root, "vcpu", vcpu);
}

/* A snapshot's files are written under a temporary name next to the
 * final one and renamed over it only once complete: a VM restored from
 * the old memory file maps that file privately, and truncating it in
 * place would take its pages away (truncation drops even the private
 * copies); a failed snapshot leaves the old files as they were. */
static int control_temp_name(char *tmp, size_t len, const char *path, const char *what, char *err,
			     size_t errlen)
{
	if ((size_t)snprintf(tmp, len, "%s.isola-%d.tmp", path, (int)getpid()) >= len)
		return error_text(err, errlen, -ENAMETOOLONG, "%s %s: the path is too long", what,
				  path);
	return 0;
}

/* Open tmp for a snapshot: created or emptied, for writing only (the API
 * thread's seccomp list allows write-only opens). */
static int control_open_output(const char *tmp, const char *path, const char *what, char *err,
			       size_t errlen)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return error_text(err, errlen, -errno, "%s %s: %s", what, path, strerror(errno));
	return fd;
}

/* Both paths naming one file would leave one of the two, renamed over. */
static bool control_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* PUT /snapshot/create: Firecracker's rule, the VM must be Paused (its
 * vCPUs parked: their state is still and their ioctls do not block).  The
 * files are opened here, the state written by the event loop. */
static int control_snapshot_create(void *opaque, const char *state_path, const char *mem_path,
				   bool diff, char *err, size_t errlen)
{
	struct vmm_control *ctl = opaque;
	char state_tmp[PATH_MAX + 32], mem_tmp[PATH_MAX + 32];
	int state_fd, mem_fd, ret;

	if (control_state(ctl) != API_STATE_PAUSED)
		return error_text(err, errlen, -EINVAL,
				  "a snapshot is taken of a paused VM; the VM is %s: PATCH /vm "
				  "{\"state\": \"Paused\"} first",
				  state_names[control_state(ctl)]);
	if (control_same_file(state_path, mem_path))
		return error_text(err, errlen, -EINVAL,
				  "snapshot_path and mem_file_path name the same file (%s); a "
				  "snapshot is two files",
				  state_path);
	ret = snapshot_check(ctl->vm, err, errlen);
	if (!ret)
		ret = snapshot_dirty_check(ctl->vm, diff, err, errlen);
	if (ret)
		return ret;
	ret = control_temp_name(mem_tmp, sizeof(mem_tmp), mem_path, "mem_file_path", err, errlen);
	if (!ret)
		ret = control_temp_name(state_tmp, sizeof(state_tmp), state_path, "snapshot_path",
					err, errlen);
	if (ret)
		return ret;
	mem_fd = control_open_output(mem_tmp, mem_path, "mem_file_path", err, errlen);
	if (mem_fd < 0)
		return mem_fd;
	state_fd = control_open_output(state_tmp, state_path, "snapshot_path", err, errlen);
	if (state_fd < 0) {
		/* (the empty temporary file stays: the API thread's list has
		 * no unlink; the next snapshot to this path reuses the name) */
		close(mem_fd);
		return state_fd;
	}
	pthread_mutex_lock(&ctl->lock);
	ctl->request_kind = VMM_REQUEST_SNAPSHOT;
	ctl->request_state_fd = state_fd;
	ctl->request_mem_fd = mem_fd;
	ctl->request_diff = diff;
	ctl->request_state_tmp = state_tmp;
	ctl->request_state_path = state_path;
	ctl->request_mem_tmp = mem_tmp;
	ctl->request_mem_path = mem_path;
	ret = control_request_locked(ctl, "a snapshot", err, errlen);
	close(state_fd);
	close(mem_fd);
	return ret;
}

static bool control_restored_shape(void *opaque, unsigned *cpus, uint64_t *memory)
{
	struct vmm_control *ctl = opaque;
	bool known;

	pthread_mutex_lock(&ctl->lock);
	known = ctl->started_cpus != 0;
	*cpus = ctl->started_cpus;
	*memory = ctl->started_memory;
	pthread_mutex_unlock(&ctl->lock);
	return known;
}

const struct api_vmm_ops vmm_control_ops = {
    .restored_shape = control_restored_shape,
    .snapshot_create = control_snapshot_create,
    .state = control_state,
    .instance_start = control_instance_start,
    .pause = control_pause,
    .resume = control_resume,
    .send_ctrl_alt_del = control_ctrl_alt_del,
    .flush_metrics = control_flush_metrics,
    .fill_metrics = control_fill_metrics,
    .update_net = control_update_net,
    .update_drive = control_update_drive,
    .update_entropy = control_update_entropy,
    .update_serial = control_update_serial,
    .upgrade_servers = control_upgrade_servers,
};
