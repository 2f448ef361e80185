// SPDX-License-Identifier: MIT
/*
 * Virtio devices in a snapshot (core/snapshot_devices.h, docs/snapshot.md
 * "Devices").  The device side is the vhost-user front-end's
 * (devices/vhost_user_device.h: vhost_device_save / _restore); here is the
 * device set's part: which servers, in which order, with which arguments.
 */
#define _GNU_SOURCE
#include "core/snapshot_devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/device_set.h"
#include "core/snapshot_state.h"
#include "core/vm.h"
#include "devices/vhost_user_device.h"
#include "lib/gmem.h"
#include "lib/log.h"

/* The entry's server and arguments as device_set_add_saved takes them. */
static int entry_save(const struct device_entry *e, struct snapshot_device_entry *out, char *err,
		      size_t errlen)
{
	uint32_t at = 0;

	snprintf(out->kind, sizeof(out->kind), "%s", e->kind->name);
	snprintf(out->name, sizeof(out->name), "%s", e->name);
	out->flags = e->restart.restart ? SNAPSHOT_DEVICE_RESTART : 0;
	memcpy(out->frontend_config, e->frontend_config, sizeof(out->frontend_config));
	if (e->socket_path) {
		out->flags |= SNAPSHOT_DEVICE_EXTERNAL;
		if (snprintf(out->socket, sizeof(out->socket), "%s", e->socket_path) >=
		    (int)sizeof(out->socket))
			return error_text(err, errlen, -ENAMETOOLONG,
					  "device %s: its socket path is too long", e->name);
		return 0;
	}
	for (unsigned i = 0; e->args[i]; i++) {
		size_t len = strlen(e->args[i]) + 1;

		if (len > sizeof(out->args) - at)
			return error_text(err, errlen, -ENAMETOOLONG,
					  "device %s: its server's arguments are too long",
					  e->name);
		memcpy(out->args + at, e->args[i], len);
		at += (uint32_t)len;
	}
	out->args_len = at;
	return 0;
}

int snapshot_devices_save(struct vm *vm, snapshot_add_fn add, void *writer, char *err,
			  size_t errlen)
{
	struct device_set *set = vm->devices;

	for (unsigned i = 0; set && i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];
		struct snapshot_device_entry *entry = calloc(1, sizeof(*entry));
		struct vhost_device_saved *rings = calloc(1, sizeof(*rings));
		uint8_t *state = malloc(VHOST_DEVICE_STATE_MAX);
		size_t state_len = VHOST_DEVICE_STATE_MAX;
		char why[384];
		int ret;

		if (!entry || !rings || !state) {
			free(entry);
			free(rings);
			free(state);
			return error_text(err, errlen, -ENOMEM, "out of memory");
		}
		ret = e->attached
			  ? entry_save(e, entry, err, errlen)
			  : error_text(err, errlen, -EBUSY,
				       "device %s has no front-end in this VM (its back-end "
				       "is being replaced); try again",
				       e->name);
		if (!ret) {
			ret =
			    vhost_device_save(&e->dev, rings, state, &state_len, why, sizeof(why));
			if (ret)
				error_text(err, errlen, ret, "device %s: %s", e->name, why);
		}
		if (ret) {
			free(entry);
			free(rings);
			free(state);
			return ret;
		}
		ret = add(writer, SNAPSHOT_DEVICE, i, entry, sizeof(*entry));
		ret = ret ?: add(writer, SNAPSHOT_DEVICE_RINGS, i, rings, sizeof(*rings));
		if (!ret && state_len)
			ret = add(writer, SNAPSHOT_DEVICE_SERVER, i, state, state_len);
		else if (!ret)
			free(state);
		if (ret)
			return error_text(err, errlen, ret, "device %s: %s", e->name,
					  strerror(-ret));
		log_debug("snapshot: %s: status 0x%x, rings 0x%x at %u/%u, %zu state bytes",
			  e->name, rings->pci.status, rings->started_queues, rings->bases[0],
			  rings->bases[1], state_len);
	}
	return 0;
}

