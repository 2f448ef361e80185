#!/bin/bash
# Snapshots of VMs with device servers (issue 16 acceptance 3,
# docs/snapshot.md "Devices"): each case boots a test guest with a
# virtio-blk disk served by isola-blk, pauses it, snapshots it over the API,
# kills it, and restores it with `isola restore` in a new process (new
# servers, rings at the saved indices, the server's state pushed back):
#  counter:   the counter guest, with a disk and the entropy device,
#             continues from the exact next number;
#  inflight:  blk_stress writes continuously with 8 requests in flight; the
#             snapshot holds requests posted and not taken (the log says
#             how many); after the restore they complete and every
#             acknowledged write reads back intact (the guest checks all
#             64 slots, status PASS);
#  resume:    the VM snapshotted (blk_stress, requests in flight) is
#             resumed instead: its rings run again where they stopped and
#             every write reads back intact;
#  irq_cli:   snap_irq: a completion's interrupt raised while the guest has
#             interrupts off (pending in the LAPIC) is delivered after the
#             restore, and the data read is the image's;
#  irq_mask:  the same with the queue's MSI-X vector masked (pending in the
#             function's PBA, that is isola's call eventfd);
#  net:       (root: a tap in a namespace made here) net_ping sets a new MAC
#             and PROMISC off through the control queue and is snapshotted;
#             the restored isola-net gets those settings from the state
#             stream (its log line) and the pings from the new MAC are
#             answered;
#  override:  two clones of one blk_stress snapshot, one restored with
#             --drive-override, one with PUT /snapshot/load drive_overrides,
#             each on its own copy of the image: every acknowledged write
#             reads back, the snapshot's image is never written; an
#             override that names no drive is refused;
#  bad_files: a state file whose device sections are missing, wrong or
#             hostile (a transport of another virtio type, a queue size the
#             driver could not set, a server option isola does not pass, a
#             device entry without its transport, a server state the
#             server refuses) is refused with a clear error and status 2.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
for g in counter blk_stress snap_irq net_ping; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
command -v curl >/dev/null || skip "no curl (apt-get install curl)"
command -v python3 >/dev/null || skip "no python3"
TMP=$(mktemp -d /tmp/isola-snapdev.XXXXXX)
PIDS=()
NETNS=
cleanup() {
	local pid
	[[ -n $NETNS ]] && ip netns del "$NETNS" 2>/dev/null
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	exec 7>&- 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap "" PIPE # a restored VM that died closes the fifo: a failed write, not the end of the test
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

api() { # SOCK METHOD PATH [BODY]: sets CODE and BODY
	local sock=$1 method=$2 path=$3 data=${4-}
	local args=(-s --max-time 20 --unix-socket "$sock" -X "$method" -o "$TMP/resp"
		-w '%{http_code}' -H 'Accept: application/json')
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	CODE=$(curl "${args[@]}" "http://localhost$path" 2>/dev/null)
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
wait_for() { # FILE REGEX SECONDS
	for _ in $(seq $(($3 * 20))); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# whole lines, after FRONT (the line the pause cut; tests/lib.sh)
counts() { console_counts "$1" "${2-}"; }
last_count() { counts "$1" | tail -n 1; }

# vm_json NAME GUEST ARGS DISK [EXTRA]: the config file for a case
vm_json() {
	cat >"$TMP/$1.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUESTS/$2.elf", "boot_args": "$3"},
 "drives": [{"drive_id": "d0", "path_on_host": "$4", "is_root_device": false, "is_read_only": false}],
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}${5-}}
EOF
}

# snapshot NAME READY_REGEX [SETTLE]: boot NAME's config, wait for READY,
# pause, snapshot to $TMP/NAME.state/.mem, kill it.
snapshot() {
	local name=$1 sock=$TMP/$1.sock pid
	"$ISOLA" --api-sock "$sock" --config-file "$TMP/$name.json" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	wait_for "$TMP/$name.out" "$2" 30 || {
		problem "$name: the guest did not get ready: $(tail -3 "$TMP/$name.err" | tr '\n' ' ')"
		kill -KILL "$pid"
		return 1
	}
	sleep "${3:-0}"
	api "$sock" PATCH /vm '{"state": "Paused"}'
	[[ $CODE == 204 ]] || { problem "$name: pause: $CODE $BODY"; kill -KILL "$pid"; return 1; }
	api "$sock" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/$name.state\", \"mem_file_path\": \"$TMP/$name.mem\"}"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	[[ $CODE == 204 ]] || { problem "$name: PUT /snapshot/create: $CODE $BODY"; return 1; }
	return 0
}

