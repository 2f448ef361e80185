// SPDX-License-Identifier: MIT
/*
 * The PC board: the platform devices of arch/x86 (COM1, IOAPIC, i8042, RTC,
 * ACPI PM, the PCI host bridge, the debug-exit port) wired to the VM's buses
 * and interrupt lines, at the addresses the ACPI tables and the e820 map
 * describe (arch/x86/layout.h, include/isola/abi.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "core/board.h"
#include "core/loader.h"
#include "core/snapshot_restore.h"
#include "core/vm.h"
#include "devices/device_host.h"
#include "lib/log.h"

void vm_send_ctrl_alt_del(struct vm *vm)
{
	i8042_send_ctrl_alt_del(&vm->i8042);
}

static void vm_event_reset(void *opaque, const char *source)
{
	vm_request_stop(opaque, ISOLA_EXIT_RESET, "guest requested a reset (%s)", source);
}

static void vm_event_poweroff(void *opaque, const char *source)
{
	vm_request_stop(opaque, ISOLA_EXIT_POWEROFF, "guest powered off (%s)", source);
}

void vm_set_isa_irq(struct vm *vm, unsigned irq, bool level)
{
	/* ISA IRQ 0 is wired to GSI 2 (MADT interrupt source override). */
	ioapic_set_irq(&vm->ioapic, irq == 0 ? 2 : irq, level);
}

static void vm_serial_irq(void *opaque, bool level)
{
	vm_set_isa_irq(opaque, ISOLA_IRQ_COM1, level);
}

static void vm_i8042_irq(void *opaque, bool level)
{
	vm_set_isa_irq(opaque, 1, level);
}

