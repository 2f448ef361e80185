# The vsock case (issue 14), sourced by l1-cases.sh: one L2 boot on isola
# with --vsock cid=3,uds=PATH and its default protections (isola-vsock
# sandboxed, seccomp on).  L2 (isola.mode=vsock, l2-lib.sh's l2_vsock) loads
# Debian's vmw_vsock_virtio_transport and runs build/vsockpeer (vsockpeer.c)
# on AF_VSOCK; L1 is the host side of Firecracker's hybrid convention:
#   guest -> host  L2 connects to CID 2 port 5001: isola-vsock joins it to
#                  L1's listener on PATH_5001; VSOCK_MIB each way, checksummed
#   host -> guest  L1 connects to PATH, "CONNECT 5000", "OK <port>": one
#                  stream of VSOCK_MIB each way, then 100 connections open at
#                  once, 64 KiB each way each, all checksummed
#   backpressure   a connection L2's server accepts and never reads: L1's
#                  writer, offered 256 MiB, must block, and isola-vsock's RSS
#                  (/proc in L1) must stay bounded while it is held 5 s; a
#                  stream beside it still completes
# (isola.vsockmib=N on L1's command line: N MiB a stream; default 64.)

VSOCKPEER=/isola/vsockpeer
VSOCK_MIB=$(l1_arg vsockmib)
VSOCK_MIB=${VSOCK_MIB:-64}
VSOCK_CID=3
# what "bounded" means here: the writer is stopped by credit (virtio 1.2
# §5.10.6.3) after at most the guest's socket buffer (256 KiB by default)
# plus what the Unix socket and isola-vsock hold on its way; isola-vsock
# must not take the 256 MiB offered into its own memory
VSOCK_NOREAD_MAX_KIB=16384
VSOCK_RSS_GROWTH_MAX_KIB=16384

# vsock_drive: L1's side, in the background while L2 runs; everything it
# sees goes to $W/vsock.drv
vsock_drive() {
	d=$W/vsock.drv
	: >"$d"
	i=0
	while ! grep -q '^L2: vsock ready' "$W/vsock.raw" 2>/dev/null; do
		if grep -q '^L2: poweroff' "$W/vsock.raw" 2>/dev/null || [ -e "$W/vsock.st" ] ||
			[ "$i" -ge $((STEP_TIMEOUT * 5)) ]; then
			echo "L2 never said vsock ready" >>"$d"
			return
		fi
		sleep 0.2
		i=$((i + 1))
	done
	# the sandboxed server itself: pid 1 of its own pid namespace (its
	# parent, also isola-vsock, is the sandbox's, which only waits)
	pid=
	for p in $(pidof isola-vsock); do
		grep -q '^NSpid:.*[[:space:]]1$' "/proc/$p/status" && pid=$p
	done
	echo "server-pid ${pid:-none} (of $(pidof isola-vsock))" >>"$d"
	[ -n "$pid" ] && echo "rss-start $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")" >>"$d"
	$VSOCKPEER -p "h2g: " stream "hybrid:$VSOCK_UDS:5000" "$VSOCK_MIB" "$VSOCK_MIB" >>"$d" 2>&1
	echo "h2g-status $?" >>"$d"
	$VSOCKPEER -p "many: " stream "hybrid:$VSOCK_UDS:5000" 0.0625 0.0625 100 >>"$d" 2>&1
	echo "many-status $?" >>"$d"
	# the never-read connection, and beside it while held, another stream
	$VSOCKPEER -p "noread: " noread "hybrid:$VSOCK_UDS:5000" 256 5 "${pid:-0}" >"$W/vsock.noread" 2>&1 &
	nr=$!
	i=0
	while ! grep -q '^noread: noread' "$W/vsock.noread" && kill -0 "$nr" 2>/dev/null && [ "$i" -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	$VSOCKPEER -p "beside: " stream "hybrid:$VSOCK_UDS:5000" 1 1 >>"$d" 2>&1
	echo "beside-status $?" >>"$d"
	wait "$nr"
	echo "noread-status $?" >>"$d"
	cat "$W/vsock.noread" >>"$d"
	[ -n "$pid" ] && echo "rss-end $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")" >>"$d"
	$VSOCKPEER -p "quit: " quit "hybrid:$VSOCK_UDS:5000" >>"$d" 2>&1
}

