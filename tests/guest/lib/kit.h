/* SPDX-License-Identifier: MIT */
/*
 * The isola test-guest kit: everything a freestanding test guest needs.
 * A guest defines guest_main(); the entry code (PVH or bzImage) sets up long
 * mode, an identity map of the first 4 GiB, a GDT/TSS and an IDT, collects
 * what the loader handed over into struct boot_info, calls guest_main() and
 * ends with debug_exit(ISOLA_GUEST_PASS or ISOLA_GUEST_FAIL).
 */
#ifndef GUEST_KIT_H
#define GUEST_KIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "isola/abi.h"
#include "io.h"

/* ---- boot: what the loader handed over (boot.c) ---- */
enum boot_protocol {
	BOOT_PROTOCOL_PVH = 1,     /* ELF note PHYS32_ENTRY, EBX = hvm_start_info */
	BOOT_PROTOCOL_LINUX64 = 2, /* bzImage 64-bit entry, RSI = zero page */
	BOOT_PROTOCOL_LINUX32 = 3, /* bzImage code32_start, ESI = zero page */
};

#define BOOT_INFO_MAX_MEM 128
#define BOOT_INFO_CMDLINE_MAX 4096

struct boot_mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 RAM, 2 reserved, 3 ACPI reclaimable, ... (e820 types) */
};

struct boot_info {
	enum boot_protocol protocol;
	uint64_t boot_params_gpa;  /* hvm_start_info or zero page, as handed over */
	const char *cmdline;       /* copy; "" if none */
	uint64_t cmdline_gpa;      /* where the loader put it, 0 if none */
	uint64_t rsdp;             /* 0 if the loader gave none */
	uint64_t initrd_addr;      /* first module / ramdisk, 0 if none */
	uint64_t initrd_size;
	unsigned nr_mem;
	struct boot_mem_range mem[BOOT_INFO_MAX_MEM];
};

const char *boot_protocol_name(enum boot_protocol protocol);
/* Sum of the sizes of all RAM (type 1) ranges. */
uint64_t boot_ram_total(const struct boot_info *info);

/* Every test guest defines this; return 0 for PASS, non-zero for FAIL. */
int guest_main(const struct boot_info *info);

/* ---- string.c: the freestanding bits of libc gcc may call ---- */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Offset of needle in hay[0..len), or -1. */
long mem_find(const void *hay, size_t len, const void *needle, size_t nlen);

/* ---- serial.c / console.c: COM1 output ---- */
void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
int console_vprintf(const char *fmt, va_list ap);
int console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int console_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- exit.c: the debug-exit port and the PASS/FAIL protocol ---- */
void debug_exit(uint32_t code) __attribute__((noreturn));
void test_pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void test_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* PASS or FAIL "what" depending on ok; returns ok. */
int test_check(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
unsigned test_failures(void);
/* Print a FAIL line and exit at once (for states a guest cannot continue from). */
void test_abort(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* ---- cmdline.c: `key=value` words of the command line ---- */
/* Copy the value of key into buf (NUL-terminated); 0 if found, -1 if not. */
int cmdline_get(const char *cmdline, const char *key, char *buf, size_t size);
/* Parse a number (decimal, 0x hex, optional K/M/G suffix); 0 if found and valid. */
int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *value);
uint64_t cmdline_get_u64_default(const char *cmdline, const char *key, uint64_t def);
/* True if the word `word` (or `word=...`) is present. */
int cmdline_has(const char *cmdline, const char *word);
int parse_u64(const char *s, uint64_t *value);

/* ---- acpi.c: RSDP, (X|R)SDT walk, checksums ---- */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* first 20 bytes */
	char oem_id[6];
	uint8_t revision;  /* 2+: XSDT fields valid */
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* whole structure */
	uint8_t reserved[3];
} __attribute__((packed));

uint8_t acpi_checksum(const void *data, size_t len);
/* Scan the EBDA and 0xE0000-0xFFFFF (ACPI 6.4 §5.2.5.1); 0 if not found. */
uint64_t acpi_find_rsdp(void);
/* Check the RSDP signature and checksums; 0 if valid, else a reason. */
const char *acpi_rsdp_invalid(uint64_t rsdp);
/* Set the RSDP the table walk uses (boot_info's, or the scanned one). */
void acpi_init(uint64_t rsdp);
/* Number of tables in the XSDT (or RSDT) and the i-th one. */
unsigned acpi_table_count(void);
const struct acpi_header *acpi_table_at(unsigned i);
/* First table with this signature ("FACP", "APIC", ...), NULL if none. */
const struct acpi_header *acpi_find_table(const char *sig);
/* DSDT, from FADT X_DSDT or DSDT. */
const struct acpi_header *acpi_dsdt(void);
/* Enabled LAPIC (and x2APIC) entries of the MADT; fills ids up to max. */
unsigned acpi_madt_cpus(uint32_t *ids, unsigned max);
/* ECAM base for segment 0 from MCFG; 0 if none. */
uint64_t acpi_mcfg_base(void);
/* FADT fields (ACPI 6.4 §5.2.9). */
uint32_t acpi_fadt_pm1a_cnt(void);
uint32_t acpi_fadt_pm_tmr(void);
/* SLP_TYPa of the DSDT's \_S5 package; -1 if not found (ACPI 6.4 §7.4.2). */
int acpi_s5_slp_typ(void);

