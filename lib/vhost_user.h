/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user message codec, per QEMU docs/interop/vhost-user.rst (cited
 * below as "vhost-user: <section>").  Shared by the core (the front-end) and
 * the device servers (back-ends): message layout, framing over a Unix stream
 * socket with file descriptors in SCM_RIGHTS, and validation of every length
 * and fd count before a message is used.
 *
 * Layering: vhost_user_recv() frames (header, payload up to the largest
 * payload we know, ancillary fds) and vhost_user_validate() checks a framed
 * message against the request it claims to be.  Neither acts on a message.
 * All numbers are in native byte order ("Message Specification").
 */
#ifndef ISOLA_LIB_VHOST_USER_H
#define ISOLA_LIB_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* vhost-user: "Front-end message types" (id). */
enum vhost_user_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4, /* deprecated */
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21, /* previously SET_SLAVE_REQ_FD */
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_GET_SHARED_OBJECT = 41,
	VHOST_USER_SET_DEVICE_STATE_FD = 42,
	VHOST_USER_CHECK_DEVICE_STATE = 43,
	VHOST_USER_REQUEST_MAX, /* one past the last known front-end request */
};

/* vhost-user: "Back-end message types" (id), sent on the back-end channel. */
enum vhost_user_backend_request {
	VHOST_USER_BACKEND_NONE = 0,
	VHOST_USER_BACKEND_IOTLB_MSG = 1,
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
	VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
	VHOST_USER_BACKEND_VRING_CALL = 4,
	VHOST_USER_BACKEND_VRING_ERR = 5,
	VHOST_USER_BACKEND_SHARED_OBJECT_ADD = 6,
	VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE = 7,
	VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP = 8,
	VHOST_USER_BACKEND_REQUEST_MAX,
};

/* vhost-user: "Communication": the virtio feature bit that gates protocol
 * feature negotiation. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* vhost-user: "Protocol features" (bit numbers). */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_RARP 2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_MTU 4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN 6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION 7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT 8
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD 10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER 11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS 16
#define VHOST_USER_PROTOCOL_F_XEN_MMAP 17
#define VHOST_USER_PROTOCOL_F_SHARED_OBJECT 18
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE 19

/* vhost-user: "Header": flags. */
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_REPLY_MASK (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK (1u << 3)
#define VHOST_USER_FLAGS_KNOWN                                                                     \
	(VHOST_USER_VERSION_MASK | VHOST_USER_REPLY_MASK | VHOST_USER_NEED_REPLY_MASK)

/* vhost-user: VHOST_USER_SET_VRING_KICK: bits 0-7 vring index, bit 8 "invalid
 * FD" (no fd in the ancillary data: poll instead).  The same bit 8 means "no
 * fd returned" in the SET_DEVICE_STATE_FD reply. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD_MASK (1u << 8)

/* vhost-user: "Back-end communication": at most 8 fds in one message; the
 * memory table carries at most that many regions (one fd each). */
#define VHOST_MEMORY_BASELINE_NREGIONS 8
#define VHOST_USER_MAX_FDS 8
#define VHOST_USER_MAX_CONFIG_SIZE 256
#define VHOST_LOG_PAGE 0x1000 /* vhost-user: "Migration" */
#define VHOST_VRING_F_LOG 0   /* vring address flags bit: log the used ring */

/* vhost-user: "A vring state description"; also the "vring descriptor
 * index/indices" of SET/GET_VRING_BASE. */
struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
};

/* vhost-user: "A vring address description".  The spec's table shows a
 * "size" column that its field list does not define; the C structure it
 * names (struct vhost_vring_addr) has none: 2 x u32 then 4 x u64. */
struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

/* vhost-user: "Memory region description". */
struct vhost_user_mem_region {
	uint64_t guest_address;
	uint64_t size;
	uint64_t user_address;
	uint64_t mmap_offset;
};

/* vhost-user: "Multiple Memory regions description" (SET_MEM_TABLE). */
struct vhost_user_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_MEMORY_BASELINE_NREGIONS];
};

/* vhost-user: "Single memory region description" (ADD/REM_MEM_REG). */
struct vhost_user_mem_reg {
	uint64_t padding;
	struct vhost_user_mem_region region;
};

/* vhost-user: "Log description" (SET_LOG_BASE with LOG_SHMFD). */
struct vhost_user_log {
	uint64_t size;
	uint64_t offset;
};

/* vhost-user: "An IOTLB message": 3 x u64, u8 perm, u8 type, padded to the
 * 8-byte alignment of struct vhost_iotlb_msg (32 bytes on the wire). */
