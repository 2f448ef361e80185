// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what a restore reads from an untrusted state file
 * before any VM exists (core/snapshot_check.c, lib/snapshot_file.c).  The
 * first byte picks the mode:
 *   0: the rest is a whole state file: snapshot_file_parse, then
 *      snapshot_check_image on what it accepts;
 *   1: the rest is a stream of sections (type u32, instance u32, length
 *      u16, payload), handed to snapshot_check_image directly, so the
 *      section checks are reached without a valid checksum;
 *   2: the rest patches a valid image of 1-2 vCPUs built here: patches of
 *      (section u8, offset u16, length u8, bytes), a length byte with its
 *      top bit set resizing the section instead, so each field is reached
 *      with the rest of the image still valid.
 * Checked: an image snapshot_check_image accepts has every section a
 * restore reads at its exact size, and counts and indexes in range (the
 * restore then indexes arrays with them); ASan/UBSan catch the rest.
 *   make fuzz-build && build/fuzz/fuzz_snapshot_state tests/fuzz/corpus/snapshot_state
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/i8042.h"
#include "arch/x86/serial.h"
#include "core/snapshot_state.h"

#define FUZZ_MAX_SECTIONS 512

static void check_accepted(const struct snapshot_image *img)
{
	const struct snapshot_section *vm = snapshot_image_find(img, SNAPSHOT_VM, 0);
	const struct snapshot_vm_state *s;
	const struct snapshot_serial_state *serial;
	const struct snapshot_i8042_state *kbc;

	if (!vm || vm->len != sizeof(*s))
		abort();
	s = vm->data;
	if (!s->nr_cpus || s->nr_cpus > CONFIG_MAX_CPUS || s->nr_regions > 2)
		abort();
	for (uint32_t cpu = 0; cpu < s->nr_cpus; cpu++) {
		const struct snapshot_section *msrs =
		    snapshot_image_find(img, SNAPSHOT_VCPU_MSRS, cpu);
		const struct snapshot_section *xsave =
		    snapshot_image_find(img, SNAPSHOT_VCPU_XSAVE, cpu);

		if (!msrs || msrs->len % sizeof(struct snapshot_msr) ||
		    msrs->len / sizeof(struct snapshot_msr) > SNAPSHOT_MAX_MSRS)
			abort();
		if (!xsave || xsave->len < sizeof(struct kvm_xsave) ||
		    xsave->len > SNAPSHOT_MAX_XSAVE)
			abort();
		if (!snapshot_image_find(img, SNAPSHOT_VCPU_LAPIC, cpu) ||
		    snapshot_image_find(img, SNAPSHOT_VCPU_LAPIC, cpu)->len !=
			sizeof(struct kvm_lapic_state))
			abort();
	}
	serial = snapshot_image_find(img, SNAPSHOT_SERIAL, 0)->data;
	kbc = snapshot_image_find(img, SNAPSHOT_I8042, 0)->data;
	if (serial->rx_head >= SERIAL_RX_FIFO_SIZE || serial->rx_count > SERIAL_RX_FIFO_SIZE ||
	    kbc->queue_head >= I8042_QUEUE_SIZE || kbc->queue_count > I8042_QUEUE_SIZE)
		abort();
}

static void fuzz_sections(const uint8_t *data, size_t size)
{
	static struct snapshot_section sections[FUZZ_MAX_SECTIONS];
	struct snapshot_image img = {.sections = sections};
	char err[256];

	while (size >= 10 && img.n_sections < FUZZ_MAX_SECTIONS) {
		struct snapshot_section *s = &sections[img.n_sections];
		uint16_t len;
		void *copy;

		memcpy(&s->type, data, 4);
		memcpy(&s->instance, data + 4, 4);
		memcpy(&len, data + 8, 2);
		data += 10;
		size -= 10;
		if (len > size)
			len = (uint16_t)size;
		/* the container hands out 8-byte aligned payloads */
		copy = malloc(len ? len : 1);
		if (!copy)
			break;
		memcpy(copy, data, len);
		s->data = copy;
		s->len = len;
		data += len;
		size -= len;
		img.n_sections++;
	}
	if (!snapshot_check_image(&img, err, sizeof(err)))
		check_accepted(&img);
	for (size_t i = 0; i < img.n_sections; i++)
		free((void *)sections[i].data);
}

