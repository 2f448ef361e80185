#!/bin/bash
# Boot-to-exit benchmark: isola vs qemu-system-x86_64 -M microvm, both booting
# build/guests/hello.elf (PVH) to its debug-exit, interleaved, >= 30 runs each;
# then the same for bench/boot/exit_guest.S, a guest that exits at its first
# instruction (the VMM's own cost, without the guest's work); then, isola
# only, bench/boot/byte_guest.S without and with a disk and an rng: exec to
# the guest's first instruction, and the guest's stop to isola's exit.
# Prints the figures and saves them to bench/results/boot-YYYY-MM-DD.txt.
#   bench/boot/run.sh [RUNS]        (make bench)
# ISOLA=path overrides build/isola; ONLY=first-instruction skips the QEMU
# comparison (a quick run of the last part while tuning).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-30}
ISOLA=${ISOLA:-build/isola}
GUEST=build/guests/hello.elf
QEMU=${QEMU:-qemu-system-x86_64}

[[ -x $ISOLA ]] || { echo "bench: no $ISOLA; run make" >&2; exit 2; }
[[ -f $GUEST ]] || { echo "bench: no $GUEST; run make guests" >&2; exit 2; }
command -v "$QEMU" >/dev/null || { echo "bench: no $QEMU (apt-get install qemu-system-x86)" >&2; exit 2; }
[[ -w /dev/kvm ]] || { echo "bench: /dev/kvm is not usable by this user" >&2; exit 2; }
((RUNS >= 30)) || echo "bench: note: fewer than 30 runs ($RUNS); medians are noisy" >&2

mkdir -p build/bench bench/results
cc -O2 -Wall -Wextra -Werror -o build/bench/measure bench/boot/measure.c
cc -c -o build/bench/exit_guest.o bench/boot/exit_guest.S
ld -T bench/boot/exit_guest.ld -o build/bench/exit_guest.elf build/bench/exit_guest.o
cc -c -o build/bench/byte_guest.o bench/boot/byte_guest.S
ld -T bench/boot/exit_guest.ld -o build/bench/byte_guest.elf build/bench/byte_guest.o
# the with-devices runs' disk: 1 MiB of zeroes (isola-blk only opens it)
truncate -s 1M build/bench/boot-disk.img

OUT=bench/results/boot-$(date +%F)${ONLY:+-$ONLY}.txt
python3 bench/boot/measure.py --measure build/bench/measure --isola "$ISOLA" --qemu "$QEMU" \
	--guest "$GUEST" --min-guest build/bench/exit_guest.elf \
	--byte-guest build/bench/byte_guest.elf --disk-image build/bench/boot-disk.img --memory 256M --runs "$RUNS" \
	${ONLY:+--only-$ONLY} | tee "$OUT.tmp"
status=${PIPESTATUS[0]}
{
	cat "$OUT.tmp"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core arch lib devices 2>/dev/null || echo ' (+ uncommitted changes in core/arch/lib/devices)')"
} >"$OUT"
rm -f "$OUT.tmp"
echo "saved: $OUT"
exit "$status"
