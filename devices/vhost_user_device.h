/* SPDX-License-Identifier: MIT */
/*
 * A virtio device whose device side lives in another process: the core is
 * the vhost-user front-end (QEMU docs/interop/vhost-user.rst) and exposes the
 * device to the guest through the virtio-pci transport.
 *
 * Data path: the guest's queue notifications hit a KVM ioeventfd (the kick
 * fd the back-end polls); the back-end's completions write the call fd, a
 * KVM irqfd on the queue's MSI-X vector.  The core is not on the path.
 *
 * Control path: register writes on vCPU threads only record what changed
 * and wake the VM's event loop (vhost_device_process), which talks to the
 * back-end.  A vCPU thread never waits for a back-end.
 */
#ifndef ISOLA_DEVICES_VHOST_USER_DEVICE_H
#define ISOLA_DEVICES_VHOST_USER_DEVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/device_host.h"
#include "devices/device_kind.h"
#include "devices/virtio_pci.h"

#define VHOST_DEVICE_WORK_START 1u
#define VHOST_DEVICE_WORK_STOP 2u
#define VHOST_DEVICE_WORK_INTERRUPTS 4u
#define VHOST_DEVICE_WORK_PAUSE 8u /* disable started rings (VM paused) */
#define VHOST_DEVICE_WORK_RESUME 16u

struct vhost_device {
	struct virtio_pci_dev pci; /* first member */
	struct device_host host;   /* the VM, as far as the device may see it */
	struct device_placement placement;
	const struct device_kind *kind;
	char name[32];
	int sock;	     /* vhost-user connection, -1 when down */
	char bad_reply[160]; /* what was wrong with the last failed call's reply */
	uint64_t backend_features;
	uint64_t device_features; /* offered to the guest (after kind->fixup) */
	uint64_t protocol_features;
	uint8_t frontend_config[VIRTIO_PCI_CONFIG_MAX]; /* DEVICE_CONFIG_FRONTEND: the core's */
	bool external_backend;				/* vhost_device_options */
	uint16_t num_queues;
	uint16_t queue_size;
	bool started; /* back-end rings running */
	bool wanted;  /* the driver set DRIVER_OK and has not reset */
	unsigned started_queues;
	/* Since the last start a ring went to the back-end (SET_VRING_KICK):
	 * it may have served requests (a failed handover rolls forward). */
	bool rings_given;
	int kick_fds[VIRTIO_PCI_MAX_QUEUES];
	int call_fds[VIRTIO_PCI_MAX_QUEUES];
	int err_fd; /* every ring's error eventfd (SET_VRING_ERR), for the event loop */
	int irqfd_gsi[VIRTIO_PCI_MAX_QUEUES]; /* GSI the call fd is bound to, -1 */
	uint64_t notify_base;		      /* guest address of the notify area, 0 if unmapped */
	int inflight_fd;
	uint64_t inflight_size;
	/* The VM is paused (WORK_PAUSE): a ring (re)started now stays
	 * disabled until WORK_RESUME. */
	bool rings_paused;
	/* A snapshot stopped the rings (vhost_device_save) at these bases:
	 * vhost_device_save_done starts them again. */
	bool saved_stopped;
	uint16_t saved_bases[VIRTIO_PCI_MAX_QUEUES];
	/* A restore's device state for the back-end, pushed by the start
	 * (after the inflight region, before the rings); NULL none. */
	const void *restore_state;
	size_t restore_state_len;
	atomic_uint work; /* VHOST_DEVICE_WORK_* for the event loop */
	int work_fd;	  /* eventfd shared by the VM's devices */
};

/* A device of type kind at placement (BAR 0, VIRTIO_PCI_MAX_VECTORS GSIs
 * from gsi_base), reaching the VM only through host; sock: connected to the
 * back-end.  Negotiates protocol features, reads the queue count and (for a
 * back-end-owned config) the config, applies kind->fixup (a front-end-owned
 * config starts as options->frontend_config), creates the PCI
 * function, kick and call fds, and binds the kick fds to the notify area.
 * The caller then registers dev->pci's BAR (virtio_pci_bar_access, opaque
 * dev) on its MMIO bus and plugs dev->pci.fn at placement->slot.  On
 * failure writes a sentence to err (call vhost_device_destroy). */
/* What the core knows of one device beyond its kind (NULL: all defaults). */
struct vhost_device_options {
	const uint8_t *frontend_config; /* DEVICE_CONFIG_FRONTEND: kind->config_size bytes */
	bool external_backend;		/* a back-end isola did not start (--vhost-user-*) */
};

int vhost_device_create(struct vhost_device *dev, const struct device_host *host,
			const struct device_placement *placement, const struct device_kind *kind,
			const char *name, const struct vhost_device_options *options, int sock,
			int work_fd, char *err, size_t errlen);
/* Queue work for the event loop (any thread). */
void vhost_device_queue_work(struct vhost_device *dev, unsigned work);
/* The back-end went away (crash, hang-up): forget the connection, keep
 * everything needed to resume (kick/call fds, the inflight region). */
void vhost_device_disconnect(struct vhost_device *dev);
/* A new connection to a (restarted or returning) back-end: negotiate again
 * and, if the driver had the device running, replay the memory table and
 * ring state so in-flight requests are resubmitted from the inflight region.
 * 0 or -errno with a sentence in err (the caller may retry). */
