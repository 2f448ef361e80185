# The network side of the nested runs (issue 12), sourced by l1-cases.sh
# (the cases) and l1-netbench.sh (bench/linux/net.sh): a network namespace
# made for the run holds a tap at 10.99.0.1/24; the VMM (isola, or QEMU as
# the control experiment) runs inside the namespace and gives L2 a
# virtio-net device on that tap; L2 (isola.mode=net, l2-lib.sh's l2_net)
# takes 10.99.0.2, pings L1 and serves nettest until L1 says quit.

IP=/usr/sbin/ip # iproute2's: busybox's ip has neither netns nor tuntap
NETTEST=/isola/nettest
QEMU=/usr/bin/qemu-system-x86_64
L2_NET_INITRD=/l2/l2-net.cpio.gz
NET_L1=10.99.0.1
NET_L2=10.99.0.2
NET_PORT=7000
NET_NS=isola-net-$$
NET_TAP=tap-isola$$

# net_setup QUEUES: the namespace and its tap (multi_queue when QUEUES > 1)
net_setup() {
	net_teardown
	$IP netns add "$NET_NS" || return 1
	$IP -n "$NET_NS" link set lo up
	if [ "$1" -gt 1 ]; then
		$IP -n "$NET_NS" tuntap add "$NET_TAP" mode tap multi_queue || return 1
	else
		$IP -n "$NET_NS" tuntap add "$NET_TAP" mode tap || return 1
	fi
	$IP -n "$NET_NS" addr add "$NET_L1/24" dev "$NET_TAP" && $IP -n "$NET_NS" link set "$NET_TAP" up
}

# the tap goes with its namespace
net_teardown() {
	$IP netns del "$NET_NS" 2>/dev/null
	return 0
}

# nsx COMMAND...: COMMAND in the namespace
nsx() { $IP netns exec "$NET_NS" "$@"; }

# net_vmm_args VMM QUEUES OFFLOADS(on|off) CPUS: sets NET_CMD (the command
# without L2's command line) and NET_APPEND_OPT (the option that takes it)
# shellcheck disable=SC2034 # NET_CMD, NET_APPEND_OPT: for the sourcing scripts
net_vmm_args() {
	mem=512M
	case $1 in
	isola)
		opts=tap=$NET_TAP
		[ "$2" -gt 1 ] && opts=$opts,queues=$2
		[ "$3" = off ] && opts=$opts,offloads=off
		NET_CMD="$ISOLA run --kernel $L2_KERNEL --initrd $L2_NET_INITRD --memory $mem --cpus $4 --console stdio --net $opts"
		NET_APPEND_OPT=--cmdline
		;;
	qemu | qemu-vhost)
		# QEMU's virtio-net (user space, or vhost-net in L1's kernel) on
		# the same tap; multi-queue needs 2N+2 MSI-X vectors
		vhost=off
		[ "$1" = qemu-vhost ] && vhost=on
		dev=virtio-net-pci,netdev=n0,romfile=
		[ "$2" -gt 1 ] && dev=$dev,mq=on,vectors=$((2 * $2 + 2))
		[ "$3" = off ] && dev=$dev,csum=off,guest_csum=off,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off
		NET_CMD="$QEMU -M pc -accel kvm -cpu host -smp $4 -m $mem -nodefaults -no-user-config -no-reboot -display none -serial stdio -kernel $L2_KERNEL -initrd $L2_NET_INITRD -netdev tap,id=n0,ifname=$NET_TAP,script=no,downscript=no,vhost=$vhost,queues=$2 -device $dev"
		NET_APPEND_OPT=-append
		;;
	esac
}

