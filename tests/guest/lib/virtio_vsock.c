/* SPDX-License-Identifier: MIT */
/* virtio-vsock for the test guests (virtio 1.2 §5.10): see vsock.h. */
#include "vsock.h"

#define VSOCK_PENDING 256

/* Control packets (RESPONSE, RST, CREDIT_UPDATE) decided while handling
 * RX are queued and sent after it, so RX handling never waits for a TX
 * slot (a device may hold TX back until we give RX buffers back). */
static struct vsock_hdr pending[VSOCK_PENDING];
static unsigned npending;
static uint64_t pending_dropped;

void vsock_copy(void *dst, const void *src, uint64_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

const char *vsock_op_name(uint16_t op)
{
	static const char *const names[] = {"INVALID",	     "REQUEST",	      "RESPONSE",
					    "RST",	     "SHUTDOWN",      "RW",
					    "CREDIT_UPDATE", "CREDIT_REQUEST"};

	return op < ARRAY_SIZE(names) ? names[op] : "?";
}

static struct virtq *rxq(struct vsock *vs)
{
	return &vs->dev.vq[0];
}
static struct virtq *txq(struct vsock *vs)
{
	return &vs->dev.vq[1];
}
static struct virtq *evq(struct vsock *vs)
{
	return &vs->dev.vq[2];
}

static void post_buffers(struct vsock *vs)
{
	struct virtq *rx = rxq(vs), *tx = txq(vs), *ev = evq(vs);

	for (uint16_t i = 0; i < rx->size; i++) {
		rx->desc[i].addr = (uint64_t)(vs->rx_buf + (uint64_t)i * VSOCK_RX_BUF);
		rx->desc[i].len = VSOCK_RX_BUF;
		rx->desc[i].flags = VIRTQ_DESC_F_WRITE;
		virtq_publish(rx, i);
	}
	virtq_notify(rx);
	for (uint16_t i = 0; i < ev->size && i < VSOCK_EVENTS; i++) {
		ev->desc[i].addr = (uint64_t)&vs->ev_buf[i];
		ev->desc[i].len = 4; /* struct virtio_vsock_event, §5.10.6.7 */
		ev->desc[i].flags = VIRTQ_DESC_F_WRITE;
		virtq_publish(ev, i);
	}
	virtq_notify(ev);
	vs->tx_nfree = 0;
	for (uint16_t i = 0; i < tx->size; i++) {
		tx->desc[i].addr = (uint64_t)(vs->tx_buf + (uint64_t)i * VSOCK_TX_BUF);
		vs->tx_free[vs->tx_nfree++] = i;
	}
}

static int vsock_setup(struct vsock *vs)
{
	if (virtio_init(&vs->dev, VIRTIO_BIT(VSOCK_F_STREAM), 3, VSOCK_QUEUE_SIZE, 0))
		return -1;
	/* §5.10.4: le64 guest_cid. */
	vs->cid = virtio_config_read64(&vs->dev, 0);
	post_buffers(vs);
	npending = 0;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		vs->conn[i].state = VS_FREE;
	return 0;
}

int vsock_init(struct vsock *vs, int use_msix)
{
	(void)use_msix; /* polled: one CPU, nothing else to do meanwhile */
	if (virtio_find(VIRTIO_ID_VSOCK, &vs->dev, 1) != 1) {
		test_fail("virtio-vsock device", "none on bus 0");
		return -1;
	}
	vs->rx_buf = dma_alloc((uint64_t)VSOCK_RX_BUF * VSOCK_QUEUE_SIZE, 4096);
	vs->tx_buf = dma_alloc((uint64_t)VSOCK_TX_BUF * VSOCK_QUEUE_SIZE, 4096);
	vs->ev_buf = dma_alloc(4 * VSOCK_EVENTS, 64);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		vs->conn[i].rbuf = dma_alloc(VSOCK_CONN_BUF, 4096);
	vs->next_port = 40000;
	if (vsock_setup(vs))
		return -1;
	console_printf("vsock: guest cid %lu, features %lx\n", vs->cid, vs->dev.features);
	return 0;
}

int vsock_reinit(struct vsock *vs)
{
	return vsock_setup(vs);
}

uint32_t vsock_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* §5.10.6.3: peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt). */
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

