/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the hostile virtio guests (virtio_*.c in this folder): set up
 * the first virtio-blk device, hand-build broken chains, classify what the
 * device did, and prove afterwards that it still works after a reset.
 *
 * What a hostile request may end in (design.md, "Processes and trust"): the
 * device reports NEEDS_RESET (status bit 64), or the request fails (a status
 * byte other than OK, or no completion within the bound).  A completion with
 * VIRTIO_BLK_S_OK is accepted only with `lenient` on the command line (QEMU
 * serves some of these requests, e.g. a non-power-of-two queue).  After every
 * attack the guest resets the device, sets it up again and reads a sector:
 * the device (and its server) survived.  PASS = status 1.
 * Header-only: every .c here becomes a guest.
 */
#ifndef GUEST_VIRTIO_HOSTILE_H
#define GUEST_VIRTIO_HOSTILE_H

#include "hostile.h"
#include "virtio.h"

#define VH_WAIT_US 2000000ull
#define VH_QUEUE_SIZE 64

enum vh_outcome { VH_COMPLETED_OK, VH_COMPLETED_ERROR, VH_NEEDS_RESET, VH_NO_COMPLETION };

static struct virtio_dev vh_dev;
static struct virtq *vh_vq;
static struct virtio_blk_req_hdr *vh_hdr;
static volatile uint8_t *vh_status;
static uint8_t *vh_buf; /* 64 KiB of RAM for data */
static int vh_lenient;

static inline const char *vh_outcome_name(enum vh_outcome o)
{
	static const char *const names[] = {"completed OK", "completed with an error",
					    "device needs reset", "no completion"};
	return names[o];
}

static inline void vh_init(const struct boot_info *info, const char *name)
{
	console_printf("isola hostile guest %s\n", name);
	dma_init(info);
	vh_lenient = cmdline_has(info->cmdline, "lenient");
	if (virtio_find(VIRTIO_ID_BLOCK, &vh_dev, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	vh_hdr = dma_alloc(sizeof(*vh_hdr), 16);
	vh_status = dma_alloc(16, 16);
	vh_buf = dma_alloc(65536, 4096);
}

/* A working device with one polled queue. */
static inline void vh_start(void)
{
	if (virtio_init(&vh_dev, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 1, VH_QUEUE_SIZE, 0))
		test_abort("virtio-blk init", "see above");
	vh_vq = &vh_dev.vq[0];
}

/* Descriptor i of the queue, by hand. */
static inline void vh_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vh_vq->desc[i].addr = addr;
	vh_vq->desc[i].len = len;
	vh_vq->desc[i].flags = flags;
	vh_vq->desc[i].next = next;
}

/* A read request header at vh_hdr, status byte reset. */
static inline void vh_header(uint32_t type, uint64_t sector)
{
	vh_hdr->type = type;
	vh_hdr->reserved = 0;
	vh_hdr->sector = sector;
	*vh_status = 0xee;
}

/* Wait for a used element or NEEDS_RESET. */
static inline enum vh_outcome vh_wait(uint64_t us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	for (;;) {
		if (virtio_needs_reset(&vh_dev))
			return VH_NEEDS_RESET;
		if (virtq_pending_used(vh_vq)) {
			vh_vq->last_used++;
			return *vh_status == VIRTIO_BLK_S_OK ? VH_COMPLETED_OK : VH_COMPLETED_ERROR;
		}
		if (stopwatch_us(&sw) >= us)
			return VH_NO_COMPLETION;
	}
}

/* Publish head, kick, and judge the outcome. */
static inline enum vh_outcome vh_kick(uint16_t head)
{
	virtq_publish(vh_vq, head);
	virtq_notify(vh_vq);
	return vh_wait(VH_WAIT_US);
}

static inline void vh_expect_failure(const char *what, enum vh_outcome o)
{
	console_printf("%s: %s (status %x, used len %u)\n", what, vh_outcome_name(o),
		       virtio_status(&vh_dev), vh_vq->used->ring[(uint16_t)(vh_vq->last_used - 1) % vh_vq->size].len);
	test_check(o != VH_COMPLETED_OK || vh_lenient, what, "the device served it: %s",
		   vh_outcome_name(o));
}

/* Reset, set up again, read sector 0 and the last sector: the device works. */
static inline void vh_recover(const char *after)
{
	uint64_t n;
	int st;

	if (!test_check(virtio_reset(&vh_dev) == 0, "reset completes", "after %s: status %x",
			after, virtio_status(&vh_dev)))
		test_abort("device", "stuck after %s", after);
	vh_start();
	n = virtio_config_read64(&vh_dev, VIRTIO_BLK_CFG_CAPACITY);
	st = virtio_blk_rw(vh_vq, 0, 0, vh_buf, 8, 2, 0);
	if (st == VIRTIO_BLK_S_OK && n)
		st = virtio_blk_rw(vh_vq, 0, n - 1, vh_buf, 1, 1, 0);
	test_check(st == VIRTIO_BLK_S_OK && !virtio_needs_reset(&vh_dev), "device works again",
		   "after %s: %s, status %x", after, virtio_blk_status_name(st),
		   virtio_status(&vh_dev));
}

/* Run one attack: fn builds and kicks, returns the outcome. */
static inline void vh_attack(const char *what, enum vh_outcome (*fn)(void))
{
	vh_start();
	vh_expect_failure(what, fn());
	vh_recover(what);
}

#endif
