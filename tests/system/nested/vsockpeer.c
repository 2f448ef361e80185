/* SPDX-License-Identifier: MIT */
/*
 * vsockpeer: the traffic of the vsock checks (issue 14) between a Linux
 * guest's AF_VSOCK sockets and the host side of isola-vsock, which follows
 * Firecracker's hybrid convention (docs/vsock.md): a host process connects to
 * the Unix socket PATH, writes "CONNECT <port>\n", reads "OK <hostport>\n",
 * and the stream is joined to the guest's listener on <port>; a guest
 * connecting to CID 2 port P reaches a host listener on the Unix socket
 * PATH_P.  Static, no dependencies: it runs in L2's busybox initramfs (the
 * guest end), in L1's (the host end, nested) and on the host (QEMU TCG).
 *
 * ADDR is one of
 *   vsock:PORT          listen on AF_VSOCK PORT, any CID (serve)
 *   vsock:CID:PORT      connect to AF_VSOCK CID:PORT
 *   unix:PATH           listen on, or connect to, the Unix socket PATH
 *   hybrid:PATH:PORT    connect to PATH and ask for guest port PORT
 *
 *   vsockpeer [-p PREFIX] serve ADDR
 *       serve streams on ADDR in one poll loop (many connections at once)
 *       until a quit request; a connection whose hello asks for it is
 *       accepted and then never read again (the backpressure check).  Ends
 *       with "serve done: N connections, K failed, M held unread".
 *   vsockpeer [-p PREFIX] stream ADDR UP_MIB DOWN_MIB [CONNS]
 *       opens CONNS connections (default 1) first, all of them held open at
 *       once, then each moves UP_MIB to the server and DOWN_MIB back at the
 *       same time; each stream is checksummed by both ends and the totals
 *       compared both ways.  Prints connections/s and MiB/s.
 *   vsockpeer [-p PREFIX] noread ADDR LIMIT_MIB HOLD_S [PID]
 *       one connection the server never reads: writes up to LIMIT_MIB until
 *       nothing more goes for 3 s ("blocked after N bytes"), then holds it
 *       HOLD_S seconds; with PID, that process's VmRSS before, when blocked
 *       and after the hold.  Status 0 only if the writer blocked.
 *   vsockpeer [-p PREFIX] quit ADDR
 *   vsockpeer [-p PREFIX] cid        this machine's local CID (/dev/vsock)
 *
 * Output lines start with PREFIX (default "vsockpeer: "); status 0 only if
 * every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define MAGIC 0x56534f434b31ULL /* "VSOCK1" */
#define F_QUIT 1u
#define F_NOREAD 2u
#define STALL_MS 60000 /* no progress for this long: fail */
#define NOREAD_STALL_MS 3000
#define CHUNK (64 * 1024)
#define MAX_CONNS 1024

static const char *prefix = "vsockpeer: ";

#include "tests/system/nested/stream.h"

struct hello {
	uint64_t magic, flags, up, down, seed;
};

/* the server's last words: what it sent and what it received */
struct trailer {
	uint64_t sent_sum, recv_sum, recv_len;
};

/* one end of one connection, full duplex on a non-blocking socket */
struct conn {
	int fd;
	unsigned id;
	bool noread; /* the server's end of a connection it never reads */
	struct hello hello;
	size_t hello_got; /* server: the hello is read first */
	uint64_t seed;
	uint64_t send_total, sent;     /* stream bytes */
	uint64_t recv_total, received; /* stream bytes */
	struct sum send_sum, recv_sum;
	size_t buf_off, buf_len;
	/* what follows the stream: our trailer out, the peer's in */
	uint8_t tail_out[sizeof(struct trailer)], tail_in[sizeof(struct trailer)];
	size_t tail_out_len, tail_out_done, tail_in_len, tail_in_got;
	bool tail_out_ready;
	uint8_t buf[CHUNK]; /* last: conn_init clears what comes before */
};

