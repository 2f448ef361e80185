/* SPDX-License-Identifier: MIT */
/*
 * i8042 keyboard controller, only as much as an OS uses on a VM: the
 * status/command ports, self-tests, the command byte (with its disable
 * bits), the reset line (command 0xFE, or output-port bit 0) and a queue of
 * scancodes so the VMM can send Ctrl-Alt-Del.  A keyboard port that ACKs
 * device commands; no AUX (mouse) port: see i8042.c and docs/platform.md.
 */
#ifndef ISOLA_ARCH_X86_I8042_H
#define ISOLA_ARCH_X86_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/platform_events.h"

#define I8042_QUEUE_SIZE 16

struct i8042 {
	pthread_mutex_t lock;
	uint8_t command_byte;
	uint8_t pending_command; /* command waiting for its data byte, 0 if none */
	uint8_t queue[I8042_QUEUE_SIZE];
	uint8_t queue_status[I8042_QUEUE_SIZE]; /* status bits read with that byte */
	unsigned queue_head, queue_count;
	const struct platform_events *events;
	void (*set_irq)(void *opaque, bool level); /* ISA IRQ 1 */
	void *irq_opaque;
};

void i8042_init(struct i8042 *kbc, const struct platform_events *events,
		void (*set_irq)(void *, bool), void *irq_opaque);
void i8042_destroy(struct i8042 *kbc);
/* Port handler for 0x60..0x64 (offset 0 = data, offset 4 = status/command). */
void i8042_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queue Ctrl-Alt-Del make/break scancodes (set 1) and raise IRQ 1. */
void i8042_send_ctrl_alt_del(struct i8042 *kbc);

#endif
