// SPDX-License-Identifier: MIT
/* Unit tests for core/seccomp.c: the allowlists compile, are exactly the
 * golden lists in docs/security-allowlists.txt (system calls and ioctl
 * requests, by name), have the sizes docs/security.md gives (within issue
 * 6's budgets: vCPU <= 20, main and API <= 40), and each filter, once installed in a child, lets
 * its thread's work through but turns a forbidden call into death by SIGSYS after one line on
 * stderr.  Also every filter of the core and of the device servers (lib/sandbox.c) takes the vDSO's
 * time calls made as real system calls (issue 10). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>
#include <linux/netlink.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/seccomp.h"
#include "lib/sandbox.h"
#include "servers/blk/blk.h"
#include "servers/net/net.h"
#include "servers/rng/rng.h"
#include "servers/vsock/vsock.h"

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

/*
 * The golden list: docs/security-allowlists.txt holds every filter's exact
 * system calls and ioctl requests (release build).  A list is compared by
 * name, so a filter that grows by one call, or lets one more ioctl request
 * through, fails here, not only one that changes its count.
 */
#ifndef ISOLA_SRCDIR
#define ISOLA_SRCDIR "."
#endif
#define GOLDEN_FILE ISOLA_SRCDIR "/docs/security-allowlists.txt"
#define SECURITY_DOC ISOLA_SRCDIR "/docs/security.md"
#define LIST_MAX 160
#define ENTRY_MAX 48

struct allowlist {
	unsigned n;
	char entries[LIST_MAX][ENTRY_MAX]; /* "write", "ioctl KVM_RUN" */
};

static void list_add(struct allowlist *l, const char *fmt, const char *what)
{
	int n;

	assert_true(l->n < LIST_MAX);
	n = snprintf(l->entries[l->n++], ENTRY_MAX, fmt, what);
	assert_in_range(n, 1, ENTRY_MAX - 1);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Distinct system calls: the count docs/security.md gives (ioctl once). */
static unsigned list_syscalls(const struct allowlist *l)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->n; i++)
		n += strncmp(l->entries[i], "ioctl ", 6) != 0;
	return n;
}

#define IOCTL_NAME(req)                                                                            \
	{                                                                                          \
		req, #req                                                                          \
	}
static const struct {
	unsigned long request;
	const char *name;
} ioctl_names[] = {
    IOCTL_NAME(KVM_RUN),
    IOCTL_NAME(KVM_GET_DEVICE_ATTR),
    IOCTL_NAME(KVM_GET_MSR_INDEX_LIST),
    IOCTL_NAME(KVM_GET_CLOCK),
    IOCTL_NAME(KVM_GET_TSC_KHZ),
    IOCTL_NAME(KVM_GET_XSAVE2),
    IOCTL_NAME(KVM_GET_XCRS),
    IOCTL_NAME(KVM_GET_VCPU_EVENTS),
    IOCTL_NAME(KVM_GET_MP_STATE),
    IOCTL_NAME(KVM_GET_DEBUGREGS),
    IOCTL_NAME(KVM_GET_CPUID2),
    IOCTL_NAME(KVM_GET_DIRTY_LOG),
    IOCTL_NAME(KVM_GET_REGS),
    IOCTL_NAME(KVM_SET_REGS),
    IOCTL_NAME(KVM_GET_SREGS),
    IOCTL_NAME(KVM_SET_SREGS),
    IOCTL_NAME(KVM_SET_FPU),
    IOCTL_NAME(KVM_GET_FPU),
    IOCTL_NAME(KVM_SIGNAL_MSI),
    IOCTL_NAME(KVM_SET_GSI_ROUTING),
    IOCTL_NAME(KVM_IOEVENTFD),
    IOCTL_NAME(KVM_IRQFD),
    IOCTL_NAME(KVM_IRQ_LINE),
    IOCTL_NAME(KVM_GET_API_VERSION),
    IOCTL_NAME(KVM_CHECK_EXTENSION),
    IOCTL_NAME(KVM_CREATE_VM),
    IOCTL_NAME(KVM_GET_VCPU_MMAP_SIZE),
    IOCTL_NAME(KVM_GET_SUPPORTED_CPUID),
    IOCTL_NAME(KVM_ENABLE_CAP),
    IOCTL_NAME(KVM_SET_USER_MEMORY_REGION),
    IOCTL_NAME(KVM_CREATE_VCPU),
    IOCTL_NAME(KVM_SET_CPUID2),
    IOCTL_NAME(KVM_SET_MSRS),
    IOCTL_NAME(KVM_GET_MSRS),
    IOCTL_NAME(KVM_GET_LAPIC),
    IOCTL_NAME(KVM_SET_LAPIC),
    IOCTL_NAME(KVM_GET_DIRTY_LOG),
    IOCTL_NAME(KVM_CREATE_IRQCHIP),
    IOCTL_NAME(KVM_GET_XSAVE),
    IOCTL_NAME(KVM_SET_XSAVE),
    IOCTL_NAME(TCGETS),
    IOCTL_NAME(TCSETS),
    IOCTL_NAME(TUNSETOFFLOAD),
    IOCTL_NAME(TUNSETQUEUE),
    IOCTL_NAME(TUNSETIFF),
    IOCTL_NAME(TUNSETVNETHDRSZ),
};

