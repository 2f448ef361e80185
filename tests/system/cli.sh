#!/bin/bash
# The command line as a user meets it:
#  - every bad input ends with status 2 and one line on stderr that names the
#    problem (and nothing on stdout);
#  - --help / run --help / --version exit 0; run --help lists every flag and
#    every exit status;
#  - SIGINT and SIGTERM stop a running guest with status 10 and say so;
#  - on a terminal: raw mode while the VM runs (Ctrl-C goes to the guest),
#    Ctrl-A x stops the VM with status 10, and the terminal mode is restored
#    afterwards (also after SIGTERM); Ctrl-C typed on the terminal reaches
#    the serial_irq guest as byte 0x03 on COM1 and does not stop isola.
# All failures are collected, then reported together.
set -u
source "$(dirname "$0")/../lib.sh"

[[ -x $ISOLA ]] || fail "no $ISOLA; run make first"
HELLO=$GUESTS/hello.elf
[[ -f $HELLO ]] || fail "no $HELLO; run make guests"
TMP=$(mktemp -d /tmp/isola-cli.XXXXXX)
chmod 755 "$TMP" # the unreadable-kernel case runs as another user
trap 'rm -rf "$TMP"' EXIT
FAILURES=()
problem() { echo "  FAIL: $*"; FAILURES+=("$*"); }

# bad_input NAME REGEX ARGS...: status 2, stdout empty, exactly one stderr
# line, matching the extended regex.
bad_input() {
	local name=$1 regex=$2
	shift 2
	timeout 20 "$ISOLA" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	local st=$? lines
	lines=$(grep -c . "$TMP/err")
	echo "$name: status $st: $(head -n 3 "$TMP/err")"
	[[ $st == 2 ]] || problem "$name: exit status $st, want 2"
	[[ -s $TMP/out ]] && problem "$name: wrote to stdout: $(head -c 200 "$TMP/out")"
	[[ $lines == 1 ]] || problem "$name: $lines lines on stderr, want 1"
	grep -Eq -- "$regex" "$TMP/err" || problem "$name: stderr does not match /$regex/"
}

KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)

echo "== bad input"
bad_input "missing --kernel" "no kernel given.*--kernel PATH" run
bad_input "--kernel without a value" "option --kernel needs a value" run --kernel
bad_input "missing kernel file" "kernel $TMP/nonexistent: No such file or directory" \
	run --kernel "$TMP/nonexistent"
: >"$TMP/unreadable"
chmod 000 "$TMP/unreadable"
if ((EUID != 0)); then
	bad_input "unreadable kernel" "kernel $TMP/unreadable: Permission denied" run --kernel "$TMP/unreadable"
elif command -v setpriv >/dev/null && kvm_gid=$(getent group kvm | cut -d: -f3) && [[ -n $kvm_gid ]]; then
	# root reads any file: drop to nobody (+ group kvm, so /dev/kvm opens)
	ISOLA_SAVED=$ISOLA
	ISOLA="setpriv --reuid=65534 --regid=65534 --groups=$kvm_gid $ISOLA"
	timeout 20 $ISOLA run --kernel "$TMP/unreadable" </dev/null >"$TMP/out" 2>"$TMP/err"
	st=$?
	echo "unreadable kernel (as nobody): status $st: $(cat "$TMP/err")"
	[[ $st == 2 ]] || problem "unreadable kernel: exit status $st, want 2"
	grep -Eq "kernel $TMP/unreadable: Permission denied" "$TMP/err" ||
		problem "unreadable kernel: stderr does not match /Permission denied/"
	ISOLA=$ISOLA_SAVED
else
	problem "unreadable kernel: cannot check it as root without setpriv and a kvm group (apt-get install util-linux)"
