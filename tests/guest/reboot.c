/* SPDX-License-Identifier: MIT */
/*
 * reboot: a guest that reboots the machine and checks, after each boot,
 * that its disk still works and still holds what it wrote before (run with
 * `isola run --on-reset reboot`; the device servers must be the same
 * processes, which the host test checks).
 *
 * Sector 0 holds a marker {magic, boot number}.  Each boot reads it: no
 * marker means boot 1.  It checks that sectors 1..64 hold the pattern the
 * previous boot wrote (seeded with its boot number), writes the pattern of
 * this boot and the marker, FLUSHes, and then, until `reboots=` (default
 * 2) reboots have happened, pulses the reset line (i8042 0xFE); after the
 * last one it PASSes (status 1).  With an rng device present (`--rng`), each
 * boot also reads entropy from it.  Each boot also finds the last page of
 * RAM below 3 GiB empty (the VMM empties guest RAM on a reboot, as new
 * memory would be) and writes a marker there.  `wait_first`: boot 1 prints
 * `reboot: waiting` and waits for a byte on COM1 before it resets (the
 * host test kills a device server meanwhile).
 */
#include "virtio.h"

#define REBOOT_MAGIC 0x746f6f6265726c69ul /* "ilreboot" */
#define PATTERN_SECTORS 64
#define SEED_BASE 0x7eb0070000000000ul
#define I8042_CMD_PULSE_RESET 0xfe
#define COM1_LSR 0x3fd
#define UART_LSR_DR 0x01 /* a received byte is waiting */

struct marker {
	uint64_t magic;
	uint64_t boot;
};

static struct virtio_dev disk, rng;
static uint8_t *buf;

static int disk_io(int write, uint64_t sector, uint32_t count)
{
	int st = virtio_blk_rw(&disk.vq[0], write, sector, buf, count, 2, 0);

	return test_check(st == VIRTIO_BLK_S_OK, write ? "write" : "read", "sector %lu: %s", sector,
			  virtio_blk_status_name(st))
		   ? 0
		   : -1;
}

static void read_entropy(void)
{
	struct virtq_buf b = {(uint64_t)buf, 512, 1};
	long len;

	pattern_memset(buf, 512, 0);
	len = virtq_transfer(&rng.vq[0], &b, 1, 0, 5000000);
	test_check(len > 0 && pattern_check_zero(buf, (uint64_t)len) >= 0, "entropy after reboot",
		   "%ld bytes", len);
}

/* The last page of RAM below 3 GiB, where the next boot must find no marker. */
static volatile struct marker *ram_marker(const struct boot_info *info)
{
	uint64_t top = 0;

	for (unsigned i = 0; i < info->nr_mem; i++) {
		uint64_t end = info->mem[i].addr + info->mem[i].size;

		if (info->mem[i].type == 1 && end <= 0xc0000000ull && end > top)
			top = end;
	}
	return phys_ptr(top - 4096);
}

int guest_main(const struct boot_info *info)
{
	uint64_t reboots = cmdline_get_u64_default(info->cmdline, "reboots", 2), boot = 1;
	struct marker *marker;
	long bad;

	console_printf("isola reboot guest\n");
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	if (virtio_init(&disk, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH), 1, 64, 1))
		test_abort("virtio-blk init", "see above");
	buf = dma_alloc(PATTERN_SECTORS * VIRTIO_BLK_SECTOR, 4096);
	marker = (struct marker *)buf;

	if (disk_io(0, 0, 1))
		return 1;
	if (marker->magic == REBOOT_MAGIC) {
		uint64_t previous = marker->boot; /* buf is read over next */

		boot = previous + 1;
		if (disk_io(0, 1, PATTERN_SECTORS))
			return 1;
		bad = pattern_check(buf, PATTERN_SECTORS * VIRTIO_BLK_SECTOR, VIRTIO_BLK_SECTOR,
				    SEED_BASE + previous);
		test_check(bad < 0, "the previous boot's writes survived the reboot",
			   "first bad byte at +%ld", bad);
	}
	console_printf("reboot: boot %lu\n", boot);
	test_check(ram_marker(info)->magic != REBOOT_MAGIC, "RAM is empty after a reboot",
		   "boot %lu found the marker boot %lu left at 0x%lx", boot, ram_marker(info)->boot,
		   (uint64_t)ram_marker(info));
	ram_marker(info)->magic = REBOOT_MAGIC;
	ram_marker(info)->boot = boot;
	if (virtio_find(VIRTIO_ID_RNG, &rng, 1) == 1) {
		if (virtio_init(&rng, 0, 1, 16, 1))
			test_abort("virtio-rng init", "see above");
		read_entropy();
	}

	pattern_fill(buf, PATTERN_SECTORS * VIRTIO_BLK_SECTOR, VIRTIO_BLK_SECTOR, SEED_BASE + boot);
	if (disk_io(1, 1, PATTERN_SECTORS))
		return 1;
	pattern_memset(buf, VIRTIO_BLK_SECTOR, 0);
	marker->magic = REBOOT_MAGIC;
	marker->boot = boot;
	if (disk_io(1, 0, 1))
		return 1;
	test_check(virtio_blk_flush(&disk.vq[0]) == VIRTIO_BLK_S_OK, "flush", "failed");
	if (boot > reboots) {
		test_pass("%lu reboots, the disk kept every boot's writes", reboots);
		return 0;
	}
	if (boot == 1 && cmdline_has(info->cmdline, "wait_first")) {
		console_printf("reboot: waiting\n");
		while (!(io_in8(COM1_LSR) & UART_LSR_DR))
			delay_us(10000);
	}
	console_printf("reboot: rebooting\n");
	io_out8(ISOLA_PORT_I8042_CMD, I8042_CMD_PULSE_RESET);
	delay_us(100000);
	test_abort("reboot", "still running 100 ms after the reset");
}
