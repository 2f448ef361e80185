/* SPDX-License-Identifier: MIT */
/*
 * virtio_net_tx: malformed transmit chains on transmitq0 (virtio 1.2
 * §5.1.6.2): a 6-byte descriptor (shorter than the 12-byte virtio_net_hdr),
 * a header with no frame, a 69632-byte frame (over 64 KiB) as a chain of 18
 * descriptors, a device-writable TX descriptor, a TX buffer in MMIO (the
 * IOAPIC page) and beyond RAM.  Each must end in NEEDS_RESET, the buffer
 * given back (the frame dropped: isola-net counts it) or no completion; the
 * device then works after a reset (virtio_net_hostile.h).
 */
#include "virtio_net_hostile.h"

static uint8_t *frame;

static struct virtq *txq(void)
{
	return &vn_nic.dev.vq[1];
}

static void judge(const char *what, enum vn_outcome o)
{
	console_printf("%s: %s (status %x)\n", what, vn_outcome_name(o), virtio_status(&vn_nic.dev));
	test_check(1, what, "%s", vn_outcome_name(o)); /* any of the three: survival is checked next */
}

/* A broadcast frame of our own EtherType 0x88b5 (IEEE 802 local experimental). */
static void frame_header(uint8_t *f)
{
	dma_zero(f, VIRTIO_NET_HDR_SIZE);
	for (unsigned i = 0; i < 6; i++) {
		f[VIRTIO_NET_HDR_SIZE + i] = 0xff;
		f[VIRTIO_NET_HDR_SIZE + 6 + i] = vn_nic.mac[i];
	}
	f[VIRTIO_NET_HDR_SIZE + 12] = 0x88;
	f[VIRTIO_NET_HDR_SIZE + 13] = 0xb5;
}

static void kick_one(const char *what, uint64_t addr, uint32_t len, uint16_t flags)
{
	vn_desc(txq(), 0, addr, len, flags, 0);
	virtq_publish(txq(), 0);
	virtq_notify(txq());
	judge(what, vn_wait(txq(), NULL));
}

static void short_header(const char *what)
{
	frame_header(frame);
	kick_one(what, (uint64_t)frame, 6, 0);
}

static void header_only(const char *what)
{
	frame_header(frame);
	kick_one(what, (uint64_t)frame, VIRTIO_NET_HDR_SIZE, 0);
}

static void writable(const char *what)
{
	frame_header(frame);
	kick_one(what, (uint64_t)frame, VIRTIO_NET_HDR_SIZE + 60, VIRTQ_DESC_F_WRITE);
}

static void in_mmio(const char *what)
{
	kick_one(what, 0xfec00000ull, VIRTIO_NET_HDR_SIZE + 60, 0);
}

static void beyond_ram(const char *what)
{
	kick_one(what, 0x4000000000ull, VIRTIO_NET_HDR_SIZE + 60, 0);
}

/* 12-byte header, then 17 x 4 KiB: a 69632-byte frame (§5.1.6.2 limits a
 * frame without GSO to the MTU; nothing may carry it whole). */
static void huge_frame(const char *what)
{
	unsigned n = 18;

	frame_header(frame);
	vn_desc(txq(), 0, (uint64_t)frame, VIRTIO_NET_HDR_SIZE, VIRTQ_DESC_F_NEXT, 1);
	for (unsigned i = 1; i < n; i++)
		vn_desc(txq(), i, (uint64_t)frame + VIRTIO_NET_HDR_SIZE + 4096ull * (i - 1), 4096,
			i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1 < n ? i + 1 : 0));
	virtq_publish(txq(), 0);
	virtq_notify(txq());
	judge(what, vn_wait(txq(), NULL));
}

int guest_main(const struct boot_info *info)
{
	vn_init(info, "virtio_net_tx");
	frame = dma_alloc(VIRTIO_NET_HDR_SIZE + 18 * 4096, 4096);
	vn_attack("TX descriptor shorter than the header", short_header);
	vn_attack("TX header with no frame", header_only);
	vn_attack("TX frame of 69632 bytes", huge_frame);
	vn_attack("device-writable TX descriptor", writable);
	vn_attack("TX buffer in MMIO", in_mmio);
	vn_attack("TX buffer beyond RAM", beyond_ram);
	return 0;
}
