// SPDX-License-Identifier: MIT
/*
 * Unit tests for the control API (core/api/): every endpoint and every error
 * class through the handler layer (no socket), --config-file errors with
 * their JSON paths, the GET /vm/config round trip, and the socket server.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/api/api.h"
#include "core/version.h"
#include "lib/log.h"

/* ---- a fake VMM ---- */

struct fake_vmm {
	enum api_vm_state state;
	int starts, pauses, resumes, ctrl_alt_dels, flushes, fills, snapshots;
	char snapshot_state[256], snapshot_mem[256];
	bool snapshot_diff;
	int fail_start;
	struct vm_config booted; /* what instance_start received (deep copy) */
};

static enum api_vm_state fake_state(void *vmm)
{
	return ((struct fake_vmm *)vmm)->state;
}

static int fake_start(void *vmm, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct fake_vmm *f = vmm;

	if (f->fail_start) {
		snprintf(err, errlen, "KVM_CREATE_VM: no");
		return -EIO;
	}
	f->starts++;
	api_config_release(&f->booted);
	assert_int_equal(api_config_copy(&f->booted, cfg), 0);
	f->state = API_STATE_RUNNING;
	return 0;
}

static int fake_pause(void *vmm, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)vmm)->pauses++;
	((struct fake_vmm *)vmm)->state = API_STATE_PAUSED;
	return 0;
}

static int fake_resume(void *vmm, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)vmm)->resumes++;
	((struct fake_vmm *)vmm)->state = API_STATE_RUNNING;
	return 0;
}

static int fake_ctrl_alt_del(void *vmm, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)vmm)->ctrl_alt_dels++;
	return 0;
}

static int fake_flush(void *vmm, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)vmm)->flushes++;
	return 0;
}

static void fake_fill(void *vmm, void *obj)
{
	((struct fake_vmm *)vmm)->fills++;
	json_object_object_add(obj, "vcpu", json_object_new_int(42));
}

static int fake_snapshot(void *vmm, const char *state_path, const char *mem_path, bool diff,
			 char *err, size_t errlen)
{
	struct fake_vmm *f = vmm;

	(void)err, (void)errlen;
	f->snapshots++;
	f->snapshot_diff = diff;
	snprintf(f->snapshot_state, sizeof(f->snapshot_state), "%s", state_path);
	snprintf(f->snapshot_mem, sizeof(f->snapshot_mem), "%s", mem_path);
	return 0;
}

static const struct api_vmm_ops fake_ops = {
    .snapshot_create = fake_snapshot,
    .state = fake_state,
    .instance_start = fake_start,
    .pause = fake_pause,
    .resume = fake_resume,
    .send_ctrl_alt_del = fake_ctrl_alt_del,
    .flush_metrics = fake_flush,
    .fill_metrics = fake_fill,
};

/* ---- fixture: a temp dir with a kernel, an initrd and two images ---- */

struct fixture {
	struct api *api;
	struct fake_vmm vmm;
	char dir[64], kernel[128], initrd[128], disk[128], disk2[128], sock[128];
	struct api_response resp;
};

static void touch(const char *path, mode_t mode)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/isola-test-api-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinux", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	snprintf(f->disk, sizeof(f->disk), "%s/root.img", f->dir);
	snprintf(f->disk2, sizeof(f->disk2), "%s/data.img", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/api.sock", f->dir);
	touch(f->kernel, 0644);
	touch(f->initrd, 0644);
	touch(f->disk, 0644);
	touch(f->disk2, 0644);
	assert_int_equal(api_create(&f->api, NULL, &fake_ops, &f->vmm, 0, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	api_response_free(&f->resp);
	api_destroy(f->api);
	api_config_release(&f->vmm.booted);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* One request; the response stays in f->resp until the next. */
static int call(struct fixture *f, const char *method, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int call(struct fixture *f, const char *method, const char *path, const char *fmt, ...)
{
	char body[8192] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	api_response_free(&f->resp);
	api_handle(f->api, method, path, body, strlen(body), &f->resp);
	return f->resp.status;
}

/* The last answer was 400 {"fault_message": "...needle..."}. */
static void expect_fault(struct fixture *f, const char *needle)
{
	json_object *doc, *msg;

	assert_int_equal(f->resp.status, 400);
	assert_non_null(f->resp.body);
	doc = json_tokener_parse(f->resp.body);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "fault_message", &msg));
	assert_int_equal(json_object_object_length(doc), 1);
	if (!strstr(json_object_get_string(msg), needle))
		fail_msg("fault '%s' does not mention '%s'", json_object_get_string(msg), needle);
	json_object_put(doc);
}

static void expect_ok(struct fixture *f, int status)
{
	if (f->resp.status != status)
		fail_msg("status %d (%s), want %d", f->resp.status, f->resp.body ?: "", status);
	if (status == 204)
		assert_null(f->resp.body);
}

/* A string member of the last 200 answer. */
static const char *answer_string(struct fixture *f, const char *key, char *buf, size_t len)
{
	json_object *doc = json_tokener_parse(f->resp.body), *v;

	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, key, &v));
	snprintf(buf, len, "%s", json_object_get_string(v));
	json_object_put(doc);
	return buf;
}

static void put_boot_source(struct fixture *f)
{
	call(f, "PUT", "/boot-source",
	     "{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"}", f->kernel);
	expect_ok(f, 204);
}

static void start(struct fixture *f)
{
	put_boot_source(f);
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_ok(f, 204);
}

/* ---- GET / and /version ---- */

static void test_instance_info(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	call(f, "GET", "/", NULL);
	expect_ok(f, 200);
	assert_string_equal(answer_string(f, "state", buf, sizeof(buf)), "Not started");
	assert_string_equal(answer_string(f, "app_name", buf, sizeof(buf)), "isola");
	assert_string_equal(answer_string(f, "id", buf, sizeof(buf)), "anonymous-instance");
	answer_string(f, "vmm_version", buf, sizeof(buf));
	call(f, "GET", "/version", NULL);
	expect_ok(f, 200);
	/* the API version orchestrators compare, not isola's own */
	assert_string_equal(answer_string(f, "firecracker_version", buf, sizeof(buf)),
			    ISOLA_FIRECRACKER_API_VERSION);
	start(f);
	call(f, "GET", "/", NULL);
	assert_string_equal(answer_string(f, "state", buf, sizeof(buf)), "Running");
	f->vmm.state = API_STATE_PAUSED; /* the VMM is the truth once started */
	call(f, "GET", "/", NULL);
	assert_string_equal(answer_string(f, "state", buf, sizeof(buf)), "Paused");
}

/* ---- paths and methods outside the API ---- */

static void test_unknown_paths(void **state)
{
	static const char *const bad[][2] = {
	    {"GET", "/nothing"},
	    {"GET", "/boot-source"},
	    {"DELETE", "/"},
	    {"POST", "/actions"},
	    {"PUT", "/drives"},
	    {"PUT", "/drives/"},
	    {"PUT", "/drives/a/b"},
	    {"GET", "/drives/a"},
	    {"PUT", "/vm"},
	    {"GET", "/machine-config/"},
	    {"GET", ""},
	    {"PUT", "/vm/config"},
	    {"BREW", "/"},
	    {"GET", "//"},
	    {"GET", "/version?x"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call(*state, bad[i][0], bad[i][1], strcmp(bad[i][0], "GET") ? "{}" : NULL);
		expect_fault(*state, "Invalid request method and/or path");
	}
}

/* Firecracker: a GET with a body is refused, whatever the path. */
static void test_get_with_body(void **state)
{
	static const char *const paths[] = {"/", "/version", "/machine-config", "/vm/config",
					    "/nothing"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		call(*state, "GET", paths[i], "{}");
		expect_fault(*state, "GET request cannot have a body.");
	}
	call(*state, "GET", "/", NULL);
	expect_ok(*state, 200);
}

static void test_unimplemented(void **state)
{
	static const char *const paths[] = {
	    "/balloon",	   "/balloon/statistics", "/mmds",   "/mmds/config",
	    "/cpu-config", "/hotplug/memory",	  "/pmem/p0"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		call(*state, "PUT", paths[i], "{}");
		expect_fault(*state, "isola does not implement");
		call(*state, "GET", paths[i], NULL);
		expect_fault(*state, "yet");
	}
}

/* ---- PUT /vsock ---- */

/* A Unix socket file nobody listens on: what a crashed run leaves. */
static void stale_socket(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
}

/* GET /vm/config's "vsock": NULL if null, else guest_cid and uds_path. */
static void expect_vsock(struct fixture *f, int64_t cid, const char *uds)
{
	json_object *doc, *v, *m;

	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	doc = json_tokener_parse(f->resp.body);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "vsock", &v));
	if (!uds) {
		assert_null(v);
	} else {
		assert_int_equal(json_object_object_length(v), 2); /* no vsock_id */
		assert_true(json_object_object_get_ex(v, "guest_cid", &m));
		assert_int_equal(json_object_get_int64(m), cid);
		assert_true(json_object_object_get_ex(v, "uds_path", &m));
		assert_string_equal(json_object_get_string(m), uds);
	}
	json_object_put(doc);
}

static void test_vsock(void **state)
{
	struct fixture *f = *state;
	char uds[160], other[160], longp[160];

	snprintf(uds, sizeof(uds), "%s/v.sock", f->dir);
	snprintf(other, sizeof(other), "%s/w.sock", f->dir);
	expect_vsock(f, 0, NULL);
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", uds);
	expect_ok(f, 204);
	assert_false(f->resp.deprecated);
	expect_vsock(f, 3, uds);
	/* vsock_id is deprecated in Firecracker: accepted, "Deprecation: true" */
	call(f, "PUT", "/vsock", "{\"vsock_id\": \"root\", \"guest_cid\": 4, \"uds_path\": \"%s\"}",
	     other);
	expect_ok(f, 204);
	assert_true(f->resp.deprecated);
	/* the second PUT replaced the first */
	expect_vsock(f, 4, other);

	/* Each refusal leaves the configuration as it was. */
	call(f, "PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: 2 is reserved (0 hypervisor, 1 local, 2 host");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 0, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: 0 is reserved");
	call(f, "PUT", "/vsock", "{\"guest_cid\": -3, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: -3 is out of range; a guest CID is 3 to 4294967294");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 4294967295, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: 4294967295 is out of range");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 99999999999999999999, \"uds_path\": \"%s\"}",
	     uds);
	expect_fault(f, "vsock.guest_cid: 9223372036854775807 is out of range");
	call(f, "PUT", "/vsock", "{\"guest_cid\": \"3\", \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: must be an integer");
	call(f, "PUT", "/vsock", "{\"uds_path\": \"%s\"}", uds);
	expect_fault(f, "vsock.guest_cid: missing (required)");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3}");
	expect_fault(f, "vsock.uds_path: missing (required)");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": null}");
	expect_fault(f, "vsock.uds_path: missing (required)");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"\"}");
	expect_fault(f, "vsock.uds_path: must not be empty");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s/none/v.sock\"}", f->dir);
	expect_fault(f, "/none: No such file or directory; create it first");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s/v.sock\"}", f->kernel);
	expect_fault(f, "/vmlinux is not a directory");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s/\"}", f->dir);
	expect_fault(f, "names a directory; give the path of a socket file in it");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", f->kernel);
	expect_fault(f, "/vmlinux exists and is not a socket; isola-vsock creates the socket");
	/* 96 bytes fit (PATH + "_4294967295" in sun_path's 108), 97 do not */
	snprintf(longp, sizeof(longp), "%s/%0*d", f->dir, 96 - (int)strlen(f->dir) - 1, 0);
	assert_int_equal(strlen(longp), 96);
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s1\"}", longp);
	expect_fault(f, "vsock.uds_path: 97 bytes is too long");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\", \"cid\": 3}", uds);
	expect_fault(f, "vsock.cid: unknown field; known fields are guest_cid, uds_path, vsock_id");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\", \"vsock_id\": 1}", uds);
	expect_fault(f, "vsock.vsock_id: must be a string");
	call(f, "PUT", "/vsock", NULL);
	expect_fault(f, "the request has no body");
	expect_vsock(f, 4, other);

	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", longp);
	expect_ok(f, 204);
	/* a socket left by an earlier run: isola-vsock replaces it */
	stale_socket(uds);
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", uds);
	expect_ok(f, 204);
	/* Firecracker has no GET or PATCH /vsock */
	call(f, "GET", "/vsock", NULL);
	expect_fault(f, "Invalid request method and/or path: GET /vsock");
	call(f, "PATCH", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "Invalid request method and/or path: PATCH /vsock");
}

/* ---- PUT /fs/{fs_id} (isola extension; docs/fs.md) ---- */

/* GET /vm/config's "fs": absent without a share, else one object each. */
static json_object *vm_config_fs(struct fixture *f)
{
	json_object *doc, *v;

	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	doc = json_tokener_parse(f->resp.body);
	assert_non_null(doc);
	if (!json_object_object_get_ex(doc, "fs", &v)) {
		json_object_put(doc);
		return NULL;
	}
	json_object_get(v);
	json_object_put(doc);
	return v;
}

