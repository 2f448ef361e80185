/* SPDX-License-Identifier: MIT */
/*
 * What the nested tests' stream programs share (nettest.c over TCP,
 * vsockpeer.c over vsock and the hybrid host socket): a line printer, a
 * clock, and checksummed streams.  Header-only, static: each program is
 * one file; it defines `prefix` (what say() starts a line with) before
 * including this.
 */
#ifndef ISOLA_TESTS_NESTED_STREAM_H
#define ISOLA_TESTS_NESTED_STREAM_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s", prefix);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t mix64(uint64_t z)
{
	/* splitmix64's finaliser: every input bit moves every output bit */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- the stream: word k of a stream is mix64(seed + k * golden) ---- */

/*
 * A stream checksum over position-aligned 64-bit words (FNV-1a's step on
 * words): each step is a bijection of the running value, so a change to
 * any one word always changes the result; the length is folded in at the
 * end.  Fed in chunks of any size.
 */
struct sum {
	uint64_t h, len;
	uint8_t part[8];
};

static void sum_init(struct sum *s)
{
	memset(s, 0, sizeof(*s));
	s->h = 0xcbf29ce484222325ULL;
}

static void sum_word(struct sum *s, uint64_t w)
{
	s->h = (s->h ^ w) * 0x100000001b3ULL;
}

static void sum_add(struct sum *s, const uint8_t *p, size_t n)
{
	while (n > 0 && (s->len % 8 != 0)) {
		s->part[s->len % 8] = *p++;
		s->len++;
		n--;
		if (s->len % 8 == 0) {
			uint64_t w;
			memcpy(&w, s->part, 8);
			sum_word(s, w);
		}
	}
	for (; n >= 8; p += 8, n -= 8, s->len += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		sum_word(s, w);
	}
	for (; n > 0; n--)
		s->part[s->len++ % 8] = *p++;
}

static uint64_t sum_final(const struct sum *s)
{
	uint64_t w = 0;
	struct sum t = *s;

	if (t.len % 8) {
		memcpy(&w, t.part, t.len % 8);
		sum_word(&t, w);
	}
	sum_word(&t, t.len);
	return mix64(t.h);
}

/* fill BUF (a multiple of 8 bytes) with the words of stream SEED from word K */
static void stream_fill(uint8_t *buf, size_t n, uint64_t seed, uint64_t k)
{
	for (size_t i = 0; i < n; i += 8, k++) {
		uint64_t w = mix64(seed + k * 0x9e3779b97f4a7c15ULL);
		memcpy(buf + i, &w, 8);
	}
}

#endif
