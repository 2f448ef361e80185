// SPDX-License-Identifier: MIT
/*
 * vhost-user message codec: framing over a Unix stream socket with fds in
 * SCM_RIGHTS, and table-driven validation of every request and reply against
 * QEMU docs/interop/vhost-user.rst.  See docs/vhost-user.md.
 */
#include <errno.h>
#include <poll.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/vhost_user.h"

/* What a payload must look like (request or reply). */
enum payload_kind {
	P_UNKNOWN = 0,	  /* not a request code we know */
	P_NONE,		  /* no payload */
	P_U64,		  /* u64; also every REPLY_ACK */
	P_U64_OPT,	  /* u64 or nothing (replies that are "an fd") */
	P_STATE,	  /* vring state */
	P_STATE_BOOL,	  /* vring state, num 0 or 1 */
	P_VRING_FD,	  /* u64: vring index (0-7), NOFD bit (8) */
	P_ADDR,		  /* vring address */
	P_MEMORY,	  /* 8 + nregions * 32, nregions <= 8 */
	P_MEMORY_OR_ACK,  /* postcopy memory table reply, or REPLY_ACK */
	P_MEM_REG,	  /* single memory region */
	P_MEM_REG_REMOVE, /* single memory region, mmap offset ignored */
	P_MEM_REG_OR_ACK, /* postcopy single region reply, or REPLY_ACK */
	P_LOG,		  /* log description (LOG_SHMFD) or legacy u64 */
	P_IOTLB,	  /* IOTLB message */
	P_CONFIG,	  /* config space: 12 + size, offset + size <= 256 */
	P_CONFIG_REPLY,	  /* config space, or nothing (error) */
	P_AREA,		  /* vring area */
	P_INFLIGHT,	  /* inflight description (20 or 24 bytes) */
	P_SHARED,	  /* UUID */
	P_DEVICE_STATE,	  /* device state transfer parameters */
	P_UNSUPPORTED,	  /* known, but not decoded here (crypto sessions) */
};

/* How many fds must come with a message. */
enum fd_rule {
	FD_NONE = 0,
	FD_ONE,	       /* exactly one */
	FD_OPTIONAL,   /* zero or one */
	FD_REGIONS,    /* one per memory region */
	FD_NOFD_BIT,   /* one iff u64 bit 8 (NOFD) is clear */
	FD_LOG,	       /* one with the log description, none with a u64 */
	FD_INFLIGHT,   /* one iff mmap_size != 0 */
	FD_DEVSTATE,   /* one iff NOFD clear, and never with an error */
	FD_IF_SUCCESS, /* at most one, and only if the u64 is 0 */
};

struct vhost_user_rule {
	const char *name;
	unsigned char request;	 /* enum payload_kind */
	unsigned char fds;	 /* enum fd_rule */
	unsigned char reply;	 /* enum payload_kind; P_U64 = REPLY_ACK only */
	unsigned char reply_fds; /* enum fd_rule */
	bool always_reply;	 /* a reply comes without NEED_REPLY */
};

#define RULE(code, req, f, rep, rf, always) [VHOST_USER_##code] = {#code, req, f, rep, rf, always}

