// SPDX-License-Identifier: MIT
/*
 * Unit tests for lib/virtq.c: split virtqueues, device side.  A tiny
 * "driver" below places descriptors and publishes avail entries in a fake
 * guest memory of three regions: A at 0 (4 MiB), then a gap, then B and C
 * back to back (so a buffer can straddle two regions that are both RAM).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/virtq.h"

#define MIB (1ull << 20)
#define A_GPA 0ull
#define A_SIZE (4 * MIB)
#define B_GPA (8 * MIB)
#define B_SIZE MIB
#define C_GPA (B_GPA + B_SIZE)
#define C_SIZE MIB
#define GAP_GPA (A_GPA + A_SIZE) /* not RAM */

/* Ring placement inside A, room for a 32768-entry queue. */
#define DESC_GPA 0x100000ull
#define AVAIL_GPA 0x180000ull
#define USED_GPA 0x1a0000ull
#define BUF_GPA 0x10000ull	   /* data buffers, below the rings */
#define TABLE_GPA (B_GPA + 0x1000) /* indirect tables, in B */

#define FEATURES ((1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX))

struct fixture {
	struct gmem mem;
	uint8_t *a, *b, *c;
	struct virtq vq;
	unsigned size;
	uint16_t avail_idx; /* the driver's */
	struct virtq_segment segs[VIRTQ_MAX_SEGMENTS];
	struct virtq_chain chain;
};

static void *host(struct fixture *f, uint64_t gpa)
{
	void *p = gmem_ptr(&f->mem, gpa, 1);

	assert_non_null(p);
	return p;
}

static struct virtq_desc *desc_table(struct fixture *f)
{
	return host(f, DESC_GPA);
}

static struct virtq_avail *avail(struct fixture *f)
{
	return host(f, AVAIL_GPA);
}

static struct virtq_used *used(struct fixture *f)
{
	return host(f, USED_GPA);
}

static uint16_t *used_event(struct fixture *f)
{
	return &avail(f)->ring[f->size];
}

static uint16_t *avail_event(struct fixture *f)
{
	return (uint16_t *)&used(f)->ring[f->size];
}

static void set_desc(struct virtq_desc *table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	table[i] = (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

/* Driver side: make head available (ring entry, then idx). */
static void publish(struct fixture *f, uint16_t head)
{
	avail(f)->ring[f->avail_idx % f->size] = head;
	f->avail_idx++;
	__atomic_store_n(&avail(f)->idx, f->avail_idx, __ATOMIC_RELEASE);
}

static void reinit(struct fixture *f, unsigned size, uint64_t features)
{
	f->size = size;
	assert_int_equal(virtq_init(&f->vq, &f->mem, size, DESC_GPA, AVAIL_GPA, USED_GPA, features),
			 0);
	virtq_set_base(&f->vq, f->avail_idx);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->a = aligned_alloc(4096, A_SIZE);
	f->b = aligned_alloc(4096, B_SIZE);
	f->c = aligned_alloc(4096, C_SIZE);
	assert_true(f->a && f->b && f->c);
	memset(f->a, 0, A_SIZE);
	memset(f->b, 0, B_SIZE);
	memset(f->c, 0, C_SIZE);
	gmem_init_empty(&f->mem);
	assert_int_equal(gmem_add_region(&f->mem, A_GPA, A_SIZE, f->a), 0);
	assert_int_equal(gmem_add_region(&f->mem, B_GPA, B_SIZE, f->b), 0);
	assert_int_equal(gmem_add_region(&f->mem, C_GPA, C_SIZE, f->c), 0);
	virtq_chain_init(&f->chain, f->segs, VIRTQ_MAX_SEGMENTS);
	reinit(f, 8, FEATURES);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gmem_destroy(&f->mem);
	free(f->a);
	free(f->b);
	free(f->c);
	free(f);
	return 0;
}

/* The queue must now be broken, with a reason mentioning what. */
static void expect_broken(struct fixture *f, const char *what)
{
	assert_int_equal(virtq_pop(&f->vq, &f->chain), -EIO);
	assert_true(virtq_is_broken(&f->vq));
	if (!strstr(virtq_broken_reason(&f->vq), what))
		fail_msg("reason \"%s\" lacks \"%s\"", virtq_broken_reason(&f->vq), what);
	/* And it stays broken. */
	assert_int_equal(virtq_pop(&f->vq, &f->chain), -EIO);
	assert_int_equal(virtq_push(&f->vq, 0, 0), -EIO);
}

/* ---- setup rules ---- */

static void test_init_queue_size(void **state)
{
	struct fixture *f = *state;
	static const unsigned bad[] = {0, 3, 6, 100, 32769, 65536, 49152};
	static const unsigned good[] = {1, 2, 256, 32768};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    virtq_init(&f->vq, &f->mem, bad[i], DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
		assert_true(virtq_is_broken(&f->vq));
		assert_non_null(strstr(virtq_broken_reason(&f->vq), "power of two"));
		assert_int_equal(virtq_pop(&f->vq, &f->chain), -EIO);
	}
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(
		    virtq_init(&f->vq, &f->mem, good[i], DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
		assert_false(virtq_is_broken(&f->vq));
	}
}

static void test_init_alignment(void **state)
{
	struct fixture *f = *state;

	/* §2.7: desc 16, avail 2, used 4. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 0),
			 -EINVAL);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "aligned"));
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 0),
			 -EINVAL);
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 0),
			 -EINVAL);
	assert_int_equal(
	    virtq_init(&f->vq, &f->mem, 8, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4, 0), 0);
}

static void test_init_rings_in_memory(void **state)
{
	struct fixture *f = *state;

	/* Rings in the gap, past the end of RAM, wrapping around. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, GAP_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "descriptor ring"));
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, C_GPA + C_SIZE, USED_GPA, 0),
			 -EINVAL);
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, ~0ull - 3, 0),
			 -EINVAL);
	/* The used ring fits but its avail_event field would be past region A:
	 * 4 + 8 * 8 = 68 bytes of ring, +2 for avail_event. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, A_SIZE - 68, 0),
			 -EINVAL);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "used ring"));
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, A_SIZE - 72, 0), 0);
	/* Same for used_event after the avail ring: 4 + 2 * 8 = 20, +2. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, A_SIZE - 20, USED_GPA, 0),
			 -EINVAL);
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, A_SIZE - 22, USED_GPA, 0), 0);
	/* A descriptor table straddling B and C (both RAM) is refused. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, C_GPA - 64, AVAIL_GPA, USED_GPA, 0),
			 -EINVAL);
}

static void test_init_rings_overlap(void **state)
{
	struct fixture *f = *state;

	/* A used ring over the avail ring would make each push a new avail
	 * entry; any overlap is refused. */
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, AVAIL_GPA, 0),
			 -EINVAL);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "overlap"));
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, DESC_GPA + 126, USED_GPA, 0),
			 -EINVAL);
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, DESC_GPA + 124, 0),
			 -EINVAL);
	assert_int_equal(virtq_init(&f->vq, &f->mem, 8, DESC_GPA, AVAIL_GPA, AVAIL_GPA + 20, 0),
			 -EINVAL); /* over used_event */
	/* Back to back is fine. */
	assert_int_equal(
	    virtq_init(&f->vq, &f->mem, 8, DESC_GPA, DESC_GPA + 128, DESC_GPA + 152, 0), 0);
}

