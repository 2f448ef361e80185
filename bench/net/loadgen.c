// SPDX-License-Identifier: MIT
/*
 * net-loadgen: a virtio-net driver in a fake guest, for benchmarking
 * vhost-user-net back-ends (isola-net, DPDK's net_vhost) from the host, and
 * the same traffic straight on a tap, the limit.
 *
 * "Guest memory" is a memfd this process maps; the back-end gets it with
 * SET_MEM_TABLE (guest_address 0, user_address = our mapping).  One queue
 * pair (virtio 1.2 §5.1.2: receiveq1 = 0, transmitq1 = 1) of split rings
 * (§2.7) lives at its start; every descriptor owns one buffer holding the
 * 12-byte struct virtio_net_hdr (§5.1.6) and a whole frame.
 *
 *   --socket PATH        TX: every TX descriptor carries the same frame and
 *                        is made available again as soon as the device has
 *                        used it, so the ring stays full.
 *   --socket PATH --rx   RX: every RX descriptor is an empty buffer, made
 *                        available again as soon as the device has filled it.
 *   --tap NAME           TX straight into the tap: writev(header, frame) on a
 *                        tap fd with IFF_VNET_HDR, one frame per call.
 *   --tap NAME --rx      RX straight from the tap: read() per frame.
 *   --inject IFNAME      the other end of RX: sends the frame on an interface
 *                        (AF_PACKET, in the namespace that holds the tap).
 *
 * The device is notified through the kick eventfd only when avail_event
 * asks (EVENT_IDX); without --poll, the driver sleeps on the call eventfd
 * (poll + read) when it has nothing to do, like a guest waiting for its
 * interrupt.  --stats DIR reads DIR/rx_packets and DIR/rx_bytes at the start
 * and end of the measured phase: the frames the namespace received (the
 * tap's "rx": what user space writes into a tap, the kernel receives).
 * One line of key=value figures goes to stdout (bench/net/run.sh reads it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench/net/loadgen.h"

/* IEEE 802 "local experimental" EtherType: no protocol handler takes it,
 * so the receiving stack counts each frame and drops it at once. */
#define NLG_ETHERTYPE 0x88b5

static volatile sig_atomic_t lg_progress;
static volatile sig_atomic_t lg_idle_ticks;

static void lg_watchdog(int sig)
{
	static const char msg[] = "net-loadgen: no progress for 10 s; the back-end is stuck\n";

	(void)sig;
	if (lg_progress) {
		lg_progress = 0;
		lg_idle_ticks = 0;
	} else if (++lg_idle_ticks >= NLG_WATCHDOG_SECONDS) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do: we exit anyway */
		}
		_exit(3);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The frame every TX buffer and the injector carry: to dst (default a
 * locally administered address nobody has), from 02:00:00:00:00:01. */
static uint8_t lg_dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};

static void lg_fill_frame(uint8_t *f, unsigned len)
{
	static const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x01};

	memcpy(f, lg_dst_mac, 6);
	memcpy(f + 6, src, 6);
	f[12] = NLG_ETHERTYPE >> 8;
	f[13] = NLG_ETHERTYPE & 0xff;
	for (unsigned i = ETH_HLEN; i < len; i++)
		f[i] = (uint8_t)i;
}

/* ---- the receiving side's counters ----------------------------------------- */

struct lg_counters {
	uint64_t packets, bytes;
};

static int lg_read_u64(const char *dir, const char *name, uint64_t *value)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "net-loadgen: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	ok = fscanf(f, "%lu", value) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static int lg_read_counters(const struct nlg_options *opt, struct lg_counters *c)
{
	if (!opt->stats)
		return 0;
	if (lg_read_u64(opt->stats, "rx_packets", &c->packets) ||
	    lg_read_u64(opt->stats, "rx_bytes", &c->bytes))
		return -EIO;
	return 0;
}

/* ---- the driver ------------------------------------------------------------- */

/* Make descriptor id available again (the caller publishes avail->idx).
 * TX buffers already hold header + frame; RX buffers are device-writable. */
static void lg_make_available(struct loadgen *lg, struct nlg_ring *r, uint16_t id)
{
	r->avail->ring[r->avail_idx % r->size] = id;
	r->avail_idx++;
	r->in_flight++;
	(void)lg;
}

