// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "lib/log.h"

static int loader_read_file(const char *what, const char *path, uint8_t **data, size_t *size,
			    uint64_t limit, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret = 0;
	size_t done = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		error_text(err, errlen, 0, "%s %s: %s; check the path", what, path,
			   strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		error_text(err, errlen, 0, "%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > limit) {
		error_text(err, errlen, 0,
			   "%s %s is %llu MiB, larger than the guest's memory; raise --memory",
			   what, path, (unsigned long long)st.st_size >> 20);
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
			error_text(err, errlen, 0, "%s %s: read: %s", what, path,
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

/*
 * The command line the guest boots with: cfg's, less every `pci=off`.
 * Orchestrators written for Firecracker put it there (Kata Containers'
 * fc.go fcKernelParams) because Firecracker's devices are virtio-mmio;
 * isola's are all virtio-pci, and a Linux told pci=off finds none of its
 * disks or interfaces.  GET /vm/config still shows boot_args as given.
 * Returns a malloc'd string (NULL for none) or sets *failed.
 */
char *loader_guest_cmdline(const char *cmdline, bool *failed)
{
	size_t len;
	char *out;

	*failed = false;
	if (!cmdline)
		return NULL;
	len = strlen(cmdline);
	out = malloc(len + 1);
	if (!out) {
		*failed = true;
		return NULL;
	}
	size_t n = 0;
	bool dropped = false;

	for (const char *p = cmdline; *p;) {
		size_t word = strcspn(p, " \t");

		if (word == 7 && !strncmp(p, "pci=off", 7)) {
			dropped = true;
		} else if (word) {
			if (n)
				out[n++] = ' ';
			memcpy(out + n, p, word);
			n += word;
		}
		p += word;
		p += strspn(p, " \t");
	}
	out[n] = '\0';
	if (dropped)
		log_info("the guest's command line has pci=off (for Firecracker's virtio-mmio); "
			 "isola's devices are PCI, so the guest boots without it");
	else
		memcpy(out, cmdline, len + 1); /* untouched, spacing included */
	return out;
}

/*
 * The MP table (arch/x86/mptable.c) for guests booted with acpi=off, as
 * Firecracker's command line (which Kata Containers passes) has it: such a
 * Linux ignores the MADT and, with no MP table either, finds no LAPIC and
 * no IOAPIC, only one CPU, and waits forever for interrupts from an 8259
 * and a PIT isola does not have (docs/platform.md, "MP table").
 */
static int loader_write_mptable(struct gmem *mem, unsigned nr_cpus)
{
	uint8_t *mp = gmem_ptr(mem, LAYOUT_MPTABLE_START, LAYOUT_MPTABLE_SIZE);
	size_t used;

	if (!mp)
		return -ENOMEM;
	return mptable_build(mp, LAYOUT_MPTABLE_SIZE, LAYOUT_MPTABLE_START, nr_cpus, &used);
}

int loader_load(struct gmem *mem, struct e820_table *e820, const struct vm_config *cfg,
		struct boot_entry *entry, char *err, size_t errlen)
{
	bool failed;
	char *cmdline = loader_guest_cmdline(cfg->cmdline, &failed);
	struct boot_images images = {.cmdline = cmdline};
	uint8_t *kernel = NULL, *initrd = NULL;
	uint8_t *acpi;
	size_t acpi_used;
	struct acpi_config acpi_cfg = {.nr_cpus = cfg->nr_cpus};
	int ret;

	if (failed)
		return -ENOMEM;
	acpi = gmem_ptr(mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	if (!acpi) {
		free(cmdline);
		return -ENOMEM;
	}
	ret = acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &acpi_cfg, &acpi_used);
	if (ret) {
		error_text(err, errlen, 0, "cannot build ACPI tables: %s", strerror(-ret));
		free(cmdline);
		return ret;
	}
	images.rsdp_gpa = LAYOUT_ACPI_START;
	ret = loader_write_mptable(mem, cfg->nr_cpus);
	if (ret) {
		error_text(err, errlen, 0, "cannot build the MP table: %s", strerror(-ret));
		free(cmdline);
		return ret;
	}

	ret = loader_read_file("kernel", cfg->kernel_path, &kernel, &images.kernel_size,
			       mem->ram_size, err, errlen);
	if (ret)
		goto out;
	images.kernel = kernel;
	if (cfg->initrd_path) {
		ret = loader_read_file("initrd", cfg->initrd_path, &initrd, &images.initrd_size,
				       mem->ram_size, err, errlen);
		if (ret)
			goto out;
		images.initrd = initrd;
	}
	ret = boot_load(mem, e820, &images, entry, err, errlen);
	if (ret) {
		char why[512];

		/* Name the file the loader is talking about. */
		snprintf(why, sizeof(why), "%s", err);
		error_text(err, errlen, 0, "kernel %s: %s", cfg->kernel_path, why);
		goto out;
	}
	ret = boot_cpu_write_tables(mem, entry);
	if (ret)
		error_text(err, errlen, 0, "cannot write boot page tables: %s", strerror(-ret));
out:
	free(kernel);
	free(initrd);
	free(cmdline);
	return ret;
}
