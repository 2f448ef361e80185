/* SPDX-License-Identifier: MIT */
/*
 * multi_disk: `disks=N` virtio-blk devices at once (default 4, at most
 * 31: every PCI slot but the host bridge's).  Each disk's GET_ID must be
 * one of `ids=A,B,...` (all different); each gets its own pattern seed
 * (from its id) written at the same sectors on every disk with one request
 * in flight on all N queues at a time, then everything is read back,
 * again N at a time: a byte of one disk's data on another is cross-talk.
 * `poll`: no MSI-X.  PASS = status 1.
 */
#include "virtio.h"

#define MAX_DISKS 31

static unsigned DISKS = 4;
#define CHUNK 64 /* sectors per request */

static struct virtio_dev disks[MAX_DISKS];
static uint8_t *bufs[MAX_DISKS];
static uint64_t seeds[MAX_DISKS];

static uint64_t id_seed(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 0x100000001b3ull;
	return h;
}

/* The i-th comma-separated word of ids= into out. */
static int id_expected(const char *ids, unsigned i, char *out, size_t size)
{
	size_t n = 0;

	for (; i && *ids; ids++)
		if (*ids == ',')
			i--;
	if (i)
		return -1;
	for (; *ids && *ids != ',' && n + 1 < size; ids++)
		out[n++] = *ids;
	out[n] = 0;
	return 0;
}

static int id_listed(const char *ids, const char *id)
{
	char want[64];

	for (unsigned i = 0; id_expected(ids, i, want, sizeof(want)) == 0; i++)
		if (strncmp(want, id, VIRTIO_BLK_ID_BYTES) == 0)
			return 1;
	return 0;
}

/* One request on every disk, then wait for all of them. */
static void all_disks(int write, uint64_t sector)
{
	int st[MAX_DISKS];

	for (unsigned d = 0; d < DISKS; d++) {
		if (write)
			pattern_fill(bufs[d], CHUNK * VIRTIO_BLK_SECTOR, sector * VIRTIO_BLK_SECTOR,
				     seeds[d]);
		else
			pattern_memset(bufs[d], CHUNK * VIRTIO_BLK_SECTOR, 0xa5);
		st[d] = virtio_blk_start(&disks[d].vq[0], write, sector, bufs[d], CHUNK, 4, d & 1);
	}
	for (unsigned d = 0; d < DISKS; d++) {
		if (st[d] == 0)
			st[d] = virtio_blk_finish(&disks[d].vq[0]);
		test_check(st[d] == VIRTIO_BLK_S_OK, write ? "write" : "read",
			   "disk %u sector %lu: %s", d, sector, virtio_blk_status_name(st[d]));
		if (!write && st[d] == VIRTIO_BLK_S_OK) {
			long bad = pattern_check(bufs[d], CHUNK * VIRTIO_BLK_SECTOR,
						 sector * VIRTIO_BLK_SECTOR, seeds[d]);

			test_check(bad < 0, "read back own pattern",
				   "disk %u sector %lu: first bad byte at +%ld", d, sector, bad);
		}
	}
}

int guest_main(const struct boot_info *info)
{
	int use_msix = !cmdline_has(info->cmdline, "poll");
	char ids[512], id[MAX_DISKS][VIRTIO_BLK_ID_BYTES + 1];
	uint64_t sectors[3], cap = ~0ull;
	unsigned found;

	console_printf("isola multi_disk guest\n");
	dma_init(info);
	if (cmdline_get(info->cmdline, "ids", ids, sizeof(ids)))
		ids[0] = 0;
	DISKS = (unsigned)cmdline_get_u64_default(info->cmdline, "disks", 4);
	if (DISKS < 1 || DISKS > MAX_DISKS)
		test_abort("disks=", "%u: use 1..%u", DISKS, MAX_DISKS);
	found = virtio_find(VIRTIO_ID_BLOCK, disks, MAX_DISKS);
	if (!test_check(found == DISKS, "as many virtio-blk devices as disks=", "found %u, want %u",
			found, DISKS))
		return 1;
	for (unsigned d = 0; d < DISKS; d++) {
		uint64_t n;
		int st;

		if (virtio_init(&disks[d], VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 1, 64, use_msix))
			test_abort("virtio-blk init", "disk %u", d);
		bufs[d] = dma_alloc(CHUNK * VIRTIO_BLK_SECTOR, 4096);
		n = virtio_config_read64(&disks[d], VIRTIO_BLK_CFG_CAPACITY);
		cap = n < cap ? n : cap;
		st = virtio_blk_get_id(&disks[d].vq[0], id[d]);
		test_check(st == VIRTIO_BLK_S_OK, "GET_ID", "disk %u: %s", d,
			   virtio_blk_status_name(st));
		console_printf("multi_disk: disk %u at %02x:%02x.%x: id \"%s\", %lu sectors\n", d, 0,
			       disks[d].slot, disks[d].fn, id[d], n);
		if (ids[0])
			test_check(id_listed(ids, id[d]), "id is one of ids=", "disk %u: \"%s\"", d,
				   id[d]);
		for (unsigned e = 0; e < d; e++)
			test_check(strcmp(id[d], id[e]) != 0, "ids differ", "disks %u and %u: \"%s\"",
				   e, d, id[d]);
		seeds[d] = id_seed(id[d]) ^ d;
	}
	if (cap < 4 * CHUNK)
		test_abort("capacity", "%lu sectors: need at least %u", cap, 4 * CHUNK);
	sectors[0] = 0;
	sectors[1] = cap / 2;
	sectors[2] = cap - CHUNK;
	for (unsigned i = 0; i < ARRAY_SIZE(sectors); i++)
		all_disks(1, sectors[i]);
	for (unsigned i = 0; i < ARRAY_SIZE(sectors); i++)
		all_disks(0, sectors[i]);
	for (unsigned d = 0; d < DISKS; d++) {
		char again[VIRTIO_BLK_ID_BYTES + 1];

		virtio_blk_get_id(&disks[d].vq[0], again);
		test_check(strcmp(again, id[d]) == 0, "GET_ID stable", "disk %u: \"%s\" then \"%s\"",
			   d, id[d], again);
		test_check(!virtio_needs_reset(&disks[d]), "device never needed a reset",
			   "disk %u status %x", d, virtio_status(&disks[d]));
		if (use_msix)
			test_check(virtq_wait_irqs(&disks[d].vq[0], 1, 1000000) > 0, "completions interrupt via MSI-X",
				   "disk %u: none", d);
	}
	return 0;
}
