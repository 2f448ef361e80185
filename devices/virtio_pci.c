// SPDX-License-Identifier: MIT
#include "devices/virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>

#define PCI_VENDOR_ID_VIRTIO 0x1af4
#define PCI_DEVICE_ID_VIRTIO_MODERN 0x1040 /* + device type, virtio 1.2 §4.1.2 */
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_BAR0 0x10
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VENDOR 0x09

/* Capability placement in config space. */
#define CAP_MSIX 0x40
#define CAP_COMMON 0x4c
#define CAP_NOTIFY 0x5c
#define CAP_ISR 0x70
#define CAP_DEVICE 0x80
#define CAP_PCI_CFG 0x90
#define CAP_END 0xa4
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_MASK 0x4000
#define MSIX_VECTOR_MASKED 1u

/* virtio 1.2 §4.1.4: cfg_type values. */
enum { VIRTIO_PCI_CAP_COMMON_CFG = 1, VIRTIO_PCI_CAP_NOTIFY_CFG = 2, VIRTIO_PCI_CAP_ISR_CFG = 3,
       VIRTIO_PCI_CAP_DEVICE_CFG = 4, VIRTIO_PCI_CAP_PCI_CFG = 5 };

/* Common configuration structure, virtio 1.2 §4.1.4.3. */
enum {
	COMMON_DFSELECT = 0x00,
	COMMON_DF = 0x04,
	COMMON_GFSELECT = 0x08,
	COMMON_GF = 0x0c,
	COMMON_MSIX = 0x10,
	COMMON_NUMQ = 0x12,
	COMMON_STATUS = 0x14,
	COMMON_CFGGENERATION = 0x15,
	COMMON_Q_SELECT = 0x16,
	COMMON_Q_SIZE = 0x18,
	COMMON_Q_MSIX = 0x1a,
	COMMON_Q_ENABLE = 0x1c,
	COMMON_Q_NOFF = 0x1e,
	COMMON_Q_DESCLO = 0x20,
	COMMON_Q_DESCHI = 0x24,
	COMMON_Q_AVAILLO = 0x28,
	COMMON_Q_AVAILHI = 0x2c,
	COMMON_Q_USEDLO = 0x30,
	COMMON_Q_USEDHI = 0x34,
	COMMON_Q_NDATA = 0x38,
	COMMON_Q_RESET = 0x3a,
};

static void put8(struct pci_function *fn, uint32_t off, uint8_t v)
{
	fn->config[off] = v;
}

static void put16(struct pci_function *fn, uint32_t off, uint16_t v)
{
	memcpy(fn->config + off, &v, 2);
}

static void put32(struct pci_function *fn, uint32_t off, uint32_t v)
{
	memcpy(fn->config + off, &v, 4);
}

static uint32_t get32(const struct pci_function *fn, uint32_t off)
{
	uint32_t v;

	memcpy(&v, fn->config + off, 4);
	return v;
}

static void writable(struct pci_function *fn, uint32_t off, uint32_t len, uint32_t mask)
{
	for (uint32_t i = 0; i < len; i++)
		fn->write_mask[off + i] = (uint8_t)(mask >> (8 * i));
}

static void virtio_cap(struct pci_function *fn, uint32_t at, uint8_t next, uint8_t len,
		       uint8_t type, uint32_t offset, uint32_t length)
{
	put8(fn, at + 0, PCI_CAP_ID_VENDOR);
	put8(fn, at + 1, next);
	put8(fn, at + 2, len);
	put8(fn, at + 3, type);
	put8(fn, at + 4, 0); /* BAR 0 */
	put32(fn, at + 8, offset);
	put32(fn, at + 12, length);
}

static const struct pci_function_ops virtio_pci_config_ops;

