// SPDX-License-Identifier: MIT
/*
 * vsock-loadgen: a virtio-vsock driver in a fake guest (virtio 1.2 §5.10),
 * for benchmarking isola-vsock from the host, and the same host-side traffic
 * over a plain Unix-socket pair, the limit.
 *
 * "Guest memory" is a memfd this process maps; the back-end gets it with
 * SET_MEM_TABLE (guest_address 0, user_address = our mapping).  The three
 * split rings (§5.10.2: rx = 0, tx = 1, event = 2) live at its start; every
 * descriptor owns one buffer: a 44-byte struct virtio_vsock_hdr (§5.10.6)
 * and its payload, in one descriptor both ways.  The guest's side runs in the
 * main thread; the host's side (Firecracker's hybrid convention: connect to
 * the Unix socket UDS, "CONNECT <port>\n", "OK <hostport>\n"; the guest's
 * connections to CID 2 port P reach the listener on UDS_P) in another.
 *
 *   --socket PATH --uds UDS --cid N --mode MODE    through isola-vsock
 *   --pair --mode MODE                             the limit: the host's
 *                                                  side alone, on a Unix
 *                                                  socket pair / listener
 * MODE:
 *   h2g   one host connection writes 64 KiB at a time into the guest, which
 *         takes every packet, returns the buffer and the credit (§5.10.6.3)
 *         when Linux 6.1 would (below 64 KiB of free space seen by the host)
 *   g2h   the guest connects to CID 2 port 5001 and sends packets of
 *         --pkt bytes as its credit allows; the host's listener reads
 *   conn  connection set-up: the host connects, CONNECT, reads OK, closes;
 *         the guest answers REQUEST with RESPONSE and SHUTDOWN with RST
 * One line of key=value figures goes to stdout (bench/vsock/run.sh reads it):
 * bytes and MiB/s received at the far end, or connections and per second,
 * over --seconds after --warmup; the guest's packets in, credit requests and
 * updates sent, kicks and interrupts count the warm-up too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "isola/virtio.h"
#include "lib/vhost_user.h"
#include "lib/virtq.h"

/* the packet header and ops (§5.10.6): struct vsock_hdr, VSOCK_OP_*, in
 * include/isola/virtio.h */
#define VLG_GUEST_PORT 5000 /* h2g and conn: the guest's listener */
#define VLG_HOST_PORT 5001  /* g2h: the host's listener, UDS_5001 */
#define VLG_SRC_PORT 49152  /* g2h: the guest's side */

#define VLG_RX 0
#define VLG_TX 1
#define VLG_EVENT 2
#define VLG_NQUEUES 3
#define VLG_QSIZE 256
#define VLG_RING_GPA(q) ((uint64_t)(q)*0x8000ull)
#define VLG_AVAIL_OFF 0x4000ull
#define VLG_USED_OFF 0x5000ull
#define VLG_BUF_GPA 0x100000ull
#define VLG_MAX_PAYLOAD (64u * 1024)
#define VLG_BUF_STRIDE (sizeof(struct vsock_hdr) + VLG_MAX_PAYLOAD + 20) /* 8-aligned */
#define VLG_BUF_GPA_OF(q, i) (VLG_BUF_GPA + ((uint64_t)(q)*VLG_QSIZE + (i)) * VLG_BUF_STRIDE)
#define VLG_MEM_BYTES (VLG_BUF_GPA + (uint64_t)VLG_NQUEUES * VLG_QSIZE * VLG_BUF_STRIDE)
#define VLG_HOST_CHUNK (64u * 1024)
/* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE: the receiver returns credit only
 * once the free space the sender can see falls below it */
#define VLG_CREDIT_LOW (64u * 1024)

enum vlg_mode { VLG_H2G, VLG_G2H, VLG_CONN };

struct vlg_ring {
	unsigned index;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t avail_idx, published, last_used;
	uint16_t free[VLG_QSIZE]; /* tx: descriptors we may fill */
	unsigned nfree;
	int kick_fd, call_fd;
};

