#!/bin/bash
# Builds what the nested Linux tests and benchmarks boot (docs/linux.md):
#
#   build/nested/l2-initrd.cpio.gz  L2's initramfs: busybox, the virtio modules
#                                   (modprobe --show-depends), tests/system/nested/l2-init
#   build/nested/l2-net.cpio.gz     the same, plus virtio_net, build/nettest and
#                                   ethtool (with its libraries): the network cases'
#   build/nested/l2-vsock.cpio.gz   busybox, virtio_pci, vmw_vsock_virtio_transport
#                                   and build/vsockpeer (vsockpeer.c): the vsock case's
#   build/nested/l2-fs.cpio.gz      busybox, virtio_pci, virtiofs, l2-init and fs-ops.sh:
#                                   the virtiofs case's
#   build/nested/rootfs.img         an ext4 root filesystem for L2 (busybox and
#                                   tests/system/nested/rootfs-init as /sbin/init)
#   build/nested/l1.cpio            L1's initramfs (uncompressed: TCG is slow at
#                                   gunzip): busybox, kvm + kvm_amd, isola's static
#                                   binaries (isola-vsock once it is built) and
#                                   vsockpeer, L2's kernel, initramfses and rootfs,
#                                   e2fsck/debugfs/curl with their shared libraries,
#                                   tun + vhost_net, iproute2's ip (/usr/sbin/ip: netns,
#                                   tuntap multi_queue), build/nettest,
#                                   tests/system/nested/l1-init as /init,
#                                   tests/system/orchestrators/*.seq
#   build/nested/l1-qemu.cpio       with NESTED_QEMU=1 instead: the same, plus
#                                   qemu-system-x86_64 with its libraries and
#                                   firmware, and /isola/measure
#                                   (bench/boot/measure.c, static): bench/linux
#
# Sourced: nested_build prints "KERNEL L1_CPIO" or fails with a reason on
# stderr (status 77 when a package is missing: the caller skips).
NESTED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NESTED_ROOT=$(cd "$NESTED_DIR/../../.." && pwd)
NESTED_OUT=${NESTED_OUT:-$NESTED_ROOT/build/nested}

# L1's kernel command line, before the isola.* words of each use.
# nokaslr: the same addresses in every run of a kernel, so a CPU dump of a
# stopped L1 can be looked up (isola.nested=symbols).  highres=off
# nohz=off: L1's local APIC timers tick periodically instead of one-shot.
# Under QEMU's TCG an L1 stopped for good with both CPUs halted, IF set and
# the timer's vector pending in the APIC's IRR, never delivered (the
# emulated CPU missed the wake-up): a one-shot timer that expired into
# that fires no more, so nothing ever woke them; a periodic one fires again
# 4 ms later, and its delivery takes the pending vectors with it
# (docs/linux.md "L1's own failures").
# tsc_early_khz (kernel-parameters.txt): L1's TSC rate, where the host
# knows its own exactly (tsc_known_freq in its cpuinfo: a hypervisor gave
# it; with no aperfmperf, "cpu MHz" is that rate).  TCG gives L1 the host's
# TSC (QEMU's cpu_get_host_ticks), which L1 otherwise calibrates against the
# emulated PIT: 0.5% slow on a loaded host (2582 MHz for 2596).  L1's KVM,
# without a master clock (L1's TSCs are "unsynchronized"), sets L2's
# kvmclock to L1's time at each update and moves L2's TSC only forward
# to L1's time (its catch-up), but between updates L2's TSC runs at the
# host's rate: that much ahead of L2's kvm-clock for as long as L2's vCPU
# stays loaded, 3.8 ms in a restored L2 faulting its memory in, and L2's
# clocksource watchdog marked its TSC unstable (docs/linux.md).
nested_l1_tsc_khz() {
	grep -qw tsc_known_freq /proc/cpuinfo && ! grep -qw aperfmperf /proc/cpuinfo &&
		awk -F': *' '/^cpu MHz/ { printf "%d\n", $2 * 1000 + 0.5; exit }' /proc/cpuinfo
}
L1_TSC_KHZ=$(nested_l1_tsc_khz)
L1_KERNEL_ARGS="console=ttyS0 panic=-1 rdinit=/init quiet nokaslr highres=off nohz=off${L1_TSC_KHZ:+ tsc_early_khz=$L1_TSC_KHZ}"

nested_kernel() {
	ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1
}

