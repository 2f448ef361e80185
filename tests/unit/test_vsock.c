// SPDX-License-Identifier: MIT
/*
 * Unit tests for isola-vsock's device logic (servers/vsock/ but main.c,
 * linked in; docs/vsock.md), without a ring or a process:
 *  - vsock_check_hdr: every guest header field (virtio 1.2 §5.10.6);
 *  - the credit arithmetic of §5.10.6.3 with counters that wrap and peers
 *    that lie (fwd_cnt backwards or past what was sent, RW beyond credit);
 *  - the CONNECT line (Firecracker's hybrid vsock);
 *  - the state machine on real Unix sockets in a directory of the test's:
 *    guest REQUEST to PATH_P (listener there or not), host CONNECT ->
 *    REQUEST -> RESPONSE -> "OK <port>\n", data both ways, credit stops the
 *    host reader, a host that does not read fills the buffer up to
 *    buf_alloc and no further, SHUTDOWN -> EOF -> RST, RST -> EOF, the
 *    table full, the RST queue full, the CONNECT deadline;
 *  - restart detection when the event ring starts (ring bases);
 *  - the rings over a small fake guest memory: a connection through tx
 *    and rx, TRANSPORT_RESET on the event ring once, and chains that
 *    break the ring rules (NEEDS_RESET);
 *  - lib/sandbox's sandbox_bind_dir: the --uds directory (under /tmp, where
 *    the empty root's tmpfs is mounted) reachable in the sandbox, nothing
 *    else of the host (root only, else SKIP).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/sandbox.h"
#include "servers/vsock/vsock.h"

#define CID 42
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct vsock_hdr guest_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	return (struct vsock_hdr){
	    .src_cid = CID,
	    .dst_cid = VSOCK_HOST_CID,
	    .src_port = src_port,
	    .dst_port = dst_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .buf_alloc = 65536,
	};
}

/* ---- headers ---------------------------------------------------------------- */

static void test_header_fields(void **state)
{
	const char *why = NULL;
	struct vsock_hdr h;

	(void)state;
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_ACCEPT);
	h = guest_hdr(VSOCK_OP_RW, 1000, 5000);
	h.len = 100;
	assert_int_equal(vsock_check_hdr(&h, CID, 100, &why), VSOCK_ACCEPT);
	/* len beyond the descriptors */
	assert_int_equal(vsock_check_hdr(&h, CID, 99, &why), VSOCK_REPLY_RST);
	/* len beyond 64 KiB even where the descriptors carry it */
	h.len = VSOCK_MAX_PAYLOAD + 1;
	assert_int_equal(vsock_check_hdr(&h, CID, UINT32_MAX, &why), VSOCK_REPLY_RST);
	h.len = VSOCK_MAX_PAYLOAD;
	assert_int_equal(vsock_check_hdr(&h, CID, UINT32_MAX, &why), VSOCK_ACCEPT);
	/* payload on a control packet */
	h = guest_hdr(VSOCK_OP_CREDIT_UPDATE, 1000, 5000);
	h.len = 1;
	assert_int_equal(vsock_check_hdr(&h, CID, 1, &why), VSOCK_REPLY_RST);
	/* src_cid not the guest's (also one with the upper 32 bits set):
	 * never answered */
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	h.src_cid = CID + 1;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_DROP);
	h.src_cid = (1ull << 32) | CID;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_DROP);
	/* dst_cid not the host: refused */
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	h.dst_cid = 3;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	h.dst_cid = (1ull << 32) | VSOCK_HOST_CID;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	/* §5.10.6.4: an unknown type is answered with RST; SEQPACKET was
	 * not negotiated */
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	h.type = 2;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	h.type = 0xffff;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	/* ops 0 and 8.. are unknown */
	h = guest_hdr(VSOCK_OP_INVALID, 1000, 5000);
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	h.op = 8;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_REPLY_RST);
	for (uint16_t op = 1; op <= 7; op++) {
		h.op = op;
		assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_ACCEPT);
	}
	/* a bad RST is dropped, never answered with another RST */
	h = guest_hdr(VSOCK_OP_RST, 1000, 5000);
	h.type = 9;
	assert_int_equal(vsock_check_hdr(&h, CID, 0, &why), VSOCK_DROP);
}

/* ---- credit ------------------------------------------------------------------ */

static void test_credit_math(void **state)
{
	(void)state;
	/* §5.10.6.3: buf_alloc - (tx_cnt - fwd_cnt) */
	assert_int_equal(vsock_peer_free(1000, 0, 0), 1000);
	assert_int_equal(vsock_peer_free(1000, 600, 100), 500);
	assert_int_equal(vsock_peer_free(1000, 1000, 0), 0);
	/* the counters wrapped: in flight 0x20 */
	assert_int_equal(vsock_peer_free(1000, 0x10, 0xfffffff0u), 1000 - 0x20);
	/* the peer shrank its buffer below what is in flight: 0, not 4 GiB */
	assert_int_equal(vsock_peer_free(100, 600, 100), 0);

	/* fwd_cnt moves forward, at most to what we sent */
	assert_true(vsock_fwd_cnt_valid(100, 100, 600));
	assert_true(vsock_fwd_cnt_valid(100, 600, 600));
	assert_false(vsock_fwd_cnt_valid(100, 601, 600)); /* past what we sent */
	assert_false(vsock_fwd_cnt_valid(100, 99, 600));  /* backwards */
	assert_false(vsock_fwd_cnt_valid(0, 0xffffffffu, 0));
	/* across the wrap */
	assert_true(vsock_fwd_cnt_valid(0xfffffff0u, 0x5, 0x10));
	assert_false(vsock_fwd_cnt_valid(0xfffffff0u, 0x11, 0x10));
	assert_false(vsock_fwd_cnt_valid(0x5, 0xfffffff0u, 0x10));

	/* what the guest may send within our window */
	assert_true(vsock_credit_allows(4096, 0, 0, 4096));
	assert_false(vsock_credit_allows(4096, 0, 0, 4097));
	assert_true(vsock_credit_allows(4096, 5000, 1000, 96));
	assert_false(vsock_credit_allows(4096, 5000, 1000, 97));
	/* wrapped counters */
	assert_true(vsock_credit_allows(4096, 0x100, 0xffffff00u, 4096 - 0x200));
	assert_false(vsock_credit_allows(4096, 0x100, 0xffffff00u, 4096 - 0x1ff));
	/* a len that would overflow 32-bit arithmetic */
	assert_false(vsock_credit_allows(4096, 10, 0, UINT32_MAX - 5));
}

