// SPDX-License-Identifier: MIT
/*
 * Firecracker's configuration objects (swagger "BootSource",
 * "MachineConfiguration", "Drive", "EntropyDevice", "Logger", "Metrics",
 * "SerialDevice") into struct vm_config, with the limits `isola run` applies.
 * Shared by the API handlers and --config-file; a message always starts with
 * the field's path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "core/api/api_internal.h"
#include "lib/log.h"

int api_set_string(const char **field, const char *value)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return -ENOMEM;
	free((char *)*field);
	*field = copy;
	return 0;
}

int api_check_file(const char *path, const char *where, bool writable, char *err, size_t errlen)
{
	struct stat st;

	if (!*path)
		return api_fail(err, errlen, "%s: must not be empty", where);
	if (strlen(path) >= 4096)
		return api_fail(err, errlen, "%s: path is longer than 4095 bytes", where);
	if (stat(path, &st)) {
		if (errno == ENOENT)
			return api_fail(err, errlen, "%s: no such file (%s)", where, path);
		return api_fail(err, errlen, "%s: %s: %s", where, path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return api_fail(err, errlen, "%s: %s is a directory, not a file", where, path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return api_fail(err, errlen, "%s: %s is not a regular file or block device", where,
				path);
	if (access(path, R_OK))
		return api_fail(err, errlen, "%s: %s cannot be read: %s", where, path,
				strerror(errno));
	if (writable && access(path, W_OK))
		return api_fail(err, errlen,
				"%s: %s cannot be written (%s); set is_read_only to true or fix "
				"its permissions",
				where, path, strerror(errno));
	return 0;
}

int api_parse_boot_source(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
			  size_t errlen)
{
	static const char *const known[] = {"kernel_image_path", "boot_args", "initrd_path", NULL};
	const char *kernel = NULL, *initrd = NULL, *args = NULL;
	char where[256];
	int ret;

	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "kernel_image_path", true, &kernel, err, errlen);
	if (ret >= 0 && !ret)
		ret = api_json_string(v, prefix, "initrd_path", false, &initrd, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "boot_args", false, &args, err, errlen);
	if (ret < 0)
		return ret;
	api_json_path(where, sizeof(where), prefix, "kernel_image_path");
	ret = api_check_file(kernel, where, false, err, errlen);
	if (ret)
		return ret;
	if (initrd) {
		api_json_path(where, sizeof(where), prefix, "initrd_path");
		ret = api_check_file(initrd, where, false, err, errlen);
		if (ret)
			return ret;
	}
	/* "" and no boot_args boot the same; keeping one form lets GET
	 * /vm/config echo it after isola appended root= (api_config_finalize) */
	if (args && !*args)
		args = NULL;
	if (api_set_string(&cfg->kernel_path, kernel) ||
	    api_set_string(&cfg->initrd_path, initrd) || api_set_string(&cfg->cmdline, args))
		return api_fail(err, errlen, "out of memory");
	cfg->cmdline_appended = 0;
	return 0;
}

static uint64_t api_host_ram_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || page_size <= 0)
		return UINT64_MAX >> 20;
	return ((uint64_t)pages * (uint64_t)page_size) >> 20;
}

/* A string member that may only hold the one value isola implements. */
static int api_only_value(json_object *v, const char *prefix, const char *key, const char *allowed,
			  const char *why, char *err, size_t errlen)
{
	const char *value;
	char path[256];
	int ret = api_json_string(v, prefix, key, false, &value, err, errlen);

	if (ret)
		return ret < 0 ? ret : 0;
	api_json_path(path, sizeof(path), prefix, key);
	if (strcmp(value, allowed))
		return api_fail(err, errlen, "%s: \"%s\" is not supported: %s; use \"%s\"", path,
				value, why, allowed);
	return 0;
}

/* Firecracker's HugePageConfig (swagger MachineConfiguration.huge_pages):
 * "None", "Transparent" (THP by madvise) or "2M" (hugetlbfs pages). */