static void test_init_reads_used_idx(void **state)
{
	struct fixture *f = *state;

	used(f)->idx = 77;
	reinit(f, 8, 0);
	assert_int_equal(f->vq.used_idx, 77);
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_int_equal(used(f)->idx, 78);
	assert_int_equal(used(f)->ring[77 % 8].id, 0);
}

static void test_init_resets_notify_state(void **state)
{
	struct fixture *f = *state;

	/* What a previous server instance may have left behind. */
	used(f)->flags = VIRTQ_USED_F_NO_NOTIFY;
	*avail_event(f) = 3;
	reinit(f, 8, 0);
	assert_int_equal(used(f)->flags, 0);
	assert_int_equal(*avail_event(f), 3); /* ignored without EVENT_IDX */
	reinit(f, 8, FEATURES);
	virtq_set_base(&f->vq, 40);
	assert_int_equal(*avail_event(f), 40);
}

static void test_set_get_base(void **state)
{
	struct fixture *f = *state;

	virtq_set_base(&f->vq, 1234);
	assert_int_equal(virtq_get_base(&f->vq), 1234);
	/* The driver has published 1235: one entry is available. */
	set_desc(desc_table(f), 5, BUF_GPA, 16, 0, 0);
	f->avail_idx = 1234;
	avail(f)->idx = 1234;
	publish(f, 5);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 5);
	assert_int_equal(virtq_get_base(&f->vq), 1235);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
}

/* ---- happy paths ---- */

static void test_pop_empty(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	assert_false(virtq_is_broken(&f->vq));
	assert_string_equal(virtq_broken_reason(&f->vq), "");
}

static void test_pop_single(void **state)
{
	struct fixture *f = *state;
	char out[6] = {0};

	memcpy(host(f, BUF_GPA), "hello", 6);
	set_desc(desc_table(f), 3, BUF_GPA, 6, 0, 0);
	publish(f, 3);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nr_segments, 1);
	assert_int_equal(f->chain.nr_readable, 1);
	assert_int_equal(f->chain.readable_bytes, 6);
	assert_int_equal(f->chain.writable_bytes, 0);
	assert_ptr_equal(f->chain.segments[0].host, host(f, BUF_GPA));
	assert_false(f->chain.segments[0].device_writable);
	assert_int_equal(virtq_chain_read(&f->chain, 0, out, 6), 0);
	assert_string_equal(out, "hello");
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
}

static void test_pop_chained_and_push(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);
	uint8_t hdr[12], status = 0;

	/* A virtio-blk-like request: 16-byte header in two pieces (one in B),
	 * a 512-byte data buffer to fill and a 1-byte status. */
	memcpy(host(f, BUF_GPA), "0123", 4);
	memcpy(host(f, B_GPA + 0x100), "456789ab", 8);
	set_desc(d, 0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 6);
	set_desc(d, 6, B_GPA + 0x100, 8, VIRTQ_DESC_F_NEXT, 2);
	set_desc(d, 2, BUF_GPA + 0x1000, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 7);
	set_desc(d, 7, C_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.nr_segments, 4);
	assert_int_equal(f->chain.nr_readable, 2);
	assert_int_equal(f->chain.nr_descriptors, 4);
	assert_int_equal(f->chain.readable_bytes, 12);
	assert_int_equal(f->chain.writable_bytes, 513);
	assert_true(f->chain.segments[3].device_writable);
	assert_int_equal(virtq_chain_read(&f->chain, 0, hdr, 12), 0);
	assert_memory_equal(hdr, "0123456789ab", 12);
	assert_int_equal(virtq_chain_read(&f->chain, 3, hdr, 2), 0);
	assert_memory_equal(hdr, "34", 2);
	assert_int_equal(virtq_chain_read(&f->chain, 12, hdr, 0), 0);
	assert_int_equal(virtq_chain_read(&f->chain, 11, hdr, 2), -ERANGE);
	assert_int_equal(virtq_chain_read(&f->chain, 13, hdr, 0), -ERANGE);
	/* Write across the data/status boundary. */
	memset(host(f, BUF_GPA + 0x1000), 0, 512);
	assert_int_equal(virtq_chain_write(&f->chain, 510, "xyz", 3), 0);
	assert_memory_equal((uint8_t *)host(f, BUF_GPA + 0x1000) + 510, "xy", 2);
	assert_int_equal(*(uint8_t *)host(f, C_GPA), 'z');
	assert_int_equal(virtq_chain_write(&f->chain, 512, &status, 1), 0);
	assert_int_equal(virtq_chain_write(&f->chain, 512, "ab", 2), -ERANGE);
	assert_int_equal(virtq_chain_write(&f->chain, UINT32_MAX, "a", 1), -ERANGE);

	assert_int_equal(virtq_push(&f->vq, 0, 513), 0);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 0);
	assert_int_equal(used(f)->ring[0].len, 513);
}