static struct {
	/* options */
	const char *socket, *uds;
	unsigned cid, pkt, buf_alloc;
	enum vlg_mode mode;
	bool pair;
	double seconds, warmup;
	/* the front-end */
	int sock, memfd;
	uint8_t *mem;
	uint64_t features, protocol_features;
	struct vlg_ring ring[VLG_NQUEUES];
	/* the guest's one stream connection (h2g, g2h) */
	bool connected;
	uint32_t peer_port, peer_buf_alloc, peer_fwd_cnt;
	uint32_t fwd_cnt, fwd_reported, tx_cnt;
	uint64_t credit_requests, credit_updates, packets, stalls, kicks, interrupts;
	/* the far end's count, read by the main thread */
	uint64_t counted; /* bytes or connections, atomic */
	volatile bool stop;
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void count(uint64_t n)
{
	__atomic_add_fetch(&g.counted, n, __ATOMIC_RELAXED);
}

static void *gptr(uint64_t gpa)
{
	return g.mem + gpa;
}

/* ---- the vhost-user front-end (as bench/net/frontend.c) ---------------------- */

static int vlg_call(struct vhost_user_msg *msg, struct vhost_user_msg *reply)
{
	struct vhost_user_msg local;
	int ret;

	if (!reply)
		reply = &local;
	if ((g.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
	    !vhost_user_expects_reply(msg))
		msg->hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	ret = vhost_user_call(g.sock, msg, reply);
	if (!ret && vhost_user_needs_ack(msg) && reply->payload.u64 != 0)
		ret = -EIO;
	if (reply == &local)
		vhost_user_close_fds(&local);
	if (ret)
		fprintf(stderr, "vsock-loadgen: %s: %s\n",
			vhost_user_request_name(msg->hdr.request), strerror(-ret));
	return ret;
}

static int vlg_u64(uint32_t request, uint64_t value, uint64_t *out)
{
	struct vhost_user_msg msg, reply;
	int ret;

	vhost_user_msg_init(&msg, request, out ? 0 : sizeof(uint64_t));
	msg.payload.u64 = value;
	ret = vlg_call(&msg, out ? &reply : NULL);
	if (!ret && out) {
		*out = reply.payload.u64;
		vhost_user_close_fds(&reply);
	}
	return ret;
}

static int vlg_state(uint32_t request, unsigned index, unsigned num)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(msg.payload.state));
	msg.payload.state.index = index;
	msg.payload.state.num = num;
	return vlg_call(&msg, NULL);
}

static int vlg_fd(uint32_t request, unsigned index, int fd)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(uint64_t));
	msg.payload.u64 = index;
	msg.fds[0] = fd;
	msg.nfds = 1;
	return vlg_call(&msg, NULL);
}

/* VERSION_1, and VIRTIO_F_EVENT_IDX when offered, as Linux's virtio_ring
 * takes it (virtio 1.2 §2.7.7.2, §2.7.10: kicks and interrupts as
 * avail_event / used_event say); the guest CID from the config space when the back-end offers it
 * (§5.10.4: le64 guest_cid; vhost-user GET_CONFIG) */
