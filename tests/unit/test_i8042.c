// SPDX-License-Identifier: MIT
/* Unit tests for arch/x86/i8042.c: self test, command byte, reset line,
 * Ctrl-Alt-Del. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arch/x86/i8042.h"
#include "arch/x86/ioapic.h"

#define DATA 0 /* port 0x60 */
#define CMD 4  /* port 0x64 */
#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_KEYLOCK 0x10 /* set: keyboard NOT inhibited */
#define STATUS_IDLE (STATUS_SYS | STATUS_KEYLOCK)

struct fixture {
	struct i8042 kbc;
	struct platform_events events;
	unsigned resets, poweroffs;
	const char *reset_source;
	bool level;
	unsigned rises; /* IRQ 1 is edge-triggered: each rise is one interrupt */
};

static void fake_reset(void *opaque, const char *source)
{
	struct fixture *f = opaque;

	f->resets++;
	f->reset_source = source;
}

static void fake_poweroff(void *opaque, const char *source)
{
	struct fixture *f = opaque;

	(void)source;
	f->poweroffs++;
}

static void fake_set_irq(void *opaque, bool level)
{
	struct fixture *f = opaque;

	if (level && !f->level)
		f->rises++;
	f->level = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->events = (struct platform_events){fake_reset, fake_poweroff, f};
	i8042_init(&f->kbc, &f->events, fake_set_irq, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	i8042_destroy(&f->kbc);
	free(f);
	return 0;
}

static void out(struct fixture *f, unsigned port, uint8_t val)
{
	i8042_access(&f->kbc, port, &val, 1, true);
}

static uint8_t in(struct fixture *f, unsigned port)
{
	uint8_t val = 0x5a;

	i8042_access(&f->kbc, port, &val, 1, false);
	return val;
}

static void test_status_idle(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, CMD), STATUS_IDLE);
	assert_int_equal(in(f, DATA), 0); /* empty output buffer */
	/* Ports 0x61-0x63 are not the controller. */
	assert_int_equal(in(f, 1), 0xff);
	assert_int_equal(in(f, 3), 0xff);
	out(f, 1, 0x00);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	assert_int_equal(f->resets, 0);
	assert_false(f->level);
}

static void test_self_tests(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xaa);
	assert_int_equal(in(f, CMD), STATUS_IDLE | STATUS_OBF);
	assert_int_equal(in(f, DATA), 0x55);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	out(f, CMD, 0xab); /* keyboard interface test */
	assert_int_equal(in(f, DATA), 0x00);
	out(f, CMD, 0xa9); /* aux interface test: no AUX port, clock line stuck low */
	assert_int_equal(in(f, DATA), 0x01);
	/* Commands without a reply queue nothing. */
	out(f, CMD, 0xad);
	out(f, CMD, 0xae);
	out(f, CMD, 0xa7);
	out(f, CMD, 0xa8);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	assert_int_equal(f->resets, 0);
}

static void test_command_byte(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x45); /* translate, system flag, kbd interrupt */
	out(f, CMD, 0x60);
	out(f, DATA, 0x47);
	assert_int_equal(in(f, CMD), STATUS_IDLE); /* the data byte was consumed, no ACK */
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x47);
	/* A data byte with no command pending is a keyboard command: ACK. */
	out(f, DATA, 0xf4);
	assert_int_equal(in(f, DATA), 0xfa);
	/* The pending command is used once. */
	out(f, CMD, 0x60);
	out(f, DATA, 0x44);
	out(f, DATA, 0xff);
	assert_int_equal(in(f, DATA), 0xfa);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x44);
}

static void test_command_byte_gates_irq(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xaa);
	assert_true(f->level);
	assert_int_equal(in(f, DATA), 0x55);
	assert_false(f->level);
	/* Keyboard interrupt bit 0 clear: output is queued, no IRQ. */
	out(f, CMD, 0x60);
	out(f, DATA, 0x44);
	out(f, CMD, 0xaa);
	assert_false(f->level);
	assert_int_equal(in(f, CMD), STATUS_IDLE | STATUS_OBF);
	/* Turning it back on raises the line for the waiting byte. */
	out(f, CMD, 0x60);
	out(f, DATA, 0x45);
	assert_true(f->level);
	assert_int_equal(in(f, DATA), 0x55);
	assert_false(f->level);
}

