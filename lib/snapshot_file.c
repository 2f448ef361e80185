// SPDX-License-Identifier: MIT
/*
 * The snapshot state file's container: writer, reader and validator.  The
 * layout, byte by byte, is docs/snapshot.md ("State file format"); the
 * offsets below are that table's.  All integers are little-endian and are
 * assembled byte by byte, so the code is the same on any host.
 *
 * The reader trusts nothing beyond the fixed prefix (magic, version, header
 * length, producer) until the header checksum has matched, and accepts only
 * the canonical layout the writer produces (payloads in table order, each at
 * the next 8-byte boundary, zero padding, nothing after the last): every byte
 * of a file is then either under a CRC32C or required to be zero, so any
 * single corrupted bit is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/snapshot_file.h"

static const char snapshot_magic[8] = {'I', 'S', 'O', 'L', 'A', 'S', 'N', 'P'};

/* The fixed prefix, the same in every format version (the promise in
 * docs/snapshot.md): enough to refuse another version by name. */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_HEADER_LEN 12
#define OFF_PRODUCER 16
#define PREFIX_LEN 80
/* Format version 1, after the prefix. */
#define OFF_FLAGS 80
#define OFF_N_SECTIONS 84
#define OFF_TOTAL_LEN 88
#define OFF_RESERVED 96
#define OFF_HEADER_CRC 100
#define HEADER_LEN 104
/* A section table entry. */
#define ENT_TYPE 0
#define ENT_INSTANCE 4
#define ENT_OFFSET 8
#define ENT_LENGTH 16
#define ENT_CRC 24
#define ENT_RESERVED 28
#define ENTRY_LEN 32

_Static_assert(HEADER_LEN % SNAPSHOT_SECTION_ALIGN == 0, "the table starts aligned");
_Static_assert(ENTRY_LEN % SNAPSHOT_SECTION_ALIGN == 0, "the first payload starts aligned");
_Static_assert(PREFIX_LEN - OFF_PRODUCER == SNAPSHOT_PRODUCER_MAX, "producer field");

