// SPDX-License-Identifier: MIT
/*
 * blk-loadgen's vhost-user front-end: connect, negotiate, share the memfd
 * guest memory and start one ring, as devices/vhost_user_device.c does for
 * the isola core (vhost-user: "Communication", "Starting and stopping
 * rings").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/blk/loadgen.h"
#include "lib/vhost_user.h"

/* One request; with REPLY_ACK, requests without a reply ask for an ack so a
 * back-end's refusal shows where it happens (as devices/vhost_user_device.c). */
static int lg_call(struct loadgen *lg, struct vhost_user_msg *msg, struct vhost_user_msg *reply)
{
	struct vhost_user_msg local;
	int ret;

	if (!reply)
		reply = &local;
	if ((lg->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
	    !vhost_user_expects_reply(msg))
		msg->hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	ret = vhost_user_call(lg->sock, msg, reply);
	if (!ret && vhost_user_needs_ack(msg) && reply->payload.u64 != 0)
		ret = -EIO;
	if (reply == &local)
		vhost_user_close_fds(&local);
	if (ret)
		fprintf(stderr, "blk-loadgen: %s: %s\n", vhost_user_request_name(msg->hdr.request),
			strerror(-ret));
	return ret;
}

static int lg_get_u64(struct loadgen *lg, uint32_t request, uint64_t *value)
{
	struct vhost_user_msg msg, reply;
	int ret;

	vhost_user_msg_init(&msg, request, 0);
	ret = lg_call(lg, &msg, &reply);
	if (!ret)
		*value = reply.payload.u64;
	vhost_user_close_fds(&reply);
	return ret;
}

static int lg_set_u64(struct loadgen *lg, uint32_t request, uint64_t value)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(uint64_t));
	msg.payload.u64 = value;
	return lg_call(lg, &msg, NULL);
}

static int lg_set_state(struct loadgen *lg, uint32_t request, unsigned index, unsigned num)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(msg.payload.state));
	msg.payload.state.index = index;
	msg.payload.state.num = num;
	return lg_call(lg, &msg, NULL);
}

static int lg_set_fd(struct loadgen *lg, uint32_t request, unsigned index, int fd)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(uint64_t));
	msg.payload.u64 = index; /* vring index, fd valid */
	msg.fds[0] = fd;
	msg.nfds = 1;
	return lg_call(lg, &msg, NULL);
}

int loadgen_connect(struct loadgen *lg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	if (strlen(lg->opt->socket) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "blk-loadgen: socket path %s is too long\n", lg->opt->socket);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, lg->opt->socket);
	lg->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lg->sock < 0 || connect(lg->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "blk-loadgen: connect %s: %s (is the back-end listening?)\n",
			lg->opt->socket, strerror(errno));
		return -errno;
	}
	return 0;
}

/* vhost-user: "Communication": features, protocol features, owner, and
 * the device config for the capacity. */
