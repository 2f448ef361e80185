#!/bin/bash
# Mutation testing (issue 18): each mutant is a one-line change a reviewer
# would call a bug; the part of the suite that owns that code must fail on it.
#   tests/mutants.sh [--check] [NAME...]
# Copies the tree once (with its build/, not build/asan) to a scratch
# directory, then for each mutant (or each whose name contains a NAME):
# applies it, rebuilds (all unit guests), runs `tests/run.sh FILTER` for its
# filters until one fails (caught), and puts the file back.  Prints
#   MUTANT | FILE | TESTS RUN | RESULT
# and "N caught, N survived".  Exit status 0 only if every mutant was caught.
# A mutant whose old text is not found exactly once is STALE (the code moved:
# update the table), a filter that selects no test is BAD FILTER; both fail.
# --check only checks that every old text is found exactly once (no build).
# Slow (a build and a partial suite run per mutant): not part of `make check`;
# `make mutants` builds the tree first.  MUTANTS_JOBS=N: make -jN (default 2).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${MUTANTS_JOBS:-2}

# ---- the mutants: NAME FILE "FILTER..." OLD NEW ------------------------------
# OLD must occur exactly once in FILE; $'...' for text spanning lines.
NAMES=() FILES=() FILTERS=() OLDS=() NEWS=()
m() { NAMES+=("$1"); FILES+=("$2"); FILTERS+=("$3"); OLDS+=("$4"); NEWS+=("$5"); }

# The issue's seven (issue 18, "Why").
m virtq_next_past_table lib/virtq.c "unit/test_virtq hostile/virtio_desc_oob" \
	'if (cur.next >= vq->size)' \
	'if (cur.next > vq->size)'
m debug_exit_status include/isola/abi.h "guest/hello_exit" \
	'#define ISOLA_DEBUG_EXIT_STATUS(v) ((((v) << 1) | 1) & 0xff)' \
	'#define ISOLA_DEBUG_EXIT_STATUS(v) (((v) | 1) & 0xff)'
m seccomp_vcpu_execveat_ptrace core/seccomp.c "unit/test_seccomp" \
	$'"getpid", "gettid", "tgkill",        /* vm_request_stop kicks every vCPU */' \
	$'"getpid", "gettid", "tgkill", "execveat", "ptrace",'
m seccomp_vcpu_set_memory_region core/seccomp.c "unit/test_seccomp" \
	'KVM_RUN, KVM_GET_REGS, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IOEVENTFD,' \
	'KVM_RUN, KVM_GET_REGS, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IOEVENTFD, KVM_SET_USER_MEMORY_REGION,'
m blk_flush_without_sync servers/blk/blk.c "unit/test_vhost_user_backend" \
	'blk->prep_sync(blk, sqe);' \
	'io_uring_prep_nop(sqe);'
m restart_budget_raised core/restart_policy.c "system/restart_budget unit/test_restart_policy" \
	'.burst = 100,' \
	'.burst = 100000,'
m poweroff_status_4 core/board.c "guest/poweroff" \
	'vm_request_stop(opaque, ISOLA_EXIT_POWEROFF, "guest powered off (%s)", source);' \
	'vm_request_stop(opaque, 4, "guest powered off (%s)", source);'
m help_without_api_sock core/main.c "system/api_errors system/api_lifecycle" \
	'"  --api-sock PATH [--config-file FILE]\n"' \
	'"  PATH [--config-file FILE]\n"'

# Virtqueue parsing and guest memory (lib/virtq.c, lib/gmem.c).
m virtq_indirect_len_unaligned lib/virtq.c "unit/test_virtq" \
	'if (d->len == 0 || d->len % sizeof(struct virtq_desc))' \
	'if (d->len == 0)'
m virtq_indirect_next_past_table lib/virtq.c "unit/test_virtq hostile/virtio_desc_oob" \
	'if (cur.next >= entries)' \
	'if (cur.next > entries)'
m virtq_avail_jump_by_one lib/virtq.c "unit/test_virtq hostile/virtio_avail_jump" \
	'if ((uint16_t)(idx - vq->last_avail_idx) > vq->size) {' \
	'if ((uint16_t)(idx - vq->last_avail_idx) > vq->size + 1) {'
m gmem_ptr_past_region_end lib/gmem.c "unit/test_virtq" \
	'len <= r->size - (gpa - r->gpa))' \
	'len <= r->size)'
# vhost-user parsing (lib/vhost_user.c, lib/vhost_user_backend.c).
m vhost_user_mem_table_extra_fds lib/vhost_user.c "unit/test_vhost_user" \
	'return n == p->memory.nregions;' \
	'return n >= p->memory.nregions;'
