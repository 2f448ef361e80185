#!/bin/bash
# Every libFuzzer target runs for 10 s on its committed corpus (a regression
# test for inputs found earlier, plus some fresh mutation), two at a time so
# that 9 targets take ~50 s on 2 cores (the suite has a 20-minute budget).  The long campaign is
# `make fuzz FUZZ_SECONDS=N`; figures are in docs/security.md ("Fuzzing").
source "$(dirname "$0")/../lib.sh"
SECONDS_EACH=${FUZZ_SMOKE_SECONDS:-10}
PARALLEL=${FUZZ_SMOKE_JOBS:-2}
command -v clang >/dev/null || skip "clang not installed (apt-get install clang)"
cd "$ISOLA_ROOT"
make -s fuzz-build >/dev/null || fail "fuzz targets do not build"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_target NAME: fuzz for SECONDS_EACH, leave NAME.log and NAME.rc in $work
run_target() {
	local name=$1
	mkdir -p "$work/$name"
	"build/fuzz/fuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$work/$name-" "$work/$name" "tests/fuzz/corpus/$name" \
		>"$work/$name.log" 2>&1
	echo $? >"$work/$name.rc"
}

names=()
for target in build/fuzz/fuzz_*; do
	names+=("${target##*/fuzz_}")
done
running=0
for name in "${names[@]}"; do
	run_target "$name" &
	running=$((running + 1))
	if ((running >= PARALLEL)); then
		wait -n
		running=$((running - 1))
	fi
done
wait

status=0
for name in "${names[@]}"; do
	if [[ $(cat "$work/$name.rc") != 0 ]]; then
		echo "FAIL: $name"
		grep -E 'ERROR|SUMMARY|Test unit written|#[0-9]+ .* in ' "$work/$name.log" | head -8
		status=1
		continue
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$')
	cov=$(grep -oE 'DONE +cov: [0-9]+ ft: [0-9]+' "$work/$name.log" | tail -1 | sed 's/DONE *//')
	echo "ok: $name: $execs executions in ${SECONDS_EACH}s ($cov)"
done
exit $status
