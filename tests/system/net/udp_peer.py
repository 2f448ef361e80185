#!/usr/bin/env python3
"""Host side of the net_udp_echo and net_mq test guests (tests/guest/*.c).

Sends datagrams of sizes 1..1472 (every `step`-th size) to GUEST:PORT from
`flows` sockets (distinct source ports, so a multi-queue tap spreads them
over its queues), one in flight at a time, and checks that every one comes
back byte for byte within `timeout` seconds (no retransmission: a loss is a
failure).  Then it sends `END <n>` to CTL_PORT and receives the guest's own
`own` datagrams on HOST_PORT: datagram i is 1 + (i*97) % 1472 bytes, byte 0
= i, byte j = (i + 13 j) & 0xff.  Exit 0 if all is well; prints one line.
"""
import argparse
import socket
import sys
import time


def payload(n, size):
    return bytes((n * 7 + j * 31 + size) & 0xFF for j in range(size))


def own_datagram(i):
    size = 1 + (i * 97) % 1472
    return bytes([i & 0xFF]) + bytes((i + 13 * j) & 0xFF for j in range(1, size))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("guest")
    ap.add_argument("--port", type=int, default=7)
    ap.add_argument("--ctl-port", type=int, default=9)
    ap.add_argument("--host-port", type=int, default=5555)
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--flows", type=int, default=1)
    ap.add_argument("--own", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("0.0.0.0", a.host_port))
    socks = []
    for _ in range(a.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        s.settimeout(a.timeout)
        socks.append(s)

    sent = echoed = bad = lost = 0
    start = time.monotonic()
    for n, size in enumerate(range(1, 1473, a.step)):
        s = socks[n % len(socks)]
        data = payload(n, size)
        s.sendto(data, (a.guest, a.port))
        sent += 1
        try:
            back, src = s.recvfrom(2048)
        except socket.timeout:
            lost += 1
            print(f"lost: datagram {n} ({size} bytes) not echoed in {a.timeout} s", file=sys.stderr)
            if lost > 5:
                break
            continue
        if back != data or src != (a.guest, a.port):
            bad += 1
            print(f"bad echo: datagram {n} ({size} bytes) from {src}: {len(back)} bytes", file=sys.stderr)
        else:
            echoed += 1
    elapsed = time.monotonic() - start
    socks[0].sendto(f"END {sent}".encode(), (a.guest, a.ctl_port))

    got = {}
    rx.settimeout(a.timeout * 2)
    own_bad = 0
    while len(got) < a.own:
        try:
            d, _ = rx.recvfrom(2048)
        except socket.timeout:
            break
        i = d[0] if d else -1
        if i < 0 or i >= a.own or d != own_datagram(i) or i in got:
            own_bad += 1
            print(f"bad own datagram: {len(d)} bytes, first byte {i}", file=sys.stderr)
        else:
            got[i] = True
    print(f"udp: sent={sent} echoed={echoed} bad={bad} lost={lost} flows={a.flows} "
          f"seconds={elapsed:.1f} own={len(got)}/{a.own} own_bad={own_bad}")
    ok = sent and echoed == sent and not bad and not lost and len(got) == a.own and not own_bad
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
