#!/bin/bash
# Two VMs, each with its own disk: neither VM's device server can reach the
# other's image or socket, and killing one VM's servers leaves the other VM
# and its device untouched.
source "$(dirname "$0")/../lib.sh"
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-blk ]] || skip "isola or isola-blk not built (make)"
[[ $(id -u) == 0 ]] || skip "needs root (device servers get their own namespaces only as root)"
GUEST=$GUESTS/counter.elf
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
work=$(mktemp -d /tmp/isola-2vm.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM HUP

for vm in a b; do
	truncate -s 16M "$work/$vm.img"
	"$ISOLA" run --kernel "$GUEST" --memory 64M --disk "path=$work/$vm.img,restart=never" \
		--timeout 30 --console "file:$work/$vm.console" </dev/null 2>"$work/$vm.stderr" &
	pids+=($!)
done
# The innermost server process of each VM (pid 1 of its own pid namespace).
server_of() {
	local parent
	for _ in $(seq 50); do
		parent=$(pgrep -P "$1" -f isola-blk) && break
		sleep 0.1
	done
	[[ -n $parent ]] || return 1
	pgrep -P "$parent" -f isola-blk || echo "$parent"
}
sa=$(server_of "${pids[0]}") || fail "VM a's isola-blk did not start"
sb=$(server_of "${pids[1]}") || fail "VM b's isola-blk did not start"
# An event, not a delay: each server says so once its sandbox is built.
for vm in a b; do
	for _ in $(seq 100); do
		grep -q 'isola-blk: sandboxed:' "$work/$vm.stderr" && break
		sleep 0.1
	done
	grep -q 'isola-blk: sandboxed:' "$work/$vm.stderr" ||
		fail "VM $vm's isola-blk never said it was sandboxed: $(cat "$work/$vm.stderr")"
done

# 1. Each server sees an empty root: neither image (its own included) is a
#    path it can open; it holds its own image only as an inherited fd.
#    /proc/PID/root resolves a path as the server would, from its root (an
#    nsenter'd `test` could not even be exec'd in that empty root).
for s in "$sa" "$sb"; do
	root=/proc/$s/root # the kernel's view of the server's root, not a host path
	[[ -d $root/ ]] || fail "cannot look at server $s's root ($root)"
	[[ -e $root$ISOLA ]] && fail "server $s can see $ISOLA: its root is not the empty one"
	for img in "$work/a.img" "$work/b.img"; do
		[[ -e $root$img ]] && fail "server $s can see $img from its root"
	done
	[[ $(readlink /proc/$s/ns/mnt) != $(readlink /proc/self/ns/mnt) ]] ||
		fail "server $s shares the host's mount namespace"
	[[ $(readlink /proc/$s/ns/net) != $(readlink /proc/self/ns/net) ]] ||
		fail "server $s shares the host's network namespace"
done
[[ $(readlink /proc/$sa/ns/mnt) != $(readlink /proc/$sb/ns/mnt) ]] ||
	fail "the two servers share a mount namespace"
# VM b's image fd is not among VM a's server's fds (and vice versa).
ls -l /proc/"$sa"/fd 2>/dev/null | grep -q "$work/b.img" && fail "VM a's server holds VM b's image"
ls -l /proc/"$sb"/fd 2>/dev/null | grep -q "$work/a.img" && fail "VM b's server holds VM a's image"
echo "ok: servers are confined to their own namespaces and fds"

# 2. Kill VM a's servers: VM b and its server are untouched.
before_b=$(grep -c '^count' "$work/b.console")
pkill -KILL -P "${pids[0]}" -f isola-blk
kill -KILL "$sa" 2>/dev/null
sleep 2
kill -0 "$sb" 2>/dev/null || fail "VM b's server died when VM a's was killed"
kill -0 "${pids[1]}" 2>/dev/null || fail "VM b stopped when VM a's server was killed"
after_b=$(grep -c '^count' "$work/b.console")
((after_b > before_b)) || fail "VM b stopped counting ($before_b -> $after_b)"
grep -q 'disk0: .*needs a reset' "$work/a.stderr" || fail "VM a did not report its lost device"
grep -q 'needs a reset' "$work/b.stderr" && fail "VM b reported a lost device"
kill -0 "${pids[0]}" 2>/dev/null || fail "VM a itself stopped (only its device should be lost)"
echo "PASS: VM b untouched (counting $before_b -> $after_b); VM a lost only its device"
