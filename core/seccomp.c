// SPDX-License-Identifier: MIT
/*
 * Per-thread seccomp allowlists for the core (core/seccomp.h).  The three
 * filters are compiled once with libseccomp, before any thread exists, into
 * classic BPF programs; each thread then installs its own with seccomp(2)
 * (no TSYNC: a filter binds the calling thread and the threads and processes
 * it creates later).  Installing needs no allocation, so a vCPU thread never
 * gets a malloc arena of its own that might later want mmap or madvise.
 *
 * The lists were measured with strace -f over the whole test suite (every
 * test guest, hostile guest, virtio guest, API test), keeping what each
 * thread called after the point where it installs its filter; the counts
 * are in docs/security.md.
 */
#define _GNU_SOURCE
#include "core/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/console.h"
#include "isola/abi.h"
#include "lib/log.h"
#include "lib/vdso_fallback.h"

/* One purpose per line: kept out of clang-format. */
/* clang-format off */
/* The sanitizer runtime (make asan) calls these on any thread: reports,
 * its allocator (mmap on any thread), thread teardown, and LeakSanitizer's
 * exit-time tracer, which stops and reads the other threads.  Its clock
 * reads are on every list already (VDSO_FALLBACK_SYSCALLS). */
#ifdef __SANITIZE_ADDRESS__
#define SANITIZER_SYSCALLS                                                          \
	"sigaltstack", "openat", "open", "pread64", "readlink", "prlimit64",        \
	"sched_getaffinity", "gettid", "getpid", "tgkill",                          \
	"sched_yield", "mmap", "munmap", "mprotect", "madvise", "exit_group",       \
	"write", "rt_sigprocmask", "rt_sigaction", "newfstatat", "close", "read",   \
	"clone", "ptrace", "prctl", "getdents", "getppid", "lseek", "wait4", "waitid",
#define SANITIZER_CLONE 1 /* LeakSanitizer's tracer is a process */
#else
#define SANITIZER_SYSCALLS
#define SANITIZER_CLONE 0
#endif

/*
 * vCPU threads: KVM_RUN and what its exits lead to (port and MMIO
 * emulation, interrupts, stopping the VM), parking on pause, and thread exit.
 */
static const char *const vcpu_syscalls[] = {
	"ioctl",                             /* vcpu_ioctls[] only */
	"write",                             /* console, eventfds, log lines */
	"poll",                              /* MSI-X PBA: a pending call eventfd */
	"futex",                             /* locks, pause parking */
	"getpid", "gettid", "tgkill",        /* vm_request_stop kicks every vCPU */
	"rt_sigreturn",                      /* the kick signal's handler returns */
	"rt_sigprocmask", "madvise", "exit", /* glibc's thread exit */
	VDSO_FALLBACK_SYSCALLS,              /* the RTC, the PM timer, log lines */
	SANITIZER_SYSCALLS NULL,
};

/* KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI: IOAPIC and MSI-X emulation;
 * KVM_IOEVENTFD: a virtio BAR the guest moved; TCSETS: the SIGSYS handler
 * gives the user's terminal back. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IOEVENTFD,
	KVM_IRQFD, TCSETS, 0,
};

/*
 * The main thread from serve_vm() on: the event loop (console, signals,
 * timer, device work and vhost-user messages, device servers), then the
 * VM's teardown and process exit.  Device servers are started by the
 * spawner process (core/supervisor.c), never by a filtered thread: seccomp
 * filters are inherited across fork and exec.
 */
#define MAIN_SYSCALLS                                                                              \
	"ioctl",                                /* main_ioctls[] only */                           \
	"poll", "read", "write", "close",       /* the event loop */                               \
	"sendmsg", "recvmsg",                   /* vhost-user, the spawner */                      \
	"socket", "connect",                    /* AF_UNIX only: a back-end came back */           \
	"mmap", "munmap", "madvise", "brk",     /* inflight regions, malloc, teardown */           \
	"futex", "getpid", "gettid", "tgkill",  /* locks, kicking vCPUs */                         \
	"wait4", "kill", "clock_nanosleep",     /* reaping, stopping (pid >= 0), restarting servers */\
	"newfstatat", "unlink",                 /* our API socket at exit; a failed snapshot's files */\
	"rename",                               /* a snapshot's files, into place once whole */    \
	"lseek", "pwrite64", "ftruncate",       /* a snapshot's memory file (core/snapshot.c) */   \
	"pipe2",                                /* a device server's state (SET_DEVICE_STATE_FD) */\
	"rt_sigprocmask", "rt_sigreturn", "restart_syscall",                                       \
	"exit", "exit_group",                                                                      \
	VDSO_FALLBACK_SYSCALLS                  /* timers, restart windows, log lines */

