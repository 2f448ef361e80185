// SPDX-License-Identifier: MIT
/*
 * A state file's sections checked before anything is made of them
 * (core/snapshot_state.h): every section a restore reads is there with its exact
 * size, counts and indexes are in range.  No KVM here: the fuzzer
 * (tests/fuzz/fuzz_snapshot_state.c) runs it on arbitrary files.  What only
 * KVM can judge (a CPUID or register state this host takes) is judged by
 * KVM at restore.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/i8042.h"
#include "arch/x86/layout.h"
#include "arch/x86/serial.h"
#include "core/snapshot_state.h"
#include "devices/device_kind.h"
#include "devices/vhost_user_device.h"
#include "lib/log.h"

const void *snapshot_section_get(const struct snapshot_image *img, uint32_t type, uint32_t instance,
				 size_t len, bool at_least, size_t *got, char *err, size_t errlen)
{
	const struct snapshot_section *s = snapshot_image_find(img, type, instance);

	if (!s) {
		error_text(err, errlen, -EINVAL, "the state file has no section %u/%u", type,
			   instance);
		return NULL;
	}
	if (at_least ? s->len < len : s->len != len) {
		error_text(err, errlen, -EINVAL, "section %u/%u is %zu bytes, want %s%zu", type,
			   instance, s->len, at_least ? "at least " : "", len);
		return NULL;
	}
	if (got)
		*got = s->len;
	return s->data;
}

static int check_vm_state(const struct snapshot_vm_state *s, char *err, size_t errlen)
{
	uint64_t sum = 0;

	if (!s->nr_cpus || s->nr_cpus > CONFIG_MAX_CPUS)
		return error_text(err, errlen, -EINVAL, "the state file has %u vCPUs (1..%u)",
				  s->nr_cpus, CONFIG_MAX_CPUS);
	if (!s->nr_regions || s->nr_regions > 2)
		return error_text(err, errlen, -EINVAL, "the state file has %u memory regions",
				  s->nr_regions);
	for (unsigned i = 0; i < s->nr_regions; i++) {
		if (s->regions[i].file_offset != sum || s->regions[i].size % 4096 ||
		    s->regions[i].size > UINT64_MAX - sum)
			return error_text(err, errlen, -EINVAL,
					  "memory region %u is not where isola lays it out", i);
		sum += s->regions[i].size;
	}
	if (sum != s->memory_bytes || s->memory_bytes % 4096)
		return error_text(err, errlen, -EINVAL,
				  "the memory regions do not add up to the memory size");
	/* the bounds --memory has (core/config.c), with the same sentences'
	 * sense: a state file is untrusted, and a size no VM can have would
	 * only fail later in mmap or KVM with a bare errno */
	if (s->memory_bytes < LAYOUT_MIN_MEMORY)
		return error_text(
		    err, errlen, -EINVAL,
		    "the state file's memory is %llu KiB; isola's minimum is %llu MiB",
		    (unsigned long long)(s->memory_bytes >> 10),
		    (unsigned long long)(LAYOUT_MIN_MEMORY >> 20));
	long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
	uint64_t host = pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;
	if (host && s->memory_bytes > host)
		return error_text(err, errlen, -E2BIG,
				  "the state file's memory is %llu MiB, more than this host's %llu "
				  "MiB of RAM",
				  (unsigned long long)(s->memory_bytes >> 20),
				  (unsigned long long)(host >> 20));
	if (s->flags & ~SNAPSHOT_VM_TSC_DEADLINE)
		return error_text(err, errlen, -EINVAL, "unknown VM flags 0x%x", s->flags);
	return 0;
}

/* A section that is an array of entry-sized elements, 1..max of them
 * (0..max with empty_ok). */
