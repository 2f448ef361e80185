/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for a device server (design.md "Processes and trust"), in
 * two steps around the server's own setup:
 *
 *	open the image, bind/accept the socket
 *	sandbox_isolate()   as root: own mount, pid, net, ipc and uts
 *	                    namespaces; an empty read-only root; then the
 *	                    --user given (sandbox_set_user), if any
 *	create io_uring rings, eventfds ...
 *	sandbox_lock()      close every other fd, no_new_privs, seccomp
 *	                    allowlist (anything else kills the process)
 *	serve the front-end
 */
#ifndef ISOLA_LIB_SANDBOX_H
#define ISOLA_LIB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Parse "UID" or "UID:GID" (numbers; GID defaults to UID).  0 or -EINVAL. */
int sandbox_parse_user(const char *text, uid_t *uid, gid_t *gid);

/* --user: sandbox_isolate() ends by becoming uid:gid (no groups, no
 * capabilities), in the server and in its waiting parent; so a VMM running
 * as that user (isola --jail) can stop and restart it. */
void sandbox_set_user(uid_t uid, gid_t gid);

/* With --user, as root: on, files are opened with that user's permissions
 * (fsuid/fsgid, no supplementary groups), so what a VMM may name (an image)
 * is only what its user may open; off, back to root's for the sandbox.
 * Without --user: nothing.  0 or -errno. */
int sandbox_files_as_user(bool on);

/*
 * A network namespace made for device servers by whoever starts them (the
 * isola core's spawner makes one, empty, per VMM): that starter passes it as
 * fd SANDBOX_NETNS_FD and sets SANDBOX_NETNS_ENV to "4" in the server's
 * environment; sandbox_isolate() then joins it (setns, which checks it is a
 * network namespace) instead of making a new one, which costs ~0.4 ms of
 * set-up per server (docs/security.md "One network namespace per VMM's
 * servers").  Anything else (no variable, another value, an fd that is not a
 * network namespace): a new one, as always.
 */
#define SANDBOX_NETNS_FD 4
#define SANDBOX_NETNS_FD_TEXT "4"
#define SANDBOX_NETNS_ENV "ISOLA_SANDBOX_NETNS_FD"

/*
 * Have sandbox_isolate() put the host directory dir (an absolute path) into
 * the empty root, at the same path, bind-mounted (nosuid, nodev, noexec,
 * writable): the one thing of the host's file system the server sees
 * (isola-vsock: the directory of its --uds socket, where it connects to
 * PATH_<port>).  Call before sandbox_isolate(); one directory at most.
 */
void sandbox_bind_dir(const char *dir);

/*
 * As root: unshare the mount, network, IPC, UTS and pid namespaces (the
 * network one joined instead when given, above), and
 * fork so the server runs as pid 1 of its pid namespace (a thread cannot
 * join a pid namespace).  The parent keeps no fd but stderr, waits, and
 * ends the way the server ended (same exit status or signal), saying so on
 * stderr if a seccomp violation (SIGSYS) killed it.  The server's root
 * becomes an empty read-only tmpfs; then both become the --user, if set.
 * Not root: nothing (returns 0; an error if --user is someone else).
 * Returns 0 in the server process, or -errno with a message in err.
 * Call before creating threads.
 */
int sandbox_isolate(const char *name, char *err, size_t errlen);

/*
 * Make the current directory, the root of a mount in a private mount
 * namespace, the process's root; then cwd is "/".  pivot_root(".", ".")
 * stacks the old root under the new one, and it is detached from the
 * namespace (pivot_root(2), NOTES).  pivot_root fails with EINVAL when the
 * old root is the initramfs (rootfs, on hosts that boot into it and stay)
 * or is not a mount point; then, as switch_root(8) and runc's no-pivot
 * mode do, the new root's mount is moved over "/" and chroot(2)ed into:
 * the old root stays in the namespace, covered and out of reach of path
 * lookups (docs/security.md "The empty root on an initramfs").
 * 0 or -errno.
 */
int sandbox_enter_cwd_as_root(void);

/* Said after EINVAL from making "/" private: only a mount point can be. */
#define SANDBOX_NOT_A_MOUNT_POINT                                                                  \
	"; / is not a mount point (chroot into a plain directory?): bind the directory "           \
	"onto itself first, mount --bind DIR DIR"

/* Close every fd above 2 that is not in keep[] (at most 64 entries). */
void sandbox_close_fds_except(const int *keep, unsigned nr_keep);

/*
 * What a server's filter allows beyond sandbox_base_syscalls: system calls
 * by name, and ioctl(2) for the listed request numbers only (one rule per
 * request on its second argument).  "ioctl" among the names is refused:
 * ioctl whole would let a compromised server make any request on any fd it
 * holds, TIOCSTI on an inherited terminal included (docs/security.md).
 */
struct sandbox_allowlist {
	const char *const *syscalls;
	unsigned nr_syscalls;
	const unsigned long *ioctls;
	unsigned nr_ioctls;
	/* Nonzero: socket(2) for this family's SOCK_STREAM only (any
	 * SOCK_NONBLOCK/SOCK_CLOEXEC, protocol 0), e.g. AF_UNIX, so that a
	 * server which makes Unix sockets cannot make vsock, netlink or
	 * packet sockets. */
	int stream_socket_family;
};

/*
 * Close every fd above 2 that is not in keep[], set no_new_privs, and
 * install a seccomp filter that allows sandbox_base_syscalls plus extra
 * (NULL: nothing more) and kills the process on anything else.
 * Returns 0 or -errno with a message in err.
 */
int sandbox_lock(const int *keep, unsigned nr_keep, const struct sandbox_allowlist *extra,
		 char *err, size_t errlen);

/* The syscalls every vhost-user back-end built on lib/vhost_user_backend
 * needs once serving (NULL-terminated), and how many sandbox_lock allowed. */
extern const char *const sandbox_base_syscalls[];
unsigned sandbox_allowed_count(void);

/* Whether sandbox_lock() allowed system call nr (0..SANDBOX_SYSCALL_TABLE-1):
 * the golden list in tests/unit/test_seccomp.c. */
#define SANDBOX_SYSCALL_TABLE 512
bool sandbox_allows(int nr);

/* The ioctl requests sandbox_lock() allowed (the ASan build's TCGETS too):
 * at most SANDBOX_MAX_IOCTLS, copied into requests[max]; returns how many. */
#define SANDBOX_MAX_IOCTLS 16
unsigned sandbox_allowed_ioctls(unsigned long *requests, unsigned max);

/* The --test-forbidden-syscall hook: log, then call ptrace(2), which no
 * filter allows: the process must die of SIGSYS. */
void sandbox_test_forbidden_syscall(void);

#endif
