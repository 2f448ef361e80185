/* SPDX-License-Identifier: MIT */
/* Inside the control API: JSON helpers that name the path of a bad field,
 * and the Firecracker schema sections shared by the API and --config-file. */
#ifndef ISOLA_CORE_API_INTERNAL_H
#define ISOLA_CORE_API_INTERNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* Firecracker: "The maximum size of a request body is 51200 bytes". */
#define API_MAX_BODY 51200
#define API_DRIVE_ID_MAX 64
/* Firecracker's MAX_SUPPORTED_VCPUS (vmm_config/machine_config.rs) */
#define API_MAX_VCPUS 32
/* Firecracker's DEFAULT_MEM_SIZE_MIB: the API's and --config-file's default
 * (`isola run` keeps CONFIG_DEFAULT_MEMORY) */
#define API_DEFAULT_MEMORY (128ull << 20)

/* config_defaults() with Firecracker's defaults where they differ. */

int api_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "prefix.key", or "key" when prefix is empty. */
void api_json_path(char *out, size_t len, const char *prefix, const char *key);
/* Parse a whole document (trailing bytes refused); NULL with err. */
json_object *api_json_parse(const char *text, size_t len, char *err, size_t errlen);
/* v is an object whose keys are all in known (NULL-terminated). */
int api_json_only(json_object *v, const char *prefix, const char *const *known, char *err,
		  size_t errlen);
/* Typed members: 0 found, 1 absent (or null), -EINVAL wrong type/missing. */
int api_json_string(json_object *obj, const char *prefix, const char *key, bool required,
		    const char **out, char *err, size_t errlen);
int api_json_bool(json_object *obj, const char *prefix, const char *key, bool required, bool *out,
		  char *err, size_t errlen);
int api_json_int(json_object *obj, const char *prefix, const char *key, bool required, int64_t *out,
		 char *err, size_t errlen);

/* Schema sections (schema.c).  cfg must own its strings; on error cfg is
 * unchanged.  prefix names the section in messages ("machine-config",
 * "drives[1]"). */
int api_parse_boot_source(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
			  size_t errlen);
/* partial: PATCH (any non-empty subset); else PUT/config file (vcpu_count
 * and mem_size_mib required, the rest back to defaults).  *deprecated (if
 * not NULL) is set when a field Firecracker deprecates was given. */
int api_parse_machine_config(json_object *v, const char *prefix, bool partial,
			     struct vm_config *cfg, bool *deprecated, char *err, size_t errlen);
/* url_id: the {drive_id} of PUT /drives/{drive_id}, or NULL (config file). */
int api_parse_drive(json_object *v, const char *prefix, const char *url_id,
		    struct disk_config *disk, char *err, size_t errlen);
/* Insert or replace (same drive_id) disk in cfg. */
int api_put_drive(struct vm_config *cfg, const struct disk_config *disk, const char *prefix,
		  char *err, size_t errlen);
int api_parse_entropy(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		      size_t errlen);
int api_parse_logger(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		     size_t errlen);
int api_parse_metrics(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		      size_t errlen);
int api_parse_serial(json_object *v, const char *prefix, struct vm_config *cfg, char *err,
		     size_t errlen);
/* A path that must name an existing file the VMM can read (and write). */
int api_check_file(const char *path, const char *where, bool writable, char *err, size_t errlen);
/* Replace an owned string field with a copy of value (NULL clears). */
int api_set_string(const char **field, const char *value);
/* Drive and interface ids: 1..API_DRIVE_ID_MAX of [A-Za-z0-9_-]. */
bool api_id_valid(const char *id);
/* id, found at prefix.key: a valid id and, given url_id (the {id} of the
 * request's path), the same; 0, or -EINVAL with a sentence in err. */
int api_check_id(const char *id, const char *url_id, const char *prefix, const char *key, char *err,
		 size_t errlen);

/* Firecracker's Vsock (vsock.c): guest_cid and uds_path into cfg->vsock
 * (replacing it); *deprecated (if not NULL) set when vsock_id was given.
 * On error cfg is unchanged. */
int api_parse_vsock(json_object *v, const char *prefix, struct vm_config *cfg, bool *deprecated,
		    char *err, size_t errlen);
/* cfg's vsock as Firecracker's Vsock (no vsock_id); NULL if none. */
json_object *api_vsock_to_json(const struct vm_config *cfg);

/* Shared directories (fs.c; isola extension, docs/fs.md): fs_id, tag and
 * socket or dir (+ cache, sandbox) into fs.  url_id: the {fs_id} of PUT
 * /fs/{fs_id}, or NULL (config file). */
int api_parse_fs(json_object *v, const char *prefix, const char *url_id, struct fs_config *fs,
		 char *err, size_t errlen);
/* Insert or replace (same fs_id) fs in cfg; a tag another share has, or no
 * PCI slot left, is refused. */
int api_put_fs(struct vm_config *cfg, const struct fs_config *fs, const char *prefix, char *err,
	       size_t errlen);
/* fs (the index'th) as PUT /fs's object. */
json_object *api_fs_to_json(const struct fs_config *fs, unsigned index);

