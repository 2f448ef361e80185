// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/device_set.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/supervisor.h"
#include "isola/virtio.h"
#include "lib/log.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "isola-blk" or "back-end PATH", for messages. */
static const char *entry_backend_name(const struct device_entry *e, char *buf, size_t len)
{
	if (e->socket_path)
		snprintf(buf, len, "back-end %s", e->socket_path);
	else
		snprintf(buf, len, "isola-%s", e->kind->name);
	return buf;
}

static struct device_entry *set_add(struct device_set *set, const char *kind_name, const char *name,
				    bool restart, const char *socket_path)
{
	struct device_entry *e = &set->entries[set->nr++];

	*e = (struct device_entry){
	    .kind = device_kind_by_name(kind_name), .kept_sock = -1, .socket_path = socket_path};
	snprintf(e->name, sizeof(e->name), "%s", name);
	restart_state_init(&e->restart, restart, socket_path != NULL);
	/* no front-end yet: nothing for vhost_device_destroy to close */
	e->dev.sock = e->dev.err_fd = e->dev.inflight_fd = -1;
	for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++)
		e->dev.kick_fds[q] = e->dev.call_fds[q] = -1;
	return e;
}

/* isola-blk's arguments for disk, named name ("disk0"). */
static void entry_disk_args(struct device_entry *e, const struct disk_config *disk,
			    const char *name)
{
	unsigned n = 0;

	snprintf(e->default_id, sizeof(e->default_id), "%s", name);
	/* The strings live in cfg, which outlives the set. */
	e->args[n++] = "--image";
	e->args[n++] = disk->path;
	e->args[n++] = "--id";
	e->args[n++] = disk->id[0] ? disk->id : e->default_id;
	if (disk->readonly)
		e->args[n++] = "--readonly";
	if (disk->rate[0]) {
		e->args[n++] = "--rate";
		e->args[n++] = disk->rate;
	}
	e->args[n] = NULL;
}

/* isola-net's arguments for net (docs/net.md). */
static void entry_net_args(struct device_entry *e, const struct net_config *net)
{
	const uint8_t *m = net->mac;
	unsigned n = 0;

	snprintf(e->arg_text[0], sizeof(e->arg_text[0]), "%u", net->queues);
	snprintf(e->arg_text[1], sizeof(e->arg_text[1]), "%02x:%02x:%02x:%02x:%02x:%02x", m[0],
		 m[1], m[2], m[3], m[4], m[5]);
	snprintf(e->arg_text[2], sizeof(e->arg_text[2]), "%u", net->mtu);
	e->args[n++] = "--tap";
	e->args[n++] = net->tap;
	e->args[n++] = "--queues";
	e->args[n++] = e->arg_text[0];
	e->args[n++] = "--mac";
	e->args[n++] = e->arg_text[1];
	e->args[n++] = "--mtu";
	e->args[n++] = e->arg_text[2];
	if (net->no_offloads)
		e->args[n++] = "--no-offloads";
	if (net->rx_rate[0]) {
		e->args[n++] = "--rx-rate";
		e->args[n++] = net->rx_rate;
	}
	if (net->tx_rate[0]) {
		e->args[n++] = "--tx-rate";
		e->args[n++] = net->tx_rate;
	}
	e->args[n] = NULL;
}

/* isola-rng's arguments for cfg's rng. */
static void entry_rng_args(struct device_entry *e, const struct vm_config *cfg)
{
	unsigned n = 0;

	if (cfg->rng_rate[0]) {
		e->args[n++] = "--rate";
		e->args[n++] = cfg->rng_rate;
	}
	e->args[n] = NULL;
}

/* isola-vsock's arguments for cfg's vsock: --cid N --uds PATH, the path
 * made absolute (the server resolves it before its sandbox, but a path
 * that names the same place whatever the cwd is one less assumption).
 * 0, or -ENAMETOOLONG when the absolute path no longer fits PATH_PORT. */
static int entry_vsock_args(struct device_entry *e, const struct vm_config *cfg)
{
	const char *path = cfg->vsock.uds_path;
	char cwd[4096];
	unsigned n = 0;
	int len;

	snprintf(e->arg_text[0], sizeof(e->arg_text[0]), "%u", cfg->vsock.guest_cid);
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		len = snprintf(e->arg_store, sizeof(e->arg_store), "%s", path);
	else
		len = snprintf(e->arg_store, sizeof(e->arg_store), "%s/%s", cwd, path);
	e->args[n++] = "--cid";
	e->args[n++] = e->arg_text[0];
	e->args[n++] = "--uds";
	e->args[n++] = e->arg_store;
	e->args[n] = NULL;
	return len < 0 || len > CONFIG_VSOCK_UDS_MAX ? -ENAMETOOLONG : 0;
}

/* isola-fs's arguments for fs (dir=): the share and virtiofsd's modes.
 * The strings live in cfg, which outlives the set. */
static void entry_fs_args(struct device_entry *e, const struct fs_config *fs)
{
	unsigned n = 0;

	e->args[n++] = "--dir";
	e->args[n++] = fs->dir;
	e->args[n++] = "--cache";
	e->args[n++] = fs->cache;
	e->args[n++] = "--sandbox";
	e->args[n++] = fs->sandbox;
	e->args[n] = NULL;
}

