#!/bin/bash
# The virtio-vsock test guests (tests/guest/vsock_echo.c, tests/guest/hostile/
# virtio_vsock.c) under `isola run --vsock cid=3,uds=PATH`, with the host side
# in tests/system/vsock/vsock_peer.py talking through isola-vsock's hybrid
# Unix sockets (CONNECT <port> on PATH; listeners on PATH_<port>).
#   echo           4 concurrent 256 KiB echo connections through CONNECT 5000,
#                  a ttRPC replay on 1024 (Kata's CONNECT 1024 then 6 ttRPC
#                  frames, 370 KB), 2 guest->host connections of 256 KiB
#                  checked at both ends, while a host client that never sends
#                  CONNECT and a CONNECT the guest never answers are open: both
#                  closed by isola-vsock's timeouts, never OK
#   restart        isola-vsock killed with a connection open: the held host
#                  socket ends, the guest gets TRANSPORT_RESET, a new server
#                  binds PATH again and both directions work again
#   hostile_hdr, hostile_credit, hostile_flood   hostile/virtio_vsock attack=...
#                  (malformed headers, credit lies, a REQUEST flood past the
#                  1024-entry table): refused, the device works after each, no
#                  restart of isola-vsock
# Each case is a line "NAME PASS|FAIL|SKIP WHY" in $ISOLA_CASES (tests/run.sh).
#   VSOCK_CASES="echo restart" runs a subset.
# Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh
G=build/guests
CASES=${ISOLA_CASES:-/dev/null}
TMP=$(mktemp -d /tmp/isola-vsg.XXXXXX)
VM_PID= PEER_PID=
cleanup() {
	[[ -n $VM_PID ]] && kill "$VM_PID" 2>/dev/null
	[[ -n $PEER_PID ]] && kill "$PEER_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
failed=0

command -v python3 >/dev/null || skip "no python3"
[[ -x $ISOLA ]] || fail "$ISOLA missing: run make"
[[ -x $ISOLA_ROOT/build/isola-vsock ]] || fail "build/isola-vsock missing: run make"
for g in vsock_echo hostile/virtio_vsock; do
	[[ -f $G/$g.elf ]] || fail "$G/$g.elf missing: run 'make guests'"
done
# The core's lines about a device server in trouble (tests/run.sh).
SERVER_TROUBLE='was killed by|exited with status|hung up|broke the protocol|restarting it|is back after|did not come back|giving up|needs a reset|waiting for it to come back'

# run_case NAME GUEST SCENARIO CMDLINE [TROUBLE_OK_RE [EXPECT]]: boot GUEST with
# a vsock device, run vsock_peer.py SCENARIO against it; PASS needs the peer's
# checks, the guest's PASS (status 1), no FAIL line, no server-trouble line in
# isola's stderr other than TROUBLE_OK_RE, and a stderr line matching each
# regex of EXPECT (joined by " && "): the refusals the case provokes.
run_case() {
	local name=$1 guest=$2 scenario=$3 cmdline=$4 ok_re=${5:-} expect=${6:-} re
	local dir=$TMP/$name uds st why= t0=$SECONDS
	[[ -z ${VSOCK_CASES:-} || " $VSOCK_CASES " == *" $name "* ]] || return 0
	mkdir -p "$dir"
	uds=$dir/v.sock
	echo "=== CASE $name"
	python3 tests/system/vsock/vsock_peer.py "$scenario" "$uds" "$dir/console" "$dir/pid" \
		>"$dir/peer.log" 2>&1 &
	PEER_PID=$!
	for _ in $(seq 200); do [[ -e $uds.ready ]] && break; sleep 0.05; done
	timeout 150 "$ISOLA" run --kernel "$G/$guest.elf" --memory 64M \
		--vsock "cid=3,uds=$uds" --console "file:$dir/console" --cmdline "$cmdline" \
		--timeout 120 </dev/null >"$dir/out" 2>"$dir/err" &
	VM_PID=$!
	echo "$VM_PID" >"$dir/pid"
	wait "$PEER_PID"
	st=$?
	PEER_PID=
	# the guest ends on its own; give it the time its own waits take
	for _ in $(seq 300); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.1; done
	kill "$VM_PID" 2>/dev/null
	wait "$VM_PID"
	local vm_st=$?
	VM_PID=
	# lines may end in CRLF (the raw-mode console's): match without CR
	tr -d '\r' <"$dir/err" >"$dir/err.txt"
	cat "$dir/peer.log"
	echo "--- console"; tr -d '\r' <"$dir/console" | grep -v '^virtio ' | tail -60
	echo "--- stderr"; tail -40 "$dir/err.txt"
	((st == 0)) || why="host side: $(grep -m1 '^FAIL' "$dir/peer.log")"
	[[ $vm_st == 1 ]] || why="${why:+$why; }isola exit status $vm_st, want 1 (guest PASS)"
	grep -q '^FAIL' <(tr -d '\r' <"$dir/console") && why="${why:+$why; }guest: $(tr -d '\r' <"$dir/console" | grep -m1 '^FAIL')"
	while [[ -n $expect ]]; do
		re=${expect%% && *}
		[[ $re == "$expect" ]] && expect= || expect=${expect#* && }
		grep -Eq -- "$re" "$dir/err.txt" || why="${why:+$why; }stderr does not match /$re/"
	done
	while IFS= read -r line; do
		[[ -n $ok_re && $line =~ $ok_re ]] && continue
		why="${why:+$why; }device server trouble: $line"
		break
	done < <(grep -E "$SERVER_TROUBLE" "$dir/err.txt")
	echo "=== END $name ($((SECONDS - t0)) s)"
	if [[ -n $why ]]; then
		echo "$name FAIL $why" >>"$CASES"
		echo "FAIL: $name: $why"
		failed=1
	else
		echo "$name PASS" >>"$CASES"
		echo "PASS: $name ($((SECONDS - t0)) s)"
	fi
}

run_case echo vsock_echo echo \
	"port=5000 conns=5 ttrpc host_port=7000 hconns=2 send=262144 ignore_port=5999 cid=3" '' \
	'^isola-vsock: host client sent no CONNECT line in time: closed$ && ^isola-vsock: host client waited too long for the guest.s answer: closed$'
# the kill is the point: the core's lines about it are expected
run_case restart vsock_echo restart "port=5000 conns=1 host_port=7000 hconns=1 send=65536 restart" \
	'^isola: warning: vsock0: isola-vsock \(pid [0-9]+\) was killed by SIGKILL; restarting it$|^isola: vsock0: isola-vsock is back after ' \
	'^isola-vsock: posted TRANSPORT_RESET'
# A broken ring (a 20-byte packet) is NEEDS_RESET: the core's line is expected.
run_case hostile_hdr hostile/virtio_vsock hostile "attack=hdr" \
	'^isola: vsock0: the back-end stopped a ring the guest broke; the device needs a reset$' \
	'^isola-vsock: guest packet refused with RST: len is more than the descriptors carry && ^isola-vsock: queue 1: the guest broke the virtqueue rules \(a tx chain of 20 bytes is shorter than a packet header\) && ^isola: vsock0: the back-end stopped a ring the guest broke; the device needs a reset$'
# isola-vsock logs one credit refusal per run: the first attack's (fwd_cnt)
run_case hostile_credit hostile/virtio_vsock hostile "attack=credit" '' \
	'^isola-vsock: guest port [0-9]+: fwd_cnt [0-9]+ is not between [0-9]+ and [0-9]+ \(what we sent\): connection reset'
run_case hostile_flood hostile/virtio_vsock hostile "attack=flood n=1100 max=1024" '' \
	'^isola-vsock: connection table full \(--max-connections 1024\): refusing new connections && ^isola-vsock: connection table has room again \(76 refused while full\)$'
exit $failed
