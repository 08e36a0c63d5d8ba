#!/usr/bin/env bash
# lcorrelate at data-center scale (issue 12): a simulated fabric of 10,240 hosts (256 leaves x
# 16 spines x 40 hosts), each host probing 16 destinations over 8 flows (1.31 M path records,
# round trips, arrival addressing) with FAULTS faulty links; lcorrelate on one pinned core,
# its time (wall and CPU: the machine may be shared) and peak RSS, and how many faults the
# faulty records name (and how many name none).
#   bench/lcorrelate_scale.sh [FAULTS] [SEED]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
faults="${1:-32}"
seed="${2:-1}"
cargo build --release --quiet --bin lcorrelate --example lcorrelate_bench
bench=target/release/examples/lcorrelate_bench
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$bench dc "$faults" "$seed" > "$tmp/paths.jsonl" 2> "$tmp/faults"
n=$(wc -l < "$tmp/paths.jsonl")
/usr/bin/time -f '%e %U %M' -o "$tmp/time" taskset -c 0 target/release/lcorrelate \
    "$tmp/paths.jsonl" > "$tmp/links.jsonl" || [ $? -eq 1 ]
# time's last line: its first says "Command exited with non-zero status 1" (faults found).
read -r secs cpu kib < <(tail -1 "$tmp/time")
echo "$n path records, $faults faulty links: $secs s ($cpu s CPU), peak RSS" \
    "$((kib / 1024)) MB on one core; $($bench dc-check "$tmp/faults" "$tmp/links.jsonl")"
