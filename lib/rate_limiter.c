// SPDX-License-Identifier: MIT
/* Firecracker's token buckets (lib/rate_limiter.h): parse, format, consume. */
#define _GNU_SOURCE
#include "lib/rate_limiter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MS 1000000ull

static uint64_t refill_ns(const struct token_bucket *b)
{
	return b->refill_time_ms * NS_PER_MS; /* parse bounds refill_time_ms */
}

static uint64_t saturate(unsigned __int128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

/* Nanoseconds the bucket takes to make `tokens` tokens, rounded up. */
static uint64_t bucket_time_for(const struct token_bucket *b, uint64_t tokens)
{
	unsigned __int128 t = (unsigned __int128)tokens * refill_ns(b);

	return saturate((t + b->size - 1) / b->size);
}

/*
 * Adds the tokens made since last_update.  last_update moves on by the time
 * those whole tokens took, not to now: the fraction of a token made so far is
 * kept for the next call (as Firecracker does), so the rate is exact however
 * often this runs.  A full bucket makes nothing, so its clock restarts.
 */
static void bucket_replenish(struct token_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_update)
		return;
	uint64_t delta = now_ns - b->last_update;
	uint64_t tokens = saturate((unsigned __int128)delta * b->size / refill_ns(b));

	if (tokens >= b->size - b->budget) {
		b->budget = b->size;
		b->last_update = now_ns;
		return;
	}
	b->budget += tokens;
	/* rounded down (<= delta): the kept fraction errs by < 1 ns a call */
	b->last_update += (uint64_t)((unsigned __int128)tokens * refill_ns(b) / b->size);
}

/* Firecracker's TokenBucket::reduce, on a bucket the caller may throw away. */
static bool bucket_reduce(struct token_bucket *b, uint64_t tokens, uint64_t now_ns)
{
	if (b->size == 0)
		return true;
	if (b->one_time_burst >= tokens) {
		b->one_time_burst -= tokens;
		return true;
	}
	tokens -= b->one_time_burst;
	b->one_time_burst = 0;
	bucket_replenish(b, now_ns);
	if (now_ns < b->last_update)
		return false; /* still paying back an over-size operation */
	if (tokens > b->size) {
		/* OverConsumption: pass, and owe the excess as refill time. */
		uint64_t owed = bucket_time_for(b, tokens - b->budget);

		b->budget = 0;
		b->last_update = owed > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + owed;
		return true;
	}
	if (tokens > b->budget)
		return false;
	b->budget -= tokens;
	return true;
}

/* Nanoseconds until bucket_reduce(b, tokens, ...) would pass. */
static uint64_t bucket_wait_ns(const struct token_bucket *bucket, uint64_t tokens, uint64_t now_ns)
{
	struct token_bucket b = *bucket;

	if (b.size == 0 || b.one_time_burst >= tokens)
		return 0;
	tokens -= b.one_time_burst;
	bucket_replenish(&b, now_ns);
	uint64_t ready = b.last_update; /* the end of a pay-back, if any */
	if (tokens <= b.size && tokens > b.budget) {
		uint64_t t = bucket_time_for(&b, tokens - b.budget);
		ready = t > UINT64_MAX - ready ? UINT64_MAX : ready + t;
	}
	return ready > now_ns ? ready - now_ns : 0;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	/* Work on a copy: both buckets pass or neither changes. */
	struct rate_limiter next = *rl;

	if (!bucket_reduce(&next.ops, 1, now_ns) || !bucket_reduce(&next.bytes, bytes, now_ns))
		return false;
	*rl = next;
	return true;
}

uint64_t rate_limiter_wait_ms(const struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	uint64_t a = bucket_wait_ns(&rl->ops, 1, now_ns);
	uint64_t b = bucket_wait_ns(&rl->bytes, bytes, now_ns);
	uint64_t ns = a > b ? a : b;

	return ns / NS_PER_MS + (ns % NS_PER_MS != 0);
}

void rate_limiter_start(struct rate_limiter *rl, uint64_t now_ns)
{
	struct token_bucket *buckets[] = {&rl->bytes, &rl->ops};

	for (size_t i = 0; i < 2; i++) {
		buckets[i]->budget = buckets[i]->size;
		buckets[i]->one_time_burst = buckets[i]->initial_one_time_burst;
		buckets[i]->last_update = now_ns;
	}
}

