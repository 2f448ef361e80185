// SPDX-License-Identifier: MIT
/* Unit tests for arch/x86/i8042.c: self test, command byte, reset line,
 * Ctrl-Alt-Del, and Linux's probe of the controller replayed port access by
 * port access. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/i8042.h"
#include "arch/x86/ioapic.h"

#define DATA 0 /* port 0x60 */
#define CMD 4  /* port 0x64 */
#define STATUS_OBF 0x01
#define STATUS_IBF 0x02
#define STATUS_SYS 0x04
#define STATUS_KEYLOCK 0x10 /* set: keyboard NOT inhibited */
#define STATUS_AUXDATA 0x20
#define STATUS_TIMEOUT 0x40
#define STATUS_IDLE (STATUS_SYS | STATUS_KEYLOCK)

/* What Linux's drivers/input/serio/i8042.c (v6.1) keeps about the
 * controller, and what it would print, in the replay below. */
struct linux_driver {
	uint8_t ctr, initial_ctr;
	bool keylock_warning; /* "i8042: Warning: Keylock active" */
	bool aux_warning;     /* "Failed to disable AUX port, ... Is this a SiS?" */
	bool aux_irq_test;    /* reached the AUX IRQ test: waits up to 250 ms for IRQ 12 */
	unsigned stale_reads; /* RCTR answers that were not the command byte */
};

