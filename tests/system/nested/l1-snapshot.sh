# The snapshot cases (issue 16, acceptance 2; docs/snapshot.md), sourced by
# l1-cases.sh.  L2 (isola.mode=snapcount, l2-lib.sh's l2_snapcount) counts
# for ever: each number written to its virtio disk and fsynced, then said
# on the console with its clocks; its virtio-net is on a tap in a namespace
# of L1's (l1-net.sh), so L1 pings it.  isola runs with its default
# protections.
#   snapshot         booted with --api-sock --config-file; after 8 numbers
#                    and a ping, PATCH /vm Paused, `isola snapshot`
#                    (PUT /snapshot/create, Full), SIGTERM; then
#                    `isola restore` in a new process: the console goes on
#                    from exactly the next number (the two consoles joined
#                    count 0, 1, 2, ... with no gap or repeat), every number
#                    said is in its sector of the image, the guest's clocks
#                    never go back, the jump over the time saved is at most
#                    the time L1 spent between the pause and the restore
#                    (isola restores kvmclock as it was: the guest sees
#                    little or no time pass) and they advance afterwards as
#                    L1's own, L1 pings L2 again, no new kernel complaint
#   snapshot-clones  5 VMs restored at once from that one snapshot, each
#                    with its own copy of the disk as the snapshot left it
#                    (--drive-override disk0=COPY) and its own namespace and
#                    tap (--net-override net0=TAP: the snapshot's tap does
#                    not exist there): each goes on from the next number,
#                    writes only its own copy, answers pings

SNAP_NS=isola-snap-$$
SNAP_TAP=tsnap$$
SNAP_LINES=8  # numbers before the snapshot
SNAP_AFTER=12 # numbers after the restore
CLONES=5
CLONE_AFTER=5

# snap_count FILE: how many numbers FILE's console said
snap_count() { grep -c '^L2: snap count [0-9]* .* end' "$1" 2>/dev/null; }