static void test_zero_length_descriptor(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	/* Valid, carries nothing; its address is never looked at. */
	set_desc(d, 1, GAP_GPA, 0, VIRTQ_DESC_F_NEXT, 2);
	set_desc(d, 2, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	set_desc(d, 3, ~0ull, 0, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.nr_segments, 1);
	assert_int_equal(f->chain.nr_descriptors, 3);
	assert_int_equal(f->chain.readable_bytes, 0);
	assert_int_equal(f->chain.writable_bytes, 8);
}

static void test_chain_of_queue_size(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	/* Uses every descriptor once: exactly the queue size, allowed. */
	for (unsigned i = 0; i < 8; i++)
		set_desc(d, i, BUF_GPA + 16 * i, 16, i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.nr_segments, 8);
	assert_int_equal(f->chain.readable_bytes, 128);
}

static void test_full_ring(void **state)
{
	struct fixture *f = *state;

	/* avail->idx exactly size ahead is a full ring, not a violation. */
	for (unsigned i = 0; i < 8; i++) {
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
		publish(f, (uint16_t)i);
	}
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
		assert_int_equal(f->chain.head, i);
	}
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);
	char buf[4];

	/* Table order 0 -> 2 -> 1: chained by next inside the table. */
	memcpy(host(f, BUF_GPA), "ab", 2);
	memcpy(host(f, BUF_GPA + 0x100), "cd", 2);
	set_desc(t, 0, BUF_GPA, 2, VIRTQ_DESC_F_NEXT, 2);
	set_desc(t, 2, BUF_GPA + 0x100, 2, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, C_GPA, 100, VIRTQ_DESC_F_WRITE, 0);
	/* The WRITE flag on the indirect descriptor itself is ignored (§2.7.5.3.2). */
	set_desc(desc_table(f), 4, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE,
		 0);
	publish(f, 4);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 4);
	assert_int_equal(f->chain.nr_segments, 3);
	assert_int_equal(f->chain.nr_readable, 2);
	assert_int_equal(f->chain.nr_descriptors, 4);
	assert_int_equal(f->chain.writable_bytes, 100);
	assert_int_equal(virtq_chain_read(&f->chain, 0, buf, 4), 0);
	assert_memory_equal(buf, "abcd", 4);
}

static void test_indirect_unaligned_table_after_direct(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);
	uint8_t *raw = host(f, TABLE_GPA + 3);
	struct virtq_desc entry = {.addr = BUF_GPA, .len = 8, .flags = VIRTQ_DESC_F_WRITE};

	/* A direct readable buffer, then an indirect table (the chain's last
	 * descriptor) at an odd address. */
	memcpy(raw, &entry, sizeof(entry));
	set_desc(d, 0, BUF_GPA + 0x200, 4, VIRTQ_DESC_F_NEXT, 5);
	set_desc(d, 5, TABLE_GPA + 3, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.nr_segments, 2);
	assert_int_equal(f->chain.readable_bytes, 4);
	assert_int_equal(f->chain.writable_bytes, 8);
}

static void test_index_wraparound(void **state)
{
	struct fixture *f = *state;

	/* Both indices near 65535: entries go to ring slots idx % size, and
	 * the free-running 16-bit counters wrap to 0. */
	used(f)->idx = 65534;
	f->avail_idx = 65534;
	avail(f)->idx = 65534;
	reinit(f, 8, FEATURES);
	for (unsigned i = 0; i < 4; i++) {
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
		publish(f, (uint16_t)i);
	}
	assert_int_equal(avail(f)->idx, 2);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
		assert_int_equal(f->chain.head, i);
		assert_int_equal(virtq_push(&f->vq, f->chain.head, i), 0);
	}
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	assert_int_equal(virtq_get_base(&f->vq), 2);
	assert_int_equal(used(f)->idx, 2);
	assert_int_equal(used(f)->ring[6].id, 0); /* 65534 % 8 */
	assert_int_equal(used(f)->ring[7].id, 1);
	assert_int_equal(used(f)->ring[0].id, 2);
	assert_int_equal(used(f)->ring[1].id, 3);
	assert_int_equal(*avail_event(f), 2);
}

static void test_push_batch(void **state)
{
	struct fixture *f = *state;
	struct virtq_used_elem e[3] = {{5, 10}, {1, 0}, {7, 4096}};
	struct virtq_used_elem bad[2] = {{1, 0}, {8, 0}};
	struct virtq_used_elem many[9] = {{0, 0}};

	assert_int_equal(virtq_push_batch(&f->vq, e, 3), 0);
	assert_int_equal(used(f)->idx, 3);
	assert_int_equal(used(f)->ring[2].id, 7);
	assert_int_equal(used(f)->ring[2].len, 4096);
	/* Device bugs are refused without touching the ring or breaking it. */
	assert_int_equal(virtq_push_batch(&f->vq, bad, 2), -EINVAL);
	assert_int_equal(virtq_push_batch(&f->vq, many, 9), -EINVAL);
	assert_int_equal(virtq_push(&f->vq, 8, 0), -EINVAL);
	assert_int_equal(used(f)->idx, 3);
	assert_false(virtq_is_broken(&f->vq));
}

