/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: memfd-backed regions mapped MAP_SHARED, and the one checked
 * way to turn a guest-physical address into a host pointer.  Never cast a GPA
 * to a pointer: use gmem_ptr()/gmem_read()/gmem_write(), which check
 * gpa + len for overflow and that the range lies inside a single region.
 */
#ifndef ISOLA_LIB_GMEM_H
#define ISOLA_LIB_GMEM_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 8 /* vhost-user VHOST_MEMORY_BASELINE_NREGIONS */
/* x86-64's PMD page: one page-table entry maps 2 MiB (THP and hugetlbfs). */
#define GMEM_HUGE_PAGE_SIZE (2ull << 20)

/* What the memfd under guest RAM lives on. */
enum gmem_backing {
	/* shmem: 4 KiB pages, or 2 MiB transparent huge pages where the host's
	 * /sys/kernel/mm/transparent_hugepage/shmem_enabled allows them. */
	GMEM_BACKING_SHMEM,
	/* hugetlbfs (MFD_HUGETLB | MFD_HUGE_2MB): 2 MiB pages from the host's
	 * pool, all reserved when the memory is created. */
	GMEM_BACKING_HUGETLB_2M,
};

struct gmem_region {
	uint64_t gpa;       /* first guest-physical address */
	uint64_t size;      /* bytes */
	uint8_t *host;      /* host mapping (MAP_SHARED) */
	uint64_t fd_offset; /* offset of this region in the memfd */
	int borrowed;       /* mapping owned by the caller (gmem_add_region) */
};

struct gmem {
	int fd;             /* memfd holding all regions, -1 if none */
	enum gmem_backing backing; /* what the memfd lives on */
	uint64_t ram_size;  /* total RAM bytes (sum of region sizes) */
	unsigned nr_regions;
	struct gmem_region regions[GMEM_MAX_REGIONS];
};

/*
 * Create guest RAM of ram_size bytes laid out per arch/x86/layout.h: one
 * region below the 32-bit MMIO hole, and the rest above 4 GiB.  Memory is not
 * pre-faulted.  GMEM_BACKING_HUGETLB_2M needs ram_size to be a multiple of
 * 2 MiB (-EINVAL) and fails with -ENOMEM when the host's pool of 2 MiB pages
 * cannot reserve all of it.  Returns 0 or -errno.
 */
int gmem_create(struct gmem *mem, uint64_t ram_size, enum gmem_backing backing);
void gmem_destroy(struct gmem *mem);
/*
 * Guest RAM of ram_size bytes restored from a snapshot's memory file fd,
 * laid out as gmem_create lays it out (file offset = memfd offset), mapped
 * MAP_PRIVATE: lazy and copy-on-write, the file is never written and is
 * not read ahead.  No memfd (fd -1): no device server can map it.  The
 * caller may close fd afterwards.  -EMEDIUMTYPE if fd is not a regular
 * file of exactly ram_size bytes; 0 or -errno.
 */
int gmem_create_private(struct gmem *mem, int fd, uint64_t ram_size);
/*
 * Empty guest RAM for the next boot (a reboot that keeps it): every page is
 * punched out of the memfd, so it reads as zero, as new memory would, and
 * its host memory is freed now.  The mappings stay where they are, except
 * that hugetlbfs regions are mapped again in place to reserve their pages
 * anew.  Returns 0 or -errno (-ENOMEM: the hugetlb pool was taken).
 */
int gmem_reset(struct gmem *mem);
/*
 * Map [offset, offset+len) of fd MAP_SHARED and read-write at an address
 * congruent to offset modulo 2 MiB, advised MADV_HUGEPAGE and MADV_DONTDUMP:
 * the one way guest RAM is mapped, by the core and by device servers.
 * noreserve adds MAP_NORESERVE.  Returns 0 with *out set, or -errno.
 */
int gmem_map_fd(int fd, uint64_t offset, uint64_t len, int noreserve, void **out);
/* Start an empty map (fd -1, no regions), for a process that maps memory it
 * was given (a vhost-user backend's SET_MEM_TABLE). */
void gmem_init_empty(struct gmem *mem);
/* Add an already-mapped region; the caller keeps ownership of the mapping.
 * Returns 0, -ENOSPC, or -EINVAL (empty, overflowing or overlapping). */
int gmem_add_region(struct gmem *mem, uint64_t gpa, uint64_t size, uint8_t *host);

/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *gmem_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len);
/* Copy to/from guest memory; -EFAULT if the range is not all guest RAM. */
int gmem_read(const struct gmem *mem, uint64_t gpa, void *dst, size_t len);
int gmem_write(const struct gmem *mem, uint64_t gpa, const void *src, size_t len);
/* Zero [gpa, gpa+len) without faulting in whole pages: page-aligned parts
 * are punched out of the memfd (they read back as zero), edges memset.
 * -EFAULT if the range is not all guest RAM. */
int gmem_zero(const struct gmem *mem, uint64_t gpa, uint64_t len);
/* True if [gpa, gpa+len) is inside one RAM region (len 0 is never valid). */
int gmem_contains(const struct gmem *mem, uint64_t gpa, uint64_t len);
/* Highest guest-physical address + 1 that is RAM below 4 GiB. */
uint64_t gmem_low_ram_end(const struct gmem *mem);

#endif
