// SPDX-License-Identifier: MIT
/*
 * The control API without its socket: (method, path, body) -> (status, body),
 * with Firecracker's paths, fields and codes (swagger firecracker.yaml):
 * 200 with JSON for GET, 204 for a successful PUT/PATCH, 400 with
 * {"fault_message": "..."} for everything refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/api/api_internal.h"
#include "core/config_vsock.h"
#include "core/version.h"
#include "lib/log.h"

#define API_ERR_MAX 1024

/* One request being answered. */
struct api_request {
	struct api *api;
	enum api_method method;
	const char *method_name, *path, *id; /* id: the {drive_id}/{iface_id} part */
	const char *body;
	size_t body_len;
	json_object *json; /* the parsed body, when the handler asked for it */
	struct api_response *resp;
};

static const struct {
	const char *path, *what;
} api_unimplemented[] = {
    {"/balloon", "the balloon device"},
    {"/mmds", "MMDS"},
    {"/cpu-config", "custom CPU templates"},
    {"/hotplug/memory", "memory hot-plug"},
    {"/pmem", "virtio-pmem"},
};

static const char *const api_state_names[] = {
    [API_STATE_NOT_STARTED] = "Not started",
    [API_STATE_RUNNING] = "Running",
    [API_STATE_PAUSED] = "Paused",
    [API_STATE_STOPPED] = "Stopped",
};

static void api_reply_json(struct api_request *req, int status, json_object *doc)
{
	const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE);

	req->resp->status = status;
	req->resp->body = text ? strdup(text) : NULL;
	json_object_put(doc);
}

