#!/bin/bash
# Snapshot and restore (issue 16, docs/snapshot.md), with the counter guest
# (tests/guest/counter.c, 2 vCPUs, 64 MiB):
#  1. PUT /snapshot/create while Running is refused (400 naming Paused), and
#     `isola snapshot` says so too (status 2);
#  2. paused mid-count, `isola snapshot` writes the state and memory files
#     (the memory file is the RAM's size and sparse), the VM is killed, and
#     `isola restore` in a new process continues the count from the exact
#     next number: no gap, no repeat, no reboot banner; so do three clones
#     restored from the same files at once;
#  3. a fresh `isola --api-sock` takes PUT /snapshot/load with mem_backend
#     and resume_vm false: GET / says Paused and nothing counts; PATCH /vm
#     Resumed continues from the next number; that VM, paused and
#     snapshotted over the very files it was restored from (which it maps),
#     runs on intact when resumed (the files are replaced whole, never
#     truncated under it; no temporary file is left), one path for both
#     files is refused, and the new pair continues once more under `isola
#     restore --api-sock`; a configured isola refuses the load;
#  4. a state file of another format version, a truncated one, a corrupted
#     one and a memory file of the wrong size are refused with a clear error
#     and exit status 2 (no crash);
#  5. a VM with a device server (entropy) is snapshotted (204; the
#     devices' cases are tests/system/snapshot_devices.sh).
# Runs build/isola, and build/asan/isola for 2 and 4 when built.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
GUEST=$GUESTS/counter.elf
[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUEST ]] || fail "no $GUEST; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
TMP=$(mktemp -d /tmp/isola-snapshot.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

# api SOCK METHOD PATH [BODY]: sets CODE and BODY.
api() {
	local sock=$1 method=$2 path=$3 data=${4-}
	local args=(-s --max-time 10 --unix-socket "$sock" -X "$method" -o "$TMP/resp"
		-w '%{http_code}' -H 'Accept: application/json')
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	CODE=$(curl "${args[@]}" "http://localhost$path" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
wait_api() {
	for _ in $(seq 200); do
		api "$1" GET / && [[ $CODE == 200 ]] && return 0
		sleep 0.05
	done
	return 1
}
# counts FILE [FRONT]: whole lines only, FRONT (the line the pause cut,
# console_cut) read before FILE: a restore's output may begin with the rest
# of the line the guest was printing when it was paused ("unt 5" after the
# original's "co"), and a VM killed or read mid-line has a cut last line
# ("count 1" of "count 10"); tests/lib.sh console_counts
counts() { console_counts "$1" "${2-}"; }
last_count() { counts "$1" | tail -n 1; }
wait_count() { # FILE MIN SECONDS
	local c
	for _ in $(seq $(($3 * 20))); do
		c=$(last_count "$1")
		[[ -n $c ]] && ((c >= $2)) && return 0
		sleep 0.05
	done
	return 1
}
# consecutive FILE FIRST [FRONT]: the counts in FILE (after FRONT) are
# FIRST, FIRST+1, ... (>= 3 of them)
consecutive() {
	local want=$2 n=0 c
	for c in $(counts "$1" "${3-}"); do
		[[ $c == "$want" ]] || { echo "count $c where $want was due"; return 1; }
		want=$((want + 1))
		n=$((n + 1))
	done
	((n >= 3)) || { echo "only $n counts"; return 1; }
}

cat >"$TMP/vm.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "period_ms=50"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 64}}
EOF

# snapshot_counter ISOLA NAME: boot the counter, pause it mid-count and
# snapshot it to $TMP/NAME.state / .mem; sets PAUSED_AT (the last count)
# and PAUSED_CUT (the line the pause cut, which a restore continues).
snapshot_counter() {
	local isola=$1 name=$2 sock=$TMP/$2.sock pid
	"$isola" --api-sock "$sock" --config-file "$TMP/vm.json" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	wait_api "$sock" && wait_count "$TMP/$name.out" 3 20 || {
		problem "$name: the counter did not start: $(tail -3 "$TMP/$name.err")"
		return 1
	}
	api "$sock" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/$name.state\", \"mem_file_path\": \"$TMP/$name.mem\"}"
	[[ $CODE == 400 && $BODY == *"only valid while the VM is Paused; the VM is Running"* ]] &&
		ok "$name: PUT /snapshot/create while Running: 400 $BODY" ||
		problem "$name: PUT /snapshot/create while Running: $CODE $BODY"
	"$isola" snapshot --api-sock "$sock" --state "$TMP/$name.state" --mem "$TMP/$name.mem" 2>"$TMP/cli.err"
	local st=$?
	[[ $st == 2 ]] && grep -q 'Paused' "$TMP/cli.err" && ok "$name: isola snapshot while Running: status 2, $(cat "$TMP/cli.err")" ||
		problem "$name: isola snapshot while Running: status $st, $(cat "$TMP/cli.err")"
	api "$sock" PATCH /vm '{"state": "Paused"}'
	[[ $CODE == 204 ]] || { problem "$name: pause: $CODE $BODY"; return 1; }
	PAUSED_AT=$(last_count "$TMP/$name.out")
	PAUSED_CUT=$(console_cut "$TMP/$name.out")
	"$isola" snapshot --api-sock "$sock" --state "$TMP/$name.state" --mem "$TMP/$name.mem" >/dev/null 2>"$TMP/cli.err" ||
		{ problem "$name: isola snapshot: $(cat "$TMP/cli.err")"; return 1; }
	sleep 0.2
	[[ $(last_count "$TMP/$name.out") == "$PAUSED_AT" ]] || problem "$name: counted on while paused"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	local size blocks
	size=$(stat -c %s "$TMP/$name.mem")
	blocks=$(($(stat -c %b "$TMP/$name.mem") * 512))
	[[ $size == $((64 << 20)) ]] && ((blocks < size / 4)) &&
		ok "$name: paused at count $PAUSED_AT; memory file $size bytes, $blocks on disk; state file $(stat -c %s "$TMP/$name.state") bytes" ||
		problem "$name: memory file $size bytes ($blocks on disk), want 64 MiB and sparse"
}

builds=("$ISOLA")
[[ -x build/asan/isola ]] && builds+=(build/asan/isola)
restore_ms=()
for isola in "${builds[@]}"; do
	echo "== $isola: snapshot, kill, restore in a new process"
	# the last build's files: a console file left from it would be read
	# before the new process truncates it
	rm -f "$TMP/vm.sock" "$TMP/vm.state" "$TMP/vm.mem" "$TMP/restored.out" "$TMP/restored.err"
	snapshot_counter "$isola" vm || continue
	start=$(date +%s%N)
	"$isola" restore --state "$TMP/vm.state" --mem "$TMP/vm.mem" --console "file:$TMP/restored.out" \
		--timeout 30 </dev/null 2>"$TMP/restored.err" &
	pid=$!
	PIDS+=("$pid")
	wait_count "$TMP/restored.out" 1 20
	first_ms=$((($(date +%s%N) - start) / 1000000))
	wait_count "$TMP/restored.out" $((PAUSED_AT + 4)) 20
	kill -TERM "$pid"
	wait "$pid"
	st=$?
	if why=$(consecutive "$TMP/restored.out" $((PAUSED_AT + 1)) "$PAUSED_CUT") && ! grep -q 'counter guest' "$TMP/restored.out" && [[ $st == 10 ]]; then
		ok "restored: counts $(counts "$TMP/restored.out" "$PAUSED_CUT" | head -1)..$(last_count "$TMP/restored.out") after $PAUSED_AT, no gap, no repeat; $(grep -o 'running in [0-9.]* ms' "$TMP/restored.err"), first count ${first_ms} ms after the process started"
		restore_ms+=("$(grep -o 'running in [0-9.]*' "$TMP/restored.err" | cut -d' ' -f3)")
	else
		problem "restored (status $st): $why; $(head -c 300 "$TMP/restored.out" | tr '\n' ' '); $(tail -3 "$TMP/restored.err" | tr '\n' ' ')"
	fi
	# clones: three VMs restored from the same files at once, each
	# continuing from the same number (the memory file is mapped privately:
	# no clone sees another's writes)
	clones=()
	for c in 1 2 3; do
		rm -f "$TMP/clone$c.out"
		"$isola" restore --state "$TMP/vm.state" --mem "$TMP/vm.mem" --console "file:$TMP/clone$c.out" \
			--timeout 30 </dev/null 2>"$TMP/clone$c.err" &
		clones+=($!)
		PIDS+=($!)
	done
	for c in 1 2 3; do wait_count "$TMP/clone$c.out" $((PAUSED_AT + 3)) 20; done
	kill -TERM "${clones[@]}"
	wait "${clones[@]}"
	bad=""
	for c in 1 2 3; do
		why=$(consecutive "$TMP/clone$c.out" $((PAUSED_AT + 1)) "$PAUSED_CUT") || bad+=" clone $c: $why;"
	done
	[[ -z $bad ]] && ok "3 clones restored at once from one snapshot, each counting on from $((PAUSED_AT + 1))" ||
		problem "clones:$bad"
	grep -q 'forbidden system call\|Sanitizer' "$TMP"/*.err && problem "$isola: $(grep -h -m1 'forbidden system call\|Sanitizer' "$TMP"/*.err)"

	echo "== $isola: bad snapshots are refused"
	cp "$TMP/vm.state" "$TMP/v2.state"
	printf '\x02' | dd of="$TMP/v2.state" bs=1 seek=8 conv=notrunc status=none
	head -c 5000 "$TMP/vm.state" >"$TMP/short.state"
	cp "$TMP/vm.state" "$TMP/bad.state"
	printf '\xff\xfe' | dd of="$TMP/bad.state" bs=1 seek=4000 conv=notrunc status=none
	truncate -s 32M "$TMP/small.mem"
	for c in "v2.state vm.mem format.version.2" "short.state vm.mem truncated" \
		"bad.state vm.mem checksum.mismatch.*corrupted" "vm.state small.mem is.33554432.bytes.*memory.is.67108864" \
		"vm.state none.mem No.such.file"; do
		set -- $c
		timeout 20 "$isola" restore --state "$TMP/$1" --mem "$TMP/$2" --console none </dev/null 2>"$TMP/bad.err"
		st=$?
		[[ $st == 2 ]] && grep -Eq "$3" "$TMP/bad.err" && ! grep -q Sanitizer "$TMP/bad.err" &&
			ok "$1 + $2: status 2, $(head -1 "$TMP/bad.err")" ||
			problem "$1 + $2: status $st, want 2 and /$3/: $(head -3 "$TMP/bad.err")"
	done
done

echo "== PUT /snapshot/load on a fresh isola --api-sock, resume_vm false"
SOCK=$TMP/load.sock
"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/load.out" 2>"$TMP/load.err" &
pid=$!
PIDS+=("$pid")
if wait_api "$SOCK"; then
	api "$SOCK" PUT /snapshot/load "{\"snapshot_path\": \"$TMP/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$TMP/vm.mem\"}, \"resume_vm\": false}"
	[[ $CODE == 204 ]] || problem "PUT /snapshot/load: $CODE $BODY"
	api "$SOCK" GET /
	state=$BODY
	sleep 0.4
	[[ $state == *'"Paused"'* && -z $(counts "$TMP/load.out") ]] &&
		ok "loaded paused: $state, nothing counted" || problem "loaded paused: $state, counts $(counts "$TMP/load.out" | tr '\n' ' ')"
	api "$SOCK" GET /machine-config
	[[ $BODY == *'"vcpu_count":2,"mem_size_mib":64'* ]] && ok "GET /machine-config after the load: $BODY" ||
		problem "GET /machine-config after the load: $BODY, want the snapshot's 2 vCPUs and 64 MiB"
	api "$SOCK" PUT /snapshot/load "{\"snapshot_path\": \"$TMP/vm.state\", \"mem_file_path\": \"$TMP/vm.mem\"}"
	[[ $CODE == 400 ]] && ok "a second load: 400 $BODY" || problem "a second load: $CODE $BODY"
	api "$SOCK" PATCH /vm '{"state": "Resumed"}'
	wait_count "$TMP/load.out" $((PAUSED_AT + 3)) 20
	why=$(consecutive "$TMP/load.out" $((PAUSED_AT + 1)) "$PAUSED_CUT") &&
		ok "resumed: counts from $((PAUSED_AT + 1)) on" || problem "resumed after load: $why"
	# a snapshot of the restored VM (its RAM is the first memory file,
	# mapped privately: no memfd to seek in) written over the very files
	# it was restored from: the VM runs on (the files are replaced, not
	# truncated under its mapping), and the new pair restores once more
	api "$SOCK" PATCH /vm '{"state": "Paused"}'
	again_at=$(last_count "$TMP/load.out")
	again_cut=$(console_cut "$TMP/load.out")
	api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/vm.state\", \"mem_file_path\": \"$TMP/vm.mem\"}"
	[[ $CODE == 204 ]] || problem "snapshot of the restored VM over its own files: $CODE $BODY"
	ls "$TMP"/*.tmp >/dev/null 2>&1 && problem "temporary files left: $(ls "$TMP"/*.tmp)"
	api "$SOCK" PATCH /vm '{"state": "Resumed"}'
	wait_count "$TMP/load.out" $((again_at + 3)) 20
	why=$(consecutive "$TMP/load.out" $((PAUSED_AT + 1)) "$PAUSED_CUT") &&
		ok "snapshotted over the files it was restored from, the VM runs on: counts to $(last_count "$TMP/load.out")" ||
		problem "the VM snapshotted over its own memory file: $why"
	api "$SOCK" PATCH /vm '{"state": "Paused"}'
	api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/same\", \"mem_file_path\": \"$TMP/same\"}"
	[[ $CODE == 400 && $BODY == *"same file"* ]] && ok "one path for both files: 400 $BODY" ||
		problem "one path for both files: $CODE $BODY"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	"$ISOLA" restore --state "$TMP/vm.state" --mem "$TMP/vm.mem" --api-sock "$TMP/again.sock" \
		--console "file:$TMP/again.out" --timeout 30 </dev/null 2>"$TMP/again.err" &
	pid=$!
	PIDS+=("$pid")
	wait_count "$TMP/again.out" $((again_at + 3)) 20
	wait_api "$TMP/again.sock" && api "$TMP/again.sock" GET /
	why=$(consecutive "$TMP/again.out" $((again_at + 1)) "$again_cut") && [[ $BODY == *'"Running"'* ]] &&
		ok "a snapshot of the restored VM, restored with --api-sock: counts from $((again_at + 1)) on, GET / $BODY" ||
		problem "snapshot of a restored VM: $why; GET / $BODY; $(tail -2 "$TMP/again.err" | tr '\n' ' ')"
else
	problem "isola --api-sock did not answer: $(tail -3 "$TMP/load.err")"
fi
kill -TERM "$pid"
wait "$pid" 2>/dev/null

SOCK=$TMP/configured.sock
"$ISOLA" --api-sock "$SOCK" </dev/null >/dev/null 2>"$TMP/configured.err" &
pid=$!
PIDS+=("$pid")
if wait_api "$SOCK"; then
	api "$SOCK" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}'
	api "$SOCK" PUT /snapshot/load "{\"snapshot_path\": \"$TMP/vm.state\", \"mem_file_path\": \"$TMP/vm.mem\"}"
	[[ $CODE == 400 && $BODY == *"fresh isola"* ]] && ok "load after PUT /machine-config: 400 $BODY" ||
		problem "load after PUT /machine-config: $CODE $BODY"
fi
kill -TERM "$pid"
wait "$pid" 2>/dev/null

echo "== a VM with a device server is snapshotted"
if [[ -x build/isola-rng ]]; then
	cat >"$TMP/rng.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "period_ms=50"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}, "entropy": {}}
EOF
	SOCK=$TMP/rng.sock
	"$ISOLA" --api-sock "$SOCK" --config-file "$TMP/rng.json" </dev/null >"$TMP/rng.out" 2>"$TMP/rng.err" &
	pid=$!
	PIDS+=("$pid")
	if wait_api "$SOCK" && wait_count "$TMP/rng.out" 1 20; then
		api "$SOCK" PATCH /vm '{"state": "Paused"}'
		api "$SOCK" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/rng.state\", \"mem_file_path\": \"$TMP/rng.mem\"}"
		[[ $CODE == 204 && -s $TMP/rng.state ]] &&
			ok "with isola-rng: 204, state file $(stat -c %s "$TMP/rng.state") bytes" ||
			problem "with isola-rng: $CODE $BODY"
	else
		problem "the VM with entropy did not start: $(tail -3 "$TMP/rng.err")"
	fi
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null
else
	problem "no build/isola-rng; run make"
fi

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "snapshot: all checks passed (restore to running: ${restore_ms[*]} ms)"