static void conn_init(struct conn *c, int fd, uint64_t seed, uint64_t send_total,
		      uint64_t recv_total, size_t tail_in_len)
{
	memset(c, 0, offsetof(struct conn, buf));
	c->fd = fd;
	c->seed = seed;
	c->send_total = send_total;
	c->recv_total = recv_total;
	c->tail_in_len = tail_in_len;
	sum_init(&c->send_sum);
	sum_init(&c->recv_sum);
}

static bool conn_done(const struct conn *c)
{
	return c->sent == c->send_total && c->received == c->recv_total &&
	       c->tail_in_got == c->tail_in_len && c->tail_out_ready &&
	       c->tail_out_done == c->tail_out_len;
}

static bool conn_wants_out(const struct conn *c)
{
	return c->sent < c->send_total || (c->tail_out_ready && c->tail_out_done < c->tail_out_len);
}

/* send what can be sent now; 0, or -errno */
static int conn_send(struct conn *c)
{
	while (c->sent < c->send_total) {
		if (c->buf_off == c->buf_len) {
			uint64_t left = c->send_total - c->sent;
			size_t n = left < CHUNK ? (size_t)left : CHUNK;
			stream_fill(c->buf, (n + 7) & ~(size_t)7, c->seed, c->sent / 8);
			sum_add(&c->send_sum, c->buf, n);
			c->buf_off = 0;
			c->buf_len = n;
		}
		ssize_t r = send(c->fd, c->buf + c->buf_off, c->buf_len - c->buf_off, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->buf_off += r;
		c->sent += r;
	}
	while (c->tail_out_ready && c->tail_out_done < c->tail_out_len) {
		ssize_t r = send(c->fd, c->tail_out + c->tail_out_done,
				 c->tail_out_len - c->tail_out_done, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->tail_out_done += r;
	}
	return 0;
}

/* receive what has come; 0, or -errno (-EPIPE: the peer closed early) */
static int conn_recv(struct conn *c)
{
	uint8_t in[CHUNK];

	for (;;) {
		size_t want = 0;
		if (c->received < c->recv_total) {
			uint64_t left = c->recv_total - c->received;
			want = left < sizeof(in) ? (size_t)left : sizeof(in);
		} else if (c->tail_in_got < c->tail_in_len) {
			want = c->tail_in_len - c->tail_in_got;
		} else {
			return 0;
		}
		ssize_t r = recv(c->fd, in, want, 0);
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (r == 0)
			return -EPIPE;
		if (c->received < c->recv_total) {
			sum_add(&c->recv_sum, in, r);
			c->received += r;
		} else {
			memcpy(c->tail_in + c->tail_in_got, in, r);
			c->tail_in_got += r;
		}
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* ---- addresses ---- */

enum kind { A_VSOCK, A_UNIX, A_HYBRID };

struct addr {
	enum kind kind;
	unsigned cid, port; /* vsock: cid VMADDR_CID_ANY to listen; hybrid: port */
	struct sockaddr_un un;
};

static int parse_unix(const char *path, size_t len, struct addr *a)
{
	if (len == 0 || len >= sizeof(a->un.sun_path))
		return -ENAMETOOLONG;
	a->un.sun_family = AF_UNIX;
	memcpy(a->un.sun_path, path, len);
	a->un.sun_path[len] = 0;
	return 0;
}

static int parse_addr(const char *s, struct addr *a)
{
	char *end;

	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "vsock:", 6)) {
		a->kind = A_VSOCK;
		unsigned long x = strtoul(s + 6, &end, 0);
		if (*end == ':') {
			a->cid = (unsigned)x;
			x = strtoul(end + 1, &end, 0);
		} else {
			a->cid = VMADDR_CID_ANY;
		}
		a->port = (unsigned)x;
		return *end ? -EINVAL : 0;
	}
	if (!strncmp(s, "unix:", 5)) {
		a->kind = A_UNIX;
		return parse_unix(s + 5, strlen(s + 5), a);
	}
	if (!strncmp(s, "hybrid:", 7)) {
		const char *colon = strrchr(s + 7, ':');
		a->kind = A_HYBRID;
		if (!colon)
			return -EINVAL;
		a->port = (unsigned)strtoul(colon + 1, &end, 0);
		if (*end || colon == s + 7)
			return -EINVAL;
		return parse_unix(s + 7, (size_t)(colon - (s + 7)), a);
	}
	return -EINVAL;
}

static int listen_on(const struct addr *a)
{
	int fd;

	if (a->kind == A_VSOCK) {
		struct sockaddr_vm vm = {
		    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = a->port};
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&vm, sizeof(vm)))
			goto fail;
	} else if (a->kind == A_UNIX) {
		unlink(a->un.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (const struct sockaddr *)&a->un, sizeof(a->un)))
			goto fail;
	} else {
		errno = EINVAL;
		return -1;
	}
	if (listen(fd, 128) == 0)
		return fd;
