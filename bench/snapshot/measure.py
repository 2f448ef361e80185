#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Snapshot benchmark: restore-to-running time and snapshot size, 256 MiB vs 2 GiB.

For each guest size, the loop guest (loop_guest.S: OUT to COM1 forever) is
booted under `isola --api-sock`, paused and snapshotted with `isola
snapshot` (timed, 5 times; the last pair is kept).  Then each run restores
it once through restore_measure.c in each of two ways, the sizes and the
ways interleaved (alternating which size goes first), after warm-up runs:

  api: a fresh `isola --api-sock` is started (not timed); t0 = just before
       PUT /snapshot/load {resume_vm: true} is written to its socket;
  cli: t0 = just before fork() + exec of `isola restore`;

to the first byte the restored guest writes to COM1, read from isola's
stdout (a pipe): the guest's first instruction after the restore is at
most two instructions before that OUT, so this is the restored guest
running again, one VM exit (~8-27 us on PVM) later.  Also reported: the
HTTP response's arrival (api) and isola's own "running in N ms" (from the
start of the restore to the vCPUs released).

Prints one line per figure (style.md) and the 2 GiB / 256 MiB ratio.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def stats(values):
    m = quantile(values, 0.5)
    return m, (f"median {m / 1000:.2f} ms, p10 {quantile(values, 0.1) / 1000:.2f}, "
               f"p90 {quantile(values, 0.9) / 1000:.2f} (min {min(values) / 1000:.2f}, "
               f"max {max(values) / 1000:.2f}, {len(values)} runs)")


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def api(sock, method, path, body=None):
    cmd = ["curl", "-s", "--max-time", "30", "--unix-socket", sock, "-X", method,
           "-o", "/dev/null", "-w", "%{http_code}", f"http://localhost{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def make_snapshot(isola, guest, mib, tmp, name, creates):
    """Boot the loop guest with mib MiB, snapshot it `creates` times; returns
    (state, mem, create times in us)."""
    cfg = os.path.join(tmp, f"{name}.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": guest},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": mib}}, f)
    sock = os.path.join(tmp, f"{name}.sock")
    state, mem = os.path.join(tmp, f"{name}.state"), os.path.join(tmp, f"{name}.mem")
    with open(os.path.join(tmp, f"{name}.boot.err"), "w") as err:
        vmm = subprocess.Popen([isola, "--api-sock", sock, "--config-file", cfg],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        for _ in range(400):
            if os.path.exists(sock) and api(sock, "GET", "/") == "200":
                break
            time.sleep(0.025)
        time.sleep(0.2)  # the guest loops
        if api(sock, "PATCH", "/vm", {"state": "Paused"}) != "204":
            sys.exit(f"bench: {name}: could not pause the VM")
        times = []
        for _ in range(creates):
            t = time.monotonic_ns()
            subprocess.run([isola, "snapshot", "--api-sock", sock, "--state", state,
                            "--mem", mem], check=True, stdout=subprocess.DEVNULL)
            times.append((time.monotonic_ns() - t) // 1000)
    finally:
        vmm.kill()
        vmm.wait()
    return state, mem, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restore-measure", required=True)
    ap.add_argument("--isola", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dir", help="where the snapshots go (default: a temporary directory)")
    args = ap.parse_args()

    sizes = [("256M", 256), ("2G", 2048)]
    tmp = tempfile.mkdtemp(prefix="isola-bench-snapshot.", dir=args.dir)
    print("# snapshot: restore to running and snapshot size, 256 MiB vs 2 GiB guest")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print(f"kernel: {platform.release()}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} online)")
    pvm = os.path.exists("/sys/module/kvm_pvm")
    print(f"kvm: {'PVM (software KVM, /sys/module/kvm_pvm)' if pvm else 'hardware KVM'}")
    print(f"isola: {subprocess.run([args.isola, '--version'], capture_output=True, text=True).stdout.strip()} ({args.isola})")
    print(f"guest: {args.guest} (OUT to COM1 in a loop), 1 vCPU; snapshots in {tmp} "
          f"({subprocess.run(['stat', '-f', '-c', '%T', tmp], capture_output=True, text=True).stdout.strip()})")
    print(f"load average at the start: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"runs: {args.runs} per size per way, sizes and ways interleaved, after "
          f"{args.warmup} warm-up runs each")
    print("method api: t0 just before PUT /snapshot/load {resume_vm: true} is written to a "
          "fresh isola --api-sock (started and answering before t0); first byte = the "
          "restored guest's first OUT to COM1 read from isola's stdout (a pipe)")
    print("method cli: t0 just before fork()+exec of isola restore --state S --mem M "
          "--console stdio; same first byte")
    snaps = {}
    for name, mib in sizes:
        state, mem, times = make_snapshot(args.isola, args.guest, mib, tmp, name, 5)
        st = os.stat(mem)
        snaps[name] = (state, mem)
        print(f"{name}: memory file {st.st_size} bytes apparent, {st.st_blocks * 512} bytes on "
              f"disk; state file {os.path.getsize(state)} bytes; isola snapshot (the command, "
              f"paused VM) median {quantile(times, 0.5) / 1000:.2f} ms of {len(times)}")

    results = {(n, w, k): [] for n, _ in sizes for w in ("api", "cli")
               for k in ("first", "response", "running")}
    failures = 0
    for i in range(args.warmup + args.runs):
        order = sizes if i % 2 == 0 else sizes[::-1]
        for name, _ in order:
            for way in (("api", "cli") if i % 4 < 2 else ("cli", "api")):
                state, mem = snaps[name]
                errfile = os.path.join(tmp, "restore.err")
                out = subprocess.run([args.restore_measure, way, args.isola,
                                      os.path.join(tmp, "r.sock") if way == "api" else "-",
                                      state, mem, errfile], capture_output=True, text=True)
                f = dict(kv.split("=") for kv in out.stdout.split())
                with open(errfile) as e:
                    m = re.search(r"running in ([0-9.]+) ms", e.read())
                if out.returncode or (way == "api" and f.get("status") != "204") or not m:
                    failures += 1
                    print(f"bench: {name} {way}: run {i} failed: {out.stdout.strip()} "
                          f"{out.stderr.strip()}", file=sys.stderr)
                    continue
                if i < args.warmup:
                    continue
                results[(name, way, "first")].append(int(f["first_byte_us"]))
                results[(name, way, "running")].append(int(float(m.group(1)) * 1000))
                if way == "api":
                    results[(name, way, "response")].append(int(f["response_us"]))

    medians = {}
    for name, _ in sizes:
        for way, what in (("api", "PUT /snapshot/load to the guest's first instruction"),
                          ("api", "PUT /snapshot/load to its 204"),
                          ("cli", "exec of isola restore to the guest's first instruction"),
                          ("api", "isola's own restore (\"running in\": start of the restore to vCPUs released), api")):
            key = "first" if "first" in what else "response" if "204" in what else "running"
            vals = results[(name, way, key)]
            if not vals:
                continue
            medians[(name, way, key)], text = stats(vals)
            print(f"{name}: {what}: {text}")
    for way, key, label in (("api", "first", "restore to running (api)"),
                            ("cli", "first", "restore to running (isola restore)"),
                            ("api", "running", "isola's restore (running in)")):
        a, b = medians.get(("256M", way, key)), medians.get(("2G", way, key))
        if a and b:
            print(f"{label}: 2G {b / 1000:.2f} ms, 256M {a / 1000:.2f} ms, ratio {b / a:.2f}")
    a, b = medians.get(("256M", "api", "first")), medians.get(("2G", "api", "first"))
    if a and b:
        ok = b <= 4000 and a <= 4000
        flat = b <= 1.2 * a
        print(f"target restore <= 4 ms (api, 2G and 256M): {'met' if ok else 'NOT met'} "
              f"({a / 1000:.2f} / {b / 1000:.2f} ms median)")
        print(f"target flat in guest size (2G within 1.2x of 256M): {'met' if flat else 'NOT met'} "
              f"(ratio {b / a:.2f})")
    print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    subprocess.run(["rm", "-rf", tmp])
    if failures:
        print(f"bench: {failures} run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