static int vlg_frontend_start(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct vhost_user_msg msg, reply;
	uint64_t offered, protocol = 0;
	int ret;

	if (strlen(g.socket) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, g.socket);
	g.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g.sock < 0 || connect(g.sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "vsock-loadgen: connect %s: %s\n", g.socket, strerror(errno));
		return -errno;
	}
	if ((ret = vlg_u64(VHOST_USER_GET_FEATURES, 0, &offered)))
		return ret;
	if (!(offered & (1ull << VIRTIO_F_VERSION_1)))
		return -EPROTO;
	g.features = offered & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) |
				(1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	if (g.features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		if ((ret = vlg_u64(VHOST_USER_GET_PROTOCOL_FEATURES, 0, &protocol)))
			return ret;
		protocol &= (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			    (1ull << VHOST_USER_PROTOCOL_F_CONFIG);
		if ((ret = vlg_u64(VHOST_USER_SET_PROTOCOL_FEATURES, protocol, NULL)))
			return ret;
		g.protocol_features = protocol;
	}
	vhost_user_msg_init(&msg, VHOST_USER_SET_OWNER, 0);
	if ((ret = vlg_call(&msg, NULL)))
		return ret;
	if (protocol & (1ull << VHOST_USER_PROTOCOL_F_CONFIG)) {
		uint64_t cid;
		vhost_user_msg_init(&msg, VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE + 8);
		msg.payload.config.size = 8;
		if ((ret = vlg_call(&msg, &reply)))
			return ret;
		memcpy(&cid, reply.payload.config.payload, 8);
		vhost_user_close_fds(&reply);
		if (cid != g.cid) {
			fprintf(stderr, "vsock-loadgen: the config space says CID %lu, not %u\n",
				(unsigned long)cid, g.cid);
			return -EPROTO;
		}
	}
	if ((ret = vlg_u64(VHOST_USER_SET_FEATURES, g.features, NULL)))
		return ret;

	g.memfd = memfd_create("vsock-loadgen-guest", MFD_CLOEXEC);
	if (g.memfd < 0 || ftruncate(g.memfd, (off_t)VLG_MEM_BYTES) < 0)
		return -errno;
	g.mem = mmap(NULL, VLG_MEM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, g.memfd, 0);
	if (g.mem == MAP_FAILED)
		return -errno;
	memset(g.mem, 0, VLG_MEM_BYTES); /* page faults out of the measurement */
	vhost_user_msg_init(&msg, VHOST_USER_SET_MEM_TABLE,
			    8 + (uint32_t)sizeof(struct vhost_user_mem_region));
	msg.payload.memory.nregions = 1;
	msg.payload.memory.regions[0] = (struct vhost_user_mem_region){
	    .guest_address = 0, .size = VLG_MEM_BYTES, .user_address = (uintptr_t)g.mem};
	msg.fds[0] = g.memfd;
	msg.nfds = 1;
	if ((ret = vlg_call(&msg, NULL)))
		return ret;
	for (unsigned q = 0; q < VLG_NQUEUES; q++) {
		struct vlg_ring *r = &g.ring[q];
		r->index = q;
		r->desc = gptr(VLG_RING_GPA(q));
		r->avail = gptr(VLG_RING_GPA(q) + VLG_AVAIL_OFF);
		r->used = gptr(VLG_RING_GPA(q) + VLG_USED_OFF);
		if ((ret = vlg_state(VHOST_USER_SET_VRING_NUM, q, VLG_QSIZE)) ||
		    (ret = vlg_state(VHOST_USER_SET_VRING_BASE, q, 0)))
			return ret;
		vhost_user_msg_init(&msg, VHOST_USER_SET_VRING_ADDR, sizeof(msg.payload.addr));
		msg.payload.addr.index = q;
		msg.payload.addr.desc_user_addr = (uintptr_t)r->desc;
		msg.payload.addr.avail_user_addr = (uintptr_t)r->avail;
		msg.payload.addr.used_user_addr = (uintptr_t)r->used;
		if ((ret = vlg_call(&msg, NULL)))
			return ret;
		r->kick_fd = eventfd(0, EFD_CLOEXEC);
		r->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->kick_fd < 0 || r->call_fd < 0)
			return -errno;
		if ((ret = vlg_fd(VHOST_USER_SET_VRING_KICK, q, r->kick_fd)) ||
		    (ret = vlg_fd(VHOST_USER_SET_VRING_CALL, q, r->call_fd)))
			return ret;
		if ((g.features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) &&
		    (ret = vlg_state(VHOST_USER_SET_VRING_ENABLE, q, 1)))
			return ret;
	}
	return 0;
}

/* ---- the guest's driver ------------------------------------------------------ */

static void ring_add(struct vlg_ring *r, uint16_t id)
{
	r->avail->ring[r->avail_idx % VLG_QSIZE] = id;
	r->avail_idx++;
}

static bool event_idx(void)
{
	return g.features & (1ull << VIRTIO_F_EVENT_IDX);
}

