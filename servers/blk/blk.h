/* SPDX-License-Identifier: MIT */
/*
 * isola-blk's device: a raw image served as virtio-blk (virtio 1.2 §5.2)
 * through lib/vhost_user_backend, with I/O on io_uring straight into guest
 * buffers.  One io_uring per queue; a queue's thread never blocks on I/O.
 */
#ifndef ISOLA_SERVERS_BLK_BLK_H
#define ISOLA_SERVERS_BLK_BLK_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/rate_limiter.h"
#include "lib/sandbox.h"
#include "lib/vhost_user_backend.h"

#include "isola/virtio.h" /* feature bits, virtio 1.2 §5.2.3 */

/* virtio 1.2 §5.2.6 request types and status */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR 512u

#define BLK_SEG_MAX 254	      /* advertised; longer chains are still served */
#define BLK_MAX_RANGE_SEGS 16 /* discard / write-zeroes ranges per request */
#define BLK_MAX_RANGE_SECTORS (1u << 22)
#define BLK_RING_ENTRIES 256
/* handle_queue submits the requests it pops in groups of this many, then
 * the rest with the wait.  One io_uring_enter for everything popped gave
 * the host's disk each depth-32 batch as one plugged batch, which it
 * completed together: the queue ran in lockstep, empty while the driver
 * turned around (bench/blk/README.md "Depth 32").  Groups of 4 keep it
 * streaming: +6-33 % IOPS at depth 32 and 64 KiB depth 8, p50 -20 %, for
 * at most ~1 µs more CPU per request (2 and 8 did worse); depth 1 is
 * unchanged. */
#define BLK_SUBMIT_BATCH 4u
#define BLK_POLL_US_DEFAULT 50 /* --poll-us */
#define BLK_POLL_US_MAX 1000
/* A spin that sees the clock jump this far between two looks lost its CPU
 * (preempted: another task wanted it, or the hypervisor took the vCPU);
 * no spinning for BLK_POLL_BACKOFF_NS then. */
#define BLK_POLL_PREEMPTED_NS 25000u
#define BLK_POLL_BACKOFF_NS 20000000u

/* What isola-blk's seccomp filter allows beyond the vhost-user back-end's
 * own list (sandbox_lock, servers/blk/README.md): io_uring.  (The busy-poll
 * window's clock is in the base list: lib/vdso_fallback.h.)  In the header
 * so tests/unit/test_seccomp.c installs the very filter the server does. */
static const char *const blk_sandbox_syscalls[] = {"io_uring_enter"};
static const struct sandbox_allowlist blk_sandbox_allowlist = {
    .syscalls = blk_sandbox_syscalls,
    .nr_syscalls = sizeof(blk_sandbox_syscalls) / sizeof(blk_sandbox_syscalls[0]),
};

/* virtio 1.2 §5.2.4, up to write_zeroes_may_unmap (60 bytes). */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed)); /* natural alignment would pad it to 64 */
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config size");

/* One request in flight, indexed by its head. */
struct blk_request {
	bool busy;
	uint8_t type;
	uint8_t status;	      /* VIRTIO_BLK_S_* so far */
	uint8_t *status_byte; /* in guest memory */
	uint32_t used_len;
	unsigned pending;  /* SQEs not completed */
	int fd;		   /* for readv/writev continuation */
	struct iovec *iov; /* remaining data (advanced on short I/O) */
	unsigned nr_iov, iov_cap;
	uint64_t offset;
	uint64_t remaining;
	struct {
		uint64_t offset, len;
	} ranges[BLK_MAX_RANGE_SEGS]; /* discard / write-zeroes, for a ZERO_RANGE retry */
};

/* io_uring user_data of the queue thread's own operations (wait.c); a
 * request's user_data stays below bit 48. */
#define BLK_USER_DATA_KICK (1ull << 48)	  /* multishot POLL_ADD on the kick fd */
#define BLK_USER_DATA_STOP (2ull << 48)	  /* POLL_ADD on the stop fd */
#define BLK_USER_DATA_CANCEL (3ull << 48) /* ASYNC_CANCEL of either */
#define BLK_USER_DATA_IS_EVENT(ud) (((ud) >> 48) != 0)