/* §2.7.13.3: publish avail->idx, then kick unless the device said not to
 * (§2.7.10: VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX). */
static void lg_publish_and_kick(struct loadgen *lg, struct nlg_ring *r)
{
	uint16_t old = r->kicked_idx, new = r->avail_idx;
	uint64_t one = 1;
	bool kick;

	if (old == new)
		return;
	__atomic_store_n(&r->avail->idx, new, __ATOMIC_RELEASE);
	/* The device reads idx then writes avail_event; we write idx then
	 * read avail_event: a full barrier, or both could miss each other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (lg->features & (1ull << VIRTIO_F_EVENT_IDX)) {
		uint16_t event = __atomic_load_n(r->avail_event, __ATOMIC_RELAXED);

		kick = (uint16_t)(new - event - 1) < (uint16_t)(new - old); /* vring_need_event */
	} else {
		kick =
		    !(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY);
	}
	r->kicked_idx = new;
	if (kick) {
		lg->kicks += lg->measuring;
		if (write(r->kick_fd, &one, sizeof(one)) < 0)
			fprintf(stderr, "net-loadgen: kick: %s\n", strerror(errno));
	}
}

/* Take every new used entry of r and make its buffer available again.
 * Returns how many, or -errno. */
static int lg_reap(struct loadgen *lg, struct nlg_ring *r)
{
	uint16_t used_idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
	int n = 0;

	while (r->last_used != used_idx) {
		struct virtq_used_elem *e = &r->used->ring[r->last_used % r->size];

		if (e->id >= r->size || (uint16_t)(used_idx - r->last_used) > r->in_flight) {
			fprintf(stderr,
				"net-loadgen: the device used head %u, never made available\n",
				e->id);
			return -EPROTO;
		}
		r->last_used++;
		r->in_flight--;
		n++;
		if (lg->measuring) {
			lg->frames++;
			if (r->index == NLG_TXQ) {
				lg->bytes += lg->opt->frame;
			} else if (e->len < VIRTIO_NET_HDR_SIZE + ETH_HLEN ||
				   e->len > VIRTIO_NET_HDR_SIZE + NLG_MAX_FRAME) {
				lg->errors++; /* §5.1.6.4: header + a frame */
			} else {
				lg->bytes += e->len - VIRTIO_NET_HDR_SIZE;
			}
		}
		lg_make_available(lg, r, (uint16_t)e->id);
	}
	if (n) {
		lg_progress = 1;
		lg_publish_and_kick(lg, r);
	}
	return n;
}

/* Sleep until the device signals the call eventfd, having first asked for
 * an interrupt (§2.7.7: used_event) once half of what is in flight is used:
 * a TX driver wants its buffers back in batches, not one by one. */
