// SPDX-License-Identifier: MIT
/*
 * Restore of a snapshot in a fresh process (core/snapshot_restore.h,
 * docs/snapshot.md "Restore"): the state file read and checked whole, the
 * memory file mapped privately, then every vCPU's KVM state, the clock and
 * the platform devices set back, in api.rst's order.
 */
#define _GNU_SOURCE
#include "core/snapshot_restore.h"
#include "core/snapshot_devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "core/snapshot.h"
#include "core/vm.h"
#include "lib/log.h"

static void *copy_of(const void *src, size_t len)
{
	void *p = malloc(len);

	if (p)
		memcpy(p, src, len);
	return p;
}

static uint64_t restore_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
	/* device servers share guest memory: a memfd, filled from the file
	 * (core/snapshot_devices.h); else the file mapped privately */
	if (snapshot_device_count(img))
		ret = snapshot_devices_load_memory(ram, fd, s->memory_bytes);
	else
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
	ret = msrs->nmsrs ? snapshot_msrs_transfer(vcpu->fd, KVM_SET_MSRS, msrs) : 0;
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

		/* From SREGS on, guest memory may be read (vm_memory_ready):
		 * until then the memory slots are made beside this. */
		if (step->request == KVM_SET_SREGS && (ret = vm_memory_ready(vm, err, errlen)))
			break;
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
	vm->pm.start_ns = restore_monotonic_ns() - pm->timer_ns;

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
 * KVM_GET_CLOCK's time and the host's TSC at that instant (devices/vcpu.rst
 * 4.1 step 5).  KVM gives the TSC with it only with its master clock
 * (KVM_CLOCK_HOST_TSC).  Otherwise the TSC (the one KVM's offsets are from:
 * guest_tsc = host_tsc + offset) is read here on both sides of the call and
 * the midpoint taken, the narrowest of 5 calls: a call preempted on a
 * loaded host would put it that far off.  *window: that bracket in TSC
 * cycles (0 from KVM).  0 or -errno.
 */
static int restore_clock_now(struct vm *vm, struct kvm_clock_data *now, uint64_t *window)
{
	*window = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		struct kvm_clock_data c = {0};
		uint64_t t0, t1;

		_mm_lfence();
		t0 = __rdtsc();
		_mm_lfence();
		if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &c) < 0)
			return -errno;
		_mm_lfence();
		t1 = __rdtsc();
		_mm_lfence();
		if (c.flags & KVM_CLOCK_HOST_TSC) {
			*now = c;
			*window = 0;
			return 0;
		}
		if (t1 - t0 < *window) {
			*window = t1 - t0;
			*now = c;
			now->host_tsc = t0 + (t1 - t0) / 2;
			now->flags |= KVM_CLOCK_HOST_TSC;
		}
	}
	return 0;
}

/*
 * The TSCs go on from where they were, as far apart as they were, and
 * together with kvmclock, which KVM_SET_CLOCK has just set to the
 * snapshot's time: devices/vcpu.rst 4.1 steps 5-7.  restore_clock_now
 * gives kvmclock's time now (guest_dest) and the host's TSC at that
 * instant (tsc_dest); each TSC moves on by the kvmclock time passed since
 * the KVM_SET_CLOCK (on a loaded host the two calls can be milliseconds
 * apart): with KVM_VCPU_TSC_OFFSET on both sides and the same TSC rate,
 * each vCPU's offset is
 *   ofs_src - (guest_src - guest_dest) * freq + (tsc_src - tsc_dest)
 * (the snapshot saved guest_src and tsc_src as one pair: snapshot.c
 * capture_vm), and KVM takes the host's TSC and its time together when it
 * is set.  Else each vCPU's IA32_TSC is written as saved plus that time
 * (where the host has no master clock, vCPU 0's saved TSC is the one the
 * saved time was computed at); that write comes an ioctl after the time
 * was read (in the nested test, with L1's KVM reloading the vCPU's TSC on
 * each call, L2's TSC came back 115-143 us behind its kvmclock).  KVM
 * matches IA32_TSC writes across vCPUs only on a host whose TSC it trusts
 * (kvm_synchronize_tsc).  Then each IA32_TSC_DEADLINE, armed against the
 * TSC it was written for.
 */
static int restore_tsc(struct vm *vm, const struct snapshot_image *img,
		       const struct snapshot_vm_state *s, bool same_rate, char *err, size_t errlen)
{
	struct kvm_clock_data now = {0};
	uint64_t window;
	bool got = restore_clock_now(vm, &now, &window) == 0;
	bool offsets = same_rate && got && (s->clock_flags & KVM_CLOCK_HOST_TSC);
	int khz = s->tsc_khz ? (int)s->tsc_khz : ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	uint64_t passed = 0, value;
	int ret;

	/* (guest_dest - guest_src) * freq, in the guest's TSC cycles (kHz:
	 * cycles per ms); never back */
	if (got && now.clock > s->clock_ns && khz > 0)
		passed = (uint64_t)(((unsigned __int128)(now.clock - s->clock_ns) * (unsigned)khz) /
				    1000000u);
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
		uint64_t offset = tsc->offset + passed + (s->clock_host_tsc - now.host_tsc);
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
		ret = set_msr(&vm->vcpus[i], MSR_IA32_TSC, value + passed);
		if (ret)
			return error_text(err, errlen, ret, "vCPU %u: IA32_TSC: %s", i,
					  strerror(-ret));
	}
	if (log_get_level() >= LOG_LEVEL_DEBUG && captured_msr(img, 0, MSR_IA32_TSC, &value)) {
		struct {
			struct kvm_msrs header;
			struct kvm_msr_entry entry;
		} tsc = {.header.nmsrs = 1, .entry.index = MSR_IA32_TSC};
		char wbuf[64] = "by KVM with it";

		if (got && window)
			snprintf(wbuf, sizeof(wbuf), "here within %llu cycles",
				 (unsigned long long)window);
		if (ioctl(vm->vcpus[0].fd, KVM_GET_MSRS, &tsc) == 1)
			log_debug(
			    "restore: the TSCs by %s, %llu cycles on for the %lld ns of "
			    "kvmclock since KVM_SET_CLOCK (the host's TSC read %s); vCPU 0's is "
			    "%lld cycles past the snapshot's",
			    offsets ? "KVM_VCPU_TSC_OFFSET" : "IA32_TSC",
			    (unsigned long long)passed,
			    got ? (long long)(now.clock - s->clock_ns) : 0ll, wbuf,
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
