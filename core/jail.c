// SPDX-License-Identifier: MIT
/*
 * --jail DIR (core/jail.h, docs/security.md "The jail"): the VMM in its own
 * mount, IPC, UTS and network namespaces, DIR as its root, only /dev/kvm in
 * its /dev, and an unprivileged uid.  Like Firecracker's jailer, but done by
 * isola itself, so one command runs a jailed VM.
 */
#define _GNU_SOURCE
#include "core/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"

int jail_enter(const struct jail_config *jail, char *err, size_t errlen)
{
	struct stat st, kvm;

	if (geteuid() != 0)
		return error_text(err, errlen, -EPERM,
				  "--jail %s needs root: isola creates the namespaces and the "
				  "/dev/kvm node, then runs as uid %u",
				  jail->dir, (unsigned)jail->uid);
	if (stat(jail->dir, &st) < 0)
		return error_text(err, errlen, -errno, "--jail %s: %s; create the directory first",
				  jail->dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return error_text(err, errlen, -ENOTDIR, "--jail %s: not a directory", jail->dir);
	char *real = realpath(jail->dir, NULL);
	bool is_root = real && !strcmp(real, "/");

	free(real);
	if (is_root)
		return error_text(err, errlen, -EINVAL,
				  "--jail %s: that is /; the jail must be a directory of its own",
				  jail->dir);
	if (jail->uid == 0 || jail->gid == 0)
		return error_text(err, errlen, -EINVAL,
				  "--jail-user %u:%u: the jail's user and group must not be root",
				  (unsigned)jail->uid, (unsigned)jail->gid);
	if (stat("/dev/kvm", &kvm) < 0 || !S_ISCHR(kvm.st_mode))
		return error_text(err, errlen, -ENODEV, "/dev/kvm: not available on this host");

	/* --jail-netns: the network namespace where the VM's taps were made
	 * (Firecracker's jailer --netns), joined before the root changes;
	 * without it, a new empty one. */
	if (jail->netns) {
		int fd = open(jail->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return error_text(err, errlen, -errno,
					  "--jail-netns %s: %s; give a network namespace's file, "
					  "e.g. /var/run/netns/NAME from `ip netns add NAME`",
					  jail->netns, strerror(errno));
		if (setns(fd, CLONE_NEWNET) < 0) {
			int ret = -errno;

			close(fd);
			return error_text(err, errlen, ret, "--jail-netns %s: %s", jail->netns,
					  ret == -EINVAL ? "not a network namespace" : strerror(-ret));
		}
		close(fd);
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (jail->netns ? 0 : CLONE_NEWNET)) <
	    0)
		return error_text(err, errlen, -errno, "--jail: unshare: %s", strerror(errno));
	/* Nothing mounted from here on reaches the host's mount table. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		int ret = -errno;

		return error_text(err, errlen, ret, "--jail: making / private: %s%s",
				  strerror(-ret), ret == -EINVAL ? SANDBOX_NOT_A_MOUNT_POINT : "");
	}
	/* The new root must be a mount: DIR bound onto itself, without
	 * set-uid programs or device nodes of its own. */
	struct mount_attr no_suid_dev = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};

	/* mount_setattr, recursive: every mount under DIR too, keeping each
	 * one's other flags (a read-only mount stays read-only) */
	if (mount(jail->dir, jail->dir, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount_setattr(AT_FDCWD, jail->dir, AT_RECURSIVE, &no_suid_dev, sizeof(no_suid_dev)) < 0)
		return error_text(err, errlen, -errno, "--jail %s: bind mount: %s", jail->dir,
				  strerror(errno));
	if (chdir(jail->dir) < 0)
		return error_text(err, errlen, -errno, "--jail %s: %s", jail->dir, strerror(errno));
	/* /dev: a private tmpfs with the kvm node only, read-only once made;
	 * DIR/dev is created (empty) if missing, as its mount point. */
	if (mkdir("dev", 0755) < 0 && errno != EEXIST)
		return error_text(err, errlen, -errno, "--jail %s: creating dev/: %s", jail->dir,
				  strerror(errno));
	if (mount("isola-jail-dev", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
		  "size=16k,nr_inodes=8,mode=0755") < 0)
		return error_text(err, errlen, -errno, "--jail %s: mounting dev/: %s", jail->dir,
				  strerror(errno));
	if (mknod("dev/kvm", S_IFCHR | 0600, kvm.st_rdev) < 0 ||
	    chown("dev/kvm", jail->uid, jail->gid) < 0)
		return error_text(err, errlen, -errno, "--jail %s: creating dev/kvm: %s", jail->dir,
				  strerror(errno));
	/* /dev/net/tun, for isola-net to attach to the namespace's taps
	 * (docs/net.md "Who opens the tap"): only with --jail-netns, where
	 * taps can exist.  0666 as on any host; attaching to a tap still needs
	 * CAP_NET_ADMIN or the tap's owner, which the jailed VMM is not. */
	if (jail->netns && (mkdir("dev/net", 0755) < 0 ||
			    mknod("dev/net/tun", S_IFCHR | 0666, makedev(10, 200)) < 0 ||
			    chmod("dev/net/tun", 0666) < 0))
		return error_text(err, errlen, -errno, "--jail %s: creating dev/net/tun: %s",
				  jail->dir, strerror(errno));
	if (mount(NULL, "dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
		return error_text(err, errlen, -errno, "--jail %s: remounting dev/ read-only: %s",
				  jail->dir, strerror(errno));
	/* pivot_root, or on an initramfs (rootfs) the move of DIR over / */
	int ret = sandbox_enter_cwd_as_root();

	if (ret < 0)
		return error_text(err, errlen, ret, "--jail %s: making it the root: %s", jail->dir,
				  strerror(-ret));
	if (sethostname("isola", 5) < 0)
		return error_text(err, errlen, -errno, "--jail: sethostname: %s", strerror(errno));
	return 0;
}

int jail_drop_privileges(const struct jail_config *jail, char *err, size_t errlen)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	/* Groups first: once the uid is not 0, they can no longer be dropped.
	 * Leaving uid 0 for good clears every capability (capabilities(7),
	 * "Effect of user ID changes on capabilities"). */
	if (setgroups(0, NULL) < 0 || setresgid(jail->gid, jail->gid, jail->gid) < 0 ||
	    setresuid(jail->uid, jail->uid, jail->uid) < 0)
		return error_text(err, errlen, -errno, "--jail: becoming uid %u gid %u: %s",
				  (unsigned)jail->uid, (unsigned)jail->gid, strerror(errno));
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != jail->uid || euid != jail->uid || suid != jail->uid || rgid != jail->gid ||
	    egid != jail->gid || sgid != jail->gid)
		return error_text(err, errlen, -EPERM, "--jail: still not uid %u gid %u",
				  (unsigned)jail->uid, (unsigned)jail->gid);
	return 0;
}