int loadgen_negotiate(struct loadgen *lg)
{
	uint64_t offered, protocol, wanted = 1ull << VIRTIO_F_VERSION_1;
	struct vhost_user_msg msg, reply;
	uint64_t capacity;
	int ret;

	ret = lg_get_u64(lg, VHOST_USER_GET_FEATURES, &offered);
	if (ret)
		return ret;
	if (!(offered & (1ull << VIRTIO_F_VERSION_1)) ||
	    !(offered & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
		fprintf(stderr, "blk-loadgen: the back-end lacks VERSION_1 or PROTOCOL_FEATURES\n");
		return -EPROTO;
	}
	if (lg->opt->event_idx)
		wanted |= 1ull << VIRTIO_F_EVENT_IDX;
	if (lg->opt->queues > 1) {
		/* §5.2.3: num_queues is only valid with VIRTIO_BLK_F_MQ. */
		if (!(offered & (1ull << VIRTIO_BLK_F_MQ))) {
			fprintf(stderr, "blk-loadgen: the back-end lacks VIRTIO_BLK_F_MQ\n");
			return -EPROTO;
		}
		wanted |= 1ull << VIRTIO_BLK_F_MQ;
	}
	lg->features = (offered & wanted) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	ret = lg_get_u64(lg, VHOST_USER_GET_PROTOCOL_FEATURES, &protocol);
	if (ret)
		return ret;
	protocol &= (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		    (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_MQ);
	if (!(protocol & (1ull << VHOST_USER_PROTOCOL_F_CONFIG))) {
		fprintf(stderr,
			"blk-loadgen: the back-end lacks PROTOCOL_F_CONFIG (the capacity)\n");
		return -EPROTO;
	}
	/* Never acked: REPLY_ACK is not in force before this one is done. */
	vhost_user_msg_init(&msg, VHOST_USER_SET_PROTOCOL_FEATURES, sizeof(uint64_t));
	msg.payload.u64 = protocol;
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	lg->protocol_features = protocol;
	if (lg->opt->queues > 1) {
		uint64_t max = 1;

		/* vhost-user: GET_QUEUE_NUM, with PROTOCOL_F_MQ. */
		if ((protocol & (1ull << VHOST_USER_PROTOCOL_F_MQ)) &&
		    (ret = lg_get_u64(lg, VHOST_USER_GET_QUEUE_NUM, &max)))
			return ret;
		if (max < lg->opt->queues) {
			fprintf(stderr,
				"blk-loadgen: the back-end has %llu queues, not %u (start it "
				"with more)\n",
				(unsigned long long)max, lg->opt->queues);
			return -EINVAL;
		}
	}
	vhost_user_msg_init(&msg, VHOST_USER_SET_OWNER, 0);
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	vhost_user_msg_init(&msg, VHOST_USER_GET_CONFIG,
			    VHOST_USER_CONFIG_HDR_SIZE + VIRTIO_BLK_CONFIG_SIZE);
	msg.payload.config.size = VIRTIO_BLK_CONFIG_SIZE;
	ret = lg_call(lg, &msg, &reply);
	if (ret)
		return ret;
	memcpy(&capacity, reply.payload.config.payload, sizeof(capacity)); /* §5.2.4 */
	lg->capacity_blocks = capacity * VIRTIO_BLK_SECTOR / lg->opt->bs;
	if (lg->capacity_blocks < 1) {
		fprintf(stderr, "blk-loadgen: the disk (%llu sectors) is smaller than one block\n",
			(unsigned long long)capacity);
		return -EINVAL;
	}
	return 0;
}

int loadgen_setup_memory(struct loadgen *lg)
{
	uint64_t size = lg->opt->mem_bytes;

	lg->memfd = memfd_create("blk-loadgen-guest", MFD_CLOEXEC);
	if (lg->memfd < 0 || ftruncate(lg->memfd, (off_t)size) < 0) {
		fprintf(stderr, "blk-loadgen: guest memory: %s\n", strerror(errno));
		return -errno;
	}
	lg->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, lg->memfd, 0);
	if (lg->mem == MAP_FAILED) {
		fprintf(stderr, "blk-loadgen: mmap guest memory: %s\n", strerror(errno));
		return -errno;
	}
	/* Touch what we use now (rings, headers, buffers; random data for
	 * writes), so page faults stay out of the measurement. */
	memset(lg->mem, 0, LG_DATA_GPA);
	for (unsigned q = 0; q < lg->opt->queues; q++) {
		uint64_t first = LG_DATA_GPA + (uint64_t)q * LG_MAX_SLOTS * lg->opt->bs;

		for (uint64_t *p = lg_ptr(lg, first),
			      *end = lg_ptr(lg, first + (uint64_t)lg->opt->iodepth * lg->opt->bs);
		     p < end; p++)
			*p = lg_random(lg);
	}
	return 0;
}

/* vhost-user: "Starting and stopping rings": num, base, addresses, kick
 * and call fds, enable, for ring q->index. */
static int lg_start_queue(struct loadgen *lg, struct lg_queue *q)
{
	uint64_t base = (uint64_t)q->index * LG_RING_STRIDE;
	unsigned size = lg->opt->queue_size;
	struct vhost_user_msg msg;
	int ret;

	q->desc = lg_ptr(lg, base + LG_DESC_OFFSET);
	q->avail = lg_ptr(lg, base + LG_AVAIL_OFFSET);
	q->used = lg_ptr(lg, base + LG_USED_OFFSET);
	q->used_event = &q->avail->ring[size];
	q->avail_event = (uint16_t *)&q->used->ring[size];
	ret = lg_set_state(lg, VHOST_USER_SET_VRING_NUM, q->index, size);
	if (!ret)
		ret = lg_set_state(lg, VHOST_USER_SET_VRING_BASE, q->index, 0);
	if (ret)
		return ret;
	vhost_user_msg_init(&msg, VHOST_USER_SET_VRING_ADDR, sizeof(msg.payload.addr));
	msg.payload.addr.index = q->index;
	msg.payload.addr.desc_user_addr = (uint64_t)(uintptr_t)q->desc;
	msg.payload.addr.avail_user_addr = (uint64_t)(uintptr_t)q->avail;
	msg.payload.addr.used_user_addr = (uint64_t)(uintptr_t)q->used;
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	q->kick_fd = eventfd(0, EFD_CLOEXEC);
	q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick_fd < 0 || q->call_fd < 0) {
		fprintf(stderr, "blk-loadgen: eventfd: %s\n", strerror(errno));
		return -errno;
	}
	ret = lg_set_fd(lg, VHOST_USER_SET_VRING_KICK, q->index, q->kick_fd);
	if (!ret)
		ret = lg_set_fd(lg, VHOST_USER_SET_VRING_CALL, q->index, q->call_fd);
	if (!ret)
		ret = lg_set_state(lg, VHOST_USER_SET_VRING_ENABLE, q->index, 1);
	return ret;
}

/* vhost-user: SET_MEM_TABLE with our one region, then each ring. */
int loadgen_start_queues(struct loadgen *lg)
{
	struct vhost_user_msg msg;
	int ret;

	ret = lg_set_u64(lg, VHOST_USER_SET_FEATURES, lg->features);
	if (ret)
		return ret;
	vhost_user_msg_init(&msg, VHOST_USER_SET_MEM_TABLE,
			    8 + (uint32_t)sizeof(struct vhost_user_mem_region));
	msg.payload.memory.nregions = 1;
	msg.payload.memory.regions[0] = (struct vhost_user_mem_region){
	    .guest_address = 0,
	    .size = lg->opt->mem_bytes,
	    .user_address = (uint64_t)(uintptr_t)lg->mem,
	    .mmap_offset = 0,
	};
	msg.fds[0] = lg->memfd;
	msg.nfds = 1;
	ret = lg_call(lg, &msg, NULL);
	for (unsigned i = 0; !ret && i < lg->opt->queues; i++) {
		lg->queues[i].index = i;
		ret = lg_start_queue(lg, &lg->queues[i]);
	}
	return ret;
}

/* vhost-user: GET_VRING_BASE stops a ring; then hang up. */
void loadgen_stop_queues(struct loadgen *lg)
{
	for (unsigned i = 0; i < lg->opt->queues; i++) {
		struct vhost_user_msg msg, reply;

		vhost_user_msg_init(&msg, VHOST_USER_GET_VRING_BASE, sizeof(msg.payload.state));
		msg.payload.state.index = i;
		if (vhost_user_call(lg->sock, &msg, &reply) == 0)
			vhost_user_close_fds(&reply);
	}
	close(lg->sock);
	lg->sock = -1;
}
