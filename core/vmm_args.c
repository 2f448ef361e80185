// SPDX-License-Identifier: MIT
/*
 * Firecracker's command line for `isola --api-sock ...` (core/vmm_args.h).
 * The flags and their rules are Firecracker's `firecracker --help` (its
 * src/firecracker/src/main.rs argument list): every flag it takes is
 * accepted here, so an orchestrator's command line needs no editing; a flag
 * for something isola does not have (MMDS, Firecracker's snapshot format, custom seccomp BPF)
 * is refused with a sentence rather than ignored, because ignoring it would
 * silently drop what the caller asked for.
 */
#define _GNU_SOURCE
#include "core/vmm_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"

enum vmm_flag_kind {
	FLAG_SWITCH, /* takes no value */
	FLAG_VALUE,
};

struct vmm_flag {
	const char *name; /* without the leading "--" */
	enum vmm_flag_kind kind;
};

/* Firecracker's arguments (main.rs), plus --seccomp-level (Firecracker
 * before 1.0; older orchestrators still pass it). */
static const struct vmm_flag vmm_flags[] = {
    {"api-sock", FLAG_VALUE},
    {"id", FLAG_VALUE},
    {"config-file", FLAG_VALUE},
    {"no-api", FLAG_SWITCH},
    {"log-path", FLAG_VALUE},
    {"level", FLAG_VALUE},
    {"module", FLAG_VALUE},
    {"show-level", FLAG_SWITCH},
    {"show-log-origin", FLAG_SWITCH},
    {"metrics-path", FLAG_VALUE},
    {"http-api-max-payload-size", FLAG_VALUE},
    {"seccomp-level", FLAG_VALUE},
    {"seccomp-filter", FLAG_VALUE},
    {"start-time-us", FLAG_VALUE},
    {"start-time-cpu-us", FLAG_VALUE},
    {"parent-cpu-time-us", FLAG_VALUE},
    {"boot-timer", FLAG_SWITCH},
    {"enable-pci", FLAG_SWITCH},
    {"metadata", FLAG_VALUE},
    {"mmds-size-limit", FLAG_VALUE},
    {"snapshot-version", FLAG_SWITCH},
    {"describe-snapshot", FLAG_VALUE},
    {"help", FLAG_SWITCH},
    {"version", FLAG_SWITCH},
};

#define NR_FLAGS (sizeof(vmm_flags) / sizeof(vmm_flags[0]))

static int vmm_args_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct vmm_flag *vmm_flag_find(const char *arg)
{
	if (strncmp(arg, "--", 2))
		return NULL;
	for (unsigned i = 0; i < NR_FLAGS; i++)
		if (!strcmp(arg + 2, vmm_flags[i].name))
			return &vmm_flags[i];
	return NULL;
}

bool vmm_args_is_vmm_flag(const char *arg)
{
	const struct vmm_flag *flag = vmm_flag_find(arg);

	return flag && strcmp(flag->name, "help") && strcmp(flag->name, "version");
}

bool vmm_args_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (!len || len > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (*p != '-' && !isalnum((unsigned char)*p))
			return false;
	return true;
}

/* A decimal unsigned integer, all of the text. */
static bool vmm_args_number(const char *text, unsigned long long *out)
{
	char *end;

	if (!*text || !isdigit((unsigned char)*text))
		return false;
	errno = 0;
	*out = strtoull(text, &end, 10);
	return !errno && !*end;
}

/* Firecracker's LevelFilter names, case-insensitive, and isola's. */
static int vmm_args_level(const char *text, int *level)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
	    {"Off", LOG_LEVEL_OFF},	{"Error", LOG_LEVEL_ERROR}, {"Warning", LOG_LEVEL_WARN},
	    {"Warn", LOG_LEVEL_WARN},	{"Info", LOG_LEVEL_INFO},   {"Debug", LOG_LEVEL_DEBUG},
	    {"Trace", LOG_LEVEL_DEBUG},
	};

	for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcasecmp(text, levels[i].name)) {
			*level = levels[i].level;
			return 0;
		}
	return -EINVAL;
}

