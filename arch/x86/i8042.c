// SPDX-License-Identifier: MIT
/* Command set: IBM PS/2 Hardware Technical Reference, "Keyboard/Auxiliary
 * Device Controller"; the same set Linux's drivers/input/serio/i8042.c uses. */
#include "arch/x86/i8042.h"

#include <string.h>

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define STATUS_COMMAND 0x08 /* last write was to the command port */
#define CMD_READ_COMMAND_BYTE 0x20
#define CMD_WRITE_COMMAND_BYTE 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPUT_PORT 0xd0
#define CMD_WRITE_OUTPUT_PORT 0xd1
#define CMD_PULSE_RESET 0xfe
#define COMMAND_BYTE_KBD_INT 0x01

void i8042_init(struct i8042 *kbc, const struct platform_events *events,
		void (*set_irq)(void *, bool), void *irq_opaque)
{
	memset(kbc, 0, sizeof(*kbc));
	pthread_mutex_init(&kbc->lock, NULL);
	kbc->command_byte = 0x45; /* translate, system flag, keyboard interrupt */
	kbc->events = events;
	kbc->set_irq = set_irq;
	kbc->irq_opaque = irq_opaque;
}

void i8042_destroy(struct i8042 *kbc)
{
	pthread_mutex_destroy(&kbc->lock);
}

static void i8042_push(struct i8042 *kbc, uint8_t byte)
{
	if (kbc->queue_count == I8042_QUEUE_SIZE)
		return; /* a full controller drops input, as hardware does */
	kbc->queue[(kbc->queue_head + kbc->queue_count) % I8042_QUEUE_SIZE] = byte;
	kbc->queue_count++;
}

static void i8042_update_irq(struct i8042 *kbc)
{
	if (kbc->set_irq)
		kbc->set_irq(kbc->irq_opaque,
			     kbc->queue_count && (kbc->command_byte & COMMAND_BYTE_KBD_INT));
}

/* Returns true when the guest pulled the reset line. */
static bool i8042_command(struct i8042 *kbc, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_COMMAND_BYTE:
		i8042_push(kbc, kbc->command_byte);
		break;
	case CMD_WRITE_COMMAND_BYTE:
	case CMD_WRITE_OUTPUT_PORT:
		kbc->pending_command = cmd;
		break;
	case CMD_SELF_TEST:
		i8042_push(kbc, 0x55);
		break;
	case CMD_TEST_KBD:
	case CMD_TEST_AUX:
		i8042_push(kbc, 0x00);
		break;
	case CMD_READ_OUTPUT_PORT:
		i8042_push(kbc, 0x01); /* bit 0: reset line not asserted */
		break;
	case CMD_PULSE_RESET:
		return true;
	default: /* enable/disable kbd/aux and the rest: accepted, no effect */
		break;
	}
	return false;
}

void i8042_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *kbc = opaque;
	bool reset = false;

	(void)len;
	pthread_mutex_lock(&kbc->lock);
	if (offset == 4 && is_write) {
		reset = i8042_command(kbc, data[0]);
	} else if (offset == 4) {
		data[0] = STATUS_SYSTEM_FLAG | (kbc->queue_count ? STATUS_OUTPUT_FULL : 0);
	} else if (offset == 0 && is_write) {
		if (kbc->pending_command == CMD_WRITE_COMMAND_BYTE)
			kbc->command_byte = data[0];
		else if (kbc->pending_command == CMD_WRITE_OUTPUT_PORT && !(data[0] & 1))
			reset = true; /* output port bit 0 low = CPU reset */
		else if (!kbc->pending_command)
			i8042_push(kbc, 0xfa); /* keyboard ACK for device commands */
		kbc->pending_command = 0;
	} else if (offset == 0) {
		data[0] = 0;
		if (kbc->queue_count) {
			data[0] = kbc->queue[kbc->queue_head];
			kbc->queue_head = (kbc->queue_head + 1) % I8042_QUEUE_SIZE;
			kbc->queue_count--;
			/* Reading empties the output buffer and drops IRQ 1; the next
			 * byte raises it again below.  IRQ 1 is edge-triggered and
			 * Linux reads one byte per interrupt, so each byte needs its
			 * own edge. */
			if (kbc->set_irq)
				kbc->set_irq(kbc->irq_opaque, false);
		}
	} else if (!is_write) {
		data[0] = 0xff; /* ports 0x61-0x63 are not the controller */
	}
	i8042_update_irq(kbc);
	pthread_mutex_unlock(&kbc->lock);
	if (reset && kbc->events && kbc->events->reset)
		kbc->events->reset(kbc->events->opaque, "i8042 reset line");
}

void i8042_send_ctrl_alt_del(struct i8042 *kbc)
{
	/* Scancode set 1: Ctrl 0x1d, Alt 0x38, Del 0xe0 0x53; breaks | 0x80. */
	static const uint8_t seq[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

	pthread_mutex_lock(&kbc->lock);
	for (unsigned i = 0; i < sizeof(seq); i++)
		i8042_push(kbc, seq[i]);
	i8042_update_irq(kbc);
	pthread_mutex_unlock(&kbc->lock);
}