static const char *fs_field(json_object *list, size_t i, const char *key)
{
	json_object *m;

	if (!json_object_object_get_ex(json_object_array_get_idx(list, i), key, &m))
		return NULL;
	return json_object_get_string(m);
}

static void test_fs(void **state)
{
	struct fixture *f = *state;
	json_object *list;

	assert_null(vm_config_fs(f));
	call(f, "PUT", "/fs/share",
	     "{\"fs_id\": \"share\", \"tag\": \"data\", \"socket\": \"%s/fs.sock\"}", f->dir);
	expect_ok(f, 204);
	call(f, "PUT", "/fs/two",
	     "{\"fs_id\": \"two\", \"tag\": \"t2\", \"dir\": \"%s\", \"sandbox\": \"chroot\"}",
	     f->dir);
	expect_ok(f, 204);
	list = vm_config_fs(f);
	assert_non_null(list);
	assert_int_equal(json_object_array_length(list), 2);
	assert_string_equal(fs_field(list, 0, "fs_id"), "share");
	assert_string_equal(fs_field(list, 0, "tag"), "data");
	assert_null(fs_field(list, 0, "dir"));
	assert_string_equal(fs_field(list, 1, "tag"), "t2");
	assert_string_equal(fs_field(list, 1, "cache"), "auto");
	assert_string_equal(fs_field(list, 1, "sandbox"), "chroot");
	json_object_put(list);
	/* the same fs_id replaces */
	call(f, "PUT", "/fs/share",
	     "{\"fs_id\": \"share\", \"tag\": \"renamed\", \"socket\": \"s\"}");
	expect_ok(f, 204);
	list = vm_config_fs(f);
	assert_int_equal(json_object_array_length(list), 2);
	assert_string_equal(fs_field(list, 0, "tag"), "renamed");
	json_object_put(list);

	/* refusals, each naming the field and what to do */
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"y\", \"tag\": \"t\", \"socket\": \"s\"}");
	expect_fault(f,
		     "fs/x.fs_id: \"y\" differs from the id in the path (\"x\"); they must match");
	call(f, "PUT", "/fs/x",
	     "{\"fs_id\": \"x\", \"tag\": \"0123456789012345678901234567890123456\", \"socket\": "
	     "\"s\"}");
	expect_fault(f, "fs/x tag=0123456789012345678901234567890123456: a tag is 1 to 36 bytes");
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"tag\": \"t\", \"dir\": \"%s/none\"}", f->dir);
	expect_fault(f, "/none: No such file or directory; give an existing directory");
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"tag\": \"t\"}");
	expect_fault(f, "fs/x tag=t needs exactly one of socket=PATH");
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"socket\": \"s\"}");
	expect_fault(f, "fs/x needs tag=NAME");
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"tag\": \"t2\", \"socket\": \"s\"}");
	expect_fault(f, "fs/x: tag \"t2\" is the tag of fs two too");
	call(f, "PUT", "/fs/x",
	     "{\"fs_id\": \"x\", \"tag\": \"t\", \"socket\": \"s\", \"dax\": \"on\"}");
	expect_fault(f, "fs/x.dax: unknown field");
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"tag\": 5, \"socket\": \"s\"}");
	expect_fault(f, "fs/x.tag: must be a string");
	call(f, "PUT", "/fs/x",
	     "{\"fs_id\": \"x\", \"tag\": \"t\", \"socket\": \"s\", \"cache\": \"none\"}");
	expect_fault(f, "cache= and sandbox= are for the virtiofsd isola starts");
	call(f, "GET", "/fs/share", NULL);
	expect_fault(f, "Invalid request method and/or path: GET /fs/share");
	list = vm_config_fs(f);
	assert_int_equal(json_object_array_length(list), 2); /* nothing refused was added */
	json_object_put(list);
	/* pre-boot only */
	start(f);
	call(f, "PUT", "/fs/x", "{\"fs_id\": \"x\", \"tag\": \"t\", \"socket\": \"s\"}");
	expect_fault(f, "PUT /fs/x is only valid before InstanceStart; the VM is Running");
}

/* Pre-boot only; the VMM boots with it; GET /vm/config keeps saying it. */
static void test_vsock_after_start(void **state)
{
	struct fixture *f = *state;
	char uds[160];

	snprintf(uds, sizeof(uds), "%s/v.sock", f->dir);
	call(f, "PUT", "/vsock", "{\"guest_cid\": 52, \"uds_path\": \"%s\"}", uds);
	expect_ok(f, 204);
	start(f);
	assert_true(f->vmm.booted.vsock.enabled);
	assert_int_equal(f->vmm.booted.vsock.guest_cid, 52);
	assert_string_equal(f->vmm.booted.vsock.uds_path, uds);
	call(f, "PUT", "/vsock", "{\"guest_cid\": 53, \"uds_path\": \"%s\"}", uds);
	expect_fault(f, "PUT /vsock is only valid before InstanceStart; the VM is Running");
	expect_vsock(f, 52, uds);
}

/* ---- PUT /boot-source ---- */

static void test_boot_source(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/boot-source",
	     "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", \"boot_args\": \"quiet\"}",
	     f->kernel, f->initrd);
	expect_ok(f, 204);
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s/none\"}", f->dir);
	expect_fault(f, "boot-source.kernel_image_path: no such file");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", f->dir);
	expect_fault(f, "is a directory");
	call(f, "PUT", "/boot-source",
	     "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"/no/initrd\"}", f->kernel);
	expect_fault(f, "boot-source.initrd_path: no such file");
	call(f, "PUT", "/boot-source", "{\"boot_args\": \"x\"}");
	expect_fault(f, "boot-source.kernel_image_path: missing (required)");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": 7}");
	expect_fault(f, "boot-source.kernel_image_path: must be a string");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\", \"kernel\": 1}", f->kernel);
	expect_fault(f, "boot-source.kernel: unknown field");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"", f->kernel);
	expect_fault(f, "malformed JSON");
	call(f, "PUT", "/boot-source", "[1, 2]");
	expect_fault(f, "must be a JSON object");
	call(f, "PUT", "/boot-source", "{} {}");
	expect_fault(f, "unexpected data after the value");
	call(f, "PUT", "/boot-source", NULL);
	expect_fault(f, "has no body");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"a\\u0000b\"}");
	expect_fault(f, "NUL");
	/* failed requests left the first configuration alone */
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body, "\"boot_args\":\"quiet\""));
	assert_non_null(strstr(f->resp.body, f->initrd));
}

/* ---- /machine-config ---- */

static void test_machine_config(void **state)
{
	struct fixture *f = *state;
	json_object *doc, *v;

	call(f, "GET", "/machine-config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body, "\"vcpu_count\":1"));
	/* Firecracker's default (DEFAULT_MEM_SIZE_MIB), not `isola run`'s */
	assert_non_null(strstr(f->resp.body, "\"mem_size_mib\":128"));
	call(f, "PUT", "/machine-config",
	     "{\"vcpu_count\": 2, \"mem_size_mib\": 64, \"smt\": false, \"track_dirty_pages\": "
	     "false, \"huge_pages\": \"None\", \"cpu_template\": \"None\"}");
	expect_ok(f, 204);
	/* cpu_template is deprecated in Firecracker: "Deprecation: true" */
	assert_true(f->resp.deprecated);
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 4}");
	expect_ok(f, 204);
	assert_false(f->resp.deprecated);
	call(f, "PATCH", "/machine-config", "{\"cpu_template\": \"None\"}");
	expect_ok(f, 204);
	assert_true(f->resp.deprecated);
	/* Firecracker refuses an empty update */
	call(f, "PATCH", "/machine-config", "{}");
	expect_fault(f, "Empty PATCH request");
	call(f, "GET", "/machine-config", NULL);
	doc = json_tokener_parse(f->resp.body);
	assert_true(json_object_object_get_ex(doc, "vcpu_count", &v));
	assert_int_equal(json_object_get_int(v), 4);
	assert_true(json_object_object_get_ex(doc, "mem_size_mib", &v));
	assert_int_equal(json_object_get_int(v), 64);
	json_object_put(doc);

	call(f, "PUT", "/machine-config", "{\"vcpu_count\": 2}");
	expect_fault(f, "machine-config.mem_size_mib: missing (required)");
	call(f, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 64}");
	expect_fault(f, "machine-config.vcpu_count: must be between 1 and 32");
	/* Firecracker's MAX_SUPPORTED_VCPUS */
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 33}");
	expect_fault(f, "must be between 1 and 32");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 256}");
	expect_fault(f, "must be between 1 and 32");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": -1}");
	expect_fault(f, "must be between 1 and 32");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 99999999999999999999999}");
	expect_fault(f, "machine-config.vcpu_count");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 1.5}");
	expect_fault(f, "machine-config.vcpu_count: must be an integer");
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 0}");
	expect_fault(f, "machine-config.mem_size_mib: must be at least 1");
	/* 1 MiB: accepted as by Firecracker; isola cannot boot it, and says so
	 * at InstanceStart */
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 1}");
	expect_ok(f, 204);
	put_boot_source(f);
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "machine-config.mem_size_mib: 1 MiB is too small for isola to boot a "
			"guest; set at least 2");
	assert_int_equal(f->vmm.starts, 0);
	call(f, "GET", "/", NULL);
	assert_non_null(strstr(f->resp.body, "Not started"));
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 64}");
	expect_ok(f, 204);
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 1099511627776}");
	expect_fault(f, "more than this host's");
	/* smt: accepted and echoed; with it the count is 1 or even */
	call(f, "PATCH", "/machine-config", "{\"smt\": true, \"vcpu_count\": 3}");
	expect_fault(f, "machine-config.vcpu_count: 3 is odd, and smt true needs 1 or an even");
	call(f, "PATCH", "/machine-config", "{\"smt\": true}");
	expect_ok(f, 204);
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 5}");
	expect_fault(f, "5 is odd");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 1}");
	expect_ok(f, 204);
	call(f, "PATCH", "/machine-config", "{\"smt\": \"no\"}");
	expect_fault(f, "machine-config.smt: must be true or false");
	call(f, "PATCH", "/machine-config", "{\"track_dirty_pages\": true}");
	expect_ok(f, 204);
	call(f, "GET", "/machine-config", NULL);
	assert_non_null(strstr(f->resp.body, "\"smt\":true"));
	assert_non_null(strstr(f->resp.body, "\"track_dirty_pages\":true"));
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"smt\":true"));
	assert_non_null(strstr(f->resp.body, "\"track_dirty_pages\":true"));
	/* PUT sets what it does not name back to the defaults (swagger) */
	call(f, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 64}");
	expect_ok(f, 204);
	call(f, "GET", "/machine-config", NULL);
	assert_non_null(strstr(f->resp.body, "\"smt\":false"));
	assert_non_null(strstr(f->resp.body, "\"track_dirty_pages\":false"));
	call(f, "PATCH", "/machine-config", "{\"huge_pages\": \"Transparent\"}");
	expect_ok(f, 204);
	call(f, "GET", "/machine-config", NULL);
	assert_non_null(strstr(f->resp.body, "\"huge_pages\":\"Transparent\""));
	call(f, "PATCH", "/machine-config", "{\"huge_pages\": \"1G\"}");
	expect_fault(f, "machine-config.huge_pages: \"1G\" is not supported; use \"None\", "
			"\"Transparent\" or \"2M\"");
	call(f, "PATCH", "/machine-config", "{\"huge_pages\": 5}");
	expect_fault(f, "machine-config.huge_pages: must be a string");
	call(f, "PATCH", "/machine-config", "{\"huge_pages\": \"2m\"}");
	expect_fault(f, "machine-config.huge_pages: \"2m\" is not supported");
	/* hugetlbfs pages are 2 MiB: an odd size is refused with them, in
	 * either order, and an error changes nothing */
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 63, \"huge_pages\": \"2M\"}");
	expect_fault(f, "machine-config.mem_size_mib: 63 is not a multiple of 2, which huge_pages "
			"\"2M\" needs; use 64");
	call(f, "PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}");
	expect_ok(f, 204);
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 65}");
	expect_fault(f, "not a multiple of 2");
	call(f, "GET", "/machine-config", NULL);
	assert_non_null(strstr(f->resp.body, "\"huge_pages\":\"2M\""));
	assert_non_null(strstr(f->resp.body, "\"mem_size_mib\":64"));
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"huge_pages\":\"2M\""));
	call(f, "PUT", "/machine-config",
	     "{\"vcpu_count\": 4, \"mem_size_mib\": 64, \"huge_pages\": \"None\"}");
	expect_ok(f, 204);
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"huge_pages\":\"None\""));
	call(f, "PATCH", "/machine-config", "{\"cpu_template\": \"T2\"}");
	expect_fault(f, "machine-config.cpu_template");
	call(f, "PATCH", "/machine-config", "{\"vcpus\": 2}");
	expect_fault(f, "machine-config.vcpus: unknown field");
	/* an error leaves the whole update out (mem_size_mib was valid) */
	call(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 128, \"vcpu_count\": 0}");
	call(f, "GET", "/machine-config", NULL);
	assert_non_null(strstr(f->resp.body, "\"mem_size_mib\":64"));
}

