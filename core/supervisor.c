// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/supervisor.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "lib/log.h"
#include "devices/device_kind.h"
#include "lib/sandbox.h"

#define SUPERVISOR_MAX_ARGS 16

extern char **environ;

/* The directory isola runs from, read once: the main thread's seccomp
 * list has no readlink, and supervisor_server_binary is asked there. */
static char self_dir[PATH_MAX];

/* Servers are installed next to the isola binary. */
static int server_path(const char *server, char *path, size_t len)
{
	if (!self_dir[0]) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *slash;

		if (n <= 0)
			return n < 0 ? -errno : -ENOENT;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
		memcpy(self_dir, self, (size_t)(slash - self) + 1);
	}
	if ((size_t)snprintf(path, len, "%s/isola-%s", self_dir, server) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Server binaries opened before --jail (supervisor_open_servers): inside the
 * jail the spawner runs them from these fds (execveat), since they are not
 * under the jail's root.  One per row of the device-kind table
 * (devices/device_kind.h); -1: not opened, the path next to isola is used.
 */
#define SUPERVISOR_MAX_KINDS 16
static int server_fds[SUPERVISOR_MAX_KINDS] = {[0 ... SUPERVISOR_MAX_KINDS - 1] = -1};

/* Set by supervisor_open_servers(): from then on servers run only from the
 * fds, never from a path (inside the jail a path is the jailed core's to
 * choose, e.g. a planted DIR/proc/self/exe). */
static bool servers_jailed;

static char server_user[32]; /* "UID:GID" for --user, or empty */

void supervisor_set_server_user(uid_t uid, gid_t gid)
{
	snprintf(server_user, sizeof(server_user), "%u:%u", (unsigned)uid, (unsigned)gid);
}

void supervisor_open_servers(void)
{
	for (unsigned i = 0; i < device_kinds_count && i < SUPERVISOR_MAX_KINDS; i++) {
		char path[PATH_MAX + 16];

		if (server_path(device_kinds[i].name, path, sizeof(path)) == 0)
			server_fds[i] = open(path, O_PATH | O_CLOEXEC);
	}
	servers_jailed = true;
}

static int server_fd(const char *server)
{
	const struct device_kind *kind = device_kind_by_name(server);
	unsigned i = kind ? (unsigned)(kind - device_kinds) : SUPERVISOR_MAX_KINDS;

	return i < SUPERVISOR_MAX_KINDS ? server_fds[i] : -1;
}

/*
 * What the spawner lets the core ask for: the options each server takes
 * from the core (the device-kind table's), and whether each has a value.
 * Anything else (--user, --no-sandbox, --socket, --test-*) is refused: the
 * spawner is root, and inside --jail the core is the untrusted party.
 */
static int check_server_args(const char *server, const char *const *args, char *err, size_t errlen)
{
	const struct device_kind *kind = device_kind_by_name(server);

	if (!kind)
		return error_text(err, errlen, -EPERM, "isola-%s: not a device server isola knows",
				  server);
	for (unsigned i = 0; args && args[i]; i++) {
		const struct device_kind_option *found = device_kind_option(kind, args[i]);

		if (!found)
			return error_text(err, errlen, -EPERM,
					  "isola-%s: option '%s' is not one the VMM may pass",
					  server, args[i]);
		if (found->has_value && !args[++i])
			return error_text(err, errlen, -EINVAL, "isola-%s: %s needs a value",
					  server, found->name);
	}
	return 0;
}

/* In the spawner: the empty network namespace it made for its servers
 * (sandbox.h SANDBOX_NETNS_FD), or -1. */
static int servers_netns_fd = -1;

/* Fork and exec the server; clone_flags CLONE_PARENT (from the spawner)
 * makes it a child of the core rather than of the spawner. */
static int spawn_direct(const char *server, const char *const *args, unsigned long clone_flags,
			pid_t *pid, int *sock, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	const char *argv[SUPERVISOR_MAX_ARGS + 6];
	unsigned argc = 0;
	int pair[2], ret, exe_fd = server_fd(server);
	pid_t child;

	if (servers_jailed) {
		/* jailed: only what was opened before the jail */
		if (exe_fd < 0)
			return error_text(
			    err, errlen, -ENOENT,
			    "isola-%s was not next to isola when the jail was entered; "
			    "build it with 'make'",
			    server);
		snprintf(path, sizeof(path), "isola-%s", server);
	} else if ((ret = server_path(server, path, sizeof(path)))) {
		return error_text(err, errlen, ret, "cannot locate isola-%s: %s", server,
				  strerror(-ret));
	} else if (access(path, X_OK) < 0)
		return error_text(
		    err, errlen, -errno,
		    "%s: %s; build it with 'make' (device servers live next to isola)", path,
		    strerror(errno));
	ret = check_server_args(server, args, err, errlen);
	if (ret)
		return ret;
	argv[argc++] = path;
	argv[argc++] = "--socket-fd";
	argv[argc++] = "3";
	for (unsigned i = 0; args && args[i] && i < SUPERVISOR_MAX_ARGS; i++)
		argv[argc++] = args[i];
	/* last, and the servers refuse a second --user */
	if (server_user[0]) {
		argv[argc++] = "--user";
		argv[argc++] = server_user;
	}
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return error_text(err, errlen, -errno, "socketpair: %s", strerror(errno));
	/* fork(), or fork() with a different parent: no glibc atfork
	 * handlers either way, and the child only execs. */
	child = (pid_t)syscall(SYS_clone, clone_flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (child < 0) {
		ret = -errno;
		close(pair[0]);
		close(pair[1]);
		return error_text(err, errlen, ret, "fork: %s", strerror(-ret));
	}
	if (child == 0) {
		int netns_fd = servers_netns_fd;
		sigset_t none;

		/* The child must not inherit the VMM's blocked signals. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Die with the VMM: a server never outlives its VM. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Out of the way of fds 3 and 4 first (SUPERVISOR_SERVER_FD,
		 * SANDBOX_NETNS_FD), which are filled below. */
		if (exe_fd >= 0 && exe_fd <= SANDBOX_NETNS_FD) {
			exe_fd = fcntl(exe_fd, F_DUPFD_CLOEXEC, SANDBOX_NETNS_FD + 1);
			if (exe_fd < 0)
				_exit(127); /* never fall back to a path lookup */
		}
		if (netns_fd >= 0 && netns_fd <= SANDBOX_NETNS_FD) {
			netns_fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, SANDBOX_NETNS_FD + 1);
			if (netns_fd < 0)
				_exit(127);
		}
		if (pair[1] == SUPERVISOR_SERVER_FD) {
			/* dup2 onto itself keeps CLOEXEC: clear it instead */
			if (fcntl(pair[1], F_SETFD, 0) < 0)
				_exit(127);
		} else if (dup2(pair[1], SUPERVISOR_SERVER_FD) < 0) {
			_exit(127);
		}
		/* Only here (in the spawner's child, single-threaded, its
		 * own copy of the environment) is the variable set, and
		 * always with the fd; elsewhere one inherited is harmless:
		 * fd 4 then does not cross exec, and setns refuses
		 * anything but a network namespace (lib/sandbox.h). */
		if (netns_fd >= 0 &&
		    (dup2(netns_fd, SANDBOX_NETNS_FD) < 0 ||
		     setenv(SANDBOX_NETNS_ENV, SANDBOX_NETNS_FD_TEXT, 1) < 0))
			_exit(127);
		/* Only stdin/out/err, the socket and the spawner's network
		 * namespace cross exec (all else is CLOEXEC). */
		if (exe_fd >= 0) {
			syscall(SYS_execveat, exe_fd, "", argv, environ, AT_EMPTY_PATH);
			/* e.g. a dynamically linked (ASan) server: no ld.so in the jail */
			dprintf(STDERR_FILENO,
				"isola: cannot run %s inside the jail: %s (servers must be "
				"statically linked, as 'make' builds them)\n",
				path, strerror(errno));
		} else if (!servers_jailed) {
			execv(path, (char *const *)argv);
		}
		_exit(127);
	}
	close(pair[1]);
	*pid = child;
	*sock = pair[0];
	return 0;
}

/*
 * The spawner: a small process forked before the VM exists (no guest
 * memory, no KVM fds) and before any seccomp filter, that starts device
 * servers for the core.  A filtered thread cannot start them itself: its
 * filter would pass to the server across fork and exec, and the server
 * needs system calls the core's event loop must not have.  Its servers are
 * still the core's children (CLONE_PARENT), so SIGCHLD, waitpid and kill
 * work as before.  One request per SOCK_SEQPACKET message: the server name
 * and its arguments, NUL-separated; the reply: struct spawn_reply, with the
 * core's end of the server's socket attached (SCM_RIGHTS).
 */
#define SPAWN_REQUEST_MAX (SUPERVISOR_MAX_ARGS * 4200)

struct spawn_reply {
	int32_t ret;
	int32_t pid;
	char message[384];
};

static int spawner_fd = -1; /* set before any thread exists, one per process */

#define SPAWN_WINDOW_S 10
#define SPAWN_WINDOW_MAX 150

/*
 * The spawner's servers share one empty network namespace, made here once,
 * when it starts the first, instead of each making its own
 * (lib/sandbox.h SANDBOX_NETNS_FD; ~0.4 ms
 * of the kernel's per-namespace set-up each; docs/security.md "One network
 * namespace per VMM's servers").  The spawner itself goes back to the
 * namespace it was started in (isola's, or --jail's): a server attaches to
 * its tap there before it joins the empty one (docs/net.md "Who opens the
 * tap").  Not root, or it fails: none, and each server makes its own as
 * before.
 */
static int netns_fd_of_current(void)
{
	/* the namespace's fd without /proc (absent in --jail): a socket's */
	int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int fd;

	if (sock < 0)
		return -1;
	fd = ioctl(sock, SIOCGSKNS); /* O_CLOEXEC */
	close(sock);
	return fd;
}

static void spawner_make_netns(void)
{
	int home;

	if (geteuid() != 0)
		return;
	home = netns_fd_of_current();
	if (home < 0)
		return;
	if (unshare(CLONE_NEWNET) == 0) {
		servers_netns_fd = netns_fd_of_current();
		if (setns(home, CLONE_NEWNET) < 0) {
			/* cannot go home: no taps for the servers, and their
			 * namespace is this one anyway */
			log_warn("the spawner could not return to its network namespace: %s",
				 strerror(errno));
		}
	}
	close(home);
}

static void spawner_serve(int fd)
{
	static char request[SPAWN_REQUEST_MAX];
	time_t window_start = 0, now;
	int spawned = 0, held_fd = -1;
	bool netns_made = false;

	for (;;) {
		const char *args[SUPERVISOR_MAX_ARGS + 1];
		struct spawn_reply reply = {0};
		char control[CMSG_SPACE(sizeof(int))] = {0};
		struct iovec iov = {.iov_base = &reply, .iov_len = sizeof(reply)};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		char in_control[CMSG_SPACE(sizeof(int))];
		struct iovec in_iov = {.iov_base = request, .iov_len = sizeof(request) - 1};
		struct msghdr in = {
		    .msg_iov = &in_iov,
		    .msg_iovlen = 1,
		    .msg_control = in_control,
		    .msg_controllen = sizeof(in_control),
		};
		ssize_t n = recvmsg(fd, &in, MSG_CMSG_CLOEXEC);
		struct cmsghdr *in_cmsg;
		unsigned nargs = 0;
		pid_t pid = 0;
		int sock = -1, given = -1;

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(0); /* the core is gone, or done: held_fd goes with us */
		}
		request[n] = '\0';
		in_cmsg = CMSG_FIRSTHDR(&in);
		if (in_cmsg && in_cmsg->cmsg_level == SOL_SOCKET && in_cmsg->cmsg_type == SCM_RIGHTS &&
		    in_cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&given, CMSG_DATA(in_cmsg), sizeof(int));
		if (!request[0]) {
			/* supervisor_hand_over(): with an fd, hold it and never
			 * use it; without, the core closed its own copy: close
			 * ours now, the last (the VM's destruction, while the
			 * core goes on to exit) */
			if (held_fd >= 0)
				close(held_fd);
			held_fd = given;
			continue;
		}
		if (given >= 0)
			close(given); /* a spawn request carries no fd */
		/* The core restarts a server at most 100 times in 10 s before it
		 * gives up (core/restart_policy.h); a core that asks for more is not well. */
		now = time(NULL);
		if (now - window_start >= SPAWN_WINDOW_S) {
			window_start = now;
			spawned = 0;
		}
		if (++spawned > SPAWN_WINDOW_MAX) {
			reply.ret =
			    error_text(reply.message, sizeof(reply.message), -EAGAIN,
				       "the spawner started %d servers in %d s; refusing more",
				       SPAWN_WINDOW_MAX, SPAWN_WINDOW_S);
			if (send(fd, &reply, sizeof(reply), MSG_NOSIGNAL) < 0)
				_exit(0);
			continue;
		}
		/* at the first server, not before: a VM without any pays nothing */
		if (!netns_made) {
			netns_made = true;
			spawner_make_netns();
		}
		for (size_t at = strlen(request) + 1; at < (size_t)n && nargs < SUPERVISOR_MAX_ARGS;
		     at += strlen(request + at) + 1)
			args[nargs++] = request + at;
		args[nargs] = NULL;
		reply.ret = spawn_direct(request, args, CLONE_PARENT, &pid, &sock, reply.message,
					 sizeof(reply.message));
		reply.pid = pid;
		if (sock >= 0) {
			struct cmsghdr *cmsg;

			msg.msg_control = control;
			msg.msg_controllen = sizeof(control);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cmsg), &sock, sizeof(int));
		}
		if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
			_exit(0);
		if (sock >= 0)
			close(sock);
	}
}

