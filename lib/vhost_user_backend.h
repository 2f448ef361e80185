/* SPDX-License-Identifier: MIT */
/*
 * A reusable vhost-user back-end (QEMU docs/interop/vhost-user.rst, cited as
 * "vhost-user: <section>"): serves one front-end connection at a time, maps
 * the guest memory it is given, runs one thread per started ring, and calls
 * the device (isola-blk, isola-rng) through a small table of callbacks.
 *
 * The front-end is untrusted: every message is validated by the codec
 * (vhost_user_validate) and every value in it (ring index, ring addresses,
 * memory regions, inflight region) is checked here before use.  A malformed
 * message closes the connection; a refused but well-formed request is
 * answered with a REPLY_ACK failure when the front-end asked for one.  A
 * guest violation in a ring stops that ring only (one log line, the error fd
 * is signalled), and the server keeps serving.
 *
 * Threads: the caller's thread reads the socket and owns all state; a ring's
 * thread owns its struct virtq while running.  The socket thread changes a
 * ring only after stopping its thread (joined), except the call and error
 * fds, which are swapped under the ring's lock.
 */
#ifndef ISOLA_LIB_VHOST_USER_BACKEND_H
#define ISOLA_LIB_VHOST_USER_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "isola/virtio.h"
#include "lib/gmem.h"
#include "lib/vhost_user.h"
#include "lib/virtq.h"

#define VHOST_USER_BACKEND_MAX_QUEUES 16


/* Protocol features every back-end built on this offers. */
#define VHOST_USER_BACKEND_PROTOCOL_FEATURES                                                       \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
	 (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE))

struct vhost_user_backend;

/*
 * The device-state area: isola's own layout after the queue regions of the
 * inflight region (vhost-user: "Inflight I/O tracking" leaves the region's
 * contents to the back-end; the front-end only keeps the fd and hands it to
 * the next back-end).  A device with ops->state_size keeps its small state
 * there (isola-net: the receive filter, the active queue pairs), so a
 * restarted instance finds it.  The lib writes the header; the payload is
 * the device's.  Written by a previous instance of the same server, it is
 * still input: the lib checks the header and the checksum, the device checks
 * every field (state_restored).
 *
 * The same header and payload are the back-end's state stream of
 * VHOST_USER_SET_DEVICE_STATE_FD (vhost-user: "Migrating back-end state";
 * VHOST_USER_PROTOCOL_F_DEVICE_STATE, offered by every back-end built on
 * this): saved with every ring stopped, the stream is the header and the
 * area's state_size bytes (a device without state: the header alone, size
 * 0); loaded, it is checked as an area is and given to state_restored.  A
 * snapshot (docs/snapshot.md) carries it.
 */
#define VHOST_USER_BACKEND_STATE_MAGIC 0x54534c4fu /* "OLST" */
#define VHOST_USER_BACKEND_STATE_VERSION 1u
#define VHOST_USER_BACKEND_STATE_MAX 4096u
struct vhost_user_backend_state_header {
	uint32_t magic;
	uint32_t version;
	uint32_t size;	   /* payload bytes, == ops->state_size */
	uint32_t checksum; /* FNV-1a of the payload */
};

/* One ring as the device sees it.  vq is valid from queue_start to
 * queue_stop; device_data is the device's. */
struct vhost_user_backend_queue {
	struct vhost_user_backend *backend;
	unsigned index;
	struct virtq vq;
	void *device_data;

	/* Below: the back-end's bookkeeping. */
	unsigned num;                   /* SET_VRING_NUM, 0 = unset */
	bool addr_set;
	uint64_t desc_uva, avail_uva, used_uva; /* front-end user addresses */
	uint16_t base;                  /* next avail index while stopped */
	int kick_fd;                    /* -1: none */
	bool kick_set;                  /* SET_VRING_KICK received (fd or NOFD) */
	bool enabled;                   /* SET_VRING_ENABLE */
	bool vq_valid;                  /* vq was initialized (base lives there) */
	bool running;
	pthread_t thread;
	int stop_fd;                    /* eventfd: the socket thread asks to stop */
	pthread_mutex_t lock;           /* call_fd, err_fd */
	int call_fd, err_fd;
	/* Since the ring started, for the SIGUSR1 ring dump
	 * (vhost_user_backend_dump): written by the ring's thread only, with
	 * plain relaxed stores (vhost_user_backend_count), read racily. */
	uint64_t kicks;   /* kick eventfd counts read: the guest's notifications */
	uint64_t calls;   /* call eventfd writes: interrupts asked of the front-end */
	uint64_t no_call; /* vhost_user_backend_notify that decided no interrupt */
	uint64_t turns;   /* handle_queue calls */
};

