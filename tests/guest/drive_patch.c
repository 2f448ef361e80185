/* SPDX-License-Identifier: MIT */
/*
 * drive_patch: the first virtio-blk device has its image changed under it
 * (PATCH /drives/{id} after start; tests/system/drive_patch.sh).  Reads the
 * marker `old=TEXT` in sector 0 and the capacity `old_sectors=`, prints
 * `drive_patch: ready`, then keeps `depth=` (default 8) writes in flight,
 * one region of 8 sectors (two data descriptors) per write, region i at
 * sector 64 + 8 i with pattern seed SEED + i, from the moment the host
 * writes "go" into sector 1 until the configuration change interrupt comes
 * (virtio 1.2 §4.1.5.4), and `after=` more writes past it.  Then: the
 * capacity is `new_sectors=`; sector 0 holds `new=`; every write completed OK; reading each region
 * back (from the new image) gives zeroes for writes 0..k-1 (they went to the old image) and the
 * whole pattern for k..n-1, with 0 < k < n: every write landed whole on exactly one image, in ring
 * order.  Prints `drive_patch: switch at write K of N` for the host, which checks the old image
 * holds 0..k-1 whole, and waits for "end" in the new image's sector 2. PASS = status 1.
 */
#include "virtio.h"

#define BLK_FEATURES                                                                               \
	(VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |                       \
	 VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE))
#define REGION_SECTORS 8
#define REGION_BYTES (REGION_SECTORS * VIRTIO_BLK_SECTOR)
#define FIRST_REGION_SECTOR 64
#define SEED 0xd41fe0a700000000ul
#define MAX_DEPTH 16
#define WAIT_US 30000000ull /* for the PATCH: the host sends it on "ready" */

struct slot {
	struct virtio_blk_req_hdr hdr;
	uint8_t status;
	int busy;
	unsigned write; /* which write it carries */
	uint8_t *data;
};

static struct virtio_dev disk;
static struct slot *slots;
static int head_slot[VIRTQ_MAX_SIZE];
static unsigned failed_writes;

static uint64_t region_sector(unsigned i)
{
	return FIRST_REGION_SECTOR + (uint64_t)i * REGION_SECTORS;
}

static void submit_write(struct virtq *vq, unsigned s, unsigned i)
{
	struct slot *sl = &slots[s];
	struct virtq_buf bufs[4];
	int head;

	pattern_fill(sl->data, REGION_BYTES, region_sector(i) * VIRTIO_BLK_SECTOR, SEED + i);
	sl->hdr = (struct virtio_blk_req_hdr){VIRTIO_BLK_T_OUT, 0, region_sector(i)};
	sl->status = 0xee;
	bufs[0] = (struct virtq_buf){(uint64_t)&sl->hdr, sizeof(sl->hdr), 0};
	bufs[1] = (struct virtq_buf){(uint64_t)sl->data, REGION_BYTES / 2, 0};
	bufs[2] = (struct virtq_buf){(uint64_t)sl->data + REGION_BYTES / 2, REGION_BYTES / 2, 0};
	bufs[3] = (struct virtq_buf){(uint64_t)&sl->status, 1, 1};
	head = virtq_submit(vq, bufs, 4, 0);
	if (head < 0)
		test_abort("submit", "ring full with %u slots", s);
	head_slot[head] = (int)s;
	sl->busy = 1;
	sl->write = i;
	virtq_notify(vq);
}

/* Take one completion; the slot it frees, or -1 on timeout. */
static int reap_one(struct virtq *vq)
{
	int head = virtq_wait_used(vq, NULL, VIRTIO_BLK_TIMEOUT_US);
	struct slot *sl;

	if (head < 0)
		return -1;
	sl = &slots[head_slot[head]];
	if (sl->status != VIRTIO_BLK_S_OK && failed_writes++ < 4)
		test_fail("write", "write %u at sector %lu: %s", sl->write,
			  region_sector(sl->write), virtio_blk_status_name(sl->status));
	sl->busy = 0;
	return head_slot[head];
}

static int read_marker(struct virtq *vq, uint8_t *buf, const char *want, const char *what)
{
	int st;

	pattern_memset(buf, VIRTIO_BLK_SECTOR, 0xa5);
	st = virtio_blk_rw(vq, 0, 0, buf, 1, 1, 0);
	if (!test_check(st == VIRTIO_BLK_S_OK, what, "read sector 0: %s",
			virtio_blk_status_name(st)))
		return -1;
	return test_check(strncmp((const char *)buf, want, strlen(want)) == 0, what,
			  "sector 0 holds \"%.24s\", want \"%s\"", (const char *)buf, want)
		   ? 0
		   : -1;
}

