// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the PCI host (devices/pci.c) with one virtio-pci
 * function plugged (devices/virtio_pci.c): a hostile guest pokes the config
 * mechanism #1 ports, the ECAM window and BAR 0 (common cfg, ISR, device
 * cfg, notify, MSI-X table and PBA) with fuzzed offsets and widths, moves the
 * BAR, toggles MSI-X, and writes status (resets included) while the back-end
 * is still finishing an earlier reset.  The platform and back-end ops are
 * stubs that record calls and never block.  After every operation:
 *   - FEATURES_OK is set only if the driver's features are a subset of the
 *     device's (virtio 1.2 §2.2.2), DRIVER_OK only with FEATURES_OK;
 *   - status bits, once set, are cleared only by a reset (§2.1.2);
 *   - every queue size (as read back) is <= its maximum;
 *   - the vectors are NO_VECTOR or exist, and the BAR the platform was last
 *     told about is the one the device decodes;
 * and ASan/UBSan catch the rest.  Build and run: `make fuzz-build`, then
 *   build/fuzz/fuzz_pci -max_total_time=60 tests/fuzz/corpus/pci
 *
 * Input: an 8-byte header, then operations (first byte: opcode).
 *   0  num_queues - 1 (& 15)       1  log2 queue_size_max (& 15)
 *   2  device config size (0..255) 3  PCI slot (1..31)
 *   4..7  extra device feature bits (low 32)
 * Operations are listed at `enum op`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/virtio_pci.h"

#define HEADER 8
#define BAR_START 0xc0000000ull
#define PCI_BAR0 0x10
#define CAP_MSIX 0x40
#define CAP_PCI_CFG 0x90
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum op {
	OP_PORT_ADDRESS,  /* u8 devfn, u8 reg: CONFIG_ADDRESS = enable|devfn|reg */
	OP_PORT_RAW,      /* u8 offset (& 7), u8 len code, u32 value, u8 write */
	OP_ECAM,          /* u32 offset (& 0x1fffff), u8 len code, u64 value, u8 write */
	OP_BAR,           /* u8 region, u16 offset, u8 len code, u64 value, u8 write */
	OP_CONFIG,        /* u8 reg, u8 len code, u32 value: config write to our slot */
	OP_MOVE_BAR,      /* u32 lo, u32 hi */
	OP_MSIX_CONTROL,  /* u16 control */
	OP_STATUS,        /* u8 status */
	OP_FEATURES,      /* u8 select, u32 value: driver features */
	OP_QUEUE,         /* u8 queue, u16 size, u8 enable */
	OP_RESET_COMPLETE,
	OP_NEEDS_RESET,
	OP_DEFER_RESET, /* u8: the back-end's next reset completes later */
	OP_PCI_CFG_WINDOW, /* u8 bar, u32 offset, u32 length, u32 data, u8 write */
	OP_COUNT
};

static const uint32_t lens[4] = {1, 2, 4, 8};

struct stream {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct stream *s, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && s->left; i++, s->left--, s->p++)
		v |= (uint64_t)*s->p << (8 * i);
	return v;
}

/* What the stubs saw. */
static struct {
	struct pci_host host;
	struct virtio_pci_dev dev;
	unsigned slot;
	uint64_t mapped_base; /* what bar_moved last said */
	bool defer_reset;
	unsigned config_interrupts, vector_changes, config_writes;
} fz;

static void stub_bar_moved(struct virtio_pci_dev *dev, uint64_t old_base, uint64_t new_base)
{
	if (dev != &fz.dev || old_base != fz.mapped_base || old_base == new_base)
		abort(); /* told about a move that is not one */
	fz.mapped_base = new_base;
}

static void stub_vector_changed(struct virtio_pci_dev *dev, unsigned vector)
{
	uint64_t address;
	uint32_t data;

	fz.vector_changes++;
	/* What core/ does: look the route up again. */
	if (vector < VIRTIO_PCI_MAX_VECTORS)
		(void)virtio_pci_vector_route(dev, vector, &address, &data);
	else if (vector - VIRTIO_PCI_MAX_VECTORS >= dev->num_queues)
		abort(); /* a queue rebinding for a queue that does not exist */
}

static void stub_config_interrupt(struct virtio_pci_dev *dev)
{
	(void)dev;
	fz.config_interrupts++;
}

static bool stub_status_changed(struct virtio_pci_dev *dev, uint8_t old_status, uint8_t new_status)
{
	(void)old_status;
	if ((new_status & VIRTIO_STATUS_FEATURES_OK) &&
	    (dev->driver_features & ~dev->device_features))
		abort();
	if (new_status == 0 && fz.defer_reset) {
		fz.defer_reset = false;
		return true;
	}
	return false;
}

