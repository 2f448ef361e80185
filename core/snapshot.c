// SPDX-License-Identifier: MIT
/*
 * Snapshot and restore of a paused VM (core/snapshot.h, docs/snapshot.md).
 * The KVM facts come from Documentation/virt/kvm/api.rst (cited by ioctl
 * name); the capture runs on the API thread while every vCPU is parked
 * (vm_pause), so their ioctls do not block on KVM_RUN.
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

#include "core/version.h"
#include "core/vm.h"
#include "lib/log.h"

#define SNAPSHOT_VCPU_SECTIONS 11
/* SDM Vol. 4 Table 2-2 */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
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

/* KVM_GET_MSRS / KVM_SET_MSRS stop at the first MSR they cannot do and
 * return how many they did (api.rst): do the rest after skipping it.
 * Returns how many entries were done; the ones skipped have index ~0. */
static int msrs_transfer(int fd, unsigned long request, struct kvm_msrs *msrs)
{
	struct kvm_msr_entry *all = msrs->entries;
	uint32_t total = msrs->nmsrs, done = 0, at = 0;
	struct kvm_msrs *part = calloc(1, sizeof(*part) + total * sizeof(*all));

	if (!part)
		return -ENOMEM;
	while (at < total) {
		int n;

		part->nmsrs = total - at;
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
		if (at < total) {
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
	ret = msrs_transfer(vcpu->fd, KVM_GET_MSRS, msrs);
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
				break; /* no data after at */
			if (data < 0) /* a file system without SEEK_DATA: look at it all */
				return write_range(mem_fd, r, at, r->size);
			if ((uint64_t)data >= r->fd_offset + r->size)
				break;
			hole = lseek(mem->fd, data, SEEK_HOLE);
			if (hole < 0)
				return write_range(mem_fd, r, at, r->size);
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
	if (vm->devices && vm->devices->nr)
		return error_text(err, errlen, -EBUSY,
				  "snapshots of VMs with device servers come next: this VM has "
				  "%u virtio device(s); snapshot a VM without drives, network "
				  "interfaces, entropy or vsock",
				  vm->devices->nr);
	if (!vm_is_paused(vm))
		return error_text(err, errlen, -EBUSY,
				  "the VM is not paused; PATCH /vm {\"state\": \"Paused\"} first");
	return 0;
}

int snapshot_create(struct vm *vm, int state_fd, int mem_fd, char *err, size_t errlen)
{
	struct snapshot_writer w = {0};
	struct kvm_msr_list *msr_list = NULL;
	const char *what = "";
	int ret;

	ret = snapshot_check(vm, err, errlen);
	if (ret)
		return ret;
	w.cap = 1 + SNAPSHOT_PLATFORM_SECTIONS + (size_t)vm->nr_cpus * SNAPSHOT_VCPU_SECTIONS;
	w.sections = calloc(w.cap, sizeof(*w.sections));
	if (!w.sections)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	ret = msr_index_list(vm, &msr_list);
	if (ret) {
		error_text(err, errlen, ret, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		goto out;
	}
	ret = capture_vm(&w, vm);
	if (ret) {
		error_text(err, errlen, ret, "KVM_GET_CLOCK: %s", strerror(-ret));
		goto out;
	}
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = capture_vcpu(&w, vm, &vm->vcpus[i], msr_list, &what);
		if (ret) {
			error_text(err, errlen, ret, "vCPU %u: %s: %s", i, what, strerror(-ret));
			goto out;
		}
	}
	ret = capture_platform(&w, vm);
	if (ret) {
		error_text(err, errlen, ret, "platform devices: %s", strerror(-ret));
		goto out;
	}
	ret = write_memory(vm, mem_fd);
	if (ret) {
		error_text(err, errlen, ret, "mem_file_path: writing guest memory: %s",
			   strerror(-ret));
		goto out;
	}
	{
		char why[256];

		ret = snapshot_file_write(state_fd, "isola " ISOLA_VERSION, w.sections, w.n, why,
					  sizeof(why));
		if (ret)
			error_text(err, errlen, ret, "snapshot_path: %s", why);
	}
out:
	free(msr_list);
	writer_free(&w);
	return ret;
}

/* ---- restore ----------------------------------------------------------- */

int snapshot_load(struct snapshot_image *img, struct vm_config *cfg, struct gmem *ram,
		  const char *state_path, const char *mem_path, char *err, size_t errlen)
{
	const struct snapshot_vm_state *s;
	char why[256];
	struct stat st;
	int fd, ret;

	fd = open(state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_text(err, errlen, -errno, "snapshot %s: %s", state_path,
				  strerror(errno));
	ret = snapshot_file_read(fd, img, why, sizeof(why));
	close(fd);
	if (ret)
		return error_text(err, errlen, ret, "snapshot %s: %s", state_path, why);
	/* every section checked before anything is made of it */
	ret = snapshot_check_image(img, why, sizeof(why));
	if (ret) {
		snapshot_image_free(img);
		return error_text(err, errlen, ret, "snapshot %s: %s", state_path, why);
	}
	s = snapshot_image_find(img, SNAPSHOT_VM, 0)->data;
	/* The same split gmem_create makes from the size (checked against the
	 * regions below, once mapped). */
	cfg->nr_cpus = s->nr_cpus;
	cfg->memory_bytes = s->memory_bytes;
	cfg->huge_pages = CONFIG_HUGE_PAGES_NONE;
	fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = error_text(err, errlen, -errno, "memory file %s: %s", mem_path,
				 strerror(errno));
		snapshot_image_free(img);
		return ret;
	}
	ret = gmem_create_private(ram, fd, s->memory_bytes);
	if (ret == -EMEDIUMTYPE && !fstat(fd, &st))
		error_text(err, errlen, -EINVAL,
			   "memory file %s is %lld bytes; the snapshot's memory is %llu bytes: it "
			   "belongs to another snapshot, or it was truncated",
			   mem_path, (long long)st.st_size, (unsigned long long)s->memory_bytes);
	else if (ret)
		error_text(err, errlen, ret, "memory file %s: cannot map it: %s", mem_path,
			   strerror(-ret));
	close(fd);
	for (unsigned i = 0; !ret && i < s->nr_regions; i++)
		if (i >= ram->nr_regions || ram->regions[i].gpa != s->regions[i].gpa ||
		    ram->regions[i].size != s->regions[i].size)
			ret = error_text(err, errlen, -EINVAL,
					 "snapshot %s: memory region %u is not where this isola "
					 "lays out %llu bytes",
					 state_path, i, (unsigned long long)s->memory_bytes);
	if (ret) {
		gmem_destroy(ram);
		snapshot_image_free(img);
		return ret == -EMEDIUMTYPE ? -EINVAL : ret;
	}
	return 0;
}

static int restore_cpuid(struct vcpu *vcpu, const struct snapshot_image *img, char *err,
			 size_t errlen)
{
	const struct snapshot_section *s =
	    snapshot_image_find(img, SNAPSHOT_VCPU_CPUID, vcpu->index);
	struct kvm_cpuid2 *cpuid;
	size_t n;
	int ret = 0;

	if (!s || !s->len || s->len % sizeof(struct kvm_cpuid_entry2) ||
	    s->len / sizeof(struct kvm_cpuid_entry2) > SNAPSHOT_MAX_CPUID)
		return error_text(err, errlen, -EINVAL, "vCPU %u: bad or missing CPUID section",
				  vcpu->index);
	n = s->len / sizeof(struct kvm_cpuid_entry2);
	cpuid = calloc(1, sizeof(*cpuid) + s->len);
	if (!cpuid)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	cpuid->nent = (uint32_t)n;
	memcpy(cpuid->entries, s->data, s->len);
	/* api.rst KVM_SET_CPUID2: before the first KVM_RUN, and before the
	 * MSRs whose existence it decides. */
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = error_text(err, errlen, -errno,
				 "vCPU %u: KVM_SET_CPUID2: %s (the snapshot was taken on a host "
				 "with other CPU features?)",
				 vcpu->index, strerror(errno));
	free(cpuid);
	return ret;
}

static int restore_msrs(struct vcpu *vcpu, const struct snapshot_image *img, char *err,
			size_t errlen)
{
	const struct snapshot_section *s =
	    snapshot_image_find(img, SNAPSHOT_VCPU_MSRS, vcpu->index);
	const struct snapshot_msr *in;
	struct kvm_msrs *msrs;
	size_t n;
	int ret;

	if (!s || s->len % sizeof(struct snapshot_msr) ||
	    s->len / sizeof(struct snapshot_msr) > SNAPSHOT_MAX_MSRS)
		return error_text(err, errlen, -EINVAL, "vCPU %u: bad or missing MSR section",
				  vcpu->index);
	n = s->len / sizeof(struct snapshot_msr);
	in = s->data;
	msrs = calloc(1, sizeof(*msrs) + (n ? n : 1) * sizeof(struct kvm_msr_entry));
	if (!msrs)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	/* IA32_TSC and IA32_TSC_DEADLINE come after every vCPU's state
	 * (restore_tsc): the TSCs are set together, and a deadline is armed
	 * against the TSC it was written for. */
	for (size_t i = 0; i < n; i++) {
		if (in[i].index == MSR_IA32_TSC || in[i].index == MSR_IA32_TSC_DEADLINE)
			continue;
		msrs->entries[msrs->nmsrs].index = in[i].index;
		msrs->entries[msrs->nmsrs++].data = in[i].data;
	}
	ret = msrs->nmsrs ? msrs_transfer(vcpu->fd, KVM_SET_MSRS, msrs) : 0;
	if (ret >= 0 && (uint32_t)ret != msrs->nmsrs)
		log_warn("restore: vCPU %u: KVM took %d of %u MSRs (the rest: see --level Debug)",
			 vcpu->index, ret, msrs->nmsrs);
	free(msrs);
	if (ret < 0)
		return error_text(err, errlen, ret, "vCPU %u: KVM_SET_MSRS: %s", vcpu->index,
				  strerror(-ret));
	return 0;
}

static int restore_xsave(struct vm *vm, struct vcpu *vcpu, const struct snapshot_image *img,
			 char *err, size_t errlen)
{
	int host = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	size_t len, size;
	const void *data;
	void *buf;
	int ret = 0;

	data = snapshot_section_get(img, SNAPSHOT_VCPU_XSAVE, vcpu->index, sizeof(struct kvm_xsave),
				    true, &len, err, errlen);
	if (!data)
		return -EINVAL;
	if (len > SNAPSHOT_MAX_XSAVE || len % 4)
		return error_text(err, errlen, -EINVAL, "vCPU %u: XSAVE area of %zu bytes",
				  vcpu->index, len);
	/* api.rst KVM_SET_XSAVE: the buffer is KVM_CAP_XSAVE2's size; a
	 * smaller saved area is padded with zeros (components not in use). */
	size = host > (int)len ? (size_t)host : len;
	buf = calloc(1, size);
	if (!buf)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	memcpy(buf, data, len);
	if (ioctl(vcpu->fd, KVM_SET_XSAVE, buf) < 0)
		ret = error_text(err, errlen, -errno, "vCPU %u: KVM_SET_XSAVE: %s", vcpu->index,
				 strerror(errno));
	free(buf);
	return ret;
}

static int restore_fixed(struct vcpu *vcpu, const struct snapshot_image *img, uint32_t type,
			 unsigned long request, size_t len, const char *name, char *err,
			 size_t errlen)
{
	char why[160];
	const void *data =
	    snapshot_section_get(img, type, vcpu->index, len, false, NULL, why, sizeof(why));
	void *copy;
	int ret = 0;

	if (!data)
		return error_text(err, errlen, -EINVAL, "vCPU %u: %s", vcpu->index, why);
	copy = copy_of(data, len); /* aligned, and KVM may write back into it */
	if (!copy)
		return error_text(err, errlen, -ENOMEM, "out of memory");
	if (ioctl(vcpu->fd, request, copy) < 0)
		ret = error_text(err, errlen, -errno, "vCPU %u: %s: %s", vcpu->index, name,
				 strerror(errno));
	free(copy);
	return ret;
}

/* The order of the KVM_SET_* calls (api.rst): CPUID first (it decides
 * which MSRs exist and is fixed from the first KVM_RUN on); SREGS before
 * LAPIC (the APIC base and x2APIC mode are in sregs); LAPIC before the
 * MSRs (KVM drops an IA32_TSC_DEADLINE write unless the LAPIC's timer is
 * in TSC-deadline mode: restore_tsc writes it last); VCPU_EVENTS and
 * MP_STATE last, after everything they refer to. */
enum restore_kind { RESTORE_FIXED, RESTORE_CPUID, RESTORE_MSRS, RESTORE_XSAVE };
static const struct restore_step {
	enum restore_kind kind;
	uint32_t type;
	unsigned long request;
	size_t len;
	const char *name;
} restore_steps[] = {
    {RESTORE_CPUID, 0, 0, 0, "KVM_SET_CPUID2"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "KVM_SET_SREGS"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state),
     "KVM_SET_LAPIC"},
    {RESTORE_MSRS, 0, 0, 0, "KVM_SET_MSRS"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "KVM_SET_REGS"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "KVM_SET_XCRS"},
    {RESTORE_XSAVE, 0, 0, 0, "KVM_SET_XSAVE"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
     "KVM_SET_DEBUGREGS"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events),
     "KVM_SET_VCPU_EVENTS"},
    {RESTORE_FIXED, SNAPSHOT_VCPU_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state),
     "KVM_SET_MP_STATE"},
};

