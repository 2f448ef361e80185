/* SPDX-License-Identifier: MIT */
/*
 * PCI host: configuration mechanism #1 (ports 0xCF8/0xCFC, PCI Local Bus 3.0
 * §3.2.2.3.2) and PCIe ECAM (PCIe Base 4.0 §7.2.2) over one bus.  Function
 * 0 of device 0 is the host bridge; other devices plug into slots 1..31.
 * Absent functions read as all-ones.
 */
#ifndef ISOLA_DEVICES_PCI_H
#define ISOLA_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_SLOTS 32
#define PCI_CONFIG_SIZE 4096

struct pci_function;

struct pci_function_ops {
	/* Optional hooks after the generic config-space write (BAR moves, MSI-X
	 * enable, command register) and to fill a read (live registers). */
	void (*config_write)(struct pci_function *fn, uint32_t offset, uint32_t len);
	void (*config_read)(struct pci_function *fn, uint32_t offset, uint32_t len);
};

struct pci_function {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t write_mask[PCI_CONFIG_SIZE]; /* bits the guest may change */
	const struct pci_function_ops *ops;
	void *opaque;
};

struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address; /* 0xCF8 */
	struct pci_function bridge;
	struct pci_function *slots[PCI_SLOTS];
};

void pci_host_init(struct pci_host *host);
void pci_host_destroy(struct pci_host *host);
/* Plug fn into slot (1..31); returns 0, -EBUSY or -EINVAL. */
int pci_host_plug(struct pci_host *host, unsigned slot, struct pci_function *fn);
/* Port handler for 0xCF8..0xCFF (bus_access_fn). */
void pci_host_port_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);
/* MMIO handler for the ECAM window (bus_access_fn). */
void pci_host_ecam_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);
/* Config-space access to bus 0, devfn; absent functions read all-ones. */
void pci_host_config_access(struct pci_host *host, unsigned devfn, uint32_t offset,
			    uint8_t *data, uint32_t len, bool is_write);

#endif
