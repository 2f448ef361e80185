#!/bin/bash
# The virtio-net test guests (tests/guest/net_*.c, tests/guest/hostile/
# virtio_net_*.c) on a tap in a network namespace made here, whose Linux
# answers ARP and ping and runs the UDP peer (tests/system/net/udp_peer.py).
# First under QEMU TCG's own virtio-net (the reference that proves the
# guests), then under build/isola with --net (isola runs inside the
# namespace: isola-net opens the tap there, docs/net.md).
#   NET_VMM=qemu|qemu-vu|isola|both (default both; qemu-vu: QEMU as the
#   vhost-user front-end of a standalone isola-net, the guests polling)   UDP_STEP=N (sizes 1..1472 by N)
#   NET_STATE_ONLY=1 (isola: only the restart/reset case, run_state)
# Each case is a line "VMM/NAME PASS|FAIL|SKIP WHY" in $ISOLA_CASES (tests/run.sh).
# Exit 0 pass, 1 fail, 77 if a part was skipped and nothing failed.
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh
G=build/guests
VMM=${NET_VMM:-both}
HOST_IP=10.77.0.1 GUEST_IP=10.77.0.2
NS=isola-net$$ TAP=isn$$ TAPM=isnm$$
CASES=${ISOLA_CASES:-/dev/null}
TMP=$(mktemp -d /tmp/isola-netg.XXXXXX)
VM_PID= SRV_PID=
cleanup() {
	[[ -n $VM_PID ]] && kill "$VM_PID" 2>/dev/null
	[[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
failed=0 skipped=0

[[ $(id -u) == 0 ]] || skip "needs root (network namespace and tap)"
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"
command -v python3 >/dev/null || skip "no python3"
for g in net_ping net_udp_echo net_mq hostile/virtio_net_tx hostile/virtio_net_rx_mmio hostile/virtio_net_ctrl; do
	[[ -f $G/$g.elf ]] || fail "$G/$g.elf missing: run 'make guests'"
done

# The namespace: lo, a single-queue tap and a multi-queue one (same subnet
# on both, but only one is up at a time: set_tap).
ip netns add "$NS" || fail "ip netns add $NS"
NSX="ip netns exec $NS"
$NSX ip link set lo up
# No IPv6 router solicitations landing in the hostile guests' RX buffers.
$NSX sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
$NSX ip tuntap add "$TAP" mode tap || fail "ip tuntap add $TAP"
$NSX ip tuntap add "$TAPM" mode tap multi_queue || fail "ip tuntap add $TAPM multi_queue"
set_tap() { # set_tap NAME: the one tap with HOST_IP
	local t
	for t in "$TAP" "$TAPM"; do
		$NSX ip addr flush dev "$t"
		$NSX ip link set "$t" down
	done
	$NSX ip addr add "$HOST_IP/24" dev "$1"
	$NSX ip link set "$1" up
}

# start_vm VMM GUEST PAIRS CONSOLE CMDLINE: boot GUEST in the namespace, in
# the background (VM_PID); the console goes to CONSOLE, stderr to CONSOLE.err.
start_vm() {
	local vmm=$1 guest=$2 pairs=$3 console=$4 cmdline=$5 tap=$TAP
	((pairs > 1)) && tap=$TAPM
	set_tap "$tap"
	: >"$console"
	if [[ $vmm == qemu-vu ]]; then
		# QEMU as the vhost-user front-end of a standalone isola-net (issue
		# 12 item 5).  QEMU 7.2 TCG crashes on MSI-X with a vhost-user
		# virtio-net (design.md): vectors=0, so the guest polls.
		local sock=$TMP/net.sock
		rm -f "$sock"
		$NSX "$ISOLA_ROOT/build/isola-net" --socket "$sock" --tap "$tap" \
			--mac 52:54:00:12:34:56 2>"$console.srv" &
		SRV_PID=$!
		for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
		$NSX timeout 200 qemu-system-x86_64 -M q35,accel=tcg -cpu max -m 256M -nographic \
			-no-reboot -display none -vga none -device isa-debug-exit,iobase=0xf4,iosize=4 \
			-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
			-chardev "socket,id=c0,path=$sock" -netdev vhost-user,id=n0,chardev=c0 \
			-device virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,vectors=0,mac=52:54:00:12:34:56 \
			-kernel "$G/$guest.elf" -append "$cmdline poll" \
			</dev/null >"$console" 2>"$console.err" &
	elif [[ $vmm == isola-dpdk ]]; then
		# isola's core in front of someone else's back-end (--vhost-user-net):
		# DPDK's net_vhost, forwarding to a net_tap it makes, which takes
		# HOST_IP in place of our taps.
		local sock=$TMP/dpdk.sock
		rm -f "$sock"
		$NSX ip addr flush dev "$tap"
		$NSX stdbuf -oL dpdk-testpmd --no-huge -m 256 --no-pci --no-shconf \
			--file-prefix "isola-ng$$" --lcores='0@(0-1),1@(0-1)' \
			--vdev "net_vhost0,iface=$sock,queues=1" --vdev "net_tap0,iface=isnd$$" -- \
			--no-mlockall --total-num-mbufs=8192 --forward-mode=io -a --stats-period 3600 \
			</dev/null >"$console.srv" 2>&1 &
		SRV_PID=$!
		for _ in $(seq 200); do
			[[ -S $sock ]] && $NSX test -e "/sys/class/net/isnd$$" && break
			sleep 0.05
		done
		$NSX ip addr add "$HOST_IP/24" dev "isnd$$"
		$NSX ip link set "isnd$$" up
		$NSX timeout 200 "$ISOLA" run --kernel "$G/$guest.elf" --memory 64M \
			--vhost-user-net "socket=$sock" --console "file:$console" \
			--cmdline "$cmdline" --timeout 150 </dev/null >"$console.out" 2>"$console.err" &
	elif [[ $vmm == qemu ]]; then
		local nd="tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=off"
		local dev="virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,mac=52:54:00:12:34:56"
		((pairs > 1)) && { nd="$nd,queues=$pairs"; dev="$dev,mq=on,vectors=$((2 * pairs + 2))"; }
		$NSX timeout 200 qemu-system-x86_64 -M q35,accel=tcg -cpu max -m 256M -nographic \
			-no-reboot -display none -vga none -device isa-debug-exit,iobase=0xf4,iosize=4 \
			-netdev "$nd" -device "$dev" -kernel "$G/$guest.elf" -append "$cmdline" \
			</dev/null >"$console" 2>"$console.err" &
	else
		local net="tap=$tap"
		((pairs > 1)) && net="$net,queues=$pairs"
		$NSX timeout 200 "$ISOLA" run --kernel "$G/$guest.elf" --memory 64M --net "$net" \
			--console "file:$console" --cmdline "$cmdline" --timeout 150 \
			</dev/null >"$console.out" 2>"$console.err" &
	fi
	VM_PID=$!
}

# wait_ready CONSOLE: until the guest prints READY (or stops); 0 if it did.
wait_ready() {
	for _ in $(seq 600); do
		grep -aq READY "$1" && return 0
		kill -0 "$VM_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# finish NAME CONSOLE HOST_OK: wait for the VM, then judge: status 1, the
# guest's PASS line, no FAIL line, the host side's verdict, and under isola
# no device server killed or restarted and no sanitizer report.
finish() {
	local name=$1 console=$2 host_ok=$3 st why=
	wait "$VM_PID"
	st=$?
	VM_PID=
	if [[ -n $SRV_PID ]]; then
		kill "$SRV_PID" 2>/dev/null
		wait "$SRV_PID" 2>/dev/null
		SRV_PID=
		grep -Eq "$SERVER_TROUBLE|rejected=[1-9]|ERROR|error" "$console.srv" &&
			cat "$console.srv" >>"$console.err"
	fi
	echo "=== CASE $name"
	tr -d '\r' <"$console" | grep -a -E '^(FAIL|net_|isola-guest)|: (completed|device needs reset|no completion|then)' | head -60
	[[ -s $console.err ]] && sed 's/^/stderr: /' "$console.err" | head -30
	[[ $st == 1 ]] || why="exit status $st, want 1"
	grep -aq '^isola-guest: PASS' "$console" || why="${why:+$why; }no isola-guest: PASS line"
	grep -aq '^FAIL' "$console" && why="${why:+$why; }the guest printed FAIL"
	[[ $host_ok == 0 ]] || why="${why:+$why; }host side failed"
	grep -Eq "$SERVER_TROUBLE" "$console.err" 2>/dev/null &&
		why="${why:+$why; }a device server was killed, restarted or hung up"
	grep -q Sanitizer "$console.err" 2>/dev/null && why="${why:+$why; }sanitizer report"
	echo "=== END $name"
	if [[ -z $why ]]; then
		echo "ok   $name"
		echo "$name PASS" >>"$CASES"
	else
		echo "FAIL $name: $why"
		echo "$name FAIL $why" >>"$CASES"
		failed=1
	fi
}
# A server in trouble (tests/run.sh SERVER_TROUBLE); "needs a reset" is what
# a hostile guest is after, so it is not trouble here.
SERVER_TROUBLE='was killed by|exited with status|hung up|broke the protocol|restarting it|is back after|did not come back|giving up|waiting for it to come back'

GARGS="ip=$GUEST_IP peer=$HOST_IP"
run_ping() { # run_ping VMM
	local c=$TMP/$1_ping.txt host=1
	start_vm "$1" net_ping 1 "$c" "$GARGS count=5 answer=3 wait_s=60"
	if wait_ready "$c"; then
		$NSX busybox ping -c 3 -W 5 "$GUEST_IP" >"$c.ping" 2>&1 && host=0
		sed 's/^/host: /' "$c.ping"
	fi
	finish "$1/net_ping" "$c" $host
}
# The driver's state across an isola-net restart and a device reset
# (docs/net.md "Restart semantics"): the guest sets a new MAC with PROMISC
# off and pings; during its pause isola-net is SIGKILLed (the core restarts
# it) and the guest pings again from the new MAC; then the guest resets the
# device, comes back with the config MAC and PROMISC off (no ADDR_SET) and
# pings again, which only works if the reset reached isola-net (SET_STATUS 0).
run_state() { # run_state (isola only)
	local c=$TMP/isola_state.txt why= st isola srv p
	start_vm isola net_ping 1 "$c" "$GARGS count=3 newmac pause_s=4 reinit wait_s=1"
	for _ in $(seq 300); do
		grep -aq PAUSE "$c" && break
		kill -0 "$VM_PID" 2>/dev/null || break
		sleep 0.1
	done
	# the deepest isola-net under our VM: the server (the sandbox's parent
	# waits above it)
	srv=
	if grep -aq PAUSE "$c"; then
		local todo=$VM_PID
		while [[ -n $todo ]]; do
			p=${todo%% *}
			[[ $todo == *" "* ]] && todo=${todo#* } || todo=
			[[ $(cat /proc/$p/comm 2>/dev/null) == isola-net ]] && srv=$p
			for k in $(pgrep -P "$p"); do todo="${todo:+$todo }$k"; done
		done
	fi
	if [[ -n $srv ]]; then
		kill -KILL "$srv"
	else
		why="no PAUSE from the guest, or no isola-net to kill"
	fi
	wait "$VM_PID"
	st=$?
	VM_PID=
	echo "=== CASE isola/net_state"
	tr -d '\r' <"$c" | grep -a -E '^(FAIL|net_|isola-guest)' | head -40
	sed 's/^/stderr: /' "$c.err" | grep -E 'restor|ignored|is back|killed|SET_STATUS' | head -20
	[[ $st == 1 ]] || why="${why:+$why; }exit status $st, want 1"
	grep -aq '^isola-guest: PASS' "$c" || why="${why:+$why; }no isola-guest: PASS line"
	grep -aq '^FAIL' "$c" && why="${why:+$why; }the guest printed FAIL"
	grep -q 'is back after' "$c.err" || why="${why:+$why; }isola-net was not restarted"
	grep -q "restored the driver's settings: promisc 0 allmulti 0, 0 unicast" "$c.err" ||
		why="${why:+$why; }the restarted isola-net did not restore the driver's filter"
	grep -q Sanitizer "$c.err" && why="${why:+$why; }sanitizer report"
	echo "=== END isola/net_state"
	if [[ -z $why ]]; then
		echo "ok   isola/net_state"
		echo "isola/net_state PASS" >>"$CASES"
	else
		echo "FAIL isola/net_state: $why"
		echo "isola/net_state FAIL $why" >>"$CASES"
		failed=1
	fi
}
run_udp() { # run_udp VMM NAME GUEST PAIRS FLOWS EXTRA_CMDLINE
	local c=$TMP/$1_$2.txt host=1
	start_vm "$1" "$3" "$4" "$c" "$GARGS send=32 $6"
	if wait_ready "$c"; then
		$NSX python3 tests/system/net/udp_peer.py "$GUEST_IP" --step "${UDP_STEP:-1}" \
			--flows "$5" --own 32 >"$c.udp" 2>&1 && host=0
		sed 's/^/host: /' "$c.udp" | tail -8
	fi
	finish "$1/$2" "$c" $host
}
run_hostile() { # run_hostile VMM GUEST PAIRS [CMDLINE]
	local c=$TMP/$1_$2_$3.txt name=hostile_$2
	(($3 > 1)) && name=${name}_mq
	start_vm "$1" "hostile/$2" "$3" "$c" "$GARGS ${4:-}"
	finish "$1/$name" "$c" 0
}
run_all() { # run_all VMM [LENIENT]
	run_ping "$1"
	run_udp "$1" net_udp_echo net_udp_echo 1 1 ""
	run_udp "$1" net_udp_echo_nocsum net_udp_echo 1 1 "no_udp_csum poll"
	run_udp "$1" net_mq net_mq 2 32 ""
	for h in virtio_net_tx virtio_net_rx_mmio virtio_net_ctrl; do run_hostile "$1" $h 1 "${2:-}"; done
	run_hostile "$1" virtio_net_ctrl 2 "${2:-}"
}

if [[ $VMM == qemu || $VMM == both ]]; then
	if command -v qemu-system-x86_64 >/dev/null; then
		# QEMU serves some frames isola refuses (e.g. a frame over 64 KiB is
		# handed to the tap, which drops it): `lenient` (hostile README).
		run_all qemu "${QEMU_LENIENT-lenient}"
	else
		echo "note: qemu-system-x86_64 not installed: no reference run"
	fi
fi
if [[ $VMM == qemu-vu || $VMM == both ]]; then
	if command -v qemu-system-x86_64 >/dev/null; then
		run_ping qemu-vu
		run_udp qemu-vu net_udp_echo net_udp_echo 1 1 ""
	else
		echo "note: qemu-system-x86_64 not installed: no QEMU front-end run"
	fi
fi
if [[ $VMM == isola-dpdk || $VMM == both ]]; then
	if command -v dpdk-testpmd >/dev/null; then
		run_ping isola-dpdk
	else
		echo "note: dpdk-testpmd not installed: no external back-end run"
	fi
fi
if [[ $VMM == isola || $VMM == both ]]; then
	# NET_STATE_ONLY=1: just the restart/reset case
	[[ -n ${NET_STATE_ONLY:-} ]] || run_all isola
	run_state
fi
((failed)) && exit 1
((skipped)) && exit 77
exit 0