static const char *const main_syscalls[] = {
	MAIN_SYSCALLS,
	SANITIZER_SYSCALLS NULL,
};

#define MAIN_IOCTLS KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI, TCGETS, TCSETS

/* PUT /snapshot/create: the event loop reads the paused VM's state
 * (core/snapshot.c) and, with track_dirty_pages, its dirty log
 * (core/snapshot_dirty.c); the reboot list has the rest already. */
#define SNAPSHOT_IOCTLS                                                                             \
	KVM_GET_MSR_INDEX_LIST, KVM_GET_CLOCK, KVM_GET_TSC_KHZ, KVM_GET_XSAVE, KVM_GET_XSAVE2,     \
	    KVM_GET_XCRS, KVM_GET_MSRS, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_GET_DEBUGREGS,  \
	    KVM_GET_CPUID2, KVM_GET_DEVICE_ATTR, KVM_GET_DIRTY_LOG

static const unsigned long main_ioctls[] = {
	MAIN_IOCTLS, SNAPSHOT_IOCTLS, KVM_CHECK_EXTENSION, KVM_GET_LAPIC, KVM_GET_SREGS, KVM_GET_REGS,
	0,
};

/*
 * The main thread with --on-reset reboot: also what building the next VM
 * takes (core/vm.c vm_create, vm_start), and, since the vCPU threads it
 * starts inherit this filter under their own, what they need as well.
 */
static const char *const main_reboot_syscalls[] = {
	MAIN_SYSCALLS,
	"openat",                               /* /dev/kvm, the kernel, initrd: O_RDONLY/O_RDWR only */
	"fallocate",                            /* emptying the guest RAM the last VM left (gmem_reset) */
	"fcntl",                                /* the console's O_NONBLOCK */
	"eventfd2",                             /* the VM's eventfds, the devices' kick/call fds */
	"mprotect",                             /* vCPU thread stacks' guard pages */
	"clone", "set_robust_list", "rseq",     /* vCPU threads */
	"seccomp",                              /* each vCPU thread installs its own filter */
	"rt_sigaction",                         /* ... and its kick signal's handler */
	"prctl",                                /* PR_SET_NAME only: naming them */
	SANITIZER_SYSCALLS NULL,
};

static const unsigned long main_reboot_ioctls[] = {
	MAIN_IOCTLS,
	/* vm_create: the VM, its memory, irqchip, vCPUs and their state */
	KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID, KVM_ENABLE_CAP, KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU,
	KVM_SET_CPUID2, KVM_SET_MSRS, KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_GET_REGS, KVM_SET_REGS, KVM_SET_FPU, SNAPSHOT_IOCTLS,
	/* the vCPU threads' own list (they inherit this one too) */
	KVM_RUN, 0,
};

/*
 * The API thread and libmicrohttpd's poll thread it starts (core/api/server.c),
 * requests that reach the VMM (pause: kicks; SendCtrlAltDel: an interrupt),
 * PUT /logger and /metrics opening their file for writing.
 */
static const char *const api_syscalls[] = {
	"ioctl",                                /* api_ioctls[] only */
	"poll",                                 /* waiting to stop; MHD's poll thread */
	"getsockopt", "getsockname", "fcntl",   /* MHD checks the listening socket */
	"prctl",                                /* PR_SET_NAME only: naming the threads */
	"accept4", "recvfrom", "sendto", "sendmsg", "shutdown", "setsockopt", "close",
	"read", "write",                        /* eventfds, log and metrics files */
	"openat",                               /* write-only: logger, metrics and snapshot files */
	"newfstatat", "access", "sysinfo",      /* checking the paths and sizes a client PUTs */
	"getrandom",                            /* glibc's malloc, json-c's hash seed */
	"mmap", "munmap", "madvise", "brk", "mprotect", /* malloc (json-c, MHD) */
	"futex", "getpid", "gettid", "tgkill",  /* pause kicks the vCPUs */
	"clone", "set_robust_list", "rseq",     /* MHD's thread; PUT /metrics' flusher thread */
	"rt_sigprocmask", "rt_sigreturn", "restart_syscall", "exit",
	VDSO_FALLBACK_SYSCALLS,                 /* MHD's timeouts, metrics, log lines */
	SANITIZER_SYSCALLS NULL,
};

