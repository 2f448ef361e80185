// SPDX-License-Identifier: MIT
/*
 * Split virtqueues, device side (virtio 1.2 §2.7).  The rules enforced and
 * the barrier placement are explained in docs/virtq.md.
 *
 * Everything in the rings and the buffers is guest memory that the guest may
 * change at any moment: each field is loaded once into a local (atomically,
 * or memcpy + compiler barrier) and only the local copy is checked and used.
 */
#include "lib/virtq.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");
_Static_assert(sizeof(struct virtq_desc) == 16, "virtio 1.2 §2.7.5");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtio 1.2 §2.7.8");
_Static_assert(sizeof(struct virtq_inflight_desc) == 16, "vhost-user.rst: DescStateSplit");
_Static_assert(sizeof(struct virtq_inflight_region) == 16, "vhost-user.rst: QueueRegionSplit");

__attribute__((format(printf, 2, 3))) static int virtq_break(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	if (!vq->broken) {
		va_start(ap, fmt);
		vsnprintf(vq->reason, sizeof(vq->reason), fmt, ap);
		va_end(ap);
		vq->broken = true;
	}
	return -EIO;
}

bool virtq_is_broken(const struct virtq *vq)
{
	return vq->broken;
}

const char *virtq_broken_reason(const struct virtq *vq)
{
	return vq->broken ? vq->reason : "";
}

