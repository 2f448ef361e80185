/* SPDX-License-Identifier: MIT */
/*
 * The main() every device server shares (isola-blk, isola-rng): the
 * options the core and the user give every server, the socket, the sandbox
 * (lib/sandbox.h) and the vhost-user back-end's run loop.  A server is its
 * device plus a struct server_def: a table of its own options and a few
 * hooks, called in this order (docs/devices.md "Writing a device server"):
 *
 *	parse the options        each device option's parse hook
 *	create                   with --user's file permissions: open what
 *	                         the device serves (an image)
 *	listen on --socket PATH, or take the inherited --socket-fd N
 *	sandbox_isolate()        namespaces, empty root, become --user
 *	prepare                  io_uring rings ...; gives the back-end's ops
 *	vhost_user_backend_init
 *	sandbox_lock()           keeps the socket, the rings' stop eventfds
 *	                         and what keep_fds adds; seccomp with the
 *	                         base list plus def->allowlist
 *	started                  one log line, say
 *	vhost_user_backend_run   until the front-end is gone
 *	destroy
 */
#ifndef ISOLA_LIB_SERVER_MAIN_H
#define ISOLA_LIB_SERVER_MAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "lib/sandbox.h"
#include "lib/vhost_user_backend.h"

/* Device options per server (the core may pass only those listed in the
 * kind's row of devices/device_kind.c). */
#define SERVER_MAX_OPTIONS 16

/* One option of the device's own ("--image IMG"). */
struct server_option {
	const char *name;  /* "--image": with the dashes, as in messages */
	const char *value; /* "IMG": its value's name in --help; NULL: takes none */
	bool required;	   /* refused when absent: "--image IMG is required" */
	/* --help text after the option column; '\n' starts an indented line. */
	const char *help;
	/* Store the option: value is NULL for an option without one.  0, or
	 * -EINVAL after a log_error() line that names the option. */
	int (*parse)(void *device, const struct server_option *option, const char *value);
};

/* What the vhost-user back-end serves: its ops, and the pointer they are
 * given (server_main() sets it to the device it was given; a device may
 * give part of itself, e.g. isola-blk's struct blk). */
struct server_backend {
	const struct vhost_user_backend_ops *ops;
	void *device;
};

struct server_def {
	const char *name;		     /* "isola-rng": log prefix, process name, --help */
	const char *description;	     /* --help lines between the usage and the options */
	const struct server_option *options; /* ends at name NULL; NULL: none */
	/* What the seccomp filter allows beyond sandbox_base_syscalls:
	 * system calls, and ioctl requests (lib/sandbox.h; in the server's
	 * header, so tests/unit/test_seccomp.c installs the same filter).
	 * NULL: the base list alone. */
	const struct sandbox_allowlist *allowlist;
	/* Optional.  Before the socket and the sandbox, with --user's file
	 * permissions (sandbox_files_as_user): open what the device serves.
	 * 0 or -errno with a sentence in err. */
	int (*create)(void *device, char *err, size_t errlen);
	/* After sandbox_isolate(), before the lock and any thread: what
	 * needs syscalls the filter will refuse (io_uring_setup); then fill
	 * *backend.  0 or -errno with a sentence in err. */
	int (*prepare)(void *device, struct server_backend *backend, char *err, size_t errlen);
	/* Optional: the device's fds the lock must leave open (an image, its
	 * io_uring fds) into fds[max]; returns how many. */
	unsigned (*keep_fds)(void *device, int *fds, unsigned max);
	/* Optional: sandboxed, just before serving (a log line). */
	void (*started)(void *device);
	/* Optional: after serving, or after a failure once create succeeded
	 * (not after create failed: the process is ending). */
	void (*destroy)(void *device);
};

/* The common options, as parsed. */
struct server_args {
	const char *socket_path;     /* --socket PATH, or NULL */
	int socket_fd;		     /* --socket-fd N, or -1 */
	bool sandbox;		     /* false with --no-sandbox */
	bool test_forbidden_syscall; /* --test-forbidden-syscall */
	bool user_given;	     /* --user UID[:GID] */
	uid_t uid;
	gid_t gid;
};

/*
 * Parse argv: the common options into *args, the device's through their
 * parse hooks.  Returns 0 to run, 1 after printing --help to stdout, or
 * -EINVAL after a log_error() line naming what is wrong (an unknown option
 * also prints the usage to stderr).  Uses getopt_long (resets optind).
 */
int server_parse_args(int argc, char **argv, const struct server_def *def, void *device,
		      struct server_args *args);

/* The --help text: usage lines, the description, every option. */
void server_usage(const struct server_def *def, FILE *out);

/* The whole server: returns main()'s exit status (0, 1 failure, 2 usage). */
int server_main(int argc, char **argv, const struct server_def *def, void *device);

#endif
