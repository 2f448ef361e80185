/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the hostile virtio-net guests (virtio_net_*.c): set up the
 * first virtio-net device with the kit's driver (polled), hand-build broken
 * chains on its queues, classify what the device did, and prove afterwards
 * that it works again after a reset: it resolves `peer=` by ARP and pings it
 * once (the Linux side of the tap in tests/system/net_guests.sh answers).
 *
 * Accepted per attack (design.md "Processes and trust"): NEEDS_RESET, the
 * frame or command refused (TX: the buffer given back, nothing else to see
 * from here; control: ack ERR; RX: the buffer given back with nothing
 * written), or no completion within the bound.  An RX buffer outside RAM
 * reported as filled, or a bad control command acked OK, fails unless
 * `lenient` (the QEMU reference run).  PASS = status 1.
 * Header-only: every .c here becomes a guest.
 */
#ifndef GUEST_VIRTIO_NET_HOSTILE_H
#define GUEST_VIRTIO_NET_HOSTILE_H

#include "hostile.h"
#include "net.h"

#define VN_WAIT_US 2000000ull

enum vn_outcome { VN_COMPLETED, VN_NEEDS_RESET, VN_NO_COMPLETION };

static struct virtio_net vn_nic;
static struct net_stack vn_stack;
static uint32_t vn_ip, vn_peer;
static int vn_lenient;

static inline const char *vn_outcome_name(enum vn_outcome o)
{
	static const char *const names[] = {"completed", "device needs reset", "no completion"};
	return names[o];
}

static inline void vn_init(const struct boot_info *info, const char *name)
{
	console_printf("isola hostile guest %s\n", name);
	dma_init(info);
	vn_lenient = cmdline_has(info->cmdline, "lenient");
	vn_ip = net_cmdline_ip(info->cmdline, "ip", 0x0a00020f);
	vn_peer = net_cmdline_ip(info->cmdline, "peer", 0x0a000202);
	if (virtio_find(VIRTIO_ID_NET, &vn_nic.dev, 1) != 1)
		test_abort("virtio-net device", "none on bus 0");
}

/* A working device: one polled pair, the control queue if offered. */
static inline void vn_start(void)
{
	if (virtio_net_init(&vn_nic, VIRTIO_NET_FEATURES_DEFAULT, 1, 0))
		test_abort("virtio-net init", "see above");
	net_init(&vn_stack, &vn_nic, vn_ip);
}

/* Wait for a used element on vq (consumed: *len) or NEEDS_RESET. */
static inline enum vn_outcome vn_wait(struct virtq *vq, uint32_t *len)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	for (;;) {
		if (virtio_needs_reset(&vn_nic.dev))
			return VN_NEEDS_RESET;
		if (virtq_pending_used(vq)) {
			if (len)
				*len = vq->used->ring[vq->last_used % vq->size].len;
			vq->last_used++;
			return VN_COMPLETED;
		}
		if (stopwatch_us(&sw) >= VN_WAIT_US)
			return VN_NO_COMPLETION;
	}
}

static inline void vn_desc(struct virtq *vq, unsigned i, uint64_t addr, uint32_t len,
			   uint16_t flags, uint16_t next)
{
	vq->desc[i].addr = addr;
	vq->desc[i].len = len;
	vq->desc[i].flags = flags;
	vq->desc[i].next = next;
}

/* Reset, set up again, ARP and one ping: the device and its server live. */
static inline void vn_recover(const char *after)
{
	long rtt;

	if (!test_check(virtio_reset(&vn_nic.dev) == 0, "reset completes", "after %s: status %x",
			after, virtio_status(&vn_nic.dev)))
		test_abort("device", "stuck after %s", after);
	vn_start();
	rtt = net_ping(&vn_stack, vn_peer, 0x7a7a, 1, 32, VIRTIO_NET_TIMEOUT_US);
	test_check(rtt >= 0 && !virtio_needs_reset(&vn_nic.dev), "device works again",
		   "after %s: no ping reply, status %x", after, virtio_status(&vn_nic.dev));
}

/* Run one attack on a fresh device: fn builds, kicks and judges (its own
 * test_check); then recover. */
static inline void vn_attack(const char *what, void (*fn)(const char *what))
{
	vn_start();
	fn(what);
	vn_recover(what);
}

#endif
