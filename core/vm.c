// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"
#include "core/hugepages.h"
#include "core/supervisor.h"
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

	if (!vm->nr_devices)
		return 0;
	pthread_mutex_lock(&vm->pause_lock);
	generation = vm->device_generation;
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_devices; i++)
		vhost_device_queue_work(&vm->devices[i], work);
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

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&vm->pause_lock);
	if (vm->paused) {
		pthread_mutex_unlock(&vm->pause_lock);
		return 0; /* Firecracker: pausing a paused VM succeeds */
	}
	atomic_store(&vm->pause_requested, true);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	ret = vm_wait_locked(vm, vm_all_parked, 0);
	if (!ret)
		vm->paused = true;
	pthread_mutex_unlock(&vm->pause_lock);
	if (ret) {
		atomic_store(&vm->pause_requested, false);
		pthread_mutex_lock(&vm->pause_lock);
		pthread_cond_broadcast(&vm->pause_cond);
		pthread_mutex_unlock(&vm->pause_lock);
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
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	return 0;
}

void vm_send_ctrl_alt_del(struct vm *vm)
{
	i8042_send_ctrl_alt_del(&vm->i8042);
}

static void vm_event_reset(void *opaque, const char *source)
{
	vm_request_stop(opaque, ISOLA_EXIT_RESET, "guest requested a reset (%s)", source);
}

static void vm_event_poweroff(void *opaque, const char *source)
{
	vm_request_stop(opaque, ISOLA_EXIT_POWEROFF, "guest powered off (%s)", source);
}

/* ---- interrupt routing ------------------------------------------------ */

static int vm_deliver_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct vm *vm = opaque;
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)address,
	    .address_hi = (uint32_t)(address >> 32),
	    .data = data,
	};

	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
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

static const struct ioapic_ops vm_ioapic_ops = {
    .deliver_msi = vm_deliver_msi,
    .update_route = vm_update_ioapic_route,
};

void vm_set_isa_irq(struct vm *vm, unsigned irq, bool level)
{
	/* ISA IRQ 0 is wired to GSI 2 (MADT interrupt source override). */
	ioapic_set_irq(&vm->ioapic, irq == 0 ? 2 : irq, level);
}

static void vm_serial_irq(void *opaque, bool level)
{
	vm_set_isa_irq(opaque, ISOLA_IRQ_COM1, level);
}

static void vm_i8042_irq(void *opaque, bool level)
{
	vm_set_isa_irq(opaque, 1, level);
}

