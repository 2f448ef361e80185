/* SPDX-License-Identifier: MIT */
/*
 * virtio_qsize_npot: queue sizes a split ring cannot have (§2.7: a power of
 * two, at most the device's maximum) at DRIVER_OK: 100, 0, max * 2, and
 * rings misaligned (descriptor table at +8).  The device must refuse DRIVER_OK
 * or report NEEDS_RESET (or, `lenient`, serve correctly); a request is then
 * tried and must not corrupt anything; the device works after a reset.
 */
#include "virtio_hostile.h"

static int go_live(unsigned size, uint64_t desc_shift)
{
	uint8_t status;
	uint16_t read_back;

	if (virtio_reset(&vh_dev))
		test_abort("reset", "status %x", virtio_status(&vh_dev));
	virtio_set_status(&vh_dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	if (virtio_negotiate(&vh_dev, 0))
		test_abort("features", "see above");
	if (virtio_setup_queue_rings(&vh_dev, 0, size, 1, 0))
		test_abort("queue", "see above");
	vh_vq = &vh_dev.vq[0];
	if (desc_shift)
		virtio_common_write32(&vh_dev, VIRTIO_COMMON_Q_DESC,
				      (uint32_t)((uint64_t)vh_vq->desc + desc_shift));
	read_back = virtio_common_read16(&vh_dev, VIRTIO_COMMON_Q_SIZE);
	virtio_common_write16(&vh_dev, VIRTIO_COMMON_Q_ENABLE, 1);
	virtio_set_status(&vh_dev, virtio_status(&vh_dev) | VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(&vh_dev);
	console_printf("queue size %u (read back %u), desc +%lu: status %x after DRIVER_OK\n", size,
		       read_back, desc_shift, status);
	/* A device that keeps its own size refused ours (the ring we built
	 * is then the wrong shape: do not use it). */
	return (status & VIRTIO_STATUS_NEEDS_RESET) || !(status & VIRTIO_STATUS_DRIVER_OK) ||
	       read_back != size;
}

static void attempt(const char *what, unsigned size, uint64_t desc_shift)
{
	if (go_live(size, desc_shift)) {
		test_pass("%s: refused at queue setup or DRIVER_OK", what);
	} else if (size == 0) {
		test_check(vh_lenient, what, "DRIVER_OK accepted with a 0-entry queue");
	} else {
		vh_header(VIRTIO_BLK_T_IN, 0);
		vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
		vh_desc(1, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
		vh_expect_failure(what, vh_kick(0));
	}
	vh_recover(what);
}

int guest_main(const struct boot_info *info)
{
	unsigned max;

	vh_init(info, "virtio_qsize_npot");
	virtio_common_write16(&vh_dev, VIRTIO_COMMON_Q_SELECT, 0);
	max = virtio_common_read16(&vh_dev, VIRTIO_COMMON_Q_SIZE);
	attempt("queue size 100", 100, 0);
	attempt("queue size 0", 0, 0);
	if (max * 2 <= 0x8000)
		attempt("queue size twice the maximum", max * 2, 0);
	attempt("descriptor table misaligned", 64, 8);
	return 0;
}