static int api_parse_huge_pages(json_object *v, const char *prefix, enum config_huge_pages *huge,
				char *err, size_t errlen)
{
	const char *value;
	char path[256];
	int ret = api_json_string(v, prefix, "huge_pages", false, &value, err, errlen);

	if (ret)
		return ret < 0 ? ret : 0;
	api_json_path(path, sizeof(path), prefix, "huge_pages");
	if (!strcmp(value, "None"))
		*huge = CONFIG_HUGE_PAGES_NONE;
	else if (!strcmp(value, "Transparent"))
		*huge = CONFIG_HUGE_PAGES_TRANSPARENT;
	else if (!strcmp(value, "2M"))
		*huge = CONFIG_HUGE_PAGES_2M;
	else
		return api_fail(err, errlen,
				"%s: \"%s\" is not supported; use \"None\", \"Transparent\" or "
				"\"2M\"",
				path, value);
	return 0;
}

int api_parse_machine_config(json_object *v, const char *prefix, bool partial,
			     struct vm_config *cfg, bool *deprecated, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "vcpu_count",   "mem_size_mib", "smt", "track_dirty_pages",
	    "cpu_template", "huge_pages",   NULL};
	int64_t cpus = cfg->nr_cpus, mib = (int64_t)(cfg->memory_bytes >> 20);
	enum config_huge_pages huge = cfg->huge_pages;
	bool smt = cfg->smt, dirty = cfg->track_dirty_pages;
	uint64_t host_mib = api_host_ram_mib();
	json_object *template;
	char path[256];
	int ret;

	if (!partial) {
		/* PUT: "All parameters that are optional and are not specified
		 * are set to their default values" (swagger putMachineConfiguration) */
		huge = CONFIG_HUGE_PAGES_NONE;
		smt = dirty = false;
	}
	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret && partial && !json_object_object_length(v))
		/* Firecracker refuses an empty update (MachineConfigUpdate::is_empty) */
		return api_fail(err, errlen,
				"Empty PATCH request: %s needs at least one of vcpu_count, "
				"mem_size_mib, smt, track_dirty_pages, cpu_template, huge_pages",
				prefix);
	if (!ret)
		ret = api_json_int(v, prefix, "vcpu_count", !partial, &cpus, err, errlen);
	if (ret >= 0)
		ret = api_json_int(v, prefix, "mem_size_mib", !partial, &mib, err, errlen);
	if (ret >= 0)
		ret = api_json_bool(v, prefix, "smt", false, &smt, err, errlen);
	if (ret >= 0)
		ret = api_json_bool(v, prefix, "track_dirty_pages", false, &dirty, err, errlen);
	if (ret >= 0)
		ret = api_only_value(v, prefix, "cpu_template", "None",
				     "isola passes the host's CPUID through without templates", err,
				     errlen);
	if (!ret)
		ret = api_parse_huge_pages(v, prefix, &huge, err, errlen);
	if (ret < 0)
		return ret;
	api_json_path(path, sizeof(path), prefix, "vcpu_count");
	if (cpus < 1 || cpus > API_MAX_VCPUS)
		return api_fail(err, errlen, "%s: must be between 1 and %d (Firecracker's limit)",
				path, API_MAX_VCPUS);
	/* Firecracker: with SMT "the vCPU count is required to be either 1 or
	 * an even number" (swagger putMachineConfiguration) */
	if (smt && cpus > 1 && cpus % 2)
		return api_fail(err, errlen,
				"%s: %lld is odd, and smt true needs 1 or an even count", path,
				(long long)cpus);
	api_json_path(path, sizeof(path), prefix, "mem_size_mib");
	/* Firecracker takes any size above 0; isola refuses a size it cannot
	 * boot at InstanceStart (api_config_finalize), as a start error. */
	if (mib < 1)
		return api_fail(err, errlen, "%s: must be at least 1 (MiB)", path);
	if ((uint64_t)mib > host_mib)
		return api_fail(
		    err, errlen,
		    "%s: %lld MiB is more than this host's %llu MiB of RAM; choose a smaller size",
		    path, (long long)mib, (unsigned long long)host_mib);
	/* hugetlbfs maps whole 2 MiB pages only (lib/gmem.c) */
	if (huge == CONFIG_HUGE_PAGES_2M && mib % 2)
		return api_fail(err, errlen,
				"%s: %lld is not a multiple of 2, which huge_pages \"2M\" needs; "
				"use %lld",
				path, (long long)mib, (long long)mib + 1);
	/* Firecracker marks cpu_template deprecated: its PUT/PATCH answer
	 * carries "Deprecation: true" (request/machine_configuration.rs). */
	if (deprecated && json_object_object_get_ex(v, "cpu_template", &template) && template)
		*deprecated = true;
	cfg->nr_cpus = (unsigned)cpus;
	cfg->memory_bytes = (uint64_t)mib << 20;
	cfg->huge_pages = huge;
	cfg->smt = smt;
	cfg->track_dirty_pages = dirty;
	return 0;
}

