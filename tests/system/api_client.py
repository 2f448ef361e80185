#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every error path of the control API (issue 5, acceptance 3), stdlib only.

Starts `isola --api-sock` itself and throws bad input at it: malformed JSON,
wrong types, unknown fields, missing required fields, bodies over 51,200
bytes, wrong or missing Content-Length, header floods, a client that stalls
mid-request, 64 concurrent clients, requests in the wrong state, paths
outside the API and endpoints isola does not implement.  Each must get the
right 4xx with a JSON {"fault_message": "..."}, and the VMM must keep
running: GET / still answers and, once booted, the counter guest keeps
counting.  Prints one line per check; exit 0 if all passed, 1 if not.

  api_client.py --isola build/isola --guests build/guests --tmp DIR
"""
import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

MAX_BODY = 51200


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket (the host name is only for Host:)."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Response:
    def __init__(self, status, body, headers=None, error=None):
        self.status, self.body, self.headers, self.error = status, body, headers or {}, error
        self.doubled = False

    def json(self):
        try:
            return json.loads(self.body)
        except (ValueError, TypeError):
            return None

    def fault(self):
        j = self.json()
        if isinstance(j, dict) and isinstance(j.get("fault_message"), str):
            return j["fault_message"]
        return None

    def __str__(self):
        if self.error:
            return f"<{self.error}>"
        return f"{self.status} {self.body[:200]!r}"


class Checker:
    def __init__(self, quiet=False):
        self.quiet = quiet
        self.failures = []
        self.notes = []
        self.passes = 0

    def ok(self, name, detail=""):
        self.passes += 1
        if not self.quiet:
            print(f"  ok: {name}{': ' + detail if detail else ''}", flush=True)

    def fail(self, name, detail):
        self.failures.append(f"{name}: {detail}")
        if not self.quiet:
            print(f"  FAIL: {name}: {detail}", flush=True)

    def expect(self, name, resp, codes=(400,), fault=True, message=None):
        """resp.status in codes; with fault, a non-empty fault_message
        (matching the regex message, case-insensitive, if given).
        fault="http": the request is refused by the HTTP layer before any
        handler runs (framing errors); a fault_message is noted, not required."""
        if resp.status not in codes:
            self.fail(name, f"got {resp}, want {'/'.join(map(str, codes))}")
            return False
        if fault == "http":
            kind = "JSON fault_message" if resp.fault() else \
                f"no fault_message, body {resp.body[:40]!r}"
            self.ok(name, f"{resp.status} from the HTTP layer ({kind})")
            if not resp.fault():
                self.notes.append(f"{name}: {resp.status} without a fault_message")
            if getattr(resp, "doubled", False):
                self.notes.append(f"{name}: malformed answer: the status line and headers "
                                  "came twice (libmicrohttpd)")
            return True
        if fault:
            msg = resp.fault()
            if not msg:
                self.fail(name, f"{resp.status} without a JSON fault_message: {resp.body[:200]!r}")
                return False
            if message and not re.search(message, msg, re.I):
                self.fail(name, f"fault_message {msg!r} does not match /{message}/")
                return False
            self.ok(name, f"{resp.status} {msg[:110]}")
        else:
            self.ok(name, str(resp.status))
        return True


class Api:
    def __init__(self, sock_path):
        self.path = sock_path

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = UnixHTTPConnection(self.path, timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            hdrs = {"Accept": "application/json"}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read().decode(errors="replace")
            return Response(r.status, data, dict(r.getheaders()))
        except (OSError, http.client.HTTPException) as e:
            return Response(None, "", error=f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def raw(self, data, timeout=5, shut_write=False, chunks=None):
        """Send raw bytes, read until the server closes or timeout; parse the
        first response (status None if there was none)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        got = b""
        try:
            s.connect(self.path)
            try:
                for part in chunks or [data]:
                    s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before it read it all
            if shut_write:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not b:
                    break
                got += b
                if first_response_complete(got):
                    break
        except OSError as e:
            if not got:
                return Response(None, "", error=f"{type(e).__name__}: {e}")
        finally:
            s.close()
        return parse_response(got)

    def state(self):
        r = self.request("GET", "/", timeout=5)
        j = r.json()
        return j.get("state") if isinstance(j, dict) else None


def first_response_complete(buf):
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return len(rest) >= int(m.group(1)) if m else True


