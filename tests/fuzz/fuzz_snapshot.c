// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the snapshot state file parser (lib/snapshot_file.c),
 * the first thing `PUT /snapshot/load` and `isola restore` run over a file
 * anyone may have written.  snapshot_file_parse() must refuse or accept
 * every input without a crash, leak or undefined behaviour, and:
 *   - a refusal is -EINVAL, -EPROTONOSUPPORT or -EFBIG with a printable,
 *     non-empty message and an empty image;
 *   - an accepted image has at most SNAPSHOT_MAX_SECTIONS sections, each
 *     aligned and inside the image's buffer, no two with one (type,
 *     instance), a NUL-terminated producer, and snapshot_image_find() finds
 *     each; written back with snapshot_file_write() it gives the same bytes
 *     (the reader takes only the canonical layout the writer makes).
 * Build and run: `make fuzz-build`, then
 *   build/fuzz/fuzz_snapshot -max_total_time=60 tests/fuzz/corpus/snapshot
 *
 * Input: one control byte, then the file.  Random bytes rarely carry good
 * CRC32Cs, so the control byte lets the fuzzer past them to the checks
 * behind: bit 0 recomputes the CRC of every section whose table entry lies
 * in the file and points inside it, bit 1 then recomputes the header's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/snapshot_file.h"

/* docs/snapshot.md, "State file format" */
#define HDR_LEN 104
#define ENT_LEN 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void reseal(uint8_t *f, size_t len, unsigned mode)
{
	size_t n, fit;

	if (len < HDR_LEN)
		return;
	n = rd32(f + 84);
	fit = (len - HDR_LEN) / ENT_LEN;
	if (mode & 1) {
		for (size_t i = 0; i < n && i < fit; i++) {
			uint8_t *e = f + HDR_LEN + i * ENT_LEN;
			uint64_t off = rd64(e + 8), sz = rd64(e + 16);

			if (off <= len && sz <= len - off)
				wr32(e + 24, snapshot_file_crc32c(0, f + off, sz));
		}
	}
	if ((mode & 2) && n <= fit) {
		uint32_t crc = snapshot_file_crc32c(0, f, 100);

		wr32(f + 100, snapshot_file_crc32c(crc, f + HDR_LEN, n * ENT_LEN));
	}
}

static void check_refusal(int ret, const struct snapshot_image *img, const char *err)
{
	if (ret != -EINVAL && ret != -EPROTONOSUPPORT && ret != -EFBIG)
		abort();
	if (img->buf || img->sections || img->n_sections || !err[0])
		abort();
	for (const char *c = err; *c; c++)
		if (*c < 0x20 || *c >= 0x7f)
			abort();
}

/* Written back, the image is the input again. */
static void check_rewrite(const struct snapshot_image *img, const uint8_t *file, size_t len)
{
	static int fd = -1;
	char err[256];
	uint8_t *back;

	if (fd < 0)
		fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	if (snapshot_file_write(fd, img->producer, img->sections, img->n_sections, err,
				sizeof(err)) != 0)
		abort();
	if (lseek(fd, 0, SEEK_END) != (off_t)len)
		abort();
	back = malloc(len);
	if (!back || pread(fd, back, len, 0) != (ssize_t)len || memcmp(back, file, len) != 0)
		abort();
	free(back);
}

static void check_image(const struct snapshot_image *img, const uint8_t *file, size_t len)
{
	const uint8_t *lo = img->buf, *hi = lo + img->len;

	if (img->len != len || memcmp(img->buf, file, len) != 0)
		abort();
	if (img->n_sections > SNAPSHOT_MAX_SECTIONS || !memchr(img->producer, 0, 64))
		abort();
	for (size_t i = 0; i < img->n_sections; i++) {
		const struct snapshot_section *s = &img->sections[i];
		const uint8_t *d = s->data;

		if (d < lo || d > hi || s->len > (size_t)(hi - d))
			abort();
		if ((uintptr_t)d % SNAPSHOT_SECTION_ALIGN)
			abort();
		/* the first with its key is itself: no duplicates */
		if (snapshot_image_find(img, s->type, s->instance) != s)
			abort();
	}
	check_rewrite(img, file, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_image img;
	char err[512] = "";
	uint8_t *file;
	size_t len;
	int ret;

	if (size < 1)
		return 0;
	len = size - 1;
	file = malloc(len ? len : 1);
	if (!file)
		return 0;
	memcpy(file, data + 1, len);
	reseal(file, len, data[0]);
	ret = snapshot_file_parse(file, len, &img, err, sizeof(err));
	if (ret == 0)
		check_image(&img, file, len);
	else
		check_refusal(ret, &img, err);
	snapshot_image_free(&img);
	free(file);
	return 0;
}