/* device_set.h; asked for in the order device_set_init makes entries. */
void device_set_prespawn(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		struct device_entry e = {0};
		char name[16];

		if (cfg->disks[i].socket[0])
			continue;
		snprintf(name, sizeof(name), "disk%u", i);
		entry_disk_args(&e, &cfg->disks[i], name);
		if (supervisor_prespawn("blk", e.args))
			return;
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		struct device_entry e = {0};

		if (cfg->nets[i].socket[0])
			continue;
		entry_net_args(&e, &cfg->nets[i]);
		if (supervisor_prespawn("net", e.args))
			return;
	}
	if (cfg->rng) {
		struct device_entry e = {0};

		entry_rng_args(&e, cfg);
		if (supervisor_prespawn("rng", e.args))
			return;
	}
	if (cfg->vsock.enabled) {
		struct device_entry e = {0};

		if (!entry_vsock_args(&e, cfg))
			supervisor_prespawn("vsock", e.args);
	}
}

int device_set_init(struct device_set *set, const struct vm_config *cfg, char *err, size_t errlen)
{
	char binary[PATH_MAX + 16];

	set->nr = 0;
	set->policy = &restart_policy_default;
	/* Read where the servers live now, while readlink is allowed: a live
	 * upgrade asks again under the main thread's seccomp filter. */
	supervisor_server_binary("blk", binary, sizeof(binary));
	set->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (set->work_fd < 0)
		return error_text(err, errlen, -errno, "eventfd: %s", strerror(errno));
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *disk = &cfg->disks[i];
		struct device_entry *e;
		char name[16];

		snprintf(name, sizeof(name), "disk%u", i);
		e = set_add(set, "blk", name, !disk->no_restart,
			    disk->socket[0] ? disk->socket : NULL);
		if (e->socket_path)
			continue;
		if (access(disk->path, disk->readonly ? R_OK : R_OK | W_OK) < 0)
			return error_text(err, errlen, -errno, "disk %s: %s; %s", disk->path,
					  strerror(errno),
					  errno == EACCES && !disk->readonly
					      ? "make it writable or add readonly=on"
					      : "check the path");
		entry_disk_args(e, disk, name);
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *net = &cfg->nets[i];
		struct device_entry *e;
		char name[16];

		snprintf(name, sizeof(name), "net%u", i);
		e = set_add(set, "net", name, !net->no_restart,
			    net->socket[0] ? net->socket : NULL);
		config_net_device_config(net, e->frontend_config, sizeof(e->frontend_config));
		if (!e->socket_path)
			entry_net_args(e, net);
	}
	if (cfg->rng)
		entry_rng_args(set_add(set, "rng", "rng0", !cfg->rng_no_restart, NULL), cfg);
	if (cfg->vsock.enabled) {
		struct device_entry *e =
		    set_add(set, "vsock", "vsock0", !cfg->vsock.no_restart, NULL);

		config_vsock_device_config(&cfg->vsock, e->frontend_config,
					   sizeof(e->frontend_config));
		if (entry_vsock_args(e, cfg))
			return error_text(err, errlen, -ENAMETOOLONG,
					  "vsock: %s is %zu bytes from / on; the guest's "
					  "connections go to PATH_PORT, so PATH has at most %d: "
					  "choose a shorter uds path",
					  e->arg_store, strlen(e->arg_store), CONFIG_VSOCK_UDS_MAX);
	}
	/* Shared directories last: they are not prespawned (their launcher
	 * answers with virtiofsd's socket), so the prespawned servers above
	 * are all taken first (device_set_prespawn's order). */
	for (unsigned i = 0; i < cfg->nr_fs; i++) {
		const struct fs_config *fs = &cfg->fs[i];
		struct device_entry *e;
		char name[16];

		snprintf(name, sizeof(name), "fs%u", i);
		/* Restarted like any server (an external back-end waited for):
		 * a new virtiofsd does not know the guest's FUSE session, so it
		 * answers the replayed and later requests EIO until the guest
		 * mounts again -- a way back that NEEDS_RESET, which Linux's
		 * virtiofs ignores, does not give (docs/fs.md "When virtiofsd
		 * dies"); restart=never gives the device up instead. */
		e = set_add(set, "fs", name, !fs->no_restart, fs->socket[0] ? fs->socket : NULL);
		config_fs_device_config(fs, e->frontend_config, sizeof(e->frontend_config));
		if (e->socket_path)
			continue;
		if (access(CONFIG_FS_VIRTIOFSD, X_OK) < 0)
			return error_text(err, errlen, -errno,
					  "--fs tag=%s,dir=: %s: %s; install Debian's package "
					  "qemu-system-common, or start a vhost-user-fs back-end "
					  "yourself and use socket=PATH",
					  fs->tag, CONFIG_FS_VIRTIOFSD, strerror(errno));
		entry_fs_args(e, fs);
	}
	return 0;
}

/* A launcher (devices/device_kind.h hands_over_socket) sends the back-end's
 * connected socket over the socket it was started with: take it, and the
 * launcher's socket closes.  It has 10 s (virtiofsd starts in milliseconds;
 * a launcher that fails says why on stderr and exits, which ends the wait). */
static int entry_take_handed_socket(int *sock, char *why, size_t len)
{
	char byte, control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control,
			     .msg_controllen = sizeof(control)};
	struct pollfd pfd = {.fd = *sock, .events = POLLIN};
	struct cmsghdr *cmsg;
	int got = -1, ret;
	ssize_t n;

	ret = poll(&pfd, 1, 10000);
	if (ret <= 0) {
		close(*sock);
		return error_text(why, len, ret ? -errno : -ETIMEDOUT,
				  "its launcher sent no back-end socket in 10 s");
	}
	n = recvmsg(*sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	cmsg = n == 1 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
	    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&got, CMSG_DATA(cmsg), sizeof(int));
	close(*sock);
	if (got < 0)
		return error_text(why, len, -EPROTO,
				  "its launcher ended without a back-end socket (see its message "
				  "above)");
	*sock = got;
	return 0;
}