/* ---- CONNECT line ------------------------------------------------------------- */

static void test_connect_line(void **state)
{
	static const char *const bad[] = {
	    "CONNECT\n",
	    "CONNECT \n",
	    "CONNECT -1\n",
	    "CONNECT 1a\n",
	    "CONNECT 4294967296\n",
	    "CONNECT 99999999999\n",
	    "CONNECT 0x10\n",
	    "GET / HTTP/1.1\n",
	    "XCONNECT 1\n",
	    "CONNECTX 1\n",
	    "CONNECT ++1\n",
	    "CONNECT +\n",
	    "\n",
	};
	/* what Firecracker's parser takes (split_whitespace, any case, u32
	 * from_str), and the port it reads */
	static const struct {
		const char *line;
		uint32_t port;
	} good[] = {
	    {"CONNECT 1234\n", 1234},
	    {"connect 1234\n", 1234},
	    {"Connect 7\r\n", 7},
	    {"  CONNECT\t 9  \n", 9},
	    {"CONNECT +5\n", 5},
	    {"CONNECT 00000000001\n", 1},
	    {"CONNECT 4294967295\n", UINT32_MAX},
	    {"CONNECT 0\n", 0},
	    {"CONNECT 12 extra\n", 12},
	};
	uint32_t port = 0;
	size_t len = 0;
	char buf[64];

	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(
		    vsock_parse_connect(good[i].line, strlen(good[i].line), &port, &len), 1);
		assert_int_equal(port, good[i].port);
		assert_int_equal(len, strlen(good[i].line));
	}
	/* data after the line stays for the stream */
	assert_int_equal(vsock_parse_connect("CONNECT 7\nhello", 15, &port, &len), 1);
	assert_int_equal(len, 10);
	/* incomplete: wait for the rest */
	assert_int_equal(vsock_parse_connect("CONN", 4, &port, &len), 0);
	assert_int_equal(vsock_parse_connect("CONNECT 12", 10, &port, &len), 0);
	/* never valid */
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(vsock_parse_connect(bad[i], strlen(bad[i]), &port, &len), -EINVAL);
	/* a line that never ends within the bound */
	memset(buf, '1', sizeof(buf));
	memcpy(buf, "CONNECT ", 8);
	assert_int_equal(vsock_parse_connect(buf, VSOCK_CONNECT_LINE_MAX, &port, &len), -EINVAL);
	assert_int_equal(vsock_parse_connect(buf, VSOCK_CONNECT_LINE_MAX - 1, &port, &len), 0);
}

/* ---- the state machine ------------------------------------------------------------ */

struct fixture {
	char dir[64];
	struct vsock v;
};

static int setup_device(void **state, uint32_t max_connections, uint32_t buf_alloc)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/isola-test-vsock.%d.XXXXXX", getpid());
	assert_non_null(mkdtemp(f->dir));
	vsock_defaults(&f->v);
	f->v.guest_cid = CID;
	f->v.max_connections = max_connections;
	f->v.buf_alloc = buf_alloc;
	snprintf(f->v.uds_path, sizeof(f->v.uds_path), "%s/v.sock", f->dir);
	assert_int_equal(vsock_setup(&f->v, err, sizeof(err)), 0);
	assert_int_equal(vsock_open(&f->v, err, sizeof(err)), 0);
	assert_int_equal(vsock_open_loop(&f->v, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_device(state, 8, 4096);
}

static int setup_small_table(void **state)
{
	return setup_device(state, 2, 4096);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	vsock_destroy(&f->v);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd)) {
		/* best effort */
	}
	free(f);
	return 0;
}

/* A listener at PATH_port. */
static int host_listen(struct fixture *f, uint32_t port)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s/v.sock_%u", f->dir, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int host_connect(struct fixture *f)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->v.uds_path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_pkt(struct fixture *f, struct vsock_hdr h, const void *data)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = h.len};

	assert_int_equal(vsock_guest_packet(&f->v, &h, &iov, data ? 1 : 0), 0);
}

/* The next packet to the guest, after the host side's events; false if
 * none is owed. */
static bool next_pkt(struct fixture *f, struct vsock_hdr *h, void *data, uint32_t room,
		     uint32_t *len)
{
	struct iovec iov = {.iov_base = data, .iov_len = room};
	uint32_t dummy;

	vsock_host_poll(&f->v, vsock_now_ms());
	return vsock_rx_next(&f->v, h, &iov, 1, room, len ? len : &dummy) == 1;
}

static void expect_pkt(struct fixture *f, uint16_t op, uint32_t src_port, uint32_t dst_port,
		       struct vsock_hdr *out)
{
	struct vsock_hdr h;
	char data[8192];
	uint32_t len;

	assert_true(next_pkt(f, &h, data, sizeof(data), &len));
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.src_port, src_port);
	assert_int_equal(h.dst_port, dst_port);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	if (out)
		*out = h;
}

static void expect_nothing(struct fixture *f)
{
	struct vsock_hdr h;
	char data[64];

	assert_false(next_pkt(f, &h, data, sizeof(data), NULL));
}

