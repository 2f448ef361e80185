// SPDX-License-Identifier: MIT
/*
 * net-loadgen's vhost-user front-end: connect, negotiate, share the memfd
 * guest memory and start the two rings of one virtio-net queue pair, as
 * devices/vhost_user_device.c does for the isola core (vhost-user:
 * "Communication", "Starting and stopping rings").  The same steps as
 * bench/blk/frontend.c, for two rings and without the device config.
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

#include "bench/net/loadgen.h"
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
		fprintf(stderr, "net-loadgen: %s: %s\n", vhost_user_request_name(msg->hdr.request),
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
	msg.payload.u64 = index; /* vring index, fd valid (no NOFD bit) */
	msg.fds[0] = fd;
	msg.nfds = 1;
	return lg_call(lg, &msg, NULL);
}

int loadgen_connect(struct loadgen *lg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	if (strlen(lg->opt->socket) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "net-loadgen: socket path %s is too long\n", lg->opt->socket);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, lg->opt->socket);
	lg->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lg->sock < 0 || connect(lg->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "net-loadgen: connect %s: %s (is the back-end listening?)\n",
			lg->opt->socket, strerror(errno));
		return -errno;
	}
	return 0;
}

/* vhost-user: "Communication".  Plain frames: VERSION_1 (so the header is
 * the 12-byte one, §5.1.6.1), EVENT_IDX, and no offloads, MRG_RXBUF or MQ:
 * every frame is one buffer of header + frame, both ways. */
int loadgen_negotiate(struct loadgen *lg)
{
	uint64_t offered, protocol, wanted = 1ull << VIRTIO_F_VERSION_1;
	struct vhost_user_msg msg;
	int ret;

	ret = lg_get_u64(lg, VHOST_USER_GET_FEATURES, &offered);
	if (ret)
		return ret;
	if (!(offered & (1ull << VIRTIO_F_VERSION_1))) {
		fprintf(stderr, "net-loadgen: the back-end lacks VERSION_1\n");
		return -EPROTO;
	}
	if (lg->opt->event_idx)
		wanted |= 1ull << VIRTIO_F_EVENT_IDX;
	wanted |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	lg->features = offered & wanted;
	if (!(lg->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return 0; /* rings start enabled (vhost-user: "Ring states") */
	ret = lg_get_u64(lg, VHOST_USER_GET_PROTOCOL_FEATURES, &protocol);
	if (ret)
		return ret;
	protocol &= 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK;
	/* Never acked: REPLY_ACK is not in force before this one is done. */
	vhost_user_msg_init(&msg, VHOST_USER_SET_PROTOCOL_FEATURES, sizeof(uint64_t));
	msg.payload.u64 = protocol;
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	lg->protocol_features = protocol;
	vhost_user_msg_init(&msg, VHOST_USER_SET_OWNER, 0);
	return lg_call(lg, &msg, NULL);
}

int loadgen_setup_memory(struct loadgen *lg)
{
	lg->memfd = memfd_create("net-loadgen-guest", MFD_CLOEXEC);
	if (lg->memfd < 0 || ftruncate(lg->memfd, (off_t)NLG_MEM_BYTES) < 0) {
		fprintf(stderr, "net-loadgen: guest memory: %s\n", strerror(errno));
		return -errno;
	}
	lg->mem = mmap(NULL, NLG_MEM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, lg->memfd, 0);
	if (lg->mem == MAP_FAILED) {
		fprintf(stderr, "net-loadgen: mmap guest memory: %s\n", strerror(errno));
		return -errno;
	}
	/* Touch everything now, so page faults stay out of the measurement. */
	memset(lg->mem, 0, NLG_MEM_BYTES);
	return 0;
}

static int lg_start_ring(struct loadgen *lg, struct nlg_ring *r)
{
	struct vhost_user_msg msg;
	int ret;

	ret = lg_set_state(lg, VHOST_USER_SET_VRING_NUM, r->index, r->size);
	if (!ret)
		ret = lg_set_state(lg, VHOST_USER_SET_VRING_BASE, r->index, 0);
	if (ret)
		return ret;
	vhost_user_msg_init(&msg, VHOST_USER_SET_VRING_ADDR, sizeof(msg.payload.addr));
	msg.payload.addr.index = r->index;
	msg.payload.addr.desc_user_addr = (uint64_t)(uintptr_t)r->desc;
	msg.payload.addr.avail_user_addr = (uint64_t)(uintptr_t)r->avail;
	msg.payload.addr.used_user_addr = (uint64_t)(uintptr_t)r->used;
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	r->kick_fd = eventfd(0, EFD_CLOEXEC);
	r->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->kick_fd < 0 || r->call_fd < 0) {
		fprintf(stderr, "net-loadgen: eventfd: %s\n", strerror(errno));
		return -errno;
	}
	ret = lg_set_fd(lg, VHOST_USER_SET_VRING_KICK, r->index, r->kick_fd);
	if (!ret)
		ret = lg_set_fd(lg, VHOST_USER_SET_VRING_CALL, r->index, r->call_fd);
	if (!ret && (lg->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		ret = lg_set_state(lg, VHOST_USER_SET_VRING_ENABLE, r->index, 1);
	return ret;
}

/* vhost-user: SET_MEM_TABLE with our one region, then "Starting and
 * stopping rings" for receiveq1 and transmitq1 (a virtio-net back-end
 * such as DPDK's starts the device only when the whole pair is ready). */
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
	    .size = NLG_MEM_BYTES,
	    .user_address = (uint64_t)(uintptr_t)lg->mem,
	    .mmap_offset = 0,
	};
	msg.fds[0] = lg->memfd;
	msg.nfds = 1;
	ret = lg_call(lg, &msg, NULL);
	if (ret)
		return ret;
	for (unsigned q = 0; q < NLG_NQUEUES; q++) {
		struct nlg_ring *r = &lg->ring[q];
		uint64_t base = NLG_RING_GPA(q);

		r->index = q;
		r->size = lg->opt->queue_size;
		r->desc = nlg_ptr(lg, base);
		r->avail = nlg_ptr(lg, base + NLG_AVAIL_OFF);
		r->used = nlg_ptr(lg, base + NLG_USED_OFF);
		r->used_event = &r->avail->ring[r->size];
		r->avail_event = (uint16_t *)&r->used->ring[r->size];
		ret = lg_start_ring(lg, r);
		if (ret)
			return ret;
	}
	return 0;
}

/* vhost-user: GET_VRING_BASE stops a ring; then hang up. */
void loadgen_stop_queues(struct loadgen *lg)
{
	for (unsigned q = 0; q < NLG_NQUEUES; q++) {
		struct vhost_user_msg msg, reply;

		vhost_user_msg_init(&msg, VHOST_USER_GET_VRING_BASE, sizeof(msg.payload.state));
		msg.payload.state.index = q;
		if (vhost_user_call(lg->sock, &msg, &reply) == 0)
			vhost_user_close_fds(&reply);
	}
	close(lg->sock);
	lg->sock = -1;
}
