// SPDX-License-Identifier: MIT
/*
 * Unit tests for isola-net's device logic (servers/net/ but main.c,
 * linked in; docs/net.md "isola-net, the server"), without a process, a
 * socket or a tap:
 *  - net_tx_check_header: a transmit frame's vnet header against the
 *    negotiated features (virtio 1.2 §5.1.6.2);
 *  - net_filter_accepts: the receive filter (§5.1.6.5.1-2);
 *  - the control queue (§5.1.6.5), fed through a real struct virtq over a
 *    small fake guest memory, the way a driver does: bad sizes and unknown
 *    commands are answered VIRTIO_NET_ERR, a chain without its ack byte
 *    breaks the ring;
 *  - the transmit ring (net_handle_queue on transmitq1) writing to a
 *    SOCK_SEQPACKET socket that stands in for the tap: chains shorter
 *    than the header, frames over 64 KiB and bad headers are dropped and
 *    counted, a device-writable descriptor breaks the ring;
 *  - the receive ring on such a socket, with read/readv/ioctl wrapped
 *    (-Wl,--wrap) to play what tun does that a socket cannot: the
 *    untruncated length, EBADFD for a deleted tap, EINVAL for a short
 *    chain; headers against the negotiated GUEST_* features, VQ_PAIRS_SET
 *    racing a read, the filter generation wrapping;
 *  - rings the features lack (§5.1.2), the limiters shared and started
 *    once, the pair state under tap_lock, TUNSETOFFLOAD 0 at reset, and
 *    TUNSETIFF's EBUSY waited out on a real tap in a namespace of a child's
 *    own (root only, else SKIP).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/virtq.h"
#include "servers/net/net.h"

#define MIB (1ull << 20)
#define MEM_SIZE (1 * MIB)
#define QSIZE 16
#define DESC_GPA 0x1000ull
#define AVAIL_GPA 0x2000ull
#define USED_GPA 0x3000ull
#define BUF_GPA 0x10000ull /* buffers from here up, one per descriptor */
#define BUF_STRIDE 0x1000ull
#define BIG_GPA 0x40000ull /* one large buffer, for frames over 64 KiB */

#define PAIRS 2
#define CTRL_INDEX (2 * PAIRS)
#define TX_INDEX 1

#define BIT(n) (1ull << (n))
#define RING_FEATURES (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_INDIRECT_DESC))
#define CTRL_FEATURES                                                                              \
	(RING_FEATURES | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX) |                   \
	 BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | BIT(VIRTIO_NET_F_MQ))

static const uint8_t own_mac[NET_ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t other_mac[NET_ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
static const uint8_t third_mac[NET_ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x03};
static const uint8_t mcast_mac[NET_ETH_ALEN] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
static const uint8_t mcast2_mac[NET_ETH_ALEN] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
static const uint8_t bcast_mac[NET_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct fixture {
	uint8_t *ram;
	struct gmem mem;
	struct net *net;
	struct vhost_user_backend *be;
	struct vhost_user_backend_queue *q; /* the ring under test */
	uint16_t avail_idx;		    /* the driver's */
	uint16_t next_desc;
	uint64_t next_buf;
	int peer; /* the "tap" side of transmitq1's socket, -1 none */
};

/* ---- between the device and its tap (-Wl,--wrap, see the Makefile) ------ */

/* What tun does that a socket standing in for it does not, on the fd
 * tap_hook_fd only; each is used once. */
static int tap_hook_fd = -1;
static int busy_holder = -1;	/* test_tap_busy_waited_out's real tap */
static int fake_read_errno;	/* the read fails so (the frame is consumed, but for EBADFD) */
static ssize_t fake_read_extra; /* the read reports this many bytes more (tun's whole length) */
static void (*after_read)(void *arg); /* runs after the read, before the device goes on */
static void *after_read_arg;
/* TUNSETOFFLOAD requests seen on tap_fds: the last flags per fd, -1 none */
#define OFFLOAD_FDS 64
static long offload_seen[OFFLOAD_FDS];

ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __real_readv(int fd, const struct iovec *iov, int n);
int __real_ioctl(int fd, unsigned long request, ...);
ssize_t __wrap_read(int fd, void *buf, size_t len);
ssize_t __wrap_readv(int fd, const struct iovec *iov, int n);
int __wrap_ioctl(int fd, unsigned long request, ...);

static ssize_t tap_hooked(int fd, ssize_t n)
{
	if (fd != tap_hook_fd)
		return n;
	if (after_read) {
		void (*hook)(void *) = after_read;

		after_read = NULL;
		hook(after_read_arg);
	}
	if (fake_read_extra && n >= 0) {
		n += fake_read_extra;
		fake_read_extra = 0;
	}
	return n;
}

static bool tap_fail(int fd)
{
	uint8_t scratch[256];

	if (fd != tap_hook_fd || !fake_read_errno)
		return false;
	if (fake_read_errno != EBADFD)
		(void)__real_read(fd, scratch, sizeof(scratch)); /* tun freed the frame */
	errno = fake_read_errno;
	fake_read_errno = 0;
	return true;
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	return tap_fail(fd) ? -1 : tap_hooked(fd, __real_read(fd, buf, len));
}

ssize_t __wrap_readv(int fd, const struct iovec *iov, int n)
{
	return tap_fail(fd) ? -1 : tap_hooked(fd, __real_readv(fd, iov, n));
}

int __wrap_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	unsigned long arg;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	if (request == TUNSETOFFLOAD && fd >= 0 && fd < OFFLOAD_FDS) {
		offload_seen[fd] = (long)arg;
		return 0;
	}
	if (request == TUNSETQUEUE && fd != busy_holder)
		return 0; /* a socket standing in for a tap queue attaches */
	return __real_ioctl(fd, request, arg);
}

/* ---- a small driver -------------------------------------------------------- */

static void *host(struct fixture *f, uint64_t gpa, uint64_t len)
{
	void *p = gmem_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void ring_init(struct fixture *f, unsigned index, uint64_t features)
{
	struct vhost_user_backend_queue *q = &f->be->queues[index];

	memset(f->ram, 0, 0x4000); /* the rings */
	q->backend = f->be;
	q->index = index;
	q->call_fd = q->err_fd = q->kick_fd = q->stop_fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	f->be->acked_features = features;
	assert_int_equal(
	    virtq_init(&q->vq, &f->mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, features), 0);
	f->q = q;
	f->avail_idx = 0;
	f->next_desc = 0;
	f->next_buf = BUF_GPA;
}

struct seg {
	const void *data; /* readable: copied in; NULL: zeroes */
	uint32_t len;
	bool writable;
	uint64_t gpa; /* 0: the next free buffer */
};

/* Place the chain's descriptors and publish its head; returns the head. */
static uint16_t publish_chain(struct fixture *f, const struct seg *segs, unsigned n)
{
	struct virtq_desc *table = host(f, DESC_GPA, virtq_desc_bytes(QSIZE));
	struct virtq_avail *avail = host(f, AVAIL_GPA, virtq_avail_bytes(QSIZE));
	uint16_t head = f->next_desc % QSIZE;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (f->next_desc++) % QSIZE;
		uint64_t gpa = segs[i].gpa;

		if (!gpa) {
			gpa = f->next_buf;
			f->next_buf += BUF_STRIDE;
			assert_true(segs[i].len <= BUF_STRIDE);
		}
		if (segs[i].len) {
			uint8_t *p = host(f, gpa, segs[i].len);

			if (segs[i].data && segs[i].data != p) /* else laid out in place */
				memcpy(p, segs[i].data, segs[i].len);
			else if (!segs[i].data && !segs[i].writable)
				memset(p, 0, segs[i].len);
		}
		table[d] = (struct virtq_desc){
		    .addr = gpa,
		    .len = segs[i].len,
		    .flags = (uint16_t)((segs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					(i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = (uint16_t)((d + 1) % QSIZE),
		};
	}
	avail->ring[f->avail_idx % QSIZE] = head;
	f->avail_idx++;
	__atomic_store_n(&avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static uint16_t used_idx(struct fixture *f)
{
	struct virtq_used *used = host(f, USED_GPA, virtq_used_bytes(QSIZE));

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct virtq_used_elem used_elem(struct fixture *f, uint16_t at)
{
	struct virtq_used *used = host(f, USED_GPA, virtq_used_bytes(QSIZE));

	return used->ring[at % QSIZE];
}

/* ---- fixture --------------------------------------------------------------- */

/* Set by a test's own setup: the limiters net_init starts. */
static const char *setup_rx_rate, *setup_tx_rate;

static int tap_gone_calls;

static void record_tap_gone(struct net *net)
{
	(void)net;
	tap_gone_calls++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	f->ram = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(f->ram);
	memset(f->ram, 0, MEM_SIZE);
	gmem_init_empty(&f->mem);
	assert_int_equal(gmem_add_region(&f->mem, 0, MEM_SIZE, f->ram), 0);
	f->net = calloc(1, sizeof(*f->net));
	f->be = calloc(1, sizeof(*f->be));
	assert_true(f->net && f->be);
	strcpy(f->net->tap_name, "isola-unit");
	f->net->pairs = PAIRS;
	memcpy(f->net->mac, own_mac, NET_ETH_ALEN);
	f->net->mac_given = true;
	f->net->mtu = 1500;
	f->net->offloads = true;
	if ((setup_rx_rate &&
	     rate_limiter_parse(setup_rx_rate, &f->net->rx_rate, err, sizeof(err))) ||
	    (setup_tx_rate &&
	     rate_limiter_parse(setup_tx_rate, &f->net->tx_rate, err, sizeof(err)))) {
		print_error("rate: %s\n", err);
		return -1;
	}
	setup_rx_rate = setup_tx_rate = NULL;
	tap_gone_calls = 0;
	tap_hook_fd = -1;
	fake_read_errno = 0;
	fake_read_extra = 0;
	after_read = NULL;
	for (unsigned i = 0; i < OFFLOAD_FDS; i++)
		offload_seen[i] = -1;
	f->net->tap_gone = record_tap_gone;
	if (net_init(f->net, err, sizeof(err)) || net_alloc_queues(f->net, err, sizeof(err))) {
		print_error("net: %s\n", err);
		return -1;
	}
	f->peer = -1;
	ring_init(f, CTRL_INDEX, CTRL_FEATURES);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->peer >= 0)
		close(f->peer);
	net_close(f->net); /* closes transmitq1's stand-in tap */
	gmem_destroy(&f->mem);
	free(f->ram);
	free(f->net);
	free(f->be);
	free(f);
	return 0;
}

/* ---- net_tx_check_header (§5.1.6.2) ------------------------------------- */

#define ALL_TX_OFFLOADS                                                                            \
	(BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |      \
	 BIT(VIRTIO_NET_F_HOST_UFO) | BIT(VIRTIO_NET_F_HOST_ECN))

static int check(uint8_t flags, uint8_t gso_type, uint16_t gso_size, uint32_t frame_len,
		 uint64_t features)
{
	struct virtio_net_hdr hdr = {
	    .flags = flags,
	    .gso_type = gso_type,
	    .hdr_len = 54,
	    .gso_size = gso_size,
	    .csum_start = 34,
	    .csum_offset = 16,
	};

	return net_tx_check_header(&hdr, frame_len, features);
}

static void test_tx_header_plain_frames(void **state)
{
	(void)state;
	/* no offloads negotiated: a plain frame passes, from the smallest
	 * Ethernet header to the largest frame */
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_NONE, 0, NET_ETH_HLEN, 0), 0);
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_NONE, 0, 1514, 0), 0);
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_NONE, 0, NET_MAX_FRAME, 0), 0);
	/* shorter than an Ethernet header: a runt */
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_NONE, 0, NET_ETH_HLEN - 1, ALL_TX_OFFLOADS),
			 NET_DROP_TX_MALFORMED);
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_NONE, 0, 0, ALL_TX_OFFLOADS),
			 NET_DROP_TX_MALFORMED);
}