m vhost_user_config_offset lib/vhost_user.c "unit/test_vhost_user" \
	'if (c->offset > VHOST_USER_MAX_CONFIG_SIZE - c->size)' \
	'if (c->offset > VHOST_USER_MAX_CONFIG_SIZE)'
m vhost_user_one_fd_rule lib/vhost_user.c "unit/test_vhost_user" \
	$'case FD_ONE:\n\t\treturn n == 1;' \
	$'case FD_ONE:\n\t\treturn n >= 1;'
m backend_regions_overlap lib/vhost_user_backend.c "unit/test_vhost_user_backend" \
	'if (uva_overlaps(regions, n, in)) {' \
	'if (0 && uva_overlaps(regions, n, in)) {'
# Inflight replay and FLUSH (lib/vhost_user_backend_queue.c, isola-blk).
m inflight_no_resubmit lib/vhost_user_backend_queue.c "unit/test_vhost_user_backend" \
	'for (int i = 0; i < n; i++) {' \
	'for (int i = 0; i < 0; i++) {'
m blk_flush_skipped servers/blk/blk.c "unit/test_vhost_user_backend" \
	$'if (blk->readonly)\n\t\treturn; /* nothing was written: already durable */' \
	$'if (blk)\n\t\treturn; /* nothing was written: already durable */'
# NEEDS_RESET after a back-end's vring error (core/main.c, devices/).
m vring_err_fd_ignored core/device_set.c "hostile/virtio_desc_oob" \
	'if ((revents & POLLIN) && e->attached)' \
	'if (0 && (revents & POLLIN) && e->attached)'
m vring_err_no_needs_reset devices/vhost_user_device.c "hostile/virtio_desc_oob" \
	$'(virtio_pci does both). */\n\tvirtio_pci_set_needs_reset(&dev->pci);' \
	$'(virtio_pci does both). */\n\t(void)dev;'
# MSI-X masking (devices/virtio_pci.c).
m msix_masked_vector_signalled devices/virtio_pci.c "unit/test_virtio_pci hostile/virtio_msix_oob guest/blk_rw" \
	'if (e->control & MSIX_VECTOR_MASKED)' \
	'if (0 && (e->control & MSIX_VECTOR_MASKED))'
# The API's state rules (core/api/handlers.c).
m api_put_after_start core/api/handlers.c "unit/test_api" \
	'if (state == API_STATE_NOT_STARTED)' \
	'if (state != API_STATE_PAUSED)'
m api_start_twice core/api/handlers.c "unit/test_api" \
	'if (state != API_STATE_NOT_STARTED)' \
	'if (state == API_STATE_PAUSED)'
# The jail and the servers' sandbox (core/jail.c, lib/sandbox.c).
m jail_keeps_saved_root_uid core/jail.c "system/jail" \
	'setresuid(jail->uid, jail->uid, jail->uid) < 0)' \
	'setresuid(jail->uid, jail->uid, 0) < 0)'
m jail_allows_suid core/jail.c "system/jail" \
	'.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV' \
	'.attr_set = MOUNT_ATTR_NODEV'
m sandbox_no_empty_root lib/sandbox.c "system/servers_sandbox" \
	'int ret = sandbox_empty_root(err, errlen);' \
	'int ret = 0 && sandbox_empty_root(err, errlen);'
# Platform (arch/x86/i8042.c): Linux reads a clear keylock bit as "inhibited".
m i8042_keylock_bit arch/x86/i8042.c "unit/test_i8042" \
	'uint8_t status = STATUS_SYSTEM_FLAG | STATUS_NOT_INHIBITED;' \
	'uint8_t status = STATUS_SYSTEM_FLAG;'
# Console (core/console.c): the terminal isola made raw is given back as found;
# caught by the nested Linux console test (L1 compares stty -g before/after).
m console_no_restore core/console.c "system/linux_console" \
	'	tcsetattr(fd, TCSANOW, &console_saved);' \
	'	(void)console_saved;'
# Seccomp (lib/vdso_fallback.h): the vDSO's clock fallbacks on every list.
m seccomp_no_clock_fallback lib/vdso_fallback.h "unit/test_seccomp" \
	'"clock_gettime", "clock_getres", "gettimeofday", "time"' \
	'"clock_getres", "gettimeofday", "time"'

# isola-net's device logic (servers/net/) and virtq_unpop (tests/unit/test_net.c,
# test_virtq.c).
m net_mac_table_count_in_bytes servers/net/net_ctrl.c "unit/test_net" \
	'if (n > (len - *at) / NET_ETH_ALEN)' \
	'if (n > (len - *at))'
m net_vq_pairs_past_max servers/net/net_ctrl.c "unit/test_net" \
	'pairs > net->pairs)' \
	'pairs > net->pairs + 1)'
m net_tso_without_gso_size servers/net/net.c "unit/test_net" \
	'return net_has_feature(features, VIRTIO_NET_F_HOST_TSO4) && hdr->gso_size' \
	'return net_has_feature(features, VIRTIO_NET_F_HOST_TSO4)'
