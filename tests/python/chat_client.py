"""A chat client written with Python's own asynchat, for tests/chat.rs.

usage: python3 -W ignore chat_client.py PORT PEER_NICK

It connects to our chat server on 127.0.0.1:PORT and walks through the protocol:

1. waits for `* welcome guestN`;
2. tries a bad nick (`* invalid nick`), then sets `pyclient` with a \\r\\n line end;
3. sends a line longer than the limit (`* line too long`) and stays connected;
4. says `hello from python` (the Rust client PEER_NICK sees it) and waits for
   `PEER_NICK: hello from rust`;
5. sends `/quit`, expects `* bye`, and then the server closing the connection.

It prints each step and exits 0 when all of them happened in order, 1 otherwise
(including a 20-second wall-clock bound, so a hang becomes a failure).
"""

import asynchat
import asyncore
import socket
import sys
import time


class Client(asynchat.async_chat):
    def __init__(self, port, peer):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.connect(("127.0.0.1", port))
        self.set_terminator(b"\n")
        self.peer = peer
        self.buf = []
        self.step = "welcome"
        self.closed = False
        self.failure = None

    def handle_connect(self):
        pass

    def collect_incoming_data(self, data):
        self.buf.append(data)

    def fail(self, why):
        self.failure = why
        print("FAIL:", why, flush=True)
        self.close()
        self.closed = True

    def found_terminator(self):
        line = b"".join(self.buf).decode("utf-8", "replace")
        self.buf = []
        print("got:", line, flush=True)
        if self.step == "welcome":
            if not line.startswith("* welcome guest"):
                return self.fail("expected a welcome, got %r" % line)
            print("WELCOME", flush=True)
            self.push(b"/nick not valid\n")
            self.step = "bad nick"
        elif self.step == "bad nick":
            if line != "* invalid nick":
                return self.fail("expected * invalid nick, got %r" % line)
            self.push(b"/nick pyclient\r\n")
            self.step = "nick"
        elif self.step == "nick":
            if line != "* you are now pyclient":
                return self.fail("expected the nick confirmed, got %r" % line)
            print("NICK OK", flush=True)
            # Through push's own chunking: 3,000 bytes (over the server's default
            # limit of 2,048) and a newline.
            self.push(b"y" * 3000 + b"\n")
            self.step = "too long"
        elif self.step == "too long":
            if line != "* line too long":
                return self.fail("expected * line too long, got %r" % line)
            print("TOO LONG OK", flush=True)
            self.push(b"hello from python\n")
            self.step = "broadcast"
        elif self.step == "broadcast":
            if line == "%s: hello from rust" % self.peer:
                print("GOT BROADCAST", flush=True)
                self.push(b"/quit\n")
                self.step = "bye"
            elif not line.startswith("* "):
                return self.fail("unexpected line %r" % line)
        elif self.step == "bye":
            if line != "* bye":
                return self.fail("expected * bye, got %r" % line)
            print("BYE", flush=True)
            self.step = "closed"
        else:
            return self.fail("unexpected line after bye: %r" % line)

    def handle_close(self):
        if self.step == "closed":
            print("CLOSED BY SERVER", flush=True)
        elif self.failure is None:
            self.failure = "closed at step %s" % self.step
            print("FAIL:", self.failure, flush=True)
        self.close()
        self.closed = True


def main():
    port = int(sys.argv[1])
    peer = sys.argv[2]
    client = Client(port, peer)
    deadline = time.monotonic() + 20
    while not client.closed and time.monotonic() < deadline:
        asyncore.loop(timeout=0.05, count=1)
    if not client.closed:
        print("FAIL: timed out at step", client.step, flush=True)
        return 1
    if client.failure is not None or client.step != "closed":
        return 1
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
