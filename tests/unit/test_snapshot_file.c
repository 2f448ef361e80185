// SPDX-License-Identifier: MIT
/* Unit tests for lib/snapshot_file.c, the snapshot state file's container:
 * the byte layout of docs/snapshot.md ("State file format"), round trips
 * through a file and a pipe, and refusals with a clear message of every
 * truncation, every single-bit flip, another format version, duplicate
 * sections, lengths past the end, unknown flags, and writes that fail.
 * Files the writer would not produce are made by patching a written one and
 * resealing its header checksum with this file's own (bitwise) CRC32C. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/snapshot_file.h"

#define PRODUCER "0.1.0-test"
/* The offsets docs/snapshot.md gives. */
#define HDR_LEN 104
#define ENT_LEN 32

/* CRC32C bit by bit, independent of the library's table. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
	}
	return ~crc;
}

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

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the header checksum of a patched file (bytes 0-99 and the table). */
static void reseal(uint8_t *f)
{
	uint32_t n = rd32(f + 84);
	uint32_t crc = crc32c_bitwise(0, f, 100);

	wr32(f + 100, crc32c_bitwise(crc, f + HDR_LEN, (size_t)n * ENT_LEN));
}

/* Messages carry no raw file bytes: printable ASCII only. */
static void assert_printable(const char *err)
{
	for (const char *c = err; *c; c++)
		if (*c < 0x20 || *c >= 0x7f)
			fail_msg("message has byte 0x%02x: %s", (uint8_t)*c, err);
}

/* Write sections into a memfd and return the file's bytes (malloc'd). */
static uint8_t *write_to_memory(const struct snapshot_section *s, size_t n, size_t *len)
{
	int fd = memfd_create("snapshot-test", MFD_CLOEXEC);
	char err[256] = "";
	uint8_t *buf;
	off_t size;

	assert_true(fd >= 0);
	if (snapshot_file_write(fd, PRODUCER, s, n, err, sizeof(err)) != 0)
		fail_msg("write refused: %s", err);
	size = lseek(fd, 0, SEEK_END);
	assert_true(size > 0);
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
	close(fd);
	*len = (size_t)size;
	return buf;
}

