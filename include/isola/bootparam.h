/* SPDX-License-Identifier: MIT */
/*
 * The Linux x86 boot protocol's data structures, per Linux
 * Documentation/arch/x86/boot.rst ("THE REAL-MODE KERNEL HEADER", "zero page")
 * and Documentation/arch/x86/zero-page.rst.  Freestanding: shared by the
 * bzImage loader and the `bootparams` test guest, which reads them as Linux
 * would.
 */
#ifndef ISOLA_BOOTPARAM_H
#define ISOLA_BOOTPARAM_H

#include <stdint.h>

#define BOOT_HDR_MAGIC 0x53726448u /* "HdrS" at 0x202 */
#define BOOT_FLAG_MAGIC 0xaa55
#define BOOT_LOADFLAG_LOADED_HIGH (1u << 0)
#define BOOT_LOADFLAG_KEEP_SEGMENTS (1u << 6)
#define BOOT_LOADFLAG_CAN_USE_HEAP (1u << 7)
#define BOOT_XLF_KERNEL_64 (1u << 0)
#define BOOT_XLF_CAN_BE_LOADED_ABOVE_4G (1u << 1)
#define BOOT_TYPE_OF_LOADER_UNDEFINED 0xff /* boot.rst: 0xFF = undefined; ext type in ext_loader_type */
#define BOOT_E820_MAX 128

struct boot_setup_header {
	uint8_t setup_sects;          /* 0x1f1 */
	uint16_t root_flags;          /* 0x1f2 */
	uint32_t syssize;             /* 0x1f4 */
	uint16_t ram_size;            /* 0x1f8 */
	uint16_t vid_mode;            /* 0x1fa */
	uint16_t root_dev;            /* 0x1fc */
	uint16_t boot_flag;           /* 0x1fe */
	uint16_t jump;                /* 0x200 */
	uint32_t header;              /* 0x202 */
	uint16_t version;             /* 0x206 */
	uint32_t realmode_swtch;      /* 0x208 */
	uint16_t start_sys_seg;       /* 0x20c */
	uint16_t kernel_version;      /* 0x20e */
	uint8_t type_of_loader;       /* 0x210 */
	uint8_t loadflags;            /* 0x211 */
	uint16_t setup_move_size;     /* 0x212 */
	uint32_t code32_start;        /* 0x214 */
	uint32_t ramdisk_image;       /* 0x218 */
	uint32_t ramdisk_size;        /* 0x21c */
	uint32_t bootsect_kludge;     /* 0x220 */
	uint16_t heap_end_ptr;        /* 0x224 */
	uint8_t ext_loader_ver;       /* 0x226 */
	uint8_t ext_loader_type;      /* 0x227 */
	uint32_t cmd_line_ptr;        /* 0x228 */
	uint32_t initrd_addr_max;     /* 0x22c */
	uint32_t kernel_alignment;    /* 0x230 */
	uint8_t relocatable_kernel;   /* 0x234 */
	uint8_t min_alignment;        /* 0x235 */
	uint16_t xloadflags;          /* 0x236 */
	uint32_t cmdline_size;        /* 0x238 */
	uint32_t hardware_subarch;    /* 0x23c */
	uint64_t hardware_subarch_data; /* 0x240 */
	uint32_t payload_offset;      /* 0x248 */
	uint32_t payload_length;      /* 0x24c */
	uint64_t setup_data;          /* 0x250 */
	uint64_t pref_address;        /* 0x258 */
	uint32_t init_size;           /* 0x260 */
	uint32_t handover_offset;     /* 0x264 */
	uint32_t kernel_info_offset;  /* 0x268 */
} __attribute__((packed));

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* zero-page.rst */
struct boot_params {
	uint8_t screen_info[0x40];      /* 0x000 */
	uint8_t apm_bios_info[0x14];    /* 0x040 */
	uint8_t pad2[4];                /* 0x054 */
	uint64_t tboot_addr;            /* 0x058 */
	uint8_t ist_info[0x10];         /* 0x060 */
	uint64_t acpi_rsdp_addr;        /* 0x070 */
	uint8_t pad3[8];                /* 0x078 */
	uint8_t hd0_info[16];           /* 0x080 */
	uint8_t hd1_info[16];           /* 0x090 */
	uint8_t sys_desc_table[0x10];   /* 0x0a0 */
	uint8_t olpc_ofw_header[0x10];  /* 0x0b0 */
	uint32_t ext_ramdisk_image;     /* 0x0c0 */
	uint32_t ext_ramdisk_size;      /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;      /* 0x0c8 */
	uint8_t pad4[112];              /* 0x0cc */
	uint32_t cc_blob_address;       /* 0x13c */
	uint8_t edid_info[0x80];        /* 0x140 */
	uint8_t efi_info[0x20];         /* 0x1c0 */
	uint32_t alt_mem_k;             /* 0x1e0 */
	uint32_t scratch;               /* 0x1e4 */
	uint8_t e820_entries;           /* 0x1e8 */
	uint8_t eddbuf_entries;         /* 0x1e9 */
	uint8_t edd_mbr_sig_buf_entries; /* 0x1ea */
	uint8_t kbd_status;             /* 0x1eb */
	uint8_t secure_boot;            /* 0x1ec */
	uint8_t pad5[2];                /* 0x1ed */
	uint8_t sentinel;               /* 0x1ef */
	uint8_t pad6[1];                /* 0x1f0 */
	struct boot_setup_header hdr;   /* 0x1f1 */
	uint8_t pad7[0x290 - 0x1f1 - sizeof(struct boot_setup_header)];
	uint32_t edd_mbr_sig_buffer[16]; /* 0x290 */
	struct boot_e820_entry e820_table[BOOT_E820_MAX]; /* 0x2d0 */
	uint8_t pad8[48];               /* 0xcd0 */
	uint8_t eddbuf[0x1ec];          /* 0xd00 */
	uint8_t pad9[276];              /* 0xeec */
} __attribute__((packed));

_Static_assert(sizeof(struct boot_setup_header) == 0x26c - 0x1f1, "setup_header size");
_Static_assert(__builtin_offsetof(struct boot_params, hdr) == 0x1f1, "hdr offset");
_Static_assert(__builtin_offsetof(struct boot_params, e820_table) == 0x2d0, "e820 offset");
_Static_assert(__builtin_offsetof(struct boot_params, acpi_rsdp_addr) == 0x70, "rsdp offset");
_Static_assert(sizeof(struct boot_params) == 4096, "zero page size");

#endif