static void test_tx_header_csum_needs_feature(void **state)
{
	(void)state;
	/* §5.1.6.2.1: NEEDS_CSUM only with VIRTIO_NET_F_CSUM */
	assert_int_equal(check(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 1514, 0), NET_DROP_TX_MALFORMED);
	assert_int_equal(check(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 1514,
			       ALL_TX_OFFLOADS & ~BIT(VIRTIO_NET_F_CSUM)),
			 NET_DROP_TX_MALFORMED);
	assert_int_equal(check(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 1514, BIT(VIRTIO_NET_F_CSUM)), 0);
}

static void test_tx_header_gso_needs_feature(void **state)
{
	static const struct {
		uint8_t type;
		unsigned feature;
	} gso[] = {
	    {VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_F_HOST_TSO4},
	    {VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_F_HOST_TSO6},
	    {VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_F_HOST_UFO},
	};
	const uint8_t csum = VIRTIO_NET_HDR_F_NEEDS_CSUM;

	(void)state;
	for (unsigned i = 0; i < sizeof(gso) / sizeof(gso[0]); i++) {
		uint64_t with = BIT(VIRTIO_NET_F_CSUM) | BIT(gso[i].feature);

		/* §5.1.6.2.1: a GSO type only with its HOST_* feature */
		assert_int_equal(check(csum, gso[i].type, 1448, 65000, with), 0);
		assert_int_equal(check(csum, gso[i].type, 1448, 65000, ALL_TX_OFFLOADS), 0);
		assert_int_equal(
		    check(csum, gso[i].type, 1448, 65000, ALL_TX_OFFLOADS & ~BIT(gso[i].feature)),
		    NET_DROP_TX_MALFORMED);
		assert_int_equal(check(csum, gso[i].type, 1448, 65000, 0), NET_DROP_TX_MALFORMED);
		/* a GSO frame with segments of size 0 cannot be segmented */
		assert_int_equal(check(csum, gso[i].type, 0, 65000, with), NET_DROP_TX_MALFORMED);
		/* ECN only with HOST_ECN */
		assert_int_equal(
		    check(csum, gso[i].type | VIRTIO_NET_HDR_GSO_ECN, 1448, 65000, with),
		    NET_DROP_TX_MALFORMED);
		assert_int_equal(check(csum, gso[i].type | VIRTIO_NET_HDR_GSO_ECN, 1448, 65000,
				       with | BIT(VIRTIO_NET_F_HOST_ECN)),
				 0);
	}
	/* types the device does not know (2, UDP_L4 5, anything else) */
	for (unsigned type = 0; type < 0x80; type++) {
		if (type == VIRTIO_NET_HDR_GSO_NONE || type == VIRTIO_NET_HDR_GSO_TCPV4 ||
		    type == VIRTIO_NET_HDR_GSO_TCPV6 || type == VIRTIO_NET_HDR_GSO_UDP)
			continue;
		assert_int_equal(check(csum, (uint8_t)type, 1448, 65000, ALL_TX_OFFLOADS),
				 NET_DROP_TX_MALFORMED);
	}
	/* ECN on a frame that is not GSO, with HOST_ECN: GSO_NONE | ECN */
	assert_int_equal(check(0, VIRTIO_NET_HDR_GSO_ECN, 0, 1514, 0), NET_DROP_TX_MALFORMED);
}

/* ---- net_filter_accepts (§5.1.6.5.1-2) ------------------------------------ */

static void filter_init(struct net_filter *filter)
{
	memset(filter, 0, sizeof(*filter));
	memcpy(filter->mac, own_mac, NET_ETH_ALEN);
}

static void test_filter_unicast_and_broadcast(void **state)
{
	struct net_filter filter;

	(void)state;
	filter_init(&filter);
	assert_true(net_filter_accepts(&filter, own_mac));
	assert_true(net_filter_accepts(&filter, bcast_mac));
	assert_false(net_filter_accepts(&filter, other_mac));
	/* one byte off, anywhere */
	for (unsigned i = 0; i < NET_ETH_ALEN; i++) {
		uint8_t mac[NET_ETH_ALEN];

		memcpy(mac, own_mac, NET_ETH_ALEN);
		mac[i] ^= 0x80;
		assert_false(net_filter_accepts(&filter, mac));
	}
	/* the unicast table: other_mac yes, third_mac still no */
	memcpy(filter.uni[0], other_mac, NET_ETH_ALEN);
	filter.nr_uni = 1;
	assert_true(net_filter_accepts(&filter, other_mac));
	assert_false(net_filter_accepts(&filter, third_mac));
	/* entries past nr_uni are not in the table */
	memcpy(filter.uni[1], third_mac, NET_ETH_ALEN);
	assert_false(net_filter_accepts(&filter, third_mac));
	/* a unicast table is not a multicast table */
	memcpy(filter.uni[0], mcast_mac, NET_ETH_ALEN);
	assert_false(net_filter_accepts(&filter, mcast_mac));
	/* an overflowed unicast table takes every unicast, not multicast */
	filter.uni_overflow = true;
	assert_true(net_filter_accepts(&filter, third_mac));
	assert_false(net_filter_accepts(&filter, mcast2_mac));
}

static void test_filter_multicast(void **state)
{
	struct net_filter filter;

	(void)state;
	filter_init(&filter);
	assert_false(net_filter_accepts(&filter, mcast_mac));
	filter.allmulti = true;
	assert_true(net_filter_accepts(&filter, mcast_mac));
	assert_true(net_filter_accepts(&filter, mcast2_mac));
	assert_false(net_filter_accepts(&filter, other_mac)); /* ALLMULTI is not promiscuous */
	filter.allmulti = false;
	memcpy(filter.multi[0], mcast_mac, NET_ETH_ALEN);
	filter.nr_multi = 1;
	assert_true(net_filter_accepts(&filter, mcast_mac));
	assert_false(net_filter_accepts(&filter, mcast2_mac));
	/* a multicast table is not a unicast table */
	memcpy(filter.multi[1], other_mac, NET_ETH_ALEN);
	filter.nr_multi = 2;
	assert_false(net_filter_accepts(&filter, other_mac));
	filter.multi_overflow = true;
	assert_true(net_filter_accepts(&filter, mcast2_mac));
	assert_false(net_filter_accepts(&filter, third_mac));
}