fail:
	say("listen: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * The hybrid handshake (Firecracker's vsock design doc, "host-initiated
 * connections"): "CONNECT <port>\n" out, "OK <hostport>\n" back, then the
 * stream.  The reply is read a byte at a time, so that nothing of the
 * stream is taken with it.  0, or -errno (-ECONNREFUSED: anything but OK).
 */
static int hybrid_handshake(int fd, unsigned port, unsigned *hostport)
{
	char line[64];
	size_t n = 0;
	int len = snprintf(line, sizeof(line), "CONNECT %u\n", port);

	if (write(fd, line, len) != len)
		return -errno;
	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (sscanf(line, "OK %u\n", hostport) != 1 || line[n - 1] != '\n')
		return -ECONNREFUSED;
	return 0;
}

/* one connection to A, retried while the other end is not there yet */
static int connect_to(const struct addr *a, unsigned *hostport)
{
	int err = 0;

	for (int tries = 0; tries < 50; tries++) {
		int fd;
		if (a->kind == A_VSOCK) {
			struct sockaddr_vm vm = {
			    .svm_family = AF_VSOCK, .svm_cid = a->cid, .svm_port = a->port};
			fd = socket(AF_VSOCK, SOCK_STREAM, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&vm, sizeof(vm)) == 0)
				return fd;
		} else {
			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			if (fd >= 0 &&
			    connect(fd, (const struct sockaddr *)&a->un, sizeof(a->un)) == 0) {
				if (a->kind == A_UNIX)
					return fd;
				err = hybrid_handshake(fd, a->port, hostport);
				if (!err)
					return fd;
				errno = -err;
			}
		}
		err = errno;
		if (fd >= 0)
			close(fd);
		if (err != ECONNREFUSED && err != ECONNRESET && err != ENOENT && err != ETIMEDOUT)
			break;
		usleep(200000);
	}
	say("connect: %s", strerror(err));
	return -1;
}

/* ---- server ---- */

/* the server's trailer goes out once the client's whole stream is in */
static void server_ready(struct conn *c)
{
	struct trailer t;

	if (c->tail_out_ready || c->received < c->recv_total || c->sent < c->send_total)
		return;
	t.sent_sum = sum_final(&c->send_sum);
	t.recv_sum = sum_final(&c->recv_sum);
	t.recv_len = c->received;
	memcpy(c->tail_out, &t, sizeof(t));
	c->tail_out_len = sizeof(t);
	c->tail_out_ready = true;
}

/* read the hello; 1 when it is complete, 0 not yet, -errno */
static int server_hello(struct conn *c)
{
	while (c->hello_got < sizeof(c->hello)) {
		ssize_t r = recv(c->fd, (uint8_t *)&c->hello + c->hello_got,
				 sizeof(c->hello) - c->hello_got, 0);
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (r == 0)
			return -EPIPE;
		c->hello_got += r;
	}
	if (c->hello.magic != MAGIC)
		return -EPROTO;
	return 1;
}

struct server {
	struct conn *conns[MAX_CONNS];
	int n;
	unsigned accepted, failed, ok, noread;
	uint64_t bytes_in, bytes_out;
	bool quit;
};

static void server_drop(struct server *s, int i, const char *why)
{
	struct conn *c = s->conns[i];

	if (why) {
		say("conn %u FAIL: %s after %" PRIu64 " bytes in, %" PRIu64 " out", c->id, why,
		    c->received, c->sent);
		s->failed++;
	}
	close(c->fd);
	free(c);
	s->conns[i] = s->conns[--s->n];
}

