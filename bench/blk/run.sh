#!/bin/bash
# Block benchmark: isola-blk vs qemu-storage-daemon's vhost-user-blk export,
# both serving the same raw image and both driven by build/bench/blk-loadgen
# (a virtio-blk driver in a fake guest, one queue), interleaved round by
# round; fio with io_uring straight on the image is the limit.
# Prints the figures and saves them to bench/results/blk-YYYY-MM-DD.txt.
#   bench/blk/run.sh [ROUNDS]        (make bench-blk; default 3 rounds)
# Environment: RUNTIME (s per run, default 10), WARMUP (s, default 1),
# WORKLOADS (default "randread-qd1 randread-qd32 randwrite-qd1
# randwrite-qd32 randrw-qd1 randrw-qd32 randread-qd32-2q randrw-qd32-2q
# read-64k-qd8 write-64k-qd8 randread-qd1-hp200 randwrite-qd1-hp200
# randrw-qd1-hp200"; randrw is 70% reads, -2q two queues (fio: two jobs),
# read/write sequential, -64k the block size, -hp200 a guest whose idle
# vCPU KVM halt-polls 200 us (blk-loadgen --halt-poll-us; fio runs as for
# the same workload without it): bench/blk/workload.sh),
# ISOLA_BLK, QSD, FIO (binaries), ISOLA_ARGS (extra isola-blk options,
# e.g. "--poll-us 0"), ISOLA_BASE (a second isola-blk binary, e.g. a copy
# built before a change: run as engine "base" in the same rounds, and
# compared as "vs before"), OUT (the results file), HOST_IDLE_POLL_NS (this
# host's idle poll for the run, below), BENCH_DIR (where the 1 GiB image
# goes; default a fresh directory under build/, i.e. on the repo's
# filesystem: /tmp may be a tmpfs, which has no O_DIRECT).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
RUNTIME=${RUNTIME:-10}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS:-randread-qd1 randread-qd32 randwrite-qd1 randwrite-qd32 randrw-qd1 randrw-qd32 randread-qd32-2q randrw-qd32-2q read-64k-qd8 write-64k-qd8 randread-qd1-hp200 randwrite-qd1-hp200 randrw-qd1-hp200}
ISOLA_BLK=${ISOLA_BLK:-build/isola-blk}
QSD=${QSD:-qemu-storage-daemon}
FIO=${FIO:-fio}
LOADGEN=build/bench/blk-loadgen

[[ -x $ISOLA_BLK && -x $LOADGEN ]] || { echo "bench: no $ISOLA_BLK or $LOADGEN; run make" >&2; exit 2; }
command -v "$QSD" >/dev/null || { echo "bench: no $QSD (apt-get install qemu-system-x86 or qemu-utils)" >&2; exit 2; }
command -v "$FIO" >/dev/null || { echo "bench: no $FIO (apt-get install fio)" >&2; exit 2; }
((ROUNDS >= 3)) || echo "bench: note: fewer than 3 rounds ($ROUNDS); medians are noisy" >&2

mkdir -p build/bench bench/results
# Other work on a small host shows up as noise and tails: say so.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
awk '{ exit !($1 > 0.5) }' /proc/loadavg && echo "bench: note: load average $LOAD_BEFORE; other work will skew the figures" >&2
# An idle CPU of this host halts at once (its kernel is booted with
# haltpoll.guest_halt_poll_ns=0), so waking a task there costs a wake-up of
# a halted vCPU by the hypervisor (bench/blk/README.md, "The host's idle
# CPUs").  HOST_IDLE_POLL_NS=N sets cpuidle-haltpoll's poll for this run
# (root; restored at exit), e.g. 200000, Linux's default.
IDLE_POLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns
IDLE_POLL_SAVED=
if [[ -n ${HOST_IDLE_POLL_NS:-} ]]; then
	[[ $HOST_IDLE_POLL_NS =~ ^[0-9]+$ ]] || { echo "bench: HOST_IDLE_POLL_NS=$HOST_IDLE_POLL_NS: want nanoseconds, e.g. 200000" >&2; exit 2; }
	[[ -w $IDLE_POLL ]] || { echo "bench: HOST_IDLE_POLL_NS needs root and the haltpoll cpuidle governor ($IDLE_POLL)" >&2; exit 2; }
	IDLE_POLL_SAVED=$(cat "$IDLE_POLL")
