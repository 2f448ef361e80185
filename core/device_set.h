/* SPDX-License-Identifier: MIT */
/*
 * The device set: a VM's virtio devices and their back-ends (device servers
 * isola starts, or external vhost-user back-ends), for the whole run.  It
 * outlives each VM: a guest reboot (isola run --on-reset reboot) destroys
 * the VM and creates the next one on the same set, whose servers stay up
 * and are negotiated with again.
 *
 * The set starts and supervises the servers (core/supervisor.h spawns
 * them), brings a lost back-end back as core/restart_policy.h decides, and
 * for each VM creates the vhost-user front-ends (devices/vhost_user_device.h)
 * through a callback of the VM's, which places and plugs them.  Everything
 * here runs on the event loop's thread, except device_set_queue_work.
 */
#ifndef ISOLA_CORE_DEVICE_SET_H
#define ISOLA_CORE_DEVICE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/restart_policy.h"
#include "devices/device_kind.h"
#include "devices/vhost_user_device.h"
#include "lib/evloop.h"

#define DEVICE_SET_MAX CONFIG_MAX_PCI_DEVICES
#define DEVICE_SERVER_MAX_ARGS 16

struct device_set;

struct device_entry {
	struct device_set *set;
	const struct device_kind *kind;
	char name[16];		 /* "disk0", "net0", "rng0" */
	const char *socket_path; /* external back-end; NULL: isola starts isola-<kind> */
	const char *args[DEVICE_SERVER_MAX_ARGS + 1]; /* for the server; live in the config */
	char default_id[16];			      /* GET_ID when the disk has no id= */
	char arg_text[3][24];			      /* numbers and a MAC for args[] */
	char arg_store[4096 + 512]; /* args[] after a replace or update: the entry's own copy */
	uint8_t frontend_config[VIRTIO_PCI_CONFIG_MAX]; /* a front-end-owned config */
	pid_t pid;					/* the server's, 0 if none (or external) */
	int kept_sock;	   /* between VMs: the connected back-end, or -1 */
	bool kept_from_vm; /* kept_sock served the previous VM (not just started) */
	bool attached;	   /* dev is a front-end in the current VM */
	struct vhost_device dev;
	struct restart_state restart;
	char last_failure[384]; /* logged once until it changes */
};

struct device_set {
	struct device_entry entries[DEVICE_SET_MAX];
	unsigned nr;
	int work_fd; /* eventfd: a front-end has work for the event loop */
	/* device_set_watch's registrations in the event loop (ids; 0: none) */
	struct evloop *loop;
	int sock_watch[DEVICE_SET_MAX], err_watch[DEVICE_SET_MAX];
	const struct restart_policy *policy;
};

/* The VM's side of attaching entry `index`: create its front-end on the
 * connected sock (sock is the plug's from then on: closed on failure) and
 * plug it in.  0 or -errno with a sentence in err. */
typedef int (*device_set_plug_fn)(void *vm, struct device_entry *entry, unsigned index, int sock,
				  char *err, size_t errlen);

/* The devices cfg asks for (cfg outlives the set); starts nothing yet.
 * 0 or -errno with a sentence in err. */
int device_set_init(struct device_set *set, const struct vm_config *cfg, char *err, size_t errlen);
/* A restore's device (core/snapshot_devices.c): an entry made as
 * device_set_init would have made it, from what the snapshot kept: the
 * server of kind with args (copied; checked against the kind's options by
 * the caller), or the external back-end at socket (not NULL or ""), and the
 * front-end-owned config (VIRTIO_PCI_CONFIG_MAX bytes).  0 or -errno. */
int device_set_add_saved(struct device_set *set, const char *kind, const char *name, bool restart,
			 const char *socket, const char *const *args,
			 const uint8_t *frontend_config, char *err, size_t errlen);
/* Ask the spawner now for the servers cfg names (supervisor_prespawn), so
 * they start while the core compiles its filters; device_set_start takes
 * them when its requests are the same. */
void device_set_prespawn(const struct vm_config *cfg);
/* Start every server and connect to every external back-end, all at once:
 * the servers sandbox themselves while the core builds the VM. */
int device_set_start(struct device_set *set, char *err, size_t errlen);
/* Create each device's front-end in a new VM (plug), on its connection;
 * a back-end kept from the previous VM that fails is replaced once. */
int device_set_attach(struct device_set *set, device_set_plug_fn plug, void *vm, char *err,
		      size_t errlen);
/* The VM is going: stop each device's rings (as a driver reset would) and
 * keep its back-end connected for the next attach; a back-end that is away,
 * given up or did not stop cleanly is ended (the next attach starts anew). */
void device_set_detach(struct device_set *set);
/* End the servers and close everything. */
void device_set_destroy(struct device_set *set);

