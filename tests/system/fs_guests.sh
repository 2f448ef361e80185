#!/bin/bash
# Hostile virtio-fs guests (tests/guest/hostile/virtio_fs.c; issue 17 item
# 4; docs/fs.md "Security"): `isola run --fs tag=hostile,dir=SHARE` starts
# Debian's virtiofsd on a share made here (inside.txt, the symlinks escape
# -> the absolute path of outside.txt and escape_rel -> ../outside.txt),
# with outside.txt next to it, and the guest attacks:
#   fuse     malformed FUSE requests: virtiofsd answers each with an error
#            (or serves it harmlessly); virtiofsd never dies, no restart
#   chain    descriptor chains libvhost-user/virtiofsd refuse by dying: isola
#            restarts virtiofsd each time (no NEEDS_RESET, never given up),
#            the guest resets the device and mounts a new session
#   config   the front-end's config and queue rules: refusals, one
#            NEEDS_RESET the core logs (a ring in MMIO), no restart
# Every case: isola survives and exits with the guest's PASS (status 1),
# the share works after every attack (the guest reads inside.txt), outside.txt
# is never read (the guest checks) nor changed and nothing appears next to
# the share (checked here), no core line about fs0's server in trouble but
# those the case expects; `fuse` also checks created.txt, written by the
# guest after the attacks.  Each case runs under build/isola and, when
# built, build/asan/isola (asan/CASE: no sanitizer report).
#   FS_CASES="fuse config" runs a subset.
# Exit 0 pass, 1 fail, 77 skip.
set -u
cd "$(dirname "$0")/../.." || exit 1
source tests/lib.sh
G=build/guests
CASES=${ISOLA_CASES:-/dev/null}
VIRTIOFSD=/usr/lib/qemu/virtiofsd
[[ -x $VIRTIOFSD ]] || skip "no $VIRTIOFSD (apt-get install qemu-system-common)"
((EUID == 0)) || skip "virtiofsd's sandbox needs root"
[[ -x $ISOLA ]] || fail "$ISOLA missing: run make"
[[ -x $ISOLA_ROOT/build/isola-fs ]] || fail "build/isola-fs missing: run make"
[[ -f $G/hostile/virtio_fs.elf ]] || fail "$G/hostile/virtio_fs.elf missing: run 'make guests'"
TMP=$(mktemp -d /tmp/isola-fsg.$$.XXXXXX)
VM_PID=
cleanup() {
	[[ -n $VM_PID ]] && kill "$VM_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
failed=0
# The core's lines about a device server in trouble (tests/run.sh).
SERVER_TROUBLE='was killed by|exited with status|hung up|broke the protocol|restarting it|is back after|did not come back|giving up|needs a reset|waiting for it to come back'

# run_case VARIANT ISOLA NAME ATTACK TROUBLE_OK_RE EXPECT
# EXPECT: stderr regexes joined by " && ", each must match a line.
run_case() {
	local variant=$1 isola=$2 name=$3 attack=$4 ok_re=$5 expect=$6 re line st
	local f dir=$TMP/$variant-$name case=$name why='' t0=$SECONDS
	[[ $variant == asan ]] && case=asan/$name
	[[ -z ${FS_CASES:-} || " $FS_CASES " == *" $name "* ]] || return 0
	mkdir -p "$dir/share"
	printf 'isola-fs-inside\n' >"$dir/share/inside.txt"
	printf 'OUTSIDE: not for the guest\n' >"$dir/outside.txt"
	ln -s "$dir/outside.txt" "$dir/share/escape"
	ln -s ../outside.txt "$dir/share/escape_rel"
	local before
	before=$(stat -c '%s %Y %Z %i' "$dir/outside.txt"; sha256sum <"$dir/outside.txt")
	echo "=== CASE $case"
	timeout 150 "$isola" run --kernel "$G/hostile/virtio_fs.elf" --memory 64M \
		--fs "tag=hostile,dir=$dir/share" --console "file:$dir/console" \
		--cmdline "attack=$attack tag=hostile" --timeout 60 </dev/null >"$dir/out" 2>"$dir/err" &
	VM_PID=$!
	wait "$VM_PID"
	st=$?
	VM_PID=
	tr -d '\r' <"$dir/err" >"$dir/err.txt"
	echo "--- console"; tr -d '\r' <"$dir/console" | grep -a -v -e '^virtio ' -e '^PASS: ' | tail -60
	echo "--- stderr (restarts: $(grep -c 'is back after' "$dir/err.txt"))"
	grep -v -e 'had requests in flight' -e 'does not know the guest' -e 'fv_remove_watch: TODO' \
		"$dir/err.txt" | tail -30
	((st == 1)) || why="isola exit status $st, want 1 (guest PASS)"
	grep -aq '^FAIL' <(tr -d '\r' <"$dir/console") &&
		why="${why:+$why; }guest: $(tr -d '\r' <"$dir/console" | grep -a -m1 '^FAIL')"
	grep -q 'Sanitizer' "$dir/err.txt" && why="${why:+$why; }sanitizer report"
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
	# the host side: outside.txt untouched, nothing new next to the share
	[[ $(stat -c '%s %Y %Z %i' "$dir/outside.txt"; sha256sum <"$dir/outside.txt") == "$before" ]] ||
		why="${why:+$why; }outside.txt changed"
	line=
	for f in "$dir"/* "$dir"/.[!.]*; do
		[[ -e $f || -L $f ]] || continue
		case ${f##*/} in share | outside.txt | console | out | err | err.txt) ;; *) line+="${f##*/} " ;; esac
	done
	[[ -z $line ]] || why="${why:+$why; }new files next to the share: $line"
	if [[ $attack == fuse ]]; then
		[[ $(cat "$dir/share/created.txt" 2>/dev/null) == 'written after the attacks' ]] ||
			why="${why:+$why; }share/created.txt is not what the guest wrote"
	fi
	echo "=== END $case ($((SECONDS - t0)) s)"
	if [[ -n $why ]]; then
		echo "$case FAIL $why" >>"$CASES"
		echo "FAIL: $case: $why"
		failed=1
	else
		echo "$case PASS" >>"$CASES"
		echo "PASS: $case ($((SECONDS - t0)) s)"
	fi
}

