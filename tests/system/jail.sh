#!/bin/bash
# isola --jail DIR (docs/security.md "The jail", issue 6 item 4):
#  1. A blk_stress guest with a disk runs jailed as uid 4242:4243; while it
#     runs, isola is that user with no capabilities, under seccomp with
#     no_new_privs, in mount/net/IPC/UTS namespaces of its own, its root is
#     DIR and its /dev holds only kvm; isola-blk is its child, as the same
#     user, in namespaces of its own.  Killing isola-blk restarts it inside
#     the jail; the guest then verifies every acknowledged write (PASS).
#  2. The API in the jail: a socket inside DIR, configured with paths inside
#     DIR, InstanceStart boots hello.
#  3. Nothing is left on the host: no mount, DIR/dev empty.
#  4. Bad use gets one clear line and status 2: missing directory, a file,
#     /, root as the jail user or group, a malformed or missing --jail-user,
#     not root.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"

[[ -x $ISOLA && -x build/isola-blk ]] || fail "no $ISOLA or isola-blk; run make first"
for g in hello blk_stress; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done
[[ $(id -u) == 0 ]] || skip "--jail needs root (it creates namespaces and /dev/kvm)"
[[ -c /dev/kvm ]] || skip "no /dev/kvm"
readelf -l build/isola-blk | grep -q INTERP &&
	fail "build/isola-blk is dynamically linked: it cannot run inside a jail (make builds it static)"