/* ---- /drives/{drive_id} ---- */

static void test_drives(void **state)
{
	struct fixture *f = *state;
	int sock;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	call(f, "PUT", "/drives/rootfs",
	     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	     "\"is_read_only\": true, \"cache_type\": \"Unsafe\", \"io_engine\": \"Sync\", "
	     "\"partuuid\": \"0eaa91a0-01\"}",
	     f->disk);
	expect_ok(f, 204);
	call(f, "PUT", "/drives/a_very_long_drive_name_of_40_characters",
	     "{\"drive_id\": \"a_very_long_drive_name_of_40_characters\", \"path_on_host\": "
	     "\"%s\", \"is_root_device\": false}",
	     f->disk2);
	expect_ok(f, 204);
	/* replacing by id keeps the count */
	call(f, "PUT", "/drives/rootfs",
	     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	     "\"is_read_only\": false, \"partuuid\": \"0eaa91a0-01\"}",
	     f->disk);
	expect_ok(f, 204);

	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"other\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk2);
	expect_fault(f, "differs from the id in the path");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": true}",
	     f->disk2);
	expect_fault(f, "drives/data.is_root_device: drive \"rootfs\" is the root device already");
	call(f, "PUT", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "drives/data.is_root_device: missing (required)");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s/x.img\", \"is_root_device\": false}",
	     f->dir);
	expect_fault(f, "drives/data.path_on_host: no such file");
	call(f, "PUT", "/drives/data", "{\"drive_id\": \"data\", \"is_root_device\": false}");
	expect_fault(f, "either path_on_host");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"socket\": \"/x\", "
	     "\"is_root_device\": false}",
	     f->disk2);
	expect_fault(f, "not both");
	call(f, "PUT", "/drives/a_very_long_drive_name_of_40_characters",
	     "{\"drive_id\": \"a_very_long_drive_name_of_40_characters\", \"path_on_host\": "
	     "\"%s\", \"is_root_device\": false, "
	     "\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}",
	     f->disk2);
	expect_ok(f, 204);
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body, "\"rate_limiter\":{\"ops\":{\"size\":1,"
					     "\"refill_time\":1}}"));
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	     "\"rate_limiter\": {\"bandwidth\": {\"size\": -1, \"refill_time\": 1}}}",
	     f->disk2);
	expect_fault(f, "drives/data.rate_limiter.bandwidth.size: -1 is negative");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"socket\": \"%s\", \"is_root_device\": false, "
	     "\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}",
	     f->sock);
	expect_fault(f, "drives/data.rate_limiter: applies to path_on_host drives only");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	     "\"cache_type\": \"Fast\"}",
	     f->disk2);
	expect_fault(f, "drives/data.cache_type: must be \"Unsafe\" or \"Writeback\"");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	     "\"io_engine\": 1}",
	     f->disk2);
	expect_fault(f, "drives/data.io_engine: must be a string");
	call(f, "PUT", "/drives/bad!id",
	     "{\"drive_id\": \"bad!id\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk2);
	expect_fault(f, "is not an id");
	/* Firecracker's checked_id: alphanumerics and '_' only */
	call(f, "PUT", "/drives/root-fs",
	     "{\"drive_id\": \"root-fs\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk2);
	expect_fault(f, "drives/root-fs.drive_id: \"root-fs\" is not an id; use 1 to 64 letters, "
			"digits or '_'");
	call(f, "PUT", "/network-interfaces/eth-0",
	     "{\"iface_id\": \"eth-0\", \"host_dev_name\": \"tap0\"}");
	expect_fault(f, "network-interfaces/eth-0.iface_id: \"eth-0\" is not an id");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	     "\"is_read_only\": \"yes\"}",
	     f->disk2);
	expect_fault(f, "drives/data.is_read_only: must be true or false");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path\": \"%s\", \"is_root_device\": false}", f->disk2);
	expect_fault(f, "drives/data.path: unknown field");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"socket\": \"%s/no.sock\", \"is_root_device\": false}",
	     f->dir);
	expect_fault(f, "no such socket");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"socket\": \"%s\", \"is_root_device\": false}", f->disk2);
	expect_fault(f, "is not a Unix socket");

	/* an external vhost-user back-end: a listening socket */
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/blk.sock", f->dir);
	assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), 0);
	call(f, "PUT", "/drives/ext",
	     "{\"drive_id\": \"ext\", \"socket\": \"%s\", \"is_root_device\": false, "
	     "\"is_read_only\": true}",
	     addr.sun_path);
	expect_fault(f, "drives/ext.is_read_only: applies to path_on_host drives only");
	call(f, "PUT", "/drives/ext",
	     "{\"drive_id\": \"ext\", \"socket\": \"%s\", \"is_root_device\": false}",
	     addr.sun_path);
	expect_ok(f, 204);
	close(sock);

	/* PATCH is for a started VM */
	call(f, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "needs a running VM; the VM is Not started");

	start(f);
	/* the root drive goes first, root= on the command line */
	assert_int_equal(f->vmm.booted.nr_disks, 3);
	assert_string_equal(f->vmm.booted.disks[0].drive_id, "rootfs");
	assert_string_equal(f->vmm.booted.disks[0].id, "rootfs");
	assert_string_equal(f->vmm.booted.disks[1].id, "a_very_long_drive_na"); /* 20 bytes */
	assert_string_equal(f->vmm.booted.disks[1].rate, "ops=1:1");
	assert_string_equal(f->vmm.booted.disks[0].rate, "");
	assert_string_equal(f->vmm.booted.disks[2].socket, addr.sun_path);
	assert_string_equal(f->vmm.booted.cmdline, "console=ttyS0 root=PARTUUID=0eaa91a0-01 rw");

	call(f, "PUT", "/drives/rootfs",
	     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true}",
	     f->disk);
	expect_fault(f, "only valid before InstanceStart; the VM is Running");
	call(f, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "drive \"nope\" does not exist");
	call(f, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}");
	expect_ok(f, 204);
	call(f, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_read_only\": true}");
	expect_fault(f, "drives/rootfs.is_read_only: unknown field");
	call(f, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "cannot change a started VM's drive image yet");
	call(f, "PATCH", "/drives/ext", "{\"drive_id\": \"ext\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "external vhost-user back-end");
}

/* As many drives as PCI bus 0 has slots for (31: 32 less the host
 * bridge), less the slots other devices take; Kata Containers sets 9. */
static void put_drive(struct fixture *f, int i)
{
	char path[32];

	snprintf(path, sizeof(path), "/drives/d%d", i);
	call(f, "PUT", path,
	     "{\"drive_id\": \"d%d\", \"path_on_host\": \"%s\", \"is_root_device\": false}", i,
	     f->disk2);
}

static void test_too_many_drives(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < CONFIG_MAX_PCI_DEVICES; i++) {
		put_drive(f, i);
		expect_ok(f, 204);
	}
	put_drive(f, CONFIG_MAX_PCI_DEVICES);
	expect_fault(f, "no PCI slot is left: the bus holds 31 devices");
	/* replacing one is not adding one */
	put_drive(f, 3);
	expect_ok(f, 204);
	/* a device of another kind added after the drives: InstanceStart says so */
	call(f, "PUT", "/entropy", "{}");
	expect_ok(f, 204);
	put_boot_source(f);
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "are 32 devices; the PCI bus holds 31");
	expect_fault(f, "remove 1");
}

static void test_drives_share_the_bus(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/entropy", "{}");
	expect_ok(f, 204);
	for (int i = 0; i < CONFIG_MAX_PCI_DEVICES - 1; i++) {
		put_drive(f, i);
		expect_ok(f, 204);
	}
	put_drive(f, CONFIG_MAX_PCI_DEVICES - 1);
	expect_fault(f, "30 drives, 0 network interfaces and the entropy device take them");
	/* a first vsock device needs a slot too: refused at its PUT */
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s/v.sock\"}", f->dir);
	expect_fault(f, "vsock: no PCI slot is left: the bus holds 31 devices (32 slots, one the "
			"host bridge) and 30 drives, 0 network interfaces and the entropy device "
			"take them");
}

/* PUT /entropy is not refused for the bus (Firecracker's entropy device
 * is a singleton): InstanceStart counts every device. */
static void test_instance_start_counts_the_bus(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < CONFIG_MAX_PCI_DEVICES - 1; i++) {
		put_drive(f, i);
		expect_ok(f, 204);
	}
	call(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"%s/v.sock\"}", f->dir);
	expect_ok(f, 204);
	/* replacing the vsock takes no new slot */
	call(f, "PUT", "/vsock", "{\"guest_cid\": 4, \"uds_path\": \"%s/v.sock\"}", f->dir);
	expect_ok(f, 204);
	call(f, "PUT", "/entropy", "{}");
	expect_ok(f, 204);
	put_boot_source(f);
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "30 drives, 0 network interfaces, the entropy device and the vsock device "
			"are 32 devices; the PCI bus holds 31");
}

/* ---- /entropy, /serial ---- */

static void test_entropy_serial(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/entropy",
	     "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": -100}}}");
	expect_fault(f, "entropy.rate_limiter.bandwidth.refill_time: -100 is negative");
	call(f, "PUT", "/entropy", "{\"rng\": 1}");
	expect_fault(f, "entropy.rng: unknown field");
	call(f, "PUT", "/entropy", "{}");
	expect_ok(f, 204);
	call(f, "PUT", "/serial", "{\"serial_out_path\": \"%s/console.log\"}", f->dir);
	expect_ok(f, 204);
	call(f, "PUT", "/serial", "{\"serial_out_path\": 3}");
	expect_fault(f, "serial.serial_out_path: must be a string");
	start(f);
	assert_true(f->vmm.booted.rng);
	assert_int_equal(f->vmm.booted.console, CONSOLE_FILE);
	call(f, "PUT", "/entropy", "{}");
	expect_fault(f, "the VM is Running");
}

/* ---- rate limiters: drives, entropy, serial; PATCH /entropy, /serial ---- */

static struct {
	int entropy_calls, serial_calls, fail;
	char entropy[CONFIG_RATE_SPEC_SIZE], serial[CONFIG_RATE_SPEC_SIZE];
} fake_rate;

static int fake_update_entropy(void *vmm, const char *rate, char *err, size_t errlen)
{
	(void)vmm;
	if (fake_rate.fail) {
		snprintf(err, errlen, "isola-rng did not come up");
		return -EIO;
	}
	fake_rate.entropy_calls++;
	snprintf(fake_rate.entropy, sizeof(fake_rate.entropy), "%s", rate);
	return 0;
}

static int fake_update_serial(void *vmm, const char *rate, char *err, size_t errlen)
{
	(void)vmm;
	(void)err;
	(void)errlen;
	fake_rate.serial_calls++;
	snprintf(fake_rate.serial, sizeof(fake_rate.serial), "%s", rate);
	return 0;
}