/* requests[] ends at 0 or after nr, whichever comes first */
static void list_add_ioctls(struct allowlist *l, const unsigned long *requests, unsigned nr)
{
	for (unsigned i = 0; i < nr && requests[i]; i++) {
		char hex[24];
		const char *name = NULL;

		for (unsigned j = 0; j < ARRAY_SIZE(ioctl_names) && !name; j++)
			if (ioctl_names[j].request == requests[i])
				name = ioctl_names[j].name;
		snprintf(hex, sizeof(hex), "0x%lx", requests[i]);
		list_add(l, "ioctl %s", name ? name : hex);
	}
}

static void list_add_syscall(struct allowlist *l, int nr)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	assert_non_null(name);
	list_add(l, "%s", name);
	free(name);
}

/* What core_seccomp_init() compiled into kind's filter. */
static void core_allowlist(enum core_thread kind, struct allowlist *l)
{
	l->n = 0;
	for (int nr = 0; nr < SANDBOX_SYSCALL_TABLE; nr++)
		if (core_seccomp_allows(kind, nr))
			list_add_syscall(l, nr);
	list_add_ioctls(l, core_seccomp_ioctls(kind), ~0u);
}

/* What sandbox_lock() with extra compiles, system calls and ioctl
 * requests: asked in a child, since a filter cannot be taken off again. */
static void server_allowlist(const struct sandbox_allowlist *extra, struct allowlist *l)
{
	struct {
		unsigned char syscalls[SANDBOX_SYSCALL_TABLE];
		unsigned nr_ioctls;
		unsigned long ioctls[SANDBOX_MAX_IOCTLS];
	} allowed;
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		if (sandbox_lock(&fds[1], 1, extra, err, sizeof(err)))
			_exit(100);
		for (int nr = 0; nr < SANDBOX_SYSCALL_TABLE; nr++)
			allowed.syscalls[nr] = sandbox_allows(nr);
		allowed.nr_ioctls = sandbox_allowed_ioctls(allowed.ioctls, SANDBOX_MAX_IOCTLS);
		if (write(fds[1], &allowed, sizeof(allowed)) != sizeof(allowed))
			_exit(101);
		_exit(sandbox_allowed_count() == 0 ? 102 : 0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &allowed, sizeof(allowed)), sizeof(allowed));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	l->n = 0;
	for (int nr = 0; nr < SANDBOX_SYSCALL_TABLE; nr++)
		if (allowed.syscalls[nr])
			list_add_syscall(l, nr);
	list_add_ioctls(l, allowed.ioctls, allowed.nr_ioctls);
}

/* The "[section]" of the golden file. */
static void golden_allowlist(const char *section, struct allowlist *l)
{
	FILE *f = fopen(GOLDEN_FILE, "r");
	char line[128], header[64];
	bool in = false, found = false;

	if (!f)
		fail_msg("%s: %s (the golden allowlists; run from the repository root)",
			 GOLDEN_FILE, strerror(errno));
	snprintf(header, sizeof(header), "[%s]", section);
	l->n = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == '[') {
			in = !strcmp(line, header);
			found |= in;
		} else if (in && line[0] && line[0] != '#')
			list_add(l, "%s", line);
	}
	fclose(f);
	if (!found)
		fail_msg("%s: no %s section", GOLDEN_FILE, header);
}

/* 0 if the filter's list is the golden one, else 1 after naming every
 * difference and printing the filter's list to paste in. */
