#!/usr/bin/env bash
# lcorrelate's benchmark: accuracy of every --method over simulated runs (leaf-spine and
# fat-tree, 0-16 faulty links, SEEDS runs each; then the conditions of real input: addressing,
# round trips, silence, host links), and throughput on a simulated file of LINES path records.
# Reproducible: the simulator follows its seeds. Writes bench/lcorrelate.md. The 10,000-host
# scale run is bench/lcorrelate_scale.sh.
#   bench/lcorrelate.sh [SEEDS] [LINES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seeds="${1:-100}"
lines="${2:-3000000}"
cargo build --release --quiet --bin lcorrelate --example lcorrelate_bench
bench=target/release/examples/lcorrelate_bench
out=bench/lcorrelate.md
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

$bench gen "$lines" 7 > "$tmp/paths.jsonl" 2> "$tmp/faults"
n=$(wc -l < "$tmp/paths.jsonl")
start=$(date +%s.%N)
taskset -c 0 target/release/lcorrelate "$tmp/paths.jsonl" > "$tmp/links.jsonl" || [ $? -eq 1 ]
end=$(date +%s.%N)
secs=$(awk "BEGIN { print $end - $start }")
rate=$(awk "BEGIN { printf \"%d\", $n / $secs }")

{
    echo "# lcorrelate benchmark"
    echo
    echo "$(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) cores, seeds per row: $seeds"
    echo
    echo "Throughput: $n path records in $(printf '%.2f' "$secs") s on one core = **$rate records/s**"
    echo "(fat-tree k=8, $(du -h "$tmp/paths.jsonl" | cut -f1) of JSON lines, one process pinned to CPU 0)."
    echo "Faults in that file: $(tr '\n' ';' < "$tmp/faults")"
    echo "First record: \`$(head -1 "$tmp/links.jsonl" | cut -c1-200)…\`"
    echo
    $bench eval "$seeds"
    echo
    echo "## Real input (issue 12)"
    echo
    echo "Interface addresses without an alias file, round trips with untraced ECMP answers"
    echo "(with and without lost_fwd/lost_rev), silent hops and routers, faults on core or host"
    echo "links; k = 0, 1, 4, 8, 16; a record names a fault when one of its links is it."
    echo
    $bench real "$seeds"
} > "$out"
cat "$out"