static void virtio_pci_build_config(struct virtio_pci_dev *dev, uint16_t pci_class)
{
	struct pci_function *fn = &dev->fn;

	put16(fn, 0x00, PCI_VENDOR_ID_VIRTIO);
	put16(fn, 0x02, (uint16_t)(PCI_DEVICE_ID_VIRTIO_MODERN + dev->device_id));
	put16(fn, PCI_COMMAND, PCI_COMMAND_MEMORY);
	writable(fn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	put16(fn, PCI_STATUS, PCI_STATUS_CAP_LIST);
	put8(fn, 0x08, 1); /* revision 1: modern only (§4.1.2.1) */
	put8(fn, 0x0a, (uint8_t)pci_class);
	put8(fn, 0x0b, (uint8_t)(pci_class >> 8));
	/* 64-bit memory BAR (bits 2:1 = 10b), size VIRTIO_PCI_BAR_SIZE. */
	put32(fn, PCI_BAR0, (uint32_t)dev->bar_base | 0x4);
	put32(fn, PCI_BAR0 + 4, (uint32_t)(dev->bar_base >> 32));
	writable(fn, PCI_BAR0, 4, ~(VIRTIO_PCI_BAR_SIZE - 1) & 0xfffffff0u);
	writable(fn, PCI_BAR0 + 4, 4, 0xffffffffu);
	put16(fn, 0x2c, PCI_VENDOR_ID_VIRTIO);
	put16(fn, 0x2e, 0x1100); /* subsystem: "virtual machine" */
	put8(fn, PCI_CAPABILITY_LIST, CAP_MSIX);
	writable(fn, PCI_INTERRUPT_LINE, 1, 0xff);

	/* MSI-X capability (PCI Local Bus 3.0 §6.8.2). */
	put8(fn, CAP_MSIX + 0, PCI_CAP_ID_MSIX);
	put8(fn, CAP_MSIX + 1, CAP_COMMON);
	put16(fn, CAP_MSIX + 2, VIRTIO_PCI_MAX_VECTORS - 1);
	writable(fn, CAP_MSIX + 2, 2, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASK);
	put32(fn, CAP_MSIX + 4, VIRTIO_PCI_MSIX_TABLE_OFFSET);
	put32(fn, CAP_MSIX + 8, VIRTIO_PCI_MSIX_PBA_OFFSET);

	virtio_cap(fn, CAP_COMMON, CAP_NOTIFY, 16, VIRTIO_PCI_CAP_COMMON_CFG,
		   VIRTIO_PCI_COMMON_OFFSET, VIRTIO_PCI_COMMON_SIZE);
	virtio_cap(fn, CAP_NOTIFY, CAP_ISR, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFFSET,
		   VIRTIO_PCI_MAX_QUEUES * VIRTIO_PCI_NOTIFY_MULTIPLIER);
	put32(fn, CAP_NOTIFY + 16, VIRTIO_PCI_NOTIFY_MULTIPLIER);
	virtio_cap(fn, CAP_ISR, CAP_DEVICE, 16, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET, 1);
	virtio_cap(fn, CAP_DEVICE, CAP_PCI_CFG, 16, VIRTIO_PCI_CAP_DEVICE_CFG,
		   VIRTIO_PCI_DEVICE_OFFSET, dev->config_size ? dev->config_size : 4);
	/* §4.1.4.9: the PCI configuration access capability; bar, offset,
	 * length and the data window are the driver's to write. */
	virtio_cap(fn, CAP_PCI_CFG, 0, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	writable(fn, CAP_PCI_CFG + 4, 1, 0xff);
	writable(fn, CAP_PCI_CFG + 8, 4, 0xffffffffu);
	writable(fn, CAP_PCI_CFG + 12, 4, 0xffffffffu);
	writable(fn, CAP_PCI_CFG + 16, 4, 0xffffffffu);
	fn->ops = &virtio_pci_config_ops;
	fn->opaque = dev;
}

int virtio_pci_init(struct virtio_pci_dev *dev, const char *name, uint16_t device_id,
		    uint16_t pci_class, uint64_t device_features, uint16_t num_queues,
		    uint16_t queue_size_max, const uint8_t *config, uint32_t config_size,
		    uint64_t bar_base, const struct virtio_pci_platform_ops *platform,
		    const struct virtio_pci_backend_ops *backend, void *opaque)
{
	if (!num_queues || num_queues > VIRTIO_PCI_MAX_QUEUES || config_size > VIRTIO_PCI_CONFIG_MAX ||
	    !queue_size_max || (queue_size_max & (queue_size_max - 1)) ||
	    (bar_base & (VIRTIO_PCI_BAR_SIZE - 1)))
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	pthread_mutex_init(&dev->lock, NULL);
	dev->name = name;
	dev->device_id = device_id;
	/* Modern only: VERSION_1 is mandatory (§6.1). */
	dev->device_features = device_features | (1ull << VIRTIO_F_VERSION_1);
	dev->num_queues = num_queues;
	dev->config_msix_vector = VIRTIO_PCI_NO_VECTOR;
	dev->bar_base = bar_base;
	if (config_size)
		memcpy(dev->config, config, config_size);
	dev->config_size = config_size;
	for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++) {
		dev->queues[i].kick_fd = dev->queues[i].call_fd = -1;
		dev->queues[i].msix_vector = VIRTIO_PCI_NO_VECTOR;
		dev->queues[i].size_max = i < num_queues ? queue_size_max : 0;
		dev->queues[i].size = dev->queues[i].size_max;
	}
	for (unsigned v = 0; v < VIRTIO_PCI_MAX_VECTORS; v++)
		dev->msix[v].control = MSIX_VECTOR_MASKED; /* masked at reset */
	dev->platform = platform;
	dev->backend = backend;
	dev->opaque = opaque;
	virtio_pci_build_config(dev, pci_class);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci_dev *dev)
{
	pthread_mutex_destroy(&dev->lock);
}

bool virtio_pci_vector_route(struct virtio_pci_dev *dev, unsigned vector, uint64_t *address,
			     uint32_t *data)
{
	const struct virtio_pci_msix_entry *e;

	if (vector >= VIRTIO_PCI_MAX_VECTORS || !dev->msix_enabled || dev->msix_function_mask)
		return false;
	e = &dev->msix[vector];
	if (e->control & MSIX_VECTOR_MASKED)
		return false;
	*address = ((uint64_t)e->address_hi << 32) | e->address_lo;
	*data = e->data;
	return true;
}

/* ---- device reset and status ------------------------------------------ */

static void virtio_pci_reset_locked(struct virtio_pci_dev *dev)
{
	dev->driver_features = 0;
	dev->device_feature_select = dev->driver_feature_select = 0;
	dev->queue_select = 0;
	dev->config_msix_vector = VIRTIO_PCI_NO_VECTOR;
	dev->isr = 0;
	dev->status = 0;
	/* a new driver reads the config afresh */
	dev->config_change_pending = dev->config_irq_pending = false;
	for (unsigned i = 0; i < dev->num_queues; i++) {
		struct virtio_pci_queue *q = &dev->queues[i];

		q->enabled = false;
		q->size = q->size_max;
		q->msix_vector = VIRTIO_PCI_NO_VECTOR;
		q->desc = q->driver = q->device = 0;
	}
}

/* §2.2.2 / §3.1.1: FEATURES_OK only sticks if we accept the subset. */
static bool virtio_pci_features_acceptable(const struct virtio_pci_dev *dev)
{
	if (dev->driver_features & ~dev->device_features)
		return false;
	return dev->driver_features & (1ull << VIRTIO_F_VERSION_1);
}

static bool virtio_pci_queues_valid(const struct virtio_pci_dev *dev)
{
	for (unsigned i = 0; i < dev->num_queues; i++) {
		const struct virtio_pci_queue *q = &dev->queues[i];

		if (!q->enabled)
			continue;
		/* §2.7: split queue sizes are powers of two. */
		if (!q->size || (q->size & (q->size - 1)) || q->size > q->size_max)
			return false;
		if ((q->desc & 15) || (q->driver & 1) || (q->device & 3))
			return false;
	}
	return true;
}

static void virtio_pci_write_status(struct virtio_pci_dev *dev, uint8_t status)
{
	uint8_t old = dev->status;

	if (status == 0) {
		if (dev->backend && dev->backend->status_changed &&
		    dev->backend->status_changed(dev, old, 0)) {
			dev->resetting = true; /* completed by virtio_pci_reset_complete */
			return;
		}
		virtio_pci_reset_locked(dev);
		return;
	}
	/* The driver may not clear bits without a reset (§2.1.2): bits it
	 * drops are kept, or clearing DRIVER_OK would unlock the queue
	 * registers of a running device and re-trigger its start. */
	status |= old;
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_pci_features_acceptable(dev))
		status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK) || !virtio_pci_queues_valid(dev)) {
			/* A driver that goes live without negotiating, or with bad
			 * queues, gets a device that needs a reset. */
			status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
			status |= VIRTIO_STATUS_NEEDS_RESET;
		}
	}
	/* A config change the driver was not told of while it initialized
	 * (it may have read the old capacity before DRIVER_OK): told now,
	 * with the interrupt it would have had (virtio 1.2 §4.1.5.4), once
	 * the driver set up its vectors and can take it.  Sent by
	 * virtio_pci_bar_access when the lock is dropped. */
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    dev->config_change_pending) {
		dev->config_change_pending = false;
		dev->isr |= 2;
		dev->config_irq_pending = true;
	}
	dev->status = status;
	if (status != old && dev->backend && dev->backend->status_changed)
		dev->backend->status_changed(dev, old, status);
}

