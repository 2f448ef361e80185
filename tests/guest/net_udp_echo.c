/* SPDX-License-Identifier: MIT */
/*
 * net_udp_echo: a UDP echo service on the first virtio-net device (virtio
 * 1.2 §5.1) and the kit's stack.  Prints `net_udp_echo: READY`, then sends
 * back every datagram that arrives on `port=` (7) to its sender, until a
 * datagram `END <n>` arrives on `ctl_port=` (9): n is how many the host
 * sent, and every one must have been echoed.  Then it sends `send=` (32)
 * datagrams of its own to `peer=`:`host_port=` (5555): datagram i is
 * 1 + (i * 97) % 1472 bytes, byte 0 = i, byte j = (i + 13 j) & 0xff
 * (tests/system/net_guests.sh checks them), waits for the device to take
 * them all, and ends.  `ip=` (10.0.2.15), `wait_s=` (120) bounds the
 * whole echo phase, `no_udp_csum` sends checksum 0, `poll`: no MSI-X.
 * PASS = status 1.
 */
#include "net.h"

static struct virtio_net nic;
static struct net_stack stack;
static uint16_t echo_port, ctl_port;
static uint64_t echoed, echo_failed, announced;
static int ended;

static void udp_rx(struct net_stack *s, const struct net_udp *d)
{
	if (d->dst_port == echo_port) {
		if (net_udp_reply(s, d, d->data, d->len) == 0)
			echoed++;
		else
			echo_failed++;
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
	uint32_t peer, send;
	uint16_t host_port;
	uint64_t wait_us;
	uint8_t *buf;
	struct stopwatch sw;
	unsigned sent = 0;

	console_printf("isola net_udp_echo guest\n");
	dma_init(info);
	echo_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "port", 7);
	ctl_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "ctl_port", 9);
	host_port = (uint16_t)cmdline_get_u64_default(info->cmdline, "host_port", 5555);
	send = (uint32_t)cmdline_get_u64_default(info->cmdline, "send", 32);
	wait_us = cmdline_get_u64_default(info->cmdline, "wait_s", 120) * 1000000ull;
	if (virtio_find(VIRTIO_ID_NET, &nic.dev, 1) != 1)
		test_abort("virtio-net device", "none on bus 0");
	if (virtio_net_init(&nic, VIRTIO_NET_FEATURES_DEFAULT, 1, !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-net init", "see above");
	net_init(&stack, &nic, net_cmdline_ip(info->cmdline, "ip", 0x0a00020f));
	peer = net_cmdline_ip(info->cmdline, "peer", 0x0a000202);
	stack.udp_rx = udp_rx;
	stack.udp_csum_on_send = !cmdline_has(info->cmdline, "no_udp_csum");
	console_printf("net_udp_echo: READY\n");
	stopwatch_start(&sw);
	while (!ended && stopwatch_us(&sw) < wait_us && !virtio_needs_reset(&nic.dev))
		net_poll(&stack, 200000);
	test_check(ended, "END arrived", "after %lu echoes", echoed);
	console_printf("net_udp_echo: echoed=%lu failed=%lu announced=%lu\n", echoed, echo_failed,
		       announced);
	test_check(ended && echoed == announced && !echo_failed, "every datagram echoed",
		   "%lu echoed, %lu failed, host sent %lu", echoed, echo_failed, announced);
	buf = dma_alloc(NET_UDP_MAX, 64);
	for (uint32_t i = 0; i < send; i++) {
		uint32_t len = 1 + (i * 97) % 1472;

		buf[0] = (uint8_t)i;
		for (uint32_t j = 1; j < len; j++)
			buf[j] = (uint8_t)(i + 13 * j);
		if (net_udp_send(&stack, 0, peer, 4000, host_port, buf, len) == 0)
			sent++;
	}
	test_check(sent == send, "own datagrams sent", "%u of %u", sent, send);
	test_check(virtio_net_tx_flush(&nic, VIRTIO_NET_TIMEOUT_US) == 0,
		   "device took every frame", "TX buffers still out after 5 s");
	console_printf("net_udp_echo: sent=%u rx_frames=%lu dropped=%lu other=%lu rx_bad=%lu\n", sent,
		       stack.rx_frames, stack.rx_dropped, stack.rx_other, nic.rx_bad);
	test_check(stack.rx_dropped == 0, "no malformed frame received", "%lu dropped",
		   stack.rx_dropped);
	test_check(!virtio_needs_reset(&nic.dev), "device never needed a reset", "status %x",
		   virtio_status(&nic.dev));
	return 0;
}
