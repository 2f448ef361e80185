/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues, device side (virtio 1.2 §2.7), for device servers that
 * share guest memory over vhost-user.
 *
 * The guest is hostile: every index, address, length and chain it writes is
 * checked before use (docs/virtq.md lists the rules).  A violation marks the
 * queue broken with a reason; virtq_pop() then returns -EIO and the device
 * must set DEVICE_NEEDS_RESET.  Nothing the guest writes makes this code read
 * or write outside guest memory, loop without bound, or crash.
 *
 * Typical device loop (one thread per queue, on a kick):
 *
 *	virtq_disable_notify(vq);
 *	do {
 *		while ((r = virtq_pop(vq, &chain)) == 1) {
 *			... virtq_chain_read() request, virtq_chain_write() reply ...
 *			virtq_push(vq, chain.head, written);
 *		}
 *		if (r < 0)
 *			... log virtq_broken_reason(vq), set NEEDS_RESET, stop ...
 *	} while (virtq_enable_notify(vq));
 *	if (virtq_needs_interrupt(vq))
 *		... write the call eventfd ...
 */
#ifndef ISOLA_LIB_VIRTQ_H
#define ISOLA_LIB_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/gmem.h"

/* Feature bits this library implements: VIRTIO_F_INDIRECT_DESC and
 * VIRTIO_F_EVENT_IDX (virtio 1.2 §6). */
#include "isola/virtio.h"

/* Ring layout, virtio 1.2 §2.7.5-§2.7.8 (little-endian, as is the host). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

#define VIRTQ_MAX_SIZE 32768	 /* §2.7: Queue Size is at most 32768 */
#define VIRTQ_MAX_INDIRECT 32768 /* entries per indirect table we accept */
#define VIRTQ_MAX_SEGMENTS 1024	 /* a good default for virtq_chain_init() */
#define VIRTQ_REASON_SIZE 128

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then uint16_t used_event */
};

struct virtq_used_elem {
	uint32_t id;  /* head of the completed chain */
	uint32_t len; /* bytes written into the chain's device-writable buffers */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then uint16_t avail_event */
};

/* Bytes each ring occupies in guest memory, event fields included. */
static inline uint64_t virtq_desc_bytes(unsigned size)
{
	return 16ull * size;
}
static inline uint64_t virtq_avail_bytes(unsigned size)
{
	return 6 + 2ull * size;
}
static inline uint64_t virtq_used_bytes(unsigned size)
{
	return 6 + 8ull * size;
}

/*
 * Inflight I/O tracking for vhost-user INFLIGHT_SHMFD, split rings
 * (QEMU docs/interop/vhost-user.rst, "Inflight I/O tracking").  The region
 * lives in a memfd shared with the frontend, so it survives a crash of the
 * device server.
 */
struct virtq_inflight_desc {
	uint8_t inflight; /* head popped and not yet pushed */
	uint8_t padding[5];
	uint16_t next;	  /* list of the last used batch */
	uint64_t counter; /* pop order */
};

struct virtq_inflight_region {
	uint64_t features;
	uint16_t version; /* 1; 0 means never initialized */
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct virtq_inflight_desc desc[];
};

#define VIRTQ_INFLIGHT_VERSION 1

/* Bytes one queue's region takes in the inflight memfd; queue regions are
 * laid out back to back with this stride (same as QEMU's libvhost-user). */
static inline uint64_t virtq_inflight_queue_bytes(unsigned size)
{
	return (16ull * size + 2 + 63) & ~63ull;
}

