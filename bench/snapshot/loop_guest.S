/* SPDX-License-Identifier: MIT */
/*
 * The restore benchmark's guest: from its first instruction on it writes
 * '.' to COM1 (port 0x3f8) over and over, one VM exit per byte, with
 * nothing in between.  It is snapshotted mid-loop; after a restore its
 * first instruction is at most two instructions from the next OUT, so the
 * first byte on the restored VMM's console (a pipe) marks the guest
 * running again, one exit later (bench/snapshot/restore_measure.c).
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18 /* Xen include/public/elfnote.h */

	.section .note.Xen, "a", @note
	.p2align 2
	.long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long start

	.text
	.code32
	.globl start
start:
	mov $0x3f8, %dx
	mov $'.', %al
1:	outb %al, %dx
	jmp 1b
