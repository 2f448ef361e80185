# bench/linux's runs (isola.nested=bench), sourced by L1's /init: isola and
# QEMU boot the same L2 kernel and initramfs (1 vCPU, 512 MiB, L2 powers off
# as soon as /init runs: isola.mode=bench) on L1's /dev/kvm, interleaved, so
# that every VMM meets the same L1.  One line per run for bench/linux/run.sh:
#   @@RUN SETTING CONFIG ROUND ok|FAIL run_init=S wall_us=N maxrss_kib=N
#         minflt=N majflt=N user_us=N sys_us=N pgfault=N status=N thp=N
#         [why=REASONS, to the end of the line]
# SETTING A: L1's transparent huge pages as booted; B: shmem_enabled=advise
# (THP for shmem memfds that ask, i.e. isola's guest RAM) and a hugetlbfs
# pool.  run_init is L2's own "Run /init" stamp; the rest is
# /isola/measure's (bench/boot/measure.c) around the VMM process, exec to
# exit; thp is the rise of L1's thp_fault_alloc + thp_file_alloc.
# isola.runs= rounds (default 10), isola.warmup= uncounted rounds before
# them (default 1, ROUND w1...), isola.timeout= seconds per run.

B=/tmp/bench
mkdir -p "$B"
MEASURE=/isola/measure
QEMU=/usr/bin/qemu-system-x86_64
BENCH_CMDLINE="$L2_CMDLINE isola.mode=bench"
THP=/sys/kernel/mm/transparent_hugepage
MEM_MIB=512
RUNS=$(l1_arg runs)
RUNS=${RUNS:-10}
WARMUP=$(l1_arg warmup)
WARMUP=${WARMUP:-1}

# the selected value of a sysfs choice file: "always [never]" -> never
thp_value() { sed 's/.*\[\(.*\)\].*/\1/' "$THP/$1"; }

THP_ENABLED=$(thp_value enabled)
THP_SHMEM=$(thp_value shmem_enabled)

# the hugetlbfs pool of setting B: the guest's 256 pages and a margin,
# taken once now while L1's memory is not yet fragmented
HUGE_PAGES=$((MEM_MIB / 2 + 8))
mkdir -p /dev/hugepages
mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages
echo "$HUGE_PAGES" >/proc/sys/vm/nr_hugepages

echo "@@INFO l1-kernel $(uname -r)"
echo "@@INFO l1-cpu $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1) ($(grep -c ^processor /proc/cpuinfo) CPUs)"
echo "@@INFO l1-mem $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
echo "@@INFO l1-clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "@@INFO thp-as-booted enabled=$THP_ENABLED shmem_enabled=$THP_SHMEM defrag=$(thp_value defrag)"
echo "@@INFO hugetlbfs nr_hugepages=$(cat /proc/sys/vm/nr_hugepages) (asked $HUGE_PAGES) free=$(sed -n 's/^HugePages_Free: *//p' /proc/meminfo) mounted=$(grep -c ' /dev/hugepages hugetlbfs' /proc/mounts)"
echo "@@INFO qemu $($QEMU --version | head -n 1)"
echo "@@INFO isola $($ISOLA --version 2>&1 | head -n 1)"
echo "@@INFO l2 kernel=$L2_KERNEL initrd=$L2_INITRD cmdline=$BENCH_CMDLINE memory=${MEM_MIB}M cpus=1"
echo "@@INFO rounds runs=$RUNS warmup=$WARMUP timeout=$STEP_TIMEOUT"

# set_thp A|B: L1's THP settings for that column of the benchmark
set_thp() {
	echo "$THP_ENABLED" >"$THP/enabled"
	if [ "$1" = A ]; then
		echo "$THP_SHMEM" >"$THP/shmem_enabled"
	else
		echo advise >"$THP/shmem_enabled"
	fi
}

MICROVM=microvm,x-option-roms=off,pit=off,pic=off,rtc=on,isa-serial=on
QEMU_COMMON="-accel kvm -cpu host -smp 1 -m ${MEM_MIB}M -nodefaults -no-user-config -no-reboot -display none -serial stdio"

# vmm_command CONFIG: the command line of that configuration ($BENCH_CMDLINE
# has spaces: it is passed as a separate argument by the caller)
vmm_command() {
	case $1 in
	isola) echo "$ISOLA run --kernel $L2_KERNEL --initrd $L2_INITRD --memory ${MEM_MIB}M --cpus 1 --console stdio" ;;
	isola-2M) echo "$ISOLA run --kernel $L2_KERNEL --initrd $L2_INITRD --memory ${MEM_MIB}M --cpus 1 --console stdio --huge-pages 2M" ;;
	microvm) echo "$QEMU -M $MICROVM $QEMU_COMMON -kernel $L2_KERNEL -initrd $L2_INITRD" ;;
	microvm-hugetlbfs) echo "$QEMU -object memory-backend-file,id=mem,size=${MEM_MIB}M,mem-path=/dev/hugepages,share=on -M $MICROVM,memory-backend=mem $QEMU_COMMON -kernel $L2_KERNEL -initrd $L2_INITRD" ;;
	pc) echo "$QEMU -M pc $QEMU_COMMON -kernel $L2_KERNEL -initrd $L2_INITRD" ;;
	esac
}

