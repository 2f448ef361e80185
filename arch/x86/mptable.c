// SPDX-License-Identifier: MIT
/*
 * The MP table (Intel MultiProcessor Specification 1.4, May 1997): the
 * platform description a guest booted with acpi=off uses, as Firecracker's
 * guests do (Kata Containers' Go runtime passes Firecracker's acpi=off).
 * Linux reads it in arch/x86/kernel/mpparse.c when the MADT is absent.
 *
 *   offset 0   MP floating pointer structure (§4.1), 16 bytes
 *   offset 16  MP configuration table (§4.2): header, then the base entries
 *              sorted by type (§4.3): processors, buses, I/O APIC, I/O
 *              interrupt assignments, local interrupt assignments
 *
 * Every value mirrors the MADT (arch/x86/acpi.c): LAPIC IDs 0..n-1, the
 * IOAPIC's ID n at ISOLA_IOAPIC_BASE, ISA IRQ 0 on pin 2, the SCI (IRQ 9)
 * level/active-high, NMI on LINT1.  docs/platform.md explains each choice.
 */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "isola/abi.h"

#define MPTABLE_MAX_CPUS 255
#define MPTABLE_SPEC_REV 4 /* 1.4 */

/* §4.3.1 Table 4-5: the LAPIC version KVM's local APIC reports (an
 * integrated APIC: 0x1X; 0x0X would mean an external 82489DX) */
#define MPTABLE_LAPIC_VERSION 0x14
/* §4.3.3: the IOAPIC model's version register (arch/x86/ioapic.c) */
#define MPTABLE_IOAPIC_VERSION 0x20

#define MPTABLE_CPU_EN 0x01 /* Table 4-5 CPU flags */
#define MPTABLE_CPU_BP 0x02
#define MPTABLE_IOAPIC_EN 0x01 /* Table 4-7 */

/* Table 4-10: interrupt types */
#define MPTABLE_INT 0
#define MPTABLE_NMI 1

/* Table 4-10 flags: PO (bits 1:0) and EL (bits 3:2); 0 = "conforms to
 * the bus" (ISA: edge, active high) */
#define MPTABLE_PO_HIGH 0x1
#define MPTABLE_EL_EDGE 0x4
#define MPTABLE_EL_LEVEL 0xc

