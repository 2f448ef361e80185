// SPDX-License-Identifier: MIT
/*
 * isola: the story of a VM's life, top to bottom: parse the configuration,
 * create the VM (memory, irqchip, devices, kernel), start the vCPUs, serve
 * the console, signals and timeout until the VM stops, tear it all down, and
 * exit with a status that says why it stopped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/console.h"
#include "core/control.h"
#include "core/hugepages.h"
#include "core/jail.h"
#include "lib/sandbox.h"
#include "core/seccomp.h"
#include "core/supervisor.h"
#include "core/vm.h"
#include "isola/abi.h"
#include "lib/log.h"

#ifndef ISOLA_VERSION
#define ISOLA_VERSION "0.1.0"
#endif

static void print_help(void)
{
	printf("Usage: isola COMMAND [OPTION]...\n"
	       "isola is a small, fast virtual machine monitor on Linux KVM.\n"
	       "\n"
	       "Commands:\n"
	       "  run        boot a kernel in a new VM (see 'isola run --help')\n"
	       "  --api-sock PATH [--config-file FILE]\n"
	       "             serve the Firecracker-compatible API on PATH (docs/api.md)\n"
	       "  --config-file FILE\n"
	       "             boot from a JSON configuration in the API's schema\n"
	       "\n"
	       "Options:\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  print the version and exit\n"
	       "  --no-seccomp   with any command: no seccomp filters on the VMM's threads\n"
	       "                 (for debugging with strace or gdb; see docs/security.md)\n"
	       "  --jail DIR     with any command: run the VMM chrooted in DIR, in its own\n"
	       "                 mount/IPC/UTS/network namespaces, as an unprivileged user,\n"
	       "                 with only /dev/kvm in its /dev (needs root; every path given\n"
	       "                 to isola is then inside DIR; see docs/security.md)\n"
	       "  --jail-user UID[:GID]\n"
	       "                 the jail's user and group (required with --jail: one\n"
	       "                 per VM, not root)\n"
	       "\n"
	       "Example:\n"
	       "  isola run --kernel build/guests/hello.elf --memory 256M --cpus 2\n"
	       "\n"
	       "The exit status says why the VM stopped; 'isola run --help' lists them.\n");
}

static int open_console_output(const struct vm_config *cfg)
{
	switch (cfg->console) {
	case CONSOLE_STDIO:
		return STDOUT_FILENO;
	case CONSOLE_FILE:
		return open(cfg->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	default:
		return -2; /* none: output discarded */
	}
}

/* Move pending console bytes into the UART; returns false on Ctrl-A x. */
static bool console_pump(struct vm *vm, struct console_input *in, bool *input_open)
{
	bool quit = false;

	if (in->pending_off == in->pending_len && *input_open) {
		ssize_t n = read(in->fd, in->pending, sizeof(in->pending));

		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				*input_open = false; /* EOF: the guest just sees no more input */
			return true;
		}
		in->pending_off = 0;
		in->pending_len = (size_t)n;
		if (in->is_tty)
			in->pending_len =
			    console_filter_escape(in, in->pending, in->pending_len, &quit);
		if (quit) {
			vm_request_stop(vm, ISOLA_EXIT_STOPPED, "stopped by Ctrl-A x");
			return false;
		}
	}
	in->pending_off += serial_receive(&vm->serial, in->pending + in->pending_off,
					  in->pending_len - in->pending_off);
	return true;
}

static void handle_signal(struct vm *vm, int signal_fd)
{
	struct signalfd_siginfo si;

	while (read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			vm_reap_servers(vm);
		else
			vm_request_stop(vm, ISOLA_EXIT_STOPPED, "stopped by SIG%s",
					sigabbrev_np((int)si.ssi_signo) ?: "?");
	}
}

/* --timeout: one timer for the whole run, reboots included. */
static int start_timeout(const struct vm_config *cfg)
{
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)cfg->timeout_seconds}};
	int timer_fd;

	if (!cfg->timeout_seconds)
		return -1;
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (timer_fd >= 0)
		timerfd_settime(timer_fd, 0, &its, NULL);
	return timer_fd;
}

