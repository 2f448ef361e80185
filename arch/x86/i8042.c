// SPDX-License-Identifier: MIT
/* Command set: IBM PS/2 Hardware Technical Reference, "Keyboard/Auxiliary
 * Device Controller"; the same set Linux's drivers/input/serio/i8042.c uses.
 *
 * What Linux's probe checks, and what this model answers (i8042.c as of
 * v6.1; the probe has read this way since 2.6):
 *  - i8042_controller_init warns "Keylock active" when status bit 4
 *    (I8042_STR_KEYLOCK) is clear: on a PC that bit is set while the
 *    keyboard is NOT inhibited.  There is no key lock here: always set.
 *  - i8042_toggle_aux sends 0xA7/0xA8 and reads the command byte (0x20)
 *    until AUXDIS (bit 5) follows; 0xAD/0xAE do the same for KBDDIS
 *    (bit 4).  The model keeps those bits in the command byte, so they read
 *    back at once, as does whatever the guest writes with 0x60.
 *  - i8042_check_aux decides whether there is an AUX (mouse) port.  There
 *    is none, and the model says so the way Linux accepts silently: a byte
 *    sent towards the AUX side (0xD3 loopback, 0xD4 send) comes back as
 *    0xFE from the AUX side with the timeout bit (status bit 6), what a
 *    PS/2 controller reports for a send nothing receives; the loop answer is then "not
 *    the byte sent", so Linux asks for the AUX interface test (0xA9), which
 *    reports 0x01 (clock line stuck low); Linux gives the port up there,
 *    before i8042_toggle_aux (whose failure prints "Is this a SiS?") and
 *    before the AUX IRQ test (which would wait 250 ms for an IRQ 12).  The
 *    same answer ends i8042_set_mux_mode at its first loop byte: no
 *    multiplexer.  Emulating a mouse as QEMU does would mean IRQ 12, a
 *    PS/2 mouse protocol and more guest-reachable state for a VM that has
 *    no pointer; "no AUX port" is the smaller truth.
 * AUX answers never raise IRQ 1 (they are polled; IRQ 12 is not wired).
 */
#include "arch/x86/i8042.h"

#include <string.h>

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define STATUS_NOT_INHIBITED 0x10 /* Linux: I8042_STR_KEYLOCK */
#define STATUS_AUX_DATA 0x20	  /* the byte in the output buffer is from the AUX side */
#define STATUS_TIMEOUT 0x40
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
#define CMD_WRITE_AUX_OUTPUT 0xd3 /* "loopback": Linux's I8042_CMD_AUX_LOOP */
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_RESET 0xfe
#define COMMAND_BYTE_KBD_INT 0x01
#define COMMAND_BYTE_KBD_DISABLED 0x10
#define COMMAND_BYTE_AUX_DISABLED 0x20
#define TEST_OK 0x00
#define TEST_CLOCK_STUCK_LOW 0x01
#define AUX_NO_ANSWER 0xfe

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

/* status: STATUS_AUX_DATA/STATUS_TIMEOUT to report with the byte, or 0. */
static void i8042_push(struct i8042 *kbc, uint8_t byte, uint8_t status)
{
	unsigned tail = (kbc->queue_head + kbc->queue_count) % I8042_QUEUE_SIZE;

	if (kbc->queue_count == I8042_QUEUE_SIZE)
		return; /* a full controller drops input, as hardware does */
	kbc->queue[tail] = byte;
	kbc->queue_status[tail] = status;
	kbc->queue_count++;
}

static uint8_t i8042_status(struct i8042 *kbc)
{
	uint8_t status = STATUS_SYSTEM_FLAG | STATUS_NOT_INHIBITED;

	if (kbc->queue_count)
		status |= STATUS_OUTPUT_FULL | kbc->queue_status[kbc->queue_head];
	return status;
}

static void i8042_update_irq(struct i8042 *kbc)
{
	bool kbd_byte = kbc->queue_count && !(kbc->queue_status[kbc->queue_head] & STATUS_AUX_DATA);

	if (kbc->set_irq)
		kbc->set_irq(kbc->irq_opaque,
			     kbd_byte && (kbc->command_byte & COMMAND_BYTE_KBD_INT));
}

/* Returns true when the guest pulled the reset line. */
static bool i8042_command(struct i8042 *kbc, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_COMMAND_BYTE:
		i8042_push(kbc, kbc->command_byte, 0);
		break;
	case CMD_WRITE_COMMAND_BYTE:
	case CMD_WRITE_OUTPUT_PORT:
	case CMD_WRITE_AUX_OUTPUT:
	case CMD_WRITE_AUX:
		kbc->pending_command = cmd;
		break;
	case CMD_DISABLE_AUX:
		kbc->command_byte |= COMMAND_BYTE_AUX_DISABLED;
		break;
	case CMD_ENABLE_AUX:
		kbc->command_byte &= ~COMMAND_BYTE_AUX_DISABLED;
		break;
	case CMD_DISABLE_KBD:
		kbc->command_byte |= COMMAND_BYTE_KBD_DISABLED;
		break;
	case CMD_ENABLE_KBD:
		kbc->command_byte &= ~COMMAND_BYTE_KBD_DISABLED;
		break;
	case CMD_SELF_TEST:
		i8042_push(kbc, 0x55, 0);
		break;
	case CMD_TEST_KBD:
		i8042_push(kbc, TEST_OK, 0);
		break;
	case CMD_TEST_AUX:
		i8042_push(kbc, TEST_CLOCK_STUCK_LOW, 0); /* no AUX port: see the top */
		break;
	case CMD_READ_OUTPUT_PORT:
		i8042_push(kbc, 0x01, 0); /* bit 0: reset line not asserted */
		break;
	case CMD_PULSE_RESET:
		return true;
	default: /* the rest: accepted, no effect */
		break;
	}
	return false;
}

/* A byte written to port 0x60: the data byte of a pending command, or a
 * command for the keyboard.  Returns true when the guest pulled the reset
 * line. */
static bool i8042_data(struct i8042 *kbc, uint8_t byte)
{
	uint8_t cmd = kbc->pending_command;

	kbc->pending_command = 0;
	switch (cmd) {
	case CMD_WRITE_COMMAND_BYTE:
		kbc->command_byte = byte;
		return false;
	case CMD_WRITE_OUTPUT_PORT:
		return !(byte & 1); /* output port bit 0 low = CPU reset */
	case CMD_WRITE_AUX_OUTPUT:
	case CMD_WRITE_AUX:
		/* No AUX port: nothing answers there (see the top). */
		i8042_push(kbc, AUX_NO_ANSWER, STATUS_AUX_DATA | STATUS_TIMEOUT);
		return false;
	default:
		i8042_push(kbc, 0xfa, 0); /* keyboard ACK for device commands */
		return false;
	}
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
		data[0] = i8042_status(kbc);
	} else if (offset == 0 && is_write) {
		reset = i8042_data(kbc, data[0]);
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
		i8042_push(kbc, seq[i], 0);
	i8042_update_irq(kbc);
	pthread_mutex_unlock(&kbc->lock);
}