/* Start the entry's server, or connect to its external back-end. */
static int entry_connect(struct device_entry *e, int *sock, char *why, size_t len)
{
	pid_t pid = 0;
	int ret;

	if (e->socket_path)
		return supervisor_connect(e->socket_path, sock, why, len);
	ret = supervisor_spawn(e->kind->name, e->args, &pid, sock, why, len);
	if (!ret)
		e->pid = pid;
	if (!ret && e->kind->hands_over_socket) {
		ret = entry_take_handed_socket(sock, why, len);
		if (ret && e->pid > 0) {
			kill(e->pid, SIGKILL);
			waitpid(e->pid, NULL, 0);
			e->pid = 0;
		}
	}
	return ret;
}

int device_set_start(struct device_set *set, char *err, size_t errlen)
{
	char why[384];

	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];
		int ret;

		if (e->kept_sock >= 0)
			continue;
		ret = entry_connect(e, &e->kept_sock, why, sizeof(why));
		if (ret)
			return error_text(err, errlen, ret, "%s: %s", e->name, why);
	}
	return 0;
}

/* End the entry's server now (it is not trusted, or not wanted). */
static void entry_kill_server(struct device_entry *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGKILL);
		waitpid(e->pid, NULL, 0);
	}
	e->pid = 0;
}

int device_set_attach(struct device_set *set, device_set_plug_fn plug, void *vm, char *err,
		      size_t errlen)
{
	char why[384];

	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];
		bool kept = false;
		int sock, ret;

		restart_new_vm(&e->restart);
		e->last_failure[0] = '\0';
		/* A back-end kept across a reboot first; if it does not take the
		 * new VM, it is ended and a fresh one tried, once. */
		for (kept = e->kept_sock >= 0 && e->kept_from_vm;; kept = false) {
			if (e->kept_sock >= 0) {
				sock = e->kept_sock; /* kept, or started by device_set_start */
			} else {
				ret = entry_connect(e, &sock, why, sizeof(why));
				if (ret)
					return error_text(err, errlen, ret, "%s: %s", e->name, why);
			}
			e->kept_sock = -1;
			e->kept_from_vm = false;
			ret = plug(vm, e, i, sock, why, sizeof(why));
			e->attached = true; /* detached even when half made */
			if (!ret)
				break;
			if (!kept) {
				entry_kill_server(e);
				return error_text(err, errlen, ret,
						  "%s: vhost-user set-up failed: %s", e->name, why);
			}
			log_warn(
			    "%s: the back-end kept across the reboot failed (%s); replacing it",
			    e->name, why);
			vhost_device_destroy(&e->dev);
			e->attached = false;
			entry_kill_server(e);
		}
	}
	return 0;
}

void device_set_detach(struct device_set *set)
{
	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];

		if (!e->attached)
			continue;
		/* The rings stop (GET_VRING_BASE) while guest memory is still
		 * there; a back-end that is away or given up is left to a new one. */
		e->kept_sock = -1;
		if (e->dev.sock >= 0 && !e->restart.pending && !e->restart.given_up)
			e->kept_sock = vhost_device_detach(&e->dev);
		e->kept_from_vm = e->kept_sock >= 0;
		if (e->kept_sock < 0 && !e->socket_path)
			entry_kill_server(e);
		vhost_device_destroy(&e->dev);
		e->attached = false;
	}
}

void device_set_destroy(struct device_set *set)
{
	/* No orderly stop of the rings: the servers end with the run. */
	for (unsigned i = 0; i < set->nr; i++) {
		if (set->entries[i].attached)
			vhost_device_destroy(&set->entries[i].dev);
		set->entries[i].attached = false;
	}
	/* SIGKILL, not SIGTERM: the server's sandbox parent (lib/sandbox.c)
	 * answered SIGTERM by killing the server and waiting for its exit,
	 * namespaces and io_uring teardown included, before its own.  Killed,
	 * it is reaped at once; the server, its child, dies of its parent-death
	 * signal (SIGKILL) right after, on its own time (bench/boot: the
	 * guest's stop to isola's exit). */
	for (unsigned i = 0; i < set->nr; i++)
		if (set->entries[i].pid > 0)
			kill(set->entries[i].pid, SIGKILL);
	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];

		if (e->pid > 0)
			waitpid(e->pid, NULL, 0);
		e->pid = 0;
		if (e->kept_sock >= 0)
			close(e->kept_sock);
		e->kept_sock = -1;
	}
	set->nr = 0;
	if (set->work_fd >= 0)
		close(set->work_fd);
	set->work_fd = -1;
}

void device_set_queue_work(struct device_set *set, unsigned work)
{
	for (unsigned i = 0; i < set->nr; i++)
		if (set->entries[i].attached)
			vhost_device_queue_work(&set->entries[i].dev, work);
}

void device_set_serve(struct device_set *set)
{
	uint64_t count;

	if (read(set->work_fd, &count, sizeof(count)) < 0) {
		/* non-blocking: nothing queued */
	}
	for (unsigned i = 0; i < set->nr; i++)
		if (set->entries[i].attached)
			vhost_device_process(&set->entries[i].dev);
}

/* The old server must be gone (and reaped) before a new one takes over:
 * give it a moment to finish dying, then make sure. */
static void entry_bury_server(struct device_entry *e, char *how, size_t len)
{
	pid_t pid = e->pid;
	char status_text[128];
	int status;

	snprintf(how, len, "hung up");
	if (pid <= 0)
		return;
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			supervisor_describe_status(status, status_text, sizeof(status_text));
			snprintf(how, len, "(pid %d) %s", (int)pid, status_text);
			e->pid = 0;
			return;
		}
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	snprintf(how, len, "(pid %d) hung up and was killed", (int)pid);
	e->pid = 0;
}

