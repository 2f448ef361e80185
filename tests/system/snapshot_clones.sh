#!/bin/bash
# Many VMs from one snapshot (issue 16 item 4, docs/snapshot.md "Clones"):
# the counter guest fills 32 MiB of its RAM with a pattern (fill_mib=32) and
# is snapshotted mid-count; then CLONES (20) `isola restore`s of the same
# files run at once.  Asserts:
#  1. every clone continues the count from the exact next number (no gap,
#     no repeat, no reboot banner), and before each line it checked all
#     32 MiB against the pattern (a mismatch prints "memory BAD" and stops
#     it): each clone read every page of the region from the memory file;
#  2. the clones share those pages: the sum of their PSS
#     (/proc/PID/smaps_rollup) is below half of CLONES x 32 MiB, what
#     private copies of the region alone would cost (the memory file is
#     mapped MAP_PRIVATE and only read, so they are its page-cache pages).
# Prints each clone's RSS and PSS, the sum of PSS and CLONES x RSS.
# KEEP=1 keeps the console files (the path is printed).
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
GUEST=$GUESTS/counter.elf
CLONES=${CLONES:-20}
FILL_MIB=32
[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUEST ]] || fail "no $GUEST; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
TMP=$(mktemp -d /tmp/isola-clones.$$.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

api() { # SOCK METHOD PATH [BODY]: sets CODE
	local args=(-s --max-time 10 --unix-socket "$1" -X "$2" -o /dev/null -w '%{http_code}')
	[[ -n ${4-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	CODE=$(curl "${args[@]}" "http://localhost$3" 2>/dev/null)
}
# whole lines only (tests/lib.sh console_counts): the clones are killed
# while they count, and one cut in the middle of "count 31" left "count 3"
# as its last line, read as a count (make check failed on it once)
last_count() { console_counts "$1" | tail -n 1; }
wait_count() { # FILE MIN SECONDS
	local c
	for _ in $(seq $(($3 * 10))); do
		c=$(last_count "$1")
		[[ -n $c ]] && ((c >= $2)) && return 0
		grep -q 'memory BAD\|FAIL' "$1" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}

cat >"$TMP/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "period_ms=100 fill_mib=$FILL_MIB"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
JSON
"$ISOLA" --api-sock "$TMP/vm.sock" --config-file "$TMP/vm.json" </dev/null >"$TMP/vm.out" 2>"$TMP/vm.err" &
pid=$!
PIDS+=("$pid")
wait_count "$TMP/vm.out" 2 30 || fail "the counter did not start: $(tail -3 "$TMP/vm.out" "$TMP/vm.err")"
api "$TMP/vm.sock" PATCH /vm '{"state": "Paused"}'
[[ $CODE == 204 ]] || fail "pause: $CODE"
PAUSED_AT=$(last_count "$TMP/vm.out")
# the line the pause cut, if it came between two of its bytes: the clones
# print the rest of it first
CUT=$(console_cut "$TMP/vm.out")
"$ISOLA" snapshot --api-sock "$TMP/vm.sock" --state "$TMP/vm.state" --mem "$TMP/vm.mem" >/dev/null 2>"$TMP/cli.err" ||
	fail "isola snapshot: $(cat "$TMP/cli.err")"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
shown_cut=${CUT%$'\r'}
echo "snapshot at count $PAUSED_AT${CUT:+, mid-line after \"$shown_cut\"}: memory file $(stat -c %s "$TMP/vm.mem") bytes, $(($(stat -c %b "$TMP/vm.mem") * 512)) on disk"

clones=()
for c in $(seq "$CLONES"); do
	"$ISOLA" restore --state "$TMP/vm.state" --mem "$TMP/vm.mem" --console "file:$TMP/clone$c.out" \
		--timeout 120 </dev/null 2>"$TMP/clone$c.err" &
	clones+=($!)
	PIDS+=($!)
done
FAILURES=()
# each clone's third line after the snapshot: it has checked the region
# three times since its restore, so every page of it is in its RSS
for c in $(seq "$CLONES"); do
	wait_count "$TMP/clone$c.out" $((PAUSED_AT + 3)) 60 ||
		FAILURES+=("clone $c did not count to $((PAUSED_AT + 3)): $(tail -2 "$TMP/clone$c.out" | tr '\n' ' ') $(tail -2 "$TMP/clone$c.err" | tr '\n' ' ')")
done
sum_pss=0 sum_rss=0 max_rss=0
for c in $(seq "$CLONES"); do
	p=${clones[$((c - 1))]}
	rss=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
	pss=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
	[[ -n $rss && -n $pss ]] || { FAILURES+=("clone $c (pid $p): no smaps_rollup (exited?)"); continue; }
	echo "clone $c (pid $p): Rss $rss KiB, Pss $pss KiB"
	sum_pss=$((sum_pss + pss))
	sum_rss=$((sum_rss + rss))
	((rss > max_rss)) && max_rss=$rss
done
kill -TERM "${clones[@]}" 2>/dev/null
wait "${clones[@]}" 2>/dev/null
for c in $(seq "$CLONES"); do
	n=0 want=$((PAUSED_AT + 1)) bad=""
	for got in $(console_counts "$TMP/clone$c.out" "$CUT"); do
		[[ $got == "$want" ]] || { bad="count $got where $want was due"; break; }
		want=$((want + 1)) n=$((n + 1))
	done
	((n >= 3)) || bad+=" only $n counts"
	grep -q 'counter guest\|memory BAD\|FAIL' "$TMP/clone$c.out" && bad+=" $(grep -m1 'counter guest\|memory BAD\|FAIL' "$TMP/clone$c.out")"
	[[ -z $bad ]] || FAILURES+=("clone $c:$bad (its console begins '$(head -c 40 "$TMP/clone$c.out" | tr '\r\n' '\\/')', ends '$(tail -c 40 "$TMP/clone$c.out" | tr '\r\n' '\\/')')")
done
touched=$((FILL_MIB * 1024))
echo "sum of PSS over $CLONES clones: $((sum_pss / 1024)) MiB; $CLONES x RSS (each clone's RSS summed): $((sum_rss / 1024)) MiB; $CLONES x the $FILL_MIB MiB each clone read: $((CLONES * FILL_MIB)) MiB"
((max_rss >= touched)) || FAILURES+=("the largest clone RSS is $max_rss KiB, below the $touched KiB region it read: did it read it?")
((sum_pss * 2 < CLONES * touched)) ||
	FAILURES+=("sum of PSS $sum_pss KiB is not below half of $CLONES x $touched KiB: the clones do not share the memory file's pages")
if ((${#FAILURES[@]})); then
	printf '  FAIL: %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "snapshot_clones: $CLONES clones continued from count $((PAUSED_AT + 1)) with their $FILL_MIB MiB intact; PSS sum $((sum_pss / 1024)) MiB vs $((sum_rss / 1024)) MiB of RSS"
