/* SPDX-License-Identifier: MIT */
/*
 * virtio_cfg_oob: device-config reads and writes out of range (every width
 * at offsets past the structure's length, to the end of its page), writes
 * to read-only fields (capacity), common-config garbage: reserved offsets,
 * wrong widths, queue_select 0xffff then queue fields, feature selects past
 * 1.  Capacity must be unchanged, nothing may crash, and the device must
 * work after a reset.
 */
#include "virtio_hostile.h"

int guest_main(const struct boot_info *info)
{
	uint64_t cap, cfg;
	unsigned len;

	vh_init(info, "virtio_cfg_oob");
	vh_start();
	cfg = vh_dev.device_cfg;
	len = vh_dev.device_cfg_len;
	cap = virtio_config_read64(&vh_dev, VIRTIO_BLK_CFG_CAPACITY);
	console_printf("device config %lx, %u bytes, capacity %lu\n", cfg, len, cap);
	/* Read-only capacity: every width, every byte. */
	for (unsigned i = 0; i < 8; i++) {
		mmio_write8(cfg + i, 0xff);
		mmio_write16(cfg + (i & ~1u), 0xffff);
	}
	mmio_write32(cfg, 0);
	mmio_write64(cfg, 0x1234);
	/* Straddling the end, and past it to the page end. */
	for (unsigned off = len > 8 ? len - 8 : 0; off < 4096; off += (off < len + 64 ? 1 : 61)) {
		mmio_write8(cfg + off, 0x5a);
		(void)mmio_read8(cfg + off);
		if (off + 2 <= 4096) {
			mmio_write16(cfg + off, 0x5a5a);
			(void)mmio_read16(cfg + off);
		}
		if (off + 4 <= 4096) {
			mmio_write32(cfg + off, 0x5a5a5a5a);
			(void)mmio_read32(cfg + off);
		}
		if (off + 8 <= 4096 && !(off & 7)) {
			mmio_write64(cfg + off, ~0ull);
			(void)mmio_read64(cfg + off);
		}
	}
	/* Common config: reserved offsets, odd widths (not the status byte). */
	for (unsigned off = 0x3c; off < 0x100; off++) {
		mmio_write8(vh_dev.common + off, 0xa5);
		(void)mmio_read8(vh_dev.common + off);
		if (!(off & 3))
			mmio_write32(vh_dev.common + off, 0xffffffffu);
	}
	mmio_write8(vh_dev.common + VIRTIO_COMMON_Q_SELECT, 0xff); /* half a field */
	mmio_write16(vh_dev.common + VIRTIO_COMMON_Q_SELECT, 0xffff);
	mmio_write16(vh_dev.common + VIRTIO_COMMON_Q_SIZE, 0x1000);
	mmio_write16(vh_dev.common + VIRTIO_COMMON_Q_MSIX, 3);
	mmio_write16(vh_dev.common + VIRTIO_COMMON_Q_ENABLE, 1);
	mmio_write32(vh_dev.common + VIRTIO_COMMON_Q_DESC, 0xfec00000u);
	mmio_write64(vh_dev.common + VIRTIO_COMMON_Q_AVAIL, ~0ull);
	(void)mmio_read16(vh_dev.common + VIRTIO_COMMON_Q_SIZE);
	(void)mmio_read64(vh_dev.common + VIRTIO_COMMON_Q_DESC);
	mmio_write32(vh_dev.common + VIRTIO_COMMON_DFSELECT, 0xffffffffu);
	(void)mmio_read32(vh_dev.common + VIRTIO_COMMON_DF);
	mmio_write32(vh_dev.common + VIRTIO_COMMON_GFSELECT, 7);
	mmio_write32(vh_dev.common + VIRTIO_COMMON_GF, 0xffffffffu);
	mmio_write8(vh_dev.common + VIRTIO_COMMON_DF + 1, 0xff); /* wrong width */
	mmio_write32(vh_dev.isr, 0xffffffffu); /* ISR is read-only */
	(void)mmio_read32(vh_dev.isr + 1);
	console_printf("status after the garbage: %x\n", virtio_status(&vh_dev));
	test_check(virtio_config_read64(&vh_dev, VIRTIO_BLK_CFG_CAPACITY) == cap,
		   "capacity is read-only", "now %lu", virtio_config_read64(&vh_dev, 0));
	vh_recover("config garbage");
	test_check(virtio_config_read64(&vh_dev, VIRTIO_BLK_CFG_CAPACITY) == cap,
		   "capacity unchanged after reset", "now %lu", virtio_config_read64(&vh_dev, 0));
	return 0;
}
