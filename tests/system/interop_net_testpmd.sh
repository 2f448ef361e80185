#!/bin/bash
# Interop, issue 12 item 5: DPDK's dpdk-testpmd with net_virtio_user as the
# vhost-user front-end of isola-net (standalone: `isola-net --socket SOCK
# --tap TAP`, the tap in a network namespace this test creates), a counted
# burst both ways:
#   TX: testpmd sends TX_BURSTS bursts of 32 64-byte frames (`start tx_first`,
#       txonly); the tap's rx_packets in the namespace (what isola-net wrote
#       into it) must equal the frames testpmd counts as sent, all of them;
#   RX: RX_FRAMES frames to the interface's MAC are sent on the tap from the
#       namespace (AF_PACKET); testpmd (rxonly) must count every one.
# Then testpmd quits, and isola-net must still be alive with nothing wrong
# logged.  NET_BACKEND=testpmd swaps isola-net for DPDK's own net_vhost +
# net_tap back-end (the test's plumbing, checked against a known-good peer).
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
cd "$ISOLA_ROOT" || exit 1
ISOLA_NET=${ISOLA_NET:-$ISOLA_ROOT/build/isola-net}
NET_BACKEND=${NET_BACKEND:-isola-net}
TX_BURSTS=${TX_BURSTS:-8} # of 32 frames (testpmd's default --burst)
RX_FRAMES=${RX_FRAMES:-256}
MAC=02:00:00:00:00:0a

TESTPMD=$(command -v dpdk-testpmd) || skip "dpdk-testpmd not installed"
[[ $(id -u) == 0 ]] || skip "needs root (a network namespace and a tap)"
if [[ $NET_BACKEND == isola-net ]]; then
	[[ -x $ISOLA_NET ]] || fail "no $ISOLA_NET (make all)"
fi
interop_init interop-net-testpmd
NS=isola-tpmd-$$
TAP=isola-t$$
SOCK=$TMP/net.sock
cleanup_ns() {
	ip netns del "$NS" 2>/dev/null
	interop_cleanup
}
trap cleanup_ns EXIT

# The namespace says nothing on its own (no IPv6 autoconfiguration, no
# addresses): every frame on the tap is one the test counts.
ip netns add "$NS" || fail "ip netns add $NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ns() { ip netns exec "$NS" "$@"; }
tapstat() { ns cat "/sys/class/net/$TAP/statistics/$1"; }

# DPDK without hugepages: --no-huge gives memfd-backed memory (which a
# vhost-user peer can map), with legacy memory, hence no --in-memory;
# --no-shconf and a unique prefix keep parallel runs apart.  The EAL threads
# float on the host's CPUs instead of being pinned to one each.
eal() { echo "--lcores=0@(0-$(($(nproc) - 1))),1@(0-$(($(nproc) - 1))) --no-huge -m 256 --no-pci --no-shconf --file-prefix $1"; }

# ---- the back-end ------------------------------------------------------------
if [[ $NET_BACKEND == isola-net ]]; then
	ns ip tuntap add dev "$TAP" mode tap || fail "ip tuntap add $TAP"
	ns ip link set "$TAP" up
	start_server "$TMP/backend.log" ip netns exec "$NS" "$ISOLA_NET" --socket "$SOCK" --tap "$TAP" --mac "$MAC"
	BACKEND_PID=$SERVER_PID
else
	# shellcheck disable=SC2046
	ip netns exec "$NS" "$TESTPMD" $(eal "isola-tpb$$") --vdev "net_vhost0,iface=$SOCK,queues=1" \
		--vdev "net_tap0,iface=$TAP" -- --no-mlockall --total-num-mbufs=4096 --forward-mode=io \
		-a --stats-period 3600 </dev/null >"$TMP/backend.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	for _ in $(seq 100); do
		[[ -S $SOCK ]] && ns test -e "/sys/class/net/$TAP" && break
		sleep 0.1
	done
fi
[[ -S $SOCK ]] || { sed 's/^/    | /' "$TMP/backend.log"; fail "$NET_BACKEND did not create $SOCK"; }

# ---- testpmd, the front-end, driven through its prompt -----------------------
# (stdbuf: testpmd writes its answers with stdio, block-buffered into a file)
mkfifo "$TMP/cmd"
# shellcheck disable=SC2046
stdbuf -oL "$TESTPMD" $(eal "isola-tpf$$") --vdev "net_virtio_user0,path=$SOCK,queues=1,mac=$MAC" -- -i \
	--no-mlockall --total-num-mbufs=2048 --forward-mode=rxonly <"$TMP/cmd" >"$TMP/testpmd.log" 2>&1 &
