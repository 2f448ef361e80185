/* SPDX-License-Identifier: MIT */
/*
 * nettest: the traffic of the nested network cases (tests/system/nested,
 * issue 12) between L1 and L2.  Static, no dependencies: it runs in L1's
 * initramfs and in L2's busybox initramfs alike.  busybox's nc quits when its
 * standard input ends, so it cannot check an echo or a two-way stream.
 *
 *   nettest [-p PREFIX] serve PORT
 *       UDP echo and a TCP server on PORT; each TCP connection in a child,
 *       pinned to CPU (n mod CPUs) so that with several connections L2
 *       transmits from several CPUs (and so on several virtio-net queue
 *       pairs, through the driver's XPS map).  A "quit" connection ends it
 *       after its children, with a summary line.
 *   nettest [-p PREFIX] udp HOST PORT COUNT
 *       COUNT datagrams of 1..1472 bytes (datagram k: 1 + k mod 1472 bytes),
 *       at most WINDOW outstanding; each echo checked byte for byte.  A
 *       datagram not echoed within 2 s is lost; there is no retransmission:
 *       any loss, corruption or unexpected datagram fails.  Nothing echoed
 *       for 10 s: the rest count as lost, and it stops.
 *   nettest [-p PREFIX] tcp HOST PORT UP_MIB DOWN_MIB [CONNS]
 *       CONNS connections (default 1), each moving UP_MIB to the server and
 *       DOWN_MIB back at the same time; each stream is checksummed by both
 *       ends and the totals compared both ways.  Prints MiB/s.
 *   nettest [-p PREFIX] quit HOST PORT
 *
 * Output lines start with PREFIX (default "nettest: "); status 0 only if
 * every check passed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UDP_MAX 1472 /* 1500-byte MTU - 20 (IPv4) - 8 (UDP) */
#define UDP_WINDOW 16
#define UDP_TIMEOUT_NS 2000000000LL
#define UDP_STALL_NS 10000000000LL
#define TCP_MAGIC 0x4e54535431ULL /* "NTST1" */
#define TCP_QUIT 1u
#define TCP_STALL_MS 60000 /* no progress for this long: fail */
#define CHUNK (64 * 1024)
#define MAX_CONNS 8

static const char *prefix = "nettest: ";

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
	uint64_t seed;
	uint64_t send_total, sent;     /* stream bytes */
	uint64_t recv_total, received; /* stream bytes */
	struct sum send_sum, recv_sum;
	size_t buf_off, buf_len;
	/* what follows the stream: our trailer out, the peer's in */
	uint8_t tail_out[sizeof(struct trailer)], tail_in[sizeof(struct trailer)];
	size_t tail_out_len, tail_out_done, tail_in_len, tail_in_got;
	bool tail_out_ready;
	int64_t done_ns;
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

/* drive CONNS to completion; 0, or -errno (-ETIMEDOUT: stalled) */
static int conns_run(struct conn *cs, int n, uint64_t progress_step, void (*ready)(struct conn *c))
{
	struct pollfd p[MAX_CONNS];
	int64_t last = now_ns();
	uint64_t moved = 0, next_report = progress_step;

	for (;;) {
		int open = 0;
		uint64_t total = 0;
		for (int i = 0; i < n; i++) {
			struct conn *c = &cs[i];
			if (!c->tail_out_ready && ready)
				ready(c);
			p[i].fd = conn_done(c) ? -1 : c->fd;
			p[i].events = POLLIN;
			if (c->sent < c->send_total ||
			    (c->tail_out_ready && c->tail_out_done < c->tail_out_len))
				p[i].events |= POLLOUT;
			p[i].revents = 0;
			open += p[i].fd >= 0;
			total += c->sent + c->received;
		}
		if (total != moved) {
			moved = total;
			last = now_ns();
		}
		if (progress_step && moved >= next_report) {
			say("progress %.1f MiB", moved / 1048576.0);
			while (next_report <= moved)
				next_report += progress_step;
		}
		if (!open)
			return 0;
		if (now_ns() - last > (int64_t)TCP_STALL_MS * 1000000)
			return -ETIMEDOUT;
		if (poll(p, n, 1000) < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct conn *c = &cs[i];
			int err;
			if (p[i].fd < 0)
				continue;
			if ((err = conn_send(c)) || (err = conn_recv(c)))
				return err;
			if (conn_done(c) && !c->done_ns)
				c->done_ns = now_ns();
		}
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* blocking read of exactly N bytes; 0, or -errno */
static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		p += r;
		n -= r;
	}
	return 0;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(port));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* ---- server ---- */