/* Read exactly n bytes from fd (a test socket) within a second. */
static void read_all(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		assert_int_equal(poll(&p, 1, 1000), 1);
		r = read(fd, (char *)buf + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* The server closed its end: EOF, or ECONNRESET where it closed with our
 * bytes unread (a Unix socket says so). */
static bool at_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t r;
	char c;

	if (poll(&p, 1, 1000) != 1)
		return false;
	r = read(fd, &c, 1);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void test_guest_connect_nobody_listens(void **state)
{
	struct fixture *f = *state;

	/* no listener at PATH_5000: the guest's connect fails at once */
	send_pkt(f, guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	expect_nothing(f);
	assert_int_equal(f->v.nr_conns, 0);
}

/* guest REQUEST -> RESPONSE; the host listener's accepted socket. */
static int guest_connect(struct fixture *f, int listener, uint32_t guest_port, uint32_t port)
{
	int fd;

	send_pkt(f, guest_hdr(VSOCK_OP_REQUEST, guest_port, port), NULL);
	expect_pkt(f, VSOCK_OP_RESPONSE, port, guest_port, NULL);
	fd = accept(listener, NULL, NULL);
	assert_true(fd >= 0);
	return fd;
}

static void test_guest_connect_data_and_close(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000), r;
	char buf[64];
	uint32_t len;

	c = guest_connect(f, l, 1000, 5000);
	/* guest -> host */
	h.len = 5;
	send_pkt(f, h, "hello");
	read_all(c, buf, 5);
	assert_memory_equal(buf, "hello", 5);
	/* host -> guest, within the guest's credit */
	assert_int_equal(write(c, "world!", 6), 6);
	assert_true(next_pkt(f, &r, buf, sizeof(buf), &len));
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(r.len, 6);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(r.buf_alloc, 4096);
	assert_int_equal(r.fwd_cnt, 5); /* what reached the host socket */
	expect_nothing(f);
	/* the guest is done sending: the host reads EOF */
	h = guest_hdr(VSOCK_OP_SHUTDOWN, 1000, 5000);
	h.flags = VSOCK_SHUTDOWN_SEND;
	send_pkt(f, h, NULL);
	assert_true(at_eof(c));
	expect_nothing(f);
	/* the host closes: SHUTDOWN SEND to the guest, then (both done) RST */
	close(c);
	expect_pkt(f, VSOCK_OP_SHUTDOWN, 5000, 1000, &r);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_SEND);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	expect_nothing(f);
	assert_int_equal(f->v.nr_conns, 0);
	close(l);
}

/* A host client that closed while the guest still writes: an EPIPE and
 * an RST, not a SIGPIPE that would end the server (this test too). */
static void test_host_gone_while_guest_writes(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000);

	c = guest_connect(f, l, 1000, 5000);
	close(c);
	h.len = 5;
	send_pkt(f, h, "hello");
	/* the close may be seen first as EOF (SHUTDOWN SEND) */
	{
		struct vsock_hdr r;
		char data[16];
		bool rst = false;

		while (next_pkt(f, &r, data, sizeof(data), NULL))
			rst |= r.op == VSOCK_OP_RST;
		assert_true(rst);
	}
	assert_int_equal(f->v.nr_conns, 0);
	close(l);
}

static void test_guest_close_resets(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h;

	c = guest_connect(f, l, 1000, 5000);
	/* Linux's close(): SHUTDOWN with both flags, waiting for our RST */
	h = guest_hdr(VSOCK_OP_SHUTDOWN, 1000, 5000);
	h.flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
	send_pkt(f, h, NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	assert_true(at_eof(c));
	assert_int_equal(f->v.nr_conns, 0);
	/* an RST from the guest ends a connection without a reply */
	close(c);
	c = guest_connect(f, l, 1001, 5000);
	send_pkt(f, guest_hdr(VSOCK_OP_RST, 1001, 5000), NULL);
	expect_nothing(f);
	assert_true(at_eof(c));
	close(c);
	close(l);
}

/* host CONNECT -> REQUEST -> RESPONSE -> "OK <port>\n"; returns the client
 * and the host port the guest sees. */
static int host_initiated(struct fixture *f, uint32_t guest_port, uint32_t *host_port)
{
	int c = host_connect(f);
	struct vsock_hdr r, h;
	char line[32], want[32];

	assert_int_equal(write(c, "CONNECT 1234\n", 13), 13);
	(void)guest_port;
	assert_true(next_pkt(f, &r, line, sizeof(line), NULL));
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.dst_port, 1234);
	assert_true(r.src_port >= VSOCK_LOCAL_PORT_FIRST);
	h = guest_hdr(VSOCK_OP_RESPONSE, 1234, r.src_port);
	send_pkt(f, h, NULL);
	snprintf(want, sizeof(want), "OK %u\n", r.src_port);
	read_all(c, line, strlen(want));
	assert_memory_equal(line, want, strlen(want));
	*host_port = r.src_port;
	return c;
}

static void test_host_connect(void **state)
{
	struct fixture *f = *state;
	uint32_t port, len;
	struct vsock_hdr r, h;
	char buf[64];
	int c = host_initiated(f, 1234, &port);

	/* both ways */
	assert_int_equal(write(c, "ping", 4), 4);
	assert_true(next_pkt(f, &r, buf, sizeof(buf), &len));
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(len, 4);
	assert_int_equal(r.src_port, port);
	assert_int_equal(r.dst_port, 1234);
	h = guest_hdr(VSOCK_OP_RW, 1234, port);
	h.len = 4;
	send_pkt(f, h, "pong");
	read_all(c, buf, 4);
	assert_memory_equal(buf, "pong", 4);
	/* the host client half-closes: the guest gets SHUTDOWN SEND, and the
	 * guest can still answer */
	shutdown(c, SHUT_WR);
	expect_pkt(f, VSOCK_OP_SHUTDOWN, port, 1234, &r);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_SEND);
	send_pkt(f, h, "last");
	read_all(c, buf, 4);
	assert_memory_equal(buf, "last", 4);
	close(c);
}

/* Host ports stay in [2^30, 2^31), as Firecracker's, and wrap there. */
static void test_host_ports_wrap(void **state)
{
	struct fixture *f = *state;
	uint32_t a, b;
	int c, d;

	f->v.next_local_port = VSOCK_LOCAL_PORT_END - 1;
	c = host_initiated(f, 1234, &a);
	d = host_initiated(f, 1234, &b);
	assert_int_equal(a, VSOCK_LOCAL_PORT_END - 1);
	assert_int_equal(b, VSOCK_LOCAL_PORT_FIRST);
	close(c);
	close(d);
}

static void test_host_connect_refused_by_guest(void **state)
{
	struct fixture *f = *state;
	int c = host_connect(f);
	struct vsock_hdr r;
	char buf[32];

	/* what the client writes after the line waits for the stream */
	assert_int_equal(write(c, "CONNECT 77\nearly", 16), 16);
	assert_true(next_pkt(f, &r, buf, sizeof(buf), NULL));
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	expect_nothing(f); /* no data before the RESPONSE */
	/* nobody listens on 77 in the guest */
	send_pkt(f, guest_hdr(VSOCK_OP_RST, 77, r.src_port), NULL);
	assert_true(at_eof(c));
	assert_int_equal(f->v.nr_conns, 0);
	close(c);
}

/* A guest that answers a REQUEST it has not been given yet (it guessed our
 * local port): the host client is closed, nothing is sent for the dropped
 * connection, and the table and work list stay sound. */
