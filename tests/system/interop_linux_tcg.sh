#!/bin/bash
# Interop (a), issue 4 item 8: a real Linux virtio driver stack against our
# device servers.  Debian's cloud kernel runs under QEMU TCG (no KVM needed)
# with QEMU's vhost-user front-ends:
#   vhost-user-blk-pci -> build/isola-blk --id interop-rw   (64 MiB, random)
#   vhost-user-blk-pci -> build/isola-blk --id interop-ro --readonly (8 MiB)
#   vhost-user-rng-pci -> build/isola-rng
# The initramfs (built here into build/interop/, cached by the hash of its
# inputs) carries busybox, the virtio and loop modules (modprobe
# --show-depends, decompressed), mke2fs/e2fsck with their libraries, a static
# BLKZEROOUT helper (interop/blkzeroout.c) and pattern files
# (interop/linux_disk.py, which also holds the disk layout).  Its /init
# (interop/linux_init.sh) finds the disks by serial (GET_ID), then:
#  - writable disk: mkfs.ext4 on a loop device at 16 MiB + mount + copy +
#    remount + compare + e2fsck; buffered and O_DIRECT dd writes of the
#    patterns (first and last sectors, odd and 1 MiB ranges), sync and fsync
#    (flush requests counted), every region read back buffered (page cache
#    dropped) and O_DIRECT; BLKDISCARD and BLKZEROOUT on written ranges,
#    which must then read back zeroes;
#  - read-only disk: F_RO seen, reads work (sha256, buffered and O_DIRECT),
#    buffered and direct writes fail (Linux refuses them itself with EPERM,
#    so they never reach isola-blk; its IOERR for writes is what blk_ro
#    checks in interop_qemu_frontend.sh);
#  - /dev/hwrng (virtio_rng current): 2 x 4 KiB, not all zero, different.
# The host then checks: QEMU powered off, no guest FAIL and the key PASS
# lines, the image byte for byte (patterns where written, zeroes where
# discarded or zeroed, everything else but the ext4 region unchanged), the
# ext4 region with e2fsck -fn and debugfs (the copied busybox), the
# read-only image unchanged and equal to what the guest read, both isola-blk
# and isola-rng alive with no warning or error logged.
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
SELF=$(realpath "$0")
cd "$ISOLA_ROOT" || exit 1
HERE=tests/system/interop
OUT=build/interop
SECTORS=131072 # linux_disk.py SECTORS
RO_SECTORS=16384

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
"$QEMU" -device help 2>/dev/null | grep -q '"vhost-user-rng-pci"' ||
	skip "$QEMU has no vhost-user-rng-pci device, so isola-rng cannot be checked (QEMU >= 8.2 has it)"
DEBUGFS=$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs) ||
	skip "no debugfs to read the guest's ext4 from the host (apt-get install e2fsprogs)"
for b in build/isola-blk build/isola-rng; do
	[[ -x $b ]] || fail "no $b (make all)"
done
KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
[[ -n $KERNEL ]] || skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
[[ -r $KERNEL ]] || skip "$KERNEL is not readable (Debian installs it mode 0600; run as root)"
RELEASE=$(basename "$KERNEL" | sed 's/^vmlinuz-//')
MODPROBE=$(PATH=$PATH:/sbin:/usr/sbin command -v modprobe) || skip "no modprobe (apt-get install kmod)"
[[ -d /lib/modules/$RELEASE ]] || skip "no /lib/modules/$RELEASE for $KERNEL"
[[ -x /bin/busybox ]] && ! readelf -l /bin/busybox | grep -q 'program interpreter' ||
	skip "no static /bin/busybox (apt-get install busybox-static)"
E2FS=()
for b in mke2fs e2fsck; do
	p=$(PATH=$PATH:/sbin:/usr/sbin command -v $b) && E2FS+=("$p")
