/* SPDX-License-Identifier: MIT */
/*
 * blk_rw: the first virtio-blk device (virtio 1.2 §5.2).  Checks capacity
 * against `sectors=`, GET_ID against `id=`; writes patterns (pattern.c) to
 * the first and last sectors and a few ranges between (multi-sector, split
 * over several descriptors, some through indirect tables), FLUSHes, reads
 * everything back; refuses I/O past the end; DISCARD and WRITE_ZEROES (when
 * offered) then reads back zeroes after WRITE_ZEROES.  Every region is
 * printed as `blk_rw: pattern sector=S count=C seed=X` / `blk_rw: zeroes
 * sector=S count=C` so the host can check the image afterwards.
 * Options: `poll` (no MSI-X: poll the used ring), `no_indirect`,
 * `discard_zeroes` (DISCARD must read back zeroes too).  PASS = status 1.
 */
#include "virtio.h"

#define BLK_FEATURES                                                                                \
	(VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |                       \
	 VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |                  \
	 VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_RO) |                           \
	 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define MAX_SECTORS 128
#define SEED_BASE 0x15013a0000000000ul

struct region {
	uint64_t sector;
	uint32_t count;
	unsigned segs;
	int indirect;
};

static struct virtio_dev disk;
static uint8_t *buf;

static int do_io(struct virtq *vq, int write, const struct region *r, uint64_t seed)
{
	uint64_t bytes = (uint64_t)r->count * VIRTIO_BLK_SECTOR;
	int st;
	long bad;

	if (write)
		pattern_fill(buf, bytes, r->sector * VIRTIO_BLK_SECTOR, seed);
	else
		pattern_memset(buf, bytes, 0xa5); /* a read that does nothing fails */
	st = virtio_blk_rw(vq, write, r->sector, buf, r->count, r->segs, r->indirect);
	if (!test_check(st == VIRTIO_BLK_S_OK, write ? "write" : "read",
			"sector %lu count %u segs %u%s: %s (%d)", r->sector, r->count, r->segs,
			r->indirect ? " indirect" : "", virtio_blk_status_name(st), st))
		return -1;
	if (write)
		return 0;
	bad = pattern_check(buf, bytes, r->sector * VIRTIO_BLK_SECTOR, seed);
	return test_check(bad < 0, "read back pattern", "sector %lu: first bad byte at +%ld",
			  r->sector, bad) ? 0 : -1;
}

static void check_zeroes(struct virtq *vq, const char *what, uint64_t sector, uint32_t count,
			 int required)
{
	long bad;
	int st;

	pattern_memset(buf, (uint64_t)count * VIRTIO_BLK_SECTOR, 0xa5);
	st = virtio_blk_rw(vq, 0, sector, buf, count, 2, 0);
	if (!test_check(st == VIRTIO_BLK_S_OK, "read after range op", "%s: %s", what,
			virtio_blk_status_name(st)))
		return;
	bad = pattern_check_zero(buf, (uint64_t)count * VIRTIO_BLK_SECTOR);
	if (required)
		test_check(bad < 0, what, "sector %lu: nonzero at +%ld", sector, bad);
	else
		console_printf("blk_rw: %s: reads back %s\n", what, bad < 0 ? "zeroes" : "old data");
}

static void range_ops(struct virtq *vq, uint64_t n, int discard_zeroes)
{
	struct region dr = {n / 8, 32, 2, 0}, zr = {3 * n / 4, 64, 4, 0};
	int st;

	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)) {
		console_printf("blk_rw: max_discard_sectors %u\n",
			       virtio_config_read32(&disk, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS));
		if (do_io(vq, 1, &dr, SEED_BASE + 100) == 0) {
			st = virtio_blk_range(vq, VIRTIO_BLK_T_DISCARD, dr.sector, dr.count, 0);
			test_check(st == VIRTIO_BLK_S_OK, "discard", "%s", virtio_blk_status_name(st));
			check_zeroes(vq, "discard", dr.sector, dr.count, discard_zeroes);
		}
	} else {
		console_printf("blk_rw: DISCARD not offered\n");
	}
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) {
		if (do_io(vq, 1, &zr, SEED_BASE + 101) == 0) {
			st = virtio_blk_range(vq, VIRTIO_BLK_T_WRITE_ZEROES, zr.sector, zr.count, 0);
			if (test_check(st == VIRTIO_BLK_S_OK, "write zeroes", "%s",
				       virtio_blk_status_name(st))) {
				check_zeroes(vq, "write zeroes reads back zeroes", zr.sector, zr.count, 1);
				console_printf("blk_rw: zeroes sector=%lu count=%u\n", zr.sector,
					       zr.count);
			}
		}
	} else {
		console_printf("blk_rw: WRITE_ZEROES not offered\n");
	}
}

