# The nested test's cases, run by L1's /init (isola.nested=test); sourced.
# Each case boots L2 on isola with its default protections and ends in one
# line "@@CASE NAME PASS|FAIL|SKIP WHY" that tests/system/linux_nested.sh
# turns into a test result.  isola.cases= on L1's command line (comma
# separated) runs a subset.

W=/tmp/nested
mkdir -p "$W"
ONLY=$(l1_arg cases)

selected() { [ -z "$ONLY" ] || echo ",$ONLY," | grep -q ",$1,"; }
result() { echo "@@CASE $1 $2 $3"; }

# l2_run NAME ARG... : run isola (the ARGs after the binary) with the serial
# console on stdio, live on L1's console as "L2| ..." and kept in
# $W/NAME.con (without the serial line's CRs); stderr in $W/NAME.err;
# isola's exit status in $W/NAME.st
l2_run() {
	name=$1
	shift
	echo "L1: [$name] isola $*"
	start=$(cut -d' ' -f1 /proc/uptime)
	: >"$W/$name.raw"
	# live on L1's console; a file, not a pipe, so that a process isola
	# leaves behind cannot hold the case open
	tail -f "$W/$name.raw" | tr -d '\r' | sed 's/^/    L2| /' &
	follower=$!
	timeout -s KILL "$STEP_TIMEOUT" "$ISOLA" "$@" </dev/null >"$W/$name.raw" 2>"$W/$name.err"
	st=$?
	sleep 1
	kill "$follower" 2>/dev/null
	killall tail 2>/dev/null
	tr -d '\r' <"$W/$name.raw" >"$W/$name.con"
	echo "$st" >"$W/$name.st"
	sed 's/^/    isola| /' "$W/$name.err"
	left=$(pidof isola isola-blk isola-rng)
	if [ -n "$left" ]; then
		echo "L1: [$name] processes left behind: $(echo $left)" | tee -a "$W/$name.err"
		killall -KILL isola-blk isola-rng isola 2>/dev/null
	fi
	echo "L1: [$name] isola exit status $st after $(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
}

# what every run must show; prints the reasons it fails, nothing if none
#   l2_common NAME WANT_STATUS
l2_common() {
	st=$(cat "$W/$1.st")
	[ "$st" = "$2" ] || echo "isola exit status $st, want $2$([ "$st" = 137 ] && echo " (killed after ${STEP_TIMEOUT} s)");"
	grep -q '^L2: init ' "$W/$1.con" || echo "L2 never reached /init;"
	grep -q '^L2: dmesg-unclean' "$W/$1.con" && echo "L2's kernel log: $(grep '^L2: dmesg-bad' "$W/$1.con" | head -n 3 | sed 's/^L2: dmesg-bad: //' | tr '\n' ' ');"
	grep -q '^L2: dmesg-clean' "$W/$1.con" || grep -q '^L2: dmesg-unclean' "$W/$1.con" || echo "L2 never checked its kernel log;"
	bad='forbidden system call|Sanitizer|sandbox:|NEEDS_RESET|needs a reset|giving up|left behind'
	[ -n "${EXPECT_KILLS:-}" ] || bad="$bad|killed by|restart"
	grep -E "$bad" "$W/$1.err" | head -n 2 | sed 's/$/;/'
}

# pass or fail NAME from the reasons given (empty: pass)
# (reasons joined from several checks: blanks alone are no reason)
verdict() {
	why=$(echo "$2" | tr '\n' ' ' | tr -s ' ' | sed 's/^ *//; s/ *$//')
	if [ -z "$why" ]; then result "$1" PASS "$3"; else result "$1" FAIL "$why"; fi
}

case_boot() { # CPUS [EXTRA ISOLA ARGS]
	cpus=$1
	shift
	name=boot-${cpus}cpu
	selected "$name" || return 0
	l2_run "$name" run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --cmdline "$L2_CMDLINE isola.mode=basic" \
		--memory 512M --cpus "$cpus" --console stdio "$@"
	why=$(l2_common "$name" 0)
	got=$(sed -n 's/^L2: init .*cpus=\([0-9]*\).*/\1/p' "$W/$name.con")
	[ -n "$got" ] && [ "$got" != "$cpus" ] && why="$why L2 counted $got CPUs, want $cpus;"
	verdict "$name" "$why" "L2 reached /init with $cpus vCPUs ($(sed -n 's/^L2: init .*\(run-init-at=[0-9.]*\).*/\1/p' "$W/$name.con") s), clean kernel log, powered off with status 0"
	if echo " $* " | grep -q ' --rng '; then
		why=
		grep -q '^L2: hwrng=virtio_rng' "$W/$name.con" || why="/dev/hwrng is not virtio_rng ($(grep '^L2: hwrng=' "$W/$name.con"));"
		grep -q '^L2: hwrng-read bytes=4096 nonzero=[1-9]' "$W/$name.con" || why="$why no 4 KiB read from /dev/hwrng ($(grep '^L2: hwrng-read' "$W/$name.con"));"
		grep -q 'isola-rng: sandboxed' "$W/$name.err" || why="$why isola-rng never said it was sandboxed;"
		verdict hwrng "$why" "L2 read 4 KiB from /dev/hwrng = virtio_rng through a sandboxed isola-rng"
	fi
}