/* The payload sizes of a valid image (XSAVE: KVM_GET_XSAVE's 4 KiB). */
static size_t payload_size(uint32_t type)
{
	switch (type) {
	case SNAPSHOT_VM:
		return sizeof(struct snapshot_vm_state);
	case SNAPSHOT_VCPU_CPUID:
		return 4 * sizeof(struct kvm_cpuid_entry2);
	case SNAPSHOT_VCPU_REGS:
		return sizeof(struct kvm_regs);
	case SNAPSHOT_VCPU_SREGS:
		return sizeof(struct kvm_sregs);
	case SNAPSHOT_VCPU_XSAVE:
		return sizeof(struct kvm_xsave);
	case SNAPSHOT_VCPU_XCRS:
		return sizeof(struct kvm_xcrs);
	case SNAPSHOT_VCPU_MSRS:
		return 8 * sizeof(struct snapshot_msr);
	case SNAPSHOT_VCPU_LAPIC:
		return sizeof(struct kvm_lapic_state);
	case SNAPSHOT_VCPU_EVENTS:
		return sizeof(struct kvm_vcpu_events);
	case SNAPSHOT_VCPU_MP_STATE:
		return sizeof(struct kvm_mp_state);
	case SNAPSHOT_VCPU_DEBUGREGS:
		return sizeof(struct kvm_debugregs);
	case SNAPSHOT_VCPU_TSC:
		return sizeof(struct snapshot_vcpu_tsc);
	case SNAPSHOT_SERIAL:
		return sizeof(struct snapshot_serial_state);
	case SNAPSHOT_IOAPIC:
		return sizeof(struct snapshot_ioapic_state);
	case SNAPSHOT_RTC:
		return sizeof(struct snapshot_rtc_state);
	case SNAPSHOT_I8042:
		return sizeof(struct snapshot_i8042_state);
	case SNAPSHOT_ACPI_PM:
		return sizeof(struct snapshot_acpi_pm_state);
	default:
		return sizeof(struct snapshot_pci_host_state);
	}
}

static void fuzz_patches(const uint8_t *data, size_t size)
{
	static const uint32_t vcpu_types[] = {
	    SNAPSHOT_VCPU_CPUID,     SNAPSHOT_VCPU_REGS,   SNAPSHOT_VCPU_SREGS,
	    SNAPSHOT_VCPU_XSAVE,     SNAPSHOT_VCPU_XCRS,   SNAPSHOT_VCPU_MSRS,
	    SNAPSHOT_VCPU_LAPIC,     SNAPSHOT_VCPU_EVENTS, SNAPSHOT_VCPU_MP_STATE,
	    SNAPSHOT_VCPU_DEBUGREGS, SNAPSHOT_VCPU_TSC,
	};
	static const uint32_t platform_types[] = {
	    SNAPSHOT_SERIAL, SNAPSHOT_IOAPIC,  SNAPSHOT_RTC,
	    SNAPSHOT_I8042,  SNAPSHOT_ACPI_PM, SNAPSHOT_PCI_HOST,
	};
	static struct snapshot_section sections[1 + 2 * 11 + 6];
	struct snapshot_image img = {.sections = sections};
	struct snapshot_vm_state *vm;
	char err[256];

	sections[img.n_sections++] = (struct snapshot_section){SNAPSHOT_VM, 0, NULL, 0};
	for (uint32_t cpu = 0; cpu < 2; cpu++)
		for (size_t i = 0; i < sizeof(vcpu_types) / sizeof(vcpu_types[0]); i++)
			sections[img.n_sections++] =
			    (struct snapshot_section){vcpu_types[i], cpu, NULL, 0};
	for (size_t i = 0; i < sizeof(platform_types) / sizeof(platform_types[0]); i++)
		sections[img.n_sections++] =
		    (struct snapshot_section){platform_types[i], 0, NULL, 0};
	for (size_t i = 0; i < img.n_sections; i++) {
		sections[i].len = payload_size(sections[i].type);
		sections[i].data = calloc(1, sections[i].len);
		if (!sections[i].data)
			abort();
	}
	vm = (struct snapshot_vm_state *)sections[0].data;
	vm->nr_cpus = 1 + (size & 1);
	vm->nr_regions = 1;
	vm->memory_bytes = vm->regions[0].size = 64ull << 20;
	while (size >= 4) {
		struct snapshot_section *s = &sections[data[0] % img.n_sections];
		uint16_t offset;
		uint8_t len = data[3];

		memcpy(&offset, data + 1, 2);
		data += 4;
		size -= 4;
		if (len & 0x80) { /* resize: keep the first bytes */
			size_t n = (s->len + (len & 0x7f) * 8u - 0x200) % 0x3000;
			void *bigger = realloc((void *)s->data, n ? n : 1);

			if (!bigger)
				abort();
			if (n > s->len)
				memset((uint8_t *)bigger + s->len, 0, n - s->len);
			s->data = bigger;
			s->len = n;
			continue;
		}
		if (len > size)
			len = (uint8_t)size;
		if (s->len)
			for (uint8_t i = 0; i < len; i++)
				((uint8_t *)s->data)[(offset + i) % s->len] = data[i];
		data += len;
		size -= len;
	}
	if (!snapshot_check_image(&img, err, sizeof(err)))
		check_accepted(&img);
	for (size_t i = 0; i < img.n_sections; i++)
		free((void *)sections[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_image img;
	char err[256];

	if (!size)
		return 0;
	if (data[0] % 3 == 2) {
		fuzz_patches(data + 1, size - 1);
		return 0;
	}
	if (data[0] % 3 == 1) {
		fuzz_sections(data + 1, size - 1);
		return 0;
	}
	if (snapshot_file_parse(data + 1, size - 1, &img, err, sizeof(err)))
		return 0;
	if (!snapshot_check_image(&img, err, sizeof(err)))
		check_accepted(&img);
	snapshot_image_free(&img);
	return 0;
}