struct vhost_user_backend_ops {
	const char *name;      /* "isola-blk": log prefix for messages */
	uint64_t features;     /* virtio feature bits offered (VERSION_1 ...) */
	unsigned num_queues;   /* rings the device has, 1..16 */
	/* Fill the device config space (up to VHOST_USER_MAX_CONFIG_SIZE
	 * bytes); return its size.  NULL: no config space. */
	uint32_t (*get_config)(void *device, uint8_t *config);
	/* A driver write to the config space; 0 or -errno.  NULL: refused. */
	int (*set_config)(void *device, uint32_t offset, const uint8_t *data, uint32_t len);
	/* In the ring's thread, before anything else; 0 or -errno (the ring
	 * then does not run).  Optional. */
	int (*queue_start)(void *device, struct vhost_user_backend_queue *q);
	/* An extra fd the ring's thread also waits on (e.g. an io_uring
	 * completion eventfd), or -1.  Optional. */
	int (*queue_fd)(void *device, unsigned index);
	/* Process the ring: called at start, on each kick and when queue_fd
	 * is readable.  Returns how many ms until it wants to be called again
	 * without an event, or -1.  A guest violation leaves the virtq broken;
	 * the back-end stops the ring. */
	int (*handle_queue)(void *device, struct vhost_user_backend_queue *q);
	/* Sleep until the ring's next event instead of the thread's poll(2)
	 * on kick_fd, stop_fd and queue_fd: a kick (the device drains it),
	 * the device's own completions, or q->stop_fd becoming readable.
	 * timeout_ms as handle_queue returned, at most 1 with no kick fd (the
	 * ring is then polled); -1 none.  Returns 0 to have handle_queue
	 * called, 1 to stop the ring, or -errno (the ring stops serving until
	 * it is stopped).  Whatever it arms, queue_stop undoes.  Optional: for
	 * a device that can submit its work and sleep in one syscall
	 * (isola-blk: io_uring_enter). */
	int (*queue_wait)(void *device, struct vhost_user_backend_queue *q, int timeout_ms);
	/* Process one chain that a previous server instance left inflight
	 * (vhost-user: "Inflight I/O tracking"); called before handle_queue. */
	void (*handle_chain)(void *device, struct vhost_user_backend_queue *q,
			     struct virtq_chain *chain);
	/* In the ring's thread, when it stops: finish (or wait for) every
	 * request in flight and push it.  Optional. */
	void (*queue_stop)(void *device, struct vhost_user_backend_queue *q);
	/* The front-end went away or reset the device.  Optional. */
	void (*reset)(void *device);
	/* VHOST_USER_SET_STATUS (virtio 1.2 §2.1 device status); offered as
	 * VHOST_USER_PROTOCOL_F_STATUS only with this hook.  Status 0 is a
	 * device reset (§2.1.2, §3.1.1): the device forgets what the driver
	 * set.  Every ring is stopped during a call with status 0.  Optional. */
	void (*set_status)(void *device, struct vhost_user_backend *be, uint8_t status);
	/* Bytes of device state kept in the inflight region (0: none, at most
	 * VHOST_USER_BACKEND_STATE_MAX); see be->device_state. */
	uint32_t state_size;
	/* SET_INFLIGHT_FD brought a region whose state area has a valid
	 * header and checksum (a previous instance wrote it): restore from
	 * state (state_size bytes).  0, or -EINVAL if a field is invalid (the
	 * area is then ignored, one log line).  Called with every ring
	 * stopped.  Optional. */
	int (*state_restored)(void *device, struct vhost_user_backend *be, const void *state);
	/* The device's part of a running ring's dump line (SIGUSR1,
	 * vhost_user_backend_dump): " key=value" words into buf[len], from
	 * the socket thread while the ring's thread runs (racy reads only).
	 * Returns the bytes written (snprintf's, truncated at len).
	 * Optional. */
	int (*queue_dump)(void *device, const struct vhost_user_backend_queue *q, char *buf,
			  size_t len);
};

