// SPDX-License-Identifier: MIT
/*
 * Unit tests for the kernel loaders (arch/x86/boot*.c).  The images are
 * crafted here: a bzImage is a setup header plus filler, an ELF is a header,
 * program headers, a Xen PVH note and pattern bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "core/loader.h"
#include "isola/bootparam.h"
#include "isola/pvh.h"

#define MIB (1ull << 20)
#define RAM (64 * MIB)

struct fixture {
	struct gmem mem;
	struct e820_table e820;
	struct boot_images images;
	struct boot_entry entry;
	char err[512];
	uint8_t *kernel; /* freed by teardown */
	uint8_t *initrd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gmem_create(&f->mem, RAM, GMEM_BACKING_SHMEM), 0);
	assert_int_equal(e820_build(&f->e820, RAM), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gmem_destroy(&f->mem);
	free(f->kernel);
	free(f->initrd);
	free(f);
	return 0;
}

static int load(struct fixture *f)
{
	memset(f->err, 0, sizeof(f->err));
	return boot_load(&f->mem, &f->e820, &f->images, &f->entry, f->err, sizeof(f->err));
}

/* A failure must say something, and say what to do. */
static void expect_fail(struct fixture *f, int error, const char *needle)
{
	assert_int_equal(load(f), error);
	assert_true(strlen(f->err) > 20);
	if (needle && !strstr(f->err, needle))
		fail_msg("message \"%s\" lacks \"%s\"", f->err, needle);
}

static void set_initrd(struct fixture *f, size_t size)
{
	free(f->initrd);
	f->initrd = malloc(size);
	assert_non_null(f->initrd);
	for (size_t i = 0; i < size; i++)
		f->initrd[i] = (uint8_t)(i * 7 + 3);
	f->images.initrd = f->initrd;
	f->images.initrd_size = size;
}

/* ---- bzImage ------------------------------------------------------------ */

struct bz_opts {
	uint16_t version;
	uint8_t setup_sects;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	size_t pm_size;
};

static struct bz_opts bz_default(void)
{
	return (struct bz_opts){
		.version = 0x020f,
		.setup_sects = 27,
		.loadflags = BOOT_LOADFLAG_LOADED_HIGH,
		.xloadflags = BOOT_XLF_KERNEL_64 | BOOT_XLF_CAN_BE_LOADED_ABOVE_4G,
		.relocatable = 1,
		.kernel_alignment = 2 * MIB,
		.pref_address = 16 * MIB,
		.init_size = 8 * MIB,
		.initrd_addr_max = 0x7fffffff,
		.cmdline_size = 2047,
		.pm_size = 64 * 1024,
	};
}

static void make_bzimage(struct fixture *f, const struct bz_opts *o)
{
	unsigned sects = o->setup_sects ? o->setup_sects : 4;
	size_t setup = (sects + 1) * 512, size = setup + o->pm_size;
	struct boot_setup_header hdr;
	uint8_t *img = malloc(size);

	assert_non_null(img);
	for (size_t i = 0; i < size; i++)
		img[i] = (uint8_t)(i * 13 + 1);
	memset(&hdr, 0, sizeof(hdr));
	hdr.setup_sects = o->setup_sects;
	hdr.syssize = (uint32_t)(o->pm_size / 16);
	hdr.boot_flag = BOOT_FLAG_MAGIC;
	hdr.jump = 0xeb | (uint16_t)((0x26c - 0x202) << 8); /* jmp past the 2.15 header */
	hdr.header = BOOT_HDR_MAGIC;
	hdr.version = o->version;
	hdr.kernel_version = 0x1234;
	hdr.loadflags = o->loadflags;
	hdr.code32_start = 0x100000;
	hdr.initrd_addr_max = o->initrd_addr_max;
	hdr.kernel_alignment = o->kernel_alignment;
	hdr.relocatable_kernel = o->relocatable;
	hdr.min_alignment = 21;
	hdr.xloadflags = o->xloadflags;
	hdr.cmdline_size = o->cmdline_size;
	hdr.setup_data = 0xdeadbeef; /* must not reach the guest */
	hdr.pref_address = o->pref_address;
	hdr.init_size = o->init_size;
	hdr.handover_offset = 0x190;
	memcpy(img + 0x1f1, &hdr, sizeof(hdr));
	free(f->kernel);
	f->kernel = img;
	f->images.kernel = img;
	f->images.kernel_size = size;
}