def parse_response(buf):
    if not buf:
        return Response(None, "", error="no response (connection closed or timed out)")
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return Response(None, buf[:200].decode(errors="replace"), error=f"not HTTP: {buf[:80]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(rest)))
    resp = Response(int(m.group(1)), rest[:n].decode(errors="replace"), headers)
    # libmicrohttpd 0.9.75 sends the status line and headers twice on some
    # of its own error answers (e.g. a malformed Content-Length).
    resp.doubled = rest.startswith(b"HTTP/1.")
    return resp


class Vmm:
    """One `isola --api-sock` process; the console (stdout) goes to a file."""

    def __init__(self, isola, tmp, name):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.out_path = os.path.join(tmp, f"{name}.out")
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen([isola, "--api-sock", self.sock], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.err)
        self.api = Api(self.sock)

    def wait_ready(self, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if os.path.exists(self.sock) and self.api.request("GET", "/", timeout=2).status == 200:
                return True
            time.sleep(0.02)
        return False

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read()[-400:].decode(errors="replace")

    def last_count(self):
        with open(self.out_path, "rb") as f:
            counts = re.findall(rb"^count (\d+)", f.read(), re.M)
        return int(counts[-1]) if counts else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


def still_serving(c, vmm, name):
    """The VMM is alive and GET / answers 200 with a state."""
    if not vmm.alive():
        c.fail(f"{name}: VMM alive", f"isola exited with {vmm.proc.returncode}: {vmm.stderr()}")
        return False
    r = vmm.api.request("GET", "/", timeout=5)
    if r.status != 200 or not isinstance(r.json(), dict) or "state" not in r.json():
        c.fail(f"{name}: GET / still answers", str(r))
        return False
    return True


def wait_count_above(vmm, n, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = vmm.last_count()
        if got is not None and got > n:
            return got
        time.sleep(0.05)
    return vmm.last_count()


# ---- the checks ----------------------------------------------------------

def check_json_errors(c, api, guests, tmp):
    kernel = os.path.join(guests, "counter.elf")
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    # malformed JSON
    for name, body in [("truncated", '{"kernel_image_path": '), ("not JSON", "kernel please"),
                       ("trailing garbage", json.dumps({"kernel_image_path": kernel}) + " }"),
                       ("array, not object", "[1, 2]"), ("bare string", '"x"'),
                       ("NUL byte", '{"kernel_image_path": "a\x00b"}'),
                       ("invalid UTF-8", b'{"kernel_image_path": "\xff\xfe"}'),
                       ("deep nesting", "[" * 20000 + "]" * 20000)]:
        c.expect(f"malformed JSON ({name}) -> PUT /boot-source",
                 api.request("PUT", "/boot-source", body))
    c.expect("empty body -> PUT /machine-config", api.request("PUT", "/machine-config", b""))
    c.expect("malformed JSON -> PATCH /vm", api.request("PATCH", "/vm", "{state: Paused}"))
    c.expect("malformed JSON -> PUT /actions", api.request("PUT", "/actions", "{'action_type'}"))

    # wrong types
    wrong = [
        ("/machine-config", {"vcpu_count": "1", "mem_size_mib": 32}, "vcpu_count"),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 32.5}, "mem_size_mib"),
        ("/machine-config", {"vcpu_count": True, "mem_size_mib": 32}, "vcpu_count"),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": [32]}, "mem_size_mib"),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 2 ** 70}, "mem_size_mib"),
        ("/boot-source", {"kernel_image_path": 7}, "kernel_image_path"),
        ("/boot-source", {"kernel_image_path": kernel, "boot_args": {"a": 1}}, "boot_args"),
        ("/drives/d0", {"drive_id": "d0", "path_on_host": img, "is_root_device": "yes"},
         "is_root_device"),
        ("/drives/d0", {"drive_id": 0, "path_on_host": img, "is_root_device": False}, "drive_id"),
        ("/logger", {"log_path": 5}, "log_path"),
        ("/metrics", {"metrics_path": None}, "metrics_path"),
        ("/actions", {"action_type": 1}, "action_type"),
        ("/entropy", [], None),
    ]
    for path, body, field in wrong:
        c.expect(f"wrong type {field or 'body'} -> PUT {path}", api.request("PUT", path, body),
                 message=field)
    c.expect("wrong type state -> PATCH /vm", api.request("PATCH", "/vm", {"state": 1}),
             message="state")

    # unknown fields (Firecracker refuses them: serde deny_unknown_fields)
    unknown = [
        ("/boot-source", {"kernel_image_path": kernel, "kernel_path": kernel}, "kernel_path"),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 32, "vcpus": 2}, "vcpus"),
        ("/drives/d0", {"drive_id": "d0", "path_on_host": img, "is_root_device": False,
                        "readonly": True}, "readonly"),
        ("/entropy", {"device": "/dev/urandom"}, "device"),
        ("/logger", {"log_path": os.path.join(tmp, "l"), "colour": True}, "colour"),
        ("/metrics", {"metrics_path": os.path.join(tmp, "m"), "interval": 5}, "interval"),
    ]
    for path, body, field in unknown:
        c.expect(f"unknown field {field} -> PUT {path}", api.request("PUT", path, body),
                 message=field)
    c.expect("unknown field -> PATCH /vm",
             api.request("PATCH", "/vm", {"state": "Paused", "when": "now"}), message="when")
    c.expect("unknown action_type", api.request("PUT", "/actions", {"action_type": "Reboot"}),
             message="Reboot|action")

    # missing required fields
    missing = [
        ("/boot-source", {"boot_args": "x"}, "kernel_image_path"),
        ("/machine-config", {"vcpu_count": 1}, "mem_size_mib"),
        ("/machine-config", {"mem_size_mib": 32}, "vcpu_count"),
        ("/drives/d0", {"drive_id": "d0", "path_on_host": img}, "is_root_device"),
        ("/drives/d0", {"path_on_host": img, "is_root_device": False}, "drive_id"),
        ("/drives/d0", {"drive_id": "d0", "is_root_device": False}, "path_on_host|socket"),
        ("/actions", {}, "action_type"),
    ]
    for path, body, field in missing:
        c.expect(f"missing {field} -> PUT {path}", api.request("PUT", path, body), message=field)
    c.expect("missing state -> PATCH /vm", api.request("PATCH", "/vm", {}), message="state")

    # bad values
    bad = [
        ("/machine-config", {"vcpu_count": 0, "mem_size_mib": 32}, "vcpu_count"),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 0}, "mem_size_mib"),
        ("/machine-config", {"vcpu_count": -1, "mem_size_mib": 32}, "vcpu_count"),
        ("/boot-source", {"kernel_image_path": os.path.join(tmp, "nope")}, "kernel_image_path"),
        ("/boot-source", {"kernel_image_path": tmp}, "kernel_image_path"),
        ("/drives/d0", {"drive_id": "d1", "path_on_host": img, "is_root_device": False},
         "drive_id"),
        ("/drives/d0", {"drive_id": "d0", "path_on_host": os.path.join(tmp, "nope"),
                        "is_root_device": False}, "path_on_host"),
        ("/drives/a%20b", {"drive_id": "a b", "path_on_host": img, "is_root_device": False},
         "drive_id|id"),
    ]
    for path, body, field in bad:
        c.expect(f"bad value {field}={list(body.values())[0]!r} -> PUT {path}",
                 api.request("PUT", path, body), message=field)
    c.expect("bad value -> PATCH /vm Bogus", api.request("PATCH", "/vm", {"state": "Bogus"}),
             message="state|Bogus")


