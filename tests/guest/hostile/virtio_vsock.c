/* SPDX-License-Identifier: MIT */
/*
 * virtio_vsock: a guest that breaks the virtio-vsock rules (virtio 1.2
 * §5.10.6) on purpose; tests/system/vsock_guests.sh runs it with a host
 * listener on PATH_<port> that echoes (port=, default 6000) and one that
 * accepts and never reads (hold_port=, 6001).  `attack=`:
 *
 *   hdr     malformed headers: len beyond the descriptor and 0xffffffff on an
 *           open connection, op 0x77 and INVALID on it, a descriptor shorter
 *           than the header, REQUESTs with a wrong src_cid, a dst_cid that is
 *           not the host (1, 7, our own, 0xffffffff), type SEQPACKET and 9,
 *           RW to a connection that does not exist.
 *   credit  credit lies: RW beyond the host's advertised buf_alloc (to the
 *           listener that never reads), fwd_cnt going backwards by 2^31 and
 *           beyond what the host sent by 2^30 (the host then must not send
 *           past our real 64 KiB buffer; honest credit afterwards gets it all).
 *   flood   n= (1100) REQUESTs from distinct ports at once to the echo
 *           listener: at most max= (1024) may be answered RESPONSE, every
 *           other one RST; then all reset and a new connection works.
 *
 * Judged per attack (console line "<what>: <outcome>"): on an open
 * connection it must be reset (RST) or the device must need a reset
 * (NEEDS_RESET, then set up again); a REQUEST that breaks the rules must
 * not be answered RESPONSE; nothing may crash: after every attack an echo
 * connection to port= moves data both ways (the core and isola-vsock
 * survived).  PASS = status 1.
 */
#include "vsock.h"

#define SEED 0x7a7aull
#define JUDGE_US 1000000ull
#define PROBE_BYTES 8192

static struct vsock vs;
static uint32_t echo_port, hold_port;
static uint8_t *pat, *got;
static unsigned needs_reset_count, connections_made;

static struct vsock_conn *open_conn(uint32_t port)
{
	struct vsock_conn *c = vsock_connect(&vs, VSOCK_HOST_CID, port);

	if (!c)
		test_abort("connect to the host", "port %u", port);
	connections_made++;
	return c;
}

/* An echo connection moves PROBE_BYTES both ways: the device works. */
static void probe(const char *after)
{
	struct vsock_conn *c;
	uint32_t sent = 0, rcvd = 0;
	struct stopwatch sw;

	if (virtio_needs_reset(&vs.dev)) {
		needs_reset_count++;
		if (vsock_reinit(&vs))
			test_abort("device set up again after NEEDS_RESET", "%s", after);
	}
	c = open_conn(echo_port);
	stopwatch_start(&sw);
	while ((sent < PROBE_BYTES || rcvd < PROBE_BYTES) && stopwatch_us(&sw) < VSOCK_TIMEOUT_US &&
	       c->state == VS_ESTABLISHED) {
		long w = vsock_write(&vs, c, pat + sent, PROBE_BYTES - sent);

		if (w > 0)
			sent += (uint32_t)w;
		vsock_poll(&vs);
		if (rcvd < PROBE_BYTES)
			rcvd += vsock_read(&vs, c, got + rcvd, PROBE_BYTES - rcvd);
	}
	test_check(rcvd == PROBE_BYTES && pattern_check(got, PROBE_BYTES, 0, SEED) < 0,
		   "echo connection works", "after %s: sent %u got %u", after, sent, rcvd);
	vsock_rst(&vs, c);
}

enum outcome { O_RST, O_NEEDS_RESET, O_RESPONSE, O_NOTHING };
static const char *const outcome_names[] = {"RST", "NEEDS_RESET", "RESPONSE", "nothing"};

/* Replies to a forged packet: the last op seen for (want_local, want_peer). */
static uint32_t want_local, want_peer;
static int reply_op = -1;

static int forged_hook(struct vsock *v, const struct vsock_hdr *h)
{
	(void)v;
	if (h->dst_port != want_local || h->src_port != want_peer)
		return 0;
	if (reply_op < 0 || h->op == VSOCK_OP_RST)
		reply_op = h->op;
	return 1;
}

