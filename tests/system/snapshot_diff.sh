#!/bin/bash
# Diff snapshots (issue 16, docs/snapshot.md "Diff snapshots"; Firecracker's
# snapshot_type "Diff" with track_dirty_pages), with the counter guest
# stamping its memory (fill_mib=16 stamp: count N writes N into every 64th
# page of a 16 MiB region, and before each line checks every page holds its
# last stamp and the pattern, else prints "memory BAD"):
#  1. a VM without track_dirty_pages: PUT /snapshot/create Diff is a 400
#     naming track_dirty_pages, and `isola snapshot --diff` exits 2;
#  2. a VM with track_dirty_pages: a Full snapshot (the base), then it runs
#     on and a Diff is taken: the Diff's memory file is the RAM's size and
#     holds only the pages written since the base (far less on disk than
#     the base); a second Diff right after holds (almost) nothing;
#  3. the Diff merged onto the base (its data ranges copied over, as
#     Firecracker documents) restores with the Diff's state file and
#     continues from the next number with every stamp intact; the base
#     alone with the Diff's state file does not (the stamps are stale):
#     the Diff carried the pages that matter;
#  4. a VM loaded with PUT /snapshot/load enable_diff_snapshots true takes
#     a Diff against the files it was loaded from, and that one merged
#     restores and continues too; so does `isola restore
#     --track-dirty-pages` with `isola snapshot --diff`.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
GUEST=$GUESTS/counter.elf
[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUEST ]] || fail "no $GUEST; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v python3 >/dev/null || skip "no python3 (the merge uses SEEK_DATA)"
TMP=$(mktemp -d /tmp/isola-diff.$$.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

api() { # SOCK METHOD PATH [BODY]: sets CODE and BODY
	local args=(-s --max-time 20 --unix-socket "$1" -X "$2" -o "$TMP/resp" -w '%{http_code}')
	[[ -n ${4-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	CODE=$(curl "${args[@]}" "http://localhost$3" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
wait_api() {
	for _ in $(seq 200); do
		[[ -S $1 ]] && api "$1" GET / && [[ $CODE == 200 ]] && return 0
		sleep 0.05
	done
	return 1
}
# counts FILE [FRONT]: whole lines, after FRONT (the line a pause cut: a
# restore's first bytes are its rest); as in snapshot.sh, tests/lib.sh
counts() { console_counts "$1" "${2-}"; }
last_count() { counts "$1" | tail -n 1; }
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
consecutive() { # FILE FIRST [FRONT]: FIRST, FIRST+1, ... (>= 3 of them), no BAD
	local want=$2 n=0 c
	grep -q 'memory BAD\|FAIL\|counter guest' "$1" && { grep -m1 'memory BAD\|FAIL\|counter guest' "$1"; return 1; }
	for c in $(counts "$1" "${3-}"); do
		[[ $c == "$want" ]] || { echo "count $c where $want was due"; return 1; }
		want=$((want + 1)) n=$((n + 1))
	done
	((n >= 3)) || { echo "only $n counts: $(tail -c 200 "$1" | tr '\n' ' ')"; return 1; }
}
on_disk() { echo $(($(stat -c %b "$1") * 512)); }
# merge DIFF ONTO: copy DIFF's data ranges (SEEK_DATA/SEEK_HOLE) over ONTO
merge() {
	python3 - "$1" "$2" <<'PY'
import os, sys
diff = os.open(sys.argv[1], os.O_RDONLY)
base = os.open(sys.argv[2], os.O_WRONLY)
size, off = os.fstat(diff).st_size, 0
while off < size:
    try:
        data = os.lseek(diff, off, os.SEEK_DATA)
    except OSError:
        break  # ENXIO: no data after off
    hole = os.lseek(diff, data, os.SEEK_HOLE)
    while data < hole:
        buf = os.pread(diff, min(1 << 20, hole - data), data)
        os.pwrite(base, buf, data)
        data += len(buf)
    off = hole
PY
}
# restore_check NAME STATE MEM FIRST [FRONT]: isola restore continues from
# FIRST (after FRONT, the line the snapshot's pause cut)
restore_check() {
	local name=$1 pid why
	"$ISOLA" restore --state "$2" --mem "$3" --console "file:$TMP/$name.out" --timeout 60 \
		</dev/null 2>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	wait_count "$TMP/$name.out" $(($4 + 2)) 20
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	consecutive "$TMP/$name.out" "$4" "${5-}"
}

echo "== Diff without track_dirty_pages"
cat >"$TMP/plain.json" <<JSON
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "period_ms=100"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
JSON
"$ISOLA" --api-sock "$TMP/plain.sock" --config-file "$TMP/plain.json" </dev/null >"$TMP/plain.out" 2>"$TMP/plain.err" &
pid=$!
PIDS+=("$pid")
if wait_api "$TMP/plain.sock" && wait_count "$TMP/plain.out" 1 20; then
	api "$TMP/plain.sock" PATCH /vm '{"state": "Paused"}'
	api "$TMP/plain.sock" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/p.state\", \"mem_file_path\": \"$TMP/p.mem\", \"snapshot_type\": \"Diff\"}"
	[[ $CODE == 400 && $BODY == *'needs dirty page tracking'*'track_dirty_pages'* && ! -e $TMP/p.state ]] &&
		ok "Diff without tracking: 400 $BODY" || problem "Diff without tracking: $CODE $BODY"
	"$ISOLA" snapshot --api-sock "$TMP/plain.sock" --state "$TMP/p.state" --mem "$TMP/p.mem" --diff 2>"$TMP/cli.err"
	st=$?
	[[ $st == 2 ]] && grep -q track_dirty_pages "$TMP/cli.err" && ok "isola snapshot --diff: status 2, $(cat "$TMP/cli.err")" ||
		problem "isola snapshot --diff without tracking: status $st, $(cat "$TMP/cli.err")"
else
	problem "the VM without tracking did not start: $(tail -3 "$TMP/plain.err")"
fi
kill -KILL "$pid"
wait "$pid" 2>/dev/null

echo "== Full, then Diff, with track_dirty_pages"
cat >"$TMP/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "period_ms=100 fill_mib=16 stamp"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": true}}
JSON
SOCK=$TMP/vm.sock
"$ISOLA" --api-sock "$SOCK" --config-file "$TMP/vm.json" </dev/null >"$TMP/vm.out" 2>"$TMP/vm.err" &
pid=$!
PIDS+=("$pid")
wait_api "$SOCK" && wait_count "$TMP/vm.out" 2 30 || fail "the counter did not start: $(tail -3 "$TMP/vm.out" "$TMP/vm.err")"
api "$SOCK" PATCH /vm '{"state": "Paused"}'
base_at=$(last_count "$TMP/vm.out")
api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/base.state\", \"mem_file_path\": \"$TMP/base.mem\", \"snapshot_type\": \"Full\"}"
[[ $CODE == 204 ]] || fail "the base (Full): $CODE $BODY"
api "$SOCK" PATCH /vm '{"state": "Resumed"}'
wait_count "$TMP/vm.out" $((base_at + 2)) 20 || problem "the VM did not count on after the base: $(tail -2 "$TMP/vm.out")"
api "$SOCK" PATCH /vm '{"state": "Paused"}'
diff_at=$(last_count "$TMP/vm.out")
diff_cut=$(console_cut "$TMP/vm.out")
"$ISOLA" snapshot --api-sock "$SOCK" --state "$TMP/d1.state" --mem "$TMP/d1.mem" --diff >/dev/null 2>"$TMP/cli.err" ||
	fail "isola snapshot --diff: $(cat "$TMP/cli.err")"
api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/d2.state\", \"mem_file_path\": \"$TMP/d2.mem\", \"snapshot_type\": \"Diff\"}"
[[ $CODE == 204 ]] || problem "a second Diff: $CODE $BODY"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
base_disk=$(on_disk "$TMP/base.mem") d1_disk=$(on_disk "$TMP/d1.mem") d2_disk=$(on_disk "$TMP/d2.mem")
pages=$(grep -o 'Diff: [0-9]* page' "$TMP/vm.err" | head -1 | grep -o '[0-9]*')
echo "base (count $base_at): $base_disk bytes on disk; Diff (count $diff_at, ${pages:-?} pages): $d1_disk; second Diff: $d2_disk"
[[ $(stat -c %s "$TMP/d1.mem") == $((64 << 20)) && $(stat -c %s "$TMP/d2.mem") == $((64 << 20)) ]] &&
	ok "the Diffs' memory files are the RAM's size (64 MiB), sparse" || problem "Diff memory file sizes: $(stat -c %s "$TMP/d1.mem") $(stat -c %s "$TMP/d2.mem")"
# counts base_at+1 .. diff_at each stamped 64 pages of the 16 MiB region
# (all of which the base holds), plus the guest's stack and variables
stamped=$(((diff_at - base_at) * 64 * 4096))
((d1_disk >= stamped && d1_disk * 4 < base_disk)) &&
	ok "the Diff holds the pages written since the base: $d1_disk bytes on disk (the stamps: $stamped) vs the base's $base_disk" ||
	problem "Diff: $d1_disk bytes on disk, base $base_disk: want >= $stamped (the stamps since the base) and below a quarter of the base"
((d2_disk <= 64 << 10)) && ok "a Diff right after a Diff holds (almost) nothing: $d2_disk bytes on disk" ||
	problem "a second Diff with nothing run between holds $d2_disk bytes: the log was not reset"

echo "== the Diff merged onto the base restores"
cp --sparse=always "$TMP/base.mem" "$TMP/merged.mem"
merge "$TMP/d1.mem" "$TMP/merged.mem"
why=$(restore_check merged "$TMP/d1.state" "$TMP/merged.mem" $((diff_at + 1)) "$diff_cut") &&
	ok "base + Diff, with the Diff's state: counts from $((diff_at + 1)) on, every stamp intact" ||
	problem "base + Diff restored: $why; $(tail -2 "$TMP/merged.err" | tr '\n' ' ')"
why=$(restore_check unmerged "$TMP/d1.state" "$TMP/base.mem" $((diff_at + 1)) "$diff_cut") &&
	problem "the base alone with the Diff's state continued cleanly: the stamps do not tell a lost page" ||
	ok "the base alone with the Diff's state does not continue cleanly ($why)"

echo "== PUT /snapshot/load enable_diff_snapshots: a Diff against the loaded files"
SOCK=$TMP/load.sock
"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/load.out" 2>"$TMP/load.err" &
pid=$!
PIDS+=("$pid")
if wait_api "$SOCK"; then
	api "$SOCK" PUT /snapshot/load "{\"snapshot_path\": \"$TMP/d1.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$TMP/merged.mem\"}, \"enable_diff_snapshots\": true, \"resume_vm\": true}"
	[[ $CODE == 204 ]] || problem "load with enable_diff_snapshots: $CODE $BODY"
	wait_count "$TMP/load.out" $((diff_at + 3)) 20
	api "$SOCK" PATCH /vm '{"state": "Paused"}'
	load_at=$(last_count "$TMP/load.out")
	load_cut=$(console_cut "$TMP/load.out")
	api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/d3.state\", \"mem_file_path\": \"$TMP/d3.mem\", \"snapshot_type\": \"Diff\"}"
	[[ $CODE == 204 ]] && ok "Diff of the loaded VM (count $load_at): $(on_disk "$TMP/d3.mem") bytes on disk" ||
		problem "Diff of a VM loaded with enable_diff_snapshots: $CODE $BODY"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	cp --sparse=always "$TMP/merged.mem" "$TMP/merged3.mem"
	merge "$TMP/d3.mem" "$TMP/merged3.mem"
	why=$(restore_check merged3 "$TMP/d3.state" "$TMP/merged3.mem" $((load_at + 1)) "$load_cut") &&
		ok "base + Diff + Diff of the loaded VM: counts from $((load_at + 1)) on, every stamp intact" ||
		problem "the loaded VM's Diff merged and restored: $why; $(tail -2 "$TMP/merged3.err" | tr '\n' ' ')"
else
	problem "isola --api-sock did not answer: $(tail -3 "$TMP/load.err")"
fi
kill -KILL "$pid" 2>/dev/null

echo "== isola restore --track-dirty-pages, then isola snapshot --diff"
if [[ -n ${load_at-} ]]; then
	"$ISOLA" restore --state "$TMP/d3.state" --mem "$TMP/merged3.mem" --track-dirty-pages \
		--api-sock "$TMP/cli.sock" --console "file:$TMP/cli.out" --timeout 60 </dev/null 2>"$TMP/clirestore.err" &
	pid=$!
	PIDS+=("$pid")
	if wait_api "$TMP/cli.sock" && wait_count "$TMP/cli.out" $((load_at + 2)) 20; then
		api "$TMP/cli.sock" PATCH /vm '{"state": "Paused"}'
		if "$ISOLA" snapshot --api-sock "$TMP/cli.sock" --state "$TMP/d4.state" --mem "$TMP/d4.mem" --diff >/dev/null 2>"$TMP/cli.err"; then
			d4_disk=$(on_disk "$TMP/d4.mem")
			((d4_disk > 0 && d4_disk * 4 < base_disk)) && ok "Diff of a VM restored with --track-dirty-pages: $d4_disk bytes on disk" ||
				problem "Diff after isola restore --track-dirty-pages: $d4_disk bytes on disk (base $base_disk)"
		else
			problem "isola snapshot --diff of a VM restored with --track-dirty-pages: $(cat "$TMP/cli.err")"
		fi
	else
		problem "isola restore --track-dirty-pages did not run: $(tail -2 "$TMP/clirestore.err" | tr '\n' ' ')"
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
fi
grep -h -m1 'forbidden system call\|Sanitizer' "$TMP"/*.err && problem "a forbidden system call or a sanitizer report"

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "snapshot_diff: all checks passed"
