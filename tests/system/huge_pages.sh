#!/bin/bash
# Guest RAM on huge pages (issue 10, bug 3):
#  (a) --huge-pages 2M: blk_stress with a disk passes, and while it runs
#      isola's guest RAM mapping and isola-blk's are hugetlb (smaps
#      KernelPageSize 2048 kB) and the pool's free, unreserved pages dropped
#      by exactly the guest's 32 (reserved at start, not on touch); the
#      reboot guest reboots twice with a pool of exactly the guest's pages;
#  (b) a pool one page short: status 2 at start, one line that names the
#      nr_hugepages value that would do (never a SIGBUS later);
#  (c) --memory not a multiple of 2 MiB with --huge-pages 2M: refused;
#  (d) shmem_enabled=advise: a guest whose RAM the VMM fills (a 16 MiB
#      initrd) shows 2 MiB pages in isola's smaps (ShmemPmdMapped); under
#      never, one hint line at start (not below 128 MiB, not with
#      --huge-pages 2M);
#  (e) the API: PUT /machine-config "huge_pages": "2M" is echoed by GET
#      /machine-config and /vm/config, "1G", 5 and an odd mem_size_mib get
#      400 with a fault_message; InstanceStart with the pool too small is a
#      400 naming nr_hugepages, and after the pool grows it boots on hugetlb.
# Changes the host's 2 MiB hugetlb pool and transparent_hugepage
# shmem_enabled (top level and hugepages-2048kB); the EXIT trap puts the
# original values back, on failure too.  Needs root.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"

POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
THP=/sys/kernel/mm/transparent_hugepage
[[ -x $ISOLA && -x build/isola-blk && -x build/isola-rng ]] || fail "run make first"
for g in blk_stress hello reboot counter; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done
[[ -e /dev/kvm ]] || skip "no /dev/kvm"
((EUID == 0)) || skip "needs root: it sets the host's nr_hugepages and shmem_enabled"
[[ -w $POOL/nr_hugepages ]] || skip "no 2 MiB hugetlb pages in this kernel ($POOL)"
command -v curl >/dev/null || skip "no curl"
[[ -w $THP/shmem_enabled ]] || skip "no $THP/shmem_enabled (a kernel without THP), so the 4 KiB page hint cannot be checked"

TMP=$(mktemp -d /tmp/isola-huge.XXXXXX)
ORIG_POOL=$(cat "$POOL/nr_hugepages")
choice() { grep -o '\[[a-z_]*\]' "$1" | tr -d '[]'; }
ORIG_SHMEM=$([[ -f $THP/shmem_enabled ]] && choice "$THP/shmem_enabled")
ORIG_SHMEM_2M=$([[ -f $THP/hugepages-2048kB/shmem_enabled ]] && choice "$THP/hugepages-2048kB/shmem_enabled")
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
	echo "$ORIG_POOL" >"$POOL/nr_hugepages"
	[[ -n $ORIG_SHMEM ]] && echo "$ORIG_SHMEM" >"$THP/shmem_enabled"
	[[ -n $ORIG_SHMEM_2M ]] && echo "$ORIG_SHMEM_2M" >"$THP/hugepages-2048kB/shmem_enabled"
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

