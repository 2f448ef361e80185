#!/bin/bash
# Device servers and --jail on a host whose root is the initramfs (rootfs),
# as a minimal host image that never switch_roots, like our nested L1
# (issue 10, bug 2).  pivot_root(2) fails there with EINVAL; the sandbox
# moves its empty tmpfs over / and chroots into it instead (lib/sandbox.c,
# docs/security.md "The empty root on an initramfs").  rootfs_run.py puts
# isola on this host's own rootfs, in a private mount namespace (nothing is
# written to the rootfs), with a copy of the static binaries, the guests and
# a disk in /mnt; default protections (no --no-sandbox, no --no-seccomp):
#  1. blk_stress with a disk: while it runs, isola's root is the rootfs (the
#     root mount of its namespace), and the innermost isola-blk has every
#     thread under seccomp (Seccomp: 2), a mount namespace of its own, and
#     an empty read-only tmpfs as its root; then the guest verifies every
#     acknowledged write (status 1, PASS).
#  2. rng with isola-rng: status 1, no FAIL.
#  3. isola --jail /mnt/jail --jail-user 4242:4243: rng passes (status 1),
#     its isola-rng inside the jail.
#  4. chroot(8) into a directory that is not a mount point: the sandbox
#     cannot make such a / private, and says what to do in one line.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"

[[ $(id -u) == 0 ]] || skip "needs root (mount namespaces, and the servers' sandbox)"
[[ -c /dev/kvm ]] || skip "no /dev/kvm"
command -v python3 >/dev/null || skip "no python3 (tests/system/rootfs_run.py)"
for bin in isola isola-blk isola-rng; do
	[[ -x build/$bin ]] || fail "no build/$bin; run make all"
	readelf -l "build/$bin" | grep -q INTERP &&
		fail "build/$bin is dynamically linked; make builds it static"
done
for g in blk_stress rng; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done

TMP=$(mktemp -d /tmp/isola-rootfs.XXXXXX)
S=$TMP/src
vmm= key_fd=
cleanup() {
	[[ -n $vmm ]] && kill -KILL "$vmm" 2>/dev/null
	wait 2>/dev/null
	# every mount lived in the test's own namespaces, gone with their processes
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM HUP
mkdir -p "$S/jail"
cp build/isola build/isola-blk build/isola-rng "$GUESTS/blk_stress.elf" "$GUESTS/rng.elf" "$S/"
cp "$GUESTS/rng.elf" "$S/jail/"
chmod 755 "$S/jail"
chmod 644 "$S/jail/rng.elf"
truncate -s 16M "$S/disk.img"

on_rootfs() { python3 tests/system/rootfs_run.py "$S" "$@"; }
on_rootfs /mnt/isola --version </dev/null >"$TMP/out" 2>&1
case $? in
0) ;;
77) skip "$(sed -n 's/^SKIP: //p' "$TMP/out")" ;;
*) fail "rootfs_run.py: $(tail -3 "$TMP/out")" ;;
esac

# root_mounts MOUNTINFO AWK_CONDITION: "FSTYPE OPTIONS" of the mounts on "/"
# (proc(5): the fields after " - " are the type, the source, super options)
root_mounts() {
	awk '$5 == "/" && ('"$2"') { for (i = 7; $i != "-"; i++); print $(i + 1), $6 }' "$1"
}
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

# ---- 1. isola-blk -----------------------------------------------------------
mkfifo "$TMP/in"
exec {key_fd}<>"$TMP/in"
python3 tests/system/rootfs_run.py "$S" /mnt/isola run --kernel /mnt/blk_stress.elf --memory 64M --disk path=/mnt/disk.img \
	--cmdline "slots=16 fresh until_key seconds=120" --timeout 300 --console stdio \
	<"$TMP/in" >"$TMP/console" 2>"$TMP/err" &
vmm=$!
for _ in $(seq 300); do
	grep -q 'blk_stress: READY' "$TMP/console" 2>/dev/null && break
	kill -0 "$vmm" 2>/dev/null || break
	sleep 0.1
done
server=
if ! grep -q 'blk_stress: READY' "$TMP/console"; then
	problem "blk_stress did not start on the rootfs: $(tail -3 "$TMP/err")"