static void test_detect(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	static const uint8_t elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};

	make_bzimage(f, &o);
	assert_int_equal(boot_detect(f->kernel, f->images.kernel_size), BOOT_FORMAT_BZIMAGE);
	assert_int_equal(boot_detect(f->kernel, 0x205), BOOT_FORMAT_UNKNOWN);
	assert_int_equal(boot_detect(elf, sizeof(elf)), BOOT_FORMAT_ELF);
	assert_int_equal(boot_detect(elf, 3), BOOT_FORMAT_UNKNOWN);
	assert_int_equal(boot_detect(NULL, 100), BOOT_FORMAT_UNKNOWN);
}

static void test_bzimage_64bit(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	struct boot_params zp, want;
	char cmdline[64];
	uint8_t *kernel_copy, *initrd_copy;
	size_t setup = (o.setup_sects + 1) * 512;

	make_bzimage(f, &o);
	set_initrd(f, 1 * MIB + 123);
	f->images.cmdline = "console=ttyS0 quiet";
	f->images.rsdp_gpa = LAYOUT_ACPI_START;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->entry.rip, LAYOUT_KERNEL_LOAD + 0x200);
	assert_int_equal(f->entry.boot_info, LAYOUT_ZERO_PAGE);

	/* The zero page, byte for byte: the image's header plus what a boot
	 * loader must write (boot.rst "Details of header fields"). */
	assert_int_equal(gmem_read(&f->mem, LAYOUT_ZERO_PAGE, &zp, sizeof(zp)), 0);
	memset(&want, 0, sizeof(want));
	memcpy(&want.hdr, f->kernel + 0x1f1, sizeof(want.hdr));
	want.hdr.vid_mode = 0xffff;
	want.hdr.type_of_loader = 0xff;
	want.hdr.loadflags |= BOOT_LOADFLAG_CAN_USE_HEAP;
	want.hdr.heap_end_ptr = 0xfe00 - 0x200;
	want.hdr.cmd_line_ptr = LAYOUT_CMDLINE;
	want.hdr.setup_data = 0;
	want.hdr.ramdisk_image = zp.hdr.ramdisk_image; /* checked below */
	want.hdr.ramdisk_size = 1 * MIB + 123;
	want.acpi_rsdp_addr = LAYOUT_ACPI_START;
	want.e820_entries = (uint8_t)f->e820.nr_entries;
	for (unsigned i = 0; i < f->e820.nr_entries; i++) {
		want.e820_table[i].addr = f->e820.entries[i].addr;
		want.e820_table[i].size = f->e820.entries[i].size;
		want.e820_table[i].type = f->e820.entries[i].type;
	}
	assert_memory_equal(&zp, &want, sizeof(zp));
	assert_int_equal(zp.e820_entries, 4);
	assert_int_equal(zp.e820_table[2].addr, 1 * MIB);
	assert_int_equal(zp.e820_table[2].size, RAM - 1 * MIB);

	/* Initrd: page aligned, as high as RAM allows, above the kernel's
	 * run area (pref_address 16 MiB + init_size 8 MiB). */
	assert_int_equal(zp.hdr.ramdisk_image % 4096, 0);
	assert_true(zp.hdr.ramdisk_image >= 24 * MIB);
	assert_true(zp.hdr.ramdisk_image + f->images.initrd_size <= RAM);
	assert_true(zp.hdr.ramdisk_image > RAM - f->images.initrd_size - 4096);
	initrd_copy = gmem_ptr(&f->mem, zp.hdr.ramdisk_image, f->images.initrd_size);
	assert_non_null(initrd_copy);
	assert_memory_equal(initrd_copy, f->initrd, f->images.initrd_size);

	/* Protected-mode kernel at 1 MiB, the command line NUL-terminated. */
	kernel_copy = gmem_ptr(&f->mem, LAYOUT_KERNEL_LOAD, o.pm_size);
	assert_memory_equal(kernel_copy, f->kernel + setup, o.pm_size);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_CMDLINE, cmdline, sizeof(cmdline)), 0);
	assert_string_equal(cmdline, "console=ttyS0 quiet");
}

static void test_bzimage_32bit_fallback(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	/* 2.10: no xloadflags at all. */
	o.version = 0x020a;
	o.xloadflags = 0;
	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_LINUX32);
	assert_int_equal(f->entry.rip, LAYOUT_KERNEL_LOAD);
	assert_int_equal(f->entry.boot_info, LAYOUT_ZERO_PAGE);

	/* 2.12 but a 32-bit kernel (no XLF_KERNEL_64). */
	o.version = 0x020c;
	o.xloadflags = 0;
	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_LINUX32);

	/* 2.11 with stray bits where xloadflags will be: still 32-bit. */
	o.version = 0x020b;
	o.xloadflags = BOOT_XLF_KERNEL_64;
	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_LINUX32);
}

