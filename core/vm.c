// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"
#include "core/hugepages.h"
#include "lib/log.h"

static void vm_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vm_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void vm_request_stop(struct vm *vm, int status, const char *fmt, ...)
{
	int running = -1;
	uint64_t one = 1;
	va_list ap;

	if (!atomic_compare_exchange_strong(&vm->exit_status, &running, status))
		return;
	va_start(ap, fmt);
	vsnprintf(vm->exit_message, sizeof(vm->exit_message), fmt, ap);
	va_end(ap);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* eventfd writes fail only on counter overflow: impossible here */
	}
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	/* Parked vCPUs must see the stop too. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

#define VM_PAUSE_TIMEOUT_MS 5000

static int vm_wait_locked(struct vm *vm, bool (*done)(struct vm *, unsigned), unsigned arg)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_MS / 1000;
	while (!done(vm, arg) && atomic_load(&vm->exit_status) < 0)
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline) ==
		    ETIMEDOUT)
			return -ETIMEDOUT;
	return atomic_load(&vm->exit_status) < 0 ? 0 : -ESHUTDOWN;
}

static bool vm_all_parked(struct vm *vm, unsigned unused)
{
	(void)unused;
	return vm->parked == vm->nr_cpus;
}

static bool vm_devices_served(struct vm *vm, unsigned generation)
{
	return vm->device_generation != generation;
}

/* Hand device work to the event loop and wait until it has run. */
static int vm_device_work_sync(struct vm *vm, unsigned work)
{
	unsigned generation;
	int ret;

	if (!vm->devices->nr)
		return 0;
	pthread_mutex_lock(&vm->pause_lock);
	generation = vm->device_generation;
	pthread_mutex_unlock(&vm->pause_lock);
	device_set_queue_work(vm->devices, work);
	pthread_mutex_lock(&vm->pause_lock);
	ret = vm_wait_locked(vm, vm_devices_served, generation);
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

bool vm_is_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->pause_lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}

/* Every vCPU out of KVM_RUN and parked (vcpu_park_if_paused); with
 * MARK_PAUSED the VM counts as paused from then on.  On a timeout the
 * vCPUs are let go again. */
static int vm_park_all(struct vm *vm, bool mark_paused)
{
	int ret;

	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, true);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	ret = vm_wait_locked(vm, vm_all_parked, 0);
	if (!ret && mark_paused)
		vm->paused = true;
	pthread_mutex_unlock(&vm->pause_lock);
	if (ret)
		vm_release_vcpus(vm);
	return ret;
}

int vm_park_vcpus(struct vm *vm)
{
	if (vm_is_paused(vm))
		return -EBUSY;
	return vm_park_all(vm, false);
}

void vm_unpark_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (!vm->paused) { /* a pause that came meanwhile keeps them */
		atomic_store(&vm->pause_requested, false);
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	if (vm_is_paused(vm))
		return 0; /* Firecracker: pausing a paused VM succeeds */
	ret = vm_park_all(vm, true);
	if (ret) {
		vm_err(err, errlen, "the vCPUs did not stop within %d ms: %s", VM_PAUSE_TIMEOUT_MS,
		       strerror(-ret));
		return ret;
	}
	ret = vm_device_work_sync(vm, VHOST_DEVICE_WORK_PAUSE);
	if (ret)
		log_warn("pause: device servers did not confirm: %s", strerror(-ret));
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	(void)err;
	(void)errlen;
	if (!vm_is_paused(vm))
		return 0;
	ret = vm_device_work_sync(vm, VHOST_DEVICE_WORK_RESUME);
	if (ret)
		log_warn("resume: device servers did not confirm: %s", strerror(-ret));
	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = false;
	pthread_mutex_unlock(&vm->pause_lock);
	vm_release_vcpus(vm);
	return 0;
}

/* ---- interrupt routing ------------------------------------------------ */

int vm_signal_msi(struct vm *vm, uint64_t address, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)address,
	    .address_hi = (uint32_t)(address >> 32),
	    .data = data,
	};

	/* api.rst KVM_SIGNAL_MSI: >0 delivered, 0 blocked by the guest. */
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