void vsock_hdr_for(struct vsock *vs, const struct vsock_conn *c, struct vsock_hdr *h, uint16_t op)
{
	dma_zero(h, sizeof(*h));
	h->src_cid = vs->cid;
	h->dst_cid = VSOCK_HOST_CID;
	h->src_port = c->local_port;
	h->dst_port = c->peer_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = VSOCK_CONN_BUF;
	h->fwd_cnt = c->fwd_cnt + c->fwd_lie;
}

static void reclaim_tx(struct vsock *vs)
{
	struct virtq *tx = txq(vs);

	while (tx->used->idx != tx->last_used) {
		uint32_t id;

		__asm__ volatile("" ::: "memory");
		id = tx->used->ring[tx->last_used % tx->size].id;
		tx->last_used++;
		if (id >= tx->size || vs->tx_nfree >= tx->size) {
			vs->rx_bad++;
			continue;
		}
		vs->tx_free[vs->tx_nfree++] = (uint16_t)id;
	}
}

static int tx_now(struct vsock *vs, const struct vsock_hdr *h, const void *data, uint32_t data_len,
		  uint32_t desc_len)
{
	struct virtq *tx = txq(vs);
	uint16_t slot;
	uint8_t *buf;

	if (!vs->tx_nfree || data_len > VSOCK_TX_BUF - VSOCK_HDR_SIZE)
		return -1;
	slot = vs->tx_free[--vs->tx_nfree];
	buf = vs->tx_buf + (uint64_t)slot * VSOCK_TX_BUF;
	vsock_copy(buf, h, VSOCK_HDR_SIZE);
	if (data_len)
		vsock_copy(buf + VSOCK_HDR_SIZE, data, data_len);
	tx->desc[slot].len = desc_len ? desc_len : VSOCK_HDR_SIZE + data_len;
	tx->desc[slot].flags = 0;
	virtq_publish(tx, slot);
	virtq_notify(tx);
	vs->tx_pkts++;
	return 0;
}

static void queue_ctl(const struct vsock_hdr *h)
{
	if (npending < VSOCK_PENDING)
		pending[npending++] = *h;
	else
		pending_dropped++;
}

static void flush_pending(struct vsock *vs)
{
	unsigned done = 0;

	while (done < npending && vs->tx_nfree)
		if (tx_now(vs, &pending[done], NULL, 0, 0) == 0)
			done++;
	for (unsigned i = done; i < npending; i++)
		pending[i - done] = pending[i];
	npending -= done;
}

static void reply_rst(struct vsock *vs, const struct vsock_hdr *in)
{
	struct vsock_hdr h;

	/* §5.10.6.4: a packet for no connection (or a refused one) is answered
	 * with RST, ports swapped; an RST is never answered. */
	if (in->op == VSOCK_OP_RST)
		return;
	dma_zero(&h, sizeof(h));
	h.src_cid = vs->cid;
	h.dst_cid = in->src_cid;
	h.src_port = in->dst_port;
	h.dst_port = in->src_port;
	h.type = VSOCK_TYPE_STREAM;
	h.op = VSOCK_OP_RST;
	queue_ctl(&h);
	vs->rst_sent++;
}

static void ctl(struct vsock *vs, struct vsock_conn *c, uint16_t op, uint32_t flags)
{
	struct vsock_hdr h;

	vsock_hdr_for(vs, c, &h, op);
	h.flags = flags;
	c->fwd_sent = c->fwd_cnt;
	queue_ctl(&h);
}