fi
bad_input "directory as kernel" "kernel $TMP: not a regular file" run --kernel "$TMP"
: >"$TMP/empty"
bad_input "empty kernel" "kernel .*(0 bytes|empty)" run --kernel "$TMP/empty"
bad_input "/etc/passwd as kernel" "neither a Linux bzImage.*nor an ELF" run --kernel /etc/passwd
if [[ -n $KERNEL && -r $KERNEL ]]; then
	head -c 1000 "$KERNEL" >"$TMP/truncated.bzImage"
	bad_input "truncated bzImage" "truncated" run --kernel "$TMP/truncated.bzImage"
	# cut inside the protected-mode kernel: the header's syssize says how
	# long it must be (boot.rst "syssize"); running it would crash the guest
	head -c 40000 "$KERNEL" >"$TMP/truncated2.bzImage"
	bad_input "bzImage cut after setup" "truncated" run --kernel "$TMP/truncated2.bzImage"
else
	problem "truncated bzImage: no readable Debian cloud kernel in /boot to cut (apt-get install linux-image-cloud-amd64; run as root, it is mode 0600)"
fi
bad_input "missing initrd" "initrd $TMP/nonexistent: No such file or directory" \
	run --kernel "$HELLO" --initrd "$TMP/nonexistent"
bad_input "--memory 1K" "--memory 1K is too small.*minimum" run --kernel "$HELLO" --memory 1K
bad_input "--memory 100T" "--memory 100T is more than this host's [0-9]+ MiB" run --kernel "$HELLO" --memory 100T
bad_input "--memory abc" "--memory 'abc' is not a size" run --kernel "$HELLO" --memory abc
bad_input "--cpus 0" "--cpus '0' is out of range.*1 to [0-9]+" run --kernel "$HELLO" --cpus 0
bad_input "--cpus 256" "--cpus '256' is out of range.*1 to [0-9]+" run --kernel "$HELLO" --cpus 256
bad_input "--cpus x" "--cpus 'x' is (not a number|out of range)" run --kernel "$HELLO" --cpus x
bad_input "--timeout -1" "--timeout '-1' is not a number of seconds" run --kernel "$HELLO" --timeout -1
bad_input "--console bogus" "--console 'bogus' is not a console.*stdio, none or file:PATH" \
	run --kernel "$HELLO" --console bogus
bad_input "--console file: in a missing directory" "--console file:$TMP/no/such: No such file or directory" \
	run --kernel "$HELLO" --console "file:$TMP/no/such"
bad_input "unknown flag" "unknown option '--bogus'.*isola run --help" run --kernel "$HELLO" --bogus
bad_input "stray argument" "unexpected argument 'stray'" run --kernel "$HELLO" stray
bad_input "unknown command" "unknown command 'bogus'.*isola --help" bogus

# No command at all: status 2; today isola prints its usage (to stdout).
timeout 20 "$ISOLA" </dev/null >"$TMP/out" 2>"$TMP/err"
st=$?
echo "no command: status $st: $(cat "$TMP/out" "$TMP/err" | head -n 1)"
[[ $st == 2 ]] || problem "no command: exit status $st, want 2"
cat "$TMP/out" "$TMP/err" | grep -Eq "Usage: isola COMMAND|no command" ||
	problem "no command: neither usage nor a 'no command' message"

echo "== help and version"
timeout 20 "$ISOLA" --help >"$TMP/help" 2>"$TMP/err"
st=$?
[[ $st == 0 ]] || problem "isola --help: exit status $st, want 0"
grep -q 'run' "$TMP/help" || problem "isola --help does not mention the run command"
grep -q -- '--version' "$TMP/help" || problem "isola --help does not mention --version"
grep -q "isola run --help" "$TMP/help" || problem "isola --help does not point to 'isola run --help'"
timeout 20 "$ISOLA" run --help >"$TMP/help" 2>"$TMP/err"
st=$?
[[ $st == 0 ]] || problem "isola run --help: exit status $st, want 0"
[[ -s $TMP/err ]] && problem "isola run --help wrote to stderr: $(cat "$TMP/err")"
for flag in --kernel --initrd --cmdline --memory --cpus --console --timeout --help; do
	grep -q -- "$flag" "$TMP/help" || problem "isola run --help does not mention $flag"
