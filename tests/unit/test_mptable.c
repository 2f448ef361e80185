// SPDX-License-Identifier: MIT
/*
 * The MP table (arch/x86/mptable.c), read back the way Linux's
 * arch/x86/kernel/mpparse.c reads it: the floating pointer found by
 * scanning the first KiB, the last KiB of base memory and 0xF0000-0xFFFFF
 * in 16-byte steps (signature, length 1, checksum, spec 1 or 4), then the
 * configuration table it points to (signature, checksum over its length,
 * spec, LAPIC address) walked entry by entry by type, every field by the
 * byte offsets of the MP spec 1.4 (§4), not through mptable.c's code.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "isola/abi.h"

/* the guest's first MiB, where the loader puts the tables */
static uint8_t low[LAYOUT_HIGH_MEMORY];

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static unsigned sum(const uint8_t *p, size_t n)
{
	unsigned s = 0;

	while (n--)
		s += *p++;
	return s & 0xff;
}

/* mpparse.c smp_scan_config: the first valid floating pointer in a range */
static long scan(uint64_t base, uint64_t len)
{
	for (; len >= 16; base += 16, len -= 16) {
		const uint8_t *p = low + base;

		if (!memcmp(p, "_MP_", 4) && p[8] == 1 && !sum(p, 16) && (p[9] == 1 || p[9] == 4))
			return (long)base;
	}
	return -1;
}

/* default_find_smp_config's order (the BDA's EBDA pointer is 0 here) */
static long find_mpf(void)
{
	long at = scan(0, 0x400);

	if (at < 0)
		at = scan(639 * 0x400, 0x400);
	if (at < 0)
		at = scan(0xf0000, 0x10000);
	return at;
}

/* build into low[] as the loader does (ACPI tables too) */
static size_t build(unsigned nr_cpus)
{
	struct acpi_config acfg = {.nr_cpus = nr_cpus};
	size_t used = 0, aused = 0;

	memset(low, 0, sizeof(low));
	assert_int_equal(
	    acpi_build(low + LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &acfg, &aused),
	    0);
	assert_int_equal(mptable_build(low + LAYOUT_MPTABLE_START, LAYOUT_MPTABLE_SIZE,
				       LAYOUT_MPTABLE_START, nr_cpus, &used),
			 0);
	assert_int_equal(used, mptable_size(nr_cpus));
	assert_true(used <= LAYOUT_MPTABLE_SIZE);
	return used;
}

/* what a walk of the configuration table found */
struct seen {
	unsigned cpus, bsp, buses, ioapics, ioints, lints, entries;
	int isa_bus, pci_bus;
	int pin_of_irq[16]; /* -1: no entry */
	unsigned flags_of_irq[16];
	int nmi_lint;
};

