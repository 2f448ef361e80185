#!/bin/bash
# A guest flooding COM1 must not grow the VMM: isola's 8250 writes each byte
# through (blocking write = flow control), so the max RSS of `isola run`
# stays bounded whatever the guest writes.  Runs the serial_flood hostile
# guest (2 MiB by default, FLOOD_KIB=N to change) and asserts the VMM's
# max RSS (GNU time's %M, else sampled VmHWM) < 64 MiB and that the whole flood reached the console file.
set -u
source "$(dirname "$0")/../lib.sh"
KIB=${FLOOD_KIB:-2048}
LIMIT_KIB=$((64 * 1024))
GUEST=$GUESTS/hostile/serial_flood.elf
[[ -x $ISOLA ]] || skip "$ISOLA not built (make)"
[[ -f $GUEST ]] || skip "$GUEST not built (make guests)"
[[ -w /dev/kvm ]] || skip "/dev/kvm not accessible"
out=$(mktemp -d /tmp/isola-flood.XXXXXX)
trap 'rm -rf "$out"' EXIT

run=("$ISOLA" run --kernel "$GUEST" --memory 64M --cmdline "kib=$KIB" --timeout 300
	--console "file:$out/console.txt")
hwm=0
if [[ -x /usr/bin/time ]]; then
	# GNU time's %M is the exact peak RSS (KiB) from wait4's rusage.
	/usr/bin/time -o "$out/rss" -f %M "${run[@]}" </dev/null 2>"$out/stderr"
	status=$?
	hwm=$(tail -1 "$out/rss")
else
	"${run[@]}" </dev/null 2>"$out/stderr" &
	pid=$!
	# VmHWM is the peak so far; sample it until the process is gone.
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		[[ -n $v ]] && ((v > hwm)) && hwm=$v
		sleep 0.1
	done
	wait "$pid"
	status=$?
fi
cat "$out/stderr"
expect_status 1 "$status" "serial_flood (kib=$KIB)"
size=$(stat -c %s "$out/console.txt")
((size >= KIB * 1024)) || fail "console got $size bytes, want at least $((KIB * 1024))"
grep -q 'end-of-flood marker' "$out/console.txt" || fail "end-of-flood marker missing from the console"
[[ $hwm =~ ^[0-9]+$ ]] && ((hwm > 0)) || fail "could not measure the max RSS of isola ($hwm)"
echo "serial_flood: $KIB KiB through COM1, isola max RSS $hwm KiB, limit $LIMIT_KIB KiB"
((hwm < LIMIT_KIB)) || fail "isola max RSS $hwm KiB >= $LIMIT_KIB KiB while the guest flooded COM1"
echo "PASS: serial_flood_rss"
