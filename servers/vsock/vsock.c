// SPDX-License-Identifier: MIT
/*
 * isola-vsock: the connection table and the stream state machine of
 * virtio 1.2 §5.10.6, between guest packets and host Unix sockets
 * (Firecracker's hybrid vsock, docs/vsock.md).  The rings are in
 * vsock_queue.c; everything here runs with v->lock held.
 *
 * A connection's life:
 *   host-initiated: accept on --uds -> HOST_LINE (read "CONNECT <port>\n")
 *     -> REQUESTED (REQUEST to the guest) -> RESPONSE: "OK <hostport>\n"
 *     to the client -> ESTABLISHED;  RST instead: the client is closed.
 *   guest-initiated: REQUEST to CID 2 port P -> connect(PATH_P) -> RESPONSE
 *     (ESTABLISHED), or RST if nobody listens there.
 *   ESTABLISHED: RW both ways within credit (§5.10.6.3); SHUTDOWN flags
 *     half-close; once neither side sends more and what the guest sent has
 *     reached the host socket, we close it and send RST (the clean
 *     disconnect of §5.10.6.5, the RST being our answer to the SHUTDOWN).
 *   RESETTING: the host socket is closed, an RST waits for an rx buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "servers/vsock/vsock.h"

#define EPOLL_LISTENER 0
#define EPOLL_WAKE 1
#define EPOLL_CONN_BASE 2

uint64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- pure checks ---------------------------------------------------------- */

enum vsock_verdict vsock_check_hdr(const struct vsock_hdr *h, uint64_t guest_cid,
				   uint32_t payload_avail, const char **why)
{
	const char *reason = NULL;

	/* §5.10.6.4: the driver uses guest_cid as the source.  Anything else
	 * is not an address we can answer: dropped, never answered. */
	if (h->src_cid != guest_cid) {
		*why = "src_cid is not the guest's CID";
		return VSOCK_DROP;
	}
	if (h->dst_cid != VSOCK_HOST_CID)
		reason = "dst_cid is not the host (2): no guest-to-guest";
	else if (h->type != VSOCK_TYPE_STREAM)
		reason = "type is not STREAM"; /* §5.10.6.4: RST for an unknown type */
	else if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST)
		reason = "unknown op";
	else if (h->len > payload_avail)
		reason = "len is more than the descriptors carry";
	else if (h->len > VSOCK_MAX_PAYLOAD)
		reason = "len is over 64 KiB";
	else if (h->len && h->op != VSOCK_OP_RW)
		reason = "payload on a packet that is not RW";
	if (!reason)
		return VSOCK_ACCEPT;
	*why = reason;
	/* never answer an RST with an RST (two devices could loop) */
	return h->op == VSOCK_OP_RST ? VSOCK_DROP : VSOCK_REPLY_RST;
}

uint32_t vsock_peer_free(uint32_t peer_buf_alloc, uint32_t tx_cnt, uint32_t peer_fwd_cnt)
{
	uint32_t in_flight = tx_cnt - peer_fwd_cnt; /* free-running, mod 2^32 */

	return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

bool vsock_fwd_cnt_valid(uint32_t old_fwd_cnt, uint32_t new_fwd_cnt, uint32_t tx_cnt)
{
	/* both distances mod 2^32: forward from old, and no further than
	 * what we sent */
	return (uint32_t)(new_fwd_cnt - old_fwd_cnt) <= (uint32_t)(tx_cnt - old_fwd_cnt);
}

bool vsock_credit_allows(uint32_t buf_alloc, uint32_t rx_cnt, uint32_t told_fwd_cnt, uint32_t len)
{
	return (uint64_t)(uint32_t)(rx_cnt - told_fwd_cnt) + len <= buf_alloc;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * As Firecracker reads it (its muxer's read_local_stream_port): the line's
 * first word is "connect" in any case, the second the port as Rust's
 * u32::from_str takes it (decimal, an optional '+', no overflow), words
 * split on white space (so "\r\n" and extra blanks are fine), any further
 * words ignored.  Unlike Firecracker, the '\n' must come within 32 bytes.
 */
int vsock_parse_connect(const char *buf, size_t n, uint32_t *port, size_t *line_len)
{
	static const char verb[] = "connect";
	const char *nl = memchr(buf, '\n', n < VSOCK_CONNECT_LINE_MAX ? n : VSOCK_CONNECT_LINE_MAX);
	const char *p = buf, *end;
	uint64_t value = 0;
	size_t digits = 0;

	if (!nl)
		return n >= VSOCK_CONNECT_LINE_MAX ? -EINVAL : 0;
	end = nl;
	while (p < end && is_space(*p))
		p++;
	for (size_t i = 0; i < sizeof(verb) - 1; i++, p++)
		if (p == end || (*p | 0x20) != verb[i])
			return -EINVAL;
	if (p == end || !is_space(*p))
		return -EINVAL; /* "connectx", or no port */
	while (p < end && is_space(*p))
		p++;
	if (p < end && *p == '+')
		p++;
	for (; p < end && !is_space(*p); p++, digits++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		value = value * 10 + (uint64_t)(*p - '0');
		if (value > UINT32_MAX)
			return -EINVAL;
	}
	if (!digits)
		return -EINVAL;
	*port = (uint32_t)value;
	*line_len = (size_t)(nl - buf) + 1;
	return 1;
}

/* ---- the table ------------------------------------------------------------ */

void vsock_defaults(struct vsock *v)
{
	memset(v, 0, sizeof(*v));
	v->max_connections = VSOCK_DEFAULT_MAX_CONNECTIONS;
	v->buf_alloc = VSOCK_DEFAULT_BUF_ALLOC;
	v->listen_fd = v->epoll_fd = v->rx_wake_fd = v->tx_wake_fd = v->event_wake_fd = -1;
	v->next_local_port = VSOCK_LOCAL_PORT_FIRST;
	pthread_mutex_init(&v->lock, NULL);
}

int vsock_setup(struct vsock *v, char *err, size_t errlen)
{
	v->hash_size = 1;
	while (v->hash_size < 2 * v->max_connections)
		v->hash_size <<= 1;
	v->conns = calloc(v->max_connections, sizeof(*v->conns));
	v->hash = calloc(v->hash_size, sizeof(*v->hash));
	v->seg_rx = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*v->seg_rx));
	v->seg_tx = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*v->seg_tx));
	v->seg_ev = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*v->seg_ev));
	v->iov_rx = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*v->iov_rx));
	v->iov_tx = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*v->iov_tx));
	if (!v->conns || !v->hash || !v->seg_rx || !v->seg_tx || !v->seg_ev || !v->iov_rx ||
	    !v->iov_tx) {
		snprintf(err, errlen, "out of memory for %u connections", v->max_connections);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < v->max_connections; i++) {
		v->conns[i].fd = -1;
		v->conns[i].free_next = i + 2 <= v->max_connections ? i + 2 : 0;
	}
	v->free_head = v->max_connections ? 1 : 0;
	vsock_init_ops(v);
	return 0;
}