/* Any thread: queue front-end work for the event loop. */
void device_set_queue_work(struct device_set *set, unsigned work);
/* Event loop: carry out queued front-end work. */
void device_set_serve(struct device_set *set);
/* Event loop: entry index's back-end hung up (why NULL: its socket polled
 * readable) or its server ended (why says how). */
void device_set_lost(struct device_set *set, unsigned index, const char *why);
/* Event loop: watch each device's socket (a back-end never speaks first:
 * readable means it hung up or broke the protocol; lost_order) and its
 * ring-error eventfd (ring_error_order) in loop, or follow them to the fds
 * they have now (a restarted server has a new socket; -1 while away).
 * Call at start and after every round.  0 or -errno. */
int device_set_watch(struct device_set *set, struct evloop *loop, int ring_error_order,
		     int lost_order);
/* Forget the registrations (the loop is ending, or a new one begins). */
void device_set_unwatch(struct device_set *set);
/* Event loop: give entry index's server new arguments (copied into the
 * entry: they outlive the caller's) and put a server started with them in
 * place of the running one, through the restart path: the old server is
 * ended, the new one is negotiated with and resumes the in-flight requests,
 * and the guest sees nothing.  Not charged to the restart budget
 * (restart_on_replace).  Between VMs, the kept server is ended and the next
 * attach starts the new one; while the back-end is away, the pending try
 * takes the new arguments.  0 (the new server is up, or tried again every
 * ~100 ms like a restart) or -errno with a sentence in err. */
int device_set_replace(struct device_set *set, unsigned index, const char *const *args, char *err,
		       size_t errlen);
/* Event loop: network interface net_index (cfg->nets[net_index]) gets
 * net's rate limiters (--rx-rate/--tx-rate, docs/net.md) through
 * device_set_replace.  0 or -errno with a sentence in err. */
/* Replace the options named in drop (each with its value) of the index'th
 * server of kind ("net", "rng", "blk") by the arguments in add (both
 * NULL-terminated, may be NULL), through device_set_replace: PATCH of a
 * device's rate limiter.  0 or -errno with a sentence in err. */
int device_set_update_options(struct device_set *set, const char *kind, unsigned index,
			      const char *const *drop, const char *const *add, char *err,
			      size_t errlen);
int device_set_update_net(struct device_set *set, unsigned net_index, const struct net_config *net,
			  char *err, size_t errlen);
/* Event loop: disk disk_index (cfg->disks[disk_index]) is served from
 * disk's image and options from now on (PATCH /drives): a new isola-blk is
 * started on it and, once it answers, takes the rings over from the old
 * one, which first completes every request it took
 * (vhost_device_handover): no request is lost or split between images, and
 * the guest hears of the new capacity by a config change interrupt.  A new
 * server that fails before it is given a ring leaves the old one serving;
 * an old one that does not stop cleanly is restarted on its old image; a
 * new one that fails after it had a ring is restarted on the new image (it
 * may have served from it: roll forward), 0 once it is back, -EINPROGRESS
 * while the restart policy retries (the new image is the drive's either
 * way).  The same arguments again change nothing (0) unless reopen (the
 * PATCH named path_on_host: the file at that path may be a new one).  Between VMs the
 * next attach starts the new server.  0 or -errno with a sentence in err. */
int device_set_update_disk(struct device_set *set, unsigned disk_index, bool reopen,
			   const struct disk_config *disk, char *err, size_t errlen);
/*
 * Event loop: live upgrade.  Put a server started from the binary on disk
 * now (isola-KIND next to isola: supervisor_server_binary) in place of the
 * running one, without the guest seeing anything: the new server is
 * started and negotiated with while the old one serves, the old one's
 * rings stop once every request it took is complete (GET_VRING_BASE), and
 * the new one takes them over at the same indexes (vhost_device_handover,
 * as PATCH /drives with a new image).  If that handover fails, the restart
 * path (kill, inflight-region replay) brings the device back from the new
 * binary instead.  Not charged to the restart budget.  kind NULL: every
 * server isola starts (external back-ends are skipped); else the
 * kind_index'th device of kind ("blk", "net", "rng", "vsock").  Between
 * VMs, the next attach starts the new binary.  *upgraded (may be NULL):
 * how many were upgraded.  0, or the first failure's -errno with its
 * sentence in err (with kind NULL the others are still tried, and each
 * failure is logged).  docs/devices.md "Live upgrade".
 */
int device_set_upgrade(struct device_set *set, const char *kind, unsigned kind_index,
		       unsigned *upgraded, char *err, size_t errlen);
/* Event loop: reap ended servers (SIGCHLD). */
void device_set_reap(struct device_set *set);
/* Event loop: try the back-ends that are due again; true while one still
 * waits (call again in ~100 ms). */
bool device_set_retry(struct device_set *set);

#endif
