// SPDX-License-Identifier: MIT
/*
 * Unit tests for devices/virtio_pci.c: MSI-X per-vector masking and the
 * pending bits (PCI Local Bus 3.0 §6.8.2.8-9, virtio 1.2 §4.1.4.5).
 *
 * isola delivers queue interrupts through KVM irqfds: the platform binds a
 * queue's call eventfd to its vector's route only while
 * virtio_pci_vector_route() says the vector is live, and a call signalled
 * while it is masked stays in the eventfd, where the PBA read finds it.  The
 * fake platform below does what core/ and KVM do: on vector_changed it asks
 * for the route again and, when live, "binds" the call fd, which delivers a
 * call already pending (KVM_IRQFD injects on assign) and every later one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pci.h"
#include "devices/virtio_pci.h"

#define BAR_BASE 0xc0000000ull
#define SLOT 3
#define CAP_MSIX 0x40
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_MASK 0x4000
#define COMMON_MSIX 0x10
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_MSIX 0x1a
#define VECTOR 1
#define MSI_ADDRESS 0xfee00000ull
#define MSI_DATA 0x4041

struct fixture {
	struct pci_host host;
	struct virtio_pci_dev dev;
	int call;   /* queue 0's call eventfd */
	bool bound; /* the "irqfd" of queue 0 is assigned */
	unsigned delivered;
	unsigned config_delivered; /* configuration interrupts sent */
	uint64_t last_address;
	uint32_t last_data;
};

/* The irqfd fires: consume the eventfd, the MSI goes to the guest. */
static void deliver_pending(struct fixture *f)
{
	uint64_t count;

	if (!f->bound || read(f->call, &count, sizeof(count)) != sizeof(count))
		return;
	f->delivered++;
}

static void fake_vector_changed(struct virtio_pci_dev *dev, unsigned vector)
{
	struct fixture *f = dev->opaque;
	uint64_t address = 0;
	uint32_t data = 0;

	(void)vector;
	/* Like vhost_device_bind_interrupts: rebind by the queue's vector. */
	pthread_mutex_lock(&dev->lock);
	f->bound = virtio_pci_vector_route(dev, dev->queues[0].msix_vector, &address, &data);
	pthread_mutex_unlock(&dev->lock);
	if (f->bound) {
		f->last_address = address;
		f->last_data = data;
	}
	deliver_pending(f);
}

static void fake_config_interrupt(struct virtio_pci_dev *dev)
{
	struct fixture *f = dev->opaque;

	f->config_delivered++;
}

static const struct virtio_pci_platform_ops fake_platform = {
    .vector_changed = fake_vector_changed,
    .config_interrupt = fake_config_interrupt,
};

/* The back-end used the queue: it signals the call fd. */
static void backend_call(struct fixture *f)
{
	uint64_t one = 1;

	assert_int_equal(write(f->call, &one, sizeof(one)), sizeof(one));
	deliver_pending(f);
}

static void bar_write(struct fixture *f, uint32_t offset, uint32_t value, uint32_t len)
{
	virtio_pci_bar_access(&f->dev, offset, (uint8_t *)&value, len, true);
}

static uint32_t bar_read(struct fixture *f, uint32_t offset, uint32_t len)
{
	uint32_t value = 0;

	virtio_pci_bar_access(&f->dev, offset, (uint8_t *)&value, len, false);
	return value;
}

static void msix_control_write(struct fixture *f, uint16_t control)
{
	uint8_t buf[2];

	memcpy(buf, &control, sizeof(buf));
	pci_host_config_access(&f->host, SLOT << 3, CAP_MSIX + 2, buf, 2, true);
}

static uint32_t entry_offset(unsigned vector, unsigned field)
{
	return VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 * vector + 4 * field;
}

static void set_vector_mask(struct fixture *f, unsigned vector, bool masked)
{
	bar_write(f, entry_offset(vector, 3), masked, 4);
}

static bool pba_pending(struct fixture *f, unsigned vector)
{
	return bar_read(f, VIRTIO_PCI_MSIX_PBA_OFFSET, 4) & (1u << vector);
}

/* A driver's MSI-X setup: entry programmed (still masked, as after reset),
 * queue 0 on VECTOR, MSI-X enabled. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pci_host_init(&f->host);
	assert_int_equal(virtio_pci_init(&f->dev, "test", 2, 0x0180, 0, 1, 64, NULL, 0, BAR_BASE,
					 &fake_platform, NULL, f),
			 0);
	assert_int_equal(pci_host_plug(&f->host, SLOT, &f->dev.fn), 0);
	f->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(f->call >= 0);
	f->dev.queues[0].call_fd = f->call;
	bar_write(f, entry_offset(VECTOR, 0), (uint32_t)MSI_ADDRESS, 4);
	bar_write(f, entry_offset(VECTOR, 1), (uint32_t)(MSI_ADDRESS >> 32), 4);
	bar_write(f, entry_offset(VECTOR, 2), MSI_DATA, 4);
	bar_write(f, COMMON_Q_SELECT, 0, 2);
	bar_write(f, COMMON_Q_MSIX, VECTOR, 2);
	msix_control_write(f, MSIX_CONTROL_ENABLE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->call);
	virtio_pci_destroy(&f->dev);
	pci_host_destroy(&f->host);
	free(f);
	return 0;
}

/* PCI 3.0 §6.8.2.9: a masked vector sends nothing and sets its pending
 * bit; unmasking sends the message and clears the bit. */
