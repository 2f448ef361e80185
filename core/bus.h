/* SPDX-License-Identifier: MIT */
/*
 * Port-I/O and MMIO dispatch: devices register address ranges with a handler;
 * a vCPU exit is routed to the one handler whose range holds the access.
 * Accesses nobody claims read as all-ones and writes are dropped, as on a PC.
 */
#ifndef ISOLA_CORE_BUS_H
#define ISOLA_CORE_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_DEVICES 32

/* offset is relative to the range start; len is 1, 2, 4 or 8; data is
 * little-endian. A read handler fills data[0..len). */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t size;
	bus_access_fn access;
	void *opaque;
	const char *name;
};

struct bus {
	unsigned nr_ranges;
	struct bus_range ranges[BUS_MAX_DEVICES];
};

/* Returns 0, -EEXIST if the range overlaps another, -ENOSPC, -EINVAL. */
int bus_register(struct bus *bus, uint64_t base, uint64_t size, bus_access_fn access, void *opaque,
		 const char *name);
/* Returns true if a device handled the access. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write);

#endif
