// SPDX-License-Identifier: MIT
/*
 * isola-net device: the tap, the features and config, and the receive and
 * transmit rings (virtio 1.2 §5.1.6).  The control queue is net_ctrl.c.
 *
 * Receive (§5.1.6.3-4): a ring reads its tap queue only while the guest has
 * buffers; without, it stops polling the tap and waits for a kick, so frames
 * wait in the tap's queue (backpressure).  Without MRG_RXBUF and without a
 * receive limiter, a frame is read straight into one chain (readv); else
 * into the queue's bounce buffer first, then spread over as many chains as
 * it needs (num_buffers, §5.1.6.4.2).  A chain popped but not filled is
 * given back (virtq_unpop), so nothing is pushed that holds no frame.
 *
 * Transmit (§5.1.6.2): each chain is the 12-byte header and the frame,
 * written to the tap with writev straight from guest memory.
 */
#define _GNU_SOURCE
#include "servers/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define NET_BATCH 256 /* frames per handle_queue call before others get a turn */

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

static bool has(uint64_t features, unsigned bit)
{
	return features & (1ull << bit);
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
	if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(features, VIRTIO_NET_F_CSUM))
		return NET_DROP_TX_MALFORMED;
	/* §5.1.6.2.2: "The device MUST ignore flag bits that it does not
	 * recognize" (the tap's kernel side looks at NEEDS_CSUM only). */
	if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !has(features, VIRTIO_NET_F_HOST_ECN))
		return NET_DROP_TX_MALFORMED;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return has(features, VIRTIO_NET_F_HOST_TSO4) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return has(features, VIRTIO_NET_F_HOST_TSO6) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	case VIRTIO_NET_HDR_GSO_UDP:
		return has(features, VIRTIO_NET_F_HOST_UFO) && hdr->gso_size
			   ? 0
			   : NET_DROP_TX_MALFORMED;
	}
	return NET_DROP_TX_MALFORMED;
}

/* ---- the tap ------------------------------------------------------------- */

/* TUNSETOFFLOAD from the driver's GUEST_* features: what the tap may hand
 * the guest (partial checksums, TSO/UFO super-frames). */
static int net_set_offload(int fd, uint64_t features)
{
	unsigned long flags = 0;

	if (has(features, VIRTIO_NET_F_GUEST_CSUM)) {
		flags |= TUN_F_CSUM;
		if (has(features, VIRTIO_NET_F_GUEST_TSO4))
			flags |= TUN_F_TSO4;
		if (has(features, VIRTIO_NET_F_GUEST_TSO6))
			flags |= TUN_F_TSO6;
		if (has(features, VIRTIO_NET_F_GUEST_ECN) && (flags & (TUN_F_TSO4 | TUN_F_TSO6)))
			flags |= TUN_F_TSO_ECN;
		if (has(features, VIRTIO_NET_F_GUEST_UFO))
			flags |= TUN_F_UFO;
	}
	if (ioctl(fd, TUNSETOFFLOAD, flags) == 0)
		return 0;
	/* Kernels without UFO towards the guest refuse TUN_F_UFO: without it,
	 * the tap segments UDP itself. */
	if (errno == EINVAL && (flags & TUN_F_UFO) &&
	    ioctl(fd, TUNSETOFFLOAD, flags & ~(unsigned long)TUN_F_UFO) == 0)
		return 0;
	return -errno;
}

static int net_tap_error(const struct net *net, int err, char *msg, size_t len)
{
	const char *name = net->tap_name;

	switch (err) {
	case ENOENT:
	case ENODEV:
		snprintf(msg, len,
			 "/dev/net/tun: %s: load the tun module (modprobe tun) or give the "
			 "sandbox /dev/net/tun",
			 strerror(err));
		break;
	case EBUSY:
		snprintf(msg, len,
			 "tap %s is in use by another process (a single-queue tap has one "
			 "user): stop it, or make another tap",
			 name);
		break;
	case EPERM:
	case EACCES:
		snprintf(msg, len,
			 "tap %s: %s: run as root (CAP_NET_ADMIN) or make the tap with "
			 "`ip tuntap add %s mode tap user UID`",
			 name, strerror(err), name);
		break;
	case EINVAL:
		if (net->pairs > 1)
			snprintf(msg, len,
				 "tap %s refused %u queues: make it multi-queue, `ip tuntap add %s "
				 "mode tap multi_queue`, or use --queues 1",
				 name, net->pairs, name);
		else
			snprintf(msg, len,
				 "tap %s refused to attach: it must be a tap (not a tun) made "
				 "without multi_queue for --queues 1",
				 name);
		break;
	default:
		snprintf(msg, len, "tap %s: %s", name, strerror(err));
	}
	return -err;
}

