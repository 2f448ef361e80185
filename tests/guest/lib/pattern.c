/* SPDX-License-Identifier: MIT */
/*
 * Disk data patterns for the virtio-blk guests (virtio.h).  Filling and
 * checking MiBs is bulk work: it runs in ring 3, natively under PVM.
 */
#include "virtio.h"

#define PATTERN_MUL 0x9e3779b97f4a7c15ull

enum { JOB_FILL, JOB_CHECK, JOB_ZERO, JOB_MEMSET };

struct pattern_job {
	int kind;
	uint8_t value;
	uint64_t *buf;
	uint64_t words;
	uint64_t disk_offset;
	uint64_t seed;
};

uint64_t pattern_word(uint64_t disk_offset, uint64_t seed)
{
	return ((disk_offset >> 3) + 1) * PATTERN_MUL ^ seed;
}

/* Runs at CPL 3: returns 0 if fine, else 1 + the index of the first bad word. */
static uint64_t pattern_job_run(uint64_t arg)
{
	const struct pattern_job *job = (const struct pattern_job *)arg;
	uint64_t w = (job->disk_offset >> 3) + 1, byte = job->value * 0x0101010101010101ull;

	for (uint64_t i = 0; i < job->words; i++, w++) {
		uint64_t want = w * PATTERN_MUL ^ job->seed;

		switch (job->kind) {
		case JOB_FILL:
			job->buf[i] = want;
			break;
		case JOB_MEMSET:
			job->buf[i] = byte;
			break;
		case JOB_CHECK:
			if (job->buf[i] != want)
				return i + 1;
			break;
		default:
			if (job->buf[i])
				return i + 1;
		}
	}
	return 0;
}

static long pattern_run(int kind, const void *buf, uint64_t bytes, uint64_t disk_offset,
			uint64_t seed, uint8_t value)
{
	struct pattern_job job = {kind, value, (uint64_t *)buf, bytes / 8, disk_offset, seed};
	uint64_t r = run_in_ring3(pattern_job_run, (uint64_t)&job);

	if (r == RING3_FAULTED)
		test_abort("pattern", "ring 3 fault on buffer %p (%lx bytes)", buf, bytes);
	return r ? (long)(r - 1) * 8 : -1;
}

void pattern_fill(void *buf, uint64_t bytes, uint64_t disk_offset, uint64_t seed)
{
	pattern_run(JOB_FILL, buf, bytes, disk_offset, seed, 0);
}

void pattern_memset(void *buf, uint64_t bytes, uint8_t value)
{
	pattern_run(JOB_MEMSET, buf, bytes, 0, 0, value);
}

long pattern_check(const void *buf, uint64_t bytes, uint64_t disk_offset, uint64_t seed)
{
	return pattern_run(JOB_CHECK, buf, bytes, disk_offset, seed, 0);
}

long pattern_check_zero(const void *buf, uint64_t bytes)
{
	return pattern_run(JOB_ZERO, buf, bytes, 0, 0, 0);
}
