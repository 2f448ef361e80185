// SPDX-License-Identifier: MIT
/*
 * isola-net's control queue (virtio 1.2 §5.1.6.5): the receive filter
 * (VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_MAC) and the number of queue pairs
 * (VIRTIO_NET_CTRL_MQ).  Every size the driver gives is checked; a bad one
 * is answered VIRTIO_NET_ERR.  A chain without the readable class/command
 * or without a writable ack byte is a ring violation (NEEDS_RESET).
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <string.h>

#include "lib/log.h"

/* The largest command accepted: a MAC table of 2 x 4096 entries. */
#define NET_CTRL_MAX_DATA (8 + 2 * 4096 * NET_ETH_ALEN)

/* Device reset: promiscuous, as the reference device (QEMU) starts, since a
 * driver without CTRL_RX has no way to ask for the multicast it needs; an
 * empty MAC table (§5.1.6.5.2.1: "empty MAC filtering table on reset"); the
 * configured MAC; one active pair (§5.1.6.5.5). */
void net_filter_reset(struct net *net)
{
	pthread_mutex_lock(&net->filter_lock);
	memset(&net->filter, 0, sizeof(net->filter));
	net->filter.promisc = true;
	memcpy(net->filter.mac, net->mac, NET_ETH_ALEN);
	atomic_fetch_add_explicit(&net->filter_gen, 1, memory_order_release);
	pthread_mutex_unlock(&net->filter_lock);
	/* under tap_lock: receive threads and net_tap_sync read it there */
	pthread_mutex_lock(&net->tap_lock);
	net->active_pairs = 1;
	pthread_mutex_unlock(&net->tap_lock);
}

static uint8_t net_ctrl_rx(struct net *net, uint8_t cmd, const uint8_t *data, uint32_t len)
{
	if (len != 1 || (cmd != VIRTIO_NET_CTRL_RX_PROMISC && cmd != VIRTIO_NET_CTRL_RX_ALLMULTI))
		return VIRTIO_NET_ERR;
	pthread_mutex_lock(&net->filter_lock);
	if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
		net->filter.promisc = data[0] != 0;
	else
		net->filter.allmulti = data[0] != 0;
	atomic_fetch_add_explicit(&net->filter_gen, 1, memory_order_release);
	pthread_mutex_unlock(&net->filter_lock);
	return VIRTIO_NET_OK;
}

/* One table of struct virtio_net_ctrl_mac { le32 entries; u8 macs[][6]; }
 * at *at; advances *at.  -1 if it does not fit in len. */
static int net_mac_table(const uint8_t *data, uint32_t len, uint32_t *at, uint32_t *entries)
{
	uint32_t n;

	if (len - *at < 4)
		return -1;
	memcpy(&n, data + *at, 4);
	*at += 4;
	if (n > (len - *at) / NET_ETH_ALEN)
		return -1;
	*entries = n;
	return 0;
}

/* §5.1.6.5.2: unicast table, then multicast table, exactly filling the data. */
static uint8_t net_ctrl_mac_table(struct net *net, const uint8_t *data, uint32_t len)
{
	uint32_t at = 0, n_uni, n_multi, uni_at, multi_at;

	if (net_mac_table(data, len, &at, &n_uni) < 0)
		return VIRTIO_NET_ERR;
	uni_at = at;
	at += n_uni * NET_ETH_ALEN;
	if (net_mac_table(data, len, &at, &n_multi) < 0)
		return VIRTIO_NET_ERR;
	multi_at = at;
	if (at + n_multi * NET_ETH_ALEN != len)
		return VIRTIO_NET_ERR;
	pthread_mutex_lock(&net->filter_lock);
	struct net_filter *f = &net->filter;
	f->uni_overflow = n_uni > NET_MAC_TABLE_ENTRIES;
	f->multi_overflow = n_multi > NET_MAC_TABLE_ENTRIES;
	f->nr_uni = f->uni_overflow ? 0 : n_uni;
	f->nr_multi = f->multi_overflow ? 0 : n_multi;
	memcpy(f->uni, data + uni_at, f->nr_uni * NET_ETH_ALEN);
	memcpy(f->multi, data + multi_at, f->nr_multi * NET_ETH_ALEN);
	atomic_fetch_add_explicit(&net->filter_gen, 1, memory_order_release);
	pthread_mutex_unlock(&net->filter_lock);
	return VIRTIO_NET_OK;
}

