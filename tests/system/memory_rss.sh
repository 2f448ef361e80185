#!/bin/bash
# Guest memory is never pre-faulted (design.md): booting hello with 1 GiB
# (and with 4 GiB and 8 GiB) must leave the VMM's max RSS far below the guest
# size (< 32 MiB), and RAM above 4 GiB must reach the guest: its memory map
# must show the high RAM range [4 GiB, 4 GiB + size - 3 GiB).
set -u
source "$(dirname "$0")/../lib.sh"

LIMIT_KIB=$((32 * 1024))
HELLO=$GUESTS/hello.elf
[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $HELLO ]] || fail "no $HELLO; run make guests"
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
TMP=$(mktemp -d /tmp/isola-rss.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# max_rss_run OUTFILE ARGS...: run isola; its max RSS in KiB is left in
# $RUN_RSS and its exit status in $RUN_STATUS.  GNU time forks from a tiny process,
# so its own footprint does not inflate the child's ru_maxrss (a fork from
# python would: the forked copy's anonymous pages count until exec).
max_rss_run() {
	local out=$1
	shift
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f %M -o "$TMP/rss" "$ISOLA" run "$@" </dev/null >"$out" 2>"$out.err"
		RUN_STATUS=$?
		RUN_RSS=$(tail -n 1 "$TMP/rss")
	else
		# Fallback: sample VmHWM until the process exits.
		"$ISOLA" run "$@" </dev/null >"$out" 2>"$out.err" &
		local pid=$! hwm=0 v
		while v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) && [[ -n $v ]]; do
			((v > hwm)) && hwm=$v
			sleep 0.005
		done
		wait "$pid"
		RUN_STATUS=$?
		RUN_RSS=$hwm
	fi
}

# The largest size must fit the host's RAM on paper (it is never touched),
# else the whole test says so rather than quietly checking fewer sizes.
host_mib=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
((host_mib >= 8192)) || skip "the host has $host_mib MiB, less than the 8 GiB guest this test checks"
for mem in 1G 4G 8G; do
	gib=${mem%G}
	console=$TMP/console-$mem
	max_rss_run "$TMP/out" --kernel "$HELLO" --memory "$mem" --console "file:$console" --timeout 60
	rss=$RUN_RSS
	cat "$TMP/out.err"
	echo "--memory $mem: max RSS $rss KiB, exit status $RUN_STATUS"
	expect_status 1 "$RUN_STATUS" "hello with --memory $mem"
	[[ $rss =~ ^[0-9]+$ ]] || fail "--memory $mem: could not measure the max RSS ('$rss')"
	((rss < LIMIT_KIB)) ||
		fail "--memory $mem: max RSS $rss KiB >= $LIMIT_KIB KiB: is guest memory pre-faulted?"
	grep -q '^PASS: hello' "$console" || { cat "$console"; fail "--memory $mem: hello did not PASS"; }
	if ((gib > 3)); then
		# Below 4 GiB the guest gets at most 3 GiB (the PCI hole follows);
		# the rest is mapped from 4 GiB up.
		high_end=$(printf '%016x' $(((4 + gib - 3) * 1024 * 1024 * 1024 - 1)))
		want="0000000100000000-$high_end RAM"
		grep -q "$want" "$console" || {
			grep -A8 '^memory map' "$console"
			fail "--memory $mem: no '$want' in hello's memory map"
		}
		echo "--memory $mem: guest sees $want"
	fi
done
echo "PASS: guest memory is faulted lazily; RAM above 4 GiB works"