static const uint8_t regs[13] = "thirteen byte";
static const uint8_t lapic[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t blk[3] = {0xff, 0x00, 0x7f};

/* Three sections, the first with padding after it, and an empty one. */
static const struct snapshot_section small[] = {
    {.type = 1, .instance = 0, .data = regs, .len = sizeof(regs)},
    {.type = 1, .instance = 1, .data = lapic, .len = sizeof(lapic)},
    {.type = 7, .instance = 0, .data = NULL, .len = 0},
    {.type = 9, .instance = 2, .data = blk, .len = sizeof(blk)},
};
#define N_SMALL (sizeof(small) / sizeof(small[0]))

static uint8_t *small_file(size_t *len)
{
	return write_to_memory(small, N_SMALL, len);
}

/* Refused with ret and a printable message that contains needle. */
static void parse_refused(const uint8_t *buf, size_t len, int ret, const char *needle)
{
	struct snapshot_image img;
	char err[512] = "";

	assert_int_equal(snapshot_file_parse(buf, len, &img, err, sizeof(err)), ret);
	assert_null(img.buf);
	assert_null(img.sections);
	assert_printable(err);
	if (needle && !strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_crc32c(void **state)
{
	(void)state;
	uint8_t junk[1000];

	/* RFC 3720 §B.4's check value for CRC32C over "123456789" */
	assert_int_equal(snapshot_file_crc32c(0, "123456789", 9), 0xe3069283u);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	/* every length and start, short (table) and long (SSE4.2 where there is one) */
	for (size_t start = 0; start < 9; start++)
		for (size_t n = 0; start + n <= sizeof(junk); n += n < 80 ? 1 : 97)
			assert_int_equal(snapshot_file_crc32c(0, junk + start, n),
					 crc32c_bitwise(0, junk + start, n));
	assert_int_equal(snapshot_file_crc32c(0x12345678, junk, 100),
			 crc32c_bitwise(0x12345678, junk, 100));
	/* continues across calls */
	assert_int_equal(snapshot_file_crc32c(snapshot_file_crc32c(0, junk, 333), junk + 333, 667),
			 crc32c_bitwise(0, junk, sizeof(junk)));
}

/* The bytes are where docs/snapshot.md says. */
static void test_layout_as_documented(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	uint64_t first = HDR_LEN + N_SMALL * ENT_LEN;

	assert_memory_equal(f, "ISOLASNP", 8);
	assert_int_equal(rd32(f + 8), SNAPSHOT_FORMAT_VERSION);
	assert_int_equal(rd32(f + 12), HDR_LEN);
	assert_string_equal((char *)f + 16, PRODUCER);
	assert_int_equal(rd32(f + 80), 0);
	assert_int_equal(rd32(f + 84), N_SMALL);
	assert_int_equal(rd64(f + 88), len);
	assert_int_equal(rd32(f + 96), 0);
	/* entry 0 */
	assert_int_equal(rd32(f + HDR_LEN), 1);
	assert_int_equal(rd32(f + HDR_LEN + 4), 0);
	assert_int_equal(rd64(f + HDR_LEN + 8), first);
	assert_int_equal(rd64(f + HDR_LEN + 16), sizeof(regs));
	assert_int_equal(rd32(f + HDR_LEN + 24), crc32c_bitwise(0, regs, sizeof(regs)));
	assert_memory_equal(f + first, regs, sizeof(regs));
	/* entry 1 starts at the next multiple of 8 */
	assert_int_equal(rd64(f + HDR_LEN + ENT_LEN + 8), first + 16);
	/* the last payload ends the file */
	assert_int_equal(rd64(f + HDR_LEN + 3 * ENT_LEN + 8) + sizeof(blk), len);
	uint8_t copy[512];
	assert_true(len <= sizeof(copy));
	memcpy(copy, f, len);
	reseal(copy);
	assert_memory_equal(copy, f, len); /* the header CRC covers what the doc says */
	free(f);
}

static void check_small_image(const struct snapshot_image *img)
{
	assert_int_equal(img->n_sections, N_SMALL);
	assert_string_equal(img->producer, PRODUCER);
	for (size_t i = 0; i < N_SMALL; i++) {
		assert_int_equal(img->sections[i].type, small[i].type);
		assert_int_equal(img->sections[i].instance, small[i].instance);
		assert_int_equal(img->sections[i].len, small[i].len);
		assert_int_equal((uintptr_t)img->sections[i].data % SNAPSHOT_SECTION_ALIGN, 0);
		if (small[i].len)
			assert_memory_equal(img->sections[i].data, small[i].data, small[i].len);
	}
}

static void test_round_trip_file(void **state)
{
	(void)state;
	int fd = memfd_create("snapshot-test", MFD_CLOEXEC);
	struct snapshot_image img;
	char err[256] = "";

	assert_true(fd >= 0);
	/* from the current offset: the file starts after 5 bytes of something else */
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(snapshot_file_write(fd, PRODUCER, small, N_SMALL, err, sizeof(err)), 0);
	assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
	if (snapshot_file_read(fd, &img, err, sizeof(err)) != 0)
		fail_msg("read refused: %s", err);
	check_small_image(&img);
	snapshot_image_free(&img);
	assert_null(img.buf);
	snapshot_image_free(&img); /* twice is harmless */
	close(fd);
}

static void test_round_trip_memory_and_pipe(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	struct snapshot_image img;
	char err[256] = "";
	int p[2];

	assert_int_equal(snapshot_file_parse(f, len, &img, err, sizeof(err)), 0);
	assert_ptr_not_equal(img.buf, f); /* a copy */
	check_small_image(&img);
	snapshot_image_free(&img);

	/* not a regular file: read until EOF without knowing the size */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], f, len), (ssize_t)len);
	close(p[1]);
	if (snapshot_file_read(p[0], &img, err, sizeof(err)) != 0)
		fail_msg("read from a pipe refused: %s", err);
	check_small_image(&img);
	snapshot_image_free(&img);
	close(p[0]);
	free(f);
}

