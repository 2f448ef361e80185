// SPDX-License-Identifier: MIT
/*
 * isola-vsock: a virtio-vsock device (virtio 1.2 §5.10) served over
 * vhost-user, with Firecracker's hybrid host side (docs/vsock.md): host
 * processes reach the guest through the Unix socket --uds PATH
 * ("CONNECT <port>\n"), the guest reaches host listeners on PATH_<port>.
 * The hooks lib/server_main.c calls: listen on PATH and have its directory
 * bind-mounted into the sandbox (before it), the epoll set (after), keep
 * their fds, serve, log the counters.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/server_main.h"
#include "servers/vsock/vsock.h"

static int parse_u64(const struct server_option *option, const char *text, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno || *end || text[0] < '0' || text[0] > '9' || n < min || n > max) {
		log_error("%s %s: want a number from %" PRIu64 " to %" PRIu64, option->name, text,
			  min, max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* §5.10.4: 0, 1, 2 and 0xffffffff are reserved; the upper 32 bits zero. */
static int vsock_parse_cid(void *device, const struct server_option *option, const char *value)
{
	return parse_u64(option, value, VSOCK_CID_MIN, VSOCK_CID_MAX,
			 &((struct vsock *)device)->guest_cid);
}

static int vsock_parse_max(void *device, const struct server_option *option, const char *value)
{
	uint64_t n;
	int ret = parse_u64(option, value, 1, VSOCK_MAX_CONNECTIONS, &n);

	((struct vsock *)device)->max_connections = (uint32_t)n;
	return ret;
}

static int vsock_parse_buf(void *device, const struct server_option *option, const char *value)
{
	uint64_t n;
	int ret = parse_u64(option, value, VSOCK_MIN_BUF_ALLOC, VSOCK_MAX_BUF_ALLOC, &n);

	((struct vsock *)device)->buf_alloc = (uint32_t)n;
	return ret;
}

/* PATH made absolute (the sandbox's root is not the caller's cwd), with
 * room for "_4294967295" in a sockaddr_un, in a directory that exists. */
static int vsock_parse_uds(void *device, const struct server_option *option, const char *value)
{
	struct vsock *v = device;
	char dir[PATH_MAX], real[PATH_MAX], full[PATH_MAX];
	const char *slash = strrchr(value, '/');
	const char *base = slash ? slash + 1 : value;
	int n;

	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		log_error("%s %s: want a socket's path, not a directory", option->name, value);
		return -EINVAL;
	}
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == value)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - value), value);
	if (!realpath(dir, real)) {
		log_error("%s %s: directory %s: %s", option->name, value, dir, strerror(errno));
		return -EINVAL;
	}
	n = snprintf(full, sizeof(full), "%s/%s", strcmp(real, "/") ? real : "", base);
	/* "_" and ten digits must still fit sun_path (108 with its NUL) */
	if (n < 0 || (size_t)n + 11 >= sizeof(v->uds_path)) {
		log_error("%s %s: the path (%s) is too long for a Unix socket with a _PORT "
			  "suffix: at most %zu characters",
			  option->name, value, full, sizeof(v->uds_path) - 12);
		return -EINVAL;
	}
	memcpy(v->uds_path, full, (size_t)n + 1);
	/* real is a prefix of full, so it fits too */
	memcpy(v->uds_dir, real, strlen(real) + 1);
	return 0;
}

/* Every connection holds a host socket: raise the soft fd limit to the
 * hard one, and keep --max-connections below it with room for the
 * server's own fds and the vhost-user messages' (an accept4 or a
 * message's fds failing for EMFILE would stall host clients or drop the
 * front-end). */
#define VSOCK_OWN_FDS 64

static void vsock_fit_fd_limit(struct vsock *v)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
		return;
	if (lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
			getrlimit(RLIMIT_NOFILE, &lim);
	}
	if (lim.rlim_cur == RLIM_INFINITY ||
	    (uint64_t)v->max_connections + VSOCK_OWN_FDS <= (uint64_t)lim.rlim_cur)
		return;
	if (lim.rlim_cur <= 2 * VSOCK_OWN_FDS) {
		log_warn("the open-files limit (%llu) leaves no room for connections beyond a few",
			 (unsigned long long)lim.rlim_cur);
		v->max_connections = VSOCK_OWN_FDS / 2;
		return;
	}
	log_warn("--max-connections %u: the open-files limit is %llu (ulimit -n); %llu "
		 "connections at most",
		 v->max_connections, (unsigned long long)lim.rlim_cur,
		 (unsigned long long)(lim.rlim_cur - VSOCK_OWN_FDS));
	v->max_connections = (uint32_t)(lim.rlim_cur - VSOCK_OWN_FDS);
}