/* ---- notification suppression, §2.7.10 ---- */

static void test_interrupt_flags(void **state)
{
	struct fixture *f = *state;

	reinit(f, 8, 0);
	/* Nothing pushed yet: nothing to signal. */
	f->vq.signalled_used_valid = true;
	assert_false(virtq_needs_interrupt(&f->vq));
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq));
	assert_false(virtq_needs_interrupt(&f->vq)); /* nothing new since */
	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	assert_int_equal(virtq_push(&f->vq, 1, 0), 0);
	assert_false(virtq_needs_interrupt(&f->vq));
	avail(f)->flags = 0;
	assert_int_equal(virtq_push(&f->vq, 2, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq));
}

static void test_interrupt_event_idx(void **state)
{
	struct fixture *f = *state;

	/* The flag means nothing with EVENT_IDX; used_event does. */
	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	*used_event(f) = 2; /* interrupt when used idx passes 2, i.e. becomes 3 */
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq)); /* first decision: always */
	assert_int_equal(virtq_push(&f->vq, 1, 0), 0);
	assert_false(virtq_needs_interrupt(&f->vq)); /* idx 2 */
	assert_int_equal(virtq_push(&f->vq, 2, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq)); /* idx 3: crossed used_event */
	assert_int_equal(virtq_push(&f->vq, 3, 0), 0);
	assert_false(virtq_needs_interrupt(&f->vq)); /* idx 4: already signalled past it */
	/* Several pushes at once that jump over used_event still signal. */
	*used_event(f) = 5;
	assert_int_equal(virtq_push(&f->vq, 4, 0), 0);
	assert_int_equal(virtq_push(&f->vq, 5, 0), 0);
	assert_int_equal(virtq_push(&f->vq, 6, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq)); /* 4 -> 7 covers 6 */
	/* Across the 16-bit wrap. */
	*used_event(f) = 65535;
	f->vq.used_idx = 65534;
	f->vq.signalled_used = 65534;
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_false(virtq_needs_interrupt(&f->vq)); /* 65535 */
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_true(virtq_needs_interrupt(&f->vq)); /* 0 */
}

static void test_notify_flags(void **state)
{
	struct fixture *f = *state;

	reinit(f, 8, 0);
	virtq_disable_notify(&f->vq);
	assert_int_equal(used(f)->flags, VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtq_enable_notify(&f->vq));
	assert_int_equal(used(f)->flags, 0);
	/* A buffer that arrived while kicks were off is reported on enable. */
	virtq_disable_notify(&f->vq);
	set_desc(desc_table(f), 0, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	assert_true(virtq_enable_notify(&f->vq));
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_false(virtq_enable_notify(&f->vq));
}

static void test_notify_event_idx(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 3; i++)
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(*avail_event(f), 1); /* kick me at the next entry */
	virtq_disable_notify(&f->vq);
	assert_int_equal(used(f)->flags, 0); /* flags unused with EVENT_IDX */
	publish(f, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(*avail_event(f), 1); /* not moved while disabled */
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	assert_false(virtq_enable_notify(&f->vq));
	assert_int_equal(*avail_event(f), 2);
	publish(f, 2);
	virtq_disable_notify(&f->vq);
	assert_true(virtq_enable_notify(&f->vq));
	/* An empty pop with kicks wanted publishes avail_event as well. */
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	assert_int_equal(*avail_event(f), 3);
}

static void test_suppress_notify(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 2; i++)
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
	assert_false(virtq_avail_pending(&f->vq));
	publish(f, 0);
	assert_true(virtq_avail_pending(&f->vq));
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_false(virtq_avail_pending(&f->vq));
	virtq_suppress_notify(&f->vq);
	assert_int_equal(*avail_event(f), 0); /* behind 1: the next buffer does not kick */
	publish(f, 1);
	assert_true(virtq_avail_pending(&f->vq));
	assert_true(virtq_enable_notify(&f->vq));
	assert_int_equal(*avail_event(f), 2);
}

/* ---- guest violations: each breaks the queue ---- */

static void test_avail_idx_jump(void **state)
{
	struct fixture *f = *state;

	avail(f)->idx = 9; /* 9 new entries in an 8-entry ring */
	expect_broken(f, "avail idx 9");
}

static void test_avail_idx_backwards(void **state)
{
	struct fixture *f = *state;

	virtq_set_base(&f->vq, 100);
	avail(f)->idx = 99; /* reads as 65535 entries ahead */
	expect_broken(f, "ahead");
}

static void test_head_out_of_range(void **state)
{
	struct fixture *f = *state;

	publish(f, 8);
	expect_broken(f, "head 8 is not below the queue size 8");
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 200);
	publish(f, 0);
	expect_broken(f, "next 200");
}

/* The bound is the queue size itself: next == size is one past the table
 * (virtio 1.2 §2.7.5), next == size - 1 is its last entry. */
static void test_next_at_queue_size(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	/* Entry 8 lies just past the 8-entry table; make it look like a valid
	 * buffer so only the bound check can refuse it. */
	set_desc(d, 8, BUF_GPA, 1, 0, 0);
	set_desc(d, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 8);
	publish(f, 0);
	expect_broken(f, "next 8");
}

static void test_next_last_entry(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	set_desc(d, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 7);
	set_desc(d, 7, BUF_GPA, 2, 0, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.nr_descriptors, 2);
	assert_int_equal(f->chain.readable_bytes, 3);
}

