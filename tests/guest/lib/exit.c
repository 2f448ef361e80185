/* SPDX-License-Identifier: MIT */
/* The debug-exit port (abi.h) and the PASS/FAIL line protocol of the suite. */
#include "kit.h"

static unsigned test_failed;

void debug_exit(uint32_t code)
{
	/* QEMU isa-debug-exit convention: status (code << 1) | 1. */
	io_out32(ISOLA_DEBUG_EXIT_PORT, code);
	/* No debug-exit device: nothing sensible is left to do but stop. */
	cpu_halt_forever();
	__builtin_unreachable();
}

void test_pass(const char *fmt, ...)
{
	va_list ap;

	console_printf("PASS: ");
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_printf("\n");
}

static void test_vfail(const char *what, const char *fmt, va_list ap)
{
	test_failed++;
	console_printf("FAIL: %s: ", what);
	console_vprintf(fmt, ap);
	console_printf("\n");
}

void test_fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	test_vfail(what, fmt, ap);
	va_end(ap);
}

int test_check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		test_pass("%s", what);
		return 1;
	}
	va_start(ap, fmt);
	test_vfail(what, fmt, ap);
	va_end(ap);
	return 0;
}

unsigned test_failures(void)
{
	return test_failed;
}

void test_abort(const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	test_vfail(what, fmt, ap);
	va_end(ap);
	debug_exit(ISOLA_GUEST_FAIL);
}