done
for code in 0 2V+1 2 4 6 8 10; do
	grep -Eq "^ +${code//+/\\+} +[a-zA-Z]" "$TMP/help" ||
		problem "isola run --help does not list exit status $code"
done
grep -q 'Ctrl-A x' "$TMP/help" || problem "isola run --help does not say how to quit (Ctrl-A x)"
for v in --version -V; do
	out=$(timeout 20 "$ISOLA" $v 2>&1)
	st=$?
	echo "isola $v: status $st: $out"
	[[ $st == 0 ]] || problem "isola $v: exit status $st, want 0"
	# Kata Containers (virtcontainers/fc.go parseVersion) takes the first
	# line's second word, "v" trimmed, as a Firecracker version >= 0.21.1.
	word=$(head -n 1 <<<"$out" | cut -d' ' -f2)
	word=${word#v}
	[[ $word =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 1)) ||
		problem "isola $v prints '$out': the second word '$word' is not a version >= 1.0.0 (Kata parses it)"
	[[ $out =~ \(isola\ [0-9]+\.[0-9]+\.[0-9]+\) ]] || problem "isola $v prints '$out', without isola's own name and version"
done

echo "== signals and terminal"
# A guest that waits forever: hostile/hlt_cli.elf if the guest suite has
# it, else a 3-instruction PVH guest (cli; hlt; jmp) built here.
WAIT_GUEST=$GUESTS/hostile/hlt_cli.elf
if [[ ! -f $WAIT_GUEST ]]; then
	WAIT_GUEST=$TMP/wait.elf
	cat >"$TMP/wait.S" <<-'EOF'
		/* PVH entry note (Xen elfnote.h XEN_ELFNOTE_PHYS32_ENTRY = 18) */
		.section .note.Xen, "a", @note
		.p2align 2
		.long 4, 4, 18
		.asciz "Xen"
		.long start
		.text
		.code32
		.globl start
		start:	cli
		1:	hlt
			jmp 1b
	EOF
	cat >"$TMP/wait.ld" <<-'EOF'
		OUTPUT_FORMAT("elf64-x86-64")
		ENTRY(start)
		PHDRS { image PT_LOAD FLAGS(5); note PT_NOTE FLAGS(4); }
		SECTIONS {
			. = 0x100000;
			.text : { *(.text) } :image
			.note : { *(.note.Xen) } :image :note
			/DISCARD/ : { *(.note.gnu.* .note.GNU-stack .comment) }
		}
	EOF
	{ cc -c -o "$TMP/wait.o" "$TMP/wait.S" && ld -T "$TMP/wait.ld" -o "$WAIT_GUEST" "$TMP/wait.o"; } ||
		fail "cannot build a waiting guest (need cc and ld)"
fi
echo "waiting guest: $WAIT_GUEST"

[[ -f $GUESTS/serial_irq.elf ]] || fail "no $GUESTS/serial_irq.elf; run make guests"
python3 - "$ISOLA" "$WAIT_GUEST" "$TMP" "$GUESTS/serial_irq.elf" >"$TMP/py.out" 2>&1 <<'EOF'
import os, pty, select, signal, subprocess, sys, termios, time

isola, guest, tmp, serial_irq = sys.argv[1:5]
argv = [isola, "run", "--kernel", guest, "--memory", "64M", "--timeout", "60"]

def problem(msg):
    print("PROBLEM: " + msg, flush=True)

def wait_exit(p, what):
    try:
        return p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        problem(f"{what}: isola did not exit within 20 s")
        return None

def check_stop(what, st, err_path, regex_text):
    err = open(err_path).read().strip()
    print(f"{what}: status {st}: {err}", flush=True)
    if st is not None and st != 10:
        problem(f"{what}: exit status {st}, want 10")
    if regex_text not in err:
        problem(f"{what}: stderr does not say '{regex_text}'")

# 1. signals, console none
for sig in (signal.SIGINT, signal.SIGTERM):
    name = signal.Signals(sig).name
    err_path = f"{tmp}/sig.err"
    with open(err_path, "w") as err:
        p = subprocess.Popen(argv + ["--console", "none"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
    time.sleep(1.0)
    if p.poll() is not None:
        problem(f"{name}: the waiting guest exited by itself (status {p.returncode})")
        continue
    p.send_signal(sig)
    check_stop(name, wait_exit(p, name), err_path, f"stopped by {name}")

# 2. a terminal as stdin/stdout
def on_pty(action):
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    err_path = f"{tmp}/pty.err"
    with open(err_path, "w") as err:
        p = subprocess.Popen(argv + ["--console", "stdio"], stdin=slave, stdout=slave,
                             stderr=err, start_new_session=True)
    raw = False
    for _ in range(100):
        if not termios.tcgetattr(slave)[3] & termios.ICANON:
            raw = True
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if not raw:
        problem(f"{action}: the terminal was not put in raw mode (ICANON still set)")
    st = None
    if action == "Ctrl-A x":
        os.write(master, b"\x03")  # Ctrl-C goes to the guest, must not stop the VM
        time.sleep(0.5)
        if p.poll() is not None:
            problem(f"Ctrl-C on the terminal stopped the VM (status {p.returncode}); it should go to the guest")
        os.write(master, b"\x01x")
        st = wait_exit(p, action)
        check_stop(action, st, err_path, "stopped by Ctrl-A x")
    else:
        p.send_signal(signal.SIGTERM)
        st = wait_exit(p, action)
        check_stop(action, st, err_path, "stopped by SIGTERM")
    after = termios.tcgetattr(slave)
    if before != after:
        problem(f"{action}: terminal mode not restored: before {before[:4]}, after {after[:4]}")
    else:
        print(f"{action}: terminal mode restored", flush=True)
    os.close(master)
    os.close(slave)

on_pty("Ctrl-A x")
on_pty("SIGTERM on a terminal")

# 3. Ctrl-C on a terminal is a byte for the guest, not a stop: the serial_irq
# guest reads COM1 and names the byte it got, then exits through debug-exit
# with 0 (status 1).  It prints READY after isola has put the terminal in raw
# mode and the guest armed its receive interrupt.
def ctrl_c_reaches_guest():
    master, slave = pty.openpty()
    err_path = f"{tmp}/ctrlc.err"
    with open(err_path, "w") as err:
        p = subprocess.Popen([isola, "run", "--kernel", serial_irq, "--memory", "64M",
                              "--timeout", "60", "--console", "stdio",
                              "--cmdline", "expect_byte=3 wait_s=20"],
                             stdin=slave, stdout=slave, stderr=err, start_new_session=True)
    out, sent, deadline = b"", False, time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 4096)
        if not sent and b"READY" in out:
            os.write(master, b"\x03")
            sent = True
        if p.poll() is not None and not select.select([master], [], [], 0)[0]:
            break
    st = wait_exit(p, "Ctrl-C to the guest")
    os.close(master)
    os.close(slave)
    text = out.decode(errors="replace")
    err = open(err_path).read().strip()
    print(f"Ctrl-C to the guest: status {st}, console: {text!r}, stderr: {err}", flush=True)
    if not sent:
        problem("Ctrl-C to the guest: serial_irq never printed READY")
    elif "PASS: got byte 0x03" not in text:
        problem("Ctrl-C to the guest: the guest did not read byte 0x03 from COM1")
    if st != 1:
        problem(f"Ctrl-C to the guest: exit status {st}, want 1 (guest passed)")
    if "stopped by" in err:
        problem("Ctrl-C to the guest: isola stopped instead of forwarding the byte")

ctrl_c_reaches_guest()
EOF
st=$?
cat "$TMP/py.out"
((st == 0)) || problem "the signal/terminal checks crashed (python status $st)"
while IFS= read -r line; do
	problem "${line#PROBLEM: }"
done < <(grep '^PROBLEM: ' "$TMP/py.out")

if ((${#FAILURES[@]})); then
	echo
	echo "${#FAILURES[@]} problem(s):"
	printf '  %s\n' "${FAILURES[@]}"
	fail "the command line does not behave as documented"
fi
echo "PASS: bad input, help, signals and the terminal behave as documented"
