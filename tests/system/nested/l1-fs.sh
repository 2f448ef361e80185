# The virtiofs case (issue 17; docs/fs.md), sourced by l1-cases.sh: one L2
# boot on isola with --fs tag=share,dir=DIR: isola starts isola-fs, which
# starts Debian's virtiofsd on DIR and hands isola its socket.  L2
# (isola.mode=fs, l2-lib.sh's l2_fs) loads Debian's virtiofs, mounts the
# share, reads the file L1 put there, runs fs_ops (fs-ops.sh: creates,
# writes, renames, truncates and deletes a few hundred small files and
# directories), writes a 16 MiB file, syncs, drops its page cache, reads
# back, and unmounts.  L1 then checks the host directory: the same tree,
# byte for byte, as fs_ops makes on a directory of L1's own, the 16 MiB
# file's size and MD5 as L2 saw them, and isola's log clean.
#
# virtiofsd runs with sandbox=chroot here: L1 runs from its initramfs, and
# sandbox=namespace's pivot_root(2) refuses a process whose root is the
# initramfs (rootfs) -- docs/fs.md "Sandbox modes".
# (isola.fsfiles=N on L1's command line: N small files; default 300.)

FS_FILES=$(l1_arg fsfiles)
FS_FILES=${FS_FILES:-300}

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
	share=$W/share
	want=$W/fs-want
	rm -rf "$share" "$want"
	mkdir -p "$share" "$want"
	# host -> guest: a file L1 writes, checked in L2
	dd if=/dev/urandom of="$share/from-host" bs=64k count=16 2>/dev/null
	md5sum <"$share/from-host" | cut -d' ' -f1 >"$share/from-host.md5"
	l2_run fs run --kernel "$L2_KERNEL" --initrd /l2/l2-fs.cpio.gz \
		--cmdline "$L2_CMDLINE isola.mode=fs isola.fstag=share isola.fsfiles=$FS_FILES" \
		--memory 512M --cpus 1 --fs "tag=share,dir=$share,sandbox=chroot" --console stdio

	c=$W/fs.con
	why=$(l2_common fs 0)
	grep -q '^L2: fs driver virtio[0-9]' "$c" || why="$why virtiofs never bound a device ($(grep '^L2: fs driver' "$c"));"
	grep -q '^L2: fs mount-status 0$' "$c" || why="$why mount -t virtiofs share failed ($(grep '^L2: fs mount' "$c" | tr '\n' ' '));"
	read -r _ _ _ got _ wanted <<EOF2
$(grep '^L2: fs from-host ' "$c")
EOF2
	[ -n "$got" ] && [ "$got" = "$wanted" ] || why="$why L2 read L1's file as ${got:-nothing}, want ${wanted:-?};"
	grep -q '^L2: fs ops-status 0$' "$c" || why="$why fs_ops failed in L2 ($(grep '^L2: fs ops' "$c"));"
	grep -q '^L2: fs sync-status 0$' "$c" || why="$why sync failed in L2;"
	grep -q '^L2: fs umount-status 0$' "$c" || why="$why umount failed in L2 ($(grep '^L2: fs umount' "$c"));"
	# the host directory against the same operations on L1's own
	. /nested/fs-ops.sh
	fs_ops "$want" "$FS_FILES" || why="$why fs_ops failed in L1;"
	fs_manifest "$want" >"$W/fs-want.txt"
	fs_manifest "$share" >"$W/fs-got.txt"
	if ! cmp -s "$W/fs-want.txt" "$W/fs-got.txt"; then
		why="$why the host directory differs from the operations L2 made: $(diff -u "$W/fs-want.txt" "$W/fs-got.txt" | grep '^[-+][^-+]' | head -n 3 | tr '\n' ' ');"
	fi
	entries=$(grep -c '^[df] ' "$W/fs-got.txt")
	# what L2 saw of the tree is what L1 sees
	l2m=$(sed -n 's/^L2: fs manifest //p' "$c")
	[ "$l2m" = "$(md5sum <"$W/fs-got.txt" | cut -d' ' -f1)" ] || why="$why L2's view of the tree (manifest ${l2m:-none}) is not L1's;"
	read -r _ _ _ bsize bsum <<EOF2
$(grep '^L2: fs big ' "$c")
EOF2
	hsize=$(stat -c %s "$share/big" 2>/dev/null)
	hsum=$(md5sum <"$share/big" 2>/dev/null | cut -d' ' -f1)
	[ "$bsize" = 16777216 ] && [ "$hsize" = 16777216 ] && [ "$bsum" = "$hsum" ] ||
		why="$why the 16 MiB file: L2 ${bsize:-?} bytes ${bsum:-?}, host ${hsize:-?} bytes ${hsum:-?};"
	grep -q 'needs a reset\|virtio-fs: \|isola-fs: ' "$W/fs.err" && why="$why isola or isola-fs complained: $(grep 'needs a reset\|virtio-fs: \|isola-fs: ' "$W/fs.err" | head -n 2 | tr '\n' ' ');"
	verdict virtiofs "$why" \
		"Debian's virtiofsd (sandbox=chroot) started by isola-fs, L2's virtiofs: L1's file read in L2, $FS_FILES small files created, renamed, truncated, appended to and deleted with directories ($entries names), a 16 MiB file written and read back after dropping L2's page cache, the host directory equal to the same operations on L1's own, byte for byte; umount clean ($(cat "$W/fs.secs") s)"
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
