#!/bin/bash
# Per-request counts for isola-blk and qemu-storage-daemon under the same
# load: system calls (all, io_uring_enter, read, write, poll/ppoll),
# context switches, wake-ups, io_uring submissions and requests punted to
# io-wq workers, for the back-end and for build/bench/blk-loadgen, each
# divided by the requests completed in the same window.  Ratios over many
# requests, so a busy host blurs them far less than it does IOPS.
#   bench/blk/counters.sh [WORKLOAD...]   (default randread-qd1)
# WORKLOAD as in run.sh (randread-qd1, randwrite-qd32, randread-qd32-2q,
# read-64k-qd8, ...; bench/blk/workload.sh).  Environment:
# SECONDS_COUNTED (default 4), ISOLA_BLK, QSD, ISOLA_ARGS (extra isola-blk
# options, e.g. "--poll-us 0"), ENGINES (default "isola qsd").
# Needs perf (linux-perf) and tracepoints (root or perf_event_paranoid <= 1).
set -eu
cd "$(dirname "$0")/../.."
COUNTED=${SECONDS_COUNTED:-4}
ISOLA_BLK=${ISOLA_BLK:-build/isola-blk}
QSD=${QSD:-qemu-storage-daemon}
ENGINES=${ENGINES:-isola qsd}
ISOLA_ARGS=${ISOLA_ARGS:-}
LOADGEN=build/bench/blk-loadgen
WORKLOADS=${*:-randread-qd1}
command -v perf >/dev/null || { echo "counters: no perf (apt-get install linux-perf)" >&2; exit 2; }
[[ -x $ISOLA_BLK && -x $LOADGEN ]] || { echo "counters: run make first" >&2; exit 2; }

DIR=$(mktemp -d "$PWD/build/bench/counters.XXXXXX")
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT
IMG=$DIR/disk.img
fallocate -l 256M "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=256 oflag=direct conv=notrunc,fsync status=none

EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_read
EVENTS+=,syscalls:sys_enter_write,syscalls:sys_enter_ppoll,syscalls:sys_enter_poll
EVENTS+=,context-switches,sched:sched_wakeup,io_uring:io_uring_submit_req
EVENTS+=,io_uring:io_uring_queue_async_work,task-clock
HOST_EVENTS=ipi:ipi_send_cpu,power:cpu_idle,sched:sched_migrate_task

