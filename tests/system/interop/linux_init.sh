#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the interop initramfs (tests/system/interop_linux_tcg.sh): Linux's
# own virtio drivers against isola-blk and isola-rng behind QEMU's vhost-user
# front-ends.  Prints "INTEROP PASS: <what>" / "INTEROP FAIL: <what>: <why>"
# and "INTEROP INFO <key> <value>" lines, then "INTEROP DONE pass=P fail=F",
# and powers off.  Disks are found by serial (isola-blk --id): interop-rw
# (writable, 64 MiB) and interop-ro (--readonly).
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mkdir -p /proc /sys /dev /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 0 >/proc/sys/kernel/printk_ratelimit 2>/dev/null

PASSES=0 FAILS=0
pass() { PASSES=$((PASSES + 1)); echo "INTEROP PASS: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "INTEROP FAIL: $*"; }
info() { echo "INTEROP INFO $*"; }
# check WHAT COMMAND...: pass if the command succeeds, else fail with its output
check() {
	what=$1
	shift
	if out=$("$@" 2>&1); then pass "$what"; return 0; fi
	fail "$what: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	return 1
}
finish() {
	echo "INTEROP DONE pass=$PASSES fail=$FAILS"
	sync
	poweroff -f
}

# ---- modules (lib/modules/order: modprobe --show-depends order) -------------
while read -r ko; do
	insmod "/lib/modules/$ko" || fail "insmod $ko"
done </lib/modules/order

# find_disk SERIAL: the vdX whose virtio-blk GET_ID is SERIAL (waits up to 10 s)
find_disk() {
	for _ in $(seq 100); do
		for d in /sys/block/vd*; do
			[ -e "$d/serial" ] && [ "$(cat "$d/serial")" = "$1" ] && { basename "$d"; return 0; }
		done
		sleep 0.1
	done
	return 1
}
RW=$(find_disk interop-rw) || { fail "no virtio-blk disk with serial interop-rw (GET_ID)"; finish; }
RO=$(find_disk interop-ro) || { fail "no virtio-blk disk with serial interop-ro (GET_ID)"; finish; }
pass "disks found by GET_ID serial: interop-rw=$RW interop-ro=$RO"
info rw-size "$(cat /sys/block/$RW/size)"
info ro-size "$(cat /sys/block/$RO/size)"
info rw-write-cache "$(cat /sys/block/$RW/queue/write_cache)"
info rw-max-sectors-kb "$(cat /sys/block/$RW/queue/max_sectors_kb)"
info rw-discard-max-bytes "$(cat /sys/block/$RW/queue/discard_max_bytes)"
info rw-mq-queues "$(ls /sys/block/$RW/mq | wc -l)"
[ "$(cat /sys/block/$RW/ro)" = 0 ] && pass "$RW is writable" || fail "$RW is read-only"
[ "$(cat /sys/block/$RW/queue/write_cache)" = "write back" ] &&
	pass "$RW: VIRTIO_BLK_F_FLUSH negotiated (write back cache)" ||
	fail "$RW: write cache is '$(cat /sys/block/$RW/queue/write_cache)', want 'write back' (F_FLUSH)"

# disk_stat DEV FIELD: /sys/block/DEV/stat field (1-based; 12 discard I/Os,
# 16 flush I/Os: Documentation/block/stat.rst)
disk_stat() { awk -v f="$2" '{ print $f }' "/sys/block/$1/stat"; }

# ---- ext4 round trip on a loop device inside the disk ------------------------
# layout "fs START SECTORS": the loop device starts there; mke2fs gets the size.
read -r _ FS_START FS_SECTORS _ <<EOF
$(grep '^fs ' /patterns/layout)
EOF
if [ -x /sbin/mke2fs ] && [ -x /sbin/e2fsck ]; then
	LOOP=/dev/loop0
	if check "losetup $LOOP at sector $FS_START of $RW" \
		losetup -o $((FS_START * 512)) $LOOP /dev/$RW; then
		# No lazy init: no ext4lazyinit writes after the test is done.
		# /sbin/: busybox's own mke2fs applet is in /bin.
		check "mkfs.ext4 ($((FS_SECTORS / 2048)) MiB)" /sbin/mke2fs -t ext4 -q -F -b 4096 \
			-E lazy_itable_init=0,lazy_journal_init=0 $LOOP $((FS_SECTORS * 512 / 4096))
		if check "mount ext4" mount -t ext4 $LOOP /mnt; then
			check "copy busybox and the patterns into ext4" sh -c \
				"mkdir /mnt/patterns && cp /bin/busybox /mnt/ && cp /patterns/* /mnt/patterns/ && sync"
			check "umount ext4" umount /mnt
		fi
		echo 3 >/proc/sys/vm/drop_caches
		if check "remount ext4 read-only" mount -t ext4 -o ro $LOOP /mnt; then
			ok=1
			cmp /bin/busybox /mnt/busybox || ok=0
			for f in /patterns/*; do cmp "$f" "/mnt/patterns/${f##*/}" || ok=0; done
			[ $ok = 1 ] && pass "ext4 files read back after remount" ||
				fail "ext4 files differ after remount"
			umount /mnt
		fi
		check "e2fsck -fn: the filesystem is clean" /sbin/e2fsck -fn $LOOP
		losetup -d $LOOP
	fi
