/* SPDX-License-Identifier: MIT */
/* The test guests' minimal network stack: see net.h. */
#include "net.h"

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define ARP_LEN 28
#define IP_TTL 64

static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

typedef uint32_t __attribute__((may_alias, aligned(1))) u32_unaligned;

static void copy(void *dst, const void *src, uint64_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static int same6(const uint8_t *a, const uint8_t *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- checksums (RFC 1071) ----------------------------------------------
 * Summed in memory order (little-endian 16-bit words) and stored the same
 * way: the one's-complement sum is byte-order independent (§2(B)).  32-bit
 * words at a time: fewer emulated instructions on PVM. */
static uint64_t csum_partial(const void *data, uint32_t len, uint64_t sum)
{
	const uint8_t *p = data;

	for (; len >= 4; len -= 4, p += 4)
		sum += *(const u32_unaligned *)p;
	if (len >= 2) {
		sum += (uint32_t)(p[0] | p[1] << 8);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += p[0];
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t net_checksum(const void *data, uint32_t len, uint32_t sum)
{
	return csum_fold(csum_partial(data, len, sum));
}

static void put_csum(uint8_t *p, uint16_t memory_order)
{
	p[0] = (uint8_t)memory_order;
	p[1] = (uint8_t)(memory_order >> 8);
}

/* UDP checksum over the pseudo-header (RFC 768) and the datagram. */
static uint16_t udp_checksum(uint32_t src, uint32_t dst, const uint8_t *udp, uint32_t len)
{
	uint8_t pseudo[12];

	put32(pseudo, src);
	put32(pseudo + 4, dst);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_UDP;
	put16(pseudo + 10, (uint16_t)len);
	return csum_fold(csum_partial(udp, len, csum_partial(pseudo, sizeof(pseudo), 0)));
}

/* ---- set-up and addresses ------------------------------------------------ */

void net_init(struct net_stack *s, struct virtio_net *nic, uint32_t ip)
{
	dma_zero(s, sizeof(*s));
	s->nic = nic;
	s->ip = ip;
	s->udp_csum_on_send = 1;
	s->ip_id = 1;
}

int net_parse_ip(const char *text, uint32_t *ip)
{
	uint32_t v = 0;

	for (unsigned part = 0; part < 4; part++) {
		uint32_t octet = 0;
		unsigned digits = 0;

		for (; *text >= '0' && *text <= '9' && digits < 4; text++, digits++)
			octet = octet * 10 + (uint32_t)(*text - '0');
		if (!digits || octet > 255 || (part < 3 && *text++ != '.'))
			return -1;
		v = v << 8 | octet;
	}
	if (*text)
		return -1;
	*ip = v;
	return 0;
}

uint32_t net_cmdline_ip(const char *cmdline, const char *key, uint32_t def)
{
	char buf[32];
	uint32_t ip;

	if (cmdline_get(cmdline, key, buf, sizeof(buf)))
		return def;
	if (net_parse_ip(buf, &ip))
		test_abort("command line", "%s=%s is not an IPv4 address", key, buf);
	return ip;
}

/* ---- ARP ------------------------------------------------------------------ */

static const uint8_t *arp_lookup(struct net_stack *s, uint32_t ip)
{
	for (unsigned i = 0; i < NET_ARP_CACHE; i++)
		if (s->arp[i].ip == ip && ip)
			return s->arp[i].mac;
	return NULL;
}

static void arp_learn(struct net_stack *s, uint32_t ip, const uint8_t *mac)
{
	uint8_t *slot;

	for (unsigned i = 0; i < NET_ARP_CACHE; i++)
		if (s->arp[i].ip == ip) {
			copy(s->arp[i].mac, mac, 6);
			return;
		}
	s->arp[s->arp_next].ip = ip;
	slot = s->arp[s->arp_next].mac;
	copy(slot, mac, 6);
	s->arp_next = (s->arp_next + 1) % NET_ARP_CACHE;
}

/* Ethernet header into a TX frame area. */
static void eth_header(struct net_stack *s, uint8_t *f, const uint8_t *dst, uint16_t type)
{
	copy(f, dst, 6);
	copy(f + 6, s->nic->mac, 6);
	put16(f + 12, type);
}

static int arp_send(struct net_stack *s, unsigned pair, uint16_t op, const uint8_t *dst_mac,
		    const uint8_t *target_mac, uint32_t target_ip)
{
	uint8_t *f = virtio_net_tx_begin(s->nic, pair), *a;

	if (!f)
		return -1;
	eth_header(s, f, dst_mac, ETH_P_ARP);
	a = f + NET_ETH_HLEN;
	put16(a, 1);         /* htype Ethernet */
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	copy(a + 8, s->nic->mac, 6);
	put32(a + 14, s->ip);
	copy(a + 18, target_mac, 6);
	put32(a + 24, target_ip);
	/* 60 bytes: the Ethernet minimum without FCS (IEEE 802.3 §3.2.8). */
	dma_zero(a + ARP_LEN, 60 - NET_ETH_HLEN - ARP_LEN);
	return virtio_net_tx_commit(s->nic, pair, 60);
}

int net_arp_request(struct net_stack *s, uint32_t ip)
{
	static const uint8_t zero[6];

	return arp_send(s, 0, ARP_REQUEST, broadcast, zero, ip);
}

static void arp_input(struct net_stack *s, unsigned pair, const uint8_t *a, uint32_t len)
{
	uint32_t sender_ip, target_ip;

	if (len < ARP_LEN || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
		s->rx_dropped++;
		return;
	}
	sender_ip = get32(a + 14);
	target_ip = get32(a + 24);
	if (target_ip != s->ip) {
		s->rx_other++;
		return;
	}
	arp_learn(s, sender_ip, a + 8);
	if (get16(a + 6) == ARP_REQUEST && arp_send(s, pair, ARP_REPLY, a + 8, a + 8, sender_ip) == 0)
		s->arp_answered++;
}

int net_arp_resolve(struct net_stack *s, uint32_t ip, uint8_t mac[6], uint64_t timeout_us)
{
	struct stopwatch sw;
	uint64_t next = 0;
	const uint8_t *m;

	stopwatch_start(&sw);
	while (!(m = arp_lookup(s, ip))) {
		uint64_t now = stopwatch_us(&sw);

		if (now >= timeout_us)
			return -1;
		if (now >= next) {
			net_arp_request(s, ip);
			next = now + 200000;
		}
		net_poll(s, 20000);
	}
	copy(mac, m, 6);
	return 0;
}

/* ---- IPv4 ------------------------------------------------------------------ */

/* Ethernet + IPv4 header for a payload of len bytes; returns the payload. */
static uint8_t *ip_begin(struct net_stack *s, unsigned pair, const uint8_t *dst_mac,
			 uint32_t dst_ip, uint8_t proto, uint32_t len)
{
	uint8_t *f = virtio_net_tx_begin(s->nic, pair), *ip;

	if (!f)
		return NULL;
	eth_header(s, f, dst_mac, ETH_P_IP);
	ip = f + NET_ETH_HLEN;
	ip[0] = 0x45; /* version 4, 5 words */
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(NET_IP_HLEN + len));
	put16(ip + 4, s->ip_id++);
	put16(ip + 6, 0x4000); /* DF: we never fragment */
	ip[8] = IP_TTL;
	ip[9] = proto;
	put16(ip + 10, 0);
	put32(ip + 12, s->ip);
	put32(ip + 16, dst_ip);
	put_csum(ip + 10, net_checksum(ip, NET_IP_HLEN, 0));
	return ip + NET_IP_HLEN;
}

static int ip_commit(struct net_stack *s, unsigned pair, uint32_t len)
{
	uint32_t frame = NET_ETH_HLEN + NET_IP_HLEN + len;

	if (frame < 60) {
		uint8_t *f = virtio_net_tx_begin(s->nic, pair);

		dma_zero(f + frame, 60 - frame);
		frame = 60;
	}
	return virtio_net_tx_commit(s->nic, pair, frame);
}

static unsigned tx_pair(struct net_stack *s, unsigned pair)
{
	/* Only the pairs VQ_PAIRS_SET enabled carry traffic (§5.1.6.5.5). */
	return pair < s->nic->active_pairs && pair < s->nic->pairs ? pair : 0;
}

static void icmp_input(struct net_stack *s, unsigned pair, const uint8_t *src_mac, uint32_t src_ip,
		       const uint8_t *icmp, uint32_t len)
{
	uint8_t *out;

	if (len < 8 || net_checksum(icmp, len, 0) != 0) {
		s->rx_dropped++;
		return;
	}
	if (icmp[0] == ICMP_ECHO_REQUEST && icmp[1] == 0) {
		pair = tx_pair(s, pair);
		out = ip_begin(s, pair, src_mac, src_ip, IPPROTO_ICMP, len);
		if (!out)
			return;
		copy(out, icmp, len);
		out[0] = ICMP_ECHO_REPLY;
		put16(out + 2, 0);
		put_csum(out + 2, net_checksum(out, len, 0));
		if (ip_commit(s, pair, len) == 0)
			s->echo_answered++;
	} else if (icmp[0] == ICMP_ECHO_REPLY && get16(icmp + 4) == s->ping_id &&
		   get16(icmp + 6) == s->ping_seq) {
		s->ping_got = 1;
	} else {
		s->rx_other++;
	}
}

static void udp_input(struct net_stack *s, struct net_udp *d, uint32_t dst_ip, const uint8_t *udp,
		      uint32_t len)
{
	uint32_t ulen;

	if (len < NET_UDP_HLEN || (ulen = get16(udp + 4)) < NET_UDP_HLEN || ulen > len) {
		s->rx_dropped++;
		return;
	}
	/* RFC 768: a zero checksum means none was computed. */
	if (get16(udp + 6) && udp_checksum(d->src_ip, dst_ip, udp, ulen) != 0) {
		s->rx_dropped++;
		return;
	}
	d->dst_ip = dst_ip;
	d->src_port = get16(udp);
	d->dst_port = get16(udp + 2);
	d->data = udp + NET_UDP_HLEN;
	d->len = ulen - NET_UDP_HLEN;
	s->udp_received++;
	if (s->udp_rx)
		s->udp_rx(s, d);
}

static void ip_input(struct net_stack *s, unsigned pair, const uint8_t *src_mac, const uint8_t *ip,
		     uint32_t len)
{
	uint32_t ihl, total, src_ip, dst_ip;
	struct net_udp d;

	if (len < NET_IP_HLEN || ip[0] >> 4 != 4 || (ihl = (ip[0] & 0xfu) * 4u) < NET_IP_HLEN ||
	    (total = get16(ip + 2)) < ihl || total > len || net_checksum(ip, ihl, 0) != 0) {
		s->rx_dropped++;
		return;
	}
	/* No reassembly: MF set or a fragment offset means a fragment. */
	if (get16(ip + 6) & 0x3fff) {
		s->rx_dropped++;
		return;
	}
	src_ip = get32(ip + 12);
	dst_ip = get32(ip + 16);
	if (dst_ip != s->ip) {
		s->rx_other++;
		return;
	}
	if (ip[9] == IPPROTO_ICMP) {
		icmp_input(s, pair, src_mac, src_ip, ip + ihl, total - ihl);
	} else if (ip[9] == IPPROTO_UDP) {
		d.pair = pair;
		copy(d.src_mac, src_mac, 6);
		d.src_ip = src_ip;
		udp_input(s, &d, dst_ip, ip + ihl, total - ihl);
	} else {
		s->rx_other++;
	}
}

static void eth_input(struct net_stack *s, unsigned pair, const uint8_t *f, uint32_t len)
{
	uint16_t type;

	s->rx_frames++;
	if (len < NET_ETH_HLEN) {
		s->rx_dropped++;
		return;
	}
	if (!same6(f, s->nic->mac) && !same6(f, broadcast)) {
		s->rx_other++;
		return;
	}
	type = get16(f + 12);
	if (type == ETH_P_ARP)
		arp_input(s, pair, f + NET_ETH_HLEN, len - NET_ETH_HLEN);
	else if (type == ETH_P_IP)
		ip_input(s, pair, f + 6, f + NET_ETH_HLEN, len - NET_ETH_HLEN);
	else
		s->rx_other++; /* IPv6 neighbour discovery and the like */
}

unsigned net_poll(struct net_stack *s, uint64_t timeout_us)
{
	struct stopwatch sw;
	unsigned handled = 0;

	stopwatch_start(&sw);
	for (;;) {
		for (unsigned p = 0; p < s->nic->pairs; p++) {
			uint8_t *f;
			uint32_t len;

			/* a bounded batch per pair, so one busy pair does not starve */
			for (unsigned n = 0; n < 32 && virtio_net_recv(s->nic, p, &f, &len); n++) {
				eth_input(s, p, f, len);
				virtio_net_rx_release(s->nic, p);
				handled++;
			}
		}
		if (handled || stopwatch_us(&sw) >= timeout_us || virtio_needs_reset(&s->nic->dev))
			return handled;
	}
}

/* ---- ICMP echo and UDP ------------------------------------------------------ */

long net_ping(struct net_stack *s, uint32_t ip, uint16_t id, uint16_t seq, uint32_t len,
	      uint64_t timeout_us)
{
	uint8_t mac[6], *icmp;
	struct stopwatch sw;

	if (len > NET_UDP_MAX || net_arp_resolve(s, ip, mac, timeout_us))
		return -1;
	icmp = ip_begin(s, 0, mac, ip, IPPROTO_ICMP, 8 + len);
	if (!icmp)
		return -1;
	icmp[0] = ICMP_ECHO_REQUEST;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 4, id);
	put16(icmp + 6, seq);
	for (uint32_t i = 0; i < len; i++)
		icmp[8 + i] = (uint8_t)(i + seq);
	put_csum(icmp + 2, net_checksum(icmp, 8 + len, 0));
	s->ping_id = id;
	s->ping_seq = seq;
	s->ping_got = 0;
	stopwatch_start(&sw);
	if (ip_commit(s, 0, 8 + len))
		return -1;
	while (!s->ping_got) {
		if (stopwatch_us(&sw) >= timeout_us)
			return -1;
		net_poll(s, 20000);
	}
	return (long)stopwatch_us(&sw);
}

static int udp_send_mac(struct net_stack *s, unsigned pair, const uint8_t *mac, uint32_t ip,
			uint16_t sport, uint16_t dport, const void *data, uint32_t len)
{
	uint8_t *udp;

	if (len > NET_UDP_MAX)
		return -1;
	pair = tx_pair(s, pair);
	udp = ip_begin(s, pair, mac, ip, IPPROTO_UDP, NET_UDP_HLEN + len);
	if (!udp)
		return -1;
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)(NET_UDP_HLEN + len));
	put16(udp + 6, 0);
	copy(udp + NET_UDP_HLEN, data, len);
	if (s->udp_csum_on_send) {
		uint16_t c = udp_checksum(s->ip, ip, udp, NET_UDP_HLEN + len);

		put_csum(udp + 6, c ? c : 0xffff); /* RFC 768: 0 is sent as all ones */
	}
	return ip_commit(s, pair, NET_UDP_HLEN + len);
}

int net_udp_send(struct net_stack *s, unsigned pair, uint32_t ip, uint16_t sport, uint16_t dport,
		 const void *data, uint32_t len)
{
	uint8_t mac[6];

	if (net_arp_resolve(s, ip, mac, VIRTIO_NET_TIMEOUT_US))
		return -1;
	return udp_send_mac(s, pair, mac, ip, sport, dport, data, len);
}

int net_udp_reply(struct net_stack *s, const struct net_udp *to, const void *data, uint32_t len)
{
	return udp_send_mac(s, to->pair, to->src_mac, to->src_ip, to->dst_port, to->src_port, data,
			    len);
}