int supervisor_spawner_start(char *err, size_t errlen)
{
	int pair[2];
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return error_text(err, errlen, -errno, "spawner: socketpair: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child < 0) {
		int ret = -errno;

		close(pair[0]);
		close(pair[1]);
		return error_text(err, errlen, ret, "spawner: fork: %s", strerror(-ret));
	}
	if (child == 0) {
		/* Keep stdin/out/err (servers inherit them), our socket and the
		 * server binaries' fds (CLOEXEC: they never reach a server). */
		int keep[1 + sizeof(server_fds) / sizeof(server_fds[0])] = {pair[1]};

		memcpy(keep + 1, server_fds, sizeof(server_fds));
		sandbox_close_fds_except(keep, sizeof(keep) / sizeof(keep[0]));
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "isola-spawner");
		spawner_serve(pair[1]);
	}
	close(pair[1]);
	spawner_fd = pair[0];
	/* Only the spawner runs servers: the core has no use for the fds. */
	for (unsigned i = 0; i < sizeof(server_fds) / sizeof(server_fds[0]); i++)
		if (server_fds[i] >= 0) {
			close(server_fds[i]);
			server_fds[i] = -1;
		}
	return 0;
}

/* The request for server + args: the name and its arguments, NUL-separated. */
static int spawn_request(const char *server, const char *const *args, char *request, size_t size,
			 size_t *len, char *err, size_t errlen)
{
	*len = 0;
	for (unsigned i = 0; i <= SUPERVISOR_MAX_ARGS; i++) {
		const char *word = i == 0 ? server : args ? args[i - 1] : NULL;
		size_t n;

		if (!word)
			break;
		n = strlen(word) + 1;
		if (*len + n > size)
			return error_text(err, errlen, -E2BIG, "isola-%s: arguments too long",
					  server);
		memcpy(request + *len, word, n);
		*len += n;
	}
	return 0;
}

