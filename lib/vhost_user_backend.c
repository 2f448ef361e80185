// SPDX-License-Identifier: MIT
/*
 * vhost-user back-end: the front-end's messages (QEMU
 * docs/interop/vhost-user.rst, "Front-end message types"), memory table and
 * inflight region mapping, and the connection loop.  Ring threads live in
 * lib/vhost_user_backend_queue.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/vhost_user_backend.h"
#include "lib/vhost_user_backend_internal.h"

/* A handler's verdict on a front-end that asked for something impossible
 * (bad ring index, features it was not offered ...): refused with a failed
 * REPLY_ACK if one was asked for, else the connection is closed. */
#define REFUSE (-EINVAL)

static struct vhost_user_backend_queue *queue_at(struct vhost_user_backend *be, uint64_t index)
{
	if (index >= be->ops->num_queues) {
		log_warn("the front-end names ring %llu; the device has %u",
			 (unsigned long long)index, be->ops->num_queues);
		return NULL;
	}
	return &be->queues[index];
}

static int reply(int fd, struct vhost_user_msg *msg, uint32_t size)
{
	msg->hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
	msg->hdr.size = size;
	return vhost_user_send(fd, msg);
}

/* ---- memory table (vhost-user: VHOST_USER_SET_MEM_TABLE) ---------------- */

static void unmap_regions(struct vhost_user_backend_region *regions, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (regions[i].map)
			munmap(regions[i].map, regions[i].map_len);
}

/* Map one region's fd at its mmap_offset; the fd must really hold the
 * range, or touching it would kill us with SIGBUS. */
static int map_region(const struct vhost_user_mem_region *in, int fd,
		      struct vhost_user_backend_region *out)
{
	uint64_t page = (uint64_t)getpagesize();
	uint64_t start = in->mmap_offset & ~(page - 1), delta = in->mmap_offset - start;
	struct stat st;
	void *map;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
		return -EINVAL;
	if (S_ISREG(st.st_mode) && (in->mmap_offset > (uint64_t)st.st_size ||
				    in->size > (uint64_t)st.st_size - in->mmap_offset))
		return -EINVAL;
	if (in->size > SIZE_MAX - delta || start > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* Like the core's own mapping (lib/gmem.c): 2 MiB pages where the fd
	 * has them.  MAP_NORESERVE: on hugetlbfs the front-end's mapping holds
	 * the reservation, and the pages we fault in come out of it. */
	ret = gmem_map_fd(fd, start, in->size + delta, 1, &map);
	if (ret)
		return ret;
	*out = (struct vhost_user_backend_region){.gpa = in->guest_address,
						  .size = in->size,
						  .uva = in->user_address,
						  .map = map,
						  .map_len = in->size + delta};
	return 0;
}

static bool uva_overlaps(const struct vhost_user_backend_region *r, unsigned n,
			 const struct vhost_user_mem_region *in)
{
	for (unsigned i = 0; i < n; i++)
		if (in->user_address < r[i].uva + r[i].size &&
		    r[i].uva < in->user_address + in->size)
			return true;
	return false;
}

static int handle_set_mem_table(struct vhost_user_backend *be, struct vhost_user_msg *msg)
{
	const struct vhost_user_memory *m = &msg->payload.memory;
	struct vhost_user_backend_region regions[VHOST_MEMORY_BASELINE_NREGIONS];
	struct gmem mem;
	unsigned running, n = 0;
	int ret = 0;

	gmem_init_empty(&mem);
	for (; n < m->nregions; n++) {
		const struct vhost_user_mem_region *in = &m->regions[n];

		if (uva_overlaps(regions, n, in)) {
			ret = REFUSE;
			break;
		}
		ret = map_region(in, msg->fds[n], &regions[n]);
		if (ret)
			break;
		ret = gmem_add_region(&mem, in->guest_address, in->size,
				      (uint8_t *)regions[n].map + (regions[n].map_len - in->size));
		if (ret) {
			n++;
			break;
		}
	}
	if (ret) {
		log_warn("SET_MEM_TABLE: region %u refused: %s", n ? n - 1 : 0, strerror(-ret));
		unmap_regions(regions, n);
		return REFUSE;
	}
	/* Rings point into the old table: stop them, swap, restart. */
	running = backend_stop_all(be);
	unmap_regions(be->regions, be->nr_regions);
	memcpy(be->regions, regions, sizeof(regions[0]) * n);
	be->nr_regions = n;
	be->mem = mem;
	backend_restart(be, running);
	return 0;
}

/* ---- inflight region (vhost-user: "Inflight I/O tracking") -------------- */

static bool inflight_shape_ok(const struct vhost_user_backend *be,
			      const struct vhost_user_inflight *in)
{
	return in->num_queues >= 1 && in->num_queues <= be->ops->num_queues &&
	       in->queue_size >= 1 && in->queue_size <= VIRTQ_MAX_SIZE &&
	       !(in->queue_size & (in->queue_size - 1));
}

static int handle_get_inflight_fd(struct vhost_user_backend *be, int sock,
				  struct vhost_user_msg *msg)
{
	struct vhost_user_inflight in = msg->payload.inflight;
	uint64_t size;
	int fd = -1;