# The acpi-off case's L2 kernel: Debian's generic one (linux-image-amd64),
# which reads the MP table (CONFIG_X86_MPPARSE=y); the cloud kernel is built
# without it, so with acpi=off it finds no APIC at all.  Empty if none.
nested_mp_kernel() {
	local k
	for k in /boot/vmlinuz-*-amd64; do
		[[ $k == *-cloud-amd64 || ! -r $k ]] && continue
		grep -qx 'CONFIG_X86_MPPARSE=y' "/boot/config-${k#/boot/vmlinuz-}" 2>/dev/null && echo "$k"
	done | sort -V | tail -n 1
}

# nested_copy_modules RELEASE ROOT MODULE... : the modules and their
# dependencies, in load order, into ROOT/lib/modules; the order in
# ROOT/etc/modules.order (one path a line, for insmod)
nested_copy_modules() {
	local release=$1 root=$2 line path
	shift 2
	mkdir -p "$root/etc" "$root/lib/modules"
	: >"$root/etc/modules.order"
	for m in "$@"; do
		modprobe -S "$release" --show-depends "$m" || return 1
	done | while read -r line; do
		[[ $line == insmod\ * ]] || continue
		path=$(echo "$line" | awk '{print $2}')
		grep -qxF "/lib/modules/${path##*/}" "$root/etc/modules.order" && continue
		cp "$path" "$root/lib/modules/" || return 1
		echo "/lib/modules/${path##*/}" >>"$root/etc/modules.order"
	done
}

# nested_copy_program ROOT BINARY... : each binary at its own path, with the
# shared libraries ldd names and the dynamic loader
nested_copy_program() {
	local root=$1 bin lib
	shift
	for bin in "$@"; do
		mkdir -p "$root$(dirname "$bin")"
		cp -L "$bin" "$root$bin" || return 1
		for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
			[[ -e $root$lib ]] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib" || return 1
		done
	done
}

# The firmware QEMU in L1 loads for -M microvm (qboot) and -M pc (SeaBIOS,
# the kvmvapic and -kernel option ROMs), each found where QEMU on the host
# finds it (`-L help`: Debian splits it over /usr/share/qemu,
# /usr/share/seabios and /usr/lib/ipxe/qemu, often through symlinks) and
# copied to the same path, so that L1's QEMU finds it the same way.
NESTED_QEMU_FIRMWARE="bios-microvm.bin bios-256k.bin kvmvapic.bin linuxboot.bin linuxboot_dma.bin multiboot_dma.bin pvh.bin"

nested_copy_qemu_firmware() { # ROOT
	local root=$1 name dir found
	for name in $NESTED_QEMU_FIRMWARE; do
		found=
		for dir in $(qemu-system-x86_64 -L help); do
			dir=$(realpath -m "$dir")
			[[ -e $dir/$name ]] || continue
			mkdir -p "$root$dir" && cp -L "$dir/$name" "$root$dir/$name" || return 1
			found=1
			break
		done
		[[ -n $found ]] || { echo "no QEMU firmware $name in $(qemu-system-x86_64 -L help | tr '\n' ' ')(apt-get install qemu-system-data seabios)" >&2; return 1; }
	done
}

nested_l1_cpio() {
	if [[ ${NESTED_QEMU:-0} == 1 ]]; then echo "$NESTED_OUT/l1-qemu.cpio"; else echo "$NESTED_OUT/l1.cpio"; fi
}

nested_cpio() { # DIR OUT
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$2"
}

nested_busybox_root() { # ROOT
	mkdir -p "$1"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,root,run}
	cp /bin/busybox "$1/bin/busybox"
}

# nested_vsock_initrd RELEASE OUT: the vsock initramfs (issue 14): busybox,
# Debian's virtio vsock transport (vsock, vmw_vsock_virtio_transport_common),
# build/vsockpeer, l2-init (isola.mode=vsock); L2's in the vsock case, and
# the guest's under QEMU TCG in tests/system/interop_vsock_linux_tcg.sh
nested_vsock_initrd() {
	local root
	root=$(mktemp -d "$(dirname "$2")/vsock.XXXXXX") || return 1
	nested_busybox_root "$root"
	nested_copy_modules "$1" "$root" virtio_pci vmw_vsock_virtio_transport &&
		install -m 755 "$NESTED_DIR/l2-init" "$root/init" &&
		mkdir -p "$root/lib" && cp "$NESTED_DIR/l2-lib.sh" "$root/lib/" &&
		cp "$NESTED_ROOT/build/vsockpeer" "$root/bin/vsockpeer" &&
		nested_cpio "$root" /dev/stdout | gzip -1n >"$2"
	local st=$?
	rm -rf "$root"
	return $st
}

