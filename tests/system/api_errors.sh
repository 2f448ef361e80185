#!/bin/bash
# Every error path of the control API (issue 5, acceptance 3 and 4):
#  - tests/system/api_client.py (Python stdlib) throws malformed JSON, wrong
#    types, unknown and missing fields, oversized bodies, bad Content-Length,
#    header floods, stalled clients, 64 concurrent clients, wrong-state
#    requests, foreign paths and unimplemented endpoints at `isola --api-sock`,
#    and docs/api.md's limits exactly (5 s drop, 128 connections, 16 KiB head);
#    each must get the right 4xx with a fault_message while GET / keeps
#    answering and a booted counter guest keeps counting;
#  - `--api-sock` on a path that exists: status 2, one clear line, the file
#    untouched;
#  - Firecracker's command line: bad --id, --no-api alone, flags for what
#    isola lacks, unknown flags: status 2 and one line; a body limit set by
#    --http-api-max-payload-size holds both ways;
#  - `--config-file` errors: status 2 and a message naming the JSON path
#    of the bad field (`drives[1].path_on_host: ...`).
# API_DROP_S (default 40) bounds how long a stalled client may stay connected.
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUESTS/counter.elf ]] || fail "no $GUESTS/counter.elf; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
"$ISOLA" --help 2>&1 | grep -q -- --api-sock || fail "$ISOLA --help does not offer --api-sock (core/main.c): the control API is missing"
command -v python3 >/dev/null || skip "no python3"
TMP=$(mktemp -d /tmp/isola-api-err.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }

echo "== api_client.py"
python3 "$(dirname "$0")/api_client.py" --isola "$ISOLA" --guests "$GUESTS" --tmp "$TMP" ||
	problem "api_client.py reported failures (above)"

# bad_cli NAME REGEX ARGS...: status 2 within 10 s, stdout empty, stderr
# one line matching the extended regex.
bad_cli() {
	local name=$1 regex=$2
	shift 2
	timeout 10 "$ISOLA" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	local st=$?
	echo "  $name: status $st: $(head -n 2 "$TMP/err")"
	[[ $st == 2 ]] || problem "$name: exit status $st, want 2"
	[[ -s $TMP/out ]] && problem "$name: wrote to stdout: $(head -c 200 "$TMP/out")"
	[[ $(grep -c . "$TMP/err") == 1 ]] || problem "$name: $(grep -c . "$TMP/err") lines on stderr, want 1"
	grep -Eq -- "$regex" "$TMP/err" || problem "$name: stderr does not match /$regex/"
}

echo "== --api-sock on a path that exists"
printf 'precious data\n' >"$TMP/existing"
sum=$(sha256sum <"$TMP/existing")
bad_cli "--api-sock FILE" "existing.*(exists|in use|remove)|(exists|in use).*existing" --api-sock "$TMP/existing"
[[ -f $TMP/existing && $(sha256sum <"$TMP/existing") == "$sum" ]] || problem "--api-sock FILE: the file was changed or removed"
mkdir "$TMP/dir"
bad_cli "--api-sock DIR" "dir" --api-sock "$TMP/dir"
[[ -d $TMP/dir ]] || problem "--api-sock DIR: the directory was removed"
# A live socket of another VMM must not be stolen.
"$ISOLA" --api-sock "$TMP/live.sock" </dev/null >/dev/null 2>&1 &
live=$!
for _ in $(seq 100); do [[ -S $TMP/live.sock ]] && break; sleep 0.05; done
if [[ -S $TMP/live.sock ]]; then
	bad_cli "--api-sock of a running isola" "live.sock" --api-sock "$TMP/live.sock"
	curl -s --max-time 5 --unix-socket "$TMP/live.sock" http://localhost/ | grep -q '"state"' ||
		problem "the first isola no longer answers on its socket after a second tried to bind it"
else
	problem "isola --api-sock $TMP/live.sock made no socket within 5 s"
fi
kill -TERM "$live" 2>/dev/null
wait "$live" 2>/dev/null
bad_cli "--api-sock in a missing directory" "nodir" --api-sock "$TMP/nodir/x.sock"
bad_cli "--api-sock path too long" "long|107|108|bytes" --api-sock "$TMP/$(printf 'a%.0s' $(seq 200)).sock"

