/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed hardware (ACPI 6.4 §4.8): PM1a event block (status/enable),
 * PM1a control block (SCI_EN, SLP_TYP/SLP_EN: S5 = power off), the PM timer
 * (3.579545 MHz, 24 bits), and the reset register at 0xCF9 the FADT names.
 */
#ifndef ISOLA_ARCH_X86_ACPI_PM_H
#define ISOLA_ARCH_X86_ACPI_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/platform_events.h"

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t pm1_status, pm1_enable, pm1_control;
	uint8_t reset_control;
	uint64_t start_ns;
	const struct platform_events *events;
};

void acpi_pm_init(struct acpi_pm *pm, const struct platform_events *events);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Port handler for ISOLA_PORT_ACPI_PM1A_EVT .. PM_TMR+4 (12 ports). */
void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Port handler for ISOLA_PORT_RESET (1 port). */
void acpi_pm_reset_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

#endif
