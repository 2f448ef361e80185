#!/usr/bin/env python3
"""Host side of the vsock test guests (tests/system/vsock_guests.sh).

isola-vsock's hybrid sockets (Firecracker's convention, docs/vsock.md): a
host process connects to the Unix socket UDS, writes "CONNECT <port>\\n",
reads "OK <hostport>\\n", and the stream is the guest's connection to its
listener on <port>; a guest connecting to CID 2 port P reaches a listener on
the Unix socket UDS_P.

    vsock_peer.py echo UDS CONSOLE PIDFILE    (guest vsock_echo)
    vsock_peer.py restart UDS CONSOLE PIDFILE (vsock_echo restart)
    vsock_peer.py hostile UDS CONSOLE PIDFILE (hostile/virtio_vsock)

The listeners on UDS_P are up once UDS.ready exists; the script then starts
isola and writes its pid to PIDFILE.

Prints "PASS: ..."/"FAIL: ..." lines; exit 0 when nothing failed.
"""
import hashlib
import os
import random
import re
import selectors
import signal
import socket
import struct
import sys
import threading
import time

FAILS = []
ECHO_PORT, HOST_PORT, IGNORE_PORT = 5000, 7000, 5999
H_ECHO_PORT, H_HOLD_PORT = 6000, 6001
PATTERN_MUL = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def check(ok, what, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok else ": " + detail), flush=True)
    if not ok:
        FAILS.append(what)
    return ok


