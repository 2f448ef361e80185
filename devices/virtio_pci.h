/* SPDX-License-Identifier: MIT */
/*
 * Modern (virtio 1.x only) virtio-pci transport, virtio 1.2 §4.1: one PCI
 * function with the common/notify/ISR/device/PCI-cfg capabilities and MSI-X
 * (table and PBA) in a single 64-bit memory BAR.  The data path bypasses this
 * code: queue notifications are KVM ioeventfds (the "kick" fds) and MSI-X
 * vectors are KVM irqfds (the "call" fds), both handed to the device server.
 * What is left here is configuration: feature negotiation, status, queue
 * setup, MSI-X table, device config, reset.
 *
 * All register handlers run on vCPU threads and never block: anything that
 * needs the device server (DRIVER_OK, reset) is handed to the backend through
 * ops->status_changed, which must only queue work.
 */
#ifndef ISOLA_DEVICES_VIRTIO_PCI_H
#define ISOLA_DEVICES_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "isola/virtio.h" /* status and feature bits */

#define VIRTIO_PCI_MAX_QUEUES 16
#define VIRTIO_PCI_MAX_VECTORS (VIRTIO_PCI_MAX_QUEUES + 1)
#define VIRTIO_PCI_CONFIG_MAX 256
#define VIRTIO_PCI_NO_VECTOR 0xffff

/* BAR 0 layout (offsets). */
#define VIRTIO_PCI_BAR_SIZE 0x8000u
#define VIRTIO_PCI_COMMON_OFFSET 0x0000u
#define VIRTIO_PCI_COMMON_SIZE 0x0040u
#define VIRTIO_PCI_ISR_OFFSET 0x1000u
#define VIRTIO_PCI_DEVICE_OFFSET 0x2000u
#define VIRTIO_PCI_NOTIFY_OFFSET 0x3000u
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4u
#define VIRTIO_PCI_MSIX_TABLE_OFFSET 0x4000u
#define VIRTIO_PCI_MSIX_PBA_OFFSET 0x5000u


struct virtio_pci_queue {
	uint16_t size;     /* driver's choice, <= size_max */
	uint16_t size_max;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, driver, device; /* GPAs of the three ring parts */
	int kick_fd;                   /* eventfd bound to the notify address */
	int call_fd;                   /* eventfd bound to the vector's GSI */
};

struct virtio_pci_msix_entry {
	uint32_t address_lo, address_hi, data, control;
};

struct virtio_pci_dev;

/* What the transport needs from the VM.  Implemented by the device that
 * owns the transport (the vhost-user front-end, on top of its
 * devices/device_host.h), which knows the kick and call fds. */
struct virtio_pci_platform_ops {
	/* BAR 0 moved (or decoding turned on/off): base 0 = unmapped. */
	void (*bar_moved)(struct virtio_pci_dev *dev, uint64_t old_base, uint64_t new_base);
	/* An MSI-X vector changed: rebind the irqfds of the queues using it. */
	void (*vector_changed)(struct virtio_pci_dev *dev, unsigned vector);
	/* Send the configuration-change interrupt. */
	void (*config_interrupt)(struct virtio_pci_dev *dev);
};

/* What the transport needs from the device backend (vhost-user frontend). */
struct virtio_pci_backend_ops {
	/* Status written by the driver; called with the device lock held:
	 * queue the work, never block.  new_status 0 = reset: return true if
	 * the reset completes later (the back-end must first stop touching
	 * guest memory), then call virtio_pci_reset_complete(); until then
	 * device_status keeps reading non-zero (virtio 1.2 §4.1.4.3.2: the
	 * driver waits for 0) and the driver's writes are ignored. */
	bool (*status_changed)(struct virtio_pci_dev *dev, uint8_t old_status, uint8_t new_status);
	/* Device config space write (after the cached copy was updated). */
	void (*config_written)(struct virtio_pci_dev *dev, uint32_t offset, uint32_t len);
};

struct virtio_pci_dev {
	struct pci_function fn; /* first: container_of-free casts from pci_function */
	pthread_mutex_t lock;
	const char *name;
	uint16_t device_id; /* virtio device type, §5 */
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_feature_select, driver_feature_select;
	uint16_t queue_select;
	uint16_t num_queues;
	uint16_t config_msix_vector;
	uint8_t status;
	bool resetting; /* reset requested, back-end not yet stopped */
	uint8_t config_generation;
	uint8_t isr;
	uint64_t bar_base; /* 0 when not decoding */
	struct virtio_pci_queue queues[VIRTIO_PCI_MAX_QUEUES];
	struct virtio_pci_msix_entry msix[VIRTIO_PCI_MAX_VECTORS];
	bool msix_enabled, msix_function_mask;
	/* The config changed before DRIVER_OK: announced when it is set. */
	bool config_change_pending;
	/* A configuration interrupt not delivered yet (its vector masked):
	 * the PBA shows it, unmasking delivers it (PCI 3.0 MSI-X, "Pending Bits"). */
	bool config_irq_pending;
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	uint32_t config_size;
	const struct virtio_pci_platform_ops *platform;
	const struct virtio_pci_backend_ops *backend;
	void *opaque;
};