static enum outcome wait_forged(void)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < JUDGE_US) {
		if (virtio_needs_reset(&vs.dev))
			return O_NEEDS_RESET;
		vsock_poll(&vs);
		if (reply_op == VSOCK_OP_RST)
			return O_RST;
		if (reply_op == VSOCK_OP_RESPONSE)
			return O_RESPONSE;
	}
	return O_NOTHING;
}

/* An open connection: reset (RST) or the device stopped, within JUDGE_US. */
static enum outcome wait_conn(struct vsock_conn *c)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < JUDGE_US) {
		if (virtio_needs_reset(&vs.dev))
			return O_NEEDS_RESET;
		vsock_poll(&vs);
		if (c->state == VS_CLOSED)
			return O_RST;
	}
	return O_NOTHING;
}

/* An attack on an open connection: it must be reset, or the device stop. */
static void on_conn(const char *what, uint16_t op, uint32_t len, uint32_t data_len,
		    uint32_t desc_len)
{
	struct vsock_conn *c = open_conn(echo_port);
	struct vsock_hdr h;
	enum outcome o;

	vsock_hdr_for(&vs, c, &h, op);
	h.len = len;
	if (vsock_tx_raw(&vs, &h, pat, data_len, desc_len))
		o = virtio_needs_reset(&vs.dev) ? O_NEEDS_RESET : O_NOTHING;
	else
		o = wait_conn(c);
	console_printf("%s: %s (status %x)\n", what, outcome_names[o], virtio_status(&vs.dev));
	test_check(o == O_RST || o == O_NEEDS_RESET, what, "connection not reset: %s",
		   outcome_names[o]);
	if (c->state != VS_FREE)
		vsock_rst(&vs, c);
	probe(what);
}

/* A REQUEST (or stray packet) that breaks the rules: never RESPONSE. */
static void forged(const char *what, uint64_t src_cid, uint64_t dst_cid, uint16_t type, uint16_t op,
		   uint32_t port, int want_rst)
{
	struct vsock_hdr h;
	uint32_t local = vs.next_port++;
	enum outcome o;

	dma_zero(&h, sizeof(h));
	h.src_cid = src_cid;
	h.dst_cid = dst_cid;
	h.src_port = local;
	h.dst_port = port;
	h.type = type;
	h.op = op;
	h.buf_alloc = VSOCK_CONN_BUF;
	want_local = local;
	want_peer = port;
	reply_op = -1;
	vs.unclaimed = forged_hook;
	if (vsock_tx_raw(&vs, &h, NULL, 0, 0))
		o = virtio_needs_reset(&vs.dev) ? O_NEEDS_RESET : O_NOTHING;
	else
		o = wait_forged();
	vs.unclaimed = NULL;
	console_printf("%s: %s (status %x)\n", what, outcome_names[o], virtio_status(&vs.dev));
	if (want_rst)
		test_check(o == O_RST || o == O_NEEDS_RESET, what, "%s", outcome_names[o]);
	else
		test_check(o != O_RESPONSE, what, "answered RESPONSE");
	if (o == O_RESPONSE) {
		/* do not leave it open */
		h.op = VSOCK_OP_RST;
		vsock_tx_raw(&vs, &h, NULL, 0, 0);
	}
	probe(what);
}

static void short_desc(void)
{
	struct vsock_conn *c = open_conn(echo_port);
	struct vsock_hdr h;
	enum outcome o;

	vsock_hdr_for(&vs, c, &h, VSOCK_OP_RW);
	h.len = 0;
	/* §5.10.6: every packet starts with the whole 44-byte header. */
	if (vsock_tx_raw(&vs, &h, NULL, 0, 20))
		o = virtio_needs_reset(&vs.dev) ? O_NEEDS_RESET : O_NOTHING;
	else
		o = wait_conn(c);
	console_printf("descriptor shorter than the header: %s (status %x)\n", outcome_names[o],
		       virtio_status(&vs.dev));
	test_check(o != O_RESPONSE, "descriptor shorter than the header", "RESPONSE");
	if (c->state != VS_FREE)
		vsock_rst(&vs, c);
	probe("short descriptor");
}

