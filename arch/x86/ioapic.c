// SPDX-License-Identifier: MIT
#include "arch/x86/ioapic.h"

#include <string.h>

#define IOAPIC_REG_SELECT 0x00
#define IOAPIC_REG_WINDOW 0x10
#define IOAPIC_REG_EOI 0x40 /* version 0x20 and later */
#define IOAPIC_ID 0x00
#define IOAPIC_VERSION 0x01
#define IOAPIC_ARBITRATION 0x02
#define IOAPIC_REDIRECTION_BASE 0x10
#define IOAPIC_VERSION_VALUE (((IOAPIC_NR_PINS - 1) << 16) | 0x20)

#define RTE_VECTOR(e) ((uint8_t)((e)&0xff))
#define RTE_DELIVERY_MODE(e) (((e) >> 8) & 7)
#define RTE_DEST_LOGICAL (1ull << 11)
#define RTE_DELIVERY_STATUS (1ull << 12)
#define RTE_POLARITY_LOW (1ull << 13)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_DEST(e) ((uint8_t)((e) >> 56))
#define RTE_READ_ONLY (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR)

void ioapic_entry_to_msi(uint64_t entry, uint64_t *address, uint32_t *data)
{
	/* Intel SDM Vol. 3 §11.11 "Message Signalled Interrupts": address
	 * 0xFEE, destination ID in bits 19:12, destination mode in bit 2; data
	 * vector, delivery mode, level-assert and trigger mode. */
	*address = 0xfee00000ull | ((uint64_t)RTE_DEST(entry) << 12) |
		   ((entry & RTE_DEST_LOGICAL) ? 1u << 2 : 0);
	*data = RTE_VECTOR(entry) | (uint32_t)(RTE_DELIVERY_MODE(entry) << 8);
	if (entry & RTE_LEVEL)
		*data |= (1u << 15) | (1u << 14);
}

void ioapic_init(struct ioapic *ioapic, uint8_t id, const struct ioapic_ops *ops, void *opaque)
{
	memset(ioapic, 0, sizeof(*ioapic));
	pthread_mutex_init(&ioapic->lock, NULL);
	ioapic->id = id;
	ioapic->ops = ops;
	ioapic->opaque = opaque;
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
		ioapic->redirection[pin] = RTE_MASKED; /* 82093AA: masked at reset */
}

void ioapic_destroy(struct ioapic *ioapic)
{
	pthread_mutex_destroy(&ioapic->lock);
}

/* Lock held. Sends the pin's interrupt if its line is active and unmasked. */
static void ioapic_service(struct ioapic *ioapic, unsigned pin)
{
	uint64_t entry = ioapic->redirection[pin];
	uint64_t address;
	uint32_t data;

	if (entry & RTE_MASKED)
		return;
	if (!(ioapic->line_level & (1u << pin)))
		return;
	if (entry & RTE_LEVEL) {
		/* A level interrupt is not re-sent until the guest EOIs it. */
		if (entry & RTE_REMOTE_IRR)
			return;
		ioapic->redirection[pin] |= RTE_REMOTE_IRR;
	}
	ioapic_entry_to_msi(entry, &address, &data);
	if (ioapic->ops && ioapic->ops->deliver_msi)
		ioapic->ops->deliver_msi(ioapic->opaque, address, data);
	ioapic->delivered++;
}

void ioapic_set_irq(struct ioapic *ioapic, unsigned pin, bool level)
{
	uint32_t bit;
	bool rising;

	if (pin >= IOAPIC_NR_PINS)
		return;
	bit = 1u << pin;
	pthread_mutex_lock(&ioapic->lock);
	/* Active-low inputs are modelled at the device: lines here are
	 * "asserted" or not, whatever the polarity bit says. */
	rising = level && !(ioapic->line_level & bit);
	if (level)
		ioapic->line_level |= bit;
	else
		ioapic->line_level &= ~bit;
	if (ioapic->redirection[pin] & RTE_LEVEL) {
		if (level)
			ioapic_service(ioapic, pin);
	} else if (rising) {
		ioapic_service(ioapic, pin);
	}
	pthread_mutex_unlock(&ioapic->lock);
}