def check_body_limits(c, api, guests):
    kernel = os.path.join(guests, "counter.elf")
    base = {"kernel_image_path": kernel, "boot_args": ""}
    pad = MAX_BODY + 1 - len(json.dumps(base))
    over = json.dumps({"kernel_image_path": kernel, "boot_args": "x" * pad})
    assert len(over) == MAX_BODY + 1
    # The server may answer 413 from the Content-Length and close before the
    # body is sent (fine for HTTP): raw() reads the answer even when the send
    # fails, where http.client would only see EPIPE.
    def put_raw(body):
        return api.raw(b"PUT /boot-source HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                       b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
                       timeout=5)
    # Firecracker answers 400 (micro_http's payload limit), not 413.
    c.expect("body of 51,201 bytes", put_raw(over.encode()), codes=(400,),
             message="larger than the limit of 51200")
    c.expect("body of 1 MiB", put_raw(b"{" + b" " * (1 << 20) + b"}"), codes=(400,),
             message="larger than the limit of 51200")
    # Exactly at the limit: parsed (and refused here for its content only).
    at = json.dumps({"kernel_image_path": "/nonexistent", "boot_args": ""})
    at = json.dumps({"kernel_image_path": "/nonexistent", "boot_args": "x" * (MAX_BODY - len(at))})
    assert len(at) == MAX_BODY
    c.expect("body of exactly 51,200 bytes is read", put_raw(at.encode()),
             message="kernel_image_path|boot_args")
    # Content-Length announcing 100 MB: refused without waiting for it.
    head = (b"PUT /boot-source HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n")
    t = time.monotonic()
    r = api.raw(head + b"{", timeout=5)
    c.expect("Content-Length: 100000000 (body never sent)", r, codes=(400,),
             message="larger than the limit of 51200")
    if r.status and time.monotonic() - t > 3:
        c.fail("Content-Length: 100000000", f"answered only after {time.monotonic() - t:.1f} s")