static int send_request(const char *request, size_t len, const char *server, char *err,
			size_t errlen)
{
	struct iovec iov = {.iov_base = (void *)request, .iov_len = len};

	/* sendmsg rather than send: the event loop's seccomp list has only
	 * sendmsg (core/seccomp.c) */
	if (sendmsg(spawner_fd, &(struct msghdr){.msg_iov = &iov, .msg_iovlen = 1}, MSG_NOSIGNAL) <
	    0)
		return error_text(err, errlen, -errno, "isola-%s: the spawner is gone: %s", server,
				  strerror(errno));
	return 0;
}

/* The spawner's answer to the oldest request not yet answered. */
static int receive_reply(const char *server, pid_t *pid, int *sock, char *err, size_t errlen)
{
	struct spawn_reply reply;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &reply, .iov_len = sizeof(reply)};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = control,
	    .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;
	ssize_t n = recvmsg(spawner_fd, &msg, MSG_CMSG_CLOEXEC);

	if (n != (ssize_t)sizeof(reply))
		return error_text(err, errlen, -EPIPE, "isola-%s: the spawner is gone", server);
	cmsg = CMSG_FIRSTHDR(&msg);
	reply.message[sizeof(reply.message) - 1] = '\0';
	if (reply.ret)
		return error_text(err, errlen, reply.ret, "%s", reply.message);
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof(int)))
		return error_text(err, errlen, -EPROTO, "isola-%s: the spawner sent no socket",
				  server);
	memcpy(sock, CMSG_DATA(cmsg), sizeof(int));
	*pid = reply.pid;
	return 0;
}