static void test_many_sections(void **state)
{
	(void)state;
	static struct snapshot_section s[SNAPSHOT_MAX_SECTIONS];
	static uint32_t vals[SNAPSHOT_MAX_SECTIONS];
	struct snapshot_image img;
	char err[256] = "";
	size_t len;
	uint8_t *f;

	for (uint32_t i = 0; i < SNAPSHOT_MAX_SECTIONS; i++) {
		vals[i] = i * 7;
		/* reverse order: the file keeps the caller's order */
		s[i] = (struct snapshot_section){SNAPSHOT_MAX_SECTIONS - i, i % 3, &vals[i], i % 5};
	}
	f = write_to_memory(s, SNAPSHOT_MAX_SECTIONS, &len);
	assert_int_equal(snapshot_file_parse(f, len, &img, err, sizeof(err)), 0);
	assert_int_equal(img.n_sections, SNAPSHOT_MAX_SECTIONS);
	assert_int_equal(img.sections[0].type, SNAPSHOT_MAX_SECTIONS);
	const struct snapshot_section *x =
	    snapshot_image_find(&img, SNAPSHOT_MAX_SECTIONS - 100, 1);
	assert_non_null(x);
	assert_int_equal(x->len, 0);
	x = snapshot_image_find(&img, SNAPSHOT_MAX_SECTIONS - 104, 104 % 3);
	assert_non_null(x);
	assert_int_equal(x->len, 4);
	assert_memory_equal(x->data, &vals[104], 4);
	snapshot_image_free(&img);
	free(f);

	/* one more is refused by the writer, and by the reader */
	assert_int_equal(
	    snapshot_file_write(-1, PRODUCER, s, SNAPSHOT_MAX_SECTIONS + 1, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "at most 4096"));
	f = small_file(&len);
	wr32(f + 84, SNAPSHOT_MAX_SECTIONS + 1);
	parse_refused(f, len, -EINVAL, "at most 4096");
	free(f);
}

static void test_zero_sections(void **state)
{
	(void)state;
	struct snapshot_image img;
	char err[256] = "";
	size_t len;
	uint8_t *f = write_to_memory(NULL, 0, &len);

	assert_int_equal(len, HDR_LEN);
	assert_int_equal(snapshot_file_parse(f, len, &img, err, sizeof(err)), 0);
	assert_int_equal(img.n_sections, 0);
	assert_null(snapshot_image_find(&img, 0, 0));
	snapshot_image_free(&img);
	free(f);
}

static void test_find(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	struct snapshot_image img;
	char err[256] = "";
	const struct snapshot_section *s;

	assert_int_equal(snapshot_file_parse(f, len, &img, err, sizeof(err)), 0);
	s = snapshot_image_find(&img, 1, 1);
	assert_ptr_equal(s, &img.sections[1]);
	assert_memory_equal(s->data, lapic, sizeof(lapic));
	s = snapshot_image_find(&img, 7, 0);
	assert_non_null(s);
	assert_int_equal(s->len, 0);
	assert_null(snapshot_image_find(&img, 1, 2));
	assert_null(snapshot_image_find(&img, 9, 0));
	assert_null(snapshot_image_find(&img, 2, 0));
	snapshot_image_free(&img);
	free(f);
}

/* Every proper prefix of a valid file is refused as truncated. */
static void test_every_truncation_refused(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);

	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *part = malloc(cut ? cut : 1); /* ASan sees a read past the cut */

		memcpy(part, f, cut);
		parse_refused(part, cut, -EINVAL, "truncated");
		free(part);
	}
	free(f);
}

/* Every single-bit flip is refused: each byte is under a CRC32C or must be
 * zero (docs/snapshot.md); a flip in the version field is "another version". */
