#!/bin/bash
# Network benchmark: frames through isola-net vs DPDK's dpdk-testpmd
# (net_vhost + net_tap, io forwarding) as vhost-user-net back-ends, both
# driven by build/bench/net-loadgen (a virtio-net driver in a fake guest, one
# queue pair) into a tap in a network namespace this script creates; the
# limit is the same frames written straight into a tap (writev of header +
# frame on an IFF_VNET_HDR fd).  64- and 1500-byte frames; TX (guest -> tap,
# counted by the tap's rx counters in the namespace) and RX (frames sent on
# the tap from the namespace -> the guest's RX ring).
# Prints the figures and saves them to bench/results/net-YYYY-MM-DD.txt.
#   bench/net/run.sh [ROUNDS]        (make bench-net [RUNS=N]; default 3 rounds)
# Environment: RUNTIME (s per run, default 5), WARMUP (s, default 1),
# WORKLOADS (default "tx-64 tx-1500 rx-64 rx-1500"), ISOLA_NET, TESTPMD.
# Needs root (namespace, taps).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
RUNTIME=${RUNTIME:-5}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS:-tx-64 tx-1500 rx-64 rx-1500}
ISOLA_NET=${ISOLA_NET:-build/isola-net}
TESTPMD=${TESTPMD:-dpdk-testpmd}
LOADGEN=$PWD/build/bench/net-loadgen
MAC=02:00:00:00:00:02 # the guest's: net-loadgen's default destination

[[ -x $LOADGEN ]] || { echo "bench: no $LOADGEN; run make" >&2; exit 2; }
command -v "$TESTPMD" >/dev/null || { echo "bench: no $TESTPMD (apt-get install dpdk-dev)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "bench: needs root (a network namespace and taps)" >&2; exit 2; }
ENGINES="isola testpmd tap"
if [[ ! -x $ISOLA_NET ]]; then
	echo "bench: note: no $ISOLA_NET; measuring testpmd and the tap only" >&2
	ENGINES="testpmd tap"
fi
((ROUNDS >= 3)) || echo "bench: note: fewer than 3 rounds ($ROUNDS); medians are noisy" >&2

mkdir -p build/bench bench/results
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
awk '{ exit !($1 > 0.5) }' /proc/loadavg && echo "bench: note: load average $LOAD_BEFORE; other work will skew the figures" >&2
DIR=$(mktemp -d "/tmp/isola-bench-net.XXXXXX")
NS=isola-bn$$
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

# A quiet namespace (no IPv6 autoconfiguration, no addresses): the taps see
# only the benchmark's frames.  Frames to a MAC nobody has, of an EtherType
# nobody takes (net-loadgen.c), are counted by the tap and dropped.
ip netns add "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# (background jobs call ip netns exec themselves: a function would run in a
# subshell, and $! would be the subshell, not the process to kill)
ns() { ip netns exec "$NS" "$@"; }
for t in bn-isola bn-tap; do
	ns ip tuntap add dev "$t" mode tap
	ns ip link set "$t" up
done

wait_socket() {
	for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.05; done
	echo "bench: $2 did not create $1; see below" >&2
	cat "$DIR/$2.log" >&2
	exit 1
}

# isola-net runs all along (it idles without a front-end and takes the next
# one); testpmd's forwarding core spins, so it runs only for its own runs.
if [[ $ENGINES == isola* ]]; then
	ip netns exec "$NS" "$ISOLA_NET" --socket "$DIR/isola.sock" --tap bn-isola --mac "$MAC" >"$DIR/isola.log" 2>&1 &
	PIDS+=($!)
	wait_socket "$DIR/isola.sock" isola
fi
TESTPMD_ARGS=(--lcores="0@(0-$(($(nproc) - 1))),1@(0-$(($(nproc) - 1)))" --no-huge -m 256 --no-pci
	--no-shconf --file-prefix "isola-bn$$" --vdev "net_vhost0,iface=$DIR/testpmd.sock,queues=1"
	--vdev net_tap0,iface=bn-testpmd -- --no-mlockall --total-num-mbufs=8192 --forward-mode=io
	-a --stats-period 3600)
start_testpmd() {
	rm -f "$DIR/testpmd.sock"
	ip netns exec "$NS" "$TESTPMD" "${TESTPMD_ARGS[@]}" </dev/null >"$DIR/testpmd.log" 2>&1 &
	TESTPMD_PID=$!
	PIDS+=("$TESTPMD_PID")
	wait_socket "$DIR/testpmd.sock" testpmd
	for _ in $(seq 100); do ns test -e /sys/class/net/bn-testpmd && return 0; sleep 0.05; done
	echo "bench: testpmd made no tap" >&2
	exit 1
}
stop_testpmd() {
	kill "$TESTPMD_PID"
	wait "$TESTPMD_PID" || true
}

RUNS=$DIR/runs.txt
: >"$RUNS"
# run ENGINE WORKLOAD: one measured run, its line into $RUNS
run() {
	local engine=$1 dir=${2%-*} frame=${2#*-} tap line inj=
	local -a args
	case $engine in
	isola) tap=bn-isola; args=(--socket "$DIR/isola.sock") ;;
	testpmd) tap=bn-testpmd; start_testpmd; args=(--socket "$DIR/testpmd.sock") ;;
	tap) tap=bn-tap; args=(--tap bn-tap) ;;
	esac
	args+=(--frame "$frame" --runtime "$RUNTIME" --warmup "$WARMUP")
	if [[ $dir == tx ]]; then
		args+=(--stats "/sys/class/net/$tap/statistics")
	else
		args+=(--rx)
		# the sender starts first and outlasts the receiver's warm-up and run
		ip netns exec "$NS" "$LOADGEN" --inject "$tap" --dst "$MAC" --frame "$frame" --warmup 0 \
			--runtime "$(awk -v r="$RUNTIME" -v w="$WARMUP" 'BEGIN { print r + w + 2 }')" \
			>"$DIR/inject.txt" 2>&1 &
		inj=$!
	fi
	line=$(ns "$LOADGEN" "${args[@]}") || { echo "bench: net-loadgen against $engine failed" >&2; exit 1; }
	[[ -z $inj ]] || { wait "$inj" || true; line="$line $(sed -n 's/.* mpps=\([^ ]*\) gbps=\([^ ]*\).*/inject_mpps=\1 inject_gbps=\2/p' "$DIR/inject.txt")"; }
	[[ $engine != testpmd ]] || stop_testpmd
	echo "$engine $2 $line" | tee -a "$RUNS" >&2
}