static uint32_t conn_index(const struct vsock *v, const struct vsock_conn *c)
{
	return (uint32_t)(c - v->conns);
}

static uint32_t hash_of(const struct vsock *v, uint32_t guest_port, uint32_t host_port)
{
	uint32_t h = guest_port * 0x9e3779b1u ^ (host_port + 0x7f4a7c15u) * 0x85ebca77u;

	return (h ^ h >> 16) & (v->hash_size - 1);
}

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t guest_port, uint32_t host_port)
{
	for (uint32_t i = v->hash[hash_of(v, guest_port, host_port)]; i;
	     i = v->conns[i - 1].hash_next) {
		struct vsock_conn *c = &v->conns[i - 1];

		if (c->guest_port == guest_port && c->host_port == host_port)
			return c;
	}
	return NULL;
}

static void hash_insert(struct vsock *v, struct vsock_conn *c)
{
	uint32_t *head = &v->hash[hash_of(v, c->guest_port, c->host_port)];

	c->hash_next = *head;
	*head = conn_index(v, c) + 1;
	c->hashed = true;
}

static void hash_remove(struct vsock *v, struct vsock_conn *c)
{
	uint32_t *link = &v->hash[hash_of(v, c->guest_port, c->host_port)];
	uint32_t me = conn_index(v, c) + 1;

	if (!c->hashed)
		return;
	while (*link && *link != me)
		link = &v->conns[*link - 1].hash_next;
	if (*link)
		*link = c->hash_next;
	c->hashed = false;
}

/* The rx work list: connections owing the guest a packet, round robin. */
static void rxq_remove(struct vsock *v, struct vsock_conn *c)
{
	if (!c->queued)
		return;
	if (c->rx_prev)
		v->conns[c->rx_prev - 1].rx_next = c->rx_next;
	else
		v->rxq_first = c->rx_next;
	if (c->rx_next)
		v->conns[c->rx_next - 1].rx_prev = c->rx_prev;
	else
		v->rxq_last = c->rx_prev;
	c->rx_prev = c->rx_next = 0;
	c->queued = false;
}

static void rxq_append(struct vsock *v, struct vsock_conn *c)
{
	uint32_t me = conn_index(v, c) + 1;

	if (c->queued)
		return;
	c->rx_prev = v->rxq_last;
	c->rx_next = 0;
	if (v->rxq_last)
		v->conns[v->rxq_last - 1].rx_next = me;
	else
		v->rxq_first = me;
	v->rxq_last = me;
	c->queued = true;
}

static bool conn_wants_data(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && c->readable && !c->host_eof &&
	       !c->peer_shut_rcv && vsock_peer_free(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
}

static void conn_update_rx(struct vsock *v, struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_FREE)
		return; /* freed on the way here: owes nothing */
	if (c->pending || conn_wants_data(c))
		rxq_append(v, c);
	else
		rxq_remove(v, c);
}

bool vsock_rx_pending(const struct vsock *v)
{
	return v->rst_len || v->rxq_first;
}

/* A free slot in state (not FREE), or NULL with the table full. */
static struct vsock_conn *conn_alloc(struct vsock *v, enum vsock_conn_state state)
{
	struct vsock_conn *c;
	uint32_t generation;

