/* SPDX-License-Identifier: MIT */
/*
 * The command line of an API-driven VMM: Firecracker's (its `firecracker
 * --help`, the flags orchestrators such as Kata Containers and
 * firecracker-go-sdk pass), which isola accepts as given.  docs/api.md,
 * "Command line", lists each flag and what isola does with it.
 */
#ifndef ISOLA_CORE_VMM_ARGS_H
#define ISOLA_CORE_VMM_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* Firecracker's default for --api-sock. */
#define VMM_ARGS_DEFAULT_API_SOCK "/run/firecracker.socket"
/* Firecracker's HTTP_MAX_PAYLOAD_SIZE, the default body limit. */
#define VMM_ARGS_DEFAULT_MAX_PAYLOAD 51200u
/* The largest --http-api-max-payload-size isola takes: a body is held
 * whole in memory per connection. */
#define VMM_ARGS_MAX_MAX_PAYLOAD (16u << 20)

struct vmm_args {
	const char *api_sock;	 /* NULL with --no-api */
	const char *config_file; /* NULL: wait for InstanceStart */
	const char *instance_id; /* --id; NULL: "anonymous-instance" */
	bool no_api;
	/* --log-path, --level, --show-level, --show-log-origin, --module:
	 * the logger before any API call (logger: one of them was given). */
	bool logger;
	const char *log_path;
	int log_level; /* enum log_level */
	bool show_level, show_log_origin;
	const char *log_module;
	const char *metrics_path; /* --metrics-path */
	unsigned max_payload;	  /* --http-api-max-payload-size */
	bool no_seccomp;	  /* --seccomp-level 0 */
	bool boot_timer;	  /* --boot-timer (accepted; see docs/api.md) */
	bool help, version;
};

/*
 * Parse argv[1..argc-1] (the process options --jail*, --no-seccomp were
 * taken out already).  Returns 0, or -EINVAL with one sentence in err that
 * names the flag and says what to do.
 */
int vmm_args_parse(struct vmm_args *args, int argc, char **argv, char *err, size_t errlen);

/* Firecracker's instance id rule: 1..64 of [A-Za-z0-9-]. */
bool vmm_args_id_valid(const char *id);

/* Whether argv[1] starts an API-driven VMM's command line (any of the
 * flags above), rather than an isola command such as `run`. */
bool vmm_args_is_vmm_flag(const char *arg);

#endif