static int vm_deliver_msi(void *opaque, uint64_t address, uint32_t data)
{
	return vm_signal_msi(opaque, address, data);
}

/* Keep KVM's GSI table in step with the IOAPIC so KVM knows which vectors
 * are level-triggered and reports their EOI (api.rst KVM_CAP_SPLIT_IRQCHIP). */
static void vm_update_ioapic_route(void *opaque, unsigned pin, uint64_t address, uint32_t data,
				   bool masked)
{
	struct vm *vm = opaque;
	struct kvm_irq_routing_entry *entry;

	pthread_mutex_lock(&vm->routes_lock);
	entry = &vm->routes->entries[pin];
	entry->gsi = pin;
	entry->type = KVM_IRQ_ROUTING_MSI;
	entry->u.msi.address_lo = (uint32_t)address;
	entry->u.msi.address_hi = (uint32_t)(address >> 32);
	/* A masked pin routes nowhere: vector 0 is never level-triggered. */
	entry->u.msi.data = masked ? 0 : data;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
		log_warn("KVM_SET_GSI_ROUTING: %s", strerror(errno));
	pthread_mutex_unlock(&vm->routes_lock);
}

int vm_sync_ioapic_routes(struct vm *vm)
{
	int ret = 0;

	pthread_mutex_lock(&vm->routes_lock);
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		struct kvm_irq_routing_entry *entry = &vm->routes->entries[pin];
		uint64_t entry_bits = vm->ioapic.redirection[pin], address;
		uint32_t data;

		ioapic_entry_to_msi(entry_bits, &address, &data);
		entry->gsi = pin;
		entry->type = KVM_IRQ_ROUTING_MSI;
		entry->u.msi.address_lo = (uint32_t)address;
		entry->u.msi.address_hi = (uint32_t)(address >> 32);
		/* as vm_update_ioapic_route: a masked pin routes nowhere */
		entry->u.msi.data = entry_bits & IOAPIC_RTE_MASKED ? 0 : data;
	}
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
		ret = -errno;
	pthread_mutex_unlock(&vm->routes_lock);
	return ret;
}

int vm_set_msi_route(struct vm *vm, unsigned gsi, uint64_t address, uint32_t data)
{
	struct kvm_irq_routing_entry *entry = NULL;
	int ret = 0;

	if (gsi < IOAPIC_NR_PINS || gsi >= VM_MAX_GSI_ROUTES)
		return -EINVAL;
	pthread_mutex_lock(&vm->routes_lock);
	for (unsigned i = IOAPIC_NR_PINS; i < vm->routes->nr; i++)
		if (vm->routes->entries[i].gsi == gsi)
			entry = &vm->routes->entries[i];
	if (!entry)
		entry = &vm->routes->entries[vm->routes->nr++];
	memset(entry, 0, sizeof(*entry));
	entry->gsi = gsi;
	entry->type = KVM_IRQ_ROUTING_MSI;
	entry->u.msi.address_lo = (uint32_t)address;
	entry->u.msi.address_hi = (uint32_t)(address >> 32);
	entry->u.msi.data = data;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
		ret = -errno;
	pthread_mutex_unlock(&vm->routes_lock);
	return ret;
}

const struct ioapic_ops vm_ioapic_ops = {
    .deliver_msi = vm_deliver_msi,
    .update_route = vm_update_ioapic_route,
};

void vm_serve_devices(struct vm *vm)
{
	device_set_serve(vm->devices);
	pthread_mutex_lock(&vm->pause_lock);
	vm->device_generation++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

/* ---- creation --------------------------------------------------------- */

static int vm_open_kvm(struct vm *vm, char *err, size_t errlen)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int ret = -errno;

		vm_err(err, errlen,
		       "cannot open /dev/kvm: %s; load the kvm module and run as a user who may "
		       "use it (group kvm or root)",
		       strerror(errno));
		return ret;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		vm_err(err, errlen, "/dev/kvm speaks API version %d, isola needs %d", version,
		       KVM_API_VERSION);
		return -ENOTSUP;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		int ret = -errno;

		vm_err(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return ret;
	}
	return 0;
}