# restore NAME [KEY_AFTER_REGEX]: `isola restore` NAME's files (and the
# options in RESTORE_ARGS), its console on a fifo (a key is sent once the
# output matches KEY_AFTER_REGEX; "stderr:REGEX": once isola's stderr does);
# waits for the end; sets ST.
restore() {
	local name=$1 pid
	rm -f "$TMP/fifo"
	mkfifo "$TMP/fifo"
	# shellcheck disable=SC2086 # options, split on purpose
	"$ISOLA" restore --state "$TMP/$name.state" --mem "$TMP/$name.mem" --timeout 60 ${RESTORE_ARGS-} \
		<"$TMP/fifo" >"$TMP/$name.rout" 2>"$TMP/$name.rerr" &
	pid=$!
	PIDS+=("$pid")
	exec 7>"$TMP/fifo"
	if [[ -n ${2-} ]]; then
		local file=$TMP/$name.rout re=$2
		[[ $re == stderr:* ]] && file=$TMP/$name.rerr re=${re#stderr:}
		wait_for "$file" "$re" 30
		printf k >&7 2>/dev/null
	fi
	wait_for "$TMP/$name.rout" '^isola-guest: (PASS|FAIL)' 60
	exec 7>&-
	wait "$pid"
	ST=$?
}

# SNAPDEV_CASES="irq_mask bad_files": only those (bad_files needs irq_cli's files)
want() { [[ -z ${SNAPDEV_CASES-} || " $SNAPDEV_CASES " == *" $1 "* ]] && echo "=== $1"; }

# ---- counter: continues from the next number, with a disk and entropy ----
if want counter; then
truncate -s 8M "$TMP/counter.img"
vm_json counter counter "period_ms=50" "$TMP/counter.img" ', "entropy": {}'
if snapshot counter '^count 3.?$'; then
	paused=$(last_count "$TMP/counter.out")
	cut=$(console_cut "$TMP/counter.out")
	rm -f "$TMP/fifo"
	mkfifo "$TMP/fifo"
	"$ISOLA" restore --state "$TMP/counter.state" --mem "$TMP/counter.mem" --timeout 30 \
		<"$TMP/fifo" >"$TMP/counter.rout" 2>"$TMP/counter.rerr" &
	pid=$!
	PIDS+=("$pid")
	exec 7>"$TMP/fifo"
	wait_for "$TMP/counter.rout" "^count $((paused + 4)).?$" 20
	kill -TERM "$pid"
	wait "$pid"
	exec 7>&-
	first=$(counts "$TMP/counter.rout" "$cut" | head -1)
	n=$(counts "$TMP/counter.rout" "$cut" | wc -l)
	if [[ $first == $((paused + 1)) ]] && ((n >= 4)) && ! grep -q 'counter guest' "$TMP/counter.rout" &&
		grep -q 'isola-rng' "$TMP/counter.rerr" && grep -q 'isola-blk' "$TMP/counter.rerr"; then
		ok "counter with a disk and entropy: paused at $paused, restored from $first ($n counts, new isola-blk and isola-rng)"
	else
		problem "counter: paused at $paused, restored output begins at '${first:-none}' ($n counts): $(head -c 200 "$TMP/counter.rout" | tr '\n' ' '); $(tail -3 "$TMP/counter.rerr" | tr '\n' ' ')"
	fi
fi
fi

# ---- inflight: block I/O in flight at the snapshot completes after it ----
if want inflight; then
truncate -s 8M "$TMP/inflight.img"
vm_json inflight blk_stress "until_key fresh seconds=600 depth=8 slots=64" "$TMP/inflight.img"
if snapshot inflight 'blk_stress: READY' 1; then
	waiting=$(grep -o 'queue 0 stopped at [0-9]*, [0-9]* request(s) posted and not yet taken' "$TMP/inflight.err")
	restore inflight 'blk_stress: [0-9]+ s:'
	if [[ $ST == 1 ]] && grep -q '^PASS: every acknowledged write reads back intact' "$TMP/inflight.rout"; then
		ok "inflight: snapshot with ${waiting:-(no log line)}; after the restore: $(grep -o 'writes=[0-9]*' "$TMP/inflight.rout"), $(grep '^PASS: every' "$TMP/inflight.rout" | cut -c7-)"
	else
		problem "inflight: status $ST: $(grep -E 'FAIL|blk_stress: writes' "$TMP/inflight.rout" | head -3 | tr '\n' ' '); $(tail -3 "$TMP/inflight.rerr" | tr '\n' ' ')"
	fi
	[[ -n $waiting ]] || problem "inflight: the snapshot did not log its rings"
fi
fi

# ---- resume: the snapshotted VM itself runs on (its rings restarted) ----
if want resume; then
truncate -s 8M "$TMP/resume.img"
vm_json resume blk_stress "fresh seconds=4 depth=8 slots=64" "$TMP/resume.img"
sock=$TMP/resume.sock
"$ISOLA" --api-sock "$sock" --config-file "$TMP/resume.json" </dev/null >"$TMP/resume.out" 2>"$TMP/resume.err" &
pid=$!
PIDS+=("$pid")
if wait_for "$TMP/resume.out" 'blk_stress: READY' 30; then
	sleep 1
	api "$sock" PATCH /vm '{"state": "Paused"}'
	api "$sock" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/resume.state\", \"mem_file_path\": \"$TMP/resume.mem\"}"
	c1=$CODE
	api "$sock" PATCH /vm '{"state": "Resumed"}'
	wait_for "$TMP/resume.out" '^isola-guest: (PASS|FAIL)' 30
	if [[ $c1 == 204 ]] && grep -q '^isola-guest: PASS' "$TMP/resume.out"; then
		ok "resume: snapshotted, resumed, and the guest's writes all read back intact ($(grep -o 'writes=[0-9]*' "$TMP/resume.out"))"
	else
		problem "resume: snapshot $c1, then: $(grep -E 'FAIL|isola-guest' "$TMP/resume.out" | head -3 | tr '\n' ' '); $(tail -3 "$TMP/resume.err" | tr '\n' ' ')"
	fi
else
	problem "resume: the guest did not get ready"
fi
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
fi

# ---- override: clones of one snapshot, each on its own copy of the disk ----
# blk_stress snapshotted with writes in flight; its image copied while the
# VM is paused; clone 1 restored by `isola restore --drive-override
# d0=COPY1`, clone 2 by PUT /snapshot/load with drive_overrides on a fresh
# isola --api-sock: each reads back every acknowledged write (so it was
# served the copy: the writes before the snapshot are there) and the
# snapshot's own image is never written; an override that names no drive
# is refused.
if want override; then
truncate -s 8M "$TMP/override.img"
vm_json override blk_stress "until_key fresh seconds=600 depth=8 slots=64" "$TMP/override.img"
if snapshot override 'blk_stress: READY' 1; then
	cp "$TMP/override.img" "$TMP/c1.img"
	cp "$TMP/override.img" "$TMP/c2.img"
	base=$(md5sum <"$TMP/override.img")
	RESTORE_ARGS="--drive-override d0=$TMP/c1.img" restore override 'blk_stress: [0-9]+ s:'
	if [[ $ST == 1 ]] && grep -q '^PASS: every acknowledged write reads back intact' "$TMP/override.rout" &&
		grep -q "isola-blk: serving $TMP/c1.img" "$TMP/override.rerr"; then
		ok "override: clone 1 (--drive-override d0=c1.img) served c1.img: $(grep -o 'writes=[0-9]*' "$TMP/override.rout"), $(grep '^PASS: every' "$TMP/override.rout" | cut -c7-)"
	else
		problem "override: clone 1: status $ST: $(grep -E 'FAIL|blk_stress: writes' "$TMP/override.rout" | head -3 | tr '\n' ' '); $(tail -3 "$TMP/override.rerr" | tr '\n' ' ')"
	fi
	sock=$TMP/c2.sock
	rm -f "$TMP/fifo2"
	mkfifo "$TMP/fifo2"
	"$ISOLA" --api-sock "$sock" <"$TMP/fifo2" >"$TMP/c2.out" 2>"$TMP/c2.err" &
	pid=$!
	PIDS+=("$pid")
	exec 8>"$TMP/fifo2"
	for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
	api "$sock" PUT /snapshot/load "{\"snapshot_path\": \"$TMP/override.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$TMP/override.mem\"}, \"resume_vm\": true, \"drive_overrides\": [{\"drive_id\": \"d0\", \"path_on_host\": \"$TMP/c2.img\"}]}"
	c2=$CODE
	wait_for "$TMP/c2.out" 'blk_stress: [0-9]+ s:' 30
	printf k >&8 2>/dev/null
	wait_for "$TMP/c2.out" '^isola-guest: (PASS|FAIL)' 60
	exec 8>&-
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [[ $c2 == 204 ]] && grep -q '^PASS: every acknowledged write reads back intact' "$TMP/c2.out" &&
		grep -q "isola-blk: serving $TMP/c2.img" "$TMP/c2.err"; then
		ok "override: clone 2 (PUT /snapshot/load drive_overrides) served c2.img: $(grep '^PASS: every' "$TMP/c2.out" | cut -c7-)"
	else
		problem "override: clone 2: load $c2 $BODY: $(grep -E 'FAIL|blk_stress: writes' "$TMP/c2.out" | head -3 | tr '\n' ' '); $(tail -3 "$TMP/c2.err" | tr '\n' ' ')"
	fi
	if [[ $(md5sum <"$TMP/override.img") == "$base" ]]; then
		ok "override: the snapshot's image was not written"
	else
		problem "override: the snapshot's image changed: a clone wrote to it"
	fi
	cmp -s "$TMP/c1.img" "$TMP/override.img" && problem "override: clone 1 wrote nothing to c1.img"
	cmp -s "$TMP/c2.img" "$TMP/override.img" && problem "override: clone 2 wrote nothing to c2.img"
	"$ISOLA" restore --state "$TMP/override.state" --mem "$TMP/override.mem" \
		--drive-override "nosuch=$TMP/c1.img" </dev/null >/dev/null 2>"$TMP/nosuch.err"
	st=$?
	if [[ $st == 2 ]] && grep -q 'the snapshot has no drive "nosuch" to override' "$TMP/nosuch.err"; then
		ok "override: a drive the snapshot lacks: status 2, $(grep -o 'the snapshot has no drive[^(]*' "$TMP/nosuch.err")"
	else
		problem "override: --drive-override nosuch=...: status $st: $(tail -2 "$TMP/nosuch.err" | tr '\n' ' ')"
	fi
fi
fi

# ---- irq_cli / irq_mask: a pending interrupt is delivered after restore ----
for mode in cli mask; do
	want "irq_$mode" || continue
	truncate -s 8M "$TMP/irq_$mode.img"
	printf 'isola snapshot sector 0' | dd of="$TMP/irq_$mode.img" conv=notrunc status=none
	vm_json "irq_$mode" snap_irq "mode=$mode" "$TMP/irq_$mode.img"
	snapshot "irq_$mode" '^snap_irq: pending' || continue
	# the restored guest prints nothing until the key: send it once isola
	# has the VM running (core/main.c's "restored ...: ... running in")
	restore "irq_$mode" 'stderr:restored .*: .* running in '
	# the restored output starts after the snapshot: no "pending" again
	if [[ $ST == 1 ]] && grep -q '^PASS: the pending interrupt is delivered' "$TMP/irq_$mode.rout" &&
		! grep -q 'isola snap_irq guest' "$TMP/irq_$mode.rout"; then
		ok "irq_$mode: the interrupt pending at the snapshot was delivered after the restore ($(grep -o 'irqs [0-9]*' "$TMP/irq_$mode.rout"))"
	else
		problem "irq_$mode: status $ST: $(grep -E 'FAIL|PASS' "$TMP/irq_$mode.rout" | head -4 | tr '\n' ' '); $(tail -3 "$TMP/irq_$mode.rerr" | tr '\n' ' ')"
	fi
	# used by bad_files
	[[ $mode == cli ]] && cp "$TMP/irq_cli.state" "$TMP/good.state" && cp "$TMP/irq_cli.mem" "$TMP/good.mem"
done

# ---- net: isola-net's driver settings go through the state stream ----
# net_ping in a network namespace (as tests/system/net_guests.sh's
# net_state): it sets a new MAC with ADDR_SET and PROMISC off, pings from
# it, prints PAUSE and waits; snapshotted then, killed and restored, the new
# isola-net must get the filter from the snapshot (its log line) and the
# guest's pings from the new MAC after the pause must be answered.
if want net; then
if [[ $(id -u) != 0 || ! -c /dev/net/tun ]] || ! command -v ip >/dev/null; then
	echo "SKIP: net case: needs root, /dev/net/tun and ip(8)"
else
	NS=isola-snapnet$$ TAP=isns$$
	NSX="ip netns exec $NS"
	NETNS=$NS
	ip netns add "$NS" && $NSX ip link set lo up && $NSX ip tuntap add "$TAP" mode tap &&
		$NSX ip addr add 10.78.0.1/24 dev "$TAP" && $NSX ip link set "$TAP" up ||
		problem "net: could not make the namespace and the tap"
	$NSX sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	cat >"$TMP/net.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUESTS/net_ping.elf", "boot_args": "ip=10.78.0.2 peer=10.78.0.1 count=3 newmac pause_s=3 wait_s=1"},
 "network-interfaces": [{"iface_id": "net0", "host_dev_name": "$TAP"}],
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
EOF
	sock=$TMP/net.sock
	$NSX "$ISOLA" --api-sock "$sock" --config-file "$TMP/net.json" </dev/null >"$TMP/net.out" 2>"$TMP/net.err" &
	pid=$!
	PIDS+=("$pid")
	if wait_for "$TMP/net.out" 'net_ping: PAUSE' 60; then
		api "$sock" PATCH /vm '{"state": "Paused"}'
		api "$sock" PUT /snapshot/create "{\"snapshot_path\": \"$TMP/net.state\", \"mem_file_path\": \"$TMP/net.mem\"}"
		c1=$CODE
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		timeout 60 $NSX "$ISOLA" restore --state "$TMP/net.state" --mem "$TMP/net.mem" --timeout 40 \
			</dev/null >"$TMP/net.rout" 2>"$TMP/net.rerr"
		st=$?
		if [[ $c1 == 204 && $st == 1 ]] && grep -q '^PASS: pings from the new MAC answered after the pause' "$TMP/net.rout" &&
			grep -q "restored the driver's settings: promisc 0 allmulti 0" "$TMP/net.rerr"; then
			ok "net: $(grep -o "restored the driver's settings.*" "$TMP/net.rerr" | head -1); the pings from the new MAC after the restore were answered"
		else
			problem "net: snapshot $c1, restore status $st: $(grep -aE 'FAIL|PASS: pings' "$TMP/net.rout" | head -3 | tr '\r\n' '  '); $(grep -E 'restored|refused|ignored|error' "$TMP/net.rerr" | head -3 | tr '\n' ' ')"
		fi
	else
		problem "net: the guest did not reach PAUSE: $(tail -3 "$TMP/net.out" | tr '\r\n' '  '); $(tail -3 "$TMP/net.err" | tr '\n' ' ')"
		kill -KILL "$pid"
	fi
	ip netns del "$NS" 2>/dev/null
	NETNS=
