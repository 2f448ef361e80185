#!/bin/bash
# PATCH /drives/{id} after start (issue 13, acceptance 3) with the
# drive_patch test guest: the drive starts on old.img (64 MiB, marker
# "isola-old-image" in sector 0); the guest keeps writes in flight; the
# refusals (missing file, directory, read-only file for a writable drive,
# unknown or mismatched drive_id, a paused VM) leave its isola-blk as it
# was; then PATCH to new.img (128 MiB, "isola-new-image") hands the drive
# over: the guest sees the config change interrupt and the new capacity,
# every write landed whole on exactly one image in ring order (the guest
# checks the new image, this script the old one), and GET /vm/config shows
# the new path.  Then rate limiters: a rate_limiter alone and one with
# path_on_host start an isola-blk with --rate SPEC (its /proc/PID/cmdline),
# GET /vm/config shows them, rate_limiter {} leaves the server alone, and
# the same path_on_host again opens the file again (Firecracker's way).  Needs build/isola-blk; root uses a mount namespace for the
# read-only file (root may write a 0444 file).
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -x $ISOLA_ROOT/build/isola-blk ]] || fail "no build/isola-blk; run make first"
[[ -f $GUESTS/drive_patch.elf ]] || fail "no $GUESTS/drive_patch.elf; run make guests"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v python3 >/dev/null || skip "no python3"

