/* SPDX-License-Identifier: MIT */
/*
 * isola-net's device: virtio-net (virtio 1.2 §5.1) on a Linux tap through
 * lib/vhost_user_backend.  Queue pair k is receiveq 2k (read from tap queue
 * k) and transmitq 2k+1 (written to tap queue k); the control queue is 2N
 * (§5.1.2).  Each ring has its own thread; the frames go between the tap
 * and guest memory with readv/writev, through a per-queue bounce buffer
 * only where a frame must be seen whole before it has buffers (mergeable
 * receive buffers, a receive rate limiter).
 */
#ifndef ISOLA_SERVERS_NET_NET_H
#define ISOLA_SERVERS_NET_NET_H

#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "isola/virtio.h"
#include "lib/rate_limiter.h"
#include "lib/sandbox.h"
#include "lib/vhost_user_backend.h"

/* 2N + 1 rings must fit the back-end's (and the core's) 16. */
#define NET_MAX_PAIRS 7
#define NET_MAX_QUEUES (2 * NET_MAX_PAIRS + 1)
#define NET_ETH_HLEN 14
#define NET_ETH_ALEN 6
/* The largest frame after the vnet header: a 64 KiB GSO packet with its
 * Ethernet and VLAN headers (what the tap and Linux's virtio-net allow). */
#define NET_MAX_FRAME (65535 + NET_ETH_HLEN + 4)
#define NET_MAX_PACKET (VIRTIO_NET_HDR_SIZE + NET_MAX_FRAME)
#define NET_MAC_TABLE_ENTRIES 64 /* VIRTIO_NET_CTRL_MAC_TABLE_SET: more is "all" */
/* Receive chains one frame may spread over (MRG_RXBUF), and the segments
 * each may have: a guest whose buffers are smaller than 64 KiB / 64 loses
 * its biggest frames (counted). */
#define NET_RX_MAX_CHAINS 64
#define NET_RX_CHAIN_SEGS 64
#define NET_TX_SEGS VIRTQ_MAX_SEGMENTS
/* TUNSETIFF's EBUSY (the tap's previous user still exiting) is retried
 * this long, in pauses of this much. */
#define NET_TAP_BUSY_WAIT_MS 2000
#define NET_TAP_BUSY_PAUSE_MS 20

/* What isola-net's seccomp filter allows beyond the vhost-user back-end's
 * own list (sandbox_lock, docs/security.md): frames to and from the tap
 * with readv/writev straight into guest memory, and ioctl for the two tap
 * commands made after the sandbox is locked only: TUNSETOFFLOAD when a
 * receive ring starts (the driver's features are known), TUNSETQUEUE when
 * the active pairs change.  TUNSETIFF and TUNSETVNETHDRSZ come before the
 * lock; any other request (TIOCSTI on an inherited terminal) kills the
 * server.  In the header so tests/unit/test_seccomp.c installs the very
 * filter the server does. */
static const char *const net_sandbox_syscalls[] = {"readv", "writev"};
static const unsigned long net_sandbox_ioctls[] = {TUNSETOFFLOAD, TUNSETQUEUE};
static const struct sandbox_allowlist net_sandbox_allowlist = {
    .syscalls = net_sandbox_syscalls,
    .nr_syscalls = sizeof(net_sandbox_syscalls) / sizeof(net_sandbox_syscalls[0]),
    .ioctls = net_sandbox_ioctls,
    .nr_ioctls = sizeof(net_sandbox_ioctls) / sizeof(net_sandbox_ioctls[0]),
};