struct virtq {
	const struct gmem *mem;
	unsigned size; /* power of two, 1..32768 */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct virtq_desc *desc; /* host pointers, checked by virtq_init() */
	struct virtq_avail *avail;
	struct virtq_used *used;
	bool event_idx;		   /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;		   /* VIRTIO_F_INDIRECT_DESC negotiated */
	bool notify_enabled;	   /* guest kicks wanted (virtq_enable_notify) */
	uint16_t used_flags;	   /* what we last wrote to used->flags */
	uint16_t last_avail_idx;   /* next avail entry to consume */
	uint16_t shadow_avail_idx; /* avail->idx as last read */
	uint16_t used_idx;	   /* next used entry to fill == used->idx */
	uint16_t unpoppable;	   /* pops since the last push or base: virtq_unpop's budget */
	uint16_t signalled_used;   /* used_idx at the last interrupt decision */
	bool signalled_used_valid;
	struct virtq_inflight_region *inflight; /* NULL: no inflight tracking */
	uint64_t inflight_counter;
	bool broken;
	char reason[VIRTQ_REASON_SIZE];
};

/* One guest buffer: host pointer into guest memory, checked by virtq_pop(). */
struct virtq_segment {
	void *host;
	uint32_t len;
	bool device_writable;
};

/*
 * A descriptor chain.  Segments [0, nr_readable) are device-readable and
 * [nr_readable, nr_segments) device-writable (§2.7.4.2 forbids the other
 * order).  Zero-length descriptors are valid and add no segment.  The host
 * pointers stay valid until the memory table changes; the guest may change
 * the bytes they point to at any time, so copy a request header out once
 * (virtq_chain_read) before checking it.
 */
struct virtq_chain {
	uint16_t head;
	uint32_t nr_segments;
	uint32_t nr_readable;
	uint32_t readable_bytes;
	uint32_t writable_bytes;
	uint32_t nr_descriptors; /* descriptors visited, incl. the indirect one */
	uint32_t max_segments;	 /* capacity of segments[] */
	struct virtq_segment *segments;
};

/*
 * Set up vq over guest memory mem (which must outlive it).  size must be a
 * power of two up to 32768; the three rings must lie in guest memory with
 * their full sizes (event fields included) and alignments (§2.7: desc 16,
 * avail 2, used 4).  features: the negotiated feature bits; only
 * VIRTIO_F_EVENT_IDX and VIRTIO_F_INDIRECT_DESC matter here.  Reads
 * used->idx as the starting used index and starts with last_avail_idx 0
 * (see virtq_set_base).  Returns 0, or -EINVAL with the reason in
 * virtq_broken_reason() (and the queue broken).
 */
int virtq_init(struct virtq *vq, const struct gmem *mem, unsigned size, uint64_t desc_gpa,
	       uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);

/* vhost-user SET_VRING_BASE / GET_VRING_BASE: the next avail index. */
void virtq_set_base(struct virtq *vq, uint16_t last_avail_idx);
uint16_t virtq_get_base(const struct virtq *vq);

bool virtq_is_broken(const struct virtq *vq);
const char *virtq_broken_reason(const struct virtq *vq);

/* Give a chain its segment storage (max_segments entries). */
void virtq_chain_init(struct virtq_chain *chain, struct virtq_segment *segments,
		      uint32_t max_segments);

/*
 * Take the next available chain: 1 and *chain filled, 0 if none is
 * available, -EIO if the queue is (or now is) broken: the device must go
 * NEEDS_RESET.  A chain that needs more than chain->max_segments segments
 * breaks the queue.
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain);

/*
 * Walk the chain starting at head without consuming an avail entry, with
 * the same checks as virtq_pop (for resubmitting inflight heads).  0 or -EIO.
 */
int virtq_get_chain(struct virtq *vq, uint16_t head, struct virtq_chain *chain);

/*
 * Give back the chain virtq_pop returned last (head), unused: the next pop
 * returns it again, and its inflight mark is cleared.  For a device that
 * took buffers it then could not fill (isola-net: no frame on the tap yet).
 * Only in the reverse order of the pops, without a push in between:
 * more unpops than pops since the last push (or virtq_set_base) get
 * -EINVAL and change nothing; the head itself is not checked against the
 * pop's.  avail_event (EVENT_IDX) is left where it is, so a device that
 * then waits for a kick gets one at the driver's next buffer.
 * 0, -EINVAL (head out of range, nothing to give back), -EIO if broken.
 */
