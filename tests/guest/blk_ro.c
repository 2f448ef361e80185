/* SPDX-License-Identifier: MIT */
/*
 * blk_ro: the first virtio-blk device is read-only (virtio 1.2 §5.2.3:
 * VIRTIO_BLK_F_RO offered).  Reads of the first and last sectors work; a
 * write (plain and indirect) completes with VIRTIO_BLK_S_IOERR and the data
 * on the disk is unchanged; WRITE_ZEROES, if offered, fails too; DISCARD
 * must leave the data alone.
 * `poll`: no MSI-X.  PASS = status 1.
 */
#include "virtio.h"

#define BLK_FEATURES                                                                                \
	(VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |                             \
	 VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |                  \
	 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))

static struct virtio_dev disk;

int guest_main(const struct boot_info *info)
{
	uint8_t *before, *buf;
	struct virtq *vq;
	uint64_t n;
	int st;

	console_printf("isola blk_ro guest\n");
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	if (virtio_init(&disk, BLK_FEATURES, 1, 64, !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-blk init", "see above");
	vq = &disk.vq[0];
	n = virtio_config_read64(&disk, VIRTIO_BLK_CFG_CAPACITY);
	console_printf("blk_ro: capacity %lu sectors\n", n);
	test_check(disk.features & VIRTIO_BIT(VIRTIO_BLK_F_RO), "VIRTIO_BLK_F_RO offered",
		   "features %lx", disk.features);
	before = dma_alloc(8 * VIRTIO_BLK_SECTOR, 4096);
	buf = dma_alloc(8 * VIRTIO_BLK_SECTOR, 4096);

	st = virtio_blk_rw(vq, 0, 0, before, 8, 2, 0);
	test_check(st == VIRTIO_BLK_S_OK, "read first sectors", "%s", virtio_blk_status_name(st));
	st = virtio_blk_rw(vq, 0, n - 1, buf, 1, 1, 0);
	test_check(st == VIRTIO_BLK_S_OK, "read last sector", "%s", virtio_blk_status_name(st));

	pattern_fill(buf, 8 * VIRTIO_BLK_SECTOR, 0, 0x5eed);
	st = virtio_blk_rw(vq, 1, 0, buf, 8, 2, 0);
	test_check(st == VIRTIO_BLK_S_IOERR, "write refused with IOERR", "%s (%d)",
		   virtio_blk_status_name(st), st);
	if (disk.features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) {
		st = virtio_blk_rw(vq, 1, 0, buf, 8, 4, 1);
		test_check(st == VIRTIO_BLK_S_IOERR, "indirect write refused with IOERR", "%s (%d)",
			   virtio_blk_status_name(st), st);
	}
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) {
		st = virtio_blk_range(vq, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0);
		test_check(st != VIRTIO_BLK_S_OK && st >= 0, "write zeroes refused", "%s",
			   virtio_blk_status_name(st));
	}
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)) {
		/* Discard is a hint (§5.2.6.2): OK that changes nothing is fine
		 * too; the data check below catches a discard that went through. */
		st = virtio_blk_range(vq, VIRTIO_BLK_T_DISCARD, 0, 8, 0);
		test_check(st >= 0, "discard completes", "%s", virtio_blk_status_name(st));
		console_printf("blk_ro: discard: %s\n", virtio_blk_status_name(st));
	}
	if (disk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) {
		st = virtio_blk_flush(vq);
		console_printf("blk_ro: flush: %s\n", virtio_blk_status_name(st));
	}
	pattern_memset(buf, 8 * VIRTIO_BLK_SECTOR, 0xa5);
	st = virtio_blk_rw(vq, 0, 0, buf, 8, 1, 0);
	test_check(st == VIRTIO_BLK_S_OK && memcmp(before, buf, 8 * VIRTIO_BLK_SECTOR) == 0,
		   "data unchanged after refused writes", "%s or data differs",
		   virtio_blk_status_name(st));
	test_check(!virtio_needs_reset(&disk), "device never needed a reset", "status %x",
		   virtio_status(&disk));
	return 0;
}