def check_content_length(c, api, guests):
    body = json.dumps({"vcpu_count": 1, "mem_size_mib": 32}).encode()

    def req(cl_lines, payload=body, **kw):
        head = b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n"
        head += b"Content-Type: application/json\r\n" + b"".join(cl_lines) + b"\r\n"
        return api.raw(head + payload, **kw)

    # No Content-Length (and not chunked): no body at all for the server.
    c.expect("missing Content-Length on PUT", req([], shut_write=True), codes=(400, 411))
    c.expect("Content-Length: abc", req([b"Content-Length: abc\r\n"]), fault="http")
    c.expect("Content-Length: -1", req([b"Content-Length: -1\r\n"]), fault="http")
    c.expect("Content-Length: 1e3", req([b"Content-Length: 1e3\r\n"]), fault="http")
    c.expect("Content-Length: 99999999999999999999999",
             req([b"Content-Length: 99999999999999999999999\r\n"]), codes=(400, 413),
             fault="http")
    c.expect("two different Content-Length headers",
             req([b"Content-Length: %d\r\n" % len(body), b"Content-Length: 3\r\n"]))
    c.expect("Content-Length shorter than the body (JSON cut)",
             req([b"Content-Length: %d\r\n" % (len(body) - 5)]))
    # Longer than the body, then EOF: no 2xx; a 4xx or a plain close.
    r = req([b"Content-Length: %d\r\n" % (len(body) + 50)], shut_write=True, timeout=5)
    if r.status is not None and not 400 <= r.status < 500:
        c.fail("Content-Length longer than the body, then EOF", str(r))
    else:
        c.ok("Content-Length longer than the body, then EOF", str(r.status or "closed"))
    # Chunked bodies: isola, like Firecracker, wants a Content-Length; either
    # it works or it is refused with a message (411), never half-read.
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    r = api.raw(b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
                b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    if r.status == 204:
        c.ok("chunked body", "204 (accepted)")
    else:
        c.expect("chunked body", r, codes=(400, 411), message="Content-Length|chunked")


def check_http_garbage(c, api):
    flood = b"GET / HTTP/1.1\r\nHost: localhost\r\n"
    flood += b"".join(b"X-Flood-%d: %d\r\n" % (i, i) for i in range(5000)) + b"\r\n"
    r = api.raw(flood, timeout=5)
    c.expect("5000 headers", r, codes=(400, 413, 431), fault="http")
    r = api.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
                timeout=5)
    c.expect("one 1 MiB header", r, codes=(400, 413, 431), fault="http")
    r = api.raw(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=5)
    c.expect("100 kB request line", r, codes=(400, 404, 413, 414, 431), fault="http")
    for name, data in [("not HTTP", b"hello there\r\n\r\n"),
                       ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                       ("binary", bytes(range(256)) * 4),
                       ("bad version", b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n")]:
        r = api.raw(data, timeout=5)
        if r.status is not None and not 400 <= r.status < 600:
            c.fail(f"garbage ({name})", str(r))
        else:
            c.ok(f"garbage ({name})", str(r.status or "closed"))


def check_paths(c, api):
    for method, path in [("GET", "/nonexistent"), ("GET", "/../../etc/passwd"),
                         ("GET", "/boot-source/../../etc/passwd"), ("PUT", "/"),
                         ("DELETE", "/"), ("GET", "/machine-config/extra"),
                         ("GET", "/drives"), ("PUT", "/drives/"), ("GET", "/actions"),
                         ("POST", "/actions"), ("GET", "/boot-source"), ("PUT", "/version"),
                         ("PATCH", "/boot-source"), ("GET", "//"), ("GET", "/%00"),
                         ("GET", "/vm"), ("OPTIONS", "/"), ("FOO", "/")]:
        body = {"action_type": "FlushMetrics"} if method in ("PUT", "POST", "PATCH") else None
        c.expect(f"{method} {path}", api.request(method, path, body), codes=(400, 404, 405))


def check_unimplemented(c, api, tmp):
    snap = os.path.join(tmp, "snap")
    # snapshots are implemented (tests/system/snapshot.sh): refused here by
    # their state rules, before InstanceStart on a configured process
    for path, body, message in [
            ("/snapshot/create", {"snapshot_path": snap, "mem_file_path": snap + ".mem"},
             r"only valid while the VM is Paused; the VM is Not started"),
            ("/snapshot/load", {"snapshot_path": snap, "mem_backend": {
                "backend_path": snap + ".mem", "backend_type": "File"}},
             r"only valid on a fresh isola|snapshot_path")]:
        c.expect(f"PUT {path} in the wrong state", api.request("PUT", path, body),
                 message=message)
    cases = [
        ("PUT", "/balloon", {"amount_mib": 16, "deflate_on_oom": False}),
        ("GET", "/balloon", None), ("PATCH", "/balloon", {"amount_mib": 1}),
        ("GET", "/balloon/statistics", None),
        ("PUT", "/mmds", {"latest": {}}), ("GET", "/mmds", None), ("PATCH", "/mmds", {}),
        ("PUT", "/mmds/config", {"network_interfaces": ["eth0"]}),
        ("PUT", "/cpu-config", {}),
    ]
    for method, path, body in cases:
        c.expect(f"unimplemented {method} {path}", api.request(method, path, body),
                 message=r"not (yet )?(implement|support|available)|unsupported|does not")


def check_network_interfaces_before(c, api):
    """Refused interfaces over the socket (an accepted one would need a tap
    and isola-net at InstanceStart: tests/system/api_net.sh does that)."""
    put = "/network-interfaces/eth0"
    cases = [
        ("PUT mismatched iface_id", "PUT", put, {"iface_id": "eth1", "host_dev_name": "tap0"},
         r"differs from the id in the path"),
        ("PUT bad guest_mac", "PUT", put,
         {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:00:00:01"},
         r"guest_mac: .* is not a MAC address"),
        ("PUT negative bucket", "PUT", put,
         {"iface_id": "eth0", "host_dev_name": "tap0",
          "rx_rate_limiter": {"bandwidth": {"size": -1, "refill_time": 100}}},
         r"rx_rate_limiter\.bandwidth\.size: -1 is negative"),
        ("PUT bucket of the wrong type", "PUT", put,
         {"iface_id": "eth0", "host_dev_name": "tap0",
          "tx_rate_limiter": {"ops": {"size": "10", "refill_time": 100}}},
         r"tx_rate_limiter\.ops\.size: must be an integer"),
        ("PUT without host_dev_name", "PUT", put, {"iface_id": "eth0"},
         r"host_dev_name: missing"),
        ("PATCH before InstanceStart", "PATCH", put, {"iface_id": "eth0"},
         r"needs a running VM"),
    ]
    for name, method, path, body, message in cases:
        c.expect(name, api.request(method, path, body), message=message)


def check_documented_limits(c, api):
    """docs/api.md's figures, exactly: a stalled client is dropped after
    5 s (not sooner, not much later); 128 connections are served and a
    129th waits unanswered until one of them closes; a head (request line
    and headers) of 16 KiB gets 431, one comfortably under it is served."""
    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(api.path)
        return s

    def head(n):
        base = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
        return base + b"a" * (n - len(base) - 4) + b"\r\n\r\n"

    for n, want in [(16000, 200), (16 * 1024, 431), (16 * 1024 + 1, 431)]:
        r = api.raw(head(n), timeout=5)
        if r.status == want:
            c.ok(f"head of {n} bytes", str(r.status))
        else:
            c.fail(f"head of {n} bytes", f"{r}, want {want}")

    # the drop: wait for the close itself (recv returns b""), then time it
    s = connect()
    s.sendall(b"GET / HTT")
    t = time.monotonic()
    s.settimeout(15)
    try:
        got = s.recv(4096)
    except OSError as e:
        got = e
    dt = time.monotonic() - t
    s.close()
    if got == b"" and 4.5 <= dt <= 6.5:
        c.ok("stalled client dropped after 5 s", f"{dt:.2f} s")
    else:
        c.fail("stalled client dropped after 5 s", f"{got!r} after {dt:.2f} s")

    socks = [connect() for _ in range(128)]
    try:
        late = connect()
        late.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        late.settimeout(1)
        try:
            got = late.recv(4096)
        except socket.timeout:
            got = None
        if got is None:
            c.ok("connection 129 waits while 128 are open")
        else:
            c.fail("connection 129 waits while 128 are open", f"got {got[:40]!r}")
        socks.pop().close()
        late.settimeout(2)
        try:
            got = late.recv(4096)
        except OSError as e:
            got = str(e).encode()
        if got.startswith(b"HTTP/1.1 200"):
            c.ok("connection 129 served once one of the 128 closed")
        else:
            c.fail("connection 129 served once one of the 128 closed", f"got {got[:40]!r}")
        late.close()
    finally:
        for s in socks:
            s.close()


def check_stalled_client(c, vmm, drop_seconds):
    api = vmm.api
    stallers = []
    for part in [b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{",
                 b"GET / HTT", b""]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(api.path)
        if part:
            s.sendall(part)
        stallers.append(s)
    t = time.monotonic()
    r = api.request("GET", "/", timeout=3)
    dt = time.monotonic() - t
    if r.status == 200 and dt < 1:
        c.ok("GET / served while 3 clients stall mid-request", f"{dt * 1000:.1f} ms")
    else:
        c.fail("GET / while 3 clients stall", f"{r} after {dt:.2f} s")
    r = api.request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 32}, timeout=3)
    c.expect("PUT /machine-config while clients stall", r, codes=(204,), fault=False)
    # The stallers are dropped after the server's idle timeout.
    deadline = time.monotonic() + drop_seconds
    dropped = [False] * len(stallers)
    for s in stallers:
        s.settimeout(0.2)
    while time.monotonic() < deadline and not all(dropped):
        for i, s in enumerate(stallers):
            if dropped[i]:
                continue
            try:
                if s.recv(4096) == b"":
                    dropped[i] = True
            except socket.timeout:
                pass
            except OSError:
                dropped[i] = True
    for s in stallers:
        s.close()
    if all(dropped):
        c.ok("stalled clients dropped", f"after {time.monotonic() - t:.1f} s")
    else:
        c.fail("stalled clients dropped",
               f"{dropped.count(False)} of {len(stallers)} still connected after {drop_seconds} s")


def check_idle_flood(c, api, n=140):
    """More idle connections than the server's connection limit: reported
    as a note (time until GET / answers), since any bounded server must
    stop accepting somewhere; the idle ones must still be dropped."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(api.path)
            socks.append(s)
        t = time.monotonic()
        r = api.request("GET", "/", timeout=15)
        dt = time.monotonic() - t
        if r.status != 200:
            c.fail(f"GET / with {n} idle connections open", f"{r} after {dt:.1f} s")
        else:
            c.ok(f"GET / with {n} idle connections open", f"answered after {dt:.2f} s")
            if dt > 1:
                c.notes.append(f"{n} idle connections delay a new client by {dt:.1f} s "
                               "(the connection limit, until the idle timeout drops them)")
    except OSError as e:
        c.fail(f"{n} idle connections", repr(e))
    finally:
        for s in socks:
            s.close()


def check_concurrent(c, api, n=64):
    results = [None] * n
    barrier = threading.Barrier(n)

    def client(i):
        try:
            barrier.wait(10)
            out = []
            for _ in range(4):
                out.append(api.request("GET", "/" if i % 2 else "/machine-config", timeout=15))
            results[i] = out
        except Exception as e:  # noqa: BLE001 - report anything
            results[i] = [Response(None, "", error=repr(e))]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    dt = time.monotonic() - t
    bad = [(i, str(r)) for i, rs in enumerate(results) for r in (rs or [Response(None, "", error="hung")])
           if r.status != 200]
    if bad:
        c.fail(f"{n} concurrent clients x 4 requests", f"{len(bad)} failed, e.g. {bad[:3]}")
    else:
        c.ok(f"{n} concurrent clients x 4 requests", f"all 200 in {dt:.2f} s")
    # n connections open at once, each idle, then each asks (keep-alive not needed).
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(api.path)
            socks.append(s)
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        codes = []
        for s in socks:
            buf = b""
            while not first_response_complete(buf):
                b = s.recv(4096)
                if not b:
                    break
                buf += b
            codes.append(parse_response(buf).status)
        bad = [x for x in codes if x != 200]
        if bad:
            c.fail(f"{n} connections open at once", f"{len(bad)} not 200: {bad[:5]}")
        else:
            c.ok(f"{n} connections open at once, then a request on each")
    except OSError as e:
        c.fail(f"{n} connections open at once", repr(e))
    finally:
        for s in socks:
            s.close()


def check_wrong_state_before(c, api):
    c.expect("PATCH /vm Paused before InstanceStart", api.request("PATCH", "/vm", {"state": "Paused"}),
             message=r"not started|not running|state")
    c.expect("PATCH /vm Resumed before InstanceStart",
             api.request("PATCH", "/vm", {"state": "Resumed"}),
             message=r"not started|not running|not paused|state")
    c.expect("SendCtrlAltDel before InstanceStart",
             api.request("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
             message=r"not started|not running|state")
    # Firecracker refuses FlushMetrics before InstanceStart (rpc_interface.rs)
    c.expect("FlushMetrics before InstanceStart",
             api.request("PUT", "/actions", {"action_type": "FlushMetrics"}),
             message="not supported before starting the microVM")


def check_firecracker_rules(c, api, tmp):
    """Issue 13: where isola used to differ from Firecracker's own rules."""
    r = api.request("GET", "/machine-config")
    mib = (r.json() or {}).get("mem_size_mib") if r.status == 200 else None
    if mib == 128:
        c.ok("default mem_size_mib is Firecracker's 128")
    else:
        c.fail("default mem_size_mib", f"{mib!r} ({r}), want 128")
    c.expect("GET / with a body", api.request("GET", "/", "{}"),
             message=r"GET request cannot have a body")
    c.expect("PATCH /machine-config {}", api.request("PATCH", "/machine-config", {}),
             message="Empty PATCH request")
    c.expect("vcpu_count 33", api.request("PUT", "/machine-config",
                                          {"vcpu_count": 33, "mem_size_mib": 32}),
             message="between 1 and 32")
    img = os.path.join(tmp, "rules.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    c.expect("drive_id with '-'", api.request("PUT", "/drives/root-fs", {
        "drive_id": "root-fs", "path_on_host": img, "is_root_device": False}),
             message="is not an id")
    c.expect("iface_id with '-'", api.request("PUT", "/network-interfaces/eth-0", {
        "iface_id": "eth-0", "host_dev_name": "tap0"}), message="is not an id")
    for body in ({"vcpu_count": 2, "mem_size_mib": 1, "smt": True, "track_dirty_pages": True,
                  "huge_pages": "Transparent"},
                 {"vcpu_count": 1, "mem_size_mib": 32}):
        c.expect(f"PUT /machine-config {body}", api.request("PUT", "/machine-config", body),
                 codes=(204,), fault=False)
    r = api.request("PATCH", "/machine-config", {"cpu_template": "None"})
    c.expect("cpu_template (deprecated)", r, codes=(204,), fault=False)
    if r.headers.get("Deprecation") == "true":
        c.ok("Deprecation: true on cpu_template")
    else:
        c.fail("Deprecation header on cpu_template", f"headers {r.headers}")
    r = api.request("PATCH", "/machine-config", {"vcpu_count": 1})
    if "Deprecation" in r.headers:
        c.fail("no Deprecation header without a deprecated field", f"headers {r.headers}")
    c.expect("PUT /logger", api.request("PUT", "/logger", {
        "log_path": os.path.join(tmp, "rules.log"), "module": "core/api"}),
             codes=(204,), fault=False)
    c.expect("PUT /logger again", api.request("PUT", "/logger", {
        "log_path": os.path.join(tmp, "rules2.log")}), message="configured already")
    c.expect("PUT /metrics", api.request("PUT", "/metrics", {
        "metrics_path": os.path.join(tmp, "rules.metrics")}), codes=(204,), fault=False)
    c.expect("PUT /metrics again", api.request("PUT", "/metrics", {
        "metrics_path": os.path.join(tmp, "rules2.metrics")}), message="configured already")
    r = api.request("GET", "/vm/config")
    keys = set((r.json() or {}).keys()) if r.status == 200 else set()
    want = {"balloon", "drives", "boot-source", "cpu-config", "logger", "machine-config",
            "metrics", "memory-hotplug", "mmds-config", "network-interfaces", "pmem", "vsock",
            "entropy"}
    if want <= keys:
        c.ok("GET /vm/config has Firecracker's 13 keys")
    else:
        c.fail("GET /vm/config keys", f"missing {sorted(want - keys)}")