static struct vsock_conn *find_conn(struct vsock *vs, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conn[i];

		if (c->state != VS_FREE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

static struct vsock_conn *alloc_conn(struct vsock *vs)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conn[i];

		if (c->state == VS_FREE) {
			uint8_t *rbuf = c->rbuf;

			dma_zero(c, sizeof(*c));
			c->rbuf = rbuf;
			return c;
		}
	}
	return NULL;
}

static int is_listening(struct vsock *vs, uint32_t port)
{
	for (unsigned i = 0; i < vs->nlisten; i++)
		if (vs->listen_port[i] == port)
			return 1;
	return 0;
}

static void handle_packet(struct vsock *vs, const struct vsock_hdr *h, const uint8_t *data,
			  uint32_t data_len)
{
	struct vsock_conn *c;

	vs->last_rx = *h;
	if (h->op == VSOCK_OP_RST)
		vs->rst_rcvd++;
	/* A hostile guest judges the replies to its forged packets itself. */
	if (vs->unclaimed && !find_conn(vs, h->dst_port, h->src_port) && vs->unclaimed(vs, h))
		return;
	/* What a device may send us: from the host, to our CID, STREAM. */
	if (h->dst_cid != vs->cid || h->type != VSOCK_TYPE_STREAM) {
		console_printf("vsock: bad packet from the device: %s dst_cid %lu type %u\n",
			       vsock_op_name(h->op), h->dst_cid, h->type);
		vs->rx_bad++;
		return;
	}
	c = find_conn(vs, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST && h->dst_port == vs->ignore_port && vs->ignore_port)
			return;
		if (h->op == VSOCK_OP_REQUEST && is_listening(vs, h->dst_port) &&
		    (c = alloc_conn(vs))) {
			c->state = VS_ESTABLISHED;
			c->incoming = 1;
			c->local_port = h->dst_port;
			c->peer_port = h->src_port;
			c->peer_buf_alloc = h->buf_alloc;
			c->peer_fwd_cnt = h->fwd_cnt;
			ctl(vs, c, VSOCK_OP_RESPONSE, 0);
			return;
		}
		reply_rst(vs, h);
		return;
	}
	/* §5.10.6.3: every packet carries the sender's credit. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == VS_CONNECTING)
			c->state = VS_ESTABLISHED;
		else {
			vs->host_violations++;
			ctl(vs, c, VSOCK_OP_RST, 0);
			c->state = VS_CLOSED;
			c->reset = 1;
		}
		break;
	case VSOCK_OP_RST:
		c->state = VS_CLOSED;
		c->reset = 1;
		break;
	case VSOCK_OP_SHUTDOWN:
		c->peer_shut |= h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		break;
	case VSOCK_OP_RW:
		if (c->state != VS_ESTABLISHED || (c->peer_shut & VSOCK_SHUTDOWN_SEND) ||
		    c->rlen + data_len > VSOCK_CONN_BUF) {
			console_printf(
			    "vsock: port %u: %u bytes beyond our credit (%u buffered) or "
			    "after shutdown\n",
			    c->local_port, data_len, c->rlen);
			vs->host_violations++;
			break;
		}
		for (uint32_t done = 0; done < data_len;) {
			uint32_t tail = (c->rhead + c->rlen) % VSOCK_CONN_BUF;
			uint32_t n = VSOCK_CONN_BUF - tail;

			if (n > data_len - done)
				n = data_len - done;
			vsock_copy(c->rbuf + tail, data + done, n);
			c->rlen += n;
			done += n;
		}
		c->rx_cnt += data_len;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		ctl(vs, c, VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	default:
		vs->rx_bad++;
		break;
	}
}

static void poll_rx(struct vsock *vs)
{
	struct virtq *rx = rxq(vs), *ev = evq(vs);
	int reposted = 0;

	while (rx->used->idx != rx->last_used) {
		uint32_t id, len;
		const uint8_t *buf;
		struct vsock_hdr h;

		__asm__ volatile("" ::: "memory");
		id = rx->used->ring[rx->last_used % rx->size].id;
		len = rx->used->ring[rx->last_used % rx->size].len;
		rx->last_used++;
		if (id >= rx->size) {
			vs->rx_bad++;
			continue;
		}
		buf = vs->rx_buf + (uint64_t)id * VSOCK_RX_BUF;
		vsock_copy(&h, buf, VSOCK_HDR_SIZE);
		vs->rx_pkts++;
		if (len < VSOCK_HDR_SIZE || len > VSOCK_RX_BUF || h.len != len - VSOCK_HDR_SIZE) {
			console_printf("vsock: RX used length %u, header len %u\n", len, h.len);
			vs->rx_bad++;
		} else {
			handle_packet(vs, &h, buf + VSOCK_HDR_SIZE, h.len);
		}
		virtq_publish(rx, (uint16_t)id);
		reposted = 1;
	}
	if (reposted)
		virtq_notify(rx);
	reposted = 0;
	while (ev->used->idx != ev->last_used) {
		uint32_t id;

		__asm__ volatile("" ::: "memory");
		id = ev->used->ring[ev->last_used % ev->size].id;
		ev->last_used++;
		if (id >= ev->size || id >= VSOCK_EVENTS) {
			vs->rx_bad++;
			continue;
		}
		if (vs->ev_buf[id] == VSOCK_EVENT_TRANSPORT_RESET) {
			/* §5.10.6.7: every connection is gone; the CID may have
			 * changed (re-read it). */
			vs->transport_resets++;
			for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
				if (vs->conn[i].state != VS_FREE) {
					vs->conn[i].state = VS_CLOSED;
					vs->conn[i].reset = 1;
				}
			vs->cid = virtio_config_read64(&vs->dev, 0);
			console_printf("vsock: TRANSPORT_RESET event (cid %lu)\n", vs->cid);
		} else {
			console_printf("vsock: unknown event %u\n", vs->ev_buf[id]);
		}
		vs->ev_buf[id] = 0xffffffffu;
		virtq_publish(ev, (uint16_t)id);
		reposted = 1;
	}
	if (reposted)
		virtq_notify(ev);
}