fi
fi

# ---- bad_files: device sections missing, wrong or hostile ----
if want bad_files; then
# edit.py IN OUT OP: rewrite a state file (docs/snapshot.md "State file
# format"), checksums recomputed, so only the device check can refuse it
cat >"$TMP/edit.py" <<'EOF'
import struct, sys
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
src, dst, op = sys.argv[1], sys.argv[2], sys.argv[3]
buf = open(src, 'rb').read()
head = bytearray(buf[:104])
n = struct.unpack_from('<I', head, 84)[0]
secs = []
for i in range(n):
    t, inst, off, ln = struct.unpack_from('<IIQQ', buf, 104 + 32 * i)
    secs.append([t, inst, bytearray(buf[off:off + ln])])
DEVICE, RINGS, SERVER = 96, 97, 98
def sec(t, i=0):
    return next(s for s in secs if s[0] == t and s[1] == i)
if op == 'drop_rings':
    secs = [s for s in secs if s[0] != RINGS]
elif op == 'drop_device':      # the entry gone, its transport left behind
    secs = [s for s in secs if s[0] != DEVICE]
elif op == 'type':             # a transport of another virtio type (net)
    struct.pack_into('<H', sec(RINGS)[2], 0, 1)
elif op == 'queue_size':       # queue 0's size 3: not a power of two
    struct.pack_into('<H', sec(RINGS)[2], 40, 3)
