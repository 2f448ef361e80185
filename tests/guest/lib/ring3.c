/* SPDX-License-Identifier: MIT */
/* run_in_ring3(): see kit.h and ring3.S. */
#include "kit.h"

#define VECTOR_UD 6

uint64_t ring3_enter(uint64_t (*fn)(uint64_t), uint64_t arg, uint64_t user_rsp);
void ring3_resume(uint64_t result) __attribute__((noreturn));
extern const uint8_t ring3_user_ud2[];

static uint8_t ring3_stack[16384] __attribute__((aligned(16)));
static struct idt_frame ring3_fault_frame;
static int ring3_faulted;

/* Called by idt_dispatch() for every exception taken at CPL 3. */
void ring3_trap(struct idt_frame *frame);
void ring3_trap(struct idt_frame *frame)
{
	if (frame->vector == VECTOR_UD && frame->rip == (uint64_t)ring3_user_ud2)
		ring3_resume(frame->rax);
	ring3_fault_frame = *frame;
	ring3_faulted = 1;
	ring3_resume(RING3_FAULTED);
}

uint64_t run_in_ring3(uint64_t (*fn)(uint64_t), uint64_t arg)
{
	ring3_faulted = 0;
	return ring3_enter(fn, arg, (uint64_t)(ring3_stack + sizeof(ring3_stack)));
}

const struct idt_frame *ring3_fault(void)
{
	return ring3_faulted ? &ring3_fault_frame : NULL;
}
