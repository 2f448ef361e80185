#!/bin/bash
# Every libFuzzer target runs for a short time on its committed corpus (a
# regression test for inputs found earlier, plus some fresh mutation).  The
# long campaign is `make fuzz FUZZ_SECONDS=N`.
source "$(dirname "$0")/../lib.sh"
SECONDS_EACH=${FUZZ_SMOKE_SECONDS:-10}
command -v clang >/dev/null || skip "clang not installed (apt-get install clang)"
cd "$ISOLA_ROOT"
make -s fuzz-build >/dev/null || fail "fuzz targets do not build"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in build/fuzz/fuzz_*; do
	name=${target##*/fuzz_}
	mkdir -p "$work/$name"
	if ! "$target" -max_total_time="$SECONDS_EACH" -print_final_stats=1 "$work/$name" \
		"tests/fuzz/corpus/$name" >"$work/$name.log" 2>&1; then
		echo "FAIL: $name"; grep -E 'ERROR|SUMMARY|Test unit written' "$work/$name.log" | head -5
		status=1
		continue
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$')
	echo "ok: $name: $execs executions in ${SECONDS_EACH}s"
done
exit $status