# virtiofsd's own lines for the requests it refuses (QEMU 7.2's
# tools/virtiofsd/fuse_virtio.c, fuse_lowlevel.c): it answers, never dies.
FUSE_EXPECT='^virtio_send_msg: elem [0-9]+ too short for out_header$ && ^virtio_send_msg: elem [0-9]+ too small for data len 144$ && ^fuse: do_write_buf: buffer size doesn.t match arg->size$'
# Each chain ends virtiofsd (libvhost-user's vu_panic, or an assert in
# virtiofsd): the core restarts it, the guest resets the device.
CHAIN_OK='^isola: warning: fs0: isola-fs \(pid [0-9]+\) (exited with status [0-9]+|was killed by [A-Z]+|hung up and was killed); restarting it$|^isola: fs0: isola-fs is back after |^isola-fs: virtiofsd \(pid [0-9]+\) (exited with status [0-9]+|was killed by signal [0-9]+)$'
CHAIN_EXPECT='^fv_panic: libvhost-user: virtio: invalid address for buffers$ && ^fv_panic: libvhost-user: Incorrect order for descriptors$ && ^fv_panic: libvhost-user: virtio: zero sized buffers are not allowed$ && fv_queue_worker: elem [0-9]+ too short for in_header$ && fv_queue_worker: elem [0-9]+ too large for buffer$ && unref_inode: Assertion .inode->nlookup >= n. failed && ^isola: fs0: isola-fs is back after .*\(restart [0-9]+\); in-flight requests resumed$'
# The core refuses a ring outside guest RAM at DRIVER_OK (NEEDS_RESET).
CONFIG_OK='^isola: fs0: starting a queue: Bad address; the device needs a reset$'

variants=("release build/isola")
[[ -x build/asan/isola && -x build/asan/isola-fs ]] && variants+=("asan build/asan/isola")
for v in "${variants[@]}"; do
	read -r variant binary <<<"$v"
	set -- "$variant" "$binary"
	run_case "$1" "$2" fuse fuse '' "$FUSE_EXPECT"
	run_case "$1" "$2" chain chain "$CHAIN_OK" "$CHAIN_EXPECT"
	run_case "$1" "$2" config config "$CONFIG_OK" "$CONFIG_OK"
done
exit $failed