#define MPTABLE_ALL_LAPICS 0xff
#define MPTABLE_ISA_IRQS 16

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* ISA IRQ 2 is the 8259 cascade on a PC and has no line of its own; its
 * IOAPIC pin carries IRQ 0 (the MADT's override).  The others: 15. */
static unsigned isa_entries(void)
{
	return MPTABLE_ISA_IRQS - 1;
}

static size_t config_size(unsigned nr_cpus)
{
	return MPTABLE_HEADER_SIZE + (size_t)nr_cpus * MPTABLE_CPU_ENTRY_SIZE +
	       (2 /* buses */ + 1 /* IOAPIC */ + isa_entries() + 1 /* LINT1 */) *
		   MPTABLE_ENTRY_SIZE;
}

size_t mptable_size(unsigned nr_cpus)
{
	return MPTABLE_FLOATING_SIZE + config_size(nr_cpus);
}

static uint8_t *put_ioint(uint8_t *p, uint16_t flags, uint8_t irq, uint8_t ioapic, uint8_t pin)
{
	p[0] = MPTABLE_TYPE_IOINT;
	p[1] = MPTABLE_INT;
	put16(p + 2, flags);
	p[4] = MPTABLE_BUS_ISA;
	p[5] = irq;
	p[6] = ioapic; /* destination I/O APIC ID */
	p[7] = pin;    /* its INTIN# */
	return p + MPTABLE_ENTRY_SIZE;
}

static uint8_t *put_bus(uint8_t *p, uint8_t id, const char type[7])
{
	p[0] = MPTABLE_TYPE_BUS;
	p[1] = id;
	memcpy(p + 2, type, 6); /* Table 4-8: blank-padded, no NUL */
	return p + MPTABLE_ENTRY_SIZE;
}

int mptable_build(uint8_t *buf, size_t bufsize, uint64_t base_gpa, unsigned nr_cpus, size_t *used)
{
	size_t total, cfg_len;
	uint8_t *cfg, *p;
	uint8_t ioapic = acpi_ioapic_id(nr_cpus);

	if (nr_cpus < 1 || nr_cpus > MPTABLE_MAX_CPUS || (base_gpa & 15))
		return -EINVAL;
	total = mptable_size(nr_cpus);
	cfg_len = config_size(nr_cpus);
	/* §4.1: PHYSICAL ADDRESS POINTER is 32 bits */
	if (base_gpa + total > 0x100000000ull)
		return -EINVAL;
	if (total > bufsize)
		return -ENOSPC;
	memset(buf, 0, total);

	/* §4.1 Table 4-1: the floating pointer */
	memcpy(buf, "_MP_", 4);
	put32(buf + 4, (uint32_t)(base_gpa + MPTABLE_FLOATING_SIZE));
	buf[8] = 1; /* LENGTH in 16-byte paragraphs */
	buf[9] = MPTABLE_SPEC_REV;
	/* buf[11] FEATURE1 = 0: a configuration table is present (no default
	 * configuration); buf[12] FEATURE2 bit 7 IMCRP = 0: no IMCR, virtual
	 * wire mode -- isola has no 8259 to route through an IMCR */
	buf[10] = (uint8_t)(0x100 - acpi_checksum(buf, MPTABLE_FLOATING_SIZE));

	/* §4.2 Table 4-2: the configuration table header */
	cfg = buf + MPTABLE_FLOATING_SIZE;
	memcpy(cfg, "PCMP", 4);
	put16(cfg + 4, (uint16_t)cfg_len); /* BASE TABLE LENGTH */
	cfg[6] = MPTABLE_SPEC_REV;
	memcpy(cfg + 8, "ISOLA   ", 8);	      /* OEM ID, blank-padded */
	memcpy(cfg + 16, "ISOLAVMM    ", 12); /* PRODUCT ID */
	/* OEM table pointer/size 0: none */
	put16(cfg + 34, (uint16_t)(nr_cpus + 2 + 1 + isa_entries() + 1)); /* ENTRY COUNT */
	put32(cfg + 36, ISOLA_LAPIC_BASE);
	/* extended table length and checksum 0: no extended entries */

	p = cfg + MPTABLE_HEADER_SIZE;
	/* §4.3.1 processor entries; CPU signature and feature flags stay 0:
	 * the OS reads CPUID itself (Linux ignores both) */
	for (unsigned i = 0; i < nr_cpus; i++) {
		p[0] = MPTABLE_TYPE_CPU;
		p[1] = (uint8_t)i; /* LAPIC ID = vCPU index, as in the MADT */
		p[2] = MPTABLE_LAPIC_VERSION;
		p[3] = MPTABLE_CPU_EN | (i == 0 ? MPTABLE_CPU_BP : 0);
		p += MPTABLE_CPU_ENTRY_SIZE;
	}
	/* §4.3.2 buses: the PCI bus ID must be its bus number (0) */
	p = put_bus(p, MPTABLE_BUS_PCI, "PCI   ");
	p = put_bus(p, MPTABLE_BUS_ISA, "ISA   ");
	/* §4.3.3 the I/O APIC */
	p[0] = MPTABLE_TYPE_IOAPIC;
	p[1] = ioapic;
	p[2] = MPTABLE_IOAPIC_VERSION;
	p[3] = MPTABLE_IOAPIC_EN;
	put32(p + 4, ISOLA_IOAPIC_BASE);
	p += MPTABLE_ENTRY_SIZE;
	/* §4.3.4 the ISA IRQs: identity on the IOAPIC's pins, except IRQ 0
	 * on pin 2 (edge/high, the MADT's override) and the SCI level/high
	 * (no inverter in the IOAPIC model).  PCI devices use MSI-X only: no
	 * PCI entries (no INTx) */
	for (unsigned irq = 0; irq < MPTABLE_ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		if (irq == 0)
			p = put_ioint(p, MPTABLE_PO_HIGH | MPTABLE_EL_EDGE, 0, ioapic, 2);
		else if (irq == ISOLA_ACPI_SCI_IRQ)
			p = put_ioint(p, MPTABLE_PO_HIGH | MPTABLE_EL_LEVEL, (uint8_t)irq, ioapic,
				      (uint8_t)irq);
		else
			p = put_ioint(p, 0, (uint8_t)irq, ioapic, (uint8_t)irq);
	}
	/* §4.3.5 local interrupts: NMI on every LAPIC's LINT1, as the MADT's
	 * Local APIC NMI entry.  No ExtINT on LINT0: there is no 8259 */
	p[0] = MPTABLE_TYPE_LINT;
	p[1] = MPTABLE_NMI;
	p[4] = MPTABLE_BUS_ISA;
	p[6] = MPTABLE_ALL_LAPICS;
	p[7] = 1; /* LINTIN1 */
	p += MPTABLE_ENTRY_SIZE;

	cfg[7] = (uint8_t)(0x100 - acpi_checksum(cfg, cfg_len));
	*used = total;
	return 0;
}