for round in $(seq "$ROUNDS"); do
	for w in $WORKLOADS; do
		# Rotate which engine goes first, so drift hits all alike.
		set -- $ENGINES
		for _ in $(seq $(((round - 1) % $#))); do set -- "${@:2}" "$1"; done
		for e in "$@"; do run "$e" "$w"; done
	done
done

OUT=bench/results/net-$(date +%F).txt
{
	echo "# network: isola-net vs dpdk-testpmd (net_vhost + net_tap) as vhost-user-net back-ends, the tap itself as the limit"
	echo "date: $(date -u '+%F %T %z')"
	echo "kernel: $(uname -r)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) ($(nproc) online)"
	if [[ -d /sys/module/kvm_pvm ]]; then echo "kvm: PVM (software KVM, /sys/module/kvm_pvm)"; else echo "kvm: not PVM"; fi
	echo "testpmd: $(dpkg-query -W -f='${Package} ${Version}' dpdk-dev 2>/dev/null || echo "$TESTPMD")"
	[[ $ENGINES != isola* ]] || echo "isola-net: $ISOLA_NET --socket SOCK --tap TAP --mac $MAC (sandboxed, 1 queue pair)"
	echo "cmd testpmd: $TESTPMD ${TESTPMD_ARGS[*]//$DIR/DIR}"
	echo "cmd load: net-loadgen --socket SOCK [--rx] --frame F --runtime $RUNTIME --warmup $WARMUP (5 MiB memfd guest, queue size 256, EVENT_IDX, VERSION_1, no offloads, no MRG_RXBUF; sleeps on the call eventfd)"
	echo "cmd limit: net-loadgen --tap TAP [--rx] --frame F (TX: writev(12-byte header, frame) on an IFF_VNET_HDR tap fd; RX: read())"
	echo "cmd rx sender: net-loadgen --inject TAP --dst $MAC --frame F (AF_PACKET send() on the tap, in the namespace)"
	echo "counted: TX, the tap's rx_packets/rx_bytes in the namespace over the measured phase; RX, the frames in the guest's RX ring (tap read() for the limit)"
	echo "frame: bytes of Ethernet header + payload, no FCS; Gbit/s counts those bytes only"
	echo "rounds: $ROUNDS, each workload runs every engine in turn, the first one rotating"
	echo "load average (1/5/15 min): $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
	echo "note: $(nproc) online CPUs: the load generator, the back-end (testpmd's forwarding core spins) and, for RX, the sender share them"
	python3 bench/net/report.py "$RUNS"
	echo
	echo "## runs"
	cat "$RUNS"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- servers lib bench/net 2>/dev/null || echo ' (+ uncommitted changes in servers/lib/bench/net)')"
} >"$OUT"
sed -n '/^## runs/q;p' "$OUT"
echo "saved: $OUT"
