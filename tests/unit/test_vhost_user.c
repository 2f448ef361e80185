// SPDX-License-Identifier: MIT
/* Unit tests for lib/vhost_user.c: framing over a socketpair, fds in
 * SCM_RIGHTS, and validation of every request and reply per vhost-user.rst. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/vhost_user.h"

/* ---- helpers ---- */

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

static int open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int new_memfd(void)
{
	int fd = memfd_create("vhost-user-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	return fd;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* Write raw bytes (a hostile peer), optionally with fds. */
static void raw_send(int sock, const void *data, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
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
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void set_region(struct vhost_user_mem_region *r, uint64_t gpa)
{
	r->guest_address = gpa;
	r->size = 0x100000;
	r->user_address = 0x7f0000000000ull + gpa;
	r->mmap_offset = gpa;
}

/*
 * A valid front-end request for code, built from the spec's message table
 * (independently of the codec's own table).  fd-carrying requests get new
 * memfds the caller closes with vhost_user_close_fds().
 */
static void make_request(uint32_t code, struct vhost_user_msg *m)
{
	vhost_user_msg_init(m, code, 0);
	switch (code) {
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_SEND_RARP:
	case VHOST_USER_NET_SET_MTU:
	case VHOST_USER_CLOSE_CRYPTO_SESSION:
	case VHOST_USER_SET_STATUS:
		m->hdr.size = 8;
		m->payload.u64 = 0x1234;
		break;
	case VHOST_USER_SET_MEM_TABLE:
		m->hdr.size = 8 + 2 * 32;
		m->payload.memory.nregions = 2;
		set_region(&m->payload.memory.regions[0], 0);
		set_region(&m->payload.memory.regions[1], 0x100000000ull);
		m->fds[0] = new_memfd();
		m->fds[1] = new_memfd();
		m->nfds = 2;
		break;
	case VHOST_USER_SET_LOG_BASE:
		m->hdr.size = 16;
		m->payload.log.size = 4096;
		m->fds[0] = new_memfd();
		m->nfds = 1;
		break;
	case VHOST_USER_SET_LOG_FD:
	case VHOST_USER_SET_BACKEND_REQ_FD:
	case VHOST_USER_GPU_SET_SOCKET:
		m->fds[0] = new_memfd();
		m->nfds = 1;
		break;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
	case VHOST_USER_SET_VRING_ENDIAN:
	case VHOST_USER_VRING_KICK:
		m->hdr.size = 8;
		m->payload.state.index = 1;
		m->payload.state.num = code == VHOST_USER_SET_VRING_NUM ? 256 : 1;
		if (code == VHOST_USER_GET_VRING_BASE || code == VHOST_USER_VRING_KICK)
			m->payload.state.num = 0;
		break;
	case VHOST_USER_SET_VRING_ADDR:
		m->hdr.size = 40;
		m->payload.addr.index = 0;
		m->payload.addr.desc_user_addr = 0x7f0000001000ull;
		m->payload.addr.avail_user_addr = 0x7f0000002000ull;
		m->payload.addr.used_user_addr = 0x7f0000003000ull;
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		m->hdr.size = 8;
		m->payload.u64 = 2;
		m->fds[0] = eventfd(0, EFD_CLOEXEC);
		m->nfds = 1;
		break;
	case VHOST_USER_IOTLB_MSG:
		m->hdr.size = 32;
		m->payload.iotlb.iova = 0x1000;
		m->payload.iotlb.size = 0x1000;
		m->payload.iotlb.perm = 3;
		m->payload.iotlb.type = VHOST_USER_IOTLB_UPDATE;
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		m->hdr.size = 12 + 8;
		m->payload.config.offset = 16;
		m->payload.config.size = 8;
		m->payload.config.payload[0] = 0xab;
		break;
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD:
		m->hdr.size = 24;
		m->payload.inflight.num_queues = 2;
		m->payload.inflight.queue_size = 128;
		if (code == VHOST_USER_SET_INFLIGHT_FD) {
			m->payload.inflight.mmap_size = 4096;
			m->fds[0] = new_memfd();
			m->nfds = 1;
		}
		break;
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		m->hdr.size = 40;
		set_region(&m->payload.mem_reg.region, 0x200000);
		if (code == VHOST_USER_ADD_MEM_REG) {
			m->fds[0] = new_memfd();
			m->nfds = 1;
		}
		break;
	case VHOST_USER_GET_SHARED_OBJECT:
		m->hdr.size = 16;
		m->payload.shared.uuid[0] = 0x42;
		break;
	case VHOST_USER_SET_DEVICE_STATE_FD:
		m->hdr.size = 8;
		m->payload.device_state.transfer_direction = 1;
		m->fds[0] = new_memfd();
		m->nfds = 1;
		break;
	default: /* requests without payload */
		break;
	}
}

static bool is_supported_request(uint32_t code)
{
	return code != VHOST_USER_CREATE_CRYPTO_SESSION;
}

static void assert_same_message(const struct vhost_user_msg *a, const struct vhost_user_msg *b)
{
	unsigned i;

	assert_memory_equal(&a->hdr, &b->hdr, sizeof(a->hdr));
	assert_memory_equal(&a->payload, &b->payload, a->hdr.size);
	assert_int_equal(a->nfds, b->nfds);
	for (i = 0; i < a->nfds; i++) {
		assert_true(same_file(a->fds[i], b->fds[i]));
		assert_true(fcntl(b->fds[i], F_GETFD) & FD_CLOEXEC);
	}
}

/* ---- round trips ---- */

static void test_round_trip_every_request(void **state)
{
	struct vhost_user_msg out, in;
	int sv[2], before;
	uint32_t code;

	(void)state;
	make_pair(sv);
	before = open_fd_count();
	for (code = 1; code < VHOST_USER_REQUEST_MAX; code++) {
		if (!is_supported_request(code))
			continue;
		make_request(code, &out);
		assert_int_equal(vhost_user_validate(&out, true), 0);
		assert_int_equal(vhost_user_send(sv[0], &out), 0);
		assert_int_equal(vhost_user_recv(sv[1], &in), 0);
		assert_same_message(&out, &in);
		if (vhost_user_validate(&in, true) != 0)
			fail_msg("%s rejected", vhost_user_request_name(code));
		/* As a reply, a request is invalid (no REPLY flag). */
		assert_int_equal(vhost_user_validate(&in, false), -EPROTO);
		vhost_user_close_fds(&out);
		vhost_user_close_fds(&in);
	}
	assert_int_equal(open_fd_count(), before);
	close_pair(sv);
}

/* A valid back-end reply for a front-end request (REPLY_ACK for most). */
static void make_reply(uint32_t code, struct vhost_user_msg *m)
{
	vhost_user_msg_init(m, code, 8);
	m->hdr.flags |= VHOST_USER_REPLY_MASK;
	switch (code) {
	case VHOST_USER_GET_VRING_BASE:
		m->payload.state.index = 1;
		m->payload.state.num = 77;
		break;
	case VHOST_USER_GET_CONFIG:
		make_request(code, m);
		m->hdr.flags |= VHOST_USER_REPLY_MASK;
		break;
	case VHOST_USER_GET_INFLIGHT_FD:
		m->hdr.size = 24;
		m->payload.inflight.mmap_size = 4096;
		m->payload.inflight.num_queues = 2;
		m->payload.inflight.queue_size = 128;
		m->fds[0] = new_memfd();
		m->nfds = 1;
		break;
	case VHOST_USER_SET_DEVICE_STATE_FD:
		m->payload.u64 = VHOST_USER_VRING_NOFD_MASK; /* success, no fd */
		break;
	default:
		m->payload.u64 = 0;
		break;
	}
}

static void test_round_trip_every_reply(void **state)
{
	struct vhost_user_msg out, in;
	uint32_t code;
	int sv[2];

	(void)state;
	make_pair(sv);
	for (code = 1; code < VHOST_USER_REQUEST_MAX; code++) {
		if (!is_supported_request(code))
			continue;
		make_reply(code, &out);
		assert_int_equal(vhost_user_send(sv[1], &out), 0);
		assert_int_equal(vhost_user_recv(sv[0], &in), 0);
		assert_same_message(&out, &in);
		if (vhost_user_validate(&in, false) != 0)
			fail_msg("%s reply rejected", vhost_user_request_name(code));
		assert_int_equal(vhost_user_validate(&in, true), -EPROTO);
		vhost_user_close_fds(&out);
		vhost_user_close_fds(&in);
	}
	close_pair(sv);
}

static void test_round_trip_backend_channel(void **state)
{
	struct vhost_user_msg out, in;
	uint32_t code;
	int sv[2];

	(void)state;
	make_pair(sv);
	for (code = 1; code < VHOST_USER_BACKEND_REQUEST_MAX; code++) {
		vhost_user_msg_init(&out, code, 0);
		switch (code) {
		case VHOST_USER_BACKEND_IOTLB_MSG:
			out.hdr.size = 32;
			out.payload.iotlb.type = VHOST_USER_IOTLB_MISS;
			out.payload.iotlb.perm = 1;
			break;
		case VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG:
			out.hdr.size = 24;
			out.payload.area.size = 4096;
			out.fds[0] = new_memfd();
			out.nfds = 1;
			break;
		case VHOST_USER_BACKEND_VRING_CALL:
		case VHOST_USER_BACKEND_VRING_ERR:
			out.hdr.size = 8;
			out.payload.state.index = 1;
			break;
		case VHOST_USER_BACKEND_CONFIG_CHANGE_MSG:
			out.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
			break;
		default:
			out.hdr.size = 16;
			break;
		}
		assert_int_equal(vhost_user_send(sv[1], &out), 0);
		assert_int_equal(vhost_user_recv(sv[0], &in), 0);
		assert_same_message(&out, &in);
		assert_int_equal(vhost_user_validate_backend_channel(&in, false), 0);
		assert_int_equal(vhost_user_validate_backend_channel(&in, true), -EPROTO);
		vhost_user_close_fds(&out);
		vhost_user_close_fds(&in);

		/* The front-end's answer: a u64, REPLY flag. */
		vhost_user_msg_init(&out, code, 8);
		out.hdr.flags |= VHOST_USER_REPLY_MASK;
		assert_int_equal(vhost_user_validate_backend_channel(&out, true), 0);
	}
	assert_string_equal(vhost_user_backend_request_name(VHOST_USER_BACKEND_VRING_CALL),
			    "BACKEND_VRING_CALL");
	close_pair(sv);
}

/* ---- fds ---- */

static void test_fds_refer_to_same_files(void **state)
{
	struct vhost_user_msg out, in;
	int sv[2];

	(void)state;
	make_pair(sv);
	make_request(VHOST_USER_SET_MEM_TABLE, &out);
	assert_int_equal(vhost_user_send(sv[0], &out), 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	assert_int_equal(in.nfds, 2);
	assert_true(same_file(out.fds[0], in.fds[0]));
	assert_true(same_file(out.fds[1], in.fds[1]));
	assert_false(same_file(out.fds[0], in.fds[1]));
	assert_int_equal(vhost_user_validate(&in, true), 0);
	vhost_user_close_fds(&out);
	vhost_user_close_fds(&in);
	close_pair(sv);
}

/* fds of one message never leak into the next. */
static void test_fds_stay_with_their_message(void **state)
{
	struct vhost_user_msg a, b, in;
	int sv[2];

	(void)state;
	make_pair(sv);
	make_request(VHOST_USER_SET_VRING_KICK, &a);
	make_request(VHOST_USER_SET_VRING_CALL, &b);
	assert_int_equal(vhost_user_send(sv[0], &a), 0);
	assert_int_equal(vhost_user_send(sv[0], &b), 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	assert_int_equal(in.hdr.request, VHOST_USER_SET_VRING_KICK);
	assert_int_equal(in.nfds, 1);
	assert_true(same_file(in.fds[0], a.fds[0]));
	vhost_user_close_fds(&in);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	assert_int_equal(in.hdr.request, VHOST_USER_SET_VRING_CALL);
	assert_int_equal(in.nfds, 1);
	assert_true(same_file(in.fds[0], b.fds[0]));
	vhost_user_close_fds(&in);
	vhost_user_close_fds(&a);
	vhost_user_close_fds(&b);
	close_pair(sv);
}

static void test_send_too_many_fds(void **state)
{
	struct vhost_user_msg m;
	int sv[2];

	(void)state;
	make_pair(sv);
	vhost_user_msg_init(&m, VHOST_USER_SET_LOG_FD, 0);
	m.nfds = VHOST_USER_MAX_FDS + 1;
	assert_int_equal(vhost_user_send(sv[0], &m), -EMSGSIZE);
	m.nfds = 1;
	m.fds[0] = -1;
	assert_int_equal(vhost_user_send(sv[0], &m), -EBADF);
	close_pair(sv);
}

static void test_recv_too_many_fds(void **state)
{
	struct vhost_user_header h = {VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 0};
	struct vhost_user_msg in;
	int sv[2], fds[9], before;
	unsigned i;

	(void)state;
	make_pair(sv);
	for (i = 0; i < 9; i++)
		fds[i] = new_memfd();
	raw_send(sv[0], &h, sizeof(h), fds, 9);
	for (i = 0; i < 9; i++)
		close(fds[i]);
	before = open_fd_count();
	assert_int_equal(vhost_user_recv(sv[1], &in), -EMSGSIZE);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(open_fd_count(), before); /* the 8 that fit were closed */
	close_pair(sv);
}

static void test_fds_on_message_that_takes_none(void **state)
{
	struct vhost_user_msg in;
	struct vhost_user_header h = {VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0};
	int sv[2], fd, before;

	(void)state;
	make_pair(sv);
	before = open_fd_count();
	fd = new_memfd();
	raw_send(sv[0], &h, sizeof(h), &fd, 1);
	close(fd);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	assert_int_equal(in.nfds, 1);
	assert_int_equal(vhost_user_validate(&in, true), -EPROTO);
	vhost_user_close_fds(&in);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(open_fd_count(), before);
	close_pair(sv);
}

static void test_unexpected_control_data(void **state)
{
	struct vhost_user_msg m, in;
	int sv[2], one = 1, before;

	(void)state;
	make_pair(sv);
	/* With SO_PASSCRED every read carries SCM_CREDENTIALS: not ours. */
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0);
	assert_int_equal(vhost_user_send(sv[0], &m), 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), -EPROTO);
	/* Credentials and an fd: refused, the fd closed. */
	make_request(VHOST_USER_SET_LOG_FD, &m);
	assert_int_equal(vhost_user_send(sv[0], &m), 0);
	vhost_user_close_fds(&m);
	before = open_fd_count();
	assert_int_equal(vhost_user_recv(sv[1], &in), -EPROTO);
	assert_int_equal(open_fd_count(), before);
	close_pair(sv);
}

static void test_nofd_bit(void **state)
{
	struct vhost_user_msg m;
	uint32_t code;

	(void)state;
	for (code = VHOST_USER_SET_VRING_KICK; code <= VHOST_USER_SET_VRING_ERR; code++) {
		make_request(code, &m); /* index 2, one fd */
		assert_int_equal(vhost_user_validate(&m, true), 0);
		m.payload.u64 |= VHOST_USER_VRING_NOFD_MASK; /* NOFD, but an fd */
		assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
		vhost_user_close_fds(&m);
		assert_int_equal(vhost_user_validate(&m, true), 0);	/* NOFD, no fd */
		m.payload.u64 &= ~(uint64_t)VHOST_USER_VRING_NOFD_MASK; /* fd missing */
		assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	}
}

/* ---- framing errors ---- */

static void test_truncated_header(void **state)
{
	struct vhost_user_msg in;
	uint8_t partial[6] = {1, 0, 0, 0, 1, 0};
	int sv[2];

	(void)state;
	make_pair(sv);
	raw_send(sv[0], partial, sizeof(partial), NULL, 0);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(vhost_user_recv(sv[1], &in), -ECONNRESET);
	close_pair(sv);
}

static void test_hangup(void **state)
{
	struct vhost_user_header h = {VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, 40};
	uint8_t payload[10] = {0};
	struct vhost_user_msg in;
	int sv[2], fd, before;

	(void)state;
	/* Between messages. */
	make_pair(sv);
	close(sv[0]);
	assert_int_equal(vhost_user_recv(sv[1], &in), -ECONNRESET);
	close(sv[1]);

	/* Mid-payload, with an fd that must not leak. */
	make_pair(sv);
	before = open_fd_count();
	fd = new_memfd();
	raw_send(sv[0], &h, sizeof(h), &fd, 1);
	raw_send(sv[0], payload, sizeof(payload), NULL, 0);
	close(fd);
	close(sv[0]);
	assert_int_equal(vhost_user_recv(sv[1], &in), -ECONNRESET);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(open_fd_count(), before - 1);
	close(sv[1]);
}

static void test_send_to_closed_peer(void **state)
{
	struct vhost_user_msg m;
	int sv[2];

	(void)state;
	make_pair(sv);
	close(sv[1]);
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0);
	assert_int_equal(vhost_user_send(sv[0], &m), -EPIPE); /* and no SIGPIPE */
	close(sv[0]);
}

static void test_payload_over_max(void **state)
{
	struct vhost_user_header h = {VHOST_USER_SET_CONFIG, VHOST_USER_VERSION,
				      VHOST_USER_PAYLOAD_MAX + 1};
	struct vhost_user_msg m, in;
	int sv[2], fd, before;

	(void)state;
	make_pair(sv);
	before = open_fd_count();
	fd = new_memfd();
	raw_send(sv[0], &h, sizeof(h), &fd, 1);
	close(fd);
	assert_int_equal(vhost_user_recv(sv[1], &in), -EMSGSIZE);
	assert_int_equal(open_fd_count(), before);

	h.size = 0xffffffffu;
	raw_send(sv[0], &h, sizeof(h), NULL, 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), -EMSGSIZE);

	vhost_user_msg_init(&m, VHOST_USER_SET_CONFIG, VHOST_USER_PAYLOAD_MAX + 1);
	assert_int_equal(vhost_user_send(sv[0], &m), -EMSGSIZE);
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	close_pair(sv);
}

static void test_wrong_version_and_flags(void **state)
{
	static const uint32_t bad[] = {0, 2, 3, VHOST_USER_VERSION | (1u << 4),
				       VHOST_USER_VERSION | 0x80000000u};
	struct vhost_user_msg m, in;
	int sv[2];
	unsigned i;

	(void)state;
	make_pair(sv);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vhost_user_header h = {VHOST_USER_GET_FEATURES, bad[i], 0};

		raw_send(sv[0], &h, sizeof(h), NULL, 0);
		assert_int_equal(vhost_user_recv(sv[1], &in), -EPROTO);
		vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0);
		m.hdr.flags = bad[i];
		assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	}
	/* REPLY on a front-end request; no REPLY or NEED_REPLY on a reply. */
	vhost_user_msg_init(&m, VHOST_USER_GET_FEATURES, 0);
	m.hdr.flags |= VHOST_USER_REPLY_MASK;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	make_reply(VHOST_USER_GET_FEATURES, &m);
	assert_int_equal(vhost_user_validate(&m, false), 0);
	m.hdr.flags &= ~VHOST_USER_REPLY_MASK;
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO);
	m.hdr.flags |= VHOST_USER_REPLY_MASK | VHOST_USER_NEED_REPLY_MASK;
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO);
	close_pair(sv);
}

