#!/usr/bin/env bash
# The core on a Cortex-M3 under QEMU, compared with the host: builds the firmware
# (thumbv7m-none-eabi, opt-level "s" unless CARGO_PROFILE_RELEASE_OPT_LEVEL says
# otherwise), boots it in qemu-system-arm with semihosting, builds the same program
# for the host, and diffs the per-seed lines (seed, trace hash, report) of the two.
# Prints the firmware's own measurements (`#` lines: type sizes, stack depth per
# scenario) and its ELF sections. Exits non-zero on a failed seed, a fault, a
# difference, a static that is no longer all zero bytes, or a missing tool.
#
#   targets/cortex-m/run.sh               the LM3S6965 images (what CI runs)
#   targets/cortex-m/run.sh mps2-an385    both scenarios in one image, on the mps2-an385
#
# Boards (QEMU machines, both Cortex-M3):
#   lm3s6965evb  64 KiB RAM: one image per scenario, the echo scenario's and the chat
#                scenario's, each with its simulated network in a static (.bss) and
#                the stack and statics split for it (memory/lm3s6965evb-*.x). An image
#                whose stack overflows (QEMU: "Lockup") is run again on the mps2-an385
#                to measure how deep it goes: deeper than this board's stack region,
#                it is reported as not fitting (the chat scenario at opt-level 0,
#                README, Targets); otherwise the overflow is a failure.
#   mps2-an385   4 MiB RAM: room for anything; both scenarios in one image.
set -euo pipefail
cd "$(dirname "$0")"

for tool in qemu-system-arm size nm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install qemu-system-arm binutils)" >&2; exit 1; }
done

# Built beside the workspace's own builds, like benches/thumb-size.
export CARGO_TARGET_DIR=../../target/cortex-m
target=thumbv7m-none-eabi
elf=$CARGO_TARGET_DIR/$target/release/asyncore-cortex-m
out=$CARGO_TARGET_DIR/compare
mkdir -p "$out"
opt=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}

# Boots an image; its `#` lines are printed. Returns QEMU's exit status: the
# firmware's own through semihosting (0 only if every seed passed), 134 for a fault
# (e.g. a stack overflow into unmapped memory stops QEMU with "Lockup"). The timeout
# only turns a hang into a failure.
boot() { # board elf log
  local board=$1 elf=$2 log=$3 rc=0
  # (The braces keep bash's own "Aborted" notice of a faulted QEMU off the output.)
  { timeout 600 qemu-system-arm -cpu cortex-m3 -machine "$board" -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" </dev/null >"$log" 2>&1; } 2>/dev/null || rc=$?
  grep '^#' "$log" || true
  return "$rc"
}

failed() { # board log rc
  echo "FAILED: the firmware on $1 exited with status $3; the end of its output:"
  tail -n 20 "$2"
  exit 1
}

# The seed lines of one scenario (QEMU's own messages and the `#` lines left out).
seed_lines() { grep -E "^$2 seed=" "$1"; }

compare() { # firmware-log host-log board scenario...
  local fw=$1 host=$2 board=$3 name
  shift 3
  for name in "$@"; do
    if ! diff <(seed_lines "$fw" "$name") <(seed_lines "$host" "$name") >"$out/diff-$board-$name"; then
      echo "FAILED: the $name scenario on $board and on the host differ (< firmware, > host):"
      head -n 40 "$out/diff-$board-$name"
      exit 1
    fi
  done
  echo "$board: $(grep -c ' seed=' "$fw") seed lines identical to the host's ($(tail -n 1 "$fw"))"
}

# The sections of an image; `.data` must stay small: the networks and the trace
# checker are statics whose empty state is all zero bytes, so they are in `.bss`.
sections() { # elf label
  echo "$2:"
  size -A "$1" | awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/ { printf "  %-13s %7d bytes\n", $1, $2 }'
  local data
  data=$(size -A "$1" | awk '$1 == ".data" { print $2 }')
  if [ "${data:-0}" -gt 1024 ]; then
    echo "FAILED: .data is $data bytes: a static network or checker is no longer all zero bytes"
    exit 1
  fi
}

# The host's lines for both scenarios (dev profile: the results do not depend on it).
cargo run -q --features chat >"$out/host.log"

if [ "${1:-}" = mps2-an385 ]; then
  echo "--- mps2-an385 (Cortex-M3, 4 MiB RAM): echo and chat scenarios in one image"
  cargo build -q --release --target "$target" --features mps2-an385,chat
  cp "$elf" "$out/firmware-mps2-an385.elf"
  sections "$out/firmware-mps2-an385.elf" "mps2-an385 firmware (echo and chat scenarios; opt-level $opt, LTO)"
  rc=0
  boot mps2-an385 "$out/firmware-mps2-an385.elf" "$out/firmware-mps2-an385.log" || rc=$?
  [ "$rc" = 0 ] || failed mps2-an385 "$out/firmware-mps2-an385.log" "$rc"
  compare "$out/firmware-mps2-an385.log" "$out/host.log" mps2-an385 echo chat
  exit 0
fi

for scenario in echo chat; do
  echo "--- lm3s6965evb (Cortex-M3, 64 KiB RAM): the $scenario scenario"
  features=(--no-default-features --features "$scenario")
  cargo build -q --release --target "$target" "${features[@]}"
  image=$out/firmware-lm3s6965evb-$scenario.elf
  cp "$elf" "$image"
  sections "$image" "lm3s6965evb firmware ($scenario scenario; opt-level $opt, LTO)"
  rc=0
  boot lm3s6965evb "$image" "$out/firmware-lm3s6965evb-$scenario.log" || rc=$?
  if [ "$rc" = 0 ]; then
    compare "$out/firmware-lm3s6965evb-$scenario.log" "$out/host.log" "lm3s6965evb-$scenario" "$scenario"
    continue
  fi
  [ "$rc" = 134 ] || failed lm3s6965evb "$out/firmware-lm3s6965evb-$scenario.log" "$rc"
  # A fault: how deep does this scenario go, with room to spare?
  sym() { echo $(( 16#$(nm "$image" | awk -v s="$1" '$3 == s { print $1 }') )); }
  region=$(( $(sym _stack_start) - $(sym _stack_end) ))
  cargo build -q --release --target "$target" "${features[@]}" --features mps2-an385
  cp "$elf" "$out/firmware-mps2-an385-$scenario.elf"
  rc=0
  boot mps2-an385 "$out/firmware-mps2-an385-$scenario.elf" "$out/firmware-mps2-an385-$scenario.log" || rc=$?
  [ "$rc" = 0 ] || failed mps2-an385 "$out/firmware-mps2-an385-$scenario.log" "$rc"
  needed=$(sed -n "s/^# stack: $scenario scenario \([0-9]*\) B deep.*/\1/p" "$out/firmware-mps2-an385-$scenario.log")
  if [ -z "$needed" ] || [ "$needed" -le "$region" ]; then
    echo "FAILED: the $scenario scenario faulted on lm3s6965evb, though it needs ${needed:-?} B of"
    echo "  stack (measured on mps2-an385) and the stack region holds $region B:"
    tail -n 20 "$out/firmware-lm3s6965evb-$scenario.log"
    exit 1
  fi
  compare "$out/firmware-mps2-an385-$scenario.log" "$out/host.log" "mps2-an385-$scenario" "$scenario"
  echo "lm3s6965evb: the $scenario scenario does NOT FIT at opt-level $opt: it needs $needed B of"
  echo "  stack (measured on mps2-an385, where it ran instead), the stack region holds $region B"
  echo "  (README, Targets)."
done
