#!/bin/bash
# Least privilege in the core (docs/security.md, issue 6 item 4):
#  1. ISOLA_TEST_FORBIDDEN_SYSCALL=vcpu|main|api (test-only): that thread
#     calls unshare(0) once its filter is installed; the process must die of
#     SIGSYS (status 159) with one line naming the thread, the system call
#     and the PC, and unshare must never return.
#  2. --no-seccomp: no filter, so the hook's call returns and the guest
#     still passes.
#  3. While a guest runs: every thread of isola (main, vCPUs) is in seccomp
#     filter mode with no_new_privs, and the device servers are children of
#     isola (started by the spawner with CLONE_PARENT), themselves sandboxed.
# The normal suite (tests/run.sh) runs every guest under the filters, which
# are on by default.  Runs build/isola, and build/asan/isola when built.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
for g in hello smp; do
	[[ -f $GUESTS/$g.elf ]] || fail "no $GUESTS/$g.elf; run make guests"
done
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
TMP=$(mktemp -d /tmp/isola-core-seccomp.XXXXXX)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

builds=("$ISOLA")
[[ -x build/asan/isola ]] && builds+=(build/asan/isola)

# forbidden ISOLA KIND WHAT ARGS...: the process must die of SIGSYS naming WHAT
forbidden() {
	local isola=$1 kind=$2 what=$3
	shift 3
	rm -f "$TMP/api.sock"
	ISOLA_TEST_FORBIDDEN_SYSCALL=$kind timeout -k 5 30 "$isola" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	local st=$?
	sed 's/^/    | /' "$TMP/err" | grep -v '^    | isola-\(blk\|rng\):' | head -5
	[[ $st == 159 ]] || problem "$isola, $kind thread: exit status $st, want 159 (SIGSYS)"
	grep -Eq "^isola: $what made a forbidden system call [0-9]+ \(unshare\) at PC 0x[0-9a-f]+; stopping" \
		"$TMP/err" || problem "$isola, $kind thread: no violation line naming the $what and unshare"
	grep -q 'NOT enforced' "$TMP/err" && problem "$isola, $kind thread: unshare(2) returned"
	[[ $st == 159 ]] && ok "$isola: the $kind thread's forbidden call killed the VMM with SIGSYS"
}

for isola in "${builds[@]}"; do
	forbidden "$isola" vcpu "vCPU thread 0" run --kernel "$GUESTS/hello.elf" --console none --timeout 20
	forbidden "$isola" vcpu "vCPU thread 0" run --kernel "$GUESTS/hello.elf" --console none --timeout 20 --cpus 2
	forbidden "$isola" main "main \(event loop\) thread" run --kernel "$GUESTS/hello.elf" --console none --timeout 20
	forbidden "$isola" api "API thread" --api-sock "$TMP/api.sock"

	# 2. --no-seccomp: the hook's call is not stopped, and the guest passes.
	ISOLA_TEST_FORBIDDEN_SYSCALL=vcpu timeout 30 "$isola" run --no-seccomp --kernel "$GUESTS/hello.elf" \
		--console none --timeout 20 </dev/null >"$TMP/out" 2>"$TMP/err"
	st=$?
	if [[ $st == 1 ]] && ! grep -q 'forbidden system call' "$TMP/err" &&
		grep -q 'without seccomp filters' "$TMP/err"; then
		ok "$isola --no-seccomp: no filter, hello passes"
	else
		problem "$isola --no-seccomp: status $st (want 1), stderr: $(head -c 400 "$TMP/err")"
	fi
done

# 3. Every thread filtered, no_new_privs, servers are isola's children.
# The smp guest with hold=1 prints its "holding" line only once every AP has
# run guest code, so every vCPU thread has passed its filter set-up (it
# installs it before its first KVM_RUN) and none is still starting.  A
# running `isola run` has exactly main + one thread per vCPU
# (docs/security.md, "thread" table; no API thread without --api-sock; the
# device servers are processes).
CPUS=2
"$ISOLA" run --kernel "$GUESTS/smp.elf" --memory 64M --cpus $CPUS --cmdline "cpus=$CPUS hold=1" \
	--console stdio --rng --timeout 30 </dev/null >"$TMP/out" 2>"$TMP/err" &
vmm=$!
PIDS+=("$vmm")
for _ in $(seq 200); do
	grep -q "^smp: all $CPUS CPUs ran, holding" "$TMP/out" && break
	kill -0 "$vmm" 2>/dev/null || break
	sleep 0.1
done
grep -q "^smp: all $CPUS CPUs ran, holding" "$TMP/out" ||
	problem "smp guest never reported all $CPUS CPUs running: $(head -c 400 "$TMP/out") $(head -c 400 "$TMP/err")"
# Name by name: "isola" (main) and vcpu0..vcpuN-1.  On Linux >= 6.13 KVM
# also attaches its NX huge page recovery worker to the process as a task
# ("kvm-nx-lpage-recovery", a vhost_task that runs only kernel code); it is
# counted apart, and must show the filter it inherits like any other task.
want_names="isola $(for ((i = 0; i < CPUS; i++)); do printf 'vcpu%d ' $i; done)"
want_names=${want_names% }
names=() filtered=0 threads=0
for task in /proc/$vmm/task/*; do
	[[ -r $task/status ]] || continue
	threads=$((threads + 1))
	name=$(cat "$task/comm")
	[[ $name == kvm-nx-lpage-re* ]] || names+=("$name")
	mode=$(awk '/^Seccomp:/ {print $2}' "$task/status")
	nnp=$(awk '/^NoNewPrivs:/ {print $2}' "$task/status")
	if [[ $mode == 2 && $nnp == 1 ]]; then
		filtered=$((filtered + 1))
	else
		problem "thread $name of isola: Seccomp $mode NoNewPrivs $nnp, want 2 and 1"
	fi
done
got_names=$(printf '%s\n' "${names[@]}" | sort | tr '\n' ' ')
got_names=${got_names% }
[[ $got_names == "$want_names" ]] ||
	problem "isola's threads are [$got_names], want [$want_names] (main + $CPUS vCPUs)"
[[ $got_names == "$want_names" ]] && ((filtered == threads)) &&
	ok "all $threads threads of isola ($got_names) run under a filter, no_new_privs"
rng=$(pgrep -P "$vmm" -x isola-rng | head -1)
if [[ -n $rng ]]; then
	ok "isola-rng (pid $rng) is a child of isola"
else
	problem "no isola-rng child of isola: $(ps -o pid,ppid,comm --ppid "$vmm" | tr '\n' ' ')"
fi
kill -TERM "$vmm"
wait "$vmm"
st=$?
[[ $st == 10 ]] || problem "SIGTERM under the filters: status $st, want 10; $(head -c 400 "$TMP/err")"
grep -q 'forbidden system call' "$TMP/err" && problem "a forbidden call: $(grep forbidden "$TMP/err")"

if ((${#FAILURES[@]})); then
	echo "${#FAILURES[@]} problem(s)"
	exit 1
fi
echo "core seccomp: all checks passed"