static void stub_config_written(struct virtio_pci_dev *dev, uint32_t offset, uint32_t len)
{
	if (offset >= dev->config_size || len > dev->config_size - offset)
		abort();
	fz.config_writes++;
}

static const struct virtio_pci_platform_ops platform_ops = {
	.bar_moved = stub_bar_moved,
	.vector_changed = stub_vector_changed,
	.config_interrupt = stub_config_interrupt,
};

static const struct virtio_pci_backend_ops backend_ops = {
	.status_changed = stub_status_changed,
	.config_written = stub_config_written,
};

/* A bus access: cut to the range like lib/bus.c, fill reads with ones. */
static void port_access(uint64_t offset, uint8_t *buf, uint32_t len, bool is_write)
{
	uint32_t room = (uint32_t)(8 - offset);

	if (!is_write)
		memset(buf, 0xff, len);
	pci_host_port_access(&fz.host, offset, buf, len < room ? len : room, is_write);
}

static void bar_access(uint64_t offset, uint8_t *buf, uint32_t len, bool is_write)
{
	uint64_t room = VIRTIO_PCI_BAR_SIZE - offset;

	if (!is_write)
		memset(buf, 0xff, len);
	if (!fz.mapped_base)
		return; /* not decoding: nobody claims the access */
	virtio_pci_bar_access(&fz.dev, offset, buf, len < room ? len : (uint32_t)room, is_write);
}

static void config_write(uint32_t reg, uint32_t len, uint64_t value)
{
	uint8_t buf[8];

	memcpy(buf, &value, sizeof(buf));
	pci_host_config_access(&fz.host, fz.slot << 3, reg, buf, len, true);
}

static void common_write(uint32_t off, uint32_t len, uint32_t value)
{
	uint8_t buf[4];

	memcpy(buf, &value, sizeof(buf));
	bar_access(off, buf, len, true);
}

static uint32_t common_read(uint32_t off, uint32_t len)
{
	uint32_t value = 0;

	bar_access(off, (uint8_t *)&value, len, false);
	return value;
}

static void check_invariants(uint8_t status_before)
{
	struct virtio_pci_dev *dev = &fz.dev;
	uint8_t status = dev->status;

	if ((status & VIRTIO_STATUS_FEATURES_OK) && (dev->driver_features & ~dev->device_features))
		abort();
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
		abort();
	/* Only a reset (to 0) clears status bits. */
	if (status && (status_before & ~status))
		abort();
	for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++) {
		const struct virtio_pci_queue *q = &dev->queues[i];

		if (q->size > q->size_max)
			abort();
		if (q->msix_vector != VIRTIO_PCI_NO_VECTOR && q->msix_vector >= VIRTIO_PCI_MAX_VECTORS)
			abort();
		if (i >= dev->num_queues && (q->size || q->enabled))
			abort();
	}
	if (dev->config_msix_vector != VIRTIO_PCI_NO_VECTOR &&
	    dev->config_msix_vector >= VIRTIO_PCI_MAX_VECTORS)
		abort();
	if (dev->bar_base != fz.mapped_base)
		abort();
}

/* The queue size as the driver reads it back, <= the maximum. */
static void check_queue_readback(void)
{
	uint16_t select = fz.dev.queue_select;
	uint32_t size = common_read(COMMON_Q_SIZE, 2);

	if (!fz.mapped_base)
		return;
	if (select < fz.dev.num_queues ? size > fz.dev.queues[select].size_max : size != 0)
		abort();
}

