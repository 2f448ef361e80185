#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Medians of bench/net/run.sh's runs, one line per figure (bench/README.md):
    WORKLOAD Mpps: isola X, peer Y, ratio Z              (peer = testpmd)
    WORKLOAD Mpps vs tap (limit): isola X, peer Y, ratio Z
and the same for Gbit/s, and testpmd against the limit.  A runs line is
    ENGINE WORKLOAD key=value ...
TX figures are what the namespace counted (rx_mpps, rx_gbps: the tap's rx
counters); RX figures what reached the guest's ring (mpps, gbps)."""
import statistics
import sys


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            engine, workload = parts[0], parts[1]
            kv = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            runs.setdefault((engine, workload), []).append(kv)
    return runs


def figure(kv, workload, unit):
    key = ("rx_" if workload.startswith("tx-") else "") + unit
    return float(kv[key])


def line(name, a, b):
    ratio = a / b if b else float("nan")
    return f"{name}: isola {a:.3f}, peer {b:.3f}, ratio {ratio:.2f}"


def main():
    runs = load(sys.argv[1])
    workloads = []
    for _, w in runs:
        if w not in workloads:
            workloads.append(w)
    targets = []
    for w in workloads:
        med = {}
        for engine in ("isola", "testpmd", "tap"):
            for unit in ("mpps", "gbps"):
                vals = [figure(kv, w, unit) for kv in runs.get((engine, w), [])]
                if vals:
                    med[engine, unit] = statistics.median(vals)
        for unit, label in (("mpps", "Mpps"), ("gbps", "Gbit/s")):
            i, t, lim = med.get(("isola", unit)), med.get(("testpmd", unit)), med.get(("tap", unit))
            if i is not None and t is not None:
                print(line(f"{w} {label}", i, t))
            if i is not None and lim is not None:
                print(line(f"{w} {label} vs tap (limit)", i, lim))
                if unit == "mpps":
                    targets.append((w, i / lim if lim else 0))
            if t is not None and lim is not None:
                print(f"{w} {label} testpmd vs tap (limit): testpmd {t:.3f}, limit {lim:.3f}, ratio {t / lim:.2f}")
            if i is None and t is None and lim is not None:
                print(f"{w} {label}: limit {lim:.3f}")
    if targets:
        met = [w for w, r in targets if r >= 0.8]
        missed = [f"{w} ({r:.2f})" for w, r in targets if r < 0.8]
        print(f"target (isola-net >= 0.8x the direct-tap limit, Mpps): met for {', '.join(met) or 'none'}"
              + (f"; missed for {', '.join(missed)}" if missed else ""))
    else:
        print("target (isola-net >= 0.8x the direct-tap limit): not measured (no isola-net)")


if __name__ == "__main__":
    main()
