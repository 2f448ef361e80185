/* SPDX-License-Identifier: MIT */
/*
 * ring3: run code at CPL 3 (natively under PVM), check what it computed and
 * wrote, check it ran with the user selectors, and that a privileged
 * instruction in ring 3 faults back to ring 0 with #GP.
 */
#include "kit.h"

#define VECTOR_GP 13
#define FIB_N 50
#define FIB_50 12586269025ul

static volatile uint64_t ring3_fib_table[FIB_N + 1];

static uint64_t ring3_fib(uint64_t n)
{
	ring3_fib_table[0] = 0;
	ring3_fib_table[1] = 1;
	for (uint64_t i = 2; i <= n; i++)
		ring3_fib_table[i] = ring3_fib_table[i - 1] + ring3_fib_table[i - 2];
	return ring3_fib_table[n];
}

static uint64_t ring3_selectors(uint64_t arg)
{
	uint16_t cs, ss;

	(void)arg;
	__asm__ volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
	return (uint64_t)cs << 16 | ss;
}

static uint64_t ring3_privileged(uint64_t arg)
{
	(void)arg;
	__asm__ volatile("cli");
	return 0;
}

int guest_main(const struct boot_info *info)
{
	uint64_t r, sel;
	const struct idt_frame *fault;

	(void)info;
	console_printf("isola ring3 guest\n");
	r = run_in_ring3(ring3_fib, FIB_N);
	test_check(r == FIB_50 && ring3_fib_table[FIB_N] == FIB_50, "ring 3 computes and writes memory",
		   "fib(50) returned %lu, table %lu, want %lu", r, ring3_fib_table[FIB_N], FIB_50);
	sel = run_in_ring3(ring3_selectors, 0);
	test_check(sel >> 16 == SEL_USER_CS && (sel & 0xffff) == SEL_USER_DS, "ring 3 selectors",
		   "cs %lx ss %lx", sel >> 16, sel & 0xffff);
	r = run_in_ring3(ring3_privileged, 0);
	fault = ring3_fault();
	test_check(r == RING3_FAULTED && fault && fault->vector == VECTOR_GP &&
			   (fault->cs & 3) == 3,
		   "CLI in ring 3 raises #GP", "result %lx vector %ld", r, fault ? (long)fault->vector : -1L);
	r = run_in_ring3(ring3_fib, 10);
	test_check(r == 55 && !ring3_fault(), "ring 3 usable again after a fault", "fib(10) = %lu", r);
	return 0;
}