static int check_array(const struct snapshot_image *img, uint32_t type, uint32_t cpu, size_t entry,
		       size_t max, bool empty_ok, const char *what, char *err, size_t errlen)
{
	const struct snapshot_section *s = snapshot_image_find(img, type, cpu);

	if (!s || s->len % entry || s->len / entry > max || (!s->len && !empty_ok))
		return error_text(err, errlen, -EINVAL, "vCPU %u: bad or missing %s section", cpu,
				  what);
	return 0;
}

static int check_vcpu(const struct snapshot_image *img, uint32_t cpu, char *err, size_t errlen)
{
	static const struct {
		uint32_t type;
		size_t len;
	} fixed[] = {
	    {SNAPSHOT_VCPU_REGS, sizeof(struct kvm_regs)},
	    {SNAPSHOT_VCPU_SREGS, sizeof(struct kvm_sregs)},
	    {SNAPSHOT_VCPU_XCRS, sizeof(struct kvm_xcrs)},
	    {SNAPSHOT_VCPU_LAPIC, sizeof(struct kvm_lapic_state)},
	    {SNAPSHOT_VCPU_EVENTS, sizeof(struct kvm_vcpu_events)},
	    {SNAPSHOT_VCPU_MP_STATE, sizeof(struct kvm_mp_state)},
	    {SNAPSHOT_VCPU_DEBUGREGS, sizeof(struct kvm_debugregs)},
	    {SNAPSHOT_VCPU_TSC, sizeof(struct snapshot_vcpu_tsc)},
	};
	const struct kvm_mp_state *mp;
	const struct snapshot_vcpu_tsc *tsc;
	size_t xsave_len;
	int ret;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!snapshot_section_get(img, fixed[i].type, cpu, fixed[i].len, false, NULL, err,
					  errlen))
			return -EINVAL;
	mp = snapshot_image_find(img, SNAPSHOT_VCPU_MP_STATE, cpu)->data;
	/* x86's states (api.rst KVM_SET_MP_STATE) */
	if (mp->mp_state > KVM_MP_STATE_SIPI_RECEIVED)
		return error_text(err, errlen, -EINVAL, "vCPU %u: mp_state %u", cpu, mp->mp_state);
	tsc = snapshot_image_find(img, SNAPSHOT_VCPU_TSC, cpu)->data;
	if (tsc->flags & ~SNAPSHOT_TSC_OFFSET_VALID)
		return error_text(err, errlen, -EINVAL, "vCPU %u: unknown TSC flags 0x%x", cpu,
				  tsc->flags);
	if (!snapshot_section_get(img, SNAPSHOT_VCPU_XSAVE, cpu, sizeof(struct kvm_xsave), true,
				  &xsave_len, err, errlen))
		return -EINVAL;
	if (xsave_len > SNAPSHOT_MAX_XSAVE || xsave_len % 4)
		return error_text(err, errlen, -EINVAL, "vCPU %u: XSAVE area of %zu bytes", cpu,
				  xsave_len);
	ret = check_array(img, SNAPSHOT_VCPU_CPUID, cpu, sizeof(struct kvm_cpuid_entry2),
			  SNAPSHOT_MAX_CPUID, false, "CPUID", err, errlen);
	if (!ret)
		ret = check_array(img, SNAPSHOT_VCPU_MSRS, cpu, sizeof(struct snapshot_msr),
				  SNAPSHOT_MAX_MSRS, true, "MSR", err, errlen);
	return ret;
}