static void test_unknown_request(void **state)
{
	static const uint32_t codes[] = {0, VHOST_USER_REQUEST_MAX, 1000, 0xffffffffu};
	struct vhost_user_msg m, in;
	unsigned i;
	int sv[2];

	(void)state;
	make_pair(sv);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		vhost_user_msg_init(&m, codes[i], 8);
		m.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
		assert_int_equal(vhost_user_send(sv[0], &m), 0);
		/* Well framed: the stream stays in sync and the caller can nack. */
		assert_int_equal(vhost_user_recv(sv[1], &in), 0);
		assert_int_equal(vhost_user_validate(&in, true), -EOPNOTSUPP);
		assert_int_equal(vhost_user_validate_backend_channel(&in, false), -EOPNOTSUPP);
		assert_true(vhost_user_needs_ack(&in));
		assert_string_equal(vhost_user_request_name(codes[i]), "UNKNOWN");
	}
	vhost_user_msg_init(&m, VHOST_USER_CREATE_CRYPTO_SESSION, 8);
	assert_int_equal(vhost_user_validate(&m, true), -EOPNOTSUPP);
	close_pair(sv);
}

static void test_nonblocking_no_message(void **state)
{
	struct vhost_user_msg in;
	int sv[2];

	(void)state;
	make_pair(sv);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), -EAGAIN);
	close_pair(sv);
}

