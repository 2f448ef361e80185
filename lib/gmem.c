// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "lib/gmem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"

static int gmem_map_fd_flags(int fd, uint64_t offset, uint64_t len, int flags, void **out)
{
	const uint64_t align = GMEM_HUGE_PAGE_SIZE;
	uint64_t span, reserve_len;
	uint8_t *reserve, *at, *end;
	void *map;

	if (!len || len > SIZE_MAX / 2 || offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	/*
	 * A 2 MiB page is mapped by one PMD entry only if the virtual address
	 * and the file offset agree modulo 2 MiB: shmem's THP fault path checks
	 * it (thp_vma_suitable_order() in mm/shmem.c), and KVM maps a 2 MiB
	 * guest page only over such a host mapping.  shmem's get_unmapped_area
	 * aligns by itself only while shmem_enabled is not never, so reserve
	 * 2 MiB more address space than needed, map over the right part of it
	 * (MAP_FIXED) and give the rest back.  hugetlbfs rounds a mapping up to
	 * whole huge pages, so the reservation covers that too.
	 */
	span = (len + align - 1) & ~(align - 1);
	reserve_len = span + align;
	reserve =
	    mmap(NULL, reserve_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserve == MAP_FAILED)
		return -errno;
	at = reserve + ((offset - (uint64_t)(uintptr_t)reserve) & (align - 1));
	map = mmap(at, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		int ret = -errno;

		munmap(reserve, reserve_len);
		return ret;
	}
	end = at + ((len + 4095) & ~4095ull);
	if (at > reserve)
		munmap(reserve, (size_t)(at - reserve));
	if (reserve + reserve_len > end && munmap(end, (size_t)(reserve + reserve_len - end)) < 0) {
		/* hugetlbfs mapped whole 2 MiB pages: the rest starts after them */
		end = at + span;
		if (reserve + reserve_len > end)
			munmap(end, (size_t)(reserve + reserve_len - end));
	}
	/* Advice only: shmem allocates 2 MiB pages for this mapping when
	 * shmem_enabled is advise (or always, within_size); hugetlbfs and
	 * other files ignore it. */
	madvise(map, len, MADV_HUGEPAGE);
	/* Guest RAM must never end up in a core dump. */
	madvise(map, len, MADV_DONTDUMP);
	*out = map;
	return 0;
}

int gmem_map_fd(int fd, uint64_t offset, uint64_t len, int noreserve, void **out)
{
	return gmem_map_fd_flags(fd, offset, len, MAP_SHARED | (noreserve ? MAP_NORESERVE : 0),
				 out);
}

static int gmem_map_region(struct gmem *mem, uint64_t gpa, uint64_t size, uint64_t fd_offset)
{
	struct gmem_region *region;
	void *host;
	int ret;

	if (mem->nr_regions >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	/*
	 * MAP_SHARED: device servers map the same memfd (vhost-user
	 * SET_MEM_TABLE); no MAP_POPULATE: pages are faulted in only when
	 * touched.  hugetlbfs reserves the region's huge pages now, unless
	 * MAP_NORESERVE: without the reservation a fault with the pool empty
	 * would be a SIGBUS in whichever process touched the page first
	 * (Documentation/admin-guide/mm/hugetlbpage.rst), so -ENOMEM here it is.
	 */
	ret = gmem_map_fd(mem->fd, fd_offset, size, mem->backing == GMEM_BACKING_SHMEM, &host);
	if (ret)
		return ret;
	region = &mem->regions[mem->nr_regions++];
	region->gpa = gpa;
	region->size = size;
	region->host = host;
	region->fd_offset = fd_offset;
	return 0;
}

static int gmem_memfd(enum gmem_backing backing)
{
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;

	/* memfd_create(2): MFD_HUGETLB with MFD_ALLOW_SEALING since Linux 4.16. */
	if (backing == GMEM_BACKING_HUGETLB_2M)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	return memfd_create("isola-guest-ram", flags);
}

int gmem_create(struct gmem *mem, uint64_t ram_size, enum gmem_backing backing)
{
	uint64_t low_size, high_size;
	int ret;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	mem->backing = backing;
	if (ram_size < LAYOUT_MIN_MEMORY || ram_size % 4096)
		return -EINVAL;
	/* Both regions then start and end on 2 MiB pages: 3 GiB is one too. */
	if (backing == GMEM_BACKING_HUGETLB_2M && ram_size % GMEM_HUGE_PAGE_SIZE)
		return -EINVAL;
	low_size = ram_size < LAYOUT_MMIO_HOLE_START ? ram_size : LAYOUT_MMIO_HOLE_START;
	high_size = ram_size - low_size;

	mem->fd = gmem_memfd(backing);
	if (mem->fd < 0)
		return -errno;
	/* On hugetlbfs too, ftruncate only sets the size: nothing is allocated
	 * or reserved before the mmap below. */
	if (ftruncate(mem->fd, (off_t)ram_size) < 0) {
		ret = -errno;
		goto fail;
	}
	/* The size never changes while device servers map it. */
	fcntl(mem->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ret = gmem_map_region(mem, 0, low_size, 0);
	if (ret)
		goto fail;
	if (high_size) {
		ret = gmem_map_region(mem, LAYOUT_HIGH_RAM_START, high_size, low_size);
		if (ret)
			goto fail;
	}
	mem->ram_size = ram_size;
	return 0;
fail:
	gmem_destroy(mem);
	return ret;
}

int gmem_create_private(struct gmem *mem, int fd, uint64_t ram_size)
{
	uint64_t low_size, high_size;
	struct stat st;
	void *host;
	int ret;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	mem->backing = GMEM_BACKING_SHMEM;
	if (ram_size < LAYOUT_MIN_MEMORY || ram_size % 4096)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_size)
		return -EMEDIUMTYPE;
	low_size = ram_size < LAYOUT_MMIO_HOLE_START ? ram_size : LAYOUT_MMIO_HOLE_START;
	high_size = ram_size - low_size;
	/* The same split as gmem_create, so file offset = memfd offset.
	 * MAP_PRIVATE: the guest's writes go to anonymous copies, the file is
	 * never written, and many VMs share its page-cache pages;
	 * MAP_NORESERVE: nothing is accounted before it is written. */
	for (int i = 0; i < 2; i++) {
		uint64_t size = i ? high_size : low_size, offset = i ? low_size : 0;

		if (!size)
			continue;
		ret = gmem_map_fd_flags(fd, offset, size, MAP_PRIVATE | MAP_NORESERVE, &host);
		if (ret) {
			gmem_destroy(mem);
			return ret;
		}
		mem->regions[mem->nr_regions++] = (struct gmem_region){
		    .gpa = i ? LAYOUT_HIGH_RAM_START : 0,
		    .size = size,
		    .host = host,
		    .fd_offset = offset,
		};
	}
	mem->ram_size = ram_size;
	return 0;
}

void gmem_init_empty(struct gmem *mem)
{
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

int gmem_add_region(struct gmem *mem, uint64_t gpa, uint64_t size, uint8_t *host)
{
	struct gmem_region *region;

	if (!size || !host || gpa + size < gpa)
		return -EINVAL;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];

		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EINVAL;
	}
	if (mem->nr_regions >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	region = &mem->regions[mem->nr_regions++];
	*region = (struct gmem_region){.gpa = gpa, .size = size, .host = host, .fd_offset = 0};
	region->borrowed = 1;
	mem->ram_size += size;
	return 0;
}

void gmem_destroy(struct gmem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++)
		if (!mem->regions[i].borrowed)
			munmap(mem->regions[i].host, mem->regions[i].size);
	mem->nr_regions = 0;
	if (mem->fd >= 0)
		close(mem->fd);
	mem->fd = -1;
}

int gmem_reset(struct gmem *mem)
{
	if (mem->fd < 0 || !mem->ram_size)
		return -EINVAL;
	if (fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)mem->ram_size) < 0)
		return -errno;
	if (mem->backing != GMEM_BACKING_HUGETLB_2M)
		return 0;
	/*
	 * The punched pages that had been faulted in gave their reservations
	 * back (hugetlb_unreserve_pages(), see gmem_zero): a new mapping
	 * reserves what its range lacks, so a pool taken meanwhile is -ENOMEM
	 * now rather than a SIGBUS at the next touch.
	 */
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct gmem_region *r = &mem->regions[i];
		void *host;

		if (r->borrowed)
			continue;
		host = mmap(r->host, r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			    mem->fd, (off_t)r->fd_offset);
		if (host == MAP_FAILED)
			return -errno;
		madvise(host, r->size, MADV_DONTDUMP);
	}
	return 0;
}

