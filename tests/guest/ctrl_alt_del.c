/* SPDX-License-Identifier: MIT */
/*
 * ctrl_alt_del: the keyboard controller (i8042) raises ISA IRQ 1 through the
 * IOAPIC for each scancode, and the host's SendCtrlAltDel arrives as
 * Ctrl (0x1d), Alt (0x38), Del (0xe0 0x53) in scancode set 1.
 * The guest sets the command byte's keyboard-interrupt bit (port 0x64 cmd
 * 0x20/0x60, IBM PS/2 Technical Reference), routes IRQ 1's GSI (after MADT
 * overrides), prints READY, then HLTs until it has seen the three keys; a
 * LAPIC periodic timer bounds the wait.  Scancodes are read in the
 * interrupt handler only, one per interrupt as Linux does, so a PASS proves
 * the interrupt path and an edge per byte.
 * Command line: [wait_s=<s>] (default 30)
 */
#include "kit.h"

#define KBD_VECTOR 0x21
#define WATCHDOG_VECTOR 0x40
#define WATCHDOG_COUNT 625000 /* divide by 16: 10 ms at a 1 GHz APIC bus */
#define WATCHDOG_TICK_US 10000
#define KBD_IRQ 1
#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define I8042_COMMAND 0x64
#define I8042_STATUS_OUTPUT_FULL 0x01
#define I8042_STATUS_INPUT_FULL 0x02
#define I8042_CMD_READ_COMMAND_BYTE 0x20
#define I8042_CMD_WRITE_COMMAND_BYTE 0x60
#define I8042_CMD_BYTE_KBD_INT 0x01
#define SC_CTRL 0x1d
#define SC_ALT 0x38
#define SC_EXTENDED 0xe0
#define SC_DEL 0x53 /* after 0xe0 */
#define SCANCODE_LOG 16

static volatile unsigned kbd_irqs, watchdog_ticks, scancode_count;
static volatile uint8_t scancodes[SCANCODE_LOG];
static volatile int seen_ctrl, seen_alt, seen_del, extended;

static void kbd_scancode(uint8_t sc)
{
	if (scancode_count < SCANCODE_LOG)
		scancodes[scancode_count] = sc;
	scancode_count++;
	if (sc == SC_EXTENDED) {
		extended = 1;
		return;
	}
	if (extended && sc == SC_DEL && seen_ctrl && seen_alt)
		seen_del = 1;
	else if (!extended && sc == SC_CTRL)
		seen_ctrl = 1;
	else if (!extended && sc == SC_ALT)
		seen_alt = 1;
	extended = 0;
}

/* Like Linux's i8042 driver: one byte per interrupt, so each byte must
 * raise its own edge on IRQ 1 (8 scancodes -> 8 interrupts). */
static void kbd_irq(struct idt_frame *frame)
{
	(void)frame;
	kbd_irqs++;
	if (io_in8(I8042_STATUS) & I8042_STATUS_OUTPUT_FULL)
		kbd_scancode(io_in8(I8042_DATA));
	lapic_eoi();
}

static void watchdog_irq(struct idt_frame *frame)
{
	(void)frame;
	watchdog_ticks++;
	lapic_eoi();
}

static void i8042_drain(void)
{
	for (int i = 0; i < 64 && (io_in8(I8042_STATUS) & I8042_STATUS_OUTPUT_FULL); i++)
		(void)io_in8(I8042_DATA);
}

static int i8042_wait_input_empty(void)
{
	for (int i = 0; i < 10000; i++)
		if (!(io_in8(I8042_STATUS) & I8042_STATUS_INPUT_FULL))
			return 0;
	return -1;
}

/* Read the command byte, set the keyboard-interrupt bit, write it back;
 * returns the byte read (or -1 if the controller never answered). */
static int i8042_enable_kbd_irq(void)
{
	int cmd = -1;

	i8042_drain();
	if (i8042_wait_input_empty())
		return -1;
	io_out8(I8042_COMMAND, I8042_CMD_READ_COMMAND_BYTE);
	for (int i = 0; i < 10000; i++)
		if (io_in8(I8042_STATUS) & I8042_STATUS_OUTPUT_FULL) {
			cmd = io_in8(I8042_DATA);
			break;
		}
	if (cmd < 0 || i8042_wait_input_empty())
		return -1;
	io_out8(I8042_COMMAND, I8042_CMD_WRITE_COMMAND_BYTE);
	if (i8042_wait_input_empty())
		return -1;
	io_out8(I8042_DATA, (uint8_t)cmd | I8042_CMD_BYTE_KBD_INT);
	return cmd;
}

/* HLT until Ctrl-Alt-Del or the deadline; every wake-up re-checks both. */
static void kbd_wait(uint64_t wait_us)
{
	uint32_t start = pmtimer_read();

	for (;;) {
		cpu_sti_hlt();
		cpu_cli();
		if (seen_del)
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
	uint64_t wait_s = cmdline_get_u64_default(info->cmdline, "wait_s", 30);
	unsigned gsi = acpi_isa_irq_to_gsi(KBD_IRQ);
	int cmd;

	console_printf("isola ctrl_alt_del guest: IRQ %u -> GSI %u -> vector 0x%x\n", KBD_IRQ, gsi,
		       KBD_VECTOR);
	idt_set_handler(KBD_VECTOR, kbd_irq);
	idt_set_handler(WATCHDOG_VECTOR, watchdog_irq);
	lapic_enable();
	cmd = i8042_enable_kbd_irq();
	if (cmd < 0)
		test_abort("i8042 command byte", "the controller did not answer command 0x20");
	console_printf("i8042 command byte 0x%02x -> 0x%02x\n", cmd, cmd | I8042_CMD_BYTE_KBD_INT);
	i8042_drain();
	ioapic_route(gsi, KBD_VECTOR, lapic_id(), 0);
	lapic_timer_start(WATCHDOG_VECTOR, WATCHDOG_COUNT, 1);
	console_printf("READY\n");
	kbd_wait(wait_s * 1000000);
	lapic_timer_stop();
	ioapic_mask(gsi);
	console_printf("scancodes (%u, %u IRQs):", scancode_count, kbd_irqs);
	for (unsigned i = 0; i < scancode_count && i < SCANCODE_LOG; i++)
		console_printf(" %02x", scancodes[i]);
	console_printf("\n");
	if (!seen_del) {
		test_fail("ctrl-alt-del", "not seen within %lu s (ctrl %d, alt %d, %u watchdog ticks)",
			  wait_s, seen_ctrl, seen_alt, watchdog_ticks);
		return 1;
	}
	test_pass("ctrl-alt-del");
	return 0;
}