static void test_filter_promiscuous(void **state)
{
	struct net_filter filter;

	(void)state;
	filter_init(&filter);
	filter.promisc = true;
	assert_true(net_filter_accepts(&filter, other_mac));
	assert_true(net_filter_accepts(&filter, mcast_mac));
	assert_true(net_filter_accepts(&filter, bcast_mac));
	assert_true(net_filter_accepts(&filter, own_mac));
}

static void test_filter_after_reset(void **state)
{
	struct fixture *f = *state;

	/* QEMU's choice (docs/net.md): promiscuous after reset, empty tables,
	 * the configured MAC, one active pair */
	f->net->filter.promisc = false;
	f->net->filter.nr_uni = 3;
	f->net->active_pairs = 2;
	net_filter_reset(f->net);
	assert_true(f->net->filter.promisc);
	assert_false(f->net->filter.allmulti);
	assert_int_equal(f->net->filter.nr_uni, 0);
	assert_int_equal(f->net->filter.nr_multi, 0);
	assert_memory_equal(f->net->filter.mac, own_mac, NET_ETH_ALEN);
	assert_int_equal(f->net->active_pairs, 1);
}

/* ---- the control queue (§5.1.6.5), through the ring ---------------------- */

#define ACK_UNSET 0xaa

/* One command as a driver sends it: class+command, the data (if any) and
 * an ack byte, in three descriptors.  Returns the device's ack. */
static uint8_t ctrl(struct fixture *f, uint8_t class, uint8_t cmd, const void *data, uint32_t len)
{
	uint8_t head[2] = {class, cmd}, ack = ACK_UNSET;
	uint64_t ack_gpa = f->next_buf + 2 * BUF_STRIDE;
	struct seg segs[3] = {{head, 2, false, 0}};
	unsigned n = 1;
	uint16_t before = used_idx(f), h;

	if (len)
		segs[n++] = (struct seg){data, len, false, 0};
	else
		f->next_buf += BUF_STRIDE;
	segs[n++] = (struct seg){NULL, 1, true, ack_gpa};
	*(uint8_t *)host(f, ack_gpa, 1) = ACK_UNSET;
	h = publish_chain(f, segs, n);
	f->next_buf += BUF_STRIDE; /* past the ack's buffer */
	net_ctrl_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_int_equal(used_elem(f, before).id, h);
	assert_int_equal(used_elem(f, before).len, 1);
	ack = *(uint8_t *)host(f, ack_gpa, 1);
	assert_int_not_equal(ack, ACK_UNSET);
	if (f->next_buf > BIG_GPA - 4 * BUF_STRIDE)
		f->next_buf = BUF_GPA; /* reuse the buffers: each command is done */
	return ack;
}

static void test_ctrl_rx_modes(void **state)
{
	struct fixture *f = *state;
	uint8_t on = 1, off = 0, two[2] = {1, 1};

	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	assert_false(f->net->filter.promisc);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_true(f->net->filter.allmulti);
	/* §5.1.6.5.1: the data is one byte; anything else is an error and
	 * changes nothing */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, NULL, 0),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, two, 2),
			 VIRTIO_NET_ERR);
	assert_false(f->net->filter.promisc);
	/* commands this device does not have (ALLUNI 2, NOMULTI 3, ...) */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, 2, &on, 1), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, 0xff, &on, 1), VIRTIO_NET_ERR);
	/* without CTRL_RX negotiated, the class is refused */
	f->be->acked_features &= ~BIT(VIRTIO_NET_F_CTRL_RX);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
			 VIRTIO_NET_ERR);
	assert_false(f->net->filter.promisc);
	assert_int_equal(f->net->queues[CTRL_INDEX].counters.ctrl_ok, 2);
	assert_int_equal(f->net->queues[CTRL_INDEX].counters.ctrl_err, 5);
}

/* struct virtio_net_ctrl_mac twice: le32 entries, then the MACs. */
static uint32_t mac_tables(uint8_t *buf, uint32_t n_uni, const uint8_t *uni, uint32_t uni_given,
			   uint32_t n_multi, const uint8_t *multi, uint32_t multi_given)
{
	uint32_t at = 0;

	memcpy(buf + at, &n_uni, 4);
	at += 4;
	if (uni_given) /* memcpy's source must not be NULL, even for 0 bytes */
		memcpy(buf + at, uni, uni_given * NET_ETH_ALEN);
	at += uni_given * NET_ETH_ALEN;
	memcpy(buf + at, &n_multi, 4);
	at += 4;
	if (multi_given)
		memcpy(buf + at, multi, multi_given * NET_ETH_ALEN);
	return at + multi_given * NET_ETH_ALEN;
}

static void test_ctrl_mac_table(void **state)
{
	struct fixture *f = *state;
	uint8_t uni[2 * NET_ETH_ALEN], buf[64];
	uint32_t len;

	memcpy(uni, other_mac, NET_ETH_ALEN);
	memcpy(uni + NET_ETH_ALEN, third_mac, NET_ETH_ALEN);
	len = mac_tables(buf, 2, uni, 2, 1, mcast_mac, 1);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_OK);
	assert_int_equal(f->net->filter.nr_uni, 2);
	assert_int_equal(f->net->filter.nr_multi, 1);
	assert_memory_equal(f->net->filter.uni[1], third_mac, NET_ETH_ALEN);
	assert_memory_equal(f->net->filter.multi[0], mcast_mac, NET_ETH_ALEN);
	f->net->filter.promisc = false;
	assert_true(net_filter_accepts(&f->net->filter, third_mac));
	assert_true(net_filter_accepts(&f->net->filter, mcast_mac));
	assert_false(net_filter_accepts(&f->net->filter, mcast2_mac));

	/* Each bad table is refused whole and the filter keeps the last good one. */
	/* more unicast entries than the data holds */
	len = mac_tables(buf, 3, uni, 2, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_ERR);
	len = mac_tables(buf, 0xffffffffu, uni, 2, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_ERR);
	/* more multicast entries than the data holds */
	len = mac_tables(buf, 0, NULL, 0, 2, mcast_mac, 1);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_ERR);
	/* bytes left over after the multicast table */
	len = mac_tables(buf, 0, NULL, 0, 1, mcast_mac, 1);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len + 1),
			 VIRTIO_NET_ERR);
	/* no multicast table at all, a cut count, nothing */
	len = mac_tables(buf, 1, other_mac, 1, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len - 4),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len - 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, 3),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, NULL, 0),
			 VIRTIO_NET_ERR);
	assert_int_equal(f->net->filter.nr_uni, 2);
	assert_int_equal(f->net->filter.nr_multi, 1);
	assert_memory_equal(f->net->filter.uni[0], other_mac, NET_ETH_ALEN);

	/* a unicast count whose size in bytes wraps 32 bits to 2: with the
	 * wrapped size, the multicast table would follow and fill the data */
	{
		uint32_t wraps = 0x2aaaaaab, one = 1; /* 0x2aaaaaab * 6 = 2 + 2^32 */

		memcpy(buf, &wraps, 4);
		memset(buf + 4, 0, 2);
		memcpy(buf + 6, &one, 4);
		memcpy(buf + 10, mcast_mac, NET_ETH_ALEN);
		assert_int_equal(
		    ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, 16),
		    VIRTIO_NET_ERR);
	}
	assert_false(f->net->filter.uni_overflow);
	assert_int_equal(f->net->filter.nr_uni, 2);
	assert_int_equal(f->net->filter.nr_multi, 1);
	assert_memory_equal(f->net->filter.uni[0], other_mac, NET_ETH_ALEN);

	/* two empty tables: the smallest valid command */
	len = mac_tables(buf, 0, NULL, 0, 0, NULL, 0);
	assert_int_equal(len, 8);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_OK);
	assert_int_equal(f->net->filter.nr_uni, 0);
	assert_false(net_filter_accepts(&f->net->filter, third_mac));

	/* without CTRL_RX the table cannot be set */
	f->be->acked_features &= ~BIT(VIRTIO_NET_F_CTRL_RX);
	len = mac_tables(buf, 1, other_mac, 1, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_ERR);
	assert_int_equal(f->net->filter.nr_uni, 0);
}

/*
 * A unicast count that runs past the command's data must be refused before
 * anything after the data is read: the command buffer holds the previous
 * command's bytes there.  Here those bytes (a multicast count of
 * 715827881, whose size wraps to exactly fill the data) would make a
 * 10-byte command a valid table: 2 unicast MACs and "all multicast".
 */
static void test_ctrl_mac_table_count_past_data(void **state)
{
	struct fixture *f = *state;
	uint8_t stale[24] = {0}, cmd[10] = {2, 0, 0, 0};
	uint32_t n_multi = 715827881; /* 20 + 6n == 10 (mod 2^32) */

	memcpy(stale + 16, &n_multi, 4);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, stale, 24),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, cmd, 10),
			 VIRTIO_NET_ERR);
	assert_false(f->net->filter.multi_overflow);
	assert_int_equal(f->net->filter.nr_uni, 0);
}

