// SPDX-License-Identifier: MIT
/*
 * Snapshot of a paused VM (core/snapshot.h, docs/snapshot.md): its state to
 * a state file, its RAM to a memory file.  The KVM facts come from
 * Documentation/virt/kvm/api.rst (cited by ioctl name); the capture runs
 * on the event loop while every vCPU is parked (vm_pause), so their ioctls
 * do not block on KVM_RUN.  The restore is core/snapshot_restore.c.
 */
#define _GNU_SOURCE
#include "core/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/device_set.h"
#include "core/snapshot_devices.h"
#include "core/snapshot_dirty.h"
#include "core/version.h"
#include "core/vm.h"
#include "lib/log.h"

#define SNAPSHOT_VCPU_SECTIONS 11
#define SNAPSHOT_PLATFORM_SECTIONS 6

/* The sections being written; each payload is malloc'd. */
struct snapshot_writer {
	struct snapshot_section *sections;
	size_t n, cap;
};

static int writer_add(struct snapshot_writer *w, uint32_t type, uint32_t instance, void *data,
		      size_t len)
{
	if (!data)
		return -ENOMEM;
	if (w->n == w->cap) {
		free(data);
		return -ENOSPC;
	}
	w->sections[w->n++] = (struct snapshot_section){type, instance, data, len};
	return 0;
}

static int writer_add_cb(void *writer, uint32_t type, uint32_t instance, void *data, size_t len)
{
	return writer_add(writer, type, instance, data, len);
}

static void *copy_of(const void *src, size_t len)
{
	void *p = malloc(len);

	if (p)
		memcpy(p, src, len);
	return p;
}

static void writer_free(struct snapshot_writer *w)
{
	for (size_t i = 0; i < w->n; i++)
		free((void *)w->sections[i].data);
	free(w->sections);
}

static uint64_t snapshot_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- vCPUs ------------------------------------------------------------- */

/* A fixed-size KVM_GET_* into a section. */
static int capture_fixed(struct snapshot_writer *w, int fd, unsigned long request, uint32_t type,
			 uint32_t index, size_t len)
{
	void *buf = calloc(1, len);

	if (!buf)
		return -ENOMEM;
	if (ioctl(fd, request, buf) < 0) {
		int ret = -errno;

		free(buf);
		return ret;
	}
	return writer_add(w, type, index, buf, len);
}

static int capture_cpuid(struct snapshot_writer *w, struct vcpu *vcpu)
{
	size_t len =
	    sizeof(struct kvm_cpuid2) + SNAPSHOT_MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, len);
	void *entries;
	int ret;

	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = SNAPSHOT_MAX_CPUID;
	/* api.rst KVM_GET_CPUID2: the CPUID as set by KVM_SET_CPUID2. */
	if (ioctl(vcpu->fd, KVM_GET_CPUID2, cpuid) < 0) {
		ret = -errno;
		free(cpuid);
		return ret;
	}
	entries = copy_of(cpuid->entries, cpuid->nent * sizeof(struct kvm_cpuid_entry2));
	ret = writer_add(w, SNAPSHOT_VCPU_CPUID, vcpu->index, entries,
			 cpuid->nent * sizeof(struct kvm_cpuid_entry2));
	free(cpuid);
	return ret;
}

static int capture_xsave(struct snapshot_writer *w, struct vm *vm, struct vcpu *vcpu)
{
	/* api.rst KVM_GET_XSAVE2: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM
	 * gives the size; without it, KVM_GET_XSAVE's 4 KiB. */
	int size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	unsigned long request = KVM_GET_XSAVE2;
	void *buf;

	if (size < (int)sizeof(struct kvm_xsave)) {
		size = sizeof(struct kvm_xsave);
		request = KVM_GET_XSAVE;
	}
	if ((unsigned)size > SNAPSHOT_MAX_XSAVE)
		return -E2BIG;
	buf = calloc(1, (size_t)size);
	if (!buf)
		return -ENOMEM;
	if (ioctl(vcpu->fd, request, buf) < 0) {
		int ret = -errno;

		free(buf);
		return ret;
	}
	return writer_add(w, SNAPSHOT_VCPU_XSAVE, vcpu->index, buf, (size_t)size);
}

