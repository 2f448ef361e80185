/* SPDX-License-Identifier: MIT */
/*
 * virtio_net_rx_mmio: every receive buffer of receiveq0 points where the
 * device must not write: the IOAPIC page (MMIO), beyond RAM (64 GiB), and
 * straddling the end of the RAM range holding the guest.  Then the guest
 * sends an ARP request for `peer=`: the reply needs a buffer.  Accepted:
 * NEEDS_RESET, the buffer given back with nothing written (used length 0),
 * or no completion; a used length > 0 (the device claims it wrote there)
 * fails unless `lenient`.  The device then works after a reset.
 */
#include "virtio_net_hostile.h"

static uint64_t ram_end;

static void post_all(uint64_t addr)
{
	struct virtq *rx = &vn_nic.dev.vq[0];

	/* Take back what virtio_net_init posted: reset it and post ours. */
	for (unsigned i = 0; i < rx->size; i++)
		vn_desc(rx, i, addr, VIRTIO_NET_BUF_SIZE, VIRTQ_DESC_F_WRITE, 0);
}

static void attack_at(const char *what, uint64_t addr)
{
	struct virtq *rx = &vn_nic.dev.vq[0];
	uint32_t len = 0;
	enum vn_outcome o;

	/* The buffers posted at init are still on the ring: rewrite them in
	 * place before any frame arrives (nothing is sent to us yet). */
	post_all(addr);
	net_arp_request(&vn_stack, vn_peer);
	o = vn_wait(rx, &len);
	console_printf("%s: %s, used len %u (status %x)\n", what, vn_outcome_name(o), len,
		       virtio_status(&vn_nic.dev));
	test_check(o != VN_COMPLETED || len == 0 || vn_lenient, what,
		   "the device says it wrote %u bytes at %lx", len, addr);
}

static void mmio(const char *what) { attack_at(what, 0xfec00000ull); }
static void beyond(const char *what) { attack_at(what, 0x4000000000ull); }
static void straddle(const char *what) { attack_at(what, ram_end - VIRTIO_NET_BUF_SIZE / 2); }

int guest_main(const struct boot_info *info)
{
	vn_init(info, "virtio_net_rx_mmio");
	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 && info->mem[i].addr <= 0x100000 &&
		    0x100000 < info->mem[i].addr + info->mem[i].size)
			ram_end = info->mem[i].addr + info->mem[i].size;
	vn_attack("RX buffers in MMIO", mmio);
	vn_attack("RX buffers beyond RAM", beyond);
	if (ram_end && ram_end < 0xc0000000ull)
		vn_attack("RX buffers across the end of RAM", straddle);
	return 0;
}
