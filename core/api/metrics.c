// SPDX-License-Identifier: MIT
/*
 * API metrics, Firecracker style: one JSON object per line, written to the
 * metrics path on FlushMetrics and every 60 s.  Counters are the requests
 * since the previous line, as Firecracker's "SharedIncMetric" counters are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/api/api_internal.h"

#define API_METRICS_PERIOD_S 60

/* Firecracker's metric names for each endpoint ("<name>_count"). */
static const char *const api_metric_names[API_EP_COUNT] = {
    [API_EP_ROOT] = "instance_info",
    [API_EP_VERSION] = "vmm_version",
    [API_EP_BOOT_SOURCE] = "boot_source",
    [API_EP_MACHINE_CONFIG] = "machine_cfg",
    [API_EP_DRIVES] = "drive",
    [API_EP_NETWORK] = "network",
    [API_EP_ENTROPY] = "entropy",
    [API_EP_ACTIONS] = "actions",
    [API_EP_VM] = "vm",
    [API_EP_VM_CONFIG] = "vm_config",
    [API_EP_LOGGER] = "logger",
    [API_EP_METRICS] = "metrics",
    [API_EP_SERIAL] = "serial",
    [API_EP_VSOCK] = "vsock",
    [API_EP_FS] = "fs",
    [API_EP_SNAPSHOT_CREATE] = "create_snapshot",
    [API_EP_SNAPSHOT_LOAD] = "load_snapshot",
    [API_EP_UNIMPLEMENTED] = "unimplemented",
    [API_EP_INVALID] = "invalid",
};
static const char *const api_method_groups[API_METHOD_COUNT] = {
    "get_api_requests", "put_api_requests", "patch_api_requests", "other_api_requests"};
static const char *const api_method_names[API_METHOD_COUNT] = {"get", "put", "patch", "other"};

void api_metrics_count(struct api *api, enum api_endpoint ep, enum api_method method, int status,
		       uint64_t latency_us)
{
	struct api_counter *c = &api->counters[ep][method];

	c->count++;
	if (status >= 400)
		c->fails++;
	c->latency_sum_us += latency_us;
	if (latency_us > c->latency_max_us)
		c->latency_max_us = latency_us;
}

static json_object *api_metrics_json(struct api *api)
{
	json_object *doc = json_object_new_object(), *latencies = json_object_new_object();
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	json_object_object_add(
	    doc, "utc_timestamp_ms",
	    json_object_new_int64((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
	for (int m = 0; m < API_METHOD_COUNT; m++) {
		json_object *group = json_object_new_object();

		for (int ep = 0; ep < API_EP_COUNT; ep++) {
			struct api_counter *c = &api->counters[ep][m];
			char key[64];

			if (!c->count)
				continue;
			snprintf(key, sizeof(key), "%s_count", api_metric_names[ep]);
			json_object_object_add(group, key,
					       json_object_new_int64((int64_t)c->count));
			snprintf(key, sizeof(key), "%s_fails", api_metric_names[ep]);
			json_object_object_add(group, key,
					       json_object_new_int64((int64_t)c->fails));
			{
				json_object *l = json_object_new_object();

				json_object_object_add(l, "count",
						       json_object_new_int64((int64_t)c->count));
				json_object_object_add(
				    l, "sum_us", json_object_new_int64((int64_t)c->latency_sum_us));
				json_object_object_add(
				    l, "max_us", json_object_new_int64((int64_t)c->latency_max_us));
				snprintf(key, sizeof(key), "%s_%s", api_method_names[m],
					 api_metric_names[ep]);
				json_object_object_add(latencies, key, l);
			}
		}
		json_object_object_add(doc, api_method_groups[m], group);
	}
	json_object_object_add(doc, "api_latencies_us", latencies);
	if (api->ops.fill_metrics)
		api->ops.fill_metrics(api->vmm, doc);
	return doc;
}

int api_metrics_flush_locked(struct api *api, char *err, size_t errlen)
{
	json_object *doc;
	const char *text;
	char *line;
	size_t len;
	ssize_t n;
	int ret = 0;

	if (!api->cfg.metrics_path) {
		snprintf(err, errlen,
			 "metrics are not configured; PUT /metrics with a metrics_path first");
		return -ENOENT;
	}
	doc = api_metrics_json(api);
	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	line = malloc(len + 2);
	if (!line) {
		json_object_put(doc);
		return api_fail(err, errlen, "out of memory");
	}
	memcpy(line, text, len);
	line[len++] = '\n';
	line[len] = '\0';
	json_object_put(doc);
	if (api->metrics_fd >= 0) {
		/* One write per line: a reader sees whole objects.  Nonblocking:
		 * a stalled FIFO reader loses a line, the API never waits. */
		n = write(api->metrics_fd, line, len);
		if (n < 0)
			ret = -errno;
		else if ((size_t)n < len)
			ret = -EAGAIN;
		if (ret)
			snprintf(err, errlen, "metrics: writing %s failed: %s",
				 api->cfg.metrics_path, strerror(-ret));
	}
	free(line);
	if (ret)
		return ret;
	memset(api->counters, 0, sizeof(api->counters));
	if (api->ops.flush_metrics)
		ret = api->ops.flush_metrics(api->vmm, err, errlen);
	return ret;
}

static void *api_metrics_timer(void *arg)
{
	struct api *api = arg;
	struct timespec deadline;
	char err[256];

	pthread_mutex_lock(&api->lock);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	while (!api->stopping) {
		deadline.tv_sec += API_METRICS_PERIOD_S;
		while (!api->stopping &&
		       pthread_cond_timedwait(&api->wake, &api->lock, &deadline) != ETIMEDOUT)
			;
		if (!api->stopping)
			api_metrics_flush_locked(api, err, sizeof(err));
	}
	pthread_mutex_unlock(&api->lock);
	return NULL;
}

int api_metrics_open_locked(struct api *api, const char *path, char *err, size_t errlen)
{
	int fd, old;

	if (api->flags & API_FLAG_NO_OUTPUT_FILES)
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == ENXIO)
			return api_fail(err, errlen,
					"metrics.metrics_path: %s is a named pipe with no reader; "
					"start the reader first",
					path);
		return api_fail(err, errlen, "metrics.metrics_path: %s: %s", path, strerror(errno));
	}
	old = api->metrics_fd;
	api->metrics_fd = fd;
	if (old >= 0)
		close(old);
	if (!api->flusher_running && !pthread_create(&api->flusher, NULL, api_metrics_timer, api))
		api->flusher_running = true;
	return 0;
}

void api_metrics_stop(struct api *api)
{
	pthread_mutex_lock(&api->lock);
	api->stopping = true;
	pthread_cond_broadcast(&api->wake);
	pthread_mutex_unlock(&api->lock);
	if (api->flusher_running)
		pthread_join(api->flusher, NULL);
	api->flusher_running = false;
	if (api->metrics_fd >= 0)
		close(api->metrics_fd);
	api->metrics_fd = -1;
}