/* one connection's turn after poll; 1 when it is finished with */
static int server_step(struct server *s, struct conn *c)
{
	int err;

	if (c->hello_got < sizeof(c->hello)) {
		err = server_hello(c);
		if (err <= 0)
			return err;
		if (c->hello.flags & F_QUIT) {
			s->quit = true;
			return 1;
		}
		if (c->hello.flags & F_NOREAD) {
			/* never read again: what the peer writes piles up
			 * in the guest's socket and then stops (credit) */
			c->noread = true;
			s->noread++;
			return 0;
		}
		/* the server's stream seed is the client's ^ 0x5555 */
		struct hello h = c->hello;
		unsigned id = c->id;
		conn_init(c, c->fd, h.seed ^ 0x5555, h.down, h.up, 0);
		c->hello = h;
		c->hello_got = sizeof(h);
		c->id = id;
	}
	if ((err = conn_send(c)) || (err = conn_recv(c)))
		return err;
	server_ready(c);
	if ((err = conn_send(c)))
		return err;
	if (!conn_done(c))
		return 0;
	/* the trailer is queued before the shutdown: the client reads it all */
	shutdown(c->fd, SHUT_WR);
	s->ok++;
	s->bytes_in += c->received;
	s->bytes_out += c->sent;
	return 1;
}

static int cmd_serve(const char *where)
{
	static struct server s;
	static struct pollfd p[MAX_CONNS + 1];
	struct addr a;
	int l;
	int64_t last = now_ns();

	if (parse_addr(where, &a) || (l = listen_on(&a)) < 0 || set_nonblock(l))
		return 2;
	say("serving on %s", where);
	while (!s.quit || s.n > (int)s.noread) {
		int busy = 0;
		p[0].fd = s.quit ? -1 : l;
		p[0].events = POLLIN;
		for (int i = 0; i < s.n; i++) {
			struct conn *c = s.conns[i];
			p[i + 1].fd = c->noread ? -1 : c->fd;
			p[i + 1].events = POLLIN | (conn_wants_out(c) ? POLLOUT : 0);
			busy += !c->noread;
		}
		if (busy && now_ns() - last > (int64_t)STALL_MS * 1000000) {
			say("no progress for %d s on %d connections", STALL_MS / 1000, busy);
			break;
		}
		if (poll(p, s.n + 1, 1000) < 0 && errno != EINTR)
			return 2;
		/* conns[] is compacted as connections end: walk it backwards */
		for (int i = s.n - 1; i >= 0; i--) {
			if (!p[i + 1].revents)
				continue;
			last = now_ns();
			int r = server_step(&s, s.conns[i]);
			if (r)
				server_drop(&s, i, r < 0 ? strerror(-r) : NULL);
		}
		if (p[0].revents & POLLIN) {
			int fd;
			while ((fd = accept(l, NULL, NULL)) >= 0) {
				struct conn *c;
				if (s.n == MAX_CONNS || set_nonblock(fd) ||
				    !(c = malloc(sizeof(*c)))) {
					say("conn %u: refused (%d open)", s.accepted, s.n);
					close(fd);
					s.failed++;
					continue;
				}
				conn_init(c, fd, 0, 0, 0, 0);
				c->id = s.accepted++;
				s.conns[s.n++] = c;
			}
			last = now_ns();
		}
	}
	unsigned left = s.n - s.noread;
	for (int i = s.n - 1; i >= 0; i--)
		server_drop(&s, i, s.conns[i]->noread ? NULL : "still open at the end");
	/* the quit connection itself is not counted */
	say("serve done: %u connections, %u ok (%.1f MiB in, %.1f MiB out), %u held unread, %u "
	    "failed",
	    s.accepted - 1, s.ok, s.bytes_in / 1048576.0, s.bytes_out / 1048576.0, s.noread,
	    s.failed);
	return s.failed || left ? 1 : 0;
}

/* ---- clients ---- */

static int send_hello(int fd, const struct hello *h)
{
	return write(fd, h, sizeof(*h)) == sizeof(*h) ? 0 : -1;
}