void virtio_pci_reset_complete(struct virtio_pci_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->resetting) {
		virtio_pci_reset_locked(dev);
		dev->resetting = false;
	}
	pthread_mutex_unlock(&dev->lock);
}

/* The config vector cannot fire now: MSI-X on and the vector or the
 * whole function masked. */
static bool config_vector_masked(const struct virtio_pci_dev *dev)
{
	unsigned v = dev->config_msix_vector;

	return dev->msix_enabled && v < VIRTIO_PCI_MAX_VECTORS &&
	       (dev->msix_function_mask || (dev->msix[v].control & MSIX_VECTOR_MASKED));
}

/* With the lock held: whether to send the configuration interrupt now
 * (raise: a new one).  While its vector is masked it stays pending, as
 * MSI-X asks of a masked vector's message (PCI 3.0 MSI-X: the Pending
 * bit is set and the message sent once unmasked). */
static bool config_irq_take(struct virtio_pci_dev *dev, bool raise)
{
	if (raise)
		dev->config_irq_pending = true;
	if (!dev->config_irq_pending || config_vector_masked(dev))
		return false;
	dev->config_irq_pending = false;
	return true;
}

static void config_irq_send(struct virtio_pci_dev *dev, bool send)
{
	if (send && dev->platform && dev->platform->config_interrupt)
		dev->platform->config_interrupt(dev);
}

