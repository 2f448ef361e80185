# bench/linux/net.sh's runs (isola.nested=netbench), sourced by L1's /init:
# the same L2 (1 vCPU, 512 MiB, the net initramfs: virtio_net, 1 queue pair,
# offloads on) on isola and on QEMU (-accel kvm, virtio-net-pci on the same
# kind of tap: QEMU's user-space virtio-net, and vhost-net in L1's kernel),
# interleaved with the first one rotating each round, so that every VMM
# meets the same L1.  Each boot moves NET_MIB MiB from L1 to L2 (L2
# receives: "rx"), then NET_MIB MiB from L2 to L1 ("tx"), then both at once
# ("both"), each on one TCP connection checked by nettest.  One line a
# transfer for bench/linux/net.sh:
#   @@NET VMM ROUND DIR ok|FAIL mibs=N secs=S [why=...]
# isola.runs= rounds (default 5), isola.warmup= uncounted rounds (default 1),
# isola.netmib= MiB a transfer (default 64).

. /nested/l1-net.sh
RUNS=$(l1_arg runs)
RUNS=${RUNS:-5}
WARMUP=$(l1_arg warmup)
WARMUP=${WARMUP:-1}
NET_MIB=$(l1_arg netmib)
NET_MIB=${NET_MIB:-64}
B=/tmp/netbench
mkdir -p "$B"

CONFIGS="isola qemu qemu-vhost"
[ -c /dev/vhost-net ] || CONFIGS="isola qemu"
echo "@@INFO l1-kernel $(uname -r)"
echo "@@INFO l1-cpu $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(grep -c ^processor /proc/cpuinfo) CPUs)"
echo "@@INFO qemu $($QEMU --version | head -n 1)"
echo "@@INFO isola $($ISOLA --version 2>&1 | head -n 1)"
echo "@@INFO vhost-net $([ -c /dev/vhost-net ] && echo "/dev/vhost-net present: qemu-vhost runs" || echo "no /dev/vhost-net: qemu-vhost skipped")"
echo "@@INFO l2 1 vCPU, 512M, 1 queue pair, offloads on; $NET_MIB MiB a transfer, one TCP connection"
echo "@@INFO rounds runs=$RUNS warmup=$WARMUP timeout=$STEP_TIMEOUT configs=$CONFIGS"
[ -x /isola/isola-net ] || echo "@@INFO no /isola/isola-net: the isola runs fail"

# netbench_run CONFIG ROUND: one boot, three transfers, three @@NET lines
netbench_run() {
	name=$1-$2
	con=$B/$name.raw
	: >"$con"
	if ! net_setup 1; then
		for dir in rx tx both; do echo "@@NET $1 $2 $dir FAIL mibs=0 secs=0 why=no namespace or tap"; done
		return
	fi
	net_vmm_args "$1" 1 on 1
	# shellcheck disable=SC2086 # a command line, split into words on purpose
	timeout -s KILL "$STEP_TIMEOUT" $IP netns exec "$NET_NS" $NET_CMD "$NET_APPEND_OPT" \
		"$L2_CMDLINE isola.mode=net" </dev/null >"$con" 2>"$B/$name.err" &
	vmm=$!
	if net_wait_ready "$con" "$vmm"; then
		for dir in rx tx both; do
			case $dir in
			rx) up=$NET_MIB down=0 ;;
			tx) up=0 down=$NET_MIB ;;
			both) up=$NET_MIB down=$NET_MIB ;;
			esac
			out=$(nsx "$NETTEST" -p "" tcp "$NET_L2" "$NET_PORT" "$up" "$down" 2>&1)
			st=$?
			line=$(echo "$out" | grep '^tcp ok: ')
			secs=$(echo "$line" | sed -n 's/.*, \([0-9.]*\) s, \([0-9.]*\) MiB\/s$/\1/p')
			mibs=$(echo "$line" | sed -n 's/.*, \([0-9.]*\) s, \([0-9.]*\) MiB\/s$/\2/p')
			if [ "$st" = 0 ] && [ -n "$mibs" ]; then
				echo "@@NET $1 $2 $dir ok mibs=$mibs secs=$secs"
			else
				echo "@@NET $1 $2 $dir FAIL mibs=0 secs=0 why=$(echo "$out" | grep -v progress | tail -n 2 | tr '\n' ' ')"
			fi
		done
		net_quit >/dev/null 2>&1
	else
		for dir in rx tx both; do echo "@@NET $1 $2 $dir FAIL mibs=0 secs=0 why=L2 never served"; done
		tr -d '\r' <"$con" | tail -n 15 | sed "s/^/    [$name] /"
		sed "s/^/    [$name] /" "$B/$name.err" | tail -n 10
	fi
	wait "$vmm"
	st=$?
	[ "$st" = 0 ] || echo "L1: [$name] the VMM ended with status $st"
	left=$(pidof isola isola-net qemu-system-x86_64)
	# shellcheck disable=SC2086
	[ -n "$left" ] && kill -KILL $left 2>/dev/null
	net_teardown
}

# rotate K WORD...: the words, starting with the (K mod count)-th
rotate() {
	k=$(($1 % ($# - 1)))
	shift
	i=0
	for w; do [ "$i" -ge "$k" ] && printf '%s ' "$w"; i=$((i + 1)); done
	i=0
	for w; do [ "$i" -lt "$k" ] && printf '%s ' "$w"; i=$((i + 1)); done
}

round=1
total=$((WARMUP + RUNS))
while [ "$round" -le "$total" ]; do
	if [ "$round" -le "$WARMUP" ]; then label=w$round; else label=$((round - WARMUP)); fi
	echo "L1: round $label at $(cut -d' ' -f1 /proc/uptime) s"
	# shellcheck disable=SC2086 # a list of words
	for config in $(rotate "$round" $CONFIGS); do
		netbench_run "$config" "$label"
	done
	round=$((round + 1))
done
echo "@@END"
