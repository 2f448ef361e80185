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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/board.h"
#include "core/console.h"
#include "core/control.h"
#include "core/hugepages.h"
#include "core/config_vsock.h"
#include "core/jail.h"
#include "lib/evloop.h"
#include "lib/sandbox.h"
#include "core/seccomp.h"
#include "core/snapshot_restore.h"
#include "core/snapshot_cli.h"
#include "core/snapshot_devices.h"
#include "core/supervisor.h"
#include "core/version.h"
#include "core/vm.h"
#include "core/vmm_args.h"
#include "isola/abi.h"
#include "lib/log.h"

static void print_help(void)
{
	printf("Usage: isola COMMAND [OPTION]...\n"
	       "isola is a small, fast virtual machine monitor on Linux KVM.\n"
	       "\n"
	       "Commands:\n"
	       "  run        boot a kernel in a new VM (see 'isola run --help')\n"
	       "  snapshot --api-sock SOCK --state FILE --mem FILE\n"
	       "             snapshot the paused VM of the isola serving SOCK\n"
	       "  restore --state FILE --mem FILE [--console MODE] [--api-sock PATH]\n"
	       "             restore a snapshot in this new process and run it\n"
	       "             (see 'isola restore --help', docs/snapshot.md)\n"
	       "  --api-sock PATH [--config-file FILE]\n"
	       "             serve the Firecracker-compatible API on PATH (docs/api.md);\n"
	       "             Firecracker's other flags (--id, --no-api, --log-path, ...)\n"
	       "             are taken too: 'isola --api-sock --help' lists them\n"
	       "  --config-file FILE\n"
	       "             boot from a JSON configuration in the API's schema\n"
	       "\n"
	       "Options:\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  print the version line (Firecracker's API version, as\n"
	       "                 orchestrators parse it, then isola's own) and exit\n"
	       "  --no-seccomp   with any command: no seccomp filters on the VMM's threads\n"
	       "                 (for debugging with strace or gdb; see docs/security.md)\n"
	       "  --jail DIR     with any command: run the VMM chrooted in DIR, in its own\n"
	       "                 mount/IPC/UTS/network namespaces, as an unprivileged user,\n"
	       "                 with only /dev/kvm in its /dev (needs root; every path given\n"
	       "                 to isola is then inside DIR; see docs/security.md)\n"
	       "  --jail-user UID[:GID]\n"
	       "                 the jail's user and group (required with --jail: one\n"
	       "                 per VM, not root)\n"
	       "  --jail-netns PATH\n"
	       "                 the jail joins this network namespace (e.g.\n"
	       "                 /var/run/netns/NAME) instead of a new empty one: where\n"
	       "                 the taps of --net live (docs/net.md)\n"
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

/* SIGUSR2: live upgrade of every device server isola started, from the
 * binaries on disk now (device_set_upgrade; docs/devices.md "Live
 * upgrade").  As PATCH /drives does, not while paused: the new servers
 * would be handed running rings while the VM is meant to be still. */
static void upgrade_servers(struct vm *vm)
{
	unsigned upgraded = 0;
	char err[512];

	if (vm_is_paused(vm)) {
		log_warn("SIGUSR2: the VM is paused; resume it, then send SIGUSR2 again to upgrade "
			 "its device servers");
		return;
	}
	log_info("SIGUSR2: upgrading the device servers from their binaries on disk");
	if (device_set_upgrade(vm->devices, NULL, 0, &upgraded, err, sizeof(err)))
		log_warn("SIGUSR2: %u device server(s) upgraded; the others were not (the lines "
			 "above say why)",
			 upgraded);
	else
		log_info("SIGUSR2: %u device server(s) upgraded", upgraded);
}

static void handle_signal(struct vm *vm, int signal_fd)
{
	struct signalfd_siginfo si;

	while (read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			device_set_reap(vm->devices);
		else if (si.ssi_signo == SIGUSR2)
			upgrade_servers(vm);
		else if (si.ssi_signo == SIGUSR1)
			vm_log_vcpus(vm); /* core/vcpu_dump.c */
		else
			vm_request_stop(vm, ISOLA_EXIT_STOPPED, "stopped by SIG%s",
					sigabbrev_np((int)si.ssi_signo) ?: "?");
	}
}

/* --timeout: one deadline for the whole run, reboots included (0: none). */
static uint64_t timeout_deadline_ns(const struct vm_config *cfg)
{
	if (!cfg->timeout_seconds)
		return 0;
	return evloop_now_ns() + (uint64_t)cfg->timeout_seconds * 1000000000ull;
}

/*
 * Within one event-loop round the callbacks run in this order (evloop:
 * lower first), because some handling depends on what came before it.
 */
enum serve_order {
	SERVE_STOP_AND_SIGNALS, /* SIGCHLD may restart a device before its socket's event */
	SERVE_RING_ERRORS, /* before the work: a reset queued meanwhile ends the broken rings */
	SERVE_DEVICE_WORK,
	SERVE_LOST_SOCKETS, /* after the work, which may itself have reconnected a device */
	SERVE_CONSOLE,
};

/* While a device's back-end is away, it is retried this often. */
#define SERVE_DEVICE_RETRY_NS (100 * 1000000ull)

struct serve_state;

/* the fixed fds (and the API's requests), and two per device */
_Static_assert(6 + 2 * DEVICE_SET_MAX <= EVLOOP_MAX_FDS, "the event loop holds every fd");

struct serve_state {
	struct vm *vm;
	const struct vm_config *cfg;
	struct evloop loop;
	struct console_input in;
	bool input_open;
	int input_id;
	int retry_timer_id; /* 0 unless a device waits for its back-end */
};

static void on_stop_fd(void *opaque, int fd, short revents)
{
	/* Only wakes the loop: serve_vm's loop reads the exit status. */
	(void)opaque;
	(void)fd;
	(void)revents;
}

static void on_signal(void *opaque, int fd, short revents)
{
	struct serve_state *serve = opaque;

	(void)revents;
	handle_signal(serve->vm, fd);
}

static void on_timeout(void *opaque)
{
	struct serve_state *serve = opaque;

	vm_request_stop(serve->vm, ISOLA_EXIT_TIMEOUT, "guest timed out after %u s; stopped",
			serve->cfg->timeout_seconds);
}

static void on_retry_timer(void *opaque)
{
	/* Only wakes the loop: the retry itself runs after every round
	 * (serve_round_end), so a device is tried once per round at most. */
	(void)opaque;
}

static void on_device_work(void *opaque, int fd, short revents)
{
	struct serve_state *serve = opaque;

	(void)fd;
	if (revents & POLLIN)
		vm_serve_devices(serve->vm);
}

static void serve_console(struct serve_state *serve)
{
	if (serve->in.fd >= 0)
		console_pump(serve->vm, &serve->in, &serve->input_open);
}

/* The UART's RX FIFO has room again: pending console input may go in. */
static void on_rx_space(void *opaque, int fd, short revents)
{
	struct serve_state *serve = opaque;
	uint64_t count;

	if (revents & POLLIN) {
		if (read(fd, &count, sizeof(count)) < 0) {
			/* nonblocking: spurious wake-ups are fine */
		}
		serve_console(serve);
	}
}

static void on_console_input(void *opaque, int fd, short revents)
{
	(void)fd;
	(void)revents; /* POLLIN, or a hang-up: the read says which */
	serve_console(opaque);
}

/*
 * After every round: retry devices whose back-end is away (and keep the
 * retry timer armed while one waits), follow reconnected sockets, feed
 * console input still pending, and poll the console only when there is
 * room for more.  0 or -errno.
 */
static int serve_round_end(struct serve_state *serve)
{
	bool devices_waiting = device_set_retry(serve->vm->devices);
	bool want_input;
	int ret;

	if (devices_waiting && !serve->retry_timer_id) {
		ret = evloop_add_timer(&serve->loop, SERVE_DEVICE_RETRY_NS, SERVE_DEVICE_RETRY_NS,
				       on_retry_timer, serve);
		if (ret < 0)
			return ret;
		serve->retry_timer_id = ret;
	} else if (!devices_waiting && serve->retry_timer_id) {
		evloop_cancel_timer(&serve->loop, serve->retry_timer_id);
		serve->retry_timer_id = 0;
	}
	ret = device_set_watch(serve->vm->devices, &serve->loop, SERVE_RING_ERRORS,
			       SERVE_LOST_SOCKETS);
	if (ret)
		return ret;
	if (serve->in.pending_off < serve->in.pending_len)
		serve_console(serve);
	want_input = serve->input_open && serve->in.pending_off == serve->in.pending_len;
	return evloop_modify_fd(&serve->loop, serve->input_id, serve->in.fd,
				want_input ? POLLIN : 0);
}

/* The fds and timers every round waits on; 0 or -errno (-ENOSPC). */
static int serve_register(struct serve_state *serve, int signal_fd, uint64_t timeout_ns)
{
	struct evloop *loop = &serve->loop;
	struct vm *vm = serve->vm;
	const struct {
		int fd;
		int order;
		evloop_fd_fn fn;
	} fds[] = {
	    {vm->stop_fd, SERVE_STOP_AND_SIGNALS, on_stop_fd},
	    {signal_fd, SERVE_STOP_AND_SIGNALS, on_signal},
	    {vm->devices->work_fd, SERVE_DEVICE_WORK, on_device_work},
	    {vm->rx_space_fd, SERVE_CONSOLE, on_rx_space},
	};
	int ret;

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		ret = evloop_add_fd(loop, fds[i].fd, POLLIN, fds[i].order, fds[i].fn, serve);
		if (ret < 0)
			return ret;
	}
	/* polled only while the last input went into the UART (serve_round_end) */
	ret = evloop_add_fd(loop, serve->in.fd, 0, SERVE_CONSOLE, on_console_input, serve);
	if (ret < 0)
		return ret;
	serve->input_id = ret;
	if (timeout_ns) {
		ret = evloop_add_timer_at(loop, timeout_ns, 0, on_timeout, serve);
		if (ret < 0)
			return ret;
	}
	return device_set_watch(vm->devices, loop, SERVE_RING_ERRORS, SERVE_LOST_SOCKETS);
}

static void serve_vm(struct vm *vm, const struct vm_config *cfg, int signal_fd, uint64_t timeout_ns,
		     struct vmm_control *ctl)
{
	static struct serve_state serve; /* one VM at a time; ~4 KiB of tables */
	int ret;

	serve = (struct serve_state){.vm = vm, .cfg = cfg, .in = {.fd = -1}};
	evloop_init(&serve.loop);
	serve.input_open = cfg->console == CONSOLE_STDIO;
	if (serve.input_open) {
		serve.in.fd = STDIN_FILENO;
		serve.in.is_tty = isatty(STDIN_FILENO);
	}
	device_set_unwatch(vm->devices); /* a new loop: nothing is registered in it */
	ret = serve_register(&serve, signal_fd, timeout_ns);
	/* the API's device changes (PATCH /network-interfaces) */
	if (!ret && ctl)
		ret = vmm_control_watch_requests(ctl, &serve.loop, SERVE_DEVICE_WORK, vm->devices);
	if (ret < 0) {
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "event loop: %s", strerror(-ret));
		return;
	}

	/* Everything that needs more is done: the VM, its threads, the loop. */
	ret = core_seccomp_enter(cfg->reboot_on_reset ? CORE_THREAD_MAIN_REBOOT : CORE_THREAD_MAIN,
				 0);
	if (ret) {
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR,
				"cannot install the main thread's seccomp filter: %s",
				strerror(-ret));
		return;
	}
	while (atomic_load(&vm->exit_status) < 0) {
		ret = serve_round_end(&serve);
		if (ret >= 0)
			ret = evloop_run_once(&serve.loop, -1);
		if (ret < 0) {
			vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "event loop: %s", strerror(-ret));
			break;
		}
	}
	device_set_unwatch(vm->devices);
}

