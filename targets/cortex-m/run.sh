#!/usr/bin/env bash
# The core on a Cortex-M3 under QEMU, compared with the host: builds the firmware
# (thumbv7m-none-eabi, opt-level "s"), boots it in qemu-system-arm with semihosting,
# builds the same program for the host, and diffs the per-seed lines (seed, trace
# hash, report) of the two. Prints the firmware's own measurements (`#` lines: type
# sizes, stack depth per scenario) and its ELF sections. Exits non-zero on a failed
# seed, a fault, a difference or a missing tool.
#
#   targets/cortex-m/run.sh
#
# Boards (QEMU machines, both Cortex-M3):
#   mps2-an385   4 MiB RAM: the echo and the chat scenarios, always run.
#   lm3s6965evb  64 KiB RAM: the echo scenario, run when the stack depth it needs
#                (measured on the mps2-an385 run) fits this board's stack region;
#                otherwise built only, and the reason printed.
set -euo pipefail
cd "$(dirname "$0")"

for tool in qemu-system-arm size; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install qemu-system-arm binutils)" >&2; exit 1; }
done

# Built beside the workspace's own builds, like benches/thumb-size.
export CARGO_TARGET_DIR=../../target/cortex-m
target=thumbv7m-none-eabi
out=$CARGO_TARGET_DIR/compare
mkdir -p "$out"

# The firmware's output for one board: seeds, then its `#` lines.
boot() { # board elf log
  local board=$1 elf=$2 log=$3 rc=0
  # The firmware ends QEMU through semihosting with its own exit status; a fault
  # (e.g. a stack overflow into unmapped memory) stops QEMU with "Lockup", status 134.
  # The timeout only turns a hang into a failure.
  timeout 600 qemu-system-arm -cpu cortex-m3 -machine "$board" -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" </dev/null >"$log" 2>&1 || rc=$?
  grep '^#' "$log" || true
  if [ "$rc" != 0 ]; then
    echo "FAILED: the firmware on $board exited with status $rc; the end of its output:"
    tail -n 20 "$log"
    return 1
  fi
}

# The seed lines only (QEMU's own messages and the `#` lines left out).
seed_lines() { grep -E '^(echo|chat) seed=|^[0-9]+ passed, [0-9]+ failed$' "$1"; }

compare() { # firmware-log host-log board
  if ! diff <(seed_lines "$1") <(seed_lines "$2") >"$out/diff-$3"; then
    echo "FAILED: the firmware on $3 and the host differ (< firmware, > host):"
    head -n 40 "$out/diff-$3"
    return 1
  fi
  echo "$3: $(seed_lines "$1" | grep -c seed=) seed lines identical to the host's ($(tail -n 1 "$1" | grep passed || seed_lines "$1" | tail -n 1))"
}

sections() { # elf label
  echo "$2:"
  size -A "$1" | awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/ { printf "  %-13s %7d bytes\n", $1, $2 }'
}

echo "--- mps2-an385 (Cortex-M3, 4 MiB RAM): echo and chat scenarios"
elf=$CARGO_TARGET_DIR/$target/release/asyncore-cortex-m
cargo build --release --target "$target" --features mps2-an385,chat
mps2_elf=$out/firmware-mps2-an385.elf
cp "$elf" "$mps2_elf"
sections "$mps2_elf" "mps2-an385 firmware (echo and chat scenarios; opt-level s, LTO)"
boot mps2-an385 "$mps2_elf" "$out/firmware-mps2-an385.log"
# The same program on the host (dev profile: the results do not depend on it).
cargo run --features chat >"$out/host-chat.log"
compare "$out/firmware-mps2-an385.log" "$out/host-chat.log" mps2-an385

echo "--- lm3s6965evb (Cortex-M3, 64 KiB RAM): echo scenario"
cargo build --release --target "$target"
lm3s_elf=$out/firmware-lm3s6965evb.elf
cp "$elf" "$lm3s_elf"
sections "$lm3s_elf" "lm3s6965evb firmware (echo scenario; opt-level s, LTO)"
# This board's stack region, from the ELF's symbols, and what the echo scenario
# needed on the mps2-an385 run (same code, same opt-level).
sym() { echo $(( 16#$(nm "$lm3s_elf" | awk -v s="$1" '$3 == s { print $1 }') )); }
stack_size=$(( $(sym _stack_start) - $(sym _stack_end) ))
needed=$(sed -n 's/^# stack: echo scenario \([0-9]*\) B deep.*/\1/p' "$out/firmware-mps2-an385.log")
if [ -n "$needed" ] && [ "$needed" -le "$stack_size" ]; then
  boot lm3s6965evb "$lm3s_elf" "$out/firmware-lm3s6965evb.log"
  cargo run >"$out/host-echo.log"
  compare "$out/firmware-lm3s6965evb.log" "$out/host-echo.log" lm3s6965evb
else
  echo "lm3s6965evb: NOT RUN: the echo scenario needs ${needed:-?} B of stack (measured on the"
  echo "  mps2-an385 run), this board's stack region holds $stack_size B: run_echo builds its"
  echo "  simulated network on the stack (README, Targets)."
fi