/* Set up a function for virtio device type device_id with num_queues queues
 * of at most queue_size_max entries. bar_base is where "firmware" put BAR 0
 * (memory decoding is on at start, as a PC firmware leaves it). */
int virtio_pci_init(struct virtio_pci_dev *dev, const char *name, uint16_t device_id,
		    uint16_t pci_class, uint64_t device_features, uint16_t num_queues,
		    uint16_t queue_size_max, const uint8_t *config, uint32_t config_size,
		    uint64_t bar_base, const struct virtio_pci_platform_ops *platform,
		    const struct virtio_pci_backend_ops *backend, void *opaque);
void virtio_pci_destroy(struct virtio_pci_dev *dev);
/* MMIO handler for BAR 0 (bus_access_fn), offset relative to the BAR. */
void virtio_pci_bar_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			   bool is_write);
/* The device broke (a guest-controlled value was invalid): set NEEDS_RESET
 * and raise the config interrupt (virtio 1.2 §2.1.2). */
void virtio_pci_set_needs_reset(struct virtio_pci_dev *dev);
/* The device configuration is now config (size bytes, at most the
 * function's): if it differs, store it, bump config_generation at once and
 * raise the configuration change interrupt (ISR bit 1 and the config MSI-X
 * vector; virtio 1.2 §4.1.4.3.1, §4.1.5.4) -- when the driver sets
 * DRIVER_OK if it is not running yet, when the vector is unmasked if it is
 * masked.  A virtio-blk back-end serving a new image of another size, for
 * one.  Returns whether it changed. */
bool virtio_pci_config_changed(struct virtio_pci_dev *dev, const uint8_t *config, uint32_t size);
/* The back-end stopped after a reset request: finish the reset. */
void virtio_pci_reset_complete(struct virtio_pci_dev *dev);
/*
 * The transport's state in a snapshot (docs/snapshot.md; a payload of the
 * state file, so fixed sizes and no padding): what the driver set through
 * the common configuration, the MSI-X table, the device config it reads,
 * and the guest-writable bytes of the PCI configuration space (command,
 * BAR 0, MSI-X control, ...).  Not the fds, nor what the VM gave the
 * function (placement): those are the restoring process's own.
 */
struct virtio_pci_saved_queue {
	uint16_t size, msix_vector;
	uint8_t enabled;
	uint8_t reserved[3];
	uint64_t desc, driver, device;
};
#define VIRTIO_PCI_SAVED_CONFIG_CHANGE_PENDING 1u
#define VIRTIO_PCI_SAVED_CONFIG_IRQ_PENDING 2u
#define VIRTIO_PCI_SAVED_PCI_CONFIG 256 /* the standard header and the capabilities */
struct virtio_pci_saved {
	uint16_t device_id, num_queues;
	uint16_t config_msix_vector, queue_select;
	uint8_t status, config_generation, isr, flags; /* VIRTIO_PCI_SAVED_* */
	uint32_t config_size;
	uint32_t device_feature_select, driver_feature_select;
	uint64_t device_features, driver_features;
	struct virtio_pci_saved_queue queues[VIRTIO_PCI_MAX_QUEUES];
	struct virtio_pci_msix_entry msix[VIRTIO_PCI_MAX_VECTORS];
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	uint8_t pci_config[VIRTIO_PCI_SAVED_PCI_CONFIG];
};
_Static_assert(sizeof(struct virtio_pci_saved_queue) == 32, "no padding");
_Static_assert(sizeof(struct virtio_pci_saved) ==
		   40 + 32 * VIRTIO_PCI_MAX_QUEUES + 16 * VIRTIO_PCI_MAX_VECTORS +
		       VIRTIO_PCI_CONFIG_MAX + VIRTIO_PCI_SAVED_PCI_CONFIG,
	       "virtio_pci_saved has no padding");

/* The transport's state into out (the VM paused). */
void virtio_pci_save(struct virtio_pci_dev *dev, struct virtio_pci_saved *out);
/*
 * Set a freshly made transport (nothing driven yet) to a saved state.  The
 * state is untrusted: it must be a device of this type and shape (queue
 * count, config size), its driver features a subset of what the back-end
 * offers now, and every value one the driver could have written (queue
 * sizes, vectors, ring alignment); only the PCI configuration bytes the
 * guest may write are taken.  BAR moves and MSI-X enables go through the
 * platform hooks as a guest write would.  0, or -EINVAL with a sentence.
 */
int virtio_pci_load(struct virtio_pci_dev *dev, const struct virtio_pci_saved *in, char *err,
		    size_t errlen);

/* MSI address/data of a vector if it may fire now (enabled, unmasked). */
bool virtio_pci_vector_route(struct virtio_pci_dev *dev, unsigned vector, uint64_t *address,
			     uint32_t *data);

#endif
