// SPDX-License-Identifier: MIT
/*
 * isola-net's receive path (virtio 1.2 §5.1.6.3-4): a ring reads its tap
 * queue only while the guest has buffers; without, it stops polling the tap
 * and waits for a kick, so frames wait in the tap's queue (backpressure).
 * Without MRG_RXBUF and without a receive limiter, a frame is read straight
 * into one chain (readv); else into the queue's bounce buffer first, then
 * spread over as many chains as it needs (num_buffers, §5.1.6.4.2).  A
 * chain popped but not filled is given back (virtq_unpop), so nothing is
 * pushed that holds no frame.
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

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

static void net_rx_count(struct net_queue *nq, uint32_t len)
{
	nq->counters.rx_frames++;
	nq->counters.rx_bytes += len - VIRTIO_NET_HDR_SIZE;
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

	if (!net_has_feature(features, VIRTIO_NET_F_GUEST_CSUM))
		hdr->flags = 0;
	switch (hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		ok = !ecn;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = net_has_feature(features, VIRTIO_NET_F_GUEST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = net_has_feature(features, VIRTIO_NET_F_GUEST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		ok = net_has_feature(features, VIRTIO_NET_F_GUEST_UFO);
		break;
	default:
		ok = false;
	}
	if (ecn && !net_has_feature(features, VIRTIO_NET_F_GUEST_ECN))
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

/*
 * The next frame into the bounce buffer.  Read only when the guest has a
 * buffer: else frames wait in the tap (backpressure).  The chain is given
 * back until the frame's size is known.  1 handled: nq->frame_len is the
 * frame to deliver, or 0 when it was dropped (counted); 0 nothing to do
 * now, -EIO, -ENODEV.
 */
static int net_rx_read_bounce(struct net_queue *nq, struct virtq *vq, uint64_t features)
{
	int r = net_rx_take_or_wait(nq, vq);
	if (r <= 0)
		return r;
	net_rx_give_back(nq, vq);
	ssize_t n = read(nq->tap_fd, nq->bounce, NET_MAX_PACKET);
	if (n < 0)
		return net_rx_read_failed(nq, errno);
	/* tun returns the frame's whole length, also when it was cut to the
	 * buffer: what is past the bounce buffer was never read */
	if (n > NET_MAX_PACKET) {
		nq->counters.drops[NET_DROP_RX_TOO_BIG]++;
		return 1;
	}
	if (n < VIRTIO_NET_HDR_SIZE + NET_ETH_HLEN) {
		nq->counters.drops[NET_DROP_RX_MALFORMED]++;
		return 1;
	}
	enum net_drop drop = net_rx_check_header((struct virtio_net_hdr *)nq->bounce, features);
	if (drop == NET_DROP_REASONS &&
	    !net_filter_accepts(&nq->filter, nq->bounce + VIRTIO_NET_HDR_SIZE))
		drop = NET_DROP_RX_FILTERED;
	if (drop != NET_DROP_REASONS) {
		nq->counters.drops[drop]++;
		return 1;
	}
	nq->frame_len = (uint32_t)n;
	nq->frame_paid = false;
	return 1;
}

/* Through the bounce buffer: 1 handled, 0 nothing to do now, -EIO,
 * -ENODEV; nq->rx_wait_rate with the wait in *wait_ms. */
static int net_rx_bounced(struct net_queue *nq, struct virtq *vq, uint64_t features, int *wait_ms)
{
	bool mrg = net_has_feature(features, VIRTIO_NET_F_MRG_RXBUF);

	if (nq->frame_len == 0) {
		int r = net_rx_read_bounce(nq, vq, features);

		if (r <= 0 || nq->frame_len == 0)
			return r; /* nothing read, or the frame was dropped */
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

int net_handle_rx(struct net *net, struct net_queue *nq, struct vhost_user_backend_queue *q)
{
	uint64_t features = q->backend->acked_features;
	bool mrg = net_has_feature(features, VIRTIO_NET_F_MRG_RXBUF);
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

void net_rx_recover(struct net_queue *nq, struct vhost_user_backend_queue *q,
		    struct virtq_chain *chain)
{
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
}

/* Chains held without a frame go back to the ring (the next start pops
 * them again), a frame read but not delivered is lost (counted). */
void net_rx_stop(struct net_queue *nq, struct virtq *vq)
{
	net_rx_give_back(nq, vq);
	for (unsigned i = nq->next_recovered; i < nq->nr_recovered; i++)
		virtq_push(vq, nq->recovered[i].chain.head, 0);
	nq->nr_recovered = nq->next_recovered = 0;
	if (nq->frame_len)
		nq->counters.drops[NET_DROP_RX_STOPPED]++;
	nq->frame_len = 0;
}