	if (!v->free_head) {
		v->counters.refused_full++;
		if (!v->full_logged)
			log_error("connection table full (--max-connections %u): refusing new "
				  "connections until one closes",
				  v->max_connections);
		v->full_logged = true;
		return NULL;
	}
	c = &v->conns[v->free_head - 1];
	v->free_head = c->free_next;
	generation = c->generation;
	memset(c, 0, sizeof(*c));
	c->generation = generation;
	c->state = state;
	c->fd = -1;
	v->nr_conns++;
	v->counters.connections++;
	return c;
}

static void conn_close_fd(struct vsock_conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set: nobody dup()s it */
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->buf_len = c->buf_head = 0;
}

static void conn_free(struct vsock *v, struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_FREE)
		return;
	conn_close_fd(c);
	hash_remove(v, c);
	rxq_remove(v, c);
	c->state = VSOCK_CONN_FREE;
	c->pending = 0;
	c->generation++;
	c->free_next = v->free_head;
	v->free_head = conn_index(v, c) + 1;
	v->nr_conns--;
	if (v->full_logged) {
		log_info("connection table has room again (%" PRIu64 " refused while full)",
			 v->counters.refused_full);
		v->full_logged = false;
	}
}

/* Close the host side and tell the guest: an RST, if the guest knows the
 * connection (it has seen or sent its REQUEST); else just forget it. */
static void conn_reset(struct vsock *v, struct vsock_conn *c)
{
	bool guest_knows = c->state == VSOCK_CONN_ESTABLISHED ||
			   (c->state == VSOCK_CONN_REQUESTED && !(c->pending & VSOCK_PEND_REQUEST));

	if (!guest_knows) {
		conn_free(v, c);
		return;
	}
	conn_close_fd(c);
	c->state = VSOCK_CONN_RESETTING;
	c->pending = VSOCK_PEND_RST;
	conn_update_rx(v, c);
}

static void deadline_set(struct vsock *v, struct vsock_conn *c, uint64_t when)
{
	c->deadline_ms = when;
	if (!v->next_deadline_ms || when < v->next_deadline_ms)
		v->next_deadline_ms = when;
}

#define EPOLL_IN_EVENTS (EPOLLIN | EPOLLRDHUP)

static int epoll_add(struct vsock *v, int fd, uint64_t data)
{
	struct epoll_event ev = {
	    .events = EPOLL_IN_EVENTS | EPOLLET,
	    .data.u64 = data,
	};

	return epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static uint64_t conn_epoll_data(const struct vsock *v, const struct vsock_conn *c)
{
	return (uint64_t)c->generation << 32 | (conn_index(v, c) + EPOLL_CONN_BASE);
}

/*
 * An established connection's host socket is watched only for what could
 * change something: readable while we have not seen it drained (an edge
 * on a socket we already mean to read, waiting for the guest's credit,
 * woke the rx thread for nothing: one wake-up per host write), writable
 * while our buffer holds data (else every read the host client makes
 * woke it; a new socket starts without it).  An interest dropped after such an edge comes back when
 * it matters (EAGAIN on a read, data buffered); EPOLL_CTL_MOD checks the socket's state at once
 * then, so no edge is lost.  EPOLLHUP and EPOLLERR are always reported.  A failed MOD keeps the old
 * set (retried next time: at worst a wake-up too many).
 */
static void conn_watch(struct vsock *v, struct vsock_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events | EPOLLET, .data.u64 = conn_epoll_data(v, c)};

	if (c->fd < 0 || events == c->ep_events)
		return;
	if (epoll_ctl(v->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->ep_events = events;
}

/* An RST for a packet that matches no connection (or that we refuse before
 * one exists), addressed back to its source. */
static void queue_rst(struct vsock *v, const struct vsock_hdr *h)
{
	struct vsock_hdr *r;

	if (v->rst_len == VSOCK_RST_QUEUE) {
		v->counters.dropped++; /* vsock_guest_packet checked; not reached */
		return;
	}
	r = &v->rsts[(v->rst_head + v->rst_len++) % VSOCK_RST_QUEUE];
	*r = (struct vsock_hdr){
	    .src_cid = h->dst_cid,
	    .dst_cid = h->src_cid,
	    .src_port = h->dst_port,
	    .dst_port = h->src_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = VSOCK_OP_RST,
	};
}

/* ---- host socket I/O ------------------------------------------------------- */

/* Everything on a host socket goes through sendmsg/recvmsg (the back-end's
 * own system calls, so the allowlist stays small): MSG_NOSIGNAL, because a
 * client that closed must cost an EPIPE, not a SIGPIPE that ends the
 * server; MSG_DONTWAIT, whatever the fd's flags. */
static ssize_t sock_send(int fd, const struct iovec *iov, unsigned niov)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = niov};
	ssize_t r;

	do
		r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t sock_recv(int fd, const struct iovec *iov, unsigned niov, int flags)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = niov};
	ssize_t r;

	do
		r = recvmsg(fd, &m, flags | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r;
}

/* ---- guest -> host --------------------------------------------------------- */

static void conn_maybe_credit(struct vsock *v, struct vsock_conn *c)
{
	/* A window a quarter open is worth a packet; a guest that ran out of
	 * credit gets one at the latest when everything is forwarded
	 * (fwd_cnt - told == buf_alloc then). */
	if ((uint32_t)(c->fwd_cnt - c->told_fwd_cnt) >= v->buf_alloc / 4)
		c->pending |= VSOCK_PEND_CREDIT;
}

