#!/bin/bash
# Rate limiters end to end (Firecracker's token buckets; docs/api.md): the
# test guests under build/isola with a limited and an unlimited device.
#  - rng: `--rng=bytes=8192:1000` (8 KiB/s, a full bucket of 8 KiB at start)
#    and the rng guest reading 10 x 4 KiB: at least 32 KiB wait for refills,
#    so >= 4 s; the guest must still PASS (requests wait, none fails).
#  - blk: `--disk ...,ops=5:1000` (5 requests/s) and blk_rw (~24 requests):
#    >= 2.5 s, PASS, and the image is written as without a limit.
#  - the same guests unlimited finish well under those bounds.
#  - a limit set through --config-file (Firecracker's JSON) is the same.
# Only lower bounds for the limited runs (a slow host only makes them
# slower); the unlimited runs just have to beat the limited bound.
# Exit 0 pass, 1 fail.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
G=build/guests
ISOLA=${ISOLA:-build/isola}
TMP=$(mktemp -d /tmp/isola-ratelimit.$$.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failed=0
for g in rng blk_rw; do
	[[ -f $G/$g.elf ]] || fail "$G/$g.elf missing: run 'make guests'"
done
[[ -x $ISOLA ]] || fail "no $ISOLA: run make"

# run NAME ARGS...: runs isola, sets $secs (wall time) and checks the guest
# passed (debug-exit status 1, "isola-guest: PASS").
run() {
	local name=$1 start end st
	shift
	start=$(date +%s%N)
	timeout 120 "$ISOLA" run --console "file:$TMP/$name.txt" --timeout 100 --memory 64M "$@" \
		</dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
	st=$?
	end=$(date +%s%N)
	secs=$(((end - start) / 1000000))
	if [[ $st != 1 ]] || ! grep -q '^isola-guest: PASS' "$TMP/$name.txt"; then
		echo "FAIL $name: status $st"
		tail -5 "$TMP/$name.txt" "$TMP/$name.err"
		failed=1
		return 1
	fi
	echo "ok $name (${secs} ms)"
}
# at_least NAME MS / below NAME MS: $secs against a bound
at_least() { ((secs >= $2)) || { echo "FAIL $1: ${secs} ms, want >= $2 ms: the limit did not hold"; failed=1; }; }
below() { ((secs < $2)) || { echo "FAIL $1: ${secs} ms, want < $2 ms: the unlimited device was slowed"; failed=1; }; }

run rng-unlimited --kernel $G/rng.elf --rng --cmdline reads=8 && below rng-unlimited 4000
run rng-limited --kernel $G/rng.elf --rng=bytes=8192:1000 --cmdline reads=8 && at_least rng-limited 3900

head -c $((16384 * 512)) /dev/urandom >"$TMP/d.img"
run blk-unlimited --kernel $G/blk_rw.elf --disk "path=$TMP/d.img,id=disk0" \
	--cmdline "sectors=16384 id=disk0" && below blk-unlimited 2500
run blk-limited --kernel $G/blk_rw.elf --disk "path=$TMP/d.img,id=disk0,ops=5:1000" \
	--cmdline "sectors=16384 id=disk0" && at_least blk-limited 2500
grep -q 'rate ops=5:1000' "$TMP/blk-limited.err" ||
	{ echo "FAIL blk-limited: isola-blk did not say it runs with --rate"; failed=1; }

# Firecracker's JSON: the entropy device's RateLimiter from --config-file
cat >"$TMP/vm.json" <<EOF
{"boot-source": {"kernel_image_path": "$G/rng.elf", "boot_args": "reads=8"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
 "entropy": {"rate_limiter": {"bandwidth": {"size": 8192, "refill_time": 1000}}}}
EOF
start=$(date +%s%N)
timeout 120 "$ISOLA" --config-file "$TMP/vm.json" </dev/null >"$TMP/cf.out" 2>"$TMP/cf.err"
st=$?
secs=$((($(date +%s%N) - start) / 1000000))
if [[ $st == 1 ]] && grep -q 'isola-guest: PASS' "$TMP/cf.out"; then
	echo "ok rng-config-file (${secs} ms)"
	at_least rng-config-file 3900
else
	echo "FAIL rng-config-file: status $st"; tail -5 "$TMP/cf.out" "$TMP/cf.err"; failed=1
fi
exit $failed