static void test_every_bit_flip_refused(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	struct snapshot_image img;
	char err[512];

	for (size_t bit = 0; bit < len * 8; bit++) {
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = snapshot_file_parse(f, len, &img, err, sizeof(err));
		if (ret == 0)
			fail_msg("flip of bit %zu (byte %zu) accepted", bit % 8, bit / 8);
		if (bit / 8 >= 8 && bit / 8 < 12)
			assert_int_equal(ret, -EPROTONOSUPPORT);
		else
			assert_int_equal(ret, -EINVAL);
		assert_printable(err);
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(f);
}

static void test_checksum_messages(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);

	f[len - 1] ^= 1; /* the last section's payload */
	parse_refused(f, len, -EINVAL, "checksum mismatch in section 3 (type 9, instance 2)");
	f[len - 1] ^= 1;
	f[HDR_LEN + 4] ^= 1; /* an entry's instance */
	parse_refused(f, len, -EINVAL, "checksum mismatch in the header or the section table");
	free(f);
}

static void test_wrong_magic(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	static const uint8_t elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};

	f[3] = 'X';
	parse_refused(f, len, -EINVAL, "not an isola state file");
	parse_refused(elf, sizeof(elf), -EINVAL, "not an isola state file");
	parse_refused(elf, 3, -EINVAL, "not an isola state file");
	free(f);
}

static void test_other_version(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);

	/* a future file: nothing after the prefix is looked at */
	wr32(f + 8, 3);
	memset(f + 16, 0, 64);
	memcpy(f + 16, "0.2", 3);
	memset(f + 80, 0xee, len - 80);
	parse_refused(f, len, -EPROTONOSUPPORT,
		      "written by isola 0.2 in format version 3; this isola reads version 1: "
		      "restore it with the isola that wrote it");
	/* its header may be longer */
	wr32(f + 12, 4096);
	parse_refused(f, len, -EPROTONOSUPPORT, "format version 3");
	/* hostile bytes in the producer are escaped */
	memcpy(f + 16, "\x1b[2J\n\\\xff", 7);
	parse_refused(f, len, -EPROTONOSUPPORT, "isola \\x1b[2J\\x0a\\x5c\\xff in format");
	/* a producer filling its field without a NUL */
	memset(f + 16, 'A', 64);
	parse_refused(f, len, -EPROTONOSUPPORT, "AAAA in format version 3");
	/* too short to name the producer */
	parse_refused(f, 40, -EPROTONOSUPPORT, "an unknown version in format version 3");
	wr32(f + 8, 0);
	parse_refused(f, len, -EPROTONOSUPPORT, "format version 0");
	free(f);
}

static void test_duplicate_sections(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);
	struct snapshot_section twice[] = {small[0], small[1], small[0]};
	char err[256] = "";

	assert_int_equal(snapshot_file_write(-1, PRODUCER, twice, 3, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sections 0 and 2 are both type 1 instance 0"));
	/* a file that has them anyway (with a good checksum) */
	wr32(f + HDR_LEN + 3 * ENT_LEN, 1);
	wr32(f + HDR_LEN + 3 * ENT_LEN + 4, 1);
	reseal(f);
	parse_refused(f, len, -EINVAL, "sections 1 and 3 are both type 1 instance 1");
	free(f);
}

static void test_lengths_and_offsets(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len), *e3;
	uint8_t *longer = calloc(1, len + 8);

	e3 = f + HDR_LEN + 3 * ENT_LEN;
	/* the last section past the end of the file */
	wr64(e3 + 16, 4);
	reseal(f);
	parse_refused(f, len, -EINVAL, "section 3 (type 9, instance 2): 4 bytes at byte");
	wr64(e3 + 16, UINT64_MAX);
	reseal(f);
	parse_refused(f, len, -EINVAL, "run past the end");
	wr64(e3 + 16, sizeof(blk));
	/* an offset off the canonical layout: misaligned, overlapping, beyond */
	uint64_t at = rd64(e3 + 8);
	for (uint64_t off = 0; off < len + 16; off++) {
		if (off == at)
			continue;
		wr64(e3 + 8, off);
		reseal(f);
		parse_refused(f, len, -EINVAL, "expected at");
	}
	wr64(e3 + 8, UINT64_MAX - 1);
	reseal(f);
	parse_refused(f, len, -EINVAL, "expected at");
	wr64(e3 + 8, at);
	reseal(f); /* valid again */
	/* a gap before the end (the header's total says 8 more bytes) */
	memcpy(longer, f, len);
	wr64(longer + 88, len + 8);
	reseal(longer);
	parse_refused(longer, len + 8, -EINVAL, "8 bytes after the last section");
	/* a total that disagrees with the file */
	parse_refused(longer, len + 7, -EINVAL, "truncated: header says");
	memcpy(longer, f, len);
	parse_refused(longer, len + 8, -EINVAL, "something was appended");
	/* the header's own length must be version 1's */
	wr32(f + 12, 112);
	parse_refused(f, len, -EINVAL, "header length 112");
	free(longer);
	free(f);
}

