/* SPDX-License-Identifier: MIT */
/*
 * exit_guest.S with a mark: its first instruction writes one byte ('!') to
 * COM1 (port 0x3f8), then it writes 0 to the debug-exit port (status 1).
 * bench/boot/measure.c -p timestamps that byte on the VMM's console (a pipe):
 * exec -> byte is the time to the guest's first instruction, byte -> exit
 * the time the VMM takes to go once the guest has stopped.
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
	mov $'!', %al
	outb %al, %dx
	xor %eax, %eax
	mov $0xf4, %dx
	outl %eax, %dx
1:	hlt
	jmp 1b
