# Shared by L2's /init (l2-init) and the ext4 root's /sbin/init (rootfs-init).
# Every line meant for the test starts with "L2: " so L1 can pick it out of
# the console among the kernel's.

say() { echo "L2: $*"; }

# l2_arg NAME: the value of isola.NAME=VALUE on the kernel command line
l2_arg() { sed -n "s/.*isola\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# The kernel log must hold no WARNING, BUG, Call Trace or Oops, with one
# exception: under nested SVM on QEMU TCG, L1's CPUID reports an XSAVE area
# size that does not match the features it enables, so the L2 kernel's
# fpu__init_system_xstate() warns "XSAVE consistency problem" from
# arch/x86/kernel/fpu/xstate.c.  QEMU in the same L1 shows the same warning
# (docs/linux.md), so it says nothing about isola; exactly that warning
# block is dropped (from its "cut here" line to its "end trace" line, and
# the "XSAVE consistency problem" lines before it), nothing else.
l2_check_dmesg() {
	dmesg >/tmp/dmesg
	awk '
		/XSAVE consistency problem/ { next }
		/-+\[ cut here \]-+/ { inblock = 1; block = $0 "\n"; next }
		inblock {
			block = block $0 "\n"
			if ($0 ~ /---\[ end trace/) {
				inblock = 0
				if (block !~ /arch\/x86\/kernel\/fpu\/xstate\.c/) printf "%s", block
			}
			next
		}
		{ print }
		END { if (inblock) printf "%s", block }
	' /tmp/dmesg >/tmp/dmesg.rest
	if grep -E 'WARNING|BUG|Call Trace|Oops|I/O error|i8042: (Warning|Failed)' /tmp/dmesg.rest >/tmp/dmesg.bad; then
		sed 's/^/L2: dmesg-bad: /' /tmp/dmesg.bad
		say "dmesg-unclean"
	else
		say "dmesg-clean"
	fi
	tolerated=$(grep -c 'xstate.c' /tmp/dmesg)
	[ "$tolerated" -gt 0 ] && say "dmesg-tolerated: the nested-SVM XSAVE warning ($tolerated lines)"
}

l2_finish() {
	l2_check_dmesg
	say "poweroff"
	poweroff -f
}

# isola.mode=net: eth0 (virtio_net) up, L1 pinged, nettest serving until L1
# ends it; what L1 checks afterwards is said on the console.  (ethtool is
# Debian's, copied in with its libraries at its own path, /usr/sbin.)
l2_net() {
	addr=$(l2_arg ip)
	addr=${addr:-10.99.0.2/24}
	peer=${addr%.*}.1
	for _ in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
	[ -e /sys/class/net/eth0 ] || { say "net: no eth0"; return; }
	ip link set lo up
	ip addr add "$addr" dev eth0
	ip link set eth0 up
	# every queue pair the device has (virtio_net enables min(pairs, CPUs)
	# at probe; ethtool -L asks for the rest with VQ_PAIRS_SET)
	max=$(/usr/sbin/ethtool -l eth0 2>/dev/null | awk '/Pre-set maximums/ { p = 1 } p && /Combined/ { print $2; exit }')
	[ -n "$max" ] && [ "$max" -gt 1 ] && /usr/sbin/ethtool -L eth0 combined "$max"
	say "net eth0 driver=$(basename "$(readlink /sys/class/net/eth0/device/driver)") mac=$(cat /sys/class/net/eth0/address) rxq=$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l) txq=$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)"
	# the negotiated virtio feature bits, one character per bit from bit 0
	say "net features $(cat /sys/class/net/eth0/device/features)"
	say "net offloads $(/usr/sbin/ethtool -k eth0 | sed -n 's/^\(rx-checksumming\|tx-checksumming\|tcp-segmentation-offload\|generic-receive-offload\): \([a-z]*\).*/\1=\2/p' | tr '\n' ' ' | sed 's/ $//')"
	for _ in $(seq 50); do [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && break; sleep 0.1; done
	say "net ping-l1 $(ping -c 3 -W 3 "$peer" 2>&1 | sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\2\/\1/p')"
	say "net ready"
	l2_net_watch &
	watch=$!
	nettest -p "L2: nettest: " serve 7000
	say "net serve-status $?"
	kill "$watch"
	# per queue (virtio_net's ethtool statistics): were both pairs used?
	say "net queue-packets $(/usr/sbin/ethtool -S eth0 | sed -n 's/^ *\([rt]x_queue_[0-9]*_packets\): \([0-9]*\)/\1=\2/p' | tr '\n' ' ' | sed 's/ $//')"
}

# While nettest serves: every 10 s, if anything moved, one line with the
# virtio interrupts L2 took (/proc/interrupts, summed over CPUs) and
# virtio_net's per-queue packets and kicks (ethtool -S).  When a transfer
# stalls, the last line before the silence and whether any follows tell
# whether L2 still gets interrupts and kicks the device (L1 dumps isola-net's
# rings then: l1-net.sh net_stall_dump).
l2_net_watch() {
	last=
	while sleep 10; do
		line="irqs $(awk 'NR == 1 { n = NF; next } /virtio/ { s = 0; for (i = 2; i <= n + 1; i++) s += $i; printf "%s=%d ", $NF, s }' /proc/interrupts)queues $(/usr/sbin/ethtool -S eth0 2>/dev/null | sed -n 's/^ *\([rt]x_queue_[0-9]*_\(packets\|kicks\)\): \([0-9]*\)/\1=\3/p' | tr '\n' ' ')"
		[ "$line" = "$last" ] || say "net watch at $(cut -d' ' -f1 /proc/uptime) s: $line"
		last=$line
	done
}

# isola.mode=vsock (the vsock case, l1-vsock.sh; the vsock initramfs only):
# vmw_vsock_virtio_transport bound to the device, the local CID said;
# vsockpeer serves streams on AF_VSOCK port 5000 (L1 connects through
# isola-vsock's CONNECT), L2 streams isola.vsockmib= MiB each way to the host
# (CID 2) port 5001, which isola-vsock joins to L1's listener on PATH_5001;
# then "vsock ready", and the server runs until L1 says quit.
l2_vsock() {
	mib=$(l2_arg vsockmib)
	mib=${mib:-64}
	drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
	for _ in $(seq 50); do [ -e "$drv"/virtio* ] && break; sleep 0.1; done
	say "vsock driver $(cd "$drv" 2>/dev/null && echo virtio*)"
	vsockpeer -p "L2: vsock " cid
	vsockpeer -p "L2: vsock-serve: " serve vsock:5000 &
	serve=$!
	vsockpeer -p "L2: vsock-g2h: " stream vsock:2:5001 "$mib" "$mib"
	say "vsock g2h-status $?"
	say "vsock ready"
	wait "$serve"
	say "vsock serve-status $?"
}

# isola.mode=fs (the virtiofs case, l1-fs.sh; the fs initramfs only): mount
# the share isola.fstag= through virtio-fs; host -> guest: check the file L1
# put there (from-host, its MD5 in from-host.md5) and say the manifest of
# L1's tree (host/tree) and the size and MD5 of L1's big file (host-big);
# guest -> host: run fs_ops with isola.fsfiles= files, write a file of
# isola.fsbigmib= MiB (16) with fsync, syncfs, drop the page cache and say
# what L2 reads back through virtiofsd; then "fs host-turn": L1 checks what
# L2 wrote while the share is still mounted and changes live/tree, and
# writes live/done; L2 says the manifest of live/tree as it sees it now
# (cache=auto: docs/fs.md "Changes on the host"), and unmounts.  "fs at T"
# lines: L2's uptime at the end of each step, where the case's time goes.
l2_fs() {
	tag=$(l2_arg fstag)
	n=$(l2_arg fsfiles)
	big=$(l2_arg fsbigmib)
	drv=/sys/bus/virtio/drivers/virtiofs
	for _ in $(seq 50); do [ -e "$drv"/virtio* ] && break; sleep 0.1; done
	say "fs driver $(cd "$drv" 2>/dev/null && echo virtio*)"
	mkdir -p /mnt
	mount -t virtiofs "$tag" /mnt
	say "fs mount-status $?"
	grep " /mnt " /proc/mounts | sed 's/^/L2: fs mounted /'
	. /lib/fs-ops.sh
	got=$(md5sum </mnt/from-host 2>/dev/null | cut -d' ' -f1)
	say "fs from-host ${got:-none} want $(cat /mnt/from-host.md5 2>/dev/null || echo none)"
	v=$(fs_manifest /mnt/host | md5sum | cut -d' ' -f1)
	say "fs at $(cut -d' ' -f1 /proc/uptime) host-tree $v"
	v="$(stat -c %s /mnt/host-big) $(md5sum </mnt/host-big | cut -d' ' -f1)"
	say "fs at $(cut -d' ' -f1 /proc/uptime) host-big $v"
	fs_ops /mnt "${n:-300}"
	say "fs at $(cut -d' ' -f1 /proc/uptime) ops-status $?"
	dd if=/dev/urandom of=/mnt/big bs=1M count="${big:-16}" conv=fsync 2>/dev/null
	say "fs at $(cut -d' ' -f1 /proc/uptime) big-write-status $?"
	# syncfs(2): FUSE_SYNCFS, after the small files' writes
	sync -f /mnt
	say "fs sync-status $?"
	echo 3 >/proc/sys/vm/drop_caches
	say "fs big $(stat -c %s /mnt/big) $(md5sum </mnt/big | cut -d' ' -f1)"
	v=$(fs_manifest /mnt | md5sum | cut -d' ' -f1)
	say "fs at $(cut -d' ' -f1 /proc/uptime) manifest $v"
	# L1's turn: live/edit is in L2's page cache and live/tree's names and
	# attributes in its dentry cache before L1 changes them
	md5sum </mnt/live/tree/edit >/dev/null && fs_manifest /mnt/live >/dev/null
	say "fs at $(cut -d' ' -f1 /proc/uptime) host-turn"
	i=0
	while [ ! -e /mnt/live/done ] && [ "$i" -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	say "fs at $(cut -d' ' -f1 /proc/uptime) done-seen"
	# cache=auto: L2 trusts a name or an attribute for virtiofsd's 1 s
	# timeout, file data until the next open
	sleep 1.1
	v="$([ -e /mnt/live/done ] && echo "done" || echo no-done) $(fs_manifest /mnt/live | md5sum | cut -d' ' -f1)"
	say "fs at $(cut -d' ' -f1 /proc/uptime) live $v"
	umount /mnt
	say "fs umount-status $?"
}

# isola.mode=fskill (the virtiofs-kill case, l1-fs.sh): mount the share,
# write numbered 4 KiB files in the background (each complete file counted
# in /tmp/fsprogress, on L2's own tmpfs), say "fs kill-ready" after 20;
# L1 then kills virtiofsd, and isola starts a new one.  Say what the writer
# does afterwards: "stalled" (no file for 5 s, still running: its request
# never answered) or its exit status (the new virtiofsd answers EIO), that
# L2 itself still works and what sync(2) does; then unmount, mount again,
# write and read a file, and unmount (poweroff -n after: a sync must not
# be what holds L2 up if the mount ever hangs).
l2_fskill() {
	tag=$(l2_arg fstag)
	mkdir -p /mnt
	mount -t virtiofs "$tag" /mnt
	say "fs mount-status $?"
	mkdir -p /mnt/k
	: >/tmp/fsprogress
	(
		i=0
		while [ "$i" -lt 100000 ]; do
			head -c 4096 /dev/zero | tr '\0' "$(printf '\\%03o' $((65 + i % 26)))" >"/mnt/k/w$i" || exit 1
			echo "$i" >>/tmp/fsprogress
			i=$((i + 1))
		done
	) &
	writer=$!
	while [ "$(wc -l </tmp/fsprogress)" -lt 20 ]; do sleep 0.1; done
	say "fs kill-ready"
	last=-1
	same=0
	t=0
	while [ "$t" -lt 600 ]; do
		kill -0 "$writer" 2>/dev/null || break
		n=$(wc -l </tmp/fsprogress)
		if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
		last=$n
		[ "$same" -ge 50 ] && break
		sleep 0.1
		t=$((t + 1))
	done
	if kill -0 "$writer" 2>/dev/null; then
		say "fs writer stalled after $(wc -l </tmp/fsprogress) files"
	else
		wait "$writer"
		say "fs writer exit-status $? after $(wc -l </tmp/fsprogress) files"
	fi
	echo alive >/tmp/alive && say "fs l2 $(cat /tmp/alive)"
	# sync(2) asks every file system, this mount too (FUSE_SYNCFS): a
	# back-end that never answers would hold it for ever
	sync &
	syncer=$!
	sleep 3
	if kill -0 "$syncer" 2>/dev/null; then say "fs sync stalled"; else say "fs sync returned"; fi
	# the way back docs/fs.md gives: mount again (a new FUSE_INIT to the
	# new virtiofsd), then the share works
	ls /mnt/k >/dev/null 2>&1
	say "fs old-mount ls-status $?"
	umount /mnt
	say "fs umount-status $?"
	mount -t virtiofs "$tag" /mnt
	say "fs remount-status $?"
	echo "written after the remount" >/mnt/after && sync
	say "fs after-write-status $?"
	say "fs after $(cat /mnt/after 2>/dev/null | md5sum | cut -d' ' -f1) files $(ls /mnt/k | wc -l)"
	umount /mnt
	say "fs umount2-status $?"
}

# isola.mode=snapcount (the snapshot cases, l1-snapshot.sh; the net
# initramfs, which has virtio_blk too): eth0 up at isola.ip= if there is
# one, the boot's kernel log checked, then a counter that never ends: for
# each N, "CNT N" is written to sector N of /dev/vda and fsynced, and only
# then said on the console with the guest's clocks ("snap count N
# up=UPTIME rt=EPOCH end": /proc/uptime is CLOCK_BOOTTIME, date the wall
# clock), so every number on the console is on the disk.  L1 snapshots
# the VM while it counts and restores it (and clones of it): the count
# lives in this shell's memory, so a restored VM goes on from the next
# number.  Every 5th number the kernel's new log lines are said ("snap
# kmsg: ..."): a restore that upsets the kernel (a clocksource watchdog,
# an RCU stall, a warning) shows there.
l2_snapcount() {
	for _ in $(seq 50); do [ -e /sys/class/net/eth0 ] && [ -e /dev/vda ] && break; sleep 0.1; done
	if [ -e /sys/class/net/eth0 ]; then
		addr=$(l2_arg ip)
		ip link set lo up
		ip addr add "${addr:-10.99.0.2/24}" dev eth0
		ip link set eth0 up
		say "snap eth0 mac=$(cat /sys/class/net/eth0/address)"
	fi
	say "snap clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	# the kernel's clocksource watchdog compares kvm-clock with the TSC
	# every 0.5 s while it still trusts the TSC: it is the witness that a
	# restore stepped one clock and not the other
	say "snap tsc-watched=$(dmesg | grep -cE 'Marking (TSC|clocksource .tsc.) (as )?unstable' | sed 's/^0$/yes/; s/^[1-9].*/no/')"
	l2_check_dmesg
	dmesg -c >/dev/null
	i=0
	while :; do
		if printf 'CNT %06d\n' "$i" | dd of=/dev/vda bs=512 seek="$i" conv=sync,notrunc,fsync 2>/tmp/dd.err; then
			say "snap count $i up=$(cut -d' ' -f1 /proc/uptime) rt=$(date +%s) end"
		else
			say "snap ioerr $i $(cat /tmp/dd.err)"
		fi
		[ $((i % 5)) = 4 ] && dmesg -c | sed 's/^/L2: snap kmsg: /'
		i=$((i + 1))
		sleep 0.1
	done
}

# isola.mode=fsbench (bench/fs, nested/l1-fsbench.sh; the fs initramfs):
# mount the share isola.fstag=, then time, in L2's seconds (/proc/uptime,
# 10 ms; kvm-clock, which keeps L1's time):
#   create  isola.fsbfiles= (1000) small files in one directory, by the
#           shell (LOOKUP, CREATE, WRITE, FLUSH, RELEASE each)
#   stat    the same files after dropping L2's dentry and page caches, one
#           stat(1) over the list (LOOKUP each)
#   unlink  one rm over the list (UNLINK each)
#   write   isola.fsbmib= (64) MiB from /dev/zero in 1 MiB writes, fsync
#   read    the same after dropping the page cache, 1 MiB reads
# and say one line "fsbench create=S stat=S unlink=S write=S read=S".
l2_fsbench() {
	tag=$(l2_arg fstag)
	n=$(l2_arg fsbfiles)
	n=${n:-1000}
	mib=$(l2_arg fsbmib)
	mib=${mib:-64}
	drv=/sys/bus/virtio/drivers/virtiofs
	for _ in $(seq 50); do [ -e "$drv"/virtio* ] && break; sleep 0.1; done
	mkdir -p /mnt
	mount -t virtiofs "$tag" /mnt || { say "fsbench mount failed"; return; }
	# the negotiated virtio feature bits, one character per bit from bit 0
	say "fsbench features $(cat "$drv"/virtio*/features)"
	# what else could set the two VMMs' L2 apart: its clock, the CPU
	# flags it sees, the mitigations it chose, the device's interrupts
	say "fsbench guest clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) flags=$(grep -m1 '^flags' /proc/cpuinfo | wc -w) mitigations=$(grep -l -v '^Not affected' /sys/devices/system/cpu/vulnerabilities/* 2>/dev/null | xargs -n1 basename 2>/dev/null | tr '\n' ,) msi=$(grep -c 'PCI-MSI' /proc/interrupts)"
	say "fsbench guest cpuflags $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)"
	mkdir /mnt/m
	i=0
	while [ "$i" -lt "$n" ]; do echo "$i" >>/tmp/fsbench.list && i=$((i + 1)); done
	sed 's|^|/mnt/m/f|' /tmp/fsbench.list >/tmp/fsbench.names
	sync
	t0=$(cut -d' ' -f1 /proc/uptime)
	i=0
	while [ "$i" -lt "$n" ]; do
		echo "small file $i" >"/mnt/m/f$i" || break
		i=$((i + 1))
	done
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo 3 >/proc/sys/vm/drop_caches
	t2=$(cut -d' ' -f1 /proc/uptime)
	stat_files=$(xargs stat -c %s </tmp/fsbench.names | wc -l)
	t3=$(cut -d' ' -f1 /proc/uptime)
	xargs rm </tmp/fsbench.names
	t4=$(cut -d' ' -f1 /proc/uptime)
	left=$(ls /mnt/m | wc -l)
	dd if=/dev/zero of=/mnt/big bs=1M count="$mib" conv=fsync 2>/dev/null
	wst=$?
	t5=$(cut -d' ' -f1 /proc/uptime)
	echo 3 >/proc/sys/vm/drop_caches
	t6=$(cut -d' ' -f1 /proc/uptime)
	rrec=$(dd if=/mnt/big of=/dev/null bs=1M 2>&1 | sed -n 's/ records out$//p')
	t7=$(cut -d' ' -f1 /proc/uptime)
	rm /mnt/big
	umount /mnt
	ust=$?
	check="created=$i stated=$stat_files left=$left write-status=$wst read-records=$rrec umount-status=$ust"
	say "fsbench $(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v g="$t6" -v h="$t7" \
		'BEGIN { printf "create=%.2f stat=%.2f unlink=%.2f write=%.2f read=%.2f", b - a, d - c, e - d, f - e, h - g }') $check"
}