int virtq_unpop(struct virtq *vq, uint16_t head);

/* A violation the device found in a chain (virtio-net: a device-writable
 * descriptor in a transmit chain): the queue is broken with this reason, as
 * for one virtq_pop finds; the device must set NEEDS_RESET.  Returns -EIO. */
__attribute__((format(printf, 2, 3))) int virtq_fail(struct virtq *vq, const char *fmt, ...);

/* Copy from the chain's readable bytes / into its writable bytes, starting
 * offset bytes in.  0, or -ERANGE if the range is not all there. */
int virtq_chain_read(const struct virtq_chain *chain, uint32_t offset, void *dst, size_t len);
int virtq_chain_write(const struct virtq_chain *chain, uint32_t offset, const void *src,
		      size_t len);

/*
 * Return completed chains to the driver: write the used elements, then
 * publish used->idx with release semantics (§2.7.8).  -EINVAL for a head
 * >= size or more elements than the queue size (device bugs), -EIO if the
 * queue is broken.
 */
int virtq_push(struct virtq *vq, uint16_t head, uint32_t written_len);
int virtq_push_batch(struct virtq *vq, const struct virtq_used_elem *elems, unsigned n);

/*
 * Whether the driver wants an interrupt for what was pushed since the last
 * call (§2.7.7: VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
 * Call after pushing, and signal the call fd if true.
 */
bool virtq_needs_interrupt(struct virtq *vq);

/*
 * Ask the driver for kicks (§2.7.10: clear VIRTQ_USED_F_NO_NOTIFY, or write
 * avail_event with EVENT_IDX).  Returns true if buffers became available
 * meanwhile: the caller must pop again, else it could sleep on a kick that
 * never comes.
 */
bool virtq_enable_notify(struct virtq *vq);
/* Ask the driver not to kick (a hint the driver may ignore). */
void virtq_disable_notify(struct virtq *vq);
/* For a device that polls the ring: like virtq_disable_notify, and with
 * EVENT_IDX avail_event is moved one behind the next entry, so the driver
 * does not kick even for the next buffer (§2.7.10; it would after 65536
 * more, a harmless kick).  virtq_enable_notify undoes it. */
void virtq_suppress_notify(struct virtq *vq);
/* Has the driver made buffers available that virtq_pop has not taken?
 * (One acquire load; true on a violation too, so the pop reports it.) */
bool virtq_avail_pending(struct virtq *vq);

/*
 * Inflight tracking.  After virtq_init (which detaches), attach a queue
 * region of len bytes (at least virtq_inflight_queue_bytes(size), 8-byte
 * aligned) or detach with NULL; 0 or -EINVAL.
 * While attached, virtq_pop marks heads inflight and virtq_push clears them
 * per vhost-user.rst.
 */
int virtq_set_inflight(struct virtq *vq, void *region, size_t len);

/*
 * At queue start, after virtq_init, virtq_set_base and virtq_set_inflight:
 * initialize a fresh region (version 0), or recover from a previous server
 * instance: finish its last used batch, and set last_avail_idx to used->idx
 * plus the number of inflight heads, so those are not popped again.
 * Returns the number of inflight heads to resubmit (>= 0), or -EIO if the
 * region is unusable (the queue is broken).
 */
int virtq_inflight_recover(struct virtq *vq);

/*
 * The inflight heads in pop order (counter ascending), for a server to
 * resubmit each exactly once (with virtq_get_chain) right after
 * virtq_inflight_recover.  Returns how many were written to heads, or
 * -ENOSPC if more than max, or -EINVAL without a region.
 */
int virtq_inflight_resubmit_list(const struct virtq *vq, uint16_t *heads, unsigned max);

#endif
