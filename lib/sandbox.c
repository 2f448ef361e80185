// SPDX-License-Identifier: MIT
/* Device server sandbox: namespaces, fds, no_new_privs, seccomp allowlist. */
#define _GNU_SOURCE
#include "lib/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/vdso_fallback.h"

/*
 * Measured with strace -f -c on isola-blk and isola-rng serving QEMU and
 * the isola core (servers/{blk,rng}/README.md): the vhost-user loop, ring
 * threads (created per ring start), glibc's allocator and stdio logging.
 */
const char *const sandbox_base_syscalls[] = {
    /* the vhost-user socket */
    "accept4",
    "recvmsg",
    "sendmsg",
    "getsockopt",
    "poll",
    /* eventfds (kick, call, err, stop) and the fds we are given */
    "read",
    "write",
    "close",
    "fcntl",
    "newfstatat",
    /* guest memory, the inflight region, glibc's allocator */
    "mmap",
    "munmap",
    "madvise",
    "mprotect",
    "brk",
    "memfd_create",
    "ftruncate",
    "getrandom", /* glibc seeds a new thread's malloc arena */
    /* ring threads, created per ring start */
    "clone3",
    "set_robust_list",
    "rseq",
    "rt_sigprocmask",
    "rt_sigaction",
    /* SIGUSR1's handler returns (the ring dump, lib/server_main.c) */
    "rt_sigreturn",
    "futex",
    "exit",
    "exit_group",
    /* a poll interrupted by a stop (ptrace, SIGSTOP) is restarted */
    "restart_syscall",
    /* log lines, rate and busy-poll windows: the clock where the vDSO
     * cannot read it (lib/vdso_fallback.h) */
    VDSO_FALLBACK_SYSCALLS,
#ifdef __SANITIZE_ADDRESS__
    /* ASan + UBSan builds only (BUILD=build/asan) */
    "sigaltstack",
    "openat",
    "open",
    "pread64",
    "readlink",
    "prlimit64",
    "sched_getaffinity",
    "gettid",
    "getpid",
    "tgkill",
    "sched_yield", /* and its clock reads: VDSO_FALLBACK_SYSCALLS, above */
    "pipe2",	   /* UBSan's report probes memory through a pipe */
#endif
    NULL,
};

#ifdef __SANITIZE_ADDRESS__
/* UBSan's report, like ASan's, ends with a stack and a "SUMMARY: ...Sanitizer"
 * line (the word tests/run.sh looks for); by default it prints one line. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "print_stacktrace=1:print_summary=1";
}
#endif

static unsigned sandbox_allowed;
/* what sandbox_lock() put in the filter, by system call number */
static uint64_t sandbox_allowed_nrs[SANDBOX_SYSCALL_TABLE / 64];
/* ... and the ioctl requests it let through */
static unsigned long sandbox_ioctls[SANDBOX_MAX_IOCTLS];
static unsigned sandbox_nr_ioctls;

unsigned sandbox_allowed_count(void)
{
	return sandbox_allowed;
}

bool sandbox_allows(int nr)
{
	return nr >= 0 && nr < SANDBOX_SYSCALL_TABLE &&
	       (sandbox_allowed_nrs[nr / 64] >> (nr % 64) & 1);
}

unsigned sandbox_allowed_ioctls(unsigned long *requests, unsigned max)
{
	unsigned n = sandbox_nr_ioctls < max ? sandbox_nr_ioctls : max;

	memcpy(requests, sandbox_ioctls, n * sizeof(*requests));
	return n;
}

/* ---- namespaces ---------------------------------------------------------- */

static pid_t sandbox_child;
static volatile sig_atomic_t sandbox_forwarded;

static void sandbox_forward(int sig)
{
	/* pid 1 of a namespace ignores signals it has no handler for: stop
	 * it for good, and end the same way ourselves afterwards. */
	sandbox_forwarded = sig;
	kill(sandbox_child, SIGKILL);
}

/* SIGUSR1 (the ring dump, servers/README.md "Operations") is for the
 * server, which handles it: pass it on, and keep waiting. */
static void sandbox_relay(int sig)
{
	int saved = errno;

	kill(sandbox_child, sig);
	errno = saved;
}