static void serve_vm(struct vm *vm, const struct vm_config *cfg, int signal_fd, int timer_fd)
{
	struct console_input in = {.fd = -1};
	bool input_open = cfg->console == CONSOLE_STDIO;
	int filter_ret;

	if (input_open) {
		in.fd = STDIN_FILENO;
		in.is_tty = isatty(STDIN_FILENO);
	}
	bool devices_waiting = false;

	/* Everything that needs more is done: the VM, its threads, the timer. */
	filter_ret = core_seccomp_enter(
	    cfg->reboot_on_reset ? CORE_THREAD_MAIN_REBOOT : CORE_THREAD_MAIN, 0);
	if (filter_ret) {
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR,
				"cannot install the main thread's seccomp filter: %s",
				strerror(-filter_ret));
		return;
	}
	while (atomic_load(&vm->exit_status) < 0) {
		bool want_input = input_open && in.pending_off == in.pending_len;
		struct pollfd fds[6 + 2 * VM_MAX_DEVICES] = {
		    {.fd = vm->stop_fd, .events = POLLIN},
		    {.fd = signal_fd, .events = POLLIN},
		    {.fd = timer_fd, .events = POLLIN},
		    {.fd = vm->rx_space_fd, .events = POLLIN},
		    {.fd = want_input ? in.fd : -1, .events = POLLIN},
		    {.fd = vm->device_work_fd, .events = POLLIN},
		};
		int ret;

		/* A back-end never speaks first on its socket: readable means
		 * it hung up (or broke the protocol). */
		for (unsigned i = 0; i < vm->nr_devices; i++)
			fds[6 + i] = (struct pollfd){.fd = vm->devices[i].sock,
						     .events = POLLIN | POLLRDHUP};
		/* A back-end stopped a ring the guest broke (SET_VRING_ERR). */
		for (unsigned i = 0; i < vm->nr_devices; i++)
			fds[6 + vm->nr_devices + i] =
			    (struct pollfd){.fd = vm->devices[i].err_fd, .events = POLLIN};
		/* A device whose back-end is away is retried every 100 ms. */
		ret = poll(fds, 6 + 2 * vm->nr_devices, devices_waiting ? 100 : -1);
		if (ret < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN)
			handle_signal(vm, signal_fd);
		if (fds[2].revents & POLLIN)
			vm_request_stop(vm, ISOLA_EXIT_TIMEOUT,
					"guest timed out after %u s; stopped",
					cfg->timeout_seconds);
		/* before the work: a reset queued meanwhile ends the broken rings */
		for (unsigned i = 0; i < vm->nr_devices; i++)
			if (fds[6 + vm->nr_devices + i].revents & POLLIN)
				vhost_device_ring_error(&vm->devices[i]);
		if (fds[5].revents & POLLIN)
			vm_serve_devices(vm);
		for (unsigned i = 0; i < vm->nr_devices; i++)
			if (fds[6 + i].revents && fds[6 + i].fd == vm->devices[i].sock)
				vm_device_lost(vm, i, NULL);
		devices_waiting = vm_retry_devices(vm);
		if (fds[3].revents & POLLIN) {
			uint64_t count;

			if (read(vm->rx_space_fd, &count, sizeof(count)) < 0) {
				/* nonblocking: spurious wake-ups are fine */
			}
		}
		if ((fds[4].revents & (POLLIN | POLLHUP | POLLERR)) || (fds[3].revents & POLLIN) ||
		    in.pending_off < in.pending_len) {
			if (in.fd >= 0 && !console_pump(vm, &in, &input_open))
				break;
		}
	}
}

static int block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGCHLD); /* device servers: reaped by the event loop */
	/* vCPU threads unblock this one for themselves. */
	sigaddset(set, VCPU_KICK_SIGNAL);
	return pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Create, start and serve a VM until it stops; returns the exit status.
 * on_started (may be NULL) hears whether the start worked. */
static int run_vm(struct vm *vm, const struct vm_config *cfg, int signal_fd,
		  struct vmm_control *ctl)
{
	char err[512] = "";
	int console_fd, status, ret, timer_fd;

