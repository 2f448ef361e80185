#!/bin/bash
# Device server sandbox and vhost-user interop, for isola-blk and isola-rng:
#  1. --test-forbidden-syscall: after sandboxing the server calls ptrace(2);
#     it must die of SIGSYS (status 159) and say so on stderr.
#  2. Sandboxed servers serve QEMU's vhost-user front-ends (TCG, test
#     guests): blk_rw (twice on one server: re-accept after a disconnect,
#     new ring threads under seccomp), blk_ro against --readonly (image
#     unchanged), rng against isola-rng --rate; the servers must still be
#     alive afterwards (no syscall outside the allowlist).
# Runs the build/ servers, and build/asan/ ones too when built.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
TMP=$(mktemp -d /tmp/isola-sandbox.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
failed=0
bad() { echo "FAIL: $*"; failed=1; }

dirs=()
for d in ${SERVER_DIRS:-build build/asan}; do
	[[ -x $d/isola-blk && -x $d/isola-rng ]] && dirs+=("$d")
done
((${#dirs[@]})) || fail "no isola-blk/isola-rng built (make all)"
command -v qemu-system-x86_64 >/dev/null ||
	skip "no qemu-system-x86_64 to drive the sandboxed servers (apt-get install qemu-system-x86)"
[[ -f $GUESTS/blk_rw.elf ]] || fail "no $GUESTS/blk_rw.elf; run make guests"

forbidden() { # forbidden DIR SERVER ARGS...
	local dir=$1 server=$2
	shift 2
	rm -f "$TMP/s.sock"
	timeout 20 "$dir/$server" --socket "$TMP/s.sock" --test-forbidden-syscall "$@" \
		</dev/null >"$TMP/f.out" 2>"$TMP/f.err"
	local st=$? before=$failed
	failed=0
	sed 's/^/    | /' "$TMP/f.err"
	[[ $st == 159 ]] || bad "$dir/$server: exit status $st, want 159 (SIGSYS)"
	grep -q 'calling ptrace(2), which the seccomp filter forbids' "$TMP/f.err" ||
		bad "$dir/$server: no log line before the forbidden call"
	if [[ $(id -u) == 0 ]]; then
		grep -q "$server was killed by SIGSYS: it made a system call outside its seccomp allowlist" \
			"$TMP/f.err" || bad "$dir/$server: no 'killed by SIGSYS' line from the sandbox parent"
	fi
	grep -q 'NOT enforced' "$TMP/f.err" && bad "$dir/$server: the forbidden syscall returned"
	((failed)) || echo "ok   $dir/$server --test-forbidden-syscall: status $st (SIGSYS)"
	((failed |= before))
}

start_server() { # start_server LOG ARGS... ; sets SERVER_PID
	local log=$1
	shift
	"$@" </dev/null >"$log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	for _ in $(seq 50); do
		grep -q 'sandboxed:' "$log" && return 0
		sleep 0.1
	done
	bad "$*: did not start"; cat "$log"
	return 1
}

qemu_guest() { # qemu_guest SOCKET DEVICE GUEST APPEND CONSOLE
	timeout 60 qemu-system-x86_64 -M q35,accel=tcg -cpu max -m 256M -nographic -no-reboot \
		-display none -vga none -net none -device isa-debug-exit,iobase=0xf4,iosize=4 \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-chardev socket,id=c0,path="$1" -device "$2,chardev=c0" \
		-kernel "$GUESTS/$3.elf" -append "$4" </dev/null >"$5" 2>&1
	local st=$?
	if [[ $st != 1 ]] || grep -aq '^FAIL' "$5" || ! grep -aq '^isola-guest: PASS' "$5"; then
		bad "QEMU + $3 on $2: status $st (want 1 and an isola-guest: PASS line), console:"
		grep -a -E '^(FAIL|PASS)|rror' "$5" | head -20 | sed 's/^/    | /'
		return 1
	fi
	echo "ok   QEMU $2 + $3 ($(grep -ac '^PASS' "$5") PASS lines)"
}

alive() { # alive PID LOG WHAT
	if ! kill -0 "$1" 2>/dev/null; then
		bad "$3 died"; sed 's/^/    | /' "$2"; return 1
	fi
	grep -q 'SIGSYS\|Sanitizer' "$2" && { bad "$3: SIGSYS or sanitizer report"; sed 's/^/    | /' "$2"; }
	kill "$1"
	wait "$1" 2>/dev/null
}

for dir in "${dirs[@]}"; do
	truncate -s 1M "$TMP/small.img"
	forbidden "$dir" isola-blk --image "$TMP/small.img"
	forbidden "$dir" isola-rng
done


for dir in "${dirs[@]}"; do
	img=$TMP/disk.img
	head -c $((16384 * 512)) /dev/urandom >"$img"
	cp "$img" "$TMP/orig.img"
	start_server "$TMP/blk.log" "$dir/isola-blk" --socket "$TMP/blk.sock" --image "$img" \
		--id disk0 --queues 2 || continue
	qemu_guest "$TMP/blk.sock" vhost-user-blk-pci,disable-legacy=on,num-queues=2 blk_rw "sectors=16384 id=disk0" "$TMP/c1.txt"
	cmp -s "$img" "$TMP/orig.img" && bad "$dir/isola-blk: blk_rw left the image unchanged"
	qemu_guest "$TMP/blk.sock" vhost-user-blk-pci,disable-legacy=on blk_rw "sectors=16384 id=disk0 poll no_indirect" "$TMP/c2.txt"
	alive "$SERVER_PID" "$TMP/blk.log" "$dir/isola-blk (2 front-ends in a row)"

	cp "$TMP/orig.img" "$img"
	start_server "$TMP/ro.log" "$dir/isola-blk" --socket "$TMP/ro.sock" --image "$img" \
		--id ro0 --readonly || continue
	qemu_guest "$TMP/ro.sock" vhost-user-blk-pci,disable-legacy=on blk_ro "" "$TMP/c3.txt"
	cmp -s "$img" "$TMP/orig.img" || bad "$dir/isola-blk --readonly: the image changed"
	alive "$SERVER_PID" "$TMP/ro.log" "$dir/isola-blk --readonly"

	start_server "$TMP/rng.log" "$dir/isola-rng" --socket "$TMP/rng.sock" --rate 65536 || continue
	qemu_guest "$TMP/rng.sock" vhost-user-rng-pci rng "" "$TMP/c4.txt"
	alive "$SERVER_PID" "$TMP/rng.log" "$dir/isola-rng"
done
((failed)) && exit 1
echo "PASS: sandboxed servers die of SIGSYS on a forbidden syscall and serve QEMU front-ends"