static void test_chain_loop(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	set_desc(d, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(d, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 2);
	set_desc(d, 2, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0);
	expect_broken(f, "loops");
}

static void test_chain_self_loop_zero_length(void **state)
{
	struct fixture *f = *state;

	/* Zero-length descriptors add no segment but still count. */
	set_desc(desc_table(f), 4, 0, 0, VIRTQ_DESC_F_NEXT, 4);
	publish(f, 4);
	expect_broken(f, "loops");
}

static void test_readable_after_writable(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	set_desc(d, 0, BUF_GPA, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(d, 1, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	expect_broken(f, "device-readable after a device-writable");
}

static void test_readable_after_zero_length_writable(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *d = desc_table(f);

	set_desc(d, 0, BUF_GPA, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(d, 1, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	expect_broken(f, "device-readable after");
}

static void test_buffer_outside_memory(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, GAP_GPA + 0x1000, 16, 0, 0);
	publish(f, 0);
	expect_broken(f, "not inside one guest memory region");
}

static void test_buffer_past_end_of_region(void **state)
{
	struct fixture *f = *state;

	/* Starts in A, ends in the gap. */
	set_desc(desc_table(f), 0, A_SIZE - 8, 16, 0, 0);
	publish(f, 0);
	expect_broken(f, "not inside one guest memory region");
}

static void test_buffer_straddles_regions(void **state)
{
	struct fixture *f = *state;

	/* B and C are both RAM and adjacent in GPA, but not on the host. */
	set_desc(desc_table(f), 0, C_GPA - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	expect_broken(f, "not inside one guest memory region");
}

static void test_buffer_gpa_overflow(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, ~0ull - 0xf, 0x20, 0, 0);
	publish(f, 0);
	expect_broken(f, "overflows");
}

static void test_chain_length_overflow(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);

	/* 1024 readable buffers of 4 MiB (all of A, reused) are 4 GiB: one
	 * byte more than a used length can say. */
	for (unsigned i = 0; i < 1024; i++)
		set_desc(t, i, A_GPA, (uint32_t)A_SIZE, i < 1023 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	set_desc(desc_table(f), 0, TABLE_GPA, 1024 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "exceeds 4 GiB");
}

static void test_too_many_segments(void **state)
{
	struct fixture *f = *state;
	struct virtq_segment few[2];
	struct virtq_desc *d = desc_table(f);

	virtq_chain_init(&f->chain, few, 2);
	set_desc(d, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(d, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 2);
	set_desc(d, 2, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	expect_broken(f, "more than 2 buffers");
}

static void test_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;

	reinit(f, 8, 1ull << VIRTIO_F_EVENT_IDX);
	set_desc(host(f, TABLE_GPA), 0, BUF_GPA, 1, 0, 0);
	set_desc(desc_table(f), 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "without VIRTIO_F_INDIRECT_DESC");
}

static void test_indirect_with_next(void **state)
{
	struct fixture *f = *state;

	set_desc(host(f, TABLE_GPA), 0, BUF_GPA, 1, 0, 0);
	set_desc(desc_table(f), 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	set_desc(desc_table(f), 1, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	expect_broken(f, "both INDIRECT and NEXT");
}

static void test_indirect_bad_length(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lens[] = {0, 8, 24, 17};

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		reinit(f, 8, FEATURES);
		set_desc(desc_table(f), 0, TABLE_GPA, lens[i], VIRTQ_DESC_F_INDIRECT, 0);
		publish(f, 0);
		expect_broken(f, "multiple of 16");
	}
}

static void test_indirect_too_large(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, A_GPA, (VIRTQ_MAX_INDIRECT + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "indirect table of 32769 entries");
}

static void test_indirect_table_outside_memory(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, C_GPA - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "indirect table");
}

static void test_indirect_nested(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);

	set_desc(t, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(desc_table(f), 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "inside an indirect table");
}

static void test_indirect_next_out_of_table(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);

	set_desc(t, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 2); /* table has 2 entries */
	set_desc(desc_table(f), 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "outside its table");
}

static void test_indirect_loop(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);

	set_desc(t, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	set_desc(desc_table(f), 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "indirect chain loops");
}

static void test_indirect_readable_after_writable(void **state)
{
	struct fixture *f = *state;
	struct virtq_desc *t = host(f, TABLE_GPA);

	/* The order rule spans the direct and indirect parts. */
	set_desc(t, 0, BUF_GPA, 1, 0, 0);
	set_desc(desc_table(f), 0, BUF_GPA, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(desc_table(f), 1, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0);
	expect_broken(f, "indirect descriptor 0 is device-readable after");
}

static void test_broken_is_sticky_for_notify(void **state)
{
	struct fixture *f = *state;

	avail(f)->idx = 100;
	expect_broken(f, "ahead");
	assert_false(virtq_enable_notify(&f->vq));
	assert_false(virtq_needs_interrupt(&f->vq));
	assert_int_equal(virtq_get_chain(&f->vq, 0, &f->chain), -EIO);
}

/* ---- inflight tracking (vhost-user.rst "Inflight I/O tracking") ---- */

struct inflight_buf {
	uint64_t bytes[(16 + 16 * 8 + 64) / 8];
};

static struct virtq_inflight_region *attach_inflight(struct fixture *f, struct inflight_buf *buf)
{
	struct virtq_inflight_region *r = (struct virtq_inflight_region *)buf;

	assert_true(virtq_inflight_queue_bytes(8) <= sizeof(*buf));
	assert_int_equal(virtq_set_inflight(&f->vq, r, virtq_inflight_queue_bytes(8)), 0);
	return r;
}

static void test_inflight_bad_attach(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf;

	assert_int_equal(virtq_set_inflight(&f->vq, &buf, 16 + 16 * 7), -EINVAL);
	assert_int_equal(virtq_set_inflight(&f->vq, (uint8_t *)&buf + 4, sizeof(buf) - 4), -EINVAL);
	assert_int_equal(virtq_set_inflight(&f->vq, NULL, 0), 0);
	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	uint16_t heads[1];
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 1), -EINVAL);
}

static void test_inflight_fresh_region(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf;
	struct virtq_inflight_region *r;

	memset(&buf, 0xa5, sizeof(buf));
	r = attach_inflight(f, &buf);
	r->version = 0;
	used(f)->idx = 0;
	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	assert_int_equal(r->version, VIRTQ_INFLIGHT_VERSION);
	assert_int_equal(r->desc_num, 8);
	assert_int_equal(r->features, 0);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(r->desc[i].inflight, 0);
}

static void test_inflight_mark_and_clear(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf = {{0}};
	struct virtq_inflight_region *r = attach_inflight(f, &buf);

	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	for (unsigned i = 0; i < 8; i++)
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
	publish(f, 2);
	publish(f, 5);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(r->desc[2].inflight, 1);
	assert_int_equal(r->desc[5].inflight, 1);
	assert_true(r->desc[2].counter < r->desc[5].counter);

	assert_int_equal(virtq_push(&f->vq, 5, 0), 0);
	assert_int_equal(r->desc[2].inflight, 1);
	assert_int_equal(r->desc[5].inflight, 0);
	assert_int_equal(r->last_batch_head, 5);
	assert_int_equal(r->used_idx, 1);

	struct virtq_used_elem e = {2, 0};
	assert_int_equal(virtq_push_batch(&f->vq, &e, 1), 0);
	assert_int_equal(r->desc[2].inflight, 0);
	assert_int_equal(r->desc[2].next, 5); /* batch list: 2 -> 5 */
	assert_int_equal(r->last_batch_head, 2);
	assert_int_equal(r->used_idx, 2);
}

/* A server popped heads 6, 1, 4 in that order, completed only 1, and died;
 * the driver has since queued head 3.  The restarted server resubmits 6 and
 * 4, in that order, once, and then pops 3. */
static void test_inflight_resubmit(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf = {{0}};
	struct virtq_inflight_region *r = attach_inflight(f, &buf);
	uint16_t heads[8];

	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	for (unsigned i = 0; i < 8; i++)
		set_desc(desc_table(f), i, BUF_GPA + i, 1, 0, 0);
	publish(f, 6);
	publish(f, 1);
	publish(f, 4);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_push(&f->vq, 1, 0), 0);
	publish(f, 3);

	/* The new instance: fresh struct virtq on the same memory and region,
	 * told base 1 (= used->idx) by a frontend that could not ask. */
	reinit(f, 8, FEATURES);
	virtq_set_base(&f->vq, 1);
	assert_ptr_equal(attach_inflight(f, &buf), r);
	assert_int_equal(virtq_inflight_recover(&f->vq), 2);
	assert_int_equal(virtq_get_base(&f->vq), 3);
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 1), -ENOSPC);
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 8), 2);
	assert_int_equal(heads[0], 6);
	assert_int_equal(heads[1], 4);
	assert_int_equal(virtq_get_chain(&f->vq, heads[0], &f->chain), 0);
	assert_ptr_equal(f->chain.segments[0].host, host(f, BUF_GPA + 6));
	assert_int_equal(virtq_push(&f->vq, 6, 0), 0);
	assert_int_equal(virtq_push(&f->vq, 4, 0), 0);
	/* New pops come after the recovered ones and are counted after them. */
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	assert_int_equal(r->desc[3].inflight, 1);
	assert_true(r->desc[3].counter > r->desc[4].counter);
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 8), 1);
	assert_int_equal(heads[0], 3);
}

