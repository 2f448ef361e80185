/* SPDX-License-Identifier: MIT */
/*
 * virtio_blk_malformed: well-formed chains carrying bad virtio-blk requests
 * (§5.2.6): a header shorter than 16 bytes, a header the device may write,
 * a read-only status byte, no data and no status, an unknown request type,
 * a sector range past the end and one whose end wraps past 2^64, a write
 * whose data is device-writable, a data length not a multiple of 512.
 * Each must fail (IOERR/UNSUPP, NEEDS_RESET or no completion).
 */
#include "virtio_hostile.h"

#define F_N VIRTQ_DESC_F_NEXT
#define F_W VIRTQ_DESC_F_WRITE

static enum vh_outcome short_header(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 8, F_N, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, F_W | F_N, 2);
	vh_desc(2, (uint64_t)vh_status, 1, F_W, 0);
	return vh_kick(0);
}

static enum vh_outcome writable_header(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, F_W | F_N, 1);
	vh_desc(1, (uint64_t)vh_status, 1, F_W, 0);
	return vh_kick(0);
}

static enum vh_outcome readonly_status(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, F_N, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, F_W | F_N, 2);
	vh_desc(2, (uint64_t)vh_status, 1, 0, 0);
	return vh_kick(0);
}

static enum vh_outcome header_only(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, 0, 0);
	return vh_kick(0);
}

static enum vh_outcome request(uint32_t type, uint64_t sector, uint32_t len, uint16_t data_flags)
{
	vh_header(type, sector);
	vh_desc(0, (uint64_t)vh_hdr, 16, F_N, 1);
	vh_desc(1, (uint64_t)vh_buf, len, (uint16_t)(data_flags | F_N), 2);
	vh_desc(2, (uint64_t)vh_status, 1, F_W, 0);
	return vh_kick(0);
}

static enum vh_outcome unknown_type(void) { return request(0x99, 0, 512, F_W); }
static enum vh_outcome past_end(void) { return request(VIRTIO_BLK_T_IN, 1ull << 40, 512, F_W); }
static enum vh_outcome wraps(void) { return request(VIRTIO_BLK_T_OUT, ~0ull - 1, 4096, 0); }
static enum vh_outcome write_writable(void) { return request(VIRTIO_BLK_T_OUT, 0, 512, F_W); }
static enum vh_outcome odd_length(void) { return request(VIRTIO_BLK_T_IN, 0, 511, F_W); }

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_blk_malformed");
	vh_attack("8-byte header refused", short_header);
	vh_attack("device-writable header refused", writable_header);
	vh_attack("read-only status byte refused", readonly_status);
	vh_attack("header without status refused", header_only);
	vh_attack("unknown request type refused", unknown_type);
	vh_attack("read at sector 2^40 refused", past_end);
	vh_attack("write wrapping past sector 2^64 refused", wraps);
	vh_attack("write with device-writable data refused", write_writable);
	vh_attack("read of 511 bytes refused", odd_length);
	return 0;
}
