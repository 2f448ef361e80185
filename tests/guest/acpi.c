/* SPDX-License-Identifier: MIT */
/*
 * acpi: walk RSDP -> XSDT -> FADT/FACS/DSDT/MADT/MCFG as an OS does and check
 * signatures, checksums and the platform they describe (ACPI 6.4 §5.2).
 * Command line: cpus=<n> [ecam=<base>] (default ISOLA_ECAM_BASE) [rsdt_ok]
 * (rsdt_ok accepts an ACPI 1.0 RSDP with only an RSDT, as QEMU's.)
 */
#include "kit.h"

#define FADT_FIRMWARE_CTRL 36
#define FADT_X_FIRMWARE_CTRL 132
#define MADT_ENTRIES 44
#define EISA_ID(a, b, c, d) /* compressed EISA id, as AML stores EISAID("PNP0501") */ \
	{ 0x41, 0xd0, (a), (b) }

static int acpi_sig_printable(const char *sig)
{
	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			return 0;
	return 1;
}

static int acpi_check_table(const struct acpi_header *t, const char *want)
{
	char what[48];

	console_snprintf(what, sizeof(what), "%s table valid", want);
	return test_check(t && !memcmp(t->signature, want, 4) && t->length >= sizeof(*t) &&
				  !acpi_checksum(t, t->length),
			  what, "%s", !t ? "missing" : t->length < sizeof(*t) ? "too short"
				    : memcmp(t->signature, want, 4) ? "bad signature" : "bad checksum");
}

static void acpi_check_xsdt(uint64_t rsdp, int rsdt_ok)
{
	const struct acpi_rsdp *r = phys_ptr(rsdp);

	if (!rsdt_ok || r->revision >= 2)
		test_check(r->revision >= 2 && r->xsdt_address, "RSDP revision >= 2 with an XSDT",
			   "revision %u xsdt %lx", r->revision, r->xsdt_address);
	if (r->revision >= 2 && r->xsdt_address)
		acpi_check_table(phys_ptr(r->xsdt_address), "XSDT");
	else
		acpi_check_table(phys_ptr(r->rsdt_address), "RSDT");
	for (unsigned i = 0; i < acpi_table_count(); i++) {
		const struct acpi_header *t = acpi_table_at(i);

		if (!t || !acpi_sig_printable(t->signature) || acpi_checksum(t, t->length))
			test_fail("XSDT entries", "entry %u at %p is not a valid table", i, t);
		else
			console_printf("table %c%c%c%c at %p, %u bytes\n", t->signature[0],
				       t->signature[1], t->signature[2], t->signature[3], t,
				       t->length);
	}
}

static void acpi_check_fadt(void)
{
	const struct acpi_header *fadt = acpi_find_table("FACP");
	uint64_t facs = 0;

	if (!acpi_check_table(fadt, "FACP"))
		return;
	if (fadt->length >= FADT_X_FIRMWARE_CTRL + 8)
		memcpy(&facs, (const uint8_t *)fadt + FADT_X_FIRMWARE_CTRL, 8);
	if (!facs)
		facs = *(const uint32_t *)((const uint8_t *)fadt + FADT_FIRMWARE_CTRL);
	/* FACS has no checksum (ACPI 6.4 §5.2.10): signature and length. */
	test_check(facs && !memcmp(phys_ptr(facs), "FACS", 4) &&
			   ((const struct acpi_header *)phys_ptr(facs))->length >= 64,
		   "FACS table valid", "at %lx", facs);
	test_check(acpi_fadt_pm1a_cnt() != 0, "FADT PM1a_CNT_BLK set", "0");
	acpi_check_table(acpi_dsdt(), "DSDT");
}

static int dsdt_has(const struct acpi_header *dsdt, const void *needle, size_t n)
{
	return dsdt && mem_find(dsdt, dsdt->length, needle, n) >= 0;
}

