// SPDX-License-Identifier: MIT
/*
 * Unit tests for devices/pci.c: configuration mechanism #1 at 0xCF8/0xCFC
 * (PCI Local Bus 3.0 §3.2.2.3.2) and ECAM (PCIe Base 4.0 §7.2.2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "isola/abi.h"

#define ENABLE 0x80000000u

struct fixture {
	struct pci_host host;
	struct pci_function dev;
	unsigned writes, reads;
	uint32_t last_offset, last_len;
};

static void dev_config_write(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	struct fixture *f = fn->opaque;

	f->writes++;
	f->last_offset = offset;
	f->last_len = len;
}

static void dev_config_read(struct pci_function *fn, uint32_t offset, uint32_t len)
{
	struct fixture *f = fn->opaque;

	f->reads++;
	f->last_offset = offset;
	f->last_len = len;
	fn->config[0x40] = (uint8_t)f->reads; /* a live register */
}

static const struct pci_function_ops dev_ops = {
	.config_write = dev_config_write,
	.config_read = dev_config_read,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pci_host_init(&f->host);
	/* A virtio-ish device: ids, a writable command register and BAR0. */
	f->dev.config[0] = 0xf4;
	f->dev.config[1] = 0x1a;
	f->dev.config[2] = 0x41;
	f->dev.config[3] = 0x10;
	f->dev.write_mask[4] = 0x07; /* command: I/O, memory, bus master */
	memset(&f->dev.write_mask[0x10], 0xff, 4);
	f->dev.write_mask[0x10] = 0xf0; /* BAR0: 16-byte aligned */
	f->dev.write_mask[0xfff] = 0xff;
	f->dev.ops = &dev_ops;
	f->dev.opaque = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_host_destroy(&f->host);
	free(f);
	return 0;
}

static void port_write(struct fixture *f, unsigned offset, uint32_t val, uint32_t len)
{
	uint8_t data[4];

	memcpy(data, &val, 4);
	pci_host_port_access(&f->host, offset, data, len, true);
}

static uint32_t port_read(struct fixture *f, unsigned offset, uint32_t len)
{
	uint8_t data[4] = {0x5a, 0x5a, 0x5a, 0x5a};
	uint32_t val = 0;

	pci_host_port_access(&f->host, offset, data, len, false);
	memcpy(&val, data, len);
	return val;
}

