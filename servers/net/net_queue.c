// SPDX-License-Identifier: MIT
/*
 * isola-net's rings: which ring is which for the negotiated features
 * (virtio 1.2 §5.1.2), and the back-end's hooks for each ring's life:
 * start, a turn (to net_rx.c, net_tx.c or net_ctrl.c), the wait between
 * turns, the chains a killed instance left inflight, and stop.
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

/* §5.1.2: the control queue is 2N with VIRTIO_NET_F_MQ negotiated, else 2
 * (a driver that declines MQ on a multi-pair device uses one pair). */
static unsigned net_ctrl_index(const struct net *net, uint64_t acked)
{
	return net_has_feature(acked, VIRTIO_NET_F_MQ) ? 2 * net->pairs : 2;
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
bool net_has_ctrl(const struct net *net, const struct vhost_user_backend *be)
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
 * transmit chain is sent now (once, net_tx_recover); a receive chain never
 * got a frame pushed, so it is kept as an empty buffer for the next one
 * (net_rx_recover); a control command is applied again (each is
 * idempotent). */
static void net_handle_chain(void *device, struct vhost_user_backend_queue *q,
			     struct virtq_chain *chain)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];

	if (net_check_queue(net, q) < 0)
		return; /* left inflight: nothing is pushed on a broken ring */
	if (net_is_ctrl(net, q)) {
		net_ctrl_handle_chain(net, q, chain);
		return;
	}
	if (q->index % 2 == 0)
		net_rx_recover(nq, q, chain);
	else
		net_tx_recover(nq, q, chain);
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
	if ((pfd[1].revents & POLLIN) && read(q->kick_fd, &value, sizeof(value)) == sizeof(value))
		vhost_user_backend_count(&q->kicks, value);
	/* else EAGAIN: another reader drained it */
	return 0;
}

/* The ring stops: what its receive or transmit side holds goes back to the
 * ring or is counted (net_rx_stop, net_tx_stop); the counters join the
 * device's. */
static void net_queue_stop(void *device, struct vhost_user_backend_queue *q)
{
	struct net *net = device;
	struct net_queue *nq = &net->queues[q->index];

	if (net_check_queue(net, q) < 0)
		return; /* it never ran */
	if (!net_is_ctrl(net, q) && q->index % 2 == 0) {
		net_rx_stop(nq, &q->vq);
		pthread_mutex_lock(&net->tap_lock);
		nq->rx_started = false;
		pthread_mutex_unlock(&net->tap_lock);
		net_tap_sync(net, net_has_ctrl(net, q->backend));
	} else {
		net_tx_stop(nq, &q->vq); /* the control queue holds none: a no-op */
	}
	net_totals_add(net, &nq->counters);
}

/* The ring dump's isola-net words (SIGUSR1, servers/README.md): what the
 * ring waits for and its counters since the ring started, read racily from
 * the socket thread. */
#define NET_DUMP_READ(lvalue) __atomic_load_n(&(lvalue), __ATOMIC_RELAXED)
static int net_queue_dump(void *device, const struct vhost_user_backend_queue *q, char *buf,
			  size_t len)
{
	struct net *net = device;
	const struct net_queue *nq = &net->queues[q->index];
	const struct net_counters *c = &nq->counters;
	unsigned long long drops = 0;
	int n;

	for (unsigned i = 0; i < NET_DROP_REASONS; i++)
		drops += NET_DUMP_READ(c->drops[i]);
	if (q->index == net_ctrl_index(net, q->backend->acked_features))
		n = snprintf(buf, len, " ctrl ok=%llu err=%llu",
			     (unsigned long long)NET_DUMP_READ(c->ctrl_ok),
			     (unsigned long long)NET_DUMP_READ(c->ctrl_err));
	else if (q->index % 2 == 0)
		n = snprintf(buf, len,
			     " rx need_kick=%d wait_rate=%d frame_len=%u held=%u frames=%llu "
			     "no_buffers=%llu drops=%llu",
			     NET_DUMP_READ(nq->rx_need_kick), NET_DUMP_READ(nq->rx_wait_rate),
			     NET_DUMP_READ(nq->frame_len), NET_DUMP_READ(nq->nr_rx),
			     (unsigned long long)NET_DUMP_READ(c->rx_frames),
			     (unsigned long long)NET_DUMP_READ(c->rx_no_buffers), drops);
	else
		n = snprintf(buf, len, " tx held=%d wait_tap=%d frames=%llu drops=%llu",
			     NET_DUMP_READ(nq->tx_held), NET_DUMP_READ(nq->tx_wait_tap),
			     (unsigned long long)NET_DUMP_READ(c->tx_frames), drops);
	return n < 0 ? 0 : n;
}

void net_queue_ops(struct vhost_user_backend_ops *ops)
{
	ops->queue_dump = net_queue_dump;
	ops->queue_start = net_queue_start;
	ops->handle_queue = net_handle_queue;
	ops->queue_wait = net_queue_wait;
	ops->handle_chain = net_handle_chain;
	ops->queue_stop = net_queue_stop;
}
