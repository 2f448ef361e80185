// SPDX-License-Identifier: MIT
/*
 * Unit tests for arch/x86/serial.c, the 8250/16550A UART.  Register
 * semantics checked against the PC16550D datasheet.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/serial.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
       LSR = 5, MSR = 6, SCR = 7 };

#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct fixture {
	struct serial8250 uart;
	int pipe[2]; /* the UART writes to pipe[1]; the test reads pipe[0] */
	bool level;
	unsigned rises, falls, irq_calls;
	unsigned rx_space_calls;
};

static void fake_set_irq(void *opaque, bool level)
{
	struct fixture *f = opaque;

	f->irq_calls++;
	if (level && !f->level)
		f->rises++;
	if (!level && f->level)
		f->falls++;
	f->level = level;
}

static void fake_rx_space(void *opaque)
{
	struct fixture *f = opaque;

	f->rx_space_calls++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	/* The UART's write must block (its flow control); only reads are
	 * non-blocking, so an empty pipe shows as EAGAIN. */
	assert_int_equal(fcntl(f->pipe[1], F_SETFL, 0), 0);
	serial_init(&f->uart, f->pipe[1], fake_set_irq, fake_rx_space, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	serial_destroy(&f->uart);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

/* One `out` instruction = one exit: the bus runs the UART's after-exit
 * hook at its end (lib/bus.h). */
static void out(struct fixture *f, unsigned reg, uint8_t val)
{
	serial_access(&f->uart, reg, &val, 1, true);
	serial_after_exit(&f->uart);
}

static uint8_t in(struct fixture *f, unsigned reg)
{
	uint8_t val = 0x5a;

	serial_access(&f->uart, reg, &val, 1, false);
	return val;
}

/* Bytes waiting in the pipe (0 if none). */
static size_t drain(struct fixture *f, uint8_t *buf, size_t len)
{
	ssize_t n = read(f->pipe[0], buf, len);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return (size_t)n;
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, IER), 0);
	assert_int_equal(in(f, IIR), IIR_NONE);
	assert_int_equal(in(f, LCR), 0);
	assert_int_equal(in(f, MCR), 0x08); /* OUT2 */
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(in(f, MSR), 0xb0); /* DCD, DSR, CTS: a terminal is attached */
	assert_int_equal(serial_rx_room(&f->uart), SERIAL_RX_FIFO_SIZE);
	assert_int_equal(f->irq_calls, 0);
}

static void test_string_out_is_one_write(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[SERIAL_TX_BATCH + 16];

	/* `rep outsb` of a page arrives as one exit: nothing reaches the fd
	 * until the exit ends, then all of it at once, in order. */
	for (unsigned i = 0; i < SERIAL_TX_BATCH + 10; i++) {
		uint8_t byte = (uint8_t)i;

		serial_access(&f->uart, THR, &byte, 1, true);
	}
	assert_int_equal(drain(f, buf, sizeof(buf)), SERIAL_TX_BATCH); /* one full batch */
	serial_after_exit(&f->uart);
	assert_int_equal(drain(f, buf, sizeof(buf)), 10);
	assert_int_equal(buf[9], (uint8_t)(SERIAL_TX_BATCH + 9));
}