static unsigned allowlist_differs(const char *section, struct allowlist *actual)
{
	static struct allowlist golden;
	unsigned diffs = 0, i = 0, j = 0;

	golden_allowlist(section, &golden);
	qsort(actual->entries, actual->n, ENTRY_MAX, cmp_entry);
	qsort(golden.entries, golden.n, ENTRY_MAX, cmp_entry);
	while (i < actual->n || j < golden.n) {
		int c = i == actual->n	? 1
			: j == golden.n ? -1
					: strcmp(actual->entries[i], golden.entries[j]);

		if (c < 0)
			print_error("[%s]: the filter allows %s, which %s does not list\n", section,
				    actual->entries[i++], GOLDEN_FILE);
		else if (c > 0)
			print_error("[%s]: %s lists %s, which the filter does not allow\n", section,
				    GOLDEN_FILE, golden.entries[j++]);
		else
			i++, j++;
		diffs += c != 0;
	}
	if (diffs) {
		printf("[%s]\n", section);
		for (i = 0; i < actual->n; i++)
			printf("%s\n", actual->entries[i]);
	}
	return diffs != 0;
}

/* docs/security.md's count for a list, after the text that introduces it. */
static unsigned doc_count(const char *doc, const char *before)
{
	const char *at = strstr(doc, before);
	unsigned n = 0;

	if (!at || sscanf(at + strlen(before), "%u", &n) != 1)
		fail_msg("%s: no \"%s<count>\"", SECURITY_DOC, before);
	return n;
}

static char *read_doc(void)
{
	static char doc[256 * 1024];
	FILE *f = fopen(SECURITY_DOC, "r");
	size_t n;

	if (!f)
		fail_msg("%s: %s", SECURITY_DOC, strerror(errno));
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = 0;
	fclose(f);
	return doc;
}

static void test_allowlists_match_golden_list(void **state)
{
	static const struct {
		const char *section;
		enum core_thread kind;
		const char *doc; /* docs/security.md: the heading of the list's table */
	} core_lists[] = {
	    {"vcpu", CORE_THREAD_VCPU, "vCPU threads ("},
	    {"main", CORE_THREAD_MAIN, "Main thread ("},
	    {"main-reboot", CORE_THREAD_MAIN_REBOOT, "Main thread with `--on-reset reboot` ("},
	    {"api", CORE_THREAD_API, "API thread ("},
	};
	static struct allowlist l;
	unsigned differs = 0, blk_count, rng_count;
	const char *doc = read_doc();

	(void)state;
	assert_true(core_seccomp_enabled());
#ifdef __SANITIZE_ADDRESS__
	/* the sanitizer runtime needs its own extra: the release build's lists
	 * are the documented ones (an allowed skip in tests/run.sh) */
	printf(
	    "ASan build: its lists carry the sanitizer's calls; the release build compares them\n");
	skip();
#endif
	for (unsigned i = 0; i < ARRAY_SIZE(core_lists); i++) {
		core_allowlist(core_lists[i].kind, &l);
		differs += allowlist_differs(core_lists[i].section, &l);
		assert_int_equal(core_seccomp_count(core_lists[i].kind), list_syscalls(&l));
		assert_int_equal(doc_count(doc, core_lists[i].doc), list_syscalls(&l));
	}
	printf("seccomp allowlists: main %u (%u with --on-reset reboot), vCPU %u, API %u system "
	       "calls\n",
	       core_seccomp_count(CORE_THREAD_MAIN), core_seccomp_count(CORE_THREAD_MAIN_REBOOT),
	       core_seccomp_count(CORE_THREAD_VCPU), core_seccomp_count(CORE_THREAD_API));
	/* issue 6's budgets */
	assert_in_range(core_seccomp_count(CORE_THREAD_VCPU), 5, 20);
	assert_in_range(core_seccomp_count(CORE_THREAD_MAIN), 10, 40);
	assert_in_range(core_seccomp_count(CORE_THREAD_API), 10, 40);

	server_allowlist(NULL, &l);
	differs += allowlist_differs("server-base", &l);
	server_allowlist(&blk_sandbox_allowlist, &l);
	differs += allowlist_differs("isola-blk", &l);
	blk_count = list_syscalls(&l);
	assert_int_equal(doc_count(doc, ", isola-blk "), blk_count);
	server_allowlist(&rng_sandbox_allowlist, &l);
	differs += allowlist_differs("isola-rng", &l);
	rng_count = list_syscalls(&l);
	assert_int_equal(doc_count(doc, "seccomp allowlists (isola-rng "), rng_count);
	server_allowlist(&net_sandbox_allowlist, &l);
	differs += allowlist_differs("isola-net", &l);
	assert_int_equal(doc_count(doc, ", isola-net "), list_syscalls(&l));
	assert_int_equal(doc_count(doc, "isola-net's allowlist ("), list_syscalls(&l));
	printf("device servers: isola-rng %u, isola-blk %u, isola-net %u", rng_count, blk_count,
	       list_syscalls(&l));
	server_allowlist(&vsock_sandbox_allowlist, &l);
	differs += allowlist_differs("isola-vsock", &l);
	assert_int_equal(doc_count(doc, ", isola-vsock "), list_syscalls(&l));
	assert_int_equal(doc_count(doc, "isola-vsock's allowlist ("), list_syscalls(&l));
	printf(", isola-vsock %u system calls\n", list_syscalls(&l));
	assert_int_equal(differs, 0);
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
 * sandbox_lock() with that server's allowlist (NULL: the base list
 * alone).  Returns the child's wait status. */