static void test_rate_limiters(void **state)
{
	struct fixture *f = *state;
	struct api_vmm_ops ops = fake_ops;
	char err[256];
	struct vm_config cfg;

	api_destroy(f->api);
	ops.update_entropy = fake_update_entropy;
	ops.update_serial = fake_update_serial;
	memset(&fake_rate, 0, sizeof(fake_rate));
	assert_int_equal(api_create(&f->api, NULL, &ops, &f->vmm, 0, err, sizeof(err)), 0);

	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", f->kernel);
	expect_ok(f, 204);
	call(f, "PUT", "/drives/root",
	     "{\"drive_id\": \"root\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	     "\"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"one_time_burst\": 4096, "
	     "\"refill_time\": 100}, \"ops\": {\"size\": 0, \"refill_time\": 0}}}",
	     f->disk);
	expect_ok(f, 204);
	call(f, "PUT", "/entropy",
	     "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}}}");
	expect_ok(f, 204);
	/* SerialDevice.rate_limiter is one TokenBucket, not a RateLimiter */
	call(f, "PUT", "/serial", "{\"rate_limiter\": {\"bandwidth\": {}}}");
	expect_fault(f, "serial.rate_limiter.bandwidth: unknown field");
	call(f, "PUT", "/serial", "{\"rate_limiter\": {\"size\": 100}}");
	expect_fault(f, "serial.rate_limiter.refill_time: missing (required)");
	call(f, "PUT", "/serial",
	     "{\"serial_out_path\": \"%s/console.log\", \"rate_limiter\": {\"size\": 100, "
	     "\"refill_time\": 1000}}",
	     f->dir);
	expect_ok(f, 204);
	call(f, "PATCH", "/entropy", "{\"rate_limiter\": {}}");
	expect_fault(f, "PATCH /entropy needs a running VM");
	call(f, "PATCH", "/serial", "{\"rate_limiter\": {\"size\": 1, \"refill_time\": 1}}");
	expect_fault(f, "PATCH /serial needs a running VM");

	/* GET /vm/config shows them, and reads back as --config-file */
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body, "\"rate_limiter\":{\"bandwidth\":{\"size\":1048576,"
					     "\"one_time_burst\":4096,\"refill_time\":100}}"));
	assert_non_null(strstr(f->resp.body, "\"entropy\":{\"rate_limiter\":{\"bandwidth\":{"
					     "\"size\":1000,\"refill_time\":100}}}"));
	assert_non_null(
	    strstr(f->resp.body, "\"rate_limiter\":{\"size\":100,\"refill_time\":1000}"));
	assert_int_equal(api_config_from_json(&cfg, f->resp.body, err, sizeof(err)), 0);
	assert_string_equal(cfg.disks[0].rate, "bytes=1048576:100:4096");
	assert_string_equal(cfg.rng_rate, "bytes=1000:100");
	assert_string_equal(cfg.serial_rate, "bytes=100:1000");
	api_config_release(&cfg);

	start(f);
	assert_string_equal(f->vmm.booted.disks[0].rate, "bytes=1048576:100:4096");
	assert_string_equal(f->vmm.booted.rng_rate, "bytes=1000:100");
	assert_string_equal(f->vmm.booted.serial_rate, "bytes=100:1000");

	/* PATCH /entropy: BucketUpdate, as PATCH /network-interfaces */
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"ops\": {\"size\": 10, "
	     "\"refill_time\": 1000}}}");
	expect_ok(f, 204);
	assert_int_equal(fake_rate.entropy_calls, 1);
	assert_string_equal(fake_rate.entropy, "bytes=1000:100,ops=10:1000");
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"ops\": {\"size\": 10, "
	     "\"refill_time\": 1000}}}");
	expect_ok(f, 204);
	assert_int_equal(fake_rate.entropy_calls, 1); /* nothing changed: no restart */
	call(f, "PATCH", "/entropy", "{}");
	expect_ok(f, 204);
	assert_int_equal(fake_rate.entropy_calls, 1);
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"bandwidth\": {\"size\": 0, "
	     "\"refill_time\": 0}}}");
	expect_ok(f, 204);
	assert_string_equal(fake_rate.entropy, "ops=10:1000");
	call(f, "PATCH", "/entropy", "{\"rate\": 1}");
	expect_fault(f, "entropy.rate: unknown field");
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"ops\": {\"size\": -1, "
	     "\"refill_time\": 1}}}");
	expect_fault(f, "entropy.rate_limiter.ops.size: -1 is negative");
	fake_rate.fail = 1;
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"ops\": {\"size\": 11, "
	     "\"refill_time\": 1000}}}");
	expect_fault(f, "entropy: isola-rng did not come up");
	fake_rate.fail = 0;

	/* PATCH /serial: the bucket is replaced; size 0 is none */
	call(f, "PATCH", "/serial", "{\"rate_limiter\": {\"size\": 50, \"refill_time\": 10}}");
	expect_ok(f, 204);
	assert_string_equal(fake_rate.serial, "bytes=50:10");
	call(f, "PATCH", "/serial", "{\"serial_out_path\": \"/tmp/x\"}");
	expect_fault(f, "serial.serial_out_path: unknown field");
	call(f, "PATCH", "/serial", "{\"rate_limiter\": {\"size\": 0, \"refill_time\": 0}}");
	expect_ok(f, 204);
	assert_int_equal(fake_rate.serial_calls, 2);
	assert_string_equal(fake_rate.serial, "");

	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body, "\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":10,"
					     "\"refill_time\":1000}}}"));
	assert_null(strstr(f->resp.body, "\"size\":50"));
}

/* Without the VMM's ops, PATCH /entropy and /serial say so. */
static void test_rate_limiters_no_op(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", f->kernel);
	call(f, "PUT", "/entropy", "{}");
	expect_ok(f, 204);
	start(f);
	call(f, "PATCH", "/entropy",
	     "{\"rate_limiter\": {\"ops\": {\"size\": 1, "
	     "\"refill_time\": 1}}}");
	expect_fault(f, "cannot change a started VM's entropy limiter");
	call(f, "PATCH", "/serial", "{\"rate_limiter\": {\"size\": 1, \"refill_time\": 1}}");
	expect_fault(f, "cannot change a started VM's serial limiter");
}

/* ---- /actions and PATCH /vm: the lifecycle and its wrong states ---- */

static void test_actions(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "no boot source");
	assert_int_equal(f->vmm.starts, 0);
	call(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	expect_fault(f, "needs a running VM; the VM is Not started");
	call(f, "PUT", "/actions", "{\"action_type\": \"Reboot\"}");
	expect_fault(f, "action_type: \"Reboot\" is not an action");
	call(f, "PUT", "/actions", "{}");
	expect_fault(f, "action_type: missing (required)");
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"now\": true}");
	expect_fault(f, "now: unknown field");
	call(f, "PUT", "/actions", "{\"action_type\": [\"InstanceStart\"]}");
	expect_fault(f, "action_type: must be a string");

	put_boot_source(f);
	f->vmm.fail_start = 1;
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "KVM_CREATE_VM: no");
	call(f, "GET", "/", NULL);
	assert_non_null(strstr(f->resp.body, "Not started"));
	f->vmm.fail_start = 0;
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.starts, 1);
	assert_string_equal(f->vmm.booted.kernel_path, f->kernel);
	assert_string_equal(f->vmm.booted.cmdline, "console=ttyS0"); /* no root drive */
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "InstanceStart: the VM is Running already");
	assert_int_equal(f->vmm.starts, 1);
	call(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.ctrl_alt_dels, 1);
	call(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	expect_fault(f, "metrics are not configured; PUT /metrics");
	call(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", f->kernel);
	expect_fault(f, "PUT /boot-source is only valid before InstanceStart; the VM is Running");
	call(f, "PATCH", "/machine-config", "{\"vcpu_count\": 2}");
	expect_fault(f, "the VM is Running");

	f->vmm.state = API_STATE_STOPPED;
	call(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	expect_fault(f, "the VM is Stopped");
}

static void test_pause_resume(void **state)
{
	struct fixture *f = *state;

	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_fault(f, "PATCH /vm needs a running VM; the VM is Not started");
	start(f);
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.pauses, 1);
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}"); /* already: nothing to do */
	expect_ok(f, 204);
	assert_int_equal(f->vmm.pauses, 1);
	call(f, "GET", "/", NULL);
	assert_non_null(strstr(f->resp.body, "\"Paused\""));
	call(f, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.resumes, 1);
	call(f, "PATCH", "/vm", "{\"state\": \"Running\"}");
	expect_fault(f, "state: \"Running\" is not a state to ask for; use Paused or Resumed");
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\", \"x\": 1}");
	expect_fault(f, "x: unknown field");
	call(f, "PATCH", "/vm", "{}");
	expect_fault(f, "state: missing (required)");
	call(f, "PATCH", "/vm", "\"Paused\"");
	expect_fault(f, "must be a JSON object");
}

/* ---- PUT /snapshot/create and /snapshot/load ---- */

static void test_snapshot_create(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}");
	expect_fault(f, "only valid while the VM is Paused; the VM is Not started");
	start(f);
	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}");
	expect_fault(f, "the VM is Running (PATCH /vm {\"state\": \"Paused\"} first)");
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	call(f, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/s\"}");
	expect_fault(f, "mem_file_path: missing (required)");
	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"snapshot_type\": \"Diff\"}");
	expect_fault(f, "snapshot_type \"Diff\" needs dirty page tracking, and this VM does not "
			"track dirty pages: set machine-config \"track_dirty_pages\": true");
	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"snapshot_type\": \"Half\"}");
	expect_fault(f, "\"Half\" is not a snapshot type");
	call(f, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/s\", \"mem_file_path\": 3}");
	expect_fault(f, "mem_file_path: must be a string");
	assert_int_equal(f->vmm.snapshots, 0);
	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"snapshot_type\": \"Full\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.snapshots, 1);
	assert_string_equal(f->vmm.snapshot_state, "/s");
	assert_string_equal(f->vmm.snapshot_mem, "/m");
	assert_false(f->vmm.snapshot_diff);
	call(f, "GET", "/snapshot/create", NULL);
	expect_fault(f, "Invalid request method and/or path");
}

/* Diff with track_dirty_pages (Firecracker's snapshot-support.md). */
static void test_snapshot_create_diff(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/machine-config",
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"track_dirty_pages\": true}");
	expect_ok(f, 204);
	start(f);
	assert_true(f->vmm.booted.track_dirty_pages);
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	call(f, "PUT", "/snapshot/create",
	     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"snapshot_type\": \"Diff\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.snapshots, 1);
	assert_true(f->vmm.snapshot_diff);
}

static void test_snapshot_load(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"%s\"}", f->disk);
	expect_fault(f, "mem_backend: missing");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
	     "\"backend_path\": \"%s\"}}",
	     f->disk, f->disk2);
	expect_fault(f, "does not serve memory over userfaultfd");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"mem_backend\": "
	     "{\"backend_type\": \"File\", \"backend_path\": \"%s\"}}",
	     f->disk, f->disk2, f->disk2);
	expect_fault(f, "not both");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s/none\", \"mem_file_path\": \"%s\"}", f->dir, f->disk2);
	expect_fault(f, "snapshot_path");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s/none\", \"mem_file_path\": \"%s\", "
	     "\"enable_diff_snapshots\": true}",
	     f->dir, f->disk2);
	expect_fault(f, "snapshot_path");
	assert_true(f->resp.deprecated);
	assert_int_equal(f->vmm.starts, 0);
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
	     "\"backend_path\": \"%s\"}, \"resume_vm\": true, \"track_dirty_pages\": true}",
	     f->disk, f->disk2);
	expect_ok(f, 204);
	assert_int_equal(f->vmm.starts, 1);
	assert_true(f->vmm.booted.track_dirty_pages);
	assert_string_equal(f->vmm.booted.restore_state_path, f->disk);
	assert_string_equal(f->vmm.booted.restore_mem_path, f->disk2);
	assert_true(f->vmm.booted.restore_resume);
	call(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
	     f->disk, f->disk2);
	expect_fault(f, "only valid before InstanceStart");
}

/* PUT /snapshot/load's overrides (docs/snapshot.md "Clones"): swagger's
 * network_overrides and vsock_override, isola's drive_overrides, into the
 * restore's configuration; hostile shapes are 400s that name the field. */
static void test_snapshot_load_overrides(void **state)
{
	struct fixture *f = *state;
	const struct config_override *o;

	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"network_overrides\": {\"iface_id\": \"net0\"}}",
	     f->disk, f->disk2);
	expect_fault(f, "network_overrides: must be an array of {iface_id, host_dev_name}");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"network_overrides\": [{\"iface_id\": \"net0\"}]}",
	     f->disk, f->disk2);
	expect_fault(f, "network_overrides[0].host_dev_name: missing");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"network_overrides\": [{\"iface_id\": \"net0\", \"host_dev_name\": "
	     "\"a-tap-name-longer-than-ifnamsiz\"}]}",
	     f->disk, f->disk2);
	expect_fault(f, "network_overrides[0]: the new tap's name must be 1 to 15 bytes");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"drive_overrides\": [{\"drive_id\": \"root\", \"path_on_host\": "
	     "\"%s/none\"}]}",
	     f->disk, f->disk2, f->dir);
	expect_fault(f, "drive_overrides[0].path_on_host");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"drive_overrides\": [{\"drive_id\": \"root\", \"path_on_host\": \"%s\", "
	     "\"is_read_only\": true}]}",
	     f->disk, f->disk2, f->disk);
	expect_fault(f, "drive_overrides[0].is_read_only: unknown field");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"drive_overrides\": [{\"drive_id\": \"root\", \"path_on_host\": \"%s\"}, "
	     "{\"drive_id\": \"root\", \"path_on_host\": \"%s\"}]}",
	     f->disk, f->disk2, f->disk, f->disk2);
	expect_fault(f, "drive_overrides[1]: \"root\" is overridden twice");
	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
	     "\"vsock_override\": {\"uds_path\": \"%s/no-such-dir/v.sock\"}}",
	     f->disk, f->disk2, f->dir);
	expect_fault(f, "vsock_override.uds_path");
	assert_int_equal(f->vmm.starts, 0);

	call(f, "PUT", "/snapshot/load",
	     "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
	     "\"backend_path\": \"%s\"}, \"resume_vm\": true, "
	     "\"network_overrides\": [{\"iface_id\": \"net0\", \"host_dev_name\": \"tap-c1\"}], "
	     "\"drive_overrides\": [{\"drive_id\": \"root\", \"path_on_host\": \"%s\"}], "
	     "\"vsock_override\": {\"uds_path\": \"%s/c1.sock\"}}",
	     f->disk, f->disk2, f->disk2, f->dir);
	expect_ok(f, 204);
	assert_int_equal(f->vmm.starts, 1);
	assert_int_equal(f->vmm.booted.nr_overrides, 3);
	o = f->vmm.booted.overrides;
	assert_int_equal(o[0].kind, CONFIG_OVERRIDE_NET);
	assert_string_equal(o[0].id, "net0");
	assert_string_equal(o[0].value, "tap-c1");
	assert_int_equal(o[1].kind, CONFIG_OVERRIDE_DRIVE);
	assert_string_equal(o[1].id, "root");
	assert_string_equal(o[1].value, f->disk2);
	assert_int_equal(o[2].kind, CONFIG_OVERRIDE_VSOCK);
	assert_non_null(strstr(o[2].value, "/c1.sock"));
}