JAIL_UID=4242 JAIL_GID=4243
TMP=$(mktemp -d /tmp/isola-jail.XXXXXX)
J=$TMP/jail
mkdir -p "$J/run"
chmod 755 "$TMP" "$J"
chown "$JAIL_UID:$JAIL_GID" "$J/run"
cp "$GUESTS/hello.elf" "$GUESTS/blk_stress.elf" "$J/"
chmod 644 "$J"/*.elf
truncate -s 16M "$J/disk.img"
chown "$JAIL_UID:$JAIL_GID" "$J/disk.img"
vmm= key_fd=
cleanup() {
	[[ -n $vmm ]] && kill -KILL "$vmm" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }
field() { awk -v k="$1:" '$1 == k {print $2, $3, $4, $5}' "$2"; }

# ---- 1. a jailed VM with a disk ------------------------------------------
mkfifo "$TMP/in"
exec {key_fd}<>"$TMP/in"
"$ISOLA" --jail "$J" --jail-user "$JAIL_UID:$JAIL_GID" run --kernel /blk_stress.elf --memory 64M \
	--disk path=/disk.img --cmdline "slots=64 fresh until_key seconds=300" --timeout 600 \
	--console stdio <"$TMP/in" >"$TMP/console" 2>"$TMP/err" &
vmm=$!
for _ in $(seq 200); do
	grep -q 'blk_stress: READY' "$TMP/console" 2>/dev/null && break
	kill -0 "$vmm" 2>/dev/null || break
	sleep 0.1
done
grep -q 'blk_stress: READY' "$TMP/console" ||
	fail "the jailed guest did not start: $(cat "$TMP/console" "$TMP/err" | tail -5)"

st=/proc/$vmm/status
uids=$(field Uid "$st") gids=$(field Gid "$st")
[[ $uids == "$JAIL_UID $JAIL_UID $JAIL_UID $JAIL_UID" && $gids == "$JAIL_GID $JAIL_GID $JAIL_GID $JAIL_GID" ]] &&
	ok "isola runs as $JAIL_UID:$JAIL_GID" || problem "isola's Uid '$uids' Gid '$gids'"
groups=$(awk '$1 == "Groups:" {print $2}' "$st")
[[ -z $groups ]] && ok "no supplementary groups" || problem "supplementary groups: $groups"
caps="$(awk '$1 == "CapPrm:" || $1 == "CapEff:" {print $2}' "$st" | sort -u)"
[[ $caps == 0000000000000000 ]] && ok "no capabilities (CapPrm, CapEff 0)" || problem "capabilities: $caps"
[[ $(awk '$1 == "NoNewPrivs:" {print $2}' "$st") == 1 ]] && ok "no_new_privs" || problem "no_new_privs not set"
unfiltered=0
for task in /proc/$vmm/task/*; do
	[[ $(awk '$1 == "Seccomp:" {print $2}' "$task/status") == 2 ]] || unfiltered=$((unfiltered + 1))
done
[[ $unfiltered == 0 ]] && ok "every thread under its seccomp filter" || problem "$unfiltered threads unfiltered"
for ns in mnt net ipc uts; do
	if [[ $(readlink "/proc/$vmm/ns/$ns") != "$(readlink /proc/self/ns/$ns)" ]]; then
		ok "own $ns namespace"
	else
		problem "isola shares the host's $ns namespace"
	fi
done
# /proc/PID/root is the jail: what isola sees as / is DIR
root=/proc/$vmm/root
if [[ -f $root/blk_stress.elf && -d $root/run && ! -e $root/etc ]] &&
	[[ $(stat -c %i "$root/disk.img") == $(stat -c %i "$J/disk.img") ]]; then
	ok "isola's root is the jail directory"
else
	problem "isola's root is not $J: $(ls $root/ | tr '\n' ' ')"
fi
# DIR is bound onto itself nosuid,nodev (the last "/" is the one on top)
rootopts=$(awk '$5 == "/" {o = $6} END {print o}' "/proc/$vmm/mountinfo")
[[ ,$rootopts, == *,nosuid,* && ,$rootopts, == *,nodev,* ]] && ok "its root is mounted nosuid,nodev" ||
	problem "its root's mount options: ${rootopts:-none}"
devs=$(ls -A "$root/dev" | tr '\n' ' ')
[[ $devs == "kvm " ]] && ok "its /dev holds only kvm" || problem "its /dev holds: $devs"
[[ $(stat -c '%u:%g %a' "$root/dev/kvm") == "$JAIL_UID:$JAIL_GID 600" ]] ||
	problem "its /dev/kvm: $(stat -c '%u:%g %a' "$root/dev/kvm")"

server=$(pgrep -P "$vmm" -x isola-blk | head -1)
if [[ -n $server ]]; then
	ok "isola-blk (pid $server) is isola's child"
	s_uids=$(field Uid "/proc/$server/status")
	[[ $s_uids == "$JAIL_UID $JAIL_UID $JAIL_UID $JAIL_UID" ]] && ok "isola-blk runs as $JAIL_UID" ||
		problem "isola-blk's Uid '$s_uids'"
	[[ $(readlink "/proc/$server/ns/mnt") != "$(readlink "/proc/$vmm/ns/mnt")" ]] &&
		ok "isola-blk has a mount namespace of its own" || problem "isola-blk shares isola's mount namespace"
else
	problem "no isola-blk under isola: $(ps -o pid,comm --ppid "$vmm" | tr '\n' ' ')"
fi

# a server killed inside the jail comes back (the core, not root, restarts it)
for kill_no in 1 2 3; do
	server=$(pgrep -P "$vmm" -x isola-blk | head -1)
	[[ -n $server ]] || break
	kill -KILL "$server"
	for _ in $(seq 100); do
		new=$(pgrep -P "$vmm" -x isola-blk | head -1)
		[[ -n $new && $new != "$server" ]] && break
		sleep 0.1
	done
	[[ -n $new && $new != "$server" ]] || problem "isola-blk not restarted after kill $kill_no"
	sleep 0.3
done
printf x >&"$key_fd"
wait "$vmm"
status=$?
vmm=
if [[ $status == 1 ]] && grep -aq 'PASS: every acknowledged write reads back intact' "$TMP/console"; then
	ok "3 kills of isola-blk inside the jail; the guest verified every write ($(grep -ao 'blk_stress: writes=.*' "$TMP/console" | head -1))"
else
	problem "the jailed blk_stress guest: status $status; $(grep -a '^FAIL' "$TMP/console" | head -3) $(tail -3 "$TMP/err")"
fi
grep -q 'is back after' "$TMP/err" || problem "no restart logged: $(tail -3 "$TMP/err")"
grep -q 'forbidden system call' "$TMP/err" && problem "$(grep 'forbidden system call' "$TMP/err")"

# ---- 2. the API inside the jail ------------------------------------------
api() { curl -s --max-time 10 --unix-socket "$J/run/api.sock" -X "$1" -o "$TMP/body" -w '%{http_code}' \
	${3:+-d "$3"} "http://localhost$2"; }
"$ISOLA" --jail "$J" --jail-user "$JAIL_UID:$JAIL_GID" --api-sock /run/api.sock </dev/null \
	>"$TMP/api.out" 2>"$TMP/api.err" &
vmm=$!
for _ in $(seq 100); do
	[[ -S $J/run/api.sock ]] && break
	sleep 0.1
done
code=$(api PUT /boot-source '{"kernel_image_path": "/hello.elf"}')
[[ $code == 204 ]] || problem "PUT /boot-source /hello.elf in the jail: HTTP $code $(cat "$TMP/body")"
code=$(api PUT /boot-source '{"kernel_image_path": "'"$GUESTS"'/hello.elf"}')
[[ $code == 400 ]] && ok "a host path is not visible in the jail (HTTP 400: $(head -c 120 "$TMP/body"))" ||
	problem "host kernel path in the jail: HTTP $code, want 400"
api PUT /boot-source '{"kernel_image_path": "/hello.elf"}' >/dev/null
code=$(api PUT /actions '{"action_type": "InstanceStart"}')
wait "$vmm"
status=$?
vmm=
[[ $code == 204 && $status == 1 ]] && ok "API in the jail: InstanceStart booted /hello.elf (status 1)" ||
	problem "API in the jail: InstanceStart HTTP $code, isola status $status; $(tail -3 "$TMP/api.err")"
[[ -e $J/run/api.sock ]] && problem "the API socket was left behind"

# ---- 2b. run --vsock: its path is the jail's ------------------------------
# /vsock-$$ exists only in the jail: checked there, not on the host
VDIR=vsock-$$
mkdir "$J/$VDIR" && chown "$JAIL_UID:$JAIL_GID" "$J/$VDIR"
timeout 60 "$ISOLA" --jail "$J" --jail-user "$JAIL_UID:$JAIL_GID" run --kernel /hello.elf \
	--memory 64M --console none --vsock "cid=3,uds=/$VDIR/v.sock" </dev/null >"$TMP/vs.out" 2>"$TMP/vs.err"
status=$?
[[ $status == 1 && ! -e /$VDIR ]] && ok "run --vsock uds=/$VDIR/v.sock in the jail: booted (status 1)" ||
	problem "run --vsock in the jail: status $status; $(tail -3 "$TMP/vs.err")"
timeout 60 "$ISOLA" --jail "$J" --jail-user "$JAIL_UID:$JAIL_GID" run --kernel /hello.elf \
	--memory 64M --console none --vsock "cid=3,uds=/nodir-$$/v.sock" </dev/null >"$TMP/vs.out" 2>"$TMP/vs.err"
status=$?
[[ $status != 0 && $status != 1 ]] && grep -q "directory /nodir-$$: No such file" "$TMP/vs.err" &&
	ok "run --vsock with a directory missing in the jail: refused ($(head -n 1 "$TMP/vs.err"))" ||
	problem "run --vsock, no directory in the jail: status $status; $(tail -3 "$TMP/vs.err")"
rm -rf "${J:?}/$VDIR"

# ---- 3. nothing left on the host ------------------------------------------
grep -q " $J" /proc/self/mounts && problem "a mount under $J is left on the host"
[[ -z $(ls -A "$J/dev") ]] && ok "nothing left: no mounts, $J/dev is empty" ||
	problem "$J/dev holds $(ls -A "$J/dev")"

# ---- 4. bad use ------------------------------------------------------------
refused() {
	local want=$1
	shift
	timeout 20 "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	local st=$?
	if [[ $st == 2 ]] && grep -Eq "$want" "$TMP/err" && [[ $(wc -l <"$TMP/err") == 1 ]]; then
		ok "refused: $(cat "$TMP/err")"
	else
		problem "$*: status $st, stderr '$(head -c 300 "$TMP/err")', want status 2 and /$want/"
	fi
}
run_hello=(run --kernel /hello.elf --console none)
user=(--jail-user "$JAIL_UID:$JAIL_GID")
refused "create the directory first" "$ISOLA" --jail "$TMP/missing" "${user[@]}" "${run_hello[@]}"
refused "not a directory" "$ISOLA" --jail "$J/disk.img" "${user[@]}" "${run_hello[@]}"
refused "must be a directory of its own" "$ISOLA" --jail / "${user[@]}" "${run_hello[@]}"
refused "must not be root" "$ISOLA" --jail "$J" --jail-user 0 "${run_hello[@]}"
refused "must not be root" "$ISOLA" --jail "$J" --jail-user 4242:0 "${run_hello[@]}"
refused "expected UID or UID:GID" "$ISOLA" --jail "$J" --jail-user nobody "${run_hello[@]}"
refused "needs --jail-user UID\[:GID\]: give each VM a user" "$ISOLA" --jail "$J" "${run_hello[@]}"
refused "missing value for --jail" "$ISOLA" run --kernel /hello.elf --jail
if command -v setpriv >/dev/null; then
	refused "needs root" setpriv --reuid "$JAIL_UID" --regid "$JAIL_GID" --clear-groups \
		"$ISOLA" --jail "$J" "${user[@]}" "${run_hello[@]}"
fi

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "jail: all checks passed"
