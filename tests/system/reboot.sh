#!/bin/bash
# Guest reboot keeps the device servers and re-negotiates (issue 6 item 1):
# `isola run --on-reset reboot` with the reboot guest (tests/guest/reboot.c),
# a disk and an rng, 2 vCPUs.  The guest reboots 3 times through the i8042
# reset line; each boot finds the previous boot's writes on the disk, sets
# the devices up again and reads entropy.  The core must say it reboots on
# the same server pids each time, and each server must have started once.
# Without --on-reset (the default, exit) a reset still ends isola with
# status 4; a bad --on-reset value is refused.  Runs build/isola, and
# build/asan/isola when built.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
GUEST=$GUESTS/reboot.elf
[[ -x $ISOLA && -x build/isola-blk && -x build/isola-rng ]] || fail "run make first"
[[ -f $GUEST ]] || fail "no $GUEST; run make guests"
TMP=$(mktemp -d /tmp/isola-reboot.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

builds=("$ISOLA")
[[ -x build/asan/isola ]] && builds+=(build/asan/isola)
for isola in "${builds[@]}"; do
	truncate -s 0 "$TMP/disk.img"
	truncate -s 16M "$TMP/disk.img"
	timeout 120 "$isola" run --kernel "$GUEST" --memory 64M --cpus 2 --disk "path=$TMP/disk.img" \
		--rng --on-reset reboot --cmdline reboots=3 --console "file:$TMP/console" --timeout 100 \
		</dev/null >/dev/null 2>"$TMP/err"
	status=$?
	reboots=$(grep -c 'rebooting on the same device servers' "$TMP/err")
	pids=$(grep -o 'rebooting on the same device servers (pids [0-9, ]*)' "$TMP/err" | sort -u | wc -l)
	blk_starts=$(grep -c 'isola-blk: sandboxed' "$TMP/err")
	rng_starts=$(grep -c 'isola-rng: sandboxed' "$TMP/err")
	if [[ $status == 1 && $reboots == 3 && $pids == 1 && $blk_starts == 1 && $rng_starts == 1 ]] &&
		grep -q 'PASS: 3 reboots, the disk kept every boot' "$TMP/console" &&
		! grep -q '^FAIL' "$TMP/console" && [[ $(grep -c 'PASS: entropy after reboot' "$TMP/console") == 4 ]]; then
		ok "$isola: 3 reboots on the same servers ($(grep -o 'pids [0-9, ]*' "$TMP/err" | head -1)), 4 boots each found the last one's writes and set up disk and rng again"
	else
		problem "$isola: status $status, $reboots reboots, $pids distinct pid lists, isola-blk started $blk_starts times, isola-rng $rng_starts times"
		grep -E '^(FAIL|PASS|reboot)' "$TMP/console" | tail -8 | sed 's/^/    | /'
		tail -5 "$TMP/err" | sed 's/^/    | /'
	fi
	grep -q 'forbidden system call\|Sanitizer' "$TMP/err" && problem "$isola: $(grep -m1 'forbidden system call\|Sanitizer' "$TMP/err")"
done

# a device given up before the reboot (restart=never, its server killed)
# gets a new server after it; the rng's is kept
truncate -s 0 "$TMP/disk.img"
truncate -s 16M "$TMP/disk.img"
rm -f "$TMP/in"
mkfifo "$TMP/in"
exec {key_fd}<>"$TMP/in"
"$ISOLA" run --kernel "$GUEST" --memory 64M --disk "path=$TMP/disk.img,restart=never" --rng \
	--on-reset reboot --cmdline "reboots=1 wait_first" --console stdio --timeout 100 \
	<"$TMP/in" >"$TMP/console" 2>"$TMP/err" &
vmm=$!
for _ in $(seq 100); do
	grep -q 'reboot: waiting' "$TMP/console" && break
	sleep 0.1
done
server=$(pgrep -P "$vmm" -x isola-blk | head -1)
[[ -n $server ]] && kill -KILL "$server"
for _ in $(seq 50); do
	grep -q 'the device needs a reset' "$TMP/err" && break
	sleep 0.1
done
printf x >&"$key_fd"
wait "$vmm"
status=$?
exec {key_fd}>&-
if [[ $status == 1 && $(grep -c 'isola-blk: sandboxed' "$TMP/err") == 2 &&
	$(grep -c 'isola-rng: sandboxed' "$TMP/err") == 1 ]] &&
	grep -q 'PASS: the previous boot.s writes survived the reboot' "$TMP/console" &&
	grep -q 'disk0: .*restart=never.*needs a reset' "$TMP/err"; then
	ok "a disk given up before the reboot got a new isola-blk after it (rng kept: $(grep -o 'pids [0-9, ]*' "$TMP/err"))"
else
	problem "given-up disk across a reboot: status $status; $(grep -E '^(FAIL|reboot)' "$TMP/console" | tr '\n' ' '); $(tail -4 "$TMP/err" | tr '\n' ' ')"
fi

# the default: a reset ends isola (status 4), as before
truncate -s 0 "$TMP/disk.img"
truncate -s 16M "$TMP/disk.img"
timeout 60 "$ISOLA" run --kernel "$GUEST" --memory 64M --disk "path=$TMP/disk.img" --console none \
	</dev/null >/dev/null 2>"$TMP/err"
status=$?
[[ $status == 4 ]] && ok "without --on-reset a reset ends isola (status 4)" ||
	problem "without --on-reset: status $status, want 4"

timeout 20 "$ISOLA" run --kernel "$GUEST" --on-reset sometimes </dev/null >/dev/null 2>"$TMP/err"
status=$?
[[ $status == 2 ]] && grep -q "on-reset 'sometimes': use exit (the default) or reboot" "$TMP/err" &&
	ok "refused: $(cat "$TMP/err")" || problem "--on-reset sometimes: status $status, $(cat "$TMP/err")"

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "reboot: all checks passed"