fi
DIR=${BENCH_DIR:-$(mktemp -d "$PWD/build/bench/blk.XXXXXX")}
IMG=$DIR/disk.img
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	[[ -n ${BENCH_DIR:-} ]] || rm -rf "$DIR"
	[[ -z $IDLE_POLL_SAVED ]] || echo "$IDLE_POLL_SAVED" >"$IDLE_POLL"
}
trap cleanup EXIT
[[ -z $IDLE_POLL_SAVED ]] || echo "$HOST_IDLE_POLL_NS" >"$IDLE_POLL"

# Preallocated and written once, so every read hits real blocks and writes
# never convert unwritten extents.
rm -f "$IMG"
fallocate -l 1G "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=1024 oflag=direct conv=notrunc,fsync status=none

wait_socket() {
	for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.05; done
	echo "bench: $2 did not create $1; see $DIR/$2.log" >&2
	exit 1
}

# Both offer 2 queues (the -2q workloads); a 1-queue front-end starts one.
# shellcheck disable=SC2086 # ISOLA_ARGS: extra options, word-split on purpose
"$ISOLA_BLK" --socket "$DIR/isola.sock" --image "$IMG" --queues 2 ${ISOLA_ARGS:-} >"$DIR/isola.log" 2>&1 &
PIDS+=($!)
wait_socket "$DIR/isola.sock" isola
# The CPU time of a back-end: the process and its descendants (for
# isola-blk, its sandbox parent and the server it forked; blk-loadgen
# looks for them when it starts measuring); qsd is one process.
CPU_isola=(--cpu-pid "${PIDS[0]}")
ENGINES="isola qsd"
if [[ -n ${ISOLA_BASE:-} ]]; then
	# shellcheck disable=SC2086
	"$ISOLA_BASE" --socket "$DIR/base.sock" --image "$IMG" --queues 2 ${ISOLA_ARGS:-} >"$DIR/base.log" 2>&1 &
	PIDS+=($!)
	wait_socket "$DIR/base.sock" base
	CPU_base=(--cpu-pid "$!")
	ENGINES="isola base qsd"
