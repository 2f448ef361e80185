#!/bin/bash
# Interop (c), issue 4 item 8: qemu-storage-daemon as the vhost-user-blk
# back-end of the isola core (`isola run --vhost-user-blk socket=PATH`):
#   1. blk_rw (MSI-X, indirect) through a qsd export with 2 queues: status 1,
#      no FAIL line, then the image checked from the host
#      (interop/blk_rw_image.py: every pattern region the guest printed,
#      zeroes where it wrote zeroes, every other byte unchanged);
#   2. blk_rw again (poll, no_indirect) on the same qsd, the image restored
#      in place: the core's second connection to a live back-end;
#   3. the same blk_rw through `--disk path=IMG` (isola's own isola-blk),
#      with the same host-side check: both back-ends leave the same bytes.
# qsd must still be running afterwards with nothing on its stderr, isola
# must log nothing but the guest's exit (and isola-blk its start).
set -u
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/interop/lib.sh"
cd "$ISOLA_ROOT" || exit 1
SECTORS=16384

QSD=$(command -v qemu-storage-daemon) || skip "no qemu-storage-daemon (apt-get install qemu-system-common)"
[[ -x $ISOLA ]] || fail "no $ISOLA (make all)"
[[ -f $GUESTS/blk_rw.elf ]] || fail "no $GUESTS/blk_rw.elf (make guests)"
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
interop_init interop-qsd
start=$(date +%s.%N)

# isola_blk_rw NAME APPEND ARGS...: blk_rw under isola, want status 1 and no
# FAIL line, then the image ($img against $TMP/orig) checked from the host
isola_blk_rw() {
	local name=$1 append=$2 console=$TMP/$1.txt t0 st
	shift 2
	t0=$(date +%s.%N)
	bounded 90 "$ISOLA" run --kernel "$GUESTS/blk_rw.elf" --memory 64M --timeout 60 \
		--console "file:$console" --cmdline "$append" "$@" </dev/null >"$console.out" 2>"$console.err"
	st=$?
	if [[ $st != 1 ]] || grep -aq '^FAIL' "$console" || ! grep -aq '^isola-guest: PASS' "$console"; then
		bad "$name: isola $* + blk_rw: status $st (want 1 and an isola-guest: PASS line):"
		grep -a -E '^(FAIL|isola-guest)' "$console" | head -20 | sed 's/^/    | /'
		sed 's/^/    | /' "$console.err"
		return 1
	fi
	echo "ok   $name: isola + blk_rw: status 1, $(grep -ac '^PASS' "$console") PASS lines, $(elapsed "$t0") s"
	grep -a 'blk_rw: \(id\|capacity\|max_discard\|discard:\)' "$console" | sed 's/^/     guest: /'
	if grep -vE 'guest wrote 0x0 to the debug-exit port|isola-blk: (sandboxed:|serving |front-end (connected|disconnected))' \
		"$console.err" | sed 's/^/    | /' | grep .; then
		bad "$name: isola logged more than the guest's exit and isola-blk's start (above)"
	fi
	python3 tests/system/interop/blk_rw_image.py "$console" "$img" "$TMP/orig" ||
		bad "$name: the image (above)"
}

img=$TMP/disk.img
head -c $((SECTORS * 512)) /dev/urandom >"$img"
cp "$img" "$TMP/orig"

# ---- qemu-storage-daemon -------------------------------------------------------
"$QSD" --blockdev "driver=file,node-name=f,filename=$img" \
	--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$TMP/qsd.sock,writable=on,num-queues=2" \
	</dev/null >"$TMP/qsd.log" 2>&1 &
QSD_PID=$!
PIDS+=("$QSD_PID")
for _ in $(seq 100); do
	[[ -S $TMP/qsd.sock ]] && break
	kill -0 "$QSD_PID" 2>/dev/null || break
	sleep 0.1
done
[[ -S $TMP/qsd.sock ]] || { sed 's/^/    | /' "$TMP/qsd.log"; fail "qemu-storage-daemon did not start"; }
isola_blk_rw qsd_blk_rw "sectors=$SECTORS" --vhost-user-blk "socket=$TMP/qsd.sock"
cp "$TMP/orig" "$img" # in place: qsd keeps its fd
isola_blk_rw qsd_blk_rw_poll "sectors=$SECTORS poll no_indirect" --vhost-user-blk "socket=$TMP/qsd.sock"
if ! kill -0 "$QSD_PID" 2>/dev/null; then
	bad "qemu-storage-daemon died"
	sed 's/^/    | /' "$TMP/qsd.log"
elif [[ -s $TMP/qsd.log ]]; then
	sed 's/^/    | /' "$TMP/qsd.log"
	bad "qemu-storage-daemon printed something (above)"
else
	echo "ok   qemu-storage-daemon alive, nothing printed"
fi
kill "$QSD_PID"
wait "$QSD_PID"
st=$?
[[ $st == 0 ]] || bad "qemu-storage-daemon: exit status $st after SIGTERM, want 0"

# ---- the same through isola's own isola-blk ------------------------------------
cp "$TMP/orig" "$img"
isola_blk_rw isola_blk_rw "sectors=$SECTORS id=disk0" --disk "path=$img,id=disk0"

echo "total: $(elapsed "$start") s"
((failed)) && exit 1
echo "PASS: blk_rw passes on isola with qemu-storage-daemon and with isola-blk as back-ends; images checked"
