#!/bin/bash
# The control API's happy path, driven with `curl --unix-socket` the way an
# orchestrator does (docs/api.md, issue 5):
#  1. isola --api-sock: GET / answers "Not started" before any configuration;
#  2. PUT /boot-source (tests/guest/counter), /machine-config, /drives/rootfs
#     (an image file), /entropy, /logger, /metrics -> 204; InstanceStart -> 204;
#     GET / "Running"; the guest's `count N` lines reach isola's stdout;
#  3. PATCH /vm Paused -> 204, GET / "Paused", and the count stops;
#     PATCH /vm Resumed -> 204, GET / "Running", and the count continues;
#  4. GET /vm/config gives back what was PUT;
#  5. FlushMetrics writes a JSON line with vCPU exit counts; the logger wrote;
#  6. SIGTERM -> the process ends cleanly and the socket file is gone;
#  7. a second VM (tests/guest/ctrl_alt_del): SendCtrlAltDel -> the guest sees
#     Ctrl, Alt, Del on the i8042 (one IRQ 1 edge per byte) and prints PASS;
#     when it exits through the debug-exit port, isola ends with status 1;
#     SIGTERM before InstanceStart and SIGINT while Paused stop cleanly too;
#  8. isola --config-file boots hello to its debug-exit PASS (status 1);
#  9. --config-file with --api-sock and --id (Firecracker's command line):
#     GET / says Running with that id, GET /vm/config echoes the file's
#     boot_args (no root= added), InstanceStart is refused; --no-api
#     --config-file with --log-path boots hello and writes the log.
# All failures are collected, then reported together.
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
for g in counter ctrl_alt_del hello; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
"$ISOLA" --help 2>&1 | grep -q -- --api-sock || fail "$ISOLA --help does not offer --api-sock (core/main.c): the control API is missing"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v python3 >/dev/null || skip "no python3"
TMP=$(mktemp -d /tmp/isola-api-life.XXXXXX)
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

