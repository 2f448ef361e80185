/* SPDX-License-Identifier: MIT */
/*
 * The contract between an isola guest and the VMM: ports, codes and the exit
 * status a guest can produce. This header is the only thing guest code and
 * VMM code share; it must stay freestanding (no libc includes).
 */
#ifndef ISOLA_ABI_H
#define ISOLA_ABI_H

/*
 * Debug-exit port, QEMU isa-debug-exit convention (iobase=0xf4, iosize=4):
 * a guest writes a value V to the port and the VMM exits with status
 * (V << 1) | 1.  The same guest binary therefore ends with the same status
 * under `qemu-system-x86_64 -device isa-debug-exit,iobase=0xf4,iosize=4`.
 */
#define ISOLA_DEBUG_EXIT_PORT 0xf4
#define ISOLA_DEBUG_EXIT_STATUS(v) ((((v) << 1) | 1) & 0xff)

/* Codes the project's test guests write to the debug-exit port. */
#define ISOLA_GUEST_PASS 0 /* exit status 1 */
#define ISOLA_GUEST_FAIL 1 /* exit status 3 */

/*
 * Exit status of `isola run`.  Statuses produced by the VMM itself are even,
 * so they never collide with a guest's debug-exit status (always odd).
 */
#define ISOLA_EXIT_POWEROFF 0     /* guest powered off (ACPI S5) */
#define ISOLA_EXIT_VMM_ERROR 2    /* bad flag/file, KVM or host failure */
#define ISOLA_EXIT_RESET 4        /* guest asked for a reset (i8042, 0xcf9) */
#define ISOLA_EXIT_GUEST_CRASH 6  /* triple fault, KVM internal error */
#define ISOLA_EXIT_TIMEOUT 8      /* --timeout fired */
#define ISOLA_EXIT_STOPPED 10     /* SIGINT/SIGTERM or Ctrl-A x */

/* Legacy PC ports the VMM emulates (besides PCI and the debug-exit port). */
#define ISOLA_PORT_COM1 0x3f8
#define ISOLA_IRQ_COM1 4
#define ISOLA_PORT_I8042_DATA 0x60
#define ISOLA_PORT_I8042_CMD 0x64
#define ISOLA_PORT_RTC_INDEX 0x70
#define ISOLA_PORT_RTC_DATA 0x71
#define ISOLA_PORT_PCI_CONFIG_ADDRESS 0xcf8
#define ISOLA_PORT_PCI_CONFIG_DATA 0xcfc
#define ISOLA_PORT_RESET 0xcf9 /* write 0x06: hard reset (FADT RESET_REG) */

/* ACPI fixed hardware (FADT, not hardware-reduced). */
#define ISOLA_PORT_ACPI_PM1A_EVT 0x600 /* 4 bytes: status + enable */
#define ISOLA_PORT_ACPI_PM1A_CNT 0x604 /* 2 bytes */
#define ISOLA_PORT_ACPI_PM_TMR 0x608   /* 4 bytes, 3.579545 MHz */
#define ISOLA_ACPI_SCI_IRQ 9
#define ISOLA_ACPI_SLP_TYP_S5 5 /* DSDT _S5 package value */
#define ISOLA_ACPI_SLP_EN (1u << 13)

/* Fixed MMIO addresses (see arch/x86/layout.h for the whole map). */
#define ISOLA_IOAPIC_BASE 0xfec00000u
#define ISOLA_LAPIC_BASE 0xfee00000u
#define ISOLA_ECAM_BASE 0xe0000000u
#define ISOLA_ECAM_SIZE 0x10000000u /* 256 buses reserved, bus 0 decoded */
#define ISOLA_PCI_MMIO_BASE 0xc0000000u
#define ISOLA_PCI_MMIO_SIZE 0x20000000u

/* PCI identity of the host bridge. */
#define ISOLA_PCI_VENDOR_ID 0x1b36   /* Red Hat, Inc. (QEMU's generic ids) */
#define ISOLA_PCI_HOST_DEVICE_ID 0x0008 /* "PCIe host bridge" */

#endif