void virtio_pci_set_needs_reset(struct virtio_pci_dev *dev)
{
	bool send;

	pthread_mutex_lock(&dev->lock);
	dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	dev->isr |= 2; /* configuration change */
	dev->config_generation++;
	send = config_irq_take(dev, true);
	pthread_mutex_unlock(&dev->lock);
	config_irq_send(dev, send);
}

bool virtio_pci_config_changed(struct virtio_pci_dev *dev, const uint8_t *config, uint32_t size)
{
	bool changed, notify, send;

	pthread_mutex_lock(&dev->lock);
	if (size > dev->config_size)
		size = dev->config_size;
	changed = memcmp(dev->config, config, size) != 0;
	if (changed) {
		memcpy(dev->config, config, size);
		/* §4.1.4.3.1: config_generation changes whenever the device
		 * configuration does, so a driver reading several fields sees
		 * one state. */
		dev->config_generation++;
	}
	/* §4.1.5.4: a configuration change notification.  A driver still
	 * initializing may already have read the old config (§3.1.1 lets it
	 * read before FEATURES_OK; Linux's virtio_blk reads the capacity
	 * before DRIVER_OK): it hears of the change when it sets DRIVER_OK
	 * (virtio_pci_write_status), no notification being due before then
	 * (§3.1.2: nothing is sent to the driver before DRIVER_OK). */
	notify = changed && (dev->status & VIRTIO_STATUS_DRIVER_OK);
	if (changed && !notify)
		dev->config_change_pending = true;
	if (notify)
		dev->isr |= 2; /* §4.1.4.5: bit 1, device configuration change */
	send = config_irq_take(dev, notify);
	pthread_mutex_unlock(&dev->lock);
	config_irq_send(dev, send);
	return changed;
}

/* ---- common configuration --------------------------------------------- */

static struct virtio_pci_queue *selected_queue(struct virtio_pci_dev *dev)
{
	return dev->queue_select < dev->num_queues ? &dev->queues[dev->queue_select] : NULL;
}

static uint32_t common_read(struct virtio_pci_dev *dev, uint32_t off)
{
	struct virtio_pci_queue *q = selected_queue(dev);

	switch (off) {
	case COMMON_DFSELECT:
		return dev->device_feature_select;
	case COMMON_DF:
		return dev->device_feature_select < 2
			       ? (uint32_t)(dev->device_features >> (32 * dev->device_feature_select))
			       : 0;
	case COMMON_GFSELECT:
		return dev->driver_feature_select;
	case COMMON_GF:
		return dev->driver_feature_select < 2
			       ? (uint32_t)(dev->driver_features >> (32 * dev->driver_feature_select))
			       : 0;
	case COMMON_MSIX:
		return dev->config_msix_vector;
	case COMMON_NUMQ:
		return dev->num_queues;
	case COMMON_STATUS:
		return dev->status;
	case COMMON_CFGGENERATION:
		return dev->config_generation;
	case COMMON_Q_SELECT:
		return dev->queue_select;
	case COMMON_Q_SIZE:
		return q ? q->size : 0; /* §4.1.4.3: 0 = queue unavailable */
	case COMMON_Q_MSIX:
		return q ? q->msix_vector : VIRTIO_PCI_NO_VECTOR;
	case COMMON_Q_ENABLE:
		return q ? q->enabled : 0;
	case COMMON_Q_NOFF:
		return dev->queue_select;
	case COMMON_Q_DESCLO:
		return q ? (uint32_t)q->desc : 0;
	case COMMON_Q_DESCHI:
		return q ? (uint32_t)(q->desc >> 32) : 0;
	case COMMON_Q_AVAILLO:
		return q ? (uint32_t)q->driver : 0;
	case COMMON_Q_AVAILHI:
		return q ? (uint32_t)(q->driver >> 32) : 0;
	case COMMON_Q_USEDLO:
		return q ? (uint32_t)q->device : 0;
	case COMMON_Q_USEDHI:
		return q ? (uint32_t)(q->device >> 32) : 0;
	default:
		return 0;
	}
}

static void set_lo(uint64_t *field, uint32_t v)
{
	*field = (*field & 0xffffffff00000000ull) | v;
}

static void set_hi(uint64_t *field, uint32_t v)
{
	*field = (*field & 0xffffffffull) | ((uint64_t)v << 32);
}

