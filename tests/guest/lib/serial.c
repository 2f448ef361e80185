/* SPDX-License-Identifier: MIT */
/* COM1 output through the 8250/16550 UART registers (polled). */
#include "kit.h"

#define UART_THR 0 /* transmit holding (DLAB=0) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define UART_TX_SPINS 100000

void serial_init(void)
{
	const uint16_t base = ISOLA_PORT_COM1;

	io_out8(base + UART_IER, 0x00);
	io_out8(base + UART_LCR, 0x80); /* DLAB: divisor 1 = 115200 baud */
	io_out8(base + 0, 0x01);
	io_out8(base + 1, 0x00);
	io_out8(base + UART_LCR, 0x03); /* 8N1 */
	io_out8(base + UART_FCR, 0x07); /* FIFO on, cleared */
	io_out8(base + UART_MCR, 0x0b); /* DTR, RTS, OUT2 (IRQ line enable) */
}

void serial_putc(char c)
{
	const uint16_t base = ISOLA_PORT_COM1;

	/* Bounded: a UART that never drains must not hang the guest. */
	for (int i = 0; i < UART_TX_SPINS; i++)
		if (io_in8(base + UART_LSR) & UART_LSR_THRE)
			break;
	io_out8(base + UART_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s) {
		if (*s == '\n')
			serial_putc('\r');
		serial_putc(*s++);
	}
}
