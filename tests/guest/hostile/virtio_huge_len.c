/* SPDX-License-Identifier: MIT */
/*
 * virtio_huge_len: lengths and addresses that overflow: a 0xffffffff-byte
 * data buffer in RAM, a buffer whose gpa + len wraps past 2^64, a header of
 * 0xffffffff bytes, and an indirect table of 0xfffffff0 bytes.  The device
 * must check `gpa + len` without overflow: NEEDS_RESET or a failed request.
 */
#include "virtio_hostile.h"

static enum vh_outcome huge_data(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_buf, 0xffffffffu, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome wrapping_data(void)
{
	vh_header(VIRTIO_BLK_T_OUT, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome huge_header(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 0xffffffffu, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome huge_indirect(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_buf, 0xfffffff0u, VIRTQ_DESC_F_INDIRECT, 0);
	return vh_kick(0);
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_huge_len");
	vh_attack("0xffffffff-byte data buffer refused", huge_data);
	vh_attack("buffer wrapping past 2^64 refused", wrapping_data);
	vh_attack("0xffffffff-byte header refused", huge_header);
	vh_attack("0xfffffff0-byte indirect table refused", huge_indirect);
	return 0;
}
