#!/bin/bash
# Live upgrade of a device server (issue 16, acceptance 5; docs/api.md
# "Live upgrade of a device server"): isola replaces a running isola-blk by
# the binary on disk while the guest writes without pause, and the guest
# sees no error.  The guest is blk_stress (tests/guest/blk_stress.c): 8
# writes in flight over 64 slots, each 4 KiB block carrying slot, sequence
# number and checksum, a FLUSH every 16 writes, a read-back every 32; any
# error or a request not completed within 5 s fails it, and at the end
# every slot must read back exactly its last acknowledged write.
#
# isola and isola-blk run from copies in a directory of the test's own
# (servers live next to isola).  Before each upgrade the test installs a
# different build there: build/isola-blk with a marker line appended
# ("isola-live-upgrade build N"), written to a temporary name and renamed
# over isola-blk, as a package upgrade does.  After each it checks: a new
# server pid, which runs that very file (/proc/PID/exe: its inode, and the
# marker in it); the old server gone; isola's log names the new binary and
# says "upgraded", never a crash or a restart.
#   A. `isola run --disk ...,restart=never`: 20 upgrades by SIGUSR2, 20-90 ms
#      of writes apart (UPGRADES_A=N to change).  With restart=never the
#      first loss charged to the restart budget would give the device up
#      (NEEDS_RESET) and fail the guest: upgrades are not.  Many and close
#      together, because a kill-and-replay that loses what the old server
#      had in flight shows in the guest only now and then (a scratch build
#      that SIGKILLed the server and dropped its inflight region failed the
#      guest at the 5th to 36th such upgrade: "head N completed twice or
#      never submitted").
#   B. --api-sock with --config-file: 3 upgrades by PATCH /drives/{id}
#      {"server_upgrade": true}, 2 by PUT /actions UpgradeServers; and the
#      refusals, the server untouched: with path_on_host ("send it alone"),
#      a non-boolean, an unknown drive, a paused VM, no binary on disk.
#   C. --jail (as root; said and passed over otherwise): SIGUSR2 is refused
#      with a line that says why (the jailed spawner runs the binary it
#      opened before the jail), the server unchanged.
# Each phase wants guest PASS and isola exit status 1.  Prints each
# upgrade's time (trigger to new server serving, as the core logs it).
set -u
source "$(dirname "$0")/../lib.sh"
GUEST=$GUESTS/blk_stress.elf
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-blk ]] || fail "isola or isola-blk not built (make)"
[[ -f $GUEST ]] || fail "$GUEST not built (make guests)"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"

TMP=$(mktemp -d /tmp/isola-live-upgrade.$$.XXXXXX)
BIN=$TMP/bin
vm_pid= key_fd=
cleanup() {
	[[ -n $vm_pid ]] && kill -KILL "$vm_pid" 2>/dev/null
	wait 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }
mkdir "$BIN"
cp "$ISOLA" "$BIN/isola"
cp "$ISOLA_ROOT/build/isola-blk" "$BIN/isola-blk"
SLOTS=64
UPGRADES_A=${UPGRADES_A:-20}
# The core's lines about a server in trouble (as tests/run.sh's SERVER_TROUBLE):
# an upgrade must cause none of them.
TROUBLE='was killed by|exited with status|hung up|broke the protocol|restarting it|is back after|did not come back|giving up|needs a reset|waiting for it to come back|handover to the new'
BUILD=0
TIMES=()

# install_new: a different isola-blk next to isola, renamed over the old one.
install_new() {
	BUILD=$((BUILD + 1))
	cp "$ISOLA_ROOT/build/isola-blk" "$BIN/.isola-blk.new"
	printf '\nisola-live-upgrade build %d\n' "$BUILD" >>"$BIN/.isola-blk.new"
	mv -f "$BIN/.isola-blk.new" "$BIN/isola-blk"
	NEW_INODE=$(stat -c %i "$BIN/isola-blk")
}

