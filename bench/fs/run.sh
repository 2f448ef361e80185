#!/bin/bash
# virtio-fs inside L2 (issue 17, acceptance 5): the same L2 (Debian's
# kernel and virtiofs, busybox initramfs, 1 vCPU, 512 MiB) on isola
# (--fs tag=share,socket=) and on QEMU -accel kvm (vhost-user-fs-pci), each
# on a virtiofsd of its own with the same binary and options (Debian's,
# cache=auto, sandbox=chroot), in one nested L1 (QEMU TCG with nested SVM,
# design.md), interleaved, the first one rotating each round
# (tests/system/nested/l1-fsbench.sh).  In each boot L2 times, in its own
# seconds: metadata -- creating, stating (caches dropped) and unlinking
# FILES small files; streaming -- writing MIB MiB (1 MiB writes, fsync)
# and reading it back past its page cache (l2-lib.sh's l2_fsbench).
# Everything is emulated: only the ratio isola / QEMU in the same L1 means
# something.  Prints medians and ratios and saves them to
# bench/results/fs-YYYY-MM-DD.txt.
#   bench/fs/run.sh [RUNS]           (make bench-fs; default 3)
# WARMUP=N uncounted rounds (default 1); FILES=N (default 1000); MIB=N
# (default 64); STEP_TIMEOUT=S per boot in L1 (default 240); L1_TIMEOUT=S
# for all of L1.  REPORT=L1-CONSOLE-LOG: no run, the report of a saved
# console (build/nested/l1-fsbench-console.log) printed.
set -u
cd "$(dirname "$0")/../.." || exit 2
RUNS=${1:-3}
WARMUP=${WARMUP:-1}
FILES=${FILES:-1000}
MIB=${MIB:-64}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
# 2 boots a round, each ~30-90 s in L1 here; L1's own boot ~60 s
L1_TIMEOUT=${L1_TIMEOUT:-$((300 + 2 * (RUNS + WARMUP) * 150))}
source tests/system/nested/build.sh

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/fs/run.sh [RUNS]" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2; exit 2; }
[[ -x /usr/lib/qemu/virtiofsd ]] || { echo "bench: no /usr/lib/qemu/virtiofsd (apt-get install qemu-system-common)" >&2; exit 2; }
qemu-system-x86_64 -device help 2>/dev/null | grep -q '"vhost-user-fs-pci"' ||
	{ echo "bench: qemu-system-x86_64 has no vhost-user-fs-pci" >&2; exit 2; }

# report L1-TEXT: medians, ratios of the medians and of each round's pair
report() {
	python3 - "$1" "$RUNS" "$FILES" "$MIB" <<'PY'
import re, statistics, sys
path, runs, files, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
secs = {}
byround = {}
fails = []
for line in open(path, errors="replace"):
    m = re.match(r"@@FS (\S+) (\S+) (ok|FAIL) (.*)", line)
    if not m:
        continue
    vmm, rnd, ok, rest = m.groups()
    if ok != "ok":
        fails.append(line.strip())
        continue
    if rnd.startswith("w"):
        continue
    for k, v in re.findall(r"(\w+)=([0-9.]+)", rest):
        secs.setdefault((vmm, k), []).append(float(v))
        byround.setdefault((rnd, k), {})[vmm] = float(v)
# rates: higher is better; the ratio isola / QEMU > 1 is isola faster
what = [("create", "files/s", files), ("stat", "files/s", files), ("unlink", "files/s", files),
        ("write", "MiB/s", mib), ("read", "MiB/s", mib)]
print("runs: %s counted per VMM, interleaved, the first VMM rotating each round; each figure a rate "
      "from L2's own seconds (/proc/uptime, 10 ms), median (of all)" % runs)
print("metadata: %d small files in one directory; streaming: %d MiB, 1 MiB blocks" % (files, mib))
ratios = []
for op, unit, amount in what:
    print("\n## %s (%s)" % (op, unit))
    med = {}
    for vmm in ("isola", "qemu"):
        xs = secs.get((vmm, op))
        if not xs:
            continue
        rates = [amount / x if x > 0 else float("inf") for x in xs]
        med[vmm] = statistics.median(rates)
        print("%-6s %10.1f %s  (of %s)" % (vmm, med[vmm], unit, ", ".join("%.1f" % r for r in rates)))
    if "isola" in med and "qemu" in med:
        ratios.append((op, med["isola"], med["qemu"], med["isola"] / med["qemu"], unit))
print("\n## ratios (isola / QEMU, median rates; target >= 1.0: isola as fast or faster)")
for op, a, b, r, unit in ratios:
    print("%-6s: isola %.1f %s, QEMU %.1f %s, ratio %.2f%s" % (op, a, unit, b, unit, r, "" if r >= 1.0 else "  (below target)"))
# the host's load moves both VMMs of a round alike more than it moves
# rounds apart: each round's isola / QEMU too, and their median
print("\n## per round (isola / QEMU in the same round, rates; the median of these)")
for op, unit, amount in what:
    rs = [(r, v["qemu"] / v["isola"]) for (r, k), v in sorted(byround.items())
          if k == op and "isola" in v and "qemu" in v and v["isola"] > 0]
    if rs:
        print("%-6s: %s; median %.2f" % (op, ", ".join("r%s %.2f" % x for x in rs),
                                          statistics.median(x for _, x in rs)))
if fails:
    print("\nFAILED boots (not counted):")
    for f in fails:
        print("  " + f)
sys.exit(1 if fails else 0)
PY
}

