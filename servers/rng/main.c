// SPDX-License-Identifier: MIT
/*
 * isola-rng: a virtio entropy device (virtio 1.2 §5.4) as a vhost-user
 * back-end.  One queue; each device-writable buffer the driver gives is
 * filled from getrandom(2), at most --rate bytes per second (token bucket).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/vhost_user_backend.h"
#include "servers/rng/rng.h"

#define RNG_DEVICE_ID 4 /* virtio 1.2 §5.4 */
#define RNG_MAX_SEGMENTS 64

struct rng {
	uint64_t rate; /* bytes per second, 0 = unlimited */
	double tokens; /* bytes we may hand out now */
	struct timespec last;
	struct virtq_segment segs[RNG_MAX_SEGMENTS];
};

/* Refill the bucket (capacity: one second's worth) and return whole tokens. */
static uint64_t rng_tokens(struct rng *rng)
{
	struct timespec now;
	double elapsed;

	if (!rng->rate)
		return UINT64_MAX;
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - rng->last.tv_sec) + (now.tv_nsec - rng->last.tv_nsec) / 1e9;
	rng->last = now;
	rng->tokens += elapsed * (double)rng->rate;
	if (rng->tokens > (double)rng->rate)
		rng->tokens = (double)rng->rate;
	return (uint64_t)rng->tokens;
}

/* Fill up to max bytes of the chain's writable buffers; returns bytes written. */
static uint32_t rng_fill(const struct virtq_chain *chain, uint64_t max)
{
	uint32_t written = 0;

	for (uint32_t i = chain->nr_readable; i < chain->nr_segments && written < max; i++) {
		const struct virtq_segment *seg = &chain->segments[i];
		size_t want = seg->len < max - written ? seg->len : (size_t)(max - written);
		size_t done = 0;

		while (done < want) {
			ssize_t n = getrandom((uint8_t *)seg->host + done, want - done, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return written + (uint32_t)done;
			done += (size_t)n;
		}
		written += (uint32_t)done;
	}
	return written;
}

static void rng_handle_chain(void *device, struct vhost_user_backend_queue *q,
			     struct virtq_chain *chain)
{
	struct rng *rng = device;
	uint32_t n = rng_fill(chain, chain->writable_bytes);

	if (rng->rate)
		rng->tokens -= n; /* resubmitted requests are served, then paid for */
	virtq_push(&q->vq, chain->head, n);
	vhost_user_backend_notify(q);
}

static int rng_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	struct rng *rng = device;
	struct virtq_chain chain;
	bool pushed = false;
	int wait = -1;

	virtq_chain_init(&chain, rng->segs, RNG_MAX_SEGMENTS);
	virtq_disable_notify(&q->vq);
	for (;;) {
		uint64_t tokens = rng_tokens(rng);
		int r;

		if (tokens == 0) {
			/* Until one byte's worth has accumulated. */
			wait = (int)(1000 / rng->rate) + 1;
			virtq_enable_notify(&q->vq);
			break;
		}
		r = virtq_pop(&q->vq, &chain);
		if (r < 0)
			break;
		if (r == 1) {
			uint32_t n = rng_fill(&chain, tokens);

			if (rng->rate)
				rng->tokens -= n;
			if (virtq_push(&q->vq, chain.head, n) < 0)
				break;
			pushed = true;
			continue;
		}
		if (!virtq_enable_notify(&q->vq))
			break;
		virtq_disable_notify(&q->vq);
	}
	if (pushed)
		vhost_user_backend_notify(q);
	return wait;
}

static const struct vhost_user_backend_ops rng_ops = {
    .name = "isola-rng",
    .features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		(1ull << VIRTIO_F_EVENT_IDX),
    .num_queues = 1,
    .handle_queue = rng_handle_queue,
    .handle_chain = rng_handle_chain,
};

