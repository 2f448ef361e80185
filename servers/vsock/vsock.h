/* SPDX-License-Identifier: MIT */
/*
 * isola-vsock's device: virtio-vsock (virtio 1.2 §5.10) through
 * lib/vhost_user_backend, with Firecracker's hybrid host side: the guest's
 * stream connections are joined to Unix stream sockets on the host
 * (docs/vsock.md).
 *
 * Rings: rx 0 (device -> guest), tx 1 (guest -> device), event 2 (§5.10.2).
 * One lock (struct vsock.lock) covers the connection table; each ring's
 * thread takes it for a whole round.  The rx ring's thread also owns the
 * host side: its queue_fd is an epoll fd with the --uds listener, every
 * connection's host socket (edge-triggered) and a wake eventfd the tx ring
 * signals when it left a reply to send while the rx ring was not
 * running (or broke).  The tx ring writes to host sockets (non-blocking)
 * and, once the rx ring runs, sends what a guest packet owes the guest on
 * it directly (v->rx_q, under the lock): no wake-up per packet.
 *
 * The packet logic (vsock_guest_packet, vsock_rx_next) works on headers and
 * iovecs, not on rings, so tests/unit/test_vsock.c drives it with plain
 * buffers and real Unix sockets.
 */
#ifndef ISOLA_SERVERS_VSOCK_VSOCK_H
#define ISOLA_SERVERS_VSOCK_VSOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "isola/virtio.h"
#include "lib/sandbox.h"
#include "lib/vhost_user_backend.h"

#define VSOCK_NUM_QUEUES 3

/* §5.10.4: the host's well-known CID; the guest's may not be 0, 1, 2 or
 * 0xffffffff, and its upper 32 bits are zero. */
#define VSOCK_CID_MIN 3
#define VSOCK_CID_MAX 0xfffffffeu

/* The queues, ops and struct vsock_hdr (§5.10.6): include/isola/virtio.h. */

/* The largest payload one guest packet may carry: Linux's
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE (a guest never sends more in one). */
#define VSOCK_MAX_PAYLOAD (64u * 1024)
/* Our receive buffer per connection (buf_alloc we advertise): what a
 * guest may send before the host socket takes it.  Linux's default. */
#define VSOCK_DEFAULT_BUF_ALLOC (256u * 1024)
#define VSOCK_MIN_BUF_ALLOC 4096u
#define VSOCK_MAX_BUF_ALLOC (16u * 1024 * 1024)
#define VSOCK_DEFAULT_MAX_CONNECTIONS 1024u
#define VSOCK_MAX_CONNECTIONS 65536u
/* "CONNECT 4294967295\n" is 19 bytes; a longer line is refused. */
#define VSOCK_CONNECT_LINE_MAX 32
/* A host client that sends no whole CONNECT line within this is closed;
 * so is one whose guest never answers the REQUEST. */
/* per poll of the host side, under v->lock: accepts, and rounds of 64
 * epoll events (more waits for the next poll, right after the rings) */
#define VSOCK_ACCEPTS_PER_ROUND 64
#define VSOCK_EVENT_ROUNDS 4
#define VSOCK_CONNECT_TIMEOUT_MS 5000
#define VSOCK_RESPONSE_TIMEOUT_MS 10000
/* RSTs to packets that match no connection, waiting for an rx buffer
 * (§5.10.6.1 "additional resources"): when full, the tx ring waits. */
#define VSOCK_RST_QUEUE 64
/* Host ports we give host-initiated connections: [2^30, 2^31), as
 * Firecracker's muxer allocates its local ports. */
#define VSOCK_LOCAL_PORT_FIRST 0x40000000u
#define VSOCK_LOCAL_PORT_END 0x80000000u

/*
 * What isola-vsock's seccomp filter allows beyond the vhost-user back-end's
 * own list (sandbox_lock, servers/vsock/README.md): socket + connect for a
 * guest's connection to PATH_P (inside the bind-mounted directory),
 * shutdown for half-closes, epoll for the rx ring's wait.  Host sockets are
 * read and written with recvmsg/sendmsg and accepted with accept4, all in
 * the base list.  In the header so tests/unit/test_seccomp.c installs the
 * very filter the server does.
 */
static const char *const vsock_sandbox_syscalls[] = {"connect", "shutdown", "epoll_wait",
						     "epoll_ctl"};
static const struct sandbox_allowlist vsock_sandbox_allowlist = {
    .syscalls = vsock_sandbox_syscalls,
    .nr_syscalls = sizeof(vsock_sandbox_syscalls) / sizeof(vsock_sandbox_syscalls[0]),
    /* socket(2) for AF_UNIX streams only: no AF_VSOCK (not confined by
     * the network namespace: it would reach other VMs' and the host's
     * vsock listeners), netlink, packet or crypto sockets */
    .stream_socket_family = AF_UNIX,
};