/* The parent: wait for the server and end like it. */
static void __attribute__((noreturn)) sandbox_wait(const char *name)
{
	struct sigaction sa = {.sa_handler = sandbox_forward};
	struct sigaction relay = {.sa_handler = sandbox_relay, .sa_flags = SA_RESTART};
	struct rlimit no_core = {0, 0};
	int status, sig;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &relay, NULL);
	while (waitpid(sandbox_child, &status, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	sig = WTERMSIG(status);
	if (sig == SIGKILL && sandbox_forwarded)
		sig = sandbox_forwarded;
	if (sig == SIGSYS)
		log_error("%s was killed by SIGSYS: it made a system call outside its seccomp "
			  "allowlist (see its README.md); run with --no-sandbox to debug",
			  name);
	/* End by the same signal, without a core dump of this tiny parent. */
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL);
	raise(sig);
	_exit(128 + sig);
}

int sandbox_enter_cwd_as_root(void)
{
	if (syscall(SYS_pivot_root, ".", ".") == 0)
		return umount2(".", MNT_DETACH) < 0 || chdir("/") < 0 ? -errno : 0;
	if (errno != EINVAL)
		return -errno;
	/* switch_root(8)'s way: cover the old root with the new root's mount */
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return -errno;
	return 0;
}

/* sandbox_bind_dir's directory, "" none */
static char sandbox_bind[PATH_MAX];

void sandbox_bind_dir(const char *dir)
{
	snprintf(sandbox_bind, sizeof(sandbox_bind), "%s", dir);
}

/* Cover every subdirectory of the bound directory with an empty read-only
 * tmpfs: the server needs the directory's own sockets (isola-vsock's
 * PATH_<port>), not what lies below it -- a VMM's API socket often does
 * (Kata's jailer root holds run/firecracker.socket beside its
 * kata.hvsock).  A subdirectory made later is not covered.  0 or -errno. */