void snapshot_devices_save_done(struct vm *vm)
{
	struct device_set *set = vm->devices;

	for (unsigned i = 0; set && i < set->nr; i++)
		if (set->entries[i].attached)
			vhost_device_save_done(&set->entries[i].dev);
}

/* The device kind each override of the API and the CLI is for
 * (Firecracker's drive_overrides, network_overrides, vsock_override). */
static const char *const override_kinds[] = {
    [CONFIG_OVERRIDE_DRIVE] = "blk",
    [CONFIG_OVERRIDE_NET] = "net",
    [CONFIG_OVERRIDE_VSOCK] = "vsock",
};

/* The option of kind's server an override of okind replaces (the kind's
 * row says which), or NULL. */
static const char *override_option(const char *kind, enum config_override_kind okind)
{
	const struct device_kind *row = device_kind_by_name(kind);

	if (!row || (unsigned)okind >= sizeof(override_kinds) / sizeof(override_kinds[0]) ||
	    strcmp(kind, override_kinds[okind]))
		return NULL;
	return row->restore_override_option;
}

/* Does override o name this device (of its kind)? */
static bool override_names(const struct config_override *o, const char *name, const char **argv)
{
	char id[21];

	if (o->kind == CONFIG_OVERRIDE_VSOCK || !strcmp(o->id, name))
		return true;
	if (o->kind != CONFIG_OVERRIDE_DRIVE)
		return false;
	/* isola-blk's --id: the drive_id's first 20 bytes (the virtio-blk
	 * serial, virtio 1.2 5.2.6: VIRTIO_BLK_T_GET_ID's 20 bytes) */
	snprintf(id, sizeof(id), "%.20s", o->id);
	for (unsigned i = 0; argv[i] && argv[i + 1]; i++)
		if (!strcmp(argv[i], "--id"))
			return !strcmp(argv[i + 1], id);
	return false;
}

int snapshot_devices_override(const char *kind, const char *name, bool external, const char **argv,
			      const struct config_override *overrides, unsigned nr, bool *used,
			      char *err, size_t errlen)
{
	bool taken = false;

	for (unsigned i = 0; i < nr; i++) {
		const struct config_override *o = &overrides[i];
		const char *option = override_option(kind, o->kind);
		unsigned a;

		if (!option || !override_names(o, name, argv))
			continue;
		if (used[i] || taken)
			return error_text(err, errlen, -EINVAL,
					  "%s: the override of \"%s\" and another name the same "
					  "device, or it names two devices; name each device once, "
					  "by its id or its name",
					  name, o->id);
		taken = true;
		if (external)
			return error_text(err, errlen, -EINVAL,
					  "device %s is served by an external back-end (its "
					  "socket is in the snapshot): isola has no %s to override",
					  name, option + 2);
		for (a = 0; argv[a] && strcmp(argv[a], option); a++)
			;
		if (!argv[a] || !argv[a + 1])
			return error_text(err, errlen, -EINVAL, "device %s has no %s to override",
					  name, option);
		argv[a + 1] = o->value;
		used[i] = true;
		log_info("restore: %s: %s %s (override)", name, option, o->value);
	}
	return 0;
}