static const unsigned long api_ioctls[] = {
	KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, TCSETS, 0,
};
/* clang-format on */

static const struct core_thread_policy {
	const char *what; /* in the violation line */
	const char *env;  /* ISOLA_TEST_FORBIDDEN_SYSCALL value */
	const char *const *syscalls;
	const unsigned long *ioctls;
} policies[CORE_THREAD_KINDS] = {
    [CORE_THREAD_MAIN] = {"main (event loop) thread", "main", main_syscalls, main_ioctls},
    [CORE_THREAD_VCPU] = {"vCPU thread", "vcpu", vcpu_syscalls, vcpu_ioctls},
    [CORE_THREAD_API] = {"API thread", "api", api_syscalls, api_ioctls},
    [CORE_THREAD_MAIN_REBOOT] = {"main (event loop) thread", "main-reboot", main_reboot_syscalls,
				 main_reboot_ioctls},
};

/*
 * Set once by core_seccomp_init() before any thread exists, read-only
 * afterwards: the SIGSYS handler has no VM object to look in.
 */
#define SYSCALL_NAME_MAX 24
#define SYSCALL_TABLE 512
static struct {
	bool enabled;
	int test_kind; /* -1, or the kind that must call a forbidden syscall */
	struct sock_filter *programs[CORE_THREAD_KINDS];
	unsigned short lengths[CORE_THREAD_KINDS];
	unsigned counts[CORE_THREAD_KINDS];
	/* what compile() put in each filter, by system call number */
	uint64_t allowed[CORE_THREAD_KINDS][SYSCALL_TABLE / 64];
	char names[SYSCALL_TABLE][SYSCALL_NAME_MAX];
} core_seccomp = {.test_kind = -1};

/* Which thread this is, for the violation line. */
static __thread int thread_kind = -1;
static __thread unsigned thread_index;

static int seccomp_fail(char *err, size_t errlen, int ret, const char *what, const char *name)
{
	snprintf(err, errlen, "seccomp: %s%s%s: %s", what, name ? " " : "", name ? name : "",
		 strerror(-ret));
	return ret;
}

/* ---- the violation line (async-signal-safe) ----------------------------- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long long v, unsigned base)
{
	char digits[24];
	unsigned n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n && at + 1 < cap)
		buf[at++] = digits[--n];
	return at;
}

static void core_seccomp_violation(int sig, siginfo_t *si, void *ucontext)
{
	const ucontext_t *uc = ucontext;
	int nr = si->si_syscall;
	const char *what = thread_kind >= 0 ? policies[thread_kind].what : "thread";
	char line[320];
	size_t n = 0;

	(void)sig;
	n = put_str(line, n, sizeof(line), "isola: ");
	n = put_str(line, n, sizeof(line), what);
	if (thread_kind == CORE_THREAD_VCPU) {
		n = put_str(line, n, sizeof(line), " ");
		n = put_num(line, n, sizeof(line), thread_index, 10);
	}
	n = put_str(line, n, sizeof(line), " made a forbidden system call ");
	n = put_num(line, n, sizeof(line), (unsigned)nr, 10);
	n = put_str(line, n, sizeof(line), " (");
	n = put_str(line, n, sizeof(line),
		    nr >= 0 && nr < SYSCALL_TABLE && core_seccomp.names[nr][0]
			? core_seccomp.names[nr]
			: "?");
	n = put_str(line, n, sizeof(line), ") at PC 0x");
	n = put_num(line, n, sizeof(line), (unsigned long long)uc->uc_mcontext.gregs[REG_RIP], 16);
	n = put_str(
	    line, n, sizeof(line),
	    "; stopping (seccomp, docs/security.md; --no-seccomp turns it off to debug)\r\n");
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nothing left to tell it to */
	}
	console_restore();
	/*
	 * Die of SIGSYS: SIGSYS is blocked while this handler runs, and a
	 * seccomp trap of a blocked signal makes the kernel reset it to the
	 * default action (force_sig_info), so a forbidden system call ends
	 * the process with SIGSYS.  unshare(2) is on no list (not even ASan's);
	 * the same call again might not be, with other arguments (kill(0)).
	 */
	syscall(SYS_unshare, 0);
	_exit(ISOLA_EXIT_VMM_ERROR);
}