static void test_pulse_reset(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xfe);
	assert_int_equal(f->resets, 1);
	assert_non_null(f->reset_source);
	assert_int_equal(f->poweroffs, 0);
}

static void test_output_port_reset(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xd0);
	assert_int_equal(in(f, DATA) & 1, 1); /* reset line not asserted */
	/* Bit 0 set: no reset, and no ACK either. */
	out(f, CMD, 0xd1);
	out(f, DATA, 0xdf);
	assert_int_equal(f->resets, 0);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	/* Bit 0 clear pulls the CPU's reset line. */
	out(f, CMD, 0xd1);
	out(f, DATA, 0xfe);
	assert_int_equal(f->resets, 1);
	/* A 0xfe written as data with no command is a keyboard byte, not a reset. */
	out(f, DATA, 0xfe);
	assert_int_equal(f->resets, 1);
}

static void test_no_events(void **state)
{
	struct i8042 kbc;
	uint8_t cmd = 0xfe;

	(void)state;
	i8042_init(&kbc, NULL, NULL, NULL);
	i8042_access(&kbc, CMD, &cmd, 1, true); /* nobody to tell: ignored */
	i8042_send_ctrl_alt_del(&kbc);
	assert_int_equal(kbc.queue_count, 8);
	i8042_destroy(&kbc);
}

static void test_ctrl_alt_del(void **state)
{
	struct fixture *f = *state;
	static const uint8_t expected[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

	i8042_send_ctrl_alt_del(&f->kbc);
	assert_true(f->level);
	assert_int_equal(f->rises, 1);
	/* Linux's i8042_interrupt reads one byte per interrupt, so every byte
	 * must come with its own edge on IRQ 1. */
	for (unsigned i = 0; i < sizeof(expected); i++) {
		assert_int_equal(f->rises, i + 1);
		assert_int_equal(in(f, CMD), STATUS_IDLE | STATUS_OBF);
		assert_int_equal(in(f, DATA), expected[i]);
	}
	assert_int_equal(f->rises, sizeof(expected));
	assert_false(f->level);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	assert_int_equal(f->resets, 0);
}

static void test_queue_overflow(void **state)
{
	struct fixture *f = *state;
	static const uint8_t seq[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

	/* Three sequences (24 bytes) into a 16-byte queue: the excess is lost,
	 * the first 16 arrive in order. */
	for (unsigned i = 0; i < 3; i++)
		i8042_send_ctrl_alt_del(&f->kbc);
	for (unsigned i = 0; i < I8042_QUEUE_SIZE; i++)
		assert_int_equal(in(f, DATA), seq[i % sizeof(seq)]);
	assert_int_equal(in(f, CMD), STATUS_IDLE);
	assert_int_equal(in(f, DATA), 0);
	assert_false(f->level);
}

static void ioapic_irq1(void *opaque, bool level)
{
	ioapic_set_irq(opaque, 1, level);
}

/* Through a real IOAPIC pin programmed edge-triggered, as Linux does for
 * ISA IRQ 1: one interrupt per scancode. */
static void test_ctrl_alt_del_through_ioapic(void **state)
{
	struct ioapic ioapic;
	struct i8042 kbc;
	uint8_t data[4];
	uint32_t val;

	(void)state;
	ioapic_init(&ioapic, 0, NULL, NULL);
	val = 0x10 + 2 * 1;
	memcpy(data, &val, 4);
	ioapic_access(&ioapic, 0x00, data, 4, true);
	val = 0x31; /* vector 0x31, fixed, edge, unmasked */
	memcpy(data, &val, 4);
	ioapic_access(&ioapic, 0x10, data, 4, true);
	i8042_init(&kbc, NULL, ioapic_irq1, &ioapic);

	i8042_send_ctrl_alt_del(&kbc);
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(ioapic.delivered, i + 1);
		i8042_access(&kbc, DATA, data, 1, false);
	}
	assert_int_equal(ioapic.delivered, 8);
	i8042_destroy(&kbc);
	ioapic_destroy(&ioapic);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_status_idle),
		T(test_self_tests),
		T(test_command_byte),
		T(test_command_byte_gates_irq),
		T(test_pulse_reset),
		T(test_output_port_reset),
		cmocka_unit_test(test_no_events),
		T(test_ctrl_alt_del),
		T(test_queue_overflow),
		cmocka_unit_test(test_ctrl_alt_del_through_ioapic),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