static void vm_serial_rx_space(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->rx_space_fd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

static void vm_debug_exit(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;
	uint32_t value = 0;

	(void)offset;
	if (!is_write)
		return; /* reads as all-ones (bus default) */
	memcpy(&value, data, len > 4 ? 4 : len);
	vm_request_stop(vm, ISOLA_DEBUG_EXIT_STATUS(value),
			"guest wrote 0x%x to the debug-exit port (exit status %d)", value,
			ISOLA_DEBUG_EXIT_STATUS(value));
}

static void vm_pci_ports(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (offset == ISOLA_PORT_RESET - ISOLA_PORT_PCI_CONFIG_ADDRESS && len == 1)
		acpi_pm_reset_access(&vm->pm, 0, data, len, is_write);
	else
		pci_host_port_access(&vm->pci, offset, data, len, is_write);
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

static int vm_setup_memory(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t bytes = cfg->memory_bytes;
	bool hugetlb = cfg->huge_pages == CONFIG_HUGE_PAGES_2M;
	int ret;

	if (vm->kept && vm->kept->mem.fd >= 0) {
		/* A reboot, with the same configuration: the last VM's RAM,
		 * emptied (struct vm_kept says why). */
		vm->mem = vm->kept->mem;
		gmem_init_empty(&vm->kept->mem);
		ret = gmem_reset(&vm->mem);
	} else {
		ret = gmem_create(&vm->mem, bytes,
				  hugetlb ? GMEM_BACKING_HUGETLB_2M : GMEM_BACKING_SHMEM);
	}

	if (ret && hugetlb)
		return hugepages_error(ret, bytes, err, errlen);
	if (ret) {
		vm_err(err, errlen, "cannot create %llu MiB of guest memory: %s",
		       (unsigned long long)(bytes >> 20), strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gmem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			ret = -errno;
			vm_err(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return ret;
		}
	}
	return 0;
}

static int vm_setup_devices(struct vm *vm, int console_out_fd)
{
	int ret = 0;

	vm->events = (struct platform_events){vm_event_reset, vm_event_poweroff, vm};
	serial_init(&vm->serial, console_out_fd, vm_serial_irq, vm_serial_rx_space, vm);
	/* The MADT gives the IOAPIC the same ID. */
	ioapic_init(&vm->ioapic, acpi_ioapic_id(vm->nr_cpus), &vm_ioapic_ops, vm);
	i8042_init(&vm->i8042, &vm->events, vm_i8042_irq, vm);
	rtc_init(&vm->rtc, vm->mem.ram_size);
	acpi_pm_init(&vm->pm, &vm->events);
	pci_host_init(&vm->pci);
	vm->devices_ready = true;

	ret |= bus_register(&vm->pio, ISOLA_PORT_COM1, 8, serial_access, &vm->serial, "com1");
	ret |= bus_register(&vm->pio, ISOLA_PORT_I8042_DATA, 5, i8042_access, &vm->i8042, "i8042");
	ret |= bus_register(&vm->pio, ISOLA_PORT_RTC_INDEX, 2, rtc_access, &vm->rtc, "rtc");
	ret |= bus_register(&vm->pio, ISOLA_DEBUG_EXIT_PORT, 4, vm_debug_exit, vm, "debug-exit");
	/* 0xCF8..0xCFF: PCI configuration mechanism #1, with the reset control
	 * register at 0xCF9 in the middle of CONFIG_ADDRESS, as on a PC. */
	ret |= bus_register(&vm->pio, ISOLA_PORT_PCI_CONFIG_ADDRESS, 8, vm_pci_ports, vm,
			    "pci-config");
	ret |= bus_register(&vm->pio, ISOLA_PORT_ACPI_PM1A_EVT, 12, acpi_pm_access, &vm->pm,
			    "acpi-pm");
	ret |= bus_register(&vm->mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_SIZE, ioapic_access, &vm->ioapic,
			    "ioapic");
	ret |= bus_register(&vm->mmio, LAYOUT_ECAM_START, LAYOUT_ECAM_SIZE, pci_host_ecam_access,
			    &vm->pci, "pci-ecam");
	return ret ? -EINVAL : 0;
}

static int vm_read_file(const char *what, const char *path, uint8_t **data, size_t *size,
			uint64_t limit, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret = 0;
	size_t done = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vm_err(err, errlen, "%s %s: %s; check the path", what, path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vm_err(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > limit) {
		vm_err(err, errlen,
		       "%s %s is %llu MiB, larger than the guest's memory; raise --memory", what,
		       path, (unsigned long long)st.st_size >> 20);
		close(fd);
		return -EFBIG;
	}
	*size = (size_t)st.st_size;
	*data = malloc(*size ? *size : 1);
	if (!*data) {
		close(fd);
		return -ENOMEM;
	}
	while (done < *size) {
		ssize_t n = read(fd, *data + done, *size - done);

		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			vm_err(err, errlen, "%s %s: read: %s", what, path,
			       n < 0 ? strerror(errno) : "file shrank while reading");
			free(*data);
			*data = NULL;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	return ret;
}

static int vm_load_kernel(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct boot_images images = {.cmdline = cfg->cmdline};
	uint8_t *kernel = NULL, *initrd = NULL;
	uint8_t *acpi;
	size_t acpi_used;
	struct acpi_config acpi_cfg = {.nr_cpus = vm->nr_cpus};
	int ret;

	acpi = gmem_ptr(&vm->mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	if (!acpi)
		return -ENOMEM;
	ret = acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &acpi_cfg, &acpi_used);
	if (ret) {
		vm_err(err, errlen, "cannot build ACPI tables: %s", strerror(-ret));
		return ret;
	}
	images.rsdp_gpa = LAYOUT_ACPI_START;

	ret = vm_read_file("kernel", cfg->kernel_path, &kernel, &images.kernel_size,
			   vm->mem.ram_size, err, errlen);
	if (ret)
		return ret;
	images.kernel = kernel;
	if (cfg->initrd_path) {
		ret = vm_read_file("initrd", cfg->initrd_path, &initrd, &images.initrd_size,
				   vm->mem.ram_size, err, errlen);
		if (ret)
			goto out;
		images.initrd = initrd;
	}
	ret = boot_load(&vm->mem, &vm->e820, &images, &vm->entry, err, errlen);
	if (ret) {
		char why[512];

		/* Name the file the loader is talking about. */
		snprintf(why, sizeof(why), "%s", err);
		vm_err(err, errlen, "kernel %s: %s", cfg->kernel_path, why);
		goto out;
	}
	ret = boot_cpu_write_tables(&vm->mem, &vm->entry);
	if (ret)
		vm_err(err, errlen, "cannot write boot page tables: %s", strerror(-ret));
out:
	free(kernel);
	free(initrd);
	return ret;
}

/* PCI classes of the virtio devices. */
#define PCI_CLASS_STORAGE_OTHER 0x0180
#define PCI_CLASS_OTHER 0xff00

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spawn the device's server or connect to its external back-end. */
static int vm_device_connect(struct vm *vm, unsigned index, int *sock, char *why, size_t len)
{
	struct vm_device_server *srv = &vm->servers[index];
	pid_t pid = 0;
	int ret;

	if (srv->socket_path)
		return supervisor_connect(srv->socket_path, sock, why, len);
	ret = supervisor_spawn(srv->server, srv->args, &pid, sock, why, len);
	if (!ret)
		vm->devices[index].server_pid = pid;
	return ret;
}

/* The back-end the previous boot left for device index, if any. */
static bool vm_adopt_server(struct vm *vm, unsigned index, int *sock)
{
	struct vm_kept *kept = vm->kept;

	if (!kept || index >= kept->nr || kept->sock[index] < 0)
		return false;
	*sock = kept->sock[index];
	vm->devices[index].server_pid = kept->pid[index];
	kept->sock[index] = -1;
	kept->pid[index] = 0;
	return true;
}

/* vm->servers[vm->nr_devices] is filled in by the caller. */
static int vm_add_device(struct vm *vm, const char *name, uint16_t device_id, uint16_t pci_class,
			 char *err, size_t errlen)
{
	unsigned index = vm->nr_devices;
	struct vhost_device *dev = &vm->devices[index];
	char why[384];
	pid_t pid;
	int sock, ret;

	/* A back-end kept across a reboot first; if it does not take the new
	 * VM, it is ended and a fresh one tried, once. */
	for (bool adopted = vm_adopt_server(vm, index, &sock);; adopted = false) {
		if (!adopted) {
			ret = vm_device_connect(vm, index, &sock, why, sizeof(why));
			if (ret) {
				vm_err(err, errlen, "%s: %s", name, why);
				return ret;
			}
		}
		pid = dev->server_pid;
		ret = vhost_device_create(dev, vm, name, index, device_id, pci_class, sock,
					  vm->device_work_fd, why, sizeof(why));
		dev->server_pid = pid;
		if (!ret || !adopted)
			break;
		log_warn("%s: the back-end kept across the reboot failed (%s); replacing it", name,
			 why);
		vhost_device_destroy(dev);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		dev->server_pid = 0;
	}
	vm->nr_devices++; /* destroyed by vm_destroy even when half made */
	if (ret)
		vm_err(err, errlen, "%s: vhost-user set-up failed: %s", name, why);
	return ret;
}

/* isola-blk's arguments for disk, named name ("disk0"). */
static void vm_disk_server_args(struct vm_device_server *srv, const struct disk_config *disk,
				const char *name)
{
	unsigned n = 0;

	snprintf(srv->default_id, sizeof(srv->default_id), "%s", name);
	/* The strings live in cfg, which outlives the VM. */
	srv->args[n++] = "--image";
	srv->args[n++] = disk->path;
	srv->args[n++] = "--id";
	srv->args[n++] = disk->id[0] ? disk->id : srv->default_id;
	if (disk->readonly)
		srv->args[n++] = "--readonly";
	srv->args[n] = NULL;
}

/* vm.h; the servers are asked for in the order vm_add_devices() asks. */
void vm_prespawn_servers(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		struct vm_device_server srv = {0};
		char name[16];

		if (cfg->disks[i].socket[0])
			continue;
		snprintf(name, sizeof(name), "disk%u", i);
		vm_disk_server_args(&srv, &cfg->disks[i], name);
		if (supervisor_prespawn("blk", srv.args))
			return;
	}
	if (cfg->rng)
		supervisor_prespawn("rng", (const char *const[]){NULL});
}

static int vm_add_devices(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	int ret = 0;

	for (unsigned i = 0; i < cfg->nr_disks && !ret; i++) {
		const struct disk_config *disk = &cfg->disks[i];
		struct vm_device_server *srv = &vm->servers[vm->nr_devices];
		char name[16];

		snprintf(name, sizeof(name), "disk%u", i);
		*srv = (struct vm_device_server){.server = "blk", .restart = !disk->no_restart};
		if (disk->socket[0]) {
			srv->server = NULL;
			srv->socket_path = disk->socket;
			ret = vm_add_device(vm, name, VIRTIO_ID_BLOCK, PCI_CLASS_STORAGE_OTHER, err,
					    errlen);
			continue;
		}
		/* Checked at the first boot; a reboot's filter has no access(2)
		 * (a new server that cannot open the image says so itself). */
		if (!vm->kept && access(disk->path, disk->readonly ? R_OK : R_OK | W_OK) < 0) {
			vm_err(err, errlen, "disk %s: %s; %s", disk->path, strerror(errno),
			       errno == EACCES && !disk->readonly
				   ? "make it writable or add readonly=on"
				   : "check the path");
			return -errno;
		}
		vm_disk_server_args(srv, disk, name);
		ret =
		    vm_add_device(vm, name, VIRTIO_ID_BLOCK, PCI_CLASS_STORAGE_OTHER, err, errlen);
	}
	if (!ret && cfg->rng) {
		vm->servers[vm->nr_devices] =
		    (struct vm_device_server){.server = "rng", .restart = !cfg->rng_no_restart};
		ret = vm_add_device(vm, "rng0", VIRTIO_ID_RNG, PCI_CLASS_OTHER, err, errlen);
	}
	return ret;
}

void vm_serve_devices(struct vm *vm)
{
	uint64_t count;

	if (read(vm->device_work_fd, &count, sizeof(count)) < 0) {
		/* non-blocking: nothing queued */
	}
	for (unsigned i = 0; i < vm->nr_devices; i++)
		vhost_device_process(&vm->devices[i]);
	pthread_mutex_lock(&vm->pause_lock);
	vm->device_generation++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

static const char *vm_server_name(const struct vm *vm, unsigned index)
{
	return vm->devices[index].pci.device_id == VIRTIO_ID_RNG ? "isola-rng" : "isola-blk";
}

/* The old server must be gone (and reaped) before a new one takes over:
 * give it a moment to finish dying, then make sure. */
static void vm_bury_server(struct vm *vm, unsigned index, char *how, size_t len)
{
	struct vhost_device *dev = &vm->devices[index];
	pid_t pid = dev->server_pid;
	char status_text[128];
	int status;

	snprintf(how, len, "hung up");
	if (pid <= 0)
		return;
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			supervisor_describe_status(status, status_text, sizeof(status_text));
			snprintf(how, len, "(pid %d) %s", (int)pid, status_text);
			dev->server_pid = 0;
			return;
		}
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	snprintf(how, len, "(pid %d) hung up and was killed", (int)pid);
	dev->server_pid = 0;
}

static void vm_give_up(struct vm *vm, unsigned index, const char *why)
{
	struct vm_device_server *srv = &vm->servers[index];

	srv->pending = false;
	srv->given_up = true;
	log_error("%s: %s; the device needs a reset (the VM keeps running)",
		  vm->devices[index].name, why);
	virtio_pci_set_needs_reset(&vm->devices[index].pci);
}

/* Try once to bring the device's back-end back; true when it is back. */
static bool vm_device_try_restart(struct vm *vm, unsigned index)
{
	struct vm_device_server *srv = &vm->servers[index];
	struct vhost_device *dev = &vm->devices[index];
	char why[384];
	uint64_t took;
	int sock;

	if (vm_device_connect(vm, index, &sock, why, sizeof(why)) == 0 &&
	    vhost_device_reconnect(dev, sock, why, sizeof(why)) == 0) {
		took = now_ns() - srv->lost_ns;
		srv->pending = false;
		srv->failed_starts = 0;
		srv->last_failure[0] = '\0';
		srv->restarts++;
		srv->recovery_ns_total += took;
		if (took > srv->recovery_ns_max)
			srv->recovery_ns_max = took;
		log_info(
		    "%s: %s%s is back after %.1f ms (restart %llu); in-flight requests resumed",
		    dev->name, srv->socket_path ? "back-end " : vm_server_name(vm, index),
		    srv->socket_path ? srv->socket_path : "", (double)took / 1e6,
		    (unsigned long long)srv->restarts);
		return true;
	}
	/* Say why a try failed, once per reason: an external back-end that is
	 * away fails the same way every 100 ms, one that answers badly says
	 * how (a spoiled reply, a reply that never came) each time it changes. */
	if (strncmp(srv->last_failure, why, sizeof(srv->last_failure) - 1)) {
		snprintf(srv->last_failure, sizeof(srv->last_failure), "%s", why);
		log_warn("%s: %s%s did not come back: %s", dev->name,
			 srv->socket_path ? "back-end " : vm_server_name(vm, index),
			 srv->socket_path ? srv->socket_path : "", why);
	}
	if (srv->socket_path)
		return false; /* external: wait for it, however long it takes */
	if (dev->server_pid > 0) {
		char how[160];

		vm_bury_server(vm, index, how, sizeof(how));
	}
	vhost_device_disconnect(dev);
	if (++srv->failed_starts >= VM_RESTART_FAILED_STARTS) {
		char msg[512];

		snprintf(msg, sizeof(msg),
			 "%s did not come up %u times in a row (last: %s); giving up",
			 vm_server_name(vm, index), srv->failed_starts, why);
		vm_give_up(vm, index, msg);
	}
	return false;
}

/* A back-end never speaks first: its socket is readable only once it hung
 * up or broke the protocol.  0: quiet; 1: hung up; 2: it sent a message. */
static int vm_device_sock_state(const struct vhost_device *dev)
{
	struct pollfd pfd = {.fd = dev->sock, .events = POLLIN | POLLRDHUP};
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	/* recvmsg, not recv: the event loop's seccomp list (core/seccomp.c) */
	return recvmsg(dev->sock, &msg, MSG_PEEK | MSG_DONTWAIT) > 0 ? 2 : 1;
}

void vm_device_lost(struct vm *vm, unsigned index, const char *why)
{
	struct vm_device_server *srv = &vm->servers[index];
	struct vhost_device *dev = &vm->devices[index];
	uint64_t now = now_ns();
	char how[320], msg[512];

	if (dev->sock < 0 || srv->pending || srv->given_up)
		return;
	/* A socket event (why == NULL) may come from a poll that predates a
	 * restart made in the same event-loop pass (on SIGCHLD), and the new
	 * socket can have the old one's number: believe only the new socket. */
	int state = why ? 1 : vm_device_sock_state(dev);

	if (!state)
		return;
	vhost_device_disconnect(dev);
	if (state == 2) {
		/* vhost-user.rst: the front-end's socket carries requests from
		 * the front-end and their replies only; the back-end's own
		 * requests have a channel of their own (BACKEND_REQ_FD). */
		snprintf(how, sizeof(how),
			 "%s%s broke the protocol: it sent a message nobody asked for",
			 srv->socket_path ? "back-end " : vm_server_name(vm, index),
			 srv->socket_path ? srv->socket_path : "");
		if (!srv->socket_path && dev->server_pid > 0) {
			/* the server is alive but not trusted any more */
			kill(dev->server_pid, SIGKILL);
			vm_bury_server(vm, index, msg, sizeof(msg));
		}
	} else if (srv->socket_path) {
		snprintf(how, sizeof(how), "back-end %s hung up", srv->socket_path);
	} else {
		char died[200];

		if (why)
			snprintf(died, sizeof(died), "%s", why);
		else
			vm_bury_server(vm, index, died, sizeof(died));
		snprintf(how, sizeof(how), "%s %s", vm_server_name(vm, index), died);
	}
	if (!srv->restart) {
		snprintf(msg, sizeof(msg), "%s (restart=never)", how);
		vm_give_up(vm, index, msg);
		return;
	}
	if (now - srv->window_start_ns > VM_RESTART_WINDOW_NS) {
		srv->window_start_ns = now;
		srv->deaths_in_window = 0;
	}
	if (++srv->deaths_in_window > VM_RESTART_BURST) {
		snprintf(msg, sizeof(msg), "%s; it died more than %d times in %llu s, giving up",
			 how, VM_RESTART_BURST,
			 (unsigned long long)(VM_RESTART_WINDOW_NS / 1000000000ull));
		vm_give_up(vm, index, msg);
		return;
	}
	srv->pending = true;
	srv->lost_ns = now;
	if (srv->socket_path)
		log_warn("%s: %s; waiting for it to come back (the guest's requests wait)",
			 dev->name, how);
	else
		log_warn("%s: %s; restarting it", dev->name, how);
	vm_device_try_restart(vm, index);
}

bool vm_retry_devices(struct vm *vm)
{
	bool waiting = false;

	for (unsigned i = 0; i < vm->nr_devices; i++) {
		if (!vm->servers[i].pending)
			continue;
		if (!vm_device_try_restart(vm, i) && vm->servers[i].pending)
			waiting = true;
	}
	return waiting;
}

void vm_reap_servers(struct vm *vm)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[160], why[224];

		supervisor_describe_status(status, how, sizeof(how));
		for (unsigned i = 0; i < vm->nr_devices; i++) {
			struct vhost_device *dev = &vm->devices[i];

			if (dev->server_pid != pid)
				continue;
			dev->server_pid = 0;
			snprintf(why, sizeof(why), "(pid %d) %s", (int)pid, how);
			if (dev->sock >= 0)
				vm_device_lost(vm, i, why);
		}
	}
}

/*
 * SIGKILL, not SIGTERM: the server's sandbox parent (lib/sandbox.c) answered
 * SIGTERM by killing the server and waiting for its exit, namespaces and
 * io_uring teardown included, before its own.  Killed, it is reaped at once;
 * the server, its child, dies of its parent-death signal (SIGKILL) right
 * after, on its own time (bench/boot: the guest's stop to isola's exit).
 */
static void vm_stop_servers(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_devices; i++)
		if (vm->devices[i].server_pid > 0)
			kill(vm->devices[i].server_pid, SIGKILL);
	for (unsigned i = 0; i < vm->nr_devices; i++) {
		if (vm->devices[i].server_pid > 0)
			waitpid(vm->devices[i].server_pid, NULL, 0);
		vm->devices[i].server_pid = 0;
	}
}

static int vm_create_adopting(struct vm *vm, const struct vm_config *cfg, int console_out_fd,
			      struct vm_kept *kept, char *err, size_t errlen);

/* Whatever vm_create did not adopt is stopped: servers are killed, sockets
 * closed. */
static void vm_release_kept(struct vm_kept *kept)
{
	for (unsigned i = 0; kept && i < kept->nr; i++) {
		if (kept->sock[i] >= 0)
			close(kept->sock[i]);
		if (kept->pid[i] > 0) {
			kill(kept->pid[i], SIGTERM);
			waitpid(kept->pid[i], NULL, 0);
		}
		kept->sock[i] = -1;
		kept->pid[i] = 0;
	}
	if (kept)
		gmem_destroy(&kept->mem);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, int console_out_fd, struct vm_kept *kept,
	      char *err, size_t errlen)
{
	int ret;

	/* a reboot adopts the servers it has: nothing to start ahead */
	if (!kept && !supervisor_prespawned())
		vm_prespawn_servers(cfg);
	ret = vm_create_adopting(vm, cfg, console_out_fd, kept, err, errlen);
	supervisor_cancel_prespawned();
	vm->kept = NULL;
	vm_release_kept(kept);
	return ret;
}

static int vm_create_adopting(struct vm *vm, const struct vm_config *cfg, int console_out_fd,
			      struct vm_kept *kept, char *err, size_t errlen)
{
	int ret;

	vm->kept = kept;

	/* vm is zero: static storage, one VM per process (its size would make
	 * a memset fault in pages that are otherwise never touched). */
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = vm->rx_space_fd = vm->device_work_fd = -1;
	vm->mem.fd = -1;
	for (unsigned i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpus[i].fd = -1;
	atomic_init(&vm->exit_status, -1);
	pthread_mutex_init(&vm->routes_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->nr_cpus = cfg->nr_cpus;
	vm->console_out_fd = console_out_fd;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->device_work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm->rx_space_fd < 0 || vm->device_work_fd < 0) {
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
	ret = vm_setup_memory(vm, cfg, err, errlen);
	if (ret)
		return ret;
	ret = e820_build(&vm->e820, vm->mem.ram_size);
	if (ret) {
		vm_err(err, errlen, "cannot build the e820 map: %s", strerror(-ret));
		return ret;
	}
	ret = vm_setup_devices(vm, console_out_fd);
	if (ret) {
		vm_err(err, errlen, "device address ranges overlap (isola bug)");
		return ret;
	}
	ret = vm_load_kernel(vm, cfg, err, errlen);
	if (ret)
		return ret;
	/* The vCPUs first: they need nothing of the devices, and meanwhile the
	 * device servers started ahead come up (bench/boot). */
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_create(vm, i);
		if (ret) {
			vm_err(err, errlen, "cannot create vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	ret = vcpu_setup_boot(&vm->vcpus[0]);
	if (ret) {
		vm_err(err, errlen, "cannot set the boot vCPU's registers: %s", strerror(-ret));
		return ret;
	}
	return vm_add_devices(vm, cfg, err, errlen);
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
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

void vm_destroy(struct vm *vm, struct vm_kept *kept)
{
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vcpu_destroy(&vm->vcpus[i]);
	}
	if (kept) {
		/* The rings stop (GET_VRING_BASE) while guest memory is still
		 * there; a device whose back-end is away is left to a new one. */
		kept->nr = vm->nr_devices;
		for (unsigned i = 0; i < vm->nr_devices; i++) {
			struct vhost_device *dev = &vm->devices[i];

			kept->sock[i] = -1;
			kept->pid[i] = 0;
			if (dev->sock < 0 || vm->servers[i].pending || vm->servers[i].given_up)
				continue;
			kept->sock[i] = vhost_device_detach(dev);
			if (kept->sock[i] < 0)
				continue; /* replaced: vm_stop_servers ends it */
			kept->pid[i] = dev->server_pid;
			dev->server_pid = 0;
		}
	}
	vm_stop_servers(vm);
	for (unsigned i = 0; i < vm->nr_devices; i++)
		vhost_device_destroy(&vm->devices[i]);
	vm->nr_devices = 0;
	if (vm->device_work_fd >= 0)
		close(vm->device_work_fd);
	vm->device_work_fd = -1;
	if (vm->devices_ready) {
		serial_destroy(&vm->serial);
		ioapic_destroy(&vm->ioapic);
		i8042_destroy(&vm->i8042);
		rtc_destroy(&vm->rtc);
		acpi_pm_destroy(&vm->pm);
		pci_host_destroy(&vm->pci);
	}
	free(vm->routes);
	vm->routes = NULL;
	if (kept) {
		kept->mem = vm->mem; /* the next VM empties it */
		gmem_init_empty(&vm->mem);
	}
	gmem_destroy(&vm->mem);
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
