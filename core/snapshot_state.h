/* SPDX-License-Identifier: MIT */
/*
 * The sections of a snapshot's state file and their payloads: the ABI of
 * the state file, versioned by SNAPSHOT_FORMAT_VERSION (lib/snapshot_file.h).
 * Fixed-size structs with explicit field sizes and no implicit padding (each
 * has a _Static_assert); where the payload is a KVM UAPI struct (kvm_regs,
 * kvm_sregs, ...), its layout is Linux's and fixed by the ABI.  A state file
 * is untrusted: core/snapshot_check.c checks every section before a restore
 * reads it (docs/snapshot.md).
 */
#ifndef ISOLA_CORE_SNAPSHOT_STATE_H
#define ISOLA_CORE_SNAPSHOT_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "lib/snapshot_file.h"

/* Section types (instance: the vCPU index for SNAPSHOT_VCPU_*, else 0). */
enum snapshot_section_type {
	SNAPSHOT_VM = 1,	  /* struct snapshot_vm_state */
	SNAPSHOT_VCPU_CPUID = 16, /* struct kvm_cpuid_entry2[], as set (KVM_GET_CPUID2) */
	SNAPSHOT_VCPU_REGS,	  /* struct kvm_regs */
	SNAPSHOT_VCPU_SREGS,	  /* struct kvm_sregs */
	SNAPSHOT_VCPU_XSAVE,	  /* KVM_GET_XSAVE2's bytes (>= sizeof(struct kvm_xsave)) */
	SNAPSHOT_VCPU_XCRS,	  /* struct kvm_xcrs */
	SNAPSHOT_VCPU_MSRS,	  /* struct snapshot_msr[] */
	SNAPSHOT_VCPU_LAPIC,	  /* struct kvm_lapic_state */
	SNAPSHOT_VCPU_EVENTS,	  /* struct kvm_vcpu_events */
	SNAPSHOT_VCPU_MP_STATE,	  /* struct kvm_mp_state */
	SNAPSHOT_VCPU_DEBUGREGS,  /* struct kvm_debugregs */
	SNAPSHOT_VCPU_TSC,	  /* struct snapshot_vcpu_tsc */
	SNAPSHOT_SERIAL = 64,	  /* struct snapshot_serial_state (COM1) */
	SNAPSHOT_IOAPIC,	  /* struct snapshot_ioapic_state */
	SNAPSHOT_RTC,		  /* struct snapshot_rtc_state */
	SNAPSHOT_I8042,		  /* struct snapshot_i8042_state */
	SNAPSHOT_ACPI_PM,	  /* struct snapshot_acpi_pm_state */
	SNAPSHOT_PCI_HOST,	  /* struct snapshot_pci_host_state */
	/* One per virtio device, instance = its index in the device set (its
	 * PCI slot order): core/snapshot_devices.c, docs/snapshot.md "Devices" */
	SNAPSHOT_DEVICE = 96,	/* struct snapshot_device_entry: what to start */
	SNAPSHOT_DEVICE_RINGS,	/* struct vhost_device_saved: transport and rings */
	SNAPSHOT_DEVICE_SERVER, /* the server's state stream (SET_DEVICE_STATE_FD) */
};

#define SNAPSHOT_MAX_REGIONS 8
#define SNAPSHOT_MAX_XSAVE (1u << 16)
#define SNAPSHOT_MAX_MSRS 1024
#define SNAPSHOT_MAX_CPUID 256

struct snapshot_region {
	uint64_t gpa, size, file_offset; /* file_offset: where it is in the memory file */
};

/* The VM's shape and clock. */
struct snapshot_vm_state {
	uint32_t nr_cpus;
	uint32_t nr_regions;
	uint64_t memory_bytes; /* the memory file's size */
	struct snapshot_region regions[SNAPSHOT_MAX_REGIONS];
	uint32_t tsc_khz; /* the vCPUs' TSC frequency (KVM_GET_TSC_KHZ), 0 unknown */
	uint32_t flags;	  /* SNAPSHOT_VM_* */
	/* KVM_GET_CLOCK (api.rst 4.88: kvmclock, in ns) */
	uint64_t clock_ns;
	uint32_t clock_flags;
	uint32_t reserved;
	uint64_t clock_realtime_ns, clock_host_tsc;
};
#define SNAPSHOT_VM_TSC_DEADLINE 1u /* the CPUID offered the LAPIC's TSC-deadline mode */
_Static_assert(sizeof(struct snapshot_vm_state) == 16 + 24 * SNAPSHOT_MAX_REGIONS + 40,
	       "snapshot_vm_state has no padding");

