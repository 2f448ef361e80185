/* SPDX-License-Identifier: MIT */
/*
 * PVH entry (Xen include/public/elfnote.h, arch-x86/hvm/start_info.h): the
 * loader finds XEN_ELFNOTE_PHYS32_ENTRY and enters pvh_start32 in flat 32-bit
 * protected mode, paging off, EBX = GPA of struct hvm_start_info.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define BOOT_PROTOCOL_PVH 1

	.section .note.Xen, "a", @note
	.p2align 2
	.long 4                          /* namesz: "Xen\0" */
	.long 4                          /* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	mov %ebx, %ebp
	mov $BOOT_PROTOCOL_PVH, %edi
	jmp kit_start32
