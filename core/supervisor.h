/* SPDX-License-Identifier: MIT */
/*
 * Device-server processes: start one per device (isola-blk, isola-rng) with
 * a connected vhost-user socket as fd 3, connect to external back-ends, and
 * report clearly how a server ended.
 */
#ifndef ISOLA_CORE_SUPERVISOR_H
#define ISOLA_CORE_SUPERVISOR_H

#include <stddef.h>
#include <sys/types.h>

#define SUPERVISOR_SERVER_FD 3

/* Start build-dir/isola-<server> --socket-fd 3 args...; *sock is the core's
 * end.  Returns 0 or -errno with a sentence in err. */
int supervisor_spawn(const char *server, const char *const *args, pid_t *pid, int *sock, char *err,
		     size_t errlen);
/* Fork the spawner, which from now on starts the servers for
 * supervisor_spawn(); call before the VM is created and before any thread or
 * seccomp filter exists (core/seccomp.h).  0 or -errno with a sentence. */
int supervisor_spawner_start(char *err, size_t errlen);
/* Open the server binaries next to isola (O_PATH), for a spawner that will
 * run inside --jail where their paths are not visible; call before
 * jail_enter() and supervisor_spawner_start(); a missing one is refused
 * when it is asked for. */
void supervisor_open_servers(void);
/* Servers are started with --user UID:GID from now on (isola --jail). */
void supervisor_set_server_user(uid_t uid, gid_t gid);
/* Connect to a vhost-user back-end listening on path. */
int supervisor_connect(const char *path, int *sock, char *err, size_t errlen);
/* Describe a wait status: "exited with status 1", "killed by SIGSYS (...)". */
void supervisor_describe_status(int status, char *buf, size_t len);

#endif
