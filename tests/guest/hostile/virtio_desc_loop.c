/* SPDX-License-Identifier: MIT */
/*
 * virtio_desc_loop: descriptor chains that never end (virtio 1.2 §2.7.5.3.1:
 * the device must not loop): 0 -> 1 -> 2 -> 1 ..., a descriptor that links
 * to itself, and the same loop inside an indirect table.  Each must end in
 * NEEDS_RESET or a failed request; then the device works after a reset.
 */
#include "virtio_hostile.h"

#define F_NEXT VIRTQ_DESC_F_NEXT
#define F_WRITE VIRTQ_DESC_F_WRITE

static enum vh_outcome loop3(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, F_WRITE | F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_buf + 512, 512, F_WRITE | F_NEXT, 1);
	return vh_kick(0);
}

static enum vh_outcome self_loop(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, F_NEXT, 0);
	return vh_kick(0);
}

static enum vh_outcome indirect_loop(void)
{
	struct virtq_desc *t = (struct virtq_desc *)(vh_buf + 32768);

	vh_header(VIRTIO_BLK_T_IN, 0);
	t[0] = (struct virtq_desc){(uint64_t)vh_hdr, 16, F_NEXT, 1};
	t[1] = (struct virtq_desc){(uint64_t)vh_buf, 512, F_WRITE | F_NEXT, 2};
	t[2] = (struct virtq_desc){(uint64_t)vh_status, 1, F_WRITE | F_NEXT, 0};
	vh_desc(0, (uint64_t)t, 3 * sizeof(*t), VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_desc_loop");
	vh_attack("chain 0->1->2->1 refused", loop3);
	vh_attack("descriptor linked to itself refused", self_loop);
	vh_attack("loop inside an indirect table refused", indirect_loop);
	return 0;
}
