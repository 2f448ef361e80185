#!/bin/bash
# Interop: a real Linux virtio-net driver against isola-net.  Debian's cloud
# kernel runs under QEMU TCG with QEMU's vhost-user-net front-end
# (-netdev vhost-user; vectors=0: QEMU 7.2 TCG segfaults with MSI-X on a
# vhost-user virtio-net).  isola-net is attached to a tap in a network
# namespace made here (isola-n$$, address 10.77.0.1/24).  The guest's /init
# (interop/net_init.sh) pings the tap's address and moves 4 MiB over TCP
# each way with busybox nc (the guest listens for the upload); the host compares the SHA-256 sums, and checks
# that isola-net counted frames both ways, dropped none and logged nothing
# wrong.
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
SELF=$(realpath "$0")
cd "$ISOLA_ROOT" || exit 1
HERE=tests/system/interop
OUT=build/interop-net

QEMU=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
[[ -x build/isola-net ]] || fail "no build/isola-net (make all)"
((EUID == 0)) || skip "needs root for a network namespace and a tap"
IP=$(PATH=$PATH:/sbin:/usr/sbin command -v ip) || skip "no ip (apt-get install iproute2)"
KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
[[ -n $KERNEL ]] || skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"
[[ -r $KERNEL ]] || skip "$KERNEL is not readable (Debian installs it mode 0600; run as root)"
RELEASE=$(basename "$KERNEL" | sed 's/^vmlinuz-//')
MODPROBE=$(PATH=$PATH:/sbin:/usr/sbin command -v modprobe) || skip "no modprobe (apt-get install kmod)"
[[ -x /bin/busybox ]] && ! readelf -l /bin/busybox | grep -q 'program interpreter' ||
	skip "no static /bin/busybox (apt-get install busybox-static)"

modules() {
	local m
	for m in virtio_pci virtio_net; do
		"$MODPROBE" -S "$RELEASE" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++'
}

build_initramfs() {
	local mods key root out=$OUT/initramfs.cpio.gz f base
	mods=$(modules) || return 1
	[[ -n $mods ]] || { echo "modprobe --show-depends found no virtio_net" >&2; return 1; }
	key=$(sha256sum /bin/busybox $mods "$HERE/net_init.sh" "$SELF" | cut -d' ' -f1 | sha256sum | cut -d' ' -f1)
	if [[ -f $out && $(cat "$OUT/initramfs.key" 2>/dev/null) == "$key" ]]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$OUT" || return 1
	root=$(mktemp -d "$OUT/root.XXXXXX") || return 1
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	cp "$HERE/net_init.sh" "$root/init"
	chmod 755 "$root/init" "$root/bin/busybox"
	for f in $mods; do
		base=$(basename "$f")
		case $f in
		*.ko) cp "$f" "$root/lib/modules/$base" ;;
		*.ko.xz) xz -dc "$f" >"$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
		*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
		*) echo "unknown module format: $f" >&2; rm -rf "$root"; return 1 ;;
		esac || { rm -rf "$root"; return 1; }
		echo "$base" >>"$root/lib/modules/order"
	done
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -6n >"$out.tmp" || {
		rm -rf "$root" "$out.tmp"; return 1
	}
	rm -rf "$root"
	mv "$out.tmp" "$out" && echo "$key" >"$OUT/initramfs.key" && echo "$out"
}

interop_init interop-net
NS=isola-n$$
TAP=isn$$
net_cleanup() {
	# keep the logs of the last run for a post-mortem
	cp "$TMP/console" "$OUT/last-console.log" 2>/dev/null
	cp "$TMP/net.log" "$OUT/last-isola-net.log" 2>/dev/null
	interop_cleanup
	"$IP" netns del "$NS" 2>/dev/null
}
trap net_cleanup EXIT
start=$(date +%s.%N)
INITRAMFS=$(build_initramfs) || fail "cannot build the initramfs in $OUT"
echo "initramfs: $INITRAMFS (modules: $(modules | xargs -n1 basename | xargs))"

"$IP" netns add "$NS" || fail "ip netns add $NS"
in_ns() { "$IP" netns exec "$NS" "$@"; }
in_ns "$IP" link set lo up
in_ns "$IP" tuntap add "$TAP" mode tap || fail "ip tuntap add $TAP"
in_ns "$IP" addr add 10.77.0.1/24 dev "$TAP"
in_ns "$IP" link set "$TAP" up