/* §2.7.7.2 / §2.7.10: with EVENT_IDX, notify when the index moved from OLD
 * to NEW passes EVENT */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* the device's avail_event (EVENT_IDX), after used->ring[size] */
static uint16_t *avail_event(struct vlg_ring *r)
{
	return (uint16_t *)&r->used->ring[VLG_QSIZE];
}

/* our used_event (EVENT_IDX), after avail->ring[size] */
static uint16_t *used_event(struct vlg_ring *r)
{
	return &r->avail->ring[VLG_QSIZE];
}

/* §2.7.13.3: publish avail->idx, then kick unless the device said not to
 * (USED_F_NO_NOTIFY, or with EVENT_IDX an avail_event these entries did not
 * pass: Linux's virtqueue_kick_prepare) */
static void ring_publish(struct vlg_ring *r)
{
	uint64_t one = 1;
	uint16_t old = r->published;
	bool kick;

	if (r->published == r->avail_idx)
		return;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* idx store before the event load */
	r->published = r->avail_idx;
	if (event_idx())
		kick = need_event(__atomic_load_n(avail_event(r), __ATOMIC_RELAXED), r->avail_idx,
				  old);
	else
		kick =
		    !(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY);
	if (kick)
		g.kicks++;
	if (kick && write(r->kick_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "vsock-loadgen: kick: %s\n", strerror(errno));
}

/* the next used entry of R, or false */
static bool ring_used(struct vlg_ring *r, struct virtq_used_elem *e)
{
	if (r->last_used == __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE))
		return false;
	*e = r->used->ring[r->last_used % VLG_QSIZE];
	r->last_used++;
	if (e->id >= VLG_QSIZE) {
		fprintf(stderr, "vsock-loadgen: the device used head %u of %u\n", e->id, VLG_QSIZE);
		exit(3);
	}
	return true;
}

/* a control packet (no payload) on the tx ring; false when the ring is full */
static bool tx_packet(uint16_t op, uint32_t dst_port, uint32_t src_port)
{
	struct vlg_ring *r = &g.ring[VLG_TX];
	struct vsock_hdr h = {
	    .src_cid = g.cid,
	    .dst_cid = VSOCK_HOST_CID,
	    .src_port = src_port,
	    .dst_port = dst_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .buf_alloc = g.buf_alloc,
	    .fwd_cnt = g.fwd_cnt,
	};
	uint16_t id;

	if (!r->nfree)
		return false;
	id = r->free[--r->nfree];
	memcpy(gptr(VLG_BUF_GPA_OF(VLG_TX, id)), &h, sizeof(h));
	r->desc[id] = (struct virtq_desc){.addr = VLG_BUF_GPA_OF(VLG_TX, id), .len = sizeof(h)};
	ring_add(r, id);
	g.fwd_reported = g.fwd_cnt; /* every header carries the credit */
	return true;
}

/* reply to the host's packet H (ports swapped) */
static void tx_reply(const struct vsock_hdr *h, uint16_t op)
{
	if (!tx_packet(op, h->src_port, h->dst_port))
		g.stalls++; /* the device holds every tx buffer: dropped, as a full queue */
}

/* g2h: fill the tx ring with data packets while the peer's credit lasts
 * (§5.10.6.3: peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)) */
static int tx_data(void)
{
	struct vlg_ring *r = &g.ring[VLG_TX];
	int n = 0;

	while (g.connected && r->nfree) {
		uint32_t free_credit = g.peer_buf_alloc - (g.tx_cnt - g.peer_fwd_cnt);
		uint32_t len = free_credit < g.pkt ? free_credit : g.pkt;
		if (!len)
			break;
		uint16_t id = r->free[--r->nfree];
		struct vsock_hdr h = {
		    .src_cid = g.cid,
		    .dst_cid = VSOCK_HOST_CID,
		    .src_port = VLG_SRC_PORT,
		    .dst_port = VLG_HOST_PORT,
		    .len = len,
		    .type = VSOCK_TYPE_STREAM,
		    .op = VSOCK_OP_RW,
		    .buf_alloc = g.buf_alloc,
		    .fwd_cnt = g.fwd_cnt,
		};
		memcpy(gptr(VLG_BUF_GPA_OF(VLG_TX, id)), &h, sizeof(h));
		r->desc[id] = (struct virtq_desc){.addr = VLG_BUF_GPA_OF(VLG_TX, id),
						  .len = (uint32_t)sizeof(h) + len};
		ring_add(r, id);
		g.tx_cnt += len;
		n++;
	}
	return n;
}

