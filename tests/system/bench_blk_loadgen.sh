#!/bin/bash
# bench/blk's load generator against a real isola-blk (sandboxed, as run.sh
# starts it), briefly: a guest that sleeps on its interrupt sleeps about
# once per request at depth 1; with --halt-poll-us (a guest whose idle vCPU
# KVM halt-polls) the spin catches most completions and the driver rarely
# sleeps; no request fails either way; bad options are refused with status
# 2.  Correctness only: the figures are bench/blk/run.sh's.  Issue 15.
set -eu
cd "$(dirname "$0")/../.."
LOADGEN=build/bench/blk-loadgen
[[ -x build/isola-blk && -x $LOADGEN ]] || { echo "FAIL: run make first" >&2; exit 1; }
# Under build/, not /tmp: /tmp may be a tmpfs (no O_DIRECT), and the
# depth-1 path under test is the one run.sh measures.
mkdir -p build/tests
TMP=$(mktemp -d "$PWD/build/tests/bench-blk-loadgen.XXXXXX")
SERVER=
cleanup() {
	[[ -z $SERVER ]] || { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; } || true
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

fallocate -l 64M "$TMP/disk.img"
build/isola-blk --socket "$TMP/blk.sock" --image "$TMP/disk.img" >"$TMP/blk.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [[ -S $TMP/blk.sock ]] && break; sleep 0.05; done
[[ -S $TMP/blk.sock ]] || fail "isola-blk did not listen: $(cat "$TMP/blk.log")"

field() { # LINE KEY
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
run() { # HALT_POLL_US RW
	"$LOADGEN" --socket "$TMP/blk.sock" --rw "$2" --runtime 1 --warmup 0.2 --halt-poll-us "$1" \
		--cpu-pid "$SERVER" || fail "blk-loadgen --halt-poll-us $1 --rw $2 failed"
}

for rw in randread randwrite; do
	line=$(run 0 "$rw")
	echo "  sleeping guest, $rw: $line"
	[[ $(field "$line" errors) == 0 && $(field "$line" ios) -gt 0 ]] || fail "errors or no I/O: $line"
	[[ $(field "$line" halt_poll_us) == 0 ]] || fail "halt_poll_us not 0: $line"
	awk -v s="$(field "$line" sleeps_per_io)" 'BEGIN { exit !(s >= 0.5) }' ||
		fail "a guest that sleeps on its interrupt slept $(field "$line" sleeps_per_io) times per request at depth 1"

	line=$(run 200 "$rw")
	echo "  halt-polling guest, $rw: $line"
	[[ $(field "$line" errors) == 0 && $(field "$line" ios) -gt 0 ]] || fail "errors or no I/O: $line"
	[[ $(field "$line" halt_poll_us) == 200 ]] || fail "halt_poll_us not 200: $line"
	awk -v c="$(field "$line" halt_poll_caught)" -v s="$(field "$line" sleeps_per_io)" \
		'BEGIN { exit !(c >= 0.5 && s < 0.5) }' ||
		fail "200 us of halt-polling caught $(field "$line" halt_poll_caught) of the completions, slept $(field "$line" sleeps_per_io) per request"
done

for bad in "--halt-poll-us 20000" "--halt-poll-us x" "--halt-poll-us -1" "--poll --halt-poll-us 10"; do
	set +e
	# shellcheck disable=SC2086 # the options, word-split on purpose
	"$LOADGEN" --socket "$TMP/blk.sock" $bad --runtime 0.1 >/dev/null 2>"$TMP/err"
	rc=$?
	set -e
	[[ $rc == 2 ]] || fail "blk-loadgen $bad: status $rc, want 2"
	grep -q . "$TMP/err" || fail "blk-loadgen $bad: no message"
done
echo "bench_blk_loadgen: depth 1 sleeps once per request, halt-polls instead with --halt-poll-us, no errors, bad options refused"