/* ---- per-request validation ---- */

/* Every supported request, one byte longer or shorter, is refused. */
static void test_size_mismatch_every_request(void **state)
{
	struct vhost_user_msg m;
	uint32_t code;

	(void)state;
	for (code = 1; code < VHOST_USER_REQUEST_MAX; code++) {
		if (!is_supported_request(code))
			continue;
		make_request(code, &m);
		m.hdr.size += 1;
		if (vhost_user_validate(&m, true) != -EPROTO)
			fail_msg("%s accepted size + 1", vhost_user_request_name(code));
		m.hdr.size -= 2;
		if (m.hdr.size != UINT32_MAX && vhost_user_validate(&m, true) != -EPROTO)
			fail_msg("%s accepted size - 1", vhost_user_request_name(code));
		vhost_user_close_fds(&m);
	}
}

/* Every fd-less request refuses an fd; every fd request refuses one fd
 * less or one more than it takes. */
static void test_fd_count_every_request(void **state)
{
	struct vhost_user_msg m;
	uint32_t code;

	(void)state;
	for (code = 1; code < VHOST_USER_REQUEST_MAX; code++) {
		if (!is_supported_request(code))
			continue;
		make_request(code, &m);
		if (m.nfds == 0) {
			m.fds[0] = 0; /* never sent: validate only counts */
			m.nfds = 1;
			/* REM_MEM_REG: "the back-end MAY accept ... one fd" */
			if (code != VHOST_USER_REM_MEM_REG &&
			    vhost_user_validate(&m, true) != -EPROTO)
				fail_msg("%s accepted an fd", vhost_user_request_name(code));
			m.nfds = 0;
		} else {
			int saved = m.fds[m.nfds - 1];

			m.nfds--;
			if (vhost_user_validate(&m, true) != -EPROTO)
				fail_msg("%s accepted a missing fd", vhost_user_request_name(code));
			m.fds[m.nfds++] = saved;
			m.fds[m.nfds++] = saved; /* never sent: validate only counts */
			if (vhost_user_validate(&m, true) != -EPROTO)
				fail_msg("%s accepted an fd too many", vhost_user_request_name(code));
			m.nfds--;
		}
		vhost_user_close_fds(&m);
	}
}

