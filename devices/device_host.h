/* SPDX-License-Identifier: MIT */
/*
 * What a device may ask of the VM it is plugged into, and nothing more: the
 * KVM data-path bindings (ioeventfd, irqfd, MSI routes and injection), a
 * move of the MMIO range it owns, and guest memory through lib/gmem.  The
 * core implements it once on struct vm (core/device_host.c); a unit test
 * implements it with a fake that records the calls.  A device never sees
 * struct vm, the buses or the KVM file descriptors.
 *
 * Every op returns 0 or -errno and may be called from a vCPU thread or the
 * event loop; none blocks on the guest or a back-end.
 */
#ifndef ISOLA_DEVICES_DEVICE_HOST_H
#define ISOLA_DEVICES_DEVICE_HOST_H

#include <stdbool.h>
#include <stdint.h>

struct gmem;

struct device_host_ops {
	/* A guest write of len bytes at MMIO address addr signals eventfd fd
	 * (assign), or no longer does (api.rst KVM_IOEVENTFD). */
	int (*ioeventfd)(void *opaque, uint64_t addr, uint32_t len, int fd, bool assign);
	/* A write to eventfd fd raises GSI gsi (assign), or no longer does
	 * (api.rst KVM_IRQFD). */
	int (*irqfd)(void *opaque, unsigned gsi, int fd, bool assign);
	/* Point GSI gsi (one of the device's, see device_placement) at an MSI. */
	int (*set_msi_route)(void *opaque, unsigned gsi, uint64_t address, uint32_t data);
	/* Inject one MSI now (api.rst KVM_SIGNAL_MSI). */
	int (*signal_msi)(void *opaque, uint64_t address, uint32_t data);
	/* Move the device's MMIO range (the one the caller registered with
	 * handler opaque owner) to new_base; new_size 0 unmaps it.  -EEXIST
	 * if it would overlap another range (it is then left where it was),
	 * -ENOENT if no range has that owner. */
	int (*mmio_move)(void *opaque, const void *owner, uint64_t new_base, uint64_t new_size);
};

struct device_host {
	const struct device_host_ops *ops;
	void *opaque;		/* passed to every op */
	const struct gmem *mem; /* guest RAM, only through gmem_* helpers */
};

/* Where the caller (the core, from the device's number) put the device.
 * The caller also registers the BAR on its MMIO bus and plugs the PCI
 * function at the slot: a device needs neither the bus nor the bridge. */
struct device_placement {
	unsigned slot;	   /* PCI slot on the host bridge */
	uint64_t bar;	   /* guest address of BAR 0 as "firmware" left it */
	unsigned gsi_base; /* first of the GSIs reserved for the device's vectors */
};

#endif