	if (!inflight_shape_ok(be, &in)) {
		log_warn("GET_INFLIGHT_FD: %u queues of %u entries refused", in.num_queues,
			 in.queue_size);
		size = 0;
	} else {
		size = vhost_user_backend_inflight_size(be->ops, in.num_queues, in.queue_size);
		/* A new memfd reads as zeroes: every queue region is "fresh". */
		fd = memfd_create("isola-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			log_warn("GET_INFLIGHT_FD: memfd: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
			size = 0;
		} else {
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		}
	}
	vhost_user_msg_init(msg, VHOST_USER_GET_INFLIGHT_FD, 0);
	msg->payload.inflight = (struct vhost_user_inflight){.mmap_size = size,
							     .mmap_offset = 0,
							     .num_queues = in.num_queues,
							     .queue_size = in.queue_size};
	if (fd >= 0) {
		msg->fds[0] = fd;
		msg->nfds = 1;
	}
	/* fds stay ours: vhost_user_close_fds() after sending closes them. */
	return reply(sock, msg, sizeof(msg->payload.inflight));
}

static void inflight_unmap(struct vhost_user_backend *be)
{
	if (be->inflight)
		munmap(be->inflight, be->inflight_map_len);
	be->inflight = NULL;
	be->inflight_queues = 0;
	be->device_state = NULL;
}

/* ---- device-state area (after the queue regions; isola's own layout) ----- */

uint64_t vhost_user_backend_inflight_size(const struct vhost_user_backend_ops *ops,
					  unsigned num_queues, unsigned queue_size)
{
	uint64_t size = virtq_inflight_queue_bytes(queue_size) * num_queues;

	if (ops->state_size)
		size += sizeof(struct vhost_user_backend_state_header) + ops->state_size;
	return size;
}

static uint32_t state_checksum(const uint8_t *p, uint32_t len)
{
	uint32_t h = 0x811c9dc5u; /* FNV-1a */

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x01000193u;
	return h;
}

static struct vhost_user_backend_state_header *state_header(struct vhost_user_backend *be)
{
	return be->device_state ? (struct vhost_user_backend_state_header *)be->device_state - 1
				: NULL;
}

void vhost_user_backend_state_commit(struct vhost_user_backend *be)
{
	struct vhost_user_backend_state_header *h = state_header(be);

	if (!h)
		return;
	/* Payload first, then the header that vouches for it: an instance
	 * killed in between leaves a checksum that does not match, and the
	 * next one starts from the defaults rather than half a state. */
	h->magic = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	h->version = VHOST_USER_BACKEND_STATE_VERSION;
	h->size = be->ops->state_size;
	h->checksum = state_checksum(be->device_state, be->ops->state_size);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	h->magic = VHOST_USER_BACKEND_STATE_MAGIC;
}

/* A region just mapped: find its state area and give a valid one to the
 * device.  Rings are stopped.  A fresh region (all zero) is silently new; a
 * spoiled one is ignored with one line. */
static void state_attach(struct vhost_user_backend *be, uint64_t mmap_size)
{
	uint64_t queues = be->inflight_stride * be->inflight_queues;
	struct vhost_user_backend_state_header h;
	const char *why = NULL;
	int ret;

	if (!be->ops->state_size || mmap_size < queues + sizeof(h) + be->ops->state_size) {
		if (be->ops->state_size)
			log_warn("SET_INFLIGHT_FD: no room for the device state after the queues; "
				 "the device state is not kept across restarts");
		return;
	}
	be->device_state = (uint8_t *)be->inflight + be->inflight_offset + queues + sizeof(h);
	memcpy(&h, state_header(be), sizeof(h));
	if (h.magic == 0)
		return; /* fresh: nothing written yet */
	if (h.magic != VHOST_USER_BACKEND_STATE_MAGIC)
		why = "bad magic";
	else if (h.version != VHOST_USER_BACKEND_STATE_VERSION)
		why = "unknown version";
	else if (h.size != be->ops->state_size)
		why = "wrong size";
	else if (h.checksum != state_checksum(be->device_state, be->ops->state_size))
		why = "bad checksum";
	else if (be->ops->state_restored &&
		 (ret = be->ops->state_restored(be->device, be, be->device_state)) < 0)
		why = "a field the device refuses";
	if (why)
		log_warn("inflight region: the saved device state is ignored (%s); the device "
			 "starts from its defaults",
			 why);
	else
		log_info("inflight region: device state restored");
}

static int handle_set_inflight_fd(struct vhost_user_backend *be, struct vhost_user_msg *msg)
{
	const struct vhost_user_inflight *in = &msg->payload.inflight;
	uint64_t page = (uint64_t)getpagesize(), stride, start, delta;
	unsigned running;
	struct stat st;
	void *map;

	if (!inflight_shape_ok(be, in))
		return REFUSE;
	stride = virtq_inflight_queue_bytes(in->queue_size);
	start = in->mmap_offset & ~(page - 1);
	delta = in->mmap_offset - start;
	if (in->mmap_size < stride * in->num_queues || in->mmap_size > SIZE_MAX - delta ||
	    start > (uint64_t)INT64_MAX || fstat(msg->fds[0], &st) < 0 || !S_ISREG(st.st_mode) ||
	    in->mmap_offset > (uint64_t)st.st_size ||
	    in->mmap_size > (uint64_t)st.st_size - in->mmap_offset)
		return REFUSE;
	map = mmap(NULL, in->mmap_size + delta, PROT_READ | PROT_WRITE, MAP_SHARED, msg->fds[0],
		   (off_t)start);
	if (map == MAP_FAILED)
		return -errno;
	running = backend_stop_all(be);
	inflight_unmap(be);
	be->inflight = map;
	be->inflight_map_len = in->mmap_size + delta;
	be->inflight_offset = delta;
	be->inflight_queues = in->num_queues;
	be->inflight_stride = stride;
	state_attach(be, in->mmap_size);
	backend_restart(be, running);
	return 0;
}

/* ---- rings --------------------------------------------------------------- */

static int handle_vring_fd(struct vhost_user_backend *be, struct vhost_user_msg *msg)
{
	struct vhost_user_backend_queue *q =
	    queue_at(be, msg->payload.u64 & VHOST_USER_VRING_IDX_MASK);
	int fd = -1, old = -1;

	/* Bits 9..63 are reserved (vhost-user: SET_VRING_KICK). */
	if (!q || (msg->payload.u64 >> 9))
		return REFUSE;
	if (!(msg->payload.u64 & VHOST_USER_VRING_NOFD_MASK)) {
		fd = msg->fds[0];
		msg->fds[0] = -1; /* ours now */
		/* The ring thread reads the kick eventfd only after poll, but a
		 * spurious wake-up must not block it. */
		if (msg->hdr.request == VHOST_USER_SET_VRING_KICK)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		backend_queue_stop(be, q);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = fd;
		q->kick_set = true;
		backend_queue_maybe_start(be, q);
		return 0;
	case VHOST_USER_SET_VRING_CALL:
		pthread_mutex_lock(&q->lock);
		old = q->call_fd;
		q->call_fd = fd;
		pthread_mutex_unlock(&q->lock);
		break;
	default: /* SET_VRING_ERR */
		pthread_mutex_lock(&q->lock);
		old = q->err_fd;
		q->err_fd = fd;
		pthread_mutex_unlock(&q->lock);
		break;
	}
	if (old >= 0)
		close(old);
	return 0;
}

static int handle_vring_state(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	struct vhost_user_backend_queue *q = queue_at(be, msg->payload.state.index);
	uint32_t num = msg->payload.state.num;

	if (!q)
		return REFUSE;
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_NUM:
		if (q->running || num == 0 || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
			return REFUSE;
		q->num = num;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		/* split rings: the next avail index, 16 bits */
		if (q->running || num > UINT16_MAX)
			return REFUSE;
		q->base = (uint16_t)num;
		q->vq_valid = false;
		return 0;
	case VHOST_USER_SET_VRING_ENABLE:
		q->enabled = num;
		if (num)
			backend_queue_maybe_start(be, q);
		else
			backend_queue_stop(be, q);
		return 0;
	default: /* GET_VRING_BASE: stop the ring, report where it stopped */
		backend_queue_stop(be, q);
		backend_queue_close_fds(q);
		q->vq_valid = false;
		msg->payload.state.num = q->base;
		return reply(sock, msg, sizeof(msg->payload.state));
	}
}

static int handle_vring_addr(struct vhost_user_backend *be, struct vhost_user_msg *msg)
{
	const struct vhost_user_vring_addr *a = &msg->payload.addr;
	struct vhost_user_backend_queue *q = queue_at(be, a->index);

	/* Logging (flag bit 0) needs LOG_ALL, which is never offered. */
	if (!q || q->running || a->flags)
		return REFUSE;
	q->desc_uva = a->desc_user_addr;
	q->avail_uva = a->avail_user_addr;
	q->used_uva = a->used_user_addr;
	q->addr_set = true;
	return 0;
}

/* ---- device-wide --------------------------------------------------------- */

static uint64_t offered_features(const struct vhost_user_backend *be)
{
	return be->ops->features | (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
	       (1ull << VIRTIO_F_VERSION_1);
}

/* Forget everything a front-end set up (disconnect, RESET_OWNER). */
static void backend_reset(struct vhost_user_backend *be)
{
	backend_stop_all(be);
	for (unsigned i = 0; i < be->ops->num_queues; i++) {
		struct vhost_user_backend_queue *q = &be->queues[i];

		backend_queue_close_fds(q);
		q->num = 0;
		q->addr_set = q->enabled = q->vq_valid = false;
		q->base = 0;
	}
	unmap_regions(be->regions, be->nr_regions);
	be->nr_regions = 0;
	gmem_init_empty(&be->mem);
	inflight_unmap(be);
	be->acked_features = 0;
	be->protocol_features = 0;
	be->owner = false;
	be->status = 0;
	be->state_transfer = -ENODATA;
	if (be->ops->reset)
		be->ops->reset(be->device);
}

static int handle_config(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	struct vhost_user_config *c = &msg->payload.config;
	uint8_t config[VHOST_USER_MAX_CONFIG_SIZE] = {0};
	int ret;

	if (msg->hdr.request == VHOST_USER_SET_CONFIG) {
		if (!be->ops->set_config)
			return REFUSE;
		ret = be->ops->set_config(be->device, c->offset, c->payload, c->size);
		return ret ? REFUSE : 0;
	}
	/* GET_CONFIG: bytes past the device's config space read as zero. */
	if (be->ops->get_config)
		be->ops->get_config(be->device, config);
	memcpy(c->payload, config + c->offset, c->size);
	return reply(sock, msg, VHOST_USER_CONFIG_HDR_SIZE + c->size);
}

/* CONFIG only for a device that has a config space (rng has none, and
 * QEMU warns about a back-end that offers it anyway). */
static uint64_t offered_protocol_features(const struct vhost_user_backend *be)
{
	uint64_t features = VHOST_USER_BACKEND_PROTOCOL_FEATURES;

	if (!be->ops->get_config)
		features &= ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	if (be->ops->set_status)
		features |= 1ull << VHOST_USER_PROTOCOL_F_STATUS;
	return features;
}

/* vhost-user: VHOST_USER_SET_STATUS / GET_STATUS, "when the
 * VHOST_USER_PROTOCOL_F_STATUS protocol feature has been successfully
 * negotiated": the virtio device status byte (virtio 1.2 §2.1). */
static int handle_status(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	uint64_t value = msg->payload.u64;
	unsigned running;

	if (!(be->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_STATUS)))
		return -EOPNOTSUPP;
	if (msg->hdr.request == VHOST_USER_GET_STATUS)
		return vhost_user_reply_u64(sock, msg->hdr.request, be->status);
	if (value > UINT8_MAX)
		return REFUSE;
	be->status = (uint8_t)value;
	if (value != 0) {
		be->ops->set_status(be->device, be, be->status);
		return 0;
	}
	/* A reset: the device forgets the driver's settings with no ring
	 * thread using them (the front-end has normally stopped them all). */
	running = backend_stop_all(be);
	be->ops->set_status(be->device, be, 0);
	backend_restart(be, running);
	return 0;
}

static int handle_u64(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	uint64_t value = msg->payload.u64;

	switch (msg->hdr.request) {
	case VHOST_USER_GET_FEATURES:
		return vhost_user_reply_u64(sock, msg->hdr.request, offered_features(be));
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return vhost_user_reply_u64(sock, msg->hdr.request, offered_protocol_features(be));
	case VHOST_USER_GET_QUEUE_NUM:
		return vhost_user_reply_u64(sock, msg->hdr.request, be->ops->num_queues);
	case VHOST_USER_SET_FEATURES:
		if (value & ~offered_features(be))
			return REFUSE;
		be->acked_features = value;
		return 0;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (value & ~offered_protocol_features(be))
			return REFUSE;
		be->protocol_features = value;
		return 0;
	}
	return REFUSE;
}

/* ---- device state transfer (VHOST_USER_PROTOCOL_F_DEVICE_STATE) ---------- */

/* How long the channel may take: the stream is at most a few KiB, written
 * whole by the front-end before it sends the message (a pipe holds 64
 * KiB), so a wait means a front-end that kept its end open. */
#define STATE_TRANSFER_TIMEOUT_MS 5000

/* Write len bytes to the channel (non-blocking: a full pipe or a reader
 * that never reads is a failed transfer, not a hung server). */
static int state_write(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EAGAIN) {
			int r = poll(&pfd, 1, STATE_TRANSFER_TIMEOUT_MS);

			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Save: the header and the device's state area, into the channel.  The
 * device keeps its area current (it commits after each change), so the
 * area is the state. */
static int state_save(struct vhost_user_backend *be, int fd)
{
	uint8_t buf[sizeof(struct vhost_user_backend_state_header) + VHOST_USER_BACKEND_STATE_MAX];
	struct vhost_user_backend_state_header h = {
	    .magic = VHOST_USER_BACKEND_STATE_MAGIC,
	    .version = VHOST_USER_BACKEND_STATE_VERSION,
	    .size = be->ops->state_size,
	};

	if (h.size && !be->device_state) {
		log_warn("device state save: the device keeps its state in the inflight region, "
			 "and the front-end gave none (VHOST_USER_SET_INFLIGHT_FD)");
		return -ENODATA;
	}
	if (h.size)
		memcpy(buf + sizeof(h), be->device_state, h.size);
	h.checksum = state_checksum(buf + sizeof(h), h.size);
	memcpy(buf, &h, sizeof(h));
	return state_write(fd, buf, sizeof(h) + h.size);
}

/* Load: the channel's stream, checked as a state area is, to the device
 * (and to its area, so a restart of this server keeps it). */
static int state_load(struct vhost_user_backend *be, int fd)
{
	uint8_t buf[sizeof(struct vhost_user_backend_state_header) + VHOST_USER_BACKEND_STATE_MAX];
	struct vhost_user_backend_state_header h;
	ssize_t n = vhost_user_state_read(fd, buf, sizeof(buf));
	const char *why = NULL;
	unsigned running;
	int ret = 0;

	if (n < 0) {
		log_warn("device state load: reading the channel: %s", strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n < sizeof(h)) {
		log_warn("device state load: %zd bytes, shorter than the header", n);
		return -EINVAL;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != VHOST_USER_BACKEND_STATE_MAGIC)
		why = "bad magic";
	else if (h.version != VHOST_USER_BACKEND_STATE_VERSION)
		why = "unknown version";
	else if (h.size != be->ops->state_size || (size_t)n != sizeof(h) + h.size)
		why = "wrong size (another device's state?)";
	else if (h.checksum != state_checksum(buf + sizeof(h), h.size))
		why = "bad checksum";
	if (why) {
		log_warn("device state load: refused: %s", why);
		return -EINVAL;
	}
	if (!h.size)
		return 0;
	running = backend_stop_all(be);
	if (be->ops->state_restored)
		ret = be->ops->state_restored(be->device, be, buf + sizeof(h));
	if (ret < 0) {
		log_warn("device state load: refused: a field the device refuses");
	} else if (be->device_state) {
		memcpy(be->device_state, buf + sizeof(h), h.size);
		vhost_user_backend_state_commit(be);
	}
	backend_restart(be, running);
	return ret < 0 ? -EINVAL : 0;
}

/* vhost-user: VHOST_USER_SET_DEVICE_STATE_FD.  The only phase is
 * "stopped": every ring must be stopped.  The transfer happens here, on
 * the front-end's fd (no channel of our own: reply with the invalid-FD
 * flag); its outcome is CHECK_DEVICE_STATE's answer. */
static int handle_set_device_state_fd(struct vhost_user_backend *be, int sock,
				      struct vhost_user_msg *msg)
{
	const struct vhost_user_device_state *p = &msg->payload.device_state;
	int fd = msg->fds[0];
	bool running = false;
	int flags;

	if (!(be->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE)))
		return -EOPNOTSUPP;
	for (unsigned i = 0; i < be->ops->num_queues; i++)
		running |= be->queues[i].running;
	flags = fcntl(fd, F_GETFL);
	if (running) {
		log_warn("SET_DEVICE_STATE_FD with a ring running (the phase is \"stopped\")");
		be->state_transfer = -EBUSY;
	} else if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		be->state_transfer = -errno;
	} else {
		be->state_transfer =
		    p->transfer_direction == 0 ? state_save(be, fd) : state_load(be, fd);
	}
	/* the writing end closes to mark the end; the reading end is done */
	close(fd);
	msg->fds[0] = -1;
	msg->nfds = 0;
	/* bits 0-7 zero: the channel was taken; bit 8: no fd of ours */
	return vhost_user_reply_u64(sock, msg->hdr.request, VHOST_USER_VRING_NOFD_MASK);
}

static int handle_check_device_state(struct vhost_user_backend *be, int sock,
				     struct vhost_user_msg *msg)
{
	if (!(be->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE)))
		return -EOPNOTSUPP;
	return vhost_user_reply_u64(sock, msg->hdr.request, be->state_transfer ? 1 : 0);
}

