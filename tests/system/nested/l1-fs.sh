# The virtiofs case (issue 17; docs/fs.md), sourced by l1-cases.sh: one L2
# boot on isola with --fs tag=share,dir=DIR: isola starts isola-fs, which
# starts Debian's virtiofsd on DIR and hands isola its socket.  At the
# issue's scale (acceptance 2), both ways:
#   host -> guest  L1 puts a tree of FS_FILES + 7 small files, a big file of
#                  FS_BIG_MIB MiB and live/tree in DIR (fs-ops.sh
#                  fs_host_prep); L2 (isola.mode=fs, l2-lib.sh's l2_fs)
#                  mounts the share and says the tree's manifest (names,
#                  sizes, MD5s) and the big file's size and MD5
#   guest -> host  L2 runs fs_ops (creates FS_FILES small files in
#                  directories, renames, truncates, appends to and deletes
#                  them, makes and removes a directory), writes a big file
#                  of FS_BIG_MIB MiB with fsync, syncfs, drops its page
#                  cache and says the manifest and the big file's MD5 as it
#                  reads them back; then "fs host-turn"
#   live           at host-turn, with the share still mounted, L1 checks
#                  L2's tree (against fs_ops on a directory of L1's own,
#                  byte for byte) and big file, then changes live/tree
#                  (fs_host_change: rewrites, appends, deletes, renames,
#                  truncates, makes); L2 says live/tree's manifest as it
#                  sees it after cache=auto's 1 s, which must be L1's
# then L2 unmounts (clean) and powers off, and isola's log is clean.
#
# virtiofsd runs with sandbox=chroot here: L1 runs from its initramfs, and
# sandbox=namespace's pivot_root(2) refuses a process whose root is the
# initramfs (rootfs) -- docs/fs.md "Sandbox modes".
# (isola.fsfiles=N, isola.fsbigmib=M on L1's command line: N small files,
# default 2000, an M MiB big file, default 64.)

FS_FILES=$(l1_arg fsfiles)
FS_FILES=${FS_FILES:-2000}
FS_BIG_MIB=$(l1_arg fsbigmib)
FS_BIG_MIB=${FS_BIG_MIB:-64}
# the virtiofs case's boot, at least (the other cases' is 150 s)
FS_TIMEOUT=400

# md5 of stdin, the hash alone
fs_md5() { md5sum | cut -d' ' -f1; }

case_virtiofs() {
	selected virtiofs || return 0
	if [ ! -x /isola/isola-fs ]; then
		result virtiofs SKIP "no isola-fs in this tree (issue 17)"
		return 0
	fi
	if [ ! -x /usr/lib/qemu/virtiofsd ]; then
		result virtiofs SKIP "no virtiofsd on the host that built L1 (apt-get install qemu-system-common)"
		return 0
	fi
	. /nested/fs-ops.sh
	share=$W/share
	want=$W/fs-want
	rm -rf "$share" "$want" "$W/fs-got.txt" "$W/fs-big.txt" "$W/fs.drv"
	mkdir -p "$share" "$want"
	t0=$(l1_uptime)
	# host -> guest: a file, a tree, a big file and live/tree, checked in L2
	dd if=/dev/urandom of="$share/from-host" bs=64k count=16 2>/dev/null
	fs_md5 <"$share/from-host" >"$share/from-host.md5"
	fs_host_prep "$share" "$FS_FILES" "$FS_BIG_MIB" || echo "fs_host_prep failed" >"$W/fs.drv"
	host_tree=$(fs_manifest "$share/host" | fs_md5)
	host_big="$(stat -c %s "$share/host-big") $(fs_md5 <"$share/host-big")"
	echo "L1: [fs] L1's share made in $(secs_since "$t0") s"
	# the same operations on L1's own directory, while L2 boots
	(fs_ops "$want" "$FS_FILES" && fs_manifest "$want" >"$W/fs-want.txt") || echo "fs_ops failed in L1" >"$W/fs-want.err" &
	mine=$!
	# guest -> host, while L2 has the share mounted: at "fs host-turn"
	# L2 has written, fsynced and synced; L1 reads what L2 wrote, then
	# changes live/tree under L2's mount
	rm -f "$W/fs.st" "$W/fs-want.err"
	(
		i=0
		while ! grep -q '^L2: fs at [0-9.]* host-turn' "$W/fs.raw" 2>/dev/null; do
			[ "$i" -ge $((FS_TIMEOUT * 10)) ] && exit 0
			[ -e "$W/fs.st" ] && exit 0
			sleep 0.5
			i=$((i + 5))
		done
		turn=$(l1_uptime)
		fs_manifest "$share" >"$W/fs-got.txt"
		echo "$(stat -c %s "$share/big") $(fs_md5 <"$share/big")" >"$W/fs-big.txt"
		if fs_host_change "$share"; then echo changed >"$W/fs.drv"; else echo "fs_host_change failed" >"$W/fs.drv"; fi
		echo "L1: [fs] L2's host-turn seen at $turn s of L1's uptime, L2's tree and big file read and live/tree changed at $(l1_uptime) s"
	) &
	drv=$!
	# (a step of its own: 2000 files through nested TCG take 40-90 s of
	# L2's time on a 2-core host shared with other work)
	step_timeout=$STEP_TIMEOUT
	[ "$STEP_TIMEOUT" -ge "$FS_TIMEOUT" ] || STEP_TIMEOUT=$FS_TIMEOUT
	l2_run fs run --kernel "$L2_KERNEL" --initrd /l2/l2-fs.cpio.gz \
		--cmdline "$L2_CMDLINE isola.mode=fs isola.fstag=share isola.fsfiles=$FS_FILES isola.fsbigmib=$FS_BIG_MIB" \
		--memory 512M --cpus 1 --fs "tag=share,dir=$share,sandbox=chroot" --console stdio
	STEP_TIMEOUT=$step_timeout
	wait "$drv"
	wait "$mine"
	t1=$(l1_uptime)

	c=$W/fs.con
	why=$(l2_common fs 0)
	grep -q '^L2: fs driver virtio[0-9]' "$c" || why="$why virtiofs never bound a device ($(grep '^L2: fs driver' "$c"));"
	grep -q '^L2: fs mount-status 0$' "$c" || why="$why mount -t virtiofs share failed ($(grep '^L2: fs mount' "$c" | tr '\n' ' '));"
	read -r _ _ _ got _ wanted <<EOF2
$(grep '^L2: fs from-host ' "$c")
EOF2
	[ -n "$got" ] && [ "$got" = "$wanted" ] || why="$why L2 read L1's file as ${got:-nothing}, want ${wanted:-?};"
	# host -> guest
	l2ht=$(sed -n 's/^L2: fs at [0-9.]* host-tree //p' "$c")
	[ "$l2ht" = "$host_tree" ] || why="$why L2's view of L1's tree (manifest ${l2ht:-none}) is not L1's ($host_tree);"
	l2hb=$(sed -n 's/^L2: fs at [0-9.]* host-big //p' "$c")
	[ "$l2hb" = "$host_big" ] || why="$why L1's big file: L2 read ${l2hb:-nothing}, L1 has $host_big;"
	# guest -> host
	grep -q '^L2: fs at [0-9.]* ops-status 0$' "$c" || why="$why fs_ops failed in L2 ($(grep '^L2: fs at [0-9.]* ops' "$c"));"
	grep -q '^L2: fs at [0-9.]* big-write-status 0$' "$c" || why="$why L2's big file write or fsync failed;"
	grep -q '^L2: fs sync-status 0$' "$c" || why="$why syncfs failed in L2;"
	[ -e "$W/fs-want.err" ] && why="$why $(cat "$W/fs-want.err");"
	[ -e "$W/fs-got.txt" ] || why="$why L2 never said host-turn: L1 did not read what L2 wrote while mounted;"
	if [ -e "$W/fs-got.txt" ] && ! cmp -s "$W/fs-want.txt" "$W/fs-got.txt"; then
		why="$why the host directory differs from the operations L2 made: $(diff -u "$W/fs-want.txt" "$W/fs-got.txt" | grep '^[-+][^-+]' | head -n 3 | tr '\n' ' ');"
	fi
	entries=$(grep -c '^[df] ' "$W/fs-got.txt" 2>/dev/null)
	l2m=$(sed -n 's/^L2: fs at [0-9.]* manifest //p' "$c")
	[ "$l2m" = "$(fs_md5 <"$W/fs-got.txt" 2>/dev/null)" ] || why="$why L2's view of the tree (manifest ${l2m:-none}) is not L1's;"
	read -r _ _ _ bsize bsum <<EOF2
$(grep '^L2: fs big ' "$c")
EOF2
	hsize=
	hsum=
	[ -e "$W/fs-big.txt" ] && read -r hsize hsum <"$W/fs-big.txt"
	big_bytes=$((FS_BIG_MIB << 20))
	[ "$bsize" = "$big_bytes" ] && [ "${hsize:-}" = "$big_bytes" ] && [ "$bsum" = "${hsum:-}" ] ||
		why="$why the $FS_BIG_MIB MiB file: L2 ${bsize:-?} bytes ${bsum:-?}, L1 while mounted ${hsize:-?} bytes ${hsum:-?};"
	# live: L1's changes under L2's mount
	[ "$(cat "$W/fs.drv" 2>/dev/null)" = changed ] || why="$why L1 did not change live/tree ($(cat "$W/fs.drv" 2>/dev/null));"
	l2live=$(sed -n 's/^L2: fs at [0-9.]* live //p' "$c")
	want_live="done $(fs_manifest "$share/live" | fs_md5)"
	[ "$l2live" = "$want_live" ] || why="$why L2's view of live/tree after L1 changed it (${l2live:-nothing}) is not L1's ($want_live);"
	grep -q '^L2: fs umount-status 0$' "$c" || why="$why umount failed in L2 ($(grep '^L2: fs umount' "$c"));"
	grep -q 'needs a reset\|virtio-fs: \|isola-fs: ' "$W/fs.err" && why="$why isola or isola-fs complained: $(grep 'needs a reset\|virtio-fs: \|isola-fs: ' "$W/fs.err" | head -n 2 | tr '\n' ' ');"
	steps=$(sed -n 's/^L2: fs at \([0-9.]*\) \([a-z-]*\).*/\2 \1/p' "$c" | tr '\n' ' ' | sed 's/ $//')
	echo "L1: [fs] L2's steps at (uptime s): $steps; L1's checks $(secs_since "$t1") s"
	verdict virtiofs "$why" \
		"Debian's virtiofsd (sandbox=chroot) started by isola-fs, L2's virtiofs: host -> guest, L1's tree of $((FS_FILES + 7)) files and $FS_BIG_MIB MiB file read in L2 with L1's sizes and MD5s; guest -> host, $FS_FILES small files created in directories, renamed, truncated, appended to and deleted, a directory made and removed ($entries names), a $FS_BIG_MIB MiB file written with fsync, syncfs, read back past L2's page cache: L1 saw the same tree and MD5s while L2 had it mounted, equal to the same operations on L1's own; L1's rewrite, append, delete, rename, truncate and new names under L2's mount seen by L2 within cache=auto's 1 s; umount clean ($(cat "$W/fs.secs") s in isola)"
}

# The virtiofs-kill case: L2 (isola.mode=fskill, l2-lib.sh's l2_fskill)
# writes numbered 4 KiB files to the share; once 20 are written L1 SIGKILLs
# virtiofsd.  isola must start a new one and warn that the guest's mount
# answers EIO until it is mounted again (docs/fs.md "When virtiofsd dies"):
# L2's writer gets an error, sync(2) returns, and after umount and mount
# the share works (a file written in L2 is on the host, the listing is the
# host's); every file L2 counted complete before the kill is whole.
case_virtiofs_kill() {
	selected virtiofs-kill || return 0
	if [ ! -x /isola/isola-fs ] || [ ! -x /usr/lib/qemu/virtiofsd ]; then
		result virtiofs-kill SKIP "no isola-fs or virtiofsd in L1"
		return 0
	fi
	share=$W/kshare
	rm -rf "$share"
	mkdir -p "$share"
	(
		i=0
		while ! grep -q '^L2: fs kill-ready' "$W/fskill.raw" 2>/dev/null; do
			[ "$i" -ge $((STEP_TIMEOUT * 10)) ] && exit 0
			[ -e "$W/fskill.st" ] && exit 0
			sleep 0.1
			i=$((i + 1))
		done
		pid=$(pidof virtiofsd)
		echo "killing virtiofsd (pid $pid)" >"$W/fskill.drv"
		kill -KILL $pid
	) &
	drv=$!
	rm -f "$W/fskill.st"
	l2_run fskill run --kernel "$L2_KERNEL" --initrd /l2/l2-fs.cpio.gz \
		--cmdline "$L2_CMDLINE isola.mode=fskill isola.fstag=share" \
		--memory 512M --cpus 1 --fs "tag=share,dir=$share,sandbox=chroot" --console stdio
	wait "$drv"
	c=$W/fskill.con
	e=$W/fskill.err
	# the NEEDS_RESET line is this case's point: l2_common without it
	why=$(EXPECT_KILLS=1 l2_common fskill 0)
	grep -q '^killing virtiofsd (pid [0-9]' "$W/fskill.drv" 2>/dev/null || why="$why L1 never killed virtiofsd ($(cat "$W/fskill.drv" 2>/dev/null));"
	grep -q 'fs0: isola-fs (pid [0-9]*) exited with status 137; restarting it' "$e" &&
		grep -q 'fs0: isola-fs is back after' "$e" &&
		grep -q "fs0: the new back-end does not know the guest's FUSE session: the guest's virtio-fs mount answers EIO until it is unmounted and mounted again" "$e" ||
		why="$why isola did not restart virtiofsd with the EIO warning;"
	grep -q 'needs a reset' "$e" && why="$why the device was given up;"
	grep -q 'isola-fs: virtiofsd (pid [0-9]*) was killed by signal 9' "$e" || why="$why isola-fs did not say how virtiofsd ended;"
	grep -q '^L2: fs writer exit-status [1-9]' "$c" || why="$why the writer did not get an error from the new virtiofsd ($(grep '^L2: fs writer' "$c"));"
	grep -q '^L2: fs sync returned$' "$c" || why="$why sync(2) did not return;"
	for s in umount remount after-write umount2; do
		grep -q "^L2: fs $s-status 0\$" "$c" || why="$why L2's $s failed ($(grep "^L2: fs $s-status" "$c"));"
	done
	# after the remount: the share works both ways again
	want_after=$(echo "written after the remount" | md5sum | cut -d' ' -f1)
	read -r _ _ _ got_after _ l2files <<EOF2
$(grep '^L2: fs after ' "$c")
EOF2
	[ "$got_after" = "$want_after" ] && [ "$(md5sum <"$share/after" 2>/dev/null | cut -d' ' -f1)" = "$want_after" ] ||
		why="$why the file written after the remount: L2 read ${got_after:-nothing}, the host has $(md5sum <"$share/after" 2>/dev/null | cut -d' ' -f1), want $want_after;"
	[ "${l2files:-x}" = "$(ls "$share/k" | wc -l)" ] || why="$why after the remount L2 lists ${l2files:-?} files in k, the host $(ls "$share/k" | wc -l);"
	grep -q '^L2: fs l2 alive$' "$c" || why="$why L2 did not go on after the kill;"
	grep -q '^L2: fs sync ' "$c" || why="$why L2 never said what sync(2) did;"
	seen=$(grep '^L2: fs writer ' "$c")
	[ -n "$seen" ] || why="$why L2 never said what its writer did;"
	n=$(echo "$seen" | sed -n 's/.* after \([0-9]*\) files/\1/p')
	# each file L2 counted complete is on the host, whole
	i=0
	bad=0
	while [ "$i" -lt "${n:-0}" ]; do
		[ "$(stat -c %s "$share/k/w$i" 2>/dev/null)" = 4096 ] || bad=$((bad + 1))
		i=$((i + 1))
	done
	[ "$bad" = 0 ] || why="$why $bad of the $n files L2 completed are not whole on the host;"
	verdict virtiofs-kill "$why" "virtiofsd SIGKILLed under L2's writer after ${n:-?} files: isola started a new one and said the mount answers EIO until mounted again; L2 $(echo "$seen" | sed 's/^L2: fs //') (EIO), $(sed -n 's/^L2: fs \(sync .*\)/\1/p' "$c"); unmounted, mounted again, a file written and read back and seen on the host, the same $l2files files listed; every completed file whole on the host"
}