/* Died after publishing used->idx but before clearing the batch's flags. */
static void test_inflight_unfinished_batch(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf = {{0}};
	struct virtq_inflight_region *r = attach_inflight(f, &buf);
	struct virtq_used_elem e[2] = {{0, 0}, {2, 0}};
	uint16_t heads[8];

	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	for (unsigned i = 0; i < 8; i++)
		set_desc(desc_table(f), i, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	publish(f, 2);
	publish(f, 7);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_push_batch(&f->vq, e, 2), 0);
	/* Roll the region back to the moment after used->idx was published. */
	r->desc[0].inflight = 1;
	r->desc[2].inflight = 1;
	r->used_idx = 0;

	reinit(f, 8, FEATURES);
	attach_inflight(f, &buf);
	assert_int_equal(virtq_inflight_recover(&f->vq), 1);
	assert_int_equal(r->used_idx, 2);
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 8), 1);
	assert_int_equal(heads[0], 7);
	assert_int_equal(virtq_get_base(&f->vq), 3);
}

static void test_inflight_corrupt_region(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf = {{0}};
	struct virtq_inflight_region *r = attach_inflight(f, &buf);

	r->version = 1;
	r->desc_num = 16;
	assert_int_equal(virtq_inflight_recover(&f->vq), -EIO);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "inflight region is for 16"));

	reinit(f, 8, FEATURES);
	attach_inflight(f, &buf);
	r->desc_num = 8;
	used(f)->idx = 2;
	r->used_idx = 0;
	r->last_batch_head = 9;
	assert_int_equal(virtq_inflight_recover(&f->vq), -EIO);
	assert_non_null(strstr(virtq_broken_reason(&f->vq), "batch entry 9"));

	reinit(f, 8, FEATURES);
	attach_inflight(f, &buf);
	r->used_idx = 100; /* a last batch of 65438 */
	assert_int_equal(virtq_inflight_recover(&f->vq), -EIO);

	/* A cyclic batch list is walked at most batch-size times. */
	reinit(f, 8, FEATURES);
	attach_inflight(f, &buf);
	r->used_idx = 0;
	r->last_batch_head = 1;
	r->desc[1].next = 1;
	r->desc[1].inflight = 1;
	r->desc[3].inflight = 1;
	assert_int_equal(virtq_inflight_recover(&f->vq), 1);
}