/* Copy n bytes of iov (from skip) into c's buffer; the credit check made
 * room certain.  0 or -ENOMEM. */
static int conn_buffer(struct vsock *v, struct vsock_conn *c, const struct iovec *iov,
		       unsigned niov, size_t skip, size_t n)
{
	if (!c->buf) {
		c->buf = malloc(v->buf_alloc);
		if (!c->buf)
			return -ENOMEM;
		c->buf_head = c->buf_len = 0;
	}
	if (n > v->buf_alloc - c->buf_len)
		return -ENOBUFS;
	for (unsigned i = 0; i < niov && n; i++) {
		const uint8_t *src = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		src += skip;
		len -= skip;
		skip = 0;
		if (len > n)
			len = n;
		for (size_t done = 0; done < len;) {
			uint32_t tail = (c->buf_head + c->buf_len) % v->buf_alloc;
			size_t chunk = v->buf_alloc - tail;

			if (chunk > len - done)
				chunk = len - done;
			memcpy(c->buf + tail, src + done, chunk);
			c->buf_len += (uint32_t)chunk;
			done += chunk;
		}
		n -= len;
	}
	return 0;
}

/* Write what waits in c's buffer; 0, or -errno of a broken host socket. */
static int conn_flush(struct vsock *v, struct vsock_conn *c)
{
	while (c->buf_len) {
		struct iovec iov[2];
		uint32_t first = v->buf_alloc - c->buf_head;
		unsigned n = 1;
		ssize_t w;

		iov[0].iov_base = c->buf + c->buf_head;
		iov[0].iov_len = first < c->buf_len ? first : c->buf_len;
		if (first < c->buf_len) {
			iov[1].iov_base = c->buf;
			iov[1].iov_len = c->buf_len - first;
			n = 2;
		}
		w = sock_send(c->fd, iov, n);
		if (w < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->buf_head = (uint32_t)((c->buf_head + (size_t)w) % v->buf_alloc);
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	free(c->buf); /* drained: a quiet connection holds no buffer */
	c->buf = NULL;
	c->buf_head = 0;
	return 0;
}

/* Both directions are over: close the host socket and answer with RST. */
static void conn_check_done(struct vsock *v, struct vsock_conn *c)
{
	if (c->state != VSOCK_CONN_ESTABLISHED)
		return;
	if (c->peer_shut_send && !c->buf_len && !c->host_wr_shut) {
		shutdown(c->fd, SHUT_WR); /* the host client reads EOF */
		c->host_wr_shut = true;
	}
	if (c->host_wr_shut && ((c->host_eof && c->shut_sent) || c->peer_shut_rcv))
		conn_reset(v, c);
}

/* Guest RW payload to the host socket, the rest into the buffer. */
static int conn_write(struct vsock *v, struct vsock_conn *c, const struct iovec *iov, unsigned niov,
		      uint32_t len)
{
	size_t written = 0;

	if (!c->buf_len && len) {
		struct iovec out[64];
		unsigned n = 0;
		size_t left = len;

		for (unsigned i = 0; i < niov && left && n < 64; i++) {
			out[n].iov_base = iov[i].iov_base;
			out[n].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
			left -= out[n].iov_len;
			if (out[n].iov_len)
				n++;
		}
		ssize_t w = sock_send(c->fd, out, n);

		if (w >= 0)
			written = (size_t)w;
		else if (errno != EAGAIN)
			return -errno;
		c->fwd_cnt += (uint32_t)written;
	}
	if (written < len) {
		if (conn_buffer(v, c, iov, niov, written, len - written) < 0)
			return -ENOBUFS;
		/* the host socket is full: its space coming back flushes */
		conn_watch(v, c, c->ep_events | EPOLLOUT);
	}
	conn_maybe_credit(v, c);
	return 0;
}

static int connect_host(struct vsock *v, uint32_t port)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd, n;

	n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%" PRIu32, v->uds_path, port);
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix stream connect completes at once or fails (EAGAIN: the
	 * listener's backlog is full; ENOENT/ECONNREFUSED: nobody there). */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static void guest_request(struct vsock *v, const struct vsock_hdr *h)
{
	struct vsock_conn *c;
	int fd;

	/* After a restart, until the guest has its TRANSPORT_RESET: the
	 * reset will drop whatever it connects now, silently, and leave our
	 * end joined to a host listener for nothing.  Refused: it connects
	 * again after the reset. */
	if (v->reset_pending) {
		queue_rst(v, h);
		return;
	}
	c = conn_alloc(v, VSOCK_CONN_ESTABLISHED);
	if (!c) {
		queue_rst(v, h);
		return;
	}
	fd = connect_host(v, h->dst_port);
	if (fd < 0) {
		/* nobody listens on PATH_P: the guest's connect fails at once */
		conn_free(v, c);
		queue_rst(v, h);
		return;
	}
	c->fd = fd;
	c->guest_port = h->src_port;
	c->host_port = h->dst_port;
	c->state = VSOCK_CONN_ESTABLISHED;
	/* its fwd_cnt counts from 0 like our tx_cnt: a later one must too */
	c->peer_buf_alloc = h->buf_alloc;
	c->readable = true;
	hash_insert(v, c);
	c->ep_events = EPOLL_IN_EVENTS;
	if (epoll_add(v, fd, conn_epoll_data(v, c)) < 0) {
		conn_free(v, c);
		queue_rst(v, h);
		return;
	}
	c->pending = VSOCK_PEND_RESPONSE;
	conn_update_rx(v, c);
}

/* The guest's RESPONSE to our REQUEST: tell the host client its port. */
static void guest_response(struct vsock *v, struct vsock_conn *c)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "OK %" PRIu32 "\n", c->host_port);
	struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};

	/* a fresh socket has room for one short line; anything else: the
	 * client is gone or not reading, and the connection cannot start */
	if (sock_send(c->fd, &iov, 1) != n) {
		conn_reset(v, c);
		return;
	}
	c->state = VSOCK_CONN_ESTABLISHED;
	c->deadline_ms = 0;
	c->readable = true; /* the client may have written ahead */
}

