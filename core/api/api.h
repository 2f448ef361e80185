/* SPDX-License-Identifier: MIT */
/*
 * Control API: Firecracker-compatible HTTP/1.1 + JSON on a Unix socket
 * (`isola --api-sock PATH`).  The API thread parses and validates requests
 * and keeps the pre-boot configuration; everything that touches the running
 * VM goes through struct api_vmm_ops, whose calls never block on a vCPU.
 *
 * Two layers:
 *   struct api         routing + handlers: (method, path, body) -> (status,
 *                      body), no socket; the pre-boot configuration, the
 *                      metrics and the logger live here behind one mutex.
 *                      Unit tests and the fuzzer drive it directly.
 *   struct api_server  libmicrohttpd on a Unix socket, in front of a struct api.
 */
#ifndef ISOLA_CORE_API_API_H
#define ISOLA_CORE_API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

enum api_vm_state { API_STATE_NOT_STARTED, API_STATE_RUNNING, API_STATE_PAUSED, API_STATE_STOPPED };

/* What the API asks of the VMM (implemented in core/main.c / core/vm.c).
 * Each returns 0 or -errno and writes a human sentence into err on failure;
 * they are called from the API thread with the API's lock held (so they
 * must not call back into api_*).  Any of them may be NULL: the request
 * then gets 400 "... is not available in this isola". */
struct api_vmm_ops {
	enum api_vm_state (*state)(void *vmm);
	/* Boot with cfg (validated and finalized by the API: root drive first,
	 * root= on the command line); the VMM copies what it needs. */
	int (*instance_start)(void *vmm, const struct vm_config *cfg, char *err, size_t errlen);
	int (*pause)(void *vmm, char *err, size_t errlen);
	int (*resume)(void *vmm, char *err, size_t errlen);
	int (*send_ctrl_alt_del)(void *vmm, char *err, size_t errlen);
	/* Called after the API wrote a metrics line (FlushMetrics or the 60 s
	 * timer), e.g. to reset the VMM's own per-interval counters. */
	int (*flush_metrics)(void *vmm, char *err, size_t errlen);
	/* Append the VMM's metrics (vCPU exits, device counters) to a JSON
	 * object the API owns (json_object *), for FlushMetrics. */
	void (*fill_metrics)(void *vmm, void *json_object);
	/* PATCH /drives/{id} after start (new path_on_host and/or rate
	 * limiter for drive `index`, already validated).  reopen: the PATCH
	 * named path_on_host, so the file is opened again even if the path is
	 * the same (Firecracker re-opens it; Kata bind-mounts a new file over
	 * the same path).  NULL: refused with a message.  -EINPROGRESS: the
	 * drive is on disk from now on but its server is being restarted (err
	 * says so; the API records disk and answers 400). */
	int (*update_drive)(void *vmm, unsigned index, const struct disk_config *disk, bool reopen,
			    char *err, size_t errlen);
	/* PATCH /network-interfaces/{id} after start: interface `index`
	 * (cfg->nets[index] of the boot configuration) gets net's rx_rate and
	 * tx_rate (validated SPEC text; nothing else of net is applied).  The
	 * VMM restarts that interface's isola-net with them (docs/api.md).
	 * NULL: refused with a message. */
	int (*update_net)(void *vmm, unsigned index, const struct net_config *net, char *err,
			  size_t errlen);
	/* PATCH /entropy after start (isola extension): isola-rng gets `rate`
	 * (validated SPEC text, "" none) the way update_net does.  NULL:
	 * refused with a message. */
	int (*update_entropy)(void *vmm, const char *rate, char *err, size_t errlen);
	/* PATCH /serial after start (isola extension): the console's output
	 * limiter becomes `rate` (SPEC text with a bytes bucket only, "" none),
	 * in place.  NULL: refused with a message. */
	int (*update_serial)(void *vmm, const char *rate, char *err, size_t errlen);
	/* Live upgrade (isola extension): replace device servers by the
	 * binaries on disk now, through a handover the guest does not see
	 * (docs/api.md "Live upgrade of a device server").  kind: a static
	 * string ("blk" and index: drive `index`), or NULL: every server
	 * isola started.  NULL op: refused with a message. */
	int (*upgrade_servers)(void *vmm, const char *kind, unsigned index, char *err,
			       size_t errlen);
	/* PUT /snapshot/create: the paused VM's state to state_path, its
	 * memory to mem_path, all of it or (diff) the pages written since
	 * the last snapshot (core/snapshot.h).  NULL: refused. */
	int (*snapshot_create)(void *vmm, const char *state_path, const char *mem_path, bool diff,
			       char *err, size_t errlen);
	/* After PUT /snapshot/load: the restored VM's vCPU count and memory
	 * size (from its state file), for GET /machine-config; false if not
	 * known.  NULL: the API keeps its own. */
	bool (*restored_shape)(void *vmm, unsigned *cpus, uint64_t *memory);
};