/* Returns the vector whose binding changed, or -1. */
static int common_write(struct virtio_pci_dev *dev, uint32_t off, uint32_t v)
{
	struct virtio_pci_queue *q = selected_queue(dev);
	/* §4.1.4.3.2: queue fields may not change while the queue is enabled
	 * or after DRIVER_OK. */
	bool q_locked = !q || q->enabled || (dev->status & VIRTIO_STATUS_DRIVER_OK);
	bool features_locked = dev->status & VIRTIO_STATUS_FEATURES_OK;

	switch (off) {
	case COMMON_DFSELECT:
		dev->device_feature_select = v;
		break;
	case COMMON_GFSELECT:
		dev->driver_feature_select = v;
		break;
	case COMMON_GF:
		if (!features_locked && dev->driver_feature_select < 2) {
			unsigned shift = 32 * dev->driver_feature_select;

			dev->driver_features = (dev->driver_features & ~(0xffffffffull << shift)) |
					       ((uint64_t)v << shift);
		}
		break;
	case COMMON_MSIX:
		/* §4.1.5.1.2: NO_VECTOR on read-back tells the driver it failed. */
		dev->config_msix_vector =
			(uint16_t)(v < VIRTIO_PCI_MAX_VECTORS ? v : VIRTIO_PCI_NO_VECTOR);
		break;
	case COMMON_STATUS:
		virtio_pci_write_status(dev, (uint8_t)v);
		break;
	case COMMON_Q_SELECT:
		dev->queue_select = (uint16_t)v;
		break;
	case COMMON_Q_SIZE:
		/* §4.1.4.3: the driver may only shrink the queue; a larger size
		 * is ignored so the register never reads back above the maximum
		 * (power of two: checked at DRIVER_OK). */
		if (!q_locked && v <= q->size_max)
			q->size = (uint16_t)v;
		break;
	case COMMON_Q_MSIX:
		if (q && !(dev->status & VIRTIO_STATUS_DRIVER_OK)) {
			q->msix_vector =
			    (uint16_t)(v < VIRTIO_PCI_MAX_VECTORS ? v : VIRTIO_PCI_NO_VECTOR);
			return dev->queue_select + VIRTIO_PCI_MAX_VECTORS; /* queue rebinding */
		}
		break;
	case COMMON_Q_ENABLE:
		/* §4.1.4.3.2: the driver MUST NOT write 0; we ignore it. */
		if (q && v == 1 && !(dev->status & VIRTIO_STATUS_DRIVER_OK))
			q->enabled = true;
		break;
	case COMMON_Q_DESCLO:
		if (!q_locked)
			set_lo(&q->desc, v);
		break;
	case COMMON_Q_DESCHI:
		if (!q_locked)
			set_hi(&q->desc, v);
		break;
	case COMMON_Q_AVAILLO:
		if (!q_locked)
			set_lo(&q->driver, v);
		break;
	case COMMON_Q_AVAILHI:
		if (!q_locked)
			set_hi(&q->driver, v);
		break;
	case COMMON_Q_USEDLO:
		if (!q_locked)
			set_lo(&q->device, v);
		break;
	case COMMON_Q_USEDHI:
		if (!q_locked)
			set_hi(&q->device, v);
		break;
	default: /* read-only fields and reserved space */
		break;
	}
	return -1;
}

/* Registers have natural widths; other access sizes read/write nothing
 * useful but never fault (§4.1.3.1: the driver uses natural widths). */
static unsigned common_width(uint32_t off)
{
	if (off == COMMON_STATUS || off == COMMON_CFGGENERATION)
		return 1;
	if (off <= COMMON_GF || (off >= COMMON_Q_DESCLO && off <= COMMON_Q_USEDHI))
		return 4;
	return 2;
}

static void common_access(struct virtio_pci_dev *dev, uint32_t off, uint8_t *data, uint32_t len,
			  bool is_write, int *rebind)
{
	uint32_t v = 0;

	if (off >= VIRTIO_PCI_COMMON_SIZE || len != common_width(off)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write && dev->resetting)
		return; /* the driver must wait for status 0 first */
	if (is_write) {
		memcpy(&v, data, len);
		*rebind = common_write(dev, off, v);
	} else {
		v = common_read(dev, off);
		memcpy(data, &v, len);
	}
}

/* ---- MSI-X table --------------------------------------------------------- */

static int msix_table_access(struct virtio_pci_dev *dev, uint32_t off, uint8_t *data, uint32_t len,
			     bool is_write)
{
	unsigned vector = off / 16, field = (off % 16) / 4;
	uint32_t *reg;

	/* PCI 3.0 §6.8.2.9: dword or qword aligned accesses only. */
	if (vector >= VIRTIO_PCI_MAX_VECTORS || (off & 3) || (len != 4 && len != 8)) {
		if (!is_write)
			memset(data, 0xff, len);
		return -1;
	}
	for (uint32_t done = 0; done < len; done += 4, field++) {
		if (field > 3)
			break;
		reg = &(&dev->msix[vector].address_lo)[field];
		if (!is_write) {
			memcpy(data + done, reg, 4);
			continue;
		}
		memcpy(reg, data + done, 4);
		if (field == 3)
			*reg &= MSIX_VECTOR_MASKED;
	}
	return is_write ? (int)vector : -1;
}

