/* SPDX-License-Identifier: MIT */
/*
 * Common entry path of every test guest: our own GDT, identity page tables
 * for the first 4 GiB (2 MiB pages, user-accessible so ring-3 code can reach
 * its code, data and MMIO), long mode, the boot stack, then kit_boot() in C.
 *
 *   kit_start32: flat 32-bit protected mode, paging off (PVH, bzImage
 *                code32_start); EDI = enum boot_protocol, EBP = boot info GPA.
 *   kit_start64: long mode, our GDT and page tables live; EDI = protocol,
 *                RSI = boot info GPA.
 */
#define PTE_PRESENT 0x01
#define PTE_WRITE 0x02
#define PTE_USER 0x04
#define PTE_LARGE 0x80
#define PTE_TABLE (PTE_PRESENT | PTE_WRITE | PTE_USER)
#define PTE_2M (PTE_TABLE | PTE_LARGE)
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR4_PAE 0x20
#define CR0_PE_PG 0x80000001

	.section .bss
	.p2align 12
	.globl kit_pml4
kit_pml4:
	.skip 4096
kit_pdpt:
	.skip 4096
kit_pd:
	.skip 4 * 4096
	.p2align 4
kit_boot_stack:
	.skip 16384
kit_boot_stack_top:

	.section .data
	.p2align 4
/* Linux's selectors (design.md); accessed bits preset so loads never write. */
	.globl kit_gdt
kit_gdt:
	.quad 0                   /* 0x00 null */
	.quad 0x00af9b000000ffff  /* 0x08 kernel code, 64-bit */
	.quad 0x00cf93000000ffff  /* 0x10 kernel data */
	.quad 0x00cf9b000000ffff  /* 0x18 kernel code, 32-bit (trampolines) */
	.quad 0x00cffb000000ffff  /* 0x20 user code, 32-bit (0x23) */
	.quad 0x00cff3000000ffff  /* 0x28 user data (0x2b) */
	.quad 0x00affb000000ffff  /* 0x30 user code, 64-bit (0x33) */
	.quad 0, 0                /* 0x38 TSS, filled by cpu.c */
kit_gdt_end:
	.p2align 3
	.globl kit_gdt_desc
kit_gdt_desc:
	.word kit_gdt_end - kit_gdt - 1
	.quad kit_gdt

	.section .text
	.code32
	.globl kit_start32
kit_start32:
	cli
	cld
	lgdt kit_gdt_desc  /* 32-bit LGDT reads limit + low 32 bits of base */
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	ljmp $0x18, $1f
1:	mov %edi, %esi
	/* .bss is already zero: the ELF loader clears p_memsz - p_filesz
	 * (PVH), and the bzImage head clears it itself.  Clearing it again
	 * here is emulated instruction by instruction on a software KVM. */
	/* PML4[0] -> PDPT, PDPT[0..3] -> PD[0..3], PD[i] = i * 2 MiB. */
	movl $kit_pdpt + PTE_TABLE, kit_pml4
	mov $kit_pd + PTE_TABLE, %eax
	mov $kit_pdpt, %edi
	mov $4, %ecx
2:	mov %eax, (%edi)
	add $0x1000, %eax
	add $8, %edi
	loop 2b
	mov $PTE_2M, %eax
	mov $kit_pd, %edi
	mov $2048, %ecx
3:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 3b
	/* Enter IA-32e mode: Intel SDM Vol 3 §10.8.5 (PAE, CR3, EFER.LME, PG). */
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $kit_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $CR0_PE_PG, %eax
	mov %eax, %cr0
	ljmp $0x08, $kit_long64

	.code64
kit_long64:
	mov %esi, %edi
	mov %ebp, %esi
	jmp kit_start64

/*
 * bzImage 64-bit entry continues here: long mode with the loader's identity
 * map, RSI = zero page.  Switch to our GDT and page tables.
 */
	.globl kit_start64_foreign
kit_start64_foreign:
	cli
	cld
	mov %rsi, %rbp
	mov %edi, %r12d
	mov $kit_boot_stack_top, %rsp /* boot.rst promises no usable stack */
	lgdt kit_gdt_desc
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	pushq $0x08
	pushq $1f
	lretq
1:	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $3, %ecx
	xor %eax, %eax
	rep stosq
	movq $kit_pdpt + PTE_TABLE, kit_pml4
	mov $kit_pd + PTE_TABLE, %eax
	mov $kit_pdpt, %edi
	mov $4, %ecx
2:	mov %rax, (%rdi)
	add $0x1000, %rax
	add $8, %rdi
	loop 2b
	mov $PTE_2M, %eax
	mov $kit_pd, %edi
	mov $2048, %ecx
3:	mov %rax, (%rdi)
	add $0x200000, %rax
	add $8, %rdi
	loop 3b
	mov $kit_pml4, %eax
	mov %rax, %cr3
	mov %r12d, %edi
	mov %rbp, %rsi

	.globl kit_start64
kit_start64:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $kit_boot_stack_top, %rsp
	xor %ebp, %ebp
	call kit_boot
4:	cli
	hlt
	jmp 4b