static bool user_given; /* a second --user is refused */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: isola-rng (--socket PATH | --socket-fd N) [--rate BYTES_PER_SEC]\n"
		"                 [--user UID[:GID]] [--no-sandbox] [--test-forbidden-syscall]\n"
		"A virtio entropy device (virtio 1.2 5.4) served as a vhost-user back-end.\n"
		"  --socket PATH             listen on a Unix socket; serve one front-end at a\n"
		"                            time, accepting again after it disconnects\n"
		"  --socket-fd N             use inherited fd N: a connected socket (served\n"
		"                            once) or a listening one\n"
		"  --rate BYTES_PER_SEC      limit entropy to this rate (default: unlimited)\n"
		"  --user UID[:GID]          as root: become this user once the sandbox is\n"
		"                            built (isola --jail passes its own)\n"
		"  --no-sandbox              no namespaces, fd pruning or seccomp (debugging)\n"
		"  --test-forbidden-syscall  after sandboxing, make a forbidden syscall (tests)\n"
		"  --help                    this text\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"socket-fd", required_argument, NULL, 'f'},
	    {"rate", required_argument, NULL, 'r'},
	    {"user", required_argument, NULL, 'u'},
	    {"no-sandbox", no_argument, NULL, 'n'},
	    {"test-forbidden-syscall", no_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *path = NULL;
	struct rng rng = {0};
	struct vhost_user_backend be;
	bool sandbox = true, test_forbidden = false;
	char err[256];
	long fd = -1;
	char *end;
	int opt, ret;

	log_set_program("isola-rng");
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'f':
			errno = 0;
			fd = strtol(optarg, &end, 10);
			if (errno || *end || fd < 0 || fd > 1 << 20) {
				log_error("--socket-fd %s: not a file descriptor number", optarg);
				return 2;
			}
			break;
		case 'r':
			errno = 0;
			rng.rate = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || !rng.rate) {
				log_error("--rate %s: want a positive number of bytes per second",
					  optarg);
				return 2;
			}
			break;
		case 'u': {
			uid_t uid;
			gid_t gid;

			if (user_given) {
				log_error("--user given twice");
				return 2;
			}
			user_given = true;
			if (sandbox_parse_user(optarg, &uid, &gid)) {
				log_error("--user %s: expected UID or UID:GID (numbers)", optarg);
				return 2;
			}
			sandbox_set_user(uid, gid);
			break;
		}
		case 'n':
			sandbox = false;
			break;
		case 't':
			test_forbidden = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !path == (fd < 0)) {
		log_error("give exactly one of --socket PATH or --socket-fd N (see --help)");
		return 2;
	}
	if (path) {
		fd = vhost_user_backend_listen(path);
		if (fd < 0) {
			log_error("socket %s: %s", path, strerror((int)-fd));
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &rng.last);
	rng.tokens = (double)rng.rate;
	if (sandbox && sandbox_isolate("isola-rng", err, sizeof(err)) < 0) {
		log_error("sandbox: %s (or run with --no-sandbox)", err);
		return 1;
	}
	ret = vhost_user_backend_init(&be, &rng_ops, &rng);
	if (ret) {
		log_error("back-end setup: %s", strerror(-ret));
		return 1;
	}
	if (sandbox) {
		int keep[1 + VHOST_USER_BACKEND_MAX_QUEUES] = {(int)fd, be.queues[0].stop_fd};

		if (sandbox_lock(keep, 2, rng_sandbox_syscalls,
				 sizeof(rng_sandbox_syscalls) / sizeof(rng_sandbox_syscalls[0]),
				 err, sizeof(err)) < 0) {
			log_error("sandbox: %s (or run with --no-sandbox)", err);
			return 1;
		}
		log_info("sandboxed: %u syscalls allowed", sandbox_allowed_count());
	}
	if (test_forbidden)
		sandbox_test_forbidden_syscall();
	ret = vhost_user_backend_run(&be, (int)fd);
	vhost_user_backend_destroy(&be);
	if (ret) {
		log_error("serving: %s", strerror(-ret));
		return 1;
	}
	return 0;
}