static void rx_packet(const struct vsock_hdr *h, uint32_t used_len)
{
	g.packets++;
	if (used_len < sizeof(*h) || h->len > used_len - sizeof(*h) || h->dst_cid != g.cid) {
		fprintf(stderr,
			"vsock-loadgen: a bad packet: used %u, len %u, op %u, dst_cid %lu\n",
			used_len, h->len, h->op, (unsigned long)h->dst_cid);
		exit(3);
	}
	/* every header carries the sender's credit */
	g.peer_buf_alloc = h->buf_alloc;
	g.peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_REQUEST:
		tx_reply(h, VSOCK_OP_RESPONSE);
		g.peer_port = h->src_port;
		break;
	case VSOCK_OP_RESPONSE:
		g.connected = true;
		break;
	case VSOCK_OP_SHUTDOWN:
		tx_reply(h, VSOCK_OP_RST);
		break;
	case VSOCK_OP_RW:
		/* taken at once: the buffer goes back, the bytes are consumed */
		g.fwd_cnt += h->len;
		if (g.mode == VLG_H2G)
			count(h->len);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		tx_reply(h, VSOCK_OP_CREDIT_UPDATE);
		break;
	case VSOCK_OP_RST:
		if (g.mode == VLG_G2H && h->dst_port == VLG_SRC_PORT) {
			fprintf(stderr, "vsock-loadgen: the device reset the connection\n");
			exit(3);
		}
		break;
	default:
		break;
	}
}

static void guest_fill(void)
{
	struct vlg_ring *rx = &g.ring[VLG_RX], *tx = &g.ring[VLG_TX], *ev = &g.ring[VLG_EVENT];

	for (uint16_t i = 0; i < VLG_QSIZE; i++) {
		rx->desc[i] =
		    (struct virtq_desc){.addr = VLG_BUF_GPA_OF(VLG_RX, i),
					.len = (uint32_t)sizeof(struct vsock_hdr) + VLG_MAX_PAYLOAD,
					.flags = VIRTQ_DESC_F_WRITE};
		ring_add(rx, i);
		tx->free[tx->nfree++] = i;
	}
	/* §5.10.6.1: event buffers (struct virtio_vsock_event, le32 id) */
	for (uint16_t i = 0; i < 8; i++) {
		ev->desc[i] = (struct virtq_desc){
		    .addr = VLG_BUF_GPA_OF(VLG_EVENT, i), .len = 4, .flags = VIRTQ_DESC_F_WRITE};
		ring_add(ev, i);
	}
	ring_publish(rx);
	ring_publish(ev);
}

