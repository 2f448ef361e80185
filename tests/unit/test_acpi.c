// SPDX-License-Identifier: MIT
/*
 * ACPI tables and the AML writer.  Tables are read back the way an OS reads
 * them (RSDP → XSDT → FADT → DSDT/FACS, MADT, MCFG) by byte offset from the
 * ACPI 6.4 spec, independently of acpi.c's structs.  When iasl (Debian package
 * acpica-tools) is installed, every table is also disassembled by ACPICA —
 * the same parser Linux uses — and the DSDT is recompiled and evaluated.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "isola/abi.h"

#define BASE LAYOUT_ACPI_START

static uint8_t buf[LAYOUT_ACPI_SIZE];

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Host pointer for a guest address inside the built tables. */
static const uint8_t *at(uint64_t gpa, size_t used, size_t len)
{
	assert_true(gpa >= BASE);
	assert_true(gpa - BASE + len <= used);
	return buf + (gpa - BASE);
}

static size_t build(unsigned nr_cpus)
{
	struct acpi_config cfg = {.nr_cpus = nr_cpus};
	size_t used = 0;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &used), 0);
	assert_true(used > 36 && used <= sizeof(buf));
	return used;
}

/* Check the common header of a table at gpa and return a pointer to it. */
static const uint8_t *table(uint64_t gpa, size_t used, const char *sig, uint8_t revision)
{
	const uint8_t *t = at(gpa, used, 36);
	uint32_t len = le32(t + 4);

	assert_memory_equal(t, sig, 4);
	at(gpa, used, len);
	assert_int_equal(acpi_checksum(t, len), 0);
	assert_int_equal(t[8], revision);
	assert_memory_equal(t + 10, "ISOLA ", 6);
	assert_memory_equal(t + 16, "ISOLAVMM", 8);
	assert_memory_equal(t + 28, "ISLA", 4);
	return t;
}

/* Find the XSDT entry with the given signature (each must appear once). */
static const uint8_t *xsdt_find(size_t used, const char *sig, uint8_t revision)
{
	const uint8_t *rsdp = buf;
	const uint8_t *xsdt = table(le64(rsdp + 24), used, "XSDT", 1);
	uint32_t n = (le32(xsdt + 4) - 36) / 8;
	const uint8_t *found = NULL;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = at(le64(xsdt + 36 + 8 * i), used, 36);

		if (memcmp(t, sig, 4) == 0) {
			assert_null(found);
			found = t;
		}
	}
	assert_non_null(found);
	return table(BASE + (size_t)(found - buf), used, sig, revision);
}

static void test_rsdp(void **state)
{
	size_t used = build(1);

	(void)state;
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(buf, 20), 0); /* ACPI 1.0 checksum */
	assert_int_equal(acpi_checksum(buf, 36), 0); /* extended checksum */
	assert_memory_equal(buf + 9, "ISOLA ", 6);
	assert_int_equal(buf[15], 2);	      /* revision */
	assert_int_equal(le32(buf + 16), 0);  /* no RSDT */
	assert_int_equal(le32(buf + 20), 36); /* length */
	table(le64(buf + 24), used, "XSDT", 1);
}

static void test_xsdt_entries(void **state)
{
	size_t used = build(2);
	const uint8_t *xsdt = table(le64(buf + 24), used, "XSDT", 1);

	(void)state;
	/* FADT, MADT, MCFG; DSDT and FACS are reached through the FADT only. */
	assert_int_equal(le32(xsdt + 4), 36 + 3 * 8);
	xsdt_find(used, "FACP", 6);
	xsdt_find(used, "APIC", 5);
	xsdt_find(used, "MCFG", 1);
}

static void check_gas_io(const uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
	assert_int_equal(g[0], 1); /* SystemIO */
	assert_int_equal(g[1], bits);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_int_equal(le64(g + 4), port);
}