# Free pages nobody has reserved, and pages other users hold: the pool is
# set to OTHERS + what each case needs, so the host's own use is left alone.
available() { echo $(($(cat "$POOL/free_hugepages") - $(cat "$POOL/resv_hugepages"))); }
OTHERS=$(($(cat "$POOL/nr_hugepages") - $(available)))
# set_pool N: N free pages for us; false if the kernel could not find them.
set_pool() {
	echo $((OTHERS + $1)) >"$POOL/nr_hugepages"
	[[ $(cat "$POOL/nr_hugepages") == $((OTHERS + $1)) ]]
}
# smaps_field PID FIELD: FIELD summed over PID's guest RAM mappings, in kB
# (KernelPageSize: the first mapping's); empty if PID maps no guest RAM.
smaps_field() {
	awk -v f="$2:" '/^[0-9a-f]+-[0-9a-f]+ / { ram = /isola-guest-ram/; if (ram) n++ }
		ram && $1 == f { if (f == "KernelPageSize:") { if (!k) k = $2 } else s += $2 }
		END { if (n) print (f == "KernelPageSize:" ? k : s + 0) }' "/proc/$1/smaps" 2>/dev/null
}
# descendants PID: every process under PID (the spawner, the servers).
descendants() {
	local child
	for child in $(ps -o pid= --ppid "$1"); do
		echo "$child"
		descendants "$child"
	done
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
	local tries=$(($1 * 20))
	shift
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

DISK=$TMP/disk.img
truncate -s 16M "$DISK"

echo "== (a) --huge-pages 2M: isola and isola-blk on hugetlb pages"
if set_pool 40; then
	before=$(available)
	"$ISOLA" run --kernel "$GUESTS/blk_stress.elf" --memory 64M --huge-pages 2M \
		--disk "path=$DISK" --cmdline seconds=4 --console "file:$TMP/a.console" --timeout 60 \
		</dev/null >/dev/null 2>"$TMP/a.err" &
	pid=$!
	PIDS+=("$pid")
	blk_kps() {
		local p
		for p in $(descendants "$pid"); do
			[[ $(readlink "/proc/$p/exe") == */isola-blk ]] || continue
			[[ -n $(smaps_field "$p" KernelPageSize) ]] && smaps_field "$p" KernelPageSize && return 0
		done
		return 1
	}
	wait_for 20 grep -qs 'blk_stress' "$TMP/a.console"
	wait_for 10 blk_kps >/dev/null
	core_kps=$(smaps_field "$pid" KernelPageSize)
	server_kps=$(blk_kps)
	during=$(available)
	wait "$pid"
	st=$?
	echo "  isola: KernelPageSize ${core_kps:-none} kB, isola-blk: ${server_kps:-none} kB;" \
		"free unreserved pages $before -> $during while it ran; exit status $st"
	[[ $st == 1 ]] && ! grep -q '^FAIL' "$TMP/a.console" && ok "blk_stress passed on hugetlb RAM" ||
		problem "blk_stress with --huge-pages 2M: status $st: $(tail -n 3 "$TMP/a.err" "$TMP/a.console")"
	[[ $core_kps == 2048 ]] && ok "isola's guest RAM mapping has 2048 kB pages" ||
		problem "isola's guest RAM mapping: KernelPageSize '${core_kps}', want 2048"
	[[ $server_kps == 2048 ]] && ok "isola-blk's mapping of it has 2048 kB pages" ||
		problem "isola-blk's guest RAM mapping: KernelPageSize '${server_kps}', want 2048"
	((before - during == 32)) && ok "the guest's 32 pages were taken from the pool at start" ||
		problem "free unreserved pages went $before -> $during, want a drop of 32 (64 MiB reserved)"
	# The device servers' mappings go when they are reaped, which may be a
	# moment after isola itself exits: wait up to 5 s for the pool to refill.
	for _ in $(seq 50); do [[ $(available) == "$before" ]] && break; sleep 0.1; done
	[[ $(available) == "$before" ]] || problem "after exit $(available) pages are free, want $before back"

	set_pool 32
	timeout 120 "$ISOLA" run --kernel "$GUESTS/reboot.elf" --memory 64M --huge-pages 2M \
		--disk "path=$DISK" --rng --on-reset reboot --cmdline reboots=2 \
		--console "file:$TMP/reboot.console" --timeout 100 </dev/null >/dev/null 2>"$TMP/reboot.err"
	st=$?
	if [[ $st == 1 ]] && grep -q 'PASS: 2 reboots' "$TMP/reboot.console" && ! grep -q '^FAIL' "$TMP/reboot.console"; then
		ok "with a pool of exactly 32 pages the reboot guest rebooted twice on them"
	else
		problem "reboot with a 32-page pool: status $st: $(tail -n 2 "$TMP/reboot.err") $(grep '^FAIL' "$TMP/reboot.console")"
	fi
else
	problem "the kernel could not make 40 more huge pages (nr_hugepages $(cat "$POOL/nr_hugepages"))"
fi

echo "== (b) a pool one page short"
set_pool 31
timeout 20 "$ISOLA" run --kernel "$GUESTS/hello.elf" --memory 64M --huge-pages 2M --console none \
	</dev/null >"$TMP/b.out" 2>"$TMP/b.err"
st=$?
echo "  status $st: $(cat "$TMP/b.err")"
want="64 MiB needs 32 pages, the host's pool has 31 free; as root run 'echo $((OTHERS + 32)) > [^ ']*nr_hugepages'"
[[ $st == 2 && $(grep -c . "$TMP/b.err") == 1 ]] && grep -Eq "$want" "$TMP/b.err" &&
	ok "status 2, one line saying 'echo $((OTHERS + 32))'" ||
	problem "one page short: status $st, stderr '$(cat "$TMP/b.err")', want 2 and /$want/"

echo "== (c) --memory not a multiple of 2 MiB"
timeout 20 "$ISOLA" run --kernel "$GUESTS/hello.elf" --memory 63M --huge-pages 2M \
	</dev/null >/dev/null 2>"$TMP/c.err"
st=$?
[[ $st == 2 ]] && grep -q 'not a multiple of 2 MiB.*--huge-pages 2M' "$TMP/c.err" &&
	ok "--memory 63M --huge-pages 2M: $(cat "$TMP/c.err")" ||
	problem "--memory 63M --huge-pages 2M: status $st, '$(cat "$TMP/c.err")'"

echo "== (d) shmem transparent huge pages, and the hint"
if [[ -n $ORIG_SHMEM ]]; then
	[[ -n $ORIG_SHMEM_2M ]] && echo inherit >"$THP/hugepages-2048kB/shmem_enabled"
	echo advise >"$THP/shmem_enabled"
	head -c $((16 << 20)) /dev/urandom >"$TMP/initrd.img"
	"$ISOLA" run --kernel "$GUESTS/blk_stress.elf" --memory 256M --initrd "$TMP/initrd.img" \
		--disk "path=$DISK" --cmdline seconds=3 --console "file:$TMP/d.console" --timeout 60 \
		</dev/null >/dev/null 2>"$TMP/d.err" &
	pid=$!
	PIDS+=("$pid")
	wait_for 20 grep -qs 'blk_stress' "$TMP/d.console"
	pmd=$(smaps_field "$pid" ShmemPmdMapped)
	file_pmd=$(smaps_field "$pid" FilePmdMapped)
	wait "$pid"
	st=$?
	echo "  advise: ShmemPmdMapped ${pmd:-none} kB, FilePmdMapped ${file_pmd:-none} kB, exit status $st"
	((${pmd:-0} + ${file_pmd:-0} >= 16384)) && ok "the 16 MiB initrd the VMM wrote sits on 2 MiB pages" ||
		problem "shmem_enabled=advise: ${pmd:-no} kB PMD-mapped guest RAM, want >= 16384 (the initrd)"
	[[ $st == 1 ]] || problem "blk_stress under advise: status $st"
	grep -q '4 KiB pages' "$TMP/d.err" && problem "under advise isola still printed the hint"

	echo never >"$THP/shmem_enabled"
	"$ISOLA" run --kernel "$GUESTS/hello.elf" --memory 256M --console none </dev/null 2>"$TMP/d2.err" >/dev/null
	hints=$(grep -c 'guest RAM is on 4 KiB pages' "$TMP/d2.err")
	[[ $hints == 1 ]] && grep -q "echo advise > $THP/shmem_enabled.*--huge-pages 2M" "$TMP/d2.err" &&
		ok "never: one hint: $(grep '4 KiB pages' "$TMP/d2.err")" ||
		problem "never, 256 MiB: $hints hint lines, want 1 naming the setting and --huge-pages 2M: $(cat "$TMP/d2.err")"
	"$ISOLA" run --kernel "$GUESTS/hello.elf" --memory 64M --console none </dev/null 2>"$TMP/d3.err" >/dev/null
	grep -q '4 KiB pages' "$TMP/d3.err" && problem "never, 64 MiB: the hint was printed below 128 MiB"
	set_pool 64
	"$ISOLA" run --kernel "$GUESTS/hello.elf" --memory 128M --huge-pages 2M --console none \
		</dev/null 2>"$TMP/d4.err" >/dev/null
	st=$?
	[[ $st == 1 ]] || problem "hello, 128 MiB on hugetlb: status $st: $(cat "$TMP/d4.err")"
	grep -q '4 KiB pages' "$TMP/d4.err" && problem "never + --huge-pages 2M: the hint was printed"
	echo "$ORIG_SHMEM" >"$THP/shmem_enabled"
else
	echo "  (d) skipped: no $THP/shmem_enabled (a kernel without THP)"
fi

echo "== (e) the API"
SOCK=$TMP/api.sock
api() {
	local method=$1 path=$2 data=${3-}
	local args=(-s --max-time 10 --unix-socket "$SOCK" -X "$method" -o "$TMP/resp" -w "%{http_code}")
	rm -f "$TMP/resp"
	[[ -n $data ]] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	CODE=$(curl "${args[@]}" "http://localhost$path")
	BODY=$(cat "$TMP/resp" 2>/dev/null)
}
# expect CODE FAULT_REGEX METHOD PATH [DATA]: FAULT_REGEX "" for a success.
expect() {
	local code=$1 regex=$2
	shift 2
	api "$@"
	if [[ $CODE == "$code" ]] && { [[ -z $regex ]] || grep -Eq "\"fault_message\": *\"[^\"]*$regex" <<<"$BODY"; }; then
		ok "$1 $2 ${3-} -> $CODE ${BODY:0:160}"
	else
		problem "$1 $2 ${3-} -> $CODE $BODY, want $code${regex:+ with a fault_message matching /$regex/}"
	fi
}
"$ISOLA" --api-sock "$SOCK" </dev/null >"$TMP/api.out" 2>"$TMP/api.err" &
pid=$!
PIDS+=("$pid")
wait_for 10 test -S "$SOCK" || problem "isola --api-sock made no socket: $(cat "$TMP/api.err")"
expect 204 "" PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/counter.elf\", \"boot_args\": \"period_ms=100\"}"
expect 204 "" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "2M"}'
api GET /machine-config
grep -q '"huge_pages": *"2M"' <<<"$BODY" && ok "GET /machine-config: $BODY" || problem "GET /machine-config: $BODY, want huge_pages \"2M\""
api GET /vm/config
grep -q '"huge_pages": *"2M"' <<<"$BODY" && ok "GET /vm/config echoes huge_pages \"2M\"" || problem "GET /vm/config: $BODY, want huge_pages \"2M\""
expect 400 'huge_pages: \\"1G\\" is not supported' PATCH /machine-config '{"huge_pages": "1G"}'
expect 400 'huge_pages: must be a string' PATCH /machine-config '{"huge_pages": 5}'
expect 400 'mem_size_mib: 63 is not a multiple of 2' PATCH /machine-config '{"mem_size_mib": 63}'
set_pool 0
expect 400 "64 MiB needs 32 pages.*echo $((OTHERS + 32)) > " PUT /actions '{"action_type": "InstanceStart"}'
set_pool 32
expect 204 "" PUT /actions '{"action_type": "InstanceStart"}'
api GET /
grep -q '"state": *"Running"' <<<"$BODY" || problem "GET / after InstanceStart: $BODY, want Running"
wait_for 10 grep -q '^count' "$TMP/api.out" || problem "the counter guest printed nothing: $(tail -n 3 "$TMP/api.err")"
kps=$(smaps_field "$pid" KernelPageSize)
[[ $kps == 2048 ]] && ok "started through the API on 2048 kB pages" || problem "API start: KernelPageSize '$kps', want 2048"
kill -TERM "$pid"
wait "$pid"
st=$?
[[ $st == 10 ]] || problem "SIGTERM: status $st, want 10"

if ((${#FAILURES[@]})); then
	fail "${#FAILURES[@]} problem(s): ${FAILURES[0]}"
fi
echo "PASS: guest RAM on hugetlb and transparent huge pages, errors and hint, API"