# api SOCK METHOD PATH [BODY]: sets CODE and BODY (the response).
api() {
	local sock=$1 method=$2 path=$3 data=${4-}
	local args=(-s --max-time 10 --unix-socket "$sock" -X "$method" -o "$TMP/resp"
		-w '%{http_code}' -H 'Accept: application/json')
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	CODE=$(curl "${args[@]}" "http://localhost$path" 2>"$TMP/curl.err")
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
# expect SOCK WANT_CODE METHOD PATH [BODY]
expect() {
	local sock=$1 want=$2
	shift 2
	api "$sock" "$@"
	if [[ $CODE == "$want" ]]; then
		ok "$1 $2 -> $CODE"
	else
		problem "$1 $2 ${3:+$3 }-> $CODE, want $want: $BODY $(head -c 200 "$TMP/curl.err")"
	fi
}
# json_get EXPR: evaluate a Python expression on the last BODY as `j`.
json_get() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($1)" "$BODY" 2>/dev/null; }
# start_api NAME: isola --api-sock with stdout (the console) to $TMP/NAME.out.
start_api() {
	local name=$1
	SOCK=$TMP/$name.sock
	"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PID=$!
	PIDS+=("$PID")
	for _ in $(seq 200); do
		api "$SOCK" GET / && [[ $CODE == 200 ]] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	problem "$name: API not ready within 10 s: $(head -c 300 "$TMP/$name.err")"
	return 1
}
# wait_exit PID SECONDS: sets STATUS (or "timeout").
wait_exit() {
	local pid=$1
	for _ in $(seq $(($2 * 20))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			STATUS=$?
			return 0
		fi
		sleep 0.05
	done
	STATUS=timeout
}
last_count() { grep -Eo '^count [0-9]+' "$1" | tail -n 1 | cut -d' ' -f2; }
# wait_count FILE MIN SECONDS: until the last count is >= MIN.
wait_count() {
	for _ in $(seq $(($3 * 20))); do
		local c
		c=$(last_count "$1")
		[[ -n $c ]] && ((c >= $2)) && return 0
		sleep 0.05
	done
	return 1
}

echo "== lifecycle: counter guest"
IMG=$TMP/rootfs.img
truncate -s 1M "$IMG"
LOG=$TMP/isola.log METRICS=$TMP/metrics.json
: >"$LOG"
: >"$METRICS"
if start_api life; then
	OUT=$TMP/life.out
	api "$SOCK" GET /
	[[ $(json_get 'j["state"]') == "Not started" ]] || problem "GET / before start: $BODY, want state \"Not started\""
	expect "$SOCK" 200 GET /version
	expect "$SOCK" 204 PUT /logger "{\"log_path\": \"$LOG\", \"level\": \"Info\", \"show_level\": true}"
	expect "$SOCK" 204 PUT /metrics "{\"metrics_path\": \"$METRICS\"}"
	expect "$SOCK" 204 PUT /boot-source \
		"{\"kernel_image_path\": \"$GUESTS/counter.elf\", \"boot_args\": \"period_ms=100\"}"
	expect "$SOCK" 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 32}'
	expect "$SOCK" 204 PUT /drives/rootfs \
		"{\"drive_id\": \"rootfs\", \"path_on_host\": \"$IMG\", \"is_root_device\": true, \"is_read_only\": false}"
	expect "$SOCK" 204 PUT /entropy '{}'
	expect "$SOCK" 204 PUT /actions '{"action_type": "InstanceStart"}'
	api "$SOCK" GET /
	[[ $(json_get 'j["state"]') == Running ]] || problem "GET / after InstanceStart: $BODY, want state Running"

	if wait_count "$OUT" 3 20; then
		ok "counting: $(last_count "$OUT")"
	else
		problem "no 'count 3' on stdout within 20 s: $(head -c 300 "$OUT") / $(head -c 300 "$TMP/life.err")"
	fi

	# Pause: the count stops (one line may be in flight when PATCH returns).
	expect "$SOCK" 204 PATCH /vm '{"state": "Paused"}'
	api "$SOCK" GET /
	[[ $(json_get 'j["state"]') == Paused ]] || problem "GET / after Paused: $BODY, want state Paused"
	sleep 0.3
	c1=$(last_count "$OUT")
	sleep 1.5
	c2=$(last_count "$OUT")
	if [[ $c1 == "$c2" ]]; then ok "paused: count stays at $c2 for 1.5 s"; else problem "paused, but the count went on: $c1 -> $c2"; fi

	expect "$SOCK" 204 PATCH /vm '{"state": "Resumed"}'
	api "$SOCK" GET /
	[[ $(json_get 'j["state"]') == Running ]] || problem "GET / after Resumed: $BODY, want state Running"
	if wait_count "$OUT" $((${c2:-0} + 3)) 10; then
		ok "resumed: count $c2 -> $(last_count "$OUT")"
	else
		problem "resumed, but the count did not go on: $c2 -> $(last_count "$OUT")"
	fi

	# Round trip: what was PUT comes back in Firecracker's schema.
	expect "$SOCK" 200 GET /vm/config
	check=$(python3 - "$BODY" "$GUESTS/counter.elf" "$IMG" <<'EOF'
import json, sys
j = json.loads(sys.argv[1]); kernel, img = sys.argv[2], sys.argv[3]
bad = []
def want(what, got, exp):
    if got != exp: bad.append(f"{what}: {got!r}, want {exp!r}")
bs = j.get("boot-source", {})
want("boot-source.kernel_image_path", bs.get("kernel_image_path"), kernel)
want("boot-source.boot_args has period_ms=100", "period_ms=100" in (bs.get("boot_args") or ""), True)
mc = j.get("machine-config", {})
want("machine-config.vcpu_count", mc.get("vcpu_count"), 1)
want("machine-config.mem_size_mib", mc.get("mem_size_mib"), 32)
d = (j.get("drives") or [{}])[0]
want("len(drives)", len(j.get("drives") or []), 1)
want("drives[0].drive_id", d.get("drive_id"), "rootfs")
want("drives[0].path_on_host", d.get("path_on_host"), img)
want("drives[0].is_root_device", d.get("is_root_device"), True)
want("drives[0].is_read_only", d.get("is_read_only"), False)
want("entropy present", isinstance(j.get("entropy"), dict), True)
print("; ".join(bad))
EOF
)
	if [[ -z $check ]]; then ok "GET /vm/config round trip"; else problem "GET /vm/config: $check (body: $BODY)"; fi

	# A device server killed: restarted, and counted in the metrics.
	server=$(pgrep -P "$PID" -x isola-blk | head -1)
	if [[ -n $server ]]; then
		kill -KILL "$server"
		for _ in $(seq 100); do
			grep -q 'disk0: isola-blk is back after' "$LOG" && break
			sleep 0.1
		done
		grep -q 'disk0: isola-blk is back after' "$LOG" && ok "killed isola-blk: restarted" ||
			problem "killed isola-blk (pid $server): no 'is back' in the log"
	else
		problem "no isola-blk under isola (pid $PID)"
	fi

	# Metrics: one JSON line per flush, with per-vCPU exit counts and the
	# device servers' restarts.
	before=$(wc -l <"$METRICS")
	expect "$SOCK" 204 PUT /actions '{"action_type": "FlushMetrics"}'
	after=$(wc -l <"$METRICS")
	check=$(python3 - "$METRICS" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
if not lines:
    print("metrics file is empty"); sys.exit()
try:
    j = json.loads(lines[-1])
except ValueError as e:
    print(f"last line is not JSON: {e}: {lines[-1][:200]!r}"); sys.exit()
exits = {}
def walk(o, path):
    if isinstance(o, dict):
        for k, v in o.items(): walk(v, f"{path}.{k}" if path else k)
    elif isinstance(o, (int, float)) and "exit" in path.lower():
        exits[path] = o
walk(j, "")
if not exits:
    print(f"no vCPU exit counts (keys: {sorted(j)[:20]})")
elif not any(v > 0 for v in exits.values()):
    print(f"every exit count is 0: {exits}")
disk = j.get("device_servers", {}).get("disk0", {})
if disk.get("restarts") != 1 or disk.get("needs_reset") is not False or not disk.get("recovery_us_max"):
    print(f"device_servers.disk0: {disk}, want restarts 1, needs_reset false, recovery_us_max > 0")
EOF
)
	((after > before)) || problem "FlushMetrics: no new line in $METRICS ($before -> $after lines)"
	if [[ -z $check ]]; then ok "FlushMetrics: JSON line with exit counts and disk0's restart"; else problem "metrics: $check"; fi
	[[ -s $LOG ]] && ok "logger wrote $(wc -l <"$LOG") lines" || problem "PUT /logger: $LOG is still empty after boot, pause and resume"

	# SIGTERM: a clean stop, the socket removed.
	kill -TERM "$PID"
	wait_exit "$PID" 10
	echo "  SIGTERM: status $STATUS"
	[[ $STATUS == timeout ]] && problem "SIGTERM: still running after 10 s"
	[[ $STATUS == 10 ]] || problem "SIGTERM: exit status $STATUS, want 10 (stopped by a signal, as 'isola run')"
	[[ -e $SOCK ]] && problem "SIGTERM: socket $SOCK left behind"
	grep -qiE 'sanitizer|segmentation|assert' "$TMP/life.err" && problem "stderr: $(head -c 300 "$TMP/life.err")"
fi

echo "== SendCtrlAltDel: ctrl_alt_del guest"
if start_api cad; then
	OUT=$TMP/cad.out
	expect "$SOCK" 204 PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/ctrl_alt_del.elf\", \"boot_args\": \"wait_s=30\"}"
	expect "$SOCK" 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 32}'
	expect "$SOCK" 204 PUT /actions '{"action_type": "InstanceStart"}'
	for _ in $(seq 400); do grep -q READY "$OUT" && break; sleep 0.05; done
	grep -q READY "$OUT" || problem "ctrl_alt_del guest never printed READY: $(head -c 300 "$OUT")"
	expect "$SOCK" 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
	for _ in $(seq 200); do grep -qE '^(PASS|FAIL)' "$OUT" && break; sleep 0.05; done
	if grep -q 'PASS: ctrl-alt-del' "$OUT"; then
		ok "guest saw Ctrl-Alt-Del: $(grep scancodes "$OUT")"
	else
		problem "no 'PASS: ctrl-alt-del' within 10 s: $(tail -c 300 "$OUT")"
	fi
	# The guest exits through the debug-exit port: the VMM ends with its status.
	wait_exit "$PID" 10
	[[ $STATUS == 1 ]] || problem "after the guest's PASS exit: isola status $STATUS, want 1"
	[[ -e $SOCK ]] && problem "after the guest exited: socket $SOCK left behind"
