/* SPDX-License-Identifier: MIT */
/*
 * net_mq: multi-queue virtio-net (virtio 1.2 §5.1.6.5.5).  Needs MQ and
 * CTRL_VQ with max_virtqueue_pairs >= `pairs=` (2): sets up that many
 * pairs (receiveq k = 2k, transmitq k = 2k+1, controlq 2N), checks that
 * VQ_PAIRS_SET 0 and max+1 are refused (ERR or NEEDS_RESET would fail the
 * rest: only ERR is accepted) and that VQ_PAIRS_SET `pairs` is acked, then
 * runs the UDP echo service of net_udp_echo (same `port=`, `ctl_port=`,
 * `END <n>`, `send=` to `peer=`:`host_port=`, datagram formula) replying on
 * the pair each datagram came in on, and sends its own datagrams round-robin
 * over every TX queue.  The host sends from many source ports so the tap's
 * flow steering spreads them: every RX queue and every TX queue must have
 * carried frames.  PASS = status 1.
 */
#include "net.h"

static struct virtio_net nic;
static struct net_stack stack;
static uint16_t echo_port, ctl_port;
static uint64_t echoed, echo_failed, announced;
static uint64_t echoed_on[VIRTIO_NET_MAX_PAIRS];
static int ended;

static void udp_rx(struct net_stack *s, const struct net_udp *d)
{
	if (d->dst_port == echo_port) {
		if (net_udp_reply(s, d, d->data, d->len) == 0) {
			echoed++;
			echoed_on[d->pair]++;
		} else {
			echo_failed++;
		}
	} else if (d->dst_port == ctl_port && d->len >= 4 && !memcmp(d->data, "END ", 4)) {
		uint64_t n = 0;

		for (uint32_t i = 4; i < d->len && d->data[i] >= '0' && d->data[i] <= '9'; i++)
			n = n * 10 + (d->data[i] - '0');
		announced = n;
		ended = 1;
	}
}

int guest_main(const struct boot_info *info)
{
	uint32_t peer, send, pairs;
	uint16_t host_port;
	uint64_t wait_us;
	uint8_t *buf;
	struct stopwatch sw;
	unsigned sent = 0;
	int ack;

	console_printf("isola net_mq guest\n");
	dma_init(info);
	pairs = (uint32_t)cmdline_get_u64_default(info->cmdline, "pairs", 2);
	echo_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "port", 7);
	ctl_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "ctl_port", 9);
	host_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "host_port", 5555);
	send = (uint32_t)cmdline_get_u64_default(info->cmdline, "send", 32);
	wait_us = cmdline_get_u64_default(info->cmdline, "wait_s", 120) * 1000000ull;
	if (virtio_find(VIRTIO_ID_NET, &nic.dev, 1) != 1)
		test_abort("virtio-net device", "none on bus 0");
	if (virtio_net_init(&nic, VIRTIO_NET_FEATURES_DEFAULT, pairs,
			    !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-net init", "see above");
	if (!(nic.dev.features & VIRTIO_BIT(VIRTIO_NET_F_MQ)) || !nic.ctrl)
		test_abort("virtio-net features", "MQ and CTRL_VQ needed, got %lx", nic.dev.features);
	console_printf("net_mq: control queue is %u\n", virtio_net_ctrl_index(&nic));
	/* §5.1.6.5.5: the device MUST NOT accept pairs outside 1..max. */
	ack = virtio_net_set_pairs(&nic, 0);
	test_check(ack == VIRTIO_NET_ERR, "VQ_PAIRS_SET 0 refused", "ack %d", ack);
	ack = virtio_net_set_pairs(&nic, (uint16_t)(nic.max_pairs + 1));
	test_check(ack == VIRTIO_NET_ERR, "VQ_PAIRS_SET max+1 refused", "ack %d", ack);
	ack = virtio_net_set_pairs(&nic, (uint16_t)pairs);
	if (!test_check(ack == VIRTIO_NET_OK, "VQ_PAIRS_SET acked", "%u pairs: ack %d", pairs, ack))
		return 1;
	net_init(&stack, &nic, net_cmdline_ip(info->cmdline, "ip", 0x0a00020f));
	peer = net_cmdline_ip(info->cmdline, "peer", 0x0a000202);
	stack.udp_rx = udp_rx;
	console_printf("net_mq: READY\n");
	stopwatch_start(&sw);
	while (!ended && stopwatch_us(&sw) < wait_us && !virtio_needs_reset(&nic.dev))
		net_poll(&stack, 200000);
	test_check(ended && echoed == announced && !echo_failed, "every datagram echoed",
		   "%lu echoed, %lu failed, host sent %lu", echoed, echo_failed, announced);
	buf = dma_alloc(NET_UDP_MAX, 64);
	for (uint32_t i = 0; i < send; i++) {
		uint32_t len = 1 + (i * 97) % 1472;

		buf[0] = (uint8_t)i;
		for (uint32_t j = 1; j < len; j++)
			buf[j] = (uint8_t)(i + 13 * j);
		if (net_udp_send(&stack, i % pairs, peer, (uint16_t)(4000 + i % pairs), host_port, buf,
				 len) == 0)
			sent++;
	}
	test_check(sent == send, "own datagrams sent", "%u of %u", sent, send);
	test_check(virtio_net_tx_flush(&nic, VIRTIO_NET_TIMEOUT_US) == 0, "device took every frame",
		   "TX buffers still out after 5 s");
	for (uint32_t p = 0; p < pairs; p++) {
		console_printf("net_mq: pair %u rx_frames=%lu tx_frames=%lu echoed=%lu\n", p,
			       nic.rx_frames[p], nic.tx_frames[p], echoed_on[p]);
		test_check(nic.rx_frames[p] > 0, "RX queue carried frames", "receiveq%u: none", p);
		test_check(nic.tx_frames[p] > 0, "TX queue carried frames", "transmitq%u: none", p);
	}
	test_check(!virtio_needs_reset(&nic.dev), "device never needed a reset", "status %x",
		   virtio_status(&nic.dev));
	return 0;
}
