/* SPDX-License-Identifier: MIT */
/*
 * Snapshot and restore of a paused VM (docs/snapshot.md "Restore"): the
 * vCPUs' KVM state, the VM's clock, the platform devices isola emulates and
 * the VM's shape go into a state file (lib/snapshot_file.h, one section per
 * piece below); guest RAM goes into a memory file.  A restore builds the VM
 * again in a fresh process with the same shape, maps the memory file
 * privately (copy-on-write, nothing read up front) and sets the state back.
 *
 * The sections and their payloads: core/snapshot_state.h.
 */
#ifndef ISOLA_CORE_SNAPSHOT_H
#define ISOLA_CORE_SNAPSHOT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "lib/gmem.h"
#include "core/snapshot_state.h"
#include "lib/snapshot_file.h"

struct vm;

/* Whether vm can be snapshotted now: paused, and no device servers (their
 * state is not captured yet): 0, or -EBUSY with a sentence in err. */
int snapshot_check(struct vm *vm, char *err, size_t errlen);
/*
 * Write the state of vm (paused: vm_pause) to state_fd and its RAM to
 * mem_fd (both empty, opened for writing by the caller).  Called by the
 * event loop (the main thread: its seccomp list has what this needs).
 * 0 or -errno with a sentence in err.
 */
int snapshot_create(struct vm *vm, int state_fd, int mem_fd, char *err, size_t errlen);

/*
 * Restore, step 1: read and check the state file at state_path and open
 * the memory file at mem_path, before any VM exists.  *cfg gets the VM's
 * shape (vCPUs, memory size; the rest of cfg is the caller's: console).
 * ram is mapped from the memory file (gmem_create_private).  0 or -errno
 * with a sentence in err; on error nothing is left to free.
 */
int snapshot_load(struct snapshot_image *img, struct vm_config *cfg, struct gmem *ram,
		  const char *state_path, const char *mem_path, char *err, size_t errlen);
/*
 * Restore, step 2: vm was made by board_restore (platform wired, vCPUs
 * created, not running): set every vCPU's and device's state from img.
 * 0 or -errno with a sentence in err.
 */
int snapshot_restore(struct vm *vm, const struct snapshot_image *img, char *err, size_t errlen);

#endif