static uint32_t cf8_address(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return ENABLE | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

/* Mechanism #1 read of bus/dev/fn/reg; reg's low bits pick the data port byte. */
static uint32_t cf8_read(struct fixture *f, unsigned dev, unsigned fn, unsigned reg, uint32_t len)
{
	port_write(f, 0, cf8_address(0, dev, fn, reg), 4);
	return port_read(f, 4 + (reg & 3), len);
}

static void cf8_write(struct fixture *f, unsigned dev, unsigned fn, unsigned reg, uint32_t val,
		      uint32_t len)
{
	port_write(f, 0, cf8_address(0, dev, fn, reg), 4);
	port_write(f, 4 + (reg & 3), val, len);
}

static uint64_t ecam_offset(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return (uint64_t)bus << 20 | dev << 15 | fn << 12 | reg;
}

static uint32_t ecam_read(struct fixture *f, uint64_t offset, uint32_t len)
{
	uint8_t data[8];
	uint32_t val = 0;

	memset(data, 0x5a, sizeof(data));
	pci_host_ecam_access(&f->host, offset, data, len, false);
	memcpy(&val, data, len < 4 ? len : 4);
	return val;
}

static void ecam_write(struct fixture *f, uint64_t offset, uint32_t val, uint32_t len)
{
	uint8_t data[8] = {0};

	memcpy(data, &val, len < 4 ? len : 4);
	pci_host_ecam_access(&f->host, offset, data, len, true);
}

static void test_host_bridge_ids(void **state)
{
	struct fixture *f = *state;
	uint32_t ids = (uint32_t)ISOLA_PCI_HOST_DEVICE_ID << 16 | ISOLA_PCI_VENDOR_ID;

	assert_int_equal(cf8_read(f, 0, 0, 0x00, 4), ids);
	assert_int_equal(ecam_read(f, ecam_offset(0, 0, 0, 0x00), 4), ids);
	/* Class 06/00/00: host bridge; header type 0. */
	assert_int_equal(cf8_read(f, 0, 0, 0x08, 4) >> 8, 0x060000);
	assert_int_equal(cf8_read(f, 0, 0, 0x0e, 1), 0x00);
	/* The whole 256-byte header agrees, dword by dword. */
	for (unsigned reg = 0; reg < 256; reg += 4)
		assert_int_equal(cf8_read(f, 0, 0, reg, 4),
				 ecam_read(f, ecam_offset(0, 0, 0, reg), 4));
	/* Word and byte reads of the ids. */
	assert_int_equal(cf8_read(f, 0, 0, 0x00, 2), ISOLA_PCI_VENDOR_ID);
	assert_int_equal(cf8_read(f, 0, 0, 0x02, 2), ISOLA_PCI_HOST_DEVICE_ID);
	assert_int_equal(ecam_read(f, ecam_offset(0, 0, 0, 0x02), 2), ISOLA_PCI_HOST_DEVICE_ID);
	assert_int_equal(ecam_read(f, ecam_offset(0, 0, 0, 0x01), 1), ISOLA_PCI_VENDOR_ID >> 8);
}

static void test_config_address_register(void **state)
{
	struct fixture *f = *state;

	port_write(f, 0, 0x80001234, 4);
	assert_int_equal(port_read(f, 0, 4), 0x80001234);
	/* Narrow accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS. */
	port_write(f, 0, 0xff, 1);
	port_write(f, 2, 0xffff, 2);
	assert_int_equal(port_read(f, 0, 4), 0x80001234);
	assert_int_equal(port_read(f, 0, 1), 0xff);
	assert_int_equal(port_read(f, 1, 1), 0xff);
	assert_int_equal(port_read(f, 2, 2), 0xffff);
}

static void test_absent_functions(void **state)
{
	struct fixture *f = *state;

	/* Empty slots, functions other than 0, and the last slot. */
	assert_int_equal(cf8_read(f, 1, 0, 0, 4), 0xffffffff);
	assert_int_equal(cf8_read(f, 31, 0, 0, 4), 0xffffffff);
	assert_int_equal(cf8_read(f, 0, 1, 0, 4), 0xffffffff);
	assert_int_equal(cf8_read(f, 0, 7, 0, 2), 0xffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 1, 0, 0), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 0, 1, 0), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 31, 7, 0xffc), 4), 0xffffffff);
	/* Writes to them vanish. */
	cf8_write(f, 2, 0, 0x04, 0x7, 2);
	ecam_write(f, ecam_offset(0, 2, 0, 0x04), 0x7, 2);
	assert_int_equal(cf8_read(f, 2, 0, 0x04, 2), 0xffff);
}

static void test_other_buses(void **state)
{
	struct fixture *f = *state;

	port_write(f, 0, cf8_address(1, 0, 0, 0), 4);
	assert_int_equal(port_read(f, 4, 4), 0xffffffff);
	port_write(f, 0, cf8_address(255, 0, 0, 0), 4);
	assert_int_equal(port_read(f, 4, 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(1, 0, 0, 0), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(255, 0, 0, 0), 4), 0xffffffff);
	/* Past the 256 buses an ECAM window can name. */
	assert_int_equal(ecam_read(f, ecam_offset(256, 0, 0, 0), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, UINT64_MAX - 3, 4), 0xffffffff);
}

static void test_disabled_config_address(void **state)
{
	struct fixture *f = *state;

	/* Bit 31 clear: CONFIG_DATA reads as ones, writes go nowhere. */
	assert_int_equal(pci_host_plug(&f->host, 1, &f->dev), 0);
	port_write(f, 0, cf8_address(0, 0, 0, 0) & ~ENABLE, 4);
	assert_int_equal(port_read(f, 4, 4), 0xffffffff);
	port_write(f, 0, cf8_address(0, 1, 0, 0x04) & ~ENABLE, 4);
	port_write(f, 4, 0x7, 2);
	assert_int_equal(f->writes, 0);
	assert_int_equal(f->dev.config[4], 0);
	/* Power-on: CONFIG_ADDRESS is zero, i.e. disabled. */
	struct pci_host host;
	uint8_t data[4];

	pci_host_init(&host);
	pci_host_port_access(&host, 4, data, 4, false);
	assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
	pci_host_destroy(&host);
}