/* A table longer than the device's 64 entries means "all of its kind". */
static void test_ctrl_mac_table_overflow(void **state)
{
	struct fixture *f = *state;
	const uint32_t n = NET_MAC_TABLE_ENTRIES + 1;
	uint8_t macs[(NET_MAC_TABLE_ENTRIES + 1) * NET_ETH_ALEN], buf[sizeof(macs) + 8];
	uint32_t len;

	for (uint32_t i = 0; i < n; i++) {
		memcpy(macs + i * NET_ETH_ALEN, other_mac, NET_ETH_ALEN);
		macs[i * NET_ETH_ALEN + 5] = (uint8_t)(0x10 + i);
	}
	f->net->filter.promisc = false;
	/* exactly 64: kept as a table */
	len = mac_tables(buf, n - 1, macs, n - 1, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_OK);
	assert_false(f->net->filter.uni_overflow);
	assert_int_equal(f->net->filter.nr_uni, NET_MAC_TABLE_ENTRIES);
	assert_true(net_filter_accepts(&f->net->filter, macs + (n - 2) * NET_ETH_ALEN));
	assert_false(net_filter_accepts(&f->net->filter, macs + (n - 1) * NET_ETH_ALEN));
	/* 65: every unicast */
	len = mac_tables(buf, n, macs, n, 0, NULL, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_OK);
	assert_true(f->net->filter.uni_overflow);
	assert_true(net_filter_accepts(&f->net->filter, third_mac));
	assert_false(net_filter_accepts(&f->net->filter, mcast_mac));
	/* 65 multicast: every multicast */
	for (uint32_t i = 0; i < n; i++)
		macs[i * NET_ETH_ALEN] |= 1;
	len = mac_tables(buf, 0, NULL, 0, n, macs, n);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, len),
			 VIRTIO_NET_OK);
	assert_false(f->net->filter.uni_overflow);
	assert_true(f->net->filter.multi_overflow);
	assert_true(net_filter_accepts(&f->net->filter, mcast2_mac));
	assert_false(net_filter_accepts(&f->net->filter, third_mac));
}

static void test_ctrl_mac_addr_set(void **state)
{
	struct fixture *f = *state;
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];

	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, other_mac, 6),
			 VIRTIO_NET_OK);
	assert_memory_equal(f->net->filter.mac, other_mac, NET_ETH_ALEN);
	/* §5.1.6.5.2.1: the config space reports the new address */
	assert_int_equal(net_get_config(f->net, config), VIRTIO_NET_CONFIG_SIZE);
	assert_memory_equal(config + VIRTIO_NET_CONFIG_MAC, other_mac, NET_ETH_ALEN);
	f->net->filter.promisc = false;
	assert_true(net_filter_accepts(&f->net->filter, other_mac));
	assert_false(net_filter_accepts(&f->net->filter, own_mac));
	/* bad sizes */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, third_mac, 5),
			 VIRTIO_NET_ERR);
	static const uint8_t seven[7] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};

	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, seven, 7),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NULL, 0),
			 VIRTIO_NET_ERR);
	/* an unknown MAC command */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, 2, third_mac, 6), VIRTIO_NET_ERR);
	/* without CTRL_MAC_ADDR negotiated */
	f->be->acked_features &= ~BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, third_mac, 6),
			 VIRTIO_NET_ERR);
	assert_memory_equal(f->net->filter.mac, other_mac, NET_ETH_ALEN);
}

static void test_ctrl_vq_pairs(void **state)
{
	struct fixture *f = *state;
	uint16_t pairs;
	uint8_t three[3] = {2, 0, 0};

	assert_int_equal(f->net->active_pairs, 1);
	/* §5.1.6.5.5: 1 to max_virtqueue_pairs */
	pairs = PAIRS;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(f->net->active_pairs, PAIRS);
	pairs = 0;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	pairs = PAIRS + 1;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	pairs = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	pairs = 0xffff;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(f->net->active_pairs, PAIRS);
	/* bad sizes */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, three, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, three, 3),
			 VIRTIO_NET_ERR);
	/* RSS_CONFIG (1), HASH_CONFIG (2): not this device's */
	pairs = 1;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, 1, &pairs, 2), VIRTIO_NET_ERR);
	pairs = 1;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(f->net->active_pairs, 1);
	/* without MQ negotiated */
	f->be->acked_features &= ~BIT(VIRTIO_NET_F_MQ);
	pairs = PAIRS;
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(f->net->active_pairs, 1);
}

/* ---- the control state across a restart and a reset (net_state.c) ------- */

/* A device-state area as the lib lays it out in the inflight region. */
struct state_area {
	struct vhost_user_backend_state_header header;
	uint8_t payload[VHOST_USER_BACKEND_STATE_MAX];
};

static struct net *fresh_net(void)
{
	struct net *net = calloc(1, sizeof(*net));
	char err[256];

	assert_non_null(net);
	strcpy(net->tap_name, "isola-unit");
	net->pairs = PAIRS;
	memcpy(net->mac, own_mac, NET_ETH_ALEN);
	net->mac_given = true;
	net->mtu = 1500;
	assert_int_equal(net_init(net, err, sizeof(err)), 0);
	return net;
}

/* The driver's settings: a new MAC (ADDR_SET), PROMISC off, ALLMULTI on, a
 * unicast table of one, both pairs. */
static void set_driver_state(struct fixture *f)
{
	uint8_t off = 0, on = 1, table[4 + 6 + 4];
	uint32_t one = 1, zero = 0;
	uint16_t pairs = PAIRS;

	memcpy(table, &one, 4);
	memcpy(table + 4, third_mac, 6);
	memcpy(table + 10, &zero, 4);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, other_mac, 6),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			      sizeof(table)),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
}

/* A restarted isola-net (a fresh struct net) given the area the first one
 * wrote through keeps the driver's filter, MAC and pairs. */
static void test_state_survives_restart(void **state)
{
	struct fixture *f = *state;
	struct state_area *area = calloc(1, sizeof(*area));
	struct net *next = fresh_net();
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];

	assert_non_null(area);
	assert_true(f->net->ops.state_size > 0 && f->net->ops.state_size <= sizeof(area->payload));
	assert_non_null(f->net->ops.set_status);
	f->be->ops = &f->net->ops;
	f->be->device_state = area->payload;
	set_driver_state(f);
	assert_int_equal(area->header.magic, VHOST_USER_BACKEND_STATE_MAGIC);
	assert_int_equal(area->header.size, f->net->ops.state_size);

	assert_true(next->filter.promisc);
	assert_int_equal(net_state_restored(next, f->be, area->payload), 0);
	assert_false(next->filter.promisc);
	assert_true(next->filter.allmulti);
	assert_memory_equal(next->filter.mac, other_mac, NET_ETH_ALEN);
	assert_int_equal(next->filter.nr_uni, 1);
	assert_memory_equal(next->filter.uni[0], third_mac, NET_ETH_ALEN);
	assert_int_equal(next->active_pairs, PAIRS);
	/* frames to the new MAC pass, to the configured one no longer */
	assert_true(net_filter_accepts(&next->filter, other_mac));
	assert_false(net_filter_accepts(&next->filter, own_mac));
	assert_int_equal(net_get_config(next, config), VIRTIO_NET_CONFIG_SIZE);
	assert_memory_equal(config + VIRTIO_NET_CONFIG_MAC, other_mac, NET_ETH_ALEN);
	free(next);
	free(area);
}

/* SET_STATUS 0 (a reset, a reboot): the defaults, in memory and in the area
 * a later instance would restore. */
static void test_state_reset_by_status_0(void **state)
{
	struct fixture *f = *state;
	struct state_area *area = calloc(1, sizeof(*area));
	struct net *next = fresh_net();

	assert_non_null(area);
	f->be->ops = &f->net->ops;
	f->be->device_state = area->payload;
	set_driver_state(f);
	f->net->ops.set_status(f->net, f->be, 0);
	assert_true(f->net->filter.promisc);
	assert_false(f->net->filter.allmulti);
	assert_memory_equal(f->net->filter.mac, own_mac, NET_ETH_ALEN);
	assert_int_equal(f->net->filter.nr_uni, 0);
	assert_int_equal(f->net->active_pairs, 1);
	/* a status other than 0 changes nothing */
	set_driver_state(f);
	f->net->ops.set_status(f->net, f->be, VIRTIO_STATUS_DRIVER_OK);
	assert_false(f->net->filter.promisc);
	f->net->ops.set_status(f->net, f->be, 0);
	/* the area says so too */
	next->active_pairs = PAIRS;
	next->filter.promisc = false;
	assert_int_equal(net_state_restored(next, f->be, area->payload), 0);
	assert_true(next->filter.promisc);
	assert_memory_equal(next->filter.mac, own_mac, NET_ETH_ALEN);
	assert_int_equal(next->active_pairs, 1);
	free(next);
	free(area);
}

/* The area is input: a field the control queue could not have set makes
 * the whole area refused, and the device keeps its defaults. */