/* Network interfaces (net.c).  url_id: the {iface_id} of PUT
 * /network-interfaces/{iface_id}, or NULL (config file). */
int api_parse_net(json_object *v, const char *prefix, const char *url_id, struct net_config *net,
		  char *err, size_t errlen);
/* Insert or replace (same iface_id) net in cfg; a tap or guest MAC another
 * interface has is refused. */
int api_put_net(struct vm_config *cfg, const struct net_config *net, const char *prefix, char *err,
		size_t errlen);
/* Member `key` of v (a RateLimiter) into spec (lib/rate_limiter.h's text).
 * PUT (patch false): spec becomes exactly what is given; PATCH: the buckets
 * given replace those in spec, the others stay; a bucket of size or
 * refill_time 0 is none.  1 if the member is absent (spec unchanged), 0,
 * or -EINVAL with err (spec unchanged). */
int api_parse_rate_limiter(json_object *v, const char *prefix, const char *key, bool patch,
			   char spec[CONFIG_RATE_SPEC_SIZE], char *err, size_t errlen);
/* Member `key` of v, one TokenBucket (Firecracker's SerialDevice
 * "rate_limiter"), into spec as a SPEC with a bytes bucket only.  1 if
 * absent (spec unchanged), 0, or -EINVAL with err. */
int api_parse_token_bucket(json_object *v, const char *prefix, const char *key,
			   char spec[CONFIG_RATE_SPEC_SIZE], char *err, size_t errlen);
/* A SPEC as Firecracker's RateLimiter / as the TokenBucket of its bytes
 * bucket; NULL for none.  And one bucket as a TokenBucket. */
json_object *api_rate_limiter_to_json(const char *spec);
json_object *api_token_bucket_to_json(const char *spec);
struct token_bucket;
json_object *api_bucket_to_json(const struct token_bucket *bucket);
/* net as Firecracker's NetworkInterface object. */
json_object *api_net_to_json(const struct net_config *net);
/* "drive" of disk as Firecracker's Drive object. */
json_object *api_drive_to_json(const struct disk_config *disk, unsigned index);
const char *api_log_level_name(int level);
/* machine-config "huge_pages" as Firecracker writes it: "None" or "2M". */
const char *api_huge_pages_name(const struct vm_config *cfg);

/* ---- the handler state (handlers.c, metrics.c) ---- */
#include <pthread.h>

#include "core/api/api.h"

enum api_endpoint {
	API_EP_ROOT,
	API_EP_VERSION,
	API_EP_BOOT_SOURCE,
	API_EP_MACHINE_CONFIG,
	API_EP_DRIVES,
	API_EP_NETWORK,
	API_EP_ENTROPY,
	API_EP_ACTIONS,
	API_EP_VM,
	API_EP_VM_CONFIG,
	API_EP_LOGGER,
	API_EP_METRICS,
	API_EP_SERIAL,
	API_EP_VSOCK,
	API_EP_FS,
	API_EP_SNAPSHOT_CREATE,
	API_EP_SNAPSHOT_LOAD,
	API_EP_UNIMPLEMENTED,
	API_EP_INVALID,
	API_EP_COUNT
};
enum api_method { API_GET, API_PUT, API_PATCH, API_OTHER, API_METHOD_COUNT };

struct api_counter {
	uint64_t count, fails, latency_sum_us, latency_max_us;
};

struct api {
	pthread_mutex_t lock; /* everything below */
	struct vm_config cfg; /* owns its strings */
	struct api_vmm_ops ops;
	void *vmm;
	unsigned flags;
	enum api_vm_state state; /* ours until InstanceStart; then ops.state */
	bool configured;	 /* a boot resource was PUT: PUT /snapshot/load is refused */
	int metrics_fd;
	struct api_counter counters[API_EP_COUNT][API_METHOD_COUNT];
	/* the 60 s metrics timer */
	pthread_t flusher;
	bool flusher_running, stopping;
	pthread_cond_t wake;
};

/* handlers.c: answer a routed request (lock held). */
int api_dispatch(struct api *api, enum api_endpoint ep, enum api_method method,
		 const char *method_name, const char *path, const char *id, const char *body,
		 size_t body_len, struct api_response *resp);
int api_instance_start_locked(struct api *api, char *err, size_t errlen);
/* The VMM boots `booted` (finalized): keep its drive order (root first) for
 * PATCH /drives and the MACs it chose for GET /vm/config; the VM is
 * started from now on. */
void api_keep_booted_locked(struct api *api, const struct vm_config *booted);

/* metrics.c: count one request; write a line (lock held). */
void api_metrics_count(struct api *api, enum api_endpoint ep, enum api_method method, int status,
		       uint64_t latency_us);
int api_metrics_flush_locked(struct api *api, char *err, size_t errlen);
/* Open cfg->metrics_path (lock held); starts the 60 s timer. */
int api_metrics_open_locked(struct api *api, const char *path, char *err, size_t errlen);
void api_metrics_stop(struct api *api);

#endif