# the option that takes the kernel command line
cmdline_option() {
	case $1 in
	isola*) echo --cmdline ;;
	*) echo -append ;;
	esac
}

thp_allocs() { awk '$1 == "thp_fault_alloc" || $1 == "thp_file_alloc" { n += $2 } END { print n + 0 }' /proc/vmstat; }

why_add() { why="${why:+$why; }$1"; }

# bench_run SETTING CONFIG ROUND: one boot, one @@RUN line
bench_run() {
	name=$1-$2-$3
	thp_before=$(thp_allocs)
	# shellcheck disable=SC2046 # the command is split into words on purpose
	result=$($MEASURE -o "$B/$name.out" -t "$STEP_TIMEOUT" $(vmm_command "$2") "$(cmdline_option "$2")" "$BENCH_CMDLINE")
	thp=$(($(thp_allocs) - thp_before))
	tr -d '\r' <"$B/$name.out" >"$B/$name.con"
	status=$(echo "$result" | sed -n 's/.*status=\([0-9]*\).*/\1/p')
	init=$(grep -m 1 '^L2: init ' "$B/$name.con")
	run_init=$(echo "$init" | sed -n 's/.*run-init-at=\([0-9.]*\).*/\1/p')
	why=
	[ "$status" = 0 ] || why_add "status ${status:-none}$([ "$status" = 137 ] && echo " (killed after $STEP_TIMEOUT s)")"
	[ -n "$init" ] || why_add "L2 never reached /init"
	[ -n "$init" ] && [ -z "$run_init" ] && why_add "no run-init-at in L2's line"
	echo "$init" | grep -q ' cpus=1 ' || [ -z "$init" ] || why_add "L2 counted $(echo "$init" | sed -n 's/.*cpus=\([0-9]*\).*/\1/p') CPUs"
	left=$(pidof isola isola-blk isola-rng qemu-system-x86_64)
	if [ -n "$left" ]; then
		why_add "processes left behind: $left"
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null
	fi
	if [ -z "$why" ]; then
		echo "@@RUN $1 $2 $3 ok run_init=$run_init $result thp=$thp"
		# the first time, what the VMM and L2 said (warnings show here)
		if [ ! -e "$B/shown-$1-$2" ]; then
			touch "$B/shown-$1-$2"
			grep -v '^$' "$B/$name.con" | head -n 12 | sed "s/^/    [$name] /"
		fi
	else
		echo "@@RUN $1 $2 $3 FAIL run_init=${run_init:--} $result thp=$thp why=$why"
		echo "L1: [$name] $(vmm_command "$2") $(cmdline_option "$2") '$BENCH_CMDLINE'"
		tail -n 25 "$B/$name.con" | sed "s/^/    [$name] /"
	fi
	rm -f "$B/$name.out"
}

for setting in A B; do
	set_thp "$setting"
	echo "@@INFO setting-$setting enabled=$(thp_value enabled) shmem_enabled=$(thp_value shmem_enabled) nr_hugepages=$(cat /proc/sys/vm/nr_hugepages)"
done

CONFIGS_A="isola microvm pc"
CONFIGS_B="isola isola-2M microvm microvm-hugetlbfs"

# rotate K WORD...: the words, starting with the (K mod count)-th
rotate() {
	k=$(($1 % ($# - 1)))
	shift
	i=0
	for w; do [ "$i" -ge "$k" ] && printf '%s ' "$w"; i=$((i + 1)); done
	i=0
	for w; do [ "$i" -lt "$k" ] && printf '%s ' "$w"; i=$((i + 1)); done
}

# run_setting SETTING ROUND INDEX: every configuration of SETTING once,
# starting with a different one each round
run_setting() {
	set_thp "$1"
	if [ "$1" = A ]; then configs=$CONFIGS_A; else configs=$CONFIGS_B; fi
	# shellcheck disable=SC2086 # a list of words
	for config in $(rotate "$3" $configs); do
		bench_run "$1" "$config" "$2"
	done
}

# the rounds: which setting goes first alternates too
round=1
total=$((WARMUP + RUNS))
while [ "$round" -le "$total" ]; do
	if [ "$round" -le "$WARMUP" ]; then label=w$round; else label=$((round - WARMUP)); fi
	echo "L1: round $label at $(cut -d' ' -f1 /proc/uptime) s"
	if [ $((round % 2)) = 1 ]; then
		run_setting A "$label" "$round"
		run_setting B "$label" "$round"
	else
		run_setting B "$label" "$round"
		run_setting A "$label" "$round"
	fi
	round=$((round + 1))
done
set_thp A
echo "@@END"