case_vsock() {
	selected vsock || return 0
	if [ ! -x /isola/isola-vsock ]; then
		result vsock SKIP "no isola-vsock in this tree (issue 14)"
		return 0
	fi
	VSOCK_UDS=$W/v.sock
	rm -f "$VSOCK_UDS" "${VSOCK_UDS}_5001" "$W/vsock.st"
	# the host's listener for the guest's connections to CID 2 port 5001
	$VSOCKPEER -p "host-serve: " serve "unix:${VSOCK_UDS}_5001" >"$W/vsock.hserve" 2>&1 &
	hs=$!
	vsock_drive &
	drv=$!
	l2_run vsock run --kernel "$L2_KERNEL" --initrd /l2/l2-vsock.cpio.gz \
		--cmdline "$L2_CMDLINE isola.mode=vsock isola.vsockmib=$VSOCK_MIB" --memory 512M --cpus 1 \
		--vsock "cid=$VSOCK_CID,uds=$VSOCK_UDS" --console stdio
	wait "$drv"
	$VSOCKPEER -p "quit: " quit "unix:${VSOCK_UDS}_5001" >/dev/null 2>&1
	wait "$hs"
	echo "host-serve-status $?" >>"$W/vsock.hserve"
	sed 's/^/    drv| /' "$W/vsock.drv" "$W/vsock.hserve"

	c=$W/vsock.con
	d=$W/vsock.drv
	why=$(l2_common vsock 0)
	grep -q '^L2: vsock driver virtio[0-9]' "$c" || why="$why vmw_vsock_virtio_transport never bound a device ($(grep '^L2: vsock driver' "$c"));"
	grep -q "^L2: vsock cid $VSOCK_CID\$" "$c" || why="$why L2's local CID is not $VSOCK_CID ($(grep '^L2: vsock cid' "$c"));"
	grep -q 'isola-vsock: sandboxed' "$W/vsock.err" || why="$why isola-vsock never said it was sandboxed;"
	# guest -> host
	grep -q '^L2: vsock g2h-status 0$' "$c" && grep -q '^L2: vsock-g2h: stream ok: 1 connection, 1 checksummed' "$c" ||
		why="$why guest->host: $(grep -E '^L2: vsock-g2h: (stream|connect|conn)' "$c" | head -n 3 | tr '\n' ' ');"
	grep -q '^host-serve-status 0$' "$W/vsock.hserve" && grep -q '^host-serve: serve done: 1 connections, 1 ok' "$W/vsock.hserve" ||
		why="$why L1's listener on PATH_5001: $(grep -E 'serve done|FAIL' "$W/vsock.hserve" | head -n 2 | tr '\n' ' ');"
	# host -> guest
	grep -q '^h2g-status 0$' "$d" && grep -q '^h2g: stream ok: 1 connection' "$d" ||
		why="$why host->guest: $(grep -E '^h2g: (stream|connect|conn)' "$d" | head -n 3 | tr '\n' ' ');"
	grep -q '^many-status 0$' "$d" && grep -q '^many: stream ok: 100 connections, 100 checksummed' "$d" ||
		why="$why 100 connections: $(grep -E '^many: (stream|connect|conn)' "$d" | head -n 3 | tr '\n' ' ');"
	# backpressure
	nr=$(sed -n 's/^noread: noread blocked after \([0-9]*\) bytes.*/\1/p' "$d")
	if grep -q '^noread-status 0$' "$d" && [ -n "$nr" ]; then
		[ $((nr / 1024)) -le $VSOCK_NOREAD_MAX_KIB ] || why="$why the writer blocked only after $((nr / 1024)) KiB, want <= $VSOCK_NOREAD_MAX_KIB;"
	else
		why="$why the never-read connection: $(grep -E '^noread' "$d" | head -n 2 | tr '\n' ' ');"
	fi
	read -r r0 r1 r2 <<EOF
$(sed -n 's/^noread: noread rss pid [0-9]*: before \([0-9-]*\) KiB, blocked \([0-9-]*\) KiB, after hold \([0-9-]*\) KiB/\1 \2 \3/p' "$d")
EOF
	if [ -n "$r2" ] && [ "$r0" -gt 0 ] && [ "$r2" -gt 0 ]; then
		[ $((r2 - r0)) -le $VSOCK_RSS_GROWTH_MAX_KIB ] || why="$why isola-vsock's RSS grew $((r2 - r0)) KiB under the never-read connection, want <= $VSOCK_RSS_GROWTH_MAX_KIB;"
	else
		why="$why no RSS of isola-vsock ($(grep '^server-pid\|rss pid' "$d" | tr '\n' ' '));"
	fi
	grep -q '^beside-status 0$' "$d" || why="$why the stream beside the never-read connection: $(grep -E '^beside: (stream|connect)' "$d" | head -n 2 | tr '\n' ' ');"
	grep -q '^L2: vsock serve-status 0$' "$c" && grep -q '^L2: vsock-serve: serve done: 103 connections, 102 ok .*, 1 held unread, 0 failed' "$c" ||
		why="$why L2's server: $(grep -E '^L2: vsock-serve: (serve done|conn)' "$c" | head -n 2 | tr '\n' ' ');"
	verdict vsock "$why" \
		"isola-vsock (sandboxed), L2's vmw_vsock_virtio_transport, CID $VSOCK_CID: guest->host $VSOCK_MIB MiB each way ($(sed -n 's/^L2: vsock-g2h: stream ok: .*, \([0-9.]* s, [0-9.]* MiB\/s\)/\1/p' "$c")), host->guest through CONNECT $VSOCK_MIB MiB each way ($(sed -n 's/^h2g: stream ok: .*, \([0-9.]* s, [0-9.]* MiB\/s\)/\1/p' "$d")), 100 connections at once ($(sed -n 's/^many: connected 100 at once in \([0-9.]* s\).*/\1/p' "$d")), all checksummed; a never-read connection blocked its writer after $((${nr:-0} / 1024)) KiB, isola-vsock's RSS ${r0:-?} -> ${r1:-?} -> ${r2:-?} KiB (before, blocked, after 5 s held)"
}