static int api_reply_error(struct api_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int api_reply_error(struct api_request *req, const char *fmt, ...)
{
	json_object *doc = json_object_new_object();
	char message[API_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	json_object_object_add(doc, "fault_message", json_object_new_string(message));
	api_reply_json(req, 400, doc);
	return 400;
}

/* Firecracker answers a request that used a deprecated field or endpoint
 * with the header "Deprecation: true" and logs a warning
 * (api_server/mod.rs, parsed_request.rs ParsingInfo). */
static void api_deprecated(struct api_request *req, const char *what)
{
	req->resp->deprecated = true;
	log_warn("API: %s %s: %s", req->method_name, req->path, what);
}

static int api_reply_no_content(struct api_request *req)
{
	req->resp->status = 204;
	req->resp->body = NULL;
	return 204;
}

static enum api_vm_state api_state(struct api *api)
{
	if (api->state == API_STATE_NOT_STARTED || !api->ops.state)
		return api->state;
	return api->ops.state(api->vmm);
}

/* The parsed body; replies 400 and returns NULL if it is missing or bad. */
static json_object *api_body(struct api_request *req)
{
	char err[API_ERR_MAX];

	if (!req->body_len) {
		api_reply_error(req, "the request has no body; %s %s takes a JSON object",
				req->method_name, req->path);
		return NULL;
	}
	req->json = api_json_parse(req->body, req->body_len, err, sizeof(err));
	if (!req->json)
		api_reply_error(req, "%s", err);
	return req->json;
}

/* Pre-boot only: 400 naming the state otherwise. */
static bool api_require_not_started(struct api_request *req)
{
	enum api_vm_state state = api_state(req->api);

	if (state == API_STATE_NOT_STARTED)
		return true;
	api_reply_error(req, "%s %s is only valid before InstanceStart; the VM is %s",
			req->method_name, req->path, api_state_names[state]);
	return false;
}

static bool api_require_started(struct api_request *req)
{
	enum api_vm_state state = api_state(req->api);

	if (state == API_STATE_RUNNING || state == API_STATE_PAUSED)
		return true;
	api_reply_error(req, "%s %s needs a running VM; the VM is %s%s", req->method_name,
			req->path, api_state_names[state],
			state == API_STATE_NOT_STARTED ? " (PUT /actions InstanceStart first)"
						       : "");
	return false;
}

static int api_get_root(struct api_request *req)
{
	json_object *doc = json_object_new_object();
	struct api *api = req->api;

	json_object_object_add(
	    doc, "id", json_object_new_string(api->cfg.instance_id ?: "anonymous-instance"));
	json_object_object_add(doc, "state",
			       json_object_new_string(api_state_names[api_state(api)]));
	json_object_object_add(doc, "vmm_version", json_object_new_string(ISOLA_VERSION));
	json_object_object_add(doc, "app_name", json_object_new_string("isola"));
	api_reply_json(req, 200, doc);
	return 200;
}

static int api_get_version(struct api_request *req)
{
	json_object *doc = json_object_new_object();

	json_object_object_add(doc, "firecracker_version",
			       json_object_new_string(ISOLA_FIRECRACKER_API_VERSION));
	api_reply_json(req, 200, doc);
	return 200;
}

static int api_get_vm_config(struct api_request *req)
{
	char *text = api_config_to_json(&req->api->cfg);

	if (!text)
		return api_reply_error(req, "out of memory");
	req->resp->status = 200;
	req->resp->body = text;
	return 200;
}

static int api_get_machine_config(struct api_request *req)
{
	json_object *doc = json_object_new_object();
	const struct vm_config *cfg = &req->api->cfg;

	json_object_object_add(doc, "vcpu_count", json_object_new_int((int)cfg->nr_cpus));
	json_object_object_add(doc, "mem_size_mib",
			       json_object_new_int64((int64_t)(cfg->memory_bytes >> 20)));
	json_object_object_add(doc, "smt", json_object_new_boolean(cfg->smt));
	json_object_object_add(doc, "track_dirty_pages",
			       json_object_new_boolean(cfg->track_dirty_pages));
	json_object_object_add(doc, "huge_pages", json_object_new_string(api_huge_pages_name(cfg)));
	api_reply_json(req, 200, doc);
	return 200;
}

/* Parse a section into the live configuration (pre-boot, all or nothing:
 * the parsers leave cfg untouched on error). */
typedef int (*api_section_parser)(json_object *v, const char *prefix, struct vm_config *cfg,
				  char *err, size_t errlen);

static int api_put_section(struct api_request *req, const char *prefix, api_section_parser parse)
{
	char err[API_ERR_MAX];
	json_object *v;

	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	if (parse(v, prefix, &req->api->cfg, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	return api_reply_no_content(req);
}

static int api_machine_config(struct api_request *req)
{
	struct vm_config scratch = req->api->cfg;
	bool deprecated = false;
	char err[API_ERR_MAX];
	json_object *v;

	if (req->method == API_GET)
		return api_get_machine_config(req);
	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	/* PUT: vcpu_count and mem_size_mib required; PATCH: any subset. */
	if (api_parse_machine_config(v, "machine-config", req->method == API_PATCH, &scratch,
				     &deprecated, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	req->api->cfg.nr_cpus = scratch.nr_cpus;
	req->api->cfg.memory_bytes = scratch.memory_bytes;
	req->api->cfg.huge_pages = scratch.huge_pages;
	req->api->cfg.smt = scratch.smt;
	req->api->cfg.track_dirty_pages = scratch.track_dirty_pages;
	if (deprecated)
		api_deprecated(req, "cpu_template field is deprecated.");
	return api_reply_no_content(req);
}

/* PUT /vsock: pre-boot only (swagger putGuestVsock), as in Firecracker. */
static int api_put_vsock(struct api_request *req)
{
	bool deprecated = false;
	char err[API_ERR_MAX];
	json_object *v;

	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	/* a first vsock takes a PCI slot: refused here, as PUT /drives is,
	 * rather than at InstanceStart */
	if (!req->api->cfg.vsock.enabled &&
	    config_device_count(&req->api->cfg) >= CONFIG_MAX_PCI_DEVICES)
		return api_reply_error(req,
				       "vsock: no PCI slot is left: the bus holds %d devices (32 "
				       "slots, one the host bridge) and %u drives, %u network "
				       "interfaces%s take them",
				       CONFIG_MAX_PCI_DEVICES, req->api->cfg.nr_disks,
				       req->api->cfg.nr_nets, config_device_extras(&req->api->cfg));
	if (api_parse_vsock(v, "vsock", &req->api->cfg, &deprecated, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (deprecated)
		api_deprecated(req, "vsock_id field is deprecated.");
	return api_reply_no_content(req);
}

/* PUT /fs/{fs_id} (isola extension; docs/fs.md): pre-boot only, like
 * PUT /drives: the same fs_id replaces, a new one adds a share. */
static int api_fs(struct api_request *req)
{
	char err[API_ERR_MAX], prefix[96];
	struct fs_config fs;
	json_object *v;

	snprintf(prefix, sizeof(prefix), "fs/%.64s", req->id);
	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	if (api_parse_fs(v, prefix, req->id, &fs, err, sizeof(err)) ||
	    api_put_fs(&req->api->cfg, &fs, prefix, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	return api_reply_no_content(req);
}

static int api_drive_index(const struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		if (!strcmp(cfg->disks[i].drive_id, id))
			return (int)i;
	return -1;
}

/* PATCH /drives/{id} {"drive_id": ID, "server_upgrade": true} (isola
 * extension): the drive's isola-blk is replaced by the binary on disk now,
 * the guest seeing nothing (docs/api.md "Live upgrade of a device
 * server").  Alone: it changes nothing else, so a failure leaves the drive
 * exactly as it was and says which part failed. */
static int api_upgrade_drive(struct api_request *req, const char *prefix, int index, bool other)
{
	struct api *api = req->api;
	char err[API_ERR_MAX];

	if (other)
		return api_reply_error(req,
				       "%s.server_upgrade: send it alone (with drive_id); "
				       "path_on_host and rate_limiter go in a PATCH of their own",
				       prefix);
	if (api->cfg.disks[index].socket[0])
		return api_reply_error(req,
				       "%s.server_upgrade: drive \"%s\" is served by an external "
				       "vhost-user back-end, which isola does not start",
				       prefix, req->id);
	if (!api->ops.upgrade_servers)
		return api_reply_error(req, "isola cannot upgrade a drive's server here");
	if (api->ops.upgrade_servers(api->vmm, "blk", (unsigned)index, err, sizeof(err)))
		return api_reply_error(req, "drive \"%s\": %s", req->id, err);
	return api_reply_no_content(req);
}

/* Firecracker's PartialDrive: a new path_on_host (and/or rate_limiter) for
 * a started VM's drive; the VMM hands the drive over to a server on it
 * (docs/api.md "How a PATCH /drives reaches the running drive"). */
static int api_patch_drive(struct api_request *req, json_object *v, const char *prefix)
{
	static const char *const known[] = {"drive_id", "path_on_host", "rate_limiter",
					    "server_upgrade", NULL};
	struct api *api = req->api;
	const char *id, *path = NULL;
	struct disk_config disk;
	char err[API_ERR_MAX], where[256];
	bool upgrade = false;
	int index, limiter, ret;

	if (api_json_only(v, prefix, known, err, sizeof(err)) ||
	    api_json_string(v, prefix, "drive_id", true, &id, err, sizeof(err)) ||
	    api_json_string(v, prefix, "path_on_host", false, &path, err, sizeof(err)) < 0 ||
	    api_json_bool(v, prefix, "server_upgrade", false, &upgrade, err, sizeof(err)) < 0)
		return api_reply_error(req, "%s", err);
	if (strcmp(id, req->id))
		return api_reply_error(
		    req,
		    "%s.drive_id: \"%s\" differs from the id in the path (\"%s\"); they must match",
		    prefix, id, req->id);
	if (!api_require_started(req))
		return req->resp->status;
	index = api_drive_index(&api->cfg, req->id);
	if (index < 0)
		return api_reply_error(
		    req,
		    "drive \"%s\" does not exist; drives are added with PUT before InstanceStart",
		    req->id);
	disk = api->cfg.disks[index];
	/* As Firecracker's BucketUpdate: buckets not given stay. */
	limiter =
	    api_parse_rate_limiter(v, prefix, "rate_limiter", true, disk.rate, err, sizeof(err));
	if (limiter < 0)
		return api_reply_error(req, "%s", err);
	if (upgrade)
		return api_upgrade_drive(req, prefix, index, path != NULL || !limiter);
	if (!path && limiter)
		return api_reply_no_content(req); /* nothing to change */
	if (disk.socket[0])
		return api_reply_error(
		    req,
		    "%s.%s: drive \"%s\" is served by an external vhost-user "
		    "back-end; isola can change only drives it serves (path_on_host)",
		    prefix, path ? "path_on_host" : "rate_limiter", req->id);
	if (path) {
		api_json_path(where, sizeof(where), prefix, "path_on_host");
		if (api_check_file(path, where, !disk.readonly, err, sizeof(err)))
			return api_reply_error(req, "%s", err);
		strcpy(disk.path, path);
	}
	if (!api->ops.update_drive)
		return api_reply_error(
		    req, "isola cannot change a started VM's drive image yet (drive \"%s\")",
		    req->id);
	ret =
	    api->ops.update_drive(api->vmm, (unsigned)index, &disk, path != NULL, err, sizeof(err));
	/* -EINPROGRESS: the new server failed after it had the rings, so the
	 * drive rolled forward onto the new image and its server is being
	 * restarted there: the configuration says so, the answer too. */
	if (ret && ret != -EINPROGRESS)
		return api_reply_error(req, "drive \"%s\": %s", req->id, err);
	api->cfg.disks[index] = disk;
	if (ret)
		return api_reply_error(req, "drive \"%s\": %s", req->id, err);
	return api_reply_no_content(req);
}

static int api_drives(struct api_request *req)
{
	struct disk_config disk;
	char err[API_ERR_MAX], prefix[96];
	json_object *v;

	snprintf(prefix, sizeof(prefix), "drives/%.64s", req->id);
	if (req->method == API_PATCH) {
		if (!(v = api_body(req)))
			return req->resp->status;
		return api_patch_drive(req, v, prefix);
	}
	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	if (api_parse_drive(v, prefix, req->id, &disk, err, sizeof(err)) ||
	    api_put_drive(&req->api->cfg, &disk, prefix, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	return api_reply_no_content(req);
}

/* PATCH /entropy (isola extension; Firecracker has no PATCH here): a
 * started VM's entropy limiter, with PartialNetworkInterface's
 * BucketUpdate rules; isola-rng is replaced like isola-net (docs/api.md). */
static int api_patch_entropy(struct api_request *req)
{
	static const char *const known[] = {"rate_limiter", NULL};
	struct api *api = req->api;
	char err[API_ERR_MAX], rate[CONFIG_RATE_SPEC_SIZE];
	json_object *v;

	if (!(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "entropy", known, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (!api_require_started(req))
		return req->resp->status;
	if (!api->cfg.rng)
		return api_reply_error(req, "the VM has no entropy device; it is added with PUT "
					    "/entropy before InstanceStart");
	strcpy(rate, api->cfg.rng_rate);
	if (api_parse_rate_limiter(v, "entropy", "rate_limiter", true, rate, err, sizeof(err)) < 0)
		return api_reply_error(req, "%s", err);
	if (!strcmp(rate, api->cfg.rng_rate))
		return api_reply_no_content(req); /* nothing changes: no restart */
	if (!api->ops.update_entropy)
		return api_reply_error(req,
				       "isola cannot change a started VM's entropy limiter here");
	if (api->ops.update_entropy(api->vmm, rate, err, sizeof(err)))
		return api_reply_error(req, "entropy: %s", err);
	strcpy(api->cfg.rng_rate, rate);
	return api_reply_no_content(req);
}

/* PATCH /serial (isola extension): a started VM's console output limit, a
 * TokenBucket that replaces the current one (size or refill_time 0: none);
 * the UART changes in place.  serial_out_path cannot change. */
static int api_patch_serial(struct api_request *req)
{
	static const char *const known[] = {"rate_limiter", NULL};
	struct api *api = req->api;
	char err[API_ERR_MAX], rate[CONFIG_RATE_SPEC_SIZE];
	json_object *v;
	int ret;

	if (!(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "serial", known, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (!api_require_started(req))
		return req->resp->status;
	strcpy(rate, api->cfg.serial_rate);
	ret = api_parse_token_bucket(v, "serial", "rate_limiter", rate, err, sizeof(err));
	if (ret < 0)
		return api_reply_error(req, "%s", err);
	if (ret > 0 || !strcmp(rate, api->cfg.serial_rate))
		return api_reply_no_content(req);
	if (!api->ops.update_serial)
		return api_reply_error(req,
				       "isola cannot change a started VM's serial limiter here");
	if (api->ops.update_serial(api->vmm, rate, err, sizeof(err)))
		return api_reply_error(req, "serial: %s", err);
	strcpy(api->cfg.serial_rate, rate);
	return api_reply_no_content(req);
}

static int api_net_index(const struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		if (!strcmp(cfg->nets[i].iface_id, id))
			return (int)i;
	return -1;
}

/* Firecracker's PartialNetworkInterface: new rate limiters for a started
 * VM's interface; a limiter not given stays, a bucket not given stays. */
static int api_patch_net(struct api_request *req, json_object *v, const char *prefix)
{
	static const char *const known[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter", NULL};
	struct api *api = req->api;
	struct net_config net;
	char err[API_ERR_MAX], where[256];
	const char *id;
	int index, rx, tx;

	if (api_json_only(v, prefix, known, err, sizeof(err)) ||
	    api_json_string(v, prefix, "iface_id", true, &id, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (strcmp(id, req->id)) {
		api_json_path(where, sizeof(where), prefix, "iface_id");
		return api_reply_error(
		    req, "%s: \"%s\" differs from the id in the path (\"%s\"); they must match",
		    where, id, req->id);
	}
	if (!api_require_started(req))
		return req->resp->status;
	index = api_net_index(&api->cfg, req->id);
	if (index < 0)
		return api_reply_error(req,
				       "network interface \"%s\" does not exist; interfaces are "
				       "added with PUT before InstanceStart",
				       req->id);
	net = api->cfg.nets[index];
	rx = api_parse_rate_limiter(v, prefix, "rx_rate_limiter", true, net.rx_rate, err,
				    sizeof(err));
	tx = rx < 0 ? rx
		    : api_parse_rate_limiter(v, prefix, "tx_rate_limiter", true, net.tx_rate, err,
					     sizeof(err));
	if (rx < 0 || tx < 0)
		return api_reply_error(req, "%s", err);
	if (!strcmp(net.rx_rate, api->cfg.nets[index].rx_rate) &&
	    !strcmp(net.tx_rate, api->cfg.nets[index].tx_rate))
		return api_reply_no_content(req); /* nothing changes: no restart */
	if (!api->ops.update_net)
		return api_reply_error(
		    req, "isola cannot change a started VM's rate limiters yet (interface \"%s\")",
		    req->id);
	if (api->ops.update_net(api->vmm, (unsigned)index, &net, err, sizeof(err)))
		return api_reply_error(req, "network interface \"%s\": %s", req->id, err);
	api->cfg.nets[index] = net;
	return api_reply_no_content(req);
}

static int api_network(struct api_request *req)
{
	struct net_config net;
	char err[API_ERR_MAX], prefix[96];
	json_object *v;

	snprintf(prefix, sizeof(prefix), "network-interfaces/%.64s", req->id);
	if (req->method == API_PATCH) {
		if (!(v = api_body(req)))
			return req->resp->status;
		return api_patch_net(req, v, prefix);
	}
	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	if (api_parse_net(v, prefix, req->id, &net, err, sizeof(err)) ||
	    api_put_net(&req->api->cfg, &net, prefix, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	return api_reply_no_content(req);
}

void api_keep_booted_locked(struct api *api, const struct vm_config *booted)
{
	memcpy(api->cfg.disks, booted->disks, sizeof(booted->disks));
	api->cfg.nr_disks = booted->nr_disks;
	memcpy(api->cfg.nets, booted->nets, sizeof(booted->nets));
	api->state = API_STATE_RUNNING;
}

int api_instance_start_locked(struct api *api, char *err, size_t errlen)
{
	enum api_vm_state state = api_state(api);
	struct vm_config boot;
	int ret;

	if (state != API_STATE_NOT_STARTED)
		return api_fail(err, errlen, "InstanceStart: the VM is %s already",
				api_state_names[state]);
	if (api->state != API_STATE_NOT_STARTED) /* --config-file: booting now */
		return api_fail(err, errlen, "InstanceStart: the VM is starting already");
	if (!api->ops.instance_start)
		return api_fail(err, errlen, "InstanceStart is not available in this isola");
	if (api_config_copy(&boot, &api->cfg))
		return api_fail(err, errlen, "out of memory");
	ret = api_config_finalize(&boot, err, errlen);
	if (!ret)
		ret = api->ops.instance_start(api->vmm, &boot, err, errlen);
	if (!ret) {
		api_keep_booted_locked(api, &boot);
		log_info("API: InstanceStart: the VM is running");
	}
	api_config_release(&boot);
	return ret ? -EINVAL : 0;
}

static int api_actions(struct api_request *req)
{
	static const char *const known[] = {"action_type", NULL};
	struct api *api = req->api;
	char err[API_ERR_MAX];
	const char *action;
	json_object *v;

	if (!(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "", known, err, sizeof(err)) ||
	    api_json_string(v, "", "action_type", true, &action, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (!strcmp(action, "InstanceStart")) {
		if (api_instance_start_locked(api, err, sizeof(err)))
			return api_reply_error(req, "%s", err);
	} else if (!strcmp(action, "SendCtrlAltDel")) {
		if (!api_require_started(req))
			return req->resp->status;
		if (!api->ops.send_ctrl_alt_del)
			return api_reply_error(req,
					       "SendCtrlAltDel is not available in this isola");
		if (api->ops.send_ctrl_alt_del(api->vmm, err, sizeof(err)))
			return api_reply_error(req, "SendCtrlAltDel: %s", err);
	} else if (!strcmp(action, "FlushMetrics")) {
		/* Firecracker: not allowed pre-boot (rpc_interface.rs) */
		if (api_state(api) == API_STATE_NOT_STARTED)
			return api_reply_error(
			    req, "FlushMetrics: The requested operation is not supported before "
				 "starting the microVM; send it after InstanceStart");
		if (api_metrics_flush_locked(api, err, sizeof(err)))
			return api_reply_error(req, "FlushMetrics: %s", err);
	} else if (!strcmp(action, "UpgradeServers")) {
		/* isola extension: every device server isola started is
		 * replaced by its binary on disk now (SIGUSR2 does the same) */
		if (!api_require_started(req))
			return req->resp->status;
		if (!api->ops.upgrade_servers)
			return api_reply_error(req,
					       "UpgradeServers is not available in this isola");
		if (api->ops.upgrade_servers(api->vmm, NULL, 0, err, sizeof(err)))
			return api_reply_error(req, "UpgradeServers: %s", err);
	} else {
		return api_reply_error(req,
				       "action_type: \"%s\" is not an action; use InstanceStart, "
				       "SendCtrlAltDel, FlushMetrics or UpgradeServers",
				       action);
	}
	return api_reply_no_content(req);
}

static int api_patch_vm(struct api_request *req)
{
	static const char *const known[] = {"state", NULL};
	struct api *api = req->api;
	enum api_vm_state state;
	char err[API_ERR_MAX];
	const char *target;
	json_object *v;
	int ret;

	if (!(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "", known, err, sizeof(err)) ||
	    api_json_string(v, "", "state", true, &target, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (strcmp(target, "Paused") && strcmp(target, "Resumed"))
		return api_reply_error(
		    req, "state: \"%s\" is not a state to ask for; use Paused or Resumed", target);
	if (!api_require_started(req))
		return req->resp->status;
	state = api_state(api);
	if (!strcmp(target, "Paused")) {
		if (state == API_STATE_PAUSED)
			return api_reply_no_content(req);
		if (!api->ops.pause)
			return api_reply_error(req, "pausing is not available in this isola");
		ret = api->ops.pause(api->vmm, err, sizeof(err));
		if (!ret)
			api->state = API_STATE_PAUSED;
	} else {
		if (state == API_STATE_RUNNING)
			return api_reply_no_content(req);
		if (!api->ops.resume)
			return api_reply_error(req, "resuming is not available in this isola");
		ret = api->ops.resume(api->vmm, err, sizeof(err));
		if (!ret)
			api->state = API_STATE_RUNNING;
	}
	if (ret)
		return api_reply_error(req, "%s: %s", target, err);
	return api_reply_no_content(req);
}

static int api_apply_logger(struct api *api, const struct vm_config *next, char *err, size_t errlen)
{
	int ret;

	if (api->flags & API_FLAG_NO_OUTPUT_FILES)
		return 0;
	ret = log_set_sink(next->log_path, next->log_show_level, next->log_show_origin);
	if (ret == -ENXIO)
		return api_fail(
		    err, errlen,
		    "logger.log_path: %s is a named pipe with no reader; start the reader first",
		    next->log_path);
	if (ret)
		return api_fail(err, errlen, "logger.log_path: %s: %s", next->log_path,
				strerror(-ret));
	log_set_level((enum log_level)next->log_level);
	if (log_set_module(next->log_module))
		return api_fail(err, errlen, "out of memory");
	return 0;
}

/* PUT /logger and PUT /metrics: validate into a scratch config, open the
 * file, then keep the new settings. */
static int api_put_output(struct api_request *req)
{
	struct api *api = req->api;
	bool logger = !strcmp(req->path, "/logger");
	struct vm_config next = {.owns_strings = true};
	char err[API_ERR_MAX];
	json_object *v;
	int ret;

	/* Firecracker configures each once, and only before InstanceStart
	 * (docs/logger.md: "once configured, you can not update it"; a second
	 * METRICS.init fails; rpc_interface.rs refuses both post-boot).  Its
	 * body is parsed first, so a bad field is named before the refusal. */
	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	ret = logger ? api_parse_logger(v, "logger", &next, err, sizeof(err))
		     : api_parse_metrics(v, "metrics", &next, err, sizeof(err));
	if (!ret && (logger ? api->cfg.logger : api->cfg.metrics_path != NULL))
		ret = api_fail(err, sizeof(err),
			       "%s %s: the %s is configured already; like Firecracker, isola "
			       "configures it once per process",
			       req->method_name, req->path, logger ? "logger" : "metrics system");
	if (!ret && logger)
		ret = api_apply_logger(api, &next, err, sizeof(err));
	else if (!ret)
		ret = api_metrics_open_locked(api, next.metrics_path, err, sizeof(err));
	if (!ret && logger) {
		api_set_string(&api->cfg.log_path, NULL);
		api_set_string(&api->cfg.log_module, NULL);
		api->cfg.log_path = next.log_path;
		api->cfg.log_module = next.log_module;
		next.log_path = next.log_module = NULL;
		api->cfg.logger = true;
		api->cfg.log_level = next.log_level;
		api->cfg.log_show_level = next.log_show_level;
		api->cfg.log_show_origin = next.log_show_origin;
	} else if (!ret) {
		api_set_string(&api->cfg.metrics_path, NULL);
		api->cfg.metrics_path = next.metrics_path;
		next.metrics_path = NULL;
	}
	api_config_release(&next);
	if (ret)
		return api_reply_error(req, "%s", err);
	return api_reply_no_content(req);
}

/* PUT /snapshot/create (swagger SnapshotCreateParams): only while Paused,
 * as in Firecracker; Diff only with dirty page tracking on (Firecracker's
 * snapshot-support.md: track_dirty_pages on a booted VM,
 * enable_diff_snapshots on a loaded one). */
static int api_snapshot_create(struct api_request *req)
{
	static const char *const known[] = {"snapshot_path", "mem_file_path", "snapshot_type",
					    NULL};
	struct api *api = req->api;
	const char *state_path, *mem_path, *type = "Full";
	char err[API_ERR_MAX];
	enum api_vm_state state;
	json_object *v;

	if (!(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "", known, err, sizeof(err)) ||
	    api_json_string(v, "", "snapshot_path", true, &state_path, err, sizeof(err)) ||
	    api_json_string(v, "", "mem_file_path", true, &mem_path, err, sizeof(err)) ||
	    api_json_string(v, "", "snapshot_type", false, &type, err, sizeof(err)) < 0)
		return api_reply_error(req, "%s", err);
	if (!type)
		type = "Full";
	if (strcmp(type, "Full") && strcmp(type, "Diff"))
		return api_reply_error(req,
				       "snapshot_type: \"%s\" is not a snapshot type; use "
				       "\"Full\" or \"Diff\"",
				       type);
	if (!state_path[0] || !mem_path[0])
		return api_reply_error(req, "snapshot_path and mem_file_path must not be empty");
	state = api_state(api);
	if (state != API_STATE_PAUSED)
		return api_reply_error(
		    req,
		    "PUT /snapshot/create is only valid while the VM is Paused; "
		    "the VM is %s%s",
		    api_state_names[state],
		    state == API_STATE_RUNNING ? " (PATCH /vm {\"state\": \"Paused\"} first)" : "");
	if (!strcmp(type, "Diff") && !api->cfg.track_dirty_pages)
		return api_reply_error(
		    req, "snapshot_type \"Diff\" needs dirty page tracking, and this VM does not "
			 "track dirty pages: set machine-config \"track_dirty_pages\": true "
			 "before InstanceStart (or \"track_dirty_pages\": true on PUT "
			 "/snapshot/load), or take a \"Full\" snapshot");
	if (!api->ops.snapshot_create)
		return api_reply_error(req, "snapshots are not available in this isola");
	if (api->ops.snapshot_create(api->vmm, state_path, mem_path, !strcmp(type, "Diff"), err,
				     sizeof(err)))
		return api_reply_error(req, "%s", err);
	log_info("API: %s snapshot of the paused VM in %s (memory in %s)", type, state_path,
		 mem_path);
	return api_reply_no_content(req);
}

/* The memory file of PUT /snapshot/load: mem_backend {backend_type "File",
 * backend_path}, or the older mem_file_path; exactly one (swagger). */
static int api_snapshot_mem_path(json_object *v, const char **mem_path, char *err, size_t errlen)
{
	static const char *const known[] = {"backend_type", "backend_path", NULL};
	json_object *backend = NULL;
	const char *type, *old = NULL;
	int ret;

	ret = api_json_string(v, "", "mem_file_path", false, &old, err, errlen);
	if (ret < 0)
		return ret;
	if (!json_object_object_get_ex(v, "mem_backend", &backend) || !backend) {
		if (!old)
			return api_fail(err, errlen,
					"mem_backend: missing; give {\"backend_type\": \"File\", "
					"\"backend_path\": PATH}");
		*mem_path = old;
		return 0;
	}
	if (old)
		return api_fail(err, errlen, "give mem_backend or mem_file_path, not both");
	if (!json_object_is_type(backend, json_type_object))
		return api_fail(err, errlen, "mem_backend: expected an object");
	if (api_json_only(backend, "mem_backend", known, err, errlen) ||
	    api_json_string(backend, "mem_backend", "backend_type", true, &type, err, errlen) ||
	    api_json_string(backend, "mem_backend", "backend_path", true, mem_path, err, errlen))
		return -EINVAL;
	if (!strcmp(type, "Uffd"))
		return api_fail(err, errlen,
				"mem_backend.backend_type: isola does not serve memory over "
				"userfaultfd; use \"File\" (it is mapped lazily already)");
	if (strcmp(type, "File"))
		return api_fail(err, errlen,
				"mem_backend.backend_type: \"%s\" is not a backend; use \"File\"",
				type);
	return 0;
}

/*
 * PUT /snapshot/load's new backings for the snapshot's devices, into cfg
 * (config.h "struct config_override"; docs/snapshot.md "Clones"):
 * swagger's network_overrides [{iface_id, host_dev_name}] (NetworkOverride)
 * and vsock_override {uds_path} (VsockOverride), and isola's
 * drive_overrides [{drive_id, path_on_host}] in the same shape (Firecracker
 * has no way to give a restored VM another image).  Which device each
 * names is checked by the restore, against the snapshot.
 */
static int api_snapshot_overrides(json_object *v, struct vm_config *cfg, char *err, size_t errlen)
{
	static const struct {
		const char *field;
		const char *const known[3];
		enum config_override_kind kind;
	} lists[] = {
	    {"network_overrides", {"iface_id", "host_dev_name", NULL}, CONFIG_OVERRIDE_NET},
	    {"drive_overrides", {"drive_id", "path_on_host", NULL}, CONFIG_OVERRIDE_DRIVE},
	};
	json_object *list, *vsock;
	const char *path;

	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		size_t n;

		if (!json_object_object_get_ex(v, lists[l].field, &list) || !list)
			continue;
		if (!json_object_is_type(list, json_type_array))
			return api_fail(err, errlen, "%s: must be an array of {%s, %s}",
					lists[l].field, lists[l].known[0], lists[l].known[1]);
		n = json_object_array_length(list);
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_array_get_idx(list, i);
			const char *id, *value;
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "%s[%zu]", lists[l].field, i);
			if (api_json_only(o, prefix, lists[l].known, err, errlen) ||
			    api_json_string(o, prefix, lists[l].known[0], true, &id, err, errlen) ||
			    api_json_string(o, prefix, lists[l].known[1], true, &value, err,
					    errlen))
				return -EINVAL;
			if (lists[l].kind == CONFIG_OVERRIDE_DRIVE) {
				char where[96];

				snprintf(where, sizeof(where), "%s.path_on_host", prefix);
				if (api_check_file(value, where, false, err, errlen))
					return -EINVAL;
			}
			if (config_add_override(cfg, lists[l].kind, id, value, prefix, err, errlen))
				return -EINVAL;
		}
	}
	if (!json_object_object_get_ex(v, "vsock_override", &vsock) || !vsock)
		return 0;
	if (api_json_only(vsock, "vsock_override", (const char *const[]){"uds_path", NULL}, err,
			  errlen) ||
	    api_json_string(vsock, "vsock_override", "uds_path", true, &path, err, errlen) ||
	    config_vsock_check_uds(path, "vsock_override.uds_path", err, errlen) ||
	    config_add_override(cfg, CONFIG_OVERRIDE_VSOCK, "", path, "vsock_override", err,
				errlen))
		return -EINVAL;
	return 0;
}

/* PUT /snapshot/load (swagger SnapshotLoadParams): only on a fresh isola,
 * before any boot resource is configured (Firecracker's rule); the VM is
 * restored by the VMM's start path and runs at once with resume_vm. */
static int api_snapshot_load(struct api_request *req)
{
	static const char *const known[] = {
	    "snapshot_path",	 "mem_backend", "mem_file_path",     "enable_diff_snapshots",
	    "track_dirty_pages", "resume_vm",	"network_overrides", "vsock_override",
	    "drive_overrides",	 NULL};
	struct api *api = req->api;
	const char *state_path, *mem_path = NULL;
	bool resume = false, diff = false, dirty = false;
	char err[API_ERR_MAX];
	struct vm_config boot;
	json_object *v;
	int ret;

	if (!api_require_not_started(req) || !(v = api_body(req)))
		return req->resp->status;
	if (api_json_only(v, "", known, err, sizeof(err)) ||
	    api_json_string(v, "", "snapshot_path", true, &state_path, err, sizeof(err)) ||
	    api_snapshot_mem_path(v, &mem_path, err, sizeof(err)) ||
	    api_json_bool(v, "", "resume_vm", false, &resume, err, sizeof(err)) < 0 ||
	    api_json_bool(v, "", "enable_diff_snapshots", false, &diff, err, sizeof(err)) < 0 ||
	    api_json_bool(v, "", "track_dirty_pages", false, &dirty, err, sizeof(err)) < 0)
		return api_reply_error(req, "%s", err);
	/* swagger: both deprecated (mem_backend replaces the one,
	 * track_dirty_pages the other) */
	if (json_object_object_get_ex(v, "mem_file_path", NULL))
		api_deprecated(req, "mem_file_path is deprecated; use mem_backend");
	if (json_object_object_get_ex(v, "enable_diff_snapshots", NULL))
		api_deprecated(req, "enable_diff_snapshots is deprecated; use track_dirty_pages");
	if (api->configured)
		return api_reply_error(
		    req, "PUT /snapshot/load is only valid on a fresh isola, before any boot "
			 "resource (boot-source, machine-config, drives, ...) is configured; "
			 "start a new isola --api-sock for the restore");
	if (api_check_file(state_path, "snapshot_path", false, err, sizeof(err)) ||
	    api_check_file(mem_path, "mem_backend.backend_path", false, err, sizeof(err)))
		return api_reply_error(req, "%s", err);
	if (!api->ops.instance_start)
		return api_reply_error(req, "snapshots are not available in this isola");
	if (api_config_copy(&boot, &api->cfg))
		return api_reply_error(req, "out of memory");
	if (api_snapshot_overrides(v, &boot, err, sizeof(err))) {
		api_config_release(&boot);
		return api_reply_error(req, "%s", err);
	}
	ret = api_set_string(&boot.restore_state_path, state_path) ||
	      api_set_string(&boot.restore_mem_path, mem_path);
	boot.restore_resume = resume;
	/* swagger: either turns dirty page tracking on for the restored VM
	 * (Diff snapshots of it); Firecracker does not keep it in a snapshot */
	boot.track_dirty_pages = diff || dirty;
	if (ret)
		ret = api_fail(err, sizeof(err), "out of memory");
	else
		ret = api->ops.instance_start(api->vmm, &boot, err, sizeof(err));
	if (!ret) {
		unsigned cpus;
		uint64_t memory;

		api_keep_booted_locked(api, &boot);
		api->cfg.track_dirty_pages = boot.track_dirty_pages;
		if (api->ops.restored_shape && api->ops.restored_shape(api->vmm, &cpus, &memory)) {
			api->cfg.nr_cpus = cpus;
			api->cfg.memory_bytes = memory;
		}
		log_info("API: snapshot %s loaded: the VM is %s", state_path,
			 resume ? "running" : "paused");
	}
	api_config_release(&boot);
	if (ret)
		return api_reply_error(req, "snapshot load: %s", err);
	return api_reply_no_content(req);
}

static int api_unimplemented_endpoint(struct api_request *req)
{
	for (size_t i = 0; i < sizeof(api_unimplemented) / sizeof(api_unimplemented[0]); i++) {
		size_t len = strlen(api_unimplemented[i].path);

		if (!strncmp(req->path, api_unimplemented[i].path, len) &&
		    (req->path[len] == '\0' || req->path[len] == '/'))
			return api_reply_error(req, "isola does not implement %s yet (%s %s)",
					       api_unimplemented[i].what, req->method_name,
					       req->path);
	}
	return api_reply_error(req, "isola does not implement %s %s yet", req->method_name,
			       req->path);
}

int api_dispatch(struct api *api, enum api_endpoint ep, enum api_method method,
		 const char *method_name, const char *path, const char *id, const char *body,
		 size_t body_len, struct api_response *resp)
{
	struct api_request req = {
	    .api = api,
	    .method = method,
	    .method_name = method_name,
	    .path = path,
	    .id = id,
	    .body = body,
	    .body_len = body_len,
	    .resp = resp,
	};
	int status;

	/* Firecracker: "GET request cannot have a body." (parsed_request.rs
	 * method_to_error), whatever the path. */
	if (method == API_GET && body_len) {
		status = api_reply_error(&req, "GET request cannot have a body.");
		json_object_put(req.json);
		return status;
	}
	switch (ep) {
	case API_EP_ROOT:
		status = api_get_root(&req);
		break;
	case API_EP_VERSION:
		status = api_get_version(&req);
		break;
	case API_EP_VM_CONFIG:
		status = api_get_vm_config(&req);
		break;
	case API_EP_BOOT_SOURCE:
		status = api_put_section(&req, "boot-source", api_parse_boot_source);
		break;
	case API_EP_MACHINE_CONFIG:
		status = api_machine_config(&req);
		break;
	case API_EP_DRIVES:
		status = api_drives(&req);
		break;
	case API_EP_NETWORK:
		status = api_network(&req);
		break;
	case API_EP_ENTROPY:
		status = req.method == API_PATCH
			     ? api_patch_entropy(&req)
			     : api_put_section(&req, "entropy", api_parse_entropy);
		break;
	case API_EP_SERIAL:
		status = req.method == API_PATCH
			     ? api_patch_serial(&req)
			     : api_put_section(&req, "serial", api_parse_serial);
		break;
	case API_EP_VSOCK:
		status = api_put_vsock(&req);
		break;
	case API_EP_FS:
		status = api_fs(&req);
		break;
	case API_EP_ACTIONS:
		status = api_actions(&req);
		break;
	case API_EP_VM:
		status = api_patch_vm(&req);
		break;
	case API_EP_LOGGER:
	case API_EP_METRICS:
		status = api_put_output(&req);
		break;
	case API_EP_SNAPSHOT_CREATE:
		status = api_snapshot_create(&req);
		break;
	case API_EP_SNAPSHOT_LOAD:
		status = api_snapshot_load(&req);
		break;
	case API_EP_UNIMPLEMENTED:
		status = api_unimplemented_endpoint(&req);
		break;
	default:
		/* Firecracker's words for a path or method outside the API. */
		status = api_reply_error(&req, "Invalid request method and/or path: %s %s",
					 method_name, path);
		break;
	}
	/* A boot resource given: the process is no longer fresh for a
	 * PUT /snapshot/load (Firecracker: "only accepted on a fresh
	 * Firecracker process"). */
	if (status < 300 && method != API_GET &&
	    (ep == API_EP_BOOT_SOURCE || ep == API_EP_MACHINE_CONFIG || ep == API_EP_DRIVES ||
	     ep == API_EP_NETWORK || ep == API_EP_ENTROPY || ep == API_EP_SERIAL ||
	     ep == API_EP_VSOCK || ep == API_EP_FS))
		api->configured = true;
	json_object_put(req.json);
	return status;
}
