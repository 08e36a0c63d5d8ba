#!/usr/bin/env bash
# CPU time per sampling round with 1,000 interfaces: lpassive against the two other ways to
# read every interface's counters, in the same run, on the same namespace.
#
#   - lpassive: one netlink dump per round (RTM_GETSTATS for the counters, RTM_GETLINK when a
#     link notification says names or states changed), deltas, and one JSON `sample` record
#     per interface written to /dev/null; and with -q (the dump and the deltas, no sample
#     records), which isolates what the output costs.
#   - /proc/net/dev: read and split into fields by one long-lived python3 process, the
#     cheapest way a script gets every counter (the kernel formats text, the reader parses it).
#   - `ip -s -j link`: one process per round, as a shell loop or a cron job would use it.
#
# The namespace holds 500 veth pairs (1,000 interfaces), all up, IPv6 on (so every link
# message carries its full AF_INET6 section, as on a real host). Each tool does ROUNDS rounds;
# the figure is (user + system CPU of the whole run) / ROUNDS, so process start-up is spread
# over the rounds for the long-lived readers and paid every round by `ip`, as in real use.
#
# Run from anywhere as root: bench/lpassive.sh. Writes bench/lpassive-results.md.
# ROUNDS (default 200) and PAIRS (default 500) can be set in the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-200}
PAIRS=${PAIRS:-500}
OUT=bench/lpassive-results.md

[ "$(id -u)" -eq 0 ] || { echo "bench/lpassive.sh: run as root (network namespaces)" >&2; exit 2; }
cargo build --release --quiet --bin lpassive
BIN=$PWD/target/release/lpassive

NS="lopa-bench-passive-$$"
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip -n "$NS" link set lo up
for i in $(seq 1 "$PAIRS"); do echo "link add va$i type veth peer name vb$i"; done | ip -n "$NS" -batch -
for i in $(seq 1 "$PAIRS"); do echo "link set va$i up"; echo "link set vb$i up"; done | ip -n "$NS" -batch -
IFACES=$(ip -n "$NS" -o link | wc -l)
DUMP_BYTES=$(ip -n "$NS" -s -j link | wc -c)

# CPU seconds (user + system) of a command and its children.
cpu() {
    local TIMEFORMAT='%U %S'
    local t
    t=$( { time "$@" >/dev/null 2>&1; } 2>&1 )
    awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.4f %.4f\n", a[1], a[2] }'
}

lp=$(cpu ip netns exec "$NS" "$BIN" --all -c "$ROUNDS" -i 0.001)
lpq=$(cpu ip netns exec "$NS" "$BIN" --all -q -c "$ROUNDS" -i 0.001)
proc=$(cpu ip netns exec "$NS" python3 -c "
n = 0
for _ in range($ROUNDS):
    with open('/proc/net/dev') as f:
        lines = f.read().splitlines()[2:]
    rows = [l.split(':', 1) for l in lines]
    stats = {k.strip(): [int(x) for x in v.split()] for k, v in rows}
    n += len(stats)
assert n == $ROUNDS * $IFACES, n
")
ipj=$(cpu ip netns exec "$NS" sh -c "i=0; while [ \$i -lt $ROUNDS ]; do ip -s -j link; i=\$((i+1)); done")

per_round() { awk -v t="$1" -v r="$ROUNDS" 'BEGIN { split(t, a, " "); printf "%.3f", (a[1] + a[2]) * 1000 / r }'; }
split_ms() { awk -v t="$1" -v r="$ROUNDS" 'BEGIN { split(t, a, " "); printf "%.3f / %.3f", a[1] * 1000 / r, a[2] * 1000 / r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b / a }'; }

LP=$(per_round "$lp"); LPQ=$(per_round "$lpq"); PROC=$(per_round "$proc"); IPJ=$(per_round "$ipj")

{
    echo "# lpassive: CPU per sampling round"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc)-CPU $(uname -m), kernel $(uname -r), $(ip -V), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "$IFACES interfaces ($PAIRS veth pairs and lo, all up, IPv6 on) in one namespace; $ROUNDS rounds each;"
    echo "\`ip -s -j link\` prints $DUMP_BYTES bytes per round."
    echo
    echo "| reader | CPU ms per round (user / system) | CPU ms per round | \`ip -s -j link\` / reader |"
    echo "|---|---|---|---|"
    echo "| lpassive (dump, deltas, 1,000 JSON samples) | $(split_ms "$lp") | $LP | $(ratio "$LP" "$IPJ") |"
    echo "| lpassive -q (dump and deltas only) | $(split_ms "$lpq") | $LPQ | $(ratio "$LPQ" "$IPJ") |"
    echo "| /proc/net/dev, read and split (python3) | $(split_ms "$proc") | $PROC | $(ratio "$PROC" "$IPJ") |"
    echo "| \`ip -s -j link\`, one process per round | $(split_ms "$ipj") | $IPJ | 1.0 |"
    echo
    echo "Command: \`bench/lpassive.sh\` (as root; ROUNDS=$ROUNDS PAIRS=$PAIRS)."
} > "$OUT"
cat "$OUT"
