#!/bin/bash
# The restart budget, exactly as README.md gives it ("more than 100 deaths
# in 10 s, or 5 failed starts in a row" leaves the device needing a reset;
# the VM keeps running; core/restart_policy.c restart_policy_default):
#   1. burst: isola-rng is SIGKILLed again as soon as it is back: deaths 1
#      to 100 are restarted, the 101st gives the device up (NEEDS_RESET).
#   2. failed starts: once the VM runs, the isola-rng next to (a copy of)
#      isola is replaced by a program that exits at once, and the server is
#      killed: 5 restarts fail in a row, then the device is given up.
# In both the VM keeps running: the guest (rng, until_key) sees NEEDS_RESET
# on its next read, which fails, and ends the VM itself with its FAIL status
# (3), after the give-up.
set -u
source "$(dirname "$0")/../lib.sh"
GUEST=$GUESTS/rng.elf
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-rng ]] || skip "isola or isola-rng not built (make)"
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
BURST=100 FAILED_STARTS=5 WINDOW_S=10
work=$(mktemp -d /tmp/isola-budget.XXXXXX)
vm_pid= log_fd= tick_fd=
cleanup() { [[ -n $vm_pid ]] && kill "$vm_pid" 2>/dev/null; wait 2>/dev/null; if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
mkfifo "$work/tick" && exec {tick_fd}<>"$work/tick"
nap_ms() { read -r -t "0.$(printf %03d "$1")" -u "$tick_fd"; }
now_ms() { local t=${EPOCHREALTIME/./}; NOW=$((t / 1000)); }
# rng_server: SERVER = isola's isola-rng child (no fork: kills must be fast,
# 101 of them within the 10 s window)
rng_server() {
	local f pid comm
	SERVER=
	for f in /proc/"$vm_pid"/task/*/children; do
		for pid in $(<"$f"); do
			read -r comm <"/proc/$pid/comm" 2>/dev/null && [[ $comm == isola-rng ]] &&
				SERVER=$pid && return 0
		done
	done
	return 1
}

# start_vm ISOLA: the rng guest reading until a key that never comes
start_vm() {
	rm -f "$work/in" "$work/stderr" "$work/console"
	mkfifo "$work/in"
	exec {key_fd}<>"$work/in"
	"$1" run --kernel "$GUEST" --memory 64M --timeout 120 --console stdio \
		--cmdline "until_key timeout_ms=3000" --rng <"$work/in" >"$work/console" \
		2>"$work/stderr" &
	vm_pid=$!
	for _ in $(seq 100); do
		grep -q 'rng: READY' "$work/console" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'rng: READY' "$work/console" || fail "the rng guest did not start: $(cat "$work/stderr")"
	exec {log_fd}<"$work/stderr"
}

# wait_line PATTERN SECONDS: until the core logs a line matching PATTERN
# (read from log_fd as the log grows); the line in LINE
wait_line() {
	local deadline
	now_ms
	deadline=$((NOW + $2 * 1000))
	while :; do
		if read -r LINE <&"$log_fd"; then
			[[ $LINE =~ $1 ]] && return 0
			continue
		fi
		now_ms
		((NOW > deadline)) && return 1
		nap_ms 2
	done
}

# end_vm WHAT: the device is given up once, and the VM runs on: the
# guest's driver sees NEEDS_RESET (tests/guest/lib/virtio.c), its read
# fails, and the guest itself ends the VM through the debug-exit port with
# its FAIL status (3), after the give-up
end_vm() {
	local status gave_up exited
	wait "$vm_pid"
	status=$?
	vm_pid=
	exec {key_fd}>&- {log_fd}<&-
	gave_up=$(grep -n 'rng0: .*the device needs a reset (the VM keeps running)' "$work/stderr")
	exited=$(grep -n 'guest wrote 0x1 to the debug-exit port (exit status 3)' "$work/stderr")
	if [[ $status != 3 || -z $exited ]] || ! grep -aq '^FAIL: rng request' "$work/console"; then
		sed 's/^/    | /' "$work/console" | tail -5
		grep -v 'is back after\|restarting it\|resubmitting\|sandboxed:\|serving ' "$work/stderr" |
			tail -5 | sed 's/^/    | /'
		fail "$1: isola exit status $status, want 3 from the guest (its read failed after the give-up)"
	fi
	[[ $(wc -l <<<"$gave_up") == 1 ]] || fail "$1: want exactly one give-up: $gave_up"
	((${gave_up%%:*} < ${exited%%:*})) || fail "$1: the VM ended before the device was given up"
}

# ---- 1. 101 deaths in a row, unthrottled -------------------------------------
start_vm "$ISOLA"
now_ms
t0=$NOW
for ((kill = 1; kill <= BURST + 1; kill++)); do
	rng_server || fail "burst: no isola-rng under isola before kill $kill"
	kill -KILL "$SERVER"
	if ((kill <= BURST)); then
		wait_line 'is back after|giving up' 10 || fail "burst: isola-rng not back 10 s after kill $kill"
		[[ $LINE == *'is back after'* ]] || fail "burst: kill $kill gave the device up: $LINE"
	fi
done
now_ms
took=$((NOW - t0))
((took < WINDOW_S * 1000)) ||
	fail "burst: $((BURST + 1)) kills took $took ms, more than the ${WINDOW_S} s window (host too slow)"
wait_line 'giving up|is back after' 10 || fail "burst: nothing logged after kill $((BURST + 1))"
[[ $LINE == *"died more than $BURST times in $WINDOW_S s, giving up; the device needs a reset (the VM keeps running)"* ]] ||
	fail "burst: after kill $((BURST + 1)): $LINE (want: giving up after more than $BURST deaths in $WINDOW_S s)"
end_vm burst
backs=$(grep -c 'is back after' "$work/stderr")
[[ $backs == "$BURST" ]] || fail "burst: $backs restarts, want $BURST"
echo "ok   burst: $BURST deaths restarted, death $((BURST + 1)) gave the device up ($took ms); VM ran on"

# ---- 2. 5 failed starts in a row ------------------------------------------------
mkdir "$work/bin"
cp "$ISOLA" "$work/bin/isola"
cp "$ISOLA_ROOT/build/isola-rng" "$work/bin/isola-rng"
start_vm "$work/bin/isola"
# a server that exits at once, where the core looks for it (next to isola)
rm "$work/bin/isola-rng"
printf '#!/bin/sh\nexit 1\n' >"$work/bin/isola-rng"
chmod +x "$work/bin/isola-rng"
rng_server || fail "failed starts: no isola-rng under isola"
kill -KILL "$SERVER"
wait_line 'giving up|is back after' 20 || fail "failed starts: the core neither restarted nor gave up in 20 s"
[[ $LINE == *"did not come up $FAILED_STARTS times in a row"*"giving up; the device needs a reset (the VM keeps running)"* ]] ||
	fail "failed starts: $LINE (want: giving up after $FAILED_STARTS failed starts)"
end_vm "failed starts"
grep -q 'is back after' "$work/stderr" && fail "failed starts: a start succeeded"
echo "ok   failed starts: gave up after $FAILED_STARTS failed starts in a row; VM ran on"
echo "PASS: restart budget ($BURST deaths in $WINDOW_S s, $FAILED_STARTS failed starts) enforced exactly, VM kept running"
