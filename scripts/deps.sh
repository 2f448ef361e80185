#!/bin/bash
# Install the Debian 12 packages isola needs to build and test, only those
# missing.  Needs root (or sudo) when something is missing.
set -eu
PACKAGES=(
	build-essential clang gcc make binutils    # compilers; clang for libFuzzer
	llvm-14                                    # llvm-profdata, llvm-cov: scripts/fuzz_coverage.sh
	libcmocka-dev liburing-dev libseccomp-dev libjson-c-dev
	libmicrohttpd-dev                          # control API (HTTP on a Unix socket)
	qemu-system-x86 qemu-utils                 # side-by-side benchmark, interop peer
	qemu-system-common                         # /usr/lib/qemu/virtiofsd: --fs dir= (docs/fs.md)
	busybox-static cpio linux-image-cloud-amd64 # Linux boot test
	linux-image-amd64                          # nested acpi-off case: a kernel with CONFIG_X86_MPPARSE (the cloud one has none)
	fio acpica-tools time procps iproute2
	dpdk dpdk-dev                              # dpdk-testpmd: vhost-user-net peer (interop, bench/net)
	python3 curl                               # API client, vhost-user man in the middle (tests)
	e2fsprogs tmux                             # nested Linux test: ext4 root, console test
	ethtool                                    # nested network cases: L2's queue statistics
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
echo "isola: installing missing packages: ${missing[*]}"
SUDO=
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null || { echo "isola: run as root to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
