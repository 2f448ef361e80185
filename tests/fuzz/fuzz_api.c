// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the control API's request handling (core/api/):
 * routing, JSON parsing, validation into struct vm_config, state changes,
 * GET /vm/config, and --config-file parsing with a round-trip property.
 * Build and run (or `make fuzz`):
 *
 *   make build/fuzz/fuzz_api
 *   build/fuzz/fuzz_api -max_total_time=60 tests/fuzz/corpus/api
 *
 * Input: up to 8 requests separated by NUL bytes, each "METHOD PATH\nBODY"
 * against one fresh API whose VMM says yes to everything, so sequences
 * reach every state (configure, InstanceStart, pause, resume).  The method
 * "CONFIG" parses BODY as a config file instead; whatever parses must come
 * back from api_config_to_json() and parse again to the same thing, also
 * after api_config_finalize() (which appends root= to the command line,
 * as isola --config-file does before GET /vm/config shows it).  File
 * paths are only stat()ed: logger and metrics files are never opened.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/api/api.h"
#include "lib/log.h"
#include "lib/rate_limiter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum api_vm_state fuzz_state_value;

static enum api_vm_state fuzz_state(void *vmm)
{
	(void)vmm;
	return fuzz_state_value;
}

static int fuzz_start(void *vmm, const struct vm_config *cfg, char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen;
	/* PUT /snapshot/load: a restore, only on a fresh process (nothing to
	 * boot, no device configured) and with both files */
	if (cfg->restore_state_path) {
		if (!cfg->restore_mem_path || cfg->kernel_path || config_device_count(cfg))
			abort();
		fuzz_state_value = cfg->restore_resume ? API_STATE_RUNNING : API_STATE_PAUSED;
		return 0;
	}
	if (!cfg->kernel_path || cfg->nr_disks > CONFIG_MAX_DISKS)
		abort(); /* the API must never start an incomplete configuration */
	/* nor one outside Firecracker's limits or too small to boot */
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > 32 || cfg->memory_bytes < (2ull << 20) ||
	    (cfg->smt && cfg->nr_cpus > 1 && cfg->nr_cpus % 2))
		abort();
	/* a vsock isola-vsock takes: a guest CID and a PATH_PORT that fits */
	if (cfg->vsock.enabled && (cfg->vsock.guest_cid < 3 || cfg->vsock.guest_cid > 0xfffffffeu ||
				   !cfg->vsock.uds_path[0] || !memchr(cfg->vsock.uds_path, 0, 97)))
		abort();
	/* shares virtio-fs can serve: a tag of 1..36 bytes, unique; exactly
	 * one of socket and dir (docs/fs.md) */
	if (cfg->nr_fs > CONFIG_MAX_FS)
		abort();
	for (unsigned i = 0; i < cfg->nr_fs; i++) {
		const struct fs_config *fs = &cfg->fs[i];

		if (!fs->tag[0] || !memchr(fs->tag, 0, CONFIG_FS_TAG_MAX + 1) ||
		    !fs->socket[0] == !fs->dir[0])
			abort();
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(cfg->fs[j].tag, fs->tag))
				abort();
	}
	fuzz_state_value = API_STATE_RUNNING;
	return 0;
}

static int fuzz_pause(void *vmm, char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen;
	fuzz_state_value = API_STATE_PAUSED;
	return 0;
}

static int fuzz_resume(void *vmm, char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen;
	fuzz_state_value = API_STATE_RUNNING;
	return 0;
}

static int fuzz_ok(void *vmm, char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen;
	return 0;
}

/* PATCH /drives: the API hands over only a validated drive of its own. */
static int fuzz_update_drive(void *vmm, unsigned index, const struct disk_config *disk, bool reopen,
			     char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen, (void)reopen;
	if (index >= CONFIG_MAX_DISKS || !disk->path[0] || disk->socket[0] ||
	    !memchr(disk->path, 0, sizeof(disk->path)) ||
	    !memchr(disk->rate, 0, sizeof(disk->rate)))
		abort();
	return 0;
}

/* PATCH /entropy, /serial: the text must be one the servers and the UART
 * take (lib/rate_limiter.h), and the serial's a bytes bucket only. */
static int fuzz_update_rate(void *vmm, const char *rate, char *err, size_t errlen)
{
	struct rate_limiter rl;

	(void)vmm;
	if (rate[0] && rate_limiter_parse(rate, &rl, err, errlen))
		abort();
	return 0;
}