static uint8_t net_ctrl_mac(struct net *net, uint64_t features, uint8_t cmd, const uint8_t *data,
			    uint32_t len)
{
	if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET)
		return net_has_feature(features, VIRTIO_NET_F_CTRL_RX)
			   ? net_ctrl_mac_table(net, data, len)
			   : VIRTIO_NET_ERR;
	if (cmd != VIRTIO_NET_CTRL_MAC_ADDR_SET ||
	    !net_has_feature(features, VIRTIO_NET_F_CTRL_MAC_ADDR) || len != NET_ETH_ALEN)
		return VIRTIO_NET_ERR;
	/* §5.1.6.5.2.1: the config's mac changes before the command is used. */
	pthread_mutex_lock(&net->filter_lock);
	memcpy(net->filter.mac, data, NET_ETH_ALEN);
	atomic_fetch_add_explicit(&net->filter_gen, 1, memory_order_release);
	pthread_mutex_unlock(&net->filter_lock);
	return VIRTIO_NET_OK;
}

/* §5.1.6.5.5: 1 to max_virtqueue_pairs; the tap queues follow. */
static uint8_t net_ctrl_mq(struct net *net, uint64_t features, uint8_t cmd, const uint8_t *data,
			   uint32_t len)
{
	uint16_t pairs;

	if (cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || !net_has_feature(features, VIRTIO_NET_F_MQ) ||
	    len != 2)
		return VIRTIO_NET_ERR;
	memcpy(&pairs, data, 2);
	if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > net->pairs)
		return VIRTIO_NET_ERR;
	/* Under tap_lock: a receive thread checks it there right before it
	 * pushes a frame, so none of a deactivated pair's is pushed after
	 * this command's ack (§5.1.6.5.5, net_rx.c net_rx_pair_active). */
	pthread_mutex_lock(&net->tap_lock);
	net->active_pairs = pairs;
	pthread_mutex_unlock(&net->tap_lock);
	net_tap_sync(net, true);
	return VIRTIO_NET_OK;
}

uint8_t net_ctrl_command(struct net *net, uint64_t features, uint8_t class, uint8_t cmd,
			 const uint8_t *data, uint32_t len)
{
	switch (class) {
	case VIRTIO_NET_CTRL_RX:
		return net_has_feature(features, VIRTIO_NET_F_CTRL_RX)
			   ? net_ctrl_rx(net, cmd, data, len)
			   : VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MAC:
		return net_ctrl_mac(net, features, cmd, data, len);
	case VIRTIO_NET_CTRL_MQ:
		return net_ctrl_mq(net, features, cmd, data, len);
	}
	return VIRTIO_NET_ERR;
}

/* struct virtio_net_ctrl { u8 class; u8 command; u8 data[]; u8 ack; }:
 * class, command and data readable, the ack writable.  Pushes the chain
 * (0), or breaks the ring (-EIO). */
static int net_ctrl_chain(struct net *net, struct vhost_user_backend_queue *q,
			  const struct virtq_chain *chain)
{
	struct net_queue *nq = &net->queues[q->index];
	uint8_t head[2], ack = VIRTIO_NET_ERR;

	if (chain->readable_bytes < 2 || chain->writable_bytes < 1)
		return virtq_fail(
		    &q->vq,
		    "control chain %u has %u readable and %u writable bytes (§5.1.6.5: "
		    "class and command readable, an ack byte writable)",
		    chain->head, chain->readable_bytes, chain->writable_bytes);
	uint32_t len = chain->readable_bytes - 2;
	virtq_chain_read(chain, 0, head, 2);
	if (len <= NET_CTRL_MAX_DATA && virtq_chain_read(chain, 2, nq->bounce, len) == 0)
		ack = net_ctrl_command(net, q->backend->acked_features, head[0], head[1],
				       nq->bounce, len);
	if (ack == VIRTIO_NET_OK) {
		nq->counters.ctrl_ok++;
		net_state_save(net, q->backend); /* a restarted instance finds it */
	} else {
		nq->counters.ctrl_err++;
	}
	virtq_chain_write(chain, 0, &ack, 1);
	return virtq_push(&q->vq, chain->head, 1);
}

void net_ctrl_handle_chain(struct net *net, struct vhost_user_backend_queue *q,
			   struct virtq_chain *chain)
{
	if (net_ctrl_chain(net, q, chain) == 0)
		vhost_user_backend_notify(q);
}

int net_ctrl_handle_queue(struct net *net, struct vhost_user_backend_queue *q)
{
	struct virtq_chain chain;
	bool pushed = false;

	virtq_chain_init(&chain, net->queues[q->index].tx_segs, NET_TX_SEGS);
	virtq_disable_notify(&q->vq);
	for (;;) {
		int r = virtq_pop(&q->vq, &chain);

		if (r < 0)
			break;
		if (r == 0) {
			if (!virtq_enable_notify(&q->vq))
				break;
			virtq_disable_notify(&q->vq);
			continue;
		}
		if (net_ctrl_chain(net, q, &chain) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		vhost_user_backend_notify(q);
	return -1;
}
