#!/bin/bash
# Fault injection (issue 6, acceptance 1 and 2): device back-ends that die,
# stall or go away while a guest writes without pause, and the guest sees
# nothing but a short wait.  The guest is blk_stress (tests/guest/blk_stress.c):
# 8 writes in flight over 64 slots, each 4 KiB block carrying slot, sequence
# number and checksum, a FLUSH every 16 writes, a read-back every 32; any
# error, or a request not completed in time, fails it; at the end every slot
# must hold exactly its last acknowledged write.  It runs until the test
# sends it a byte on the console (until_key).
#   1. kill: isola-blk is SIGKILLed KILLS times (default 1000; `make soak`:
#      10000) after random 20-200 ms of work, alternately the sandbox's
#      waiting parent (the core's child) and the server itself (pid 1 of its
#      pid namespace); the next kill waits for the core's "is back" line.
#      No more than 90 kills in any 10 s, below the core's budget (more than
#      100 deaths in 10 s gives the device up).  Restarts logged == kills;
#      prints kills, restarts that found requests in flight, mean and max
#      recovery time.  Then the image file is read on the host: every slot
#      whole, and the newest block is the guest's last write.
#   2. stall: the server is SIGSTOPped for 0.5 s and 3 s, then SIGCONTed.
#      The core does not detect a stalled-but-alive server (no watchdog):
#      the guest's requests just wait, no error, no restart.
#   3. external back-end: qemu-storage-daemon on --vhost-user-blk, SIGKILLed
#      and started again on the same socket after outages of 0.5 s and 5 s;
#      the guest's requests wait (timeout_ms=60000); then a run whose guest
#      resets the device (reset_after_ms=1500) while qsd is away, and must
#      re-initialize and go on once qsd is back.  Skipped without qsd.
#      qsd does not offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, so the core
#      can only resume from used->idx, which is exact only when nothing was
#      in flight (qsd completes out of order): qsd is killed while the guest
#      idles (idle_every_ms=); QSD_KILL_ANYTIME=1 kills it mid-I/O, which
#      shows lost and repeated requests (docs/devices.md).
#   4. rng: the rng guest reads entropy 4 KiB at a time, each read checked
#      new, while isola-rng is SIGKILLed RNG_KILLS times (default 100) after
#      random 20-200 ms; restarts logged == kills.
# Each phase wants guest PASS, isola exit status 1, nothing given up.
#   [KILLS=N] [RNG_KILLS=N] [PHASES="kill stall qsd rng"] [KEEP=1]
#   tests/system/fault_injection.sh
set -u
source "$(dirname "$0")/../lib.sh"
KILLS=${KILLS:-1000}
RNG_KILLS=${RNG_KILLS:-100}
# The guest's own limit: a kill takes ~130 ms here (20-200 ms of work and
# the restart), so 10,000 kills (make soak) need ~22 minutes.
GUEST_SECONDS=$((800 + KILLS / 4))
GUEST=$GUESTS/blk_stress.elf
SLOTS=64
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-blk ]] || skip "isola or isola-blk not built (make)"
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
[[ " ${PHASES:-qsd} " != *" qsd "* ]] || command -v qemu-storage-daemon >/dev/null ||
	skip "no qemu-storage-daemon for the qsd phase (apt-get install qemu-system-x86, or PHASES='kill stall rng')"
