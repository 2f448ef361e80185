/* SPDX-License-Identifier: MIT */
/*
 * snap_irq: a virtio interrupt pending when a snapshot is taken is
 * delivered after the restore (tests/system/snapshot_devices.sh, issue 16
 * acceptance 3).  One virtio-blk device with MSI-X (virtio 1.2 §4.1.4.3,
 * §4.1.5.1.2).  With interrupts off (cli), a read of sector 0 is submitted
 * and its completion awaited by polling the used ring, so its interrupt is
 * raised and not taken:
 *   mode=cli  (default): the vector is live, the MSI waits in the LAPIC's
 *             IRR (KVM's state);
 *   mode=mask: the queue's MSI-X vector is masked first, so the interrupt
 *             waits in the function's Pending Bit Array (the transport's
 *             state: the call eventfd isola keeps).
 * Then `snap_irq: pending` and COM1 is polled (interrupts still off) for a
 * byte: the test snapshots and restores meanwhile, then sends one.  On it
 * the vector is unmasked (mask mode) and interrupts are enabled: PASS if
 * the queue's interrupt arrives within 1 s (and only after that point),
 * and the data read is what the test put at the start of the image
 * (SECTOR0).
 */
#include "virtio.h"

#define COM1_LSR 0x3fd
#define COM1_RBR 0x3f8
#define UART_LSR_DR 0x01
#define SECTOR0 "isola snapshot sector 0"

static struct virtio_dev disk;

int guest_main(const struct boot_info *info)
{
	int mask = cmdline_has(info->cmdline, "mode=mask");
	volatile uint32_t *vector_control;
	struct stopwatch sw;
	struct virtq *vq;
	uint8_t *buf;
	unsigned before;
	int st;

	console_printf("isola snap_irq guest (%s)\n", mask ? "masked vector" : "interrupts off");
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	if (virtio_init(&disk, 0, 1, 64, 1))
		test_abort("virtio-blk init", "see above");
	vq = &disk.vq[0];
	if (!vq->irq_vector)
		test_abort("MSI-X", "the queue has no vector");
	/* MSI-X table entry of the queue's vector: Vector Control at +12 */
	vector_control =
	    (volatile uint32_t *)(uintptr_t)(disk.msix_table + 16ull * vq->msix_vector + 12);
	buf = dma_alloc(VIRTIO_BLK_SECTOR, 4096);

	cpu_cli();
	if (mask)
		*vector_control = 1;
	before = vq->irqs;
	if (virtio_blk_start(vq, 0, 0, buf, 1, 1, 0))
		test_abort("submit", "the read did not fit");
	stopwatch_start(&sw);
	while (vq->used->idx == vq->last_used)
		if (stopwatch_us(&sw) > 5000000)
			test_abort("read completes", "no completion in 5 s");
	st = virtio_blk_finish(vq); /* used already: no interrupt window */
	test_check(st == VIRTIO_BLK_S_OK, "read", "%s", virtio_blk_status_name(st));
	test_check(vq->irqs == before, "no interrupt taken yet", "%u taken", vq->irqs - before);
	console_printf("snap_irq: pending\n");
	/* interrupts off: wait for the test's byte, by polling */
	while (!(io_in8(COM1_LSR) & UART_LSR_DR))
		(void)pmtimer_read();
	(void)io_in8(COM1_RBR);
	console_printf("snap_irq: enabling\n");
	if (mask)
		*vector_control = 0;
	stopwatch_start(&sw);
	while (vq->irqs == before && stopwatch_us(&sw) < 1000000) {
		cpu_sti();
		(void)pmtimer_read();
		cpu_cli();
	}
	test_check(vq->irqs != before, "the pending interrupt is delivered",
		   "none within 1 s of enabling it");
	test_check(!memcmp(buf, SECTOR0, sizeof(SECTOR0) - 1), "the data read",
		   "sector 0 does not begin with '" SECTOR0 "'");
	console_printf("snap_irq: irqs %u\n", vq->irqs - before);
	return 0;
}
