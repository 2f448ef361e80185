#!/bin/bash
# virtio-fs back-ends (issue 17; docs/fs.md), on the host, without a guest
# file system (the guest side is tests/system/linux_nested.sh virtiofs):
#   1. --fs refusals: a missing dir, a tag over 36 bytes, a tag twice, an
#      external socket nobody listens on, dir= with --jail: exit status 2
#      and a sentence
#   2. --fs tag=,dir=: isola-fs starts Debian's virtiofsd on the directory
#      (sandbox=namespace), the vhost-user negotiation succeeds (the VM runs
#      to its --timeout), virtiofsd holds no socket file and only its fds
#   3. virtiofsd SIGKILLed: isola-fs says how it ended, isola starts a new
#      one and warns that the guest's mount answers EIO until mounted
#      again; with restart=never the device needs a reset instead; the VM
#      keeps running to its timeout either way
#   4. --fs tag=,socket=: a virtiofsd the test starts, negotiated with
# The VM is Debian's kernel with no root: it runs (or, on PVM, tries to)
# until --timeout, which is all the back-end side needs.
set -u
source "$(dirname "$0")/../lib.sh"

VIRTIOFSD=/usr/lib/qemu/virtiofsd
[[ -x $VIRTIOFSD ]] || skip "no $VIRTIOFSD (apt-get install qemu-system-common)"
[[ -x $ISOLA_ROOT/build/isola-fs ]] || fail "no build/isola-fs (make)"
((EUID == 0)) || skip "virtiofsd's sandbox needs root"
KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
[[ -n $KERNEL ]] || skip "no Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)"