/* The MSRs KVM can save (KVM_GET_MSR_INDEX_LIST: msrs_to_save and the
 * emulated ones, kvmclock's and IA32_TSC among them); *out malloc'd. */
static int msr_index_list(struct vm *vm, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;

	/* api.rst KVM_GET_MSR_INDEX_LIST: E2BIG with nmsrs set to the count. */
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	if (!probe.nmsrs || probe.nmsrs > SNAPSHOT_MAX_MSRS)
		return -E2BIG;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int ret = -errno;

		free(list);
		return ret;
	}
	*out = list;
	return 0;
}

int snapshot_msrs_transfer(int fd, unsigned long request, struct kvm_msrs *msrs)
{
	struct kvm_msr_entry *all = msrs->entries;
	uint32_t total = msrs->nmsrs, done = 0, at = 0;
	struct kvm_msrs *part = calloc(1, sizeof(*part) + total * sizeof(*all));

	if (!part)
		return -ENOMEM;
	while (at < total) {
		int n;

		/* KVM takes fewer than MAX_IO_MSRS (256) a call and refuses the
		 * whole call otherwise (arch/x86/kvm/x86.c msr_io: -E2BIG) */
		part->nmsrs = total - at < 255 ? total - at : 255;
		memcpy(part->entries, all + at, part->nmsrs * sizeof(*all));
		n = ioctl(fd, request, part);
		if (n < 0) {
			n = -errno;
			free(part);
			return n;
		}
		memcpy(all + at, part->entries, (size_t)n * sizeof(*all));
		done += (uint32_t)n;
		at += (uint32_t)n;
		if ((uint32_t)n < part->nmsrs) {
			log_debug("snapshot: MSR 0x%x skipped (%s)", all[at].index,
				  request == KVM_GET_MSRS ? "KVM cannot read it"
							  : "KVM refused its value");
			all[at++].index = ~0u;
		}
	}
	free(part);
	return (int)done;
}

static int capture_msrs(struct snapshot_writer *w, struct vcpu *vcpu,
			const struct kvm_msr_list *list)
{
	struct kvm_msrs *msrs =
	    calloc(1, sizeof(*msrs) + list->nmsrs * sizeof(struct kvm_msr_entry));
	struct snapshot_msr *out;
	uint32_t n = 0;
	int ret;

	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = list->nmsrs;
	for (uint32_t i = 0; i < list->nmsrs; i++)
		msrs->entries[i].index = list->indices[i];
	ret = snapshot_msrs_transfer(vcpu->fd, KVM_GET_MSRS, msrs);
	out = ret < 0 ? NULL : calloc(list->nmsrs, sizeof(*out));
	if (ret >= 0 && !out)
		ret = -ENOMEM;
	if (ret >= 0) {
		for (uint32_t i = 0; i < list->nmsrs; i++)
			if (msrs->entries[i].index != ~0u)
				out[n++] = (struct snapshot_msr){msrs->entries[i].index, 0,
								 msrs->entries[i].data};
		ret = writer_add(w, SNAPSHOT_VCPU_MSRS, vcpu->index, out,
				 n * sizeof(struct snapshot_msr));
	}
	free(msrs);
	return ret;
}

static int capture_tsc_offset(struct snapshot_writer *w, struct vcpu *vcpu)
{
	struct snapshot_vcpu_tsc *tsc = calloc(1, sizeof(*tsc));
	struct kvm_device_attr attr = {
	    .group = KVM_VCPU_TSC_CTRL,
	    .attr = KVM_VCPU_TSC_OFFSET,
	};

	if (!tsc)
		return -ENOMEM;
	/* devices/vcpu.rst 4.1: guest_tsc = host_tsc + offset (Linux 5.16+;
	 * without it the restore writes IA32_TSC). */
	attr.addr = (uint64_t)(uintptr_t)&tsc->offset;
	if (ioctl(vcpu->fd, KVM_GET_DEVICE_ATTR, &attr) == 0)
		tsc->flags = SNAPSHOT_TSC_OFFSET_VALID;
	return writer_add(w, SNAPSHOT_VCPU_TSC, vcpu->index, tsc, sizeof(*tsc));
}

