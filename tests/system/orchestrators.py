#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Replays an orchestrator's request sequence (tests/system/orchestrators/*.seq,
the format is in that directory's README.md) against isola, step by step,
and reports each step as a case: "TOOL/NN-STEP PASS|FAIL|SKIP WHY" (to
$ISOLA_CASES when tests/run.sh runs it, and on stdout).  A failed step does
not end the replay: the tool itself would stop there, but the later steps
show what else the orchestrator would meet.  Exit status 1 if a step failed.

  orchestrators.py --isola build/isola --seq kata-go.seq --dir DIR \
      --var KERNEL=... --var GUEST_ARGS=... [--netns NS]
"""
import argparse
import http.client
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

# strict semver 2.0.0, what github.com/blang/semver's Make accepts
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def request(sock, method, path, body):
    """(status, text) or (None, error) when there is no answer."""
    conn = UnixHTTPConnection(sock, timeout=10)
    try:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def parse(path):
    """The .seq file as a list of (lineno, words, rest-of-line, block)."""
    out, lines = [], open(path).read().split("\n")
    i = 0
    while i < len(lines):
        line, no = lines[i], i + 1
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split(" ")
        block = None
        if words[0] == "file":
            block = []
            while i < len(lines) and lines[i] != "end":
                block.append(lines[i])
                i += 1
            if i == len(lines):
                raise SystemExit(f"{path}:{no}: 'file' without 'end'")
            i += 1
        out.append((no, words, line, block))
    return out


def semver_at_least(version, minimum):
    a, b = SEMVER.match(version), SEMVER.match(minimum)
    if not a:
        return None
    va = tuple(int(x) for x in a.groups()[:3])
    vb = tuple(int(x) for x in b.groups()[:3])
    if va != vb:
        return va > vb
    # a pre-release is lower than its release (semver 2.0.0 §11)
    return not (a.group(4) and not b.group(4))


class FifoReader(threading.Thread):
    """The reader an orchestrator holds open on its log/metrics fifo."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.stop = path, threading.Event()
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.start()

    def run(self):
        with open(self.path + ".out", "ab") as out:
            while not self.stop.is_set():
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    data = os.read(self.fd, 65536)
                    if data:
                        out.write(data)
                        out.flush()
                    else:
                        time.sleep(0.05)
        os.close(self.fd)