static void test_fadt(void **state)
{
	size_t used = build(1);
	const uint8_t *f = xsdt_find(used, "FACP", 6);
	uint32_t flags = le32(f + 112);
	uint16_t boot = le16(f + 109);

	(void)state;
	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[131], 4);			    /* minor version */
	assert_int_equal(le16(f + 46), ISOLA_ACPI_SCI_IRQ); /* SCI_INT */
	assert_int_equal(le32(f + 48), 0);		    /* SMI_CMD: always ACPI */
	assert_int_equal(le32(f + 56), ISOLA_PORT_ACPI_PM1A_EVT);
	assert_int_equal(le32(f + 64), ISOLA_PORT_ACPI_PM1A_CNT);
	assert_int_equal(le32(f + 76), ISOLA_PORT_ACPI_PM_TMR);
	assert_int_equal(le32(f + 60), 0); /* no PM1b */
	assert_int_equal(le32(f + 80), 0); /* no GPE0 */
	assert_int_equal(f[88], 4);	   /* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);	   /* PM1_CNT_LEN */
	assert_int_equal(f[91], 4);	   /* PM_TMR_LEN */
	check_gas_io(f + 148, ISOLA_PORT_ACPI_PM1A_EVT, 32, 2);
	check_gas_io(f + 172, ISOLA_PORT_ACPI_PM1A_CNT, 16, 2);
	check_gas_io(f + 208, ISOLA_PORT_ACPI_PM_TMR, 32, 3);
	check_gas_io(f + 116, ISOLA_PORT_RESET, 8, 1); /* RESET_REG */
	assert_int_equal(f[128], 0x06);		       /* RESET_VALUE */

	assert_true(flags & (1u << 0));	  /* WBINVD */
	assert_true(flags & (1u << 2));	  /* PROC_C1 */
	assert_false(flags & (1u << 4));  /* fixed-feature power button */
	assert_true(flags & (1u << 5));	  /* no sleep button */
	assert_false(flags & (1u << 8));  /* TMR_VAL_EXT clear: 24-bit PM timer */
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	assert_false(flags & (1u << 20)); /* not HW_REDUCED_ACPI */

	assert_true(boot & (1u << 1));	/* 8042 */
	assert_true(boot & (1u << 2));	/* VGA not present */
	assert_false(boot & (1u << 3)); /* MSI works */
	assert_false(boot & (1u << 5)); /* CMOS RTC present */
}

static void test_fadt_dsdt_facs(void **state)
{
	size_t used = build(1);
	const uint8_t *f = xsdt_find(used, "FACP", 6);
	uint64_t facs_gpa = le64(f + 132), dsdt_gpa = le64(f + 140);
	const uint8_t *facs;

	(void)state;
	table(dsdt_gpa, used, "DSDT", 2);
	assert_int_equal(le32(f + 40), dsdt_gpa); /* 32-bit DSDT agrees */
	assert_int_equal(le32(f + 36), 0);	  /* FACS through X_FIRMWARE_CTRL only */
	assert_int_equal(facs_gpa % 64, 0);
	facs = at(facs_gpa, used, 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(le32(facs + 4), 64);
	assert_int_equal(facs[32], 2); /* version */
}

static void check_madt(unsigned nr_cpus)
{
	size_t used = build(nr_cpus);
	const uint8_t *m = xsdt_find(used, "APIC", 5);
	uint32_t len = le32(m + 4);
	unsigned lapics = 0, ioapics = 0, overrides = 0;
	bool irq0 = false, sci = false;

	assert_int_equal(le32(m + 36), ISOLA_LAPIC_BASE);
	assert_int_equal(le32(m + 40), 1); /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;

		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0: /* Processor Local APIC: UID = APIC ID = index, enabled */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);
			assert_int_equal(e[3], lapics);
			assert_int_equal(le32(e + 4), 1);
			lapics++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], nr_cpus); /* not a LAPIC ID */
			assert_int_equal(e[2], acpi_ioapic_id(nr_cpus));
			assert_int_equal(le32(e + 4), ISOLA_IOAPIC_BASE);
			assert_int_equal(le32(e + 8), 0);
			ioapics++;
			break;
		case 2: /* Interrupt Source Override */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0); /* ISA */
			if (e[3] == 0) {
				assert_int_equal(le32(e + 4), 2);
				assert_int_equal(le16(e + 8), 0x5); /* edge, high */
				irq0 = true;
			} else {
				assert_int_equal(e[3], ISOLA_ACPI_SCI_IRQ);
				assert_int_equal(le32(e + 4), ISOLA_ACPI_SCI_IRQ);
				assert_int_equal(le16(e + 8), 0xd); /* level, high */
				sci = true;
			}
			overrides++;
			break;
		case 4: /* Local APIC NMI on LINT1 of all processors */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(lapics, nr_cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(overrides, 2); /* COM1's IRQ4 stays identity-mapped */
	assert_true(irq0 && sci);
}

