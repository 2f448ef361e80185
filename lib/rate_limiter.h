/* SPDX-License-Identifier: MIT */
/*
 * Token-bucket rate limiters with Firecracker's schema and arithmetic
 * (Firecracker's `TokenBucket` and `RateLimiter`): a bucket of `size` tokens
 * that refills completely in `refill_time_ms`, plus a `one_time_burst` spent
 * first and never refilled.  A rate limiter has an optional `bytes` bucket
 * and an optional `ops` bucket; an operation of N bytes takes N tokens from
 * the first and 1 from the second, from both or from neither.
 *
 * Shared by the core (it validates the API's and `--net`'s limiters and
 * builds the text below from Firecracker's JSON) and isola-net (enforcement).
 *
 * Pure functions: the time is passed in (CLOCK_MONOTONIC nanoseconds), so
 * the tests are deterministic and nothing here makes a system call.
 *
 * The text form (docs/net.md, isola-net --rx-rate/--tx-rate):
 *   bytes=SIZE:REFILL_MS[:ONE_TIME_BURST],ops=SIZE:REFILL_MS[:ONE_TIME_BURST]
 * either part optional, in either order; the empty text is "no limit".
 */
#ifndef ISOLA_LIB_RATE_LIMITER_H
#define ISOLA_LIB_RATE_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest refill time the arithmetic carries (in nanoseconds it must fit
 * 64 bits): about 584 years. */
#define RATE_LIMITER_MAX_REFILL_MS (UINT64_MAX / 1000000u)

struct token_bucket {
	uint64_t size;		 /* 0: no bucket (unlimited) */
	uint64_t one_time_burst; /* what is left of it */
	uint64_t refill_time_ms;
	uint64_t budget;      /* tokens now, <= size */
	uint64_t last_update; /* ns; ahead of `now` while an over-size operation is paid back */
	uint64_t initial_one_time_burst; /* as configured, for rate_limiter_format */
};

struct rate_limiter {
	struct token_bucket bytes, ops;
};

/*
 * Parses SPEC into *rl, with full buckets as of time 0 (rate_limiter_start
 * sets the clock).  Returns 0, or -EINVAL with a sentence in err (errlen > 0)
 * that names the bad part and says what is expected.  A part with size 0 is
 * no bucket, as in Firecracker; size > 0 with refill 0 is refused.
 */
int rate_limiter_parse(const char *spec, struct rate_limiter *rl, char *err, size_t errlen);

/*
 * The text rate_limiter_parse reads back to the same configuration (sizes,
 * refill times, the configured one-time bursts); "" when there is no bucket.
 * Returns the length, or -ENOSPC (buf then holds a truncated text, if len > 0).
 */
int rate_limiter_format(const struct rate_limiter *rl, char *buf, size_t len);

/* Fills the buckets and starts their clocks at now_ns. */
void rate_limiter_start(struct rate_limiter *rl, uint64_t now_ns);

/* No bucket at all: every operation passes. */
bool rate_limiter_is_unlimited(const struct rate_limiter *rl);

/*
 * Takes 1 op and `bytes` bytes if both buckets allow it (all or nothing).
 * An operation larger than a bucket's size passes when the bucket is not
 * paying back an earlier one, and empties the bucket for the time the excess
 * takes to refill (Firecracker's OverConsumption), so the long-run rate holds.
 */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);

/*
 * Milliseconds (rounded up, >= 1) until rate_limiter_consume(rl, bytes, ...)
 * would pass if nothing else consumed; 0 if it passes now.  Does not change
 * the buckets.
 */
uint64_t rate_limiter_wait_ms(const struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);

#endif
