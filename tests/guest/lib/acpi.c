/* SPDX-License-Identifier: MIT */
/* ACPI table discovery and the few fields guests read (ACPI 6.4 §5.2). */
#include "kit.h"

#define FADT_DSDT 40         /* 4 bytes */
#define FADT_PM1A_CNT_BLK 64 /* 4 bytes */
#define FADT_PM_TMR_BLK 76   /* 4 bytes */
#define FADT_X_DSDT 140      /* 8 bytes, ACPI 2.0+ */
#define MADT_ENTRIES 44
#define MCFG_ENTRIES 44

static const struct acpi_rsdp *acpi_rsdp;

uint8_t acpi_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

static uint64_t acpi_scan(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 20 <= end; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && !acpi_checksum((const void *)a, 20))
			return a;
	return 0;
}

/* ACPI 6.4 §5.2.5.1: first KiB of the EBDA, then 0xE0000-0xFFFFF. */
uint64_t acpi_find_rsdp(void)
{
	uint64_t ebda = (uint64_t)(*(const uint16_t *)phys_ptr(0x40e)) << 4;
	uint64_t found = 0;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		found = acpi_scan(ebda, ebda + 1024);
	return found ? found : acpi_scan(0xe0000, 0x100000);
}

const char *acpi_rsdp_invalid(uint64_t rsdp)
{
	const struct acpi_rsdp *r = (const struct acpi_rsdp *)rsdp;

	if (!rsdp)
		return "no RSDP";
	if (memcmp(r->signature, "RSD PTR ", 8))
		return "bad RSDP signature";
	if (acpi_checksum(r, 20))
		return "bad RSDP checksum (first 20 bytes)";
	if (r->revision >= 2 && (r->length < sizeof(*r) || acpi_checksum(r, r->length)))
		return "bad RSDP extended checksum";
	return NULL;
}

void acpi_init(uint64_t rsdp)
{
	acpi_rsdp = acpi_rsdp_invalid(rsdp) ? NULL : (const struct acpi_rsdp *)rsdp;
}

static const struct acpi_header *acpi_root(int *xsdt)
{
	if (!acpi_rsdp)
		return NULL;
	*xsdt = acpi_rsdp->revision >= 2 && acpi_rsdp->xsdt_address;
	return (const struct acpi_header *)(*xsdt ? acpi_rsdp->xsdt_address
						  : (uint64_t)acpi_rsdp->rsdt_address);
}

unsigned acpi_table_count(void)
{
	int xsdt;
	const struct acpi_header *root = acpi_root(&xsdt);

	if (!root || root->length < sizeof(*root))
		return 0;
	return (root->length - sizeof(*root)) / (xsdt ? 8 : 4);
}

const struct acpi_header *acpi_table_at(unsigned i)
{
	int xsdt;
	const struct acpi_header *root = acpi_root(&xsdt);
	const uint8_t *entries = (const uint8_t *)(root + 1);
	uint64_t addr;

	if (!root || i >= acpi_table_count())
		return NULL;
	if (xsdt)
		memcpy(&addr, entries + 8 * i, 8);
	else
		addr = *(const uint32_t *)(entries + 4 * i);
	return (const struct acpi_header *)addr;
}

const struct acpi_header *acpi_find_table(const char *sig)
{
	for (unsigned i = 0; i < acpi_table_count(); i++) {
		const struct acpi_header *t = acpi_table_at(i);

		if (t && !memcmp(t->signature, sig, 4))
			return t;
	}
	return NULL;
}

static uint32_t acpi_read32(const struct acpi_header *t, unsigned off)
{
	uint32_t v = 0;

	if (t && t->length >= off + 4)
		memcpy(&v, (const uint8_t *)t + off, 4);
	return v;
}

const struct acpi_header *acpi_dsdt(void)
{
	const struct acpi_header *fadt = acpi_find_table("FACP");
	uint64_t addr = 0;

	if (!fadt)
		return NULL;
	if (fadt->length >= FADT_X_DSDT + 8)
		memcpy(&addr, (const uint8_t *)fadt + FADT_X_DSDT, 8);
	if (!addr)
		addr = acpi_read32(fadt, FADT_DSDT);
	return (const struct acpi_header *)addr;
}

uint32_t acpi_fadt_pm1a_cnt(void)
{
	return acpi_read32(acpi_find_table("FACP"), FADT_PM1A_CNT_BLK);
}

