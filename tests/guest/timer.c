/* SPDX-License-Identifier: MIT */
/*
 * timer: the LAPIC timer (Intel SDM Vol 3 §11.5.4) counts down, raises its
 * vector, and a one-shot wakes HLT.  Before any HLT the guest proves the
 * interrupt arrives, so a broken timer gives FAIL instead of a hang.
 */
#include "kit.h"

#define TIMER_VECTOR 0x40
#define TIMER_COUNT 100000 /* divide by 16: 1.6 ms at a 1 GHz APIC bus */
#define TIMER_POLLS 200000
#define TIMER_HLT_TRIES 5

static volatile unsigned timer_ticks;

static void timer_irq(struct idt_frame *frame)
{
	(void)frame;
	timer_ticks++;
	lapic_eoi();
}

/* Poll with interrupts off until the count reaches 0; 0 on success. */
static int timer_poll_expiry(void)
{
	uint32_t first = lapic_read(LAPIC_TIMER_CUR), cur = first;

	for (int i = 0; i < TIMER_POLLS && cur; i++)
		cur = lapic_read(LAPIC_TIMER_CUR);
	console_printf("timer: current count %u -> %u\n", first, cur);
	return cur == 0 ? 0 : -1;
}

static int timer_hlt_wakes(void)
{
	for (int i = 0; i < TIMER_HLT_TRIES; i++) {
		unsigned before = timer_ticks;
		uint32_t start = pmtimer_read();

		lapic_timer_start(TIMER_VECTOR, TIMER_COUNT, 0);
		cpu_sti_hlt();
		cpu_cli();
		if (timer_ticks != before) {
			if (pmtimer_present())
				console_printf("timer: HLT woke after %lu us\n",
					       pmtimer_elapsed_us(start));
			return 0;
		}
	}
	return -1;
}

int guest_main(const struct boot_info *info)
{
	(void)info;
	console_printf("isola timer guest: LAPIC version %x\n", lapic_read(LAPIC_VERSION));
	idt_set_handler(TIMER_VECTOR, timer_irq);
	lapic_enable();
	lapic_timer_start(TIMER_VECTOR, TIMER_COUNT, 0);
	if (!test_check(timer_poll_expiry() == 0, "one-shot timer counts down to 0",
			"still counting after %d reads", TIMER_POLLS))
		return 1;
	console_printf("timer: IRR bit %s\n",
		       lapic_read(LAPIC_IRR + (TIMER_VECTOR / 32) * 0x10) & (1u << (TIMER_VECTOR % 32))
			       ? "set" : "clear");
	/*
	 * Open short interrupt windows, each with a LAPIC read: emulators check
	 * for interrupts at branches, and a VM exit lets KVM inject.  STI
	 * holds interrupts off for one more instruction (its interrupt shadow,
	 * Intel SDM vol. 2B "STI"): the nop takes the shadow, so the LAPIC
	 * read's exit comes with the window open; without it each window was
	 * only the shadow, and an injection then depended on KVM's interrupt
	 * window exit landing before the CLI (under ASan and a loaded host,
	 * PVM missed all 1000 once in make check).
	 */
	for (int i = 0; i < 1000 && !timer_ticks; i++) {
		cpu_sti();
		__asm__ volatile("nop");
		(void)lapic_read(LAPIC_TIMER_CUR);
		cpu_cli();
	}
	if (!test_check(timer_ticks == 1, "expired timer delivers its vector", "%u interrupts",
			timer_ticks))
		return 1;
	test_check(timer_hlt_wakes() == 0, "one-shot timer wakes HLT", "%d tries",
		   TIMER_HLT_TRIES);
	lapic_timer_stop();
	return 0;
}
