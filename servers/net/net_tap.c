// SPDX-License-Identifier: MIT
/*
 * isola-net's tap: opening /dev/net/tun and attaching to the tap (before
 * the sandbox), the offloads it may hand the guest (TUNSETOFFLOAD), which
 * queues of a multi-queue tap take frames (TUNSETQUEUE), and a tap that
 * was deleted under us.
 */
#define _GNU_SOURCE
#include "servers/net/net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/* TUNSETOFFLOAD from the driver's GUEST_* features: what the tap may hand
 * the guest (partial checksums, TSO/UFO super-frames). */
int net_set_offload(int fd, uint64_t features)
{
	unsigned long flags = 0;

	if (net_has_feature(features, VIRTIO_NET_F_GUEST_CSUM)) {
		flags |= TUN_F_CSUM;
		if (net_has_feature(features, VIRTIO_NET_F_GUEST_TSO4))
			flags |= TUN_F_TSO4;
		if (net_has_feature(features, VIRTIO_NET_F_GUEST_TSO6))
			flags |= TUN_F_TSO6;
		if (net_has_feature(features, VIRTIO_NET_F_GUEST_ECN) &&
		    (flags & (TUN_F_TSO4 | TUN_F_TSO6)))
			flags |= TUN_F_TSO_ECN;
		if (net_has_feature(features, VIRTIO_NET_F_GUEST_UFO))
			flags |= TUN_F_UFO;
	}
	if (ioctl(fd, TUNSETOFFLOAD, flags) == 0)
		return 0;
	/* Kernels without UFO towards the guest refuse TUN_F_UFO: without it,
	 * the tap segments UDP itself. */
	if (errno == EINVAL && (flags & TUN_F_UFO) &&
	    ioctl(fd, TUNSETOFFLOAD, flags & ~(unsigned long)TUN_F_UFO) == 0)
		return 0;
	return -errno;
}

static int net_tap_error(const struct net *net, int err, char *msg, size_t len)
{
	const char *name = net->tap_name;

	switch (err) {
	case ENOENT:
	case ENODEV:
		snprintf(msg, len,
			 "/dev/net/tun: %s: load the tun module (modprobe tun) or give the "
			 "sandbox /dev/net/tun",
			 strerror(err));
		break;
	case EBUSY:
		snprintf(msg, len,
			 "tap %s is in use by another process (a single-queue tap has one "
			 "user): stop it, or make another tap",
			 name);
		break;
	case EPERM:
	case EACCES:
		snprintf(msg, len,
			 "tap %s: %s: run as root (CAP_NET_ADMIN) or make the tap with "
			 "`ip tuntap add %s mode tap user UID`",
			 name, strerror(err), name);
		break;
	case EINVAL:
		if (net->pairs > 1)
			snprintf(msg, len,
				 "tap %s refused %u queues: make it multi-queue, `ip tuntap add %s "
				 "mode tap multi_queue`, or use --queues 1",
				 name, net->pairs, name);
		else
			snprintf(msg, len,
				 "tap %s refused to attach: it must be a tap (not a tun) made "
				 "without multi_queue for --queues 1",
				 name);
		break;
	default:
		snprintf(msg, len, "tap %s: %s", name, strerror(err));
	}
	return -err;
}

/*
 * TUNSETIFF, waiting out EBUSY for up to NET_TAP_BUSY_WAIT_MS: a
 * single-queue tap has one user, and the isola-net this one replaces (a
 * restart, a hand-over) may still be exiting, its fd not yet closed.
 * 0 or -errno.
 */
static int net_attach(int fd, struct ifreq *ifr)
{
	const struct timespec pause = {.tv_nsec = NET_TAP_BUSY_PAUSE_MS * 1000000l};

	for (unsigned waited = 0;; waited += NET_TAP_BUSY_PAUSE_MS) {
		if (ioctl(fd, TUNSETIFF, ifr) == 0)
			return 0;
		if (errno != EBUSY || waited >= NET_TAP_BUSY_WAIT_MS)
			return -errno;
		nanosleep(&pause, NULL);
	}
}

