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

/* Whether vm can be snapshotted now (paused): 0, or -EBUSY with a
 * sentence in err. */
int snapshot_check(struct vm *vm, char *err, size_t errlen);
/*
 * Write the state of vm (paused: vm_pause) to state_fd and its RAM to
 * mem_fd (both empty, opened for writing by the caller): all of it, or
 * with diff only the pages written since the last snapshot (or the
 * restore), core/snapshot_dirty.c.  Called by the event loop (the main
 * thread: its seccomp list has what this needs).  Once both files are in
 * place the caller calls snapshot_dirty_commit.  0 or -errno with a
 * sentence in err.
 */
int snapshot_create(struct vm *vm, int state_fd, int mem_fd, bool diff, char *err, size_t errlen);

/* KVM_GET_MSRS / KVM_SET_MSRS stop at the first MSR they cannot do and
 * return how many they did (api.rst): do the rest after skipping it.
 * Returns how many entries were done (the ones skipped get index ~0), or
 * -errno. */
int snapshot_msrs_transfer(int fd, unsigned long request, struct kvm_msrs *msrs);

/* SDM Vol. 4 Table 2-2 */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

#endif
