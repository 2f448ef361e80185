/* SPDX-License-Identifier: MIT */
/*
 * virtio_chain_mmio: a read request whose data buffer is not RAM:
 * `target=` (default 0xfec00000, the IOAPIC), also as the header and as the
 * status byte.  The device must not DMA into MMIO or outside guest memory
 * (design.md: one checked GPA helper): NEEDS_RESET or a failed request.
 * tests/guest/hostile/cases.list also runs it with a target beyond RAM.
 */
#include "virtio_hostile.h"

static uint64_t target = 0xfec00000ull;

static enum vh_outcome data_at_target(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, target, 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome header_at_target(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, target, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

static enum vh_outcome status_at_target(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, (uint64_t)vh_buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, target, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

/* The buffer starts in RAM and runs past the end of its RAM range. */
static uint64_t ram_end;

static enum vh_outcome straddle_ram_end(void)
{
	vh_header(VIRTIO_BLK_T_IN, 0);
	vh_desc(0, (uint64_t)vh_hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	vh_desc(1, ram_end - 512, 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vh_desc(2, (uint64_t)vh_status, 1, VIRTQ_DESC_F_WRITE, 0);
	return vh_kick(0);
}

int guest_main(const struct boot_info *info)
{
	uint32_t ioapic_id;

	vh_init(info, "virtio_chain_mmio");
	for (unsigned i = 0; i < info->nr_mem; i++)
		if (info->mem[i].type == 1 && info->mem[i].addr <= (uint64_t)vh_buf &&
		    (uint64_t)vh_buf < info->mem[i].addr + info->mem[i].size)
			ram_end = info->mem[i].addr + info->mem[i].size;
	cmdline_get_u64(info->cmdline, "target", &target);
	console_printf("virtio_chain_mmio: target %lx\n", target);
	ioapic_id = ioapic_read(0);
	vh_attack("data buffer outside RAM refused", data_at_target);
	vh_attack("header outside RAM refused", header_at_target);
	vh_attack("status byte outside RAM refused", status_at_target);
	if (ram_end)
		vh_attack("buffer running past the end of RAM refused", straddle_ram_end);
	test_check(ioapic_read(0) == ioapic_id, "IOAPIC untouched", "ID register %x -> %x",
		   ioapic_id, ioapic_read(0));
	return 0;
}
