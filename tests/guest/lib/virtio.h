/* SPDX-License-Identifier: MIT */
/*
 * A small modern virtio-pci driver for test guests (virtio 1.2 §4.1, split
 * virtqueues §2.7).  Everything is found through PCI enumeration of bus 0 and
 * the vendor capabilities, so the same guest runs under isola and QEMU.
 * Ring memory and buffers come from dma_alloc() (RAM after the guest image,
 * identity-mapped, user-accessible: bulk fill/check can run in ring 3).
 *
 * Waits are bounded by the ACPI PM timer.  With MSI-X, each queue gets its
 * own vector on the BSP and the wait loop opens interrupt windows with a VM
 * exit (PVM only injects at an exit after STI); without, the used ring is
 * polled.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "kit.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_MODERN 0x1040 /* + device type, §4.1.2 */
/* Device types, status and feature bits: shared with isola (freestanding). */
#include "isola/virtio.h"
#define VIRTIO_BIT(n) (1ull << (n))

/* Common configuration structure offsets, §4.1.4.3. */
#define VIRTIO_COMMON_DFSELECT 0x00
#define VIRTIO_COMMON_DF 0x04
#define VIRTIO_COMMON_GFSELECT 0x08
#define VIRTIO_COMMON_GF 0x0c
#define VIRTIO_COMMON_MSIX 0x10
#define VIRTIO_COMMON_NUMQ 0x12
#define VIRTIO_COMMON_STATUS 0x14
#define VIRTIO_COMMON_CFGGEN 0x15
#define VIRTIO_COMMON_Q_SELECT 0x16
#define VIRTIO_COMMON_Q_SIZE 0x18
#define VIRTIO_COMMON_Q_MSIX 0x1a
#define VIRTIO_COMMON_Q_ENABLE 0x1c
#define VIRTIO_COMMON_Q_NOFF 0x1e
#define VIRTIO_COMMON_Q_DESC 0x20
#define VIRTIO_COMMON_Q_AVAIL 0x28
#define VIRTIO_COMMON_Q_USED 0x30
#define VIRTIO_NO_VECTOR 0xffff

/* Split virtqueue, §2.7.5-§2.7.8. */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* then avail_event */
};

#define VIRTQ_INDIRECT_MAX 16 /* descriptors per indirect table we build */
#define VIRTQ_MAX_SIZE 256
/* 17: virtio-net's 8 queue pairs and its control queue (§5.1.2). */
#define VIRTIO_MAX_QUEUES 17
#define VIRTIO_MAX_DEVICES 8

struct virtq {
	struct virtio_dev *dev;
	uint16_t index;
	uint16_t size;
	uint16_t msix_vector;   /* VIRTIO_NO_VECTOR: polled */
	uint8_t irq_vector;     /* CPU vector, 0 if polled */
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	struct virtq_desc *indirect; /* size tables of VIRTQ_INDIRECT_MAX */
	uint64_t notify_addr;
	uint16_t free_head, num_free;
	uint16_t avail_idx;  /* next avail index we publish */
	uint16_t last_used;  /* next used index we consume */
	uint16_t chain_len[VIRTQ_MAX_SIZE];
	volatile unsigned irqs;
};

struct virtio_dev {
	unsigned bus, slot, fn;
	uint16_t type;
	uint64_t bar[6];
	uint64_t common, notify, isr, device_cfg;
	uint32_t notify_multiplier, device_cfg_len;
	unsigned msix_cap, msix_vectors;
	uint64_t msix_table;
	uint64_t features; /* negotiated */
	unsigned num_queues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint8_t config_irq_vector;
	volatile unsigned config_irqs;
};

/* One buffer of a chain. */
struct virtq_buf {
	uint64_t addr;
	uint32_t len;
	int device_writes; /* VIRTQ_DESC_F_WRITE */
};