static void test_masked_vector_pends_until_unmasked(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(bar_read(f, entry_offset(VECTOR, 3), 4), 1); /* masked at reset */
	assert_false(f->bound);
	backend_call(f);
	assert_int_equal(f->delivered, 0);
	assert_true(pba_pending(f, VECTOR));
	assert_false(pba_pending(f, 0));

	set_vector_mask(f, VECTOR, false);
	assert_int_equal(f->delivered, 1);
	assert_int_equal(f->last_address, MSI_ADDRESS);
	assert_int_equal(f->last_data, MSI_DATA);
	assert_false(pba_pending(f, VECTOR));

	/* Unmasked: delivered at once, nothing pends. */
	backend_call(f);
	assert_int_equal(f->delivered, 2);
	assert_false(pba_pending(f, VECTOR));
}

static void test_mask_after_unmask(void **state)
{
	struct fixture *f = *state;

	set_vector_mask(f, VECTOR, false);
	assert_true(f->bound);
	set_vector_mask(f, VECTOR, true);
	assert_false(f->bound);
	backend_call(f);
	assert_int_equal(f->delivered, 0);
	assert_true(pba_pending(f, VECTOR));
}

/* §6.8.2.3: the function mask masks every vector, whatever its own bit. */
static void test_function_mask(void **state)
{
	struct fixture *f = *state;

	set_vector_mask(f, VECTOR, false);
	msix_control_write(f, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASK);
	assert_false(f->bound);
	backend_call(f);
	assert_int_equal(f->delivered, 0);
	assert_true(pba_pending(f, VECTOR));
	msix_control_write(f, MSIX_CONTROL_ENABLE);
	assert_int_equal(f->delivered, 1);
	assert_false(pba_pending(f, VECTOR));
}

/* Only the mask bit of Vector Control is writable (§6.8.2.9: the rest is
 * reserved), so a write of all ones still reads back as just "masked". */
static void test_vector_control_reserved_bits(void **state)
{
	struct fixture *f = *state;

	bar_write(f, entry_offset(VECTOR, 3), 0xffffffffu, 4);
	assert_int_equal(bar_read(f, entry_offset(VECTOR, 3), 4), 1);
	assert_false(f->bound);
}

/* ---- configuration change (virtio 1.2 §4.1.4.3.1, §4.1.5.4) ---- */

static unsigned config_interrupts;

static void count_config_interrupt(struct virtio_pci_dev *dev)
{
	(void)dev;
	config_interrupts++;
}

static const struct virtio_pci_platform_ops config_platform = {
    .config_interrupt = count_config_interrupt,
};

/* A new device config (a virtio-blk back-end on an image of another size):
 * stored, config_generation bumped, and once the driver runs, ISR bit 1 and
 * the config interrupt; the same config again changes nothing. */
static void test_config_change_notifies(void **state)
{
	struct fixture *f = *state;
	struct virtio_pci_dev dev;
	uint8_t config[8] = {0x00, 0x40}, bigger[8] = {0x00, 0x80};
	uint8_t generation;
	uint32_t value = 0;

	(void)f;
	config_interrupts = 0;
	assert_int_equal(virtio_pci_init(&dev, "blk", 2, 0x0180, 0, 1, 64, config, sizeof(config),
					 BAR_BASE + 0x10000, &config_platform, NULL, NULL),
			 0);
	generation = dev.config_generation;
	/* before DRIVER_OK: stored and versioned, no interrupt */
	assert_true(virtio_pci_config_changed(&dev, bigger, sizeof(bigger)));
	assert_int_equal(dev.config_generation, (uint8_t)(generation + 1));
	assert_int_equal(config_interrupts, 0);
	assert_int_equal(dev.isr, 0);
	assert_false(virtio_pci_config_changed(&dev, bigger, sizeof(bigger)));
	assert_int_equal(dev.config_generation, (uint8_t)(generation + 1));

	dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		     VIRTIO_STATUS_DRIVER_OK;
	assert_true(virtio_pci_config_changed(&dev, config, sizeof(config)));
	assert_int_equal(config_interrupts, 1);
	assert_int_equal(dev.config_generation, (uint8_t)(generation + 2));
	virtio_pci_bar_access(&dev, VIRTIO_PCI_DEVICE_OFFSET, (uint8_t *)&value, 4, false);
	assert_int_equal(value, 0x4000); /* the driver reads the new config */
	value = 0;
	virtio_pci_bar_access(&dev, VIRTIO_PCI_ISR_OFFSET, (uint8_t *)&value, 1, false);
	assert_int_equal(value, 2); /* §4.1.4.5: bit 1, configuration change */
	assert_false(virtio_pci_config_changed(&dev, config, sizeof(config)));
	assert_int_equal(config_interrupts, 1);
	virtio_pci_destroy(&dev);
}

