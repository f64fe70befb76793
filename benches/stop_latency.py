#!/usr/bin/env python3
"""How fast echo_server exits after SIGTERM: from kill(2) to waitpid(2) returning.

    cargo build --release --example echo_server
    benches/stop_latency.py [RUNS] [CLIENTS] [BACKEND]    # default 50 10 select

Each run starts the server on a free port, connects CLIENTS clients and echoes a byte
on each (so the server is in its loop, blocked in its wait with no timeout), sleeps
50 ms, then times SIGTERM to the exit. The exit status must be 0. Prints the median,
the 90th percentile and the extremes. A measurement, not a test: nothing is asserted
about the time.
"""
import os, signal, socket, statistics, subprocess, sys, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "examples", "echo_server")
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 10
backend = sys.argv[3] if len(sys.argv) > 3 else "select"
if not os.path.isfile(binary):
    sys.exit(f"{binary} is missing: cargo build --release --example echo_server")
times = []
for _ in range(runs):
    p = subprocess.Popen([binary, "127.0.0.1:0", "--quiet", "--backend", backend],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    port = int(line.rsplit(":", 1)[1])
    conns = []
    for _ in range(clients):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"x")
        c.recv(1)
        conns.append(c)
    time.sleep(0.05)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGTERM)
    _, status = os.waitpid(p.pid, 0)
    t1 = time.monotonic()
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        sys.exit(f"echo_server did not exit 0 after SIGTERM: status {status}")
    times.append((t1 - t0) * 1000)
    for c in conns:
        c.close()
times.sort()
print(f"{backend}, {runs} runs, {clients} clients: median {statistics.median(times):.2f} ms, "
      f"p90 {times[max(0, int(runs * 0.9) - 1)]:.2f} ms, "
      f"min {times[0]:.2f} ms, max {times[-1]:.2f} ms")