static int in_sandboxed_child(const struct sandbox_allowlist *extra, void (*body)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];

		if (sandbox_lock(NULL, 0, extra, err, sizeof(err)))
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
				      in_sandboxed_child(NULL, call_time_syscalls));
	refused += time_calls_refused(
	    "isola-blk", in_sandboxed_child(&blk_sandbox_allowlist, call_time_syscalls));
	refused += time_calls_refused(
	    "isola-rng", in_sandboxed_child(&rng_sandbox_allowlist, call_time_syscalls));
	refused += time_calls_refused(
	    "isola-net", in_sandboxed_child(&net_sandbox_allowlist, call_time_syscalls));
	refused += time_calls_refused(
	    "isola-vsock", in_sandboxed_child(&vsock_sandbox_allowlist, call_time_syscalls));
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

/* isola-net's work after the lock: frames on the tap, its two tap
 * commands (EBADF here, but allowed). */
static void allowed_net_work(void)
{
	char byte = 0;
	struct iovec iov = {&byte, 1};

	if (writev(-1, &iov, 1) >= 0 || readv(-1, &iov, 1) >= 0) /* EBADF, but allowed */
		_exit(2);
	if (ioctl(-1, TUNSETOFFLOAD, 0) >= 0 || ioctl(-1, TUNSETQUEUE, NULL) >= 0)
		_exit(3);
}

/*
 * A compromised isola-net may make only those two requests.  Each call
 * below is made on fd -1: the filter judges it before the kernel looks at
 * the fd, so a filter that let it through gets EBADF and nothing happens
 * (TIOCSTI on a terminal would type into the user's shell).
 */
static void forbidden_net_tiocsti(void)
{
	char c = 'x';

	ioctl(-1, TIOCSTI, &c); /* on an inherited terminal: keystrokes for the shell */
}

static void forbidden_net_tunsetiff(void)
{
	struct ifreq ifr = {0};

	ioctl(-1, TUNSETIFF, &ifr); /* another tap (made, if missing) */
}

static void forbidden_net_fionread(void)
{
	int n;

	ioctl(-1, FIONREAD, &n); /* harmless, but not on the list */
}

static void forbidden_net_request_upper_half(void)
{
	/* the kernel would run the lower half, TUNSETOFFLOAD: the filter
	 * compares all 64 bits and refuses it, rather than let a 32-bit look
	 * decide */
	syscall(SYS_ioctl, -1, (1ul << 32) | TUNSETOFFLOAD, 0);
}

/* A compromised isola-net still cannot reach a network of its own, nor
 * open a file or another tap. */
static void forbidden_net_socket(void)
{
	socket(AF_INET, SOCK_DGRAM, 0);
}