/* ---- virtq_unpop, virtq_fail (the device gives a chain back / finds a
 * violation in one) ---- */

/* The driver's side of §2.7.10 with EVENT_IDX: whether moving avail->idx
 * from old to new must kick, given the device's avail_event. */
static bool driver_must_kick(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static void test_unpop_returns_the_same_chain(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 4, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 6);
	set_desc(desc_table(f), 6, BUF_GPA + 0x100, 32, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 4);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_get_base(&f->vq), 1);
	assert_int_equal(virtq_unpop(&f->vq, 4), 0);
	assert_int_equal(virtq_get_base(&f->vq), 0);
	assert_true(virtq_avail_pending(&f->vq));
	virtq_chain_init(&f->chain, f->segs, VIRTQ_MAX_SEGMENTS);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 4);
	assert_int_equal(f->chain.nr_segments, 2);
	assert_int_equal(f->chain.writable_bytes, 32);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	/* and it completes like any other */
	assert_int_equal(virtq_push(&f->vq, 4, 0), 0);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 4);
	assert_false(virtq_is_broken(&f->vq));
}

/* Several chains given back newest first come out again in ring order. */
static void test_unpop_several_in_reverse(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 3; i++) {
		set_desc(desc_table(f), i, BUF_GPA + i, 1, VIRTQ_DESC_F_WRITE, 0);
		publish(f, (uint16_t)(2 - i));
	}
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_unpop(&f->vq, 0), 0);
	assert_int_equal(virtq_unpop(&f->vq, 1), 0);
	assert_int_equal(virtq_get_base(&f->vq), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
}

/* Across the 16-bit wrap of the avail index. */
static void test_unpop_index_wraparound(void **state)
{
	struct fixture *f = *state;

	f->avail_idx = 0xffff;
	avail(f)->idx = 0xffff;
	virtq_set_base(&f->vq, 0xffff);
	set_desc(desc_table(f), 1, BUF_GPA, 1, 0, 0);
	set_desc(desc_table(f), 2, BUF_GPA, 1, 0, 0);
	publish(f, 1);
	publish(f, 2);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_get_base(&f->vq), 1);
	assert_int_equal(virtq_unpop(&f->vq, 2), 0);
	assert_int_equal(virtq_unpop(&f->vq, 1), 0);
	assert_int_equal(virtq_get_base(&f->vq), 0xffff);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 1);
}

/* Inflight tracking: the mark is cleared (a restarted server must not
 * resubmit a chain it never used), and set again by the next pop. */
static void test_unpop_clears_inflight(void **state)
{
	struct fixture *f = *state;
	struct inflight_buf buf = {{0}};
	struct virtq_inflight_region *r = attach_inflight(f, &buf);
	uint16_t heads[8];

	assert_int_equal(virtq_inflight_recover(&f->vq), 0);
	set_desc(desc_table(f), 3, BUF_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc(desc_table(f), 5, BUF_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 3);
	publish(f, 5);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_unpop(&f->vq, 5), 0);
	assert_int_equal(r->desc[5].inflight, 0);
	assert_int_equal(r->desc[3].inflight, 1);
	/* what a new instance would resubmit now: 3 only */
	assert_int_equal(virtq_inflight_resubmit_list(&f->vq, heads, 8), 1);
	assert_int_equal(heads[0], 3);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 5);
	assert_int_equal(r->desc[5].inflight, 1);
}

/*
 * §2.7.10 with EVENT_IDX: a device that gives chains back and then waits
 * for a kick (isola-net's receive ring, short of buffers for a frame) must
 * still be kicked when the driver adds the next buffer.  avail_event must
 * not move back below what the driver already published: the driver kicks
 * only when its new index passes avail_event, and it has.
 */
static void test_unpop_keeps_kicks_coming(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 3; i++)
		set_desc(desc_table(f), i, BUF_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0);
	virtq_disable_notify(&f->vq);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	/* not enough: ask for a kick, then give the chain back */
	assert_false(virtq_enable_notify(&f->vq));
	assert_int_equal(virtq_unpop(&f->vq, 0), 0);
	/* the driver adds one buffer: idx 1 -> 2 */
	publish(f, 1);
	if (!driver_must_kick(*avail_event(f), 2, 1))
		fail_msg("avail_event %u after virtq_unpop: the driver moving avail->idx 1 -> 2 "
			 "does not kick, and the device waits for that kick",
			 *avail_event(f));
	/* the same without the kick request in between: pop, unpop, enable */
	publish(f, 2);
	virtq_disable_notify(&f->vq);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_unpop(&f->vq, 0), 0);
	assert_true(virtq_enable_notify(&f->vq)); /* three are there */
}

/* Misuse by the device (a server bug, not the guest's): nothing to give
 * back is refused with -EINVAL and changes nothing. */