else
	info ext4 "no mke2fs/e2fsck in the initramfs: skipped"
fi

# ---- patterns: buffered and O_DIRECT writes, flush, read back both ways -------
# /patterns/layout: "name sector count mode bs"; discard/zeroout regions are
# written O_DIRECT here and discarded / zeroed below.
flush0=$(disk_stat $RW 16)
while read -r name sector count mode bs; do
	[ "$mode" = loop ] && continue
	flag=seek_bytes,direct
	[ "$mode" = buffered ] && flag=seek_bytes
	check "write $name ($mode, sectors $sector+$count, $bs bytes per write)" \
		dd if=/patterns/$name of=/dev/$RW bs=$bs seek=$((sector * 512)) \
		count=$((count * 512 / bs)) oflag=$flag conv=notrunc status=none
done </patterns/layout
check "sync" sync
check "fsync /dev/$RW" dd if=/dev/null of=/dev/$RW conv=notrunc,fsync status=none
flushes=$(($(disk_stat $RW 16) - flush0))
info rw-flushes "$flushes"
[ "$flushes" -gt 0 ] && pass "$RW: flush requests sent ($flushes)" ||
	fail "$RW: no flush request reached the device"

# read_back NAME SECTOR COUNT BS WANT: the region, buffered (from a dropped
# page cache) and O_DIRECT, must equal the file WANT
read_back() {
	echo 3 >/proc/sys/vm/drop_caches
	for how in buffered direct; do
		flag=skip_bytes
		[ $how = direct ] && flag=skip_bytes,direct
		rm -f /tmp/rb
		if dd if=/dev/$RW of=/tmp/rb bs=$4 skip=$(($2 * 512)) count=$(($3 * 512 / $4)) \
			iflag=$flag status=none && cmp -s /tmp/rb "$5"; then
			pass "read back $1 ($how)"
		else
			fail "read back $1 ($how): $(cmp /tmp/rb "$5" 2>&1 | head -n 1)"
		fi
	done
}
while read -r name sector count mode bs; do
	[ "$mode" = loop ] || read_back "$name" $sector $count $bs /patterns/$name
done </patterns/layout

# ---- DISCARD and WRITE_ZEROES --------------------------------------------------
info rw-discard-granularity "$(cat /sys/block/$RW/queue/discard_granularity)"
info rw-write-zeroes-max-bytes "$(cat /sys/block/$RW/queue/write_zeroes_max_bytes)"
[ "$(cat /sys/block/$RW/queue/write_zeroes_max_bytes)" -gt 0 ] &&
	pass "$RW: VIRTIO_BLK_F_WRITE_ZEROES negotiated" || fail "$RW: write_zeroes_max_bytes is 0"