/* A config change while the driver initializes (Kata's PATCH of a drive
 * right after InstanceStart, virtio_blk still probing, the old capacity
 * perhaps read): the generation moves at once, the notification waits
 * for DRIVER_OK (virtio 1.2 §4.1.5.4, §3.1.2). */
static void test_config_change_before_driver_ok_told_at_driver_ok(void **state)
{
	struct fixture *f = *state;
	struct virtio_pci_dev dev;
	uint8_t config[8] = {0x00, 0x40}, bigger[8] = {0x00, 0x80};
	uint8_t generation, byte = 0;

	config_interrupts = 0;
	assert_int_equal(virtio_pci_init(&dev, "blk", 2, 0x0180, 0, 1, 64, config, sizeof(config),
					 BAR_BASE + 0x10000, &config_platform, NULL, NULL),
			 0);
	(void)f;
	dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	generation = dev.config_generation;
	assert_true(virtio_pci_config_changed(&dev, bigger, sizeof(bigger)));
	assert_int_equal(dev.config_generation, (uint8_t)(generation + 1));
	assert_int_equal(config_interrupts, 0);

	byte = VIRTIO_STATUS_DRIVER_OK;
	virtio_pci_bar_access(&dev, COMMON_STATUS, &byte, 1, true);
	assert_true(dev.status & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(config_interrupts, 1);
	byte = 0;
	virtio_pci_bar_access(&dev, VIRTIO_PCI_ISR_OFFSET, &byte, 1, false);
	assert_int_equal(byte, 2); /* ISR bit 1 */
	/* told once */
	byte = VIRTIO_STATUS_DRIVER_OK;
	virtio_pci_bar_access(&dev, COMMON_STATUS, &byte, 1, true);
	assert_int_equal(config_interrupts, 1);

	/* a reset forgets it: the next driver reads the config afresh */
	dev.status = VIRTIO_STATUS_ACKNOWLEDGE;
	assert_true(virtio_pci_config_changed(&dev, config, sizeof(config)));
	byte = 0;
	virtio_pci_bar_access(&dev, COMMON_STATUS, &byte, 1, true);
	dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	byte = VIRTIO_STATUS_DRIVER_OK;
	virtio_pci_bar_access(&dev, COMMON_STATUS, &byte, 1, true);
	assert_int_equal(config_interrupts, 1);
	virtio_pci_destroy(&dev);
}

/* The configuration interrupt on a masked config vector (or a masked
 * function) is not lost: the PBA shows it and unmasking sends it. */
static void test_config_interrupt_pends_while_masked(void **state)
{
	struct fixture *f = *state;

	bar_write(f, entry_offset(0, 0), (uint32_t)MSI_ADDRESS, 4);
	bar_write(f, entry_offset(0, 2), MSI_DATA - 1, 4);
	bar_write(f, COMMON_MSIX, 0, 2); /* config changes on vector 0, masked */
	virtio_pci_set_needs_reset(&f->dev);
	assert_int_equal(f->config_delivered, 0);
	assert_true(pba_pending(f, 0));
	assert_false(pba_pending(f, VECTOR));
	set_vector_mask(f, 0, false);
	assert_int_equal(f->config_delivered, 1);
	assert_false(pba_pending(f, 0));

	/* the function mask */
	msix_control_write(f, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASK);
	virtio_pci_set_needs_reset(&f->dev);
	assert_int_equal(f->config_delivered, 1);
	assert_true(pba_pending(f, 0));
	msix_control_write(f, MSIX_CONTROL_ENABLE);
	assert_int_equal(f->config_delivered, 2);
	assert_false(pba_pending(f, 0));

	/* unmasked: at once */
	virtio_pci_set_needs_reset(&f->dev);
	assert_int_equal(f->config_delivered, 3);
	assert_false(pba_pending(f, 0));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_masked_vector_pends_until_unmasked),
	    T(test_mask_after_unmask),
	    T(test_function_mask),
	    T(test_vector_control_reserved_bits),
	    T(test_config_change_notifies),
	    T(test_config_change_before_driver_ok_told_at_driver_ok),
	    T(test_config_interrupt_pends_while_masked),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
