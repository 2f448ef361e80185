# The nested test's cases, run by L1's /init (isola.nested=test); sourced.
# Each case boots L2 on isola with its default protections and ends in one
# line "@@CASE NAME PASS|FAIL|SKIP WHY" that tests/system/linux_nested.sh
# turns into a test result.  isola.cases= on L1's command line (comma
# separated) runs a subset.

W=/tmp/nested
mkdir -p "$W"
ONLY=$(l1_arg cases)

selected() { [ -z "$ONLY" ] || echo ",$ONLY," | grep -q ",$1,"; }
# L1's uptime in seconds, and the seconds since an earlier one (to 0.1 s)
l1_uptime() { cut -d' ' -f1 /proc/uptime; }
secs_since() { awk -v a="$1" -v b="$(l1_uptime)" 'BEGIN { printf "%.1f\n", b - a }'; }
# (L1's uptime at each result: where the nested run's minutes go)
result() {
	echo "L1: [$1] done at $(l1_uptime) s of L1's uptime"
	echo "@@CASE $1 $2 $3"
}

# l2_run NAME ARG... : run isola (the ARGs after the binary; $L2_WRAP
# before it, if set) with the serial console on stdio, live on L1's console as "L2| ..." and kept in
# $W/NAME.con (without the serial line's CRs); stderr in $W/NAME.err;
# isola's exit status in $W/NAME.st
l2_run() {
	name=$1
	shift
	echo "L1: [$name] isola $*"
	start=$(l1_uptime)
	: >"$W/$name.raw"
	[ -w /sys/kernel/tracing/trace ] && : >/sys/kernel/tracing/trace
	# live on L1's console; a file, not a pipe, so that a process isola
	# leaves behind cannot hold the case open
	tail -f "$W/$name.raw" | tr -d '\r' | sed 's/^/    L2| /' &
	follower=$!
	# shellcheck disable=SC2086 # L2_WRAP: a command prefix, or nothing
	timeout -s KILL "$STEP_TIMEOUT" $L2_WRAP "$ISOLA" "$@" </dev/null >"$W/$name.raw" 2>"$W/$name.err"
	st=$?
	sleep 1
	kill "$follower" 2>/dev/null
	killall tail 2>/dev/null
	tr -d '\r' <"$W/$name.raw" >"$W/$name.con"
	echo "$st" >"$W/$name.st"
	# a triple fault: L1's KVM trace of L2's last exits (l1-init) goes
	# with isola's stderr into the case's report
	if [ "$st" = 6 ] && [ -r /sys/kernel/tracing/trace ]; then
		grep -v '^#' /sys/kernel/tracing/trace | tail -n 60 | sed 's/^ *//; s/^/kvm-trace: /' >>"$W/$name.err"
	fi
	sed 's/^/    isola| /' "$W/$name.err"
	left=$(pidof isola isola-blk isola-rng isola-net isola-vsock isola-fs virtiofsd qemu-system-x86_64)
	if [ -n "$left" ]; then
		echo "L1: [$name] processes left behind: $(echo $left)" | tee -a "$W/$name.err"
		killall -KILL isola-blk isola-rng isola-net isola-vsock isola-fs virtiofsd isola qemu-system-x86_64 2>/dev/null
	fi
	secs_since "$start" >"$W/$name.secs"
	echo "L1: [$name] isola exit status $st after $(cat "$W/$name.secs") s"
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
# (RETRIED: what earlier L2 boots of the case ended in, net_boot; said
# with the result, pass or fail)
verdict() {
	why=$(echo "$2" | tr '\n' ' ' | tr -s ' ' | sed 's/^ *//; s/ *$//')
	if [ -z "$why" ]; then result "$1" PASS "$3${RETRIED:+; $RETRIED}"; else result "$1" FAIL "$why${RETRIED:+ ($RETRIED)}"; fi
}

# l2_died_the_emulators_way NAME: isola's status 6 with L2's vCPU
# triple-faulted at the reset vector (RIP 0xfff0: KVM's SVM shutdown
# intercept reset it), the emulator's failure of docs/linux.md "L1's own
# failures" -- not proven, so every such boot is reported
l2_died_the_emulators_way() {
	[ -e "$W/$1.lost" ] && return 0 # l1-net.sh net_stall_dump
	[ "$(cat "$W/$1.st" 2>/dev/null)" = 6 ] && grep -q 'triple fault on vCPU [0-9]* (RIP 0xfff0)' "$W/$1.err"
}

# what l2_died_the_emulators_way saw, for the report
l2_lost_how() {
	if [ -e "$W/$1.lost" ]; then
		echo "stopped in a nested page-fault loop ($(cat "$W/$1.lost"))"
	else
		echo "triple-faulted at the reset vector"
	fi
}

# l2_boot ONCE NAME ARG...: ONCE NAME ARG... (l2_run, or net_boot_once),
# and up to two more boots of L2 when one is lost the emulator's way
# (l2_died_the_emulators_way): another boot in this L1 costs ~10 s, another
# L1 (linux_nested.sh's retry) about two minutes.  $RETRIED says what each
# lost boot ended in, when, and in which network step (verdict reports it
# with the result, pass or fail; the caller clears it after its verdicts);
# each lost boot's console, stderr and driver log are kept as NAME.bootN.*.
# Fails when ONCE does.
l2_boot() {
	boot_once=$1
	shift
	RETRIED=
	boot=1
	while :; do
		"$boot_once" "$@" || return 1
		[ "$boot" -lt 3 ] && l2_died_the_emulators_way "$1" || break
		lost="L2 boot $boot of 3 $(l2_lost_how "$1") after $(cat "$W/$1.secs") s$(grep -sE '^(udp|tcp|kill-tcp): ' "$W/$1.drv" | tail -n 1 | sed 's/^\([a-z-]*\): .*/ in \1/')"
		RETRIED="${RETRIED:+$RETRIED, }$lost"
		echo "L1: [$1] $lost (the emulator's, docs/linux.md); booting it again"
		for f in con err drv; do cp "$W/$1.$f" "$W/$1.boot$boot.$f" 2>/dev/null; done
		boot=$((boot + 1))
	done
}

case_boot() { # CPUS [EXTRA ISOLA ARGS]
	cpus=$1
	shift
	name=boot-${cpus}cpu
	selected "$name" || return 0
	l2_boot l2_run "$name" run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --cmdline "$L2_CMDLINE isola.mode=basic" \
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
	RETRIED=
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

# acpi=off, as Firecracker's guests boot (Kata passes its command line):
# L2 describes its platform from the MP table (arch/x86/mptable.c).  L2's
# kernel is Debian's generic one (nested/build.sh nested_mp_kernel): the
# cloud kernel has no CONFIG_X86_MPPARSE and with acpi=off finds no APIC at
# all (then nothing interrupts it: isola has no 8259).  No ACPI, so no
# power-off: L2 ends with reboot -f, reboot=k's i8042 reset, which ends
# isola with status 4.
case_acpi_off() {
	selected acpi-off || return 0
	if [ ! -e /l2/vmlinuz-mp ]; then
		result acpi-off SKIP "no kernel that reads the MP table in L1 (the host needs linux-image-amd64: Debian's cloud kernel has no CONFIG_X86_MPPARSE)"
		return 0
	fi
	dd if=/dev/zero of="$W/acpioff.img" bs=1M count=1 2>/dev/null
	printf 'isola-acpioff-mark' | dd of="$W/acpioff.img" conv=notrunc 2>/dev/null
	l2_run acpi-off run --kernel /l2/vmlinuz-mp --initrd /l2/l2-mp.cpio.gz \
		--cmdline "$L2_CMDLINE isola.mode=acpioff acpi=off" --memory 512M --cpus 2 \
		--disk "path=$W/acpioff.img" --console stdio
	c=$W/acpi-off.con
	why=$(l2_common acpi-off 4)
	got=$(sed -n 's/^L2: init .*cpus=\([0-9]*\).*/\1/p' "$c")
	[ "$got" = 2 ] || why="$why L2 counted ${got:-no} CPUs, want 2;"
	grep -q '^L2: acpioff mp-spec=1 mp-processors=2 acpi-tables=0$' "$c" ||
		why="$why L2 did not take its 2 CPUs from the MP table without ACPI ($(grep '^L2: acpioff mp-spec' "$c"));"
	grep -q '^L2: acpioff serial=IO-APIC *4-edge$' "$c" || why="$why ttyS0 is not on IOAPIC pin 4 ($(grep '^L2: acpioff serial' "$c"));"
	grep -q '^L2: acpioff clockevent=lapic-deadline apic-timer-disabled=0$' "$c" ||
		why="$why L2's tick is not the LAPIC's TSC-deadline timer ($(grep '^L2: acpioff clockevent' "$c"));"
	grep -q '^L2: acpioff slept 1 s$' "$c" || why="$why sleep 1 never returned in L2 (no tick);"
	grep -q '^L2: acpioff sector0=isola-acpioff-mark$' "$c" || why="$why L2 read $(grep '^L2: acpioff sector0' "$c") from /dev/vda;"
	[ "$(dd if="$W/acpioff.img" bs=512 skip=1 count=1 2>/dev/null | tr -d '\0')" = written-by-l2 ] ||
		why="$why L2's write is not in sector 1 of the image;"
	grep -q '^L2: reboot' "$c" || why="$why L2 never got to reboot -f;"
	verdict acpi-off "$why" "acpi=off, 2 vCPUs: L2 found both CPUs and the IOAPIC in the MP table (ttyS0 on IOAPIC pin 4), ticks with the TSC-deadline LAPIC timer, read and wrote its virtio disk, reboot -f ended isola with status 4"
	rm -f "$W/acpioff.img"
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

# PATCH /drives after start (issue 13): L2's /dev/vda changes image under
# it; L2 sees the new size (config change interrupt) and the new data.
case_drive_patch() {
	selected drive-patch || return 0
	sock=$W/dp.sock
	rm -f "$sock" "$W/dp-old.img" "$W/dp-new.img"
	dd if=/dev/zero of="$W/dp-old.img" bs=1M count=4 2>/dev/null
	dd if=/dev/zero of="$W/dp-new.img" bs=1M count=8 2>/dev/null
	printf 'isola-old-image' | dd of="$W/dp-old.img" conv=notrunc 2>/dev/null
	printf 'isola-new-image' | dd of="$W/dp-new.img" conv=notrunc 2>/dev/null
	(
		sleep 1
		for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
		req() { curl -s -o "$W/dp.resp" -w '%{http_code}' --unix-socket "$sock" -X "$1" "http://localhost$2" -d "$3"; }
		codes="$(req PUT /boot-source "{\"kernel_image_path\": \"$L2_KERNEL\", \"initrd_path\": \"$L2_INITRD\", \"boot_args\": \"$L2_CMDLINE isola.mode=drivepatch\"}")"
		codes="$codes $(req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 384}')"
		codes="$codes $(req PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$W/dp-old.img\", \"is_root_device\": false}")"
		codes="$codes $(req PUT /actions '{"action_type": "InstanceStart"}')"
		for _ in $(seq 1800); do grep -q '^L2: drivepatch ready' "$W/drive-patch.raw" 2>/dev/null && break; sleep 0.1; done
		codes="$codes $(req PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$W/dp-new.img\"}")"
		echo "$codes" >"$W/dp.codes"
		cat "$W/dp.resp" >>"$W/dp.codes"
	) &
	client=$!
	l2_run drive-patch --api-sock "$sock"
	wait "$client"
	why=$(l2_common drive-patch 0)
	[ "$(head -n 1 "$W/dp.codes")" = "204 204 204 204 204" ] || why="$why API answers $(cat "$W/dp.codes"), want 204 to boot-source, machine-config, drives, InstanceStart, PATCH;"
	grep -q '^L2: drivepatch before size=8192 sector0=isola-old-image$' "$W/drive-patch.con" || why="$why before: $(grep '^L2: drivepatch before' "$W/drive-patch.con"), want size=8192 sector0=isola-old-image;"
	grep -q '^L2: drivepatch after size=16384 sector0=isola-new-image sector1=$' "$W/drive-patch.con" || why="$why after: $(grep '^L2: drivepatch after' "$W/drive-patch.con"), want size=16384 sector0=isola-new-image and an empty sector 1;"
	sec() { dd if="$1" bs=512 skip="$2" count=1 2>/dev/null | tr -d '\0'; }
	[ "$(sec "$W/dp-old.img" 1)" = written-before ] || why="$why old image's sector 1: '$(sec "$W/dp-old.img" 1)', want written-before;"
	[ -z "$(sec "$W/dp-old.img" 2)" ] || why="$why old image's sector 2 was written after the PATCH;"
	[ "$(sec "$W/dp-new.img" 2)" = written-after ] || why="$why new image's sector 2: '$(sec "$W/dp-new.img" 2)', want written-after;"
	grep -q 'now served from' "$W/drive-patch.err" || why="$why isola did not log the handover;"
	verdict drive-patch "$why" "PATCH /drives/data after InstanceStart: L2's /sys/block/vda/size went 8192 -> 16384 (config change interrupt), L2 read the old image's marker before and the new one's after; L1: the write before the PATCH is on the old image only, the one after on the new one"
	rm -f "$W/dp-old.img" "$W/dp-new.img"
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

# Live upgrade (issue 16, item 5; docs/api.md "Live upgrade of a device
# server"): while L2 writes and fsyncs numbered records, isola-blk next to
# isola is replaced by a marked copy (written aside, renamed over it) and
# isola gets SIGUSR2, every 0.3-0.8 s, under restart=never (a loss charged
# to the budget would give the disk up).  Each upgrade is logged as one,
# the new server runs the new file (its marker in /proc/PID/exe), L2 sees
# no I/O error and L1 finds every acknowledged record in the image.
case_live_upgrade() {
	selected live-upgrade || return 0
	records=$(l1_arg records)
	records=${records:-250}
	blk=$(dirname "$ISOLA")/isola-blk
	cp "$blk" "$W/isola-blk.orig"
	dd if=/dev/zero of="$W/lu.img" bs=1M count=4 2>/dev/null
	: >"$W/lu.checks"
	(
		for _ in $(seq 600); do grep -q '^L2: ACK 0' "$W/live-upgrade.raw" 2>/dev/null && break; sleep 0.1; done
		n=0
		while ! grep -q '^L2: records-done' "$W/live-upgrade.raw" 2>/dev/null; do
			usleep $((300000 + RANDOM % 500000))
			vmm=$(pidof isola) || break
			n=$((n + 1))
			cp "$W/isola-blk.orig" "$blk.new"
			printf '\nisola-live-upgrade build %d\n' "$n" >>"$blk.new"
			mv -f "$blk.new" "$blk"
			kill -USR2 "$vmm" || break
			echo "sent $n" >>"$W/lu.checks"
			for _ in $(seq 100); do
				[ "$(grep -c 'isola-blk upgraded in' "$W/live-upgrade.err")" -ge "$n" ] && break
				sleep 0.1
			done
			new=$(sed -n 's/.*isola-blk upgraded in .* -> \([0-9]*\),.*/\1/p' "$W/live-upgrade.err" | tail -n 1)
			if [ -n "$new" ] && grep -q "isola-live-upgrade build $n\$" "/proc/$new/exe" 2>/dev/null; then
				echo "runs $n" >>"$W/lu.checks"
			elif grep -q '^L2: records-done' "$W/live-upgrade.raw"; then
				: # the VM ended meanwhile: nothing to look at
			else
				echo "bad $n: pid '$new' does not run build $n" >>"$W/lu.checks"
			fi
		done
	) &
	upgrader=$!
	l2_run live-upgrade run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" \
		--cmdline "$L2_CMDLINE isola.mode=records isola.records=$records" --memory 512M --cpus 1 \
		--disk "path=$W/lu.img,restart=never" --console stdio
	kill "$upgrader" 2>/dev/null
	wait "$upgrader"
	cp "$W/isola-blk.orig" "$blk" # the cases after this one run the build's own
	why=$(l2_common live-upgrade 0)
	sent=$(grep -c '^sent ' "$W/lu.checks")
	runs=$(grep -c '^runs ' "$W/lu.checks")
	upgrades=$(grep -c 'isola-blk upgraded in' "$W/live-upgrade.err")
	why="$why$(grep '^bad ' "$W/lu.checks" | head -n 2 | tr '\n' ';')"
	[ "$runs" -ge 3 ] || why="$why only $runs upgrades were seen running the new build ($sent sent);"
	# a SIGUSR2 that lands as the VM stops upgrades nothing: at most one short
	[ "$upgrades" -ge $((sent - 1)) ] && [ "$upgrades" -le "$sent" ] || why="$why $sent SIGUSR2 but $upgrades upgrades;"
	grep -q 'was killed by\|is back after\|handover to the new' "$W/live-upgrade.err" && why="$why isola logged a crash or restart: $(grep -m1 'was killed by\|is back after\|handover to the new' "$W/live-upgrade.err");"
	last=$(sed -n 's/^L2: ACK \([0-9]*\)$/\1/p' "$W/live-upgrade.con" | tail -n 1)
	grep -q '^L2: IOERR' "$W/live-upgrade.con" && why="$why L2 saw an I/O error: $(grep -m1 '^L2: IOERR' "$W/live-upgrade.con");"
	grep -q "^L2: records-done $records\$" "$W/live-upgrade.con" || why="$why L2 did not write all $records records;"
	if [ -n "$last" ]; then
		awk -v n="$last" 'BEGIN { for (i = 0; i <= n; i++) printf "REC %06d\n", i }' >"$W/lu.want"
		tr -d '\0' <"$W/lu.img" | head -n $((last + 1)) >"$W/lu.got"
		cmp -s "$W/lu.want" "$W/lu.got" || why="$why the image differs from the acknowledged records: $(diff "$W/lu.want" "$W/lu.got" | grep '^[-+]REC' | head -n 2 | tr '\n' ' ');"
	else
		why="$why no record acknowledged;"
	fi
	verdict live-upgrade "$why" "$upgrades live upgrades of isola-blk by SIGUSR2 (restart=never) while L2 wrote and fsynced $records records, each to a new file renamed over the old one and seen running: no I/O error in L2, all $((last + 1)) acknowledged records intact, no crash or restart logged"
}

# ---- network (issue 12): L2's virtio-net on a tap in L1 ----
. /nested/l1-net.sh
. /nested/l1-orchestrators.sh
. /nested/l1-vsock.sh
. /nested/l1-fs.sh
. /nested/l1-snapshot.sh
# isola.netvmm=qemu or qemu-vhost: the same cases with QEMU in L1 as L2's
# VMM (NESTED_QEMU=1 NET_VMM=qemu): the control experiment for "is it isola
# or L1?"; the kill case then skips
NET_VMM=$(l1_arg netvmm)
NET_VMM=${NET_VMM:-isola}
NET_MIB=$(l1_arg netmib)
NET_MIB=${NET_MIB:-64}

# net_kill_transfer D: a TCP transfer during which isola-net is SIGKILLed
# after each 32 MiB moved (3 kills), each once the traffic flows again
net_kill_transfer() {
	k=$W/kill.out
	nsx $NETTEST -p "kill-tcp: " tcp "$NET_L2" "$NET_PORT" "$NET_MIB" "$NET_MIB" >"$k" 2>&1 &
	t=$!
	kills=0
	for at in 2 4 6; do
		while kill -0 "$t" 2>/dev/null && [ "$(grep -c 'progress' "$k")" -lt "$at" ]; do sleep 0.1; done
		kill -0 "$t" 2>/dev/null || break
		pid=$(pidof isola-net)
		if [ -n "$pid" ] && kill -KILL "$pid"; then
			kills=$((kills + 1))
			echo "killed isola-net (pid $pid) after $(grep progress "$k" | tail -n 1 | sed 's/.*progress //')" >>"$1"
		fi
	done
	wait "$t"
	echo "kill-tcp-status $?" >>"$1"
	cat "$k" >>"$1"
	echo "kills $kills" >>"$1"
}

# net_drive NAME CONNS KILL(0|1): L1's side of a network case, in the
# background while L2 runs; everything it sees goes to $W/NAME.drv
net_drive() {
	d=$W/$1.drv
	: >"$d"
	net_t0=$(l1_uptime)
	if ! net_wait_ready "$W/$1.raw" "$W/$1.st"; then
		echo "L2 never said it serves" >>"$d"
		return
	fi
	net_step_time "$1" ready
	# a step still running 20 s before the case's timeout: the rings'
	# state while isola-net lives (the check of .st: a watchdog that
	# outlives this driver does nothing once isola has ended)
	(
		sleep $((STEP_TIMEOUT - 20))
		[ -e "$W/$1.st" ] || net_stall_dump "$1" cut-off
	) &
	watchdog=$!
	# net_boot_once ends it with the driver: one left from a lost boot
	# would dump into the next boot's log (net_boot removes the .st)
	echo "$watchdog" >"$W/$1.watchdog"
	p=$(net_ping)
	echo "ping-l2 $p" >>"$d"
	[ "$p" = 5/5 ] || net_stall_dump "$1" ping
	net_step_time "$1" ping
	nsx $NETTEST -p "udp: " udp "$NET_L2" "$NET_PORT" 10000 >>"$d" 2>&1
	st=$?
	echo "udp-status $st" >>"$d"
	[ "$st" = 0 ] || net_stall_dump "$1" udp
	net_step_time "$1" udp
	nsx $NETTEST -p "tcp: " tcp "$NET_L2" "$NET_PORT" "$NET_MIB" "$NET_MIB" "$2" >>"$d" 2>&1
	st=$?
	echo "tcp-status $st" >>"$d"
	[ "$st" = 0 ] || net_stall_dump "$1" tcp
	net_step_time "$1" tcp
	if [ "$3" = 1 ]; then
		net_kill_transfer "$d"
		net_step_time "$1" kill-tcp
	fi
	net_quit >>"$d" 2>&1
	echo "quit-status $?" >>"$d"
	kill "$watchdog" 2>/dev/null
	net_step_time "$1" quit
	quit_at=$(l1_uptime)
	# After the quit L2 only reports, checks its kernel log and powers off
	# (~2 s here).  One still running 45 s later is stuck (CI once saw
	# every transfer pass and isola killed at the step's timeout, L2 silent
	# after the quit): the rings and the vCPUs' state now, while they can
	# still be read, and an L2 lost the emulator's way is ended and booted
	# again (net_stall_dump).  Counted on L1's clock, not in sleeps.
	until [ -e "$W/$1.st" ] || [ "$(secs_since "$quit_at" | cut -d. -f1)" -ge 45 ]; do
		sleep 0.5
	done
	[ -e "$W/$1.st" ] || net_stall_dump "$1" after-quit
}

# net_step_time NAME STEP: when STEP ended, in seconds since the driver
# started (net_drive's $net_t0, just before isola), into NAME's driver log:
# where a slow case's time went
net_step_time() {
	echo "step $2 ended $(secs_since "$net_t0") s after isola started" >>"$W/$1.drv"
}

# net_boot NAME QUEUES OFFLOADS CPUS KILL: L2 on $NET_VMM with a virtio-net
# on a fresh tap, driven from L1.  An L2 lost the emulator's way
# (l2_died_the_emulators_way: a reset-vector triple fault, or a vCPU
# caught in a nested page-fault loop) is booted again, up to 3 boots in all, each
# from the start on a fresh tap: a network boot has thousands of interrupts
# and exits, where QEMU's nested SVM loses L2 most (CI: 4 L1 runs in a row
# lost the same boot).  $RETRIED says what each lost boot ended in and
# when; the console and trace of every boot stay in L1's log.
net_boot() { l2_boot net_boot_once "$@"; }

net_boot_once() {
	if ! net_setup "$2"; then
		echo "cannot make the namespace and tap" >"$W/$1.setup"
		return 1
	fi
	net_vmm_args "$NET_VMM" "$2" "$3" "$4"
	rm -f "$W/$1.st" "$W/$1.raw" "$W/$1.lost"
	net_drive "$1" "$2" "$5" &
	driver=$!
	saved=$ISOLA
	# shellcheck disable=SC2086 # a command line, split into words on purpose
	set -- "$1" $NET_CMD
	n=$1
	ISOLA=$2
	shift 2
	L2_WRAP="$IP netns exec $NET_NS" l2_run "$n" "$@" "$NET_APPEND_OPT" "$L2_CMDLINE isola.mode=net"
	ISOLA=$saved
	L2_WRAP=
	# L2 is gone: a driver still waiting on it has nothing left to see,
	# nor has its watchdog
	kill "$driver" 2>/dev/null
	[ -s "$W/$n.watchdog" ] && kill "$(cat "$W/$n.watchdog")" 2>/dev/null
	rm -f "$W/$n.watchdog"
	killall -KILL nettest 2>/dev/null
	wait "$driver"
	sed 's/^/    net| /' "$W/$n.drv"
	net_teardown
}

# net_check_link NAME QUEUES OFFLOADS: the reasons the link part fails
net_check_link() {
	c=$W/$1.con
	d=$W/$1.drv
	grep -q "^L2: net eth0 driver=virtio_net .* rxq=$2 txq=$2\$" "$c" ||
		echo "L2's eth0: $(grep '^L2: net eth0' "$c" || echo none), want virtio_net with $2 queue pairs;"
	off=$(grep '^L2: net offloads' "$c")
	# virtio 1.2 §5.1.3: CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, GUEST_TSO6 8,
	# HOST_TSO4 11, HOST_TSO6 12 -- as negotiated (ethtool's view is the
	# kernel's, which may differ from what the device offered)
	bits=$(sed -n 's/^L2: net features //p' "$c")
	for b in 0 1 7 8 11 12; do
		v=$(echo "$bits" | cut -c$((b + 1)))
		if [ "$3" = off ] && [ "$v" != 0 ]; then
			echo "offloads=off but L2 negotiated feature bit $b ($bits; $off);"
		elif [ "$3" != off ] && [ "$v" != 1 ]; then
			echo "offloads on but L2 did not negotiate feature bit $b ($bits; $off);"
		fi
	done
	if [ "$3" = off ]; then
		for f in tx-checksumming tcp-segmentation-offload; do
			echo "$off" | grep -q " $f=off" || echo "offloads=off but L2 has $f on ($off);"
		done
	else
		for f in rx-checksumming tx-checksumming tcp-segmentation-offload; do
			echo "$off" | grep -q " $f=on" || echo "L2 has $f off with offloads on ($off);"
		done
	fi
	grep -q '^L2: net ping-l1 3/3' "$c" || echo "L2 pinged L1: $(grep '^L2: net ping-l1' "$c" || echo never), want 3/3;"
	grep -q '^ping-l2 5/5$' "$d" || echo "L1 pinged L2: $(grep '^ping-l2' "$d" || echo never), want 5/5; $(net_stall_summary "$1" ping)"
	grep -q '^L2 never' "$d" && echo "L2 never said it serves;"
}

net_check_udp() {
	grep -q '^udp: udp ok: 10000 datagrams' "$W/$1.drv" && grep -q '^udp-status 0$' "$W/$1.drv" ||
		echo "UDP: $(grep -E '^udp: (udp|datagram)' "$W/$1.drv" | head -n 3 | tr '\n' ' '); $(net_stall_summary "$1" udp)"
}

net_check_tcp() { # NAME CONNS
	grep -q "^tcp: tcp ok: $2 connection" "$W/$1.drv" && grep -q '^tcp-status 0$' "$W/$1.drv" ||
		echo "TCP: $(grep -E '^tcp: (tcp |connect)' "$W/$1.drv" | head -n 4 | tr '\n' ' '); $(net_stall_summary "$1" tcp)"
	[ "$(grep -c '^tcp: tcp conn [0-9]* ok:' "$W/$1.drv")" = "$2" ] || echo "TCP: not all $2 connections checksummed equal on both ends;"
}

# L2's nettest: every connection served and ended well (and L2 ended
# after the quit: net_drive's dump otherwise, its vCPU 0 line given here)
net_check_server() {
	if grep -q '^stall-dump after-quit: ' "$W/$1.drv"; then
		echo "L2 still ran 45 s after the quit: $(grep -m 1 '^stall-dump after-quit: isola: SIGUSR1: vCPU 0: rip=' "$W/$1.drv" |
			sed 's/^stall-dump after-quit: isola: SIGUSR1: //' | cut -c1-160) (the whole dump: stall-dump lines below);"
	fi
	line=$(grep '^L2: nettest: serve done' "$W/$1.con")
	[ -n "$line" ] || { echo "L2's nettest never ended;"; return; }
	echo "$line" | grep -q ' 0 failed$' || echo "L2: ${line#L2: nettest: };"
}

net_mibs() { sed -n 's/^tcp: tcp ok: .*, \([0-9.]* s, [0-9.]* MiB\/s\)/\1/p' "$W/$1.drv"; }

net_skip() { # NAME...
	for c in "$@"; do selected "$c" && result "$c" SKIP "$why_skip"; done
}

# queues=1, offloads on, 1 vCPU: ping, UDP, TCP, and isola-net SIGKILLed
case_net_basic() {
	selected net-ping || selected net-udp || selected net-tcp || selected net-kill || return 0
	if ! net_boot net 1 on 1 "$([ "$NET_VMM" = isola ] && echo 1 || echo 0)"; then
		for c in net-ping net-udp net-tcp net-kill; do selected "$c" && result "$c" FAIL "$(cat "$W/net.setup")"; done
		return
	fi
	expect=
	[ "$NET_VMM" = isola ] && expect=1
	common=$(EXPECT_KILLS=$expect l2_common net 0)
	server=$(net_check_server net)
	selected net-ping && verdict net-ping "$common $(net_check_link net 1 on)" \
		"on $NET_VMM: L2's virtio_net eth0 (1 queue pair, offloads on) pinged L1 3/3, L1 pinged L2 5/5 from its namespace"
	selected net-udp && verdict net-udp "$common $(net_check_udp net)" \
		"10,000 UDP datagrams of 1..1472 bytes echoed by L2, none lost or corrupted ($(sed -n 's/^udp: udp ok: .*, \([0-9.]* s\)$/\1/p' "$W/net.drv"))"
	selected net-tcp && verdict net-tcp "$common $server $(net_check_tcp net 1)" \
		"$NET_MIB MiB of TCP each way on one connection, checksums equal on both ends ($(net_mibs net))"
	selected net-kill || return 0
	if [ "$NET_VMM" != isola ]; then
		result net-kill SKIP "L2 runs on $NET_VMM, not isola"
		return
	fi
	d=$W/net.drv
	why=
	grep -q '^kill-tcp-status 0$' "$d" && grep -q '^kill-tcp: tcp conn 0 ok:' "$d" ||
		why="the transfer did not complete intact: $(grep -E '^kill-tcp: (tcp|connect)' "$d" | head -n 3 | tr '\n' ' ');"
	kills=$(sed -n 's/^kills //p' "$d")
	[ "${kills:-0}" -ge 2 ] || why="$why only ${kills:-0} kills landed;"
	died=$(grep -c 'isola-net (pid [0-9]*) was killed by SIGKILL' "$W/net.err")
	back=$(grep -c 'is back after' "$W/net.err")
	[ "$died" = "${kills:-0}" ] || why="$why $kills kills but isola saw $died deaths of isola-net;"
	[ "$back" = "$died" ] || why="$why $died deaths but $back restarts;"
	verdict net-kill "$common $server $why" \
		"isola-net SIGKILLed $kills times during $NET_MIB MiB of TCP each way, restarted each time; the transfer completed, checksums equal on both ends ($(sed -n 's/^kill-tcp: tcp ok: .*, \([0-9.]* s\), .*/\1/p' "$d"))"
}

# offloads=off: plain frames both ways
case_net_offloads_off() {
	selected net-offloads-off || return 0
	net_boot net-off 1 off 1 0 || { result net-offloads-off FAIL "$(cat "$W/net-off.setup")"; return; }
	verdict net-offloads-off "$(l2_common net-off 0) $(net_check_server net-off) $(net_check_link net-off 1 off) $(net_check_udp net-off) $(net_check_tcp net-off 1)" \
		"on $NET_VMM with offloads=off (L2: no checksum/TSO offload): pings both ways, 10,000 UDP datagrams echoed intact, $NET_MIB MiB of TCP each way checksummed ($(net_mibs net-off))"
}

# queues=2, 2 vCPUs: two TCP connections, L2's server pinned one per CPU
# (so it transmits on both pairs, by the driver's XPS map), and both pairs
# carry packets both ways (L2's ethtool -S)
case_net_mq() {
	selected net-mq || return 0
	# a 1-vCPU L2, as fault-records: a 2-vCPU L2 under heavy I/O is where
	# QEMU TCG's SVM loses an L2 vCPU or L1 itself (docs/linux.md); L2
	# turns the second pair on with ethtool -L (VQ_PAIRS_SET)
	net_boot net-mq 2 on 1 0 || { result net-mq FAIL "$(cat "$W/net-mq.setup")"; return; }
	why="$(l2_common net-mq 0) $(net_check_server net-mq) $(net_check_link net-mq 2 on) $(net_check_udp net-mq) $(net_check_tcp net-mq 2)"
	q=$(sed -n 's/^L2: net queue-packets //p' "$W/net-mq.con")
	for f in rx_queue_0 rx_queue_1 tx_queue_0 tx_queue_1; do
		echo " $q" | grep -q " ${f}_packets=[1-9]" || why="$why L2's $f carried no packets ($q);"
	done
	verdict net-mq "$why" \
		"on $NET_VMM with 2 queue pairs (ethtool -L) and 1 vCPU: both pairs carried packets each way ($q); pings, 10,000 UDP datagrams, 2 TCP connections of $NET_MIB MiB each way, all intact ($(net_mibs net-mq))"
}

if [ "$NET_VMM" = isola ] && [ ! -x /isola/isola-net ]; then
	why_skip="no isola-net in this tree (issue 12)"
	net_skip net-ping net-udp net-tcp net-kill net-offloads-off net-mq snapshot snapshot-clones
	NET_CASES=
else
	NET_CASES=1
fi

case_boot 1
case_boot 2 --rng
case_boot 4
case_ext4_root
case_reboot
case_acpi_off
case_api
case_drive_patch
case_config_file
case_orchestrators
case_fault
case_live_upgrade
if [ -n "$NET_CASES" ]; then
	case_snapshot
	case_net_basic
	case_net_offloads_off
	case_net_mq
	RETRIED=
fi
case_vsock
case_virtiofs
case_virtiofs_kill
