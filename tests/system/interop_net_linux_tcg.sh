#!/bin/bash
# Interop: a real Linux virtio-net driver against isola-net.  Debian's cloud
# kernel runs under QEMU TCG with QEMU's vhost-user-net front-end
# (-netdev vhost-user; vectors=0: QEMU 7.2 TCG segfaults with MSI-X on a
# vhost-user virtio-net).  isola-net is attached to a tap in a network
# namespace made here (isola-n$$, address 10.77.0.1/24).  The guest's /init
# (interop/net_init.sh) pings the tap's address and moves data over TCP
# each way with busybox nc (the guest listens for the upload); the host
# compares the SHA-256 sums, and checks that isola-net counted frames both
# ways, dropped none and logged nothing wrong.  Three boots:
#   offloads     4 MiB each way, checksum and TSO/UFO offloads negotiated
#   no-offloads  4 MiB each way, isola-net --no-offloads (plain frames)
#   restart      16 MiB each way, QEMU's chardev with reconnect=1; isola-net
#                is SIGKILLed after 1 MiB of the upload and again after
#                1 MiB of the download, and started again by the test each
#                time: both transfers still complete intact.
# NET_CASES="offloads restart" runs a subset.
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
	local d
	for d in "$TMP"/*/; do
		[[ -d $d ]] && mkdir -p "$OUT/last/$(basename "$d")" && cp "$d"/*.log "$d"/*.err "$d"/qemu.out "$d"/console "$OUT/last/$(basename "$d")/" 2>/dev/null
	done
	interop_cleanup
	"$IP" netns del "$NS" 2>/dev/null
}
trap net_cleanup EXIT
start=$(date +%s.%N)
INITRAMFS=$(build_initramfs) || fail "cannot build the initramfs in $OUT"
echo "initramfs: $INITRAMFS (modules: $(modules | xargs -n1 basename | xargs))"
rm -rf "$OUT/last"

"$IP" netns add "$NS" || fail "ip netns add $NS"
in_ns() { "$IP" netns exec "$NS" "$@"; }
in_ns "$IP" link set lo up
in_ns "$IP" tuntap add "$TAP" mode tap || fail "ip tuntap add $TAP"
in_ns "$IP" addr add 10.77.0.1/24 dev "$TAP"
in_ns "$IP" link set "$TAP" up

# busybox nc shuts its sending half at the end of its standard input, and the
# guest's nc, the sender, then quits after its next read: a connecting nc
# given /dev/null receives 1 KiB.  The receiving end's standard input is a
# FIFO this shell holds open for writing, so it never ends.
mkfifo "$TMP/hold" && exec {hold}<>"$TMP/hold" || fail "mkfifo $TMP/hold"

# net_start DIR: start isola-net (options in $opts), log in DIR/net.N.log
net_start() {
	local n=$(($(ls "$1"/net.*.log 2>/dev/null | wc -l) + 1))
	start_server "$1/net.$n.log" "$IP" netns exec "$NS" build/isola-net --socket "$TMP/net.sock" \
		--tap "$TAP" --mac 52:54:00:77:00:02 $opts
	NET_PID=$SERVER_PID
	NET_LOG=$1/net.$n.log
}

# net_kill WHY: SIGKILL the serving process (the sandbox's child; its parent
# then exits with it), start a new isola-net on the same socket
net_kill() {
	local child
	child=$(pgrep -P "$NET_PID" | head -n 1)
	[[ -n $child ]] || { bad "$WHAT: no isola-net child of $NET_PID to kill"; return 1; }
	kill -KILL "$child"
	wait "$NET_PID" 2>/dev/null
	echo "     isola-net SIGKILLed $1 ($(elapsed "$qstart") s after QEMU's start)"
	kills=$((kills + 1))
	net_start "$D"
}

# run_case NAME MIB ISOLA_NET_OPTIONS RESTART(0|1)
run_case() {
	local name=$1 mib=$2 restart=$4 qpid qst up_want up_got down_got line s
	local bytes=$(($2 << 20)) kills=0 t0=$(date +%s.%N) mark= killed_up=0 killed_down=0
	opts=$3
	WHAT=$name
	D=$TMP/$name
	mkdir -p "$D"
	echo "--- case $name: $mib MiB each way, isola-net ${opts:-(default options)}$( ((restart)) && echo ', SIGKILL + restart mid-transfer')"
	head -c "$bytes" /dev/urandom >"$D/down"
	local down_sum
	down_sum=$(sha256sum <"$D/down" | cut -d' ' -f1)
	: >"$D/console" >"$D/up"
	# the host's ends: receive on 5000 once the guest listens, send on 5001
	(for _ in $(seq 1800); do
		grep -aq '^INTEROP READY' "$D/console" 2>/dev/null && break
		sleep 0.1
	done
	in_ns timeout 90 busybox nc 10.77.0.2 5000 <&"$hold" >"$D/up" 2>"$D/nc-up.err") &
	PIDS+=($!)
	in_ns timeout 120 busybox nc -l -p 5001 <"$D/down" 2>"$D/nc-down.err" &
	PIDS+=($!)
	net_start "$D"
	((restart)) && mark=" interop_mark=1"

	qstart=$(date +%s.%N)
	timeout 120 "$QEMU" -M q35,accel=tcg -cpu max -m 512M -smp 1 \
		-nodefaults -no-user-config -display none -no-reboot \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev "socket,id=c0,path=$TMP/net.sock,reconnect=1" \
		-netdev vhost-user,id=n0,chardev=c0 \
		-device virtio-net-pci,netdev=n0,vectors=0,romfile=,mac=52:54:00:77:00:02 \
		-serial "file:$D/console" -kernel "$KERNEL" -initrd "$INITRAMFS" \
		-append "console=ttyS0 panic=-1 reboot=k rdinit=/init interop_mib=$mib$mark" \
		</dev/null >"$D/qemu.out" 2>&1 &
	qpid=$!
	PIDS+=($qpid)
	if ((restart)); then
		# mid-upload: the host has 1 MiB of it; mid-download: the guest says so
		while kill -0 "$qpid" 2>/dev/null; do
			s=$(stat -c %s "$D/up")
			if ((!killed_up && s >= 1 << 20)); then
				killed_up=1
				((s < bytes)) || bad "$name: the upload was over ($s bytes) before isola-net was killed"
				net_kill "with $((s >> 10)) KiB of the upload at the host" || break
			fi
			if ((!killed_down)) && grep -aq '^INTEROP MARK down' "$D/console"; then
				killed_down=1
				grep -aq '^INTEROP INFO down-sha256' "$D/console" &&
					bad "$name: the download was over before isola-net was killed"
				net_kill "with 1 MiB of the download at the guest" || break
			fi
			sleep 0.05
		done
	fi
	wait "$qpid"
	qst=$?
	echo "     QEMU TCG boot to power-off: $(elapsed "$qstart") s"
	grep -a '^INTEROP' "$D/console" | sed 's/^/     | /'
	# QEMU asks a dead back-end for its ring bases, fails ("Failed to set
	# msg fds", "ring restore failed") and takes the used index instead
	grep -v 'supports VHOST_USER_PROTOCOL_F_CONFIG but QEMU does not' "$D/qemu.out" | sed 's/^/     qemu: /'
	((qst == 124)) && bad "$name: QEMU did not power off within 120 s"
	if ! grep -aq '^INTEROP DONE' "$D/console"; then
		tail -n 40 "$D/console" | sed 's/^/     | /'
		bad "$name: the guest did not finish (no 'INTEROP DONE')"
	fi
	grep -aq '^INTEROP DONE pass=[0-9]* fail=0' "$D/console" || bad "$name: the guest reported failures"
	grep -aq '^INTEROP PASS: ping 10.77.0.1' "$D/console" || bad "$name: the guest could not ping the tap's address"
	# the driver's features (sysfs: one character per bit): CSUM (0),
	# GUEST_TSO4 (7) and HOST_TSO4 (11), virtio 1.2 §5.1.3, with offloads
	local f want=1
	[[ $opts == *--no-offloads* ]] && want=0
	f=$(grep -a '^INTEROP INFO mac ' "$D/console" | tr -d '\r' | awk '{ print $6 }')
	[[ ${f:0:1}${f:7:1}${f:11:1} == "$want$want$want" ]] ||
		bad "$name: the guest's features $f, want CSUM, GUEST_TSO4 and HOST_TSO4 = $want"
	up_want=$(grep -a '^INTEROP INFO up-sha256 ' "$D/console" | tr -d '\r' | awk '{ print $4 }')
	up_got=$(sha256sum <"$D/up" | cut -d' ' -f1)
	[[ -n $up_want && $up_want == "$up_got" ]] && echo "ok   $name: guest -> host: $mib MiB intact" ||
		bad "$name: guest -> host: the host got $(stat -c %s "$D/up") bytes, sha256 $up_got, want $up_want"
	down_got=$(grep -a '^INTEROP INFO down-sha256 ' "$D/console" | tr -d '\r' | awk '{ print $4 }')
	[[ $down_got == "$down_sum" ]] && echo "ok   $name: host -> guest: $mib MiB intact" ||
		bad "$name: host -> guest: the guest got sha256 ${down_got:-nothing}, want $down_sum"
	if ((restart)); then
		((kills == 2)) || bad "$name: isola-net was killed $kills times, want 2 (mid-upload and mid-download)"
		# QEMU came back to each new isola-net (the second one carried the
		# rest of the upload, the third the rest of the download)
		for s in 2 3; do
			grep -q 'front-end connected' "$D/net.$s.log" 2>/dev/null ||
				bad "$name: QEMU did not reconnect to isola-net number $s"
		done
		((failed)) || echo "ok   $name: isola-net killed mid-upload and mid-download, restarted, transfers intact"
	fi

	server_ok "$NET_PID" "$NET_LOG" "$name: isola-net" || return
	# counters of the last isola-net, logged at each device reset (QEMU
	# sends SET_STATUS 0 when it stops the device) and when QEMU hung up:
	# their sum is what that instance moved
	local rx=0 tx=0
	while read -r line; do
		echo "     isola-net: ${line#*: }"
		[[ $line =~ rx\ ([0-9]+)\ frames.*tx\ ([0-9]+)\ frames ]] &&
			rx=$((rx + BASH_REMATCH[1])) tx=$((tx + BASH_REMATCH[2]))
	done < <(grep -E 'front-end gone|device reset by the driver' "$NET_LOG")
	((rx > 100 && tx > 100)) || bad "$name: isola-net's counters do not show frames both ways"
	echo "$line" | sed 's/.*drops:\([^;]*\);.*/\1/' | grep -oE '[a-z_]+=[1-9][0-9]*' | grep -v rx_filtered | grep . &&
		bad "$name: isola-net dropped frames (above)"
	kill "$NET_PID" 2>/dev/null
	wait "$NET_PID" 2>/dev/null
	echo "     case $name: $(elapsed "$t0") s"
}

for c in ${NET_CASES:-offloads no-offloads restart}; do
	case $c in
	offloads) run_case offloads 4 "" 0 ;;
	no-offloads) run_case no-offloads 4 --no-offloads 0 ;;
	restart) run_case restart 16 "" 1 ;;
	*) fail "NET_CASES: unknown case $c (offloads, no-offloads, restart)" ;;
	esac
done
echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: Linux $RELEASE's virtio-net drove isola-net on a tap through QEMU's vhost-user-net (${NET_CASES:-offloads no-offloads restart})"