struct vhost_user_backend_region {
	uint64_t gpa, size, uva;
	void *map;       /* what mmap returned */
	size_t map_len;
};

struct vhost_user_backend {
	const struct vhost_user_backend_ops *ops;
	void *device;
	uint64_t acked_features;
	uint64_t protocol_features;
	bool owner;
	struct gmem mem;
	unsigned nr_regions;
	struct vhost_user_backend_region regions[VHOST_MEMORY_BASELINE_NREGIONS];
	void *inflight;            /* SET_INFLIGHT_FD mapping, NULL none */
	size_t inflight_map_len;
	uint64_t inflight_offset;  /* page offset of the region in the mapping */
	unsigned inflight_queues;
	uint64_t inflight_stride;  /* virtq_inflight_queue_bytes(queue_size) */
	/* ops->state_size bytes in the inflight region, NULL while none is
	 * mapped (or it has no state area).  The device writes its state here
	 * and then calls vhost_user_backend_state_commit; only from a ring
	 * thread or a hook, since the region is remapped with rings stopped. */
	void *device_state;
	uint8_t status;            /* SET_STATUS, for GET_STATUS */
	/* The last SET_DEVICE_STATE_FD transfer's outcome, for
	 * CHECK_DEVICE_STATE: 0, or -errno (-ENODATA: none was made). */
	int state_transfer;
	atomic_bool stopping;      /* vhost_user_backend_stop() was called */
	int dump_fd;               /* eventfd: a ring dump is asked (SIGUSR1) */
	struct vhost_user_backend_queue queues[VHOST_USER_BACKEND_MAX_QUEUES];
};

/* 0 or -errno (-EINVAL for bad ops, or eventfd errors). */
int vhost_user_backend_init(struct vhost_user_backend *be, const struct vhost_user_backend_ops *ops,
			    void *device);
void vhost_user_backend_destroy(struct vhost_user_backend *be);

/* A listening Unix stream socket at path (a stale socket file is replaced).
 * Returns the fd or -errno. */
int vhost_user_backend_listen(const char *path);

/*
 * Serve one connected front-end until it hangs up (returns 0) or breaks the
 * protocol (-EPROTO or another -errno, the connection should be closed).
 * Every ring is stopped and the state reset before returning; the caller
 * closes fd.
 */
int vhost_user_backend_serve(struct vhost_user_backend *be, int fd);

/*
 * Serve front-ends on fd: a listening socket is accepted from again after
 * each disconnect (until vhost_user_backend_stop); a connected socket is
 * served once.  Returns 0 or -errno.
 */
int vhost_user_backend_run(struct vhost_user_backend *be, int fd);
/* Make run() return after the current connection (async-signal-safe). */
void vhost_user_backend_stop(struct vhost_user_backend *be);

/*
 * The ring dump (servers/README.md "Operations"): one log line per running
 * ring with its indices as the guest sees them now, the back-end's own and
 * the counters above.  vhost_user_backend_request_dump is async-signal-safe
 * (a write to be->dump_fd, for a SIGUSR1 handler); the socket thread, which
 * owns the guest memory mappings, writes the lines when it next waits.
 * vhost_user_backend_format_queue formats one running ring's line (without
 * the program name) into buf[len]; returns snprintf's length.
 */
void vhost_user_backend_request_dump(struct vhost_user_backend *be);
void vhost_user_backend_dump(struct vhost_user_backend *be);
int vhost_user_backend_format_queue(const struct vhost_user_backend *be,
				    const struct vhost_user_backend_queue *q, char *buf, size_t len);

/* A counter of struct vhost_user_backend_queue, from the ring's thread: a
 * plain add, published for the dump's racy reader without a locked
 * instruction. */
static inline void vhost_user_backend_count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* Seal what the device wrote at be->device_state: the header's size and
 * checksum (a no-op without a state area). */
void vhost_user_backend_state_commit(struct vhost_user_backend *be);
/* The inflight region's size for num_queues rings of queue_size entries:
 * the queue regions, then the state area if ops->state_size. */
uint64_t vhost_user_backend_inflight_size(const struct vhost_user_backend_ops *ops,
					  unsigned num_queues, unsigned queue_size);

/* After pushing: interrupt the driver through the call fd if it wants one
 * (virtq_needs_interrupt). */
void vhost_user_backend_notify(struct vhost_user_backend_queue *q);

#endif