static void test_mem_table_rules(void **state)
{
	struct vhost_user_msg m;

	(void)state;
	make_request(VHOST_USER_SET_MEM_TABLE, &m);
	assert_int_equal(vhost_user_validate(&m, true), 0);

	m.payload.memory.nregions = 3; /* size says 2 */
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.nregions = 9;
	m.hdr.size = 8 + 9 * 32;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.nregions = 2;
	m.hdr.size = 8 + 2 * 32;

	m.payload.memory.regions[1].size = 0;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.regions[1].size = 0x1000;
	m.payload.memory.regions[1].guest_address = UINT64_MAX - 0xfff;
	assert_int_equal(vhost_user_validate(&m, true), 0); /* ends at the very top */
	m.payload.memory.regions[1].guest_address = UINT64_MAX - 0xffe;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.regions[1].guest_address = 0;
	m.payload.memory.regions[1].user_address = UINT64_MAX;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.regions[1].user_address = 0;
	m.payload.memory.regions[1].mmap_offset = UINT64_MAX;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.memory.regions[1].mmap_offset = 0;

	m.nfds = 1; /* fds must match regions one to one */
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.nfds = 2;
	vhost_user_close_fds(&m);

	/* ADD_MEM_REG checks its region; REM_MEM_REG ignores the mmap offset. */
	make_request(VHOST_USER_ADD_MEM_REG, &m);
	m.payload.mem_reg.region.mmap_offset = UINT64_MAX;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	vhost_user_close_fds(&m);
	make_request(VHOST_USER_REM_MEM_REG, &m);
	m.payload.mem_reg.region.mmap_offset = UINT64_MAX;
	assert_int_equal(vhost_user_validate(&m, true), 0);
}

