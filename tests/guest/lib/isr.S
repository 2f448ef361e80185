/* SPDX-License-Identifier: MIT */
/*
 * 256 interrupt stubs, 16 bytes apart, all funnelling into idt_dispatch()
 * with a struct idt_frame.  Vectors that push an error code: Intel SDM Vol 3
 * §7.3 (Table 7-1): 8, 10-14, 17, 21, 29, 30.
 */
	.section .text
	.p2align 4
	.globl isr_stubs
isr_stubs:
	vector = 0
	.rept 256
	.p2align 4
	.if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
	pushq $vector
	.else
	pushq $0
	pushq $vector
	.endif
	jmp isr_common
	vector = vector + 1
	.endr

isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	cld
	call idt_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq
