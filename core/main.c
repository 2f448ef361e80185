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
	       "\n"
	       "Options:\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  print the version and exit\n"
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
			in->pending_len = console_filter_escape(in, in->pending, in->pending_len, &quit);
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

static void serve_vm(struct vm *vm, const struct vm_config *cfg, int signal_fd)
{
	struct console_input in = {.fd = -1};
	bool input_open = cfg->console == CONSOLE_STDIO;
	int timer_fd = -1;

	if (input_open) {
		in.fd = STDIN_FILENO;
		in.is_tty = isatty(STDIN_FILENO);
	}
	if (cfg->timeout_seconds) {
		struct itimerspec its = {.it_value = {.tv_sec = (time_t)cfg->timeout_seconds}};

		timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (timer_fd >= 0)
			timerfd_settime(timer_fd, 0, &its, NULL);
	}
	while (atomic_load(&vm->exit_status) < 0) {
		bool want_input = input_open && in.pending_off == in.pending_len;
		struct pollfd fds[6 + VM_MAX_DEVICES] = {
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
			fds[6 + i] = (struct pollfd){.fd = vm->devices[i].sock, .events = POLLIN | POLLRDHUP};
		ret = poll(fds, 6 + vm->nr_devices, -1);
		if (ret < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN)
			handle_signal(vm, signal_fd);
		if (fds[2].revents & POLLIN)
			vm_request_stop(vm, ISOLA_EXIT_TIMEOUT, "guest timed out after %u s; stopped",
					cfg->timeout_seconds);
		if (fds[5].revents & POLLIN)
			vm_serve_devices(vm);
		for (unsigned i = 0; i < vm->nr_devices; i++)
			if (fds[6 + i].revents)
				vm_device_lost(vm, i, "its back-end closed the vhost-user connection");
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
	if (timer_fd >= 0)
		close(timer_fd);
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

static int cmd_run(int argc, char **argv)
{
	static struct vm vm; /* large: keep it off the stack */
	struct vm_config cfg;
	char err[512] = "";
	int console_fd, signal_fd, status, ret;
	sigset_t set, stop_set;

	config_defaults(&cfg);
	ret = config_parse_run_args(&cfg, argc, argv, err, sizeof(err));
	if (ret == 1)
		return 0;
	if (ret) {
		log_error("%s", err);
		return ISOLA_EXIT_VMM_ERROR;
	}
	console_fd = open_console_output(&cfg);
	if (console_fd == -1) {
		log_error("--console file:%s: %s", cfg.console_path, strerror(errno));
		return ISOLA_EXIT_VMM_ERROR;
	}
	block_stop_signals(&set);
	stop_set = set;
	sigdelset(&stop_set, VCPU_KICK_SIGNAL);
	signal_fd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN); /* a closed console reader must not kill the VMM */

	ret = vm_create(&vm, &cfg, console_fd >= 0 ? console_fd : -1, err, sizeof(err));
	if (!ret && cfg.console == CONSOLE_STDIO)
		console_enter_raw(STDIN_FILENO);
	if (!ret)
		ret = vm_start(&vm, err, sizeof(err));
	if (!ret)
		serve_vm(&vm, &cfg, signal_fd);
	else
		vm_request_stop(&vm, ISOLA_EXIT_VMM_ERROR, "%s", err);

	status = atomic_load(&vm.exit_status);
	vm_destroy(&vm);
	console_restore();
	if (status == ISOLA_EXIT_VMM_ERROR || status == ISOLA_EXIT_GUEST_CRASH)
		log_error("%s", vm.exit_message);
	else
		log_info("%s", vm.exit_message);
	if (console_fd > STDERR_FILENO)
		close(console_fd);
	if (signal_fd >= 0)
		close(signal_fd);
	return status;
}

int main(int argc, char **argv)
{
	log_set_program("isola");
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
		return cmd_run(argc - 1, argv + 1);
	log_error("unknown command '%s'; see 'isola --help'", argv[1]);
	return ISOLA_EXIT_VMM_ERROR;
}
