// SPDX-License-Identifier: MIT
/*
 * Unit tests for arch/x86/ioapic.c, the user-space IOAPIC of KVM's split
 * irqchip.  Register model: Intel 82093AA datasheet §3; MSI format: Intel SDM
 * Vol. 3 §11.11.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arch/x86/ioapic.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOEOI 0x40

#define RTE_DELIVERY_STATUS (1ull << 12)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_LOGICAL (1ull << 11)

#define MAX_MSIS 16

struct msi {
	uint64_t address;
	uint32_t data;
};

struct fixture {
	struct ioapic ioapic;
	struct msi msis[MAX_MSIS];
	unsigned nr_msis;
	unsigned routes;
	unsigned route_pin;
	uint64_t route_address;
	uint32_t route_data;
	bool route_masked;
};

static int fake_deliver_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct fixture *f = opaque;

	assert_true(f->nr_msis < MAX_MSIS);
	f->msis[f->nr_msis++] = (struct msi){address, data};
	return 0;
}

static void fake_update_route(void *opaque, unsigned pin, uint64_t address, uint32_t data,
			      bool masked)
{
	struct fixture *f = opaque;

	f->routes++;
	f->route_pin = pin;
	f->route_address = address;
	f->route_data = data;
	f->route_masked = masked;
}

static const struct ioapic_ops fake_ops = {
	.deliver_msi = fake_deliver_msi,
	.update_route = fake_update_route,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	ioapic_init(&f->ioapic, 0xf, &fake_ops, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ioapic_destroy(&f->ioapic);
	free(f);
	return 0;
}

static void mmio_write(struct fixture *f, uint64_t offset, uint32_t val)
{
	uint8_t data[4];

	memcpy(data, &val, 4);
	ioapic_access(&f->ioapic, offset, data, 4, true);
}

static uint32_t mmio_read(struct fixture *f, uint64_t offset)
{
	uint8_t data[4] = {0x5a, 0x5a, 0x5a, 0x5a};
	uint32_t val;

	ioapic_access(&f->ioapic, offset, data, 4, false);
	memcpy(&val, data, 4);
	return val;
}

static uint32_t reg_read(struct fixture *f, uint32_t reg)
{
	mmio_write(f, IOREGSEL, reg);
	return mmio_read(f, IOWIN);
}

static void reg_write(struct fixture *f, uint32_t reg, uint32_t val)
{
	mmio_write(f, IOREGSEL, reg);
	mmio_write(f, IOWIN, val);
}

static uint64_t rte_read(struct fixture *f, unsigned pin)
{
	return reg_read(f, 0x10 + 2 * pin) | (uint64_t)reg_read(f, 0x11 + 2 * pin) << 32;
}

/* High word first, as Linux does, so the entry is never half-written and
 * unmasked. */
static void rte_write(struct fixture *f, unsigned pin, uint64_t entry)
{
	reg_write(f, 0x11 + 2 * pin, (uint32_t)(entry >> 32));
	reg_write(f, 0x10 + 2 * pin, (uint32_t)entry);
}

static uint64_t rte(uint8_t vector, uint8_t dest, uint64_t flags)
{
	return vector | flags | (uint64_t)dest << 56;
}

static void test_id_version_arbitration(void **state)
{
	struct fixture *f = *state;

	/* 82093AA §3.2.2: max redirection entry 23 in bits 23:16, version 0x20. */
	assert_int_equal(reg_read(f, 0x01), 0x00170020);
	assert_int_equal(reg_read(f, 0x00), 0x0f000000);
	assert_int_equal(reg_read(f, 0x02), 0x0f000000);
	reg_write(f, 0x00, 0xf3000000); /* only ID bits 27:24 are writable */
	assert_int_equal(reg_read(f, 0x00), 0x03000000);
	reg_write(f, 0x01, 0xffffffff); /* version is read-only */
	assert_int_equal(reg_read(f, 0x01), 0x00170020);
	reg_write(f, 0x02, 0x0a000000); /* arbitration is read-only */
	assert_int_equal(reg_read(f, 0x02), 0x03000000);
	assert_int_equal(f->routes, 0);
}

