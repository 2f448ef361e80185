// SPDX-License-Identifier: MIT
/*
 * isola-rng: a virtio entropy device (virtio 1.2 §5.4) as a vhost-user
 * back-end.  One queue; each device-writable buffer the driver gives is
 * filled from getrandom(2), at most --rate bytes per second (token bucket).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "lib/log.h"
#include "lib/server_main.h"
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

/* --rate BYTES_PER_SEC */
static int rng_parse_rate(void *device, const struct server_option *option, const char *value)
{
	struct rng *rng = device;
	char *end;

	errno = 0;
	rng->rate = strtoull(value, &end, 10);
	if (errno || *end || value[0] == '-' || !rng->rate) {
		log_error("%s %s: want a positive number of bytes per second", option->name, value);
		return -EINVAL;
	}
	return 0;
}

/* Sandboxed: the bucket starts full, one second's worth. */
static int rng_prepare(void *device, struct server_backend *backend, char *err, size_t errlen)
{
	struct rng *rng = device;

	(void)err;
	(void)errlen;
	clock_gettime(CLOCK_MONOTONIC, &rng->last);
	rng->tokens = (double)rng->rate;
	backend->ops = &rng_ops;
	return 0;
}

static const struct server_option rng_options[] = {
    {"--rate", "BYTES_PER_SEC", false, "limit entropy to this rate (default: unlimited)",
     rng_parse_rate},
    {0},
};

static const struct server_def rng_server = {
    .name = "isola-rng",
    .description = "A virtio entropy device (virtio 1.2 5.4) served as a vhost-user back-end.\n",
    .options = rng_options,
    .allowlist = &rng_sandbox_allowlist,
    .prepare = rng_prepare,
};

int main(int argc, char **argv)
{
	static struct rng rng;

	return server_main(argc, argv, &rng_server, &rng);
}
