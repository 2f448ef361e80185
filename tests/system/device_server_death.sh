#!/bin/bash
# A device server that dies (restart=never) is reported clearly by the core
# and costs only its device: the VM keeps running.  The server is killed the
# way seccomp kills it (SIGSYS); servers_sandbox.sh proves seccomp really
# does that.  (With the default restart=always the server is restarted:
# tests/system/fault_injection.sh.)
source "$(dirname "$0")/../lib.sh"
[[ -x $ISOLA && -x $ISOLA_ROOT/build/isola-blk ]] || skip "isola or isola-blk not built (make)"
GUEST=$GUESTS/hostile/hlt_cli.elf
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
work=$(mktemp -d /tmp/isola-death.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
truncate -s 16M "$work/disk.img"

"$ISOLA" run --kernel "$GUEST" --memory 64M --disk "path=$work/disk.img,restart=never" --timeout 6 \
	--console none </dev/null 2>"$work/stderr" &
pid=$!
# The core's child is the sandbox's waiting parent; the server itself is pid
# 1 of its own pid namespace (which ignores signals from outside).  When
# seccomp kills the server, the parent dies of the same SIGSYS: do that.
for _ in $(seq 50); do
	server=$(pgrep -P "$pid" -f isola-blk) && break
	sleep 0.1
done
[[ -n ${server:-} ]] || fail "isola-blk did not start"
sleep 0.5
kill -SYS "$server"
wait "$pid"
status=$?
pid=
cat "$work/stderr"
expect_status 8 "$status" "VM with a dead device server (must keep running until --timeout)"
grep -q 'disk0: isola-blk (pid [0-9]*) was killed by SIGSYS (seccomp' "$work/stderr" ||
	fail "the core did not say how the server died"
grep -q 'disk0: .*the device needs a reset (the VM keeps running)' "$work/stderr" ||
	fail "the core did not say what happens to the device"
echo "PASS: server death reported, VM kept running"