/* ---- memory for rings and buffers ---- */
/* Bound the pool by the RAM range holding the image (else 16 MiB). */
void dma_init(const struct boot_info *info);
/* Zeroed, aligned memory from the RAM after the image; aborts when out. */
void *dma_alloc(uint64_t size, uint64_t align);
/* Fast zero/fill (rep stos) for ring 0. */
void dma_zero(void *p, uint64_t size);

/* ---- discovery and setup ---- */
/* Find up to max modern virtio devices of type (0 = any) on bus 0, in
 * slot/function order; maps their BARs (assigning any left at 0) and walks
 * the capabilities.  Returns the number found. */
unsigned virtio_find(uint16_t type, struct virtio_dev *devs, unsigned max);
/* §3.1.1 steps 1-6: reset, ACKNOWLEDGE|DRIVER, features (VERSION_1 | wanted
 * & offered), FEATURES_OK (read back), then num_queues queues of at most
 * queue_size entries, MSI-X (use_msix) or polling, and DRIVER_OK.
 * 0 on success, negative on failure (printed). */
int virtio_init(struct virtio_dev *dev, uint64_t wanted_features, unsigned num_queues,
		unsigned queue_size, int use_msix);

/* Pieces of virtio_init, for guests that break the sequence on purpose. */
uint8_t virtio_status(struct virtio_dev *dev);
void virtio_set_status(struct virtio_dev *dev, uint8_t status);
/* Write 0 and wait (bounded) for it to read back 0; 0 on success. */
int virtio_reset(struct virtio_dev *dev);
uint64_t virtio_device_features(struct virtio_dev *dev);
/* Write the driver features and set FEATURES_OK; 0 if it sticks. */
int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted);
/* Allocate and program queue index with up to size entries (size is used
 * as is when exact); enables it.  0 on success. */
int virtio_setup_queue(struct virtio_dev *dev, unsigned index, unsigned size, int exact,
		       int use_msix);
/* The same without the final queue_enable write (queue left selected). */
int virtio_setup_queue_rings(struct virtio_dev *dev, unsigned index, unsigned size, int exact,
			     int use_msix);
/* Program the MSI-X table (vector 0: config, 1+q: queue q) and enable. */
void virtio_msix_enable(struct virtio_dev *dev);
int virtio_needs_reset(struct virtio_dev *dev);

/* Common config accessors (natural widths). */
uint8_t virtio_common_read8(struct virtio_dev *dev, unsigned off);
uint16_t virtio_common_read16(struct virtio_dev *dev, unsigned off);
uint32_t virtio_common_read32(struct virtio_dev *dev, unsigned off);
void virtio_common_write8(struct virtio_dev *dev, unsigned off, uint8_t v);
void virtio_common_write16(struct virtio_dev *dev, unsigned off, uint16_t v);
void virtio_common_write32(struct virtio_dev *dev, unsigned off, uint32_t v);

/* Device-specific configuration (§4.1.4.6), with the generation check. */
uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off);
uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off);
uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off);

/* ---- requests ---- */
/* Put a chain (indirect: one descriptor pointing at a table) on the avail
 * ring; returns the head index, or -1 if the ring is full. */
int virtq_submit(struct virtq *vq, const struct virtq_buf *bufs, unsigned n, int indirect);
/* Publish a head the caller built by hand in vq->desc (hostile guests). */
void virtq_publish(struct virtq *vq, uint16_t head);
void virtq_notify(struct virtq *vq);
/* Wait up to timeout_us for a used element; returns its id (and *len), or
 * -1 on timeout.  The chain's descriptors are freed. */
int virtq_wait_used(struct virtq *vq, uint32_t *len, uint64_t timeout_us);
/* The used ring can be seen before the interrupt that announces it: wait
 * (bounded) until the queue has taken at least min interrupts. */
unsigned virtq_wait_irqs(struct virtq *vq, unsigned min, uint64_t timeout_us);
/* Submit, notify, wait: the used length, or -1 on timeout/-2 if full. */
long virtq_transfer(struct virtq *vq, const struct virtq_buf *bufs, unsigned n, int indirect,
		    uint64_t timeout_us);
