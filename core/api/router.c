// SPDX-License-Identifier: MIT
/* The handler state's life, and routing a request to its handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/api/api_internal.h"
#include "lib/log.h"

#define API_GET_BIT (1u << API_GET)
#define API_PUT_BIT (1u << API_PUT)
#define API_PATCH_BIT (1u << API_PATCH)
#define API_ANY_BIT 0xffu

/* swagger "paths"; has_id: the path continues with "/{id}". */
static const struct api_route {
	const char *path;
	enum api_endpoint ep;
	unsigned methods;
	bool has_id;
} api_routes[] = {
    {"/", API_EP_ROOT, API_GET_BIT, false},
    {"/version", API_EP_VERSION, API_GET_BIT, false},
    {"/boot-source", API_EP_BOOT_SOURCE, API_PUT_BIT, false},
    {"/machine-config", API_EP_MACHINE_CONFIG, API_GET_BIT | API_PUT_BIT | API_PATCH_BIT, false},
    {"/drives", API_EP_DRIVES, API_PUT_BIT | API_PATCH_BIT, true},
    {"/network-interfaces", API_EP_NETWORK, API_PUT_BIT | API_PATCH_BIT, true},
    {"/entropy", API_EP_ENTROPY, API_PUT_BIT | API_PATCH_BIT, false},
    {"/serial", API_EP_SERIAL, API_PUT_BIT | API_PATCH_BIT, false},
    {"/actions", API_EP_ACTIONS, API_PUT_BIT, false},
    {"/vm", API_EP_VM, API_PATCH_BIT, false},
    {"/vm/config", API_EP_VM_CONFIG, API_GET_BIT, false},
    {"/logger", API_EP_LOGGER, API_PUT_BIT, false},
    {"/metrics", API_EP_METRICS, API_PUT_BIT, false},
    {"/vsock", API_EP_VSOCK, API_PUT_BIT, false},
    {"/fs", API_EP_FS, API_PUT_BIT, true}, /* isola extension (docs/fs.md) */
    {"/snapshot/create", API_EP_SNAPSHOT_CREATE, API_PUT_BIT, false},
    {"/snapshot/load", API_EP_SNAPSHOT_LOAD, API_PUT_BIT, false},
    /* Firecracker endpoints isola does not implement yet: 400 saying so. */
    {"/balloon", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/balloon/statistics", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/balloon/hinting/start", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/balloon/hinting/stop", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/balloon/hinting/status", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/mmds", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/mmds/config", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/cpu-config", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/hotplug/memory", API_EP_UNIMPLEMENTED, API_ANY_BIT, false},
    {"/pmem", API_EP_UNIMPLEMENTED, API_ANY_BIT, true},
};

static enum api_endpoint api_route(const char *path, enum api_method method, const char **id)
{
	*id = NULL;
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const struct api_route *r = &api_routes[i];
		size_t len = strlen(r->path);

		if (strncmp(path, r->path, len))
			continue;
		if (r->has_id) {
			const char *rest = path + len;

			if (rest[0] != '/' || !rest[1] || strchr(rest + 1, '/'))
				continue;
			*id = rest + 1;
		} else if (path[len]) {
			continue;
		}
		if (!(r->methods & (1u << method)))
			return API_EP_INVALID;
		return r->ep;
	}
	return API_EP_INVALID;
}

static enum api_method api_method_of(const char *name)
{
	if (!strcmp(name, "GET"))
		return API_GET;
	if (!strcmp(name, "PUT"))
		return API_PUT;
	if (!strcmp(name, "PATCH"))
		return API_PATCH;
	return API_OTHER;
}

static uint64_t api_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void api_handle(struct api *api, const char *method, const char *path, const char *body,
		size_t body_len, struct api_response *resp)
{
	enum api_method m = api_method_of(method ? method : "");
	uint64_t start = api_now_us();
	enum api_endpoint ep;
	const char *id;
	int status;

	resp->status = 0;
	resp->body = NULL;
	resp->deprecated = false;
	if (!path)
		path = "";
	ep = api_route(path, m, &id);
	pthread_mutex_lock(&api->lock);
	status = api_dispatch(api, ep, m, method ? method : "", path, id, body, body_len, resp);
	if (status >= 400 && !resp->body)
		resp->status = 500; /* strdup failed: say so rather than send nothing */
	api_metrics_count(api, ep, m, status, api_now_us() - start);
	pthread_mutex_unlock(&api->lock);
	if (status >= 400)
		log_debug("API: %.16s %.128s: %d %s", method ? method : "", path, resp->status,
			  resp->body ? resp->body : "");
}

void api_response_free(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}

int api_create(struct api **out, const struct vm_config *initial, const struct api_vmm_ops *ops,
	       void *vmm, unsigned flags, char *err, size_t errlen)
{
	struct api *api = calloc(1, sizeof(*api));
	pthread_condattr_t attr;
	struct vm_config defaults;
	int ret;

	*out = NULL;
	if (!api)
		return api_fail(err, errlen, "out of memory");
	if (!initial) {
		api_config_defaults(&defaults);
		initial = &defaults;
	}
	if (api_config_copy(&api->cfg, initial)) {
		free(api);
		return api_fail(err, errlen, "out of memory");
	}
	if (ops)
		api->ops = *ops;
	api->vmm = vmm;
	api->flags = flags;
	api->metrics_fd = -1;
	api->state = API_STATE_NOT_STARTED;
	pthread_mutex_init(&api->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&api->wake, &attr);
	pthread_condattr_destroy(&attr);
	ret = 0;
	if (api->cfg.logger && !(flags & API_FLAG_NO_OUTPUT_FILES)) {
		ret = log_set_sink(api->cfg.log_path, api->cfg.log_show_level,
				   api->cfg.log_show_origin);
		if (ret)
			snprintf(err, errlen, "logger.log_path: %s: %s", api->cfg.log_path,
				 strerror(-ret));
		else
			log_set_level((enum log_level)api->cfg.log_level);
		if (!ret && log_set_module(api->cfg.log_module))
			ret = api_fail(err, errlen, "out of memory");
	}
	if (!ret && api->cfg.metrics_path) {
		pthread_mutex_lock(&api->lock);
		ret = api_metrics_open_locked(api, api->cfg.metrics_path, err, errlen);
		pthread_mutex_unlock(&api->lock);
	}
	if (ret) {
		api_destroy(api);
		return ret;
	}
	*out = api;
	return 0;
}

void api_destroy(struct api *api)
{
	if (!api)
		return;
	api_metrics_stop(api);
	if (api->cfg.logger && !(api->flags & API_FLAG_NO_OUTPUT_FILES)) {
		log_set_sink(NULL, false, false);
		log_set_module(NULL);
	}
	api_config_release(&api->cfg);
	pthread_cond_destroy(&api->wake);
	pthread_mutex_destroy(&api->lock);
	free(api);
}

int api_instance_start(struct api *api, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&api->lock);
	ret = api_instance_start_locked(api, err, errlen);
	pthread_mutex_unlock(&api->lock);
	return ret;
}

void api_mark_started(struct api *api, const struct vm_config *booted)
{
	pthread_mutex_lock(&api->lock);
	api_keep_booted_locked(api, booted);
	pthread_mutex_unlock(&api->lock);
}

int api_flush_metrics(struct api *api, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&api->lock);
	ret = api_metrics_flush_locked(api, err, errlen);
	pthread_mutex_unlock(&api->lock);
	return ret;
}