class Replay:
    def __init__(self, args):
        self.args = args
        args.isola = os.path.abspath(args.isola)  # isola runs in the tool's directory
        self.dir = args.dir = os.path.abspath(args.dir)
        self.vars = dict(v.split("=", 1) for v in args.var)
        self.vars["DIR"] = self.dir
        self.tool = "tool"
        self.n = 0
        self.proc = None
        self.sock = None
        self.console = os.path.join(self.dir, "console.out")
        self.stderr = os.path.join(self.dir, "isola.err")
        self.failed = 0
        self.mounts = []
        self.fifos = []
        self.files = []  # (path, lines)

    # --- reporting -------------------------------------------------------
    def case(self, name, verdict, why, detail=""):
        self.n += 1
        full = f"{self.tool}/{self.n:02d}-{name}"
        why = " ".join(why.split())
        print(f"=== CASE {full}")
        if detail:
            print(detail.rstrip())
        print(f"{verdict}: {full}: {why}")
        print(f"=== END {full}", flush=True)
        if os.environ.get("ISOLA_CASES"):
            with open(os.environ["ISOLA_CASES"], "a") as f:
                f.write(f"{full} {verdict} {why}\n")
        if verdict == "FAIL":
            self.failed += 1

    def sub(self, text):
        return re.sub(r"\$\{([A-Z_]+)\}", lambda m: self.vars.get(m.group(1), m.group(0)), text)

    def path(self, p):
        p = self.sub(p)
        return p if os.path.isabs(p) else os.path.join(self.dir, p)

    def tail(self, path, n=600):
        try:
            with open(path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def exit_note(self):
        if self.proc is not None and self.proc.poll() is not None:
            # isola's own last words, not its device servers'
            lines = [l for l in self.tail(self.stderr, 4000).split("\n") if l and not l.startswith("isola-")]
            return f" (isola exited with status {self.proc.returncode}: {' '.join(lines[-2:])})"
        return ""

    # --- directives ------------------------------------------------------
    def do_version(self, words):
        kind = words[1]
        if kind == "none":
            return
        out = subprocess.run([self.args.isola, "--version"], capture_output=True, text=True, timeout=10)
        first = out.stdout.split("\n")[0]
        fields = first.split(" ")
        detail = f"$ isola --version\n{out.stdout}{out.stderr}"
        if kind != "second-word":
            raise SystemExit(f"unknown version check {kind}")
        if out.returncode != 0 or len(fields) < 2:
            self.case("version", "FAIL", f"'isola --version' printed {first!r} (status {out.returncode}): "
                      "the tool reads the second word of the first line", detail)
            return
        version = fields[1].strip().removeprefix("v")
        ok = semver_at_least(version, words[2])
        if ok is None:
            self.case("version", "FAIL", f"second word {fields[1]!r} of {first!r} is not a semver "
                      f"version; the tool stops: 'Malformed firecracker version'", detail)
        elif not ok:
            self.case("version", "FAIL", f"{first!r}: version {version} is below the tool's minimum "
                      f"{words[2]}; the tool stops: 'version {version} is not supported'", detail)
        else:
            self.case("version", "PASS", f"{first!r}: {version} >= {words[2]}", detail)

    def write_files(self):
        for path, lines in self.files:
            with open(path, "w") as f:
                for line in lines:
                    f.write(self.sub(line) + "\n")

    def start(self, args):
        self.kill()
        cmd = ([] if not self.args.netns else ["ip", "netns", "exec", self.args.netns]) + [self.args.isola] + args
        print(f"  $ {' '.join(cmd)}", flush=True)
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=open(self.console, "ab"), stderr=open(self.stderr, "wb"))
        with open(os.path.join(self.dir, "isola.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")  # for the script's trap
        if "--api-sock" in args:
            self.sock = args[args.index("--api-sock") + 1]
        # Up to 10 s for the socket (or for isola to give up).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.alive():
            if self.sock and os.path.exists(self.sock):
                return True
            time.sleep(0.01)
        return self.alive()

    def do_exec(self, words):
        name, flags, args = words[1], words[2], [self.sub(w) for w in words[3:]]
        up = self.start(args)
        if "vsock" in flags.split(","):
            self.case("vsock-config", "PASS" if up else "FAIL",
                      "isola took the tool's config with its vsock section" if up else
                      f"isola refused the config{self.exit_note()}")
        if up:
            self.case(name, "PASS", f"isola {' '.join(args)} is running" +
                      (f", socket {self.sock} is there" if self.sock else ""))
        else:
            self.case(name, "FAIL", f"isola {' '.join(args)} did not come up within 10 s{self.exit_note()}",
                      self.tail(self.stderr, 2000))

    def check_json(self, checks, text):
        try:
            j = json.loads(text)
        except ValueError:
            return f"the reply is not JSON: {text[:200]!r}"
        bad = []
        for key, want in checks:
            got = j.get(key) if isinstance(j, dict) else None
            got_s = str(got).lower() if isinstance(got, bool) else str(got)
            if got_s != want:
                bad.append(f"{key} is {got!r}, want {want!r}")
        return "; ".join(bad)

    def do_step(self, words, line):
        name, method, path, want, flags = words[1:6]
        body = line.split(" ", 6)[6] if len(words) > 6 else "-"
        body = None if body == "-" else self.sub(body)
        path, want = self.sub(path), int(want)
        flag = [f for f in self.sub(flags).split(",") if f and f != "-"]
        retry = next((int(f[6:]) for f in flag if f.startswith("retry=")), 1)
        poll = next((float(f[5:]) for f in flag if f.startswith("poll=")), 0)
        checks = [tuple(f.split("=", 1)) for f in flag
                  if "=" in f and not f.startswith(("retry=", "poll="))]
        deadline = time.monotonic() + poll
        tries = 0
        while True:
            tries += 1
            status, text = request(self.sock, method, path, body) if self.sock else (None, "no socket")
            bad = self.check_json(checks, text) if status == want and checks else ""
            done = status == want and not bad
            if done or (retry > 1 and status is not None and 200 <= status < 300):
                break
            if retry > 1 and tries < retry:
                time.sleep(0.01)
                continue
            if poll and time.monotonic() < deadline and self.alive():
                time.sleep(0.01)
                continue
            break
        what = f"{method} {path}" + (f" {body}" if body else "")
        shown = f"{what}\n-> {status} {text[:400]}" + (f" ({tries} tries)" if tries > 1 else "")
        if done:
            self.case(name, "PASS", f"{method} {path} -> {status}" + (f" with {', '.join('='.join(c) for c in checks)}" if checks else ""), shown)
        else:
            why = f"{method} {path} -> {status} {text[:200]}, want {want}"
            if bad:
                why += f": {bad}"
            if poll:
                why += f" (polled {poll:g} s, as the tool does)"
            self.case(name, "FAIL", why + self.exit_note(), shown)

    def console_text(self):
        return self.tail(self.console, 1 << 20).replace("\r", "")

    def last_count(self):
        c = re.findall(r"^count (\d+)$", self.console_text(), re.M)
        return int(c[-1]) if c else 0

    def do_guest(self, words):
        name, seconds, what = words[1], float(words[2]), self.sub(words[3])
        deadline = time.monotonic() + seconds
        before = self.last_count()
        while True:
            text = self.console_text()
            pci = re.search(r"^pci bus 0:.*$", text, re.M)
            if what.startswith(("disks=", "nics=")):
                dev = "1af4:1042" if what.startswith("disks=") else "1af4:1041"
                want = int(what.split("=")[1])
                if pci:
                    got = pci.group(0).count("=" + dev)
                    verdict = "PASS" if got == want else "FAIL"
                    self.case(name, verdict, f"the guest sees {got} {'virtio-blk' if dev.endswith('42') else 'virtio-net'} "
                              f"device(s), want {want}: {pci.group(0)}")
                    return
            elif what == "count":
                now = self.last_count()
                if now > before:
                    self.case(name, "PASS", f"the guest runs: count {before} -> {now}")
                    return
            if time.monotonic() > deadline or not self.alive():
                break
            time.sleep(0.1)
        self.case(name, "FAIL", f"within {seconds:g} s the guest's console shows no "
                  f"{'pci bus 0: line' if what != 'count' else f'count after {before}'}{self.exit_note()}",
                  "console tail:\n" + text[-800:])

    def do_exists(self, words):
        name, path = words[1], self.path(words[2])
        for _ in range(200):
            if os.path.exists(path):
                self.case(name, "PASS", f"{path} exists")
                return
            time.sleep(0.01)
        self.case(name, "FAIL", f"no {path}{self.exit_note()}")

    def do_hvsock(self, words):
        """The hybrid vsock socket is there and answers "CONNECT PORT\\n" as
        the guest allows (README.md's hvsock): with a vsock driver, "OK
        <hostport>\\n" from a listener or a clean close without one; with
        none, a clean close or the connection held unanswered (isola-vsock,
        as Firecracker, serves host connections once the guest's driver has
        started the device).  Junk, or silence from a guest with a driver,
        fails."""
        name, path, port, seconds = words[1], self.path(words[2]), int(words[3]), float(words[4])
        guest = self.sub(words[5]) if len(words) > 5 else "driver"
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.01)
        if not os.path.exists(path) or not stat.S_ISSOCK(os.stat(path).st_mode):
            self.case(name, "FAIL", f"no socket at {path}{self.exit_note()}")
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(seconds)
        got, how = b"", ""
        try:
            s.connect(path)
            s.sendall(f"CONNECT {port}\n".encode())
            while b"\n" not in got:
                d = s.recv(64)
                if not d:
                    how = "closed"
                    break
                got += d
        except socket.timeout:
            how = "held"
        except ConnectionResetError:
            how = "reset"
        except OSError as e:
            how = f"error {e}"
        finally:
            s.close()
        line = got.decode(errors="replace").strip()
        if guest == "driver" and re.fullmatch(r"OK \d+", line) and got.endswith(b"\n"):
            self.case(name, "PASS", f"{path}: CONNECT {port} -> {line!r}: a guest listener took it")
        elif not got and how in ("closed", "reset"):
            self.case(name, "PASS", f"{path} is a socket; CONNECT {port} with no guest listener "
                      f"(no agent in this guest) was {how} cleanly, without an OK")
        elif not got and how == "held" and guest == "none":
            self.case(name, "PASS", f"{path} is a socket; CONNECT {port} was held unanswered for "
                      f"{seconds:g} s: this guest has no vsock driver, and isola-vsock (as "
                      f"Firecracker) serves host connections once the guest's driver runs")
        else:
            self.case(name, "FAIL", f"{path}: CONNECT {port} -> {got[:80]!r}, {how or 'not an OK line'} "
                      f"within {seconds:g} s (guest vsock: {guest}); want 'OK <hostport>' or a clean "
                      f"close{' or no answer' if guest == 'none' else ''}{self.exit_note()}")

    def do_signal(self, words):
        name, sig, seconds = words[1], words[2], float(words[3])
        if not self.alive():
            self.case(name, "FAIL", f"isola is not running to receive SIG{sig}{self.exit_note()}")
            return
        self.proc.send_signal(getattr(signal, "SIG" + sig))
        try:
            st = self.proc.wait(seconds)
            self.case(name, "PASS", f"SIG{sig}: isola ended with status {st}")
        except subprocess.TimeoutExpired:
            self.case(name, "FAIL", f"SIG{sig}: isola still runs after {seconds:g} s")
            self.kill()

    def setup(self, no, words, block):
        op = words[0]
        if op == "dir":
            os.makedirs(self.path(words[1]), exist_ok=True)
        elif op == "empty":
            with open(self.path(words[1]), "wb") as f:
                f.truncate(int(words[2]) if len(words) > 2 else 0)
        elif op == "stub":
            data = self.sub(words[2]).encode()
            with open(self.path(words[1]), "wb") as f:
                f.write(data + b"\0" * (-len(data) % 512))
        elif op == "image":
            with open(self.path(words[1]), "wb") as f:
                f.truncate(int(words[2]) << 20)
        elif op == "fifo":
            p = self.path(words[1])
            os.mkfifo(p)
            self.fifos.append(FifoReader(p))
        elif op == "file":
            self.files.append((self.path(words[1]), block))
            self.write_files()
        elif op == "bind":
            target, src = self.path(words[1]), self.path(words[2])
            if not os.path.exists(target):
                open(target, "w").close()
            subprocess.run(["mount", "--bind", src, target], check=True)
            self.mounts.append(target)
        elif op == "unbind":
            target = self.path(words[1])
            # Kata's umountResource: unmount(MNT_DETACH)
            subprocess.run(["umount", "-l", target], check=True)
            self.mounts.remove(target)
        else:
            raise SystemExit(f"line {no}: unknown directive {op}")

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        for r in self.fifos:
            r.stop.set()
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], check=False)

    def run(self, seq):
        for no, words, line, block in parse(seq):
            op = words[0]
            if op == "tool":
                self.tool = words[1]
            elif op == "version":
                self.do_version(words)
            elif op == "exec":
                self.do_exec(words)
            elif op == "step":
                self.do_step(words, line)
            elif op == "guest":
                self.do_guest(words)
            elif op == "exists":
                self.do_exists(words)
            elif op == "hvsock":
                self.do_hvsock(words)
            elif op == "signal":
                self.do_signal(words)
            elif op == "l2size":
                print(f"  ({line}: the nested Linux checks this; the test guest cannot)")
            else:
                try:
                    self.setup(no, words, block)
                except (OSError, subprocess.CalledProcessError) as e:
                    self.case(f"setup-line-{no}", "FAIL", f"{line}: {e}")
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isola", required=True)
    ap.add_argument("--seq", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--netns", default="")
    ap.add_argument("--var", action="append", default=[])
    r = Replay(ap.parse_args())
    try:
        r.run(r.args.seq)
    finally:
        r.cleanup()
    print(f"{r.tool}: {r.n} steps, {r.failed} failed", flush=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
