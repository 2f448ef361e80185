/* SPDX-License-Identifier: MIT */
/*
 * vsock_echo: the first virtio-vsock device (virtio 1.2 §5.10, driver in
 * lib/virtio_vsock.c), driven from the host by tests/system/vsock_guests.sh
 * through isola-vsock's hybrid Unix socket.
 *
 * Listens on `port=` (5000) and echoes every byte of each connection back;
 * when the peer shuts its sending side (SHUTDOWN SEND) and everything was
 * echoed, it shuts down both ways and waits (bounded) for the peer's RST or
 * full SHUTDOWN before giving up the slot.  `ttrpc`: also listens on 1024
 * and answers ttRPC frames (10-byte header: length u32 BE, stream id u32
 * BE, type u8, flags u8): each request (type 1) comes back as a response
 * (type 2) with the same stream id, flags and payload; any other type fails.
 * With `host_port=P`, it also opens `hconns=` (2) connections to the host
 * (CID 2, port P) at once, sends `send=` (256K) bytes of pattern_word()
 * with seed 0x5eed on each, shuts its sending side, and checks that the same
 * bytes come back before the host's shutdown.
 * Done when `conns=` (4) echo connections and `ttrpc_conns=` (1, with
 * `ttrpc`) ttRPC connections were served in order and the host connections
 * checked; `wait_s=` (90) bounds it all.
 * `ignore_port=X`: REQUESTs to port X are never answered (half-open).
 * `restart`: then waits for a TRANSPORT_RESET event (the test kills
 * isola-vsock while a connection is open), checks it closed at least one
 * connection, prints `vsock: READY2` and serves `conns2=` (1) echo
 * connections and the host connections again.  PASS = status 1.
 */
#include "vsock.h"

#define ECHO 0
#define TTRPC 1
#define OUT 2
#define TTRPC_PORT 1024
#define TTRPC_HDR 10
#define TTRPC_MAX (4u << 20) /* ttRPC's largest message */
#define PATTERN_SEED 0x5eedull
#define CLOSE_WAIT_US 3000000ull

struct app {
	int kind;
	int closing;	     /* we sent SHUTDOWN both ways */
	struct stopwatch sw; /* since closing */
	uint32_t xformed;    /* ttRPC: head bytes already rewritten */
	uint32_t frame_off, frame_len;
	uint64_t frames, bytes;
	/* OUT */
	uint8_t *got;
	uint32_t sent, rcvd;
};

static struct vsock vs;
static struct app apps[VSOCK_MAX_CONNS];
static uint8_t *pattern;
static uint32_t send_bytes;
static unsigned served_echo, served_ttrpc, out_done, failures;
static uint64_t echoed_total;

static void fail_conn(struct vsock_conn *c, const char *what)
{
	test_fail(what, "port %u/%u: rx %u tx %u shut %x/%x reset %d", c->local_port, c->peer_port,
		  c->rx_cnt, c->tx_cnt, c->our_shut, c->peer_shut, c->reset);
	failures++;
}

/* Rewrite ttRPC headers in the bytes not yet looked at: requests become
 * responses.  0, or -1 on a frame that is not a request. */
static int ttrpc_rewrite(struct vsock_conn *c, struct app *a, uint8_t *p, uint32_t n)
{
	for (uint32_t i = a->xformed; i < n;) {
		if (a->frame_off < TTRPC_HDR) {
			uint8_t b = p[i];

			if (a->frame_off < 4)
				a->frame_len = a->frame_len << 8 | b;
			if (a->frame_off == 8) {
				if (b != 1) {
					console_printf(
					    "ttrpc: frame %lu type %u, want 1 (request)\n",
					    a->frames, b);
					return -1;
				}
				p[i] = 2; /* response */
			}
			if (a->frame_off == 3 && a->frame_len > TTRPC_MAX) {
				console_printf("ttrpc: frame length %u > %u\n", a->frame_len,
					       TTRPC_MAX);
				return -1;
			}
			a->frame_off++;
			i++;
		} else {
			uint32_t left = TTRPC_HDR + a->frame_len - a->frame_off, k = n - i;

			if (k > left)
				k = left;
			a->frame_off += k;
			i += k;
		}
		if (a->frame_off >= TTRPC_HDR && a->frame_off == TTRPC_HDR + a->frame_len) {
			a->frames++;
			a->frame_off = 0;
			a->frame_len = 0;
		}
	}
	(void)c;
	a->xformed = n;
	return 0;
}

