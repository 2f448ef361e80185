#!/usr/bin/env python3
"""Summarise bench/blk runs: medians per back-end and workload, house-format
lines (`name: isola X, peer Y, ratio Z`) and the issue's targets.

Input (argv[1]): one run per line, `ENGINE WORKLOAD key=value ...`, where
ENGINE is isola, base (an isola-blk from before a change), qsd or fio and the keys are blk-loadgen's (iops, p50_us,
p99_us, p999_us, ...).  `fio-json ENGINE WORKLOAD FILE` converts one fio
--output-format=json result into that form.
"""
import json
import re
import statistics
import sys

TARGET_VS_QSD = 1.2   # isola-blk >= 1.2x qemu-storage-daemon's IOPS
TARGET_VS_FIO = 0.85  # isola-blk >= 85% of fio's IOPS
TARGET_P50_OVER_FIO_US = 15  # depth 1: isola-blk's p50 <= fio's + 15 us


def fio_line(engine, workload, path):
    job = json.load(open(path))["jobs"][0]
    # --unified_rw_reporting=mixed puts reads and writes together.
    side = job.get("mixed") or (job["read"] if job["read"]["io_bytes"] else job["write"])
    pct = side["lat_ns"]["percentile"]
    us = lambda key: pct[key] / 1000.0
    # usr_cpu/sys_cpu: percent of one CPU over job_runtime (ms), summed
    # over the jobs with --group_reporting; fio is back-end and load in one.
    ios = side["total_ios"] or 1
    cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * job["job_runtime"] * 1000.0 / ios
    return (f"{engine} {workload} iops={side['iops']:.0f} mib_s={side['bw_bytes'] / 2**20:.1f} "
            f"mean_us={side['lat_ns']['mean'] / 1000:.1f} "
            f"p50_us={us('50.000000'):.1f} p99_us={us('99.000000'):.1f} "
            f"p999_us={us('99.900000'):.1f} load_cpu_us_per_io={cpu_us:.2f} "
            f"server_cpu_us_per_io=0 ios_per_cpu_s={1e6 / cpu_us if cpu_us else 0:.0f} "
            f"errors={job['error']}")


def parse(path):
    runs = {}
    for line in open(path):
        fields = line.split()
        if len(fields) < 3:
            continue
        engine, workload = fields[0], fields[1]
        kv = dict(f.split("=", 1) for f in fields[2:] if "=" in f)
        runs.setdefault((engine, workload), []).append(kv)
    return runs


def median(runs, key):
    values = [float(r[key]) for r in runs if key in r]
    return statistics.median(values) if values else None


