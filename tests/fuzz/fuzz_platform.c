// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the x86 platform devices a guest reaches by port I/O
 * and MMIO: the 8250 UART, IOAPIC, i8042, RTC/CMOS and ACPI PM block, behind
 * lib/bus.c dispatch with the ranges core/vm.c registers.  The stream mixes
 * guest accesses of fuzzed width and offset with host-side events: console
 * input (serial_receive), EOIs from the LAPIC (ioapic_eoi), interrupt lines
 * and Ctrl-Alt-Del.  MSI delivery, route updates, reset and power-off are
 * stubs that record what they saw.  Checked after every operation:
 *   - the UART's RX count never exceeds its FIFO, nor the i8042's its queue;
 *   - the IOAPIC delivers only for an unmasked pin whose line is asserted,
 *     and the route it last mirrored for a pin matches the pin's entry
 *     (masked or not, address, data);
 *   - remote IRR is set only on level-triggered entries;
 * and ASan/UBSan catch the rest.  Build and run: `make fuzz-build`, then
 *   build/fuzz/fuzz_platform -max_total_time=60 tests/fuzz/corpus/platform
 *
 * Input: a sequence of operations (first byte: opcode, see `enum op`).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/acpi_pm.h"
#include "arch/x86/i8042.h"
#include "arch/x86/ioapic.h"
#include "arch/x86/layout.h"
#include "arch/x86/rtc.h"
#include "arch/x86/serial.h"
#include "lib/bus.h"
#include "isola/abi.h"

#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum op {
	OP_PIO,        /* u8 base, u8 offset, u8 len code, u8 write, u32 value */
	OP_MMIO,       /* u16 offset, u8 len code, u8 write, u64 value */
	OP_IOAPIC_REG, /* u8 register, u32 value: select, then write the window */
	OP_RECEIVE,    /* u8 n, n bytes: console input */
	OP_EOI,        /* u8 vector */
	OP_IRQ,        /* u8 pin, u8 level */
	OP_CTRL_ALT_DEL,
	OP_FLUSH,
	OP_UART,       /* u8 register, u8 value, u8 write */
	OP_COUNT
};

struct route {
	bool seen, masked;
	uint64_t address;
	uint32_t data;
};

static struct {
	struct bus pio, mmio;
	struct serial8250 serial;
	struct ioapic ioapic;
	struct i8042 i8042;
	struct rtc rtc;
	struct acpi_pm pm;
	struct platform_events events;
	struct route routes[IOAPIC_NR_PINS];
	unsigned resets, poweroffs, delivered, rx_space, debug_exits;
} fz;

static int null_fd = -1;

struct stream {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct stream *s, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && s->left; i++, s->left--, s->p++)
		v |= (uint64_t)*s->p << (8 * i);
	return v;
}

/* ---- stubs: what core/vm.c does, recorded instead of sent to KVM ------ */

/* Called with the IOAPIC lock held (from ioapic_service). */
static int stub_deliver_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque;
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		uint64_t entry = fz.ioapic.redirection[pin], a;
		uint32_t d;

		if ((entry & RTE_MASKED) || !(fz.ioapic.line_level & (1u << pin)))
			continue;
		ioapic_entry_to_msi(entry, &a, &d);
		if (a == address && d == data) {
			fz.delivered++;
			return 0;
		}
	}
	abort(); /* delivered for no unmasked, asserted pin */
}

static void stub_update_route(void *opaque, unsigned pin, uint64_t address, uint32_t data,
			      bool masked)
{
	(void)opaque;
	if (pin >= IOAPIC_NR_PINS)
		abort();
	fz.routes[pin] = (struct route){true, masked, address, data};
}

static void stub_reset(void *opaque, const char *source)
{
	(void)opaque;
	(void)source;
	fz.resets++;
}

static void stub_poweroff(void *opaque, const char *source)
{
	(void)opaque;
	(void)source;
	fz.poweroffs++;
}

static const struct ioapic_ops ioapic_ops = {
	.deliver_msi = stub_deliver_msi,
	.update_route = stub_update_route,
};

static void serial_irq(void *opaque, bool level)
{
	(void)opaque;
	ioapic_set_irq(&fz.ioapic, ISOLA_IRQ_COM1, level);
}

static void i8042_irq(void *opaque, bool level)
{
	(void)opaque;
	ioapic_set_irq(&fz.ioapic, 1, level);
}

static void serial_rx_space(void *opaque)
{
	(void)opaque;
	fz.rx_space++;
}

static void debug_exit(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	(void)data;
	(void)len;
	if (is_write)
		fz.debug_exits++;
}

/* core/vm.c's vm_pci_ports without a PCI host: 0xCF9 is the reset register. */
static void pci_ports(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	if (offset == ISOLA_PORT_RESET - ISOLA_PORT_PCI_CONFIG_ADDRESS && len == 1)
		acpi_pm_reset_access(&fz.pm, 0, data, len, is_write);
}

