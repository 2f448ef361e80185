/* SPDX-License-Identifier: MIT */
/*
 * Start application processors with INIT-SIPI-SIPI (Intel SDM Vol 3
 * §9.4.4.1, §11.6.1), one at a time: each AP checks in before the next one
 * gets the trampoline, so one stack slot and one index variable suffice.
 */
#include "kit.h"

#define SMP_TRAMPOLINE 0x8000ul /* below 1 MiB, clear of the VMM's live structures */
#define SMP_AP_STACK 4096
#define ICR_INIT_ASSERT 0x00004500u
#define ICR_STARTUP 0x00004600u
#define SMP_CHECKIN_US 1000000

extern const uint8_t smp_tramp_start[], smp_tramp_end[];
extern const uint8_t smp_tramp_gdt_desc[], smp_tramp_cr3[], smp_tramp_stack[], smp_tramp_entry[];
extern const uint8_t kit_gdt_desc[], kit_pml4[];

static uint8_t smp_stacks[SMP_MAX_CPUS][SMP_AP_STACK] __attribute__((aligned(16)));
static volatile unsigned smp_index;
static volatile unsigned smp_checked_in;
static volatile unsigned smp_entered;
static smp_ap_fn smp_fn;

static void *smp_tramp_field(const uint8_t *label)
{
	return phys_ptr(SMP_TRAMPOLINE + (uint64_t)(label - smp_tramp_start));
}

static void smp_ap_main(void)
{
	unsigned index = smp_index;
	uint32_t id;

	idt_load();
	lapic_enable();
	id = lapic_id();
	__atomic_store_n(&smp_checked_in, index + 1, __ATOMIC_SEQ_CST);
	smp_fn(index, id);
	__atomic_fetch_add(&smp_entered, 1, __ATOMIC_SEQ_CST);
	cpu_halt_forever();
}

static void smp_install_trampoline(void)
{
	uint16_t limit;
	uint64_t gdt;

	memcpy(phys_ptr(SMP_TRAMPOLINE), smp_tramp_start, (size_t)(smp_tramp_end - smp_tramp_start));
	memcpy(&limit, kit_gdt_desc, 2);
	memcpy(&gdt, kit_gdt_desc + 2, 8);
	*(uint16_t *)smp_tramp_field(smp_tramp_gdt_desc) = limit;
	*(uint32_t *)smp_tramp_field(smp_tramp_gdt_desc + 2) = (uint32_t)gdt;
	*(uint64_t *)smp_tramp_field(smp_tramp_cr3) = (uint64_t)kit_pml4;
	*(uint64_t *)smp_tramp_field(smp_tramp_entry) = (uint64_t)smp_ap_main;
}

/* Bounded wait for AP index to check in. */
static int smp_wait_checkin(unsigned index)
{
	uint32_t start = pmtimer_read();

	for (unsigned long i = 0; i < 10000000ul; i++) {
		if (smp_checked_in == index + 1)
			return 0;
		if (pmtimer_present() && pmtimer_elapsed_us(start) > SMP_CHECKIN_US)
			break;
		cpu_relax();
	}
	return -1;
}

static int smp_start_one(unsigned index, uint32_t apic_id)
{
	uint32_t sipi = ICR_STARTUP | (uint32_t)(SMP_TRAMPOLINE >> 12);

	smp_index = index;
	*(uint64_t *)smp_tramp_field(smp_tramp_stack) = (uint64_t)(smp_stacks[index] + SMP_AP_STACK);
	if (lapic_send_ipi(apic_id, ICR_INIT_ASSERT))
		return -1;
	delay_us(10000);
	if (lapic_send_ipi(apic_id, sipi))
		return -1;
	delay_us(200);
	if (smp_checked_in != index + 1 && lapic_send_ipi(apic_id, sipi))
		return -1;
	return smp_wait_checkin(index);
}

unsigned smp_start_aps(const uint32_t *apic_ids, unsigned count, smp_ap_fn fn)
{
	uint32_t self = lapic_id();
	unsigned started = 0;

	smp_fn = fn;
	lapic_enable();
	smp_install_trampoline();
	for (unsigned i = 0; i < count && i < SMP_MAX_CPUS; i++) {
		if (apic_ids[i] == self)
			continue;
		if (smp_start_one(i, apic_ids[i]))
			console_printf("smp: APIC ID %u did not check in\n", apic_ids[i]);
		else
			started++;
	}
	/* Bounded wait for the last fn() calls to finish. */
	for (unsigned long i = 0; i < 1000000ul && smp_entered < started; i++)
		cpu_relax();
	return smp_entered;
}
