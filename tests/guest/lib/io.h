/* SPDX-License-Identifier: MIT */
/* Port I/O, MMIO, MSRs and a few privileged instructions for ring 0. */
#ifndef GUEST_IO_H
#define GUEST_IO_H

#include <stdint.h>

static inline void io_out8(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void io_out16(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void io_out32(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t io_in8(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t io_in16(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t io_in32(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* A pointer to physical address pa (identity-mapped), opaque to the compiler
 * so that low addresses such as the BDA at 0x40e are not "null" to it. */
static inline void *phys_ptr(uint64_t pa)
{
	void *p;

	__asm__("" : "=r"(p) : "0"(pa));
	return p;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint64_t cpu_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void cpu_sti(void)
{
	__asm__ volatile("sti" ::: "memory");
}

static inline void cpu_cli(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* STI's one-instruction interrupt shadow makes "sti; hlt" race-free. */
static inline void cpu_sti_hlt(void)
{
	__asm__ volatile("sti; hlt" ::: "memory");
}

static inline void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

#endif