/* A configured process is not fresh: Firecracker refuses the load. */
static void test_snapshot_load_after_config(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	expect_ok(f, 204);
	call(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
	     f->disk, f->disk2);
	expect_fault(f, "only valid on a fresh isola");
	assert_int_equal(f->vmm.starts, 0);
}

/* ---- ops the VMM does not provide ---- */

static void test_missing_ops(void **state)
{
	struct fixture *f = *state;
	struct api *api;
	char err[256];

	assert_int_equal(api_create(&api, NULL, NULL, NULL, 0, err, sizeof(err)), 0);
	api_destroy(f->api);
	f->api = api;
	put_boot_source(f);
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "InstanceStart is not available");
}

/* ---- PATCH /drives after start (the VMM's update_drive) ---- */

struct fake_drive_update {
	int calls, fail;
	unsigned index;
	struct disk_config disk;
	bool reopen;
};
static struct fake_drive_update fake_drive;

static int fake_update_drive(void *vmm, unsigned index, const struct disk_config *disk, bool reopen,
			     char *err, size_t errlen)
{
	(void)vmm;
	fake_drive.reopen = reopen;
	if (fake_drive.fail == 2) {
		snprintf(err, errlen,
			 "the drive is on %s from now on, but its new isola-blk failed",
			 disk->path);
		return -EINPROGRESS;
	}
	if (fake_drive.fail) {
		snprintf(err, errlen, "the new isola-blk did not start (bad image)");
		return -EIO;
	}
	fake_drive.calls++;
	fake_drive.index = index;
	fake_drive.disk = *disk;
	return 0;
}

static void test_patch_drive_after_start(void **state)
{
	struct fixture *f = *state;
	struct api_vmm_ops ops = fake_ops;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char err[256], path[160];
	int sock;

	api_destroy(f->api);
	ops.update_drive = fake_update_drive;
	memset(&fake_drive, 0, sizeof(fake_drive));
	assert_int_equal(api_create(&f->api, NULL, &ops, &f->vmm, 0, err, sizeof(err)), 0);
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk);
	expect_ok(f, 204);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/blk.sock", f->dir);
	assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), 0);
	call(f, "PUT", "/drives/ext",
	     "{\"drive_id\": \"ext\", \"socket\": \"%s\", \"is_root_device\": false}",
	     addr.sun_path);
	expect_ok(f, 204);
	close(sock);
	start(f);

	/* refused before the VMM hears of it, the drive untouched */
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s/no.img\"}", f->dir);
	expect_fault(f, "drives/data.path_on_host: no such file");
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->dir);
	expect_fault(f, "is a directory");
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"\"}");
	expect_fault(f, "must not be empty");
	call(f, "PATCH", "/drives/ext", "{\"drive_id\": \"ext\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "drives/ext.path_on_host: drive \"ext\" is served by an external");
	call(f, "PATCH", "/drives/ext",
	     "{\"drive_id\": \"ext\", \"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": "
	     "1}}}");
	expect_fault(f, "drives/ext.rate_limiter: drive \"ext\" is served by an external");
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": -1, \"refill_time\": "
	     "1}}}");
	expect_fault(f, "drives/data.rate_limiter.ops.size: -1 is negative");
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": {\"x\": {}}}");
	expect_fault(f, "drives/data.rate_limiter.x: unknown field");
	/* nothing to change: nothing asked of the VMM */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\"}");
	expect_ok(f, 204);
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"rate_limiter\": null}");
	expect_ok(f, 204);
	assert_int_equal(fake_drive.calls, 0);

	/* the VMM fails (the new server did not come up): 400, config kept */
	fake_drive.fail = 1;
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "drive \"data\": the new isola-blk did not start");
	call(f, "GET", "/vm/config", NULL);
	snprintf(path, sizeof(path), "\"path_on_host\":\"%s\"", f->disk);
	assert_non_null(strstr(f->resp.body, path));

	/* the new server failed after it had the rings: the drive rolled
	 * forward onto the new image, which the answer and the config say */
	fake_drive.fail = 2;
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "from now on");
	call(f, "GET", "/vm/config", NULL);
	snprintf(path, sizeof(path), "\"path_on_host\":\"%s\"", f->disk2);
	assert_non_null(strstr(f->resp.body, path));
	fake_drive.fail = 0;

	/* the new image: the whole disk as it was, with the new path */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_ok(f, 204);
	assert_int_equal(fake_drive.calls, 1);
	assert_int_equal(fake_drive.index, 0);
	assert_string_equal(fake_drive.disk.path, f->disk2);
	assert_string_equal(fake_drive.disk.drive_id, "data");
	assert_string_equal(fake_drive.disk.id, "data");
	assert_false(fake_drive.disk.readonly);
	assert_string_equal(fake_drive.disk.rate, "");
	assert_true(fake_drive.reopen); /* path_on_host given: the file is opened again */
	call(f, "GET", "/vm/config", NULL);
	snprintf(path, sizeof(path), "\"path_on_host\":\"%s\"", f->disk2);
	assert_non_null(strstr(f->resp.body, path));
	/* the same path again (Kata bind-mounts a new file over it): the VMM
	 * is asked to open it again, as Firecracker does */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_ok(f, 204);
	assert_int_equal(fake_drive.calls, 2);
	assert_true(fake_drive.reopen);

	/* a rate limiter alone goes the same way; buckets not given stay */
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1000, "
	     "\"refill_time\": 100}}}");
	expect_ok(f, 204);
	assert_int_equal(fake_drive.calls, 3);
	assert_false(fake_drive.reopen);
	assert_string_equal(fake_drive.disk.path, f->disk2);
	assert_string_equal(fake_drive.disk.rate, "bytes=1000:100");
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"rate_limiter\": {\"ops\": {\"size\": 10, "
	     "\"refill_time\": 1000}}}");
	expect_ok(f, 204);
	assert_string_equal(fake_drive.disk.rate, "bytes=1000:100,ops=10:1000");

	/* a paused VM is the VMM's to refuse (core/control.c); the API asks */
	call(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_ok(f, 204);
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}",
	     f->disk);
	expect_ok(f, 204);
}

/* ---- live upgrade: PATCH /drives server_upgrade, UpgradeServers ---- */

struct fake_upgrade {
	int calls, fail;
	const char *kind;
	unsigned index;
};
static struct fake_upgrade fake_upgrade;

static int fake_upgrade_servers(void *vmm, const char *kind, unsigned index, char *err,
				size_t errlen)
{
	(void)vmm;
	if (fake_upgrade.fail) {
		snprintf(err, errlen, "disk0: the new isola-blk did not start (bad binary)");
		return -EIO;
	}
	fake_upgrade.calls++;
	fake_upgrade.kind = kind;
	fake_upgrade.index = index;
	return 0;
}

static void test_server_upgrade(void **state)
{
	struct fixture *f = *state;
	struct api_vmm_ops ops = fake_ops;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char err[256];
	int sock;

	api_destroy(f->api);
	ops.update_drive = fake_update_drive;
	ops.upgrade_servers = fake_upgrade_servers;
	memset(&fake_upgrade, 0, sizeof(fake_upgrade));
	memset(&fake_drive, 0, sizeof(fake_drive));
	assert_int_equal(api_create(&f->api, NULL, &ops, &f->vmm, 0, err, sizeof(err)), 0);
	call(f, "PUT", "/drives/root",
	     "{\"drive_id\": \"root\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk);
	expect_ok(f, 204);
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
	     f->disk2);
	expect_ok(f, 204);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/blk.sock", f->dir);
	assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), 0);
	call(f, "PUT", "/drives/ext",
	     "{\"drive_id\": \"ext\", \"socket\": \"%s\", \"is_root_device\": false}",
	     addr.sun_path);
	expect_ok(f, 204);
	close(sock);

	/* not before InstanceStart: there is no server yet */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"server_upgrade\": true}");
	expect_fault(f, "");
	call(f, "PUT", "/actions", "{\"action_type\": \"UpgradeServers\"}");
	expect_fault(f, "");
	assert_int_equal(fake_upgrade.calls, 0);
	start(f);

	/* refused before the VMM hears of it */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"server_upgrade\": 1}");
	expect_fault(f, "drives/data.server_upgrade: must be true or false");
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"server_upgrade\": true, \"path_on_host\": \"%s\"}",
	     f->disk2);
	expect_fault(f, "drives/data.server_upgrade: send it alone");
	call(f, "PATCH", "/drives/data",
	     "{\"drive_id\": \"data\", \"server_upgrade\": true, \"rate_limiter\": {\"ops\": "
	     "{\"size\": 1, \"refill_time\": 1}}}");
	expect_fault(f, "send it alone");
	call(f, "PATCH", "/drives/ext", "{\"drive_id\": \"ext\", \"server_upgrade\": true}");
	expect_fault(f, "drives/ext.server_upgrade: drive \"ext\" is served by an external");
	call(f, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\", \"server_upgrade\": true}");
	expect_fault(f, "does not exist");
	/* false: nothing to do */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"server_upgrade\": false}");
	expect_ok(f, 204);
	assert_int_equal(fake_upgrade.calls, 0);
	assert_int_equal(fake_drive.calls, 0);

	/* the second drive's isola-blk: kind "blk", index 1 */
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"server_upgrade\": true}");
	expect_ok(f, 204);
	assert_int_equal(fake_upgrade.calls, 1);
	assert_string_equal(fake_upgrade.kind, "blk");
	assert_int_equal(fake_upgrade.index, 1);
	assert_int_equal(fake_drive.calls, 0); /* not a drive change */
	/* every server */
	call(f, "PUT", "/actions", "{\"action_type\": \"UpgradeServers\"}");
	expect_ok(f, 204);
	assert_int_equal(fake_upgrade.calls, 2);
	assert_null(fake_upgrade.kind);
	/* the VMM's failure, in the answer */
	fake_upgrade.fail = 1;
	call(f, "PATCH", "/drives/data", "{\"drive_id\": \"data\", \"server_upgrade\": true}");
	expect_fault(f, "drive \"data\": disk0: the new isola-blk did not start");
	call(f, "PUT", "/actions", "{\"action_type\": \"UpgradeServers\"}");
	expect_fault(f, "UpgradeServers: disk0: the new isola-blk did not start");
	call(f, "PUT", "/actions", "{\"action_type\": \"Upgrade\"}");
	expect_fault(f, "use InstanceStart, SendCtrlAltDel, FlushMetrics or UpgradeServers");
}

/* ---- PUT and PATCH /network-interfaces ---- */

struct fake_net_update {
	int calls, fail;
	unsigned index;
	struct net_config net;
};
static struct fake_net_update fake_net;

static int fake_update_net(void *vmm, unsigned index, const struct net_config *net, char *err,
			   size_t errlen)
{
	(void)vmm;
	if (fake_net.fail) {
		snprintf(err, errlen, "isola-net did not come up");
		return -EIO;
	}
	fake_net.calls++;
	fake_net.index = index;
	fake_net.net = *net;
	return 0;
}

#define NET_PUT(id, rest) "{\"iface_id\": \"" id "\", \"host_dev_name\": " rest "}"