def check_instance_start_fails_cleanly(c, api, tmp):
    """InstanceStart without a kernel: 400, and the VMM can still be configured."""
    r = api.request("PUT", "/actions", {"action_type": "InstanceStart"})
    c.expect("InstanceStart without boot-source", r, message="boot|kernel")
    st = api.state()
    if st == "Not started":
        c.ok("state after a refused InstanceStart", st)
    else:
        c.fail("state after a refused InstanceStart", f"{st!r}, want 'Not started'")


def check_wrong_state_after(c, api, guests, tmp):
    kernel = os.path.join(guests, "counter.elf")
    img = os.path.join(tmp, "disk.img")
    cases = [
        ("PUT", "/boot-source", {"kernel_image_path": kernel}),
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 32}),
        ("PATCH", "/machine-config", {"vcpu_count": 2}),
        ("PUT", "/drives/late", {"drive_id": "late", "path_on_host": img, "is_root_device": False}),
        ("PUT", "/entropy", {}),
        ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ("PUT", "/logger", {"log_path": os.path.join(tmp, "late.log")}),
        ("PUT", "/metrics", {"metrics_path": os.path.join(tmp, "late.metrics")}),
    ]
    for method, path, body in cases:
        c.expect(f"{method} {path} while Running", api.request(method, path, body),
                 message=r"running|started|boot|state")
    c.expect("PATCH an interface that does not exist",
             api.request("PATCH", "/network-interfaces/eth9", {"iface_id": "eth9"}),
             message=r"network interface \"eth9\" does not exist")
    c.expect("PATCH /vm Resumed while Running", api.request("PATCH", "/vm", {"state": "Resumed"}),
             codes=(204, 400), fault=False)
    r = api.request("PATCH", "/vm", {"state": "Paused"})
    c.expect("PATCH /vm Paused", r, codes=(204,), fault=False)
    c.expect("PATCH /vm Paused twice", api.request("PATCH", "/vm", {"state": "Paused"}),
             codes=(204, 400), fault=False)
    c.expect("InstanceStart while Paused",
             api.request("PUT", "/actions", {"action_type": "InstanceStart"}),
             message=r"paused|started|running|state")
    c.expect("PATCH /vm Resumed", api.request("PATCH", "/vm", {"state": "Resumed"}), codes=(204,),
             fault=False)


