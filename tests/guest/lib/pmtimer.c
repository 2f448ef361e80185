/* SPDX-License-Identifier: MIT */
/* ACPI PM timer (ACPI 6.4 §4.8.3.3): 3.579545 MHz, 24 (or 32) bits. */
#include "kit.h"

#define PMTIMER_HZ 3579545ull
#define PMTIMER_MASK 0xffffffu

static uint16_t pmtimer_port;

void pmtimer_init(void)
{
	pmtimer_port = (uint16_t)acpi_fadt_pm_tmr();
}

int pmtimer_present(void)
{
	return pmtimer_port != 0;
}

uint32_t pmtimer_read(void)
{
	return pmtimer_port ? io_in32(pmtimer_port) & PMTIMER_MASK : 0;
}

uint64_t pmtimer_elapsed_us(uint32_t start)
{
	uint32_t ticks = (pmtimer_read() - start) & PMTIMER_MASK;

	return ticks * 1000000ull / PMTIMER_HZ;
}

/*
 * Busy-wait; every PM timer read is a VM exit (a few µs), so the loop is
 * bounded by the number of reads too.  Delays must stay below ~4.6 s (24-bit
 * wrap).  Without a PM timer, spin a loop of roughly the right length.
 */
void delay_us(uint64_t us)
{
	uint32_t start = pmtimer_read();

	if (!pmtimer_present()) {
		for (uint64_t i = 0; i < us * 4; i++)
			cpu_relax();
		return;
	}
	for (uint64_t i = 0; i < us + 1000; i++)
		if (pmtimer_elapsed_us(start) >= us)
			return;
}