static void test_state_bad_fields_refused(void **state)
{
	struct fixture *f = *state;
	struct state_area *area = calloc(1, sizeof(*area));
	uint8_t good[VHOST_USER_BACKEND_STATE_MAX];
	/* offsets in struct net_saved_state: version 0, promisc 4, allmulti 5,
	 * uni_overflow 6, multi_overflow 7, mac 8, active_pairs 14, nr_uni 16,
	 * nr_multi 20 */
	static const struct {
		unsigned offset, len;
		uint32_t value;
	} bad[] = {
	    {0, 4, 2},	    {4, 1, 2},	     {5, 1, 0xff}, {6, 1, 1} /* overflow with nr_uni 1 */,
	    {14, 2, 0},	    {14, 2, PAIRS + 1}, {16, 4, NET_MAC_TABLE_ENTRIES + 1},
	    {20, 4, 0x80000000u},
	};

	assert_non_null(area);
	f->be->ops = &f->net->ops;
	f->be->device_state = area->payload;
	set_driver_state(f);
	memcpy(good, area->payload, sizeof(good));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct net *next = fresh_net();
		uint8_t spoiled[VHOST_USER_BACKEND_STATE_MAX];

		memcpy(spoiled, good, sizeof(spoiled));
		memcpy(spoiled + bad[i].offset, &bad[i].value, bad[i].len);
		assert_int_equal(net_state_restored(next, f->be, spoiled), -EINVAL);
		assert_true(next->filter.promisc);
		assert_memory_equal(next->filter.mac, own_mac, NET_ETH_ALEN);
		assert_int_equal(next->active_pairs, 1);
		free(next);
	}
	free(area);
}

/* §5.1.2: a driver that declines MQ on a multi-pair device finds the
 * control queue at ring 2, and the device must serve it there. */
static void test_ctrl_ring_without_mq(void **state)
{
	struct fixture *f = *state;
	uint8_t head[2] = {VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC}, on = 1;
	uint64_t ack_gpa = BUF_GPA + 4 * BUF_STRIDE;
	struct seg segs[3] = {{head, 2, false, 0}, {&on, 1, false, 0}, {NULL, 1, true, ack_gpa}};
	uint16_t before;

	ring_init(f, 2, CTRL_FEATURES & ~BIT(VIRTIO_NET_F_MQ));
	before = used_idx(f);
	*(uint8_t *)host(f, ack_gpa, 1) = ACK_UNSET;
	publish_chain(f, segs, 3);
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_int_equal(*(uint8_t *)host(f, ack_gpa, 1), VIRTIO_NET_OK);
}

static void test_ctrl_unknown_class(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 1;

	/* VLAN (2), ANNOUNCE (3), GUEST_OFFLOADS (5), NOTF_COAL (6), and
	 * nonsense: none negotiable here */
	for (unsigned class = 2; class < 256; class ++)
		if (class != VIRTIO_NET_CTRL_MQ)
			assert_int_equal(ctrl(f, (uint8_t) class, 0, &byte, 1), VIRTIO_NET_ERR);
	assert_int_equal(f->net->queues[CTRL_INDEX].counters.ctrl_ok, 0);
}

/* The largest command is a MAC table of 2 x 4096 entries; one entry more
 * is answered ERR without being read, as is data larger than the
 * device's command buffer. */
static void ctrl_big_table(struct fixture *f, uint32_t n_uni, uint32_t n_multi, uint8_t want)
{
	uint8_t head[2] = {VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET};
	uint32_t len = 8 + (n_uni + n_multi) * NET_ETH_ALEN;
	uint8_t *data = host(f, BIG_GPA, len), *ack = host(f, BUF_GPA + 8 * BUF_STRIDE, 1);
	struct seg segs[3] = {
	    {head, 2, false, 0},
	    {NULL, len, false, BIG_GPA},
	    {NULL, 1, true, BUF_GPA + 8 * BUF_STRIDE},
	};
	uint16_t before = used_idx(f);

	memset(data, 0x02, len); /* unicast MACs 02:02:..., multicast 03:02:... */
	memcpy(data, &n_uni, 4);
	memcpy(data + 4 + n_uni * NET_ETH_ALEN, &n_multi, 4);
	for (uint32_t i = 0; i < n_multi; i++)
		data[8 + (n_uni + i) * NET_ETH_ALEN] = 0x03;
	*ack = ACK_UNSET;
	segs[1].data = data;
	publish_chain(f, segs, 3);
	f->next_buf = BUF_GPA;
	net_ctrl_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_int_equal(*ack, want);
}

static void test_ctrl_oversized_data(void **state)
{
	struct fixture *f = *state;
	uint8_t head[2] = {VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC};
	const uint32_t huge = NET_MAX_PACKET + 4096;
	struct seg segs[3] = {
	    {head, 2, false, 0},
	    {NULL, huge, false, BIG_GPA},
	    {NULL, 1, true, BUF_GPA + 8 * BUF_STRIDE},
	};
	uint8_t *ack = host(f, BUF_GPA + 8 * BUF_STRIDE, 1);

	f->net->filter.promisc = false;
	ctrl_big_table(f, 4096, 4096, VIRTIO_NET_OK);
	assert_true(f->net->filter.uni_overflow);
	assert_true(f->net->filter.multi_overflow);
	ctrl_big_table(f, 2, 1, VIRTIO_NET_OK);
	assert_false(f->net->filter.uni_overflow);
	ctrl_big_table(f, 4097, 4096, VIRTIO_NET_ERR);
	assert_false(f->net->filter.uni_overflow);
	assert_int_equal(f->net->filter.nr_uni, 2);
	/* more than the command buffer holds: not copied into it */
	*ack = ACK_UNSET;
	publish_chain(f, segs, 3);
	net_ctrl_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(*ack, VIRTIO_NET_ERR);
	assert_false(f->net->filter.promisc);
}

/* A control chain without class+command, or without its ack byte, is a
 * ring violation: NEEDS_RESET, nothing pushed. */
static void test_ctrl_chain_violations(void **state)
{
	struct fixture *f = *state;
	uint8_t head[2] = {VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC}, off = 0;
	struct seg no_ack[2] = {{head, 2, false, 0}, {&off, 1, false, 0}};
	struct seg short_head[2] = {{head, 1, false, 0}, {NULL, 1, true, 0}};
	struct seg only_ack[1] = {{NULL, 4, true, 0}};

	publish_chain(f, no_ack, 2);
	net_ctrl_handle_queue(f->net, f->q);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_non_null(strstr(virtq_broken_reason(&f->q->vq), "§5.1.6.5"));
	assert_int_equal(used_idx(f), 0);
	assert_true(f->net->filter.promisc); /* not applied */

	ring_init(f, CTRL_INDEX, CTRL_FEATURES);
	publish_chain(f, short_head, 2);
	net_ctrl_handle_queue(f->net, f->q);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_non_null(strstr(virtq_broken_reason(&f->q->vq), "1 readable"));
	assert_int_equal(used_idx(f), 0);

	ring_init(f, CTRL_INDEX, CTRL_FEATURES);
	publish_chain(f, only_ack, 1);
	net_ctrl_handle_queue(f->net, f->q);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 0);
}

/* Several commands in one kick: each answered in order. */
static void test_ctrl_batch(void **state)
{
	struct fixture *f = *state;
	uint8_t rx_off[3] = {VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0};
	uint8_t bad[3] = {9, 9, 9};
	uint64_t ack_gpa[2] = {BUF_GPA + 10 * BUF_STRIDE, BUF_GPA + 11 * BUF_STRIDE};
	struct seg first[2] = {{rx_off, 3, false, 0}, {NULL, 1, true, ack_gpa[0]}};
	struct seg second[2] = {{bad, 3, false, 0}, {NULL, 1, true, ack_gpa[1]}};

	publish_chain(f, first, 2);
	publish_chain(f, second, 2);
	net_ctrl_handle_queue(f->net, f->q);
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(used_elem(f, 0).id, 0);
	assert_int_equal(used_elem(f, 1).id, 2);
	assert_int_equal(*(uint8_t *)host(f, ack_gpa[0], 1), VIRTIO_NET_OK);
	assert_int_equal(*(uint8_t *)host(f, ack_gpa[1], 1), VIRTIO_NET_ERR);
	assert_false(f->net->filter.promisc);
}

/* ---- the transmit ring, on a socket standing in for the tap ------------- */

/* Ring index of pair index / 2 on a socket standing in for its tap queue. */
static void ring_on_socket(struct fixture *f, unsigned index, uint64_t features)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	/* net_close() closes the device's side */
	if (f->net->tap_fds[index / 2] >= 0)
		close(f->net->tap_fds[index / 2]);
	f->net->tap_fds[index / 2] = sv[0];
	f->net->queues[index & ~1u].tap_fd = sv[0];
	f->net->queues[index | 1u].tap_fd = sv[0];
	if (f->peer >= 0)
		close(f->peer);
	f->peer = sv[1];
	ring_init(f, index, features);
}

static void tx_init(struct fixture *f, uint64_t features)
{
	ring_on_socket(f, TX_INDEX, features);
}

/* What the "tap" got: the frame's length with its header, -1 none. */
static ssize_t tap_read(struct fixture *f, uint8_t *buf, size_t len)
{
	return recv(f->peer, buf, len, MSG_DONTWAIT);
}

static const struct net_counters *tx_counters(struct fixture *f)
{
	return &f->net->queues[TX_INDEX].counters;
}

