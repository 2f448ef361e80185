/* SPDX-License-Identifier: MIT */
/*
 * virtio_avail_jump: avail->idx moves by 50000 (more than the queue size:
 * §2.7.13.3, the driver can only have `size` buffers outstanding), then by
 * exactly size + 1, and an avail ring entry names a head >= queue size.
 * NEEDS_RESET or nothing served; then the device works after a reset.
 */
#include "virtio_hostile.h"

static enum vh_outcome jump_by(uint16_t by)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < vh_vq->size; i++)
		vh_vq->avail->ring[i] = 0;
	vh_vq->avail_idx = (uint16_t)(vh_vq->avail_idx + by);
	vh_vq->avail->idx = vh_vq->avail_idx;
	virtq_notify(vh_vq);
	return vh_wait(VH_WAIT_US);
}

static enum vh_outcome jump_50000(void)
{
	return jump_by(50000);
}

static enum vh_outcome jump_size_plus_1(void)
{
	return jump_by((uint16_t)(vh_vq->size + 1));
}

static enum vh_outcome head_out_of_range(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	return vh_kick((uint16_t)(vh_vq->size + 5));
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_avail_jump");
	vh_attack("avail->idx jump by 50000 refused", jump_50000);
	vh_attack("avail->idx jump by size + 1 refused", jump_size_plus_1);
	vh_attack("avail ring head >= queue size refused", head_out_of_range);
	return 0;
}