static void entry_give_up(struct device_entry *e, const char *why)
{
	e->restart.pending = false;
	e->restart.given_up = true;
	log_error("%s: %s; the device needs a reset (the VM keeps running)", e->name, why);
	virtio_pci_set_needs_reset(&e->dev.pci);
}

/* Try once to bring the entry's back-end back; true when it is back. */
static bool entry_try_restart(struct device_set *set, struct device_entry *e)
{
	char why[384], who[160];
	uint64_t took;
	int sock;

	entry_backend_name(e, who, sizeof(who));
	if (entry_connect(e, &sock, why, sizeof(why)) == 0 &&
	    vhost_device_reconnect(&e->dev, sock, why, sizeof(why)) == 0) {
		took = restart_on_success(&e->restart, now_ns());
		e->last_failure[0] = '\0';
		log_info("%s: %s is back after %.1f ms (restart %llu); in-flight requests resumed",
			 e->name, who, (double)took / 1e6, (unsigned long long)e->restart.restarts);
		if (e->kind->virtio_id == VIRTIO_ID_FS)
			log_warn("%s: the new back-end does not know the guest's FUSE session: the "
				 "guest's virtio-fs mount answers EIO until it is unmounted and "
				 "mounted again (docs/fs.md)",
				 e->name);
		return true;
	}
	/* Say why a try failed, once per reason: an external back-end that is
	 * away fails the same way every 100 ms, one that answers badly says
	 * how (a spoiled reply, a reply that never came) each time it changes. */
	if (strncmp(e->last_failure, why, sizeof(e->last_failure) - 1)) {
		snprintf(e->last_failure, sizeof(e->last_failure), "%s", why);
		log_warn("%s: %s did not come back: %s", e->name, who, why);
	}
	if (!e->socket_path && e->pid > 0) {
		char how[160];

		entry_bury_server(e, how, sizeof(how));
	}
	vhost_device_disconnect(&e->dev);
	if (restart_on_failed_try(&e->restart, set->policy) == RESTART_GIVE_UP_STARTS) {
		char msg[640];

		snprintf(msg, sizeof(msg),
			 "%s did not come up %u times in a row (last: %s); giving up", who,
			 e->restart.failed_starts, why);
		entry_give_up(e, msg);
	}
	return false;
}

/* A back-end never speaks first: its socket is readable only once it hung
 * up or broke the protocol.  0: quiet; 1: hung up; 2: it sent a message. */
static int entry_sock_state(const struct vhost_device *dev)
{
	struct pollfd pfd = {.fd = dev->sock, .events = POLLIN | POLLRDHUP};
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	/* recvmsg, not recv: the event loop's seccomp list (core/seccomp.c) */
	return recvmsg(dev->sock, &msg, MSG_PEEK | MSG_DONTWAIT) > 0 ? 2 : 1;
}

void device_set_lost(struct device_set *set, unsigned index, const char *why)
{
	struct device_entry *e;
	char how[400], msg[512], who[160];
	int state;

	if (index >= set->nr)
		return;
	e = &set->entries[index];
	if (!e->attached || e->dev.sock < 0 || e->restart.pending || e->restart.given_up)
		return;
	/* A socket event (why == NULL) may come from a poll that predates a
	 * restart made in the same event-loop pass (on SIGCHLD), and the new
	 * socket can have the old one's number: believe only the new socket. */
	state = why ? 1 : entry_sock_state(&e->dev);
	if (!state)
		return;
	entry_backend_name(e, who, sizeof(who));
	vhost_device_disconnect(&e->dev);
	if (state == 2) {
		/* vhost-user.rst: the front-end's socket carries requests from
		 * the front-end and their replies only; the back-end's own
		 * requests have a channel of their own (BACKEND_REQ_FD). */
		snprintf(how, sizeof(how),
			 "%s broke the protocol: it sent a message nobody asked for", who);
		if (!e->socket_path && e->pid > 0) {
			/* the server is alive but not trusted any more */
			kill(e->pid, SIGKILL);
			entry_bury_server(e, msg, sizeof(msg));
		}
	} else if (e->socket_path) {
		snprintf(how, sizeof(how), "%s hung up", who);
	} else {
		char died[200];

		if (why)
			snprintf(died, sizeof(died), "%s", why);
		else
			entry_bury_server(e, died, sizeof(died));
		snprintf(how, sizeof(how), "%s %s", who, died);
	}
	switch (restart_on_loss(&e->restart, set->policy, now_ns())) {
	case RESTART_GIVE_UP_NEVER:
		snprintf(msg, sizeof(msg), "%s (restart=never)", how);
		entry_give_up(e, msg);
		return;
	case RESTART_GIVE_UP_BURST:
		snprintf(msg, sizeof(msg), "%s; it died more than %u times in %llu s, giving up",
			 how, set->policy->burst,
			 (unsigned long long)(set->policy->window_ns / 1000000000ull));
		entry_give_up(e, msg);
		return;
	case RESTART_TRY:
		break;
	default:
		return;
	}
	if (e->socket_path)
		log_warn("%s: %s; waiting for it to come back (the guest's requests wait)", e->name,
			 how);
	else
		log_warn("%s: %s; restarting it", e->name, how);
	entry_try_restart(set, e);
}

bool device_set_retry(struct device_set *set)
{
	bool waiting = false;

	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];

		if (!e->attached || !e->restart.pending)
			continue;
		if (!entry_try_restart(set, e) && e->restart.pending)
			waiting = true;
	}
	return waiting;
}

