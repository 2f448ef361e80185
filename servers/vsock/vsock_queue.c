// SPDX-License-Identifier: MIT
/*
 * isola-vsock's rings (virtio 1.2 §5.10.2): rx 0 carries packets to the
 * guest and owns the host side's epoll set; tx 1 carries the guest's
 * packets; event 2 carries VIRTIO_VSOCK_EVENT_TRANSPORT_RESET after a
 * restart (docs/vsock.md "Restart").  Chains that break the ring rules (a
 * writable descriptor in a tx chain, a readable one in an rx or event
 * chain, a chain shorter than a header) break the ring: the lib stops it
 * and the device needs a reset (NEEDS_RESET through the error fd).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "servers/vsock/vsock.h"

static void drain(int fd)
{
	uint64_t value;

	if (fd >= 0 && read(fd, &value, sizeof(value)) < 0) {
		/* EAGAIN: nothing pending */
	}
}

static void wake(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes */
	}
}

/* The chain's writable (rx) or readable (tx) bytes from offset skip, as
 * an iovec; returns the count. */
static unsigned chain_iov(const struct virtq_chain *chain, bool writable, uint32_t skip,
			  struct iovec *iov)
{
	uint32_t first = writable ? chain->nr_readable : 0;
	uint32_t end = writable ? chain->nr_segments : chain->nr_readable;
	unsigned n = 0;

	for (uint32_t i = first; i < end; i++) {
		const struct virtq_segment *seg = &chain->segments[i];

		if (skip >= seg->len) {
			skip -= seg->len;
			continue;
		}
		iov[n].iov_base = (uint8_t *)seg->host + skip;
		iov[n].iov_len = seg->len - skip;
		skip = 0;
		n++;
	}
	return n;
}

/*
 * Fill rx chains with what the connections owe the guest, with v->lock
 * held, and interrupt the guest once for the batch (with EVENT_IDX, only
 * if it asked: virtq_needs_interrupt).  Both the rx ring's thread and the
 * tx ring's thread call it (the latter when a guest packet opened credit
 * or owes a reply: doing the work where it arose saves a wake-up of the
 * rx thread per packet); v->lock serializes every use of the rx ring,
 * the interrupt decision included.  Returns whether the rx thread must
 * look: the ring broke (its thread reports it).  Work left for want of rx
 * buffers needs no wake-up: notifications are enabled then, and the
 * guest's next buffer kicks the rx ring.
 */