static int restore_vcpu(struct vm *vm, struct vcpu *vcpu, const struct snapshot_image *img,
			char *err, size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(restore_steps) / sizeof(restore_steps[0]); i++) {
		const struct restore_step *step = &restore_steps[i];

		switch (step->kind) {
		case RESTORE_CPUID:
			ret = restore_cpuid(vcpu, img, err, errlen);
			break;
		case RESTORE_MSRS:
			ret = restore_msrs(vcpu, img, err, errlen);
			break;
		case RESTORE_XSAVE:
			ret = restore_xsave(vm, vcpu, img, err, errlen);
			break;
		case RESTORE_FIXED:
			ret = restore_fixed(vcpu, img, step->type, step->request, step->len,
					    step->name, err, errlen);
			break;
		}
	}
	return ret;
}

static int restore_platform(struct vm *vm, const struct snapshot_image *img, char *err,
			    size_t errlen)
{
	const struct snapshot_serial_state *serial;
	const struct snapshot_ioapic_state *ioapic;
	const struct snapshot_rtc_state *rtc;
	const struct snapshot_i8042_state *kbc;
	const struct snapshot_acpi_pm_state *pm;
	const struct snapshot_pci_host_state *pci;
	int ret;

	if (!(serial = snapshot_section_get(img, SNAPSHOT_SERIAL, 0, sizeof(*serial), false, NULL,
					    err, errlen)) ||
	    !(ioapic = snapshot_section_get(img, SNAPSHOT_IOAPIC, 0, sizeof(*ioapic), false, NULL,
					    err, errlen)) ||
	    !(rtc = snapshot_section_get(img, SNAPSHOT_RTC, 0, sizeof(*rtc), false, NULL, err,
					 errlen)) ||
	    !(kbc = snapshot_section_get(img, SNAPSHOT_I8042, 0, sizeof(*kbc), false, NULL, err,
					 errlen)) ||
	    !(pm = snapshot_section_get(img, SNAPSHOT_ACPI_PM, 0, sizeof(*pm), false, NULL, err,
					errlen)) ||
	    !(pci = snapshot_section_get(img, SNAPSHOT_PCI_HOST, 0, sizeof(*pci), false, NULL, err,
					 errlen)))
		return -EINVAL;
	/* Indexes into the devices' arrays: checked before anything is set. */
	if (serial->rx_head >= SERIAL_RX_FIFO_SIZE || serial->rx_count > SERIAL_RX_FIFO_SIZE ||
	    kbc->queue_head >= I8042_QUEUE_SIZE || kbc->queue_count > I8042_QUEUE_SIZE ||
	    rtc->index >= sizeof(vm->rtc.cmos) || ioapic->id != vm->ioapic.id)
		return error_text(err, errlen, -EINVAL,
				  "a platform device's state is out of range");

	vm->serial.ier = serial->ier;
	vm->serial.iir_thri_pending = serial->iir_thri_pending;
	vm->serial.lcr = serial->lcr;
	vm->serial.mcr = serial->mcr;
	vm->serial.lsr = serial->lsr;
	vm->serial.msr = serial->msr;
	vm->serial.scr = serial->scr;
	vm->serial.dll = serial->dll;
	vm->serial.dlm = serial->dlm;
	vm->serial.fcr = serial->fcr;
	vm->serial.irq_level = serial->irq_level != 0;
	vm->serial.rx_head = serial->rx_head;
	vm->serial.rx_count = serial->rx_count;
	memcpy(vm->serial.rx_fifo, serial->rx_fifo, sizeof(vm->serial.rx_fifo));

	vm->ioapic.ioregsel = ioapic->ioregsel;
	vm->ioapic.line_level = ioapic->line_level & ((1u << IOAPIC_NR_PINS) - 1);
	memcpy(vm->ioapic.redirection, ioapic->redirection, sizeof(vm->ioapic.redirection));
	/* KVM's GSI routes follow the redirection table (ioapic.h) */
	ret = vm_sync_ioapic_routes(vm);
	if (ret)
		return error_text(err, errlen, ret, "KVM_SET_GSI_ROUTING: %s", strerror(-ret));

	vm->rtc.index = rtc->index;
	memcpy(vm->rtc.cmos, rtc->cmos, sizeof(vm->rtc.cmos));

	vm->i8042.command_byte = kbc->command_byte;
	vm->i8042.pending_command = kbc->pending_command;
	vm->i8042.queue_head = kbc->queue_head;
	vm->i8042.queue_count = kbc->queue_count;
	memcpy(vm->i8042.queue, kbc->queue, sizeof(vm->i8042.queue));
	memcpy(vm->i8042.queue_status, kbc->queue_status, sizeof(vm->i8042.queue_status));

	vm->pm.pm1_status = pm->pm1_status;
	vm->pm.pm1_enable = pm->pm1_enable;
	vm->pm.pm1_control = pm->pm1_control;
	vm->pm.reset_control = pm->reset_control;
	/* The PM timer continues from where it was (modulo 2^64 arithmetic). */
	vm->pm.start_ns = snapshot_monotonic_ns() - pm->timer_ns;

	vm->pci.config_address = pci->config_address;
	return 0;
}