/* Copy args into the entry's own storage (args may point into it). */
static int entry_store_args(struct device_entry *e, const char *const *args)
{
	char store[sizeof(e->arg_store)];
	size_t at = 0, offsets[DEVICE_SERVER_MAX_ARGS];
	unsigned n;

	for (n = 0; args[n]; n++) {
		size_t len = strlen(args[n]) + 1;

		if (n == DEVICE_SERVER_MAX_ARGS || len > sizeof(store) - at)
			return -E2BIG;
		memcpy(store + at, args[n], len);
		offsets[n] = at;
		at += len;
	}
	memcpy(e->arg_store, store, at);
	for (unsigned i = 0; i < n; i++)
		e->args[i] = e->arg_store + offsets[i];
	e->args[n] = NULL;
	return 0;
}

/* Between VMs, new arguments: the server kept from the last VM (and its
 * socket) goes; the next attach starts one with the entry's arguments. */
static void entry_forget_server(struct device_entry *e)
{
	if (e->kept_sock >= 0)
		close(e->kept_sock);
	e->kept_sock = -1;
	e->kept_from_vm = false;
	entry_kill_server(e);
}

int device_set_replace(struct device_set *set, unsigned index, const char *const *args, char *err,
		       size_t errlen)
{
	struct device_entry *e;
	char how[160];
	int ret;

	if (index >= set->nr)
		return error_text(err, errlen, -ENODEV, "no device %u", index);
	e = &set->entries[index];
	if (e->socket_path)
		return error_text(err, errlen, -EOPNOTSUPP,
				  "%s is served by the external back-end %s; isola cannot restart "
				  "it with other arguments",
				  e->name, e->socket_path);
	if (e->attached && e->restart.given_up)
		return error_text(err, errlen, -EIO,
				  "%s was given up (its server died too often); the guest must "
				  "reset the device first",
				  e->name);
	ret = entry_store_args(e, args);
	if (ret)
		return error_text(err, errlen, ret, "%s: the new arguments are too long", e->name);
	if (!e->attached) {
		/* Between VMs: the next attach starts a server with them. */
		entry_forget_server(e);
		return 0;
	}
	if (restart_on_replace(&e->restart, now_ns()) != RESTART_TRY)
		return 0; /* a try is pending: it takes the new arguments */
	vhost_device_disconnect(&e->dev);
	if (e->pid > 0) {
		kill(e->pid, SIGKILL);
		entry_bury_server(e, how, sizeof(how));
	}
	log_info("%s: replacing isola-%s to apply new arguments", e->name, e->kind->name);
	if (!entry_try_restart(set, e))
		/* the restart policy retries (and gives the device up after 5
		 * failed starts): the caller hears of the first failure */
		return error_text(
		    err, errlen, -EIO, "the new isola-%s did not start (%s); isola retries it",
		    e->kind->name, e->last_failure[0] ? e->last_failure : "see the log");
	return 0;
}

/* args without OPTION and its value, into out (DEVICE_SERVER_MAX_ARGS + 1). */
static unsigned args_without(const char *const *args, const char *option, const char **out,
			     unsigned n)
{
	for (unsigned i = 0; args[i]; i++) {
		if (!strcmp(args[i], option) && args[i + 1]) {
			i++;
			continue;
		}
		out[n++] = args[i];
	}
	return n;
}

int device_set_update_options(struct device_set *set, const char *kind, unsigned index,
			      const char *const *drop, const char *const *add, char *err,
			      size_t errlen)
{
	const char *args[DEVICE_SERVER_MAX_ARGS + 9], *rest[DEVICE_SERVER_MAX_ARGS + 9];
	unsigned seen = 0, n;

	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];

		if (strcmp(e->kind->name, kind) || seen++ != index)
			continue;
		/* Everything stays but the options named. */
		n = 0;
		for (unsigned a = 0; e->args[a]; a++)
			args[n++] = e->args[a];
		args[n] = NULL;
		for (unsigned d = 0; drop && drop[d]; d++) {
			n = args_without(args, drop[d], rest, 0);
			rest[n] = NULL;
			memcpy(args, rest, (n + 1) * sizeof(args[0]));
		}
		for (unsigned a = 0; add && add[a]; a++) {
			if (n >= DEVICE_SERVER_MAX_ARGS)
				return error_text(err, errlen, -E2BIG, "%s: too many arguments",
						  e->name);
			args[n++] = add[a];
		}
		args[n] = NULL;
		return device_set_replace(set, i, args, err, errlen);
	}
	return error_text(err, errlen, -ENODEV, "no %s device %u", kind, index);
}

int device_set_update_net(struct device_set *set, unsigned net_index, const struct net_config *net,
			  char *err, size_t errlen)
{
	static const char *const drop[] = {"--rx-rate", "--tx-rate", NULL};
	const char *add[5];
	unsigned n = 0;

	if (net->rx_rate[0]) {
		add[n++] = "--rx-rate";
		add[n++] = net->rx_rate;
	}
	if (net->tx_rate[0]) {
		add[n++] = "--tx-rate";
		add[n++] = net->tx_rate;
	}
	add[n] = NULL;
	return device_set_update_options(set, "net", net_index, drop, add, err, errlen);
}

/* The old server is quiesced or was handed over: nothing of it is in
 * flight any more. */
