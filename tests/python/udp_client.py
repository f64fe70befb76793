#!/usr/bin/env python3
"""A datagram echo client for the udp_echo example (tests/udp_echo.rs).

    udp_client.py load ADDR --sockets N --count N --seed S [--max BYTES] [--tmp DIR]

ADDR is HOST:PORT, [V6]:PORT or unix:PATH. N sockets (Unix ones bound to paths in
DIR, so the server can answer) send COUNT datagrams between them, of random sizes
from 0 to --max bytes (seeded), one outstanding per socket and at most 96 KiB in
flight (the server's receive buffer must not overflow on loopback). Every echo must
equal, byte for byte, the datagram its socket sent; an echo that equals the one
before it is a late duplicate of a retransmission and is skipped. A datagram that
does not come back within a second is sent again (loopback may drop when a receive
buffer is full); that is counted, not an error. Before the load, one socket tries a
70,000-byte datagram: the kernel must refuse it (EMSGSIZE) without sending anything.

Prints "ok COUNT echoed, R retransmitted, refused EMSGSIZE" and exits 0, or prints
the first mismatch and exits 1.
"""

import argparse
import errno
import os
import random
import select
import socket
import sys
import time


def parse_addr(spec):
    if spec.startswith("unix:"):
        return socket.AF_UNIX, spec[5:]
    host, _, port = spec.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["load"])
    p.add_argument("addr")
    p.add_argument("--sockets", type=int, default=20)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max", type=int, default=65507)
    p.add_argument("--tmp", default=None)
    a = p.parse_args()

    family, target = parse_addr(a.addr)
    rng = random.Random(a.seed)
    socks = []
    for i in range(a.sockets):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_UNIX:
            path = os.path.join(a.tmp, "c%d-%d.sock" % (os.getpid(), i))
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            s.bind(path)
        else:
            s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)

    # The kernel refuses a datagram larger than a UDP datagram can be; for a Unix
    # socket the limit is the send buffer, so the probe is larger there.
    probe = b"\0" * (70000 if family != socket.AF_UNIX else 4 * 1024 * 1024)
    try:
        socks[0].sendto(probe, target)
        print("the kernel sent a %d-byte datagram" % len(probe))
        return 1
    except OSError as e:
        if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
            raise
        refused = errno.errorcode[e.errno]

    budget = 96 * 1024
    in_flight = 0
    outstanding = {}  # socket index -> (datagram, previous datagram, sent at)
    previous = {}
    sent = echoed = retransmitted = 0
    idle = list(range(a.sockets))
    deadline = time.monotonic() + 600
    while echoed < a.count:
        if time.monotonic() > deadline:
            print("gave up: %d of %d echoed" % (echoed, a.count))
            return 1
        # Fill the window.
        while idle and sent < a.count:
            size = rng.randint(0, a.max)
            if outstanding and in_flight + size > budget:
                break
            i = idle.pop(0)
            data = rng.randbytes(size)
            socks[i].sendto(data, target)
            outstanding[i] = (data, time.monotonic())
            in_flight += size
            sent += 1
        ready, _, _ = select.select([socks[i] for i in outstanding], [], [], 0.2)
        for s in ready:
            i = socks.index(s)
            while True:
                try:
                    got = s.recv(70000)
                except BlockingIOError:
                    break
                if i not in outstanding:
                    if got == previous.get(i):
                        continue
                    print("socket %d: an echo nobody waited for (%d bytes)" % (i, len(got)))
                    return 1
                want, _ = outstanding[i]
                if got == want:
                    del outstanding[i]
                    previous[i] = want
                    in_flight -= len(want)
                    echoed += 1
                    idle.append(i)
                elif got == previous.get(i):
                    continue
                else:
                    print(
                        "socket %d: echo of %d bytes differs from the %d bytes sent"
                        % (i, len(got), len(want))
                    )
                    return 1
        now = time.monotonic()
        for i, (data, at) in list(outstanding.items()):
            if now - at > 1.0:
                socks[i].sendto(data, target)
                outstanding[i] = (data, now)
                retransmitted += 1
    print("ok %d echoed, %d retransmitted, refused %s" % (echoed, retransmitted, refused))
    for s in socks:
        if family == socket.AF_UNIX:
            try:
                os.unlink(s.getsockname())
            except OSError:
                pass
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