static void test_tx_frames_and_drops(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	uint8_t frame[60], got[128];

	tx_init(f, RING_FEATURES);
	memset(frame, 0x5a, sizeof(frame));
	/* a good frame, header and frame in two descriptors */
	struct seg good[2] = {{&hdr, sizeof(hdr), false, 0}, {frame, sizeof(frame), false, 0}};
	publish_chain(f, good, 2);
	/* a chain shorter than the header (§5.1.6.2): dropped, counted */
	struct seg short_hdr[1] = {{&hdr, VIRTIO_NET_HDR_SIZE - 1, false, 0}};
	publish_chain(f, short_hdr, 1);
	/* a header and no frame: a runt */
	struct seg runt[1] = {{&hdr, sizeof(hdr), false, 0}};
	publish_chain(f, runt, 1);
	/* NEEDS_CSUM without VIRTIO_NET_F_CSUM */
	struct virtio_net_hdr csum = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 14};
	struct seg bad_hdr[2] = {{&csum, sizeof(csum), false, 0}, {frame, sizeof(frame), false, 0}};
	publish_chain(f, bad_hdr, 2);
	/* a frame over 64 KiB (NET_MAX_FRAME + 1 after the header) */
	struct seg too_big[2] = {{&hdr, sizeof(hdr), false, 0},
				 {NULL, NET_MAX_FRAME + 1, false, BIG_GPA}};
	publish_chain(f, too_big, 2);
	/* the largest frame passes the size check (the socket may refuse
	 * it: then it is tx_tap_rejected, not tx_too_big) */

	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	/* every chain is completed, the dropped ones too, with 0 written */
	assert_int_equal(used_idx(f), 5);
	for (uint16_t i = 0; i < 5; i++)
		assert_int_equal(used_elem(f, i).len, 0);
	assert_int_equal(tap_read(f, got, sizeof(got)), sizeof(hdr) + sizeof(frame));
	assert_memory_equal(got + sizeof(hdr), frame, sizeof(frame));
	assert_int_equal(tap_read(f, got, sizeof(got)), -1);
	assert_int_equal(tx_counters(f)->tx_frames, 1);
	assert_int_equal(tx_counters(f)->tx_bytes, sizeof(frame));
	assert_int_equal(tx_counters(f)->drops[NET_DROP_TX_HEADER], 1);
	assert_int_equal(tx_counters(f)->drops[NET_DROP_TX_MALFORMED], 2);
	assert_int_equal(tx_counters(f)->drops[NET_DROP_TX_TOO_BIG], 1);
}

/* §5.1.6.2: a transmit chain is device-readable only; a writable
 * descriptor is a ring violation (NEEDS_RESET), nothing is sent. */
static void test_tx_writable_descriptor_breaks_ring(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	uint8_t frame[60] = {0}, got[128];
	struct seg bad[3] = {
	    {&hdr, sizeof(hdr), false, 0}, {frame, sizeof(frame), false, 0}, {NULL, 16, true, 0}};

	tx_init(f, RING_FEATURES);
	publish_chain(f, bad, 3);
	net_handle_queue(f->net, f->q);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_non_null(strstr(virtq_broken_reason(&f->q->vq), "device-writable"));
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(tap_read(f, got, sizeof(got)), -1);
	assert_int_equal(tx_counters(f)->tx_frames, 0);
}

/* ---- queues the negotiated features do not have (§5.1.2) ---------------- */

/* A receive buffer: one device-writable descriptor of len bytes. */
static uint16_t publish_rx(struct fixture *f, uint32_t len)
{
	struct seg buf[1] = {{NULL, len, true, 0}};

	return publish_chain(f, buf, 1);
}

/* Without MQ the control queue is ring 2: ring 2N (here 4) is no queue.
 * A front-end (or a guest through it) that starts it anyway must get
 * NEEDS_RESET, not a receive ring without its chain storage. */
static void test_ring_beyond_features_refused(void **state)
{
	struct fixture *f = *state;
	struct seg chain[1] = {{NULL, 64, true, 0}};
	uint16_t segs_head;
	struct virtq_segment segs[4];
	struct virtq_chain c;

	ring_init(f, CTRL_INDEX, RING_FEATURES | BIT(VIRTIO_NET_F_CTRL_VQ));
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	publish_rx(f, 1514);
	assert_int_equal(net_handle_queue(f->net, f->q), -1);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_non_null(strstr(virtq_broken_reason(&f->q->vq), "§5.1.2"));
	assert_int_equal(used_idx(f), 0);
	f->net->ops.queue_stop(f->net, f->q);

	/* a chain a previous instance left inflight there is not touched */
	ring_init(f, CTRL_INDEX, RING_FEATURES | BIT(VIRTIO_NET_F_CTRL_VQ));
	segs_head = publish_chain(f, chain, 1);
	virtq_chain_init(&c, segs, 4);
	assert_int_equal(virtq_get_chain(&f->q->vq, segs_head, &c), 0);
	f->net->ops.handle_chain(f->net, f->q, &c);
	assert_true(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 0);

	/* transmitq2 (3) without MQ */
	ring_init(f, 3, RING_FEATURES);
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	assert_int_equal(net_handle_queue(f->net, f->q), -1);
	assert_true(virtq_is_broken(&f->q->vq));

	/* with MQ, 0..2N are all queues: ring 4 is the control queue */
	ring_init(f, CTRL_INDEX, CTRL_FEATURES);
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	assert_int_equal(
	    ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, (uint8_t[]){1}, 1),
	    VIRTIO_NET_OK);
	assert_false(virtq_is_broken(&f->q->vq));
}

/* ---- the receive ring, on a socket standing in for the tap -------------- */

#define FRAME_LEN 60 /* after the vnet header */

/* A frame as the tap hands it over: the vnet header, then Ethernet to dst. */
static void tap_send(struct fixture *f, const struct virtio_net_hdr *hdr, const uint8_t *dst)
{
	uint8_t buf[VIRTIO_NET_HDR_SIZE + FRAME_LEN];

	memset(buf, 0x5a, sizeof(buf));
	memcpy(buf, hdr, VIRTIO_NET_HDR_SIZE);
	memcpy(buf + VIRTIO_NET_HDR_SIZE, dst, NET_ETH_ALEN);
	assert_int_equal(send(f->peer, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
}

/* Receive ring `index` started on a socket, as the back-end's thread does. */
static struct net_queue *rx_start(struct fixture *f, unsigned index, uint64_t features)
{
	ring_on_socket(f, index, features);
	tap_hook_fd = f->net->tap_fds[index / 2];
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	return &f->net->queues[index];
}

#define MRG BIT(VIRTIO_NET_F_MRG_RXBUF)
#define GUEST_OFFLOADS                                                                             \
	(BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6))

/* Backpressure: with no receive buffer the device reads nothing from the
 * tap (the frame waits there), counts the wait, and asks for a kick; the
 * next buffer gets the frame. */
static void test_rx_backpressure_frame_waits_on_tap(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	struct net_queue *nq = rx_start(f, 0, RING_FEATURES | MRG);
	uint8_t probe[8];

	tap_send(f, &hdr, own_mac);
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 0);
	assert_true(nq->rx_need_kick);
	assert_true(nq->counters.rx_no_buffers >= 1);
	assert_int_equal(nq->counters.rx_frames, 0);
	/* still on the "tap": nothing was read and dropped */
	assert_int_equal(recv(f->net->tap_fds[0], probe, sizeof(probe), MSG_PEEK | MSG_DONTWAIT),
			 (ssize_t)sizeof(probe));
	publish_rx(f, 2048);
	net_handle_queue(f->net, f->q);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used_elem(f, 0).len, VIRTIO_NET_HDR_SIZE + FRAME_LEN);
	assert_int_equal(nq->counters.rx_frames, 1);
	for (unsigned d = 0; d < NET_DROP_REASONS; d++)
		assert_int_equal(nq->counters.drops[d], 0);
}

/* MRG_RXBUF (§5.1.6.4): a frame larger than one buffer spreads over
 * several, num_buffers says how many, every byte arrives in order. */
static void test_rx_mergeable_spreads_frame(void **state)
{
	struct fixture *f = *state;
	struct net_queue *nq = rx_start(f, 0, RING_FEATURES | MRG);
	uint8_t frame[VIRTIO_NET_HDR_SIZE + 3000], got[sizeof(frame)];
	uint16_t heads[3];
	uint32_t at = 0;

	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	memset(frame, 0, VIRTIO_NET_HDR_SIZE);
	memcpy(frame + VIRTIO_NET_HDR_SIZE, own_mac, NET_ETH_ALEN);
	for (unsigned i = 0; i < 3; i++)
		heads[i] = publish_rx(f, 1200);
	assert_int_equal(send(f->peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 3);
	for (unsigned i = 0; i < 3; i++) {
		struct virtq_used_elem e = used_elem(f, (uint16_t)i);

		assert_int_equal(e.id, heads[i]);
		memcpy(got + at, host(f, BUF_GPA + heads[i] * BUF_STRIDE, e.len), e.len);
		at += e.len;
	}
	assert_int_equal(at, sizeof(frame));
	assert_int_equal(((struct virtio_net_hdr *)got)->num_buffers, 3);
	assert_memory_equal(got + VIRTIO_NET_HDR_SIZE, frame + VIRTIO_NET_HDR_SIZE,
			    sizeof(frame) - VIRTIO_NET_HDR_SIZE);
	assert_int_equal(nq->counters.rx_frames, 1);
}

/* A transmit chain a killed instance left inflight is sent exactly once by
 * the next (vhost-user "Inflight I/O tracking"), then completed. */
static void test_tx_inflight_replayed_once(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	uint8_t frame[60], got[128];
	struct seg chain[2] = {{&hdr, sizeof(hdr), false, 0}, {frame, sizeof(frame), false, 0}};
	struct virtq_segment segs[4];
	struct virtq_chain c;
	uint16_t head;

	tx_init(f, RING_FEATURES);
	memset(frame, 0x3c, sizeof(frame));
	head = publish_chain(f, chain, 2);
	/* the previous instance popped it; the new one starts past it */
	virtq_set_base(&f->q->vq, 1);
	virtq_chain_init(&c, segs, 4);
	assert_int_equal(virtq_get_chain(&f->q->vq, head, &c), 0);
	f->net->ops.handle_chain(f->net, f->q, &c);
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used_elem(f, 0).id, head);
	assert_int_equal(tap_read(f, got, sizeof(got)), sizeof(hdr) + sizeof(frame));
	assert_memory_equal(got + sizeof(hdr), frame, sizeof(frame));
	assert_int_equal(tap_read(f, got, sizeof(got)), -1); /* once */
	assert_int_equal(tx_counters(f)->tx_frames, 1);
}

