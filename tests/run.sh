#!/bin/bash
# The whole test suite: unit tests (plain and under ASan+UBSan), test guests
# (tests/guest/cases.list, plain and ASan builds of the VMM), and system
# tests (tests/system/*.sh).  Prints one line per test (a passing case of a
# several-case script adds what it says of its pass, indented) and ends with
# "N passed, N failed, N skipped".  Exit status 0 only if nothing failed.
#   tests/run.sh [FILTER]    run only tests whose name contains FILTER
# A skip is a failure unless its reason matches SKIP_ALLOWED below (or the
# extended regex in $ISOLA_SKIP_ALLOWED, for a host that lacks a tool).
set -u
cd "$(dirname "$0")/.."
export ISOLA_ROOT=$PWD
FILTER=${1:-}
PASSED=0 FAILED=0 SKIPPED=0
FAILED_NAMES=()
LOGDIR=$(mktemp -d /tmp/isola-tests.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

# The only reasons a test may skip on a host set up by scripts/deps.sh; any
# other skip (a missing feature, tool or binary) fails the run.
SKIP_ALLOWED=(
	# hardware-KVM-only: stock Linux does not finish booting on PVM
	'^/dev/kvm is PVM \(software KVM\): Linux guests do not finish booting here$'
	# test_gmem's THP case needs the host's shmem_enabled to allow THP;
	# huge_pages.sh (root) sets shmem_enabled itself and checks THP there
	'^shmem_enabled does not allow THP here; not checked$'
	# test_seccomp's golden lists are the release build's
	"^ASan build: its lists carry the sanitizer's calls; the release build compares them$"
)
skip_allowed() {
	local re
	for re in "${SKIP_ALLOWED[@]}" ${ISOLA_SKIP_ALLOWED:+"$ISOLA_SKIP_ALLOWED"}; do
		[[ $1 =~ $re ]] && return 0
	done
	return 1
}

selected() { [[ -z $FILTER || $1 == *"$FILTER"* ]]; }

# record NAME STATUS LOG [WHY]  (status 0 pass, 77 skip, else fail)
# A skip's reason is WHY or the log's first "SKIP: " line.
record() {
	local name=$1 status=$2 log=$3 why=${4:-}
	if [[ $status == 77 ]]; then
		[[ -n $why ]] || why=$(grep -m1 -o 'SKIP: .*' "$log" | sed 's/^SKIP: //')
		if ! skip_allowed "$why"; then
			FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name")
			echo "FAIL: $name (unexpected skip: ${why:-no reason given}; allowed skips: SKIP_ALLOWED in tests/run.sh)"
			sed 's/^/    | /' "$log" | tail -20
			return
		fi
		SKIPPED=$((SKIPPED + 1)); echo "SKIP: $name: $why"
	elif [[ $status == 0 ]]; then
		PASSED=$((PASSED + 1)); echo "PASS: $name"
	else
		FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name"); echo "FAIL: $name (status $status)"
		sed 's/^/    | /' "$log" | tail -40
	fi
}

run_unit() {
	local bin=$1 name=$2 log="$LOGDIR/unit.log" test why
	selected "$name" || return 0
	timeout 300 "$bin" >"$log" 2>&1
	local st=$?
	# Every skipped cmocka test is a result of its own, with the last line
	# it printed before skipping as the reason (checked against SKIP_ALLOWED).
	while read -r test; do
		why=$(awk -v t="$test" '$0 == "[ RUN      ] " t { on = 1; why = ""; next }
			on && $0 == "[  SKIPPED ] " t { print why; exit }
			on && !/^\[/ { why = $0 }' "$log" | sed 's/^SKIP: //')
		record "$name/$test" 77 "$log" "$why"
	done < <(sed -n 's/^\[  SKIPPED \] \(test_[A-Za-z0-9_]*\)$/\1/p' "$log" | sort -u)
	# a binary whose every test skipped has no pass to report
	if [[ $st == 0 ]] && ! grep -q '\[  PASSED  \] [1-9]' "$log"; then
		return 0
	fi
	record "$name" "$st" "$log"
}

for bin in build/tests/unit/test_*; do
	[[ -x $bin ]] && run_unit "$bin" "unit/$(basename "$bin")"
done
for bin in build/asan/tests/unit/test_*; do
	[[ -x $bin ]] && run_unit "$bin" "unit-asan/$(basename "$bin")"
done

# Guest cases: NAME | STATUS | EXPECT | ISOLA ARGS (see tests/guest/cases.list).
# EXPECT is a list of items joined by " && ", each must hold:
#   REGEX          a line of isola's stderr matches REGEX (grep -E)
#   console:REGEX  a line of the guest's console matches REGEX
#   input:TEXT     once the console shows READY, TEXT (printf %b) is written to
#                  isola's stdin (the console is then stdio, not a file)
source tests/lib.sh
# The core's lines about a device server in trouble (core/vm.c, supervisor.c):
# a case fails on any of them that none of its stderr REGEXes names.
SERVER_TROUBLE='was killed by|exited with status|hung up|broke the protocol|restarting it|is back after|did not come back|giving up|needs a reset|waiting for it to come back'
run_guest_case() {
	local variant=$1 isola=$2 name=$3 want=$4 expect=$5 args=$6
	local log="$LOGDIR/guest.log" console="$LOGDIR/console" item input=
	local -a stderr_res=() console_res=()
	selected "$variant/$name" || return 0
	while [[ -n $expect ]]; do
		item=${expect%% && *}
		[[ $item == "$expect" ]] && expect= || expect=${expect#* && }
		case $item in
		console:*) console_res+=("${item#console:}") ;;
		input:*) input=${item#input:} ;;
		*) stderr_res+=("$item") ;;
		esac
	done
	# shellcheck disable=SC2086
	eval "set -- $args"
	rm -f "$console" "$console.txt"
	if [[ -n $input ]]; then
		{
			for _ in $(seq 1200); do grep -q READY "$console" 2>/dev/null && break; sleep 0.1; done
			printf '%b' "$input"
		} | timeout 180 "$isola" run --console stdio --timeout 120 "$@" >"$console" 2>"$log.err"
	else
		timeout 180 "$isola" run --console "file:$console" --timeout 120 "$@" </dev/null >"$log.out" 2>"$log.err"
	fi
	local got=$?
	# lines end in CRLF (the UART's and the raw-mode console's): match without CR
	tr -d '\r' <"$console" >"$console.txt" 2>/dev/null
	tr -d '\r' <"$log.err" >"$log.txt"
	console=$console.txt
	{ echo "isola exit status $got (want $want)"; echo "--- console"; head -c 20000 "$console"; echo "--- stderr"; cat "$log.txt"; } >"$log"
	local st=0 re line ok
	[[ $got == "$want" ]] || st=1
	for re in "${stderr_res[@]}"; do
		grep -Eq -- "$re" "$log.txt" || { echo "stderr does not match /$re/" >>"$log"; st=1; }
	done
	for re in "${console_res[@]}"; do
		grep -Eq -- "$re" "$console" 2>/dev/null || { echo "console does not match /$re/" >>"$log"; st=1; }
	done
	# a device server killed, restarted or given up on is a failure unless expected
	local trouble=0
	while IFS= read -r line; do
		ok=0
		for re in "${stderr_res[@]}"; do [[ $line =~ $re ]] && ok=1 && break; done
		((ok)) && continue
		((trouble++ < 6)) && echo "device server trouble the case does not expect: $line" >>"$log"
		st=1
	done < <(grep -E "$SERVER_TROUBLE" "$log.txt")
	((trouble > 6)) && echo "... and $((trouble - 6)) more such lines" >>"$log"
	if grep -q '^FAIL' "$console" 2>/dev/null; then
		echo "guest printed FAIL" >>"$log"; st=1
	fi
	if [[ -n $ISOLA_ASAN_LOG ]] && grep -q 'Sanitizer' "$log.err"; then
		echo "sanitizer report" >>"$log"; st=1
	fi
	record "$variant/$name" "$st" "$log"
}
run_cases() {
	local variant=$1 isola=$2 file=$3
	[[ -f $file ]] || return 0
	while IFS='|' read -r name want regex args; do
		name=$(echo "$name" | sed 's/^ *//;s/ *$//')
		[[ -z $name || $name == \#* ]] && continue
		want=$(echo "$want" | sed 's/^ *//;s/ *$//'); regex=$(echo "$regex" | sed 's/^ *//;s/ *$//')
		run_guest_case "$variant" "$isola" "$name" "$want" "$regex" "$args"
	done <"$file"
}
ISOLA_ASAN_LOG=
run_cases guest build/isola tests/guest/cases.list
run_cases hostile build/isola tests/guest/hostile/cases.list
if [[ -x build/asan/isola ]]; then
	ISOLA_ASAN_LOG=1
	run_cases guest-asan build/asan/isola tests/guest/cases.list
	run_cases hostile-asan build/asan/isola tests/guest/hostile/cases.list
fi

for script in tests/system/*.sh; do
	[[ -f $script ]] || continue
	name="system/$(basename "$script" .sh)"
	selected "$name" || continue
	# A script with several cases writes "CASE PASS|FAIL|SKIP WHY" lines to
	# $ISOLA_CASES; each becomes a result of its own (system/SCRIPT/CASE).
	: >"$LOGDIR/cases"
	# (the nested Linux run: ~7-9 min, and a second L1 run when the
	# emulator hangs the first: linux_nested.sh's budget)
	limit=900
	[[ $name == system/linux_nested ]] && limit=1440
	started=$SECONDS
	ISOLA_CASES=$LOGDIR/cases timeout "$limit" bash "$script" >"$LOGDIR/system.log" 2>&1 </dev/null
	st=$?
	# the suite has a time budget (README): each script's share is printed
	echo "TIME: $name $((SECONDS - started)) s"
	if [[ -s $LOGDIR/cases ]]; then
		case_failed=0
		while read -r case verdict why; do
			echo "SKIP: $why" >"$LOGDIR/case.log"
			case $verdict in
			PASS)
				record "$name/$case" 0 "$LOGDIR/case.log"
				# what the case says of its pass, e.g. the nested run's
				# "(L1 run 2; the first: ...)": a green log still shows
				# what it took
				[[ -z $why ]] || echo "      ${why:0:240}"
				;;
			SKIP) record "$name/$case" 77 "$LOGDIR/case.log" ;;
			*)
				case_failed=1
				{
					echo "$why"
					# the script's section for this case, or its whole log
					if grep -qxF "=== CASE $case" "$LOGDIR/system.log"; then
						# (a case name may hold a '/': no regex)
						awk -v c="$case" '$0 == "=== CASE " c { on = 1 } on { print } $0 == "=== END " c { on = 0 }' \
							"$LOGDIR/system.log"
					else
						cat "$LOGDIR/system.log"
					fi
				} >"$LOGDIR/case.log"
				record "$name/$case" 1 "$LOGDIR/case.log"
				;;
			esac
		done <"$LOGDIR/cases"
		# a script that failed outside its cases still fails
		if ((st != 0 && st != 77 && !case_failed)); then record "$name" "$st" "$LOGDIR/system.log"; fi
	else
		record "$name" "$st" "$LOGDIR/system.log"
	fi
done

echo
echo "suite time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
if ((FAILED)); then echo "failed: ${FAILED_NAMES[*]}"; fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
