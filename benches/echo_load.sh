#!/bin/sh
# The echo load benchmark: builds the servers (our echo_server, the raw
# poll/select/epoll loop, the mio server) and the load generator, then runs the
# matrix and prints a markdown table. Bounded: about 3 s per cell (56 cells) plus
# the churn rows.
#
#   benches/echo_load.sh                        # the default matrix, ~3.5 min
#   benches/echo_load.sh --secs 1 --conns 10    # shorter
#   benches/echo_load.sh --callgrind --no-churn # user-space instructions per round trip
#
# Options: see `target/release/examples/loadgen` (no arguments prints them).
set -e
cd "$(dirname "$0")/.."
cargo build --release --examples --quiet
exec target/release/examples/loadgen matrix "$@"
