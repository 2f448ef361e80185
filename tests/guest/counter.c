/* SPDX-License-Identifier: MIT */
/*
 * counter: prints "count N" about every 100 ms, forever, so a test can see
 * the count stop while the VM is paused and continue after it resumes.
 * The guest HLTs between LAPIC timer ticks (about 10 ms) and measures time
 * with the ACPI PM timer (ACPI 6.4 §4.8.3.3); without one, it counts ticks.
 * Time is summed from consecutive PM timer reads, so a pause longer than the
 * timer's 24-bit wrap (~4.7 s) costs at most one early line, never a stall.
 * Command line: [limit=N] exit PASS after N counts (default: never)
 *               [period_ms=P] interval between lines (default 100)
 *               [pci] first print the PCI devices on bus 0 (the line hello
 *               prints): a test counts the disks an orchestrator attached
 */
#include "kit.h"

#define TICK_VECTOR 0x40
#define TICK_COUNT 625000 /* divide by 16: 10 ms at a 1 GHz APIC bus */
#define TICK_MS 10
#define PMTIMER_HZ 3579545ull
#define PMTIMER_MASK 0xffffffu

static volatile unsigned counter_ticks;

static void counter_tick_irq(struct idt_frame *frame)
{
	(void)frame;
	counter_ticks++;
	lapic_eoi();
}

/* Sleep until the next interrupt; "sti; hlt" is a VM exit, so a pending
 * timer interrupt is delivered there even on PVM. */
static void counter_wait_tick(void)
{
	cpu_sti_hlt();
	cpu_cli();
}

int guest_main(const struct boot_info *info)
{
	uint64_t limit = cmdline_get_u64_default(info->cmdline, "limit", 0);
	uint64_t period_ms = cmdline_get_u64_default(info->cmdline, "period_ms", 100);
	uint64_t period_ticks = period_ms * PMTIMER_HZ / 1000;
	uint64_t elapsed = 0, count = 0;
	unsigned last_tick = 0;
	uint32_t last = pmtimer_read();

	console_printf("isola counter guest: every %lu ms, limit %lu (0: none), %s\n", period_ms,
		       limit, pmtimer_present() ? "PM timer" : "LAPIC ticks");
	if (cmdline_has(info->cmdline, "pci"))
		pci_print_bus0();
	idt_set_handler(TICK_VECTOR, counter_tick_irq);
	lapic_enable();
	lapic_timer_start(TICK_VECTOR, TICK_COUNT, 1);
	for (;;) {
		counter_wait_tick();
		if (pmtimer_present()) {
			uint32_t now = pmtimer_read();

			elapsed += (now - last) & PMTIMER_MASK;
			last = now;
		} else {
			elapsed += (uint64_t)(counter_ticks - last_tick) * TICK_MS * PMTIMER_HZ / 1000;
			last_tick = counter_ticks;
		}
		if (elapsed < period_ticks)
			continue;
		/* After a pause, do not print a burst of lines to catch up. */
		elapsed = 0;
		count++;
		console_printf("count %lu\n", count);
		if (limit && count >= limit)
			break;
	}
	lapic_timer_stop();
	test_pass("counted to %lu", count);
	return 0;
}