static void run_op(struct stream *s)
{
	uint8_t buf[8];
	uint64_t value;
	uint32_t len, reg;
	unsigned op = (unsigned)take(s, 1) % OP_COUNT;
	bool is_write;

	switch (op) {
	case OP_PORT_ADDRESS: {
		uint32_t address = 0x80000000u | (uint32_t)take(s, 1) << 8 | (uint32_t)take(s, 1);

		memcpy(buf, &address, 4);
		port_access(0, buf, 4, true);
		break;
	}
	case OP_PORT_RAW:
		reg = (uint32_t)take(s, 1) & 7;
		len = lens[take(s, 1) % 3]; /* ports: 1, 2 or 4 bytes */
		value = take(s, 4);
		is_write = take(s, 1) & 1;
		memcpy(buf, &value, 8);
		port_access(reg, buf, len, is_write);
		break;
	case OP_ECAM:
		value = take(s, 4) & 0x1fffff;
		len = lens[take(s, 1) & 3];
		is_write = take(s, 1) & 1;
		{
			uint64_t v = take(s, 8);

			memcpy(buf, &v, 8);
		}
		if (!is_write)
			memset(buf, 0xff, len);
		pci_host_ecam_access(&fz.host, value, buf, len, is_write);
		break;
	case OP_BAR: {
		static const uint32_t regions[8] = {
		    VIRTIO_PCI_COMMON_OFFSET,     VIRTIO_PCI_ISR_OFFSET,
		    VIRTIO_PCI_DEVICE_OFFSET,     VIRTIO_PCI_NOTIFY_OFFSET,
		    VIRTIO_PCI_MSIX_TABLE_OFFSET, VIRTIO_PCI_MSIX_PBA_OFFSET,
		    0x6000,                       VIRTIO_PCI_BAR_SIZE - 0x100};
		uint64_t offset = regions[take(s, 1) & 7] + (take(s, 2) & 0x1ff);

		len = lens[take(s, 1) & 3];
		value = take(s, 8);
		is_write = take(s, 1) & 1;
		if (offset >= VIRTIO_PCI_BAR_SIZE)
			break;
		memcpy(buf, &value, 8);
		bar_access(offset, buf, len, is_write);
		if (!is_write && offset == COMMON_Q_SIZE && len == 2) {
			uint16_t size;

			memcpy(&size, buf, 2);
			if (fz.mapped_base && fz.dev.queue_select < fz.dev.num_queues &&
			    size > fz.dev.queues[fz.dev.queue_select].size_max)
				abort();
		}
		break;
	}
	case OP_CONFIG:
		reg = (uint32_t)take(s, 1);
		len = lens[take(s, 1) % 3];
		value = take(s, 4);
		config_write(reg, len, value);
		break;
	case OP_MOVE_BAR:
		config_write(PCI_BAR0, 4, take(s, 4));
		config_write(PCI_BAR0 + 4, 4, take(s, 4));
		break;
	case OP_MSIX_CONTROL:
		config_write(CAP_MSIX + 2, 2, take(s, 2));
		break;
	case OP_STATUS:
		common_write(COMMON_STATUS, 1, (uint32_t)take(s, 1));
		break;
	case OP_FEATURES:
		common_write(0x08, 4, (uint32_t)take(s, 1) & 3);
		common_write(0x0c, 4, (uint32_t)take(s, 4));
		break;
	case OP_QUEUE:
		common_write(COMMON_Q_SELECT, 2, (uint32_t)take(s, 1) & 31);
		common_write(COMMON_Q_SIZE, 2, (uint32_t)take(s, 2));
		if (take(s, 1) & 1)
			common_write(0x1c, 2, 1);
		check_queue_readback();
		break;
	case OP_RESET_COMPLETE:
		virtio_pci_reset_complete(&fz.dev);
		break;
	case OP_NEEDS_RESET:
		virtio_pci_set_needs_reset(&fz.dev);
		break;
	case OP_DEFER_RESET:
		fz.defer_reset = take(s, 1) & 1;
		break;
	case OP_PCI_CFG_WINDOW: {
		uint8_t bar = (uint8_t)(take(s, 1) & 1 ? 0 : 1);
		uint32_t offset = (uint32_t)take(s, 2), length = lens[take(s, 1) & 3];
		uint32_t window = (uint32_t)take(s, 4);

		is_write = take(s, 1) & 1;
		config_write(CAP_PCI_CFG + 4, 1, bar);
		config_write(CAP_PCI_CFG + 8, 4, offset);
		config_write(CAP_PCI_CFG + 12, 4, length);
		if (is_write) {
			config_write(CAP_PCI_CFG + 16, 4, window);
		} else {
			memset(buf, 0, sizeof(buf));
			pci_host_config_access(&fz.host, fz.slot << 3, CAP_PCI_CFG + 16, buf, 4, false);
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s = {data, size};
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	uint16_t num_queues, size_max;
	uint32_t config_size;
	uint64_t features;

	if (size < HEADER || size > 4096)
		return 0;
	num_queues = (uint16_t)((take(&s, 1) & 15) + 1);
	size_max = (uint16_t)(1u << (take(&s, 1) & 15));
	config_size = (uint32_t)take(&s, 1);
	memset(&fz, 0, sizeof(fz));
	fz.slot = (unsigned)(take(&s, 1) % 31) + 1;
	features = take(&s, 4) | (1ull << VIRTIO_F_EVENT_IDX);
	for (unsigned i = 0; i < sizeof(config); i++)
		config[i] = (uint8_t)i;

	pci_host_init(&fz.host);
	if (virtio_pci_init(&fz.dev, "fuzz", 2, 0x0180, features, num_queues, size_max, config,
			    config_size, BAR_START, &platform_ops, &backend_ops, NULL))
		abort();
	fz.mapped_base = BAR_START;
	if (pci_host_plug(&fz.host, fz.slot, &fz.dev.fn))
		abort();
	while (s.left) {
		uint8_t status_before = fz.dev.status;

		run_op(&s);
		check_invariants(status_before);
	}
	virtio_pci_destroy(&fz.dev);
	pci_host_destroy(&fz.host);
	return 0;
}