static void test_config_rules(void **state)
{
	struct vhost_user_msg m;

	(void)state;
	make_request(VHOST_USER_SET_CONFIG, &m);
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.payload.config.offset = 256 - 8;
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.payload.config.offset = 256 - 7;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.config.offset = 0xfffffffcu; /* offset + size wraps */
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.config.offset = 0;
	m.payload.config.size = 9; /* header size says 8 */
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.config.size = 257;
	m.hdr.size = 12 + 257;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.config.size = 256;
	m.hdr.size = 12 + 256;
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.payload.config.flags = VHOST_USER_CONFIG_FLAG_MIGRATION;
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.payload.config.flags = 2;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);

	/* GET_CONFIG reply: the same shape, or empty for an error. */
	make_reply(VHOST_USER_GET_CONFIG, &m);
	assert_int_equal(vhost_user_validate(&m, false), 0);
	m.hdr.size = 0;
	assert_int_equal(vhost_user_validate(&m, false), 0);
	m.hdr.size = 4;
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO);
}

static void test_inflight_rules(void **state)
{
	struct vhost_user_msg m;

	(void)state;
	make_request(VHOST_USER_SET_INFLIGHT_FD, &m);
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.hdr.size = VHOST_USER_INFLIGHT_MIN_SIZE; /* the spec's 20 bytes of fields */
	assert_int_equal(vhost_user_validate(&m, true), 0);
	m.hdr.size = 16;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	vhost_user_close_fds(&m);

	make_reply(VHOST_USER_GET_INFLIGHT_FD, &m);
	assert_int_equal(vhost_user_validate(&m, false), 0);
	vhost_user_close_fds(&m);
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO); /* size but no fd */
	m.payload.inflight.mmap_size = 0;
	assert_int_equal(vhost_user_validate(&m, false), 0); /* no region, no fd */
}

