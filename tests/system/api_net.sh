#!/bin/bash
# PUT and PATCH /network-interfaces on a real VMM (issue 12): an interface on
# a tap in a network namespace this test makes, isola run inside it with
# `ip netns exec`; InstanceStart starts its isola-net with the PUT's rate
# limiter; PATCH after start replaces that isola-net with one started with the
# new --rx-rate/--tx-rate (docs/api.md), the guest keeps running, GET
# /vm/config shows the new limiters, and the restart metrics count no death.
# Needs root (namespace, tap) and build/isola-net.
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUESTS/counter.elf ]] || fail "no $GUESTS/counter.elf; run make guests"
[[ -x $ISOLA_ROOT/build/isola-net ]] || skip "isola-net not built yet"
[[ $(id -u) == 0 ]] || skip "needs root for a network namespace and a tap"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v ip >/dev/null || skip "no ip (iproute2)"

NS=isola-apinet-$$
TAP=ian$$
TAP=${TAP:0:15}
TMP=$(mktemp -d /tmp/isola-api-net.XXXXXX)
PID=
cleanup() {
	[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

ip netns add "$NS" || fail "ip netns add $NS"
ip -n "$NS" tuntap add "$TAP" mode tap || fail "ip tuntap add $TAP"
ip -n "$NS" link set "$TAP" up || fail "ip link set $TAP up"

SOCK=$TMP/api.sock
# api METHOD PATH [BODY]: sets CODE and BODY.
api() {
	local args=(-s --max-time 10 --unix-socket "$SOCK" -X "$1" -o "$TMP/resp" -w '%{http_code}')
	[[ -n ${3-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	CODE=$(curl "${args[@]}" "http://localhost$2" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
# expect WANT METHOD PATH [BODY]
expect() {
	local want=$1
	shift
	api "$@"
	if [[ $CODE == "$want" ]]; then ok "$1 $2 -> $CODE"; else problem "$1 $2 -> $CODE, want $want: $BODY"; fi
}
# The isola-net serving our tap: "PID ARGS" of the newest, or nothing.
net_server() {
	local p args found=
	for p in /proc/[0-9]*; do
		args=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $args == *isola-net* && $args == *"--tap $TAP "* ]] && found="${p#/proc/} $args"
	done
	echo "$found"
}

ip netns exec "$NS" "$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 200); do
	api GET / && [[ $CODE == 200 ]] && break
	sleep 0.05
done
[[ $CODE == 200 ]] || fail "API not ready: $(head -c 300 "$TMP/err")"

expect 204 PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/counter.elf\"}"
expect 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 32}'
expect 204 PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$TAP\", \"guest_mac\": \"06:00:ac:10:00:02\", \"rx_rate_limiter\": {}, \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 1000000, \"refill_time\": 100}}}"
expect 400 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "rx_rate_limiter": {}}'
expect 204 PUT /actions '{"action_type": "InstanceStart"}'
[[ $CODE == 204 ]] || fail "InstanceStart: $BODY; $(tail -n 5 "$TMP/err")"

before=$(net_server)
[[ -n $before ]] || fail "no isola-net with --tap $TAP running: $(tail -n 5 "$TMP/err")"
[[ $before == *"--tx-rate bytes=1000000:100"* ]] && ok "isola-net started with the PUT's limiter" ||
	problem "isola-net's arguments lack --tx-rate bytes=1000000:100: $before"
[[ $before != *--rx-rate* ]] && ok "{} is no rx limiter" || problem "an rx limiter from {}: $before"

expect 400 PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$TAP\"}"
expect 400 PATCH /network-interfaces/eth7 '{"iface_id": "eth7"}'
expect 204 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 1000, "refill_time": 1000}}, "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}'
after=$(net_server)
if [[ -n $after && ${after%% *} != "${before%% *}" ]]; then
	ok "PATCH replaced isola-net (pid ${before%% *} -> ${after%% *})"
else
	problem "isola-net was not replaced: before '$before', after '$after'"
fi
[[ $after == *"--rx-rate ops=1000:1000"* && $after != *--tx-rate* ]] &&
	ok "the new isola-net has the new limiters" || problem "new isola-net's arguments: $after"
grep -q "net0: replacing isola-net" "$TMP/err" && ok "the core says why it replaced it" ||
	problem "no 'replacing isola-net' line: $(tail -n 5 "$TMP/err")"
api GET /vm/config
[[ $BODY == *'"rx_rate_limiter":{"ops":{"size":1000,"refill_time":1000}}'* && $BODY != *tx_rate_limiter* ]] &&
	ok "GET /vm/config shows the new limiters" || problem "GET /vm/config: $BODY"
# paused: no replacement (it would hand the new server running rings)
expect 204 PATCH /vm '{"state": "Paused"}'
expect 400 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 10}}}'
[[ $BODY == *"resume it"* ]] && ok "PATCH while paused says what to do" || problem "paused PATCH: $BODY"
[[ $(net_server) == "$after" ]] && ok "no replacement while paused" || problem "isola-net changed while paused"
expect 204 PATCH /vm '{"state": "Resumed"}'
api GET /
[[ $BODY == *'"state":"Running"'* ]] && ok "the VM runs on" || problem "GET /: $BODY"
kill -0 "$PID" 2>/dev/null && ok "isola is alive" || problem "isola ended: $(tail -n 5 "$TMP/err")"

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problems:"
	printf '  %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "api_net: all checks passed"