else
	# the root mount of a namespace is its own parent in mountinfo
	if [[ $(root_mounts "/proc/$vmm/mountinfo" '$1 == $2') == "rootfs rw,"* ]]; then
		ok "isola's root is the rootfs"
	else
		problem "isola's root is not the rootfs: $(awk '$5 == "/"' "/proc/$vmm/mountinfo")"
	fi
	parent=$(pgrep -P "$vmm" -x isola-blk | head -1)
	server=${parent:+$(pgrep -P "$parent" -x isola-blk | head -1)}
	[[ -n $server ]] ||
		problem "no sandboxed isola-blk under isola: $(ps -o pid,comm --ppid "$vmm" | tr '\n' ' ')"
fi
if [[ -n $server ]]; then
	unfiltered=0
	for task in /proc/$server/task/*; do
		[[ $(awk '$1 == "Seccomp:" {print $2}' "$task/status") == 2 ]] || unfiltered=$((unfiltered + 1))
	done
	[[ $unfiltered == 0 ]] && ok "isola-blk (pid $server): every thread under seccomp" ||
		problem "isola-blk: $unfiltered threads without seccomp"
	[[ $(readlink "/proc/$server/ns/mnt") != "$(readlink "/proc/$vmm/ns/mnt")" ]] &&
		ok "isola-blk has a mount namespace of its own" || problem "isola-blk shares isola's mount namespace"
	root=/proc/$server/root
	entries=$(ls -A "$root/" 2>&1 | tr '\n' ' ')
	fstype=$(stat -f -c %T "$root/")
	# its root's mount as it sees it (mount point "/"; the rootfs under it
	# is out of its sight)
	mounts=$(root_mounts "/proc/$server/mountinfo" 1 | tr '\n' ' ')
	if [[ -z $entries && $fstype == tmpfs && $mounts =~ ^tmpfs\ ro, ]]; then
		ok "isola-blk's root is an empty read-only tmpfs ($mounts)"
	else
		problem "isola-blk's root: type $fstype, mounts '$mounts', holds: $entries"
	fi
fi
printf x >&"$key_fd"
wait "$vmm"
status=$?
vmm=
if [[ $status == 1 ]] && grep -aq 'PASS: every acknowledged write reads back intact' "$TMP/console" &&
	! grep -aq '^FAIL' "$TMP/console"; then
	ok "blk_stress with isola-blk on the rootfs: status 1, every write verified"
else
	problem "blk_stress on the rootfs: status $status; $(grep -a '^FAIL' "$TMP/console" | head -3) $(tail -3 "$TMP/err")"
fi

# ---- 2. isola-rng -----------------------------------------------------------
timeout 180 python3 tests/system/rootfs_run.py "$S" /mnt/isola run --kernel /mnt/rng.elf \
	--memory 64M --rng --timeout 120 --console stdio </dev/null >"$TMP/console" 2>"$TMP/err"
status=$?
if [[ $status == 1 ]] && ! grep -aq '^FAIL' "$TMP/console" && grep -aq '^isola-guest: PASS' "$TMP/console"; then
	ok "rng with isola-rng on the rootfs: status 1"
else
	problem "rng on the rootfs: status $status; $(grep -a '^FAIL' "$TMP/console" | head -3) $(tail -3 "$TMP/err")"
fi

# ---- 3. --jail --------------------------------------------------------------
timeout 180 python3 tests/system/rootfs_run.py "$S" /mnt/isola --jail /mnt/jail \
	--jail-user 4242:4243 run --kernel /rng.elf --memory 64M --rng --timeout 120 --console stdio \
	</dev/null >"$TMP/console" 2>"$TMP/err"
status=$?
if [[ $status == 1 ]] && ! grep -aq '^FAIL' "$TMP/console" && grep -aq '^isola-guest: PASS' "$TMP/console"; then
	ok "--jail on the rootfs: rng with isola-rng in the jail, status 1"
else
	problem "--jail on the rootfs: status $status; $(grep -a '^FAIL' "$TMP/console" | head -3) $(tail -3 "$TMP/err")"
fi

# ---- 4. chroot into a plain directory: one clear line ------------------------
if command -v unshare >/dev/null && command -v chroot >/dev/null; then
	cp -r "$S" "$TMP/plain"
	timeout 60 unshare -m --propagation private chroot "$TMP/plain" /isola-rng --socket /s.sock \
		</dev/null >"$TMP/out" 2>"$TMP/err"
	status=$?
	if [[ $status == 1 ]] && grep -q 'making / private: Invalid argument; / is not a mount point.*mount --bind DIR DIR' "$TMP/err"; then
		ok "chroot into a plain directory: refused ($(cat "$TMP/err"))"
	else
		problem "chroot into a plain directory: status $status, stderr '$(cat "$TMP/err")'"
	fi
fi

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "PASS: servers and --jail sandbox themselves when / is the rootfs"