	console_fd = open_console_output(cfg);
	if (console_fd == -1) {
		snprintf(err, sizeof(err), "--console file:%s: %s", cfg->console_path,
			 strerror(errno));
		if (ctl)
			vmm_control_start_done(ctl, -EINVAL, err);
		log_error("%s", err);
		return ISOLA_EXIT_VMM_ERROR;
	}
	ret = vm_create(vm, cfg, console_fd >= 0 ? console_fd : -1, NULL, err, sizeof(err));
	if (!ret && cfg->console == CONSOLE_STDIO)
		console_enter_raw(STDIN_FILENO);
	if (!ret)
		ret = vm_start(vm, err, sizeof(err));
	if (ctl && ret) {
		/* Through the API a failed start is an answer, not the end: the
		 * client may fix the configuration and start again. */
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "%s", err);
		vm_destroy(vm, NULL);
		console_restore();
		if (console_fd > STDERR_FILENO)
			close(console_fd);
		memset(vm, 0, sizeof(*vm)); /* vm_create expects a zeroed VM */
		log_error("InstanceStart failed: %s", err);
		vmm_control_start_done(ctl, ret, err);
		return -1;
	}
	if (ctl)
		vmm_control_start_done(ctl, ret, err);
	if (!ret)
		hugepages_hint(cfg); /* once: not again for a reboot */
	timer_fd = start_timeout(cfg);
	if (!ret)
		serve_vm(vm, cfg, signal_fd, timer_fd);
	else
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "%s", err);
	status = atomic_load(&vm->exit_status);
	while (status == ISOLA_EXIT_RESET && cfg->reboot_on_reset) {
		/* --on-reset reboot: a new VM on the same device back-ends,
		 * which the guest's drivers negotiate with again. */
		static struct vm_kept kept;

		char pids[128] = "";
		size_t at = 0;

		vm_destroy(vm, &kept);
		for (unsigned i = 0; i < kept.nr && at < sizeof(pids); i++)
			if (kept.pid[i] > 0)
				at += (size_t)snprintf(pids + at, sizeof(pids) - at, "%s%d",
						       at ? ", " : "", (int)kept.pid[i]);
		log_info("%s; rebooting on the same device servers%s%s%s", vm->exit_message,
			 at ? " (pids " : "", pids, at ? ")" : "");
		memset(vm, 0, sizeof(*vm));
		ret =
		    vm_create(vm, cfg, console_fd >= 0 ? console_fd : -1, &kept, err, sizeof(err));
		if (!ret)
			ret = vm_start(vm, err, sizeof(err));
		if (!ret)
			serve_vm(vm, cfg, signal_fd, timer_fd);
		else
			vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "reboot: %s", err);
		status = atomic_load(&vm->exit_status);
	}
	if (timer_fd >= 0)
		close(timer_fd);
	if (ctl)
		vmm_control_set_state(ctl, API_STATE_STOPPED);

	/* the VM's last close waits for the kernel; let the spawner do it
	 * while isola exits (supervisor.h) */
	supervisor_hand_over(vm->vm_fd);
	vm_destroy(vm, NULL);
	supervisor_hand_over(-1);
	console_restore();
	if (status == ISOLA_EXIT_VMM_ERROR || status == ISOLA_EXIT_GUEST_CRASH)
		log_error("%s", vm->exit_message);
	else
		log_info("%s", vm->exit_message);
	if (console_fd > STDERR_FILENO)
		close(console_fd);
	return status;
}

