/* SPDX-License-Identifier: MIT */
/*
 * virtio_reset_inflight: fill the queue with 64 KiB reads and writes, kick,
 * and reset the device at once.  Once device_status reads back 0 the device
 * must not touch the old rings or buffers (§2.4: the driver may reuse that
 * memory): used->idx and a canary in every read buffer stay unchanged for
 * 500 ms.  Then the device works after setup; done twice.
 */
#include "virtio_hostile.h"

#define REQS 32
#define REQ_SECTORS 16

static uint8_t *bufs;
static struct virtio_blk_req_hdr *hdrs;
static uint8_t *stats;

static void attack(unsigned round)
{
	struct virtq_buf b[3];
	uint16_t used_before;
	unsigned changed = 0;
	struct stopwatch sw;

	vh_start();
	for (unsigned i = 0; i < REQS; i++) {
		hdrs[i] = (struct virtio_blk_req_hdr){i & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 0,
						      1024 + i * REQ_SECTORS};
		b[0] = (struct virtq_buf){(uint64_t)&hdrs[i], 16, 0};
		b[1] = (struct virtq_buf){(uint64_t)bufs + i * REQ_SECTORS * 512, REQ_SECTORS * 512,
					  !(i & 1)};
		b[2] = (struct virtq_buf){(uint64_t)&stats[i], 1, 1};
		if (virtq_submit(vh_vq, b, 3, 0) < 0)
			break;
	}
	virtq_notify(vh_vq);
	if (virtio_reset(&vh_dev))
		test_abort("reset during I/O", "status still %x", virtio_status(&vh_dev));
	used_before = vh_vq->used->idx;
	/* Canary every read buffer the device has not answered. */
	for (unsigned i = 0; i < REQS; i += 2)
		*(volatile uint64_t *)(bufs + i * REQ_SECTORS * 512) = 0xc0ffee00ull + i;
	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < 500000)
		;
	for (unsigned i = 0; i < REQS; i += 2)
		changed += *(volatile uint64_t *)(bufs + i * REQ_SECTORS * 512) != 0xc0ffee00ull + i;
	console_printf("round %u: %u of %u completed before the reset finished\n", round,
		       used_before, REQS);
	test_check(vh_vq->used->idx == used_before, "used ring untouched after reset",
		   "used->idx %u -> %u", used_before, vh_vq->used->idx);
	test_check(changed == 0, "buffers untouched after reset", "%u read buffers written",
		   changed);
	vh_recover("reset during I/O");
}

int guest_main(const struct boot_info *info)
{
	vh_init(info, "virtio_reset_inflight");
	bufs = dma_alloc(REQS * REQ_SECTORS * 512, 4096);
	hdrs = dma_alloc(REQS * sizeof(*hdrs), 16);
	stats = dma_alloc(REQS, 16);
	attack(1);
	attack(2);
	return 0;
}