static int block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGCHLD); /* device servers: reaped by the event loop */
	sigaddset(set, SIGUSR2); /* live upgrade of the device servers */
	sigaddset(set, SIGUSR1); /* each vCPU's state into the log */
	/* vCPU threads unblock this one for themselves. */
	sigaddset(set, VCPU_KICK_SIGNAL);
	return pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* board_destroy, with the VM's last close left to the spawner when it has
 * devices: then it waits for the kernel (10-15 ms once a device's
 * ioeventfd was registered; supervisor_hand_over) and needs nothing of the
 * core.  Without devices the close is quick, and handing it over made the
 * core's exit slower one time in five (bench/boot: p90 0.5 -> 9 ms; the
 * core's exit_mmap then meets the VM's memory notifier still there). */
static void destroy_vm(struct vm *vm, bool had_devices)
{
	bool hand_over = vm->vm_fd >= 0 && had_devices;

	if (hand_over)
		supervisor_hand_over(vm->vm_fd);
	board_destroy(vm);
	if (hand_over)
		supervisor_hand_over(-1);
}

/* The first start failed: say so (to the API client too). */
static int start_failed(struct vmm_control *ctl, int ret, const char *err)
{
	if (ctl) {
		/* Through the API a failed start is an answer, not the end: the
		 * client may fix the configuration and start again. */
		log_error("InstanceStart failed: %s", err);
		vmm_control_start_done(ctl, ret, err);
		return -1;
	}
	log_error("%s", err);
	return ISOLA_EXIT_VMM_ERROR;
}