struct snapshot_msr {
	uint32_t index;
	uint32_t reserved;
	uint64_t data;
};
_Static_assert(sizeof(struct snapshot_msr) == 16, "snapshot_msr has no padding");

/* The vCPU's TSC offset from the host's TSC (devices/vcpu.rst
 * KVM_VCPU_TSC_OFFSET), when KVM has the attribute. */
struct snapshot_vcpu_tsc {
	uint64_t offset;
	uint32_t flags; /* SNAPSHOT_TSC_OFFSET_VALID */
	uint32_t reserved;
};
#define SNAPSHOT_TSC_OFFSET_VALID 1u
_Static_assert(sizeof(struct snapshot_vcpu_tsc) == 16, "no padding");

struct snapshot_serial_state {
	uint8_t ier, iir_thri_pending, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t irq_level;
	uint8_t reserved[5];
	uint32_t rx_head, rx_count;
	uint8_t rx_fifo[64];
};
_Static_assert(sizeof(struct snapshot_serial_state) == 88, "snapshot_serial_state has no padding");

struct snapshot_ioapic_state {
	uint8_t id;
	uint8_t reserved[3];
	uint32_t ioregsel;
	uint32_t line_level;
	uint32_t reserved2;
	uint64_t redirection[24];
};
_Static_assert(sizeof(struct snapshot_ioapic_state) == 16 + 8 * 24, "no padding");

struct snapshot_rtc_state {
	uint8_t index;
	uint8_t reserved[7];
	uint8_t cmos[128];
};
_Static_assert(sizeof(struct snapshot_rtc_state) == 136, "no padding");

struct snapshot_i8042_state {
	uint8_t command_byte, pending_command;
	uint8_t reserved[6];
	uint32_t queue_head, queue_count;
	uint8_t queue[16], queue_status[16];
};
_Static_assert(sizeof(struct snapshot_i8042_state) == 48, "no padding");

struct snapshot_acpi_pm_state {
	uint16_t pm1_status, pm1_enable, pm1_control;
	uint8_t reset_control;
	uint8_t reserved;
	uint64_t timer_ns; /* the PM timer's time: it continues from here */
};
_Static_assert(sizeof(struct snapshot_acpi_pm_state) == 16, "no padding");

struct snapshot_pci_host_state {
	uint32_t config_address; /* 0xCF8 */
	uint32_t reserved;
};

/* The device set's entry: the server to start again and its arguments
 * (only options its kind allows: devices/device_kind.c), or the external
 * back-end's socket, and a front-end-owned config (net's MAC). */
#define SNAPSHOT_DEVICE_RESTART 1u  /* restart=always */
#define SNAPSHOT_DEVICE_EXTERNAL 2u /* socket: an external back-end */
#define SNAPSHOT_DEVICE_ARGS 4608
#define SNAPSHOT_MAX_DEVICES 31 /* CONFIG_MAX_PCI_DEVICES */
struct snapshot_device_entry {
	char kind[8];  /* "blk", "net", "rng", "vsock", NUL-terminated */
	char name[16]; /* "disk0", NUL-terminated */
	uint32_t flags;
	uint32_t args_len; /* bytes of args: NUL-terminated strings back to back */
	uint8_t frontend_config[256];
	char socket[112]; /* SNAPSHOT_DEVICE_EXTERNAL: sun_path, NUL-terminated */
	char args[SNAPSHOT_DEVICE_ARGS];
};
_Static_assert(sizeof(struct snapshot_device_entry) == 5008, "no padding");

/* snapshot_check.c (no KVM: fuzzed): every section a restore reads is in
 * img with its exact size and its counts and indexes in range; 0, or
 * -EINVAL with a sentence in err. */
int snapshot_check_image(const struct snapshot_image *img, char *err, size_t errlen);
/* How many virtio devices img lists (SNAPSHOT_DEVICE 0..n-1). */
unsigned snapshot_device_count(const struct snapshot_image *img);
/* Device i's sections, checked (snapshot_check_image does it for all);
 * argv (SNAPSHOT_DEVICE_MAX_ARGS + 1 pointers into img, or NULL) gets its
 * server's arguments.  0, or -EINVAL with a sentence. */
#define SNAPSHOT_DEVICE_MAX_ARGS 16 /* DEVICE_SERVER_MAX_ARGS */
int snapshot_check_device(const struct snapshot_image *img, uint32_t i, const char **argv,
			  char *err, size_t errlen);
/* Section (type, instance) of exactly len bytes (at least len with
 * at_least; *got its length), else NULL with a sentence in err. */
const void *snapshot_section_get(const struct snapshot_image *img, uint32_t type, uint32_t instance,
				 size_t len, bool at_least, size_t *got, char *err, size_t errlen);

#endif
