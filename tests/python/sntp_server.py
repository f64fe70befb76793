#!/usr/bin/env python3
"""A tiny SNTP responder for the sntp_client example (tests/sntp_client.rs).

    sntp_server.py MODE [--host HOST]

Binds UDP on HOST (default 127.0.0.1) and a port of the kernel's choosing, prints
"listening on PORT", and answers requests by MODE:

  ok        a stratum-2 reply whose clock is 1000.25 s ahead of the real one
  drop:N    the first N requests get no answer, then as "ok"
  kiss      kiss-o'-death RATE (stratum 0)
  unsync    leap indicator 3
  spoof     first a reply to another request (wrong originate) and garbage, then "ok"
  stratum1  as "ok", at stratum 1 with the reference "GPS"
  silent    never answers

Each request is logged on stderr as "request N". Runs until killed.
"""

import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800
AHEAD = 1000.25


def ntp(t):
    secs = int(t) + NTP_EPOCH
    frac = int((t - int(t)) * 2**32)
    return struct.pack("!II", secs & 0xFFFFFFFF, frac & 0xFFFFFFFF)


def reply(req, *, leap=0, stratum=2, ref=b"\x7f\x00\x00\x01", originate=None):
    received = time.time() + AHEAD
    version = (req[0] >> 3) & 7
    first = (leap << 6) | (version << 3) | 4
    header = struct.pack("!BBbb", first, stratum, 6, -20)
    root = struct.pack("!II", 0, 0)
    ref_ts = ntp(received - 10)
    orig = originate if originate is not None else req[40:48]
    return header + root + ref + ref_ts + orig + ntp(received) + ntp(time.time() + AHEAD)


def main():
    mode = sys.argv[1]
    host = "127.0.0.1"
    if "--host" in sys.argv:
        host = sys.argv[sys.argv.index("--host") + 1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    print("listening on %d" % s.getsockname()[1], flush=True)
    n = 0
    drop = int(mode.split(":")[1]) if mode.startswith("drop:") else 0
    while True:
        req, peer = s.recvfrom(1024)
        n += 1
        print("request %d" % n, file=sys.stderr, flush=True)
        if len(req) < 48 or mode == "silent":
            continue
        if n <= drop:
            continue
        if mode == "kiss":
            s.sendto(reply(req, stratum=0, ref=b"RATE"), peer)
        elif mode == "unsync":
            s.sendto(reply(req, leap=3), peer)
        elif mode == "spoof":
            s.sendto(reply(req, originate=b"\x01" * 8), peer)
            s.sendto(b"not ntp", peer)
            s.sendto(reply(req), peer)
        elif mode == "stratum1":
            s.sendto(reply(req, stratum=1, ref=b"GPS\x00"), peer)
        else:
            s.sendto(reply(req), peer)


if __name__ == "__main__":
    main()
