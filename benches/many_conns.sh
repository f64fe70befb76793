#!/bin/sh
# Many connections on one echo_server --backend epoll: builds an echo_server that
# holds 20,480 channels (ASYNCORE_ECHO_CAPACITY=20480, into target/cap20k so the
# default build stays as it is) and the load generator, then `loadgen many`:
#
# * starts `echo_server 127.0.0.1:0 --backend epoll --quiet --nodelay`;
# * connects as many connections as RLIMIT_NOFILE lets both processes hold (the
#   hard limit is raised to if it can be; where it is 20,000, a few fds of each
#   process are not connections, so it says how many and why not 20,000), each
#   confirmed by a 1-byte round trip;
# * on every connection, 3 rounds (--rounds R) of a message of 1 B, 100 B, 4 KiB or
#   64 KiB (by connection and round), each a window of a pseudo-random pattern at
#   an offset of its own, all in flight at once; every echoed byte is compared;
# * one connection over the server's limit must be accepted and closed at once;
# * prints the server's VmRSS / VmHWM (/proc/PID/status) with every connection open,
#   and its static memory (its --help).
#
# Exit status 0 only if every byte came back as sent. About 15 s here
# (20,000 connections: ~9 s to connect, ~3 s to echo 1 GB).
#
#   benches/many_conns.sh [--conns N] [--rounds R]
set -e
cd "$(dirname "$0")/.."
cargo build --release --example loadgen --quiet
ASYNCORE_ECHO_CAPACITY=20480 cargo build --release --example echo_server \
    --target-dir target/cap20k --quiet
exec target/release/examples/loadgen many \
    --echo-server target/cap20k/release/examples/echo_server "$@"
