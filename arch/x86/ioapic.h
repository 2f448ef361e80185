/* SPDX-License-Identifier: MIT */
/*
 * User-space IOAPIC for KVM's split irqchip (api.rst KVM_CAP_SPLIT_IRQCHIP):
 * the LAPICs are in KVM, the IOAPIC is here and delivers every interrupt as
 * an MSI.  Each pin's redirection entry is mirrored into a KVM GSI route so
 * KVM knows which vectors are level-triggered and exits with
 * KVM_EXIT_IOAPIC_EOI when the guest EOIs them.
 * Register model: Intel 82093AA I/O APIC datasheet §3.
 */
#ifndef ISOLA_ARCH_X86_IOAPIC_H
#define ISOLA_ARCH_X86_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_NR_PINS 24
#define IOAPIC_MMIO_SIZE 0x1000
/* A redirection entry's mask bit (82093AA datasheet §3.2.4, bit 16). */
#define IOAPIC_RTE_MASKED (1ull << 16)

struct ioapic_ops {
	/* Deliver one interrupt as an MSI write. */
	int (*deliver_msi)(void *opaque, uint64_t address, uint32_t data);
	/* Mirror pin's redirection entry into the hypervisor's route table. */
	void (*update_route)(void *opaque, unsigned pin, uint64_t address, uint32_t data,
			     bool masked);
};

struct ioapic {
	pthread_mutex_t lock;
	uint8_t id;
	uint32_t ioregsel;
	uint64_t redirection[IOAPIC_NR_PINS];
	uint32_t line_level; /* bitmap of asserted input lines */
	uint64_t delivered;  /* interrupts sent, for tests and metrics */
	const struct ioapic_ops *ops;
	void *opaque;
};

void ioapic_init(struct ioapic *ioapic, uint8_t id, const struct ioapic_ops *ops, void *opaque);
void ioapic_destroy(struct ioapic *ioapic);
/* MMIO handler for the 4 KiB window at LAYOUT_IOAPIC (bus_access_fn). */
void ioapic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Drive input pin `pin` (ISA IRQ = pin for IRQs other than 0). */
void ioapic_set_irq(struct ioapic *ioapic, unsigned pin, bool level);
/* The guest EOIed `vector` in its LAPIC (KVM_EXIT_IOAPIC_EOI). */
void ioapic_eoi(struct ioapic *ioapic, uint8_t vector);
/* MSI address/data for a redirection entry (exposed for unit tests). */
void ioapic_entry_to_msi(uint64_t entry, uint64_t *address, uint32_t *data);

#endif