static void test_transmit_to_fd(void **state)
{
	struct fixture *f = *state;
	const char *msg = "hello\n";
	uint8_t buf[16];

	for (const char *p = msg; *p; p++) {
		out(f, THR, (uint8_t)*p);
		/* The byte left at once: THR and the shifter are empty. */
		assert_int_equal(in(f, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
	}
	assert_int_equal(drain(f, buf, sizeof(buf)), strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
	assert_int_equal(f->uart.tx_bytes, strlen(msg));
	/* No interrupt was enabled, so the line never moved. */
	assert_int_equal(f->irq_calls, 0);
}

/* Firecracker's SerialDevice rate_limiter: a bytes bucket; what is over it
 * is dropped and counted, the UART still empties THR at once. */
static void test_rate_limit_drops(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[64];
	char err[160];

	/* 16 bytes per hour: the bucket does not refill during the test */
	assert_int_equal(serial_set_rate(&f->uart, "bytes=16:3600000", err, sizeof(err)), 0);
	for (unsigned i = 0; i < 40; i++) {
		out(f, THR, (uint8_t)('a' + i % 26));
		assert_int_equal(in(f, LSR) & LSR_THRE, LSR_THRE);
	}
	serial_after_exit(&f->uart);
	assert_int_equal(drain(f, buf, sizeof(buf)), 16);
	assert_memory_equal(buf, "abcdefghijklmnop", 16);
	assert_int_equal(f->uart.dropped_bytes, 24);
	assert_int_equal(f->uart.tx_bytes, 40);
	/* only a bytes bucket; bad text refused, the limit unchanged */
	assert_int_equal(serial_set_rate(&f->uart, "ops=1:1", err, sizeof(err)), -EINVAL);
	assert_int_equal(serial_set_rate(&f->uart, "bytes=1", err, sizeof(err)), -EINVAL);
	assert_true(f->uart.limited);
	/* none: everything goes out again */
	assert_int_equal(serial_set_rate(&f->uart, "", err, sizeof(err)), 0);
	for (unsigned i = 0; i < 40; i++)
		out(f, THR, 'x');
	serial_after_exit(&f->uart);
	assert_int_equal(drain(f, buf, sizeof(buf)), 40);
	assert_int_equal(f->uart.dropped_bytes, 24);
}

static void test_transmit_discarded(void **state)
{
	struct serial8250 uart;

	(void)state;
	serial_init(&uart, -1, NULL, NULL, NULL);
	for (unsigned i = 0; i < 10; i++) {
		uint8_t byte = 'a';

		serial_access(&uart, THR, &byte, 1, true);
	}
	assert_int_equal(uart.tx_bytes, 10);
	/* No callbacks at all is fine too. */
	uint8_t ier = 0x03;

	serial_access(&uart, IER, &ier, 1, true);
	serial_destroy(&uart);
}

static void test_receive_fifo(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(serial_rx_room(&f->uart), SERIAL_RX_FIFO_SIZE - 3);
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 'a');
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 'b');
	assert_int_equal(in(f, RBR), 'c');
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	assert_int_equal(in(f, RBR), 0); /* empty RBR */
	assert_int_equal(serial_rx_room(&f->uart), SERIAL_RX_FIFO_SIZE);
	assert_int_equal(serial_receive(&f->uart, NULL, 0), 0);
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	/* IER was 0 throughout: no interrupt. */
	assert_int_equal(f->irq_calls, 0);
}

static void test_receive_wraps_ring(void **state)
{
	struct fixture *f = *state;
	uint8_t bytes[40];

	/* Push the ring's head around its end a few times. */
	for (unsigned round = 0; round < 5; round++) {
		for (unsigned i = 0; i < sizeof(bytes); i++)
			bytes[i] = (uint8_t)(round * 40 + i);
		assert_int_equal(serial_receive(&f->uart, bytes, sizeof(bytes)), sizeof(bytes));
		for (unsigned i = 0; i < sizeof(bytes); i++)
			assert_int_equal(in(f, RBR), bytes[i]);
		assert_int_equal(in(f, LSR) & LSR_DR, 0);
	}
}

static void test_iir_priorities(void **state)
{
	struct fixture *f = *state;

	out(f, IER, 0x03); /* RDA and THRE */
	assert_int_equal(in(f, IIR), IIR_THRE);
	assert_int_equal(in(f, IIR), IIR_NONE); /* reading IIR cleared THRE */

	out(f, THR, 'x'); /* THR empties again: THRE pending */
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"r", 1), 1);
	/* 16550D Table 4: received data (priority 2) beats THRE (priority 3). */
	assert_int_equal(in(f, IIR), IIR_RDA);
	assert_int_equal(in(f, IIR), IIR_RDA); /* reading IIR does not clear RDA */
	assert_int_equal(in(f, RBR), 'r');
	assert_int_equal(in(f, IIR), IIR_THRE); /* still pending under RDA */
	assert_int_equal(in(f, IIR), IIR_NONE);

	/* FIFOs enabled: IIR bits 7:6 are set. */
	out(f, FCR, 0x01);
	assert_int_equal(in(f, IIR), 0xc0 | IIR_NONE);
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"s", 1), 1);
	assert_int_equal(in(f, IIR), 0xc0 | IIR_RDA);
	out(f, FCR, 0x00);
	assert_int_equal(in(f, IIR), IIR_RDA);

	/* A source whose enable bit is clear is not reported: data waits, but
	 * only THRE is enabled. */
	out(f, IER, 0x00);
	out(f, IER, 0x02);
	assert_int_equal(in(f, IIR) & 0x0f, IIR_THRE);
	assert_int_equal(in(f, IIR), IIR_NONE);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;

	/* Enabling THRE while THR is empty raises the interrupt at once
	 * (Linux's serial8250_start_tx depends on it). */
	out(f, IER, 0x02);
	assert_true(f->level);
	assert_int_equal(f->rises, 1);
	assert_int_equal(in(f, IIR), IIR_THRE);
	assert_false(f->level); /* identified: cleared */
	assert_int_equal(f->falls, 1);

	/* Re-writing the same IER does not invent a new interrupt. */
	out(f, IER, 0x02);
	assert_false(f->level);
	assert_int_equal(in(f, IIR), IIR_NONE);

	/* Each transmitted byte empties THR again: THRE after TX. */
	out(f, THR, 'a');
	assert_true(f->level);
	assert_int_equal(f->rises, 2);
	assert_int_equal(in(f, IIR), IIR_THRE);
	assert_false(f->level);

	/* Disabling THRE lowers a pending interrupt. */
	out(f, THR, 'b');
	assert_true(f->level);
	out(f, IER, 0x00);
	assert_false(f->level);
	assert_int_equal(in(f, IIR), IIR_NONE);
	/* Re-enabling with THR empty raises it again. */
	out(f, IER, 0x02);
	assert_true(f->level);
	assert_int_equal(f->rises, 4);
}