static void test_narrow_data_port(void **state)
{
	struct fixture *f = *state;
	uint32_t dword;

	assert_int_equal(pci_host_plug(&f->host, 3, &f->dev), 0);
	dword = cf8_read(f, 3, 0, 0x00, 4);
	assert_int_equal(dword, 0x10411af4);
	/* Bytes at 0xCFC-0xCFF and words at 0xCFC/0xCFE pick the bytes of the
	 * selected dword. */
	port_write(f, 0, cf8_address(0, 3, 0, 0), 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(port_read(f, 4 + i, 1), (dword >> (8 * i)) & 0xff);
	assert_int_equal(port_read(f, 4, 2), dword & 0xffff);
	assert_int_equal(port_read(f, 6, 2), dword >> 16);
	assert_int_equal(port_read(f, 5, 2), (dword >> 8) & 0xffff);
	/* CONFIG_ADDRESS bits 1:0 are ignored: the port offset picks the byte. */
	port_write(f, 0, cf8_address(0, 3, 0, 0) | 3, 4);
	assert_int_equal(port_read(f, 4, 1), dword & 0xff);
	/* A byte write at 0xCFD lands on byte 1 of the selected dword. */
	cf8_write(f, 3, 0, 0x11, 0xab, 1);
	assert_int_equal(f->writes, 1);
	assert_int_equal(f->last_offset, 0x11);
	assert_int_equal(f->last_len, 1);
	assert_int_equal(cf8_read(f, 3, 0, 0x10, 4), 0x0000ab00);
	cf8_write(f, 3, 0, 0x12, 0xcdef, 2);
	assert_int_equal(cf8_read(f, 3, 0, 0x10, 4), 0xcdefab00);
}

static void test_read_only_registers(void **state)
{
	struct fixture *f = *state;
	uint32_t before[64];

	/* Nothing in the host bridge is writable. */
	for (unsigned reg = 0; reg < 256; reg += 4)
		before[reg / 4] = cf8_read(f, 0, 0, reg, 4);
	for (unsigned reg = 0; reg < 256; reg += 4) {
		cf8_write(f, 0, 0, reg, 0xffffffff, 4);
		cf8_write(f, 0, 0, reg, 0, 4);
		ecam_write(f, ecam_offset(0, 0, 0, reg), 0x12345678, 4);
	}
	for (unsigned reg = 0; reg < 256; reg += 4)
		assert_int_equal(cf8_read(f, 0, 0, reg, 4), before[reg / 4]);
	assert_int_equal(cf8_read(f, 0, 0, 0x04, 2), 0x0006); /* memory + I/O decode */

	/* A device's write mask: ids fixed, command 3 bits, BAR0 aligned. */
	assert_int_equal(pci_host_plug(&f->host, 2, &f->dev), 0);
	cf8_write(f, 2, 0, 0x00, 0xffffffff, 4);
	assert_int_equal(cf8_read(f, 2, 0, 0x00, 4), 0x10411af4);
	cf8_write(f, 2, 0, 0x04, 0xffff, 2);
	assert_int_equal(cf8_read(f, 2, 0, 0x04, 2), 0x0007);
	ecam_write(f, ecam_offset(0, 2, 0, 0x10), 0xffffffff, 4);
	assert_int_equal(ecam_read(f, ecam_offset(0, 2, 0, 0x10), 4), 0xfffffff0);
	assert_int_equal(f->writes, 3); /* the hook runs after every write */
	assert_int_equal(f->last_offset, 0x10);
	assert_int_equal(f->last_len, 4);
}

static void test_config_read_hook(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pci_host_plug(&f->host, 4, &f->dev), 0);
	assert_int_equal(ecam_read(f, ecam_offset(0, 4, 0, 0x40), 1), 1);
	assert_int_equal(cf8_read(f, 4, 0, 0x40, 1), 2);
	assert_int_equal(f->last_offset, 0x40);
	assert_int_equal(f->last_len, 1);
}

