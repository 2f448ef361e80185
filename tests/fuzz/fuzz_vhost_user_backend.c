// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the server end of vhost-user: lib/vhost_user_backend.c
 * (message handling, memory table and inflight mapping) and the ring
 * start/stop logic of lib/vhost_user_backend_queue.c, driven by a hostile
 * front-end.  The input is a sequence of messages (with fds: memfds of a
 * few pages or eventfds) written to a socketpair before the back-end serves
 * it, so the whole run is single-threaded on our side; the device's
 * queue_start fails, so a ring that starts only waits to be stopped and no
 * guest memory is processed (lib/virtq.c has its own target, fuzz_virtq).
 * Checked:
 *   - serve() returns, and never reads past a message the codec calls
 *     malformed (the connection is closed there);
 *   - afterwards every ring is stopped, every fd the front-end sent is
 *     closed (no fd leak), the memory table and inflight region unmapped;
 * and ASan/UBSan/LSan catch the rest.  Build and run: `make fuzz-build`,
 *   build/fuzz/fuzz_vhost_user_backend -max_total_time=60 tests/fuzz/corpus/vhost_user_backend
 *
 * Input: one device byte, then messages.
 *   device  bits 0-1: rings - 1; bit 2: config space; bit 3: set_config accepts
 *   message byte 0   request code (% 44)
 *           byte 1   bit 0 NEED_REPLY; bit 1 REPLY (wrong way); bit 2 bad
 *                    version; bits 3-4 size: 0/1 the request's own size,
 *                    2 raw (next byte * 2), 3 own size with 8 or 9 fds;
 *                    bits 5-7 fds (0-7)
 *           per fd   bit 7: eventfd, else a memfd of (byte & 0x7f) pages
 *           then the payload bytes (zero-filled at the end of the input)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/vhost_user.h"
#include "lib/vhost_user_backend.h"

#define MAX_MESSAGES 48
#define MAX_FDS_TOTAL 96
#define FD_PROBE 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct stream {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct stream *s, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && s->left; i++, s->left--, s->p++)
		v |= (uint64_t)*s->p << (8 * i);
	return v;
}

/* ---- the device: no ring ever processes anything ----------------------- */

static bool set_config_ok;

static uint32_t dev_get_config(void *device, uint8_t *config)
{
	(void)device;
	for (unsigned i = 0; i < 32; i++)
		config[i] = (uint8_t)i;
	return 32;
}

static int dev_set_config(void *device, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)device;
	(void)data;
	if (offset > VHOST_USER_MAX_CONFIG_SIZE || len > VHOST_USER_MAX_CONFIG_SIZE - offset)
		abort(); /* the codec let an out-of-range write through */
	return set_config_ok ? 0 : -EINVAL;
}

static int dev_queue_start(void *device, struct vhost_user_backend_queue *q)
{
	(void)device;
	(void)q;
	return -EIO; /* the ring thread then only waits for its stop */
}

static int dev_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	(void)device;
	(void)q;
	abort(); /* never reached: queue_start fails */
}

/* ---- building the stream ----------------------------------------------- */

static uint32_t natural_size(uint32_t request, const uint8_t *payload)
{
	uint32_t n;

	switch (request) {
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
	case VHOST_USER_SEND_RARP:
	case VHOST_USER_NET_SET_MTU:
	case VHOST_USER_SET_STATUS:
	case VHOST_USER_CLOSE_CRYPTO_SESSION:
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
	case VHOST_USER_SET_VRING_ENDIAN:
	case VHOST_USER_VRING_KICK:
	case VHOST_USER_SET_DEVICE_STATE_FD:
		return 8;
	case VHOST_USER_SET_VRING_ADDR:
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		return 40;
	case VHOST_USER_SET_MEM_TABLE:
		memcpy(&n, payload, 4);
		return 8 + 32 * (n % (VHOST_MEMORY_BASELINE_NREGIONS + 1));
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		memcpy(&n, payload + 4, 4);
		return VHOST_USER_CONFIG_HDR_SIZE + (n % (VHOST_USER_MAX_CONFIG_SIZE + 1));
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD:
		return 24;
	case VHOST_USER_SET_LOG_BASE:
	case VHOST_USER_GET_SHARED_OBJECT:
		return 16;
	case VHOST_USER_IOTLB_MSG:
		return 32;
	default:
		return 0;
	}
}

static int make_fd(uint8_t kind)
{
	int fd;

	if (kind & 0x80)
		return eventfd(0, EFD_CLOEXEC);
	fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)(kind & 0x7f) * 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_message(int sock, const uint8_t *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 9)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
}

