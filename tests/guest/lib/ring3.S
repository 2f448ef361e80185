/* SPDX-License-Identifier: MIT */
/*
 * Enter ring 3 with IRETQ (Intel SDM Vol 3 §6.14.3) and come back by an
 * exception: ring-3 code cannot reach ring 0 with SYSCALL/INT 0x80 under
 * PVM, so the user-mode stub ends in ud2 and the #UD handler calls
 * ring3_resume(), which unwinds to ring3_enter()'s caller.
 */
#define SEL_KERNEL_DS 0x10
#define SEL_USER_DS 0x2b
#define SEL_USER_CS 0x33
#define RFLAGS_RESERVED 0x2

	.section .bss
	.p2align 3
ring3_saved_rsp:
	.skip 8

	.section .text
/* uint64_t ring3_enter(uint64_t (*fn)(uint64_t), uint64_t arg, uint64_t user_rsp) */
	.globl ring3_enter
ring3_enter:
	pushfq
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, ring3_saved_rsp
	pushq $SEL_USER_DS
	pushq %rdx
	pushq $RFLAGS_RESERVED
	pushq $SEL_USER_CS
	pushq $ring3_user_entry
	mov %rdi, %rax
	mov %rsi, %rdi
	iretq

/* Runs at CPL 3: rax = fn, rdi = arg; the result stays in rax for #UD. */
ring3_user_entry:
	call *%rax
	.globl ring3_user_ud2
ring3_user_ud2:
	ud2

/* void ring3_resume(uint64_t result): back to ring3_enter's caller. */
	.globl ring3_resume
ring3_resume:
	mov %rdi, %rax
	mov $SEL_KERNEL_DS, %ecx
	mov %ecx, %ds
	mov %ecx, %es
	mov %ecx, %ss
	mov ring3_saved_rsp, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	popfq
	ret
