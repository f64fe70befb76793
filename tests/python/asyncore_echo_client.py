"""An echo client written on CPython's own asyncore module (3.11 and earlier).

usage: asyncore_echo_client.py HOST PORT select|poll

Sends several messages one after the other, each once the previous one came back
whole, checks every echo byte for byte, then half-closes and expects the server to
close. Exit status: 0 on success, 1 on a wrong echo or an early close, 2 when the
loop bound ran out, 3 on an error inside asyncore.
"""

import asyncore
import socket
import sys

host, port, flavour = sys.argv[1], int(sys.argv[2]), sys.argv[3]
use_poll = flavour == "poll"

MESSAGES = [
    b"hello",
    bytes(range(256)) * 64,  # every byte value, 16 KiB
    b"x" * 100_000,  # far more than the server's per-connection buffer
    "h\u00e9llo w\u00f6rld \u2603\n".encode("utf-8"),
    b"\x00\r\n\x00\xff",
]


class EchoClient(asyncore.dispatcher):
    def __init__(self):
        super().__init__()
        self.create_socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.connect((host, port))
        self.pending = list(MESSAGES)
        self.out = bytearray(self.pending[0])
        self.expected = self.pending[0]
        self.got = bytearray()
        self.echoed = 0
        self.half_closed = False
        self.failure = None
        self.server_closed = False

    def handle_connect(self):
        pass

    def writable(self):
        return bool(self.out)

    def handle_write(self):
        sent = self.send(bytes(self.out[:65536]))
        del self.out[:sent]

    def handle_read(self):
        data = self.recv(65536)
        if not data:
            return  # recv called handle_close
        if self.half_closed:
            self.fail("%d bytes after the last echo" % len(data))
            return
        self.got += data
        if len(self.got) < len(self.expected):
            return
        if bytes(self.got) != self.expected:
            self.fail("message %d came back different" % self.echoed)
            return
        self.echoed += 1
        self.pending.pop(0)
        self.got = bytearray()
        if self.pending:
            self.expected = self.pending[0]
            self.out = bytearray(self.expected)
        else:
            self.socket.shutdown(socket.SHUT_WR)
            self.half_closed = True

    def handle_close(self):
        if not self.half_closed:
            self.fail("the server closed after %d echoes" % self.echoed)
        self.server_closed = True
        self.close()

    def handle_error(self):
        _, value, _ = sys.exc_info()
        self.failure = ("error", "error inside asyncore: %r" % (value,))
        self.close()

    def fail(self, why):
        self.failure = ("wrong", why)
        self.close()


client = EchoClient()
for _ in range(20_000):
    if not asyncore.socket_map:
        break
    asyncore.loop(timeout=0.05, use_poll=use_poll, count=1)
else:
    print("the loop bound ran out after %d echoes" % client.echoed, file=sys.stderr)
    sys.exit(2)

if client.failure:
    kind, why = client.failure
    print(why, file=sys.stderr)
    sys.exit(3 if kind == "error" else 1)
if client.echoed != len(MESSAGES) or not client.server_closed:
    print("echoed %d of %d" % (client.echoed, len(MESSAGES)), file=sys.stderr)
    sys.exit(1)
print("echoed %d messages, %d bytes" % (client.echoed, sum(map(len, MESSAGES))))