# snap_wait FILE N GONE: until FILE said N numbers (0), or isola ended
# (GONE: its pid, or a file that appears when it ended: l2_run's NAME.st)
# or STEP_TIMEOUT passed (1)
snap_wait() {
	i=0
	while [ "$i" -lt $((STEP_TIMEOUT * 5)) ]; do
		[ "$(snap_count "$1")" -ge "$2" ] && return 0
		case $3 in
		"") ;;
		/*) [ -e "$3" ] && return 1 ;;
		*) kill -0 "$3" 2>/dev/null || return 1 ;;
		esac
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# snap_ns NS TAP: a namespace with TAP at 10.99.0.1/24 (L2 is .2)
snap_ns() {
	$IP netns del "$1" 2>/dev/null
	$IP netns add "$1" && $IP -n "$1" link set lo up &&
		$IP -n "$1" tuntap add "$2" mode tap &&
		$IP -n "$1" addr add 10.99.0.1/24 dev "$2" && $IP -n "$1" link set "$2" up
}

# snap_ping NS COUNT: RECEIVED/SENT of COUNT pings of L2 from NS, after
# one answered ping (up to 20 s): a clone's new tap has a MAC its restored
# L2 has not seen (ARP first), and five restored L2s at once under nested
# TCG on a loaded host can take longer than one -W 3 ping to answer at all
# (a clone once answered 0/2 with no other complaint)
snap_ping() {
	$IP netns exec "$1" ping -c 1 -w 20 10.99.0.2 >/dev/null 2>&1
	$IP netns exec "$1" ping -c "$2" -W 3 10.99.0.2 2>&1 |
		sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\2\/\1/p'
}

# snap_core_pid: the isola core's pid (not its spawner, comm isola-spawner)
snap_core_pid() {
	for p in $(pidof isola); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = isola ] && echo "$p" && return
	done
}

# snap_joined FIRST SECOND: the guest's console across a restore: SECOND's
# bytes continue FIRST's (a line the pause cut is joined whole); the
# counter's lines only, "N UP RT", one a line
snap_joined() {
	cat "$1" "$2" | sed -n 's/^L2: snap count \([0-9]*\) up=\([0-9.]*\) rt=\([0-9]*\) end$/\1 \2 \3/p'
}

# snap_check_count FIRST SECOND AFTER: the reasons the joined console is not
# 0, 1, 2, ... with at least AFTER numbers past FIRST's last; prints the
# last number on the first line of $W/snap.last
snap_check_count() {
	k1=$(sed -n 's/^L2: snap count \([0-9]*\) .* end$/\1/p' "$1" | tail -n 1)
	snap_joined "$1" "$2" | awk -v k1="${k1:--1}" -v after="$3" -v out="$W/snap.last" '
		$1 != NR - 1 && !bad { bad = sprintf("number %d where %d was due (line %d of the joined console)", $1, NR - 1, NR) }
		{ last = $1 }
		END {
			print (NR ? last : -1) >out
			if (bad) print bad ";"
			if (last - k1 < after) printf "only %d numbers after the snapshot'"'"'s last (%d), want %d;\n", last - k1, k1, after
		}'
}

# snap_check_disk IMAGE LAST: sector N of IMAGE holds "CNT N" for N = 0..LAST
snap_check_disk() {
	awk -v n="$2" 'BEGIN { for (i = 0; i <= n; i++) printf "CNT %06d\n", i }' >"$W/snap.want"
	tr -d '\0' <"$1" | head -n $(($2 + 1)) >"$W/snap.got"
	cmp -s "$W/snap.want" "$W/snap.got" ||
		echo "$1 differs from the numbers said: $(diff "$W/snap.want" "$W/snap.got" | grep '^[-+]CNT' | head -n 2 | tr '\n' ' ');"
}

# snap_check_clock FIRST SECOND PAUSED_S RUN_S: the guest's clocks across
# the restore: neither goes back; the uptime's step over the restore is at
# most PAUSED_S (L1's seconds from the pause to the restore's end) + 2;
# after it, uptime advances no faster than L1's time (RUN_S: the restored
# run's seconds) and at least 0.1 s a number (each waits in sleep 0.1: a
# stalled clock would never wake it).  Prints the reasons, and the step in
# $W/snap.step.
snap_check_clock() {
	k1=$(sed -n 's/^L2: snap count \([0-9]*\) .* end$/\1/p' "$1" | tail -n 1)
	snap_joined "$1" "$2" | awk -v k1="${k1:--1}" -v paused="$3" -v run="$4" -v out="$W/snap.step" '
		NR > 1 && $2 < up { printf "uptime went back: %s after %s (number %d);\n", $2, up, $1 }
		NR > 1 && $3 < rt { printf "wall clock went back: %s after %s (number %d);\n", $3, rt, $1 }
		$1 == k1 { before = $2 }
		$1 == k1 + 1 { first = $2; step = $2 - before }
		{ up = $2; rt = $3; last = $1 }
		END {
			printf "%.2f s (uptime %s -> %s)\n", step, before, first >out
			if (first == "") exit
			if (step > paused + 2) printf "uptime jumped %.2f s over the restore, more than the %s s L1 spent from the pause to the restore;\n", step, paused
			if (last > k1 + 1) {
				adv = up - first
				if (adv > run + 1) printf "uptime advanced %.2f s in a restored run of %s s;\n", adv, run
				if (adv < 0.1 * (last - k1 - 1)) printf "uptime advanced only %.2f s over %d numbers (each sleeps 0.1 s): a stalled clock;\n", adv, last - k1 - 1
			}
		}'
}

# what a run's stderr and console must not show (l2_common's list)
snap_check_run() { # NAME WANT_STATUS
	st=$(cat "$W/$1.st")
	[ "$st" = "$2" ] || echo "$1: isola exit status $st, want $2;"
	grep -E 'forbidden system call|Sanitizer|sandbox:|NEEDS_RESET|needs a reset|giving up|left behind|killed by|restart' \
		"$W/$1.err" | head -n 2 | sed "s/^/$1: /; s/\$/;/"
	grep -m 2 '^L2: snap ioerr' "$W/$1.con" | sed "s/^/$1: /; s/\$/;/"
	# "Long readout interval, skipping watchdog check": the watchdog reads
	# both clocks over an interval it finds too long to judge (a vCPU
	# that did not run, or a restore), and skips; it still prints what
	# each clock advanced (cs_nsec: the TSC, wd_nsec: kvm-clock).  Apart
	# by more than the watchdog's own threshold (62.5 ms), one clock
	# stepped and the other did not: a restore that set KVM's time
	# instead of the guest's stepped kvm-clock 3.2 s past the TSC, which
	# the watchdog skipped as long
	sed -n 's/^L2: snap kmsg: .*Long readout interval.* cs_nsec: \([0-9]*\) wd_nsec: \([0-9]*\).*/\1 \2/p' "$W/$1.con" |
		awk -v n="$1" '{ d = $2 - $1; if (d < 0) d = -d; if (d > 62500000) printf "%s: kvm-clock and the TSC advanced %.3f s and %.3f s over one watchdog interval (a clock stepped);\n", n, $2 / 1e9, $1 / 1e9 }' | head -n 2
	# (other than that, such a line is no complaint)
	grep -E '^L2: snap kmsg: .*(WARNING|BUG|Call Trace|Oops|I/O error|stall|unstable|Marking|hung)' "$W/$1.con" |
		head -n 2 | sed "s/^/$1: /; s/\$/;/"
}