/*
 * Requests sent ahead (supervisor_prespawn), oldest first: the spawner
 * answers in order, so the first supervisor_spawn() that asks for exactly
 * the oldest one's server and arguments takes its answer.
 */
#define PRESPAWN_MAX 32
static struct prespawned {
	char server[16];
	char *request; /* malloc'd: the request as sent */
	size_t len;
} prespawned[PRESPAWN_MAX];
static unsigned nr_prespawned;

/* The core's request being built (its main thread only): one buffer for
 * supervisor_prespawn() and spawn_through_spawner(), one page touched. */
static char core_request[SPAWN_REQUEST_MAX];

int supervisor_prespawn(const char *server, const char *const *args)
{
	char *request = core_request;
	struct prespawned *p;
	char err[64];
	size_t len;

	if (spawner_fd < 0 || nr_prespawned == PRESPAWN_MAX ||
	    strlen(server) >= sizeof(p->server) ||
	    spawn_request(server, args, request, sizeof(core_request), &len, err, sizeof(err)))
		return -EINVAL;
	p = &prespawned[nr_prespawned];
	p->request = malloc(len);
	if (!p->request)
		return -ENOMEM;
	memcpy(p->request, request, len);
	p->len = len;
	snprintf(p->server, sizeof(p->server), "%s", server);
	if (send_request(request, len, server, err, sizeof(err))) {
		free(p->request);
		return -EPIPE;
	}
	nr_prespawned++;
	return 0;
}

