#!/bin/bash
# vsock's configuration, end to end (issue 14; docs/api.md "PUT /vsock"):
#  1. PUT /vsock over the API socket: accepted (204; the deprecated vsock_id
#     answered with "Deprecation: true"), a second PUT replaces the first
#     (GET /vm/config), and each refusal a 400 whose fault_message names the
#     field and what to do: CID reserved / out of range / not an integer,
#     uds_path missing, empty, too long for PATH_PORT, in a missing
#     directory, an existing non-socket file; no GET or PATCH /vsock;
#  2. `isola run --vsock` and --config-file with the same mistakes: status 2
#     and one line naming the flag or the JSON path;
#  3. a booted VM (tests/guest/counter, which has no vsock driver) with PUT
#     /vsock: isola-vsock makes the socket at InstanceStart (replacing a
#     stale one) and takes a host connection's CONNECT without a word back
#     (no OK, no junk: the guest has no vsock driver, and isola-vsock, as
#     Firecracker, serves host connections once the driver started the
#     device), PUT /vsock after start is a 400 with a sentence,
#     GET /vm/config still shows the vsock; `isola run --vsock` makes its
#     socket too.  A failure anywhere is collected and reported at the end.
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -x $ISOLA_ROOT/build/isola-vsock ]] || fail "no build/isola-vsock; run make first"
[[ -f $GUESTS/counter.elf ]] || fail "no $GUESTS/counter.elf; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v python3 >/dev/null || skip "no python3"
TMP=$(mktemp -d /tmp/isola-vsock-api.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

# api SOCK METHOD PATH [BODY]: sets CODE, BODY and HEADERS.
api() {
	local sock=$1 method=$2 path=$3 data=${4-}
	local args=(-s --max-time 10 --unix-socket "$sock" -X "$method" -o "$TMP/resp"
		-D "$TMP/headers" -w '%{http_code}' -H 'Accept: application/json')
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	: >"$TMP/resp"
	CODE=$(curl "${args[@]}" "http://localhost$path" 2>"$TMP/curl.err")
	BODY=$(cat "$TMP/resp")
	HEADERS=$(tr -d '\r' <"$TMP/headers")
}
# refused SOCK REGEX METHOD PATH BODY: 400 with a fault_message matching REGEX
refused() {
	local sock=$1 regex=$2
	shift 2
	api "$sock" "$@"
	if [[ $CODE == 400 ]] && grep -Eq -- "$regex" <<<"$BODY"; then
		ok "$1 $2 ${3:-}: 400 $(head -c 160 <<<"$BODY")"
	else
		problem "$1 $2 ${3-}: $CODE $BODY, want 400 matching /$regex/"
	fi
}
accepted() { # SOCK METHOD PATH BODY
	api "$@"
	if [[ $CODE == 204 ]]; then ok "$2 $3 ${4:-}: 204"; else problem "$2 $3 ${4-}: $CODE $BODY, want 204"; fi
}
# vm_config_vsock SOCK: GET /vm/config's "vsock" as compact JSON
vm_config_vsock() {
	api "$1" GET /vm/config
	python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])["vsock"], sort_keys=True))' "$BODY" 2>/dev/null
}
start_api() { # SOCK: isola --api-sock SOCK in the background
	"$ISOLA" --api-sock "$1" </dev/null >>"$TMP/isola.out" 2>>"$TMP/isola.err" &
	PIDS+=($!)
	for _ in $(seq 200); do [[ -S $1 ]] && return 0; sleep 0.025; done
	fail "isola --api-sock $1 made no socket within 5 s: $(tail -n 3 "$TMP/isola.err")"
}
# hybrid_connect PATH PORT SECONDS: what "CONNECT PORT\n" gets within
# SECONDS: "ok LINE", "closed", "reset", "timeout" (held, no byte back),
# "junk ..." or "refused ..."
hybrid_connect() {
	python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
got = b""
try:
    s.connect(sys.argv[1])
    s.sendall(b"CONNECT %d\n" % int(sys.argv[2]))
    while b"\n" not in got:
        d = s.recv(64)
        if not d:
            break
        got += d
    line = got.decode(errors="replace").strip()
    print(("ok " + line if line.startswith("OK ") else "junk " + repr(got)) if got else "closed")
except ConnectionResetError:
    print("reset" if not got else "junk " + repr(got))
except socket.timeout:
    print("timeout" + (" after " + repr(got) if got else ""))
except OSError as e:
    print(f"refused {e}")
EOF
}

echo "== PUT /vsock: accepted, replaced, refused"
S=$TMP/api.sock
start_api "$S"
touch "$TMP/file"
accepted "$S" PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$TMP/v.sock\"}"
grep -qi '^deprecation:' <<<"$HEADERS" && problem "PUT /vsock without vsock_id answered with a Deprecation header"
accepted "$S" PUT /vsock "{\"guest_cid\": 4, \"uds_path\": \"$TMP/w.sock\", \"vsock_id\": \"root\"}"
if grep -qi '^deprecation: true$' <<<"$HEADERS"; then
	ok "vsock_id: Deprecation: true"