/* Handle one validated request.  Returns 0, REFUSE, or another -errno
 * (the connection is then closed). */
static int handle_request(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	switch (msg->hdr.request) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
		return handle_u64(be, sock, msg);
	case VHOST_USER_SET_OWNER:
		be->owner = true;
		return 0;
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
		backend_reset(be);
		return 0;
	case VHOST_USER_SET_MEM_TABLE:
		return handle_set_mem_table(be, msg);
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		return handle_vring_state(be, sock, msg);
	case VHOST_USER_SET_VRING_ADDR:
		return handle_vring_addr(be, msg);
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return handle_vring_fd(be, msg);
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		return handle_config(be, sock, msg);
	case VHOST_USER_GET_INFLIGHT_FD:
		return handle_get_inflight_fd(be, sock, msg);
	case VHOST_USER_SET_INFLIGHT_FD:
		return handle_set_inflight_fd(be, msg);
	case VHOST_USER_SET_STATUS:
	case VHOST_USER_GET_STATUS:
		return handle_status(be, sock, msg);
	case VHOST_USER_SET_DEVICE_STATE_FD:
		return handle_set_device_state_fd(be, sock, msg);
	case VHOST_USER_CHECK_DEVICE_STATE:
		return handle_check_device_state(be, sock, msg);
	}
	return -EOPNOTSUPP;
}