# nested_fs_initrd RELEASE OUT: the virtiofs case's initramfs (issue 17):
# busybox, virtio_pci and Debian's virtiofs (with fuse), l2-init
# (isola.mode=fs) and the file operations it shares with L1 (fs-ops.sh)
nested_fs_initrd() {
	local root
	root=$(mktemp -d "$(dirname "$2")/fs.XXXXXX") || return 1
	nested_busybox_root "$root"
	nested_copy_modules "$1" "$root" virtio_pci virtiofs &&
		install -m 755 "$NESTED_DIR/l2-init" "$root/init" &&
		mkdir -p "$root/lib" && cp "$NESTED_DIR/l2-lib.sh" "$NESTED_DIR/fs-ops.sh" "$root/lib/" &&
		nested_cpio "$root" /dev/stdout | gzip -1n >"$2"
	local st=$?
	rm -rf "$root"
	return $st
}

nested_build_l2() {
	local release=$1 root
	root=$(mktemp -d "$NESTED_OUT/l2.XXXXXX") || return 1
	nested_busybox_root "$root"
	nested_copy_modules "$release" "$root" virtio_pci virtio_blk virtio-rng || return 1
	install -m 755 "$NESTED_DIR/l2-init" "$root/init"
	mkdir -p "$root/lib" && cp "$NESTED_DIR/l2-lib.sh" "$root/lib/"
	nested_cpio "$root" /dev/stdout | gzip -1n >"$NESTED_OUT/l2-initrd.cpio.gz" || return 1
	# the network cases' initramfs: the boot cases and bench/linux keep the
	# smaller one above
	nested_copy_modules "$release" "$root" virtio_pci virtio_blk virtio-rng virtio_net || return 1
	cp "$NESTED_ROOT/build/nettest" "$root/bin/nettest" || return 1
	nested_copy_program "$root" "$(command -v ethtool)" || return 1
	nested_cpio "$root" /dev/stdout | gzip -1n >"$NESTED_OUT/l2-net.cpio.gz" || return 1
	rm -rf "$root"
	nested_vsock_initrd "$release" "$NESTED_OUT/l2-vsock.cpio.gz" || return 1
	nested_fs_initrd "$release" "$NESTED_OUT/l2-fs.cpio.gz" || return 1
	# the acpi-off case's initramfs: the generic kernel's virtio modules
	local mp
	mp=$(nested_mp_kernel)
	rm -f "$NESTED_OUT/l2-mp.cpio.gz"
	if [[ -n $mp ]]; then
		root=$(mktemp -d "$NESTED_OUT/l2.XXXXXX") || return 1
		nested_busybox_root "$root"
		# (virtio_net: the orchestrators case's interface; the vsock
		# transport: its hybrid vsock, which Kata's guest kernel has built in)
		nested_copy_modules "${mp#/boot/vmlinuz-}" "$root" virtio_pci virtio_blk virtio_net \
			vmw_vsock_virtio_transport || return 1
		install -m 755 "$NESTED_DIR/l2-init" "$root/init"
		mkdir -p "$root/lib" && cp "$NESTED_DIR/l2-lib.sh" "$root/lib/"
		nested_cpio "$root" /dev/stdout | gzip -1n >"$NESTED_OUT/l2-mp.cpio.gz" || return 1
		rm -rf "$root"
	fi

	# the ext4 root: busybox and an init that writes through the page cache
	root=$(mktemp -d "$NESTED_OUT/rootfs.XXXXXX") || return 1
	nested_busybox_root "$root"
	install -m 755 "$NESTED_DIR/rootfs-init" "$root/sbin/init"
	mkdir -p "$root/lib" && cp "$NESTED_DIR/l2-lib.sh" "$root/lib/"
	rm -f "$NESTED_OUT/rootfs.img"
	mkfs.ext4 -q -F -L isola-root -d "$root" "$NESTED_OUT/rootfs.img" 48M || return 1
	rm -rf "$root"
}