struct fixture {
	struct i8042 kbc;
	struct platform_events events;
	unsigned resets, poweroffs;
	const char *reset_source;
	bool level;
	unsigned rises; /* IRQ 1 is edge-triggered: each rise is one interrupt */
	struct linux_driver drv;
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

/*
 * Linux's side of the probe, transcribed from drivers/input/serio/i8042.c
 * (v6.1; the probe has read this way since 2.6): the same port reads and
 * writes, in the same order, with the same checks.  Where Linux polls the
 * status register up to I8042_CTL_TIMEOUT (10000) times 50 us apart, one
 * poll tells here: the model answers synchronously, so a byte that is not
 * there at once never comes, and Linux would spend 0.5 s finding that out.
 */
#define LINUX_CTR_KBDINT 0x01
#define LINUX_CTR_AUXINT 0x02
#define LINUX_CTR_KBDDIS 0x10
#define LINUX_CTR_AUXDIS 0x20
#define LINUX_CTR_XLATE 0x40
/* i8042.h: low byte the command, bits 8-11 bytes returned, 12-15 bytes sent */
#define LINUX_CMD_CTL_RCTR 0x0120
#define LINUX_CMD_CTL_WCTR 0x1060
#define LINUX_CMD_CTL_TEST 0x01aa
#define LINUX_CMD_AUX_DISABLE 0x00a7
#define LINUX_CMD_AUX_ENABLE 0x00a8
#define LINUX_CMD_AUX_TEST 0x01a9
#define LINUX_CMD_AUX_LOOP 0x11d3

static int linux_wait_read(struct fixture *f)
{
	return (in(f, CMD) & STATUS_OBF) ? 0 : -1;
}

static int linux_wait_write(struct fixture *f)
{
	return (in(f, CMD) & STATUS_IBF) ? -1 : 0;
}

/* i8042_flush: read while OBF, at most I8042_BUFFER_SIZE (16) bytes. */
static int linux_flush(struct fixture *f)
{
	unsigned count = 0;

	while (in(f, CMD) & STATUS_OBF) {
		if (count++ >= 16)
			return -EIO;
		(void)in(f, DATA);
	}
	return 0;
}

/* __i8042_command: AUX_LOOP's answer must carry AUXDATA. */
static int linux_command(struct fixture *f, uint8_t *param, int command)
{
	if (linux_wait_write(f))
		return -1;
	out(f, CMD, command & 0xff);
	for (int i = 0; i < ((command >> 12) & 0xf); i++) {
		if (linux_wait_write(f))
			return -1;
		out(f, DATA, param[i]);
	}
	for (int i = 0; i < ((command >> 8) & 0xf); i++) {
		if (linux_wait_read(f))
			return -1;
		if (command == LINUX_CMD_AUX_LOOP && !(in(f, CMD) & STATUS_AUXDATA))
			return -1;
		param[i] = in(f, DATA);
	}
	return 0;
}

/* i8042_controller_check */
static int linux_controller_check(struct fixture *f)
{
	return linux_flush(f) ? -ENODEV : 0;
}

/* i8042_controller_selftest (run when i8042.reset asks for it) */
static int linux_controller_selftest(struct fixture *f)
{
	uint8_t param = 0;

	for (int i = 0; i < 5; i++) {
		if (linux_command(f, &param, LINUX_CMD_CTL_TEST))
			return -ENODEV;
		if (param == 0x55)
			return 0;
	}
	return -EIO;
}

/* i8042_controller_init */
static int linux_controller_init(struct fixture *f)
{
	struct linux_driver *l = &f->drv;
	uint8_t ctr[2] = {0, 0};
	int n = 0;

	do {
		if (n >= 10)
			return -EIO;
		if (linux_command(f, &ctr[n++ % 2], LINUX_CMD_CTL_RCTR))
			return -EIO;
	} while (n < 2 || ctr[0] != ctr[1]);
	l->initial_ctr = l->ctr = ctr[0];
	l->ctr |= LINUX_CTR_KBDDIS;
	l->ctr &= ~LINUX_CTR_KBDINT;
	if (~in(f, CMD) & STATUS_KEYLOCK)
		l->keylock_warning = true;
	if (linux_command(f, &l->ctr, LINUX_CMD_CTL_WCTR))
		return -EIO;
	linux_flush(f);
	return 0;
}

/* i8042_toggle_aux: 0xA7/0xA8, then up to 100 RCTRs for the AUXDIS bit. */
static int linux_toggle_aux(struct fixture *f, bool on)
{
	uint8_t param = 0;

	if (linux_command(f, &param, on ? LINUX_CMD_AUX_ENABLE : LINUX_CMD_AUX_DISABLE))
		return -1;
	for (int i = 0; i < 100; i++) {
		if (linux_command(f, &param, LINUX_CMD_CTL_RCTR))
			return -1;
		if (!(param & LINUX_CTR_AUXDIS) == on)
			return 0;
		f->drv.stale_reads++;
	}
	return -1;
}

/* i8042_check_aux; noloop is the i8042.noloop option. */
static int linux_check_aux(struct fixture *f, bool noloop)
{
	struct linux_driver *l = &f->drv;
	bool aux_loop_broken = false;
	uint8_t param = 0x5a;
	int retval;

	linux_flush(f);
	retval = noloop ? -1 : linux_command(f, &param, LINUX_CMD_AUX_LOOP);
	if (retval || param != 0x5a) {
		if (linux_command(f, &param, LINUX_CMD_AUX_TEST) ||
		    (param && param != 0xfa && param != 0xff))
			return -1; /* no AUX port, and nothing printed */
		if (!retval)
			aux_loop_broken = true;
	}
	if (linux_toggle_aux(f, false))
		l->aux_warning = true;
	if (linux_toggle_aux(f, true))
		return -1;
	if (noloop || aux_loop_broken) {
		retval = 0;
	} else {
		/* The IRQ test: enable AUX, loop 0xa5 without reading it back and
		 * wait up to 250 ms for it on IRQ 12; the fixture has no IRQ 12,
		 * so it times out and Linux flushes the byte. */
		l->aux_irq_test = true;
		l->ctr &= ~LINUX_CTR_AUXDIS;
		l->ctr |= LINUX_CTR_AUXINT;
		if (!linux_command(f, &l->ctr, LINUX_CMD_CTL_WCTR)) {
			param = 0xa5;
			linux_command(f, &param, LINUX_CMD_AUX_LOOP & 0xf0ff);
		}
		linux_flush(f);
		retval = -1;
	}
	l->ctr |= LINUX_CTR_AUXDIS;
	l->ctr &= ~LINUX_CTR_AUXINT;
	if (linux_command(f, &l->ctr, LINUX_CMD_CTL_WCTR))
		retval = -1;
	return retval;
}

/* i8042_set_mux_mode: three loop bytes; the third comes back as the
 * version on an active multiplexer. */
static int linux_set_mux_mode(struct fixture *f, bool multiplex, uint8_t *mux_version)
{
	uint8_t param, val;

	linux_flush(f);
	param = val = 0xf0;
	if (linux_command(f, &param, LINUX_CMD_AUX_LOOP) || param != val)
		return -1;
	param = val = multiplex ? 0x56 : 0xf6;
	if (linux_command(f, &param, LINUX_CMD_AUX_LOOP) || param != val)
		return -1;
	param = val = multiplex ? 0xa4 : 0xa5;
	if (linux_command(f, &param, LINUX_CMD_AUX_LOOP) || param == val)
		return -1;
	if (param == 0xac)
		return -1;
	*mux_version = param;
	return 0;
}

/* i8042_enable_kbd_port, from i8042_setup_kbd */
static int linux_enable_kbd_port(struct fixture *f)
{
	f->drv.ctr &= ~LINUX_CTR_KBDDIS;
	f->drv.ctr |= LINUX_CTR_KBDINT;
	return linux_command(f, &f->drv.ctr, LINUX_CMD_CTL_WCTR) ? -EIO : 0;
}

/* i8042_controller_check, i8042_controller_selftest, i8042_controller_init:
 * a controller, self test 0x55, a stable command byte, keylock off. */
static void test_linux_controller_init(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(linux_controller_check(f), 0);
	assert_int_equal(linux_controller_selftest(f), 0);
	assert_int_equal(linux_controller_init(f), 0);
	assert_false(f->drv.keylock_warning);
	assert_true(in(f, CMD) & STATUS_KEYLOCK);
	assert_true(f->drv.initial_ctr & LINUX_CTR_XLATE); /* Linux keeps translation */
	/* The command byte Linux wrote is the one the controller holds. */
	assert_int_equal(f->drv.ctr, (0x45 | LINUX_CTR_KBDDIS) & ~LINUX_CTR_KBDINT);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), f->drv.ctr);
	assert_false(in(f, CMD) & STATUS_OBF);
}