/* The guest's TSC rate (KVM_GET_TSC_KHZ) is not the snapshot's. */
static bool restore_tsc_rate_differs(struct vm *vm, const struct snapshot_vm_state *s)
{
	int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);

	return !s->tsc_khz || khz <= 0 || (uint32_t)khz != s->tsc_khz;
}

static void restore_tsc_khz(struct vm *vm, const struct snapshot_vm_state *s)
{
	int host = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);

	if (!s->tsc_khz || host <= 0 || (uint32_t)host == s->tsc_khz)
		return;
	/* api.rst KVM_SET_TSC_KHZ: the guest's TSC keeps its frequency on a
	 * host whose TSC runs at another (KVM_CAP_TSC_CONTROL). */
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		if (ioctl(vm->vcpus[i].fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0) {
			log_warn("restore: the guest's TSC ran at %u kHz, this host's at %d kHz, "
				 "and KVM_SET_TSC_KHZ failed (%s): the guest's clock may drift",
				 s->tsc_khz, host, strerror(errno));
			return;
		}
}

/* MSR index's value in vCPU index's MSR section (checked by restore_msrs). */
static bool captured_msr(const struct snapshot_image *img, unsigned index, uint32_t msr,
			 uint64_t *value)
{
	const struct snapshot_section *s = snapshot_image_find(img, SNAPSHOT_VCPU_MSRS, index);
	const struct snapshot_msr *in = s->data;

	for (size_t i = 0; i < s->len / sizeof(*in); i++)
		if (in[i].index == msr) {
			*value = in[i].data;
			return true;
		}
	return false;
}