# e2fsck -fn and debugfs checks of an ext4 image L2 wrote (rootfs-init)
check_rootfs_image() { # NAME IMAGE
	e2fsck -fn "$2" >"$W/$1.fsck" 2>&1 || echo "e2fsck -fn $2: status $? ($(tail -n 2 "$W/$1.fsck" | tr '\n' ' '));"
	md5=$(sed -n 's/^L2: rootfs blob-md5=\([0-9a-f]*\).*/\1/p' "$W/$1.con")
	[ -n "$md5" ] || echo "L2 wrote no blob;"
	l1md5=$(debugfs -R "cat /data/blob" "$2" 2>/dev/null | md5sum | cut -d' ' -f1)
	[ "$md5" = "$l1md5" ] || echo "/data/blob in the image: md5 $l1md5, L2 wrote $md5;"
	n=$(debugfs -R "ls -l /data" "$2" 2>/dev/null | grep -c ' small-')
	[ "$n" = 64 ] || echo "the image holds $n of L2's 64 small files;"
	f=$(debugfs -R "cat /data/small-63" "$2" 2>/dev/null)
	[ "$f" = "file 63 of the isola nested test" ] || echo "/data/small-63 reads '$f';"
	grep -q '^L2: rootfs reread-md5='"$md5" "$W/$1.con" || echo "L2 read back a different blob after dropping its caches;"
	grep -q '^L2: rootfs remounted read-only' "$W/$1.con" || echo "L2 could not remount its root read-only;"
}

case_ext4_root() {
	selected ext4-root || return 0
	cp /l2/rootfs.img "$W/root.img"
	l2_run ext4-root run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
		--cmdline "$L2_CMDLINE root=/dev/vda isola.mode=rootfs" --memory 512M --cpus 2 \
		--disk "path=$W/root.img" --console stdio
	why="$(l2_common ext4-root 0) $(check_rootfs_image ext4-root "$W/root.img")"
	verdict ext4-root "$why" \
		"L2 booted from ext4 on virtio-blk (switch_root), wrote 64 files and 4 MiB through the page cache; L1: e2fsck -fn clean, debugfs reads the same md5"
	rm -f "$W/root.img"
}

case_reboot() {
	selected reboot || return 0
	dd if=/dev/zero of="$W/mark.img" bs=1M count=1 2>/dev/null
	l2_run reboot run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --cmdline "$L2_CMDLINE isola.mode=reboot" \
		--memory 512M --cpus 1 --disk "path=$W/mark.img" --rng --on-reset reboot --console stdio
	why=$(l2_common reboot 0)
	n=$(grep -c '^L2: init ' "$W/reboot.con")
	[ "$n" = 2 ] || why="$why L2 booted $n times, want 2;"
	grep -q '^L2: second boot: found the first boot' "$W/reboot.con" || why="$why the second boot did not find the first boot's mark;"
	grep -q 'rebooting on the same device servers' "$W/reboot.err" || why="$why isola did not reboot on the same device servers;"
	[ "$(grep -c 'isola-blk: sandboxed' "$W/reboot.err")" = 1 ] || why="$why isola-blk started $(grep -c 'isola-blk: sandboxed' "$W/reboot.err") times, want once;"
	verdict reboot "$why" "reboot -f in L2 with --on-reset reboot: L2 booted again on the same isola-blk and isola-rng, found its first boot's mark, powered off with status 0"
}