/* one pass over the rings; how much happened */
static int guest_step(void)
{
	struct vlg_ring *rx = &g.ring[VLG_RX], *tx = &g.ring[VLG_TX];
	struct virtq_used_elem e;
	int n = 0;

	while (ring_used(tx, &e)) {
		tx->free[tx->nfree++] = (uint16_t)e.id;
		n++;
	}
	while (ring_used(rx, &e)) {
		struct vsock_hdr h;
		memcpy(&h, gptr(VLG_BUF_GPA_OF(VLG_RX, e.id)), sizeof(h));
		rx_packet(&h, e.len);
		ring_add(rx, (uint16_t)e.id);
		n++;
	}
	while (ring_used(&g.ring[VLG_EVENT], &e)) {
		ring_add(&g.ring[VLG_EVENT], (uint16_t)e.id);
		n++;
	}
	/* the receiver's credit back to the host as Linux returns it
	 * (virtio_transport_stream_do_dequeue): only once the free space the
	 * sender sees, buf_alloc - (fwd_cnt - the fwd_cnt last sent), falls
	 * below VIRTIO_VSOCK_MAX_PKT_BUF_SIZE; every header we send carries
	 * fwd_cnt, so that is the last one sent.  (Unsigned, as Linux's u32
	 * free_space, without its wrap when the sender overran buf_alloc.) */
	if (g.mode == VLG_H2G && g.peer_port &&
	    (uint64_t)(g.fwd_cnt - g.fwd_reported) + VLG_CREDIT_LOW > g.buf_alloc) {
		struct vsock_hdr h = {.src_port = g.peer_port, .dst_port = VLG_GUEST_PORT};
		if (tx->nfree) {
			tx_reply(&h, VSOCK_OP_CREDIT_UPDATE);
			g.credit_updates++;
		}
	}
	if (g.mode == VLG_G2H)
		n += tx_data();
	ring_publish(rx);
	ring_publish(tx);
	ring_publish(&g.ring[VLG_EVENT]);
	return n;
}

/* Sleep until an interrupt.  With EVENT_IDX, as Linux's virtqueue_enable_cb:
 * used_event = the next entry we would take, so the device interrupts once
 * for the next used entry (while we were busy the old used_event, already
 * passed, kept it quiet); then look once more, or an entry used meanwhile
 * would get no interrupt. */
static void guest_wait(void)
{
	struct pollfd p[VLG_NQUEUES];
	uint64_t v;

	if (event_idx()) {
		for (unsigned q = 0; q < VLG_NQUEUES; q++)
			__atomic_store_n(used_event(&g.ring[q]), g.ring[q].last_used,
					 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST); /* used_event before used->idx */
		for (unsigned q = 0; q < VLG_NQUEUES; q++)
			if (__atomic_load_n(&g.ring[q].used->idx, __ATOMIC_ACQUIRE) !=
			    g.ring[q].last_used)
				return;
	}
	for (unsigned q = 0; q < VLG_NQUEUES; q++)
		p[q] = (struct pollfd){.fd = g.ring[q].call_fd, .events = POLLIN};
	if (poll(p, VLG_NQUEUES, 100) <= 0)
		return;
	g.interrupts++;
	for (unsigned q = 0; q < VLG_NQUEUES; q++)
		if (p[q].revents && read(p[q].fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			fprintf(stderr, "vsock-loadgen: call: %s\n", strerror(errno));
}

/* ---- the host's side --------------------------------------------------------- */

static int unix_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 128) == 0)
		return fd;
	fprintf(stderr, "vsock-loadgen: listen %s: %s\n", path, strerror(errno));
	exit(2);
}

/* "CONNECT <port>\n", then the "OK <hostport>\n" line, a byte at a time */
static int hybrid_connect(const char *uds, unsigned port)
{
	char line[64];
	size_t n = 0;
	int fd = unix_connect(uds), len = snprintf(line, sizeof(line), "CONNECT %u\n", port);

	if (fd < 0 || write(fd, line, len) != len)
		goto fail;
	while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1)
		if (line[n++] == '\n')
			break;
	if (n >= 3 && !memcmp(line, "OK ", 3) && line[n - 1] == '\n')
		return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static void *host_writer(void *arg)
{
	static uint8_t buf[VLG_HOST_CHUNK];
	int fd = (int)(intptr_t)arg;

	memset(buf, 0x5a, sizeof(buf));
	if (fd < 0 && (fd = hybrid_connect(g.uds, VLG_GUEST_PORT)) < 0) {
		fprintf(stderr, "vsock-loadgen: CONNECT %u on %s failed\n", VLG_GUEST_PORT, g.uds);
		exit(3);
	}
	while (!g.stop)
		if (write(fd, buf, sizeof(buf)) <= 0)
			break;
	return NULL;
}