void *gmem_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_contains(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	return gmem_ptr(mem, gpa, len) != NULL;
}

int gmem_read(const struct gmem *mem, uint64_t gpa, void *dst, size_t len)
{
	void *src = gmem_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_write(const struct gmem *mem, uint64_t gpa, const void *src, size_t len)
{
	void *dst = gmem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_zero(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *host = gmem_ptr(mem, gpa, len);
	uint64_t first_page, last_page;

	if (!len)
		return 0;
	if (!host)
		return -EFAULT;
	first_page = (gpa + 4095) & ~4095ull;
	last_page = (gpa + len) & ~4095ull;
	/*
	 * Not on hugetlbfs: a hole punched over a page that was faulted in
	 * hands its reservation back to the pool (hugetlb_unreserve_pages()),
	 * and the next touch may then find the pool empty: SIGBUS.  The pages
	 * are reserved for us anyway; zeroing them costs no more pool.
	 */
	if (mem->fd < 0 || first_page >= last_page || mem->backing == GMEM_BACKING_HUGETLB_2M) {
		memset(host, 0, len);
		return 0;
	}
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (r->borrowed || fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					     (off_t)(r->fd_offset + first_page - r->gpa),
					     (off_t)(last_page - first_page)) < 0) {
			memset(host, 0, len);
			return 0;
		}
		memset(host, 0, first_page - gpa);
		memset(host + (last_page - gpa), 0, gpa + len - last_page);
		return 0;
	}
	return -EFAULT;
}

uint64_t gmem_low_ram_end(const struct gmem *mem)
{
	return mem->nr_regions ? mem->regions[0].gpa + mem->regions[0].size : 0;
}