uint32_t acpi_fadt_pm_tmr(void)
{
	return acpi_read32(acpi_find_table("FACP"), FADT_PM_TMR_BLK);
}

/* MADT entries: ACPI 6.4 §5.2.12 (type 0 LAPIC, 9 x2APIC; bit 0 = enabled). */
unsigned acpi_madt_cpus(uint32_t *ids, unsigned max)
{
	const struct acpi_header *madt = acpi_find_table("APIC");
	const uint8_t *p, *end;
	unsigned n = 0;

	if (!madt)
		return 0;
	end = (const uint8_t *)madt + madt->length;
	for (p = (const uint8_t *)madt + MADT_ENTRIES; p + 2 <= end && p[1] >= 2; p += p[1]) {
		uint32_t id, flags;

		if (p[0] == 0 && p[1] >= 8) {
			id = p[3];
			memcpy(&flags, p + 4, 4);
		} else if (p[0] == 9 && p[1] >= 16) {
			memcpy(&id, p + 4, 4);
			memcpy(&flags, p + 8, 4);
		} else {
			continue;
		}
		if (!(flags & 1))
			continue;
		if (n < max)
			ids[n] = id;
		n++;
	}
	return n;
}

/* MADT type 2, Interrupt Source Override (ACPI 6.4 §5.2.12.5). */
unsigned acpi_isa_irq_to_gsi(unsigned irq)
{
	const struct acpi_header *madt = acpi_find_table("APIC");
	const uint8_t *p, *end;

	if (!madt)
		return irq;
	end = (const uint8_t *)madt + madt->length;
	for (p = (const uint8_t *)madt + MADT_ENTRIES; p + 2 <= end && p[1] >= 2; p += p[1]) {
		uint32_t gsi;

		if (p[0] != 2 || p[1] < 10 || p[2] != 0 || p[3] != irq)
			continue;
		memcpy(&gsi, p + 4, 4);
		return gsi;
	}
	return irq;
}

/* MCFG (PCI Firmware Spec 3.2 §4.1.2): base of segment 0. */
uint64_t acpi_mcfg_base(void)
{
	const struct acpi_header *mcfg = acpi_find_table("MCFG");
	const uint8_t *p;
	uint64_t base;

	if (!mcfg || mcfg->length < MCFG_ENTRIES + 16)
		return 0;
	for (p = (const uint8_t *)mcfg + MCFG_ENTRIES; p + 16 <= (const uint8_t *)mcfg + mcfg->length;
	     p += 16) {
		uint16_t segment;

		memcpy(&segment, p + 8, 2);
		if (segment != 0)
			continue;
		memcpy(&base, p, 8);
		return base;
	}
	return 0;
}

/* AML integer at p (ACPI 6.4 §20.2.3): Zero, One, BytePrefix, WordPrefix. */
static int aml_small_integer(const uint8_t *p, const uint8_t *end)
{
	if (p >= end)
		return -1;
	switch (p[0]) {
	case 0x00:
		return 0;
	case 0x01:
		return 1;
	case 0x0a:
		return p + 1 < end ? p[1] : -1;
	case 0x0b:
		return p + 2 < end ? p[1] | (p[2] << 8) : -1;
	}
	return -1;
}

/*
 * Find `Name(_S5, Package(){SLP_TYPa, ...})` in the DSDT: NameOp (0x08),
 * optional root prefix, "_S5_", PackageOp (0x12), PkgLength, NumElements.
 */
int acpi_s5_slp_typ(void)
{
	const struct acpi_header *dsdt = acpi_dsdt();
	const uint8_t *aml, *end, *p;
	long off;

	if (!dsdt)
		return -1;
	aml = (const uint8_t *)dsdt;
	end = aml + dsdt->length;
	off = mem_find(aml + sizeof(*dsdt), dsdt->length - sizeof(*dsdt), "_S5_", 4);
	if (off < 0)
		return -1;
	p = aml + sizeof(*dsdt) + off;
	if (!(p[-1] == 0x08 || (p[-1] == '\\' && p[-2] == 0x08)))
		return -1;
	p += 4;
	if (p >= end || *p++ != 0x12)
		return -1;
	p += 1 + (*p >> 6); /* PkgLength: bits 7:6 = extra bytes */
	p++;                /* NumElements */
	return aml_small_integer(p, end);
}