fi

echo "== SIGTERM before InstanceStart, and SIGINT while Paused"
if start_api idle; then
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[[ $STATUS == 10 ]] || problem "SIGTERM before InstanceStart: status $STATUS, want 10"
	[[ -e $SOCK ]] && problem "SIGTERM before InstanceStart: socket $SOCK left behind"
	[[ $STATUS == 10 && ! -e $SOCK ]] && ok "SIGTERM before InstanceStart: status 10, socket removed"
fi
if start_api paused; then
	expect "$SOCK" 204 PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/counter.elf\"}"
	expect "$SOCK" 204 PUT /actions '{"action_type": "InstanceStart"}'
	wait_count "$TMP/paused.out" 1 20 || problem "paused VM: no count within 20 s"
	expect "$SOCK" 204 PATCH /vm '{"state": "Paused"}'
	kill -INT "$PID"
	wait_exit "$PID" 10
	[[ $STATUS == 10 ]] || problem "SIGINT while Paused: status $STATUS, want 10"
	[[ -e $SOCK ]] && problem "SIGINT while Paused: socket $SOCK left behind"
	[[ $STATUS == 10 && ! -e $SOCK ]] && ok "SIGINT while Paused: status 10, socket removed"
fi

echo "== --config-file: hello"
cat >"$TMP/hello.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$GUESTS/hello.elf", "boot_args": "console=ttyS0"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}
}
EOF
timeout 60 "$ISOLA" --config-file "$TMP/hello.json" </dev/null >"$TMP/hello.out" 2>"$TMP/hello.err"
st=$?
echo "  --config-file hello: status $st"
[[ $st == 1 ]] || problem "--config-file hello: status $st, want 1: $(tail -c 300 "$TMP/hello.err")"
grep -q 'isola hello guest' "$TMP/hello.out" || problem "--config-file hello: no banner on stdout"
grep -q '^FAIL' "$TMP/hello.out" && problem "--config-file hello: guest printed $(grep -m1 '^FAIL' "$TMP/hello.out")"