static void test_bzimage_old_protocol(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	o.version = 0x0204;
	make_bzimage(f, &o);
	expect_fail(f, -ENOEXEC, "boot protocol 2.04 is older than 2.06");
	assert_non_null(strstr(f->err, "2.6.22"));

	/* 2.06 itself is fine (no pref_address/init_size: estimated). */
	o.version = 0x0206;
	o.xloadflags = 0;
	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_LINUX32);
}

static void test_bzimage_zimage(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	o.loadflags = 0;
	make_bzimage(f, &o);
	expect_fail(f, -ENOEXEC, "zImage");
}

static void test_bzimage_pref_address_too_high(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	/* Not relocatable: the kernel moves itself to 64 MiB and needs 16 MiB
	 * there, but the guest has 64 MiB in all. */
	o.relocatable = 0;
	o.pref_address = 64 * MIB;
	o.init_size = 16 * MIB;
	make_bzimage(f, &o);
	expect_fail(f, -ENOMEM, "--memory 80");
	assert_non_null(strstr(f->err, "0x4000000"));

	/* Same kernel at 32 MiB fits, and the initrd goes above its area. */
	o.pref_address = 32 * MIB;
	make_bzimage(f, &o);
	set_initrd(f, 4096);
	assert_int_equal(load(f), 0);

	/* A kernel that wants to live below 1 MiB would overwrite our tables. */
	o.pref_address = 0x10000;
	make_bzimage(f, &o);
	expect_fail(f, -ENOEXEC, "below 1 MiB");
}

static void test_bzimage_init_size_too_big(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	o.init_size = 60 * MIB; /* at 16 MiB: needs 76 MiB */
	make_bzimage(f, &o);
	expect_fail(f, -ENOMEM, "--memory 76");

	/* The protected-mode kernel itself does not fit. */
	o = bz_default();
	o.pm_size = 64 * MIB;
	make_bzimage(f, &o);
	expect_fail(f, -ENOMEM, "--memory 65");
}

static void test_bzimage_bad_alignment(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	o.kernel_alignment = 3 * MIB;
	make_bzimage(f, &o);
	expect_fail(f, -ENOEXEC, "kernel_alignment");
	o.kernel_alignment = 0;
	make_bzimage(f, &o);
	expect_fail(f, -ENOEXEC, "kernel_alignment");
}

static void test_bzimage_cmdline(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	char got[32];

	o.cmdline_size = 16;
	make_bzimage(f, &o);
	f->images.cmdline = "0123456789abcdef"; /* exactly 16: fits */
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_CMDLINE, got, 17), 0);
	assert_string_equal(got, "0123456789abcdef");
	f->images.cmdline = "0123456789abcdefg";
	expect_fail(f, -E2BIG, "16 characters");

	/* NULL means an empty command line. */
	f->images.cmdline = NULL;
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_CMDLINE, got, 1), 0);
	assert_int_equal(got[0], 0);
}

static void test_bzimage_cmdline_capped_by_layout(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	char *line = malloc(LAYOUT_CMDLINE_MAX + 1);

	/* The kernel claims 4 GiB of command line; the layout has 64 KiB. */
	o.cmdline_size = 0xffffffff;
	make_bzimage(f, &o);
	memset(line, 'x', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX] = 0;
	f->images.cmdline = line;
	expect_fail(f, -E2BIG, "cmdline");
	line[LAYOUT_CMDLINE_MAX - 1] = 0;
	assert_int_equal(load(f), 0);
	free(line);
}

static void test_bzimage_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	make_bzimage(f, &o);
	set_initrd(f, 48 * MIB); /* kernel area ends at 24 MiB */
	expect_fail(f, -ENOMEM, "initrd of 48 MiB does not fit");
	assert_non_null(strstr(f->err, "--memory 72"));
}

