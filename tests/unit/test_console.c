// SPDX-License-Identifier: MIT
/* Unit tests for core/console.c: the Ctrl-A escape filter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "core/console.h"

#define CTRL_A "\x01"

/* Filter `text` (NUL-free) and compare the bytes left for the guest. */
static void expect_filter(struct console_input *in, const char *text, const char *guest,
			  bool quit_expected)
{
	uint8_t buf[64];
	size_t len = strlen(text);
	bool quit = !quit_expected;
	size_t n;

	assert_true(len <= sizeof(buf));
	memcpy(buf, text, len);
	n = console_filter_escape(in, buf, len, &quit);
	assert_int_equal(quit, quit_expected);
	assert_int_equal(n, strlen(guest));
	assert_memory_equal(buf, guest, n);
}

static void test_plain_bytes_pass(void **state)
{
	struct console_input in = {.fd = -1};

	(void)state;
	expect_filter(&in, "ls -l\r", "ls -l\r", false);
	expect_filter(&in, "\x03\x04\x1b[A", "\x03\x04\x1b[A",
		      false); /* Ctrl-C goes to the guest */
	expect_filter(&in, "", "", false);
	assert_false(in.escape_pending);
}

static void test_ctrl_a_x_quits(void **state)
{
	struct console_input in = {.fd = -1};

	(void)state;
	expect_filter(&in, "ab" CTRL_A "x", "ab", true);
	/* Upper-case X too; whatever follows in the buffer is not forwarded. */
	struct console_input in2 = {.fd = -1};

	expect_filter(&in2, CTRL_A "Xrest", "", true);
}

static void test_ctrl_a_ctrl_a_sends_one(void **state)
{
	struct console_input in = {.fd = -1};

	(void)state;
	expect_filter(&in, "a" CTRL_A CTRL_A "b", "a" CTRL_A "b", false);
	/* Four Ctrl-As are two for the guest. */
	expect_filter(&in, CTRL_A CTRL_A CTRL_A CTRL_A, CTRL_A CTRL_A, false);
	assert_false(in.escape_pending);
	/* Ctrl-A then another key: both dropped (as QEMU does). */
	expect_filter(&in, "1" CTRL_A "c2", "12", false);
	assert_false(in.escape_pending);
}

static void test_escape_split_across_reads(void **state)
{
	struct console_input in = {.fd = -1};

	(void)state;
	expect_filter(&in, "abc" CTRL_A, "abc", false);
	assert_true(in.escape_pending);
	expect_filter(&in, "x", "", true);

	struct console_input in2 = {.fd = -1};

	expect_filter(&in2, CTRL_A, "", false);
	assert_true(in2.escape_pending);
	expect_filter(&in2, CTRL_A "d", CTRL_A "d", false);
	assert_false(in2.escape_pending);

	/* A pending escape followed by an ordinary key: the key is eaten, the
	 * rest passes. */
	struct console_input in3 = {.fd = -1};

	expect_filter(&in3, CTRL_A, "", false);
	expect_filter(&in3, "qz", "z", false);
	/* An empty read keeps the escape pending. */
	expect_filter(&in3, CTRL_A, "", false);
	expect_filter(&in3, "", "", false);
	assert_true(in3.escape_pending);
	expect_filter(&in3, "x", "", true);
}

static void test_restore_without_raw(void **state)
{
	(void)state;
	/* Not a terminal: nothing to do, and restoring is harmless (twice). */
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(console_enter_raw(fds[0]), 0);
	console_restore();
	console_restore();
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_ctrl_a_x_quits),
		cmocka_unit_test(test_ctrl_a_ctrl_a_sends_one),
		cmocka_unit_test(test_escape_split_across_reads),
		cmocka_unit_test(test_restore_without_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