static void test_network_interfaces(void **state)
{
	struct fixture *f = *state;
	struct api_vmm_ops ops = fake_ops;
	char err[256];

	/* a fixture whose VMM can apply PATCH */
	api_destroy(f->api);
	ops.update_net = fake_update_net;
	memset(&fake_net, 0, sizeof(fake_net));
	assert_int_equal(api_create(&f->api, NULL, &ops, &f->vmm, 0, err, sizeof(err)), 0);

	call(f, "PUT", "/network-interfaces/eth0", NET_PUT("eth0", "\"tap0\""));
	expect_ok(f, 204);
	/* Kata's unset limiters are {} */
	call(f, "PUT", "/network-interfaces/eth1",
	     NET_PUT("eth1", "\"tap1\", \"guest_mac\": \"06:00:00:00:00:01\", "
			     "\"rx_rate_limiter\": {}, \"tx_rate_limiter\": {\"bandwidth\": "
			     "{\"size\": 2000, \"refill_time\": 10}}"));
	expect_ok(f, 204);
	/* size or refill_time 0: no bucket, as Firecracker's TokenBucket::new */
	call(f, "PUT", "/network-interfaces/eth0",
	     NET_PUT("eth0", "\"tap2\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 100, "
			     "\"refill_time\": 0}, \"ops\": {\"size\": 0, \"refill_time\": 5}}"));
	expect_ok(f, 204);
	/* the same iface_id replaces: eth0 now on tap2 */
	call(f, "PUT", "/network-interfaces/eth0", NET_PUT("eth0", "\"tap2\""));
	expect_ok(f, 204);

	call(f, "PUT", "/network-interfaces/eth2", NET_PUT("eth3", "\"tap3\""));
	expect_fault(f, "network-interfaces/eth2.iface_id: \"eth3\" differs from the id in the "
			"path");
	call(f, "PUT", "/network-interfaces/eth2", NET_PUT("eth2", "\"tap1\""));
	expect_fault(f, "network-interfaces/eth2.host_dev_name: tap1 is used by interface "
			"\"eth1\" already");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"guest_mac\": \"06:00:00:00:00:01\""));
	expect_fault(f, "network-interfaces/eth2.guest_mac: interface \"eth1\" has this MAC");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"guest_mac\": \"06:00:00:00:00\""));
	expect_fault(f, "network-interfaces/eth2.guest_mac: \"06:00:00:00:00\" is not a MAC");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"guest_mac\": \"07:00:00:00:00:01\""));
	expect_fault(f, "is a multicast address");
	call(f, "PUT", "/network-interfaces/eth2", NET_PUT("eth2", "\"a-name-of-16-chars\""));
	expect_fault(f, "network-interfaces/eth2.host_dev_name: \"a-name-of-16-chars\" is not");
	call(f, "PUT", "/network-interfaces/eth2", NET_PUT("eth2", "\"-tap\""));
	expect_fault(f, "is not a network interface name");
	call(f, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\"}");
	expect_fault(f, "network-interfaces/eth2.host_dev_name: missing (required)");
	call(f, "PUT", "/network-interfaces/eth2", NET_PUT("eth2", "\"tap3\", \"mtu\": 9000"));
	expect_fault(f, "network-interfaces/eth2.mtu: unknown field");
	/* rate limiters: types, negatives, unknown fields, missing members */
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": "
			     "\"1M\", \"refill_time\": 100}}"));
	expect_fault(f, "network-interfaces/eth2.rx_rate_limiter.bandwidth.size: must be an "
			"integer");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"tx_rate_limiter\": {\"ops\": {\"size\": 5, "
			     "\"refill_time\": -1}}"));
	expect_fault(f, "network-interfaces/eth2.tx_rate_limiter.ops.refill_time: -1 is negative");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"tx_rate_limiter\": {\"ops\": {\"size\": 5, "
			     "\"refill_time\": 1, \"one_time_burst\": -5}}"));
	expect_fault(f, "tx_rate_limiter.ops.one_time_burst: -5 is negative");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"tx_rate_limiter\": {\"ops\": {\"size\": 5}}"));
	expect_fault(f, "tx_rate_limiter.ops.refill_time: missing (required)");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"tx_rate_limiter\": {\"ops\": {}}"));
	expect_fault(f, "tx_rate_limiter.ops.size: missing (required)");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"tx_rate_limiter\": {\"bytes\": {}}"));
	expect_fault(f, "tx_rate_limiter.bytes: unknown field; known fields are bandwidth, ops");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"rx_rate_limiter\": {\"ops\": {\"size\": 5, "
			     "\"refill_time\": 1, \"rate\": 2}}"));
	expect_fault(f, "rx_rate_limiter.ops.rate: unknown field");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"rx_rate_limiter\": [1]"));
	expect_fault(f, "rx_rate_limiter: must be a JSON object");
	call(f, "PUT", "/network-interfaces/eth2",
	     NET_PUT("eth2", "\"tap3\", \"rx_rate_limiter\": {\"ops\": {\"size\": 5, "
			     "\"refill_time\": 99999999999999999}}"));
	expect_fault(f, "network-interfaces/eth2.rx_rate_limiter: ");
	/* a refused PUT changed nothing */
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	assert_non_null(strstr(f->resp.body,
			       "\"network-interfaces\":[{\"iface_id\":\"eth0\","
			       "\"host_dev_name\":\"tap2\"},{\"iface_id\":\"eth1\","
			       "\"host_dev_name\":\"tap1\",\"guest_mac\":"
			       "\"06:00:00:00:00:01\",\"tx_rate_limiter\":{"
			       "\"bandwidth\":{\"size\":2000,\"refill_time\":10}}}]"));

	/* PATCH is for a started VM */
	call(f, "PATCH", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\"}");
	expect_fault(f, "needs a running VM; the VM is Not started");

	start(f);
	assert_int_equal(f->vmm.booted.nr_nets, 2);
	assert_string_equal(f->vmm.booted.nets[1].tx_rate, "bytes=2000:10");
	assert_true(f->vmm.booted.nets[0].mac_given); /* made at InstanceStart */

	call(f, "PUT", "/network-interfaces/eth0", NET_PUT("eth0", "\"tap0\""));
	expect_fault(f, "only valid before InstanceStart; the VM is Running");
	call(f, "PATCH", "/network-interfaces/eth9", "{\"iface_id\": \"eth9\"}");
	expect_fault(f, "network interface \"eth9\" does not exist");
	call(f, "PATCH", "/network-interfaces/eth1", "{\"iface_id\": \"eth0\"}");
	expect_fault(f, "network-interfaces/eth1.iface_id: \"eth0\" differs from the id");
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap9\"}");
	expect_fault(f, "network-interfaces/eth1.host_dev_name: unknown field");
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"rx_rate_limiter\": {\"ops\": {\"size\": -1, "
	     "\"refill_time\": 1}}}");
	expect_fault(f, "network-interfaces/eth1.rx_rate_limiter.ops.size: -1 is negative");
	/* nothing changes: no restart */
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"rx_rate_limiter\": {}, \"tx_rate_limiter\": {}}");
	expect_ok(f, 204);
	assert_int_equal(fake_net.calls, 0);
	/* a bucket given replaces its own; the other stays (BucketUpdate) */
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"tx_rate_limiter\": {\"ops\": {\"size\": 100, "
	     "\"refill_time\": 1000}}, \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 7, "
	     "\"refill_time\": 8, \"one_time_burst\": 9}}}");
	expect_ok(f, 204);
	assert_int_equal(fake_net.calls, 1);
	assert_int_equal(fake_net.index, 1);
	assert_string_equal(fake_net.net.tx_rate, "bytes=2000:10,ops=100:1000");
	assert_string_equal(fake_net.net.rx_rate, "bytes=7:8:9");
	/* size 0 switches a bucket off */
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 0, "
	     "\"refill_time\": 10}}, \"rx_rate_limiter\": {\"ops\": {\"size\": 3, "
	     "\"refill_time\": 4}}}");
	expect_ok(f, 204);
	assert_int_equal(fake_net.calls, 2);
	assert_string_equal(fake_net.net.tx_rate, "ops=100:1000");
	assert_string_equal(fake_net.net.rx_rate, "bytes=7:8:9,ops=3:4");
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"rx_rate_limiter\":{\"bandwidth\":{\"size\":7,"
					     "\"one_time_burst\":9,\"refill_time\":8},"
					     "\"ops\":{\"size\":3,\"refill_time\":4}},"
					     "\"tx_rate_limiter\":{\"ops\":{\"size\":100,"
					     "\"refill_time\":1000}}"));
	/* the VMM's refusal is the client's answer; the configuration stays */
	fake_net.fail = 1;
	call(f, "PATCH", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"tx_rate_limiter\": {\"ops\": {\"size\": 0, "
	     "\"refill_time\": 0}}}");
	expect_fault(f, "network interface \"eth1\": isola-net did not come up");
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"ops\":{\"size\":100,"));
}

static void test_network_interfaces_no_op(void **state)
{
	struct fixture *f = *state;

	call(f, "PUT", "/network-interfaces/eth0", NET_PUT("eth0", "\"tap0\""));
	expect_ok(f, 204);
	start(f);
	call(f, "PATCH", "/network-interfaces/eth0",
	     "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"ops\": {\"size\": 1, "
	     "\"refill_time\": 1}}}");
	expect_fault(f, "cannot change a started VM's rate limiters yet");
}

static void test_too_many_nets(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < CONFIG_MAX_NETS + 1; i++) {
		char path[64], body[128];

		snprintf(path, sizeof(path), "/network-interfaces/eth%d", i);
		snprintf(body, sizeof(body),
			 "{\"iface_id\": \"eth%d\", \"host_dev_name\": \"tap%d\"}", i, i);
		call(f, "PUT", path, "%s", body);
	}
	expect_fault(f, "too many network interfaces; isola supports 4");
}

/* ---- GET /vm/config, --config-file ---- */

static char *config_text(struct fixture *f)
{
	char *text;

	assert_true(
	    asprintf(
		&text,
		"{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
		"\"boot_args\": \"console=ttyS0 quiet\"},"
		" \"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 96, \"smt\": true, "
		"\"track_dirty_pages\": true, \"huge_pages\": \"2M\"},"
		" \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"%s\", "
		"\"is_root_device\": false, \"is_read_only\": true},"
		"              {\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
		"\"is_root_device\": true, \"cache_type\": \"Writeback\", \"io_engine\": "
		"\"Async\"}],"
		" \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
		"\"tap0\", \"guest_mac\": \"06:00:AC:10:00:02\", \"rx_rate_limiter\": "
		"{\"bandwidth\": {\"size\": 1000000, \"one_time_burst\": 5, \"refill_time\": "
		"100}, \"ops\": {\"size\": 10, \"refill_time\": 1000}}, \"tx_rate_limiter\": {}},"
		" {\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\"}],"
		" \"entropy\": {},"
		" \"vsock\": {\"guest_cid\": 7, \"uds_path\": \"%s/v.sock\", \"vsock_id\": "
		"\"root\"},"
		" \"logger\": {\"log_path\": \"%s/log\", \"level\": \"debug\", \"show_level\": "
		"true, \"show_log_origin\": false, \"module\": \"core/\"},"
		" \"metrics\": {\"metrics_path\": \"%s/metrics\"}}",
		f->kernel, f->initrd, f->disk2, f->disk, f->dir, f->dir, f->dir) > 0);
	return text;
}

static void assert_same_config(const struct vm_config *a, const struct vm_config *b)
{
	assert_string_equal(a->kernel_path, b->kernel_path);
	assert_string_equal(a->initrd_path, b->initrd_path);
	assert_string_equal(a->cmdline, b->cmdline);
	assert_int_equal(a->nr_cpus, b->nr_cpus);
	assert_int_equal(a->memory_bytes, b->memory_bytes);
	assert_int_equal(a->huge_pages, b->huge_pages);
	assert_int_equal(a->smt, b->smt);
	assert_int_equal(a->track_dirty_pages, b->track_dirty_pages);
	assert_int_equal(a->nr_disks, b->nr_disks);
	for (unsigned i = 0; i < a->nr_disks; i++) {
		assert_string_equal(a->disks[i].drive_id, b->disks[i].drive_id);
		assert_string_equal(a->disks[i].id, b->disks[i].id);
		assert_string_equal(a->disks[i].path, b->disks[i].path);
		assert_string_equal(a->disks[i].socket, b->disks[i].socket);
		assert_int_equal(a->disks[i].readonly, b->disks[i].readonly);
		assert_int_equal(a->disks[i].is_root_device, b->disks[i].is_root_device);
		assert_int_equal(a->disks[i].cache_writeback, b->disks[i].cache_writeback);
		assert_int_equal(a->disks[i].io_engine_async, b->disks[i].io_engine_async);
	}
	assert_int_equal(a->nr_nets, b->nr_nets);
	for (unsigned i = 0; i < a->nr_nets; i++) {
		assert_string_equal(a->nets[i].iface_id, b->nets[i].iface_id);
		assert_string_equal(a->nets[i].tap, b->nets[i].tap);
		assert_int_equal(a->nets[i].mac_given, b->nets[i].mac_given);
		assert_memory_equal(a->nets[i].mac, b->nets[i].mac, 6);
		assert_string_equal(a->nets[i].rx_rate, b->nets[i].rx_rate);
		assert_string_equal(a->nets[i].tx_rate, b->nets[i].tx_rate);
	}
	assert_int_equal(a->rng, b->rng);
	assert_int_equal(a->vsock.enabled, b->vsock.enabled);
	assert_int_equal(a->vsock.guest_cid, b->vsock.guest_cid);
	assert_string_equal(a->vsock.uds_path, b->vsock.uds_path);
	assert_int_equal(a->logger, b->logger);
	assert_string_equal(a->log_path, b->log_path);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_show_level, b->log_show_level);
	assert_string_equal(a->log_module, b->log_module);
	assert_string_equal(a->metrics_path, b->metrics_path);
}

