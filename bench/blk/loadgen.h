/* SPDX-License-Identifier: MIT */
/*
 * blk-loadgen's shared state: the guest memory layout, the ring pointers,
 * and the vhost-user front-end set-up (bench/blk/frontend.c) that the driver
 * loop (bench/blk/loadgen.c) runs on.
 */
#ifndef ISOLA_BENCH_BLK_LOADGEN_H
#define ISOLA_BENCH_BLK_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isola/virtio.h"
#include "lib/virtq.h"
/* virtio 1.2 §5.2.6 */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_CONFIG_SIZE 60 /* struct virtio_blk_config up to write_zeroes_may_unmap */

/* Guest memory layout (guest-physical offsets into the memfd).  Queue q's
 * rings start at q * LG_RING_STRIDE; slot s of queue q is request
 * q * LG_MAX_SLOTS + s for its header, status byte and data buffer. */
#define LG_RING_STRIDE 0x4000ull
#define LG_DESC_OFFSET 0x0000ull
#define LG_AVAIL_OFFSET 0x1000ull
#define LG_USED_OFFSET 0x2000ull
#define LG_HDR_GPA 0x40000ull	 /* 16-byte request headers, one per slot */
#define LG_STATUS_GPA 0x48000ull /* one status byte per slot */
#define LG_DATA_GPA 0x100000ull	 /* data buffers, bs apart, page aligned */
#define LG_MAX_QUEUE_SIZE 256	 /* the layout above holds rings up to this */
#define LG_MAX_QUEUES 16
#define LG_DESCS_PER_REQ 3
#define LG_MAX_SLOTS (LG_MAX_QUEUE_SIZE / LG_DESCS_PER_REQ)
#define LG_MAX_HALT_POLL_US 10000u /* --halt-poll-us */
#define LG_WATCHDOG_SECONDS 10
#define LG_MAX_CPU_PIDS 32

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

enum lg_rw { LG_RANDREAD, LG_RANDWRITE, LG_RANDRW, LG_READ, LG_WRITE };

struct lg_options {
	const char *socket;
	enum lg_rw rw;
	unsigned rwmixread; /* percent of reads for randrw */
	unsigned iodepth;   /* per queue */
	unsigned queues;
	unsigned bs;
	unsigned queue_size;
	double runtime, warmup;
	uint64_t mem_bytes;
	bool poll;
	uint32_t halt_poll_ns; /* --halt-poll-us: spin this long before sleeping */
	bool event_idx;
	uint64_t seed;
	int cpu_pids[8]; /* --cpu-pid: processes whose CPU time is reported */
	unsigned nr_cpu_pids;
};

struct lg_slot {
	uint64_t submit_ns;
	bool write;
};

/* Latencies of the measured phase, in ns (saturated at UINT32_MAX). */
struct lg_samples {
	uint32_t *ns;
	size_t count, cap;
};

/* One virtqueue and the requests it keeps in flight. */
struct lg_queue {
	unsigned index;
	int kick_fd, call_fd;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event;  /* in the avail ring, after ring[size] */
	uint16_t *avail_event; /* in the used ring, after ring[size] */
	uint16_t avail_idx;    /* next avail->idx we publish */
	uint16_t kicked_idx;   /* avail->idx at the last kick decision */
	uint16_t last_used;    /* next used entry to read */
	unsigned in_flight;
	uint64_t next_block; /* sequential modes */
	struct lg_slot slots[LG_MAX_SLOTS];
};

struct loadgen {
	const struct lg_options *opt;
	int sock, memfd;
	uint8_t *mem; /* the guest memory mapping */
	uint64_t features, protocol_features;
	uint64_t capacity_blocks; /* image size in units of bs */
	struct lg_queue queues[LG_MAX_QUEUES];
	uint64_t rng;
	bool measuring;
	struct lg_samples samples;
	uint64_t ios, reads, writes, errors, kicks, wakeups;
	uint64_t halt_polls, halt_polls_caught; /* --halt-poll-us spins, and caught */
	uint64_t all_ios;			/* every completion, warm-up and drain included */
	int pids[LG_MAX_CPU_PIDS];		/* --cpu-pid and descendants (lg_collect_pids) */
	unsigned nr_pids;
	struct {
		uint64_t self_ns;   /* our user + system time */
		uint64_t pid_ns;    /* --cpu-pid processes' run time */
		long nvcsw, nivcsw; /* our voluntary / involuntary context switches */
	} cpu;			    /* over the measured phase */
};

/* xorshift64*: fast, and good enough to pick blocks and read/write. */
static inline uint64_t lg_random(struct loadgen *lg)
{
	lg->rng ^= lg->rng >> 12;
	lg->rng ^= lg->rng << 25;
	lg->rng ^= lg->rng >> 27;
	return lg->rng * 0x2545f4914f6cdd1dull;
}

/* Guest memory is ours: a GPA is an offset into the mapping. */
static inline void *lg_ptr(const struct loadgen *lg, uint64_t gpa)
{
	return lg->mem + gpa;
}

/* Connect to the back-end's socket; 0 or -errno (reported on stderr). */
int loadgen_connect(struct loadgen *lg);
/* vhost-user: features, protocol features, owner, the disk's capacity. */
int loadgen_negotiate(struct loadgen *lg);
/* The memfd guest memory, with rings, headers and buffers touched. */
int loadgen_setup_memory(struct loadgen *lg);
/* SET_FEATURES, SET_MEM_TABLE, then each ring: num, base, addr, kick,
 * call, enable.  Fills the ring pointers in lg->queues. */
int loadgen_start_queues(struct loadgen *lg);
/* GET_VRING_BASE of each ring (stops it), then hang up. */
void loadgen_stop_queues(struct loadgen *lg);

#endif
