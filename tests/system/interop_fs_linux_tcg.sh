#!/bin/bash
# Interop, issue 17 item 3: the reference run of the nested virtiofs case's
# guest script with QEMU as the front-end.  Debian's cloud kernel runs under
# QEMU TCG (no KVM needed) with QEMU's vhost-user-fs-pci on the same Debian
# virtiofsd isola starts (/usr/lib/qemu/virtiofsd, started here on a temp
# directory, sandbox=namespace), and the same initramfs (nested/build.sh
# nested_fs_initrd: busybox, Debian's virtiofs; l2-init isola.mode=fs,
# l2-lib.sh's l2_fs, nested/fs-ops.sh).  The same checks as the nested case
# (tests/system/nested/l1-fs.sh): the guest reads the host's file, makes
# fs_ops' tree and a big file, reads back past its page cache and
# unmounts; the host directory equals fs_ops run on a directory of the
# host's own, byte for byte, and the guest's view equals the host's; the
# host's tree and big file read in the guest, and the host's changes under
# the guest's mount seen by it (fs-ops.sh fs_host_prep, fs_host_change).
# At the issue's scale (TCG is quicker than the nested case's L2): FS_FILES=N
# small files (default 2000), FS_BIG_MIB=M for the big file (default 64).
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
source "$(dirname "$0")/nested/build.sh"
cd "$ISOLA_ROOT" || exit 1
FILES=${FS_FILES:-2000}
BIG_MIB=${FS_BIG_MIB:-64}
BUDGET=240 # QEMU's whole run, boot to power-off
VIRTIOFSD=/usr/lib/qemu/virtiofsd
export LC_ALL=C # fs_manifest's sort, as busybox's in the guest

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
"$QEMU" -device help 2>/dev/null | grep -q '"vhost-user-fs-pci"' ||
	skip "$QEMU has no vhost-user-fs-pci device"
