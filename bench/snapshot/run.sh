#!/bin/bash
# Snapshot benchmark (issue 16 item 6): restore-to-running time and snapshot
# size for a 256 MiB and a 2 GiB guest, interleaved, >= 30 runs each
# (bench/snapshot/measure.py says exactly what is timed).  Prints the figures
# and saves them to bench/results/snapshot-YYYY-MM-DD.txt.
#   bench/snapshot/run.sh [RUNS]
# ISOLA=path overrides build/isola; SNAPSHOT_DIR=dir puts the snapshot files
# there (default: a temporary directory under /tmp).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-30}
ISOLA=${ISOLA:-build/isola}

[[ -x $ISOLA ]] || { echo "bench: no $ISOLA; run make" >&2; exit 2; }
[[ -w /dev/kvm ]] || { echo "bench: /dev/kvm is not usable by this user" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench: no curl (apt-get install curl)" >&2; exit 2; }
((RUNS >= 30)) || echo "bench: note: fewer than 30 runs ($RUNS); medians are noisy" >&2

mkdir -p build/bench bench/results
cc -O2 -Wall -Wextra -Werror -o build/bench/restore_measure bench/snapshot/restore_measure.c
cc -c -o build/bench/loop_guest.o bench/snapshot/loop_guest.S
ld -T bench/boot/exit_guest.ld -o build/bench/loop_guest.elf build/bench/loop_guest.o

OUT=bench/results/snapshot-$(date +%F).txt
python3 bench/snapshot/measure.py --restore-measure build/bench/restore_measure --isola "$ISOLA" \
	--guest "$PWD/build/bench/loop_guest.elf" --runs "$RUNS" ${SNAPSHOT_DIR:+--dir "$SNAPSHOT_DIR"} | tee "$OUT.tmp"
status=${PIPESTATUS[0]}
{
	cat "$OUT.tmp"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices 2>/dev/null || echo ' (+ uncommitted changes in core/arch/lib/devices)')"
} >"$OUT"
rm -f "$OUT.tmp"
echo "saved: $OUT"
exit "$status"
