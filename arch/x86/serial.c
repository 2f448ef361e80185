// SPDX-License-Identifier: MIT
/* 8250/16550A UART.  Register semantics: National Semiconductor PC16550D
 * datasheet, "Register Description". */
#include "arch/x86/serial.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	UART_RBR_THR = 0, /* DLAB=0: receive buffer / transmit holding */
	UART_IER = 1,	  /* DLAB=0: interrupt enable */
	UART_IIR_FCR = 2, /* read: interrupt identification, write: FIFO control */
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial8250 *uart, int out_fd, void (*set_irq)(void *, bool),
		 void (*rx_space)(void *), void *opaque)
{
	memset(uart, 0, sizeof(*uart));
	pthread_mutex_init(&uart->lock, NULL);
	uart->out_fd = out_fd;
	uart->lsr = LSR_THRE | LSR_TEMT;
	uart->msr = MSR_DCD | MSR_DSR | MSR_CTS; /* a terminal is attached */
	uart->mcr = MCR_OUT2;
	uart->set_irq = set_irq;
	uart->rx_space = rx_space;
	uart->opaque = opaque;
}

static uint64_t serial_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int serial_set_rate(struct serial8250 *uart, const char *spec, char *err, size_t errlen)
{
	struct rate_limiter rl;
	char why[160];

	if (rate_limiter_parse(spec, &rl, why, sizeof(why)))
		return snprintf(err, errlen, "%s", why), -EINVAL;
	if (rl.ops.size)
		return snprintf(err, errlen,
				"the serial console's limiter has a bytes bucket only"),
		       -EINVAL;
	rate_limiter_start(&rl, serial_now_ns());
	pthread_mutex_lock(&uart->lock);
	uart->limiter = rl;
	uart->limited = !rate_limiter_is_unlimited(&rl);
	pthread_mutex_unlock(&uart->lock);
	return 0;
}

void serial_destroy(struct serial8250 *uart)
{
	pthread_mutex_destroy(&uart->lock);
}