static void test_madt(void **state)
{
	static const unsigned counts[] = {1, 2, 3, 4, 8, 255};

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		check_madt(counts[i]);
}

static void test_mcfg(void **state)
{
	size_t used = build(4);
	const uint8_t *m = xsdt_find(used, "MCFG", 1);

	(void)state;
	assert_int_equal(le32(m + 4), 60);
	assert_int_equal(le64(m + 36), 0); /* reserved */
	assert_int_equal(le64(m + 44), ISOLA_ECAM_BASE);
	assert_int_equal(le16(m + 52), 0); /* segment */
	assert_int_equal(m[54], 0);	   /* start bus */
	assert_int_equal(m[55], 0);	   /* end bus */
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return true;
	return false;
}

static const uint8_t *dsdt(size_t used, uint32_t *len)
{
	const uint8_t *f = xsdt_find(used, "FACP", 6);
	const uint8_t *d = table(le64(f + 140), used, "DSDT", 2);

	*len = le32(d + 4);
	return d;
}

static void test_dsdt_content(void **state)
{
	size_t used = build(2);
	uint32_t len;
	const uint8_t *d = dsdt(used, &len);
	/* Name(\_S5, Package(4){5, 5, 0, 0}) */
	static const uint8_t s5[] = {0x08, '\\', '_',  'S',  '5',  '_',	 0x12, 0x08,
				     0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
	/* IO(Decode16, 0x3f8, 0x3f8, 1, 8) IRQNoFlags(){4} EndTag */
	static const uint8_t com1_crs[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01,
					   0x08, 0x22, 0x10, 0x00, 0x79, 0x00};
	/* Name(_HID, EisaId("PNP0A08")) and Name(_CID, EisaId("PNP0A03")) */
	static const uint8_t pci_hid[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
	static const uint8_t pci_cid[] = {0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
	/* Memory32Fixed(ReadWrite, ECAM base, ECAM size) */
	static const uint8_t ecam[] = {0x86, 0x09, 0x00, 0x01, 0x00, 0x00,
				       0x00, 0xe0, 0x00, 0x00, 0x00, 0x10};
	/* DWordMemory window 0xc0000000-0xdfffffff, length 0x20000000 */
	static const uint8_t window[] = {0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20};

	(void)state;
	assert_true(contains(d, len, s5, sizeof(s5)));
	assert_true(contains(d, len, com1_crs, sizeof(com1_crs)));
	assert_true(contains(d, len, pci_hid, sizeof(pci_hid)));
	assert_true(contains(d, len, pci_cid, sizeof(pci_cid)));
	assert_true(contains(d, len, ecam, sizeof(ecam)));
	assert_true(contains(d, len, window, sizeof(window)));
	assert_true(contains(d, len, "COM1", 4));
	assert_true(contains(d, len, "PCI0", 4));
	assert_true(contains(d, len, "MBRD", 4));
	assert_false(contains(d, len, "_PRT", 4)); /* MSI-X only: see docs/platform.md */
}

static void test_bad_input(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 0};
	size_t used = 0;

	(void)state;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &used), -EINVAL);
	cfg.nr_cpus = 256;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &used), -EINVAL);
	cfg.nr_cpus = 1;
	assert_int_equal(acpi_build(NULL, sizeof(buf), BASE, &cfg, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, NULL, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, NULL), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE + 8, &cfg, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), UINT64_MAX - 15, &cfg, &used), -EINVAL);
}

