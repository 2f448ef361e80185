#!/usr/bin/env python3
"""What a stuck L1's CPUs were doing, from QEMU's monitor (QMP).

    l1-cpus.py QMP_SOCKET FULL_DUMP

linux_nested.sh runs this on an L1 it is about to kill for a stall: the
whole `info registers -a`, `info lapic N` and `info pic` go to FULL_DUMP,
and one line a CPU to stdout -- where it was (RIP: L1 boots with nokaslr,
so the address is the same in every run of that kernel and can be looked up
in an L1's /proc/kallsyms; Debian ships no System.map), whether it was
halted, its IF flag, the local APIC timer and what the APIC holds pending.
A halted CPU with IF set, no timer counting and nothing pending waits for
an interrupt that will never come; a CPU running in one place does not.
"""
import json
import re
import socket
import sys


def qmp(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(20)
    sock.connect(path)
    stream = sock.makefile("rw")
    stream.readline()  # the greeting

    def call(command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        stream.write(json.dumps(request) + "\n")
        stream.flush()
        while True:  # events may come first
            reply = json.loads(stream.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                return "error: " + reply["error"].get("desc", "?")

    call("qmp_capabilities")
    return lambda line: call("human-monitor-command", **{"command-line": line})


def main():
    hmp = qmp(sys.argv[1])
    registers = hmp("info registers -a")
    cpus = re.split(r"\n(?=CPU#\d+)", registers.strip())
    full = ["=== info registers -a", registers]
    for block in cpus:
        m = re.match(r"CPU#(\d+)", block)
        if not m:
            continue
        n = int(m.group(1))
        lapic = hmp(f"info lapic {n}")
        full += [f"=== info lapic {n}", lapic]
        rip = re.search(r"RIP=([0-9a-f]+)", block)
        efl = re.search(r"RFL=([0-9a-f]+)", block)
        hlt = re.search(r"HLT=(\d)", block)
        gs = re.search(r"^GS =\S+ ([0-9a-f]+)", block, re.M)
        timer = re.search(r"^LVTT\s+(\S+).*?(one-shot|periodic|tsc-deadline)", lapic, re.M)
        count = re.search(r"initial_count = (\d+) current_count = (\d+)", lapic)
        isr = re.search(r"^ISR\s+(.*)$", lapic, re.M)
        irr = re.search(r"^IRR\s+(.*)$", lapic, re.M)
        where = f"RIP {rip.group(1)}" if rip else "RIP ?"
        print(
            f"L1 CPU{n}: {where}, HLT={hlt.group(1) if hlt else '?'}"
            f", IF={(int(efl.group(1), 16) >> 9) & 1 if efl else '?'}"
            f", GS base {gs.group(1) if gs else '?'}"
            f"; APIC timer {timer.group(2) + ' ' + timer.group(1) if timer else '?'}"
            f" count {count.group(1) + '/' + count.group(2) if count else '?'}"
            f"; ISR {isr.group(1).strip() if isr else '?'}; IRR {irr.group(1).strip() if irr else '?'}"
        )
    full += ["=== info pic", hmp("info pic")]
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(full) + "\n")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as e:
        print(f"L1's monitor did not answer: {e}")
