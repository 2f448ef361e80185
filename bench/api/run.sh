#!/bin/bash
# Control-API benchmark (issue 5, acceptance 6), beside the CLI path:
#  - process start -> API ready (connect succeeds and GET / answers 200):
#    wall time, and CPU time (user + sys of all threads, from wait4 after a
#    SIGKILL at ready).  Target: <= 3 ms CPU time (Firecracker: <= 8 ms).
#  - InstanceStart -> first guest instruction, with bench/boot/exit_guest.S
#    (writes the debug-exit port at its first instruction): the time from
#    sending InstanceStart to reaping the process is an UPPER BOUND (it adds
#    the exit and the tear-down); also the InstanceStart response time.
#  - the CLI path: `isola run --kernel exit_guest.elf` start -> exit, wall
#    and CPU time, and the API path's start -> exit for comparison.
# Median (p10..p90) of >= 30 runs each, interleaved, after 3 warm-up runs.
# Prints the figures and saves them to bench/results/api-YYYY-MM-DD.txt.
#   bench/api/run.sh [RUNS]       ISOLA=path overrides build/isola
#   (ISOLA_BUILT_FROM="..." then says what it was built from).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-30}
ISOLA=${ISOLA:-build/isola}
MEM_MIB=256

[[ -x $ISOLA ]] || { echo "bench: no $ISOLA; run make" >&2; exit 2; }
[[ -w /dev/kvm ]] || { echo "bench: /dev/kvm is not usable by this user" >&2; exit 2; }
((RUNS >= 30)) || echo "bench: note: fewer than 30 runs ($RUNS); medians are noisy" >&2

mkdir -p build/bench bench/results
cc -O2 -Wall -Wextra -Werror -o build/bench/apimeasure bench/api/apimeasure.c
cc -c -o build/bench/exit_guest.o bench/boot/exit_guest.S
ld -T bench/boot/exit_guest.ld -o build/bench/exit_guest.elf build/bench/exit_guest.o
GUEST=$PWD/build/bench/exit_guest.elf
M=build/bench/apimeasure

TMP=$(mktemp -d /tmp/isola-bench-api.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SOCK=$TMP/api.sock

one() {
	case $1 in
	ready) $M ready "$SOCK" -- "$ISOLA" --api-sock "$SOCK" ;;
	boot) $M boot "$SOCK" "$GUEST" "$MEM_MIB" -- "$ISOLA" --api-sock "$SOCK" ;;
	cli) $M cli -- "$ISOLA" run --kernel "$GUEST" --memory "${MEM_MIB}M" --console none ;;
	esac
}

# Fail early, with the reason, if the API path does not work.
if ! first=$(one boot 2>&1) || [[ $first != *status=1* ]]; then
	echo "bench: the API path does not boot exit_guest.elf to status 1: $first" >&2
	exit 1
fi
for i in $(seq $((RUNS + 3))); do
	modes=(ready boot cli)
	((i % 2)) && modes=(cli boot ready)
	for m in "${modes[@]}"; do
		line=$(one "$m") || true
		((i > 3)) && echo "$m $line" >>"$TMP/raw"
	done
done

OUT=bench/results/api-$(date +%F).txt
python3 - "$TMP/raw" "$RUNS" "$ISOLA" <<'EOF' | tee "$OUT"
import os, platform, statistics, subprocess, sys, time
raw, runs, isola = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {"ready": [], "boot": [], "cli": []}
for line in open(raw):
    mode, *kv = line.split()
    rows[mode].append({k: int(v) for k, v in (x.split("=") for x in kv)})
def q(v, p):
    s = sorted(v); return s[min(len(s) - 1, int(p * len(s)))]
def fig(name, vals, unit_div=1000.0, unit="ms"):
    v = [x / unit_div for x in vals]
    return (f"{name}: median {statistics.median(v):.2f} {unit}, p10..p90 {q(v, .1):.2f}..{q(v, .9):.2f},"
            f" min {min(v):.2f} (n={len(v)})")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("# control API: start -> ready, InstanceStart -> first instruction, vs the CLI path")
print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
print(f"kernel: {platform.release()}")
print(f"cpu: {cpu} ({os.cpu_count()} online)")
print(f"load average at the end: {open('/proc/loadavg').read().split()[0]} (wall times suffer on a busy host; CPU times much less)")
print(f"kvm: {'PVM (software KVM, /sys/module/kvm_pvm)' if os.path.isdir('/sys/module/kvm_pvm') else 'hardware-backed'}")
ver = subprocess.run([isola, "--version"], capture_output=True, text=True).stdout.strip()
print(f"isola: {ver} ({isola})")
print("guest: build/bench/exit_guest.elf (debug-exit at its first instruction), 256 MiB, 1 vCPU")
print(f"runs: {runs} per path, interleaved, after 3 warm-up runs; helper bench/api/apimeasure.c")
print()
ok_ready = [r for r in rows["ready"] if r["ready_us"] >= 0]
ok_boot = [r for r in rows["boot"] if r.get("status") == 1]
ok_cli = [r for r in rows["cli"] if r["status"] == 1]
for mode, good in (("ready", ok_ready), ("boot", ok_boot), ("cli", ok_cli)):
    if len(good) != len(rows[mode]):
        print(f"warning: {mode}: {len(rows[mode]) - len(good)} of {len(rows[mode])} runs failed")
if ok_ready:
    print(fig("api start -> ready, wall", [r["ready_us"] for r in ok_ready]))
    print(fig("api start -> ready, CPU (user+sys, wait4)", [r["cpu_us"] for r in ok_ready]))
        # The user/sys split of a process this short is tick-sampled by the
    # kernel (the sum is exact): shown, but read the sum.
    print(fig("api start -> ready, CPU user (tick-sampled split)", [r["user_us"] for r in ok_ready]))
    print(fig("api start -> ready, CPU sys (tick-sampled split)", [r["sys_us"] for r in ok_ready]))
if ok_boot:
    print(fig("api InstanceStart -> 204 response", [r["start_resp_us"] for r in ok_boot]))
    print(fig("api InstanceStart -> process exit (upper bound for first instruction)",
              [r["start_exit_us"] for r in ok_boot]))
    print(fig("api start -> exit incl. configuration, wall", [r["total_us"] for r in ok_boot]))
    print(fig("api start -> exit, CPU (user+sys)", [r["cpu_us"] for r in ok_boot]))
if ok_cli:
    print(fig("cli isola run start -> exit, wall", [r["total_us"] for r in ok_cli]))
    print(fig("cli isola run start -> exit, CPU (user+sys)", [r["cpu_us"] for r in ok_cli]))
if ok_boot and ok_cli:
    a = statistics.median(r["total_us"] for r in ok_boot) / 1000
    c = statistics.median(r["total_us"] for r in ok_cli) / 1000
    print(f"boot-to-exit wall, median (ms): isola API {a:.2f}, peer isola run {c:.2f}, ratio {a / c:.2f}")
if ok_ready:
    m = statistics.median(r["cpu_us"] for r in ok_ready) / 1000
    print(f"target API ready <= 3 ms CPU time: {'met' if m <= 3 else 'NOT met'} ({m:.2f} ms median; Firecracker promises <= 8 ms)")
EOF
# ISOLA_BUILT_FROM describes a binary built elsewhere (e.g. "git archive HEAD").
echo "commit: ${ISOLA_BUILT_FROM:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices 2>/dev/null || echo ' (+ uncommitted changes in core/arch/lib/devices)')}" >>"$OUT"
echo "saved: $OUT"