static void attack_hdr(void)
{
	uint64_t cid = vs.cid;

	on_conn("len beyond the descriptor", VSOCK_OP_RW, 4000, 16, 0);
	on_conn("len 0xffffffff", VSOCK_OP_RW, 0xffffffffu, 16, 0);
	on_conn("len beyond the descriptor, descriptor 4 KiB short", VSOCK_OP_RW, 4096, 0, 0);
	on_conn("op 0x77", 0x77, 0, 0, 0);
	on_conn("op INVALID", VSOCK_OP_INVALID, 0, 0, 0);
	short_desc();
	forged("REQUEST with src_cid not ours", cid + 1, VSOCK_HOST_CID, VSOCK_TYPE_STREAM,
	       VSOCK_OP_REQUEST, echo_port, 0);
	forged("REQUEST with src_cid 2 (the host's)", VSOCK_HOST_CID, VSOCK_HOST_CID,
	       VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, echo_port, 0);
	forged("REQUEST to dst_cid 7 (another guest)", cid, 7, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST,
	       echo_port, 0);
	forged("REQUEST to dst_cid 1 (local)", cid, 1, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST,
	       echo_port, 0);
	forged("REQUEST to our own cid", cid, cid, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, echo_port,
	       0);
	forged("REQUEST to dst_cid 0xffffffff", cid, 0xffffffffull, VSOCK_TYPE_STREAM,
	       VSOCK_OP_REQUEST, echo_port, 0);
	forged("REQUEST to dst_cid 2^32+2", cid, 0x100000002ull, VSOCK_TYPE_STREAM,
	       VSOCK_OP_REQUEST, echo_port, 0);
	forged("REQUEST type SEQPACKET (not negotiated)", cid, VSOCK_HOST_CID, VSOCK_TYPE_SEQPACKET,
	       VSOCK_OP_REQUEST, echo_port, 0);
	forged("REQUEST type 9", cid, VSOCK_HOST_CID, 9, VSOCK_OP_REQUEST, echo_port, 0);
	/* §5.10.6.4: a packet for no connection is answered RST. */
	forged("RW to no connection", cid, VSOCK_HOST_CID, VSOCK_TYPE_STREAM, VSOCK_OP_RW,
	       echo_port, 1);
}

/* Send count bytes on c whatever the credit says.  Returns bytes sent
 * before the connection was reset or the device stopped. */
static uint64_t blast(struct vsock_conn *c, uint64_t count)
{
	uint64_t sent = 0;

	while (sent < count && c->state == VS_ESTABLISHED && !virtio_needs_reset(&vs.dev)) {
		struct vsock_hdr h;

		vsock_hdr_for(&vs, c, &h, VSOCK_OP_RW);
		h.len = 4096;
		if (vsock_tx_raw(&vs, &h, pat, 4096, 0))
			break;
		c->tx_cnt += 4096;
		sent += 4096;
	}
	return sent;
}