static void test_bzimage_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	struct boot_params zp;

	/* Highest byte the initrd may occupy: 32 MiB - 1. */
	o.initrd_addr_max = 32 * MIB - 1;
	make_bzimage(f, &o);
	set_initrd(f, 2 * MIB);
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_ZERO_PAGE, &zp, sizeof(zp)), 0);
	assert_int_equal(zp.hdr.ramdisk_image, 30 * MIB);
	assert_int_equal(zp.hdr.ramdisk_size, 2 * MIB);

	/* Below initrd_addr_max there is no room: more memory does not help. */
	set_initrd(f, 9 * MIB);
	expect_fail(f, -ENOMEM, "initrd_addr_max");
	assert_non_null(strstr(f->err, "smaller initrd"));
}

static void test_bzimage_no_initrd(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	struct boot_params zp;

	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_ZERO_PAGE, &zp, sizeof(zp)), 0);
	assert_int_equal(zp.hdr.ramdisk_image, 0);
	assert_int_equal(zp.hdr.ramdisk_size, 0);
	assert_int_equal(zp.acpi_rsdp_addr, 0);
}

static void test_bzimage_setup_sects_zero(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	uint8_t first;

	/* setup_sects 0 means 4: the kernel starts at file offset 5 * 512. */
	o.setup_sects = 0;
	make_bzimage(f, &o);
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_KERNEL_LOAD, &first, 1), 0);
	assert_int_equal(first, f->kernel[5 * 512]);
}

static void test_bzimage_header_length(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	struct boot_params zp;

	/* A 2.06 header ends at 0x23c: fields past it are setup code, and
	 * must not show up in the zero page. */
	o.version = 0x0206;
	o.xloadflags = 0;
	make_bzimage(f, &o);
	f->kernel[0x201] = 0x23c - 0x202;
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_ZERO_PAGE, &zp, sizeof(zp)), 0);
	assert_int_equal(zp.hdr.cmdline_size, o.cmdline_size);
	assert_int_equal(zp.hdr.hardware_subarch, 0);
	assert_int_equal(zp.hdr.pref_address, 0);
	assert_int_equal(zp.hdr.init_size, 0);
}

static void test_bzimage_truncated(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	make_bzimage(f, &o);
	/* Setup code but no protected-mode kernel. */
	f->images.kernel_size = (o.setup_sects + 1) * 512;
	expect_fail(f, -ENOEXEC, "truncated");
	/* Cut inside the protected-mode kernel its syssize announces. */
	f->images.kernel_size = (o.setup_sects + 1) * 512 + o.pm_size - 16;
	expect_fail(f, -ENOEXEC, "truncated");
	f->images.kernel_size = 0x300;
	expect_fail(f, -ENOEXEC, "truncated");
	/* Through bzimage_load directly, below the magic too. */
	assert_int_equal(bzimage_load(&f->mem, &f->e820, &f->images, &f->entry, f->err,
				      sizeof(f->err)), -ENOEXEC);
	f->images.kernel_size = 10;
	assert_int_equal(bzimage_load(&f->mem, &f->e820, &f->images, &f->entry, f->err,
				      sizeof(f->err)), -ENOEXEC);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	uint8_t *junk = malloc(8192);

	for (int i = 0; i < 8192; i++)
		junk[i] = (uint8_t)(i * 31 + 7);
	f->images.kernel = junk;
	f->images.kernel_size = 8192;
	expect_fail(f, -ENOEXEC, "neither a Linux bzImage");
	f->images.kernel_size = 0;
	expect_fail(f, -ENOEXEC, NULL);
	f->images.kernel = NULL;
	expect_fail(f, -ENOEXEC, NULL);
	free(junk);

	/* "HdrS" but no boot flag. */
	make_bzimage(f, &o);
	f->kernel[0x1fe] = 0;
	expect_fail(f, -ENOEXEC, "not a bzImage");
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();

	make_bzimage(f, &o);
	f->e820.nr_entries = E820_MAX_ENTRIES + 1;
	expect_fail(f, -EINVAL, "e820");
	f->e820.nr_entries = 4;
	f->images.initrd = NULL;
	f->images.initrd_size = 10;
	expect_fail(f, -EINVAL, "initrd");
	assert_int_equal(boot_load(&f->mem, NULL, &f->images, &f->entry, f->err, sizeof(f->err)), -EINVAL);
}

static void test_bzimage_full_e820(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	struct boot_params zp;

	make_bzimage(f, &o);
	memset(&f->e820, 0, sizeof(f->e820));
	for (unsigned i = 0; i < E820_MAX_ENTRIES; i++)
		assert_int_equal(e820_add(&f->e820, i * 0x10000ull, 0x8000, E820_RAM + i % 2), 0);
	assert_int_equal(load(f), 0);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_ZERO_PAGE, &zp, sizeof(zp)), 0);
	assert_int_equal(zp.e820_entries, E820_MAX_ENTRIES);
	assert_int_equal(zp.e820_table[127].addr, 127 * 0x10000ull);
	assert_int_equal(zp.e820_table[127].type, E820_RAM + 1);
}