static void test_fields_that_must_be_zero(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = small_file(&len);

	wr32(f + 80, 1u << 31); /* flags */
	reseal(f);
	parse_refused(f, len, -EINVAL, "unknown flags 0x80000000");
	wr32(f + 80, 0);
	wr32(f + 96, 1); /* reserved */
	reseal(f);
	parse_refused(f, len, -EINVAL, "reserved header field 0x1");
	wr32(f + 96, 0);
	wr32(f + HDR_LEN + 28, 5); /* an entry's reserved word */
	reseal(f);
	parse_refused(f, len, -EINVAL, "section 0 (type 1, instance 0): reserved field 0x5");
	wr32(f + HDR_LEN + 28, 0);
	reseal(f);
	f[HDR_LEN + 4 * ENT_LEN + sizeof(regs)] = 1; /* padding after section 0 */
	parse_refused(f, len, -EINVAL, "section 1 (type 1, instance 1): the padding before it");
	f[HDR_LEN + 4 * ENT_LEN + sizeof(regs)] = 0;
	f[16 + sizeof(PRODUCER) + 2] = 'x'; /* after the producer's NUL */
	reseal(f);
	parse_refused(f, len, -EINVAL, "producer field");
	memset(f + 16, 0, 64);
	memcpy(f + 16, "bell\a", 5);
	reseal(f);
	parse_refused(f, len, -EINVAL, "producer field");
	free(f);
}

