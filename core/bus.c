// SPDX-License-Identifier: MIT
#include "core/bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t size, bus_access_fn access, void *opaque,
		 const char *name)
{
	if (!size || base + size < base || !access)
		return -EINVAL;
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->size && r->base < base + size)
			return -EEXIST;
	}
	if (bus->nr_ranges >= BUS_MAX_DEVICES)
		return -ENOSPC;
	bus->ranges[bus->nr_ranges++] = (struct bus_range){base, size, access, opaque, name};
	return 0;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (addr >= r->base && addr - r->base < r->size) {
			/* An access straddling the end of a range is cut to the range;
			 * the rest reads as ones (hostile guests do this). */
			uint64_t room = r->size - (addr - r->base);
			uint32_t n = len <= room ? len : (uint32_t)room;

			if (!is_write)
				memset(data, 0xff, len);
			r->access(r->opaque, addr - r->base, data, n, is_write);
			return true;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