/*
 * TUNSETIFF, waiting out EBUSY for up to NET_TAP_BUSY_WAIT_MS: a
 * single-queue tap has one user, and the isola-net this one replaces (a
 * restart, a hand-over) may still be exiting, its fd not yet closed.
 * 0 or -errno.
 */
static int net_attach(int fd, struct ifreq *ifr)
{
	const struct timespec pause = {.tv_nsec = NET_TAP_BUSY_PAUSE_MS * 1000000l};

	for (unsigned waited = 0;; waited += NET_TAP_BUSY_PAUSE_MS) {
		if (ioctl(fd, TUNSETIFF, ifr) == 0)
			return 0;
		if (errno != EBUSY || waited >= NET_TAP_BUSY_WAIT_MS)
			return -errno;
		nanosleep(&pause, NULL);
	}
}

int net_open_tap(struct net *net, char *err, size_t errlen)
{
	for (unsigned k = 0; k < NET_MAX_PAIRS; k++)
		net->tap_fds[k] = -1;
	/* TUNSETIFF would create a missing tap (with CAP_NET_ADMIN): the
	 * contract is that isola-net only attaches to one that exists. */
	if (if_nametoindex(net->tap_name) == 0) {
		snprintf(err, errlen,
			 "tap %s does not exist: create it with `ip tuntap add %s mode tap%s` "
			 "in this network namespace",
			 net->tap_name, net->tap_name, net->pairs > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	for (unsigned k = 0; k < net->pairs; k++) {
		struct ifreq ifr;
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		int vnet_hdr = VIRTIO_NET_HDR_SIZE;

		if (fd < 0)
			return net_tap_error(net, errno == ENOENT ? ENOENT : errno, err, errlen);
		net->tap_fds[k] = fd;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", net->tap_name);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (net->pairs > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		int ret = net_attach(fd, &ifr);
		if (ret < 0)
			return net_tap_error(net, -ret, err, errlen);
		if (ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr) < 0) {
			snprintf(err, errlen, "tap %s: TUNSETVNETHDRSZ 12: %s", net->tap_name,
				 strerror(errno));
			return -errno;
		}
		/* Plain frames until a driver says what it takes. */
		ret = net_set_offload(fd, 0);
		if (ret < 0) {
			snprintf(err, errlen, "tap %s: TUNSETOFFLOAD: %s", net->tap_name,
				 strerror(-ret));
			return ret;
		}
		net->tap_attached[k] = true;
	}
	return 0;
}

/*
 * Tap queue k takes frames only while its receive ring runs and pair k is
 * active (§5.1.6.5.5: before VQ_PAIRS_SET only receiveq1 gets packets).  A
 * front-end that keeps the control queue itself (QEMU: it never configures
 * ring 2N) chooses pairs by enabling rings instead: then every running ring
 * counts.
 */
void net_tap_sync(struct net *net, bool ctrl)
{
	unsigned limit;

	if (net->pairs == 1)
		return; /* a single-queue tap cannot detach */
	pthread_mutex_lock(&net->tap_lock);
	limit = ctrl ? net->active_pairs : net->pairs;
	for (unsigned k = 0; k < net->pairs; k++) {
		bool want = k < limit && net->queues[2 * k].rx_started;
		struct ifreq ifr;

		if (want == net->tap_attached[k] || net->tap_fds[k] < 0)
			continue;
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = want ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
		if (ioctl(net->tap_fds[k], TUNSETQUEUE, &ifr) < 0)
			log_error("tap %s queue %u: %s: %s", net->tap_name, k,
				  want ? "attach" : "detach", strerror(errno));
		else
			net->tap_attached[k] = want;
	}
	pthread_mutex_unlock(&net->tap_lock);
}

/*
 * The tap was deleted (`ip link del`, or its namespace went away): tun
 * then answers every poll with POLLERR and every read and write with
 * EBADFD, for good, so the rings would spin.  One line, and the server
 * ends (main.c, through net->tap_gone) with a failure status: the core
 * restarts it, the restart cannot attach to a missing tap, and after the
 * restart policy's failed starts the device is given up (NEEDS_RESET,
 * docs/net.md).  A tap set down is not gone: its writes fail with EIO and
 * are counted (tx_tap_rejected).
 */
int net_tap_lost(struct net *net)
{
	if (!atomic_exchange(&net->tap_lost, true)) {
		log_error("tap %s is gone (deleted?); isola-net stops", net->tap_name);
		if (net->tap_gone)
			net->tap_gone(net);
	}
	return -ENODEV;
}

/* ---- receive ------------------------------------------------------------- */

static bool net_has_ctrl(const struct net *net, const struct vhost_user_backend *be);

static void net_filter_refresh(struct net *net, struct net_queue *nq)
{
	unsigned gen = atomic_load_explicit(&net->filter_gen, memory_order_acquire);

	/* A flag, not a reserved generation: filter_gen wraps to any value. */
	if (nq->filter_synced && gen == nq->filter_gen)
		return;
	pthread_mutex_lock(&net->filter_lock);
	nq->filter = net->filter;
	nq->filter_gen = atomic_load_explicit(&net->filter_gen, memory_order_relaxed);
	nq->filter_synced = true;
	pthread_mutex_unlock(&net->filter_lock);
}

/* Take the next receive chain: a recovered one first, else pop.  1, 0 if
 * none, -EIO if the ring broke. */
static int net_rx_take(struct net_queue *nq, struct virtq *vq)
{
	struct net_rx_chain *slot;
	int r;

	if (nq->nr_rx == NET_RX_MAX_CHAINS)
		return 0;
	slot = &nq->rx[nq->nr_rx];
	if (nq->next_recovered < nq->nr_recovered) {
		*slot = nq->recovered[nq->next_recovered++];
		slot->chain.segments = slot->segs;
		nq->nr_rx++;
		return 1;
	}
	virtq_chain_init(&slot->chain, slot->segs, NET_RX_CHAIN_SEGS);
	slot->recovered = false;
	r = virtq_pop(vq, &slot->chain);
	if (r <= 0)
		return r;
	/* §5.1.6.3.1: receive buffers are device-writable. */
	if (slot->chain.nr_readable)
		return virtq_fail(vq, "receive chain %u has device-readable descriptors",
				  slot->chain.head);
	nq->nr_rx++;
	return 1;
}

/* Give back every held chain, newest first (they were taken in order). */
static void net_rx_give_back(struct net_queue *nq, struct virtq *vq)
{
	while (nq->nr_rx > 0) {
		struct net_rx_chain *slot = &nq->rx[--nq->nr_rx];

		if (slot->recovered)
			nq->next_recovered--;
		else
			virtq_unpop(vq, slot->chain.head);
	}
}

/* Another chain, asking for a kick when there is none: 1, 0 none (kick
 * wanted), -EIO. */
static int net_rx_take_or_wait(struct net_queue *nq, struct virtq *vq)
{
	int r = net_rx_take(nq, vq);

	if (r != 0 || nq->nr_rx == NET_RX_MAX_CHAINS)
		return r;
	if (virtq_enable_notify(vq)) {
		virtq_disable_notify(vq);
		r = net_rx_take(nq, vq);
		if (r != 0)
			return r;
	}
	nq->rx_need_kick = true;
	nq->counters.rx_no_buffers++;
	return 0;
}

/*
 * Pay for one frame of `bytes` from the direction's shared limiter: true,
 * or false with the wait (at most 1 s per round) in *wait_ms.  The lock
 * keeps the buckets whole when several rings pay at once.
 */
static bool net_rate_pay(struct net *net, struct rate_limiter *rl, uint64_t bytes, int *wait_ms)
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

static void net_rx_count(struct net_queue *nq, uint32_t len)
{
	nq->counters.rx_frames++;
	nq->counters.rx_bytes += len - VIRTIO_NET_HDR_SIZE;
}

static unsigned net_iov(const struct virtq_chain *c, uint32_t first, struct iovec *iov)
{
	unsigned n = 0;

	for (uint32_t i = first; i < c->nr_segments; i++)
		iov[n++] = (struct iovec){c->segments[i].host, c->segments[i].len};
	return n;
}

/* Copy out of a chain's writable bytes (what the tap wrote there). */
static void net_peek_written(const struct virtq_chain *c, uint32_t offset, void *dst, uint32_t len)
{
	uint8_t *out = dst;

	for (uint32_t i = c->nr_readable; i < c->nr_segments && len; i++) {
		const struct virtq_segment *s = &c->segments[i];

		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		uint32_t n = s->len - offset < len ? s->len - offset : len;
		memcpy(out, (uint8_t *)s->host + offset, n);
		out += n;
		len -= n;
		offset = 0;
	}
}

/*
 * §5.1.6.4.1 and the negotiated features against what the tap wrote in a
 * frame's header: the tap sets DATA_VALID on its own, and "If
 * VIRTIO_NET_F_GUEST_CSUM is not negotiated, the device MUST set flags to
 * zero"; a GSO type the driver did not negotiate (a frame queued in the tap
 * before a reset narrowed TUNSETOFFLOAD) must not reach it.  Fixes flags
 * in *hdr; returns NET_DROP_REASONS (deliver) or the drop reason.
 */
static enum net_drop net_rx_check_header(struct virtio_net_hdr *hdr, uint64_t features)
{
	bool ecn = hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN;
	bool ok;

	if (!has(features, VIRTIO_NET_F_GUEST_CSUM))
		hdr->flags = 0;
	switch (hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		ok = !ecn;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = has(features, VIRTIO_NET_F_GUEST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = has(features, VIRTIO_NET_F_GUEST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		ok = has(features, VIRTIO_NET_F_GUEST_UFO);
		break;
	default:
		ok = false;
	}
	if (ecn && !has(features, VIRTIO_NET_F_GUEST_ECN))
		ok = false;
	return ok ? NET_DROP_REASONS : NET_DROP_RX_BAD_HEADER;
}

/* A read from the tap failed: EAGAIN, nothing there (0); EBADFD, the tap
 * was deleted (net_tap_lost, -ENODEV); anything else (EINVAL for a chain
 * shorter than the vnet header) and tun has already freed the frame:
 * counted (1, handled). */
static int net_rx_read_failed(struct net_queue *nq, int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return 0;
	if (err == EBADFD)
		return net_tap_lost(nq->net);
	nq->counters.drops[NET_DROP_RX_READ_FAILED]++;
	return 1;
}

/*
 * §5.1.6.5.5: once VQ_PAIRS_SET is acked, a deactivated pair's receive
 * queue gets no more frames, one read from the tap just before included.
 * With the front-end serving the control queue through us, returns whether
 * pair k is active with tap_lock held (the command changes active_pairs
 * under it before its ack, so a frame pushed under it was pushed before the
 * ack); the caller pushes, then calls net_rx_pair_done.  A single pair is
 * always active, and without our control queue every running ring counts.
 */
static bool net_rx_pair_active(struct net_queue *nq)
{
	struct net *net = nq->net;

	if (net->pairs == 1 || !nq->rx_ctrl)
		return true;
	pthread_mutex_lock(&net->tap_lock);
	if (nq->index / 2 < net->active_pairs)
		return true;
	pthread_mutex_unlock(&net->tap_lock);
	nq->counters.drops[NET_DROP_RX_STOPPED]++;
	return false;
}

static void net_rx_pair_done(struct net_queue *nq)
{
	if (nq->net->pairs > 1 && nq->rx_ctrl)
		pthread_mutex_unlock(&nq->net->tap_lock);
}

/*
 * Straight into one chain (no MRG_RXBUF, no limiter).  1 a frame was
 * handled (delivered or dropped), 0 none on the tap or no buffer, -EIO
 * the ring broke, -ENODEV the tap is gone.
 */
static int net_rx_direct(struct net_queue *nq, struct virtq *vq, uint64_t features)
{
	struct iovec iov[NET_RX_CHAIN_SEGS];
	struct virtio_net_hdr hdr;
	uint8_t dst[NET_ETH_ALEN];
	uint16_t one = 1;
	int r = net_rx_take_or_wait(nq, vq);

	if (r <= 0)
		return r;
	const struct virtq_chain *c = &nq->rx[0].chain;
	ssize_t n = readv(nq->tap_fd, iov, (int)net_iov(c, 0, iov));
	if (n < 0) {
		int err = errno;

		net_rx_give_back(nq, vq);
		return net_rx_read_failed(nq, err);
	}
	/* The tap reports the whole frame's length even when it did not fit
	 * (§5.1.6.3.1: without MRG_RXBUF one chain holds the whole frame). */
	enum net_drop drop = NET_DROP_REASONS;
	if ((size_t)n > c->writable_bytes)
		drop = NET_DROP_RX_TOO_BIG;
	else if (n < VIRTIO_NET_HDR_SIZE + NET_ETH_HLEN)
		drop = NET_DROP_RX_MALFORMED;
	else {
		net_peek_written(c, 0, &hdr, sizeof(hdr));
		net_peek_written(c, VIRTIO_NET_HDR_SIZE, dst, sizeof(dst));
		drop = net_rx_check_header(&hdr, features);
		if (drop == NET_DROP_REASONS && !net_filter_accepts(&nq->filter, dst))
			drop = NET_DROP_RX_FILTERED;
	}
	if (drop != NET_DROP_REASONS) {
		nq->counters.drops[drop]++;
		net_rx_give_back(nq, vq); /* reused for the next frame */
		return 1;
	}
	hdr.num_buffers = one;
	virtq_chain_write(c, 0, &hdr, sizeof(hdr));
	if (!net_rx_pair_active(nq)) {
		net_rx_give_back(nq, vq);
		return 1;
	}
	nq->nr_rx = 0;
	r = virtq_push(vq, c->head, (uint32_t)n);
	net_rx_pair_done(nq);
	if (r < 0)
		return -EIO;
	net_rx_count(nq, (uint32_t)n);
	return 1;
}

/* Copy the bounced frame over the held chains and push them. */
static int net_rx_deliver(struct net_queue *nq, struct virtq *vq)
{
	struct virtq_used_elem used[NET_RX_MAX_CHAINS];
	uint32_t done = 0;
	uint16_t nr = (uint16_t)nq->nr_rx;
	int r;

	memcpy(nq->bounce + offsetof(struct virtio_net_hdr, num_buffers), &nr, sizeof(nr));
	for (unsigned i = 0; i < nq->nr_rx; i++) {
		const struct virtq_chain *c = &nq->rx[i].chain;
		uint32_t n = nq->frame_len - done < c->writable_bytes ? nq->frame_len - done
								      : c->writable_bytes;

		virtq_chain_write(c, 0, nq->bounce + done, n);
		used[i] = (struct virtq_used_elem){.id = c->head, .len = n};
		done += n;
	}
	if (!net_rx_pair_active(nq)) {
		nq->frame_len = 0;
		net_rx_give_back(nq, vq);
		return 1;
	}
	r = virtq_push_batch(vq, used, nq->nr_rx);
	net_rx_pair_done(nq);
	if (r < 0)
		return -EIO;
	net_rx_count(nq, nq->frame_len);
	nq->nr_rx = 0;
	nq->frame_len = 0;
	return 1;
}

/* Through the bounce buffer: 1 handled, 0 nothing to do now, -EIO,
 * -ENODEV; nq->rx_wait_rate with the wait in *wait_ms. */
static int net_rx_bounced(struct net_queue *nq, struct virtq *vq, uint64_t features, int *wait_ms)
{
	bool mrg = has(features, VIRTIO_NET_F_MRG_RXBUF);

	if (nq->frame_len == 0) {
		/* Read only when the guest has a buffer: else frames wait in the
		 * tap (backpressure).  The chain is given back until the frame's
		 * size is known. */
		int r = net_rx_take_or_wait(nq, vq);
		if (r <= 0)
			return r;
		net_rx_give_back(nq, vq);
		ssize_t n = read(nq->tap_fd, nq->bounce, NET_MAX_PACKET);
		if (n < 0)
			return net_rx_read_failed(nq, errno);
		/* tun returns the frame's whole length, also when it was cut to
		 * the buffer: what is past the bounce buffer was never read */
		if (n > NET_MAX_PACKET) {
			nq->counters.drops[NET_DROP_RX_TOO_BIG]++;
			return 1;
		}
		if (n < VIRTIO_NET_HDR_SIZE + NET_ETH_HLEN) {
			nq->counters.drops[NET_DROP_RX_MALFORMED]++;
			return 1;
		}
		enum net_drop drop =
		    net_rx_check_header((struct virtio_net_hdr *)nq->bounce, features);
		if (drop == NET_DROP_REASONS &&
		    !net_filter_accepts(&nq->filter, nq->bounce + VIRTIO_NET_HDR_SIZE))
			drop = NET_DROP_RX_FILTERED;
		if (drop != NET_DROP_REASONS) {
			nq->counters.drops[drop]++;
			return 1;
		}
		nq->frame_len = (uint32_t)n;
		nq->frame_paid = false;
	}
	if (!nq->frame_paid) {
		if (!net_rate_pay(nq->net, nq->limiter, nq->frame_len - VIRTIO_NET_HDR_SIZE,
				  wait_ms)) {
			nq->rx_wait_rate = true;
			nq->counters.rx_rate_waits++;
			return 0;
		}
		nq->frame_paid = true;
	}
	uint32_t capacity = 0;
	for (unsigned i = 0; i < nq->nr_rx; i++)
		capacity += nq->rx[i].chain.writable_bytes;
	while (capacity < nq->frame_len) {
		if (nq->nr_rx == (mrg ? NET_RX_MAX_CHAINS : 1u)) {
			/* §5.1.6.3.1 / .4.2: the frame does not fit what the guest gives */
			nq->counters.drops[NET_DROP_RX_TOO_BIG]++;
			nq->frame_len = 0;
			net_rx_give_back(nq, vq);
			return 1;
		}
		int r = net_rx_take_or_wait(nq, vq);
		if (r < 0)
			return r;
		if (r == 0) {
			net_rx_give_back(nq, vq); /* the frame waits for buffers */
			return 0;
		}
		capacity += nq->rx[nq->nr_rx - 1].chain.writable_bytes;
	}
	return net_rx_deliver(nq, vq);
}

static int net_handle_rx(struct net *net, struct net_queue *nq, struct vhost_user_backend_queue *q)
{
	uint64_t features = q->backend->acked_features;
	bool mrg = has(features, VIRTIO_NET_F_MRG_RXBUF);
	bool direct = !mrg && rate_limiter_is_unlimited(nq->limiter);
	bool pushed = false;
	int wait = -1, r = 0;

	nq->rx_need_kick = nq->rx_wait_rate = false;
	nq->rx_ctrl = net_has_ctrl(net, q->backend);
	net_filter_refresh(net, nq);
	virtq_disable_notify(&q->vq);
	for (unsigned i = 0; i < NET_BATCH; i++) {
		r = direct && nq->frame_len == 0 ? net_rx_direct(nq, &q->vq, features)
						 : net_rx_bounced(nq, &q->vq, features, &wait);
		if (r <= 0)
			break;
		pushed = true;
	}
	if (r > 0)
		wait = 0; /* more may wait on the tap: come back after the others */
	if (!nq->rx_need_kick && r >= 0)
		virtq_enable_notify(&q->vq);
	if (pushed)
		vhost_user_backend_notify(q);
	return wait;
}

/* ---- transmit ------------------------------------------------------------ */

/* Check and send tx_chain: 1 done (sent or dropped: push it), 0 held
 * (limiter or a full tap; *wait_ms), -EIO the ring broke. */
static int net_tx_one(struct net_queue *nq, struct virtq *vq, uint64_t features, int *wait_ms)
{
	const struct virtq_chain *c = &nq->tx_chain;
	struct virtio_net_hdr hdr;
	int drop;

	/* §5.1.6.2: a transmit chain is device-readable only. */
	if (c->nr_segments != c->nr_readable)
		return virtq_fail(vq, "transmit chain %u has device-writable descriptors", c->head);
	if (c->readable_bytes < VIRTIO_NET_HDR_SIZE) {
		nq->counters.drops[NET_DROP_TX_HEADER]++;
		return 1;
	}
	uint32_t frame = c->readable_bytes - VIRTIO_NET_HDR_SIZE;
	if (frame > NET_MAX_FRAME) {
		nq->counters.drops[NET_DROP_TX_TOO_BIG]++;
		return 1;
	}
	virtq_chain_read(c, 0, &hdr, sizeof(hdr));
	drop = net_tx_check_header(&hdr, frame, features);
	if (drop) {
		nq->counters.drops[drop]++;
		return 1;
	}
	if (!nq->tx_paid) {
		if (!net_rate_pay(nq->net, nq->limiter, frame, wait_ms)) {
			nq->counters.tx_rate_waits++;
			return 0;
		}
		nq->tx_paid = true;
	}
	struct iovec *iov = nq->tx_iov;
	ssize_t n = writev(nq->tap_fd, iov, (int)net_iov(c, 0, iov));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		nq->tx_wait_tap = true;
		return 0;
	}
	if (n < 0 && errno == EBADFD) {
		net_tap_lost(nq->net); /* held: queue_wait stops the ring */
		return 0;
	}
	nq->tx_paid = false;
	if (n < 0) {
		nq->counters.drops[NET_DROP_TX_TAP]++; /* EINVAL: the kernel's header checks */
		return 1;
	}
	nq->counters.tx_frames++;
	nq->counters.tx_bytes += frame;
	return 1;
}

static int net_handle_tx(struct net_queue *nq, struct vhost_user_backend_queue *q)
{
	uint64_t features = q->backend->acked_features;
	bool pushed = false;
	int wait = -1;

	nq->tx_wait_tap = false;
	virtq_disable_notify(&q->vq);
	for (unsigned i = 0; i < NET_BATCH; i++) {
		if (!nq->tx_held) {
			virtq_chain_init(&nq->tx_chain, nq->tx_segs, NET_TX_SEGS);
			int r = virtq_pop(&q->vq, &nq->tx_chain);
			if (r < 0)
				break;
			if (r == 0) {
				if (!virtq_enable_notify(&q->vq))
					goto out;
				virtq_disable_notify(&q->vq);
				continue;
			}
			nq->tx_held = true;
		}
		int r = net_tx_one(nq, &q->vq, features, &wait);
		if (r <= 0)
			goto out;
		nq->tx_held = false;
		if (virtq_push(&q->vq, nq->tx_chain.head, 0) < 0)
			goto out;
		pushed = true;
	}
	wait = 0; /* a full batch: come back after the others */
out:
	if (pushed)
		vhost_user_backend_notify(q);
	return wait;
}

/* ---- the rings ----------------------------------------------------------- */

/* §5.1.2: the control queue is 2N with VIRTIO_NET_F_MQ negotiated, else 2
 * (a driver that declines MQ on a multi-pair device uses one pair). */
static unsigned net_ctrl_index(const struct net *net, uint64_t acked)
{
	return has(acked, VIRTIO_NET_F_MQ) ? 2 * net->pairs : 2;
}

static bool net_is_ctrl(const struct net *net, const struct vhost_user_backend_queue *q)
{
	return q->index == net_ctrl_index(net, q->backend->acked_features);
}

/* §5.1.2: the device's queues for the negotiated features are receiveq1,
 * transmitq1 and controlq (2) without VIRTIO_NET_F_MQ, and 0..2N with it.
 * A front-end may set up and start any of the 2N + 1 rings GET_QUEUE_NUM
 * counted, but a ring that is no queue of the device has none of a
 * receive ring's buffers (ring 2N without MQ): refuse it.  -EIO (the ring
 * is broken, the device needs a reset) or 0. */
static int net_check_queue(const struct net *net, struct vhost_user_backend_queue *q)
{
	uint64_t acked = q->backend->acked_features;

	if (q->index <= net_ctrl_index(net, acked))
		return 0;
	return virtq_fail(&q->vq,
			  "ring %u is no queue of this device with the negotiated features "
			  "(virtio 1.2 §5.1.2: without VIRTIO_NET_F_MQ only receiveq1 0, "
			  "transmitq1 1 and controlq 2; with it 0 to %u)",
			  q->index, 2 * net->pairs);
}

int net_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];

	if (net_check_queue(net, q) < 0)
		return -1;
	if (net_is_ctrl(net, q))
		return net_ctrl_handle_queue(net, q);
	if (q->index % 2 == 0)
		return net_handle_rx(net, nq, q);
	return net_handle_tx(nq, q);
}