void vsock_poll(struct vsock *vs)
{
	reclaim_tx(vs);
	poll_rx(vs);
	flush_pending(vs);
}

void vsock_poll_for(struct vsock *vs, uint64_t us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < us)
		vsock_poll(vs);
}

int vsock_tx_raw(struct vsock *vs, const struct vsock_hdr *h, const void *data, uint32_t data_len,
		 uint32_t desc_len)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	for (;;) {
		vsock_poll(vs);
		if (vs->tx_nfree && !npending)
			return tx_now(vs, h, data, data_len, desc_len);
		if (stopwatch_us(&sw) > VSOCK_TIMEOUT_US || virtio_needs_reset(&vs->dev))
			return -1;
	}
}

int vsock_tx_flush(struct vsock *vs, uint64_t timeout_us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	for (;;) {
		vsock_poll(vs);
		if (!npending && vs->tx_nfree == txq(vs)->size)
			return 0;
		if (stopwatch_us(&sw) > timeout_us)
			return -1;
	}
}

int vsock_listen(struct vsock *vs, uint32_t port)
{
	if (vs->nlisten >= ARRAY_SIZE(vs->listen_port))
		return -1;
	vs->listen_port[vs->nlisten++] = port;
	return 0;
}

struct vsock_conn *vsock_accept(struct vsock *vs)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conn[i];

		if (c->state != VS_FREE && c->incoming && !c->accepted) {
			c->accepted = 1;
			return c;
		}
	}
	return NULL;
}

struct vsock_conn *vsock_connect(struct vsock *vs, uint64_t cid, uint32_t port)
{
	struct vsock_conn *c = alloc_conn(vs);
	struct vsock_hdr h;
	struct stopwatch sw;