/* ---- pmtimer.c: ACPI PM timer delays (3.579545 MHz) ---- */
void pmtimer_init(void);
int pmtimer_present(void);
uint32_t pmtimer_read(void);
/* Busy-wait about us microseconds (bounded loop if no PM timer). */
void delay_us(uint64_t us);
/* Microseconds elapsed since start (a pmtimer_read() value). */
uint64_t pmtimer_elapsed_us(uint32_t start);

/* ---- pci.c: configuration space via 0xCF8/0xCFC and via ECAM ---- */
uint32_t pci_cfg_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off);
void pci_cfg_write32(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v);
uint32_t pci_ecam_read32(uint64_t ecam, unsigned bus, unsigned dev, unsigned fn, unsigned off);
void pci_ecam_write32(uint64_t ecam, unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v);
/* Functions to probe on (bus, dev): 8 if multi-function, else 1. */
unsigned pci_functions(unsigned bus, unsigned dev);
/* Offset of capability id in (bus,dev,fn)'s list, 0 if absent. */
unsigned pci_find_capability(unsigned bus, unsigned dev, unsigned fn, uint8_t id);
/* One console line "pci bus 0: DD.F=VVVV:DDDD ..." (vendor:device of each
 * function), the line the system tests count devices by. */
void pci_print_bus0(void);
#define PCI_CAP_MSI 0x05
#define PCI_CAP_MSIX 0x11

/* ---- cpu.c: GDT/TSS, IDT and exception dispatch ---- */
#define SEL_KERNEL_CS 0x08
#define SEL_KERNEL_DS 0x10
#define SEL_KERNEL_CS32 0x18
#define SEL_USER_CS32 0x23
#define SEL_USER_DS 0x2b
#define SEL_USER_CS 0x33
#define SEL_TSS 0x38

struct idt_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

typedef void (*idt_handler_fn)(struct idt_frame *frame);

/* Load the IDT (all 256 vectors go to idt_dispatch) and the TSS. */
void idt_install(void);
/* Load the same IDT on this CPU (APs). */
void idt_load(void);
void idt_set_handler(unsigned vector, idt_handler_fn fn);

/* ---- ring3.c: run code at CPL 3 ---- */
/*
 * Run fn(arg) in ring 3 on its own stack and return its result; the return
 * to ring 0 is a #UD (ud2) taken after fn returns.  Port I/O and SYSCALL do
 * not work in ring 3 here; memory (all identity-mapped, user-accessible) does.
 */
uint64_t run_in_ring3(uint64_t (*fn)(uint64_t), uint64_t arg);
/*
 * Any other exception in ring 3 ends the run: run_in_ring3() returns
 * RING3_FAULTED and ring3_fault() gives the exception frame (else NULL).
 */
#define RING3_FAULTED (~0ull)
const struct idt_frame *ring3_fault(void);

/* ---- lapic.c / ioapic.c / msi: interrupt controllers ---- */
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

uint32_t lapic_read(unsigned reg);
void lapic_write(unsigned reg, uint32_t v);
/* Software-enable this CPU's LAPIC (SVR bit 8), spurious vector 0xff. */
void lapic_enable(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
/* Send an IPI (ICR, Intel SDM Vol 3 §11.6.1); 0 once delivered, -1 on timeout. */
int lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo);
/* One-shot (periodic if periodic) timer: divide by 16, count, vector. */
void lapic_timer_start(uint8_t vector, uint32_t count, int periodic);
void lapic_timer_stop(void);

uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t v);
unsigned ioapic_max_redirection(void);
/* Route gsi to vector on apic_id: edge/high unless level is set. */
void ioapic_route(unsigned gsi, uint8_t vector, uint32_t apic_id, int level);
void ioapic_mask(unsigned gsi);
/* GSI of an ISA IRQ after the MADT interrupt source overrides. */
unsigned acpi_isa_irq_to_gsi(unsigned irq);

/* MSI address/data for fixed delivery to apic_id (Intel SDM Vol 3 §11.11). */
static inline uint64_t msi_address(uint32_t apic_id)
{
	return 0xfee00000u | ((apic_id & 0xff) << 12);
}

static inline uint32_t msi_data(uint8_t vector)
{
	return vector; /* fixed delivery, edge */
}

/* ---- smp.c: start application processors ---- */
typedef void (*smp_ap_fn)(unsigned index, uint32_t apic_id);
/*
 * Start every CPU in apic_ids (except this one) with INIT-SIPI-SIPI, one at a
 * time; each runs fn(index, apic_id) in long mode on its own stack, then
 * halts.  Returns the number of APs that entered fn.
 */
unsigned smp_start_aps(const uint32_t *apic_ids, unsigned count, smp_ap_fn fn);
#define SMP_MAX_CPUS 64

/* ---- bootcheck.c: boot-protocol checks shared by pvh and bootparams ---- */
void bootcheck_memmap(const struct boot_info *info);
/* initrd_size=, inside RAM, below addr_max (0: no limit), pattern (i*131+7). */
void bootcheck_initrd(const struct boot_info *info, uint64_t addr_max);
/* Printed; NUL within limit; cmdline_len= and cmdline_end conventions. */
void bootcheck_cmdline(const struct boot_info *info, uint64_t limit);
void bootcheck_rsdp(const struct boot_info *info, uint64_t rsdp);

/* ---- misc ---- */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
