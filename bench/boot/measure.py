#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boot-to-exit benchmark: isola vs QEMU microvm, interleaved.

Each run goes through build/bench/measure (bench/boot/measure.c), which
forks, execs the VMM and reports wall time (clock_gettime around
fork/exec/wait) and ru_maxrss from wait4.  Runs alternate between the two
VMMs (and which goes first), after warm-up runs that are not counted, so
drift on the host hits both alike.

Prints one line per figure, `name: isola X, peer Y, ratio Z` (style.md).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def run_fields(measure, cmd, log, opts=()):
    out = subprocess.run([measure, "-o", log] + list(opts) + cmd, check=True,
                         capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (kv.split("=") for kv in out.split())}


def run_once(measure, cmd, log):
    f = run_fields(measure, cmd, log)
    return f["wall_us"], f["maxrss_kib"], f["status"]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", required=True)
    ap.add_argument("--isola", required=True)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--guest", required=True)
    ap.add_argument("--min-guest", help="a guest that exits at entry (VMM cost only)")
    ap.add_argument("--byte-guest", help="a guest whose first instruction writes a byte to "
                    "COM1, then exits (time to first instruction, time to exit)")
    ap.add_argument("--disk-image", help="a small raw image for the with-devices runs")
    ap.add_argument("--only-first-instruction", action="store_true",
                    help="skip the QEMU comparison (quick runs while tuning)")
    ap.add_argument("--memory", default="256M")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    def vmm_cmds(guest):
        return {
            "isola": [args.isola, "run", "--kernel", guest, "--memory", args.memory,
                      "--console", "none"],
            # -serial null: the UART exists but output is dropped, like
            # isola's --console none (the guest still drives the UART).
            "qemu": [args.qemu, "-M", "microvm,accel=kvm", "-cpu", "host,-arch-capabilities",
                     "-m", args.memory, "-nodefaults", "-no-user-config", "-display", "none",
                     "-serial", "null", "-kernel", guest,
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=4"],
        }

    pvm = os.path.isdir("/sys/module/kvm_pvm")
    print(f"# boot-to-exit: isola vs QEMU microvm ({args.memory} guest)")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print(f"kernel: {platform.release()}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} online)")
    print(f"kvm: {'PVM (software KVM, /sys/module/kvm_pvm)' if pvm else 'hardware-backed'}")
    print(f"qemu: {first_line([args.qemu, '--version'])}")
    print(f"isola: {first_line([args.isola, '--version'])} ({args.isola})")
    for name, cmd in vmm_cmds("GUEST").items():
        print(f"cmd {name}: {' '.join(cmd)}")
    print(f"runs: {args.runs} per VMM per guest, interleaved (alternating which VMM goes "
          f"first), after {args.warmup} warm-up runs each")
    # The helper's own floor: ru_maxrss of a trivial command forked from it.
    _, floor_rss, _ = run_once(args.measure, ["true"], "/dev/null")
    print(f"floor: ru_maxrss of /bin/true (dynamic) under the same helper: {floor_rss} KiB")

    ok = True
    summary = {}
    guests = [("hello", args.guest)]
    if args.min_guest:
        guests.append(("exit-at-entry", args.min_guest))
    if args.only_first_instruction:
        guests = []
    for label, guest in guests:
        print()
        print(f"## {label}: {guest}")
        r = compare(args, vmm_cmds(guest), label)
        if r is None:
            ok = False
            continue
        summary[label] = r

    if args.byte_guest:
        print()
        print(f"## first instruction and exit (isola): {args.byte_guest}")
        if not first_instruction(args):
            ok = False

    if "hello" in summary:
        wall_ratio, isola_rss = summary["hello"]
        print()
        print(f"target hello wall ratio <= 0.33: {'met' if wall_ratio <= 0.33 else 'NOT met'} "
              f"({wall_ratio:.2f})")
        print(f"target isola max RSS <= 2 MiB (hello, 256 MiB guest): "
              f"{'met' if isola_rss <= 2.0 else 'NOT met'} ({isola_rss:.2f} MiB median)")
    if "exit-at-entry" in summary:
        wall_ratio, isola_rss = summary["exit-at-entry"]
        print(f"same targets, exit-at-entry guest (VMM cost only): wall ratio {wall_ratio:.2f} "
              f"({'met' if wall_ratio <= 0.33 else 'NOT met'}), isola max RSS {isola_rss:.2f} MiB "
              f"({'met' if isola_rss <= 2.0 else 'NOT met'})")
    return 0 if ok else 1


def compare(args, vmms, label):
    """Interleaved runs of both VMMs on one guest; prints the figure lines and
    returns (wall ratio, isola median max RSS in MiB), or None on failure."""
    results = {name: {"wall": [], "rss": [], "bad": []} for name in vmms}
    with tempfile.TemporaryDirectory() as tmp:
        order = list(vmms)
        for i in range(args.warmup + args.runs):
            for name in (order if i % 2 == 0 else order[::-1]):
                log = os.path.join(tmp, name + ".log")
                wall, rss, status = run_once(args.measure, vmms[name], log)
                if i < args.warmup:
                    continue
                if status != 1:  # debug-exit 0 -> status 1 under both VMMs
                    with open(log, errors="replace") as f:
                        results[name]["bad"].append((status, f.read()[-500:]))
                    continue
                results[name]["wall"].append(wall / 1000.0)
                results[name]["rss"].append(rss)

    failed = False
    for name, r in results.items():
        if r["bad"]:
            failed = True
            status, tail = r["bad"][0]
            print(f"error: {label}: {name}: {len(r['bad'])} runs did not exit with status 1 "
                  f"(first: status {status}: {tail.strip()!r})")
    if not all(results[n]["wall"] for n in vmms):
        print(f"error: {label}: no successful runs to compare")
        return None

    iw, qw = results["isola"]["wall"], results["qemu"]["wall"]
    ir = [k / 1024 for k in results["isola"]["rss"]]
    qr = [k / 1024 for k in results["qemu"]["rss"]]
    med = statistics.median
    print(f"{label} boot-to-exit wall time, median (ms): isola {med(iw):.1f}, "
          f"peer {med(qw):.1f}, ratio {med(iw) / med(qw):.2f}")
    print(f"{label} boot-to-exit wall time, p10..p90 (ms): isola {quantile(iw, .1):.1f}.."
          f"{quantile(iw, .9):.1f}, peer {quantile(qw, .1):.1f}..{quantile(qw, .9):.1f}")
    print(f"{label} max RSS, median (MiB): isola {med(ir):.2f}, peer {med(qr):.2f}, "
          f"ratio {med(ir) / med(qr):.3f}")
    print(f"{label} max RSS, min..max (MiB): isola {min(ir):.2f}..{max(ir):.2f}, "
          f"peer {min(qr):.2f}..{max(qr):.2f}")
    return None if failed else (med(iw) / med(qw), med(ir))


def first_instruction(args):
    """exec -> the guest's first instruction (its console byte) and the
    guest's stop -> isola's exit, without and with device servers, runs of
    the two set-ups interleaved.  Prints the figure lines; False on failure."""
    base = [args.isola, "run", "--kernel", args.byte_guest, "--memory", args.memory,
            "--console", "stdio"]
    setups = {"no devices": base}
    if args.disk_image:
        setups["disk+rng"] = base + ["--disk", f"path={args.disk_image}", "--rng"]
    for name, cmd in setups.items():
        print(f"cmd {name}: {' '.join(cmd)}")
    print("method: measure -p: exec = before fork(); first instruction = the guest's first "
          "byte read from isola's stdout (a pipe); exit = isola's pidfd readable")
    res = {name: {"first": [], "exit": [], "wall": [], "rss": [], "bad": []} for name in setups}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        order = list(setups)
        for i in range(args.warmup + args.runs):
            for name in (order if i % 2 == 0 else order[::-1]):
                log = os.path.join(tmp, "isola.log")
                f = run_fields(args.measure, setups[name], log, ["-p", "-t", "20"])
                if i < args.warmup:
                    continue
                if f["status"] != 1 or f["first_byte_us"] < 0 or f["exit_after_byte_us"] < 0:
                    with open(log, errors="replace") as fh:
                        res[name]["bad"].append((f["status"], fh.read()[-500:]))
                    continue
                res[name]["first"].append(f["first_byte_us"] / 1000.0)
                res[name]["exit"].append(f["exit_after_byte_us"] / 1000.0)
                res[name]["wall"].append(f["wall_us"] / 1000.0)
                res[name]["rss"].append(f["maxrss_kib"] / 1024)
    med = statistics.median
    for name, r in res.items():
        if r["bad"]:
            ok = False
            status, tail = r["bad"][0]
            print(f"error: {name}: {len(r['bad'])} runs failed (first: status {status}: "
                  f"{tail.strip()!r})")
        if not r["first"]:
            ok = False
            continue
        for key, what in (("first", "exec to first guest instruction"),
                          ("exit", "guest stop to isola exit"),
                          ("wall", "exec to exit (wall)")):
            v = r[key]
            print(f"{name}: {what}, median {med(v):.2f} ms, p90 {quantile(v, .9):.2f} ms "
                  f"(min {min(v):.2f}, max {max(v):.2f}, {len(v)} runs)")
        print(f"{name}: max RSS (wait4, isola and the children it reaped), median "
              f"{med(r['rss']):.2f} MiB")
    dev = res.get("disk+rng")
    if dev and dev["first"]:
        f, e = med(dev["first"]), med(dev["exit"])
        print(f"target disk+rng first instruction <= 5 ms after exec: "
              f"{'met' if f <= 5.0 else 'NOT met'} ({f:.2f} ms median, "
              f"p90 {quantile(dev['first'], .9):.2f})")
        print(f"target disk+rng isola exit <= 2 ms after the guest stops: "
              f"{'met' if e <= 2.0 else 'NOT met'} ({e:.2f} ms median, "
              f"p90 {quantile(dev['exit'], .9):.2f})")
    return ok


if __name__ == "__main__":
    sys.exit(main())