static int check_platform(const struct snapshot_image *img, char *err, size_t errlen)
{
	const struct snapshot_serial_state *serial;
	const struct snapshot_rtc_state *rtc;
	const struct snapshot_i8042_state *kbc;

	if (!(serial = snapshot_section_get(img, SNAPSHOT_SERIAL, 0, sizeof(*serial), false, NULL,
					    err, errlen)) ||
	    !snapshot_section_get(img, SNAPSHOT_IOAPIC, 0, sizeof(struct snapshot_ioapic_state),
				  false, NULL, err, errlen) ||
	    !(rtc = snapshot_section_get(img, SNAPSHOT_RTC, 0, sizeof(*rtc), false, NULL, err,
					 errlen)) ||
	    !(kbc = snapshot_section_get(img, SNAPSHOT_I8042, 0, sizeof(*kbc), false, NULL, err,
					 errlen)) ||
	    !snapshot_section_get(img, SNAPSHOT_ACPI_PM, 0, sizeof(struct snapshot_acpi_pm_state),
				  false, NULL, err, errlen) ||
	    !snapshot_section_get(img, SNAPSHOT_PCI_HOST, 0, sizeof(struct snapshot_pci_host_state),
				  false, NULL, err, errlen))
		return -EINVAL;
	/* indexes into the devices' arrays */
	if (serial->rx_head >= SERIAL_RX_FIFO_SIZE || serial->rx_count > SERIAL_RX_FIFO_SIZE)
		return error_text(err, errlen, -EINVAL, "the UART's FIFO state is out of range");
	if (kbc->queue_head >= I8042_QUEUE_SIZE || kbc->queue_count > I8042_QUEUE_SIZE)
		return error_text(err, errlen, -EINVAL, "the i8042's queue state is out of range");
	if (rtc->index >= sizeof(rtc->cmos))
		return error_text(err, errlen, -EINVAL, "the RTC's index is out of range");
	return 0;
}

/* ---- virtio devices ------------------------------------------------------ */