static void test_irq_line_edges(void **state)
{
	struct fixture *f = *state;

	out(f, IER, 0x01); /* received data only */
	assert_int_equal(f->irq_calls, 0);
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"ab", 2), 2);
	assert_true(f->level);
	assert_int_equal(f->rises, 1);
	/* More data while the line is up: no redundant callback. */
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"c", 1), 1);
	assert_int_equal(f->irq_calls, 1);
	assert_int_equal(in(f, RBR), 'a');
	assert_int_equal(in(f, RBR), 'b');
	assert_true(f->level);
	assert_int_equal(f->irq_calls, 1);
	assert_int_equal(in(f, RBR), 'c');
	assert_false(f->level); /* FIFO empty: line falls */
	assert_int_equal(f->falls, 1);
	assert_int_equal(f->irq_calls, 2);
	/* Reads of other registers do not touch the line. */
	in(f, LSR);
	in(f, MSR);
	assert_int_equal(f->irq_calls, 2);
	/* Disabling RDA with data waiting lowers the line. */
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"d", 1), 1);
	assert_true(f->level);
	out(f, IER, 0x00);
	assert_false(f->level);
	assert_int_equal(f->rises, 2);
	assert_int_equal(f->falls, 2);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	/* 16550D MCR bit 4: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
	out(f, MCR, 0x10);
	assert_int_equal(in(f, MSR) & 0xf0, 0x00);
	out(f, MCR, 0x10 | 0x02); /* RTS */
	assert_int_equal(in(f, MSR) & 0xf0, 0x10);
	out(f, MCR, 0x10 | 0x01); /* DTR */
	assert_int_equal(in(f, MSR) & 0xf0, 0x20);
	out(f, MCR, 0x10 | 0x04); /* OUT1 */
	assert_int_equal(in(f, MSR) & 0xf0, 0x40);
	out(f, MCR, 0x10 | 0x08); /* OUT2 */
	assert_int_equal(in(f, MSR) & 0xf0, 0x80);
	out(f, MCR, 0x1f);
	assert_int_equal(in(f, MSR) & 0xf0, 0xf0);
	/* MCR bits 7:5 are always zero. */
	out(f, MCR, 0xff);
	assert_int_equal(in(f, MCR), 0x1f);

	/* Transmitted bytes come back on the receive side, not to the fd. */
	out(f, THR, 0x5a);
	assert_true(in(f, LSR) & LSR_DR);
	assert_int_equal(in(f, RBR), 0x5a);
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	assert_int_equal(drain(f, buf, sizeof(buf)), 0);

	/* Leaving loopback shows the real modem lines again and transmits. */
	out(f, MCR, 0x0b);
	assert_int_equal(in(f, MSR), 0xb0);
	out(f, THR, 'z');
	assert_int_equal(drain(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'z');
}