static void vm_serial_rx_space(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->rx_space_fd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

static void vm_debug_exit(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;
	uint32_t value = 0;

	(void)offset;
	if (!is_write)
		return; /* reads as all-ones (bus default) */
	memcpy(&value, data, len > 4 ? 4 : len);
	vm_request_stop(vm, ISOLA_DEBUG_EXIT_STATUS(value),
			"guest wrote 0x%x to the debug-exit port (exit status %d)", value,
			ISOLA_DEBUG_EXIT_STATUS(value));
}

static void vm_pci_ports(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (offset == ISOLA_PORT_RESET - ISOLA_PORT_PCI_CONFIG_ADDRESS && len == 1)
		acpi_pm_reset_access(&vm->pm, 0, data, len, is_write);
	else
		pci_host_port_access(&vm->pci, offset, data, len, is_write);
}

static int board_wire_platform(struct vm *vm, int console_out_fd)
{
	int ret = 0;

	vm->events = (struct platform_events){vm_event_reset, vm_event_poweroff, vm};
	serial_init(&vm->serial, console_out_fd, vm_serial_irq, vm_serial_rx_space, vm);
	/* The MADT gives the IOAPIC the same ID. */
	ioapic_init(&vm->ioapic, acpi_ioapic_id(vm->nr_cpus), &vm_ioapic_ops, vm);
	i8042_init(&vm->i8042, &vm->events, vm_i8042_irq, vm);
	rtc_init(&vm->rtc, vm->mem->ram_size);
	acpi_pm_init(&vm->pm, &vm->events);
	pci_host_init(&vm->pci);
	vm->devices_ready = true;

	ret |= bus_register(&vm->pio, ISOLA_PORT_COM1, 8, serial_access, &vm->serial, "com1");
	ret |= bus_set_after_exit(&vm->pio, ISOLA_PORT_COM1, serial_after_exit);
	ret |= bus_register(&vm->pio, ISOLA_PORT_I8042_DATA, 5, i8042_access, &vm->i8042, "i8042");
	ret |= bus_register(&vm->pio, ISOLA_PORT_RTC_INDEX, 2, rtc_access, &vm->rtc, "rtc");
	ret |= bus_register(&vm->pio, ISOLA_DEBUG_EXIT_PORT, 4, vm_debug_exit, vm, "debug-exit");
	/* 0xCF8..0xCFF: PCI configuration mechanism #1, with the reset control
	 * register at 0xCF9 in the middle of CONFIG_ADDRESS, as on a PC. */
	ret |= bus_register(&vm->pio, ISOLA_PORT_PCI_CONFIG_ADDRESS, 8, vm_pci_ports, vm,
			    "pci-config");
	ret |= bus_register(&vm->pio, ISOLA_PORT_ACPI_PM1A_EVT, 12, acpi_pm_access, &vm->pm,
			    "acpi-pm");
	ret |= bus_register(&vm->mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_SIZE, ioapic_access, &vm->ioapic,
			    "ioapic");
	ret |= bus_register(&vm->mmio, LAYOUT_ECAM_START, LAYOUT_ECAM_SIZE, pci_host_ecam_access,
			    &vm->pci, "pci-ecam");
	return ret ? -EINVAL : 0;
}

/* Where entry `index` goes: slot 0 is the host bridge; each device has one
 * BAR in the PCI window and one GSI per MSI-X vector after the IOAPIC's
 * pins (arch/x86/layout.h, devices/virtio_pci.h). */
static int board_device_placement(unsigned index, struct device_placement *placement)
{
	*placement = (struct device_placement){
	    .slot = index + 1,
	    .bar = LAYOUT_PCI_MMIO_START + (uint64_t)index * VIRTIO_PCI_BAR_SIZE,
	    .gsi_base = IOAPIC_NR_PINS + index * VIRTIO_PCI_MAX_VECTORS,
	};
	if (placement->slot >= PCI_SLOTS ||
	    placement->gsi_base + VIRTIO_PCI_MAX_VECTORS > VM_MAX_GSI_ROUTES ||
	    placement->bar + VIRTIO_PCI_BAR_SIZE > LAYOUT_PCI_MMIO_START + LAYOUT_PCI_MMIO_SIZE)
		return -ENOSPC;
	return 0;
}

static int board_plug_device(void *opaque, struct device_entry *e, unsigned index, int sock,
			     char *err, size_t errlen)
{
	struct vm *vm = opaque;
	struct device_host host = vm_device_host(vm);
	struct device_placement placement;
	int ret;

	if (board_device_placement(index, &placement)) {
		close(sock); /* ours: device_set_plug_fn */
		return error_text(err, errlen, -ENOSPC, "too many devices");
	}
	struct vhost_device_options options = {
	    .frontend_config = e->frontend_config,
	    .external_backend = e->socket_path != NULL,
	};

	ret = vhost_device_create(&e->dev, &host, &placement, e->kind, e->name, &options, sock,
				  vm->devices->work_fd, err, errlen);
	if (ret)
		return ret;
	ret = bus_register(&vm->mmio, placement.bar, VIRTIO_PCI_BAR_SIZE, virtio_pci_bar_access,
			   &e->dev, e->dev.name);
	if (ret) {
		error_text(err, errlen, ret, "BAR placement: %s", strerror(-ret));
	} else {
		ret = pci_host_plug(&vm->pci, placement.slot, &e->dev.pci.fn);
		if (ret) {
			error_text(err, errlen, ret, "PCI slot %u: %s", placement.slot,
				   strerror(-ret));
			host.ops->mmio_move(host.opaque, &e->dev, 0, 0);
		}
	}
	/* A device made again at this placement (a back-end replaced on a
	 * reboot) must find its notify area free. */
	if (ret)
		vhost_device_unplug(&e->dev);
	return ret;
}

static void board_unwire_platform(struct vm *vm)
{
	if (!vm->devices_ready)
		return;
	serial_destroy(&vm->serial);
	ioapic_destroy(&vm->ioapic);
	i8042_destroy(&vm->i8042);
	rtc_destroy(&vm->rtc);
	acpi_pm_destroy(&vm->pm);
	pci_host_destroy(&vm->pci);
	vm->devices_ready = false;
}

/* What a boot and a restore build alike: the VM, its platform devices
 * on the bus, the serial console's rate limiter. */
static int board_create_platform(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
				 struct device_set *devices, int console_out_fd, char *err,
				 size_t errlen)
{
	int ret;

	ret = vm_create(vm, cfg, ram, devices, console_out_fd, err, errlen);
	if (ret)
		return ret;
	ret = board_wire_platform(vm, console_out_fd);
	if (ret)
		return error_text(err, errlen, ret, "device address ranges overlap (isola bug)");
	if (cfg->serial_rate[0]) {
		char why[160];

		ret = serial_set_rate(&vm->serial, cfg->serial_rate, why, sizeof(why));
		if (ret)
			return error_text(err, errlen, ret, "serial rate limiter: %s", why);
	}
	return 0;
}

int board_create(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
		 struct device_set *devices, int console_out_fd, char *err, size_t errlen)
{
	int ret;

	ret = board_create_platform(vm, cfg, ram, devices, console_out_fd, err, errlen);
	if (ret)
		return ret;
	ret = loader_load(vm->mem, &vm->e820, cfg, &vm->entry, err, errlen);
	if (ret)
		return ret;
	/* The vCPUs before the devices: they need nothing of them, and
	 * meanwhile the device servers come up (bench/boot). */
	return vm_create_vcpus(vm, err, errlen);
}

int board_restore(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
		  struct device_set *devices, int console_out_fd, const struct snapshot_image *img,
		  char *err, size_t errlen)
{
	int ret;

	ret = board_create_platform(vm, cfg, ram, devices, console_out_fd, err, errlen);
	if (ret)
		return ret;
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_create(vm, i);
		if (ret)
			return error_text(err, errlen, ret, "cannot create vCPU %u: %s", i,
					  strerror(-ret));
	}
	return snapshot_restore(vm, img, err, errlen);
}

int board_attach_devices(struct vm *vm, char *err, size_t errlen)
{
	vm->devices_attached = true; /* detached by board_destroy even when half made */
	return device_set_attach(vm->devices, board_plug_device, vm, err, errlen);
}

void board_destroy(struct vm *vm)
{
	vm_join_vcpus(vm);
	/* The front-ends go with the VM; their back-ends stay in the set (a
	 * reboot attaches them to the next VM; device_set_destroy ends them). */
	if (vm->devices_attached)
		device_set_detach(vm->devices);
	vm->devices_attached = false;
	board_unwire_platform(vm);
	vm_destroy(vm);
}