discards0=$(disk_stat $RW 12)
while read -r name sector count mode bs; do
	case $mode in
	discard)
		check "BLKDISCARD $name (sectors $sector+$count)" \
			blkdiscard -o $((sector * 512)) -l $((count * 512)) /dev/$RW
		;;
	zeroout)
		if [ -x /bin/blkzeroout ]; then
			check "BLKZEROOUT $name (sectors $sector+$count)" \
				blkzeroout /dev/$RW $((sector * 512)) $((count * 512))
		else
			info zeroout "no /bin/blkzeroout (no static gcc on the host): dd from /dev/zero"
			check "zero $name with dd" dd if=/dev/zero of=/dev/$RW bs=512 seek=$sector \
				count=$count oflag=direct conv=notrunc status=none
		fi
		;;
	*) continue ;;
	esac
	dd if=/dev/zero of=/tmp/zero bs=512 count=$count status=none
	read_back "$name (zeroes after $mode)" $sector $count $bs /tmp/zero
done </patterns/layout
discards=$(($(disk_stat $RW 12) - discards0))
info rw-discards "$discards"
[ "$discards" -gt 0 ] && pass "$RW: discard requests sent ($discards)" ||
	fail "$RW: no discard request reached the device"
check "fsync /dev/$RW after discard and zero-out" dd if=/dev/null of=/dev/$RW conv=notrunc,fsync status=none
info rw-stat "$(cat /sys/block/$RW/stat)"

# ---- the read-only disk ------------------------------------------------------
[ "$(cat /sys/block/$RO/ro)" = 1 ] && pass "$RO is read-only (VIRTIO_BLK_F_RO)" ||
	fail "$RO: /sys/block/$RO/ro is $(cat /sys/block/$RO/ro), want 1"
info ro-sha256 "$(sha256sum </dev/$RO | cut -d' ' -f1)"
echo 3 >/proc/sys/vm/drop_caches
info ro-sha256-direct "$(dd if=/dev/$RO bs=65536 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
ro_writes0=$(disk_stat $RO 5)
for how in buffered direct; do
	flag=""
	[ $how = direct ] && flag="oflag=direct"
	if out=$(dd if=/patterns/first of=/dev/$RO bs=4096 count=1 $flag conv=notrunc,fsync 2>&1); then
		fail "a $how write to read-only $RO succeeded"
	else
		pass "a $how write to read-only $RO fails: $(echo "$out" | head -n 1)"
	fi
done
# Past the kernel's own check: writes that reach the device must fail too.
if blockdev --setrw /dev/$RO 2>/dev/null && [ "$(cat /sys/block/$RO/ro)" = 0 ]; then
	if out=$(dd if=/patterns/first of=/dev/$RO bs=4096 count=1 oflag=direct 2>&1); then
		fail "a direct write to $RO after blockdev --setrw succeeded"
	else
		pass "a direct write to $RO after blockdev --setrw fails: $(echo "$out" | head -n 1)"
	fi
	blockdev --setro /dev/$RO
else
	info ro-setrw "the kernel keeps $RO read-only (blockdev --setrw has no effect): writes never reach the device"
fi
info ro-write-requests "$(($(disk_stat $RO 5) - ro_writes0))"

# ---- virtio-rng --------------------------------------------------------------
for _ in $(seq 50); do [ -c /dev/hwrng ] && break; sleep 0.1; done
cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
info rng-current "$cur"
info rng-available "$(cat /sys/class/misc/hw_random/rng_available 2>/dev/null)"
case $cur in
virtio_rng*) pass "hw_random uses virtio_rng" ;;
*) fail "hw_random rng_current is '$cur', want virtio_rng.N" ;;
esac
rng_ok=1
for i in 1 2; do
	timeout 20 dd if=/dev/hwrng of=/tmp/rng$i bs=4096 count=1 iflag=fullblock status=none || rng_ok=0
	[ "$(stat -c %s /tmp/rng$i 2>/dev/null)" = 4096 ] || rng_ok=0
done
if [ $rng_ok = 0 ]; then
	fail "read 2 x 4096 bytes from /dev/hwrng"
elif [ "$(tr -d '\000' </tmp/rng1 | wc -c)" = 0 ]; then
	fail "/dev/hwrng gave 4096 zero bytes"
elif cmp -s /tmp/rng1 /tmp/rng2; then
	fail "/dev/hwrng gave the same 4096 bytes twice"
else
	pass "/dev/hwrng: 2 x 4096 bytes, not zero, different"
	info rng-distinct-bytes "$(od -An -tx1 -v /tmp/rng1 | tr ' ' '\n' | grep . | sort -u | wc -l)"
fi

finish