static int capture_vcpu(struct snapshot_writer *w, struct vm *vm, struct vcpu *vcpu,
			const struct kvm_msr_list *msr_list, const char **what)
{
	static const struct {
		unsigned long request;
		uint32_t type;
		size_t len;
		const char *name;
	} fixed[] = {
	    {KVM_GET_REGS, SNAPSHOT_VCPU_REGS, sizeof(struct kvm_regs), "KVM_GET_REGS"},
	    {KVM_GET_SREGS, SNAPSHOT_VCPU_SREGS, sizeof(struct kvm_sregs), "KVM_GET_SREGS"},
	    {KVM_GET_XCRS, SNAPSHOT_VCPU_XCRS, sizeof(struct kvm_xcrs), "KVM_GET_XCRS"},
	    {KVM_GET_LAPIC, SNAPSHOT_VCPU_LAPIC, sizeof(struct kvm_lapic_state), "KVM_GET_LAPIC"},
	    {KVM_GET_VCPU_EVENTS, SNAPSHOT_VCPU_EVENTS, sizeof(struct kvm_vcpu_events),
	     "KVM_GET_VCPU_EVENTS"},
	    {KVM_GET_MP_STATE, SNAPSHOT_VCPU_MP_STATE, sizeof(struct kvm_mp_state),
	     "KVM_GET_MP_STATE"},
	    {KVM_GET_DEBUGREGS, SNAPSHOT_VCPU_DEBUGREGS, sizeof(struct kvm_debugregs),
	     "KVM_GET_DEBUGREGS"},
	};
	int ret;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		*what = fixed[i].name;
		ret = capture_fixed(w, vcpu->fd, fixed[i].request, fixed[i].type, vcpu->index,
				    fixed[i].len);
		if (ret)
			return ret;
	}
	*what = "KVM_GET_CPUID2";
	ret = capture_cpuid(w, vcpu);
	if (!ret) {
		*what = "KVM_GET_XSAVE2";
		ret = capture_xsave(w, vm, vcpu);
	}
	if (!ret) {
		*what = "KVM_GET_MSRS";
		ret = capture_msrs(w, vcpu, msr_list);
	}
	if (!ret) {
		*what = "KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET)";
		ret = capture_tsc_offset(w, vcpu);
	}
	return ret;
}

/* ---- the VM and its platform ------------------------------------------- */

/* kvmclock's per-vCPU time structure (Documentation/virt/kvm/x86/msr.rst,
 * MSR_KVM_SYSTEM_TIME_NEW: "struct pvclock_vcpu_time_info", 32 bytes) */
struct snapshot_pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
};
_Static_assert(sizeof(struct snapshot_pvclock) == 32, "the ABI's 32 bytes");
#define SNAPSHOT_MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

/* vCPU vcpu's value of MSR index in the sections captured so far. */
static bool writer_msr(const struct snapshot_writer *w, unsigned vcpu, uint32_t index,
		       uint64_t *value)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct snapshot_msr *m = w->sections[i].data;

		if (w->sections[i].type != SNAPSHOT_VCPU_MSRS || w->sections[i].instance != vcpu)
			continue;
		for (size_t k = 0; k < w->sections[i].len / sizeof(*m); k++)
			if (m[k].index == index) {
				*value = m[k].data;
				return true;
			}
	}
	return false;
}

/* vCPU vcpu's captured TSC offset, or NULL when KVM has none to give. */
static const struct snapshot_vcpu_tsc *writer_tsc(const struct snapshot_writer *w, unsigned vcpu)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct snapshot_vcpu_tsc *tsc = w->sections[i].data;

		if (w->sections[i].type == SNAPSHOT_VCPU_TSC && w->sections[i].instance == vcpu)
			return tsc->flags & SNAPSHOT_TSC_OFFSET_VALID ? tsc : NULL;
	}
	return NULL;
}