static void test_unpop_misuse(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, BUF_GPA, 1, 0, 0);
	set_desc(desc_table(f), 1, BUF_GPA, 1, 0, 0);
	/* nothing popped yet */
	assert_int_equal(virtq_unpop(&f->vq, 0), -EINVAL);
	assert_int_equal(virtq_get_base(&f->vq), 0);
	/* a head outside the ring */
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_unpop(&f->vq, 8), -EINVAL);
	assert_int_equal(virtq_unpop(&f->vq, 0xffff), -EINVAL);
	assert_int_equal(virtq_get_base(&f->vq), 1);
	/* twice for one pop */
	assert_int_equal(virtq_unpop(&f->vq, 0), 0);
	assert_int_equal(virtq_unpop(&f->vq, 0), -EINVAL);
	assert_int_equal(virtq_get_base(&f->vq), 0);
	/* after the chain was pushed: the driver owns it again */
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_push(&f->vq, 0, 0), 0);
	assert_int_equal(virtq_unpop(&f->vq, 0), -EINVAL);
	assert_int_equal(virtq_get_base(&f->vq), 1);
	/* after a push of another chain, a later pop can still be given back */
	publish(f, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_unpop(&f->vq, 1), 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(f->chain.head, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 0);
	/* a new base (queue restart) leaves nothing to give back */
	virtq_set_base(&f->vq, virtq_get_base(&f->vq));
	assert_int_equal(virtq_unpop(&f->vq, 1), -EINVAL);
	assert_false(virtq_is_broken(&f->vq));
}

static void test_unpop_broken(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_int_equal(virtq_fail(&f->vq, "test"), -EIO);
	assert_int_equal(virtq_unpop(&f->vq, 0), -EIO);
	assert_int_equal(virtq_get_base(&f->vq), 1);
}

static void test_fail_breaks_with_reason(void **state)
{
	struct fixture *f = *state;

	set_desc(desc_table(f), 0, BUF_GPA, 1, 0, 0);
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), 1);
	assert_false(virtq_is_broken(&f->vq));
	assert_int_equal(virtq_fail(&f->vq, "transmit chain %u has device-writable descriptors", 7),
			 -EIO);
	assert_true(virtq_is_broken(&f->vq));
	assert_string_equal(virtq_broken_reason(&f->vq),
			    "transmit chain 7 has device-writable descriptors");
	/* broken as for a violation virtq_pop finds: everything refuses */
	publish(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->chain), -EIO);
	assert_int_equal(virtq_push(&f->vq, 0, 0), -EIO);
	assert_int_equal(virtq_get_chain(&f->vq, 0, &f->chain), -EIO);
	assert_false(virtq_enable_notify(&f->vq));
	assert_int_equal(used(f)->idx, 0);
	/* the first reason stays */
	assert_int_equal(virtq_fail(&f->vq, "second %s", "reason"), -EIO);
	assert_string_equal(virtq_broken_reason(&f->vq),
			    "transmit chain 7 has device-writable descriptors");
}

static void test_fail_long_reason_and_after_pop_violation(void **state)
{
	struct fixture *f = *state;
	char longer[2 * VIRTQ_REASON_SIZE];

	/* cut to the buffer, terminated */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	assert_int_equal(virtq_fail(&f->vq, "%s", longer), -EIO);
	assert_int_equal(strlen(virtq_broken_reason(&f->vq)), VIRTQ_REASON_SIZE - 1);

	/* a queue the pop broke keeps the pop's reason */
	reinit(f, 8, FEATURES);
	avail(f)->idx = 100;
	expect_broken(f, "ahead");
	assert_int_equal(virtq_fail(&f->vq, "device's reason"), -EIO);
	assert_null(strstr(virtq_broken_reason(&f->vq), "device's reason"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_init_queue_size),
	    T(test_init_alignment),
	    T(test_init_rings_in_memory),
	    T(test_init_rings_overlap),
	    T(test_init_reads_used_idx),
	    T(test_init_resets_notify_state),
	    T(test_set_get_base),
	    T(test_pop_empty),
	    T(test_pop_single),
	    T(test_pop_chained_and_push),
	    T(test_zero_length_descriptor),
	    T(test_chain_of_queue_size),
	    T(test_full_ring),
	    T(test_indirect),
	    T(test_indirect_unaligned_table_after_direct),
	    T(test_index_wraparound),
	    T(test_push_batch),
	    T(test_interrupt_flags),
	    T(test_interrupt_event_idx),
	    T(test_notify_flags),
	    T(test_notify_event_idx),
	    T(test_suppress_notify),
	    T(test_avail_idx_jump),
	    T(test_avail_idx_backwards),
	    T(test_head_out_of_range),
	    T(test_next_out_of_range),
	    T(test_next_at_queue_size),
	    T(test_next_last_entry),
	    T(test_chain_loop),
	    T(test_chain_self_loop_zero_length),
	    T(test_readable_after_writable),
	    T(test_readable_after_zero_length_writable),
	    T(test_buffer_outside_memory),
	    T(test_buffer_past_end_of_region),
	    T(test_buffer_straddles_regions),
	    T(test_buffer_gpa_overflow),
	    T(test_chain_length_overflow),
	    T(test_too_many_segments),
	    T(test_indirect_not_negotiated),
	    T(test_indirect_with_next),
	    T(test_indirect_bad_length),
	    T(test_indirect_too_large),
	    T(test_indirect_table_outside_memory),
	    T(test_indirect_nested),
	    T(test_indirect_next_out_of_table),
	    T(test_indirect_loop),
	    T(test_indirect_readable_after_writable),
	    T(test_broken_is_sticky_for_notify),
	    T(test_inflight_bad_attach),
	    T(test_inflight_fresh_region),
	    T(test_inflight_mark_and_clear),
	    T(test_inflight_resubmit),
	    T(test_inflight_unfinished_batch),
	    T(test_inflight_corrupt_region),
	    T(test_unpop_returns_the_same_chain),
	    T(test_unpop_several_in_reverse),
	    T(test_unpop_index_wraparound),
	    T(test_unpop_clears_inflight),
	    T(test_unpop_keeps_kicks_coming),
	    T(test_unpop_misuse),
	    T(test_unpop_broken),
	    T(test_fail_breaks_with_reason),
	    T(test_fail_long_reason_and_after_pop_violation),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