/* Create, start and serve a VM until it stops; returns the exit status
 * (-1: an API start failed, the client may try again).  The guest RAM and
 * the device set live for the whole run: a guest reset with --on-reset
 * reboot destroys the VM and creates the next on them. */
static int run_vm(struct vm *vm, const struct vm_config *cfg, int signal_fd,
		  struct vmm_control *ctl)
{
	static struct device_set devices;
	static struct gmem ram;
	static struct snapshot_image img;    /* a restore's state file */
	static struct vm_config restore_cfg; /* cfg with the snapshot's shape */
	bool restoring = cfg->restore_state_path != NULL;
	bool hold_paused = restoring && !cfg->restore_resume;
	uint64_t restore_start_ns = evloop_now_ns();
	char err[512] = "";
	int console_fd, status, ret;
	uint64_t timeout_ns = 0;
	bool rebooting = false, vm_made = false, had_devices;

	gmem_init_empty(&ram);
	devices.work_fd = -1;
	console_fd = open_console_output(cfg);
	if (console_fd == -1) {
		snprintf(err, sizeof(err), "--console file:%s: %s", cfg->console_path,
			 strerror(errno));
		if (ctl)
			vmm_control_start_done(ctl, -EINVAL, err);
		log_error("%s", err);
		supervisor_cancel_prespawned();
		return ISOLA_EXIT_VMM_ERROR;
	}
	/* The servers start first: they sandbox themselves while the VM is
	 * built; the front-ends negotiate with them in board_attach_devices. */
	ret = 0;
	if (restoring) {
		/* the snapshot says how many vCPUs, how much memory and which
		 * devices (their servers start from what it kept) */
		restore_cfg = *cfg;
		restore_cfg.reboot_on_reset = false;
		cfg = &restore_cfg;
		if (config_device_count(cfg))
			ret = error_text(err, sizeof(err), -EINVAL,
					 "a snapshot brings its own virtio devices; configure "
					 "none before restoring it");
		else
			ret = snapshot_load(&img, &restore_cfg, &ram, cfg->restore_state_path,
					    cfg->restore_mem_path, err, sizeof(err));
	}
	if (!ret)
		ret = device_set_init(&devices, cfg, err, sizeof(err));
	if (!ret && restoring)
		ret = snapshot_devices_add(&devices, &img, cfg->overrides, cfg->nr_overrides, err,
					   sizeof(err));
	if (!ret)
		ret = device_set_start(&devices, err, sizeof(err));
	supervisor_cancel_prespawned(); /* any device_set_start did not take */
	if (!ret && !restoring)
		ret = vm_ram_create(&ram, cfg, err, sizeof(err));
	for (;;) {
		if (!ret) {
			vm_made = true;
			ret = restoring ? board_restore(vm, cfg, &ram, &devices,
							console_fd >= 0 ? console_fd : -1, &img,
							err, sizeof(err))
					: board_create(vm, cfg, &ram, &devices,
						       console_fd >= 0 ? console_fd : -1, err,
						       sizeof(err));
		}
		if (!ret && !rebooting && cfg->console == CONSOLE_STDIO)
			console_enter_raw(STDIN_FILENO);
		/* The vCPU threads start, held, while the devices are
		 * negotiated with; the guest's first instruction then sees
		 * every device. */
		if (!ret) {
			vm_hold_vcpus(vm);
			ret = vm_start(vm, err, sizeof(err));
		}
		if (!ret)
			ret = board_attach_devices(vm, err, sizeof(err));
		/* the devices as the snapshot left them, before a vCPU runs */
		if (!ret && restoring && !rebooting)
			ret = snapshot_devices_restore(vm, &img, err, sizeof(err));
		if (!ret && hold_paused)
			vm_hold_paused(vm); /* PATCH /vm Resumed releases them */
		else if (!ret)
			vm_release_vcpus(vm);
		if (!ret && restoring && !rebooting)
			log_info("restored %s: %u vCPU(s), %llu MiB, %s in %.2f ms",
				 cfg->restore_state_path, cfg->nr_cpus,
				 (unsigned long long)(cfg->memory_bytes >> 20),
				 hold_paused ? "paused" : "running",
				 (double)(evloop_now_ns() - restore_start_ns) / 1e6);
		if (!rebooting && ctl && !ret) {
			if (hold_paused)
				vmm_control_set_state(ctl, API_STATE_PAUSED);
			if (restoring)
				vmm_control_set_shape(ctl, cfg->nr_cpus, cfg->memory_bytes);
			vmm_control_start_done(ctl, 0, err);
		}
		if (ret && rebooting) {
			vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "reboot: %s", err);
		} else if (ret) {
			status = start_failed(ctl, ret, err);
			goto out;
		} else {
			if (!rebooting) {
				hugepages_hint(cfg); /* once: not again for a reboot */
				timeout_ns = timeout_deadline_ns(cfg); /* one for the whole run */
			}
			serve_vm(vm, cfg, signal_fd, timeout_ns, ctl);
		}
		status = atomic_load(&vm->exit_status);
		if (status != ISOLA_EXIT_RESET || !cfg->reboot_on_reset)
			break;
		/* --on-reset reboot: a new VM on the same device back-ends,
		 * which the guest's drivers negotiate with again. */
		destroy_vm(vm, devices.nr > 0);
		{
			char pids[128] = "";
			size_t at = 0;

			for (unsigned i = 0; i < devices.nr && at < sizeof(pids); i++)
				if (devices.entries[i].pid > 0 && devices.entries[i].kept_sock >= 0)
					at += (size_t)snprintf(pids + at, sizeof(pids) - at, "%s%d",
							       at ? ", " : "",
							       (int)devices.entries[i].pid);
			log_info("%s; rebooting on the same device servers%s%s%s", vm->exit_message,
				 at ? " (pids " : "", pids, at ? ")" : "");
		}
		memset(vm, 0, sizeof(*vm)); /* vm_create expects a zeroed VM */
		vm_made = false;
		ret = gmem_reset(&ram);
		if (ret) {
			log_error("reboot: cannot empty guest memory: %s", strerror(-ret));
			status = ISOLA_EXIT_VMM_ERROR;
			if (ctl)
				vmm_control_set_state(ctl, API_STATE_STOPPED);
			goto out;
		}
		rebooting = true;
	}
	if (ctl)
		vmm_control_set_state(ctl, API_STATE_STOPPED);
	if (status == ISOLA_EXIT_VMM_ERROR || status == ISOLA_EXIT_GUEST_CRASH)
		log_error("%s", vm->exit_message);
	else
		log_info("%s", vm->exit_message);
