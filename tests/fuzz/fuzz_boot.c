// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the kernel loaders (arch/x86/boot*.c): the input is a
 * kernel image, bzImage or ELF, that boot_load() must refuse with a message
 * or load, never crash on.  Build and run:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude \
 *       tests/fuzz/fuzz_boot.c arch/x86/boot.c arch/x86/boot_bzimage.c \
 *       arch/x86/boot_pvh.c arch/x86/e820.c lib/gmem.c lib/log.c -o build/fuzz_boot
 *   build/fuzz_boot -max_total_time=60 tests/fuzz/corpus/boot
 *
 * Input: byte 0 selects extras, the rest is the kernel image.
 *   bit 0  also pass an initrd: the last (byte0 >> 2) * 64 KiB of the image
 *   bit 1  also pass a command line: up to 300 bytes of the image's start
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

#define FUZZ_RAM (16ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Guest memory outlives one input: the loader must not trust what a
	 * previous boot left in it, which is a realistic condition (reboot). */
	static struct gmem mem;
	static struct e820_table e820;
	static int ready;
	struct boot_images images = {.rsdp_gpa = LAYOUT_ACPI_START};
	struct boot_entry entry;
	char err[256], cmdline[301];
	size_t initrd_size;
	uint8_t mode;

	if (!ready) {
		if (gmem_create(&mem, FUZZ_RAM, GMEM_BACKING_SHMEM) || e820_build(&e820, FUZZ_RAM))
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	mode = data[0];
	images.kernel = data + 1;
	images.kernel_size = size - 1;
	if (mode & 1) {
		initrd_size = (size_t)(mode >> 2) * 65536;
		if (initrd_size > images.kernel_size)
			initrd_size = images.kernel_size;
		images.initrd = images.kernel + images.kernel_size - initrd_size;
		images.initrd_size = initrd_size;
	}
	if (mode & 2) {
		size_t n = images.kernel_size < 300 ? images.kernel_size : 300;

		memcpy(cmdline, images.kernel, n);
		cmdline[n] = 0;
		images.cmdline = cmdline;
	}
	memset(err, 0x55, sizeof(err));
	if (boot_load(&mem, &e820, &images, &entry, err, sizeof(err)) == 0) {
		/* A loaded kernel must have a sane entry. */
		if (entry.rip >= LAYOUT_MMIO_HOLE_END || !gmem_contains(&mem, entry.boot_info, 4096))
			abort();
	} else if (strnlen(err, sizeof(err)) == sizeof(err) || err[0] == 0) {
		abort(); /* every refusal says why */
	}
	return 0;
}
