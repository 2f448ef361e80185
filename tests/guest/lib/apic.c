/* SPDX-License-Identifier: MIT */
/* xAPIC (Intel SDM Vol 3 §11.4-11.6) and IOAPIC (82093AA datasheet §3.2). */
#include "kit.h"

#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_ICR_PENDING 0x1000
#define LAPIC_TIMER_PERIODIC 0x20000
#define LAPIC_LVT_MASKED 0x10000
#define LAPIC_DIVIDE_16 0x3
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_VER 0x01
#define IOAPIC_REDTBL(n) (0x10 + 2 * (n))
#define IOAPIC_MASKED 0x10000
#define IOAPIC_LEVEL 0x8000
#define IPI_SPINS 100000

uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(ISOLA_LAPIC_BASE + reg);
}

void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(ISOLA_LAPIC_BASE + reg, v);
}

void lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

int lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo)
{
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	for (int i = 0; i < IPI_SPINS; i++)
		if (!(lapic_read(LAPIC_ICR_LO) & LAPIC_ICR_PENDING))
			return 0;
	return -1;
}

/* Intel SDM Vol 3 §11.5.4: divide configuration, LVT timer, initial count. */
void lapic_timer_start(uint8_t vector, uint32_t count, int periodic)
{
	lapic_write(LAPIC_TIMER_DIV, LAPIC_DIVIDE_16);
	lapic_write(LAPIC_LVT_TIMER, vector | (periodic ? LAPIC_TIMER_PERIODIC : 0));
	lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

uint32_t ioapic_read(unsigned reg)
{
	mmio_write32(ISOLA_IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(ISOLA_IOAPIC_BASE + IOAPIC_WIN);
}

void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(ISOLA_IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(ISOLA_IOAPIC_BASE + IOAPIC_WIN, v);
}

unsigned ioapic_max_redirection(void)
{
	return ioapic_read(IOAPIC_VER) >> 16 & 0xff;
}

void ioapic_route(unsigned gsi, uint8_t vector, uint32_t apic_id, int level)
{
	/* High half first so the entry is never live with a stale destination. */
	ioapic_write(IOAPIC_REDTBL(gsi), IOAPIC_MASKED);
	ioapic_write(IOAPIC_REDTBL(gsi) + 1, apic_id << 24);
	ioapic_write(IOAPIC_REDTBL(gsi), vector | (level ? IOAPIC_LEVEL : 0));
}

void ioapic_mask(unsigned gsi)
{
	ioapic_write(IOAPIC_REDTBL(gsi), IOAPIC_MASKED);
}