# L1's side of the snapshotted run, in the background
snap_drive_first() {
	d=$W/snapshot.drv
	: >"$d"
	for _ in $(seq 100); do [ -S "$SNAP_SOCK" ] && break; sleep 0.1; done
	if ! snap_wait "$W/snapshot.raw" "$SNAP_LINES" "$W/snapshot.st"; then
		echo "L2 said $(snap_count "$W/snapshot.raw") numbers in ${STEP_TIMEOUT} s, want $SNAP_LINES" >>"$d"
		kill -TERM "$(snap_core_pid)" 2>/dev/null
		return
	fi
	echo "ping-before $(snap_ping "$SNAP_NS" 2)" >>"$d"
	code=$(curl -s -o "$W/snap.resp" -w '%{http_code}' --unix-socket "$SNAP_SOCK" -X PATCH \
		http://localhost/vm -d '{"state": "Paused"}')
	cut -d' ' -f1 /proc/uptime >"$W/snap.paused-at"
	echo "pause $code $(cat "$W/snap.resp")" >>"$d"
	# paused a while, as a VM kept in a pool is: where KVM's clock and
	# the guest's kvm-clock drift apart (L1 has no stable TSC), a restore
	# of KVM's time would step L2's kvm-clock past its TSC by the drift
	# of these seconds (~3% here), which L2's clocksource watchdog reports
	sleep 3
	"$ISOLA" snapshot --api-sock "$SNAP_SOCK" --state "$W/snap.state" --mem "$W/snap.mem" >>"$d" 2>&1
	echo "snapshot-status $?" >>"$d"
	# the disk as the snapshot has it (the VM stays paused): the clones'
	cp "$W/snap.img" "$W/snap-base.img"
	echo "files state $(stat -c %s "$W/snap.state") mem $(stat -c %s "$W/snap.mem") on-disk-KiB $(du -k "$W/snap.mem" | cut -f1)" >>"$d"
	kill -TERM "$(snap_core_pid)"
}

# L1's side of the restored run: pings, numbers, then SIGTERM
snap_drive_restored() {
	d=$W/snap-restore.drv
	: >"$d"
	if snap_wait "$W/snap-restore.raw" 1 "$W/snap-restore.st"; then
		cut -d' ' -f1 /proc/uptime >"$W/snap.running-at"
		echo "ping-after $(snap_ping "$SNAP_NS" 3)" >>"$d"
		snap_wait "$W/snap-restore.raw" "$SNAP_AFTER" "$W/snap-restore.st"
	fi
	kill -TERM "$(snap_core_pid)" 2>/dev/null
}

case_snapshot() {
	selected snapshot || selected snapshot-clones || return 0
	rm -f "$W"/snap*
	snap_ns "$SNAP_NS" "$SNAP_TAP" || {
		for c in snapshot snapshot-clones; do selected "$c" && result "$c" FAIL "cannot make the namespace and tap"; done
		return
	}
	dd if=/dev/zero of="$W/snap.img" bs=1M count=2 2>/dev/null
	SNAP_SOCK=$W/snap.sock
	# init_on_free=1: L2's freed pages are zero, which the memory file
	# skips and a restore need not read (58 MB of 256 MiB instead of 98:
	# each restore under TCG went from 5-7 s to under 1 s)
	cat >"$W/snap.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$L2_KERNEL", "initrd_path": "$L2_NET_INITRD",
                  "boot_args": "$L2_CMDLINE init_on_free=1 isola.mode=snapcount"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "drives": [{"drive_id": "disk0", "path_on_host": "$W/snap.img", "is_root_device": false, "is_read_only": false}],
  "network-interfaces": [{"iface_id": "net0", "host_dev_name": "$SNAP_TAP"}]
}
JSON
	snap_drive_first &
	driver=$!
	L2_WRAP="$IP netns exec $SNAP_NS" l2_run snapshot --api-sock "$SNAP_SOCK" --config-file "$W/snap.json"
	wait "$driver"
	sed 's/^/    snap| /' "$W/snapshot.drv"
	why=$(snap_check_run snapshot 10)
	grep -q '^ping-before 2/2$' "$W/snapshot.drv" || why="$why before the snapshot L1 pinged L2: $(grep '^ping-before' "$W/snapshot.drv"), want 2/2;"
	grep -q '^pause 204' "$W/snapshot.drv" || why="$why PATCH /vm Paused: $(grep '^pause' "$W/snapshot.drv");"
	if ! grep -q '^snapshot-status 0$' "$W/snapshot.drv"; then
		why="$why isola snapshot failed: $(grep -v '^ping\|^pause' "$W/snapshot.drv" | head -n 3 | tr '\n' ' ');"
		for c in snapshot snapshot-clones; do selected "$c" && verdict "$c" "$why"; done
		$IP netns del "$SNAP_NS"
		return
	fi

	snap_drive_restored &
	driver=$!
	L2_WRAP="$IP netns exec $SNAP_NS" l2_run snap-restore restore --state "$W/snap.state" --mem "$W/snap.mem" --console stdio
	wait "$driver"
	sed 's/^/    snap| /' "$W/snap-restore.drv"
	why="$why $(snap_check_run snap-restore 10)"
	why="$why $(snap_check_count "$W/snapshot.con" "$W/snap-restore.con" "$SNAP_AFTER")"
	last=$(cat "$W/snap.last")
	why="$why $(snap_check_disk "$W/snap.img" "$last")"
	paused_s=$(awk -v a="$(cat "$W/snap.paused-at")" -v b="$(cat "$W/snap.running-at" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f", b - a }')
	why="$why $(snap_check_clock "$W/snapshot.con" "$W/snap-restore.con" "$paused_s" "$(cat "$W/snap-restore.secs")")"
	grep -q '^ping-after 3/3$' "$W/snap-restore.drv" || why="$why after the restore L1 pinged L2: $(grep '^ping-after' "$W/snap-restore.drv" || echo never), want 3/3;"
	restored=$(sed -n 's/.*restored .* in \([0-9.]* ms\).*/\1/p' "$W/snap-restore.err")
	k1=$(sed -n 's/^L2: snap count \([0-9]*\) .* end$/\1/p' "$W/snapshot.con" | tail -n 1)
	selected snapshot && verdict snapshot "$why" \
		"L2 ($(sed -n 's/^L2: snap clocksource=//p' "$W/snapshot.con"), 1 vCPU, 256 MiB, virtio disk and net) snapshotted at number $k1 ($(sed -n 's/^files //p' "$W/snapshot.drv" | head -n 1)), restored by isola restore in a new process (running in ${restored:-?}; L2's watchdog watched its TSC: $(sed -n 's/^L2: snap tsc-watched=//p' "$W/snapshot.con")): went on from $((k1 + 1)) to $last, every number on the disk, pings 3/3; uptime stepped $(cat "$W/snap.step") over the ${paused_s} s from pause to running, never back, advancing with L1's clock"
	$IP netns del "$SNAP_NS"
	selected snapshot-clones && case_snapshot_clones
}

