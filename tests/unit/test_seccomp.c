// SPDX-License-Identifier: MIT
/* Unit tests for core/seccomp.c: the three allowlists compile, stay within
 * their budgets (issue 6: vCPU <= 20, core <= 40), and each filter, once
 * installed in a child, lets its thread's work through but turns a
 * forbidden call into death by SIGSYS after one line on stderr. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "core/seccomp.h"

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

static void test_counts_within_budget(void **state)
{
	(void)state;
	printf("seccomp allowlists: main %u (%u with --on-reset reboot), vCPU %u, API %u system "
	       "calls\n",
	       core_seccomp_count(CORE_THREAD_MAIN), core_seccomp_count(CORE_THREAD_MAIN_REBOOT),
	       core_seccomp_count(CORE_THREAD_VCPU), core_seccomp_count(CORE_THREAD_API));
	assert_true(core_seccomp_enabled());
#ifndef __SANITIZE_ADDRESS__ /* the sanitizer runtime needs its own extra */
	assert_in_range(core_seccomp_count(CORE_THREAD_VCPU), 5, 20);
	assert_in_range(core_seccomp_count(CORE_THREAD_MAIN), 10, 40);
	assert_in_range(core_seccomp_count(CORE_THREAD_API), 10, 40);
	assert_in_range(core_seccomp_count(CORE_THREAD_MAIN_REBOOT), 10, 40);
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
	    cmocka_unit_test(test_counts_within_budget),
	    cmocka_unit_test(test_forbidden_calls_die_of_sigsys),
	    cmocka_unit_test(test_allowed_calls_pass),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
