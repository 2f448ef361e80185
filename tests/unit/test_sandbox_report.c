// SPDX-License-Identifier: MIT
/* Unit tests for lib/sandbox.c: a sanitizer report from a sandboxed device
 * server reaches stderr in full (issue 18).  Each case forks a child whose
 * stderr is a pipe, locks it with the servers' filter (sandbox_lock) and
 * makes it misbehave on a buffer of its own; the parent reads what arrived.
 * In the ASan + UBSan build the report must be whole and the child must die
 * of the report, not of SIGSYS; in the plain build the report's isatty()
 * (ioctl TCGETS) stays forbidden, since only the sanitizer runtime needs it. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/sandbox.h"

/* Run fn() in a sandboxed child with stderr on a pipe; return the wait
 * status and what the child wrote (NUL-terminated) in out. */
static int run_sandboxed(void (*fn)(void), char *out, size_t outlen)
{
	int fds[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		close(fds[0]);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(120);
		close(fds[1]);
		if (sandbox_lock(NULL, 0, NULL, err, sizeof(err)) < 0) {
			dprintf(STDERR_FILENO, "sandbox_lock: %s\n", err);
			_exit(121);
		}
		fn();
		_exit(0);
	}
	close(fds[1]);
	while (got + 1 < outlen && (n = read(fds[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void report_log(const char *text)
{
	/* shown only when a check fails: the report as it arrived */
	print_message("--- the child's stderr:\n%s---\n", text);
}

#ifdef __SANITIZE_ADDRESS__
static volatile unsigned bad_index = 16; /* not folded: a run-time overflow */

static void heap_overflow(void)
{
	volatile char *buffer = malloc(bad_index);

	buffer[bad_index] = 1; /* one past the end */
	free((void *)buffer);
}

static void test_asan_report_arrives(void **state)
{
	static char text[65536];
	int status;

	(void)state;
	status = run_sandboxed(heap_overflow, text, sizeof(text));
	if (!strstr(text, "ERROR: AddressSanitizer: heap-buffer-overflow") ||
	    !strstr(text, "#0 0x") || !strstr(text, "SUMMARY: AddressSanitizer") ||
	    !WIFEXITED(status))
		report_log(text);
	assert_non_null(strstr(text, "ERROR: AddressSanitizer: heap-buffer-overflow"));
	assert_non_null(strstr(text, "#0 0x")); /* a stack */
	assert_non_null(strstr(text, "SUMMARY: AddressSanitizer: heap-buffer-overflow"));
	/* died of its report (ASan's exit code 1), not of the filter */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

static volatile int int_max = 0x7fffffff;

static void signed_overflow(void)
{
	volatile int sum = int_max + (int)bad_index; /* UB: signed overflow */

	(void)sum;
}

static void test_ubsan_report_arrives(void **state)
{
	static char text[65536];
	int status;

	(void)state;
	status = run_sandboxed(signed_overflow, text, sizeof(text));
	if (!strstr(text, "runtime error: signed integer overflow") ||
	    !strstr(text, "SUMMARY: UndefinedBehaviorSanitizer") || !WIFEXITED(status))
		report_log(text);
	assert_non_null(strstr(text, "runtime error: signed integer overflow"));
	assert_non_null(strstr(text, "#0 0x"));
	/* the word tests/run.sh looks for in a server's stderr */
	assert_non_null(strstr(text, "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior"));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}
#else
static void isatty_stderr(void)
{
	struct termios t;

	ioctl(STDERR_FILENO, TCGETS, &t);
}

static void test_tcgets_forbidden_without_asan(void **state)
{
	char text[4096];
	int status;

	(void)state;
	status = run_sandboxed(isatty_stderr, text, sizeof(text));
	if (!WIFSIGNALED(status))
		report_log(text);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
#ifdef __SANITIZE_ADDRESS__
	    cmocka_unit_test(test_asan_report_arrives),
	    cmocka_unit_test(test_ubsan_report_arrives),
#else
	    cmocka_unit_test(test_tcgets_forbidden_without_asan),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
