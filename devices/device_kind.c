// SPDX-License-Identifier: MIT
#include "devices/device_kind.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "isola/virtio.h"
#include "devices/virtio_pci.h"
#include "lib/log.h"

/* PCI class codes (PCI Code and ID Assignment): mass storage "other", and
 * "unassigned class" for a device without one. */
#define PCI_CLASS_STORAGE_OTHER 0x0180
#define PCI_CLASS_OTHER 0xff00
#define PCI_CLASS_NETWORK_ETHERNET 0x0200
#define PCI_CLASS_COMMUNICATION_OTHER 0x0780

/* virtio 1.2 §5.10.4: struct virtio_vsock_config { le64 guest_cid; } */
#define VSOCK_CONFIG_SIZE 8
/* §5.10.2: rx, tx and event, always three */
#define VSOCK_QUEUES 3

/* virtio 1.2 §5.2.6.2: without VIRTIO_BLK_F_MQ the driver uses one queue,
 * whatever GET_QUEUE_NUM said. */
static int blk_fixup(const struct device_kind *kind, struct device_fixup *f, char *err,
		     size_t errlen)
{
	(void)kind;
	(void)err;
	(void)errlen;
	if (!(f->backend_features & (1ull << VIRTIO_BLK_F_MQ)))
		f->num_queues = 1;
	return 0;
}

#define BIT(n) (1ull << (n))

/* Features that need the control queue (virtio 1.2 §5.1.3.1). */
#define NET_CTRL_FEATURES                                                                          \
	(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX) | BIT(VIRTIO_NET_F_MQ) |            \
	 BIT(VIRTIO_NET_F_CTRL_MAC_ADDR))

/* What the front-end passes on from a back-end: the features whose config
 * fields (through mtu, 12 bytes) and header (12 bytes) isola knows.  A
 * back-end's other bits (DPDK offers GSO, IN_ORDER, ...; RSS or
 * HASH_REPORT would change the config and the header) are not offered. */
#define NET_KNOWN_FEATURES                                                                         \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_EVENT_IDX) |         \
	 BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MTU) |           \
	 BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |     \
	 BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_GUEST_UFO) | BIT(VIRTIO_NET_F_HOST_TSO4) | \
	 BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN) | BIT(VIRTIO_NET_F_HOST_UFO) |   \
	 BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_STATUS) | NET_CTRL_FEATURES)

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Clear `bits` unless every one of `needs` is set. */
static uint64_t net_requires(uint64_t f, uint64_t bits, uint64_t needs)
{
	return (f & needs) == needs ? f : f & ~bits;
}

/* §5.1.3.1: a device offering X must offer what X depends on; a back-end
 * that breaks a rule loses X rather than the guest seeing the lie. */
static uint64_t net_feature_dependencies(uint64_t f)
{
	f = net_requires(f,
			 BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
			     BIT(VIRTIO_NET_F_GUEST_UFO),
			 BIT(VIRTIO_NET_F_GUEST_CSUM));
	if (!(f & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6))))
		f &= ~BIT(VIRTIO_NET_F_GUEST_ECN);
	f = net_requires(f,
			 BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
			     BIT(VIRTIO_NET_F_HOST_UFO),
			 BIT(VIRTIO_NET_F_CSUM));
	if (!(f & (BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6))))
		f &= ~BIT(VIRTIO_NET_F_HOST_ECN);
	return net_requires(f, NET_CTRL_FEATURES, BIT(VIRTIO_NET_F_CTRL_VQ));
}

/*
 * virtio-net's config is the front-end's (docs/net.md "Queues and config"):
 * the core put the MAC and the MTU in; the link is always up, so it stays
 * up while a back-end restarts.  The queue layout is §5.1.2's: receiveq k
 * = 2k, transmitq k = 2k+1, controlq 2N.
 *
 * Who serves the control queue is decided by who started the back-end,
 * not guessed from it: isola's own isola-net serves it and counts it
 * (GET_QUEUE_NUM = 2N+1 rings); an external back-end (--vhost-user-net) is
 * read as QEMU reads one -- GET_QUEUE_NUM is its queue pairs (DPDK's
 * net_vhost says 128) -- and gets one pair and no control queue, since no
 * one would answer the driver's commands (QEMU answers them itself).
 */