/* The front-end serves the control queue through us (isola's core), not
 * itself (QEMU never sets ring 2N up). */
static bool net_has_ctrl(const struct net *net, const struct vhost_user_backend *be)
{
	return be->queues[net_ctrl_index(net, be->acked_features)].num != 0;
}

static int net_queue_start(void *device, struct vhost_user_backend_queue *q)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];

	nq->frame_len = 0;
	nq->nr_rx = nq->nr_recovered = nq->next_recovered = 0;
	nq->tx_held = nq->tx_paid = nq->tx_wait_tap = false;
	nq->rx_need_kick = nq->rx_wait_rate = false;
	nq->filter_synced = false;
	/* Broken now; the back-end reports it (NEEDS_RESET) after
	 * handle_queue, which does nothing on this ring. */
	if (net_check_queue(net, q) < 0 || net_is_ctrl(net, q))
		return 0;
	/* Shared and started once (net_init): a restarted ring does not
	 * refill the buckets. */
	nq->limiter = q->index % 2 == 0 ? &net->rx_limiter : &net->tx_limiter;
	if (q->index % 2 == 0) {
		int ret = net_set_offload(nq->tap_fd, q->backend->acked_features);

		if (ret < 0)
			log_error("tap %s: TUNSETOFFLOAD: %s; the guest gets plain frames",
				  net->tap_name, strerror(-ret));
		pthread_mutex_lock(&net->tap_lock); /* net_tap_sync reads it, of every ring */
		nq->rx_started = true;
		pthread_mutex_unlock(&net->tap_lock);
		net_tap_sync(net, net_has_ctrl(net, q->backend));
	}
	return 0;
}

