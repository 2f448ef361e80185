/* SPDX-License-Identifier: MIT */
/*
 * virtio_ring_oob: the queue's descriptor table, avail ring or used ring
 * placed in MMIO (the IOAPIC page) or far beyond RAM (256 GiB), then
 * DRIVER_OK and a kick.  The device must refuse DRIVER_OK, report
 * NEEDS_RESET, or serve nothing; the IOAPIC must be untouched and the
 * device must work after a reset.
 */
#include "virtio_hostile.h"

#define FAR_AWAY 0x4000000000ull

static void place(const char *what, unsigned field, uint64_t gpa)
{
	uint8_t status;
	enum vh_outcome o = VH_NO_COMPLETION;

	if (virtio_reset(&vh_dev))
		test_abort("reset", "status %x", virtio_status(&vh_dev));
	virtio_set_status(&vh_dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	if (virtio_negotiate(&vh_dev, 0) || virtio_setup_queue_rings(&vh_dev, 0, VH_QUEUE_SIZE, 0, 0))
		test_abort("setup", "see above");
	vh_vq = &vh_dev.vq[0];
	/* Re-point one ring part before queue_enable. */
	virtio_common_write32(&vh_dev, field, (uint32_t)gpa);
	virtio_common_write32(&vh_dev, field + 4, (uint32_t)(gpa >> 32));
	virtio_common_write16(&vh_dev, VIRTIO_COMMON_Q_ENABLE, 1);
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	virtio_set_status(&vh_dev, virtio_status(&vh_dev) | VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(&vh_dev);
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_NEEDS_RESET))
		o = vh_kick(0);
	else
		o = VH_NEEDS_RESET;
	console_printf("%s at %lx: status %x, %s\n", what, gpa, status, vh_outcome_name(o));
	vh_expect_failure(what, o);
	vh_recover(what);
}

int guest_main(const struct boot_info *info)
{
	uint32_t ioapic_id;

	vh_init(info, "virtio_ring_oob");
	ioapic_id = ioapic_read(0);
	place("descriptor table in MMIO", VIRTIO_COMMON_Q_DESC, 0xfec00000ull);
	/* QEMU 7.2 stops responding on this one (its reference run passes
	 * `lenient`, which skips it). */
	if (!vh_lenient)
		place("avail ring in MMIO", VIRTIO_COMMON_Q_AVAIL, 0xfec00000ull);
	place("used ring in MMIO", VIRTIO_COMMON_Q_USED, 0xfec00000ull);
	place("descriptor table beyond RAM", VIRTIO_COMMON_Q_DESC, FAR_AWAY);
	place("used ring beyond RAM", VIRTIO_COMMON_Q_USED, FAR_AWAY);
	test_check(ioapic_read(0) == ioapic_id, "IOAPIC untouched", "ID register %x -> %x",
		   ioapic_id, ioapic_read(0));
	return 0;
}