int guest_main(const struct boot_info *info)
{
	uint64_t old_sectors = 0, new_sectors = 0, depth = 8, after = 64, n_max, capacity;
	char old_marker[32], new_marker[32];
	unsigned n = 0, k, zero_regions = 0, bad = 0, config_irqs0;
	uint8_t *buf;
	struct virtq *vq;
	struct stopwatch sw;
	uint64_t stop_at = 0;

	console_printf("isola drive_patch guest\n");
	if (cmdline_get(info->cmdline, "old", old_marker, sizeof(old_marker)) ||
	    cmdline_get(info->cmdline, "new", new_marker, sizeof(new_marker)) ||
	    cmdline_get_u64(info->cmdline, "old_sectors", &old_sectors) ||
	    cmdline_get_u64(info->cmdline, "new_sectors", &new_sectors))
		test_abort("command line", "needs old= new= old_sectors= new_sectors=");
	cmdline_get_u64(info->cmdline, "depth", &depth);
	cmdline_get_u64(info->cmdline, "after", &after);
	if (depth < 1 || depth > MAX_DEPTH)
		test_abort("depth", "1..%u", MAX_DEPTH);
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	if (virtio_init(&disk, BLK_FEATURES, 1, 64, 1))
		test_abort("virtio-blk init", "see above");
	vq = &disk.vq[0];
	buf = dma_alloc(REGION_BYTES, 4096);
	slots = dma_alloc(sizeof(*slots) * MAX_DEPTH, 64);
	for (unsigned s = 0; s < depth; s++)
		slots[s].data = dma_alloc(REGION_BYTES, 4096);

	/* Before: the old image. */
	capacity = virtio_config_read64(&disk, VIRTIO_BLK_CFG_CAPACITY);
	test_check(capacity == old_sectors, "old capacity", "%lu sectors, want %lu", capacity,
		   old_sectors);
	if (read_marker(vq, buf, old_marker, "old image's marker before the PATCH"))
		return 1;
	n_max = ((old_sectors < new_sectors ? old_sectors : new_sectors) - FIRST_REGION_SECTOR) /
		REGION_SECTORS;
	config_irqs0 = disk.config_irqs;
	console_printf("drive_patch: ready capacity=%lu depth=%lu\n", capacity, depth);
	/* The host tries its refusals first, then writes `go` into sector 1
	 * and sends the PATCH at once: from then on the writes go flat out,
	 * so the old server has requests in flight when it is stopped. */
	stopwatch_start(&sw);
	for (;;) {
		int st = virtio_blk_rw(vq, 0, 1, buf, 1, 1, 0);

		if (st == VIRTIO_BLK_S_OK && !strncmp((const char *)buf, "go", 2))
			break;
		if (disk.config_irqs != config_irqs0)
			test_abort("go", "the config changed before the host said go");
		if (stopwatch_us(&sw) > WAIT_US)
			test_abort("go", "the host did not write \"go\" in %llu us", WAIT_US);
		virtio_delay_us(2000);
	}

	/* During: writes in flight until the config change interrupt and
	 * `after` writes past it. */
	stopwatch_start(&sw);
	for (unsigned s = 0; s < depth && n < n_max; s++)
		submit_write(vq, s, n++);
	for (;;) {
		int s = reap_one(vq);

		if (s < 0)
			test_abort("write", "no completion in %llu us", VIRTIO_BLK_TIMEOUT_US);
		if (!stop_at && disk.config_irqs != config_irqs0) {
			stop_at = n + after;
			console_printf("drive_patch: config change interrupt after %u writes\n", n);
		}
		if ((stop_at && n >= stop_at) || n >= n_max)
			break;
		if (!stop_at && stopwatch_us(&sw) > WAIT_US)
			test_abort("config change interrupt", "none in %llu us (%u writes)",
				   WAIT_US, n);
		submit_write(vq, (unsigned)s, n++);
	}
	for (unsigned s = 0; s < depth; s++)
		while (slots[s].busy)
			if (reap_one(vq) < 0)
				test_abort("write", "no completion while draining");
	test_check(stop_at != 0, "config change interrupt", "none after %u writes", n);
	test_check(failed_writes == 0, "every write completed OK", "%u failed", failed_writes);

	/* After: the new image. */
	capacity = virtio_config_read64(&disk, VIRTIO_BLK_CFG_CAPACITY);
	test_check(capacity == new_sectors, "new capacity after the interrupt",
		   "%lu sectors, want %lu", capacity, new_sectors);
	read_marker(vq, buf, new_marker, "new image's marker after the PATCH");
	for (unsigned i = 0, k_seen = 0; i < n; i++) {
		int st;

		pattern_memset(buf, REGION_BYTES, 0xa5);
		st = virtio_blk_rw(vq, 0, region_sector(i), buf, REGION_SECTORS, 2, 0);
		if (st != VIRTIO_BLK_S_OK) {
			if (bad++ < 4)
				test_fail("read back", "region %u: %s", i,
					  virtio_blk_status_name(st));
			continue;
		}
		if (pattern_check_zero(buf, REGION_BYTES) < 0) {
			/* zeroes: written to the old image; only before the switch */
			zero_regions++;
			if (k_seen && bad++ < 4)
				test_fail("ring order",
					  "write %u is on the old image after a "
					  "write on the new one",
					  i);
			continue;
		}
		k_seen = 1;
		if (pattern_check(buf, REGION_BYTES, region_sector(i) * VIRTIO_BLK_SECTOR,
				  SEED + i) >= 0 &&
		    bad++ < 4)
			test_fail("whole write on the new image",
				  "region %u is neither the write's "
				  "pattern nor zeroes",
				  i);
	}
	k = zero_regions;
	console_printf("drive_patch: switch at write %u of %u\n", k, n);
	test_check(k > 0 && k < n, "writes on both images", "%u of %u on the old one", k, n);
	test_check(bad == 0, "every write whole on one image, in ring order", "%u bad regions",
		   bad);
	test_check(!virtio_needs_reset(&disk), "device never needed a reset", "status %x",
		   virtio_status(&disk));
	/* Stay until the host has looked at the running VM (it writes "end"
	 * into the new image's sector 2). */
	console_printf("drive_patch: done\n");
	stopwatch_start(&sw);
	for (;;) {
		int st = virtio_blk_rw(vq, 0, 2, buf, 1, 1, 0);

		if (st == VIRTIO_BLK_S_OK && !strncmp((const char *)buf, "end", 3))
			break;
		if (stopwatch_us(&sw) > WAIT_US)
			test_abort("end", "the host did not write \"end\" in %llu us", WAIT_US);
		virtio_delay_us(2000);
	}
	return 0;
}