# server_pid: the core's isola-blk child (the sandbox's parent), or nothing.
server_pid() {
	local f p comm
	for f in /proc/"$vm_pid"/task/*/children; do
		for p in $(<"$f"); do
			read -r comm <"/proc/$p/comm" 2>/dev/null && [[ $comm == isola-blk ]] && echo "$p" && return 0
		done
	done 2>/dev/null
	return 1
}

# start_vm PHASE ISOLA-ARGS...: blk_stress on a fresh image, console on
# stdout, stdin a fifo the test keeps open (a byte there stops the guest).
start_vm() {
	local phase=$1
	shift
	PHASE=$phase
	rm -f "$TMP/in" "$TMP/err" "$TMP/console" "$TMP/disk.img"
	truncate -s 1M "$TMP/disk.img"
	mkfifo "$TMP/in"
	exec {key_fd}<>"$TMP/in"
	"$BIN/isola" "$@" <"$TMP/in" >"$TMP/console" 2>"$TMP/err" &
	vm_pid=$!
	for _ in $(seq 200); do
		grep -aq 'blk_stress: READY' "$TMP/console" 2>/dev/null && break
		kill -0 "$vm_pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -aq 'blk_stress: READY' "$TMP/console" ||
		fail "$phase: the guest did not start: $(tail -n 5 "$TMP/console" "$TMP/err")"
	SERVER=$(server_pid)
	[[ -n $SERVER ]] || fail "$phase: no isola-blk child of isola"
}

# upgrade HOW TRIGGER...: install a new build, run TRIGGER, check the result.
upgrade() {
	local how=$1 before line old new took
	shift
	before=$(grep -c 'isola-blk upgraded in' "$TMP/err")
	old=$(server_pid)
	install_new
	"$@" || { problem "$how (build $BUILD): the trigger failed: ${CODE-} ${BODY-}"; return; }
	for _ in $(seq 200); do
		(($(grep -c 'isola-blk upgraded in' "$TMP/err") > before)) && break
		sleep 0.05
	done
	line=$(grep 'isola-blk upgraded in' "$TMP/err" | tail -n 1)
	if (($(grep -c 'isola-blk upgraded in' "$TMP/err") <= before)); then
		problem "$how (build $BUILD): no upgrade logged: $(tail -n 3 "$TMP/err")"
		return
	fi
	[[ $line =~ upgraded\ in\ ([0-9.]+)\ ms:\ pid\ ([0-9]+)\ -\>\ ([0-9]+) ]] ||
		{ problem "$how: unreadable line: $line"; return; }
	took=${BASH_REMATCH[1]}
	new=${BASH_REMATCH[3]}
	TIMES+=("$took")
	[[ ${BASH_REMATCH[2]} == "$old" ]] || problem "$how: the core upgraded pid ${BASH_REMATCH[2]}, the server was $old"
	[[ $(server_pid) == "$new" ]] || problem "$how: the core's isola-blk is $(server_pid), the log says $new"
	grep -q "upgrading isola-blk (pid $old): new binary $BIN/isola-blk (inode $NEW_INODE," "$TMP/err" ||
		problem "$how: the log does not name the new binary (inode $NEW_INODE): $(grep 'upgrading isola-blk' "$TMP/err" | tail -n 1)"
	if [[ $(stat -L -c %i "/proc/$new/exe" 2>/dev/null) == "$NEW_INODE" ]] &&
		grep -aq "isola-live-upgrade build $BUILD\$" "/proc/$new/exe"; then
		ok "$how: pid $old -> $new runs build $BUILD (inode $NEW_INODE) after $took ms"
	else
		problem "$how: pid $new runs inode $(stat -L -c %i "/proc/$new/exe" 2>&1), not build $BUILD (inode $NEW_INODE)"
	fi
	# the sandbox's parent is reaped before the answer; the server in it
	# follows by PDEATHSIG a moment later
	for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$old" 2>/dev/null && problem "$how: the old isola-blk $old still runs"
	# the guest writes on the new server a while before the next upgrade
	sleep "$PAUSE"
}

# stop_vm: the key, then isola's exit; wants status 1, guest PASS, no trouble.
stop_vm() {
	local status
	printf x >&"$key_fd"
	for _ in $(seq 300); do
		kill -0 "$vm_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$vm_pid" 2>/dev/null && kill "$vm_pid"
	wait "$vm_pid"
	status=$?
	vm_pid=
	exec {key_fd}>&-
	if [[ $status == 1 ]] && ! grep -aq '^FAIL' "$TMP/console" &&
		grep -aq 'PASS: every acknowledged write reads back intact' "$TMP/console"; then
		ok "$PHASE: guest PASS ($(grep -ao 'writes=[0-9]* flushes=[0-9]* reads=[0-9]*.*max_wait_us=[0-9]*' "$TMP/console"))"
	else
		problem "$PHASE: isola exit status $status (want 1), guest: $(grep -a -E '^(FAIL|PASS|blk_stress)' "$TMP/console" | tail -n 6)"
	fi
	if grep -Eq "$TROUBLE" "$TMP/err"; then
		problem "$PHASE: the core logged trouble, not only upgrades: $(grep -E "$TROUBLE" "$TMP/err" | head -n 3)"
	else
		ok "$PHASE: no crash, restart or give-up in isola's log"
	fi
	cp "$TMP/err" "$TMP/$PHASE.err"
	cp "$TMP/console" "$TMP/$PHASE.console"
}

CMDLINE="slots=$SLOTS fresh until_key seconds=600 depth=8"

echo "A. isola run, restart=never, SIGUSR2"
start_vm A run --kernel "$GUEST" --memory 64M --timeout 120 --console stdio --cmdline "$CMDLINE" \
	--disk "path=$TMP/disk.img,restart=never"
sleep 0.3
PAUSE=0.05
for _ in $(seq "$UPGRADES_A"); do
	PAUSE=0.0$((2 + RANDOM % 8))
	upgrade "SIGUSR2" kill -USR2 "$vm_pid"
done
grep -q 'SIGUSR2: 1 device server(s) upgraded' "$TMP/err" || problem "A: no 'SIGUSR2: 1 device server(s) upgraded' line"
stop_vm

echo "B. --api-sock, PATCH /drives and UpgradeServers"
SOCK=$TMP/api.sock
# api METHOD PATH [BODY]: sets CODE and BODY.
api() {
	local args=(-s --max-time 20 --unix-socket "$SOCK" -X "$1" -o "$TMP/resp" -w '%{http_code}')
	[[ -n ${3-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	CODE=$(curl "${args[@]}" "http://localhost$2" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
	[[ $CODE == 204 ]]
}
patch_upgrade() { api PATCH /drives/data '{"drive_id": "data", "server_upgrade": true}'; }
action_upgrade() { api PUT /actions '{"action_type": "UpgradeServers"}'; }
# refuse WHAT METHOD PATH BODY WORDS: a 400 whose message has WORDS, the
# same isola-blk serving.
refuse() {
	local before
	before=$(server_pid)
	api "$2" "$3" "$4"
	if [[ $CODE == 400 && $BODY == *"$5"* ]]; then ok "$1: 400 ($BODY)"; else problem "$1: $CODE $BODY"; fi
	[[ $(server_pid) == "$before" ]] || problem "$1: isola-blk changed ($before -> $(server_pid))"
}
cat >"$TMP/config.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUEST", "boot_args": "$CMDLINE"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
 "drives": [{"drive_id": "data", "path_on_host": "$TMP/disk.img", "is_root_device": false,
             "is_read_only": false}]}
EOF
start_vm B --api-sock "$SOCK" --config-file "$TMP/config.json"
sleep 0.3
PAUSE=0.3
upgrade "PATCH /drives server_upgrade" patch_upgrade
upgrade "PUT /actions UpgradeServers" action_upgrade
refuse "server_upgrade with path_on_host" PATCH /drives/data \
	"{\"drive_id\": \"data\", \"server_upgrade\": true, \"path_on_host\": \"$TMP/disk.img\"}" "send it alone"
refuse "server_upgrade not a boolean" PATCH /drives/data '{"drive_id": "data", "server_upgrade": "yes"}' \
	"must be true or false"
refuse "an unknown drive" PATCH /drives/other '{"drive_id": "other", "server_upgrade": true}' "does not exist"
mv "$BIN/isola-blk" "$BIN/isola-blk.away"
refuse "no binary on disk" PATCH /drives/data '{"drive_id": "data", "server_upgrade": true}' \
	"install the new binary there"
mv "$BIN/isola-blk.away" "$BIN/isola-blk"
api PATCH /vm '{"state": "Paused"}' || problem "pause: $CODE $BODY"
refuse "a paused VM" PUT /actions '{"action_type": "UpgradeServers"}' "resume it"
refuse "a paused VM (PATCH)" PATCH /drives/data '{"drive_id": "data", "server_upgrade": true}' "resume it"
api PATCH /vm '{"state": "Resumed"}' || problem "resume: $CODE $BODY"
upgrade "PATCH /drives server_upgrade" patch_upgrade
upgrade "PUT /actions UpgradeServers" action_upgrade
upgrade "PATCH /drives server_upgrade" patch_upgrade
stop_vm

echo "C. --jail: refused"
if [[ $(id -u) != 0 ]]; then
	echo "  not checked: --jail needs root"
else
	J=$TMP/jail
	mkdir -p "$J"
	chmod 755 "$TMP" "$J"
	cp "$GUEST" "$J/guest.elf"
	chmod 644 "$J/guest.elf"
	truncate -s 1M "$J/disk.img"
	chown 4242:4243 "$J/disk.img"
	start_vm C --jail "$J" --jail-user 4242:4243 run --kernel /guest.elf --memory 64M \
		--timeout 120 --console stdio --cmdline "$CMDLINE" --disk path=/disk.img
	kill -USR2 "$vm_pid"
	for _ in $(seq 100); do
		grep -q 'SIGUSR2: 0 device server' "$TMP/err" && break
		sleep 0.05
	done
	if grep -q 'disk0: inside --jail isola runs the isola-blk it opened before it entered the jail' "$TMP/err" &&
		[[ $(server_pid) == "$SERVER" ]]; then
		ok "C: SIGUSR2 refused with a reason, isola-blk $SERVER kept"
	else
		problem "C: $(grep SIGUSR2 -A1 "$TMP/err" | head -n 3); isola-blk $SERVER -> $(server_pid)"
	fi
	stop_vm
fi

((${#TIMES[@]} == UPGRADES_A + 5)) || problem "${#TIMES[@]} upgrades done, want $((UPGRADES_A + 5))"
echo "  upgrade times (ms, trigger to the new server serving): ${TIMES[*]}"
if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problems:"
	printf '  %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "live_upgrade: all checks passed"
