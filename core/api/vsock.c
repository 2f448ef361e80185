// SPDX-License-Identifier: MIT
/*
 * Firecracker's "Vsock" (swagger: guest_cid minimum 3, uds_path required,
 * vsock_id deprecated) into struct vm_config's vsock, and back for GET
 * /vm/config.  Shared by PUT /vsock and the config file's "vsock".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/api/api_internal.h"

int api_parse_vsock(json_object *v, const char *prefix, struct vm_config *cfg, bool *deprecated,
		    char *err, size_t errlen)
{
	static const char *const known[] = {"guest_cid", "uds_path", "vsock_id", NULL};
	const char *uds = NULL, *id = NULL;
	struct vsock_config vsock = {.enabled = true};
	char where[256];
	int64_t cid = 0;
	int ret;

	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_int(v, prefix, "guest_cid", true, &cid, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "uds_path", true, &uds, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "vsock_id", false, &id, err, errlen);
	if (ret < 0)
		return ret;
	api_json_path(where, sizeof(where), prefix, "guest_cid");
	ret = config_vsock_check_cid(cid, where, err, errlen);
	if (ret)
		return ret;
	api_json_path(where, sizeof(where), prefix, "uds_path");
	ret = config_vsock_check_uds(uds, where, err, errlen);
	if (ret)
		return -EINVAL;
	vsock.guest_cid = (uint32_t)cid;
	strcpy(vsock.uds_path, uds);
	/* One device per VM: a second PUT replaces the first (swagger
	 * putGuestVsock: "Subsequent calls will update the device
	 * configuration"); nothing is bound before InstanceStart. */
	cfg->vsock = vsock;
	if (deprecated && id)
		*deprecated = true;
	return 0;
}

json_object *api_vsock_to_json(const struct vm_config *cfg)
{
	json_object *v;

	if (!cfg->vsock.enabled)
		return NULL;
	v = json_object_new_object();
	if (!v)
		return NULL;
	json_object_object_add(v, "guest_cid", json_object_new_int64(cfg->vsock.guest_cid));
	json_object_object_add(v, "uds_path", json_object_new_string(cfg->vsock.uds_path));
	return v;
}
