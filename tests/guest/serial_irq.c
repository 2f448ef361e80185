/* SPDX-License-Identifier: MIT */
/*
 * serial_irq: a byte received on COM1 raises ISA IRQ 4 through the IOAPIC.
 * The guest enables the UART's receive interrupt (IER bit 0, OUT2), routes
 * the IRQ's GSI (after MADT overrides) to a vector, prints READY, then HLTs
 * until the byte arrives; a LAPIC periodic timer bounds the wait.
 * Command line: [expect_byte=<n>] (default 0x5a, 'Z') [wait_s=<s>] (default 10)
 */
#include "kit.h"

#define SERIAL_VECTOR 0x24
#define WATCHDOG_VECTOR 0x40
#define WATCHDOG_COUNT 625000 /* divide by 16: 10 ms at a 1 GHz APIC bus */
#define WATCHDOG_TICK_US 10000
#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LSR 5
#define UART_LSR_DR 0x01

static volatile int serial_byte = -1;
static volatile unsigned serial_irqs, watchdog_ticks;

static void serial_rx_irq(struct idt_frame *frame)
{
	const uint16_t base = ISOLA_PORT_COM1;

	(void)frame;
	serial_irqs++;
	(void)io_in8(base + UART_IIR);
	for (int i = 0; i < 16 && (io_in8(base + UART_LSR) & UART_LSR_DR); i++) {
		uint8_t b = io_in8(base + UART_RBR);

		if (serial_byte < 0)
			serial_byte = b;
	}
	lapic_eoi();
}

static void watchdog_irq(struct idt_frame *frame)
{
	(void)frame;
	watchdog_ticks++;
	lapic_eoi();
}

static void serial_drain(void)
{
	for (int i = 0; i < 64 && (io_in8(ISOLA_PORT_COM1 + UART_LSR) & UART_LSR_DR); i++)
		(void)io_in8(ISOLA_PORT_COM1 + UART_RBR);
}

/* HLT until a byte or the deadline; every wake-up re-checks both. */
static void serial_wait(uint64_t wait_us)
{
	uint32_t start = pmtimer_read();

	for (;;) {
		cpu_sti_hlt();
		cpu_cli();
		if (serial_byte >= 0)
			return;
		if (pmtimer_present() ? pmtimer_elapsed_us(start) >= wait_us
				      : (uint64_t)watchdog_ticks * WATCHDOG_TICK_US >= wait_us)
			return;
		/* The 24-bit PM timer wraps every ~4.7 s: restart the window. */
		if (pmtimer_present() && pmtimer_elapsed_us(start) > 4000000) {
			wait_us -= pmtimer_elapsed_us(start);
			start = pmtimer_read();
		}
	}
}

int guest_main(const struct boot_info *info)
{
	uint64_t want = cmdline_get_u64_default(info->cmdline, "expect_byte", 'Z');
	uint64_t wait_s = cmdline_get_u64_default(info->cmdline, "wait_s", 10);
	unsigned gsi = acpi_isa_irq_to_gsi(ISOLA_IRQ_COM1);

	console_printf("isola serial_irq guest: IRQ %u -> GSI %u -> vector 0x%x\n", ISOLA_IRQ_COM1,
		       gsi, SERIAL_VECTOR);
	idt_set_handler(SERIAL_VECTOR, serial_rx_irq);
	idt_set_handler(WATCHDOG_VECTOR, watchdog_irq);
	lapic_enable();
	serial_drain();
	ioapic_route(gsi, SERIAL_VECTOR, lapic_id(), 0);
	io_out8(ISOLA_PORT_COM1 + UART_IER, 0x01); /* received-data-available interrupt */
	lapic_timer_start(WATCHDOG_VECTOR, WATCHDOG_COUNT, 1);
	console_printf("READY\n");
	serial_wait(wait_s * 1000000);
	lapic_timer_stop();
	io_out8(ISOLA_PORT_COM1 + UART_IER, 0x00);
	ioapic_mask(gsi);
	if (serial_byte < 0) {
		test_fail("serial RX interrupt", "no byte within %lu s (%u IRQs, %u watchdog ticks)",
			  wait_s, serial_irqs, watchdog_ticks);
		return 1;
	}
	if (serial_byte != (int)want) {
		test_fail("serial RX interrupt", "got byte 0x%02x, want 0x%02lx", serial_byte, want);
		return 1;
	}
	test_pass("got byte 0x%02x", serial_byte);
	return 0;
}