static void walk(unsigned nr_cpus, struct seen *s)
{
	long mpf = find_mpf();
	uint8_t ioapic = acpi_ioapic_id(nr_cpus);

	memset(s, 0, sizeof(*s));
	s->isa_bus = s->pci_bus = s->nmi_lint = -1;
	for (unsigned i = 0; i < 16; i++)
		s->pin_of_irq[i] = -1;

	/* §4.1 the floating pointer */
	assert_int_equal(mpf, LAYOUT_MPTABLE_START);
	const uint8_t *f = low + mpf;
	assert_int_equal(f[9], 4);
	assert_int_equal(f[11], 0);	   /* a configuration table, no default config */
	assert_int_equal(f[12] & 0x80, 0); /* virtual wire: no IMCR */
	uint32_t physptr = le32(f + 4);
	assert_true(physptr >= LAYOUT_MPTABLE_START);
	assert_true(physptr + 44 <= LAYOUT_MPTABLE_START + LAYOUT_MPTABLE_SIZE);

	/* §4.2 the header (mpparse.c smp_check_mpc) */
	const uint8_t *c = low + physptr;
	uint16_t len = le16(c + 4);
	assert_memory_equal(c, "PCMP", 4);
	assert_true(physptr + len <= LAYOUT_MPTABLE_START + LAYOUT_MPTABLE_SIZE);
	assert_int_equal(sum(c, len), 0);
	assert_int_equal(c[6], 4);
	assert_int_equal(le32(c + 36), ISOLA_LAPIC_BASE);
	assert_int_equal(le16(c + 40), 0); /* no extended entries */
	assert_int_equal(le32(c + 28), 0); /* no OEM table */

	/* §4.3 the entries, in type order */
	unsigned off = 44, last_type = 0;
	while (off < len) {
		const uint8_t *e = c + off;

		assert_true(e[0] >= last_type); /* §4.3: sorted by entry type */
		last_type = e[0];
		s->entries++;
		switch (e[0]) {
		case MPTABLE_TYPE_CPU:
			assert_true(off + 20 <= len);
			assert_int_equal(e[1], s->cpus);     /* APIC ID = vCPU index */
			assert_int_equal(e[2] & 0xf0, 0x10); /* an integrated APIC */
			assert_true(e[3] & 1);		     /* enabled */
			if (e[3] & 2) {
				assert_int_equal(e[1], 0);
				s->bsp++;
			}
			s->cpus++;
			off += 20;
			break;
		case MPTABLE_TYPE_BUS:
			if (!memcmp(e + 2, "ISA   ", 6))
				s->isa_bus = e[1];
			else if (!memcmp(e + 2, "PCI   ", 6))
				s->pci_bus = e[1];
			else
				fail_msg("bus type %.6s", (const char *)e + 2);
			s->buses++;
			off += 8;
			break;
		case MPTABLE_TYPE_IOAPIC:
			assert_int_equal(e[1], ioapic);
			assert_true(e[3] & 1);
			assert_int_equal(le32(e + 4), ISOLA_IOAPIC_BASE);
			s->ioapics++;
			off += 8;
			break;
		case MPTABLE_TYPE_IOINT:
			assert_int_equal(e[1], 0); /* INT */
			assert_int_equal(e[4], s->isa_bus);
			assert_true(e[5] < 16);
			assert_int_equal(s->pin_of_irq[e[5]], -1); /* one entry an IRQ */
			assert_int_equal(e[6], ioapic);
			s->pin_of_irq[e[5]] = e[7];
			s->flags_of_irq[e[5]] = le16(e + 2);
			s->ioints++;
			off += 8;
			break;
		case MPTABLE_TYPE_LINT:
			assert_int_equal(e[1], 1); /* NMI */
			assert_int_equal(e[6], 0xff);
			s->nmi_lint = e[7];
			s->lints++;
			off += 8;
			break;
		default:
			fail_msg("unknown entry type %u at offset %u", e[0], off);
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(le16(c + 34), s->entries); /* ENTRY COUNT */
}

static void check(unsigned nr_cpus)
{
	struct seen s;

	build(nr_cpus);
	walk(nr_cpus, &s);
	assert_int_equal(s.cpus, nr_cpus);
	assert_int_equal(s.bsp, 1);
	assert_int_equal(s.buses, 2);
	assert_int_equal(s.pci_bus, 0); /* a PCI bus ID is its bus number */
	assert_true(s.isa_bus >= 0);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.lints, 1);
	assert_int_equal(s.nmi_lint, 1);
	/* the MADT's wiring: IRQ 0 on pin 2 edge/high (0x5), the SCI level/high
	 * (0xd), the rest identity and conforming to ISA (edge/high), no IRQ 2 */
	assert_int_equal(s.ioints, 15);
	assert_int_equal(s.pin_of_irq[0], 2);
	assert_int_equal(s.flags_of_irq[0], 0x5);
	assert_int_equal(s.pin_of_irq[2], -1);
	assert_int_equal(s.pin_of_irq[ISOLA_ACPI_SCI_IRQ], ISOLA_ACPI_SCI_IRQ);
	assert_int_equal(s.flags_of_irq[ISOLA_ACPI_SCI_IRQ], 0xd);
	assert_int_equal(s.pin_of_irq[ISOLA_IRQ_COM1], ISOLA_IRQ_COM1);
	assert_int_equal(s.flags_of_irq[ISOLA_IRQ_COM1], 0);
	for (unsigned irq = 1; irq < 16; irq++)
		if (irq != 2)
			assert_int_equal(s.pin_of_irq[irq], irq);
}

static void test_cpu_counts(void **state)
{
	(void)state;
	static const unsigned counts[] = {1, 2, 3, 4, 8, 64, 255};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		check(counts[i]);
}

/* the ACPI tables stay where a guest finds them: the RSDP at 0xE0000 (and
 * first in the BIOS-area scan), and neither table reaches into the other */
static void test_acpi_untouched(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 255; n += 127) {
		struct acpi_config acfg = {.nr_cpus = n};
		size_t aused;
		static uint8_t alone[LAYOUT_ACPI_SIZE];

		assert_int_equal(acpi_build(alone, sizeof(alone), LAYOUT_ACPI_START, &acfg, &aused),
				 0);
		build(n);
		assert_memory_equal(low + LAYOUT_ACPI_START, alone, aused);
		assert_true(LAYOUT_ACPI_START + aused <= LAYOUT_MPTABLE_START);
		assert_memory_equal(low + LAYOUT_ACPI_START, "RSD PTR ", 8);
	}
	assert_true(LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE <= LAYOUT_MPTABLE_START);
}

