#!/bin/bash
# SIGUSR1 to a device server logs one line per running ring
# (servers/README.md "Operations"): the rng guest (until_key) reads entropy
# 4 KiB at a time while isola-rng, sandboxed, gets SIGUSR1 at its outer pid
# (the sandbox's waiting parent, the core's child, which must pass it on to
# the server, pid 1 of its pid namespace).  The line must come, for ring 0,
# with a power-of-two size and indices that fit a ring (uint16 distances):
# last_avail at most size behind avail.idx, used_idx at most size behind
# last_avail, used.idx not behind used_idx; two dumps a moment apart show
# the kick and interrupt counters moving.  SIGUSR1 to isola logs its
# vCPUs' state (below).  Then the guest must still finish with PASS: the
# dumps stopped nothing.
source "$(dirname "$0")/../lib.sh"
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-rng ]] || skip "isola or isola-rng not built (make)"
GUEST=$GUESTS/rng.elf
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
work=$(mktemp -d /tmp/isola-ringdump.$$.XXXXXX)
vm_pid=
cleanup() {
	[[ -n $vm_pid ]] && kill "$vm_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
show() { tail -n 5 "$work/console" | sed 's/^/    console| /'; sed 's/^/    stderr| /' "$work/stderr"; }

mkfifo "$work/in"
exec {key_fd}<>"$work/in"
"$ISOLA" run --kernel "$GUEST" --memory 64M --timeout 60 --console stdio \
	--cmdline "until_key" --rng <"$work/in" >"$work/console" 2>"$work/stderr" &
vm_pid=$!
for _ in $(seq 100); do
	grep -q 'rng: READY' "$work/console" 2>/dev/null && break
	kill -0 "$vm_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'rng: READY' "$work/console" || { show; fail "the guest did not start"; }
server=$(pgrep -P "$vm_pid" -x isola-rng | head -1)
[[ -n $server ]] || { show; fail "no isola-rng under isola"; }

# dump N: send SIGUSR1, wait for the Nth ring-0 line, into $dumped
dump() {
	kill -USR1 "$server" || { show; fail "isola-rng (pid $server) is gone"; }
	for _ in $(seq 50); do
		dumped=$(grep -a 'isola-rng: ring 0 ' "$work/stderr" | sed -n "$1p")
		[[ -n $dumped ]] && return 0
		sleep 0.1
	done
	show
	fail "no ring dump line $1 in isola's stderr 5 s after SIGUSR1 to pid $server"
}
# field LINE NAME: NAME=value's value
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

dump 1
first=$dumped
sleep 0.3
dump 2
second=$dumped
echo "  $first"
echo "  $second"
for line in "$first" "$second"; do
	size=$(field "$line" size)
	avail=$(field "$line" avail.idx)
	last=$(field "$line" last_avail)
	used=$(field "$line" used.idx)
	used_own=$(field "$line" used_idx)
	for v in size avail last used used_own; do
		[[ -n ${!v} ]] || fail "no $v in the dump line: $line"
	done
	((size > 0 && (size & (size - 1)) == 0)) || fail "ring size $size is no power of two: $line"
	# uint16 distances: what the device took and what it has not finished
	(( ((avail - last) & 0xffff) <= size )) || fail "last_avail $last is not within $size of avail.idx $avail: $line"
	(( ((last - used_own) & 0xffff) <= size )) || fail "used_idx $used_own is not within $size behind last_avail $last: $line"
	# the guest writes avail.idx and the server used.idx concurrently with
	# the dump: used.idx is read after used_idx, so it may be ahead by what
	# the ring thread pushed meanwhile, never behind
	(( ((used - used_own) & 0xffff) <= size )) || fail "used.idx $used behind the server's used_idx $used_own: $line"
done
# the guest keeps reading: the second dump saw more kicks and interrupts
k1=$(field "$first" kicks) k2=$(field "$second" kicks)
c1=$(field "$first" calls) c2=$(field "$second" calls)
((k2 > k1 && c2 > c1)) || fail "kicks $k1 -> $k2, calls $c1 -> $c2: the counters did not move"

# SIGUSR1 to isola itself (core/vcpu_dump.c): each vCPU's registers and
# the page walk of its RIP, read while the vCPUs are parked; the guest
# goes on.  The spawner (isola-spawner, the core's child, forked with the
# core's signals blocked) must not die of it, as its default action would
# have it: 'kill -USR1 $(pidof isola)' reaches it too.
spawner=$(pgrep -P "$vm_pid" -x isola-spawner | head -1)
kill -USR1 "$vm_pid"
[[ -n $spawner ]] && kill -USR1 "$spawner"
for _ in $(seq 50); do
	grep -aq 'isola: SIGUSR1: vCPU 0: page walk of rip:' "$work/stderr" && break
	sleep 0.1
done
regs=$(grep -a 'isola: SIGUSR1: vCPU 0: rip=' "$work/stderr" | head -1 | tr -d '\r')
walk=$(grep -a 'isola: SIGUSR1: vCPU 0: page walk of rip:' "$work/stderr" | head -1 | tr -d '\r')
echo "  $regs"
echo "  $walk"
[[ $regs =~ rip=0x[0-9a-f]+\ .*cr3=0x[0-9a-f]+ ]] || { show; fail "no vCPU 0 registers 5 s after SIGUSR1 to isola"; }
# a 64-bit guest's walk: the top level read at CR3, down to a present leaf
cr3=$(sed -n 's/.* cr3=\(0x[0-9a-f]*\).*/\1/p' <<<"$regs")
[[ $walk == *" L4[0]@$cr3="* ]] || { show; fail "the page walk does not start at CR3 $cr3: $walk"; }
[[ $walk =~ L[12]\[[0-9]+\]@0x[0-9a-f]+=0x[0-9a-f]*[13579bdf]$ ]] || { show; fail "the page walk does not end in a present entry: $walk"; }
[[ -z $spawner ]] || kill -0 "$spawner" 2>/dev/null || fail "SIGUSR1 ended the spawner (pid $spawner)"

printf x >&"$key_fd"
for _ in $(seq 300); do
	kill -0 "$vm_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$vm_pid"
status=$?
vm_pid=
grep -aq 'PASS: every 4 KiB read is new entropy' "$work/console" || { show; fail "no guest PASS after the dumps"; }
expect_status 1 "$status" "rng guest after two ring dumps"
grep -q 'needs a reset\|giving up\|Sanitizer\|killed by' "$work/stderr" && { show; fail "trouble in isola's stderr"; }
echo "PASS: SIGUSR1 dumps isola-rng's ring (size $size, kicks $k1 -> $k2) and isola's vCPU state, the guest went on to PASS"
