// SPDX-License-Identifier: MIT
/*
 * The main() of every device server (lib/server_main.h): common options,
 * socket, sandbox, run.  The order of the steps is lib/sandbox.h's: what
 * the device opens is opened before the namespaces, what needs syscalls
 * the filter refuses is created between sandbox_isolate() and
 * sandbox_lock().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/server_main.h"

#ifdef __SANITIZE_ADDRESS__
/* ASan builds of the device servers: LeakSanitizer's check at a normal exit
 * stops the world with prctl and ptrace, which the server's seccomp list
 * refuses (the process would die of SIGSYS once its front-end hung up).
 * The core's ASan build keeps its leak check; this file is in servers
 * only. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

#define SERVER_HELP_COLUMN 28 /* where an option's help text starts */
#define SERVER_USAGE_WIDTH 80 /* the usage lines wrap before this */
#define SERVER_MAX_FD (1 << 20)
/* sandbox_close_fds_except() keeps at most 64 fds */
#define SERVER_MAX_KEEP 64

static int parse_socket(void *target, const struct server_option *option, const char *value)
{
	(void)option;
	((struct server_args *)target)->socket_path = value;
	return 0;
}

static int parse_socket_fd(void *target, const struct server_option *option, const char *value)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(value, &end, 10);
	if (errno || *end || !*value || fd < 0 || fd > SERVER_MAX_FD) {
		log_error("%s %s: not a file descriptor number", option->name, value);
		return -EINVAL;
	}
	((struct server_args *)target)->socket_fd = (int)fd;
	return 0;
}

static int parse_user(void *target, const struct server_option *option, const char *value)
{
	struct server_args *args = target;

	/* the spawner appends its own --user last (core/supervisor.c): a
	 * second one must not quietly override or be overridden */
	if (args->user_given) {
		log_error("%s given twice", option->name);
		return -EINVAL;
	}
	if (sandbox_parse_user(value, &args->uid, &args->gid)) {
		log_error("%s %s: expected UID or UID:GID (numbers)", option->name, value);
		return -EINVAL;
	}
	args->user_given = true;
	return 0;
}

static int parse_no_sandbox(void *target, const struct server_option *option, const char *value)
{
	(void)option;
	(void)value;
	((struct server_args *)target)->sandbox = false;
	return 0;
}

static int parse_verbose(void *target, const struct server_option *option, const char *value)
{
	(void)target;
	(void)option;
	(void)value;
	log_set_level(LOG_LEVEL_DEBUG);
	return 0;
}

static int parse_test_forbidden(void *target, const struct server_option *option, const char *value)
{
	(void)option;
	(void)value;
	((struct server_args *)target)->test_forbidden_syscall = true;
	return 0;
}

/* Before the device's options in --help; their hooks get struct server_args. */
static const struct server_option socket_options[] = {
    {"--socket", "PATH", false,
     "listen on a Unix socket; serve one front-end at a\n"
     "time, accepting again after it disconnects",
     parse_socket},
    {"--socket-fd", "N", false,
     "use inherited fd N: a connected socket (served\n"
     "once) or a listening one",
     parse_socket_fd},
};

/* After the device's options; --help (no hook) last. */
static const struct server_option tail_options[] = {
    {"--user", "UID[:GID]", false,
     "as root: become this user once the sandbox is\n"
     "built (isola --jail passes its own)",
     parse_user},
    {"--no-sandbox", NULL, false, "no namespaces, fd pruning or seccomp (debugging)",
     parse_no_sandbox},
    {"--verbose", NULL, false,
     "debug lines too (isola-blk: what each ring's busy-poll\n"
     "did, for tuning --poll-us)",
     parse_verbose},
    {"--test-forbidden-syscall", NULL, false, "after sandboxing, make a forbidden syscall (tests)",
     parse_test_forbidden},
    {"--help", NULL, false, "this text (also -h)", NULL},
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SERVER_ALL_OPTIONS                                                                         \
	(ARRAY_SIZE(socket_options) + SERVER_MAX_OPTIONS + ARRAY_SIZE(tail_options))

/* Every option in --help order; returns how many, or -EINVAL for a table
 * this file cannot serve (too long, a name without its dashes). */
static int all_options(const struct server_def *def, const struct server_option **all)
{
	unsigned n = 0, nr_device = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(socket_options); i++)
		all[n++] = &socket_options[i];
	for (const struct server_option *o = def->options; o && o->name; o++) {
		if (nr_device++ == SERVER_MAX_OPTIONS || strncmp(o->name, "--", 2) || !o->name[2] ||
		    !o->parse) {
			log_error("%s: bad option table at '%s'", def->name, o->name);
			return -EINVAL;
		}
		all[n++] = o;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(tail_options); i++)
		all[n++] = &tail_options[i];
	return (int)n;
}