/* ---- connection ---------------------------------------------------------- */

/* ---- ring dump (SIGUSR1) ------------------------------------------------- */

void vhost_user_backend_request_dump(struct vhost_user_backend *be)
{
	uint64_t one = 1;

	/* async-signal-safe: one write(2); a full counter still wakes us */
	if (be->dump_fd >= 0 && write(be->dump_fd, &one, sizeof(one)) < 0) {
	}
}

/* A value the ring's thread or the guest writes meanwhile: read once, as
 * it is now (the dump is a snapshot of a moving ring, not a consistent
 * one). */
#define DUMP_READ(lvalue) __atomic_load_n(&(lvalue), __ATOMIC_RELAXED)

int vhost_user_backend_format_queue(const struct vhost_user_backend *be,
				    const struct vhost_user_backend_queue *q, char *buf, size_t len)
{
	const struct virtq *vq = &q->vq;
	unsigned size = vq->size;
	/* §2.7.10: used_event follows the avail ring, avail_event the used
	 * ring; both exist in guest memory whether or not EVENT_IDX was
	 * negotiated (virtq_init checked their room) */
	const uint16_t *used_event = &vq->avail->ring[size];
	const uint16_t *avail_event = (const uint16_t *)&vq->used->ring[size];
	int n;

	n = snprintf(
	    buf, len,
	    "ring %u size=%u avail.flags=%u avail.idx=%u last_avail=%u used.flags=%u "
	    "used.idx=%u used_idx=%u used_event=%u avail_event=%u signalled_used=%u%s "
	    "event_idx=%d notify=%d broken=%d kicks=%llu calls=%llu no_call=%llu "
	    "turns=%llu",
	    q->index, size, DUMP_READ(vq->avail->flags), DUMP_READ(vq->avail->idx),
	    DUMP_READ(vq->last_avail_idx), DUMP_READ(vq->used->flags), DUMP_READ(vq->used->idx),
	    DUMP_READ(vq->used_idx), DUMP_READ(*used_event), DUMP_READ(*avail_event),
	    DUMP_READ(vq->signalled_used), DUMP_READ(vq->signalled_used_valid) ? "" : "(none)",
	    vq->event_idx, DUMP_READ(vq->notify_enabled), DUMP_READ(vq->broken),
	    (unsigned long long)DUMP_READ(q->kicks), (unsigned long long)DUMP_READ(q->calls),
	    (unsigned long long)DUMP_READ(q->no_call), (unsigned long long)DUMP_READ(q->turns));
	if (n < 0 || (size_t)n >= len || !be->ops->queue_dump)
		return n;
	return n + be->ops->queue_dump(be->device, q, buf + n, len - (size_t)n);
}