static void test_config_round_trip(void **state)
{
	struct fixture *f = *state;
	struct vm_config first, second;
	char *text = config_text(f), *back, err[512];

	assert_int_equal(api_config_from_json(&first, text, err, sizeof(err)), 0);
	assert_int_equal(first.nr_cpus, 4);
	assert_true(first.smt);
	assert_true(first.track_dirty_pages);
	assert_int_equal(first.memory_bytes, 96ull << 20);
	assert_int_equal(first.huge_pages, CONFIG_HUGE_PAGES_2M);
	assert_int_equal(first.nr_disks, 2);
	assert_true(first.disks[0].readonly);
	assert_int_equal(first.nr_nets, 2);
	assert_string_equal(first.nets[0].rx_rate, "bytes=1000000:100:5,ops=10:1000");
	assert_string_equal(first.nets[0].tx_rate, ""); /* {}: no limit */
	assert_int_equal(first.nets[0].mac[2], 0xac);
	assert_false(first.nets[1].mac_given);
	assert_true(first.rng);
	assert_true(first.vsock.enabled);
	assert_int_equal(first.vsock.guest_cid, 7);
	assert_int_equal(first.log_level, LOG_LEVEL_DEBUG);
	back = api_config_to_json(&first);
	assert_non_null(back);
	assert_int_equal(api_config_from_json(&second, back, err, sizeof(err)), 0);
	assert_same_config(&first, &second);

	/* finalize: root first, root=/dev/vda rw appended; a MAC for eth1 */
	assert_int_equal(api_config_finalize(&second, err, sizeof(err)), 0);
	assert_true(second.nets[1].mac_given);
	assert_int_equal(second.nets[1].mac[0] & 3, 2); /* local, unicast */
	assert_string_equal(second.disks[0].drive_id, "rootfs");
	assert_string_equal(second.cmdline, "console=ttyS0 quiet root=/dev/vda rw");

	/* the same configuration through the API comes back the same */
	call(f, "PUT", "/boot-source",
	     "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", \"boot_args\": "
	     "\"console=ttyS0 quiet\"}",
	     f->kernel, f->initrd);
	call(f, "PUT", "/machine-config",
	     "{\"vcpu_count\": 4, \"mem_size_mib\": 96, \"huge_pages\": \"2M\", \"smt\": true, "
	     "\"track_dirty_pages\": true}");
	call(f, "PUT", "/drives/data",
	     "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	     "\"is_read_only\": true}",
	     f->disk2);
	call(f, "PUT", "/drives/rootfs",
	     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	     "\"cache_type\": \"Writeback\", \"io_engine\": \"Async\"}",
	     f->disk);
	call(f, "PUT", "/network-interfaces/eth0",
	     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
	     "\"06:00:ac:10:00:02\", \"rx_rate_limiter\": {\"ops\": {\"size\": 10, "
	     "\"refill_time\": 1000}, \"bandwidth\": {\"size\": 1000000, \"refill_time\": 100, "
	     "\"one_time_burst\": 5}}}");
	expect_ok(f, 204);
	call(f, "PUT", "/network-interfaces/eth1",
	     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"tx_rate_limiter\": "
	     "{\"ops\": {\"size\": 0, \"refill_time\": 1000}}}");
	expect_ok(f, 204);
	call(f, "PUT", "/entropy", "{}");
	call(f, "PUT", "/vsock", "{\"guest_cid\": 7, \"uds_path\": \"%s/v.sock\"}", f->dir);
	expect_ok(f, 204);
	call(f, "PUT", "/logger",
	     "{\"log_path\": \"%s/log\", \"level\": \"Debug\", \"show_level\": true, "
	     "\"module\": \"core/\"}",
	     f->dir);
	expect_ok(f, 204);
	call(f, "PUT", "/metrics", "{\"metrics_path\": \"%s/metrics\"}", f->dir);
	expect_ok(f, 204);
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	api_config_release(&second);
	assert_int_equal(api_config_from_json(&second, f->resp.body, err, sizeof(err)), 0);
	assert_same_config(&first, &second);
	log_set_sink(NULL, false, false);
	log_set_module(NULL);
	log_set_level(LOG_LEVEL_INFO);
	/* every top-level key of Firecracker's FullVmConfiguration, null or []
	 * when unset (here: the ones isola does not implement); vsock without
	 * the deprecated vsock_id, as Firecracker's VsockDeviceConfig */
	{
		static const char *const keys[] = {"balloon",	  "drives",
						   "boot-source", "cpu-config",
						   "logger",	  "machine-config",
						   "metrics",	  "memory-hotplug",
						   "mmds-config", "network-interfaces",
						   "pmem",	  "vsock",
						   "entropy"};
		json_object *doc = json_tokener_parse(f->resp.body), *v;

		assert_non_null(doc);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!json_object_object_get_ex(doc, keys[i], &v))
				fail_msg("GET /vm/config has no \"%s\"", keys[i]);
		assert_int_equal(json_object_object_length(doc), 13);
		assert_true(json_object_object_get_ex(doc, "pmem", &v));
		assert_true(json_object_is_type(v, json_type_array));
		assert_int_equal(json_object_array_length(v), 0);
		assert_true(json_object_object_get_ex(doc, "vsock", &v));
		assert_int_equal(json_object_object_length(v), 2);
		assert_true(json_object_object_get_ex(v, "guest_cid", &v));
		assert_int_equal(json_object_get_int(v), 7);
		json_object_put(doc);
	}

	api_config_release(&first);
	api_config_release(&second);
	free(text);
	free(back);
}

