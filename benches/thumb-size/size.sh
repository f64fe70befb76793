#!/bin/sh
# .text of the core with a small echo server on thumbv7em-none-eabihf (Cortex-M4F):
# opt-level "s", LTO, panic=abort. Prints the ELF's allocated sections.
set -e
cd "$(dirname "$0")"
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || true
cargo build --release --target thumbv7em-none-eabihf --target-dir ../../target/thumb-size
elf=../../target/thumb-size/thumbv7em-none-eabihf/release/thumb-size
# GNU size reads the ARM ELF (readelf -SW "$elf" shows the same, in hex).
size -A "$elf" | awk '$1 ~ /^\.(text|rodata|data|bss)$/ { printf "%-8s %6d bytes\n", $1, $2 }'
