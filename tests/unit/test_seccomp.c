// SPDX-License-Identifier: MIT
/* Unit tests for core/seccomp.c: the allowlists compile, have the sizes
 * docs/security.md gives (within issue 6's budgets: vCPU <= 20, main and
 * API <= 40), and each filter, once installed in a child, lets its
 * thread's work through but turns a forbidden call into death by SIGSYS
 * after one line on stderr.  Also every filter of the core and of the
 * device servers (lib/sandbox.c) takes the vDSO's time calls made as real
 * system calls (issue 10). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/seccomp.h"
#include "lib/sandbox.h"
#include "servers/blk/blk.h"
#include "servers/rng/rng.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state)
{
	char err[256] = "";

	(void)state;
	if (core_seccomp_init(true, err, sizeof(err))) {
		fprintf(stderr, "core_seccomp_init: %s\n", err);
		return -1;
	}
	return 0;
}

/* How many system calls sandbox_lock() allows with extra[]: asked in a
 * child, since a filter cannot be taken off again. */
static unsigned sandbox_count(const char *const *extra, unsigned nr_extra)
{
	unsigned count = 0;
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		if (sandbox_lock(&fds[1], 1, extra, nr_extra, err, sizeof(err)))
			_exit(100);
		count = sandbox_allowed_count();
		if (write(fds[1], &count, sizeof(count)) != sizeof(count))
			_exit(101);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &count, sizeof(count)), sizeof(count));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return count;
}

static void test_counts(void **state)
{
	unsigned base = sandbox_count(NULL, 0);
	unsigned blk = sandbox_count(blk_sandbox_syscalls, ARRAY_SIZE(blk_sandbox_syscalls));
	unsigned rng = sandbox_count(rng_sandbox_syscalls, ARRAY_SIZE(rng_sandbox_syscalls));

	(void)state;
	printf("seccomp allowlists: main %u (%u with --on-reset reboot), vCPU %u, API %u system "
	       "calls\n",
	       core_seccomp_count(CORE_THREAD_MAIN), core_seccomp_count(CORE_THREAD_MAIN_REBOOT),
	       core_seccomp_count(CORE_THREAD_VCPU), core_seccomp_count(CORE_THREAD_API));
	printf("device servers: base %u, isola-blk %u, isola-rng %u system calls\n", base, blk,
	       rng);
	assert_true(core_seccomp_enabled());
#ifndef __SANITIZE_ADDRESS__ /* the sanitizer runtime needs its own extra */
	/* the counts README.md and docs/security.md give */
	assert_int_equal(core_seccomp_count(CORE_THREAD_VCPU), 15);
	assert_int_equal(core_seccomp_count(CORE_THREAD_MAIN), 31);
	assert_int_equal(core_seccomp_count(CORE_THREAD_MAIN_REBOOT), 42);
	assert_int_equal(core_seccomp_count(CORE_THREAD_API), 40);
	/* and servers/blk/README.md, servers/rng/README.md */
	assert_int_equal(base, 31);
	assert_int_equal(blk, 32);
	assert_int_equal(rng, 31);
	/* issue 6's budgets */
	assert_in_range(core_seccomp_count(CORE_THREAD_VCPU), 5, 20);
	assert_in_range(core_seccomp_count(CORE_THREAD_MAIN), 10, 40);
	assert_in_range(core_seccomp_count(CORE_THREAD_API), 10, 40);
#endif
}

/* Run body() in a child under kind's filter; returns its wait status. */
static int in_filtered_child(enum core_thread kind, void (*body)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		/* again: cmocka has put its own SIGSYS handler in place */
		if (core_seccomp_init(true, err, sizeof(err)) || core_seccomp_enter(kind, 0))
			_exit(100);
		body();
		syscall(SYS_exit, 0); /* the last thread: exit_group is not on every list */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* Run body() in a child under the filter a device server installs:
 * sandbox_lock() with that server's extra list (none: the base list
 * alone).  Returns the child's wait status. */
static int in_sandboxed_child(const char *const *extra, unsigned nr_extra, void (*body)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		if (sandbox_lock(NULL, 0, extra, nr_extra, err, sizeof(err)))
			_exit(100);
		body();
		syscall(SYS_exit, 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/*
 * What glibc makes of clock_gettime, clock_getres, gettimeofday and time
 * where the host's clocksource cannot be read from user space (Xen,
 * Hyper-V, an unstable TSC, a nested L1 on hpet): the vDSO falls back to
 * the real system call.  Any thread may read the clock (every log line
 * does), so every list must take them.  exit, not exit_group: the vCPU
 * list has only exit.
 */
static void call_time_syscalls(void)
{
	struct timespec ts;
	struct timeval tv;

	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) ||
	    syscall(SYS_clock_getres, CLOCK_MONOTONIC, &ts) ||
	    syscall(SYS_gettimeofday, &tv, NULL) || syscall(SYS_time, NULL) < 0)
		syscall(SYS_exit, 1);
}