static bool is_socket_option(const struct server_option *o)
{
	return o >= socket_options && o < socket_options + ARRAY_SIZE(socket_options);
}

static bool is_device_option(const struct server_option *o)
{
	return !is_socket_option(o) &&
	       !(o >= tail_options && o < tail_options + ARRAY_SIZE(tail_options));
}

/* Append word to the usage, starting a new indented line where the line
 * would grow past SERVER_USAGE_WIDTH (the old hand-written usage lines
 * broke there); *column is the current line's length. */
static void usage_word(FILE *out, const char *word, unsigned indent, unsigned *column)
{
	if (*column + 1 + strlen(word) > SERVER_USAGE_WIDTH) {
		fprintf(out, "\n%*s", (int)indent, "");
		*column = indent;
	} else {
		fputc(' ', out);
		(*column)++;
	}
	fputs(word, out);
	*column += (unsigned)strlen(word);
}

void server_usage(const struct server_def *def, FILE *out)
{
	const struct server_option *all[SERVER_ALL_OPTIONS];
	int n = all_options(def, all);
	unsigned column, indent;
	char word[128];

	if (n < 0)
		return;
	column = (unsigned)fprintf(out, "usage: %s", def->name);
	indent = column + 1;
	usage_word(out, "(--socket PATH | --socket-fd N)", indent, &column);
	for (int i = 0; i < n; i++) {
		const struct server_option *o = all[i];

		if (is_socket_option(o) || !strcmp(o->name, "--help"))
			continue;
		snprintf(word, sizeof(word), "%s%s%s%s%s", o->required ? "" : "[", o->name,
			 o->value ? " " : "", o->value ? o->value : "", o->required ? "" : "]");
		usage_word(out, word, indent, &column);
	}
	fprintf(out, "\n%s", def->description ? def->description : "");
	for (int i = 0; i < n; i++) {
		const char *help = all[i]->help ? all[i]->help : "";
		int width = fprintf(out, "  %s%s%s", all[i]->name, all[i]->value ? " " : "",
				    all[i]->value ? all[i]->value : "");

		/* one line per '\n' of the help, all in the help column */
		for (;;) {
			const char *eol = strchrnul(help, '\n');

			fprintf(out, "%*s%.*s\n",
				width < SERVER_HELP_COLUMN - 1 ? SERVER_HELP_COLUMN - width : 1, "",
				(int)(eol - help), help);
			if (!*eol)
				break;
			help = eol + 1;
			width = 0;
		}
	}
}

int server_parse_args(int argc, char **argv, const struct server_def *def, void *device,
		      struct server_args *args)
{
	const struct server_option *all[SERVER_ALL_OPTIONS];
	struct option longopts[SERVER_ALL_OPTIONS + 1];
	bool seen[SERVER_ALL_OPTIONS] = {false};
	int n = all_options(def, all), opt;

	*args = (struct server_args){.socket_fd = -1, .sandbox = true};
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		longopts[i] =
		    (struct option){all[i]->name + 2,
				    all[i]->value ? required_argument : no_argument, NULL, 256 + i};
	longopts[n] = (struct option){0};
	/* ':' first: a missing value is told from an unknown option; the
	 * messages are ours (getopt's would carry argv[0], a path or "3") */
	opterr = 0;
	optind = 0; /* glibc: start over (the unit tests parse many times) */
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const struct server_option *o;