else
	problem "PUT /vsock with vsock_id: no 'Deprecation: true' header (got: $(tr '\n' ' ' <<<"$HEADERS"))"
fi
grep -q 'vsock_id field is deprecated' "$TMP/isola.err" || problem "vsock_id: no deprecation warning in isola's log"
want="{\"guest_cid\": 4, \"uds_path\": \"$TMP/w.sock\"}"
got=$(vm_config_vsock "$S")
if [[ $got == "$want" ]]; then ok "GET /vm/config vsock: $got (the second PUT replaced the first)"; else problem "GET /vm/config vsock is '$got', want '$want'"; fi
refused "$S" 'vsock\.guest_cid: 2 is reserved.*3 or more' PUT /vsock "{\"guest_cid\": 2, \"uds_path\": \"$TMP/v.sock\"}"
refused "$S" 'vsock\.guest_cid: 4294967295 is out of range; a guest CID is 3 to 4294967294' PUT /vsock "{\"guest_cid\": 4294967295, \"uds_path\": \"$TMP/v.sock\"}"
refused "$S" 'vsock\.guest_cid: -1 is out of range' PUT /vsock "{\"guest_cid\": -1, \"uds_path\": \"$TMP/v.sock\"}"
refused "$S" 'vsock\.guest_cid: must be an integer' PUT /vsock "{\"guest_cid\": \"3\", \"uds_path\": \"$TMP/v.sock\"}"
refused "$S" 'vsock\.guest_cid: missing \(required\)' PUT /vsock "{\"uds_path\": \"$TMP/v.sock\"}"
refused "$S" 'vsock\.uds_path: missing \(required\)' PUT /vsock '{"guest_cid": 3}'
refused "$S" 'vsock\.uds_path: must not be empty' PUT /vsock '{"guest_cid": 3, "uds_path": ""}'
refused "$S" "vsock\\.uds_path: directory $TMP/nodir: No such file or directory; create it first" PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$TMP/nodir/v.sock\"}"
long=$TMP/$(printf 'a%.0s' $(seq $((97 - ${#TMP} - 1))))
refused "$S" 'vsock\.uds_path: 97 bytes is too long.*PATH_PORT.*at most 96' PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$long\"}"
refused "$S" "$TMP/file exists and is not a socket; isola-vsock creates the socket there: remove it" PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$TMP/file\"}"
refused "$S" 'vsock\.port: unknown field; known fields are guest_cid, uds_path, vsock_id' PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$TMP/v.sock\", \"port\": 1}"
refused "$S" 'Invalid request method and/or path: GET /vsock' GET /vsock
refused "$S" 'Invalid request method and/or path: PATCH /vsock' PATCH /vsock "{\"guest_cid\": 3, \"uds_path\": \"$TMP/v.sock\"}"
got=$(vm_config_vsock "$S")
if [[ $got == "$want" ]]; then ok "after the refusals GET /vm/config vsock is unchanged"; else problem "after the refusals GET /vm/config vsock is '$got', want '$want'"; fi
[[ -e $TMP/v.sock || -e $TMP/w.sock ]] && problem "a socket file exists before InstanceStart"
[[ -f $TMP/file ]] || problem "the refused non-socket file $TMP/file is gone"
kill -TERM "${PIDS[-1]}" 2>/dev/null
wait "${PIDS[-1]}" 2>/dev/null

echo "== isola run --vsock and --config-file: status 2, one line"
# bad_run NAME REGEX ARGS...: status 2 within 10 s, one line on stderr
bad_run() {
	local name=$1 regex=$2
	shift 2
	timeout 10 "$ISOLA" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	local st=$?
	if [[ $st == 2 && $(grep -c . "$TMP/err") == 1 ]] && grep -Eq -- "$regex" "$TMP/err"; then
		ok "$name: status 2: $(cat "$TMP/err")"
	else
		problem "$name: status $st, stderr '$(head -c 300 "$TMP/err")', want 2 and one line matching /$regex/"
	fi
}
K=$GUESTS/counter.elf
bad_run "--vsock cid=2" '--vsock cid: 2 is reserved' run -k "$K" --vsock "cid=2,uds=$TMP/v.sock"
bad_run "--vsock cid=2^32-1" '--vsock cid: 4294967295 is out of range' run -k "$K" --vsock "cid=4294967295,uds=$TMP/v.sock"
bad_run "--vsock cid=x" '--vsock cid=x is not a number' run -k "$K" --vsock "cid=x,uds=$TMP/v.sock"
bad_run "--vsock without uds" '--vsock needs cid=N .* and uds=PATH' run -k "$K" --vsock cid=3
bad_run "--vsock in a missing directory" "--vsock uds: directory $TMP/nodir: No such file or directory" run -k "$K" --vsock "cid=3,uds=$TMP/nodir/v"
bad_run "--vsock uds too long" '--vsock uds: 97 bytes is too long' run -k "$K" --vsock "cid=3,uds=$long"
bad_run "--vsock uds a file" 'exists and is not a socket' run -k "$K" --vsock "cid=3,uds=$TMP/file"
bad_run "--vsock twice" '--vsock is given twice' run -k "$K" --vsock "cid=3,uds=$TMP/a" --vsock "cid=4,uds=$TMP/b"
bad_run "--vsock unknown key" "unknown key 'port'" run -k "$K" --vsock "cid=3,uds=$TMP/a,port=1"
printf '{"boot-source": {"kernel_image_path": "%s"}, "vsock": {"guest_cid": 1, "uds_path": "%s/v.sock"}}' "$K" "$TMP" >"$TMP/bad.json"
bad_run "--config-file vsock.guest_cid 1" 'vsock\.guest_cid: 1 is reserved' --no-api --config-file "$TMP/bad.json"
printf '{"boot-source": {"kernel_image_path": "%s"}, "vsock": {"guest_cid": 3}}' "$K" >"$TMP/bad.json"
bad_run "--config-file without uds_path" 'vsock\.uds_path: missing \(required\)' --no-api --config-file "$TMP/bad.json"
if "$ISOLA" run --help | grep -q -- '--vsock cid=N,uds=PATH'; then ok "isola run --help has --vsock"; else problem "isola run --help does not describe --vsock"; fi

echo "== a booted VM: the socket, CONNECT without a guest listener, PUT after start"
{
	S=$TMP/api2.sock U=$TMP/vm.sock
	# a socket a crashed run left behind: isola-vsock replaces it
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$U"
	start_api "$S"
	accepted "$S" PUT /boot-source "{\"kernel_image_path\": \"$K\"}"
	accepted "$S" PUT /vsock "{\"guest_cid\": 52, \"uds_path\": \"$U\"}"
	accepted "$S" PUT /actions '{"action_type": "InstanceStart"}'
	for _ in $(seq 100); do grep -q '^count ' "$TMP/isola.out" && break; sleep 0.05; done
	if grep -q '^count ' "$TMP/isola.out"; then ok "the guest runs"; else problem "the guest printed no count: $(tail -n 3 "$TMP/isola.err")"; fi
	got=$(hybrid_connect "$U" 1024 3)
	# the counter guest has no vsock driver: no OK can come, and no junk may
	case $got in
	closed | reset | timeout) ok "CONNECT 1024 to $U: $got, no OK (the guest has no vsock driver)" ;;
	*) problem "CONNECT 1024 to $U: $got; want no answer or a clean close (the guest has no vsock driver)" ;;
	esac
	refused "$S" 'PUT /vsock is only valid before InstanceStart; the VM is Running' PUT /vsock "{\"guest_cid\": 53, \"uds_path\": \"$U\"}"
	got=$(vm_config_vsock "$S")
	if [[ $got == "{\"guest_cid\": 52, \"uds_path\": \"$U\"}" ]]; then ok "GET /vm/config after start: $got"; else problem "GET /vm/config vsock after start is '$got'"; fi
	api "$S" GET /
	grep -q '"Running"' <<<"$BODY" || problem "GET / after the vsock checks: $BODY (isola: $(tail -n 3 "$TMP/isola.err"))"
	kill -TERM "${PIDS[-1]}" 2>/dev/null
	wait "${PIDS[-1]}" 2>/dev/null

	U=$TMP/run.sock
	"$ISOLA" run -k "$K" --console none --vsock "cid=3,uds=$U" --timeout 20 </dev/null >/dev/null 2>"$TMP/run.err" &
	PIDS+=($!)
	for _ in $(seq 200); do [[ -S $U ]] && break; sleep 0.05; done
	if [[ -S $U ]]; then
		got=$(hybrid_connect "$U" 52 3)
		case $got in
		closed | reset | timeout) ok "isola run --vsock: $U takes CONNECT 52: $got" ;;
		*) problem "isola run --vsock: CONNECT 52 to $U: $got" ;;
		esac
	else
		problem "isola run --vsock cid=3,uds=$U made no socket within 10 s: $(tail -n 3 "$TMP/run.err")"
	fi
	kill -TERM "${PIDS[-1]}" 2>/dev/null
	wait "${PIDS[-1]}" 2>/dev/null
}

if ((${#FAILURES[@]})); then
	echo "FAIL: ${#FAILURES[@]} check(s) failed:"
	printf '  - %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "PASS: vsock configuration: API, CLI, config file, a booted VM's socket"