/*
 * The kvmclock time vCPU 0's guest reads at the TSC value captured with its
 * MSRs (*tsc), from its own time structure (msr.rst: time = system_time +
 * ((tsc - tsc_timestamp) scaled by tsc_shift, then * tsc_to_system_mul >>
 * 32)).  KVM_GET_CLOCK answers with the host's view (its kernel clock plus
 * the VM's offset), which is the guest's only while KVM keeps them together
 * (KVM_CLOCK_TSC_STABLE, its "master clock" on a host with a stable TSC).
 * Otherwise the guest's clock runs on its TSC between KVM's updates and
 * drifts from the host's: in the nested test (L1 under QEMU's TCG,
 * clocksource hpet) L2's time from its TSC was 64 ms to 3.15 s behind
 * KVM_GET_CLOCK's (the longer the VM sat paused, the more), and a restore
 * that set KVM_GET_CLOCK's time stepped L2's kvm-clock that far past its
 * TSC at once (L2's clocksource watchdog marked its TSC unstable).  QEMU
 * reads the guest's structure in this case too (hw/i386/kvm/clock.c,
 * kvmclock_current_nsec).  The time is computed from the very TSC value
 * the snapshot keeps, so that the two are one pair: a TSC read apart from
 * it (KVM_GET_MSRS again, microseconds to milliseconds later on a loaded
 * host) would put the restored TSC that far from the restored clock.  The
 * structure is guest memory (the guest could write anything there): only
 * its own clock is at stake.  0 with *ns and *tsc set, or -errno when there
 * is none to read (kvmclock not enabled, an update in progress, not in RAM).
 */
static int guest_kvmclock_ns(const struct snapshot_writer *w, struct vm *vm, uint64_t *ns,
			     uint64_t *tsc)
{
	struct snapshot_pvclock pv;
	uint64_t system_time, delta;

	if (!writer_msr(w, 0, SNAPSHOT_MSR_KVM_SYSTEM_TIME_NEW, &system_time) ||
	    !writer_msr(w, 0, MSR_IA32_TSC, tsc))
		return -ENOENT;
	/* bit 0: enabled; the structure is 4-byte aligned (msr.rst) */
	if (!(system_time & 1) || gmem_read(vm->mem, system_time & ~3ull, &pv, sizeof(pv)))
		return -ENOENT;
	if (pv.version & 1 || !pv.tsc_to_system_mul)
		return -EAGAIN; /* odd: KVM was writing it (not while parked) */
	delta = *tsc - pv.tsc_timestamp;
	if (pv.tsc_shift < 0)
		delta >>= -pv.tsc_shift > 63 ? 63 : -pv.tsc_shift;
	else
		delta <<= pv.tsc_shift > 63 ? 63 : pv.tsc_shift;
	*ns = pv.system_time + (uint64_t)(((unsigned __int128)delta * pv.tsc_to_system_mul) >> 32);
	return 0;
}

/*
 * After the vCPUs' sections: the clock is saved as a pair with the TSCs
 * (devices/vcpu.rst 4.1 steps 1-2: kvmclock's time guest_src and the host
 * TSC tsc_src at that same instant, with each vCPU's offset ofs_src).
 * KVM_GET_CLOCK gives both at once when KVM_CLOCK_TSC_STABLE and
 * KVM_CLOCK_HOST_TSC are set (the offsets stay put meanwhile).  Without the
 * master clock the guest's own time is saved, computed at vCPU 0's saved
 * TSC, and tsc_src is the host TSC at which that vCPU's TSC had that value
 * by its saved offset (guest_tsc = host_tsc + offset): exact by
 * construction, where KVM_GET_CLOCK's host TSC (which it does not give
 * then) or another read would be a different instant.  Without the
 * offset, the restore pairs the time with the saved IA32_TSC directly.
 */
