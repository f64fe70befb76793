#!/bin/sh
# User-space instructions per pass of the fd scaling benchmark (benches/fd_scaling.rs),
# counted by callgrind: there is no hardware instruction counter on the machine the
# benchmarks are run on (`perf stat -e instructions:u`: not supported).
#
# Each (N, A, row) runs in its own process: setup, a 16-pass warm-up, then exactly K
# passes through `measured_pass`, the only code counted (`--collect-atstart=no
# --toggle-collect=*measured_pass*`): not the setup of 10,000 pairs, not the warm-up.
# The kernel's share (most of a pass over many fds) is not counted, and under valgrind
# glibc's clock_gettime is a system call, not the vDSO.
#
#   benches/fd_scaling_instr.sh                            # the default matrix, ~40 s
#   benches/fd_scaling_instr.sh --passes 500 --n 1000 --active 1,100 --only raw-epoll,epoll-onchange,mio
#
# Options: --passes K (200), --n LIST (1000,10000,50000), --active LIST (1,100),
# --only ROWS (all; see benches/fd_scaling.rs). Valgrind keeps 12 fds of
# RLIMIT_NOFILE for itself, so a size cut down to what fits runs a few pairs fewer
# than in the timed run (9,962 instead of 9,968 with a hard limit of 20,000).
set -e
cd "$(dirname "$0")/.."

passes=200
sizes=1000,10000,50000
actives=1,100
rows=raw-select,select-everypass,select-onchange,raw-poll,poll-everypass,poll-onchange,raw-epoll,epoll-everypass,epoll-onchange,mio
while [ $# -gt 0 ]; do
    case "$1" in
    --passes) passes=$2; shift 2 ;;
    --n) sizes=$2; shift 2 ;;
    --active) actives=$2; shift 2 ;;
    --only) rows=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
bin=$(cargo bench --bench fd_scaling --no-run 2>&1 | sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "cannot find the fd_scaling binary" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "fd scaling, user-space instructions (callgrind), $passes passes per row after a 16-pass warm-up"
echo
echo "| N | A | row | Ir/pass | Ir/event | events/pass | ×raw |"
echo "|---:|---:|---|---:|---:|---:|---:|"
done_sizes=" "
for asked in $(echo "$sizes" | tr , ' '); do
    ran=
    for a in $(echo "$actives" | tr , ' '); do
        raw_select= raw_poll= raw_epoll=
        for row in $(echo "$rows" | tr , ' '); do
            valgrind --tool=callgrind --collect-atstart=no '--toggle-collect=*measured_pass*' \
                --callgrind-out-file="$out/cg" "$bin" --passes "$passes" --only "$row" \
                --n "$asked" --active "$a" >"$out/stdout" 2>"$out/stderr" || {
                echo "| $asked | $a | $row | failed: $(grep -v '^==' "$out/stderr" | tail -n 1) | | | |"
                continue
            }
            line=$(grep '^instr-run' "$out/stdout" || true)
            n=$(echo "$line" | sed -n 's/.* n=\([0-9]*\) .*/\1/p')
            if [ -z "$ran" ]; then
                # The first run at this size: say if it was cut down, skip a size
                # already measured.
                ran=$n
                again=
                case "$done_sizes" in *" $n "*) again=", measured above" ;; esac
                if [ "$n" != "$asked" ]; then
                    echo "| $asked | – | – | $(sed -n "s/^N = $asked: //p" "$out/stderr")$again | | | |"
                fi
                [ -z "$again" ] || continue 3
                done_sizes="$done_sizes$n "
            fi
            case "$line" in *skipped*) continue ;; esac
            events=$(echo "$line" | sed -n 's/.* events=\([0-9]*\).*/\1/p')
            k=$(echo "$line" | sed -n 's/.* passes=\([0-9]*\) .*/\1/p')
            ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/cg")
            case "$row" in
            raw-select) raw_select=$ir/$events ;;
            raw-poll) raw_poll=$ir/$events ;;
            raw-epoll) raw_epoll=$ir/$events ;;
            esac
            case "$row" in
            *select*) raw=$raw_select ;;
            *epoll* | mio) raw=$raw_epoll ;;
            *) raw=$raw_poll ;;
            esac
            awk -v n="$n" -v a="$a" -v row="$row" -v ir="$ir" -v k="$k" -v ev="$events" -v raw="$raw" 'BEGIN {
                if (ev < 1) ev = 1
                ratio = "–"
                if (raw != "") {
                    split(raw, r, "/")
                    if (r[2] < 1) r[2] = 1
                    ratio = sprintf("%.2f", (ir / ev) / (r[1] / r[2]))
                }
                printf "| %d | %d | %s | %.0f | %.0f | %.1f | %s |\n", n, a, row, ir / k, ir / ev, ev / k, ratio
            }'
        done
    done
done