static int vm_setup_irqchip(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {IOAPIC_NR_PINS}};

	/* LAPICs in KVM, IOAPIC here: 24 GSIs reserved for its pins. */
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		int ret = -errno;

		vm_err(err, errlen, "KVM_CAP_SPLIT_IRQCHIP: %s; isola needs Linux 4.4 or newer",
		       strerror(errno));
		return ret;
	}
	vm->routes = calloc(1, sizeof(*vm->routes) +
				   VM_MAX_GSI_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!vm->routes)
		return -ENOMEM;
	vm->routes->nr = IOAPIC_NR_PINS;
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		vm->routes->entries[pin].gsi = pin;
		vm->routes->entries[pin].type = KVM_IRQ_ROUTING_MSI;
		vm->routes->entries[pin].u.msi.address_lo = (uint32_t)LAYOUT_LAPIC;
	}
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0) {
		int ret = -errno;

		vm_err(err, errlen, "KVM_SET_GSI_ROUTING: %s", strerror(errno));
		return ret;
	}
	return 0;
}

int vm_ram_create(struct gmem *ram, const struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t bytes = cfg->memory_bytes;
	bool hugetlb = cfg->huge_pages == CONFIG_HUGE_PAGES_2M;
	int ret;

	ret = gmem_create(ram, bytes, hugetlb ? GMEM_BACKING_HUGETLB_2M : GMEM_BACKING_SHMEM);
	if (ret && hugetlb)
		return hugepages_error(ret, bytes, err, errlen);
	if (ret)
		vm_err(err, errlen, "cannot create %llu MiB of guest memory: %s",
		       (unsigned long long)(bytes >> 20), strerror(-ret));
	return ret;
}

static int vm_setup_memory(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->mem->nr_regions; i++) {
		const struct gmem_region *r = &vm->mem->regions[i];
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    /* api.rst KVM_SET_USER_MEMORY_REGION: "KVM_MEM_LOG_DIRTY_PAGES
		     * ... keep track of writes to memory within the slot", read
		     * with KVM_GET_DIRTY_LOG (Diff snapshots) */
		    .flags = vm->track_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		if (vm->track_dirty) {
			vm->dirty_pending[i] = calloc((r->size / 4096 + 63) / 64, sizeof(uint64_t));
			if (!vm->dirty_pending[i]) {
				vm_err(err, errlen, "out of memory for the dirty page log");
				return -ENOMEM;
			}
		}

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			int ret = -errno;

			vm_err(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return ret;
		}
	}
	return 0;
}

/* Whoever claims the slots first makes them: the thread, or, when it has
 * not run yet (no free CPU), vm_memory_ready itself (no waiting for it). */
static void *vm_memory_thread(void *arg)
{
	struct vm *vm = arg;

	if (!atomic_exchange(&vm->memory_claimed, true))
		vm->memory_ret = vm_setup_memory(vm, vm->memory_err, sizeof(vm->memory_err));
	return NULL;
}

/* The slots on a thread of their own (struct vm's memory_thread says why);
 * here when none can be started. */
static int vm_memory_start(struct vm *vm, char *err, size_t errlen)
{
	if (!pthread_create(&vm->memory_thread, NULL, vm_memory_thread, vm)) {
		vm->memory_thread_started = true;
		return 0;
	}
	atomic_store(&vm->memory_claimed, true);
	vm->memory_done = true;
	return vm->memory_ret = vm_setup_memory(vm, err, errlen);
}

int vm_memory_ready(struct vm *vm, char *err, size_t errlen)
{
	if (!vm->memory_done) {
		if (!atomic_exchange(&vm->memory_claimed, true)) {
			vm->memory_ret =
			    vm_setup_memory(vm, vm->memory_err, sizeof(vm->memory_err));
		} else {
			pthread_join(vm->memory_thread, NULL);
			vm->memory_thread_started = false;
		}
		vm->memory_done = true;
	}
	if (vm->memory_ret)
		vm_err(err, errlen, "%s", vm->memory_err);
	return vm->memory_ret;
}

/* ---- creation ---------------------------------------------------------- */

