/* SPDX-License-Identifier: MIT */
/*
 * virtio_net_ctrl: malformed commands on the control queue (virtio 1.2
 * §5.1.6.5) and queue pairs beyond those negotiated: a 1-byte header, no
 * ack buffer, VQ_PAIRS_SET with 1 byte of data, with 0 and with
 * max_virtqueue_pairs + 1 (§5.1.6.5.5), MAC ADDR_SET with 3 bytes, MAC
 * TABLE_SET whose entries count (1000) is larger than its buffer, an
 * unknown class, and notifications of queue 2N+2 and 0xffff (N =
 * max_virtqueue_pairs).  A command must not be acked OK: ERR, NEEDS_RESET or
 * no completion (`lenient` accepts OK, for QEMU); after the notifications
 * the device must still ack a good command.  Each is followed by a reset and
 * an ARP + ping (virtio_net_hostile.h).  Needs CTRL_VQ.
 */
#include "virtio_net_hostile.h"

static uint8_t *cmd; /* header at +0, data at +64, ack at +2048 */

static void judge(const char *what, enum vn_outcome o)
{
	uint8_t ack = cmd[2048];

	console_printf("%s: %s, ack %u (status %x)\n", what, vn_outcome_name(o), ack,
		       virtio_status(&vn_nic.dev));
	test_check(o != VN_COMPLETED || ack != VIRTIO_NET_OK || vn_lenient, what,
		   "the device acked it OK");
}

/* Submit header (hlen bytes), data (dlen, may be 0) and, if with_ack, the ack. */
static void send_raw(const char *what, uint8_t class, uint8_t command, uint32_t hlen,
		     uint32_t dlen, int with_ack)
{
	struct virtq_buf bufs[3];
	unsigned n = 0;

	cmd[0] = class;
	cmd[1] = command;
	cmd[2048] = 0xee;
	bufs[n++] = (struct virtq_buf){(uint64_t)cmd, hlen, 0};
	if (dlen)
		bufs[n++] = (struct virtq_buf){(uint64_t)cmd + 64, dlen, 0};
	if (with_ack)
		bufs[n++] = (struct virtq_buf){(uint64_t)cmd + 2048, 1, 1};
	if (virtq_submit(vn_nic.ctrl, bufs, n, 0) < 0)
		test_abort(what, "control queue full");
	virtq_notify(vn_nic.ctrl);
	judge(what, vn_wait(vn_nic.ctrl, NULL));
}

static void short_header(const char *what)
{
	send_raw(what, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1, 0, 1);
}

static void no_ack(const char *what)
{
	cmd[64] = 1;
	send_raw(what, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 2, 1, 0);
}

static void pairs_short(const char *what)
{
	cmd[64] = 1;
	send_raw(what, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 1, 1);
}

static void pairs_value(const char *what, uint16_t pairs)
{
	cmd[64] = (uint8_t)pairs;
	cmd[65] = (uint8_t)(pairs >> 8);
	send_raw(what, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 2, 1);
}

static void pairs_zero(const char *what) { pairs_value(what, 0); }
static void pairs_over(const char *what) { pairs_value(what, (uint16_t)(vn_nic.max_pairs + 1)); }

static void mac_short(const char *what)
{
	for (unsigned i = 0; i < 3; i++)
		cmd[64 + i] = (uint8_t)(0x02 + i);
	send_raw(what, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, 2, 3, 1);
}

/* §5.1.6.5.2: two tables, each a le32 entries count then entries * 6 bytes. */
static void mac_table_overflow(const char *what)
{
	uint8_t *d = cmd + 64;

	dma_zero(d, 32);
	d[0] = 1000 & 0xff;
	d[1] = 1000 >> 8; /* 1000 entries claimed, one present */
	d[4] = 0x02;
	d[10] = 0; /* second table: 0 entries */
	send_raw(what, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, 2, 14, 1);
}

static void unknown_class(const char *what)
{
	send_raw(what, 0x77, 0, 2, 0, 1);
}

/* Notify queues that do not exist (§4.1.5.2: the queue index is the value
 * written), then a good command must still be acked. */
static void notify_beyond(const char *what)
{
	struct virtio_dev *dev = &vn_nic.dev;
	uint16_t bad[2] = {(uint16_t)(2 * vn_nic.max_pairs + 2), 0xffff};
	int ack;

	for (unsigned i = 0; i < 2; i++) {
		__asm__ volatile("" ::: "memory");
		*(volatile uint16_t *)phys_ptr(vn_nic.dev.vq[0].notify_addr) = bad[i];
		*(volatile uint16_t *)phys_ptr(dev->notify +
					       (uint64_t)bad[i] * dev->notify_multiplier %
						       0x1000) = bad[i];
	}
	ack = virtio_net_set_promisc(&vn_nic, 0);
	console_printf("%s: then RX PROMISC off acked %d (status %x)\n", what, ack,
		       virtio_status(dev));
	test_check(ack == VIRTIO_NET_OK || virtio_needs_reset(dev), what,
		   "good command after it: ack %d, status %x", ack, virtio_status(dev));
}

int guest_main(const struct boot_info *info)
{
	vn_init(info, "virtio_net_ctrl");
	cmd = dma_alloc(4096, 4096);
	vn_start();
	if (!vn_nic.ctrl)
		test_abort("virtio-net", "no control queue offered (CTRL_VQ)");
	console_printf("max_virtqueue_pairs %u, control queue %u\n", vn_nic.max_pairs,
		       virtio_net_ctrl_index(&vn_nic));
	vn_attack("control header of 1 byte", short_header);
	vn_attack("control command without an ack buffer", no_ack);
	vn_attack("VQ_PAIRS_SET with 1 byte", pairs_short);
	vn_attack("VQ_PAIRS_SET 0", pairs_zero);
	vn_attack("VQ_PAIRS_SET max+1", pairs_over);
	vn_attack("MAC ADDR_SET with 3 bytes", mac_short);
	vn_attack("MAC TABLE_SET with 1000 entries in 14 bytes", mac_table_overflow);
	vn_attack("unknown control class", unknown_class);
	vn_attack("notify queue 2N+2 and 0xffff", notify_beyond);
	return 0;
}