static void test_reset_masked(void **state)
{
	struct fixture *f = *state;

	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
		assert_int_equal(rte_read(f, pin), RTE_MASKED);
	/* A masked pin delivers nothing, edge or level. */
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++) {
		ioapic_set_irq(&f->ioapic, pin, true);
		ioapic_set_irq(&f->ioapic, pin, false);
	}
	assert_int_equal(f->nr_msis, 0);
	assert_int_equal(f->ioapic.delivered, 0);
}

static void test_redirection_read_write(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 3, 0xab000000000080e1ull); /* dest 0xab, level, vector 0xe1 */
	assert_int_equal(rte_read(f, 3), 0xab000000000080e1ull);
	assert_int_equal(rte_read(f, 2), RTE_MASKED); /* neighbours untouched */
	assert_int_equal(rte_read(f, 4), RTE_MASKED);
	/* The halves are independent. */
	reg_write(f, 0x17, 0x12000000);
	assert_int_equal(rte_read(f, 3), 0x12000000000080e1ull);
	reg_write(f, 0x16, 0x00010041);
	assert_int_equal(rte_read(f, 3), 0x1200000000010041ull);
	/* The last pin. */
	rte_write(f, 23, rte(0x99, 1, 0));
	assert_int_equal(rte_read(f, 23), rte(0x99, 1, 0));
}

static void test_redirection_read_only_bits(void **state)
{
	struct fixture *f = *state;

	/* Delivery status (bit 12) and remote IRR (bit 14) ignore writes. */
	rte_write(f, 5,
		  rte(0x30, 0, RTE_DELIVERY_STATUS | RTE_REMOTE_IRR | RTE_LEVEL | RTE_MASKED));
	assert_int_equal(rte_read(f, 5), rte(0x30, 0, RTE_LEVEL | RTE_MASKED));

	/* Remote IRR, once set by a delivery, survives a rewrite of the entry
	 * that tries to clear it. */
	rte_write(f, 5, rte(0x30, 0, RTE_LEVEL));
	ioapic_set_irq(&f->ioapic, 5, true);
	assert_int_equal(f->nr_msis, 1);
	assert_true(rte_read(f, 5) & RTE_REMOTE_IRR);
	rte_write(f, 5, rte(0x30, 0, RTE_LEVEL));
	assert_true(rte_read(f, 5) & RTE_REMOTE_IRR);
	assert_int_equal(f->nr_msis, 1);
	/* Switching the entry to edge drops it: edge entries have no IRR. */
	rte_write(f, 5, rte(0x30, 0, 0));
	assert_false(rte_read(f, 5) & RTE_REMOTE_IRR);
}

static void test_msi_encoding(void **state)
{
	uint64_t address;
	uint32_t data;

	(void)state;
	/* Fixed, physical, edge, vector 0x31 to APIC 0. */
	ioapic_entry_to_msi(rte(0x31, 0, 0), &address, &data);
	assert_int_equal(address, 0xfee00000);
	assert_int_equal(data, 0x31);
	/* Physical destination 5, level: trigger (bit 15) and assert (bit 14). */
	ioapic_entry_to_msi(rte(0x40, 5, RTE_LEVEL), &address, &data);
	assert_int_equal(address, 0xfee05000);
	assert_int_equal(data, 0xc040);
	/* Logical destination 0xff: destination mode in address bit 2. */
	ioapic_entry_to_msi(rte(0x41, 0xff, RTE_LOGICAL), &address, &data);
	assert_int_equal(address, 0xfeeff004);
	assert_int_equal(data, 0x41);
	/* Lowest priority (delivery mode 1), logical, level. */
	ioapic_entry_to_msi(rte(0x42, 0x03, RTE_LOGICAL | RTE_LEVEL | (1u << 8)), &address, &data);
	assert_int_equal(address, 0xfee03004);
	assert_int_equal(data, 0xc142);
	/* NMI (delivery mode 4). */
	ioapic_entry_to_msi(rte(0x00, 1, 4u << 8), &address, &data);
	assert_int_equal(address, 0xfee01000);
	assert_int_equal(data, 0x400);
	/* Mask, polarity, status and IRR bits never leak into the message. */
	ioapic_entry_to_msi(rte(0x50, 2, RTE_MASKED | RTE_REMOTE_IRR | RTE_DELIVERY_STATUS |
					  (1ull << 13)),
			    &address, &data);
	assert_int_equal(address, 0xfee02000);
	assert_int_equal(data, 0x50);
}