def pattern(nbytes, seed):
    """tests/guest/lib/pattern.c: word o/8 = ((o/8)+1)*MUL ^ seed, LE."""
    words = [(((i + 1) * PATTERN_MUL) & MASK) ^ seed for i in range(nbytes // 8)]
    return struct.pack("<%dQ" % len(words), *words)


def wait_console(console, regex_text, timeout, start=0):
    """Wait for a console line containing regex_text; returns the offset after it."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(console, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        i = data.find(regex_text.encode(), start)
        if i >= 0:
            return i + len(regex_text)
        if b"isola-guest: FAIL" in data or b"\nFAIL" in data[start:]:
            break
        time.sleep(0.05)
    return -1


def server_pid(root_pid):
    """isola-vsock serving the VM under root_pid: the process named
    isola-vsock whose parent is not one (its sandbox has a child of the same
    name; killing the outer one is the server's death the core sees)."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1 : st.rindex(")")]
        procs[int(d)] = (comm, int(st.rsplit(")", 1)[1].split()[1]))
    under = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, (_, ppid) in procs.items():
            if ppid in under and pid not in under:
                under.add(pid)
                changed = True
    for pid in sorted(under):
        comm, ppid = procs.get(pid, ("", 0))
        if comm == "isola-vsock" and procs.get(ppid, ("", 0))[0] != "isola-vsock":
            return pid
    return None


# ---- host listeners on UDS_P -------------------------------------------------


class Listener(threading.Thread):
    """UDS_<port>: 'echo' echoes every byte and shuts its side at EOF (and
    checks each stream against pattern(seed) if seed is set); 'hold' accepts
    and never reads."""

    def __init__(self, path, mode, seed=None):
        super().__init__(daemon=True)
        self.path, self.mode, self.seed = path, mode, seed
        self.accepted = 0
        self.streams = []  # (bytes, ok) per closed echo connection
        self.held = []
        self.stop = False
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)

    def run(self):
        while not self.stop:
            for key, ev in self.sel.select(0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._io(key, ev)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return
            self.accepted += 1
            if self.mode == "hold":
                self.held.append(c)
                continue
            c.setblocking(False)
            st = {"out": bytearray(), "eof": False, "n": 0, "h": hashlib.sha256()}
            self.sel.register(c, selectors.EVENT_READ, st)

    def _io(self, key, ev):
        c, st = key.fileobj, key.data
        try:
            if ev & selectors.EVENT_READ and not st["eof"]:
                d = c.recv(65536)
                if not d:
                    st["eof"] = True
                else:
                    st["n"] += len(d)
                    st["h"].update(d)
                    st["out"] += d
            if st["out"]:
                try:
                    k = c.send(st["out"])
                    del st["out"][:k]
                except BlockingIOError:
                    pass
        except (ConnectionResetError, BrokenPipeError):
            self.streams.append((st["n"], None))
            self.sel.unregister(c)
            c.close()
            return
        if st["eof"] and not st["out"]:
            ok = None
            if self.seed is not None:
                ok = st["h"].digest() == hashlib.sha256(pattern(st["n"], self.seed)).digest()
            self.streams.append((st["n"], ok))
            self.sel.unregister(c)
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            c.close()
            return
        self.sel.modify(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if st["out"] else 0), st)

    def close(self):
        self.stop = True
        self.join(2)
        for c in self.held:
            c.close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# ---- clients through UDS ------------------------------------------------------


def hybrid_connect(uds, port, timeout=10.0):
    """Connect, CONNECT <port>, read the OK line; returns (sock, line)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n") and len(line) < 64:
        d = s.recv(1)
        if not d:
            break
        line += d
    return s, line


def ok_line(line):
    parts = line.split()
    return line.endswith(b"\n") and len(parts) == 2 and parts[0] == b"OK" and parts[1].isdigit()


def echo_client(uds, port, nbytes, idx, results):
    """CONNECT, send nbytes, shut down writing, read everything back to EOF."""
    try:
        s, line = hybrid_connect(uds, port)
    except OSError as e:
        results[idx] = "connect: %s" % e
        return
    if not ok_line(line):
        results[idx] = "CONNECT %d answered %r, want 'OK <port>\\n'" % (port, line)
        s.close()
        return
    data = random.Random(idx).randbytes(nbytes)
    got = bytearray()
    s.settimeout(30)

    def reader():
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                got.extend(d)
        except OSError as e:
            got.extend(b"")  # the length check reports it
            results.setdefault("err%d" % idx, str(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(0, nbytes, 65536):
            s.sendall(data[i : i + 65536])
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        results[idx] = "send: %s" % e
    t.join(40)
    s.close()
    if idx in results:
        return
    if hashlib.sha256(bytes(got)).digest() != hashlib.sha256(data).digest():
        results[idx] = "echo of %d bytes: got %d bytes, checksum differs (%s)" % (
            nbytes, len(got), results.get("err%d" % idx, "EOF"))
    else:
        results[idx] = None


def run_echo_clients(uds, port, nbytes, n):
    results = {}
    ts = [threading.Thread(target=echo_client, args=(uds, port, nbytes, i, results)) for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    dt = time.time() - t0
    bad = [results.get(i, "no result") for i in range(n) if results.get(i, "x") is not None]
    check(not bad, "%d concurrent echo connections of %d bytes through CONNECT %d" % (n, nbytes, port),
          "; ".join(bad))
    print("echo: %d x %d bytes both ways in %.2f s (%.2f MiB/s)" % (
        n, nbytes, dt, 2 * n * nbytes / dt / 2**20), flush=True)


# ---- ttRPC (Kata's agent protocol framing) ---------------------------------------
# containerd/ttrpc: a 10-byte header, length u32 BE, stream id u32 BE, type u8
# (1 request, 2 response), flags u8; client stream ids are odd.  Kata's
# runtime dials the hybrid vsock with "CONNECT 1024\n" (the agent's port) and
# then speaks ttRPC.


def ttrpc_frame(stream, mtype, flags, payload):
    return struct.pack(">IIBB", len(payload), stream, mtype, flags) + payload


def read_exact(s, n):
    b = bytearray()
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("EOF after %d of %d bytes" % (len(b), n))
        b += d
    return bytes(b)


def ttrpc_replay(uds):
    try:
        s, line = hybrid_connect(uds, 1024)
    except OSError as e:
        return check(False, "ttRPC: CONNECT 1024", str(e))
    if not check(ok_line(line), "ttRPC: CONNECT 1024 answered OK <port>", repr(line)):
        return False
    # Method names as a real request would carry them (the framing is what is
    # checked; the guest echoes the payload).
    methods = [b"/grpc.AgentService/CreateSandbox", b"/grpc.AgentService/CheckRequest",
               b"/grpc.AgentService/CreateContainer", b"/grpc.AgentService/StartContainer",
               b"/grpc.AgentService/WaitProcess", b"/grpc.AgentService/DestroySandbox"]
    rng = random.Random(1024)
    sent = []
    stream = 1
    for i, m in enumerate(methods):
        size = [0, 17, 4096, 65536, 300000, 5][i]
        payload = m + b"\0" + rng.randbytes(size)
        sent.append((stream, i & 1, payload))
        stream += 2
    try:
        wire = b"".join(ttrpc_frame(st, 1, fl, p) for st, fl, p in sent)
        # in odd-sized writes, so frames straddle packets
        for i in range(0, len(wire), 7777):
            s.sendall(wire[i : i + 7777])
        ok = True
        for st, fl, p in sent:
            ln, rst, mt, rfl = struct.unpack(">IIBB", read_exact(s, 10))
            body = read_exact(s, ln)
            ok &= check(rst == st and mt == 2 and rfl == fl and body == p,
                        "ttRPC: response to stream %d (%d-byte payload)" % (st, len(p)),
                        "stream %d type %d flags %d, %d bytes, payload %s" % (
                            rst, mt, rfl, ln, "same" if body == p else "differs"))
        s.shutdown(socket.SHUT_WR)
        check(s.recv(1) == b"", "ttRPC: orderly close (EOF after our shutdown)")
    except (OSError, EOFError) as e:
        ok = check(False, "ttRPC responses", str(e))
    s.close()
    return ok


# ---- scenarios ------------------------------------------------------------------


def half_open(uds):
    """A client that never sends the CONNECT line, and one whose CONNECT goes
    to a port the guest never answers."""
    a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    a.connect(uds)
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b.connect(uds)
    b.sendall(b"CONNECT %d\n" % IGNORE_PORT)
    b.setblocking(False)
    return a, b


def echo_scenario(uds, console, pidfile):
    lst = Listener("%s_%d" % (uds, HOST_PORT), "echo", seed=0x5EED)
    lst.start()
    isola_pid = isola_pid_from(pidfile, uds + ".ready")
    try:
        if not check(wait_console(console, "vsock: READY", 60) >= 0, "guest READY"):
            return
        spid = server_pid(isola_pid)
        check(spid is not None, "isola-vsock runs under isola")
        a, b = half_open(uds)
        t_open = time.time()
        t = threading.Thread(target=ttrpc_replay, args=(uds,))
        t.start()
        run_echo_clients(uds, ECHO_PORT, 256 << 10, 4)
        t.join(60)
        check(server_pid(isola_pid) == spid, "isola-vsock never restarted")
        # isola-vsock closes both half-open clients (5 s for the CONNECT
        # line, 10 s for the guest's answer), never answering OK.
        for what, sk in (("a client that never sends CONNECT", a),
                         ("a CONNECT the guest never answers", b)):
            sk.setblocking(True)
            sk.settimeout(max(0.1, t_open + 14 - time.time()))
            try:
                got = sk.recv(64)
            except socket.timeout:
                got = None
            except ConnectionResetError:
                got = b""
            check(got == b"", what + ": closed by isola-vsock without OK",
                  "still open after 14 s" if got is None else repr(got))
            sk.close()
        # the guest's last echo connection: the VM stayed up meanwhile
        run_echo_clients(uds, ECHO_PORT, 4096, 1)
        if not check(wait_console(console, "isola-guest: PASS", 60) >= 0, "guest PASS"):
            return
        streams = lst.streams
        check(len(streams) == 2 and all(ok for _, ok in streams),
              "guest->host: 2 connections to %s_%d, pattern checked on the host" % (uds, HOST_PORT),
              repr(streams))
    finally:
        lst.close()


def restart_scenario(uds, console, pidfile):
    lst = Listener("%s_%d" % (uds, HOST_PORT), "echo", seed=0x5EED)
    lst.start()
    isola_pid = isola_pid_from(pidfile, uds + ".ready")
    try:
        if not check(wait_console(console, "vsock: READY", 60) >= 0, "guest READY"):
            return
        run_echo_clients(uds, ECHO_PORT, 64 << 10, 1)
        if not check(wait_console(console, "waiting for a transport reset", 60) >= 0,
                     "guest waits for the transport reset"):
            return
        s, line = hybrid_connect(uds, ECHO_PORT)
        check(ok_line(line), "held connection: CONNECT answered OK", repr(line))
        s.sendall(b"x" * 1000)
        check(read_exact(s, 1000) == b"x" * 1000, "held connection echoes")
        spid = server_pid(isola_pid)
        if not check(spid is not None, "isola-vsock runs under isola"):
            return
        os.kill(spid, signal.SIGKILL)
        print("killed isola-vsock %d" % spid, flush=True)
        s.settimeout(10)
        try:
            d = s.recv(1)
            check(d == b"", "held host socket ends at the server's death", repr(d))
        except ConnectionResetError:
            check(True, "held host socket ends at the server's death")
        except OSError as e:
            check(False, "held host socket ends at the server's death", str(e))
        s.close()
        if not check(wait_console(console, "vsock: READY2", 30) >= 0,
                     "guest saw TRANSPORT_RESET and is ready again"):
            return
        nspid = server_pid(isola_pid)
        check(nspid is not None and nspid != spid, "a new isola-vsock serves", repr(nspid))
        # the new server binds UDS again (stale file unlinked)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                hybrid_connect(uds, 1)[0].close()
                break
            except OSError:
                time.sleep(0.1)
        run_echo_clients(uds, ECHO_PORT, 64 << 10, 1)
        check(wait_console(console, "isola-guest: PASS", 60) >= 0, "guest PASS")
        check(len(lst.streams) == 2 and all(ok for _, ok in lst.streams),
              "guest->host connection before and after the restart", repr(lst.streams))
    finally:
        lst.close()


def hostile_scenario(uds, console, pidfile):
    echo = Listener("%s_%d" % (uds, H_ECHO_PORT), "echo")
    hold = Listener("%s_%d" % (uds, H_HOLD_PORT), "hold")
    echo.start()
    hold.start()
    isola_pid = isola_pid_from(pidfile, uds + ".ready")
    try:
        deadline = time.time() + 100
        spid = None
        while time.time() < deadline and spid is None:
            spid = server_pid(isola_pid)
            time.sleep(0.05)
        check(spid is not None, "isola-vsock runs under isola")
        done = wait_console(console, "isola-guest: PASS", 110)
        check(done >= 0, "guest PASS (every attack refused, the device works after each)")
        check(spid is not None and server_pid(isola_pid) in (spid, None),
              "isola-vsock was not restarted by the attacks")
        time.sleep(0.3)  # the listeners accept from their backlog
        print("host listeners: echo accepted %d, hold accepted %d" % (echo.accepted, hold.accepted),
              flush=True)
        with open(console, "rb") as f:
            m = re.search(rb"vsock: host connections made: (\d+)", f.read())
        made = int(m.group(1)) if m else -1
        check(made == echo.accepted + hold.accepted,
              "the host listeners accepted exactly the guest's connections (no forged REQUEST "
              "reached the host)", "guest made %d, listeners accepted %d" % (
                  made, echo.accepted + hold.accepted))
    finally:
        echo.close()
        hold.close()


def isola_pid_from(pidfile, listeners_up):
    with open(listeners_up, "w"):
        pass
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with open(pidfile) as f:
                return int(f.read())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise SystemExit("FAIL: no isola pid in %s" % pidfile)


def main():
    mode, uds, console, pidfile = sys.argv[1:5]
    {"echo": echo_scenario, "restart": restart_scenario, "hostile": hostile_scenario}[mode](
        uds, console, pidfile)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
