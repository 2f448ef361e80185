/* SPDX-License-Identifier: MIT */
/*
 * The user's side of the serial console: stdin in raw mode when it is a
 * terminal (restored on every exit path), the Ctrl-A escape (Ctrl-A x quits,
 * Ctrl-A Ctrl-A sends Ctrl-A), and input forwarded to the UART only as fast
 * as its FIFO drains.
 */
#ifndef ISOLA_CORE_CONSOLE_H
#define ISOLA_CORE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console_input {
	int fd; /* -1: no input */
	bool is_tty;
	bool escape_pending;
	uint8_t pending[256]; /* read but not yet accepted by the UART */
	size_t pending_len, pending_off;
};

/* Put the terminal on fd in raw mode if it is one; restored by
 * console_restore(), which is async-signal-safe and idempotent. */
int console_enter_raw(int fd);
void console_restore(void);

/*
 * Filter the escape sequence out of raw terminal bytes in place.  Returns the
 * number of bytes for the guest and sets *quit when Ctrl-A x was typed.
 */
size_t console_filter_escape(struct console_input *in, uint8_t *buf, size_t len, bool *quit);

#endif