static int capture_vm(struct snapshot_writer *w, struct vm *vm)
{
	struct snapshot_vm_state *s = calloc(1, sizeof(*s));
	struct kvm_clock_data clock = {0};
	int khz;

	if (!s)
		return -ENOMEM;
	/* api.rst KVM_GET_CLOCK: kvmclock's time; set back with KVM_SET_CLOCK. */
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0) {
		int ret = -errno;

		free(s);
		return ret;
	}
	s->nr_cpus = vm->nr_cpus;
	s->memory_bytes = vm->mem->ram_size;
	s->nr_regions = vm->mem->nr_regions;
	for (unsigned i = 0; i < vm->mem->nr_regions; i++)
		s->regions[i] =
		    (struct snapshot_region){vm->mem->regions[i].gpa, vm->mem->regions[i].size,
					     vm->mem->regions[i].fd_offset};
	/* api.rst KVM_GET_TSC_KHZ (vCPU ioctl) */
	khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	s->flags = vm->tsc_deadline ? SNAPSHOT_VM_TSC_DEADLINE : 0;
	s->clock_ns = clock.clock;
	s->clock_flags = clock.flags;
	s->clock_realtime_ns = clock.realtime;
	s->clock_host_tsc = clock.host_tsc;
	if (!(clock.flags & KVM_CLOCK_TSC_STABLE)) {
		const struct snapshot_vcpu_tsc *tsc0 = writer_tsc(w, 0);
		uint64_t guest, tsc;

		if (guest_kvmclock_ns(w, vm, &guest, &tsc) == 0) {
			int64_t ahead = (int64_t)(clock.clock - guest);

			/* said when it matters: a restore of KVM's time would
			 * have stepped the guest's clock this far */
			if (ahead > 1000000 || ahead < -1000000)
				log_info("snapshot: kvmclock: the guest's reads %.1f ms %s "
					 "KVM_GET_CLOCK's (no KVM_CLOCK_TSC_STABLE): the "
					 "guest's is saved",
					 (double)(ahead < 0 ? -ahead : ahead) / 1e6,
					 ahead < 0 ? "ahead of" : "behind");
			else
				log_debug("snapshot: kvmclock: the guest's %llu ns, "
					  "KVM_GET_CLOCK's %llu: the guest's is saved",
					  (unsigned long long)guest,
					  (unsigned long long)clock.clock);
			s->clock_ns = guest;
			s->clock_flags &= ~KVM_CLOCK_HOST_TSC;
			if (tsc0) {
				s->clock_host_tsc = tsc - tsc0->offset;
				s->clock_flags |= KVM_CLOCK_HOST_TSC;
			}
		}
	}
	return writer_add(w, SNAPSHOT_VM, 0, s, sizeof(*s));
}

