/* SPDX-License-Identifier: MIT */
/*
 * AP start-up trampoline, copied to SMP_TRAMPOLINE (0x8000) and entered in
 * real mode at 0800:0000 by a STARTUP IPI (Intel SDM Vol 3 §9.4.4): real
 * mode -> protected mode (kit_gdt, CS32 0x18) -> long mode (kit_pml4) ->
 * smp_tramp_entry on smp_tramp_stack.  smp.c fills the data words.
 */
#define TRAMP_BASE 0x8000
#define T(x) (TRAMP_BASE + (x) - smp_tramp_start)

	.section .text
	.code16
	.globl smp_tramp_start
smp_tramp_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl smp_tramp_gdt_desc - smp_tramp_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $T(tramp32)

	.code32
tramp32:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $0x20, %eax                 /* PAE */
	mov %eax, %cr4
	mov T(smp_tramp_cr3), %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx          /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax           /* PG | PE */
	mov %eax, %cr0
	ljmp $0x08, $T(tramp64)

	.code64
tramp64:
	mov T(smp_tramp_stack), %rsp
	mov T(smp_tramp_entry), %rax
	call *%rax
1:	cli
	hlt
	jmp 1b

	.p2align 3
	.globl smp_tramp_gdt_desc
smp_tramp_gdt_desc:
	.word 0
	.long 0
	.p2align 3
	.globl smp_tramp_cr3
smp_tramp_cr3:
	.quad 0
	.globl smp_tramp_stack
smp_tramp_stack:
	.quad 0
	.globl smp_tramp_entry
smp_tramp_entry:
	.quad 0
	.globl smp_tramp_end
smp_tramp_end:
