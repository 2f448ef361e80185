/* SPDX-License-Identifier: MIT */
/*
 * Loading a guest: the ACPI tables, the kernel and initrd (bzImage or PVH
 * ELF, arch/x86/boot.h) and the boot page tables, into guest memory.  Knows
 * nothing of KVM: its inputs are the memory, the e820 map and the config.
 */
#ifndef ISOLA_CORE_LOADER_H
#define ISOLA_CORE_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "core/config.h"
#include "lib/gmem.h"

/* The command line the guest boots with: cmdline less every "pci=off"
 * (isola's devices are virtio-pci; orchestrators written for Firecracker's
 * virtio-mmio add it).  malloc'd, NULL for none; *failed on no memory. */
char *loader_guest_cmdline(const char *cmdline, bool *failed);
/* Write the guest's first state into mem; *entry says where the boot vCPU
 * starts.  0 or -errno with one sentence in err (naming the file). */
int loader_load(struct gmem *mem, struct e820_table *e820, const struct vm_config *cfg,
		struct boot_entry *entry, char *err, size_t errlen);

#endif