/* ---- PVH ELF ------------------------------------------------------------ */

struct tseg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

struct elf_opts {
	int is64;
	uint16_t machine;
	unsigned nr_segs;
	struct tseg segs[8]; /* PT_LOADs; file data is generated at offset */
	uint64_t entry;
	unsigned desc_size;  /* 0: no PVH note, 4 or 8 */
	int note_in_section; /* put the note in an SHT_NOTE section, not a PT_NOTE */
	size_t size;
};

#define ELF_NOTE_OFFSET 0x400
#define ELF_SHDR_OFFSET 0x600

/* One 8 KiB text segment at 16 MiB with 8 KiB of bss, entry inside. */
static struct elf_opts elf_default(int is64)
{
	return (struct elf_opts){
		.is64 = is64,
		.machine = is64 ? EM_X86_64 : EM_386,
		.nr_segs = 2,
		.segs = {{PT_LOAD, 0x1000, 16 * MIB, 0x2000, 0x4000},
			 {PT_LOAD, 0x3000, 17 * MIB, 0x1000, 0x1000}},
		.entry = 16 * MIB + 0x40,
		.desc_size = is64 ? 8 : 4,
		.size = 0x4000,
	};
}

static void put_phdr(uint8_t *img, int is64, unsigned i, const struct tseg *s)
{
	if (is64) {
		Elf64_Phdr p = {.p_type = s->type, .p_flags = PF_R | PF_X, .p_offset = s->offset,
				.p_vaddr = s->paddr + 0xffffffff80000000ull, .p_paddr = s->paddr,
				.p_filesz = s->filesz, .p_memsz = s->memsz, .p_align = 4};
		memcpy(img + sizeof(Elf64_Ehdr) + i * sizeof(p), &p, sizeof(p));
	} else {
		Elf32_Phdr p = {.p_type = s->type, .p_flags = PF_R | PF_X,
				.p_offset = (uint32_t)s->offset, .p_vaddr = (uint32_t)s->paddr,
				.p_paddr = (uint32_t)s->paddr, .p_filesz = (uint32_t)s->filesz,
				.p_memsz = (uint32_t)s->memsz, .p_align = 4};
		memcpy(img + sizeof(Elf32_Ehdr) + i * sizeof(p), &p, sizeof(p));
	}
}

static size_t put_note(uint8_t *img, const struct elf_opts *o)
{
	uint32_t words[3] = {0, 4, 1};

	/* A GNU build-id note first: the loader must skip it. */
	memcpy(img + ELF_NOTE_OFFSET, (uint32_t[3]){4, 4, NT_GNU_BUILD_ID}, 12);
	memcpy(img + ELF_NOTE_OFFSET + 12, "GNU\0\1\2\3\4", 8);
	words[0] = 4;
	words[1] = o->desc_size;
	words[2] = XEN_ELFNOTE_PHYS32_ENTRY;
	memcpy(img + ELF_NOTE_OFFSET + 20, words, 12);
	memcpy(img + ELF_NOTE_OFFSET + 32, "Xen", 4);
	memcpy(img + ELF_NOTE_OFFSET + 36, &o->entry, o->desc_size);
	return 36 + ((o->desc_size + 3) & ~3u);
}

static void put_section(uint8_t *img, const struct elf_opts *o, size_t note_size)
{
	if (o->is64) {
		Elf64_Shdr s[2] = {{0}, {.sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFFSET,
					 .sh_size = note_size, .sh_addralign = 4}};
		memcpy(img + ELF_SHDR_OFFSET, s, sizeof(s));
	} else {
		Elf32_Shdr s[2] = {{0}, {.sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFFSET,
					 .sh_size = (uint32_t)note_size, .sh_addralign = 4}};
		memcpy(img + ELF_SHDR_OFFSET, s, sizeof(s));
	}
}