/* The highest-priority pending interrupt (received data beats THRE). */
static uint8_t serial_iir(const struct serial8250 *uart)
{
	uint8_t fifo = (uart->fcr & 1) ? IIR_FIFO_ENABLED : 0;

	if ((uart->ier & IER_RDI) && uart->rx_count)
		return fifo | IIR_RDI;
	if ((uart->ier & IER_THRI) && uart->iir_thri_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

/* Called with the lock held; the IRQ callback takes only the IOAPIC's lock. */
static void serial_update_irq(struct serial8250 *uart)
{
	bool level = !(serial_iir(uart) & IIR_NO_INT);

	if (level == uart->irq_level)
		return;
	uart->irq_level = level;
	if (uart->set_irq)
		uart->set_irq(uart->opaque, level);
}

/* Lock held.  A blocking write is the UART's flow control: a guest flooding
 * the console is slowed to the reader's pace; at most one batch is held. */
static void serial_write_batch(struct serial8250 *uart)
{
	unsigned done = 0;

	while (done < uart->tx_batch_len) {
		ssize_t ret = write(uart->out_fd, uart->tx_batch + done, uart->tx_batch_len - done);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			break; /* console gone (EPIPE, disk full): output is dropped */
		done += (unsigned)ret;
	}
	uart->tx_batch_len = 0;
}

void serial_flush(struct serial8250 *uart)
{
	if (!__atomic_load_n(&uart->tx_batch_len, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&uart->lock);
	serial_write_batch(uart);
	pthread_mutex_unlock(&uart->lock);
}

void serial_after_exit(void *opaque)
{
	serial_flush(opaque);
}

static void serial_transmit(struct serial8250 *uart, uint8_t byte)
{
	if (uart->mcr & MCR_LOOP) {
		/* Loopback: the byte comes back on the receive side. */
		if (uart->rx_count < SERIAL_RX_FIFO_SIZE) {
			uart->rx_fifo[(uart->rx_head + uart->rx_count) % SERIAL_RX_FIFO_SIZE] =
			    byte;
			uart->rx_count++;
			uart->lsr |= LSR_DR;
		}
	} else if (uart->limited && !rate_limiter_consume(&uart->limiter, 1, serial_now_ns())) {
		/* Firecracker's serial rate limiter: over the bucket, the byte is
		 * dropped (a UART has no way to make the guest wait) and
		 * counted (metrics: uart.rate_limiter_dropped_bytes). */
		uart->dropped_bytes++;
	} else if (uart->out_fd >= 0) {
		if (uart->tx_batch_len == SERIAL_TX_BATCH)
			serial_write_batch(uart);
		uart->tx_batch[uart->tx_batch_len++] = byte;
	}
	uart->tx_bytes++;
	/* The byte leaves at once: THR is empty again. */
	uart->lsr |= LSR_THRE | LSR_TEMT;
	uart->iir_thri_pending = 1;
}

static uint8_t serial_modem_status(const struct serial8250 *uart)
{
	uint8_t msr;

	if (!(uart->mcr & MCR_LOOP))
		return uart->msr;
	/* 16550D "Modem Control Register" bit 4: outputs feed the inputs. */
	msr = 0;
	if (uart->mcr & MCR_RTS)
		msr |= MSR_CTS;
	if (uart->mcr & MCR_DTR)
		msr |= MSR_DSR;
	if (uart->mcr & MCR_OUT1)
		msr |= MSR_RI;
	if (uart->mcr & MCR_OUT2)
		msr |= MSR_DCD;
	return msr;
}

static uint8_t serial_read_reg(struct serial8250 *uart, unsigned reg, bool *rx_freed)
{
	uint8_t val;

	switch (reg) {
	case UART_RBR_THR:
		if (uart->lcr & LCR_DLAB)
			return uart->dll;
		if (!uart->rx_count)
			return 0;
		val = uart->rx_fifo[uart->rx_head];
		uart->rx_head = (uart->rx_head + 1) % SERIAL_RX_FIFO_SIZE;
		if (uart->rx_count-- == SERIAL_RX_FIFO_SIZE)
			*rx_freed = true;
		if (!uart->rx_count)
			uart->lsr &= ~LSR_DR;
		return val;
	case UART_IER:
		return (uart->lcr & LCR_DLAB) ? uart->dlm : uart->ier;
	case UART_IIR_FCR:
		val = serial_iir(uart);
		/* Reading IIR while it reports THRE clears that source. */
		if ((val & 0x0f) == IIR_THRI)
			uart->iir_thri_pending = 0;
		return val;
	case UART_LCR:
		return uart->lcr;
	case UART_MCR:
		return uart->mcr;
	case UART_LSR:
		return uart->lsr;
	case UART_MSR:
		return serial_modem_status(uart);
	default:
		return uart->scr;
	}
}

static void serial_write_reg(struct serial8250 *uart, unsigned reg, uint8_t val, bool *rx_freed)
{
	switch (reg) {
	case UART_RBR_THR:
		if (uart->lcr & LCR_DLAB)
			uart->dll = val;
		else
			serial_transmit(uart, val);
		break;
	case UART_IER:
		if (uart->lcr & LCR_DLAB) {
			uart->dlm = val;
			break;
		}
		/* Enabling THRI while THR is empty raises the interrupt at once. */
		if (!(uart->ier & IER_THRI) && (val & IER_THRI) && (uart->lsr & LSR_THRE))
			uart->iir_thri_pending = 1;
		uart->ier = val & 0x0f;
		break;
	case UART_IIR_FCR:
		uart->fcr = val & 0xc9;
		if (val & 0x02) { /* clear receive FIFO */
			if (uart->rx_count == SERIAL_RX_FIFO_SIZE)
				*rx_freed = true;
			uart->rx_count = 0;
			uart->lsr &= ~LSR_DR;
		}
		break;
	case UART_LCR:
		uart->lcr = val;
		break;
	case UART_MCR:
		uart->mcr = val & 0x1f;
		break;
	case UART_SCR:
		uart->scr = val;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial8250 *uart = opaque;
	bool rx_freed = false;

	pthread_mutex_lock(&uart->lock);
	/* A wider access touches consecutive registers, one byte each. */
	for (uint32_t i = 0; i < len && offset + i < 8; i++) {
		if (is_write)
			serial_write_reg(uart, (unsigned)(offset + i), data[i], &rx_freed);
		else
			data[i] = serial_read_reg(uart, (unsigned)(offset + i), &rx_freed);
	}
	serial_update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
	if (rx_freed && uart->rx_space)
		uart->rx_space(uart->opaque);
}

size_t serial_receive(struct serial8250 *uart, const uint8_t *bytes, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&uart->lock);
	while (n < len && uart->rx_count < SERIAL_RX_FIFO_SIZE) {
		uart->rx_fifo[(uart->rx_head + uart->rx_count) % SERIAL_RX_FIFO_SIZE] = bytes[n++];
		uart->rx_count++;
	}
	if (n)
		uart->lsr |= LSR_DR;
	serial_update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
	return n;
}

size_t serial_rx_room(struct serial8250 *uart)
{
	size_t room;

	pthread_mutex_lock(&uart->lock);
	room = SERIAL_RX_FIFO_SIZE - uart->rx_count;
	pthread_mutex_unlock(&uart->lock);
	return room;
}