/* Take the oldest prespawned request's answer off the queue. */
static int take_prespawned(pid_t *pid, int *sock, char *err, size_t errlen)
{
	int ret = receive_reply(prespawned[0].server, pid, sock, err, errlen);

	free(prespawned[0].request);
	memmove(prespawned, prespawned + 1, --nr_prespawned * sizeof(prespawned[0]));
	return ret;
}

void supervisor_cancel_prespawned(void)
{
	while (nr_prespawned) {
		char err[384];
		pid_t pid;
		int sock;

		if (take_prespawned(&pid, &sock, err, sizeof(err)) == 0) {
			close(sock);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
}

static int spawn_through_spawner(const char *server, const char *const *args, pid_t *pid, int *sock,
				 char *err, size_t errlen)
{
	char *request = core_request;
	size_t len;
	int ret = spawn_request(server, args, request, sizeof(core_request), &len, err, errlen);

	if (ret)
		return ret;
	if (nr_prespawned) {
		if (prespawned[0].len == len && !memcmp(prespawned[0].request, request, len))
			return take_prespawned(pid, sock, err, errlen);
		/* not what was foreseen: none of them is */
		supervisor_cancel_prespawned();
	}
	ret = send_request(request, len, server, err, errlen);
	return ret ? ret : receive_reply(server, pid, sock, err, errlen);
}

void supervisor_hand_over(int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = "", .iov_len = 1};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = control,
	    .msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	if (spawner_fd < 0)
		return;
	if (fd >= 0) {
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	} else {
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	/* the spawner's reference is taken here, read or not: no reply */
	sendmsg(spawner_fd, &msg, MSG_NOSIGNAL);
}

int supervisor_server_binary(const char *server, char *path, size_t len)
{
	/* Inside --jail the spawner runs what it opened before the jail
	 * (supervisor_open_servers); the paths are not reachable from it. */
	if (servers_jailed)
		return -EPERM;
	return server_path(server, path, len);
}

int supervisor_spawn(const char *server, const char *const *args, pid_t *pid, int *sock, char *err,
		     size_t errlen)
{
	if (spawner_fd >= 0)
		return spawn_through_spawner(server, args, pid, sock, err, errlen);
	return spawn_direct(server, args, 0, pid, sock, err, errlen);
}

int supervisor_connect(const char *path, int *sock, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return error_text(err, errlen, -ENAMETOOLONG, "socket path %s is too long", path);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_text(err, errlen, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(fd);
		return error_text(
		    err, errlen, ret,
		    "cannot connect to vhost-user back-end %s: %s; is the back-end running?", path,
		    strerror(-ret));
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
			 sig == SIGSYS ? " (seccomp: it made a system call outside its allowlist)"
				       : "");
	} else {
		snprintf(buf, len, "changed state (0x%x)", status);
	}
}
