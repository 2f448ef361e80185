// SPDX-License-Identifier: MIT
/*
 * ACPI tables for an isola guest (ACPI 6.4, chapter 5 and, for MCFG, the PCI
 * Firmware Specification 3.2 §4.1.2).  Layout in the buffer, in order:
 *
 *   RSDP (offset 0) → XSDT → FADT, MADT, MCFG
 *                           FADT → DSDT (X_DSDT), FACS (X_FIRMWARE_CTRL)
 *
 * The tables are little-endian packed structures built on the stack and
 * copied into the buffer, so nothing depends on the buffer's alignment.
 * docs/platform.md explains every field choice.
 */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "isola/abi.h"

#define ACPI_OEM_ID "ISOLA "	     /* 6 bytes */
#define ACPI_OEM_TABLE_ID "ISOLAVMM" /* 8 bytes */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "ISLA"
#define ACPI_CREATOR_REVISION 1
#define ACPI_MAX_CPUS 255 /* xAPIC IDs are 8 bits and 0xff is broadcast */

/* §5.2.6 System Description Table Header */
struct acpi_table_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_table_header) == 36, "ACPI header is 36 bytes");

/* §5.2.5.3 Root System Description Pointer (revision 2) */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes");

/* §5.2.3.2 Generic Address Structure */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
#define ACPI_GAS_ACCESS_WORD 2
#define ACPI_GAS_ACCESS_DWORD 3

/* §5.2.9 Fixed ACPI Description Table, Table 5.9 */
struct acpi_fadt {
	struct acpi_table_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT Flags at offset 112");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT at offset 140");

/* §5.2.9.3 Fixed ACPI Description Table Fixed Feature Flags, Table 5.10 */
#define ACPI_FADT_WBINVD (1u << 0)
#define ACPI_FADT_PROC_C1 (1u << 2)
#define ACPI_FADT_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define ACPI_FADT_FIX_RTC (1u << 6)    /* set: no RTC wake status in PM1 */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)

/* §5.2.9.3 IA-PC Boot Architecture Flags, Table 5.11 */
#define ACPI_IAPC_LEGACY_DEVICES (1u << 0)
#define ACPI_IAPC_8042 (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1u << 2)
#define ACPI_IAPC_PCIE_ASPM_CONTROLS (1u << 4)

#define ACPI_FADT_RESET_VALUE 0x06 /* 0xcf9: full reset (bit 2) + system reset (bit 1) */

/* §5.2.10 Firmware ACPI Control Structure */
struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS is 64 bytes");
#define ACPI_FACS_ALIGN 64 /* §5.2.10: "aligned on a 64-byte boundary" */

/* §5.2.12 Multiple APIC Description Table */
struct acpi_madt {
	struct acpi_table_header header;
	uint32_t local_apic_address;
	uint32_t flags;
} __attribute__((packed));
#define ACPI_MADT_PCAT_COMPAT (1u << 0)

