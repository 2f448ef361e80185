// SPDX-License-Identifier: MIT
/*
 * isola-net's transmit path (virtio 1.2 §5.1.6.2): each chain is the
 * 12-byte header and the frame, checked, paid for at the transmit limiter,
 * and written to the tap with writev straight from guest memory.
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

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

int net_handle_tx(struct net_queue *nq, struct vhost_user_backend_queue *q)
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

void net_tx_recover(struct net_queue *nq, struct vhost_user_backend_queue *q,
		    struct virtq_chain *chain)
{
	int wait = -1;

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

void net_tx_stop(struct net_queue *nq, struct virtq *vq)
{
	if (nq->tx_held) {
		virtq_unpop(vq, nq->tx_chain.head);
		nq->tx_held = false;
	}
}