/* Number of used elements not yet consumed. */
uint16_t virtq_pending_used(struct virtq *vq);

/* ---- a stopwatch on the PM timer (wraps every ~4.6 s: sample often) ---- */
struct stopwatch {
	uint32_t last;
	uint64_t us;
};
void stopwatch_start(struct stopwatch *sw);
uint64_t stopwatch_us(struct stopwatch *sw);
/* Wait us microseconds, opening interrupt windows meanwhile. */
void virtio_delay_us(uint64_t us);

/* ---- virtio-blk, §5.2 ---- */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS 48

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk_discard {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* Result of a blk request: the status byte, or -1 (no completion in time),
 * -2 (ring full). */
#define VIRTIO_BLK_TIMEOUT_US 5000000ull
/* Read/write count sectors at sector to/from buf, split into segs data
 * descriptors (1..14), optionally through an indirect table. */
int virtio_blk_rw(struct virtq *vq, int write, uint64_t sector, void *buf, uint32_t count,
		  unsigned segs, int indirect);
/* The same in two halves, for one request in flight on each of several
 * queues: start (0, or -2 if it did not fit) and wait for the status. */
int virtio_blk_start(struct virtq *vq, int write, uint64_t sector, void *buf, uint32_t count,
		     unsigned segs, int indirect);
int virtio_blk_finish(struct virtq *vq);
int virtio_blk_flush(struct virtq *vq);
/* GET_ID into id[VIRTIO_BLK_ID_BYTES + 1] (NUL-terminated). */
int virtio_blk_get_id(struct virtq *vq, char *id);
/* DISCARD / WRITE_ZEROES one range. */
int virtio_blk_range(struct virtq *vq, uint32_t type, uint64_t sector, uint32_t count,
		     uint32_t flags);
const char *virtio_blk_status_name(int status);

/* ---- virtio-net, §5.1 (virtio_net.c) ----
 * Queue layout (§5.1.2): receiveq k = 2k, transmitq k = 2k+1, controlq =
 * 2 * max_virtqueue_pairs (2 without MQ).  Every RX and TX buffer is one
 * descriptor of VIRTIO_NET_BUF_SIZE: the 12-byte header then the frame
 * (VERSION_1 lets them share a descriptor, §5.1.6.6).  RX descriptor i
 * always points at RX buffer i, so a used RX id is re-posted as it is. */
#define VIRTIO_NET_MAX_PAIRS 8
#define VIRTIO_NET_QUEUE_SIZE 64
#define VIRTIO_NET_BUF_SIZE 2048 /* >= 1526 without MRG_RXBUF/TSO, §5.1.6.3.1 */
#define VIRTIO_NET_FRAME_MAX (VIRTIO_NET_BUF_SIZE - VIRTIO_NET_HDR_SIZE)
#define VIRTIO_NET_TIMEOUT_US 5000000ull
/* What the kit asks for by default; the device keeps what it offers. */
#define VIRTIO_NET_FEATURES_DEFAULT                                                                \
	(VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |                           \
	 VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_MQ) |                              \
	 VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |                      \
	 VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF))

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers; /* VERSION_1: always present, §5.1.6.1 */
};

