// SPDX-License-Identifier: MIT
/*
 * isola-rng: a virtio entropy device (virtio 1.2 §5.4) as a vhost-user
 * back-end.  One queue; each device-writable buffer the driver gives is
 * filled from getrandom(2), within --rate's token buckets (Firecracker's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/log.h"
#include "lib/rate_limiter.h"
#include "lib/server_main.h"
#include "lib/vhost_user_backend.h"
#include "servers/rng/rng.h"

#define RNG_DEVICE_ID 4 /* virtio 1.2 §5.4 */
#define RNG_MAX_SEGMENTS 64

struct rng {
	/* --rate (Firecracker's entropy RateLimiter): a request takes one
	 * `ops` token and its whole buffer's bytes from `bytes`.  Not touched
	 * while `limited` is false: an unlimited device reads no clock. */
	bool limited;
	struct rate_limiter limiter;
	uint64_t rate_waits;
	struct virtq_segment segs[RNG_MAX_SEGMENTS];
};

static uint64_t rng_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO, else lib/vdso_fallback.h */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Fill the chain's writable buffers; returns bytes written. */
static uint32_t rng_fill(const struct virtq_chain *chain)
{
	uint32_t written = 0;

	for (uint32_t i = chain->nr_readable; i < chain->nr_segments; i++) {
		const struct virtq_segment *seg = &chain->segments[i];
		size_t done = 0;

		while (done < seg->len) {
			ssize_t n = getrandom((uint8_t *)seg->host + done, seg->len - done, 0);

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

	/* Left in flight by a previous instance: served at once, paid for
	 * where the buckets allow. */
	if (rng->limited)
		rate_limiter_consume(&rng->limiter, chain->writable_bytes, rng_now_ns());
	virtq_push(&q->vq, chain->head, rng_fill(chain));
	vhost_user_backend_notify(q);
}

/*
 * Firecracker's Entropy::process_entropy_queue: a request pays 1 op and its
 * buffer's length in bytes before it is filled; one the buckets cannot pay
 * for goes back to the avail ring (the guest just waits) and the thread
 * sleeps until they can (the return value: handle_queue's timeout).
 */
static int rng_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	struct rng *rng = device;
	struct virtq_chain chain;
	bool pushed = false;
	int wait = -1;

	virtq_chain_init(&chain, rng->segs, RNG_MAX_SEGMENTS);
	virtq_disable_notify(&q->vq);
	for (;;) {
		int r = virtq_pop(&q->vq, &chain);

		if (r < 0)
			break;
		if (r == 1) {
			if (rng->limited) {
				uint64_t now = rng_now_ns();

				if (!rate_limiter_consume(&rng->limiter, chain.writable_bytes,
							  now)) {
					uint64_t ms = rate_limiter_wait_ms(
					    &rng->limiter, chain.writable_bytes, now);

					rng->rate_waits++;
					if (!virtq_unpop(&q->vq, chain.head)) {
						wait = ms > 1000 ? 1000 : ms < 1 ? 1 : (int)ms;
						break;
					}
				}
			}
			if (virtq_push(&q->vq, chain.head, rng_fill(&chain)) < 0)
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

/* --rate SPEC (lib/rate_limiter.h), or a bare number: bytes per second
 * (isola's older form, a bucket of one second's worth). */
static int rng_parse_rate(void *device, const struct server_option *option, const char *value)
{
	struct rng *rng = device;
	char spec[64], err[256];
	const char *text = value;

	if (value[0] >= '0' && value[0] <= '9' && strspn(value, "0123456789") == strlen(value)) {
		snprintf(spec, sizeof(spec), "bytes=%.20s:1000", value);
		text = spec;
	}
	if (rate_limiter_parse(text, &rng->limiter, err, sizeof(err)) < 0) {
		log_error("%s %s: %s", option->name, value, err);
		return -EINVAL;
	}
	rng->limited = !rate_limiter_is_unlimited(&rng->limiter);
	return 0;
}

/* Sandboxed: the buckets start full. */
static int rng_prepare(void *device, struct server_backend *backend, char *err, size_t errlen)
{
	struct rng *rng = device;

	(void)err;
	(void)errlen;
	if (rng->limited)
		rate_limiter_start(&rng->limiter, rng_now_ns());
	backend->ops = &rng_ops;
	return 0;
}

static const struct server_option rng_options[] = {
    {"--rate", "SPEC", false,
     "limit entropy: bytes=SIZE:REFILL_MS[:BURST],ops=...\n"
     "(Firecracker's token buckets; a request is 1 op and\n"
     "its buffer's bytes; a bare number N is bytes=N:1000;\n"
     "default: unlimited)",
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