static bool field_is_string(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

/* The arguments of entry e: NUL-terminated strings filling args_len bytes,
 * at most DEVICE_SERVER_MAX_ARGS of them, each an option e's kind allows
 * (devices/device_kind.c, the spawner's own list) followed by its value if
 * it takes one.  Fills argv (NULL-terminated) when not NULL. */
static int check_device_args(const struct snapshot_device_entry *e, const struct device_kind *kind,
			     const char **argv, char *err, size_t errlen)
{
	unsigned n = 0;

	for (uint32_t at = 0; at < e->args_len;) {
		const char *arg = e->args + at;
		const char *end = memchr(arg, '\0', e->args_len - at);
		const struct device_kind_option *opt;

		if (!end || n + 2 > SNAPSHOT_DEVICE_MAX_ARGS)
			return error_text(err, errlen, -EINVAL,
					  "device %s: its server's arguments are malformed",
					  e->name);
		opt = device_kind_option(kind, arg);
		if (argv)
			argv[n] = arg;
		n++;
		at = (uint32_t)(end - e->args) + 1;
		if (!opt)
			return error_text(err, errlen, -EINVAL,
					  "device %s: isola-%s takes no option '%.40s'", e->name,
					  kind->name, arg);
		if (!opt->has_value)
			continue;
		arg = e->args + at;
		end = at < e->args_len ? memchr(arg, '\0', e->args_len - at) : NULL;
		if (!end)
			return error_text(err, errlen, -EINVAL, "device %s: option %s has no value",
					  e->name, opt->name);
		if (argv)
			argv[n] = arg;
		n++;
		at = (uint32_t)(end - e->args) + 1;
	}
	if (argv)
		argv[n] = NULL;
	return 0;
}

int snapshot_check_device(const struct snapshot_image *img, uint32_t i, const char **argv,
			  char *err, size_t errlen)
{
	const struct snapshot_device_entry *e;
	const struct vhost_device_saved *rings;
	const struct snapshot_section *server;
	const struct device_kind *kind;
	bool external;

	e = snapshot_section_get(img, SNAPSHOT_DEVICE, i, sizeof(*e), false, NULL, err, errlen);
	if (!e)
		return -EINVAL;
	if (!field_is_string(e->kind, sizeof(e->kind)) ||
	    !field_is_string(e->name, sizeof(e->name)) ||
	    !field_is_string(e->socket, sizeof(e->socket)) || e->args_len > sizeof(e->args) ||
	    (e->flags & ~(SNAPSHOT_DEVICE_RESTART | SNAPSHOT_DEVICE_EXTERNAL)))
		return error_text(err, errlen, -EINVAL, "device %u's entry is malformed", i);
	kind = device_kind_by_name(e->kind);
	if (!kind)
		return error_text(err, errlen, -EINVAL,
				  "device %u is of no kind isola knows ('%s')", i, e->kind);
	external = e->flags & SNAPSHOT_DEVICE_EXTERNAL;
	if (external != (e->socket[0] != '\0') || (external && e->args_len))
		return error_text(err, errlen, -EINVAL,
				  "device %s: an external back-end has a socket and no arguments",
				  e->name);
	if (check_device_args(e, kind, argv, err, errlen))
		return -EINVAL;
	rings = snapshot_section_get(img, SNAPSHOT_DEVICE_RINGS, i, sizeof(*rings), false, NULL,
				     err, errlen);
	if (!rings)
		return error_text(
		    err, errlen, -EINVAL,
		    "device %s has no virtio-pci transport section (%u/%u): the state "
		    "file is not whole",
		    e->name, SNAPSHOT_DEVICE_RINGS, i);
	if (rings->pci.device_id != kind->virtio_id)
		return error_text(err, errlen, -EINVAL,
				  "device %s: its transport is virtio type %u, its kind %s is %u",
				  e->name, rings->pci.device_id, kind->name, kind->virtio_id);
	server = snapshot_image_find(img, SNAPSHOT_DEVICE_SERVER, i);
	if (!server != !(rings->flags & VHOST_DEVICE_SAVED_HAS_STATE) ||
	    (server && (!server->len || server->len > VHOST_DEVICE_STATE_MAX)))
		return error_text(err, errlen, -EINVAL,
				  "device %s: its server's state section is %s", e->name,
				  server ? "not what its transport says" : "missing");
	return 0;
}

unsigned snapshot_device_count(const struct snapshot_image *img)
{
	unsigned n = 0;

	while (n <= SNAPSHOT_MAX_DEVICES && snapshot_image_find(img, SNAPSHOT_DEVICE, n))
		n++;
	return n;
}

static int check_devices(const struct snapshot_image *img, char *err, size_t errlen)
{
	unsigned n = snapshot_device_count(img);

	if (n > SNAPSHOT_MAX_DEVICES)
		return error_text(err, errlen, -EINVAL, "the state file has more than %u devices",
				  SNAPSHOT_MAX_DEVICES);
	/* no device section beyond the entries: a lost entry is not a device
	 * quietly dropped */
	for (size_t k = 0; k < img->n_sections; k++) {
		const struct snapshot_section *s = &img->sections[k];

		if ((s->type == SNAPSHOT_DEVICE || s->type == SNAPSHOT_DEVICE_RINGS ||
		     s->type == SNAPSHOT_DEVICE_SERVER) &&
		    s->instance >= n)
			return error_text(err, errlen, -EINVAL,
					  "section %u/%u belongs to device %u, and the state file "
					  "lists %u device(s): it is not whole",
					  s->type, s->instance, s->instance, n);
	}
	for (unsigned i = 0; i < n; i++) {
		int ret = snapshot_check_device(img, i, NULL, err, errlen);

		if (ret)
			return ret;
	}
	return 0;
}

int snapshot_check_image(const struct snapshot_image *img, char *err, size_t errlen)
{
	const struct snapshot_vm_state *s;
	int ret;

	s = snapshot_section_get(img, SNAPSHOT_VM, 0, sizeof(*s), false, NULL, err, errlen);
	if (!s)
		return -EINVAL;
	ret = check_vm_state(s, err, errlen);
	for (uint32_t cpu = 0; !ret && cpu < s->nr_cpus; cpu++)
		ret = check_vcpu(img, cpu, err, errlen);
	ret = ret ?: check_platform(img, err, errlen);
	return ret ?: check_devices(img, err, errlen);
}