int vsock_guest_packet(struct vsock *v, const struct vsock_hdr *h, const struct iovec *iov,
		       unsigned niov)
{
	struct vsock_conn *c;
	const char *why = NULL;
	uint64_t avail = 0;
	int ret;

	/* every refusal may need a slot in the RST queue (§5.10.6.1) */
	if (v->rst_len == VSOCK_RST_QUEUE)
		return -EAGAIN;
	for (unsigned i = 0; i < niov; i++)
		avail += iov[i].iov_len;
	switch (vsock_check_hdr(h, v->guest_cid, avail > UINT32_MAX ? UINT32_MAX : (uint32_t)avail,
				&why)) {
	case VSOCK_ACCEPT:
		break;
	case VSOCK_DROP:
		v->counters.dropped++;
		return 0;
	case VSOCK_REPLY_RST:
		if (!v->counters.bad_headers++)
			log_info("guest packet refused with RST: %s (op %u, type %u, len %u; "
				 "logged once)",
				 why, h->op, h->type, h->len);
		/* the connection it names, if any, cannot go on either */
		c = vsock_conn_find(v, h->src_port, h->dst_port);
		if (c && h->dst_cid == VSOCK_HOST_CID)
			conn_free(v, c);
		queue_rst(v, h);
		return 0;
	}
	c = vsock_conn_find(v, h->src_port, h->dst_port);
	if (h->op == VSOCK_OP_REQUEST) {
		if (c) {
			/* a second REQUEST on a live tuple: that connection is
			 * over, and so is the new attempt */
			conn_free(v, c);
			queue_rst(v, h);
			return 0;
		}
		guest_request(v, h);
		return 0;
	}
	if (!c) {
		if (h->op != VSOCK_OP_RST)
			queue_rst(v, h);
		return 0;
	}
	if (h->op == VSOCK_OP_RST) {
		conn_free(v, c); /* the host client sees EOF */
		return 0;
	}
	if (c->state == VSOCK_CONN_RESETTING)
		return 0; /* our RST is on its way */
	if (!vsock_fwd_cnt_valid(c->peer_fwd_cnt, h->fwd_cnt, c->tx_cnt)) {
		if (!v->counters.credit_lies++)
			log_info("guest port %u: fwd_cnt %u is not between %u and %u (what we "
				 "sent): connection reset (logged once)",
				 h->src_port, h->fwd_cnt, c->peer_fwd_cnt, c->tx_cnt);
		conn_reset(v, c);
		return 0;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (c->state == VSOCK_CONN_REQUESTED) {
		if (h->op == VSOCK_OP_RESPONSE && !(c->pending & VSOCK_PEND_REQUEST))
			guest_response(v, c);
		else
			conn_reset(v, c);
		conn_update_rx(v, c);
		return 0;
	}
	switch (h->op) {
	case VSOCK_OP_RESPONSE: /* only answers our REQUEST */
		conn_reset(v, c);
		break;
	case VSOCK_OP_SHUTDOWN:
		if (h->flags & VSOCK_SHUTDOWN_RCV)
			c->peer_shut_rcv = true;
		if (h->flags & VSOCK_SHUTDOWN_SEND)
			c->peer_shut_send = true;
		conn_check_done(v, c);
		break;
	case VSOCK_OP_RW:
		if (c->peer_shut_send ||
		    !vsock_credit_allows(v->buf_alloc, c->rx_cnt, c->told_fwd_cnt, h->len)) {
			if (!v->counters.credit_lies++)
				log_info("guest port %u: %u bytes beyond the credit we gave (or "
					 "after its SHUTDOWN): connection reset (logged once)",
					 h->src_port, h->len);
			conn_reset(v, c);
			break;
		}
		c->rx_cnt += h->len;
		v->counters.tx_bytes += h->len;
		ret = c->host_wr_shut ? -EPIPE : conn_write(v, c, iov, niov, h->len);
		if (ret < 0)
			conn_reset(v, c);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_PEND_CREDIT;
		break;
	case VSOCK_OP_CREDIT_UPDATE:
	default:
		break; /* the credit fields were the message */
	}
	if (c->state != VSOCK_CONN_FREE)
		conn_update_rx(v, c);
	return 0;
}

/* ---- host -> guest --------------------------------------------------------- */

static void fill_hdr(struct vsock *v, struct vsock_conn *c, struct vsock_hdr *h, uint16_t op)
{
	*h = (struct vsock_hdr){
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = v->guest_cid,
	    .src_port = c->host_port,
	    .dst_port = c->guest_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .buf_alloc = v->buf_alloc,
	    .fwd_cnt = c->fwd_cnt,
	};
	/* every packet carries our credit (§5.10.6.3) */
	c->told_fwd_cnt = c->fwd_cnt;
	c->pending &= ~VSOCK_PEND_CREDIT;
}

/* Read host data for c into iov: >0 bytes, 0 nothing now, -1 EOF, or
 * -errno. */
static ssize_t conn_read(struct vsock_conn *c, const struct iovec *iov, unsigned niov, uint32_t max)
{
	struct iovec in[64];
	unsigned n = 0;
	uint32_t left = max;
	ssize_t r;

	for (unsigned i = 0; i < niov && left && n < 64; i++) {
		in[n].iov_base = iov[i].iov_base;
		in[n].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
		left -= (uint32_t)in[n].iov_len;
		n++;
	}
	r = sock_recv(c->fd, in, n, 0);
	if (r > 0)
		return r;
	if (r == 0)
		return -1;
	return errno == EAGAIN ? 0 : -errno;
}

/* The next packet c owes the guest: 1 (hdr, *payload_len), or 0. */
static int conn_rx(struct vsock *v, struct vsock_conn *c, struct vsock_hdr *h,
		   const struct iovec *iov, unsigned niov, uint32_t room, uint32_t *payload_len)
{
	*payload_len = 0;
	if (c->pending & VSOCK_PEND_RST) {
		fill_hdr(v, c, h, VSOCK_OP_RST);
		v->counters.rsts_sent++;
		conn_free(v, c);
		return 1;
	}
	if (c->pending & (VSOCK_PEND_REQUEST | VSOCK_PEND_RESPONSE)) {
		fill_hdr(v, c, h,
			 c->pending & VSOCK_PEND_REQUEST ? VSOCK_OP_REQUEST : VSOCK_OP_RESPONSE);
		c->pending &= ~(VSOCK_PEND_REQUEST | VSOCK_PEND_RESPONSE);
		return 1;
	}
	if (conn_wants_data(c)) {
		uint32_t max = vsock_peer_free(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
		ssize_t r;

		if (max > room)
			max = room;
		if (max > VSOCK_MAX_PAYLOAD)
			max = VSOCK_MAX_PAYLOAD;
		r = max ? conn_read(c, iov, niov, max) : 0;
		if (r > 0) {
			fill_hdr(v, c, h, VSOCK_OP_RW);
			h->len = (uint32_t)r;
			c->tx_cnt += (uint32_t)r;
			v->counters.rx_bytes += (uint64_t)r;
			*payload_len = (uint32_t)r;
			return 1;
		}
		if (r == 0) {
			c->readable = false; /* until the next edge */
			conn_watch(v, c, c->ep_events | EPOLL_IN_EVENTS);
		} else if (r == -1) {
			c->host_eof = true; /* the host client sends no more */
			c->shutdown_flags |= VSOCK_SHUTDOWN_SEND;
			c->pending |= VSOCK_PEND_SHUTDOWN;
		} else {
			conn_reset(v, c); /* ECONNRESET ... */
			return conn_rx(v, c, h, iov, niov, room, payload_len);
		}
	}
	if (c->pending & VSOCK_PEND_SHUTDOWN) {
		fill_hdr(v, c, h, VSOCK_OP_SHUTDOWN);
		h->flags = c->shutdown_flags;
		c->pending &= ~VSOCK_PEND_SHUTDOWN;
		c->shut_sent = true;
		conn_check_done(v, c);
		return 1;
	}
	if (c->pending & VSOCK_PEND_CREDIT) {
		fill_hdr(v, c, h, VSOCK_OP_CREDIT_UPDATE);
		return 1;
	}
	return 0;
}

int vsock_rx_next(struct vsock *v, struct vsock_hdr *hdr, const struct iovec *iov, unsigned niov,
		  uint32_t room, uint32_t *payload_len)
{
	*payload_len = 0;
	if (v->rst_len) {
		*hdr = v->rsts[v->rst_head];
		v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
		v->rst_len--;
		v->counters.rsts_sent++;
		return 1;
	}
	while (v->rxq_first) {
		struct vsock_conn *c = &v->conns[v->rxq_first - 1];
		int r;

		rxq_remove(v, c);
		r = conn_rx(v, c, hdr, iov, niov, room, payload_len);
		if (c->state != VSOCK_CONN_FREE)
			conn_update_rx(v, c); /* to the back of the line if it owes more */
		if (r)
			return 1;
	}
	return 0;
}

/* ---- the host side's events ------------------------------------------------ */

static uint32_t local_port(struct vsock *v, uint32_t guest_port)
{
	for (uint32_t tries = 0; tries <= v->max_connections; tries++) {
		uint32_t port = v->next_local_port;

		v->next_local_port =
		    port + 1 == VSOCK_LOCAL_PORT_END ? VSOCK_LOCAL_PORT_FIRST : port + 1;
		if (!vsock_conn_find(v, guest_port, port))
			return port;
	}
	return 0; /* not reached: at most max_connections are in use */
}

/* A host client's CONNECT line (peeked, so bytes after it stay queued for
 * the stream). */
static void host_line(struct vsock *v, struct vsock_conn *c, uint64_t now_ms)
{
	char buf[VSOCK_CONNECT_LINE_MAX];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	size_t line_len = 0;
	uint32_t port = 0;
	ssize_t n;
	int r;

	n = sock_recv(c->fd, &iov, 1, MSG_PEEK);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_free(v, c);
		return;
	}
	r = vsock_parse_connect(buf, (size_t)n, &port, &line_len);
	if (r == 0)
		return; /* the rest of the line comes with the next edge */
	if (r < 0) {
		log_info("host client sent no valid \"CONNECT <port>\\n\" line: closed");
		conn_free(v, c);
		return;
	}
	iov.iov_len = line_len;
	if (sock_recv(c->fd, &iov, 1, 0) != (ssize_t)line_len) {
		conn_free(v, c);
		return;
	}
	c->guest_port = port;
	c->host_port = local_port(v, port);
	c->host_initiated = true;
	c->state = VSOCK_CONN_REQUESTED;
	/* until the guest answers, it takes nothing: no data before RESPONSE */
	c->peer_buf_alloc = 0;
	hash_insert(v, c);
	deadline_set(v, c, now_ms + VSOCK_RESPONSE_TIMEOUT_MS);
	c->pending = VSOCK_PEND_REQUEST;
	conn_update_rx(v, c);
}

/* Accept what the listener holds, at most VSOCK_ACCEPTS_PER_ROUND: the rx
 * thread holds v->lock meanwhile, and clients connecting in a loop must
 * not keep it from the rings.  The listener is edge-triggered, so what is
 * left (the cap, or accept4 out of fds or memory) is remembered in
 * v->accept_again and taken at the next poll, not at a next edge that
 * may never come. */
static void host_accept(struct vsock *v, uint64_t now_ms)
{
	v->accept_again = v->accept_starved = false;
	for (unsigned round = 0;; round++) {
		struct vsock_conn *c;
		int fd;

		if (round == VSOCK_ACCEPTS_PER_ROUND) {
			v->accept_again = true;
			return;
		}
		fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				if (!v->starved_logged)
					log_error("accepting host clients: %s; they wait in the "
						  "listen backlog until connections close (logged "
						  "once)",
						  strerror(errno));
				v->starved_logged = true;
				v->accept_again = v->accept_starved = true;
			}
			return; /* EAGAIN: the next edge brings more */
		}
		c = conn_alloc(v, VSOCK_CONN_HOST_LINE);
		if (!c) {
			close(fd); /* the client sees EOF before any OK */
			continue;
		}
		c->fd = fd;
		c->ep_events = EPOLL_IN_EVENTS;
		if (epoll_add(v, fd, conn_epoll_data(v, c)) < 0) {
			conn_free(v, c);
			continue;
		}
		deadline_set(v, c, now_ms + VSOCK_CONNECT_TIMEOUT_MS);
		host_line(v, c, now_ms);
	}
}