static void test_guest_answers_before_request(void **state)
{
	struct fixture *f = *state;
	int c = host_connect(f), d;
	uint32_t port;

	assert_int_equal(write(c, "CONNECT 1234\n", 13), 13);
	vsock_host_poll(&f->v, vsock_now_ms()); /* the REQUEST is owed, not sent */
	send_pkt(f, guest_hdr(VSOCK_OP_RESPONSE, 1234, VSOCK_LOCAL_PORT_FIRST), NULL);
	assert_true(at_eof(c));
	assert_int_equal(f->v.nr_conns, 0);
	expect_nothing(f);
	close(c);
	/* the slot is reused cleanly */
	d = host_initiated(f, 1234, &port);
	assert_int_equal(f->v.nr_conns, 1);
	expect_nothing(f);
	close(d);
}

/* The listener is edge-triggered: clients left in it -- a round's cap of
 * accepts, or accept4 out of fds -- are taken at the next poll, not at a
 * next connection that may never come. */
static void test_host_accept_leftovers(void **state)
{
	struct fixture *f = *state;
	int c[VSOCK_ACCEPTS_PER_ROUND + 3];
	unsigned n = sizeof(c) / sizeof(c[0]);
	struct rlimit old, low;
	int last;

	/* more clients than a round takes: the poll says come back at once */
	for (unsigned i = 0; i < n; i++)
		c[i] = host_connect(f);
	/* (accepted into the table, or accepted and closed with it full) */
	assert_int_equal(vsock_host_poll(&f->v, vsock_now_ms()), 0);
	assert_int_equal(f->v.nr_conns + f->v.counters.refused_full, VSOCK_ACCEPTS_PER_ROUND);
	vsock_host_poll(&f->v, vsock_now_ms());
	assert_int_equal(f->v.nr_conns + f->v.counters.refused_full, n);
	for (unsigned i = 0; i < n; i++)
		close(c[i]);
	vsock_host_poll(&f->v, vsock_now_ms());
	/* out of fds: the client waits in the backlog, and is accepted once
	 * fds are free again, with no new connection to make an edge */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	last = dup(0);
	assert_true(last >= 0);
	close(last);
	low = old;
	low.rlim_cur = (rlim_t)last; /* the next fd would be over the limit */
	c[0] = host_connect(f);	     /* made before the limit: its fd is below */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(vsock_host_poll(&f->v, vsock_now_ms()), 50);
	assert_true(f->v.accept_starved);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	vsock_host_poll(&f->v, vsock_now_ms());
	assert_false(f->v.accept_again);
	assert_int_equal(write(c[0], "CONNECT 1234\n", 13), 13);
	{
		struct vsock_hdr r;
		char line[32];

		assert_true(next_pkt(f, &r, line, sizeof(line), NULL));
		assert_int_equal(r.op, VSOCK_OP_REQUEST);
		assert_int_equal(r.dst_port, 1234);
	}
	close(c[0]);
}

/* After a restart, until TRANSPORT_RESET is posted: a guest REQUEST is
 * refused and host clients wait, since the reset would drop what they
 * made (silently, on the guest's side). */
static void test_nothing_connects_before_reset(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr r;
	char line[32];

	f->v.reset_pending = true;
	send_pkt(f, guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	c = host_connect(f);
	assert_int_equal(write(c, "CONNECT 1234\n", 13), 13);
	assert_false(next_pkt(f, &r, line, sizeof(line), NULL));
	assert_int_equal(f->v.nr_conns, 0);
	f->v.reset_pending = false; /* posted */
	assert_true(next_pkt(f, &r, line, sizeof(line), NULL));
	assert_int_equal(r.op, VSOCK_OP_REQUEST);
	assert_int_equal(r.dst_port, 1234);
	close(c);
	close(l);
}

static void test_host_bad_lines(void **state)
{
	struct fixture *f = *state;
	int c = host_connect(f), d = host_connect(f);

	assert_int_equal(write(c, "CONNECT x\n", 10), 10);
	assert_int_equal(write(d, "CONNECT 1", 9), 9); /* never finished */
	expect_nothing(f);
	assert_true(at_eof(c));
	assert_int_equal(f->v.nr_conns, 1);
	/* the deadline closes the silent one */
	vsock_host_poll(&f->v, vsock_now_ms() + VSOCK_CONNECT_TIMEOUT_MS + 1);
	assert_true(at_eof(d));
	assert_int_equal(f->v.nr_conns, 0);
	close(c);
	close(d);
}

static void test_credit_stops_host_reader(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), r;
	char big[4096], buf[8192];
	uint32_t len, total = 0;

	h.buf_alloc = 100; /* the guest takes 100 bytes */
	send_pkt(f, h, NULL);
	expect_pkt(f, VSOCK_OP_RESPONSE, 5000, 1000, NULL);
	c = accept(l, NULL, NULL);
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(c, big, sizeof(big)), (ssize_t)sizeof(big));
	while (next_pkt(f, &r, buf, sizeof(buf), &len)) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		total += len;
	}
	assert_int_equal(total, 100); /* and the rest stays in the host socket */
	/* the guest read 60: 60 more */
	h = guest_hdr(VSOCK_OP_CREDIT_UPDATE, 1000, 5000);
	h.buf_alloc = 100;
	h.fwd_cnt = 60;
	send_pkt(f, h, NULL);
	total = 0;
	while (next_pkt(f, &r, buf, sizeof(buf), &len))
		total += len;
	assert_int_equal(total, 60);
	/* fwd_cnt going backwards is a lie: RST, the host sees EOF */
	h.fwd_cnt = 59;
	send_pkt(f, h, NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	assert_true(at_eof(c));
	close(c);
	/* so is a fwd_cnt past what we sent */
	c = guest_connect(f, l, 1001, 5000);
	h = guest_hdr(VSOCK_OP_CREDIT_UPDATE, 1001, 5000);
	h.fwd_cnt = 1;
	send_pkt(f, h, NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1001, NULL);
	assert_int_equal(f->v.counters.credit_lies, 2);
	close(c);
	close(l);
}

/* A host socket that never reads: we forward until it is full, then hold
 * at most buf_alloc (4096 here) and give no more credit; RW beyond the
 * credit we gave resets the connection. */