/* the server's trailer goes out once the client's whole stream is in */
static void server_ready(struct conn *c)
{
	struct trailer t;

	if (c->received < c->recv_total || c->sent < c->send_total)
		return;
	t.sent_sum = sum_final(&c->send_sum);
	t.recv_sum = sum_final(&c->recv_sum);
	t.recv_len = c->received;
	memcpy(c->tail_out, &t, sizeof(t));
	c->tail_out_len = sizeof(t);
	c->tail_out_ready = true;
}

static int serve_conn(int fd, unsigned n)
{
	static struct conn c;
	struct hello h;
	int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), err;
	cpu_set_t set;

	if (cpus > 0) {
		CPU_ZERO(&set);
		CPU_SET(n % cpus, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	if ((err = read_full(fd, &h, sizeof(h)))) {
		say("tcp conn %u: no hello: %s", n, strerror(-err));
		return 1;
	}
	if (h.magic != TCP_MAGIC) {
		say("tcp conn %u: bad hello", n);
		return 1;
	}
	if (set_nonblock(fd))
		return 1;
	conn_init(&c, fd, h.seed ^ 0x5555, h.down, h.up, 0);
	err = conns_run(&c, 1, 0, server_ready);
	if (err) {
		say("tcp conn %u FAIL: %s after %" PRIu64 " bytes in, %" PRIu64 " out", n,
		    strerror(-err), c.received, c.sent);
		return 1;
	}
	say("tcp conn %u cpu %d: received %" PRIu64 " bytes sum %016" PRIx64 ", sent %" PRIu64
	    " bytes sum %016" PRIx64,
	    n, sched_getcpu(), c.received, sum_final(&c.recv_sum), c.sent, sum_final(&c.send_sum));
	/* let the trailer reach the client before the close */
	shutdown(fd, SHUT_WR);
	return 0;
}

static int cmd_serve(const char *port)
{
	struct sockaddr_in sa;
	int one = 1, u, l;
	unsigned conns = 0, bad = 0;
	uint64_t echoed = 0, echo_bytes = 0;
	bool quit = false;

	if (parse_addr("0.0.0.0", port, &sa))
		return 2;
	u = socket(AF_INET, SOCK_DGRAM, 0);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (u < 0 || l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(u, (struct sockaddr *)&sa, sizeof(sa)) ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 16)) {
		say("serve: socket: %s", strerror(errno));
		return 2;
	}
	say("serving udp and tcp on port %s", port);
	while (!quit) {
		struct pollfd p[2] = {{.fd = u, .events = POLLIN}, {.fd = l, .events = POLLIN}};
		int status;
		pid_t pid;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			return 2;
		if (p[0].revents & POLLIN) {
			uint8_t buf[65536];
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t r = recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (r >= 0 && sendto(u, buf, r, 0, (struct sockaddr *)&from, fl) == r) {
				echoed++;
				echo_bytes += r;
			}
		}
		if (p[1].revents & POLLIN) {
			int fd = accept(l, NULL, NULL);
			struct hello h;
			if (fd < 0)
				continue;
			/* the hello decides: a quit, or a stream for a child */
			if (recv(fd, &h, sizeof(h), MSG_PEEK | MSG_WAITALL) == sizeof(h) &&
			    h.magic == TCP_MAGIC && (h.flags & TCP_QUIT)) {
				quit = true;
				close(fd);
				break;
			}
			pid = fork();
			if (pid == 0) {
				close(l);
				close(u);
				_exit(serve_conn(fd, conns));
			}
			conns++;
			close(fd);
		}
	}
	for (int status; wait(&status) > 0;)
		bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	say("serve done: udp echoed %" PRIu64 " datagrams (%" PRIu64
	    " bytes), tcp %u connections, %u failed",
	    echoed, echo_bytes, conns, bad);
	return bad ? 1 : 0;
}

/* ---- clients ---- */