static void msix_pba_read(struct virtio_pci_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	uint64_t pending = 0;

	/* A vector is pending when its call fd was signalled while the irqfd
	 * was detached (masked): peek without consuming. */
	for (unsigned i = 0; i < dev->num_queues; i++) {
		struct virtio_pci_queue *q = &dev->queues[i];
		struct pollfd pfd = {.fd = q->call_fd, .events = POLLIN};

		if (q->call_fd >= 0 && q->msix_vector < VIRTIO_PCI_MAX_VECTORS &&
		    poll(&pfd, 1, 0) == 1)
			pending |= 1ull << q->msix_vector;
	}
	if (dev->config_irq_pending && dev->config_msix_vector < VIRTIO_PCI_MAX_VECTORS)
		pending |= 1ull << dev->config_msix_vector;
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 8 ? (uint8_t)(pending >> (8 * (off + i))) : 0;
}

/* ---- BAR 0 -------------------------------------------------------------- */

static void notify_rebind(struct virtio_pci_dev *dev, int rebind)
{
	if (rebind < 0 || !dev->platform || !dev->platform->vector_changed)
		return;
	dev->platform->vector_changed(dev, (unsigned)rebind);
}

void virtio_pci_bar_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			   bool is_write)
{
	struct virtio_pci_dev *dev = opaque;
	int rebind = -1;
	bool send;
	uint32_t off;

	pthread_mutex_lock(&dev->lock);
	if (offset < VIRTIO_PCI_ISR_OFFSET) {
		common_access(dev, (uint32_t)offset, data, len, is_write, &rebind);
	} else if (offset == VIRTIO_PCI_ISR_OFFSET) {
		if (!is_write) {
			/* §4.1.4.5: reading ISR clears it. */
			memset(data, 0, len);
			data[0] = dev->isr;
			dev->isr = 0;
		}
	} else if (offset >= VIRTIO_PCI_DEVICE_OFFSET && offset < VIRTIO_PCI_NOTIFY_OFFSET) {
		off = (uint32_t)(offset - VIRTIO_PCI_DEVICE_OFFSET);
		if (off >= dev->config_size || len > dev->config_size - off) {
			if (!is_write)
				memset(data, 0, len); /* out of range: nothing there */
		} else if (is_write) {
			/* The config spaces isola serves are read-only to the
			 * driver (blk without CONFIG_WCE, rng has none): a write
			 * changes nothing, so what the device reported stays true. */
			if (dev->backend && dev->backend->config_written)
				dev->backend->config_written(dev, off, len);
		} else {
			memcpy(data, dev->config + off, len);
		}
	} else if (offset >= VIRTIO_PCI_NOTIFY_OFFSET && offset < VIRTIO_PCI_MSIX_TABLE_OFFSET) {
		/* Only reached when no ioeventfd matched (e.g. before the
		 * backend is connected): the kick is dropped; the backend polls
		 * the ring when it starts. */
		if (!is_write)
			memset(data, 0, len);
	} else if (offset >= VIRTIO_PCI_MSIX_TABLE_OFFSET && offset < VIRTIO_PCI_MSIX_PBA_OFFSET) {
		rebind = msix_table_access(dev, (uint32_t)(offset - VIRTIO_PCI_MSIX_TABLE_OFFSET), data,
					   len, is_write);
	} else if (offset >= VIRTIO_PCI_MSIX_PBA_OFFSET && !is_write) {
		msix_pba_read(dev, (uint32_t)(offset - VIRTIO_PCI_MSIX_PBA_OFFSET), data, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	/* DRIVER_OK with a config change pending, an unmasked config vector
	 * (or another one chosen) with an interrupt pending */
	send = is_write && config_irq_take(dev, false);
	pthread_mutex_unlock(&dev->lock);
	notify_rebind(dev, rebind);
	config_irq_send(dev, send);
}

/* ---- PCI config hooks ----------------------------------------------------- */

static uint64_t virtio_pci_decoded_bar(const struct virtio_pci_dev *dev)
{
	const struct pci_function *fn = &dev->fn;
	uint16_t command;
	uint64_t base;

	memcpy(&command, fn->config + PCI_COMMAND, 2);
	if (!(command & PCI_COMMAND_MEMORY))
		return 0;
	base = ((uint64_t)get32(fn, PCI_BAR0 + 4) << 32) | (get32(fn, PCI_BAR0) & ~0xfull);
	/* A BAR being sized (all ones) or parked at 0 decodes nothing. */
	if (base == 0 || base + VIRTIO_PCI_BAR_SIZE < base)
		return 0;
	return base;
}

static void virtio_pci_config_write(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	struct virtio_pci_dev *dev = fn->opaque;
	uint64_t old_base, new_base;
	bool msix_changed = false, send = false;

	if (offset < CAP_MSIX + 4 && offset + len > CAP_MSIX + 2) {
		uint16_t control;

		memcpy(&control, fn->config + CAP_MSIX + 2, 2);
		pthread_mutex_lock(&dev->lock);
		msix_changed = dev->msix_enabled != !!(control & MSIX_CONTROL_ENABLE) ||
			       dev->msix_function_mask != !!(control & MSIX_CONTROL_MASK);
		dev->msix_enabled = control & MSIX_CONTROL_ENABLE;
		dev->msix_function_mask = control & MSIX_CONTROL_MASK;
		send = config_irq_take(dev, false); /* the function unmasked */
		pthread_mutex_unlock(&dev->lock);
	}
	if (msix_changed && dev->platform && dev->platform->vector_changed)
		for (unsigned v = 0; v < VIRTIO_PCI_MAX_VECTORS; v++)
			dev->platform->vector_changed(dev, v);
	config_irq_send(dev, send);

	if (offset < PCI_BAR0 + 8 && offset + len > PCI_COMMAND) {
		pthread_mutex_lock(&dev->lock);
		old_base = dev->bar_base;
		new_base = virtio_pci_decoded_bar(dev);
		dev->bar_base = new_base;
		pthread_mutex_unlock(&dev->lock);
		if (old_base != new_base && dev->platform && dev->platform->bar_moved)
			dev->platform->bar_moved(dev, old_base, new_base);
	}
	if (offset + len > CAP_PCI_CFG + 16 && offset < CAP_PCI_CFG + 20) {
		uint32_t bar_off = get32(fn, CAP_PCI_CFG + 8), blen = get32(fn, CAP_PCI_CFG + 12);

		/* §4.1.4.9: a write to pci_cfg_data writes `length` bytes at
		 * `offset` of the BAR named by `bar`. */
		if (fn->config[CAP_PCI_CFG + 4] == 0 && (blen == 1 || blen == 2 || blen == 4) &&
		    bar_off < VIRTIO_PCI_BAR_SIZE && bar_off % blen == 0)
			virtio_pci_bar_access(dev, bar_off, fn->config + CAP_PCI_CFG + 16, blen, true);
	}
}

static void virtio_pci_config_read(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	struct virtio_pci_dev *dev = fn->opaque;

	if (offset + len > CAP_PCI_CFG + 16 && offset < CAP_PCI_CFG + 20) {
		uint32_t bar_off = get32(fn, CAP_PCI_CFG + 8), blen = get32(fn, CAP_PCI_CFG + 12);

		memset(fn->config + CAP_PCI_CFG + 16, 0, 4);
		if (fn->config[CAP_PCI_CFG + 4] == 0 && (blen == 1 || blen == 2 || blen == 4) &&
		    bar_off < VIRTIO_PCI_BAR_SIZE && bar_off % blen == 0)
			virtio_pci_bar_access(dev, bar_off, fn->config + CAP_PCI_CFG + 16, blen, false);
	}
}

static const struct pci_function_ops virtio_pci_config_ops = {
	.config_write = virtio_pci_config_write,
	.config_read = virtio_pci_config_read,
};

/* ---- snapshot ------------------------------------------------------------ */

void virtio_pci_save(struct virtio_pci_dev *dev, struct virtio_pci_saved *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dev->lock);
	out->device_id = dev->device_id;
	out->num_queues = dev->num_queues;
	out->config_msix_vector = dev->config_msix_vector;
	out->queue_select = dev->queue_select;
	out->status = dev->status;
	out->config_generation = dev->config_generation;
	out->isr = dev->isr;
	out->flags = (dev->config_change_pending ? VIRTIO_PCI_SAVED_CONFIG_CHANGE_PENDING : 0) |
		     (dev->config_irq_pending ? VIRTIO_PCI_SAVED_CONFIG_IRQ_PENDING : 0);
	out->config_size = dev->config_size;
	out->device_feature_select = dev->device_feature_select;
	out->driver_feature_select = dev->driver_feature_select;
	out->device_features = dev->device_features;
	out->driver_features = dev->driver_features;
	for (unsigned i = 0; i < dev->num_queues; i++) {
		const struct virtio_pci_queue *q = &dev->queues[i];

		out->queues[i] = (struct virtio_pci_saved_queue){
		    .size = q->size,
		    .msix_vector = q->msix_vector,
		    .enabled = q->enabled,
		    .desc = q->desc,
		    .driver = q->driver,
		    .device = q->device,
		};
	}
	memcpy(out->msix, dev->msix, sizeof(out->msix));
	memcpy(out->config, dev->config, sizeof(out->config));
	memcpy(out->pci_config, dev->fn.config, sizeof(out->pci_config));
	pthread_mutex_unlock(&dev->lock);
}

static bool vector_ok(uint16_t v)
{
	return v < VIRTIO_PCI_MAX_VECTORS || v == VIRTIO_PCI_NO_VECTOR;
}

/* Whether in could be this transport's state (virtio 1.2 §4.1.4.3: what
 * the driver may write); else a sentence in err. */
static int virtio_pci_check_saved(const struct virtio_pci_dev *dev,
				  const struct virtio_pci_saved *in, char *err, size_t errlen)
{
	const uint8_t known = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |
			      VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED;

	if (in->device_id != dev->device_id || in->num_queues != dev->num_queues ||
	    in->config_size != dev->config_size) {
		snprintf(err, errlen,
			 "it was a virtio device of type %u with %u queues and %u config bytes; "
			 "this one is type %u with %u queues and %u bytes",
			 in->device_id, in->num_queues, in->config_size, dev->device_id,
			 dev->num_queues, dev->config_size);
		return -EINVAL;
	}
	if (in->driver_features & ~dev->device_features) {
		snprintf(err, errlen,
			 "the driver had features 0x%llx, and this back-end offers only 0x%llx",
			 (unsigned long long)in->driver_features,
			 (unsigned long long)dev->device_features);
		return -EINVAL;
	}
	if ((in->status & ~known) ||
	    in->flags &
		~(VIRTIO_PCI_SAVED_CONFIG_CHANGE_PENDING | VIRTIO_PCI_SAVED_CONFIG_IRQ_PENDING) ||
	    !vector_ok(in->config_msix_vector)) {
		snprintf(err, errlen, "status 0x%x, flags 0x%x or config vector %u is invalid",
			 in->status, in->flags, in->config_msix_vector);
		return -EINVAL;
	}
	for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++) {
		const struct virtio_pci_saved_queue *q = &in->queues[i];
		bool bad;

		if (i >= dev->num_queues) {
			static const struct virtio_pci_saved_queue none;

			if (memcmp(q, &none, sizeof(none))) {
				snprintf(err, errlen, "queue %u is set but the device has %u", i,
					 dev->num_queues);
				return -EINVAL;
			}
			continue;
		}
		/* §2.7: split queue sizes are powers of two; §2.7.2 alignments */
		bad = q->size > dev->queues[i].size_max || q->enabled > 1 ||
		      !vector_ok(q->msix_vector) || q->reserved[0] || q->reserved[1] ||
		      q->reserved[2];
		if (q->enabled)
			bad = bad || !q->size || (q->size & (q->size - 1)) || (q->desc & 15) ||
			      (q->driver & 1) || (q->device & 3);
		if (bad) {
			snprintf(err, errlen,
				 "queue %u's size %u, vector %u or ring addresses are "
				 "invalid",
				 i, q->size, q->msix_vector);
			return -EINVAL;
		}
	}
	for (unsigned v = 0; v < VIRTIO_PCI_MAX_VECTORS; v++)
		if (in->msix[v].control & ~MSIX_VECTOR_MASKED) {
			snprintf(err, errlen, "MSI-X vector %u's control 0x%x is invalid", v,
				 in->msix[v].control);
			return -EINVAL;
		}
	return 0;
}