static void make_elf(struct fixture *f, const struct elf_opts *o)
{
	uint8_t *img = calloc(1, o->size);
	unsigned phnum = o->nr_segs;
	size_t note_size = 0;

	assert_non_null(img);
	for (size_t i = 0x1000; i < o->size; i++)
		img[i] = (uint8_t)(i * 5 + 11);
	if (o->desc_size)
		note_size = put_note(img, o);
	for (unsigned i = 0; i < o->nr_segs; i++)
		put_phdr(img, o->is64, i, &o->segs[i]);
	if (o->desc_size && !o->note_in_section) {
		struct tseg note = {PT_NOTE, ELF_NOTE_OFFSET, 0, note_size, 0};

		put_phdr(img, o->is64, phnum++, &note);
	}
	if (o->note_in_section)
		put_section(img, o, note_size);
	if (o->is64) {
		Elf64_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
					     EV_CURRENT},
				 .e_type = ET_EXEC, .e_machine = o->machine, .e_version = EV_CURRENT,
				 .e_entry = 0xffffffff81000000ull, .e_phoff = sizeof(Elf64_Ehdr),
				 .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
				 .e_phnum = (uint16_t)phnum, .e_shentsize = sizeof(Elf64_Shdr)};
		if (o->note_in_section)
			eh.e_shoff = ELF_SHDR_OFFSET, eh.e_shnum = 2;
		memcpy(img, &eh, sizeof(eh));
	} else {
		Elf32_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB,
					     EV_CURRENT},
				 .e_type = ET_EXEC, .e_machine = o->machine, .e_version = EV_CURRENT,
				 .e_entry = (uint32_t)o->entry, .e_phoff = sizeof(Elf32_Ehdr),
				 .e_ehsize = sizeof(Elf32_Ehdr), .e_phentsize = sizeof(Elf32_Phdr),
				 .e_phnum = (uint16_t)phnum, .e_shentsize = sizeof(Elf32_Shdr)};
		if (o->note_in_section)
			eh.e_shoff = ELF_SHDR_OFFSET, eh.e_shnum = 2;
		memcpy(img, &eh, sizeof(eh));
	}
	free(f->kernel);
	f->kernel = img;
	f->images.kernel = img;
	f->images.kernel_size = o->size;
}

static void check_pvh_boot(struct fixture *f, const struct elf_opts *o)
{
	struct hvm_start_info info;
	struct hvm_memmap_table_entry map;
	struct hvm_modlist_entry module;
	uint8_t *p;

	/* Dirty the bss first: the loader must zero it. */
	p = gmem_ptr(&f->mem, 16 * MIB, 0x4000);
	memset(p, 0xaa, 0x4000);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->entry.mode, BOOT_ENTRY_PVH);
	assert_int_equal(f->entry.rip, o->entry);
	assert_int_equal(f->entry.boot_info, LAYOUT_PVH_START_INFO);
	assert_memory_equal(p, f->kernel + 0x1000, 0x2000);
	for (unsigned i = 0x2000; i < 0x4000; i++)
		assert_int_equal(p[i], 0);
	p = gmem_ptr(&f->mem, 17 * MIB, 0x1000);
	assert_memory_equal(p, f->kernel + 0x3000, 0x1000);

	assert_int_equal(gmem_read(&f->mem, LAYOUT_PVH_START_INFO, &info, sizeof(info)), 0);
	assert_int_equal(info.magic, HVM_START_MAGIC_VALUE);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.flags, 0);
	assert_int_equal(info.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(info.rsdp_paddr, f->images.rsdp_gpa);
	assert_int_equal(info.memmap_entries, f->e820.nr_entries);
	/* The memmap lies after the struct, inside the same page. */
	assert_true(info.memmap_paddr >= LAYOUT_PVH_START_INFO + sizeof(info));
	assert_true(info.memmap_paddr + info.memmap_entries * sizeof(map) <=
		    LAYOUT_PVH_START_INFO + LAYOUT_PVH_START_INFO_SIZE);
	for (unsigned i = 0; i < info.memmap_entries; i++) {
		assert_int_equal(gmem_read(&f->mem, info.memmap_paddr + i * sizeof(map), &map,
					   sizeof(map)), 0);
		assert_int_equal(map.addr, f->e820.entries[i].addr);
		assert_int_equal(map.size, f->e820.entries[i].size);
		assert_int_equal(map.type, f->e820.entries[i].type);
		assert_int_equal(map.reserved, 0);
	}
	if (!f->images.initrd) {
		assert_int_equal(info.nr_modules, 0);
		return;
	}
	assert_int_equal(info.nr_modules, 1);
	assert_int_equal(gmem_read(&f->mem, info.modlist_paddr, &module, sizeof(module)), 0);
	assert_int_equal(module.size, f->images.initrd_size);
	assert_int_equal(module.cmdline_paddr, 0);
	assert_int_equal(module.paddr % 4096, 0);
	assert_true(module.paddr >= 17 * MIB + 0x1000);
	assert_true(module.paddr + module.size <= RAM);
	assert_true(module.paddr > RAM - module.size - 4096);
	assert_memory_equal(gmem_ptr(&f->mem, module.paddr, module.size), f->initrd, module.size);
}