/* The guest's virtio_net_hdr (§5.1.6), 12 bytes with num_buffers. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == VIRTIO_NET_HDR_SIZE, "virtio_net_hdr size");

/* Why a frame was dropped (each counted). */
enum net_drop {
	NET_DROP_TX_HEADER,	 /* transmit chain shorter than the vnet header */
	NET_DROP_TX_TOO_BIG,	 /* frame over NET_MAX_FRAME */
	NET_DROP_TX_MALFORMED,	 /* bad header (GSO/checksum not negotiated), runt frame */
	NET_DROP_TX_TAP,	 /* the tap refused it (its own header checks) */
	NET_DROP_RX_TOO_BIG,	 /* larger than the guest's buffers, or than 64 KiB */
	NET_DROP_RX_FILTERED,	 /* the guest's MAC filter */
	NET_DROP_RX_MALFORMED,	 /* shorter than a vnet header + Ethernet header */
	NET_DROP_RX_STOPPED,	 /* read from the tap, then the ring stopped or its pair
				  * was deactivated (VQ_PAIRS_SET) */
	NET_DROP_RX_BAD_HEADER,	 /* a GSO type the driver did not negotiate (left in
				  * the tap from before a reset) */
	NET_DROP_RX_READ_FAILED, /* the tap's read failed (a chain shorter than the
				  * vnet header: EINVAL); tun freed the frame */
	NET_DROP_REASONS,
};

struct net_counters {
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t drops[NET_DROP_REASONS];
	uint64_t ctrl_ok, ctrl_err;
	uint64_t rx_rate_waits, tx_rate_waits, rx_no_buffers;
};

/* The receive filter (§5.1.6.5.1, §5.1.6.5.2), set by the control queue. */
struct net_filter {
	bool promisc, allmulti;
	bool uni_overflow, multi_overflow; /* the driver gave more than the table */
	uint8_t mac[NET_ETH_ALEN];	   /* config mac, or VIRTIO_NET_CTRL_MAC_ADDR_SET */
	unsigned nr_uni, nr_multi;
	uint8_t uni[NET_MAC_TABLE_ENTRIES][NET_ETH_ALEN];
	uint8_t multi[NET_MAC_TABLE_ENTRIES][NET_ETH_ALEN];
};

/* A chain the receive side holds while it fills it. */
struct net_rx_chain {
	struct virtq_chain chain;
	bool recovered; /* from a previous instance's inflight list, not popped */
	struct virtq_segment segs[NET_RX_CHAIN_SEGS];
};

struct net_queue {
	struct net *net;
	unsigned index;
	int tap_fd;
	struct rate_limiter *limiter; /* net->rx_limiter or tx_limiter, shared */
	struct net_counters counters; /* this ring's thread only */
	struct net_filter filter;     /* this ring's copy */
	unsigned filter_gen;
	bool filter_synced; /* filter is a copy of generation filter_gen */
	bool rx_ctrl;	    /* this round: pairs follow VQ_PAIRS_SET (net_has_ctrl) */
	/* receive */
	bool rx_need_kick;	 /* no buffers: the tap is not polled */
	bool rx_wait_rate;	 /* the limiter holds a frame back */
	uint32_t frame_len;	 /* a frame waiting in bounce, 0 none */
	bool frame_paid;	 /* its tokens are taken */
	uint8_t *bounce;	 /* NET_MAX_PACKET bytes */
	struct net_rx_chain *rx; /* [NET_RX_MAX_CHAINS], held for the frame */
	unsigned nr_rx;
	struct net_rx_chain *recovered; /* [NET_RX_MAX_CHAINS] inflight at a restart */
	unsigned nr_recovered, next_recovered;
	/* transmit */
	bool tx_held;	  /* tx_chain popped, waiting for the limiter or the tap */
	bool tx_wait_tap; /* the tap said EAGAIN: wait for POLLOUT */
	bool tx_paid;	  /* tx_chain's tokens are taken */
	struct virtq_chain tx_chain;
	struct virtq_segment *tx_segs; /* [NET_TX_SEGS] */
	struct iovec *tx_iov;	       /* [NET_TX_SEGS] */
	bool rx_started; /* a receive ring between queue_start and queue_stop; tap_lock */
};