static void test_host_not_reading_is_bounded(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000), r;
	static char chunk[4096];
	uint32_t sent = 0, told = 0;
	int sndbuf = 4096;

	c = guest_connect(f, l, 1000, 5000);
	/* the accepted socket's peer is the server's; shrink what the kernel
	 * holds by shrinking our receive side */
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
	h.len = sizeof(chunk);
	/* send whole windows while credit comes back */
	for (int round = 0; round < 10000; round++) {
		char data[64];
		uint32_t len;
		bool credit = false;

		assert_true(vsock_credit_allows(4096, sent, told, h.len));
		send_pkt(f, h, chunk);
		sent += h.len;
		while (next_pkt(f, &r, data, sizeof(data), &len)) {
			assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
			told = r.fwd_cnt;
			credit = true;
		}
		if (!credit && sent - told == 4096)
			break; /* no window left: the host socket is full */
	}
	assert_int_equal(sent - told, 4096);
	{
		struct vsock_conn *conn = vsock_conn_find(&f->v, 1000, 5000);

		assert_non_null(conn);
		assert_true(conn->buf_len <= 4096);
		assert_true(conn->buf_len > 0);
	}
	/* one byte more than the window: RST */
	h.len = 1;
	send_pkt(f, h, chunk);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	assert_int_equal(f->v.nr_conns, 0);
	close(c);
	close(l);
}

/* Reading drains the buffer and gives credit back. */
static void test_host_drain_gives_credit(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000), r;
	static char chunk[4096], sink[1 << 20];
	uint32_t sent = 0, told = 0, len;
	char data[64];

	c = guest_connect(f, l, 1000, 5000);
	h.len = sizeof(chunk);
	for (int round = 0; round < 10000 && sent - told < 4096; round++) {
		send_pkt(f, h, chunk);
		sent += h.len;
		while (next_pkt(f, &r, data, sizeof(data), &len))
			told = r.fwd_cnt;
	}
	assert_int_equal(sent - told, 4096);
	/* the host reads everything: EPOLLOUT flushes, credit goes out */
	fcntl(c, F_SETFL, O_NONBLOCK);
	while (read(c, sink, sizeof(sink)) > 0)
		;
	assert_true(next_pkt(f, &r, data, sizeof(data), &len));
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, sent);
	close(c);
	close(l);
}

static void test_bad_headers_answered(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);

	/* a packet for no connection: RST */
	h.op = VSOCK_OP_RW;
	send_pkt(f, h, NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
	/* ... but not for an RST */
	send_pkt(f, guest_hdr(VSOCK_OP_RST, 1000, 5000), NULL);
	expect_nothing(f);
	/* a spoofed source: nothing */
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	h.src_cid = 7;
	send_pkt(f, h, NULL);
	expect_nothing(f);
	/* another guest's CID: RST from that CID */
	h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	h.dst_cid = 99;
	send_pkt(f, h, NULL);
	{
		struct vsock_hdr r;
		char data[8];

		assert_true(next_pkt(f, &r, data, sizeof(data), NULL));
		assert_int_equal(r.op, VSOCK_OP_RST);
		assert_int_equal(r.src_cid, 99);
		assert_int_equal(r.dst_cid, CID);
	}
	/* a RESPONSE out of the blue on a live connection resets it */
	{
		int l = host_listen(f, 5000), c = guest_connect(f, l, 1000, 5000);

		send_pkt(f, guest_hdr(VSOCK_OP_RESPONSE, 1000, 5000), NULL);
		expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
		assert_true(at_eof(c));
		close(c);
		/* a second REQUEST on a live tuple ends it */
		c = guest_connect(f, l, 1000, 5000);
		send_pkt(f, guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), NULL);
		expect_pkt(f, VSOCK_OP_RST, 5000, 1000, NULL);
		assert_true(at_eof(c));
		close(c);
		close(l);
	}
	assert_int_equal(f->v.nr_conns, 0);
}

static void test_rst_queue_full_holds_tx(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000);
	unsigned n = 0;

	for (unsigned i = 0; i < VSOCK_RST_QUEUE; i++) {
		h.src_port = 2000 + i;
		send_pkt(f, h, NULL);
	}
	/* one more must wait until the guest takes replies (§5.10.6.1) */
	assert_int_equal(vsock_guest_packet(&f->v, &h, NULL, 0), -EAGAIN);
	{
		struct vsock_hdr r;
		char data[8];

		while (next_pkt(f, &r, data, sizeof(data), NULL))
			n++;
	}
	assert_int_equal(n, VSOCK_RST_QUEUE);
	send_pkt(f, h, NULL);
}

static void test_table_full(void **state)
{
	struct fixture *f = *state;
	int l = host_listen(f, 5000), c1, c2, c3;

	c1 = guest_connect(f, l, 1000, 5000);
	c2 = guest_connect(f, l, 1001, 5000);
	/* the third is refused, and the host side never sees it */
	send_pkt(f, guest_hdr(VSOCK_OP_REQUEST, 1002, 5000), NULL);
	expect_pkt(f, VSOCK_OP_RST, 5000, 1002, NULL);
	assert_int_equal(f->v.counters.refused_full, 1);
	/* a host client is closed at once */
	c3 = host_connect(f);
	expect_nothing(f);
	assert_true(at_eof(c3));
	assert_int_equal(f->v.counters.refused_full, 2);
	close(c3);
	/* one closes: room again */
	send_pkt(f, guest_hdr(VSOCK_OP_RST, 1000, 5000), NULL);
	close(c1);
	c1 = guest_connect(f, l, 1003, 5000);
	close(c1);
	close(c2);
	close(l);
}

/* ---- restart detection ---------------------------------------------------------------- */

/* The front-end starts ring i at base (SET_VRING_BASE, then the ring's
 * thread calls queue_start). */
static void start_ring(struct fixture *f, unsigned i, uint16_t base)
{
	static struct vhost_user_backend be;

	be.queues[i].base = base;
	be.queues[i].backend = &be;
	be.queues[i].index = i;
	assert_int_equal(f->v.ops.queue_start(&f->v, &be.queues[i]), 0);
}

static void start_rings(struct fixture *f, uint16_t rx, uint16_t tx, uint16_t ev)
{
	start_ring(f, VSOCK_QUEUE_RX, rx);
	start_ring(f, VSOCK_QUEUE_TX, tx);
	start_ring(f, VSOCK_QUEUE_EVENT, ev);
}

/* The rings start in threads of their own: a connection the new driver
 * makes through a ring that started first survives the other ring's
 * start at 0 (on a fresh start and after a driver reset alike). */
