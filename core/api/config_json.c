// SPDX-License-Identifier: MIT
/*
 * Firecracker's "full VM configuration" (swagger FullVmConfiguration) in and
 * out: --config-file, GET /vm/config, and what InstanceStart hands the VMM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/api/api.h"
#include "arch/x86/layout.h"
#include "core/api/api_internal.h"
#include "lib/log.h"

#define API_CONFIG_FILE_MAX (1u << 20)

/* Sections of FullVmConfiguration isola does not implement yet: null (and
 * for pmem an empty array), as GET /vm/config writes them, is accepted. */
static const struct {
	const char *key, *what;
} api_unimplemented_sections[] = {
    {"balloon", "the balloon device"},	    {"mmds-config", "MMDS"},
    {"cpu-config", "custom CPU templates"}, {"pmem", "pmem (virtio-pmem)"},
    {"memory-hotplug", "memory hot-plug"},
};

void api_config_defaults(struct vm_config *cfg)
{
	config_defaults(cfg);
	cfg->memory_bytes = API_DEFAULT_MEMORY;
}

void api_config_release(struct vm_config *cfg)
{
	const char **strings[] = {
	    &cfg->kernel_path,	      &cfg->initrd_path,     &cfg->cmdline,	 &cfg->console_path,
	    &cfg->instance_id,	      &cfg->log_path,	     &cfg->metrics_path, &cfg->log_module,
	    &cfg->restore_state_path, &cfg->restore_mem_path};

	if (!cfg->owns_strings)
		return;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free((char *)*strings[i]);
		*strings[i] = NULL;
	}
}

int api_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	const char **strings[] = {
	    &dst->kernel_path,	      &dst->initrd_path,     &dst->cmdline,	 &dst->console_path,
	    &dst->instance_id,	      &dst->log_path,	     &dst->metrics_path, &dst->log_module,
	    &dst->restore_state_path, &dst->restore_mem_path};
	int ret = 0;

	*dst = *src;
	dst->owns_strings = true;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		const char *value = *strings[i];

		*strings[i] = NULL;
		if (value && !(*strings[i] = strdup(value)))
			ret = -ENOMEM;
	}
	if (ret)
		api_config_release(dst);
	return ret;
}