static int set_msr(struct vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entry;
	} one = {.header.nmsrs = 1, .entry = {.index = index, .data = value}};
	int ret = ioctl(vcpu->fd, KVM_SET_MSRS, &one);

	return ret == 1 ? 0 : ret < 0 ? -errno : -EINVAL;
}

/*
 * The TSCs go on from where they were, as far apart as they were.  With
 * KVM_VCPU_TSC_OFFSET on both sides (devices/vcpu.rst 4.1: guest_tsc =
 * host_tsc + offset) and the same TSC rate, each vCPU's offset is its saved
 * one moved by how far the host's TSC moved (KVM_GET_CLOCK's host_tsc then
 * and now): step 6 of that page with no kvmclock time passing.  Else each
 * vCPU's IA32_TSC is written as saved, which KVM matches across vCPUs only
 * on a host whose TSC it trusts (kvm_synchronize_tsc).  Then each
 * IA32_TSC_DEADLINE, armed against the TSC it was written for.
 */
static int restore_tsc(struct vm *vm, const struct snapshot_image *img,
		       const struct snapshot_vm_state *s, bool same_rate, char *err, size_t errlen)
{
	struct kvm_clock_data now = {0};
	bool offsets = same_rate && (s->clock_flags & KVM_CLOCK_HOST_TSC) &&
		       ioctl(vm->vm_fd, KVM_GET_CLOCK, &now) == 0 &&
		       (now.flags & KVM_CLOCK_HOST_TSC);
	uint64_t value;
	int ret;

	for (unsigned i = 0; offsets && i < vm->nr_cpus; i++) {
		const struct snapshot_vcpu_tsc *tsc = snapshot_section_get(
		    img, SNAPSHOT_VCPU_TSC, i, sizeof(*tsc), false, NULL, err, errlen);

		if (!tsc)
			return -EINVAL;
		offsets = tsc->flags & SNAPSHOT_TSC_OFFSET_VALID;
	}
	for (unsigned i = 0; offsets && i < vm->nr_cpus; i++) {
		const struct snapshot_vcpu_tsc *tsc =
		    snapshot_image_find(img, SNAPSHOT_VCPU_TSC, i)->data;
		uint64_t offset = tsc->offset + (s->clock_host_tsc - now.host_tsc);
		struct kvm_device_attr attr = {
		    .group = KVM_VCPU_TSC_CTRL,
		    .attr = KVM_VCPU_TSC_OFFSET,
		    .addr = (uint64_t)(uintptr_t)&offset,
		};

		if (ioctl(vm->vcpus[i].fd, KVM_SET_DEVICE_ATTR, &attr) < 0) {
			log_debug("restore: vCPU %u: KVM_VCPU_TSC_OFFSET: %s; writing IA32_TSC", i,
				  strerror(errno));
			offsets = false;
		}
	}
	for (unsigned i = 0; !offsets && i < vm->nr_cpus; i++) {
		if (!captured_msr(img, i, MSR_IA32_TSC, &value))
			return error_text(err, errlen, -EINVAL, "vCPU %u: no IA32_TSC saved", i);
		ret = set_msr(&vm->vcpus[i], MSR_IA32_TSC, value);
		if (ret)
			return error_text(err, errlen, ret, "vCPU %u: IA32_TSC: %s", i,
					  strerror(-ret));
	}
	if (log_get_level() >= LOG_LEVEL_DEBUG && captured_msr(img, 0, MSR_IA32_TSC, &value)) {
		struct {
			struct kvm_msrs header;
			struct kvm_msr_entry entry;
		} tsc = {.header.nmsrs = 1, .entry.index = MSR_IA32_TSC};

		if (ioctl(vm->vcpus[0].fd, KVM_GET_MSRS, &tsc) == 1)
			log_debug("restore: the TSCs by %s; vCPU 0's is %lld cycles past the "
				  "snapshot's",
				  offsets ? "KVM_VCPU_TSC_OFFSET" : "IA32_TSC",
				  (long long)(tsc.entry.data - value));
	}
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		if (captured_msr(img, i, MSR_IA32_TSC_DEADLINE, &value) && value &&
		    set_msr(&vm->vcpus[i], MSR_IA32_TSC_DEADLINE, value))
			log_warn("restore: vCPU %u: KVM refused IA32_TSC_DEADLINE", i);
	return 0;
}