static void test_small_payload_rules(void **state)
{
	struct vhost_user_msg m;

	(void)state;
	make_request(VHOST_USER_SET_VRING_ENABLE, &m);
	m.payload.state.num = 2;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	make_request(VHOST_USER_SET_VRING_ENDIAN, &m);
	m.payload.state.num = 2; /* "Other values are invalid." */
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	make_request(VHOST_USER_IOTLB_MSG, &m);
	m.payload.iotlb.type = 5;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.payload.iotlb.type = VHOST_USER_IOTLB_INVALIDATE;
	m.payload.iotlb.perm = 4;
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);

	/* SET_LOG_BASE: log description with an fd, or a bare u64. */
	make_request(VHOST_USER_SET_LOG_BASE, &m);
	assert_true(vhost_user_expects_reply(&m));
	vhost_user_close_fds(&m);
	assert_int_equal(vhost_user_validate(&m, true), -EPROTO);
	m.hdr.size = 8;
	assert_int_equal(vhost_user_validate(&m, true), 0);
	assert_false(vhost_user_expects_reply(&m));

	/* SET_DEVICE_STATE_FD reply: never an error together with an fd. */
	make_reply(VHOST_USER_SET_DEVICE_STATE_FD, &m);
	assert_int_equal(vhost_user_validate(&m, false), 0);
	m.payload.u64 = 0;
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO); /* fd promised */
	m.fds[0] = 0;
	m.nfds = 1;
	assert_int_equal(vhost_user_validate(&m, false), 0);
	m.payload.u64 = 1;
	assert_int_equal(vhost_user_validate(&m, false), -EPROTO);
	m.nfds = 0;

	/* BACKEND_SHARED_OBJECT_LOOKUP reply: an fd only on success. */
	vhost_user_msg_init(&m, VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP, 8);
	m.hdr.flags |= VHOST_USER_REPLY_MASK;
	m.fds[0] = 0;
	m.nfds = 1;
	assert_int_equal(vhost_user_validate_backend_channel(&m, true), 0);
	m.payload.u64 = 1;
	assert_int_equal(vhost_user_validate_backend_channel(&m, true), -EPROTO);
}

