#!/bin/bash
# Linux boot: Debian's cloud kernel + a busybox initramfs built here.
#
#   linux_boot.sh                 the test: boot, expect "ISOLA-LINUX-OK <release>"
#                                 on the console and exit status 0 (ACPI S5)
#   linux_boot.sh --interactive   boot with the console on stdio and a busybox
#                                 shell as /init (make linux); Ctrl-A x quits
#   linux_boot.sh --paths         build the initramfs, print "KERNEL INITRAMFS"
#                                 (used by linux_initramfs_tcg.sh)
#
# The initramfs is cached in build/linux/ and rebuilt when /bin/busybox or
# the /init below changes.  Its /init mounts proc, sys and dev, prints the
# marker and powers off (`poweroff -f`), unless the command line says
# isola.shell, in which case it runs a shell first.
#
# On PVM (software KVM, /sys/module/kvm_pvm) a stock kernel cannot finish
# booting (design.md), so the test only checks that isola accepts the real
# bzImage and starts the VM (--timeout 5 must end in status 8, not 2 or 6),
# then skips.
set -u
source "$(dirname "$0")/../lib.sh"

MODE=test
case ${1:-} in
--interactive) MODE=interactive ;;
--paths) MODE=paths ;;
"") ;;
*) echo "usage: $0 [--interactive | --paths]" >&2; exit 2 ;;
esac

OUT=$ISOLA_ROOT/build/linux
MARKER=ISOLA-LINUX-OK
# reboot=k: a reboot (e.g. after a panic, panic=-1) goes through the i8042,
# so isola exits with status 4 at once instead of the test waiting.
CMDLINE="console=ttyS0 panic=-1 reboot=k rdinit=/init"
MEMORY=512M

INIT_SCRIPT='#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "ISOLA-LINUX-OK $(uname -r)"
if grep -qw isola.shell /proc/cmdline; then
	echo "busybox shell; exit it (or Ctrl-A x) to stop the VM"
	setsid cttyhack sh -l
fi
poweroff -f
'

# newest Debian cloud kernel, or nothing
find_kernel() {
	local k
	k=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
	[[ -n $k ]] && echo "$k"
}

# build_initramfs: print the path of an up-to-date build/linux/initramfs.cpio.gz
build_initramfs() {
	local bb=/bin/busybox key root out=$OUT/initramfs.cpio.gz
	[[ -x $bb ]] || { echo "no /bin/busybox (apt-get install busybox-static)" >&2; return 77; }
	if readelf -l "$bb" 2>/dev/null | grep -q 'program interpreter'; then
		echo "/bin/busybox is dynamically linked (apt-get install busybox-static)" >&2
		return 77
	fi
	key=$({ sha256sum "$bb" | cut -d' ' -f1; printf '%s' "$INIT_SCRIPT" | sha256sum; } | sha256sum | cut -d' ' -f1)
	if [[ -f $out && $(cat "$OUT/initramfs.key" 2>/dev/null) == "$key" ]]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$OUT" || return 1
	root=$(mktemp -d "$OUT/root.XXXXXX") || return 1
	mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/root"
	cp "$bb" "$root/bin/busybox"
	printf '%s' "$INIT_SCRIPT" >"$root/init"
	chmod 755 "$root/init" "$root/bin/busybox"
	# No device nodes needed: the kernel's built-in initramfs already has
	# /dev/console, and /init mounts devtmpfs.
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out.tmp" || {
		rm -rf "$root" "$out.tmp"; return 1
	}
	rm -rf "$root"
	mv "$out.tmp" "$out" && echo "$key" >"$OUT/initramfs.key" && echo "$out"
}

KERNEL=$(find_kernel)
if [[ -z $KERNEL ]]; then
	[[ $MODE == paths ]] && { echo "no Debian cloud kernel in /boot" >&2; exit 77; }
	skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
fi
[[ -r $KERNEL ]] || skip "$KERNEL is not readable (Debian installs it mode 0600; run as root)"
INITRAMFS=$(build_initramfs)
st=$?
if ((st == 77)); then
	skip "cannot build the initramfs: see above"
elif ((st)); then
	fail "cannot build the initramfs in $OUT"
fi

if [[ $MODE == paths ]]; then
	echo "$KERNEL $INITRAMFS"
	exit 0
fi

if [[ $MODE == interactive ]]; then
	[[ -x $ISOLA ]] || { echo "no $ISOLA; run make first" >&2; exit 2; }
	if is_pvm; then
		echo "warning: /dev/kvm is PVM (software KVM): Linux will not finish booting here;" >&2
		echo "         press Ctrl-A x to stop the VM." >&2
	fi
	echo "booting $KERNEL (Ctrl-A x stops the VM)" >&2
	exec "$ISOLA" run --kernel "$KERNEL" --initrd "$INITRAMFS" --memory "$MEMORY" \
		--cmdline "$CMDLINE isola.shell" --console stdio
fi

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
TMP=$(mktemp -d /tmp/isola-linux.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "kernel: $KERNEL"
echo "initramfs: $INITRAMFS ($(stat -c %s "$INITRAMFS") bytes)"

if is_pvm; then
	# Loader path only: the bzImage must be parsed and the VM started.
	"$ISOLA" run --kernel "$KERNEL" --initrd "$INITRAMFS" --memory "$MEMORY" \
		--cmdline "$CMDLINE" --console "file:$TMP/console" --timeout 5 \
		</dev/null >"$TMP/out" 2>"$TMP/err"
	got=$?
	cat "$TMP/err"
	[[ $got == 8 ]] || {
		echo "--- console"; head -c 4000 "$TMP/console" 2>/dev/null
		fail "isola did not run $KERNEL for 5 s: exit status $got, want 8 (timeout)"
	}
	echo "isola accepted $KERNEL and ran it until --timeout 5"
	skip "/dev/kvm is PVM (software KVM): Linux guests do not finish booting here"
fi

start=$(date +%s.%N)
"$ISOLA" run --kernel "$KERNEL" --initrd "$INITRAMFS" --memory "$MEMORY" \
	--cmdline "$CMDLINE" --console "file:$TMP/console" --timeout 120 \
	</dev/null >"$TMP/out" 2>"$TMP/err"
got=$?
end=$(date +%s.%N)
echo "--- console (last 60 lines)"
tail -n 60 "$TMP/console" 2>/dev/null
echo "--- stderr"
cat "$TMP/err"
awk -v a="$start" -v b="$end" 'BEGIN { printf "boot to power-off: %.2f s\n", b - a }'
release=$(basename "$KERNEL" | sed 's/^vmlinuz-//')
grep -q "^$MARKER $release" "$TMP/console" ||
	fail "no '$MARKER $release' on the console"
expect_status 0 "$got" "Linux poweroff -f"
echo "PASS: Linux $release booted to /init and powered off"
