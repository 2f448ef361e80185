// SPDX-License-Identifier: MIT
/*
 * ELF loader for kernels with a PVH entry: the note XEN_ELFNOTE_PHYS32_ENTRY
 * (Xen include/public/elfnote.h; Linux arch/x86/platform/pvh/head.S) names a
 * physical entry point entered in flat 32-bit protected mode, paging off,
 * with EBX = the GPA of struct hvm_start_info (Xen's hvm/start_info.h).
 * Segments load at p_paddr; every field of the file is checked before use,
 * since the loader is a parser of untrusted input (tests/fuzz/fuzz_boot.c).
 */
#include "arch/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "isola/pvh.h"

#define MIB (1ull << 20)
/* Linux's vmlinux has 5 program headers, unikernels a handful; more is
 * either a broken or a hostile file. */
#define PVH_MAX_PHDRS 64
#define PVH_MAX_SHDRS 4096

struct elf_file {
	const uint8_t *data;
	uint64_t size;
	int is64;
	uint64_t phoff, shoff;
	unsigned phnum, shnum;
};

/* Program and section headers, class-independent. */
struct elf_segment {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

static uint64_t mib_round_up(uint64_t bytes)
{
	return bytes / MIB + (bytes % MIB != 0);
}

/* True if [offset, offset + len) lies inside the file. */
static int elf_in_file(const struct elf_file *elf, uint64_t offset, uint64_t len)
{
	return offset <= elf->size && len <= elf->size - offset;
}

static int elf_parse_header(struct elf_file *elf, char *err, size_t errlen)
{
	const uint8_t *ident = elf->data;
	Elf64_Ehdr eh64;
	Elf32_Ehdr eh32;
	unsigned machine, type, phentsize, shentsize;

	if (elf->size < sizeof(Elf32_Ehdr) || ident[EI_VERSION] != EV_CURRENT ||
	    (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64)) {
		boot_error(err, errlen, "ELF kernel is truncated or has an unknown class/version; check the file");
		return -ENOEXEC;
	}
	if (ident[EI_DATA] != ELFDATA2LSB) {
		boot_error(err, errlen, "ELF kernel is big-endian; pass an x86 kernel");
		return -ENOEXEC;
	}
	elf->is64 = ident[EI_CLASS] == ELFCLASS64;
	if (elf->is64) {
		if (elf->size < sizeof(eh64)) {
			boot_error(err, errlen, "ELF kernel is truncated inside its header; check the file");
			return -ENOEXEC;
		}
		memcpy(&eh64, elf->data, sizeof(eh64));
		machine = eh64.e_machine, type = eh64.e_type;
		elf->phoff = eh64.e_phoff, elf->phnum = eh64.e_phnum, phentsize = eh64.e_phentsize;
		elf->shoff = eh64.e_shoff, elf->shnum = eh64.e_shnum, shentsize = eh64.e_shentsize;
	} else {
		memcpy(&eh32, elf->data, sizeof(eh32));
		machine = eh32.e_machine, type = eh32.e_type;
		elf->phoff = eh32.e_phoff, elf->phnum = eh32.e_phnum, phentsize = eh32.e_phentsize;
		elf->shoff = eh32.e_shoff, elf->shnum = eh32.e_shnum, shentsize = eh32.e_shentsize;
	}
	if (machine != EM_X86_64 && (elf->is64 || machine != EM_386)) {
		boot_error(err, errlen, "ELF kernel is for machine %u, not x86 (%s); pass an x86 kernel",
			   machine, elf->is64 ? "EM_X86_64" : "EM_386 or EM_X86_64");
		return -ENOEXEC;
	}
	if (type != ET_EXEC && type != ET_DYN) {
		boot_error(err, errlen, "ELF file is not an executable (e_type %u); pass the linked kernel, "
			   "not an object file", type);
		return -ENOEXEC;
	}
	if (elf->phnum == 0 || elf->phnum > PVH_MAX_PHDRS ||
	    phentsize != (elf->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    !elf_in_file(elf, elf->phoff, (uint64_t)elf->phnum * phentsize)) {
		boot_error(err, errlen, "ELF kernel's program headers are missing, truncated or absurd "
			   "(%u of %u bytes at 0x%llx, at most %u); check the file",
			   elf->phnum, phentsize, (unsigned long long)elf->phoff, PVH_MAX_PHDRS);
		return -ENOEXEC;
	}
	/* Section headers are optional (only searched for notes): ignore bad ones. */
	if (elf->shnum > PVH_MAX_SHDRS ||
	    shentsize != (elf->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
	    !elf_in_file(elf, elf->shoff, (uint64_t)elf->shnum * shentsize))
		elf->shnum = 0;
	return 0;
}

static void elf_phdr(const struct elf_file *elf, unsigned i, struct elf_segment *seg)
{
	Elf64_Phdr p64;
	Elf32_Phdr p32;

	if (elf->is64) {
		memcpy(&p64, elf->data + elf->phoff + (uint64_t)i * sizeof(p64), sizeof(p64));
		*seg = (struct elf_segment){p64.p_type, p64.p_offset, p64.p_paddr,
					    p64.p_filesz, p64.p_memsz, p64.p_align};
	} else {
		memcpy(&p32, elf->data + elf->phoff + (uint64_t)i * sizeof(p32), sizeof(p32));
		*seg = (struct elf_segment){p32.p_type, p32.p_offset, p32.p_paddr,
					    p32.p_filesz, p32.p_memsz, p32.p_align};
	}
}

/* A section header as a segment: only type, offset, size and align matter. */
static void elf_shdr(const struct elf_file *elf, unsigned i, struct elf_segment *seg)
{
	Elf64_Shdr s64;
	Elf32_Shdr s32;

	if (elf->is64) {
		memcpy(&s64, elf->data + elf->shoff + (uint64_t)i * sizeof(s64), sizeof(s64));
		*seg = (struct elf_segment){s64.sh_type, s64.sh_offset, 0, s64.sh_size, 0,
					    s64.sh_addralign};
	} else {
		memcpy(&s32, elf->data + elf->shoff + (uint64_t)i * sizeof(s32), sizeof(s32));
		*seg = (struct elf_segment){s32.sh_type, s32.sh_offset, 0, s32.sh_size, 0,
					    s32.sh_addralign};
	}
}

/*
 * Walk one note area (ELF gABI "Note Section": namesz, descsz, type, name,
 * desc, each padded to 4 bytes, or 8 in an area aligned to 8).  Returns 1 and
 * *entry if the PVH note is there, 0 if not, -1 if the note is malformed.
 */
static int elf_find_pvh_note(const struct elf_file *elf, const struct elf_segment *area,
			     uint64_t *entry)
{
	uint64_t pad = area->align == 8 ? 8 : 4;
	uint64_t pos = area->offset, end, name_len, desc_len;
	uint32_t words[3], value32;

	if (!elf_in_file(elf, area->offset, area->filesz))
		return 0;
	end = area->offset + area->filesz;
	while (end - pos >= sizeof(words)) {
		memcpy(words, elf->data + pos, sizeof(words));
		name_len = ((uint64_t)words[0] + pad - 1) & ~(pad - 1);
		desc_len = ((uint64_t)words[1] + pad - 1) & ~(pad - 1);
		if (name_len + desc_len > end - pos - sizeof(words))
			return 0; /* truncated note: stop reading this area */
		pos += sizeof(words);
		if (words[2] == XEN_ELFNOTE_PHYS32_ENTRY && words[0] == 4 &&
		    memcmp(elf->data + pos, "Xen", 4) == 0) {
			/* Linux writes it with _ASM_PTR: 8 bytes on x86_64. */
			if (words[1] == 8) {
				memcpy(entry, elf->data + pos + name_len, 8);
			} else if (words[1] == 4) {
				memcpy(&value32, elf->data + pos + name_len, 4);
				*entry = value32;
			} else {
				return -1;
			}
			return 1;
		}
		pos += name_len + desc_len;
	}
	return 0;
}

static int pvh_find_entry(const struct elf_file *elf, uint64_t *entry, char *err, size_t errlen)
{
	struct elf_segment seg;
	int found = 0;

	for (unsigned i = 0; i < elf->phnum && !found; i++) {
		elf_phdr(elf, i, &seg);
		if (seg.type == PT_NOTE)
			found = elf_find_pvh_note(elf, &seg, entry);
	}
	for (unsigned i = 0; i < elf->shnum && !found; i++) {
		elf_shdr(elf, i, &seg);
		if (seg.type == SHT_NOTE)
			found = elf_find_pvh_note(elf, &seg, entry);
	}
	if (found < 0) {
		boot_error(err, errlen, "ELF kernel's PVH entry note has a descriptor that is neither 4 "
			   "nor 8 bytes; check the kernel build");
		return -ENOEXEC;
	}
	if (!found) {
		boot_error(err, errlen, "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
			   "build with CONFIG_PVH=y or boot a bzImage");
		return -ENOEXEC;
	}
	if (*entry >= LAYOUT_MMIO_HOLE_END) {
		boot_error(err, errlen, "ELF kernel's PVH entry 0x%llx is above 4 GiB, out of reach of "
			   "32-bit code; check the kernel build", (unsigned long long)*entry);
		return -ENOEXEC;
	}
	return 0;
}

/* Validate one PT_LOAD segment on its own. */
static int pvh_check_segment(const struct gmem *mem, const struct elf_file *elf, unsigned i,
			     const struct elf_segment *seg, char *err, size_t errlen)
{
	uint64_t end;

	if (seg->filesz > seg->memsz) {
		boot_error(err, errlen, "ELF segment %u has more file bytes (0x%llx) than memory bytes "
			   "(0x%llx); check the file", i, (unsigned long long)seg->filesz,
			   (unsigned long long)seg->memsz);
		return -ENOEXEC;
	}
	if (!elf_in_file(elf, seg->offset, seg->filesz)) {
		boot_error(err, errlen, "ELF segment %u (0x%llx bytes at file offset 0x%llx) reaches past "
			   "the end of the %llu-byte file; the kernel image is truncated", i,
			   (unsigned long long)seg->filesz, (unsigned long long)seg->offset,
			   (unsigned long long)elf->size);
		return -ENOEXEC;
	}
	if (seg->paddr > UINT64_MAX - seg->memsz) {
		boot_error(err, errlen, "ELF segment %u: address 0x%llx + size 0x%llx overflows; check "
			   "the file", i, (unsigned long long)seg->paddr, (unsigned long long)seg->memsz);
		return -ENOEXEC;
	}
	end = seg->paddr + seg->memsz;
	if (seg->paddr < LAYOUT_HIGH_MEMORY) {
		boot_error(err, errlen, "ELF segment %u at 0x%llx lies below 1 MiB, over isola's boot "
			   "structures (arch/x86/layout.h); link the kernel at 1 MiB or higher", i,
			   (unsigned long long)seg->paddr);
		return -ENOEXEC;
	}
	if (!gmem_contains(mem, seg->paddr, seg->memsz)) {
		if (end <= LAYOUT_MMIO_HOLE_START)
			boot_error(err, errlen, "ELF segment %u [0x%llx, 0x%llx) is outside guest RAM; "
				   "use --memory %llu or more", i, (unsigned long long)seg->paddr,
				   (unsigned long long)end, (unsigned long long)mib_round_up(end));
		else
			boot_error(err, errlen, "ELF segment %u [0x%llx, 0x%llx) is outside guest RAM or "
				   "crosses the MMIO hole at 3 GiB; link the kernel lower", i,
				   (unsigned long long)seg->paddr, (unsigned long long)end);
		return -ENOMEM;
	}
	return 0;
}

/* Check every PT_LOAD, that they do not overlap, and that the entry is in
 * one of them; *kernel_end = end of the highest. */
static int pvh_check_segments(const struct gmem *mem, const struct elf_file *elf, uint64_t entry,
			      uint64_t *kernel_end, char *err, size_t errlen)
{
	struct elf_segment seg, other;
	int entry_loaded = 0, ret;

	*kernel_end = 0;
	for (unsigned i = 0; i < elf->phnum; i++) {
		elf_phdr(elf, i, &seg);
		if (seg.type != PT_LOAD || (seg.memsz == 0 && seg.filesz == 0))
			continue;
		ret = pvh_check_segment(mem, elf, i, &seg, err, errlen);
		if (ret)
			return ret;
		for (unsigned j = 0; j < i; j++) {
			elf_phdr(elf, j, &other);
			if (other.type != PT_LOAD || other.memsz == 0)
				continue;
			if (seg.paddr < other.paddr + other.memsz && other.paddr < seg.paddr + seg.memsz) {
				boot_error(err, errlen, "ELF segments %u and %u overlap in memory (0x%llx and "
					   "0x%llx); check the kernel's linker script", j, i,
					   (unsigned long long)other.paddr, (unsigned long long)seg.paddr);
				return -ENOEXEC;
			}
		}
		if (entry >= seg.paddr && entry - seg.paddr < seg.memsz)
			entry_loaded = 1;
		if (seg.paddr + seg.memsz > *kernel_end)
			*kernel_end = seg.paddr + seg.memsz;
	}
	if (!entry_loaded) {
		boot_error(err, errlen, "ELF kernel's PVH entry 0x%llx is not inside any loaded segment; "
			   "check the kernel build", (unsigned long long)entry);
		return -ENOEXEC;
	}
	return 0;
}

static int pvh_load_segments(struct gmem *mem, const struct elf_file *elf, char *err, size_t errlen)
{
	struct elf_segment seg;
	uint8_t *host;

	for (unsigned i = 0; i < elf->phnum; i++) {
		elf_phdr(elf, i, &seg);
		if (seg.type != PT_LOAD || seg.memsz == 0)
			continue;
		/* Checked by pvh_check_segments(); the bss is zeroed because the
		 * memory may have held a previous boot. */
		host = gmem_ptr(mem, seg.paddr, seg.memsz);
		if (!host) {
			boot_error(err, errlen, "ELF segment %u is outside guest RAM; use --memory", i);
			return -ENOMEM;
		}
		if (seg.filesz)
			memcpy(host, elf->data + seg.offset, seg.filesz);
		/* Punched, not memset: a fresh guest's bss costs no RSS. */
		if (gmem_zero(mem, seg.paddr + seg.filesz, seg.memsz - seg.filesz) < 0) {
			boot_error(err, errlen, "ELF segment %u is outside guest RAM; use --memory", i);
			return -ENOMEM;
		}
	}
	return 0;
}

/* hvm_start_info, then the memmap, then the module list, in one page. */
static int pvh_write_start_info(struct gmem *mem, const struct e820_table *e820,
				const struct boot_images *images, uint64_t initrd_gpa, char *err,
				size_t errlen)
{
	uint8_t page[LAYOUT_PVH_START_INFO_SIZE];
	struct hvm_start_info info = {
		.magic = HVM_START_MAGIC_VALUE,
		.version = HVM_START_INFO_VERSION,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = images->rsdp_gpa,
		.memmap_paddr = LAYOUT_PVH_START_INFO + sizeof(info),
		.memmap_entries = e820->nr_entries,
	};
	struct hvm_memmap_table_entry map;
	struct hvm_modlist_entry module = {.paddr = initrd_gpa, .size = images->initrd_size};
	uint64_t pos = sizeof(info);

	_Static_assert(sizeof(struct hvm_start_info) + E820_MAX_ENTRIES * sizeof(map) +
			       sizeof(module) <= LAYOUT_PVH_START_INFO_SIZE,
		       "start info page too small");
	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < e820->nr_entries; i++, pos += sizeof(map)) {
		/* e820 and HVM memmap type numbers are the same (1 RAM, 2 reserved, 3 ACPI). */
		map = (struct hvm_memmap_table_entry){e820->entries[i].addr, e820->entries[i].size,
						      e820->entries[i].type, 0};
		memcpy(page + pos, &map, sizeof(map));
	}
	if (initrd_gpa) {
		info.nr_modules = 1;
		info.modlist_paddr = LAYOUT_PVH_START_INFO + pos;
		memcpy(page + pos, &module, sizeof(module));
	}
	memcpy(page, &info, sizeof(info));
	if (gmem_write(mem, LAYOUT_PVH_START_INFO, page, sizeof(page)) < 0) {
		boot_error(err, errlen, "guest memory has no room for hvm_start_info at 0x%llx",
			   (unsigned long long)LAYOUT_PVH_START_INFO);
		return -ENOMEM;
	}
	return 0;
}

int pvh_load(struct gmem *mem, const struct e820_table *e820, const struct boot_images *images,
	     struct boot_entry *entry, char *err, size_t errlen)
{
	struct elf_file elf = {.data = images->kernel, .size = images->kernel_size};
	uint64_t pvh_entry = 0, kernel_end = 0, initrd_gpa = 0;
	int ret;

	if (!elf.data)
		elf.size = 0;
	ret = elf_parse_header(&elf, err, errlen);
	if (!ret)
		ret = pvh_find_entry(&elf, &pvh_entry, err, errlen);
	if (!ret)
		ret = pvh_check_segments(mem, &elf, pvh_entry, &kernel_end, err, errlen);
	if (!ret)
		ret = boot_write_cmdline(mem, images->cmdline, LAYOUT_CMDLINE_MAX - 1, err, errlen);
	/* hvm_start_info's module addresses are 64-bit, but keep the initrd
	 * below 4 GiB where 32-bit entry code can reach it. */
	if (!ret)
		ret = boot_place_initrd(mem, images, kernel_end, UINT32_MAX, &initrd_gpa, err, errlen);
	if (!ret)
		ret = pvh_load_segments(mem, &elf, err, errlen);
	if (!ret)
		ret = pvh_write_start_info(mem, e820, images, initrd_gpa, err, errlen);
	if (ret)
		return ret;
	entry->mode = BOOT_ENTRY_PVH;
	entry->rip = pvh_entry;
	entry->boot_info = LAYOUT_PVH_START_INFO;
	return 0;
}