/* CRC32C, reflected polynomial 0x82f63b78 (RFC 3720 §12.1), one byte per step. */
static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c_by_table(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#ifdef __x86_64__
/* SSE4.2's CRC32 instruction computes CRC32C (Intel SDM vol. 2A, "CRC32"),
 * 8 bytes a step: ~10x the table, which keeps a restore's checks of a large
 * state file well under a millisecond. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_by_sse42(uint32_t crc, const uint8_t *p,
								  size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v)); /* unaligned; x86 is little-endian, as the CRC */
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

/* Short inputs (header fields, small sections) go through the table, long
 * ones through the instruction where the CPU has it: both paths run on
 * every host with SSE4.2, and test_snapshot_file checks both against a
 * bitwise CRC. */
#define CRC32C_SHORT 64

uint32_t snapshot_file_crc32c(uint32_t crc, const void *buf, size_t len)
{
#ifdef __x86_64__
	if (len >= CRC32C_SHORT && __builtin_cpu_supports("sse4.2"))
		return ~crc32c_by_sse42(~crc, buf, len);
#endif
	return ~crc32c_by_table(~crc, buf, len);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t align_up(uint64_t v)
{
	return (v + SNAPSHOT_SECTION_ALIGN - 1) & ~(uint64_t)(SNAPSHOT_SECTION_ALIGN - 1);
}

/* The header checksum: the header before its CRC field, then the table. */
static uint32_t header_crc(const uint8_t *file, uint32_t n_sections)
{
	uint32_t crc = snapshot_file_crc32c(0, file, OFF_HEADER_CRC);

	return snapshot_file_crc32c(crc, file + HEADER_LEN, (size_t)n_sections * ENTRY_LEN);
}

/* The producer field as text for a message: printable ASCII as is, anything
 * else (a hostile or future file's bytes) as \xNN; stops at the first NUL. */
static void producer_escape(const uint8_t *field, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < SNAPSHOT_PRODUCER_MAX && field[i] && o + 5 < outlen; i++) {
		uint8_t c = field[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/* A producer as the format wants it: printable ASCII, NUL-terminated within
 * the field, zero after the NUL (so the field has one spelling). */
static bool producer_valid(const uint8_t *field)
{
	size_t i = 0;

	while (i < SNAPSHOT_PRODUCER_MAX && field[i] >= 0x20 && field[i] < 0x7f)
		i++;
	if (i == SNAPSHOT_PRODUCER_MAX || field[i] != 0)
		return false;
	while (i < SNAPSHOT_PRODUCER_MAX)
		if (field[i++] != 0)
			return false;
	return true;
}

struct section_key {
	uint32_t type, instance;
	size_t index;
};

static int section_key_cmp(const void *a, const void *b)
{
	const struct section_key *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->instance != y->instance)
		return x->instance < y->instance ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Two sections with one (type, instance): 0 and their indexes in *first,
 * *second (first < second); -ENOENT if none; -ENOMEM.  O(n log n): a file
 * may hold SNAPSHOT_MAX_SECTIONS sections. */
static int find_duplicate(const struct snapshot_section *s, size_t n, size_t *first, size_t *second)
{
	struct section_key *keys;
	int ret = -ENOENT;

	if (n < 2)
		return -ENOENT;
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct section_key){s[i].type, s[i].instance, i};
	qsort(keys, n, sizeof(*keys), section_key_cmp);
	for (size_t i = 1; i < n && ret == -ENOENT; i++) {
		if (keys[i].type == keys[i - 1].type && keys[i].instance == keys[i - 1].instance) {
			*first = keys[i - 1].index;
			*second = keys[i].index;
			ret = 0;
		}
	}
	free(keys);
	return ret;
}

static int duplicate_error(const struct snapshot_section *s, size_t n, const char *what, char *err,
			   size_t errlen)
{
	size_t a, b;
	int ret = find_duplicate(s, n, &a, &b);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return error_text(err, errlen, ret, "out of memory checking %zu sections", n);
	return error_text(err, errlen, -EINVAL,
			  "sections %zu and %zu are both type %u instance %u: %s", a, b, s[a].type,
			  s[a].instance, what);
}

/*
 * The fixed prefix: magic, version, header length.  Everything after the
 * prefix belongs to the version, so a file of another version is refused
 * here, naming the isola that wrote it (its producer field, escaped).
 */
static int check_prefix(const uint8_t *file, size_t len, char *err, size_t errlen)
{
	char producer[4 * SNAPSHOT_PRODUCER_MAX + 1] = "an unknown version";
	uint32_t version;

	if (len < OFF_VERSION + 4) {
		if (memcmp(file, snapshot_magic, len < 8 ? len : 8) == 0)
			return error_text(err, errlen, -EINVAL,
					  "truncated: %zu bytes, shorter than the %d-byte header: "
					  "the file is incomplete, take the snapshot again",
					  len, HEADER_LEN);
	}
	if (len < 8 || memcmp(file + OFF_MAGIC, snapshot_magic, 8) != 0)
		return error_text(
		    err, errlen, -EINVAL,
		    "not an isola state file (it does not start with \"ISOLASNP\"): "
		    "give the snapshot_path that the snapshot wrote, not the memory file");
	version = get32(file + OFF_VERSION);
	if (version != SNAPSHOT_FORMAT_VERSION) {
		if (len >= PREFIX_LEN && file[OFF_PRODUCER])
			producer_escape(file + OFF_PRODUCER, producer, sizeof(producer));
		return error_text(err, errlen, -EPROTONOSUPPORT,
				  "written by isola %s in format version %u; this isola reads "
				  "version %u: restore it with the isola that wrote it",
				  producer, version, SNAPSHOT_FORMAT_VERSION);
	}
	if (len < HEADER_LEN)
		return error_text(err, errlen, -EINVAL,
				  "truncated: %zu bytes, shorter than the %d-byte header: "
				  "the file is incomplete, take the snapshot again",
				  len, HEADER_LEN);
	if (get32(file + OFF_HEADER_LEN) != HEADER_LEN)
		return error_text(
		    err, errlen, -EINVAL,
		    "header length %u, format version %u has %d: the file is corrupted",
		    get32(file + OFF_HEADER_LEN), SNAPSHOT_FORMAT_VERSION, HEADER_LEN);
	return 0;
}

/* The version-1 header: section count, its checksum, then (trusted from
 * here) the fields it covers. */
static int check_header(const uint8_t *file, size_t len, char *err, size_t errlen)
{
	uint32_t n = get32(file + OFF_N_SECTIONS);
	uint64_t table_end = HEADER_LEN + (uint64_t)n * ENTRY_LEN;
	uint64_t total = 0;

	if (n > SNAPSHOT_MAX_SECTIONS)
		return error_text(err, errlen, -EINVAL,
				  "the header announces %u sections, at most %u are allowed: "
				  "the file is corrupted",
				  n, SNAPSHOT_MAX_SECTIONS);
	if (len < table_end)
		return error_text(err, errlen, -EINVAL,
				  "truncated: the header announces %u sections (a table up to byte "
				  "%llu), the file has %zu bytes: the file is incomplete",
				  n, (unsigned long long)table_end, len);
	if (header_crc(file, n) != get32(file + OFF_HEADER_CRC))
		return error_text(err, errlen, -EINVAL,
				  "checksum mismatch in the header or the section table: "
				  "the file is corrupted");
	if (!producer_valid(file + OFF_PRODUCER))
		return error_text(err, errlen, -EINVAL,
				  "the producer field is not NUL-terminated printable text: "
				  "the file was not written by isola");
	if (get32(file + OFF_FLAGS) != 0)
		return error_text(err, errlen, -EINVAL,
				  "unknown flags 0x%x in format version %u: written by a newer or "
				  "foreign isola, restore it with the isola that wrote it",
				  get32(file + OFF_FLAGS), SNAPSHOT_FORMAT_VERSION);
	if (get32(file + OFF_RESERVED) != 0)
		return error_text(err, errlen, -EINVAL,
				  "reserved header field 0x%x is not zero: the file is corrupted",
				  get32(file + OFF_RESERVED));
	total = get64(file + OFF_TOTAL_LEN);
	if (total > len)
		return error_text(err, errlen, -EINVAL,
				  "truncated: header says %llu bytes, file has %zu: "
				  "the file is incomplete (disk full or an interrupted copy?)",
				  (unsigned long long)total, len);
	if (total < len)
		return error_text(err, errlen, -EINVAL,
				  "header says %llu bytes, file has %zu: something was appended, "
				  "the file is corrupted",
				  (unsigned long long)total, len);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/* Table entry i, against the canonical layout: its payload starts at *pos
 * rounded up (zeros before it), lies within the file, matches its CRC. */
static int check_entry(const uint8_t *file, size_t len, size_t i, uint64_t *pos,
		       struct snapshot_section *out, char *err, size_t errlen)
{
	const uint8_t *e = file + HEADER_LEN + i * ENTRY_LEN;
	uint32_t type = get32(e + ENT_TYPE), instance = get32(e + ENT_INSTANCE);
	uint64_t off = get64(e + ENT_OFFSET), size = get64(e + ENT_LENGTH);
	uint64_t want = align_up(*pos);

#define ENTRY_ERROR(...)                                                                           \
	error_text(err, errlen, -EINVAL, "section %zu (type %u, instance %u): " __VA_ARGS__)
	if (get32(e + ENT_RESERVED) != 0)
		return ENTRY_ERROR("reserved field 0x%x is not zero: the file is corrupted", i,
				   type, instance, get32(e + ENT_RESERVED));
	if (off != want)
		return ENTRY_ERROR("payload at byte %llu, expected at %llu: the file is corrupted",
				   i, type, instance, (unsigned long long)off,
				   (unsigned long long)want);
	if (off > len || size > len - off)
		return ENTRY_ERROR("%llu bytes at byte %llu run past the end of the file "
				   "(%zu bytes): the file is corrupted",
				   i, type, instance, (unsigned long long)size,
				   (unsigned long long)off, len);
	if (!all_zero(file + *pos, off - *pos))
		return ENTRY_ERROR("the padding before it is not zero: the file is corrupted", i,
				   type, instance);
	if (snapshot_file_crc32c(0, file + off, size) != get32(e + ENT_CRC))
		return error_text(err, errlen, -EINVAL,
				  "checksum mismatch in section %zu (type %u, instance %u): "
				  "the file is corrupted",
				  i, type, instance);
#undef ENTRY_ERROR
	*out = (struct snapshot_section){type, instance, file + off, size};
	*pos = off + size;
	return 0;
}

/* Parse file (len bytes, malloc'd) into img, which takes it over; on
 * failure file is freed and img left empty. */
static int parse_owned(uint8_t *file, size_t len, struct snapshot_image *img, char *err,
		       size_t errlen)
{
	struct snapshot_section *sections = NULL;
	uint32_t n;
	uint64_t pos;
	int ret;

	memset(img, 0, sizeof(*img));
	ret = check_prefix(file, len, err, errlen);
	if (ret == 0)
		ret = check_header(file, len, err, errlen);
	if (ret < 0)
		goto fail;
	n = get32(file + OFF_N_SECTIONS);
	sections = calloc(n ? n : 1, sizeof(*sections));
	if (!sections) {
		ret = error_text(err, errlen, -ENOMEM, "out of memory for %u sections", n);
		goto fail;
	}
	pos = HEADER_LEN + (uint64_t)n * ENTRY_LEN;
	for (size_t i = 0; i < n; i++) {
		ret = check_entry(file, len, i, &pos, &sections[i], err, errlen);
		if (ret < 0)
			goto fail;
	}
	if (pos != len) {
		ret = error_text(err, errlen, -EINVAL,
				 "%llu bytes after the last section: the file is corrupted",
				 (unsigned long long)(len - pos));
		goto fail;
	}
	ret = duplicate_error(sections, n, "the file is corrupted", err, errlen);
	if (ret < 0)
		goto fail;
	img->buf = file;
	img->len = len;
	img->sections = sections;
	img->n_sections = n;
	memcpy(img->producer, file + OFF_PRODUCER, SNAPSHOT_PRODUCER_MAX);
	return 0;
fail:
	free(sections);
	free(file);
	return ret;
}

static int too_big(size_t len, char *err, size_t errlen)
{
	return error_text(err, errlen, -EFBIG,
			  "%zu bytes or more, a state file has at most %u: this is not a state "
			  "file (guest memory goes in the memory file)",
			  len, SNAPSHOT_FILE_MAX);
}

int snapshot_file_parse(const void *buf, size_t len, struct snapshot_image *img, char *err,
			size_t errlen)
{
	uint8_t *copy;

	memset(img, 0, sizeof(*img));
	if (len > SNAPSHOT_FILE_MAX)
		return too_big(len, err, errlen);
	copy = malloc(len ? len : 1);
	if (!copy)
		return error_text(err, errlen, -ENOMEM, "out of memory for %zu bytes", len);
	if (len)
		memcpy(copy, buf, len);
	return parse_owned(copy, len, img, err, errlen);
}

int snapshot_file_read(int fd, struct snapshot_image *img, char *err, size_t errlen)
{
	size_t cap = 64 << 10, len = 0;
	uint8_t *buf, *bigger;
	struct stat st;
	off_t at;

	memset(img, 0, sizeof(*img));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		at = lseek(fd, 0, SEEK_CUR);
		if (at >= 0 && st.st_size - at > (off_t)SNAPSHOT_FILE_MAX)
			return too_big((size_t)(st.st_size - at), err, errlen);
		if (at >= 0 && st.st_size > at)
			cap = (size_t)(st.st_size - at) + 1; /* +1: EOF in the first pass */
	}
	buf = malloc(cap);
	if (!buf)
		return error_text(err, errlen, -ENOMEM, "out of memory for %zu bytes", cap);
	for (;;) {
		ssize_t got;

		if (len == cap) {
			if (cap > SNAPSHOT_FILE_MAX) {
				free(buf);
				return too_big(len, err, errlen);
			}
			cap = cap * 2 > SNAPSHOT_FILE_MAX + 1 ? SNAPSHOT_FILE_MAX + 1 : cap * 2;
			bigger = realloc(buf, cap);
			if (!bigger) {
				free(buf);
				return error_text(err, errlen, -ENOMEM,
						  "out of memory for %zu bytes", cap);
			}
			buf = bigger;
		}
		got = read(fd, buf + len, cap - len);
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;

			free(buf);
			return error_text(err, errlen, -e, "read: %s", strerror(e));
		}
		len += (size_t)got;
	}
	return parse_owned(buf, len, img, err, errlen);
}

static int check_write_args(const char *producer, const struct snapshot_section *sections, size_t n,
			    uint64_t *total, char *err, size_t errlen)
{
	size_t plen = producer ? strlen(producer) : SNAPSHOT_PRODUCER_MAX;
	uint64_t pos;

	if (plen >= SNAPSHOT_PRODUCER_MAX)
		return error_text(err, errlen, -EINVAL,
				  "the producer is missing or longer than %u bytes",
				  SNAPSHOT_PRODUCER_MAX - 1);
	for (size_t i = 0; i < plen; i++)
		if (producer[i] < 0x20 || producer[i] >= 0x7f)
			return error_text(
			    err, errlen, -EINVAL,
			    "the producer has byte 0x%02x at %zu: printable ASCII only",
			    (uint8_t)producer[i], i);
	if (n > SNAPSHOT_MAX_SECTIONS)
		return error_text(err, errlen, -EINVAL,
				  "%zu sections, a state file holds at most %u", n,
				  SNAPSHOT_MAX_SECTIONS);
	pos = HEADER_LEN + (uint64_t)n * ENTRY_LEN;
	for (size_t i = 0; i < n; i++) {
		if (sections[i].len && !sections[i].data)
			return error_text(
			    err, errlen, -EINVAL,
			    "section %zu (type %u, instance %u) has %zu bytes and no data", i,
			    sections[i].type, sections[i].instance, sections[i].len);
		if (sections[i].len > SNAPSHOT_FILE_MAX)
			return too_big(sections[i].len, err, errlen);
		pos = align_up(pos) + sections[i].len;
		if (pos > SNAPSHOT_FILE_MAX)
			return too_big((size_t)pos, err, errlen);
	}
	*total = pos;
	return duplicate_error(sections, n, "a section may appear once", err, errlen);
}

/* The whole file in memory (at most SNAPSHOT_FILE_MAX), in the canonical
 * layout parse_owned() accepts. */
static void build_file(uint8_t *file, uint64_t total, const char *producer,
		       const struct snapshot_section *sections, uint32_t n)
{
	uint64_t pos = HEADER_LEN + (uint64_t)n * ENTRY_LEN;

	memcpy(file + OFF_MAGIC, snapshot_magic, sizeof(snapshot_magic));
	put32(file + OFF_VERSION, SNAPSHOT_FORMAT_VERSION);
	put32(file + OFF_HEADER_LEN, HEADER_LEN);
	memcpy(file + OFF_PRODUCER, producer, strlen(producer)); /* the rest is zero */
	put32(file + OFF_N_SECTIONS, n);
	put64(file + OFF_TOTAL_LEN, total);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = file + HEADER_LEN + (size_t)i * ENTRY_LEN;

		pos = align_up(pos);
		put32(e + ENT_TYPE, sections[i].type);
		put32(e + ENT_INSTANCE, sections[i].instance);
		put64(e + ENT_OFFSET, pos);
		put64(e + ENT_LENGTH, sections[i].len);
		put32(e + ENT_CRC, snapshot_file_crc32c(0, sections[i].data, sections[i].len));
		if (sections[i].len)
			memcpy(file + pos, sections[i].data, sections[i].len);
		pos += sections[i].len;
	}
	put32(file + OFF_HEADER_CRC, header_crc(file, n));
}

int snapshot_file_write(int fd, const char *producer, const struct snapshot_section *sections,
			size_t n_sections, char *err, size_t errlen)
{
	uint64_t total = 0;
	uint8_t *file;
	size_t done = 0;
	int ret = check_write_args(producer, sections, n_sections, &total, err, errlen);

	if (ret < 0)
		return ret;
	file = calloc(1, (size_t)total);
	if (!file)
		return error_text(err, errlen, -ENOMEM, "out of memory for %llu bytes",
				  (unsigned long long)total);
	build_file(file, total, producer, sections, (uint32_t)n_sections);
	while (done < total) {
		ssize_t put = write(fd, file + done, (size_t)total - done);

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0) {
			int e = put < 0 ? errno : EIO;

			ret = error_text(err, errlen, -e, "write at byte %zu of %llu: %s", done,
					 (unsigned long long)total, strerror(e));
			break;
		}
		done += (size_t)put;
	}
	free(file);
	return ret;
}

void snapshot_image_free(struct snapshot_image *img)
{
	free(img->sections);
	free(img->buf);
	memset(img, 0, sizeof(*img));
}

const struct snapshot_section *snapshot_image_find(const struct snapshot_image *img, uint32_t type,
						   uint32_t instance)
{
	for (size_t i = 0; i < img->n_sections; i++)
		if (img->sections[i].type == type && img->sections[i].instance == instance)
			return &img->sections[i];
	return NULL;
}
