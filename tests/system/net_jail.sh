#!/bin/bash
# --net inside --jail (docs/net.md "Using it"): the tap lives in a named
# network namespace made here; the jail joins it with --jail-netns, isola-net
# attaches to the tap there (the jail's /dev has net/tun) and then sandboxes
# itself.  net_ping must ping the namespace's address and answer its pings,
# jailed as an unprivileged user, with the default protections.  Also:
# --net with --jail and without --jail-netns is refused with advice, and a
# --jail-netns that is not a namespace is refused.
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }
[[ $(id -u) == 0 ]] || skip "--jail needs root"
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"
[[ -f build/guests/net_ping.elf ]] || fail "build/guests/net_ping.elf missing: run 'make guests'"
NS=isola-nj$$ TAP=isnj$$ HOST_IP=10.78.0.1 GUEST_IP=10.78.0.2
TMP=$(mktemp -d /tmp/isola-netjail.XXXXXX)
J=$TMP/jail VM=
cleanup() {
	[[ -n $VM ]] && kill "$VM" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[[ -n ${KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$J" && chmod 755 "$TMP" "$J"
cp build/guests/net_ping.elf "$J/"
: >"$J/console" && chown 4270:4270 "$J/console"
ip netns add "$NS" || fail "ip netns add"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$NS" tuntap add "$TAP" mode tap || fail "tuntap add"
ip -n "$NS" addr add "$HOST_IP/24" dev "$TAP"
ip -n "$NS" link set "$TAP" up
JU=4270:4270

# 1. refused without --jail-netns, saying what to do
"$ISOLA" --jail "$J" --jail-user $JU run --kernel /net_ping.elf --net tap=$TAP \
	</dev/null >"$TMP/out1" 2>"$TMP/err1"
st=$?
if [[ $st == 2 ]] && grep -q -- "--jail-netns" "$TMP/err1"; then
	ok "--net in a jail without --jail-netns: refused ($(head -1 "$TMP/err1" | cut -c1-90)...)"
else
	problem "--net in a jail without --jail-netns: status $st: $(cat "$TMP/err1")"
fi
# 2. a --jail-netns that is not a network namespace
"$ISOLA" --jail "$J" --jail-user $JU --jail-netns /etc/hostname run --kernel /net_ping.elf \
	--net tap=$TAP </dev/null >"$TMP/out2" 2>"$TMP/err2"
st=$?
if [[ $st == 2 ]] && grep -q "not a network namespace" "$TMP/err2"; then
	ok "--jail-netns /etc/hostname: refused"
else
	problem "--jail-netns /etc/hostname: status $st: $(cat "$TMP/err2")"
fi
# 3. the jailed guest on the namespace's tap
"$ISOLA" --jail "$J" --jail-user $JU --jail-netns "/var/run/netns/$NS" run \
	--kernel /net_ping.elf --memory 64M --net tap=$TAP --console file:/console \
	--cmdline "ip=$GUEST_IP peer=$HOST_IP count=3 answer=3 wait_s=60" --timeout 120 \
	</dev/null >"$TMP/out3" 2>"$TMP/err3" &
VM=$!
for _ in $(seq 600); do
	grep -aq READY "$J/console" 2>/dev/null && break
	kill -0 "$VM" 2>/dev/null || break
	sleep 0.2
done
if ip netns exec "$NS" busybox ping -c 3 -W 5 "$GUEST_IP" >"$TMP/ping" 2>&1; then
	ok "the namespace pings the jailed guest: $(grep -o '[0-9]* packets received' "$TMP/ping")"
else
	problem "ping from the namespace: $(tail -2 "$TMP/ping")"
fi
wait "$VM"
st=$?
VM=
if [[ $st == 1 ]] && grep -aq '^isola-guest: PASS' "$J/console"; then
	ok "the jailed net_ping guest pinged $HOST_IP and passed"
else
	problem "jailed net_ping: status $st; $(grep -a 'FAIL\|net_ping' "$J/console" | head -3); $(tail -3 "$TMP/err3")"
fi
if grep -Eq 'was killed by|exited with status|restarting it' "$TMP/err3"; then
	problem "a device server was in trouble: $(grep -E 'killed|exited|restarting' "$TMP/err3" | head -2)"
fi
((${#FAILURES[@]} == 0)) || fail "${#FAILURES[@]} check(s) failed"
echo "net_jail: all checks passed"