/* ---- replies, REPLY_ACK and the synchronous call ---- */

static void test_reply_ack_round_trip(void **state)
{
	struct vhost_user_msg req, in, reply;
	int sv[2];

	(void)state;
	make_pair(sv);
	make_request(VHOST_USER_SET_VRING_NUM, &req);
	req.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	assert_int_equal(vhost_user_validate(&req, true), 0);
	assert_true(vhost_user_expects_reply(&req));
	assert_true(vhost_user_needs_ack(&req));

	/* The back-end's ack is queued first, so the call returns at once. */
	assert_int_equal(vhost_user_ack(sv[1], VHOST_USER_SET_VRING_NUM, 0), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), 0);
	assert_int_equal(reply.hdr.request, VHOST_USER_SET_VRING_NUM);
	assert_int_equal(reply.hdr.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
	assert_int_equal(reply.payload.u64, 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	assert_same_message(&req, &in);

	/* A failure status is delivered, not turned into an error. */
	assert_int_equal(vhost_user_ack(sv[1], VHOST_USER_SET_VRING_NUM, 1), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), 0);
	assert_int_equal(reply.payload.u64, 1);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	close_pair(sv);
}

static void test_call_with_reply_body(void **state)
{
	struct vhost_user_msg req, reply, in;
	int sv[2];

	(void)state;
	make_pair(sv);
	vhost_user_msg_init(&req, VHOST_USER_GET_FEATURES, 0);
	assert_int_equal(vhost_user_reply_u64(sv[1], VHOST_USER_GET_FEATURES,
					      1ull << VHOST_USER_F_PROTOCOL_FEATURES),
			 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), 0);
	assert_int_equal(reply.payload.u64, 1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* GET_INFLIGHT_FD: the region fd comes back with the reply. */
	make_request(VHOST_USER_GET_INFLIGHT_FD, &req);
	make_reply(VHOST_USER_GET_INFLIGHT_FD, &in);
	assert_int_equal(vhost_user_send(sv[1], &in), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), 0);
	assert_int_equal(reply.nfds, 1);
	assert_true(same_file(reply.fds[0], in.fds[0]));
	vhost_user_close_fds(&reply);
	vhost_user_close_fds(&in);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* No reply expected: the call returns after sending. */
	make_request(VHOST_USER_SET_VRING_BASE, &req);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), 0);
	assert_int_equal(reply.hdr.request, 0);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);
	close_pair(sv);
}

static void test_call_rejects_wrong_reply(void **state)
{
	struct vhost_user_msg req, bad, reply, in;
	int sv[2];

	(void)state;
	make_pair(sv);
	vhost_user_msg_init(&req, VHOST_USER_GET_PROTOCOL_FEATURES, 0);

	char why[160];

	/* Another request's reply; the description names both. */
	assert_int_equal(vhost_user_reply_u64(sv[1], VHOST_USER_GET_FEATURES, 0), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -EPROTO);
	vhost_user_describe_bad_reply(&req, &reply, why, sizeof(why));
	assert_string_equal(why,
			    "the reply names request 1 (GET_FEATURES), not GET_PROTOCOL_FEATURES");
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* No REPLY flag. */
	vhost_user_msg_init(&bad, VHOST_USER_GET_PROTOCOL_FEATURES, 8);
	assert_int_equal(vhost_user_send(sv[1], &bad), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -EPROTO);
	vhost_user_describe_bad_reply(&req, &reply, why, sizeof(why));
	assert_non_null(strstr(why, "the reply's flags 0x1 are not a version-1 reply's (0x5"));
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* Wrong size. */
	make_reply(VHOST_USER_GET_PROTOCOL_FEATURES, &bad);
	bad.hdr.size = 4;
	assert_int_equal(vhost_user_send(sv[1], &bad), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -EPROTO);
	vhost_user_describe_bad_reply(&req, &reply, why, sizeof(why));
	assert_string_equal(why, "the reply's 4-byte payload (0 fds) is not a valid "
				 "GET_PROTOCOL_FEATURES reply");
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* GET_CONFIG: the reply must cover what was asked for. */
	make_request(VHOST_USER_GET_CONFIG, &req);
	make_reply(VHOST_USER_GET_CONFIG, &bad);
	bad.payload.config.size = 4;
	bad.hdr.size = 12 + 4;
	assert_int_equal(vhost_user_send(sv[1], &bad), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -EPROTO);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* A body where only an ack belongs. */
	make_request(VHOST_USER_SET_MEM_TABLE, &req);
	req.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	vhost_user_close_fds(&req);
	req.payload.memory.nregions = 0;
	req.hdr.size = 8;
	make_reply(VHOST_USER_SET_MEM_TABLE, &bad);
	bad.hdr.size = 8 + 32;
	bad.payload.memory.nregions = 1;
	set_region(&bad.payload.memory.regions[0], 0);
	assert_int_equal(vhost_user_send(sv[1], &bad), 0);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -EPROTO);
	assert_int_equal(vhost_user_recv(sv[1], &in), 0);

	/* The back-end hangs up instead of answering. */
	vhost_user_msg_init(&req, VHOST_USER_GET_QUEUE_NUM, 0);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(vhost_user_call(sv[0], &req, &reply), -ECONNRESET);
	close_pair(sv);
}