static int cmd_quit(const char *where)
{
	struct addr a;
	struct hello h = {.magic = MAGIC, .flags = F_QUIT};
	unsigned hostport;
	int fd;

	if (parse_addr(where, &a) || (fd = connect_to(&a, &hostport)) < 0)
		return 2;
	if (send_hello(fd, &h))
		return 2;
	/* until the server has read it and closed */
	char b;
	while (read(fd, &b, 1) > 0)
		;
	close(fd);
	return 0;
}

/* drive CS[0..N) to completion; 0, or -errno (-ETIMEDOUT: stalled) */
static int conns_run(struct conn **cs, int n)
{
	static struct pollfd p[MAX_CONNS];
	int64_t last = now_ns();
	uint64_t moved = 0;

	for (;;) {
		int open = 0;
		uint64_t total = 0;
		for (int i = 0; i < n; i++) {
			struct conn *c = cs[i];
			p[i].fd = conn_done(c) ? -1 : c->fd;
			p[i].events = POLLIN | (conn_wants_out(c) ? POLLOUT : 0);
			p[i].revents = 0;
			open += p[i].fd >= 0;
			total += c->sent + c->received;
		}
		if (total != moved) {
			moved = total;
			last = now_ns();
		}
		if (!open)
			return 0;
		if (now_ns() - last > (int64_t)STALL_MS * 1000000)
			return -ETIMEDOUT;
		if (poll(p, n, 1000) < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			int err;
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if ((err = conn_send(cs[i])) || (err = conn_recv(cs[i])))
				return err;
		}
	}
}

static int cmd_stream(const char *where, double up_mib, double down_mib, int n)
{
	static struct conn *cs[MAX_CONNS];
	struct addr a;
	uint64_t up = (uint64_t)(up_mib * 1048576), down = (uint64_t)(down_mib * 1048576);
	unsigned hostport = 0;
	int64_t t0, t1;
	int err, failed = 0;

	if (n < 1 || n > MAX_CONNS || parse_addr(where, &a))
		return 2;
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		struct hello h = {.magic = MAGIC, .up = up, .down = down};
		int fd = connect_to(&a, &hostport);
		h.seed = mix64((uint64_t)t0 + i);
		if (fd < 0) {
			say("stream FAIL: connection %d of %d", i + 1, n);
			return 1;
		}
		if (send_hello(fd, &h) || set_nonblock(fd) || !(cs[i] = malloc(sizeof(*cs[i]))))
			return 1;
		conn_init(cs[i], fd, h.seed, up, down, sizeof(struct trailer));
		cs[i]->tail_out_ready = true; /* the client sends no trailer */
	}
	t1 = now_ns();
	say("connected %d at once in %.2f s (%.0f connections/s)%s", n, (t1 - t0) / 1e9,
	    n / ((t1 - t0) / 1e9), a.kind == A_HYBRID ? ", through CONNECT" : "");
	if (a.kind == A_HYBRID)
		say("last OK said host port %u", hostport);
	err = conns_run(cs, n);
	double secs = (now_ns() - t1) / 1e9;
	if (err) {
		for (int i = 0; i < n && i < 8; i++)
			say("conn %d: sent %" PRIu64 " of %" PRIu64 ", received %" PRIu64
			    " of %" PRIu64,
			    i, cs[i]->sent, up, cs[i]->received, down);
		say("stream FAIL: %s after %.1f s", strerror(-err), secs);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct trailer t;
		struct conn *c = cs[i];
		memcpy(&t, c->tail_in, sizeof(t));
		uint64_t sent_sum = sum_final(&c->send_sum), recv_sum = sum_final(&c->recv_sum);
		/* both ways: what we sent is what it got, what it sent is what we got */
		bool ok = t.recv_len == up && t.recv_sum == sent_sum && t.sent_sum == recv_sum;
		if (!ok || n <= 4)
			say("conn %d %s: sent %" PRIu64 " bytes sum %016" PRIx64
			    " (server got %" PRIu64 " bytes sum %016" PRIx64 "), received %" PRIu64
			    " bytes sum %016" PRIx64 " (server sent sum %016" PRIx64 ")",
			    i, ok ? "ok" : "MISMATCH", c->sent, sent_sum, t.recv_len, t.recv_sum,
			    c->received, recv_sum, t.sent_sum);
		failed += !ok;
		close(c->fd);
		free(c);
	}
	double mib = (double)(up + down) * n / 1048576.0;
	say("stream %s: %d connection%s, %d checksummed equal both ways, %.3f MiB up and %.3f MiB "
	    "down each, %.2f s, %.2f MiB/s",
	    failed ? "FAIL" : "ok", n, n > 1 ? "s" : "", n - failed, up_mib, down_mib, secs,
	    mib / secs);
	return failed ? 1 : 0;
}