/* 0 if the child made its calls and exited 0, else 1 after saying how. */
static unsigned time_calls_refused(const char *filter, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		print_error("%s filter: the raw time system calls killed the child with signal "
			    "%d%s\n",
			    filter, WTERMSIG(status),
			    WTERMSIG(status) == SIGSYS ? " (SIGSYS: not on its list)" : "");
	else
		print_error("%s filter: the child exited with status %d\n", filter,
			    WEXITSTATUS(status));
	return 1;
}

static void test_time_syscalls_pass_every_filter(void **state)
{
	static const char *const core_names[CORE_THREAD_KINDS] = {
	    [CORE_THREAD_MAIN] = "main (event loop)",
	    [CORE_THREAD_VCPU] = "vCPU",
	    [CORE_THREAD_API] = "API",
	    [CORE_THREAD_MAIN_REBOOT] = "main with --on-reset reboot",
	};
	unsigned refused = 0;

	(void)state;
	/* The spawner (core/supervisor.c) is not here: it is forked before any
	 * filter and runs without one. */
	for (int kind = 0; kind < CORE_THREAD_KINDS; kind++)
		refused +=
		    time_calls_refused(core_names[kind], in_filtered_child((enum core_thread)kind,
									   call_time_syscalls));
	refused += time_calls_refused("device server base (sandbox_base_syscalls)",
				      in_sandboxed_child(NULL, 0, call_time_syscalls));
	refused += time_calls_refused(
	    "isola-blk", in_sandboxed_child(blk_sandbox_syscalls, ARRAY_SIZE(blk_sandbox_syscalls),
					    call_time_syscalls));
	refused += time_calls_refused(
	    "isola-rng", in_sandboxed_child(rng_sandbox_syscalls, ARRAY_SIZE(rng_sandbox_syscalls),
					    call_time_syscalls));
	assert_int_equal(refused, 0);
}

static void call_unshare(void)
{
	syscall(SYS_unshare, 0); /* a no-op if it ran; on no list, even ASan's */
}

static void call_execve(void)
{
	char *argv[] = {"/bin/true", NULL};

	execve(argv[0], argv, NULL);
}

static void forbidden_ioctl(void)
{
	/* a KVM request a vCPU thread never makes */
	ioctl(-1, KVM_CREATE_VM, 0);
}

static void forbidden_socket(void)
{
	socket(AF_INET, SOCK_STREAM, 0); /* the main thread may only reach AF_UNIX */
}

static void forbidden_open_for_reading(void)
{
	openat(AT_FDCWD, "/etc/passwd", O_RDONLY); /* the API thread opens write-only */
}

static void forbidden_kill_all(void)
{
	kill(-1, 0); /* every process we may signal: never, only a server's pid */
}

static void forbidden_truncating_open(void)
{
	/* a rebooting main thread reads the kernel and opens /dev/kvm; it never
	 * truncates, creates or appends */
	openat(AT_FDCWD, "/dev/null", O_WRONLY | O_TRUNC);
}

static void allowed_reboot_work(void)
{
	int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		_exit(1);
	close(fd);
	kill(getpid(), 0);
	ioctl(-1, KVM_CREATE_VM, 0);
}

static void allowed_vcpu_work(void)
{
	uint64_t one = 1;

	if (write(-1, &one, sizeof(one)) >= 0) /* EBADF, but allowed */
		_exit(1);
	ioctl(-1, KVM_RUN, 0);
	ioctl(-1, KVM_SIGNAL_MSI, 0);
}

static void allowed_main_work(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		_exit(1);
	close(fd);
	ioctl(-1, KVM_IRQFD, 0);
}

static void assert_sigsys(int status)
{
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void test_forbidden_calls_die_of_sigsys(void **state)
{
	(void)state;
	for (int kind = 0; kind < CORE_THREAD_KINDS; kind++) {
		assert_sigsys(in_filtered_child((enum core_thread)kind, call_unshare));
		assert_sigsys(in_filtered_child((enum core_thread)kind, call_execve));
	}
	assert_sigsys(in_filtered_child(CORE_THREAD_VCPU, forbidden_ioctl));
	assert_sigsys(in_filtered_child(CORE_THREAD_MAIN, forbidden_ioctl));
	assert_sigsys(in_filtered_child(CORE_THREAD_MAIN, forbidden_socket));
	assert_sigsys(in_filtered_child(CORE_THREAD_API, forbidden_open_for_reading));
	assert_sigsys(in_filtered_child(CORE_THREAD_MAIN, forbidden_kill_all));
	assert_sigsys(in_filtered_child(CORE_THREAD_MAIN_REBOOT, forbidden_kill_all));
	assert_sigsys(in_filtered_child(CORE_THREAD_MAIN_REBOOT, forbidden_truncating_open));
}

static void test_allowed_calls_pass(void **state)
{
	int status;

	(void)state;
	status = in_filtered_child(CORE_THREAD_VCPU, allowed_vcpu_work);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status = in_filtered_child(CORE_THREAD_MAIN_REBOOT, allowed_reboot_work);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status = in_filtered_child(CORE_THREAD_MAIN, allowed_main_work);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_forbidden_calls_die_of_sigsys),
	    cmocka_unit_test(test_allowed_calls_pass),
	    cmocka_unit_test(test_time_syscalls_pass_every_filter),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
