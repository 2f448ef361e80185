/* SPDX-License-Identifier: MIT */
/*
 * smp: start every AP listed in the MADT with INIT-SIPI-SIPI through the
 * xAPIC, each AP enters long mode, records its APIC ID and counts itself.
 * Command line: [cpus=<n>] (checked against the MADT when given)
 *               [hold=1] once every AP has checked in, print "smp: all N CPUs
 *               ran, holding" and halt forever instead of exiting, so a test
 *               can inspect the VMM while every vCPU thread has run guest code
 */
#include "kit.h"

static volatile uint32_t smp_seen_id[SMP_MAX_CPUS];
static volatile unsigned smp_seen;

static void smp_ap_report(unsigned index, uint32_t apic_id)
{
	smp_seen_id[index] = apic_id;
	__atomic_fetch_add(&smp_seen, 1, __ATOMIC_SEQ_CST);
}

static int smp_ids_distinct(const uint32_t *ids, unsigned n, uint32_t self)
{
	for (unsigned i = 0; i < n; i++) {
		if (ids[i] == self)
			continue;
		if (smp_seen_id[i] != ids[i]) {
			test_fail("AP APIC IDs", "AP %u reported %u, MADT says %u", i, smp_seen_id[i],
				  ids[i]);
			return 0;
		}
		for (unsigned j = 0; j < i; j++)
			if (ids[j] == ids[i]) {
				test_fail("AP APIC IDs", "APIC ID %u twice", ids[i]);
				return 0;
			}
	}
	return 1;
}

int guest_main(const struct boot_info *info)
{
	uint32_t ids[SMP_MAX_CPUS];
	unsigned n = acpi_madt_cpus(ids, SMP_MAX_CPUS), entered;
	uint32_t self = lapic_id();
	uint64_t cpus;

	console_printf("isola smp guest: %u CPUs in the MADT, BSP APIC ID %u\n", n, self);
	if (!test_check(n > 0 && n <= SMP_MAX_CPUS, "MADT lists CPUs", "%u", n))
		return 1;
	if (cmdline_get_u64(info->cmdline, "cpus", &cpus) == 0)
		test_check(n == cpus, "MADT CPU count == cpus=", "%u, want %lu", n, cpus);
	entered = smp_start_aps(ids, n, smp_ap_report);
	test_check(entered == n - 1 && smp_seen == n - 1, "all APs started",
		   "%u of %u APs ran (%u counted)", entered, n - 1, smp_seen);
	if (entered == n - 1 && smp_seen == n - 1 &&
	    cmdline_get_u64_default(info->cmdline, "hold", 0)) {
		console_printf("smp: all %u CPUs ran, holding\n", n);
		cpu_halt_forever();
	}
	if (smp_ids_distinct(ids, n, self))
		test_pass("APs report distinct APIC IDs matching the MADT");
	return 0;
}