/* VmRSS of PID in KiB, or -1 */
static long rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int cmd_noread(const char *where, double limit_mib, int hold_s, long pid)
{
	static uint8_t buf[CHUNK];
	struct addr a;
	struct hello h = {.magic = MAGIC, .flags = F_NOREAD};
	uint64_t limit = (uint64_t)(limit_mib * 1048576), written = 0;
	unsigned hostport;
	long rss0 = pid ? rss_kib(pid) : -1, rss1, rss2;
	int fd;

	if (parse_addr(where, &a) || (fd = connect_to(&a, &hostport)) < 0)
		return 2;
	if (send_hello(fd, &h) || set_nonblock(fd))
		return 2;
	memset(buf, 0xa5, sizeof(buf));
	int64_t t0 = now_ns(), last = t0;
	while (written < limit && now_ns() - last < (int64_t)NOREAD_STALL_MS * 1000000) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			return 2;
		uint64_t left = limit - written;
		ssize_t r =
		    send(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf), MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN) {
			say("noread FAIL: send: %s after %" PRIu64 " bytes", strerror(errno),
			    written);
			return 1;
		}
		if (r > 0) {
			written += r;
			last = now_ns();
		}
	}
	bool blocked = written < limit;
	rss1 = pid ? rss_kib(pid) : -1;
	say("noread %s after %" PRIu64 " bytes (%.2f MiB; offered up to %.0f MiB, %.1f s)",
	    blocked ? "blocked" : "FAIL: never blocked", written, written / 1048576.0, limit_mib,
	    (last - t0) / 1e9);
	/* keep pushing while held: the server must not take more */
	uint64_t before_hold = written;
	for (int64_t end = now_ns() + (int64_t)hold_s * 1000000000LL; now_ns() < end;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		poll(&p, 1, 200);
		ssize_t r = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (r > 0)
			written += r;
	}
	rss2 = pid ? rss_kib(pid) : -1;
	say("noread held %d s: %" PRIu64 " more bytes taken", hold_s, written - before_hold);
	if (pid)
		say("noread rss pid %ld: before %ld KiB, blocked %ld KiB, after hold %ld KiB", pid,
		    rss0, rss1, rss2);
	close(fd);
	return blocked ? 0 : 1;
}

static int cmd_cid(void)
{
	unsigned cid = 0;
	int fd = open("/dev/vsock", O_RDONLY);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid)) {
		say("cid: /dev/vsock: %s", strerror(errno));
		return 1;
	}
	say("cid %u", cid);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: vsockpeer [-p PREFIX] serve ADDR | stream ADDR UP_MIB DOWN_MIB [CONNS] |\n"
		"       noread ADDR LIMIT_MIB HOLD_S [PID] | quit ADDR | cid\n"
		"ADDR: vsock:PORT (listen), vsock:CID:PORT, unix:PATH, hybrid:PATH:PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc > 2 && !strcmp(argv[1], "-p")) {
		prefix = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return cmd_serve(argv[2]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "stream"))
		return cmd_stream(argv[2], atof(argv[3]), atof(argv[4]),
				  argc == 6 ? atoi(argv[5]) : 1);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "noread"))
		return cmd_noread(argv[2], atof(argv[3]), atoi(argv[4]),
				  argc == 6 ? atol(argv[5]) : 0);
	if (argc == 3 && !strcmp(argv[1], "quit"))
		return cmd_quit(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "cid"))
		return cmd_cid();
	return usage();
}