static void test_rings_start_in_any_order(void **state)
{
	struct fixture *f = *state;
	int l, old, c;

	l = host_listen(f, 5000);
	start_ring(f, VSOCK_QUEUE_TX, 0);
	c = guest_connect(f, l, 1000, 5000);
	start_ring(f, VSOCK_QUEUE_EVENT, 0);
	start_ring(f, VSOCK_QUEUE_RX, 0);
	assert_int_equal(f->v.nr_conns, 1);
	assert_false(at_eof(c));
	/* a driver reset, tx first again: the old connection goes, the
	 * one made after tx started stays when rx starts */
	old = c;
	start_ring(f, VSOCK_QUEUE_TX, 0);
	assert_int_equal(f->v.nr_conns, 0);
	assert_true(at_eof(old));
	c = guest_connect(f, l, 1001, 5000);
	start_ring(f, VSOCK_QUEUE_RX, 0);
	start_ring(f, VSOCK_QUEUE_EVENT, 0);
	assert_int_equal(f->v.nr_conns, 1);
	assert_false(at_eof(c));
	assert_false(f->v.reset_pending);
	close(old);
	close(c);
	close(l);
}

static void test_restart_detection(void **state)
{
	struct fixture *f = *state;
	uint64_t wakes = 0;
	int l, c;

	/* a fresh driver: nothing to reset */
	start_rings(f, 0, 0, 0);
	assert_false(f->v.reset_pending);
	/* the same process, rings stopped and started again (a pause): the
	 * connections stay, no reset */
	l = host_listen(f, 5000);
	c = guest_connect(f, l, 1000, 5000);
	start_rings(f, 5, 3, 0);
	assert_false(f->v.reset_pending);
	assert_int_equal(f->v.nr_conns, 1);
	/* the driver was reset: it starts at 0, the old connections go */
	start_rings(f, 0, 0, 0);
	assert_int_equal(f->v.nr_conns, 0);
	assert_true(at_eof(c));
	close(c);
	/* the front-end went away; a new one (the core, after a restart)
	 * brings a driver that already ran: TRANSPORT_RESET, whichever ring
	 * shows it */
	f->v.ops.reset(&f->v);
	start_rings(f, 7, 0, 0);
	assert_true(f->v.reset_pending);
	/* tx starts first and the reset is posted; the guest reconnects
	 * through this server; rx starting later with its old base must not
	 * reset the new connection (one reset per front-end) */
	f->v.ops.reset(&f->v);
	start_ring(f, VSOCK_QUEUE_TX, 17);
	start_ring(f, VSOCK_QUEUE_EVENT, 0);
	assert_true(f->v.reset_pending);
	f->v.reset_pending = false; /* posted */
	c = guest_connect(f, l, 1001, 5000);
	start_ring(f, VSOCK_QUEUE_RX, 18);
	assert_false(f->v.reset_pending);
	assert_int_equal(f->v.nr_conns, 1);
	close(c);
	f->v.ops.reset(&f->v);
	start_rings(f, 0, 9, 0);
	assert_true(f->v.reset_pending);
	/* the event ring first (0), then rx: the event ring's thread is woken */
	f->v.ops.reset(&f->v);
	assert_int_equal(read(f->v.event_wake_fd, &wakes, sizeof(wakes)), sizeof(wakes));
	start_ring(f, VSOCK_QUEUE_EVENT, 0);
	assert_false(f->v.reset_pending);
	start_ring(f, VSOCK_QUEUE_RX, 2);
	assert_true(f->v.reset_pending);
	assert_int_equal(read(f->v.event_wake_fd, &wakes, sizeof(wakes)), sizeof(wakes));
	close(l);
}

/* ---- the rings, over a small fake guest memory ---------------------------------------- */

#define RAM_SIZE (1u << 20)
#define QSIZE 16
#define RING_GPA(i) (0x1000u * 4 * (i)) /* desc, avail, used of ring i */
#define BUF_GPA 0x40000u

struct rings {
	uint8_t *ram;
	struct gmem mem;
	struct vhost_user_backend be;
	uint16_t avail_idx[VSOCK_NUM_QUEUES], next_desc[VSOCK_NUM_QUEUES];
	uint64_t next_buf;
};

static struct rings *rings_new(void)
{
	struct rings *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(r->ram);
	memset(r->ram, 0, RAM_SIZE);
	gmem_init_empty(&r->mem);
	assert_int_equal(gmem_add_region(&r->mem, 0, RAM_SIZE, r->ram), 0);
	r->next_buf = BUF_GPA;
	for (unsigned i = 0; i < VSOCK_NUM_QUEUES; i++) {
		struct vhost_user_backend_queue *q = &r->be.queues[i];

		q->backend = &r->be;
		q->index = i;
		q->call_fd = q->err_fd = q->kick_fd = q->stop_fd = -1;
		pthread_mutex_init(&q->lock, NULL);
		assert_int_equal(virtq_init(&q->vq, &r->mem, QSIZE, RING_GPA(i),
					    RING_GPA(i) + 0x1000, RING_GPA(i) + 0x2000,
					    1ull << VIRTIO_F_VERSION_1),
				 0);
	}
	return r;
}

/* As the lib's ring threads do before their rings go away: queue_stop
 * (the rx ring's tells the tx thread to fill it no more). */
static void rings_free(struct fixture *f, struct rings *r)
{
	for (unsigned i = 0; i < VSOCK_NUM_QUEUES; i++)
		f->v.ops.queue_stop(&f->v, &r->be.queues[i]);
	gmem_destroy(&r->mem);
	free(r->ram);
	free(r);
}

/* One chain of a readable part (data, rlen bytes) then a writable part
 * (wlen bytes) on ring i; returns the gpa of the writable buffer. */