void vhost_user_backend_dump(struct vhost_user_backend *be)
{
	unsigned running = 0;
	char line[768];

	/* The socket thread: rings start and stop and guest memory is mapped
	 * and unmapped only here, so every pointer read below stays valid. */
	for (unsigned i = 0; i < be->ops->num_queues; i++) {
		if (!be->queues[i].running)
			continue;
		running++;
		vhost_user_backend_format_queue(be, &be->queues[i], line, sizeof(line));
		log_info("%s", line);
	}
	if (!running)
		log_info("ring dump: no ring is running (%s)",
			 be->nr_regions ? "the front-end started none" : "no front-end memory");
}

/* Sleep until fd is readable, writing the ring dumps asked meanwhile.  0,
 * -EINTR (a signal: the caller looks at be->stopping) or -errno. */
static int wait_readable(struct vhost_user_backend *be, int fd)
{
	for (;;) {
		struct pollfd pfd[2] = {
		    {.fd = fd, .events = POLLIN},
		    {.fd = be->dump_fd, .events = POLLIN},
		};
		uint64_t value;

		if (poll(pfd, 2, -1) < 0)
			return -errno;
		if ((pfd[1].revents & POLLIN) && read(be->dump_fd, &value, sizeof(value)) > 0)
			vhost_user_backend_dump(be);
		if (pfd[0].revents)
			return 0;
	}
}