/* the table lies in what e820 reserves, so the guest never takes it as RAM */
static void test_e820_reserved(void **state)
{
	struct e820_table t;
	uint64_t lo = LAYOUT_MPTABLE_START, hi = lo + mptable_size(255);
	int covered = 0;

	(void)state;
	assert_int_equal(e820_build(&t, 256ull << 20), 0);
	for (unsigned i = 0; i < t.nr_entries; i++) {
		const struct e820_entry *e = &t.entries[i];

		if (e->addr + e->size <= lo || e->addr >= hi)
			continue;
		assert_int_equal(e->type, E820_RESERVED);
		if (e->addr <= lo && e->addr + e->size >= hi)
			covered = 1;
	}
	assert_true(covered);
}

static void test_bad_input(void **state)
{
	static uint8_t b[8192];
	size_t used = 12345;

	(void)state;
	assert_int_equal(mptable_build(b, sizeof(b), 0xf0000, 0, &used), -EINVAL);
	assert_int_equal(mptable_build(b, sizeof(b), 0xf0000, 256, &used), -EINVAL);
	assert_int_equal(mptable_build(b, sizeof(b), 0xf0008, 1, &used), -EINVAL);
	assert_int_equal(mptable_build(b, sizeof(b), 0xfffffff0ull, 1, &used), -EINVAL);
	assert_int_equal(used, 12345);
}

/* every short buffer: -ENOSPC and not a byte written */
static void test_too_small(void **state)
{
	static uint8_t b[8192];

	(void)state;
	for (unsigned n = 1; n <= 255; n += 254) {
		size_t need = mptable_size(n), used = 0;

		assert_true(need <= sizeof(b));
		for (size_t size = 0; size < need; size++) {
			memset(b, 0xa5, sizeof(b));
			assert_int_equal(mptable_build(b, size, 0xf0000, n, &used), -ENOSPC);
			for (size_t i = 0; i < sizeof(b); i++)
				assert_int_equal(b[i], 0xa5);
		}
		assert_int_equal(mptable_build(b, need, 0xf0000, n, &used), 0);
		assert_int_equal(used, need);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpu_counts),	  cmocka_unit_test(test_acpi_untouched),
	    cmocka_unit_test(test_e820_reserved), cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_too_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