# The API: a disk as the root device, as Firecracker's users boot.
case_api() {
	selected api || return 0
	cp /l2/rootfs.img "$W/api-root.img"
	sock=$W/api.sock
	rm -f "$sock"
	(
		sleep 1
		for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
		put() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" -X PUT "http://localhost$1" -d "$2"; }
		codes="$(put /boot-source "{\"kernel_image_path\": \"$L2_KERNEL\", \"initrd_path\": \"$L2_INITRD\", \"boot_args\": \"$L2_CMDLINE isola.mode=rootfs\"}")"
		codes="$codes $(put /machine-config '{"vcpu_count": 2, "mem_size_mib": 512}')"
		codes="$codes $(put /drives/root "{\"drive_id\": \"root\", \"path_on_host\": \"$W/api-root.img\", \"is_root_device\": true, \"is_read_only\": false}")"
		codes="$codes $(put /entropy '{}')"
		codes="$codes $(put /actions '{"action_type": "InstanceStart"}')"
		echo "$codes" >"$W/api.codes"
	) &
	client=$!
	l2_run api --api-sock "$sock"
	wait "$client"
	why="$(l2_common api 0) $(check_rootfs_image api "$W/api-root.img")"
	[ "$(cat "$W/api.codes")" = "204 204 204 204 204" ] || why="$why API answers $(cat "$W/api.codes"), want 204 to each of boot-source, machine-config, drives, entropy, InstanceStart;"
	verdict api "$why" "PUT boot-source, machine-config, drives (root device), entropy, InstanceStart over --api-sock: L2 booted from the ext4 disk, the image is fsck-clean, status 0"
	rm -f "$W/api-root.img"
}

case_config_file() {
	selected config-file || return 0
	cp /l2/rootfs.img "$W/cf-root.img"
	cat >"$W/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$L2_KERNEL", "initrd_path": "$L2_INITRD",
                  "boot_args": "$L2_CMDLINE isola.mode=rootfs"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 384},
  "drives": [{"drive_id": "root", "path_on_host": "$W/cf-root.img", "is_root_device": true, "is_read_only": false}],
  "entropy": {}
}
JSON
	l2_run config-file --config-file "$W/vm.json"
	why="$(l2_common config-file 0) $(check_rootfs_image config-file "$W/cf-root.img")"
	verdict config-file "$why" "--config-file with a root drive and entropy: L2 booted from ext4, the image is fsck-clean, status 0"
	rm -f "$W/cf-root.img"
}

# Fault injection: isola-blk SIGKILLed at random moments while L2 writes
# and fsyncs numbered records to the raw disk; afterwards L1 reads every
# acknowledged record from the image file.
case_fault() {
	selected fault-records || return 0
	records=$(l1_arg records)
	records=${records:-250}
	dd if=/dev/zero of="$W/rec.img" bs=1M count=4 2>/dev/null
	(
		# wait for the guest's first record, then kill at random moments
		for _ in $(seq 600); do grep -q '^L2: ACK 0' "$W/fault-records.raw" 2>/dev/null && break; sleep 0.1; done
		while ! grep -q '^L2: records-done' "$W/fault-records.raw" 2>/dev/null; do
			usleep $((150000 + RANDOM % 450000))
			killall -KILL isola-blk 2>/dev/null
			pidof isola >/dev/null || break
		done
	) &
	killer=$!
	l2_run fault-records run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
		--cmdline "$L2_CMDLINE isola.mode=records isola.records=$records" --memory 512M --cpus 1 \
		--disk "path=$W/rec.img" --console stdio
	kill "$killer" 2>/dev/null
	wait "$killer"
	why=$(EXPECT_KILLS=1 l2_common fault-records 0)
	# isola's own count: killall's status is not a count
	kills=$(grep -c 'isola-blk (pid [0-9]*) was killed by SIGKILL' "$W/fault-records.err")
	last=$(sed -n 's/^L2: ACK \([0-9]*\)$/\1/p' "$W/fault-records.con" | tail -n 1)
	grep -q '^L2: IOERR' "$W/fault-records.con" && why="$why L2 saw an I/O error: $(grep -m1 '^L2: IOERR' "$W/fault-records.con");"
	grep -q "^L2: records-done $records\$" "$W/fault-records.con" || why="$why L2 did not write all $records records;"
	[ "$kills" -ge 3 ] || why="$why only $kills kills landed;"
	if [ -n "$last" ]; then
		awk -v n="$last" 'BEGIN { for (i = 0; i <= n; i++) printf "REC %06d\n", i }' >"$W/rec.want"
		tr -d '\0' <"$W/rec.img" | head -n $((last + 1)) >"$W/rec.got"
		cmp -s "$W/rec.want" "$W/rec.got" || why="$why the image differs from the acknowledged records: $(diff "$W/rec.want" "$W/rec.got" | grep '^[-+]REC' | head -n 2 | tr '\n' ' ');"
	else
		why="$why no record acknowledged;"
	fi
	restarts=$(grep -c 'isola-blk is back after' "$W/fault-records.err")
	[ "$restarts" = "$kills" ] || why="$why $kills kills but $restarts restarts;"
	verdict fault-records "$why" "$kills SIGKILLs of isola-blk while L2 wrote and fsynced $records records, each followed by a restart: no I/O error in L2, all $((last + 1)) acknowledged records intact in the image"
}

case_boot 1
case_boot 2 --rng
case_boot 4
case_ext4_root
case_reboot
case_api
case_config_file
case_fault