	if (!c)
		return NULL;
	c->state = VS_CONNECTING;
	c->local_port = vs->next_port++;
	c->peer_port = port;
	vsock_hdr_for(vs, c, &h, VSOCK_OP_REQUEST);
	h.dst_cid = cid;
	if (vsock_tx_raw(vs, &h, NULL, 0, 0)) {
		c->state = VS_FREE;
		return NULL;
	}
	stopwatch_start(&sw);
	while (c->state == VS_CONNECTING && stopwatch_us(&sw) < VSOCK_TIMEOUT_US)
		vsock_poll(vs);
	if (c->state == VS_ESTABLISHED)
		return c;
	if (c->state == VS_CONNECTING)
		console_printf("vsock: connect to %lu:%u: no answer in time\n", cid, port);
	c->state = VS_FREE;
	return NULL;
}

long vsock_write(struct vsock *vs, struct vsock_conn *c, const void *data, uint32_t len)
{
	const uint8_t *p = data;
	long sent = 0;

	for (unsigned pkts = 0; pkts < 16 && (uint32_t)sent < len; pkts++) {
		uint32_t n = len - (uint32_t)sent, credit;
		struct vsock_hdr h;

		vsock_poll(vs);
		if (c->state != VS_ESTABLISHED || (c->our_shut & VSOCK_SHUTDOWN_SEND))
			return sent ? sent : -1;
		credit = vsock_credit(c);
		if (n > credit)
			n = credit;
		if (n > VSOCK_TX_BUF - VSOCK_HDR_SIZE)
			n = VSOCK_TX_BUF - VSOCK_HDR_SIZE;
		if (!n || !vs->tx_nfree || npending)
			break;
		vsock_hdr_for(vs, c, &h, VSOCK_OP_RW);
		h.len = n;
		c->fwd_sent = c->fwd_cnt;
		if (tx_now(vs, &h, p + sent, n, 0))
			break;
		c->tx_cnt += n;
		sent += n;
	}
	return sent;
}

uint32_t vsock_peek(struct vsock_conn *c, uint8_t **p)
{
	uint32_t n = VSOCK_CONN_BUF - c->rhead;

	*p = c->rbuf + c->rhead;
	return n < c->rlen ? n : c->rlen;
}

void vsock_consume(struct vsock *vs, struct vsock_conn *c, uint32_t n)
{
	if (n > c->rlen)
		n = c->rlen;
	c->rhead = (c->rhead + n) % VSOCK_CONN_BUF;
	c->rlen -= n;
	c->fwd_cnt += n;
	/* Give credit back once a quarter of the buffer was taken (§5.10.6.3
	 * CREDIT_UPDATE), so a sender waiting on it moves on. */
	if (c->state == VS_ESTABLISHED && c->fwd_cnt - c->fwd_sent >= VSOCK_CONN_BUF / 4)
		ctl(vs, c, VSOCK_OP_CREDIT_UPDATE, 0);
}

uint32_t vsock_read(struct vsock *vs, struct vsock_conn *c, void *buf, uint32_t max)
{
	uint32_t got = 0;

	while (got < max && c->rlen) {
		uint8_t *p;
		uint32_t n = vsock_peek(c, &p);

		if (n > max - got)
			n = max - got;
		vsock_copy((uint8_t *)buf + got, p, n);
		vsock_consume(vs, c, n);
		got += n;
	}
	return got;
}

void vsock_shutdown(struct vsock *vs, struct vsock_conn *c, uint32_t flags)
{
	if (c->state != VS_ESTABLISHED)
		return;
	c->our_shut |= flags;
	ctl(vs, c, VSOCK_OP_SHUTDOWN, c->our_shut);
	flush_pending(vs);
}

void vsock_rst(struct vsock *vs, struct vsock_conn *c)
{
	if (c->state == VS_ESTABLISHED || c->state == VS_CONNECTING) {
		ctl(vs, c, VSOCK_OP_RST, 0);
		vs->rst_sent++;
		flush_pending(vs);
	}
	c->state = VS_FREE;
}

void vsock_free(struct vsock_conn *c)
{
	c->state = VS_FREE;
}