/* tun hands over the whole frame's length even when it cut the frame to
 * the buffer: more than the 64 KiB bounce buffer is dropped and counted,
 * never copied out of it. */
static void test_rx_read_longer_than_bounce_dropped(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	struct net_queue *nq = rx_start(f, 0, RING_FEATURES | MRG);
	struct seg big[1] = {{NULL, 0x30000, true, BIG_GPA}};

	publish_chain(f, big, 1); /* room for all of it: only the device's check stops it */
	tap_send(f, &hdr, own_mac);
	fake_read_extra = NET_MAX_PACKET;
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(nq->counters.drops[NET_DROP_RX_TOO_BIG], 1);
	assert_int_equal(nq->counters.rx_frames, 0);
	/* the chain is still the guest's: the next frame lands in it */
	tap_send(f, &hdr, own_mac);
	net_handle_queue(f->net, f->q);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used_elem(f, 0).len, VIRTIO_NET_HDR_SIZE + FRAME_LEN);
}

/* §5.1.6.4.1: without GUEST_CSUM flags is 0 (tun sets DATA_VALID itself);
 * a GSO type the driver did not negotiate is dropped and counted. */
static void rx_header_case(struct fixture *f, uint64_t features, uint8_t flags, uint8_t gso,
			   bool delivered, uint8_t want_flags)
{
	struct virtio_net_hdr hdr = {.flags = flags, .gso_type = gso, .gso_size = gso ? 1448 : 0};
	struct net_queue *nq = rx_start(f, 0, features);
	uint16_t head = publish_rx(f, 2048);
	struct virtio_net_hdr got;

	tap_send(f, &hdr, own_mac);
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(used_idx(f), delivered ? 1 : 0);
	assert_int_equal(nq->counters.drops[NET_DROP_RX_BAD_HEADER], delivered ? 0 : 1);
	if (delivered) {
		memcpy(&got, host(f, BUF_GPA + head * BUF_STRIDE, sizeof(got)), sizeof(got));
		assert_int_equal(got.flags, want_flags);
		assert_int_equal(got.gso_type, gso);
		assert_int_equal(got.num_buffers, 1);
	}
	f->net->ops.queue_stop(f->net, f->q);
}

static void test_rx_header_against_features(void **state)
{
	struct fixture *f = *state;
	const uint8_t valid = VIRTIO_NET_HDR_F_DATA_VALID, partial = VIRTIO_NET_HDR_F_NEEDS_CSUM;

	/* straight into the chain (no MRG_RXBUF), and through the bounce buffer */
	for (unsigned path = 0; path < 2; path++) {
		uint64_t base = RING_FEATURES | (path ? MRG : 0);

		rx_header_case(f, base, valid, VIRTIO_NET_HDR_GSO_NONE, true, 0);
		rx_header_case(f, base, partial | valid, VIRTIO_NET_HDR_GSO_NONE, true, 0);
		rx_header_case(f, base | GUEST_OFFLOADS, valid, VIRTIO_NET_HDR_GSO_NONE, true,
			       valid);
		rx_header_case(f, base | GUEST_OFFLOADS, partial, VIRTIO_NET_HDR_GSO_TCPV4, true,
			       partial);
		/* stale GSO frames from before a reset */
		rx_header_case(f, base, partial, VIRTIO_NET_HDR_GSO_TCPV4, false, 0);
		rx_header_case(f,
			       base | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4),
			       partial, VIRTIO_NET_HDR_GSO_TCPV6, false, 0);
		rx_header_case(f, base | GUEST_OFFLOADS, partial, VIRTIO_NET_HDR_GSO_UDP, false, 0);
		rx_header_case(f, base | GUEST_OFFLOADS, partial,
			       VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, false, 0);
		rx_header_case(f, base | GUEST_OFFLOADS | BIT(VIRTIO_NET_F_GUEST_ECN), partial,
			       VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, true, partial);
		rx_header_case(f, base | GUEST_OFFLOADS, partial, 5 /* UDP_L4 */, false, 0);
	}
}

/* A device reset narrows what the tap may hand over back to plain frames
 * (TUNSETOFFLOAD 0), so the next driver gets no GSO it did not ask for. */
static void test_reset_clears_tap_offloads(void **state)
{
	struct fixture *f = *state;
	int fds[PAIRS];

	for (unsigned k = 0; k < PAIRS; k++) {
		fds[k] = eventfd(0, EFD_CLOEXEC);
		assert_true(fds[k] >= 0 && fds[k] < OFFLOAD_FDS);
		f->net->tap_fds[k] = fds[k]; /* net_close closes them */
		offload_seen[fds[k]] = TUN_F_CSUM | TUN_F_TSO4;
	}
	f->net->ops.reset(f->net);
	for (unsigned k = 0; k < PAIRS; k++)
		assert_int_equal(offload_seen[fds[k]], 0);
}

/* A short chain (EINVAL from tun: shorter than the vnet header) loses the
 * frame in the kernel: counted, and the chain goes back to the guest. */
static void test_rx_read_error_counted(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	struct net_queue *nq = rx_start(f, 0, RING_FEATURES);

	publish_rx(f, 2048);
	tap_send(f, &hdr, own_mac);
	tap_send(f, &hdr, own_mac);
	fake_read_errno = EINVAL;
	net_handle_queue(f->net, f->q);
	assert_false(virtq_is_broken(&f->q->vq));
	assert_int_equal(nq->counters.drops[NET_DROP_RX_READ_FAILED], 1);
	/* the second frame went into the same chain */
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(nq->counters.rx_frames, 1);
	assert_int_equal(tap_gone_calls, 0);
}

/* The tap deleted: tun's poll says POLLERR (a socket's, POLLHUP) at once
 * and forever, its reads EBADFD.  One report, and the ring stops instead
 * of spinning. */
static void test_rx_tap_gone_stops(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};

	/* poll */
	rx_start(f, 0, RING_FEATURES);
	publish_rx(f, 2048);
	close(f->peer);
	f->peer = -1;
	assert_int_equal(f->net->ops.queue_wait(f->net, f->q, 0), -ENODEV);
	assert_int_equal(tap_gone_calls, 1);
	assert_int_equal(f->net->ops.queue_wait(f->net, f->q, 0), -ENODEV);
	assert_int_equal(tap_gone_calls, 1); /* one report */

	/* a read (the transmit ring's poll for POLLOUT, or a read first) */
	atomic_store(&f->net->tap_lost, false);
	tap_gone_calls = 0;
	rx_start(f, 0, RING_FEATURES);
	publish_rx(f, 2048);
	tap_send(f, &hdr, own_mac);
	fake_read_errno = EBADFD;
	net_handle_queue(f->net, f->q);
	assert_int_equal(tap_gone_calls, 1);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(f->net->ops.queue_wait(f->net, f->q, 0), -ENODEV);
	assert_int_equal(tap_gone_calls, 1);
}

/* §5.1.6.5.5: a frame read by a pair's receive thread just before
 * VQ_PAIRS_SET deactivated that pair (and was acked) is not pushed. */
static void pairs_set(void *arg)
{
	struct fixture *f = arg;
	uint16_t pairs = 1;

	assert_int_equal(net_ctrl_command(f->net, CTRL_FEATURES, VIRTIO_NET_CTRL_MQ,
					  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, (uint8_t *)&pairs, 2),
			 VIRTIO_NET_OK);
}

static void test_rx_deactivated_pair_not_pushed(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	uint16_t pairs = PAIRS;

	f->be->queues[CTRL_INDEX].num = QSIZE; /* the front-end serves ring 2N through us */
	for (unsigned path = 0; path < 2; path++) {
		struct net_queue *nq = rx_start(f, 2, CTRL_FEATURES | (path ? MRG : 0));

		assert_int_equal(net_ctrl_command(f->net, CTRL_FEATURES, VIRTIO_NET_CTRL_MQ,
						  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
						  (uint8_t *)&pairs, 2),
				 VIRTIO_NET_OK);
		publish_rx(f, 2048);
		tap_send(f, &hdr, own_mac);
		net_handle_queue(f->net, f->q);
		assert_int_equal(used_idx(f), 1); /* pair 2 active: delivered */
		publish_rx(f, 2048);
		tap_send(f, &hdr, own_mac);
		after_read = pairs_set;
		after_read_arg = f;
		net_handle_queue(f->net, f->q);
		assert_int_equal(f->net->active_pairs, 1);
		assert_int_equal(used_idx(f), 1);
		assert_int_equal(nq->counters.drops[NET_DROP_RX_STOPPED], 1);
		f->net->ops.queue_stop(f->net, f->q);
	}
}

