/* SPDX-License-Identifier: MIT */
/*
 * virtio_desc_oob: descriptor indexes out of range: `next` of 0xffff, of
 * exactly the queue size, and inside an indirect table past its end.
 * NEEDS_RESET or a failed request each time.
 */
#include "virtio_hostile.h"

static enum vh_outcome next_to(uint16_t next)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, next);
	return vh_kick(0);
}

static enum vh_outcome next_ffff(void)
{
	return next_to(0xffff);
}

static enum vh_outcome next_size(void)
{
	return next_to(vh_vq->size);
}

static enum vh_outcome indirect_next_past_end(void)
{
	struct virtq_desc *t = (struct virtq_desc *)(vh_buf + 32768);

	vh_header(VIRTIO_BLK_T_IN, 0);
	t[0] = (struct virtq_desc){(uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1};
	t[1] = (struct virtq_desc){(uint64_t)vh_buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3};
	t[2] = (struct virtq_desc){(uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0};
	vh_desc(0, (uint64_t)t, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_desc_oob");
	vh_attack("next = 0xffff refused", next_ffff);
	vh_attack("next = queue size refused", next_size);
	vh_attack("indirect next past the table refused", indirect_next_past_end);
	return 0;
}
