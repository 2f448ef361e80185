#!/usr/bin/env python3
"""A vhost-user man in the middle, to make a real back-end misbehave.

Listens on LISTEN, and for each front-end (the isola core) that connects,
connects to the back-end at BACKEND and relays whole vhost-user messages
both ways, with their fds (SCM_RIGHTS).  Message framing is the spec's
(QEMU docs/interop/vhost-user.rst, "Message format"): a 12-byte header
(request, flags, size) and size bytes of payload.

Faults, driven by signals so the test chooses the moment:
  SIGUSR1  drop both sockets (to the front-end this is a back-end that
           died), then spoil one reply (the Nth, N random from 1 to
           --spoil-max) on each of the next connections, one fault of
           --faults per connection, in order:
             bad-request  the reply names another request
             bad-flags    the reply lacks the REPLY flag and has version 2
             bad-size     the reply's size is not the request's
             truncated    half a header, then hang up
             stall        hold the reply 8 s (longer than the 5 s the core
                          waits), then hang up
           and relay faithfully after that.
  SIGUSR2  send the front-end a message it never asked for (a back-end
           never speaks first on this channel).
Prints one line per event on stdout ("mitm: ...").
"""
import argparse
import array
import os
import random
import select
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("<III")
FLAG_VERSION = 0x1
FLAG_REPLY = 0x4
MAX_PAYLOAD = 1 << 16
MAX_FDS = 8


def say(text):
    print(f"mitm: {text}", flush=True)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_message(sock):
    """One message: (raw bytes, fds).  EOFError when the peer hung up."""
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(HEADER.size, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    if not data:
        raise EOFError
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - len(cdata) % fds.itemsize])
    data += recv_exact(sock, HEADER.size - len(data)) if len(data) < HEADER.size else b""
    _, _, size = HEADER.unpack(data)
    if size > MAX_PAYLOAD:
        raise EOFError
    return data + recv_exact(sock, size), list(fds)


def send_message(sock, raw, fds=()):
    ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([raw], ancdata)


def spoil(raw, fault):
    request, flags, size = HEADER.unpack(raw[: HEADER.size])
    payload = raw[HEADER.size :]
    if fault == "bad-request":
        return HEADER.pack(request ^ 0x5A5A, flags, size) + payload
    if fault == "bad-flags":
        return HEADER.pack(request, (flags & ~(FLAG_REPLY | 0x3)) | 0x2, size) + payload
    if fault == "bad-size":
        return HEADER.pack(request, flags, size + 40) + payload + b"\xee" * 40
    raise ValueError(fault)


class Mitm:
    def __init__(self, listen, backend, faults, spoil_max):
        self.spoil_max = spoil_max
        self.backend_path = backend
        self.faults = faults
        self.armed = []  # faults for the coming connections
        self.drop = False
        self.unsolicited = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(listen)
        self.listener.listen(4)
        self.connections = 0
        signal.signal(signal.SIGUSR1, self.on_usr1)
        signal.signal(signal.SIGUSR2, self.on_usr2)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def on_usr1(self, *_):
        self.drop = True
        self.armed = list(self.faults)

    def on_usr2(self, *_):
        self.unsolicited = True

    def connect_backend(self):
        for _ in range(200):
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.backend_path)
                return sock
            except OSError:
                sock.close()
                time.sleep(0.05)
        raise SystemExit(f"mitm: cannot connect to {self.backend_path}")

    def serve(self):
        while True:
            try:
                front, _ = self.listener.accept()
            except InterruptedError:
                continue
            self.connections += 1
            fault = self.armed.pop(0) if self.armed else None
            say(f"connection {self.connections}: {fault or 'faithful'}")
            back = self.connect_backend()
            try:
                self.relay(front, back, fault)
            except (EOFError, ConnectionError, OSError) as e:
                say(f"connection {self.connections} ended: {type(e).__name__}")
            front.close()
            back.close()

    def relay(self, front, back, fault):
        replies, spoil_at = 0, random.randint(1, self.spoil_max)
        while True:
            if self.drop:
                self.drop = False
                say("dropping both sockets (the back-end 'died')")
                return
            if self.unsolicited:
                self.unsolicited = False
                # VHOST_USER_GET_FEATURES with the REPLY flag and a body:
                # well formed, but nobody asked
                send_message(front, HEADER.pack(1, FLAG_VERSION | FLAG_REPLY, 8) + b"\0" * 8)
                say("sent an unsolicited message to the front-end")
            try:
                ready, _, _ = select.select([front, back], [], [], 0.1)
            except InterruptedError:
                continue
            if front in ready:
                raw, fds = recv_message(front)
                send_message(back, raw, fds)
                for fd in fds:
                    os.close(fd)
            if back in ready:
                raw, fds = recv_message(back)
                replies += 1
                if fault and replies == spoil_at:
                    request = HEADER.unpack(raw[: HEADER.size])[0]
                    say(f"spoiling reply {replies} (to request {request}): {fault}")
                    if fault == "truncated":
                        front.send(raw[:6])
                        return
                    if fault == "stall":
                        time.sleep(8)
                        return
                    raw, fault = spoil(raw, fault), None
                send_message(front, raw, fds)
                for fd in fds:
                    os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("listen")
    parser.add_argument("backend")
    parser.add_argument("--faults", default="bad-request,bad-flags,bad-size,truncated,stall")
    parser.add_argument("--spoil-max", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    say(f"seed {seed}")
    faults = [f for f in args.faults.split(",") if f]
    Mitm(args.listen, args.backend, faults, args.spoil_max).serve()


if __name__ == "__main__":
    main()