/* The filter generation is any number: one equal to what a ring took for
 * "never copied" must not keep the ring on a stale (empty) filter. */
static void test_rx_filter_generation_wraps(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr hdr = {0};
	struct net_queue *nq;

	atomic_store(&f->net->filter_gen, UINT_MAX - 1);
	net_filter_reset(f->net); /* promiscuous; the generation is now UINT_MAX */
	assert_int_equal(atomic_load(&f->net->filter_gen), UINT_MAX);
	nq = rx_start(f, 0, RING_FEATURES);
	publish_rx(f, 2048);
	tap_send(f, &hdr, other_mac);
	net_handle_queue(f->net, f->q);
	assert_int_equal(nq->counters.drops[NET_DROP_RX_FILTERED], 0);
	assert_int_equal(used_idx(f), 1);
}

/* active_pairs and rx_started are written under tap_lock (receive threads
 * and net_tap_sync read them there): with the lock held elsewhere, the
 * writer waits before it writes. */
struct locked_call {
	struct fixture *f;
	int what;
};

static void *locked_call_thread(void *arg)
{
	struct locked_call *c = arg;
	uint16_t pairs = PAIRS;

	if (c->what == 0)
		net_ctrl_command(c->f->net, CTRL_FEATURES, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, (uint8_t *)&pairs, 2);
	else if (c->what == 1)
		net_filter_reset(c->f->net);
	else
		c->f->net->ops.queue_start(c->f->net, c->f->q);
	return NULL;
}

static unsigned locked_read(struct fixture *f, int what)
{
	return what == 2 ? __atomic_load_n(&f->net->queues[2].rx_started, __ATOMIC_RELAXED)
			 : __atomic_load_n(&f->net->active_pairs, __ATOMIC_RELAXED);
}

static void test_pair_state_written_under_tap_lock(void **state)
{
	struct fixture *f = *state;
	const unsigned before[3] = {1, PAIRS, 0}, after[3] = {PAIRS, 1, 1};

	for (int what = 0; what < 3; what++) {
		struct locked_call c = {f, what};
		struct timespec pause = {.tv_nsec = 10 * 1000000l};
		pthread_t t;

		if (what == 1)
			f->net->active_pairs = PAIRS;
		if (what == 2)
			ring_on_socket(f, 2, RING_FEATURES | BIT(VIRTIO_NET_F_MQ));
		pthread_mutex_lock(&f->net->tap_lock);
		assert_int_equal(pthread_create(&t, NULL, locked_call_thread, &c), 0);
		for (int i = 0; i < 10; i++) { /* 100 ms for the writer to get there */
			nanosleep(&pause, NULL);
			assert_int_equal(locked_read(f, what), before[what]);
		}
		pthread_mutex_unlock(&f->net->tap_lock);
		pthread_join(t, NULL);
		assert_int_equal(locked_read(f, what), after[what]);
	}
}

/* One limiter per direction, started once: neither a ring restart (a
 * driver resetting in a loop) nor a second queue pair refills it or grants
 * the one-time burst again. */
static int setup_tx_limited(void **state)
{
	setup_tx_rate = "bytes=100:1000000:60"; /* 100 bytes per 1000 s, burst 60 */
	return setup(state);
}

static void tx_frame(struct fixture *f)
{
	static struct virtio_net_hdr hdr;
	static uint8_t frame[FRAME_LEN];
	struct seg good[2] = {{&hdr, sizeof(hdr), false, 0}, {frame, sizeof(frame), false, 0}};

	memset(frame, 0x5a, sizeof(frame));
	publish_chain(f, good, 2);
}

static void test_tx_rate_shared_and_started_once(void **state)
{
	struct fixture *f = *state;

	tx_init(f, RING_FEATURES | BIT(VIRTIO_NET_F_MQ));
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	tx_frame(f); /* the burst */
	tx_frame(f); /* 60 of the 100 */
	tx_frame(f); /* 40 left: waits */
	assert_true(net_handle_queue(f->net, f->q) > 0);
	assert_int_equal(used_idx(f), 2);
	/* the ring restarts (the chain it held goes back and comes again) */
	f->net->ops.queue_stop(f->net, f->q);
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	assert_true(net_handle_queue(f->net, f->q) > 0);
	assert_int_equal(used_idx(f), 2);
	f->net->ops.queue_stop(f->net, f->q);
	/* transmitq2 pays from the same buckets */
	ring_on_socket(f, 3, RING_FEATURES | BIT(VIRTIO_NET_F_MQ));
	assert_int_equal(f->net->ops.queue_start(f->net, f->q), 0);
	tx_frame(f);
	assert_true(net_handle_queue(f->net, f->q) > 0);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(f->net->queues[3].counters.tx_rate_waits, 1);
}

/* A restarted isola-net may find its single-queue tap still held by the
 * one it replaces: TUNSETIFF's EBUSY is waited out (up to ~2 s).  On a
 * real tap, in a network namespace of a child's own. */
static void *busy_release(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	close(busy_holder);
	return NULL;
}

static double busy_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int busy_hold(void)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};

	busy_holder = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (busy_holder < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "isola-busy");
	return ioctl(busy_holder, TUNSETIFF, &ifr);
}

/* 0 passed, 77 skip (no namespace or no tun), else the step that failed */
static int busy_child(void)
{
	struct net *net = calloc(1, sizeof(*net));
	struct timespec t0;
	char err[256];
	pthread_t t;
	int ret;

	if (!net)
		return 2;
	if (unshare(CLONE_NEWNET) < 0 || access("/dev/net/tun", R_OK | W_OK) < 0)
		return 77;
	if (busy_hold() < 0 || ioctl(busy_holder, TUNSETPERSIST, 1) < 0)
		return 3;
	net->pairs = 1;
	net->mtu = 1500;
	snprintf(net->tap_name, sizeof(net->tap_name), "isola-busy");
	if (net_init(net, err, sizeof(err)))
		return 4;
	/* the old user lets go after 300 ms: attached then */
	pthread_create(&t, NULL, busy_release, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = net_open_tap(net, err, sizeof(err));
	pthread_join(t, NULL);
	if (ret != 0) {
		fprintf(stderr, "busy_child: %s\n", err);
		return 5;
	}
	if (busy_since(&t0) < 0.25)
		return 6;
	net_close(net);
	/* held for good: the clear message after about 2 s */
	if (busy_hold() < 0)
		return 7;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = net_open_tap(net, err, sizeof(err));
	if (ret != -EBUSY || !strstr(err, "in use"))
		return 8;
	if (busy_since(&t0) < 1.9 || busy_since(&t0) > 3.0)
		return 9;
	net_close(net);
	free(net);
	return 0;
}

static void test_tap_busy_waited_out(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		printf("SKIP: needs root (a network namespace and a tap of its own)\n");
		skip();
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(busy_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		printf("SKIP: no network namespace or no /dev/net/tun here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tx_header_plain_frames),
	    T(test_tx_header_csum_needs_feature),
	    T(test_tx_header_gso_needs_feature),
	    T(test_filter_unicast_and_broadcast),
	    T(test_filter_multicast),
	    T(test_filter_promiscuous),
	    T(test_filter_after_reset),
	    T(test_ctrl_rx_modes),
	    T(test_ctrl_mac_table),
	    T(test_ctrl_mac_table_count_past_data),
	    T(test_ctrl_mac_table_overflow),
	    T(test_ctrl_mac_addr_set),
	    T(test_ctrl_vq_pairs),
	    T(test_ctrl_ring_without_mq),
	    T(test_ctrl_unknown_class),
	    T(test_ctrl_oversized_data),
	    T(test_ctrl_chain_violations),
	    T(test_ctrl_batch),
	    T(test_tx_frames_and_drops),
	    T(test_tx_writable_descriptor_breaks_ring),
	    T(test_state_survives_restart),
	    T(test_state_reset_by_status_0),
	    T(test_state_bad_fields_refused),
	    T(test_ring_beyond_features_refused),
	    T(test_rx_backpressure_frame_waits_on_tap),
	    T(test_rx_mergeable_spreads_frame),
	    T(test_tx_inflight_replayed_once),
	    T(test_rx_read_longer_than_bounce_dropped),
	    T(test_rx_header_against_features),
	    T(test_reset_clears_tap_offloads),
	    T(test_rx_read_error_counted),
	    T(test_rx_tap_gone_stops),
	    T(test_rx_deactivated_pair_not_pushed),
	    T(test_rx_filter_generation_wraps),
	    T(test_pair_state_written_under_tap_lock),
	    cmocka_unit_test_setup_teardown(test_tx_rate_shared_and_started_once, setup_tx_limited,
					    teardown),
	    T(test_tap_busy_waited_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