static void credit_lie(const char *what, uint32_t fwd_delta)
{
	struct vsock_conn *c = open_conn(echo_port);
	struct vsock_hdr h;
	uint32_t sent = 0, rcvd = 0, bytes = 2 * VSOCK_CONN_BUF;
	uint64_t viol0 = vs.host_violations;
	struct stopwatch sw;
	enum outcome o = O_NOTHING;

	/* Warm up honestly: 8 KiB there and back, so fwd_cnt is not 0. */
	stopwatch_start(&sw);
	while ((sent < 8192 || rcvd < 8192) && c->state == VS_ESTABLISHED &&
	       stopwatch_us(&sw) < VSOCK_TIMEOUT_US) {
		long w = vsock_write(&vs, c, pat + sent, 8192 - sent);

		if (w > 0)
			sent += (uint32_t)w;
		vsock_poll(&vs);
		rcvd += vsock_read(&vs, c, got + rcvd, 8192 - rcvd);
	}
	/* The lie: our fwd_cnt moved by fwd_delta (mod 2^32), in this and
	 * every later packet (each carries the credit, §5.10.6.3). */
	c->fwd_lie = fwd_delta;
	vsock_hdr_for(&vs, c, &h, VSOCK_OP_CREDIT_UPDATE);
	vsock_tx_raw(&vs, &h, NULL, 0, 0);
	/* 128 KiB through the echo: the host must not send past our real
	 * 64 KiB buffer (the lie must not wrap its credit sum). */
	sent = rcvd = 0;
	stopwatch_start(&sw);
	while (sent < bytes && c->state == VS_ESTABLISHED && stopwatch_us(&sw) < 2000000) {
		long w = vsock_write(&vs, c, pat, bytes - sent > 4096 ? 4096 : bytes - sent);

		if (w > 0)
			sent += (uint32_t)w;
		vsock_poll(&vs);
	}
	vsock_poll_for(&vs, JUDGE_US);
	if (virtio_needs_reset(&vs.dev))
		o = O_NEEDS_RESET;
	else if (c->state == VS_CLOSED)
		o = O_RST;
	console_printf("%s: %s; we sent %u bytes, the host sent %u into our %u-byte buffer, %lu "
		       "packets beyond it (status %x)\n",
		       what, outcome_names[o], sent, c->rx_cnt - 8192, VSOCK_CONN_BUF,
		       vs.host_violations - viol0, virtio_status(&vs.dev));
	test_check(vs.host_violations == viol0, what, "the host sent beyond our real buffer");
	if (o == O_NOTHING) {
		/* Honest again: everything must arrive. */
		c->fwd_lie = 0;
		vsock_hdr_for(&vs, c, &h, VSOCK_OP_CREDIT_UPDATE);
		vsock_tx_raw(&vs, &h, NULL, 0, 0);
		stopwatch_start(&sw);
		while (rcvd < sent && c->state == VS_ESTABLISHED &&
		       stopwatch_us(&sw) < VSOCK_TIMEOUT_US) {
			vsock_poll(&vs);
			rcvd += vsock_read(&vs, c, got, sent - rcvd > 4096 ? 4096 : sent - rcvd);
		}
		test_check(rcvd == sent, what, "after honest credit got %u of %u", rcvd, sent);
	}
	if (c->state != VS_FREE)
		vsock_rst(&vs, c);
	probe(what);
}

static void attack_credit(void)
{
	struct vsock_conn *c;
	uint32_t peer_alloc;
	uint64_t sent;
	enum outcome o = O_NOTHING;

	/* The lies first: isola-vsock logs one credit refusal per run, and the
	 * test pins the fwd_cnt one. */
	credit_lie("fwd_cnt backwards by 2^31", 0x80000000u);
	credit_lie("fwd_cnt beyond what was sent by 2^30", 0x40000000u);
	/* §5.10.6.3: the sender must not send more than peer_free.  The
	 * listener on hold_port never reads, so the host's credit runs out. */
	c = open_conn(hold_port);
	peer_alloc = c->peer_buf_alloc;
	sent = blast(c, (uint64_t)peer_alloc + (4u << 20));
	vsock_poll_for(&vs, JUDGE_US);
	if (virtio_needs_reset(&vs.dev))
		o = O_NEEDS_RESET;
	else if (c->state == VS_CLOSED)
		o = O_RST;
	console_printf("RW beyond the host's buf_alloc: %s after %lu bytes (host buf_alloc %u, "
		       "fwd_cnt %u) (status %x)\n",
		       outcome_names[o], sent, peer_alloc, c->peer_fwd_cnt, virtio_status(&vs.dev));
	test_check(o == O_RST || o == O_NEEDS_RESET, "RW beyond the host's buf_alloc",
		   "connection not reset: %s", outcome_names[o]);
	if (c->state != VS_FREE)
		vsock_rst(&vs, c);
	probe("RW beyond credit");
}

static uint8_t answered[4096]; /* per flood port: 0 none, 1 RESPONSE, 2 RST */
#define FLOOD_BASE 20000

static int flood_unclaimed(struct vsock *v, const struct vsock_hdr *h)
{
	(void)v;
	if (h->dst_port >= FLOOD_BASE && h->dst_port < FLOOD_BASE + sizeof(answered) &&
	    h->src_port == echo_port) {
		uint8_t *a = &answered[h->dst_port - FLOOD_BASE];

		if (h->op == VSOCK_OP_RESPONSE && !*a)
			*a = 1;
		else if (h->op == VSOCK_OP_RST)
			*a = 2;
		return 1;
	}
	return 0;
}