static void test_writer_refuses_bad_arguments(void **state)
{
	(void)state;
	char err[256] = "", longname[80];
	struct snapshot_section nodata = {.type = 1, .instance = 0, .data = NULL, .len = 4};
	struct snapshot_section huge = {.type = 1, .data = regs, .len = SNAPSHOT_FILE_MAX};

	memset(longname, 'v', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(snapshot_file_write(-1, longname, small, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 63"));
	assert_int_equal(snapshot_file_write(-1, NULL, small, 1, err, sizeof(err)), -EINVAL);
	assert_int_equal(snapshot_file_write(-1, "0.1\n", small, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "byte 0x0a at 3"));
	assert_int_equal(snapshot_file_write(-1, PRODUCER, &nodata, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no data"));
	/* the size is checked before anything is read from data */
	assert_int_equal(snapshot_file_write(-1, PRODUCER, &huge, 1, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "at most 67108864"));
}

static void test_write_failures(void **state)
{
	(void)state;
	char err[256] = "";
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC), p[2];

	if (fd < 0) {
		print_message("SKIP: no /dev/full here\n");
		skip();
	}
	assert_int_equal(snapshot_file_write(fd, PRODUCER, small, N_SMALL, err, sizeof(err)),
			 -ENOSPC);
	assert_non_null(strstr(err, "write at byte 0 of"));
	assert_non_null(strstr(err, strerror(ENOSPC)));
	close(fd);

	/* a reader that went away: EPIPE (SIGPIPE ignored, as isola does) */
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	assert_int_equal(snapshot_file_write(p[1], PRODUCER, small, N_SMALL, err, sizeof(err)),
			 -EPIPE);
	close(p[1]);
	signal(SIGPIPE, SIG_DFL);

	/* not open for writing */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(snapshot_file_write(fd, PRODUCER, small, N_SMALL, err, sizeof(err)),
			 -EBADF);
	close(fd);
}

/* A stream longer than the first buffer (64 KiB) grows it; one longer than
 * SNAPSHOT_FILE_MAX is refused after that many bytes, not read to its end. */
static void feed_pipe(const uint8_t *buf, size_t len, size_t repeat, int *rd, pid_t *child)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	*child = fork();
	assert_true(*child >= 0);
	if (*child == 0) {
		close(p[0]);
		for (size_t r = 0; r < repeat; r++)
			for (size_t done = 0; done < len;) {
				ssize_t n = write(p[1], buf + done, len - done);
				if (n <= 0)
					_exit(0); /* the reader stopped */
				done += (size_t)n;
			}
		_exit(0);
	}
	close(p[1]);
	*rd = p[0];
}

static void test_read_from_a_stream(void **state)
{
	(void)state;
	static uint8_t big[50000];
	struct snapshot_section s[4];
	struct snapshot_image img;
	char err[256] = "";
	size_t len;
	uint8_t *f;
	pid_t child;
	int rd;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 17 + i / 251);
	for (uint32_t i = 0; i < 4; i++)
		s[i] = (struct snapshot_section){42, i, big, sizeof(big) - i};
	f = write_to_memory(s, 4, &len);
	assert_true(len > 3 * 65536);
	feed_pipe(f, len, 1, &rd, &child);
	if (snapshot_file_read(rd, &img, err, sizeof(err)) != 0)
		fail_msg("read from a stream refused: %s", err);
	assert_int_equal(img.n_sections, 4);
	assert_int_equal(img.sections[3].len, sizeof(big) - 3);
	assert_memory_equal(img.sections[3].data, big, sizeof(big) - 3);
	snapshot_image_free(&img);
	close(rd);
	waitpid(child, NULL, 0);
	free(f);

	signal(SIGPIPE, SIG_IGN); /* the writer outlives the reader */
	feed_pipe(big, sizeof(big), SNAPSHOT_FILE_MAX / sizeof(big) + 2, &rd, &child);
	assert_int_equal(snapshot_file_read(rd, &img, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "67108865 bytes or more"));
	assert_null(img.buf);
	close(rd);
	waitpid(child, NULL, 0);
	signal(SIGPIPE, SIG_DFL);
}

static void test_read_failures(void **state)
{
	(void)state;
	struct snapshot_image img;
	char err[256] = "";
	int fd = memfd_create("snapshot-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	/* too large: refused before reading it */
	assert_int_equal(ftruncate(fd, SNAPSHOT_FILE_MAX + 1), 0);
	assert_int_equal(snapshot_file_read(fd, &img, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "memory file"));
	assert_null(img.buf);
	/* empty */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(snapshot_file_read(fd, &img, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "truncated: 0 bytes"));
	close(fd);
	/* not readable */
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(snapshot_file_read(fd, &img, err, sizeof(err)), -EBADF);
	assert_non_null(strstr(err, "read: "));
	close(fd);
	/* a big parse is refused without a copy */
	assert_int_equal(
	    snapshot_file_parse("", (size_t)SNAPSHOT_FILE_MAX + 1, &img, err, sizeof(err)), -EFBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c),
	    cmocka_unit_test(test_layout_as_documented),
	    cmocka_unit_test(test_round_trip_file),
	    cmocka_unit_test(test_round_trip_memory_and_pipe),
	    cmocka_unit_test(test_many_sections),
	    cmocka_unit_test(test_zero_sections),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_every_truncation_refused),
	    cmocka_unit_test(test_every_bit_flip_refused),
	    cmocka_unit_test(test_checksum_messages),
	    cmocka_unit_test(test_wrong_magic),
	    cmocka_unit_test(test_other_version),
	    cmocka_unit_test(test_duplicate_sections),
	    cmocka_unit_test(test_lengths_and_offsets),
	    cmocka_unit_test(test_fields_that_must_be_zero),
	    cmocka_unit_test(test_writer_refuses_bad_arguments),
	    cmocka_unit_test(test_write_failures),
	    cmocka_unit_test(test_read_from_a_stream),
	    cmocka_unit_test(test_read_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