struct virtio_net {
	struct virtio_dev dev;
	uint8_t mac[6];
	uint16_t link_status;  /* config status (LINK_UP) if STATUS, else LINK_UP */
	uint16_t max_pairs;    /* config max_virtqueue_pairs if MQ, else 1 */
	uint16_t mtu;          /* config mtu if MTU, else 1500 */
	unsigned pairs;        /* queue pairs set up */
	unsigned active_pairs; /* pairs the device may use (VQ_PAIRS_SET) */
	struct virtq *ctrl;    /* NULL without CTRL_VQ */
	uint8_t *rx_buf[VIRTIO_NET_MAX_PAIRS]; /* queue size buffers each */
	uint8_t *tx_buf[VIRTIO_NET_MAX_PAIRS];
	uint16_t tx_free[VIRTIO_NET_MAX_PAIRS][VIRTQ_MAX_SIZE];
	uint16_t tx_nfree[VIRTIO_NET_MAX_PAIRS];
	int tx_open[VIRTIO_NET_MAX_PAIRS];     /* slot taken by tx_begin, -1 none */
	int rx_open[VIRTIO_NET_MAX_PAIRS];     /* RX id handed out by recv, -1 none */
	uint8_t *ctrl_buf;                     /* header, data, ack */
	uint64_t rx_frames[VIRTIO_NET_MAX_PAIRS], tx_frames[VIRTIO_NET_MAX_PAIRS];
	uint64_t rx_bad; /* used entries we could not take: bad id, length, num_buffers */
};

/* Reset and set up the first virtio-net device found by virtio_find():
 * features (VERSION_1 | wanted & offered), config (MAC, status, pairs,
 * MTU), `pairs` queue pairs (at most max_virtqueue_pairs) and the control
 * queue if CTRL_VQ, RX buffers posted, DRIVER_OK.  0 or -1 (printed). */
int virtio_net_init(struct virtio_net *net, uint64_t wanted, unsigned pairs, int use_msix);
/* Frame area of a free TX buffer of this pair (waits, bounded, for one),
 * or NULL; then virtio_net_tx_commit() sends len bytes of it. */
uint8_t *virtio_net_tx_begin(struct virtio_net *net, unsigned pair);
int virtio_net_tx_commit(struct virtio_net *net, unsigned pair, uint32_t len);
/* Copy and send a frame (len <= VIRTIO_NET_FRAME_MAX). 0 or -1. */
int virtio_net_send(struct virtio_net *net, unsigned pair, const void *frame, uint32_t len);
/* Take the next received frame of this pair: 1 (frame, len set; give the
 * buffer back with virtio_net_rx_release), 0 if none. */
int virtio_net_recv(struct virtio_net *net, unsigned pair, uint8_t **frame, uint32_t *len);
void virtio_net_rx_release(struct virtio_net *net, unsigned pair);
/* Wait (bounded) until the device has used every TX buffer we sent, so a
 * guest that exits next loses no frame. 0, or -1 on timeout. */
int virtio_net_tx_flush(struct virtio_net *net, uint64_t timeout_us);
/* Control command (§5.1.6.5): header, data (len bytes, may be 0), ack.
 * The ack (VIRTIO_NET_OK/ERR), or -1 (no completion or NEEDS_RESET). */
int virtio_net_ctrl(struct virtio_net *net, uint8_t class, uint8_t cmd, const void *data,
		    uint32_t len);
int virtio_net_set_pairs(struct virtio_net *net, uint16_t pairs);
int virtio_net_set_mac(struct virtio_net *net, const uint8_t mac[6]);
int virtio_net_set_promisc(struct virtio_net *net, int on);
/* Index of the control queue for this device (§5.1.2). */
unsigned virtio_net_ctrl_index(const struct virtio_net *net);

/* ---- disk patterns (pattern.c), computed in ring 3 ----
 * The 64-bit little-endian word at disk byte offset o (a multiple of 8) is
 * ((o / 8) + 1) * 0x9e3779b97f4a7c15 ^ seed; tests/system/virtio_guests.sh
 * checks images with the same formula. */
uint64_t pattern_word(uint64_t disk_offset, uint64_t seed);
void pattern_fill(void *buf, uint64_t bytes, uint64_t disk_offset, uint64_t seed);
/* -1 if buf holds the pattern (or zeroes, seed ignored), else the offset
 * of the first bad byte in buf. */
long pattern_check(const void *buf, uint64_t bytes, uint64_t disk_offset, uint64_t seed);
long pattern_check_zero(const void *buf, uint64_t bytes);
/* Fill with a byte value (ring 3). */
void pattern_memset(void *buf, uint64_t bytes, uint8_t value);

#endif