echo "== --config-file with --api-sock --id; --no-api"
cat >"$TMP/counter.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$GUESTS/counter.elf", "boot_args": "period_ms=100"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
  "drives": [{"drive_id": "rootfs", "path_on_host": "$IMG", "is_root_device": true, "is_read_only": false}]
}
EOF
SOCK=$TMP/cf.sock
"$ISOLA" --api-sock "$SOCK" --id cf-vm-1 --config-file "$TMP/counter.json" </dev/null >"$TMP/cf.out" 2>"$TMP/cf.err" &
PID=$!
PIDS+=("$PID")
state=""
for _ in $(seq 200); do
	api "$SOCK" GET / && [[ $CODE == 200 ]] && state=$(json_get 'j["state"]') && [[ $state == Running ]] && break
	sleep 0.05
done
api "$SOCK" GET /
if [[ $state == Running && $(json_get 'j["id"]') == cf-vm-1 ]]; then
	ok "--config-file --api-sock --id: GET / $BODY"
else
	problem "--config-file --api-sock --id: GET / $BODY, want Running and id cf-vm-1: $(tail -c 300 "$TMP/cf.err")"
fi
api "$SOCK" GET /vm/config
args=$(json_get 'j["boot-source"]["boot_args"]')
if [[ $args == period_ms=100 ]]; then
	ok "GET /vm/config echoes the file's boot_args"
