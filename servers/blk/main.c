// SPDX-License-Identifier: MIT
/*
 * isola-blk: a raw disk image served as a virtio-blk device (virtio 1.2
 * §5.2) over vhost-user, sandboxed.  main() is the story: parse, open the
 * image and socket, isolate, set up io_uring, lock down, serve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "servers/blk/blk.h"

static bool user_given; /* a second --user is refused */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: isola-blk (--socket PATH | --socket-fd N) --image IMG [--readonly]\n"
		"                 [--id NAME] [--queues N] [--poll-us N] [--user UID[:GID]]\n"
		"                 [--no-sandbox] [--test-forbidden-syscall]\n"
		"A raw disk image served as a virtio-blk device (virtio 1.2 5.2) by a\n"
		"vhost-user back-end (QEMU's vhost-user-blk-pci, the isola core, ...).\n"
		"  --socket PATH             listen on a Unix socket; serve one front-end at a\n"
		"                            time, accepting again after it disconnects\n"
		"  --socket-fd N             use inherited fd N: a connected socket (served\n"
		"                            once) or a listening one\n"
		"  --image IMG               the raw image file or block device\n"
		"  --readonly                open it read-only; writes fail with IOERR\n"
		"  --id NAME                 the GET_ID serial, up to 20 bytes (default: the\n"
		"                            image's file name)\n"
		"  --queues N                request queues, 1 to 16 (default 1)\n"
		"  --poll-us N               a queue's thread busy-polls its ring and its I/O\n"
		"                            for up to N us (adaptive) before it sleeps;\n"
		"                            0 never (default %u; costs CPU for latency)\n"
		"  --user UID[:GID]          as root: become this user once the sandbox is\n"
		"                            built (isola --jail passes its own)\n"
		"  --no-sandbox              no namespaces, fd pruning or seccomp (debugging)\n"
		"  --test-forbidden-syscall  after sandboxing, make a forbidden syscall (tests)\n"
		"  --help                    this text\n",
		BLK_POLL_US_DEFAULT);
}

struct blk_args {
	const char *path, *image, *id;
	long fd;
	unsigned queues, poll_us;
	bool readonly, sandbox, test_forbidden;
};

static int parse_number(const char *opt, const char *text, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(text, &end, 10);
	if (errno || *end || !*text || *out < 0 || *out > max) {
		log_error("%s %s: want a number from 0 to %ld", opt, text, max);
		return -1;
	}
	return 0;
}

/* 0 to run, 1 done (--help), -1 bad usage. */
static int parse_args(int argc, char **argv, struct blk_args *a)
{
	static const struct option options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"socket-fd", required_argument, NULL, 'f'},
	    {"image", required_argument, NULL, 'i'},
	    {"readonly", no_argument, NULL, 'r'},
	    {"id", required_argument, NULL, 'd'},
	    {"queues", required_argument, NULL, 'q'},
	    {"poll-us", required_argument, NULL, 'p'},
	    {"user", required_argument, NULL, 'u'},
	    {"no-sandbox", no_argument, NULL, 'n'},
	    {"test-forbidden-syscall", no_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	long n;
	int opt;

	*a = (struct blk_args){
	    .fd = -1, .queues = 1, .poll_us = BLK_POLL_US_DEFAULT, .sandbox = true};
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			a->path = optarg;
			break;
		case 'f':
			if (parse_number("--socket-fd", optarg, 1 << 20, &a->fd))
				return -1;
			break;
		case 'i':
			a->image = optarg;
			break;
		case 'r':
			a->readonly = true;
			break;
		case 'd':
			if (!*optarg || strlen(optarg) > 20) {
				log_error("--id %s: an id is 1 to 20 bytes (virtio-blk GET_ID)",
					  optarg);
				return -1;
			}
			a->id = optarg;
			break;
		case 'q':
			if (parse_number("--queues", optarg, VHOST_USER_BACKEND_MAX_QUEUES, &n) ||
			    !n)
				return -1;
			a->queues = (unsigned)n;
			break;
		case 'p':
			if (parse_number("--poll-us", optarg, BLK_POLL_US_MAX, &n))
				return -1;
			a->poll_us = (unsigned)n;
			break;
		case 'u': {
			uid_t uid;
			gid_t gid;

			if (user_given) {
				log_error("--user given twice");
				return -1;
			}
			user_given = true;
			if (sandbox_parse_user(optarg, &uid, &gid)) {
				log_error("--user %s: expected UID or UID:GID (numbers)", optarg);
				return -1;
			}
			sandbox_set_user(uid, gid);
			break;
		}
		case 'n':
			a->sandbox = false;
			break;
		case 't':
			a->test_forbidden = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || !a->path == (a->fd < 0)) {
		log_error("give exactly one of --socket PATH or --socket-fd N (see --help)");
		return -1;
	}
	if (!a->image) {
		log_error("--image IMG is required (see --help)");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct vhost_user_backend be;
	struct blk_args a;
	static struct blk blk;
	char err[256];
	int fd, ret;

	log_set_program("isola-blk");
	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret > 0 ? 0 : 2;
	/* with --user (isola --jail): the image is opened as that user */
	if (sandbox_files_as_user(true) < 0) {
		log_error("--user: cannot take the user's file permissions");
		return 1;
	}
	ret = blk_open(&blk, a.image, a.readonly, a.id, a.queues, err, sizeof(err));
	sandbox_files_as_user(false);
	if (ret) {
		log_error("%s", err);
		return 1;
	}
	blk.poll_max_ns = a.poll_us * 1000u;
	fd = (int)a.fd;
	if (a.path) {
		fd = vhost_user_backend_listen(a.path);
		if (fd < 0) {
			log_error("socket %s: %s", a.path, strerror(-fd));
			return 1;
		}
	}
	if (a.sandbox && sandbox_isolate("isola-blk", err, sizeof(err)) < 0) {
		log_error("sandbox: %s (or run with --no-sandbox)", err);
		return 1;
	}
	if (blk_setup_rings(&blk, err, sizeof(err)) ||
	    (ret = vhost_user_backend_init(&be, &blk.ops, &blk))) {
		log_error("%s", ret ? strerror(-ret) : err);
		return 1;
	}
	if (a.sandbox) {
		int keep[2 + 4 * VHOST_USER_BACKEND_MAX_QUEUES + 2];
		unsigned n = blk_fds(&blk, keep, 2 + 3 * VHOST_USER_BACKEND_MAX_QUEUES);

		keep[n++] = fd;
		for (unsigned i = 0; i < blk.num_queues; i++)
			keep[n++] = be.queues[i].stop_fd;
		if (sandbox_lock(keep, n, blk_sandbox_syscalls,
				 sizeof(blk_sandbox_syscalls) / sizeof(blk_sandbox_syscalls[0]),
				 err, sizeof(err)) < 0) {
			log_error("sandbox: %s (or run with --no-sandbox)", err);
			return 1;
		}
		log_info("sandboxed: %u syscalls allowed", sandbox_allowed_count());
	}
	if (a.test_forbidden)
		sandbox_test_forbidden_syscall();
	log_info("serving %s (%llu sectors%s, %u queue%s)", a.image,
		 (unsigned long long)blk.capacity, a.readonly ? ", read-only" : "", blk.num_queues,
		 blk.num_queues == 1 ? "" : "s");
	ret = vhost_user_backend_run(&be, fd);
	vhost_user_backend_destroy(&be);
	blk_close(&blk);
	if (ret) {
		log_error("serving: %s", strerror(-ret));
		return 1;
	}
	return 0;
}
