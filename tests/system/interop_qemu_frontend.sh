#!/bin/bash
# Interop (b), issue 4 item 8: QEMU as the vhost-user front-end of our
# device servers, under KVM (`-cpu host,-arch-capabilities`: QEMU 7.2 cannot
# set that MSR on this PVM host), with the test guests:
#   1. blk_rw (MSI-X, indirect, 2 queues offered) on build/isola-blk, then
#      the image checked from the host (interop/blk_rw_image.py): every
#      pattern region the guest printed, zeroes where it wrote zeroes, the
#      rest unchanged;
#   2. blk_rw again on the same server (poll, no_indirect): a second
#      front-end connection, the image restored in place and checked again;
#   3. blk_ro on isola-blk --readonly: status 1, the image unchanged;
#   4. rng on isola-rng, if QEMU has vhost-user-rng-pci.
# Each guest must exit with status 1 (ISOLA_GUEST_PASS) and print no FAIL
# line; the servers must be alive afterwards with nothing wrong logged.
# servers_sandbox.sh runs the same guests under TCG; this is the KVM run.
# If KVM cannot run a QEMU guest here, the test says why and uses TCG.
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
cd "$ISOLA_ROOT" || exit 1
SECTORS=16384

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
"$QEMU" -device help 2>/dev/null | grep -q '"vhost-user-rng-pci"' ||
	skip "$QEMU has no vhost-user-rng-pci device, so isola-rng cannot be checked (QEMU >= 8.2 has it)"
for b in build/isola-blk build/isola-rng; do
	[[ -x $b ]] || fail "no $b (make all)"
done
for g in hello blk_rw blk_ro rng; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf (make guests)"
done
interop_init interop-qemu
start=$(date +%s.%N)

# qemu_run ACCEL CONSOLE ARGS...: a test guest with 256 MiB of shared memory
qemu_run() {
	local accel=$1 console=$2 cpu=max
	shift 2
	[[ $accel == kvm ]] && cpu=host,-arch-capabilities
	bounded 60 "$QEMU" -M "q35,accel=$accel" -cpu "$cpu" -m 256M -smp 1 \
		-nodefaults -no-user-config -display none -no-reboot -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		"$@" </dev/null >"$console" 2>&1
}

# KVM probe: any status from the debug-exit port (1 or 3) means guest code ran.
ACCEL=kvm
if [[ ! -w /dev/kvm ]]; then
	echo "note: /dev/kvm is not usable here: falling back to TCG"
	ACCEL=tcg
else
	qemu_run kvm "$TMP/probe.txt" -kernel "$GUESTS/hello.elf"
	st=$?
	if [[ $st != 1 && $st != 3 ]]; then
		echo "note: QEMU cannot run a guest with accel=kvm -cpu host,-arch-capabilities" \
			"(status $st):"
		tail -n 5 "$TMP/probe.txt" | sed 's/^/    | /'
		echo "note: falling back to TCG"
		ACCEL=tcg
	fi
fi
echo "accel: $ACCEL"

# guest NAME SOCKET DEVICE GUEST APPEND: run it, want status 1, no FAIL line
# and the guest's own verdict line
guest() {
	local name=$1 sock=$2 device=$3 g=$4 append=$5 console=$TMP/$1.txt t0
	t0=$(date +%s.%N)
	qemu_run "$ACCEL" "$console" -chardev "socket,id=c0,path=$sock" -device "$device,chardev=c0" \
		-kernel "$GUESTS/$g.elf" -append "$append"
	local st=$?
	if [[ $st != 1 ]] || grep -aq '^FAIL' "$console" || ! grep -aq '^isola-guest: PASS' "$console"; then
		bad "$name: QEMU $device + $g: status $st (want 1 and an isola-guest: PASS line):"
		grep -a -E '^(FAIL|isola-guest)|rror|qemu' "$console" | head -20 | sed 's/^/    | /'
		return 1
	fi
	echo "ok   $name: QEMU ($ACCEL) $device + $g: status 1, $(grep -ac '^PASS' "$console") PASS lines, $(elapsed "$t0") s"
}

# ---- isola-blk, read-write -------------------------------------------------------
img=$TMP/disk.img
head -c $((SECTORS * 512)) /dev/urandom >"$img"
cp "$img" "$TMP/disk.orig"
start_server "$TMP/blk.log" build/isola-blk --socket "$TMP/blk.sock" --image "$img" --id disk0 --queues 2
BLK_PID=$SERVER_PID
if guest blk_rw "$TMP/blk.sock" vhost-user-blk-pci,disable-legacy=on,num-queues=2 blk_rw \
	"sectors=$SECTORS id=disk0"; then
	python3 tests/system/interop/blk_rw_image.py "$TMP/blk_rw.txt" "$img" "$TMP/disk.orig" ||
		bad "blk_rw: the image (above)"
fi
cp "$TMP/disk.orig" "$img" # in place: the server keeps its fds
if guest blk_rw_poll "$TMP/blk.sock" vhost-user-blk-pci,disable-legacy=on blk_rw \
	"sectors=$SECTORS id=disk0 poll no_indirect"; then
	python3 tests/system/interop/blk_rw_image.py "$TMP/blk_rw_poll.txt" "$img" "$TMP/disk.orig" ||
		bad "blk_rw_poll: the image (above)"
fi
server_ok "$BLK_PID" "$TMP/blk.log" "isola-blk (2 front-ends in a row)"

# ---- isola-blk --readonly --------------------------------------------------------
ro=$TMP/ro.img
head -c $((SECTORS * 512)) /dev/urandom >"$ro"
ro_sum=$(sha256sum <"$ro")
start_server "$TMP/ro.log" build/isola-blk --socket "$TMP/ro.sock" --image "$ro" --id ro0 --readonly
RO_PID=$SERVER_PID
guest blk_ro "$TMP/ro.sock" vhost-user-blk-pci,disable-legacy=on blk_ro ""
[[ $(sha256sum <"$ro") == "$ro_sum" ]] && echo "ok   blk_ro: the read-only image is unchanged" ||
	bad "blk_ro: the read-only image changed"
server_ok "$RO_PID" "$TMP/ro.log" "isola-blk --readonly"

# ---- isola-rng -------------------------------------------------------------------
start_server "$TMP/rng.log" build/isola-rng --socket "$TMP/rng.sock"
RNG_PID=$SERVER_PID
guest rng "$TMP/rng.sock" vhost-user-rng-pci rng ""
server_ok "$RNG_PID" "$TMP/rng.log" "isola-rng"

echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: QEMU ($ACCEL) drove isola-blk (rw twice, ro) and isola-rng with the test guests"