static int vmm_args_take(struct vmm_args *args, const char *name, const char *value, char *err,
			 size_t errlen)
{
	unsigned long long number;

	if (!strcmp(name, "api-sock")) {
		args->api_sock = value;
	} else if (!strcmp(name, "id")) {
		if (!vmm_args_id_valid(value))
			return vmm_args_fail(err, errlen,
					     "--id %s: an instance id is 1 to 64 letters, digits "
					     "or '-'",
					     value);
		args->instance_id = value;
	} else if (!strcmp(name, "config-file")) {
		args->config_file = value;
	} else if (!strcmp(name, "no-api")) {
		args->no_api = true;
	} else if (!strcmp(name, "log-path")) {
		args->logger = true;
		args->log_path = value;
	} else if (!strcmp(name, "level")) {
		args->logger = true;
		if (vmm_args_level(value, &args->log_level))
			return vmm_args_fail(err, errlen,
					     "--level %s: use Error, Warning, Info, Debug, Trace "
					     "or Off",
					     value);
	} else if (!strcmp(name, "module")) {
		args->logger = true;
		args->log_module = value;
	} else if (!strcmp(name, "show-level")) {
		args->logger = true;
		args->show_level = true;
	} else if (!strcmp(name, "show-log-origin")) {
		args->logger = true;
		args->show_log_origin = true;
	} else if (!strcmp(name, "metrics-path")) {
		args->metrics_path = value;
	} else if (!strcmp(name, "http-api-max-payload-size")) {
		if (!vmm_args_number(value, &number) || !number ||
		    number > VMM_ARGS_MAX_MAX_PAYLOAD)
			return vmm_args_fail(err, errlen,
					     "--http-api-max-payload-size %s: give a number of "
					     "bytes from 1 to %u (default %u)",
					     value, VMM_ARGS_MAX_MAX_PAYLOAD,
					     VMM_ARGS_DEFAULT_MAX_PAYLOAD);
		args->max_payload = (unsigned)number;
	} else if (!strcmp(name, "seccomp-level")) {
		/* Firecracker < 1.0: 0 no filter, 1 syscall numbers, 2 and
		 * arguments.  isola's filters always check arguments. */
		if (strcmp(value, "0") && strcmp(value, "1") && strcmp(value, "2"))
			return vmm_args_fail(err, errlen, "--seccomp-level %s: use 0, 1 or 2",
					     value);
		args->no_seccomp = !strcmp(value, "0");
	} else if (!strcmp(name, "seccomp-filter")) {
		return vmm_args_fail(err, errlen,
				     "--seccomp-filter %s: isola's seccomp filters are built in "
				     "(docs/security.md) and it does not load Firecracker's "
				     "compiled BPF files; leave the flag out",
				     value);
	} else if (!strcmp(name, "start-time-us") || !strcmp(name, "start-time-cpu-us") ||
		   !strcmp(name, "parent-cpu-time-us") || !strcmp(name, "mmds-size-limit")) {
		/* Numbers Firecracker only reports in its metrics (or MMDS's
		 * limit, with nothing to limit here): checked, not used. */
		if (!vmm_args_number(value, &number))
			return vmm_args_fail(err, errlen, "--%s %s: expected a whole number", name,
					     value);
	} else if (!strcmp(name, "boot-timer")) {
		args->boot_timer = true;
	} else if (!strcmp(name, "enable-pci")) {
		/* isola's devices are always PCI. */
	} else if (!strcmp(name, "metadata")) {
		return vmm_args_fail(err, errlen,
				     "--metadata %s: isola does not implement MMDS; leave the flag "
				     "out",
				     value);
	} else if (!strcmp(name, "snapshot-version") || !strcmp(name, "describe-snapshot")) {
		return vmm_args_fail(err, errlen,
				     "--%s: isola's snapshots have their own versioned format, "
				     "not Firecracker's (docs/snapshot.md); leave the flag out",
				     name);
	} else if (!strcmp(name, "help")) {
		args->help = true;
	} else if (!strcmp(name, "version")) {
		args->version = true;
	}
	return 0;
}

int vmm_args_parse(struct vmm_args *args, int argc, char **argv, char *err, size_t errlen)
{
	bool seen[NR_FLAGS] = {false};

	*args = (struct vmm_args){.log_level = LOG_LEVEL_WARN,
				  .max_payload = VMM_ARGS_DEFAULT_MAX_PAYLOAD};
	/* --help anywhere wins, even after a flag that wants a value
	 * ("isola --api-sock --help"). */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			args->help = true;
			return 0;
		}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		const struct vmm_flag *flag;
		char name[64];
		const char *eq = strchr(arg, '=');

		/* --flag=value as well as --flag value */
		if (!strncmp(arg, "--", 2) && eq && (size_t)(eq - arg) < sizeof(name)) {
			memcpy(name, arg, (size_t)(eq - arg));
			name[eq - arg] = '\0';
			flag = vmm_flag_find(name);
			if (flag && flag->kind == FLAG_VALUE)
				value = eq + 1;
			else
				flag = NULL;
		} else {
			flag = vmm_flag_find(arg);
		}
		if (!strcmp(arg, "-h"))
			flag = vmm_flag_find("--help");
		if (!flag)
			return vmm_args_fail(err, errlen,
					     "unknown option '%s'; see 'isola --api-sock "
					     "--help'",
					     arg);
		if (seen[flag - vmm_flags])
			return vmm_args_fail(err, errlen, "--%s is given twice; give it once",
					     flag->name);
		seen[flag - vmm_flags] = true;
		if (flag->kind == FLAG_VALUE && !value) {
			/* "--api-sock --id x": the flag's value is missing, not
			 * "--id" (a path may not start with "--" here). */
			if (i + 1 >= argc || vmm_flag_find(argv[i + 1]) ||
			    !strcmp(argv[i + 1], "-h"))
				return vmm_args_fail(err, errlen, "missing value for --%s",
						     flag->name);
			value = argv[++i];
		}
		int ret = vmm_args_take(args, flag->name, value, err, errlen);

		if (ret)
			return ret;
	}
	if (args->help || args->version)
		return 0;
	if (args->no_api) {
		if (!args->config_file)
			return vmm_args_fail(err, errlen,
					     "--no-api needs --config-file FILE: without the API "
					     "the file is the only way to configure the VM");
		if (args->api_sock)
			return vmm_args_fail(
			    err, errlen, "--no-api and --api-sock contradict each other; give one");
		return 0;
	}
	if (!args->api_sock)
		args->api_sock = VMM_ARGS_DEFAULT_API_SOCK;
	return 0;
}
