"""Canned HTTP responses, good and broken, for tests/http_client.rs.

usage: http_fixture.py MODE [--host ADDR]

Listens on ADDR (127.0.0.1 by default; ::1 for IPv6) on a port the system picks,
prints `listening on PORT` on stdout, then answers every connection the same way:
it reads the request head (up to the empty line), then sends what MODE says.

  ok                 Content-Length, a 100,000-byte body, then close
  close              no length: a 3,000-byte body, then close (the body ends there)
  short              Content-Length 1000, 10 bytes, then FIN
  reset              Content-Length 100000, 5,000 bytes, then RST (SO_LINGER 0)
  drip               Content-Length 1000, one byte every 50 ms (for --timeout)
  chunked            chunked, with extensions and trailers, the framing sent in
                     pieces of 1 to 7 bytes; body: "hello, world\n" + 70,000 bytes
  chunked-bad-hex    chunked: "hello", then a chunk size that is not hexadecimal
  chunked-no-crlf    chunked: "hello" not followed by CRLF
  chunked-eof        chunked: "hello", then FIN before the last chunk
  chunked-long-line  chunked: a chunk-size line of 2,000 bytes
  huge-header        70 KiB of header lines
  urgent             Content-Length 10: "01234", a TCP urgent byte, "56789"
  echo               200 with the request head, byte for byte, as the body

The N-byte bodies are pattern(N): byte i is (i * 31 + 7) % 256. A SIGALRM after
120 s ends the script whatever happens, so a test that dies cannot leave it behind.
"""

import itertools
import signal
import socket
import struct
import sys
import time

signal.alarm(120)

mode = sys.argv[1]
host = "127.0.0.1"
if len(sys.argv) > 2 and sys.argv[2] == "--host":
    host = sys.argv[3]


def pattern(n):
    return bytes((i * 31 + 7) % 256 for i in range(n))


def head(status="200 OK", version="HTTP/1.1", **fields):
    lines = ["%s %s" % (version, status)]
    lines += ["%s: %s" % (k.replace("_", "-"), v) for k, v in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        more = conn.recv(65536)
        if not more:
            break
        data += more
    return data


def chunk(data, ext=""):
    return b"%x%s\r\n" % (len(data), ext.encode("ascii")) + data + b"\r\n"


def send_in_pieces(conn, data, sizes):
    """Sends `data` in pieces of the given sizes, pausing after each."""
    i = 0
    for size in sizes:
        if i >= len(data):
            break
        conn.sendall(data[i : i + size])
        i += size
        time.sleep(0.002)


def serve(conn):
    request = read_request(conn)
    if mode == "ok":
        body = pattern(100_000)
        conn.sendall(head(Content_Length=len(body)) + body)
    elif mode == "close":
        conn.sendall(head(version="HTTP/1.0") + pattern(3000))
    elif mode == "short":
        conn.sendall(head(Content_Length=1000) + b"0123456789")
        conn.shutdown(socket.SHUT_WR)
    elif mode == "reset":
        conn.sendall(head(Content_Length=100_000) + pattern(5000))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "drip":
        conn.sendall(head(Content_Length=1000))
        for b in pattern(1000):
            conn.sendall(bytes([b]))
            time.sleep(0.05)
    elif mode == "chunked":
        small = chunk(b"hello", ";name=value") + chunk(b", world\n", ' ; quoted="a;b"\t; x')
        end = b"0000\r\nX-Trailer: one\r\nExpires: never\r\n\r\n"
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(head(Transfer_Encoding="chunked"))
        # The small chunks in pieces of 1 to 7 bytes, the big one whole, the end
        # byte by byte.
        send_in_pieces(conn, small, itertools.cycle(range(1, 8)))
        conn.sendall(chunk(pattern(70_000), ";big"))
        send_in_pieces(conn, end, itertools.repeat(1))
    elif mode == "chunked-bad-hex":
        conn.sendall(head(Transfer_Encoding="chunked") + chunk(b"hello") + b"zz\r\nmore\r\n0\r\n\r\n")
    elif mode == "chunked-no-crlf":
        conn.sendall(head(Transfer_Encoding="chunked") + b"5\r\nhelloXX0\r\n\r\n")
    elif mode == "chunked-eof":
        conn.sendall(head(Transfer_Encoding="chunked") + chunk(b"hello"))
        conn.shutdown(socket.SHUT_WR)
    elif mode == "chunked-long-line":
        conn.sendall(head(Transfer_Encoding="chunked") + b"5;" + b"x" * 2000 + b"\r\nhello\r\n0\r\n\r\n")
    elif mode == "huge-header":
        filler = b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"a" * 100) for i in range(700))
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nhi")
    elif mode == "urgent":
        conn.sendall(head(Content_Length=10) + b"01234")
        time.sleep(0.05)
        conn.send(b"!", socket.MSG_OOB)
        time.sleep(0.05)
        conn.sendall(b"56789")
    elif mode == "echo":
        conn.sendall(head(Content_Length=len(request)) + request)
    else:
        raise SystemExit("unknown mode %r" % mode)


family = socket.AF_INET6 if ":" in host else socket.AF_INET
listener = socket.socket(family, socket.SOCK_STREAM)
listener.bind((host, 0))
listener.listen(16)
print("listening on %d" % listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    conn.settimeout(60)
    try:
        serve(conn)
    except OSError:
        pass  # the client went away: that is its business
    finally:
        conn.close()