/* Echo (or ttRPC-answer) what arrived; close in order once the peer is done. */
static void step_echo(struct vsock_conn *c, struct app *a)
{
	for (int rounds = 0; rounds < 4 && c->state == VS_ESTABLISHED; rounds++) {
		uint8_t *p;
		uint32_t n = vsock_peek(c, &p);
		long w;

		if (!n)
			break;
		if (a->kind == TTRPC && ttrpc_rewrite(c, a, p, n)) {
			fail_conn(c, "ttrpc frames are requests");
			vsock_rst(&vs, c);
			return;
		}
		w = vsock_write(&vs, c, p, n);
		if (w <= 0)
			break;
		vsock_consume(&vs, c, (uint32_t)w);
		if (a->kind == TTRPC)
			a->xformed -= (uint32_t)w;
		a->bytes += (uint64_t)w;
	}
	if (c->state == VS_ESTABLISHED && !a->closing && (c->peer_shut & VSOCK_SHUTDOWN_SEND) &&
	    !c->rlen) {
		/* §5.10.6.5: the peer sends no more and all is echoed: we
		 * neither send nor receive any more. */
		vsock_shutdown(&vs, c, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
		a->closing = 1;
		stopwatch_start(&a->sw);
	}
	if (c->state == VS_CLOSED || (a->closing && c->peer_shut == 3) ||
	    (a->closing && stopwatch_us(&a->sw) > CLOSE_WAIT_US)) {
		if (!a->closing) {
			fail_conn(c, "echo connection closed in order (RST before the peer's "
				     "SHUTDOWN)");
			vsock_free(c);
			return;
		}
		console_printf("vsock: %s connection %u<-%u done: %lu bytes%s, %s\n",
			       a->kind == TTRPC ? "ttrpc" : "echo", c->local_port, c->peer_port,
			       a->bytes, a->kind == TTRPC ? " (frames counted below)" : "",
			       c->state == VS_CLOSED ? "peer sent RST"
			       : c->peer_shut == 3   ? "peer shut down both ways"
						     : "peer went quiet (we reset)");
		if (a->kind == TTRPC) {
			console_printf("ttrpc: %lu frames answered\n", a->frames);
			if (a->frame_off) {
				fail_conn(c, "ttrpc stream ends on a frame boundary");
				return;
			}
			served_ttrpc++;
		} else {
			served_echo++;
		}
		echoed_total += a->bytes;
		if (c->state == VS_CLOSED)
			vsock_free(c);
		else
			vsock_rst(&vs, c);
	}
}

static void step_out(struct vsock_conn *c, struct app *a)
{
	if (c->state == VS_ESTABLISHED && a->sent < send_bytes) {
		long w = vsock_write(&vs, c, pattern + a->sent, send_bytes - a->sent);

		if (w > 0)
			a->sent += (uint32_t)w;
		if (a->sent == send_bytes)
			vsock_shutdown(&vs, c, VSOCK_SHUTDOWN_SEND);
	}
	while (c->rlen) {
		uint32_t n = send_bytes - a->rcvd;

		if (!n) {
			fail_conn(c, "host echoes no more than was sent");
			vsock_rst(&vs, c);
			return;
		}
		a->rcvd += vsock_read(&vs, c, a->got + a->rcvd, n);
	}
	if (c->state == VS_CLOSED || (c->peer_shut & VSOCK_SHUTDOWN_SEND)) {
		long bad =
		    a->rcvd == send_bytes ? pattern_check(a->got, send_bytes, 0, PATTERN_SEED) : 0;

		if (a->sent != send_bytes || a->rcvd != send_bytes || bad >= 0) {
			console_printf("vsock: out %u->%u: sent %u got %u, first bad byte %ld\n",
				       c->local_port, c->peer_port, a->sent, a->rcvd, bad);
			fail_conn(c, "host connection: every byte sent comes back");
		} else {
			console_printf("vsock: out connection %u->%u done: %u bytes each way, "
				       "checked (%s)\n",
				       c->local_port, c->peer_port, send_bytes,
				       c->state == VS_CLOSED ? "peer sent RST" : "peer shut down");
			out_done++;
		}
		if (c->state == VS_CLOSED)
			vsock_free(c);
		else
			vsock_rst(&vs, c);
	}
}

/* Serve until want_echo echo and want_ttrpc ttRPC connections were served and
 * hconns host connections checked.  0, or -1 on timeout or a failure. */
static int serve(unsigned want_echo, unsigned want_ttrpc, uint32_t host_port, unsigned hconns,
		 uint64_t wait_us)
{
	struct stopwatch sw;
	unsigned e0 = served_echo, t0 = served_ttrpc, o0 = out_done, f0 = failures, rounds = 0;

	for (unsigned i = 0; i < hconns; i++) {
		struct vsock_conn *c = vsock_connect(&vs, VSOCK_HOST_CID, host_port);
		struct app *a;

		if (!c) {
			test_fail("connect to the host", "port %u refused or unanswered",
				  host_port);
			return -1;
		}
		a = &apps[c - vs.conn];
		dma_zero(a, sizeof(*a));
		a->kind = OUT;
		a->got = dma_alloc(send_bytes, 4096);
		c->user = 1;
	}
	stopwatch_start(&sw);
	while (served_echo - e0 < want_echo || served_ttrpc - t0 < want_ttrpc ||
	       out_done - o0 < hconns) {
		struct vsock_conn *c;

		if (failures != f0)
			return -1;
		if (stopwatch_us(&sw) > wait_us) {
			test_fail("vsock service in time",
				  "echo %u/%u ttrpc %u/%u host %u/%u after %lu s", served_echo - e0,
				  want_echo, served_ttrpc - t0, want_ttrpc, out_done - o0, hconns,
				  wait_us / 1000000);
			return -1;
		}
		/* a config read is a VM exit: not on every round */
		if (!(++rounds % 256) && virtio_needs_reset(&vs.dev)) {
			test_fail("vsock device", "NEEDS_RESET (status %x)",
				  virtio_status(&vs.dev));
			return -1;
		}
		vsock_poll(&vs);
		while ((c = vsock_accept(&vs))) {
			struct app *a = &apps[c - vs.conn];

			dma_zero(a, sizeof(*a));
			a->kind = c->local_port == TTRPC_PORT ? TTRPC : ECHO;
			c->user = 1;
		}
		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
			c = &vs.conn[i];
			if (c->state == VS_FREE || !c->user)
				continue;
			if (apps[i].kind == OUT)
				step_out(c, &apps[i]);
			else
				step_echo(c, &apps[i]);
		}
	}
	return 0;
}

