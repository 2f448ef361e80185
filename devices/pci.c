// SPDX-License-Identifier: MIT
#include "devices/pci.h"

#include <errno.h>
#include <string.h>

#include "isola/abi.h"

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CLASS_BRIDGE_HOST 0x0600
#define CONFIG_ADDRESS_ENABLE 0x80000000u

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

void pci_host_init(struct pci_host *host)
{
	struct pci_function *bridge = &host->bridge;

	memset(host, 0, sizeof(*host));
	pthread_mutex_init(&host->lock, NULL);
	put16(bridge->config + PCI_VENDOR_ID, ISOLA_PCI_VENDOR_ID);
	put16(bridge->config + PCI_DEVICE_ID, ISOLA_PCI_HOST_DEVICE_ID);
	put16(bridge->config + PCI_SUBSYSTEM_VENDOR, ISOLA_PCI_VENDOR_ID);
	put16(bridge->config + PCI_SUBSYSTEM_ID, 0x1100);
	bridge->config[PCI_CLASS_PROG + 1] = PCI_CLASS_BRIDGE_HOST & 0xff;
	bridge->config[PCI_CLASS_PROG + 2] = PCI_CLASS_BRIDGE_HOST >> 8;
	bridge->config[PCI_HEADER_TYPE] = 0x00;
	/* Memory and I/O decode are always on for the host bridge; nothing of
	 * it is writable. */
	put16(bridge->config + PCI_COMMAND, 0x0006);
	host->slots[0] = bridge;
}

void pci_host_destroy(struct pci_host *host)
{
	pthread_mutex_destroy(&host->lock);
}

int pci_host_plug(struct pci_host *host, unsigned slot, struct pci_function *fn)
{
	if (slot == 0 || slot >= PCI_SLOTS || !fn)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	if (host->slots[slot]) {
		pthread_mutex_unlock(&host->lock);
		return -EBUSY;
	}
	host->slots[slot] = fn;
	pthread_mutex_unlock(&host->lock);
	return 0;
}

/* Only function 0 of each slot exists (no multi-function devices). */
static struct pci_function *pci_host_lookup(struct pci_host *host, unsigned devfn)
{
	if (devfn & 7)
		return NULL;
	return host->slots[devfn >> 3];
}

void pci_host_config_access(struct pci_host *host, unsigned devfn, uint32_t offset,
			    uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_function *fn;

	if (offset >= PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - offset) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&host->lock);
	fn = devfn < 256 ? pci_host_lookup(host, devfn) : NULL;
	if (!fn) {
		if (!is_write)
			memset(data, 0xff, len);
	} else if (is_write) {
		for (uint32_t i = 0; i < len; i++) {
			uint8_t mask = fn->write_mask[offset + i];

			fn->config[offset + i] = (uint8_t)((fn->config[offset + i] & ~mask) | (data[i] & mask));
		}
		if (fn->ops && fn->ops->config_write)
			fn->ops->config_write(fn, offset, len);
	} else {
		if (fn->ops && fn->ops->config_read)
			fn->ops->config_read(fn, offset, len);
		memcpy(data, fn->config + offset, len);
	}
	pthread_mutex_unlock(&host->lock);
}

void pci_host_port_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct pci_host *host = opaque;
	uint32_t address;

	if (offset < 4) {
		/* CONFIG_ADDRESS takes only 32-bit accesses; narrower ones go to
		 * other (absent) devices on a PC, e.g. 0xCF9 reset control. */
		if (offset != 0 || len != 4) {
			if (!is_write)
				memset(data, 0xff, len);
			return;
		}
		pthread_mutex_lock(&host->lock);
		if (is_write)
			memcpy(&host->config_address, data, 4);
		else
			memcpy(data, &host->config_address, 4);
		pthread_mutex_unlock(&host->lock);
		return;
	}
	pthread_mutex_lock(&host->lock);
	address = host->config_address;
	pthread_mutex_unlock(&host->lock);
	/* Bus 0 only; bits 11:8 extend the register number (AMD/Intel ext.). */
	if (!(address & CONFIG_ADDRESS_ENABLE) || ((address >> 16) & 0xff) != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_host_config_access(host, (address >> 8) & 0xff,
			       (address & 0xfc) + (uint32_t)(offset - 4), data, len, is_write);
}

void pci_host_ecam_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct pci_host *host = opaque;
	/* ECAM address: bus[27:20] devfn[19:12] register[11:0]. */
	unsigned bus = (unsigned)(offset >> 20);
	unsigned devfn = (unsigned)((offset >> 12) & 0xff);
	uint32_t reg = (uint32_t)(offset & 0xfff);

	if (bus != 0 || (reg & (len - 1)) || len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_host_config_access(host, devfn, reg, data, len, is_write);
}
