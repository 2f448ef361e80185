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
 *               [fill_mib=M] fill M MiB of RAM at 16 MiB with a pattern (in
 *               ring 3: native speed under PVM) and check all of it before
 *               each line; a mismatch prints "memory BAD ..." and fails:
 *               clones restored from one snapshot read it (and share it),
 *               tests/system/snapshot_clones.sh
 *               [stamp] with fill_mib: count N also writes N into the first
 *               word of every 64th page (page index = N mod 64), and the
 *               check wants each page's last stamp: a restore that lost a
 *               page written since a snapshot (a Diff snapshot's merge)
 *               shows
 */
#include "kit.h"

#define TICK_VECTOR 0x40
#define TICK_COUNT 625000 /* divide by 16: 10 ms at a 1 GHz APIC bus */
#define TICK_MS 10
#define PMTIMER_HZ 3579545ull
#define PMTIMER_MASK 0xffffffu

#define FILL_BASE (16ull << 20)
#define PAGE 4096ull
#define STAMP_STRIDE 64 /* count N stamps the pages with index == N mod 64 */

static volatile unsigned counter_ticks;
static uint64_t fill_pages; /* pages of the filled region (0: none) */

/* What word i of the filled region holds, apart from the stamps. */
static uint64_t fill_pattern(uint64_t addr)
{
	return (addr * 0x9e3779b97f4a7c15ull) ^ 0x5a5a5a5a5a5a5a5aull;
}

/* The last count (<= counts) that stamped page p, 0 if none did. */
static uint64_t fill_expected_stamp(uint64_t p, uint64_t counts)
{
	uint64_t back = (counts + STAMP_STRIDE - p % STAMP_STRIDE) % STAMP_STRIDE;

	return counts >= back + 1 ? counts - back : 0;
}

/* Ring 3: fill the region (each page's word 0 is its stamp, 0 at first). */
static uint64_t fill_ring3(uint64_t arg)
{
	(void)arg;
	for (uint64_t p = 0; p < fill_pages; p++) {
		volatile uint64_t *w = (volatile uint64_t *)(FILL_BASE + p * PAGE);

		w[0] = 0;
		for (uint64_t i = 1; i < PAGE / 8; i++)
			w[i] = fill_pattern((uint64_t)&w[i]);
	}
	return 0;
}

static uint64_t fill_stamping;

/* Ring 3: check the region after `counts` counts; 0, or 1 + the first bad
 * page's index. */
static uint64_t fill_check_ring3(uint64_t counts)
{
	for (uint64_t p = 0; p < fill_pages; p++) {
		const volatile uint64_t *w = (const volatile uint64_t *)(FILL_BASE + p * PAGE);

		if (w[0] != (fill_stamping ? fill_expected_stamp(p, counts) : 0))
			return p + 1;
		for (uint64_t i = 1; i < PAGE / 8; i++)
			if (w[i] != fill_pattern((uint64_t)&w[i]))
				return p + 1;
	}
	return 0;
}

/* Ring 3: count N stamps the pages with index == N mod STAMP_STRIDE. */
static uint64_t fill_stamp_ring3(uint64_t count)
{
	for (uint64_t p = count % STAMP_STRIDE; p < fill_pages; p += STAMP_STRIDE)
		*(volatile uint64_t *)(FILL_BASE + p * PAGE) = count;
	return 0;
}

static int fill_fits(const struct boot_info *info, uint64_t bytes)
{
	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 && info->mem[i].addr <= FILL_BASE &&
		    info->mem[i].addr + info->mem[i].size >= FILL_BASE + bytes)
			return 1;
	return 0;
}

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
	fill_pages = cmdline_get_u64_default(info->cmdline, "fill_mib", 0) * (1ull << 20) / PAGE;
	fill_stamping = cmdline_has(info->cmdline, "stamp");
	if (fill_pages) {
		if (!fill_fits(info, fill_pages * PAGE) ||
		    FILL_BASE + fill_pages * PAGE > 1ull << 32)
			test_abort("fill_mib", "%lu MiB at 16 MiB is not all RAM",
				   fill_pages / 256);
		run_in_ring3(fill_ring3, 0);
		console_printf("filled %lu MiB at 16 MiB%s\n", fill_pages / 256,
			       fill_stamping ? ", stamping" : "");
	}
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
		if (fill_pages) {
			uint64_t bad = run_in_ring3(fill_check_ring3, count);

			if (bad)
				test_abort("memory",
					   "memory BAD after count %lu: page %lu (at 0x%llx)",
					   count, bad - 1, FILL_BASE + (bad - 1) * PAGE);
			if (fill_stamping)
				run_in_ring3(fill_stamp_ring3, count + 1);
		}
		count++;
		console_printf("count %lu\n", count);
		if (limit && count >= limit)
			break;
	}
	lapic_timer_stop();
	test_pass("counted to %lu", count);
	return 0;
}
