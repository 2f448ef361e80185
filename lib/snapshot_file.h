/* SPDX-License-Identifier: MIT */
/*
 * Minimal stand-in, replaced by branch snap-file: the state file of a
 * snapshot as a container of typed sections (docs/snapshot.md).  Only the
 * interface below is the contract; the layout this stand-in writes is its
 * own.  A state file is untrusted input: parse checks every offset and
 * length and a CRC-32 over the whole file before it hands out a section.
 */
#ifndef ISOLA_LIB_SNAPSHOT_FILE_H
#define ISOLA_LIB_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_FORMAT_VERSION 1u

/* One section: payloads are 8-byte aligned in the file and in the image. */
struct snapshot_section {
	uint32_t type;
	uint32_t instance;
	const void *data;
	size_t len;
};

/* A parsed file: sections point into buf. */
struct snapshot_image {
	void *buf;
	size_t len;
	struct snapshot_section *sections;
	size_t n_sections;
	char producer[64];
};

/* Write a whole state file to fd (at its current offset).  0 or -errno with
 * a sentence in err. */
int snapshot_file_write(int fd, const char *producer, const struct snapshot_section *sections,
			size_t n_sections, char *err, size_t errlen);
/* Parse buf (the image keeps a copy); 0 or -EINVAL / -ENOMEM with err. */
int snapshot_file_parse(const void *buf, size_t len, struct snapshot_image *img, char *err,
			size_t errlen);
/* Read fd to its end and parse it. */
int snapshot_file_read(int fd, struct snapshot_image *img, char *err, size_t errlen);
void snapshot_image_free(struct snapshot_image *img);
/* The section (type, instance), or NULL. */
const struct snapshot_section *snapshot_image_find(const struct snapshot_image *img, uint32_t type,
						   uint32_t instance);

#endif