/* Would the back-end's receive + validate call this message malformed? */
static bool malformed(const struct vhost_user_header *hdr, const uint8_t *payload, unsigned nfds)
{
	struct vhost_user_msg msg;

	if ((hdr->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (hdr->flags & ~VHOST_USER_FLAGS_KNOWN) || hdr->size > VHOST_USER_PAYLOAD_MAX ||
	    nfds > VHOST_USER_MAX_FDS)
		return true;
	memset(&msg, 0, sizeof(msg));
	msg.hdr = *hdr;
	memcpy(&msg.payload, payload, hdr->size);
	msg.nfds = nfds;
	for (unsigned i = 0; i < nfds; i++)
		msg.fds[i] = 100; /* any valid-looking number: validate does not use them */
	return vhost_user_validate(&msg, true) == -EPROTO;
}

/* Which fds are open: a leak shows up as a difference. */
static void open_fds(uint8_t *set)
{
	for (int fd = 0; fd < FD_PROBE; fd++)
		set[fd] = fcntl(fd, F_GETFD) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t before[FD_PROBE], after[FD_PROBE];
	static bool quiet;
	struct vhost_user_backend_ops ops = {
	    .name = "fuzz",
	    .features = (1ull << VIRTIO_F_VERSION_1) | (1ull << 28) | (1ull << 29),
	    .queue_start = dev_queue_start,
	    .handle_queue = dev_handle_queue,
	};
	struct vhost_user_backend be;
	struct stream s = {data, size};
	size_t sent_bytes[MAX_MESSAGES], total = 0, must_remain = 0;
	int first_bad = -1, sv[2], nmsg = 0, buffered = 0;
	unsigned total_fds = 0;
	uint8_t device;

	if (size < 1 || size > 8192)
		return 0;
	if (!quiet) {
		/* FUZZ_VERBOSE=1: keep the back-end's log lines (debugging) */
		log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_OFF);
		quiet = true;
	}
	open_fds(before);
	device = (uint8_t)take(&s, 1);
	ops.num_queues = (device & 3) + 1;
	if (device & 4) {
		ops.get_config = dev_get_config;
		ops.set_config = dev_set_config;
	}
	set_config_ok = device & 8;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();

	while (s.left && nmsg < MAX_MESSAGES) {
		uint8_t buf[sizeof(struct vhost_user_header) + 512] = {0};
		struct vhost_user_header hdr;
		uint8_t *payload = buf + sizeof(hdr);
		uint8_t control;
		unsigned nfds, mode;
		int fds[9];
		bool ok;

		hdr.request = (uint32_t)take(&s, 1) % 44;
		control = (uint8_t)take(&s, 1);
		hdr.flags = VHOST_USER_VERSION;
		if (control & 1)
			hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
		if (control & 2)
			hdr.flags |= VHOST_USER_REPLY_MASK;
		if (control & 4)
			hdr.flags ^= 3;
		mode = (control >> 3) & 3;
		nfds = control >> 5;
		if (mode == 3)
			nfds = 8 + (nfds & 1);
		if (total_fds + nfds > MAX_FDS_TOTAL)
			nfds = 0;
		for (unsigned i = 0; i < nfds; i++) {
			fds[i] = make_fd((uint8_t)take(&s, 1));
			if (fds[i] < 0)
				abort();
		}
		if (mode == 2)
			hdr.size = (uint32_t)take(&s, 1) * 2;
		else {
			/* the size fields sit in the first bytes: peek them */
			uint8_t peek[8] = {0};

			memcpy(peek, s.p, s.left < 8 ? s.left : 8);
			hdr.size = natural_size(hdr.request, peek);
		}
		for (uint32_t i = 0; i < hdr.size; i++)
			payload[i] = (uint8_t)take(&s, 1);
		/* Own size: make the count fields agree with it, so that the
		 * fuzzer spends its time past the codec. */
		if (mode != 2 && hdr.request == VHOST_USER_SET_MEM_TABLE) {
			uint32_t n = (hdr.size - 8) / 32;

			memcpy(payload, &n, 4);
		} else if (mode != 2 && (hdr.request == VHOST_USER_GET_CONFIG ||
					 hdr.request == VHOST_USER_SET_CONFIG)) {
			uint32_t n = hdr.size - VHOST_USER_CONFIG_HDR_SIZE;

			memcpy(payload + 4, &n, 4);
		}
		memcpy(buf, &hdr, sizeof(hdr));
		ok = send_message(sv[0], buf, sizeof(hdr) + hdr.size, fds, nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]); /* in flight now (or never sent) */
		if (!ok)
			break; /* socket buffer full: serve what was sent */
		total_fds += nfds;
		sent_bytes[nmsg] = sizeof(hdr) + hdr.size;
		total += sent_bytes[nmsg];
		if (first_bad < 0 && malformed(&hdr, payload, nfds))
			first_bad = nmsg;
		nmsg++;
	}
	shutdown(sv[0], SHUT_WR); /* the back-end meets EOF after the last message */
	if (first_bad >= 0)
		for (int i = first_bad + 1; i < nmsg; i++)
			must_remain += sent_bytes[i];

	if (vhost_user_backend_init(&be, &ops, NULL))
		abort();
	(void)vhost_user_backend_serve(&be, sv[1]);

	/* Not one byte past a malformed message was read. */
	if (ioctl(sv[1], FIONREAD, &buffered) < 0 || (size_t)buffered < must_remain ||
	    (size_t)buffered > total)
		abort();
	/* serve() reset the device: nothing running, mapped or held. */
	if (be.nr_regions || be.inflight || be.owner || be.acked_features)
		abort();
	for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
		const struct vhost_user_backend_queue *q = &be.queues[i];

		if (q->running || q->kick_fd >= 0 || q->call_fd >= 0 || q->err_fd >= 0)
			abort();
	}
	vhost_user_backend_destroy(&be);
	close(sv[0]);
	close(sv[1]);
	open_fds(after);
	if (memcmp(before, after, sizeof(before)))
		abort(); /* an fd leaked */
	return 0;
}
