/* SPDX-License-Identifier: MIT */
/*
 * net-loadgen's shared state: the guest memory layout, the two rings of one
 * queue pair, and the vhost-user front-end set-up (bench/net/frontend.c)
 * that the driver loops (bench/net/loadgen.c) run on.
 */
#ifndef ISOLA_BENCH_NET_LOADGEN_H
#define ISOLA_BENCH_NET_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isola/virtio.h"
#include "lib/virtq.h"

/* Queue layout, virtio 1.2 §5.1.2: receiveq1 = 0, transmitq1 = 1. */
#define NLG_RXQ 0
#define NLG_TXQ 1
#define NLG_NQUEUES 2

/* Guest memory layout (guest-physical offsets into the memfd).  Each ring
 * gets 32 KiB: descriptors (16 B each), then the avail ring at +16 KiB and
 * the used ring at +20 KiB, enough for 1024 entries. */
#define NLG_RING_GPA(q) ((uint64_t)(q)*0x8000ull)
#define NLG_AVAIL_OFF 0x4000ull
#define NLG_USED_OFF 0x5000ull
#define NLG_MAX_QUEUE_SIZE 1024
/* One buffer per descriptor: the 12-byte header and a whole frame, 2 KiB
 * apart; TX buffers first, then RX buffers. */
#define NLG_BUF_GPA 0x100000ull
#define NLG_BUF_STRIDE 2048u
#define NLG_BUF_GPA_OF(q, i)                                                                       \
	(NLG_BUF_GPA + ((uint64_t)(q == NLG_TXQ ? 0 : NLG_MAX_QUEUE_SIZE) + (i)) * NLG_BUF_STRIDE)
#define NLG_MEM_BYTES (NLG_BUF_GPA + 2ull * NLG_MAX_QUEUE_SIZE * NLG_BUF_STRIDE)
/* Ethernet without FCS, through a 1500-byte MTU (§5.1.6.3.1: without
 * MRG_RXBUF or GUEST_TSO*, an RX buffer of 1526 bytes holds any frame). */
#define NLG_MIN_FRAME 60
#define NLG_MAX_FRAME 1514
#define NLG_WATCHDOG_SECONDS 10

enum nlg_mode { NLG_TX, NLG_RX };

struct nlg_options {
	const char *socket; /* vhost-user back-end, or */
	const char *tap;    /* the tap itself (the direct limit) */
	const char *stats;  /* the receiving side's counters: DIR/rx_packets, DIR/rx_bytes */
	enum nlg_mode mode;
	unsigned frame; /* frame bytes (Ethernet header + payload, no FCS) */
	unsigned queue_size;
	double runtime, warmup;
	bool poll;
	bool event_idx;
};

/* One split virtqueue (virtio 1.2 §2.7) as its driver sees it. */
struct nlg_ring {
	unsigned index; /* the vhost-user vring index */
	unsigned size;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event;  /* in the avail ring, after ring[size] */
	uint16_t *avail_event; /* in the used ring, after ring[size] */
	uint16_t avail_idx;    /* next avail->idx we publish */
	uint16_t kicked_idx;   /* avail->idx at the last kick decision */
	uint16_t last_used;    /* next used entry to read */
	unsigned in_flight;
	int kick_fd, call_fd;
};

struct loadgen {
	const struct nlg_options *opt;
	int sock, memfd;
	uint8_t *mem; /* the guest memory mapping */
	uint64_t features, protocol_features;
	struct nlg_ring ring[NLG_NQUEUES];
	bool measuring;
	/* the measured phase */
	uint64_t frames, bytes, kicks, wakeups, errors;
};

/* Guest memory is ours: a GPA is an offset into the mapping. */
static inline void *nlg_ptr(const struct loadgen *lg, uint64_t gpa)
{
	return lg->mem + gpa;
}

/* Connect to the back-end's socket; 0 or -errno (reported on stderr). */
int loadgen_connect(struct loadgen *lg);
/* vhost-user: features, protocol features, owner. */
int loadgen_negotiate(struct loadgen *lg);
/* The memfd guest memory, with rings and buffers touched. */
int loadgen_setup_memory(struct loadgen *lg);
/* SET_FEATURES, SET_MEM_TABLE, then both rings of the pair: num, base,
 * addr, kick, call, enable.  Fills lg->ring. */
int loadgen_start_queues(struct loadgen *lg);
/* GET_VRING_BASE on both rings (stops them), then hang up. */
void loadgen_stop_queues(struct loadgen *lg);

#endif