int virtio_pci_load(struct virtio_pci_dev *dev, const struct virtio_pci_saved *in, char *err,
		    size_t errlen)
{
	struct pci_function *fn = &dev->fn;
	int ret = virtio_pci_check_saved(dev, in, err, errlen);

	if (ret)
		return ret;
	pthread_mutex_lock(&dev->lock);
	dev->config_msix_vector = in->config_msix_vector;
	dev->queue_select = in->queue_select;
	dev->status = in->status;
	dev->config_generation = in->config_generation;
	dev->isr = in->isr;
	dev->config_change_pending = in->flags & VIRTIO_PCI_SAVED_CONFIG_CHANGE_PENDING;
	dev->config_irq_pending = in->flags & VIRTIO_PCI_SAVED_CONFIG_IRQ_PENDING;
	dev->device_feature_select = in->device_feature_select;
	dev->driver_feature_select = in->driver_feature_select;
	dev->driver_features = in->driver_features;
	for (unsigned i = 0; i < dev->num_queues; i++) {
		struct virtio_pci_queue *q = &dev->queues[i];
		const struct virtio_pci_saved_queue *s = &in->queues[i];

		q->size = s->size;
		q->msix_vector = s->msix_vector;
		q->enabled = s->enabled;
		q->desc = s->desc;
		q->driver = s->driver;
		q->device = s->device;
	}
	memcpy(dev->msix, in->msix, sizeof(dev->msix));
	/* the device config the driver read (a back-end now serving another
	 * config is the caller's to announce, as on a handover) */
	memcpy(dev->config, in->config, dev->config_size);
	/* only what the guest could have written (fn->write_mask) */
	for (unsigned i = 0; i < VIRTIO_PCI_SAVED_PCI_CONFIG; i++)
		fn->config[i] = (uint8_t)((in->pci_config[i] & fn->write_mask[i]) |
					  (fn->config[i] & ~fn->write_mask[i]));
	pthread_mutex_unlock(&dev->lock);
	/* as the guest's writes did: MSI-X enable and mask, then the command
	 * register and BAR 0 (a BAR the guest moved moves here too) */
	virtio_pci_config_write(fn, CAP_MSIX + 2, 2);
	virtio_pci_config_write(fn, PCI_COMMAND, 2);
	return 0;
}
