// SPDX-License-Identifier: MIT
/*
 * isola-net device: the features and config (virtio 1.2 §5.1.3-4), the
 * receive filter and the transmit header check, the shared rate limiters,
 * the counters, a device reset, and the set-up that wires the hooks of the
 * other files (net_internal.h) into the back-end's ops.
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static const char *const net_drop_names[NET_DROP_REASONS] = {
    [NET_DROP_TX_HEADER] = "tx_short_header",	[NET_DROP_TX_TOO_BIG] = "tx_too_big",
    [NET_DROP_TX_MALFORMED] = "tx_bad_header",	[NET_DROP_TX_TAP] = "tx_tap_rejected",
    [NET_DROP_RX_TOO_BIG] = "rx_too_big",	[NET_DROP_RX_FILTERED] = "rx_filtered",
    [NET_DROP_RX_MALFORMED] = "rx_runt",	[NET_DROP_RX_STOPPED] = "rx_stopped",
    [NET_DROP_RX_BAD_HEADER] = "rx_bad_header", [NET_DROP_RX_READ_FAILED] = "rx_read_failed",
};

static uint64_t net_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- features, config, filter, header ----------------------------------- */

uint64_t net_features(const struct net *net)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		     (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_NET_F_MAC) |
		     (1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_NET_F_STATUS) |
		     (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CTRL_VQ) |
		     (1ull << VIRTIO_NET_F_CTRL_RX) | (1ull << VIRTIO_NET_F_CTRL_MAC_ADDR);

	/* MQ only with more than one pair: one pair needs no VQ_PAIRS_SET. */
	if (net->pairs > 1)
		f |= 1ull << VIRTIO_NET_F_MQ;
	if (net->offloads)
		f |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
		     (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
		     (1ull << VIRTIO_NET_F_GUEST_UFO) | (1ull << VIRTIO_NET_F_GUEST_ECN) |
		     (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
		     (1ull << VIRTIO_NET_F_HOST_UFO) | (1ull << VIRTIO_NET_F_HOST_ECN);
	return f;
}

/* §5.1.4: mac, status, max_virtqueue_pairs, mtu (little-endian). */
uint32_t net_get_config(void *device, uint8_t *config)
{
	struct net *net = device;
	uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = (uint16_t)net->pairs, mtu = net->mtu;

	pthread_mutex_lock(&net->filter_lock);
	memcpy(config + VIRTIO_NET_CONFIG_MAC, net->filter.mac, NET_ETH_ALEN);
	pthread_mutex_unlock(&net->filter_lock);
	memcpy(config + VIRTIO_NET_CONFIG_STATUS, &status, 2);
	memcpy(config + VIRTIO_NET_CONFIG_MAX_PAIRS, &pairs, 2);
	memcpy(config + VIRTIO_NET_CONFIG_MTU, &mtu, 2);
	return VIRTIO_NET_CONFIG_SIZE;
}

static bool mac_in(const uint8_t (*table)[NET_ETH_ALEN], unsigned n, const uint8_t *mac)
{
	for (unsigned i = 0; i < n; i++)
		if (memcmp(table[i], mac, NET_ETH_ALEN) == 0)
			return true;
	return false;
}

/*
 * §5.1.6.5.1-2: promiscuous takes everything; else the device's MAC, the
 * broadcast address, multicast with ALLMULTI or in the table, unicast in
 * the table ("SHOULD drop" the rest).  A table the driver overflowed
 * counts as "all" of its kind.
 */
bool net_filter_accepts(const struct net_filter *f, const uint8_t *dst)
{
	static const uint8_t broadcast[NET_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (f->promisc || memcmp(dst, f->mac, NET_ETH_ALEN) == 0 ||
	    memcmp(dst, broadcast, NET_ETH_ALEN) == 0)
		return true;
	if (dst[0] & 1)
		return f->allmulti || f->multi_overflow || mac_in(f->multi, f->nr_multi, dst);
	return f->uni_overflow || mac_in(f->uni, f->nr_uni, dst);
}

/*
 * §5.1.6.2.1: the driver sets NEEDS_CSUM only with CSUM, a GSO type only
 * with the matching HOST_* feature, ECN only with HOST_ECN.  The kernel
 * checks csum_start/csum_offset and the GSO fields again on its copy of the
 * header (the guest may rewrite ours after this check).
 */
int net_tx_check_header(const struct virtio_net_hdr *hdr, uint32_t frame_len, uint64_t features)
{
	uint8_t gso = hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (frame_len < NET_ETH_HLEN)
		return NET_DROP_TX_MALFORMED;
	if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    !net_has_feature(features, VIRTIO_NET_F_CSUM))
		return NET_DROP_TX_MALFORMED;
	/* §5.1.6.2.2: "The device MUST ignore flag bits that it does not
	 * recognize" (the tap's kernel side looks at NEEDS_CSUM only). */
	if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !net_has_feature(features, VIRTIO_NET_F_HOST_ECN))
		return NET_DROP_TX_MALFORMED;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return net_has_feature(features, VIRTIO_NET_F_HOST_TSO4) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return net_has_feature(features, VIRTIO_NET_F_HOST_TSO6) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	case VIRTIO_NET_HDR_GSO_UDP:
		return net_has_feature(features, VIRTIO_NET_F_HOST_UFO) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	}
	return NET_DROP_TX_MALFORMED;
}

