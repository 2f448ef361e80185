#!/bin/bash
# Interop, issue 14 item 3: Linux's own virtio-vsock driver against
# isola-vsock.  Debian's cloud kernel runs under QEMU TCG (no KVM needed)
# with QEMU's vhost-user-vsock-pci front-end on build/isola-vsock --cid 3
# --uds PATH (sandboxed, its default).  The guest's initramfs is the nested
# vsock case's (nested/build.sh nested_vsock_initrd: busybox, Debian's
# vmw_vsock_virtio_transport, build/vsockpeer; l2-init isola.mode=vsock,
# l2-lib.sh's l2_vsock).  The same checks as the nested case, scaled to TCG:
#   guest -> host  the guest connects to CID 2 port 5001, which isola-vsock
#                  joins to the host's listener on PATH_5001: VSOCK_MIB each
#                  way, checksummed
#   host -> guest  "CONNECT 5000" on PATH, "OK <port>": a stream of VSOCK_MIB
#                  each way, then 100 connections open at once (64 KiB each
#                  way each), all checksummed
#   backpressure   a connection the guest accepts and never reads: the host's
#                  writer, offered 256 MiB, blocks; isola-vsock's RSS stays
#                  bounded while it is held 5 s; a stream beside it completes
#   the guest's CID is the one isola-vsock answers (QEMU's vhost-user-vsock
#   reads the config space from the back-end); its kernel log is clean
# VSOCK_MIB=N: N MiB a stream (default 64, as the nested case: TCG moves
# ~100 MiB/s here, so the whole test takes ~15 s).
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
source "$(dirname "$0")/nested/build.sh"
cd "$ISOLA_ROOT" || exit 1
MIB=${VSOCK_MIB:-64}
CID=3
NOREAD_MAX_KIB=16384 # as nested/l1-vsock.sh: what "blocked" and "bounded" mean
RSS_GROWTH_MAX_KIB=16384
BUDGET=110 # QEMU's whole run, boot to power-off

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
"$QEMU" -device help 2>/dev/null | grep -q '"vhost-user-vsock-pci"' ||
	skip "$QEMU has no vhost-user-vsock-pci device"
[[ -x build/isola-vsock ]] || skip "no build/isola-vsock in this tree (issue 14)"
[[ -x build/vsockpeer ]] || fail "no build/vsockpeer (make all)"
KERNEL=$(nested_kernel)
[[ -n $KERNEL ]] || skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
[[ -r $KERNEL ]] || skip "$KERNEL is not readable (Debian installs it mode 0600; run as root)"
RELEASE=${KERNEL#/boot/vmlinuz-}
[[ -d /lib/modules/$RELEASE ]] || skip "no /lib/modules/$RELEASE for $KERNEL"
command -v modprobe >/dev/null || skip "no modprobe (apt-get install kmod)"
[[ -x /bin/busybox ]] && ! readelf -l /bin/busybox | grep -q 'program interpreter' ||
	skip "no static /bin/busybox (apt-get install busybox-static)"

interop_init interop-vsock
start=$(date +%s.%N)
nested_vsock_initrd "$RELEASE" "$TMP/vsock.cpio.gz" || fail "cannot build the guest's initramfs"
UDS=$TMP/v.sock
VP=build/vsockpeer

start_server "$TMP/vsock.log" build/isola-vsock --socket "$TMP/vu.sock" --cid "$CID" --uds "$UDS"
VSOCK_PID=$SERVER_PID
# the sandboxed server itself, pid 1 of its own pid namespace (the process
# start_server started is the sandbox's parent, which only waits)
for p in $(pgrep -P "$VSOCK_PID"); do
	grep -q '^NSpid:.*[[:space:]]1$' "/proc/$p/status" && SERVING_PID=$p
done
[[ -n ${SERVING_PID:-} ]] || fail "cannot find isola-vsock's sandboxed process (a child of $VSOCK_PID)"
# the host's listener for the guest's connections to CID 2 port 5001
"$VP" -p "host-serve: " serve "unix:${UDS}_5001" >"$TMP/hserve" 2>&1 &
HS_PID=$!
PIDS+=("$HS_PID")

C=$TMP/console
: >"$C"
qstart=$(date +%s.%N)
timeout "$BUDGET" "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev "socket,id=c0,path=$TMP/vu.sock" -device vhost-user-vsock-pci,chardev=c0 \
	-serial "file:$C" -kernel "$KERNEL" -initrd "$TMP/vsock.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 reboot=k rdinit=/init isola.mode=vsock isola.vsockmib=$MIB" \
	</dev/null >"$TMP/qemu.out" 2>&1 &
QEMU_PID=$!
PIDS+=("$QEMU_PID")

# ---- the host's side, while the guest runs -------------------------------------
D=$TMP/drv
: >"$D"
while ! grep -aq '^L2: vsock ready' "$C"; do
	kill -0 "$QEMU_PID" 2>/dev/null || break
	sleep 0.2
done
if grep -aq '^L2: vsock ready' "$C"; then
	echo "guest ready after $(elapsed "$qstart") s"
	echo "rss-start $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVING_PID/status")" >>"$D"
	"$VP" -p "h2g: " stream "hybrid:$UDS:5000" "$MIB" "$MIB" >>"$D" 2>&1
	echo "h2g-status $?" >>"$D"
	"$VP" -p "many: " stream "hybrid:$UDS:5000" 0.0625 0.0625 100 >>"$D" 2>&1
	echo "many-status $?" >>"$D"
	"$VP" -p "noread: " noread "hybrid:$UDS:5000" 256 5 "$SERVING_PID" >"$TMP/noread" 2>&1 &
	nr=$!
	for _ in $(seq 600); do
		grep -q '^noread: noread' "$TMP/noread" || ! kill -0 "$nr" 2>/dev/null && break
		sleep 0.1
	done
	"$VP" -p "beside: " stream "hybrid:$UDS:5000" 1 1 >>"$D" 2>&1
	echo "beside-status $?" >>"$D"
	wait "$nr"
	echo "noread-status $?" >>"$D"
	cat "$TMP/noread" >>"$D"
	"$VP" -p "quit: " quit "hybrid:$UDS:5000" >>"$D" 2>&1