/* ---- pure checks (unit-tested) ------------------------------------------- */

/* What to do with a guest packet, from its header alone. */
enum vsock_verdict {
	VSOCK_ACCEPT,	 /* handle it */
	VSOCK_DROP,	 /* ignore (counted): not the guest's own address, or an RST */
	VSOCK_REPLY_RST, /* refuse with an RST to its source */
};

/*
 * §5.10.6: check a header from the tx ring.  payload_avail: the chain's
 * readable bytes after the header.  src_cid must be the guest's, dst_cid
 * the host, type STREAM, op known, len within payload_avail and
 * VSOCK_MAX_PAYLOAD, and nonzero only for RW.  *why: a short reason.
 */
enum vsock_verdict vsock_check_hdr(const struct vsock_hdr *h, uint64_t guest_cid,
				   uint32_t payload_avail, const char **why);

/* §5.10.6.3: how much the peer can take: buf_alloc - (tx_cnt - fwd_cnt),
 * 0 when its window shrank below what is in flight. */
uint32_t vsock_peer_free(uint32_t peer_buf_alloc, uint32_t tx_cnt, uint32_t peer_fwd_cnt);
/* A new fwd_cnt from the peer is believable: it moves forward (mod 2^32)
 * and not past what we sent (tx_cnt). */
bool vsock_fwd_cnt_valid(uint32_t old_fwd_cnt, uint32_t new_fwd_cnt, uint32_t tx_cnt);
/* The guest may send len more bytes: what it sent since the fwd_cnt we
 * last told it, plus len, fits our buf_alloc. */
bool vsock_credit_allows(uint32_t buf_alloc, uint32_t rx_cnt, uint32_t told_fwd_cnt, uint32_t len);

/* The host client's first line, "CONNECT <port>\n" (Firecracker's hybrid
 * vsock, parsed as Firecracker does: the verb in any case, blanks around
 * the words): buf holds n bytes read so far.  1 with *port and *line_len
 * (bytes to consume, '\n' included), 0 if the line is not whole yet,
 * -EINVAL if it is not a valid one (another verb, not a decimal u32, no
 * '\n' within VSOCK_CONNECT_LINE_MAX bytes). */
int vsock_parse_connect(const char *buf, size_t n, uint32_t *port, size_t *line_len);

/* ---- the device ---------------------------------------------------------- */

enum vsock_conn_state {
	VSOCK_CONN_FREE,
	VSOCK_CONN_HOST_LINE,	/* host client accepted, reading CONNECT */
	VSOCK_CONN_REQUESTED,	/* REQUEST sent (or to send) to the guest */
	VSOCK_CONN_ESTABLISHED, /* streams joined */
	VSOCK_CONN_RESETTING,	/* host side closed; an RST waits to go out */
};

/* Packets a connection owes the guest (bits of vsock_conn.pending). */
#define VSOCK_PEND_REQUEST (1u << 0)
#define VSOCK_PEND_RESPONSE (1u << 1)
#define VSOCK_PEND_CREDIT (1u << 2)
#define VSOCK_PEND_SHUTDOWN (1u << 3)
#define VSOCK_PEND_RST (1u << 4)

struct vsock_conn {
	enum vsock_conn_state state;
	uint32_t generation; /* epoll data: stale events of a reused slot */
	int fd;		     /* host socket, -1 none */
	uint32_t guest_port, host_port;
	bool host_initiated;
	uint64_t deadline_ms;	 /* HOST_LINE, REQUESTED: give up after */
	uint32_t pending;	 /* VSOCK_PEND_* */
	uint32_t shutdown_flags; /* what our SHUTDOWN says */
	bool queued;		 /* in the rx work list */
	bool hashed;
	uint32_t rx_prev, rx_next; /* the rx work list, index + 1, 0 end */
	bool readable;		   /* the host socket may have data (edge seen) */
	uint32_t ep_events;	   /* the epoll interest set (conn_watch) */
	bool host_eof;		   /* the host sends no more */
	bool shut_sent;		   /* our SHUTDOWN SEND went out */
	bool peer_shut_send;	   /* the guest sends no more */
	bool peer_shut_rcv;	   /* the guest receives no more */
	bool host_wr_shut;	   /* shutdown(SHUT_WR) done after peer_shut_send */
	/* host -> guest (§5.10.6.3): the guest's window */
	uint32_t tx_cnt;	 /* payload bytes we sent */
	uint32_t peer_buf_alloc; /* from its latest packet */
	uint32_t peer_fwd_cnt;
	/* guest -> host: our window */
	uint32_t rx_cnt;       /* payload bytes the guest sent */
	uint32_t fwd_cnt;      /* of those, written to the host socket */
	uint32_t told_fwd_cnt; /* fwd_cnt in our latest packet */
	uint8_t *buf;	       /* buf_alloc bytes while data waits for the host */
	uint32_t buf_head, buf_len;
	uint32_t hash_next; /* index + 1 in the hash chain, 0 end */
	uint32_t free_next;
};