int snapshot_restore(struct vm *vm, const struct snapshot_image *img, char *err, size_t errlen)
{
	const struct snapshot_vm_state *s = snapshot_image_find(img, SNAPSHOT_VM, 0)->data;
	struct kvm_clock_data clock = {.clock = s->clock_ns};
	bool same_rate;
	int ret;

	if (s->nr_cpus != vm->nr_cpus)
		return error_text(err, errlen, -EINVAL, "the VM has %u vCPUs, the state file %u",
				  vm->nr_cpus, s->nr_cpus);
	vm->tsc_deadline = s->flags & SNAPSHOT_VM_TSC_DEADLINE;
	/* The TSC frequency before the TSC values (KVM_SET_MSRS). */
	same_rate = !restore_tsc_rate_differs(vm, s);
	if (!same_rate)
		restore_tsc_khz(vm, s);
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = restore_vcpu(vm, &vm->vcpus[i], img, err, errlen);
		if (ret)
			return ret;
	}
	/* api.rst KVM_SET_CLOCK: kvmclock continues from the captured time
	 * (the guest sees no time pass while it was saved, as with a pause). */
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return error_text(err, errlen, -errno, "KVM_SET_CLOCK: %s", strerror(errno));
	ret = restore_tsc(vm, img, s, same_rate, err, errlen);
	if (ret)
		return ret;
	return restore_platform(vm, img, err, errlen);
}
