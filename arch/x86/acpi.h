/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables (ACPI 6.4): RSDP, XSDT, FADT (not hardware-reduced, PM1a
 * event/control blocks and PM timer at the ports in abi.h), FACS, MADT (one
 * LAPIC per vCPU, IOAPIC, ISA interrupt source overrides), DSDT (COM1,
 * PCI root bridge with _CRS, _S5), MCFG (ECAM for bus 0).
 */
#ifndef ISOLA_ARCH_X86_ACPI_H
#define ISOLA_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct acpi_config {
	unsigned nr_cpus; /* 1..255, APIC IDs 0..nr_cpus-1 */
};

/*
 * Build all tables into buf, which the guest will see at base_gpa; the RSDP
 * is at offset 0 (base_gpa must be 16-byte aligned and inside 0xE0000-0xFFFFF
 * for the legacy scan).  Returns 0 and sets *used, or -ENOSPC / -EINVAL.
 */
int acpi_build(uint8_t *buf, size_t bufsize, uint64_t base_gpa, const struct acpi_config *cfg,
	       size_t *used);

/*
 * The IOAPIC's ID in the MADT: nr_cpus, so it never equals a LAPIC ID
 * (0..nr_cpus-1).  The IOAPIC model reports it in its ID register.
 */
uint8_t acpi_ioapic_id(unsigned nr_cpus);

/* Sum of bytes mod 256 (a table is valid when this is 0). */
uint8_t acpi_checksum(const void *data, size_t len);

#endif