static int lg_wait(struct loadgen *lg, struct nlg_ring *r)
{
	struct pollfd pfd = {.fd = r->call_fd, .events = POLLIN};
	uint64_t value;

	if (lg->opt->poll)
		return 0;
	if (lg->features & (1ull << VIRTIO_F_EVENT_IDX)) {
		uint16_t at =
		    (uint16_t)(r->last_used + (r->in_flight > 1 ? r->in_flight / 2 - 1 : 0));

		__atomic_store_n(r->used_event, at, __ATOMIC_RELAXED);
		/* Write used_event, then re-read used->idx (the device does the
		 * reverse): a completion in between must not be slept through. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE) != r->last_used)
			return 0;
	}
	lg->wakeups += lg->measuring;
	if (poll(&pfd, 1, -1) < 0)
		return errno == EINTR ? 0 : -errno; /* EINTR: the watchdog's tick */
	if (read(r->call_fd, &value, sizeof(value)) < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

/* In --poll mode the device need not signal at all. */
static void lg_suppress_interrupts(struct loadgen *lg, struct nlg_ring *r)
{
	if (lg->features & (1ull << VIRTIO_F_EVENT_IDX))
		__atomic_store_n(r->used_event, (uint16_t)(r->last_used + 0x7fff),
				 __ATOMIC_RELAXED);
	else
		r->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
}

/* Every descriptor of the ring we drive owns its buffer: TX buffers get a
 * zero header (§5.1.6.2: no checksum, no GSO) and the frame, once. */
static void lg_fill_ring(struct loadgen *lg, struct nlg_ring *r)
{
	bool tx = r->index == NLG_TXQ;

	for (unsigned i = 0; i < r->size; i++) {
		uint64_t gpa = NLG_BUF_GPA_OF(r->index, i);

		if (tx)
			lg_fill_frame(nlg_ptr(lg, gpa + VIRTIO_NET_HDR_SIZE), lg->opt->frame);
		r->desc[i] = (struct virtq_desc){
		    .addr = gpa,
		    .len = tx ? VIRTIO_NET_HDR_SIZE + lg->opt->frame
			      : VIRTIO_NET_HDR_SIZE + NLG_MAX_FRAME,
		    .flags = tx ? 0 : VIRTQ_DESC_F_WRITE,
		};
		lg_make_available(lg, r, (uint16_t)i);
	}
	lg_publish_and_kick(lg, r);
}

/* The measured phase starts after the warm-up and ends runtime later;
 * lg_phase() flips lg->measuring and says when to stop. */
struct lg_clock {
	uint64_t start, measure_at, end;
	struct lg_counters before, after;
};

static int lg_phase(struct loadgen *lg, struct lg_clock *c, bool *done)
{
	uint64_t now = now_ns();

	*done = false;
	if (!lg->measuring && now >= c->measure_at) {
		if (lg_read_counters(lg->opt, &c->before))
			return -EIO;
		lg->measuring = true;
		c->start = now_ns();
	} else if (lg->measuring && now - c->start >= (uint64_t)(lg->opt->runtime * 1e9)) {
		c->end = now_ns();
		lg->measuring = false;
		*done = true;
		return lg_read_counters(lg->opt, &c->after) ? -EIO : 0;
	}
	return 0;
}

static int lg_run_vhost(struct loadgen *lg, struct lg_clock *c)
{
	struct nlg_ring *r = &lg->ring[lg->opt->mode == NLG_TX ? NLG_TXQ : NLG_RXQ];
	bool done = false;
	int ret;

	lg_fill_ring(lg, r);
	while (!done) {
		if (lg->opt->poll)
			lg_suppress_interrupts(lg, r);
		ret = lg_reap(lg, r);
		if (ret == 0)
			ret = lg_wait(lg, r);
		if (ret < 0)
			return ret;
		ret = lg_phase(lg, c, &done);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- straight on the tap, and the injector ---------------------------------- */

/* Attach to the existing tap NAME as Documentation/networking/tuntap.rst
 * says, with the 12-byte vnet header in front of every frame. */
static int lg_open_tap(const char *name)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	int hdr = VIRTIO_NET_HDR_SIZE;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0 || strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "net-loadgen: /dev/net/tun: %s\n",
			strerror(fd < 0 ? errno : EINVAL));
		return -1;
	}
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		fprintf(stderr, "net-loadgen: attach to tap %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int lg_run_tap(struct loadgen *lg, struct lg_clock *c)
{
	static uint8_t hdr[VIRTIO_NET_HDR_SIZE], frame[VIRTIO_NET_HDR_SIZE + NLG_MAX_FRAME];
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {frame, lg->opt->frame}};
	bool tx = lg->opt->mode == NLG_TX, done = false;
	int fd = lg_open_tap(lg->opt->tap), ret = 0;

	if (fd < 0)
		return -ENODEV;
	lg_fill_frame(frame, lg->opt->frame);
	while (!done) {
		ssize_t n = tx ? writev(fd, iov, 2) : read(fd, frame, sizeof(frame));

		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			ret = -errno;
			fprintf(stderr, "net-loadgen: tap %s: %s\n", tx ? "writev" : "read",
				strerror(errno));
			close(fd);
			return ret;
		}
		if (n > 0) {
			lg_progress = 1;
			if (lg->measuring) {
				lg->frames++;
				lg->bytes +=
				    tx ? lg->opt->frame : (uint64_t)n - VIRTIO_NET_HDR_SIZE;
			}
		}
		ret = lg_phase(lg, c, &done);
		if (ret < 0)
			break;
	}
	close(fd);
	return ret;
}

/* The sender of the RX direction: the frame on interface IFNAME (the tap,
 * in its namespace), as fast as one socket goes, for warm-up + runtime. */
static int lg_run_inject(struct loadgen *lg, const char *ifname, struct lg_clock *c)
{
	static uint8_t frame[NLG_MAX_FRAME];
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_halen = 6};
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0), ret = 0;
	bool done = false;

	to.sll_ifindex = (int)if_nametoindex(ifname);
	if (fd < 0 || !to.sll_ifindex) {
		fprintf(stderr, "net-loadgen: inject on %s: %s\n", ifname, strerror(errno));
		return -errno;
	}
	memcpy(to.sll_addr, lg_dst_mac, 6);
	lg_fill_frame(frame, lg->opt->frame);
	while (!done) {
		ssize_t n =
		    sendto(fd, frame, lg->opt->frame, 0, (struct sockaddr *)&to, sizeof(to));

		if (n < 0 && errno != ENOBUFS && errno != EINTR && errno != EAGAIN) {
			ret = -errno;
			fprintf(stderr, "net-loadgen: inject: %s\n", strerror(errno));
			close(fd);
			return ret;
		}
		if (n > 0) {
			lg_progress = 1;
			if (lg->measuring) {
				lg->frames++;
				lg->bytes += (uint64_t)n;
			}
		}
		ret = lg_phase(lg, c, &done);
		if (ret < 0)
			break;
	}
	close(fd);
	return ret;
}