static void out_of_range(struct virtq *vq, uint64_t n)
{
	int st = virtio_blk_rw(vq, 0, n, buf, 1, 1, 0);

	test_check(st == VIRTIO_BLK_S_IOERR, "read at sector == capacity fails", "%s",
		   virtio_blk_status_name(st));
	st = virtio_blk_rw(vq, 0, n - 1, buf, 2, 1, 0);
	test_check(st == VIRTIO_BLK_S_IOERR, "read straddling the end fails", "%s",
		   virtio_blk_status_name(st));
}

int guest_main(const struct boot_info *info)
{
	int use_msix = !cmdline_has(info->cmdline, "poll");
	int indirect_ok = !cmdline_has(info->cmdline, "no_indirect");
	uint64_t want_sectors = 0, n;
	char want_id[64], id[VIRTIO_BLK_ID_BYTES + 1];
	struct region regions[6];
	struct virtq *vq;
	int st;

	console_printf("isola blk_rw guest\n");
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	if (virtio_init(&disk, BLK_FEATURES, 1, 128, use_msix))
		test_abort("virtio-blk init", "see above");
	vq = &disk.vq[0];
	if (!(disk.features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)))
		indirect_ok = 0;
	buf = dma_alloc(MAX_SECTORS * VIRTIO_BLK_SECTOR, 4096);

	n = virtio_config_read64(&disk, VIRTIO_BLK_CFG_CAPACITY);
	console_printf("blk_rw: capacity %lu sectors, seg_max %u, queue size %u, %s\n", n,
		       virtio_config_read32(&disk, VIRTIO_BLK_CFG_SEG_MAX), vq->size,
		       use_msix ? "MSI-X" : "polling");
	if (cmdline_get_u64(info->cmdline, "sectors", &want_sectors) == 0)
		test_check(n == want_sectors, "capacity", "%lu sectors, want %lu", n, want_sectors);
	if (n < 1024)
		test_abort("capacity", "%lu sectors: the test needs at least 1024", n);
	test_check(!(disk.features & VIRTIO_BIT(VIRTIO_BLK_F_RO)), "device is writable",
		   "VIRTIO_BLK_F_RO offered");

	st = virtio_blk_get_id(vq, id);
	if (test_check(st == VIRTIO_BLK_S_OK, "GET_ID", "%s", virtio_blk_status_name(st))) {
		console_printf("blk_rw: id \"%s\"\n", id);
		if (cmdline_get(info->cmdline, "id", want_id, sizeof(want_id)) == 0)
			test_check(strncmp(id, want_id, VIRTIO_BLK_ID_BYTES) == 0, "GET_ID matches id=",
				   "got \"%s\", want \"%s\"", id, want_id);
	}

	regions[0] = (struct region){0, 1, 1, 0};
	regions[1] = (struct region){n - 1, 1, 1, 0};
	regions[2] = (struct region){n / 2, 8, 3, 0};
	regions[3] = (struct region){n / 4 + 3, 16, 4, indirect_ok};
	regions[4] = (struct region){n / 3, MAX_SECTORS, 8, indirect_ok};
	regions[5] = (struct region){n - 17, 16, 14, 0};
	for (unsigned i = 0; i < ARRAY_SIZE(regions); i++)
		if (do_io(vq, 1, &regions[i], SEED_BASE + i) == 0)
			console_printf("blk_rw: pattern sector=%lu count=%u seed=%lx\n",
				       regions[i].sector, regions[i].count, SEED_BASE + i);
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) {
		st = virtio_blk_flush(vq);
		test_check(st == VIRTIO_BLK_S_OK, "flush", "%s", virtio_blk_status_name(st));
	} else {
		console_printf("blk_rw: FLUSH not offered\n");
	}
	for (unsigned i = 0; i < ARRAY_SIZE(regions); i++)
		do_io(vq, 0, &regions[i], SEED_BASE + i);
	out_of_range(vq, n);
	range_ops(vq, n, cmdline_has(info->cmdline, "discard_zeroes"));
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH))
		virtio_blk_flush(vq);
	if (use_msix)
		test_check(virtq_wait_irqs(vq, 1, 1000000) > 0, "completions interrupt via MSI-X", "no interrupt in %u requests",
			   (unsigned)vq->avail_idx);
	test_check(!virtio_needs_reset(&disk), "device never needed a reset", "status %x",
		   virtio_status(&disk));
	return 0;
}
