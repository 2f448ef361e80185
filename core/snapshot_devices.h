/* SPDX-License-Identifier: MIT */
/*
 * The virtio devices in a snapshot (docs/snapshot.md "Devices"): per
 * device, which server to start again (SNAPSHOT_DEVICE), its virtio-pci
 * transport and rings (SNAPSHOT_DEVICE_RINGS) and its server's own state,
 * fetched over vhost-user (SNAPSHOT_DEVICE_SERVER).
 */
#ifndef ISOLA_CORE_SNAPSHOT_DEVICES_H
#define ISOLA_CORE_SNAPSHOT_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#include "lib/snapshot_file.h"

struct vm;
struct device_set;

/* Adds a section (data malloc'd, owned by the callee even on failure). */
typedef int (*snapshot_add_fn)(void *writer, uint32_t type, uint32_t instance, void *data,
			       size_t len);

/* Sections one device takes, at most. */
#define SNAPSHOT_DEVICE_SECTIONS 3
/*
 * Snapshot, VM paused, before the vCPUs' and the memory's: every device's
 * sections.  Stops the rings (in-flight requests complete first: their
 * completions are in guest memory and their interrupts raised before the
 * vCPUs' state is read).  snapshot_devices_save_done must follow (after
 * guest memory is written), whatever this returned.  0 or -errno.
 */
int snapshot_devices_save(struct vm *vm, snapshot_add_fn add, void *writer, char *err,
			  size_t errlen);
void snapshot_devices_save_done(struct vm *vm);

/* Restore, before the servers start: the snapshot's devices into set
 * (img checked: snapshot_check_image), each with the overrides that name
 * it (snapshot_devices_override); an override that names no device is
 * -ENODEV.  0 or -errno with a sentence. */
int snapshot_devices_add(struct device_set *set, const struct snapshot_image *img,
			 const struct config_override *overrides, unsigned nr_overrides, char *err,
			 size_t errlen);
/*
 * The overrides (config.h) that name the device `name` of kind ("blk",
 * "net", "vsock"), whose server's arguments argv (NULL-ended) the restore
 * is about to start it with: the value after the option each replaces
 * (--image, --tap, --uds) becomes the override's (a pointer to it), and
 * used[i] is set for each override taken.  A drive is named by its id
 * (isola-blk's --id: the drive_id's first 20 bytes, --disk's id=, or
 * "diskN") or its name ("disk0"), an interface by its name ("net0"), the
 * vsock device by nothing (there is one).  0, or -EINVAL with a sentence:
 * an override names a device an earlier one named, or a device served by
 * an external back-end (external true).
 */
int snapshot_devices_override(const char *kind, const char *name, bool external, const char **argv,
			      const struct config_override *overrides, unsigned nr, bool *used,
			      char *err, size_t errlen);
/* Restore, the front-ends made (board_attach_devices), the vCPUs held:
 * each device's transport, rings and server state.  0 or -errno. */
int snapshot_devices_restore(struct vm *vm, const struct snapshot_image *img, char *err,
			     size_t errlen);

/*
 * Guest RAM for a restore with devices: a device server maps guest memory
 * (vhost-user SET_MEM_TABLE), which a private mapping of the memory file
 * cannot share, so the RAM is a new memfd (as at boot) and the memory
 * file's data ranges are read into it (its holes are zero already): the
 * restore reads what the guest had touched, not the whole size.  Same
 * results as gmem_create_private (-EMEDIUMTYPE: not a regular file of
 * ram_size bytes).
 */
struct gmem;
int snapshot_devices_load_memory(struct gmem *ram, int fd, uint64_t ram_size);

#endif