/* ---- report ------------------------------------------------------------------ */

static void lg_report(const struct loadgen *lg, const struct lg_clock *c, const char *what)
{
	double s = (double)(c->end - c->start) / 1e9;
	uint64_t frames = lg->frames, bytes = lg->bytes;

	printf("mode=%s via=%s frame=%u runtime_s=%.3f frames=%llu mpps=%.4f gbps=%.4f",
	       lg->opt->mode == NLG_TX ? "tx" : "rx", what, lg->opt->frame, s,
	       (unsigned long long)frames, (double)frames / s / 1e6, (double)bytes * 8 / s / 1e9);
	if (lg->opt->stats) {
		uint64_t p = c->after.packets - c->before.packets;
		uint64_t b = c->after.bytes - c->before.bytes;

		printf(" rx_frames=%llu rx_mpps=%.4f rx_gbps=%.4f", (unsigned long long)p,
		       (double)p / s / 1e6, (double)b * 8 / s / 1e9);
	}
	if (lg->opt->socket)
		printf(
		    " kicks_per_frame=%.4f sleeps_per_frame=%.4f event_idx=%d poll=%d errors=%llu",
		    frames ? (double)lg->kicks / (double)frames : 0,
		    frames ? (double)lg->wakeups / (double)frames : 0,
		    !!(lg->features & (1ull << VIRTIO_F_EVENT_IDX)), lg->opt->poll,
		    (unsigned long long)lg->errors);
	printf("\n");
}

