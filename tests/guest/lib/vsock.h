/* SPDX-License-Identifier: MIT */
/*
 * A minimal virtio-vsock driver for the test guests (virtio 1.2 §5.10):
 * stream sockets only, polled, on the kit's virtio-pci driver (virtio.h).
 *
 * Queues (§5.10.2): rx = 0, tx = 1, event = 2.  Every RX buffer is one
 * descriptor holding the 44-byte header and up to VSOCK_RX_PAYLOAD bytes
 * (Linux's layout, with 16 KiB rather than 4 KiB of payload: on PVM every
 * packet costs emulated ring-0 work, so fewer, larger packets); every TX
 * packet is one descriptor, header then payload.
 * RX descriptor i is RX buffer i, TX descriptor i is TX slot i, so a used id
 * names its buffer.  Each connection has a receive ring of VSOCK_CONN_BUF
 * bytes, which is the buf_alloc it advertises (§5.10.6.3); fwd_cnt counts
 * what the application took out of it.  Copies are REP MOVSB (PVM: ring 0
 * is emulated, one string instruction is one exit).
 */
#ifndef GUEST_VSOCK_H
#define GUEST_VSOCK_H

#include "virtio.h"

/* The queues, ops and struct vsock_hdr (§5.10.6): include/isola/virtio.h,
 * through virtio.h. */

#define VSOCK_QUEUE_SIZE 64
#define VSOCK_RX_PAYLOAD 16384
#define VSOCK_RX_BUF (VSOCK_HDR_SIZE + VSOCK_RX_PAYLOAD)
#define VSOCK_TX_BUF (VSOCK_HDR_SIZE + 16384)
#define VSOCK_EVENTS 8
#define VSOCK_MAX_CONNS 48
#define VSOCK_CONN_BUF (64u * 1024) /* our buf_alloc per connection */
#define VSOCK_TIMEOUT_US 5000000ull

enum vsock_state { VS_FREE, VS_CONNECTING, VS_ESTABLISHED, VS_CLOSED };

struct vsock_conn {
	int state;
	uint32_t local_port, peer_port;
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the peer's credit, §5.10.6.3 */
	uint32_t tx_cnt;		       /* payload bytes we sent */
	uint32_t rx_cnt;		       /* payload bytes received */
	uint32_t fwd_cnt;		       /* bytes the application took */
	uint32_t fwd_sent;		       /* fwd_cnt last told the peer */
	uint8_t *rbuf;			       /* VSOCK_CONN_BUF ring */
	uint32_t rhead, rlen;
	uint32_t peer_shut; /* SHUTDOWN flags received */
	uint32_t our_shut;  /* SHUTDOWN flags sent */
	int reset;	    /* RST received (or transport reset) */
	int incoming;	    /* the peer connected to our listener */
	int accepted;	    /* handed to the application by vsock_accept */
	uint32_t fwd_lie;   /* hostile guests: added to every fwd_cnt we send */
	uint64_t user;	    /* the application's */
};

struct vsock {
	struct virtio_dev dev;
	uint64_t cid;
	uint8_t *rx_buf, *tx_buf;
	uint32_t *ev_buf;
	uint16_t tx_free[VSOCK_QUEUE_SIZE];
	uint16_t tx_nfree;
	struct vsock_conn conn[VSOCK_MAX_CONNS];
	uint32_t listen_port[8];
	unsigned nlisten;
	uint32_t ignore_port; /* REQUESTs to this port get no answer (half-open tests) */
	uint32_t next_port;
	unsigned transport_resets;
	uint64_t rx_pkts, tx_pkts, rx_bad, rst_sent, rst_rcvd;
	uint64_t host_violations; /* the device sent beyond our credit, etc. */
	/* The last packet received, for hostile guests judging a reply. */
	struct vsock_hdr last_rx;
	/* Optional hook for packets no connection claims (hostile guests):
	 * return 1 if handled. */
	int (*unclaimed)(struct vsock *vs, const struct vsock_hdr *h);
};

/* Find and set up the first virtio-vsock device: features (VERSION_1, and
 * F_STREAM if offered), three queues, guest_cid from config (§5.10.4), RX
 * and event buffers posted, DRIVER_OK.  0 or -1 (printed). */
int vsock_init(struct vsock *vs, int use_msix);
/* Reset the device and set it up again (after NEEDS_RESET); connections
 * are forgotten.  0 or -1. */
int vsock_reinit(struct vsock *vs);
/* Take everything the device used: TX slots back, RX packets handled, events. */
void vsock_poll(struct vsock *vs);
/* Poll for us microseconds. */
void vsock_poll_for(struct vsock *vs, uint64_t us);

/* Send one packet as is: header h (len not touched), then data_len bytes of
 * data, in one descriptor of desc_len bytes (0: 44 + data_len).  Waits
 * (bounded) for a TX slot.  0, or -1 if none came back in time. */
int vsock_tx_raw(struct vsock *vs, const struct vsock_hdr *h, const void *data, uint32_t data_len,
		 uint32_t desc_len);
/* Wait (bounded) until the device used every TX slot: 0 or -1. */
int vsock_tx_flush(struct vsock *vs, uint64_t timeout_us);

/* Header for a packet of connection c (credit fields filled in). */
void vsock_hdr_for(struct vsock *vs, const struct vsock_conn *c, struct vsock_hdr *h, uint16_t op);

int vsock_listen(struct vsock *vs, uint32_t port);
/* A newly established incoming connection (any listened port), or NULL. */
struct vsock_conn *vsock_accept(struct vsock *vs);
/* Connect to cid:port; NULL if refused (RST) or no answer in time. */
struct vsock_conn *vsock_connect(struct vsock *vs, uint64_t cid, uint32_t port);
/* Send up to len bytes as the peer's credit allows (0 if none now);
 * -1 if the connection is gone. */
long vsock_write(struct vsock *vs, struct vsock_conn *c, const void *data, uint32_t len);
/* Free credit the peer gave us now. */
uint32_t vsock_credit(const struct vsock_conn *c);
/* Take up to max bytes from the receive ring (credit goes back to the
 * peer when half the buffer was consumed).  Returns the count. */
uint32_t vsock_read(struct vsock *vs, struct vsock_conn *c, void *buf, uint32_t max);
/* Peek at contiguous received bytes: pointer and count (<= max). */
uint32_t vsock_peek(struct vsock_conn *c, uint8_t **p);
/* Consume n peeked bytes. */
void vsock_consume(struct vsock *vs, struct vsock_conn *c, uint32_t n);
void vsock_shutdown(struct vsock *vs, struct vsock_conn *c, uint32_t flags);
/* Send RST and free the slot. */
void vsock_rst(struct vsock *vs, struct vsock_conn *c);
/* Free a closed slot. */
void vsock_free(struct vsock_conn *c);
const char *vsock_op_name(uint16_t op);

void vsock_copy(void *dst, const void *src, uint64_t n);

#endif