static void test_reply_predicates(void **state)
{
	static const uint32_t with_body[] = {
	    VHOST_USER_GET_FEATURES,	  VHOST_USER_GET_PROTOCOL_FEATURES,
	    VHOST_USER_GET_VRING_BASE,	  VHOST_USER_GET_QUEUE_NUM,
	    VHOST_USER_GET_CONFIG,	  VHOST_USER_GET_INFLIGHT_FD,
	    VHOST_USER_GET_MAX_MEM_SLOTS, VHOST_USER_GET_STATUS,
	};
	struct vhost_user_msg m;
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(with_body) / sizeof(with_body[0]); i++) {
		vhost_user_msg_init(&m, with_body[i], 0);
		assert_true(vhost_user_expects_reply(&m));
		m.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
		assert_false(vhost_user_needs_ack(&m)); /* "no behavioural change" */
	}
	vhost_user_msg_init(&m, VHOST_USER_SET_FEATURES, 8);
	assert_false(vhost_user_expects_reply(&m));
	assert_false(vhost_user_needs_ack(&m));
	m.hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	assert_true(vhost_user_expects_reply(&m));
	assert_true(vhost_user_needs_ack(&m));
}

static void test_request_names(void **state)
{
	(void)state;
	assert_string_equal(vhost_user_request_name(VHOST_USER_GET_FEATURES), "GET_FEATURES");
	assert_string_equal(vhost_user_request_name(VHOST_USER_SET_BACKEND_REQ_FD),
			    "SET_BACKEND_REQ_FD");
	assert_string_equal(vhost_user_request_name(VHOST_USER_CHECK_DEVICE_STATE),
			    "CHECK_DEVICE_STATE");
	assert_string_equal(vhost_user_request_name(VHOST_USER_REQUEST_MAX), "UNKNOWN");
	assert_string_equal(vhost_user_backend_request_name(0), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_every_request),
	    cmocka_unit_test(test_round_trip_every_reply),
	    cmocka_unit_test(test_round_trip_backend_channel),
	    cmocka_unit_test(test_fds_refer_to_same_files),
	    cmocka_unit_test(test_fds_stay_with_their_message),
	    cmocka_unit_test(test_send_too_many_fds),
	    cmocka_unit_test(test_recv_too_many_fds),
	    cmocka_unit_test(test_fds_on_message_that_takes_none),
	    cmocka_unit_test(test_unexpected_control_data),
	    cmocka_unit_test(test_nofd_bit),
	    cmocka_unit_test(test_truncated_header),
	    cmocka_unit_test(test_hangup),
	    cmocka_unit_test(test_send_to_closed_peer),
	    cmocka_unit_test(test_payload_over_max),
	    cmocka_unit_test(test_wrong_version_and_flags),
	    cmocka_unit_test(test_unknown_request),
	    cmocka_unit_test(test_nonblocking_no_message),
	    cmocka_unit_test(test_size_mismatch_every_request),
	    cmocka_unit_test(test_fd_count_every_request),
	    cmocka_unit_test(test_mem_table_rules),
	    cmocka_unit_test(test_config_rules),
	    cmocka_unit_test(test_inflight_rules),
	    cmocka_unit_test(test_small_payload_rules),
	    cmocka_unit_test(test_reply_ack_round_trip),
	    cmocka_unit_test(test_call_with_reply_body),
	    cmocka_unit_test(test_call_rejects_wrong_reply),
	    cmocka_unit_test(test_reply_predicates),
	    cmocka_unit_test(test_request_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