static int net_fixup(const struct device_kind *kind, struct device_fixup *f, char *err,
		     size_t errlen)
{
	uint16_t mtu = (uint16_t)(f->config[VIRTIO_NET_CONFIG_MTU] |
				  f->config[VIRTIO_NET_CONFIG_MTU + 1] << 8);
	uint16_t pairs = 1;

	(void)kind;
	if (f->config_size < VIRTIO_NET_CONFIG_SIZE)
		return error_text(err, errlen, -EINVAL, "the net config is too small");
	f->device_features &= NET_KNOWN_FEATURES;
	if (f->external_backend) {
		f->device_features &= ~NET_CTRL_FEATURES;
	} else {
		if (!(f->backend_features & BIT(VIRTIO_NET_F_CTRL_VQ)) || !(f->num_queues & 1) ||
		    f->num_queues < 3)
			return error_text(err, errlen, -EPROTO,
					  "isola-net serves %u rings without a control queue "
					  "(2N+1 with VIRTIO_NET_F_CTRL_VQ expected)",
					  f->num_queues);
		pairs = (uint16_t)(f->num_queues / 2);
		if (pairs > (VIRTIO_PCI_MAX_QUEUES - 1) / 2)
			return error_text(err, errlen, -EPROTO,
					  "isola-net serves %u queue pairs; at most %d fit", pairs,
					  (VIRTIO_PCI_MAX_QUEUES - 1) / 2);
		if (pairs > 1 && !(f->backend_features & BIT(VIRTIO_NET_F_MQ)))
			return error_text(err, errlen, -EPROTO,
					  "the back-end serves %u queue pairs but does not offer "
					  "VIRTIO_NET_F_MQ",
					  pairs);
	}
	if (pairs == 1)
		f->device_features &= ~BIT(VIRTIO_NET_F_MQ);
	f->num_queues = (uint16_t)(2 * pairs + (f->external_backend ? 0 : 1));
	f->device_features |= BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS);
	if (mtu)
		f->device_features |= BIT(VIRTIO_NET_F_MTU);
	else
		f->device_features &= ~BIT(VIRTIO_NET_F_MTU);
	f->device_features = net_feature_dependencies(f->device_features);
	put_le16(f->config + VIRTIO_NET_CONFIG_STATUS, VIRTIO_NET_S_LINK_UP);
	put_le16(f->config + VIRTIO_NET_CONFIG_MAX_PAIRS, pairs);
	return 0;
}

/*
 * virtio-vsock (docs/vsock.md; docs/api.md "PUT /vsock"): the guest's CID is the front-end's
 * (the core wrote the user's into the config), so a back-end cannot give
 * the guest another one.  Its rings are §5.10.2's three; a back-end that
 * counts fewer cannot serve this device.
 */
static int vsock_fixup(const struct device_kind *kind, struct device_fixup *f, char *err,
		       size_t errlen)
{
	(void)kind;
	if (f->config_size < VSOCK_CONFIG_SIZE)
		return error_text(err, errlen, -EINVAL, "the vsock config is too small");
	if (f->num_queues < VSOCK_QUEUES)
		return error_text(err, errlen, -EPROTO,
				  "the back-end serves %u rings; virtio-vsock has %d (rx, tx, "
				  "event: virtio 1.2 §5.10.2)",
				  f->num_queues, VSOCK_QUEUES);
	f->num_queues = VSOCK_QUEUES;
	/* of the device-type bits (0..23, virtio 1.2 §6), only stream
	 * sockets: isola-vsock implements nothing else, and a back-end must
	 * not offer the guest SEQPACKET or bits isola does not know */
	f->device_features &= ~((1ull << 24) - 1) | BIT(VSOCK_F_STREAM);
	return 0;
}

/*
 * virtio-fs (virtio 1.2 §5.11; docs/fs.md): the config is the front-end's
 * (the core wrote the user's tag and the request-queue count, §5.11.4:
 * u8 tag[36], le32 num_request_queues), so a back-end cannot rename the
 * share.  The rings are §5.11.2's: queue 0 the high-priority queue, then
 * num_request_queues request queues; a back-end that counts fewer cannot
 * serve them, one that counts more (virtiofsd's GET_QUEUE_NUM is its
 * maximum) is given what the config says.  Of the device-type bits, none:
 * VIRTIO_FS_F_NOTIFICATION (bit 0) would need a notification queue and
 * notify_buf_size, which isola does not expose; of the rest only the
 * transport bits isola knows (Debian's virtiofsd also offers
 * NOTIFY_ON_EMPTY, a legacy bit, and vhost's LOG_ALL, bit 26).  No
 * shared-memory region (the DAX window, §5.11.5) either: the guest's page
 * cache is used.
 */
#define FS_KNOWN_FEATURES                                                                          \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_EVENT_IDX))