m virtq_unpop_rewinds_avail_event lib/virtq.c "unit/test_virtq" \
	$'\tvq->unpoppable--;\n' \
	$'\tvq->unpoppable--;\n\tif (vq->event_idx && vq->notify_enabled)\n\t\t__atomic_store_n(virtq_avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);\n'

# ---- the machinery ----------------------------------------------------------
CHECK_ONLY=0
[[ ${1:-} == --check ]] && { CHECK_ONLY=1; shift; }
wanted() {
	local w
	(($# == 1)) && return 0
	for w in "${@:2}"; do [[ $1 == *"$w"* ]] && return 0; done
	return 1
}

# replace FILE OLD NEW: exactly one OLD; prints the count when it is not 1
replace() {
	OLD=$2 NEW=$3 python3 - "$1" <<'EOF'
import os, sys
path, old, new = sys.argv[1], os.environ["OLD"], os.environ["NEW"]
text = open(path).read()
n = text.count(old)
if n != 1:
    print(n)
    sys.exit(1)
if os.environ.get("DRY") != "1":
    open(path, "w").write(text.replace(old, new))
EOF
}

if ((CHECK_ONLY)); then
	bad=0
	for i in "${!NAMES[@]}"; do
		wanted "${NAMES[$i]}" "$@" || continue
		if ! n=$(DRY=1 replace "$SRC/${FILES[$i]}" "${OLDS[$i]}" "${NEWS[$i]}"); then
			echo "STALE: ${NAMES[$i]}: ${FILES[$i]}: old text found ${n:-?} times, not once"
			bad=1
		fi
	done
	((bad)) || echo "every mutant's old text is found exactly once"
	exit $bad
fi

SCRATCH=$(mktemp -d /tmp/isola-mutants.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
TREE=$SCRATCH/tree LOG=$SCRATCH/log
echo "copying the tree to $TREE"
mkdir "$TREE"
tar -C "$SRC" --exclude=./.git --exclude=./build/asan --exclude=./build/fuzz -cf - . | tar -C "$TREE" -xf -
# keep intermediate objects (unit tests', servers'): a mutant then rebuilds
# only what depends on its file
echo '.SECONDARY:' >"$SCRATCH/keep.mk"
build() {
	nice -n 19 make -C "$TREE" -f Makefile -f "$SCRATCH/keep.mk" -j"$JOBS" all unit guests \
		>"$LOG" 2>&1
}
echo "building the unmutated tree"
build || { tail -30 "$LOG"; echo "the unmutated tree does not build"; exit 1; }

CAUGHT=0 SURVIVED=0 BROKEN=0
ROWS=()
row() { ROWS+=("$1 | $2 | $3 | $4"); echo "$1 | $2 | $3 | $4"; }
for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]} file=${FILES[$i]}
	wanted "$name" "$@" || continue
	cp "$TREE/$file" "$SCRATCH/orig"
	if ! n=$(replace "$TREE/$file" "${OLDS[$i]}" "${NEWS[$i]}"); then
		[[ $n == 0 ]] && why="STALE: pattern not found" || why="STALE: pattern found $n times"
		row "$name" "$file" "-" "$why"
		BROKEN=$((BROKEN + 1))
		continue
	fi
	touch "$TREE/$file"
	ran=() result=
	if ! build; then
		tail -5 "$LOG" | sed 's/^/    | /'
		result="BROKEN: does not build"
	else
		for f in ${FILTERS[$i]}; do
			ran+=("$f")
			(cd "$TREE" && nice -n 19 tests/run.sh "$f") >"$LOG" 2>&1
			st=$?
			if grep -q '^0 passed, 0 failed, 0 skipped$' "$LOG"; then
				result="BAD FILTER: no test matches $f"
				break
			elif ((st != 0)); then
				result="caught ($(sed -n 's/^failed: //p' "$LOG"))"
				break
			fi
		done
		[[ -n $result ]] || result=survived
	fi
	cp "$SCRATCH/orig" "$TREE/$file"
	touch "$TREE/$file"
	case $result in
	caught*) CAUGHT=$((CAUGHT + 1)) ;;
	survived) SURVIVED=$((SURVIVED + 1)) ;;
	*) BROKEN=$((BROKEN + 1)) ;;
	esac
	row "$name" "$file" "${ran[*]:--}" "$result"
done

echo
echo "MUTANT | FILE | TESTS RUN | RESULT"
printf '%s\n' "${ROWS[@]}"
((BROKEN)) && echo "$BROKEN mutant(s) stale, not building or with a filter that selects nothing: fix the table above"
echo "$CAUGHT caught, $SURVIVED survived"
((SURVIVED == 0 && BROKEN == 0))