static void setup(void)
{
	int ret = 0;

	memset(&fz, 0, sizeof(fz));
	fz.events = (struct platform_events){stub_reset, stub_poweroff, NULL};
	serial_init(&fz.serial, null_fd, serial_irq, serial_rx_space, NULL);
	ioapic_init(&fz.ioapic, 1, &ioapic_ops, NULL);
	i8042_init(&fz.i8042, &fz.events, i8042_irq, NULL);
	rtc_init(&fz.rtc, 256ull << 20);
	acpi_pm_init(&fz.pm, &fz.events);
	/* The ranges core/vm.c registers. */
	ret |= bus_register(&fz.pio, ISOLA_PORT_COM1, 8, serial_access, &fz.serial, "com1");
	ret |= bus_set_after_exit(&fz.pio, ISOLA_PORT_COM1, serial_after_exit);
	ret |= bus_register(&fz.pio, ISOLA_PORT_I8042_DATA, 5, i8042_access, &fz.i8042, "i8042");
	ret |= bus_register(&fz.pio, ISOLA_PORT_RTC_INDEX, 2, rtc_access, &fz.rtc, "rtc");
	ret |= bus_register(&fz.pio, ISOLA_DEBUG_EXIT_PORT, 4, debug_exit, NULL, "debug-exit");
	ret |= bus_register(&fz.pio, ISOLA_PORT_PCI_CONFIG_ADDRESS, 8, pci_ports, NULL, "pci-config");
	ret |= bus_register(&fz.pio, ISOLA_PORT_ACPI_PM1A_EVT, 12, acpi_pm_access, &fz.pm, "acpi-pm");
	ret |= bus_register(&fz.mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_SIZE, ioapic_access, &fz.ioapic,
			    "ioapic");
	if (ret)
		abort();
}

static void teardown(void)
{
	serial_flush(&fz.serial);
	serial_destroy(&fz.serial);
	ioapic_destroy(&fz.ioapic);
	i8042_destroy(&fz.i8042);
	rtc_destroy(&fz.rtc);
	acpi_pm_destroy(&fz.pm);
}

static void check_invariants(void)
{
	if (fz.serial.rx_count > SERIAL_RX_FIFO_SIZE || fz.serial.rx_head >= SERIAL_RX_FIFO_SIZE ||
	    fz.serial.tx_batch_len > SERIAL_TX_BATCH)
		abort();
	if (fz.i8042.queue_count > I8042_QUEUE_SIZE || fz.i8042.queue_head >= I8042_QUEUE_SIZE)
		abort();
	if (fz.rtc.index >= sizeof(fz.rtc.cmos))
		abort();
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		uint64_t entry = fz.ioapic.redirection[pin], address;
		uint32_t data;

		if ((entry & RTE_REMOTE_IRR) && !(entry & RTE_LEVEL))
			abort();
		if (!fz.routes[pin].seen)
			continue;
		ioapic_entry_to_msi(entry, &address, &data);
		if (fz.routes[pin].masked != !!(entry & RTE_MASKED) ||
		    fz.routes[pin].address != address || fz.routes[pin].data != data)
			abort(); /* KVM's route table would disagree with the pin */
	}
}

static const uint32_t lens[4] = {1, 2, 4, 8};

static void run_op(struct stream *s)
{
	static const uint16_t bases[8] = {
	    ISOLA_PORT_COM1,         ISOLA_PORT_I8042_DATA,    ISOLA_PORT_RTC_INDEX,
	    ISOLA_DEBUG_EXIT_PORT,   ISOLA_PORT_PCI_CONFIG_ADDRESS, ISOLA_PORT_ACPI_PM1A_EVT,
	    ISOLA_PORT_ACPI_PM1A_CNT, ISOLA_PORT_ACPI_PM_TMR};
	uint8_t buf[8], bytes[128];
	uint64_t value, addr;
	uint32_t len;
	bool is_write;

	switch ((unsigned)take(s, 1) % OP_COUNT) {
	case OP_PIO:
		addr = bases[take(s, 1) & 7] + (take(s, 1) & 15) - 2;
		len = lens[take(s, 1) % 3]; /* port I/O: 1, 2 or 4 bytes */
		is_write = take(s, 1) & 1;
		value = take(s, 4);
		memcpy(buf, &value, 8);
		bus_dispatch(&fz.pio, addr, buf, len, is_write);
		break;
	case OP_MMIO:
		addr = LAYOUT_IOAPIC + take(s, 2) - 0x10;
		len = lens[take(s, 1) & 3];
		is_write = take(s, 1) & 1;
		value = take(s, 8);
		memcpy(buf, &value, 8);
		bus_dispatch(&fz.mmio, addr, buf, len, is_write);
		break;
	case OP_IOAPIC_REG: {
		uint32_t reg = (uint32_t)take(s, 1), val = (uint32_t)take(s, 4);

		memcpy(buf, &reg, 4);
		bus_dispatch(&fz.mmio, LAYOUT_IOAPIC, buf, 4, true);
		memcpy(buf, &val, 4);
		bus_dispatch(&fz.mmio, LAYOUT_IOAPIC + 0x10, buf, 4, true);
		break;
	}
	case OP_RECEIVE: {
		size_t n = take(s, 1) & 127, got;

		for (size_t i = 0; i < n; i++)
			bytes[i] = (uint8_t)take(s, 1);
		got = serial_receive(&fz.serial, bytes, n);
		if (got > n)
			abort();
		break;
	}
	case OP_EOI:
		ioapic_eoi(&fz.ioapic, (uint8_t)take(s, 1));
		break;
	case OP_IRQ: {
		unsigned pin = (unsigned)take(s, 1) % (IOAPIC_NR_PINS + 2);

		ioapic_set_irq(&fz.ioapic, pin, take(s, 1) & 1);
		break;
	}
	case OP_CTRL_ALT_DEL:
		i8042_send_ctrl_alt_del(&fz.i8042);
		break;
	case OP_FLUSH: /* the end of an exit, as the vCPU loop ends it */
		bus_after_exit(&fz.pio, ISOLA_PORT_COM1);
		break;
	case OP_UART:
		addr = ISOLA_PORT_COM1 + (take(s, 1) & 7);
		buf[0] = (uint8_t)take(s, 1);
		bus_dispatch(&fz.pio, addr, buf, 1, take(s, 1) & 1);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s = {data, size};

	if (size > 8192)
		return 0;
	if (null_fd < 0)
		null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	setup();
	while (s.left) {
		run_op(&s);
		check_invariants();
	}
	teardown();
	return 0;
}