bool rate_limiter_is_unlimited(const struct rate_limiter *rl)
{
	return rl->bytes.size == 0 && rl->ops.size == 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A decimal u64 from *p up to a ':' ',' or the end; no sign, no spaces. */
static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

/* One "NAME=SIZE:REFILL_MS[:BURST]" of length len at part. */
static int parse_part(const char *part, size_t len, struct rate_limiter *rl, bool seen[2],
		      char *err, size_t errlen)
{
	static const char *const field_names[] = {"size", "refill time (ms)", "one-time burst"};
	const char *eq = memchr(part, '=', len);
	int which;

	if (eq == NULL)
		return fail(
		    err, errlen,
		    "rate limiter part '%.*s' has no '=': write bytes=SIZE:REFILL_MS[:BURST] "
		    "or ops=SIZE:REFILL_MS[:BURST]",
		    (int)len, part);
	size_t name_len = (size_t)(eq - part);
	if (name_len == 5 && memcmp(part, "bytes", 5) == 0)
		which = 0;
	else if (name_len == 3 && memcmp(part, "ops", 3) == 0)
		which = 1;
	else
		return fail(err, errlen,
			    "rate limiter part '%.*s': unknown bucket '%.*s' (the buckets are "
			    "'bytes' and 'ops')",
			    (int)len, part, (int)name_len, part);
	if (seen[which])
		return fail(err, errlen, "rate limiter: the '%.*s' bucket is given twice",
			    (int)name_len, part);
	seen[which] = true;

	uint64_t v[3] = {0, 0, 0};
	unsigned n = 0;
	const char *p = eq + 1, *end = part + len;
	for (;;) {
		int rc = parse_u64(&p, &v[n]);
		if (rc == -ERANGE || (rc == 0 && p > end))
			return fail(err, errlen,
				    "rate limiter part '%.*s': the %s is too large (at most %llu)",
				    (int)len, part, field_names[n], (unsigned long long)UINT64_MAX);
		if (rc < 0)
			return fail(err, errlen,
				    "rate limiter part '%.*s': the %s is not a decimal number "
				    "(write %.*s=SIZE:REFILL_MS[:BURST])",
				    (int)len, part, field_names[n], (int)name_len, part);
		n++;
		if (p == end)
			break;
		if (*p != ':' || n == 3)
			return fail(err, errlen,
				    "rate limiter part '%.*s': unexpected '%.*s' (write "
				    "%.*s=SIZE:REFILL_MS[:BURST])",
				    (int)len, part, (int)(end - p), p, (int)name_len, part);
		p++;
	}
	if (n < 2)
		return fail(err, errlen,
			    "rate limiter part '%.*s' has no refill time: write "
			    "%.*s=SIZE:REFILL_MS[:BURST]",
			    (int)len, part, (int)name_len, part);

	struct token_bucket *b = which == 0 ? &rl->bytes : &rl->ops;
	memset(b, 0, sizeof(*b));
	if (v[0] == 0)
		return 0; /* Firecracker: size 0 is no bucket (no limit) */
	if (v[1] == 0)
		return fail(err, errlen,
			    "rate limiter part '%.*s': a bucket of size %llu needs a refill time "
			    "above 0 ms (or size 0 for no limit)",
			    (int)len, part, (unsigned long long)v[0]);
	if (v[1] > RATE_LIMITER_MAX_REFILL_MS)
		return fail(
		    err, errlen,
		    "rate limiter part '%.*s': the refill time is too large (at most %llu ms)",
		    (int)len, part, (unsigned long long)RATE_LIMITER_MAX_REFILL_MS);
	b->size = v[0];
	b->refill_time_ms = v[1];
	b->initial_one_time_burst = v[2];
	return 0;
}

int rate_limiter_parse(const char *spec, struct rate_limiter *rl, char *err, size_t errlen)
{
	struct rate_limiter parsed;
	bool seen[2] = {false, false};

	memset(&parsed, 0, sizeof(parsed));
	if (errlen > 0)
		err[0] = '\0';
	if (spec == NULL)
		return fail(err, errlen, "rate limiter: no text given");
	for (const char *p = spec; *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0)
			return fail(err, errlen,
				    "rate limiter '%s' has an empty part: separate "
				    "bytes=SIZE:REFILL_MS[:BURST] and ops=... with one ','",
				    spec);
		int rc = parse_part(p, len, &parsed, seen, err, errlen);
		if (rc < 0)
			return rc;
		p += len;
		if (*p == ',' && *++p == '\0')
			return fail(err, errlen, "rate limiter '%s' ends with ','", spec);
	}
	rate_limiter_start(&parsed, 0);
	*rl = parsed;
	return 0;
}

static int format_bucket(const char *name, const struct token_bucket *b, char *buf, size_t len,
			 size_t at)
{
	if (b->size == 0)
		return 0;
	char *out = at < len ? buf + at : NULL;
	size_t room = at < len ? len - at : 0;
	int n = snprintf(out, room, "%s%s=%llu:%llu", at > 0 ? "," : "", name,
			 (unsigned long long)b->size, (unsigned long long)b->refill_time_ms);
	if (b->initial_one_time_burst > 0)
		n += snprintf(room > (size_t)n ? out + n : NULL, room > (size_t)n ? room - n : 0,
			      ":%llu", (unsigned long long)b->initial_one_time_burst);
	return n;
}

int rate_limiter_format(const struct rate_limiter *rl, char *buf, size_t len)
{
	size_t at = 0;

	if (len > 0)
		buf[0] = '\0';
	at += (size_t)format_bucket("bytes", &rl->bytes, buf, len, at);
	at += (size_t)format_bucket("ops", &rl->ops, buf, len, at);
	if (at >= len)
		return -ENOSPC;
	return (int)at;
}