out:
	/* The end: no orderly stop of the rings (board_destroy would stop each
	 * one on its server to keep it for a next VM): the vCPUs stop, then the
	 * servers go, then the VM. */
	had_devices = devices.nr > 0;
	if (vm_made) {
		/* a start that failed after the vCPU threads did (held) */
		vm_request_stop(vm, ISOLA_EXIT_VMM_ERROR, "%s", err);
		vm_join_vcpus(vm);
	}
	device_set_destroy(&devices);
	if (vm_made)
		destroy_vm(vm, had_devices);
	gmem_destroy(&ram);
	snapshot_image_free(&img);
	console_restore();
	if (console_fd > STDERR_FILENO)
		close(console_fd);
	if (status < 0)
		memset(vm, 0, sizeof(*vm)); /* vm_create expects a zeroed VM */
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
		bool takes_value = !strcmp(argv[i], "--jail") || !strcmp(argv[i], "--jail-user") ||
				   !strcmp(argv[i], "--jail-netns");

		if (!strcmp(argv[i], "--no-seccomp")) {
			opts->no_seccomp = true;
		} else if (takes_value && i + 1 >= *argc) {
			log_error("missing value for %s; see 'isola --help'", argv[i]);
			opts->bad = true;
		} else if (!strcmp(argv[i], "--jail")) {
			opts->jail.dir = argv[++i];
		} else if (!strcmp(argv[i], "--jail-netns")) {
			opts->jail.netns = argv[++i];
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
	if (opts->jail.netns && !opts->jail.dir && !opts->bad) {
		log_error("--jail-netns needs --jail DIR");
		opts->bad = true;
	}
}