fi
QSD_ARGS=(--blockdev "driver=file,node-name=f,filename=$IMG,cache.direct=on,aio=io_uring"
	--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$DIR/qsd.sock,writable=on,num-queues=2")
"$QSD" "${QSD_ARGS[@]}" >"$DIR/qsd.log" 2>&1 &
PIDS+=($!)
wait_socket "$DIR/qsd.sock" qsd
CPU_qsd=(--cpu-pid "$!")

RUNS=$DIR/runs.txt
: >"$RUNS"
run_loadgen() { # ENGINE WORKLOAD
	local rw bs depth queues halt_poll line cpu="CPU_$1[@]"
	read -r rw bs depth queues halt_poll < <(bench/blk/workload.sh "$2")
	line=$("$LOADGEN" --socket "$DIR/$1.sock" --rw "$rw" --bs "$bs" --iodepth "$depth" \
		--queues "$queues" --halt-poll-us "$halt_poll" --runtime "$RUNTIME" --warmup "$WARMUP" "${!cpu}") ||
		{ echo "bench: blk-loadgen against $1 failed" >&2; exit 1; }
	echo "$1 $2 $line" | tee -a "$RUNS" >&2
}
run_fio() { # WORKLOAD
	local rw bs depth queues halt_poll
	read -r rw bs depth queues halt_poll < <(bench/blk/workload.sh "$1")
	# -2q: one job per queue, each its own io_uring (as one per vCPU);
	# sequential jobs each from their own offset (offset_increment).
	"$FIO" --name=bench --ioengine=io_uring --direct=1 --rw="$rw" --rwmixread=70 \
		--unified_rw_reporting=mixed --bs="$bs" --iodepth="$depth" --numjobs="$queues" \
		--group_reporting --offset_increment=$((1024 / queues))m --size=$((1024 / queues))m \
		--time_based \
		--ramp_time="$WARMUP" --runtime="$RUNTIME" --lat_percentiles=1 --filename="$IMG" \
		--output-format=json >"$DIR/fio.json"
	python3 bench/blk/report.py fio-json fio "$1" "$DIR/fio.json" | tee -a "$RUNS" >&2
}

for round in $(seq "$ROUNDS"); do
	for w in $WORKLOADS; do
		# Alternate which back-end goes first, so drift hits both alike.
		if ((round % 2)); then order=$ENGINES; else order=$(echo "$ENGINES" | tr ' ' '\n' | tac | xargs); fi
		for e in $order; do run_loadgen "$e" "$w"; done
		run_fio "$w"
	done
done

OUT=${OUT:-bench/results/blk-$(date +%F).txt}
{
	echo "# block I/O: isola-blk vs qemu-storage-daemon (vhost-user-blk), fio as the limit"
	echo "date: $(date -u '+%F %T %z')"
	echo "kernel: $(uname -r)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) ($(nproc) online)"
	if [[ -d /sys/module/kvm_pvm ]]; then echo "kvm: PVM (software KVM, /sys/module/kvm_pvm)"; else echo "kvm: not PVM"; fi
	# An idle CPU that halts at once makes every wake-up of a task on it
	# a wake-up of a halted vCPU by the hypervisor under this host.
	echo "idle: cpuidle $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)$([[ -r $IDLE_POLL ]] && echo ", guest_halt_poll_ns $(cat "$IDLE_POLL")${IDLE_POLL_SAVED:+ for this run (HOST_IDLE_POLL_NS; $IDLE_POLL_SAVED before and after)}")"
	echo "filesystem: $(df --output=fstype "$DIR" | tail -1) on $(df --output=source "$DIR" | tail -1) (image $(du -h --apparent-size "$IMG" | cut -f1), preallocated, written once)"
	echo "qsd: $("$QSD" --version | head -1)"
	echo "fio: $("$FIO" --version)"
	[[ -z ${ISOLA_BASE:-} ]] || echo "base (before): $ISOLA_BASE, same options"
	echo "isola-blk: $ISOLA_BLK --queues 2${ISOLA_ARGS:+ $ISOLA_ARGS} (sandboxed; O_DIRECT when aligned; busy-polls up to 50 us before sleeping at depth 1, --poll-us)"
	echo "cmd qsd: $QSD ${QSD_ARGS[*]//$DIR/DIR}"
	echo "cmd load: $LOADGEN --socket SOCK --rw RW --bs BS --iodepth D --queues Q --halt-poll-us US --runtime $RUNTIME --warmup $WARMUP --cpu-pid PID... (256 MiB memfd guest, queue size 256, EVENT_IDX, one thread waits on the call eventfds; US 0, or 200 in the -hp200 workloads: KVM's default halt_poll_ns)"
	echo "cmd fio: $FIO --ioengine=io_uring --direct=1 --rw=RW --rwmixread=70 --bs=BS --iodepth=D --numjobs=Q --group_reporting --offset_increment=1024/Q MiB --size=1024/Q MiB --time_based --ramp_time=$WARMUP --runtime=$RUNTIME --lat_percentiles=1 --filename=IMG"
	echo "cpu: per request over the measured phase; load generator: getrusage; back-end: its threads' /proc schedstat run time; fio: its usr+sys; IOPS per CPU-second = 1e6 / (back-end + load generator us per request)"
	echo "rounds: $ROUNDS, interleaved per workload ($ENGINES, the order reversed every other round), fio after them"
	echo "latency: submit (avail idx published) to used entry seen; fio: its total latency (lat_ns)"
	echo "load average (1/5/15 min): $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
	echo "note: $(nproc) online CPUs: the load generator, the back-end's thread and the kernel's block I/O work share them"
	python3 bench/blk/report.py "$RUNS"
	echo
	echo "## runs"
	cat "$RUNS"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- servers lib bench/blk 2>/dev/null || echo ' (+ uncommitted changes in servers/lib/bench/blk)')"
} >"$OUT"
sed -n '/^## runs/q;p' "$OUT"
echo "saved: $OUT"
