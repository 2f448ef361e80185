// SPDX-License-Identifier: MIT
/* Diff snapshots' dirty page log (core/snapshot_dirty.c, docs/snapshot.md
 * "Diff snapshots"), apart from core/snapshot.h so that the snapshot code
 * calls down into it and it needs nothing back (tests/system/layering.sh). */
#ifndef ISOLA_CORE_SNAPSHOT_DIRTY_H
#define ISOLA_CORE_SNAPSHOT_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* core/snapshot_dirty.c (Diff snapshots, docs/snapshot.md).  Whether a
 * snapshot of that type can be taken of vm: 0, or -EINVAL with a
 * sentence in err (Diff without dirty page tracking, or with device
 * servers). */
int snapshot_dirty_check(struct vm *vm, bool diff, char *err, size_t errlen);
/* With tracking on: KVM_GET_DIRTY_LOG of every slot (which clears KVM's
 * log) added to the pages pending since the last snapshot. */
int snapshot_dirty_collect(struct vm *vm);
/* A Diff's memory file: sized to the RAM, and every pending page written
 * (zero pages too); *pages how many.  0 or -errno. */
int snapshot_dirty_write(struct vm *vm, int mem_fd, uint64_t *pages);
/* Both files of a snapshot are in place: the pending pages are in it, and
 * the next Diff is against it. */
void snapshot_dirty_commit(struct vm *vm);

#endif
