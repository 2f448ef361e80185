// SPDX-License-Identifier: MIT
/*
 * Minimal stand-in, replaced by branch snap-file (see snapshot_file.h).
 * Layout: a 96-byte header {magic "ISOLASNP", version, n_sections, producer[64],
 * file length, crc32 of the file with this field zero}, a table of
 * {type, instance, offset, len} entries, then the payloads 8-byte aligned.
 */
#define _GNU_SOURCE
#include "lib/snapshot_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

#define SNAPSHOT_MAGIC "ISOLASNP"
#define SNAPSHOT_MAX_SECTIONS 4096
#define SNAPSHOT_MAX_FILE (256u << 20)

struct snapshot_header {
	char magic[8];
	uint32_t version;
	uint32_t n_sections;
	char producer[64];
	uint64_t file_len;
	uint32_t crc;
	uint32_t reserved;
};

struct snapshot_entry {
	uint32_t type, instance;
	uint64_t offset, len;
};

static uint32_t snapshot_crc32(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;

	/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), bit by bit: files are small. */
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
	}
	return ~crc;
}

static size_t snapshot_align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int snapshot_file_write(int fd, const char *producer, const struct snapshot_section *sections,
			size_t n_sections, char *err, size_t errlen)
{
	size_t off = sizeof(struct snapshot_header) + n_sections * sizeof(struct snapshot_entry);
	struct snapshot_header *hdr;
	struct snapshot_entry *table;
	uint8_t *buf;
	size_t total = off;
	int ret = 0;

	if (n_sections > SNAPSHOT_MAX_SECTIONS)
		return error_text(err, errlen, -E2BIG, "too many sections");
	for (size_t i = 0; i < n_sections; i++)
		total += snapshot_align8(sections[i].len);
	if (total > SNAPSHOT_MAX_FILE)
		return error_text(err, errlen, -E2BIG, "the state is too large");
	buf = calloc(1, total);
	if (!buf)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	hdr = (struct snapshot_header *)buf;
	table = (struct snapshot_entry *)(hdr + 1);
	memcpy(hdr->magic, SNAPSHOT_MAGIC, 8);
	hdr->version = SNAPSHOT_FORMAT_VERSION;
	hdr->n_sections = (uint32_t)n_sections;
	snprintf(hdr->producer, sizeof(hdr->producer), "%s", producer ? producer : "");
	hdr->file_len = total;
	for (size_t i = 0; i < n_sections; i++) {
		table[i] = (struct snapshot_entry){sections[i].type, sections[i].instance, off,
						   sections[i].len};
		if (sections[i].len)
			memcpy(buf + off, sections[i].data, sections[i].len);
		off += snapshot_align8(sections[i].len);
	}
	hdr->crc = snapshot_crc32(buf, total);
	for (size_t done = 0; done < total;) {
		ssize_t n = write(fd, buf + done, total - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = error_text(err, errlen, n < 0 ? -errno : -EIO, "write: %s",
					 strerror(n < 0 ? errno : EIO));
			break;
		}
		done += (size_t)n;
	}
	free(buf);
	return ret;
}

int snapshot_file_parse(const void *data, size_t len, struct snapshot_image *img, char *err,
			size_t errlen)
{
	struct snapshot_header hdr;
	const struct snapshot_entry *table;
	uint8_t *buf;
	uint32_t crc;

	memset(img, 0, sizeof(*img));
	if (len < sizeof(hdr))
		return error_text(err, errlen, -EINVAL, "too short for a state file (%zu bytes)",
				  len);
	memcpy(&hdr, data, sizeof(hdr));
	if (memcmp(hdr.magic, SNAPSHOT_MAGIC, 8))
		return error_text(err, errlen, -EINVAL, "not an isola state file (bad magic)");
	if (hdr.version != SNAPSHOT_FORMAT_VERSION)
		return error_text(err, errlen, -EINVAL,
				  "state file format version %u; this isola reads version %u",
				  hdr.version, SNAPSHOT_FORMAT_VERSION);
	if (hdr.file_len != len)
		return error_text(err, errlen, -EINVAL,
				  "the state file is %zu bytes, its header says %llu: truncated?",
				  len, (unsigned long long)hdr.file_len);
	if (hdr.n_sections > SNAPSHOT_MAX_SECTIONS ||
	    sizeof(hdr) + (size_t)hdr.n_sections * sizeof(struct snapshot_entry) > len)
		return error_text(err, errlen, -EINVAL, "bad section count %u", hdr.n_sections);
	buf = malloc(len);
	img->sections = calloc(hdr.n_sections ? hdr.n_sections : 1, sizeof(*img->sections));
	if (!buf || !img->sections) {
		free(buf);
		free(img->sections);
		img->sections = NULL;
		return error_text(err, errlen, -ENOMEM, "out of memory");
	}
	memcpy(buf, data, len);
	memset(buf + offsetof(struct snapshot_header, crc), 0, sizeof(uint32_t));
	crc = snapshot_crc32(buf, len);
	img->buf = buf;
	img->len = len;
	if (crc != hdr.crc) {
		snapshot_image_free(img);
		return error_text(err, errlen, -EINVAL, "the state file is corrupt (bad checksum)");
	}
	table = (const struct snapshot_entry *)(buf + sizeof(hdr));
	for (uint32_t i = 0; i < hdr.n_sections; i++) {
		if (table[i].offset % 8 || table[i].offset > len ||
		    table[i].len > len - table[i].offset) {
			snapshot_image_free(img);
			return error_text(err, errlen, -EINVAL, "section %u lies outside the file",
					  i);
		}
		img->sections[i] = (struct snapshot_section){table[i].type, table[i].instance,
							     buf + table[i].offset, table[i].len};
	}
	img->n_sections = hdr.n_sections;
	memcpy(img->producer, hdr.producer, sizeof(img->producer));
	img->producer[sizeof(img->producer) - 1] = '\0';
	return 0;
}

int snapshot_file_read(int fd, struct snapshot_image *img, char *err, size_t errlen)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	int ret;

	memset(img, 0, sizeof(*img));
	if (!buf)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t n;

		if (len == cap) {
			uint8_t *bigger = cap < SNAPSHOT_MAX_FILE ? realloc(buf, cap * 2) : NULL;

			if (!bigger) {
				free(buf);
				return error_text(err, errlen, -E2BIG,
						  "the state file is too large");
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			free(buf);
			return error_text(err, errlen, ret, "read: %s", strerror(-ret));
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	ret = snapshot_file_parse(buf, len, img, err, errlen);
	free(buf);
	return ret;
}

void snapshot_image_free(struct snapshot_image *img)
{
	free(img->buf);
	free(img->sections);
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
