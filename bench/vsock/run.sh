#!/bin/bash
# vsock benchmark (issue 14 item 6): bytes and connections through isola-vsock
# vs a plain Unix-socket pair on the host, the limit, in one run, as ratios.
# build/bench/vsock-loadgen (loadgen.c) plays the guest's virtio-vsock driver
# on the rings (one descriptor per packet, 64 KiB packets, Linux's 256 KiB
# buf_alloc, EVENT_IDX and credit returned as Linux 6.1 does) and the host's
# side of Firecracker's hybrid convention:
#   h2g   host -> guest: CONNECT 5000 on the Unix socket, then write() 64 KiB
#         at a time; MiB/s the guest driver received
#   g2h   guest -> host: the guest connects to CID 2 port 5001, isola-vsock
#         joins it to the listener on UDS_5001; MiB/s the host read()
#   conn  host-initiated connection set-up: connect, CONNECT, read OK, close;
#         connections/s
# The limit: the same host-side calls on a Unix socket pair (h2g, g2h: one
# thread write()s, one read()s) or a listener that reads the CONNECT line and
# answers OK (conn).  isola-vsock runs sandboxed (its default), a fresh one
# per run.  Runs alternate isola / pair; medians of ROUNDS.
#   bench/vsock/run.sh [ROUNDS]        (make bench-vsock [RUNS=N]; default 5)
# Environment: SECONDS_PER_RUN (default 3), WARMUP (default 1), MODES.
# Prints the figures and saves them to bench/results/vsock-YYYY-MM-DD.txt.
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
RUNTIME=${SECONDS_PER_RUN:-3}
WARMUP=${WARMUP:-1}
MODES=${MODES:-h2g g2h conn}
LOADGEN=build/bench/vsock-loadgen
SERVER=build/isola-vsock
TARGET=0.7

[[ -x $LOADGEN ]] || { echo "bench: no $LOADGEN; run make" >&2; exit 2; }
[[ -x $SERVER ]] || { echo "bench: no $SERVER in this tree (issue 14)" >&2; exit 2; }
mkdir -p bench/results
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DIR=$(mktemp -d "/tmp/isola-bench-vsock.XXXXXX")
SPID=
cleanup() {
	[[ -n $SPID ]] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

# one run: ENGINE MODE -> the loadgen's key=value line on stdout
run_one() {
	local engine=$1 mode=$2 out
	if [[ $engine == pair ]]; then
		"$LOADGEN" --pair --uds "$DIR/pair.sock" --mode "$mode" --seconds "$RUNTIME" --warmup "$WARMUP"
		return
	fi
	# (the log too: the background job truncates it only once it runs, and
	# the last run's "sandboxed:" must not count for this one)
	rm -f "$DIR/vu.sock" "$DIR/v.sock" "$DIR"/v.sock_* "$DIR/server.log"
	"$SERVER" --socket "$DIR/vu.sock" --cid 3 --uds "$DIR/v.sock" >"$DIR/server.log" 2>&1 &
	SPID=$!
	for _ in $(seq 100); do grep -qs 'sandboxed:' "$DIR/server.log" && [[ -S $DIR/vu.sock ]] && break; sleep 0.05; done
	grep -q 'sandboxed:' "$DIR/server.log" || { cat "$DIR/server.log" >&2; kill "$SPID" 2>/dev/null; exit 1; }
	if ! out=$("$LOADGEN" --socket "$DIR/vu.sock" --cid 3 --uds "$DIR/v.sock" --mode "$mode" \
		--seconds "$RUNTIME" --warmup "$WARMUP"); then
		echo "bench: isola $mode failed; isola-vsock's log:" >&2
		tail -n 20 "$DIR/server.log" >&2
		kill "$SPID" 2>/dev/null
		exit 1
	fi
	# the sandboxed server: pid 1 of its pid namespace, a child of SPID
	local p hwm=
	for p in $(pgrep -P "$SPID"); do
		grep -q '^NSpid:.*[[:space:]]1$' "/proc/$p/status" &&
			hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status")
	done
	echo "$out rss_kib=$hwm"
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null || true
	SPID=
}

value() { # KEY LINE
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A vals
for ((round = 1; round <= ROUNDS; round++)); do
	for mode in $MODES; do
		# alternate which engine goes first
		engines="isola pair"
		((round % 2)) || engines="pair isola"
		for e in $engines; do
			line=$(run_one "$e" "$mode")
			echo "round $round: $line" >&2
			key=mib_per_s
			[[ $mode == conn ]] && key=conns_per_s
			vals[$e.$mode]+="$(value "$key" "$line") "
			[[ $e == isola ]] && vals[rss.$mode]+="$(value rss_kib "$line") "
		done
	done
done

OUT=bench/results/vsock-$(date +%F).txt
{
	echo "# vsock: isola-vsock (sandboxed) driven by bench/vsock/loadgen.c vs a Unix-socket pair, the limit"
	echo "date: $(date '+%F %T %z')"
	echo "host kernel: $(uname -r)"
	echo "host cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1) ($(nproc) online)"
	echo "host load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "runs: $ROUNDS per engine and mode, ${RUNTIME} s each after ${WARMUP} s warm-up, interleaved; medians"
	echo "guest driver: 256-entry rings, one descriptor per packet, 64 KiB packets, buf_alloc 256 KiB, EVENT_IDX, credit returned as Linux 6.1 does (once the free space the host sees < 64 KiB)"
	echo "isola-vsock's peak RSS counts the guest-memory pages it touched (h2g: the 16 MiB of rx buffers it fills)"
	echo "the pair needs two threads, the path through isola-vsock three (host side, server, guest driver): on a busy 2-CPU host that alone costs"
	met=1
	for mode in $MODES; do
		unit="MiB/s"
		[[ $mode == conn ]] && unit="connections/s"
		i=$(echo "${vals[isola.$mode]}" | tr ' ' '\n' | grep . | median)
		p=$(echo "${vals[pair.$mode]}" | tr ' ' '\n' | grep . | median)
		r=$(awk -v a="$i" -v b="$p" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		awk -v r="$r" -v t="$TARGET" 'BEGIN { exit !(r >= t) }' || met=0
		echo "$mode: isola $i $unit, peer (Unix socket pair) $p $unit, ratio $r   (isola: ${vals[isola.$mode]% }; pair: ${vals[pair.$mode]% }; isola-vsock peak RSS KiB: ${vals[rss.$mode]% })"
	done
	if ((met)); then echo "target (>= ${TARGET}x the pair): met"; else echo "target (>= ${TARGET}x the pair): NOT met"; fi
} | tee "$OUT"
echo "saved $OUT"