struct net {
	char tap_name[IFNAMSIZ];
	unsigned pairs;	       /* --queues */
	unsigned active_pairs; /* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; tap_lock */
	uint8_t mac[NET_ETH_ALEN];
	bool mac_given;
	uint16_t mtu;
	bool offloads;
	struct rate_limiter rx_rate, tx_rate; /* as configured */
	/* What is enforced: one limiter per direction for the whole device,
	 * started once (net_init), shared by every ring of that direction, so
	 * neither more queues nor a ring restart (a driver resetting in a
	 * loop) refill it or grant one_time_burst again. */
	struct rate_limiter rx_limiter, tx_limiter;
	pthread_mutex_t limiter_lock;
	int tap_fds[NET_MAX_PAIRS];
	bool tap_attached[NET_MAX_PAIRS];
	pthread_mutex_t tap_lock; /* tap_attached, active_pairs, rx_started, TUNSETQUEUE */
	/* The tap was deleted under us (POLLERR, EBADFD): logged once, then
	 * tap_gone is called (main.c ends the server, so the core restarts
	 * it; a test records the call). */
	atomic_bool tap_lost;
	void (*tap_gone)(struct net *net);
	/* The control queue's thread writes the filter; receive threads copy
	 * it when filter_gen moves. */
	pthread_mutex_t filter_lock;
	struct net_filter filter;
	atomic_uint filter_gen;
	struct net_counters totals; /* of rings stopped since the last log */
	pthread_mutex_t totals_lock;
	struct vhost_user_backend_ops ops;
	struct net_queue queues[NET_MAX_QUEUES];
};

/* Fill net->ops and the defaults from the options; no fds yet.  0 or
 * -EINVAL with a sentence in err. */
int net_init(struct net *net, char *err, size_t errlen);
/* Open /dev/net/tun once per queue pair and attach to the tap
 * (before the sandbox).  0 or -errno with a sentence in err. */
int net_open_tap(struct net *net, char *err, size_t errlen);
/* The bounce buffers and chain storage (before the lock). */
int net_alloc_queues(struct net *net, char *err, size_t errlen);
unsigned net_fds(const struct net *net, int *fds, unsigned max);
void net_log_counters(struct net *net, const char *when);
void net_close(struct net *net);

/* The virtio features offered for these options. */
uint64_t net_features(const struct net *net);
/* struct virtio_net_config into config; returns its size. */
uint32_t net_get_config(void *device, uint8_t *config);

/* Receive filter: whether a frame to dst passes. */
bool net_filter_accepts(const struct net_filter *filter, const uint8_t *dst);
/* A transmit frame's vnet header against the negotiated features:
 * 0 or the drop reason. */
int net_tx_check_header(const struct virtio_net_hdr *hdr, uint32_t frame_len, uint64_t features);

/* The control queue (net_ctrl.c): one command, class/cmd and its data
 * (len bytes, from guest memory, copied); returns VIRTIO_NET_OK or _ERR. */
uint8_t net_ctrl_command(struct net *net, uint64_t features, uint8_t class, uint8_t cmd,
			 const uint8_t *data, uint32_t len);
int net_ctrl_handle_queue(struct net *net, struct vhost_user_backend_queue *q);
void net_ctrl_handle_chain(struct net *net, struct vhost_user_backend_queue *q,
			   struct virtq_chain *chain);
void net_filter_reset(struct net *net);

/* The control state across restarts and resets (net_state.c): the
 * set_status, state_size and state_restored hooks into ops; the state
 * written through to be's inflight region (after each control command). */
void net_state_ops(struct vhost_user_backend_ops *ops);
void net_state_save(struct net *net, struct vhost_user_backend *be);
int net_state_restored(void *device, struct vhost_user_backend *be, const void *state);
void net_state_set_status(void *device, struct vhost_user_backend *be, uint8_t status);
/* The tap is gone (deleted): one log line, net->tap_gone; returns -ENODEV. */
int net_tap_lost(struct net *net);

/* Attach the tap queues of running, active pairs, detach the others. */
void net_tap_sync(struct net *net, bool ctrl);
/* The rings (net_queue.c). */
int net_handle_queue(void *device, struct vhost_user_backend_queue *q);

#endif
