/* SPDX-License-Identifier: MIT */
/*
 * net_ping: the first virtio-net device (virtio 1.2 §5.1) and the kit's
 * stack (net.h).  Reads the config (MAC, LINK_UP, pairs, MTU), sends the
 * control commands the device offers (RX PROMISC on and off, MAC ADDR_SET
 * of its own MAC: each must be acked OK), ARP-resolves `peer=` and pings it
 * `count=` (5) times with 56-byte payloads, every reply checked.  Then it
 * prints `net_ping: READY` and answers pings (and ARP) until it has answered
 * `answer=` (0) echo requests, for at most `wait_s=` (60) seconds.
 * `ip=` (10.0.2.15) is the guest's address; `poll`: no MSI-X.  PASS = status 1.
 * `newmac`: then set a new MAC (the config's, last byte ^ 1) with ADDR_SET
 * and RX PROMISC off, and ping from it; `pause_s=N`: then wait N seconds
 * (the test kills isola-net meanwhile) and ping again from the new MAC;
 * `reinit`: then reset the device (status 0) and set it up again as a new
 * driver would: the config's MAC, PROMISC off, no ADDR_SET, and ping again
 * (docs/net.md "Restart semantics").
 */
#include "net.h"

static struct virtio_net nic;
static struct net_stack stack;

static void control_commands(void)
{
	if (!nic.ctrl) {
		console_printf("net_ping: no control queue offered\n");
		return;
	}
	if (nic.dev.features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX)) {
		int on = virtio_net_set_promisc(&nic, 1), off = virtio_net_set_promisc(&nic, 0);

		test_check(on == VIRTIO_NET_OK && off == VIRTIO_NET_OK, "RX PROMISC on and off acked",
			   "acks %d, %d", on, off);
	}
	if (nic.dev.features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR)) {
		int ack = virtio_net_set_mac(&nic, nic.mac);

		test_check(ack == VIRTIO_NET_OK, "MAC ADDR_SET acked", "ack %d", ack);
	}
}

static void ping_round(uint32_t peer, uint32_t count, const char *what)
{
	uint8_t mac[6];
	unsigned replies = 0;

	/* An ARP request from our (maybe new) MAC: the peer updates its
	 * neighbour entry for us, so its replies come to this MAC. */
	net_arp_request(&stack, peer);
	net_poll(&stack, 200000);
	if (net_arp_resolve(&stack, peer, mac, VIRTIO_NET_TIMEOUT_US)) {
		test_check(0, what, "no ARP reply from the peer in 5 s");
		return;
	}
	for (uint32_t seq = 1; seq <= count; seq++)
		replies += net_ping(&stack, peer, 0x1502, (uint16_t)seq, 56, 2000000) >= 0;
	test_check(replies == count, what, "%u of %u", replies, count);
}

/* The driver state isola-net must keep across its restart and forget at a
 * reset (newmac, pause_s, reinit above). */
static void state_rounds(const struct boot_info *info, uint32_t peer, uint32_t count)
{
	uint64_t pause_us = cmdline_get_u64_default(info->cmdline, "pause_s", 0) * 1000000ull;
	struct stopwatch sw;

	if (!cmdline_has(info->cmdline, "newmac") || !nic.ctrl)
		return;
	nic.mac[5] ^= 1;
	test_check(virtio_net_set_mac(&nic, nic.mac) == VIRTIO_NET_OK &&
			   virtio_net_set_promisc(&nic, 0) == VIRTIO_NET_OK,
		   "new MAC set, PROMISC off", "a command failed");
	ping_round(peer, count, "pings from the new MAC answered");
	if (pause_us) {
		console_printf("net_ping: PAUSE\n");
		stopwatch_start(&sw);
		while (stopwatch_us(&sw) < pause_us)
			net_poll(&stack, 100000);
		ping_round(peer, count, "pings from the new MAC answered after the pause");
	}
	if (!cmdline_has(info->cmdline, "reinit"))
		return;
	virtio_reset(&nic.dev);
	if (virtio_net_init(&nic, VIRTIO_NET_FEATURES_DEFAULT, 1,
			    !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-net init after a reset", "see above");
	test_check(virtio_net_set_promisc(&nic, 0) == VIRTIO_NET_OK, "PROMISC off after the reset",
		   "nack");
	ping_round(peer, count, "pings from the config MAC answered after the reset");
}

int guest_main(const struct boot_info *info)
{
	uint32_t peer, count, answer;
	uint64_t wait_us;
	uint8_t mac[6];
	unsigned replies = 0;
	struct stopwatch sw;

	console_printf("isola net_ping guest\n");
	dma_init(info);
	count = (uint32_t)cmdline_get_u64_default(info->cmdline, "count", 5);
	answer = (uint32_t)cmdline_get_u64_default(info->cmdline, "answer", 0);
	wait_us = cmdline_get_u64_default(info->cmdline, "wait_s", 60) * 1000000ull;
	if (virtio_find(VIRTIO_ID_NET, &nic.dev, 1) != 1)
		test_abort("virtio-net device", "none on bus 0");
	if (virtio_net_init(&nic, VIRTIO_NET_FEATURES_DEFAULT, 1, !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-net init", "see above");
	test_check(nic.link_status & VIRTIO_NET_S_LINK_UP, "link is up", "status %x",
		   nic.link_status);
	test_check(nic.mtu >= 68, "MTU is at least 68 (RFC 791)", "mtu %u", nic.mtu);
	net_init(&stack, &nic, net_cmdline_ip(info->cmdline, "ip", 0x0a00020f));
	peer = net_cmdline_ip(info->cmdline, "peer", 0x0a000202);
	control_commands();
	if (net_arp_resolve(&stack, peer, mac, VIRTIO_NET_TIMEOUT_US))
		test_abort("ARP", "no reply from the peer in 5 s");
	console_printf("net_ping: peer is at %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1],
		       mac[2], mac[3], mac[4], mac[5]);
	for (uint32_t seq = 1; seq <= count; seq++) {
		long rtt = net_ping(&stack, peer, 0x1501, (uint16_t)seq, 56, 2000000);

		if (rtt >= 0) {
			replies++;
			console_printf("net_ping: reply seq=%u time=%ld us\n", seq, rtt);
		} else {
			console_printf("net_ping: no reply seq=%u\n", seq);
		}
	}
	test_check(replies == count, "every ping answered", "%u of %u", replies, count);
	state_rounds(info, peer, count);
	console_printf("net_ping: READY\n");
	stopwatch_start(&sw);
	while (stack.echo_answered < answer && stopwatch_us(&sw) < wait_us &&
	       !virtio_needs_reset(&nic.dev))
		net_poll(&stack, 100000);
	test_check(stack.echo_answered >= answer, "answered the host's pings", "%lu of %u",
		   stack.echo_answered, answer);
	console_printf("net_ping: rx_frames=%lu dropped=%lu other=%lu arp_answered=%lu echo_answered=%lu "
		       "rx_bad=%lu\n",
		       stack.rx_frames, stack.rx_dropped, stack.rx_other, stack.arp_answered,
		       stack.echo_answered, nic.rx_bad);
	test_check(!virtio_needs_reset(&nic.dev), "device never needed a reset", "status %x",
		   virtio_status(&nic.dev));
	return 0;
}