TESTPMD_PID=$!
PIDS+=("$TESTPMD_PID")
exec 7>"$TMP/cmd"
tp() { echo "$*" >&7; }
# wait_log N REGEX: until the log has N lines matching REGEX (20 s)
wait_log() {
	for _ in $(seq 200); do
		(($(grep -cE -- "$2" "$TMP/testpmd.log") >= $1)) && return 0
		kill -0 "$TESTPMD_PID" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/    | /' "$TMP/testpmd.log" | tail -40
	fail "testpmd: no ${1}x /$2/ in its output"
}
# port_stat N FIELD: FIELD (RX-packets, TX-packets...) of the Nth
# `show port stats 0`
port_stat() {
	awk -v n="$1" -v f="$2:" '/NIC statistics for port 0/ { k++ }
		k == n { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }' "$TMP/testpmd.log"
}
wait_log 1 'testpmd> '
grep -q 'Port 0: link state change event\|Port 0: ' "$TMP/testpmd.log" ||
	{ sed 's/^/    | /' "$TMP/testpmd.log" | tail -20; fail "testpmd has no port 0"; }

# TX: the bursts testpmd's txonly engine makes before rxonly takes over.
rx0=$(tapstat rx_packets)
tp "start tx_first $TX_BURSTS"
sleep 1
tp "show port stats 0"
wait_log 1 'NIC statistics for port 0'
sleep 0.5
sent=$(port_stat 1 TX-packets)
want=$((TX_BURSTS * 32))
got=0
for _ in $(seq 50); do
	got=$(($(tapstat rx_packets) - rx0))
	((got >= want)) && break
	sleep 0.1
done
if [[ $sent != "$want" ]]; then
	bad "TX: testpmd sent $sent frames, want all $want (its burst was refused: a full ring?)"
fi
if ((got != sent)); then
	bad "TX: the namespace received $got frames on $TAP, testpmd sent $sent"
else
	echo "ok   TX: testpmd sent $sent frames, the namespace received $got on $TAP"
fi

# RX: frames for the interface's MAC sent on the tap from the namespace.
tx0=$(tapstat tx_packets)
ns python3 -c '
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frame = bytes.fromhex(sys.argv[2].replace(":", "")) + bytes.fromhex("020000000001") + b"\x88\xb5" + bytes(range(46))
for _ in range(int(sys.argv[3])):
    s.send(frame)
' "$TAP" "$MAC" "$RX_FRAMES" || bad "RX: could not send on $TAP"
injected=$(($(tapstat tx_packets) - tx0))
[[ $injected == "$RX_FRAMES" ]] || bad "RX: the tap sent $injected of $RX_FRAMES frames"
for i in $(seq 2 30); do
	sleep 0.2
	tp "show port stats 0"
	wait_log "$i" 'NIC statistics for port 0'
	sleep 0.1
	received=$(port_stat "$i" RX-packets)
	((received >= injected)) && break
done
if [[ $received != "$injected" ]]; then
	bad "RX: testpmd received $received frames, the namespace sent $injected on $TAP"
else
	echo "ok   RX: the namespace sent $injected frames on $TAP, testpmd received $received"
fi

tp "stop"
tp "quit"
exec 7>&-
for _ in $(seq 100); do kill -0 "$TESTPMD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$TESTPMD_PID" 2>/dev/null; then
	bad "testpmd did not quit"
elif ! wait "$TESTPMD_PID"; then
	sed 's/^/    | /' "$TMP/testpmd.log" | tail -20
	bad "testpmd exited with an error"
fi
if [[ $NET_BACKEND == isola-net ]]; then
	# isola-net's counters line at the front-end's hang-up names its drop
	# counters (tx_malformed=...): every one must be 0; the rest of the log
	# must be clean as for any server.
	for _ in $(seq 30); do grep -q 'front-end gone or device reset:' "$TMP/backend.log" && break; sleep 0.1; done
	counters=$(grep 'front-end gone or device reset:' "$TMP/backend.log")
	drops=$(sed -n 's/.*drops: \([^;]*\);.*/\1/p' <<<"$counters" | tr ' ' '\n' | grep -v '=0$')
	[[ -n $counters && -z $drops ]] || bad "isola-net's drop counters: ${drops:-no counters line}"
	grep -v 'front-end gone or device reset:' "$TMP/backend.log" >"$TMP/backend.clean"
	server_ok "$BACKEND_PID" "$TMP/backend.clean" isola-net
elif ! kill -0 "$BACKEND_PID" 2>/dev/null; then
	bad "testpmd (back-end) died"
fi
if ((failed)); then
	echo "--- testpmd (front-end)"
	sed 's/^/    | /' "$TMP/testpmd.log" | grep -v '^    | *$' | tail -60
	echo "--- $NET_BACKEND"
	sed 's/^/    | /' "$TMP/backend.log" | tail -30
	exit 1
fi
echo "PASS: testpmd (net_virtio_user) <-> $NET_BACKEND: $sent frames out, $received in"