		if (opt == ':') {
			log_error("%s needs a value (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (opt == '?') {
			if (optopt >= 256)
				/* getopt_long's '?' for a known long option: it
				 * was given a value it does not take */
				log_error("%s takes no value (see --help)", argv[optind - 1]);
			else if (optopt > 0)
				log_error("unknown option '-%c' (see --help)", optopt);
			else
				log_error("unknown option '%s' (see --help)", argv[optind - 1]);
			server_usage(def, stderr);
			return -EINVAL;
		}
		if (opt == 'h' || !all[opt - 256]->parse) {
			server_usage(def, stdout);
			return 1;
		}
		o = all[opt - 256];
		seen[opt - 256] = true;
		if (o->parse(is_device_option(o) ? device : args, o, o->value ? optarg : NULL))
			return -EINVAL;
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (!args->socket_path == (args->socket_fd < 0)) {
		log_error("give exactly one of --socket PATH or --socket-fd N (see --help)");
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		if (all[i]->required && !seen[i]) {
			log_error("%s %s is required (see --help)", all[i]->name,
				  all[i]->value ? all[i]->value : "");
			return -EINVAL;
		}
	}
	return 0;
}

/* SIGUSR1: log each running ring's state (vhost_user_backend_dump; the
 * sandbox's waiting parent forwards the signal).  The handler only writes
 * the dump eventfd: async-signal-safe, and the socket thread, which owns
 * the guest memory mappings, formats the lines. */
static struct vhost_user_backend *server_dump_backend;

static void server_dump_signal(int sig)
{
	int saved = errno;

	(void)sig;
	if (server_dump_backend)
		vhost_user_backend_request_dump(server_dump_backend);
	errno = saved;
}

static int server_dump_on_sigusr1(struct vhost_user_backend *be)
{
	struct sigaction sa = {.sa_handler = server_dump_signal, .sa_flags = SA_RESTART};

	server_dump_backend = be;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGUSR1, &sa, NULL) < 0 ? -errno : 0;
}

/* Close every fd but the device's, the socket, the rings' stop eventfds
 * and the dump eventfd; then no_new_privs and the seccomp filter.  0 or -errno. */
static int lock_down(const struct server_def *def, void *device,
		     const struct vhost_user_backend *be, int socket_fd, char *err, size_t errlen)
{
	unsigned num_queues = be->ops->num_queues, n = 0;
	int keep[SERVER_MAX_KEEP];

	if (def->keep_fds)
		n = def->keep_fds(device, keep, SERVER_MAX_KEEP - 2 - num_queues);
	keep[n++] = socket_fd;
	keep[n++] = be->dump_fd;
	for (unsigned i = 0; i < num_queues; i++)
		keep[n++] = be->queues[i].stop_fd;
	return sandbox_lock(keep, n, def->allowlist, err, errlen);
}

int server_main(int argc, char **argv, const struct server_def *def, void *device)
{
	struct vhost_user_backend be = {0}; /* destroy is a no-op until init */
	struct server_backend backend;
	struct server_args args;
	int fd = -1, ret, status = 1;
	char err[256];

	log_set_program(def->name);
	ret = server_parse_args(argc, argv, def, device, &args);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (args.user_given)
		sandbox_set_user(args.uid, args.gid);
	if (def->create) {
		/* with --user (isola --jail): what the device opens is opened as that user */
		if (sandbox_files_as_user(true) < 0) {
			log_error("--user: cannot take the user's file permissions");
			return 1;
		}
		ret = def->create(device, err, sizeof(err));
		sandbox_files_as_user(false);
		if (ret) {
			log_error("%s", err);
			return 1;
		}
	}
	fd = args.socket_fd;
	if (args.socket_path) {
		fd = vhost_user_backend_listen(args.socket_path);
		if (fd < 0) {
			log_error("socket %s: %s", args.socket_path, strerror(-fd));
			goto out;
		}
	}
	if (args.sandbox && sandbox_isolate(def->name, err, sizeof(err)) < 0) {
		log_error("sandbox: %s (or run with --no-sandbox)", err);
		goto out;
	}
	backend = (struct server_backend){.device = device};
	if (def->prepare(device, &backend, err, sizeof(err))) {
		log_error("%s", err);
		goto out;
	}
	if (!backend.ops) {
		log_error("back-end setup: the device gave no ops");
		goto out;
	}
	ret = vhost_user_backend_init(&be, backend.ops, backend.device);
	if (ret) {
		log_error("back-end setup: %s", strerror(-ret));
		goto out;
	}
	ret = server_dump_on_sigusr1(&be);
	if (ret) {
		log_error("SIGUSR1 handler: %s", strerror(-ret));
		goto out;
	}
	if (args.sandbox) {
		if (lock_down(def, device, &be, fd, err, sizeof(err)) < 0) {
			log_error("sandbox: %s (or run with --no-sandbox)", err);
			goto out;
		}
		log_info("sandboxed: %u syscalls allowed", sandbox_allowed_count());
	}
	if (args.test_forbidden_syscall)
		sandbox_test_forbidden_syscall();
	if (def->started)
		def->started(device);
	ret = vhost_user_backend_run(&be, fd);
	if (ret)
		log_error("serving: %s", strerror(-ret));
	else
		status = 0;
out:
	server_dump_backend = NULL;
	vhost_user_backend_destroy(&be);
	if (def->destroy)
		def->destroy(device);
	if (fd >= 0)
		close(fd);
	return status;
}