static uint64_t publish(struct rings *r, unsigned i, const void *data, uint32_t rlen, uint32_t wlen)
{
	struct virtq_desc *table = gmem_ptr(&r->mem, RING_GPA(i), virtq_desc_bytes(QSIZE));
	struct virtq_avail *avail =
	    gmem_ptr(&r->mem, RING_GPA(i) + 0x1000, virtq_avail_bytes(QSIZE));
	uint16_t head = r->next_desc[i] % QSIZE, d = head;
	uint64_t wgpa = 0;

	if (rlen) {
		memcpy(r->ram + r->next_buf, data, rlen);
		table[d] = (struct virtq_desc){.addr = r->next_buf, .len = rlen};
		r->next_buf += 0x10000;
		r->next_desc[i]++;
	}
	if (wlen) {
		if (rlen) {
			table[d].flags |= VIRTQ_DESC_F_NEXT;
			table[d].next = (uint16_t)(r->next_desc[i] % QSIZE);
			d = (uint16_t)(r->next_desc[i] % QSIZE);
		}
		wgpa = r->next_buf;
		table[d] =
		    (struct virtq_desc){.addr = wgpa, .len = wlen, .flags = VIRTQ_DESC_F_WRITE};
		r->next_buf += 0x10000;
		r->next_desc[i]++;
	}
	assert_true(r->next_buf < RAM_SIZE);
	avail->ring[r->avail_idx[i] % QSIZE] = head;
	r->avail_idx[i]++;
	__atomic_store_n(&avail->idx, r->avail_idx[i], __ATOMIC_RELEASE);
	return wgpa;
}

static struct virtq_used *used_ring(struct rings *r, unsigned i)
{
	return gmem_ptr(&r->mem, RING_GPA(i) + 0x2000, virtq_used_bytes(QSIZE));
}

static void run_ring(struct fixture *f, struct rings *r, unsigned i)
{
	f->v.ops.handle_queue(&f->v, &r->be.queues[i]);
}

static void test_rings_connect_and_reset_event(void **state)
{
	struct fixture *f = *state;
	struct rings *r = rings_new();
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), got;
	int l = host_listen(f, 5000);
	uint64_t rx_buf;
	uint32_t id = 0xffffffffu;

	/* the guest connects: REQUEST on tx, RESPONSE in its rx buffer */
	rx_buf = publish(r, VSOCK_QUEUE_RX, NULL, 0, VSOCK_HDR_SIZE + 4096);
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_TX)->idx, 1);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_TX)->ring[0].len, 0);
	run_ring(f, r, VSOCK_QUEUE_RX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->idx, 1);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->ring[0].len, VSOCK_HDR_SIZE);
	memcpy(&got, r->ram + rx_buf, sizeof(got));
	assert_int_equal(got.op, VSOCK_OP_RESPONSE);
	assert_int_equal(got.dst_port, 1000);
	/* host data lands in the next rx buffer, header then payload */
	{
		int c = accept(l, NULL, NULL);

		assert_int_equal(write(c, "data", 4), 4);
		rx_buf = publish(r, VSOCK_QUEUE_RX, NULL, 0, VSOCK_HDR_SIZE + 4096);
		run_ring(f, r, VSOCK_QUEUE_RX);
		assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->ring[1].len, VSOCK_HDR_SIZE + 4);
		memcpy(&got, r->ram + rx_buf, sizeof(got));
		assert_int_equal(got.op, VSOCK_OP_RW);
		assert_int_equal(got.len, 4);
		assert_memory_equal(r->ram + rx_buf + VSOCK_HDR_SIZE, "data", 4);
		close(c);
	}
	/* a restart was detected: the event ring posts TRANSPORT_RESET once */
	f->v.reset_pending = true;
	run_ring(f, r, VSOCK_QUEUE_EVENT); /* no buffer yet: it waits */
	assert_true(f->v.reset_pending);
	rx_buf = publish(r, VSOCK_QUEUE_EVENT, NULL, 0, 4);
	memcpy(r->ram + rx_buf, &id, 4);
	run_ring(f, r, VSOCK_QUEUE_EVENT);
	assert_false(f->v.reset_pending);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_EVENT)->idx, 1);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_EVENT)->ring[0].len, 4);
	memcpy(&id, r->ram + rx_buf, 4);
	assert_int_equal(id, VSOCK_EVENT_TRANSPORT_RESET);
	publish(r, VSOCK_QUEUE_EVENT, NULL, 0, 4);
	run_ring(f, r, VSOCK_QUEUE_EVENT);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_EVENT)->idx, 1); /* once */
	assert_false(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_RX].vq));
	assert_false(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_TX].vq));
	close(l);
	rings_free(f, r);
}

/* Chains that break the ring rules: the ring is broken (the lib stops it
 * and signals NEEDS_RESET), nothing is read or written. */
static void test_rings_malformed_chains(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000);
	struct rings *r;

	/* a tx chain with a device-writable descriptor */
	r = rings_new();
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 16);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_true(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_TX].vq));
	rings_free(f, r);
	/* a tx chain shorter than a header */
	r = rings_new();
	publish(r, VSOCK_QUEUE_TX, &h, VSOCK_HDR_SIZE - 1, 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_true(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_TX].vq));
	rings_free(f, r);
	/* an rx chain that cannot hold a header, when a reply is owed */
	r = rings_new();
	h.dst_cid = 77; /* refused: an RST is owed */
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	publish(r, VSOCK_QUEUE_RX, NULL, 0, VSOCK_HDR_SIZE - 1);
	run_ring(f, r, VSOCK_QUEUE_RX);
	assert_true(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_RX].vq));
	rings_free(f, r);
	/* an rx chain with a device-readable descriptor */
	r = rings_new();
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	publish(r, VSOCK_QUEUE_RX, &h, 8, 4096);
	run_ring(f, r, VSOCK_QUEUE_RX);
	assert_true(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_RX].vq));
	rings_free(f, r);
	/* an event buffer of 2 bytes */
	r = rings_new();
	f->v.reset_pending = true;
	publish(r, VSOCK_QUEUE_EVENT, NULL, 0, 2);
	run_ring(f, r, VSOCK_QUEUE_EVENT);
	assert_true(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_EVENT].vq));
	rings_free(f, r);
}

/* The RST queue full: tx waits (its chain stays in the ring) until rx
 * takes a reply and wakes it; the wake is consumed (the tx thread would
 * otherwise spin on a readable eventfd). */
static void test_rings_tx_waits_for_rx(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000);
	struct rings *r = rings_new();
	uint64_t value;

	for (unsigned i = 0; i < VSOCK_RST_QUEUE; i++) {
		h.src_port = 2000 + i;
		send_pkt(f, h, NULL);
	}
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_TX)->idx, 0);
	assert_true(f->v.tx_waiting);
	publish(r, VSOCK_QUEUE_RX, NULL, 0, 4096);
	run_ring(f, r, VSOCK_QUEUE_RX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->idx, 1);
	assert_false(f->v.tx_waiting);
	run_ring(f, r, VSOCK_QUEUE_TX); /* woken by tx_wake_fd */
	assert_int_equal(used_ring(r, VSOCK_QUEUE_TX)->idx, 1);
	assert_true(read(f->v.tx_wake_fd, &value, sizeof(value)) < 0 && errno == EAGAIN);
	rings_free(f, r);
}

