# The virtiofs case's file operations (issue 17; l1-fs.sh), sourced by L2's
# /init and by L1: L2 runs them on the shared directory through virtio-fs,
# L1 runs the same on a directory of its own, and the two trees must end
# equal, name for name and byte for byte.  busybox sh only.

# fs_ops DIR N: N small files in DIR/tree, then on each by i mod 6: renamed
# into a subdirectory, truncated to 3 bytes, deleted, appended to, extended
# by truncate to 4100 bytes (a hole), or left; a directory made, filled and
# removed; a directory renamed
fs_ops() {
	d=$1/tree
	n=$2
	mkdir -p "$d/a/b" || return 1
	echo "in b" >"$d/a/b/inside" || return 1
	i=0
	while [ "$i" -lt "$n" ]; do
		echo "file $i of $n: $(seq -s , "$i" $((i + 7)))" >"$d/f$i" || return 1
		i=$((i + 1))
	done
	i=0
	while [ "$i" -lt "$n" ]; do
		case $((i % 6)) in
		0) mv "$d/f$i" "$d/a/r$i" ;;
		1) truncate -s 3 "$d/f$i" ;;
		2) rm "$d/f$i" ;;
		3) echo "appended to $i" >>"$d/f$i" ;;
		4) truncate -s 4100 "$d/f$i" ;;
		esac || return 1
		i=$((i + 1))
	done
	mkdir "$d/gone" && echo x >"$d/gone/x" && rm -r "$d/gone" || return 1
	mv "$d/a/b" "$d/b2"
}

# fs_manifest DIR: every name under DIR/tree (type and size), then every
# file's MD5, sorted: equal manifests are equal trees
fs_manifest() {
	(cd "$1/tree" && find . | sort | while read -r f; do
		if [ -d "$f" ]; then echo "d $f"; else echo "f $f $(stat -c %s "$f")"; fi
	done && find . -type f | sort | xargs md5sum)
}
