/* SPDX-License-Identifier: MIT */
/*
 * The smallest PVH guest: at its 32-bit entry it writes 0 to the debug-exit
 * port (status 1 under isola and under QEMU's isa-debug-exit).  Booting it
 * measures only the VMM: create, load, first entry, exit, tear down.
 * hello.elf adds the guest kit's own ring-0 work (zeroing .bss, page
 * tables, ACPI and PCI scans), which PVM emulates slowly for both VMMs.
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
	xor %eax, %eax
	mov $0xf4, %dx
	outl %eax, %dx
1:	hlt
	jmp 1b
