/* SPDX-License-Identifier: MIT */
/*
 * INTERNAL to isola-net's device: what its files share with each other and
 * with nobody else.  main.c and the tests use net.h only.
 *
 *   net.c        features, config, receive filter, transmit header check,
 *                rate limiters, counters, reset, set-up (the ops table)
 *   net_tap.c    opening the tap, offloads, queue attach/detach, tap gone
 *   net_queue.c  which ring is which (§5.1.2), and each ring's life: start,
 *                dispatch, wait, inflight chains, stop
 *   net_rx.c     the receive path (§5.1.6.3-4)
 *   net_tx.c     the transmit path (§5.1.6.2)
 *   net_ctrl.c   the control queue (§5.1.6.5)
 *   net_state.c  the control state across restarts
 */
#ifndef ISOLA_SERVERS_NET_NET_INTERNAL_H
#define ISOLA_SERVERS_NET_NET_INTERNAL_H

#include "servers/net/net.h"

#define NET_BATCH 256 /* frames per handle_queue call before others get a turn */

static inline bool net_has_feature(uint64_t features, unsigned bit)
{
	return features & (1ull << bit);
}

/* A chain's segments from `first` on as an iovec (iov has room for
 * c->nr_segments). */
static inline unsigned net_iov(const struct virtq_chain *c, uint32_t first, struct iovec *iov)
{
	unsigned n = 0;

	for (uint32_t i = first; i < c->nr_segments; i++)
		iov[n++] = (struct iovec){c->segments[i].host, c->segments[i].len};
	return n;
}

/* ---- net.c ---- */

/*
 * Pay for one frame of `bytes` from the direction's shared limiter: true,
 * or false with the wait (at most 1 s per round) in *wait_ms.
 */
bool net_rate_pay(struct net *net, struct rate_limiter *rl, uint64_t bytes, int *wait_ms);
/* A stopped ring's counters join the device's totals (net_log_counters);
 * *counters starts again from zero. */
void net_totals_add(struct net *net, struct net_counters *counters);

/* ---- net_tap.c ---- */

/* TUNSETOFFLOAD from the driver's GUEST_* features.  0 or -errno. */
int net_set_offload(int fd, uint64_t features);

/* ---- net_queue.c ---- */

/* Whether the front-end serves the control queue through us. */
bool net_has_ctrl(const struct net *net, const struct vhost_user_backend *be);
/* The ring hooks into ops: queue_start, handle_queue, queue_wait,
 * handle_chain, queue_stop, queue_dump. */
void net_queue_ops(struct vhost_user_backend_ops *ops);

/* ---- net_rx.c ---- */

/* A receive ring's turn: the wait for queue_wait (-1 none, 0 come back). */
int net_handle_rx(struct net *net, struct net_queue *nq, struct vhost_user_backend_queue *q);
/* A receive chain a killed instance left inflight. */
void net_rx_recover(struct net_queue *nq, struct vhost_user_backend_queue *q,
		    struct virtq_chain *chain);
/* The ring stops: what it holds goes back to the ring, or is counted. */
void net_rx_stop(struct net_queue *nq, struct virtq *vq);

/* ---- net_tx.c ---- */

/* A transmit ring's turn: the wait for queue_wait (-1 none, 0 come back). */
int net_handle_tx(struct net_queue *nq, struct vhost_user_backend_queue *q);
/* A transmit chain a killed instance left inflight: sent now, once. */
void net_tx_recover(struct net_queue *nq, struct vhost_user_backend_queue *q,
		    struct virtq_chain *chain);
/* The ring stops: a chain it holds goes back to the ring. */
void net_tx_stop(struct net_queue *nq, struct virtq *vq);

#endif