/* Firecracker's checked_id (api_server/parsed_request.rs): not empty, only
 * alphanumerics and '_'.  (Rust's is_alphanumeric is Unicode-wide; isola
 * takes ASCII only, and at most 64 bytes.) */
bool api_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > API_DRIVE_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == len;
}

int api_check_id(const char *id, const char *url_id, const char *prefix, const char *key, char *err,
		 size_t errlen)
{
	char where[160];

	api_json_path(where, sizeof(where), prefix, key);
	if (!api_id_valid(id))
		return api_fail(
		    err, errlen,
		    "%s: \"%.64s\" is not an id; use 1 to %d letters, digits or '_' (API Resource "
		    "IDs can only contain alphanumeric characters and underscores)",
		    where, id, API_DRIVE_ID_MAX);
	if (url_id && strcmp(id, url_id))
		return api_fail(
		    err, errlen,
		    "%s: \"%s\" differs from the id in the path (\"%.64s\"); they must match",
		    where, id, url_id);
	return 0;
}

static int api_parse_drive_kind(json_object *v, const char *prefix, const char *path_on_host,
				const char *socket, struct disk_config *disk, char *err,
				size_t errlen)
{
	struct stat st;
	char where[256];
	int ret;

	if (!!path_on_host == !!socket)
		return api_fail(err, errlen,
				"%s: give either path_on_host (an image isola-blk serves) or "
				"socket (an external vhost-user back-end), %s",
				prefix, path_on_host ? "not both" : "one of them");
	if (path_on_host) {
		api_json_path(where, sizeof(where), prefix, "path_on_host");
		ret = api_check_file(path_on_host, where, !disk->readonly, err, errlen);
		if (ret)
			return ret;
		strcpy(disk->path, path_on_host);
		return 0;
	}
	api_json_path(where, sizeof(where), prefix, "socket");
	for (const char *const *k = (const char *const[]){"is_read_only", "io_engine", NULL}; *k;
	     k++) {
		json_object *member;

		if (json_object_object_get_ex(v, *k, &member) && member)
			return api_fail(err, errlen,
					"%s.%s: applies to path_on_host drives only; the "
					"vhost-user back-end decides it",
					prefix, *k);
	}
	if (!*socket || strlen(socket) >= sizeof(disk->socket))
		return api_fail(err, errlen, "%s: must be a path of 1 to %zu bytes", where,
				sizeof(disk->socket) - 1);
	if (stat(socket, &st))
		return api_fail(err, errlen, "%s: %s: %s; start the back-end first", where, socket,
				errno == ENOENT ? "no such socket" : strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return api_fail(err, errlen, "%s: %s is not a Unix socket", where, socket);
	strcpy(disk->socket, socket);
	return 0;
}

static int api_parse_drive_enum(json_object *v, const char *prefix, const char *key,
				const char *off, const char *on, bool *out, char *err,
				size_t errlen)
{
	const char *value;
	char path[256];
	int ret = api_json_string(v, prefix, key, false, &value, err, errlen);

	if (ret)
		return ret < 0 ? ret : 0;
	api_json_path(path, sizeof(path), prefix, key);
	if (strcmp(value, off) && strcmp(value, on))
		return api_fail(err, errlen, "%s: must be \"%s\" or \"%s\"", path, off, on);
	*out = !strcmp(value, on);
	return 0;
}

int api_parse_drive(json_object *v, const char *prefix, const char *url_id,
		    struct disk_config *disk, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "drive_id",	    "partuuid",	    "is_root_device", "cache_type", "is_read_only",
	    "path_on_host", "rate_limiter", "io_engine",      "socket",	    NULL};
	const char *id = NULL, *partuuid = NULL, *path_on_host = NULL, *socket = NULL;
	char where[256];
	int ret;

	memset(disk, 0, sizeof(*disk));
	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "drive_id", true, &id, err, errlen);
	if (!ret)
		ret = api_json_bool(v, prefix, "is_root_device", true, &disk->is_root_device, err,
				    errlen);
	if (!ret)
		ret = api_json_bool(v, prefix, "is_read_only", false, &disk->readonly, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "partuuid", false, &partuuid, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "path_on_host", false, &path_on_host, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "socket", false, &socket, err, errlen);
	if (ret >= 0)
		ret = api_parse_drive_enum(v, prefix, "cache_type", "Unsafe", "Writeback",
					   &disk->cache_writeback, err, errlen);
	if (!ret)
		ret = api_parse_drive_enum(v, prefix, "io_engine", "Sync", "Async",
					   &disk->io_engine_async, err, errlen);
	/* Firecracker's RateLimiter: isola-blk's --rate (1: none given) */
	if (!ret)
		ret = api_parse_rate_limiter(v, prefix, "rate_limiter", false, disk->rate, err,
					     errlen);
	if (ret < 0)
		return ret;
	if (disk->rate[0] && socket)
		return api_fail(err, errlen,
				"%s.rate_limiter: applies to path_on_host drives only; the "
				"vhost-user back-end is not isola's to limit",
				prefix);
	if (api_check_id(id, url_id, prefix, "drive_id", err, errlen))
		return -EINVAL;
	strcpy(disk->drive_id, id);
	/* virtio-blk GET_ID carries at most 20 bytes: the id's first 20. */
	snprintf(disk->id, sizeof(disk->id), "%.20s", id);
	if (partuuid) {
		api_json_path(where, sizeof(where), prefix, "partuuid");
		if (!*partuuid || strlen(partuuid) >= sizeof(disk->partuuid) ||
		    strspn(partuuid, "0123456789abcdefABCDEF-") != strlen(partuuid))
			return api_fail(
			    err, errlen,
			    "%s: must be a partition UUID (hex digits and '-', up to 64)", where);
		strcpy(disk->partuuid, partuuid);
	}
	return api_parse_drive_kind(v, prefix, path_on_host, socket, disk, err, errlen);
}