void ioapic_eoi(struct ioapic *ioapic, uint8_t vector)
{
	pthread_mutex_lock(&ioapic->lock);
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		uint64_t entry = ioapic->redirection[pin];

		if (!(entry & RTE_LEVEL) || RTE_VECTOR(entry) != vector)
			continue;
		ioapic->redirection[pin] &= ~RTE_REMOTE_IRR;
		/* Still asserted: the device wants service again. */
		ioapic_service(ioapic, pin);
	}
	pthread_mutex_unlock(&ioapic->lock);
}

static void ioapic_route_changed(struct ioapic *ioapic, unsigned pin)
{
	uint64_t entry = ioapic->redirection[pin];
	uint64_t address;
	uint32_t data;

	if (!ioapic->ops || !ioapic->ops->update_route)
		return;
	ioapic_entry_to_msi(entry, &address, &data);
	ioapic->ops->update_route(ioapic->opaque, pin, address, data, entry & RTE_MASKED);
}

static uint32_t ioapic_read_register(struct ioapic *ioapic)
{
	uint32_t reg = ioapic->ioregsel;

	switch (reg) {
	case IOAPIC_ID:
	case IOAPIC_ARBITRATION:
		return (uint32_t)ioapic->id << 24;
	case IOAPIC_VERSION:
		return IOAPIC_VERSION_VALUE;
	default:
		if (reg >= IOAPIC_REDIRECTION_BASE && reg < IOAPIC_REDIRECTION_BASE + 2 * IOAPIC_NR_PINS) {
			unsigned pin = (reg - IOAPIC_REDIRECTION_BASE) / 2;
			uint64_t entry = ioapic->redirection[pin];

			return (reg & 1) ? (uint32_t)(entry >> 32) : (uint32_t)entry;
		}
		return 0xffffffff;
	}
}

static void ioapic_write_register(struct ioapic *ioapic, uint32_t val)
{
	uint32_t reg = ioapic->ioregsel;
	unsigned pin;
	uint64_t entry;

	if (reg == IOAPIC_ID) {
		ioapic->id = (val >> 24) & 0x0f;
		return;
	}
	if (reg < IOAPIC_REDIRECTION_BASE || reg >= IOAPIC_REDIRECTION_BASE + 2 * IOAPIC_NR_PINS)
		return; /* version/arbitration are read-only; others do not exist */
	pin = (reg - IOAPIC_REDIRECTION_BASE) / 2;
	entry = ioapic->redirection[pin];
	if (reg & 1)
		entry = (entry & 0xffffffffull) | ((uint64_t)val << 32);
	else
		entry = (entry & (0xffffffff00000000ull | RTE_READ_ONLY)) | (val & ~(uint32_t)RTE_READ_ONLY);
	/* An edge entry has no remote IRR. */
	if (!(entry & RTE_LEVEL))
		entry &= ~RTE_REMOTE_IRR;
	ioapic->redirection[pin] = entry;
	ioapic_route_changed(ioapic, pin);
	/* Unmasking a level line that is still asserted delivers it now. */
	if (entry & RTE_LEVEL)
		ioapic_service(ioapic, pin);
}

void ioapic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct ioapic *ioapic = opaque;
	uint32_t val = 0;

	/* 82093AA §3.0: registers are accessed as aligned 32-bit words;
	 * narrower or odd accesses are honoured on the low bytes only. */
	if (len > 4)
		len = 4;
	if (is_write)
		memcpy(&val, data, len);
	pthread_mutex_lock(&ioapic->lock);
	switch (offset) {
	case IOAPIC_REG_SELECT:
		if (is_write)
			ioapic->ioregsel = val & 0xff;
		else
			val = ioapic->ioregsel;
		break;
	case IOAPIC_REG_WINDOW:
		if (is_write)
			ioapic_write_register(ioapic, val);
		else
			val = ioapic_read_register(ioapic);
		break;
	case IOAPIC_REG_EOI:
		if (is_write) {
			pthread_mutex_unlock(&ioapic->lock);
			ioapic_eoi(ioapic, (uint8_t)val);
			return;
		}
		val = 0;
		break;
	default:
		val = 0xffffffff;
		break;
	}
	pthread_mutex_unlock(&ioapic->lock);
	if (!is_write)
		memcpy(data, &val, len);
}