head -c $((4 << 20)) /dev/urandom >"$TMP/down"
down_sum=$(sha256sum <"$TMP/down" | cut -d' ' -f1)
# busybox nc shuts its sending half at the end of its standard input, and the
# guest's nc, the sender, then quits after its next read: a connecting nc
# given /dev/null receives 1 KiB.  The receiving end's standard input is a
# FIFO this shell holds open for writing, so it never ends.
mkfifo "$TMP/hold" && exec {hold}<>"$TMP/hold" || fail "mkfifo $TMP/hold"
# the host's ends: receive 4 MiB on 5000, send 4 MiB on 5001
# the guest listens on 5000 once it says READY (see net_init.sh)
(for _ in $(seq 1800); do
	grep -aq '^INTEROP READY' "$TMP/console" 2>/dev/null && break
	sleep 0.1
done
in_ns timeout 100 busybox nc 10.77.0.2 5000 <&"$hold" >"$TMP/up" 2>"$TMP/nc-up.err") &
PIDS+=($!)
in_ns timeout 200 busybox nc -l -p 5001 <"$TMP/down" 2>"$TMP/nc-down.err" &
PIDS+=($!)

start_server "$TMP/net.log" "$IP" netns exec "$NS" build/isola-net --socket "$TMP/net.sock" \
	--tap "$TAP" --mac 52:54:00:77:00:02 ${NET_OPTS:-}
NET_PID=$SERVER_PID

qstart=$(date +%s.%N)
bounded 180 "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev "socket,id=c0,path=$TMP/net.sock" \
	-netdev vhost-user,id=n0,chardev=c0 \
	-device virtio-net-pci,netdev=n0,vectors=0,romfile=,mac=52:54:00:77:00:02 \
	-serial "file:$TMP/console" -kernel "$KERNEL" -initrd "$INITRAMFS" \
	-append "console=ttyS0 panic=-1 reboot=k rdinit=/init" \
	</dev/null >"$TMP/qemu.out" 2>&1
qst=$?
C=$TMP/console
echo "--- guest (INTEROP lines)"
grep -a '^INTEROP' "$C" | sed 's/^/    /'
echo "QEMU TCG boot to power-off: $(elapsed "$qstart") s"
if [[ -s $TMP/qemu.out ]]; then echo "--- qemu"; cat "$TMP/qemu.out"; fi
((qst == 124)) && bad "QEMU did not power off within 180 s"
if ! grep -aq '^INTEROP DONE' "$C"; then
	tail -n 40 "$C" | sed 's/^/    | /'
	bad "the guest did not finish (no 'INTEROP DONE')"
fi
grep -aq '^INTEROP DONE pass=[0-9]* fail=0' "$C" || bad "the guest reported failures"
grep -aq '^INTEROP PASS: ping 10.77.0.1' "$C" || bad "the guest could not ping the tap's address"
up_want=$(grep -a '^INTEROP INFO up-sha256 ' "$C" | tr -d '\r' | awk '{ print $4 }')
up_got=$(sha256sum <"$TMP/up" | cut -d' ' -f1)
[[ -n $up_want && $up_want == "$up_got" ]] && echo "ok   guest -> host: 4 MiB intact" ||
	bad "guest -> host: the host got $(stat -c %s "$TMP/up") bytes, sha256 $up_got, want $up_want"
down_got=$(grep -a '^INTEROP INFO down-sha256 ' "$C" | tr -d '\r' | awk '{ print $4 }')
[[ $down_got == "$down_sum" ]] && echo "ok   host -> guest: 4 MiB intact" ||
	bad "host -> guest: the guest got sha256 ${down_got:-nothing}, want $down_sum"

server_ok "$NET_PID" "$TMP/net.log" "isola-net"
# counters, logged when QEMU disconnected
line=$(grep 'front-end gone' "$TMP/net.log" | tail -n 1)
echo "isola-net: ${line#*: }"
[[ $line =~ rx\ ([0-9]+)\ frames.*tx\ ([0-9]+)\ frames ]] && ((BASH_REMATCH[1] > 100 && BASH_REMATCH[2] > 100)) ||
	bad "isola-net's counters do not show frames both ways"
echo "$line" | sed 's/.*drops:\([^;]*\);.*/\1/' | grep -oE '[a-z_]+=[1-9][0-9]*' | grep -v rx_filtered | grep . &&
	bad "isola-net dropped frames (above)"
echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: Linux $RELEASE's virtio-net drove isola-net on a tap through QEMU's vhost-user-net"