static void host_event(struct vsock *v, struct vsock_conn *c, uint32_t events, uint64_t now_ms)
{
	if (c->state == VSOCK_CONN_HOST_LINE) {
		host_line(v, c, now_ms);
		return;
	}
	if (c->state != VSOCK_CONN_ESTABLISHED) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
			c->readable = true; /* read once established */
		return;
	}
	if ((events & EPOLL_IN_EVENTS) && c->readable && !conn_wants_data(c))
		conn_watch(v, c, c->ep_events & ~(uint32_t)EPOLL_IN_EVENTS);
	if ((events & EPOLLOUT) && !c->buf_len)
		conn_watch(v, c, c->ep_events & ~(uint32_t)EPOLLOUT);
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->buf_len) {
		if (conn_flush(v, c) < 0) {
			conn_reset(v, c);
			return;
		}
		conn_maybe_credit(v, c);
		conn_check_done(v, c);
		if (c->state != VSOCK_CONN_ESTABLISHED)
			return;
	}
	conn_update_rx(v, c);
}

static void host_deadlines(struct vsock *v, uint64_t now_ms)
{
	uint64_t next = 0;

	if (!v->next_deadline_ms || now_ms < v->next_deadline_ms)
		return;
	for (uint32_t i = 0; i < v->max_connections; i++) {
		struct vsock_conn *c = &v->conns[i];

		if ((c->state != VSOCK_CONN_HOST_LINE && c->state != VSOCK_CONN_REQUESTED) ||
		    !c->deadline_ms)
			continue;
		if (c->deadline_ms <= now_ms) {
			log_info("host client %s: closed",
				 c->state == VSOCK_CONN_HOST_LINE
				     ? "sent no CONNECT line in time"
				     : "waited too long for the guest's answer");
			conn_reset(v, c);
			continue;
		}
		if (!next || c->deadline_ms < next)
			next = c->deadline_ms;
	}
	v->next_deadline_ms = next;
}