else
	echo "the guest never said vsock ready" >>"$D"
fi
wait "$QEMU_PID"
qst=$?
"$VP" -p "quit: " quit "unix:${UDS}_5001" >/dev/null 2>&1
wait "$HS_PID"
echo "host-serve-status $?" >>"$TMP/hserve"
echo "QEMU TCG boot to power-off: $(elapsed "$qstart") s"
echo "--- guest (L2: lines)"
grep -a '^L2: ' "$C" | tr -d '\r' | sed 's/^/    /'
echo "--- host"
sed 's/^/    /' "$D" "$TMP/hserve"
if [[ -s $TMP/qemu.out ]]; then echo "--- qemu"; cat "$TMP/qemu.out"; fi

# ---- verdict ---------------------------------------------------------------------
tr -d '\r' <"$C" >"$TMP/con"
c=$TMP/con
((qst == 124)) && bad "QEMU did not power off within $BUDGET s"
((qst == 0 || qst == 124)) || bad "qemu-system-x86_64 exit status $qst, want 0 (poweroff -f)"
grep -iE 'error|warning' "$TMP/qemu.out" | grep -q . && bad "QEMU printed errors or warnings (above)"
grep -q '^L2: dmesg-clean' "$c" || bad "the guest's kernel log: $(grep '^L2: dmesg-bad' "$c" | head -n 3 | tr '\n' ' ')"
grep -q '^L2: vsock driver virtio[0-9]' "$c" || bad "vmw_vsock_virtio_transport never bound a device"
grep -q "^L2: vsock cid $CID\$" "$c" && echo "ok   the guest's CID is $CID (isola-vsock's config space)" ||
	bad "the guest's CID: $(grep '^L2: vsock cid' "$c"), want $CID"
grep -q '^L2: vsock g2h-status 0$' "$c" && grep -q '^L2: vsock-g2h: stream ok: 1 connection, 1 checksummed' "$c" &&
	echo "ok   guest -> host: $MIB MiB each way ($(sed -n 's/^L2: vsock-g2h: stream ok: .*, \([0-9.]* s, [0-9.]* MiB\/s\)/\1/p' "$c"))" ||
	bad "guest -> host stream"
grep -q '^host-serve-status 0$' "$TMP/hserve" && grep -q '^host-serve: serve done: 1 connections, 1 ok' "$TMP/hserve" ||
	bad "the host's listener on PATH_5001 ($(grep 'serve done' "$TMP/hserve"))"
grep -q '^h2g-status 0$' "$D" && grep -q '^h2g: stream ok: 1 connection' "$D" &&
	echo "ok   host -> guest through CONNECT: $MIB MiB each way ($(sed -n 's/^h2g: stream ok: .*, \([0-9.]* s, [0-9.]* MiB\/s\)/\1/p' "$D"))" ||
	bad "host -> guest stream"
grep -q '^many-status 0$' "$D" && grep -q '^many: stream ok: 100 connections, 100 checksummed' "$D" &&
	echo "ok   100 connections at once, all checksummed ($(sed -n 's/^many: \(connected 100 .*\)/\1/p' "$D"))" ||
	bad "100 connections at once"
nr=$(sed -n 's/^noread: noread blocked after \([0-9]*\) bytes.*/\1/p' "$D")
if grep -q '^noread-status 0$' "$D" && [[ -n $nr ]] && ((nr / 1024 <= NOREAD_MAX_KIB)); then
	echo "ok   a never-read connection blocked its writer after $((nr / 1024)) KiB"
else
	bad "the never-read connection's writer did not block within $NOREAD_MAX_KIB KiB ($(grep '^noread: noread' "$D" | head -n 1))"
fi
read -r r0 r1 r2 < <(sed -n 's/^noread: noread rss pid [0-9]*: before \([0-9-]*\) KiB, blocked \([0-9-]*\) KiB, after hold \([0-9-]*\) KiB/\1 \2 \3/p' "$D")
if [[ -n ${r2:-} ]] && ((r0 > 0 && r2 > 0 && r2 - r0 <= RSS_GROWTH_MAX_KIB)); then
	echo "ok   isola-vsock's RSS ${r0} -> ${r1} -> ${r2} KiB (before, blocked, after 5 s held)"
else
	bad "isola-vsock's RSS under the never-read connection: ${r0:-?} -> ${r1:-?} -> ${r2:-?} KiB, want growth <= $RSS_GROWTH_MAX_KIB"
fi
grep -q '^beside-status 0$' "$D" && echo "ok   a stream beside the blocked connection completed" ||
	bad "the stream beside the never-read connection"
grep -q '^L2: vsock serve-status 0$' "$c" &&
	grep -q '^L2: vsock-serve: serve done: 103 connections, 102 ok .*, 1 held unread, 0 failed' "$c" ||
	bad "the guest's server: $(grep '^L2: vsock-serve: serve done' "$c")"
server_ok "$VSOCK_PID" "$TMP/vsock.log" "isola-vsock"
echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: Linux $RELEASE's virtio-vsock driver through QEMU's vhost-user-vsock-pci to isola-vsock: streams both ways, 100 connections, backpressure"
