#!/bin/sh
# The echo load benchmark: builds the servers (our echo_server, the raw
# poll/select/epoll loop, the mio server) and the load generator, then runs the
# matrix and prints a markdown table. Bounded: about 3 s per cell (56 cells) plus
# the churn rows.
#
#   benches/echo_load.sh                        # the default matrix, ~3.5 min
#   benches/echo_load.sh --secs 1 --conns 10    # shorter
#   benches/echo_load.sh --callgrind --no-churn # user-space instructions per round trip
#   benches/echo_load.sh conns [--repeat 3]     # issue 18's connection counts, below
#
# `conns`: 10,000 connections of which 100 are active (9,900 connected, served once,
# then idle through the window) and 1,000 all active, 64 B messages, on raw-poll,
# ours-poll, raw-epoll, ours-epoll and mio. Our servers there are an echo_server
# built with ASYNCORE_ECHO_CAPACITY=20480 into target/cap20k (the default build
# holds 2,046 connections, and stays as it is). About 5 s per cell (opening the
# idle connections takes ~1-2 s) and ~1 min for the ten cells of one repeat.
#
# Options: see `target/release/examples/loadgen` (no arguments prints them).
set -e
cd "$(dirname "$0")/.."
cargo build --release --examples --quiet
if [ "$1" = conns ]; then
    shift
    ASYNCORE_ECHO_CAPACITY=20480 cargo build --release --example echo_server \
        --target-dir target/cap20k --quiet
    exec target/release/examples/loadgen matrix --conns 100+9900,1000 --sizes 64 \
        --servers raw-poll,ours-poll,raw-epoll,ours-epoll,mio --no-churn \
        --echo-server target/cap20k/release/examples/echo_server "$@"
fi
exec target/release/examples/loadgen matrix "$@"