struct vsock_counters {
	uint64_t connections, refused_full, bad_headers, credit_lies, dropped, rsts_sent;
	uint64_t rx_bytes, tx_bytes; /* payload to / from the guest */
};

struct vsock {
	/* options */
	uint64_t guest_cid;
	char uds_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char uds_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t max_connections;
	uint32_t buf_alloc;

	pthread_mutex_t lock;
	int listen_fd;
	int epoll_fd;
	int rx_wake_fd;	   /* in epoll: the tx ring left work for rx */
	int tx_wake_fd;	   /* tx ring's queue_fd: the RST queue has room */
	int event_wake_fd; /* event ring's queue_fd: a reset to post */

	struct vsock_conn *conns; /* [max_connections] */
	uint32_t nr_conns;
	uint32_t free_head; /* index + 1, 0 none */
	uint32_t *hash;	    /* [hash_size] index + 1 */
	uint32_t hash_size;
	/* connections owing the guest a packet, round robin (index + 1) */
	uint32_t rxq_first, rxq_last;
	uint64_t next_deadline_ms; /* earliest HOST_LINE/REQUESTED deadline, 0 none */
	/* the listener may still hold clients (it is edge-triggered): a
	 * round's cap of accepts was reached, or accept4 ran out of fds or
	 * memory; the next poll accepts again (soon, not at the next edge) */
	bool accept_again;
	bool accept_starved; /* out of fds or memory: retry after a pause */
	struct vsock_hdr rsts[VSOCK_RST_QUEUE];
	uint32_t rst_head, rst_len;
	bool tx_waiting; /* tx stopped on a full RST queue */
	bool full_logged;
	bool starved_logged; /* accept4 out of fds or memory, said once */
	uint32_t next_local_port;

	/* restart (docs/vsock.md "Restart"): the rings started since the
	 * front-end connected (bit per ring); a TRANSPORT_RESET waits for an
	 * event buffer */
	unsigned started_rings;
	bool reset_decided; /* this front-end's reset is decided (at most one) */
	bool reset_pending;

	/* the running rx ring, for the tx thread's vsock_rx_fill; NULL while
	 * stopped */
	struct vhost_user_backend_queue *rx_q;

	struct vsock_counters counters;
	struct virtq_segment *seg_rx, *seg_tx, *seg_ev;
	struct iovec *iov_rx, *iov_tx;
	struct vhost_user_backend_ops ops;
};

/* Defaults, then the options fill it; vsock_setup after parsing:
 * allocate the table (0 or -ENOMEM). */
void vsock_defaults(struct vsock *v);
int vsock_setup(struct vsock *v, char *err, size_t errlen);
/* Listen on uds_path (a stale socket there is replaced); 0 or -errno with
 * a sentence. */
int vsock_open(struct vsock *v, char *err, size_t errlen);
/* The rx ring's epoll set (listener, wake eventfd) and the eventfds, once
 * sandboxed; 0 or -errno with a sentence. */
int vsock_open_loop(struct vsock *v, char *err, size_t errlen);
unsigned vsock_fds(const struct vsock *v, int *fds, unsigned max);
void vsock_close_all(struct vsock *v);
void vsock_destroy(struct vsock *v);
void vsock_log_counters(const struct vsock *v, const char *when);
uint64_t vsock_now_ms(void);

/*
 * The tx path: one guest packet, header h (already copied out of guest
 * memory), payload iov[0..niov) holding h->len bytes.  Acts on the table
 * and the host sockets and records replies.  Returns 0; -EAGAIN if the
 * packet could not be taken now (a reply would not fit: the RST queue is
 * full) and should be retried later.  Call with v->lock held.
 */
int vsock_guest_packet(struct vsock *v, const struct vsock_hdr *h, const struct iovec *iov,
		       unsigned niov);
/*
 * The rx path: the next packet for the guest into hdr and, for RW, the
 * payload read from a host socket into iov (room bytes).  Returns 1 with
 * *payload_len set, 0 if nothing is owed.  Call with v->lock held.
 */
int vsock_rx_next(struct vsock *v, struct vsock_hdr *hdr, const struct iovec *iov, unsigned niov,
		  uint32_t room, uint32_t *payload_len);
/* Process the host side's events (epoll, non-blocking) and deadlines;
 * returns ms until the next deadline, or -1.  With v->lock held. */
int vsock_host_poll(struct vsock *v, uint64_t now_ms);
/* Whether something is owed to the guest. */
bool vsock_rx_pending(const struct vsock *v);

/* Lookup by (guest port, host port); NULL none.  For the tests. */
struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t guest_port, uint32_t host_port);

/* The back-end's ops (vsock_queue.c). */
void vsock_init_ops(struct vsock *v);

#endif