[[ -x $VIRTIOFSD ]] || skip "no $VIRTIOFSD (apt-get install qemu-system-common)"
((EUID == 0)) || skip "virtiofsd's sandbox needs root"
KERNEL=$(nested_kernel)
[[ -n $KERNEL ]] || skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
[[ -r $KERNEL ]] || skip "$KERNEL is not readable (Debian installs it mode 0600; run as root)"
RELEASE=${KERNEL#/boot/vmlinuz-}
[[ -d /lib/modules/$RELEASE ]] || skip "no /lib/modules/$RELEASE for $KERNEL"
command -v modprobe >/dev/null || skip "no modprobe (apt-get install kmod)"
[[ -x /bin/busybox ]] && ! readelf -l /bin/busybox | grep -q 'program interpreter' ||
	skip "no static /bin/busybox (apt-get install busybox-static)"

interop_init interop-fs
start=$(date +%s.%N)
nested_fs_initrd "$RELEASE" "$TMP/fs.cpio.gz" || fail "cannot build the guest's initramfs"
SHARE=$TMP/share
WANT=$TMP/want
mkdir -p "$SHARE" "$WANT"
head -c 1M /dev/urandom >"$SHARE/from-host"
md5sum <"$SHARE/from-host" | cut -d' ' -f1 >"$SHARE/from-host.md5"
source tests/system/nested/fs-ops.sh
# host -> guest: the nested case's tree, big file and live/tree
fs_host_prep "$SHARE" "$FILES" "$BIG_MIB" || fail "cannot make the host's share"
HOST_TREE=$(fs_manifest "$SHARE/host" | md5sum | cut -d' ' -f1)
HOST_BIG="$(stat -c %s "$SHARE/host-big") $(md5sum <"$SHARE/host-big" | cut -d' ' -f1)"

"$VIRTIOFSD" --socket-path="$TMP/vfs.sock" -o source="$SHARE" -o sandbox=namespace \
	</dev/null >"$TMP/virtiofsd.log" 2>&1 &
VPID=$!
PIDS+=("$VPID")
for _ in $(seq 50); do [[ -S $TMP/vfs.sock ]] && break; sleep 0.1; done
[[ -S $TMP/vfs.sock ]] || fail "virtiofsd did not listen: $(cat "$TMP/virtiofsd.log")"

C=$TMP/console
: >"$C"
# at the guest's "fs host-turn": what it wrote, read while it has the share
# mounted, then the host's changes to live/tree (as L1 does in l1-fs.sh)
(
	for _ in $(seq $((BUDGET * 10))); do
		grep -q '^L2: fs at [0-9.]* host-turn' "$C" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '^L2: fs at [0-9.]* host-turn' "$C" || exit 0
	fs_manifest "$SHARE" >"$TMP/got.txt"
	echo "$(stat -c %s "$SHARE/big") $(md5sum <"$SHARE/big" | cut -d' ' -f1)" >"$TMP/big.txt"
	fs_host_change "$SHARE" && echo changed >"$TMP/drv"
) &
DRV=$!
PIDS+=("$DRV")
qstart=$(date +%s.%N)
bounded "$BUDGET" "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev "socket,id=c0,path=$TMP/vfs.sock" -device vhost-user-fs-pci,chardev=c0,tag=share \
	-serial "file:$C" -kernel "$KERNEL" -initrd "$TMP/fs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 reboot=k rdinit=/init isola.mode=fs isola.fstag=share isola.fsfiles=$FILES isola.fsbigmib=$BIG_MIB" \
	</dev/null >"$TMP/qemu.out" 2>&1
qst=$?
wait "$DRV"
echo "QEMU TCG boot to power-off: $(elapsed "$qstart") s"
echo "--- guest (L2: lines)"
grep -a '^L2: ' "$C" | tr -d '\r' | sed 's/^/    /'
if [[ -s $TMP/qemu.out ]]; then echo "--- qemu"; cat "$TMP/qemu.out"; fi

# ---- verdict: l1-fs.sh's checks ---------------------------------------------------
tr -d '\r' <"$C" >"$TMP/con"
c=$TMP/con
((qst == 124)) && bad "QEMU did not power off within $BUDGET s"
((qst == 0 || qst == 124)) || bad "qemu-system-x86_64 exit status $qst, want 0 (poweroff -f)"
grep -q '^L2: dmesg-clean' "$c" || bad "the guest's kernel log: $(grep '^L2: dmesg-bad' "$c" | head -n 3 | tr '\n' ' ')"
grep -q '^L2: fs driver virtio[0-9]' "$c" || bad "virtiofs never bound a device"
grep -q '^L2: fs mount-status 0$' "$c" || bad "mount -t virtiofs share failed"
read -r _ _ _ got _ wanted < <(grep '^L2: fs from-host ' "$c")
[[ -n ${got:-} && $got == "${wanted:-}" ]] && echo "ok   the guest read the host's file ($got)" ||
	bad "the guest read the host's file as ${got:-nothing}, want ${wanted:-?}"
[[ $(sed -n 's/^L2: fs at [0-9.]* host-tree //p' "$c") == "$HOST_TREE" ]] &&
	echo "ok   the guest's view of the host's tree ($((FILES + 7)) files) is the host's" ||
	bad "the guest's view of the host's tree is not the host's ($HOST_TREE)"
[[ $(sed -n 's/^L2: fs at [0-9.]* host-big //p' "$c") == "$HOST_BIG" ]] &&
	echo "ok   the host's $BIG_MIB MiB file: the same size and MD5 in the guest" ||
	bad "the host's big file: the guest read $(sed -n 's/^L2: fs at [0-9.]* host-big //p' "$c"), the host has $HOST_BIG"
grep -q '^L2: fs at [0-9.]* ops-status 0$' "$c" || bad "fs_ops failed in the guest"
grep -q '^L2: fs at [0-9.]* big-write-status 0$' "$c" || bad "the guest's big file write or fsync failed"
grep -q '^L2: fs sync-status 0$' "$c" || bad "syncfs failed in the guest"
grep -q '^L2: fs umount-status 0$' "$c" && echo "ok   umount clean" || bad "umount failed in the guest"
fs_ops "$WANT" "$FILES" || bad "fs_ops failed on the host"
fs_manifest "$WANT" >"$TMP/want.txt"
[[ -e $TMP/got.txt ]] || bad "the guest never said host-turn"
if cmp -s "$TMP/want.txt" "$TMP/got.txt"; then
	echo "ok   the host directory, read while the guest had it mounted, equals fs_ops' tree ($(grep -c '^[df] ' "$TMP/got.txt") names), byte for byte"
else
	bad "the host directory differs: $(diff -u "$TMP/want.txt" "$TMP/got.txt" | grep '^[-+][^-+]' | head -n 3 | tr '\n' ' ')"
fi
l2m=$(sed -n 's/^L2: fs at [0-9.]* manifest //p' "$c")
[[ $l2m == "$(md5sum <"$TMP/got.txt" | cut -d' ' -f1)" ]] && echo "ok   the guest's view of the tree is the host's" ||
	bad "the guest's view of the tree (manifest ${l2m:-none}) is not the host's"
read -r _ _ _ bsize bsum < <(grep '^L2: fs big ' "$c")
read -r hsize hsum <"$TMP/big.txt"
[[ ${bsize:-} == $((BIG_MIB << 20)) && ${hsize:-} == $((BIG_MIB << 20)) && ${bsum:-} == "${hsum:-}" ]] &&
	echo "ok   the $BIG_MIB MiB file: the same size and MD5 in the guest and on the host" ||
	bad "the $BIG_MIB MiB file: guest ${bsize:-?} bytes ${bsum:-?}, host ${hsize:-?} bytes ${hsum:-?}"
want_live="done $(fs_manifest "$SHARE/live" | md5sum | cut -d' ' -f1)"
[[ $(cat "$TMP/drv" 2>/dev/null) == changed && $(sed -n 's/^L2: fs at [0-9.]* live //p' "$c") == "$want_live" ]] &&
	echo "ok   the host's changes to live/tree under the guest's mount seen by the guest (cache=auto)" ||
	bad "the guest's view of live/tree after the host changed it ($(sed -n 's/^L2: fs at [0-9.]* live //p' "$c")) is not the host's ($want_live)"
echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: Linux $RELEASE's virtiofs through QEMU's vhost-user-fs-pci to Debian's virtiofsd: the nested virtiofs case's script, the same checks"