/* §5.2.12.2 Processor Local APIC Structure */
struct acpi_madt_local_apic {
	uint8_t type; /* 0 */
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
#define ACPI_MADT_LAPIC_ENABLED (1u << 0)

/* §5.2.12.3 I/O APIC Structure */
struct acpi_madt_ioapic {
	uint8_t type; /* 1 */
	uint8_t length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

/* §5.2.12.5 Interrupt Source Override Structure */
struct acpi_madt_irq_override {
	uint8_t type; /* 2 */
	uint8_t length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

/* §5.2.12.7 Local APIC NMI Structure */
struct acpi_madt_lapic_nmi {
	uint8_t type; /* 4 */
	uint8_t length;
	uint8_t processor_uid; /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

/* MPS INTI flags, §5.2.12.5 Table 5.26 */
#define ACPI_MPS_ACTIVE_HIGH 0x1
#define ACPI_MPS_EDGE (0x1 << 2)
#define ACPI_MPS_LEVEL (0x3 << 2)

/* PCI Firmware Specification 3.2 §4.1.2 MCFG */
struct acpi_mcfg {
	struct acpi_table_header header;
	uint64_t reserved;
} __attribute__((packed));

struct acpi_mcfg_allocation {
	uint64_t base_address;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved;
} __attribute__((packed));

/* Where the next table goes: a cursor over the caller's buffer. */
struct acpi_builder {
	uint8_t *buf;
	size_t size;
	size_t used;
	uint64_t base_gpa;
};

uint8_t acpi_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

uint8_t acpi_ioapic_id(unsigned nr_cpus)
{
	return (uint8_t)nr_cpus;
}

/* Reserve len bytes whose guest address is aligned to align; -ENOSPC if full. */
static int acpi_alloc(struct acpi_builder *b, size_t len, size_t align, size_t *offset)
{
	uint64_t gpa = b->base_gpa + b->used;
	size_t pad = (size_t)((align - gpa % align) % align);

	if (pad > b->size - b->used || len > b->size - b->used - pad)
		return -ENOSPC;
	memset(b->buf + b->used, 0, pad + len);
	*offset = b->used + pad;
	b->used += pad + len;
	return 0;
}

static uint64_t acpi_gpa(const struct acpi_builder *b, size_t offset)
{
	return b->base_gpa + offset;
}

static void acpi_header_init(struct acpi_table_header *h, const char *signature, uint32_t length,
			     uint8_t revision)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, signature, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Every table is finished the same way: checksum over its whole length. */
static void acpi_table_finish(struct acpi_builder *b, size_t offset)
{
	struct acpi_table_header h;

	memcpy(&h, b->buf + offset, sizeof(h));
	b->buf[offset + offsetof(struct acpi_table_header, checksum)] =
	    (uint8_t)-acpi_checksum(b->buf + offset, h.length);
}

/* Copy a fixed-size table into freshly allocated space and checksum it. */
static int acpi_put_table(struct acpi_builder *b, const void *table, size_t len, size_t *offset)
{
	int ret = acpi_alloc(b, len, 8, offset);

	if (ret)
		return ret;
	memcpy(b->buf + *offset, table, len);
	acpi_table_finish(b, *offset);
	return 0;
}

static int acpi_build_facs(struct acpi_builder *b, size_t *offset)
{
	struct acpi_facs facs = {
	    .signature = "FACS",
	    .length = sizeof(facs),
	    .version = 2, /* §5.2.10: version 2 since ACPI 4.0 */
	};
	int ret = acpi_alloc(b, sizeof(facs), ACPI_FACS_ALIGN, offset);

	if (ret)
		return ret;
	/* The FACS has no checksum; the OS owns the global lock and vectors. */
	memcpy(b->buf + *offset, &facs, sizeof(facs));
	return 0;
}

/*
 * DSDT (§5.2.11.1): the definition block isola's guest needs, in ASL:
 *
 *   Name (\_S5, Package () { 5, 5, 0, 0 })
 *   Scope (\_SB) {
 *     Device (COM1) { _HID PNP0501, _UID 0, _CRS: IO 0x3f8/8, IRQNoFlags 4 }
 *     Device (PCI0) { _HID PNP0A08, _CID PNP0A03, _SEG 0, _BBN 0, _UID 0,
 *                     _CRS: bus 0, IO 0xcf8/8, I/O and MMIO windows }
 *     Device (MBRD) { _HID PNP0C02, _UID 0, _CRS: the ECAM range }
 *   }
 *
 * No _PRT: isola's PCI devices interrupt with MSI-X only (docs/platform.md).
 */
/* Name (_CRS, ResourceTemplate () {...}) from a finished resource writer. */
static void acpi_name_crs(struct aml_writer *w, const struct aml_writer *crs)
{
	if (crs->overflow)
		w->overflow = true; /* resource scratch buffer too small: a bug */
	aml_name_buffer(w, "_CRS", crs->data, crs->len);
}

static void acpi_dsdt_com1(struct aml_writer *w)
{
	uint8_t res[32];
	struct aml_writer crs;
	size_t dev;

	aml_init(&crs, res, sizeof(res));
	aml_res_io(&crs, ISOLA_PORT_COM1, 8);
	aml_res_irq_noflags(&crs, ISOLA_IRQ_COM1);
	aml_res_end(&crs);

	dev = aml_device_begin(w, "COM1");
	aml_name_eisaid(w, "_HID", "PNP0501"); /* 16550A-compatible COM port */
	aml_name_integer(w, "_UID", 0);
	acpi_name_crs(w, &crs);
	aml_end(w, dev);
}

static void acpi_dsdt_pci0(struct aml_writer *w)
{
	uint8_t res[128];
	struct aml_writer crs;
	size_t dev;

	aml_init(&crs, res, sizeof(res));
	aml_res_word_bus(&crs, 0, 0);
	aml_res_io(&crs, ISOLA_PORT_PCI_CONFIG_ADDRESS, 8); /* consumed: 0xcf8-0xcff */
	aml_res_word_io(&crs, 0x0000, ISOLA_PORT_PCI_CONFIG_ADDRESS - 1);
	aml_res_word_io(&crs, 0x0d00, 0xffff);
	aml_res_dword_memory(&crs, ISOLA_PCI_MMIO_BASE,
			     ISOLA_PCI_MMIO_BASE + ISOLA_PCI_MMIO_SIZE - 1);
	aml_res_end(&crs);

	dev = aml_device_begin(w, "PCI0");
	aml_name_eisaid(w, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(w, "_CID", "PNP0A03"); /* ... compatible with PCI */
	aml_name_integer(w, "_SEG", 0);
	aml_name_integer(w, "_BBN", 0);
	aml_name_integer(w, "_UID", 0);
	acpi_name_crs(w, &crs);
	aml_end(w, dev);
}

/* Linux accepts MCFG only if its range is reserved by e820 or a PNP0C02 _CRS. */
static void acpi_dsdt_motherboard(struct aml_writer *w)
{
	uint8_t res[32];
	struct aml_writer crs;
	size_t dev;

	aml_init(&crs, res, sizeof(res));
	aml_res_memory32_fixed(&crs, ISOLA_ECAM_BASE, ISOLA_ECAM_SIZE);
	aml_res_end(&crs);

	dev = aml_device_begin(w, "MBRD");
	aml_name_eisaid(w, "_HID", "PNP0C02"); /* motherboard resources */
	aml_name_integer(w, "_UID", 0);
	acpi_name_crs(w, &crs);
	aml_end(w, dev);
}

static void acpi_dsdt_body(struct aml_writer *w)
{
	size_t pkg, sb;

	/* §7.4.2 \_Sx: { PM1a_CNT.SLP_TYP, PM1b_CNT.SLP_TYP, reserved, reserved } */
	aml_name(w, "\\_S5");
	pkg = aml_package_begin(w, 4);
	aml_integer(w, ISOLA_ACPI_SLP_TYP_S5);
	aml_integer(w, ISOLA_ACPI_SLP_TYP_S5);
	aml_integer(w, 0);
	aml_integer(w, 0);
	aml_end(w, pkg);

	sb = aml_scope_begin(w, "\\_SB");
	acpi_dsdt_com1(w);
	acpi_dsdt_pci0(w);
	acpi_dsdt_motherboard(w);
	aml_end(w, sb);
}

static int acpi_build_dsdt(struct acpi_builder *b, size_t *offset)
{
	struct acpi_table_header h;
	struct aml_writer w;
	size_t hdr = sizeof(h);
	int ret = acpi_alloc(b, hdr, 8, offset);

	if (ret)
		return ret;
	aml_init(&w, b->buf + b->used, b->size - b->used);
	acpi_dsdt_body(&w);
	if (w.overflow)
		return -ENOSPC;
	b->used += w.len;

	/* Revision 2: AML integers are 64 bits wide (§5.2.11.1). */
	acpi_header_init(&h, "DSDT", (uint32_t)(hdr + w.len), 2);
	memcpy(b->buf + *offset, &h, sizeof(h));
	acpi_table_finish(b, *offset);
	return 0;
}

static struct acpi_gas acpi_gas_io(uint16_t port, uint8_t bytes, uint8_t access_size)
{
	return (struct acpi_gas){
	    .space_id = ACPI_GAS_SYSTEM_IO,
	    .bit_width = (uint8_t)(bytes * 8),
	    .access_size = access_size,
	    .address = port,
	};
}

static int acpi_build_fadt(struct acpi_builder *b, uint64_t dsdt_gpa, uint64_t facs_gpa,
			   size_t *offset)
{
	struct acpi_fadt f;

	memset(&f, 0, sizeof(f));
	acpi_header_init(&f.header, "FACP", sizeof(f), 6);
	f.minor_version = 4; /* ACPI 6.4 */

	/* FIRMWARE_CTRL stays 0: X_FIRMWARE_CTRL is used (one FACS, no mismatch). */
	f.x_firmware_ctrl = facs_gpa;
	f.dsdt = dsdt_gpa <= UINT32_MAX ? (uint32_t)dsdt_gpa : 0;
	f.x_dsdt = dsdt_gpa;

	/* SMI_CMD = 0: no SMM, the platform is always in ACPI mode (§5.2.9). */
	f.sci_int = ISOLA_ACPI_SCI_IRQ;
	f.smi_cmd = 0;

	f.pm1a_evt_blk = ISOLA_PORT_ACPI_PM1A_EVT;
	f.pm1_evt_len = 4; /* PM1 status (2 bytes) + enable (2 bytes) */
	f.x_pm1a_evt_blk = acpi_gas_io(ISOLA_PORT_ACPI_PM1A_EVT, 4, ACPI_GAS_ACCESS_WORD);
	f.pm1a_cnt_blk = ISOLA_PORT_ACPI_PM1A_CNT;
	f.pm1_cnt_len = 2;
	f.x_pm1a_cnt_blk = acpi_gas_io(ISOLA_PORT_ACPI_PM1A_CNT, 2, ACPI_GAS_ACCESS_WORD);
	f.pm_tmr_blk = ISOLA_PORT_ACPI_PM_TMR;
	f.pm_tmr_len = 4;
	f.x_pm_tmr_blk = acpi_gas_io(ISOLA_PORT_ACPI_PM_TMR, 4, ACPI_GAS_ACCESS_DWORD);

	/* C2/C3 not supported (§5.2.9: latency > 100 / > 1000 us). */
	f.p_lvl2_lat = 101;
	f.p_lvl3_lat = 1001;

	/*
	 * WBINVD works; C1 (HLT) is supported; the power button is a fixed
	 * feature (PWR_BUTTON clear: PM1 PWRBTN_STS, so the VMM can ask for a
	 * clean shutdown); no sleep button; no RTC wake; reset via RESET_REG.
	 * TMR_VAL_EXT is clear: the PM timer is 24 bits wide.
	 */
	f.flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_SLP_BUTTON | ACPI_FADT_FIX_RTC |
		  ACPI_FADT_RESET_REG_SUP;
	f.reset_reg = acpi_gas_io(ISOLA_PORT_RESET, 1, ACPI_GAS_ACCESS_BYTE);
	f.reset_value = ACPI_FADT_RESET_VALUE;

	/*
	 * COM1, RTC and i8042 are ISA devices (LEGACY_DEVICES); the 8042 is
	 * there for Ctrl-Alt-Del and reset; there is no VGA; MSI works; the
	 * virtual PCIe has no links, so the OS must not touch ASPM.
	 */
	f.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT |
			   ACPI_IAPC_PCIE_ASPM_CONTROLS;

	return acpi_put_table(b, &f, sizeof(f), offset);
}

static void acpi_append(struct acpi_builder *b, size_t *end, const void *src, size_t len)
{
	memcpy(b->buf + *end, src, len);
	*end += len;
}

static int acpi_build_madt(struct acpi_builder *b, unsigned nr_cpus, size_t *offset)
{
	struct acpi_madt madt;
	struct acpi_madt_ioapic ioapic = {
	    .type = 1,
	    .length = sizeof(ioapic),
	    .ioapic_id = acpi_ioapic_id(nr_cpus),
	    .address = ISOLA_IOAPIC_BASE,
	    .gsi_base = 0,
	};
	/* ISA IRQ0 (PIT) is wired to IOAPIC pin 2, as on every PC. */
	struct acpi_madt_irq_override timer = {
	    .type = 2,
	    .length = sizeof(timer),
	    .bus = 0,
	    .source = 0,
	    .gsi = 2,
	    .flags = ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_EDGE,
	};
	/* SCI: shareable, level-triggered, active high (§5.2.9 SCI_INT). */
	struct acpi_madt_irq_override sci = {
	    .type = 2,
	    .length = sizeof(sci),
	    .bus = 0,
	    .source = ISOLA_ACPI_SCI_IRQ,
	    .gsi = ISOLA_ACPI_SCI_IRQ,
	    .flags = ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_LEVEL,
	};
	/* LINT1 of every processor is NMI, as the BIOS of a PC wires it. */
	struct acpi_madt_lapic_nmi nmi = {
	    .type = 4,
	    .length = sizeof(nmi),
	    .processor_uid = 0xff,
	    .flags = 0,
	    .lint = 1,
	};
	size_t len = sizeof(madt) + nr_cpus * sizeof(struct acpi_madt_local_apic) + sizeof(ioapic) +
		     sizeof(timer) + sizeof(sci) + sizeof(nmi);
	size_t end;
	int ret = acpi_alloc(b, len, 8, offset);

	if (ret)
		return ret;
	acpi_header_init(&madt.header, "APIC", (uint32_t)len, 5); /* ACPI 6.4: MADT rev 5 */
	madt.local_apic_address = ISOLA_LAPIC_BASE;
	madt.flags = ACPI_MADT_PCAT_COMPAT; /* dual 8259s present (masked by the OS) */

	end = *offset;
	acpi_append(b, &end, &madt, sizeof(madt));
	for (unsigned i = 0; i < nr_cpus; i++) {
		struct acpi_madt_local_apic lapic = {
		    .type = 0,
		    .length = sizeof(lapic),
		    .processor_uid = (uint8_t)i,
		    .apic_id = (uint8_t)i,
		    .flags = ACPI_MADT_LAPIC_ENABLED,
		};

		acpi_append(b, &end, &lapic, sizeof(lapic));
	}
	acpi_append(b, &end, &ioapic, sizeof(ioapic));
	acpi_append(b, &end, &timer, sizeof(timer));
	acpi_append(b, &end, &sci, sizeof(sci));
	acpi_append(b, &end, &nmi, sizeof(nmi));
	acpi_table_finish(b, *offset);
	return 0;
}

static int acpi_build_mcfg(struct acpi_builder *b, size_t *offset)
{
	struct {
		struct acpi_mcfg mcfg;
		struct acpi_mcfg_allocation alloc;
	} __attribute__((packed)) t;

	memset(&t, 0, sizeof(t));
	acpi_header_init(&t.mcfg.header, "MCFG", sizeof(t), 1);
	t.alloc.base_address = ISOLA_ECAM_BASE;
	t.alloc.segment = 0;
	t.alloc.start_bus = 0;
	t.alloc.end_bus = 0; /* only bus 0 is decoded */
	return acpi_put_table(b, &t, sizeof(t), offset);
}

/* §5.2.8 XSDT: header followed by 64-bit table addresses (unaligned). */
static int acpi_build_xsdt(struct acpi_builder *b, const uint64_t *tables, size_t n, size_t *offset)
{
	struct acpi_table_header h;
	size_t len = sizeof(h) + n * sizeof(uint64_t);
	int ret = acpi_alloc(b, len, 8, offset);

	if (ret)
		return ret;
	acpi_header_init(&h, "XSDT", (uint32_t)len, 1);
	memcpy(b->buf + *offset, &h, sizeof(h));
	memcpy(b->buf + *offset + sizeof(h), tables, n * sizeof(uint64_t));
	acpi_table_finish(b, *offset);
	return 0;
}

static void acpi_build_rsdp(struct acpi_builder *b, size_t offset, uint64_t xsdt_gpa)
{
	struct acpi_rsdp r = {
	    .signature = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '},
	    .revision = 2,
	    .rsdt_address = 0, /* no RSDT: revision-2 readers use the XSDT */
	    .length = sizeof(r),
	    .xsdt_address = xsdt_gpa,
	};

	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.checksum = (uint8_t)-acpi_checksum(&r, 20);
	r.extended_checksum = (uint8_t)-acpi_checksum(&r, sizeof(r));
	memcpy(b->buf + offset, &r, sizeof(r));
}

int acpi_build(uint8_t *buf, size_t bufsize, uint64_t base_gpa, const struct acpi_config *cfg,
	       size_t *used)
{
	struct acpi_builder b = {.buf = buf, .size = bufsize, .base_gpa = base_gpa};
	size_t rsdp, facs, dsdt, fadt, madt, mcfg, xsdt;
	uint64_t xsdt_entries[3];
	int ret;

	if (!buf || !cfg || !used || cfg->nr_cpus == 0 || cfg->nr_cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	/* §5.2.5.1: the RSDP sits on a 16-byte boundary. */
	if (base_gpa % 16 || base_gpa > UINT64_MAX - bufsize)
		return -EINVAL;

	ret = acpi_alloc(&b, sizeof(struct acpi_rsdp), 16, &rsdp);
	if (!ret)
		ret = acpi_build_facs(&b, &facs);
	if (!ret)
		ret = acpi_build_dsdt(&b, &dsdt);
	if (!ret)
		ret = acpi_build_fadt(&b, acpi_gpa(&b, dsdt), acpi_gpa(&b, facs), &fadt);
	if (!ret)
		ret = acpi_build_madt(&b, cfg->nr_cpus, &madt);
	if (!ret)
		ret = acpi_build_mcfg(&b, &mcfg);
	if (ret)
		return ret;

	xsdt_entries[0] = acpi_gpa(&b, fadt);
	xsdt_entries[1] = acpi_gpa(&b, madt);
	xsdt_entries[2] = acpi_gpa(&b, mcfg);
	ret = acpi_build_xsdt(&b, xsdt_entries, 3, &xsdt);
	if (ret)
		return ret;
	acpi_build_rsdp(&b, rsdp, acpi_gpa(&b, xsdt));
	*used = b.used;
	return 0;
}
