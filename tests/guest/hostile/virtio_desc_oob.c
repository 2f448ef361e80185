/* SPDX-License-Identifier: MIT */
/*
 * virtio_desc_oob: descriptor indexes out of range: `next` of 0xffff, of
 * exactly the queue size, and inside an indirect table past its end.
 * Each breaks the virtqueue rules, so the back-end stops the ring and the
 * core sets DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2; docs/virtq.md): the guest
 * must see status bit 0x40 each time (`lenient`, for QEMU as the VMM: any
 * failure).
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

/* vh_attack, and the device must say NEEDS_RESET (not merely fail). */
static void attack_needs_reset(const char *what, enum vh_outcome (*fn)(void))
{
	enum vh_outcome o;

	vh_start();
	o = fn();
	vh_expect_failure(what, o);
	test_check(o == VH_NEEDS_RESET || vh_lenient, "device sets NEEDS_RESET",
		   "after %s: %s, status %x", what, vh_outcome_name(o), virtio_status(&vh_dev));
	vh_recover(what);
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_desc_oob");
	attack_needs_reset("next = 0xffff refused", next_ffff);
	attack_needs_reset("next = queue size refused", next_size);
	attack_needs_reset("indirect next past the table refused", indirect_next_past_end);
	return 0;
}
