/* SPDX-License-Identifier: MIT */
/*
 * Virtio numbers every part of isola shares: device types, status bits and
 * the reserved feature bits (virtio 1.2 §5, §2.1, §6), and the device-type
 * feature bits more than one part needs.  Freestanding (stdint.h only):
 * the core, devices, servers, benchmarks and the test guests' kit all use it.
 */
#ifndef ISOLA_VIRTIO_H
#define ISOLA_VIRTIO_H
#include <stdint.h>

/* Device types, virtio 1.2 §5. */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS 26

/* Device status, virtio 1.2 §2.1. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Reserved feature bits, virtio 1.2 §6. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34
#define VIRTIO_F_IN_ORDER 35
#define VIRTIO_F_ORDER_PLATFORM 36
#define VIRTIO_F_SR_IOV 37
#define VIRTIO_F_NOTIFICATION_DATA 38
#define VIRTIO_F_NOTIF_CONFIG_DATA 39
#define VIRTIO_F_RING_RESET 40

/* Block device feature bits, virtio 1.2 §5.2.3. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Network device feature bits, virtio 1.2 §5.1.3. */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_CTRL_VLAN 19
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23

/* struct virtio_net_config, virtio 1.2 §5.1.4: byte offsets and sizes. */
#define VIRTIO_NET_CONFIG_MAC 0	      /* u8[6] */
#define VIRTIO_NET_CONFIG_STATUS 6    /* le16 */
#define VIRTIO_NET_CONFIG_MAX_PAIRS 8 /* le16 max_virtqueue_pairs */
#define VIRTIO_NET_CONFIG_MTU 10      /* le16 */
#define VIRTIO_NET_CONFIG_SIZE 12     /* through mtu */
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* struct virtio_net_hdr, §5.1.6: 12 bytes with num_buffers, which a
 * VERSION_1 device always has (§5.1.6.1). */
#define VIRTIO_NET_HDR_SIZE 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Control queue, §5.1.6.5: class, command; ack is one byte after. */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

/* virtio-fs, §5.11: struct virtio_fs_config (§5.11.4) is u8 tag[36] (UTF-8,
 * NUL-padded, not NUL-terminated when 36 bytes long) and le32
 * num_request_queues; notify_buf_size follows only with
 * VIRTIO_FS_F_NOTIFICATION, which isola does not offer.  Queue 0 is the
 * high-priority queue, 1.. the request queues (§5.11.2). */
#define VIRTIO_FS_TAG_SIZE 36
#define VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES 36
#define VIRTIO_FS_CONFIG_SIZE 40
#define VIRTIO_FS_F_NOTIFICATION 0

/* virtio-vsock, §5.10: the queues (§5.10.2), feature bits (§5.10.3), the
 * host's well-known CID (§5.10.4), and the packet header every queue
 * carries (§5.10.6), little-endian like the x86 host and guests. */
#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2
#define VSOCK_F_STREAM 0
#define VSOCK_F_SEQPACKET 1
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_TYPE_SEQPACKET 2
#define VSOCK_OP_INVALID 0
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RCV 1	      /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2	      /* the sender will send no more */
#define VSOCK_EVENT_TRANSPORT_RESET 0 /* §5.10.6.7 */

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
#define VSOCK_HDR_SIZE 44
_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_SIZE, "virtio_vsock_hdr is 44 bytes");

#endif