int vm_create(struct vm *vm, const struct vm_config *cfg, struct gmem *ram,
	      struct device_set *devices, int console_out_fd, char *err, size_t errlen)
{
	int ret;

	/* vm is zero: static storage, one VM per process (its size would make
	 * a memset fault in pages that are otherwise never touched). */
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = vm->rx_space_fd = -1;
	vm->mem = ram;
	vm->devices = devices;
	for (unsigned i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpus[i].fd = -1;
	atomic_init(&vm->exit_status, -1);
	pthread_mutex_init(&vm->routes_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->nr_cpus = cfg->nr_cpus;
	vm->console_out_fd = console_out_fd;
	vm->track_dirty = cfg->track_dirty_pages;
	/* a restored VM's memory file is the base its first Diff is against;
	 * a booted VM has none until its first snapshot */
	vm->dirty_base = cfg->restore_state_path != NULL;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm->rx_space_fd < 0) {
		vm_err(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	ret = vm_open_kvm(vm, err, errlen);
	if (ret)
		return ret;
	ret = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (ret > 0 && cfg->nr_cpus > (unsigned)ret) {
		vm_err(err, errlen, "--cpus %u is more than this host's KVM allows (%d)",
		       cfg->nr_cpus, ret);
		return -EINVAL;
	}
	ret = vm_setup_irqchip(vm, err, errlen);
	if (ret)
		return ret;
	/* the vCPUs' CPUID says TSC-deadline only if KVM emulates it (api.rst
	 * KVM_CAP_TSC_DEADLINE_TIMER): cpuid_set_tsc_deadline() says why */
	vm->tsc_deadline = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	/* From here on, beside the vCPUs' creation; the board waits
	 * (vm_memory_ready) before what needs guest memory.  After the
	 * irqchip: begun before it, the irqchip's KVM_SET_GSI_ROUTING (an
	 * SRCU grace period) took as long as the 2 GiB slot itself
	 * (docs/snapshot.md "Restore time"). */
	ret = vm_memory_start(vm, err, errlen);
	if (ret)
		return ret;
	ret = e820_build(&vm->e820, vm->mem->ram_size);
	if (ret) {
		vm_err(err, errlen, "cannot build the e820 map: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int vm_create_vcpus(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_create(vm, i);
		if (ret) {
			vm_err(err, errlen, "cannot create vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	/* the boot vCPU's registers: its SREGS with paging on read guest memory */
	ret = vm_memory_ready(vm, err, errlen);
	if (ret)
		return ret;
	ret = vcpu_setup_boot(&vm->vcpus[0]);
	if (ret)
		vm_err(err, errlen, "cannot set the boot vCPU's registers: %s", strerror(-ret));
	return ret;
}

void vm_hold_vcpus(struct vm *vm)
{
	atomic_store(&vm->pause_requested, true);
}

void vm_hold_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, true);
	vm->paused = true;
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_release_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	int ready = vm_memory_ready(vm, err, errlen); /* no KVM_RUN before */

	if (ready)
		return ready;
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		int ret = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);

		if (ret) {
			vm_err(err, errlen, "cannot start vCPU thread %u: %s", i, strerror(ret));
			vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "cannot start vCPU threads");
			return -ret;
		}
		vm->vcpus[i].thread_started = true;
	}
	return 0;
}

void vm_join_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].thread_started = false;
	}
}

void vm_destroy(struct vm *vm)
{
	/* the memory thread uses vm_fd: it ends first (at once if unclaimed) */
	atomic_store(&vm->memory_claimed, true);
	if (vm->memory_thread_started)
		pthread_join(vm->memory_thread, NULL);
	vm->memory_thread_started = false;
	vm_join_vcpus(vm);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->routes);
	vm->routes = NULL;
	for (unsigned i = 0; i < GMEM_MAX_REGIONS; i++) {
		free(vm->dirty_pending[i]);
		vm->dirty_pending[i] = NULL;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->rx_space_fd >= 0)
		close(vm->rx_space_fd);
	pthread_mutex_destroy(&vm->routes_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	vm->vm_fd = vm->kvm_fd = vm->stop_fd = vm->rx_space_fd = -1;
}