/* ---- handler layer (no socket) ---- */

struct api;

struct api_response {
	int status;	 /* 200, 204, 400, ... */
	char *body;	 /* malloc'd JSON, or NULL (204); free with api_response_free */
	bool deprecated; /* a deprecated field was used: send "Deprecation: true" */
};

/* Validate paths but never open, create or write files (logger, metrics):
 * for the fuzzer. */
#define API_FLAG_NO_OUTPUT_FILES 1u

/* A handler state holding a deep copy of initial (NULL: defaults).  A logger
 * or metrics in initial is applied now.  Returns 0 or -errno with err. */
int api_create(struct api **api, const struct vm_config *initial, const struct api_vmm_ops *ops,
	       void *vmm, unsigned flags, char *err, size_t errlen);
void api_destroy(struct api *api);

/* Route and answer one request.  method is "GET", "PUT", ...; path is the
 * URL path (no query); body may be NULL when body_len is 0.  Never fails:
 * every error is a 4xx response with {"fault_message": "..."}. */
void api_handle(struct api *api, const char *method, const char *path, const char *body,
		size_t body_len, struct api_response *resp);
void api_response_free(struct api_response *resp);

/* InstanceStart without HTTP (--config-file boots straight away). */
int api_instance_start(struct api *api, char *err, size_t errlen);
/* The VMM boots `booted` (finalized: root drive first) without an
 * InstanceStart (--config-file): the API serves a started VM from now on,
 * its state the VMM's, and a later InstanceStart is refused. */
void api_mark_started(struct api *api, const struct vm_config *booted);
/* Write one metrics line now (FlushMetrics); -ENOENT if no metrics path. */
int api_flush_metrics(struct api *api, char *err, size_t errlen);

/* ---- the server ---- */

struct api_server;

/* Bind a Unix socket at path (refused if it exists) and start serving on
 * the API thread.  max_body: the largest request body (0: Firecracker's
 * 51,200 bytes).  initial may hold a configuration from --config-file
 * (NULL: api_config_defaults). */
int api_server_start(struct api_server **server, const char *socket_path, size_t max_body,
		     const struct vm_config *initial, const struct api_vmm_ops *ops, void *vmm,
		     char *err, size_t errlen);
/* The handler state behind the server (for api_instance_start). */
struct api *api_server_api(struct api_server *server);
/* Stop serving, join the API thread, remove the socket file. */
void api_server_stop(struct api_server *server);

/* ---- configuration in Firecracker's "full VM configuration" schema ---- */

/* --config-file: parse Firecracker-schema JSON into cfg (defaults first).
 * Errors name the JSON path: "drives[1].path_on_host: no such file".
 * cfg owns its strings afterwards (api_config_release), even on error. */
int api_config_from_json(struct vm_config *cfg, const char *json_text, char *err, size_t errlen);
int api_config_from_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* The same schema back (GET /vm/config); malloc'd, NULL on ENOMEM. */
char *api_config_to_json(const struct vm_config *cfg);
/* Deep copy: dst owns its strings (api_config_release). */
int api_config_copy(struct vm_config *dst, const struct vm_config *src);
/* config_defaults with the API's own defaults (Firecracker's 128 MiB). */
void api_config_defaults(struct vm_config *cfg);
/* Ready to boot: a kernel is set; at most one root drive, moved first,
 * with "root=/dev/vda" (or root=PARTUUID=) and "ro"/"rw" appended to the
 * command line unless it has a root= already, like Firecracker.  cfg must
 * own its strings.  0 or -EINVAL with err. */
int api_config_finalize(struct vm_config *cfg, char *err, size_t errlen);
/* Free what api_config_* allocated (no-op unless cfg->owns_strings). */
void api_config_release(struct vm_config *cfg);

#endif