static void test_ecam_bounds_and_alignment(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pci_host_plug(&f->host, 5, &f->dev), 0);
	/* Extended config space reaches 0xfff through ECAM. */
	ecam_write(f, ecam_offset(0, 5, 0, 0xfff), 0x42, 1);
	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0xfff), 1), 0x42);
	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0xffc), 4), 0x42000000);
	/* Misaligned: ones on read, dropped on write, hooks not called. */
	unsigned writes = f->writes, reads = f->reads;

	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0x01), 2), 0xffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0x02), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0xffe), 4), 0xffffffff);
	assert_int_equal(ecam_read(f, ecam_offset(0, 5, 0, 0xfff), 2), 0xffff);
	ecam_write(f, ecam_offset(0, 5, 0, 0x11), 0xffff, 2);
	ecam_write(f, ecam_offset(0, 5, 0, 0xffd), 0xffffffff, 4);
	assert_int_equal(f->writes, writes);
	assert_int_equal(f->reads, reads);
	assert_int_equal(f->dev.config[0x11], 0);
	/* 8-byte accesses are not config accesses. */
	uint8_t data[8];

	memset(data, 0, sizeof(data));
	pci_host_ecam_access(&f->host, ecam_offset(0, 5, 0, 0x00), data, 8, false);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(data[i], 0xff);
	memset(data, 0xff, sizeof(data));
	pci_host_ecam_access(&f->host, ecam_offset(0, 5, 0, 0x10), data, 8, true);
	assert_int_equal(f->dev.config[0x10], 0);
}

static void test_config_access_bounds(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4];

	/* The shared entry point checks offset + len itself. */
	assert_int_equal(pci_host_plug(&f->host, 6, &f->dev), 0);
	memset(data, 0, sizeof(data));
	pci_host_config_access(&f->host, 6 << 3, 0xffe, data, 4, false);
	assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
	pci_host_config_access(&f->host, 6 << 3, 0x1000, data, 1, false);
	assert_int_equal(data[0], 0xff);
	pci_host_config_access(&f->host, 6 << 3, UINT32_MAX, data, 4, false);
	assert_int_equal(data[0], 0xff);
	memset(data, 0xff, sizeof(data));
	pci_host_config_access(&f->host, 6 << 3, 0xffe, data, 4, true);
	pci_host_config_access(&f->host, 6 << 3, UINT32_MAX - 1, data, 4, true);
	assert_int_equal(f->dev.config[0xffe], 0);
	assert_int_equal(f->writes, 0);
	/* devfn past 255 is nobody. */
	pci_host_config_access(&f->host, 256, 0, data, 4, false);
	assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
}

static void test_plug_errors(void **state)
{
	struct fixture *f = *state;
	struct pci_function other = {0};

	assert_int_equal(pci_host_plug(&f->host, 0, &f->dev), -EINVAL); /* the bridge's slot */
	assert_int_equal(pci_host_plug(&f->host, PCI_SLOTS, &f->dev), -EINVAL);
	assert_int_equal(pci_host_plug(&f->host, 1000, &f->dev), -EINVAL);
	assert_int_equal(pci_host_plug(&f->host, 1, NULL), -EINVAL);
	assert_int_equal(pci_host_plug(&f->host, 31, &f->dev), 0);
	assert_int_equal(pci_host_plug(&f->host, 31, &other), -EBUSY);
	assert_int_equal(cf8_read(f, 31, 0, 0, 4), 0x10411af4); /* the first one stays */
	assert_int_equal(pci_host_plug(&f->host, 1, &other), 0);
	assert_int_equal(cf8_read(f, 1, 0, 0, 4), 0);
	/* The bridge still answers at 00.0. */
	assert_int_equal(cf8_read(f, 0, 0, 0, 2), ISOLA_PCI_VENDOR_ID);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_host_bridge_ids),
		T(test_config_address_register),
		T(test_absent_functions),
		T(test_other_buses),
		T(test_disabled_config_address),
		T(test_narrow_data_port),
		T(test_read_only_registers),
		T(test_config_read_hook),
		T(test_ecam_bounds_and_alignment),
		T(test_config_access_bounds),
		T(test_plug_errors),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
