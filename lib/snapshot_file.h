/* SPDX-License-Identifier: MIT */
/*
 * The snapshot state file's container (issue 16; the byte layout and the
 * compatibility promise are in docs/snapshot.md, "State file format"): a
 * versioned, checksummed list of typed, instanced blobs.  What the blobs hold
 * (vCPU registers, the IOAPIC, a device server's state) is the caller's
 * (core/snapshot.h); this module only writes them, and refuses any file that
 * is not exactly what it would have written.
 *
 * Errors: 0 or -errno, and a sentence in err (without the file's name: the
 * caller adds "state file PATH: "), which never contains a byte of the file
 * unescaped.
 *   -EINVAL           not a state file, truncated, corrupted (checksums),
 *                     malformed (lengths, offsets, flags, duplicates)
 *   -EPROTONOSUPPORT  a state file of another format version
 *   -EFBIG            more than SNAPSHOT_FILE_MAX bytes
 *   -EIO              a read or write that made no progress; other errors
 *                     of read(2)/write(2) are passed through (-ENOSPC, ...)
 *   -ENOMEM
 */
#ifndef ISOLA_LIB_SNAPSHOT_FILE_H
#define ISOLA_LIB_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_FORMAT_VERSION 1u
/* State files are small (registers and device state; guest memory is a
 * separate file): a bound on what a reader allocates for a hostile file. */
#define SNAPSHOT_FILE_MAX (64u << 20)
#define SNAPSHOT_MAX_SECTIONS 4096u
/* Section payloads start at this alignment, in the file and in memory. */
#define SNAPSHOT_SECTION_ALIGN 8u
#define SNAPSHOT_PRODUCER_MAX 64u /* the producer field, its NUL included */

/* One section of a state file: a typed, instanced blob (e.g. type = vCPU
 * registers, instance = vCPU index).  Types are the caller's (core/snapshot.h). */
struct snapshot_section {
	uint32_t type;
	uint32_t instance;
	const void *data; /* in a parsed image: SNAPSHOT_SECTION_ALIGN-aligned */
	size_t len;
};

/* A parsed state file: sections point into buf (owned). */
struct snapshot_image {
	void *buf;
	size_t len;
	struct snapshot_section *sections; /* in the order they were written */
	size_t n_sections;
	char producer[64]; /* the isola version that wrote it, NUL-terminated */
};

/*
 * Write the header, the sections and the checksums to fd (from its current
 * offset; the caller opened it O_CREAT|O_TRUNC|O_WRONLY).  producer = isola's
 * version string, ISOLA_VERSION ("0.1.0"; messages say "written by isola
 * 0.1.0"): printable ASCII, < SNAPSHOT_PRODUCER_MAX bytes.  Sections are
 * written in the order given; a repeated (type, instance) is refused.  No
 * fsync: durability is the caller's choice.  A pipe without a reader raises
 * SIGPIPE as for any write(2).
 */
int snapshot_file_write(int fd, const char *producer, const struct snapshot_section *sections,
			size_t n_sections, char *err, size_t errlen);
/* Parse/validate a whole file image in memory (the fuzz target's entry).  On
 * success img->buf = a copy of buf; sections point into it.  On failure img
 * is left empty (snapshot_image_free() on it is harmless). */
int snapshot_file_parse(const void *buf, size_t len, struct snapshot_image *img, char *err,
			size_t errlen);
/* Read the whole file from fd's current offset to its end (bounded:
 * SNAPSHOT_FILE_MAX bytes) and parse it. */
int snapshot_file_read(int fd, struct snapshot_image *img, char *err, size_t errlen);
void snapshot_image_free(struct snapshot_image *img);
/* The section (type, instance), or NULL. */
const struct snapshot_section *snapshot_image_find(const struct snapshot_image *img, uint32_t type,
						   uint32_t instance);

/* CRC32C (Castagnoli, the iSCSI CRC: RFC 3720 §12.1), as the file's checksums use it:
 * crc = 0 to start, the result of one call continues in the next. */
uint32_t snapshot_file_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
