/* SPDX-License-Identifier: MIT */
/*
 * A minimal network stack for the test guests (net.c) on the kit's
 * virtio-net driver: Ethernet II, ARP (RFC 826) with a tiny cache, IPv4
 * (RFC 791; header checksum, no options sent, fragments dropped), ICMP echo
 * (RFC 792) both ways, UDP (RFC 768; checksum verified when non-zero).
 * Addresses in the API are host-order uint32_t (10.0.0.1 = 0x0a000001).
 * One stack per guest; no allocation, no timers: the guest calls
 * net_poll() and everything (ARP replies, echo replies) happens there.
 */
#ifndef GUEST_NET_H
#define GUEST_NET_H

#include "virtio.h"

#define NET_ETH_HLEN 14
#define NET_IP_HLEN 20
#define NET_UDP_HLEN 8
#define NET_UDP_MAX (VIRTIO_NET_FRAME_MAX - NET_ETH_HLEN - NET_IP_HLEN - NET_UDP_HLEN)
#define NET_ARP_CACHE 8

/* A received UDP datagram, as handed to the stack's udp_rx callback. */
struct net_udp {
	unsigned pair; /* queue pair it came in on */
	uint8_t src_mac[6];
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	const uint8_t *data;
	uint32_t len;
};

struct net_stack;
typedef void (*net_udp_fn)(struct net_stack *s, const struct net_udp *d);

struct net_stack {
	struct virtio_net *nic;
	uint32_t ip;
	int udp_csum_on_send; /* compute UDP checksums (else send 0, RFC 768) */
	net_udp_fn udp_rx;
	void *user;
	struct {
		uint32_t ip;
		uint8_t mac[6];
	} arp[NET_ARP_CACHE];
	unsigned arp_next;
	uint16_t ip_id;
	/* the echo reply net_ping() waits for */
	uint16_t ping_id, ping_seq;
	int ping_got;
	/* counters */
	uint64_t rx_frames, rx_dropped, rx_other, arp_answered, echo_answered, udp_received;
};

void net_init(struct net_stack *s, struct virtio_net *nic, uint32_t ip);
/* Dotted quad to host order; 0 or -1. */
int net_parse_ip(const char *text, uint32_t *ip);
/* Same for a cmdline key; def if absent; aborts the guest if malformed. */
uint32_t net_cmdline_ip(const char *cmdline, const char *key, uint32_t def);
/* Internet checksum (RFC 1071) of len bytes, starting from sum. */
uint16_t net_checksum(const void *data, uint32_t len, uint32_t sum);
/* Handle every frame waiting on every set-up pair, waiting up to
 * timeout_us for the first one; returns how many were handled. */
unsigned net_poll(struct net_stack *s, uint64_t timeout_us);
/* MAC of ip: cache, else ARP requests every 200 ms; 0 or -1 on timeout. */
int net_arp_resolve(struct net_stack *s, uint32_t ip, uint8_t mac[6], uint64_t timeout_us);
/* Send an ARP request for ip on pair 0 (no wait). */
int net_arp_request(struct net_stack *s, uint32_t ip);
/* ICMP echo request to ip with len payload bytes; waits for the reply:
 * round trip in µs, or -1 on timeout/send failure. */
long net_ping(struct net_stack *s, uint32_t ip, uint16_t id, uint16_t seq, uint32_t len,
	      uint64_t timeout_us);
/* UDP datagram (len <= NET_UDP_MAX) from our ip:sport to ip:dport on pair;
 * the destination's MAC from the ARP cache (resolved if missing). 0 or -1. */
int net_udp_send(struct net_stack *s, unsigned pair, uint32_t ip, uint16_t sport, uint16_t dport,
		 const void *data, uint32_t len);
/* Reply to a received datagram (back to its MAC, ports swapped) on its pair. */
int net_udp_reply(struct net_stack *s, const struct net_udp *to, const void *data, uint32_t len);

#endif