nested_build_l1() {
	local release=$1 kernel=$2 root isola_build=$NESTED_ROOT/build
	root=$(mktemp -d "$NESTED_OUT/l1.XXXXXX") || return 1
	nested_busybox_root "$root"
	# tun: the network cases' taps; vhost_net: QEMU's peer in bench/linux/net.sh
	nested_copy_modules "$release" "$root" kvm_amd tun vhost_net || return 1
	mkdir -p "$root/isola" "$root/l2"
	cp "$isola_build/isola" "$isola_build/isola-blk" "$isola_build/isola-rng" "$isola_build/nettest" "$root/isola/"
	# (until issue 12's isola-net is in the tree, the network cases skip)
	[[ -x $isola_build/isola-net ]] && cp "$isola_build/isola-net" "$root/isola/"
	# (likewise the vsock case until issue 14's isola-vsock is built)
	[[ -x $isola_build/isola-vsock ]] && cp "$isola_build/isola-vsock" "$root/isola/"
	cp "$isola_build/vsockpeer" "$isola_build/kvm-keeper" "$root/isola/"
	# the virtiofs case: isola-fs and the virtiofsd it starts (Debian's,
	# qemu-system-common, with its libraries; without it the case skips)
	[[ -x $isola_build/isola-fs ]] && cp "$isola_build/isola-fs" "$root/isola/"
	if [[ -x /usr/lib/qemu/virtiofsd ]]; then
		nested_copy_program "$root" /usr/lib/qemu/virtiofsd || return 1
	fi
	cp "$kernel" "$root/l2/vmlinuz"
	cp "$NESTED_OUT/l2-initrd.cpio.gz" "$NESTED_OUT/l2-net.cpio.gz" "$NESTED_OUT/l2-vsock.cpio.gz" \
		"$NESTED_OUT/l2-fs.cpio.gz" "$NESTED_OUT/rootfs.img" "$root/l2/"
	# the acpi-off case's kernel and initramfs, when there is such a kernel
	if [[ -e $NESTED_OUT/l2-mp.cpio.gz ]]; then
		cp "$(nested_mp_kernel)" "$root/l2/vmlinuz-mp" && cp "$NESTED_OUT/l2-mp.cpio.gz" "$root/l2/" || return 1
	fi
	nested_copy_program "$root" "$(command -v e2fsck)" "$(command -v debugfs)" "$(command -v curl)" || return 1
	# iproute2's ip: busybox's has neither netns nor tuntap
	nested_copy_program "$root" /usr/sbin/ip || return 1
	mkdir -p "$root/var" && ln -s ../run "$root/var/run"
	# curl's TLS stack wants no configuration for http over a Unix socket
	if [[ ${NESTED_QEMU:-0} == 1 ]]; then
		nested_copy_program "$root" "$(command -v qemu-system-x86_64)" || return 1
		nested_copy_qemu_firmware "$root" || return 1
		# bench/linux's timer: static, as L1 has no libc of its own
		cc -static -O2 -Wall -Wextra -Werror -o "$root/isola/measure" \
			"$NESTED_ROOT/bench/boot/measure.c" || return 1
	fi
	install -m 755 "$NESTED_DIR/l1-init" "$root/init"
	mkdir -p "$root/nested" && cp "$NESTED_DIR"/l1-*.sh "$NESTED_DIR/fs-ops.sh" "$root/nested/"
	# the orchestrators case's data (tests/system/orchestrators/README.md)
	mkdir -p "$root/nested/orchestrators" && cp "$NESTED_DIR"/../orchestrators/*.seq "$root/nested/orchestrators/"
	nested_cpio "$root" "$NESTED_OUT/l1.cpio.tmp" || return 1
	mv "$NESTED_OUT/l1.cpio.tmp" "$(nested_l1_cpio)"
	rm -rf "$root"
}

nested_build() {
	local kernel release b
	kernel=$(nested_kernel)
	[[ -n $kernel ]] || { echo "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)" >&2; return 77; }
	[[ -r $kernel ]] || { echo "$kernel is not readable (run as root)" >&2; return 77; }
	release=${kernel#/boot/vmlinuz-}
	for b in qemu-system-x86_64 cpio mkfs.ext4 e2fsck debugfs curl ethtool /usr/sbin/ip; do
		command -v "$b" >/dev/null || { echo "no $b (scripts/deps.sh installs it)" >&2; return 77; }
	done
	if [[ ! -x /bin/busybox ]] || readelf -l /bin/busybox | grep -q 'program interpreter'; then
		echo "no static /bin/busybox (apt-get install busybox-static)" >&2
		return 77
	fi
	for b in isola isola-blk isola-rng nettest vsockpeer kvm-keeper; do
		[[ -x $NESTED_ROOT/build/$b ]] || { echo "no build/$b: run make first" >&2; return 1; }
	done
	mkdir -p "$NESTED_OUT" || return 1
	nested_build_l2 "$release" >&2 || { echo "building L2's initramfs and rootfs failed" >&2; return 1; }
	nested_build_l1 "$release" "$kernel" >&2 || { echo "building L1's initramfs failed" >&2; return 1; }
	echo "$kernel $(nested_l1_cpio)"
}

# nested_build_for_test: for the system tests (tests/lib.sh sourced): sets
# KERNEL and L1_CPIO, or skips or fails with the reason
nested_build_for_test() {
	local built st
	command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
	built=$(nested_build)
	st=$?
	((st == 77)) && skip "cannot build the nested guests: see above"
	((st)) && fail "cannot build the nested guests: see above"
	read -r KERNEL L1_CPIO <<<"$built"
}