static int capture_platform(struct snapshot_writer *w, struct vm *vm)
{
	struct snapshot_serial_state serial = {0};
	struct snapshot_ioapic_state ioapic = {0};
	struct snapshot_rtc_state rtc = {0};
	struct snapshot_i8042_state kbc = {0};
	struct snapshot_acpi_pm_state pm = {0};
	struct snapshot_pci_host_state pci = {0};
	int ret = 0;

	pthread_mutex_lock(&vm->serial.lock);
	serial = (struct snapshot_serial_state){vm->serial.ier,
						vm->serial.iir_thri_pending,
						vm->serial.lcr,
						vm->serial.mcr,
						vm->serial.lsr,
						vm->serial.msr,
						vm->serial.scr,
						vm->serial.dll,
						vm->serial.dlm,
						vm->serial.fcr,
						vm->serial.irq_level,
						{0},
						vm->serial.rx_head,
						vm->serial.rx_count,
						{0}};
	memcpy(serial.rx_fifo, vm->serial.rx_fifo, sizeof(serial.rx_fifo));
	pthread_mutex_unlock(&vm->serial.lock);

	pthread_mutex_lock(&vm->ioapic.lock);
	ioapic.id = vm->ioapic.id;
	ioapic.ioregsel = vm->ioapic.ioregsel;
	ioapic.line_level = vm->ioapic.line_level;
	memcpy(ioapic.redirection, vm->ioapic.redirection, sizeof(ioapic.redirection));
	pthread_mutex_unlock(&vm->ioapic.lock);

	pthread_mutex_lock(&vm->rtc.lock);
	rtc.index = vm->rtc.index;
	memcpy(rtc.cmos, vm->rtc.cmos, sizeof(rtc.cmos));
	pthread_mutex_unlock(&vm->rtc.lock);

	pthread_mutex_lock(&vm->i8042.lock);
	kbc.command_byte = vm->i8042.command_byte;
	kbc.pending_command = vm->i8042.pending_command;
	kbc.queue_head = vm->i8042.queue_head;
	kbc.queue_count = vm->i8042.queue_count;
	memcpy(kbc.queue, vm->i8042.queue, sizeof(kbc.queue));
	memcpy(kbc.queue_status, vm->i8042.queue_status, sizeof(kbc.queue_status));
	pthread_mutex_unlock(&vm->i8042.lock);

	pthread_mutex_lock(&vm->pm.lock);
	pm.pm1_status = vm->pm.pm1_status;
	pm.pm1_enable = vm->pm.pm1_enable;
	pm.pm1_control = vm->pm.pm1_control;
	pm.reset_control = vm->pm.reset_control;
	pm.timer_ns = snapshot_monotonic_ns() - vm->pm.start_ns;
	pthread_mutex_unlock(&vm->pm.lock);

	pthread_mutex_lock(&vm->pci.lock);
	pci.config_address = vm->pci.config_address;
	pthread_mutex_unlock(&vm->pci.lock);

	ret = ret
		  ?: writer_add(w, SNAPSHOT_SERIAL, 0, copy_of(&serial, sizeof(serial)),
				sizeof(serial));
	ret = ret
		  ?: writer_add(w, SNAPSHOT_IOAPIC, 0, copy_of(&ioapic, sizeof(ioapic)),
				sizeof(ioapic));
	ret = ret ?: writer_add(w, SNAPSHOT_RTC, 0, copy_of(&rtc, sizeof(rtc)), sizeof(rtc));
	ret = ret ?: writer_add(w, SNAPSHOT_I8042, 0, copy_of(&kbc, sizeof(kbc)), sizeof(kbc));
	ret = ret ?: writer_add(w, SNAPSHOT_ACPI_PM, 0, copy_of(&pm, sizeof(pm)), sizeof(pm));
	ret = ret ?: writer_add(w, SNAPSHOT_PCI_HOST, 0, copy_of(&pci, sizeof(pci)), sizeof(pci));
	return ret;
}

/* ---- memory file ------------------------------------------------------- */

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[4096];

	return !memcmp(p, zero, sizeof(zero));
}

/* Write [from, to) of region r at its file offset, leaving zero pages as
 * holes (the file was truncated to its size, so they read as zero). */