/* ---- compiling the filters ---------------------------------------------- */

static void mark_allowed(enum core_thread kind, int nr)
{
	if (nr >= 0 && nr < SYSCALL_TABLE)
		core_seccomp.allowed[kind][nr / 64] |= 1ull << (nr % 64);
}

static int allow(scmp_filter_ctx ctx, enum core_thread kind, const char *name, unsigned *count,
		 char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(name);
	int ret;

	if (nr == __NR_SCMP_ERROR)
		return seccomp_fail(err, errlen, -EINVAL, "unknown system call", name);
	if (!strcmp(name, "ioctl"))
		return 0; /* by request number: allow_ioctls() */
	if (!strcmp(name, "clone")) {
		/* Threads only (CLONE_THREAD), never a process.  clone3 passes its
		 * flags in memory, out of a filter's reach: it fails with ENOSYS
		 * and glibc falls back to clone (in ASan builds too, whose
		 * LeakSanitizer tracer needs a process: any clone there). */
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
		if (ret < 0 && ret != -EEXIST)
			return seccomp_fail(err, errlen, ret, "refusing", "clone3");
		if (SANITIZER_CLONE)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		else
			ret = seccomp_rule_add(
			    ctx, SCMP_ACT_ALLOW, nr, 1,
			    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	} else if (!strcmp(name, "prctl") && !SANITIZER_CLONE) {
		/* naming a thread only (pthread_setname_np, MHD's thread) */
		ret =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	} else if (!strcmp(name, "socket"))
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	else if (!strcmp(name, "openat") && kind == CORE_THREAD_MAIN_REBOOT) {
		/* read-only (the kernel, initrd) or read-write (/dev/kvm), and
		 * nothing that creates, truncates or appends */
		const scmp_datum_t mask = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE;

		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, mask, O_RDONLY));
		if (!ret)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					       SCMP_A2(SCMP_CMP_MASKED_EQ, mask, O_RDWR));
	} else if (!strcmp(name, "kill"))
		/* a pid (a device server's): not -1 (every process we may signal)
		 * nor a process group; the argument arrives sign-extended */
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)INT32_MAX, 0));
	else if (!strcmp(name, "openat"))
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));
	else
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (ret == -EEXIST)
		return 0; /* the sanitizer list repeats some */
	if (ret < 0)
		return seccomp_fail(err, errlen, ret, "allowing", name);
	mark_allowed(kind, nr);
	(*count)++;
	return 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, enum core_thread kind, const unsigned long *requests,
			unsigned *count, char *err, size_t errlen)
{
	for (unsigned i = 0; requests[i]; i++) {
		/* The kernel reads the request as an unsigned int: matching all
		 * 64 bits refuses a request with junk in the upper half. */
		int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					   SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)requests[i]));

		if (ret < 0)
			return seccomp_fail(err, errlen, ret, "allowing", "ioctl");
	}
	mark_allowed(kind, SCMP_SYS(ioctl));
	(*count)++;
	return 0;
}

