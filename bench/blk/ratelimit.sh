#!/bin/bash
# isola-blk's rate limiter (--rate, Firecracker's token buckets), measured
# with build/bench/blk-loadgen (a virtio-blk driver in a fake guest):
#  1. no limiter: this isola-blk vs isola-blk built from BASE (before the
#     limiter existed), interleaved round by round: what an unset limiter
#     costs (ratio of IOPS, should be ~1.00);
#  2. a bandwidth limit (bytes=RATE:1000) and an ops limit (ops=N:1000):
#     the measured rate vs the configured one (must hold within 5 %).
# Prints the figures and saves them to bench/results/ratelimit-YYYY-MM-DD.txt.
#   bench/blk/ratelimit.sh [ROUNDS]      (make bench-ratelimit; default 3)
# Environment: RUNTIME (s per run, default 5), WARMUP (s, default 2: the
# buckets start full, one second's worth, which the warm-up spends),
# BASE (commit, default c1a2c63), ISOLA_BLK_BASE (a ready binary instead),
# BENCH_DIR (where the 256 MiB image goes; default under build/).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
RUNTIME=${RUNTIME:-5}
WARMUP=${WARMUP:-2}
BASE=${BASE:-c1a2c63}
ISOLA_BLK=build/isola-blk
LOADGEN=build/bench/blk-loadgen
BW_RATE=$((8 << 20)) # bytes/s for the bandwidth case (64 KiB reads, depth 4)
OPS_RATE=2000        # requests/s for the ops case (4 KiB reads, depth 32)

[[ -x $ISOLA_BLK && -x $LOADGEN ]] || { echo "bench: no $ISOLA_BLK or $LOADGEN; run make" >&2; exit 2; }
mkdir -p build/bench bench/results
DIR=${BENCH_DIR:-$(mktemp -d "$PWD/build/bench/ratelimit.XXXXXX")}
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	[[ -n ${BENCH_DIR:-} ]] || rm -rf "$DIR"
}
trap cleanup EXIT

# The isola-blk from before the limiter, built from git (not the worktree).
BASE_BLK=${ISOLA_BLK_BASE:-}
if [[ -z $BASE_BLK ]]; then
	mkdir -p "$DIR/base"
	git archive "$BASE" | tar -x -C "$DIR/base"
	echo "bench: building isola-blk at $BASE" >&2
	nice -n 19 make -C "$DIR/base" -j1 build/isola-blk >"$DIR/base.log" 2>&1 ||
		{ echo "bench: building $BASE failed; see $DIR/base.log" >&2; exit 1; }
	BASE_BLK=$DIR/base/build/isola-blk
fi

IMG=$DIR/disk.img
fallocate -l 256M "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=256 oflag=direct conv=notrunc,fsync status=none

wait_socket() {
	for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.05; done
	echo "bench: no socket $1; see $DIR/$2.log" >&2
	exit 1
}
start_blk() { # NAME BINARY [ARGS...]
	local name=$1 bin=$2
	shift 2
	rm -f "$DIR/$name.sock"
	"$bin" --socket "$DIR/$name.sock" --image "$IMG" "$@" >"$DIR/$name.log" 2>&1 &
	PIDS+=($!)
	wait_socket "$DIR/$name.sock" "$name"
}
start_blk base "$BASE_BLK"
start_blk new "$ISOLA_BLK"
start_blk bw "$ISOLA_BLK" --rate "bytes=$BW_RATE:1000"
start_blk ops "$ISOLA_BLK" --rate "ops=$OPS_RATE:1000"

RUNS=$DIR/runs.txt
: >"$RUNS"
run() { # NAME WORKLOAD-TAG LOADGEN-ARGS...
	local name=$1 tag=$2 line
	shift 2
	line=$("$LOADGEN" --socket "$DIR/$name.sock" --runtime "$RUNTIME" --warmup "$WARMUP" "$@") ||
		{ echo "bench: blk-loadgen against $name failed" >&2; exit 1; }
	echo "$name $tag $line" | tee -a "$RUNS" >&2
}

for round in $(seq "$ROUNDS"); do
	for w in randread-qd1 randread-qd32; do
		if ((round % 2)); then order="new base"; else order="base new"; fi
		for e in $order; do run "$e" "$w" --rw randread --iodepth "${w##*-qd}"; done
	done
	run bw randread-64k-qd4 --rw randread --iodepth 4 --bs 65536
	run ops randread-qd32 --rw randread --iodepth 32
done

OUT=bench/results/ratelimit-$(date +%F).txt
{
	echo "# isola-blk --rate: the cost of no limiter (vs $BASE, before the limiter) and how well limits hold"
	echo "date: $(date -u '+%F %T %z')"
	echo "kernel: $(uname -r)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) ($(nproc) online)"
	echo "filesystem: $(df --output=fstype "$DIR" | tail -1) (image 256 MiB, written once)"
	echo "cmd load: $LOADGEN --socket SOCK --rw randread --iodepth D [--bs B] --runtime $RUNTIME --warmup $WARMUP"
	echo "rounds: $ROUNDS (base/new order alternating); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	python3 - "$RUNS" "$BW_RATE" "$OPS_RATE" <<'EOF'
import re, statistics, sys
runs, bw_rate, ops_rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = {}
for line in open(runs):
    name, tag, rest = line.split(' ', 2)
    f = dict(re.findall(r'(\w+)=([\d.]+)', rest))
    data.setdefault((name, tag), []).append((float(f['iops']), float(f['ios']), float(f['runtime_s']), int(f['bs'])))
print()
print("## no limiter: this isola-blk vs the one before the limiter")
print("(IOPS medians; and the median of the per-round ratios, each round's pair run back to back,")
print(" which drift on a shared host hits less; the spread says how noisy the host was)")
for tag in ('randread-qd1', 'randread-qd32'):
    news = [r[0] for r in data[('new', tag)]]
    bases = [r[0] for r in data[('base', tag)]]
    new, base = statistics.median(news), statistics.median(bases)
    pairs = sorted(n / b for n, b in zip(news, bases))
    print(f"{tag}: new {new:.0f}, base {base:.0f}, ratio {new / base:.3f}; per-round ratio median "
          f"{statistics.median(pairs):.3f} (range {pairs[0]:.2f}..{pairs[-1]:.2f}); "
          f"IOPS spread new {min(news):.0f}..{max(news):.0f}, base {min(bases):.0f}..{max(bases):.0f}")
print()
print("## limits (per run: measured over the runtime after the warm-up)")
ok = True
for name, tag, unit, want in (('bw', 'randread-64k-qd4', 'B/s', bw_rate), ('ops', 'randread-qd32', 'IOPS', ops_rate)):
    got = [r[0] * r[3] if unit == 'B/s' else r[0] for r in data[(name, tag)]]
    worst = max(abs(g / want - 1) for g in got)
    ok &= worst <= 0.05
    print(f"{name} ({tag}): configured {want} {unit}, measured {', '.join(f'{g:.0f}' for g in got)}"
          f" (ratio {statistics.median(got) / want:.4f} median; worst deviation {worst * 100:.2f} %)"
          f" -> {'within 5 %' if worst <= 0.05 else 'NOT within 5 %'}")
print()
print("target met: limits within 5 %" if ok else "target NOT met")
EOF
	echo
	echo "## runs"
	cat "$RUNS"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- servers lib bench/blk 2>/dev/null || echo ' (+ uncommitted changes)')"
} >"$OUT"
sed -n '/^## runs/q;p' "$OUT"
echo "saved: $OUT"