static void test_pvh_elf64(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);
	char got[32];

	make_elf(f, &o);
	set_initrd(f, 3 * MIB + 5);
	f->images.cmdline = "console=hvc0";
	f->images.rsdp_gpa = LAYOUT_ACPI_START;
	check_pvh_boot(f, &o);
	assert_int_equal(gmem_read(&f->mem, LAYOUT_CMDLINE, got, 13), 0);
	assert_string_equal(got, "console=hvc0");
}

static void test_pvh_elf32(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(0);

	make_elf(f, &o);
	set_initrd(f, 4096);
	check_pvh_boot(f, &o);

	/* ELF32 tagged EM_X86_64 is accepted too; the note may hold 8 bytes. */
	o.machine = EM_X86_64;
	o.desc_size = 8;
	make_elf(f, &o);
	f->images.initrd = NULL;
	f->images.initrd_size = 0;
	check_pvh_boot(f, &o);
}

static void test_pvh_note_in_section(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.note_in_section = 1;
	make_elf(f, &o);
	check_pvh_boot(f, &o);
}

static void test_pvh_missing_note(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.desc_size = 0;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build with CONFIG_PVH=y");

	/* Right type, wrong owner. */
	o = elf_default(1);
	make_elf(f, &o);
	memcpy(f->kernel + ELF_NOTE_OFFSET + 32, "Xem", 4);
	expect_fail(f, -ENOEXEC, "CONFIG_PVH");

	/* Descriptor of a size that is no address. */
	o = elf_default(1);
	o.desc_size = 2;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "neither 4 nor 8");
}

static void test_pvh_bad_entry(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.entry = 20 * MIB; /* not in any segment */
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "not inside any loaded segment");
	o.entry = 0x100000000ull + 16 * MIB;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "above 4 GiB");
}

static void test_pvh_truncated_phdrs(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	make_elf(f, &o);
	f->images.kernel_size = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10;
	expect_fail(f, -ENOEXEC, "program headers");
	f->images.kernel_size = sizeof(Elf64_Ehdr) - 1;
	expect_fail(f, -ENOEXEC, "truncated");
	f->images.kernel_size = 20;
	expect_fail(f, -ENOEXEC, "truncated");
}

static void test_pvh_segment_past_eof(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.segs[1].offset = o.size - 0x800; /* 0x1000 bytes from 0x800 before the end */
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "past the end");
	o.segs[1].offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "past the end");
}

static void test_pvh_filesz_over_memsz(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(0);

	o.segs[0].memsz = 0x1000;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "more file bytes");
}

static void test_pvh_overlapping_segments(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.segs[1].paddr = 16 * MIB + 0x3000; /* inside segment 0's bss */
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "overlap");
}

static void test_pvh_segment_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.segs[1].paddr = RAM - 0x800; /* straddles the end of RAM */
	make_elf(f, &o);
	expect_fail(f, -ENOMEM, "--memory 65");
	o.segs[1].paddr = 0xd0000000; /* in the MMIO hole */
	make_elf(f, &o);
	expect_fail(f, -ENOMEM, "outside guest RAM");
}

static void test_pvh_segment_over_boot_structures(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);
	static const uint64_t bad[] = {LAYOUT_ZERO_PAGE, LAYOUT_PVH_START_INFO, LAYOUT_CMDLINE,
				       LAYOUT_PML4, LAYOUT_ACPI_START, 0};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.segs[1].paddr = bad[i];
		make_elf(f, &o);
		expect_fail(f, -ENOEXEC, "below 1 MiB");
	}
	/* Ending exactly at 1 MiB is still below it. */
	o.segs[1].paddr = LAYOUT_HIGH_MEMORY - 0x1000;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "boot structures");
}

static void test_pvh_absurd_phnum(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);
	uint16_t phnum = 0xffff;

	make_elf(f, &o);
	memcpy(f->kernel + offsetof(Elf64_Ehdr, e_phnum), &phnum, 2);
	expect_fail(f, -ENOEXEC, "program headers");
	phnum = 0;
	memcpy(f->kernel + offsetof(Elf64_Ehdr, e_phnum), &phnum, 2);
	expect_fail(f, -ENOEXEC, "program headers");
	/* Wrong entry size. */
	make_elf(f, &o);
	f->kernel[offsetof(Elf64_Ehdr, e_phentsize)] = 32;
	expect_fail(f, -ENOEXEC, "program headers");
}

