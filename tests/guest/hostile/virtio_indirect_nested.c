/* SPDX-License-Identifier: MIT */
/*
 * virtio_indirect_nested: broken indirect descriptors (§2.7.5.3.1): an
 * indirect table holding another INDIRECT descriptor, INDIRECT together
 * with NEXT, a table length that is not a multiple of 16, an empty table,
 * a table in MMIO, and a table of 4096 entries (a chain longer than the
 * queue).  NEEDS_RESET or a failed request each time.
 */
#include "virtio_hostile.h"

static struct virtq_desc *table(void)
{
	return (struct virtq_desc *)(vh_buf + 32768);
}

static void good_table(void)
{
	struct virtq_desc *t = table();

	vh_header(VIRTIO_BLK_T_IN, 0);
	t[0] = (struct virtq_desc){(uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1};
	t[1] = (struct virtq_desc){(uint64_t)vh_buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
	t[2] = (struct virtq_desc){(uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0};
}

static enum vh_outcome nested(void)
{
	struct virtq_desc *t = table();

	good_table();
	t[3] = t[0];
	t[1] = (struct virtq_desc){(uint64_t)&t[3], 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 2};
	vh_desc(0, (uint64_t)t, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

static enum vh_outcome with_next(void)
{
	good_table();
	vh_desc(0, (uint64_t)table(), 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome odd_length(void)
{
	good_table();
	vh_desc(0, (uint64_t)table(), 3 * 16 + 7, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

static enum vh_outcome empty(void)
{
	good_table();
	vh_desc(0, (uint64_t)table(), 0, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

static enum vh_outcome in_mmio(void)
{
	good_table();
	vh_desc(0, 0xfec00000ull, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

/* 2048 descriptors of 16 bytes each, all chained: longer than any queue. */
static enum vh_outcome too_long(void)
{
	struct virtq_desc *t = (struct virtq_desc *)vh_buf;

	vh_header(VIRTIO_BLK_T_IN, 0);
	t[0] = (struct virtq_desc){(uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1};
	for (unsigned i = 1; i < 4095; i++)
		t[i] = (struct virtq_desc){(uint64_t)vh_buf + 65536 - 512, 1,
					   VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1)};
	t[4095] = (struct virtq_desc){(uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0};
	vh_desc(0, (uint64_t)t, 4096 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_indirect_nested");
	vh_attack("indirect inside indirect refused", nested);
	vh_attack("INDIRECT with NEXT refused", with_next);
	vh_attack("indirect table length not a multiple of 16 refused", odd_length);
	vh_attack("empty indirect table refused", empty);
	vh_attack("indirect table in MMIO refused", in_mmio);
	vh_attack("indirect chain of 4096 descriptors refused", too_long);
	return 0;
}
