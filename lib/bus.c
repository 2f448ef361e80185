// SPDX-License-Identifier: MIT
#include "lib/bus.h"

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
	bus->ranges[bus->nr_ranges++] = (struct bus_range){
	    .base = base, .size = size, .access = access, .opaque = opaque, .name = name};
	return 0;
}

int bus_find(const struct bus *bus, const void *opaque)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++)
		if (bus->ranges[i].opaque == opaque)
			return (int)i;
	return -ENOENT;
}

int bus_move(struct bus *bus, unsigned id, uint64_t new_base, uint64_t new_size)
{
	struct bus_range *range;

	if (id >= bus->nr_ranges || new_base + new_size < new_base)
		return -EINVAL;
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];
		uint64_t base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);
		uint64_t size = __atomic_load_n(&r->size, __ATOMIC_ACQUIRE);

		if (i != id && new_size && new_base < base + size && base < new_base + new_size)
			return -EEXIST;
	}
	range = &bus->ranges[id];
	__atomic_store_n(&range->size, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&range->base, new_base, __ATOMIC_RELEASE);
	__atomic_store_n(&range->size, new_size, __ATOMIC_RELEASE);
	return 0;
}

/* The range holding addr now (its base and size as read), or NULL. */
static const struct bus_range *bus_lookup(const struct bus *bus, uint64_t addr, uint64_t *base,
					  uint64_t *size)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];

		*base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);
		*size = __atomic_load_n(&r->size, __ATOMIC_ACQUIRE);
		if (addr >= *base && addr - *base < *size)
			return r;
	}
	return NULL;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	uint64_t base, size;
	const struct bus_range *r = bus_lookup(bus, addr, &base, &size);

	if (!is_write)
		memset(data, 0xff, len);
	if (!r)
		return false;
	/* An access straddling the end of a range is cut to the range; the
	 * rest reads as ones (hostile guests do this). */
	uint64_t room = size - (addr - base);

	r->access(r->opaque, addr - base, data, len <= room ? len : (uint32_t)room, is_write);
	return true;
}

int bus_set_after_exit(struct bus *bus, uint64_t base, bus_after_exit_fn after_exit)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		if (bus->ranges[i].base == base) {
			bus->ranges[i].after_exit = after_exit;
			bus->has_after_exit = true;
			return 0;
		}
	}
	return -ENOENT;
}

void bus_after_exit(const struct bus *bus, uint64_t addr)
{
	uint64_t base, size;
	const struct bus_range *r;

	if (!bus->has_after_exit)
		return; /* the MMIO bus: no hook, no second walk on each exit */
	r = bus_lookup(bus, addr, &base, &size);
	if (r && r->after_exit)
		r->after_exit(r->opaque);
}
