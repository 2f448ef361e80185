/* SPDX-License-Identifier: MIT */
/*
 * The PC: a KVM VM (core/vm.h) with the board's platform devices on its
 * buses, the guest loaded (core/loader.h), the device set's virtio devices
 * placed and plugged (core/device_set.h), and its vCPUs.  main creates and
 * destroys VMs through here; a reboot is board_destroy + board_create on
 * the same RAM and device set.
 */
#ifndef ISOLA_CORE_BOARD_H
#define ISOLA_CORE_BOARD_H

#include <stddef.h>

#include "core/config.h"
#include "core/device_set.h"
#include "core/vm.h"
#include "lib/gmem.h"

/* The VM, the board, the guest loaded and the vCPUs; the devices come with
 * board_attach_devices, so the vCPU threads can start meanwhile (held:
 * vm_hold_vcpus).  0 or -errno with one sentence in err; board_destroy
 * frees a partly made one. */
int board_create(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
		 struct device_set *devices, int console_out_fd, char *err, size_t errlen);
/* board_create for a restore (core/snapshot.h): the VM on ram (mapped
 * from the memory file), the board, the vCPUs, and the state of img set
 * back into them; nothing is loaded.  0 or -errno with a sentence. */
struct snapshot_image;
int board_restore(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
		  struct device_set *devices, int console_out_fd, const struct snapshot_image *img,
		  char *err, size_t errlen);
/* Create the device set's front-ends in the VM: each negotiates with its
 * back-end and is placed and plugged.  0 or -errno with a sentence. */
int board_attach_devices(struct vm *vm, char *err, size_t errlen);
/* Join the vCPUs, detach the devices (their back-ends stay in the set),
 * free the board and the VM. */
void board_destroy(struct vm *vm);

#endif
