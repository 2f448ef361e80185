/* SPDX-License-Identifier: MIT */
/*
 * rng: the first virtio-rng device (virtio 1.2 §5.4).  Fills two 4 KiB
 * buffers with entropy (a request may return fewer bytes: keep asking),
 * checks neither is all zeroes and that they differ.  `poll`: no MSI-X.
 * `until_key`: then keep reading 4 KiB at a time, each checked the same way
 * against the one before, until a byte arrives on COM1 (the fault-injection
 * test kills isola-rng meanwhile); `timeout_ms=` bounds each request
 * (default 5000); `reads=N`: then N more 4 KiB reads, checked the same way
 * (for rate limits: tests/system/rate_limit.sh).  PASS = status 1.
 */
#include "virtio.h"

#define RNG_BYTES 4096
#define RNG_MAX_REQUESTS 256
#define COM1_LSR 0x3fd
#define UART_LSR_DR 0x01 /* a received byte is waiting */

static struct virtio_dev rng;
static uint64_t request_timeout_us = 5000000;

static int rng_fill(struct virtq *vq, uint8_t *buf)
{
	uint32_t got = 0;

	for (unsigned i = 0; i < RNG_MAX_REQUESTS && got < RNG_BYTES; i++) {
		struct virtq_buf b = {(uint64_t)buf + got, RNG_BYTES - got, 1};
		long len = virtq_transfer(vq, &b, 1, 0, request_timeout_us);

		if (len < 0) {
			test_fail("rng request", "%s after %u bytes",
				  len == -1 ? "no completion in time" : "ring full", got);
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
	request_timeout_us = cmdline_get_u64_default(info->cmdline, "timeout_ms", 5000) * 1000;
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
	test_check(pattern_check_zero(b, RNG_BYTES) >= 0, "second read is not all zeroes",
		   "zeroes");
	test_check(memcmp(a, b, RNG_BYTES) != 0, "the two reads differ", "identical");
	for (uint64_t i = 0, n = cmdline_get_u64_default(info->cmdline, "reads", 0); i < n; i++) {
		uint8_t *next = i % 2 ? b : a, *prev = i % 2 ? a : b;

		if (rng_fill(&rng.vq[0], next))
			return 1;
		if (!test_check(pattern_check_zero(next, RNG_BYTES) >= 0 &&
				    memcmp(next, prev, RNG_BYTES) != 0,
				"every 4 KiB read is new entropy", "read %lu", i))
			return 1;
	}
	if (cmdline_has(info->cmdline, "until_key")) {
		uint64_t reads = 0, bad = 0;

		console_printf("rng: READY\n");
		while (!(io_in8(COM1_LSR) & UART_LSR_DR)) {
			uint8_t *next = reads % 2 ? b : a, *prev = reads % 2 ? a : b;

			if (rng_fill(&rng.vq[0], next))
				return 1;
			reads++;
			if (pattern_check_zero(next, RNG_BYTES) < 0 ||
			    !memcmp(next, prev, RNG_BYTES))
				bad++;
		}
		console_printf("rng: reads=%lu bytes=%lu\n", reads, reads * RNG_BYTES);
		test_check(bad == 0, "every 4 KiB read is new entropy", "%lu of %lu reads bad", bad,
			   reads);
	}
	test_check(!virtio_needs_reset(&rng), "device never needed a reset", "status %x",
		   virtio_status(&rng));
	return 0;
}
