/* SPDX-License-Identifier: MIT */
/*
 * string_io: huge and odd string port I/O.  `rep insb/insw/insl` of 64 KiB
 * from unclaimed ports (must fill with all-ones), `rep insb` from COM1's
 * empty receive buffer (zeros) and from the PM timer, `rep outsb` of 64 KiB
 * to an unclaimed port, to 0xcfc (64 Ki PCI config writes), and to COM1
 * (64 KiB of noise on the console), `rep outsw` straddling device ranges,
 * and string I/O whose memory side is MMIO.  KVM hands the VMM up to a page
 * of data per exit (count > 1): isola must bound-check data_offset + size *
 * count and dispatch each element; the guest checks the data and exits
 * PASS (status 1).
 */
#include "hostile.h"

#define BUF_SIZE 65536

static uint8_t buf[BUF_SIZE] __attribute__((aligned(4096)));

static void rep_ins(uint16_t port, void *dst, uint64_t count, unsigned width)
{
	if (width == 1)
		__asm__ volatile("rep insb" : "+D"(dst), "+c"(count) : "d"(port) : "memory");
	else if (width == 2)
		__asm__ volatile("rep insw" : "+D"(dst), "+c"(count) : "d"(port) : "memory");
	else
		__asm__ volatile("rep insl" : "+D"(dst), "+c"(count) : "d"(port) : "memory");
}

static void rep_outs(uint16_t port, const void *src, uint64_t count, unsigned width)
{
	if (width == 1)
		__asm__ volatile("rep outsb" : "+S"(src), "+c"(count) : "d"(port) : "memory");
	else if (width == 2)
		__asm__ volatile("rep outsw" : "+S"(src), "+c"(count) : "d"(port) : "memory");
	else
		__asm__ volatile("rep outsl" : "+S"(src), "+c"(count) : "d"(port) : "memory");
}

static int all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

int guest_main(const struct boot_info *info)
{
	(void)info;
	for (unsigned width = 1; width <= 4; width *= 2) {
		memset(buf, 0, sizeof(buf));
		rep_ins(0x1234, buf, BUF_SIZE / width, width);
		test_check(all_bytes(buf, BUF_SIZE, 0xff), "rep ins from an unclaimed port: all-ones",
			   "width %u", width);
	}
	memset(buf, 0x11, sizeof(buf));
	rep_ins(ISOLA_PORT_COM1, buf, 4096, 1);
	test_check(all_bytes(buf, 4096, 0), "rep insb from an empty COM1 RBR: zeros", "got %x",
		   buf[0]);
	rep_ins(ISOLA_PORT_ACPI_PM_TMR, buf, 1024, 4);
	rep_ins(ISOLA_PORT_ACPI_PM1A_EVT + 10, buf, 1024, 4); /* straddles the end of acpi-pm */
	rep_ins(ISOLA_PORT_COM1 + 7, buf, 1024, 4);           /* straddles the end of com1 */

	memset(buf, 0xa5, sizeof(buf));
	rep_outs(0x1234, buf, BUF_SIZE, 1);
	rep_outs(0x80, buf, BUF_SIZE / 4, 4);
	io_out32(ISOLA_PORT_PCI_CONFIG_ADDRESS, 0x80000000u | 0x10); /* host bridge BAR0 */
	rep_outs(ISOLA_PORT_PCI_CONFIG_DATA, buf, BUF_SIZE, 1);
	rep_outs(ISOLA_PORT_PCI_CONFIG_DATA + 2, buf, BUF_SIZE / 4, 4);
	rep_outs(ISOLA_PORT_COM1 + 6, buf, 4096, 2); /* MSR/SCR, straddling the end */
	for (unsigned i = 0; i < BUF_SIZE; i++)
		buf[i] = (i % 64 == 63) ? '\n' : (uint8_t)('a' + i % 26);
	rep_outs(ISOLA_PORT_COM1, buf, BUF_SIZE, 1);
	serial_init();
	console_printf("\nstring_io: 64 KiB to COM1 done\n");

	/* The memory side in MMIO: KVM emulates these element by element. */
	rep_ins(0x1234, phys_ptr(0xd0000000u), 64, 1);
	rep_outs(0x1234, phys_ptr(0xd0000000u), 64, 4);
	rep_ins(0x1234, phys_ptr(ISOLA_IOAPIC_BASE + 0x20), 4, 4);

	test_check(pci_cfg_read32(0, 0, 0, 0) ==
			   (ISOLA_PCI_VENDOR_ID | (uint32_t)ISOLA_PCI_HOST_DEVICE_ID << 16),
		   "host bridge intact after string config writes", "id %x",
		   pci_cfg_read32(0, 0, 0, 0));
	return 0;
}
