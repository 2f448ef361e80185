#!/bin/bash
# L2 TCP throughput (issue 12, acceptance 6): the same L2 (Debian's kernel,
# busybox initramfs, virtio_net, 1 vCPU, 1 queue pair, offloads on) on isola
# (--net tap=, isola-net) and on QEMU -accel kvm (virtio-net-pci on a tap:
# QEMU's user-space virtio-net, and vhost-net when L1 has /dev/vhost-net) in
# one nested L1 (QEMU TCG with nested SVM, design.md), interleaved, the
# first one rotating each round (tests/system/nested/l1-netbench.sh).  Each
# boot moves NET_MIB MiB L1 -> L2 (rx, L2 receives), L2 -> L1 (tx), and both
# ways at once, on one TCP connection checked end to end by nettest.
# Everything is emulated: only the ratio isola / QEMU in the same L1 means
# something, not the MiB/s.  Prints medians and saves them to
# bench/results/linux-net-YYYY-MM-DD.txt.
#   bench/linux/net.sh [RUNS]        (make bench-linux-net; default 5)
# WARMUP=N uncounted rounds (default 1); NET_MIB=N (default 64);
# STEP_TIMEOUT=S per boot in L1 (default 150); L1_TIMEOUT=S for all of L1.
set -u
cd "$(dirname "$0")/../.." || exit 2
RUNS=${1:-5}
WARMUP=${WARMUP:-1}
NET_MIB=${NET_MIB:-64}
STEP_TIMEOUT=${STEP_TIMEOUT:-150}
# 3 boots a round, each ~30-60 s in L1 here; L1's own boot ~60 s
L1_TIMEOUT=${L1_TIMEOUT:-$((300 + 3 * (RUNS + WARMUP) * 90))}
source tests/system/nested/build.sh

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/linux/net.sh [RUNS]" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2; exit 2; }
[[ -x build/isola-net ]] || echo "bench: note: no build/isola-net: the isola runs will fail" >&2

built=$(NESTED_QEMU=1 nested_build) || { echo "bench: cannot build L1's initramfs: see above" >&2; exit 2; }
read -r KERNEL L1_CPIO <<<"$built"
TMP=$(mktemp -d /tmp/isola-bench-linux-net.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

L1_APPEND="$L1_KERNEL_ARGS isola.nested=netbench isola.runs=$RUNS isola.warmup=$WARMUP isola.timeout=$STEP_TIMEOUT isola.netmib=$NET_MIB"
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
cp "$TMP/l1.txt" "$NESTED_OUT/l1-netbench-console.log"
echo "bench: L1 ran $elapsed s, QEMU exit status $qst" >&2

if ((qst != 0)) || ! grep -q '^@@END' "$TMP/l1.txt"; then
	echo "bench: FAIL: L1 did not finish the benchmark (QEMU status $qst$( ((qst == 137)) && echo ": killed after $L1_TIMEOUT s"))"
	echo "bench: $(grep -c '^@@NET' "$TMP/l1.txt") transfers were done; nothing is saved"
	echo "--- the last 60 lines of L1's console ($NESTED_OUT/l1-netbench-console.log)"
	tail -n 60 "$TMP/l1.txt"
	exit 1
fi

mkdir -p bench/results
OUT=bench/results/linux-net-$(date +%F).txt
{
	echo "# L2 TCP throughput in nested KVM: isola vs QEMU (virtio-net on a tap), same L1"
	echo "date: $(date '+%Y-%m-%d %H:%M:%S %z')"
	echo "host kernel: $(uname -r)"
	echo "host cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) online)"
	echo "host load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (L1 ran $elapsed s)"
	echo "L1: ${L1_CMD[*]}"
	sed -n 's/^@@INFO /L1 /p' "$TMP/l1.txt"
	python3 - "$TMP/l1.txt" "$RUNS" <<'PY'
import re, statistics, sys
runs = {}
fails = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"@@NET (\S+) (\S+) (\S+) (ok|FAIL) mibs=([0-9.]+) secs=([0-9.]+)(.*)", line)
    if not m:
        continue
    vmm, rnd, d, ok, mibs = m.group(1), m.group(2), m.group(3), m.group(4), float(m.group(5))
    if rnd.startswith("w"):
        continue
    if ok != "ok":
        fails.append(line.strip())
        continue
    runs.setdefault((vmm, d), []).append(mibs)
what = {"isola": "isola (isola-net, vhost-user)", "qemu": "QEMU virtio-net (user space)",
        "qemu-vhost": "QEMU vhost-net (L1's kernel)"}
dirs = {"rx": "L1 -> L2 (L2 receives)", "tx": "L2 -> L1 (L2 transmits)", "both": "both ways at once (sum)"}
print("runs: %s counted per VMM, interleaved, the first VMM rotating each round; MiB/s from "
      "nettest (TCP payload, one connection), median (of all)" % sys.argv[2])
med = {}
for d in dirs:
    print("\n## %s" % dirs[d])
    for v in what:
        xs = runs.get((v, d))
        if not xs:
            continue
        med[(v, d)] = statistics.median(xs)
        print("%-11s %-32s %8.2f MiB/s  (of %s)" % (v, what[v], med[(v, d)], ", ".join("%.2f" % x for x in xs)))
print("\n## ratios (isola / peer, medians; > 1: isola faster)")
for d in dirs:
    for peer in ("qemu", "qemu-vhost"):
        if (v := ("isola", d)) in med and (peer, d) in med:
            print("%s %s: isola %.2f, peer %s %.2f, ratio %.2f" % (d, dirs[d], med[v], peer, med[(peer, d)],
                                                               med[v] / med[(peer, d)]))
if fails:
    print("\nFAILED transfers (not counted):")
    for f in fails:
        print("  " + f)
sys.exit(1 if fails else 0)
PY
	echo $? >"$TMP/report.status"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices servers 2>/dev/null || echo ' (+ uncommitted changes)')"
} | tee "$OUT"
echo "saved: $OUT"
exit "$(cat "$TMP/report.status")"