static int fs_fixup(const struct device_kind *kind, struct device_fixup *f, char *err,
		    size_t errlen)
{
	uint32_t requests;

	(void)kind;
	if (f->config_size < VIRTIO_FS_CONFIG_SIZE)
		return error_text(err, errlen, -EINVAL, "the virtio-fs config is too small");
	requests = (uint32_t)f->config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] |
		   (uint32_t)f->config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES + 1] << 8 |
		   (uint32_t)f->config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES + 2] << 16 |
		   (uint32_t)f->config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES + 3] << 24;
	if (requests == 0 || requests > VIRTIO_PCI_MAX_QUEUES - 1)
		return error_text(err, errlen, -EINVAL,
				  "virtio-fs: %u request queues asked for (1..%d)", requests,
				  VIRTIO_PCI_MAX_QUEUES - 1);
	if (f->num_queues < 1 + requests)
		return error_text(err, errlen, -EPROTO,
				  "the back-end serves %u rings; virtio-fs with %u request "
				  "queue(s) needs %u (the high-priority queue first: virtio 1.2 "
				  "§5.11.2)",
				  f->num_queues, requests, 1 + requests);
	f->num_queues = (uint16_t)(1 + requests);
	f->device_features &= FS_KNOWN_FEATURES;
	return 0;
}

const struct device_kind device_kinds[] = {
    {
	.name = "blk",
	.virtio_id = VIRTIO_ID_BLOCK,
	.pci_class = PCI_CLASS_STORAGE_OTHER,
	.options = {{"--image", true},
		    {"--readonly", false},
		    {"--id", true},
		    {"--queues", true},
		    {"--poll-us", true},
		    {"--rate", true}},
	/* struct virtio_blk_config through write_zeroes_may_unmap, §5.2.4 */
	.config_size = 60,
	.config_owner = DEVICE_CONFIG_BACKEND,
	.fixup = blk_fixup,
	.restore_override_option = "--image",
    },
    {
	.name = "rng",
	.virtio_id = VIRTIO_ID_RNG,
	.pci_class = PCI_CLASS_OTHER,
	.options = {{"--rate", true}},
	.config_size = 0, /* §5.4.4: no config */
	.config_owner = DEVICE_CONFIG_NONE,
    },
    {
	.name = "net",
	.virtio_id = VIRTIO_ID_NET,
	.pci_class = PCI_CLASS_NETWORK_ETHERNET,
	.options = {{"--tap", true},
		    {"--queues", true},
		    {"--mac", true},
		    {"--mtu", true},
		    {"--no-offloads", false},
		    {"--rx-rate", true},
		    {"--tx-rate", true}},
	/* struct virtio_net_config through mtu, §5.1.4 */
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.config_owner = DEVICE_CONFIG_FRONTEND,
	.fixup = net_fixup,
	.restore_override_option = "--tap",
    },
    {
	.name = "vsock",
	.virtio_id = VIRTIO_ID_VSOCK,
	.pci_class = PCI_CLASS_COMMUNICATION_OTHER, /* as QEMU's vhost-vsock-pci */
	.options = {{"--cid", true}, {"--uds", true}},
	.config_size = VSOCK_CONFIG_SIZE,
	.config_owner = DEVICE_CONFIG_FRONTEND,
	.fixup = vsock_fixup,
	.restore_override_option = "--uds",
    },
    {
	/* isola-fs is a launcher: it starts Debian's virtiofsd on the
	 * share and hands the core its connected socket (servers/fs/) */
	.name = "fs",
	.virtio_id = VIRTIO_ID_FS,
	.pci_class = PCI_CLASS_STORAGE_OTHER, /* as QEMU's vhost-user-fs-pci */
	.options = {{"--dir", true}, {"--cache", true}, {"--sandbox", true}},
	.config_size = VIRTIO_FS_CONFIG_SIZE,
	.config_owner = DEVICE_CONFIG_FRONTEND,
	.fixup = fs_fixup,
	.hands_over_socket = true,
    },
};

const unsigned device_kinds_count = sizeof(device_kinds) / sizeof(device_kinds[0]);

const struct device_kind *device_kind_by_name(const char *name)
{
	for (unsigned i = 0; name && i < device_kinds_count; i++)
		if (!strcmp(device_kinds[i].name, name))
			return &device_kinds[i];
	return NULL;
}

const struct device_kind *device_kind_by_virtio_id(uint16_t virtio_id)
{
	for (unsigned i = 0; i < device_kinds_count; i++)
		if (device_kinds[i].virtio_id == virtio_id)
			return &device_kinds[i];
	return NULL;
}

const struct device_kind_option *device_kind_option(const struct device_kind *kind,
						    const char *option)
{
	for (unsigned i = 0; kind && option && i < DEVICE_KIND_MAX_OPTIONS && kind->options[i].name;
	     i++)
		if (!strcmp(kind->options[i].name, option))
			return &kind->options[i];
	return NULL;
}
