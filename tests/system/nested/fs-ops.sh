# The virtiofs case's file operations (issue 17; l1-fs.sh), sourced by L2's
# /init, by L1 and by the QEMU reference (interop_fs_linux_tcg.sh): L2 runs
# them on the shared directory through virtio-fs, L1 runs the same on a
# directory of its own, and the two trees must end equal, name for name and
# byte for byte.  busybox sh only (GNU tools on the reference's host).
#
# At the scale (thousands of files) a process a file is most of the
# time under nested TCG, so the shell itself writes the files (echo and >
# are built in: LOOKUP, CREATE, WRITE, FLUSH, RELEASE each, from one
# process) and each other operation is one command over a list.

# fs_ops DIR N: N small files in DIR/tree/sK (200 a directory); then on
# each by i mod 6: moved into a subdirectory, truncated to 3 bytes,
# deleted, appended to, extended by truncate to 4100 bytes (a hole), or
# left; the subdirectory with the moved files renamed, one file renamed in
# place, and a directory made, filled with 50 files and removed
fs_ops() {
	d=$1/tree
	n=$2
	mkdir -p "$d/a/b" "$d/gone" || return 1
	echo "in b" >"$d/a/b/inside" || return 1
	i=0
	while [ "$i" -lt "$n" ]; do
		if [ $((i % 200)) = 0 ]; then
			s=$d/s$((i / 200))
			mkdir "$s" || return 1
		fi
		echo "file $i of $n: $((i * 7)),$((i * 13)),$((i * 31))" >"$s/f$i" || return 1
		i=$((i + 1))
	done
	moved=
	short=
	del=
	hole=
	i=0
	while [ "$i" -lt "$n" ]; do
		f=$d/s$((i / 200))/f$i
		case $((i % 6)) in
		0) moved="$moved $f" ;;
		1) short="$short $f" ;;
		2) del="$del $f" ;;
		3) echo "appended to $i" >>"$f" || return 1 ;;
		4) hole="$hole $f" ;;
		esac
		i=$((i + 1))
	done
	# shellcheck disable=SC2086 # lists of names without blanks
	{ [ -z "$moved" ] || mv $moved "$d/a/"; } &&
		{ [ -z "$short" ] || truncate -s 3 $short; } &&
		{ [ -z "$del" ] || rm $del; } &&
		{ [ -z "$hole" ] || truncate -s 4100 $hole; } || return 1
	mv "$d/a" "$d/moved" && mv "$d/moved/b" "$d/b2" || return 1
	if [ "$n" -gt 5 ]; then mv "$d/s0/f5" "$d/s0/renamed5" || return 1; fi
	i=0
	while [ "$i" -lt 50 ]; do
		echo "$i" >"$d/gone/g$i" || return 1
		i=$((i + 1))
	done
	rm -r "$d/gone"
}

# fs_manifest DIR: every directory under DIR/tree, every file with its size,
# then every file's MD5, each sorted (a few processes for the whole tree):
# equal manifests are equal trees
fs_manifest() {
	fs_list=$(mktemp) || return 1
	(cd "$1/tree" && find . -type d | sort | sed 's/^/d /' &&
		find . -type f | sort >"$fs_list" &&
		xargs stat -c 'f %n %s' <"$fs_list" &&
		xargs md5sum <"$fs_list")
	fs_st=$?
	rm -f "$fs_list"
	return $fs_st
}

# fs_host_prep SHARE N BIG_MIB: what the host puts in the share before the
# guest mounts it: host/tree (fs_ops with N + 7 files: not the bytes the
# guest's own fs_ops writes), host-big (BIG_MIB MiB of random bytes), and
# live/tree, which fs_host_change changes while the guest has it mounted
fs_host_prep() {
	fs_ops "$1/host" $(($2 + 7)) &&
		dd if=/dev/urandom of="$1/host-big" bs=1M count="$3" 2>/dev/null &&
		mkdir -p "$1/live/tree/d" &&
		echo "edit: before" >"$1/live/tree/edit" &&
		echo "grow" >"$1/live/tree/grow" &&
		echo "deleted on the host" >"$1/live/tree/del" &&
		echo "renamed on the host" >"$1/live/tree/old" &&
		echo "truncated on the host" >"$1/live/tree/trunc" &&
		echo "in a directory deleted on the host" >"$1/live/tree/d/x"
}

# fs_host_change SHARE: the host changes live/tree under the guest's mount:
# a file the guest has in its page cache rewritten in place with other bytes
# of the same size, one appended to, one deleted, one renamed, one
# truncated, a file and a directory made, a directory deleted; then
# live/done, which the guest waits for
fs_host_change() {
	l=$1/live/tree
	echo "edit: after!" >"$l/edit" &&
		echo "grown on the host" >>"$l/grow" &&
		rm "$l/del" &&
		mv "$l/old" "$l/new" &&
		truncate -s 1 "$l/trunc" &&
		echo "made on the host" >"$l/made" &&
		mkdir "$l/newdir" && echo "in a new directory" >"$l/newdir/x" &&
		rm -r "$l/d" &&
		echo "done" >"$1/live/done"
}