int api_put_drive(struct vm_config *cfg, const struct disk_config *disk, const char *prefix,
		  char *err, size_t errlen)
{
	unsigned slot = cfg->nr_disks;

	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *other = &cfg->disks[i];

		if (!strcmp(other->drive_id, disk->drive_id))
			slot = i;
		else if (other->is_root_device && disk->is_root_device)
			return api_fail(err, errlen,
					"%s.is_root_device: drive \"%s\" is the root device "
					"already; only one drive can be",
					prefix, other->drive_id);
	}
	if (slot == cfg->nr_disks && config_device_count(cfg) >= CONFIG_MAX_PCI_DEVICES)
		return api_fail(err, errlen,
				"%s: no PCI slot is left: the bus holds %d devices (32 slots, one "
				"the host bridge) and %u drives, %u network interfaces%s take them",
				prefix, CONFIG_MAX_PCI_DEVICES, cfg->nr_disks, cfg->nr_nets,
				config_device_extras(cfg));
	cfg->disks[slot] = *disk;
	if (slot == cfg->nr_disks)
		cfg->nr_disks++;
	return 0;
}

int api_parse_entropy(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		      size_t errlen)
{
	static const char *const known[] = {"rate_limiter", NULL};
	char rate[CONFIG_RATE_SPEC_SIZE] = "";
	int ret = api_json_only(v, prefix, known, err, errlen);

	/* Firecracker's RateLimiter: isola-rng's --rate; a PUT replaces it
	 * (absent: none). */
	if (!ret)
		ret = api_parse_rate_limiter(v, prefix, "rate_limiter", false, rate, err, errlen);
	if (ret < 0)
		return ret;
	cfg->rng = true;
	strcpy(cfg->rng_rate, rate);
	return 0;
}

const char *api_huge_pages_name(const struct vm_config *cfg)
{
	switch (cfg->huge_pages) {
	case CONFIG_HUGE_PAGES_2M:
		return "2M";
	case CONFIG_HUGE_PAGES_TRANSPARENT:
		return "Transparent";
	default:
		return "None";
	}
}

const char *api_log_level_name(int level)
{
	switch (level) {
	case LOG_LEVEL_OFF:
		return "Off";
	case LOG_LEVEL_ERROR:
		return "Error";
	case LOG_LEVEL_WARN:
		return "Warning";
	case LOG_LEVEL_DEBUG:
		return "Debug";
	default:
		return "Info";
	}
}