static void *host_reader(void *arg)
{
	static uint8_t buf[VLG_HOST_CHUNK];
	int fd = (int)(intptr_t)arg;
	ssize_t r;

	if (fd < 0) { /* g2h: the guest's connection arrives on UDS_5001 */
		char path[128];
		snprintf(path, sizeof(path), "%s_%u", g.uds, VLG_HOST_PORT);
		int l = unix_listen(path);
		fd = accept(l, NULL, NULL);
		close(l);
	}
	while (!g.stop && (r = read(fd, buf, sizeof(buf))) > 0)
		count((uint64_t)r);
	return NULL;
}

/* the limit's listener: what isola-vsock does for a CONNECT, minus the vsock */
static void *pair_acceptor(void *arg)
{
	int l = (int)(intptr_t)arg;
	char line[64];

	while (!g.stop) {
		int fd = accept(l, NULL, NULL);
		size_t n = 0;
		if (fd < 0)
			continue;
		/* the line as a server would read it: whole (it comes in one
		 * write), not a byte at a time, which would slow the limit */
		while (n < sizeof(line) - 1) {
			ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			if (memchr(line, '\n', n))
				break;
		}
		if (write(fd, "OK 1073741824\n", 14) != 14) {
			/* the client went: nothing to answer */
		}
		close(fd);
	}
	return NULL;
}

static void *host_connector(void *arg)
{
	const char *path = arg;

	while (!g.stop) {
		int fd = hybrid_connect(path, VLG_GUEST_PORT);
		if (fd < 0) {
			fprintf(stderr, "vsock-loadgen: CONNECT %u failed\n", VLG_GUEST_PORT);
			exit(3);
		}
		close(fd);
		count(1);
	}
	return NULL;
}

static void host_start(void)
{
	pthread_t t;
	int sv[2];
	static char path[128];

	if (g.pair && g.mode != VLG_CONN) {
		/* one stream on a socket pair: writer in one thread, reader in another */
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			exit(2);
		pthread_create(&t, NULL, host_writer, (void *)(intptr_t)sv[0]);
		pthread_create(&t, NULL, host_reader, (void *)(intptr_t)sv[1]);
	} else if (g.pair) {
		snprintf(path, sizeof(path), "%s", g.uds);
		pthread_create(&t, NULL, pair_acceptor, (void *)(intptr_t)unix_listen(path));
		pthread_create(&t, NULL, host_connector, path);
	} else if (g.mode == VLG_H2G) {
		/* in its thread: the guest's driver (this thread) answers the REQUEST */
		pthread_create(&t, NULL, host_writer, (void *)(intptr_t)-1);
	} else if (g.mode == VLG_G2H) {
		pthread_create(&t, NULL, host_reader, (void *)(intptr_t)-1);
	} else {
		pthread_create(&t, NULL, host_connector, (void *)g.uds);
	}
}

/* ---- main -------------------------------------------------------------------- */