static void entry_end_server(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static bool args_equal(const char *const *a, const char *const *b)
{
	unsigned i;

	for (i = 0; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return !a[i] && !b[i];
}

/* The new server had the rings when the handover failed: it may have
 * served requests from the new image and left some half done in its
 * inflight region.  The drive stays on the new image: the new server is
 * brought back through the restart path, which resubmits them there.
 * 0 when it is back, -EINPROGRESS while the restart policy retries. */
static int entry_roll_forward(struct device_set *set, struct device_entry *e, pid_t pid,
			      const char *const *args, const char *path, const char *why, char *err,
			      size_t errlen)
{
	entry_end_server(e->pid); /* stopped cleanly: nothing of it in flight */
	e->pid = pid;
	entry_store_args(e, args); /* fits: checked */
	e->restart.replacements++;
	entry_kill_server(e); /* its socket is out of step */
	log_warn("%s: the new isola-blk failed after taking the rings (%s); restarting it on %s",
		 e->name, why, path);
	if (restart_on_replace(&e->restart, now_ns()) == RESTART_TRY && entry_try_restart(set, e)) {
		log_info("%s: now served from %s (its new isola-blk was restarted)", e->name, path);
		return 0;
	}
	return error_text(err, errlen, -EINPROGRESS,
			  "the drive is on %s from now on, but its new isola-blk failed after "
			  "taking the rings (%s); isola is restarting it on that image",
			  path, why);
}

int device_set_update_disk(struct device_set *set, unsigned disk_index, bool reopen,
			   const struct disk_config *disk, char *err, size_t errlen)
{
	struct device_entry *e = NULL, next = {0};
	enum vhost_device_handover_outcome outcome;
	unsigned disks = 0;
	char why[384];
	pid_t pid = 0;
	int sock, ret;

	for (unsigned i = 0; i < set->nr && !e; i++)
		if (!strcmp(set->entries[i].kind->name, "blk") && disks++ == disk_index)
			e = &set->entries[i];
	if (!e)
		return error_text(err, errlen, -ENODEV, "no disk %u", disk_index);
	if (e->socket_path)
		return error_text(err, errlen, -EOPNOTSUPP,
				  "%s is served by the external back-end %s; isola cannot give it "
				  "another image",
				  e->name, e->socket_path);
	/* isola-blk's arguments come from the disk, as at start (a changed
	 * rate limiter takes effect the same way). */
	entry_disk_args(&next, disk, e->name);
	/* Nothing changes (rate_limiter {}, a limiter already set): the server
	 * keeps serving.  A PATCH naming path_on_host opens the file again even
	 * at the same path, as Firecracker does: Kata Containers hot-plugs by
	 * bind-mounting the container's image over the placeholder's path. */
	if (!reopen && args_equal((const char *const *)e->args, (const char *const *)next.args))
		return 0;
	/* Kept in the entry once the new server serves (a restart must start
	 * it on the new image): checked now, while nothing has changed. */
	ret = entry_store_args(&next, next.args);
	if (ret)
		return error_text(err, errlen, ret, "%s: the new arguments are too long", e->name);
	if (e->attached && (e->restart.given_up || e->restart.pending))
		return error_text(
		    err, errlen, -EBUSY,
		    e->restart.given_up
			? "%s was given up (its server died too often); the guest must "
			  "reset the device first"
			: "%s's server is being restarted; try again in a moment",
		    e->name);
	if (!e->attached) {
		/* Between VMs: the next attach starts a server on the new image. */
		ret = entry_store_args(e, next.args);
		if (ret)
			return error_text(err, errlen, ret, "%s: the new arguments are too long",
					  e->name);
		entry_forget_server(e);
		return 0;
	}
	/* The new server first, while the old one serves: a bad image or a
	 * server that does not come up leaves the drive as it was. */
	ret = supervisor_spawn(e->kind->name, next.args, &pid, &sock, why, sizeof(why));
	if (ret)
		return error_text(err, errlen, ret,
				  "the new isola-blk did not start (%s); %s keeps its image", why,
				  e->name);
	ret = vhost_device_handover(&e->dev, sock, &outcome, why, sizeof(why));
	switch (outcome) {
	case VHOST_DEVICE_HANDOVER_DONE:
		break;
	case VHOST_DEVICE_HANDOVER_REFUSED:
		entry_end_server(pid);
		return error_text(err, errlen, ret,
				  "the new isola-blk was refused (%s); the drive keeps its image",
				  why);
	case VHOST_DEVICE_HANDOVER_ROLL_BACK:
		/* The old server stopped badly, or the new one failed before
		 * it had a ring: the old image comes back through the restart
		 * path, which resubmits what the old server left in flight. */
		entry_end_server(pid);
		entry_kill_server(e);
		log_warn("%s: handover to a new image failed (%s); restarting isola-blk on the "
			 "old one",
			 e->name, why);
		if (restart_on_replace(&e->restart, now_ns()) == RESTART_TRY)
			entry_try_restart(set, e);
		return error_text(err, errlen, ret,
				  "%s; the drive keeps its old image (its server was restarted)",
				  why);
	case VHOST_DEVICE_HANDOVER_ROLL_FORWARD:
		return entry_roll_forward(set, e, pid, next.args, disk->path, why, err, errlen);
	}
	entry_end_server(e->pid);
	e->pid = pid;
	entry_store_args(e, next.args); /* fits: it fitted in next */
	e->restart.replacements++;
	log_info("%s: now served from %s (isola-blk handed over with no request in flight)",
		 e->name, disk->path);
	return 0;
}

/* "inode 123, modified 2026-12-06 19:30:01 UTC" of the binary at path, or
 * -errno (the file is not there: nothing to upgrade to). */
static int binary_identity(const char *path, char *text, size_t len)
{
	struct stat st;
	struct tm tm;
	char when[32] = "?";

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (gmtime_r(&st.st_mtime, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(text, len, "inode %llu, modified %s", (unsigned long long)st.st_ino, when);
	return 0;
}

/* The handover failed and left the entry's old server (or the new one)
 * with requests it took and did not complete: the restart path brings
 * the device back from the binary on disk, which resubmits them from the
 * inflight region (the image is the same: a resubmitted write lands where
 * it was meant to).  0 once it is back, -EINPROGRESS while the policy
 * retries. */
static int entry_upgrade_by_restart(struct device_set *set, struct device_entry *e, const char *why,
				    char *err, size_t errlen)
{
	log_warn("%s: the handover to the new isola-%s failed (%s); restarting it from the new "
		 "binary, in-flight requests resumed",
		 e->name, e->kind->name, why);
	if (restart_on_replace(&e->restart, now_ns()) == RESTART_TRY && entry_try_restart(set, e))
		return 0;
	return error_text(
	    err, errlen, -EINPROGRESS,
	    "%s: the handover to the new isola-%s failed (%s); isola is restarting it "
	    "from the new binary",
	    e->name, e->kind->name, why);
}

/* device_set_upgrade for one entry. */
static int entry_upgrade(struct device_set *set, struct device_entry *e, char *err, size_t errlen)
{
	enum vhost_device_handover_outcome outcome;
	char binary[PATH_MAX + 16], identity[96], why[384];
	uint64_t start = now_ns();
	pid_t pid = 0, old = e->pid;
	int sock, ret;

	if (e->socket_path)
		return error_text(err, errlen, -EOPNOTSUPP,
				  "%s is served by the external back-end %s; isola does not start "
				  "it, so it cannot upgrade it",
				  e->name, e->socket_path);
	if (e->kind->hands_over_socket)
		return error_text(err, errlen, -EOPNOTSUPP,
				  "%s is served by virtiofsd, not an isola server; a new one would "
				  "not know the guest's FUSE session, so it is not upgraded",
				  e->name);
	ret = supervisor_server_binary(e->kind->name, binary, sizeof(binary));
	if (ret == -EPERM)
		return error_text(err, errlen, ret,
				  "%s: inside --jail isola runs the isola-%s it opened before it "
				  "entered the jail; a new binary on disk cannot reach it (restart "
				  "the VMM to run it)",
				  e->name, e->kind->name);
	if (!ret)
		ret = binary_identity(binary, identity, sizeof(identity));
	if (ret)
		return error_text(err, errlen, ret,
				  "%s: no isola-%s to upgrade to at %s: %s; install the new binary "
				  "there (next to isola) first",
				  e->name, e->kind->name, binary, strerror(-ret));
	if (e->attached && (e->restart.given_up || e->restart.pending))
		return error_text(err, errlen, -EBUSY,
				  e->restart.given_up
				      ? "%s was given up (its server died too often); the guest "
					"must reset the device first"
				      : "%s's server is being restarted; try again in a moment",
				  e->name);
	if (!e->attached) {
		/* Between VMs: the next attach starts one from the new binary. */
		entry_forget_server(e);
		log_info("%s: upgrading isola-%s: new binary %s (%s) from the next boot on",
			 e->name, e->kind->name, binary, identity);
		return 0;
	}
	log_info("%s: upgrading isola-%s (pid %d): new binary %s (%s)", e->name, e->kind->name,
		 (int)old, binary, identity);
	if (!strcmp(e->kind->name, "vsock")) {
		/* isola-vsock listens on the host's --uds path, which a second
		 * server cannot bind while the first one lives: no handover.
		 * The restart path ends the old one first (its connections
		 * are reset, as after a crash: docs/vsock.md). */
		vhost_device_disconnect(&e->dev);
		entry_kill_server(e);
		if (restart_on_replace(&e->restart, now_ns()) == RESTART_TRY &&
		    entry_try_restart(set, e)) {
			log_info("%s: isola-%s upgraded in %.1f ms: pid %d -> %d, restarted (its "
				 "connections were reset)",
				 e->name, e->kind->name, (double)(now_ns() - start) / 1e6, (int)old,
				 (int)e->pid);
			return 0;
		}
		return error_text(err, errlen, -EINPROGRESS,
				  "%s: the new isola-%s did not start (%s); isola retries it",
				  e->name, e->kind->name,
				  e->last_failure[0] ? e->last_failure : "see the log");
	}
	/* The new server first, while the old one serves: one that does not
	 * start or negotiate leaves the device as it was. */
	ret = supervisor_spawn(e->kind->name, e->args, &pid, &sock, why, sizeof(why));
	if (ret)
		return error_text(
		    err, errlen, ret,
		    "%s: the new isola-%s did not start (%s); the old one keeps serving", e->name,
		    e->kind->name, why);
	/* A graceful stop of the old one: GET_VRING_BASE on each ring, which
	 * isola's servers answer once every request they took is complete
	 * (vhost-user "Starting and stopping rings"), then the new one takes
	 * the rings at those indexes (docs/vhost-user.md "Handing a device to
	 * another back-end").  Not a kill and a replay: nothing is in flight
	 * when the old one goes. */
	ret = vhost_device_handover(&e->dev, sock, &outcome, why, sizeof(why));
	switch (outcome) {
	case VHOST_DEVICE_HANDOVER_DONE:
		break;
	case VHOST_DEVICE_HANDOVER_REFUSED:
		entry_end_server(pid);
		return error_text(
		    err, errlen, ret,
		    "%s: the new isola-%s was refused (%s); the old one keeps serving", e->name,
		    e->kind->name, why);
	case VHOST_DEVICE_HANDOVER_ROLL_BACK:
		/* the new one served nothing; the old one may hold requests */
		entry_end_server(pid);
		entry_kill_server(e);
		return entry_upgrade_by_restart(set, e, why, err, errlen);
	case VHOST_DEVICE_HANDOVER_ROLL_FORWARD:
		/* the old one stopped cleanly; the new one may hold requests */
		entry_end_server(e->pid);
		e->pid = pid;
		entry_kill_server(e);
		return entry_upgrade_by_restart(set, e, why, err, errlen);
	}
	entry_end_server(old);
	e->pid = pid;
	/* An upgrade is not a loss: nothing is charged to the restart budget
	 * (restart_policy.h), and restart=never does not forbid it. */
	e->restart.replacements++;
	log_info("%s: isola-%s upgraded in %.1f ms: pid %d -> %d, handed over with no request in "
		 "flight",
		 e->name, e->kind->name, (double)(now_ns() - start) / 1e6, (int)old, (int)pid);
	return 0;
}

int device_set_upgrade(struct device_set *set, const char *kind, unsigned kind_index,
		       unsigned *upgraded, char *err, size_t errlen)
{
	unsigned seen = 0, done = 0;
	int first = 0;

	for (unsigned i = 0; i < set->nr; i++) {
		struct device_entry *e = &set->entries[i];
		char why[512];
		int ret;

		if (kind && (strcmp(e->kind->name, kind) || seen++ != kind_index))
			continue;
		if (!kind && (e->socket_path || e->kind->hands_over_socket))
			continue; /* all of isola's servers: someone else's back-end is theirs
				   * (a virtiofsd too: a new one would not know the
				   * guest's FUSE session) */
		ret = entry_upgrade(set, e, why, sizeof(why));
		if (!ret) {
			done++;
		} else {
			if (!kind)
				log_warn("%s", why);
			if (!first) {
				first = ret;
				snprintf(err, errlen, "%s", why);
			}
		}
		if (kind)
			break;
	}
	if (upgraded)
		*upgraded = done;
	if (kind && seen <= kind_index)
		return error_text(err, errlen, -ENODEV, "no %s device %u", kind, kind_index);
	return first;
}

void device_set_reap(struct device_set *set)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[160], why[224];

		supervisor_describe_status(status, how, sizeof(how));
		for (unsigned i = 0; i < set->nr; i++) {
			struct device_entry *e = &set->entries[i];

			if (e->pid != pid)
				continue;
			e->pid = 0;
			snprintf(why, sizeof(why), "(pid %d) %s", (int)pid, how);
			if (e->attached && e->dev.sock >= 0)
				device_set_lost(set, i, why);
		}
	}
}

/* A back-end stopped a ring the guest broke (SET_VRING_ERR). */
static void on_ring_error(void *opaque, int fd, short revents)
{
	struct device_entry *e = opaque;

	(void)fd;
	if ((revents & POLLIN) && e->attached)
		vhost_device_ring_error(&e->dev);
}

static void on_socket(void *opaque, int fd, short revents)
{
	struct device_entry *e = opaque;
	struct device_set *set = e->set;

	(void)revents;
	/* Believe only the current socket (a SIGCHLD earlier in the round
	 * may have replaced it); device_set_lost re-checks it as well. */
	if (e->attached && fd == e->dev.sock)
		device_set_lost(set, (unsigned)(e - set->entries), NULL);
}

int device_set_watch(struct device_set *set, struct evloop *loop, int ring_error_order,
		     int lost_order)
{
	int ret = 0;

	set->loop = loop;
	for (unsigned i = 0; i < set->nr && !ret; i++) {
		struct device_entry *e = &set->entries[i];
		int sock = e->attached ? e->dev.sock : -1, err = e->attached ? e->dev.err_fd : -1;

		e->set = set;
		if (!set->sock_watch[i]) {
			set->sock_watch[i] =
			    evloop_add_fd(loop, sock, POLLIN | POLLRDHUP, lost_order, on_socket, e);
			set->err_watch[i] =
			    evloop_add_fd(loop, err, POLLIN, ring_error_order, on_ring_error, e);
			if (set->sock_watch[i] < 0 || set->err_watch[i] < 0) {
				ret =
				    set->sock_watch[i] < 0 ? set->sock_watch[i] : set->err_watch[i];
				if (set->sock_watch[i] > 0)
					evloop_remove_fd(loop, set->sock_watch[i]);
				if (set->err_watch[i] > 0)
					evloop_remove_fd(loop, set->err_watch[i]);
				set->sock_watch[i] = set->err_watch[i] = 0;
			}
			continue;
		}
		ret = evloop_modify_fd(loop, set->sock_watch[i], sock, POLLIN | POLLRDHUP);
		if (!ret)
			ret = evloop_modify_fd(loop, set->err_watch[i], err, POLLIN);
	}
	return ret;
}

void device_set_unwatch(struct device_set *set)
{
	for (unsigned i = 0; i < DEVICE_SET_MAX; i++)
		set->sock_watch[i] = set->err_watch[i] = 0;
	set->loop = NULL;
}

int device_set_add_saved(struct device_set *set, const char *kind, const char *name, bool restart,
			 const char *socket, const char *const *args,
			 const uint8_t *frontend_config, char *err, size_t errlen)
{
	struct device_entry *e;

	if (set->nr == DEVICE_SET_MAX || !device_kind_by_name(kind))
		return error_text(err, errlen, -EINVAL, "device %s: no room for it, or no kind %s",
				  name, kind);
	e = set_add(set, kind, name, restart, NULL);
	if (socket && socket[0]) {
		snprintf(e->arg_store, sizeof(e->arg_store), "%s", socket);
		e->socket_path = e->arg_store;
		restart_state_init(&e->restart, restart, true);
		e->args[0] = NULL;
	} else if (entry_store_args(e, args)) {
		set->nr--;
		return error_text(err, errlen, -E2BIG, "device %s: its arguments do not fit", name);
	}
	memcpy(e->frontend_config, frontend_config, sizeof(e->frontend_config));
	return 0;
}