/* vhost-user "Inflight I/O tracking": what a killed instance left.  A
 * transmit chain is sent now (once); a receive chain never got a frame
 * pushed, so it is kept as an empty buffer for the next one; a control
 * command is applied again (each is idempotent). */
static void net_handle_chain(void *device, struct vhost_user_backend_queue *q,
			     struct virtq_chain *chain)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];
	int wait = -1;

	if (net_check_queue(net, q) < 0)
		return; /* left inflight: nothing is pushed on a broken ring */
	if (net_is_ctrl(net, q)) {
		net_ctrl_handle_chain(net, q, chain);
		return;
	}
	if (q->index % 2 == 0) {
		if (chain->nr_readable == 0 && chain->nr_segments <= NET_RX_CHAIN_SEGS &&
		    nq->nr_recovered < NET_RX_MAX_CHAINS) {
			struct net_rx_chain *slot = &nq->recovered[nq->nr_recovered++];

			slot->chain = *chain;
			memcpy(slot->segs, chain->segments,
			       chain->nr_segments * sizeof(chain->segments[0]));
			slot->chain.segments = slot->segs;
			slot->chain.max_segments = NET_RX_CHAIN_SEGS;
			slot->recovered = true;
			return;
		}
		virtq_push(&q->vq, chain->head, 0);
		vhost_user_backend_notify(q);
		return;
	}
	nq->tx_chain = *chain;
	memcpy(nq->tx_segs, chain->segments, chain->nr_segments * sizeof(chain->segments[0]));
	nq->tx_chain.segments = nq->tx_segs;
	nq->tx_paid = true; /* paid by the instance that popped it */
	if (net_tx_one(nq, &q->vq, q->backend->acked_features, &wait) == 0)
		nq->counters.drops[NET_DROP_TX_TAP]++; /* the tap is full: not retried */
	nq->tx_paid = false;
	virtq_push(&q->vq, chain->head, 0);
	vhost_user_backend_notify(q);
}

