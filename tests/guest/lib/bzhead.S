/* SPDX-License-Identifier: MIT */
/*
 * A minimal bzImage (Linux Documentation/arch/x86/boot.rst): the real-mode
 * part is a boot sector plus 4 setup sectors holding the setup header; the
 * protected-mode part follows in the file and is loaded at 0x100000, with the
 * 32-bit entry (code32_start) at +0 and the 64-bit entry at +0x200.
 */
#define BOOT_PROTOCOL_LINUX64 2
#define BOOT_PROTOCOL_LINUX32 3
#define SETUP_SECTS 4
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01

	.section .bz.setup, "ax"
	.code16
	.globl bz_setup
bz_setup:
	/* A "boot sector" that is never booted: report FAIL and stop. */
	jmp bz_realmode

	.org 0x1f1
	.byte SETUP_SECTS          /* 0x1f1 setup_sects */
	.word 0                    /* 0x1f2 root_flags */
	.long bz_syssize           /* 0x1f4 syssize: 16-byte paragraphs */
	.word 0                    /* 0x1f8 ram_size */
	.word 0xffff               /* 0x1fa vid_mode: normal */
	.word 0                    /* 0x1fc root_dev */
	.word 0xaa55               /* 0x1fe boot_flag */
	.byte 0xeb                 /* 0x200 jump: short jmp to the real-mode entry */
	.byte bz_realmode - 1f
1:	.ascii "HdrS"              /* 0x202 header */
	.word 0x020f               /* 0x206 version 2.15 */
	.long 0                    /* 0x208 realmode_swtch */
	.word 0x1000               /* 0x20c start_sys_seg */
	.word bz_version - 0x200   /* 0x20e kernel_version */
	.byte 0                    /* 0x210 type_of_loader: the loader fills it */
	.byte LOADED_HIGH          /* 0x211 loadflags */
	.word 0                    /* 0x212 setup_move_size */
	.long 0x100000             /* 0x214 code32_start */
	.long 0                    /* 0x218 ramdisk_image */
	.long 0                    /* 0x21c ramdisk_size */
	.long 0                    /* 0x220 bootsect_kludge */
	.word 0                    /* 0x224 heap_end_ptr */
	.byte 0                    /* 0x226 ext_loader_ver */
	.byte 0                    /* 0x227 ext_loader_type */
	.long 0                    /* 0x228 cmd_line_ptr */
	.long 0x7fffffff           /* 0x22c initrd_addr_max */
	.long 0x1000               /* 0x230 kernel_alignment */
	.byte 0                    /* 0x234 relocatable_kernel: load at 0x100000 */
	.byte 12                   /* 0x235 min_alignment (log2) */
	.word XLF_KERNEL_64        /* 0x236 xloadflags */
	.long 4095                 /* 0x238 cmdline_size */
	.long 0                    /* 0x23c hardware_subarch */
	.quad 0                    /* 0x240 hardware_subarch_data */
	.long 0                    /* 0x248 payload_offset */
	.long 0                    /* 0x24c payload_length */
	.quad 0                    /* 0x250 setup_data */
	.quad 0x100000             /* 0x258 pref_address */
	.long bz_init_size         /* 0x260 init_size */
	.long 0                    /* 0x264 handover_offset */
	.long 0                    /* 0x268 kernel_info_offset */
/*
 * Real-mode entry (boot.rst "RUNNING THE KERNEL"): a BIOS loader such as
 * QEMU's would come here; this guest only supports the 32/64-bit entries,
 * so it writes FAIL to the debug-exit port and halts.
 */
bz_realmode:
	cli
	mov $1, %eax
	outl %eax, $0xf4
2:	hlt
	jmp 2b
bz_version:
	.asciz "isola bootparams test guest"

	.section .bz.head, "ax"
	.code32
	.globl bz_startup_32
bz_startup_32:             /* flat 32-bit, paging off, ESI = zero page */
	mov %esi, %ebp
	/* A bzImage has no bss for the loader to clear: do it here. */
	cld
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl
	mov $BOOT_PROTOCOL_LINUX32, %edi
	jmp kit_start32

	.org 0x200
	.code64
	.globl bz_startup_64
bz_startup_64:             /* long mode, identity map, RSI = zero page */
	mov $BOOT_PROTOCOL_LINUX64, %edi
	jmp kit_start64_foreign