# The process and, for a sandboxed isola-blk, the server its sandbox
# parent forked (its pid namespace's pid 1).
pids_of() {
	local all=$1 kid
	for kid in $(cat /proc/"$1"/task/*/children 2>/dev/null); do all+=,$kid; done
	echo "$all"
}

count() { # ENGINE WORKLOAD
	local rw bs depth queues halt_poll server perf_pid host_pid
	read -r rw bs depth queues halt_poll < <(bench/blk/workload.sh "$2")
	case $1 in
	isola)
		"$ISOLA_BLK" --socket "$DIR/s.sock" --image "$IMG" --queues "$queues" --verbose ${ISOLA_ARGS:-} \
			>"$DIR/server.log" 2>&1 &
		;;
	qsd)
		"$QSD" --blockdev "driver=file,node-name=f,filename=$IMG,cache.direct=on,aio=io_uring" \
			--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$DIR/s.sock,writable=on,num-queues=$queues" \
			>"$DIR/server.log" 2>&1 &
		;;
	esac
	server=$!
	PIDS+=("$server")
	for _ in $(seq 100); do [[ -S $DIR/s.sock ]] && break; sleep 0.05; done
	# A sandboxed isola-blk forks its server after it listens: wait for it,
	# or perf would count the idle sandbox parent alone.
	for _ in $(seq 40); do
		[[ $1 != isola || $ISOLA_ARGS == *--no-sandbox* || -n $(cat /proc/"$server"/task/*/children 2>/dev/null) ]] && break
		sleep 0.05
	done
	# Attached before the load generator connects: the queue threads the
	# back-end starts for it inherit the counters.  The whole run is
	# counted (set-up, warm-up, drain) and divided by every completion.
	local cpu_args=(--cpu-pid "$server") # blk-loadgen adds the descendants
	perf stat -x, -o "$DIR/server.perf" -e "$EVENTS" -p "$(pids_of "$server")" &
	perf_pid=$!
	# Host-wide (other work on the host adds to these): IPIs sent, CPUs
	# entering idle, tasks migrated.
	perf stat -x, -o "$DIR/host.perf" -a -e "$HOST_EVENTS" &
	host_pid=$!
	sleep 0.5
	perf stat -x, -o "$DIR/lg.perf" -e "$EVENTS" -- "$LOADGEN" --socket "$DIR/s.sock" \
		--rw "$rw" --iodepth "$depth" --queues "$queues" --bs "$bs" --halt-poll-us "$halt_poll" --runtime "$COUNTED" \
		--warmup 1 "${cpu_args[@]}" >"$DIR/lg.out"
	kill -INT "$perf_pid" "$host_pid"
	wait "$perf_pid" "$host_pid" || true
	kill "$server"
	wait "$server" 2>/dev/null || true
	grep -h "busy-polled" "$DIR/server.log" | sed 's/^/  /' || true
	rm -f "$DIR/s.sock"
	python3 - "$1" "$2" "$DIR/lg.out" "$DIR/server.perf" "$DIR/lg.perf" "$DIR/host.perf" <<-'EOF'
		import sys
		engine, workload, lg_out, server_perf, lg_perf, host_perf = sys.argv[1:]
		kv = dict(f.split("=", 1) for f in open(lg_out).read().split() if "=" in f)
		ios = float(kv["all_ios"])
		def counts(path):
		    c = {}
		    for line in open(path):
		        f = line.strip().split(",")
		        if len(f) > 2 and f[0].replace(".", "").isdigit():
		            c[f[2]] = float(f[0])
		    return c
		c, lc, hc = counts(server_perf), counts(lg_perf), counts(host_perf)
		per = lambda k: c.get(k, 0) / ios
		lper = lambda k: lc.get(k, 0) / ios
		print(f"{engine} {workload} iops={kv['iops']} p50_us={kv['p50_us']} "
		      f"syscalls={per('raw_syscalls:sys_enter'):.2f} "
		      f"io_uring_enter={per('syscalls:sys_enter_io_uring_enter'):.2f} "
		      f"read={per('syscalls:sys_enter_read'):.2f} write={per('syscalls:sys_enter_write'):.2f} "
		      f"poll={per('syscalls:sys_enter_ppoll') + per('syscalls:sys_enter_poll'):.2f} "
		      f"ctxsw={per('context-switches'):.2f} wakes_done={per('sched:sched_wakeup'):.2f} "
		      f"sqes={per('io_uring:io_uring_submit_req'):.2f} "
		      f"punted={per('io_uring:io_uring_queue_async_work'):.3f} "
		      f"cpu_us={per('task-clock') * 1000:.1f} (proc {kv.get('server_cpu_us_per_io', '?')}) "
		      f"| load: syscalls={lper('raw_syscalls:sys_enter'):.2f} "
		      f"ctxsw={lper('context-switches'):.2f} cpu_us={lper('task-clock') * 1000:.1f} "
		      f"kicks={kv['kicks_per_io']} sleeps={kv['sleeps_per_io']} "
		      f"| host: ipis={hc.get('ipi:ipi_send_cpu', 0) / ios:.2f} "
		      f"idle_entries={hc.get('power:cpu_idle', 0) / ios / 2:.2f} "
		      f"migrations={hc.get('sched:sched_migrate_task', 0) / ios:.3f}")
	EOF
}

for w in $WORKLOADS; do
	for e in $ENGINES; do count "$e" "$w"; done
done