/* Sleep until a kick, the stop fd, or the tap: readable for a receive ring
 * that has buffers and no frame held by the limiter, writable for a
 * transmit ring the tap pushed back. */
static int net_queue_wait(void *device, struct vhost_user_backend_queue *q, int timeout_ms)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];
	struct pollfd pfd[3] = {
	    {.fd = q->stop_fd, .events = POLLIN},
	    {.fd = q->kick_fd, .events = POLLIN},
	    {.fd = -1},
	};
	uint64_t value;

	if (atomic_load(&net->tap_lost))
		return -ENODEV; /* the ring stops serving; the server is ending */
	if (!net_is_ctrl(net, q)) {
		if (q->index % 2 == 0 && !nq->rx_need_kick && !nq->rx_wait_rate)
			pfd[2] = (struct pollfd){.fd = nq->tap_fd, .events = POLLIN};
		else if (q->index % 2 == 1 && nq->tx_wait_tap)
			pfd[2] = (struct pollfd){.fd = nq->tap_fd, .events = POLLOUT};
	}
	if (poll(pfd, 3, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	if (pfd[0].revents)
		return 1;
	/* tun's poll says POLLERR once the tap is deleted (and a socket
	 * standing in for it, POLLHUP): it would say so at once, forever */
	if (pfd[2].revents & (POLLERR | POLLHUP | POLLNVAL))
		return net_tap_lost(net);
	if ((pfd[1].revents & POLLIN) && read(q->kick_fd, &value, sizeof(value)) < 0) {
		/* EAGAIN: another reader drained it */
	}
	return 0;
}

static void net_add_counters(struct net_counters *to, const struct net_counters *from)
{
	const uint64_t *src = (const uint64_t *)from;
	uint64_t *dst = (uint64_t *)to;

	for (size_t i = 0; i < sizeof(*from) / sizeof(uint64_t); i++)
		dst[i] += src[i];
}

/* The ring stops: chains held without a frame go back to the ring (the
 * next start pops them again), a frame read but not delivered is lost
 * (counted), the counters join the device's. */
static void net_queue_stop(void *device, struct vhost_user_backend_queue *q)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];

	if (net_check_queue(net, q) < 0)
		return; /* it never ran */
	if (!net_is_ctrl(net, q) && q->index % 2 == 0) {
		net_rx_give_back(nq, &q->vq);
		for (unsigned i = nq->next_recovered; i < nq->nr_recovered; i++)
			virtq_push(&q->vq, nq->recovered[i].chain.head, 0);
		nq->nr_recovered = nq->next_recovered = 0;
		if (nq->frame_len)
			nq->counters.drops[NET_DROP_RX_STOPPED]++;
		nq->frame_len = 0;
		pthread_mutex_lock(&net->tap_lock);
		nq->rx_started = false;
		pthread_mutex_unlock(&net->tap_lock);
		net_tap_sync(net, net_has_ctrl(net, q->backend));
	} else if (nq->tx_held) {
		virtq_unpop(&q->vq, nq->tx_chain.head);
		nq->tx_held = false;
	}
	pthread_mutex_lock(&net->totals_lock);
	net_add_counters(&net->totals, &nq->counters);
	pthread_mutex_unlock(&net->totals_lock);
	memset(&nq->counters, 0, sizeof(nq->counters));
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
	    .queue_start = net_queue_start,
	    .handle_queue = net_handle_queue,
	    .queue_wait = net_queue_wait,
	    .handle_chain = net_handle_chain,
	    .queue_stop = net_queue_stop,
	    .reset = net_reset,
	};
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