int snapshot_devices_add(struct device_set *set, const struct snapshot_image *img,
			 const struct config_override *overrides, unsigned nr_overrides, char *err,
			 size_t errlen)
{
	static const char *const what[] = {[CONFIG_OVERRIDE_DRIVE] = "drive",
					   [CONFIG_OVERRIDE_NET] = "interface",
					   [CONFIG_OVERRIDE_VSOCK] = "vsock device"};
	unsigned n = snapshot_device_count(img);
	bool used[CONFIG_MAX_OVERRIDES] = {false};

	if (nr_overrides > CONFIG_MAX_OVERRIDES)
		return error_text(err, errlen, -E2BIG, "more than %u overrides",
				  CONFIG_MAX_OVERRIDES);
	for (unsigned i = 0; i < n; i++) {
		const struct snapshot_device_entry *e =
		    snapshot_image_find(img, SNAPSHOT_DEVICE, i)->data;
		const char *argv[SNAPSHOT_DEVICE_MAX_ARGS + 1];
		int ret = snapshot_check_device(img, i, argv, err, errlen);

		if (!ret)
			ret = snapshot_devices_override(e->kind, e->name,
							e->flags & SNAPSHOT_DEVICE_EXTERNAL, argv,
							overrides, nr_overrides, used, err, errlen);
		if (!ret)
			ret = device_set_add_saved(
			    set, e->kind, e->name, e->flags & SNAPSHOT_DEVICE_RESTART,
			    (e->flags & SNAPSHOT_DEVICE_EXTERNAL) ? e->socket : NULL, argv,
			    e->frontend_config, err, errlen);
		if (ret)
			return ret;
	}
	/* an override that names nothing is a mistake (a clone that would
	 * share its original's image or tap), not something to skip */
	for (unsigned i = 0; i < nr_overrides; i++)
		if (!used[i])
			return error_text(
			    err, errlen, -ENODEV,
			    "the snapshot has no %s%s%s%s to override (a drive is named by its "
			    "drive_id or diskN, an interface by netN: its place among the "
			    "interfaces)",
			    what[overrides[i].kind], overrides[i].id[0] ? " \"" : "",
			    overrides[i].id, overrides[i].id[0] ? "\"" : "");
	return 0;
}

int snapshot_devices_restore(struct vm *vm, const struct snapshot_image *img, char *err,
			     size_t errlen)
{
	struct device_set *set = vm->devices;
	unsigned n = snapshot_device_count(img);

	if (!set || set->nr != n)
		return error_text(err, errlen, -EINVAL, "the snapshot has %u devices, the VM %u", n,
				  set ? set->nr : 0);
	for (unsigned i = 0; i < n; i++) {
		struct device_entry *e = &set->entries[i];
		const struct snapshot_section *rings =
		    snapshot_image_find(img, SNAPSHOT_DEVICE_RINGS, i);
		const struct snapshot_section *server =
		    snapshot_image_find(img, SNAPSHOT_DEVICE_SERVER, i);
		char why[384];
		int ret;

		if (!rings || rings->len != sizeof(struct vhost_device_saved) || !e->attached)
			return error_text(err, errlen, -EINVAL, "device %s: no transport state",
					  e->name);
		ret = vhost_device_restore(&e->dev, rings->data, server ? server->data : NULL,
					   server ? server->len : 0, why, sizeof(why));
		if (ret)
			return error_text(err, errlen, ret, "device %s: %s", e->name, why);
	}
	return 0;
}

/* pread [from, to) of the file into the region, all of it. */
static int copy_range(int fd, const struct gmem_region *r, uint64_t from, uint64_t to)
{
	while (from < to) {
		ssize_t n = pread(fd, r->host + from, to - from, (off_t)(r->fd_offset + from));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		from += (uint64_t)n;
	}
	return 0;
}

int snapshot_devices_load_memory(struct gmem *ram, int fd, uint64_t ram_size)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_size)
		return -EMEDIUMTYPE;
	ret = gmem_create(ram, ram_size, GMEM_BACKING_SHMEM);
	if (ret)
		return ret;
	for (unsigned i = 0; !ret && i < ram->nr_regions; i++) {
		const struct gmem_region *r = &ram->regions[i];
		uint64_t at = 0;

		/* only the file's data: a sparse file's holes are the memfd's
		 * zeros already */
		while (!ret && at < r->size) {
			off_t data = lseek(fd, (off_t)(r->fd_offset + at), SEEK_DATA);
			off_t hole;

			if (data < 0 && errno == ENXIO)
				break;
			if (data < 0) {
				ret = copy_range(fd, r, at, r->size);
				break;
			}
			if ((uint64_t)data >= r->fd_offset + r->size)
				break;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > r->fd_offset + r->size)
				hole = (off_t)(r->fd_offset + r->size);
			ret = copy_range(fd, r, (uint64_t)data - r->fd_offset,
					 (uint64_t)hole - r->fd_offset);
			at = (uint64_t)hole - r->fd_offset;
		}
	}
	if (ret)
		gmem_destroy(ram);
	return ret;
}