/* libseccomp 2.5 exports to an fd only: through a memfd into memory. */
static int export_program(scmp_filter_ctx ctx, enum core_thread kind, char *err, size_t errlen)
{
	int fd = memfd_create("isola-seccomp", MFD_CLOEXEC);
	off_t size;
	int ret;

	if (fd < 0)
		return seccomp_fail(err, errlen, -errno, "memfd_create", NULL);
	ret = seccomp_export_bpf(ctx, fd);
	size = lseek(fd, 0, SEEK_END);
	if (!ret && (size <= 0 || size % sizeof(struct sock_filter) ||
		     size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		ret = -E2BIG;
	if (!ret) {
		core_seccomp.programs[kind] = malloc((size_t)size);
		if (!core_seccomp.programs[kind] ||
		    pread(fd, core_seccomp.programs[kind], (size_t)size, 0) != size)
			ret = -ENOMEM;
		core_seccomp.lengths[kind] = (unsigned short)(size / sizeof(struct sock_filter));
	}
	close(fd);
	return ret ? seccomp_fail(err, errlen, ret, "exporting the filter", NULL) : 0;
}

static int compile(enum core_thread kind, char *err, size_t errlen)
{
	const struct core_thread_policy *p = &policies[kind];
	/* ISOLA_SECCOMP_AUDIT=1, for measuring the lists only: a call outside
	 * them is allowed and logged by the kernel (dmesg, "type=1326"). */
	scmp_filter_ctx ctx =
	    seccomp_init(getenv("ISOLA_SECCOMP_AUDIT") ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	unsigned count = 0;
	int ret = 0;

	if (!ctx)
		return seccomp_fail(err, errlen, -ENOMEM, "seccomp_init", NULL);
	/* no_new_privs is set once, by core_seccomp_init(). */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (unsigned i = 0; p->syscalls[i] && !ret; i++)
		ret = allow(ctx, kind, p->syscalls[i], &count, err, errlen);
	if (!ret)
		ret = allow_ioctls(ctx, kind, p->ioctls, &count, err, errlen);
	if (!ret)
		ret = export_program(ctx, kind, err, errlen);
	seccomp_release(ctx);
	core_seccomp.counts[kind] = count;
	return ret;
}

static void fill_names(void)
{
	for (int nr = 0; nr < SYSCALL_TABLE; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (name)
			snprintf(core_seccomp.names[nr], SYSCALL_NAME_MAX, "%s", name);
		free(name);
	}
}

int core_seccomp_init(bool enabled, char *err, size_t errlen)
{
	struct sigaction sa = {.sa_sigaction = core_seccomp_violation, .sa_flags = SA_SIGINFO};
	const char *test = getenv("ISOLA_TEST_FORBIDDEN_SYSCALL");
	int ret;

	if (!enabled)
		return 0;
	for (int kind = 0; kind < CORE_THREAD_KINDS; kind++) {
		ret = compile((enum core_thread)kind, err, errlen);
		if (ret)
			return ret;
		if (test && !strcmp(test, policies[kind].env))
			core_seccomp.test_kind = kind;
	}
	fill_names();
	/* glibc reads TZ and /etc/localtime on the first time conversion (the
	 * RTC's gmtime_r on a vCPU thread): do it now, while we may open files. */
	tzset();
	/* One malloc arena for the process: a thread's own arena makes glibc
	 * read /sys (CPU count) when creating it and /proc/sys/vm (overcommit)
	 * the first time it shrinks, on whatever thread happens to allocate. */
	mallopt(M_ARENA_MAX, 1);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return seccomp_fail(err, errlen, -errno, "sigaction(SIGSYS)", NULL);
	/* Inherited by every thread and process from here on; the filters
	 * need it unless we hold CAP_SYS_ADMIN, and it is right anyway. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return seccomp_fail(err, errlen, -errno, "no_new_privs", NULL);
	core_seccomp.enabled = true;
	return 0;
}

bool core_seccomp_enabled(void)
{
	return core_seccomp.enabled;
}

unsigned core_seccomp_count(enum core_thread kind)
{
	return core_seccomp.counts[kind];
}

bool core_seccomp_allows(enum core_thread kind, int nr)
{
	return nr >= 0 && nr < SYSCALL_TABLE &&
	       (core_seccomp.allowed[kind][nr / 64] >> (nr % 64) & 1);
}

const unsigned long *core_seccomp_ioctls(enum core_thread kind)
{
	return policies[kind].ioctls;
}

/* The test hook (tests/system/core_seccomp.sh): unshare(0), which changes
 * nothing if it ever ran, and which no list allows (not even ASan's, which
 * has ptrace for LeakSanitizer). */
static void test_forbidden_syscall(enum core_thread kind)
{
	log_error("test: the %s calls unshare(2), which its seccomp filter forbids: the process "
		  "must now die of SIGSYS",
		  policies[kind].what);
	syscall(SYS_unshare, 0);
	log_error("test: unshare(2) returned: the %s's filter is NOT enforced",
		  policies[kind].what);
}

int core_seccomp_enter(enum core_thread kind, unsigned index)
{
	struct sock_fprog prog = {
	    .len = core_seccomp.lengths[kind],
	    .filter = core_seccomp.programs[kind],
	};

	if (!core_seccomp.enabled || thread_kind == (int)kind)
		return 0; /* off, or this thread has it already (a rebooted VM) */
	thread_kind = (int)kind;
	thread_index = index;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	if (core_seccomp.test_kind == (int)kind && index == 0)
		test_forbidden_syscall(kind);
	return 0;
}