int vsock_host_poll(struct vsock *v, uint64_t now_ms)
{
	struct epoll_event events[64];
	unsigned rounds = 0;
	int n;

	/* after a restart, host clients wait in the backlog until the guest
	 * has its TRANSPORT_RESET, which would drop a connection made before
	 * (the event ring's thread wakes us when it is posted) */
	if (v->accept_again && !v->reset_pending)
		host_accept(v, now_ms);
	do {
		n = epoll_wait(v->epoll_fd, events, 64, 0);
		for (int i = 0; i < n; i++) {
			uint64_t data = events[i].data.u64;
			uint32_t index = (uint32_t)data;

			if (data == EPOLL_LISTENER) {
				if (v->reset_pending)
					v->accept_again = true;
				else
					host_accept(v, now_ms);
			} else if (data == EPOLL_WAKE) {
				uint64_t value;

				if (read(v->rx_wake_fd, &value, sizeof(value)) < 0) {
					/* EAGAIN: already drained */
				}
			} else if (index >= EPOLL_CONN_BASE &&
				   index - EPOLL_CONN_BASE < v->max_connections) {
				struct vsock_conn *c = &v->conns[index - EPOLL_CONN_BASE];

				if (c->generation == (uint32_t)(data >> 32) &&
				    c->state != VSOCK_CONN_FREE)
					host_event(v, c, events[i].events, now_ms);
			}
		}
	} while (n == 64 && ++rounds < VSOCK_EVENT_ROUNDS);
	host_deadlines(v, now_ms);
	/* more events than a round's share, or clients left in the listener:
	 * back soon, after the rings had the lock (a starved accept4 after
	 * a pause, for connections to close) */
	if (n == 64 || (v->accept_again && !v->accept_starved && !v->reset_pending))
		return 0;
	if (v->accept_starved && (!v->next_deadline_ms || v->next_deadline_ms > now_ms + 50))
		return 50;
	if (!v->next_deadline_ms)
		return -1;
	return v->next_deadline_ms <= now_ms	     ? 0
	       : v->next_deadline_ms - now_ms > 1000 ? 1000
						     : (int)(v->next_deadline_ms - now_ms);
}

