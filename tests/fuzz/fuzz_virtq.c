// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for lib/virtq.c: the input is a hostile guest's memory
 * (rings, descriptors, indirect tables) plus the queue parameters, and the
 * device side pops and pushes until the queue is empty or broken.  It must
 * never crash, hang or touch memory outside the guest regions, and every
 * segment it hands out must lie inside one region.  Build and run:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude \
 *       tests/fuzz/fuzz_virtq.c lib/virtq.c lib/gmem.c lib/log.c -o build/fuzz_virtq
 *   build/fuzz_virtq -max_total_time=60 tests/fuzz/corpus/virtq
 *
 * Input: a 20-byte header, then guest memory contents.
 *   0      size: 1 << (byte & 15), or the raw u16 at 2 if bit 7 is set
 *   1      flags: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 inflight
 *          tracking, bit 3 inflight region from the input's tail (else a
 *          fresh one), bit 4 start with kicks disabled, bit 5 push in
 *          batches, bit 6 ring GPAs unmasked (else & 0x3ffff)
 *   2..3   raw size          4..5  last_avail_idx (SET_VRING_BASE)
 *   6..7   chain capacity (segments, 0 -> VIRTQ_MAX_SEGMENTS)
 *   8..19  desc, avail, used GPAs (u32 each)
 *   20..   memory: region A [0, 64K), then B [0x20000, +64K), then C right
 *          after B [0x30000, +16K) (adjacent to B, so ranges can straddle)
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/virtq.h"

#define A_GPA 0x0ull
#define A_SIZE 0x10000ull
#define B_GPA 0x20000ull
#define B_SIZE 0x10000ull
#define C_GPA (B_GPA + B_SIZE)
#define C_SIZE 0x4000ull
#define HEADER 20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t region_a[A_SIZE] __attribute__((aligned(4096)));
static uint8_t region_b[B_SIZE] __attribute__((aligned(4096)));
static uint8_t region_c[C_SIZE] __attribute__((aligned(4096)));
static uint64_t inflight_buf[(16 + 16 * VIRTQ_MAX_SIZE + 64) / 8];
static struct virtq_segment segments[VIRTQ_MAX_SIZE];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static bool inside(const uint8_t *p, uint32_t len, const uint8_t *base, uint64_t size)
{
	return p >= base && len <= size && (uint64_t)(p - base) <= size - len;
}

/* Every segment lies inside one region, and the totals add up. */
static void check_chain(const struct virtq_chain *c)
{
	uint64_t readable = 0, writable = 0;

	if (c->nr_segments > c->max_segments || c->nr_readable > c->nr_segments)
		abort();
	for (uint32_t i = 0; i < c->nr_segments; i++) {
		const struct virtq_segment *s = &c->segments[i];

		if (!s->len || s->device_writable != (i >= c->nr_readable))
			abort();
		if (!inside(s->host, s->len, region_a, A_SIZE) &&
		    !inside(s->host, s->len, region_b, B_SIZE) &&
		    !inside(s->host, s->len, region_c, C_SIZE))
			abort();
		if (s->device_writable)
			writable += s->len;
		else
			readable += s->len;
	}
	if (readable != c->readable_bytes || writable != c->writable_bytes)
		abort();
}

/* What a device does with a chain: read a header, write a reply. */
static uint32_t serve(const struct virtq_chain *c)
{
	uint8_t buf[64];
	uint32_t n = c->writable_bytes < sizeof(buf) ? c->writable_bytes : sizeof(buf);

	check_chain(c);
	if (c->readable_bytes >= 16 && virtq_chain_read(c, c->readable_bytes - 16, buf, 16))
		abort();
	if (virtq_chain_read(c, c->readable_bytes, buf, 1) != -ERANGE)
		abort();
	memset(buf, 0x5a, sizeof(buf));
	if (n && virtq_chain_write(c, c->writable_bytes - n, buf, n))
		abort();
	return n;
}

static void load_memory(const uint8_t *mem, size_t len)
{
	size_t n;

	memset(region_a, 0, sizeof(region_a));
	memset(region_b, 0, sizeof(region_b));
	memset(region_c, 0, sizeof(region_c));
	n = len < A_SIZE ? len : A_SIZE;
	memcpy(region_a, mem, n);
	mem += n, len -= n;
	n = len < B_SIZE ? len : B_SIZE;
	memcpy(region_b, mem, n);
	mem += n, len -= n;
	n = len < C_SIZE ? len : C_SIZE;
	memcpy(region_c, mem, n);
}