static __attribute__((unused)) void forbidden_net_open(void)
{
	openat(AT_FDCWD, "/dev/net/tun", O_RDWR);
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

static void test_net_server_filter(void **state)
{
	static const struct {
		const char *what;
		void (*call)(void);
	} forbidden[] = {
	    {"ioctl TIOCSTI", forbidden_net_tiocsti},
	    {"ioctl TUNSETIFF", forbidden_net_tunsetiff},
	    {"ioctl FIONREAD", forbidden_net_fionread},
	    {"ioctl TUNSETOFFLOAD with the upper half set", forbidden_net_request_upper_half},
	    {"an AF_INET socket", forbidden_net_socket},
#ifndef __SANITIZE_ADDRESS__
	    /* the sanitizer's runtime keeps openat (lib/sandbox.c, ASan builds) */
	    {"openat /dev/net/tun", forbidden_net_open},
#endif
	    {"unshare", call_unshare},
	    {"execve", call_execve},
	};
	const struct sandbox_allowlist *net = &net_sandbox_allowlist;
	unsigned failed = 0;
	int status;

	(void)state;
	status = in_sandboxed_child(net, allowed_net_work);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(forbidden); i++) {
		status = in_sandboxed_child(net, forbidden[i].call);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS) {
			print_error("isola-net's filter let %s through (wait status 0x%x)\n",
				    forbidden[i].what, status);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* isola-vsock's work after the lock (fd -1 or a socket that goes
 * nowhere: errors, but allowed): a guest's connection to PATH_P, the host
 * side's reads and writes, the CONNECT line, the rx ring's epoll. */
static void allowed_vsock_work(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/v.sock_1"};
	struct epoll_event ev;
	char byte = 0;
	struct iovec iov = {&byte, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		_exit(2);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		_exit(3);
	shutdown(fd, SHUT_WR);
	if (recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT) >= 0 &&
	    sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
		_exit(4);
	if (epoll_wait(-1, &ev, 1, 0) >= 0 || epoll_ctl(-1, EPOLL_CTL_DEL, fd, NULL) >= 0)
		_exit(6);
	close(fd);
}

/* A compromised isola-vsock can connect to Unix sockets (only the --uds
 * directory is in its root), but not listen, open files or make new
 * epoll sets. */
static void forbidden_vsock_bind(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	bind(-1, (struct sockaddr *)&addr, sizeof(addr));
}

static void forbidden_vsock_listen(void)
{
	listen(-1, 1);
}

static void forbidden_vsock_socketpair(void)
{
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

/* socket(2) is AF_UNIX streams only: AF_VSOCK would reach other VMs'
 * and the host's vsock listeners (no network namespace holds it in). */
static void forbidden_vsock_af_vsock(void)
{
	socket(AF_VSOCK, SOCK_STREAM, 0);
}

static void forbidden_vsock_netlink(void)
{
	socket(AF_NETLINK, SOCK_RAW, 0);
}

static void forbidden_vsock_unix_dgram(void)
{
	socket(AF_UNIX, SOCK_DGRAM, 0);
}

static void forbidden_vsock_epoll_create(void)
{
	epoll_create1(0);
}

static void forbidden_vsock_writev(void)
{
	char byte = 0;
	struct iovec iov = {&byte, 1};

	if (writev(-1, &iov, 1)) {
		/* EBADF, if the filter let it through */
	}
}

static void test_vsock_server_filter(void **state)
{
	static const struct {
		const char *what;
		void (*call)(void);
	} forbidden[] = {
	    {"bind", forbidden_vsock_bind},
	    {"listen", forbidden_vsock_listen},
	    {"socketpair", forbidden_vsock_socketpair},
	    {"an AF_VSOCK socket", forbidden_vsock_af_vsock},
	    {"a netlink socket", forbidden_vsock_netlink},
	    {"an AF_UNIX datagram socket", forbidden_vsock_unix_dgram},
	    {"epoll_create1", forbidden_vsock_epoll_create},
	    {"writev", forbidden_vsock_writev},
	    {"ioctl FIONREAD", forbidden_net_fionread},
#ifndef __SANITIZE_ADDRESS__
	    {"openat", forbidden_net_open},
#endif
	    {"unshare", call_unshare},
	    {"execve", call_execve},
	};
	const struct sandbox_allowlist *vsock = &vsock_sandbox_allowlist;
	unsigned failed = 0;
	int status;

	(void)state;
	status = in_sandboxed_child(vsock, allowed_vsock_work);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(forbidden); i++) {
		status = in_sandboxed_child(vsock, forbidden[i].call);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS) {
			print_error("isola-vsock's filter let %s through (wait status 0x%x)\n",
				    forbidden[i].what, status);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* ioctl by name would allow every request: sandbox_lock refuses it. */
static void test_server_ioctl_whole_refused(void **state)
{
	static const char *const whole[] = {"readv", "ioctl"};
	static const struct sandbox_allowlist list = {whole, ARRAY_SIZE(whole), NULL, 0, 0};
	int status;

	(void)state;
	/* in_sandboxed_child exits 100 when sandbox_lock fails */
	status = in_sandboxed_child(&list, call_unshare);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 100);
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
	    cmocka_unit_test(test_allowlists_match_golden_list),
	    cmocka_unit_test(test_forbidden_calls_die_of_sigsys),
	    cmocka_unit_test(test_allowed_calls_pass),
	    cmocka_unit_test(test_net_server_filter),
	    cmocka_unit_test(test_vsock_server_filter),
	    cmocka_unit_test(test_server_ioctl_whole_refused),
	    cmocka_unit_test(test_time_syscalls_pass_every_filter),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
