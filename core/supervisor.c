// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUPERVISOR_MAX_ARGS 16

static int sup_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int sup_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* Servers are installed next to the isola binary. */
static int server_path(const char *server, char *path, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(path, len, "%s/isola-%s", self, server) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int supervisor_spawn(const char *server, const char *const *args, pid_t *pid, int *sock,
		     char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	const char *argv[SUPERVISOR_MAX_ARGS + 4];
	unsigned argc = 0;
	int pair[2], ret;
	pid_t child;

	ret = server_path(server, path, sizeof(path));
	if (ret)
		return sup_err(err, errlen, ret, "cannot locate isola-%s: %s", server, strerror(-ret));
	if (access(path, X_OK) < 0)
		return sup_err(err, errlen, -errno,
			       "%s: %s; build it with 'make' (device servers live next to isola)",
			       path, strerror(errno));
	argv[argc++] = path;
	argv[argc++] = "--socket-fd";
	argv[argc++] = "3";
	for (unsigned i = 0; args && args[i] && i < SUPERVISOR_MAX_ARGS; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return sup_err(err, errlen, -errno, "socketpair: %s", strerror(errno));
	child = fork();
	if (child < 0) {
		ret = -errno;
		close(pair[0]);
		close(pair[1]);
		return sup_err(err, errlen, ret, "fork: %s", strerror(-ret));
	}
	if (child == 0) {
		sigset_t none;

		/* The child must not inherit the VMM's blocked signals. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Die with the VMM: a server never outlives its VM. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(pair[1], SUPERVISOR_SERVER_FD) < 0)
			_exit(127);
		/* Only stdin/out/err and the socket cross exec (all else is CLOEXEC). */
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pair[1]);
	*pid = child;
	*sock = pair[0];
	return 0;
}

int supervisor_connect(const char *path, int *sock, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return sup_err(err, errlen, -ENAMETOOLONG, "socket path %s is too long", path);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sup_err(err, errlen, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(fd);
		return sup_err(err, errlen, ret,
			       "cannot connect to vhost-user back-end %s: %s; is the back-end running?",
			       path, strerror(-ret));
	}
	*sock = fd;
	return 0;
}

void supervisor_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		snprintf(buf, len, "was killed by SIG%s%s", sigabbrev_np(sig) ?: "?",
			 sig == SIGSYS ? " (seccomp: it made a system call outside its allowlist)" : "");
	} else {
		snprintf(buf, len, "changed state (0x%x)", status);
	}
}