/* vhost-user: "Front-end message types": request and reply payloads. */
static const struct vhost_user_rule frontend_rules[VHOST_USER_REQUEST_MAX] = {
    RULE(GET_FEATURES, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(SET_FEATURES, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(SET_OWNER, P_NONE, FD_NONE, P_U64, FD_NONE, false),
    RULE(RESET_OWNER, P_NONE, FD_NONE, P_U64, FD_NONE, false),
    RULE(SET_MEM_TABLE, P_MEMORY, FD_REGIONS, P_MEMORY_OR_ACK, FD_NONE, false),
    RULE(SET_LOG_BASE, P_LOG, FD_LOG, P_U64, FD_NONE, false),
    RULE(SET_LOG_FD, P_NONE, FD_ONE, P_U64, FD_NONE, false),
    RULE(SET_VRING_NUM, P_STATE, FD_NONE, P_U64, FD_NONE, false),
    RULE(SET_VRING_ADDR, P_ADDR, FD_NONE, P_U64, FD_NONE, false),
    RULE(SET_VRING_BASE, P_STATE, FD_NONE, P_U64, FD_NONE, false),
    RULE(GET_VRING_BASE, P_STATE, FD_NONE, P_STATE, FD_NONE, true),
    RULE(SET_VRING_KICK, P_VRING_FD, FD_NOFD_BIT, P_U64, FD_NONE, false),
    RULE(SET_VRING_CALL, P_VRING_FD, FD_NOFD_BIT, P_U64, FD_NONE, false),
    RULE(SET_VRING_ERR, P_VRING_FD, FD_NOFD_BIT, P_U64, FD_NONE, false),
    RULE(GET_PROTOCOL_FEATURES, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(SET_PROTOCOL_FEATURES, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(GET_QUEUE_NUM, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(SET_VRING_ENABLE, P_STATE_BOOL, FD_NONE, P_U64, FD_NONE, false),
    RULE(SEND_RARP, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(NET_SET_MTU, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(SET_BACKEND_REQ_FD, P_NONE, FD_ONE, P_U64, FD_NONE, false),
    RULE(IOTLB_MSG, P_IOTLB, FD_NONE, P_U64, FD_NONE, true),
    RULE(SET_VRING_ENDIAN, P_STATE_BOOL, FD_NONE, P_U64, FD_NONE, false),
    RULE(GET_CONFIG, P_CONFIG, FD_NONE, P_CONFIG_REPLY, FD_NONE, true),
    RULE(SET_CONFIG, P_CONFIG, FD_NONE, P_U64, FD_NONE, false),
    RULE(CREATE_CRYPTO_SESSION, P_UNSUPPORTED, FD_NONE, P_UNSUPPORTED, FD_NONE, true),
    RULE(CLOSE_CRYPTO_SESSION, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(POSTCOPY_ADVISE, P_NONE, FD_NONE, P_U64_OPT, FD_OPTIONAL, true),
    RULE(POSTCOPY_LISTEN, P_NONE, FD_NONE, P_U64, FD_NONE, false),
    RULE(POSTCOPY_END, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(GET_INFLIGHT_FD, P_INFLIGHT, FD_NONE, P_INFLIGHT, FD_INFLIGHT, true),
    RULE(SET_INFLIGHT_FD, P_INFLIGHT, FD_ONE, P_U64, FD_NONE, false),
    RULE(GPU_SET_SOCKET, P_NONE, FD_ONE, P_U64, FD_NONE, false),
    RULE(RESET_DEVICE, P_NONE, FD_NONE, P_U64, FD_NONE, false),
    RULE(VRING_KICK, P_STATE, FD_NONE, P_U64, FD_NONE, false),
    RULE(GET_MAX_MEM_SLOTS, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(ADD_MEM_REG, P_MEM_REG, FD_ONE, P_MEM_REG_OR_ACK, FD_NONE, false),
    /* "the back-end MAY accept messages with one file descriptor" */
    RULE(REM_MEM_REG, P_MEM_REG_REMOVE, FD_OPTIONAL, P_MEM_REG_OR_ACK, FD_NONE, false),
    RULE(SET_STATUS, P_U64, FD_NONE, P_U64, FD_NONE, false),
    RULE(GET_STATUS, P_NONE, FD_NONE, P_U64, FD_NONE, true),
    RULE(GET_SHARED_OBJECT, P_SHARED, FD_NONE, P_U64_OPT, FD_OPTIONAL, true),
    RULE(SET_DEVICE_STATE_FD, P_DEVICE_STATE, FD_ONE, P_U64, FD_DEVSTATE, true),
    RULE(CHECK_DEVICE_STATE, P_NONE, FD_NONE, P_U64, FD_NONE, true),
};

/* vhost-user: "Back-end message types" (on the SET_BACKEND_REQ_FD socket). */
static const struct vhost_user_rule backend_rules[VHOST_USER_BACKEND_REQUEST_MAX] = {
    RULE(BACKEND_IOTLB_MSG, P_IOTLB, FD_NONE, P_U64, FD_NONE, false),
    RULE(BACKEND_CONFIG_CHANGE_MSG, P_NONE, FD_NONE, P_U64, FD_NONE, false),
    /* with an fd: register the notifier; without: de-register */
    RULE(BACKEND_VRING_HOST_NOTIFIER_MSG, P_AREA, FD_OPTIONAL, P_U64, FD_NONE, false),
    RULE(BACKEND_VRING_CALL, P_STATE, FD_NONE, P_U64, FD_NONE, false),
    RULE(BACKEND_VRING_ERR, P_STATE, FD_NONE, P_U64, FD_NONE, false),
    RULE(BACKEND_SHARED_OBJECT_ADD, P_SHARED, FD_NONE, P_U64, FD_NONE, false),
    RULE(BACKEND_SHARED_OBJECT_REMOVE, P_SHARED, FD_NONE, P_U64, FD_NONE, false),
    RULE(BACKEND_SHARED_OBJECT_LOOKUP, P_SHARED, FD_NONE, P_U64, FD_IF_SUCCESS, true),
};

static const struct vhost_user_rule *rule_for(const struct vhost_user_rule *rules, size_t n,
					      uint32_t request)
{
	if (request >= n || !rules[request].name)
		return NULL;
	return &rules[request];
}

const char *vhost_user_request_name(uint32_t request)
{
	const struct vhost_user_rule *r = rule_for(frontend_rules, VHOST_USER_REQUEST_MAX, request);

	return r ? r->name : "UNKNOWN";
}

const char *vhost_user_backend_request_name(uint32_t request)
{
	const struct vhost_user_rule *r =
	    rule_for(backend_rules, VHOST_USER_BACKEND_REQUEST_MAX, request);

	return r ? r->name : "UNKNOWN";
}

void vhost_user_msg_init(struct vhost_user_msg *msg, uint32_t request, uint32_t size)
{
	memset(msg, 0, sizeof(*msg));
	msg->hdr.request = request;
	msg->hdr.flags = VHOST_USER_VERSION;
	msg->hdr.size = size;
}

void vhost_user_close_fds(struct vhost_user_msg *msg)
{
	unsigned int i;

	for (i = 0; i < msg->nfds && i < VHOST_USER_MAX_FDS; i++) {
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
		msg->fds[i] = -1;
	}
	msg->nfds = 0;
}

/* ---- validation ---- */

/* A region must be non-empty and none of its ranges may wrap around. */
static bool region_ok(const struct vhost_user_mem_region *r, bool check_offset)
{
	uint64_t last = r->size - 1;

	if (r->size == 0)
		return false;
	if (r->guest_address > UINT64_MAX - last || r->user_address > UINT64_MAX - last)
		return false;
	return !check_offset || r->mmap_offset <= UINT64_MAX - last;
}

static bool memory_ok(const struct vhost_user_msg *msg)
{
	const struct vhost_user_memory *m = &msg->payload.memory;
	uint32_t i;

	/* vhost-user: "Multiple Memory regions description": at most 8 */
	if (msg->hdr.size < 8 || m->nregions > VHOST_MEMORY_BASELINE_NREGIONS)
		return false;
	if (msg->hdr.size != 8 + m->nregions * sizeof(struct vhost_user_mem_region))
		return false;
	for (i = 0; i < m->nregions; i++)
		if (!region_ok(&m->regions[i], true))
			return false;
	return true;
}

static bool config_ok(const struct vhost_user_msg *msg)
{
	const struct vhost_user_config *c = &msg->payload.config;

	if (msg->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size > VHOST_USER_MAX_CONFIG_SIZE)
		return false;
	if (msg->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return false;
	if (c->offset > VHOST_USER_MAX_CONFIG_SIZE - c->size)
		return false;
	return c->flags <= VHOST_USER_CONFIG_FLAG_MIGRATION;
}

static bool iotlb_ok(const struct vhost_user_iotlb *t)
{
	return t->type >= VHOST_USER_IOTLB_MISS && t->type <= VHOST_USER_IOTLB_ACCESS_FAIL &&
	       t->perm <= VHOST_USER_IOTLB_PERM_RW;
}

static bool payload_ok(enum payload_kind kind, const struct vhost_user_msg *msg)
{
	uint32_t size = msg->hdr.size;
	const union vhost_user_payload *p = &msg->payload;

	switch (kind) {
	case P_NONE:
		return size == 0;
	case P_U64:
	case P_VRING_FD:
		return size == sizeof(p->u64);
	case P_U64_OPT:
		return size == 0 || size == sizeof(p->u64);
	case P_STATE:
		return size == sizeof(p->state);
	case P_STATE_BOOL:
		return size == sizeof(p->state) && p->state.num <= 1;
	case P_ADDR:
		return size == sizeof(p->addr);
	case P_MEMORY:
		return memory_ok(msg);
	case P_MEMORY_OR_ACK:
		return size == sizeof(p->u64) || memory_ok(msg);
	case P_MEM_REG:
	case P_MEM_REG_REMOVE:
		return size == sizeof(p->mem_reg) &&
		       region_ok(&p->mem_reg.region, kind == P_MEM_REG);
	case P_MEM_REG_OR_ACK:
		return size == sizeof(p->u64) ||
		       (size == sizeof(p->mem_reg) && region_ok(&p->mem_reg.region, true));
	case P_LOG:
		return size == sizeof(p->log) || size == sizeof(p->u64);
	case P_IOTLB:
		return size == sizeof(p->iotlb) && iotlb_ok(&p->iotlb);
	case P_CONFIG:
		return config_ok(msg);
	case P_CONFIG_REPLY:
		/* GET_CONFIG: "zero length of payload to indicate an error" */
		return size == 0 || config_ok(msg);
	case P_AREA:
		return size == sizeof(p->area);
	case P_INFLIGHT:
		return size == sizeof(p->inflight) || size == VHOST_USER_INFLIGHT_MIN_SIZE;
	case P_SHARED:
		return size == sizeof(p->shared);
	case P_DEVICE_STATE:
		return size == sizeof(p->device_state) && p->device_state.transfer_direction <= 1 &&
		       p->device_state.migration_phase == 0;
	case P_UNKNOWN:
	case P_UNSUPPORTED:
		break;
	}
	return false;
}

static bool fds_ok(enum fd_rule rule, const struct vhost_user_msg *msg)
{
	const union vhost_user_payload *p = &msg->payload;
	unsigned int n = msg->nfds;

	switch (rule) {
	case FD_NONE:
		return n == 0;
	case FD_ONE:
		return n == 1;
	case FD_OPTIONAL:
		return n <= 1;
	case FD_REGIONS:
		/* SET_MEM_TABLE: "The size and ordering of the fds matches the
		 * number and ordering of memory regions."  An 8-byte postcopy
		 * ack never gets here (P_MEMORY is checked first). */
		return n == p->memory.nregions;
	case FD_NOFD_BIT:
		return n == ((p->u64 & VHOST_USER_VRING_NOFD_MASK) ? 0u : 1u);
	case FD_LOG:
		return n == (msg->hdr.size == sizeof(p->log) ? 1u : 0u);
	case FD_INFLIGHT:
		return n == (p->inflight.mmap_size ? 1u : 0u);
	case FD_DEVSTATE:
		/* "The back-end must not both indicate an error and return a
		 * file descriptor." */
		if (p->u64 & VHOST_USER_VRING_NOFD_MASK)
			return n == 0;
		return n == 1 && (p->u64 & 0xff) == 0;
	case FD_IF_SUCCESS:
		return n == 0 || (n == 1 && p->u64 == 0);
	}
	return false;
}

static int validate_flags(const struct vhost_user_msg *msg, bool is_reply)
{
	uint32_t flags = msg->hdr.flags;

	if ((flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		return -EPROTO;
	if (flags & ~VHOST_USER_FLAGS_KNOWN)
		return -EPROTO;
	if (is_reply != !!(flags & VHOST_USER_REPLY_MASK))
		return -EPROTO;
	/* A reply never asks for a reply. */
	if (is_reply && (flags & VHOST_USER_NEED_REPLY_MASK))
		return -EPROTO;
	return 0;
}

static int validate_with(const struct vhost_user_msg *msg, const struct vhost_user_rule *rules,
			 size_t nrules, bool is_reply)
{
	const struct vhost_user_rule *rule;
	enum payload_kind kind;
	int ret;

	ret = validate_flags(msg, is_reply);
	if (ret)
		return ret;
	if (msg->hdr.size > VHOST_USER_PAYLOAD_MAX || msg->nfds > VHOST_USER_MAX_FDS)
		return -EPROTO;
	rule = rule_for(rules, nrules, msg->hdr.request);
	if (!rule)
		return -EOPNOTSUPP;
	kind = is_reply ? rule->reply : rule->request;
	if (kind == P_UNSUPPORTED)
		return -EOPNOTSUPP;
	if (!payload_ok(kind, msg))
		return -EPROTO;
	if (!fds_ok(is_reply ? rule->reply_fds : rule->fds, msg))
		return -EPROTO;
	return 0;
}

int vhost_user_validate(const struct vhost_user_msg *msg, bool from_frontend)
{
	/* Main channel: the front-end sends requests, the back-end replies. */
	return validate_with(msg, frontend_rules, VHOST_USER_REQUEST_MAX, !from_frontend);
}

int vhost_user_validate_backend_channel(const struct vhost_user_msg *msg, bool from_frontend)
{
	/* Back-end channel: the back-end sends requests, the front-end replies. */
	return validate_with(msg, backend_rules, VHOST_USER_BACKEND_REQUEST_MAX, from_frontend);
}

/* The request has a reply body of its own (not just a REPLY_ACK). */
static bool has_reply_body(const struct vhost_user_msg *msg)
{
	const struct vhost_user_rule *rule =
	    rule_for(frontend_rules, VHOST_USER_REQUEST_MAX, msg->hdr.request);

	if (!rule)
		return false;
	/* "VHOST_USER_SET_LOG_BASE (if VHOST_USER_PROTOCOL_F_LOG_SHMFD)" */
	if (msg->hdr.request == VHOST_USER_SET_LOG_BASE)
		return msg->nfds > 0;
	return rule->always_reply;
}

bool vhost_user_expects_reply(const struct vhost_user_msg *msg)
{
	return (msg->hdr.flags & VHOST_USER_NEED_REPLY_MASK) || has_reply_body(msg);
}

bool vhost_user_needs_ack(const struct vhost_user_msg *msg)
{
	/* REPLY_ACK: "unless the message already has an explicit reply body" */
	return (msg->hdr.flags & VHOST_USER_NEED_REPLY_MASK) && !has_reply_body(msg);
}

/* ---- framing ---- */

static int wait_for(int sock, short events)
{
	struct pollfd pfd = {.fd = sock, .events = events};
	int n;

	do {
		n = poll(&pfd, 1, VHOST_USER_TIMEOUT_MS);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

int vhost_user_send(int sock, const struct vhost_user_msg *msg)
{
	uint8_t buf[sizeof(msg->hdr) + VHOST_USER_PAYLOAD_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} control;
	size_t total = sizeof(msg->hdr) + msg->hdr.size, sent = 0;
	unsigned int i;

	if (msg->hdr.size > VHOST_USER_PAYLOAD_MAX || msg->nfds > VHOST_USER_MAX_FDS)
		return -EMSGSIZE;
	for (i = 0; i < msg->nfds; i++)
		if (msg->fds[i] < 0)
			return -EBADF;
	memcpy(buf, &msg->hdr, sizeof(msg->hdr));
	memcpy(buf + sizeof(msg->hdr), &msg->payload, msg->hdr.size);

	while (sent < total) {
		struct iovec iov = {.iov_base = buf + sent, .iov_len = total - sent};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		/* The fds travel with the first byte, so only on the first try. */
		if (sent == 0 && msg->nfds) {
			struct cmsghdr *cmsg;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * msg->nfds);
			cmsg = CMSG_FIRSTHDR(&mh);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * msg->nfds);
			memcpy(CMSG_DATA(cmsg), msg->fds, sizeof(int) * msg->nfds);
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			int ret = -errno;

			if (ret == -EINTR)
				continue;
			if (ret == -EAGAIN || ret == -EWOULDBLOCK) {
				ret = wait_for(sock, POLLOUT);
				if (ret)
					return ret;
				continue;
			}
			return ret;
		}
		sent += (size_t)n;
	}
	return 0;
}

/* Take the fds of one recvmsg() into msg.  Returns 0, -EMSGSIZE (more than
 * VHOST_USER_MAX_FDS in all) or -EPROTO (control data that is not fds). */
static int take_fds(struct msghdr *mh, struct vhost_user_msg *msg)
{
	struct cmsghdr *cmsg;
	bool foreign = false;
	int ret = 0;

	for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
		size_t i, n;
		int fd;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
			foreign = true;
			continue;
		}
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(fd));
			if (msg->nfds < VHOST_USER_MAX_FDS) {
				msg->fds[msg->nfds++] = fd;
			} else {
				close(fd);
				ret = -EMSGSIZE;
			}
		}
	}
	if (foreign)
		return -EPROTO;
	/* The kernel dropped fds that did not fit: too many for one message. */
	if (mh->msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	return ret;
}

/*
 * Read exactly len bytes into buf, collecting any fds into msg.  at_start:
 * nothing of this message has been read yet, so EAGAIN means "no message".
 */
static int recv_exact(int sock, void *buf, size_t len, struct vhost_user_msg *msg, bool at_start)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} control;
	size_t done = 0;
	int ret;

	while (done < len) {
		struct iovec iov = {.iov_base = (char *)buf + done, .iov_len = len - done};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			ret = -errno;
			if (ret == -EINTR)
				continue;
			if (ret != -EAGAIN && ret != -EWOULDBLOCK)
				return ret;
			if (at_start && done == 0)
				return -EAGAIN;
			ret = wait_for(sock, POLLIN);
			if (ret)
				return ret;
			continue;
		}
		ret = take_fds(&mh, msg);
		if (ret)
			return ret;
		if (n == 0)
			return -ECONNRESET; /* hangup, possibly mid-message */
		done += (size_t)n;
	}
	return 0;
}

int vhost_user_recv(int sock, struct vhost_user_msg *msg)
{
	int ret;

	memset(&msg->hdr, 0, sizeof(msg->hdr));
	memset(&msg->payload, 0, sizeof(msg->payload));
	msg->nfds = 0;

	ret = recv_exact(sock, &msg->hdr, sizeof(msg->hdr), msg, true);
	if (ret)
		goto fail;
	/* Framing checks before trusting hdr.size. */
	if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (msg->hdr.flags & ~VHOST_USER_FLAGS_KNOWN)) {
		ret = -EPROTO;
		goto fail;
	}
	if (msg->hdr.size > VHOST_USER_PAYLOAD_MAX) {
		ret = -EMSGSIZE;
		goto fail;
	}
	ret = recv_exact(sock, &msg->payload, msg->hdr.size, msg, false);
	if (ret)
		goto fail;
	return 0;
fail:
	vhost_user_close_fds(msg);
	return ret;
}

/* ---- replies and the synchronous front-end call ---- */

int vhost_user_reply_u64(int sock, uint32_t request, uint64_t value)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(msg.payload.u64));
	msg.hdr.flags |= VHOST_USER_REPLY_MASK;
	msg.payload.u64 = value;
	return vhost_user_send(sock, &msg);
}

int vhost_user_ack(int sock, uint32_t request, uint64_t status)
{
	return vhost_user_reply_u64(sock, request, status);
}

/* The reply belongs to the request: same code, and for GET_CONFIG the same
 * size ("back-end's payload size MUST match the front-end's request") or 0. */
static int reply_matches(const struct vhost_user_msg *msg, const struct vhost_user_msg *reply)
{
	int ret;

	if (reply->hdr.request != msg->hdr.request)
		return -EPROTO;
	ret = vhost_user_validate(reply, false);
	if (ret)
		return ret == -EOPNOTSUPP ? -EPROTO : ret;
	if (msg->hdr.request == VHOST_USER_GET_CONFIG && reply->hdr.size &&
	    (reply->hdr.size != msg->hdr.size ||
	     reply->payload.config.offset != msg->payload.config.offset))
		return -EPROTO;
	/* A request without a reply body gets a REPLY_ACK u64 only. */
	if (vhost_user_needs_ack(msg) && reply->hdr.size != sizeof(reply->payload.u64))
		return -EPROTO;
	return 0;
}

void vhost_user_describe_bad_reply(const struct vhost_user_msg *msg,
				   const struct vhost_user_msg *reply, char *buf, size_t len)
{
	uint32_t flags = reply->hdr.flags;

	if (reply->hdr.request != msg->hdr.request)
		snprintf(buf, len, "the reply names request %u (%s), not %s", reply->hdr.request,
			 vhost_user_request_name(reply->hdr.request),
			 vhost_user_request_name(msg->hdr.request));
	else if (validate_flags(reply, true))
		snprintf(buf, len,
			 "the reply's flags 0x%x are not a version-1 reply's (0x%x; vhost-user.rst "
			 "\"Header\")",
			 flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
	else
		snprintf(buf, len, "the reply's %u-byte payload (%u fds) is not a valid %s reply",
			 reply->hdr.size, reply->nfds, vhost_user_request_name(msg->hdr.request));
}

int vhost_user_call(int sock, const struct vhost_user_msg *msg, struct vhost_user_msg *reply)
{
	int ret;

	memset(&reply->hdr, 0, sizeof(reply->hdr));
	reply->nfds = 0;
	ret = vhost_user_send(sock, msg);
	if (ret)
		return ret;
	if (!vhost_user_expects_reply(msg))
		return 0;
	ret = wait_for(sock, POLLIN);
	if (ret)
		return ret;
	ret = vhost_user_recv(sock, reply);
	if (ret)
		return ret == -EAGAIN ? -ETIMEDOUT : ret;
	ret = reply_matches(msg, reply);
	if (ret)
		vhost_user_close_fds(reply);
	return ret;
}

ssize_t vhost_user_state_read(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint8_t extra;
		ssize_t n = got < cap ? read(fd, buf + got, cap - got) : read(fd, &extra, 1);

		if (n < 0 && errno == EAGAIN) {
			int r = poll(&pfd, 1, VHOST_USER_TIMEOUT_MS);

			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return (ssize_t)got;
		if (got == cap)
			return -EFBIG; /* one byte past cap: more than the caller takes */
		got += (size_t)n;
	}
}
