/* SPDX-License-Identifier: MIT */
/*
 * The Intel MultiProcessor Specification 1.4 table (MP table): how a guest
 * booted with acpi=off finds its CPUs, the IOAPIC and the ISA interrupt
 * wiring.  It says what the MADT says (docs/platform.md, "MP table"); an
 * ACPI guest ignores it.
 */
#ifndef ISOLA_ARCH_X86_MPTABLE_H
#define ISOLA_ARCH_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

/* MP spec 1.4 §4.1: the MP floating pointer structure, 16 bytes */
#define MPTABLE_FLOATING_SIZE 16
/* §4.2 Table 4-2: the configuration table header, 44 bytes */
#define MPTABLE_HEADER_SIZE 44
/* Table 4-4 processor entry; every other base entry type is 8 bytes */
#define MPTABLE_CPU_ENTRY_SIZE 20
#define MPTABLE_ENTRY_SIZE 8

/* entry types (Table 4-3) */
#define MPTABLE_TYPE_CPU 0
#define MPTABLE_TYPE_BUS 1
#define MPTABLE_TYPE_IOAPIC 2
#define MPTABLE_TYPE_IOINT 3
#define MPTABLE_TYPE_LINT 4

/* the bus IDs the table defines */
#define MPTABLE_BUS_PCI 0
#define MPTABLE_BUS_ISA 1

/* the number of bytes mptable_build writes for nr_cpus */
size_t mptable_size(unsigned nr_cpus);

/*
 * Write the floating pointer (at offset 0) and the configuration table
 * (right after it) into buf, which the guest sees at base_gpa: base_gpa
 * must be 16-byte aligned and in a range Linux scans (0xF0000-0xFFFFF, or
 * the last KiB of base memory).  nr_cpus 1..255 (APIC IDs 0..nr_cpus-1;
 * the IOAPIC's ID is acpi_ioapic_id(nr_cpus)).  Returns 0 and sets *used,
 * -EINVAL (nr_cpus, alignment, an address above 4 GiB) or -ENOSPC (nothing
 * is written past bufsize).
 */
int mptable_build(uint8_t *buf, size_t bufsize, uint64_t base_gpa, unsigned nr_cpus, size_t *used);

#endif