TMP=$(mktemp -d /tmp/isola-fs-test.$$.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
SHARE=$TMP/share
mkdir -p "$SHARE"

run() { # LOG ARGS...: isola run on KERNEL, console off
	local log=$1
	shift
	"$ISOLA" run --kernel "$KERNEL" --console none --memory 256M "$@" >"$log" 2>&1
}

# 1. refusals
refused() { # WHAT NEEDLE ARGS...
	local what=$1 needle=$2 st
	shift 2
	run "$TMP/refused.log" --timeout 5 "$@"
	st=$?
	((st == 2)) || fail "$what: exit status $st, want 2: $(head -c 400 "$TMP/refused.log")"
	grep -qF -- "$needle" "$TMP/refused.log" || fail "$what: no '$needle' in: $(head -c 400 "$TMP/refused.log")"
}
refused "missing dir" "--fs dir=$TMP/none: No such file or directory; give an existing directory" \
	--fs "tag=t,dir=$TMP/none"
refused "37-byte tag" "a tag is 1 to 36 bytes" --fs "tag=$(printf 'x%.0s' {1..37}),dir=$SHARE"
refused "a tag twice" "--fs tag=t is given twice" --fs "tag=t,dir=$SHARE" --fs "tag=t,dir=$SHARE"
refused "no listener" "fs0:" --fs "tag=t,socket=$TMP/nobody.sock"
# with --jail: refused before anything starts (virtiofsd is outside any jail)
mkdir -p "$TMP/jail"
"$ISOLA" --jail "$TMP/jail" --jail-user 65534:65534 run --kernel /k --fs "tag=t,dir=$SHARE" \
	>"$TMP/jail.log" 2>&1
st=$?
((st == 2)) && grep -q -- "--fs tag=t,dir= with --jail: virtiofsd runs outside any jail" "$TMP/jail.log" ||
	fail "--jail: exit status $st, want 2 and the reason: $(head -c 400 "$TMP/jail.log")"
echo "ok 1: --fs refusals"

# find_virtiofsd ISOLA_PID: virtiofsd's pid (isola -> isola-fs -> virtiofsd),
# within 10 s, in $vpid; the launcher's in $fpid
find_virtiofsd() {
	vpid= fpid=
	for _ in $(seq 100); do
		fpid=$(pgrep -P "$1" -x isola-fs | head -n 1)
		[[ -n $fpid ]] && vpid=$(pgrep -P "$fpid" -x virtiofsd | head -n 1)
		[[ -n $vpid ]] && return 0
		sleep 0.1
	done
	return 1
}

# 2. dir=: virtiofsd started, negotiated with, sandboxed by namespace
"$ISOLA" run --kernel "$KERNEL" --console none --memory 256M --timeout 4 \
	--fs "tag=share,dir=$SHARE" >"$TMP/dir.log" 2>&1 &
ipid=$!
PIDS+=("$ipid")
find_virtiofsd "$ipid" || fail "dir=: no virtiofsd under isola-fs under isola: $(cat "$TMP/dir.log")"
tr '\0' ' ' <"/proc/$vpid/cmdline" | grep -q -- "--fd=3 -o source=$SHARE -o cache=auto -o sandbox=namespace -o log_level=warn" ||
	fail "dir=: virtiofsd runs as '$(tr '\0' ' ' <"/proc/$vpid/cmdline")'"
# only stdin/out/err and the accepted connection (the listening socket may
# be closed by then): never the core's socket pair or the spawner's netns
fds=$(ls "/proc/$vpid/fd" | wc -l)
((fds <= 6)) || fail "dir=: virtiofsd holds $fds fds: $(ls -l "/proc/$vpid/fd" | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' ')"
wait "$ipid"
st=$?
((st == 8)) || fail "dir=: isola exit status $st, want 8 (the timeout): $(cat "$TMP/dir.log")"
grep -E 'needs a reset|fs0:|isola-fs:' "$TMP/dir.log" && fail "dir=: isola complained (above)"
# it dies of its parent's death (PR_SET_PDEATHSIG), a moment after isola
gone() { for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
gone "$vpid" || fail "dir=: virtiofsd (pid $vpid) outlived isola by 3 s"
echo "ok 2: dir=: isola-fs started virtiofsd (sandbox=namespace) on the share, negotiated"

# 3. virtiofsd killed: restarted (a new virtiofsd, the EIO-until-remount
#    warning), the VM keeps running; with restart=never: NEEDS_RESET
"$ISOLA" run --kernel "$KERNEL" --console none --memory 256M --timeout 5 \
	--fs "tag=share,dir=$SHARE" >"$TMP/kill.log" 2>&1 &
ipid=$!
PIDS+=("$ipid")
find_virtiofsd "$ipid" || fail "kill: no virtiofsd: $(cat "$TMP/kill.log")"
sleep 1
old_vpid=$vpid old_fpid=$fpid
kill -KILL "$vpid"
for _ in $(seq 50); do
	find_virtiofsd "$ipid" && [[ $vpid != "$old_vpid" ]] && break
	sleep 0.1
done
[[ -n $vpid && $vpid != "$old_vpid" ]] || fail "kill: no new virtiofsd after the kill: $(cat "$TMP/kill.log")"
wait "$ipid"
st=$?
((st == 8)) || fail "kill: isola exit status $st, want 8 (the VM keeps running to its timeout): $(cat "$TMP/kill.log")"
grep -q "isola-fs: virtiofsd (pid $old_vpid) was killed by signal 9" "$TMP/kill.log" ||
	fail "kill: isola-fs did not say how virtiofsd ended: $(cat "$TMP/kill.log")"
grep -q "fs0: isola-fs (pid $old_fpid) exited with status 137; restarting it" "$TMP/kill.log" &&
	grep -q "fs0: isola-fs is back after" "$TMP/kill.log" &&
	grep -q "fs0: the new back-end does not know the guest's FUSE session: the guest's virtio-fs mount answers EIO until it is unmounted and mounted again" "$TMP/kill.log" ||
	fail "kill: not restarted with the EIO warning: $(cat "$TMP/kill.log")"
grep -q 'needs a reset' "$TMP/kill.log" && fail "kill: the device was given up: $(cat "$TMP/kill.log")"
gone "$old_fpid" || fail "kill: the old isola-fs (pid $old_fpid) is still there"
echo "ok 3: virtiofsd killed: a new one started, the guest's EIO-until-remount said; the VM ran on"

"$ISOLA" run --kernel "$KERNEL" --console none --memory 256M --timeout 4 \
	--fs "tag=share,dir=$SHARE,restart=never" >"$TMP/never.log" 2>&1 &
ipid=$!
PIDS+=("$ipid")
find_virtiofsd "$ipid" || fail "restart=never: no virtiofsd: $(cat "$TMP/never.log")"
sleep 1
kill -KILL "$vpid"
wait "$ipid"
st=$?
((st == 8)) || fail "restart=never: isola exit status $st, want 8: $(cat "$TMP/never.log")"
grep -q "fs0: isola-fs (pid $fpid) exited with status 137 (restart=never); the device needs a reset (the VM keeps running)" "$TMP/never.log" ||
	fail "restart=never: no NEEDS_RESET line: $(cat "$TMP/never.log")"
grep -q 'is back after' "$TMP/never.log" && fail "restart=never: restarted anyway"
echo "ok 3b: restart=never: the device needs a reset, said why; the VM ran on"

# 4. socket=: an external virtiofsd
$VIRTIOFSD --socket-path="$TMP/vfs.sock" -o source="$SHARE" -o sandbox=namespace >"$TMP/vfs.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 50); do [[ -S $TMP/vfs.sock ]] && break; sleep 0.1; done
run "$TMP/ext.log" --timeout 3 --fs "tag=share,socket=$TMP/vfs.sock"
st=$?
((st == 8)) || fail "socket=: isola exit status $st, want 8: $(cat "$TMP/ext.log")"
grep -q 'Received vhost-user socket connection' "$TMP/vfs.log" || fail "socket=: virtiofsd saw no front-end: $(cat "$TMP/vfs.log")"
echo "ok 4: socket=: an external virtiofsd, negotiated"
echo "PASS: virtio-fs back-ends"