static int connect_to(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	for (int tries = 0; fd >= 0 && tries < 50; tries++) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return fd;
		if (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ETIMEDOUT)
			break;
		close(fd);
		usleep(200000);
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	say("connect: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int cmd_quit(const char *host, const char *port)
{
	struct sockaddr_in sa;
	struct hello h = {.magic = TCP_MAGIC, .flags = TCP_QUIT};
	int fd;

	if (parse_addr(host, port, &sa) || (fd = connect_to(&sa)) < 0)
		return 2;
	if (write(fd, &h, sizeof(h)) != sizeof(h))
		return 2;
	close(fd);
	return 0;
}

static int cmd_tcp(const char *host, const char *port, double up_mib, double down_mib, int n)
{
	static struct conn cs[MAX_CONNS];
	struct sockaddr_in sa;
	uint64_t up = (uint64_t)(up_mib * 1048576), down = (uint64_t)(down_mib * 1048576);
	int64_t t0;
	int err, failed = 0;

	if (n < 1 || n > MAX_CONNS || parse_addr(host, port, &sa))
		return 2;
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		struct hello h = {.magic = TCP_MAGIC, .up = up, .down = down};
		int fd = connect_to(&sa);
		h.seed = mix64((uint64_t)t0 + i);
		if (fd < 0)
			return 1;
		if (write(fd, &h, sizeof(h)) != sizeof(h) || set_nonblock(fd))
			return 1;
		/* the server's stream seed is ours ^ 0x5555 (serve_conn) */
		conn_init(&cs[i], fd, h.seed, up, down, sizeof(struct trailer));
		cs[i].tail_out_ready = true; /* the client sends no trailer */
	}
	err = conns_run(cs, n, 16 * 1048576, NULL);
	double secs = (now_ns() - t0) / 1e9;
	if (err) {
		for (int i = 0; i < n; i++)
			say("tcp conn %d: sent %" PRIu64 " of %" PRIu64 ", received %" PRIu64
			    " of %" PRIu64,
			    i, cs[i].sent, up, cs[i].received, down);
		say("tcp FAIL: %s after %.1f s", strerror(-err), secs);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct trailer t;
		struct conn *c = &cs[i];
		memcpy(&t, c->tail_in, sizeof(t));
		uint64_t sent_sum = sum_final(&c->send_sum), recv_sum = sum_final(&c->recv_sum);
		/* both ways: what we sent is what it got, what it sent is what we got */
		bool ok = t.recv_len == up && t.recv_sum == sent_sum && t.sent_sum == recv_sum;
		say("tcp conn %d %s: sent %" PRIu64 " bytes sum %016" PRIx64 " (server got %" PRIu64
		    " bytes sum %016" PRIx64 "), received %" PRIu64 " bytes sum %016" PRIx64
		    " (server sent sum %016" PRIx64 ")",
		    i, ok ? "ok" : "MISMATCH", c->sent, sent_sum, t.recv_len, t.recv_sum,
		    c->received, recv_sum, t.sent_sum);
		failed += !ok;
		close(c->fd);
	}
	double mib = (double)(up + down) * n / 1048576.0;
	say("tcp %s: %d connection%s, %.1f MiB up and %.1f MiB down each, %.2f s, %.2f MiB/s",
	    failed ? "FAIL" : "ok", n, n > 1 ? "s" : "", up_mib, down_mib, secs, mib / secs);
	return failed ? 1 : 0;
}

/* datagram K: 1 + K mod UDP_MAX bytes, every byte a function of K */
static size_t udp_size(uint64_t k)
{
	return 1 + k % UDP_MAX;
}

static void udp_fill(uint8_t *buf, uint64_t k, size_t n)
{
	uint8_t words[UDP_MAX + 8];

	stream_fill(words, (n + 7) & ~(size_t)7, mix64(k + 1), 0);
	memcpy(buf, words, n);
	/* the sequence number in the clear, where it fits */
	if (n >= 8)
		memcpy(buf, &k, 8);
}

static int cmd_udp(const char *host, const char *port, uint64_t count)
{
	/* outstanding datagrams by size: a window of < UDP_MAX holds distinct sizes */
	static int64_t slot_seq[UDP_MAX], slot_time[UDP_MAX];
	struct sockaddr_in sa;
	uint64_t next = 0, echoed = 0, lost = 0, corrupt = 0, unexpected = 0, bytes = 0;
	uint64_t oldest = 0; /* no outstanding datagram is older */
	int outstanding = 0, fd;
	int64_t t0 = now_ns(), last_echo = t0;

	if (parse_addr(host, port, &sa))
		return 2;
	for (int i = 0; i < UDP_MAX; i++)
		slot_seq[i] = -1;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || set_nonblock(fd)) {
		say("udp: socket: %s", strerror(errno));
		return 2;
	}
	while (next < count || outstanding > 0) {
		uint8_t buf[2048], want[UDP_MAX];
		struct pollfd p = {.fd = fd, .events = POLLIN};

		while (next < count && outstanding < UDP_WINDOW) {
			size_t n = udp_size(next);
			if (slot_seq[n - 1] >= 0) { /* outstanding for UDP_MAX datagrams */
				if (lost < 3)
					say("udp: datagram %" PRId64 " (%zu bytes) not echoed",
					    slot_seq[n - 1], n);
				lost++;
				outstanding--;
			}
			udp_fill(buf, next, n);
			if (send(fd, buf, n, 0) != (ssize_t)n) {
				if (errno == EAGAIN || errno == ENOBUFS)
					break;
				say("udp: send: %s", strerror(errno));
				return 2;
			}
			slot_seq[n - 1] = next;
			slot_time[n - 1] = now_ns();
			outstanding++;
			next++;
		}
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			return 2;
		for (;;) {
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r < 0)
				break;
			if (r < 1 || r > UDP_MAX || slot_seq[r - 1] < 0) {
				unexpected++;
				continue;
			}
			int64_t k = slot_seq[r - 1];
			udp_fill(want, k, r);
			if (memcmp(buf, want, r)) {
				if (corrupt < 3)
					say("udp: datagram %" PRId64
					    " (%zd bytes) came back corrupted",
					    k, r);
				corrupt++;
			} else {
				echoed++;
				bytes += r;
			}
			slot_seq[r - 1] = -1;
			outstanding--;
			last_echo = now_ns();
		}
		/* a dead link: stop, rather than time out every datagram */
		if (now_ns() - last_echo > UDP_STALL_NS) {
			say("udp: nothing echoed for %lld s: giving up with %" PRIu64 " not sent",
			    UDP_STALL_NS / 1000000000LL, count - next);
			lost += outstanding + (count - next);
			break;
		}
		/* the timeouts, oldest first */
		int64_t t = now_ns();
		for (; oldest < next; oldest++) {
			size_t s = udp_size(oldest) - 1;
			if (slot_seq[s] != (int64_t)oldest)
				continue;
			if (t - slot_time[s] < UDP_TIMEOUT_NS)
				break;
			if (lost < 3)
				say("udp: datagram %" PRIu64 " (%zu bytes) not echoed within 2 s",
				    oldest, s + 1);
			slot_seq[s] = -1;
			outstanding--;
			lost++;
		}
	}
	double secs = (now_ns() - t0) / 1e9;
	bool ok = echoed == count && !lost && !corrupt && !unexpected;
	say("udp %s: %" PRIu64 " datagrams of 1..%d bytes sent, %" PRIu64 " echoed intact (%" PRIu64
	    " bytes), %" PRIu64 " lost, %" PRIu64 " corrupted, %" PRIu64 " unexpected, %.2f s",
	    ok ? "ok" : "FAIL", count, UDP_MAX, echoed, bytes, lost, corrupt, unexpected, secs);
	return ok ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: nettest [-p PREFIX] serve PORT | udp HOST PORT COUNT |\n"
			"       tcp HOST PORT UP_MIB DOWN_MIB [CONNS] | quit HOST PORT\n");
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
	if (argc == 5 && !strcmp(argv[1], "udp"))
		return cmd_udp(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "tcp"))
		return cmd_tcp(argv[2], argv[3], atof(argv[4]), atof(argv[5]),
			       argc == 7 ? atoi(argv[6]) : 1);
	if (argc == 4 && !strcmp(argv[1], "quit"))
		return cmd_quit(argv[2], argv[3]);
	return usage();
}