/* i8042_check_aux decides there is no AUX port at the AUX_TEST step: no
 * warning, no 250 ms IRQ test, nothing left in the output buffer. */
static void test_linux_check_aux(void **state)
{
	struct fixture *f = *state;
	unsigned rises;

	assert_int_equal(linux_controller_init(f), 0);
	rises = f->rises; /* the RCTR answers raised IRQ 1: KBDINT was still on */
	assert_int_equal(linux_check_aux(f, false), -1);
	assert_false(f->drv.aux_warning);
	assert_false(f->drv.aux_irq_test);
	assert_false(in(f, CMD) & STATUS_OBF);
	assert_int_equal(f->rises, rises);
	assert_int_equal(f->resets, 0);
}

/* The same with i8042.noloop: AUX_TEST alone says "no AUX port". */
static void test_linux_check_aux_noloop(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(linux_controller_init(f), 0);
	assert_int_equal(linux_check_aux(f, true), -1);
	assert_false(f->drv.aux_warning);
	assert_false(f->drv.aux_irq_test);
	assert_false(in(f, CMD) & STATUS_OBF);
}

/* i8042_set_mux_mode: no active multiplexer, told by the first loop byte,
 * and no stray byte left for the keyboard driver. */
static void test_linux_set_mux_mode(void **state)
{
	struct fixture *f = *state;
	uint8_t version = 0;

	assert_int_equal(linux_controller_init(f), 0);
	assert_int_equal(linux_set_mux_mode(f, true, &version), -1);
	assert_false(in(f, CMD) & STATUS_OBF);
	assert_int_equal(linux_set_mux_mode(f, false, &version), -1);
	assert_false(in(f, CMD) & STATUS_OBF);
}