int guest_main(const struct boot_info *info)
{
	const char *cl = info->cmdline;
	uint32_t port = (uint32_t)cmdline_get_u64_default(cl, "port", 5000);
	uint32_t host_port = (uint32_t)cmdline_get_u64_default(cl, "host_port", 0);
	unsigned conns = (unsigned)cmdline_get_u64_default(cl, "conns", 4);
	unsigned hconns = host_port ? (unsigned)cmdline_get_u64_default(cl, "hconns", 2) : 0;
	int ttrpc = cmdline_has(cl, "ttrpc");
	unsigned ttrpc_conns = ttrpc ? (unsigned)cmdline_get_u64_default(cl, "ttrpc_conns", 1) : 0;
	uint64_t wait_us = cmdline_get_u64_default(cl, "wait_s", 90) * 1000000;

	console_printf("isola vsock_echo guest\n");
	send_bytes = (uint32_t)cmdline_get_u64_default(cl, "send", 256 * 1024) & ~7u;
	dma_init(info);
	if (vsock_init(&vs, 0))
		test_abort("virtio-vsock init", "see above");
	test_check(vs.cid >= 3 && vs.cid <= 0xfffffffeull, "guest_cid is a guest CID (3..2^32-2)",
		   "%lu", vs.cid);
	if (cmdline_has(cl, "cid"))
		test_check(vs.cid == cmdline_get_u64_default(cl, "cid", 0),
			   "guest_cid == cid=", "%lu", vs.cid);
	if (hconns) {
		pattern = dma_alloc(send_bytes, 4096);
		pattern_fill(pattern, send_bytes, 0, PATTERN_SEED);
	}
	/* REQUESTs to ignore_port= get no answer: the host's CONNECT there
	 * must never see OK (a half-open connection). */
	vs.ignore_port = (uint32_t)cmdline_get_u64_default(cl, "ignore_port", 0);
	vsock_listen(&vs, port);
	if (ttrpc)
		vsock_listen(&vs, TTRPC_PORT);
	console_printf("vsock: READY\n");
	if (serve(conns, ttrpc_conns, host_port, hconns, wait_us))
		return 1;
	test_pass("vsock echo, ttRPC and host connections served");
	if (cmdline_has(cl, "restart")) {
		struct stopwatch sw;
		unsigned live = 0;

		console_printf("vsock: waiting for a transport reset\n");
		stopwatch_start(&sw);
		while (!vs.transport_resets && stopwatch_us(&sw) < wait_us) {
			struct vsock_conn *c;

			vsock_poll(&vs);
			while ((c = vsock_accept(&vs)))
				c->user = 0; /* held open by the host until the reset */
			for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
				c = &vs.conn[i];
				/* echo the held connection's bytes, so the host
				 * knows it is established end to end */
				if (c->state == VS_ESTABLISHED && !c->user && c->rlen) {
					uint8_t *p;
					uint32_t n = vsock_peek(c, &p);
					long w = vsock_write(&vs, c, p, n);

					if (w > 0)
						vsock_consume(&vs, c, (uint32_t)w);
				}
			}
		}
		if (!test_check(vs.transport_resets >= 1,
				"TRANSPORT_RESET event after the server "
				"restart",
				"none within %lu s", wait_us / 1000000))
			return 1;
		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
			if (vs.conn[i].state == VS_CLOSED && vs.conn[i].reset) {
				live++;
				vsock_free(&vs.conn[i]);
			}
		test_check(live >= 1, "the transport reset closed the open connection", "%u closed",
			   live);
		console_printf("vsock: READY2\n");
		if (serve((unsigned)cmdline_get_u64_default(cl, "conns2", 1), 0, host_port, hconns,
			  wait_us))
			return 1;
		test_pass("vsock works again after the transport reset");
	}
	if (vsock_tx_flush(&vs, VSOCK_TIMEOUT_US))
		test_fail("vsock TX drained", "slots still out");
	console_printf("vsock: echoed %lu bytes; rx %lu tx %lu packets, bad %lu, host violations "
		       "%lu, RST sent %lu received %lu\n",
		       echoed_total, vs.rx_pkts, vs.tx_pkts, vs.rx_bad, vs.host_violations,
		       vs.rst_sent, vs.rst_rcvd);
	test_check(vs.rx_bad == 0, "every packet from the device well-formed", "%lu bad",
		   vs.rx_bad);
	test_check(vs.host_violations == 0, "the device kept to our credit", "%lu violations",
		   vs.host_violations);
	test_check(!virtio_needs_reset(&vs.dev), "device never needed a reset", "status %x",
		   virtio_status(&vs.dev));
	return 0;
}