done
((${#E2FS[@]} == 2)) || { echo "note: no mke2fs/e2fsck on the host: no ext4 round trip"; E2FS=(); }

# modules: the modprobe --show-depends order, each once, decompressed
modules() {
	local m
	for m in virtio_pci virtio_blk virtio_rng loop; do
		"$MODPROBE" -S "$RELEASE" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++'
}

# build_initramfs: print the path of an up-to-date $OUT/initramfs.cpio.gz
build_initramfs() {
	local mods libs key root out=$OUT/initramfs.cpio.gz f base
	mods=$(modules) || return 1
	[[ -n $mods ]] || { echo "modprobe --show-depends found no virtio modules" >&2; return 1; }
	libs=""
	((${#E2FS[@]})) && libs=$(ldd "${E2FS[@]}" | awk '/=>/ { print $3 } /^\t\// { print $1 }' | sort -u)
	key=$({
		sha256sum /bin/busybox $mods ${E2FS[@]+"${E2FS[@]}"} $libs "$HERE/linux_init.sh" \
			"$HERE/linux_disk.py" "$HERE/blkzeroout.c" "$SELF" /etc/mke2fs.conf 2>/dev/null | cut -d' ' -f1
	} | sha256sum | cut -d' ' -f1)
	if [[ -f $out && $(cat "$OUT/initramfs.key" 2>/dev/null) == "$key" ]]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$OUT" || return 1
	root=$(mktemp -d "$OUT/root.XXXXXX") || return 1
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	cp "$HERE/linux_init.sh" "$root/init"
	chmod 755 "$root/init" "$root/bin/busybox"
	for f in $mods; do
		base=$(basename "$f")
		case $f in
		*.ko) cp "$f" "$root/lib/modules/$base" ;;
		*.ko.xz) xz -dc "$f" >"$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
		*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
		*.ko.gz) gzip -dc "$f" >"$root/lib/modules/${base%.gz}"; base=${base%.gz} ;;
		*) echo "unknown module format: $f" >&2; rm -rf "$root"; return 1 ;;
		esac || { rm -rf "$root"; return 1; }
		echo "$base" >>"$root/lib/modules/order"
	done
	if ((${#E2FS[@]})); then
		cp "${E2FS[@]}" "$root/sbin/"
		for f in $libs; do
			mkdir -p "$root$(dirname "$f")" && cp -L "$f" "$root$f" || { rm -rf "$root"; return 1; }
		done
		[[ -f /etc/mke2fs.conf ]] && cp /etc/mke2fs.conf "$root/etc/"
	fi
	python3 "$HERE/linux_disk.py" patterns "$root/patterns" || { rm -rf "$root"; return 1; }
	# BLKZEROOUT (busybox has none); without a static libc the guest uses dd
	gcc -static -O2 -Wall -Werror -o "$root/bin/blkzeroout" "$HERE/blkzeroout.c" 2>"$OUT/blkzeroout.err" ||
		echo "note: cannot build a static blkzeroout (no WRITE_ZEROES test): $(head -n 1 "$OUT/blkzeroout.err")" >&2
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -6n >"$out.tmp" || {
		rm -rf "$root" "$out.tmp"; return 1
	}
	rm -rf "$root"
	mv "$out.tmp" "$out" && echo "$key" >"$OUT/initramfs.key" && echo "$out"
}

interop_init interop-linux
start=$(date +%s.%N)
INITRAMFS=$(build_initramfs) || fail "cannot build the initramfs in $OUT"
echo "kernel: $KERNEL"
echo "initramfs: $INITRAMFS ($(stat -c %s "$INITRAMFS") bytes; modules: $(modules | xargs -n1 basename | xargs))"

head -c $((SECTORS * 512)) /dev/urandom >"$TMP/rw.img"
cp "$TMP/rw.img" "$TMP/rw.orig"
head -c $((RO_SECTORS * 512)) /dev/urandom >"$TMP/ro.img"
ro_sum=$(sha256sum <"$TMP/ro.img" | cut -d' ' -f1)
start_server "$TMP/rw.log" build/isola-blk --socket "$TMP/rw.sock" --image "$TMP/rw.img" --id interop-rw
RW_PID=$SERVER_PID
start_server "$TMP/ro.log" build/isola-blk --socket "$TMP/ro.sock" --image "$TMP/ro.img" --id interop-ro --readonly
RO_PID=$SERVER_PID

rng=(-chardev "socket,id=c2,path=$TMP/rng.sock" -device vhost-user-rng-pci,chardev=c2)
append="console=ttyS0 panic=-1 reboot=k rdinit=/init"
start_server "$TMP/rng.log" build/isola-rng --socket "$TMP/rng.sock"
RNG_PID=$SERVER_PID

qstart=$(date +%s.%N)
# -no-reboot: a panic (panic=-1) ends QEMU instead of looping.
bounded 100 "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev "socket,id=c0,path=$TMP/rw.sock" \
	-device vhost-user-blk-pci,chardev=c0,disable-legacy=on,num-queues=1 \
	-chardev "socket,id=c1,path=$TMP/ro.sock" \
	-device vhost-user-blk-pci,chardev=c1,disable-legacy=on,num-queues=1 \
	"${rng[@]}" \
	-serial "file:$TMP/console" -kernel "$KERNEL" -initrd "$INITRAMFS" -append "$append" \
	</dev/null >"$TMP/qemu.out" 2>&1
qst=$?
C=$TMP/console
echo "--- guest (INTEROP lines)"
grep -a '^INTEROP' "$C" | sed 's/^/    /'
echo "QEMU TCG boot to power-off: $(elapsed "$qstart") s"
if [[ -s $TMP/qemu.out ]]; then echo "--- qemu"; cat "$TMP/qemu.out"; fi
# isola-rng offers VHOST_USER_PROTOCOL_F_CONFIG, which QEMU's
# vhost-user-rng does not use: QEMU warns; anything else is an error.
grep -v 'supports VHOST_USER_PROTOCOL_F_CONFIG but QEMU does not' "$TMP/qemu.out" |
	grep -qiE 'error|warning' && bad "QEMU printed errors or warnings (above)"

# ---- the guest's verdict -------------------------------------------------------
((qst == 124)) && bad "QEMU did not power off within 100 s"
if ! grep -aq '^INTEROP DONE' "$C"; then
	echo "--- console (last 40 lines)"
	tail -n 40 "$C" | sed 's/^/    | /'
	bad "the guest did not finish (no 'INTEROP DONE')"
fi
[[ $qst == 0 ]] || bad "qemu-system-x86_64 exit status $qst, want 0 (poweroff -f)"
grep -aq '^INTEROP FAIL' "$C" && bad "the guest reported failures (INTEROP FAIL lines above)"
grep -aq '^INTEROP DONE pass=[0-9]* fail=0' "$C" || bad "the guest's DONE line does not say fail=0"
need=("read back first (direct)" "read back last (buffered)" "read back big_direct (direct)"
	"flush requests sent" "discard requests sent" "read back zeroed (zeroes after zeroout) (direct)"
	"is read-only (VIRTIO_BLK_F_RO)" "a direct write to read-only")
((${#E2FS[@]})) && need+=("e2fsck -fn: the filesystem is clean" "ext4 files read back after remount")
((${#rng[@]})) && need+=("/dev/hwrng: 2 x 4096 bytes, not zero, different")
for n in "${need[@]}"; do
	grep -a '^INTEROP PASS: ' "$C" | grep -qF "$n" ||
		bad "no guest PASS for '$n'"
done
grep -aE 'BUG:|WARNING:|Call Trace|blk_update_request|I/O error' "$C" | grep -v 'vdb\|interop-ro' |
	head -5 | sed 's/^/    | /' | grep . && bad "kernel warnings or I/O errors on the writable disk (above)"

# ---- the host's view ----------------------------------------------------------
python3 "$HERE/linux_disk.py" verify "$TMP/rw.img" "$TMP/rw.orig" || bad "the writable image (above)"
if ((${#E2FS[@]})); then
	read -r _ fs_start fs_sectors _ < <(python3 "$HERE/linux_disk.py" patterns "$TMP/pat" && grep '^fs ' "$TMP/pat/layout")
	dd if="$TMP/rw.img" of="$TMP/fs.img" bs=512 skip="$fs_start" count="$fs_sectors" status=none
	if "${E2FS[1]}" -fn "$TMP/fs.img" >"$TMP/fsck.out" 2>&1; then
		echo "ok   host e2fsck -fn on the guest's ext4: clean"
	else
		sed 's/^/    | /' "$TMP/fsck.out"; bad "host e2fsck -fn on the guest's ext4"
	fi
	if "$DEBUGFS" -R "dump /busybox $TMP/busybox.out" "$TMP/fs.img" >/dev/null 2>&1 &&
		cmp -s "$TMP/busybox.out" /bin/busybox; then
		echo "ok   host debugfs: /busybox in the guest's ext4 equals /bin/busybox"
	else
		bad "host debugfs: /busybox in the guest's ext4 is missing or differs"
	fi
fi
[[ $(sha256sum <"$TMP/ro.img" | cut -d' ' -f1) == "$ro_sum" ]] && echo "ok   read-only image unchanged" ||
	bad "the read-only image changed"
for k in ro-sha256 ro-sha256-direct; do
	got=$(grep -a "^INTEROP INFO $k " "$C" | tr -d '\r' | awk '{ print $4 }')
	[[ $got == "$ro_sum" ]] || bad "the guest read ${got:-nothing} from the read-only disk ($k), want $ro_sum"
done

# ---- the servers ---------------------------------------------------------------
server_ok "$RW_PID" "$TMP/rw.log" "isola-blk (interop-rw)"
server_ok "$RO_PID" "$TMP/ro.log" "isola-blk --readonly (interop-ro)"
[[ -n $RNG_PID ]] && server_ok "$RNG_PID" "$TMP/rng.log" "isola-rng"
echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: Linux $RELEASE drove isola-blk (rw, ro) and isola-rng through QEMU's vhost-user front-ends"