def fmt(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def report(path):
    runs = parse(path)
    workloads = []
    for (_, w) in runs:
        if w not in workloads:
            workloads.append(w)
    verdicts = []
    for w in workloads:
        isola, qsd, fio = (runs.get((e, w), []) for e in ("isola", "qsd", "fio"))
        if not isola:
            continue
        n = min(len(isola), len(qsd) or len(isola))
        print(f"\n## {w} ({n} runs each, medians)")
        iops = median(isola, "iops")
        if qsd:
            q = median(qsd, "iops")
            print(f"{w} IOPS: isola {iops:.0f}, peer {q:.0f}, ratio {iops / q:.2f}")
            for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
                a, b = median(isola, key), median(qsd, key)
                print(f"{w} {label} latency (us): isola {fmt(a)}, peer {fmt(b)}, ratio {a / b:.2f}")
        cpu = lambda rs: (median(rs, "server_cpu_us_per_io"), median(rs, "load_cpu_us_per_io"))
        peers = [("peer", qsd)] if qsd else []
        if "-64k" in w or w.startswith(("read-", "write-")):
            for label, rs in peers + [("fio (limit)", fio)] if fio else peers:
                a, b = median(isola, "mib_s"), median(rs, "mib_s")
                if a is not None and b:
                    print(f"{w} MiB/s{' vs fio (limit)' if label != 'peer' else ''}: "
                          f"isola {a:.0f}, peer {b:.0f}, ratio {a / b:.2f}")
        si, li = cpu(isola)
        if si is not None and li is not None:
            for label, rs in peers + ([("fio", fio)] if fio else []):
                sp, lp = cpu(rs)
                if sp is None or lp is None:
                    continue
                vs = " vs fio" if label == "fio" else ""
                print(f"{w} CPU us per request (back-end + load generator){vs}: "
                      f"isola {fmt(si + li)} ({fmt(si)} + {fmt(li)}), peer {fmt(sp + lp)}"
                      + (f" ({fmt(sp)} + {fmt(lp)})" if label != "fio" else " (one process)")
                      + f", ratio {(si + li) / (sp + lp):.2f}")
                a, b = median(isola, "ios_per_cpu_s"), median(rs, "ios_per_cpu_s")
                print(f"{w} IOPS per CPU-second{vs}: isola {a:.0f}, peer {b:.0f}, ratio {a / b:.2f}")
        if fio:
            f = median(fio, "iops")
            print(f"{w} IOPS vs fio (limit): isola {iops:.0f}, peer {f:.0f}, ratio {iops / f:.2f}")
            for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
                a, b = median(isola, key), median(fio, key)
                print(f"{w} {label} latency vs fio (us): isola {fmt(a)}, peer {fmt(b)}, ratio {a / b:.2f}")
        base = runs.get(("base", w), [])
        if base:
            # the same rounds with the isola-blk from before a change
            for key, label in (("iops", "IOPS"), ("p50_us", "p50 latency (us)"),
                               ("server_cpu_us_per_io", "back-end CPU us per request"),
                               ("ios_per_cpu_s", "IOPS per CPU-second")):
                a, b = median(isola, key), median(base, key)
                if a is not None and b:
                    print(f"{w} {label} vs before: isola {fmt(a)}, peer {fmt(b)}, ratio {a / b:.2f}")
            if "-64k" in w:
                a, b = median(isola, "mib_s"), median(base, "mib_s")
                if a is not None and b:
                    print(f"{w} MiB/s vs before: isola {a:.0f}, peer {b:.0f}, ratio {a / b:.2f}")
        spread = lambda rs: "..".join(f"{float(r['iops']):.0f}" for r in sorted(rs, key=lambda r: float(r['iops']))[::max(1, len(rs) - 1)])
        print(f"{w} IOPS min..max: isola {spread(isola)}"
              + (f", before {spread(base)}" if base else "")
              + (f", qsd {spread(qsd)}" if qsd else "") + (f", fio {spread(fio)}" if fio else ""))
        if qsd and fio:
            vq, vf = iops / median(qsd, "iops"), iops / median(fio, "iops")
            # depth 1 also has a latency target: p50 within 15 us of fio's
            extra = None
            if re.search(r"-qd1(-|$)", w):
                extra = median(isola, "p50_us") - median(fio, "p50_us")
            verdicts.append((w, vq, vf, extra))
    if verdicts:
        print("\n## targets: isola-blk >= 1.2x qemu-storage-daemon IOPS and >= 85% of fio's")
        print(f"(depth 1 also: p50 <= fio's + {TARGET_P50_OVER_FIO_US} us)")
        ok = lambda v: "met" if v else "NOT met"
        for w, vq, vf, extra in verdicts:
            line = (f"target {w}: vs qsd {vq:.2f}x ({ok(vq >= TARGET_VS_QSD)}), "
                    f"vs fio {vf:.2f} ({ok(vf >= TARGET_VS_FIO)})")
            if extra is not None:
                line += f", p50 vs fio {extra:+.1f} us ({ok(extra <= TARGET_P50_OVER_FIO_US)})"
            print(line)
        # The set is the guest that sleeps at once; the -hpN rows
        # (a guest KVM halt-polls) are counted apart, never mixed in.
        for label, mine in (("", lambda w: "-hp" not in w),
                            (" with a halt-polling guest (-hp)", lambda w: "-hp" in w)):
            rows = [v for v in verdicts if mine(v[0])]
            if not rows:
                continue
            met = sum(vq >= TARGET_VS_QSD and vf >= TARGET_VS_FIO and
                      (extra is None or extra <= TARGET_P50_OVER_FIO_US)
                      for _, vq, vf, extra in rows)
            print(f"targets met in {met} of {len(rows)} workloads{label}")
    errors = sum(int(r.get("errors", 0)) for rs in runs.values() for r in rs)
    if errors:
        print(f"\nWARNING: {errors} requests failed during the runs")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "fio-json":
        print(fio_line(*sys.argv[2:]))
    elif len(sys.argv) == 2:
        report(sys.argv[1])
    else:
        sys.exit("usage: report.py RUNS_FILE | report.py fio-json ENGINE WORKLOAD FIO_JSON")