/* ---- rate limiters and counters ----------------------------------------- */

/*
 * Pay for one frame of `bytes` from the direction's shared limiter: true,
 * or false with the wait (at most 1 s per round) in *wait_ms.  The lock
 * keeps the buckets whole when several rings pay at once.
 */
bool net_rate_pay(struct net *net, struct rate_limiter *rl, uint64_t bytes, int *wait_ms)
{
	uint64_t now, ms = 0;
	bool paid;

	if (rate_limiter_is_unlimited(rl))
		return true;
	now = net_now_ns();
	pthread_mutex_lock(&net->limiter_lock);
	paid = rate_limiter_consume(rl, bytes, now);
	if (!paid)
		ms = rate_limiter_wait_ms(rl, bytes, now);
	pthread_mutex_unlock(&net->limiter_lock);
	if (!paid)
		*wait_ms = ms > 1000 ? 1000 : (int)ms;
	return paid;
}

static void net_add_counters(struct net_counters *to, const struct net_counters *from)
{
	const uint64_t *src = (const uint64_t *)from;
	uint64_t *dst = (uint64_t *)to;

	for (size_t i = 0; i < sizeof(*from) / sizeof(uint64_t); i++)
		dst[i] += src[i];
}

void net_totals_add(struct net *net, struct net_counters *counters)
{
	pthread_mutex_lock(&net->totals_lock);
	net_add_counters(&net->totals, counters);
	pthread_mutex_unlock(&net->totals_lock);
	memset(counters, 0, sizeof(*counters));
}

void net_log_counters(struct net *net, const char *when)
{
	struct net_counters c;
	char drops[512];
	size_t at = 0;

	pthread_mutex_lock(&net->totals_lock);
	c = net->totals;
	memset(&net->totals, 0, sizeof(net->totals));
	pthread_mutex_unlock(&net->totals_lock);
	drops[0] = '\0';
	for (unsigned i = 0; i < NET_DROP_REASONS && at < sizeof(drops); i++)
		at += (size_t)snprintf(drops + at, sizeof(drops) - at, " %s=%llu",
				       net_drop_names[i], (unsigned long long)c.drops[i]);
	log_info("%s: rx %llu frames %llu bytes, tx %llu frames %llu bytes; drops:%s; waits: "
		 "rx_no_buffers=%llu rx_rate=%llu tx_rate=%llu; control ok=%llu err=%llu",
		 when, (unsigned long long)c.rx_frames, (unsigned long long)c.rx_bytes,
		 (unsigned long long)c.tx_frames, (unsigned long long)c.tx_bytes, drops,
		 (unsigned long long)c.rx_no_buffers, (unsigned long long)c.rx_rate_waits,
		 (unsigned long long)c.tx_rate_waits, (unsigned long long)c.ctrl_ok,
		 (unsigned long long)c.ctrl_err);
}

/* The front-end went away or reset the device (every ring is stopped). */
static void net_reset(void *device)
{
	struct net *net = device;

	net_log_counters(net, "front-end gone or device reset");
	net_filter_reset(net);
	/* Plain frames again until the next driver says what it takes
	 * (§5.1.6.4.1: what a driver did not negotiate it must not get). */
	for (unsigned k = 0; k < net->pairs; k++) {
		int ret = net->tap_fds[k] >= 0 ? net_set_offload(net->tap_fds[k], 0) : 0;

		if (ret < 0)
			log_error("tap %s: TUNSETOFFLOAD 0: %s", net->tap_name, strerror(-ret));
	}
}

/* ---- set-up -------------------------------------------------------------- */

/* A locally administered unicast MAC from the tap's name (FNV-1a). */
static void net_default_mac(struct net *net)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = net->tap_name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	net->mac[0] = 0x02;
	for (unsigned i = 1; i < NET_ETH_ALEN; i++)
		net->mac[i] = (uint8_t)(h >> (8 * i));
}