elif op == 'option':           # a server option isola never passes
    d = sec(DEVICE)[2]
    i = d.find(b'--image\0')
    d[i:i + 8] = b'--debug\0'
elif op == 'server_state':     # the server's state stream spoiled
    s = sec(SERVER)[2]
    s[0] ^= 0xff
payload = bytearray()
table = bytearray()
off = 104 + 32 * len(secs)
for t, inst, data in secs:
    pad = (-off) % 8 if payload else 0
    payload += b'\0' * pad
    off += pad
    table += struct.pack('<IIQQII', t, inst, off, len(data), crc32c(bytes(data)), 0)
    payload += data
    off += len(data)
struct.pack_into('<I', head, 84, len(secs))
struct.pack_into('<Q', head, 88, 104 + len(table) + len(payload))
struct.pack_into('<I', head, 100, crc32c(bytes(head[:100]) + bytes(table)))
open(dst, 'wb').write(bytes(head) + bytes(table) + bytes(payload))
EOF
if [[ -f $TMP/good.state ]]; then
	python3 "$TMP/edit.py" "$TMP/good.state" "$TMP/same.state" none
	cmp -s "$TMP/good.state" "$TMP/same.state" || problem "bad_files: edit.py does not rewrite a file as isola writes it"
	# the spoiled files go to the ASan build too when it is there (make asan)
	restorers=("$ISOLA")
	[[ -x build/asan/isola && $ISOLA != */asan/* ]] && restorers+=(build/asan/isola)
	for isola in "${restorers[@]}"; do
	for c in "drop_rings no.virtio-pci.transport.section" "drop_device belongs.to.device.0.*not.whole" \
		"type transport.is.virtio.type.1" "queue_size queue.0's.size.3" \
		"option isola-blk.takes.no.option.'--debug'" \
		"server_state device.disk0:.starting.the.back-end:.SET_DEVICE_STATE_FD.*refused.the.saved.state"; do
		set -- $c
		python3 "$TMP/edit.py" "$TMP/good.state" "$TMP/$1.state" "$1"
		timeout 30 "$isola" restore --state "$TMP/$1.state" --mem "$TMP/good.mem" --console none </dev/null 2>"$TMP/$1.err"
		st=$?
		[[ $st == 2 ]] && grep -Eq "$2" "$TMP/$1.err" && ! grep -q 'Sanitizer\|forbidden' "$TMP/$1.err" &&
			ok "$isola: $1: status 2, $(grep -E "$2" "$TMP/$1.err" | head -1 | cut -c1-200)" ||
			problem "$isola: $1: status $st, want 2 and /$2/: $(head -3 "$TMP/$1.err" | tr '\n' ' ')"
	done
	done
else
	problem "bad_files: no snapshot to spoil (irq_cli failed)"
fi
fi

grep -q 'forbidden system call\|Sanitizer' "$TMP"/*.err "$TMP"/*.rerr 2>/dev/null &&
	problem "$(grep -h -m1 'forbidden system call\|Sanitizer' "$TMP"/*.err "$TMP"/*.rerr)"
if ((${#FAILURES[@]})); then
	echo "FAIL: ${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "PASS: snapshots of VMs with device servers"