/* ---- connection ---------------------------------------------------------- */

/* Receive one message, waiting for it even on a non-blocking socket. */
static int receive(struct vhost_user_backend *be, int sock, struct vhost_user_msg *msg)
{
	for (;;) {
		/* poll first: a blocking recvmsg would not see a dump request */
		int ret = wait_readable(be, sock);

		if (ret == -EINTR)
			continue;
		if (ret)
			return ret;
		ret = vhost_user_recv(sock, msg);
		if (ret != -EAGAIN)
			return ret;
	}
}

int vhost_user_backend_serve(struct vhost_user_backend *be, int sock)
{
	struct vhost_user_msg msg;
	int ret;

	for (;;) {
		const char *name;
		bool ack;

		ret = receive(be, sock, &msg);
		if (ret == -ECONNRESET) {
			ret = 0;
			break;
		}
		if (ret) {
			log_error("front-end connection: %s; closing it", strerror(-ret));
			break;
		}
		name = vhost_user_request_name(msg.hdr.request);
		ret = vhost_user_validate(&msg, true);
		if (ret == -EPROTO) {
			log_error("front-end sent a malformed %s (request %u, %u bytes, %u fds); "
				  "closing the connection",
				  name, msg.hdr.request, msg.hdr.size, msg.nfds);
			vhost_user_close_fds(&msg);
			break;
		}
		ack = vhost_user_needs_ack(&msg);
		if (ret == 0)
			ret = handle_request(be, sock, &msg);
		if (ret == -EOPNOTSUPP && !ack && vhost_user_expects_reply(&msg)) {
			log_error("front-end sent %s (request %u), which isola does not implement "
				  "and which needs a reply; closing the connection",
				  name, msg.hdr.request);
			vhost_user_close_fds(&msg);
			break;
		}
		if (ret == -EOPNOTSUPP)
			log_warn("front-end sent %s (request %u), not offered; ignored", name,
				 msg.hdr.request);
		else if (ret)
			log_warn("front-end request %s refused: %s", name, strerror(-ret));
		vhost_user_close_fds(&msg);
		if (ack) {
			int sent = vhost_user_ack(sock, msg.hdr.request, ret ? 1 : 0);

			if (sent) {
				ret = sent;
				break;
			}
		} else if (ret && ret != -EOPNOTSUPP) {
			log_error("closing the connection: a refused %s cannot be reported "
				  "without REPLY_ACK",
				  name);
			break;
		}
		ret = 0;
	}
	backend_reset(be);
	return ret;
}