static int sandbox_hide_subdirs(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[PATH_MAX];
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type != DT_DIR &&
		    (e->d_type != DT_UNKNOWN ||
		     fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
			ret = -ENAMETOOLONG;
		else if (mount("isola-hidden", sub, "tmpfs",
			       MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0") < 0)
			ret = -errno;
	}
	closedir(d);
	return ret;
}

/* Inside the new root (cwd, its tmpfs): the directories of sandbox_bind's
 * path, then the clone tree of it attached there (nosuid, nodev, noexec).
 * The tmpfs root and those directories are 0511: --user may walk the path
 * but list nothing.  0 or -errno. */
static int sandbox_attach_bind(int tree)
{
	char path[PATH_MAX];
	char *p, c;

	snprintf(path, sizeof(path), "%s", sandbox_bind + strspn(sandbox_bind, "/"));
	if (!*path)
		return -EINVAL; /* the host's whole root is no sandbox */
	if (chmod(".", 0511) < 0)
		return -errno;
	for (p = path;; p++) {
		if (*p && *p != '/')
			continue;
		c = *p;
		*p = 0;
		if (mkdir(path, 0511) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			break;
	}
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	/* read-only: connect(2) to a socket there still works (a mount's
	 * read-only flag stops writes, not connects), creating files not */
	if (mount(NULL, path, NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	return sandbox_hide_subdirs(path);
}

/* An empty, read-only root: a fresh tmpfs becomes the root and the old root
 * goes out of reach (the image and socket are already open); with
 * sandbox_bind_dir, that directory is the one thing of the host in it. */
static int sandbox_empty_root(char *err, size_t errlen)
{
	/* any empty-enough directory will do as the mount point; inside the
	 * VMM's --jail only /dev may exist */
	static const char *const mount_points[] = {"/tmp", "/mnt", "/var/tmp", "/dev"};
	const char *dir = NULL;
	int ret, tree = -1;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		ret = -errno;
		return error_text(err, errlen, ret, "making / private: %s%s", strerror(-ret),
				  ret == -EINVAL ? SANDBOX_NOT_A_MOUNT_POINT : "");
	}
	/* taken before the tmpfs goes over /tmp, where the directory may be */
	if (*sandbox_bind) {
		tree = (int)syscall(SYS_open_tree, AT_FDCWD, sandbox_bind,
				    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0)
			return error_text(err, errlen, -errno, "cloning a mount of %s: %s",
					  sandbox_bind, strerror(errno));
	}
	for (unsigned i = 0; i < 4 && !dir; i++)
		if (mount("isola-sandbox", mount_points[i], "tmpfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,mode=0500") == 0)
			dir = mount_points[i];
	if (!dir) {
		ret = -errno;
		if (tree >= 0)
			close(tree);
		return error_text(err, errlen, ret, "mounting an empty tmpfs: %s", strerror(-ret));
	}
	if (chdir(dir) < 0) {
		ret = -errno;
		if (tree >= 0)
			close(tree);
		return error_text(err, errlen, ret, "entering the empty tmpfs: %s", strerror(-ret));
	}
	if (tree >= 0) {
		ret = sandbox_attach_bind(tree);
		close(tree);
		if (ret < 0)
			return error_text(err, errlen, ret, "bind-mounting %s into the root: %s",
					  sandbox_bind, strerror(-ret));
	}
	ret = sandbox_enter_cwd_as_root();
	if (ret < 0)
		return error_text(err, errlen, ret, "making an empty tmpfs the root: %s",
				  strerror(-ret));
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return error_text(err, errlen, -errno, "remounting / read-only: %s",
				  strerror(errno));
	return 0;
}

/* --user: who the server becomes once its sandbox is built (as root). */
static bool sandbox_user_set;
static uid_t sandbox_uid;
static gid_t sandbox_gid;

static int parse_id(const char *text, const char **end, unsigned *id)
{
	char *stop;
	unsigned long value;

	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	value = strtoul(text, &stop, 10);
	/* (uid_t)-1 means "unchanged" to setresuid: never a user */
	if (errno || value >= UINT32_MAX)
		return -EINVAL;
	*id = (unsigned)value;
	*end = stop;
	return 0;
}

int sandbox_parse_user(const char *text, uid_t *uid, gid_t *gid)
{
	const char *end;
	unsigned u, g;

	if (parse_id(text, &end, &u))
		return -EINVAL;
	g = u;
	if (*end == ':' && parse_id(end + 1, &end, &g))
		return -EINVAL;
	if (*end)
		return -EINVAL;
	*uid = u;
	*gid = g;
	return 0;
}

void sandbox_set_user(uid_t uid, gid_t gid)
{
	sandbox_user_set = true;
	sandbox_uid = uid;
	sandbox_gid = gid;
}

/* Become --user for good: no groups, and leaving uid 0 clears every
 * capability (capabilities(7)).  A credential change clears the parent-death
 * signal (prctl(2)), so it is set again. */
static int sandbox_become_user(char *err, size_t errlen)
{
	if (!sandbox_user_set)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid(sandbox_gid, sandbox_gid, sandbox_gid) < 0 ||
	    setresuid(sandbox_uid, sandbox_uid, sandbox_uid) < 0)
		return error_text(err, errlen, -errno, "becoming uid %u gid %u: %s",
				  (unsigned)sandbox_uid, (unsigned)sandbox_gid, strerror(errno));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return 0;
}

int sandbox_files_as_user(bool on)
{
	if (!sandbox_user_set || geteuid() != 0)
		return 0;
	if (on) {
		/* fs permission checks use fsuid/fsgid and the groups; leaving
		 * fsuid 0 also drops the capabilities that bypass them */
		if (setgroups(0, NULL) < 0)
			return -errno;
		setfsgid(sandbox_gid);
		setfsuid(sandbox_uid);
		return (uid_t)setfsuid((uid_t)-1) == sandbox_uid &&
			       (gid_t)setfsgid((gid_t)-1) == sandbox_gid
			   ? 0
			   : -EPERM;
	}
	setfsuid(0);
	setfsgid(0);
	return 0;
}

/* The network namespace our starter made for its servers (sandbox.h), if it
 * gave us one: true once we are in it. */
static bool sandbox_join_netns(void)
{
	const char *given = getenv(SANDBOX_NETNS_ENV);
	bool joined;

	if (!given)
		return false;
	unsetenv(SANDBOX_NETNS_ENV);
	/* setns fails (EINVAL) unless the fd is a network namespace's: an
	 * inherited variable without the fd changes nothing (fd 4 may then be
	 * the image, left alone) */
	/* (no snprintf: this runs in the sandbox parent too, whose RSS would
	 * count printf's code pages) */
	_Static_assert(SANDBOX_NETNS_FD == 4, "SANDBOX_NETNS_FD_TEXT");
	joined =
	    !strcmp(given, SANDBOX_NETNS_FD_TEXT) && setns(SANDBOX_NETNS_FD, CLONE_NEWNET) == 0;
	if (joined)
		close(SANDBOX_NETNS_FD);
	return joined;
}

int sandbox_isolate(const char *name, char *err, size_t errlen)
{
	/* The name ps and the core's tests see, however we were exec'd (the
	 * jail's spawner runs servers from an fd: execveat names them "3"). */
	prctl(PR_SET_NAME, name);
	if (geteuid() != 0) {
		if (sandbox_user_set && (sandbox_uid != geteuid() || sandbox_gid != getegid()))
			return error_text(err, errlen, -EPERM, "--user %u:%u needs root",
					  (unsigned)sandbox_uid, (unsigned)sandbox_gid);
		log_info("not running as root: no namespaces (seccomp and no_new_privs only)");
		return 0;
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID |
		    (sandbox_join_netns() ? 0 : CLONE_NEWNET)) < 0)
		return error_text(err, errlen, -errno, "unshare: %s", strerror(errno));
	fflush(NULL);
	sandbox_child = fork();
	if (sandbox_child < 0)
		return error_text(err, errlen, -errno, "fork: %s", strerror(errno));
	if (sandbox_child > 0) {
		/* Hold nothing the server has: only stderr, for the last word. */
		close_range(3, ~0u, 0);
		close(0);
		close(1);
		/* as --user too, so whoever may signal the server may signal us */
		if (sandbox_become_user(err, errlen) < 0) {
			log_error("%s: %s", name, err);
			kill(sandbox_child, SIGKILL);
		}
		sandbox_wait(name);
	}
	/* The server: die with the parent, which the caller watches. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int ret = sandbox_empty_root(err, errlen);

	return ret < 0 ? ret : sandbox_become_user(err, errlen);
}

/* ---- fds, no_new_privs, seccomp ------------------------------------------ */

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void sandbox_close_fds_except(const int *keep, unsigned nr_keep)
{
	int sorted[64];
	unsigned n = 0;
	unsigned next = 3;

	for (unsigned i = 0; i < nr_keep && n < 64; i++)
		if (keep[i] > 2)
			sorted[n++] = keep[i];
	qsort(sorted, n, sizeof(sorted[0]), cmp_int);
	for (unsigned i = 0; i < n; i++) {
		if ((unsigned)sorted[i] > next)
			close_range(next, (unsigned)sorted[i] - 1, 0);
		next = (unsigned)sorted[i] + 1;
	}
	close_range(next, ~0u, 0);
}

/* Count system call nr once, however many rules allow it. */
static void sandbox_mark_allowed(int nr)
{
	if (nr < 0 || nr >= SANDBOX_SYSCALL_TABLE || sandbox_allows(nr))
		return;
	sandbox_allowed++;
	sandbox_allowed_nrs[nr / 64] |= 1ull << (nr % 64);
}

static int sandbox_allow(scmp_filter_ctx ctx, const char *name, char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(name);
	int ret;

	if (nr == __NR_SCMP_ERROR)
		return error_text(err, errlen, -EINVAL, "seccomp: unknown syscall %s", name);
	if (nr == SCMP_SYS(ioctl))
		return error_text(err, errlen, -EINVAL,
				  "seccomp: ioctl is allowed by request only: list the "
				  "requests (struct sandbox_allowlist .ioctls), not the call");
	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (ret < 0 && ret != -EEXIST)
		return error_text(err, errlen, ret, "seccomp: allowing %s: %s", name,
				  strerror(-ret));
	sandbox_mark_allowed(nr);
	return 0;
}

/*
 * ioctl(2) for one request.  The kernel reads the request as an unsigned
 * int (fs/ioctl.c: SYSCALL_DEFINE3(ioctl, unsigned int fd, unsigned int
 * cmd, ...)), the filter sees the whole 64-bit register: comparing all 64
 * bits refuses a request with junk in the upper half, which the kernel
 * would have run as the lower half, so nothing outside the list gets
 * through either way (as core/seccomp.c's allow_ioctls).
 */
static int sandbox_allow_ioctl(scmp_filter_ctx ctx, unsigned long request, char *err, size_t errlen)
{
	int ret;

	for (unsigned i = 0; i < sandbox_nr_ioctls; i++)
		if (sandbox_ioctls[i] == request)
			return 0; /* the ASan build's TCGETS, listed again */
	if (sandbox_nr_ioctls == SANDBOX_MAX_IOCTLS)
		return error_text(err, errlen, -E2BIG, "seccomp: more than %u ioctl requests",
				  SANDBOX_MAX_IOCTLS);
	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			       SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)request));
	if (ret < 0)
		return error_text(err, errlen, ret, "seccomp: allowing ioctl 0x%lx: %s", request,
				  strerror(-ret));
	sandbox_ioctls[sandbox_nr_ioctls++] = request;
	sandbox_mark_allowed(SCMP_SYS(ioctl));
	return 0;
}

