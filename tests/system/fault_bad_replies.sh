#!/bin/bash
# A back-end that breaks the vhost-user protocol (issue 6 item 2, "a server
# that sends malformed replies or stalls"): the blk_stress guest writes its
# verifiable pattern with flushes through the core to a real isola-blk, with
# tests/system/vhost_user_mitm.py between the core and isola-blk.  The test
# makes the back-end misbehave at moments it chooses:
#   1. the back-end "dies" (both sockets dropped) ROUNDS times; each time its
#      next five connections spoil one of the first 8 replies of the
#      reconnection handshake (which one is random; the seed is printed):
#      another request's code,
#      a reply without the REPLY flag, a wrong size, half a header then a
#      hang-up, and a reply held 8 s (the core waits 5 s);
#   2. the back-end speaks first (a message nobody asked for) ROUNDS times.
# The core must refuse each spoiled connection with a line saying what was
# wrong, keep trying, and resume the device each time; the guest must see no
# error and read every acknowledged write back intact.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
GUEST=$GUESTS/blk_stress.elf
ROUNDS=${ROUNDS:-3}
[[ -x $ISOLA && -x build/isola-blk ]] || fail "no $ISOLA or isola-blk; run make first"
[[ -f $GUEST ]] || fail "no $GUEST; run make guests"
command -v python3 >/dev/null || skip "python3 is needed for the vhost-user man in the middle"
work=$(mktemp -d /tmp/isola-badreply.XXXXXX)
vm_pid= blk_pid= mitm_pid= key_fd=
cleanup() {
	local pid
	for pid in $vm_pid $mitm_pid $blk_pid; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }
back_count() { grep -c 'is back after' "$work/stderr"; }
# wait_back N SECONDS
wait_back() {
	for _ in $(seq $(($2 * 10))); do
		(($(back_count) >= $1)) && return 0
		kill -0 "$vm_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

truncate -s 64M "$work/disk.img"
build/isola-blk --socket "$work/blk.sock" --image "$work/disk.img" 2>"$work/blk.err" &
blk_pid=$!
python3 tests/system/vhost_user_mitm.py "$work/mitm.sock" "$work/blk.sock" >"$work/mitm.log" 2>&1 &
mitm_pid=$!
for _ in $(seq 100); do
	[[ -S $work/blk.sock && -S $work/mitm.sock ]] && break
	sleep 0.1
done
[[ -S $work/mitm.sock ]] || fail "the man in the middle did not start: $(cat "$work/mitm.log" "$work/blk.err")"

mkfifo "$work/in"
exec {key_fd}<>"$work/in"
"$ISOLA" run --kernel "$GUEST" --memory 64M --timeout 900 --console stdio \
	--cmdline "slots=64 fresh until_key seconds=800 timeout_ms=120000" \
	--vhost-user-blk "socket=$work/mitm.sock" <"$work/in" >"$work/console" 2>"$work/stderr" &
vm_pid=$!
for _ in $(seq 100); do
	grep -q 'blk_stress: READY' "$work/console" 2>/dev/null && break
	sleep 0.1
done
grep -q 'blk_stress: READY' "$work/console" || fail "the guest did not start: $(tail -5 "$work/stderr")"

# 1. spoiled replies after each "death"
backs=0
for round in $(seq "$ROUNDS"); do
	sleep 0.$((RANDOM % 5 + 2))
	kill -USR1 "$mitm_pid"
	backs=$((backs + 1))
	# five spoiled connections (one stalls 8 s), each retried after 100 ms
	wait_back "$backs" 60 || { problem "round $round: the device did not come back"; break; }
done
spoiled=$(grep -c 'spoiling reply' "$work/mitm.log")
[[ $spoiled == $((ROUNDS * 5)) ]] && ok "$spoiled replies spoiled in $ROUNDS rounds, the device came back each time" ||
	problem "$spoiled replies spoiled, want $((ROUNDS * 5))"
for what in 'the reply names request [0-9]*' "the reply's flags 0x[0-9a-f]* are not" \
	"the reply's [0-9]*-byte payload .* is not a valid" 'the back-end hung up before a whole reply' \
	'no reply within 5000 ms'; do
	grep -q "did not come back: .*$what" "$work/stderr" &&
		ok "the core said: $(grep -o "did not come back: .*$what" "$work/stderr" | head -1 | cut -c 20-)" ||
		problem "no line in the core's log matching /$what/"
done

# 2. a back-end that speaks first
for round in $(seq "$ROUNDS"); do
	sleep 0.$((RANDOM % 5 + 2))
	kill -USR2 "$mitm_pid"
	backs=$((backs + 1))
	wait_back "$backs" 20 || { problem "unsolicited $round: the device did not come back"; break; }
done
grep -q 'broke the protocol: it sent a message nobody asked for' "$work/stderr" &&
	ok "the core said: $(grep -o 'broke the protocol.*asked for' "$work/stderr" | head -1)" ||
	problem "no line in the core's log for the unsolicited message"

printf x >&"$key_fd"
for _ in $(seq 600); do
	kill -0 "$vm_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$vm_pid"
status=$?
vm_pid=
stats=$(grep -ao 'blk_stress: writes=.*' "$work/console" | sed 's/blk_stress: //')
if [[ $status == 1 ]] && ! grep -aq '^FAIL' "$work/console" &&
	grep -aq 'PASS: every acknowledged write reads back intact' "$work/console" &&
	! grep -q 'giving up\|needs a reset' "$work/stderr"; then
	ok "guest PASS, no error, every acknowledged write intact ($stats)"
else
	problem "guest: isola status $status; $(grep -a '^FAIL' "$work/console" | head -3)"
fi
echo "  the core's lines:"
grep -v 'is back after\|sandboxed\|serving' "$work/stderr" | sort | uniq -c | sort -rn | head -12 | sed 's/^/    | /'
echo "  back after: $(grep -o 'is back after [0-9.]* ms' "$work/stderr" | awk '{s+=$4; if ($4>m) m=$4; n++} END {printf "%d times, mean %.1f ms, max %.1f ms", n, s/n, m}')"

if ((${#FAILURES[@]})); then
	sed 's/^/    mitm| /' "$work/mitm.log" | tail -20
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "bad replies: all checks passed"