#define VHOST_USER_IOTLB_MISS 1
#define VHOST_USER_IOTLB_UPDATE 2
#define VHOST_USER_IOTLB_INVALIDATE 3
#define VHOST_USER_IOTLB_ACCESS_FAIL 4
#define VHOST_USER_IOTLB_PERM_RW 3
struct vhost_user_iotlb {
	uint64_t iova;
	uint64_t size;
	uint64_t user_address;
	uint8_t perm;
	uint8_t type;
	uint8_t reserved[6];
};

/* vhost-user: "Virtio device config space".  On the wire only the first
 * `size` bytes of payload are sent: header size = 12 + size. */
#define VHOST_USER_CONFIG_HDR_SIZE 12u
#define VHOST_USER_CONFIG_FLAG_WRITABLE 0
#define VHOST_USER_CONFIG_FLAG_MIGRATION 1
struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VHOST_USER_MAX_CONFIG_SIZE];
};

/* vhost-user: "Vring area description" (BACKEND_VRING_HOST_NOTIFIER_MSG). */
struct vhost_user_vring_area {
	uint64_t u64; /* vring index (bits 0-7) and flags (bit 8: no fd) */
	uint64_t size;
	uint64_t offset;
};

/* vhost-user: "Inflight description".  Its fields add up to 20 bytes; peers
 * frame it as a naturally aligned C struct, 24 bytes with 4 trailing bytes of
 * padding.  We send 24 and accept 20 or 24 (VHOST_USER_INFLIGHT_MIN_SIZE). */
#define VHOST_USER_INFLIGHT_MIN_SIZE 20u
struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

/* vhost-user: "VhostUserShared": a 16-byte UUID. */
struct vhost_user_shared {
	uint8_t uuid[16];
};

/* vhost-user: "Device state transfer parameters". */
struct vhost_user_device_state {
	uint32_t transfer_direction; /* 0 save, 1 load */
	uint32_t migration_phase;    /* 0 stopped */
};

/* vhost-user: "Header". */
struct vhost_user_header {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
};

union vhost_user_payload {
	uint64_t u64;
	struct vhost_user_vring_state state;
	struct vhost_user_vring_addr addr;
	struct vhost_user_memory memory;
	struct vhost_user_mem_reg mem_reg;
	struct vhost_user_log log;
	struct vhost_user_iotlb iotlb;
	struct vhost_user_config config;
	struct vhost_user_vring_area area;
	struct vhost_user_inflight inflight;
	struct vhost_user_shared shared;
	struct vhost_user_device_state device_state;
	uint8_t bytes[VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE];
};

/* The wire layout, exactly (natural alignment gives it; no packing needed). */
_Static_assert(sizeof(struct vhost_user_header) == 12, "vhost-user header");
_Static_assert(sizeof(struct vhost_user_vring_state) == 8, "vring state");
_Static_assert(sizeof(struct vhost_user_vring_addr) == 40, "vring addr");
_Static_assert(sizeof(struct vhost_user_mem_region) == 32, "memory region");
_Static_assert(sizeof(struct vhost_user_memory) == 8 + 8 * 32, "memory table");
_Static_assert(sizeof(struct vhost_user_mem_reg) == 40, "single memory region");
_Static_assert(sizeof(struct vhost_user_log) == 16, "log description");
_Static_assert(sizeof(struct vhost_user_iotlb) == 32, "iotlb");
_Static_assert(sizeof(struct vhost_user_config) == 12 + 256, "config space");
_Static_assert(sizeof(struct vhost_user_vring_area) == 24, "vring area");
_Static_assert(sizeof(struct vhost_user_inflight) == 24, "inflight");
_Static_assert(sizeof(struct vhost_user_shared) == 16, "shared object");
_Static_assert(sizeof(struct vhost_user_device_state) == 8, "device state");
_Static_assert(sizeof(union vhost_user_payload) == 272, "payload union");

/* Largest payload vhost_user_recv() accepts: a full config space access. */
#define VHOST_USER_PAYLOAD_MAX (VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE)

/* One message plus the fds that came with it (owned by the message). */
struct vhost_user_msg {
	struct vhost_user_header hdr;
	union vhost_user_payload payload;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nfds;
};

/* How long vhost_user_call() waits for a reply, and how long send/recv wait
 * for the rest of a message that has started on a non-blocking socket. */
#define VHOST_USER_TIMEOUT_MS 5000

/*
 * Read a device-state channel (SET_DEVICE_STATE_FD's pipe, vhost-user.rst
 * "Migrating back-end state"; the fd non-blocking) to its end into
 * buf[cap]: the bytes read, -EFBIG if it holds more than cap, -ETIMEDOUT if
 * the writer neither writes nor closes for VHOST_USER_TIMEOUT_MS, or
 * -errno.  Both ends use it: the back-end loading, the front-end saving.
 */
ssize_t vhost_user_state_read(int fd, uint8_t *buf, size_t cap);