static void test_loopback_full_fifo_drops(void **state)
{
	struct fixture *f = *state;

	out(f, MCR, 0x10);
	for (unsigned i = 0; i < SERIAL_RX_FIFO_SIZE + 5; i++)
		out(f, THR, (uint8_t)i);
	assert_int_equal(serial_rx_room(&f->uart), 0);
	for (unsigned i = 0; i < SERIAL_RX_FIFO_SIZE; i++)
		assert_int_equal(in(f, RBR), (uint8_t)i);
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
}

static void test_divisor_latch(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	out(f, IER, 0x05);
	out(f, LCR, 0x83); /* DLAB, 8N1 */
	assert_int_equal(in(f, LCR), 0x83);
	out(f, DLL, 0x0c); /* 9600 baud */
	out(f, DLM, 0x01);
	assert_int_equal(in(f, DLL), 0x0c);
	assert_int_equal(in(f, DLM), 0x01);
	assert_int_equal(drain(f, buf, sizeof(buf)), 0); /* the DLL write was not a byte */
	assert_int_equal(f->uart.tx_bytes, 0);

	out(f, LCR, 0x03);
	assert_int_equal(in(f, IER), 0x05); /* IER untouched by the DLM write */
	out(f, IER, 0x00);
	out(f, LCR, 0x83);
	assert_int_equal(in(f, DLL), 0x0c); /* divisor untouched by the IER write */
	assert_int_equal(in(f, DLM), 0x01);

	/* With DLAB set, received data waits in the FIFO. */
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"q", 1), 1);
	assert_int_equal(in(f, DLL), 0x0c);
	out(f, LCR, 0x03);
	assert_int_equal(in(f, RBR), 'q');

	/* A 16-bit access programs both latch bytes at once. */
	uint8_t pair[2] = {0x01, 0x00};

	out(f, LCR, 0x80);
	serial_access(&f->uart, DLL, pair, 2, true);
	assert_int_equal(in(f, DLL), 0x01);
	assert_int_equal(in(f, DLM), 0x00);
}

static void test_fifo_full_rx_space(void **state)
{
	struct fixture *f = *state;
	uint8_t bytes[100];

	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	assert_int_equal(serial_receive(&f->uart, bytes, sizeof(bytes)), SERIAL_RX_FIFO_SIZE);
	assert_int_equal(serial_rx_room(&f->uart), 0);
	assert_int_equal(serial_receive(&f->uart, bytes, 1), 0);
	assert_int_equal(f->rx_space_calls, 0);

	/* The first byte read from a full FIFO makes room: one callback. */
	assert_int_equal(in(f, RBR), 0);
	assert_int_equal(f->rx_space_calls, 1);
	assert_int_equal(serial_rx_room(&f->uart), 1);
	assert_int_equal(in(f, RBR), 1);
	assert_int_equal(f->rx_space_calls, 1); /* not full before: no callback */

	/* The rest follows in order; the FIFO accepts exactly the room. */
	assert_int_equal(serial_receive(&f->uart, bytes + 64, 36), 2);
	for (unsigned i = 2; i < 66; i++)
		assert_int_equal(in(f, RBR), (uint8_t)i);
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	assert_int_equal(f->rx_space_calls, 2);
}

