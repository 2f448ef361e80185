#!/bin/bash
# isola's console with a real Linux behind it (issue 10): tmux runs QEMU
# (TCG, nested SVM) with L1's console on its stdio; L1 runs isola in the
# foreground on that terminal, booting L2 with a busybox shell on its serial
# console (tests/system/nested/l1-console.sh).  The test types through all of
# it with tmux send-keys and reads the screen with capture-pane:
#   a command typed into L2's shell answers (echo $((6*7)) prints 42);
#   Ctrl-C reaches L2's foreground job (a sleep 60 ends at once);
#   Ctrl-A x ends isola with status 10, and L1 finds its terminal settings
#   as they were before isola put it in raw mode.
set -u
source "$(dirname "$0")/../lib.sh"
source "$ISOLA_ROOT/tests/system/nested/build.sh"

command -v tmux >/dev/null || skip "no tmux (apt-get install tmux)"
nested_build_for_test

SESSION=isola-console-$$
TMP=$(mktemp -d /tmp/isola-console.XXXXXX)
cleanup() {
	tmux kill-session -t "$SESSION" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# --foreground: QEMU must own the terminal (a background process group
# stops on SIGTTOU when it sets raw mode).  mux=off: QEMU's own Ctrl-A escapes stay off, so Ctrl-A reaches isola;
# signal=off: Ctrl-C is a byte for the guest, not a signal for QEMU.
cat >"$TMP/run" <<RUN
timeout --foreground -s KILL 400 qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 2G \
	-nodefaults -no-user-config -display none -no-reboot -monitor none \
	-chardev stdio,id=con,mux=off,signal=off -serial chardev:con \
	-kernel "$KERNEL" -initrd "$L1_CPIO" \
	-append "$L1_KERNEL_ARGS isola.nested=console"
echo "QEMU-EXIT \$?"
sleep 600
RUN
tmux new-session -d -s "$SESSION" -x 160 -y 50 "bash $TMP/run" || fail "tmux new-session failed"
tmux set-option -t "$SESSION" history-limit 10000 >/dev/null

screen() { tmux capture-pane -p -S - -t "$SESSION" 2>/dev/null | tr -d '\r'; }
# wait_for REGEX SECONDS
wait_for() {
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		screen | grep -Eq -- "$1" && return 0
		sleep 0.5
	done
	return 1
}
show() {
	echo "--- the screen (last 40 lines)"
	screen | tail -n 40
}
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }
ok() { echo "  ok: $*"; }

if ! wait_for '^L2: shell ready' 240; then
	show
	fail "L2's shell never came up on isola's console"
fi
sleep 2 # the shell prints its prompt after "shell ready"
tmux send-keys -t "$SESSION" 'echo answer-$((6*7))' Enter
if wait_for '^answer-42' 60; then
	ok "a command typed into L2's shell through isola's console answers"
else
	problem "no 'answer-42' after typing echo answer-\$((6*7))"
fi

tmux send-keys -t "$SESSION" 'sleep 60; echo sleep-not-interrupted' Enter
sleep 3
tmux send-keys -t "$SESSION" C-c
sleep 1
tmux send-keys -t "$SESSION" 'echo after-ctrl-c-$((1+1))' Enter
if wait_for '^after-ctrl-c-2' 30 && ! screen | grep -q '^sleep-not-interrupted'; then
	ok "Ctrl-C went to L2's foreground job (sleep 60 ended at once)"
else
	problem "Ctrl-C did not interrupt L2's sleep 60"
fi

tmux send-keys -t "$SESSION" C-a x
if wait_for '^L1: isola exit status' 60; then
	got=$(screen | sed -n 's/^L1: isola exit status \([0-9]*\).*/\1/p' | tail -n 1)
	[[ $got == 10 ]] && ok "Ctrl-A x ended isola with status 10" || problem "Ctrl-A x: isola exit status $got, want 10"
else
	problem "Ctrl-A x did not end isola"
fi
if wait_for '^L1: terminal (restored|NOT restored)' 30 && screen | grep -q '^L1: terminal restored'; then
	ok "isola gave L1's terminal back with the settings it found"
else
	problem "$(screen | grep -m1 '^L1: terminal NOT restored' || echo 'L1 never reported its terminal')"
fi
wait_for '^QEMU-EXIT' 60 || problem "L1 did not power off after isola ended"

if ((${#FAILURES[@]})); then
	show
	fail "${#FAILURES[@]} problem(s)"
fi
echo "PASS: isola's console drives a Linux shell; Ctrl-C reaches the guest; Ctrl-A x ends isola and restores the terminal"