/* The disable bits follow 0xA7/0xA8/0xAD/0xAE and read back through RCTR at
 * once, so i8042_toggle_aux succeeds on its first read. */
static void test_disable_bits(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xa7);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x45 | LINUX_CTR_AUXDIS);
	out(f, CMD, 0xad);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x45 | LINUX_CTR_AUXDIS | LINUX_CTR_KBDDIS);
	out(f, CMD, 0xa8);
	out(f, CMD, 0xae);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x45);
	/* A command byte written with the bits set, then cleared by command. */
	out(f, CMD, 0x60);
	out(f, DATA, 0x75);
	out(f, CMD, 0xa8);
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x55);
	assert_int_equal(linux_toggle_aux(f, false), 0);
	assert_int_equal(linux_toggle_aux(f, true), 0);
	assert_int_equal(f->drv.stale_reads, 0);
	assert_false(in(f, CMD) & STATUS_OBF);
}

/* 0xD4 sends a byte to the AUX device; there is none: 0xFE from the AUX
 * side with the timeout bit, as a PS/2 controller answers for an empty
 * port.  It does not raise IRQ 1, even with the keyboard interrupt on. */
static void test_aux_send_no_device(void **state)
{
	struct fixture *f = *state;

	out(f, CMD, 0xd4);
	out(f, DATA, 0xff);
	assert_int_equal(in(f, CMD) & (STATUS_OBF | STATUS_AUXDATA | STATUS_TIMEOUT),
			 STATUS_OBF | STATUS_AUXDATA | STATUS_TIMEOUT);
	assert_false(f->level);
	assert_int_equal(in(f, DATA), 0xfe);
	assert_false(in(f, CMD) & (STATUS_OBF | STATUS_AUXDATA | STATUS_TIMEOUT));
	assert_int_equal(f->rises, 0);
}

/* Linux's whole probe, then i8042_setup_kbd turns the keyboard port on:
 * Ctrl-Alt-Del still arrives, one IRQ 1 edge per byte. */
static void test_linux_probe_then_ctrl_alt_del(void **state)
{
	struct fixture *f = *state;
	static const uint8_t expected[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	unsigned rises;

	assert_int_equal(linux_controller_check(f), 0);
	assert_int_equal(linux_controller_init(f), 0);
	rises = f->rises;
	assert_int_equal(linux_check_aux(f, false), -1);
	assert_int_equal(linux_enable_kbd_port(f), 0);
	assert_int_equal(f->rises, rises); /* nothing stale to interrupt for */
	assert_false(f->level);
	/* check_aux gave up before touching AUXDIS: Linux's command byte. */
	out(f, CMD, 0x20);
	assert_int_equal(in(f, DATA), 0x45);
	i8042_send_ctrl_alt_del(&f->kbc);
	for (unsigned i = 0; i < sizeof(expected); i++) {
		assert_int_equal(f->rises, rises + i + 2); /* +1: the RCTR answer above */
		assert_int_equal(in(f, CMD) & (STATUS_OBF | STATUS_AUXDATA), STATUS_OBF);
		assert_int_equal(in(f, DATA), expected[i]);
	}
	assert_false(f->level);
	assert_false(f->drv.keylock_warning || f->drv.aux_warning || f->drv.aux_irq_test);
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
		T(test_linux_controller_init),
		T(test_linux_check_aux),
		T(test_linux_check_aux_noloop),
		T(test_linux_set_mux_mode),
		T(test_disable_bits),
		T(test_aux_send_no_device),
		T(test_linux_probe_then_ctrl_alt_del),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