/* Every buffer shorter than needed fails with -ENOSPC and writes nothing past its end. */
static void test_too_small(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 8};
	size_t need = build(8), used;

	(void)state;
	for (size_t size = 0; size < need; size++) {
		uint8_t *small = malloc(size ? size : 1);

		assert_non_null(small);
		assert_int_equal(acpi_build(small, size, BASE, &cfg, &used), -ENOSPC);
		free(small);
	}
	{
		uint8_t *exact = malloc(need);

		assert_non_null(exact);
		assert_int_equal(acpi_build(exact, need, BASE, &cfg, &used), 0);
		assert_int_equal(used, need);
		assert_memory_equal(exact, buf, need);
		free(exact);
	}
}

/* A base that is 16- but not 64-byte aligned still gets a 64-byte aligned FACS. */
static void test_facs_alignment(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 1};
	size_t used;
	uint64_t base = 0x80010;
	const uint8_t *f;
	uint64_t facs;

	(void)state;
	assert_int_equal(acpi_build(buf, sizeof(buf), base, &cfg, &used), 0);
	f = buf + (le64(buf + 24) - base); /* XSDT */
	f = buf + (le64(f + 36) - base);   /* first entry: FADT */
	assert_memory_equal(f, "FACP", 4);
	facs = le64(f + 132);
	assert_int_equal(facs % 64, 0);
	assert_memory_equal(buf + (facs - base), "FACS", 4);
}

/* --- AML writer --- */

static void test_aml_pkglength(void **state)
{
	uint8_t e[4];

	(void)state;
	/* §20.2.4: one byte up to 63 (length includes itself) */
	assert_int_equal(aml_pkglength_encode(62, e), 1);
	assert_int_equal(e[0], 63);
	assert_int_equal(aml_pkglength_encode(63, e), 2);
	assert_int_equal(e[0], 0x40 | (65 & 0xf));
	assert_int_equal(e[1], 65 >> 4);
	assert_int_equal(aml_pkglength_encode(0xfff - 2, e), 2);
	assert_int_equal(aml_pkglength_encode(0xfff - 1, e), 3);
	assert_int_equal(e[0], 0x80 | (0x1001 & 0xf));
	assert_int_equal(e[1], (0x1001 >> 4) & 0xff);
	assert_int_equal(e[2], 0x1001 >> 12);
	assert_int_equal(aml_pkglength_encode(0xfffff - 3, e), 3);
	assert_int_equal(aml_pkglength_encode(0xfffff - 2, e), 4);
	assert_int_equal(e[0] >> 6, 3);
	assert_int_equal(aml_pkglength_encode((1u << 28), e), 0);
}

static void test_aml_large_package(void **state)
{
	static uint8_t out[8192];
	struct aml_writer w;
	size_t mark;

	(void)state;
	aml_init(&w, out, sizeof(out));
	mark = aml_package_begin(&w, 100);
	for (int i = 0; i < 100; i++)
		aml_integer(&w, 0x1234); /* 3 bytes each */
	aml_end(&w, mark);
	assert_false(w.overflow);
	/* PackageOp, 2-byte PkgLength (2 + 1 + 300 = 303), NumElements */
	assert_int_equal(w.len, 1 + 2 + 1 + 300);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(out[1], 0x40 | (303 & 0xf));
	assert_int_equal(out[2], 303 >> 4);
	assert_int_equal(out[3], 100);
	assert_int_equal(out[4], 0x0b);
}