static void acpi_check_dsdt(void)
{
	static const uint8_t pnp0501[] = EISA_ID(0x05, 0x01, 0, 0);
	static const uint8_t pnp0a08[] = EISA_ID(0x0a, 0x08, 0, 0);
	static const uint8_t pnp0a03[] = EISA_ID(0x0a, 0x03, 0, 0);
	const struct acpi_header *dsdt = acpi_dsdt();

	test_check(dsdt_has(dsdt, "COM1", 4) || dsdt_has(dsdt, pnp0501, 4) ||
			   dsdt_has(dsdt, "PNP0501", 7),
		   "DSDT describes COM1 (PNP0501)", "not found");
	test_check(dsdt_has(dsdt, pnp0a08, 4) || dsdt_has(dsdt, pnp0a03, 4) ||
			   dsdt_has(dsdt, "PNP0A08", 7) || dsdt_has(dsdt, "PNP0A03", 7),
		   "DSDT has a PCI root bridge (PNP0A08/PNP0A03)", "not found");
	test_check(acpi_s5_slp_typ() >= 0, "DSDT has a \\_S5 package", "not found");
}

/* MADT IOAPIC (type 1) at ISOLA_IOAPIC_BASE and ISO IRQ 0 -> GSI 2 (type 2). */
static void acpi_check_madt_ioapic(const struct acpi_header *madt)
{
	const uint8_t *p, *end = (const uint8_t *)madt + madt->length;
	int ioapic = 0;

	for (p = (const uint8_t *)madt + MADT_ENTRIES; p + 2 <= end && p[1] >= 2; p += p[1]) {
		uint32_t addr, gsi;

		if (p[0] == 1 && p[1] >= 12) {
			memcpy(&addr, p + 4, 4);
			memcpy(&gsi, p + 8, 4);
			console_printf("MADT IOAPIC id %u at %x, GSI base %u\n", p[2], addr, gsi);
			ioapic |= addr == ISOLA_IOAPIC_BASE && gsi == 0;
		} else if (p[0] == 2 && p[1] >= 10) {
			memcpy(&gsi, p + 4, 4);
			console_printf("MADT override: ISA IRQ %u -> GSI %u, flags %x\n", p[3], gsi,
				       p[8] | p[9] << 8);
		}
	}
	test_check(ioapic, "MADT IOAPIC at 0xFEC00000, GSI base 0", "not found");
	test_check(acpi_isa_irq_to_gsi(0) == 2, "MADT override ISA IRQ 0 -> GSI 2", "IRQ 0 -> GSI %u",
		   acpi_isa_irq_to_gsi(0));
}

static void acpi_check_madt(const char *cmdline)
{
	const struct acpi_header *madt = acpi_find_table("APIC");
	uint32_t ids[SMP_MAX_CPUS];
	unsigned n;
	uint64_t cpus;

	if (!acpi_check_table(madt, "APIC"))
		return;
	n = acpi_madt_cpus(ids, SMP_MAX_CPUS);
	if (cmdline_get_u64(cmdline, "cpus", &cpus) == 0)
		test_check(n == cpus, "MADT LAPIC count == cpus=", "%u LAPICs, want %lu", n, cpus);
	else
		console_printf("note: no cpus= on the command line; %u LAPICs\n", n);
	acpi_check_madt_ioapic(madt);
}

static void acpi_check_mcfg(const char *cmdline)
{
	uint64_t want = cmdline_get_u64_default(cmdline, "ecam", ISOLA_ECAM_BASE);

	if (!acpi_check_table(acpi_find_table("MCFG"), "MCFG"))
		return;
	test_check(acpi_mcfg_base() == want, "MCFG ECAM base", "%lx, want %lx", acpi_mcfg_base(),
		   want);
}

int guest_main(const struct boot_info *info)
{
	uint64_t rsdp = info->rsdp ? info->rsdp : acpi_find_rsdp();
	const char *why = acpi_rsdp_invalid(rsdp);

	console_printf("isola acpi guest: RSDP at %lx (%s)\n", rsdp,
		       info->rsdp ? "from the loader" : "found by scan");
	if (!test_check(!why, "RSDP valid", "%s", why))
		return 1;
	acpi_check_xsdt(rsdp, cmdline_has(info->cmdline, "rsdt_ok"));
	acpi_check_fadt();
	acpi_check_dsdt();
	acpi_check_madt(info->cmdline);
	acpi_check_mcfg(info->cmdline);
	return 0;
}