/* Start a message: zeroed, version 1, request code, payload size. */
void vhost_user_msg_init(struct vhost_user_msg *msg, uint32_t request, uint32_t size);
/* Close the message's fds (those >= 0) and set nfds to 0. */
void vhost_user_close_fds(struct vhost_user_msg *msg);

/*
 * Send msg (header, hdr.size payload bytes, msg->fds as SCM_RIGHTS with the
 * first byte).  Retries EINTR and partial writes; on a non-blocking socket
 * waits up to VHOST_USER_TIMEOUT_MS for room.  The fds stay owned by the
 * caller.  Returns 0, -EMSGSIZE (payload or nfds too large), -EPIPE or
 * -ECONNRESET (peer gone), -ETIMEDOUT, or another -errno.
 */
int vhost_user_send(int sock, const struct vhost_user_msg *msg);

/*
 * Receive one message: the header with any fds (MSG_CMSG_CLOEXEC), then the
 * payload.  Checks framing only: version bits, known flags, and hdr.size <=
 * VHOST_USER_PAYLOAD_MAX; call vhost_user_validate() before use.  Returns 0;
 * -EAGAIN if a non-blocking socket has no message; -ECONNRESET on hangup
 * (also mid-message); -EPROTO (bad version/flags, unexpected control data);
 * -EMSGSIZE (payload too large, more than 8 fds or truncated control data,
 * MSG_CTRUNC); -ETIMEDOUT
 * (a message started but stalled); another -errno.  On any error the stream
 * is out of sync (close the connection) and every fd received is closed.
 */
int vhost_user_recv(int sock, struct vhost_user_msg *msg);

/*
 * Check a received message on the main (front-end -> back-end) channel:
 * from_frontend is a front-end request as a back-end sees it (no REPLY flag);
 * !from_frontend is a back-end reply as the front-end sees it (REPLY flag,
 * no NEED_REPLY).  Checks the version and flag bits, the exact payload size
 * of the request (or its reply, or a REPLY_ACK u64), the fd count, and the
 * in-payload lengths (memory table region count == fd count, config offset +
 * size, NOFD bit vs fd, u64 overflow of region ranges).  Pure: never closes
 * fds (call vhost_user_close_fds() on failure).  Returns 0, -EPROTO
 * (malformed), or -EOPNOTSUPP (request code unknown or not handled by this
 * codec: a well-framed message the caller may refuse and continue after).
 */
int vhost_user_validate(const struct vhost_user_msg *msg, bool from_frontend);

/* The same for the back-end channel (SET_BACKEND_REQ_FD): !from_frontend is
 * a back-end request, from_frontend the front-end's reply to it. */
int vhost_user_validate_backend_channel(const struct vhost_user_msg *msg, bool from_frontend);

/* True if the back-end answers this front-end request: NEED_REPLY is set,
 * or the request always has a reply (vhost-user: "Communication" and each
 * message's "reply payload"), e.g. GET_FEATURES, or SET_LOG_BASE with an fd
 * (LOG_SHMFD). */
bool vhost_user_expects_reply(const struct vhost_user_msg *msg);
/* True if the back-end must send a REPLY_ACK u64 for this request: NEED_REPLY
 * is set and the request has no reply body of its own. */
bool vhost_user_needs_ack(const struct vhost_user_msg *msg);

/* Reply to request with a u64 payload (REPLY flag set). */
int vhost_user_reply_u64(int sock, uint32_t request, uint64_t value);
/* REPLY_ACK: reply to a NEED_REPLY request; status 0 is success, anything
 * else failure (vhost-user: "VHOST_USER_PROTOCOL_F_REPLY_ACK"). */
int vhost_user_ack(int sock, uint32_t request, uint64_t status);

/*
 * Front-end helper (tests, bench, core setup path): send msg and, if the
 * request has a reply or NEED_REPLY is set, wait up to VHOST_USER_TIMEOUT_MS
 * for it, receive it into reply and validate it: same request code, REPLY
 * flag, a valid payload for that request.  For REPLY_ACK the caller reads
 * reply->payload.u64 (0 = success).  When there is no reply, reply->hdr is
 * zeroed.  Returns 0 or -errno (-EPROTO for a wrong reply, -ETIMEDOUT).
 * The reply's fds belong to the caller.
 */
int vhost_user_call(int sock, const struct vhost_user_msg *msg, struct vhost_user_msg *reply);

/* After vhost_user_call() returned -EPROTO: what is wrong with reply, in
 * one phrase ("the reply names request 3 (SET_OWNER), not GET_FEATURES"). */
void vhost_user_describe_bad_reply(const struct vhost_user_msg *msg,
				   const struct vhost_user_msg *reply, char *buf, size_t len);

/* "GET_FEATURES" etc. for logs; "UNKNOWN" for codes we do not know. */
const char *vhost_user_request_name(uint32_t request);
const char *vhost_user_backend_request_name(uint32_t request);

#endif