work=$(mktemp -d /tmp/isola-fault.XXXXXX)
vm_pid= qsd_pid= key_fd= tick_fd= log_fd= backs=0 failed=0
cleanup() {
	[[ -n $vm_pid ]] && kill "$vm_pid" 2>/dev/null
	[[ -n $qsd_pid ]] && kill "$qsd_pid" 2>/dev/null
	wait 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
bad() { echo "FAIL: $*"; failed=1; }
# The kill loop forks nothing (a fork costs ms on a loaded host): the time
# is EPOCHREALTIME, sleeps time out reading a fifo nobody writes, the
# server's pid comes from /proc/PID/task/*/children, and the core's log is
# read as it grows.
now_ms() { local t=${EPOCHREALTIME/./}; NOW=$((t / 1000)); }
nap_ms() { read -r -t "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))" -u "$tick_fd"; }
rand_sleep() { nap_ms $(($1 + RANDOM % ($2 - $1 + 1))); }
back_count() { grep -c 'is back after' "$work/stderr"; }
# child_of PID: CHILD = its first child process, or empty
child_of() {
	local f
	CHILD=
	for f in /proc/"$1"/task/*/children; do
		read -r CHILD _ <"$f" 2>/dev/null
		[[ -n $CHILD ]] && return 0
	done
	return 1
}

# start_vm NAME CMDLINE ISOLA-ARGS...: blk_stress on a fresh image, console on
# stdout, stdin a fifo the test keeps open (a byte there stops the guest).
start_vm() {
	local name=$1 cmdline=$2
	shift 2
	phase=$name
	rm -f "$work/in" "$work/stderr" "$work/console"
	mkfifo "$work/in"
	exec {key_fd}<>"$work/in"
	[[ -n $tick_fd ]] || { mkfifo "$work/tick" && exec {tick_fd}<>"$work/tick"; }
	"$ISOLA" run --kernel "$GUEST" --memory 64M --timeout $((GUEST_SECONDS + 100)) --console stdio \
		--cmdline "slots=$SLOTS fresh until_key seconds=$GUEST_SECONDS $cmdline" "$@" \
		<"$work/in" >"$work/console" 2>"$work/stderr" &
	vm_pid=$!
	for _ in $(seq 100); do
		grep -q 'blk_stress: READY' "$work/console" 2>/dev/null && return 0
		kill -0 "$vm_pid" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/    | /' "$work/console" "$work/stderr"
	fail "$name: the guest did not start"
}

# stop_vm: send the key, wait for isola; checks status 1, PASS, no give-up.
stop_vm() {
	local status
	printf x >&"$key_fd"
	for _ in $(seq 600); do
		kill -0 "$vm_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$vm_pid" 2>/dev/null && kill "$vm_pid"
	wait "$vm_pid"
	status=$?
	vm_pid=
	exec {key_fd}>&-
	cp "$work/stderr" "$work/$phase.stderr"
	cp "$work/console" "$work/$phase.console"
	stats=$(grep -ao 'blk_stress: writes=.*' "$work/console" | sed 's/blk_stress: //')
	if [[ $status != 1 ]] || grep -aq '^FAIL' "$work/console" ||
		! grep -aq 'PASS: every acknowledged write reads back intact' "$work/console" ||
		grep -q 'giving up\|needs a reset\|Sanitizer' "$work/stderr"; then
		bad "$phase: isola exit status $status (want 1), guest:"
		grep -a -E '^(FAIL|PASS|blk_stress)' "$work/console" | tail -20 | sed 's/^/    | /'
		grep -v 'is back after\|restarting it\|resubmitting\|sandboxed:\|serving ' "$work/stderr" |
			tail -20 | sed 's/^/    | /'
		return 1
	fi
	echo "ok   $phase: guest PASS ($stats)"
}

# wait_back N SECONDS: until the core has logged N "is back" lines (read
# from log_fd, counted in backs)
wait_back() {
	local deadline line
	now_ms
	deadline=$((NOW + $2 * 1000))
	while ((backs < $1)); do
		# (a read that meets the end of the log mid-line fails but hands
		# over what it got: kept for the rest of the line, or a restart's
		# line caught while isola wrote it would never be counted: kill
		# 710 of 1,000 once waited 10 s for a line already half read)
		if IFS= read -r line <&"$log_fd"; then
			line=$log_partial$line
			log_partial=
			[[ $line == *'is back after'* ]] && backs=$((backs + 1))
			continue
		fi
		log_partial+=$line
		now_ms
		((NOW > deadline)) && return 1
		kill -0 "$vm_pid" 2>/dev/null || return 1
		nap_ms 2
	done
}

# recovery_report: kills, restarts, mean and max of "is back after X ms"
recovery_report() {
	grep -o 'is back after [0-9.]* ms' "$work/stderr" | awk '
		{ s += $4; if ($4 > m) m = $4; n++ }
		END { if (n) printf "%d restarts, recovery mean %.1f ms, max %.1f ms", n, s / n, m }'
}

# image_on_host: the image file itself, read on the host after the VM ended
# (not through isola-blk, which the guest's own check goes through): every
# slot blk_stress wrote (tests/guest/blk_stress.c: magic, slot, sequence,
# checksum, payload from slot and sequence) is whole and in its place, no
# sequence is in two slots, and the newest block is the guest's last write
# (sequence numbers count writes from 1): the write acknowledged last is in
# the file.
image_on_host() {
	local writes=${stats#writes=}
	writes=${writes%% *}
	python3 - "$work/disk.img" "$SLOTS" "$writes" <<'PY'
import struct, sys
path, slots, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MAGIC, MUL, M = 0x31535345525453, 0x9e3779b97f4a7c15, (1 << 64) - 1
bad, seqs = [], {}
with open(path, "rb") as f:
    for slot in range(slots):
        w = struct.unpack("<512Q", f.read(4096))
        c = 0xcbf29ce484222325
        for i in range(512):
            if i != 3:
                c = ((c ^ w[i]) * 0x100000001b3) & M
        if w[0] != MAGIC or w[1] != slot or w[3] != c or any(
                w[i] != (((w[2] << 24) ^ (slot << 12) ^ i) * MUL) & M for i in range(4, 512)):
            bad.append(f"slot {slot}: not a whole block of its own (seq {w[2]})")
        elif w[2] in seqs:
            bad.append(f"seq {w[2]} in slots {seqs[w[2]]} and {slot}")
        seqs[w[2]] = slot
newest = max(seqs) if seqs else 0
if newest != writes:
    bad.append(f"newest block on disk is seq {newest}, the guest's last write was {writes}")
print("; ".join(bad[:5]) if bad else f"{slots} slots whole, newest seq {newest} = writes")
sys.exit(1 if bad else 0)
PY
}

# ---- 1. SIGKILL, KILLS times ---------------------------------------------------
phase1() {
	local kills=0 parent target t0 inflight throttled=0 want
	local -a times=()
	truncate -s 0 "$work/disk.img"
	truncate -s 16M "$work/disk.img"
	start_vm kill "" --disk "path=$work/disk.img"
	exec {log_fd}<"$work/stderr"
	backs=0 log_partial=
	now_ms
	t0=$NOW
	while ((kills < KILLS)); do
		rand_sleep 20 200
		# stay below the core's restart budget (more than 100 deaths in 10 s)
		if ((kills >= 90)); then
			now_ms
			want=$((times[kills - 90] + 10000 - NOW))
			if ((want > 0)); then
				nap_ms "$want"
				throttled=$((throttled + 1))
			fi
		fi
		# isola's children: the spawner (core/supervisor.c) and the servers
		CHILD=$(pgrep -P "$vm_pid" -x isola-blk | head -1)
		[[ -n $CHILD ]] || { bad "kill: no isola-blk under isola (after $kills kills)"; break; }
		parent=$CHILD target=$CHILD
		if ((kills % 2)) && child_of "$parent"; then
			target=$CHILD
		fi
		now_ms
		times[kills]=$NOW
		kill -KILL "$target" 2>/dev/null || { bad "kill: pid $target vanished"; break; }
		kills=$((kills + 1))
		if ! wait_back "$kills" 10; then
			bad "kill: isola-blk not back 10 s after kill $kills"
			break
		fi
	done
	now_ms
	echo "     kill: $kills kills in $(((NOW - t0) / 1000)) s ($throttled throttled for the budget)"
	exec {log_fd}<&-
	stop_vm
	if out=$(image_on_host); then
		echo "     kill: image checked on the host: $out"
	else
		bad "kill: image on the host: $out"
	fi
	inflight=$(grep -c 'resubmitting [0-9]* inflight' "$work/stderr")
	echo "     kill: $(recovery_report); $inflight restarts resubmitted in-flight requests" \
		"($(grep -o 'resubmitting [0-9]*' "$work/stderr" | awk '{s += $2} END {print s + 0}') requests)"
	if [[ $(back_count) != "$kills" ]]; then
		bad "kill: $(back_count) restarts logged for $kills kills; how the servers died:"
		grep -o 'isola-blk .*; restarting it' "$work/stderr" | sed 's/pid [0-9]*/pid N/' |
			sort | uniq -c | sed 's/^/    | /'
	fi
	((inflight > 0)) || bad "kill: no kill caught a request in flight"
}

# ---- 2. SIGSTOP / SIGCONT -------------------------------------------------------
phase2() {
	local parent server
	truncate -s 0 "$work/disk.img"
	truncate -s 16M "$work/disk.img"
	start_vm stall "" --disk "path=$work/disk.img"
	for pause in 0.5 3; do
		sleep 0.5
		parent=$(pgrep -P "$vm_pid" -f isola-blk | head -1)
		server=$(pgrep -P "$parent" | head -1)
		kill -STOP "$server"
		sleep "$pause"
		kill -CONT "$server"
	done
	sleep 0.5
	stop_vm || return
	[[ $(back_count) == 0 ]] || bad "stall: the core restarted a stalled server"
	local max_us=${stats##*max_wait_us=}
	max_us=${max_us%% *}
	((max_us >= 2500000)) || bad "stall: max completion wait ${max_us} us: the 3 s stall was not seen"
	echo "     stall: requests waited out a 3 s stall (max wait $((max_us / 1000)) ms), no restart"
}

# ---- 3. qemu-storage-daemon, killed and started again ---------------------------------
start_qsd() {
	"$QSD" --blockdev "driver=file,node-name=f,filename=$work/disk.img" \
		--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$work/qsd.sock,writable=on" \
		</dev/null >>"$work/qsd.log" 2>&1 &
	qsd_pid=$!
	for _ in $(seq 100); do
		[[ -S $work/qsd.sock ]] && return 0
		sleep 0.05
	done
	fail "qemu-storage-daemon did not start: $(cat "$work/qsd.log")"
}

idle_count() { grep -ac "^blk_stress: $1" "$work/console"; }

# qsd_outage SECONDS N: SIGKILL qsd while the guest is idle (QSD_KILL_ANYTIME=1:
# at once), start it again after SECONDS, wait for "is back" N
qsd_outage() {
	local idle busy
	if [[ -z ${QSD_KILL_ANYTIME:-} ]]; then
		idle=$(idle_count idle)
		for _ in $(seq 1000); do
			(($(idle_count idle) == idle)) || break
			kill -0 "$vm_pid" 2>/dev/null || break
			sleep 0.01
		done
		(($(idle_count idle) > idle)) || {
			bad "$phase: the guest did not go idle within 10 s"
			return 1
		}
		busy=$(idle_count busy)
	fi
	kill -KILL "$qsd_pid"
	[[ -z ${QSD_KILL_ANYTIME:-} && $(idle_count busy) != "$busy" ]] &&
		bad "$phase: qsd was killed after the guest's idle window"

	wait "$qsd_pid" 2>/dev/null
	rm -f "$work/qsd.sock"
	sleep "$1"
	start_qsd
	wait_back "$2" 20 || bad "$phase: the core did not reconnect to qsd within 20 s"
}

phase3() {
	QSD_IDLE="idle_every_ms=700 idle_ms=1000"
	[[ -n ${QSD_KILL_ANYTIME:-} ]] && QSD_IDLE=
	QSD=$(command -v qemu-storage-daemon)
	truncate -s 0 "$work/disk.img"
	truncate -s 16M "$work/disk.img"
	start_qsd
	start_vm qsd "timeout_ms=60000 $QSD_IDLE" --vhost-user-blk "socket=$work/qsd.sock"
	exec {log_fd}<"$work/stderr"
	backs=0 log_partial=
	sleep 0.5
	qsd_outage 0.5 1
	sleep 0.5
	qsd_outage 5 2
	sleep 0.5
	stop_vm && echo "     qsd: $(recovery_report)"

	truncate -s 0 "$work/disk.img"
	truncate -s 16M "$work/disk.img"
	start_vm qsd_reset "timeout_ms=60000 reset_after_ms=1500 $QSD_IDLE" \
		--vhost-user-blk "socket=$work/qsd.sock"
	exec {log_fd}<"$work/stderr"
	backs=0 log_partial=
	sleep 0.5
	qsd_outage 5 1
	sleep 0.5
	stop_vm || return
	grep -q 'resets=1' <<<"$stats" || bad "qsd_reset: the guest did not reset the device ($stats)"
	grep -aq 'resetting the device with [1-9]' "$work/console" ||
		bad "qsd_reset: the reset found nothing in flight"
	echo "     qsd_reset: device reset while qsd was away, re-initialized, $(recovery_report)"
	kill "$qsd_pid"
	wait "$qsd_pid" 2>/dev/null
	qsd_pid=
}

# ---- 4. isola-rng --------------------------------------------------------------
phase4() {
	local kills=0 st bytes
	phase=rng
	rm -f "$work/in" "$work/stderr" "$work/console"
	mkfifo "$work/in"
	exec {key_fd}<>"$work/in"
	[[ -n $tick_fd ]] || { mkfifo "$work/tick" && exec {tick_fd}<>"$work/tick"; }
	"$ISOLA" run --kernel "$GUESTS/rng.elf" --memory 64M --timeout 900 --console stdio \
		--cmdline "until_key timeout_ms=60000" --rng <"$work/in" >"$work/console" 2>"$work/stderr" &
	vm_pid=$!
	for _ in $(seq 100); do
		grep -q 'rng: READY' "$work/console" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'rng: READY' "$work/console" || { bad "rng: the guest did not start"; return; }
	exec {log_fd}<"$work/stderr"
	backs=0 log_partial=
	while ((kills < RNG_KILLS)); do
		rand_sleep 20 200
		CHILD=$(pgrep -P "$vm_pid" -x isola-rng | head -1)
		[[ -n $CHILD ]] || { bad "rng: no isola-rng under isola (after $kills kills)"; break; }
		kill -KILL "$CHILD" 2>/dev/null || { bad "rng: pid $CHILD vanished"; break; }
		kills=$((kills + 1))
		wait_back "$kills" 10 || { bad "rng: isola-rng not back 10 s after kill $kills"; break; }
	done
	exec {log_fd}<&-
	printf x >&"$key_fd"
	for _ in $(seq 300); do
		kill -0 "$vm_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$vm_pid" 2>/dev/null && kill "$vm_pid"
	wait "$vm_pid"
	st=$?
	vm_pid=
	exec {key_fd}>&-
	bytes=$(grep -ao 'rng: reads=.*' "$work/console")
	if [[ $st != 1 ]] || grep -aq '^FAIL' "$work/console" ||
		! grep -aq 'PASS: every 4 KiB read is new entropy' "$work/console" ||
		grep -q 'giving up\|needs a reset' "$work/stderr"; then
		bad "rng: isola exit status $st (want 1); $(grep -a '^FAIL' "$work/console" | head -3)"
		tail -5 "$work/stderr" | sed 's/^/    | /'
		return
	fi
	[[ $(back_count) == "$kills" ]] || bad "rng: $(back_count) restarts logged for $kills kills"
	echo "ok   rng: $kills kills of isola-rng, guest PASS (${bytes#rng: }); $(recovery_report)"
}

now_ms
start=$NOW
for phase in ${PHASES:-kill stall qsd rng}; do
	case $phase in
	kill) phase1 ;;
	stall) phase2 ;;
	qsd) phase3 ;;
	rng) phase4 ;;
	*) fail "PHASES: unknown phase $phase (kill, stall, qsd, rng)" ;;
	esac
done
now_ms
echo "total: $(((NOW - start) / 1000)) s"
((failed)) && exit 1
echo "PASS: ${PHASES:-kill stall qsd rng} (KILLS=$KILLS, RNG_KILLS=$RNG_KILLS): every acknowledged write intact, no guest error"
