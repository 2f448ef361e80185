// SPDX-License-Identifier: MIT
/*
 * Diff snapshots (docs/snapshot.md "Diff snapshots"): with dirty page
 * tracking on (machine-config track_dirty_pages, or enable_diff_snapshots /
 * track_dirty_pages on PUT /snapshot/load), every memory slot logs the
 * guest's writes (KVM_MEM_LOG_DIRTY_PAGES, core/vm.c), and a Diff
 * snapshot's memory file holds only the pages written since the last
 * snapshot, or since the restore: a sparse file of the memory's size, to
 * be merged onto the base by the user, as Firecracker documents
 * (docs/snapshotting/snapshot-support.md "Creating diff snapshots").
 *
 * KVM's log is read and cleared at every snapshot, Full or Diff (api.rst
 * KVM_GET_DIRTY_LOG: "the bitmap ... is cleared"; Firecracker: "the
 * snapshot creation resets ... the dirtied page bitmap").  What it gave is
 * kept in vm->dirty_pending until both files are in place, so a snapshot
 * that fails loses no page: the next one writes them (Firecracker made
 * its diff snapshots transactional the same way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/snapshot_dirty.h"
#include "core/vm.h"
#include "lib/log.h"

#define DIRTY_PAGE 4096ull

int snapshot_dirty_check(struct vm *vm, bool diff, char *err, size_t errlen)
{
	if (!diff)
		return 0;
	if (!vm->track_dirty)
		return error_text(err, errlen, -EINVAL,
				  "snapshot_type \"Diff\" needs dirty page tracking, and this VM "
				  "does not track dirty pages: set machine-config "
				  "\"track_dirty_pages\": true before InstanceStart (or "
				  "\"track_dirty_pages\": true on PUT /snapshot/load), or take a "
				  "\"Full\" snapshot");
	/* A device server writes guest memory through its own mapping, which
	 * KVM's log does not see: its rings and buffers would be missing. */
	if (vm->devices && vm->devices->nr)
		return error_text(err, errlen, -EINVAL,
				  "Diff snapshots of VMs with device servers are not supported: "
				  "the servers write guest memory past KVM's dirty log; take a "
				  "\"Full\" snapshot");
	return 0;
}

int snapshot_dirty_collect(struct vm *vm)
{
	const struct gmem *mem = vm->mem;

	if (!vm->track_dirty)
		return 0;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		size_t words = (mem->regions[i].size / DIRTY_PAGE + 63) / 64;
		uint64_t *bits = calloc(words, sizeof(uint64_t));
		/* api.rst KVM_GET_DIRTY_LOG: one bit per page of the slot, the
		 * buffer "set to zero", rounded up to 64 bits */
		struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = bits};

		if (!bits)
			return -ENOMEM;
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int ret = -errno;

			free(bits);
			return ret;
		}
		for (size_t w = 0; w < words; w++)
			vm->dirty_pending[i][w] |= bits[w];
		free(bits);
	}
	return 0;
}

static bool page_pending(const uint64_t *bits, uint64_t page)
{
	return bits[page / 64] >> (page % 64) & 1;
}

int snapshot_dirty_write(struct vm *vm, int mem_fd, uint64_t *pages)
{
	const struct gmem *mem = vm->mem;

	*pages = 0;
	if (ftruncate(mem_fd, (off_t)mem->ram_size) < 0)
		return -errno;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		uint64_t n = r->size / DIRTY_PAGE, at = 0;

		while (at < n) {
			uint64_t end;

			if (!page_pending(vm->dirty_pending[i], at)) {
				at++;
				continue;
			}
			for (end = at; end < n && page_pending(vm->dirty_pending[i], end); end++)
				;
			*pages += end - at;
			/* every dirtied page is written, zeros too: a hole would
			 * leave the base's old page in place at the merge */
			while (at < end) {
				ssize_t w = pwrite(mem_fd, r->host + at * DIRTY_PAGE,
						   (end - at) * DIRTY_PAGE,
						   (off_t)(r->fd_offset + at * DIRTY_PAGE));

				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return w < 0 ? -errno : -EIO;
				at += (uint64_t)w / DIRTY_PAGE;
				if (w % DIRTY_PAGE)
					return -EIO; /* not at a page: stop, as short */
			}
		}
	}
	return 0;
}

void snapshot_dirty_commit(struct vm *vm)
{
	if (!vm->track_dirty)
		return;
	for (unsigned i = 0; i < vm->mem->nr_regions; i++)
		memset(vm->dirty_pending[i], 0,
		       (vm->mem->regions[i].size / DIRTY_PAGE + 63) / 64 * sizeof(uint64_t));
	vm->dirty_base = true;
}
