#!/bin/bash
# bench/blk's arithmetic, without a benchmark: bench/blk/workload.sh's
# names, and bench/blk/report.py on a made-up runs file (isola, base = an
# isola-blk from before a change, qsd, fio): medians, the "vs before" lines
# run.sh's ISOLA_BASE adds, CPU per request and IOPS per CPU-second, and
# the issue's targets (>= 1.2x qsd, >= 0.85x fio, depth-1 p50 <= fio's + 15
# us), each met or not as the numbers say, the halt-polling guest's rows
# (-hpN) counted apart from the issue's set.  Issue 15.
set -eu
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d "/tmp/isola-bench-blk-report.$$.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for pair in "randread-qd1:randread 4096 1 1 0" "randrw-qd32-2q:randrw 4096 32 2 0" \
	"write-64k-qd8:write 65536 8 1 0" "randwrite-qd1-hp200:randwrite 4096 1 1 200"; do
	got=$(bench/blk/workload.sh "${pair%%:*}")
	[[ $got == "${pair#*:}" ]] || fail "workload.sh ${pair%%:*}: '$got', want '${pair#*:}'"
done
bench/blk/workload.sh randread 2>/dev/null && fail "workload.sh accepted a name without a depth"
for bad in randread-qd1-hpx randread-qd1-hp2x; do
	bench/blk/workload.sh "$bad" 2>/dev/null && fail "workload.sh accepted $bad (a halt-poll without microseconds)"
done

# Three rounds each; the medians are the middle values (isola 20000 IOPS,
# base 10000, qsd 15000, fio 21000 at depth 1).
{
	for i in 19000 20000 21000; do
		echo "isola randread-qd1 iops=$i p50_us=40.0 p99_us=90 p999_us=200 server_cpu_us_per_io=30 load_cpu_us_per_io=10 ios_per_cpu_s=25000 errors=0"
	done
	for i in 9000 10000 50000; do
		echo "base randread-qd1 iops=$i p50_us=80.0 p99_us=90 p999_us=200 server_cpu_us_per_io=45 load_cpu_us_per_io=5 ios_per_cpu_s=20000 errors=0"
	done
	for i in 15000 15000 1000; do
		echo "qsd randread-qd1 iops=$i p50_us=60.0 p99_us=90 p999_us=200 server_cpu_us_per_io=40 load_cpu_us_per_io=10 ios_per_cpu_s=20000 errors=0"
	done
	for i in 21000 22000 20000; do
		echo "fio randread-qd1 iops=$i p50_us=30.0 p99_us=60 p999_us=90 server_cpu_us_per_io=0 load_cpu_us_per_io=20 ios_per_cpu_s=50000 errors=0"
	done
	# The same with a halt-polling guest: isola 24000, qsd 16000, fio 21000,
	# p50 isola 45 vs fio 30: met but for the latency (+15.1 us)
	for e in "isola 24000 45.1" "qsd 16000 50.0" "fio 21000 30.0"; do
		read -r eng i p <<<"$e"
		echo "$eng randread-qd1-hp200 iops=$i p50_us=$p p99_us=90 p999_us=200 server_cpu_us_per_io=30 load_cpu_us_per_io=10 ios_per_cpu_s=25000 errors=0"
	done
	# 64 KiB: isola 2000 MiB/s, base 1000, qsd 1000, fio 2500
	for e in "isola 2000" "base 1000" "qsd 1000" "fio 2500"; do
		echo "${e% *} read-64k-qd8 iops=$((${e#* } * 16)) mib_s=${e#* } p50_us=100 p99_us=200 p999_us=300 server_cpu_us_per_io=10 load_cpu_us_per_io=2 ios_per_cpu_s=80000 errors=0"
	done
} >"$TMP/runs.txt"
python3 bench/blk/report.py "$TMP/runs.txt" >"$TMP/out.txt" || fail "report.py failed: $(cat "$TMP/out.txt")"

want() {
	grep -qxF "$1" "$TMP/out.txt" || { sed 's/^/  | /' "$TMP/out.txt" >&2; fail "no line: $1"; }
}
want "randread-qd1 IOPS: isola 20000, peer 15000, ratio 1.33"
want "randread-qd1 IOPS vs before: isola 20000, peer 10000, ratio 2.00"
want "randread-qd1 p50 latency (us) vs before: isola 40.0, peer 80.0, ratio 0.50"
want "randread-qd1 back-end CPU us per request vs before: isola 30.0, peer 45.0, ratio 0.67"
want "randread-qd1 CPU us per request (back-end + load generator): isola 40.0 (30.0 + 10.0), peer 50.0 (40.0 + 10.0), ratio 0.80"
want "randread-qd1 IOPS vs fio (limit): isola 20000, peer 21000, ratio 0.95"
want "read-64k-qd8 MiB/s vs before: isola 2000, peer 1000, ratio 2.00"
want "read-64k-qd8 MiB/s vs fio (limit): isola 2000, peer 2500, ratio 0.80"
want "target randread-qd1: vs qsd 1.33x (met), vs fio 0.95 (met), p50 vs fio +10.0 us (met)"
want "target read-64k-qd8: vs qsd 2.00x (met), vs fio 0.80 (NOT met)"
want "target randread-qd1-hp200: vs qsd 1.50x (met), vs fio 1.14 (met), p50 vs fio +15.1 us (NOT met)"
want "targets met in 1 of 2 workloads"
want "targets met in 0 of 1 workloads with a halt-polling guest (-hp)"
echo "bench_blk_report: workload names, medians, vs-before lines and target verdicts as computed by hand"
