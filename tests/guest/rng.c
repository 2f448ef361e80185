/* SPDX-License-Identifier: MIT */
/*
 * rng: the first virtio-rng device (virtio 1.2 §5.4).  Fills two 4 KiB
 * buffers with entropy (a request may return fewer bytes: keep asking),
 * checks neither is all zeroes and that they differ.  `poll`: no MSI-X.
 * PASS = status 1.
 */
#include "virtio.h"

#define RNG_BYTES 4096
#define RNG_MAX_REQUESTS 256

static struct virtio_dev rng;

static int rng_fill(struct virtq *vq, uint8_t *buf)
{
	uint32_t got = 0;

	for (unsigned i = 0; i < RNG_MAX_REQUESTS && got < RNG_BYTES; i++) {
		struct virtq_buf b = {(uint64_t)buf + got, RNG_BYTES - got, 1};
		long len = virtq_transfer(vq, &b, 1, 0, 5000000);

		if (len < 0) {
			test_fail("rng request", "%s after %u bytes",
				  len == -1 ? "no completion in 5 s" : "ring full", got);
			return -1;
		}
		if (len > RNG_BYTES - got) {
			test_fail("rng used length", "%ld > %u asked", len, RNG_BYTES - got);
			return -1;
		}
		got += (uint32_t)len;
	}
	return test_check(got == RNG_BYTES, "4 KiB of entropy", "%u bytes", got) ? 0 : -1;
}

int guest_main(const struct boot_info *info)
{
	uint8_t *a, *b;

	console_printf("isola rng guest\n");
	dma_init(info);
	if (virtio_find(VIRTIO_ID_RNG, &rng, 1) != 1)
		test_abort("virtio-rng device", "none on bus 0");
	if (virtio_init(&rng, 0, 1, 64, !cmdline_has(info->cmdline, "poll")))
		test_abort("virtio-rng init", "see above");
	a = dma_alloc(RNG_BYTES, 4096);
	b = dma_alloc(RNG_BYTES, 4096);
	if (rng_fill(&rng.vq[0], a) || rng_fill(&rng.vq[0], b))
		return 1;
	test_check(pattern_check_zero(a, RNG_BYTES) >= 0, "first read is not all zeroes", "zeroes");
	test_check(pattern_check_zero(b, RNG_BYTES) >= 0, "second read is not all zeroes", "zeroes");
	test_check(memcmp(a, b, RNG_BYTES) != 0, "the two reads differ", "identical");
	test_check(!virtio_needs_reset(&rng), "device never needed a reset", "status %x",
		   virtio_status(&rng));
	return 0;
}