int api_parse_logger(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		     size_t errlen)
{
	static const char *const known[] = {"level",	       "log_path", "show_level",
					    "show_log_origin", "module",   NULL};
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"Error", LOG_LEVEL_ERROR}, {"Warning", LOG_LEVEL_WARN},
		      {"Info", LOG_LEVEL_INFO},	  {"Debug", LOG_LEVEL_DEBUG},
		      {"Trace", LOG_LEVEL_DEBUG}, {"Off", LOG_LEVEL_OFF}};
	const char *level = NULL, *path = NULL, *module = NULL;
	bool show_level = false, show_origin = false;
	int ret, value = LOG_LEVEL_INFO;
	char where[256];
	size_t i;

	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "level", false, &level, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "log_path", false, &path, err, errlen);
	if (ret >= 0)
		ret = api_json_bool(v, prefix, "show_level", false, &show_level, err, errlen);
	if (ret >= 0)
		ret = api_json_bool(v, prefix, "show_log_origin", false, &show_origin, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "module", false, &module, err, errlen);
	if (ret < 0)
		return ret;
	/* Firecracker filters by Rust module path ("api_server::request");
	 * isola by source path prefix ("core/api", "core/vm.c"). */
	if (module && (!*module || strlen(module) > 255)) {
		api_json_path(where, sizeof(where), prefix, "module");
		return api_fail(err, errlen,
				"%s: must be a source path prefix of 1 to 255 bytes, e.g. "
				"\"core/api\"",
				where);
	}
	if (level) {
		/* Firecracker: "The possible values are case-insensitive." */
		for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			if (!strcasecmp(level, levels[i].name))
				break;
		if (i == sizeof(levels) / sizeof(levels[0]))
			return api_fail(err, errlen,
					"%s.level: \"%s\" is not a level; use Error, Warning, "
					"Info, Debug, Trace or Off",
					prefix, level);
		value = levels[i].level;
	}
	if (path && (!*path || strlen(path) >= 4096)) {
		api_json_path(where, sizeof(where), prefix, "log_path");
		return api_fail(err, errlen, "%s: must be a path of 1 to 4095 bytes", where);
	}
	if (api_set_string(&cfg->log_path, path) || api_set_string(&cfg->log_module, module))
		return api_fail(err, errlen, "out of memory");
	cfg->logger = true;
	cfg->log_level = value;
	cfg->log_show_level = show_level;
	cfg->log_show_origin = show_origin;
	return 0;
}

int api_parse_metrics(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		      size_t errlen)
{
	static const char *const known[] = {"metrics_path", NULL};
	const char *path = NULL;
	char where[256];
	int ret = api_json_only(v, prefix, known, err, errlen);

	if (!ret)
		ret = api_json_string(v, prefix, "metrics_path", true, &path, err, errlen);
	if (ret)
		return ret;
	api_json_path(where, sizeof(where), prefix, "metrics_path");
	if (!*path || strlen(path) >= 4096)
		return api_fail(err, errlen, "%s: must be a path of 1 to 4095 bytes", where);
	if (api_set_string(&cfg->metrics_path, path))
		return api_fail(err, errlen, "out of memory");
	return 0;
}

int api_parse_serial(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		     size_t errlen)
{
	static const char *const known[] = {"serial_out_path", "rate_limiter", NULL};
	const char *path = NULL;
	char where[256], rate[CONFIG_RATE_SPEC_SIZE] = "";
	int ret = api_json_only(v, prefix, known, err, errlen);

	/* Firecracker's SerialDevice.rate_limiter is one TokenBucket (bytes). */
	if (!ret)
		ret = api_parse_token_bucket(v, prefix, "rate_limiter", rate, err, errlen);
	if (ret >= 0)
		ret = api_json_string(v, prefix, "serial_out_path", false, &path, err, errlen);
	if (ret < 0)
		return ret;
	strcpy(cfg->serial_rate, rate);
	if (!path) {
		api_set_string(&cfg->console_path, NULL);
		cfg->console = CONSOLE_STDIO;
		return 0;
	}
	api_json_path(where, sizeof(where), prefix, "serial_out_path");
	if (!*path || strlen(path) >= 4096)
		return api_fail(err, errlen, "%s: must be a path of 1 to 4095 bytes", where);
	if (api_set_string(&cfg->console_path, path))
		return api_fail(err, errlen, "out of memory");
	cfg->console = CONSOLE_FILE;
	return 0;
}