# net_wait_ready CONSOLE GONE...: until L2 serves (0), or gives up, or the
# VMM is gone (GONE: its pid, or a file that appears when it ended), or the
# step's time is out
net_wait_ready() {
	con=$1
	shift
	i=0
	while [ "$i" -lt $((STEP_TIMEOUT * 5)) ]; do
		grep -q '^L2: net ready' "$con" 2>/dev/null && return 0
		grep -q '^L2: poweroff' "$con" 2>/dev/null && return 1
		for g; do
			case $g in
			/*) [ -e "$g" ] && return 1 ;;
			*) kill -0 "$g" 2>/dev/null || return 1 ;;
			esac
		done
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# net_ping: L1 pings L2 from the namespace; prints RECEIVED/SENT
net_ping() {
	nsx ping -c 5 -W 3 "$NET_L2" 2>&1 | sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\2\/\1/p'
}

# net_quit: ends L2's nettest, so that L2 reports and powers off
net_quit() {
	nsx $NETTEST -p "quit: " quit "$NET_L2" "$NET_PORT"
}

# signal_isola_core SIG: to isola's core only (`pidof isola` also finds its
# spawner, comm isola-spawner)
signal_isola_core() {
	for p in $(pidof isola); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = isola ] && kill -"$1" "$p" 2>/dev/null
	done
}

# net_stall_dump NAME STEP: a transfer step (ping, udp, tcp) failed, or the
# case is about to be cut off: before isola is killed, SIGUSR1 to every
# isola-net that isola started (its outer pid: the sandbox's parent passes
# the signal on), which logs each ring's state to isola's stderr
# ($W/NAME.err, servers/README.md "Operations"); a second later those lines
# and the tap's counters go to $W/NAME.drv as "stall-dump STEP: ...": the
# case's section shows them, net_stall_summary puts them in its reason.
# Whether isola-net consumed the avail ring, filled used and decided to
# interrupt tells its bug from one below it (irqfd, L1's KVM, the nested
# SVM QEMU emulates).
net_stall_dump() {
	d=$W/$1.drv
	e=$W/$1.err
	before=$(grep -c 'isola-net: ring' "$e" 2>/dev/null)
	sent=
	for p in $(pidof isola-net); do
		pp=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null)
		[ "$(cat "/proc/$pp/comm" 2>/dev/null)" = isola ] || continue
		kill -USR1 "$p" 2>/dev/null && sent="$sent $p"
	done
	echo "stall-dump $2: SIGUSR1 to isola-net:${sent:- none running}" >>"$d"
	# and to isola itself (the core, not its spawner, which blocks it):
	# each vCPU's registers, events, APIC and the page walk of its RIP
	vbefore=$(grep -c 'isola: SIGUSR1: ' "$e" 2>/dev/null)
	signal_isola_core USR1
	sleep 1
	grep 'isola-net: ring' "$e" 2>/dev/null | tail -n +$((${before:-0} + 1)) | sed "s/^/stall-dump $2: /" >>"$d"
	grep 'isola: SIGUSR1: ' "$e" 2>/dev/null | tail -n +$((${vbefore:-0} + 1)) | sed "s/^/stall-dump $2: /" >>"$d"
	nsx $IP -s link show "$NET_TAP" 2>&1 | sed "s/^/stall-dump $2: /" >>"$d"
	# what L2's vCPUs did last, from L1's KVM trace (l1-init)
	[ -r /sys/kernel/tracing/trace ] && grep -v '^#' /sys/kernel/tracing/trace | tail -n 40 |
		sed "s/^ *//; s/^/stall-dump $2: kvm-trace: /" >>"$d"
	# A vCPU whose own page walk of its RIP leaves L2's RAM (CR3 or a
	# top-level entry pointing past it) can run no further: L1's KVM
	# meets a nested page fault on the page-table read, emulates, injects
	# #PF, and meets the same fault delivering it, forever (the trace
	# shows the loop).  Seen under QEMU's nested SVM where the same L2
	# otherwise passes; L2's memory is isola-net's to write only through
	# the buffers L2 posts, and a page walk is not one of them.  Ended now
	# rather than at the step's timeout, marked lost (net_boot boots L2
	# again and reports it).
	walk=$(grep -m 1 "^stall-dump $2: isola: SIGUSR1: vCPU [0-9]*: page walk of rip:.* is not RAM" "$d")
	if [ -n "$walk" ]; then
		echo "${walk#stall-dump $2: isola: SIGUSR1: }" >"$W/$1.lost"
		echo "stall-dump $2: a vCPU's page walk leaves L2's RAM: isola stopped (SIGTERM)" >>"$d"
		signal_isola_core TERM
	fi
}

# net_stall_summary NAME STEP: one line for the FAIL reason from STEP's
# dump (or the cut-off's): per receive/transmit ring what the driver made
# available, what isola-net took and returned, the event index and its
# interrupts/kicks (the control ring left out)
net_stall_summary() {
	d=$W/$1.drv
	s=$2
	grep -q "^stall-dump $s: isola-net: ring" "$d" 2>/dev/null || s=cut-off
	grep -q "^stall-dump $s: isola-net: ring" "$d" 2>/dev/null || return 0
	awk -v p="stall-dump $s: isola-net: ring " '
		index($0, p) == 1 && !/ ctrl ok=/ {
			split("", v)
			kind = "ring"
			for (i = 6; i <= NF; i++) {
				if ($i == "rx" || $i == "tx" || $i == "ctrl") kind = $i
				if (split($i, kv, "=") == 2) v[kind "." kv[1]] = kv[2]
			}
			r = $5
			line = sprintf("%s%s avail %s taken %s used %s", kind == "ring" ? "r" : kind, r,
				v["ring.avail.idx"], v["ring.last_avail"], v["ring.used.idx"])
			if (kind == "rx")
				line = line sprintf(" used_event %s calls %s need_kick %s", v["ring.used_event"], v["ring.calls"], v["rx.need_kick"])
			else
				line = line sprintf(" avail_event %s kicks %s calls %s", v["ring.avail_event"], v["ring.kicks"], v["ring.calls"])
			out = out (out == "" ? "" : ", ") line
		}
		END { printf "isola-net rings when %s failed: %s (the whole dump: stall-dump lines below);", step, out }
	' step="$s" "$d"
}