static void test_aml_names_and_integers(void **state)
{
	uint8_t out[64];
	struct aml_writer w;
	static const uint8_t multi[] = {'\\', 0x2f, 3,	 '_', 'S', 'B', '_', 'P',
					'C',  'I',  '0', 'C', 'O', 'M', '_'};
	static const uint8_t ints[] = {0x00, 0x01, 0xff, 0x0a, 0x02, 0x0b, 0x00, 0x01,
				       0x0c, 0x00, 0x00, 0x01, 0x00, 0x0e, 0,	 0,
				       0,    0,	   1,	 0,    0,    0};

	(void)state;
	aml_init(&w, out, sizeof(out));
	aml_name_string(&w, "\\_SB.PCI0.COM");
	assert_int_equal(w.len, sizeof(multi));
	assert_memory_equal(out, multi, sizeof(multi));

	aml_init(&w, out, sizeof(out));
	aml_name_string(&w, "^^AB.C");
	assert_int_equal(w.len, 2 + 1 + 8);
	assert_memory_equal(out,
			    "^^\x2e"
			    "AB__C___",
			    11);

	aml_init(&w, out, sizeof(out));
	aml_integer(&w, 0);
	aml_integer(&w, 1);
	aml_integer(&w, UINT64_MAX);
	aml_integer(&w, 2);
	aml_integer(&w, 0x100);
	aml_integer(&w, 0x10000);
	aml_integer(&w, 1ull << 32);
	assert_int_equal(w.len, sizeof(ints));
	assert_memory_equal(out, ints, sizeof(ints));

	assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
	assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
	assert_int_equal(aml_eisaid_value("pnp0501"), 0);
	assert_int_equal(aml_eisaid_value("PNP050"), 0);
}

static void test_aml_overflow(void **state)
{
	uint8_t out[8];
	struct aml_writer w;
	size_t dev;

	(void)state;
	memset(out, 0, sizeof(out));
	aml_init(&w, out, 6);
	dev = aml_device_begin(&w, "DEVX");
	aml_name_integer(&w, "_UID", 0);
	aml_end(&w, dev);
	assert_true(w.overflow);
	assert_true(w.len <= 6);
	assert_int_equal(out[6], 0);
	assert_int_equal(out[7], 0);

	aml_init(&w, out, sizeof(out));
	aml_name_string(&w, "TOOLONG");
	assert_true(w.overflow);
}

/* --- ACPICA (iasl/acpiexec) cross-check --- */

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char candidate[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)n, path, prog);
		if (access(candidate, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* Run argv in dir with stdout+stderr to dir/log; return the exit status. */
static int run_in(const char *dir, const char *log, char *const argv[])
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		if (chdir(dir) != 0)
			_exit(126);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	FILE *f;
	char *text;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

static void write_table(const char *dir, const char *name, const uint8_t *t)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(t, 1, le32(t + 4), f), le32(t + 4));
	fclose(f);
}

/* Disassemble one table; ACPICA reports bad checksums/lengths as warnings. */
static char *iasl_disassemble(const char *dir, const char *base)
{
	char dat[64], dsl[64], log[64];
	char *argv[] = {"iasl", "-d", dat, NULL};
	char *out, *text;

	snprintf(dat, sizeof(dat), "%s.dat", base);
	snprintf(dsl, sizeof(dsl), "%s.dsl", base);
	snprintf(log, sizeof(log), "%s.log", base);
	assert_int_equal(run_in(dir, log, argv), 0);
	out = slurp(dir, log);
	if (strstr(out, "Warning") || strstr(out, "Error ") || strstr(out, "Invalid"))
		fail_msg("iasl -d %s:\n%s", dat, out);
	free(out);
	text = slurp(dir, dsl);
	if (strstr(text, "Incorrect") || strstr(text, "Invalid"))
		fail_msg("iasl -d %s: table flagged:\n%s", dat, text);
	return text;
}

