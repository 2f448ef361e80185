/* SPDX-License-Identifier: MIT */
/* The vsock device's configuration (--vsock, the API's PUT /vsock, the
 * config file's "vsock"): a guest CID and Firecracker's hybrid host socket
 * (docs/api.md "vsock"). */
#ifndef ISOLA_CORE_CONFIG_VSOCK_H
#define ISOLA_CORE_CONFIG_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* virtio 1.2 §5.10.4: CIDs 0..2 are the hypervisor, local and the host;
 * the upper 32 bits are reserved (zero), and Linux's VMADDR_CID_ANY is
 * 0xffffffff. */
#define CONFIG_VSOCK_CID_MIN 3u
#define CONFIG_VSOCK_CID_MAX 0xfffffffeu
/* A guest connecting to host port P reaches the Unix socket "PATH_P"
 * (Firecracker docs/vsock.md): PATH + '_' + up to 10 digits + NUL must fit
 * sun_path's 108 bytes. */
#define CONFIG_VSOCK_UDS_MAX (108 - 1 - 1 - 10)

struct vsock_config {
	bool enabled;
	uint32_t guest_cid;
	char uds_path[CONFIG_VSOCK_UDS_MAX + 1]; /* as given (relative to isola's cwd) */
	bool no_restart;			 /* restart=never */
};

/* cid, found at `where` ("--vsock cid", "vsock.guest_cid"), is a guest
 * CID: 0, or -EINVAL with a sentence in err. */
int config_vsock_check_cid(int64_t cid, const char *where, char *err, size_t errlen);
/* path, found at `where`, can be isola-vsock's listening socket: not
 * empty, short enough for PATH_PORT, its directory exists, and nothing but
 * a (stale) socket is there already.  0, or -EINVAL/-ENOENT with err. */
/* With `isola --jail DIR run --vsock`, the path names a file in the jail:
 * the parse checks its form only, and main.c checks it in the jail. */
void config_vsock_defer_file_checks(bool defer);
int config_vsock_check_uds(const char *path, const char *where, char *err, size_t errlen);
/* Parse "cid=N,uds=PATH[,restart=always|never]" (--vsock) into vsock and
 * check it; -EINVAL with a sentence in err. */
int config_parse_vsock(struct vsock_config *vsock, const char *text, char *err, size_t errlen);
/* The virtio-vsock config the front-end owns (virtio 1.2 §5.10.4: le64
 * guest_cid). */
void config_vsock_device_config(const struct vsock_config *vsock, uint8_t *config, unsigned size);

#endif