/*
 * Least privilege (core/seccomp.h, core/jail.h, docs/security.md): before the
 * first thread and before the VM exists, enter the jail (--jail), start the
 * device-server spawner, become the jail's user and compile the per-thread
 * seccomp filters.  cfg (NULL: not known yet): its device servers are
 * started ahead, to come up while the filters compile and the VM is built.  Returns false after
 * saying why.
 */
static bool lock_down_process(const struct process_options *opts, const struct vm_config *cfg)
{
	char err[512];

	for (unsigned i = 0; opts->jail.dir && !opts->jail.netns && cfg && i < cfg->nr_nets; i++)
		if (cfg->nets[i].tap[0]) {
			log_error(
			    "--net tap=%s with --jail: the jail's network namespace is new and "
			    "empty; make the tap in a named namespace and give it with "
			    "--jail-netns /var/run/netns/NAME (docs/net.md)",
			    cfg->nets[i].tap);
			return false;
		}
	for (unsigned i = 0; opts->jail.dir && cfg && i < cfg->nr_fs; i++)
		if (cfg->fs[i].dir[0]) {
			log_error("--fs tag=%s,dir= with --jail: virtiofsd runs outside any jail; "
				  "start a vhost-user-fs back-end yourself and use socket=PATH "
				  "(docs/fs.md)",
				  cfg->fs[i].tag);
			return false;
		}
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
		/* --vsock's path is the jail's: checked here, in it */
		config_vsock_defer_file_checks(false);
		if (cfg && cfg->vsock.enabled &&
		    config_vsock_check_uds(cfg->vsock.uds_path, "--vsock uds", err, sizeof(err))) {
			log_error("%s", err);
			return false;
		}
		if (cfg)
			device_set_prespawn(cfg);
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
		device_set_prespawn(cfg);
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
	config_vsock_defer_file_checks(opts->jail.dir != NULL);
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

static void print_restore_help(void)
{
	printf("Usage: isola restore --state FILE --mem FILE [OPTION]...\n"
	       "Restore a VM from a snapshot ('isola snapshot', PUT /snapshot/create) in\n"
	       "this new process and run it: the vCPUs, the platform devices, the\n"
	       "virtio devices (their servers started again with the same arguments)\n"
	       "and the clock as they were; the memory file is mapped copy-on-write,\n"
	       "so it is never written and only the pages the guest touches are read\n"
	       "(with virtio devices: its data is read into shared memory instead;\n"
	       "docs/snapshot.md).  The VM's vCPUs, memory size and devices come from\n"
	       "FILE.\n"
	       "\n"
	       "  --state FILE        the state file (snapshot_path)\n"
	       "  --mem FILE          the memory file (mem_file_path); its size must be\n"
	       "                      the snapshot's memory size\n"
	       "  --console MODE      stdio (default), none, or file:PATH\n"
	       "  --timeout SECONDS   stop the VM after SECONDS (exit status %d)\n"
	       "  --paused            restore paused (resume: PATCH /vm Resumed; needs\n"
	       "                      --api-sock)\n"
	       "  --track-dirty-pages log the guest's writes, for Diff snapshots of the\n"
	       "                      restored VM ('isola snapshot --diff')\n"
	       "  --api-sock PATH     serve the API on PATH for the restored VM\n"
	       "  --drive-override ID=IMG\n"
	       "                      serve the drive ID (its drive_id or id=, or diskN)\n"
	       "                      from IMG instead of the snapshot's image: give each\n"
	       "                      VM restored from one snapshot its own copy\n"
	       "                      (repeatable; PUT /snapshot/load drive_overrides)\n"
	       "  --net-override netN=TAP\n"
	       "                      put interface netN (the Nth, from 0) on the tap TAP\n"
	       "                      instead of the snapshot's (repeatable;\n"
	       "                      network_overrides)\n"
	       "  --vsock-override PATH\n"
	       "                      the vsock device's host socket at PATH instead of\n"
	       "                      the snapshot's (vsock_override)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "Exit statuses as for 'isola run'; %d if the snapshot cannot be restored\n"
	       "(another version, truncated or corrupt, a memory file of another size).\n",
	       ISOLA_EXIT_TIMEOUT, ISOLA_EXIT_VMM_ERROR);
}

/* `isola restore`: parse its flags into cfg; 1 after --help, -EINVAL
 * after saying why. */
static int parse_restore_args(int argc, char **argv, struct vm_config *cfg, const char **api_sock)
{
	char err[256];

	for (int i = 1; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = strcmp(argv[i], "--paused") && strcmp(argv[i], "-h") &&
			     strcmp(argv[i], "--help") && strcmp(argv[i], "--track-dirty-pages");

		if (takes && !value) {
			log_error("restore: missing value for %s; see 'isola restore --help'",
				  argv[i]);
			return -EINVAL;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			print_restore_help();
			return 1;
		} else if (!strcmp(argv[i], "--paused")) {
			cfg->restore_resume = false;
			continue;
		} else if (!strcmp(argv[i], "--track-dirty-pages")) {
			cfg->track_dirty_pages = true;
			continue;
		} else if (!strcmp(argv[i], "--state")) {
			cfg->restore_state_path = value;
		} else if (!strcmp(argv[i], "--mem")) {
			cfg->restore_mem_path = value;
		} else if (!strcmp(argv[i], "--api-sock")) {
			*api_sock = value;
		} else if (!strcmp(argv[i], "--drive-override") ||
			   !strcmp(argv[i], "--net-override")) {
			bool drive = argv[i][2] == 'd';
			const char *eq = strchr(value, '=');
			char id[sizeof(cfg->overrides[0].id)];

			if (!eq || eq == value || (size_t)(eq - value) >= sizeof(id)) {
				log_error("restore: %s '%s': give %s", argv[i], value,
					  drive ? "ID=IMAGE (ID: the drive's id, or diskN)"
						: "netN=TAP");
				return -EINVAL;
			}
			snprintf(id, sizeof(id), "%.*s", (int)(eq - value), value);
			if (config_add_override(cfg,
						drive ? CONFIG_OVERRIDE_DRIVE : CONFIG_OVERRIDE_NET,
						id, eq + 1, argv[i], err, sizeof(err))) {
				log_error("restore: %s", err);
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "--vsock-override")) {
			if (config_add_override(cfg, CONFIG_OVERRIDE_VSOCK, "", value, argv[i], err,
						sizeof(err))) {
				log_error("restore: %s", err);
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "--console")) {
			if (config_set_console(cfg, value, err, sizeof(err))) {
				log_error("restore: %s", err);
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "--timeout")) {
			char *end;
			unsigned long t = strtoul(value, &end, 10);

			if (!*value || *end || t > 86400 * 365) {
				log_error("restore: --timeout '%s' is not a number of seconds",
					  value);
				return -EINVAL;
			}
			cfg->timeout_seconds = (unsigned)t;
		} else {
			log_error("restore: unknown option '%s'; see 'isola restore --help'",
				  argv[i]);
			return -EINVAL;
		}
		i++;
	}
	if (!cfg->restore_state_path || !cfg->restore_mem_path) {
		log_error("restore: --state and --mem are required; see 'isola restore --help'");
		return -EINVAL;
	}
	if (!cfg->restore_resume && !*api_sock) {
		log_error("restore: --paused needs --api-sock (nothing could resume it)");
		return -EINVAL;
	}
	return 0;
}

static int cmd_restore(int argc, char **argv, const struct process_options *opts)
{
	static struct vm vm;
	static struct vmm_control ctl;
	static struct vm_config cfg;
	struct api_server *server = NULL;
	const char *api_sock = NULL;
	char err[512] = "";
	int signal_fd, status, ret;

	config_defaults(&cfg);
	cfg.restore_resume = true;
	ret = parse_restore_args(argc, argv, &cfg, &api_sock);
	if (ret)
		return ret == 1 ? 0 : ISOLA_EXIT_VMM_ERROR;
	signal_fd = stop_signal_fd();
	if (!lock_down_process(opts, &cfg))
		return ISOLA_EXIT_VMM_ERROR;
	if (api_sock) {
		if (vmm_control_init(&ctl, &vm)) {
			log_error("eventfd: %s", strerror(errno));
			return ISOLA_EXIT_VMM_ERROR;
		}
		if (api_server_start(&server, api_sock, 0, &cfg, &vmm_control_ops, &ctl, err,
				     sizeof(err))) {
			log_error("--api-sock %s: %s", api_sock, err);
			vmm_control_destroy(&ctl);
			return ISOLA_EXIT_VMM_ERROR;
		}
		api_mark_started(api_server_api(server), &cfg);
	}
	status = run_vm(&vm, &cfg, signal_fd, server ? &ctl : NULL);
	if (status < 0)
		status = ISOLA_EXIT_VMM_ERROR; /* the restore failed: said why */
	if (server) {
		api_server_stop(server);
		vmm_control_destroy(&ctl);
	}
	if (signal_fd >= 0)
		close(signal_fd);
	return status;
}

struct start_wait {
	struct evloop loop;
	struct vmm_control *ctl;
	struct vm_config *cfg;
	bool started;
};

/* Before the start request in the same round: a stop signal wins, and the
 * request is not taken (the API would wait for an answer nobody gives). */
static void on_signal_before_start(void *opaque, int fd, short revents)
{
	struct start_wait *wait = opaque;
	struct signalfd_siginfo si;

	(void)revents;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (si.ssi_signo == SIGUSR2) {
			log_info("SIGUSR2 before the VM started: no device server to upgrade yet "
				 "(they start from the binaries on disk)");
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {
			log_info("SIGUSR1 before the VM started: no vCPU has run yet");
			continue;
		}
		log_info("stopped by SIG%s before the VM started",
			 sigabbrev_np((int)si.ssi_signo) ?: "?");
		evloop_stop(&wait->loop);
		return;
	}
}

static void on_start_request(void *opaque)
{
	struct start_wait *wait = opaque;

	wait->started = true;
	evloop_stop(&wait->loop);
}

/* Before InstanceStart: wait for it, or for a signal. Returns false to exit. */
static bool wait_for_start(struct vmm_control *ctl, int signal_fd, struct vm_config *cfg)
{
	static struct start_wait wait;

	wait = (struct start_wait){.ctl = ctl, .cfg = cfg};
	evloop_init(&wait.loop);
	if (evloop_add_fd(&wait.loop, signal_fd, POLLIN, 0, on_signal_before_start, &wait) < 0 ||
	    vmm_control_watch_start(ctl, &wait.loop, 1, cfg, on_start_request, &wait) < 0)
		return false;
	if (evloop_run(&wait.loop))
		return false;
	return wait.started;
}

static void print_vmm_help(void)
{
	printf("Usage: isola --api-sock PATH [--config-file FILE] [OPTION]...\n"
	       "       isola --no-api --config-file FILE [OPTION]...\n"
	       "Run a VMM driven by the Firecracker-compatible HTTP API on a Unix socket,\n"
	       "or booted straight from a JSON configuration in the same schema\n"
	       "(docs/api.md).  With both, the VM boots from FILE and the API serves it.\n"
	       "Firecracker's command line is accepted as it is (docs/api.md, \"Command line\").\n"
	       "\n"
	       "  --api-sock PATH     serve the API on a new Unix socket at PATH (it must\n"
	       "                      not exist; it is removed on exit); default\n"
	       "                      " VMM_ARGS_DEFAULT_API_SOCK "\n"
	       "  --config-file FILE  boot from FILE at once\n"
	       "  --no-api            no API socket (needs --config-file)\n"
	       "  --id ID             the instance id GET / reports (1-64 letters, digits\n"
	       "                      or '-'; default anonymous-instance)\n"
	       "  --log-path PATH, --level LEVEL, --module M, --show-level, --show-log-origin\n"
	       "                      the logger from the start, as PUT /logger would set it\n"
	       "  --metrics-path PATH metrics from the start, as PUT /metrics would set it\n"
	       "  --http-api-max-payload-size BYTES\n"
	       "                      the largest request body (default %u)\n"
	       "  --seccomp-level 0|1|2  0 is --no-seccomp; 1 and 2 are isola's filters\n"
	       "  --boot-timer, --enable-pci, --start-time-us N, --start-time-cpu-us N,\n"
	       "  --parent-cpu-time-us N, --mmds-size-limit N\n"
	       "                      accepted for Firecracker's callers (see docs/api.md)\n"
	       "  --no-seccomp        no seccomp filters on the VMM's threads (debugging)\n"
	       "  --jail DIR          run chrooted in DIR as an unprivileged user (see\n"
	       "                      'isola --help'); PATH and FILE are then inside DIR\n"
	       "  --jail-user UID[:GID]  the jail's user (required with --jail)\n"
	       "  --version           print the version line orchestrators parse\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "The process exits when the VM stops, with the statuses of 'isola run --help';\n"
	       "before InstanceStart, SIGINT/SIGTERM exit with status %d.  SIGUSR2 upgrades\n"
	       "every device server from its binary on disk (docs/devices.md \"Live upgrade\").\n",
	       VMM_ARGS_DEFAULT_MAX_PAYLOAD, ISOLA_EXIT_STOPPED);
}

/* A string for cfg: its own copy when cfg owns its strings (a config
 * file's), else argv's. */
static int set_config_string(struct vm_config *cfg, const char **field, const char *value)
{
	if (!cfg->owns_strings) {
		*field = value;
		return 0;
	}
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free((char *)*field);
	*field = copy;
	return 0;
}

/* The command line's instance id, logger and metrics into cfg (a config
 * file's "logger" comes after, as in Firecracker, so it wins; both giving
 * metrics is refused: metrics are set once). */
static int apply_vmm_args(struct vm_config *cfg, const struct vmm_args *args, char *err,
			  size_t errlen)
{
	int ret = 0;

	if (args->instance_id)
		ret |= set_config_string(cfg, &cfg->instance_id, args->instance_id);
	if (args->logger && !cfg->logger) {
		cfg->logger = true;
		cfg->log_level = args->log_level;
		cfg->log_show_level = args->show_level;
		cfg->log_show_origin = args->show_log_origin;
		if (args->log_path)
			ret |= set_config_string(cfg, &cfg->log_path, args->log_path);
		if (args->log_module)
			ret |= set_config_string(cfg, &cfg->log_module, args->log_module);
	}
	if (args->metrics_path) {
		if (cfg->metrics_path) {
			snprintf(err, errlen,
				 "--metrics-path and the config file's \"metrics\" both set the "
				 "metrics file; give one");
			return -EINVAL;
		}
		ret |= set_config_string(cfg, &cfg->metrics_path, args->metrics_path);
	}
	if (ret)
		snprintf(err, errlen, "out of memory");
	return ret ? -ENOMEM : 0;
}

static int cmd_vmm(int argc, char **argv, const struct process_options *process_opts)
{
	static struct vm vm;
	static struct vmm_control ctl;
	static struct vm_config cfg, boot;
	struct process_options opts = *process_opts;
	struct api_server *server = NULL;
	struct api *api = NULL;
	struct vmm_args args;
	char err[512] = "";
	int signal_fd, status = ISOLA_EXIT_STOPPED;

	if (vmm_args_parse(&args, argc, argv, err, sizeof(err))) {
		log_error("%s", err);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (args.help) {
		print_vmm_help();
		return 0;
	}
	if (args.version) {
		printf("%s\n", ISOLA_VERSION_LINE);
		return 0;
	}
	opts.no_seccomp |= args.no_seccomp;
	api_config_defaults(&cfg);
	api_config_defaults(&boot);
	signal_fd = stop_signal_fd();
	/* First: with --jail, the config file and its paths are inside the jail. */
	if (!lock_down_process(&opts, NULL))
		return ISOLA_EXIT_VMM_ERROR;
	if (args.config_file && api_config_from_file(&cfg, args.config_file, err, sizeof(err))) {
		log_error("%s: %s", args.config_file, err);
		api_config_release(&cfg);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (apply_vmm_args(&cfg, &args, err, sizeof(err))) {
		log_error("%s", err);
		api_config_release(&cfg);
		return ISOLA_EXIT_VMM_ERROR;
	}
	/* The API keeps the file as written (GET /vm/config echoes it); the
	 * VM boots from a finalized copy (root drive first, root= added). */
	if (args.config_file &&
	    (api_config_copy(&boot, &cfg) || api_config_finalize(&boot, err, sizeof(err)))) {
		log_error("%s: %s", args.config_file, err[0] ? err : "out of memory");
		api_config_release(&cfg);
		api_config_release(&boot);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (vmm_control_init(&ctl, &vm)) {
		log_error("eventfd: %s", strerror(errno));
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (args.api_sock) {
		if (api_server_start(&server, args.api_sock, args.max_payload, &cfg,
				     &vmm_control_ops, &ctl, err, sizeof(err))) {
			log_error("--api-sock %s: %s", args.api_sock, err);
			vmm_control_destroy(&ctl);
			return ISOLA_EXIT_VMM_ERROR;
		}
		api = api_server_api(server);
	} else if (api_create(&api, &cfg, &vmm_control_ops, &ctl, 0, err, sizeof(err))) {
		/* --no-api: no socket, but the logger and metrics still work */
		log_error("%s", err);
		vmm_control_destroy(&ctl);
		return ISOLA_EXIT_VMM_ERROR;
	}
	if (args.config_file) {
		/* Boot at once, as firecracker --config-file does; the API
		 * then serves a started VM (GET / says Running). */
		api_mark_started(api, &boot);
		status = run_vm(&vm, &boot, signal_fd, &ctl);
		if (status < 0)
			status = ISOLA_EXIT_VMM_ERROR;
	} else {
		status = ISOLA_EXIT_STOPPED;
		while (wait_for_start(&ctl, signal_fd, &boot)) {
			status = run_vm(&vm, &boot, signal_fd, &ctl);
			if (status >= 0)
				break;
			status = ISOLA_EXIT_STOPPED; /* start failed: wait for another */
		}
	}
	if (server)
		api_server_stop(server);
	else
		api_destroy(api);
	vmm_control_destroy(&ctl);
	api_config_release(&cfg);
	api_config_release(&boot);
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
		printf("%s\n", ISOLA_VERSION_LINE);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1, &opts);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1, &opts);
	if (!strcmp(argv[1], "snapshot"))
		return snapshot_cli_main(argc - 1, argv + 1);
	if (vmm_args_is_vmm_flag(argv[1]))
		return cmd_vmm(argc, argv, &opts);
	log_error("unknown command '%s'; see 'isola --help'", argv[1]);
	return ISOLA_EXIT_VMM_ERROR;
}