static int api_config_drives(struct vm_config *cfg, json_object *drives, char *err, size_t errlen)
{
	size_t n;

	if (!json_object_is_type(drives, json_type_array))
		return api_fail(err, errlen, "drives: must be an array");
	n = json_object_array_length(drives);
	for (size_t i = 0; i < n; i++) {
		struct disk_config disk;
		char prefix[32];
		int ret;

		snprintf(prefix, sizeof(prefix), "drives[%zu]", i);
		ret = api_parse_drive(json_object_array_get_idx(drives, i), prefix, NULL, &disk,
				      err, errlen);
		if (ret)
			return ret;
		for (unsigned j = 0; j < cfg->nr_disks; j++)
			if (!strcmp(cfg->disks[j].drive_id, disk.drive_id))
				return api_fail(err, errlen,
						"%s.drive_id: \"%s\" is the id of drives[%u] too; "
						"ids must differ",
						prefix, disk.drive_id, j);
		ret = api_put_drive(cfg, &disk, prefix, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* "fs" (isola extension): an array of PUT /fs's objects, fs_ids unique. */
static int api_config_fs(struct vm_config *cfg, json_object *list, char *err, size_t errlen)
{
	size_t n;

	if (!json_object_is_type(list, json_type_array))
		return api_fail(err, errlen, "fs: must be an array");
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct fs_config fs;
		char prefix[32];
		int ret;

		snprintf(prefix, sizeof(prefix), "fs[%zu]", i);
		ret = api_parse_fs(json_object_array_get_idx(list, i), prefix, NULL, &fs, err,
				   errlen);
		if (ret)
			return ret;
		for (unsigned j = 0; j < cfg->nr_fs; j++)
			if (!strcmp(cfg->fs[j].id, fs.id))
				return api_fail(
				    err, errlen,
				    "%s.fs_id: \"%s\" is the id of fs[%u] too; ids must "
				    "differ",
				    prefix, fs.id, j);
		ret = api_put_fs(cfg, &fs, prefix, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int api_config_nets(struct vm_config *cfg, json_object *nets, char *err, size_t errlen)
{
	size_t n;

	if (!json_object_is_type(nets, json_type_array))
		return api_fail(err, errlen, "network-interfaces: must be an array");
	n = json_object_array_length(nets);
	for (size_t i = 0; i < n; i++) {
		struct net_config net;
		char prefix[48];
		int ret;

		snprintf(prefix, sizeof(prefix), "network-interfaces[%zu]", i);
		ret = api_parse_net(json_object_array_get_idx(nets, i), prefix, NULL, &net, err,
				    errlen);
		if (ret)
			return ret;
		for (unsigned j = 0; j < cfg->nr_nets; j++)
			if (!strcmp(cfg->nets[j].iface_id, net.iface_id))
				return api_fail(err, errlen,
						"%s.iface_id: \"%s\" is the id of "
						"network-interfaces[%u] too; ids must differ",
						prefix, net.iface_id, j);
		ret = api_put_net(cfg, &net, prefix, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int api_config_sections(struct vm_config *cfg, json_object *doc, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "boot-source", "machine-config", "drives",	    "network-interfaces",
	    "entropy",	   "logger",	     "metrics",	    "serial",
	    "balloon",	   "vsock",	     "mmds-config", "cpu-config",
	    "pmem",	   "memory-hotplug", "fs",	    NULL};
	bool deprecated = false;
	json_object *v;
	int ret = api_json_only(doc, "", known, err, errlen);

	if (ret)
		return ret;
	for (size_t i = 0;
	     i < sizeof(api_unimplemented_sections) / sizeof(api_unimplemented_sections[0]); i++)
		if (json_object_object_get_ex(doc, api_unimplemented_sections[i].key, &v) && v &&
		    !(json_object_is_type(v, json_type_array) && !json_object_array_length(v)))
			return api_fail(
			    err, errlen, "%s: isola does not implement %s yet; remove it",
			    api_unimplemented_sections[i].key, api_unimplemented_sections[i].what);
	if (!json_object_object_get_ex(doc, "boot-source", &v) || !v)
		return api_fail(err, errlen, "boot-source: missing (required)");
	ret = api_parse_boot_source(v, "boot-source", cfg, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "machine-config", &v) && v)
		ret = api_parse_machine_config(v, "machine-config", false, cfg, &deprecated, err,
					       errlen);
	if (!ret && deprecated)
		log_warn("%s: machine-config.cpu_template is deprecated (Firecracker)",
			 "config file");
	deprecated = false;
	if (!ret && json_object_object_get_ex(doc, "vsock", &v) && v)
		ret = api_parse_vsock(v, "vsock", cfg, &deprecated, err, errlen);
	if (!ret && deprecated)
		log_warn("%s: vsock.vsock_id is deprecated (Firecracker)", "config file");
	if (!ret && json_object_object_get_ex(doc, "drives", &v) && v)
		ret = api_config_drives(cfg, v, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "network-interfaces", &v) && v)
		ret = api_config_nets(cfg, v, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "fs", &v) && v)
		ret = api_config_fs(cfg, v, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "entropy", &v) && v)
		ret = api_parse_entropy(v, "entropy", cfg, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "logger", &v) && v)
		ret = api_parse_logger(v, "logger", cfg, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "metrics", &v) && v)
		ret = api_parse_metrics(v, "metrics", cfg, err, errlen);
	if (!ret && json_object_object_get_ex(doc, "serial", &v) && v)
		ret = api_parse_serial(v, "serial", cfg, err, errlen);
	return ret;
}

int api_config_from_json(struct vm_config *cfg, const char *json_text, char *err, size_t errlen)
{
	json_object *doc;
	int ret;

	api_config_defaults(cfg);
	cfg->owns_strings = true;
	doc = api_json_parse(json_text, strlen(json_text), err, errlen);
	if (!doc)
		return -EINVAL;
	ret = api_config_sections(cfg, doc, err, errlen);
	json_object_put(doc);
	return ret;
}

int api_config_from_file(struct vm_config *cfg, const char *path, char *err, size_t errlen)
{
	char *text = malloc(API_CONFIG_FILE_MAX + 1);
	size_t len = 0;
	ssize_t n = 0;
	int fd, ret;

	api_config_defaults(cfg);
	cfg->owns_strings = true;
	if (!text)
		return api_fail(err, errlen, "out of memory");
	/* Messages name no path: the caller prefixes it ("FILE: ..."). */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s; check the path", strerror(errno));
		free(text);
		return ret;
	}
	while (len <= API_CONFIG_FILE_MAX &&
	       (n = read(fd, text + len, API_CONFIG_FILE_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read it: %s; pass a JSON configuration file",
			 strerror(errno));
		close(fd);
		free(text);
		return ret;
	}
	close(fd);
	if (len > API_CONFIG_FILE_MAX) {
		free(text);
		return api_fail(err, errlen, "larger than %u bytes; is it a config file?",
				API_CONFIG_FILE_MAX);
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		return api_fail(err, errlen, "contains NUL bytes; it is not JSON");
	}
	ret = api_config_from_json(cfg, text, err, errlen);
	free(text);
	return ret;
}

static void api_json_set_string(json_object *obj, const char *key, const char *value)
{
	if (value)
		json_object_object_add(obj, key, json_object_new_string(value));
}

json_object *api_drive_to_json(const struct disk_config *disk, unsigned index)
{
	json_object *d = json_object_new_object(), *limiter;
	char fallback[32];

	if (!d)
		return NULL;
	snprintf(fallback, sizeof(fallback), "drive%u", index);
	api_json_set_string(d, "drive_id",
			    disk->drive_id[0] ? disk->drive_id
			    : disk->id[0]     ? disk->id
					      : fallback);
	if (disk->partuuid[0])
		api_json_set_string(d, "partuuid", disk->partuuid);
	json_object_object_add(d, "is_root_device", json_object_new_boolean(disk->is_root_device));
	api_json_set_string(d, "cache_type", disk->cache_writeback ? "Writeback" : "Unsafe");
	if (disk->socket[0]) {
		api_json_set_string(d, "socket", disk->socket);
	} else {
		json_object_object_add(d, "is_read_only", json_object_new_boolean(disk->readonly));
		api_json_set_string(d, "path_on_host", disk->path);
		api_json_set_string(d, "io_engine", disk->io_engine_async ? "Async" : "Sync");
	}
	if ((limiter = api_rate_limiter_to_json(disk->rate)))
		json_object_object_add(d, "rate_limiter", limiter);
	return d;
}

/* boot_args as given: without what api_config_finalize appended. */
static json_object *api_boot_args_to_json(const struct vm_config *cfg)
{
	size_t len;

	if (!cfg->cmdline)
		return NULL;
	len = strlen(cfg->cmdline);
	if (cfg->cmdline_appended >= len)
		return NULL; /* none given: all of it is isola's root= */
	return json_object_new_string_len(cfg->cmdline, (int)(len - cfg->cmdline_appended));
}

/* Every top-level key of Firecracker's FullVmConfiguration (swagger) is
 * written, null or [] when unset, as Firecracker's GET /vm/config does. */
char *api_config_to_json(const struct vm_config *cfg)
{
	json_object *doc = json_object_new_object(), *v;
	char *text = NULL;

	if (!doc)
		return NULL;
	json_object_object_add(doc, "balloon", NULL);
	v = json_object_new_array();
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		json_object_array_add(v, api_drive_to_json(&cfg->disks[i], i));
	json_object_object_add(doc, "drives", v);
	v = NULL;
	if (cfg->kernel_path) {
		json_object *args = api_boot_args_to_json(cfg);

		v = json_object_new_object();
		api_json_set_string(v, "kernel_image_path", cfg->kernel_path);
		api_json_set_string(v, "initrd_path", cfg->initrd_path);
		if (args)
			json_object_object_add(v, "boot_args", args);
	}
	json_object_object_add(doc, "boot-source", v);
	json_object_object_add(doc, "cpu-config", NULL);
	v = NULL;
	if (cfg->logger) {
		v = json_object_new_object();
		api_json_set_string(v, "log_path", cfg->log_path);
		api_json_set_string(v, "level", api_log_level_name(cfg->log_level));
		json_object_object_add(v, "show_level",
				       json_object_new_boolean(cfg->log_show_level));
		json_object_object_add(v, "show_log_origin",
				       json_object_new_boolean(cfg->log_show_origin));
		api_json_set_string(v, "module", cfg->log_module);
	}
	json_object_object_add(doc, "logger", v);
	v = json_object_new_object();
	json_object_object_add(v, "vcpu_count", json_object_new_int((int)cfg->nr_cpus));
	json_object_object_add(v, "mem_size_mib",
			       json_object_new_int64((int64_t)(cfg->memory_bytes >> 20)));
	json_object_object_add(v, "smt", json_object_new_boolean(cfg->smt));
	json_object_object_add(v, "track_dirty_pages",
			       json_object_new_boolean(cfg->track_dirty_pages));
	api_json_set_string(v, "huge_pages", api_huge_pages_name(cfg));
	json_object_object_add(doc, "machine-config", v);
	v = NULL;
	if (cfg->metrics_path) {
		v = json_object_new_object();
		api_json_set_string(v, "metrics_path", cfg->metrics_path);
	}
	json_object_object_add(doc, "metrics", v);
	json_object_object_add(doc, "memory-hotplug", NULL);
	json_object_object_add(doc, "mmds-config", NULL);
	v = json_object_new_array();
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		if (cfg->nets[i].tap[0]) /* --vhost-user-net has no Firecracker shape */
			json_object_array_add(v, api_net_to_json(&cfg->nets[i]));
	json_object_object_add(doc, "network-interfaces", v);
	json_object_object_add(doc, "pmem", json_object_new_array());
	json_object_object_add(doc, "vsock", api_vsock_to_json(cfg));
	/* isola extension: only when there is a share, so that a VM without
	 * one shows Firecracker's document unchanged */
	if (cfg->nr_fs) {
		v = json_object_new_array();
		for (unsigned i = 0; i < cfg->nr_fs; i++)
			json_object_array_add(v, api_fs_to_json(&cfg->fs[i], i));
		json_object_object_add(doc, "fs", v);
	}
	v = NULL;
	if (cfg->rng) {
		json_object *limiter = api_rate_limiter_to_json(cfg->rng_rate);

		v = json_object_new_object();
		if (limiter)
			json_object_object_add(v, "rate_limiter", limiter);
	}
	json_object_object_add(doc, "entropy", v);
	/* isola's extension (Firecracker's PUT /serial is not in its
	 * FullVmConfiguration): written only when set */
	if ((cfg->console == CONSOLE_FILE && cfg->console_path) || cfg->serial_rate[0]) {
		json_object *bucket = api_token_bucket_to_json(cfg->serial_rate);

		v = json_object_new_object();
		if (cfg->console == CONSOLE_FILE && cfg->console_path)
			api_json_set_string(v, "serial_out_path", cfg->console_path);
		if (bucket)
			json_object_object_add(v, "rate_limiter", bucket);
		json_object_object_add(doc, "serial", v);
	}
	text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return text;
}

static bool api_cmdline_has_root(const char *cmdline)
{
	for (const char *p = cmdline; p && (p = strstr(p, "root=")); p += 5)
		if (p == cmdline || p[-1] == ' ')
			return true;
	return false;
}

int api_config_finalize(struct vm_config *cfg, char *err, size_t errlen)
{
	struct disk_config root;
	unsigned root_index = cfg->nr_disks;
	char *cmdline;
	int len;

	if (!cfg->owns_strings)
		return api_fail(err, errlen,
				"internal: the configuration does not own its strings");
	if (!cfg->kernel_path)
		return api_fail(
		    err, errlen,
		    "no boot source: set boot-source.kernel_image_path first (PUT /boot-source)");
	/* Firecracker accepts any mem_size_mib above 0; isola's guest layout
	 * needs LAYOUT_MIN_MEMORY, so a smaller one fails here, at start. */
	if (cfg->memory_bytes < LAYOUT_MIN_MEMORY)
		return api_fail(err, errlen,
				"machine-config.mem_size_mib: %llu MiB is too small for isola to "
				"boot a guest; set at least %llu (PATCH /machine-config)",
				(unsigned long long)(cfg->memory_bytes >> 20),
				LAYOUT_MIN_MEMORY >> 20);
	/* A MAC for each interface that has none (the core owns the
	 * virtio-net config, docs/net.md); fixed for the whole run. */
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		config_net_finalize(&cfg->nets[i], i);
	if (config_check_device_count(cfg, err, errlen))
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		if (!cfg->disks[i].is_root_device)
			continue;
		if (root_index != cfg->nr_disks)
			return api_fail(err, errlen,
					"drives: \"%s\" and \"%s\" are both root devices",
					cfg->disks[root_index].drive_id, cfg->disks[i].drive_id);
		root_index = i;
	}
	if (root_index == cfg->nr_disks || api_cmdline_has_root(cfg->cmdline))
		return 0;
	/* The root drive is the first virtio-blk device: /dev/vda. */
	root = cfg->disks[root_index];
	memmove(&cfg->disks[1], &cfg->disks[0], root_index * sizeof(cfg->disks[0]));
	cfg->disks[0] = root;
	if (root.partuuid[0])
		len = asprintf(&cmdline, "%s%sroot=PARTUUID=%s %s", cfg->cmdline ?: "",
			       cfg->cmdline && *cfg->cmdline ? " " : "", root.partuuid,
			       root.readonly ? "ro" : "rw");
	else
		len =
		    asprintf(&cmdline, "%s%sroot=/dev/vda %s", cfg->cmdline ?: "",
			     cfg->cmdline && *cfg->cmdline ? " " : "", root.readonly ? "ro" : "rw");
	if (len < 0)
		return api_fail(err, errlen, "out of memory");
	cfg->cmdline_appended = (unsigned)(len - (int)(cfg->cmdline ? strlen(cfg->cmdline) : 0));
	free((char *)cfg->cmdline);
	cfg->cmdline = cmdline;
	return 0;
}