int net_init(struct net *net, char *err, size_t errlen)
{
	if (net->pairs < 1 || net->pairs > NET_MAX_PAIRS) {
		snprintf(err, errlen, "--queues %u: want 1 to %u", net->pairs, NET_MAX_PAIRS);
		return -EINVAL;
	}
	if (!net->mac_given)
		net_default_mac(net);
	pthread_mutex_init(&net->filter_lock, NULL);
	pthread_mutex_init(&net->totals_lock, NULL);
	pthread_mutex_init(&net->tap_lock, NULL);
	pthread_mutex_init(&net->limiter_lock, NULL);
	/* The device's limiters, full once, here and never again (not at a
	 * ring's start, nor at a device reset: Firecracker's buckets live as
	 * long as the interface). */
	net->rx_limiter = net->rx_rate;
	net->tx_limiter = net->tx_rate;
	rate_limiter_start(&net->rx_limiter, net_now_ns());
	rate_limiter_start(&net->tx_limiter, net_now_ns());
	for (unsigned k = 0; k < NET_MAX_PAIRS; k++)
		net->tap_fds[k] = -1;
	for (unsigned i = 0; i < NET_MAX_QUEUES; i++) {
		net->queues[i].net = net;
		net->queues[i].index = i;
		net->queues[i].limiter = i % 2 == 0 ? &net->rx_limiter : &net->tx_limiter;
		net->queues[i].tap_fd = i / 2 < net->pairs ? net->tap_fds[i / 2] : -1;
	}
	net_filter_reset(net);
	net->ops = (struct vhost_user_backend_ops){
	    .name = "isola-net",
	    .features = net_features(net),
	    .num_queues = 2 * net->pairs + 1,
	    .get_config = net_get_config,
	    .reset = net_reset,
	};
	net_queue_ops(&net->ops);
	net_state_ops(&net->ops);
	return 0;
}

int net_alloc_queues(struct net *net, char *err, size_t errlen)
{
	for (unsigned i = 0; i < 2 * net->pairs + 1; i++) {
		struct net_queue *nq = &net->queues[i];

		nq->tap_fd = i / 2 < net->pairs ? net->tap_fds[i / 2] : -1;
		/* the control queue's command buffer and chain; receive queue 2
		 * gets a chain too: it is the control queue when the driver
		 * declines MQ (net_ctrl_index) */
		if (i == 2 && net->pairs > 1) {
			nq->tx_segs = calloc(NET_TX_SEGS, sizeof(*nq->tx_segs));
			if (!nq->tx_segs)
				goto oom;
		}
		if (i == 2 * net->pairs) {
			nq->bounce = malloc(NET_MAX_PACKET);
			nq->tx_segs = calloc(NET_TX_SEGS, sizeof(*nq->tx_segs));
			if (!nq->bounce || !nq->tx_segs)
				goto oom;
			continue;
		}
		if (i % 2 == 0) {
			nq->bounce = malloc(NET_MAX_PACKET);
			nq->rx = calloc(NET_RX_MAX_CHAINS, sizeof(*nq->rx));
			nq->recovered = calloc(NET_RX_MAX_CHAINS, sizeof(*nq->recovered));
			if (!nq->bounce || !nq->rx || !nq->recovered)
				goto oom;
		} else {
			nq->tx_segs = calloc(NET_TX_SEGS, sizeof(*nq->tx_segs));
			nq->tx_iov = calloc(NET_TX_SEGS, sizeof(*nq->tx_iov));
			if (!nq->tx_segs || !nq->tx_iov)
				goto oom;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory for the queues' buffers");
	return -ENOMEM;
}

unsigned net_fds(const struct net *net, int *fds, unsigned max)
{
	unsigned n = 0;

	for (unsigned k = 0; k < net->pairs && n < max; k++)
		if (net->tap_fds[k] >= 0)
			fds[n++] = net->tap_fds[k];
	return n;
}

void net_close(struct net *net)
{
	for (unsigned k = 0; k < NET_MAX_PAIRS; k++) {
		if (net->tap_fds[k] >= 0)
			close(net->tap_fds[k]);
		net->tap_fds[k] = -1;
	}
	for (unsigned i = 0; i < NET_MAX_QUEUES; i++) {
		struct net_queue *nq = &net->queues[i];

		free(nq->bounce);
		free(nq->rx);
		free(nq->recovered);
		free(nq->tx_segs);
		free(nq->tx_iov);
		nq->bounce = NULL;
		nq->rx = nq->recovered = NULL;
		nq->tx_segs = NULL;
		nq->tx_iov = NULL;
	}
}
