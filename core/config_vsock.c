// SPDX-License-Identifier: MIT
/* --vsock, and the checks PUT /vsock and the config file share. */
#define _GNU_SOURCE
#include "core/config_vsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"

int config_vsock_check_cid(int64_t cid, const char *where, char *err, size_t errlen)
{
	if (cid >= 0 && cid < CONFIG_VSOCK_CID_MIN)
		return error_text(err, errlen, -EINVAL,
				  "%s: %lld is reserved (0 hypervisor, 1 local, 2 host; virtio "
				  "1.2 §5.10.4); a guest CID is %u or more",
				  where, (long long)cid, CONFIG_VSOCK_CID_MIN);
	if (cid < 0 || cid > CONFIG_VSOCK_CID_MAX)
		return error_text(err, errlen, -EINVAL,
				  "%s: %lld is out of range; a guest CID is %u to %u (32 bits; "
				  "0xffffffff is VMADDR_CID_ANY)",
				  where, (long long)cid, CONFIG_VSOCK_CID_MIN,
				  CONFIG_VSOCK_CID_MAX);
	return 0;
}

/* isola --jail ... run --vsock: the path is the jail's, checked once in it */
static bool defer_file_checks;

void config_vsock_defer_file_checks(bool defer)
{
	defer_file_checks = defer;
}

int config_vsock_check_uds(const char *path, const char *where, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[CONFIG_VSOCK_UDS_MAX + 1];
	struct stat st;

	if (!*path)
		return error_text(err, errlen, -EINVAL,
				  "%s: must not be empty; give the path of the Unix socket "
				  "isola-vsock listens on",
				  where);
	if (strlen(path) > CONFIG_VSOCK_UDS_MAX)
		return error_text(err, errlen, -EINVAL,
				  "%s: %zu bytes is too long; the guest's connections go to "
				  "PATH_PORT (up to 10 digits), which must fit a Unix socket "
				  "address, so PATH has at most %d bytes: choose a shorter path",
				  where, strlen(path), CONFIG_VSOCK_UDS_MAX);
	if (slash && !slash[1])
		return error_text(err, errlen, -EINVAL,
				  "%s: %s names a directory; give the path of a socket file in it",
				  where, path);
	if (defer_file_checks)
		return 0;
	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st))
		return error_text(err, errlen, -errno, "%s: directory %s: %s; create it first",
				  where, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return error_text(err, errlen, -ENOTDIR, "%s: %s is not a directory", where, dir);
	/* A socket left by an earlier run is replaced when isola-vsock
	 * starts (and after each of its restarts); anything else is not
	 * isola's to remove. */
	if (!lstat(path, &st) && !S_ISSOCK(st.st_mode))
		return error_text(err, errlen, -EEXIST,
				  "%s: %s exists and is not a socket; isola-vsock creates the "
				  "socket there: remove it or choose another path",
				  where, path);
	return 0;
}

int config_parse_vsock(struct vsock_config *vsock, const char *text, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *item;
	bool have_cid = false;
	int ret;

	memset(vsock, 0, sizeof(*vsock));
	if (strlen(text) >= sizeof(buf))
		return error_text(err, errlen, -EINVAL, "--vsock value is too long");
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '='), *end;
		unsigned long long cid;

		if (!value)
			return error_text(err, errlen, -EINVAL,
					  "--vsock: '%s' is not KEY=VALUE; see 'isola run --help'",
					  item);
		*value++ = '\0';
		if (!strcmp(item, "cid")) {
			errno = 0;
			cid = strtoull(value, &end, 10);
			if (!*value || *end || *value == '-' || *value == '+')
				return error_text(err, errlen, -EINVAL,
						  "--vsock cid=%s is not a number; use a guest CID "
						  "from %u to %u",
						  value, CONFIG_VSOCK_CID_MIN,
						  CONFIG_VSOCK_CID_MAX);
			if (errno || cid > INT64_MAX)
				cid = INT64_MAX;
			ret = config_vsock_check_cid((int64_t)cid, "--vsock cid", err, errlen);
			if (ret)
				return ret;
			vsock->guest_cid = (uint32_t)cid;
			have_cid = true;
		} else if (!strcmp(item, "uds")) {
			ret = config_vsock_check_uds(value, "--vsock uds", err, errlen);
			if (ret)
				return ret;
			strcpy(vsock->uds_path, value);
		} else if (!strcmp(item, "restart")) {
			if (strcmp(value, "always") && strcmp(value, "never"))
				return error_text(err, errlen, -EINVAL,
						  "--vsock restart=%s: use always or never", value);
			vsock->no_restart = !strcmp(value, "never");
		} else {
			return error_text(err, errlen, -EINVAL,
					  "--vsock: unknown key '%s'; keys are cid, uds, restart",
					  item);
		}
	}
	if (!have_cid || !vsock->uds_path[0])
		return error_text(err, errlen, -EINVAL,
				  "--vsock needs cid=N (the guest's CID, %u or more) and uds=PATH "
				  "(the Unix socket the host connects to)",
				  CONFIG_VSOCK_CID_MIN);
	vsock->enabled = true;
	return 0;
}

void config_vsock_device_config(const struct vsock_config *vsock, uint8_t *config, unsigned size)
{
	uint64_t cid = vsock->guest_cid;

	memset(config, 0, size);
	for (unsigned i = 0; i < 8 && i < size; i++)
		config[i] = (uint8_t)(cid >> (8 * i));
}