echo "== Firecracker's command line: bad flags, --http-api-max-payload-size"
bad_cli "--id with '_'" "--id a_b: an instance id is 1 to 64" --api-sock "$TMP/id.sock" --id a_b
bad_cli "--no-api without --config-file" "--no-api needs --config-file" --no-api
bad_cli "--seccomp-filter" "does not load Firecracker's compiled BPF" --api-sock "$TMP/f.sock" --seccomp-filter "$TMP/f.bpf"
bad_cli "--metadata" "does not implement MMDS" --api-sock "$TMP/m.sock" --metadata "$TMP/m.json"
bad_cli "unknown flag" "unknown option '--frobnicate'" --api-sock "$TMP/u.sock" --frobnicate
bad_cli "payload size 0" "http-api-max-payload-size 0: give a number" --api-sock "$TMP/p.sock" --http-api-max-payload-size 0
"$ISOLA" --api-sock "$TMP/pl.sock" --http-api-max-payload-size 100000 </dev/null >/dev/null 2>"$TMP/pl.err" &
pl=$!
for _ in $(seq 100); do [[ -S $TMP/pl.sock ]] && break; sleep 0.05; done
# 60,000 bytes: over Firecracker's default limit, under this one
pad=$(head -c 60000 /dev/zero | tr '\0' ' ')
code=$(curl -s --max-time 5 --unix-socket "$TMP/pl.sock" -o "$TMP/pl.out" -w '%{http_code}' -X PATCH \
	-H 'Content-Type: application/json' --data-binary "{\"vcpu_count\": 2$pad}" http://localhost/machine-config)
[[ $code == 204 ]] && echo "  a 60,000-byte body under a 100,000 limit: 204" ||
	problem "--http-api-max-payload-size 100000: a 60,000-byte PATCH got $code $(cat "$TMP/pl.out")"
pad=$(head -c 100001 /dev/zero | tr '\0' ' ')
code=$(curl -s --max-time 5 --unix-socket "$TMP/pl.sock" -o "$TMP/pl.out" -w '%{http_code}' -X PATCH \
	-H 'Content-Type: application/json' --data-binary "{\"vcpu_count\": 2$pad}" http://localhost/machine-config)
if [[ $code == 400 ]] && grep -q "limit of 100000" "$TMP/pl.out"; then
	echo "  a body over a 100,000 limit: 400 $(cat "$TMP/pl.out")"
else
	problem "--http-api-max-payload-size 100000: a 100,018-byte PATCH got $code $(cat "$TMP/pl.out")"
fi
kill -TERM "$pl" 2>/dev/null
wait "$pl" 2>/dev/null

echo "== --config-file errors name the JSON path"
truncate -s 1M "$TMP/d0.img"
K=$GUESTS/counter.elf
cfg() { printf '%s\n' "$2" >"$TMP/$1.json"; }
cfg drive1 "{\"boot-source\": {\"kernel_image_path\": \"$K\"},
 \"drives\": [{\"drive_id\": \"d0\", \"path_on_host\": \"$TMP/d0.img\", \"is_root_device\": true, \"is_read_only\": false},
              {\"drive_id\": \"d1\", \"path_on_host\": \"$TMP/missing.img\", \"is_root_device\": false, \"is_read_only\": false}]}"
bad_cli "config: missing drive image" 'drives\[1\]\.path_on_host: .*(no such|not found|No such)' --config-file "$TMP/drive1.json"
cfg vcpu "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"machine-config\": {\"vcpu_count\": \"two\", \"mem_size_mib\": 32}}"
bad_cli "config: wrong type" 'machine-config\.vcpu_count' --config-file "$TMP/vcpu.json"
cfg unknown "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 32, \"memory\": 5}}"
bad_cli "config: unknown field" 'machine-config.*memory' --config-file "$TMP/unknown.json"
cfg toplevel "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"bootsource\": {}}"
bad_cli "config: unknown section" 'bootsource' --config-file "$TMP/toplevel.json"
cfg nokernel '{"machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}'
bad_cli "config: no boot-source" 'boot-source|kernel' --config-file "$TMP/nokernel.json"
cfg kernel "{\"boot-source\": {\"kernel_image_path\": \"$TMP/nokernel.elf\"}}"
bad_cli "config: missing kernel" 'boot-source\.kernel_image_path: ' --config-file "$TMP/kernel.json"
cfg drivetype "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"drives\": [{\"drive_id\": \"d0\", \"path_on_host\": \"$TMP/d0.img\", \"is_root_device\": \"yes\"}]}"
bad_cli "config: drive wrong type" 'drives\[0\]\.is_root_device' --config-file "$TMP/drivetype.json"
cfg net "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"01:00:00:00:00:01\"}]}"
bad_cli "config: multicast guest_mac" 'network-interfaces\[0\]\.guest_mac: .*multicast' --config-file "$TMP/net.json"
cfg nettap "{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}, {\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}]}"
bad_cli "config: one tap, two interfaces" 'network-interfaces\[1\]\.host_dev_name: tap0 is used by interface "eth0"' --config-file "$TMP/nettap.json"
cfg malformed '{"boot-source": {"kernel_image_path": '
bad_cli "config: malformed JSON" 'malformed.json.*(JSON|json|parse|unexpected|end)' --config-file "$TMP/malformed.json"
bad_cli "config: no such file" 'nothere.json.*(No such|no such)' --config-file "$TMP/nothere.json"
bad_cli "config: a directory" 'dir.*directory' --config-file "$TMP/dir"

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problems:"
	printf '  %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "api_errors: all checks passed"