static bool vsock_rx_fill(struct vsock *v, struct vhost_user_backend_queue *q)
{
	struct virtq_chain chain;
	bool pushed = false;

	virtq_disable_notify(&q->vq);
	while (vsock_rx_pending(v)) {
		struct vsock_hdr hdr;
		uint32_t payload = 0;
		unsigned niov;
		int r;

		virtq_chain_init(&chain, v->seg_rx, VIRTQ_MAX_SEGMENTS);
		r = virtq_pop(&q->vq, &chain);
		if (r < 0)
			break;
		if (r == 0) {
			/* no buffer: the guest's next one kicks us */
			if (!virtq_enable_notify(&q->vq))
				break;
			virtq_disable_notify(&q->vq);
			continue;
		}
		if (chain.nr_readable) {
			virtq_fail(&q->vq, "an rx chain has a device-readable descriptor");
			break;
		}
		if (chain.writable_bytes < VSOCK_HDR_SIZE) {
			virtq_fail(&q->vq, "an rx chain of %u bytes cannot hold a packet header",
				   chain.writable_bytes);
			break;
		}
		niov = chain_iov(&chain, true, VSOCK_HDR_SIZE, v->iov_rx);
		r = vsock_rx_next(v, &hdr, v->iov_rx, niov, chain.writable_bytes - VSOCK_HDR_SIZE,
				  &payload);
		if (r == 0) {
			virtq_unpop(&q->vq, chain.head);
			break;
		}
		virtq_chain_write(&chain, 0, &hdr, sizeof(hdr));
		if (virtq_push(&q->vq, chain.head, VSOCK_HDR_SIZE + payload) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		vhost_user_backend_notify(q);
	return virtq_is_broken(&q->vq);
}

static int vsock_handle_rx(struct vsock *v, struct vhost_user_backend_queue *q)
{
	int timeout;

	pthread_mutex_lock(&v->lock);
	/* from now on (after any inflight resubmission) the tx thread may
	 * fill this ring too; vsock_queue_stop takes it back */
	v->rx_q = q;
	timeout = vsock_host_poll(v, vsock_now_ms());
	vsock_rx_fill(v, q);
	if (v->tx_waiting && v->rst_len < VSOCK_RST_QUEUE) {
		v->tx_waiting = false;
		wake(v->tx_wake_fd);
	}
	pthread_mutex_unlock(&v->lock);
	return timeout;
}

static int vsock_handle_tx(struct vsock *v, struct vhost_user_backend_queue *q)
{
	struct virtq_chain chain;
	bool pushed = false;

	drain(v->tx_wake_fd); /* the poll that woke us saw it */
	pthread_mutex_lock(&v->lock);
	virtq_disable_notify(&q->vq);
	for (;;) {
		struct vsock_hdr hdr;
		unsigned niov;
		int r;

		virtq_chain_init(&chain, v->seg_tx, VIRTQ_MAX_SEGMENTS);
		r = virtq_pop(&q->vq, &chain);
		if (r < 0)
			break;
		if (r == 0) {
			if (!virtq_enable_notify(&q->vq))
				break;
			virtq_disable_notify(&q->vq);
			continue;
		}
		if (chain.nr_readable != chain.nr_segments) {
			virtq_fail(&q->vq, "a tx chain has a device-writable descriptor");
			break;
		}
		if (virtq_chain_read(&chain, 0, &hdr, sizeof(hdr)) < 0) {
			virtq_fail(&q->vq, "a tx chain of %u bytes is shorter than a packet header",
				   chain.readable_bytes);
			break;
		}
		niov = chain_iov(&chain, false, VSOCK_HDR_SIZE, v->iov_tx);
		if (vsock_guest_packet(v, &hdr, v->iov_tx, niov) == -EAGAIN) {
			/* replies wait for rx buffers (§5.10.6.1): so does tx */
			virtq_unpop(&q->vq, chain.head);
			v->tx_waiting = true;
			break;
		}
		if (virtq_push(&q->vq, chain.head, 0) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		vhost_user_backend_notify(q);
	/* What the packets owe the guest (a credit update, a RESPONSE, data
	 * the new credit lets through) goes out from here; the rx thread is
	 * woken only while its ring is not running or when it broke. */
	if (vsock_rx_pending(v) &&
	    (!v->rx_q || virtq_is_broken(&v->rx_q->vq) || vsock_rx_fill(v, v->rx_q)))
		wake(v->rx_wake_fd);
	if (v->tx_waiting && v->rst_len < VSOCK_RST_QUEUE) {
		/* the fill made room in the RST queue: go round again */
		v->tx_waiting = false;
		wake(v->tx_wake_fd);
	}
	pthread_mutex_unlock(&v->lock);
	return -1;
}

static int vsock_handle_event(struct vsock *v, struct vhost_user_backend_queue *q)
{
	struct virtq_chain chain;
	uint32_t id = VSOCK_EVENT_TRANSPORT_RESET; /* le32, as the host */
	int r;

	drain(v->event_wake_fd);
	pthread_mutex_lock(&v->lock);
	if (!v->reset_pending) {
		pthread_mutex_unlock(&v->lock);
		return -1;
	}
	virtq_chain_init(&chain, v->seg_ev, VIRTQ_MAX_SEGMENTS);
	r = virtq_pop(&q->vq, &chain);
	if (r == 0 && virtq_enable_notify(&q->vq))
		r = virtq_pop(&q->vq, &chain);
	if (r == 1) {
		if (chain.nr_readable || chain.writable_bytes < sizeof(id)) {
			virtq_fail(&q->vq, "an event chain is not a 4-byte writable buffer");
		} else {
			virtq_chain_write(&chain, 0, &id, sizeof(id));
			if (virtq_push(&q->vq, chain.head, sizeof(id)) == 0) {
				v->reset_pending = false;
				log_info("posted TRANSPORT_RESET: the guest drops the connections "
					 "of the previous server and reconnects");
				/* host clients held in the backlog meanwhile */
				if (v->accept_again)
					wake(v->rx_wake_fd);
			}
		}
	}
	pthread_mutex_unlock(&v->lock);
	if (r == 1)
		vhost_user_backend_notify(q);
	return -1;
}

static int vsock_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	struct vsock *v = device;

	switch (q->index) {
	case VSOCK_QUEUE_RX:
		return vsock_handle_rx(v, q);
	case VSOCK_QUEUE_TX:
		return vsock_handle_tx(v, q);
	default:
		return vsock_handle_event(v, q);
	}
}

/*
 * Restart detection (docs/vsock.md "Restart").  The front-end gives each
 * ring its next avail index (SET_VRING_BASE; the isola core replays
 * used->idx after a restart).  A driver that was just set up starts every
 * ring at 0; a nonzero base means the driver already exchanged packets on
 * that ring with a back-end.  A ring starting for the first time since the
 * front-end connected (so not a pause of this process's own rings) with a
 * nonzero base: the driver's connections were another process's and are
 * gone, so the guest gets VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.7)
 * and drops them.  Each ring decides with its own base, whatever order the
 * front-end starts them in (the isola core one ring after the other, QEMU
 * all bases first).  An rx or tx ring starting at 0 again in this process:
 * a new driver (a driver reset), and whatever this process still holds
 * belongs to the old one and is closed (a live connection has moved both
 * rings).  A ring's first start at 0 closes nothing: the only connections
 * then are the new driver's, made through a ring that started first.
 */
static int vsock_queue_start(void *device, struct vhost_user_backend_queue *q)
{
	struct vsock *v = device;
	bool first;

	pthread_mutex_lock(&v->lock); /* the rings start in threads of their own */
	first = !(v->started_rings & (1u << q->index));
	v->started_rings |= 1u << q->index;
	if (first && q->base && !v->reset_decided) {
		/* once per front-end: a second event, after the guest has
		 * reconnected through this server, would reset live
		 * connections */
		v->reset_decided = true;
		v->reset_pending = true;
		log_info("the driver was running before this server (ring %u starts at %u): a "
			 "TRANSPORT_RESET will tell it its connections are gone",
			 q->index, q->base);
		if (q->index != VSOCK_QUEUE_EVENT)
			wake(v->event_wake_fd);
	} else if (!first && !q->base && q->index != VSOCK_QUEUE_EVENT) {
		/* This ring ran before in this process and starts over at 0:
		 * the first ring of a new driver's life.  Only the rings that
		 * started since count as this life's, so the other ring,
		 * starting a moment later in its own thread, does not close
		 * a connection the new driver already made through this one
		 * (the same race on a fresh start closed the guest's first
		 * connection: vsock_guests.sh hostile_credit, 1 run in 3). */
		v->started_rings = 1u << q->index;
		if (v->nr_conns) {
			log_info("the driver started afresh: closing %u connections of its "
				 "previous life",
				 v->nr_conns);
			vsock_close_all(v);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* The rx ring stops (its thread ends): the tx thread no longer fills it. */
static void vsock_queue_stop(void *device, struct vhost_user_backend_queue *q)
{
	struct vsock *v = device;

	pthread_mutex_lock(&v->lock);
	if (v->rx_q == q)
		v->rx_q = NULL;
	pthread_mutex_unlock(&v->lock);
}

static int vsock_queue_fd(void *device, unsigned index)
{
	struct vsock *v = device;

	if (index == VSOCK_QUEUE_RX)
		return v->epoll_fd;
	if (index == VSOCK_QUEUE_TX)
		return v->tx_wake_fd;
	return v->event_wake_fd;
}

/* Left in flight by a previous server: its connections are gone (the
 * TRANSPORT_RESET says so), so the chain is given back unused. */
static void vsock_handle_chain(void *device, struct vhost_user_backend_queue *q,
			       struct virtq_chain *chain)
{
	(void)device;
	virtq_push(&q->vq, chain->head, 0);
	vhost_user_backend_notify(q);
}

/* The front-end went away: so did the guest's view of our connections. */
static void vsock_reset(void *device)
{
	struct vsock *v = device;

	pthread_mutex_lock(&v->lock);
	if (v->nr_conns)
		log_info("front-end gone: closing %u connections", v->nr_conns);
	vsock_close_all(v);
	v->started_rings = 0;
	v->reset_pending = v->reset_decided = false;
	pthread_mutex_unlock(&v->lock);
}

/* §5.10.4: struct virtio_vsock_config { le64 guest_cid; } */
static uint32_t vsock_get_config(void *device, uint8_t *config)
{
	struct vsock *v = device;

	memcpy(config, &v->guest_cid, sizeof(v->guest_cid));
	return sizeof(v->guest_cid);
}

void vsock_init_ops(struct vsock *v)
{
	v->ops = (struct vhost_user_backend_ops){
	    .name = "isola-vsock",
	    /* §5.10.3: no feature bit means stream sockets, which is what
	     * Linux's driver expects (it knows only SEQPACKET) */
	    .features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
			(1ull << VIRTIO_F_EVENT_IDX),
	    .num_queues = VSOCK_NUM_QUEUES,
	    .get_config = vsock_get_config,
	    .queue_start = vsock_queue_start,
	    .queue_stop = vsock_queue_stop,
	    .queue_fd = vsock_queue_fd,
	    .handle_queue = vsock_handle_queue,
	    .handle_chain = vsock_handle_chain,
	    .reset = vsock_reset,
	};
}
