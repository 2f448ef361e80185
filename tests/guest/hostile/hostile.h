/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the hostile guests (tests/guest/hostile/README.md).
 * Header-only on purpose: guest.mk builds every .c in this folder into its own
 * guest, so a helper .c here would become a guest.  Everything is static.
 */
#ifndef GUEST_HOSTILE_H
#define GUEST_HOSTILE_H

#include "kit.h"

#define VECTOR_NMI 2
#define VECTOR_UD 6
#define VECTOR_GP 13

/* ---- faults on privileged instructions: count and skip them ---------- */

static volatile unsigned hostile_faults __attribute__((unused));
static volatile uint64_t hostile_last_fault_vector __attribute__((unused));

/*
 * #GP/#UD handler for RDMSR (0f 32), WRMSR (0f 30) and CPUID (0f a2): count
 * the fault and resume after the 2-byte instruction.  Anything else is a
 * real bug in the guest: abort with a FAIL line.
 */
static inline void hostile_skip_fault(struct idt_frame *frame)
{
	const uint8_t *insn = (const uint8_t *)frame->rip;

	if (insn[0] == 0x0f && (insn[1] == 0x32 || insn[1] == 0x30 || insn[1] == 0xa2)) {
		hostile_faults++;
		hostile_last_fault_vector = frame->vector;
		frame->rip += 2;
		return;
	}
	test_abort("hostile", "unexpected exception %lu at rip %lx (error %lx)", frame->vector,
		   frame->rip, frame->error_code);
}

static inline void hostile_catch_msr_faults(void)
{
	idt_set_handler(VECTOR_GP, hostile_skip_fault);
	idt_set_handler(VECTOR_UD, hostile_skip_fault);
}

/* RDMSR that survives a #GP: 0 and *value on success, -1 if it faulted. */
static inline int hostile_rdmsr(uint32_t msr, uint64_t *value)
{
	unsigned before = hostile_faults;
	uint32_t lo = 0, hi = 0;

	__asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	*value = (uint64_t)hi << 32 | lo;
	return hostile_faults == before ? 0 : -1;
}

static inline int hostile_wrmsr(uint32_t msr, uint64_t value)
{
	unsigned before = hostile_faults;

	__asm__ volatile("wrmsr"
			 :
			 : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
	return hostile_faults == before ? 0 : -1;
}

static inline void hostile_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

/* ---- a small deterministic PRNG (xorshift64*) ------------------------ */

static uint64_t hostile_rng_state __attribute__((unused)) = 0x9e3779b97f4a7c15ull;

static inline uint64_t hostile_rand(void)
{
	uint64_t x = hostile_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	hostile_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ---- MMIO of any width ---------------------------------------------- */

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	*(volatile uint8_t *)phys_ptr(addr) = v;
}

static inline void mmio_write16(uint64_t addr, uint16_t v)
{
	*(volatile uint16_t *)phys_ptr(addr) = v;
}

static inline void mmio_write64(uint64_t addr, uint64_t v)
{
	*(volatile uint64_t *)phys_ptr(addr) = v;
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	return *(volatile uint8_t *)phys_ptr(addr);
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	return *(volatile uint16_t *)phys_ptr(addr);
}

static inline uint64_t mmio_read64(uint64_t addr)
{
	return *(volatile uint64_t *)phys_ptr(addr);
}

/* ---- the PM timer as a stopwatch (wraps every ~4.6 s: sample often) -- */

struct hostile_clock {
	uint32_t last;
	uint64_t us;
};

static inline void hostile_clock_start(struct hostile_clock *c)
{
	c->last = pmtimer_read();
	c->us = 0;
}

static inline uint64_t hostile_clock_us(struct hostile_clock *c)
{
	uint32_t now = pmtimer_read();

	c->us += ((now - c->last) & 0xffffffu) * 1000000ull / 3579545ull;
	c->last = now;
	return c->us;
}

#endif
