// SPDX-License-Identifier: MIT
/*
 * isola-fs: the launcher of a shared directory's back-end (docs/fs.md).
 *
 * virtio-fs's device is a FUSE server; isola does not write its own but
 * starts Debian's virtiofsd (package qemu-system-common), which is not
 * isola's binary and so is not sandboxed by lib/sandbox: it sandboxes
 * itself (-o sandbox=namespace: new mount, pid and network namespaces and
 * pivot_root into the share; or chroot), drops capabilities it does not
 * need, and installs its own seccomp filter.
 *
 * The spawner starts this launcher as it starts every server (a child of
 * the core, the core's end of a socket pair as fd 3), and the launcher:
 *  1. listens on a Unix socket in a fresh 0700 directory of its own;
 *  2. starts virtiofsd with that listening socket (--fd: virtiofsd accepts
 *     one front-end on it), dying with this launcher (PR_SET_PDEATHSIG);
 *  3. connects to it (the connection waits in the backlog until
 *     virtiofsd accepts), removes the socket file and its directory, and
 *     sends the connected socket to the core over fd 3 (SCM_RIGHTS): the
 *     core speaks vhost-user to virtiofsd directly, and nothing else can
 *     reach virtiofsd;
 *  4. waits for virtiofsd and exits as it did: the core sees its server
 *     end (and virtiofsd's socket hang up).
 *
 * Options (the core's, through the spawner's allowlist in the device-kind
 * row): --socket-fd 3 --dir DIR --cache auto|always|none --sandbox
 * namespace|chroot.  --user (isola --jail) is refused: virtiofsd lives
 * outside any jail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/sandbox.h"

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define CORE_FD 3
/* virtiofsd's listening socket, in its process */
#define VIRTIOFSD_FD 3

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "isola-fs: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static bool one_of(const char *value, const char *a, const char *b, const char *c)
{
	return !strcmp(value, a) || !strcmp(value, b) || (c && !strcmp(value, c));
}

/* Send fd to the core: one byte and SCM_RIGHTS. */
static int send_fd(int channel, int fd)
{
	char byte = 'F', control[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control,
			     .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(channel, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *cache = "auto", *sandbox = "namespace";
	char tmpdir[] = "/tmp/isola-fs.XXXXXX", source[4200], cache_opt[32], sandbox_opt[32];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int listen_fd, conn, status;
	pid_t child;

	for (int i = 1; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--user"))
			die("--user (isola --jail): virtiofsd runs outside the jail; use --fs "
			    "socket=PATH with a back-end you start");
		if (!value)
			die("%s needs a value", argv[i]);
		if (!strcmp(argv[i], "--socket-fd")) {
			if (strcmp(value, "3"))
				die("--socket-fd is 3 (the spawner's)");
		} else if (!strcmp(argv[i], "--dir")) {
			dir = value;
		} else if (!strcmp(argv[i], "--cache")) {
			if (!one_of(value, "auto", "always", "none"))
				die("--cache %s: auto, always or none", value);
			cache = value;
		} else if (!strcmp(argv[i], "--sandbox")) {
			if (!one_of(value, "namespace", "chroot", NULL))
				die("--sandbox %s: namespace or chroot", value);
			sandbox = value;
		} else {
			die("unknown option %s", argv[i]);
		}
		i++;
	}
	if (!dir)
		die("--dir DIR is required");
	if (fcntl(CORE_FD, F_GETFD) < 0)
		die("fd 3 is not open: isola-fs is started by isola (isola run --fs)");
	if (access(VIRTIOFSD, X_OK) < 0)
		die("%s: %s; install Debian's package qemu-system-common", VIRTIOFSD,
		    strerror(errno));
	if (snprintf(source, sizeof(source), "source=%s", dir) >= (int)sizeof(source))
		die("--dir is too long");
	snprintf(cache_opt, sizeof(cache_opt), "cache=%s", cache);
	snprintf(sandbox_opt, sizeof(sandbox_opt), "sandbox=%s", sandbox);

	if (!mkdtemp(tmpdir))
		die("mkdtemp %s: %s", tmpdir, strerror(errno));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/vhost-user.sock", tmpdir);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(listen_fd, 1) < 0) {
		int e = errno;

		unlink(addr.sun_path);
		rmdir(tmpdir);
		die("listening on %s: %s", addr.sun_path, strerror(e));
	}

	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		char fd_opt[16] = "--fd=3"; /* VIRTIOFSD_FD */
		/* log_level=warn: its warnings and errors on isola's stderr, not
		 * a line for every connection and queue */
		char *const args[] = {"virtiofsd", fd_opt,	     "-o", source,
				      "-o",	   cache_opt,	     "-o", sandbox_opt,
				      "-o",	   "log_level=warn", NULL};
		int keep[1];

		/* dies with the launcher, which dies with the core */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		/* only the listening socket, as fd 3: not the core's channel,
		 * nor the spawner's network namespace (virtiofsd makes its
		 * own with sandbox=namespace) */
		if (dup2(listen_fd, VIRTIOFSD_FD) < 0)
			_exit(127);
		keep[0] = VIRTIOFSD_FD;
		sandbox_close_fds_except(keep, 1);
		unsetenv(SANDBOX_NETNS_ENV);
		execv(VIRTIOFSD, args);
		fprintf(stderr, "isola-fs: exec %s: %s\n", VIRTIOFSD, strerror(errno));
		_exit(127);
	}
	close(listen_fd);
	conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn < 0 || connect(conn, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;

		unlink(addr.sun_path);
		rmdir(tmpdir);
		kill(child, SIGKILL);
		die("connecting to virtiofsd: %s", strerror(e));
	}
	/* connected: the name is no longer needed, and no one else may use it */
	unlink(addr.sun_path);
	rmdir(tmpdir);
	if (send_fd(CORE_FD, conn) < 0) {
		kill(child, SIGKILL);
		die("handing virtiofsd's socket to isola: %s", strerror(errno));
	}
	close(conn);
	close(CORE_FD);
	prctl(PR_SET_NAME, "isola-fs");
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "isola-fs: virtiofsd (pid %d) was killed by signal %d\n",
			(int)child, WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	if (WEXITSTATUS(status))
		fprintf(stderr, "isola-fs: virtiofsd (pid %d) exited with status %d\n", (int)child,
			WEXITSTATUS(status));
	return WEXITSTATUS(status);
}