if [[ -n ${REPORT:-} ]]; then
	report "$REPORT"
	exit
fi

built=$(NESTED_QEMU=1 nested_build) || { echo "bench: cannot build L1's initramfs: see above" >&2; exit 2; }
read -r KERNEL L1_CPIO <<<"$built"
TMP=$(mktemp -d /tmp/isola-bench-fs.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

L1_APPEND="$L1_KERNEL_ARGS isola.nested=fsbench isola.runs=$RUNS isola.warmup=$WARMUP isola.timeout=$STEP_TIMEOUT isola.fsbfiles=$FILES isola.fsbmib=$MIB"
# shellcheck disable=SC2054 # commas inside QEMU's option values
L1_CMD=(qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 3G
	-nodefaults -no-user-config -display none -no-reboot -monitor none -serial "file:$TMP/l1.log"
	-kernel "$KERNEL" -initrd "$L1_CPIO" -append "$L1_APPEND")
echo "bench: L1 ($L1_CPIO), $RUNS rounds + $WARMUP warm-up, at most $L1_TIMEOUT s" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
timeout -s KILL "$L1_TIMEOUT" "${L1_CMD[@]}" </dev/null >"$TMP/qemu.out" 2>&1
qst=$?
elapsed=$(($(date +%s) - start))
sed 's/\r$//' "$TMP/l1.log" >"$TMP/l1.txt"
cp "$TMP/l1.txt" "$NESTED_OUT/l1-fsbench-console.log"
echo "bench: L1 ran $elapsed s, QEMU exit status $qst" >&2

if ((qst != 0)) || ! grep -q '^@@END' "$TMP/l1.txt"; then
	echo "bench: FAIL: L1 did not finish the benchmark (QEMU status $qst$( ((qst == 137)) && echo ": killed after $L1_TIMEOUT s"))"
	echo "bench: $(grep -c '^@@FS' "$TMP/l1.txt") boots were done; nothing is saved"
	echo "--- the last 60 lines of L1's console ($NESTED_OUT/l1-fsbench-console.log)"
	tail -n 60 "$TMP/l1.txt"
	exit 1
fi

mkdir -p bench/results
OUT=bench/results/fs-$(date +%F).txt
{
	echo "# virtio-fs inside L2 in nested KVM: isola vs QEMU vhost-user-fs-pci, the same virtiofsd, same L1"
	echo "date: $(date '+%Y-%m-%d %H:%M:%S %z')"
	echo "host kernel: $(uname -r)"
	echo "host cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) online)"
	echo "host load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (L1 ran $elapsed s)"
	echo "L1: ${L1_CMD[*]}"
	sed -n 's/^@@INFO /L1 /p' "$TMP/l1.txt"
	report "$TMP/l1.txt"
	echo $? >"$TMP/report.status"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices servers 2>/dev/null || echo ' (+ uncommitted changes)')"
} | tee "$OUT"
echo "saved: $OUT"
exit "$(cat "$TMP/report.status")"
