/* SPDX-License-Identifier: MIT */
/*
 * Device-server processes: start one per device (isola-blk, isola-rng) with
 * a connected vhost-user socket as fd 3, connect to external back-ends, and
 * report clearly how a server ended.
 */
#ifndef ISOLA_CORE_SUPERVISOR_H
#define ISOLA_CORE_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SUPERVISOR_SERVER_FD 3

/* Start build-dir/isola-<server> --socket-fd 3 args...; *sock is the core's
 * end.  Returns 0 or -errno with a sentence in err. */
int supervisor_spawn(const char *server, const char *const *args, pid_t *pid, int *sock, char *err,
		     size_t errlen);
/*
 * Ask the spawner now for a server that supervisor_spawn() will ask for
 * later with the same server and args, so it starts while the caller does
 * other work (the VM's memory and kernel).  supervisor_spawn() takes the
 * oldest such answer when its request is the same, and otherwise stops all
 * of them first.  Without a spawner: nothing.  0, or -errno (nothing sent).
 */
int supervisor_prespawn(const char *server, const char *const *args);
/* Stop (SIGKILL, reap) and forget the servers prespawned and not taken. */
void supervisor_cancel_prespawned(void);
/*
 * The VM's last close, which waits for the kernel (kvm_destroy_vm: its
 * srcu_barrier, 10-15 ms after a device's ioeventfd was registered), done by
 * the spawner instead of the core's exit: supervisor_hand_over(vm_fd) gives
 * the spawner a reference, which it holds unused; the core closes its own;
 * supervisor_hand_over(-1) then tells the spawner to close its one, the
 * last, while the core goes on to exit.  (Held until the core is gone
 * otherwise; a new one replaces it.)  The destruction then overlaps the
 * core's exit instead of following it, and when it has unregistered the
 * VM's memory notifier first, the core's exit_mmap has no notifier left to
 * wait for.  Without a spawner: nothing.
 */
void supervisor_hand_over(int fd);
/* Fork the spawner, which from now on starts the servers for
 * supervisor_spawn(); call before the VM is created and before any thread or
 * seccomp filter exists (core/seccomp.h).  0 or -errno with a sentence. */
int supervisor_spawner_start(char *err, size_t errlen);
/* Open the server binaries next to isola (O_PATH), for a spawner that will
 * run inside --jail where their paths are not visible; call before
 * jail_enter() and supervisor_spawner_start(); a missing one is refused
 * when it is asked for. */
void supervisor_open_servers(void);
/*
 * The binary the next supervisor_spawn(server) runs: isola-SERVER next to
 * isola, looked up at each start (so a file replaced on disk, e.g. by a
 * package upgrade's rename, is what the next server runs).  Call once
 * before the main thread's seccomp filter (the directory is read then and
 * kept).  0, -EPERM inside --jail (the spawner runs the file it opened
 * before entering the jail, whatever is on disk now), or -errno.
 */
int supervisor_server_binary(const char *server, char *path, size_t len);
/* Servers are started with --user UID:GID from now on (isola --jail). */
void supervisor_set_server_user(uid_t uid, gid_t gid);
/* Connect to a vhost-user back-end listening on path. */
int supervisor_connect(const char *path, int *sock, char *err, size_t errlen);
/* Describe a wait status: "exited with status 1", "killed by SIGSYS (...)". */
void supervisor_describe_status(int status, char *buf, size_t len);

#endif
