// SPDX-License-Identifier: MIT
/* --fs: a shared directory for the guest (docs/fs.md). */
#define _GNU_SOURCE
#include "core/config_fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "isola/virtio.h"
#include "lib/log.h"

/* "auto" is one of "auto", "always", "none" (a NULL-ended list). */
static bool one_of(const char *value, const char *const *words)
{
	for (; *words; words++)
		if (!strcmp(value, *words))
			return true;
	return false;
}

int config_fs_set(struct fs_config *fs, const char *key, const char *value, const char *where,
		  char *err, size_t errlen)
{
	static const char *const caches[] = {"auto", "always", "none", NULL};
	static const char *const sandboxes[] = {"namespace", "chroot", NULL};
	struct stat st;
	char *real;

	if (!strcmp(key, "tag")) {
		if (!*value || strlen(value) > CONFIG_FS_TAG_MAX)
			return error_text(err, errlen, -EINVAL,
					  "%s tag=%s: a tag is 1 to %d bytes (virtio 1.2 §5.11.4), "
					  "this one is %zu",
					  where, value, CONFIG_FS_TAG_MAX, strlen(value));
		strcpy(fs->tag, value);
	} else if (!strcmp(key, "socket")) {
		if (!*value || strlen(value) >= sizeof(fs->socket))
			return error_text(err, errlen, -EINVAL,
					  "%s socket=%s: a Unix socket path is 1 to %zu bytes",
					  where, value, sizeof(fs->socket) - 1);
		strcpy(fs->socket, value);
	} else if (!strcmp(key, "dir")) {
		if (!*value)
			return error_text(err, errlen, -EINVAL,
					  "%s dir= is empty; give the host directory to share",
					  where);
		if (stat(value, &st))
			return error_text(err, errlen, -errno,
					  "%s dir=%s: %s; give an existing directory", where, value,
					  strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return error_text(err, errlen, -ENOTDIR, "%s dir=%s is not a directory",
					  where, value);
		real = realpath(value, NULL);
		if (!real || strlen(real) >= sizeof(fs->dir)) {
			free(real);
			return error_text(err, errlen, -ENAMETOOLONG,
					  "%s dir=%s: cannot make it an absolute path", where,
					  value);
		}
		strcpy(fs->dir, real);
		free(real);
	} else if (!strcmp(key, "cache")) {
		if (!one_of(value, caches))
			return error_text(err, errlen, -EINVAL,
					  "%s cache=%s: use auto (the default), always or none "
					  "(virtiofsd's -o cache=)",
					  where, value);
		strcpy(fs->cache, value);
	} else if (!strcmp(key, "restart")) {
		if (strcmp(value, "always") && strcmp(value, "never"))
			return error_text(err, errlen, -EINVAL,
					  "%s restart=%s: use always (the default) or never", where,
					  value);
		fs->no_restart = !strcmp(value, "never");
	} else if (!strcmp(key, "sandbox")) {
		if (!one_of(value, sandboxes))
			return error_text(err, errlen, -EINVAL,
					  "%s sandbox=%s: use namespace (the default) or chroot "
					  "(virtiofsd's -o sandbox=; docs/fs.md)",
					  where, value);
		strcpy(fs->sandbox, value);
	} else {
		return error_text(
		    err, errlen, -EINVAL,
		    "%s: unknown key '%s'; keys are tag, socket, dir, cache, sandbox, "
		    "restart",
		    where, key);
	}
	return 0;
}

int config_fs_finish(struct fs_config *fs, const char *where, char *err, size_t errlen)
{
	if (!fs->tag[0])
		return error_text(err, errlen, -EINVAL,
				  "%s needs tag=NAME: what the guest mounts (mount -t virtiofs "
				  "NAME /mnt)",
				  where);
	if (!fs->socket[0] == !fs->dir[0])
		return error_text(err, errlen, -EINVAL,
				  "%s tag=%s needs exactly one of socket=PATH (an external "
				  "vhost-user-fs back-end, e.g. virtiofsd) or dir=HOSTDIR (isola "
				  "starts virtiofsd on it)",
				  where, fs->tag);
	if (fs->socket[0] && (fs->cache[0] || fs->sandbox[0]))
		return error_text(err, errlen, -EINVAL,
				  "%s tag=%s: cache= and sandbox= are for the virtiofsd isola "
				  "starts (dir=); give them to your own back-end",
				  where, fs->tag);
	if (fs->dir[0] && !fs->cache[0])
		strcpy(fs->cache, "auto");
	if (fs->dir[0] && !fs->sandbox[0])
		strcpy(fs->sandbox, "namespace");
	return 0;
}

int config_parse_fs(struct fs_config *fs, const char *text, char *err, size_t errlen)
{
	char buf[4608], *save = NULL, *item;
	int ret;

	memset(fs, 0, sizeof(*fs));
	if (strlen(text) >= sizeof(buf))
		return error_text(err, errlen, -EINVAL, "--fs value is too long");
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');

		if (!value)
			return error_text(err, errlen, -EINVAL,
					  "--fs: '%s' is not KEY=VALUE; see 'isola run --help'",
					  item);
		*value++ = '\0';
		ret = config_fs_set(fs, item, value, "--fs", err, errlen);
		if (ret)
			return ret;
	}
	return config_fs_finish(fs, "--fs", err, errlen);
}

void config_fs_device_config(const struct fs_config *fs, uint8_t *config, unsigned size)
{
	memset(config, 0, size);
	if (size < VIRTIO_FS_CONFIG_SIZE)
		return;
	memcpy(config, fs->tag, strnlen(fs->tag, VIRTIO_FS_TAG_SIZE));
	config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] = 1; /* le32 1 */
}