static void __attribute__((noreturn)) usage(void)
{
	fprintf(
	    stderr,
	    "usage: vsock-loadgen (--socket PATH --cid N | --pair) --uds PATH --mode h2g|g2h|conn\n"
	    "       [--seconds S] [--warmup S] [--pkt BYTES] [--buf-alloc BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", 1, 0, 's'},    {"uds", 1, 0, 'u'},
					     {"cid", 1, 0, 'c'},       {"mode", 1, 0, 'm'},
					     {"pair", 0, 0, 'p'},      {"seconds", 1, 0, 't'},
					     {"warmup", 1, 0, 'w'},    {"pkt", 1, 0, 'k'},
					     {"buf-alloc", 1, 0, 'b'}, {0, 0, 0, 0}};
	const char *mode = NULL;
	int c, ret;

	g.seconds = 5;
	g.warmup = 1;
	g.pkt = VLG_MAX_PAYLOAD;
	g.buf_alloc = 256 * 1024; /* Linux's default (VIRTIO_VSOCK_DEFAULT_BUF_SIZE) */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.socket = optarg;
			break;
		case 'u':
			g.uds = optarg;
			break;
		case 'c':
			g.cid = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			mode = optarg;
			break;
		case 'p':
			g.pair = true;
			break;
		case 't':
			g.seconds = atof(optarg);
			break;
		case 'w':
			g.warmup = atof(optarg);
			break;
		case 'k':
			g.pkt = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			g.buf_alloc = (unsigned)strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (!mode || !g.uds || (!g.pair && (!g.socket || g.cid < 3)) || !g.pkt ||
	    g.pkt > VLG_MAX_PAYLOAD)
		usage();
	g.mode = !strcmp(mode, "h2g")	 ? VLG_H2G
		 : !strcmp(mode, "g2h")	 ? VLG_G2H
		 : !strcmp(mode, "conn") ? VLG_CONN
					 : (usage(), VLG_H2G);
	signal(SIGPIPE, SIG_IGN);
	if (g.pair) {
		host_start();
	} else {
		if ((ret = vlg_frontend_start())) {
			fprintf(stderr, "vsock-loadgen: front-end: %s\n", strerror(-ret));
			return 2;
		}
		guest_fill();
		if (g.mode == VLG_G2H) {
			/* host listener first, then the guest's REQUEST */
			host_start();
			usleep(100000);
			if (!tx_packet(VSOCK_OP_REQUEST, VLG_HOST_PORT, VLG_SRC_PORT))
				return 2;
		}
	}
	uint64_t t0 = now_ns(), start = 0, end = 0, at_start = 0, last_count = 0,
		 last_progress = t0, last_step = t0;
	bool host_started = g.pair || g.mode == VLG_G2H;
	for (;;) {
		uint64_t t = now_ns();
		if (!host_started && t - t0 > 50000000ull) {
			host_start(); /* once the rx ring is full: the guest is listening */
			host_started = true;
		}
		if (!g.pair) {
			if (guest_step() > 0) {
				last_step = t;
			} else {
				/* g2h out of credit and nothing for 50 ms: ask (§5.10.6.3) */
				if (g.mode == VLG_G2H && g.connected &&
				    t - last_step > 50000000ull &&
				    g.peer_buf_alloc == g.tx_cnt - g.peer_fwd_cnt &&
				    tx_packet(VSOCK_OP_CREDIT_REQUEST, VLG_HOST_PORT,
					      VLG_SRC_PORT)) {
					g.credit_requests++;
					ring_publish(&g.ring[VLG_TX]);
				}
				guest_wait();
			}
		} else {
			usleep(10000);
		}
		t = now_ns();
		uint64_t cnt = __atomic_load_n(&g.counted, __ATOMIC_RELAXED);
		if (cnt != last_count) {
			last_count = cnt;
			last_progress = t;
		} else if (t - last_progress > 10000000000ull) {
			fprintf(stderr, "vsock-loadgen: no progress for 10 s (%lu packets in)\n",
				(unsigned long)g.packets);
			return 3;
		}
		if (!start && t - t0 >= (uint64_t)(g.warmup * 1e9)) {
			start = t;
			at_start = cnt;
		} else if (start && t - start >= (uint64_t)(g.seconds * 1e9)) {
			end = t;
			cnt -= at_start;
			double secs = (end - start) / 1e9;
			if (g.mode == VLG_CONN)
				printf(
				    "mode=conn engine=%s conns=%lu seconds=%.3f conns_per_s=%.1f\n",
				    g.pair ? "pair" : "isola", (unsigned long)cnt, secs,
				    cnt / secs);
			else
				printf("mode=%s engine=%s bytes=%lu seconds=%.3f mib_per_s=%.2f "
				       "packets_in=%lu credit_requests=%lu credit_updates=%lu "
				       "kicks=%lu interrupts=%lu\n",
				       mode, g.pair ? "pair" : "isola", (unsigned long)cnt, secs,
				       cnt / secs / 1048576.0, (unsigned long)g.packets,
				       (unsigned long)g.credit_requests,
				       (unsigned long)g.credit_updates, (unsigned long)g.kicks,
				       (unsigned long)g.interrupts);
			fflush(stdout);
			g.stop = true;
			/* the host threads may be blocked on a socket: the exit ends them */
			_exit(0);
		}
	}
}
