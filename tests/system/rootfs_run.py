#!/usr/bin/env python3
"""Run a program whose root is the rootfs (the initial ramfs), as on a host
booted from a minimal image with no switch_root (our nested L1; issue 10,
bug 2), on an ordinary host:

  rootfs_run.py SRC_DIR PROGRAM [ARGS...]

In a mount namespace of its own (private, so nothing reaches the host's),
"/" is detached (umount2 MNT_DETACH), then the process joins its own mount
namespace again: setns(2) sets the root to the namespace's root mount with
what is mounted on it, which is now the rootfs alone.  rootfs's /mnt, /proc
and /dev are then covered, in this namespace only, by a tmpfs holding a copy
of SRC_DIR (files of no blocks stay sparse), by proc, and by a tmpfs with a
kvm node; PROGRAM (a path inside /mnt) is exec'd with cwd /.  Nothing is
written to the rootfs itself.  Needs root.  Exit status 77 with "SKIP: ..."
if the rootfs has no /mnt, /proc or /dev to mount on.
"""
import ctypes
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
MNT_DETACH = 2
libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        sys.exit(f"rootfs_run: {what}: {os.strerror(err)}")


def mount(source, target, fstype, flags=0, data=None):
    check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                     ctypes.c_ulong(flags), data.encode() if data else None),
          f"mounting {fstype or source} on {target}")


def read_tree(src):
    """[(relative path, mode, bytes or size of a hole-only file)], read before
    "/" goes."""
    tree = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        if rel != ".":
            tree.append((rel, os.stat(dirpath).st_mode, None))
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            with open(path, "rb") as f:
                data = f.read() if st.st_blocks else st.st_size
            tree.append((os.path.normpath(os.path.join(rel, name)), st.st_mode, data))
    return tree


def write_tree(tree, dst):
    for rel, mode, data in tree:
        path = os.path.join(dst, rel)
        if data is None:
            os.mkdir(path)
        else:
            with open(path, "wb") as f:
                if isinstance(data, int):
                    f.truncate(data)
                else:
                    f.write(data)
        os.chmod(path, stat.S_IMODE(mode))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, argv = sys.argv[1], sys.argv[2:]
    kvm = os.stat("/dev/kvm").st_rdev
    tree = read_tree(src)
    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    check(libc.umount2(b"/", MNT_DETACH), "detaching /")
    check(libc.setns(ns, CLONE_NEWNS), "setns into its own mount namespace")
    os.close(ns)
    os.chdir("/")
    missing = [d for d in ("/mnt", "/proc", "/dev") if not os.path.isdir(d)]
    if missing:
        print(f"SKIP: this host's rootfs has no {' '.join(missing)} to mount on")
        sys.exit(77)
    mount("isola-test", "/mnt", "tmpfs", 0, "mode=0755")
    write_tree(tree, "/mnt")
    mount("proc", "/proc", "proc")
    mount("isola-test-dev", "/dev", "tmpfs", 0, "mode=0755")
    os.mknod("/dev/kvm", 0o600 | stat.S_IFCHR, kvm)
    os.execv(argv[0], argv)


main()
