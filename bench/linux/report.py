#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise bench/linux: L1's console (tests/system/nested/l1-bench.sh)
in, figures out: medians per configuration, house-format lines
(`name: isola X, peer Y, ratio Z`, peer = QEMU) and the issue's targets.

  report.py --runs N L1_CONSOLE

Every counted run must have booted (L2's init line, status 0): failures and
missing runs are listed and make the exit status 1; the figures are taken
from the runs that did boot.
"""
import argparse
import re
import statistics
import sys

# (setting, configuration) -> what it is, in the order printed
CONFIGS = [
    ("A", "isola", "isola, default (memfd; shmem THP as L1 booted)"),
    ("A", "microvm", "QEMU -M microvm (anonymous RAM, MADV_HUGEPAGE)"),
    ("A", "pc", "QEMU -M pc"),
    ("B", "isola", "isola, default (memfd, shmem THP allowed)"),
    ("B", "isola-2M", "isola --huge-pages 2M (hugetlbfs): its documented best"),
    ("B", "microvm", "QEMU -M microvm (anonymous RAM, MADV_HUGEPAGE)"),
    ("B", "microvm-hugetlbfs", "QEMU -M microvm, memory-backend-file on hugetlbfs: its best"),
]
SETTINGS = {
    "A": "L1's transparent huge pages as booted (host defaults)",
    "B": "huge pages allowed: shmem_enabled=advise, a hugetlbfs pool on /dev/hugepages",
}
# The targets, each VMM on its best documented setting (B).
TARGET_RUN_INIT = 0.7   # kernel start to /init <= 0.7x QEMU microvm
TARGET_WHOLE = 0.9      # the whole process <= 0.9x QEMU microvm

RUN_RE = re.compile(r"@@RUN (\S+) (\S+) (\S+) (ok|FAIL) (.*)")


def parse(path):
    info, runs = [], []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            m = re.search(r"@@INFO (.*)", line)
            if m:
                info.append(m.group(1))
                continue
            m = RUN_RE.search(line)
            if not m:
                continue
            setting, config, rnd, verdict, rest = m.groups()
            rest, _, why = rest.partition(" why=")
            kv = dict(f.split("=", 1) for f in rest.split() if "=" in f)
            if why:
                kv["why"] = why
            runs.append({"setting": setting, "config": config, "round": rnd,
                         "ok": verdict == "ok", **kv})
    return info, runs


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Figures:
    """The counted, successful runs of one configuration."""

    def __init__(self, runs):
        self.n = len(runs)
        self.run_init = [float(r["run_init"]) for r in runs]
        self.whole = [int(r["wall_us"]) / 1e6 for r in runs]
        self.faults = [int(r["minflt"]) + int(r["majflt"]) for r in runs]
        self.pgfault = [int(r["pgfault"]) for r in runs]
        self.thp = [int(r["thp"]) for r in runs]
        self.cpu = [(int(r["user_us"]) + int(r["sys_us"])) / 1e6 for r in runs]
        self.maxrss = [int(r["maxrss_kib"]) / 1024 for r in runs]

    def describe(self, values, fmt):
        med = fmt(statistics.median(values))
        if len(values) >= 10:
            return f"{med} (p10..p90 {fmt(quantile(values, .1))}..{fmt(quantile(values, .9))})"
        return f"{med} (of {', '.join(fmt(v) for v in values)})"


def seconds(x):
    return f"{x:.3f}"


def count(x):
    return f"{x:.0f}"


def mib(x):
    return f"{x:.1f}"


FIGURES = [
    ("kernel start to /init (s, L2's clock)", "run_init", seconds),
    ("whole process, exec to exit (s)", "whole", seconds),
    ("page faults of the VMM process (minflt+majflt)", "faults", count),
    ("L1 pgfault delta (all processes)", "pgfault", count),
    ("THP allocated in L1 (thp_fault_alloc+thp_file_alloc)", "thp", count),
    ("CPU time of the VMM process, user+sys (s)", "cpu", seconds),
    ("max RSS of the VMM process, guest RAM included (MiB)", "maxrss", mib),
]


def ratio_line(label, fig_name, fmt, isola, peer):
    a = statistics.median(getattr(isola, fig_name))
    b = statistics.median(getattr(peer, fig_name))
    r = a / b if b else float("nan")
    print(f"{label}: isola {fmt(a)}, peer {fmt(b)}, ratio {r:.2f}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("console")
    args = ap.parse_args()
    info, runs = parse(args.console)

    for line in info:
        print(f"L1 {line}")
    print(f"runs: {args.runs} counted per configuration, interleaved: each round runs every "
          f"configuration of A and of B, the first one rotating, and which setting goes "
          f"first alternating; warm-up rounds (w1...) are not counted")
    print()

    failures = []
    figures = {}
    for setting, config, what in CONFIGS:
        mine = [r for r in runs if r["setting"] == setting and r["config"] == config]
        for r in mine:
            if not r["ok"]:
                failures.append(f"{setting} {config} round {r['round']}: {r.get('why', '?')}")
        counted = [r for r in mine if not r["round"].startswith("w")]
        good = [r for r in counted if r["ok"]]
        if len(counted) < args.runs:
            failures.append(f"{setting} {config}: {args.runs - len(counted)} of {args.runs} "
                            f"runs missing from L1's console")
        if good:
            figures[(setting, config)] = Figures(good)

    for setting, title in SETTINGS.items():
        print(f"## {setting}: {title}")
        for s, config, what in CONFIGS:
            if s != setting:
                continue
            f = figures.get((s, config))
            if f is None:
                print(f"{s} {config}: no run booted ({what})")
                continue
            print(f"{s} {config}: {what}; {f.n} runs")
            for label, name, fmt in FIGURES:
                print(f"    {label}: {f.describe(getattr(f, name), fmt)}")
        print()

    print("## isola / QEMU (medians; peer = QEMU)")
    pairs = [
        ("A", "isola", "A", "microvm", "A isola vs microvm (host defaults)"),
        ("A", "isola", "A", "pc", "A isola vs pc (host defaults)"),
        ("B", "isola", "B", "microvm", "B isola vs microvm (both default, huge pages allowed)"),
        ("B", "isola-2M", "B", "microvm-hugetlbfs", "B isola-2M vs microvm-hugetlbfs (best settings)"),
        ("B", "isola-2M", "B", "microvm", "B isola-2M vs microvm"),
    ]
    ratios = {}
    for s1, c1, s2, c2, label in pairs:
        a, b = figures.get((s1, c1)), figures.get((s2, c2))
        if a is None or b is None:
            print(f"{label}: not compared, {s1} {c1} or {s2} {c2} never booted")
            continue
        for fig_label, name, fmt in FIGURES[:3]:
            ratios[(c1, s2, c2, name)] = ratio_line(f"{label}, {fig_label}, median", name, fmt, a, b)
    print()

    def verdict(ok):
        return "met" if ok else "NOT met"

    print("## targets (issue 10)")
    best = ratios.get(("isola-2M", "B", "microvm-hugetlbfs", "run_init"))
    if best is not None:
        print(f"target kernel start to /init <= {TARGET_RUN_INIT}x microvm, best settings: "
              f"{verdict(best <= TARGET_RUN_INIT)} ({best:.2f})")
    else:
        print("target kernel start to /init, best settings: not measured (see failures)")
    best = ratios.get(("isola-2M", "B", "microvm-hugetlbfs", "whole"))
    if best is not None:
        print(f"target whole process <= {TARGET_WHOLE}x microvm, best settings: "
              f"{verdict(best <= TARGET_WHOLE)} ({best:.2f})")
    else:
        print("target whole process, best settings: not measured (see failures)")
    for name, label in (("run_init", "kernel start to /init"), ("whole", "whole process")):
        r = ratios.get(("isola", "A", "microvm", name))
        if r is None:
            print(f"target never slower than microvm on host defaults ({label}): not measured")
        else:
            print(f"target never slower than microvm on host defaults ({label}): "
                  f"{verdict(r <= 1.0)} ({r:.2f})")

    if failures:
        print()
        print(f"## FAILED runs ({len(failures)}): every run must boot L2 to /init and end "
              f"with status 0")
        for f in failures:
            print(f"FAIL: {f}")
        return 1
    print()
    warm = sum(1 for r in runs if r["round"].startswith("w"))
    print(f"all {len(runs)} runs ({warm} of them warm-up) booted L2 to /init and ended "
          f"with status 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
