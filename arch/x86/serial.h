/* SPDX-License-Identifier: MIT */
/*
 * 8250/16550A UART (COM1 at 0x3f8, IRQ 4): transmit to the console fd,
 * receive from the console's input, interrupts for received data and an
 * empty transmitter, modem-control loopback (Linux's autoconfig probes it).
 */
#ifndef ISOLA_ARCH_X86_SERIAL_H
#define ISOLA_ARCH_X86_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/rate_limiter.h"

#define SERIAL_RX_FIFO_SIZE 64
#define SERIAL_TX_BATCH 4096

struct serial8250 {
	pthread_mutex_t lock;
	uint8_t ier, iir_thri_pending, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t rx_fifo[SERIAL_RX_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool irq_level;
	/* Bytes of the current exit not yet written: a `rep outsb` of a page
	 * arrives in one exit, and one write(2) per byte would cap the console
	 * at ~90 KiB/s.  Flushed at the end of every exit that touched the
	 * UART (serial_after_exit, the bus's after-exit hook). */
	uint8_t tx_batch[SERIAL_TX_BATCH];
	unsigned tx_batch_len;
	int out_fd; /* -1: output discarded */
	uint64_t tx_bytes;
	/* Firecracker's SerialDevice "rate_limiter" (a TokenBucket of bytes):
	 * what the guest transmits beyond it is dropped and counted.  The
	 * clock is read only while `limited`. */
	bool limited;
	struct rate_limiter limiter;
	uint64_t dropped_bytes;
	/* Raise or lower the UART's interrupt line (ISA IRQ 4). */
	void (*set_irq)(void *opaque, bool level);
	/* Called (without the lock) when the RX FIFO was full and has room again. */
	void (*rx_space)(void *opaque);
	void *opaque;
};

void serial_init(struct serial8250 *uart, int out_fd, void (*set_irq)(void *, bool),
		 void (*rx_space)(void *), void *opaque);
void serial_destroy(struct serial8250 *uart);
/* Limit transmitted bytes to spec (lib/rate_limiter.h; only a bytes
 * bucket; "" none), buckets full from now on; any thread.  0, or -EINVAL
 * with a sentence in err. */
int serial_set_rate(struct serial8250 *uart, const char *spec, char *err, size_t errlen);
/* Port-I/O handler for the 8 registers at ISOLA_PORT_COM1 (bus_access_fn). */
void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Write out what this exit transmitted (cheap when nothing is pending). */
void serial_flush(struct serial8250 *uart);
/* bus_after_exit_fn for the UART's range: serial_flush after each exit. */
void serial_after_exit(void *opaque);
/* Queue received bytes; returns how many fit in the FIFO (the rest must wait
 * for rx_space). */
size_t serial_receive(struct serial8250 *uart, const uint8_t *bytes, size_t len);
/* Room left in the receive FIFO. */
size_t serial_rx_room(struct serial8250 *uart);

#endif