/* Once the rx ring runs, what a guest packet owes the guest goes out from
 * the tx ring's thread (no wake-up of the rx thread); once the rx ring
 * stopped, the tx thread leaves it alone and only wakes rx. */
static void test_rings_tx_fills_rx(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1000, 5000), got;
	struct rings *r = rings_new();
	int l = host_listen(f, 5000);
	uint64_t rx_buf, value;

	rx_buf = publish(r, VSOCK_QUEUE_RX, NULL, 0, VSOCK_HDR_SIZE + 4096);
	run_ring(f, r, VSOCK_QUEUE_RX); /* running, nothing owed */
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->idx, 0);
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->idx, 1);
	memcpy(&got, r->ram + rx_buf, sizeof(got));
	assert_int_equal(got.op, VSOCK_OP_RESPONSE);
	assert_true(read(f->v.rx_wake_fd, &value, sizeof(value)) < 0 && errno == EAGAIN);
	/* the rx ring stops: a credit request's answer waits for it */
	f->v.ops.queue_stop(&f->v, &r->be.queues[VSOCK_QUEUE_RX]);
	publish(r, VSOCK_QUEUE_RX, NULL, 0, VSOCK_HDR_SIZE + 4096);
	h.op = VSOCK_OP_CREDIT_REQUEST;
	publish(r, VSOCK_QUEUE_TX, &h, sizeof(h), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_TX)->idx, 2);
	assert_int_equal(used_ring(r, VSOCK_QUEUE_RX)->idx, 1);
	assert_int_equal(read(f->v.rx_wake_fd, &value, sizeof(value)), sizeof(value));
	close(l);
	rings_free(f, r);
}

/* A header whose len is more than its chain carries: RST, the ring goes on. */
static void test_rings_len_beyond_chain(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1000, 5000), got;
	struct rings *r = rings_new();
	uint8_t pkt[VSOCK_HDR_SIZE + 8];
	uint64_t rx_buf;

	h.len = 9;
	memcpy(pkt, &h, sizeof(h));
	publish(r, VSOCK_QUEUE_TX, pkt, sizeof(pkt), 0);
	run_ring(f, r, VSOCK_QUEUE_TX);
	rx_buf = publish(r, VSOCK_QUEUE_RX, NULL, 0, 4096);
	run_ring(f, r, VSOCK_QUEUE_RX);
	assert_false(virtq_is_broken(&r->be.queues[VSOCK_QUEUE_TX].vq));
	memcpy(&got, r->ram + rx_buf, sizeof(got));
	assert_int_equal(got.op, VSOCK_OP_RST);
	assert_int_equal(f->v.counters.bad_headers, 1);
	rings_free(f, r);
}

/* ---- the sandbox: the --uds directory in the empty root ---------------------------------- */

/* In the sandboxed server (pid 1 of its namespace): 0 if PATH_5000 is
 * reachable and nothing else of the host is. */
static int sandboxed_checks(const char *dir)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s/v.sock_5000", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 11; /* the guest's connection to the host listener */
	close(fd);
	if (stat("/etc/passwd", &st) == 0 || stat("/usr", &st) == 0)
		return 12; /* the host's file system */
	if (mkdir("/new", 0700) == 0 || errno != EROFS)
		return 13; /* the root is read-only */
	if (stat("/", &st) < 0 || (st.st_mode & 07777) != 0511)
		return 14; /* walkable by --user, not listable */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/new", dir);
	if (mkdir(a.sun_path, 0700) == 0 || errno != EROFS)
		return 15; /* the bound directory is read-only */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/run/api.sock", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return 16; /* a socket in a subdirectory (a VMM's API socket) */
	close(fd);
	return 0;
}

static void test_sandbox_binds_uds_dir(void **state)
{
	struct fixture *f = *state;
	int l, status;
	pid_t pid;

	if (geteuid() != 0) {
		printf("SKIP: namespaces need root\n");
		skip();
	}
	l = host_listen(f, 5000); /* under /tmp, where the empty tmpfs goes */
	/* a socket below the directory, as Kata's jailer root has its
	 * run/firecracker.socket beside kata.hvsock */
	char sub[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un api = {.sun_family = AF_UNIX};
	int api_fd;

	snprintf(sub, sizeof(sub), "%s/run", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(api.sun_path, sizeof(api.sun_path), "%s/run/api.sock", f->dir);
	api_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(api_fd >= 0);
	assert_int_equal(bind(api_fd, (struct sockaddr *)&api, sizeof(api)), 0);
	assert_int_equal(listen(api_fd, 1), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		sandbox_bind_dir(f->dir);
		if (sandbox_isolate("test-vsock", err, sizeof(err)) < 0) {
			fprintf(stderr, "sandbox_isolate: %s\n", err);
			_exit(10);
		}
		_exit(sandboxed_checks(f->dir));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(api_fd);
	unlink(api.sun_path);
	rmdir(sub);
	close(l);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_fields),
	    cmocka_unit_test(test_credit_math),
	    cmocka_unit_test(test_connect_line),
	    T(test_guest_connect_nobody_listens),
	    T(test_guest_connect_data_and_close),
	    T(test_host_gone_while_guest_writes),
	    T(test_guest_close_resets),
	    T(test_host_connect),
	    T(test_host_ports_wrap),
	    T(test_host_connect_refused_by_guest),
	    T(test_guest_answers_before_request),
	    T(test_host_accept_leftovers),
	    T(test_nothing_connects_before_reset),
	    T(test_host_bad_lines),
	    T(test_credit_stops_host_reader),
	    T(test_host_not_reading_is_bounded),
	    T(test_host_drain_gives_credit),
	    T(test_bad_headers_answered),
	    T(test_rst_queue_full_holds_tx),
	    cmocka_unit_test_setup_teardown(test_table_full, setup_small_table, teardown),
	    T(test_rings_start_in_any_order),
	    T(test_restart_detection),
	    T(test_rings_connect_and_reset_event),
	    T(test_rings_malformed_chains),
	    T(test_rings_len_beyond_chain),
	    T(test_rings_tx_waits_for_rx),
	    T(test_rings_tx_fills_rx),
	    T(test_sandbox_binds_uds_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
