/* SPDX-License-Identifier: MIT */
/*
 * Restore of a snapshot (core/snapshot.h makes one) in a fresh process:
 * docs/snapshot.md "Restore".
 */
#ifndef ISOLA_CORE_SNAPSHOT_RESTORE_H
#define ISOLA_CORE_SNAPSHOT_RESTORE_H

#include <stddef.h>

#include "core/config.h"
#include "core/snapshot_state.h"
#include "lib/gmem.h"
#include "lib/snapshot_file.h"

struct vm;

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