static void test_update_route(void **state)
{
	struct fixture *f = *state;

	reg_write(f, 0x10 + 2 * 4, (uint32_t)rte(0x34, 0, RTE_MASKED));
	assert_int_equal(f->routes, 1);
	assert_int_equal(f->route_pin, 4);
	assert_true(f->route_masked);
	reg_write(f, 0x11 + 2 * 4, 0x02000000);
	assert_int_equal(f->routes, 2);
	assert_int_equal(f->route_address, 0xfee02000);
	assert_true(f->route_masked);
	reg_write(f, 0x10 + 2 * 4, (uint32_t)rte(0x34, 0, RTE_LEVEL));
	assert_int_equal(f->routes, 3);
	assert_int_equal(f->route_pin, 4);
	assert_int_equal(f->route_address, 0xfee02000);
	assert_int_equal(f->route_data, 0xc034);
	assert_false(f->route_masked);
	/* The last pin is routed as itself. */
	rte_write(f, 23, rte(0x77, 1, 0));
	assert_int_equal(f->route_pin, 23);
	assert_int_equal(f->route_data, 0x77);
}

static void test_edge_delivers_on_rising_only(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 4, rte(0x24, 1, 0));
	ioapic_set_irq(&f->ioapic, 4, true);
	assert_int_equal(f->nr_msis, 1);
	assert_int_equal(f->msis[0].address, 0xfee01000);
	assert_int_equal(f->msis[0].data, 0x24);
	/* Staying high is not a new edge. */
	ioapic_set_irq(&f->ioapic, 4, true);
	assert_int_equal(f->nr_msis, 1);
	/* Falling delivers nothing. */
	ioapic_set_irq(&f->ioapic, 4, false);
	ioapic_set_irq(&f->ioapic, 4, false);
	assert_int_equal(f->nr_msis, 1);
	ioapic_set_irq(&f->ioapic, 4, true);
	assert_int_equal(f->nr_msis, 2);
	assert_int_equal(f->ioapic.delivered, 2);
	/* An EOI for an edge vector changes nothing. */
	ioapic_eoi(&f->ioapic, 0x24);
	assert_int_equal(f->nr_msis, 2);
	assert_false(rte_read(f, 4) & RTE_REMOTE_IRR);
}

static void test_masked_edge_is_not_held(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 1, rte(0x21, 0, RTE_MASKED));
	ioapic_set_irq(&f->ioapic, 1, true);
	assert_int_equal(f->nr_msis, 0);
	/* 82093AA: edges on a masked pin are not held pending; unmasking
	 * while the line stays high does not deliver. */
	rte_write(f, 1, rte(0x21, 0, 0));
	assert_int_equal(f->nr_msis, 0);
	ioapic_set_irq(&f->ioapic, 1, false);
	ioapic_set_irq(&f->ioapic, 1, true);
	assert_int_equal(f->nr_msis, 1);
	/* Masking again stops delivery. */
	rte_write(f, 1, rte(0x21, 0, RTE_MASKED));
	ioapic_set_irq(&f->ioapic, 1, false);
	ioapic_set_irq(&f->ioapic, 1, true);
	assert_int_equal(f->nr_msis, 1);
}