TMP=$(mktemp -d /tmp/isola-drive-patch.XXXXXX)
PID=
cleanup() {
	[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
	umount "$TMP/ro" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

OLD_SECTORS=131072
NEW_SECTORS=262144
truncate -s $((OLD_SECTORS * 512)) "$TMP/old.img"
truncate -s $((NEW_SECTORS * 512)) "$TMP/new.img"
printf 'isola-old-image' | dd of="$TMP/old.img" conv=notrunc status=none
printf 'isola-new-image' | dd of="$TMP/new.img" conv=notrunc status=none
mkdir "$TMP/dir" "$TMP/ro" "$TMP/ro-src"
truncate -s 1M "$TMP/ro-src/ro.img"
chmod 0444 "$TMP/ro-src/ro.img"

SOCK=$TMP/api.sock
# api METHOD PATH [BODY]: sets CODE, BODY and TIME (seconds).
api() {
	local args=(-s --max-time 20 --unix-socket "$SOCK" -X "$1" -o "$TMP/resp" -w '%{http_code} %{time_total}')
	local out
	[[ -n ${3-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	out=$(curl "${args[@]}" "http://localhost$2" 2>/dev/null)
	CODE=${out%% *}
	TIME=${out#* }
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
# refuse WHAT BODY WORDS: a 400 whose message has WORDS, the server unchanged.
refuse() {
	local what=$1 body=$2 words=$3
	api PATCH /drives/data "$body"
	if [[ $CODE == 400 && $BODY == *"$words"* ]]; then ok "$what: 400 ($BODY)"; else problem "$what: $CODE $BODY"; fi
	[[ $(blk_server) == "$SERVER" ]] || problem "$what: isola-blk changed: $(blk_server)"
}
# The isola-blk serving our images: "PID ARGS" of the newest, or nothing.
# The core's isola-blk child ("PID ARGS"): the sandbox's parent, whose
# forked server has the same command line (in a PID namespace of its own)
# and outlives it by a moment after a handover.
blk_server() {
	local p args ppid found=
	for p in /proc/[0-9]*; do
		args=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $args == *isola-blk* && $args == *"$TMP/"* && $args != *sandbox* ]] || continue
		ppid=$(awk '{ print $4 }' "$p/stat" 2>/dev/null)
		[[ $ppid == "$PID" ]] && found="${p#/proc/} $args"
	done
	echo "$found"
}

if [[ $(id -u) == 0 ]]; then
	# root writes a 0444 file: a read-only bind mount makes it read-only
	# (EROFS) for isola, in a mount namespace of its own.
	unshare -m --propagation private sh -c 'mount --bind "$1/ro-src" "$1/ro" && mount -o remount,bind,ro "$1/ro" && exec "$2" --api-sock "$3"' \
		sh "$TMP" "$ISOLA" "$SOCK" </dev/null >"$TMP/out" 2>"$TMP/err" &
else
	cp "$TMP/ro-src/ro.img" "$TMP/ro/ro.img"
	"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/out" 2>"$TMP/err" &
fi
PID=$!
for _ in $(seq 200); do
	api GET / && [[ $CODE == 200 ]] && break
	sleep 0.05
done
[[ $CODE == 200 ]] || fail "API not ready: $(head -c 300 "$TMP/err")"

CMDLINE="old=isola-old-image new=isola-new-image old_sectors=$OLD_SECTORS new_sectors=$NEW_SECTORS depth=8"
api PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/drive_patch.elf\", \"boot_args\": \"$CMDLINE\"}"
[[ $CODE == 204 ]] || fail "PUT /boot-source: $CODE $BODY"
api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}'
api PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/old.img\", \"is_root_device\": false}"
[[ $CODE == 204 ]] || fail "PUT /drives/data: $CODE $BODY"
api PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\"}"
[[ $CODE == 400 ]] && ok "PATCH before InstanceStart: 400" || problem "PATCH before start: $CODE $BODY"
api PUT /actions '{"action_type": "InstanceStart"}'
[[ $CODE == 204 ]] || fail "InstanceStart: $CODE $BODY; $(tail -n 5 "$TMP/err")"

SERVER=$(blk_server)
[[ $SERVER == *"--image $TMP/old.img"* ]] || fail "no isola-blk on old.img: '$SERVER'; $(tail -n 5 "$TMP/err")"
for _ in $(seq 600); do
	grep -q "drive_patch: ready" "$TMP/out" && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
grep -q "drive_patch: ready" "$TMP/out" || fail "the guest never got ready: $(tail -n 5 "$TMP/out")"
ok "the guest read the old image's marker and capacity: $(grep -o 'ready.*' "$TMP/out")"

refuse "missing file" "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/nope.img\"}" "no such file"
refuse "a directory" "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/dir\"}" "is a directory"
refuse "a read-only file for a writable drive" "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/ro/ro.img\"}" "set is_read_only"
refuse "an unknown drive" "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\", \"x\": 1}" "unknown field"
api PATCH /drives/other "{\"drive_id\": \"other\", \"path_on_host\": \"$TMP/new.img\"}"
[[ $CODE == 400 && $BODY == *"does not exist"* ]] && ok "unknown drive_id: 400" || problem "unknown drive_id: $CODE $BODY"
refuse "a drive_id unlike the path's" "{\"drive_id\": \"datb\", \"path_on_host\": \"$TMP/new.img\"}" "must match"
api PATCH /vm '{"state": "Paused"}'
refuse "a paused VM" "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\"}" "resume it"
api PATCH /vm '{"state": "Resumed"}'
[[ $CODE == 204 ]] || problem "resume: $CODE $BODY"

# go: the guest's writes run flat out from now on (8 in flight), and the
# PATCH comes while they do.
printf 'go' | dd of="$TMP/old.img" bs=512 seek=1 conv=notrunc,fsync status=none
api PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\"}"
if [[ $CODE == 204 ]]; then ok "PATCH to new.img: 204 in $TIME s"; else problem "PATCH to new.img: $CODE $BODY"; fi
AFTER=$(blk_server)
[[ $AFTER == *"--image $TMP/new.img"* && ${AFTER%% *} != "${SERVER%% *}" ]] &&
	ok "a new isola-blk serves new.img (pid ${SERVER%% *} -> ${AFTER%% *})" || problem "isola-blk after the PATCH: '$AFTER'"
# The core SIGKILLs and reaps the old server's sandbox parent before the
# 204; the server itself (its child, in its own PID namespace) dies of
# PDEATHSIG a moment later, so allow it a few seconds.
for _ in $(seq 50); do kill -0 "${SERVER%% *}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${SERVER%% *}" 2>/dev/null && problem "the old isola-blk still runs 5 s after the PATCH" || ok "the old isola-blk is gone"
api GET /vm/config
[[ $BODY == *"\"path_on_host\":\"$TMP/new.img\""* ]] && ok "GET /vm/config shows new.img" || problem "GET /vm/config: $BODY"

for _ in $(seq 600); do
	grep -q "drive_patch: done" "$TMP/out" && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
# Rate limiters (isola-blk --rate SPEC, docs/ratelimit.md) while the guest
# waits for "end": a rate_limiter alone and one with path_on_host each hand
# the drive to a new isola-blk whose command line has the SPEC (Firecracker's
# BucketUpdate: buckets not named stay); rate_limiter {} leaves the server
# alone; the same path_on_host is opened again.
# patch_rate WHAT BODY SPEC: 204, a new isola-blk on new.img with --rate SPEC.
patch_rate() {
	local what=$1 body=$2 spec=$3 before after
	before=$(blk_server)
	api PATCH /drives/data "$body"
	after=$(blk_server)
	if [[ $CODE == 204 && $after == *"--image $TMP/new.img"* && $after == *"--rate $spec"* &&
		${after%% *} != "${before%% *}" ]]; then
		ok "$what: 204, isola-blk ${before%% *} -> ${after%% *} with --rate $spec"
	else
		problem "$what: $CODE $BODY; isola-blk '$before' -> '$after'"
	fi
}
# unchanged WHAT BODY: 204 and the same isola-blk.
unchanged() {
	local before
	before=$(blk_server)
	api PATCH /drives/data "$2"
	[[ $CODE == 204 && $(blk_server) == "$before" ]] && ok "$1: 204, isola-blk ${before%% *} kept" ||
		problem "$1: $CODE $BODY; isola-blk '$before' -> '$(blk_server)'"
}
patch_rate "rate_limiter alone" \
	'{"drive_id": "data", "rate_limiter": {"bandwidth": {"size": 104857600, "refill_time": 100}}}' \
	"bytes=104857600:100"
patch_rate "rate_limiter with path_on_host" \
	"{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\", \"rate_limiter\": {\"ops\": {\"size\": 100000, \"refill_time\": 100}}}" \
	"bytes=104857600:100,ops=100000:100"
unchanged "rate_limiter {} (no-op)" '{"drive_id": "data", "rate_limiter": {}}'
# The same path_on_host again opens the file again, as Firecracker does:
# Kata Containers hot-plugs by bind-mounting the container's image over
# the placeholder's path and PATCHing that same path.
before=$(blk_server)
api PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$TMP/new.img\"}"
after=$(blk_server)
if [[ $CODE == 204 && $after == *"--image $TMP/new.img"* && ${after%% *} != "${before%% *}" ]]; then
	ok "the same path_on_host: 204, reopened by a new isola-blk ${before%% *} -> ${after%% *}"
else
	problem "the same path_on_host: $CODE $BODY; isola-blk '$before' -> '$after', want a new one"
fi
api GET /vm/config
python3 - "$BODY" <<'EOF' && ok "GET /vm/config shows the drive's rate_limiter" || problem "GET /vm/config: rate_limiter: $BODY"
import json, sys
d = [d for d in json.loads(sys.argv[1])["drives"] if d["drive_id"] == "data"][0]
rl = d.get("rate_limiter") or {}
assert rl["bandwidth"]["size"] == 104857600 and rl["bandwidth"]["refill_time"] == 100, rl
assert rl["ops"]["size"] == 100000 and rl["ops"]["refill_time"] == 100, rl
EOF

printf 'end' | dd of="$TMP/new.img" bs=512 seek=2 conv=notrunc,fsync status=none
for _ in $(seq 1200); do
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
wait "$PID"
STATUS=$?
PID=
grep '^drive_patch:\|^PASS\|^FAIL' "$TMP/out" | sed 's/^/  guest: /'
[[ $STATUS == 1 ]] && ok "the guest passed" || problem "isola exited $STATUS, want 1 (guest PASS): $(tail -n 5 "$TMP/out"; tail -n 5 "$TMP/err")"
grep -q "handed over\|now served from" "$TMP/err" && ok "the core logged the handover" || problem "no handover line: $(tail -n 5 "$TMP/err")"

# The old image: writes 0..K-1 whole (the guest saw zeroes there on the
# new one), K..N-1 never reached it.
read -r K N < <(sed -n 's/.*drive_patch: switch at write \([0-9]*\) of \([0-9]*\).*/\1 \2/p' "$TMP/out")
if [[ -n ${K-} ]]; then
	python3 - "$TMP/old.img" "$K" "$N" <<'EOF'
import struct, sys
path, k, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MUL, SEED, M = 0x9e3779b97f4a7c15, 0xd41fe0a700000000, (1 << 64) - 1
bad = 0
with open(path, "rb") as f:
    for i in range(n):
        sector = 64 + 8 * i
        f.seek(sector * 512)
        words = struct.unpack("<512Q", f.read(4096))
        if i < k:
            w0 = sector * 512 // 8 + 1
            want = [(((w0 + j) * MUL) & M) ^ (SEED + i) for j in range(512)]
            ok = list(words) == want
        else:
            ok = not any(words)
        if not ok:
            bad += 1
            if bad <= 3:
                print(f"  region {i} ({'pattern' if i < k else 'zeroes'} expected) differs")
sys.exit(1 if bad else 0)
EOF
	if (($? == 0)); then
		ok "old.img holds writes 0..$((K - 1)) whole and none of $K..$((N - 1))"
	else
		problem "old.img does not match the switch point $K of $N"
	fi
else
	problem "the guest printed no switch point"
fi

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problems:"
	printf '  %s\n' "${FAILURES[@]}"
	exit 1
fi
echo "drive_patch: all checks passed"