static uint16_t *virtq_used_event(const struct virtq *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *virtq_avail_event(const struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* Map one ring: whole size in one region, aligned both as a GPA and on the host. */
static void *virtq_map_ring(struct virtq *vq, const char *name, uint64_t gpa, uint64_t bytes,
			    uint64_t align)
{
	void *host;

	if (gpa & (align - 1)) {
		virtq_break(vq, "%s ring at 0x%llx is not %llu-byte aligned", name,
			    (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	host = gmem_ptr(vq->mem, gpa, bytes);
	if (!host) {
		virtq_break(vq, "%s ring [0x%llx, +%llu) is not inside one guest memory region",
			    name, (unsigned long long)gpa, (unsigned long long)bytes);
		return NULL;
	}
	if ((uintptr_t)host & (align - 1)) {
		virtq_break(vq, "%s ring at 0x%llx is mapped misaligned", name,
			    (unsigned long long)gpa);
		return NULL;
	}
	return host;
}

/* Ranges are already known not to wrap (gmem_ptr checked them). */
static bool virtq_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

/*
 * Rings that overlap make no sense, and one case is a trap: a used ring
 * over the avail ring turns each push into a new avail entry, so the device
 * would feed itself forever on one kick.
 */
static int virtq_check_overlap(struct virtq *vq)
{
	uint64_t d = virtq_desc_bytes(vq->size), a = virtq_avail_bytes(vq->size);
	uint64_t u = virtq_used_bytes(vq->size);

	if (virtq_overlap(vq->desc_gpa, d, vq->avail_gpa, a) ||
	    virtq_overlap(vq->desc_gpa, d, vq->used_gpa, u) ||
	    virtq_overlap(vq->avail_gpa, a, vq->used_gpa, u))
		return virtq_break(vq,
				   "rings overlap: descriptors 0x%llx, available 0x%llx, "
				   "used 0x%llx",
				   (unsigned long long)vq->desc_gpa,
				   (unsigned long long)vq->avail_gpa,
				   (unsigned long long)vq->used_gpa);
	return 0;
}

int virtq_init(struct virtq *vq, const struct gmem *mem, unsigned size, uint64_t desc_gpa,
	       uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	/* §2.7: "Queue Size value is always a power of 2. The maximum Queue
	 * Size value is 32768." */
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
		virtq_break(vq, "queue size %u is not a power of two up to %u", size,
			    VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	/* §2.7 table "Virtqueue Part Alignment": desc 16, avail 2, used 4. */
	vq->desc = virtq_map_ring(vq, "descriptor", desc_gpa, virtq_desc_bytes(size), 16);
	if (vq->desc)
		vq->avail = virtq_map_ring(vq, "available", avail_gpa, virtq_avail_bytes(size), 2);
	if (vq->avail)
		vq->used = virtq_map_ring(vq, "used", used_gpa, virtq_used_bytes(size), 4);
	if (!vq->used || virtq_check_overlap(vq)) {
		vq->used = NULL;
		vq->desc = NULL;
		vq->avail = NULL;
		return -EINVAL;
	}
	vq->event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
	vq->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	/* Kicks wanted: a previous server instance may have left
	 * VIRTQ_USED_F_NO_NOTIFY set, and a driver that obeys it would never
	 * kick us (§2.7.10; with EVENT_IDX flags must be 0 anyway). */
	vq->notify_enabled = true;
	vq->used_flags = 0;
	__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	/* The used ring is the device's; continue from what it says (a
	 * restarted server, or a fresh ring the driver zeroed). */
	vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED);
	vq->signalled_used = vq->used_idx;
	return 0;
}

void virtq_set_base(struct virtq *vq, uint16_t last_avail_idx)
{
	vq->last_avail_idx = last_avail_idx;
	vq->shadow_avail_idx = last_avail_idx;
	vq->unpoppable = 0;
	/* A stale avail_event (from before a restart or migration) would
	 * keep the driver from kicking at the next entry. */
	if (vq->used && vq->event_idx && vq->notify_enabled)
		__atomic_store_n(virtq_avail_event(vq), last_avail_idx, __ATOMIC_RELAXED);
}

uint16_t virtq_get_base(const struct virtq *vq)
{
	return vq->last_avail_idx;
}

void virtq_chain_init(struct virtq_chain *chain, struct virtq_segment *segments,
		      uint32_t max_segments)
{
	memset(chain, 0, sizeof(*chain));
	chain->segments = segments;
	chain->max_segments = max_segments;
}

/* One snapshot of a descriptor (which may be unaligned in an indirect table). */
static void virtq_load_desc(struct virtq_desc *dst, const struct virtq_desc *src)
{
	memcpy(dst, src, sizeof(*dst));
	/* Use only the copy from here on: the guest may rewrite the original. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

struct virtq_walk {
	struct virtq *vq;
	struct virtq_chain *chain;
	bool seen_writable;
};

/* Add one buffer descriptor (not an indirect one) to the chain. */
static int virtq_add_buffer(struct virtq_walk *w, const struct virtq_desc *d, const char *table,
			    unsigned idx)
{
	struct virtq_chain *c = w->chain;
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	struct virtq_segment *seg;
	void *host;

	/* §2.7.4.2: device-writable descriptors come after the readable ones. */
	if (!writable && w->seen_writable)
		return virtq_break(w->vq,
				   "head %u: %s descriptor %u is device-readable after a "
				   "device-writable one",
				   c->head, table, idx);
	if (writable)
		w->seen_writable = true;
	if (d->len == 0)
		return 0; /* valid, and carries nothing */
	if (d->addr + d->len < d->addr)
		return virtq_break(w->vq,
				   "head %u: %s descriptor %u: address 0x%llx + length %u "
				   "overflows",
				   c->head, table, idx, (unsigned long long)d->addr, d->len);
	host = gmem_ptr(w->vq->mem, d->addr, d->len);
	if (!host)
		return virtq_break(w->vq,
				   "head %u: %s descriptor %u: buffer [0x%llx, +%u) is not "
				   "inside one guest memory region",
				   c->head, table, idx, (unsigned long long)d->addr, d->len);
	/* §2.7.5.2: a chain is at most 2^32 bytes in total; we keep it within
	 * what a u32 (the used length) can say. */
	if (d->len > UINT32_MAX - ((uint64_t)c->readable_bytes + c->writable_bytes))
		return virtq_break(w->vq, "head %u: chain length exceeds 4 GiB", c->head);
	if (c->nr_segments >= c->max_segments)
		return virtq_break(w->vq, "head %u: chain has more than %u buffers", c->head,
				   c->max_segments);
	seg = &c->segments[c->nr_segments++];
	seg->host = host;
	seg->len = d->len;
	seg->device_writable = writable;
	if (writable) {
		c->writable_bytes += d->len;
	} else {
		c->readable_bytes += d->len;
		c->nr_readable++;
	}
	return 0;
}

/* §2.7.5.3: walk the indirect table that descriptor d (already copied) points to. */
static int virtq_walk_indirect(struct virtq_walk *w, const struct virtq_desc *d)
{
	struct virtq_chain *c = w->chain;
	const struct virtq_desc *table;
	struct virtq_desc cur;
	unsigned entries, idx = 0, visited = 0;

	if (!w->vq->indirect)
		return virtq_break(w->vq,
				   "head %u: indirect descriptor without "
				   "VIRTIO_F_INDIRECT_DESC",
				   c->head);
	/* §2.7.5.3.1: INDIRECT and NEXT together are invalid. */
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return virtq_break(w->vq, "head %u: descriptor has both INDIRECT and NEXT",
				   c->head);
	if (d->len == 0 || d->len % sizeof(struct virtq_desc))
		return virtq_break(w->vq,
				   "head %u: indirect table length %u is not a non-zero "
				   "multiple of 16",
				   c->head, d->len);
	entries = d->len / sizeof(struct virtq_desc);
	if (entries > VIRTQ_MAX_INDIRECT)
		return virtq_break(w->vq, "head %u: indirect table of %u entries (max %u)", c->head,
				   entries, VIRTQ_MAX_INDIRECT);
	table = gmem_ptr(w->vq->mem, d->addr, d->len);
	if (!table)
		return virtq_break(w->vq,
				   "head %u: indirect table [0x%llx, +%u) is not inside "
				   "one guest memory region",
				   c->head, (unsigned long long)d->addr, d->len);
	/* §2.7.5.3: the table starts at index 0.  §2.7.5.3.2: the WRITE flag
	 * of the descriptor pointing to it is ignored, and it may end a chain
	 * of normal descriptors. */
	for (;;) {
		int ret;

		if (++visited > entries)
			return virtq_break(w->vq,
					   "head %u: indirect chain loops or is longer than "
					   "its table (%u entries)",
					   c->head, entries);
		virtq_load_desc(&cur, &table[idx]);
		c->nr_descriptors++;
		/* §2.7.5.3.1: no INDIRECT inside an indirect table. */
		if (cur.flags & VIRTQ_DESC_F_INDIRECT)
			return virtq_break(w->vq,
					   "head %u: indirect descriptor %u inside an "
					   "indirect table",
					   c->head, idx);
		ret = virtq_add_buffer(w, &cur, "indirect", idx);
		if (ret)
			return ret;
		if (!(cur.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (cur.next >= entries)
			return virtq_break(w->vq,
					   "head %u: indirect descriptor %u: next %u is "
					   "outside its table of %u",
					   c->head, idx, cur.next, entries);
		idx = cur.next;
	}
}

/* Walk the chain at head into *chain, checking every rule. 0 or -EIO. */
static int virtq_walk_chain(struct virtq *vq, uint16_t head, struct virtq_chain *chain)
{
	struct virtq_walk w = {.vq = vq, .chain = chain};
	struct virtq_desc cur;
	unsigned idx = head, visited = 0;

	chain->head = head;
	chain->nr_segments = 0;
	chain->nr_readable = 0;
	chain->readable_bytes = 0;
	chain->writable_bytes = 0;
	chain->nr_descriptors = 0;
	if (head >= vq->size)
		return virtq_break(vq, "head %u is not below the queue size %u", head, vq->size);
	for (;;) {
		int ret;

		/* §2.7.5.3.1: a chain is never longer than the queue size;
		 * counting visits also catches loops (§2.7.5.2). */
		if (++visited > vq->size)
			return virtq_break(vq,
					   "head %u: chain loops or is longer than the queue "
					   "size %u",
					   head, vq->size);
		virtq_load_desc(&cur, &vq->desc[idx]);
		chain->nr_descriptors++;
		if (cur.flags & VIRTQ_DESC_F_INDIRECT)
			return virtq_walk_indirect(&w, &cur);
		ret = virtq_add_buffer(&w, &cur, "direct", idx);
		if (ret)
			return ret;
		if (!(cur.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (cur.next >= vq->size)
			return virtq_break(vq,
					   "head %u: descriptor %u: next %u is not below the "
					   "queue size %u",
					   head, idx, cur.next, vq->size);
		idx = cur.next;
	}
}

/* Record the consumed head in the inflight region (vhost-user.rst,
 * "When receiving available buffers from the driver"). */
static void virtq_inflight_mark(struct virtq *vq, uint16_t head)
{
	struct virtq_inflight_desc *d = &vq->inflight->desc[head];

	__atomic_store_n(&d->counter, vq->inflight_counter++, __ATOMIC_RELAXED);
	/* The counter is in place before the head counts as inflight. */
	__atomic_store_n(&d->inflight, 1, __ATOMIC_RELEASE);
}

/* Re-read avail->idx; false (and the queue broken) if it jumped too far. */
static bool virtq_refresh_avail(struct virtq *vq)
{
	/* §2.7.13.3: the driver writes the ring entries, then idx (after a
	 * write barrier); acquire pairs with it so the entries are visible. */
	uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);

	/* At most size entries can be outstanding (§2.7: Queue Size is the
	 * maximum number of buffers queued), and idx never goes back
	 * (§2.7.6.1): anything else is a driver bug or an attack. */
	if ((uint16_t)(idx - vq->last_avail_idx) > vq->size) {
		virtq_break(vq, "avail idx %u is %u entries ahead of %u (queue size %u)", idx,
			    (uint16_t)(idx - vq->last_avail_idx), vq->last_avail_idx, vq->size);
		return false;
	}
	vq->shadow_avail_idx = idx;
	return true;
}

/* Nothing available right now?  With EVENT_IDX and kicks wanted, publish
 * avail_event and look once more, so a buffer added meanwhile is not missed. */
static int virtq_check_empty(struct virtq *vq)
{
	if (!virtq_refresh_avail(vq))
		return -EIO;
	if (vq->shadow_avail_idx != vq->last_avail_idx)
		return 0;
	if (!vq->event_idx || !vq->notify_enabled)
		return 1;
	__atomic_store_n(virtq_avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail_event store before idx load */
	if (!virtq_refresh_avail(vq))
		return -EIO;
	return vq->shadow_avail_idx == vq->last_avail_idx;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain)
{
	uint16_t head;
	int ret;

	if (vq->broken)
		return -EIO;
	if (vq->last_avail_idx == vq->shadow_avail_idx) {
		ret = virtq_check_empty(vq);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)],
			       __ATOMIC_RELAXED);
	if (virtq_walk_chain(vq, head, chain))
		return -EIO;
	if (vq->inflight)
		virtq_inflight_mark(vq, head);
	vq->last_avail_idx++;
	if (vq->unpoppable < vq->size)
		vq->unpoppable++;
	/* §2.7.10: with EVENT_IDX, avail_event tells the driver which index
	 * to kick at; keep it current while kicks are wanted. */
	if (vq->event_idx && vq->notify_enabled)
		__atomic_store_n(virtq_avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);
	return 1;
}

int virtq_unpop(struct virtq *vq, uint16_t head)
{
	if (vq->broken)
		return -EIO;
	/* A device bug (nothing popped since the last push or restart) would
	 * hand out again a chain the driver owns: refused, nothing changes. */
	if (head >= vq->size || vq->unpoppable == 0)
		return -EINVAL;
	if (vq->inflight)
		__atomic_store_n(&vq->inflight->desc[head].inflight, 0, __ATOMIC_RELEASE);
	vq->last_avail_idx--;
	vq->unpoppable--;
	/* avail_event stays: moved back below the driver's avail->idx, it
	 * would stop the driver's kicks (§2.7.10: it kicks only when its new
	 * idx passes avail_event), and a device that gives chains back and
	 * waits for more buffers would wait for ever. */
	return 0;
}

int virtq_fail(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	if (!vq->broken) {
		va_start(ap, fmt);
		vsnprintf(vq->reason, sizeof(vq->reason), fmt, ap);
		va_end(ap);
		vq->broken = true;
	}
	return -EIO;
}

int virtq_get_chain(struct virtq *vq, uint16_t head, struct virtq_chain *chain)
{
	if (vq->broken)
		return -EIO;
	return virtq_walk_chain(vq, head, chain);
}

int virtq_chain_read(const struct virtq_chain *chain, uint32_t offset, void *dst, size_t len)
{
	uint8_t *out = dst;

	if (offset > chain->readable_bytes || len > chain->readable_bytes - offset)
		return -ERANGE;
	for (uint32_t i = 0; i < chain->nr_readable && len; i++) {
		const struct virtq_segment *seg = &chain->segments[i];
		size_t n;

		if (offset >= seg->len) {
			offset -= seg->len;
			continue;
		}
		n = seg->len - offset < len ? seg->len - offset : len;
		memcpy(out, (const uint8_t *)seg->host + offset, n);
		out += n;
		len -= n;
		offset = 0;
	}
	return 0;
}

int virtq_chain_write(const struct virtq_chain *chain, uint32_t offset, const void *src, size_t len)
{
	const uint8_t *in = src;

	if (offset > chain->writable_bytes || len > chain->writable_bytes - offset)
		return -ERANGE;
	for (uint32_t i = chain->nr_readable; i < chain->nr_segments && len; i++) {
		const struct virtq_segment *seg = &chain->segments[i];
		size_t n;

		if (offset >= seg->len) {
			offset -= seg->len;
			continue;
		}
		n = seg->len - offset < len ? seg->len - offset : len;
		memcpy((uint8_t *)seg->host + offset, in, n);
		in += n;
		len -= n;
		offset = 0;
	}
	return 0;
}

int virtq_push_batch(struct virtq *vq, const struct virtq_used_elem *elems, unsigned n)
{
	struct virtq_inflight_region *inf = vq->inflight;

	if (vq->broken)
		return -EIO;
	if (n > vq->size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (elems[i].id >= vq->size)
			return -EINVAL;
	/* vhost-user.rst "When supplying used buffers": link the batch first,
	 * so a crash after publishing used->idx can be finished on restart. */
	if (inf) {
		for (unsigned i = 0; i < n; i++) {
			__atomic_store_n(&inf->desc[elems[i].id].next, inf->last_batch_head,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&inf->last_batch_head, (uint16_t)elems[i].id,
					 __ATOMIC_RELAXED);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct virtq_used_elem *e =
		    &vq->used->ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];

		__atomic_store_n(&e->id, elems[i].id, __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, elems[i].len, __ATOMIC_RELAXED);
	}
	vq->used_idx += n;
	vq->unpoppable = 0;
	/* §2.7.8.2: the element (and the buffer contents the device wrote)
	 * are visible before the new idx; pairs with the driver's read
	 * barrier after reading idx (§2.7.14). */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (inf) {
		for (unsigned i = 0; i < n; i++)
			__atomic_store_n(&inf->desc[elems[i].id].inflight, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&inf->used_idx, vq->used_idx, __ATOMIC_RELEASE);
	}
	return 0;
}

int virtq_push(struct virtq *vq, uint16_t head, uint32_t written_len)
{
	struct virtq_used_elem e = {.id = head, .len = written_len};

	return virtq_push_batch(vq, &e, 1);
}

/* §2.7.7.2: with EVENT_IDX, interrupt when used idx moves past used_event. */
static bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_needs_interrupt(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	if (vq->broken || !vq->used)
		return false;
	/* The used->idx store must be visible before we read the driver's
	 * suppression fields, or both sides may skip the interrupt. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = new_idx;
	vq->signalled_used_valid = true;
	if (valid && old == new_idx)
		return false; /* nothing new since the last decision */
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(__atomic_load_n(virtq_used_event(vq), __ATOMIC_RELAXED), new_idx,
				old);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (vq->broken || !vq->used)
		return false;
	vq->notify_enabled = true;
	if (vq->event_idx) {
		__atomic_store_n(virtq_avail_event(vq), vq->shadow_avail_idx, __ATOMIC_RELAXED);
	} else {
		vq->used_flags &= ~VIRTQ_USED_F_NO_NOTIFY;
		__atomic_store_n(&vq->used->flags, vq->used_flags, __ATOMIC_RELAXED);
	}
	/* The store above is visible before we look at avail->idx again: a
	 * driver that added a buffer before seeing it did not kick. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->last_avail_idx != vq->shadow_avail_idx)
		return true;
	if (!virtq_refresh_avail(vq))
		return true; /* broken: let the caller's pop report it */
	return vq->shadow_avail_idx != vq->last_avail_idx;
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->used)
		return;
	vq->notify_enabled = false;
	/* With EVENT_IDX, not moving avail_event is the suppression. */
	if (!vq->event_idx) {
		vq->used_flags |= VIRTQ_USED_F_NO_NOTIFY;
		__atomic_store_n(&vq->used->flags, vq->used_flags, __ATOMIC_RELAXED);
	}
}

void virtq_suppress_notify(struct virtq *vq)
{
	virtq_disable_notify(vq);
	if (vq->used && vq->event_idx)
		__atomic_store_n(virtq_avail_event(vq), (uint16_t)(vq->last_avail_idx - 1),
				 __ATOMIC_RELAXED);
}

bool virtq_avail_pending(struct virtq *vq)
{
	if (vq->broken || !vq->used)
		return false;
	if (vq->last_avail_idx != vq->shadow_avail_idx)
		return true;
	return !virtq_refresh_avail(vq) || vq->shadow_avail_idx != vq->last_avail_idx;
}

int virtq_set_inflight(struct virtq *vq, void *region, size_t len)
{
	if (!region) {
		vq->inflight = NULL;
		return 0;
	}
	if (!vq->size ||
	    len < sizeof(struct virtq_inflight_region) +
		      vq->size * sizeof(struct virtq_inflight_desc) ||
	    ((uintptr_t)region & 7))
		return -EINVAL;
	vq->inflight = region;
	return 0;
}

/*
 * vhost-user.rst "When reconnecting": if the previous instance published a
 * used batch but died before recording it, clear the batch's inflight flags.
 * The region comes from the frontend and used->idx from the guest: every
 * index is bounded before use.
 */
static int virtq_inflight_finish_batch(struct virtq *vq, uint16_t used_idx)
{
	struct virtq_inflight_region *inf = vq->inflight;
	uint16_t batch = used_idx - __atomic_load_n(&inf->used_idx, __ATOMIC_RELAXED);
	uint16_t idx = __atomic_load_n(&inf->last_batch_head, __ATOMIC_RELAXED);

	if (batch > vq->size)
		return virtq_break(vq, "inflight region: last batch of %u exceeds queue size %u",
				   batch, vq->size);
	for (unsigned i = 0; i < batch; i++) {
		if (idx >= vq->size)
			return virtq_break(vq,
					   "inflight region: batch entry %u is not below the "
					   "queue size %u",
					   idx, vq->size);
		__atomic_store_n(&inf->desc[idx].inflight, 0, __ATOMIC_RELAXED);
		idx = __atomic_load_n(&inf->desc[idx].next, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&inf->used_idx, used_idx, __ATOMIC_RELEASE);
	return 0;
}

int virtq_inflight_recover(struct virtq *vq)
{
	struct virtq_inflight_region *inf = vq->inflight;
	uint16_t used_idx;
	uint64_t max_counter = 0;
	unsigned inuse = 0;
	int ret;

	if (vq->broken)
		return -EIO;
	if (!inf)
		return 0;
	used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	vq->used_idx = used_idx;
	vq->signalled_used = used_idx;
	vq->signalled_used_valid = false;
	if (__atomic_load_n(&inf->version, __ATOMIC_RELAXED) == 0) {
		/* A fresh region: nothing was inflight. */
		memset(inf->desc, 0, vq->size * sizeof(inf->desc[0]));
		inf->features = 0;
		inf->desc_num = (uint16_t)vq->size;
		inf->last_batch_head = 0;
		inf->used_idx = used_idx;
		vq->inflight_counter = 1;
		__atomic_store_n(&inf->version, VIRTQ_INFLIGHT_VERSION, __ATOMIC_RELEASE);
		return 0;
	}
	/* desc_num is 16 bits: a 32768-entry queue is the largest it can say. */
	if (__atomic_load_n(&inf->desc_num, __ATOMIC_RELAXED) != vq->size)
		return virtq_break(vq, "inflight region is for %u descriptors, queue has %u",
				   __atomic_load_n(&inf->desc_num, __ATOMIC_RELAXED), vq->size);
	if (__atomic_load_n(&inf->used_idx, __ATOMIC_RELAXED) != used_idx) {
		ret = virtq_inflight_finish_batch(vq, used_idx);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < vq->size; i++) {
		uint64_t counter = __atomic_load_n(&inf->desc[i].counter, __ATOMIC_RELAXED);

		if (!__atomic_load_n(&inf->desc[i].inflight, __ATOMIC_RELAXED))
			continue;
		inuse++;
		if (counter > max_counter)
			max_counter = counter;
	}
	/* Every popped head is either used or inflight, so the next avail
	 * entry to consume is used->idx + inflight heads. */
	virtq_set_base(vq, (uint16_t)(used_idx + inuse));
	vq->inflight_counter = max_counter + 1;
	return (int)inuse;
}

/* Heap sort of heads by inflight counter.  The region is shared memory: a
 * counter changing under us yields a wrong order, never a wrong access. */
static uint64_t virtq_inflight_counter(const struct virtq *vq, uint16_t head)
{
	return __atomic_load_n(&vq->inflight->desc[head].counter, __ATOMIC_RELAXED);
}

static void virtq_sift_down(const struct virtq *vq, uint16_t *heads, unsigned root, unsigned n)
{
	for (;;) {
		unsigned child = 2 * root + 1, max = root;

		if (child < n && virtq_inflight_counter(vq, heads[child]) >
				     virtq_inflight_counter(vq, heads[max]))
			max = child;
		if (child + 1 < n && virtq_inflight_counter(vq, heads[child + 1]) >
					 virtq_inflight_counter(vq, heads[max]))
			max = child + 1;
		if (max == root)
			return;
		uint16_t tmp = heads[root];
		heads[root] = heads[max];
		heads[max] = tmp;
		root = max;
	}
}

int virtq_inflight_resubmit_list(const struct virtq *vq, uint16_t *heads, unsigned max)
{
	unsigned n = 0;

	if (!vq->inflight)
		return -EINVAL;
	for (unsigned i = 0; i < vq->size; i++) {
		if (!__atomic_load_n(&vq->inflight->desc[i].inflight, __ATOMIC_RELAXED))
			continue;
		if (n >= max)
			return -ENOSPC;
		heads[n++] = (uint16_t)i;
	}
	for (unsigned i = n / 2; i-- > 0;)
		virtq_sift_down(vq, heads, i, n);
	for (unsigned end = n; end > 1; end--) {
		uint16_t tmp = heads[0];
		heads[0] = heads[end - 1];
		heads[end - 1] = tmp;
		virtq_sift_down(vq, heads, 0, end - 1);
	}
	return (int)n;
}
