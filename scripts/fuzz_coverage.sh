#!/bin/bash
# Line and branch coverage of the code each libFuzzer target exercises, from
# a corpus: rebuilds every target with clang source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping, no sanitizers), replays the
# committed corpus plus CORPUS_ROOT/corpus-<name> (default build/fuzz, where
# `make fuzz` leaves new inputs) and prints llvm-cov's totals over the
# target's FUZZ_DEPS_ modules (the harness itself is not counted).
# Needs llvm-14 (llvm-profdata, llvm-cov): scripts/deps.sh installs it.
#   scripts/fuzz_coverage.sh [CORPUS_ROOT] [name...]
set -eu
cd "$(dirname "$0")/.."
root=${1:-build/fuzz}
shift || true
PROFDATA=$(command -v llvm-profdata-14 || command -v llvm-profdata)
COV=$(command -v llvm-cov-14 || command -v llvm-cov)
out=build/fuzz-cov
mkdir -p "$out"
names=("$@")
if ((${#names[@]} == 0)); then
	for f in tests/fuzz/fuzz_*.c; do
		n=${f##*/fuzz_}
		names+=("${n%.c}")
	done
fi
var() { make -s --no-print-directory --eval 'print-%: ; @echo $($*)' "print-$1"; }
printf '%-20s %8s %10s %10s %10s\n' target inputs lines functions branches
for n in "${names[@]}"; do
	deps=$(var "FUZZ_DEPS_fuzz_$n")
	libs=$(var "FUZZ_LIBS_fuzz_$n")
	bin=$out/fuzz_$n
	# shellcheck disable=SC2086
	clang -g -O1 -std=gnu11 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
		-I. -Iinclude -o "$bin" "tests/fuzz/fuzz_$n.c" $deps $libs
	dirs=("tests/fuzz/corpus/$n")
	[[ -d $root/corpus-$n ]] && dirs+=("$root/corpus-$n")
	inputs=$(find "${dirs[@]}" -type f | wc -l)
	rm -f "$out/$n".*.profraw
	LLVM_PROFILE_FILE="$out/$n.%p.profraw" "$bin" -runs=0 "${dirs[@]}" >"$out/$n.log" 2>&1
	"$PROFDATA" merge -sparse -o "$out/$n.profdata" "$out/$n".*.profraw
	# lib/log.c is a helper every target links, not code under test.
	# shellcheck disable=SC2086
	"$COV" report "$bin" -instr-profile="$out/$n.profdata" ${deps//lib\/log.c/} >"$out/$n.report"
	# TOTAL  regions missed cover  functions missed exec  lines missed cover  branches missed cover
	awk -v n="$n" -v i="$inputs" '
		/^TOTAL/ {printf "%-20s %8d %10s %10s %10s\n", n, i, $10, $7, $13; printf "%s", files}
		NR > 2 && !/^-/ && !/^TOTAL/ {files = files sprintf("  %-34s %10s %10s %10s\n", $1, $10, $7, $13)}' \
		"$out/$n.report"
done
