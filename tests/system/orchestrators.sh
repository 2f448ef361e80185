#!/bin/bash
# Real orchestrators' request sequences, replayed against isola request by
# request (issue 13, acceptance 5): Kata Containers' Go runtime, Kata's
# runtime-rs and firecracker-go-sdk as firecracker-containerd drives it,
# each as its source does it -- the --version check, the command line, every
# request with the fields the tool sets, what it reads back, the files it
# prepares (placeholder drives, fifos with a reader, bind mounts), hot-plug
# by PATCH /drives, the stop.  The sequences are data, with the source of
# each line: tests/system/orchestrators/*.seq (format: README.md there);
# tests/system/orchestrators.py replays one.  The guest is
# tests/guest/counter with `pci`: it prints its PCI devices (the disks and
# the NIC the tool attached are counted) and keeps counting, so the steps
# after InstanceStart meet a running VM.  The nested Linux replays Kata's Go
# sequence too (linux_nested.sh orchestrators).
#
# Every step is a result of its own, TOOL/NN-STEP; the vsock ones too: the
# tools' PUT /vsock or config-file section, and Kata's hybrid socket, which
# must answer "CONNECT 1024" (OK, or a clean close: the guest has no agent;
# the test guest has no vsock driver, so an unanswered connection passes too).
# Needs root: a network namespace with a tap for the tools' network
# interface, and bind mounts (Kata's way of placing files).
#   orchestrators.sh [TOOL...]   kata-go kata-rs fc-go-sdk (default: all)
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
[[ -f $GUESTS/counter.elf ]] || fail "no $GUESTS/counter.elf; run make guests"
[[ -x $ISOLA_ROOT/build/isola-net ]] || fail "no build/isola-net; run make first"
[[ -x $ISOLA_ROOT/build/isola-vsock ]] || fail "no build/isola-vsock; run make first"
[[ -w /dev/kvm ]] || skip "/dev/kvm is not usable by this user"
[[ $(id -u) == 0 ]] || skip "needs root for a network namespace, a tap and bind mounts"
command -v python3 >/dev/null || skip "no python3"
command -v ip >/dev/null || skip "no ip (iproute2)"

TOOLS=${*:-kata-go kata-rs fc-go-sdk}
NS=isola-orch-$$
TAP=iorch$$
TAP=${TAP:0:15}
TMP=$(mktemp -d /tmp/isola-orch.XXXXXX)
cleanup() {
	# the replay kills and unmounts what it started; this is the backstop
	local f
	for f in "$TMP"/*/isola.pid; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null; done
	grep -o " ${TMP}/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$NS" || fail "ip netns add $NS"
ip -n "$NS" tuntap add "$TAP" mode tap || fail "ip tuntap add $TAP"
ip -n "$NS" link set "$TAP" up || fail "ip link set $TAP up"
truncate -s 1M "$TMP/rootfs.img"

st=0
for tool in $TOOLS; do
	seq=$ISOLA_ROOT/tests/system/orchestrators/$tool.seq
	[[ -f $seq ]] || fail "no $seq"
	mkdir -p "$TMP/$tool"
	echo "== $tool ($seq)"
	python3 "$ISOLA_ROOT/tests/system/orchestrators.py" --isola "$ISOLA" --seq "$seq" \
		--dir "$TMP/$tool" --netns "$NS" \
		--var "ID=isola-orch-$tool-$$" --var "KERNEL=$GUESTS/counter.elf" --var "GUEST_ARGS=pci" \
		--var "ROOTFS=$TMP/rootfs.img" --var "TAP=$TAP" --var "MAC=06:00:ac:10:00:02" \
		--var "VCPUS=1" --var "MEM=64" --var "INITRD_FIELD=" --var "GUEST_VSOCK=none" || st=1
done
exit $st
