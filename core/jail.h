/* SPDX-License-Identifier: MIT */
/*
 * --jail DIR: run the VMM chrooted in its own namespaces as an unprivileged
 * user, with /dev holding only /dev/kvm (docs/security.md "The jail").
 *
 *	jail_enter()        as root, before the spawner and any thread:
 *	                    new mount, IPC, UTS and network namespaces (or
 *	                    --jail-netns's network namespace, joined); DIR
 *	                    becomes / (pivot_root); a private tmpfs on /dev
 *	                    with the kvm node only
 *	supervisor_spawner_start()   the spawner keeps root, inside the jail,
 *	                    so device servers can build their own sandbox
 *	jail_drop_privileges()   the VMM becomes uid:gid, no supplementary
 *	                    groups, no capabilities
 *
 * Every path the VMM is given from then on (kernel, disks, sockets, the
 * console and log files, --config-file) is a path inside DIR.
 */
#ifndef ISOLA_CORE_JAIL_H
#define ISOLA_CORE_JAIL_H

#include <stddef.h>
#include <sys/types.h>

struct jail_config {
	const char *dir;   /* NULL: no jail */
	const char *netns; /* --jail-netns: a network namespace to join; NULL: a new one */
	uid_t uid;
	gid_t gid;
};

/* Enter the namespaces and the new root; 0 or -errno with a sentence. */
int jail_enter(const struct jail_config *jail, char *err, size_t errlen);

/* Become jail->uid:gid for good; 0 or -errno with a sentence. */
int jail_drop_privileges(const struct jail_config *jail, char *err, size_t errlen);

#endif