case_snapshot_clones() {
	pids=
	start=$(cut -d' ' -f1 /proc/uptime)
	md5_base=$(md5sum <"$W/snap-base.img")
	for k in $(seq "$CLONES"); do
		cp "$W/snap-base.img" "$W/snapc$k.img"
		if ! snap_ns "$SNAP_NS-$k" "$SNAP_TAP-$k"; then
			result snapshot-clones FAIL "cannot make namespace $k"
			return
		fi
		timeout -s KILL "$STEP_TIMEOUT" "$IP" netns exec "$SNAP_NS-$k" "$ISOLA" restore \
			--state "$W/snap.state" --mem "$W/snap.mem" --console stdio \
			--drive-override "disk0=$W/snapc$k.img" --net-override "net0=$SNAP_TAP-$k" \
			</dev/null >"$W/snapc$k.raw" 2>"$W/snapc$k.err" &
		pids="$pids $!"
	done
	echo "L1: [snapshot-clones] isola restore x $CLONES at once, each --drive-override disk0=$W/snapcK.img --net-override net0=$SNAP_TAP-K in $SNAP_NS-K: pids$pids"
	k=0
	for p in $pids; do
		k=$((k + 1))
		snap_wait "$W/snapc$k.raw" "$CLONE_AFTER" "$p"
	done
	k=0
	for p in $pids; do
		k=$((k + 1))
		echo "ping $(snap_ping "$SNAP_NS-$k" 2)" >"$W/snapc$k.drv"
	done
	secs=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	k=0
	for p in $pids; do
		k=$((k + 1))
		wait "$p"
		echo "$?" >"$W/snapc$k.st"
		tr -d '\r' <"$W/snapc$k.raw" >"$W/snapc$k.con"
		sed "s/^/    clone$k| /" "$W/snapc$k.err" | tail -n 5
		grep '^L2: snap' "$W/snapc$k.con" | head -n 2 | sed "s/^/    clone$k L2| /"
		grep '^L2: snap' "$W/snapc$k.con" | tail -n 1 | sed "s/^/    clone$k L2| /"
	done
	why=
	firsts=
	for k in $(seq "$CLONES"); do
		why="$why $(snap_check_run "snapc$k" 10)"
		why="$why $(snap_check_count "$W/snapshot.con" "$W/snapc$k.con" "$CLONE_AFTER" | sed "s/^/clone $k: /")"
		last=$(cat "$W/snap.last")
		firsts="$firsts $last"
		why="$why $(snap_check_disk "$W/snapc$k.img" "$last")"
		grep -q '^ping 2/2$' "$W/snapc$k.drv" || why="$why clone $k answered $(cat "$W/snapc$k.drv"), want ping 2/2;"
	done
	[ "$(md5sum <"$W/snap-base.img")" = "$md5_base" ] || why="$why the snapshot's disk copy changed;"
	k1=$(sed -n 's/^L2: snap count \([0-9]*\) .* end$/\1/p' "$W/snapshot.con" | tail -n 1)
	verdict snapshot-clones "$why" \
		"$CLONES clones restored at once from the snapshot at number $k1, each with its own disk copy (--drive-override) and tap in its own namespace (--net-override): each went on from $((k1 + 1)) (to$firsts), every number on its own copy, pings 2/2 each, all within $secs s"
	for k in $(seq "$CLONES"); do $IP netns del "$SNAP_NS-$k"; done
	killall -KILL isola-blk isola-net isola 2>/dev/null
}
