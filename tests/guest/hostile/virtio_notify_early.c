/* SPDX-License-Identifier: MIT */
/*
 * virtio_notify_early: a request on the avail ring and a kick before
 * FEATURES_OK and before DRIVER_OK (§2.1.2 / §3.1.1: the device must not
 * use buffers before DRIVER_OK), kicks for queues that do not exist (7,
 * 0xffff) and of every width at every notify offset.  Nothing may be served
 * before DRIVER_OK (`lenient` allows it); afterwards a kick serves it (or
 * the device needs a reset), and the device works after a reset.
 */
#include "virtio_hostile.h"

int guest_main(const struct boot_info *info)
{
	enum vh_outcome o;
	int served;

	vh_init(info, "virtio_notify_early");
	if (virtio_reset(&vh_dev))
		test_abort("reset", "status %x", virtio_status(&vh_dev));
	virtio_set_status(&vh_dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* Queue set up before FEATURES_OK: the ring exists, the device is not live. */
	if (virtio_setup_queue(&vh_dev, 0, VH_QUEUE_SIZE, 0, 0))
		test_abort("queue", "see above");
	vh_vq = &vh_dev.vq[0];
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	o = vh_kick(0);
	console_printf("kick before FEATURES_OK: %s\n", vh_outcome_name(o));
	test_check(o != VH_COMPLETED_OK || vh_lenient, "nothing served before FEATURES_OK", "%s",
		   vh_outcome_name(o));
	served = o != VH_NO_COMPLETION;
	for (unsigned i = 0; i < 64; i += 1) {
		mmio_write8(vh_dev.notify + i, 0);
		mmio_write16(vh_dev.notify + (i & ~1u), 7);
		mmio_write32(vh_dev.notify + (i & ~3u), 0xffffffffu);
	}
	mmio_write16(vh_dev.notify, 0xffff);
	if (virtio_negotiate(&vh_dev, 0))
		test_abort("features", "see above");
	virtq_notify(vh_vq);
	o = vh_wait(300000);
	console_printf("kick after FEATURES_OK: %s\n", vh_outcome_name(o));
	test_check(o != VH_COMPLETED_OK || vh_lenient, "nothing served before DRIVER_OK", "%s",
		   vh_outcome_name(o));
	served |= o != VH_NO_COMPLETION;
	if (!served) {
		virtio_set_status(&vh_dev, virtio_status(&vh_dev) | VIRTIO_STATUS_DRIVER_OK);
		virtq_notify(vh_vq);
		o = vh_wait(VH_WAIT_US);
		console_printf("kick after DRIVER_OK: %s\n", vh_outcome_name(o));
		test_check(o == VH_COMPLETED_OK || o == VH_NEEDS_RESET,
			   "served (or needs reset) once live", "%s", vh_outcome_name(o));
	}
	vh_recover("early kicks");
	return 0;
}