/* ---- main -------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: net-loadgen (--socket PATH | --tap NAME | --inject IFNAME) [--rx]\n"
		"                   [--frame BYTES] [--runtime S] [--warmup S] [--stats DIR]\n"
		"                   [--queue-size N] [--poll] [--no-event-idx] [--dst MAC]\n"
		"A virtio-net driver in a fake guest: keeps one queue pair's TX (or, with --rx,\n"
		"RX) ring of a vhost-user-net back-end full and prints frames/s and Gbit/s on\n"
		"one line; or the same traffic straight on a tap fd (--tap), the limit.\n"
		"  --socket PATH      the back-end's vhost-user socket\n"
		"  --tap NAME         writev/read the tap NAME itself (IFF_VNET_HDR)\n"
		"  --inject IFNAME    send the frame on IFNAME (AF_PACKET): the RX traffic\n"
		"  --rx               receive instead of transmit\n"
		"  --frame BYTES      frame size without FCS, %u to %u (default 64)\n"
		"  --runtime S        measured seconds (default 10)\n"
		"  --warmup S         unmeasured seconds first (default 1)\n"
		"  --stats DIR        read DIR/rx_packets and DIR/rx_bytes around the measured\n"
		"                     phase (e.g. /sys/class/net/TAP/statistics)\n"
		"  --queue-size N     virtqueue size, a power of two up to %u (default 256)\n"
		"  --poll             spin on the used ring instead of sleeping on the call fd\n"
		"  --no-event-idx     do not negotiate VIRTIO_F_EVENT_IDX\n"
		"  --dst MAC          the frame's destination (default 02:00:00:00:00:02)\n",
		NLG_MIN_FRAME, NLG_MAX_FRAME, NLG_MAX_QUEUE_SIZE);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

/* 0 to run, 1 done (--help), -1 bad usage. */
static int parse_args(int argc, char **argv, struct nlg_options *o, const char **inject)
{
	static const struct option options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"tap", required_argument, NULL, 'T'},
	    {"inject", required_argument, NULL, 'I'},
	    {"rx", no_argument, NULL, 'r'},
	    {"frame", required_argument, NULL, 'f'},
	    {"runtime", required_argument, NULL, 't'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"stats", required_argument, NULL, 'S'},
	    {"queue-size", required_argument, NULL, 'q'},
	    {"poll", no_argument, NULL, 'p'},
	    {"no-event-idx", no_argument, NULL, 'e'},
	    {"dst", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int opt, sources;
	bool pow2;

	*o = (struct nlg_options){.mode = NLG_TX,
				  .frame = 64,
				  .queue_size = 256,
				  .runtime = 10,
				  .warmup = 1,
				  .event_idx = true};
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'T':
			o->tap = optarg;
			break;
		case 'I':
			*inject = optarg;
			break;
		case 'r':
			o->mode = NLG_RX;
			break;
		case 'f':
			o->frame = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o->runtime = strtod(optarg, NULL);
			break;
		case 'w':
			o->warmup = strtod(optarg, NULL);
			break;
		case 'S':
			o->stats = optarg;
			break;
		case 'q':
			o->queue_size = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o->poll = true;
			break;
		case 'e':
			o->event_idx = false;
			break;
		case 'd':
			if (parse_mac(optarg, lg_dst_mac)) {
				usage(stderr);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	sources = !!o->socket + !!o->tap + !!*inject;
	pow2 = o->queue_size && !(o->queue_size & (o->queue_size - 1));
	if (optind < argc || sources != 1) {
		usage(stderr);
		return -1;
	}
	if (o->frame < NLG_MIN_FRAME || o->frame > NLG_MAX_FRAME || o->runtime <= 0 ||
	    o->warmup < 0 || !pow2 || o->queue_size > NLG_MAX_QUEUE_SIZE) {
		fprintf(stderr, "net-loadgen: an option is out of range (see --help)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct nlg_options opt;
	static struct loadgen lg;
	struct sigaction sa = {.sa_handler = lg_watchdog}; /* no SA_RESTART: poll() returns */
	struct itimerval tick = {{1, 0}, {1, 0}};
	const char *inject = NULL, *what;
	struct lg_clock clock = {0};
	int ret;

	ret = parse_args(argc, argv, &opt, &inject);
	if (ret)
		return ret > 0 ? 0 : 2;
	lg = (struct loadgen){.opt = &opt, .sock = -1, .memfd = -1};
	signal(SIGPIPE, SIG_IGN);
	if (opt.socket && (loadgen_connect(&lg) || loadgen_negotiate(&lg) ||
			   loadgen_setup_memory(&lg) || loadgen_start_queues(&lg)))
		return 1;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &tick, NULL);
	clock.measure_at = now_ns() + (uint64_t)(opt.warmup * 1e9);
	if (opt.socket) {
		what = "vhost-user";
		ret = lg_run_vhost(&lg, &clock);
	} else if (opt.tap) {
		what = "tap";
		ret = lg_run_tap(&lg, &clock);
	} else {
		what = "inject";
		ret = lg_run_inject(&lg, inject, &clock);
	}
	setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
	if (ret) {
		fprintf(stderr, "net-loadgen: run: %s\n", strerror(-ret));
		return 1;
	}
	if (opt.socket)
		loadgen_stop_queues(&lg);
	lg_report(&lg, &clock, what);
	if (lg.errors) {
		fprintf(stderr, "net-loadgen: %llu frames were malformed\n",
			(unsigned long long)lg.errors);
		return 1;
	}
	return 0;
}
