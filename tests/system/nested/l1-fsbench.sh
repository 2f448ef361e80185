# bench/fs's runs (isola.nested=fsbench; issue 17 acceptance 5), sourced by
# L1's /init: the same L2 (1 vCPU, 512 MiB, the fs initramfs, Debian's
# virtiofs) on isola (--fs tag=share,socket=) and on QEMU -accel kvm
# (vhost-user-fs-pci), each on a virtiofsd of its own started here with the
# same binary and options (Debian's, -o cache=auto -o sandbox=chroot
# -o log_level=warn, the options isola-fs gives it) on a fresh directory of
# L1's tmpfs, interleaved with the first one rotating each round, so that
# every VMM meets the same L1.  L2 (l2-lib.sh's l2_fsbench) times creating,
# stating and unlinking isola.fsbfiles= small files and writing and reading
# isola.fsbmib= MiB.  One line a boot for bench/fs/run.sh:
#   @@FS VMM ROUND ok|FAIL create=S stat=S unlink=S write=S read=S [why=...]
# isola.runs= rounds (default 3), isola.warmup= uncounted rounds (default 1).
# Both VMMs' queues are their defaults: isola's 256 entries, QEMU's
# vhost-user-fs-pci queue-size=128.

RUNS=$(l1_arg runs)
RUNS=${RUNS:-3}
WARMUP=$(l1_arg warmup)
WARMUP=${WARMUP:-1}
FILES=$(l1_arg fsbfiles)
FILES=${FILES:-1000}
MIB=$(l1_arg fsbmib)
MIB=${MIB:-64}
QEMU=/usr/bin/qemu-system-x86_64
VIRTIOFSD=/usr/lib/qemu/virtiofsd
VIRTIOFSD_OPTS="-o cache=auto -o sandbox=chroot -o log_level=warn"
B=/tmp/fsbench
mkdir -p "$B"
FS_CMDLINE="$L2_CMDLINE isola.mode=fsbench isola.fstag=share isola.fsbfiles=$FILES isola.fsbmib=$MIB"

echo "@@INFO l1-kernel $(uname -r)"
echo "@@INFO l1-cpu $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(grep -c ^processor /proc/cpuinfo) CPUs)"
echo "@@INFO qemu $($QEMU --version | head -n 1)"
echo "@@INFO isola $($ISOLA --version 2>&1 | head -n 1)"
echo "@@INFO virtiofsd $VIRTIOFSD $($VIRTIOFSD --version 2>&1 | head -n 1) $VIRTIOFSD_OPTS, a new one a boot, the share on L1's tmpfs"
echo "@@INFO l2 1 vCPU, 512M (memfd, shared), $FILES small files, $MIB MiB; cmdline $FS_CMDLINE"
echo "@@INFO rounds runs=$RUNS warmup=$WARMUP timeout=$STEP_TIMEOUT"

# vmm_command CONFIG SOCKET: the VMM's command line, up to the option that
# takes L2's kernel command line
vmm_command() {
	case $1 in
	isola) echo "$ISOLA run --kernel $L2_KERNEL --initrd /l2/l2-fs.cpio.gz --memory 512M --cpus 1 --fs tag=share,socket=$2 --console stdio --cmdline" ;;
	qemu) echo "$QEMU -M q35,accel=kvm,memory-backend=mem -cpu host -smp 1 -m 512M -object memory-backend-memfd,id=mem,size=512M,share=on -nodefaults -no-user-config -no-reboot -display none -serial stdio -chardev socket,id=c0,path=$2 -device vhost-user-fs-pci,chardev=c0,tag=share -kernel $L2_KERNEL -initrd /l2/l2-fs.cpio.gz -append" ;;
	esac
}

echo "@@INFO virtiofsd command: $VIRTIOFSD --socket-path=SOCKET -o source=DIR $VIRTIOFSD_OPTS"
for config in isola qemu; do echo "@@INFO $config command: $(vmm_command $config SOCKET) '$FS_CMDLINE'"; done

# fsbench_run CONFIG ROUND: one virtiofsd, one boot, one @@FS line
fsbench_run() {
	name=$1-$2
	share=$B/share
	sock=$B/vfs.sock
	rm -rf "$share" "$sock"
	mkdir -p "$share"
	# shellcheck disable=SC2086 # the options, split on purpose
	$VIRTIOFSD --socket-path="$sock" -o source="$share" $VIRTIOFSD_OPTS </dev/null >"$B/$name.vfs" 2>&1 &
	vfs=$!
	i=0
	while [ ! -S "$sock" ] && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	# shellcheck disable=SC2046 # the command is split into words on purpose
	timeout -s KILL "$STEP_TIMEOUT" $(vmm_command "$1" "$sock") "$FS_CMDLINE" </dev/null >"$B/$name.raw" 2>"$B/$name.err"
	st=$?
	tr -d '\r' <"$B/$name.raw" >"$B/$name.con"
	line=$(grep -m 1 '^L2: fsbench create=' "$B/$name.con")
	if [ ! -e "$B/shown-$1" ]; then
		touch "$B/shown-$1"
		echo "@@INFO $1 negotiated virtio features (bit 0 first): $(sed -n 's/^L2: fsbench features //p' "$B/$name.con")"
		echo "@@INFO $1 L2 $(sed -n 's/^L2: fsbench guest //p' "$B/$name.con" | tr '\n' ' ')"
		grep -v '^$' "$B/$name.err" | head -n 5 | sed "s/^/    [$name] stderr: /"
	fi
	why=
	[ "$st" = 0 ] || why="status $st$([ "$st" = 137 ] && echo " (killed after $STEP_TIMEOUT s)"); "
	[ -n "$line" ] || why="${why}L2 said no fsbench line; "
	echo "$line" | grep -q " created=$FILES stated=$FILES left=0 write-status=0 read-records=$MIB+0 umount-status=0\$" ||
		[ -z "$line" ] || why="${why}L2's checks: $(echo "$line" | sed 's/.* created=/created=/'); "
	# virtiofsd ends with its front-end's connection
	i=0
	while kill -0 "$vfs" 2>/dev/null && [ "$i" -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$vfs" 2>/dev/null && why="${why}virtiofsd still running after the VMM; "
	left=$(pidof isola virtiofsd qemu-system-x86_64)
	if [ -n "$left" ]; then
		why="${why}processes left behind: $left; "
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null
	fi
	wait "$vfs" 2>/dev/null
	times=$(echo "$line" | sed -n 's/.*\(create=[0-9.]* stat=[0-9.]* unlink=[0-9.]* write=[0-9.]* read=[0-9.]*\).*/\1/p')
	if [ -z "$why" ] && [ -n "$times" ]; then
		echo "@@FS $1 $2 ok $times"
	else
		echo "@@FS $1 $2 FAIL ${times:-create=0 stat=0 unlink=0 write=0 read=0} why=$why"
		tail -n 15 "$B/$name.con" | sed "s/^/    [$name] /"
		sed "s/^/    [$name] stderr: /" "$B/$name.err" | tail -n 10
		sed "s/^/    [$name] virtiofsd: /" "$B/$name.vfs" | tail -n 5
	fi
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
	for config in $(rotate "$round" isola qemu); do
		fsbench_run "$config" "$label"
	done
	round=$((round + 1))
done
echo "@@END"