int vhost_user_backend_run(struct vhost_user_backend *be, int fd)
{
	int listening = 0;
	socklen_t len = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return -errno;
	if (!listening)
		return vhost_user_backend_serve(be, fd);
	while (!atomic_load(&be->stopping)) {
		int conn = wait_readable(be, fd);

		if (conn == -EINTR)
			continue;
		if (conn < 0)
			return conn;
		conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return -errno;
		}
		log_info("front-end connected");
		vhost_user_backend_serve(be, conn);
		close(conn);
		log_info("front-end disconnected; waiting for the next one");
	}
	return 0;
}

void vhost_user_backend_stop(struct vhost_user_backend *be)
{
	atomic_store(&be->stopping, true);
}

int vhost_user_backend_listen(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	/* Replace a stale socket left by a previous run (nobody listens: the
	 * connect is refused), never another file nor a socket in use (a
	 * second VM given the same path, another service's socket).  A
	 * restarted server's predecessor may still be dying (a sandboxed
	 * server is the child of the process the core killed, and follows it
	 * by PDEATHSIG a moment later): it gets a second to go. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		for (unsigned tries = 0;; tries++) {
			bool live;

			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (fd < 0)
				return -errno;
			live = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ||
			       errno == EAGAIN;
			close(fd);
			if (!live)
				break;
			if (tries == 20)
				return -EADDRINUSE;
			usleep(50 * 1000);
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int vhost_user_backend_init(struct vhost_user_backend *be, const struct vhost_user_backend_ops *ops,
			    void *device)
{
	memset(be, 0, sizeof(*be));
	if (!ops->handle_queue || ops->num_queues == 0 ||
	    ops->num_queues > VHOST_USER_BACKEND_MAX_QUEUES ||
	    ops->state_size > VHOST_USER_BACKEND_STATE_MAX)
		return -EINVAL;
	be->ops = ops;
	be->device = device;
	gmem_init_empty(&be->mem);
	atomic_init(&be->stopping, false);
	be->state_transfer = -ENODATA;
	be->dump_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->dump_fd < 0)
		return -errno;
	for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
		struct vhost_user_backend_queue *q = &be->queues[i];

		q->backend = be;
		q->index = i;
		q->kick_fd = q->call_fd = q->err_fd = q->stop_fd = -1;
		pthread_mutex_init(&q->lock, NULL);
		if (i < ops->num_queues) {
			q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (q->stop_fd < 0) {
				vhost_user_backend_destroy(be);
				return -errno;
			}
		}
	}
	return 0;
}

void vhost_user_backend_destroy(struct vhost_user_backend *be)
{
	if (!be->ops)
		return;
	backend_reset(be);
	for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
		if (be->queues[i].stop_fd >= 0)
			close(be->queues[i].stop_fd);
		be->queues[i].stop_fd = -1;
		pthread_mutex_destroy(&be->queues[i].lock);
	}
	if (be->dump_fd >= 0)
		close(be->dump_fd);
	be->dump_fd = -1;
	be->ops = NULL;
}