static void test_fifo_reset_rx_space(void **state)
{
	struct fixture *f = *state;
	uint8_t bytes[SERIAL_RX_FIFO_SIZE] = {0};

	out(f, IER, 0x01);
	assert_int_equal(serial_receive(&f->uart, bytes, sizeof(bytes)), sizeof(bytes));
	assert_true(f->level);
	/* FCR bit 1 empties the receive FIFO: data gone, DR and the interrupt
	 * clear, and the console must hear that there is room again. */
	out(f, FCR, 0x03);
	assert_int_equal(in(f, LSR) & LSR_DR, 0);
	assert_false(f->level);
	assert_int_equal(serial_rx_room(&f->uart), SERIAL_RX_FIFO_SIZE);
	assert_int_equal(f->rx_space_calls, 1);
	/* Resetting an empty or partly full FIFO is not news. */
	out(f, FCR, 0x03);
	assert_int_equal(serial_receive(&f->uart, bytes, 3), 3);
	out(f, FCR, 0x03);
	assert_int_equal(f->rx_space_calls, 1);
	assert_int_equal(serial_receive(&f->uart, (const uint8_t *)"k", 1), 1);
	assert_int_equal(in(f, RBR), 'k');
}

static void test_other_registers(void **state)
{
	struct fixture *f = *state;
	uint8_t word[4] = {0x11, 0x22, 0x33, 0x44};

	out(f, SCR, 0xa5);
	assert_int_equal(in(f, SCR), 0xa5);
	out(f, IER, 0xff);
	assert_int_equal(in(f, IER), 0x0f); /* bits 7:4 are zero */
	out(f, IER, 0x00);
	/* LSR and MSR are read-only. */
	out(f, LSR, 0x00);
	out(f, MSR, 0x00);
	assert_int_equal(in(f, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(in(f, MSR), 0xb0);
	/* A 4-byte access at offset 6 touches MSR and SCR only. */
	serial_access(&f->uart, 6, word, 4, true);
	assert_int_equal(in(f, SCR), 0x22);
	memset(word, 0, sizeof(word));
	serial_access(&f->uart, 6, word, 4, false);
	assert_int_equal(word[0], 0xb0);
	assert_int_equal(word[1], 0x22);
	/* Offsets past the 8 registers are ignored. */
	serial_access(&f->uart, 8, word, 1, true);
	serial_access(&f->uart, UINT64_MAX, word, 1, true);
	assert_int_equal(in(f, SCR), 0x22);
}

static void test_flood_is_not_buffered(void **state)
{
	struct fixture *f = *state;
	enum { TOTAL = 100 * 1024, CHUNK = 4096 };
	static uint8_t buf[CHUNK];
	struct mallinfo2 before, after;
	size_t sent = 0;

	out(f, IER, 0x02);
	before = mallinfo2();
	while (sent < TOTAL) {
		for (unsigned i = 0; i < CHUNK; i++)
			out(f, THR, (uint8_t)(sent + i));
		/* Every byte the guest wrote is already in the pipe. */
		size_t got = 0;

		while (got < CHUNK) {
			size_t n = drain(f, buf + got, CHUNK - got);

			if (!n)
				break;
			got += n;
		}
		assert_int_equal(got, CHUNK);
		for (unsigned i = 0; i < CHUNK; i++)
			assert_int_equal(buf[i], (uint8_t)(sent + i));
		assert_int_equal(drain(f, buf, 1), 0);
		sent += CHUNK;
	}
	after = mallinfo2();
	assert_int_equal(f->uart.tx_bytes, TOTAL);
	assert_int_equal(after.uordblks, before.uordblks);
	assert_int_equal(after.hblkhd, before.hblkhd);
	assert_int_equal(serial_rx_room(&f->uart), SERIAL_RX_FIFO_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_string_out_is_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_to_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_drops, setup, teardown),
		cmocka_unit_test(test_transmit_discarded),
		cmocka_unit_test_setup_teardown(test_receive_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_wraps_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_line_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_full_fifo_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_full_rx_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_reset_rx_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_is_not_buffered, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
