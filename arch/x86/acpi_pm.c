// SPDX-License-Identifier: MIT
#include "arch/x86/acpi_pm.h"

#include <string.h>
#include <time.h>

#include "isola/abi.h"

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP_MASK 0x1c00
#define PM_TIMER_HZ 3579545ull
#define RESET_CPU 0x04 /* 0xCF9 bit 2: "reset CPU" */

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void acpi_pm_init(struct acpi_pm *pm, const struct platform_events *events)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	/* SMI_CMD is 0 in the FADT, so the machine is always in ACPI mode. */
	pm->pm1_control = PM1_CNT_SCI_EN;
	pm->start_ns = monotonic_ns();
	pm->events = events;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

static uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
	uint64_t ns = monotonic_ns() - pm->start_ns;
	/* ns * 3579545 / 1e9 without overflow for centuries of uptime. */
	uint64_t ticks = (ns / 1000000000ull) * PM_TIMER_HZ +
			 (ns % 1000000000ull) * PM_TIMER_HZ / 1000000000ull;

	return (uint32_t)(ticks & 0xffffff); /* 24-bit: FADT TMR_VAL_EXT clear */
}

void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[12];
	bool poweroff = false;

	pthread_mutex_lock(&pm->lock);
	memcpy(regs + 0, &pm->pm1_status, 2);
	memcpy(regs + 2, &pm->pm1_enable, 2);
	memcpy(regs + 4, &pm->pm1_control, 2);
	regs[6] = regs[7] = 0;
	{
		uint32_t timer = acpi_pm_timer(pm);

		memcpy(regs + 8, &timer, 4);
	}
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = offset + i < sizeof(regs) ? regs[offset + i] : 0xff;
	} else if (offset < 2) {
		/* Status bits are write-one-to-clear (ACPI 6.4 §4.8.3.1). */
		uint16_t clear = 0;

		memcpy(&clear, data, len > 2 - offset ? 2 - offset : len);
		pm->pm1_status &= (uint16_t)~(clear << (8 * offset));
	} else if (offset < 4) {
		uint16_t val = pm->pm1_enable;

		memcpy((uint8_t *)&val + (offset - 2), data, len > 4 - offset ? 4 - offset : len);
		pm->pm1_enable = val;
	} else if (offset < 6) {
		uint16_t val = pm->pm1_control;

		memcpy((uint8_t *)&val + (offset - 4), data, len > 6 - offset ? 6 - offset : len);
		/* SLP_EN is write-only and reads as zero (§4.8.3.2.1). */
		pm->pm1_control = (uint16_t)((val & ~ISOLA_ACPI_SLP_EN) | PM1_CNT_SCI_EN);
		if ((val & ISOLA_ACPI_SLP_EN) &&
		    ((val & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT) == ISOLA_ACPI_SLP_TYP_S5)
			poweroff = true;
	}
	pthread_mutex_unlock(&pm->lock);
	if (poweroff && pm->events && pm->events->poweroff)
		pm->events->poweroff(pm->events->opaque, "ACPI S5 (PM1a_CNT)");
}

void acpi_pm_reset_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct acpi_pm *pm = opaque;
	bool reset = false;

	(void)offset;
	(void)len;
	pthread_mutex_lock(&pm->lock);
	if (is_write) {
		pm->reset_control = data[0] & ~RESET_CPU;
		reset = data[0] & RESET_CPU;
	} else {
		data[0] = pm->reset_control;
	}
	pthread_mutex_unlock(&pm->lock);
	if (reset && pm->events && pm->events->reset)
		pm->events->reset(pm->events->opaque, "reset control register 0xcf9");
}