/* Each case: a config file and the start of its error. */
static void test_config_file_errors(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *json, *error;
	} cases[] = {
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [{\"drive_id\": "
	     "\"a\", \"path_on_host\": \"@D\", \"is_root_device\": true}, {\"drive_id\": \"b\", "
	     "\"path_on_host\": \"/nonexistent.img\", \"is_root_device\": false}]}",
	     "drives[1].path_on_host: no such file"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 300, \"mem_size_mib\": 64}}",
	     "machine-config.vcpu_count: must be between 1 and 32"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 33, \"mem_size_mib\": 64}}",
	     "machine-config.vcpu_count: must be between 1 and 32"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"pmem\": [{\"id\": \"p\", "
	     "\"path_on_host\": \"@D\"}]}",
	     "pmem: isola does not implement pmem (virtio-pmem) yet"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"pmem\": {}}",
	     "pmem: isola does not implement pmem"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [{\"drive_id\": "
	     "\"root-fs\", \"path_on_host\": \"@D\", \"is_root_device\": true}]}",
	     "drives[0].drive_id: \"root-fs\" is not an id"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"foo\": 1}}",
	     "machine-config.foo: unknown field"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": \"1\", \"mem_size_mib\": 64}}",
	     "machine-config.vcpu_count: must be an integer"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 1}}",
	     "machine-config.mem_size_mib: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": {}}",
	     "drives: must be an array"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [7]}",
	     "drives[0]: must be a JSON object"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [{\"drive_id\": "
	     "\"a\", \"path_on_host\": \"@D\", \"is_root_device\": false}, {\"drive_id\": \"a\", "
	     "\"path_on_host\": \"@D\", \"is_root_device\": false}]}",
	     "drives[1].drive_id: \"a\" is the id of drives[0] too"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [{\"drive_id\": "
	     "\"a\", \"path_on_host\": \"@D\", \"is_root_device\": true}, {\"drive_id\": \"b\", "
	     "\"path_on_host\": \"@D\", \"is_root_device\": true}]}",
	     "drives[1].is_root_device"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"network-interfaces\": "
	     "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}, {\"iface_id\": "
	     "\"eth0\", \"host_dev_name\": \"tap1\"}]}",
	     "network-interfaces[1].iface_id: \"eth0\" is the id of network-interfaces[0] too"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"network-interfaces\": "
	     "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"rx_rate_limiter\": "
	     "{\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}}]}",
	     "network-interfaces[0].rx_rate_limiter.bandwidth.size: -1 is negative"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"network-interfaces\": "
	     "{\"iface_id\": \"eth0\"}}",
	     "network-interfaces: must be an array"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"balloon\": {\"amount_mib\": 1, "
	     "\"deflate_on_oom\": true}}",
	     "balloon: isola does not implement the balloon device yet"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"vsock\": {}}",
	     "vsock.guest_cid: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"vsock\": {\"guest_cid\": "
	     "2, \"uds_path\": \"v.sock\"}}",
	     "vsock.guest_cid: 2 is reserved"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"vsock\": {\"guest_cid\": "
	     "3, \"uds_path\": \"/no/such/dir/v.sock\"}}",
	     "vsock.uds_path: directory /no/such/dir: No such file or directory"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"mmds-config\": {}}",
	     "mmds-config: isola does not implement"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"bogus\": {}}",
	     "bogus: unknown field"},
	    {"{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}",
	     "boot-source: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"/no/kernel\"}}",
	     "boot-source.kernel_image_path: no such file"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"logger\": {\"level\": "
	     "\"Loud\"}}",
	     "logger.level: \"Loud\" is not a level"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"logger\": {\"module\": 1}}",
	     "logger.module: must be a string"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 33, \"huge_pages\": \"2M\"}}",
	     "machine-config.mem_size_mib: 33 is not a multiple of 2"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"machine-config\": "
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\": \"1G\"}}",
	     "machine-config.huge_pages: \"1G\" is not supported"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"metrics\": {}}",
	     "metrics.metrics_path: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"entropy\": {\"rate_limiter\": "
	     "{\"ops\": {\"size\": 5}}}}",
	     "entropy.rate_limiter.ops.refill_time: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"serial\": {\"rate_limiter\": "
	     "{\"bandwidth\": {\"size\": 5, \"refill_time\": 5}}}}",
	     "serial.rate_limiter.bandwidth: unknown field"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"@K\"}, \"drives\": [{\"drive_id\": "
	     "\"a\", \"path_on_host\": \"@D\", \"is_root_device\": true, \"rate_limiter\": "
	     "{\"bandwidth\": {\"size\": 1, \"refill_time\": 18446744073709551}}}]}",
	     "drives[0].rate_limiter"},
	    {"{\"boot-source\": ", "malformed JSON"},
	    {"", "malformed JSON"},
	    {"[]", "the body: must be a JSON object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[2048], err[512] = "";
		struct vm_config cfg;
		const char *in = cases[i].json;
		size_t n = 0;

		/* @K: the kernel, @D: a disk image */
		for (; *in && n < sizeof(text) - 256; in++) {
			if (in[0] == '@' && (in[1] == 'K' || in[1] == 'D')) {
				n += (size_t)sprintf(text + n, "%s",
						     in[1] == 'K' ? f->kernel : f->disk);
				in++;
			} else {
				text[n++] = *in;
			}
		}
		text[n] = '\0';
		assert_int_equal(api_config_from_json(&cfg, text, err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i].error, strlen(cases[i].error)))
			fail_msg("case %zu: error '%s', want '%s...'", i, err, cases[i].error);
		api_config_release(&cfg);
	}
}

static void test_config_file(void **state)
{
	struct fixture *f = *state;
	char path[160], err[512], *text = config_text(f);
	struct vm_config cfg;
	FILE *file;

	snprintf(path, sizeof(path), "%s/vm.json", f->dir);
	file = fopen(path, "w");
	fputs(text, file);
	fclose(file);
	assert_int_equal(api_config_from_file(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_disks, 2);
	api_config_release(&cfg);
	snprintf(path, sizeof(path), "%s/missing.json", f->dir);
	assert_int_equal(api_config_from_file(&cfg, path, err, sizeof(err)), -ENOENT);
	/* The caller names the file; the message says what is wrong with it. */
	assert_non_null(strstr(err, "No such file or directory; check the path"));
	assert_int_equal(api_config_from_file(&cfg, f->dir, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "Is a directory"));
	api_config_release(&cfg);
	free(text);
}

/* A configuration from --config-file seeds the API. */
static void test_initial_config(void **state)
{
	struct fixture *f = *state;
	struct vm_config cfg;
	char err[512], *text;
	struct api *api;

	assert_true(asprintf(&text,
			     "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
			     "\"console=ttyS0 quiet\"}, \"drives\": "
			     "[{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
			     "\"is_root_device\": true, \"is_read_only\": true}], \"pmem\": [], "
			     "\"balloon\": null, \"vsock\": null, \"mmds-config\": null, "
			     "\"cpu-config\": null, \"memory-hotplug\": null, \"logger\": null, "
			     "\"metrics\": null, \"entropy\": null, \"network-interfaces\": []}",
			     f->kernel, f->disk) > 0);
	assert_int_equal(api_config_from_json(&cfg, text, err, sizeof(err)), 0);
	/* Firecracker's default memory, not `isola run`'s */
	assert_int_equal(cfg.memory_bytes, 128ull << 20);
	/* as isola --config-file does: finalized before the API gets it */
	assert_int_equal(api_config_finalize(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet root=/dev/vda ro");
	assert_int_equal(api_create(&api, &cfg, &fake_ops, &f->vmm, 0, err, sizeof(err)), 0);
	api_config_release(&cfg); /* the API has its own copy */
	api_destroy(f->api);
	f->api = api;
	/* GET /vm/config echoes boot_args as the file had them */
	call(f, "GET", "/vm/config", NULL);
	expect_ok(f, 200);
	if (!strstr(f->resp.body, "\"boot_args\":\"console=ttyS0 quiet\"}"))
		fail_msg("boot_args not echoed: %s", f->resp.body);
	assert_non_null(strstr(f->resp.body, "\"balloon\":null"));
	assert_non_null(strstr(f->resp.body, "\"logger\":null"));
	assert_non_null(strstr(f->resp.body, "\"entropy\":null"));
	/* and it is a valid config file again */
	assert_int_equal(api_config_from_json(&cfg, f->resp.body, err, sizeof(err)), 0);
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	api_config_release(&cfg);
	assert_int_equal(api_instance_start(api, err, sizeof(err)), 0);
	assert_string_equal(f->vmm.booted.cmdline, "console=ttyS0 quiet root=/dev/vda ro");
	assert_int_equal(api_instance_start(api, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "Running already"));
	free(text);
}

/* ---- /logger, /metrics, FlushMetrics ---- */

static void test_logger(void **state)
{
	struct fixture *f = *state;
	char path[160], buf[4096] = "";
	int fd;

	call(f, "PUT", "/logger", "{\"log_path\": \"%s/nodir/log\"}", f->dir);
	expect_fault(f, "logger.log_path");
	call(f, "PUT", "/logger", "{\"level\": 3}");
	expect_fault(f, "logger.level: must be a string");
	call(f, "PUT", "/logger",
	     "{\"log_path\": \"%s/log\", \"level\": \"Warning\", \"show_level\": true, "
	     "\"show_log_origin\": true}",
	     f->dir);
	expect_ok(f, 204);
	/* Firecracker: "once configured, you can not update it" */
	call(f, "PUT", "/logger", "{\"log_path\": \"%s/log2\"}", f->dir);
	expect_fault(f, "PUT /logger: the logger is configured already");
	log_info("not shown: below Warning");
	log_warn("shown: %d", 7);
	log_set_sink(NULL, false, false); /* flush by closing */
	snprintf(path, sizeof(path), "%s/log", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_null(strstr(buf, "not shown"));
	assert_non_null(strstr(buf, "[isola:WARN] tests/unit/test_api.c:"));
	assert_non_null(strstr(buf, "shown: 7"));
	log_set_level(LOG_LEVEL_INFO);
	start(f);
	call(f, "PUT", "/logger", "{\"log_path\": \"%s/log2\"}", f->dir);
	expect_fault(f, "PUT /logger is only valid before InstanceStart");
}

/* logger "module": only lines from source files under that prefix. */
static void test_logger_module(void **state)
{
	struct fixture *f = *state;
	char path[160], buf[4096] = "";
	int fd;

	call(f, "PUT", "/logger", "{\"log_path\": \"%s/log\", \"module\": \"\"}", f->dir);
	expect_fault(f, "logger.module: must be a source path prefix");
	call(f, "PUT", "/logger", "{\"log_path\": \"%s/log\", \"module\": 5}", f->dir);
	expect_fault(f, "logger.module: must be a string");
	call(f, "PUT", "/logger",
	     "{\"log_path\": \"%s/log\", \"level\": \"Info\", \"show_log_origin\": true, "
	     "\"module\": \"core/api\"}",
	     f->dir);
	expect_ok(f, 204);
	call(f, "GET", "/vm/config", NULL);
	assert_non_null(strstr(f->resp.body, "\"module\":\"core/api\""));
	log_warn("from the test: filtered out");
	/* core/api/handlers.c warns about the deprecated field */
	call(f, "PATCH", "/machine-config", "{\"cpu_template\": \"None\"}");
	expect_ok(f, 204);
	log_set_sink(NULL, false, false);
	log_set_module(NULL);
	snprintf(path, sizeof(path), "%s/log", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_null(strstr(buf, "filtered out"));
	assert_non_null(strstr(buf, "core/api/handlers.c:"));
	assert_non_null(strstr(buf, "cpu_template field is deprecated"));
	log_set_level(LOG_LEVEL_INFO);
}

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	char path[160], buf[8192] = "";
	json_object *line, *group, *v;
	int fd;

	/* Firecracker: FlushMetrics is not allowed before InstanceStart */
	call(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	expect_fault(f, "FlushMetrics: The requested operation is not supported before starting "
			"the microVM");
	call(f, "PUT", "/metrics", "{}");
	expect_fault(f, "metrics.metrics_path: missing (required)");
	call(f, "PUT", "/metrics", "{\"metrics_path\": \"%s/nodir/m\"}", f->dir);
	expect_fault(f, "metrics.metrics_path");
	call(f, "PUT", "/metrics", "{\"metrics_path\": \"%s/metrics\"}", f->dir);
	expect_ok(f, 204);
	/* once per process, as Firecracker's METRICS.init */
	call(f, "PUT", "/metrics", "{\"metrics_path\": \"%s/metrics2\"}", f->dir);
	expect_fault(f, "PUT /metrics: the metrics system is configured already");
	put_boot_source(f);
	call(f, "GET", "/", NULL);
	call(f, "PUT", "/boot-source", "{}");
	call(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_ok(f, 204);
	call(f, "PUT", "/metrics", "{\"metrics_path\": \"%s/metrics2\"}", f->dir);
	expect_fault(f, "PUT /metrics is only valid before InstanceStart; the VM is Running");
	call(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	expect_ok(f, 204);
	assert_int_equal(f->vmm.fills, 1);
	assert_int_equal(f->vmm.flushes, 1);
	snprintf(path, sizeof(path), "%s/metrics", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_non_null(strchr(buf, '\n'));
	assert_null(strchr(strchr(buf, '\n') + 1, '\n')); /* one line */
	line = json_tokener_parse(buf);
	assert_non_null(line);
	assert_true(json_object_object_get_ex(line, "put_api_requests", &group));
	assert_true(json_object_object_get_ex(group, "boot_source_count", &v));
	assert_int_equal(json_object_get_int(v), 2);
	assert_true(json_object_object_get_ex(group, "boot_source_fails", &v));
	assert_int_equal(json_object_get_int(v), 1);
	assert_true(json_object_object_get_ex(line, "get_api_requests", &group));
	assert_true(json_object_object_get_ex(group, "instance_info_count", &v));
	assert_int_equal(json_object_get_int(v), 1);
	assert_true(json_object_object_get_ex(line, "api_latencies_us", &group));
	assert_true(json_object_object_get_ex(group, "put_boot_source", &v));
	assert_true(json_object_object_get_ex(line, "vcpu", &v)); /* from fill_metrics */
	assert_true(json_object_object_get_ex(line, "utc_timestamp_ms", &v));
	json_object_put(line);
	assert_int_equal(api_flush_metrics(f->api, path, sizeof(path)), 0);
}

/* ---- the socket server ---- */

static int connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(strlen(path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* Send raw bytes, read until the server closes or 3 s pass; the status. */
static int exchange_fd(int fd, const char *request, size_t len, char *out, size_t outlen)
{
	size_t got = 0;
	int status = 0;

	if (len && send(fd, request, len, MSG_NOSIGNAL) < 0)
		return 0; /* closed on us: no status */
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 3000) <= 0 || got + 1 >= outlen)
			break;
		n = read(fd, out + got, outlen - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

static int exchange(const char *sock, const char *request, char *out, size_t outlen)
{
	int fd = connect_to(sock), status;

	status = exchange_fd(fd, request, strlen(request), out, outlen);
	close(fd);
	return status;
}

static void test_server(void **state)
{
	struct fixture *f = *state;
	struct api_server *server, *second;
	char err[512], out[8192], *big;
	int stalled, fds[64];
	struct stat st;

	assert_int_equal(
	    api_server_start(&server, f->sock, 0, NULL, &fake_ops, &f->vmm, err, sizeof(err)), 0);
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* the path exists: refused, and the file stays */
	assert_int_equal(
	    api_server_start(&second, f->sock, 0, NULL, &fake_ops, &f->vmm, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "the path exists"));
	assert_int_equal(
	    api_server_start(&second, f->kernel, 0, NULL, &fake_ops, &f->vmm, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(stat(f->kernel, &st), 0);
	assert_true(S_ISREG(st.st_mode));

	assert_int_equal(exchange(f->sock, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				  out, sizeof(out)),
			 200);
	assert_non_null(strstr(out, "application/json"));
	assert_non_null(strstr(out, "\"state\":\"Not started\""));
	snprintf(err, sizeof(err),
		 "PUT /boot-source HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
		 "%zu\r\n\r\n{\"kernel_image_path\": \"%s\"}",
		 strlen("{\"kernel_image_path\": \"\"}") + strlen(f->kernel), f->kernel);
	assert_int_equal(exchange(f->sock, err, out, sizeof(out)), 204);
	assert_int_equal(exchange(f->sock,
				  "PUT /boot-source HTTP/1.1\r\nHost: x\r\nConnection: "
				  "close\r\nContent-Length: 5\r\n\r\n{bad}",
				  out, sizeof(out)),
			 400);
	assert_non_null(strstr(out, "fault_message"));
	assert_int_equal(exchange(f->sock,
				  "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", out,
				  sizeof(out)),
			 400);
	assert_non_null(strstr(out, "Invalid request method and/or path"));
	/* Content-Length: missing, chunked, too large, malformed */
	assert_int_equal(exchange(f->sock,
				  "PUT /entropy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				  out, sizeof(out)),
			 411);
	assert_int_equal(exchange(f->sock,
				  "PUT /entropy HTTP/1.1\r\nHost: x\r\nConnection: "
				  "close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
				  out, sizeof(out)),
			 411);
	assert_int_equal(exchange(f->sock,
				  "PUT /entropy HTTP/1.1\r\nHost: x\r\nConnection: "
				  "close\r\nContent-Length: 51201\r\n\r\n{}",
				  out, sizeof(out)),
			 400);
	assert_non_null(strstr(out, "\"fault_message\":\"Request payload with size 51201 is "
				    "larger than the limit of 51200 allowed by server"));
	/* a deprecated field: "Deprecation: true", as Firecracker's micro_http */
	snprintf(err, sizeof(err),
		 "PATCH /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen("{\"cpu_template\": \"None\"}"), "{\"cpu_template\": \"None\"}");
	assert_int_equal(exchange(f->sock, err, out, sizeof(out)), 204);
	assert_non_null(strcasestr(out, "\r\nDeprecation: true\r\n"));
	snprintf(err, sizeof(err),
		 "PATCH /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen("{\"vcpu_count\": 2}"), "{\"vcpu_count\": 2}");
	assert_int_equal(exchange(f->sock, err, out, sizeof(out)), 204);
	assert_null(strcasestr(out, "Deprecation"));
	assert_int_equal(exchange(f->sock,
				  "PUT /entropy HTTP/1.1\r\nHost: x\r\nConnection: "
				  "close\r\nContent-Length: 2x\r\n\r\n{}",
				  out, sizeof(out)),
			 400);
	/* a body of exactly 51200 bytes is read (and is not JSON) */
	big = malloc(60000);
	snprintf(big, 60000,
		 "PUT /entropy HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
		 "51200\r\n\r\n");
	{
		size_t head = strlen(big);

		memset(big + head, ' ', 51200);
		big[head + 51200] = '\0';
	}
	assert_int_equal(exchange(f->sock, big, out, sizeof(out)), 400);
	assert_non_null(strstr(out, "malformed JSON"));
	/* a header flood: refused, never 200, and the server lives on */
	snprintf(big, 60000, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 40; i++)
		snprintf(big + strlen(big), 60000 - strlen(big), "X-Flood-%d: %01000d\r\n", i, 0);
	strcat(big, "Connection: close\r\n\r\n");
	{
		int status = exchange(f->sock, big, out, sizeof(out));

		assert_true(status == 0 || (status >= 400 && status < 500));
	}
	free(big);
	/* a client stalled mid-request holds no one else up */
	stalled = connect_to(f->sock);
	assert_true(
	    send(stalled, "PUT /actions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"act", 50, 0) > 0);
	assert_int_equal(exchange(f->sock, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				  out, sizeof(out)),
			 200);
	/* 64 concurrent clients */
	for (int i = 0; i < 64; i++) {
		fds[i] = connect_to(f->sock);
		assert_true(send(fds[i],
				 "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				 53, 0) == 53);
	}
	for (int i = 0; i < 64; i++) {
		assert_int_equal(exchange_fd(fds[i], "", 0, out, sizeof(out)), 200);
		close(fds[i]);
	}
	/* the stalled client is dropped (EOF, no answer) after the 5 s timeout */
	{
		struct pollfd p = {.fd = stalled, .events = POLLIN};

		assert_int_equal(poll(&p, 1, 10000), 1);
		assert_int_equal(read(stalled, out, sizeof(out)), 0);
	}
	close(stalled);

	api_server_stop(server);
	assert_int_equal(stat(f->sock, &st), -1); /* removed on stop */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_instance_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_with_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logger_module, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unimplemented, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_create_diff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_load_overrides, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_load_after_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vsock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_after_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_boot_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_machine_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_drives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drives_share_the_bus, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_instance_start_counts_the_bus, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_upgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_patch_drive_after_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entropy_serial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limiters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limiters_no_op, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_ops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_network_interfaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_network_interfaces_no_op, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_nets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_file_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initial_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logger, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
