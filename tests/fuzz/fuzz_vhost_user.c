// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the vhost-user decoder (lib/vhost_user.c): arbitrary
 * bytes, and optionally fds, arrive on a Unix stream socket the way a hostile
 * front-end or back-end would send them; vhost_user_recv() must frame them or
 * refuse them, vhost_user_validate() must judge every framed message from
 * both sides and both channels, and no fd may leak.  Build and run:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude \
 *       tests/fuzz/fuzz_vhost_user.c lib/vhost_user.c lib/log.c -o build/fuzz_vhost_user
 *   build/fuzz_vhost_user -max_total_time=60 tests/fuzz/corpus/vhost_user
 *
 * Input: two control bytes, then the byte stream, written in two parts so
 * that messages, and their fds, may straddle writes.
 *   byte 0  bits 0-3: fds attached to the first part, bits 4-7: to the
 *           second (0-15 each; more than 8 in one message must be refused)
 *   byte 1  the first part is byte1 * len / 256 bytes of the stream
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/vhost_user.h"

#define FUZZ_MAX_INPUT 16384 /* well below the socket buffer: writes never block */
#define FUZZ_FD_PROBE 64     /* fds 0-63 are checked for leaks */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void send_part(int sock, const uint8_t *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 15)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (len == 0)
		return; /* fds need at least one byte to ride on */
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
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		abort();
}

/* Judge one framed message every way a peer could receive it. */
static void judge(const struct vhost_user_msg *msg)
{
	int main_req = vhost_user_validate(msg, true);
	int main_reply = vhost_user_validate(msg, false);
	int backend_req = vhost_user_validate_backend_channel(msg, false);
	int backend_reply = vhost_user_validate_backend_channel(msg, true);

	/* A message is a request or a reply, never both. */
	if (main_req == 0 && main_reply == 0)
		abort();
	if (backend_req == 0 && backend_reply == 0)
		abort();
	if (main_req == 0 && msg->nfds > VHOST_USER_MAX_FDS)
		abort();
	(void)vhost_user_expects_reply(msg);
	(void)vhost_user_needs_ack(msg);
	(void)vhost_user_request_name(msg->hdr.request);
	(void)vhost_user_backend_request_name(msg->hdr.request);
}

/* Which of the low fds are open: a leak shows up as a difference. */
static uint64_t open_fds(void)
{
	uint64_t set = 0;
	int fd;

	for (fd = 0; fd < FUZZ_FD_PROBE; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			set |= 1ull << fd;
	return set;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhost_user_msg msg;
	uint64_t before;
	int sv[2], fds[30];
	unsigned nfds, i;
	size_t split;

	if (size < 2 || size > FUZZ_MAX_INPUT)
		return 0;
	before = open_fds();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();

	nfds = (data[0] & 0xf) + (data[0] >> 4);
	split = (data[1] * (size - 2)) / 256;
	for (i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	send_part(sv[0], data + 2, split, fds, data[0] & 0xf);
	send_part(sv[0], data + 2 + split, size - 2 - split, fds + (data[0] & 0xf), data[0] >> 4);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	shutdown(sv[0], SHUT_WR); /* the decoder meets EOF, never a blocked read */

	for (;;) {
		int ret = vhost_user_recv(sv[1], &msg);

		if (ret) {
			if (msg.nfds != 0)
				abort(); /* recv must close what it received */
			break;
		}
		if (msg.hdr.size > VHOST_USER_PAYLOAD_MAX || msg.nfds > VHOST_USER_MAX_FDS)
			abort();
		judge(&msg);
		vhost_user_close_fds(&msg);
	}
	close(sv[0]);
	close(sv[1]);

	/* Every fd the decoder was given is closed again. */
	if (open_fds() != before)
		abort();
	return 0;
}