static void test_iasl(void **state)
{
	char dir[] = "/tmp/isola-acpi-XXXXXX";
	size_t used = build(4);
	uint32_t len;
	const uint8_t *f = xsdt_find(used, "FACP", 6);
	char *text;
	char *recompile[] = {"iasl", "-p", "recompiled", "DSDT.dsl", NULL};
	char *evaluate[] = {"acpiexec", "-b", "evaluate \\_S5; evaluate \\_SB.COM1._CRS",
			    "DSDT.dat", NULL};
	char cmd[600];

	(void)state;
	if (!in_path("iasl")) {
		printf("SKIP: iasl not installed (apt-get install acpica-tools)\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	write_table(dir, "DSDT.dat", dsdt(used, &len));
	write_table(dir, "FACP.dat", f);
	write_table(dir, "APIC.dat", xsdt_find(used, "APIC", 5));
	write_table(dir, "MCFG.dat", xsdt_find(used, "MCFG", 1));
	write_table(dir, "XSDT.dat", table(le64(buf + 24), used, "XSDT", 1));

	text = iasl_disassemble(dir, "DSDT");
	assert_non_null(strstr(text, "Name (\\_S5, Package (0x04)"));
	assert_non_null(strstr(text, "Device (COM1)"));
	assert_non_null(strstr(text, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(text, "Device (PCI0)"));
	assert_non_null(strstr(text, "EisaId (\"PNP0A08\")"));
	assert_non_null(strstr(text, "EisaId (\"PNP0A03\")"));
	assert_non_null(strstr(text, "WordBusNumber (ResourceProducer"));
	assert_non_null(strstr(text, "DWordMemory (ResourceProducer"));
	assert_non_null(strstr(text, "EisaId (\"PNP0C02\")"));
	assert_non_null(strstr(text, "Memory32Fixed (ReadWrite"));
	free(text);

	/* The disassembly must compile again: proof it parsed completely. */
	assert_int_equal(run_in(dir, "recompile.log", recompile), 0);
	text = slurp(dir, "recompile.log");
	assert_non_null(strstr(text, "0 Errors, 0 Warnings"));
	free(text);

	text = iasl_disassemble(dir, "FACP");
	assert_non_null(strstr(text, "Hardware Reduced (V5) : 0"));
	assert_non_null(strstr(text, "SCI Interrupt : 0009"));
	free(text);
	text = iasl_disassemble(dir, "APIC");
	assert_non_null(strstr(text, "I/O Apic ID : 04"));
	free(text);
	free(iasl_disassemble(dir, "MCFG"));
	free(iasl_disassemble(dir, "XSDT"));

	/* ACPICA's interpreter (as in Linux) evaluates what the OS will. */
	if (in_path("acpiexec")) {
		assert_int_equal(run_in(dir, "acpiexec.log", evaluate), 0);
		text = slurp(dir, "acpiexec.log");
		assert_non_null(strstr(text, "[Package] Contains 4 Elements"));
		assert_non_null(strstr(text, "[Integer] = 0000000000000005"));
		assert_non_null(strstr(text, "47 01 F8 03 F8 03 01 08 22 10 00 79 00"));
		free(text);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rsdp),
	    cmocka_unit_test(test_xsdt_entries),
	    cmocka_unit_test(test_fadt),
	    cmocka_unit_test(test_fadt_dsdt_facs),
	    cmocka_unit_test(test_madt),
	    cmocka_unit_test(test_mcfg),
	    cmocka_unit_test(test_dsdt_content),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_too_small),
	    cmocka_unit_test(test_facs_alignment),
	    cmocka_unit_test(test_aml_pkglength),
	    cmocka_unit_test(test_aml_large_package),
	    cmocka_unit_test(test_aml_names_and_integers),
	    cmocka_unit_test(test_aml_overflow),
	    cmocka_unit_test(test_iasl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