/* PUT /snapshot/create reaches the VMM only for a paused VM, with two
 * non-empty paths */
static int fuzz_snapshot(void *vmm, const char *state_path, const char *mem_path, bool diff,
			 char *err, size_t errlen)
{
	(void)vmm, (void)err, (void)errlen, (void)diff;
	if (fuzz_state_value != API_STATE_PAUSED || !state_path[0] || !mem_path[0])
		abort();
	return 0;
}

static const struct api_vmm_ops fuzz_ops = {
    .snapshot_create = fuzz_snapshot,
    .state = fuzz_state,
    .instance_start = fuzz_start,
    .pause = fuzz_pause,
    .resume = fuzz_resume,
    .send_ctrl_alt_del = fuzz_ok,
    .flush_metrics = fuzz_ok,
    .update_drive = fuzz_update_drive,
    .update_entropy = fuzz_update_rate,
    .update_serial = fuzz_update_rate,
};

static bool fuzz_same_string(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* GET /vm/config of cfg must parse as a config file to what first was. */
static void fuzz_round_trip(const struct vm_config *first, const struct vm_config *cfg)
{
	struct vm_config second;
	char err[512], *text = api_config_to_json(cfg);

	if (!text || api_config_from_json(&second, text, err, sizeof(err)))
		abort(); /* GET /vm/config must give back what --config-file takes */
	if (second.nr_disks != first->nr_disks || second.nr_cpus != first->nr_cpus ||
	    second.memory_bytes != first->memory_bytes || second.rng != first->rng ||
	    second.smt != first->smt || second.track_dirty_pages != first->track_dirty_pages ||
	    second.huge_pages != first->huge_pages || second.logger != first->logger ||
	    second.vsock.enabled != first->vsock.enabled ||
	    second.vsock.guest_cid != first->vsock.guest_cid ||
	    strcmp(second.vsock.uds_path, first->vsock.uds_path) ||
	    !fuzz_same_string(second.cmdline, first->cmdline) ||
	    !fuzz_same_string(second.log_module, first->log_module) ||
	    !fuzz_same_string(second.metrics_path, first->metrics_path))
		abort();
	free(text);
	api_config_release(&second);
}

static void fuzz_config(const char *body)
{
	struct vm_config first, booted;
	char err[512];

	if (api_config_from_json(&first, body, err, sizeof(err))) {
		api_config_release(&first);
		return;
	}
	fuzz_round_trip(&first, &first);
	/* boot_args is echoed as given, not as isola boots it */
	if (api_config_copy(&booted, &first))
		abort();
	if (!api_config_finalize(&booted, err, sizeof(err)))
		fuzz_round_trip(&first, &booted);
	api_config_release(&booted);
	api_config_release(&first);
}

static void fuzz_request(struct api *api, const char *req)
{
	char method[16] = "", *path, *body, *copy = strdup(req);
	struct api_response resp;
	size_t n;

	if (!copy)
		return;
	n = strcspn(copy, " ");
	if (n < sizeof(method)) {
		memcpy(method, copy, n);
		method[n] = '\0';
	}
	path = copy + n + (copy[n] == ' ');
	body = path + strcspn(path, "\n");
	if (*body)
		*body++ = '\0';
	if (!strcmp(method, "CONFIG")) {
		fuzz_config(body);
	} else {
		api_handle(api, method, path, body, strlen(body), &resp);
		if (resp.status != 200 && resp.status != 204 && resp.status != 400)
			abort(); /* the handler layer answers 200, 204 or 400 only */
		if ((resp.status == 204) != !resp.body)
			abort();
		/* only a deprecated field succeeds with "Deprecation: true" */
		if (resp.deprecated && resp.status != 204)
			abort();
		api_response_free(&resp);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input, *req, err[256];
	struct api *api;
	int count = 0;

	if (size > 65536)
		return 0;
	log_set_level(LOG_LEVEL_OFF);
	input = malloc(size + 1);
	if (!input)
		return 0;
	memcpy(input, data, size);
	input[size] = '\0';
	fuzz_state_value = API_STATE_NOT_STARTED;
	if (api_create(&api, NULL, &fuzz_ops, NULL, API_FLAG_NO_OUTPUT_FILES, err, sizeof(err)))
		abort();
	/* requests are NUL-separated: walk the original buffer */
	for (req = input; req <= input + size && count < 8; req += strlen(req) + 1, count++)
		fuzz_request(api, req);
	api_destroy(api);
	free(input);
	return 0;
}