/* ---- life of the device ---------------------------------------------------- */

int vsock_open(struct vsock *v, char *err, size_t errlen)
{
	int fd = vhost_user_backend_listen(v->uds_path);

	if (fd < 0) {
		snprintf(err, errlen, "--uds %s: %s", v->uds_path,
			 fd == -EEXIST	     ? "a file that is not a socket is there"
			 : fd == -EADDRINUSE ? "another process listens there (a second VM given "
					       "the same path?): choose another path"
					     : strerror(-fd));
		return fd;
	}
	/* a burst of host clients waits in the backlog, not refused */
	if (listen(fd, 128) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int ret = -errno;

		snprintf(err, errlen, "--uds %s: %s", v->uds_path, strerror(errno));
		close(fd);
		return ret;
	}
	v->listen_fd = fd;
	return 0;
}

int vsock_open_loop(struct vsock *v, char *err, size_t errlen)
{
	v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	v->rx_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->tx_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->event_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->epoll_fd < 0 || v->rx_wake_fd < 0 || v->tx_wake_fd < 0 || v->event_wake_fd < 0) {
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		return -errno;
	}
	if (epoll_add(v, v->listen_fd, EPOLL_LISTENER) < 0 ||
	    epoll_add(v, v->rx_wake_fd, EPOLL_WAKE) < 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

unsigned vsock_fds(const struct vsock *v, int *fds, unsigned max)
{
	int all[] = {v->listen_fd, v->epoll_fd, v->rx_wake_fd, v->tx_wake_fd, v->event_wake_fd};
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		if (all[i] >= 0)
			fds[n++] = all[i];
	return n;
}

void vsock_close_all(struct vsock *v)
{
	for (uint32_t i = 0; i < v->max_connections && v->conns; i++)
		conn_free(v, &v->conns[i]);
	v->rst_len = v->rst_head = 0;
	v->next_deadline_ms = 0;
}

void vsock_log_counters(const struct vsock *v, const char *when)
{
	const struct vsock_counters *k = &v->counters;

	log_info("%s: %" PRIu64 " connections, %" PRIu64 " refused (table full), %" PRIu64
		 " bytes to the guest, %" PRIu64 " from it, %" PRIu64 " RSTs sent, %" PRIu64
		 " bad headers, %" PRIu64 " credit lies, %" PRIu64 " dropped",
		 when, k->connections, k->refused_full, k->rx_bytes, k->tx_bytes, k->rsts_sent,
		 k->bad_headers, k->credit_lies, k->dropped);
}

void vsock_destroy(struct vsock *v)
{
	vsock_close_all(v);
	int fds[] = {v->listen_fd, v->epoll_fd, v->rx_wake_fd, v->tx_wake_fd, v->event_wake_fd};

	for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	v->listen_fd = v->epoll_fd = v->rx_wake_fd = v->tx_wake_fd = v->event_wake_fd = -1;
	free(v->conns);
	free(v->hash);
	free(v->seg_rx);
	free(v->seg_tx);
	free(v->seg_ev);
	free(v->iov_rx);
	free(v->iov_tx);
	v->conns = NULL;
	v->hash = NULL;
	v->seg_rx = v->seg_tx = v->seg_ev = NULL;
	v->iov_rx = v->iov_tx = NULL;
}
