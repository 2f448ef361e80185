/* SPDX-License-Identifier: MIT */
/* A shared host directory (--fs): a virtio-fs device (virtio 1.2 §5.11)
 * served by an external vhost-user-fs back-end listening on a socket, or by
 * Debian's virtiofsd that isola starts on a directory (docs/fs.md). */
#ifndef ISOLA_CORE_CONFIG_FS_H
#define ISOLA_CORE_CONFIG_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_FS 8
/* virtio 1.2 §5.11.4: the tag fills at most 36 bytes */
#define CONFIG_FS_TAG_MAX 36
/* the back-end isola starts for dir= (package qemu-system-common) */
#define CONFIG_FS_VIRTIOFSD "/usr/lib/qemu/virtiofsd"

struct fs_config {
	char tag[CONFIG_FS_TAG_MAX + 1]; /* what the guest mounts: mount -t virtiofs TAG */
	char socket[108];		 /* external back-end (sun_path); "" with dir */
	char dir[4096];			 /* the shared directory, absolute; "" with socket */
	char cache[8];			 /* virtiofsd -o cache=: auto, always, none */
	char sandbox[12];		 /* virtiofsd -o sandbox=: namespace, chroot */
	char id[65];			 /* PUT /fs/{id}'s fs_id; "" from --fs */
	bool no_restart;		 /* restart=never: a lost back-end is not brought back */
};

/* One KEY=VALUE of --fs (or the API's field of that name) into fs, checked;
 * where ("--fs", "fs/ID") starts each sentence.  0, or -errno with a
 * sentence in err (fs may be half set). */
int config_fs_set(struct fs_config *fs, const char *key, const char *value, const char *where,
		  char *err, size_t errlen);
/* After the keys: tag given, exactly one of socket and dir, the modes only
 * with dir (defaults filled in).  0 or -EINVAL with a sentence in err. */
int config_fs_finish(struct fs_config *fs, const char *where, char *err, size_t errlen);

/* Parse "tag=NAME,socket=PATH" or "tag=NAME,dir=HOSTDIR[,cache=auto|always|
 * none][,sandbox=namespace|chroot]" (--fs) into fs; dir is made absolute
 * and must be a directory.  -EINVAL (or the stat's -errno) with a sentence
 * in err. */
int config_parse_fs(struct fs_config *fs, const char *text, char *err, size_t errlen);
/* The virtio-fs config the front-end owns (§5.11.4): the tag, NUL-padded,
 * and one request queue. */
void config_fs_device_config(const struct fs_config *fs, uint8_t *config, unsigned size);

#endif