static int stop_signal_fd(void)
{
	sigset_t set, stop_set;

	block_stop_signals(&set);
	stop_set = set;
	sigdelset(&stop_set, VCPU_KICK_SIGNAL);
	signal(SIGPIPE, SIG_IGN); /* a closed console reader must not kill the VMM */
	return signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Options of the process rather than of the VM, for every command. */
struct process_options {
	bool no_seccomp;
	struct jail_config jail;
	bool bad; /* said why already */
};

/* Take the process options out of argv (they may appear anywhere). */
static void take_process_options(int *argc, char **argv, struct process_options *opts)
{
	int out = 1;
	bool jail_user = false;

	for (int i = 1; i < *argc; i++) {
		bool takes_value = !strcmp(argv[i], "--jail") || !strcmp(argv[i], "--jail-user");

		if (!strcmp(argv[i], "--no-seccomp")) {
			opts->no_seccomp = true;
		} else if (takes_value && i + 1 >= *argc) {
			log_error("missing value for %s; see 'isola --help'", argv[i]);
			opts->bad = true;
		} else if (!strcmp(argv[i], "--jail")) {
			opts->jail.dir = argv[++i];
		} else if (!strcmp(argv[i], "--jail-user")) {
			jail_user = true;
			if (sandbox_parse_user(argv[++i], &opts->jail.uid, &opts->jail.gid)) {
				log_error("--jail-user %s: expected UID or UID:GID (numbers)",
					  argv[i]);
				opts->bad = true;
			}
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	*argc = out;
	if (opts->jail.dir && !jail_user && !opts->bad) {
		/* One user per VM: jails sharing a uid could signal each
		 * other's processes (there is no PID namespace). */
		log_error("--jail needs --jail-user UID[:GID]: give each VM a user and group of "
			  "its own (not root)");
		opts->bad = true;
	}
}

/*
 * Least privilege (core/seccomp.h, core/jail.h, docs/security.md): before the
 * first thread and before the VM exists, enter the jail (--jail), start the
 * device-server spawner, become the jail's user and compile the per-thread
 * seccomp filters.  cfg (NULL: not known yet): its device servers are
 * started ahead, to come up while the filters compile and the VM is built.  Returns false after saying why.
 */
static bool lock_down_process(const struct process_options *opts, const struct vm_config *cfg)
{
	char err[512];

	if (opts->jail.dir) {
		supervisor_open_servers();
		/* the servers become the jail's user once sandboxed, so the
		 * jailed VMM can still stop and restart them */
		supervisor_set_server_user(opts->jail.uid, opts->jail.gid);
		if (jail_enter(&opts->jail, err, sizeof(err)) ||
		    supervisor_spawner_start(err, sizeof(err)) ||
		    jail_drop_privileges(&opts->jail, err, sizeof(err))) {
			log_error("%s", err);
			return false;
		}
		if (cfg)
			vm_prespawn_servers(cfg);
	}
	if (opts->no_seccomp) {
		log_warn("--no-seccomp: the VMM's threads run without seccomp filters");
		return true;
	}
	if (!opts->jail.dir && supervisor_spawner_start(err, sizeof(err))) {
		log_error("%s; --no-seccomp runs without filters", err);
		return false;
	}
	/* the servers start while the filters compile */
	if (!opts->jail.dir && cfg)
		vm_prespawn_servers(cfg);
	if (core_seccomp_init(true, err, sizeof(err))) {
		log_error("%s; --no-seccomp runs without filters", err);
		return false;
	}
	return true;
}

static int cmd_run(int argc, char **argv, const struct process_options *opts)
{
	static struct vm vm; /* large: keep it off the stack */
	struct vm_config cfg;
	char err[512] = "";
	int signal_fd, status, ret;

	config_defaults(&cfg);
	ret = config_parse_run_args(&cfg, argc, argv, err, sizeof(err));
	if (ret == 1)
		return 0;
	if (ret) {
		log_error("%s", err);
		return ISOLA_EXIT_VMM_ERROR;
	}
	signal_fd = stop_signal_fd();
	if (!lock_down_process(opts, &cfg))
		return ISOLA_EXIT_VMM_ERROR;
	status = run_vm(&vm, &cfg, signal_fd, NULL);
	if (signal_fd >= 0)
		close(signal_fd);
	return status;
}

/* Before InstanceStart: wait for it, or for a signal. Returns false to exit. */
static bool wait_for_start(struct vmm_control *ctl, int signal_fd, struct vm_config *cfg)
{
	for (;;) {
		struct pollfd fds[] = {
		    {.fd = ctl->start_fd, .events = POLLIN},
		    {.fd = signal_fd, .events = POLLIN},
		};

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return false;
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(signal_fd, &si, sizeof(si)) == sizeof(si) &&
			    si.ssi_signo != SIGCHLD) {
				log_info("stopped by SIG%s before the VM started",
					 sigabbrev_np((int)si.ssi_signo) ?: "?");
				return false;
			}
		}
		if ((fds[0].revents & POLLIN) && vmm_control_take_start(ctl, cfg))
			return true;
	}
}

static void print_vmm_help(void)
{
	printf("Usage: isola --api-sock PATH [--config-file FILE]\n"
	       "       isola --config-file FILE\n"
	       "Run a VMM driven by the Firecracker-compatible HTTP API on a Unix socket,\n"
	       "or booted straight from a JSON configuration in the same schema\n"
	       "(docs/api.md).  With both, the VM boots from FILE and the API serves it.\n"
	       "\n"
	       "  --api-sock PATH     serve the API on a new Unix socket at PATH (it must\n"
	       "                      not exist; it is removed on exit)\n"
	       "  --config-file FILE  boot from FILE at once\n"
	       "  --no-seccomp        no seccomp filters on the VMM's threads (debugging)\n"
	       "  --jail DIR          run chrooted in DIR as an unprivileged user (see\n"
	       "                      'isola --help'); PATH and FILE are then inside DIR\n"
	       "  --jail-user UID[:GID]  the jail's user (required with --jail)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "The process exits when the VM stops, with the statuses of 'isola run --help';\n"
	       "before InstanceStart, SIGINT/SIGTERM exit with status %d.\n",
	       ISOLA_EXIT_STOPPED);
}

static int cmd_vmm(int argc, char **argv, const struct process_options *opts)
{
	static struct vm vm;
	static struct vmm_control ctl;
	static struct vm_config cfg;
	const char *api_sock = NULL, *config_file = NULL;
	struct api_server *server = NULL;
	char err[512] = "";
	int signal_fd, status = ISOLA_EXIT_STOPPED;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			print_vmm_help();
			return 0;
		}
		if ((!strcmp(argv[i], "--api-sock") || !strcmp(argv[i], "--config-file")) &&
		    i + 1 < argc) {
			*(argv[i][2] == 'a' ? &api_sock : &config_file) = argv[i + 1];
			i++;
			continue;
		}
		log_error("%s '%s'; see 'isola --api-sock --help'",
			  argv[i][0] == '-' && (!strcmp(argv[i], "--api-sock") ||
						!strcmp(argv[i], "--config-file"))
			      ? "missing value for"
			      : "unknown option",
			  argv[i]);
		return ISOLA_EXIT_VMM_ERROR;
	}
	config_defaults(&cfg);
	signal_fd = stop_signal_fd();
	/* First: with --jail, the config file and its paths are inside the jail. */
	if (!lock_down_process(opts, NULL))
		return ISOLA_EXIT_VMM_ERROR;
	if (config_file && (api_config_from_file(&cfg, config_file, err, sizeof(err)) ||
			    api_config_finalize(&cfg, err, sizeof(err)))) {
		log_error("%s: %s", config_file, err);
		api_config_release(&cfg);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (vmm_control_init(&ctl, &vm)) {
		log_error("eventfd: %s", strerror(errno));
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (api_sock && api_server_start(&server, api_sock, config_file ? &cfg : NULL,
					 &vmm_control_ops, &ctl, err, sizeof(err))) {
		log_error("--api-sock %s: %s", api_sock, err);
		vmm_control_destroy(&ctl);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (config_file) {
		/* Boot at once, as firecracker --config-file does. */
		status = run_vm(&vm, &cfg, signal_fd, &ctl);
		if (status < 0)
			status = ISOLA_EXIT_VMM_ERROR;
	} else {
		status = ISOLA_EXIT_STOPPED;
		while (wait_for_start(&ctl, signal_fd, &cfg)) {
			status = run_vm(&vm, &cfg, signal_fd, &ctl);
			if (status >= 0)
				break;
			status = ISOLA_EXIT_STOPPED; /* start failed: wait for another */
		}
	}
	if (server)
		api_server_stop(server);
	vmm_control_destroy(&ctl);
	api_config_release(&cfg);
	if (signal_fd >= 0)
		close(signal_fd);
	return status;
}

int main(int argc, char **argv)
{
	struct process_options opts = {0};

	log_set_program("isola");
	take_process_options(&argc, argv, &opts);
	if (opts.bad)
		return ISOLA_EXIT_VMM_ERROR;
	/* Nothing the launcher left open goes into the jail (a directory fd
	 * would reach outside it). */
	if (opts.jail.dir)
		close_range(3, ~0u, 0);
	if (argc < 2) {
		log_error("no command; try 'isola run --kernel PATH', or see 'isola --help'");
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		print_help();
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("isola %s\n", ISOLA_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1, &opts);
	if (!strcmp(argv[1], "--api-sock") || !strcmp(argv[1], "--config-file"))
		return cmd_vmm(argc, argv, &opts);
	log_error("unknown command '%s'; see 'isola --help'", argv[1]);
	return ISOLA_EXIT_VMM_ERROR;
}
