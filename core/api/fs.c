// SPDX-License-Identifier: MIT
/*
 * PUT /fs/{fs_id} and the config file's "fs" (isola extensions; docs/api.md
 * "PUT /fs/{fs_id}", docs/fs.md): a shared directory, --fs's keys as JSON
 * strings (the shape of Cloud Hypervisor's FsConfig: tag and socket, plus
 * isola's dir, cache and sandbox), into struct vm_config's fs[], and back
 * for GET /vm/config.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/api/api_internal.h"

int api_parse_fs(json_object *v, const char *prefix, const char *url_id, struct fs_config *fs,
		 char *err, size_t errlen)
{
	static const char *const known[] = {"fs_id", "tag",	"socket",  "dir",
					    "cache", "sandbox", "restart", NULL};
	const char *id = NULL;
	int ret;

	memset(fs, 0, sizeof(*fs));
	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "fs_id", true, &id, err, errlen);
	if (ret < 0)
		return ret;
	if (api_check_id(id, url_id, prefix, "fs_id", err, errlen))
		return -EINVAL;
	strcpy(fs->id, id);
	for (unsigned i = 1; known[i]; i++) {
		const char *value = NULL;

		ret = api_json_string(v, prefix, known[i], false, &value, err, errlen);
		if (ret < 0)
			return ret;
		if (ret == 0 && config_fs_set(fs, known[i], value, prefix, err, errlen))
			return -EINVAL;
	}
	return config_fs_finish(fs, prefix, err, errlen);
}

int api_put_fs(struct vm_config *cfg, const struct fs_config *fs, const char *prefix, char *err,
	       size_t errlen)
{
	unsigned slot = cfg->nr_fs;

	for (unsigned i = 0; i < cfg->nr_fs; i++) {
		if (!strcmp(cfg->fs[i].id, fs->id))
			slot = i; /* the same fs_id: replaced (pre-boot) */
		else if (!strcmp(cfg->fs[i].tag, fs->tag))
			return api_fail(err, errlen,
					"%s: tag \"%s\" is the tag of fs %s too; each shared "
					"directory needs its own tag",
					prefix, fs->tag,
					cfg->fs[i].id[0] ? cfg->fs[i].id : "(--fs)");
	}
	if (slot == cfg->nr_fs && slot == CONFIG_MAX_FS)
		return api_fail(err, errlen, "%s: isola supports %d shared directories", prefix,
				CONFIG_MAX_FS);
	if (slot == cfg->nr_fs && config_device_count(cfg) >= CONFIG_MAX_PCI_DEVICES)
		return api_fail(err, errlen,
				"%s: no PCI slot is left: the bus holds %d devices (32 slots, one "
				"the host bridge)",
				prefix, CONFIG_MAX_PCI_DEVICES);
	cfg->fs[slot] = *fs;
	if (slot == cfg->nr_fs)
		cfg->nr_fs++;
	return 0;
}

json_object *api_fs_to_json(const struct fs_config *fs, unsigned index)
{
	json_object *v = json_object_new_object();
	char id[16];

	if (!v)
		return NULL;
	snprintf(id, sizeof(id), "fs%u", index);
	json_object_object_add(v, "fs_id", json_object_new_string(fs->id[0] ? fs->id : id));
	json_object_object_add(v, "tag", json_object_new_string(fs->tag));
	if (fs->socket[0]) {
		json_object_object_add(v, "socket", json_object_new_string(fs->socket));
	} else {
		json_object_object_add(v, "dir", json_object_new_string(fs->dir));
		json_object_object_add(v, "cache", json_object_new_string(fs->cache));
		json_object_object_add(v, "sandbox", json_object_new_string(fs->sandbox));
	}
	if (fs->no_restart)
		json_object_object_add(v, "restart", json_object_new_string("never"));
	return v;
}
