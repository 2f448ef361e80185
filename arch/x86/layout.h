/* SPDX-License-Identifier: MIT */
/*
 * The one guest-physical address map.  Every fixed address the VMM uses lives
 * here; nothing else hard-codes a GPA.
 *
 *   0x0000_0000  real-mode IVT + BDA (RAM, left alone)
 *   0x0000_0500  boot GDT                       (written by the VMM)
 *   0x0000_6000  PVH hvm_start_info + memmap + module list
 *   0x0000_7000  Linux zero page (struct boot_params)
 *   0x0000_9000  boot page tables: PML4, PDPT, 4 x PD (identity 4 GiB, 2 MiB pages)
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  EBDA / VGA / BIOS area: e820 reserved up to 1 MiB
 *   0x000e_0000  ACPI tables (RSDP first, found by the legacy scan too)
 *   0x000f_0000  MP table (floating pointer first; for acpi=off guests)
 *   0x0010_0000  kernel load address (bzImage protected-mode code, PVH ELF)
 *   ...          RAM up to min(memory, 3 GiB)
 *   0xc000_0000  32-bit PCI/MMIO hole: BAR window (512 MiB)
 *   0xe000_0000  PCIe ECAM (MCFG, 256 MiB reserved)
 *   0xfec0_0000  IOAPIC
 *   0xfee0_0000  LAPIC
 *   0x1_0000_0000 RAM above 4 GiB when memory > 3 GiB
 */
#ifndef ISOLA_ARCH_X86_LAYOUT_H
#define ISOLA_ARCH_X86_LAYOUT_H

#include "isola/abi.h"

#define LAYOUT_BOOT_GDT 0x500ull
#define LAYOUT_PVH_START_INFO 0x6000ull
#define LAYOUT_PVH_START_INFO_SIZE 0x1000ull
#define LAYOUT_ZERO_PAGE 0x7000ull
#define LAYOUT_PML4 0x9000ull
#define LAYOUT_PDPT 0xa000ull
#define LAYOUT_PD 0xb000ull /* 4 pages: 0xb000..0xefff */
#define LAYOUT_CMDLINE 0x20000ull
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA_START 0x9fc00ull
#define LAYOUT_ACPI_START 0xe0000ull
#define LAYOUT_ACPI_SIZE 0x10000ull
/* the MP table: Linux scans 0xF0000-0xFFFFF for its floating pointer
 * (mpparse.c); inside the e820-reserved BIOS area like the ACPI tables */
#define LAYOUT_MPTABLE_START 0xf0000ull
#define LAYOUT_MPTABLE_SIZE 0x10000ull
#define LAYOUT_HIGH_MEMORY 0x100000ull
#define LAYOUT_KERNEL_LOAD 0x100000ull

#define LAYOUT_MMIO_HOLE_START 0xc0000000ull
#define LAYOUT_MMIO_HOLE_END 0x100000000ull
#define LAYOUT_PCI_MMIO_START ((unsigned long long)ISOLA_PCI_MMIO_BASE)
#define LAYOUT_PCI_MMIO_SIZE ((unsigned long long)ISOLA_PCI_MMIO_SIZE)
#define LAYOUT_ECAM_START ((unsigned long long)ISOLA_ECAM_BASE)
#define LAYOUT_ECAM_SIZE ((unsigned long long)ISOLA_ECAM_SIZE)
#define LAYOUT_IOAPIC ((unsigned long long)ISOLA_IOAPIC_BASE)
#define LAYOUT_LAPIC ((unsigned long long)ISOLA_LAPIC_BASE)
#define LAYOUT_HIGH_RAM_START 0x100000000ull

/* Smallest guest the VMM accepts: room for boot structures plus a kernel. */
#define LAYOUT_MIN_MEMORY (2ull << 20)

#endif
