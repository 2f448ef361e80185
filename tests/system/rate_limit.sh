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
#  - the API: PUT /entropy and /serial with limiters, InstanceStart, PATCH
#    /serial, then PATCH /entropy lifting a limit that would hold the guest
#    for ~7 min: isola-rng is replaced (another pid, no --rate) and the
#    guest finishes in seconds; GET /vm/config shows the new limiters.
# Only lower bounds for the limited runs (a slow host only makes them
# slower); the unlimited runs just have to beat the limited bound.
# Exit 0 pass, 1 fail.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
G=build/guests
ISOLA=${ISOLA:-build/isola}
TMP=$(mktemp -d /tmp/isola-ratelimit.$$.XXXXXX)
PID=
trap '[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
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

# ---- the API: PATCH /entropy and /serial on a running VM
if ! command -v curl >/dev/null; then
	echo "SKIP api: no curl (apt-get install curl)"
	exit $failed
fi
SOCK=$TMP/api.sock
api() { # METHOD PATH [BODY]: sets CODE and BODY
	local args=(-s --max-time 30 --unix-socket "$SOCK" -X "$1" -o "$TMP/resp" -w '%{http_code}')
	[[ -n ${3-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	CODE=$(curl "${args[@]}" "http://localhost$2" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
expect() { # WANT METHOD PATH [BODY]
	local want=$1
	shift
	api "$@"
	if [[ $CODE == "$want" ]]; then echo "ok $1 $2 -> $CODE"; else
		echo "FAIL $1 $2 -> $CODE, want $want: $BODY"; failed=1; fi
}
rng_server() { # "PID ARGS" of the newest isola-rng, or nothing
	pgrep -n -a -f "^$ISOLA_RNG --socket-fd" || true
}
ISOLA_RNG=$(dirname "$ISOLA")/isola-rng
"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/api.out" 2>"$TMP/api.err" &
PID=$!
for _ in $(seq 200); do
	api GET / && [[ $CODE == 200 ]] && break
	sleep 0.05
done
[[ $CODE == 200 ]] || fail "API not ready: $(head -c 300 "$TMP/api.err")"
expect 204 PUT /boot-source "{\"kernel_image_path\": \"$G/rng.elf\", \"boot_args\": \"reads=400\"}"
expect 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}'
# 4 KiB/s: the guest's 402 reads of 4 KiB would take ~7 min
expect 204 PUT /entropy '{"rate_limiter": {"bandwidth": {"size": 4096, "refill_time": 1000}}}'
expect 204 PUT /serial '{"rate_limiter": {"size": 1000000, "refill_time": 1000}}'
expect 204 PUT /actions '{"action_type": "InstanceStart"}'
before=$(rng_server)
[[ $before == *"--rate bytes=4096:1000"* ]] ||
	{ echo "FAIL api: isola-rng runs as '$before', want --rate bytes=4096:1000"; failed=1; }
expect 204 PATCH /serial '{"rate_limiter": {"size": 2000000, "refill_time": 1000}}'
expect 200 GET /vm/config
[[ $BODY == *'"serial":{"rate_limiter":{"size":2000000,"refill_time":1000}}'* ]] ||
	{ echo "FAIL api: GET /vm/config after PATCH /serial: $BODY"; failed=1; }
start=$(date +%s%N)
expect 204 PATCH /entropy '{"rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}'
after=$(rng_server)
if [[ -n $after && ${after%% *} != "${before%% *}" && $after != *--rate* ]]; then
	echo "ok PATCH /entropy replaced isola-rng (pid ${before%% *} -> ${after%% *}, no --rate)"
else
	echo "FAIL api: isola-rng before '$before', after '$after'"; failed=1
fi
# the guest finishes soon (at 4 KiB/s it had minutes to go) and passes
for _ in $(seq 300); do grep -q '^isola-guest: ' "$TMP/api.out" && break; sleep 0.05; done
secs=$((($(date +%s%N) - start) / 1000000))
if grep -q '^isola-guest: PASS' "$TMP/api.out" && ((secs < 15000)); then
	echo "ok the guest finished ${secs} ms after the PATCH lifted the limit"
else
	echo "FAIL api: ${secs} ms after PATCH /entropy: $(tail -3 "$TMP/api.out")"; failed=1
fi
exit $failed