int vhost_device_reconnect(struct vhost_device *dev, int sock, char *err, size_t errlen);
/* What a handover left (vhost_device_handover). */
enum vhost_device_handover_outcome {
	VHOST_DEVICE_HANDOVER_DONE,    /* the new back-end serves */
	VHOST_DEVICE_HANDOVER_REFUSED, /* the old back-end serves, untouched */
	/* Disconnected: the old back-end must come back (restart path); the
	 * inflight region holds what it left in flight. */
	VHOST_DEVICE_HANDOVER_ROLL_BACK,
	/* Disconnected after the new back-end had the rings (it may have
	 * served requests): the NEW back-end must come back (restart path);
	 * the inflight region is its own, the device config the new one. */
	VHOST_DEVICE_HANDOVER_ROLL_FORWARD,
};
/* A live handover to another back-end on sock (PATCH /drives: a server on
 * a new image), with no request lost or split between the two: sock is
 * negotiated with while the old back-end serves (a refusal leaves the old
 * one untouched: REFUSED); then the old back-end's rings stop
 * (GET_VRING_BASE: it completes what it took first), the new one takes
 * them at the same bases, and a changed device config (a new capacity)
 * reaches the driver with a configuration change interrupt (DONE).  If the
 * old back-end did not stop cleanly, or the new one failed before it was
 * given a ring (SET_VRING_KICK), the device is disconnected and the caller
 * brings the old back-end back (ROLL_BACK); if the new one failed after,
 * the caller brings the new one back (ROLL_FORWARD).  sock is the device's
 * or closed.  0 or -errno with a sentence in err. */
int vhost_device_handover(struct vhost_device *dev, int sock,
			  enum vhost_device_handover_outcome *outcome, char *err, size_t errlen);
/* Event-loop side: the back-end signalled err_fd (it stopped a ring the
 * guest broke): the device needs a reset (virtio 1.2 §2.1.2). */
void vhost_device_ring_error(struct vhost_device *dev);
/* Event-loop side: carry out the work vCPU threads queued. */
void vhost_device_process(struct vhost_device *dev);
/*
 * Snapshots (docs/snapshot.md "Devices").  What the core keeps of one
 * device beside the transport (a state file payload: fixed sizes, no
 * padding): where each ring stopped and which call was pending.
 */
#define VHOST_DEVICE_SAVED_WANTED 1u	/* the driver had it running (DRIVER_OK) */
#define VHOST_DEVICE_SAVED_HAS_STATE 2u /* the back-end gave its state */
#define VHOST_DEVICE_STATE_MAX 8192u	/* the back-end's state stream, at most */
struct vhost_device_saved {
	struct virtio_pci_saved pci;
	/* GET_VRING_BASE of each started ring: its next avail index, with
	 * every request it took completed (used->idx == base) */
	uint16_t bases[VIRTIO_PCI_MAX_QUEUES];
	uint32_t started_queues; /* rings the back-end ran (bit per queue) */
	uint32_t call_pending;	 /* a call waited in the queue's eventfd (vector masked) */
	uint32_t flags;		 /* VHOST_DEVICE_SAVED_* */
	uint32_t reserved;
};
_Static_assert(sizeof(struct vhost_device_saved) ==
		   sizeof(struct virtio_pci_saved) + 2 * VIRTIO_PCI_MAX_QUEUES + 16,
	       "vhost_device_saved has no padding");

/*
 * Snapshot, with the VM paused: the transport's state into out, every
 * started ring stopped (GET_VRING_BASE: the back-end first completes what
 * it took, and its interrupts are raised), the calls still pending noted,
 * and the back-end's own state fetched (SET_DEVICE_STATE_FD, save; a
 * back-end without VHOST_USER_PROTOCOL_F_DEVICE_STATE gives none: *state_len
 * 0).  state has room for *state_len bytes (VHOST_DEVICE_STATE_MAX).  The
 * rings stay stopped until vhost_device_save_done (after guest memory is
 * written: nothing may move in it meanwhile).  0 or -errno with a sentence.
 */
int vhost_device_save(struct vhost_device *dev, struct vhost_device_saved *out, uint8_t *state,
		      size_t *state_len, char *err, size_t errlen);
/* After vhost_device_save (done or failed): the rings run again where they
 * stopped (disabled while the VM is paused). */
void vhost_device_save_done(struct vhost_device *dev);
/*
 * Restore into a device just made on a fresh back-end (vhost_device_create
 * negotiated; nothing driven yet): the transport state (virtio_pci_load),
 * then, if the driver had the device running, the back-end's rings at the
 * saved bases with its state pushed before them (SET_DEVICE_STATE_FD,
 * load; CHECK_DEVICE_STATE), the interrupts bound, the pending calls
 * raised again and one kick per ring (a request posted before the
 * snapshot and not taken is served).  in and state are untrusted (checked).
 * 0 or -errno with a sentence in err.
 */
int vhost_device_restore(struct vhost_device *dev, const struct vhost_device_saved *in,
			 const void *state, size_t state_len, char *err, size_t errlen);
/* Give up the notify area's ioeventfds (a device that failed to plug, so
 * the next one made at the same place can take it).  Not needed before
 * vhost_device_destroy when the whole VM goes. */
void vhost_device_unplug(struct vhost_device *dev);
/* Guest reboot: stop the rings (GET_VRING_BASE, as a driver reset would)
 * and hand over the still-connected socket, for a new VM's device. */
int vhost_device_detach(struct vhost_device *dev);
void vhost_device_destroy(struct vhost_device *dev);

#endif
