#!/bin/bash
# A test of our test fixture: boot the same Debian kernel + busybox initramfs
# that linux_boot.sh uses under QEMU's software CPU (TCG, no KVM at all) and
# expect the initramfs's marker "ISOLA-LINUX-OK <release>" and a clean
# power-off.  If this passes and linux_boot.sh fails on real KVM, the VMM is
# at fault, not the initramfs.
set -u
source "$(dirname "$0")/../lib.sh"

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
paths=$(bash "$ISOLA_ROOT/tests/system/linux_boot.sh" --paths)
st=$?
((st == 77)) && skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
((st)) && fail "linux_boot.sh --paths failed (status $st)"
read -r KERNEL INITRAMFS <<<"$paths"
release=$(basename "$KERNEL" | sed 's/^vmlinuz-//')

TMP=$(mktemp -d /tmp/isola-tcg.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "kernel: $KERNEL"
echo "initramfs: $INITRAMFS"
start=$(date +%s.%N)
# -no-reboot: a panic (panic=-1) or reboot ends QEMU instead of looping.
timeout 120 "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial "file:$TMP/console" \
	-kernel "$KERNEL" -initrd "$INITRAMFS" \
	-append "console=ttyS0 panic=-1 reboot=k rdinit=/init" \
	</dev/null >"$TMP/out" 2>&1
got=$?
end=$(date +%s.%N)
echo "--- console (last 40 lines)"
tail -n 40 "$TMP/console" 2>/dev/null
echo "--- qemu"
cat "$TMP/out"
awk -v a="$start" -v b="$end" 'BEGIN { printf "TCG boot to power-off: %.2f s\n", b - a }'
((got == 124)) && fail "QEMU TCG did not power off within 120 s"
grep -q "^ISOLA-LINUX-OK $release" "$TMP/console" ||
	fail "no 'ISOLA-LINUX-OK $release' on the console"
grep -q 'reboot: Power down' "$TMP/console" ||
	fail "the guest did not power off (no 'reboot: Power down')"
expect_status 0 "$got" "qemu-system-x86_64 after poweroff -f"
echo "PASS: the initramfs boots Linux $release to /init and powers off under TCG"