static void test_pvh_paddr_overflow(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.segs[1].paddr = UINT64_MAX - 0x100;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "overflows");
	/* ELF32: 32-bit fields cannot wrap a 64-bit sum; far beyond RAM. */
	o = elf_default(0);
	o.segs[1].paddr = 0xffffff00;
	make_elf(f, &o);
	expect_fail(f, -ENOMEM, "outside guest RAM");
}

static void test_pvh_wrong_kind(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	o.machine = EM_AARCH64;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "not x86");
	o = elf_default(1);
	make_elf(f, &o);
	f->kernel[EI_DATA] = ELFDATA2MSB;
	expect_fail(f, -ENOEXEC, "big-endian");
	make_elf(f, &o);
	f->kernel[EI_CLASS] = 7;
	expect_fail(f, -ENOEXEC, "class");
	make_elf(f, &o);
	f->kernel[offsetof(Elf64_Ehdr, e_type)] = ET_REL;
	expect_fail(f, -ENOEXEC, "not an executable");
	/* ELF64 with EM_386 is not a thing. */
	o.machine = EM_386;
	make_elf(f, &o);
	expect_fail(f, -ENOEXEC, "not x86");
}

static void test_pvh_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);

	make_elf(f, &o);
	set_initrd(f, 60 * MIB);
	expect_fail(f, -ENOMEM, "initrd of 60 MiB does not fit");
	assert_non_null(strstr(f->err, "--memory"));
}

static void test_pvh_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	struct elf_opts o = elf_default(1);
	char *line = malloc(LAYOUT_CMDLINE_MAX + 1);

	make_elf(f, &o);
	memset(line, 'y', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX] = 0;
	f->images.cmdline = line;
	expect_fail(f, -E2BIG, "command line");
	free(line);
}

/* core/loader.c: the guest boots without "pci=off" (Kata's Firecracker
 * kernel parameters; isola's devices are virtio-pci), everything else as
 * given, spacing included when nothing is dropped. */
static void test_guest_cmdline_drops_pci_off(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"console=ttyS0 pci=off reboot=k", "console=ttyS0 reboot=k"},
	    {"pci=off", ""},
	    {"pci=off pci=off  quiet", "quiet"},
	    {"a  b\tc", "a  b\tc"},
	    {"pci=offx xpci=off pci=noacpi", "pci=offx xpci=off pci=noacpi"},
	    {"", ""},
	};
	bool failed;

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = loader_guest_cmdline(cases[i].in, &failed);

		assert_false(failed);
		assert_non_null(out);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
	assert_null(loader_guest_cmdline(NULL, &failed));
	assert_false(failed);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_detect),
		T(test_guest_cmdline_drops_pci_off),
		T(test_bzimage_64bit),
		T(test_bzimage_32bit_fallback),
		T(test_bzimage_old_protocol),
		T(test_bzimage_zimage),
		T(test_bzimage_pref_address_too_high),
		T(test_bzimage_init_size_too_big),
		T(test_bzimage_bad_alignment),
		T(test_bzimage_cmdline),
		T(test_bzimage_cmdline_capped_by_layout),
		T(test_bzimage_initrd_too_big),
		T(test_bzimage_initrd_addr_max),
		T(test_bzimage_no_initrd),
		T(test_bzimage_setup_sects_zero),
		T(test_bzimage_header_length),
		T(test_bzimage_truncated),
		T(test_garbage),
		T(test_bad_arguments),
		T(test_bzimage_full_e820),
		T(test_pvh_elf64),
		T(test_pvh_elf32),
		T(test_pvh_note_in_section),
		T(test_pvh_missing_note),
		T(test_pvh_bad_entry),
		T(test_pvh_truncated_phdrs),
		T(test_pvh_segment_past_eof),
		T(test_pvh_filesz_over_memsz),
		T(test_pvh_overlapping_segments),
		T(test_pvh_segment_outside_ram),
		T(test_pvh_segment_over_boot_structures),
		T(test_pvh_absurd_phnum),
		T(test_pvh_paddr_overflow),
		T(test_pvh_wrong_kind),
		T(test_pvh_initrd_too_big),
		T(test_pvh_cmdline_too_long),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