static int write_range(int fd, const struct gmem_region *r, uint64_t from, uint64_t to)
{
	for (uint64_t at = from; at < to;) {
		uint64_t end = at;
		ssize_t n;

		while (at < to && page_is_zero(r->host + at))
			at += 4096;
		end = at;
		while (end < to && !page_is_zero(r->host + end))
			end += 4096;
		if (end == at)
			continue;
		n = pwrite(fd, r->host + at, end - at, (off_t)(r->fd_offset + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		at += (uint64_t)n;
	}
	return 0;
}

/* Guest RAM into mem_fd, sized to the RAM.  With a memfd under it, only
 * its data ranges are looked at (lseek SEEK_DATA/SEEK_HOLE): pages the
 * guest never touched cost nothing, not even a read. */
static int write_memory(struct vm *vm, int mem_fd)
{
	const struct gmem *mem = vm->mem;
	int ret;

	if (ftruncate(mem_fd, (off_t)mem->ram_size) < 0)
		return -errno;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		uint64_t at = 0;

		if (mem->fd < 0) {
			ret = write_range(mem_fd, r, 0, r->size);
			if (ret)
				return ret;
			continue;
		}
		while (at < r->size) {
			off_t data = lseek(mem->fd, (off_t)(r->fd_offset + at), SEEK_DATA);
			off_t hole;

			if (data < 0 && errno == ENXIO)
				break;	/* no data after at */
			if (data < 0) { /* a file system without SEEK_DATA: look at it all */
				ret = write_range(mem_fd, r, at, r->size);
				if (ret)
					return ret;
				break; /* and on to the next region */
			}
			if ((uint64_t)data >= r->fd_offset + r->size)
				break;
			hole = lseek(mem->fd, data, SEEK_HOLE);
			if (hole < 0) {
				ret = write_range(mem_fd, r, at, r->size);
				if (ret)
					return ret;
				break;
			}
			if ((uint64_t)hole > r->fd_offset + r->size)
				hole = (off_t)(r->fd_offset + r->size);
			ret = write_range(mem_fd, r, ((uint64_t)data - r->fd_offset) & ~4095ull,
					  (uint64_t)hole - r->fd_offset);
			if (ret)
				return ret;
			at = (uint64_t)hole - r->fd_offset;
		}
	}
	return 0;
}

int snapshot_check(struct vm *vm, char *err, size_t errlen)
{
	if (!vm_is_paused(vm))
		return error_text(err, errlen, -EBUSY,
				  "the VM is not paused; PATCH /vm {\"state\": \"Paused\"} first");
	return 0;
}

int snapshot_create(struct vm *vm, int state_fd, int mem_fd, bool diff, char *err, size_t errlen)
{
	struct snapshot_writer w = {0};
	struct kvm_msr_list *msr_list = NULL;
	const char *what = "";
	bool devices_stopped = false;
	int ret;

	ret = snapshot_check(vm, err, errlen);
	if (!ret)
		ret = snapshot_dirty_check(vm, diff, err, errlen);
	if (ret)
		return ret;
	w.cap = 1 + SNAPSHOT_PLATFORM_SECTIONS + (size_t)vm->nr_cpus * SNAPSHOT_VCPU_SECTIONS +
		(vm->devices ? (size_t)vm->devices->nr * SNAPSHOT_DEVICE_SECTIONS : 0);
	w.sections = calloc(w.cap, sizeof(*w.sections));
	if (!w.sections)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	ret = msr_index_list(vm, &msr_list);
	if (ret) {
		error_text(err, errlen, ret, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		goto out;
	}
	/* The devices first: stopping their rings completes the requests the
	 * servers took, and those completions' interrupts must reach the
	 * LAPICs (or wait in a masked vector's eventfd) before they are read. */
	devices_stopped = true;
	ret = snapshot_devices_save(vm, writer_add_cb, &w, err, errlen);
	if (ret)
		goto out;
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = capture_vcpu(&w, vm, &vm->vcpus[i], msr_list, &what);
		if (ret) {
			error_text(err, errlen, ret, "vCPU %u: %s: %s", i, what, strerror(-ret));
			goto out;
		}
	}
	/* after the vCPUs: the clock pairs with their saved TSCs */
	ret = capture_vm(&w, vm);
	if (ret) {
		error_text(err, errlen, ret, "KVM_GET_CLOCK: %s", strerror(-ret));
		goto out;
	}
	ret = capture_platform(&w, vm);
	if (ret) {
		error_text(err, errlen, ret, "platform devices: %s", strerror(-ret));
		goto out;
	}
	ret = snapshot_dirty_collect(vm);
	if (ret) {
		error_text(err, errlen, ret, "KVM_GET_DIRTY_LOG: %s", strerror(-ret));
		goto out;
	}
	if (diff && vm->dirty_base) {
		uint64_t pages;

		ret = snapshot_dirty_write(vm, mem_fd, &pages);
		if (!ret)
			log_info("snapshot: Diff: %llu page(s) written since the last snapshot",
				 (unsigned long long)pages);
	} else {
		/* a Full, or a Diff with nothing before it (a booted VM's first
		 * snapshot: everything since the VM was made, as a Full) */
		ret = write_memory(vm, mem_fd);
	}
	if (ret) {
		error_text(err, errlen, ret, "mem_file_path: writing guest memory: %s",
			   strerror(-ret));
		goto out;
	}
	{
		char why[256];

		ret =
		    snapshot_file_write(state_fd, ISOLA_VERSION, w.sections, w.n, why, sizeof(why));
		if (ret)
			error_text(err, errlen, ret, "snapshot_path: %s", why);
	}
out:
	/* after guest memory is written: the rings run again (disabled while
	 * the VM stays paused) */
	if (devices_stopped)
		snapshot_devices_save_done(vm);
	free(msr_list);
	writer_free(&w);
	return ret;
}