else
	problem "GET /vm/config boot_args '$args', want the file's 'period_ms=100': $BODY"
fi
expect "$SOCK" 400 PUT /actions '{"action_type": "InstanceStart"}'
wait_count "$TMP/cf.out" 2 20 || problem "--config-file --api-sock: the counter guest did not count"
kill -TERM "$PID"
wait_exit "$PID" 10
[[ -e $SOCK ]] && problem "--config-file --api-sock: socket left behind"

timeout 60 "$ISOLA" --no-api --config-file "$TMP/hello.json" --log-path "$TMP/noapi.log" --level Info \
	</dev/null >"$TMP/noapi.out" 2>"$TMP/noapi.err"
st=$?
if [[ $st == 1 ]] && grep -q 'isola hello guest' "$TMP/noapi.out"; then
	ok "--no-api --config-file: hello passed"
else
	problem "--no-api --config-file hello: status $st, want 1: $(tail -c 300 "$TMP/noapi.err")"
fi
if [[ -s $TMP/noapi.log ]]; then
	ok "--no-api --log-path: the log has $(wc -l <"$TMP/noapi.log") lines"
else
	problem "--no-api --log-path: $TMP/noapi.log is empty"
fi

echo "== --api-sock with --config-file: GET /vm/config echoes the file"
# A root drive makes isola append root=/dev/vda to the command line it
# boots with; GET /vm/config must still show boot_args as the file has them
# (Firecracker's FullVmConfiguration), with all 13 of its top-level keys.
cat >"$TMP/echo.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$GUESTS/counter.elf", "boot_args": "console=ttyS0 quiet"},
  "drives": [{"drive_id": "rootfs", "path_on_host": "$IMG", "is_root_device": true, "is_read_only": true}],
  "pmem": [], "balloon": null, "vsock": null
}
EOF
SOCK=$TMP/echo.sock
"$ISOLA" --api-sock "$SOCK" --config-file "$TMP/echo.json" </dev/null >"$TMP/echo.out" 2>"$TMP/echo.err" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 200); do
	api "$SOCK" GET /vm/config && [[ $CODE == 200 ]] && break
	sleep 0.05
done
if [[ $CODE != 200 ]]; then
	problem "--api-sock + --config-file: GET /vm/config -> $CODE: $(head -c 300 "$TMP/echo.err")"
else
	args=$(json_get 'j["boot-source"].get("boot_args")')
	nkeys=$(json_get 'len([k for k in ("balloon","drives","boot-source","cpu-config","logger","machine-config","metrics","memory-hotplug","mmds-config","network-interfaces","pmem","vsock","entropy") if k in j])')
	mib=$(json_get 'j["machine-config"]["mem_size_mib"]')
	[[ $args == "console=ttyS0 quiet" ]] && ok "boot_args echoed as in the file" ||
		problem "GET /vm/config boot_args '$args', want 'console=ttyS0 quiet'"
	[[ $nkeys == 13 ]] && ok "all 13 FullVmConfiguration keys" || problem "GET /vm/config has $nkeys of the 13 keys: $BODY"
	[[ $mib == 128 ]] && ok "default mem_size_mib 128" || problem "config file without machine-config: mem_size_mib $mib, want 128"
fi
kill -TERM "$PID" 2>/dev/null
wait_exit "$PID" 10

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problems:"
	printf '  %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "api_lifecycle: all checks passed"