static void test_level_remote_irr(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 9, rte(0x29, 0, RTE_LEVEL));
	assert_false(rte_read(f, 9) & RTE_REMOTE_IRR);
	ioapic_set_irq(&f->ioapic, 9, true);
	assert_int_equal(f->nr_msis, 1);
	assert_int_equal(f->msis[0].data, 0xc029);
	assert_true(rte_read(f, 9) & RTE_REMOTE_IRR);
	/* Asserting again while the guest has not EOIed: nothing. */
	ioapic_set_irq(&f->ioapic, 9, true);
	ioapic_set_irq(&f->ioapic, 9, false);
	ioapic_set_irq(&f->ioapic, 9, true);
	assert_int_equal(f->nr_msis, 1);
	/* EOI of another vector leaves it alone. */
	ioapic_eoi(&f->ioapic, 0x30);
	assert_true(rte_read(f, 9) & RTE_REMOTE_IRR);
	assert_int_equal(f->nr_msis, 1);
	/* EOI while the line is still asserted: delivered again at once. */
	ioapic_eoi(&f->ioapic, 0x29);
	assert_int_equal(f->nr_msis, 2);
	assert_true(rte_read(f, 9) & RTE_REMOTE_IRR);
	/* Line drops, then EOI: IRR clears and nothing is sent. */
	ioapic_set_irq(&f->ioapic, 9, false);
	ioapic_eoi(&f->ioapic, 0x29);
	assert_int_equal(f->nr_msis, 2);
	assert_false(rte_read(f, 9) & RTE_REMOTE_IRR);
	/* The next assertion is delivered normally. */
	ioapic_set_irq(&f->ioapic, 9, true);
	assert_int_equal(f->nr_msis, 3);
	assert_int_equal(f->ioapic.delivered, 3);
}

static void test_level_masked_then_unmasked(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 10, rte(0x2a, 0, RTE_LEVEL | RTE_MASKED));
	ioapic_set_irq(&f->ioapic, 10, true);
	assert_int_equal(f->nr_msis, 0);
	assert_false(rte_read(f, 10) & RTE_REMOTE_IRR);
	/* Unmasking a level line that is still asserted delivers it now. */
	reg_write(f, 0x10 + 2 * 10, (uint32_t)rte(0x2a, 0, RTE_LEVEL));
	assert_int_equal(f->nr_msis, 1);
	assert_true(rte_read(f, 10) & RTE_REMOTE_IRR);
	/* A masked level line is not re-sent on EOI either. */
	reg_write(f, 0x10 + 2 * 10, (uint32_t)rte(0x2a, 0, RTE_LEVEL | RTE_MASKED));
	ioapic_eoi(&f->ioapic, 0x2a);
	assert_int_equal(f->nr_msis, 1);
	assert_false(rte_read(f, 10) & RTE_REMOTE_IRR);
}

static void test_shared_vector_eoi(void **state)
{
	struct fixture *f = *state;

	/* Two level pins on one vector: one EOI serves both. */
	rte_write(f, 16, rte(0x60, 0, RTE_LEVEL));
	rte_write(f, 17, rte(0x60, 0, RTE_LEVEL));
	ioapic_set_irq(&f->ioapic, 16, true);
	ioapic_set_irq(&f->ioapic, 17, true);
	assert_int_equal(f->nr_msis, 2);
	ioapic_set_irq(&f->ioapic, 16, false);
	ioapic_eoi(&f->ioapic, 0x60);
	assert_int_equal(f->nr_msis, 3); /* only pin 17 is still asserted */
	assert_false(rte_read(f, 16) & RTE_REMOTE_IRR);
	assert_true(rte_read(f, 17) & RTE_REMOTE_IRR);
}

static void test_eoi_register(void **state)
{
	struct fixture *f = *state;

	rte_write(f, 11, rte(0x2b, 0, RTE_LEVEL));
	ioapic_set_irq(&f->ioapic, 11, true);
	assert_int_equal(f->nr_msis, 1);
	/* 82093AA version 0x20 EOI register at offset 0x40. */
	ioapic_set_irq(&f->ioapic, 11, false);
	mmio_write(f, IOEOI, 0x2b);
	assert_false(rte_read(f, 11) & RTE_REMOTE_IRR);
	ioapic_set_irq(&f->ioapic, 11, true);
	assert_int_equal(f->nr_msis, 2);
	/* Still asserted: EOI through the register re-delivers. */
	mmio_write(f, IOEOI, 0xffffff2b); /* only the vector byte counts */
	assert_int_equal(f->nr_msis, 3);
	assert_int_equal(mmio_read(f, IOEOI), 0); /* write-only */
}