static void resubmit(struct virtq *vq, struct virtq_chain *chain, int inflight)
{
	static uint16_t heads[VIRTQ_MAX_SIZE];
	int n = virtq_inflight_resubmit_list(vq, heads, VIRTQ_MAX_SIZE);

	if (n != inflight)
		abort();
	for (int i = 0; i < n; i++) {
		if (heads[i] >= vq->size)
			abort();
		if (virtq_get_chain(vq, heads[i], chain) < 0)
			return;
		if (virtq_push(vq, heads[i], serve(chain)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmem mem;
	static bool ready;
	struct virtq vq;
	struct virtq_chain chain;
	struct virtq_used_elem batch[4];
	unsigned qsize, nbatch = 0, steps = 0;
	uint8_t flags;
	uint64_t mask, features = 0;
	uint32_t capacity;
	int ret = 0;

	if (!ready) {
		gmem_init_empty(&mem);
		if (gmem_add_region(&mem, A_GPA, A_SIZE, region_a) ||
		    gmem_add_region(&mem, B_GPA, B_SIZE, region_b) ||
		    gmem_add_region(&mem, C_GPA, C_SIZE, region_c))
			abort();
		ready = true;
	}
	if (size < HEADER)
		return 0;
	qsize = data[0] & 0x80 ? get16(data + 2) : 1u << (data[0] & 15);
	flags = data[1];
	capacity = get16(data + 6) ? get16(data + 6) : VIRTQ_MAX_SEGMENTS;
	mask = flags & 0x40 ? ~0ull : 0x3ffff;
	if (flags & 1)
		features |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (flags & 2)
		features |= 1ull << VIRTIO_F_EVENT_IDX;
	load_memory(data + HEADER, size - HEADER);

	ret = virtq_init(&vq, &mem, qsize, get32(data + 8) & mask, get32(data + 12) & mask,
			 get32(data + 16) & mask, features);
	if (ret) {
		if (!virtq_is_broken(&vq) || !virtq_broken_reason(&vq)[0])
			abort(); /* every refusal says why */
		return 0;
	}
	virtq_set_base(&vq, get16(data + 4));
	virtq_chain_init(&chain, segments, capacity);
	if (flags & 4) {
		size_t bytes = virtq_inflight_queue_bytes(qsize);
		size_t n = size - HEADER < bytes ? size - HEADER : bytes;

		memset(inflight_buf, 0, bytes);
		if (flags & 8)
			memcpy(inflight_buf, data + size - n, n);
		if (virtq_set_inflight(&vq, inflight_buf, bytes))
			abort();
		ret = virtq_inflight_recover(&vq);
		if (ret >= 0)
			resubmit(&vq, &chain, ret);
	}
	if (flags & 0x10)
		virtq_disable_notify(&vq);

	/* A budget per wakeup, as a device server has: a guest can point
	 * writable buffers at its own avail ring, so that serving one chain
	 * publishes the next, forever. */
	while (steps++ < 2 * qsize + 2 && (ret = virtq_pop(&vq, &chain)) == 1) {
		struct virtq_used_elem e = {.id = chain.head, .len = serve(&chain)};

		if (flags & 0x20) {
			batch[nbatch++] = e;
			if (nbatch == 4) {
				if (virtq_push_batch(&vq, batch, nbatch))
					abort();
				nbatch = 0;
			}
		} else if (virtq_push(&vq, chain.head, e.len)) {
			abort();
		}
		if (steps % 3 == 0)
			virtq_needs_interrupt(&vq);
		if (steps % 5 == 0 && virtq_enable_notify(&vq))
			virtq_disable_notify(&vq);
	}
	if (nbatch && virtq_push_batch(&vq, batch, nbatch) && !virtq_is_broken(&vq))
		abort();
	if (ret < 0 && (!virtq_is_broken(&vq) || !virtq_broken_reason(&vq)[0]))
		abort();
	virtq_needs_interrupt(&vq);
	return 0;
}