/* The sandbox sees PATH's whole directory (not its subdirectories): name
 * the other sockets there, which a compromised server could connect to. */
static void vsock_warn_neighbours(const struct vsock *v)
{
	const char *base = strrchr(v->uds_path, '/') + 1;
	size_t base_len = strlen(base);
	unsigned found = 0;
	struct dirent *e;
	DIR *d = opendir(v->uds_dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		/* PATH itself, and the PATH_<port> listeners the guest reaches */
		if (!strncmp(e->d_name, base, base_len) &&
		    (!e->d_name[base_len] || (e->d_name[base_len] == '_' &&
					      strspn(e->d_name + base_len + 1, "0123456789") ==
						  strlen(e->d_name + base_len + 1))))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (found++ < 3)
			log_warn("%s/%s: another socket in the --uds directory, which the sandbox "
				 "shows isola-vsock; keep PATH in a directory of its own",
				 v->uds_dir, e->d_name);
	}
	closedir(d);
	if (found > 3)
		log_warn("... and %u more sockets there", found - 3);
}

static int vsock_create(void *device, char *err, size_t errlen)
{
	struct vsock *v = device;
	int ret;

	vsock_fit_fd_limit(v);
	ret = vsock_setup(v, err, errlen);

	if (ret < 0)
		return ret;
	ret = vsock_open(v, err, errlen);
	if (ret < 0)
		return ret;
	/* connect(PATH_P) happens inside the sandbox: its empty root gets
	 * this one directory */
	sandbox_bind_dir(v->uds_dir);
	vsock_warn_neighbours(v);
	return 0;
}

static int vsock_prepare(void *device, struct server_backend *backend, char *err, size_t errlen)
{
	struct vsock *v = device;

	backend->ops = &v->ops;
	return vsock_open_loop(v, err, errlen);
}

static unsigned vsock_keep_fds(void *device, int *fds, unsigned max)
{
	return vsock_fds(device, fds, max);
}

static void vsock_started(void *device)
{
	struct vsock *v = device;

	log_info("guest CID %" PRIu64 ", host side %s (guest-to-host: %s_PORT), at most %u "
		 "connections, %u bytes buffered per connection",
		 v->guest_cid, v->uds_path, v->uds_path, v->max_connections, v->buf_alloc);
}

static void vsock_server_destroy(void *device)
{
	struct vsock *v = device;

	vsock_log_counters(v, "exit");
	vsock_destroy(v);
}

static const struct server_option vsock_options[] = {
    {"--cid", "N", true, "the guest's context ID, 3 to 4294967294 (virtio 1.2 5.10.4)",
     vsock_parse_cid},
    {"--uds", "PATH", true,
     "the host side (Firecracker's hybrid vsock): host\n"
     "processes connect to the Unix socket PATH and write\n"
     "\"CONNECT <port>\\n\"; the guest's connections to CID 2\n"
     "port P reach a listener on PATH_P",
     vsock_parse_uds},
    {"--max-connections", "N", false,
     "connections at once, 1 to 65536 (default 1024); more\n"
     "are refused (RST to the guest, host client closed)",
     vsock_parse_max},
    {"--buf-alloc", "BYTES", false,
     "receive buffer per connection we offer the guest,\n"
     "4096 to 16777216 (default 262144): what is held when\n"
     "a host socket does not read",
     vsock_parse_buf},
    {0},
};

static const struct server_def vsock_server_def = {
    .name = "isola-vsock",
    .description = "A virtio-vsock device (virtio 1.2 5.10) served by a vhost-user back-end\n"
		   "(the isola core, QEMU's vhost-user-vsock-pci), joined to host Unix\n"
		   "sockets as Firecracker's hybrid vsock is (docs/vsock.md).\n",
    .options = vsock_options,
    .allowlist = &vsock_sandbox_allowlist,
    .create = vsock_create,
    .prepare = vsock_prepare,
    .keep_fds = vsock_keep_fds,
    .started = vsock_started,
    .destroy = vsock_server_destroy,
};

int main(int argc, char **argv)
{
	static struct vsock v;

	vsock_defaults(&v);
	return server_main(argc, argv, &vsock_server_def, &v);
}