int net_open_tap(struct net *net, char *err, size_t errlen)
{
	for (unsigned k = 0; k < NET_MAX_PAIRS; k++)
		net->tap_fds[k] = -1;
	/* TUNSETIFF would create a missing tap (with CAP_NET_ADMIN): the
	 * contract is that isola-net only attaches to one that exists. */
	if (if_nametoindex(net->tap_name) == 0) {
		snprintf(err, errlen,
			 "tap %s does not exist: create it with `ip tuntap add %s mode tap%s` "
			 "in this network namespace",
			 net->tap_name, net->tap_name, net->pairs > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	for (unsigned k = 0; k < net->pairs; k++) {
		struct ifreq ifr;
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		int vnet_hdr = VIRTIO_NET_HDR_SIZE;

		if (fd < 0)
			return net_tap_error(net, errno == ENOENT ? ENOENT : errno, err, errlen);
		net->tap_fds[k] = fd;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", net->tap_name);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (net->pairs > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		int ret = net_attach(fd, &ifr);
		if (ret < 0)
			return net_tap_error(net, -ret, err, errlen);
		if (ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr) < 0) {
			snprintf(err, errlen, "tap %s: TUNSETVNETHDRSZ 12: %s", net->tap_name,
				 strerror(errno));
			return -errno;
		}
		/* Plain frames until a driver says what it takes. */
		ret = net_set_offload(fd, 0);
		if (ret < 0) {
			snprintf(err, errlen, "tap %s: TUNSETOFFLOAD: %s", net->tap_name,
				 strerror(-ret));
			return ret;
		}
		net->tap_attached[k] = true;
	}
	return 0;
}

/*
 * Tap queue k takes frames only while its receive ring runs and pair k is
 * active (§5.1.6.5.5: before VQ_PAIRS_SET only receiveq1 gets packets).  A
 * front-end that keeps the control queue itself (QEMU: it never configures
 * ring 2N) chooses pairs by enabling rings instead: then every running ring
 * counts.
 */
void net_tap_sync(struct net *net, bool ctrl)
{
	unsigned limit;

	if (net->pairs == 1)
		return; /* a single-queue tap cannot detach */
	pthread_mutex_lock(&net->tap_lock);
	limit = ctrl ? net->active_pairs : net->pairs;
	for (unsigned k = 0; k < net->pairs; k++) {
		bool want = k < limit && net->queues[2 * k].rx_started;
		struct ifreq ifr;

		if (want == net->tap_attached[k] || net->tap_fds[k] < 0)
			continue;
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = want ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
		if (ioctl(net->tap_fds[k], TUNSETQUEUE, &ifr) < 0)
			log_error("tap %s queue %u: %s: %s", net->tap_name, k,
				  want ? "attach" : "detach", strerror(errno));
		else
			net->tap_attached[k] = want;
	}
	pthread_mutex_unlock(&net->tap_lock);
}

/*
 * The tap was deleted (`ip link del`, or its namespace went away): tun
 * then answers every poll with POLLERR and every read and write with
 * EBADFD, for good, so the rings would spin.  One line, and the server
 * ends (main.c, through net->tap_gone) with a failure status: the core
 * restarts it, the restart cannot attach to a missing tap, and after the
 * restart policy's failed starts the device is given up (NEEDS_RESET,
 * docs/net.md).  A tap set down is not gone: its writes fail with EIO and
 * are counted (tx_tap_rejected).
 */
int net_tap_lost(struct net *net)
{
	if (!atomic_exchange(&net->tap_lost, true)) {
		log_error("tap %s is gone (deleted?); isola-net stops", net->tap_name);
		if (net->tap_gone)
			net->tap_gone(net);
	}
	return -ENODEV;
}
