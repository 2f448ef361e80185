#!/bin/bash
# Linux boot benchmark (issue 10, acceptance 5): isola vs QEMU (-M microvm
# and -M pc) booting Debian's kernel with a busybox initramfs that powers
# off at once, 1 vCPU and 512 MiB, as L2 in one nested L1 (QEMU TCG with
# nested SVM, design.md): every VMM meets the same L1, interleaved, which
# goes first rotating each round (tests/system/nested/l1-bench.sh).
# Figures per configuration: L2's kernel start to /init (its own clock),
# the VMM process from exec to exit, and its page faults in L1.
# Prints them and saves them to bench/results/linux-YYYY-MM-DD.txt.
#   bench/linux/run.sh [RUNS]        (make bench-linux; RUNS default 10)
# WARMUP=N uncounted rounds first (default 1); STEP_TIMEOUT=S per boot in
# L1 (default 150); L1_TIMEOUT=S for the whole L1 (default from RUNS).
# A crashed or hung L1 fails with the tail of its console; nothing is
# retried.  L1's console is kept in build/nested/l1-bench-console.log.
set -u
cd "$(dirname "$0")/../.." || exit 2
RUNS=${1:-10}
WARMUP=${WARMUP:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-150}
# 7 boots a round; a boot takes 10-30 s in L1 here, L1's own boot ~60 s
L1_TIMEOUT=${L1_TIMEOUT:-$((300 + 7 * (RUNS + WARMUP) * 60))}
source tests/system/nested/build.sh

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/linux/run.sh [RUNS]" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2; exit 2; }
((RUNS >= 10)) || echo "bench: note: fewer than 10 runs ($RUNS); no p10/p90, medians are noisy" >&2

built=$(NESTED_QEMU=1 nested_build) || { echo "bench: cannot build L1's initramfs: see above" >&2; exit 2; }
read -r KERNEL L1_CPIO <<<"$built"
TMP=$(mktemp -d /tmp/isola-bench-linux.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

L1_APPEND="$L1_KERNEL_ARGS isola.nested=bench isola.runs=$RUNS isola.warmup=$WARMUP isola.timeout=$STEP_TIMEOUT"
# shellcheck disable=SC2054 # commas inside QEMU's option values
L1_CMD=(qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 3G
	-nodefaults -no-user-config -display none -no-reboot -monitor none -serial "file:$TMP/l1.log"
	-kernel "$KERNEL" -initrd "$L1_CPIO" -append "$L1_APPEND")
echo "bench: L1 ($L1_CPIO, $(($(stat -c %s "$L1_CPIO") >> 20)) MiB), $RUNS rounds + $WARMUP warm-up, at most $L1_TIMEOUT s" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
timeout -s KILL "$L1_TIMEOUT" "${L1_CMD[@]}" </dev/null >"$TMP/qemu.out" 2>&1
qst=$?
elapsed=$(($(date +%s) - start))
sed 's/\r$//' "$TMP/l1.log" >"$TMP/l1.txt"
cp "$TMP/l1.txt" "$NESTED_OUT/l1-bench-console.log"
echo "bench: L1 ran $elapsed s, QEMU exit status $qst" >&2

if ((qst != 0)) || ! grep -q '^@@END' "$TMP/l1.txt"; then
	if ((qst == 137)); then
		echo "bench: FAIL: L1 did not finish within $L1_TIMEOUT s (hung, or too slow: L1_TIMEOUT=)"
	elif grep -qE 'BUG:|Kernel panic|Oops' "$TMP/l1.txt"; then
		echo "bench: FAIL: L1 crashed (QEMU status $qst): $(grep -m 1 -E 'BUG:|Kernel panic|Oops' "$TMP/l1.txt")"
	else
		echo "bench: FAIL: L1 ended before the benchmark did (QEMU status $qst)"
	fi
	echo "bench: $(grep -c '^@@RUN' "$TMP/l1.txt") runs were done; nothing is saved"
	echo "--- QEMU"
	cat "$TMP/qemu.out"
	echo "--- the last 60 lines of L1's console ($NESTED_OUT/l1-bench-console.log)"
	tail -n 60 "$TMP/l1.txt"
	exit 1
fi

mkdir -p bench/results
OUT=bench/results/linux-$(date +%F).txt
{
	echo "# Linux boot in nested KVM: isola vs QEMU microvm / pc (L2: 1 vCPU, 512 MiB)"
	echo "date: $(date '+%Y-%m-%d %H:%M:%S %z')"
	echo "host kernel: $(uname -r)"
	echo "host cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) online)"
	echo "host kvm: $([[ -d /sys/module/kvm_pvm ]] && echo 'PVM (software KVM, /sys/module/kvm_pvm): not used, L1 is QEMU TCG' || echo 'not used, L1 is QEMU TCG')"
	echo "host load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (L1 ran $elapsed s)"
	echo "L1: ${L1_CMD[*]}"
	python3 bench/linux/report.py --runs "$RUNS" "$TMP/l1.txt"
	echo $? >"$TMP/report.status"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices 2>/dev/null || echo ' (+ uncommitted changes in core/arch/lib/devices)')"
} | tee "$OUT"
echo "saved: $OUT"
exit "$(cat "$TMP/report.status")"
