/* SPDX-License-Identifier: MIT */
/*
 * virtio_msix_oob: MSI-X table writes out of range (entries past the table
 * size, to the end of its page, and into the PBA), misaligned (offsets 1-3)
 * and of odd widths (1, 2 bytes), a queue vector number past the table,
 * and an entry whose address is not the LAPIC's.  Nothing may crash; then,
 * with the table programmed properly, a request completes with its
 * interrupt (the device and its interrupt path still work).
 */
#include "virtio_hostile.h"

int guest_main(const struct boot_info *info)
{
	uint64_t table, end;
	uint16_t vec;
	int st;

	vh_init(info, "virtio_msix_oob");
	if (!vh_dev.msix_cap)
		test_abort("msi-x", "the device has no MSI-X capability");
	table = vh_dev.msix_table;
	end = (table | 0xfff) + 1;
	console_printf("MSI-X table %lx, %u entries\n", table, vh_dev.msix_vectors);
	for (uint64_t a = table + 16ull * vh_dev.msix_vectors; a < end; a += 4)
		mmio_write32(a, (uint32_t)hostile_rand());
	for (uint64_t a = table; a + 8 < table + 16ull * vh_dev.msix_vectors; a += 16) {
		mmio_write8(a + 1, 0xff);
		mmio_write16(a + 2, 0xffff);
		mmio_write16(a + 5, 0xffff);
		mmio_write32(a + 3, 0xffffffffu);
		(void)mmio_read8(a + 3);
		(void)mmio_read16(a + 7);
	}
	/* The PBA is read-only (PCI 3.0 §6.8.2.10). */
	for (uint64_t a = end; a < end + 64; a += 4)
		(void)mmio_read32(a);
	/* A queue vector past the table must read back NO_VECTOR or be refused. */
	virtio_common_write16(&vh_dev, VIRTIO_COMMON_Q_SELECT, 0);
	virtio_common_write16(&vh_dev, VIRTIO_COMMON_Q_MSIX, (uint16_t)(vh_dev.msix_vectors + 3));
	vec = virtio_common_read16(&vh_dev, VIRTIO_COMMON_Q_MSIX);
	console_printf("queue vector %u reads back %x\n", vh_dev.msix_vectors + 3, vec);
	test_check(vec == VIRTIO_NO_VECTOR || vec < vh_dev.msix_vectors,
		   "vector past the table not taken", "reads back %u", vec);

	/* A properly set up queue whose vector points nowhere useful. */
	if (virtio_init(&vh_dev, 0, 1, VH_QUEUE_SIZE, 1))
		test_abort("virtio init", "see above");
	vh_vq = &vh_dev.vq[0];
	mmio_write32(table + 16, 0xdead0000u); /* not 0xfeexxxxx */
	mmio_write32(table + 20, 0x1);
	st = virtio_blk_rw(vh_vq, 0, 0, vh_buf, 1, 1, 0);
	console_printf("read with a bogus MSI address: %s, %u interrupts\n",
		       virtio_blk_status_name(st), vh_vq->irqs);
	/* The table as it should be: a read interrupts. */
	if (virtio_reset(&vh_dev))
		test_abort("reset", "stuck");
	if (virtio_init(&vh_dev, 0, 1, VH_QUEUE_SIZE, 1))
		test_abort("virtio init", "see above");
	vh_vq = &vh_dev.vq[0];
	st = virtio_blk_rw(vh_vq, 0, 0, vh_buf, 8, 2, 0);
	test_check(st == VIRTIO_BLK_S_OK, "read after MSI-X garbage", "%s",
		   virtio_blk_status_name(st));
	test_check(virtq_wait_irqs(vh_vq, 1, 1000000) > 0, "completion interrupt arrives", "none");
	vh_recover("MSI-X garbage");
	return 0;
}