static void test_garbage_registers(void **state)
{
	struct fixture *f = *state;

	/* IOREGSEL keeps 8 bits. */
	mmio_write(f, IOREGSEL, 0xffffff01);
	assert_int_equal(mmio_read(f, IOREGSEL), 0x01);
	assert_int_equal(mmio_read(f, IOWIN), 0x00170020);
	/* Indexes that name nothing read as ones and swallow writes. */
	static const uint32_t holes[] = {0x03, 0x0f, 0x40, 0x41, 0x80, 0xff};

	for (unsigned i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
		assert_int_equal(reg_read(f, holes[i]), 0xffffffff);
		reg_write(f, holes[i], 0);
	}
	assert_int_equal(f->routes, 0);
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
		assert_int_equal(rte_read(f, pin), RTE_MASKED);
	assert_int_equal(reg_read(f, 0x01), 0x00170020);
	/* Offsets in the window that are no register. */
	assert_int_equal(mmio_read(f, 0x04), 0xffffffff);
	assert_int_equal(mmio_read(f, 0x20), 0xffffffff);
	assert_int_equal(mmio_read(f, 0xffc), 0xffffffff);
	mmio_write(f, 0x20, 0);
	/* Pins past the last are ignored. */
	ioapic_set_irq(&f->ioapic, IOAPIC_NR_PINS, true);
	ioapic_set_irq(&f->ioapic, 1000, true);
	assert_int_equal(f->nr_msis, 0);
}

static void test_narrow_and_wide_access(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8];

	/* A byte write of IOREGSEL, then an 8-byte read of IOWIN: the IOAPIC
	 * answers the low 4 bytes only. */
	data[0] = 0x01;
	ioapic_access(&f->ioapic, IOREGSEL, data, 1, true);
	memset(data, 0xee, sizeof(data));
	ioapic_access(&f->ioapic, IOWIN, data, 8, false);
	assert_int_equal(data[0], 0x20);
	assert_int_equal(data[2], 0x17);
	assert_int_equal(data[4], 0xee);
	/* A 2-byte read returns the low half. */
	memset(data, 0xee, sizeof(data));
	ioapic_access(&f->ioapic, IOWIN, data, 2, false);
	assert_int_equal(data[0], 0x20);
	assert_int_equal(data[1], 0x00);
	assert_int_equal(data[2], 0xee);
}

static void test_no_ops(void **state)
{
	struct ioapic ioapic;
	uint8_t data[4];
	uint32_t val = 0x10 + 2 * 2;

	(void)state;
	/* Without callbacks the IOAPIC still counts what it would send. */
	ioapic_init(&ioapic, 0, NULL, NULL);
	memcpy(data, &val, 4);
	ioapic_access(&ioapic, IOREGSEL, data, 4, true);
	val = 0x40;
	memcpy(data, &val, 4);
	ioapic_access(&ioapic, IOWIN, data, 4, true);
	ioapic_set_irq(&ioapic, 2, true);
	assert_int_equal(ioapic.delivered, 1);
	ioapic_destroy(&ioapic);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_id_version_arbitration),
		T(test_reset_masked),
		T(test_redirection_read_write),
		T(test_redirection_read_only_bits),
		cmocka_unit_test(test_msi_encoding),
		T(test_update_route),
		T(test_edge_delivers_on_rising_only),
		T(test_masked_edge_is_not_held),
		T(test_level_remote_irr),
		T(test_level_masked_then_unmasked),
		T(test_shared_vector_eoi),
		T(test_eoi_register),
		T(test_garbage_registers),
		T(test_narrow_and_wide_access),
		cmocka_unit_test(test_no_ops),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
