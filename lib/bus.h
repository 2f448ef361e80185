/* SPDX-License-Identifier: MIT */
/*
 * Port-I/O and MMIO dispatch: devices register address ranges with a handler;
 * a vCPU exit is routed to the one handler whose range holds the access.
 * Accesses nobody claims read as all-ones and writes are dropped, as on a PC.
 */
#ifndef ISOLA_LIB_BUS_H
#define ISOLA_LIB_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_DEVICES 64 /* the MMIO bus: 31 PCI BARs and the platform devices */

/* offset is relative to the range start; len is 1, 2, 4 or 8; data is
 * little-endian. A read handler fills data[0..len). */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write);

/* Called once after all the accesses of one vCPU exit in the range (a
 * `rep outsb` is count accesses in one exit), so a device may batch work
 * per exit instead of per access (the UART: one write(2) per exit). */
typedef void (*bus_after_exit_fn)(void *opaque);

struct bus_range {
	uint64_t base;
	uint64_t size;
	bus_access_fn access;
	void *opaque;
	const char *name;
	bus_after_exit_fn after_exit; /* optional: bus_set_after_exit() */
};

struct bus {
	unsigned nr_ranges;
	bool has_after_exit; /* some range has a hook: bus_after_exit looks */
	struct bus_range ranges[BUS_MAX_DEVICES];
};

/* Returns 0, -EEXIST if the range overlaps another, -ENOSPC, -EINVAL.
 * Register before vCPUs run; afterwards only bus_move() changes the map. */
int bus_register(struct bus *bus, uint64_t base, uint64_t size, bus_access_fn access, void *opaque,
		 const char *name);
/* Move range `id` (bus_register's return order, see bus_find) to new_base;
 * size 0 unmaps it.  Safe while vCPUs dispatch: the range is first emptied,
 * then moved (a BAR being reprogrammed decodes nothing in between, as on
 * hardware).  Returns 0 or -EINVAL/-EEXIST. */
int bus_move(struct bus *bus, unsigned id, uint64_t new_base, uint64_t new_size);
/* Index of the range whose handler opaque is `opaque`, or -ENOENT. */
int bus_find(const struct bus *bus, const void *opaque);
/* Returns true if a device handled the access. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);
/* Give the range registered at `base` an after-exit hook (called with its
 * opaque).  Before vCPUs run, like bus_register.  0 or -ENOENT. */
int bus_set_after_exit(struct bus *bus, uint64_t base, bus_after_exit_fn after_exit);
/* A vCPU finished dispatching an exit's writes at addr: run the hook of
 * the range that holds addr now, if it has one. */
void bus_after_exit(const struct bus *bus, uint64_t addr);

#endif