static void flood_send(uint32_t port, uint16_t op)
{
	struct vsock_hdr h;

	dma_zero(&h, sizeof(h));
	h.src_cid = vs.cid;
	h.dst_cid = VSOCK_HOST_CID;
	h.src_port = port;
	h.dst_port = echo_port;
	h.type = VSOCK_TYPE_STREAM;
	h.op = op;
	h.buf_alloc = VSOCK_CONN_BUF;
	if (vsock_tx_raw(&vs, &h, NULL, 0, 0))
		test_abort("flood", "TX stalled at port %u", port);
}

static void attack_flood(unsigned n, unsigned max)
{
	unsigned resp = 0, rst = 0, none = 0;
	struct stopwatch sw;

	if (n > sizeof(answered))
		n = sizeof(answered);
	vs.unclaimed = flood_unclaimed;
	for (unsigned i = 0; i < n; i++)
		flood_send(FLOOD_BASE + i, VSOCK_OP_REQUEST);
	stopwatch_start(&sw);
	for (;;) {
		resp = rst = none = 0;
		vsock_poll(&vs);
		for (unsigned i = 0; i < n; i++) {
			resp += answered[i] == 1;
			rst += answered[i] == 2;
			none += answered[i] == 0;
		}
		if (!none || stopwatch_us(&sw) > 3 * VSOCK_TIMEOUT_US)
			break;
	}
	console_printf("flood: %u REQUESTs: %u RESPONSE, %u RST, %u unanswered (status %x)\n", n,
		       resp, rst, none, virtio_status(&vs.dev));
	test_check(!virtio_needs_reset(&vs.dev), "flood: the device keeps running", "status %x",
		   virtio_status(&vs.dev));
	test_check(resp <= max, "flood: no more connections than the table holds", "%u > %u", resp,
		   max);
	test_check(none == 0, "flood: every REQUEST answered", "%u unanswered", none);
	test_check(n <= max || rst >= n - max, "flood: the rest refused with RST", "%u RST", rst);
	connections_made += resp;
	/* Let them all go; the table must empty. */
	for (unsigned i = 0; i < n; i++)
		if (answered[i] == 1)
			flood_send(FLOOD_BASE + i, VSOCK_OP_RST);
	vsock_poll_for(&vs, JUDGE_US);
	vs.unclaimed = NULL;
	probe("the flood");
}

int guest_main(const struct boot_info *info)
{
	const char *cl = info->cmdline;
	char attack[16] = "";

	console_printf("isola hostile virtio_vsock guest\n");
	echo_port = (uint32_t)cmdline_get_u64_default(cl, "port", 6000);
	hold_port = (uint32_t)cmdline_get_u64_default(cl, "hold_port", 6001);
	cmdline_get(cl, "attack", attack, sizeof(attack));
	dma_init(info);
	pat = dma_alloc(VSOCK_CONN_BUF, 4096);
	got = dma_alloc(VSOCK_CONN_BUF, 4096);
	pattern_fill(pat, VSOCK_CONN_BUF, 0, SEED);
	if (vsock_init(&vs, 0))
		test_abort("virtio-vsock init", "see above");
	probe("set-up");
	if (!strcmp(attack, "hdr"))
		attack_hdr();
	else if (!strcmp(attack, "credit"))
		attack_credit();
	else if (!strcmp(attack, "flood"))
		attack_flood((unsigned)cmdline_get_u64_default(cl, "n", 1100),
			     (unsigned)cmdline_get_u64_default(cl, "max", 1024));
	else
		test_abort("attack=", "hdr, credit or flood, not '%s'", attack);
	/* tests/system/vsock/vsock_peer.py compares it with what its listeners
	 * accepted: no forged REQUEST may have reached the host. */
	console_printf("vsock: host connections made: %u\n", connections_made);
	console_printf("vsock: NEEDS_RESET %u times; rx %lu tx %lu packets, RST received %lu\n",
		       needs_reset_count, vs.rx_pkts, vs.tx_pkts, vs.rst_rcvd);
	return 0;
}
