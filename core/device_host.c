// SPDX-License-Identifier: MIT
/*
 * devices/device_host.h on struct vm: the one place a device's requests
 * become KVM ioctls on the VM fd and moves on the VM's MMIO bus.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "core/vm.h"
#include "devices/device_host.h"

static int vm_host_ioeventfd(void *opaque, uint64_t addr, uint32_t len, int fd, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd io = {
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int vm_host_irqfd(void *opaque, unsigned gsi, int fd, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_irqfd irqfd = {
	    .fd = (uint32_t)fd,
	    .gsi = gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int vm_host_set_msi_route(void *opaque, unsigned gsi, uint64_t address, uint32_t data)
{
	return vm_set_msi_route(opaque, gsi, address, data);
}

static int vm_host_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	return vm_signal_msi(opaque, address, data);
}

static int vm_host_mmio_move(void *opaque, const void *owner, uint64_t new_base, uint64_t new_size)
{
	struct vm *vm = opaque;
	int id = bus_find(&vm->mmio, owner);

	if (id < 0)
		return id;
	return bus_move(&vm->mmio, (unsigned)id, new_base, new_size);
}

static const struct device_host_ops vm_device_host_ops = {
    .ioeventfd = vm_host_ioeventfd,
    .irqfd = vm_host_irqfd,
    .set_msi_route = vm_host_set_msi_route,
    .signal_msi = vm_host_signal_msi,
    .mmio_move = vm_host_mmio_move,
};

struct device_host vm_device_host(struct vm *vm)
{
	return (struct device_host){.ops = &vm_device_host_ops, .opaque = vm, .mem = vm->mem};
}