struct blk_queue {
	struct io_uring ring;
	bool ring_ready;	     /* set up (blk_setup_rings) */
	bool kick_armed, stop_armed; /* their POLL_ADDs are queued or pending */
	bool stop_seen;		     /* the stop fd became readable */
	/* The busy-poll windows (wait.c): waiting for the I/O in flight and
	 * waiting for the driver's next request adapt apart, each to its own
	 * waits; none before poll_resume_ns (backing off a busy host). */
	uint32_t poll_io_ns, poll_driver_ns;
	uint64_t poll_resume_ns;
	bool notify_suppressed; /* handle_queue suppressed kicks for a spin */
	/* Spins for the I/O and for the driver, and how many caught their
	 * event; times a spin lost its CPU.  Logged when the ring stops. */
	uint64_t spins[2], spins_caught[2], poll_backoffs;
	/* The image fds registered with the ring (IORING_REGISTER_FILES),
	 * slot i holding fixed_fds[i]; nr_fixed 0 where registering failed. */
	int fixed_fds[2];
	unsigned nr_fixed;
	struct blk_request *requests; /* [vq size] */
	unsigned nr_requests;
	unsigned in_flight;
	struct virtq_used_elem *done; /* completed, not yet pushed */
	unsigned nr_done;
	bool zero_range_refused; /* the filesystem lacks FALLOC_FL_ZERO_RANGE */
	bool throttled;		 /* the rate limiter holds the next request back */
	uint64_t rate_waits;	 /* times it did (for the tests) */
	struct virtq_segment segs[VIRTQ_MAX_SEGMENTS];
};

struct blk {
	int fd;	       /* buffered */
	int fd_direct; /* O_DIRECT, or -1 */
	uint32_t dio_mem_align, dio_offset_align;
	bool readonly;
	uint64_t capacity;	    /* sectors */
	uint32_t discard_alignment; /* sectors */
	char id[VIRTIO_BLK_ID_BYTES];
	unsigned num_queues;
	uint32_t poll_max_ns;	  /* longest busy-poll before sleeping; 0 never */
	uint32_t poll_backoff_ns; /* no spinning this long after one lost its CPU */
	/* Queue the sync a FLUSH waits for on sqe; the FLUSH completes with its
	 * CQE.  blk_open: fdatasync of the image.  The seam where
	 * tests/unit/test_vhost_user_backend.c holds a sync back to check that
	 * no FLUSH is acknowledged before its sync. */
	void (*prep_sync)(struct blk *blk, struct io_uring_sqe *sqe);
	/* --rate (Firecracker's block RateLimiter): every request takes one
	 * `ops` token, IN/OUT their data bytes from `bytes`.  Shared by the
	 * queues under limiter_lock; never touched while `limited` is false,
	 * so an unlimited disk pays no clock read and no lock. */
	bool limited;
	struct rate_limiter limiter;
	pthread_mutex_t limiter_lock;
	struct vhost_user_backend_ops ops;
	struct blk_queue queues[VHOST_USER_BACKEND_MAX_QUEUES];
};

/* Open the image (O_RDONLY with readonly) and fill blk and blk->ops.
 * id NULL: the image's basename.  0 or -errno with a message in err. */
int blk_open(struct blk *blk, const char *image, bool readonly, const char *id, unsigned num_queues,
	     char *err, size_t errlen);
/* One io_uring per queue (before the sandbox). */
int blk_setup_rings(struct blk *blk, char *err, size_t errlen);
/* Internal to servers/blk: blk.c's request side, wait.c's queue thread. */
struct io_uring_sqe *blk_sqe(struct blk_queue *bq);
void blk_sqe_fixed_file(const struct blk_queue *bq, struct io_uring_sqe *sqe);
void blk_reap(struct blk *blk, struct blk_queue *bq);
void blk_wait_init(struct blk_queue *bq);
int blk_queue_wait(void *device, struct vhost_user_backend_queue *q, int timeout_ms);
void blk_wait_event(struct blk_queue *bq, uint64_t user_data, int res, unsigned flags);
void blk_wait_cancel(struct blk_queue *bq, struct vhost_user_backend_queue *q);
void blk_wait_report(const struct blk_queue *bq, unsigned index);
bool blk_wait_will_spin(const struct blk *blk, const struct blk_queue *bq);
bool blk_wait_armed(const struct blk_queue *bq);
uint64_t blk_now_ns(void); /* CLOCK_MONOTONIC */

/* Set the rate limit (SPEC as lib/rate_limiter.h; "" none); before the
 * rings start.  0 or -EINVAL with a message in err. */
int blk_set_rate(struct blk *blk, const char *spec, char *err, size_t errlen);
/* What a request costs (Firecracker's Request::rate_limit): 1 op, and for
 * IN/OUT the data bytes; false if the header is unreadable (the request
 * then fails without paying). */
bool blk_request_cost(const struct virtq_chain *chain, uint64_t *bytes);
/* Pay for a request of `bytes` at now_ns: true, or false with the wait in
 * *wait_ms (1..1000). */
bool blk_rate_pay(struct blk *blk, uint64_t bytes, uint64_t now_ns, int *wait_ms);

/* The fds the server must keep (image, rings); returns the count. */
unsigned blk_fds(const struct blk *blk, int *fds, unsigned max);
void blk_close(struct blk *blk);

#endif