/* socket(family, SOCK_STREAM [| SOCK_NONBLOCK | SOCK_CLOEXEC], 0) only:
 * the filter compares the whole 64-bit registers, so junk in an upper
 * half is refused too. */
static int sandbox_allow_stream_socket(scmp_filter_ctx ctx, int family, char *err, size_t errlen)
{
	int ret = seccomp_rule_add(
	    ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family),
	    SCMP_A1(SCMP_CMP_MASKED_EQ, ~(scmp_datum_t)(SOCK_NONBLOCK | SOCK_CLOEXEC),
		    (scmp_datum_t)SOCK_STREAM),
	    SCMP_A2(SCMP_CMP_EQ, 0));

	if (ret < 0)
		return error_text(err, errlen, ret, "seccomp: allowing socket(%d, SOCK_STREAM): %s",
				  family, strerror(-ret));
	sandbox_mark_allowed(SCMP_SYS(socket));
	return 0;
}

int sandbox_lock(const int *keep, unsigned nr_keep, const struct sandbox_allowlist *extra,
		 char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	int ret = 0;

	sandbox_close_fds_except(keep, nr_keep);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_text(err, errlen, -errno, "no_new_privs: %s", strerror(errno));
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return error_text(err, errlen, -ENOMEM, "seccomp_init failed");
	sandbox_allowed = 0;
	sandbox_nr_ioctls = 0;
	memset(sandbox_allowed_nrs, 0, sizeof(sandbox_allowed_nrs));
	for (unsigned i = 0; sandbox_base_syscalls[i] && !ret; i++)
		ret = sandbox_allow(ctx, sandbox_base_syscalls[i], err, errlen);
#ifdef __SANITIZE_ADDRESS__
	/* The sanitizer runtime's report starts with isatty(2): TCGETS is
	 * allowed, or the report dies before its first line. */
	if (!ret)
		ret = sandbox_allow_ioctl(ctx, TCGETS, err, errlen);
#endif
	/* a name the base list has too (isola-rng's getrandom) counts once */
	for (unsigned i = 0; extra && i < extra->nr_syscalls && !ret; i++)
		ret = sandbox_allow(ctx, extra->syscalls[i], err, errlen);
	for (unsigned i = 0; extra && i < extra->nr_ioctls && !ret; i++)
		ret = sandbox_allow_ioctl(ctx, extra->ioctls[i], err, errlen);
	if (extra && extra->stream_socket_family && !ret)
		ret = sandbox_allow_stream_socket(ctx, extra->stream_socket_family, err, errlen);
	if (!ret) {
		ret = seccomp_load(ctx);
		if (ret)
			error_text(err, errlen, ret, "seccomp_load: %s", strerror(-ret));
	}
	seccomp_release(ctx);
	return ret;
}

void sandbox_test_forbidden_syscall(void)
{
	log_error("test: calling ptrace(2), which the seccomp filter forbids: this process "
		  "must now die of SIGSYS");
	syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	log_error("test: ptrace(2) returned: the sandbox is NOT enforced");
}