def check_garbage_on_running(c, vmm, guests, tmp):
    """Bad input while the guest runs must not stop it counting."""
    api = vmm.api
    before = vmm.last_count() or 0
    for body in ["{", "[]", '{"state": 1}', "x" * 60000]:
        api.request("PATCH", "/vm", body)
    api.raw(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3000 + b"\r\n", timeout=3)
    api.raw(b"\x00\xff" * 1000, timeout=2)
    check_paths(Checker(quiet=True), api)  # only the VM's survival counts here
    got = wait_count_above(vmm, before + 2, 10)
    if got is not None and got > before + 2:
        c.ok("guest keeps counting through bad requests", f"{before} -> {got}")
    else:
        c.fail("guest keeps counting through bad requests", f"{before} -> {got}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isola", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--drop-seconds", type=float, default=float(os.environ.get("API_DROP_S", 40)),
                    help="how long a stalled client may stay connected")
    ap.add_argument("--only", default="", help="run only sections whose name contains this")
    args = ap.parse_args()
    c = Checker()
    sections = []

    vmm = Vmm(args.isola, args.tmp, "errors")
    try:
        if not vmm.wait_ready():
            print(f"FAIL: isola --api-sock did not become ready: {vmm.stderr()}")
            return 1
        api = vmm.api

        def section(name, fn, *a):
            if args.only and args.only not in name:
                return
            print(f"== {name}", flush=True)
            sections.append(name)
            fn(c, *a)
            still_serving(c, vmm, name)

        section("Firecracker's rules", check_firecracker_rules, api, args.tmp)
        section("state before start", check_wrong_state_before, api)
        section("InstanceStart refused", check_instance_start_fails_cleanly, api, args.tmp)
        section("JSON", check_json_errors, api, args.guests, args.tmp)
        section("body limits", check_body_limits, api, args.guests)
        section("Content-Length", check_content_length, api, args.guests)
        section("HTTP garbage", check_http_garbage, api)
        section("paths", check_paths, api)
        section("unimplemented", check_unimplemented, api, args.tmp)
        section("network interfaces", check_network_interfaces_before, api)
        section("concurrency", check_concurrent, api)
        section("documented limits", check_documented_limits, api)
        section("stalled client", check_stalled_client, vmm, args.drop_seconds)
        section("idle flood", check_idle_flood, api)

        if not args.only or "running" in args.only:
            print("== InstanceStart that the VMM refuses, then a good one", flush=True)
            junk = os.path.join(args.tmp, "junk.elf")
            with open(junk, "wb") as f:
                f.write(b"\x7fELF" + b"\xff" * 4092)
            c.expect("PUT /boot-source (junk kernel)",
                     api.request("PUT", "/boot-source", {"kernel_image_path": junk}),
                     codes=(204,), fault=False)
            c.expect("InstanceStart with a junk kernel",
                     api.request("PUT", "/actions", {"action_type": "InstanceStart"}),
                     message=r"junk|kernel|ELF|load")
            st = api.state()
            if st == "Not started" and vmm.alive():
                c.ok("after a failed InstanceStart", "state 'Not started', VMM alive")
            else:
                c.fail("after a failed InstanceStart", f"state {st!r}, alive {vmm.alive()}")
            # mem_size_mib 1: accepted as by Firecracker, refused at start
            c.expect("PUT /machine-config mem_size_mib 1",
                     api.request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1}),
                     codes=(204,), fault=False)
            c.expect("InstanceStart with 1 MiB",
                     api.request("PUT", "/actions", {"action_type": "InstanceStart"}),
                     message=r"1 MiB is too small for isola to boot a guest; set at least 2")
            st = api.state()
            if st == "Not started" and vmm.alive():
                c.ok("after InstanceStart with 1 MiB", "state 'Not started', VMM alive")
            else:
                c.fail("after InstanceStart with 1 MiB", f"state {st!r}, alive {vmm.alive()}")
            print("== boot the counter guest", flush=True)
            kernel = os.path.join(args.guests, "counter.elf")
            for method, path, body in [
                    ("PUT", "/boot-source", {"kernel_image_path": kernel}),
                    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 32}),
                    ("PUT", "/actions", {"action_type": "InstanceStart"})]:
                c.expect(f"{method} {path}", api.request(method, path, body), codes=(204,),
                         fault=False)
            if wait_count_above(vmm, 1, 20) is None:
                c.fail("counter guest", f"no count within 20 s; stderr: {vmm.stderr()}")
            section("running: wrong state", check_wrong_state_after, api, args.guests, args.tmp)
            section("running: garbage", check_garbage_on_running, vmm, args.guests, args.tmp)
            section("running: concurrency", check_concurrent, api)
            before = vmm.last_count() or 0
            got = wait_count_above(vmm, before, 5)
            if got is not None and got > before:
                c.ok("still counting at the end", f"{before} -> {got}")
            else:
                c.fail("still counting at the end", f"{before} -> {got}")
    finally:
        vmm.stop()
    for n in c.notes:
        print(f"  note: {n}")
    print(f"api_client: {c.passes} passed, {len(c.failures)} failed")
    for f in c.failures:
        print(f"  FAIL: {f}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
